use core::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use proptest::prelude::*;

use super::*;
use crate::tracker::{AnnounceEvent, AnnounceRequest, AnnounceResponse, PeerAddr, SwarmStats};
use crate::Id20;

const REMOTE: IpAddr = IpAddr::V4(Ipv4Addr::new(192, 168, 1, 9));

fn sample_request() -> AnnounceRequest {
    let mut info_hash = [0u8; 20];
    for (i, b) in info_hash.iter_mut().enumerate() {
        *b = (i as u8).wrapping_mul(37).wrapping_add(b'%');
    }
    AnnounceRequest {
        info_hash: Id20::new(info_hash),
        peer_id: Id20::new(*b"-SH0100-abc+ &=%~xyz"),
        ip: REMOTE,
        port: 6881,
        uploaded: 1,
        downloaded: 2,
        left: u64::MAX,
        event: AnnounceEvent::Started,
        numwant: Some(80),
        compact: true,
    }
}

/// A valid query with `key`'s pair replaced by `pair` (or dropped if empty).
fn query_with(key: &str, pair: &str) -> String {
    let q = announce_query(&sample_request());
    let mut parts: Vec<String> = q
        .split('&')
        .filter(|p| !p.starts_with(&format!("{key}=")))
        .map(str::to_owned)
        .collect();
    if !pair.is_empty() {
        parts.push(pair.to_owned());
    }
    parts.join("&")
}

#[test]
fn announce_query_round_trips() {
    let req = sample_request();
    let q = announce_query(&req);
    assert!(q.contains("peer_id=-SH0100-abc%2B%20%26%3D%25~xyz"), "{q}");
    assert_eq!(parse_announce_query(&q, REMOTE), Ok(req.clone()));
    let periodic = AnnounceRequest {
        event: AnnounceEvent::Periodic,
        numwant: None,
        compact: false,
        ..req
    };
    let q = announce_query(&periodic);
    assert!(!q.contains("event") && !q.contains("numwant"));
    assert_eq!(parse_announce_query(&q, REMOTE), Ok(periodic));
}

#[test]
fn parse_accepts_stock_client_quirks() {
    let base = "info_hash=%01%02%03%04%05%06%07%08%09%0a%0b%0c%0d%0e%0f%10%11%12%13%14\
                &peer_id=ABCDEFGHIJKLMNOPQRST&port=51413&uploaded=0&downloaded=0&left=0";
    let mapped = IpAddr::V6(Ipv4Addr::new(10, 1, 2, 3).to_ipv6_mapped());
    let q = format!("{base}&event=&ip=1.2.3.4&key=abc&no_peer_id=1&supportcrypto=1&&");
    let req = parse_announce_query(&q, mapped).unwrap();
    assert_eq!(
        req.ip,
        IpAddr::V4(Ipv4Addr::new(10, 1, 2, 3)),
        "ip key ignored, mapped unwrapped"
    );
    assert_eq!(req.event, AnnounceEvent::Periodic);
    assert_eq!(req.info_hash.0[9], 0x0a);
    assert_eq!(req.port, 51413);
    assert!(req.compact && req.numwant.is_none());
}

#[test]
fn each_parse_rejection_names_its_key() {
    let cases: &[(&str, &str, &str)] = &[
        ("info_hash", "", "info_hash"),
        ("info_hash", "info_hash=short", "info_hash"),
        (
            "info_hash",
            "info_hash=%zz%01%02%03%04%05%06%07%08%09%0a%0b%0c%0d%0e%0f%10%11%12%13",
            "info_hash",
        ),
        ("peer_id", "", "peer_id"),
        ("peer_id", "peer_id=ABCDEFGHIJKLMNOPQRSTU", "peer_id"),
        ("port", "", "port"),
        ("port", "port=0", "port"),
        ("port", "port=65536", "port"),
        ("port", "port=-1", "port"),
        ("uploaded", "", "uploaded"),
        ("uploaded", "uploaded=1e3", "uploaded"),
        (
            "downloaded",
            "downloaded=18446744073709551616",
            "downloaded",
        ),
        ("left", "left=", "left"),
        ("event", "event=paused", "event"),
        ("numwant", "numwant=4294967296", "numwant"),
        ("compact", "compact=2", "compact"),
    ];
    for &(key, pair, named) in cases {
        let q = query_with(key, pair);
        let err = parse_announce_query(&q, REMOTE).expect_err(pair);
        assert_eq!(err.key(), Some(named), "{pair:?} gave {err}");
        assert!(
            err.to_string().contains(named),
            "{err} does not name {named}"
        );
    }
    let q = announce_query(&sample_request());
    for key in ["info_hash", "peer_id", "port", "left", "event"] {
        let dup = q
            .split('&')
            .find(|p| p.starts_with(&format!("{key}=")))
            .unwrap();
        let err = parse_announce_query(&format!("{q}&{dup}"), REMOTE).unwrap_err();
        assert!(matches!(err, AnnounceParseError::Duplicate { .. }), "{err}");
        assert_eq!(err.key(), Some(key));
    }
    let long = format!("{q}&pad={}", "x".repeat(MAX_ANNOUNCE_QUERY_LEN));
    let err = parse_announce_query(&long, REMOTE).unwrap_err();
    assert!(matches!(err, AnnounceParseError::TooLong { .. }) && err.key().is_none());
}

