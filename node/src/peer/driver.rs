//! One tokio task per swarm: owns the core [`Node`], carries out its outputs
//! and feeds it socket, disk, tracker and timer inputs.
//!
//! After every input the driver drains [`Node::poll_output`] until
//! [`Output::Timeout`], then sleeps until that instant or the next input.

use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};
use std::sync::Arc;
use std::time::Duration;

use swarmhub_core::metainfo::Metainfo;
use swarmhub_core::node::{AnnounceParams, NodeEvent};
use swarmhub_core::pieceset::PieceSet;
use swarmhub_core::tracker::{AnnounceEvent, AnnounceResponse};
use swarmhub_core::wire::{BlockRef, Decoder, DecoderLimits};
use swarmhub_core::{ConnId, Id20, Input, Instant, Node, NodeConfig, Output};
use tokio::sync::mpsc::error::TrySendError;
use tokio::sync::{mpsc, oneshot, watch};
use tokio::task::{JoinHandle, JoinSet};

use super::conn::{self, ConnEvent, WriteItem};
use super::disk::{self, Assembly, DiskOp, ReadCache};
use super::listener::{Inbound, Registry};
use super::{Announcer, PeerLink, Transport, HUB_PEER_ID_PREFIX};
use crate::budget::ASSEMBLY;
use crate::metrics::SwarmMetrics;
use crate::rate::Limits;
use crate::store::Storage;
use crate::util::{hex, random_u64};

/// Everything a swarm task needs.
pub struct SwarmSpec {
    /// The image.
    pub meta: Arc<Metainfo>,
    /// Its files.
    pub storage: Arc<Storage>,
    /// Pieces already verified on disk.
    pub have: PieceSet,
    /// Our peer id.
    pub peer_id: Id20,
    /// The port our listener accepts on (told to the tracker and peers).
    pub listen_port: u16,
    /// How links are made.
    pub transport: Arc<dyn Transport>,
    /// How to reach the tracker.
    pub announcer: Announcer,
    /// Bandwidth limits.
    pub limits: Arc<Limits>,
    /// The listener's routing table; the swarm adds itself.
    pub registry: Registry,
    /// The hub seeder's settings (`None` for a client): the swarm is then
    /// configured as the simulator configures its hub.
    pub hub: Option<swarmhub_core::settings::HubSettings>,
    /// Where the swarm counts its bytes, failures, bans and peers (`None`:
    /// not counted).
    pub metrics: Option<SwarmMetrics>,
    /// A client's cap on connections for this image (`None`: the protocol's
    /// `max_peers`; ignored for the hub seeder, which has its own limit).
    pub max_peers: Option<usize>,
}

/// The [`NodeConfig`] of a swarm: the hub seeder's from its settings, a
/// client's from its upload limit, both through the core's constructors the
/// simulator uses (`swarmhub_core::settings`).
pub fn swarm_node_config(
    id: swarmhub_core::settings::NodeIdentity,
    require_auth: bool,
    hub: Option<&swarmhub_core::settings::HubSettings>,
    upload_limit_bps: u64,
    max_peers: Option<usize>,
) -> NodeConfig {
    use swarmhub_core::settings::{self, ClientSettings, ProtocolSettings};
    let protocol = ProtocolSettings::default();
    let mut config = match hub {
        Some(hub) => settings::hub_node_config(id, &protocol, hub),
        None => {
            let client = ClientSettings {
                upload_bps: (upload_limit_bps > 0).then_some(upload_limit_bps),
                max_peers,
            };
            settings::client_node_config(id, &protocol, &client)
        }
    };
    config.require_auth = require_auth;
    config
}

/// What a swarm reports while it runs.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SwarmStatus {
    /// Every piece verified.
    pub complete: bool,
    /// Verified pieces.
    pub pieces: u32,
    /// Bytes still missing.
    pub bytes_left: u64,
    /// Accepted block bytes from the hub seeder.
    pub bytes_from_hub: u64,
    /// Accepted block bytes from other clients.
    pub bytes_from_peers: u64,
    /// Block bytes from the hub seeder that were not needed (duplicates).
    pub wasted_from_hub: u64,
    /// Block bytes from other clients that were not needed (duplicates).
    pub wasted_from_peers: u64,
    /// Block bytes we uploaded.
    pub bytes_up: u64,
    /// Block bytes we uploaded, by the verified identity of the peer (peers
    /// without one, over plain TCP, are not counted here).
    pub bytes_up_by_identity: Arc<BTreeMap<String, u64>>,
    /// Open connections.
    pub peers: usize,
    /// Pieces the connected peers hold, summed over them: it grows while the
    /// swarm around this node makes progress, even before any of it is ours.
    pub peer_pieces: u64,
    /// Pieces that failed their hash.
    pub hash_failures: u32,
    /// The last announce error, cleared by a good announce.
    pub announce_error: Option<String>,
    /// Why the swarm stopped on its own (disk failure), if it did.
    pub fatal: Option<String>,
    /// The verified pieces.
    pub have: PieceSet,
    /// When the first block was accepted (the start of the data phase).
    pub first_block_at: Option<std::time::Instant>,
    /// When the last piece verified (its end; the files' SHA-256 verdict and
    /// the final sync come after).
    pub completed_at: Option<std::time::Instant>,
}

