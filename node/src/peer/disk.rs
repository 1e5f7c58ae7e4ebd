//! The disk side of one swarm: a thread that writes, reads and hashes in the
//! order the node asked for them (so a piece is verified only after its
//! blocks are stored), a cache of recently read spans so a piece that many
//! peers ask for is read once and its blocks go out without a trip to this
//! thread, and the in-memory assembly of pieces being downloaded, hashed
//! before they are written.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use swarmhub_core::wire::BlockRef;
use swarmhub_core::ConnId;
use tokio::sync::mpsc;

use super::driver::Event;
use crate::budget::READ_CACHE;
use crate::piece_buf::PieceBuf;
use crate::store::Storage;

/// Disk operations queued at most (4096 blocks of 16 KiB: 64 MiB of writes).
/// When the queue is full the swarm holds further operations itself and
/// stops reading from peers until it drains, so TCP pushes back on them.
pub(super) const DISK_QUEUE: usize = 4096;

/// Bytes read from disk at once for uploads (whole pieces up to this size).
const SPAN: u32 = 1 << 20;

pub(super) enum DiskOp {
    Write(BlockRef, Bytes),
    Read(ConnId, BlockRef),
    Verify(u32),
    /// A whole piece from the web seed: verify it, then write it.
    WebPiece(u32, Bytes),
    /// A whole assembled piece whose SHA-1 matched: write it, then report
    /// it verified. One thread writes, so writes to a file never contend.
    StoreChecked(u32, Bytes),
}

/// Recently read spans of verified pieces, oldest evicted first.
pub(super) struct ReadCache {
    inner: Mutex<CacheInner>,
}

#[derive(Default)]
struct CacheInner {
    spans: HashMap<(u32, u32), Bytes>,
    order: VecDeque<(u32, u32)>,
    bytes: usize,
}

impl ReadCache {
    pub(super) fn new() -> Self {
        ReadCache {
            inner: Mutex::new(CacheInner::default()),
        }
    }

    /// `block` from a cached span, if its span is cached.
    pub(super) fn get(&self, block: BlockRef) -> Option<Bytes> {
        let start = block.begin / SPAN * SPAN;
        let inner = self.inner.lock().ok()?;
        block_of(inner.spans.get(&(block.piece, start))?, start, block)
    }

    /// `block`, reading (and caching) its whole span when it is not cached.
    fn load(&self, storage: &Storage, block: BlockRef) -> std::io::Result<Bytes> {
        if let Some(b) = self.get(block) {
            return Ok(b);
        }
        let start = block.begin / SPAN * SPAN;
        let fits = block.piece < storage.meta().num_pieces() && {
            let piece_len = storage.meta().piece_len(block.piece);
            block
                .begin
                .checked_add(block.length)
                .is_some_and(|e| e <= piece_len && e <= start.saturating_add(SPAN))
        };
        if !fits {
            // Outside the piece (the storage names the bad range), or a block
            // of a peer's own alignment that crosses two spans: read it alone.
            return storage
                .read(block.piece, block.begin, block.length)
                .map(Bytes::from);
        }
        let len = SPAN.min(storage.meta().piece_len(block.piece) - start);
        let span = Bytes::from(storage.read(block.piece, start, len)?);
        let key = (block.piece, start);
        if let Ok(mut inner) = self.inner.lock() {
            if !inner.spans.contains_key(&key) {
                // Room from the process-wide budget, evicting our own oldest
                // spans while it is spent; not cached when that is not enough.
                let mut paid = READ_CACHE.try_take(span.len());
                while !paid {
                    let Some(old) = inner.order.pop_front() else {
                        break;
                    };
                    if let Some(b) = inner.spans.remove(&old) {
                        inner.bytes -= b.len();
                        READ_CACHE.give(b.len());
                    }
                    paid = READ_CACHE.try_take(span.len());
                }
                if paid {
                    inner.bytes += span.len();
                    inner.spans.insert(key, span.clone());
                    inner.order.push_back(key);
                }
            }
        }
        block_of(&span, start, block).ok_or_else(|| std::io::Error::other("block outside its span"))
    }
}

/// `block`'s bytes from `span`, the cached span that starts at `start` in
/// its piece; `None` when the block does not lie inside it.
fn block_of(span: &Bytes, start: u32, block: BlockRef) -> Option<Bytes> {
    let lo = (block.begin.checked_sub(start)?) as usize;
    let hi = lo.checked_add(block.length as usize)?;
    (hi <= span.len()).then(|| span.slice(lo..hi))
}

impl Drop for ReadCache {
    fn drop(&mut self) {
        if let Ok(inner) = self.inner.lock() {
            READ_CACHE.give(inner.bytes);
        }
    }
}

/// A piece being received into memory.
pub(super) struct Assembly {
    /// Reused from the pool; only bytes of received blocks are meaningful.
    data: PieceBuf,
    got: Vec<bool>,
    missing: usize,
}

impl Assembly {
    pub(super) fn new(piece_len: u32) -> Self {
        let blocks = piece_len.div_ceil(swarmhub_core::wire::BLOCK_LEN) as usize;
        Assembly {
            data: PieceBuf::take(piece_len as usize),
            got: vec![false; blocks],
            missing: blocks,
        }
    }

    pub(super) fn len(&self) -> usize {
        self.data.len()
    }

