//! Image files on disk: building metainfo by streaming files through
//! [`ImageHasher`], change detection by size and mtime, piece I/O through
//! [`Metainfo::file_spans`], and whole-file SHA-256 checks.

use std::collections::BTreeSet;
use std::fs::{File, OpenOptions};
use std::io::{Read, Write};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use serde::{Deserialize, Serialize};
use sha1::{Digest, Sha1};
use sha2::Sha256;
use swarmhub_core::metainfo::{BuildError, ImageHasher, Metainfo};
use swarmhub_core::Id20;

use crate::digests::FileDigests;
use crate::handles::HandleCache;

/// Read and copy buffer size.
const CHUNK: usize = 1 << 20;

/// Alignment of `O_DIRECT` writes: memory, file offset and length.
const DIRECT_ALIGN: usize = crate::piece_buf::ALIGN;

/// Why an image could not be read, written or built.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// A file system operation failed.
    #[error("{path}: {error}")]
    Io {
        /// The file or folder.
        path: PathBuf,
        /// The OS error.
        error: std::io::Error,
    },
    /// An input path does not exist.
    #[error("{0}: no such file or directory")]
    Missing(PathBuf),
    /// An input is neither a regular file nor a folder (socket, device, symlink...).
    #[error("{0}: not a regular file or folder")]
    NotRegular(PathBuf),
    /// A file name is not valid UTF-8 or not allowed in metainfo.
    #[error("{0}: file name is not valid UTF-8")]
    BadFileName(PathBuf),
    /// An input path ends in `..` (or is `.` or `/`): it names no file or folder.
    #[error(
        "{0}: ends in `..` (or is `.` or `/`) and so names no file or folder to put in the \
         image; name the file or folder itself"
    )]
    NoFileName(PathBuf),
    /// Two inputs map to the same path inside the image.
    #[error("two inputs are both called {0:?} inside the image")]
    Duplicate(String),
    /// No files.
    #[error("the image has no files")]
    Empty,
    /// The core refused to build metainfo (bad path, too large...).
    #[error("cannot build metainfo: {0}")]
    Build(BuildError),
    /// A file changed while it was read.
    #[error("{0}: the file changed size while it was being read")]
    Changed(PathBuf),
    /// A complete file's SHA-256 does not match the metainfo.
    #[error("{0}: SHA-256 does not match the metainfo")]
    Sha256Mismatch(PathBuf),
    /// A metainfo path would leave the image folder (`..`, `.`, separators, empty).
    #[error("{0:?}: path leaves the image folder; refused")]
    OutsideImage(String),
}

impl From<BuildError> for StoreError {
    fn from(e: BuildError) -> Self {
        StoreError::Build(e)
    }
}

fn io_err(path: &Path) -> impl FnOnce(std::io::Error) -> StoreError + '_ {
    move |error| StoreError::Io {
        path: path.to_owned(),
        error,
    }
}

/// Size and modification time of a file when it was hashed: a restarted hub
/// re-hashes only images whose stamps changed.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileStamp {
    /// Path inside the image, `/`-separated.
    pub path: String,
    /// Size in bytes.
    pub len: u64,
    /// Modification time, nanoseconds since the epoch.
    pub mtime_ns: i128,
}

/// One file of an image being built: where it is and its path inside the image.
#[derive(Clone, Debug)]
pub struct SourceFile {
    /// On disk.
    pub src: PathBuf,
    /// Path components inside the image.
    pub rel: Vec<String>,
    /// Size in bytes.
    pub len: u64,
}

fn name_of(path: &Path) -> Result<String, StoreError> {
    let name = path
        .file_name()
        .ok_or_else(|| StoreError::NoFileName(path.to_owned()))?;
    name.to_str()
        .map(str::to_owned)
        .ok_or_else(|| StoreError::BadFileName(path.to_owned()))
}

/// The files of `paths` (files go in at the image root under their own name,
/// folders recursively under theirs), sorted by path inside the image.
pub fn collect_inputs(paths: &[PathBuf]) -> Result<Vec<SourceFile>, StoreError> {
    let mut out = Vec::new();
    for p in paths {
        let meta = std::fs::symlink_metadata(p).map_err(|e| {
            if e.kind() == std::io::ErrorKind::NotFound {
                StoreError::Missing(p.clone())
            } else {
                StoreError::Io {
                    path: p.clone(),
                    error: e,
                }
            }
        })?;
        let base = vec![name_of(p)?];
        if meta.is_file() {
            out.push(SourceFile {
                src: p.clone(),
                rel: base,
                len: meta.len(),
            });
        } else if meta.is_dir() {
            walk(p, &base, &mut out)?;
        } else {
            return Err(StoreError::NotRegular(p.clone()));
        }
    }
    finish_inputs(out)
}