/// A running swarm.
pub struct SwarmHandle {
    /// Live status.
    pub status: watch::Receiver<SwarmStatus>,
    web: mpsc::Sender<WebPiece>,
    priority: watch::Sender<Vec<u32>>,
    stop: Option<oneshot::Sender<()>>,
    task: JoinHandle<()>,
}

/// A piece fetched from the hub's web seed, handed to a running swarm.
struct WebPiece {
    piece: u32,
    data: bytes::Bytes,
    reply: oneshot::Sender<Result<WebOutcome, String>>,
}

/// What a swarm did with a piece from the web seed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WebOutcome {
    /// Stored, verified and taken by the node (peers are told).
    Taken,
    /// The swarm had verified the piece already; the data was not used.
    AlreadyHad,
    /// The data failed the piece hash.
    BadHash,
}

/// Feeds pieces fetched over HTTP into a running swarm, so HTTP and peers
/// work side by side (the node cancels its requests for those pieces).
#[derive(Clone)]
pub struct WebSeedSink {
    tx: mpsc::Sender<WebPiece>,
    status: watch::Receiver<SwarmStatus>,
}

impl WebSeedSink {
    /// Whether the swarm has verified `piece` (as of its last status).
    pub fn has(&self, piece: u32) -> bool {
        self.status.borrow().have.contains(piece)
    }

    /// Store `data` as `piece` through the swarm's disk thread, verify it and
    /// give it to the node.
    pub async fn deliver(&self, piece: u32, data: bytes::Bytes) -> Result<WebOutcome, String> {
        let (reply, rx) = oneshot::channel();
        let gone = || "the swarm stopped".to_owned();
        self.tx
            .send(WebPiece { piece, data, reply })
            .await
            .map_err(|_| gone())?;
        rx.await.map_err(|_| gone())?
    }
}

impl SwarmHandle {
    /// A handle for a swarm that never runs (a placeholder for skipped images).
    pub fn finished() -> SwarmHandle {
        let (_, status) = watch::channel(SwarmStatus::default());
        SwarmHandle {
            status,
            web: mpsc::channel(1).0,
            priority: watch::channel(Vec::new()).0,
            stop: None,
            task: tokio::spawn(async {}),
        }
    }

    /// A sink for pieces fetched over HTTP while the swarm keeps running.
    pub fn web_seed(&self) -> WebSeedSink {
        WebSeedSink {
            tx: self.web.clone(),
            status: self.status.clone(),
        }
    }

    /// Download these pieces before any other, the rarest first (a reader
    /// waits for them); an empty list goes back to rarest-first alone.
    pub fn set_priority(&self, pieces: Vec<u32>) {
        self.priority.send_if_modified(|p| {
            let changed = *p != pieces;
            *p = pieces;
            changed
        });
    }

    /// Leave the swarm (announce `stopped`, close connections) and wait for the task.
    pub async fn shutdown(mut self) -> SwarmStatus {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        let _ = (&mut self.task).await;
        let s = self.status.borrow().clone();
        s
    }
}

/// What helper tasks and the disk thread tell the swarm task.
pub(super) enum Event {
    Dialed(std::net::SocketAddr, Result<PeerLink, std::io::Error>),
    BlockSent {
        conn: ConnId,
        block: BlockRef,
    },
    WriterFailed {
        conn: ConnId,
        reason: String,
    },
    BlockRead {
        conn: ConnId,
        block: BlockRef,
        result: Result<bytes::Bytes, String>,
    },
    Verified {
        piece: u32,
        result: Result<bool, String>,
    },
    WebVerified {
        piece: u32,
        result: Result<bool, String>,
    },
    /// An assembled piece was hashed off the swarm task.
    Hashed {
        piece: u32,
        data: bytes::Bytes,
        ok: bool,
    },
    DiskFailed(String),
    Announced(Result<AnnounceResponse, String>),
}

struct Conn {
    writer: mpsc::Sender<WriteItem>,
    reader: JoinHandle<()>,
    /// The identity the transport verified.
    identity: Option<String>,
}

impl Drop for Conn {
    fn drop(&mut self) {
        self.reader.abort();
    }
}

