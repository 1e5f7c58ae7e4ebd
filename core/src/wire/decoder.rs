//! Incremental decoder: bytes in arbitrary chunks -> handshake, then messages.

use bytes::{Buf, Bytes, BytesMut};
use librqbit_peer_protocol as pp;

use super::{
    id, BlockRef, DecodeError, ExtendedHandshake, Handshake, Message, BLOCK_LEN,
    EXTENDED_HEADER_LEN, PIECE_HEADER_LEN, PREFIX_LEN,
};

/// Default [`DecoderLimits::max_extended_len`]: 16 KiB.
///
/// An extended handshake is a few hundred bytes in practice, and swarmhub offers no
/// other extension messages, so a peer has no business sending more. Keeping it at one
/// block means extended messages never raise the per-connection buffer above what a
/// `piece` frame already needs.
pub const DEFAULT_MAX_EXTENDED_LEN: u32 = 16 * 1024;

/// Smallest buffer growth step: room for two default `piece` frames, so that growing
/// (which may copy the unread tail) happens at most once per ~16 KiB received.
const MIN_RESERVE: usize = 32 * 1024;

/// What a [`Decoder`] accepts from a peer. Every limit is checked against a message's
/// length prefix before its body is buffered.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DecoderLimits {
    /// Largest block in a `request`, `cancel` or `piece` (default [`BLOCK_LEN`]). Any
    /// non-extended message longer than a `piece` carrying such a block is rejected.
    pub max_block_len: u32,
    /// Piece count of the torrent, when known: then a `bitfield` must be exactly
    /// `ceil(num_pieces / 8)` bytes with zero spare bits, and `have`, `request`,
    /// `cancel` and `piece` must name a piece below it.
    pub num_pieces: Option<u32>,
    /// Largest length prefix (message id + extended id + payload) of an extended
    /// message (default [`DEFAULT_MAX_EXTENDED_LEN`]).
    pub max_extended_len: u32,
}

impl Default for DecoderLimits {
    fn default() -> Self {
        DecoderLimits {
            max_block_len: BLOCK_LEN,
            num_pieces: None,
            max_extended_len: DEFAULT_MAX_EXTENDED_LEN,
        }
    }
}

impl DecoderLimits {
    /// Largest prefix of a non-extended message: id, piece index, offset, one block.
    fn max_plain_len(&self) -> u32 {
        self.max_block_len.saturating_add(9)
    }

    /// Exact bitfield byte length, when the piece count is known.
    fn bitfield_len(&self) -> Option<usize> {
        self.num_pieces.map(|n| n.div_ceil(8) as usize)
    }

    /// Largest prefix any message may have: checked as soon as 4 bytes are in.
    fn max_any_len(&self) -> u32 {
        let bitfield = self
            .bitfield_len()
            .map_or(0, |b| u32::try_from(b + 1).unwrap_or(u32::MAX));
        self.max_plain_len()
            .max(self.max_extended_len)
            .max(bitfield)
    }

    /// Whether a message with this id and length prefix may be buffered at all.
    fn check_header(&self, msg_id: u8, len: u32) -> Result<(), DecodeError> {
        let too_long = |max: u32| DecodeError::FrameTooLong {
            id: Some(msg_id),
            len,
            max,
        };
        let bad_length = DecodeError::BadLength { id: msg_id, len };
        let fits = |ok: bool| if ok { Ok(()) } else { Err(bad_length.clone()) };
        match msg_id {
            id::CHOKE | id::UNCHOKE | id::INTERESTED | id::NOT_INTERESTED => fits(len == 1),
            id::HAVE_ALL | id::HAVE_NONE => fits(len == 1),
            id::HAVE | id::SUGGEST | id::ALLOWED_FAST => fits(len == 5),
            id::REQUEST | id::CANCEL | id::REJECT => fits(len == 13),
            id::BITFIELD => {
                fits(len >= 2)?;
                match self.bitfield_len() {
                    Some(expected) if len as usize - 1 != expected => {
                        Err(DecodeError::BitfieldLength {
                            got: len as usize - 1,
                            expected,
                        })
                    }
                    Some(_) => Ok(()),
                    None if len > self.max_plain_len() => Err(too_long(self.max_plain_len())),
                    None => Ok(()),
                }
            }
            id::PIECE if len > self.max_plain_len() => Err(too_long(self.max_plain_len())),
            id::PIECE => fits(len as usize > PIECE_HEADER_LEN - PREFIX_LEN),
            id::EXTENDED if len > self.max_extended_len => Err(too_long(self.max_extended_len)),
            id::EXTENDED => fits(len as usize >= EXTENDED_HEADER_LEN - PREFIX_LEN),
            other => Err(DecodeError::UnknownMessageId(other)),
        }
    }