/// The files under `dir` (an image folder), paths relative to it.
pub fn collect_dir(dir: &Path) -> Result<Vec<SourceFile>, StoreError> {
    let mut out = Vec::new();
    walk(dir, &[], &mut out)?;
    finish_inputs(out)
}

fn finish_inputs(mut out: Vec<SourceFile>) -> Result<Vec<SourceFile>, StoreError> {
    out.sort_by(|a, b| a.rel.cmp(&b.rel));
    for w in out.windows(2) {
        if w[0].rel == w[1].rel {
            return Err(StoreError::Duplicate(w[0].rel.join("/")));
        }
    }
    if out.is_empty() {
        return Err(StoreError::Empty);
    }
    Ok(out)
}

fn walk(dir: &Path, prefix: &[String], out: &mut Vec<SourceFile>) -> Result<(), StoreError> {
    let entries = std::fs::read_dir(dir).map_err(io_err(dir))?;
    for entry in entries {
        let entry = entry.map_err(io_err(dir))?;
        let path = entry.path();
        let meta = std::fs::symlink_metadata(&path).map_err(io_err(&path))?;
        let mut rel = prefix.to_vec();
        rel.push(name_of(&path)?);
        if meta.is_file() {
            out.push(SourceFile {
                src: path,
                rel,
                len: meta.len(),
            });
        } else if meta.is_dir() {
            walk(&path, &rel, out)?;
        } else {
            return Err(StoreError::NotRegular(path));
        }
    }
    Ok(())
}

/// Hash `files` into metainfo for `name`, copying each into `copy_to` (a folder)
/// on the way when given, reading each file once.
pub fn build_metainfo(
    name: &str,
    files: &[SourceFile],
    copy_to: Option<&Path>,
) -> Result<Metainfo, StoreError> {
    let list = files.iter().map(|f| (f.rel.clone(), f.len)).collect();
    let mut hasher = ImageHasher::new(name, list, None)?;
    let mut buf = vec![0u8; CHUNK];
    for f in files {
        let mut input = File::open(&f.src).map_err(io_err(&f.src))?;
        let mut output = match copy_to {
            Some(root) => {
                let dest = root.join(f.rel.join("/"));
                if let Some(parent) = dest.parent() {
                    std::fs::create_dir_all(parent).map_err(io_err(parent))?;
                }
                Some((File::create(&dest).map_err(io_err(&dest))?, dest))
            }
            None => None,
        };
        let mut seen = 0u64;
        loop {
            let n = input.read(&mut buf).map_err(io_err(&f.src))?;
            if n == 0 {
                break;
            }
            seen += n as u64;
            if seen > f.len {
                return Err(StoreError::Changed(f.src.clone()));
            }
            hasher.update(&buf[..n]);
            if let Some((out, dest)) = output.as_mut() {
                out.write_all(&buf[..n]).map_err(io_err(dest))?;
            }
        }
        if seen != f.len {
            return Err(StoreError::Changed(f.src.clone()));
        }
        if let Some((out, dest)) = output {
            out.sync_all().map_err(io_err(&dest))?;
        }
    }
    Ok(hasher.finish(None)?)
}

fn file_path(root: &Path, path: &[String]) -> PathBuf {
    let mut p = root.to_path_buf();
    for c in path {
        p.push(c);
    }
    p
}

/// Current stamps of the image's files under `root`.
pub fn stamps(root: &Path, meta: &Metainfo) -> Result<Vec<FileStamp>, StoreError> {
    meta.files
        .iter()
        .map(|f| {
            let path = file_path(root, &f.path);
            let m = std::fs::metadata(&path).map_err(|e| {
                if e.kind() == std::io::ErrorKind::NotFound {
                    StoreError::Missing(path.clone())
                } else {
                    StoreError::Io {
                        path: path.clone(),
                        error: e,
                    }
                }
            })?;
            let mtime_ns = m
                .modified()
                .ok()
                .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
                .map_or(0, |d| d.as_nanos() as i128);
            Ok(FileStamp {
                path: f.path.join("/"),
                len: m.len(),
                mtime_ns,
            })
        })
        .collect()
}