/// Start a swarm task for `spec`.
pub fn spawn_swarm(spec: SwarmSpec) -> std::io::Result<SwarmHandle> {
    let geometry = spec.meta.geometry();
    let id = swarmhub_core::settings::NodeIdentity {
        info_hash: spec.meta.info_hash,
        peer_id: spec.peer_id,
        geometry,
        listen_port: spec.listen_port,
    };
    let config = swarm_node_config(
        id,
        spec.transport.authenticates(),
        spec.hub.as_ref(),
        spec.limits.up.bps(),
        spec.max_peers,
    );
    let origin = tokio::time::Instant::now();
    let node = Node::new(config, spec.have.clone(), random_u64(), Instant::ZERO);
    let (ev_tx, ev_rx) = mpsc::unbounded_channel();
    let (msg_tx, msg_rx) = mpsc::channel(1024);
    let (in_tx, in_rx) = mpsc::channel(64);
    let (web_tx, web_rx) = mpsc::channel(8);
    let (prio_tx, prio_rx) = watch::channel(Vec::new());
    let cache = Arc::new(ReadCache::new());
    let (disk, disk_thread) = disk::spawn(spec.storage.clone(), cache.clone(), ev_tx.clone())?;
    spec.registry.insert(spec.meta.info_hash, in_tx);
    let status = SwarmStatus {
        complete: node.is_complete(),
        pieces: node.have().count(),
        bytes_left: node.bytes_left(),
        have: node.have().clone(),
        ..SwarmStatus::default()
    };
    let (status_tx, status_rx) = watch::channel(status.clone());
    let (stop_tx, stop_rx) = oneshot::channel();
    let driver = Driver {
        node,
        origin,
        conns: HashMap::new(),
        next_conn: 1,
        hub_conns: HashSet::new(),
        ev_tx,
        msg_tx,
        disk,
        disk_thread: Some(disk_thread),
        disk_backlog: VecDeque::new(),
        cache,
        assembling: HashMap::new(),
        on_disk: HashSet::new(),
        hash_jobs: JoinSet::new(),
        to_close: Vec::new(),
        status,
        status_tx,
        up_by_identity: BTreeMap::new(),
        up_by_identity_dirty: false,
        last_status: origin,
        final_announce: None,
        web_pending: HashMap::new(),
        spec,
    };
    let task = tokio::spawn(driver.run(ev_rx, msg_rx, in_rx, web_rx, prio_rx, stop_rx));
    Ok(SwarmHandle {
        status: status_rx,
        web: web_tx,
        priority: prio_tx,
        stop: Some(stop_tx),
        task,
    })
}

struct Driver {
    node: Node,
    origin: tokio::time::Instant,
    conns: HashMap<ConnId, Conn>,
    next_conn: u64,
    hub_conns: HashSet<ConnId>,
    ev_tx: mpsc::UnboundedSender<Event>,
    msg_tx: mpsc::Sender<(ConnId, ConnEvent)>,
    disk: mpsc::Sender<DiskOp>,
    disk_thread: Option<std::thread::JoinHandle<()>>,
    /// Disk operations that did not fit the disk queue, in order; while any
    /// wait, the swarm reads no peer messages (backpressure on the sockets).
    disk_backlog: VecDeque<DiskOp>,
    /// Recently read spans, shared with the disk thread.
    cache: Arc<ReadCache>,
    /// Pieces being received into memory, hashed before they are written.
    assembling: HashMap<u32, Assembly>,
    /// Pieces being received straight to disk (the assembly budget was spent).
    on_disk: HashSet<u32>,
    /// Hash-and-write jobs of assembled pieces on the blocking pool.
    hash_jobs: JoinSet<()>,
    /// Connections whose writer queue overflowed during a drain.
    to_close: Vec<(ConnId, String)>,
    status: SwarmStatus,
    status_tx: watch::Sender<SwarmStatus>,
    /// Bytes uploaded by peer identity; copied into the status when it changed.
    up_by_identity: BTreeMap<String, u64>,
    up_by_identity_dirty: bool,
    last_status: tokio::time::Instant,
    final_announce: Option<AnnounceParams>,
    /// Web-seed pieces queued on the disk thread; blocks from peers for them
    /// are not written, so a peer cannot overwrite data the hub sent.
    web_pending: HashMap<u32, oneshot::Sender<Result<WebOutcome, String>>>,
    spec: SwarmSpec,
}

impl Driver {
    fn now(&self) -> Instant {
        Instant::from_micros(self.origin.elapsed().as_micros() as u64)
    }

