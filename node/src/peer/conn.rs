//! Per-connection reader and writer tasks.

use std::sync::Arc;

use bytes::Bytes;
use swarmhub_core::wire::{BlockRef, Decoder, Handshake, Message};

use swarmhub_core::ConnId;
use tokio::io::{AsyncReadExt, AsyncWriteExt, BufWriter, ReadHalf, WriteHalf};
use tokio::sync::mpsc;

use super::driver::Event;
use super::PeerStream;
use crate::rate::Limits;

/// What a reader reports.
pub(super) enum ConnEvent {
    Handshake(Handshake),
    Message(Message),
    Closed(String),
}

/// What a writer sends.
pub(super) enum WriteItem {
    /// Encoded handshake or message.
    Bytes(Vec<u8>),
    /// A block to send as a piece message; reported as [`Event::BlockSent`].
    Block(BlockRef, Bytes),
}

const READ_BUF: usize = 64 * 1024;

pub(super) async fn reader(
    conn: ConnId,
    mut rd: ReadHalf<Box<dyn PeerStream>>,
    mut decoder: Decoder,
    mut expect_handshake: bool,
    tx: mpsc::Sender<(ConnId, ConnEvent)>,
    limits: Arc<Limits>,
) {
    let mut buf = vec![0u8; READ_BUF];
    let reason = loop {
        let n = match rd.read(&mut buf).await {
            Ok(0) => break "remote closed the connection".to_owned(),
            Ok(n) => n,
            Err(e) => break format!("read failed: {e}"),
        };
        limits.down.acquire(n).await;
        decoder.push(&buf[..n]);
        if expect_handshake {
            match decoder.poll_handshake() {
                Ok(Some(h)) => {
                    expect_handshake = false;
                    if tx.send((conn, ConnEvent::Handshake(h))).await.is_err() {
                        return;
                    }
                }
                Ok(None) => continue,
                Err(e) => break format!("bad handshake: {e}"),
            }
        }
        let failed = loop {
            match decoder.poll_message() {
                Ok(Some(m)) => {
                    if tx.send((conn, ConnEvent::Message(m))).await.is_err() {
                        return;
                    }
                }
                Ok(None) => break None,
                Err(e) => break Some(format!("undecodable bytes: {e}")),
            }
        };
        if let Some(reason) = failed {
            break reason;
        }
    };
    let _ = tx.send((conn, ConnEvent::Closed(reason))).await;
}

/// Items a connection's writer queues at most: the node's upload window
/// bounds the blocks, so only a peer that stopped reading fills it with
/// control messages; the connection is then closed.
pub(super) const WRITER_QUEUE: usize = 16 * 1024;

/// Bytes the writer gathers before a write to the socket (or TLS layer);
/// per connection, so kept small enough for thousands of them.
const WRITE_BUF: usize = 64 * 1024;

/// The 13 bytes before a block's data in a piece message (BEP 3: length,
/// id 7, index, begin).
fn piece_header(block: BlockRef, len: usize) -> [u8; 13] {
    let mut h = [0u8; 13];
    h[..4].copy_from_slice(&((len as u32).saturating_add(9)).to_be_bytes());
    h[4] = 7;
    h[5..9].copy_from_slice(&block.piece.to_be_bytes());
    h[9..13].copy_from_slice(&block.begin.to_be_bytes());
    h
}

pub(super) async fn writer(
    conn: ConnId,
    wr: WriteHalf<Box<dyn PeerStream>>,
    mut rx: mpsc::Receiver<WriteItem>,
    events: mpsc::UnboundedSender<Event>,
    limits: Arc<Limits>,
) {
    let mut w = BufWriter::with_capacity(WRITE_BUF, wr);
    while let Some(item) = rx.recv().await {
        let result = match item {
            WriteItem::Bytes(b) => w.write_all(&b).await,
            WriteItem::Block(block, data) => {
                limits.up.acquire(data.len()).await;
                // Header and data straight into the buffer: one copy.
                let mut r = w.write_all(&piece_header(block, data.len())).await;
                if r.is_ok() {
                    r = w.write_all(&data).await;
                }
                if r.is_ok() {
                    let _ = events.send(Event::BlockSent { conn, block });
                }
                r
            }
        };
        let result = match result {
            Ok(()) if rx.is_empty() => w.flush().await,
            other => other,
        };
        if let Err(e) = result {
            let _ = events.send(Event::WriterFailed {
                conn,
                reason: format!("write failed: {e}"),
            });
            return;
        }
    }
    let _ = w.shutdown().await;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn piece_header_matches_the_codec() {
        let block = BlockRef {
            piece: 7,
            begin: 32768,
            length: 16384,
        };
        let data = Bytes::from(vec![9u8; 16384]);
        let mut encoded = Vec::new();
        Message::Piece(block, data.clone())
            .encode(&mut encoded)
            .unwrap();
        let mut ours = piece_header(block, data.len()).to_vec();
        ours.extend_from_slice(&data);
        assert_eq!(ours, encoded);
    }
}
