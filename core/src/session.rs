//! One peer connection's protocol state (BEP 3): handshake phase, choke and
//! interest flags, the remote's pieces, our outstanding requests, the remote's
//! queued requests, rates and timers. It validates every message against that
//! state; what to *do* about a valid message (pick, choke, verify) is the swarm
//! [`Node`](crate::node::Node)'s job.

use core::net::SocketAddr;
use std::collections::VecDeque;

use crate::pieceset::PieceSet;
use crate::time::{Duration, Instant};
use crate::wire::{BlockRef, Message};
use crate::{ConnId, Id20};

/// Per-connection knobs.
#[derive(Clone, Debug, PartialEq)]
pub struct SessionConfig {
    /// Blocks we keep requested from one unchoking peer before its rate is
    /// known (the scenario's `pipeline_depth`). Default: 32 (512 KiB in
    /// flight, enough for 100 Mbit/s at 40 ms round trip).
    pub request_queue_depth: usize,
    /// Once a peer's rate is known, the pipeline to it holds this much
    /// transfer time at that rate (see [`Session::request_depth`]): deep
    /// enough for a link's bandwidth-delay product (six times it at 40 ms
    /// round trip), shallow enough that a block is not committed to a busy
    /// peer long before it can send it: a block requested from one peer
    /// waits there even when another peer that has it sits idle. The rate is
    /// `Session::pipeline_rate` (250 ms time constant), so a link that speeds
    /// up deepens its pipeline as fast as a 1 s pipeline on a 1 s rate did
    /// (a 1 Gbit/s link at 20 ms round trip: 256 MiB in 2.30 s; 2.46 s on
    /// the 1 s rate). Default: 250 ms.
    pub request_queue_time: Duration,
    /// Fewest blocks kept requested from an unchoking peer. Default: 2.
    pub min_request_queue_depth: usize,
    /// Most blocks kept requested from one peer (also bounded by the `reqq`
    /// it announced). Default: 250 (4 MB of 16 KiB blocks: a 1 Gbit/s link
    /// at 32 ms round trip, or a real node's own hand-off latency between its
    /// socket, swarm and disk tasks on a fast loopback; 64 held one hub ->
    /// one client at 1 Gbit/s and 20 ms to 52 MB/s).
    pub max_request_queue_depth: usize,
    /// Requests a peer may have queued with us; one more is a flood and the
    /// peer is disconnected. Default: 256.
    pub max_peer_requests: usize,
    /// Fewest piece messages handed to the driver and not yet reported sent
    /// (the upload window before the link's rate is known). Default: 4.
    pub max_upload_inflight: usize,
    /// Once the rate we send to a peer is known, the upload window holds
    /// this much transfer time at that rate (see [`Session::upload_window`]),
    /// so a fast link is not held back by the driver's own latency between
    /// "send this block" and "it was sent". Default: 5 ms.
    pub upload_window_time: Duration,
    /// Most piece messages in the upload window of one peer. Default: 64
    /// (1 MiB of 16 KiB blocks).
    pub max_upload_window: usize,
    /// Close a connection whose handshake has not arrived by then. Default: 10 s.
    pub handshake_timeout: Duration,
    /// A request unanswered this long is dropped (and cancelled) and
    /// re-queued elsewhere, whatever the peer's rate. Default: 30 s.
    pub request_timeout: Duration,
    /// Once a peer's rate is known, a request times out after four times the
    /// time its queue ahead should take at that rate, but never sooner than
    /// this. Default: 5 s.
    pub min_request_timeout: Duration,
    /// No block for this long while requests are outstanding: snubbed. Default: 60 s.
    pub snub_timeout: Duration,
    /// Close a connection silent for this long. Default: 150 s.
    pub idle_timeout: Duration,
    /// Send a keep-alive after this much silence of ours. Default: 60 s.
    pub keepalive_interval: Duration,
    /// Longest block a peer may request (the swarm's block size). Default: 16 KiB.
    pub max_block_len: u32,
    /// Requests that arrive within this time after we choked the peer are dropped
    /// quietly (they crossed our choke on the wire); later ones close the
    /// connection. Default: 10 s.
    pub choked_request_grace: Duration,
}

