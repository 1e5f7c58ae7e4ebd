//! The discrete-event engine: a tickless loop on virtual time that drives the
//! unmodified swarmhub-core state machines (the hub's [`Tracker`] and seed
//! [`Node`], and every peer's [`Node`]) over the [`Net`] bandwidth model.
//!
//! Events at the same instant run in insertion order (a `(time, sequence)`
//! key). All randomness comes from one ChaCha RNG seeded by the run's seed;
//! every node's seed is drawn from it, so a seed reproduces a run exactly.
//!
//! Messages travel as typed core messages; the bandwidth a message uses equals
//! its encoded wire size ([`Message::wire_len`]). Piece messages are flows in
//! the bandwidth model; every other message (handshake, have, request, ...)
//! takes no capacity and only waits for the messages queued before it on the
//! same connection, then for the latency: at 16 KiB blocks control traffic is
//! well under 1% of the bytes.

mod check;
mod flowq;
mod io;
mod lanes;
mod table;

use std::cmp::Reverse;
use std::collections::{BTreeMap, BTreeSet, BinaryHeap, VecDeque};
use std::net::{IpAddr, Ipv4Addr, SocketAddr};

use rand::RngExt;
use swarmhub_core::metainfo::Geometry;
use swarmhub_core::node::AnnounceParams;
use swarmhub_core::pieceset::PieceSet;
use swarmhub_core::rng::{child_seed, from_seed, Rng};
use swarmhub_core::tracker::{AnnounceResponse, Tracker, TrackerConfig};
use swarmhub_core::wire::{BlockRef, Handshake, Message};
use swarmhub_core::{ConnId, Duration, Id20, Input, Instant, Node};

use crate::net::{FlowId, Net};
use crate::scenario::{Arrival, Departure, Scenario};

/// Host index of the hub.
pub const HUB: usize = 0;

/// Lifecycle of a simulated host.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HostState {
    /// Not joined yet.
    Waiting,
    /// Running a node.
    Active,
    /// Crashed; restarts later.
    Crashed,
    /// Left for good.
    Left,
}

/// One simulated machine: the hub (index 0) or a peer.
pub struct SimHost {
    /// Peer group name ("hub" for the hub).
    pub group: String,
    /// Site name, empty when flat.
    pub site: String,
    pub(crate) site_index: usize,
    pub(crate) addr: SocketAddr,
    pub(crate) net: usize,
    pub(crate) node: Option<Node>,
    pub(crate) state: HostState,
    pub(crate) incarnation: u32,
    pub(crate) timer_at: Option<Instant>,
    pub(crate) corrupt: bool,
    pub(crate) have: PieceSet,
    pub(crate) peer_id: Id20,
    /// Joined at.
    pub join_at: Option<Instant>,
    /// Completed at.
    pub complete_at: Option<Instant>,
    /// Left at.
    pub leave_at: Option<Instant>,
    /// Block bytes received from the hub.
    pub bytes_down_hub: u64,
    /// Block bytes received from peers.
    pub bytes_down_peers: u64,
    /// Block bytes sent.
    pub bytes_up: u64,
    /// Block bytes received and thrown away (duplicates, unrequested blocks,
    /// failed pieces) by the host's earlier incarnations; see [`Sim::wasted`].
    pub bytes_wasted_before: u64,
    /// `bytes_up` and bytes received when the current node started (the
    /// node's own counters restart with every incarnation).
    pub(crate) counters_at_start: (u64, u64),
}

/// A ban one node pronounced against another.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Ban {
    /// When.
    pub at: Instant,
    /// Host that banned.
    pub by: usize,
    /// Host banned, when the banned identity names one.
    pub whom: Option<usize>,
    /// The ban reason as the node gave it.
    pub reason: String,
}

/// Something queued on a connection.
#[derive(Clone, Debug)]
pub(crate) enum Item {
    Handshake(Handshake),
    Msg(Message),
    Block(BlockRef),
}

