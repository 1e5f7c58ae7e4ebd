//! Peer wire codec: BitTorrent v1 (BEP 3) messages plus the BEP 10 extended handshake.
//!
//! - [`Handshake`]: the fixed 68-byte opening handshake.
//! - [`Message`]: one owned peer message; [`Message::encode`] appends its wire form to a
//!   `Vec<u8>`, [`Message::wire_len`] says how many bytes that is.
//! - [`Decoder`]: incremental, one per connection. Feed it whatever the socket (or the
//!   simulator) delivers with [`Decoder::push`], then drain [`Decoder::poll_handshake`]
//!   once and [`Decoder::poll_message`] until it returns `Ok(None)`.
//!
//! Framing and body parsing go through `librqbit-peer-protocol`; bencode through
//! `librqbit-bencode`. What this module adds is policy for hostile peers: every length
//! prefix is checked against [`DecoderLimits`] as soon as its 4 (or 5, with the message
//! id) bytes arrive, before any body is buffered, so a peer cannot make us allocate more
//! than one block frame (or one extended message) per connection.
//!
//! Supported message ids: 0-8 (BEP 3), 13-17 (the BEP 6 fast extension: suggest,
//! have all, have none, reject, allowed fast) and 20 (BEP 10). We do not implement the
//! DHT `port` message (id 9): swarmhub never sets that reserved bit, so a peer that
//! sends it is misbehaving and gets [`DecodeError::UnknownMessageId`]. Extended messages
//! other than the handshake (extended id 0) are passed up raw as [`Message::Extended`];
//! swarmhub advertises no extension messages, so the session ignores them.

mod decoder;
mod error;
mod handshake;
mod message;

#[cfg(test)]
mod tests;

pub use decoder::{Decoder, DecoderLimits, DEFAULT_MAX_EXTENDED_LEN};
pub use error::{DecodeError, EncodeError};
pub use handshake::Handshake;
pub use message::{ExtendedHandshake, Message, EPOCH_KEY, MAX_SITE_LEN, SITE_KEY, SUPER_SEED_KEY};

/// Default block size: the unit of a `Request` and of a `Piece` message (16 KiB).
pub const BLOCK_LEN: u32 = 16 * 1024;

/// One block of one piece: the subject of `Request`, `Cancel` and `Piece` messages.
///
/// Ordered by piece, then offset, then length, so sets of blocks iterate in file order.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct BlockRef {
    /// Zero-based piece index.
    pub piece: u32,
    /// Byte offset of the block inside its piece.
    pub begin: u32,
    /// Block length in bytes (normally [`BLOCK_LEN`], less for a piece's last block).
    pub length: u32,
}

/// Message ids of BEP 3 / BEP 6 / BEP 10, as they appear after the length prefix.
pub(crate) mod id {
    pub(crate) const CHOKE: u8 = 0;
    pub(crate) const UNCHOKE: u8 = 1;
    pub(crate) const INTERESTED: u8 = 2;
    pub(crate) const NOT_INTERESTED: u8 = 3;
    pub(crate) const HAVE: u8 = 4;
    pub(crate) const BITFIELD: u8 = 5;
    pub(crate) const REQUEST: u8 = 6;
    pub(crate) const PIECE: u8 = 7;
    pub(crate) const CANCEL: u8 = 8;
    pub(crate) const SUGGEST: u8 = 13;
    pub(crate) const HAVE_ALL: u8 = 14;
    pub(crate) const HAVE_NONE: u8 = 15;
    pub(crate) const REJECT: u8 = 16;
    pub(crate) const ALLOWED_FAST: u8 = 17;
    pub(crate) const EXTENDED: u8 = 20;
}

/// Bytes of the length prefix that starts every message.
pub(crate) const PREFIX_LEN: usize = 4;
/// Bytes before a `Piece` block: prefix, id, piece index, offset.
pub(crate) const PIECE_HEADER_LEN: usize = 13;
/// Bytes before an extended payload: prefix, id 20, extended id.
pub(crate) const EXTENDED_HEADER_LEN: usize = 6;