    fn check_piece_index(&self, message: &'static str, index: u32) -> Result<(), DecodeError> {
        match self.num_pieces {
            Some(num_pieces) if index >= num_pieces => Err(DecodeError::PieceIndexOutOfRange {
                message,
                index,
                num_pieces,
            }),
            _ => Ok(()),
        }
    }

    fn check_block(&self, message: &'static str, block: &BlockRef) -> Result<(), DecodeError> {
        self.check_piece_index(message, block.piece)?;
        if block.begin.checked_add(block.length).is_none() {
            return Err(DecodeError::BlockRangeOverflow {
                message,
                begin: block.begin,
                length: block.length,
            });
        }
        Ok(())
    }

    /// `request` and `cancel` name a block the peer wants: 1..=max_block_len bytes.
    fn check_requested(&self, message: &'static str, block: &BlockRef) -> Result<(), DecodeError> {
        if block.length == 0 {
            return Err(DecodeError::EmptyBlock { message });
        }
        if block.length > self.max_block_len {
            return Err(DecodeError::BlockTooLong {
                message,
                length: block.length,
                max: self.max_block_len,
            });
        }
        self.check_block(message, block)
    }

    fn check_bitfield(&self, bits: &[u8]) -> Result<(), DecodeError> {
        let Some(num_pieces) = self.num_pieces else {
            return Ok(());
        };
        let spare = (num_pieces % 8) as u8;
        match bits.last() {
            Some(last) if spare != 0 && last & (0xFF >> spare) != 0 => {
                Err(DecodeError::BitfieldSpareBits)
            }
            _ => Ok(()),
        }
    }
}

/// Incremental wire decoder, one per connection.
///
/// Feed bytes with [`push`](Decoder::push) in any chunking, then poll: first
/// [`poll_handshake`](Decoder::poll_handshake) until it yields the peer's handshake
/// (only for [`Decoder::new`]), then [`poll_message`](Decoder::poll_message) until it
/// returns `Ok(None)`. Drain after every push: the buffer holds at most the unread
/// bytes, and a peer cannot make it hold more than one frame beyond what was pushed.
///
/// After a peer error (any [`DecodeError`] other than the two caller mistakes) the
/// decoder drops its buffer, ignores further pushes and returns that error again.
///
/// `piece` data is handed out as a [`Bytes`] view into the receive buffer, without a
/// copy; holding it keeps that buffer chunk (a few tens of KiB) alive.
pub struct Decoder {
    limits: DecoderLimits,
    buf: BytesMut,
    awaiting_handshake: bool,
    failed: Option<DecodeError>,
}

impl std::fmt::Debug for Decoder {
    /// Sizes only: the buffer may hold tens of KiB of peer data.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Decoder")
            .field("limits", &self.limits)
            .field("buffered_len", &self.buf.len())
            .field("awaiting_handshake", &self.awaiting_handshake)
            .field("failed", &self.failed)
            .finish()
    }
}

impl Decoder {
    /// A decoder for a fresh connection: the first 68 bytes are the peer's handshake.
    pub fn new(limits: DecoderLimits) -> Self {
        Decoder {
            limits,
            buf: BytesMut::new(),
            awaiting_handshake: true,
            failed: None,
        }
    }

    /// A decoder for a stream whose handshake was already consumed elsewhere.
    pub fn new_after_handshake(limits: DecoderLimits) -> Self {
        Decoder {
            awaiting_handshake: false,
            ..Decoder::new(limits)
        }
    }

    /// Set the torrent's piece count, enabling the bitfield and piece-index checks.
    pub fn set_num_pieces(&mut self, n: u32) {
        self.limits.num_pieces = Some(n);
    }

