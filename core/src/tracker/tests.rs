use core::net::{IpAddr, Ipv4Addr};

use super::*;

fn hash(n: u8) -> Id20 {
    Id20::new([n; 20])
}

fn user(name: &str) -> Auth {
    Auth::Verified {
        identity: name.to_owned(),
        registered: true,
    }
}

fn ip(n: u16) -> IpAddr {
    IpAddr::V4(Ipv4Addr::new(10, 0, (n >> 8) as u8, n as u8))
}

/// Peer `n` of swarm `swarm`, listening on 10.0.x.y:6881.
fn req(swarm: u8, n: u16, left: u64, event: AnnounceEvent) -> AnnounceRequest {
    let mut peer_id = [0u8; 20];
    peer_id[..2].copy_from_slice(&n.to_be_bytes());
    AnnounceRequest {
        info_hash: hash(swarm),
        peer_id: Id20::new(peer_id),
        ip: ip(n),
        port: 6881,
        uploaded: 0,
        downloaded: 0,
        left,
        event,
        numwant: None,
        compact: true,
    }
}

fn tracker() -> Tracker {
    let mut t = Tracker::new(TrackerConfig::default(), 7);
    for s in 1..=3 {
        t.add_swarm(hash(s));
    }
    t
}

fn addr(n: u16) -> PeerAddr {
    PeerAddr {
        ip: ip(n),
        port: 6881,
    }
}

fn announce(t: &mut Tracker, who: &str, r: &AnnounceRequest) -> AnnounceResponse {
    t.handle_announce(Instant::ZERO, &user(who), r)
        .expect("announce accepted")
}

fn stats(t: &Tracker, swarm: u8) -> (u32, u32, u64) {
    let s = t.swarm_stats(&hash(swarm)).expect("swarm exists");
    (s.seeders, s.leechers, s.completed)
}

#[test]
fn lifecycle_counts_started_completed_stopped() {
    let mut t = tracker();
    let r = announce(&mut t, "a", &req(1, 1, 100, AnnounceEvent::Started));
    assert_eq!((r.complete, r.incomplete), (0, 1));
    assert_eq!(r.interval_s, 120);
    assert_eq!(r.min_interval_s, 30);
    announce(&mut t, "b", &req(1, 2, 0, AnnounceEvent::Started));
    assert_eq!(stats(&t, 1), (1, 1, 0));
    let r = announce(&mut t, "a", &req(1, 1, 0, AnnounceEvent::Completed));
    assert_eq!((r.complete, r.incomplete), (2, 0));
    // A repeated completed event from the same peer is not counted again.
    announce(&mut t, "a", &req(1, 1, 0, AnnounceEvent::Completed));
    announce(&mut t, "a", &req(1, 1, 0, AnnounceEvent::Periodic));
    assert_eq!(stats(&t, 1), (2, 0, 1));
    let r = announce(&mut t, "a", &req(1, 1, 0, AnnounceEvent::Stopped));
    assert!(r.peers.is_empty());
    assert_eq!((r.complete, r.incomplete), (1, 0));
    assert_eq!(stats(&t, 1), (1, 0, 1));
    assert_eq!(t.peer_count(), 1);
}

#[test]
fn upload_download_sums_follow_latest_reports() {
    let mut t = tracker();
    let mut a = req(1, 1, 10, AnnounceEvent::Started);
    a.uploaded = 5;
    a.downloaded = 7;
    announce(&mut t, "a", &a);
    a.uploaded = 50;
    a.event = AnnounceEvent::Periodic;
    announce(&mut t, "a", &a);
    let mut b = req(1, 2, 10, AnnounceEvent::Started);
    b.downloaded = 1;
    announce(&mut t, "b", &b);
    let s = t.swarm_stats(&hash(1)).unwrap();
    assert_eq!((s.uploaded, s.downloaded), (50, 8));
}

#[test]
fn numwant_defaults_and_caps() {
    let mut t = tracker();
    for n in 1..=300 {
        announce(&mut t, "x", &req(1, n, 1, AnnounceEvent::Started));
    }
    let mut r = req(1, 1, 1, AnnounceEvent::Periodic);
    assert_eq!(announce(&mut t, "x", &r).peers.len(), 50);
    r.numwant = Some(1000);
    assert_eq!(announce(&mut t, "x", &r).peers.len(), 200);
    r.numwant = Some(7);
    assert_eq!(announce(&mut t, "x", &r).peers.len(), 7);
    r.numwant = Some(0);
    assert!(announce(&mut t, "x", &r).peers.is_empty());
}

