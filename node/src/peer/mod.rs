//! The peer driver: moves bytes and timers for swarmhub-core [`Node`]s.
//!
//! - [`Transport`] turns a TCP connection into a peer link and reports the
//!   remote's verified identity. [`PlainTcp`] reports none; the TLS transport of
//!   the next issue slots in here without touching the rest.
//! - [`listener`]: one TCP listener per process on the first free port of a
//!   range; it reads the 68-byte handshake and hands the link to the swarm of
//!   that info hash.
//! - [`driver`]: one tokio task per swarm (image) owning a [`Node`], with a
//!   reader and a writer task per connection and a disk thread.
//!
//! [`Node`]: swarmhub_core::Node

pub mod announce;
mod conn;
mod disk;
pub mod driver;
pub mod listener;

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::str::FromStr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;

pub use announce::Announcer;
pub use driver::{spawn_swarm, SwarmHandle, SwarmSpec, SwarmStatus, WebOutcome, WebSeedSink};
pub use listener::{bind_first_free, spawn_counted_listener, spawn_listener, Registry};

/// Peer id prefix of clients (Azureus style).
pub const CLIENT_PEER_ID_PREFIX: &[u8; 8] = b"-SH0100-";
/// Peer id prefix of the hub seeder: lets clients count bytes from the hub.
pub const HUB_PEER_ID_PREFIX: &[u8; 8] = b"-SHhub1-";

/// A boxed future, for the object-safe [`Transport`].
pub type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send>>;

/// A byte stream to a peer: plain TCP today, TLS tomorrow.
pub trait PeerStream: AsyncRead + AsyncWrite + Unpin + Send + 'static {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send + 'static> PeerStream for T {}

/// An established link to a peer, before any BitTorrent byte.
pub struct PeerLink {
    /// The stream.
    pub stream: Box<dyn PeerStream>,
    /// Remote address.
    pub remote: SocketAddr,
    /// The identity the transport verified, if it verifies any.
    pub identity: Option<String>,
}

/// How peer links are made: accepting a TCP connection and dialing an address.
pub trait Transport: Send + Sync + 'static {
    /// Secure (or not) an accepted connection.
    fn accept(&self, tcp: TcpStream, remote: SocketAddr) -> BoxFuture<io::Result<PeerLink>>;
    /// Dial a peer.
    fn connect(&self, addr: SocketAddr) -> BoxFuture<io::Result<PeerLink>>;
    /// Whether links carry verified identities (then nodes refuse links without one).
    fn authenticates(&self) -> bool;
    /// The tracker's revoked identities of revocation `epoch` (from an announce
    /// reply): refuse them on new links. Open links are the node's business.
    fn note_revocations(&self, epoch: u64, revoked: &[String]) {
        let _ = (epoch, revoked);
    }
}

/// Plain TCP, no identity.
#[derive(Clone, Debug)]
pub struct PlainTcp {
    /// Give up dialing after this long.
    pub connect_timeout: Duration,
}

impl Default for PlainTcp {
    fn default() -> Self {
        PlainTcp {
            connect_timeout: Duration::from_secs(5),
        }
    }
}

impl Transport for PlainTcp {
    fn accept(&self, tcp: TcpStream, remote: SocketAddr) -> BoxFuture<io::Result<PeerLink>> {
        Box::pin(async move {
            tcp.set_nodelay(true)?;
            Ok(PeerLink {
                stream: Box::new(tcp),
                remote,
                identity: None,
            })
        })
    }

    fn connect(&self, addr: SocketAddr) -> BoxFuture<io::Result<PeerLink>> {
        let limit = self.connect_timeout;
        Box::pin(async move {
            let tcp = tokio::time::timeout(limit, TcpStream::connect(addr))
                .await
                .map_err(|_| io::Error::new(io::ErrorKind::TimedOut, "connect timed out"))??;
            tcp.set_nodelay(true)?;
            Ok(PeerLink {
                stream: Box::new(tcp),
                remote: addr,
                identity: None,
            })
        })
    }

    fn authenticates(&self) -> bool {
        false
    }
}