/// Check every file's SHA-256 against the metainfo.
pub fn verify_file_hashes(root: &Path, meta: &Metainfo) -> Result<(), StoreError> {
    let mut buf = vec![0u8; CHUNK];
    for f in &meta.files {
        let path = file_path(root, &f.path);
        let mut input = File::open(&path).map_err(io_err(&path))?;
        let mut h = Sha256::new();
        loop {
            let n = input.read(&mut buf).map_err(io_err(&path))?;
            if n == 0 {
                break;
            }
            h.update(&buf[..n]);
        }
        if <[u8; 32]>::from(h.finalize()) != f.sha256 {
            return Err(StoreError::Sha256Mismatch(path));
        }
    }
    Ok(())
}

/// Create `path` (and its folders) if missing and give it exactly `len` bytes
/// (sparse); the handle is closed again.
fn create_sized(path: &Path, len: u64) -> Result<(), StoreError> {
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent).map_err(io_err(parent))?;
    }
    let file = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(path)
        .map_err(io_err(path))?;
    if file.metadata().map_err(io_err(path))?.len() != len {
        file.set_len(len).map_err(io_err(path))?;
    }
    Ok(())
}

/// How many files of one image [`Storage`] keeps open at most by default.
pub const OPEN_FILES_PER_IMAGE: usize = 64;

/// Piece-level access to an image's files.
///
/// Files are opened on demand through a bounded cache of handles
/// ([`OPEN_FILES_PER_IMAGE`] by default), so an image may have far more files
/// than the process may keep open.
pub struct Storage {
    meta: Arc<Metainfo>,
    paths: Vec<PathBuf>,
    writable: bool,
    handles: Mutex<HandleCache>,
    /// Files written since the last [`Storage::sync`].
    dirty: Mutex<BTreeSet<usize>>,
    /// Each file's SHA-256 computed as pieces verify, when a pull asked for it.
    digests: Mutex<Option<FileDigests>>,
    /// Whole verified pieces are written with `O_DIRECT` until the file
    /// system refuses it once ([`Storage::write_checked`]).
    direct: AtomicBool,
}

/// `root` joined with the image path `path`, refused unless every component is
/// one plain name (no `..`, `.`, separators or NUL), so a file stays inside `root`
/// whatever metainfo says.
fn confined_path(root: &Path, path: &[String]) -> Result<PathBuf, StoreError> {
    let plain =
        |c: &String| !c.is_empty() && c != "." && c != ".." && !c.contains(['/', '\\', '\0']);
    if path.is_empty() || !path.iter().all(plain) {
        return Err(StoreError::OutsideImage(path.join("/")));
    }
    Ok(file_path(root, path))
}

impl Storage {
    /// Open the image under `root`. With `create`, make missing folders and
    /// files and give every file its exact length (sparse); without, check that
    /// every file is there with its length, for reading only.
    pub fn open(root: &Path, meta: Arc<Metainfo>, create: bool) -> Result<Storage, StoreError> {
        Self::open_with_capacity(root, meta, create, OPEN_FILES_PER_IMAGE)
    }

    /// [`Storage::open`] keeping at most `max_open` files open at once.
    pub fn open_with_capacity(
        root: &Path,
        meta: Arc<Metainfo>,
        create: bool,
        max_open: usize,
    ) -> Result<Storage, StoreError> {
        let mut paths = Vec::with_capacity(meta.files.len());
        for f in &meta.files {
            let path = confined_path(root, &f.path)?;
            if create {
                create_sized(&path, f.length)?;
            } else {
                let len = std::fs::symlink_metadata(&path)
                    .map_err(|e| {
                        if e.kind() == std::io::ErrorKind::NotFound {
                            StoreError::Missing(path.clone())
                        } else {
                            StoreError::Io {
                                path: path.clone(),
                                error: e,
                            }
                        }
                    })
                    .and_then(|m| {
                        if m.is_file() {
                            Ok(m.len())
                        } else {
                            Err(StoreError::NotRegular(path.clone()))
                        }
                    })?;
                if len != f.length {
                    return Err(StoreError::Changed(path));
                }
            }
            paths.push(path);
        }
        Ok(Storage {
            meta,
            paths,
            writable: create,
            handles: Mutex::new(HandleCache::new(max_open)),
            dirty: Mutex::new(BTreeSet::new()),
            digests: Mutex::new(None),
            direct: AtomicBool::new(create),
        })
    }

