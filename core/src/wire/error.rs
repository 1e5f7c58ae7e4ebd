//! Errors of the wire codec: one enum for decoding (hostile input), one for encoding
//! (our own mistakes).

/// Why bytes from a peer could not be decoded.
///
/// Every variant except [`DecodeError::HandshakeNotPolled`] and
/// [`DecodeError::HandshakeAlreadyPolled`] means the peer misbehaved: drop the
/// connection. Once a [`Decoder`](super::Decoder) has returned one of those, it discards
/// its buffer, ignores further input and returns the same error from every poll.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DecodeError {
    /// The 68-byte opening handshake is not a BitTorrent v1 handshake.
    #[error("peer handshake is malformed: {reason}")]
    BadHandshake {
        /// What is wrong with it.
        reason: String,
    },
    /// A length prefix exceeds what any acceptable message could need.
    #[error(
        "peer message length prefix {len} exceeds the limit {max}{}",
        match id { Some(id) => format!(" for message id {id}"), None => String::new() }
    )]
    FrameTooLong {
        /// Message id, when it had arrived already.
        id: Option<u8>,
        /// Claimed length (the prefix value: id plus body).
        len: u32,
        /// Largest accepted prefix value.
        max: u32,
    },
    /// A message id outside 0-8 and 20 (BEP 6 fast extension and DHT port included).
    #[error(
        "peer sent unsupported message id {0} (only BEP 3 ids 0-8 and BEP 10 id 20 are accepted)"
    )]
    UnknownMessageId(u8),
    /// A length prefix that is impossible for its message id (for example a `have`
    /// that is not 5 bytes, or a `piece` without data).
    #[error("peer message id {id} has invalid length prefix {len}")]
    BadLength {
        /// Message id.
        id: u8,
        /// Length prefix value.
        len: u32,
    },
    /// A bitfield whose byte length does not match the torrent's piece count.
    #[error("peer bitfield is {got} bytes, expected {expected} for this torrent")]
    BitfieldLength {
        /// Bytes received.
        got: usize,
        /// Bytes expected: piece count / 8, rounded up.
        expected: usize,
    },
    /// A bitfield with bits set past the last piece.
    #[error("peer bitfield has spare bits set past the last piece")]
    BitfieldSpareBits,
    /// A `have`, `request`, `cancel` or `piece` naming a piece the torrent does not have.
    #[error("peer {message} names piece {index}, but the torrent has {num_pieces} pieces")]
    PieceIndexOutOfRange {
        /// Message name (see [`Message::name`](super::Message::name)).
        message: &'static str,
        /// Piece index received.
        index: u32,
        /// Piece count of the torrent.
        num_pieces: u32,
    },
    /// A `request` or `cancel` for more than the block size limit.
    #[error("peer {message} asks for a {length}-byte block, limit is {max}")]
    BlockTooLong {
        /// Message name.
        message: &'static str,
        /// Requested length.
        length: u32,
        /// [`DecoderLimits::max_block_len`](super::DecoderLimits::max_block_len).
        max: u32,
    },
    /// A `request` or `cancel` for zero bytes.
    #[error("peer {message} asks for an empty block")]
    EmptyBlock {
        /// Message name.
        message: &'static str,
    },
    /// A block whose offset plus length does not fit in 32 bits.
    #[error("peer {message} block at offset {begin} with length {length} overflows 32 bits")]
    BlockRangeOverflow {
        /// Message name.
        message: &'static str,
        /// Offset inside the piece.
        begin: u32,
        /// Block length.
        length: u32,
    },
    /// The BEP 10 extended handshake is not a valid bencoded dictionary of known types.
    #[error("peer extended handshake is malformed: {0}")]
    Extended(String),
    /// Any other malformed message body (reported by librqbit-peer-protocol).
    #[error("peer message id {id} is malformed: {reason}")]
    Malformed {
        /// Message id.
        id: u8,
        /// What the parser said.
        reason: String,
    },
    /// Caller mistake: `poll_message` was called before `poll_handshake` returned the
    /// peer's handshake (for a decoder made with [`Decoder::new`](super::Decoder::new)).
    #[error("poll_message called before the peer handshake was polled")]
    HandshakeNotPolled,
    /// Caller mistake: `poll_handshake` was called after the handshake was returned, or
    /// on a decoder made with [`Decoder::new_after_handshake`](super::Decoder::new_after_handshake).
    #[error("poll_handshake called after the handshake phase")]
    HandshakeAlreadyPolled,
}

/// Why a [`Message`](super::Message) could not be encoded. These are the caller's
/// mistakes: nothing is appended to the output.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum EncodeError {
    /// `Piece` data whose length differs from its `BlockRef::length`.
    #[error("piece message for piece {piece} offset {begin}: block says {length} bytes, data has {data_len}")]
    PieceDataLength {
        /// Piece index.
        piece: u32,
        /// Offset inside the piece.
        begin: u32,
        /// `BlockRef::length`.
        length: u32,
        /// `data.len()`.
        data_len: usize,
    },
    /// A `Piece` with no data, or an empty `Bitfield`: peers reject both.
    #[error("{0} message with an empty body cannot be sent")]
    EmptyBody(&'static str),
    /// A message whose length does not fit the 32-bit length prefix.
    #[error("{message} message of {len} bytes does not fit a 32-bit length prefix")]
    TooLong {
        /// Message name.
        message: &'static str,
        /// Body length.
        len: usize,
    },
    /// `Message::Extended` with id 0, which is reserved for the extended handshake.
    #[error("extended message id 0 is the extended handshake; use Message::ExtendedHandshake")]
    ReservedExtendedId,
    /// The serializer failed (librqbit-peer-protocol or librqbit-bencode).
    #[error("{message} message could not be serialized: {reason}")]
    Serialize {
        /// Message name.
        message: &'static str,
        /// What the serializer said.
        reason: String,
    },
}
