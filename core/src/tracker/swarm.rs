//! One swarm's peer store: entries in a hash map by peer id, plus a dense,
//! grouped array of their addresses, so a random sample costs O(numwant),
//! never O(swarm).
//!
//! The dense array `order` is partitioned into contiguous groups: first the
//! leechers of every site slot, then the seeders of every site slot
//! (`[leech s0 | leech s1 | .. | seed s0 | seed s1 | ..]`). Slot 0 is "site
//! unknown". Every pool the tracker samples from (same site, everyone else,
//! leechers only) is then a union of at most four index ranges. Inserting,
//! removing or regrouping an entry moves one element per group (O(groups)),
//! which only happens on joins, leaves, completions and site changes, never
//! on a periodic announce.

use super::hash::{Keyed, Map};
use super::sample::Pool;
use super::{PeerAddr, SwarmStats};
use crate::time::Instant;
use crate::Id20;

/// Index of an identity in the tracker's identity table.
pub(crate) type IdentityId = u32;
/// Index of a site name in the tracker's site table.
pub(crate) type SiteId = u32;

/// One announcing peer of one swarm (its peer id is the map key).
#[derive(Clone, Debug)]
pub(crate) struct Peer {
    pub(crate) identity: IdentityId,
    pub(crate) addr: PeerAddr,
    pub(crate) left: u64,
    pub(crate) uploaded: u64,
    pub(crate) downloaded: u64,
    pub(crate) last_announce: Instant,
    /// Tracker-wide unique number of this entry, so a stale expiry record
    /// never matches a later entry with the same peer id.
    pub(crate) serial: u64,
    /// Revocation epoch up to which this peer has been sent the revoked list.
    epoch_sent: u64,
    completed_counted: bool,
    /// Site slot within this swarm (0 = unknown site).
    slot: u32,
    /// Position in the dense `order` / `addrs` arrays.
    pos: u32,
}

impl Peer {
    fn is_seeder(&self) -> bool {
        self.left == 0
    }
}

/// What a new peer entry starts with.
pub(crate) struct NewPeer {
    pub(crate) peer_id: Id20,
    pub(crate) identity: IdentityId,
    pub(crate) addr: PeerAddr,
    pub(crate) site: Option<SiteId>,
    pub(crate) left: u64,
    pub(crate) uploaded: u64,
    pub(crate) downloaded: u64,
    pub(crate) now: Instant,
    pub(crate) serial: u64,
}

/// The figures of a re-announce.
pub(crate) struct Figures {
    pub(crate) addr: PeerAddr,
    pub(crate) left: u64,
    pub(crate) uploaded: u64,
    pub(crate) downloaded: u64,
    pub(crate) now: Instant,
}

/// What the answer to an announce needs from the swarm.
pub(crate) struct Reply {
    /// The peer has not yet been sent the current revoked list.
    pub(crate) send_revoked: bool,
    /// Same-site pool (empty when the site is unknown).
    pub(crate) near: Pool,
    /// Everyone else eligible.
    pub(crate) far: Pool,
}

/// The peers and counters of one info hash.
#[derive(Debug)]
pub(crate) struct Swarm {
    peers: Map<Id20, Peer>,
    /// Peer id of the entry at each dense position.
    order: Vec<Id20>,
    /// Address of the entry at each dense position (kept beside `order` so
    /// sampling touches one array).
    addrs: Vec<PeerAddr>,
    /// Group boundaries: group `g` is `order[bounds[g]..bounds[g + 1]]`.
    bounds: Vec<u32>,
    /// Site of each slot; slot 0 is the unknown site.
    slot_sites: Vec<Option<SiteId>>,
    by_addr: Map<PeerAddr, Id20>,
    seeders: u32,
    completed: u64,
    uploaded: u128,
    downloaded: u128,
    /// Registered by the hub (`add_swarm`), as opposed to created by an announce.
    pub(crate) registered: bool,
}

impl Swarm {
    pub(crate) fn new(registered: bool, keyed: Keyed) -> Self {
        Swarm {
            peers: keyed.map(),
            order: Vec::new(),
            addrs: Vec::new(),
            bounds: vec![0, 0, 0],
            slot_sites: vec![None],
            by_addr: keyed.map(),
            seeders: 0,
            completed: 0,
            uploaded: 0,
            downloaded: 0,
            registered,
        }
    }

    pub(crate) fn len(&self) -> usize {
        self.order.len()
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.order.is_empty()
    }

