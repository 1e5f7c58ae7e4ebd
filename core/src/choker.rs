//! Choker: decides which interested peers we upload to.
//!
//! Leecher choker (after BEP 3's "choking algorithm"): every
//! `rechoke_interval` the `slots` interested, non-snubbed peers are unchoked,
//! those we serve now first (a slot is not taken from a peer mid-transfer:
//! all members of a swarm are the hub's authenticated clients, so there are
//! no free riders for tit-for-tat to starve), then those that gave us the
//! highest download rate; one more "optimistic" slot rotates every
//! `optimistic_interval` to a random choked interested peer, with peers that
//! connected recently three times as likely, so newcomers get a first piece to trade.
//!
//! Seed choker: a seed receives nothing, so it ranks interested peers by the bytes
//! it has already given them, fewest first (round robin): upload spreads across the
//! swarm, which spreads distinct pieces, instead of feeding the fastest peer.

use std::collections::BTreeSet;

use rand::RngExt;

use crate::rng::Rng;
use crate::time::{Duration, Instant};
use crate::ConnId;

/// Choker knobs.
#[derive(Clone, Debug, PartialEq)]
pub struct ChokerConfig {
    /// Regular upload slots. Default: 12. BEP 3's clients used 4; with each
    /// uplink spread over more peers, each peer's download is the sum of more,
    /// smaller streams and varies less, which is what evens out completion
    /// times in a fleet (the simulator's flash crowd of 300 peers, mean of
    /// three seeds: slowest peer at 1.22x the bound with 4 slots, 1.17x with
    /// 8, 1.12x with 12).
    pub slots: usize,
    /// How often regular slots are recomputed. Default: 10 s.
    pub rechoke_interval: Duration,
    /// How often the optimistic slot rotates. Default: 30 s.
    pub optimistic_interval: Duration,
    /// Most regular slots when the node widens them because its upload is
    /// underused (see `NodeConfig::upload_capacity_bps`). Default: 32.
    pub max_slots: usize,
    /// Number of optimistic slots. Default: 1.
    pub optimistic_slots: usize,
    /// Peers connected for less than this are "new" and three times as likely
    /// to get the optimistic slot. Default: 60 s.
    pub new_peer_window: Duration,
    /// Most slots (regular and optimistic together) held by peers of other
    /// sites (`ChokerPeer::far`), so our upload serves our own site first
    /// and little of it crosses a thin inter-site link. Default: 1.
    pub cross_site_slots: usize,
}

impl Default for ChokerConfig {
    fn default() -> Self {
        ChokerConfig {
            slots: 12,
            max_slots: 32,
            rechoke_interval: Duration::from_secs(10),
            optimistic_interval: Duration::from_secs(30),
            optimistic_slots: 1,
            new_peer_window: Duration::from_secs(60),
            cross_site_slots: 1,
        }
    }
}

/// What the choker needs to know about one connected peer.
#[derive(Clone, Debug, PartialEq)]
pub struct ChokerPeer {
    /// The connection.
    pub conn: ConnId,
    /// The peer wants pieces from us.
    pub interested: bool,
    /// The peer has not sent us a block for a long time although we asked.
    pub snubbed: bool,
    /// Estimated rate at which the peer sends to us (bytes/s).
    pub download_bps: f64,
    /// Bytes we uploaded to the peer so far.
    pub bytes_given: u64,
    /// When the connection was established.
    pub connected_at: Instant,
    /// Pieces the peer has (from its bitfield and haves).
    pub pieces: u32,
    /// The peer is in another site (always false while sites are unknown).
    pub far: bool,
    /// We unchoke the peer now (whoever unchoked it: a rechoke, or a slot
    /// handed on between rechokes).
    pub unchoked: bool,
}

/// The choker of one node.
#[derive(Clone, Debug)]
pub struct Choker {
    config: ChokerConfig,
    slots: usize,
    optimistic: Vec<ConnId>,
    next_optimistic_at: Option<Instant>,
    unchoked: BTreeSet<ConnId>,
}

impl Choker {
    /// A choker with `config`.
    pub fn new(config: ChokerConfig) -> Self {
        Choker {
            slots: config.slots,
            config,
            optimistic: Vec::new(),
            next_optimistic_at: None,
            unchoked: BTreeSet::new(),
        }
    }

    /// The knobs.
    pub fn config(&self) -> &ChokerConfig {
        &self.config
    }

    /// Regular slots in use now (starts at `config.slots`).
    pub fn slots(&self) -> usize {
        self.slots
    }

    /// Widen or narrow the regular slots, within `config.slots ..= config.max_slots`.
    pub fn set_slots(&mut self, slots: usize) {
        self.slots = slots.clamp(
            self.config.slots,
            self.config.max_slots.max(self.config.slots),
        );
    }

