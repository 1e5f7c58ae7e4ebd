//! Every message kind survives encode -> decode, whatever the chunking.

use super::{decode_chunked, encode_all, sample_messages};
use crate::wire::{BlockRef, Decoder, DecoderLimits, Handshake, Message};
use crate::Id20;

fn limits_with_pieces() -> DecoderLimits {
    DecoderLimits {
        num_pieces: Some(18),
        ..DecoderLimits::default()
    }
}

#[test]
fn wire_len_equals_encoded_length() {
    for msg in sample_messages() {
        let mut out = vec![0xEE; 3];
        msg.encode(&mut out).expect("encodes");
        assert_eq!(msg.wire_len(), out.len() - 3, "{}", msg.name());
        assert_eq!(&out[..3], &[0xEE; 3], "encode appends, {}", msg.name());
    }
}

#[test]
fn each_message_round_trips_whole_and_byte_by_byte() {
    for limits in [DecoderLimits::default(), limits_with_pieces()] {
        for msg in sample_messages() {
            let bytes = encode_all(std::slice::from_ref(&msg));
            let whole = decode_chunked(limits, &bytes, &[bytes.len()]).expect("whole");
            assert_eq!(whole, std::slice::from_ref(&msg));
            let bytewise = decode_chunked(limits, &bytes, &[1]).expect("byte by byte");
            assert_eq!(bytewise, [msg]);
        }
    }
}

#[test]
fn all_messages_in_one_chunk_all_come_out() {
    let msgs = sample_messages();
    let bytes = encode_all(&msgs);
    for limits in [DecoderLimits::default(), limits_with_pieces()] {
        assert_eq!(
            decode_chunked(limits, &bytes, &[bytes.len()]),
            Ok(msgs.clone())
        );
        assert_eq!(decode_chunked(limits, &bytes, &[1]), Ok(msgs.clone()));
        assert_eq!(
            decode_chunked(limits, &bytes, &[7, 1, 4096, 3]),
            Ok(msgs.clone())
        );
    }
}

#[test]
fn handshake_then_messages_in_one_chunk() {
    let hs = Handshake {
        info_hash: Id20::new([1; 20]),
        peer_id: Id20::new([2; 20]),
        extended: true,
        fast: true,
    };
    let msgs = sample_messages();
    let mut bytes = Vec::new();
    hs.encode(&mut bytes);
    bytes.extend_from_slice(&encode_all(&msgs));

    for chunk in [bytes.len(), 1] {
        let mut dec = Decoder::new(DecoderLimits::default());
        let mut got_hs = None;
        let mut got = Vec::new();
        for piece in bytes.chunks(chunk) {
            dec.push(piece);
            if got_hs.is_none() {
                got_hs = dec.poll_handshake().expect("valid handshake");
                if got_hs.is_none() {
                    assert_eq!(
                        dec.poll_message(),
                        Err(crate::wire::DecodeError::HandshakeNotPolled)
                    );
                    continue;
                }
            }
            while let Some(m) = dec.poll_message().expect("valid messages") {
                got.push(m);
            }
        }
        assert_eq!(got_hs, Some(hs));
        assert_eq!(got, msgs);
        assert_eq!(dec.buffered_len(), 0);
        assert_eq!(
            dec.poll_handshake(),
            Err(crate::wire::DecodeError::HandshakeAlreadyPolled)
        );
    }
}

#[test]
fn partial_frame_waits_and_keeps_its_bytes() {
    let msg = &sample_messages()[9]; // 16 KiB piece
    assert_eq!(msg.name(), "piece");
    let bytes = encode_all(std::slice::from_ref(msg));
    let mut dec = Decoder::new_after_handshake(DecoderLimits::default());
    dec.push(&bytes[..bytes.len() - 1]);
    assert_eq!(dec.poll_message(), Ok(None));
    assert_eq!(dec.buffered_len(), bytes.len() - 1);
    dec.push(&bytes[bytes.len() - 1..]);
    assert_eq!(dec.poll_message().as_ref(), Ok(&Some(msg.clone())));
    assert_eq!(dec.poll_message(), Ok(None));
}

