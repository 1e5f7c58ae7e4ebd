//! The 68-byte BitTorrent v1 opening handshake.

use librqbit_peer_protocol as pp;
use librqbit_peer_protocol::MessageDeserializeError;

use super::DecodeError;
use crate::Id20;

/// BEP 10 "extension protocol" flag: bit 20 of the 64-bit reserved field
/// (reserved byte 5, value 0x10).
const EXTENDED_BIT: u64 = 1 << 20;

/// BEP 6 "fast extension" flag: bit 2 of the reserved field (reserved byte 7,
/// value 0x04).
const FAST_BIT: u64 = 1 << 2;

/// The opening handshake: `19 "BitTorrent protocol" reserved[8] info_hash peer_id`.
///
/// The BEP 10 and BEP 6 reserved bits are modelled; other reserved bits are ignored on
/// decode and sent as zero (no DHT).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Handshake {
    /// SHA-1 of the torrent's info dictionary: which image this connection is about.
    pub info_hash: Id20,
    /// The sender's peer id.
    pub peer_id: Id20,
    /// The sender supports the BEP 10 extension protocol.
    pub extended: bool,
    /// The sender supports the BEP 6 fast extension. When both ends do, a
    /// choke no longer cancels requests by itself: the uploader rejects each
    /// one it will not serve (`Message::Reject`).
    pub fast: bool,
}

impl Handshake {
    /// Length of a handshake on the wire.
    pub const LEN: usize = 68;

    /// Append the 68 handshake bytes to `out`.
    pub fn encode(&self, out: &mut Vec<u8>) {
        let hs = pp::Handshake {
            reserved: if self.extended { EXTENDED_BIT } else { 0 }
                | if self.fast { FAST_BIT } else { 0 },
            info_hash: self.info_hash,
            peer_id: self.peer_id,
        };
        let mut buf = [0u8; Self::LEN];
        let written = hs.serialize_unchecked_len(&mut buf);
        debug_assert_eq!(written, Self::LEN);
        out.extend_from_slice(&buf);
    }

    /// Parse a handshake; fails if the protocol string is not "BitTorrent protocol".
    pub fn decode(b: &[u8; 68]) -> Result<Handshake, DecodeError> {
        match pp::Handshake::deserialize(b) {
            Ok((hs, _)) => Ok(Handshake {
                info_hash: hs.info_hash,
                peer_id: hs.peer_id,
                extended: hs.supports_extended(),
                fast: hs.reserved & FAST_BIT != 0,
            }),
            Err(e) => Err(DecodeError::BadHandshake {
                reason: match e {
                    MessageDeserializeError::HandshakePstrWrongLength(n) => {
                        format!("protocol name length byte is {n}, expected 19")
                    }
                    MessageDeserializeError::HandshakePstrWrongContent => {
                        "protocol name is not \"BitTorrent protocol\"".to_owned()
                    }
                    other => other.to_string(),
                },
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(extended: bool, fast: bool) -> Handshake {
        Handshake {
            info_hash: Id20::new([0xAB; 20]),
            peer_id: Id20::new(*b"-SH0100-abcdefghijkl"),
            extended,
            fast,
        }
    }

    #[test]
    fn round_trips_with_and_without_extended_and_fast_bits() {
        for (extended, fast) in [(false, false), (true, false), (false, true), (true, true)] {
            let mut out = Vec::new();
            sample(extended, fast).encode(&mut out);
            assert_eq!(out.len(), Handshake::LEN);
            assert_eq!(&out[..20], b"\x13BitTorrent protocol");
            assert_eq!(out[25], if extended { 0x10 } else { 0 });
            assert_eq!(out[27], if fast { 0x04 } else { 0 });
            let arr: [u8; 68] = out.as_slice().try_into().expect("68 bytes");
            assert_eq!(Handshake::decode(&arr), Ok(sample(extended, fast)));
        }
    }

    #[test]
    fn other_reserved_bits_are_ignored() {
        let mut out = Vec::new();
        sample(false, false).encode(&mut out);
        out[27] |= 0x01; // DHT bit
        out[20] |= 0x80; // an unassigned bit
        let arr: [u8; 68] = out.as_slice().try_into().expect("68 bytes");
        assert_eq!(Handshake::decode(&arr), Ok(sample(false, false)));
    }

    #[test]
    fn wrong_protocol_name_is_rejected() {
        let mut out = Vec::new();
        sample(true, true).encode(&mut out);
        let mut bad_len: [u8; 68] = out.as_slice().try_into().expect("68 bytes");
        bad_len[0] = 18;
        assert!(matches!(
            Handshake::decode(&bad_len),
            Err(DecodeError::BadHandshake { reason }) if reason.contains("18")
        ));
        let mut bad_name: [u8; 68] = out.as_slice().try_into().expect("68 bytes");
        bad_name[1] = b'b';
        assert!(matches!(
            Handshake::decode(&bad_name),
            Err(DecodeError::BadHandshake { .. })
        ));
    }
}
