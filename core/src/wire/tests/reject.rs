//! Every rejection: the right error variant, raised as early as possible, and no
//! buffering of a claimed length.

use crate::wire::{
    BlockRef, DecodeError, Decoder, DecoderLimits, Message, BLOCK_LEN, DEFAULT_MAX_EXTENDED_LEN,
};

fn frame(len: u32, body: &[u8]) -> Vec<u8> {
    let mut out = len.to_be_bytes().to_vec();
    out.extend_from_slice(body);
    out
}

fn whole(id: u8, payload: &[u8]) -> Vec<u8> {
    let mut body = vec![id];
    body.extend_from_slice(payload);
    frame(body.len() as u32, &body)
}

fn pieces(n: u32) -> DecoderLimits {
    DecoderLimits {
        num_pieces: Some(n),
        ..DecoderLimits::default()
    }
}

/// Push `bytes`, poll once, and return the error; checks the decoder is then dead.
fn reject(limits: DecoderLimits, bytes: &[u8]) -> DecodeError {
    let mut dec = Decoder::new_after_handshake(limits);
    dec.push(bytes);
    let err = match dec.poll_message() {
        Err(e) => e,
        Ok(m) => panic!("expected an error, decoded {m:?}"),
    };
    assert_eq!(dec.buffered_len(), 0, "buffer dropped after {err}");
    dec.push(&[0, 0, 0, 0]);
    assert_eq!(dec.buffered_len(), 0, "input ignored after {err}");
    assert_eq!(dec.poll_message().as_ref(), Err(&err), "error is sticky");
    err
}

/// Push only the 4-byte prefix and id of an oversized frame: the error comes at once,
/// and nothing near the claimed length was allocated.
fn reject_header_only(limits: DecoderLimits, len: u32, id: u8) -> DecodeError {
    let mut dec = Decoder::new_after_handshake(limits);
    dec.push(&frame(len, &[id]));
    assert_eq!(dec.buffered_len(), 5);
    assert!(
        dec.buffer_capacity() < 64 * 1024,
        "capacity {}",
        dec.buffer_capacity()
    );
    let err = dec
        .poll_message()
        .expect_err("oversized prefix is rejected at once");
    assert_eq!(dec.buffered_len(), 0);
    assert!(dec.buffer_capacity() < 64 * 1024);
    err
}

#[test]
fn huge_prefix_is_rejected_after_four_bytes() {
    let mut dec = Decoder::new_after_handshake(DecoderLimits::default());
    dec.push(&u32::MAX.to_be_bytes());
    assert_eq!(
        dec.poll_message(),
        Err(DecodeError::FrameTooLong {
            id: None,
            len: u32::MAX,
            max: BLOCK_LEN + 9
        })
    );
    assert_eq!(dec.buffered_len(), 0);
    assert!(dec.buffer_capacity() < 64 * 1024);
}

#[test]
fn piece_longer_than_one_block_is_rejected_from_its_header() {
    let err = reject_header_only(DecoderLimits::default(), BLOCK_LEN + 10, 7);
    assert_eq!(
        err,
        DecodeError::FrameTooLong {
            id: None,
            len: BLOCK_LEN + 10,
            max: BLOCK_LEN + 9
        }
    );
    // With a larger extended limit the global cap is looser; the per-id cap still holds.
    let loose = DecoderLimits {
        max_extended_len: 1 << 20,
        ..DecoderLimits::default()
    };
    for id in [7, 5] {
        let err = reject_header_only(loose, 500_000, id);
        assert_eq!(
            err,
            DecodeError::FrameTooLong {
                id: Some(id),
                len: 500_000,
                max: BLOCK_LEN + 9
            }
        );
    }
}