    /// Peers currently unchoked.
    pub fn unchoked(&self) -> &BTreeSet<ConnId> {
        &self.unchoked
    }

    /// Forget a peer that disconnected.
    pub fn remove(&mut self, conn: ConnId) {
        self.unchoked.remove(&conn);
        self.optimistic.retain(|c| *c != conn);
    }

    /// Recompute the unchoked set at `now`. `seeding` selects the seed choker.
    /// Returns the new set; the caller sends choke/unchoke for the differences.
    pub fn rechoke(
        &mut self,
        now: Instant,
        seeding: bool,
        peers: &[ChokerPeer],
        rng: &mut Rng,
    ) -> &BTreeSet<ConnId> {
        let mut candidates: Vec<&ChokerPeer> = peers.iter().filter(|p| p.interested).collect();
        // Shuffle first so that ties are broken at random by the stable sort.
        for i in (1..candidates.len()).rev() {
            candidates.swap(i, rng.random_range(0..=i));
        }
        if seeding {
            candidates.sort_by_key(|p| p.bytes_given);
        } else {
            // Peers we serve now keep their slots: every swarm member is an
            // authenticated client of ours, so there is no free rider to
            // starve out, and choking a peer cuts off its requests in
            // flight and leaves its half-fetched pieces to others. Slots
            // change hands when their holders lose interest, are snubbed,
            // or a clearly faster reciprocator turns up (`upgrade`); the
            // rest go to the fastest senders, as in BEP 3.
            let held = |p: &ChokerPeer| p.unchoked && !self.optimistic.contains(&p.conn);
            candidates.sort_by_key(|p| {
                (
                    p.snubbed,
                    !held(p),
                    std::cmp::Reverse(rate_key(p.download_bps)),
                )
            });
        }
        let mut far_left = self.config.cross_site_slots;
        let regular: BTreeSet<ConnId> = candidates
            .iter()
            .filter(|p| seeding || !p.snubbed)
            .filter(|p| !p.far || take_one(&mut far_left))
            .take(self.slots)
            .map(|p| p.conn)
            .collect();

        self.optimistic
            .retain(|c| candidates.iter().any(|p| p.conn == *c) && !regular.contains(c));
        let far = |c: &ConnId| candidates.iter().any(|p| p.conn == *c && p.far);
        let optimistic_far = self.optimistic.iter().filter(|c| far(c)).count();
        if optimistic_far > far_left {
            // Over the cross-site limit (regular far peers came first).
            self.optimistic.retain(|c| !far(c));
        } else {
            far_left -= optimistic_far;
        }
        let rotate = self.next_optimistic_at.is_none_or(|t| now >= t);
        if rotate {
            self.optimistic.clear();
            self.next_optimistic_at = Some(now + self.config.optimistic_interval);
        }
        while self.optimistic.len() < self.config.optimistic_slots {
            let pool: Vec<&ChokerPeer> = candidates
                .iter()
                .copied()
                .filter(|p| !regular.contains(&p.conn) && !self.optimistic.contains(&p.conn))
                .filter(|p| !p.far || far_left > 0)
                .collect();
            let Some(pick) = self.weighted_pick(now, &pool, rng) else {
                break;
            };
            if pool.iter().any(|p| p.conn == pick && p.far) {
                far_left -= 1;
            }
            self.optimistic.push(pick);
        }
        self.unchoked = regular;
        self.unchoked.extend(self.optimistic.iter().copied());
        &self.unchoked
    }

    /// Between rechokes (called every timer tick): when a choked, interested,
    /// non-snubbed peer now sends to us clearly faster (by `UPGRADE_MARGIN`)
    /// than the slowest regular unchoked peer, swap the two. Tit-for-tat then
    /// answers a new reciprocator within a tick instead of up to a whole
    /// rechoke interval, without the churn of rechoking every tick: only
    /// clear winners move. `unchoked` says whom we unchoke now. Returns
    /// (peer to choke, peer to unchoke). Leechers only; a seed has no rates.
    pub fn upgrade(
        &self,
        peers: &[ChokerPeer],
        unchoked: impl Fn(ConnId) -> bool,
    ) -> Option<(ConnId, ConnId)> {
        let regular = peers
            .iter()
            .filter(|p| p.interested && unchoked(p.conn) && !self.optimistic.contains(&p.conn));
        if regular.clone().count() < self.slots {
            return None;
        }
        let far_held = peers
            .iter()
            .filter(|p| p.far && p.interested && unchoked(p.conn))
            .count();
        let weakest = regular.min_by_key(|p| (rate_key(p.download_bps), p.conn))?;
        let far_ok = weakest.far || far_held < self.config.cross_site_slots;
        let best = peers
            .iter()
            .filter(|p| p.interested && !p.snubbed && !unchoked(p.conn))
            .filter(|p| !p.far || far_ok)
            .max_by_key(|p| (rate_key(p.download_bps), std::cmp::Reverse(p.conn)))?;
        (best.download_bps > weakest.download_bps * UPGRADE_MARGIN + UPGRADE_FLOOR_BPS)
            .then_some((weakest.conn, best.conn))
    }

