//! Swarm-level tests of the node through the in-memory harness.

use crate::memswarm::{HostSpec, Swarm};

use super::*;
use crate::time::Duration;
use crate::Id20;

const MIB: usize = 1024 * 1024;

fn seed(upload_bps: u64) -> HostSpec {
    HostSpec {
        seed: true,
        corrupt: false,
        upload_bps,
        super_seed: false,
    }
}

fn leecher(upload_bps: u64) -> HostSpec {
    HostSpec {
        seed: false,
        corrupt: false,
        upload_bps,
        super_seed: false,
    }
}

fn one_seed_five_leechers(rng_seed: u64) -> Swarm {
    let mut specs = vec![seed(2_000_000)];
    specs.extend((0..5).map(|_| leecher(2_000_000)));
    let mut swarm = Swarm::new(4 * MIB, &specs, rng_seed);
    swarm.start();
    swarm
}

#[test]
fn one_seed_and_five_leechers_complete_with_correct_bytes() {
    let mut swarm = one_seed_five_leechers(42);
    assert!(
        swarm.run(Duration::from_secs(600)),
        "swarm did not complete"
    );
    for (i, h) in swarm.hosts.iter().enumerate() {
        assert!(h.node.is_complete(), "host {i} incomplete");
        assert!(h.storage == swarm.data, "host {i} stored wrong bytes");
        assert_eq!(h.node.bytes_left(), 0);
    }
    // Leechers upload to each other: together they carry a real share of the load.
    let peer_upload: u64 = (1..6).map(|i| swarm.uploaded(i)).sum();
    let seed_upload = swarm.uploaded(0);
    assert!(peer_upload > 0, "leechers uploaded nothing");
    assert!(
        peer_upload as f64 >= 0.5 * seed_upload as f64,
        "leechers uploaded {peer_upload} bytes, seed {seed_upload}"
    );
    // Five copies of the image left the seed and the leechers in total (at least).
    assert!(seed_upload + peer_upload >= 5 * 4 * MIB as u64);
    // With P2P the seed sends well under five full copies.
    assert!(seed_upload < 5 * 4 * MIB as u64, "seed sent {seed_upload}");
}

#[test]
fn same_seed_gives_same_trace_and_different_seed_a_different_one() {
    let run = |s| {
        let mut swarm = one_seed_five_leechers(s);
        assert!(swarm.run(Duration::from_secs(600)));
        swarm.trace.join("\n")
    };
    let a = run(7);
    let b = run(7);
    let c = run(8);
    assert!(!a.is_empty());
    assert_eq!(a, b, "same seed, different trace");
    assert_ne!(a, c, "different seed, same trace");
}

#[test]
fn corrupt_peer_is_banned_and_others_complete_correctly() {
    let mut specs = vec![
        seed(1_000_000),
        HostSpec {
            seed: true,
            corrupt: true,
            upload_bps: 4_000_000,
            super_seed: false,
        },
    ];
    specs.extend((0..4).map(|_| leecher(1_000_000)));
    let mut swarm = Swarm::new(2 * MIB, &specs, 3);
    swarm.start();
    assert!(
        swarm.run(Duration::from_secs(600)),
        "swarm did not complete"
    );
    for i in 2..6 {
        let h = &swarm.hosts[i];
        assert!(h.storage == swarm.data, "host {i} has wrong bytes");
        let banned_bad = h.events.iter().any(|e| {
            matches!(e,
            NodeEvent::PeerBanned { identity: Some(id), .. } if id == "client-1")
        });
        let saw_failure = h
            .events
            .iter()
            .any(|e| matches!(e, NodeEvent::PieceFailed { .. }));
        if saw_failure {
            assert!(
                banned_bad,
                "host {i} saw a bad piece but did not ban the corrupt peer"
            );
        }
        assert!(
            !h.events.iter().any(|e| matches!(e,
                NodeEvent::PeerBanned { identity: Some(id), .. } if id != "client-1")),
            "host {i} banned an honest peer"
        );
    }
    let bans = (2..6)
        .filter(|&i| swarm.hosts[i].node.stats().bans > 0)
        .count();
    assert!(bans >= 1, "nobody banned the corrupt peer");
}

