//! BitTorrent v1 metainfo (`.torrent`) for swarmhub images.
//!
//! An image (`NAME:TAG`) is one or more files. Its metainfo is BEP 3 multi-file
//! metainfo (the multi-file form even for one file), private (BEP 27, `private = 1`),
//! where every file entry also carries `sha256`: 32 raw bytes of the file's SHA-256,
//! checked by clients once the file is complete.
//!
//! - Build with [`ImageHasher`] (the driver reads the files and feeds the bytes) or,
//!   in the simulator, [`Metainfo::synthetic`].
//! - Encode with [`Metainfo::to_bytes`]; parse hostile bytes with
//!   [`Metainfo::from_bytes`] / [`Metainfo::from_bytes_with_limits`].
//! - Map pieces onto files with [`Metainfo::file_spans`]; piece and block arithmetic
//!   without the file list is [`Geometry`].
//!
//! Parsing accepts only canonical bencode, and only an info dictionary that is
//! byte-for-byte what this module writes (no unknown keys). So the info hash, which
//! is the SHA-1 of the info dictionary's bytes as they appear in the input, always
//! identifies exactly the fields [`Metainfo`] carries, and `to_bytes` of a parsed
//! metainfo keeps its info hash. Keys outside `info` other than `announce` are ignored.
//!
//! All bencode goes through librqbit-bencode; a bounded iterative pre-scan (module
//! `scan`) first rejects numbers that would overflow its parser, and deep nesting.

mod codec;
mod error;
mod geometry;
mod hasher;
mod scan;
mod validate;

#[cfg(test)]
mod reject_tests;
#[cfg(test)]
mod tests;

use librqbit_core::hash_id::Id20;
use rand::RngExt;

pub use error::{BencodeProblem, BuildError, MetainfoError, PathProblem};
pub use geometry::{Geometry, BLOCK_LEN};
pub use hasher::ImageHasher;

/// Smallest piece length accepted in metainfo: 16 KiB (one block).
pub const MIN_PIECE_LENGTH: u32 = 16 * 1024;
/// Largest piece length accepted in metainfo: 16 MiB.
pub const MAX_PIECE_LENGTH: u32 = 16 * 1024 * 1024;

/// Smallest piece length [`piece_length_for`] picks.
const AUTO_MIN_PIECE_LENGTH: u32 = 256 * 1024;
/// Largest piece length [`piece_length_for`] picks.
const AUTO_MAX_PIECE_LENGTH: u32 = 4 * 1024 * 1024;
/// [`piece_length_for`] aims at no more pieces than this (and so at least half).
const AUTO_MAX_PIECES: u64 = 2000;

/// The piece length for an image of `total_length` bytes: the smallest power of two
/// from 256 KiB that gives at most 2,000 pieces (so 1,000 to 2,000 pieces), but no
/// more than 4 MiB: images under 500 MiB get 256 KiB, images over 8,000 MiB get
/// 4 MiB and more than 2,000 pieces.
pub fn piece_length_for(total_length: u64) -> u32 {
    let mut piece_length = AUTO_MIN_PIECE_LENGTH;
    while piece_length < AUTO_MAX_PIECE_LENGTH
        && total_length.div_ceil(u64::from(piece_length)) > AUTO_MAX_PIECES
    {
        piece_length *= 2;
    }
    piece_length
}

/// The bounded pre-scan [`Metainfo::from_bytes`] runs before any bencode reaches
/// librqbit-bencode: `Ok` means `bytes` is exactly one canonical bencode value (every
/// integer fits `i64`, every string fits the input, dictionary keys unique and sorted)
/// nested at most `max_depth` containers deep. Public so the fuzz targets can check
/// that promise against the decoder; iterative, linear time.
pub fn scan_bencode(bytes: &[u8], max_depth: usize) -> Result<(), MetainfoError> {
    scan::check_bencode(bytes, max_depth).map_err(MetainfoError::from)
}

