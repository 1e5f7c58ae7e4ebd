//! Errors of parsing and building metainfo.

/// Why a `.torrent` was rejected by [`Metainfo::from_bytes`](super::Metainfo::from_bytes).
///
/// Every variant names the offending key, file or limit, so an operator can tell a
/// corrupt file from a hostile one and a limit that needs raising.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum MetainfoError {
    /// The input is larger than [`MetainfoLimits::max_input_bytes`](super::MetainfoLimits).
    #[error("metainfo is {len} bytes, over the limit of {limit} bytes")]
    InputTooLarge {
        /// Size of the input.
        len: usize,
        /// The configured limit.
        limit: usize,
    },
    /// The input is not well-formed (canonical) bencode.
    #[error("metainfo is not valid bencode at byte {offset}: {problem}")]
    NotBencode {
        /// Byte offset where the problem was found.
        offset: usize,
        /// What is wrong there.
        problem: BencodeProblem,
    },
    /// Lists and dictionaries are nested deeper than
    /// [`MetainfoLimits::max_depth`](super::MetainfoLimits).
    #[error("metainfo nests lists/dictionaries deeper than {limit} levels (at byte {offset})")]
    TooDeep {
        /// Byte offset of the container that went over the limit.
        offset: usize,
        /// The configured limit.
        limit: usize,
    },
    /// A complete bencode value is followed by more bytes.
    #[error(
        "metainfo has trailing bytes after the top-level dictionary, starting at byte {offset}"
    )]
    TrailingBytes {
        /// Offset of the first trailing byte.
        offset: usize,
    },
    /// librqbit-bencode refused input that passed our own well-formedness scan.
    #[error("metainfo could not be decoded: {detail}")]
    Decode {
        /// The decoder's message.
        detail: String,
    },
    /// A required key is absent.
    #[error("metainfo key `{key}` is missing")]
    MissingKey {
        /// Dotted key path, e.g. `info.files[2].length`.
        key: String,
    },
    /// A key holds a value of the wrong bencode type or sign.
    #[error("metainfo key `{key}` must be {expected}")]
    WrongType {
        /// Dotted key path.
        key: String,
        /// What the value must be.
        expected: &'static str,
    },
    /// A text value is not UTF-8.
    #[error("metainfo key `{key}` is not valid UTF-8")]
    NotUtf8 {
        /// Dotted key path.
        key: String,
    },
    /// `piece length` is not a power of two.
    #[error("piece length {piece_length} is not a power of two")]
    PieceLengthNotPowerOfTwo {
        /// The value found.
        piece_length: i64,
    },
    /// `piece length` is outside 16 KiB ..= 16 MiB.
    #[error("piece length {piece_length} is outside {min}..={max} bytes")]
    PieceLengthOutOfRange {
        /// The value found.
        piece_length: i64,
        /// Smallest accepted piece length.
        min: u32,
        /// Largest accepted piece length.
        max: u32,
    },
    /// `pieces` is not a whole number of 20-byte SHA-1 hashes.
    #[error("`pieces` is {len} bytes, not a multiple of 20")]
    PiecesNotMultipleOf20 {
        /// Length of the `pieces` string.
        len: usize,
    },
    /// The number of piece hashes does not match `ceil(total length / piece length)`.
    #[error("`pieces` holds {actual} hashes but the files need {expected}")]
    PieceCountMismatch {
        /// Pieces implied by the file lengths.
        expected: u64,
        /// Hashes present.
        actual: u64,
    },
    /// More pieces than [`MetainfoLimits::max_pieces`](super::MetainfoLimits).
    #[error("image has {count} pieces, over the limit of {limit}")]
    TooManyPieces {
        /// Number of pieces.
        count: u64,
        /// The configured limit.
        limit: u64,
    },
    /// Sum of file lengths is over [`MetainfoLimits::max_total_length`](super::MetainfoLimits).
    #[error("image is larger than the limit of {limit} bytes")]
    TotalLengthTooLarge {
        /// The configured limit.
        limit: u64,
    },
    /// All files are empty, so there is nothing to distribute.
    #[error("image has no bytes (every file is empty); BitTorrent cannot distribute it")]
    EmptyImage,
    /// More files than [`MetainfoLimits::max_files`](super::MetainfoLimits).
    #[error("image has {count} files, over the limit of {limit}")]
    TooManyFiles {
        /// Number of files.
        count: usize,
        /// The configured limit.
        limit: usize,
    },
    /// The `files` list is empty.
    #[error("image has no files")]
    NoFiles,
    /// The image name is unusable.
    #[error("image name {name:?} is invalid: {problem}")]
    BadName {
        /// The name (as found).
        name: String,
        /// What is wrong with it.
        problem: PathProblem,
    },
    /// A file path could escape the image folder or cannot be created.
    #[error("file #{file_index} path {path:?} is invalid: {problem}")]
    BadPath {
        /// Index in `files`.
        file_index: usize,
        /// The path, components joined with `/`.
        path: String,
        /// What is wrong with it.
        problem: PathProblem,
    },
    /// Two files have the same path.
    #[error("file #{file_index} path {path:?} appears twice")]
    DuplicatePath {
        /// Index of the second occurrence.
        file_index: usize,
        /// The path, components joined with `/`.
        path: String,
    },
    /// One file's path is a folder on another file's path (`a` and `a/b`).
    #[error("file #{file_index} path {path:?} lies under the file {file:?}")]
    PathConflict {
        /// Index of the file that lies under another file.
        file_index: usize,
        /// Its path, components joined with `/`.
        path: String,
        /// The path of the file used as a folder.
        file: String,
    },
    /// A file's `sha256` is not 32 bytes.
    #[error("file #{file_index} sha256 is {len} bytes, not 32")]
    BadSha256 {
        /// Index in `files`.
        file_index: usize,
        /// Length found.
        len: usize,
    },
    /// `private` is absent or not 1; swarmhub only uses private torrents (BEP 27).
    #[error("metainfo is not private (`private` is {value:?}, must be 1)")]
    NotPrivate {
        /// The value found, `None` when the key is absent.
        value: Option<i64>,
    },
    /// The info dictionary is valid but not byte-for-byte what this module writes
    /// (unknown keys, key order, number formatting), so its hash would not identify
    /// the fields [`Metainfo`](super::Metainfo) carries.
    #[error("info dictionary is not in canonical swarmhub form (unknown keys or non-canonical encoding)")]
    NonCanonicalInfo,
}

