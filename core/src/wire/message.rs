//! Owned peer messages and their encoding.

use std::collections::BTreeMap;

use bytes::Bytes;
use librqbit_bencode as bencode;
use librqbit_peer_protocol as pp;
use librqbit_peer_protocol::extended::PeerExtendedMessageIds;
use serde::{Deserialize, Serialize};

use super::{id, BlockRef, DecodeError, EncodeError, EXTENDED_HEADER_LEN, PIECE_HEADER_LEN};

/// Extended-handshake key carrying [`ExtendedHandshake::revocation_epoch`].
pub const EPOCH_KEY: &str = "swarmhub_epoch";

/// Extended handshake key by which a super-seeding seed tells swarmhub peers it is a
/// seed. It must not say `upload_only`: libtorrent-based clients drop an upload-only
/// peer that shows them no pieces, and a super-seed shows only a piece or two.
pub const SUPER_SEED_KEY: &str = "swarmhub_super_seed";

/// Extended-handshake key carrying [`ExtendedHandshake::site`]: the site the hub
/// told the sender it is in, so both ends of a connection know whether it
/// crosses an inter-site link (inbound peers are in no peer list of ours).
pub const SITE_KEY: &str = "swarmhub_site";

/// Longest site name read from a peer (longer names read as no site).
pub const MAX_SITE_LEN: usize = 255;

/// One peer message, owned.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Message {
    /// Zero-length message that keeps an idle connection open.
    KeepAlive,
    /// The sender will not serve our requests.
    Choke,
    /// The sender will serve our requests.
    Unchoke,
    /// The sender wants pieces we have.
    Interested,
    /// The sender wants nothing from us.
    NotInterested,
    /// The sender has completed and verified this piece.
    Have(u32),
    /// Raw BEP 3 bitfield: bit 7 of byte 0 is piece 0; spare bits at the end are zero.
    Bitfield(Bytes),
    /// Ask for one block.
    Request(BlockRef),
    /// Withdraw an earlier request.
    Cancel(BlockRef),
    /// One block of data. On the real wire `data.len() == block.length`; the simulator
    /// may send `data` empty and still account the real size through
    /// [`Message::wire_len`].
    Piece(BlockRef, Bytes),
    /// BEP 6: the sender has every piece (instead of a full bitfield).
    HaveAll,
    /// BEP 6: the sender has no piece (instead of an empty bitfield).
    HaveNone,
    /// BEP 6: the sender will not serve this request (it chokes us, or will
    /// not serve it for another reason). With the fast extension this, not a
    /// choke, is what ends a request without its block.
    Reject(BlockRef),
    /// BEP 6: the sender suggests we download this piece (advisory).
    Suggest(u32),
    /// BEP 6: we may request this piece even while the sender chokes us.
    AllowedFast(u32),
    /// BEP 10 extended handshake (extended id 0).
    ExtendedHandshake(ExtendedHandshake),
    /// Any other BEP 10 message, payload unparsed. swarmhub advertises no extension
    /// messages, so the session ignores these.
    Extended {
        /// Extended message id (never 0).
        id: u8,
        /// Payload after the extended id.
        payload: Bytes,
    },
}

/// Append a message of fixed length: its id, then `words` as big-endian u32s
/// (the BEP 6 messages).
fn put_fixed(out: &mut Vec<u8>, msg_id: u8, words: &[u32]) {
    let len = 1 + 4 * words.len() as u32;
    out.extend_from_slice(&len.to_be_bytes());
    out.push(msg_id);
    for w in words {
        out.extend_from_slice(&w.to_be_bytes());
    }
}

/// The fields of a BEP 10 extended handshake that swarmhub uses.
///
/// On the wire it is a bencoded dictionary; unknown keys are ignored on decode. We send
/// an empty `m` dictionary: swarmhub offers no extension messages (no PEX, no
/// ut_metadata).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ExtendedHandshake {
    /// Client name and version (`v`).
    pub client: Option<String>,
    /// TCP port the sender listens on (`p`); a value that is not a valid port reads as
    /// `None`.
    pub listen_port: Option<u16>,
    /// How many outstanding requests the sender accepts (`reqq`).
    pub reqq: Option<u32>,
    /// The sender is a seed that will not download (`upload_only` = 1).
    pub upload_only: bool,
    /// The hub's certificate revocation epoch the sender last saw ([`EPOCH_KEY`]).
    pub revocation_epoch: Option<u64>,
    /// The sender is a super-seeding seed ([`SUPER_SEED_KEY`] = 1): a seed to
    /// swarmhub peers, which keep telling it their haves, while stock clients see
    /// no `upload_only` and download from it.
    pub super_seeding: bool,
    /// The sender's site, as its hub told it ([`SITE_KEY`]); `None` when the
    /// hub knows no site for it or it is not a swarmhub peer.
    pub site: Option<String>,
}