    pub(crate) fn stats(&self) -> SwarmStats {
        let len = u32::try_from(self.order.len()).unwrap_or(u32::MAX);
        SwarmStats {
            seeders: self.seeders,
            leechers: len - self.seeders.min(len),
            completed: self.completed,
            uploaded: u64::try_from(self.uploaded).unwrap_or(u64::MAX),
            downloaded: u64::try_from(self.downloaded).unwrap_or(u64::MAX),
        }
    }

    /// The entry with this peer id.
    pub(crate) fn find(&self, peer_id: &Id20) -> Option<&Peer> {
        self.peers.get(peer_id)
    }

    /// Peer id of the entry announcing from this address.
    pub(crate) fn find_addr(&self, addr: &PeerAddr) -> Option<Id20> {
        self.by_addr.get(addr).copied()
    }

    /// Every entry with its peer id, in dense order.
    pub(crate) fn entries(&self) -> impl Iterator<Item = (&Id20, &Peer)> + '_ {
        self.order
            .iter()
            .filter_map(|id| Some((id, self.peers.get(id)?)))
    }

    /// Adds a peer; the caller has checked that its peer id and address are free.
    pub(crate) fn insert(&mut self, new: NewPeer) {
        let slot = self.slot_of(new.site);
        let peer = Peer {
            identity: new.identity,
            addr: new.addr,
            left: new.left,
            uploaded: new.uploaded,
            downloaded: new.downloaded,
            last_announce: new.now,
            serial: new.serial,
            epoch_sent: 0,
            completed_counted: false,
            slot,
            pos: 0,
        };
        self.uploaded += u128::from(peer.uploaded);
        self.downloaded += u128::from(peer.downloaded);
        if peer.is_seeder() {
            self.seeders += 1;
        }
        let group = self.group_of(slot, peer.is_seeder());
        let addr = peer.addr;
        self.peers.insert(new.peer_id, peer);
        self.by_addr.insert(addr, new.peer_id);
        self.place(new.peer_id, addr, group);
    }

    /// Removes a peer and returns it.
    pub(crate) fn remove(&mut self, peer_id: &Id20) -> Option<Peer> {
        let peer = self.peers.remove(peer_id)?;
        let group = self.group_of(peer.slot, peer.is_seeder());
        self.unplace(peer.pos, group);
        if self.by_addr.get(&peer.addr) == Some(peer_id) {
            self.by_addr.remove(&peer.addr);
        }
        if peer.is_seeder() {
            self.seeders -= 1;
        }
        self.uploaded -= u128::from(peer.uploaded);
        self.downloaded -= u128::from(peer.downloaded);
        Some(peer)
    }

    /// Records the figures of an announce from an existing entry.
    pub(crate) fn update(&mut self, peer_id: &Id20, figures: Figures) {
        let Some(peer) = self.peers.get_mut(peer_id) else {
            return;
        };
        let was_seeder = peer.is_seeder();
        let old_addr = peer.addr;
        let (slot, pos) = (peer.slot, peer.pos);
        self.uploaded = self.uploaded - u128::from(peer.uploaded) + u128::from(figures.uploaded);
        self.downloaded =
            self.downloaded - u128::from(peer.downloaded) + u128::from(figures.downloaded);
        peer.uploaded = figures.uploaded;
        peer.downloaded = figures.downloaded;
        peer.left = figures.left;
        peer.addr = figures.addr;
        peer.last_announce = figures.now;
        let is_seeder = peer.is_seeder();
        if old_addr != figures.addr {
            self.addrs[pos as usize] = figures.addr;
            if self.by_addr.get(&old_addr) == Some(peer_id) {
                self.by_addr.remove(&old_addr);
            }
            self.by_addr.insert(figures.addr, *peer_id);
        }
        if was_seeder != is_seeder {
            if is_seeder {
                self.seeders += 1;
            } else {
                self.seeders -= 1;
            }
            self.regroup(peer_id, slot, was_seeder, slot, is_seeder);
        }
    }

    /// Finishes an announce of an existing entry: counts a first completion,
    /// marks the revoked list of `epoch` as sent, and returns the pools to
    /// sample from.
    pub(crate) fn reply(&mut self, peer_id: &Id20, completed: bool, epoch: u64) -> Reply {
        let Some(peer) = self.peers.get_mut(peer_id) else {
            return Reply {
                send_revoked: false,
                near: Pool::default(),
                far: Pool::default(),
            };
        };
        if completed && !peer.completed_counted {
            peer.completed_counted = true;
            self.completed += 1;
        }
        let send_revoked = peer.epoch_sent < epoch;
        peer.epoch_sent = epoch;
        let (pos, slot, seeder) = (peer.pos, peer.slot, peer.is_seeder());
        let (near, far) = self.pools(pos, slot, seeder);
        Reply {
            send_revoked,
            near,
            far,
        }
    }

    /// Moves an entry to the group of another site.
    pub(crate) fn set_site(&mut self, peer_id: &Id20, site: Option<SiteId>) {
        let new_slot = self.slot_of(site);
        let Some(peer) = self.peers.get(peer_id) else {
            return;
        };
        let (old_slot, seeder) = (peer.slot, peer.is_seeder());
        if old_slot != new_slot {
            self.regroup(peer_id, old_slot, seeder, new_slot, seeder);
        }
    }

    /// The pools a requester at dense position `me` samples from, in order:
    /// its own site first (when known), then everyone else. Seeders only get
    /// leechers; the requester itself is left out.
    fn pools(&self, me: u32, slot: u32, seeder: bool) -> (Pool, Pool) {
        let slots = self.slot_sites.len() as u32;
        let group_range = |g: u32| (self.bounds[g as usize], self.bounds[g as usize + 1]);
        let (leech_start, leech_end) = group_range(slot);
        let (seed_start, seed_end) = group_range(slots + slot);
        let all_leechers_end = self.bounds[slots as usize];
        let len = self.order.len() as u32;
        let mut near = Pool::default();
        let mut far = Pool::default();
        if slot == 0 {
            // Site unknown: one pool of everyone eligible.
            let end = if seeder { all_leechers_end } else { len };
            far.push_excluding(0, end, me);
            return (near, far);
        }
        near.push_excluding(leech_start, leech_end, me);
        far.push_excluding(0, leech_start, me);
        if seeder {
            far.push_excluding(leech_end, all_leechers_end, me);
        } else {
            near.push_excluding(seed_start, seed_end, me);
            far.push_excluding(leech_end, seed_start, me);
            far.push_excluding(seed_end, len, me);
        }
        (near, far)
    }

    /// Address at a dense position.
    pub(crate) fn addr_at(&self, pos: u32) -> PeerAddr {
        self.addrs[pos as usize]
    }

    /// The slot of a site in this swarm, created on first use.
    fn slot_of(&mut self, site: Option<SiteId>) -> u32 {
        if site.is_none() {
            return 0;
        }
        if let Some(slot) = self.slot_sites.iter().position(|s| *s == site) {
            return slot as u32;
        }
        // A new empty leecher group goes right before the seeder groups and a
        // new empty seeder group at the very end.
        let slots = self.slot_sites.len();
        let leechers_end = self.bounds[slots];
        self.bounds.insert(slots, leechers_end);
        self.bounds.push(self.order.len() as u32);
        self.slot_sites.push(site);
        slots as u32
    }

    fn group_of(&self, slot: u32, seeder: bool) -> usize {
        let slots = self.slot_sites.len();
        slot as usize + if seeder { slots } else { 0 }
    }

    fn regroup(&mut self, peer_id: &Id20, old_slot: u32, was: bool, new_slot: u32, is: bool) {
        let Some(peer) = self.peers.get_mut(peer_id) else {
            return;
        };
        peer.slot = new_slot;
        let (pos, addr) = (peer.pos, peer.addr);
        self.unplace(pos, self.group_of(old_slot, was));
        self.place(*peer_id, addr, self.group_of(new_slot, is));
    }

    /// Records that the entry `peer_id` now sits at dense position `pos`.
    fn set_pos(&mut self, peer_id: &Id20, pos: u32) {
        if let Some(peer) = self.peers.get_mut(peer_id) {
            peer.pos = pos;
        }
    }

    /// Copies the element at dense position `from` to `to`.
    fn shift(&mut self, from: u32, to: u32) {
        let id = self.order[from as usize];
        self.order[to as usize] = id;
        self.addrs[to as usize] = self.addrs[from as usize];
        self.set_pos(&id, to);
    }

    /// Puts `peer_id` at the end of `group`, shifting each later group right
    /// by one (one move per group).
    fn place(&mut self, peer_id: Id20, addr: PeerAddr, group: usize) {
        let groups = self.bounds.len() - 1;
        self.order.push(peer_id);
        self.addrs.push(addr);
        let mut hole = self.order.len() as u32 - 1;
        for g in (group + 1..groups).rev() {
            let start = self.bounds[g];
            if start < hole {
                self.shift(start, hole);
            }
            hole = start;
        }
        self.order[hole as usize] = peer_id;
        self.addrs[hole as usize] = addr;
        self.set_pos(&peer_id, hole);
        for bound in &mut self.bounds[group + 1..] {
            *bound += 1;
        }
    }

    /// Takes the element at `pos` out of `group`, shifting each later group
    /// left by one.
    fn unplace(&mut self, pos: u32, group: usize) {
        let groups = self.bounds.len() - 1;
        let last = self.bounds[group + 1] - 1;
        if pos != last {
            self.shift(last, pos);
        }
        let mut hole = last;
        for g in group + 1..groups {
            let end = self.bounds[g + 1];
            if end > self.bounds[g] {
                self.shift(end - 1, hole);
            }
            hole = end - 1;
        }
        self.order.pop();
        self.addrs.pop();
        for bound in &mut self.bounds[group + 1..] {
            *bound -= 1;
        }
    }

    /// Checks every structural invariant; for tests.
    #[cfg(test)]
    pub(crate) fn check(&self) {
        assert_eq!(self.order.len(), self.addrs.len());
        assert_eq!(*self.bounds.last().unwrap() as usize, self.order.len());
        assert_eq!(self.bounds.len(), 2 * self.slot_sites.len() + 1);
        assert!(self.bounds.windows(2).all(|w| w[0] <= w[1]));
        assert_eq!(self.peers.len(), self.order.len());
        let mut seeders = 0;
        for (pos, id) in self.order.iter().enumerate() {
            let peer = self.peers.get(id).expect("dense entry has a peer");
            assert_eq!(peer.pos as usize, pos);
            assert_eq!(self.addrs[pos], peer.addr);
            assert_eq!(self.by_addr.get(&peer.addr), Some(id));
            let group = self.group_of(peer.slot, peer.is_seeder());
            assert!(self.bounds[group] as usize <= pos && pos < self.bounds[group + 1] as usize);
            seeders += u32::from(peer.is_seeder());
        }
        assert_eq!(seeders, self.seeders);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use core::net::{IpAddr, Ipv4Addr};

    fn swarm() -> Swarm {
        Swarm::new(true, Keyed::from_rng(&mut crate::rng::from_seed(0)))
    }

    fn id(n: u8) -> Id20 {
        Id20::new([n; 20])
    }

    fn new_peer(n: u8, site: Option<SiteId>, left: u64) -> NewPeer {
        NewPeer {
            peer_id: id(n),
            identity: u32::from(n),
            addr: PeerAddr {
                ip: IpAddr::V4(Ipv4Addr::new(10, 0, 0, n)),
                port: 6881,
            },
            site,
            left,
            uploaded: 10,
            downloaded: 20,
            now: Instant::ZERO,
            serial: u64::from(n),
        }
    }

    fn figures(addr: PeerAddr, left: u64, uploaded: u64, downloaded: u64) -> Figures {
        Figures {
            addr,
            left,
            uploaded,
            downloaded,
            now: Instant::ZERO,
        }
    }

    #[test]
    fn groups_stay_contiguous_through_inserts_moves_and_removals() {
        let mut swarm = swarm();
        for n in 0..40u8 {
            let site = match n % 4 {
                0 => None,
                s => Some(u32::from(s)),
            };
            swarm.insert(new_peer(n, site, u64::from(n % 3)));
            swarm.check();
        }
        assert_eq!(swarm.stats().seeders, 14);
        for n in (0..40u8).step_by(3) {
            let addr = swarm.find(&id(n)).unwrap().addr;
            swarm.update(&id(n), figures(addr, 0, 1, 1));
            swarm.check();
            swarm.set_site(&id(n), Some(7 + u32::from(n) % 2));
            swarm.check();
        }
        for n in (0..40u8).step_by(2) {
            assert!(swarm.remove(&id(n)).is_some());
            swarm.check();
        }
        assert_eq!(swarm.len(), 20);
        assert!(swarm.remove(&id(0)).is_none());
    }

    #[test]
    fn sums_follow_latest_figures() {
        let mut swarm = swarm();
        swarm.insert(new_peer(1, None, 5));
        swarm.insert(new_peer(2, None, 0));
        let addr = swarm.find(&id(1)).unwrap().addr;
        swarm.update(&id(1), figures(addr, 5, 100, 200));
        let stats = swarm.stats();
        assert_eq!((stats.uploaded, stats.downloaded), (110, 220));
        assert_eq!((stats.seeders, stats.leechers), (1, 1));
        swarm.remove(&id(2));
        let stats = swarm.stats();
        assert_eq!((stats.uploaded, stats.downloaded), (100, 200));
        assert_eq!((stats.seeders, stats.leechers), (0, 1));
    }

    #[test]
    fn reply_counts_completion_once_and_revocations_once_per_epoch() {
        let mut swarm = swarm();
        swarm.insert(new_peer(1, None, 0));
        assert!(swarm.reply(&id(1), true, 1).send_revoked);
        assert!(!swarm.reply(&id(1), true, 1).send_revoked);
        assert!(swarm.reply(&id(1), false, 2).send_revoked);
        assert_eq!(swarm.stats().completed, 1);
    }
}
