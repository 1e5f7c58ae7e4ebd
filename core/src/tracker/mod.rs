//! The hub's private tracker, sans-IO: swarms of announcing peers, random
//! peer lists (same site first), revocation, expiry and scrape.
//!
//! The driver authenticates each request (TLS client certificate, passkey,
//! user database) and passes the verdict as an [`Auth`]; the tracker decides
//! everything else. Time comes in as `now`; randomness comes from an owned
//! RNG seeded in [`Tracker::new`], so a seed reproduces every peer list.
//!
//! Methods, quinn-style:
//! - inputs: [`Tracker::handle_announce`];
//! - mutators from the hub: [`Tracker::add_swarm`], [`Tracker::remove_swarm`],
//!   [`Tracker::set_site`], [`Tracker::revoke`];
//! - timers: call [`Tracker::expire`] once [`Tracker::poll_timeout`] has passed;
//! - getters: [`Tracker::scrape`], [`Tracker::swarm_stats`], [`Tracker::swarms`].
//!
//! The wire format (BEP 3 / BEP 23 announce, BEP 48 scrape) is in [`http`].
//!
//! Cost: an announce is a few hash lookups plus O(numwant); joins, leaves,
//! completions and site moves add O(sites of the swarm); expiry is amortized
//! O(1) per peer per expiry window, whatever the announce rate.

mod expiry;
mod hash;
pub mod http;
mod sample;
mod swarm;
mod types;

#[cfg(test)]
mod proptests;
#[cfg(test)]
mod tests;

use std::collections::{BTreeMap, BTreeSet};

use crate::rng::{self, Rng};
use crate::time::{Duration, Instant};
use crate::Id20;

use expiry::{Record, Schedule};
use hash::{Keyed, Map};
use sample::Sampler;
use swarm::{Figures, IdentityId, NewPeer, SiteId, Swarm};

pub use types::{
    AnnounceError, AnnounceEvent, AnnounceRequest, AnnounceResponse, Auth, PeerAddr, PeerView,
    SwarmStats, TrackerConfig,
};

/// What an announce needs to know about an identity, kept in the lookup
/// map itself so checking a caller costs one probe.
#[derive(Clone, Copy, Debug)]
struct IdentityState {
    id: IdentityId,
    site: Option<SiteId>,
    revoked: bool,
}

/// Index of a swarm in `Tracker::swarms`.
type SwarmIndex = u32;

/// The tracker state machine.
#[derive(Debug)]
pub struct Tracker {
    config: TrackerConfig,
    rng: Rng,
    keyed: Keyed,
    swarm_ids: Map<Id20, SwarmIndex>,
    /// Swarms by index; `None` marks a free slot.
    swarms: Vec<Option<(Id20, Swarm)>>,
    free_swarms: Vec<SwarmIndex>,
    identity_ids: Map<Box<str>, IdentityState>,
    /// (info hash, peer id) of every entry, per identity.
    entries: Vec<BTreeSet<(Id20, Id20)>>,
    site_ids: BTreeMap<String, SiteId>,
    /// Site names by id.
    site_names: Vec<String>,
    /// Every revoked identity, sorted.
    revoked: Vec<String>,
    epoch: u64,
    next_serial: u64,
    schedule: Schedule,
    sampler: Sampler,
    positions: Vec<u32>,
}

impl Tracker {
    /// A tracker with no swarms; `seed` fixes every random choice it makes.
    pub fn new(config: TrackerConfig, seed: u64) -> Self {
        let mut rng = rng::from_seed(seed);
        let keyed = Keyed::from_rng(&mut rng);
        Tracker {
            config,
            rng,
            keyed,
            swarm_ids: keyed.map(),
            swarms: Vec::new(),
            free_swarms: Vec::new(),
            identity_ids: keyed.map(),
            entries: Vec::new(),
            site_ids: BTreeMap::new(),
            site_names: Vec::new(),
            revoked: Vec::new(),
            epoch: 0,
            next_serial: 0,
            schedule: Schedule::default(),
            sampler: Sampler::default(),
            positions: Vec::new(),
        }
    }

    /// The configuration in use.
    pub fn config(&self) -> &TrackerConfig {
        &self.config
    }

    /// Current revocation epoch (number of revocations so far).
    pub fn revocation_epoch(&self) -> u64 {
        self.epoch
    }