#[derive(Debug)]
pub(crate) struct SimConn {
    pub(crate) host: usize,
    pub(crate) peer: ConnId,
    pub(crate) peer_host: usize,
    pub(crate) queue: VecDeque<Item>,
    pub(crate) sending: Option<(FlowId, Item)>,
}

#[derive(Debug)]
pub(crate) enum Ev {
    Join(usize),
    Timer(usize, u32),
    Arrive {
        conn: ConnId,
        item: Item,
    },
    Connected {
        conn: ConnId,
    },
    ConnectFailed {
        host: usize,
        inc: u32,
        addr: SocketAddr,
    },
    AnnounceAtHub {
        host: usize,
        inc: u32,
        params: AnnounceParams,
    },
    AnnounceReply {
        host: usize,
        inc: u32,
        result: Result<AnnounceResponse, String>,
    },
    Verify {
        host: usize,
        inc: u32,
        piece: u32,
        ok: bool,
    },
    Closed {
        conn: ConnId,
    },
    Leave(usize),
    Crash(usize),
    /// A graceful stop (shutdown, `stopped` announce) and a restart later.
    Pause(usize),
    Restart(usize),
    HubDown,
    HubUp,
    Sample,
}

/// A queue entry: time, insertion order, and the slot of its payload (kept
/// out of the heap so that heap moves stay small).
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
struct Queued {
    at: Instant,
    seq: u64,
    slot: u32,
}

/// Where the next event comes from.
#[derive(Clone, Copy)]
enum Source {
    None,
    Heap,
    Flow,
    Lane(usize),
}

/// Per-timeline-step accumulators.
#[derive(Clone, Debug, Default)]
pub struct Sample {
    /// Start of the step, seconds.
    pub t_s: f64,
    /// Active incomplete peers.
    pub leechers: usize,
    /// Active complete peers (the hub not counted).
    pub seeds: usize,
    /// Peers that completed so far.
    pub completed: usize,
    /// Block bits/s delivered to peers from peers.
    pub from_peers_bps: f64,
    /// Block bits/s delivered to peers from the hub.
    pub from_hub_bps: f64,
    /// Block bits/s across each inter-site link resource (see
    /// `Sim::link_bytes`); empty without links.
    pub link_bps: Vec<f64>,
}

/// A whole simulation run.
pub struct Sim {
    pub(crate) scenario: Scenario,
    pub(crate) seed: u64,
    pub(crate) now: Instant,
    rng: Rng,
    queue: BinaryHeap<Reverse<Queued>>,
    /// Events a fixed delay ahead (message latencies), one FIFO per delay.
    lanes: lanes::Lanes,
    /// Flow finishes, kept apart so that a moved finish leaves no stale entry.
    flow_queue: flowq::FlowQueue,
    payloads: Vec<Option<Ev>>,
    free_slots: Vec<u32>,
    seq: u64,
    pub(crate) net: Net,
    /// Hosts; index 0 is the hub.
    pub hosts: Vec<SimHost>,
    pub(crate) tracker: Tracker,
    pub(crate) conns: table::ConnTable,
    /// Joins and restarts of peers still in the queue.
    pub(crate) pending_starts: usize,
    pub(crate) next_conn: u64,
    pub(crate) addrs: BTreeMap<SocketAddr, usize>,
    pub(crate) info_hash: Id20,
    pub(crate) geometry: Geometry,
    pub(crate) tainted: BTreeSet<(usize, u32)>,
    pub(crate) hub_down: bool,
    /// Events processed.
    pub events: u64,
    /// Flow-finish events that found their flow slower than when they were
    /// set (early), for `SWARMHUB_SIM_PROFILE`.
    pub(crate) flow_events_early: u64,
    pub(crate) site_latency: Vec<Vec<Duration>>,
    pub(crate) step: Duration,
    /// Timeline rows.
    pub timeline: Vec<Sample>,
    pub(crate) step_bytes_hub: u64,
    pub(crate) step_bytes_peers: u64,
    /// Block bytes that crossed each inter-site link resource, whole run
    /// (index `2 i`: scenario link `i` from -> to; `2 i + 1`: to -> from).
    pub link_bytes: Vec<u64>,
    pub(crate) step_link_bytes: Vec<u64>,
    pub(crate) completed: usize,
    pub(crate) incomplete_alive: usize,
    /// Trace rows (time, host, text) when tracing.
    pub trace: Option<Vec<(Instant, usize, String)>>,
    /// Hash of every event in order, to compare runs.
    pub trace_hash: u64,
    /// Every ban any node pronounced, in order.
    pub bans: Vec<Ban>,
    /// Block bytes a sender finished sending that found their connection
    /// closed on arrival (see `check::conservation`).
    pub bytes_lost: u64,
    /// Block bytes sent and not yet arrived.
    pub bytes_in_transit: u64,
    /// Check invariants after every event (see [`Sim::set_check_invariants`]).
    pub(crate) check: bool,
    /// Hosts whose node took an input during the current event.
    pub(crate) touched: Vec<usize>,
    /// The first invariant violation of a checked run; the run stops there.
    pub(crate) violation: Option<String>,
}

