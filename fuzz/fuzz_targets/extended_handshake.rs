//! The BEP 10 extended handshake: any payload in an extended frame with
//! extended id 0 decodes or fails with a `DecodeError`, and a decoded handshake
//! round-trips (decode, encode, decode, compare).
#![no_main]

use libfuzzer_sys::fuzz_target;
use swarmhub_core::wire::{Decoder, DecoderLimits, Message};

/// Frame `payload` as an extended handshake and decode it.
fn decode(frame: &[u8]) -> Option<Message> {
    let mut d = Decoder::new_after_handshake(DecoderLimits {
        max_extended_len: u32::MAX,
        ..DecoderLimits::default()
    });
    d.push(frame);
    match d.poll_message() {
        Ok(Some(msg)) => Some(msg),
        Ok(None) => panic!("a whole frame was pushed but the decoder wants more"),
        Err(e) => {
            let _ = e.to_string();
            None
        }
    }
}

fuzz_target!(|payload: &[u8]| {
    let Ok(len) = u32::try_from(payload.len() + 2) else {
        return;
    };
    let mut frame = len.to_be_bytes().to_vec();
    frame.extend_from_slice(&[20, 0]);
    frame.extend_from_slice(payload);
    let Some(msg) = decode(&frame) else {
        return;
    };
    assert!(
        matches!(msg, Message::ExtendedHandshake(_)),
        "extended id 0 decoded as {msg:?}"
    );
    let mut out = Vec::new();
    msg.encode(&mut out).expect("a decoded handshake encodes");
    assert_eq!(out.len(), msg.wire_len());
    assert_eq!(decode(&out), Some(msg), "round trip");
});