    /// Peer entries across all swarms.
    pub fn peer_count(&self) -> usize {
        self.live_swarms().map(|(_, s)| s.len()).sum()
    }

    /// Serves `info_hash` (the hub cached that image). Idempotent.
    pub fn add_swarm(&mut self, info_hash: Id20) {
        let index = match self.swarm_ids.get(&info_hash) {
            Some(&index) => index,
            None => self.create_swarm(info_hash),
        };
        if let Some(swarm) = self.swarm_at(index) {
            swarm.registered = true;
        }
    }

    /// Stops serving `info_hash` and forgets its peers.
    pub fn remove_swarm(&mut self, info_hash: &Id20) {
        let Some(index) = self.swarm_ids.remove(info_hash) else {
            return;
        };
        self.free_swarms.push(index);
        let Some((_, swarm)) = self.swarms.get_mut(index as usize).and_then(Option::take) else {
            return;
        };
        for (peer_id, peer) in swarm.entries() {
            self.forget_entry(peer.identity, info_hash, peer_id);
        }
    }

    /// Sets (or clears) the site of an identity; its peers move to that
    /// site's group in every swarm at once.
    pub fn set_site(&mut self, identity: &str, site: Option<String>) {
        let site = site.map(|name| match self.site_ids.get(&name) {
            Some(&id) => id,
            None => {
                let id = self.site_names.len() as SiteId;
                self.site_names.push(name.clone());
                self.site_ids.insert(name, id);
                id
            }
        });
        let state = self.intern(identity);
        if state.site == site {
            return;
        }
        if let Some(s) = self.identity_ids.get_mut(identity) {
            s.site = site;
        }
        for (info_hash, peer_id) in &self.entries[state.id as usize] {
            let Some(&index) = self.swarm_ids.get(info_hash) else {
                continue;
            };
            if let Some(Some((_, swarm))) = self.swarms.get_mut(index as usize) {
                swarm.set_site(peer_id, site);
            }
        }
    }

    /// Lifts a revocation (an operator enrolled the name again with new
    /// credentials): the identity may announce again. The epoch grows so that
    /// clients fetch the new, shorter list. Unknown or unrevoked names change
    /// nothing.
    pub fn unrevoke(&mut self, identity: &str) {
        let Some(state) = self.identity_ids.get_mut(identity) else {
            return;
        };
        if !state.revoked {
            return;
        }
        state.revoked = false;
        if let Ok(at) = self.revoked.binary_search_by(|r| r.as_str().cmp(identity)) {
            self.revoked.remove(at);
        }
        self.epoch += 1;
    }

    /// Revokes an identity: its peers leave every swarm now, its announces
    /// are refused from now on, and the revocation epoch grows by one.
    /// Revoking twice changes nothing.
    pub fn revoke(&mut self, identity: &str) {
        let state = self.intern(identity);
        if state.revoked {
            return;
        }
        if let Some(s) = self.identity_ids.get_mut(identity) {
            s.revoked = true;
        }
        if let Err(at) = self.revoked.binary_search_by(|r| r.as_str().cmp(identity)) {
            self.revoked.insert(at, identity.to_owned());
        }
        self.epoch += 1;
        for (info_hash, peer_id) in std::mem::take(&mut self.entries[state.id as usize]) {
            let Some(&index) = self.swarm_ids.get(&info_hash) else {
                continue;
            };
            if let Some(swarm) = self.swarm_at(index) {
                swarm.remove(&peer_id);
            }
            self.drop_if_abandoned(index);
        }
    }

