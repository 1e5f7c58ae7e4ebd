//! The swarm `Node`: one peer's whole view of one image — its sessions, piece
//! picker, choker, tracker client side, and seed role — as a sans-IO state machine.
//!
//! # Use
//! - Inputs: [`Node::handle_input`] with the current time.
//! - Outputs: after every input, drain [`Node::poll_output`] until it returns
//!   [`Output::Timeout`]; call `handle_input(now, Input::Timeout)` at that instant.
//! - Getters: [`Node::is_complete`], [`Node::stats`], [`Node::peer_count`], ...
//!
//! The node never touches block payloads except to pass received bytes to
//! [`Output::StoreBlock`]; it asks the driver to send blocks ([`Output::SendBlock`])
//! and to hash pieces ([`Output::VerifyPiece`]), so the simulator can skip both.

mod invariants;
mod locality;
mod peers;
mod superseed;
mod types;

use core::net::{IpAddr, SocketAddr};
use std::collections::{BTreeMap, BTreeSet, VecDeque};

pub use types::{
    AnnounceParams, ApiError, BanReason, DisconnectReason, Input, NodeConfig, NodeEvent, Output,
};

use crate::choker::Choker;
use crate::picker::Picker;
use crate::pieceset::PieceSet;
use crate::rng::Rng;
use crate::session::Session;
use crate::time::{Duration, Instant};
use crate::tracker::{AnnounceEvent, AnnounceResponse};
use crate::ConnId;

/// Totals of one node.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct NodeStats {
    /// Accepted block bytes received.
    pub bytes_down: u64,
    /// Block bytes sent.
    pub bytes_up: u64,
    /// Block bytes received but thrown away (duplicates, unrequested, failed pieces).
    pub bytes_wasted: u64,
    /// Pieces that failed verification.
    pub hash_failures: u32,
    /// Peers banned.
    pub bans: u32,
}

/// Who a ban or a trust score applies to: the verified identity when there is
/// one, otherwise the remote IP address.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum PeerKey {
    Identity(String),
    Ip(IpAddr),
}

/// One peer's view of one image.
pub struct Node {
    config: crate::node::NodeConfig,
    rng: Rng,
    picker: Picker,
    choker: Choker,
    sessions: BTreeMap<ConnId, Session>,
    out: VecDeque<Output>,
    stats: NodeStats,
    banned: BTreeSet<PeerKey>,
    failures: BTreeMap<PeerKey, u32>,
    /// Peers the tracker told us about, not yet connected.
    candidates: BTreeSet<SocketAddr>,
    /// Listen addresses of connected peers (dialed, or learned from the extended handshake).
    connected_addrs: BTreeMap<SocketAddr, ConnId>,
    dialing: BTreeSet<SocketAddr>,
    /// Super-seeding: per piece, the connections it is advertised to.
    super_advertised_to: Vec<Vec<ConnId>>,
    /// Super-seeding: per piece, how often it was advertised.
    super_advert_count: Vec<u32>,
    /// Super-seeding: peers served at once (see `adapt_super_slots`);
    /// unbounded when the upload capacity is unknown.
    super_slots: usize,
    /// Super-seeding: peers holding a slot above `super_slots` since the
    /// slots were narrowed (they keep theirs until they finish; nobody new
    /// gets one meanwhile). An upper bound, lowered as slots free.
    super_over: usize,
    /// Next check of the per-connection timers, while there are connections.
    next_tick: Option<Instant>,
    /// Every peer address the tracker ever named (for redialing when short).
    known: BTreeSet<SocketAddr>,
    /// Peers that refused us or could not be reached: not redialed before
    /// the instant, and the number of failures in a row (the wait doubles).
    backoff: BTreeMap<SocketAddr, (Instant, u32)>,
    /// Next time the candidates may be refilled from `known`.
    refill_at: Option<Instant>,
    /// Dials refused or failed in a row since the last one that succeeded.
    refused_in_row: u32,
    /// A node with half its connection budget in use dials no new peer
    /// before this instant (set after refusals in a row, see `back_off`).
    dial_pause_until: Option<Instant>,
    /// Do not redial a pinned peer before this (after a failed dial).
    pinned_retry_at: Option<Instant>,
    next_rechoke: Instant,
    /// `stats.bytes_up` at the last timer tick, to measure the uplink's use
    /// over the tick (see `widen_if_idle`).
    up_mark: (Instant, u64),
    next_announce: Option<Instant>,
    announce_in_flight: bool,
    pending_event: Option<AnnounceEvent>,
    started: bool,
    shut_down: bool,
    now: Instant,
    /// Our site, from the tracker's answers (see `locality`).
    site: Option<String>,
    /// Listen addresses the tracker listed as in our site.
    near_addrs: BTreeSet<SocketAddr>,
    /// Per piece: established same-site peers that have it (kept only
    /// while our site is known).
    near_count: Vec<u16>,
    /// The pieces with a non-zero `near_count`.
    near_union: PieceSet,
    /// Bytes of verified pieces the node did not download from peers: those
    /// it started with and those obtained outside the swarm (minus blocks of
    /// them it had already received). See `check_invariants`.
    outside_bytes: u64,
}