impl Sim {
    /// Block bytes host `h` received and threw away over the whole run
    /// (duplicates, unrequested blocks, pieces that failed their hash), as
    /// its core counted them.
    pub fn wasted(&self, h: usize) -> u64 {
        let host = &self.hosts[h];
        host.bytes_wasted_before + host.node.as_ref().map_or(0, |n| n.stats().bytes_wasted)
    }

    /// Set up a run of `scenario` with `seed`; `trace` keeps every node event.
    pub fn new(scenario: Scenario, seed: u64, trace: bool) -> Self {
        let mut rng = from_seed(seed);
        let geometry = Geometry::new(scenario.image.size.0, scenario.piece_size());
        let meta = swarmhub_core::metainfo::Metainfo::synthetic(
            &scenario.name,
            geometry.total_length,
            geometry.piece_length,
            seed,
        );
        let info_hash = meta.info_hash;
        let topo = crate::topology::Topology::build(&scenario);
        let mut net = topo.net.clone();
        let mut tracker = Tracker::new(
            TrackerConfig {
                interval: scenario.protocol.announce_interval.0,
                max_numwant: scenario.protocol.numwant.max(1),
                ..TrackerConfig::default()
            },
            child_seed(&mut rng),
        );
        tracker.add_swarm(info_hash);
        let step = scenario
            .timeline_step
            .map_or(Duration::from_secs(1), |d| d.0);
        let mut hosts = Vec::new();
        let hub_site = topo.site_of(scenario.hub.site.as_deref());
        let hub_up = scenario.hub.upload.bytes_per_s();
        let hub_down = scenario
            .hub
            .download
            .unwrap_or(scenario.hub.upload)
            .bytes_per_s();
        hosts.push(new_host(
            "hub",
            scenario.hub.site.as_deref(),
            hub_site,
            0,
            &mut net,
            hub_up,
            hub_down,
            false,
            geometry,
            scenario.network.payload_efficiency,
        ));
        for g in &scenario.groups {
            let site = topo.site_of(g.site.as_deref());
            let local = (!g.local_layers.is_empty())
                .then(|| crate::scenario::local_pieces(&scenario, &g.local_layers));
            for _ in 0..g.count {
                let i = hosts.len();
                let (up, down) = (g.upload.bytes_per_s(), g.download.bytes_per_s());
                hosts.push(new_host(
                    &g.name,
                    g.site.as_deref(),
                    site,
                    i,
                    &mut net,
                    up,
                    down,
                    g.corrupt,
                    geometry,
                    scenario.network.payload_efficiency,
                ));
                if let Some(have) = &local {
                    hosts[i].have = have.clone();
                }
            }
        }
        for h in &mut hosts {
            tracker.set_site(
                &identity(h.net),
                (!h.site.is_empty()).then(|| h.site.clone()),
            );
        }
        hosts[HUB].have = PieceSet::full(geometry.num_pieces());
        let addrs = hosts.iter().enumerate().map(|(i, h)| (h.addr, i)).collect();
        let mut sim = Sim {
            scenario,
            seed,
            now: Instant::ZERO,
            rng,
            queue: BinaryHeap::new(),
            lanes: lanes::Lanes::default(),
            flow_queue: flowq::FlowQueue::default(),
            payloads: Vec::new(),
            free_slots: Vec::new(),
            seq: 0,
            net,
            hosts,
            tracker,
            conns: table::ConnTable::default(),
            pending_starts: 0,
            next_conn: 1,
            addrs,
            info_hash,
            geometry,
            tainted: BTreeSet::new(),
            hub_down: false,
            events: 0,
            flow_events_early: 0,
            site_latency: topo.latency,
            step,
            timeline: Vec::new(),
            step_bytes_hub: 0,
            step_bytes_peers: 0,
            link_bytes: vec![0; topo.net.link_count()],
            step_link_bytes: vec![0; topo.net.link_count()],
            completed: 0,
            incomplete_alive: 0,
            trace: trace.then(Vec::new),
            trace_hash: 0xcbf2_9ce4_8422_2325,
            bans: Vec::new(),
            bytes_lost: 0,
            bytes_in_transit: 0,
            check: std::env::var_os("SWARMHUB_SIM_CHECK").is_some_and(|v| v == "1"),
            touched: Vec::new(),
            violation: None,
        };
        sim.schedule_setup();
        sim
    }