    fn weighted_pick(&self, now: Instant, pool: &[&ChokerPeer], rng: &mut Rng) -> Option<ConnId> {
        let weight = |p: &ChokerPeer| {
            if now.saturating_since(p.connected_at) < self.config.new_peer_window {
                3u64
            } else {
                1
            }
        };
        let total: u64 = pool.iter().map(|p| weight(p)).sum();
        if total == 0 {
            return None;
        }
        let mut x = rng.random_range(0..total);
        for p in pool {
            let w = weight(p);
            if x < w {
                return Some(p.conn);
            }
            x -= w;
        }
        None
    }
}

/// How much faster a choked peer must send to us than the slowest regular
/// unchoked one before `Choker::upgrade` swaps them.
const UPGRADE_MARGIN: f64 = 1.25;
/// ... plus this many bytes/s, so that near-zero rates do not flap.
const UPGRADE_FLOOR_BPS: f64 = 16_384.0;

/// Takes one from a budget; false when it is spent.
fn take_one(left: &mut usize) -> bool {
    if *left == 0 {
        return false;
    }
    *left -= 1;
    true
}

/// Rates as an orderable integer (bytes/s, rounded down).
fn rate_key(bps: f64) -> u64 {
    if bps.is_finite() && bps > 0.0 {
        bps as u64
    } else {
        0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rng::from_seed;
    use proptest::prelude::*;

    fn peer(conn: u64, rate: f64, given: u64) -> ChokerPeer {
        ChokerPeer {
            far: false,
            unchoked: false,
            conn: ConnId(conn),
            interested: true,
            snubbed: false,
            download_bps: rate,
            bytes_given: given,
            connected_at: Instant::ZERO,
            pieces: 0,
        }
    }

    #[test]
    fn leecher_unchokes_fastest_uploaders_plus_one_optimistic() {
        let mut c = Choker::new(ChokerConfig {
            slots: 4,
            ..ChokerConfig::default()
        });
        let mut rng = from_seed(5);
        let peers: Vec<ChokerPeer> = (0..10).map(|i| peer(i, i as f64 * 1000.0, 0)).collect();
        let now = Instant::from_secs(100);
        let set = c.rechoke(now, false, &peers, &mut rng).clone();
        assert_eq!(set.len(), 5);
        for fast in 6..10 {
            assert!(set.contains(&ConnId(fast)), "{set:?}");
        }
    }

    #[test]
    fn upgrade_swaps_only_a_clearly_faster_choked_peer() {
        let c = Choker::new(ChokerConfig {
            slots: 2,
            optimistic_slots: 0,
            ..ChokerConfig::default()
        });
        let mut peers = vec![
            peer(1, 100_000.0, 0),
            peer(2, 200_000.0, 0),
            peer(3, 110_000.0, 0),
        ];
        let unchoked = |c: ConnId| c == ConnId(1) || c == ConnId(2);
        // 110 kB/s is not 1.25x (plus the floor) of 100 kB/s: no churn.
        assert_eq!(c.upgrade(&peers, unchoked), None);
        // 300 kB/s is: the slowest regular peer (1) makes way for it.
        peers[2].download_bps = 300_000.0;
        assert_eq!(c.upgrade(&peers, unchoked), Some((ConnId(1), ConnId(3))));
        // A snubbed or uninterested peer is never brought in.
        peers[2].snubbed = true;
        assert_eq!(c.upgrade(&peers, unchoked), None);
        peers[2].snubbed = false;
        peers[2].interested = false;
        assert_eq!(c.upgrade(&peers, unchoked), None);
        // With a free regular slot there is nothing to swap (the node fills it).
        peers[2].interested = true;
        assert_eq!(c.upgrade(&peers, |c| c == ConnId(2)), None);
    }

    #[test]
    fn leecher_keeps_serving_the_peers_it_serves() {
        // Peer 1 holds a slot and sends us little; peers 2 and 3 send more
        // but wait choked. A rechoke keeps 1 and hands the free slot to the
        // fastest waiting peer.
        let mut c = Choker::new(ChokerConfig {
            slots: 2,
            optimistic_slots: 0,
            ..ChokerConfig::default()
        });
        let mut rng = from_seed(5);
        let mut peers = vec![peer(1, 1e3, 0), peer(2, 5e5, 0), peer(3, 9e5, 0)];
        peers[0].unchoked = true;
        let set = c.rechoke(Instant::ZERO, false, &peers, &mut rng).clone();
        assert_eq!(set, [ConnId(1), ConnId(3)].into_iter().collect());
        // Once it is snubbed or loses interest, the slot goes by rate.
        peers[0].snubbed = true;
        let set = c.rechoke(Instant::ZERO, false, &peers, &mut rng).clone();
        assert_eq!(set, [ConnId(2), ConnId(3)].into_iter().collect());
        peers[0].snubbed = false;
        peers[0].interested = false;
        let set = c.rechoke(Instant::ZERO, false, &peers, &mut rng).clone();
        assert_eq!(set, [ConnId(2), ConnId(3)].into_iter().collect());
    }

    #[test]
    fn snubbed_and_uninterested_peers_get_no_regular_slot() {
        let mut c = Choker::new(ChokerConfig {
            optimistic_slots: 0,
            ..ChokerConfig::default()
        });
        let mut rng = from_seed(5);
        let mut peers: Vec<ChokerPeer> = (0..6).map(|i| peer(i, 1e6 - i as f64, 0)).collect();
        peers[0].snubbed = true;
        peers[1].interested = false;
        let set = c.rechoke(Instant::ZERO, false, &peers, &mut rng).clone();
        assert_eq!(set, [2, 3, 4, 5].into_iter().map(ConnId).collect());
    }

    #[test]
    fn seed_choker_prefers_peers_given_least() {
        let mut c = Choker::new(ChokerConfig {
            optimistic_slots: 0,
            slots: 2,
            ..ChokerConfig::default()
        });
        let mut rng = from_seed(5);
        let peers = vec![
            peer(1, 0.0, 500),
            peer(2, 0.0, 10),
            peer(3, 0.0, 300),
            peer(4, 0.0, 0),
        ];
        let set = c.rechoke(Instant::ZERO, true, &peers, &mut rng).clone();
        assert_eq!(set, [ConnId(2), ConnId(4)].into_iter().collect());
    }

    #[test]
    fn optimistic_slot_holds_until_interval_then_rotates() {
        let mut c = Choker::new(ChokerConfig {
            slots: 0,
            ..ChokerConfig::default()
        });
        let mut rng = from_seed(9);
        let peers: Vec<ChokerPeer> = (0..50).map(|i| peer(i, 0.0, 0)).collect();
        let first = c
            .rechoke(Instant::from_secs(0), false, &peers, &mut rng)
            .clone();
        let held = c
            .rechoke(Instant::from_secs(10), false, &peers, &mut rng)
            .clone();
        assert_eq!(
            first, held,
            "the optimistic peer keeps its slot within 30 s"
        );
        let mut changed = false;
        for k in 1..6 {
            let next = c
                .rechoke(Instant::from_secs(30 * k), false, &peers, &mut rng)
                .clone();
            changed |= next != first;
        }
        assert!(changed, "the optimistic slot rotates");
    }

    #[test]
    fn new_peers_win_the_optimistic_slot_more_often() {
        let mut rng = from_seed(11);
        let now = Instant::from_secs(1000);
        let mut new_wins = 0;
        for _ in 0..400 {
            let mut c = Choker::new(ChokerConfig {
                slots: 0,
                ..ChokerConfig::default()
            });
            let mut old = peer(1, 0.0, 0);
            old.connected_at = Instant::ZERO;
            let mut fresh = peer(2, 0.0, 0);
            fresh.connected_at = now;
            let set = c.rechoke(now, false, &[old, fresh], &mut rng).clone();
            if set.contains(&ConnId(2)) {
                new_wins += 1;
            }
        }
        // Expected 3/4 of 400 = 300; 250 is far outside chance for a fair coin.
        assert!(new_wins > 250, "new peer won {new_wins} of 400");
    }

    proptest! {
        #[test]
        fn never_more_than_slots_plus_optimistic(
            rates in proptest::collection::vec((0.0f64..1e7, any::<bool>(), any::<bool>(), 0u64..1000), 0..40),
            slots in 0usize..8, opt in 0usize..3, seeding in any::<bool>(), seed in any::<u64>(),
            steps in 1u64..8,
        ) {
            let mut c = Choker::new(ChokerConfig { slots, optimistic_slots: opt, ..ChokerConfig::default() });
            let mut rng = from_seed(seed);
            let peers: Vec<ChokerPeer> = rates.iter().enumerate().map(|(i, &(r, int, snub, given))| ChokerPeer {
                far: false,
                unchoked: false,
                conn: ConnId(i as u64), interested: int, snubbed: snub, download_bps: r,
                bytes_given: given, connected_at: Instant::ZERO, pieces: 0,
            }).collect();
            for s in 0..steps {
                let set = c.rechoke(Instant::from_secs(s * 10), seeding, &peers, &mut rng);
                prop_assert!(set.len() <= slots + opt);
                for conn in set {
                    let p = &peers[conn.0 as usize];
                    prop_assert!(p.interested, "unchoked an uninterested peer");
                }
            }
        }
    }
}
