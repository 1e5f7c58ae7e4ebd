//! Tracker throughput: periodic announces against a hub-sized state, and the
//! HTTP wire cost around each announce.
//!
//! State: 1,000 swarms, 100,000 peer entries (100 per swarm) from 10,000
//! identities that each run one client in 10 swarms; one peer in five is a
//! seeder. Every announce is periodic with numwant 50, drawn round-robin
//! from a shuffled list that covers every entry. `sites_20` spreads the
//! identities over 20 sites (same-site-first sampling), `no_sites` does not.
//! Throughput is announces (requests) per second.
//!
//! Run: `cargo bench --bench tracker -- --warm-up-time 1 --measurement-time 3`

use std::hint::black_box;
use std::net::{IpAddr, Ipv4Addr};

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use rand::seq::SliceRandom;
use swarmhub_core::rng;
use swarmhub_core::time::Instant;
use swarmhub_core::tracker::http::{
    announce_query, encode_announce_response, parse_announce_query,
};
use swarmhub_core::tracker::{AnnounceEvent, AnnounceRequest, Auth, Tracker, TrackerConfig};
use swarmhub_core::Id20;

const SWARMS: u32 = 1_000;
const IDENTITIES: u32 = 10_000;
const SWARMS_PER_IDENTITY: u32 = 10;
const NUMWANT: u32 = 50;

fn info_hash(swarm: u32) -> Id20 {
    let mut h = [0x5a; 20];
    h[..4].copy_from_slice(&swarm.to_be_bytes());
    Id20::new(h)
}

fn client_ip(identity: u32) -> IpAddr {
    let [_, a, b, c] = identity.to_be_bytes();
    IpAddr::V4(Ipv4Addr::new(10, a, b, c))
}

/// One request per peer entry (Started), with the identity that sends it.
fn population() -> Vec<(usize, AnnounceRequest)> {
    let mut out = Vec::with_capacity((IDENTITIES * SWARMS_PER_IDENTITY) as usize);
    for identity in 0..IDENTITIES {
        let mut peer_id = *b"-SH0100-000000000000";
        peer_id[8..12].copy_from_slice(&identity.to_be_bytes());
        for j in 0..SWARMS_PER_IDENTITY {
            // Spread each identity's swarms so every swarm gets 100 peers.
            let swarm = (identity + j * (SWARMS / SWARMS_PER_IDENTITY)) % SWARMS;
            out.push((
                identity as usize,
                AnnounceRequest {
                    info_hash: info_hash(swarm),
                    peer_id: Id20::new(peer_id),
                    ip: client_ip(identity),
                    port: 6881,
                    uploaded: u64::from(j) * 1_000_000,
                    downloaded: 5_000_000,
                    left: if (identity + j) % 5 == 0 { 0 } else { 1 << 30 },
                    event: AnnounceEvent::Started,
                    numwant: Some(NUMWANT),
                    compact: true,
                },
            ));
        }
    }
    out
}

struct Setup {
    tracker: Tracker,
    auths: Vec<Auth>,
    periodic: Vec<(usize, AnnounceRequest)>,
}

fn setup(sites: u32) -> Setup {
    let mut tracker = Tracker::new(TrackerConfig::default(), 42);
    for s in 0..SWARMS {
        tracker.add_swarm(info_hash(s));
    }
    let auths: Vec<Auth> = (0..IDENTITIES)
        .map(|i| Auth::Verified {
            identity: format!("client-{i:05}.example.internal"),
            registered: true,
        })
        .collect();
    if sites > 0 {
        for (i, auth) in auths.iter().enumerate() {
            if let Auth::Verified { identity, .. } = auth {
                tracker.set_site(identity, Some(format!("site-{}", i as u32 % sites)));
            }
        }
    }
    let mut periodic = population();
    let now = Instant::from_secs(1);
    for (who, req) in &periodic {
        tracker
            .handle_announce(now, &auths[*who], req)
            .expect("prefill announce accepted");
    }
    assert_eq!(
        tracker.peer_count(),
        (IDENTITIES * SWARMS_PER_IDENTITY) as usize
    );
    for (_, req) in &mut periodic {
        req.event = AnnounceEvent::Periodic;
    }
    periodic.shuffle(&mut rng::from_seed(7));
    Setup {
        tracker,
        auths,
        periodic,
    }
}

fn bench_announce(c: &mut Criterion) {
    let mut group = c.benchmark_group("announce_periodic");
    group.throughput(Throughput::Elements(1));
    for (label, sites) in [("no_sites", 0), ("sites_20", 20)] {
        let Setup {
            mut tracker,
            auths,
            periodic,
        } = setup(sites);
        let mut next = 0;
        let now = Instant::from_secs(60);
        group.bench_function(label, |b| {
            b.iter(|| {
                let (who, req) = &periodic[next];
                next = (next + 1) % periodic.len();
                let resp = tracker.handle_announce(now, &auths[*who], req);
                black_box(resp.map(|r| r.peers.len()).unwrap_or(0))
            })
        });
    }
    group.finish();
}

fn bench_http(c: &mut Criterion) {
    let Setup {
        mut tracker,
        auths,
        periodic,
    } = setup(0);
    let queries: Vec<(usize, String, IpAddr)> = periodic
        .iter()
        .take(10_000)
        .map(|(who, req)| (*who, announce_query(req), req.ip))
        .collect();
    let now = Instant::from_secs(60);
    let (who, req) = &periodic[0];
    let sample_resp = tracker
        .handle_announce(now, &auths[*who], req)
        .expect("announce accepted");
    assert_eq!(sample_resp.peers.len(), NUMWANT as usize);

    let mut group = c.benchmark_group("http");
    group.throughput(Throughput::Elements(1));
    let mut next = 0;
    group.bench_function("parse_announce_query", |b| {
        b.iter(|| {
            let (_, q, ip) = &queries[next];
            next = (next + 1) % queries.len();
            black_box(parse_announce_query(black_box(q), *ip).is_ok())
        })
    });
    group.bench_function("encode_announce_response_50_peers", |b| {
        b.iter(|| black_box(encode_announce_response(black_box(&sample_resp)).len()))
    });
    let mut next = 0;
    group.bench_function("parse_announce_encode", |b| {
        b.iter(|| {
            let (who, q, ip) = &queries[next];
            next = (next + 1) % queries.len();
            let body = match parse_announce_query(q, *ip) {
                Ok(req) => match tracker.handle_announce(now, &auths[*who], &req) {
                    Ok(resp) => encode_announce_response(&resp),
                    Err(e) => swarmhub_core::tracker::http::encode_failure(&e.to_string()),
                },
                Err(e) => swarmhub_core::tracker::http::encode_failure(&e.to_string()),
            };
            black_box(body.len())
        })
    });
    group.finish();
}

criterion_group!(benches, bench_announce, bench_http);
criterion_main!(benches);