    async fn run(
        mut self,
        mut ev_rx: mpsc::UnboundedReceiver<Event>,
        mut msg_rx: mpsc::Receiver<(ConnId, ConnEvent)>,
        mut in_rx: mpsc::Receiver<Inbound>,
        mut web_rx: mpsc::Receiver<WebPiece>,
        mut prio_rx: watch::Receiver<Vec<u32>>,
        mut stop_rx: oneshot::Receiver<()>,
    ) {
        let name = self.spec.meta.name.clone();
        tracing::info!(
            "swarm {name} ({}): started, {} of {} pieces",
            hex(&self.spec.meta.info_hash.0),
            self.node.have().count(),
            self.spec.meta.num_pieces()
        );
        self.input(Input::Start);
        let disk_tx = self.disk.clone();
        loop {
            let deadline = self.drain();
            self.publish(false);
            if self.status.fatal.is_some() {
                break;
            }
            let backlog = !self.disk_backlog.is_empty();
            // The timer goes first: rechokes, request timeouts and announces
            // fire on time however busy the sockets are.
            tokio::select! {
                biased;
                _ = &mut stop_rx => break,
                _ = tokio::time::sleep_until(deadline) => self.input(Input::Timeout),
                permit = disk_tx.reserve(), if backlog => match permit {
                    Ok(permit) => {
                        if let Some(op) = self.disk_backlog.pop_front() {
                            permit.send(op);
                        }
                        self.flush_disk_backlog();
                    }
                    Err(_) => self.disk_gone(),
                },
                Some(ev) = ev_rx.recv() => self.on_event(ev),
                Ok(()) = prio_rx.changed() => {
                    let pieces = prio_rx.borrow_and_update().clone();
                    self.node.set_priority(pieces);
                }
                Some(inb) = in_rx.recv() => self.on_inbound(inb),
                Some(web) = web_rx.recv(), if !backlog => self.on_web_piece(web),
                Some((conn, ev)) = msg_rx.recv(), if !backlog => self.on_conn_event(conn, ev),
            }
        }
        drop(disk_tx);
        self.spec.registry.remove(&self.spec.meta.info_hash);
        self.input(Input::Shutdown);
        self.drain();
        self.conns.clear();
        if let Some(params) = self.final_announce.take() {
            let fut =
                self.spec
                    .announcer
                    .announce(self.spec.meta.info_hash, self.spec.peer_id, params);
            let _ = tokio::time::timeout(Duration::from_secs(3), fut).await;
        }
        // Let queued writes land before anyone re-reads the files.
        while let Some(op) = self.disk_backlog.pop_front() {
            if self.disk.send(op).await.is_err() {
                break;
            }
        }
        while self.hash_jobs.join_next().await.is_some() {}
        // Hashed pieces nobody will write now: give their memory back.
        while let Ok(ev) = ev_rx.try_recv() {
            if let Event::Hashed { data, .. } = ev {
                ASSEMBLY.give(data.len());
            }
        }
        ASSEMBLY.give(self.assembling.drain().map(|(_, a)| a.len()).sum());
        let (closed, _) = mpsc::channel(1);
        drop(std::mem::replace(&mut self.disk, closed));
        if let Some(t) = self.disk_thread.take() {
            let _ = tokio::task::spawn_blocking(move || t.join()).await;
        }
        self.publish(true);
        if let Some(m) = &self.spec.metrics {
            m.stopped();
        }
        tracing::info!("swarm {name}: stopped");
    }

    fn input(&mut self, input: Input) {
        let now = self.now();
        if let Err(e) = self.node.handle_input(now, input) {
            tracing::debug!("swarm {}: node refused input: {e}", self.spec.meta.name);
        }
    }

    /// Carry out every queued output; returns when to wake up for the timer.
    fn drain(&mut self) -> tokio::time::Instant {
        loop {
            match self.node.poll_output() {
                Output::Timeout(_) if !self.to_close.is_empty() => {
                    for (conn, reason) in std::mem::take(&mut self.to_close) {
                        self.hub_conns.remove(&conn);
                        self.input(Input::Closed { conn, reason });
                    }
                }
                Output::Timeout(t) => {
                    let cap = self.now().as_micros() + 3_600_000_000;
                    let at = t.as_micros().min(cap);
                    return self.origin + Duration::from_micros(at);
                }
                Output::SendHandshake { conn, handshake } => {
                    let mut b = Vec::with_capacity(68);
                    handshake.encode(&mut b);
                    self.send(conn, WriteItem::Bytes(b));
                }
                Output::Transmit { conn, msg } => {
                    let mut b = Vec::with_capacity(msg.wire_len());
                    match msg.encode(&mut b) {
                        Ok(()) => self.send(conn, WriteItem::Bytes(b)),
                        Err(e) => tracing::warn!("cannot encode {}: {e}", msg.name()),
                    }
                }
                Output::SendBlock { conn, block } => match self.cache.get(block) {
                    Some(data) => self.send(conn, WriteItem::Block(block, data)),
                    None => self.disk(DiskOp::Read(conn, block)),
                },
                Output::StoreBlock { block, data } => self.store_block(block, data),
                Output::VerifyPiece { piece } => self.verify_piece(piece),
                Output::Connect { addr } => {
                    let fut = self.spec.transport.connect(addr);
                    let tx = self.ev_tx.clone();
                    tokio::spawn(async move {
                        let _ = tx.send(Event::Dialed(addr, fut.await));
                    });
                }
                Output::Disconnect { conn } => {
                    self.conns.remove(&conn);
                    self.hub_conns.remove(&conn);
                }
                Output::Announce(params) => {
                    if params.event == AnnounceEvent::Stopped {
                        self.final_announce = Some(params);
                        continue;
                    }
                    let fut = self.spec.announcer.announce(
                        self.spec.meta.info_hash,
                        self.spec.peer_id,
                        params,
                    );
                    let tx = self.ev_tx.clone();
                    tokio::spawn(async move {
                        let _ = tx.send(Event::Announced(fut.await));
                    });
                }
                Output::Event(e) => self.on_node_event(e),
            }
        }
    }

