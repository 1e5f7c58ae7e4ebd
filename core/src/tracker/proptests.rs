//! Random announce sequences checked against a plain model of the swarms.

use core::net::{IpAddr, Ipv4Addr};
use std::collections::{BTreeMap, BTreeSet};

use proptest::prelude::*;

use super::*;

#[derive(Clone, Debug)]
enum Op {
    Announce {
        swarm: u8,
        ident: u8,
        k: u8,
        generation: u8,
        seeder: bool,
        event: u8,
        numwant: Option<u32>,
    },
    Advance {
        secs: u64,
    },
    Revoke {
        ident: u8,
    },
    SetSite {
        ident: u8,
        site: Option<u8>,
    },
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        8 => (0..3u8, 0..5u8, 0..3u8, 0..2u8, any::<bool>(), 0..4u8, proptest::option::of(0..8u32))
            .prop_map(|(swarm, ident, k, generation, seeder, event, numwant)| Op::Announce {
                swarm, ident, k, generation, seeder, event, numwant,
            }),
        1 => (0..400u64).prop_map(|secs| Op::Advance { secs }),
        1 => (0..5u8).prop_map(|ident| Op::Revoke { ident }),
        1 => (0..5u8, proptest::option::of(0..2u8))
            .prop_map(|(ident, site)| Op::SetSite { ident, site }),
    ]
}

#[derive(Clone, Copy, Debug)]
struct Entry {
    addr: PeerAddr,
    seeder: bool,
    last: u64,
}

fn addr_of(ident: u8, k: u8) -> PeerAddr {
    PeerAddr {
        ip: IpAddr::V4(Ipv4Addr::new(10, ident, k, 1)),
        port: 6881,
    }
}

fn ident_of(addr: &PeerAddr) -> u8 {
    match addr.ip {
        IpAddr::V4(v4) => v4.octets()[1],
        IpAddr::V6(_) => u8::MAX,
    }
}

#[derive(Default)]
struct Model {
    swarms: BTreeMap<u8, BTreeMap<Id20, Entry>>,
    revoked: BTreeSet<u8>,
    sites: BTreeMap<u8, u8>,
    now: u64,
}

fn name(ident: u8) -> String {
    format!("id{ident}")
}

