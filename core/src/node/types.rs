//! Inputs, outputs, events and configuration of the swarm [`Node`](super::Node).

use core::net::SocketAddr;

use crate::choker::ChokerConfig;
use crate::metainfo::Geometry;
use crate::picker::PickerConfig;
use crate::session::{SessionConfig, Violation};
use crate::time::Duration;
use crate::tracker::{AnnounceEvent, AnnounceResponse};
use crate::wire::{BlockRef, Handshake, Message};
use crate::{ConnId, Id20};

/// Everything a node needs to know about its image and its behaviour.
#[derive(Clone, Debug, PartialEq)]
pub struct NodeConfig {
    /// The image's info hash.
    pub info_hash: Id20,
    /// Our peer id (20 bytes; drivers make it from a prefix and random bytes).
    pub peer_id: Id20,
    /// Sizes of the image, its pieces and blocks.
    pub geometry: Geometry,
    /// Port we accept peers on, told to the tracker and in the extended handshake.
    pub listen_port: u16,
    /// Refuse peers whose identity the driver could not verify. Default: true.
    pub require_auth: bool,
    /// Most connections at once. Default: 50.
    pub max_peers: usize,
    /// Peers always dialed first and redialed after a loss, whatever the
    /// tracker's sample says: the hub's seeders. Default: none.
    pub pinned_peers: Vec<SocketAddr>,
    /// Our upload capacity in bytes per second, when known (the configured
    /// upload limit, or the link speed). While measured upload stays below 90%
    /// of it, each rechoke opens one more regular slot (up to
    /// `choker.max_slots`), so an uplink whose unchoked peers are busy
    /// downloading from others does not sit idle; above 98% it closes one.
    /// Default: unknown (fixed slots).
    pub upload_capacity_bps: Option<u64>,
    /// Once complete, seed by advertising a piece or two at a time (see
    /// `node::superseed`) so each piece leaves this node about once. For the
    /// hub. Default: false.
    pub super_seed: bool,
    /// Pieces advertised to a peer at once when super-seeding. Default: 2.
    pub super_seed_pieces: usize,
    /// A piece that other peers hold is advertised at most this many times
    /// (pieces nobody else has are always advertised). Default: 2.
    pub super_seed_max_adverts: u32,
    /// Fewer downloading peers connected than this and super-seeding gives way
    /// to normal seeding (a small swarm cannot trade). Default: 4.
    pub super_seed_min_peers: usize,
    /// A peer that finished its advertised pieces and saw nobody take them for
    /// this long is served normally. Default: 10 s.
    pub super_seed_stall: Duration,
    /// A downloading peer with nothing advertised to it that has announced no
    /// new piece for this long is served normally: the peers it was to trade
    /// with may be gone or bad (corrupt peers it banned still count as holders
    /// here). A healthy swarm never waits this long. Default: 120 s.
    pub super_seed_idle: Duration,
    /// Once the hub told us our site: most connections to peers of other
    /// sites at once, the hub's pinned seeders aside (see `node::locality`).
    /// Enough for the pieces our site lacks to flow in; few, so that each
    /// piece crosses a thin inter-site link about once. Default: 1 (2 gave
    /// 1.45 copies across the link of a two-site trial, 1 gave 1.40).
    pub cross_site_peers: usize,
    /// Peers asked from the tracker per announce. Default: 50.
    pub numwant: u32,
    /// Wait this long before retrying a failed announce. Default: 30 s.
    pub announce_retry: Duration,
    /// Hash failures a peer may contribute to before it is banned (a peer that
    /// alone supplied a failed piece is banned at once). Default: 3.
    pub ban_after_failures: u32,
    /// How often per-connection timers are checked. Default: 1 s (the
    /// shortest of them is the 10 s handshake timeout).
    pub timer_tick: Duration,
    /// Client name sent in the extended handshake.
    pub client_name: String,
    /// Piece picker knobs.
    pub picker: PickerConfig,
    /// Choker knobs.
    pub choker: ChokerConfig,
    /// Per-connection knobs.
    pub session: SessionConfig,
}

impl NodeConfig {
    /// Defaults for an image with `info_hash` and `geometry`.
    pub fn new(info_hash: Id20, peer_id: Id20, geometry: Geometry) -> Self {
        NodeConfig {
            info_hash,
            peer_id,
            geometry,
            listen_port: 6881,
            require_auth: true,
            max_peers: 50,
            pinned_peers: Vec::new(),
            upload_capacity_bps: None,
            super_seed: false,
            super_seed_pieces: 2,
            super_seed_max_adverts: 2,
            super_seed_min_peers: 4,
            super_seed_stall: Duration::from_secs(10),
            super_seed_idle: Duration::from_secs(120),
            cross_site_peers: 1,
            numwant: 50,
            announce_retry: Duration::from_secs(30),
            ban_after_failures: 3,
            timer_tick: Duration::from_secs(1),
            client_name: concat!("swarmhub/", env!("CARGO_PKG_VERSION")).to_string(),
            picker: PickerConfig::default(),
            choker: ChokerConfig::default(),
            session: SessionConfig::default(),
        }
    }
}