impl Node {
    /// A node for `config.info_hash`, starting with the verified pieces in `have`
    /// (full for a seed), its RNG seeded with `rng_seed`.
    pub fn new(config: NodeConfig, have: PieceSet, rng_seed: u64, now: Instant) -> Self {
        let mut picker_config = config.picker.clone();
        picker_config.block_len = picker_config.block_len.max(1);
        let picker = Picker::new(picker_config, config.geometry, have);
        let outside_bytes = picker.have_bytes();
        let choker = Choker::new(config.choker.clone());
        Node {
            rng: crate::rng::from_seed(rng_seed),
            picker,
            choker,
            sessions: BTreeMap::new(),
            out: VecDeque::new(),
            stats: NodeStats::default(),
            banned: BTreeSet::new(),
            failures: BTreeMap::new(),
            candidates: BTreeSet::new(),
            connected_addrs: BTreeMap::new(),
            dialing: BTreeSet::new(),
            pinned_retry_at: None,
            known: BTreeSet::new(),
            backoff: BTreeMap::new(),
            refill_at: None,
            refused_in_row: 0,
            dial_pause_until: None,
            next_tick: None,
            super_advertised_to: if config.super_seed {
                vec![Vec::new(); config.geometry.num_pieces() as usize]
            } else {
                Vec::new()
            },
            super_advert_count: if config.super_seed {
                vec![0; config.geometry.num_pieces() as usize]
            } else {
                Vec::new()
            },
            super_slots: if config.upload_capacity_bps.is_some() {
                config.choker.slots.max(1)
            } else {
                usize::MAX
            },
            super_over: 0,
            next_rechoke: now + config.choker.rechoke_interval,
            up_mark: (now, 0),
            next_announce: None,
            announce_in_flight: false,
            pending_event: None,
            started: false,
            shut_down: false,
            now,
            outside_bytes,
            site: None,
            near_addrs: BTreeSet::new(),
            near_count: Vec::new(),
            near_union: PieceSet::new(config.geometry.num_pieces()),
            config,
        }
    }

    // ---- getters ----

    /// The configuration.
    pub fn config(&self) -> &NodeConfig {
        &self.config
    }

    /// Every piece verified.
    pub fn is_complete(&self) -> bool {
        self.picker.is_complete()
    }

    /// Verified pieces.
    pub fn have(&self) -> &PieceSet {
        self.picker.have()
    }

    /// Bytes still missing.
    pub fn bytes_left(&self) -> u64 {
        self.picker.bytes_left()
    }

    /// Totals.
    pub fn stats(&self) -> NodeStats {
        self.stats
    }

    /// Open connections (handshaken or not).
    pub fn peer_count(&self) -> usize {
        self.sessions.len()
    }

    /// The open sessions, for drivers that show per-peer figures.
    pub fn sessions(&self) -> impl Iterator<Item = &Session> {
        self.sessions.values()
    }

    /// True when the identity or address is banned.
    pub fn is_banned(&self, addr: SocketAddr, identity: Option<&str>) -> bool {
        self.banned.contains(&peer_key(addr, identity))
    }

    // ---- mutators ----

    /// Download these pieces before any other, the rarest first and, among
    /// equally rare ones, one of the list's first few (a reader such as a
    /// streaming mirror waits for them, front first); replaces the previous list, and
    /// an empty list goes back to the configured strategy alone. Takes effect
    /// at the next pick: blocks already requested are not cancelled.
    pub fn set_priority(&mut self, pieces: Vec<u32>) {
        self.picker.set_priority(pieces);
    }

