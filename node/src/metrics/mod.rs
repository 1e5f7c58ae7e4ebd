//! Prometheus metrics of the hub and of clients.
//!
//! - [`hub::HubMetrics`] and [`client::ClientMetrics`]: one struct of metric
//!   families per role, each with its own registry (the fleet harness runs a
//!   hub and hundreds of clients in one process, so nothing is global). The
//!   admin console reads the same counters.
//! - [`SwarmMetrics`]: what one swarm task (hub seeder or client) counts, from
//!   the events its core node emits.
//! - [`LinkMetrics`]: accepted and refused connections and TLS handshake
//!   failures of one listener.
//! - [`server`]: the plain-HTTP `/metrics` endpoint (`--metrics-listen`).
//!
//! Names follow Prometheus conventions: `swarmhub_` prefix, `_total` on
//! counters, base units last (`_bytes`, `_seconds`), histograms for durations.

pub mod client;
pub mod hub;
pub mod server;

use std::sync::Arc;

use prometheus::{
    HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGauge, IntGaugeVec, Opts,
};
use swarmhub_core::node::{BanReason, DisconnectReason};

pub use client::ClientMetrics;
pub use hub::HubMetrics;
pub use server::{MetricsError, MetricsListen, MetricsServer};

/// A counter family registered in `registry`. Names and label sets are
/// constants of this module, so a failure is a programming error caught by
/// the unit tests; the family still works unregistered.
pub(crate) fn counter_vec(
    registry: &prometheus::Registry,
    name: &str,
    help: &str,
    labels: &[&str],
) -> IntCounterVec {
    let c = IntCounterVec::new(Opts::new(name, help), labels)
        .unwrap_or_else(|e| panic!("metric {name}: {e}"));
    register(registry, name, Box::new(c.clone()));
    c
}

/// A gauge family registered in `registry`.
pub(crate) fn gauge_vec(
    registry: &prometheus::Registry,
    name: &str,
    help: &str,
    labels: &[&str],
) -> IntGaugeVec {
    let g = IntGaugeVec::new(Opts::new(name, help), labels)
        .unwrap_or_else(|e| panic!("metric {name}: {e}"));
    register(registry, name, Box::new(g.clone()));
    g
}

/// A histogram family registered in `registry`.
pub(crate) fn histogram_vec(
    registry: &prometheus::Registry,
    name: &str,
    help: &str,
    labels: &[&str],
    buckets: &[f64],
) -> HistogramVec {
    let h = HistogramVec::new(
        HistogramOpts::new(name, help).buckets(buckets.to_vec()),
        labels,
    )
    .unwrap_or_else(|e| panic!("metric {name}: {e}"));
    register(registry, name, Box::new(h.clone()));
    h
}

fn register(registry: &prometheus::Registry, name: &str, c: Box<dyn prometheus::core::Collector>) {
    if let Err(e) = registry.register(c) {
        tracing::error!("metric {name} not registered: {e}");
    }
}

/// `swarmhub_build_info{version}`: always 1, so dashboards can show versions.
pub(crate) fn build_info(registry: &prometheus::Registry) {
    gauge_vec(
        registry,
        "swarmhub_build_info",
        "Always 1; the version label is the swarmhub version of this process.",
        &["version"],
    )
    .with_label_values(&[env!("CARGO_PKG_VERSION")])
    .set(1);
}

/// The text exposition (format 0.0.4) of `registry`.
pub fn encode(registry: &prometheus::Registry) -> String {
    prometheus::TextEncoder::new()
        .encode_to_string(&registry.gather())
        .unwrap_or_else(|e| format!("# encoding failed: {e}\n"))
}

/// The sum of a counter family's children whose labels include every
/// `labels` pair (all children for none): for readers in the process, such
/// as the admin console, that want totals without a scrape.
pub fn counter_sum(family: &IntCounterVec, labels: &[(&str, &str)]) -> u64 {
    use prometheus::core::Collector;
    let mut total = 0.0;
    for mf in family.collect() {
        for m in mf.get_metric() {
            let pairs = m.get_label();
            let matches = labels
                .iter()
                .all(|(k, v)| pairs.iter().any(|p| p.name() == *k && p.value() == *v));
            if matches {
                total += m.get_counter().get_value();
            }
        }
    }
    total as u64
}

/// Connection counters of one role (hub or client), by listener.
pub(crate) struct LinkFamilies {
    connections: IntCounterVec,
    refused: IntCounterVec,
    tls_failures: IntCounterVec,
    dial_failures: IntCounterVec,
}