#[test]
fn peer_list_never_holds_requester_or_repeats() {
    let mut t = tracker();
    for n in 1..=6 {
        announce(&mut t, "x", &req(1, n, 1, AnnounceEvent::Started));
    }
    // Same client in another swarm must not leak into swarm 1.
    announce(&mut t, "y", &req(2, 99, 1, AnnounceEvent::Started));
    for round in 0..50 {
        let n = round % 6 + 1;
        let mut peers = announce(&mut t, "x", &req(1, n, 1, AnnounceEvent::Periodic)).peers;
        assert_eq!(peers.len(), 5);
        assert!(!peers.contains(&addr(n)));
        assert!(!peers.contains(&addr(99)));
        peers.sort();
        peers.dedup();
        assert_eq!(peers.len(), 5);
    }
}

#[test]
fn same_site_peers_come_first() {
    let mut t = tracker();
    for n in 1..=40u16 {
        let name = format!("host{n}");
        t.set_site(
            &name,
            Some(if n <= 10 { "rack-a" } else { "rack-b" }.into()),
        );
        announce(&mut t, &name, &req(1, n, 1, AnnounceEvent::Started));
    }
    let in_a = |p: &PeerAddr| (1..=10).any(|n| addr(n) == *p);
    let mut r = req(1, 3, 1, AnnounceEvent::Periodic);
    r.numwant = Some(20);
    for _ in 0..20 {
        let peers = announce(&mut t, "host3", &r).peers;
        assert_eq!(peers.len(), 20);
        assert!(
            peers[..9].iter().all(in_a),
            "first nine are rack-a: {peers:?}"
        );
        assert!(!peers[9..].iter().any(in_a));
    }
    // Its own site could fill a list of five, but one in eight (rounded up)
    // is kept for the other sites; the answer says where the site ends.
    r.numwant = Some(5);
    let resp = announce(&mut t, "host3", &r);
    assert!(resp.peers[..4].iter().all(in_a));
    assert!(!in_a(&resp.peers[4]));
    assert_eq!(resp.near_peers, 4);
    assert_eq!(resp.site.as_deref(), Some("rack-a"));
    // Moving host3 to rack-b regroups its entry at once.
    t.set_site("host3", Some("rack-b".into()));
    r.numwant = Some(30);
    let resp = announce(&mut t, "host3", &r);
    assert_eq!(resp.site.as_deref(), Some("rack-b"));
    assert_eq!(resp.near_peers, 26);
    let peers = resp.peers;
    assert!(!peers[..26].iter().any(in_a), "rack-b first: {peers:?}");
    assert!(peers[26..].iter().all(in_a), "four of rack-a: {peers:?}");
    // Without a site there is no near part.
    t.set_site("host3", None);
    let resp = announce(&mut t, "host3", &r);
    assert_eq!((resp.near_peers, resp.site), (0, None));
    t.check_swarm(&hash(1));
}

#[test]
fn seeder_gets_only_leechers() {
    let mut t = tracker();
    for n in 1..=10 {
        let left = if n <= 5 { 0 } else { 9 };
        announce(&mut t, "x", &req(1, n, left, AnnounceEvent::Started));
    }
    let seeders: Vec<_> = (1..=5).map(addr).collect();
    let to_seeder = announce(&mut t, "x", &req(1, 1, 0, AnnounceEvent::Periodic)).peers;
    assert_eq!(to_seeder.len(), 5);
    assert!(!to_seeder.iter().any(|p| seeders.contains(p)));
    let to_leecher = announce(&mut t, "x", &req(1, 6, 9, AnnounceEvent::Periodic)).peers;
    assert_eq!(to_leecher.len(), 9);
    // A leecher that completes stops receiving seeders.
    let done = announce(&mut t, "x", &req(1, 7, 0, AnnounceEvent::Completed)).peers;
    assert_eq!(done.len(), 4);
    t.check_swarm(&hash(1));
}