    // ---- inputs ----

    /// Feed one input at `now`. Then drain [`Node::poll_output`].
    pub fn handle_input(&mut self, now: Instant, input: Input) -> Result<(), ApiError> {
        if self.shut_down {
            return Err(ApiError::ShutDown);
        }
        self.now = self.now.max(now);
        let result = self.dispatch(input);
        if self.sessions.is_empty() {
            self.next_tick = None;
        } else if self.next_tick.is_none() {
            self.next_tick = Some(self.now + self.config.timer_tick);
        }
        result
    }

    fn dispatch(&mut self, input: Input) -> Result<(), ApiError> {
        match input {
            Input::Timeout => self.handle_timers(),
            Input::Start => self.start(),
            Input::Shutdown => self.shutdown(),
            Input::Connected {
                conn,
                addr,
                outbound,
                identity,
            } => return self.handle_connected(conn, addr, outbound, identity),
            Input::ConnectFailed { addr } => {
                self.dialing.remove(&addr);
                self.back_off(addr);
                if self.config.pinned_peers.contains(&addr) {
                    self.pinned_retry_at = Some(self.now + self.config.announce_retry);
                }
            }
            Input::Handshake { conn, handshake } => self.handle_handshake(conn, handshake),
            Input::Message { conn, msg } => self.handle_message(conn, msg),
            Input::Closed { conn, reason } => {
                self.drop_session(conn, DisconnectReason::Closed(reason), false)
            }
            Input::BlockSent { conn, block } => self.handle_block_sent(conn, block),
            Input::PieceVerified { piece, ok } => return self.handle_verdict(piece, ok),
            Input::PieceObtained { piece } => self.handle_obtained(piece),
            Input::Announced(result) => self.handle_announced(result),
        }
        Ok(())
    }

    // ---- outputs ----

    /// The next thing to do. Returns [`Output::Timeout`] when nothing is queued.
    #[must_use]
    pub fn poll_output(&mut self) -> Output {
        match self.out.pop_front() {
            Some(o) => o,
            None => Output::Timeout(
                self.poll_timeout()
                    .unwrap_or(Instant::from_micros(u64::MAX)),
            ),
        }
    }

    /// When the node next needs an [`Input::Timeout`], if ever.
    #[must_use]
    pub fn poll_timeout(&self) -> Option<Instant> {
        if self.shut_down {
            return None;
        }
        let mut t = self.next_announce;
        if self.started {
            t = Some(t.map_or(self.next_rechoke, |x| x.min(self.next_rechoke)));
        }
        if let Some(r) = self.pinned_retry_at.filter(|r| *r > self.now) {
            t = Some(t.map_or(r, |x| x.min(r)));
        }
        // Per-connection timers (handshake, request, snub, idle, keep-alive) are
        // seconds long; they are checked on one periodic tick instead of being
        // tracked one by one, which keeps this call O(1).
        if let Some(tick) = self.next_tick {
            t = Some(t.map_or(tick, |x| x.min(tick)));
        }
        t
    }

    fn emit(&mut self, o: Output) {
        self.out.push_back(o);
    }

    fn event(&mut self, e: NodeEvent) {
        self.out.push_back(Output::Event(e));
    }

    // ---- tracker client ----

    fn start(&mut self) {
        if self.started {
            return;
        }
        self.started = true;
        // The first rechoke comes at a random point of the interval: nodes
        // that start together (a flash crowd) must not all rechoke at the same
        // instant, or every node reacts to the same stale round at once and
        // whole groups of peers lose all their unchokes together.
        let interval = self.config.choker.rechoke_interval.as_micros().max(1);
        let first = {
            use rand::RngExt;
            self.rng.random_range(1..=interval)
        };
        self.next_rechoke = self.now + Duration::from_micros(first);
        self.announce(AnnounceEvent::Started);
        self.dial_candidates();
    }