    /// Handles one announce: checks the caller, records the peer and answers
    /// with a random peer list.
    pub fn handle_announce(
        &mut self,
        now: Instant,
        auth: &Auth,
        req: &AnnounceRequest,
    ) -> Result<AnnounceResponse, AnnounceError> {
        let caller = self.authorize(auth)?;
        if req.port == 0 {
            return Err(AnnounceError::InvalidPort);
        }
        let addr = PeerAddr {
            ip: req.ip.to_canonical(),
            port: req.port,
        };
        let index = match self.swarm_ids.get(&req.info_hash) {
            Some(&index) => index,
            None if self.config.only_known_swarms => {
                return Err(AnnounceError::UnknownSwarm {
                    info_hash: req.info_hash,
                })
            }
            None if req.event == AnnounceEvent::Stopped => {
                return Ok(self.response(SwarmStats::default(), Vec::new(), Vec::new()));
            }
            None => self.create_swarm(req.info_hash),
        };
        let Some(swarm) = self.swarm_at(index) else {
            return Err(AnnounceError::UnknownSwarm {
                info_hash: req.info_hash,
            });
        };
        let existing = match swarm.find(&req.peer_id) {
            Some(peer) if peer.identity != caller.id => {
                return Err(AnnounceError::PeerIdTaken {
                    peer_id: req.peer_id,
                })
            }
            Some(peer) => Some(peer.addr),
            None => None,
        };
        if req.event == AnnounceEvent::Stopped {
            if existing.is_some() {
                self.remove_entry(index, &req.peer_id);
            }
            let stats = self.swarm_at(index).map(|s| s.stats()).unwrap_or_default();
            self.drop_if_abandoned(index);
            return Ok(self.response(stats, Vec::new(), Vec::new()));
        }
        match existing {
            Some(old_addr) => {
                if old_addr != addr {
                    self.evict_addr_squatter(index, addr);
                }
                let figures = Figures {
                    addr,
                    left: req.left,
                    uploaded: req.uploaded,
                    downloaded: req.downloaded,
                    now,
                };
                if let Some(swarm) = self.swarm_at(index) {
                    swarm.update(&req.peer_id, figures);
                }
            }
            None => {
                self.evict_addr_squatter(index, addr);
                self.insert_entry(index, now, caller, addr, req);
            }
        }
        let site = self
            .identity_ids
            .get(auth_identity(auth))
            .and_then(|s| s.site);
        Ok(self.answer(index, req, site))
    }

    /// The site of an identity, when the hub set one.
    pub fn site_of(&self, identity: &str) -> Option<&str> {
        let site = self.identity_ids.get(identity)?.site?;
        self.site_names.get(site as usize).map(String::as_str)
    }

    /// Counters of the requested swarms (all swarms, by info hash, when
    /// `info_hashes` is empty). Unknown and repeated hashes are skipped.
    pub fn scrape(&self, info_hashes: &[Id20]) -> Vec<(Id20, SwarmStats)> {
        if info_hashes.is_empty() {
            return self.swarms().map(|(h, s)| (*h, s)).collect();
        }
        let mut seen = BTreeSet::new();
        info_hashes
            .iter()
            .filter(|h| seen.insert(**h))
            .filter_map(|h| Some((*h, self.swarm_stats(h)?)))
            .collect()
    }

    /// Drops every peer that has been silent for the expiry window
    /// ([`TrackerConfig::expiry_window`]); returns how many.
    pub fn expire(&mut self, now: Instant) -> usize {
        let window = self.config.expiry_window();
        let mut dropped = 0;
        for record in self.schedule.take_due(now) {
            let Some(&index) = self.swarm_ids.get(&record.swarm) else {
                continue;
            };
            let Some(peer) = self.swarm_at(index).and_then(|s| s.find(&record.peer_id)) else {
                continue;
            };
            if peer.serial != record.serial {
                continue;
            }
            let deadline = peer.last_announce + window;
            if deadline <= now {
                self.remove_entry(index, &record.peer_id);
                self.drop_if_abandoned(index);
                dropped += 1;
            } else {
                self.schedule.push(deadline, record);
            }
        }
        dropped
    }