impl Default for SessionConfig {
    fn default() -> Self {
        SessionConfig {
            request_queue_depth: 32,
            request_queue_time: Duration::from_millis(250),
            min_request_queue_depth: 2,
            max_request_queue_depth: 250,
            max_peer_requests: 256,
            max_upload_inflight: 4,
            upload_window_time: Duration::from_millis(5),
            max_upload_window: 64,
            max_block_len: crate::wire::BLOCK_LEN,
            handshake_timeout: Duration::from_secs(10),
            request_timeout: Duration::from_secs(30),
            min_request_timeout: Duration::from_secs(5),
            snub_timeout: Duration::from_secs(60),
            idle_timeout: Duration::from_secs(150),
            keepalive_interval: Duration::from_secs(60),
            choked_request_grace: Duration::from_secs(10),
        }
    }
}

/// Why a peer's message broke the protocol.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Violation {
    /// A protocol message arrived before the handshake.
    #[error("{0} before the handshake")]
    BeforeHandshake(&'static str),
    /// A bitfield of the wrong size or with spare bits set.
    #[error("bitfield does not match {pieces} pieces")]
    BadBitfield {
        /// Pieces in the image.
        pieces: u32,
    },
    /// A have or request for a piece that does not exist.
    #[error("piece index {index} out of range (image has {pieces})")]
    PieceOutOfRange {
        /// The index received.
        index: u32,
        /// Pieces in the image.
        pieces: u32,
    },
    /// A request for a block outside its piece or longer than a block.
    #[error("request {0:?} outside the piece or longer than a block")]
    BadRequest(BlockRef),
    /// Requests for pieces we do not have.
    #[error("request for piece {0} that we do not have")]
    RequestedMissingPiece(u32),
    /// Requests kept coming long after we choked the peer.
    #[error("requests while choked")]
    RequestWhileChoked,
    /// More requests queued than `max_peer_requests`.
    #[error("request flood: more than {0} requests queued")]
    RequestFlood(usize),
    /// A second handshake.
    #[error("second handshake")]
    DuplicateHandshake,
}

/// Rate estimate: an exponentially weighted moving average of bytes per
/// second (time constant 5 s by default), updated lazily when bytes arrive.
#[derive(Clone, Debug, PartialEq)]
pub struct Rate {
    bps: f64,
    last: Option<Instant>,
    tau_s: f64,
}

impl Default for Rate {
    fn default() -> Self {
        Rate::with_time_constant(5.0)
    }
}

impl Rate {
    /// An estimate that forgets with time constant `tau_s` seconds.
    pub fn with_time_constant(tau_s: f64) -> Self {
        Rate {
            bps: 0.0,
            last: None,
            tau_s: tau_s.max(1e-3),
        }
    }

    /// Record `bytes` moved at `now`.
    pub fn add(&mut self, now: Instant, bytes: u64) {
        self.decay(now);
        self.bps += bytes as f64 / self.tau_s;
    }

    fn decay(&mut self, now: Instant) {
        if let Some(last) = self.last {
            let dt = now.saturating_since(last).as_secs_f64();
            self.bps *= (-dt / self.tau_s).exp();
        }
        self.last = Some(now);
    }

    /// The estimate at `now`, in bytes per second.
    pub fn get(&self, now: Instant) -> f64 {
        match self.last {
            Some(last) => {
                let dt = now.saturating_since(last).as_secs_f64();
                self.bps * (-dt / self.tau_s).exp()
            }
            None => 0.0,
        }
    }
}

/// Handshake phase of a connection.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Phase {
    /// Connected; the remote's handshake has not arrived yet.
    AwaitingHandshake,
    /// Handshakes exchanged; BitTorrent messages flow.
    Established,
}