    fn send(&mut self, conn: ConnId, item: WriteItem) {
        let Some(c) = self.conns.get(&conn) else {
            return;
        };
        if let Err(TrySendError::Full(_)) = c.writer.try_send(item) {
            // The peer has stopped reading: close it after this drain.
            self.conns.remove(&conn);
            self.to_close.push((
                conn,
                format!(
                    "peer stopped reading ({} messages queued to it)",
                    conn::WRITER_QUEUE
                ),
            ));
        }
    }

    /// Queue `op` for the disk thread, or behind the ops already waiting.
    fn disk(&mut self, op: DiskOp) {
        if !self.disk_backlog.is_empty() {
            self.disk_backlog.push_back(op);
            return;
        }
        match self.disk.try_send(op) {
            Ok(()) => {}
            Err(TrySendError::Full(op)) => self.disk_backlog.push_back(op),
            Err(TrySendError::Closed(_)) => self.disk_gone(),
        }
    }

    fn flush_disk_backlog(&mut self) {
        while let Some(op) = self.disk_backlog.pop_front() {
            match self.disk.try_send(op) {
                Ok(()) => {}
                Err(TrySendError::Full(op)) => {
                    self.disk_backlog.push_front(op);
                    return;
                }
                Err(TrySendError::Closed(_)) => return self.disk_gone(),
            }
        }
    }

    fn disk_gone(&mut self) {
        self.disk_backlog.clear();
        self.status
            .fatal
            .get_or_insert_with(|| "disk failure: the disk thread stopped".into());
    }

    /// A block of a piece we download: into the piece's memory assembly
    /// while the budget allows, else straight to disk.
    fn store_block(&mut self, block: BlockRef, data: bytes::Bytes) {
        let piece = block.piece;
        if self.web_pending.contains_key(&piece) {
            return;
        }
        if !self.on_disk.contains(&piece) {
            if !self.assembling.contains_key(&piece) {
                let len = self.spec.meta.piece_len(piece) as usize;
                if ASSEMBLY.try_take(len) {
                    self.assembling.insert(piece, Assembly::new(len as u32));
                }
            }
            if let Some(a) = self.assembling.get_mut(&piece) {
                if a.put(block.begin, &data) {
                    return;
                }
                // Does not fit the piece (the node checked it; be safe).
                self.give_up_assembly(piece);
            } else {
                self.on_disk.insert(piece);
            }
        }
        self.disk(DiskOp::Write(block, data));
    }

    /// Write what an assembly holds and receive the rest of the piece to disk.
    fn give_up_assembly(&mut self, piece: u32) {
        if let Some(a) = self.assembling.remove(&piece) {
            ASSEMBLY.give(a.len());
            self.write_received(piece, &a);
            self.on_disk.insert(piece);
        }
    }

    fn write_received(&mut self, piece: u32, a: &Assembly) {
        for (begin, d) in a.received() {
            let block = BlockRef {
                piece,
                begin,
                length: d.len() as u32,
            };
            self.disk(DiskOp::Write(block, bytes::Bytes::copy_from_slice(d)));
        }
    }

    fn drop_assembly(&mut self, piece: u32) {
        if let Some(a) = self.assembling.remove(&piece) {
            ASSEMBLY.give(a.len());
        }
        self.on_disk.remove(&piece);
    }

    /// Every block of `piece` is in: an assembled piece is hashed on the
    /// blocking pool, off this task, and only a good one is then written by
    /// the disk thread; a piece received to disk is read back and hashed by
    /// the disk thread, after its writes.
    fn verify_piece(&mut self, piece: u32) {
        if self.web_pending.contains_key(&piece) {
            self.drop_assembly(piece);
            return self.disk(DiskOp::Verify(piece));
        }
        let Some(a) = self.assembling.remove(&piece) else {
            self.on_disk.remove(&piece);
            return self.disk(DiskOp::Verify(piece));
        };
        // The piece's share of the budget goes back once it is written (the
        // disk thread) or refused (its hash failed), so bytes waiting in the
        // disk queue stay counted.
        match a.finish() {
            Ok(data) => {
                let storage = self.spec.storage.clone();
                let tx = self.ev_tx.clone();
                while self.hash_jobs.try_join_next().is_some() {}
                self.hash_jobs.spawn_blocking(move || {
                    let ok = storage.piece_hash_matches(piece, &data);
                    let _ = tx.send(Event::Hashed { piece, data, ok });
                });
            }
            Err(a) => {
                ASSEMBLY.give(a.len());
                // Not every block came through here (the node said the
                // piece is complete): store what we have, hash from disk.
                self.write_received(piece, &a);
                self.disk(DiskOp::Verify(piece));
            }
        }
    }