/// Mutual TLS or plain TCP, switched at run time (the hub's `peer_tls`
/// setting). Swarms read [`Transport::authenticates`] when they start, so
/// the owner restarts them after a switch.
pub struct SwitchTransport {
    tls: Arc<dyn Transport>,
    plain: PlainTcp,
    tls_on: AtomicBool,
}

impl SwitchTransport {
    /// Start with TLS on or off.
    pub fn new(tls: Arc<dyn Transport>, tls_on: bool) -> Self {
        SwitchTransport {
            tls,
            plain: PlainTcp::default(),
            tls_on: AtomicBool::new(tls_on),
        }
    }

    /// Switch; returns whether anything changed.
    pub fn set_tls(&self, on: bool) -> bool {
        self.tls_on.swap(on, Ordering::SeqCst) != on
    }

    fn on(&self) -> bool {
        self.tls_on.load(Ordering::SeqCst)
    }
}

impl Transport for SwitchTransport {
    fn accept(&self, tcp: TcpStream, remote: SocketAddr) -> BoxFuture<io::Result<PeerLink>> {
        if self.on() {
            self.tls.accept(tcp, remote)
        } else {
            self.plain.accept(tcp, remote)
        }
    }

    fn connect(&self, addr: SocketAddr) -> BoxFuture<io::Result<PeerLink>> {
        if self.on() {
            self.tls.connect(addr)
        } else {
            self.plain.connect(addr)
        }
    }

    fn authenticates(&self) -> bool {
        self.on()
    }

    fn note_revocations(&self, epoch: u64, revoked: &[String]) {
        self.tls.note_revocations(epoch, revoked);
    }
}

/// A TCP port range such as `6881-6889`; `0` asks the OS for any free port.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PortRange {
    /// First port.
    pub first: u16,
    /// Last port (inclusive).
    pub last: u16,
}

impl Default for PortRange {
    fn default() -> Self {
        PortRange {
            first: 6881,
            last: 6889,
        }
    }
}

impl FromStr for PortRange {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        let bad = || {
            format!("port range {s:?}: write FIRST-LAST (e.g. 6881-6889), one port, or 0 for any free port")
        };
        let (a, b) = s.split_once('-').unwrap_or((s, s));
        let first: u16 = a.trim().parse().map_err(|_| bad())?;
        let last: u16 = b.trim().parse().map_err(|_| bad())?;
        if last < first || (first == 0 && last != 0) {
            return Err(bad());
        }
        Ok(PortRange { first, last })
    }
}

impl std::fmt::Display for PortRange {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.first == self.last {
            write!(f, "{}", self.first)
        } else {
            write!(f, "{}-{}", self.first, self.last)
        }
    }
}

/// A fresh peer id with `prefix` and random bytes.
pub fn new_peer_id(prefix: &[u8; 8]) -> swarmhub_core::Id20 {
    let mut id = [0u8; 20];
    id[..8].copy_from_slice(prefix);
    let mut rest = [0u8; 12];
    let _ = getrandom::fill(&mut rest);
    for (slot, b) in id[8..].iter_mut().zip(rest) {
        // Printable, like most clients: 0-9a-z.
        *slot = b"0123456789abcdefghijklmnopqrstuvwxyz"[usize::from(b) % 36];
    }
    swarmhub_core::Id20::new(id)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn port_ranges_parse() {
        assert_eq!(
            "6881-6889".parse(),
            Ok(PortRange {
                first: 6881,
                last: 6889
            })
        );
        assert_eq!("0".parse(), Ok(PortRange { first: 0, last: 0 }));
        assert!("9-1".parse::<PortRange>().is_err());
        assert!("0-5".parse::<PortRange>().is_err());
        assert!("x".parse::<PortRange>().is_err());
        assert!("70000".parse::<PortRange>().is_err());
    }

    #[test]
    fn peer_ids_keep_their_prefix() {
        let a = new_peer_id(HUB_PEER_ID_PREFIX);
        assert_eq!(&a.0[..8], HUB_PEER_ID_PREFIX);
        assert_ne!(a, new_peer_id(HUB_PEER_ID_PREFIX));
    }
}
