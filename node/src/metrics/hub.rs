//! The hub's metric families (`swarmhub_hub_*`).

use std::sync::{Arc, OnceLock};
use std::time::{Duration, SystemTime};

use prometheus::{
    Histogram, HistogramVec, IntCounter, IntCounterVec, IntGauge, IntGaugeVec, Registry,
};
use swarmhub_core::tracker::AnnounceError;

use super::{
    counter, counter_sum, counter_vec, gauge, gauge_vec, histogram_vec, LinkFamilies, LinkMetrics,
};

/// Buckets of API and tracker request durations, seconds.
const REQUEST_BUCKETS: [f64; 14] = [
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

/// Every metric the hub exports, in its own registry.
pub struct HubMetrics {
    registry: Registry,
    links: Arc<LinkFamilies>,
    /// `swarmhub_hub_announces_total{result}`: tracker announces by outcome
    /// (`ok` or the refusal, see [`announce_result`]).
    pub announces: IntCounterVec,
    /// `swarmhub_hub_downloads_completed_total{image}`: accepted announces
    /// with `event=completed`, the rollout's completion count.
    pub downloads_completed: IntCounterVec,
    /// `swarmhub_hub_peers{image,state}`: the tracker's peers, `seeder` or
    /// `leecher` (the hub seeder included).
    pub peers: IntGaugeVec,
    /// `swarmhub_hub_sent_bytes_total{image,path}`: payload bytes the hub
    /// sent, `path` = `seeder` (peer protocol) or `webseed` (HTTP).
    pub sent_bytes: IntCounterVec,
    /// `swarmhub_hub_seeder_peers{image}`: open connections of the seeder.
    pub seeder_peers: IntGaugeVec,
    /// `swarmhub_hub_piece_verification_failures_total`: pieces the hub's
    /// swarms received that failed their hash.
    pub piece_verification_failures: IntCounter,
    /// `swarmhub_hub_bans_total{reason}`: peers the seeder banned.
    pub bans: IntCounterVec,
    /// `swarmhub_hub_request_duration_seconds{route}`: time to answer API
    /// and tracker requests.
    pub request_duration: HistogramVec,
    /// `swarmhub_hub_certificate_expiry_timestamp_seconds{certificate}`:
    /// end of validity (unix seconds) of the hub's own certificate (`hub`)
    /// and of its CA (`ca`).
    pub certificate_expiry: IntGaugeVec,
    /// `swarmhub_hub_upload_capacity_bytes_per_second`: the seeder's upload
    /// capacity (its `upload` setting or `--max-upload-rate`; 0 = unknown).
    pub upload_capacity: IntGauge,
    /// `announces{result="ok"}`, looked up on first use only: the
    /// tracker's hot path (created lazily, so /metrics shows the same
    /// series as without the cache).
    announces_ok: OnceLock<IntCounter>,
    /// `request_duration{route}` by [`ROUTES`] index, likewise.
    durations: [OnceLock<Histogram>; ROUTES.len()],
}

/// Every label [`route_label`] returns.
const ROUTES: [&str; 12] = [
    "announce", "scrape", "ca", "enroll", "renew", "keys", "info", "images", "webseed", "metainfo",
    "admin", "other",
];

impl Default for HubMetrics {
    fn default() -> Self {
        Self::new()
    }
}

impl HubMetrics {
    /// Fresh families in a fresh registry.
    pub fn new() -> Self {
        let r = Registry::new();
        super::build_info(&r);
        HubMetrics {
            links: Arc::new(LinkFamilies::register(&r, "swarmhub_hub")),
            announces: counter_vec(
                &r,
                "swarmhub_hub_announces_total",
                "Tracker announces, by result (ok or why refused).",
                &["result"],
            ),
            downloads_completed: counter_vec(
                &r,
                "swarmhub_hub_downloads_completed_total",
                "Announces of a completed download, by image.",
                &["image"],
            ),
            peers: gauge_vec(
                &r,
                "swarmhub_hub_peers",
                "Peers the tracker knows, by image and state (seeder, leecher).",
                &["image", "state"],
            ),
            sent_bytes: counter_vec(
                &r,
                "swarmhub_hub_sent_bytes_total",
                "Image bytes the hub sent, by image and path (seeder, webseed).",
                &["image", "path"],
            ),
            seeder_peers: gauge_vec(
                &r,
                "swarmhub_hub_seeder_peers",
                "Open peer connections of the hub seeder, by image.",
                &["image"],
            ),
            piece_verification_failures: counter(
                &r,
                "swarmhub_hub_piece_verification_failures_total",
                "Pieces received by the hub's swarms that failed their hash.",
            ),
            bans: counter_vec(
                &r,
                "swarmhub_hub_bans_total",
                "Peers banned by the hub seeder, by reason.",
                &["reason"],
            ),
            request_duration: histogram_vec(
                &r,
                "swarmhub_hub_request_duration_seconds",
                "Time to answer an API or tracker request, by route.",
                &["route"],
                &REQUEST_BUCKETS,
            ),
            certificate_expiry: gauge_vec(
                &r,
                "swarmhub_hub_certificate_expiry_timestamp_seconds",
                "End of validity (unix time) of the hub certificate (hub) and the hub CA (ca).",
                &["certificate"],
            ),
            upload_capacity: gauge(
                &r,
                "swarmhub_hub_upload_capacity_bytes_per_second",
                "Upload capacity of the hub seeder (0: unknown, no limit set).",
            ),
            registry: r,
            announces_ok: OnceLock::new(),
            durations: Default::default(),
        }
    }

    /// Count one announce with result `result` (`ok` or [`announce_result`]).
    pub fn count_announce(&self, result: &str) {
        if result == "ok" {
            self.announces_ok
                .get_or_init(|| self.announces.with_label_values(&["ok"]))
                .inc();
        } else {
            self.announces.with_label_values(&[result]).inc();
        }
    }

    /// Record that a request to `route` (a [`route_label`]) took `seconds`.
    pub fn observe_request(&self, route: &'static str, seconds: f64) {
        match ROUTES.iter().position(|r| *r == route) {
            Some(i) => self.durations[i]
                .get_or_init(|| self.request_duration.with_label_values(&[route]))
                .observe(seconds),
            None => self
                .request_duration
                .with_label_values(&[route])
                .observe(seconds),
        }
    }

    /// The registry to expose.
    pub fn registry(&self) -> &Registry {
        &self.registry
    }

    /// Connection counters of the HTTPS API listener.
    pub fn api_link(&self) -> LinkMetrics {
        LinkMetrics::new(self.links.clone(), "api")
    }

    /// Connection counters of the seeder's peer listener.
    pub fn seeder_link(&self) -> LinkMetrics {
        LinkMetrics::new(self.links.clone(), "seeder")
    }

    /// Bytes of `image` sent so far: (seeder, web seed).
    pub fn image_sent_bytes(&self, image: &str) -> (u64, u64) {
        let get = |path| self.sent_bytes.with_label_values(&[image, path]).get();
        (get("seeder"), get("webseed"))
    }

    /// Image bytes sent so far, every image and path.
    pub fn sent_bytes_total(&self) -> u64 {
        counter_sum(&self.sent_bytes, &[])
    }

    /// Announces answered so far, whatever their result.
    pub fn announces_count(&self) -> u64 {
        counter_sum(&self.announces, &[])
    }

    /// Connections accepted and refused so far on `listener` (`api`, `seeder`).
    pub fn connection_counts(&self, listener: &str) -> (u64, u64) {
        let on = [("listener", listener)];
        (
            counter_sum(&self.links.connections, &on),
            counter_sum(&self.links.refused, &on),
        )
    }

    /// Record when `certificate` (`hub` or `ca`) stops being valid.
    pub fn set_certificate_expiry(&self, certificate: &str, not_after: SystemTime) {
        let secs = not_after
            .duration_since(SystemTime::UNIX_EPOCH)
            .unwrap_or(Duration::ZERO)
            .as_secs();
        self.certificate_expiry
            .with_label_values(&[certificate])
            .set(i64::try_from(secs).unwrap_or(i64::MAX));
    }

    /// Record the seeder's upload capacity, bytes/s (`None`: unknown).
    pub fn set_upload_capacity(&self, bps: Option<u64>) {
        let v = bps.map_or(0, |b| i64::try_from(b).unwrap_or(i64::MAX));
        self.upload_capacity.set(v);
    }

    /// Set the tracker's seeder and leecher counts of `image`.
    pub fn set_peers(&self, image: &str, seeders: u32, leechers: u32) {
        self.peers
            .with_label_values(&[image, "seeder"])
            .set(i64::from(seeders));
        self.peers
            .with_label_values(&[image, "leecher"])
            .set(i64::from(leechers));
    }

    /// `image` is served: its counters start at 0 (so rates exist from the
    /// first scrape on).
    pub fn track_image(&self, image: &str) {
        for path in ["seeder", "webseed"] {
            let _ = self.sent_bytes.with_label_values(&[image, path]);
        }
        let _ = self.downloads_completed.with_label_values(&[image]);
    }

    /// `image` is no longer served: drop its per-image gauges.
    pub fn forget_image(&self, image: &str) {
        let _ = self.peers.remove_label_values(&[image, "seeder"]);
        let _ = self.peers.remove_label_values(&[image, "leecher"]);
        let _ = self.seeder_peers.remove_label_values(&[image]);
    }
}

/// The `result` label of a refused announce.
pub fn announce_result(e: &AnnounceError) -> &'static str {
    match e {
        AnnounceError::NotAuthenticated => "not_authenticated",
        AnnounceError::NotRegistered { .. } => "not_registered",
        AnnounceError::Revoked { .. } => "revoked",
        AnnounceError::UnknownSwarm { .. } => "unknown_image",
        AnnounceError::PeerIdTaken { .. } => "peer_id_taken",
        AnnounceError::InvalidPort => "invalid_port",
        _ => "refused",
    }
}