    fn announce(&mut self, event: AnnounceEvent) {
        if self.announce_in_flight {
            // Report the event with the next announce; Completed/Stopped must not be lost.
            if event != AnnounceEvent::Periodic {
                self.pending_event = Some(event);
            }
            return;
        }
        self.announce_in_flight = event != AnnounceEvent::Stopped;
        self.next_announce = None;
        let params = AnnounceParams {
            event,
            uploaded: self.stats.bytes_up,
            downloaded: self.stats.bytes_down,
            left: self.picker.bytes_left(),
            numwant: if event == AnnounceEvent::Stopped {
                0
            } else {
                self.config.numwant
            },
            port: self.config.listen_port,
        };
        self.emit(Output::Announce(params));
    }

    fn handle_announced(&mut self, result: Result<AnnounceResponse, String>) {
        self.announce_in_flight = false;
        match result {
            Ok(resp) => {
                let interval = crate::time::Duration::from_secs(u64::from(resp.interval_s.max(1)));
                self.next_announce = Some(self.now + interval);
                for identity in &resp.revoked {
                    self.revoke(identity);
                }
                self.learn_sites(&resp);
                for p in &resp.peers {
                    let addr = SocketAddr::new(p.ip, p.port);
                    if !self.banned.contains(&PeerKey::Ip(addr.ip())) {
                        self.known.insert(addr);
                    }
                    if !self.connected_addrs.contains_key(&addr)
                        && !self.banned.contains(&PeerKey::Ip(addr.ip()))
                        && !self.backing_off(addr)
                    {
                        self.candidates.insert(addr);
                    }
                }
                self.dial_candidates();
            }
            Err(reason) => {
                self.next_announce = Some(self.now + self.config.announce_retry);
                self.event(NodeEvent::AnnounceFailed { reason });
            }
        }
        if let Some(event) = self.pending_event.take() {
            self.announce(event);
        }
    }

    fn dial_candidates(&mut self) {
        // Pinned peers (the hub's seeders) come first, whenever not connected
        // and we still need pieces: a seed would only drop them again
        // (`BothSeeds`), at the cost of a TLS handshake to the hub each time.
        let pinned = if self.picker.is_complete() {
            0
        } else {
            self.config.pinned_peers.len()
        };
        for i in 0..pinned {
            let addr = self.config.pinned_peers[i];
            let busy = self.connected_addrs.contains_key(&addr) || self.dialing.contains(&addr);
            let due = self.pinned_retry_at.is_none_or(|t| self.now >= t);
            if !busy && due && !self.banned.contains(&PeerKey::Ip(addr.ip())) {
                self.candidates.remove(&addr);
                self.dialing.insert(addr);
                self.emit(Output::Connect { addr });
            }
        }
        // Dial up to half the connection budget; the other half is left for
        // peers that dial us, so a flash crowd does not refuse itself.
        let outbound = self.sessions.values().filter(|s| s.outbound).count();
        let max_out = self.config.max_peers.div_ceil(2);
        if self.no_dialable_candidates()
            && outbound + self.dialing.len() < max_out
            && self.refill_at.is_none_or(|t| self.now >= t)
        {
            // Short of peers: try again the ones the tracker named before.
            self.refill_at = Some(self.now + crate::time::Duration::from_secs(5));
            let known: Vec<SocketAddr> = self
                .known
                .iter()
                .copied()
                .filter(|a| {
                    !self.connected_addrs.contains_key(a)
                        && !self.dialing.contains(a)
                        && !self.backing_off(*a)
                })
                .collect();
            self.candidates.extend(known);
        }
        let paused = self.dial_pause_until.is_some_and(|t| self.now < t)
            && self.sessions.len() >= self.config.max_peers / 2;
        while !paused
            && outbound + self.dialing.len() < max_out
            && self.sessions.len() + self.dialing.len() < self.config.max_peers
        {
            let Some(addr) = self.pick_candidate() else {
                break;
            };
            self.dialing.insert(addr);
            self.emit(Output::Connect { addr });
        }
    }