    /// Append received bytes. Cheap: parsing happens in the `poll_*` calls.
    pub fn push(&mut self, bytes: &[u8]) {
        if self.failed.is_some() || bytes.is_empty() {
            return;
        }
        if self.buf.capacity() - self.buf.len() < bytes.len() {
            // Grow by at least the unread length: reallocating copies only the unread
            // tail, so this keeps the cost amortized O(1) per byte. `BytesMut` itself
            // moves the tail to the front instead when the consumed prefix is larger.
            let additional = bytes.len().max(self.buf.len()).max(MIN_RESERVE);
            self.buf.reserve(additional);
        }
        self.buf.extend_from_slice(bytes);
    }

    /// The peer's 68-byte handshake, once it is all in; `Ok(None)` means more bytes
    /// are needed. Returns it once, then the decoder moves on to messages.
    pub fn poll_handshake(&mut self) -> Result<Option<Handshake>, DecodeError> {
        if let Some(e) = &self.failed {
            return Err(e.clone());
        }
        if !self.awaiting_handshake {
            return Err(DecodeError::HandshakeAlreadyPolled);
        }
        let Some(Ok(raw)) = self.buf.get(..Handshake::LEN).map(<&[u8; 68]>::try_from) else {
            return Ok(None);
        };
        match Handshake::decode(raw) {
            Ok(hs) => {
                self.buf.advance(Handshake::LEN);
                self.awaiting_handshake = false;
                Ok(Some(hs))
            }
            Err(e) => Err(self.fail(e)),
        }
    }

    /// The next complete message; `Ok(None)` means more bytes are needed.
    pub fn poll_message(&mut self) -> Result<Option<Message>, DecodeError> {
        if let Some(e) = &self.failed {
            return Err(e.clone());
        }
        if self.awaiting_handshake {
            return Err(DecodeError::HandshakeNotPolled);
        }
        match self.next_message() {
            Ok(msg) => Ok(msg),
            Err(e) => Err(self.fail(e)),
        }
    }

    /// Bytes received but not yet returned as a handshake or message.
    pub fn buffered_len(&self) -> usize {
        self.buf.len()
    }

    /// Current buffer capacity, for tests that check nothing was allocated up front.
    #[cfg(test)]
    pub(crate) fn buffer_capacity(&self) -> usize {
        self.buf.capacity()
    }

    fn fail(&mut self, e: DecodeError) -> DecodeError {
        self.failed = Some(e.clone());
        self.buf = BytesMut::new();
        e
    }

    fn next_message(&mut self) -> Result<Option<Message>, DecodeError> {
        let Some(Ok(prefix)) = self.buf.get(..PREFIX_LEN).map(<[u8; 4]>::try_from) else {
            return Ok(None);
        };
        let len = u32::from_be_bytes(prefix);
        if len == 0 {
            self.buf.advance(PREFIX_LEN);
            return Ok(Some(Message::KeepAlive));
        }
        let max = self.limits.max_any_len();
        if len > max {
            return Err(DecodeError::FrameTooLong { id: None, len, max });
        }
        let Some(&msg_id) = self.buf.get(PREFIX_LEN) else {
            return Ok(None);
        };
        self.limits.check_header(msg_id, len)?;
        let total = PREFIX_LEN + len as usize;
        if self.buf.len() < total {
            return Ok(None);
        }
        if msg_id == id::PIECE {
            let frame = self.buf.split_to(total).freeze();
            return parse_piece(&self.limits, frame).map(Some);
        }
        let msg = parse_frame(&self.limits, msg_id, &self.buf[..total]);
        self.buf.advance(total);
        msg.map(Some)
    }
}

/// A whole `piece` frame; the block becomes a view of `frame`, not a copy.
fn parse_piece(limits: &DecoderLimits, frame: Bytes) -> Result<Message, DecodeError> {
    let (index, begin) = match pp::Message::deserialize(&frame, &[]) {
        Ok((pp::Message::Piece(p), _)) => (p.index, p.begin),
        Ok((other, _)) => return Err(unexpected(id::PIECE, &other)),
        Err(e) => return Err(malformed(id::PIECE, &e)),
    };
    let data = frame.slice(PIECE_HEADER_LEN..);
    let block = BlockRef {
        piece: index,
        begin,
        // The header check bounds the frame by max_block_len + 13, so this fits.
        length: u32::try_from(data.len()).unwrap_or(u32::MAX),
    };
    limits.check_block("piece", &block)?;
    Ok(Message::Piece(block, data))
}