    fn schedule_setup(&mut self) {
        self.schedule(Instant::ZERO, Ev::Join(HUB));
        let n = self.hosts.len() - 1;
        let mut t = Instant::ZERO;
        let arrival = self.scenario.arrival.clone();
        for i in 1..=n {
            match arrival {
                Arrival::Flash => {}
                Arrival::Staggered { interval } => {
                    if i > 1 {
                        t += interval.0;
                    }
                }
                Arrival::Poisson { rate } => {
                    let u: f64 = self.rng.random_range(f64::EPSILON..1.0);
                    t += Duration::from_secs_f64(-u.ln() / rate);
                }
            }
            self.schedule(t, Ev::Join(i));
            self.pending_starts += 1;
        }
        if let Some(churn) = self.scenario.churn.clone() {
            let crashing = ((n as f64) * churn.fraction).round() as usize;
            let mut ids: Vec<usize> = (1..=n).collect();
            for i in (1..ids.len()).rev() {
                ids.swap(i, self.rng.random_range(0..=i));
            }
            for &h in ids.iter().take(crashing) {
                let offset = self.rng.random_range(0.0..=churn.window.secs().max(0.0));
                let at = Instant::ZERO + churn.start.0 + Duration::from_secs_f64(offset);
                self.schedule(at, Ev::Crash(h));
            }
        }
        if let Some(w) = self.scenario.faults.hub_outage.clone() {
            self.schedule(Instant::ZERO + w.start.0, Ev::HubDown);
            self.schedule(Instant::ZERO + w.end.0, Ev::HubUp);
        }
        if let Some(pause) = self.scenario.faults.leave_rejoin.clone() {
            // Drawn after everything else, so scenarios without this key
            // draw exactly the numbers they always did.
            let leaving = ((n as f64) * pause.fraction).round() as usize;
            let mut ids: Vec<usize> = (1..=n).collect();
            for i in (1..ids.len()).rev() {
                ids.swap(i, self.rng.random_range(0..=i));
            }
            for &h in ids.iter().take(leaving) {
                let offset = self.rng.random_range(0.0..=pause.window.secs().max(0.0));
                let at = Instant::ZERO + pause.start.0 + Duration::from_secs_f64(offset);
                self.schedule(at, Ev::Pause(h));
            }
        }
        self.schedule(Instant::ZERO, Ev::Sample);
    }

    pub(crate) fn schedule(&mut self, at: Instant, ev: Ev) {
        self.seq += 1;
        let slot = match self.free_slots.pop() {
            Some(slot) => {
                self.payloads[slot as usize] = Some(ev);
                slot
            }
            None => {
                self.payloads.push(Some(ev));
                (self.payloads.len() - 1) as u32
            }
        };
        self.queue.push(Reverse(Queued {
            at,
            seq: self.seq,
            slot,
        }));
    }