/// A valid message's meaning for the node.
#[derive(Clone, Debug, PartialEq)]
pub enum SessionEvent {
    /// Nothing for the node to do (keep-alive, repeated flag, ignored extension).
    None,
    /// The peer's full piece set is known now (bitfield).
    Bitfield,
    /// The peer has a new piece.
    Have(u32),
    /// A bitfield after the first message, read as haves: the pieces it adds,
    /// in increasing order, never empty.
    Haves(Vec<u32>),
    /// The peer unchoked us: time to request.
    Unchoked,
    /// The peer choked us: our requests to it are void (empty under the
    /// fast extension, where the peer rejects them one by one).
    Choked(Vec<BlockRef>),
    /// The peer will not serve this request of ours (BEP 6 reject).
    Rejected(BlockRef),
    /// The peer asked for a block while we choke it, under the fast
    /// extension: the node answers with a reject.
    RequestWhileChoked(BlockRef),
    /// The peer's interest changed.
    InterestChanged,
    /// The peer queued a request; the node decides when to serve it.
    Requested,
    /// A block arrived.
    Block(BlockRef, bytes::Bytes),
}

/// The state of one connection.
#[derive(Clone, Debug)]
pub struct Session {
    /// Driver's connection id.
    pub conn: ConnId,
    /// Remote address as the driver knows it.
    pub addr: SocketAddr,
    /// We dialed.
    pub outbound: bool,
    /// Identity verified by the driver (TLS certificate), if any.
    pub identity: Option<String>,
    /// Handshake phase.
    pub phase: Phase,
    /// Remote peer id from its handshake.
    pub peer_id: Option<Id20>,
    /// Pieces the remote has.
    pub remote_has: PieceSet,
    /// We refuse to upload to the remote.
    pub am_choking: bool,
    /// We want pieces from the remote.
    pub am_interested: bool,
    /// The remote refuses to upload to us.
    pub peer_choking: bool,
    /// The remote wants pieces from us.
    pub peer_interested: bool,
    /// Our requests to the remote, with the time sent.
    pub requests_out: Vec<(BlockRef, Instant)>,
    /// The remote's requests waiting to be served.
    pub their_queue: VecDeque<BlockRef>,
    /// Blocks handed to the driver to send, not yet reported sent.
    pub upload_inflight: Vec<BlockRef>,
    /// Rate at which the remote sends us block data.
    pub download_rate: Rate,
    /// The same with a 1 s time constant, to size the request pipeline and
    /// its timeouts: it follows a link that speeds up within a second.
    pub recent_download_rate: Rate,
    /// The same with a 250 ms time constant, to size the request pipeline:
    /// a pipeline of `request_queue_time` grows as fast as this follows a
    /// link that speeds up.
    pub pipeline_rate: Rate,
    /// Requests to the remote that we gave up on (timed out and cancelled),
    /// most recent last: a block for one of them that still arrives is
    /// welcome, not a protocol breach. Bounded by `max_request_queue_depth`.
    pub cancelled_out: VecDeque<BlockRef>,
    /// Requests the remote said it will queue (`reqq` of its extended
    /// handshake), when it said.
    pub remote_reqq: Option<u32>,
    /// Rate at which we send block data to the remote.
    pub upload_rate: Rate,
    /// The same with a 1 s time constant, to size the upload window.
    pub recent_upload_rate: Rate,
    /// Block bytes received.
    pub bytes_down: u64,
    /// Block bytes sent.
    pub bytes_up: u64,
    /// When the connection came up.
    pub connected_at: Instant,
    /// Last message received.
    pub last_recv: Instant,
    /// Last message sent.
    pub last_send: Instant,
    /// Last block received (or when we last started waiting for one).
    pub last_block_at: Instant,
    /// When we last choked the remote.
    pub choked_at: Instant,
    /// When the remote last asked us for a block, or we last unchoked it
    /// (see `Node::rotate_idle_slots`).
    pub asked_at: Instant,
    /// The remote has not delivered for `snub_timeout` although asked.
    pub snubbed: bool,
    /// The peer announced it only uploads (BEP 21 style `upload_only`, or our own
    /// super-seeding key).
    pub upload_only: bool,
    /// Super-seeding: pieces advertised to this peer and not yet seen spread.
    pub super_pending: Vec<u32>,
    /// Super-seeding: when this peer finished its pieces and nobody took them.
    pub super_stalled_since: Option<Instant>,
    /// Super-seeding: this peer was shown every piece and is served normally.
    pub super_revealed: bool,
    /// Super-seeding: when this peer last announced a piece (or connected).
    pub super_progress_at: Instant,
    /// The site the remote told in its extended handshake.
    pub site: Option<String>,
    /// The connection crosses an inter-site link (see `node::locality`);
    /// always false while our own site is unknown.
    pub far: bool,
    /// Both ends set the BEP 6 fast extension bit: a choke keeps requests,
    /// which end by a block or a `Reject` (see [`Message::Reject`]).
    pub fast: bool,
    /// Requests rejected since we last choked the remote, after
    /// `choked_request_grace` (a peer that keeps asking is in breach).
    rejected_late: usize,
    bitfield_allowed: bool,
}

