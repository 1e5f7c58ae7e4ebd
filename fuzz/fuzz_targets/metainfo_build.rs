//! The metainfo builder against the parser, from structured input (`arbitrary`):
//! whatever `ImageHasher` builds from any name, file list, piece length, announce
//! URL and chunking of the fed bytes, `Metainfo::from_bytes` reads back equal
//! (encode, decode, compare); bad input is a `BuildError`, never a panic.
#![no_main]

use arbitrary::Arbitrary;
use libfuzzer_sys::fuzz_target;
use swarmhub_core::metainfo::{ImageHasher, Metainfo};

#[derive(Arbitrary, Debug)]
struct Input {
    name: String,
    /// Path components and length of each file (small, so the bytes are fed).
    files: Vec<(Vec<String>, u16)>,
    /// log2 of the piece length; `None` lets the builder pick.
    piece_log2: Option<u8>,
    announce: Option<String>,
    /// Bytes fed per `update` call, cycled; 0 means one byte.
    chunks: Vec<u16>,
    /// Feed one byte too few, or too many.
    miscount: Option<bool>,
}

fuzz_target!(|input: Input| {
    let files: Vec<(Vec<String>, u64)> = input
        .files
        .iter()
        .map(|(path, len)| (path.clone(), u64::from(*len)))
        .collect();
    let total: u64 = files.iter().map(|(_, len)| len).sum();
    let piece_length = input.piece_log2.map(|e| 1u32 << (e % 32));
    let mut hasher = match ImageHasher::new(&input.name, files, piece_length) {
        Ok(h) => h,
        Err(e) => {
            let _ = e.to_string();
            return;
        }
    };
    let fed = match input.miscount {
        None => total,
        Some(false) => total.saturating_sub(1),
        Some(true) => total + 1,
    };
    let data: Vec<u8> = (0..fed).map(|i| (i % 251) as u8).collect();
    let mut rest = &data[..];
    let mut sizes = input.chunks.iter().cycle();
    while !rest.is_empty() {
        let n = sizes.next().map_or(rest.len(), |&n| usize::from(n).max(1));
        let (chunk, tail) = rest.split_at(n.min(rest.len()));
        hasher.update(chunk);
        rest = tail;
    }
    let meta = match hasher.finish(input.announce.clone()) {
        Ok(m) => m,
        Err(e) => {
            let _ = e.to_string();
            return;
        }
    };
    assert_eq!(
        fed, total,
        "finish accepted {fed} bytes for a {total}-byte image"
    );
    assert_eq!(meta.total_length(), total);
    assert_eq!(meta.pieces.len(), meta.num_pieces() as usize);
    let parsed = Metainfo::from_bytes(&meta.to_bytes()).expect("built metainfo parses");
    assert_eq!(parsed, meta, "decode(encode(built)) != built");
});