/// What is wrong with an image name or a file path.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PathProblem {
    /// The path has no components, or the name is empty.
    #[error("it is empty")]
    Empty,
    /// The path starts at the file-system root.
    #[error("it is absolute")]
    Absolute,
    /// A component is the empty string.
    #[error("a component is empty")]
    EmptyComponent,
    /// A component is `.`.
    #[error("a component is `.`")]
    Dot,
    /// A component is `..`.
    #[error("a component is `..`")]
    DotDot,
    /// A component contains `/` or `\`.
    #[error("a component contains a path separator")]
    Separator,
    /// A component contains a NUL byte.
    #[error("a component contains NUL")]
    Nul,
    /// A component contains another ASCII control character.
    #[error("a component contains a control character")]
    ControlChar,
    /// A component starts with a Windows drive prefix such as `C:`.
    #[error("a component starts with a Windows drive prefix")]
    DrivePrefix,
    /// A component is longer than the limit.
    #[error("a component is {len} bytes, over the limit of {limit}")]
    ComponentTooLong {
        /// Its length in bytes.
        len: usize,
        /// The limit.
        limit: usize,
    },
    /// The whole path is longer than the limit.
    #[error("it is {len} bytes, over the limit of {limit}")]
    TooLong {
        /// Its length in bytes (components plus separators).
        len: usize,
        /// The limit.
        limit: usize,
    },
}

/// What makes bytes not well-formed bencode.
///
/// swarmhub only accepts canonical bencode (BEP 3): integers without leading zeros or
/// `-0`, string lengths without leading zeros, dictionary keys unique and sorted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum BencodeProblem {
    /// The input ends inside a value.
    #[error("input ends inside a value")]
    UnexpectedEnd,
    /// A byte that cannot start or continue a value here.
    #[error("unexpected byte 0x{0:02x}")]
    UnexpectedByte(u8),
    /// An integer or string length has a leading zero, or is `-0`.
    #[error("number is not in canonical form (leading zero or -0)")]
    NonCanonicalNumber,
    /// An integer does not fit in 64 signed bits.
    #[error("integer does not fit in 64 bits")]
    IntegerOutOfRange,
    /// A string length is larger than the bytes that follow.
    #[error("string length runs past the end of the input")]
    StringTooLong,
    /// A dictionary key is not a byte string.
    #[error("dictionary key is not a string")]
    KeyNotString,
    /// A dictionary key is not greater than the key before it.
    #[error("dictionary keys are not sorted")]
    KeysNotSorted,
    /// A dictionary key appears twice.
    #[error("dictionary key appears twice")]
    DuplicateKey,
    /// A dictionary ends after a key, without its value.
    #[error("dictionary key has no value")]
    MissingValue,
}

/// Why [`ImageHasher`](super::ImageHasher) could not build metainfo.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum BuildError {
    /// The name, file list or piece length breaks the same rules parsing enforces.
    #[error(transparent)]
    Invalid(#[from] MetainfoError),
    /// The bytes fed to [`ImageHasher::update`](super::ImageHasher::update) do not add up
    /// to the declared file lengths (a file changed while it was read?).
    #[error("image files declare {declared} bytes but {fed} bytes were hashed; did a file change while being read?")]
    LengthMismatch {
        /// Sum of the declared file lengths.
        declared: u64,
        /// Bytes actually fed.
        fed: u64,
    },
}