#[test]
fn extended_longer_than_its_limit_is_rejected_from_its_header() {
    let limits = DecoderLimits {
        max_extended_len: 1024,
        ..DecoderLimits::default()
    };
    assert_eq!(
        reject_header_only(limits, 2000, 20),
        DecodeError::FrameTooLong {
            id: Some(20),
            len: 2000,
            max: 1024
        }
    );
    assert_eq!(
        DecoderLimits::default().max_extended_len,
        DEFAULT_MAX_EXTENDED_LEN
    );
}

#[test]
fn bitfield_of_wrong_size_is_rejected_from_its_header() {
    assert_eq!(
        reject_header_only(pieces(18), 1 + 4, 5),
        DecodeError::BitfieldLength {
            got: 4,
            expected: 3
        }
    );
    assert_eq!(
        reject_header_only(pieces(18), 1 + 10_000, 5),
        DecodeError::BitfieldLength {
            got: 10_000,
            expected: 3
        }
    );
    assert_eq!(
        reject(pieces(18), &whole(5, &[0xFF, 0xFF])),
        DecodeError::BitfieldLength {
            got: 2,
            expected: 3
        }
    );
}

#[test]
fn bitfield_with_spare_bits_is_rejected() {
    // 18 pieces: the last byte may use its top 2 bits only.
    assert_eq!(
        reject(pieces(18), &whole(5, &[0xFF, 0xFF, 0b1110_0000])),
        DecodeError::BitfieldSpareBits
    );
    assert_eq!(
        reject(pieces(18), &whole(5, &[0, 0, 0b0000_0001])),
        DecodeError::BitfieldSpareBits
    );
    // A multiple of 8 has no spare bits: any last byte is fine.
    let mut dec = Decoder::new_after_handshake(pieces(16));
    dec.push(&whole(5, &[0xFF, 0xFF]));
    assert!(matches!(dec.poll_message(), Ok(Some(Message::Bitfield(_)))));
}

#[test]
fn unsupported_message_ids_are_rejected_from_the_id_byte() {
    // 9 = DHT port, 10-12 and 18-19 = unassigned, 21 and 255 = nothing.
    for id in [9u8, 10, 12, 18, 19, 21, 255] {
        let mut dec = Decoder::new_after_handshake(DecoderLimits::default());
        dec.push(&frame(3, &[id]));
        assert_eq!(dec.poll_message(), Err(DecodeError::UnknownMessageId(id)));
    }
}

#[test]
fn impossible_lengths_for_their_id_are_rejected() {
    let cases: [(u8, u32); 13] = [
        (13, 1),  // suggest without its index
        (14, 5),  // have all with a body
        (15, 2),  // have none with a body
        (16, 9),  // reject of half a block reference
        (17, 13), // allowed fast with a block reference
        (0, 2),
        (3, 5),
        (4, 4),
        (4, 6),
        (6, 12),
        (8, 17),
        (7, 9), // piece with no data
        (5, 1), // empty bitfield
    ];
    for (id, len) in cases {
        let mut dec = Decoder::new_after_handshake(DecoderLimits::default());
        dec.push(&frame(len, &[id]));
        assert_eq!(
            dec.poll_message(),
            Err(DecodeError::BadLength { id, len }),
            "id {id} len {len}"
        );
    }
    assert_eq!(
        reject(DecoderLimits::default(), &frame(1, &[20])),
        DecodeError::BadLength { id: 20, len: 1 }
    );
}

#[test]
fn piece_indexes_beyond_the_torrent_are_rejected() {
    let block = BlockRef {
        piece: 18,
        begin: 0,
        length: 4,
    };
    let msgs = [
        ("have", Message::Have(18)),
        ("request", Message::Request(block)),
        ("cancel", Message::Cancel(block)),
        ("reject_request", Message::Reject(block)),
        ("suggest_piece", Message::Suggest(18)),
        ("allowed_fast", Message::AllowedFast(18)),
        (
            "piece",
            Message::Piece(block, bytes::Bytes::from_static(b"abcd")),
        ),
    ];
    for (name, msg) in msgs {
        let mut bytes = Vec::new();
        msg.encode(&mut bytes).expect("encodes");
        assert_eq!(
            reject(pieces(18), &bytes),
            DecodeError::PieceIndexOutOfRange {
                message: name,
                index: 18,
                num_pieces: 18
            }
        );
    }
}