    fn on_node_event(&mut self, e: NodeEvent) {
        let name = &self.spec.meta.name;
        match e {
            NodeEvent::BlockReceived { conn, bytes } => {
                self.status
                    .first_block_at
                    .get_or_insert_with(std::time::Instant::now);
                let from_hub = self.hub_conns.contains(&conn);
                if from_hub {
                    self.status.bytes_from_hub += u64::from(bytes);
                } else {
                    self.status.bytes_from_peers += u64::from(bytes);
                }
                if let Some(m) = &self.spec.metrics {
                    m.block_received(from_hub, bytes);
                }
            }
            NodeEvent::BlockWasted { conn, bytes } => {
                if self.hub_conns.contains(&conn) {
                    self.status.wasted_from_hub += u64::from(bytes);
                } else {
                    self.status.wasted_from_peers += u64::from(bytes);
                }
            }
            NodeEvent::BlockUploaded { conn, bytes } => {
                self.status.bytes_up += u64::from(bytes);
                if let Some(m) = &self.spec.metrics {
                    m.block_uploaded(bytes);
                }
                if let Some(id) = self.conns.get(&conn).and_then(|c| c.identity.as_ref()) {
                    *self.up_by_identity.entry(id.clone()).or_default() += u64::from(bytes);
                    self.up_by_identity_dirty = true;
                }
            }
            NodeEvent::PeerConnected { conn, peer_id, .. } => {
                if peer_id.0.starts_with(HUB_PEER_ID_PREFIX) {
                    self.hub_conns.insert(conn);
                }
                tracing::debug!("swarm {name}: peer {conn:?} connected");
            }
            NodeEvent::PeerDisconnected { conn, reason } => {
                if let Some(m) = &self.spec.metrics {
                    m.disconnected(&reason);
                }
                self.conns.remove(&conn);
                self.hub_conns.remove(&conn);
                tracing::debug!("swarm {name}: peer {conn:?} disconnected: {reason}");
            }
            NodeEvent::PeerBanned { addr, reason, .. } => {
                if let Some(m) = &self.spec.metrics {
                    m.banned(&reason);
                }
                tracing::warn!("swarm {name}: banned peer {addr}: {reason}")
            }
            NodeEvent::PieceFailed { piece } => {
                self.status.hash_failures += 1;
                if let Some(m) = &self.spec.metrics {
                    m.piece_failed();
                }
                tracing::warn!("swarm {name}: piece {piece} failed its hash, fetching it again");
            }
            NodeEvent::Complete => tracing::info!("swarm {name}: every piece verified"),
            NodeEvent::AnnounceFailed { reason } => {
                tracing::warn!("swarm {name}: announce failed: {reason}");
                self.status.announce_error = Some(reason);
            }
            _ => {}
        }
    }

    fn on_event(&mut self, ev: Event) {
        match ev {
            Event::Dialed(addr, Ok(link)) => {
                let identity = link.identity.clone();
                let conn = self.open_conn(link, true);
                self.input(Input::Connected {
                    conn,
                    addr,
                    outbound: true,
                    identity,
                });
            }
            Event::Dialed(addr, Err(e)) => {
                tracing::debug!("dial {addr} failed: {e}");
                if let Some(m) = &self.spec.metrics {
                    m.dial_failed(&e);
                }
                self.input(Input::ConnectFailed { addr });
            }
            Event::BlockSent { conn, block } => {
                if self.conns.contains_key(&conn) {
                    self.input(Input::BlockSent { conn, block });
                }
            }
            Event::WriterFailed { conn, reason } => self.close(conn, reason),
            Event::BlockRead {
                conn,
                block,
                result,
            } => match result {
                Ok(data) => self.send(conn, WriteItem::Block(block, data)),
                Err(e) => {
                    tracing::error!("reading piece {} for upload: {e}", block.piece);
                    self.close(conn, format!("local read failed: {e}"));
                }
            },
            Event::Verified { piece, result } => {
                let ok = result.unwrap_or_else(|e| {
                    tracing::error!("verifying piece {piece}: {e}");
                    false
                });
                self.input(Input::PieceVerified { piece, ok });
            }
            Event::WebVerified { piece, result } => {
                let outcome = match result {
                    Ok(true) if self.node.have().contains(piece) => Ok(WebOutcome::AlreadyHad),
                    Ok(true) => {
                        self.drop_assembly(piece);
                        self.input(Input::PieceObtained { piece });
                        Ok(WebOutcome::Taken)
                    }
                    Ok(false) => Ok(WebOutcome::BadHash),
                    Err(e) => Err(format!("storing piece {piece} from the web seed: {e}")),
                };
                if let Some(reply) = self.web_pending.remove(&piece) {
                    let _ = reply.send(outcome);
                }
            }
            Event::Hashed { piece, data, ok } => {
                if ok {
                    self.disk(DiskOp::StoreChecked(piece, data));
                } else {
                    ASSEMBLY.give(data.len());
                    self.input(Input::PieceVerified { piece, ok: false });
                }
            }
            Event::DiskFailed(e) => {
                tracing::error!("swarm {}: disk failure: {e}", self.spec.meta.name);
                self.status.fatal = Some(format!("disk failure: {e}"));
            }
            Event::Announced(r) => {
                if let Ok(resp) = &r {
                    self.status.announce_error = None;
                    self.spec
                        .transport
                        .note_revocations(resp.revocation_epoch, &resp.revoked);
                }
                self.input(Input::Announced(r));
            }
        }
    }