impl LinkFamilies {
    /// Register `PREFIX_connections_total`, `PREFIX_connections_refused_total`
    /// and `PREFIX_tls_handshake_failures_total`.
    pub(crate) fn register(registry: &prometheus::Registry, prefix: &str) -> Self {
        LinkFamilies {
            connections: counter_vec(
                registry,
                &format!("{prefix}_connections_total"),
                "TCP connections accepted, by listener.",
                &["listener"],
            ),
            refused: counter_vec(
                registry,
                &format!("{prefix}_connections_refused_total"),
                "Connections or requests refused, by listener and reason.",
                &["listener", "reason"],
            ),
            tls_failures: counter_vec(
                registry,
                &format!("{prefix}_tls_handshake_failures_total"),
                "TLS handshakes that failed, by listener and reason.",
                &["listener", "reason"],
            ),
            dial_failures: counter_vec(
                registry,
                &format!("{prefix}_dial_failures_total"),
                "Connections to peers that could not be made, by reason.",
                &["reason"],
            ),
        }
    }
}

/// The connection counters of one listener (`api`, `seeder`, `peer`).
#[derive(Clone)]
pub struct LinkMetrics {
    families: Arc<LinkFamilies>,
    listener: &'static str,
}

impl LinkMetrics {
    pub(crate) fn new(families: Arc<LinkFamilies>, listener: &'static str) -> Self {
        LinkMetrics { families, listener }
    }

    /// A TCP connection was accepted.
    pub fn accepted(&self) {
        self.families
            .connections
            .with_label_values(&[self.listener])
            .inc();
    }

    /// A connection or request was refused for `reason` (a fixed word).
    pub fn refused(&self, reason: &str) {
        self.families
            .refused
            .with_label_values(&[self.listener, reason])
            .inc();
    }

    /// A TLS handshake failed for `reason` (see [`crate::tls::handshake_failure_reason`]).
    pub fn tls_failed(&self, reason: &str) {
        self.families
            .tls_failures
            .with_label_values(&[self.listener, reason])
            .inc();
    }
}

#[derive(Clone)]
enum Role {
    Hub(Arc<HubMetrics>),
    Client(Arc<ClientMetrics>),
}

/// What one swarm task counts: bytes by direction and source, failed
/// pieces, bans, refusals and its current peers, from its node's events.
/// The per-block counters are looked up once, when the swarm starts.
#[derive(Clone)]
pub struct SwarmMetrics {
    image: String,
    role: Role,
    link: LinkMetrics,
    /// Bytes from the hub seeder and from peers (clients only).
    received: Option<(IntCounter, IntCounter)>,
    sent: IntCounter,
    peers: IntGauge,
}

impl SwarmMetrics {
    /// The hub seeder's swarm of `image`.
    pub fn hub(metrics: &Arc<HubMetrics>, image: &str) -> Self {
        SwarmMetrics {
            image: image.to_owned(),
            link: metrics.seeder_link(),
            received: None,
            sent: metrics.sent_bytes.with_label_values(&[image, "seeder"]),
            peers: metrics.seeder_peers.with_label_values(&[image]),
            role: Role::Hub(metrics.clone()),
        }
    }

    /// A client's swarm of `image`.
    pub fn client(metrics: &Arc<ClientMetrics>, image: &str) -> Self {
        let received = |source| metrics.received_bytes.with_label_values(&[image, source]);
        // Present from the start, so rates exist from the first scrape.
        let _ = received("webseed");
        SwarmMetrics {
            image: image.to_owned(),
            link: metrics.peer_link(),
            received: Some((received("hub"), received("peer"))),
            sent: metrics.sent_bytes.with_label_values(&[image]),
            peers: metrics.peers.with_label_values(&[image]),
            role: Role::Client(metrics.clone()),
        }
    }

    /// A block arrived and was accepted (from the hub seeder or a peer).
    pub fn block_received(&self, from_hub: bool, bytes: u32) {
        if let Some((hub, peer)) = &self.received {
            let c = if from_hub { hub } else { peer };
            c.inc_by(u64::from(bytes));
        }
    }

    /// A block was sent to a peer.
    pub fn block_uploaded(&self, bytes: u32) {
        self.sent.inc_by(u64::from(bytes));
    }

    /// A piece from peers failed its hash.
    pub fn piece_failed(&self) {
        match &self.role {
            Role::Hub(h) => h.piece_verification_failures.inc(),
            Role::Client(c) => c
                .piece_verification_failures
                .with_label_values(&["peers"])
                .inc(),
        }
    }

    /// A peer was banned.
    pub fn banned(&self, reason: &BanReason) {
        let r = ban_reason(reason);
        match &self.role {
            Role::Hub(h) => h.bans.with_label_values(&[r]).inc(),
            Role::Client(c) => c.bans.with_label_values(&[r]).inc(),
        }
    }

    /// The node closed a connection; refusals (limits, bans, missing
    /// authentication) are counted by reason.
    pub fn disconnected(&self, reason: &DisconnectReason) {
        if let Some(r) = refusal_reason(reason) {
            self.link.refused(r);
        }
    }