impl Session {
    /// A new connection at `now`.
    pub fn new(
        conn: ConnId,
        addr: SocketAddr,
        outbound: bool,
        identity: Option<String>,
        num_pieces: u32,
        now: Instant,
    ) -> Self {
        Session {
            conn,
            addr,
            outbound,
            identity,
            phase: Phase::AwaitingHandshake,
            peer_id: None,
            remote_has: PieceSet::new(num_pieces),
            am_choking: true,
            am_interested: false,
            peer_choking: true,
            peer_interested: false,
            requests_out: Vec::new(),
            their_queue: VecDeque::new(),
            upload_inflight: Vec::new(),
            download_rate: Rate::default(),
            recent_download_rate: Rate::with_time_constant(1.0),
            pipeline_rate: Rate::with_time_constant(0.25),
            cancelled_out: VecDeque::new(),
            remote_reqq: None,
            upload_rate: Rate::default(),
            recent_upload_rate: Rate::with_time_constant(1.0),
            bytes_down: 0,
            bytes_up: 0,
            connected_at: now,
            last_recv: now,
            last_send: now,
            last_block_at: now,
            choked_at: now,
            asked_at: now,
            site: None,
            far: false,
            fast: false,
            rejected_late: 0,
            snubbed: false,
            upload_only: false,
            super_pending: Vec::new(),
            super_stalled_since: None,
            super_revealed: false,
            super_progress_at: now,
            bitfield_allowed: true,
        }
    }