    /// `addr` refused our connection or could not be reached: leave it alone
    /// for a while (5 s, doubling to 80 s), so a full peer is not redialed in
    /// a loop (each attempt is a TCP and TLS handshake on a real network).
    ///
    /// Refusals in a row mean the swarm is saturated (every peer's inbound
    /// budget is taken): a node that already has half its connection budget
    /// then stops dialing anyone for a while (1 s after the first refusal in a
    /// row, doubling to 32 s), instead of walking its whole candidate list.
    /// Measured in the simulator (large-fleet): without the pause a peer made
    /// about a hundred refused dials in three minutes.
    fn back_off(&mut self, addr: SocketAddr) {
        let failures = self.backoff.get(&addr).map_or(0, |b| b.1) + 1;
        let wait = BACKOFF_BASE.as_micros() << (failures - 1).min(BACKOFF_DOUBLINGS);
        let until = self.now + Duration::from_micros(wait);
        self.backoff.insert(addr, (until, failures));
        self.refused_in_row = self.refused_in_row.saturating_add(1);
        let pause =
            DIAL_PAUSE_BASE.as_micros() << (self.refused_in_row - 1).min(DIAL_PAUSE_DOUBLINGS);
        self.dial_pause_until = Some(self.now + Duration::from_micros(pause));
    }

    fn backing_off(&self, addr: SocketAddr) -> bool {
        self.backoff.get(&addr).is_some_and(|b| self.now < b.0)
    }

    /// Nothing to dial among the candidates: none at all, or (with a site
    /// known) no same-site one.
    fn no_dialable_candidates(&self) -> bool {
        match self.site {
            None => self.candidates.is_empty(),
            Some(_) => !self.candidates.iter().any(|a| self.near_addrs.contains(a)),
        }
    }

    fn pick_candidate(&mut self) -> Option<SocketAddr> {
        use rand::RngExt;
        if self.candidates.is_empty() {
            return None;
        }
        if self.site.is_some() {
            return self.pick_local_candidate();
        }
        let i = self.rng.random_range(0..self.candidates.len());
        let addr = *self.candidates.iter().nth(i)?;
        self.candidates.remove(&addr);
        Some(addr)
    }

    fn revoke(&mut self, identity: &str) {
        let key = PeerKey::Identity(identity.to_string());
        self.banned.insert(key);
        let victims: Vec<(ConnId, SocketAddr)> = self
            .sessions
            .values()
            .filter(|s| s.identity.as_deref() == Some(identity))
            .map(|s| (s.conn, s.addr))
            .collect();
        for (conn, addr) in victims {
            self.event(NodeEvent::PeerBanned {
                conn,
                addr,
                identity: Some(identity.to_string()),
                reason: BanReason::Revoked,
            });
            self.stats.bans += 1;
            self.drop_session(conn, DisconnectReason::Revoked, true);
        }
    }

    fn shutdown(&mut self) {
        let conns: Vec<ConnId> = self.sessions.keys().copied().collect();
        for conn in conns {
            self.drop_session(conn, DisconnectReason::Shutdown, true);
        }
        if self.started {
            self.announce_in_flight = false;
            self.announce(AnnounceEvent::Stopped);
        }
        self.shut_down = true;
    }

    // ---- timers ----

    fn handle_timers(&mut self) {
        let now = self.now;
        if self.next_announce.is_some_and(|t| now >= t) {
            self.announce(AnnounceEvent::Periodic);
        }
        if self.started && now >= self.next_rechoke {
            self.next_rechoke = now + self.config.choker.rechoke_interval;
            self.rechoke();
        }
        if self.next_tick.is_some_and(|t| now >= t) {
            self.next_tick = Some(now + self.config.timer_tick);
            let conns: Vec<ConnId> = self.sessions.keys().copied().collect();
            for conn in conns {
                self.session_timers(conn);
            }
            self.super_tick();
            self.refresh_interest();
            self.widen_if_idle();
            self.reciprocate();
        }
        self.dial_candidates();
    }
}

/// First wait before redialing a peer that refused us; it doubles with each
/// refusal in a row, `BACKOFF_DOUBLINGS` times at most.
const BACKOFF_BASE: Duration = Duration::from_secs(5);
const BACKOFF_DOUBLINGS: u32 = 4;

/// First pause of all new dials after a refusal (see `Node::back_off`); it
/// doubles with each refusal in a row, `DIAL_PAUSE_DOUBLINGS` times at most.
const DIAL_PAUSE_BASE: Duration = Duration::from_secs(1);
const DIAL_PAUSE_DOUBLINGS: u32 = 5;

fn peer_key(addr: SocketAddr, identity: Option<&str>) -> PeerKey {
    match identity {
        Some(id) => PeerKey::Identity(id.to_string()),
        None => PeerKey::Ip(addr.ip()),
    }
}

#[cfg(test)]
mod tests;