    /// The metainfo.
    pub fn meta(&self) -> &Arc<Metainfo> {
        &self.meta
    }

    /// How many of the image's files are open now (at most the cache capacity).
    pub fn open_files(&self) -> usize {
        self.handles.lock().map_or(0, |h| h.len())
    }

    /// The open handle of file `index`, opening it if needed. An error names the file.
    fn handle(&self, index: usize) -> std::io::Result<Arc<File>> {
        let path = self.paths.get(index).ok_or_else(|| {
            std::io::Error::new(
                std::io::ErrorKind::InvalidInput,
                format!("file {index} is not in image {}", self.meta.name),
            )
        })?;
        let mut cache = self
            .handles
            .lock()
            .map_err(|_| std::io::Error::other("file handle cache poisoned"))?;
        cache
            .get_or_open(index, || {
                OpenOptions::new()
                    .read(true)
                    .write(self.writable)
                    .open(path)
            })
            .map_err(|e| std::io::Error::new(e.kind(), format!("{}: {e}", path.display())))
    }

    /// Calls `f(file, path, file_offset, range in buf)` for the parts of piece
    /// bytes `begin .. begin + len`.
    fn spans(
        &self,
        piece: u32,
        begin: u32,
        len: u32,
        mut f: impl FnMut(usize, &File, u64, std::ops::Range<usize>) -> std::io::Result<()>,
    ) -> std::io::Result<()> {
        let end = begin
            .checked_add(len)
            .filter(|&e| e <= self.meta.piece_len(piece));
        let Some(end) = end else {
            return Err(std::io::Error::new(
                std::io::ErrorKind::InvalidInput,
                format!("bytes {begin}+{len} are outside piece {piece}"),
            ));
        };
        for span in self.meta.file_spans(piece) {
            let (s, e) = (span.piece_offset, span.piece_offset + span.len);
            let (lo, hi) = (s.max(begin), e.min(end));
            if lo >= hi {
                continue;
            }
            let file = self.handle(span.file_index)?;
            let file_off = span.file_offset + u64::from(lo - s);
            let range = (lo - begin) as usize..(hi - begin) as usize;
            f(span.file_index, &file, file_off, range).map_err(|e| {
                let path = self.paths[span.file_index].display();
                std::io::Error::new(e.kind(), format!("{path}: {e}"))
            })?;
        }
        Ok(())
    }

    /// Read `len` bytes of `piece` from offset `begin`.
    pub fn read(&self, piece: u32, begin: u32, len: u32) -> std::io::Result<Vec<u8>> {
        let mut buf = vec![0u8; len as usize];
        self.spans(piece, begin, len, |_, file, off, range| {
            file.read_exact_at(&mut buf[range], off)
        })?;
        Ok(buf)
    }

    /// Write `data` into `piece` at offset `begin`.
    pub fn write(&self, piece: u32, begin: u32, data: &[u8]) -> std::io::Result<()> {
        if !self.writable {
            return Err(std::io::Error::new(
                std::io::ErrorKind::PermissionDenied,
                format!("image {} is open read-only", self.meta.name),
            ));
        }
        let len = u32::try_from(data.len()).map_err(std::io::Error::other)?;
        let mut written = Vec::new();
        let r = self.spans(piece, begin, len, |index, file, off, range| {
            written.push(index);
            file.write_all_at(&data[range], off)
        });
        if let Ok(mut dirty) = self.dirty.lock() {
            dirty.extend(written);
        }
        r
    }

    /// Does the stored piece hash to its SHA-1 in the metainfo?
    pub fn verify(&self, piece: u32) -> std::io::Result<bool> {
        let data = self.read(piece, 0, self.meta.piece_len(piece))?;
        let ok = self.piece_hash_matches(piece, &data);
        if ok {
            self.verified(piece, Some(bytes::Bytes::from(data)));
        }
        Ok(ok)
    }

    /// Do `data` hash to `piece`'s SHA-1 (and have its length)?
    pub fn piece_hash_matches(&self, piece: u32, data: &[u8]) -> bool {
        if data.len() != self.meta.piece_len(piece) as usize {
            return false;
        }
        let digest: [u8; 20] = Sha1::digest(data).into();
        self.meta.pieces.get(piece as usize) == Some(&Id20::new(digest))
    }