    /// Copy `data` in at `begin`; false when it does not fit the piece.
    pub(super) fn put(&mut self, begin: u32, data: &[u8]) -> bool {
        let lo = begin as usize;
        let Some(hi) = lo.checked_add(data.len()).filter(|&h| h <= self.data.len()) else {
            return false;
        };
        self.data[lo..hi].copy_from_slice(data);
        let first = lo / swarmhub_core::wire::BLOCK_LEN as usize;
        let last = (hi.max(lo + 1) - 1) / swarmhub_core::wire::BLOCK_LEN as usize;
        for got in &mut self.got[first..=last] {
            if !*got {
                *got = true;
                self.missing -= 1;
            }
        }
        true
    }

    /// The piece's bytes once every block is in, else the assembly back.
    pub(super) fn finish(self) -> Result<Bytes, Assembly> {
        if self.missing == 0 {
            Ok(self.data.into_bytes())
        } else {
            Err(self)
        }
    }

    /// The blocks received so far, to write when the assembly is given up.
    pub(super) fn received(&self) -> impl Iterator<Item = (u32, &[u8])> + '_ {
        let block = swarmhub_core::wire::BLOCK_LEN as usize;
        self.got
            .iter()
            .enumerate()
            .filter(|(_, g)| **g)
            .map(move |(i, _)| {
                let lo = i * block;
                let hi = (lo + block).min(self.data.len());
                (lo as u32, &self.data[lo..hi])
            })
    }
}

/// Start the thread; it ends when the returned sender is dropped.
pub(super) fn spawn(
    storage: Arc<Storage>,
    cache: Arc<ReadCache>,
    events: mpsc::UnboundedSender<Event>,
) -> std::io::Result<(mpsc::Sender<DiskOp>, std::thread::JoinHandle<()>)> {
    let (tx, mut rx) = mpsc::channel::<DiskOp>(DISK_QUEUE);
    let handle = std::thread::Builder::new()
        .name("swarmhub-disk".into())
        .spawn(move || {
            while let Some(op) = rx.blocking_recv() {
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
                        result: cache.load(&storage, block).map_err(|e| e.to_string()),
                    },
                    DiskOp::WebPiece(piece, data) => Event::WebVerified {
                        piece,
                        result: storage
                            .write_verified(piece, data)
                            .map_err(|e| e.to_string()),
                    },
                    DiskOp::StoreChecked(piece, data) => {
                        let len = data.len();
                        let written = storage.write_checked(piece, data);
                        crate::budget::ASSEMBLY.give(len);
                        match written {
                            Ok(()) => Event::Verified {
                                piece,
                                result: Ok(true),
                            },
                            Err(e) => Event::DiskFailed(format!("writing piece {piece}: {e}")),
                        }
                    }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn read_cache_serves_spans_and_blocks_that_cross_them() {
        let dir = tempfile::tempdir().expect("tempdir");
        let data: Vec<u8> = (0..3 * SPAN).map(|i| (i % 251) as u8).collect();
        std::fs::write(dir.path().join("a.bin"), &data).expect("write");
        // Pieces of two spans, so a block can straddle a span boundary.
        let files = vec![(vec!["a.bin".to_string()], data.len() as u64)];
        let mut hasher =
            swarmhub_core::metainfo::ImageHasher::new("t:1", files, Some(2 * SPAN)).expect("new");
        hasher.update(&data);
        let meta = Arc::new(hasher.finish(None).expect("meta"));
        let st = Storage::open(dir.path(), meta.clone(), false).expect("open");
        let cache = ReadCache::new();
        let piece_len = meta.piece_len(0);
        assert_eq!(piece_len, 2 * SPAN);
        for (begin, length) in [
            (0, 16384),
            (16384, 16384),
            (SPAN - 8192, 16384),
            (piece_len - 100, 100),
        ] {
            let block = BlockRef {
                piece: 0,
                begin,
                length,
            };
            let got = cache.load(&st, block).expect("load");
            let off = begin as usize;
            assert_eq!(
                &got[..],
                &data[off..off + length as usize],
                "block at {begin}"
            );
        }
        let past = BlockRef {
            piece: 0,
            begin: piece_len - 10,
            length: 100,
        };
        assert!(cache.load(&st, past).is_err(), "past the piece end");
        let gone = BlockRef {
            piece: meta.num_pieces(),
            begin: 0,
            length: 16,
        };
        assert!(cache.load(&st, gone).is_err(), "no such piece");
    }

    #[test]
    fn assembly_counts_each_block_once_and_refuses_overflow() {
        let mut a = Assembly::new(40_000);
        assert!(a.put(0, &[1u8; 16384]));
        assert!(a.put(0, &[1u8; 16384]), "a duplicate block is accepted");
        assert!(!a.put(39_000, &[0u8; 2000]), "past the piece end");
        let a = a.finish().expect_err("two blocks are still missing");
        assert_eq!(a.received().count(), 1);
        let mut a = a;
        assert!(a.put(16384, &[2u8; 16384]));
        assert!(a.put(32768, &[3u8; 40_000 - 32768]));
        let data = a.finish().ok().expect("complete");
        assert_eq!(data.len(), 40_000);
        assert_eq!(data[16384], 2);
        assert_eq!(data[39_999], 3);
    }
}