    /// Validate a message from the remote and update the state. `we_have`
    /// answers whether we can serve a piece; `piece_len` gives piece sizes.
    pub fn on_message(
        &mut self,
        now: Instant,
        msg: Message,
        config: &SessionConfig,
        we_have: impl Fn(u32) -> bool,
        piece_len: impl Fn(u32) -> u32,
    ) -> Result<SessionEvent, Violation> {
        let pieces = self.remote_has.len();
        if self.phase != Phase::Established {
            return Err(Violation::BeforeHandshake(msg.name()));
        }
        self.last_recv = now;
        let bitfield_allowed = self.bitfield_allowed;
        if !matches!(msg, Message::KeepAlive | Message::ExtendedHandshake(_)) {
            self.bitfield_allowed = false;
        }
        let event = match msg {
            Message::KeepAlive | Message::Extended { .. } => SessionEvent::None,
            Message::ExtendedHandshake(ext) => {
                // A super-seed is a seed too; it only does not say so to stock clients.
                self.upload_only = ext.upload_only || ext.super_seeding;
                self.remote_reqq = ext.reqq;
                self.site = ext.site;
                SessionEvent::None
            }
            Message::Choke => {
                if self.peer_choking {
                    return Ok(SessionEvent::None);
                }
                self.peer_choking = true;
                // Under the fast extension the peer rejects what it will not
                // serve; a request it has not read yet (queued behind our own
                // blocks to it) may still be served if it unchokes us again,
                // and dropping it here would fetch that block twice.
                let dropped = if self.fast {
                    Vec::new()
                } else {
                    self.requests_out.drain(..).map(|(b, _)| b).collect()
                };
                SessionEvent::Choked(dropped)
            }
            Message::Unchoke => {
                if !self.peer_choking {
                    return Ok(SessionEvent::None);
                }
                self.peer_choking = false;
                self.last_block_at = now;
                SessionEvent::Unchoked
            }
            Message::Interested | Message::NotInterested => {
                let interested = matches!(msg, Message::Interested);
                if interested == self.peer_interested {
                    return Ok(SessionEvent::None);
                }
                self.peer_interested = interested;
                SessionEvent::InterestChanged
            }
            Message::Have(index) => {
                if index >= pieces {
                    return Err(Violation::PieceOutOfRange { index, pieces });
                }
                if self.remote_has.insert(index) {
                    SessionEvent::Have(index)
                } else {
                    SessionEvent::None
                }
            }
            Message::HaveAll | Message::HaveNone => {
                let all = matches!(msg, Message::HaveAll);
                if bitfield_allowed && all {
                    self.remote_has = PieceSet::full(pieces);
                    return Ok(SessionEvent::Bitfield);
                }
                // A first HaveNone says what sending nothing says (the set
                // starts empty); later ones read like a late bitfield: only
                // new pieces count, none is taken back.
                let new: Vec<u32> = if all {
                    (0..pieces).filter(|p| self.remote_has.insert(*p)).collect()
                } else {
                    Vec::new()
                };
                if new.is_empty() {
                    SessionEvent::None
                } else {
                    SessionEvent::Haves(new)
                }
            }
            Message::Suggest(index) | Message::AllowedFast(index) => {
                // Advisory: we pick pieces ourselves and never request while
                // choked.
                if index >= pieces {
                    return Err(Violation::PieceOutOfRange { index, pieces });
                }
                SessionEvent::None
            }
            Message::Reject(block) => {
                // A reject of a request we cancelled, or never made, changes
                // nothing (stock clients answer a cancel with one).
                match self.requests_out.iter().position(|(b, _)| *b == block) {
                    Some(i) => {
                        self.requests_out.remove(i);
                        SessionEvent::Rejected(block)
                    }
                    None => SessionEvent::None,
                }
            }
            Message::Bitfield(bytes) => {
                let has = PieceSet::from_bitfield(&bytes, pieces)
                    .ok_or(Violation::BadBitfield { pieces })?;
                // The extended handshake may precede the bitfield (BEP 10).
                if bitfield_allowed {
                    self.remote_has = has;
                    return Ok(SessionEvent::Bitfield);
                }
                // Later ones stand for haves (aria2 sends one whenever it is
                // shorter): only new pieces count, none is taken back.
                let new: Vec<u32> = has.iter().filter(|p| self.remote_has.insert(*p)).collect();
                if new.is_empty() {
                    SessionEvent::None
                } else {
                    SessionEvent::Haves(new)
                }
            }
            Message::Request(block) => self.on_request(now, block, config, we_have, piece_len)?,
            Message::Cancel(block) => {
                self.their_queue.retain(|b| *b != block);
                SessionEvent::None
            }
            Message::Piece(block, data) => {
                self.bytes_down += u64::from(block.length);
                self.download_rate.add(now, u64::from(block.length));
                self.recent_download_rate.add(now, u64::from(block.length));
                self.pipeline_rate.add(now, u64::from(block.length));
                self.last_block_at = now;
                self.snubbed = false;
                self.requests_out.retain(|(b, _)| *b != block);
                SessionEvent::Block(block, data)
            }
        };
        Ok(event)
    }

