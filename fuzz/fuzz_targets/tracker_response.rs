//! Tracker answers (client side): announce and scrape bodies from a hostile
//! tracker decode or fail with a typed error, and what decodes round-trips
//! through the hub's encoder (decode, encode, decode, compare).
#![no_main]

use libfuzzer_sys::fuzz_target;
use swarmhub_core::tracker::http::{
    decode_announce_response, decode_scrape_response, encode_announce_response,
    encode_scrape_response,
};

fuzz_target!(|body: &[u8]| {
    match decode_announce_response(body) {
        Ok(resp) => {
            let again = decode_announce_response(&encode_announce_response(&resp));
            assert_eq!(again.as_ref(), Ok(&resp), "announce round trip");
        }
        Err(e) => {
            let _ = e.to_string();
        }
    }
    match decode_scrape_response(body) {
        Ok(files) => {
            let again = decode_scrape_response(&encode_scrape_response(&files));
            assert_eq!(again.as_ref(), Ok(&files), "scrape round trip");
        }
        Err(e) => {
            let _ = e.to_string();
        }
    }
});