    /// Check a whole piece held in memory against its SHA-1 and, only when
    /// it matches, write it (one positioned write per file it spans). A piece
    /// that fails is never written, so a bad peer cannot spoil what is on disk.
    pub fn write_verified(&self, piece: u32, data: bytes::Bytes) -> std::io::Result<bool> {
        if !self.piece_hash_matches(piece, &data) {
            return Ok(false);
        }
        self.write_checked(piece, data)?;
        Ok(true)
    }

    /// Write a whole piece that [`Storage::piece_hash_matches`] accepted.
    ///
    /// When `data` starts on a 4 KiB boundary (pieces assembled in memory
    /// do), the 4 KiB-aligned part of each file span is written with
    /// `O_DIRECT`, straight from `data` to the device: no copy into the page
    /// cache and no fresh page-cache pages to fill, which cost a client about
    /// half its CPU at 4 GiB on a virtual machine (see node/bench/README.md),
    /// and the final sync has little left to flush. The rest (unaligned file
    /// offsets of a multi-file image, a file's tail) goes through the page
    /// cache, and so does everything once the file system refuses `O_DIRECT`.
    /// The kernel keeps both paths coherent for readers of the files.
    pub fn write_checked(&self, piece: u32, data: bytes::Bytes) -> std::io::Result<()> {
        if self.direct.load(Ordering::Relaxed)
            && (data.as_ptr() as usize).is_multiple_of(DIRECT_ALIGN)
        {
            self.write_piece_direct(piece, &data)?;
        } else {
            self.write(piece, 0, &data)?;
        }
        self.verified(piece, Some(data));
        Ok(())
    }

    fn write_piece_direct(&self, piece: u32, data: &[u8]) -> std::io::Result<()> {
        let len = u32::try_from(data.len()).map_err(std::io::Error::other)?;
        let mut written = Vec::new();
        let r = self.spans(piece, 0, len, |index, file, off, range| {
            written.push(index);
            let buf = &data[range.clone()];
            let aligned =
                off.is_multiple_of(DIRECT_ALIGN as u64) && range.start.is_multiple_of(DIRECT_ALIGN);
            let head = if aligned && self.direct.load(Ordering::Relaxed) {
                buf.len() / DIRECT_ALIGN * DIRECT_ALIGN
            } else {
                0
            };
            if head > 0 {
                if let Err(e) = self.write_direct(index, &buf[..head], off) {
                    tracing::debug!(
                        "{}: O_DIRECT write refused ({e}); writing through the page cache",
                        self.paths[index].display()
                    );
                    self.direct.store(false, Ordering::Relaxed);
                    file.write_all_at(&buf[..head], off)?;
                }
            }
            file.write_all_at(&buf[head..], off + head as u64)
        });
        if let Ok(mut dirty) = self.dirty.lock() {
            // Still synced at the end: the device cache and the extents
            // that the writes allocated.
            dirty.extend(written);
        }
        r
    }

    /// One `O_DIRECT` write through a handle opened for it (a handle per
    /// piece span costs one open; keeping them would double the open files).
    fn write_direct(&self, index: usize, buf: &[u8], off: u64) -> std::io::Result<()> {
        use std::os::unix::fs::OpenOptionsExt;
        let direct = rustix::fs::OFlags::DIRECT.bits() as i32;
        let file = OpenOptions::new()
            .write(true)
            .custom_flags(direct)
            .open(&self.paths[index])?;
        file.write_all_at(buf, off)
    }

    fn verified(&self, piece: u32, data: Option<bytes::Bytes>) {
        if let Ok(d) = self.digests.lock() {
            if let Some(d) = d.as_ref() {
                d.feed(piece, data);
            }
        }
    }

    /// Compute each file's SHA-256 from now on as pieces verify (through
    /// [`Storage::verify`] and [`Storage::write_verified`]); pieces verified
    /// before this call are not counted, so call it before any verify.
    pub fn stream_file_digests(self: &Arc<Self>) -> std::io::Result<()> {
        let d = FileDigests::start(Arc::downgrade(self), self.meta.clone(), self.paths.clone())?;
        if let Ok(mut slot) = self.digests.lock() {
            *slot = Some(d);
        }
        Ok(())
    }