    fn on_request(
        &mut self,
        now: Instant,
        block: BlockRef,
        config: &SessionConfig,
        we_have: impl Fn(u32) -> bool,
        piece_len: impl Fn(u32) -> u32,
    ) -> Result<SessionEvent, Violation> {
        let pieces = self.remote_has.len();
        if block.piece >= pieces {
            return Err(Violation::PieceOutOfRange {
                index: block.piece,
                pieces,
            });
        }
        let end = u64::from(block.begin) + u64::from(block.length);
        if block.length == 0
            || block.length > config.max_block_len
            || end > u64::from(piece_len(block.piece))
        {
            return Err(Violation::BadRequest(block));
        }
        if !we_have(block.piece) {
            return Err(Violation::RequestedMissingPiece(block.piece));
        }
        if self.am_choking {
            let late = now.saturating_since(self.choked_at) > config.choked_request_grace;
            if !self.fast {
                if late {
                    return Err(Violation::RequestWhileChoked);
                }
                return Ok(SessionEvent::None);
            }
            // Under the fast extension a request that crossed our choke is
            // answered with a reject; one that queued behind the peer's own
            // blocks may come long after it. A peer that goes on asking well
            // after the grace is in breach.
            if late {
                self.rejected_late += 1;
                if self.rejected_late > config.max_peer_requests {
                    return Err(Violation::RequestWhileChoked);
                }
            }
            return Ok(SessionEvent::RequestWhileChoked(block));
        }
        if self.their_queue.len() >= config.max_peer_requests {
            return Err(Violation::RequestFlood(config.max_peer_requests));
        }
        self.asked_at = now;
        if !self.their_queue.contains(&block) && !self.upload_inflight.contains(&block) {
            self.their_queue.push_back(block);
        }
        Ok(SessionEvent::Requested)
    }

    /// We choke the remote from `now` on: its queued requests are void (the
    /// caller rejects them under the fast extension).
    pub fn choke(&mut self, now: Instant) -> VecDeque<BlockRef> {
        self.choked_at = now;
        self.rejected_late = 0;
        std::mem::take(&mut self.their_queue)
    }

    /// Requests outstanding longer than their timeout at `now` (see
    /// [`Session::request_timeout`]); they are removed from this session and
    /// remembered as cancelled, and the peer is marked snubbed when nothing
    /// has arrived for `snub_timeout`. The caller sends a cancel for each.
    pub fn expire_requests(&mut self, now: Instant, config: &SessionConfig) -> Vec<BlockRef> {
        if !self.requests_out.is_empty()
            && now.saturating_since(self.last_block_at) >= config.snub_timeout
        {
            self.snubbed = true;
        }
        let rate = self.recent_download_rate.get(now);
        let mut expired = Vec::new();
        let mut ahead: u64 = 0;
        let mut keep_list = Vec::with_capacity(self.requests_out.len());
        for (b, at) in self.requests_out.drain(..) {
            ahead += u64::from(b.length);
            let timeout = request_timeout_for(ahead, rate, config);
            // The wait of a request is counted from the later of its sending
            // and the link's last delivery: `ahead` is what is queued before
            // it *now*, so the time it spent behind blocks that have since
            // arrived is not a delay of this one.
            if now.saturating_since(at.max(self.last_block_at)) < timeout {
                keep_list.push((b, at));
            } else {
                expired.push(b);
            }
        }
        self.requests_out = keep_list;
        for b in &expired {
            self.remember_cancelled(*b, config);
        }
        expired
    }

    /// Remember that we cancelled `block` (a late copy is still accepted).
    pub fn remember_cancelled(&mut self, block: BlockRef, config: &SessionConfig) {
        if self.cancelled_out.len() >= config.max_request_queue_depth.max(1) {
            self.cancelled_out.pop_front();
        }
        self.cancelled_out.push_back(block);
    }

    /// True (once) when `block` is one we requested from this peer and
    /// cancelled: the copy that was already on its way is still good.
    pub fn take_cancelled(&mut self, block: BlockRef) -> bool {
        match self.cancelled_out.iter().position(|b| *b == block) {
            Some(i) => {
                self.cancelled_out.remove(i);
                true
            }
            None => false,
        }
    }