impl Message {
    /// Bytes on the wire, including the 4-byte length prefix.
    ///
    /// For `Piece` this uses `BlockRef::length`, not `data.len()`, so a simulator that
    /// sends empty payloads still accounts the real transfer size.
    pub fn wire_len(&self) -> usize {
        match self {
            Message::KeepAlive => 4,
            Message::Choke
            | Message::Unchoke
            | Message::Interested
            | Message::NotInterested
            | Message::HaveAll
            | Message::HaveNone => 5,
            Message::Have(_) | Message::Suggest(_) | Message::AllowedFast(_) => 9,
            Message::Reject(_) => 17,
            Message::Bitfield(bits) => 5 + bits.len(),
            Message::Request(_) | Message::Cancel(_) => 17,
            Message::Piece(block, _) => PIECE_HEADER_LEN + block.length as usize,
            Message::ExtendedHandshake(hs) => {
                let mut counter = ByteCounter(0);
                // Serializing this struct cannot fail: every field is an integer, string
                // or map, and the counter's `write` never fails.
                let _ = bencode::bencode_serialize_to_writer(hs.to_dict(), &mut counter);
                EXTENDED_HEADER_LEN + counter.0
            }
            Message::Extended { payload, .. } => EXTENDED_HEADER_LEN + payload.len(),
        }
    }

