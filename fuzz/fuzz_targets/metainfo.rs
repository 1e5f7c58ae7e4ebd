//! Metainfo decoding: hostile `.torrent` bytes never panic, and whatever is
//! accepted round-trips (decode, encode, decode, compare) with its info hash.
#![no_main]

use libfuzzer_sys::fuzz_target;
use swarmhub_core::metainfo::Metainfo;

fuzz_target!(|data: &[u8]| {
    let meta = match Metainfo::from_bytes(data) {
        Ok(meta) => meta,
        Err(e) => {
            // Error messages are built from hostile input too.
            let _ = e.to_string();
            return;
        }
    };
    let encoded = meta.to_bytes();
    let again = Metainfo::from_bytes(&encoded).expect("re-encoded metainfo parses");
    assert_eq!(again, meta, "decode(encode(m)) != m");
    assert_eq!(again.to_bytes(), encoded, "encoding is not stable");

    // The piece arithmetic of an accepted metainfo is consistent.
    let pieces = meta.num_pieces();
    assert_eq!(pieces as usize, meta.pieces.len());
    for index in [0, pieces / 2, pieces.saturating_sub(1), pieces] {
        let spans: u64 = meta.file_spans(index).map(|s| u64::from(s.len)).sum();
        assert_eq!(spans, u64::from(meta.piece_len(index)), "piece {index}");
    }
});