#[test]
fn unauthenticated_peer_gets_no_bitfield() {
    let g = crate::metainfo::Geometry {
        total_length: 1 << 20,
        piece_length: 1 << 18,
    };
    let config = NodeConfig::new(Id20::new([1; 20]), Id20::new([2; 20]), g);
    let mut node = Node::new(config, PieceSet::full(4), 1, Instant::ZERO);
    let addr: SocketAddr = "127.0.0.1:7000".parse().unwrap();
    node.handle_input(
        Instant::ZERO,
        Input::Connected {
            conn: ConnId(1),
            addr,
            outbound: false,
            identity: None,
        },
    )
    .unwrap();
    let mut outs = Vec::new();
    loop {
        match node.poll_output() {
            Output::Timeout(_) => break,
            o => outs.push(o),
        }
    }
    assert!(
        matches!(outs[0], Output::Disconnect { conn: ConnId(1) }),
        "{outs:?}"
    );
    assert!(!outs
        .iter()
        .any(|o| matches!(o, Output::Transmit { .. } | Output::SendHandshake { .. })));
    assert_eq!(node.peer_count(), 0);
}

/// A tracker reply naming `peers` (and nothing else of note).
fn tracker_reply(peers: &[SocketAddr]) -> crate::tracker::AnnounceResponse {
    crate::tracker::AnnounceResponse {
        interval_s: 3600,
        min_interval_s: 60,
        complete: 0,
        incomplete: peers.len() as u32,
        peers: peers
            .iter()
            .map(|a| crate::tracker::PeerAddr {
                ip: a.ip(),
                port: a.port(),
            })
            .collect(),
        near_peers: 0,
        site: None,
        revocation_epoch: 0,
        revoked: Vec::new(),
    }
}

fn drain(node: &mut Node) -> Vec<Output> {
    let mut outs = Vec::new();
    loop {
        match node.poll_output() {
            Output::Timeout(_) => return outs,
            o => outs.push(o),
        }
    }
}

/// A downloading node started with `config` and told of ten peers
/// (10.0.0.10-19:6881); returns it and everything it put out.
fn started_with_ten_candidates(config: NodeConfig) -> (Node, Vec<Output>) {
    let pieces = config.geometry.num_pieces();
    let mut node = Node::new(config, PieceSet::new(pieces), 1, Instant::ZERO);
    node.handle_input(Instant::ZERO, Input::Start).unwrap();
    let mut outs = drain(&mut node);
    let candidates: Vec<SocketAddr> = (10..20)
        .map(|i| format!("10.0.0.{i}:6881").parse().unwrap())
        .collect();
    node.handle_input(
        Instant::ZERO,
        Input::Announced(Ok(tracker_reply(&candidates))),
    )
    .unwrap();
    outs.extend(drain(&mut node));
    (node, outs)
}

fn connected_seed() -> (Node, ConnId) {
    // 64 pieces of 256 KiB: 1,024 distinct blocks, more than a peer may queue.
    let g = crate::metainfo::Geometry {
        total_length: 1 << 24,
        piece_length: 1 << 18,
    };
    let info = Id20::new([1; 20]);
    let config = NodeConfig::new(info, Id20::new([2; 20]), g);
    let mut node = Node::new(config, PieceSet::full(64), 1, Instant::ZERO);
    let addr: SocketAddr = "127.0.0.1:7000".parse().unwrap();
    let conn = ConnId(1);
    node.handle_input(
        Instant::ZERO,
        Input::Connected {
            conn,
            addr,
            outbound: false,
            identity: Some("a".into()),
        },
    )
    .unwrap();
    let hs = crate::wire::Handshake {
        info_hash: info,
        peer_id: Id20::new([3; 20]),
        extended: false,
        fast: false,
    };
    node.handle_input(
        Instant::ZERO,
        Input::Handshake {
            conn,
            handshake: hs,
        },
    )
    .unwrap();
    drain(&mut node);
    (node, conn)
}