    /// The pipeline depth for this peer at `now`: before its rate is known,
    /// `request_queue_depth`; then `request_queue_time` worth of blocks at
    /// its rate (`pipeline_rate`), within `min_request_queue_depth ..=
    /// max_request_queue_depth` and never more than its announced `reqq`.
    /// The same rule in the simulator and the node, so a fast link is kept
    /// full and a slow one is not flooded with requests it cannot answer
    /// before they time out.
    pub fn request_depth(&self, now: Instant, config: &SessionConfig, block_len: u32) -> usize {
        let rate = self.pipeline_rate.get(now);
        let cap = config
            .max_request_queue_depth
            .min(self.remote_reqq.map_or(usize::MAX, |q| q as usize))
            .max(1);
        if self.bytes_down == 0 || rate <= 0.0 {
            return config.request_queue_depth.clamp(1, cap);
        }
        let want = rate * config.request_queue_time.as_secs_f64() / f64::from(block_len.max(1));
        (want.ceil() as usize)
            .max(config.min_request_queue_depth)
            .clamp(1, cap)
    }

    /// Blocks we may have handed to the driver and not yet seen sent, at
    /// `now`: `max_upload_inflight` until the rate we send at is known, then
    /// `upload_window_time` worth of blocks at that rate, within
    /// `max_upload_inflight ..= max_upload_window`. A link slower than
    /// `max_upload_inflight` blocks per `upload_window_time` (13 MB/s with
    /// the defaults) keeps the small window; a fast one grows it as its rate
    /// shows, so the driver's hand-off latency never limits it.
    pub fn upload_window(&self, now: Instant, config: &SessionConfig, block_len: u32) -> usize {
        let floor = config.max_upload_inflight.max(1);
        let rate = self.recent_upload_rate.get(now);
        if rate <= 0.0 {
            return floor;
        }
        let want = rate * config.upload_window_time.as_secs_f64() / f64::from(block_len.max(1));
        (want.ceil() as usize).clamp(floor, config.max_upload_window.max(floor))
    }

    /// The next instant at which a timer of this session fires.
    pub fn next_deadline(&self, config: &SessionConfig) -> Instant {
        let mut t = match self.phase {
            Phase::AwaitingHandshake => self.connected_at + config.handshake_timeout,
            Phase::Established => (self.last_recv + config.idle_timeout)
                .min(self.last_send + config.keepalive_interval),
        };
        let rate = self.recent_download_rate.get(self.last_block_at);
        let mut ahead = 0;
        for (b, at) in &self.requests_out {
            ahead += u64::from(b.length);
            t = t.min((*at).max(self.last_block_at) + request_timeout_for(ahead, rate, config));
        }
        if !self.requests_out.is_empty() && !self.snubbed {
            t = t.min(self.last_block_at + config.snub_timeout);
        }
        t
    }

    /// True when more requests fit in the pipeline to this peer at `now`.
    pub fn can_request(&self, now: Instant, config: &SessionConfig, block_len: u32) -> bool {
        !self.peer_choking
            && self.phase == Phase::Established
            && self.requests_out.len() < self.request_depth(now, config, block_len)
    }
}

/// How long a request may stay unanswered when `ahead` bytes (it included)
/// are queued before it on a link that delivers `rate` bytes per second:
/// four times the expected wait, at least `min_request_timeout`, at most
/// `request_timeout` (also the timeout while the rate is unknown). The wait
/// runs from the later of the request's sending and the link's last
/// delivered block ([`Session::expire_requests`]).
pub fn request_timeout_for(ahead: u64, rate: f64, config: &SessionConfig) -> Duration {
    if rate <= 0.0 {
        return config.request_timeout;
    }
    let expected_s = ahead as f64 / rate;
    let t = Duration::from_micros((4.0 * expected_s * 1e6).min(u64::MAX as f64 / 2.0) as u64);
    t.max(config.min_request_timeout)
        .min(config.request_timeout)
}

#[cfg(test)]
mod tests;