/// Bounds applied to hostile metainfo. [`Default`] gives the values documented on
/// each field; [`ImageHasher`] builds within the defaults.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MetainfoLimits {
    /// Largest input accepted, in bytes. Default 64 MiB.
    pub max_input_bytes: usize,
    /// Deepest nesting of lists and dictionaries (the top-level dictionary is
    /// depth 1; swarmhub metainfo needs 5). Default 32. librqbit-bencode's decoder
    /// recurses once per level, so keep this small.
    pub max_depth: usize,
    /// Most pieces. Default 1,000,000.
    pub max_pieces: u64,
    /// Largest image, in bytes. Default 1 TiB.
    pub max_total_length: u64,
    /// Most files in one image. Default 100,000.
    pub max_files: usize,
    /// Longest file path, in bytes, components plus `/` separators. Default 4,096.
    pub max_path_bytes: usize,
    /// Longest single path component or image name, in bytes. Default 255.
    pub max_component_bytes: usize,
}

impl Default for MetainfoLimits {
    fn default() -> Self {
        Self {
            max_input_bytes: 64 << 20,
            max_depth: 32,
            max_pieces: 1_000_000,
            max_total_length: 1 << 40,
            max_files: 100_000,
            max_path_bytes: 4096,
            max_component_bytes: 255,
        }
    }
}

/// One file of an image.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ImageFile {
    /// Path components relative to the image root (validated: no `..`, separators,
    /// drive prefixes, ...).
    pub path: Vec<String>,
    /// Size in bytes.
    pub length: u64,
    /// SHA-256 of the whole file.
    pub sha256: [u8; 32],
}

/// The metainfo of one image.
///
/// `info_hash` is computed when the value is built or parsed; changing other fields
/// afterwards does not update it (build a new value instead).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Metainfo {
    /// SHA-1 of the bencoded info dictionary: the swarm's identity.
    pub info_hash: Id20,
    /// Image name, normally `NAME:TAG`. A label, not a path.
    pub name: String,
    /// Length of every piece but the last, in bytes (power of two).
    pub piece_length: u32,
    /// SHA-1 of each piece.
    pub pieces: Vec<Id20>,
    /// The files, in the order their bytes are laid out in pieces.
    pub files: Vec<ImageFile>,
    /// Tracker announce URL (the hub), if any.
    pub announce: Option<String>,
    /// BEP 27 private flag; always true for parsed or built metainfo.
    pub private: bool,
}

/// A run of bytes that is both in one piece and in one file: piece bytes
/// `piece_offset .. piece_offset + len` are file bytes `file_offset .. file_offset + len`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct FileSpan {
    /// Index into [`Metainfo::files`].
    pub file_index: usize,
    /// Offset in the file.
    pub file_offset: u64,
    /// Offset in the piece.
    pub piece_offset: u32,
    /// Number of bytes (never 0).
    pub len: u32,
}

/// Iterator over the [`FileSpan`]s of one piece, in order; see [`Metainfo::file_spans`].
#[derive(Debug, Clone)]
pub struct FileSpans<'a> {
    files: &'a [ImageFile],
    file_index: usize,
    file_offset: u64,
    piece_offset: u32,
    remaining: u32,
}

impl Iterator for FileSpans<'_> {
    type Item = FileSpan;

    fn next(&mut self) -> Option<FileSpan> {
        while self.remaining > 0 {
            let file = self.files.get(self.file_index)?;
            let left = file.length.saturating_sub(self.file_offset);
            if left == 0 {
                self.file_index += 1;
                self.file_offset = 0;
                continue;
            }
            // `len <= remaining`, a u32.
            let len = left.min(u64::from(self.remaining)) as u32;
            let span = FileSpan {
                file_index: self.file_index,
                file_offset: self.file_offset,
                piece_offset: self.piece_offset,
                len,
            };
            self.file_offset += u64::from(len);
            self.piece_offset += len;
            self.remaining -= len;
            return Some(span);
        }
        None
    }
}