    /// Schedule `ev` one `delay` from now (a message latency, a round trip):
    /// such events go to a FIFO per delay instead of the heap.
    pub(crate) fn schedule_in(&mut self, delay: Duration, ev: Ev) {
        self.seq += 1;
        if let Err(ev) = self.lanes.push(self.now, delay, self.seq, ev) {
            self.seq -= 1;
            self.schedule(self.now + delay, ev);
        }
    }

    /// Set (or move) the finish event of `flow` to `at`.
    pub(crate) fn schedule_flow(&mut self, flow: FlowId, at: Instant) {
        self.seq += 1;
        self.flow_queue.set(flow, at, self.seq);
    }

    /// Latency between two hosts.
    pub(crate) fn latency(&self, a: usize, b: usize) -> Duration {
        self.site_latency[self.hosts[a].site_index][self.hosts[b].site_index]
    }

    /// Run to the end: every peer complete (or gone for good), or the
    /// scenario's duration. `progress` is called with the simulated time now
    /// and then.
    pub fn run(&mut self, mut progress: impl FnMut(Instant, usize, usize)) {
        let end = Instant::ZERO + self.scenario.duration.0;
        let total = self.hosts.len() - 1;
        let mut last_report = Instant::ZERO;
        // SWARMHUB_SIM_PROFILE=1 prints how many events of each kind ran.
        let profile = std::env::var_os("SWARMHUB_SIM_PROFILE").is_some();
        let mut counts: BTreeMap<String, u64> = BTreeMap::new();
        loop {
            // The earliest of the next heap event, the next flow finish and
            // the lane heads (keys come from one counter, so ties keep
            // insertion order).
            let event_key = self.queue.peek().map(|Reverse(q)| (q.at, q.seq));
            let flow_key = self.flow_queue.peek();
            let lane = self.lanes.peek();
            let mut source = Source::None;
            let mut best = None;
            for (key, s) in [
                (event_key, Source::Heap),
                (flow_key, Source::Flow),
                (lane.map(|l| l.0), Source::Lane(lane.map_or(0, |l| l.1))),
            ] {
                if let Some(k) = key {
                    if best.is_none_or(|b| k < b) {
                        best = Some(k);
                        source = s;
                    }
                }
            }
            let ev = match source {
                Source::None => break,
                Source::Flow => {
                    let (flow, at) = self.flow_queue.pop().expect("peeked");
                    if at > end {
                        self.now = end;
                        break;
                    }
                    self.now = at;
                    self.events += 1;
                    if profile {
                        *counts.entry("FlowDone".to_string()).or_insert(0u64) += 1;
                    }
                    self.flow_done(flow);
                    None
                }
                Source::Heap => {
                    let Reverse(q) = self.queue.pop().expect("peeked");
                    if q.at > end {
                        self.now = end;
                        break;
                    }
                    self.now = q.at;
                    self.free_slots.push(q.slot);
                    Some(
                        self.payloads[q.slot as usize]
                            .take()
                            .expect("queued event has a payload"),
                    )
                }
                Source::Lane(i) => {
                    let (at, ev) = self.lanes.pop(i).expect("peeked");
                    if at > end {
                        self.now = end;
                        break;
                    }
                    self.now = at;
                    Some(ev)
                }
            };
            if let Some(ev) = ev {
                let checked = self.check.then(|| format!("{ev:?}"));
                self.events += 1;
                if profile {
                    let name = match &ev {
                        Ev::Arrive {
                            item: Item::Msg(m), ..
                        } => format!("Arrive/{m:?}"),
                        Ev::Arrive { item, .. } => format!("Arrive/{item:?}"),
                        other => format!("{other:?}"),
                    };
                    let name: String = name
                        .split(|c: char| !(c.is_alphanumeric() || c == '/'))
                        .next()
                        .unwrap_or("")
                        .to_string();
                    *counts.entry(name).or_insert(0u64) += 1;
                }
                self.handle(ev);
                if let Some(what) = checked {
                    self.check_event(&what);
                }
            } else if self.check {
                self.check_event("FlowDone");
            }
            if self.violation.is_some() {
                break;
            }
            if self.now.saturating_since(last_report) >= Duration::from_secs(5) {
                last_report = self.now;
                progress(self.now, self.completed, total);
            }
            if self.finished() {
                break;
            }
        }
        self.close_timeline();
        progress(self.now, self.completed, total);
        if profile {
            for (name, n) in &counts {
                eprintln!("{name:>24} {n:>12}");
            }
            eprintln!("{:?}", self.net.stats);
            eprintln!("flow finishes re-checked early: {}", self.flow_events_early);
        }
    }