/// Something the driver tells the node.
#[derive(Clone, Debug)]
pub enum Input {
    /// Nothing happened but time passed (a timer the node asked for fired).
    Timeout,
    /// Begin taking part: announce `started` and connect to peers.
    Start,
    /// Leave the swarm: announce `stopped` and close every connection.
    Shutdown,
    /// A connection came up. `identity` is what the driver verified (TLS client
    /// certificate); `None` means unauthenticated.
    Connected {
        /// The driver's id for the connection.
        conn: ConnId,
        /// Remote address.
        addr: SocketAddr,
        /// We dialed it (after an [`Output::Connect`]).
        outbound: bool,
        /// Verified identity of the remote, if any.
        identity: Option<String>,
    },
    /// A dial requested by [`Output::Connect`] failed.
    ConnectFailed {
        /// The address dialed.
        addr: SocketAddr,
    },
    /// The remote's handshake arrived.
    Handshake {
        /// Connection.
        conn: ConnId,
        /// Decoded handshake.
        handshake: Handshake,
    },
    /// A message arrived (decoded by the driver with [`crate::wire::Decoder`]).
    Message {
        /// Connection.
        conn: ConnId,
        /// The message.
        msg: Message,
    },
    /// The connection closed (remote hung up, I/O error, undecodable bytes).
    Closed {
        /// Connection.
        conn: ConnId,
        /// What the driver saw, for logs and events.
        reason: String,
    },
    /// A piece message asked for by [`Output::SendBlock`] was fully written.
    BlockSent {
        /// Connection.
        conn: ConnId,
        /// The block.
        block: BlockRef,
    },
    /// The verdict on [`Output::VerifyPiece`]: did the stored piece hash right?
    PieceVerified {
        /// Piece index.
        piece: u32,
        /// Hash matched.
        ok: bool,
    },
    /// A piece was fetched and verified outside the swarm (the hub's HTTP web
    /// seed): the node takes it as its own, cancels requests for it and tells
    /// its peers.
    PieceObtained {
        /// Piece index.
        piece: u32,
    },
    /// The tracker's answer to [`Output::Announce`], or why it failed.
    Announced(Result<AnnounceResponse, String>),
}

/// What the node asks the tracker client of the driver to send.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AnnounceParams {
    /// Event to report.
    pub event: AnnounceEvent,
    /// Block bytes uploaded so far.
    pub uploaded: u64,
    /// Block bytes downloaded so far.
    pub downloaded: u64,
    /// Bytes still missing.
    pub left: u64,
    /// Peers wanted.
    pub numwant: u32,
    /// Our listen port.
    pub port: u16,
}

impl AnnounceParams {
    /// The tracker request for these figures, from the peer `peer_id` of
    /// image `info_hash` reached at `ip`.
    pub fn to_request(
        &self,
        info_hash: Id20,
        peer_id: Id20,
        ip: core::net::IpAddr,
    ) -> crate::tracker::AnnounceRequest {
        crate::tracker::AnnounceRequest {
            info_hash,
            peer_id,
            ip,
            port: self.port,
            uploaded: self.uploaded,
            downloaded: self.downloaded,
            left: self.left,
            event: self.event,
            numwant: Some(self.numwant),
            compact: true,
        }
    }
}

/// Something the node asks the driver to do, or tells it.
#[derive(Clone, Debug)]
pub enum Output {
    /// Send our handshake on `conn`.
    SendHandshake {
        /// Connection.
        conn: ConnId,
        /// Handshake to encode and send.
        handshake: Handshake,
    },
    /// Send a message on `conn`.
    Transmit {
        /// Connection.
        conn: ConnId,
        /// Message to encode and send.
        msg: Message,
    },
    /// Read `block` from storage and send it as a piece message on `conn`;
    /// report [`Input::BlockSent`] once written.
    SendBlock {
        /// Connection.
        conn: ConnId,
        /// Block to read and send.
        block: BlockRef,
    },
    /// Write a received block to storage (not yet verified).
    StoreBlock {
        /// Where it goes.
        block: BlockRef,
        /// The bytes (empty in the simulator, which moves no payload).
        data: bytes::Bytes,
    },
    /// Hash the stored piece and report [`Input::PieceVerified`].
    VerifyPiece {
        /// Piece index.
        piece: u32,
    },
    /// Dial a peer; report [`Input::Connected`] or [`Input::ConnectFailed`].
    Connect {
        /// Address to dial.
        addr: SocketAddr,
    },
    /// Close a connection (the node already forgot it; no `Closed` is needed).
    Disconnect {
        /// Connection.
        conn: ConnId,
    },
    /// Announce to the tracker; report [`Input::Announced`].
    Announce(AnnounceParams),
    /// Something happened that the driver may log or count.
    Event(NodeEvent),
    /// Nothing more to do until this instant (or an input arrives).
    Timeout(crate::Instant),
}

