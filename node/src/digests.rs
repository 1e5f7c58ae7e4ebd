//! Each file's SHA-256, computed while the image downloads.
//!
//! Pieces verify in any order; the image's bytes hash in file order. A
//! [`FileDigests`] thread takes every verified piece (with its bytes when the
//! verifier still holds them), feeds the next pieces in order into the
//! current file's hasher, keeps later ones in memory up to a budget and
//! re-reads the rest from disk when their turn comes (from the page cache,
//! while the network is still busy). When the last piece is in, every file
//! has been checked and the end of a pull is a rename, not a second pass.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::mpsc as std_mpsc;
use std::sync::{Arc, Weak};

use bytes::Bytes;
use sha2::{Digest, Sha256};
use swarmhub_core::metainfo::Metainfo;

use crate::budget::DIGEST_HELD;
use crate::store::{Storage, StoreError};

/// What the hasher concluded.
#[derive(Debug)]
pub(crate) enum Verdict {
    /// Every piece was fed and every file matches its SHA-256.
    AllMatch,
    /// This file's bytes do not match its SHA-256.
    Mismatch(PathBuf),
    /// Not every piece was fed, or one could not be re-read (the caller
    /// checks the files in a full pass instead).
    Incomplete(String),
}

/// The feeding end of a running hasher.
pub(crate) struct FileDigests {
    tx: std_mpsc::Sender<(u32, Option<Bytes>)>,
    thread: std::thread::JoinHandle<Verdict>,
}

impl FileDigests {
    /// Start a hasher for `storage`'s image; `paths` name its files in errors.
    pub(crate) fn start(
        storage: Weak<Storage>,
        meta: Arc<Metainfo>,
        paths: Vec<PathBuf>,
    ) -> std::io::Result<FileDigests> {
        let (tx, rx) = std_mpsc::channel();
        let thread = std::thread::Builder::new()
            .name("swarmhub-sha256".into())
            .spawn(move || run(rx, storage, &meta, &paths))?;
        Ok(FileDigests { tx, thread })
    }

    /// Piece `piece` verified; `data` is its bytes when the caller has them.
    pub(crate) fn feed(&self, piece: u32, data: Option<Bytes>) {
        let _ = self.tx.send((piece, data));
    }

    /// Stop feeding and wait for the verdict.
    pub(crate) fn finish(self) -> Verdict {
        drop(self.tx);
        self.thread
            .join()
            .unwrap_or_else(|_| Verdict::Incomplete("the SHA-256 thread panicked".into()))
    }
}

/// Walks the image's byte stream file by file.
struct Cursor<'a> {
    meta: &'a Metainfo,
    paths: &'a [PathBuf],
    file: usize,
    offset: u64,
    hasher: Sha256,
}

impl Cursor<'_> {
    /// Close every zero-length (or finished) file at the cursor.
    fn settle(&mut self) -> Result<(), PathBuf> {
        while let Some(f) = self.meta.files.get(self.file) {
            if self.offset < f.length {
                break;
            }
            let digest: [u8; 32] = std::mem::take(&mut self.hasher).finalize().into();
            if digest != f.sha256 {
                return Err(self.paths.get(self.file).cloned().unwrap_or_default());
            }
            self.file += 1;
            self.offset = 0;
        }
        Ok(())
    }

    fn update(&mut self, mut data: &[u8]) -> Result<(), PathBuf> {
        self.settle()?;
        while !data.is_empty() {
            let Some(f) = self.meta.files.get(self.file) else {
                break;
            };
            let take = ((f.length - self.offset).min(data.len() as u64)) as usize;
            self.hasher.update(&data[..take]);
            self.offset += take as u64;
            data = &data[take..];
            self.settle()?;
        }
        Ok(())
    }
}

fn run(
    rx: std_mpsc::Receiver<(u32, Option<Bytes>)>,
    storage: Weak<Storage>,
    meta: &Metainfo,
    paths: &[PathBuf],
) -> Verdict {
    let pieces = meta.num_pieces();
    let mut cursor = Cursor {
        meta,
        paths,
        file: 0,
        offset: 0,
        hasher: Sha256::new(),
    };
    if let Err(path) = cursor.settle() {
        return Verdict::Mismatch(path);
    }
    let mut next = 0u32;
    // Verified pieces not yet hashable, in memory while the process-wide
    // budget allows ([`DIGEST_HELD`]), else re-read from disk in their turn.
    let mut held = Held::default();
    for (piece, data) in rx {
        if piece < next || piece >= pieces || held.get(&piece).is_some_and(|d| d.is_some()) {
            continue;
        }
        held.insert(piece, data);
        while let Some(data) = held.remove(next) {
            let data = match data {
                Some(d) => d,
                None => {
                    let read = storage
                        .upgrade()
                        .map(|s| s.read(next, 0, meta.piece_len(next)));
                    match read {
                        Some(Ok(v)) => Bytes::from(v),
                        Some(Err(e)) => {
                            return Verdict::Incomplete(format!("re-reading piece {next}: {e}"))
                        }
                        None => return Verdict::Incomplete("the image was closed".into()),
                    }
                }
            };
            if let Err(path) = cursor.update(&data) {
                return Verdict::Mismatch(path);
            }
            next += 1;
        }
    }
    if next == pieces {
        Verdict::AllMatch
    } else {
        Verdict::Incomplete(format!("{next} of {pieces} pieces hashed in order"))
    }
}

/// Pieces waiting for the hasher, with their share of [`DIGEST_HELD`].
#[derive(Default)]
struct Held {
    pieces: BTreeMap<u32, Option<Bytes>>,
    bytes: usize,
}

impl Held {
    fn get(&self, piece: &u32) -> Option<&Option<Bytes>> {
        self.pieces.get(piece)
    }

    fn insert(&mut self, piece: u32, data: Option<Bytes>) {
        let data = data.filter(|d| DIGEST_HELD.try_take(d.len()));
        self.bytes += data.as_ref().map_or(0, |d| d.len());
        if let Some(Some(old)) = self.pieces.insert(piece, data) {
            self.bytes -= old.len();
            DIGEST_HELD.give(old.len());
        }
    }

    fn remove(&mut self, piece: u32) -> Option<Option<Bytes>> {
        let data = self.pieces.remove(&piece)?;
        if let Some(d) = &data {
            self.bytes -= d.len();
            DIGEST_HELD.give(d.len());
        }
        Some(data)
    }
}

impl Drop for Held {
    fn drop(&mut self) {
        DIGEST_HELD.give(self.bytes);
    }
}

impl From<Verdict> for Option<Result<(), StoreError>> {
    fn from(v: Verdict) -> Self {
        match v {
            Verdict::AllMatch => Some(Ok(())),
            Verdict::Mismatch(path) => Some(Err(StoreError::Sha256Mismatch(path))),
            Verdict::Incomplete(why) => {
                tracing::debug!("file hashes not streamed ({why}): checking them in a full pass");
                None
            }
        }
    }
}