    /// Short snake_case name, for logs and errors.
    pub fn name(&self) -> &'static str {
        match self {
            Message::KeepAlive => "keep_alive",
            Message::Choke => "choke",
            Message::Unchoke => "unchoke",
            Message::Interested => "interested",
            Message::NotInterested => "not_interested",
            Message::Have(_) => "have",
            Message::Bitfield(_) => "bitfield",
            Message::Request(_) => "request",
            Message::Cancel(_) => "cancel",
            Message::Piece(..) => "piece",
            Message::HaveAll => "have_all",
            Message::HaveNone => "have_none",
            Message::Reject(_) => "reject_request",
            Message::Suggest(_) => "suggest_piece",
            Message::AllowedFast(_) => "allowed_fast",
            Message::ExtendedHandshake(_) => "extended_handshake",
            Message::Extended { .. } => "extended",
        }
    }

    /// Append the wire form of this message to `out`.
    ///
    /// On error nothing is appended. Errors: a `Piece` whose data length differs from
    /// its block length, an empty `Piece` or `Bitfield` (peers reject both), a body too
    /// long for the 32-bit length prefix, `Extended` with the reserved id 0.
    pub fn encode(&self, out: &mut Vec<u8>) -> Result<(), EncodeError> {
        let start = out.len();
        let result = self.encode_unchecked(out, start);
        if result.is_err() {
            out.truncate(start);
        }
        result
    }

    fn encode_unchecked(&self, out: &mut Vec<u8>, start: usize) -> Result<(), EncodeError> {
        if let Some(msg) = self.bep3_form()? {
            return self.serialize_bep3(&msg, out, start);
        }
        if let Some((msg_id, words, n)) = self.bep6_form() {
            put_fixed(out, msg_id, &words[..n]);
            return Ok(());
        }
        match self {
            Message::ExtendedHandshake(hs) => {
                let payload = put_extended_header(out, 0);
                bencode::bencode_serialize_to_writer(hs.to_dict(), out).map_err(|e| {
                    EncodeError::Serialize {
                        message: self.name(),
                        reason: e.to_string(),
                    }
                })?;
                if has_long_number(&out[payload..]) {
                    return Err(EncodeError::Serialize {
                        message: self.name(),
                        reason: format!(
                            "a number or digit run is longer than {MAX_DIGITS} digits, \
                             which peers reject (see ExtendedHandshake::MAX_EPOCH)"
                        ),
                    });
                }
                finish_extended(out, start, payload, self.name())
            }
            Message::Extended { id, payload } => {
                if *id == 0 {
                    return Err(EncodeError::ReservedExtendedId);
                }
                let body = put_extended_header(out, *id);
                out.extend_from_slice(payload);
                finish_extended(out, start, body, self.name())
            }
            // Every other variant has a BEP 3 or BEP 6 form, written above.
            _ => Ok(()),
        }
    }

    /// The librqbit-peer-protocol form of a BEP 3 message, after our checks; `None`
    /// for the BEP 6 and BEP 10 messages.
    fn bep3_form(&self) -> Result<Option<pp::Message<'_>>, EncodeError> {
        let body_limit = u32::MAX as usize - PIECE_HEADER_LEN;
        let msg = match self {
            Message::KeepAlive => pp::Message::KeepAlive,
            Message::Choke => pp::Message::Choke,
            Message::Unchoke => pp::Message::Unchoke,
            Message::Interested => pp::Message::Interested,
            Message::NotInterested => pp::Message::NotInterested,
            Message::Have(index) => pp::Message::Have(*index),
            Message::Bitfield(bits) => {
                if bits.is_empty() {
                    return Err(EncodeError::EmptyBody(self.name()));
                }
                if bits.len() > body_limit {
                    return Err(self.too_long(bits.len()));
                }
                pp::Message::Bitfield(bits.as_ref().into())
            }
            Message::Request(b) => pp::Message::Request(to_request(b)),
            Message::Cancel(b) => pp::Message::Cancel(to_request(b)),
            Message::Piece(b, data) => {
                if data.len() != b.length as usize {
                    return Err(EncodeError::PieceDataLength {
                        piece: b.piece,
                        begin: b.begin,
                        length: b.length,
                        data_len: data.len(),
                    });
                }
                if data.is_empty() {
                    return Err(EncodeError::EmptyBody(self.name()));
                }
                if data.len() > body_limit {
                    return Err(self.too_long(data.len()));
                }
                pp::Message::Piece(pp::Piece::from_data(b.piece, b.begin, data))
            }
            // BEP 10 messages (librqbit cannot carry our keys, or raw payloads)
            // and BEP 6 ones (librqbit has none): laid out by `encode_unchecked`.
            Message::ExtendedHandshake(_)
            | Message::Extended { .. }
            | Message::HaveAll
            | Message::HaveNone
            | Message::Reject(_)
            | Message::Suggest(_)
            | Message::AllowedFast(_) => return Ok(None),
        };
        Ok(Some(msg))
    }

    /// A BEP 6 message's id and its first `n` fixed words; `None` for others.
    fn bep6_form(&self) -> Option<(u8, [u32; 3], usize)> {
        Some(match self {
            Message::HaveAll => (id::HAVE_ALL, [0; 3], 0),
            Message::HaveNone => (id::HAVE_NONE, [0; 3], 0),
            Message::Suggest(index) => (id::SUGGEST, [*index, 0, 0], 1),
            Message::AllowedFast(index) => (id::ALLOWED_FAST, [*index, 0, 0], 1),
            Message::Reject(b) => (id::REJECT, [b.piece, b.begin, b.length], 3),
            _ => return None,
        })
    }

    /// Let librqbit-peer-protocol lay out a BEP 3 message at `out[start..]`.
    fn serialize_bep3(
        &self,
        msg: &pp::Message<'_>,
        out: &mut Vec<u8>,
        start: usize,
    ) -> Result<(), EncodeError> {
        let len = self.wire_len();
        out.resize(start + len, 0);
        let written = msg
            .serialize(&mut out[start..], &PeerExtendedMessageIds::default)
            .map_err(|e| EncodeError::Serialize {
                message: self.name(),
                reason: e.to_string(),
            })?;
        debug_assert_eq!(
            written, len,
            "wire_len disagrees with librqbit for {self:?}"
        );
        out.truncate(start + written);
        Ok(())
    }

    fn too_long(&self, len: usize) -> EncodeError {
        EncodeError::TooLong {
            message: self.name(),
            len,
        }
    }
}

fn to_request(b: &BlockRef) -> pp::Request {
    pp::Request::new(b.piece, b.begin, b.length)
}

/// Append a placeholder length prefix, id 20 and the extended id; return where the
/// payload starts.
fn put_extended_header(out: &mut Vec<u8>, extended_id: u8) -> usize {
    out.extend_from_slice(&[0, 0, 0, 0, id::EXTENDED, extended_id]);
    out.len()
}

