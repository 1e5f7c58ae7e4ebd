//! Running totals of the hub that the admin console's live figures read
//! (and a metrics exporter can read the same way): announces, refusals,
//! connections, bytes the hub sent by path, and what each client was last
//! seen with. Plain atomics and short locks; nothing here blocks.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::SystemTime;

use swarmhub_core::Id20;

/// Bytes the hub sent for one image.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ImageBytes {
    /// Over the web seed (HTTP ranges).
    pub webseed_bytes: u64,
    /// By the seeder over peer links (swarms that ran before plus the current one).
    pub seeder_bytes: u64,
}

/// What the hub last saw of one client.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ClientSeen {
    /// Time of its last announce.
    pub last_announce: Option<SystemTime>,
    /// Expiry of the certificate it last presented or was issued.
    pub cert_not_after: Option<SystemTime>,
    /// Web seed bytes the hub sent it.
    pub webseed_bytes: u64,
}

/// A snapshot of the totals, as the console's JSON endpoint serves it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct Totals {
    /// Announces received.
    pub announces_total: u64,
    /// Announces refused (any reason).
    pub announce_refusals_total: u64,
    /// API calls refused for authentication (401/403).
    pub api_refusals_total: u64,
    /// API TLS handshakes refused or timed out.
    pub tls_refusals_total: u64,
    /// API connections accepted.
    pub api_connections_total: u64,
    /// API connections open now.
    pub api_connections_open: u64,
    /// Seeder peer connections open now (all images).
    pub seeder_connections: u64,
    /// Bytes the hub sent: web seed plus seeder.
    pub sent_bytes_total: u64,
}

/// The hub's counters.
#[derive(Debug, Default)]
pub struct HubCounters {
    announces: AtomicU64,
    announce_refusals: AtomicU64,
    api_refusals: AtomicU64,
    tls_refusals: AtomicU64,
    api_connections: AtomicU64,
    api_open: AtomicU64,
    seeder_connections: AtomicU64,
    images: Mutex<BTreeMap<Id20, ImageFigures>>,
    clients: Mutex<BTreeMap<String, ClientSeen>>,
    /// Web seed bytes by (identity, image).
    webseed_to: Mutex<BTreeMap<(String, Id20), u64>>,
    /// Seeder bytes by (identity, image): swarms that stopped, and the running one.
    seeder_to: Mutex<BTreeMap<(String, Id20), (u64, u64)>>,
}

#[derive(Clone, Copy, Debug, Default)]
struct ImageFigures {
    webseed: u64,
    /// Seeder bytes of swarms that have stopped.
    seeder_done: u64,
    /// Seeder bytes of the running swarm.
    seeder_now: u64,
}

impl HubCounters {
    /// An announce arrived.
    pub fn announce(&self) {
        self.announces.fetch_add(1, Ordering::Relaxed);
    }

    /// An announce was refused.
    pub fn announce_refused(&self) {
        self.announce_refusals.fetch_add(1, Ordering::Relaxed);
    }

    /// An API call was refused (401/403).
    pub fn api_refused(&self) {
        self.api_refusals.fetch_add(1, Ordering::Relaxed);
    }

    /// A TLS handshake on the API failed.
    pub fn tls_refused(&self) {
        self.tls_refusals.fetch_add(1, Ordering::Relaxed);
    }

    /// An API connection opened; the guard counts it closed when dropped.
    pub fn api_connection(self: &Arc<Self>) -> OpenGuard {
        self.api_connections.fetch_add(1, Ordering::Relaxed);
        self.api_open.fetch_add(1, Ordering::Relaxed);
        OpenGuard(self.clone())
    }

    /// Seeder peer connections open now.
    pub fn set_seeder_connections(&self, n: u64) {
        self.seeder_connections.store(n, Ordering::Relaxed);
    }

    /// The web seed sent `bytes` of `image` to `identity`.
    pub fn webseed_sent(&self, image: Id20, identity: Option<&str>, bytes: u64) {
        if let Ok(mut m) = self.images.lock() {
            m.entry(image).or_default().webseed += bytes;
        }
        if let Some(id) = identity {
            if let Ok(mut m) = self.clients.lock() {
                m.entry(id.to_owned()).or_default().webseed_bytes += bytes;
            }
            if let Ok(mut m) = self.webseed_to.lock() {
                *m.entry((id.to_owned(), image)).or_default() += bytes;
            }
        }
    }

    /// The running seeder swarm of `image` has sent `bytes` so far.
    pub fn seeder_running(&self, image: Id20, bytes: u64) {
        if let Ok(mut m) = self.images.lock() {
            m.entry(image).or_default().seeder_now = bytes;
        }
    }

    /// The running seeder swarm of `image` has sent each identity this much.
    pub fn seeder_running_to(&self, image: Id20, by_identity: &BTreeMap<String, u64>) {
        if let Ok(mut m) = self.seeder_to.lock() {
            for (id, &bytes) in by_identity {
                m.entry((id.clone(), image)).or_default().1 = bytes;
            }
        }
    }