    /// Dialing a peer failed with `e` (refused, timed out, TLS refused, ...).
    pub fn dial_failed(&self, e: &std::io::Error) {
        self.link
            .families
            .dial_failures
            .with_label_values(&[dial_failure_reason(e)])
            .inc();
    }

    /// The swarm's open connections now.
    pub fn set_peers(&self, n: usize) {
        self.peers.set(i64::try_from(n).unwrap_or(i64::MAX));
    }

    /// The swarm stopped: its peer gauge goes away.
    pub fn stopped(&self) {
        let _ = match &self.role {
            Role::Hub(h) => h.seeder_peers.remove_label_values(&[&self.image]),
            Role::Client(c) => c.peers.remove_label_values(&[&self.image]),
        };
    }
}

/// The `reason` label of a failed dial: `refused` (nothing listens),
/// `timeout`, a TLS reason (see [`crate::tls::handshake_failure_reason`]) or `io`.
pub fn dial_failure_reason(e: &std::io::Error) -> &'static str {
    match e.kind() {
        std::io::ErrorKind::ConnectionRefused => "refused",
        _ => crate::tls::handshake_failure_reason(e),
    }
}

/// The `reason` label of a ban.
pub fn ban_reason(reason: &BanReason) -> &'static str {
    match reason {
        BanReason::SoleSourceOfBadPiece { .. } => "sole_source_of_bad_piece",
        BanReason::TooManyHashFailures { .. } => "too_many_hash_failures",
        BanReason::Revoked => "revoked",
        _ => "other",
    }
}

/// The `reason` label of a disconnect that refuses a peer, `None` for an
/// ordinary end of a connection.
pub fn refusal_reason(reason: &DisconnectReason) -> Option<&'static str> {
    Some(match reason {
        DisconnectReason::Banned => "banned",
        DisconnectReason::NotAuthenticated => "not_authenticated",
        DisconnectReason::WrongInfoHash => "wrong_info_hash",
        DisconnectReason::OwnPeerId => "own_peer_id",
        DisconnectReason::DuplicatePeer => "duplicate_peer",
        DisconnectReason::TooManyPeers => "too_many_peers",
        DisconnectReason::HandshakeTimeout => "handshake_timeout",
        DisconnectReason::Revoked => "revoked",
        DisconnectReason::Violation(_) => "protocol_violation",
        _ => return None,
    })
}

/// A single counter (no labels) registered in `registry`.
pub(crate) fn counter(registry: &prometheus::Registry, name: &str, help: &str) -> IntCounter {
    let c = IntCounter::new(name, help).unwrap_or_else(|e| panic!("metric {name}: {e}"));
    register(registry, name, Box::new(c.clone()));
    c
}

/// A single gauge (no labels) registered in `registry`.
pub(crate) fn gauge(registry: &prometheus::Registry, name: &str, help: &str) -> IntGauge {
    let g = IntGauge::new(name, help).unwrap_or_else(|e| panic!("metric {name}: {e}"));
    register(registry, name, Box::new(g.clone()));
    g
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Error, ErrorKind};

    #[test]
    fn dial_and_handshake_failures_get_fixed_reasons() {
        let tls = |e: rustls::Error| Error::new(ErrorKind::InvalidData, e);
        let revoked = rustls::Error::InvalidCertificate(rustls::CertificateError::Revoked);
        assert_eq!(
            dial_failure_reason(&ErrorKind::ConnectionRefused.into()),
            "refused"
        );
        assert_eq!(dial_failure_reason(&ErrorKind::TimedOut.into()), "timeout");
        assert_eq!(dial_failure_reason(&tls(revoked)), "revoked");
        assert_eq!(
            dial_failure_reason(&tls(rustls::Error::InvalidCertificate(
                rustls::CertificateError::UnknownIssuer
            ))),
            "unknown_ca"
        );
        assert_eq!(
            crate::tls::handshake_failure_reason(&tls(rustls::Error::NoCertificatesPresented)),
            "no_certificate"
        );
        assert_eq!(
            crate::tls::handshake_failure_reason(&ErrorKind::UnexpectedEof.into()),
            "closed"
        );
    }

    #[test]
    fn refusals_are_told_from_ordinary_disconnects() {
        assert_eq!(
            refusal_reason(&DisconnectReason::TooManyPeers),
            Some("too_many_peers")
        );
        assert_eq!(refusal_reason(&DisconnectReason::Shutdown), None);
        assert_eq!(refusal_reason(&DisconnectReason::BothSeeds), None);
        assert_eq!(
            ban_reason(&BanReason::SoleSourceOfBadPiece { piece: 3 }),
            "sole_source_of_bad_piece"
        );
    }
}
