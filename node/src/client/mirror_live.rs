//! The mirror's reads from an image still being pulled: a manifest once the
//! pieces holding it are verified, a blob streamed as the pieces holding each
//! byte range are verified (SHA-1), its SHA-256 checked before the last bytes
//! of the response go out, so a blob that fails its digest ends in a broken
//! transfer, never in a clean end of bad data.

use std::io;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use bytes::Bytes;
use swarmhub_core::metainfo::Metainfo;
use swarmhub_core::pieceset::PieceSet;
use tokio::sync::{mpsc, watch};

use super::live::{LivePull, PullProgress};
use crate::metrics::client::MirrorMetrics;
use crate::metrics::ClientMetrics;
use crate::oci::digest::{Hasher, Sha256Digest};

/// Bytes read and sent at a time.
const CHUNK: u64 = 256 * 1024;
/// Pieces from the reader's position on asked of the swarm first. The swarm
/// takes the rarest of them first, ties at random, so a wide window keeps
/// the pieces that mirrors on several machines fetch from the hub diverse,
/// while the reader still gets its next bytes early. In node/tests/oci.rs
/// (three mirrors, hub at 512 KiB/s) the share of bytes from peers was 61%
/// with no window, 49-55% with 8 pieces, 57-62% with 32.
const AHEAD_PIECES: u32 = 32;

/// One file of an image being pulled.
pub(super) struct LiveFile {
    live: LivePull,
    piece_length: u64,
    /// Path inside the image.
    rel: PathBuf,
    /// Its first byte in the image.
    offset: u64,
    /// Its length.
    pub(super) len: u64,
}

impl LiveFile {
    /// The file `components` of the image `meta` that `live` pulls.
    pub(super) fn in_image(
        live: &LivePull,
        meta: &Metainfo,
        components: &[String],
    ) -> Option<Self> {
        let mut offset = 0;
        for f in &meta.files {
            if f.path == components {
                return Some(LiveFile {
                    live: live.clone(),
                    piece_length: u64::from(meta.piece_length.max(1)),
                    rel: f.path.iter().collect(),
                    offset,
                    len: f.length,
                });
            }
            offset += f.length;
        }
        None
    }

    /// The file `components` of the image `live` pulls, once the pull knows
    /// its metainfo; `Ok(None)` when the image has no such file.
    pub(super) async fn find(
        live: &LivePull,
        components: &[String],
    ) -> Result<Option<Self>, String> {
        let mut rx = live.progress();
        let (meta, failed) = {
            let p = rx
                .wait_for(|p| p.meta.is_some() || p.ended())
                .await
                .map_err(|_| "the pull stopped".to_owned())?;
            (p.meta.clone(), p.failed.clone())
        };
        match (&meta, &failed) {
            (Some(meta), _) => Ok(Self::in_image(live, meta, components)),
            (None, Some(e)) => Err(format!("the pull failed: {e}")),
            (None, None) => Err("the pull ended without metainfo".into()),
        }
    }

    fn piece_of(&self, pos: u64) -> u32 {
        ((self.offset + pos) / self.piece_length) as u32
    }

    /// The end (file position, at most `end`) of the verified bytes from `pos` on.
    fn ready_until(&self, have: &PieceSet, pos: u64, end: u64) -> u64 {
        let mut piece = self.piece_of(pos);
        while have.contains(piece) {
            piece += 1;
            if u64::from(piece) * self.piece_length >= self.offset + end {
                return end;
            }
        }
        (u64::from(piece) * self.piece_length)
            .saturating_sub(self.offset)
            .clamp(pos, end)
    }

    /// Ask the swarm for the pieces from `pos` on, a few ahead, before others.
    fn want_from(&self, want: &super::live::Want, pos: u64, end: u64) {
        let first = self.piece_of(pos);
        let last = self
            .piece_of(end.saturating_sub(1).max(pos))
            .min(first.saturating_add(AHEAD_PIECES - 1));
        want.set((first..=last).collect());
    }

    /// Wait until bytes from `pos` on are verified: the folder and how far
    /// (at most `end`) they are.
    async fn wait_ready(
        &self,
        rx: &mut watch::Receiver<PullProgress>,
        pos: u64,
        end: u64,
    ) -> Result<(PathBuf, u64), String> {
        let (failed, dir, ready) = {
            let p = rx
                .wait_for(|p| p.failed.is_some() || self.ready_until(&p.have, pos, end) > pos)
                .await
                .map_err(|_| "the pull stopped".to_owned())?;
            (
                p.failed.clone(),
                p.dir.clone(),
                self.ready_until(&p.have, pos, end),
            )
        };
        if let Some(e) = failed {
            return Err(format!("the pull failed: {e}"));
        }
        Ok((dir.ok_or("the pull has no folder")?, ready))
    }

