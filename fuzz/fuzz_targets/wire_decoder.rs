//! The incremental wire decoder: a byte stream split at random points decodes
//! exactly as the same bytes pushed at once, never panics, and every decoded
//! message round-trips (decode, encode, decode, compare).
#![no_main]

use arbitrary::Arbitrary;
use libfuzzer_sys::fuzz_target;
use swarmhub_core::wire::{DecodeError, Decoder, DecoderLimits, Handshake, Message};

#[derive(Arbitrary, Debug)]
struct Input<'a> {
    /// Start with the 68-byte handshake (`Decoder::new`) or after it.
    handshake: bool,
    /// The torrent's piece count, when the driver knows it.
    num_pieces: Option<u16>,
    /// Chunk lengths; the last chunk takes what is left.
    splits: Vec<u8>,
    stream: &'a [u8],
}

/// What a decoder yields for a stream: items until it needs more bytes or fails.
#[derive(Debug, PartialEq)]
enum Item {
    Handshake(Handshake),
    Message(Message),
    Error(DecodeError),
}

fn decoder(input: &Input<'_>) -> Decoder {
    let limits = DecoderLimits {
        num_pieces: input.num_pieces.map(u32::from),
        ..DecoderLimits::default()
    };
    if input.handshake {
        Decoder::new(limits)
    } else {
        Decoder::new_after_handshake(limits)
    }
}

/// Drain `d` after a push; false once it has failed.
fn drain(d: &mut Decoder, awaiting_handshake: &mut bool, out: &mut Vec<Item>) -> bool {
    if *awaiting_handshake {
        match d.poll_handshake() {
            Ok(None) => return true,
            Ok(Some(hs)) => {
                *awaiting_handshake = false;
                out.push(Item::Handshake(hs));
            }
            Err(e) => {
                out.push(Item::Error(e));
                return false;
            }
        }
    }
    loop {
        match d.poll_message() {
            Ok(None) => return true,
            Ok(Some(m)) => out.push(Item::Message(m)),
            Err(e) => {
                out.push(Item::Error(e));
                return false;
            }
        }
    }
}

fn decode(input: &Input<'_>, chunks: &[&[u8]]) -> (Vec<Item>, usize) {
    let mut d = decoder(input);
    let mut awaiting = input.handshake;
    let mut items = Vec::new();
    for chunk in chunks {
        d.push(chunk);
        if !drain(&mut d, &mut awaiting, &mut items) {
            break;
        }
    }
    (items, d.buffered_len())
}

/// Decode one encoded message on its own, with room for anything the encoder makes.
fn decode_one(bytes: &[u8], num_pieces: Option<u16>) -> Result<Option<Message>, DecodeError> {
    let mut d = Decoder::new_after_handshake(DecoderLimits {
        num_pieces: num_pieces.map(u32::from),
        max_extended_len: u32::MAX,
        ..DecoderLimits::default()
    });
    d.push(bytes);
    let msg = d.poll_message();
    assert_eq!(d.buffered_len(), 0, "bytes left after one message");
    msg
}

fn split<'a>(stream: &'a [u8], splits: &[u8]) -> Vec<&'a [u8]> {
    let mut chunks = Vec::new();
    let mut rest = stream;
    for &n in splits {
        let (head, tail) = rest.split_at(usize::from(n).min(rest.len()));
        chunks.push(head);
        rest = tail;
    }
    chunks.push(rest);
    chunks
}

fuzz_target!(|input: Input<'_>| {
    let (whole, whole_left) = decode(&input, &[input.stream]);
    let (chunked, chunked_left) = decode(&input, &split(input.stream, &input.splits));
    assert_eq!(whole, chunked, "chunking changed what was decoded");
    assert_eq!(
        whole_left, chunked_left,
        "chunking changed the buffered tail"
    );

    for item in &whole {
        match item {
            Item::Handshake(hs) => {
                let mut out = Vec::new();
                hs.encode(&mut out);
                let raw = <&[u8; 68]>::try_from(&out[..]).expect("68 bytes");
                assert_eq!(Handshake::decode(raw).as_ref(), Ok(hs));
            }
            Item::Message(msg) => {
                let mut out = Vec::new();
                msg.encode(&mut out).expect("a decoded message encodes");
                assert_eq!(out.len(), msg.wire_len(), "wire_len of {msg:?}");
                let again = decode_one(&out, input.num_pieces);
                assert_eq!(again.as_ref(), Ok(&Some(msg.clone())), "round trip");
            }
            Item::Error(e) => {
                let _ = e.to_string();
            }
        }
    }
});