fn peer(a: u8, port: u16) -> PeerAddr {
    PeerAddr {
        ip: IpAddr::V4(Ipv4Addr::new(10, 0, 0, a)),
        port,
    }
}

#[test]
fn announce_response_round_trips_with_ipv6_and_revocations() {
    let resp = AnnounceResponse {
        interval_s: 120,
        min_interval_s: 30,
        complete: 3,
        incomplete: 4,
        peers: vec![
            peer(1, 6881),
            peer(2, 65535),
            PeerAddr {
                ip: IpAddr::V6(Ipv6Addr::new(0xfd00, 0, 0, 0, 0, 0, 0, 1)),
                port: 7000,
            },
        ],
        near_peers: 0,
        site: None,
        revocation_epoch: 2,
        revoked: vec!["eve".into(), "mallory".into()],
    };
    let body = encode_announce_response(&resp);
    assert!(body.starts_with(b"d8:completei3e10:incompletei4e8:intervali120e"));
    assert!(body.windows(b"6:peers6".len()).any(|w| w == b"6:peers6"));
    assert_eq!(decode_announce_response(&body), Ok(resp));
    let empty = AnnounceResponse {
        interval_s: 120,
        min_interval_s: 30,
        complete: 0,
        incomplete: 0,
        peers: vec![],
        near_peers: 0,
        site: None,
        revocation_epoch: 0,
        revoked: vec![],
    };
    let body = encode_announce_response(&empty);
    assert!(body.windows(b"5:peers0:".len()).any(|w| w == b"5:peers0:"));
    assert_eq!(decode_announce_response(&body), Ok(empty));
}

#[test]
fn site_and_near_peers_round_trip_and_stay_compact() {
    let v6 = PeerAddr {
        ip: IpAddr::V6(Ipv6Addr::new(0xfd00, 0, 0, 0, 0, 0, 0, 1)),
        port: 7000,
    };
    let resp = AnnounceResponse {
        interval_s: 120,
        min_interval_s: 30,
        complete: 1,
        incomplete: 3,
        // Near: 10.0.0.1 and the IPv6 peer; far: 10.0.0.2.
        peers: vec![peer(1, 6881), v6, peer(2, 6882)],
        near_peers: 2,
        site: Some("paris".into()),
        revocation_epoch: 0,
        revoked: vec![],
    };
    let body = encode_announce_response(&resp);
    // Stock clients read the same BEP 23 lists; the extra keys are ours.
    let find = |needle: &[u8]| body.windows(needle.len()).any(|w| w == needle);
    assert!(find(
        b"5:peers12:\x0a\x00\x00\x01\x1a\xe1\x0a\x00\x00\x02\x1a\xe2"
    ));
    assert!(find(b"13:swarmhub site5:paris"));
    assert!(find(b"13:swarmhub neari1e"));
    assert!(find(b"14:swarmhub near6i1e"));
    assert_eq!(decode_announce_response(&body), Ok(resp));
    // More near peers than peers is a broken answer.
    let bad = b"d8:intervali60e5:peers6:\x0a\x00\x00\x01\x1a\xe113:swarmhub neari2ee";
    assert!(matches!(
        decode_announce_response(bad),
        Err(AnnounceDecodeError::BadValue {
            key: "swarmhub near",
            ..
        })
    ));
}

#[test]
fn failure_body_becomes_an_error_with_the_reason() {
    let body = encode_failure("identity \"bob\" has been revoked");
    assert_eq!(
        &body[..],
        &b"d14:failure reason31:identity \"bob\" has been revokede"[..]
    );
    assert_eq!(
        decode_announce_response(&body),
        Err(AnnounceDecodeError::Failure {
            reason: "identity \"bob\" has been revoked".into()
        })
    );
    assert!(matches!(
        decode_scrape_response(&body),
        Err(ScrapeDecodeError::Failure { .. })
    ));
}

#[test]
fn decode_rejects_bad_bodies_without_panicking() {
    let cases: &[&[u8]] = &[
        b"d8:intervali120e5:peers5:abcdee",
        b"d8:intervali120e5:peers0:6:peers67:1234567e",
        b"d5:peers0:e",
        b"d8:intervali-1e5:peers0:e",
        b"d8:intervali99999999999999999999999e5:peers0:e",
        b"d8:intervali120e5:peers99999999999999999999999:e",
        b"d8:intervali120e5:peers0:ee",
        b"d8:intervali120e5:peers0:",
        b"d8:intervali4294967296e5:peers0:e",
        b"li1ei2ee",
        b"",
    ];
    for body in cases {
        assert!(
            decode_announce_response(body).is_err(),
            "{}",
            String::from_utf8_lossy(body)
        );
    }
    let deep = [&[b'l'; 64][..], &[b'e'; 64][..]].concat();
    assert!(decode_announce_response(&deep).is_err());
    let huge = vec![b'0'; MAX_BODY_LEN + 1];
    assert!(matches!(
        decode_announce_response(&huge),
        Err(AnnounceDecodeError::Bencode(m)) if m.contains("limit")
    ));
    let err = decode_announce_response(b"d8:intervali120e5:peers5:abcdee").unwrap_err();
    assert_eq!(
        err.to_string(),
        "announce answer key \"peers\": length is not a multiple of 6"
    );
}