    /// Open the file in `dir`, or where the pull moved it meanwhile (the
    /// download folder becomes the image folder once it is published).
    async fn open(
        &self,
        dir: &Path,
        rx: &watch::Receiver<PullProgress>,
    ) -> io::Result<std::fs::File> {
        let mut dir = dir.to_owned();
        for _ in 0..100 {
            match std::fs::File::open(dir.join(&self.rel)) {
                Err(e) if e.kind() == io::ErrorKind::NotFound => {
                    tokio::time::sleep(Duration::from_millis(20)).await;
                    if let Some(d) = rx.borrow().dir.clone() {
                        dir = d;
                    }
                }
                r => return r,
            }
        }
        std::fs::File::open(dir.join(&self.rel))
    }

    /// The whole file (at most `max` bytes), once every piece holding it is verified.
    pub(super) async fn read_all(&self, max: u64) -> Result<Vec<u8>, String> {
        if self.len > max {
            return Err(format!("{} bytes: larger than a manifest may be", self.len));
        }
        if self.len == 0 {
            return Ok(Vec::new());
        }
        let want = self.live.want();
        self.want_from(&want, 0, self.len);
        let mut rx = self.live.progress();
        let (failed, dir) = {
            let p = rx
                .wait_for(|p| {
                    p.failed.is_some() || self.ready_until(&p.have, 0, self.len) == self.len
                })
                .await
                .map_err(|_| "the pull stopped".to_owned())?;
            (p.failed.clone(), p.dir.clone())
        };
        if let Some(e) = failed {
            return Err(format!("the pull failed: {e}"));
        }
        let dir = dir.ok_or("the pull has no folder")?;
        let f = self.open(&dir, &rx).await.map_err(|e| e.to_string())?;
        let len = self.len;
        tokio::task::spawn_blocking(move || {
            let mut buf = vec![0u8; len as usize];
            f.read_exact_at(&mut buf, 0).map(|()| buf)
        })
        .await
        .map_err(|e| e.to_string())?
        .map_err(|e| e.to_string())
    }
}

/// The body of bytes `first .. first + count` of blob `file` (`digest`),
/// sent as the pieces holding them are verified.
pub(super) fn stream(
    file: LiveFile,
    digest: Sha256Digest,
    first: u64,
    count: u64,
    metrics: Arc<ClientMetrics>,
) -> Body {
    let (tx, rx) = mpsc::channel::<io::Result<Bytes>>(4);
    tokio::spawn(async move {
        let m = &metrics.mirror;
        if let Err(e) = produce(&file, &digest, first, count, &tx, m).await {
            m.aborted_streams.inc();
            tracing::warn!("mirror: blob {digest}: {e}; transfer aborted");
            let _ = tx.send(Err(io::Error::other(e))).await;
        }
    });
    Body::from_stream(futures_util::stream::unfold(rx, |mut rx| async move {
        rx.recv().await.map(|item| (item, rx))
    }))
}