#[test]
fn revoke_removes_everywhere_and_bumps_epoch() {
    let mut t = tracker();
    announce(&mut t, "mallory", &req(1, 1, 1, AnnounceEvent::Started));
    announce(&mut t, "mallory", &req(2, 1, 1, AnnounceEvent::Started));
    announce(&mut t, "alice", &req(1, 2, 1, AnnounceEvent::Started));
    announce(&mut t, "alice", &req(2, 2, 1, AnnounceEvent::Started));
    assert_eq!(t.peer_count(), 4);
    t.revoke("mallory");
    assert_eq!(t.revocation_epoch(), 1);
    assert_eq!(t.peer_count(), 2);
    assert_eq!(stats(&t, 1), (0, 1, 0));
    let r = announce(&mut t, "alice", &req(1, 2, 1, AnnounceEvent::Periodic));
    assert!(r.peers.is_empty());
    assert_eq!(r.revocation_epoch, 1);
    assert_eq!(r.revoked, vec!["mallory".to_owned()]);
    // Sent once per peer entry per epoch change.
    let r = announce(&mut t, "alice", &req(1, 2, 1, AnnounceEvent::Periodic));
    assert!(r.revoked.is_empty());
    let r = announce(&mut t, "alice", &req(2, 2, 1, AnnounceEvent::Periodic));
    assert_eq!(r.revoked, vec!["mallory".to_owned()]);
    let err = t.handle_announce(
        Instant::ZERO,
        &user("mallory"),
        &req(1, 1, 1, AnnounceEvent::Started),
    );
    assert_eq!(
        err,
        Err(AnnounceError::Revoked {
            identity: "mallory".into()
        })
    );
    t.revoke("mallory");
    assert_eq!(t.revocation_epoch(), 1, "revoking twice is a no-op");
    t.revoke("eve");
    let r = announce(&mut t, "alice", &req(1, 2, 1, AnnounceEvent::Periodic));
    assert_eq!(r.revoked, vec!["eve".to_owned(), "mallory".to_owned()]);
    // Re-enrolled: mallory may announce again and leaves the revoked list.
    t.unrevoke("mallory");
    assert_eq!(t.revocation_epoch(), 3);
    announce(&mut t, "mallory", &req(1, 1, 1, AnnounceEvent::Started));
    let r = announce(&mut t, "alice", &req(1, 2, 1, AnnounceEvent::Periodic));
    assert_eq!(r.revoked, vec!["eve".to_owned()]);
    t.unrevoke("nobody");
    assert_eq!(
        t.revocation_epoch(),
        3,
        "unrevoking an unknown name is a no-op"
    );
}

#[test]
fn refused_announces_get_typed_errors() {
    let mut t = tracker();
    let r = req(1, 1, 1, AnnounceEvent::Started);
    let e = t
        .handle_announce(Instant::ZERO, &Auth::Anonymous, &r)
        .unwrap_err();
    assert_eq!(
        (e.clone(), e.http_status()),
        (AnnounceError::NotAuthenticated, 401)
    );
    let unregistered = Auth::Verified {
        identity: "bob".into(),
        registered: false,
    };
    let e = t
        .handle_announce(Instant::ZERO, &unregistered, &r)
        .unwrap_err();
    assert_eq!(
        e,
        AnnounceError::NotRegistered {
            identity: "bob".into()
        }
    );
    assert_eq!(e.http_status(), 403);
    let e = t
        .handle_announce(
            Instant::ZERO,
            &user("a"),
            &req(9, 1, 1, AnnounceEvent::Started),
        )
        .unwrap_err();
    assert_eq!(e, AnnounceError::UnknownSwarm { info_hash: hash(9) });
    assert!(e.to_string().contains(&hash(9).as_string()));
    announce(&mut t, "a", &r);
    let e = t
        .handle_announce(Instant::ZERO, &user("b"), &r)
        .unwrap_err();
    assert_eq!(e, AnnounceError::PeerIdTaken { peer_id: r.peer_id });
    let mut zero = req(1, 5, 1, AnnounceEvent::Started);
    zero.port = 0;
    let e = t
        .handle_announce(Instant::ZERO, &user("a"), &zero)
        .unwrap_err();
    assert_eq!(e, AnnounceError::InvalidPort);
    assert_eq!(t.peer_count(), 1, "refused announces add nobody");
}

#[test]
fn silent_peers_expire_after_missed_intervals() {
    let mut t = tracker();
    let at = |s| Instant::from_secs(s);
    t.handle_announce(at(10), &user("a"), &req(1, 1, 1, AnnounceEvent::Started))
        .unwrap();
    t.handle_announce(at(10), &user("b"), &req(1, 2, 1, AnnounceEvent::Started))
        .unwrap();
    // Window = 2 * 120 s + 60 s slack = 300 s.
    assert_eq!(t.poll_timeout(), Some(at(310)));
    t.handle_announce(at(200), &user("b"), &req(1, 2, 1, AnnounceEvent::Periodic))
        .unwrap();
    assert_eq!(t.expire(at(309)), 0);
    assert_eq!(t.expire(at(310)), 1);
    assert_eq!(stats(&t, 1), (0, 1, 0));
    assert_eq!(t.poll_timeout(), Some(at(500)));
    assert_eq!(t.expire(at(499)), 0);
    assert_eq!(t.expire(at(500)), 1);
    assert_eq!(t.poll_timeout(), None);
    assert_eq!(t.peer_count(), 0);
}