    /// The seeder swarm of `image` stopped: what it sent each identity is final.
    pub fn seeder_stopped_to(&self, image: Id20) {
        if let Ok(mut m) = self.seeder_to.lock() {
            for ((_, h), (done, now)) in m.iter_mut() {
                if *h == image {
                    *done += std::mem::take(now);
                }
            }
        }
    }

    /// Seeder bytes the hub sent `identity` of `image`.
    pub fn seeder_to(&self, identity: &str, image: &Id20) -> u64 {
        self.seeder_to
            .lock()
            .ok()
            .and_then(|m| m.get(&(identity.to_owned(), *image)).map(|(d, n)| d + n))
            .unwrap_or(0)
    }

    /// The seeder swarm of `image` stopped after sending `bytes`.
    pub fn seeder_stopped(&self, image: Id20, bytes: u64) {
        if let Ok(mut m) = self.images.lock() {
            let f = m.entry(image).or_default();
            f.seeder_done += bytes.max(f.seeder_now);
            f.seeder_now = 0;
        }
    }

    /// `identity` announced now, holding a certificate valid until `not_after`.
    pub fn client_announced(&self, identity: &str, not_after: Option<SystemTime>) {
        let now = SystemTime::now();
        if let Ok(mut m) = self.clients.lock() {
            // No allocation for a client already seen (every announce but its first).
            if !m.contains_key(identity) {
                m.insert(identity.to_owned(), ClientSeen::default());
            }
            if let Some(c) = m.get_mut(identity) {
                c.last_announce = Some(now);
                if not_after.is_some() {
                    c.cert_not_after = not_after;
                }
            }
        }
    }

    /// The hub issued `identity` a certificate valid until `not_after`.
    pub fn client_certified(&self, identity: &str, not_after: SystemTime) {
        if let Ok(mut m) = self.clients.lock() {
            m.entry(identity.to_owned()).or_default().cert_not_after = Some(not_after);
        }
    }

    /// What the hub last saw of `identity`.
    pub fn client(&self, identity: &str) -> ClientSeen {
        self.clients
            .lock()
            .ok()
            .and_then(|m| m.get(identity).cloned())
            .unwrap_or_default()
    }

    /// Web seed bytes the hub sent `identity` of `image`.
    pub fn webseed_to(&self, identity: &str, image: &Id20) -> u64 {
        self.webseed_to
            .lock()
            .ok()
            .and_then(|m| m.get(&(identity.to_owned(), *image)).copied())
            .unwrap_or(0)
    }

    /// Bytes the hub sent for `image`.
    pub fn image_bytes(&self, image: &Id20) -> ImageBytes {
        let f = self
            .images
            .lock()
            .ok()
            .and_then(|m| m.get(image).copied())
            .unwrap_or_default();
        ImageBytes {
            webseed_bytes: f.webseed,
            seeder_bytes: f.seeder_done + f.seeder_now,
        }
    }

    /// Every total now.
    pub fn totals(&self) -> Totals {
        let sent = self
            .images
            .lock()
            .map(|m| {
                m.values()
                    .map(|f| f.webseed + f.seeder_done + f.seeder_now)
                    .sum()
            })
            .unwrap_or(0);
        Totals {
            announces_total: self.announces.load(Ordering::Relaxed),
            announce_refusals_total: self.announce_refusals.load(Ordering::Relaxed),
            api_refusals_total: self.api_refusals.load(Ordering::Relaxed),
            tls_refusals_total: self.tls_refusals.load(Ordering::Relaxed),
            api_connections_total: self.api_connections.load(Ordering::Relaxed),
            api_connections_open: self.api_open.load(Ordering::Relaxed),
            seeder_connections: self.seeder_connections.load(Ordering::Relaxed),
            sent_bytes_total: sent,
        }
    }
}

/// Counts an API connection as closed when dropped.
#[derive(Debug)]
pub struct OpenGuard(Arc<HubCounters>);

impl Drop for OpenGuard {
    fn drop(&mut self) {
        self.0.api_open.fetch_sub(1, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn totals_add_up_across_paths_and_restarts() {
        let c = Arc::new(HubCounters::default());
        let img = Id20::new([1; 20]);
        c.webseed_sent(img, Some("alice"), 100);
        c.seeder_running(img, 50);
        c.seeder_stopped(img, 70);
        c.seeder_running(img, 5);
        assert_eq!(
            c.image_bytes(&img),
            ImageBytes {
                webseed_bytes: 100,
                seeder_bytes: 75
            }
        );
        assert_eq!(c.totals().sent_bytes_total, 175);
        assert_eq!(c.client("alice").webseed_bytes, 100);
        assert_eq!(c.webseed_to("alice", &img), 100);
        assert_eq!(c.webseed_to("alice", &Id20::new([2; 20])), 0);
        let sent = BTreeMap::from([("alice".to_owned(), 40)]);
        c.seeder_running_to(img, &sent);
        c.seeder_stopped_to(img);
        c.seeder_running_to(img, &BTreeMap::from([("alice".to_owned(), 2)]));
        assert_eq!(c.seeder_to("alice", &img), 42);
        {
            let _g = c.api_connection();
            assert_eq!(c.totals().api_connections_open, 1);
        }
        assert_eq!(c.totals().api_connections_open, 0);
        assert_eq!(c.totals().api_connections_total, 1);
    }
}