    /// Every peer complete or gone for good, and nobody left to join or restart.
    /// O(1): kept by counters, since it runs after every event.
    fn finished(&self) -> bool {
        self.incomplete_alive == 0 && self.pending_starts == 0
    }

    fn handle(&mut self, ev: Ev) {
        match ev {
            Ev::Join(h) => {
                if h != HUB {
                    self.pending_starts -= 1;
                }
                self.join(h)
            }
            Ev::Timer(h, inc) => {
                if self.hosts[h].incarnation == inc && self.hosts[h].timer_at == Some(self.now) {
                    self.hosts[h].timer_at = None;
                    self.input(h, Input::Timeout);
                }
            }
            Ev::Arrive { conn, item } => self.arrive(conn, item),
            Ev::Connected { conn } => self.connected(conn),
            Ev::ConnectFailed { host, inc, addr } => {
                if self.alive(host, inc) {
                    self.input(host, Input::ConnectFailed { addr });
                }
            }
            Ev::AnnounceAtHub { host, inc, params } => self.announce_at_hub(host, inc, params),
            Ev::AnnounceReply { host, inc, result } => {
                if self.alive(host, inc) {
                    let result = if self.scenario.protocol.p2p || host == HUB {
                        result
                    } else {
                        result.map(|mut r| {
                            let hub = self.hosts[HUB].addr;
                            r.peers.retain(|p| SocketAddr::new(p.ip, p.port) == hub);
                            r
                        })
                    };
                    self.input(host, Input::Announced(result));
                }
            }
            Ev::Verify {
                host,
                inc,
                piece,
                ok,
            } => {
                if self.alive(host, inc) {
                    self.input(host, Input::PieceVerified { piece, ok });
                }
            }
            Ev::Closed { conn } => self.remote_closed(conn),
            Ev::Leave(h) => self.leave(h),
            Ev::Crash(h) => self.crash(h),
            Ev::Pause(h) => self.pause(h),
            Ev::Restart(h) => {
                self.pending_starts -= 1;
                if self.hosts[h].state == HostState::Crashed {
                    self.start_node(h);
                }
            }
            Ev::HubDown => {
                self.hub_down = true;
                self.crash(HUB);
            }
            Ev::HubUp => {
                self.hub_down = false;
                self.start_node(HUB);
            }
            Ev::Sample => self.sample(),
        }
    }

    pub(crate) fn alive(&self, host: usize, inc: u32) -> bool {
        let h = &self.hosts[host];
        h.state == HostState::Active && h.incarnation == inc
    }

    fn join(&mut self, h: usize) {
        self.hosts[h].join_at = Some(self.now);
        if h != HUB {
            self.incomplete_alive += 1;
        }
        self.start_node(h);
    }

    pub(crate) fn start_node(&mut self, h: usize) {
        let config = self.node_config(h);
        let seed = child_seed(&mut self.rng);
        let have = self.hosts[h].have.clone();
        // Corrupt blocks the last incarnation stored die with it: its
        // unverified pieces are downloaded afresh.
        self.tainted.retain(|&(host, _)| host != h);
        let host = &mut self.hosts[h];
        host.counters_at_start = (host.bytes_up, host.bytes_down_hub + host.bytes_down_peers);
        host.incarnation += 1;
        host.state = HostState::Active;
        host.timer_at = None;
        host.node = Some(Node::new(config, have, seed, self.now));
        self.input(h, Input::Start);
    }