    fn on_web_piece(&mut self, web: WebPiece) {
        let WebPiece { piece, data, reply } = web;
        if piece >= self.spec.meta.num_pieces() {
            let _ = reply.send(Err(format!("no piece {piece} in this image")));
        } else if self.node.have().contains(piece) {
            let _ = reply.send(Ok(WebOutcome::AlreadyHad));
        } else {
            match self.web_pending.entry(piece) {
                std::collections::hash_map::Entry::Occupied(_) => {
                    let _ = reply.send(Err(format!("piece {piece} is already being stored")));
                }
                std::collections::hash_map::Entry::Vacant(slot) => {
                    slot.insert(reply);
                    self.disk(DiskOp::WebPiece(piece, data));
                }
            }
        }
    }

    fn on_inbound(&mut self, inb: Inbound) {
        let addr = inb.link.remote;
        let identity = inb.link.identity.clone();
        let conn = self.open_conn(inb.link, false);
        self.input(Input::Connected {
            conn,
            addr,
            outbound: false,
            identity,
        });
        if self.conns.contains_key(&conn) {
            self.input(Input::Handshake {
                conn,
                handshake: inb.handshake,
            });
        }
    }

    fn on_conn_event(&mut self, conn: ConnId, ev: ConnEvent) {
        if !self.conns.contains_key(&conn) {
            return;
        }
        match ev {
            ConnEvent::Handshake(handshake) => self.input(Input::Handshake { conn, handshake }),
            ConnEvent::Message(msg) => self.input(Input::Message { conn, msg }),
            ConnEvent::Closed(reason) => self.close(conn, reason),
        }
    }

    fn close(&mut self, conn: ConnId, reason: String) {
        if self.conns.remove(&conn).is_some() {
            self.hub_conns.remove(&conn);
            self.input(Input::Closed { conn, reason });
        }
    }

    fn open_conn(&mut self, link: PeerLink, outbound: bool) -> ConnId {
        let conn = ConnId(self.next_conn);
        self.next_conn += 1;
        let identity = link.identity.clone();
        let (rd, wr) = tokio::io::split(link.stream);
        let limits = DecoderLimits {
            num_pieces: Some(self.spec.meta.num_pieces()),
            ..DecoderLimits::default()
        };
        let decoder = if outbound {
            Decoder::new(limits)
        } else {
            Decoder::new_after_handshake(limits)
        };
        let (wtx, wrx) = mpsc::channel(conn::WRITER_QUEUE);
        tokio::spawn(conn::writer(
            conn,
            wr,
            wrx,
            self.ev_tx.clone(),
            self.spec.limits.clone(),
        ));
        let reader = tokio::spawn(conn::reader(
            conn,
            rd,
            decoder,
            outbound,
            self.msg_tx.clone(),
            self.spec.limits.clone(),
        ));
        self.conns.insert(
            conn,
            Conn {
                writer: wtx,
                reader,
                identity,
            },
        );
        conn
    }

    fn publish(&mut self, force: bool) {
        let complete = self.node.is_complete();
        let now = tokio::time::Instant::now();
        if !force
            && complete == self.status.complete
            && now.duration_since(self.last_status) < Duration::from_millis(100)
        {
            return;
        }
        self.last_status = now;
        if complete && !self.status.complete {
            self.status.completed_at = Some(std::time::Instant::now());
        }
        self.status.complete = complete;
        self.status.pieces = self.node.have().count();
        if self.status.have.count() != self.status.pieces {
            self.status.have = self.node.have().clone();
        }
        self.status.bytes_left = self.node.bytes_left();
        self.status.peers = self.node.peer_count();
        self.status.peer_pieces = self
            .node
            .sessions()
            .map(|s| u64::from(s.remote_has.count()))
            .sum();
        if self.up_by_identity_dirty {
            self.status.bytes_up_by_identity = Arc::new(self.up_by_identity.clone());
            self.up_by_identity_dirty = false;
        }
        if let Some(m) = &self.spec.metrics {
            m.set_peers(self.status.peers);
        }
        let s = self.status.clone();
        self.status_tx.send_replace(s);
    }
}

#[cfg(test)]
mod flood_tests {
    //! The swarm task's timers under a message flood, on tokio's paused clock.

