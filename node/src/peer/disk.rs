//! The disk thread of one swarm: writes, reads and hashes in the order the
//! node asked for them, so a piece is verified only after its blocks are stored.

use std::sync::{mpsc as std_mpsc, Arc};

use bytes::Bytes;
use swarmhub_core::wire::BlockRef;
use swarmhub_core::ConnId;
use tokio::sync::mpsc;

use super::driver::Event;
use crate::store::Storage;

/// Disk operations queued at most (4096 blocks of 16 KiB: 64 MiB of writes).
const DISK_QUEUE: usize = 4096;

pub(super) enum DiskOp {
    Write(BlockRef, Bytes),
    Read(ConnId, BlockRef),
    Verify(u32),
    /// A whole piece from the web seed: write it, then verify it.
    WebPiece(u32, Bytes),
}

/// Start the thread; it ends when the returned sender is dropped.
pub(super) fn spawn(
    storage: Arc<Storage>,
    events: mpsc::UnboundedSender<Event>,
) -> std::io::Result<(std_mpsc::SyncSender<DiskOp>, std::thread::JoinHandle<()>)> {
    // Bounded: when the disk falls behind, the swarm task waits here, stops
    // reading sockets, and TCP pushes back on the peers.
    let (tx, rx) = std_mpsc::sync_channel::<DiskOp>(DISK_QUEUE);
    let handle = std::thread::Builder::new()
        .name("swarmhub-disk".into())
        .spawn(move || {
            for op in rx {
                let ev = match op {
                    DiskOp::Write(block, data) => {
                        match storage.write(block.piece, block.begin, &data) {
                            Ok(()) => continue,
                            Err(e) => Event::DiskFailed(format!(
                                "writing piece {} at {}: {e}",
                                block.piece, block.begin
                            )),
                        }
                    }
                    DiskOp::Read(conn, block) => Event::BlockRead {
                        conn,
                        block,
                        result: storage
                            .read(block.piece, block.begin, block.length)
                            .map(Bytes::from)
                            .map_err(|e| e.to_string()),
                    },
                    DiskOp::WebPiece(piece, data) => Event::WebVerified {
                        piece,
                        result: storage
                            .write(piece, 0, &data)
                            .and_then(|()| storage.verify(piece))
                            .map_err(|e| e.to_string()),
                    },
                    DiskOp::Verify(piece) => Event::Verified {
                        piece,
                        result: storage.verify(piece).map_err(|e| e.to_string()),
                    },
                };
                // The swarm may be gone; keep draining so queued writes land.
                let _ = events.send(ev);
            }
        })?;
    Ok((tx, handle))
}
