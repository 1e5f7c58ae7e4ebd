//! Building metainfo from file contents streamed in by the driver.

use librqbit_core::hash_id::Id20;
use sha1::{Digest, Sha1};
use sha2::Sha256;

use super::codec::{info_bytes, sha1_id};
use super::error::{BuildError, MetainfoError};
use super::validate::{check_files, check_name, check_piece_length};
use super::{piece_length_for, Geometry, ImageFile, Metainfo, MetainfoLimits};

/// Builds [`Metainfo`] for an image without touching the file system: the driver
/// reads the files and feeds their bytes, in order, to [`update`](Self::update).
///
/// ```
/// # use swarmhub_core::metainfo::ImageHasher;
/// let files = vec![(vec!["a.txt".to_owned()], 3), (vec!["b".to_owned(), "c".to_owned()], 2)];
/// let mut hasher = ImageHasher::new("demo:1", files, None)?;
/// hasher.update(b"abc");
/// hasher.update(b"de");
/// let meta = hasher.finish(Some("https://hub.example/announce".to_owned()))?;
/// assert_eq!(meta.total_length(), 5);
/// # Ok::<(), swarmhub_core::metainfo::BuildError>(())
/// ```
#[derive(Debug, Clone)]
pub struct ImageHasher {
    name: String,
    piece_length: u32,
    /// The files; `sha256` is filled in as each file completes.
    files: Vec<ImageFile>,
    total_length: u64,
    /// Bytes fed so far, including any past the declared total.
    fed: u64,
    pieces: Vec<Id20>,
    piece: Sha1,
    piece_filled: u32,
    file: Sha256,
    /// The file the next byte belongs to; `files.len()` once all are complete.
    file_index: usize,
    file_filled: u64,
}

impl ImageHasher {
    /// Start building an image called `name` from `files` (path components relative
    /// to the image root, and length in bytes), in the order their bytes will be fed.
    ///
    /// `piece_length` defaults to [`piece_length_for`] the total size. The name,
    /// paths, sizes and piece length must pass the same checks as
    /// [`Metainfo::from_bytes`] with default [`MetainfoLimits`].
    pub fn new(
        name: &str,
        files: Vec<(Vec<String>, u64)>,
        piece_length: Option<u32>,
    ) -> Result<Self, BuildError> {
        let limits = MetainfoLimits::default();
        check_name(name, &limits)?;
        let files: Vec<ImageFile> = files
            .into_iter()
            .map(|(path, length)| ImageFile {
                path,
                length,
                sha256: [0; 32],
            })
            .collect();
        let total_length = check_files(&files, &limits)?;
        let piece_length = match piece_length {
            Some(p) => check_piece_length(i64::from(p))?,
            None => piece_length_for(total_length),
        };
        let count = total_length.div_ceil(u64::from(piece_length));
        if count > limits.max_pieces {
            return Err(MetainfoError::TooManyPieces {
                count,
                limit: limits.max_pieces,
            }
            .into());
        }
        Ok(Self {
            name: name.to_owned(),
            piece_length,
            files,
            total_length,
            fed: 0,
            pieces: Vec::with_capacity(usize::try_from(count).unwrap_or(0)),
            piece: Sha1::new(),
            piece_filled: 0,
            file: Sha256::new(),
            file_index: 0,
            file_filled: 0,
        })
    }

    /// The piece layout the image will have.
    pub fn geometry(&self) -> Geometry {
        Geometry::new(self.total_length, self.piece_length)
    }

    /// Feed the next bytes of the image: the files' contents concatenated in the
    /// order given to [`new`](Self::new), in chunks of any size. Bytes past the
    /// declared total are counted (so [`finish`](Self::finish) fails) but not hashed.
    pub fn update(&mut self, bytes: &[u8]) {
        self.fed = self.fed.saturating_add(bytes.len() as u64);
        let mut rest = bytes;
        while !rest.is_empty() {
            self.close_full_files();
            let Some(file) = self.files.get(self.file_index) else {
                return;
            };
            let file_left = file.length - self.file_filled;
            let piece_left = self.piece_length - self.piece_filled;
            let take = file_left.min(u64::from(piece_left)).min(rest.len() as u64);
            // `take <= rest.len()` and `take <= piece_left`, so both casts are exact.
            let (chunk, tail) = rest.split_at(take as usize);
            self.piece.update(chunk);
            self.file.update(chunk);
            self.piece_filled += take as u32;
            self.file_filled += take;
            if self.piece_filled == self.piece_length {
                self.close_piece();
            }
            rest = tail;
        }
    }

    /// Finish: check that exactly the declared bytes were fed, and produce the
    /// metainfo (always private, BEP 27) with the given announce URL.
    pub fn finish(mut self, announce: Option<String>) -> Result<Metainfo, BuildError> {
        if self.fed != self.total_length {
            return Err(BuildError::LengthMismatch {
                declared: self.total_length,
                fed: self.fed,
            });
        }
        // Trailing empty files complete here.
        self.close_full_files();
        if self.piece_filled > 0 {
            self.close_piece();
        }
        let info = info_bytes(
            &self.name,
            self.piece_length,
            &self.pieces,
            &self.files,
            true,
        );
        Ok(Metainfo {
            info_hash: sha1_id(&info),
            name: self.name,
            piece_length: self.piece_length,
            pieces: self.pieces,
            files: self.files,
            announce,
            private: true,
        })
    }

    /// Record the SHA-256 of every file whose bytes are all in (empty files at once).
    fn close_full_files(&mut self) {
        while let Some(file) = self.files.get_mut(self.file_index) {
            if self.file_filled < file.length {
                return;
            }
            file.sha256 = self.file.finalize_reset().into();
            self.file_index += 1;
            self.file_filled = 0;
        }
    }

    fn close_piece(&mut self) {
        self.pieces
            .push(Id20::new(self.piece.finalize_reset().into()));
        self.piece_filled = 0;
    }
}
