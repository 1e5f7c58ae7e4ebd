//! The tracker's public data types: requests, answers, errors, config.

use core::net::IpAddr;

use crate::time::{Duration, Instant};
use crate::Id20;

/// The `event` key of an announce.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum AnnounceEvent {
    /// The peer joined the swarm.
    Started,
    /// The peer finished downloading (it is a seeder from now on).
    Completed,
    /// The peer leaves the swarm.
    Stopped,
    /// A regular re-announce (no `event` key on the wire).
    Periodic,
}

/// An announce, as parsed from the query string (or built by a client).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AnnounceRequest {
    /// The swarm (torrent) announced.
    pub info_hash: Id20,
    /// The announcing client's peer id.
    pub peer_id: Id20,
    /// Address peers should connect to (the request's remote address).
    pub ip: IpAddr,
    /// Port peers should connect to; never 0.
    pub port: u16,
    /// Bytes uploaded in this swarm so far.
    pub uploaded: u64,
    /// Bytes downloaded in this swarm so far.
    pub downloaded: u64,
    /// Bytes still missing; 0 means seeder.
    pub left: u64,
    /// Why the client announces.
    pub event: AnnounceEvent,
    /// Peers wanted; `None` takes the tracker's default.
    pub numwant: Option<u32>,
    /// Whether the client asked for a compact list (we always answer compact).
    pub compact: bool,
}

/// Who sent a request, as the driver established it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Auth {
    /// No client certificate or passkey.
    Anonymous,
    /// A known credential. `registered` is false when the user database no
    /// longer (or never) listed the identity.
    Verified {
        /// The identity named by the certificate or passkey.
        identity: String,
        /// Whether the user database lists the identity.
        registered: bool,
    },
}

/// Where a peer listens.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct PeerAddr {
    /// IP address (IPv4-mapped IPv6 addresses are stored as IPv4).
    pub ip: IpAddr,
    /// TCP port.
    pub port: u16,
}

/// One peer of a swarm as its announces describe it (for the hub's swarm view).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PeerView {
    /// The peer id it announced with.
    pub peer_id: Id20,
    /// The authenticated identity behind it.
    pub identity: String,
    /// Its site, when the hub knows one.
    pub site: Option<String>,
    /// Where it listens.
    pub addr: PeerAddr,
    /// Bytes it still lacks.
    pub left: u64,
    /// Bytes it reported uploaded.
    pub uploaded: u64,
    /// Bytes it reported downloaded.
    pub downloaded: u64,
    /// When it last announced.
    pub last_announce: Instant,
}

/// The answer to a successful announce.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AnnounceResponse {
    /// Seconds until the next regular announce.
    pub interval_s: u32,
    /// Seconds a client should at least wait between announces.
    pub min_interval_s: u32,
    /// Seeders in the swarm.
    pub complete: u32,
    /// Leechers in the swarm.
    pub incomplete: u32,
    /// Random peers to connect to, same site first.
    pub peers: Vec<PeerAddr>,
    /// The first `near_peers` entries of `peers` are in the caller's site
    /// (0 when the hub knows no site for the caller).
    pub near_peers: u32,
    /// The caller's site, when the hub knows one.
    pub site: Option<String>,
    /// Revocation epoch of the tracker; grows with every revocation.
    pub revocation_epoch: u64,
    /// Every revoked identity, sorted, so peers can drop connections to them.
    /// Sent on a peer's first announce after the epoch moved; empty means
    /// "nothing new since your last announce".
    pub revoked: Vec<String>,
}

/// Why an announce was refused. The `Display` text is the BEP 3
/// `failure reason`; [`AnnounceError::http_status`] gives the status code.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum AnnounceError {
    /// No credential came with the request.
    #[error("not authenticated: announce with a hub-issued client certificate or passkey")]
    NotAuthenticated,
    /// The credential names an identity the user database does not list.
    #[error("identity {identity:?} is not registered on this hub; ask an operator to add it")]
    NotRegistered {
        /// The identity of the credential.
        identity: String,
    },
    /// The identity was revoked.
    #[error("identity {identity:?} has been revoked")]
    Revoked {
        /// The revoked identity.
        identity: String,
    },
    /// The hub does not serve this info hash.
    #[error("unknown info_hash {}: this hub does not serve that image", info_hash.as_string())]
    UnknownSwarm {
        /// The info hash announced.
        info_hash: Id20,
    },
    /// Another identity already announces this peer id in this swarm.
    #[error("peer_id {} is in use by another identity in this swarm", peer_id.as_string())]
    PeerIdTaken {
        /// The contested peer id.
        peer_id: Id20,
    },
    /// Port 0 cannot be connected to.
    #[error("port 0 is not a valid listening port")]
    InvalidPort,
}

impl AnnounceError {
    /// The HTTP status a hub should answer with.
    pub fn http_status(&self) -> u16 {
        match self {
            AnnounceError::NotAuthenticated => 401,
            AnnounceError::NotRegistered { .. } | AnnounceError::Revoked { .. } => 403,
            AnnounceError::UnknownSwarm { .. } => 404,
            AnnounceError::PeerIdTaken { .. } => 409,
            AnnounceError::InvalidPort => 400,
        }
    }
}

/// Tracker knobs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TrackerConfig {
    /// Time between regular announces. Default 120 s: a hub's clients pull
    /// images in minutes, so peer lists must refresh faster than the usual
    /// 30 min of public trackers; 10,000 clients then cost ~83 announces/s.
    pub interval: Duration,
    /// Minimum time between announces told to clients. Default 30 s.
    pub min_interval: Duration,
    /// A peer is dropped by [`Tracker::expire`](super::Tracker::expire) once
    /// it has been silent for this many intervals plus half an interval of
    /// slack (`interval * n + interval / 2`). Default 2; 0 counts as 1.
    pub expire_after_missed: u32,
    /// Peers returned when the request has no `numwant`. Default 50.
    pub default_numwant: u32,
    /// Upper bound on peers returned. Default 200.
    pub max_numwant: u32,
    /// Refuse announces for info hashes not added with
    /// [`Tracker::add_swarm`](super::Tracker::add_swarm). Default true (the
    /// hub serves its own images only); when false, unknown swarms are
    /// created on first announce and dropped when they empty.
    pub only_known_swarms: bool,
}

impl Default for TrackerConfig {
    fn default() -> Self {
        TrackerConfig {
            interval: Duration::from_secs(120),
            min_interval: Duration::from_secs(30),
            expire_after_missed: 2,
            default_numwant: 50,
            max_numwant: 200,
            only_known_swarms: true,
        }
    }
}

impl TrackerConfig {
    /// How long a peer may stay silent before it expires.
    pub fn expiry_window(&self) -> Duration {
        let intervals = u64::from(self.expire_after_missed.max(1));
        let us = self.interval.as_micros();
        Duration::from_micros(us.saturating_mul(intervals).saturating_add(us / 2))
    }
}

/// Counters of one swarm.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SwarmStats {
    /// Peers with nothing left to download.
    pub seeders: u32,
    /// Peers still downloading.
    pub leechers: u32,
    /// `completed` events counted (once per peer entry) since the swarm exists.
    pub completed: u64,
    /// Sum of the `uploaded` figures the current peers last reported.
    pub uploaded: u64,
    /// Sum of the `downloaded` figures the current peers last reported.
    pub downloaded: u64,
}