    /// When [`Tracker::expire`] should next run; `None` while there are no peers.
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.schedule.next_due()
    }

    /// Counters of one swarm.
    pub fn swarm_stats(&self, info_hash: &Id20) -> Option<SwarmStats> {
        let &index = self.swarm_ids.get(info_hash)?;
        let (_, swarm) = self.swarms.get(index as usize)?.as_ref()?;
        Some(swarm.stats())
    }

    /// Every swarm with its counters, by info hash.
    pub fn swarms(&self) -> impl Iterator<Item = (&Id20, SwarmStats)> {
        let mut all: Vec<(&Id20, &Swarm)> = self.live_swarms().collect();
        all.sort_unstable_by_key(|(h, _)| *h);
        all.into_iter().map(|(h, s)| (h, s.stats()))
    }

    /// Every peer of one swarm, in the swarm's own order (empty for an
    /// unknown swarm). Costs O(identities + peers); for the admin console,
    /// not the announce path.
    pub fn swarm_peers(&self, info_hash: &Id20) -> Vec<PeerView> {
        let Some((_, swarm)) = self
            .swarm_ids
            .get(info_hash)
            .and_then(|&i| self.swarms.get(i as usize)?.as_ref())
        else {
            return Vec::new();
        };
        let mut names: Vec<Option<(&str, Option<SiteId>)>> = vec![None; self.entries.len()];
        for (name, state) in self.identity_ids.iter() {
            if let Some(slot) = names.get_mut(state.id as usize) {
                *slot = Some((name, state.site));
            }
        }
        let sites: BTreeMap<SiteId, &str> = self
            .site_ids
            .iter()
            .map(|(n, &id)| (id, n.as_str()))
            .collect();
        swarm
            .entries()
            .map(|(peer_id, p)| {
                let who = names.get(p.identity as usize).copied().flatten();
                PeerView {
                    peer_id: *peer_id,
                    identity: who.map_or_else(String::new, |w| w.0.to_owned()),
                    site: who
                        .and_then(|w| w.1)
                        .and_then(|s| sites.get(&s))
                        .map(|s| (*s).to_owned()),
                    addr: p.addr,
                    left: p.left,
                    uploaded: p.uploaded,
                    downloaded: p.downloaded,
                    last_announce: p.last_announce,
                }
            })
            .collect()
    }

    /// Checks the structure of one swarm; for tests.
    #[cfg(test)]
    fn check_swarm(&self, info_hash: &Id20) {
        let index = self.swarm_ids[info_hash] as usize;
        let (h, swarm) = self.swarms[index].as_ref().expect("live swarm");
        assert_eq!(h, info_hash);
        swarm.check();
    }

    fn live_swarms(&self) -> impl Iterator<Item = (&Id20, &Swarm)> {
        self.swarms.iter().flatten().map(|(h, s)| (h, s))
    }

    fn swarm_at(&mut self, index: SwarmIndex) -> Option<&mut Swarm> {
        let (_, swarm) = self.swarms.get_mut(index as usize)?.as_mut()?;
        Some(swarm)
    }

    fn create_swarm(&mut self, info_hash: Id20) -> SwarmIndex {
        let swarm = Some((info_hash, Swarm::new(false, self.keyed)));
        let index = match self.free_swarms.pop() {
            Some(index) => {
                self.swarms[index as usize] = swarm;
                index
            }
            None => {
                self.swarms.push(swarm);
                (self.swarms.len() - 1) as SwarmIndex
            }
        };
        self.swarm_ids.insert(info_hash, index);
        index
    }

    /// Forgets a swarm that an announce created once its last peer is gone.
    fn drop_if_abandoned(&mut self, index: SwarmIndex) {
        let Some(slot) = self.swarms.get_mut(index as usize) else {
            return;
        };
        if let Some((info_hash, swarm)) = slot {
            if !swarm.registered && swarm.is_empty() {
                self.swarm_ids.remove(info_hash);
                *slot = None;
                self.free_swarms.push(index);
            }
        }
    }

    /// The identity an announce may act as.
    fn authorize(&mut self, auth: &Auth) -> Result<IdentityState, AnnounceError> {
        let Auth::Verified {
            identity,
            registered,
        } = auth
        else {
            return Err(AnnounceError::NotAuthenticated);
        };
        let known = self.identity_ids.get(identity.as_str()).copied();
        if known.is_some_and(|s| s.revoked) {
            return Err(AnnounceError::Revoked {
                identity: identity.clone(),
            });
        }
        if !registered {
            return Err(AnnounceError::NotRegistered {
                identity: identity.clone(),
            });
        }
        Ok(known.unwrap_or_else(|| self.intern(identity)))
    }

    fn intern(&mut self, identity: &str) -> IdentityState {
        if let Some(&state) = self.identity_ids.get(identity) {
            return state;
        }
        let state = IdentityState {
            id: self.entries.len() as IdentityId,
            site: None,
            revoked: false,
        };
        self.entries.push(BTreeSet::new());
        self.identity_ids.insert(identity.into(), state);
        state
    }

    fn insert_entry(
        &mut self,
        index: SwarmIndex,
        now: Instant,
        caller: IdentityState,
        addr: PeerAddr,
        req: &AnnounceRequest,
    ) {
        let serial = self.next_serial;
        self.next_serial += 1;
        let new = NewPeer {
            peer_id: req.peer_id,
            identity: caller.id,
            addr,
            site: caller.site,
            left: req.left,
            uploaded: req.uploaded,
            downloaded: req.downloaded,
            now,
            serial,
        };
        let Some(swarm) = self.swarm_at(index) else {
            return;
        };
        swarm.insert(new);
        self.entries[caller.id as usize].insert((req.info_hash, req.peer_id));
        let record = Record {
            swarm: req.info_hash,
            peer_id: req.peer_id,
            serial,
        };
        let deadline = now + self.config.expiry_window();
        self.schedule.push(deadline, record);
    }

    /// Removes the entry that claims `addr` in this swarm, if any: an
    /// address names one listener, so the newest announce from it wins (a
    /// client that restarted with a new peer id replaces its old entry).
    fn evict_addr_squatter(&mut self, index: SwarmIndex, addr: PeerAddr) {
        let squatter = self.swarm_at(index).and_then(|s| s.find_addr(&addr));
        if let Some(peer_id) = squatter {
            self.remove_entry(index, &peer_id);
        }
    }

    fn remove_entry(&mut self, index: SwarmIndex, peer_id: &Id20) {
        let Some(Some((info_hash, swarm))) = self.swarms.get_mut(index as usize) else {
            return;
        };
        if let Some(peer) = swarm.remove(peer_id) {
            let info_hash = *info_hash;
            self.forget_entry(peer.identity, &info_hash, peer_id);
        }
    }

    fn forget_entry(&mut self, ident: IdentityId, info_hash: &Id20, peer_id: &Id20) {
        if let Some(entries) = self.entries.get_mut(ident as usize) {
            entries.remove(&(*info_hash, *peer_id));
        }
    }

    /// Builds the answer for the requester's entry: counters, revocations,
    /// peer sample.
    fn answer(
        &mut self,
        index: SwarmIndex,
        req: &AnnounceRequest,
        site: Option<SiteId>,
    ) -> AnnounceResponse {
        let Some(Some((_, swarm))) = self.swarms.get_mut(index as usize) else {
            return self.response(SwarmStats::default(), Vec::new(), Vec::new());
        };
        let completed = req.event == AnnounceEvent::Completed;
        let reply = swarm.reply(&req.peer_id, completed, self.epoch);
        let revoked = if reply.send_revoked {
            self.revoked.clone()
        } else {
            Vec::new()
        };
        let want = req
            .numwant
            .unwrap_or(self.config.default_numwant)
            .min(self.config.max_numwant);
        let positions = &mut self.positions;
        positions.clear();
        // A few other-site peers even when the site alone could fill the
        // list: the client keeps a few cross-site connections (for pieces its
        // site lacks) and needs someone to dial for them.
        let far_reserve = if site.is_some() {
            want.div_ceil(FAR_SHARE).min(reply.far.len())
        } else {
            0
        };
        self.sampler
            .sample(&mut self.rng, &reply.near, want - far_reserve, positions);
        let near_peers = if site.is_some() {
            positions.len() as u32
        } else {
            0
        };
        let rest = want - positions.len() as u32;
        self.sampler
            .sample(&mut self.rng, &reply.far, rest, positions);
        let peers = positions.iter().map(|&pos| swarm.addr_at(pos)).collect();
        let stats = swarm.stats();
        let mut resp = self.response(stats, peers, revoked);
        resp.near_peers = near_peers;
        resp.site = site.and_then(|s| self.site_names.get(s as usize).cloned());
        resp
    }

    fn response(
        &self,
        stats: SwarmStats,
        peers: Vec<PeerAddr>,
        revoked: Vec<String>,
    ) -> AnnounceResponse {
        let secs = |d: Duration| u32::try_from(d.as_millis() / 1000).unwrap_or(u32::MAX);
        AnnounceResponse {
            interval_s: secs(self.config.interval),
            min_interval_s: secs(self.config.min_interval),
            complete: stats.seeders,
            incomplete: stats.leechers,
            peers,
            near_peers: 0,
            site: None,
            revocation_epoch: self.epoch,
            revoked,
        }
    }
}

/// One peer in this many of a list (rounded up) is kept for other sites.
const FAR_SHARE: u32 = 8;

/// The identity an authorized request acts as.
fn auth_identity(auth: &Auth) -> &str {
    match auth {
        Auth::Verified { identity, .. } => identity,
        Auth::Anonymous => "",
    }
}