    /// Upload capacity of host `h` in bytes per second.
    pub(crate) fn net_up_bps(&self, h: usize) -> f64 {
        if h == HUB {
            self.scenario.hub.upload.bytes_per_s()
        } else {
            let mut i = h - 1;
            for g in &self.scenario.groups {
                if i < g.count {
                    return g.upload.bytes_per_s();
                }
                i -= g.count;
            }
            0.0
        }
    }

    /// The [`NodeConfig`](swarmhub_core::NodeConfig) host `h` starts with,
    /// built by the core's constructors from the scenario's settings, as the
    /// real hub and clients build theirs.
    pub fn node_config(&self, h: usize) -> swarmhub_core::NodeConfig {
        use swarmhub_core::settings::{self, ClientSettings, NodeIdentity};
        let id = NodeIdentity {
            info_hash: self.info_hash,
            peer_id: self.hosts[h].peer_id,
            geometry: self.geometry,
            listen_port: self.hosts[h].addr.port(),
        };
        let protocol = self.scenario.protocol_settings();
        if h == HUB {
            return settings::hub_node_config(id, &protocol, &self.scenario.hub_settings());
        }
        let client = ClientSettings {
            max_peers: None,
            upload_bps: Some(self.net_up_bps(h) as u64),
        };
        let mut config = settings::client_node_config(id, &protocol, &client);
        // Clients always keep a connection to the hub seeder (when it has room).
        config.pinned_peers = vec![self.hosts[HUB].addr];
        config
    }

    fn leave(&mut self, h: usize) {
        if self.hosts[h].state != HostState::Active {
            return;
        }
        self.input(h, Input::Shutdown);
        let conns: Vec<ConnId> = self.conns.of_host(h);
        for conn in conns {
            self.close(conn, true);
        }
        let host = &mut self.hosts[h];
        host.state = HostState::Left;
        if let Some(node) = host.node.take() {
            host.bytes_wasted_before += node.stats().bytes_wasted;
        }
        host.leave_at = Some(self.now);
        if host.complete_at.is_none() {
            self.incomplete_alive -= 1;
        }
    }

    /// Close `h`'s connections and drop its node, keeping what outlives an
    /// incarnation (verified pieces, wasted bytes); the host is then down.
    fn take_down(&mut self, h: usize) {
        let conns: Vec<ConnId> = self.conns.of_host(h);
        for conn in conns {
            self.close(conn, true);
        }
        let host = &mut self.hosts[h];
        if let Some(node) = host.node.take() {
            host.have = node.have().clone();
            host.bytes_wasted_before += node.stats().bytes_wasted;
        }
        host.state = HostState::Crashed;
        host.incarnation += 1;
    }

    fn crash(&mut self, h: usize) {
        if self.hosts[h].state != HostState::Active {
            return;
        }
        self.take_down(h);
        if h != HUB {
            if let Some(churn) = &self.scenario.churn {
                let at = self.now + churn.downtime.0;
                self.schedule(at, Ev::Restart(h));
                self.pending_starts += 1;
            }
        }
    }

    /// A graceful stop: the node shuts down (closing its connections and
    /// announcing `stopped`), then restarts after the scenario's
    /// `faults.leave_rejoin.downtime` with the pieces it had verified.
    fn pause(&mut self, h: usize) {
        if self.hosts[h].state != HostState::Active {
            return;
        }
        self.input(h, Input::Shutdown);
        self.take_down(h);
        if let Some(pause) = &self.scenario.faults.leave_rejoin {
            let at = self.now + pause.downtime.0;
            self.schedule(at, Ev::Restart(h));
            self.pending_starts += 1;
        }
    }