#[test]
fn expiry_work_does_not_grow_with_announce_rate() {
    let mut t = tracker();
    for s in 0..1000u64 {
        t.handle_announce(
            Instant::from_secs(s),
            &user("a"),
            &req(1, 1, 1, AnnounceEvent::Periodic),
        )
        .unwrap();
    }
    assert_eq!(t.schedule.len(), 1);
}

#[test]
fn scrape_reports_requested_or_all_swarms() {
    let mut t = tracker();
    announce(&mut t, "a", &req(2, 1, 0, AnnounceEvent::Completed));
    announce(&mut t, "b", &req(2, 2, 5, AnnounceEvent::Started));
    let all = t.scrape(&[]);
    assert_eq!(
        all.iter().map(|(h, _)| *h).collect::<Vec<_>>(),
        vec![hash(1), hash(2), hash(3)]
    );
    let some = t.scrape(&[hash(2), hash(9), hash(2)]);
    assert_eq!(some.len(), 1);
    let (h, s) = some[0];
    assert_eq!(h, hash(2));
    assert_eq!((s.seeders, s.leechers, s.completed), (1, 1, 1));
    assert_eq!(t.swarms().count(), 3);
    t.remove_swarm(&hash(2));
    assert!(t.scrape(&[hash(2)]).is_empty());
    assert_eq!(t.peer_count(), 0);
}

#[test]
fn open_tracker_creates_and_drops_swarms() {
    let config = TrackerConfig {
        only_known_swarms: false,
        ..TrackerConfig::default()
    };
    let mut t = Tracker::new(config, 1);
    announce(&mut t, "a", &req(5, 1, 1, AnnounceEvent::Started));
    assert!(t.swarm_stats(&hash(5)).is_some());
    announce(&mut t, "a", &req(5, 1, 1, AnnounceEvent::Stopped));
    assert!(
        t.swarm_stats(&hash(5)).is_none(),
        "empty unregistered swarm dropped"
    );
    announce(&mut t, "a", &req(6, 1, 1, AnnounceEvent::Stopped));
    assert!(t.swarm_stats(&hash(6)).is_none(), "stopped does not create");
}

#[test]
fn new_peer_id_from_same_address_replaces_old_entry() {
    let mut t = tracker();
    announce(&mut t, "a", &req(1, 1, 1, AnnounceEvent::Started));
    announce(&mut t, "b", &req(1, 2, 1, AnnounceEvent::Started));
    let mut restarted = req(1, 1, 1, AnnounceEvent::Started);
    restarted.peer_id = Id20::new([0xee; 20]);
    let r = announce(&mut t, "a", &restarted);
    assert_eq!(r.peers, vec![addr(2)]);
    assert_eq!(t.peer_count(), 2);
    // IPv4-mapped IPv6 is the same address.
    let mut mapped = req(1, 2, 1, AnnounceEvent::Periodic);
    mapped.ip = match ip(2) {
        IpAddr::V4(v4) => IpAddr::V6(v4.to_ipv6_mapped()),
        v6 => v6,
    };
    let r = announce(&mut t, "b", &mapped);
    assert_eq!(r.peers, vec![addr(1)]);
    assert_eq!(t.peer_count(), 2);
}

#[test]
fn same_seed_same_peer_lists() {
    let run = || {
        let mut t = tracker();
        (1..=60)
            .map(|n| announce(&mut t, "x", &req(1, n, 1, AnnounceEvent::Started)).peers)
            .collect::<Vec<_>>()
    };
    assert_eq!(run(), run());
}

#[test]
fn swarm_peers_name_identities_sites_and_figures() {
    let mut t = tracker();
    t.set_site("alice", Some("paris".to_owned()));
    let mut r = req(1, 1, 500, AnnounceEvent::Started);
    r.downloaded = 100;
    announce(&mut t, "alice", &r);
    announce(&mut t, "bob", &req(1, 2, 0, AnnounceEvent::Started));
    let mut peers = t.swarm_peers(&hash(1));
    peers.sort_by(|a, b| a.identity.cmp(&b.identity));
    assert_eq!(peers.len(), 2);
    assert_eq!(peers[0].identity, "alice");
    assert_eq!(peers[0].site.as_deref(), Some("paris"));
    assert_eq!((peers[0].left, peers[0].downloaded), (500, 100));
    assert_eq!(peers[0].addr, addr(1));
    assert_eq!(peers[1].identity, "bob");
    assert_eq!(peers[1].site, None);
    assert!(t.swarm_peers(&hash(2)).is_empty());
    assert!(t.swarm_peers(&hash(9)).is_empty());
}
