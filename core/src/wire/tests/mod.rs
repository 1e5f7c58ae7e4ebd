//! Codec tests across encoder and decoder: round trips, rejections, properties.

mod props;
mod reject;
mod roundtrip;

use bytes::Bytes;

use super::{BlockRef, Decoder, DecoderLimits, ExtendedHandshake, Message, BLOCK_LEN};

/// One of every message kind, each with real data.
pub(super) fn sample_messages() -> Vec<Message> {
    let block = BlockRef {
        piece: 3,
        begin: 2 * BLOCK_LEN,
        length: BLOCK_LEN,
    };
    let data: Vec<u8> = (0..BLOCK_LEN).map(|i| (i % 251) as u8).collect();
    vec![
        Message::KeepAlive,
        Message::Choke,
        Message::Unchoke,
        Message::Interested,
        Message::NotInterested,
        Message::Have(7),
        Message::Bitfield(Bytes::from_static(&[0b1010_0000, 0xFF, 0b1100_0000])),
        Message::Request(block),
        Message::Cancel(block),
        Message::Piece(block, Bytes::from(data)),
        Message::Piece(
            BlockRef {
                piece: 9,
                begin: 5,
                length: 1,
            },
            Bytes::from_static(b"z"),
        ),
        Message::HaveAll,
        Message::HaveNone,
        Message::Reject(block),
        Message::Suggest(4),
        Message::AllowedFast(5),
        Message::ExtendedHandshake(ExtendedHandshake {
            client: Some("swarmhub/0.1 ünïcode".into()),
            listen_port: Some(6881),
            reqq: Some(500),
            upload_only: true,
            revocation_epoch: Some(ExtendedHandshake::MAX_EPOCH),
            super_seeding: true,
            site: Some("site-ä".into()),
        }),
        Message::ExtendedHandshake(ExtendedHandshake::default()),
        Message::Extended {
            id: 3,
            payload: Bytes::from_static(b"not even bencode"),
        },
        Message::Extended {
            id: 255,
            payload: Bytes::new(),
        },
    ]
}

pub(super) fn encode_all(msgs: &[Message]) -> Vec<u8> {
    let mut out = Vec::new();
    for m in msgs {
        m.encode(&mut out).expect("sample messages encode");
    }
    out
}

/// Push `bytes` in chunks of the given sizes (cycled), draining after every push.
pub(super) fn decode_chunked(
    limits: DecoderLimits,
    bytes: &[u8],
    chunk_sizes: &[usize],
) -> Result<Vec<Message>, super::DecodeError> {
    let mut dec = Decoder::new_after_handshake(limits);
    let mut out = Vec::new();
    let mut rest = bytes;
    let mut sizes = chunk_sizes.iter().copied().cycle();
    while !rest.is_empty() {
        let n = sizes.next().unwrap_or(rest.len()).clamp(1, rest.len());
        let (chunk, tail) = rest.split_at(n);
        rest = tail;
        dec.push(chunk);
        while let Some(m) = dec.poll_message()? {
            out.push(m);
        }
    }
    assert_eq!(dec.buffered_len(), 0, "whole messages leave nothing behind");
    Ok(out)
}