/// Fill in the length prefix of an extended message started at `start`.
fn finish_extended(
    out: &mut [u8],
    start: usize,
    payload_start: usize,
    name: &'static str,
) -> Result<(), EncodeError> {
    let payload_len = out.len() - payload_start;
    let prefix = u32::try_from(out.len() - start - 4).map_err(|_| EncodeError::TooLong {
        message: name,
        len: payload_len,
    })?;
    out[start..start + 4].copy_from_slice(&prefix.to_be_bytes());
    Ok(())
}

/// Counts bytes instead of storing them: the length of a serialization without
/// allocating it.
struct ByteCounter(usize);

impl std::io::Write for ByteCounter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0 += buf.len();
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// What we send: the standard keys plus ours. The serializer sorts keys.
#[derive(Serialize)]
struct HandshakeDictOut<'a> {
    /// Extension messages we offer: none.
    m: BTreeMap<&'static str, u8>,
    #[serde(skip_serializing_if = "Option::is_none")]
    p: Option<u16>,
    #[serde(skip_serializing_if = "Option::is_none")]
    reqq: Option<u32>,
    #[serde(rename = "swarmhub_epoch", skip_serializing_if = "Option::is_none")]
    epoch: Option<u64>,
    #[serde(
        rename = "swarmhub_super_seed",
        skip_serializing_if = "Option::is_none"
    )]
    super_seed: Option<u8>,
    #[serde(rename = "swarmhub_site", skip_serializing_if = "Option::is_none")]
    site: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    upload_only: Option<u8>,
    #[serde(skip_serializing_if = "Option::is_none")]
    v: Option<&'a str>,
}

/// What we read from a peer's extended handshake. Every integer is read as `i64`, the
/// widest type librqbit-bencode parses, and narrowed afterwards; see [`has_long_number`].
#[derive(Deserialize)]
struct HandshakeDictIn<'a> {
    #[serde(default, borrow)]
    v: Option<&'a [u8]>,
    #[serde(default)]
    p: Option<i64>,
    #[serde(default)]
    reqq: Option<i64>,
    #[serde(default)]
    upload_only: Option<i64>,
    #[serde(rename = "swarmhub_epoch", default)]
    epoch: Option<i64>,
    #[serde(rename = "swarmhub_super_seed", default)]
    super_seed: Option<i64>,
    #[serde(rename = "swarmhub_site", default, borrow)]
    site: Option<&'a [u8]>,
}

/// Longest run of ASCII digits we let librqbit-bencode see: 18 digits always fit `i64`
/// (and `usize` on 64-bit targets).
const MAX_DIGITS: usize = if usize::BITS >= 64 { 18 } else { 9 };

/// librqbit-bencode 9.1 parses integers and string lengths with `atoi`'s unchecked
/// `from_radix_10`: a number too large for the target type panics in debug builds
/// (overflow checks) and silently wraps in release builds. Bencode input from a peer
/// therefore must not contain a run of digits longer than [`MAX_DIGITS`], and must be
/// parsed into `i64` fields only (a `u8` or `u32` field would overflow on far fewer
/// digits). A byte string holding 19+ consecutive digits is rejected too; no real
/// extended handshake has one.
pub(crate) fn has_long_number(bencoded: &[u8]) -> bool {
    bencoded
        .split(|b| !b.is_ascii_digit())
        .any(|run| run.len() > MAX_DIGITS)
}

impl ExtendedHandshake {
    /// Largest [`revocation_epoch`](ExtendedHandshake::revocation_epoch) that can be
    /// sent: 18 decimal digits (see the decoder's overflow guard).
    pub const MAX_EPOCH: u64 = 999_999_999_999_999_999;