#[test]
fn wrong_info_hash_and_own_peer_id_close_the_connection() {
    let g = crate::metainfo::Geometry {
        total_length: 1 << 20,
        piece_length: 1 << 18,
    };
    let info = Id20::new([1; 20]);
    let me = Id20::new([2; 20]);
    let mut node = Node::new(
        NodeConfig::new(info, me, g),
        PieceSet::full(4),
        1,
        Instant::ZERO,
    );
    let addr: SocketAddr = "127.0.0.1:7000".parse().unwrap();
    for (conn, hs_info, hs_peer, reason) in [
        (
            ConnId(1),
            Id20::new([9; 20]),
            Id20::new([3; 20]),
            DisconnectReason::WrongInfoHash,
        ),
        (ConnId(2), info, me, DisconnectReason::OwnPeerId),
    ] {
        node.handle_input(
            Instant::ZERO,
            Input::Connected {
                conn,
                addr,
                outbound: false,
                identity: Some("x".into()),
            },
        )
        .unwrap();
        let hs = crate::wire::Handshake {
            info_hash: hs_info,
            peer_id: hs_peer,
            extended: false,
            fast: false,
        };
        node.handle_input(
            Instant::ZERO,
            Input::Handshake {
                conn,
                handshake: hs,
            },
        )
        .unwrap();
        let outs = drain(&mut node);
        assert!(!outs
            .iter()
            .any(|o| matches!(o, Output::SendHandshake { .. } | Output::Transmit { .. })));
        assert!(outs.iter().any(|o| matches!(o, Output::Event(NodeEvent::PeerDisconnected { reason: r, .. }) if *r == reason)), "{outs:?}");
    }
}

#[test]
fn request_flood_disconnects() {
    let (mut node, conn) = connected_seed();
    node.handle_input(
        Instant::ZERO,
        Input::Message {
            conn,
            msg: crate::wire::Message::Interested,
        },
    )
    .unwrap();
    let outs = drain(&mut node);
    assert!(outs.iter().any(|o| matches!(
        o,
        Output::Transmit {
            msg: crate::wire::Message::Unchoke,
            ..
        }
    )));
    let limit = node.config().session.max_peer_requests;
    let max_inflight = node.config().session.max_upload_inflight;
    let mut closed = false;
    for i in 0..(limit + max_inflight + 1) as u32 {
        let block = crate::wire::BlockRef {
            piece: i % 64,
            begin: (i / 64 % 16) * 16384,
            length: 16384,
        };
        node.handle_input(
            Instant::ZERO,
            Input::Message {
                conn,
                msg: crate::wire::Message::Request(block),
            },
        )
        .unwrap();
        if node.peer_count() == 0 {
            closed = true;
            break;
        }
    }
    assert!(closed, "a flood of requests must close the connection");
}

#[test]
fn requests_while_choked_disconnect_after_grace() {
    let (mut node, conn) = connected_seed();
    let block = crate::wire::BlockRef {
        piece: 0,
        begin: 0,
        length: 16384,
    };
    // Within the grace period after the initial choke, requests are dropped quietly.
    node.handle_input(
        Instant::ZERO,
        Input::Message {
            conn,
            msg: crate::wire::Message::Request(block),
        },
    )
    .unwrap();
    assert_eq!(node.peer_count(), 1);
    assert!(!drain(&mut node)
        .iter()
        .any(|o| matches!(o, Output::SendBlock { .. })));
    let late = Instant::from_secs(30);
    node.handle_input(
        late,
        Input::Message {
            conn,
            msg: crate::wire::Message::Request(block),
        },
    )
    .unwrap();
    assert_eq!(
        node.peer_count(),
        0,
        "requests long after a choke must close the connection"
    );
}

#[test]
fn handshake_timeout_closes_silent_connections() {
    let g = crate::metainfo::Geometry {
        total_length: 1 << 20,
        piece_length: 1 << 18,
    };
    let mut node = Node::new(
        NodeConfig::new(Id20::new([1; 20]), Id20::new([2; 20]), g),
        PieceSet::new(4),
        1,
        Instant::ZERO,
    );
    let addr: SocketAddr = "127.0.0.1:7000".parse().unwrap();
    node.handle_input(
        Instant::ZERO,
        Input::Connected {
            conn: ConnId(5),
            addr,
            outbound: false,
            identity: Some("x".into()),
        },
    )
    .unwrap();
    drain(&mut node);
    let deadline = Instant::ZERO + node.config().session.handshake_timeout;
    // Drive the node's timers up to just before the deadline: still open.
    while let Some(t) = node.poll_timeout().filter(|t| *t < deadline) {
        node.handle_input(t, Input::Timeout).unwrap();
        drain(&mut node);
    }
    assert_eq!(node.peer_count(), 1, "closed before the handshake timeout");
    // Within one timer tick after the deadline, it is closed.
    let limit = deadline + node.config().timer_tick;
    while let Some(t) = node.poll_timeout().filter(|t| *t <= limit) {
        node.handle_input(t, Input::Timeout).unwrap();
        drain(&mut node);
    }
    assert_eq!(node.peer_count(), 0);
}

