//! Tracker query strings (hub side): announce and scrape parsing never panic,
//! and an accepted query round-trips through the client's query builder.
#![no_main]

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use libfuzzer_sys::fuzz_target;
use swarmhub_core::tracker::http::{
    announce_query, parse_announce_query, parse_scrape_query, scrape_query,
};

fuzz_target!(|data: &[u8]| {
    let Some((&first, rest)) = data.split_first() else {
        return;
    };
    let Ok(query) = std::str::from_utf8(rest) else {
        return;
    };
    let ip = match first % 3 {
        0 => IpAddr::V4(Ipv4Addr::new(10, 1, 2, 3)),
        1 => IpAddr::V6(Ipv6Addr::LOCALHOST),
        // IPv4-mapped: the tracker stores it as IPv4.
        _ => IpAddr::V6(Ipv4Addr::new(192, 0, 2, 7).to_ipv6_mapped()),
    };
    match parse_announce_query(query, ip) {
        Ok(req) => {
            assert!(!req.ip.is_ipv6() || req.ip.to_canonical() == req.ip);
            let again = parse_announce_query(&announce_query(&req), ip);
            assert_eq!(again.as_ref(), Ok(&req), "announce round trip");
        }
        Err(e) => {
            let _ = (e.to_string(), e.key());
        }
    }
    match parse_scrape_query(query) {
        Ok(hashes) => {
            let again = parse_scrape_query(&scrape_query(&hashes));
            assert_eq!(again.as_ref(), Ok(&hashes), "scrape round trip");
        }
        Err(e) => {
            let _ = (e.to_string(), e.key());
        }
    }
});