    pub(crate) fn on_complete(&mut self, h: usize) {
        if h == HUB || self.hosts[h].complete_at.is_some() {
            return;
        }
        self.hosts[h].complete_at = Some(self.now);
        self.completed += 1;
        self.incomplete_alive -= 1;
        match self.scenario.departure {
            Departure::Leave => self.schedule(self.now, Ev::Leave(h)),
            Departure::SeedFor { duration } => self.schedule(self.now + duration.0, Ev::Leave(h)),
            Departure::Forever => {}
        }
    }

    fn sample(&mut self) {
        self.close_timeline();
        let next = self.now + self.step;
        self.schedule(next, Ev::Sample);
    }

    fn close_timeline(&mut self) {
        let t_s = self.now.as_secs_f64();
        if let Some(last) = self.timeline.last() {
            if (t_s - last.t_s).abs() < 1e-9 {
                return;
            }
        }
        let step_s = self.step.as_secs_f64();
        let mut seeds = 0;
        let mut leechers = 0;
        for h in &self.hosts[1..] {
            if h.state == HostState::Active {
                if h.complete_at.is_some() {
                    seeds += 1;
                } else {
                    leechers += 1;
                }
            }
        }
        if let Some(prev) = self.timeline.last_mut() {
            // Rates of the step that just ended belong to the previous row.
            prev.from_hub_bps = self.step_bytes_hub as f64 * 8.0 / step_s;
            prev.from_peers_bps = self.step_bytes_peers as f64 * 8.0 / step_s;
            prev.link_bps = self
                .step_link_bytes
                .iter()
                .map(|b| *b as f64 * 8.0 / step_s)
                .collect();
        }
        self.step_link_bytes.iter_mut().for_each(|b| *b = 0);
        self.step_bytes_hub = 0;
        self.step_bytes_peers = 0;
        self.timeline.push(Sample {
            t_s,
            leechers,
            seeds,
            completed: self.completed,
            from_peers_bps: 0.0,
            from_hub_bps: 0.0,
            link_bps: vec![0.0; self.step_link_bytes.len()],
        });
    }

    pub(crate) fn record(&mut self, host: usize, text: String) {
        let mut h = self.trace_hash;
        for b in self
            .now
            .as_micros()
            .to_le_bytes()
            .iter()
            .chain(&(host as u64).to_le_bytes())
            .chain(text.as_bytes())
        {
            h ^= u64::from(*b);
            h = h.wrapping_mul(0x0100_0000_01b3);
        }
        self.trace_hash = h;
        if let Some(t) = &mut self.trace {
            t.push((self.now, host, text));
        }
    }
}

/// Identity of a host as the tracker knows it.
pub(crate) fn identity(host: usize) -> String {
    if host == HUB {
        "hub".to_string()
    } else {
        format!("peer-{host}")
    }
}

#[allow(clippy::too_many_arguments)]
fn new_host(
    group: &str,
    site: Option<&str>,
    site_index: usize,
    index: usize,
    net: &mut Net,
    up: f64,
    down: f64,
    corrupt: bool,
    geometry: Geometry,
    efficiency: f64,
) -> SimHost {
    let net_index = net.add_host(up * efficiency, down * efficiency, site_index);
    debug_assert_eq!(net_index, index);
    let ip = Ipv4Addr::from(0x0a00_0000u32 + index as u32);
    let mut id = [0u8; 20];
    id[..8].copy_from_slice(b"-SH0001-");
    id[12..].copy_from_slice(&(index as u64).to_be_bytes());
    SimHost {
        group: group.to_string(),
        site: site.unwrap_or("").to_string(),
        site_index,
        addr: SocketAddr::new(IpAddr::V4(ip), 6881),
        net: net_index,
        node: None,
        state: HostState::Waiting,
        incarnation: 0,
        timer_at: None,
        corrupt,
        have: PieceSet::new(geometry.num_pieces()),
        peer_id: Id20::new(id),
        join_at: None,
        complete_at: None,
        leave_at: None,
        bytes_down_hub: 0,
        bytes_down_peers: 0,
        bytes_up: 0,
        bytes_wasted_before: 0,
        counters_at_start: (0, 0),
    }
}

#[cfg(test)]
mod tests;