#[test]
fn super_seeding_hub_sends_few_copies_and_everyone_completes() {
    let mut specs = vec![HostSpec {
        super_seed: true,
        ..seed(4_000_000)
    }];
    specs.extend((0..8).map(|_| leecher(2_000_000)));
    let mut swarm = Swarm::new(4 * MIB, &specs, 11);
    swarm.start();
    assert!(
        swarm.run(Duration::from_secs(600)),
        "swarm did not complete"
    );
    for h in &swarm.hosts[1..] {
        assert!(h.storage == swarm.data);
    }
    let copies = swarm.uploaded(0) as f64 / (4 * MIB) as f64;
    // Without super-seeding the same swarm pulls far more from the hub.
    let mut plain = vec![seed(4_000_000)];
    plain.extend((0..8).map(|_| leecher(2_000_000)));
    let mut normal = Swarm::new(4 * MIB, &plain, 11);
    normal.start();
    assert!(normal.run(Duration::from_secs(600)));
    let normal_copies = normal.uploaded(0) as f64 / (4 * MIB) as f64;
    assert!(copies <= 2.5, "super-seeding hub sent {copies:.2} copies");
    assert!(
        copies < normal_copies,
        "super {copies:.2} vs normal {normal_copies:.2}"
    );
}

#[test]
fn super_seeding_does_not_stall_a_lone_puller() {
    let specs = vec![
        HostSpec {
            super_seed: true,
            ..seed(2_000_000)
        },
        leecher(2_000_000),
    ];
    let mut swarm = Swarm::new(4 * MIB, &specs, 5);
    swarm.start();
    assert!(swarm.run(Duration::from_secs(600)));
    let done = swarm.hosts[1].completed_at.unwrap().as_secs_f64();
    // 4 MiB at 2 MB/s is 2.1 s; allow connection set-up, not a stall.
    assert!(done < 3.0, "lone puller took {done:.2} s");
}

/// A puller whose only neighbour is the (super-seeding) hub takes pieces
/// near file order (`PickerConfig::in_order_window_bytes`), so a driver can
/// hash each file as pieces verify: at no time are more than the window (64
/// pieces here), the random first pieces and those in flight verified beyond
/// the contiguous prefix. With rarest-first's random tie-break (window 0)
/// this run peaks at 241 of the 256.
#[test]
fn a_puller_fed_only_by_seeds_gets_pieces_near_file_order() {
    let specs = vec![
        HostSpec {
            super_seed: true,
            ..seed(2_000_000)
        },
        leecher(2_000_000),
    ];
    // 64 MiB of 256 KiB pieces: 256 pieces, an in-order window of 64.
    let mut swarm = Swarm::new(64 * MIB, &specs, 11);
    swarm.start();
    assert!(swarm.run(Duration::from_secs(600)));
    let order: Vec<u32> = swarm.hosts[1]
        .events
        .iter()
        .filter_map(|e| match e {
            NodeEvent::PieceVerified { piece } => Some(*piece),
            _ => None,
        })
        .collect();
    let n = order.len();
    assert_eq!(n, 256);
    let mut have = vec![false; n];
    let mut prefix = 0;
    let mut worst = 0;
    for (i, &p) in order.iter().enumerate() {
        have[p as usize] = true;
        while prefix < n && have[prefix] {
            prefix += 1;
        }
        worst = worst.max(i + 1 - prefix);
    }
    assert!(
        worst <= 80,
        "up to {worst} of {n} pieces verified beyond the contiguous prefix ({order:?})"
    );
}