/// Send the range chunk by chunk as it verifies, holding the last chunk
/// until the blob's digest is checked: the SHA-256 of the bytes sent when
/// the response is the whole blob, else of the whole file once all of it is
/// verified.
async fn produce(
    file: &LiveFile,
    digest: &Sha256Digest,
    first: u64,
    count: u64,
    tx: &mpsc::Sender<io::Result<Bytes>>,
    counters: &MirrorMetrics,
) -> Result<(), String> {
    let end = first + count;
    let whole = first == 0 && count == file.len;
    let want = file.live.want();
    let mut rx = file.live.progress();
    let mut hasher = whole.then(Hasher::default);
    let mut handle: Option<Arc<std::fs::File>> = None;
    let mut pos = first;
    let mut last = Bytes::new();
    while pos < end {
        file.want_from(&want, pos, end);
        let (dir, ready) = file.wait_ready(&mut rx, pos, end).await?;
        let f = match &handle {
            Some(f) => f.clone(),
            None => {
                let f = Arc::new(file.open(&dir, &rx).await.map_err(|e| e.to_string())?);
                handle = Some(f.clone());
                f
            }
        };
        while pos < ready {
            let n = (ready - pos).min(CHUNK);
            let (chunk, h) = read_chunk(f.clone(), pos, n, hasher.take()).await?;
            hasher = h;
            pos += n;
            if pos == end {
                last = chunk;
                break;
            }
            counters.served_bytes.inc_by(n);
            if tx.send(Ok(chunk)).await.is_err() {
                return Ok(()); // the client went away
            }
        }
    }
    drop(want);
    let actual = match hasher {
        Some(h) => h.finish().0,
        None => {
            // A part of the blob: check the whole file once it is all verified.
            let failed = rx
                .wait_for(|p| {
                    p.failed.is_some() || file.ready_until(&p.have, 0, file.len) == file.len
                })
                .await
                .map_err(|_| "the pull stopped".to_owned())?
                .failed
                .clone();
            if let Some(e) = failed {
                return Err(format!("the pull failed: {e}"));
            }
            let f = handle.clone().ok_or("no file")?;
            let len = file.len;
            tokio::task::spawn_blocking(move || hash_file(&f, len))
                .await
                .map_err(|e| e.to_string())?
                .map_err(|e| e.to_string())?
        }
    };
    if actual != *digest {
        counters.refused_unverified.inc();
        return Err(format!("the downloaded blob hashes to {actual}; refused"));
    }
    counters.served_bytes.inc_by(last.len() as u64);
    let _ = tx.send(Ok(last)).await;
    Ok(())
}

async fn read_chunk(
    f: Arc<std::fs::File>,
    pos: u64,
    n: u64,
    hasher: Option<Hasher>,
) -> Result<(Bytes, Option<Hasher>), String> {
    tokio::task::spawn_blocking(move || {
        let mut buf = vec![0u8; n as usize];
        f.read_exact_at(&mut buf, pos)?;
        let hasher = hasher.map(|mut h| {
            h.update(&buf);
            h
        });
        Ok::<_, io::Error>((Bytes::from(buf), hasher))
    })
    .await
    .map_err(|e| e.to_string())?
    .map_err(|e| e.to_string())
}