    use std::sync::atomic::{AtomicUsize, Ordering};

    use swarmhub_core::wire::{Handshake, Message};
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    use super::*;
    use crate::peer::listener::Inbound;
    use crate::peer::{PeerLink, PlainTcp};

    /// Peers flood keep-alives as fast as the swarm reads them and never
    /// answers a request; the clock is moved by hand. With the timer polled
    /// last, the always-ready message channel would starve it: no announce
    /// and no request timeout would ever fire. (Rechokes, request timeouts and
    /// announces all wake through the node's single `Output::Timeout`.)
    const FLOODERS: u8 = 8;

    #[tokio::test(start_paused = true)]
    async fn timers_fire_on_time_while_peers_flood_messages() {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::write(dir.path().join("a.bin"), vec![7u8; 1 << 20]).expect("write");
        let inputs = crate::store::collect_inputs(&[dir.path().join("a.bin")]).expect("inputs");
        let meta = Arc::new(crate::store::build_metainfo("t:1", &inputs, None).expect("meta"));
        let storage =
            Arc::new(Storage::open(&dir.path().join("dl"), meta.clone(), true).expect("storage"));
        let announces = Arc::new(AtomicUsize::new(0));
        let counted = announces.clone();
        let announcer = Announcer::Local(Arc::new(move |_, _, _| {
            counted.fetch_add(1, Ordering::Relaxed);
            Ok(AnnounceResponse {
                interval_s: 60,
                min_interval_s: 30,
                complete: 1,
                incomplete: 1,
                peers: Vec::new(),
                near_peers: 0,
                site: None,
                revocation_epoch: 0,
                revoked: Vec::new(),
            })
        }));
        let registry = Registry::default();
        let handle = spawn_swarm(SwarmSpec {
            meta: meta.clone(),
            storage,
            have: PieceSet::new(meta.num_pieces()),
            peer_id: Id20::new([1; 20]),
            listen_port: 6881,
            transport: Arc::new(PlainTcp::default()),
            announcer,
            limits: Arc::new(Limits::new(0, 0)),
            registry: registry.clone(),
            hub: None,
            metrics: None,
            max_peers: None,
        })
        .expect("swarm");

        // Eight flooding peers, on in-memory pipes.
        let inbound = registry.get(&meta.info_hash).expect("registered");
        let cancels = Arc::new(AtomicUsize::new(0));
        for i in 0..FLOODERS {
            let (ours, theirs) = tokio::io::duplex(64 * 1024);
            let (mut their_rd, mut their_wr) = tokio::io::split(theirs);
            inbound
                .send(Inbound {
                    link: PeerLink {
                        stream: Box::new(ours),
                        remote: std::net::SocketAddr::from(([127, 0, 0, 2 + i], 6881)),
                        identity: None,
                    },
                    handshake: Handshake {
                        info_hash: meta.info_hash,
                        peer_id: Id20::new([2 + i; 20]),
                        extended: false,
                        fast: false,
                    },
                })
                .await
                .expect("inbound");
            let mut hello = Vec::new();
            let all = PieceSet::full(meta.num_pieces());
            Message::Bitfield(all.to_bitfield().into())
                .encode(&mut hello)
                .unwrap();
            Message::Unchoke.encode(&mut hello).unwrap();
            their_wr.write_all(&hello).await.expect("hello");
            tokio::spawn(async move {
                let burst = vec![0u8; 4 * 4096]; // 4,096 keep-alives
                while their_wr.write_all(&burst).await.is_ok() {}
            });
            let seen = cancels.clone();
            tokio::spawn(async move {
                let mut decoder = Decoder::new(DecoderLimits::default());
                let mut buf = vec![0u8; 64 * 1024];
                let mut handshaken = false;
                while let Ok(n) = their_rd.read(&mut buf).await {
                    if n == 0 {
                        break;
                    }
                    decoder.push(&buf[..n]);
                    if !handshaken {
                        match decoder.poll_handshake() {
                            Ok(Some(_)) => handshaken = true,
                            _ => continue,
                        }
                    }
                    while let Ok(Some(m)) = decoder.poll_message() {
                        if matches!(m, Message::Cancel(_)) {
                            seen.fetch_add(1, Ordering::Relaxed);
                        }
                    }
                }
            });
        }

        // Ten simulated minutes in 100 ms steps, the flood running throughout.
        for _ in 0..6_000 {
            tokio::time::advance(Duration::from_millis(100)).await;
            tokio::task::yield_now().await;
        }
        let n = announces.load(Ordering::Relaxed);
        assert!(n >= 8, "{n} announces in 10 minutes at a 60 s interval");
        let c = cancels.load(Ordering::Relaxed);
        assert!(c > 0, "no request timed out (no cancel) in 10 minutes");
        assert_eq!(
            handle.status.borrow().peers,
            usize::from(FLOODERS),
            "the flooding peers stay"
        );
        handle.shutdown().await;
    }
}