/// A peer that closes our connection before answering the handshake (it is
/// full) is not redialed for the backoff's first 5 s, and is dialed again after.
#[test]
fn refused_peer_is_redialed_only_after_its_backoff() {
    let g = crate::metainfo::Geometry {
        total_length: 1 << 20,
        piece_length: 1 << 18,
    };
    let mut node = Node::new(
        NodeConfig::new(Id20::new([1; 20]), Id20::new([2; 20]), g),
        PieceSet::new(4),
        1,
        Instant::ZERO,
    );
    let full: SocketAddr = "10.0.0.9:6881".parse().unwrap();
    node.handle_input(Instant::ZERO, Input::Start).unwrap();
    drain(&mut node);
    node.handle_input(Instant::ZERO, Input::Announced(Ok(tracker_reply(&[full]))))
        .unwrap();
    let dials = |outs: &[Output]| {
        outs.iter()
            .filter(|o| matches!(o, Output::Connect { addr } if *addr == full))
            .count()
    };
    assert_eq!(dials(&drain(&mut node)), 1, "the tracker's peer is dialed");
    let conn = ConnId(7);
    node.handle_input(
        Instant::ZERO,
        Input::Connected {
            conn,
            addr: full,
            outbound: true,
            identity: Some("full".into()),
        },
    )
    .unwrap();
    drain(&mut node);
    node.handle_input(
        Instant::ZERO + Duration::from_millis(20),
        Input::Closed {
            conn,
            reason: "connection closed by peer".into(),
        },
    )
    .unwrap();
    // Refused again at each redial: the waits are 5 s, then 10 s.
    let mut refused_at = Instant::ZERO + Duration::from_millis(20);
    let mut waits = Vec::new();
    for round in 0..2u64 {
        let mut redial = None;
        while let Some(t) = node
            .poll_timeout()
            .filter(|t| *t <= refused_at + Duration::from_secs(30))
        {
            node.handle_input(t, Input::Timeout).unwrap();
            if dials(&drain(&mut node)) > 0 {
                redial = Some(t);
                break;
            }
        }
        let t = redial.expect("redialed after the backoff");
        waits.push(t.saturating_since(refused_at));
        let conn = ConnId(8 + round);
        node.handle_input(
            t,
            Input::Connected {
                conn,
                addr: full,
                outbound: true,
                identity: Some("full".into()),
            },
        )
        .unwrap();
        node.handle_input(
            t,
            Input::Closed {
                conn,
                reason: "connection closed by peer".into(),
            },
        )
        .unwrap();
        drain(&mut node);
        refused_at = t;
    }
    assert!(
        waits[0] >= Duration::from_secs(5) && waits[1] >= Duration::from_secs(10),
        "redial waits {waits:?}: the backoff must be 5 s, then 10 s"
    );
    assert!(waits[1] < Duration::from_secs(12), "waits {waits:?}");
}

