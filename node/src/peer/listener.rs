//! The peer listener: accepts links, reads the handshake, routes by info hash.

use std::collections::HashMap;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use swarmhub_core::wire::Handshake;
use swarmhub_core::Id20;
use tokio::io::AsyncReadExt;
use tokio::net::TcpListener;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use super::{PeerLink, PortRange, Transport};
use crate::metrics::LinkMetrics;
use crate::util::hex;

/// Time a remote has to finish the transport setup and send its handshake.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// An accepted link whose handshake names a swarm we serve.
pub struct Inbound {
    /// The link.
    pub link: PeerLink,
    /// The remote's handshake (already read from the stream).
    pub handshake: Handshake,
}

/// The swarms a listener routes to, by info hash.
#[derive(Clone, Default)]
pub struct Registry(Arc<Mutex<HashMap<Id20, mpsc::Sender<Inbound>>>>);

impl Registry {
    /// Route links for `info_hash` to `tx`.
    pub fn insert(&self, info_hash: Id20, tx: mpsc::Sender<Inbound>) {
        if let Ok(mut m) = self.0.lock() {
            m.insert(info_hash, tx);
        }
    }

    /// Stop routing `info_hash`.
    pub fn remove(&self, info_hash: &Id20) {
        if let Ok(mut m) = self.0.lock() {
            m.remove(info_hash);
        }
    }

    pub(super) fn get(&self, info_hash: &Id20) -> Option<mpsc::Sender<Inbound>> {
        self.0.lock().ok()?.get(info_hash).cloned()
    }
}

/// Connections the kernel queues for `accept` on our listeners (the kernel
/// caps it at `net.core.somaxconn`): a flash crowd of thousands of clients
/// connects to the hub within a second, more than the default 1,024.
pub const LISTEN_BACKLOG: u32 = 8192;

/// A listening socket on `addr` with [`LISTEN_BACKLOG`].
pub fn listen(addr: SocketAddr) -> io::Result<TcpListener> {
    let socket = if addr.is_ipv4() {
        tokio::net::TcpSocket::new_v4()?
    } else {
        tokio::net::TcpSocket::new_v6()?
    };
    socket.set_reuseaddr(true)?;
    socket.bind(addr)?;
    socket.listen(LISTEN_BACKLOG)
}

/// Bind the first free port of `ports` on `ip`.
pub async fn bind_first_free(ip: IpAddr, ports: PortRange) -> io::Result<TcpListener> {
    let mut last = None;
    for port in ports.first..=ports.last {
        match listen(SocketAddr::new(ip, port)) {
            Ok(l) => return Ok(l),
            Err(e) => last = Some(e),
        }
    }
    Err(io::Error::new(
        io::ErrorKind::AddrInUse,
        format!(
            "no free port in {ports} on {ip}: {}",
            last.map_or_else(|| "empty range".to_owned(), |e| e.to_string())
        ),
    ))
}

/// Accept peers on `listener` until the task is aborted.
pub fn spawn_listener(
    listener: TcpListener,
    transport: Arc<dyn Transport>,
    registry: Registry,
) -> JoinHandle<()> {
    spawn(listener, transport, registry, None)
}

/// [`spawn_listener`], counting accepted and refused links and failed TLS
/// handshakes in `metrics`.
pub fn spawn_counted_listener(
    listener: TcpListener,
    transport: Arc<dyn Transport>,
    registry: Registry,
    metrics: LinkMetrics,
) -> JoinHandle<()> {
    spawn(listener, transport, registry, Some(metrics))
}

fn spawn(
    listener: TcpListener,
    transport: Arc<dyn Transport>,
    registry: Registry,
    metrics: Option<LinkMetrics>,
) -> JoinHandle<()> {
    tokio::spawn(async move {
        loop {
            let (tcp, remote) = match listener.accept().await {
                Ok(x) => x,
                Err(e) => {
                    tracing::warn!("peer listener: accept failed: {e}");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            };
            if let Some(m) = &metrics {
                m.accepted();
            }
            let transport = transport.clone();
            let registry = registry.clone();
            let metrics = metrics.clone();
            tokio::spawn(async move {
                if let Err(refusal) = route(tcp, remote, transport, registry).await {
                    tracing::info!("peer {remote}: refused: {}", refusal.text);
                    if let Some(m) = &metrics {
                        if let Some(tls) = refusal.tls {
                            m.tls_failed(tls);
                        }
                        m.refused(refusal.reason);
                    }
                }
            });
        }
    })
}

/// Why the listener dropped a link: a fixed word for metrics, the TLS
/// failure reason when the transport setup failed, and a sentence for the log.
struct Refusal {
    reason: &'static str,
    tls: Option<&'static str>,
    text: String,
}

fn refusal(reason: &'static str, text: impl Into<String>) -> Refusal {
    Refusal {
        reason,
        tls: None,
        text: text.into(),
    }
}

async fn route(
    tcp: tokio::net::TcpStream,
    remote: SocketAddr,
    transport: Arc<dyn Transport>,
    registry: Registry,
) -> Result<(), Refusal> {
    let tls = transport.authenticates();
    let setup = tokio::time::timeout(HANDSHAKE_TIMEOUT, transport.accept(tcp, remote)).await;
    let mut link = match setup {
        Ok(Ok(link)) => link,
        Ok(Err(e)) => {
            return Err(Refusal {
                reason: if tls { "tls" } else { "transport" },
                tls: tls.then(|| crate::tls::handshake_failure_reason(&e)),
                text: format!("transport setup failed: {e}"),
            })
        }
        Err(_) => {
            return Err(Refusal {
                reason: if tls { "tls" } else { "transport" },
                tls: tls.then_some("timeout"),
                text: "transport setup timed out".to_owned(),
            })
        }
    };
    let mut raw = [0u8; Handshake::LEN];
    match tokio::time::timeout(HANDSHAKE_TIMEOUT, link.stream.read_exact(&mut raw)).await {
        Err(_) => return Err(refusal("no_handshake", "no handshake within 10 s")),
        Ok(Err(e)) => {
            return Err(refusal(
                "no_handshake",
                format!("connection ended before the 68-byte handshake: {e}"),
            ))
        }
        Ok(Ok(_)) => {}
    }
    let handshake = Handshake::decode(&raw)
        .map_err(|e| refusal("bad_handshake", format!("bad handshake: {e}")))?;
    let Some(tx) = registry.get(&handshake.info_hash) else {
        return Err(refusal(
            "unknown_image",
            format!(
                "handshake for info hash {} which this node does not serve",
                hex(&handshake.info_hash.0)
            ),
        ));
    };
    tx.send(Inbound { link, handshake })
        .await
        .map_err(|_| refusal("shutting_down", "the swarm is shutting down"))
}