/// Why the node closed a connection.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DisconnectReason {
    /// The remote broke the protocol.
    #[error("protocol violation: {0}")]
    Violation(#[from] Violation),
    /// The remote is banned.
    #[error("banned peer")]
    Banned,
    /// Peer authentication is required and the driver verified no identity.
    #[error("peer not authenticated")]
    NotAuthenticated,
    /// Handshake for another image.
    #[error("handshake for another info hash")]
    WrongInfoHash,
    /// We connected to ourselves.
    #[error("connected to ourselves")]
    OwnPeerId,
    /// Already connected to this peer id.
    #[error("duplicate connection to the same peer")]
    DuplicatePeer,
    /// Connection limit reached.
    #[error("too many peers")]
    TooManyPeers,
    /// No handshake in time.
    #[error("handshake timed out")]
    HandshakeTimeout,
    /// Silent for too long.
    #[error("idle timeout")]
    IdleTimeout,
    /// Both sides are complete: nothing to trade.
    #[error("both sides are seeds")]
    BothSeeds,
    /// The tracker says this identity was revoked.
    #[error("identity revoked")]
    Revoked,
    /// We are leaving the swarm.
    #[error("shutting down")]
    Shutdown,
    /// The driver reported the connection closed.
    #[error("closed: {0}")]
    Closed(String),
}

/// Why a peer was banned.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum BanReason {
    /// The peer alone supplied every block of a piece that failed its hash.
    #[error("sole source of piece {piece} that failed its hash")]
    SoleSourceOfBadPiece {
        /// The piece.
        piece: u32,
    },
    /// The peer contributed to too many pieces that failed their hash.
    #[error("contributed to {failures} pieces that failed their hash")]
    TooManyHashFailures {
        /// Failed pieces it contributed to.
        failures: u32,
    },
    /// The tracker revoked the peer's identity.
    #[error("identity revoked by the hub")]
    Revoked,
}

/// Things worth logging or counting.
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub enum NodeEvent {
    /// Handshake done with a peer.
    PeerConnected {
        /// Connection.
        conn: ConnId,
        /// Its peer id.
        peer_id: Id20,
        /// Its verified identity.
        identity: Option<String>,
    },
    /// A connection ended.
    PeerDisconnected {
        /// Connection.
        conn: ConnId,
        /// Why.
        reason: DisconnectReason,
    },
    /// A peer was banned and will not be accepted or dialed again.
    PeerBanned {
        /// Connection it had.
        conn: ConnId,
        /// Its address.
        addr: SocketAddr,
        /// Its verified identity.
        identity: Option<String>,
        /// Why.
        reason: BanReason,
    },
    /// A block arrived and was accepted.
    BlockReceived {
        /// From.
        conn: ConnId,
        /// Bytes.
        bytes: u32,
    },
    /// A block arrived that was not needed (a duplicate, or never
    /// requested): counted in [`crate::node::NodeStats::bytes_wasted`].
    BlockWasted {
        /// From.
        conn: ConnId,
        /// Bytes.
        bytes: u32,
    },
    /// A block was sent.
    BlockUploaded {
        /// To.
        conn: ConnId,
        /// Bytes.
        bytes: u32,
    },
    /// A piece passed its hash check.
    PieceVerified {
        /// Piece.
        piece: u32,
    },
    /// A piece failed its hash check and is downloaded again.
    PieceFailed {
        /// Piece.
        piece: u32,
    },
    /// Every piece is verified.
    Complete,
    /// An announce failed; retried later.
    AnnounceFailed {
        /// What the driver or tracker said.
        reason: String,
    },
}

/// A mistake of the caller (the driver), as opposed to a peer's misbehaviour,
/// which is an event.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ApiError {
    /// `Connected` reused a connection id that is still open.
    #[error("connection id {0:?} is already in use")]
    ConnIdInUse(ConnId),
    /// A verdict for a piece that was not handed out for verification.
    #[error("piece {0} was not awaiting verification")]
    NotVerifying(u32),
    /// An input arrived after `Shutdown`.
    #[error("the node has shut down")]
    ShutDown,
}
