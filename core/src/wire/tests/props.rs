//! Property tests: no panics on hostile input, and round trips of valid streams.

use bytes::Bytes;
use proptest::prelude::*;

use super::{decode_chunked, encode_all};
use crate::wire::{BlockRef, Decoder, DecoderLimits, ExtendedHandshake, Message};

const NUM_PIECES: u32 = 1000;

fn block() -> impl Strategy<Value = BlockRef> {
    (0..NUM_PIECES, 1..=crate::wire::BLOCK_LEN)
        .prop_flat_map(|(piece, length)| (Just(piece), 0..=u32::MAX - length, Just(length)))
        .prop_map(|(piece, begin, length)| BlockRef {
            piece,
            begin,
            length,
        })
}

fn extended_handshake() -> impl Strategy<Value = ExtendedHandshake> {
    (
        proptest::option::of("[^0-9]{0,40}"),
        proptest::option::of(any::<u16>()),
        proptest::option::of(any::<u32>()),
        any::<bool>(),
        proptest::option::of(0..=ExtendedHandshake::MAX_EPOCH),
        any::<bool>(),
        proptest::option::of("[a-z][a-z0-9-]{0,15}"),
    )
        .prop_map(
            |(client, listen_port, reqq, upload_only, revocation_epoch, super_seeding, site)| {
                ExtendedHandshake {
                    client,
                    listen_port,
                    reqq,
                    upload_only,
                    revocation_epoch,
                    super_seeding,
                    site,
                }
            },
        )
}

fn message() -> impl Strategy<Value = Message> {
    // Bitfields are exactly NUM_PIECES bits with the spare bits clear.
    let bitfield_len = NUM_PIECES.div_ceil(8) as usize;
    let spare_mask = 0xFFu8 << ((8 - NUM_PIECES % 8) % 8);
    prop_oneof![
        Just(Message::KeepAlive),
        Just(Message::Choke),
        Just(Message::Unchoke),
        Just(Message::Interested),
        Just(Message::NotInterested),
        (0..NUM_PIECES).prop_map(Message::Have),
        proptest::collection::vec(any::<u8>(), bitfield_len).prop_map(move |mut bits| {
            if let Some(last) = bits.last_mut() {
                *last &= spare_mask;
            }
            Message::Bitfield(Bytes::from(bits))
        }),
        block().prop_map(Message::Request),
        block().prop_map(Message::Cancel),
        Just(Message::HaveAll),
        Just(Message::HaveNone),
        block().prop_map(Message::Reject),
        (0..NUM_PIECES).prop_map(Message::Suggest),
        (0..NUM_PIECES).prop_map(Message::AllowedFast),
        (block(), any::<u8>()).prop_map(|(b, fill)| {
            // Mostly small blocks to keep the test fast; the length is still arbitrary.
            let b = BlockRef {
                length: b.length % 2048 + 1,
                ..b
            };
            Message::Piece(b, Bytes::from(vec![fill; b.length as usize]))
        }),
        extended_handshake().prop_map(Message::ExtendedHandshake),
        (1..=u8::MAX, proptest::collection::vec(any::<u8>(), 0..200)).prop_map(|(id, p)| {
            Message::Extended {
                id,
                payload: Bytes::from(p),
            }
        }),
    ]
}

/// Frames with plausible headers (valid or nearly valid ids and small lengths) and
/// random bodies: reaches the body parsers far more often than uniform bytes do.
fn plausible_frames() -> impl Strategy<Value = Vec<u8>> {
    let frame = (
        prop_oneof![0u8..=9, Just(20u8), any::<u8>()],
        prop_oneof![0u32..=20, 0u32..=300, any::<u32>()],
        proptest::collection::vec(any::<u8>(), 0..300),
    )
        .prop_map(|(id, len, body)| {
            let mut f = len.to_be_bytes().to_vec();
            f.push(id);
            f.extend_from_slice(&body[..body.len().min(len.saturating_sub(1) as usize)]);
            f
        });
    proptest::collection::vec(frame, 0..20).prop_map(|frames| frames.concat())
}

fn limits() -> impl Strategy<Value = DecoderLimits> {
    (
        proptest::option::of(0u32..3000),
        prop_oneof![Just(crate::wire::BLOCK_LEN), 0u32..100, any::<u32>()],
        prop_oneof![Just(crate::wire::DEFAULT_MAX_EXTENDED_LEN), 0u32..100],
    )
        .prop_map(
            |(num_pieces, max_block_len, max_extended_len)| DecoderLimits {
                max_block_len,
                num_pieces,
                max_extended_len,
            },
        )
}

/// Drive a decoder over `bytes` in the given chunking, polling like a session would.
fn drive(mut dec: Decoder, bytes: &[u8], chunks: &[usize], handshake: bool) {
    let mut rest = bytes;
    let mut sizes = chunks.iter().copied().cycle();
    let mut awaiting = handshake;
    while !rest.is_empty() {
        let n = sizes.next().unwrap_or(1).clamp(1, rest.len());
        let (chunk, tail) = rest.split_at(n);
        rest = tail;
        dec.push(chunk);
        if awaiting {
            match dec.poll_handshake() {
                Ok(Some(_)) => awaiting = false,
                Ok(None) => continue,
                Err(_) => return,
            }
        }
        loop {
            match dec.poll_message() {
                Ok(Some(_)) => {}
                Ok(None) => break,
                Err(_) => {
                    assert_eq!(dec.buffered_len(), 0);
                    return;
                }
            }
        }
    }
}

proptest! {
    #[test]
    fn decoder_never_panics_on_arbitrary_bytes(
        bytes in proptest::collection::vec(any::<u8>(), 0..4096),
        chunks in proptest::collection::vec(1usize..600, 1..8),
        limits in limits(),
        handshake in any::<bool>(),
    ) {
        let dec = if handshake { Decoder::new(limits) } else { Decoder::new_after_handshake(limits) };
        drive(dec, &bytes, &chunks, handshake);
    }

    #[test]
    fn decoder_never_panics_on_plausible_frames(
        bytes in plausible_frames(),
        chunks in proptest::collection::vec(1usize..600, 1..8),
        limits in limits(),
    ) {
        drive(Decoder::new_after_handshake(limits), &bytes, &chunks, false);
    }

    #[test]
    fn bencode_like_extended_handshakes_never_panic(
        dict in proptest::collection::vec(
            proptest::sample::select(b"dlie0123456789:-pv".to_vec()), 0..120),
    ) {
        let mut payload = vec![0u8];
        payload.extend_from_slice(b"d1:p");
        payload.extend_from_slice(&dict);
        let mut frame = u32::try_from(payload.len() + 1).unwrap_or(0).to_be_bytes().to_vec();
        frame.push(20);
        frame.extend_from_slice(&payload);
        let mut dec = Decoder::new_after_handshake(DecoderLimits::default());
        dec.push(&frame);
        let _ = dec.poll_message();
    }

    #[test]
    fn valid_message_streams_round_trip_in_any_chunking(
        msgs in proptest::collection::vec(message(), 0..40),
        chunks in proptest::collection::vec(1usize..5000, 1..8),
        known_pieces in any::<bool>(),
    ) {
        let bytes = encode_all(&msgs);
        prop_assert_eq!(bytes.len(), msgs.iter().map(Message::wire_len).sum::<usize>());
        let limits = DecoderLimits {
            num_pieces: known_pieces.then_some(NUM_PIECES),
            ..DecoderLimits::default()
        };
        prop_assert_eq!(decode_chunked(limits, &bytes, &chunks), Ok(msgs));
    }
}