fn hash_file(f: &std::fs::File, len: u64) -> io::Result<Sha256Digest> {
    let mut h = Hasher::default();
    let mut buf = vec![0u8; 1 << 20];
    let mut pos = 0;
    while pos < len {
        let n = (len - pos).min(buf.len() as u64) as usize;
        f.read_exact_at(&mut buf[..n], pos)?;
        h.update(&buf[..n]);
        pos += n as u64;
    }
    Ok(h.finish().0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::client::live::PullLink;

    fn file(offset: u64, len: u64) -> LiveFile {
        let (_, live) = PullLink::new();
        LiveFile {
            live,
            piece_length: 100,
            rel: PathBuf::from("f"),
            offset,
            len,
        }
    }

    /// A blob of three pieces (one chunk each) at `dir/f`, being pulled, and
    /// the link to mark its pieces verified.
    fn pulling(dir: &Path, bytes: &[u8]) -> (PullLink, LiveFile) {
        std::fs::write(dir.join("f"), bytes).expect("write");
        let (link, live) = PullLink::new();
        link.update(|p| {
            p.dir = Some(dir.to_owned());
            p.have = PieceSet::new(3);
            true
        });
        let f = LiveFile {
            live,
            piece_length: CHUNK,
            rel: PathBuf::from("f"),
            offset: 0,
            len: bytes.len() as u64,
        };
        (link, f)
    }

    async fn next(
        body: &mut (impl futures_util::Stream<Item = Result<Bytes, axum::Error>> + Unpin),
        wait: Duration,
    ) -> Option<Option<Result<Bytes, axum::Error>>> {
        use futures_util::StreamExt;
        tokio::time::timeout(wait, body.next()).await.ok()
    }

    #[tokio::test]
    async fn a_blob_streams_as_its_pieces_verify_and_ends_once_its_digest_matches() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let bytes: Vec<u8> = (0..3 * CHUNK).map(|i| (i % 253) as u8).collect();
        let (link, f) = pulling(tmp.path(), &bytes);
        let metrics = Arc::new(ClientMetrics::new());
        let digest = Sha256Digest::of(&bytes);
        let mut body = stream(f, digest, 0, bytes.len() as u64, metrics.clone()).into_data_stream();
        let long = Duration::from_secs(10);
        // Nothing is verified yet: nothing is sent.
        assert!(next(&mut body, Duration::from_millis(200)).await.is_none());
        link.add_piece(0);
        let first = next(&mut body, long).await.expect("a chunk").expect("open");
        assert_eq!(&first.expect("data")[..], &bytes[..CHUNK as usize]);
        // Piece 1 missing: the stream waits, even with piece 2 verified.
        link.add_piece(2);
        assert!(next(&mut body, Duration::from_millis(200)).await.is_none());
        link.add_piece(1);
        let mut got = bytes[..CHUNK as usize].to_vec();
        while let Some(chunk) = next(&mut body, long).await.expect("in time") {
            got.extend_from_slice(&chunk.expect("no error"));
        }
        assert!(got == bytes, "{} bytes", got.len());
        assert_eq!(metrics.mirror.served_bytes.get(), 3 * CHUNK);
        assert_eq!(metrics.mirror.aborted_streams.get(), 0);
    }

    #[tokio::test]
    async fn a_blob_that_fails_its_digest_ends_in_an_error_before_its_last_bytes() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let bytes = vec![7u8; 3 * CHUNK as usize];
        let (link, f) = pulling(tmp.path(), &bytes);
        let metrics = Arc::new(ClientMetrics::new());
        // The digest names other bytes: pieces verify, the blob does not.
        let digest = Sha256Digest::of(b"another blob");
        let mut body = stream(f, digest, 0, bytes.len() as u64, metrics.clone()).into_data_stream();
        for p in 0..3 {
            link.add_piece(p);
        }
        let mut sent = 0;
        let error = loop {
            match next(&mut body, Duration::from_secs(10))
                .await
                .expect("in time")
            {
                Some(Ok(chunk)) => sent += chunk.len() as u64,
                Some(Err(e)) => break e.to_string(),
                None => panic!("the stream ended cleanly after {sent} bytes of a bad blob"),
            }
        };
        assert!(error.contains("hashes to"), "{error}");
        assert!(sent < bytes.len() as u64, "{sent}");
        assert_eq!(metrics.mirror.aborted_streams.get(), 1);
        assert_eq!(metrics.mirror.refused_unverified.get(), 1);
    }

    #[tokio::test]
    async fn a_range_is_sent_once_the_whole_blob_is_verified_and_a_failed_pull_aborts_it() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let bytes: Vec<u8> = (0..3 * CHUNK).map(|i| (i % 251) as u8).collect();
        let (link, f) = pulling(tmp.path(), &bytes);
        let metrics = Arc::new(ClientMetrics::new());
        let digest = Sha256Digest::of(&bytes);
        let mut body = stream(f, digest, 10, 20, metrics.clone()).into_data_stream();
        // The range lies in piece 0, but its digest needs the whole blob.
        link.add_piece(0);
        assert!(next(&mut body, Duration::from_millis(300)).await.is_none());
        link.add_piece(1);
        link.add_piece(2);
        let chunk = next(&mut body, Duration::from_secs(10))
            .await
            .expect("in time");
        assert_eq!(&chunk.expect("a chunk").expect("data")[..], &bytes[10..30]);
        assert!(next(&mut body, Duration::from_secs(10))
            .await
            .expect("in time")
            .is_none());

        // A pull that fails breaks off a stream waiting for its pieces.
        let (link, f) = pulling(tmp.path(), &bytes);
        let mut body = stream(f, digest, 0, bytes.len() as u64, metrics.clone()).into_data_stream();
        link.update(|p| {
            p.failed = Some("the hub went away".into());
            true
        });
        let end = next(&mut body, Duration::from_secs(10))
            .await
            .expect("in time");
        let e = end.expect("an item").expect_err("an error").to_string();
        assert!(e.contains("the hub went away"), "{e}");
    }

    #[test]
    fn ready_bytes_stop_at_the_first_missing_piece() {
        // The file is image bytes 150 .. 450: pieces 1 to 4.
        let f = file(150, 300);
        let mut have = PieceSet::new(5);
        assert_eq!(f.ready_until(&have, 0, 300), 0);
        have.insert(1);
        assert_eq!(f.ready_until(&have, 0, 300), 50);
        have.insert(3);
        assert_eq!(f.ready_until(&have, 0, 300), 50);
        have.insert(2);
        assert_eq!(f.ready_until(&have, 0, 300), 250);
        assert_eq!(f.ready_until(&have, 60, 120), 120);
        have.insert(4);
        assert_eq!(f.ready_until(&have, 10, 300), 300);
    }
}
