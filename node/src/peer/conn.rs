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

pub(super) async fn writer(
    conn: ConnId,
    wr: WriteHalf<Box<dyn PeerStream>>,
    mut rx: mpsc::UnboundedReceiver<WriteItem>,
    events: mpsc::UnboundedSender<Event>,
    limits: Arc<Limits>,
) {
    let mut w = BufWriter::with_capacity(64 * 1024, wr);
    let mut scratch = Vec::with_capacity(16 * 1024 + 13);
    while let Some(item) = rx.recv().await {
        let result = match item {
            WriteItem::Bytes(b) => w.write_all(&b).await,
            WriteItem::Block(block, data) => {
                limits.up.acquire(data.len()).await;
                scratch.clear();
                match Message::Piece(block, data).encode(&mut scratch) {
                    Ok(()) => {
                        let r = w.write_all(&scratch).await;
                        if r.is_ok() {
                            let _ = events.send(Event::BlockSent { conn, block });
                        }
                        r
                    }
                    Err(e) => Err(std::io::Error::other(e.to_string())),
                }
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
