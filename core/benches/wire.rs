//! Wire codec throughput: encode, decode, and both, over two message mixes.
//!
//! - `stream`: what a downloading connection receives: 16 KiB `piece` messages with a
//!   `request` after every 4th and a `have` after every 16th.
//! - `small`: `request` and `have` only, the worst case per byte.
//!
//! Decoding pushes the stream in 64 KiB chunks, like socket reads, and drains after
//! every push. Throughput is wire bytes per second.
//!
//! Run: `cargo bench --bench wire -- --warm-up-time 1 --measurement-time 3`

use std::hint::black_box;

use bytes::Bytes;
use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use swarmhub_core::wire::{BlockRef, Decoder, DecoderLimits, Message, BLOCK_LEN};

const READ_CHUNK: usize = 64 * 1024;
const NUM_PIECES: u32 = 2_000;

fn block(i: u32) -> BlockRef {
    BlockRef {
        piece: (i / 16) % NUM_PIECES,
        begin: (i % 16) * BLOCK_LEN,
        length: BLOCK_LEN,
    }
}

/// 256 blocks (4 MiB of data) with interleaved requests and haves.
fn piece_stream() -> Vec<Message> {
    let data: Bytes = (0..BLOCK_LEN)
        .map(|i| (i % 251) as u8)
        .collect::<Vec<u8>>()
        .into();
    let mut msgs = Vec::new();
    for i in 0..256u32 {
        msgs.push(Message::Piece(block(i), data.clone()));
        if i % 4 == 3 {
            msgs.push(Message::Request(block(i + 1000)));
        }
        if i % 16 == 15 {
            msgs.push(Message::Have(i / 16));
        }
    }
    msgs
}

/// 10,000 small messages: requests and haves alternating.
fn small_stream() -> Vec<Message> {
    (0..10_000u32)
        .map(|i| {
            if i % 2 == 0 {
                Message::Request(block(i))
            } else {
                Message::Have(i % NUM_PIECES)
            }
        })
        .collect()
}

fn encode(msgs: &[Message], out: &mut Vec<u8>) {
    out.clear();
    for m in msgs {
        if let Err(e) = m.encode(out) {
            panic!("benchmark message does not encode: {e}");
        }
    }
}

/// Decode `bytes` in socket-sized chunks; returns the message count.
fn decode(bytes: &[u8]) -> usize {
    let mut dec = Decoder::new_after_handshake(DecoderLimits {
        num_pieces: Some(NUM_PIECES),
        ..DecoderLimits::default()
    });
    let mut count = 0;
    for chunk in bytes.chunks(READ_CHUNK) {
        dec.push(chunk);
        loop {
            match dec.poll_message() {
                Ok(Some(m)) => {
                    black_box(&m);
                    count += 1;
                }
                Ok(None) => break,
                Err(e) => panic!("benchmark stream does not decode: {e}"),
            }
        }
    }
    count
}

fn bench_mix(c: &mut Criterion, name: &str, msgs: &[Message]) {
    let mut encoded = Vec::new();
    encode(msgs, &mut encoded);
    assert_eq!(decode(&encoded), msgs.len());

    let mut group = c.benchmark_group(format!("wire/{name}"));
    group.throughput(Throughput::Bytes(encoded.len() as u64));
    let mut out = Vec::with_capacity(encoded.len());
    group.bench_function("encode", |b| {
        b.iter(|| {
            encode(black_box(msgs), &mut out);
            black_box(out.len())
        })
    });
    group.bench_function("decode", |b| b.iter(|| decode(black_box(&encoded))));
    group.bench_function("encode_decode", |b| {
        b.iter(|| {
            encode(black_box(msgs), &mut out);
            decode(&out)
        })
    });
    group.finish();
}

fn wire(c: &mut Criterion) {
    bench_mix(c, "stream", &piece_stream());
    bench_mix(c, "small", &small_stream());
}

criterion_group!(benches, wire);
criterion_main!(benches);