    /// The streamed SHA-256 verdict: `Some(Ok)` when every piece was hashed in
    /// file order and every file matches, `Some(Err)` naming a file that does
    /// not, `None` when streaming was off or incomplete (check in a full pass
    /// with [`verify_file_hashes`]).
    pub fn finish_file_digests(&self) -> Option<Result<(), StoreError>> {
        let d = self.digests.lock().ok()?.take()?;
        d.finish().into()
    }

    /// Flush written data to disk: every file written since the last sync, open
    /// or not (fsync through a new handle flushes the file's pages too).
    pub fn sync(&self) -> std::io::Result<()> {
        let dirty = match self.dirty.lock() {
            Ok(mut d) => std::mem::take(&mut *d),
            Err(_) => return Err(std::io::Error::other("dirty file set poisoned")),
        };
        let mut left = dirty.iter();
        while let Some(&index) = left.next() {
            let synced = self.handle(index).and_then(|f| {
                f.sync_data().map_err(|e| {
                    std::io::Error::new(e.kind(), format!("{}: {e}", self.paths[index].display()))
                })
            });
            if let Err(e) = synced {
                // Keep what is not yet synced for the next call.
                if let Ok(mut d) = self.dirty.lock() {
                    d.insert(index);
                    d.extend(left.copied());
                }
                return Err(e);
            }
        }
        Ok(())
    }