/// A whole non-`piece` frame, header already checked.
fn parse_frame(limits: &DecoderLimits, msg_id: u8, frame: &[u8]) -> Result<Message, DecodeError> {
    if msg_id == id::EXTENDED {
        return match frame.get(EXTENDED_HEADER_LEN - 1) {
            Some(0) => {
                ExtendedHandshake::from_payload(frame.get(EXTENDED_HEADER_LEN..).unwrap_or(&[]))
                    .map(Message::ExtendedHandshake)
            }
            Some(&ext_id) => Ok(Message::Extended {
                id: ext_id,
                payload: Bytes::copy_from_slice(frame.get(EXTENDED_HEADER_LEN..).unwrap_or(&[])),
            }),
            None => Err(DecodeError::BadLength {
                id: msg_id,
                len: (frame.len() - PREFIX_LEN) as u32,
            }),
        };
    }
    if let Some(msg) = parse_fast(limits, msg_id, frame)? {
        return Ok(msg);
    }
    let parsed = match pp::Message::deserialize(frame, &[]) {
        Ok((parsed, _)) => parsed,
        Err(e) => return Err(malformed(msg_id, &e)),
    };
    let msg = match parsed {
        pp::Message::Choke => Message::Choke,
        pp::Message::Unchoke => Message::Unchoke,
        pp::Message::Interested => Message::Interested,
        pp::Message::NotInterested => Message::NotInterested,
        pp::Message::Have(index) => {
            limits.check_piece_index("have", index)?;
            Message::Have(index)
        }
        pp::Message::Bitfield(bits) => {
            limits.check_bitfield(bits.0)?;
            Message::Bitfield(Bytes::copy_from_slice(bits.0))
        }
        pp::Message::Request(r) => {
            let block = to_block(&r);
            limits.check_requested("request", &block)?;
            Message::Request(block)
        }
        pp::Message::Cancel(r) => {
            let block = to_block(&r);
            limits.check_requested("cancel", &block)?;
            Message::Cancel(block)
        }
        other => return Err(unexpected(msg_id, &other)),
    };
    Ok(msg)
}

/// A BEP 6 frame (librqbit-peer-protocol has none of them), header already
/// checked; `None` for any other id.
fn parse_fast(
    limits: &DecoderLimits,
    msg_id: u8,
    frame: &[u8],
) -> Result<Option<Message>, DecodeError> {
    let word = |i: usize| {
        let at = PREFIX_LEN + 1 + 4 * i;
        frame
            .get(at..at + 4)
            .and_then(|b| <[u8; 4]>::try_from(b).ok())
            .map(u32::from_be_bytes)
            .ok_or(DecodeError::BadLength {
                id: msg_id,
                len: (frame.len() - PREFIX_LEN) as u32,
            })
    };
    let msg = match msg_id {
        id::HAVE_ALL => Message::HaveAll,
        id::HAVE_NONE => Message::HaveNone,
        id::SUGGEST | id::ALLOWED_FAST => {
            let index = word(0)?;
            let msg = if msg_id == id::SUGGEST {
                Message::Suggest(index)
            } else {
                Message::AllowedFast(index)
            };
            limits.check_piece_index(msg.name(), index)?;
            msg
        }
        id::REJECT => {
            let block = BlockRef {
                piece: word(0)?,
                begin: word(1)?,
                length: word(2)?,
            };
            limits.check_requested("reject_request", &block)?;
            Message::Reject(block)
        }
        _ => return Ok(None),
    };
    Ok(Some(msg))
}

fn to_block(r: &pp::Request) -> BlockRef {
    BlockRef {
        piece: r.index,
        begin: r.begin,
        length: r.length,
    }
}

fn malformed(msg_id: u8, e: &pp::MessageDeserializeError) -> DecodeError {
    DecodeError::Malformed {
        id: msg_id,
        reason: e.to_string(),
    }
}

fn unexpected(msg_id: u8, parsed: &pp::Message<'_>) -> DecodeError {
    DecodeError::Malformed {
        id: msg_id,
        reason: format!("parsed as {parsed:?}"),
    }
}