#[test]
fn set_num_pieces_turns_on_index_checks() {
    let bytes = encode_all(&[Message::Have(18)]);
    let mut dec = Decoder::new_after_handshake(DecoderLimits::default());
    dec.push(&bytes);
    assert_eq!(dec.poll_message(), Ok(Some(Message::Have(18))));
    dec.set_num_pieces(18);
    dec.push(&bytes);
    assert!(matches!(
        dec.poll_message(),
        Err(crate::wire::DecodeError::PieceIndexOutOfRange {
            index: 18,
            num_pieces: 18,
            ..
        })
    ));
}

#[test]
fn long_stream_of_pieces_keeps_the_buffer_bounded() {
    let msg = &sample_messages()[9];
    let one = encode_all(std::slice::from_ref(msg));
    let mut dec = Decoder::new_after_handshake(DecoderLimits::default());
    let mut held = Vec::new();
    for round in 0..2_000 {
        // Odd-sized reads, and keep some pieces alive so the buffer is shared.
        for chunk in one.chunks(1_000 + round % 7) {
            dec.push(chunk);
            while let Some(m) = dec.poll_message().expect("valid") {
                if round % 10 == 0 {
                    held.push(m);
                }
            }
        }
        if held.len() > 20 {
            held.clear();
        }
        assert!(
            dec.buffer_capacity() < 256 * 1024,
            "capacity {}",
            dec.buffer_capacity()
        );
    }
}

#[test]
fn piece_data_is_a_view_of_the_receive_buffer_not_a_copy() {
    let msg = &sample_messages()[9];
    let mut bytes = encode_all(std::slice::from_ref(msg));
    bytes.extend_from_slice(&bytes.clone());
    let mut dec = Decoder::new_after_handshake(DecoderLimits::default());
    dec.push(&bytes);
    let data = |m: Option<Message>| match m {
        Some(Message::Piece(_, data)) => data,
        other => panic!("expected a piece, got {other:?}"),
    };
    let first = data(dec.poll_message().expect("valid"));
    let second = data(dec.poll_message().expect("valid"));
    assert_eq!(first.len(), 16 * 1024);
    // Both blocks sit where they were received, one frame apart, in one allocation.
    assert_eq!(
        second.as_ptr() as usize - first.as_ptr() as usize,
        msg.wire_len()
    );
}

#[test]
fn debug_output_does_not_dump_the_buffer() {
    let mut dec = Decoder::new_after_handshake(DecoderLimits::default());
    dec.push(&[0xAB; 1000]);
    let text = format!("{dec:?}");
    assert!(text.contains("buffered_len: 1000"), "{text}");
    assert!(text.len() < 300, "{text}");
}

/// The BEP 6 messages laid out byte for byte as the spec gives them.
#[test]
fn fast_extension_messages_have_their_bep6_layout() {
    let block = BlockRef {
        piece: 0x0102_0304,
        begin: 0x4000,
        length: 0x4000,
    };
    let cases: [(Message, &[u8]); 5] = [
        (Message::HaveAll, &[0, 0, 0, 1, 0x0E]),
        (Message::HaveNone, &[0, 0, 0, 1, 0x0F]),
        (Message::Suggest(7), &[0, 0, 0, 5, 0x0D, 0, 0, 0, 7]),
        (Message::AllowedFast(258), &[0, 0, 0, 5, 0x11, 0, 0, 1, 2]),
        (
            Message::Reject(block),
            &[0, 0, 0, 13, 0x10, 1, 2, 3, 4, 0, 0, 0x40, 0, 0, 0, 0x40, 0],
        ),
    ];
    for (msg, wire) in cases {
        let mut out = Vec::new();
        msg.encode(&mut out).expect("encodes");
        assert_eq!(out, wire, "{}", msg.name());
        assert_eq!(msg.wire_len(), wire.len());
        let mut dec = Decoder::new_after_handshake(DecoderLimits::default());
        dec.push(wire);
        assert_eq!(dec.poll_message(), Ok(Some(msg)));
    }
}