    /// Image bytes `offset .. offset + len` (web seed), at most `max` bytes.
    pub fn read_range(&self, offset: u64, len: u64) -> std::io::Result<Vec<u8>> {
        let geometry = self.meta.geometry();
        let end = offset.saturating_add(len).min(geometry.total_length);
        let mut out = Vec::with_capacity(end.saturating_sub(offset) as usize);
        let mut pos = offset;
        while pos < end {
            let piece = (pos / u64::from(geometry.piece_length)) as u32;
            let start = geometry.piece_offset(piece);
            let begin = (pos - start) as u32;
            let take = (u64::from(geometry.piece_len(piece) - begin)).min(end - pos) as u32;
            out.extend_from_slice(&self.read(piece, begin, take)?);
            pos += u64::from(take);
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write_tree(root: &Path) -> Vec<PathBuf> {
        std::fs::create_dir_all(root.join("d/sub")).expect("mkdir");
        let a: Vec<u8> = (0..300_000u32).map(|i| (i % 251) as u8).collect();
        let b: Vec<u8> = (0..123_457u32).map(|i| (i % 13) as u8).collect();
        std::fs::write(root.join("d/a.bin"), &a).expect("write");
        std::fs::write(root.join("d/sub/b.bin"), &b).expect("write");
        std::fs::write(root.join("d/empty"), b"").expect("write");
        vec![root.join("d")]
    }

    #[test]
    fn built_metainfo_verifies_and_crosses_file_boundaries() {
        let dir = tempfile::tempdir().expect("tempdir");
        let inputs = collect_inputs(&write_tree(dir.path())).expect("inputs");
        assert_eq!(inputs.len(), 3);
        let copy = dir.path().join("copy");
        let meta = Arc::new(build_metainfo("t:1", &inputs, Some(&copy)).expect("build"));
        assert_eq!(meta.total_length(), 423_457);
        verify_file_hashes(&copy, &meta).expect("copies match");
        let st = Storage::open(&copy, meta.clone(), false).expect("open");
        for p in 0..meta.num_pieces() {
            assert!(st.verify(p).expect("verify"), "piece {p}");
        }
        // A fresh store filled block by block from the copy verifies too.
        let fresh = dir.path().join("fresh");
        let w = Storage::open(&fresh, meta.clone(), true).expect("create");
        assert!(!w.verify(0).expect("verify"));
        for p in 0..meta.num_pieces() {
            let len = meta.piece_len(p);
            let mut begin = 0;
            while begin < len {
                let n = (len - begin).min(16384);
                w.write(p, begin, &st.read(p, begin, n).expect("read"))
                    .expect("write");
                begin += n;
            }
        }
        verify_file_hashes(&fresh, &meta).expect("fresh matches");
        let range = w.read_range(299_990, 20).expect("range");
        assert_eq!(&range[..10], &st.read_range(299_990, 10).expect("r")[..]);
        assert!(st.read(0, 0, meta.piece_len(0) + 1).is_err());
    }

    #[test]
    fn file_digests_stream_while_pieces_verify_in_any_order() {
        let dir = tempfile::tempdir().expect("tempdir");
        let inputs = collect_inputs(&write_tree(dir.path())).expect("inputs");
        let copy = dir.path().join("copy");
        let meta = Arc::new(build_metainfo("t:1", &inputs, Some(&copy)).expect("build"));
        let src = Storage::open(&copy, meta.clone(), false).expect("open");
        let piece = |p: u32| bytes::Bytes::from(src.read(p, 0, meta.piece_len(p)).expect("read"));
        let n = meta.num_pieces();
        assert!(n >= 2, "the tree spans several pieces");

        // Pieces arrive last first, one of them through a read-back verify.
        let fresh = Arc::new(Storage::open(&dir.path().join("fresh"), meta.clone(), true).unwrap());
        fresh.stream_file_digests().expect("start");
        assert!(
            !fresh.write_verified(0, piece(1)).expect("hash"),
            "wrong bytes"
        );
        assert_eq!(
            fresh.read(0, 0, 64).unwrap(),
            vec![0u8; 64],
            "a bad piece is not written"
        );
        for p in (1..n).rev() {
            assert!(fresh.write_verified(p, piece(p)).expect("write"));
        }
        fresh.write(0, 0, &piece(0)).expect("write");
        assert!(fresh.verify(0).expect("verify"));
        assert!(matches!(fresh.finish_file_digests(), Some(Ok(()))));
        assert!(
            fresh.finish_file_digests().is_none(),
            "the verdict is taken once"
        );

        // A piece missing: no verdict, the caller checks in a full pass.
        let part = Arc::new(Storage::open(&dir.path().join("part"), meta.clone(), true).unwrap());
        part.stream_file_digests().expect("start");
        for p in 0..n - 1 {
            assert!(part.write_verified(p, piece(p)).expect("write"));
        }
        assert!(part.finish_file_digests().is_none());

        // Pieces that pass SHA-1 but a file whose SHA-256 differs: named.
        let mut bad = (*meta).clone();
        bad.files[1].sha256[0] ^= 1;
        let bad = Arc::new(bad);
        let other = Arc::new(Storage::open(&dir.path().join("bad"), bad.clone(), true).unwrap());
        other.stream_file_digests().expect("start");
        for p in 0..n {
            assert!(other.write_verified(p, piece(p)).expect("write"));
        }
        match other.finish_file_digests() {
            Some(Err(StoreError::Sha256Mismatch(path))) => {
                assert!(path.ends_with(bad.files[1].path.join("/")), "{path:?}")
            }
            v => panic!("expected a mismatch, got {v:?}"),
        }
    }

    #[test]
    fn aligned_pieces_written_direct_read_back_the_same() {
        let dir = tempfile::tempdir().expect("tempdir");
        let inputs = collect_inputs(&write_tree(dir.path())).expect("inputs");
        let copy = dir.path().join("copy");
        let meta = Arc::new(build_metainfo("t:1", &inputs, Some(&copy)).expect("build"));
        let src = Storage::open(&copy, meta.clone(), false).expect("open");
        let fresh = Arc::new(Storage::open(&dir.path().join("fresh"), meta.clone(), true).unwrap());
        fresh.stream_file_digests().expect("start");
        // Piece 0 first half-written through the page cache (an assembly
        // given up) and read, so stale cached pages would show below.
        fresh.write(0, 0, &[0xAA; 16384]).expect("write");
        assert_eq!(fresh.read(0, 0, 16).unwrap(), vec![0xAA; 16]);
        for p in 0..meta.num_pieces() {
            // Piece 1 spans a.bin's unaligned tail and b.bin at an
            // unaligned offset: both paths in one piece.
            let want = src.read(p, 0, meta.piece_len(p)).expect("read");
            let mut buf = crate::piece_buf::PieceBuf::take(want.len());
            buf.copy_from_slice(&want);
            let data = buf.into_bytes();
            assert_eq!(data.as_ptr() as usize % DIRECT_ALIGN, 0);
            assert!(fresh.piece_hash_matches(p, &data));
            fresh.write_checked(p, data).expect("write");
            assert_eq!(
                fresh.read(p, 0, meta.piece_len(p)).unwrap(),
                want,
                "piece {p}"
            );
        }
        println!(
            "O_DIRECT {} on this file system",
            if fresh.direct.load(Ordering::Relaxed) {
                "used"
            } else {
                "refused"
            }
        );
        fresh.sync().expect("sync");
        assert!(matches!(fresh.finish_file_digests(), Some(Ok(()))));
        verify_file_hashes(&dir.path().join("fresh"), &meta).expect("files match");
        for (f, path) in meta.files.iter().zip(&fresh.paths) {
            assert_eq!(std::fs::metadata(path).unwrap().len(), f.length);
        }
    }

    #[test]
    fn corrupt_file_is_caught() {
        let dir = tempfile::tempdir().expect("tempdir");
        let inputs = collect_inputs(&write_tree(dir.path())).expect("inputs");
        let copy = dir.path().join("copy");
        let meta = build_metainfo("t:1", &inputs, Some(&copy)).expect("build");
        std::fs::write(copy.join("d/sub/b.bin"), vec![1u8; 123_457]).expect("write");
        assert!(matches!(
            verify_file_hashes(&copy, &meta),
            Err(StoreError::Sha256Mismatch(_))
        ));
        assert!(matches!(
            collect_inputs(&[dir.path().join("nope")]),
            Err(StoreError::Missing(_))
        ));
    }

    #[test]
    fn paths_that_name_no_file_are_refused_by_name() {
        let dir = tempfile::tempdir().expect("tempdir");
        write_tree(dir.path());
        for p in [
            dir.path().join("d/.."),
            PathBuf::from("."),
            PathBuf::from("/"),
        ] {
            let err = collect_inputs(std::slice::from_ref(&p)).expect_err("refused");
            let msg = err.to_string();
            assert!(matches!(err, StoreError::NoFileName(_)), "{msg}");
            assert!(msg.starts_with(&p.display().to_string()), "{msg}");
            assert!(!msg.contains("UTF-8"), "{msg}");
        }
    }

    /// An image of 40 small files served through a cache of 3 handles: every
    /// piece round-trips, never more than 3 files are open, and sync flushes
    /// files that were evicted after being written.
    #[test]
    fn many_files_through_a_small_handle_cache() {
        let dir = tempfile::tempdir().expect("tempdir");
        let src = dir.path().join("src");
        std::fs::create_dir_all(&src).expect("mkdir");
        for i in 0..40u32 {
            let body: Vec<u8> = (0..(1000 + i * 37)).map(|j| (j ^ i) as u8).collect();
            std::fs::write(src.join(format!("f{i:03}")), body).expect("write");
        }
        let inputs = collect_inputs(&[src]).expect("inputs");
        let copy = dir.path().join("copy");
        let meta = Arc::new(build_metainfo("m:1", &inputs, Some(&copy)).expect("build"));
        let st = Storage::open_with_capacity(&copy, meta.clone(), false, 3).expect("open");
        assert_eq!(st.open_files(), 0, "nothing is opened up front");
        let fresh = dir.path().join("fresh");
        let w = Storage::open_with_capacity(&fresh, meta.clone(), true, 3).expect("create");
        for p in 0..meta.num_pieces() {
            let data = st.read(p, 0, meta.piece_len(p)).expect("read");
            w.write(p, 0, &data).expect("write");
            assert!(st.open_files() <= 3 && w.open_files() <= 3);
        }
        w.sync().expect("sync");
        assert!(w.dirty.lock().expect("dirty").is_empty());
        verify_file_hashes(&fresh, &meta).expect("fresh matches");
        assert!(
            st.write(0, 0, b"x").is_err(),
            "read-only storage refused a write"
        );
    }

    #[test]
    fn hostile_paths_are_refused() {
        let dir = tempfile::tempdir().expect("tempdir");
        let inputs = collect_inputs(&write_tree(dir.path())).expect("inputs");
        let copy = dir.path().join("copy");
        let good = build_metainfo("t:1", &inputs, Some(&copy)).expect("build");
        for bad in [&["..", "etc"][..], &["d", "."], &["a/b"], &[""], &[]] {
            let mut meta = good.clone();
            meta.files[0].path = bad.iter().map(|c| c.to_string()).collect();
            for create in [false, true] {
                let r = Storage::open(&copy, Arc::new(meta.clone()), create);
                assert!(
                    matches!(r, Err(StoreError::OutsideImage(_))),
                    "{bad:?} create={create} was not refused"
                );
            }
        }
        assert!(!dir.path().join("etc").exists());
    }
}
