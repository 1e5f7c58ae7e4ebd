//! The web seed's `Range` header parser: never panics, an accepted range is
//! ordered, and it round-trips through the header the client sends.
#![no_main]

use libfuzzer_sys::fuzz_target;
use swarmhub_node::hub::api::parse_range;

fuzz_target!(|header: &str| {
    if let Some((first, last)) = parse_range(header) {
        assert!(first <= last);
        assert_eq!(
            parse_range(&format!("bytes={first}-{last}")),
            Some((first, last))
        );
    }
});
