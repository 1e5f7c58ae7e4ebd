//! The bencode pre-scan (`metainfo::scan_bencode`) against librqbit-bencode:
//! whatever the scan accepts, the decoder reads whole without overflowing or
//! erroring, and re-encodes to the very same bytes (the scan promises canonical
//! bencode). Nesting limit from the first byte, so shallow limits get exercised.
#![no_main]

use libfuzzer_sys::fuzz_target;
use librqbit_bencode::{bencode_serialize_to_writer, BencodeDeserializer, BencodeValue, ByteBuf};
use serde::Deserialize;
use swarmhub_core::metainfo::scan_bencode;

fuzz_target!(|data: &[u8]| {
    let Some((&depth, bytes)) = data.split_first() else {
        return;
    };
    let max_depth = usize::from(depth % 40);
    if let Err(e) = scan_bencode(bytes, max_depth) {
        let _ = e.to_string();
        return;
    }
    let mut de = BencodeDeserializer::new_from_buf(bytes).with_max_depth(max_depth.max(1));
    let value = BencodeValue::<ByteBuf<'_>>::deserialize(&mut de)
        .expect("librqbit-bencode decodes what the scan accepted");
    assert!(
        de.into_remaining().is_empty(),
        "trailing bytes after a scanned value"
    );
    let mut out = Vec::new();
    bencode_serialize_to_writer(&value, &mut out).expect("re-encodes");
    assert_eq!(out, bytes, "scan accepted non-canonical bencode");
});