/// A node with half its connection budget in use pauses all new dials after a
/// refusal (1 s, then 2 s, then 4 s for refusals in a row) instead of walking
/// its whole candidate list while the swarm is full.
#[test]
fn refusals_in_a_row_pause_every_dial_of_a_half_connected_node() {
    let g = crate::metainfo::Geometry {
        total_length: 1 << 20,
        piece_length: 1 << 18,
    };
    let mut config = NodeConfig::new(Id20::new([1; 20]), Id20::new([2; 20]), g);
    config.max_peers = 4;
    let (mut node, started) = started_with_ten_candidates(config);
    let dialed = |outs: &[Output]| -> Vec<SocketAddr> {
        outs.iter()
            .filter_map(|o| match o {
                Output::Connect { addr } => Some(*addr),
                _ => None,
            })
            .collect()
    };
    let mut pending = dialed(&started);
    assert_eq!(pending.len(), 2, "half the budget of 4 is dialed");
    // Two peers dial us: half the budget is in use.
    for (i, conn) in [ConnId(100), ConnId(101)].into_iter().enumerate() {
        node.handle_input(
            Instant::ZERO,
            Input::Connected {
                conn,
                addr: format!("10.0.1.{i}:40000").parse().unwrap(),
                outbound: false,
                identity: Some(format!("in-{i}")),
            },
        )
        .unwrap();
        node.handle_input(
            Instant::ZERO,
            Input::Handshake {
                conn,
                handshake: crate::wire::Handshake {
                    info_hash: Id20::new([1; 20]),
                    peer_id: Id20::new([50 + i as u8; 20]),
                    extended: false,
                    fast: false,
                },
            },
        )
        .unwrap();
    }
    drain(&mut node);
    // Every dial is refused; measure how long the node waits before the next.
    let mut now = Instant::ZERO + Duration::from_millis(20);
    let mut waits = Vec::new();
    let mut next_conn = 10;
    for round in 0..3 {
        for addr in std::mem::take(&mut pending) {
            let conn = ConnId(next_conn);
            next_conn += 1;
            node.handle_input(
                now,
                Input::Connected {
                    conn,
                    addr,
                    outbound: true,
                    identity: Some(format!("full-{round}")),
                },
            )
            .unwrap();
            node.handle_input(
                now,
                Input::Closed {
                    conn,
                    reason: "connection closed by peer".into(),
                },
            )
            .unwrap();
        }
        let refused_at = now;
        pending.extend(dialed(&drain(&mut node)));
        assert!(pending.is_empty(), "redialed at once after a refusal");
        while pending.is_empty() {
            let t = node.poll_timeout().expect("the node keeps ticking");
            assert!(t <= refused_at + Duration::from_secs(60), "never redialed");
            node.handle_input(t, Input::Timeout).unwrap();
            pending.extend(dialed(&drain(&mut node)));
            now = t;
        }
        assert_eq!(
            pending.len(),
            2,
            "after the pause, half the budget is dialed"
        );
        waits.push(now.saturating_since(refused_at));
    }
    // Two refusals per round: 2, 4, then 6 in a row, so pauses of 2 s, 8 s
    // and 32 s (rounded up to the node's 1 s timer tick).
    let secs = |d: Duration| d.as_secs_f64();
    let expected = [2.0, 8.0, 32.0];
    for (w, e) in waits.iter().zip(expected) {
        assert!(
            secs(*w) >= e && secs(*w) <= e + 1.0,
            "waits after refusals in a row {waits:?}, expected about {expected:?} s"
        );
    }
}