    fn to_dict(&self) -> HandshakeDictOut<'_> {
        HandshakeDictOut {
            m: BTreeMap::new(),
            p: self.listen_port,
            reqq: self.reqq,
            epoch: self.revocation_epoch,
            super_seed: self.super_seeding.then_some(1),
            site: self.site.as_deref(),
            upload_only: self.upload_only.then_some(1),
            v: self.client.as_deref(),
        }
    }

    /// Parse the bencoded dictionary of an extended handshake (the frame after its
    /// 6-byte header). Unknown keys are ignored; a `p` that is not a port, or a `reqq`
    /// outside `u32`, reads as `None`.
    pub(crate) fn from_payload(dict: &[u8]) -> Result<ExtendedHandshake, DecodeError> {
        if has_long_number(dict) {
            return Err(DecodeError::Extended(format!(
                "contains a number longer than {MAX_DIGITS} digits"
            )));
        }
        let raw: HandshakeDictIn<'_> =
            bencode::from_bytes(dict).map_err(|e| DecodeError::Extended(e.to_string()))?;
        let revocation_epoch = match raw.epoch {
            None => None,
            Some(e) => Some(
                u64::try_from(e)
                    .map_err(|_| DecodeError::Extended(format!("{EPOCH_KEY} is negative ({e})")))?,
            ),
        };
        Ok(ExtendedHandshake {
            client: raw.v.map(|v| String::from_utf8_lossy(v).into_owned()),
            listen_port: raw.p.and_then(|p| u16::try_from(p).ok()),
            reqq: raw.reqq.and_then(|r| u32::try_from(r).ok()),
            upload_only: raw.upload_only.is_some_and(|u| u != 0),
            revocation_epoch,
            super_seeding: raw.super_seed.is_some_and(|u| u != 0),
            site: raw
                .site
                .filter(|s| !s.is_empty() && s.len() <= MAX_SITE_LEN)
                .and_then(|s| std::str::from_utf8(s).ok())
                .map(str::to_owned),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn encoded(m: &Message) -> Vec<u8> {
        let mut out = Vec::new();
        m.encode(&mut out).expect("encodes");
        out
    }

    #[test]
    fn bep3_layouts_match_the_spec() {
        assert_eq!(encoded(&Message::KeepAlive), [0, 0, 0, 0]);
        assert_eq!(encoded(&Message::Interested), [0, 0, 0, 1, 2]);
        assert_eq!(
            encoded(&Message::Have(0x0102_0304)),
            [0, 0, 0, 5, 4, 1, 2, 3, 4]
        );
        let req = BlockRef {
            piece: 1,
            begin: 0x4000,
            length: 0x4000,
        };
        assert_eq!(
            encoded(&Message::Cancel(req)),
            [0, 0, 0, 13, 8, 0, 0, 0, 1, 0, 0, 0x40, 0, 0, 0, 0x40, 0]
        );
        let piece = Message::Piece(
            BlockRef {
                piece: 2,
                begin: 3,
                length: 2,
            },
            Bytes::from_static(b"xy"),
        );
        assert_eq!(
            encoded(&piece),
            [0, 0, 0, 11, 7, 0, 0, 0, 2, 0, 0, 0, 3, b'x', b'y']
        );
    }

    #[test]
    fn extended_handshake_is_a_sorted_bencoded_dict_with_our_key() {
        let hs = ExtendedHandshake {
            client: Some("swarmhub 0.1".into()),
            listen_port: Some(6881),
            reqq: Some(250),
            upload_only: true,
            revocation_epoch: Some(7),
            super_seeding: false,
            site: None,
        };
        let out = encoded(&Message::ExtendedHandshake(hs));
        assert_eq!(&out[4..6], &[20, 0]);
        assert_eq!(
            &out[6..],
            &b"d1:mde1:pi6881e4:reqqi250e14:swarmhub_epochi7e11:upload_onlyi1e1:v12:swarmhub 0.1e"
                [..]
        );
        assert!(out[6..]
            .windows(EPOCH_KEY.len())
            .any(|w| w == EPOCH_KEY.as_bytes()));
        let prefix = u32::from_be_bytes([out[0], out[1], out[2], out[3]]);
        assert_eq!(prefix as usize, out.len() - 4);
    }

    #[test]
    fn default_extended_handshake_omits_absent_keys() {
        let out = encoded(&Message::ExtendedHandshake(ExtendedHandshake::default()));
        assert_eq!(&out[6..], b"d1:mdee");
        assert_eq!(
            Message::ExtendedHandshake(ExtendedHandshake::default()).wire_len(),
            out.len()
        );
    }

    #[test]
    fn handshake_from_other_clients_ignores_unknown_keys_and_out_of_range_values() {
        let dict = b"d1:md11:ut_metadatai300e6:ut_pexi1ee1:pi70000e4:reqqi-1e\
                     1:v5:rqbit6:yourip4:\x7f\x00\x00\x0111:upload_onlyi0ee";
        let hs = ExtendedHandshake::from_payload(dict).expect("valid handshake");
        assert_eq!(hs.client.as_deref(), Some("rqbit"));
        assert_eq!(hs.listen_port, None, "70000 is not a port");
        assert_eq!(hs.reqq, None, "-1 is not a queue length");
        assert!(!hs.upload_only);
        assert!(!hs.super_seeding);
        assert_eq!(hs.revocation_epoch, None);
    }

    #[test]
    fn super_seeding_is_our_own_key_and_not_upload_only() {
        let hs = ExtendedHandshake {
            super_seeding: true,
            ..Default::default()
        };
        let out = encoded(&Message::ExtendedHandshake(hs.clone()));
        assert_eq!(&out[6..], b"d1:mde19:swarmhub_super_seedi1ee");
        assert_eq!(ExtendedHandshake::from_payload(&out[6..]), Ok(hs));
    }

    #[test]
    fn the_site_is_our_own_key_and_round_trips() {
        let hs = ExtendedHandshake {
            site: Some("paris".into()),
            ..Default::default()
        };
        let out = encoded(&Message::ExtendedHandshake(hs.clone()));
        assert_eq!(&out[6..], b"d1:mde13:swarmhub_site5:parise");
        assert_eq!(ExtendedHandshake::from_payload(&out[6..]), Ok(hs));
        // An empty or overlong name is no site, not an error.
        let long = format!("d13:swarmhub_site{}:{}e", 300, "x".repeat(300));
        for dict in [&b"d13:swarmhub_site0:e"[..], long.as_bytes()] {
            let hs = ExtendedHandshake::from_payload(dict).expect("valid handshake");
            assert_eq!(hs.site, None);
        }
    }

    #[test]
    fn numbers_that_would_overflow_librqbit_bencode_are_rejected_first() {
        // 19 digits: beyond i64, which librqbit-bencode would not catch.
        for dict in [
            &b"d1:pi9999999999999999999ee"[..],
            b"d1:xi-9999999999999999999ee",
            b"d1:v9999999999999999999:ae",
            b"d14:swarmhub_epochi18446744073709551615ee",
        ] {
            assert!(has_long_number(dict));
            assert!(matches!(
                ExtendedHandshake::from_payload(dict),
                Err(DecodeError::Extended(reason)) if reason.contains("digits")
            ));
        }
        let max = ExtendedHandshake {
            revocation_epoch: Some(ExtendedHandshake::MAX_EPOCH),
            ..ExtendedHandshake::default()
        };
        let out = encoded(&Message::ExtendedHandshake(max.clone()));
        assert_eq!(ExtendedHandshake::from_payload(&out[6..]), Ok(max));
        let too_big = Message::ExtendedHandshake(ExtendedHandshake {
            revocation_epoch: Some(ExtendedHandshake::MAX_EPOCH + 1),
            ..ExtendedHandshake::default()
        });
        let mut out = Vec::new();
        assert!(matches!(
            too_big.encode(&mut out),
            Err(EncodeError::Serialize { .. })
        ));
        assert!(out.is_empty());
    }

    #[test]
    fn bad_piece_and_reserved_id_are_encode_errors_and_append_nothing() {
        let block = BlockRef {
            piece: 0,
            begin: 0,
            length: 4,
        };
        let cases = [
            (
                Message::Piece(block, Bytes::from_static(b"abc")),
                EncodeError::PieceDataLength {
                    piece: 0,
                    begin: 0,
                    length: 4,
                    data_len: 3,
                },
            ),
            (
                Message::Piece(BlockRef { length: 0, ..block }, Bytes::new()),
                EncodeError::EmptyBody("piece"),
            ),
            (
                Message::Bitfield(Bytes::new()),
                EncodeError::EmptyBody("bitfield"),
            ),
            (
                Message::Extended {
                    id: 0,
                    payload: Bytes::new(),
                },
                EncodeError::ReservedExtendedId,
            ),
        ];
        for (msg, want) in cases {
            let mut out = vec![9u8];
            assert_eq!(msg.encode(&mut out), Err(want));
            assert_eq!(out, [9u8], "{msg:?} left bytes behind");
        }
    }

    #[test]
    fn wire_len_of_empty_simulated_piece_counts_the_block() {
        let msg = Message::Piece(
            BlockRef {
                piece: 0,
                begin: 0,
                length: super::super::BLOCK_LEN,
            },
            Bytes::new(),
        );
        assert_eq!(msg.wire_len(), 13 + 16 * 1024);
    }
}