impl Metainfo {
    /// Parse and validate a `.torrent` with the default [`MetainfoLimits`].
    pub fn from_bytes(bytes: &[u8]) -> Result<Metainfo, MetainfoError> {
        Self::from_bytes_with_limits(bytes, &MetainfoLimits::default())
    }

    /// Parse and validate a `.torrent` within `limits`. Never panics; every
    /// rejection is a [`MetainfoError`] naming the problem.
    pub fn from_bytes_with_limits(
        bytes: &[u8],
        limits: &MetainfoLimits,
    ) -> Result<Metainfo, MetainfoError> {
        codec::parse(bytes, limits)
    }

    /// The whole `.torrent`, bencoded (`announce` if set, and `info`).
    pub fn to_bytes(&self) -> Vec<u8> {
        codec::torrent_bytes(&self.info_bytes(), self.announce.as_deref())
    }

    /// The bencoded info dictionary in canonical form; its SHA-1 is the info hash.
    pub fn info_bytes(&self) -> Vec<u8> {
        codec::info_bytes(
            &self.name,
            self.piece_length,
            &self.pieces,
            &self.files,
            self.private,
        )
    }

    /// Image size in bytes: the sum of the file lengths (saturating).
    pub fn total_length(&self) -> u64 {
        self.files
            .iter()
            .fold(0u64, |sum, f| sum.saturating_add(f.length))
    }

    /// The piece layout.
    pub fn geometry(&self) -> Geometry {
        Geometry::new(self.total_length(), self.piece_length)
    }

    /// Number of pieces.
    pub fn num_pieces(&self) -> u32 {
        self.geometry().num_pieces()
    }

    /// Length of piece `index` (the last piece may be shorter; 0 if out of range).
    pub fn piece_len(&self, index: u32) -> u32 {
        self.geometry().piece_len(index)
    }

    /// The file byte ranges that make up piece `index`, in order, so a driver can read
    /// or write a piece that crosses file boundaries. Empty files never appear (the
    /// driver creates them on its own); an out-of-range index yields nothing. Finding
    /// the first file walks the file list, O(files).
    pub fn file_spans(&self, index: u32) -> FileSpans<'_> {
        let geometry = self.geometry();
        let mut spans = FileSpans {
            files: &self.files,
            file_index: 0,
            file_offset: 0,
            piece_offset: 0,
            remaining: geometry.piece_len(index),
        };
        if spans.remaining == 0 {
            return spans;
        }
        let mut start = geometry.piece_offset(index);
        for file in &self.files {
            if start < file.length {
                break;
            }
            start -= file.length;
            spans.file_index += 1;
        }
        spans.file_offset = start;
        spans
    }

    /// Metainfo for a simulated image of `total_length` bytes in one file, without
    /// hashing any data: piece and file hashes are deterministic pseudo-random bytes
    /// drawn from `seed`, so they verify nothing. The info hash is the real SHA-1 of
    /// the resulting info dictionary, so `to_bytes`/`from_bytes` round-trip.
    ///
    /// `piece_length` 0 means [`piece_length_for`]`(total_length)`; any other value is
    /// used as given, unvalidated, so the simulator can explore odd sizes.
    pub fn synthetic(name: &str, total_length: u64, piece_length: u32, seed: u64) -> Metainfo {
        let piece_length = if piece_length == 0 {
            piece_length_for(total_length)
        } else {
            piece_length
        };
        let mut rng = crate::rng::from_seed(seed);
        let num_pieces = Geometry::new(total_length, piece_length).num_pieces();
        let pieces = (0..num_pieces)
            .map(|_| Id20::new(rng.random::<[u8; 20]>()))
            .collect();
        let mut meta = Metainfo {
            info_hash: Id20::default(),
            name: name.to_owned(),
            piece_length,
            pieces,
            files: vec![ImageFile {
                path: vec!["synthetic.bin".to_owned()],
                length: total_length,
                sha256: rng.random(),
            }],
            announce: None,
            private: true,
        };
        meta.info_hash = codec::sha1_id(&meta.info_bytes());
        meta
    }
}