#[allow(clippy::too_many_arguments)]
fn check_announce(
    t: &mut Tracker,
    m: &mut Model,
    swarm: u8,
    ident: u8,
    k: u8,
    generation: u8,
    seeder: bool,
    event: u8,
    numwant: Option<u32>,
) -> Result<(), TestCaseError> {
    let event = [
        AnnounceEvent::Started,
        AnnounceEvent::Completed,
        AnnounceEvent::Stopped,
        AnnounceEvent::Periodic,
    ][usize::from(event)];
    let me = addr_of(ident, k);
    let peer_id = Id20::new([
        ident, k, generation, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7,
    ]);
    let req = AnnounceRequest {
        info_hash: Id20::new([swarm; 20]),
        peer_id,
        ip: me.ip,
        port: me.port,
        uploaded: 0,
        downloaded: 0,
        left: u64::from(!seeder),
        event,
        numwant,
        compact: true,
    };
    let auth = Auth::Verified {
        identity: name(ident),
        registered: true,
    };
    let result = t.handle_announce(Instant::from_secs(m.now), &auth, &req);
    if m.revoked.contains(&ident) {
        let revoked = matches!(result, Err(AnnounceError::Revoked { .. }));
        prop_assert!(revoked, "revoked identity got {:?}", result);
        return Ok(());
    }
    let resp = result.map_err(|e| TestCaseError::fail(format!("refused: {e}")))?;
    let entries = m.swarms.entry(swarm).or_default();
    if event == AnnounceEvent::Stopped {
        entries.remove(&peer_id);
        prop_assert!(resp.peers.is_empty());
    } else {
        entries.retain(|id, e| *id == peer_id || e.addr != me);
        let now = m.now;
        entries.insert(
            peer_id,
            Entry {
                addr: me,
                seeder,
                last: now,
            },
        );
    }
    let seeders = entries.values().filter(|e| e.seeder).count() as u32;
    prop_assert_eq!(
        (resp.complete, resp.incomplete),
        (seeders, entries.len() as u32 - seeders)
    );
    if event == AnnounceEvent::Stopped {
        return Ok(());
    }
    let eligible: BTreeMap<PeerAddr, bool> = entries
        .values()
        .filter(|e| e.addr != me && !(seeder && e.seeder))
        .map(|e| (e.addr, e.seeder))
        .collect();
    let want = numwant.unwrap_or(50).min(200) as usize;
    prop_assert_eq!(resp.peers.len(), want.min(eligible.len()));
    let distinct: BTreeSet<_> = resp.peers.iter().collect();
    prop_assert_eq!(distinct.len(), resp.peers.len(), "repeated peer");
    for p in &resp.peers {
        prop_assert!(*p != me, "requester got itself");
        prop_assert!(
            eligible.contains_key(p),
            "peer {:?} not eligible in swarm {}",
            p,
            swarm
        );
        prop_assert!(!m.revoked.contains(&ident_of(p)));
    }
    if let Some(site) = m.sites.get(&ident) {
        let same = |p: &PeerAddr| m.sites.get(&ident_of(p)) == Some(site);
        let first_other = resp
            .peers
            .iter()
            .position(|p| !same(p))
            .unwrap_or(resp.peers.len());
        prop_assert!(
            resp.peers[first_other..].iter().all(|p| !same(p)),
            "same site after others"
        );
        let same_eligible = eligible.keys().filter(|p| same(p)).count();
        // One in eight of the list (rounded up) is kept for other sites.
        let far_reserve = want.div_ceil(8).min(eligible.len() - same_eligible);
        prop_assert_eq!(first_other, same_eligible.min(want - far_reserve));
        prop_assert_eq!(resp.near_peers as usize, first_other);
        let name = format!("site{site}");
        prop_assert_eq!(resp.site.as_deref(), Some(name.as_str()));
    } else {
        prop_assert_eq!(resp.near_peers, 0);
        prop_assert_eq!(resp.site, None);
    }
    Ok(())
}

proptest! {
    #[test]
    fn peer_lists_match_the_model(
        ops in proptest::collection::vec(op(), 1..80),
        seed in any::<u64>(),
    ) {
        let mut t = Tracker::new(TrackerConfig::default(), seed);
        for s in 0..3u8 {
            t.add_swarm(Id20::new([s; 20]));
        }
        let mut m = Model::default();
        for op in ops {
            match op {
                Op::Announce { swarm, ident, k, generation, seeder, event, numwant } => {
                    check_announce(
                        &mut t, &mut m, swarm, ident, k, generation, seeder, event, numwant,
                    )?;
                }
                Op::Advance { secs } => {
                    m.now += secs;
                    let window = t.config().expiry_window().as_micros() / 1_000_000;
                    let now = m.now;
                    let mut gone = 0;
                    for entries in m.swarms.values_mut() {
                        let before = entries.len();
                        entries.retain(|_, e| e.last + window > now);
                        gone += before - entries.len();
                    }
                    prop_assert_eq!(t.expire(Instant::from_secs(now)), gone);
                }
                Op::Revoke { ident } => {
                    t.revoke(&name(ident));
                    m.revoked.insert(ident);
                    for entries in m.swarms.values_mut() {
                        entries.retain(|_, e| ident_of(&e.addr) != ident);
                    }
                }
                Op::SetSite { ident, site } => {
                    t.set_site(&name(ident), site.map(|s| format!("site{s}")));
                    match site {
                        Some(s) => m.sites.insert(ident, s),
                        None => m.sites.remove(&ident),
                    };
                }
            }
            for s in 0..3u8 {
                t.check_swarm(&Id20::new([s; 20]));
            }
            let model_peers: usize = m.swarms.values().map(BTreeMap::len).sum();
            prop_assert_eq!(t.peer_count(), model_peers);
        }
    }
}