#[test]
fn requests_for_empty_or_oversized_blocks_are_rejected() {
    for (name, id) in [("request", 6u8), ("cancel", 8), ("reject_request", 16)] {
        let body = |begin: u32, length: u32| {
            let mut p = 1u32.to_be_bytes().to_vec();
            p.extend_from_slice(&begin.to_be_bytes());
            p.extend_from_slice(&length.to_be_bytes());
            whole(id, &p)
        };
        assert_eq!(
            reject(DecoderLimits::default(), &body(0, 0)),
            DecodeError::EmptyBlock { message: name }
        );
        assert_eq!(
            reject(DecoderLimits::default(), &body(0, BLOCK_LEN + 1)),
            DecodeError::BlockTooLong {
                message: name,
                length: BLOCK_LEN + 1,
                max: BLOCK_LEN
            }
        );
        assert_eq!(
            reject(DecoderLimits::default(), &body(u32::MAX - 10, 100)),
            DecodeError::BlockRangeOverflow {
                message: name,
                begin: u32::MAX - 10,
                length: 100
            }
        );
    }
}

#[test]
fn malformed_extended_handshakes_are_rejected() {
    let bad: [&[u8]; 5] = [
        b"not bencode",
        b"d1:pi6881e",              // unterminated
        b"d1:p4:porte",             // port is a string
        b"d14:swarmhub_epochi-1ee", // negative epoch
        b"d1:pi1ee trailing",
    ];
    for dict in bad {
        let mut payload = vec![0u8];
        payload.extend_from_slice(dict);
        assert!(
            matches!(
                reject(DecoderLimits::default(), &whole(20, &payload)),
                DecodeError::Extended(_)
            ),
            "{}",
            String::from_utf8_lossy(dict)
        );
    }
}

#[test]
fn deeply_nested_extended_handshake_is_an_error_not_a_stack_overflow() {
    let mut payload = vec![0u8];
    payload.extend_from_slice(b"d1:x");
    payload.extend(std::iter::repeat_n(b'l', 5_000));
    payload.extend(std::iter::repeat_n(b'e', 5_000));
    payload.push(b'e');
    assert!(matches!(
        reject(DecoderLimits::default(), &whole(20, &payload)),
        DecodeError::Extended(_)
    ));
}

#[test]
fn bad_handshake_is_rejected_and_sticky() {
    let mut dec = Decoder::new(DecoderLimits::default());
    let mut bytes = vec![19u8];
    bytes.extend_from_slice(b"BitTorrent protocoX");
    bytes.extend_from_slice(&[0; 48]);
    dec.push(&bytes[..67]);
    assert_eq!(dec.poll_handshake(), Ok(None));
    dec.push(&bytes[67..]);
    let err = dec.poll_handshake().expect_err("bad protocol name");
    assert!(matches!(err, DecodeError::BadHandshake { .. }));
    assert_eq!(dec.poll_handshake().as_ref(), Err(&err));
    assert_eq!(dec.poll_message().as_ref(), Err(&err));
    assert_eq!(dec.buffered_len(), 0);
}

#[test]
fn keepalive_needs_only_its_prefix() {
    let mut dec = Decoder::new_after_handshake(DecoderLimits::default());
    dec.push(&[0, 0, 0]);
    assert_eq!(dec.poll_message(), Ok(None));
    dec.push(&[0, 0, 0, 0, 1]);
    assert_eq!(dec.poll_message(), Ok(Some(Message::KeepAlive)));
    // The second prefix (1) is in; its id byte is not.
    assert_eq!(dec.poll_message(), Ok(None));
    assert_eq!(dec.buffered_len(), 4);
}