/// Every dial a node makes ends in its handshake: peers that dial it while
/// its dials are in flight cannot take their slots, and the hub's seeders
/// are admitted however many peers it has.
#[test]
fn a_connection_this_node_dialed_is_never_refused_for_lack_of_room() {
    let g = crate::metainfo::Geometry {
        total_length: 1 << 20,
        piece_length: 1 << 18,
    };
    let hub: SocketAddr = "10.0.9.1:6881".parse().unwrap();
    let mut config = NodeConfig::new(Id20::new([1; 20]), Id20::new([2; 20]), g);
    config.max_peers = 4;
    config.pinned_peers = vec![hub];
    let (mut node, outs) = started_with_ten_candidates(config);
    // The other end's handshake, so a link is not closed as silent.
    let greet = |node: &mut Node, now: Instant, conn: ConnId| {
        let mut peer_id = [7; 20];
        peer_id[..8].copy_from_slice(&conn.0.to_le_bytes());
        let handshake = crate::wire::Handshake {
            info_hash: Id20::new([1; 20]),
            peer_id: Id20::new(peer_id),
            extended: false,
            fast: false,
        };
        node.handle_input(now, Input::Handshake { conn, handshake })
            .unwrap();
    };
    let dialed: Vec<SocketAddr> = outs
        .into_iter()
        .filter_map(|o| match o {
            Output::Connect { addr } => Some(addr),
            _ => None,
        })
        .collect();
    assert!(dialed.contains(&hub), "the hub is dialed: {dialed:?}");
    let peers: Vec<SocketAddr> = dialed.iter().copied().filter(|a| *a != hub).collect();
    assert_eq!(
        peers.len(),
        1,
        "half the budget of 4, less the hub's dial: {dialed:?}"
    );
    // Peers dial us while our two dials are in flight: two fit beside them.
    let mut refused = 0;
    for i in 0..4u8 {
        let conn = ConnId(100 + u64::from(i));
        node.handle_input(
            Instant::ZERO,
            Input::Connected {
                conn,
                addr: format!("10.0.1.{i}:40000").parse().unwrap(),
                outbound: false,
                identity: Some(format!("in-{i}")),
            },
        )
        .unwrap();
        let outs = drain(&mut node);
        if outs
            .iter()
            .any(|o| matches!(o, Output::Disconnect { conn: c } if *c == conn))
        {
            refused += 1;
        } else {
            greet(&mut node, Instant::ZERO, conn);
        }
    }
    assert_eq!(
        refused, 2,
        "inbound links beyond the room left by dials in flight"
    );
    // Both dials succeed and each gets our handshake, not a close.
    for (i, addr) in dialed.iter().enumerate() {
        let conn = ConnId(10 + i as u64);
        node.handle_input(
            Instant::ZERO,
            Input::Connected {
                conn,
                addr: *addr,
                outbound: true,
                identity: Some(format!("out-{i}")),
            },
        )
        .unwrap();
        let outs = drain(&mut node);
        assert!(
            outs.iter()
                .any(|o| matches!(o, Output::SendHandshake { conn: c, .. } if *c == conn)),
            "dial of {addr}: {outs:?}"
        );
        assert!(
            !outs
                .iter()
                .any(|o| matches!(o, Output::Disconnect { conn: c } if *c == conn)),
            "dial of {addr} refused: {outs:?}"
        );
        greet(&mut node, Instant::ZERO, conn);
    }
    // Four sessions, the budget: the hub's link drops and its first redial
    // fails. The node refills with a peer meanwhile, so it is full when it
    // dials the hub again; that dial is admitted all the same.
    node.handle_input(
        Instant::ZERO,
        Input::Closed {
            conn: ConnId(10 + dialed.iter().position(|a| *a == hub).unwrap() as u64),
            reason: "reset".into(),
        },
    )
    .unwrap();
    let mut now = Instant::ZERO;
    let mut hub_failed = false;
    let mut next = 300;
    let mut hub_conn = None;
    for _ in 0..600 {
        for o in drain(&mut node) {
            let Output::Connect { addr } = o else {
                continue;
            };
            if addr == hub && !hub_failed {
                hub_failed = true;
                node.handle_input(now, Input::ConnectFailed { addr })
                    .unwrap();
                continue;
            }
            let conn = ConnId(next);
            next += 1;
            node.handle_input(
                now,
                Input::Connected {
                    conn,
                    addr,
                    outbound: true,
                    identity: Some(format!("re-{addr}")),
                },
            )
            .unwrap();
            let outs = drain(&mut node);
            assert!(
                outs.iter()
                    .any(|o| matches!(o, Output::SendHandshake { conn: c, .. } if *c == conn)),
                "redial of {addr} admitted: {outs:?}"
            );
            greet(&mut node, now, conn);
            if addr == hub {
                hub_conn = Some(conn);
            }
        }
        if hub_conn.is_some() {
            break;
        }
        now = node
            .poll_timeout()
            .expect("the node keeps ticking")
            .max(now);
        node.handle_input(now, Input::Timeout).unwrap();
    }
    assert!(
        hub_failed && hub_conn.is_some(),
        "the hub is redialed twice"
    );
    assert!(next > 301, "a peer was dialed before the hub's second dial");
}

/// A seed leaves the hub's seeders alone: a link between two seeds would be
/// dropped at once (`BothSeeds`), and redialing every `announce_retry` costs
/// the hub a TLS handshake per finished client.
#[test]
fn a_seed_does_not_dial_the_hub() {
    let g = crate::metainfo::Geometry {
        total_length: 1 << 20,
        piece_length: 1 << 18,
    };
    let hub: SocketAddr = "10.0.9.1:6881".parse().unwrap();
    for (have, dials) in [(PieceSet::new(4), 1), (PieceSet::full(4), 0)] {
        let mut config = NodeConfig::new(Id20::new([1; 20]), Id20::new([2; 20]), g);
        config.pinned_peers = vec![hub];
        let mut node = Node::new(config, have, 1, Instant::ZERO);
        node.handle_input(Instant::ZERO, Input::Start).unwrap();
        let mut connects = 0;
        let mut now = Instant::ZERO;
        while now < Instant::ZERO + Duration::from_secs(120) {
            connects += drain(&mut node)
                .iter()
                .filter(|o| matches!(o, Output::Connect { addr } if *addr == hub))
                .count();
            now = node
                .poll_timeout()
                .expect("the node keeps ticking")
                .max(now);
            node.handle_input(now, Input::Timeout).unwrap();
        }
        assert_eq!(
            connects, dials,
            "hub dials in 120 s by a node with {dials} to get"
        );
    }
}

mod interop;
mod locality;
mod slots;