/// The `route` label of a request path: a fixed word per endpoint, so the
/// label set stays small whatever clients ask for.
pub fn route_label(path: &str) -> &'static str {
    let p = path.trim_end_matches('/');
    match p {
        "/announce" => "announce",
        "/scrape" => "scrape",
        "/api/v1/ca" => "ca",
        "/api/v1/enroll" => "enroll",
        "/api/v1/renew" => "renew",
        "/api/v1/keys" => "keys",
        "/api/v1/info" => "info",
        "/api/v1/images" => "images",
        _ if p.starts_with("/webseed/") => "webseed",
        _ if p.starts_with("/api/v1/images/") && p.ends_with("/metainfo") => "metainfo",
        _ if p.starts_with("/admin") => "admin",
        _ => "other",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routes_are_a_small_fixed_set() {
        assert_eq!(route_label("/announce"), "announce");
        assert_eq!(route_label("/webseed/0123abcd"), "webseed");
        assert_eq!(route_label("/api/v1/images/app%3A1/metainfo"), "metainfo");
        assert_eq!(route_label("/api/v1/images"), "images");
        assert_eq!(route_label("/../../etc/passwd"), "other");
    }

    #[test]
    fn families_register_and_encode() {
        let m = HubMetrics::new();
        m.announces.with_label_values(&["ok"]).inc();
        m.sent_bytes
            .with_label_values(&["app:1", "webseed"])
            .inc_by(42);
        m.set_upload_capacity(Some(1000));
        let text = super::super::encode(m.registry());
        assert!(text.contains("swarmhub_hub_announces_total{result=\"ok\"} 1"));
        assert!(text.contains("swarmhub_hub_sent_bytes_total{image=\"app:1\",path=\"webseed\"} 42"));
        assert!(text.contains("swarmhub_hub_upload_capacity_bytes_per_second 1000"));
        assert!(text.contains("swarmhub_build_info{version="));
    }

    #[test]
    fn totals_for_in_process_readers() {
        let m = HubMetrics::new();
        m.sent_bytes
            .with_label_values(&["a:1", "seeder"])
            .inc_by(10);
        m.sent_bytes
            .with_label_values(&["a:1", "webseed"])
            .inc_by(5);
        m.sent_bytes.with_label_values(&["b:1", "seeder"]).inc_by(7);
        assert_eq!(m.image_sent_bytes("a:1"), (10, 5));
        assert_eq!(m.sent_bytes_total(), 22);
        m.api_link().accepted();
        m.api_link().refused("revoked");
        m.seeder_link().refused("tls");
        assert_eq!(m.connection_counts("api"), (1, 1));
        assert_eq!(m.connection_counts("seeder"), (0, 1));
        assert_eq!(m.announces_count(), 0);
    }
}