#[test]
fn scrape_query_and_body_round_trip() {
    let hashes = vec![Id20::new([0xab; 20]), Id20::new([b'&'; 20])];
    let q = scrape_query(&hashes);
    assert_eq!(parse_scrape_query(&q), Ok(hashes.clone()));
    assert_eq!(parse_scrape_query("passkey=1"), Ok(vec![]));
    let err = parse_scrape_query("info_hash=abc").unwrap_err();
    assert_eq!(err.key(), Some("info_hash"));
    let files = vec![
        (
            hashes[1],
            SwarmStats {
                seeders: 1,
                leechers: 2,
                completed: 3,
                uploaded: 4,
                downloaded: 5,
            },
        ),
        (hashes[0], SwarmStats::default()),
    ];
    let body = encode_scrape_response(&files);
    assert!(body.starts_with(b"d5:filesd20:&&&&"));
    let mut sorted = files.clone();
    sorted.sort_by_key(|(h, _)| *h);
    assert_eq!(decode_scrape_response(&body), Ok(sorted));
    let bad_key = b"d5:filesd3:abcd8:completei1eeee";
    assert!(matches!(
        decode_scrape_response(bad_key),
        Err(ScrapeDecodeError::BadValue { key: "files", .. })
    ));
}

fn arb_request() -> impl Strategy<Value = AnnounceRequest> {
    (
        any::<[u8; 20]>(),
        any::<[u8; 20]>(),
        1..=u16::MAX,
        any::<(u64, u64, u64)>(),
        0..4u8,
        proptest::option::of(any::<u32>()),
        any::<bool>(),
    )
        .prop_map(
            |(h, p, port, (up, down, left), ev, numwant, compact)| AnnounceRequest {
                info_hash: Id20::new(h),
                peer_id: Id20::new(p),
                ip: REMOTE,
                port,
                uploaded: up,
                downloaded: down,
                left,
                event: [
                    AnnounceEvent::Started,
                    AnnounceEvent::Completed,
                    AnnounceEvent::Stopped,
                    AnnounceEvent::Periodic,
                ][usize::from(ev)],
                numwant,
                compact,
            },
        )
}

fn arb_response() -> impl Strategy<Value = AnnounceResponse> {
    (
        any::<(u32, u32, u32, u32, u32)>(),
        proptest::collection::vec(any::<([u8; 4], u16)>(), 0..60),
        proptest::collection::vec(any::<([u8; 16], u16)>(), 0..10),
        proptest::collection::vec("[a-z0-9@.-]{1,12}", 0..4),
    )
        .prop_map(|((i, mi, c, ic, epoch), v4, v6, revoked)| {
            let peers = v4
                .into_iter()
                .map(|(ip, port)| PeerAddr {
                    ip: IpAddr::V4(ip.into()),
                    port,
                })
                .chain(v6.into_iter().map(|(ip, port)| PeerAddr {
                    ip: IpAddr::V6(ip.into()),
                    port,
                }))
                .collect();
            AnnounceResponse {
                interval_s: i,
                min_interval_s: mi,
                complete: c,
                incomplete: ic,
                peers,
                near_peers: 0,
                site: None,
                revocation_epoch: u64::from(epoch),
                revoked,
            }
        })
}

proptest! {
    #[test]
    fn any_request_round_trips(req in arb_request()) {
        prop_assert_eq!(parse_announce_query(&announce_query(&req), REMOTE), Ok(req));
    }

    #[test]
    fn any_response_round_trips(resp in arb_response()) {
        prop_assert_eq!(decode_announce_response(&encode_announce_response(&resp)), Ok(resp));
    }

    #[test]
    fn decoders_never_panic(body in proptest::collection::vec(any::<u8>(), 0..300)) {
        let _ = decode_announce_response(&body);
        let _ = decode_scrape_response(&body);
    }

    #[test]
    fn decoders_never_panic_on_near_valid_bodies(
        cut in 0usize..200,
        flip in any::<(usize, u8)>(),
        resp in arb_response(),
    ) {
        let mut body = encode_announce_response(&resp);
        let i = flip.0 % body.len();
        body[i] = flip.1;
        body.truncate(body.len().saturating_sub(cut % 4));
        let _ = decode_announce_response(&body);
        let _ = decode_scrape_response(&body);
    }

    #[test]
    fn query_parsers_never_panic(query in "[a-z_=&%0-9A-F+]{0,300}") {
        let _ = parse_announce_query(&query, REMOTE);
        let _ = parse_scrape_query(&query);
    }
}
