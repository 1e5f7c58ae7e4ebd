//! A client's metric families (`swarmhub_client_*`): `pull --wait-after-exit`
//! and `service`.

use std::sync::Arc;
use std::time::Duration;

use prometheus::{HistogramVec, IntCounter, IntCounterVec, IntGauge, IntGaugeVec, Registry};

use super::{counter, counter_vec, gauge, gauge_vec, histogram_vec, LinkFamilies, LinkMetrics};

/// Buckets of pull durations, seconds (1 s to 4 h).
const PULL_BUCKETS: [f64; 15] = [
    1.0, 2.0, 5.0, 10.0, 20.0, 30.0, 60.0, 120.0, 300.0, 600.0, 1200.0, 1800.0, 3600.0, 7200.0,
    14400.0,
];

/// Upper bounds of the `size` label of pull durations, bytes, with their
/// label; larger images are `over_4GiB`.
const SIZE_CLASSES: [(u64, &str); 3] = [
    (16 << 20, "upto_16MiB"),
    (256 << 20, "upto_256MiB"),
    (4 << 30, "upto_4GiB"),
];

/// Every metric a client exports, in its own registry.
pub struct ClientMetrics {
    registry: Registry,
    links: Arc<LinkFamilies>,
    /// `swarmhub_client_received_bytes_total{image,source}`: accepted image
    /// bytes by source: `hub` (hub seeder), `peer` (other clients),
    /// `webseed` (the hub over HTTP).
    pub received_bytes: IntCounterVec,
    /// `swarmhub_client_sent_bytes_total{image}`: image bytes uploaded to peers.
    pub sent_bytes: IntCounterVec,
    /// `swarmhub_client_pull_duration_seconds{size}`: time from start to a
    /// verified, published image, by image size class.
    pub pull_duration: HistogramVec,
    /// `swarmhub_client_pulls_total{result}`: `complete`, `up_to_date`, `failed`.
    pub pulls: IntCounterVec,
    /// `swarmhub_client_webseed_fallbacks_total`: pulls that stalled on peers
    /// and fell back to the hub's web seed.
    pub webseed_fallbacks: IntCounter,
    /// `swarmhub_client_piece_verification_failures_total{source}`: pieces
    /// that failed their hash, from `peers` or the `webseed`.
    pub piece_verification_failures: IntCounterVec,
    /// `swarmhub_client_bans_total{reason}`: peers this client banned.
    pub bans: IntCounterVec,
    /// `swarmhub_client_peers{image}`: open peer connections.
    pub peers: IntGaugeVec,
    /// The container registry mirror's families (`swarmhub_client_mirror_*`).
    pub mirror: MirrorMetrics,
}

/// What the registry mirror did (`swarmhub mirror`, or `service` with the
/// mirror on); its `/swarmhub/stats` JSON is read from these same counters.
pub struct MirrorMetrics {
    /// `swarmhub_client_mirror_requests_total{kind,status}`: requests by kind
    /// (`base`, `manifest`, `blob`, `stats`, `invalid`) and HTTP status.
    pub requests: IntCounterVec,
    /// `swarmhub_client_mirror_served_bytes_total`: blob bytes sent to clients.
    pub served_bytes: IntCounter,
    /// `swarmhub_client_mirror_streamed_blobs_total`: blobs sent while their
    /// image was still being pulled.
    pub streamed_blobs: IntCounter,
    /// `swarmhub_client_mirror_aborted_streams_total`: streamed blobs whose
    /// transfer was broken off (the pull failed, or the blob its digest).
    pub aborted_streams: IntCounter,
    /// `swarmhub_client_mirror_refused_unverified_total`: manifests and
    /// blobs refused because they did not match their digest.
    pub refused_unverified: IntCounter,
    /// `swarmhub_client_mirror_pulls_total{result}`: image pulls the mirror
    /// started, by result (`complete`, `failed`).
    pub pulls: IntCounterVec,
    /// `swarmhub_client_mirror_pulls_running`: image pulls in progress.
    pub pulls_running: IntGauge,
    /// `swarmhub_client_mirror_fetched_bytes_total{source}`: bytes of the
    /// images it pulled, by source: `hub` (seeder), `peer`, `http` (the hub's
    /// web seed), `local` (blobs this machine already held).
    pub fetched_bytes: IntCounterVec,
}

impl MirrorMetrics {
    fn register(r: &Registry) -> Self {
        MirrorMetrics {
            requests: counter_vec(
                r,
                "swarmhub_client_mirror_requests_total",
                "Registry mirror requests, by kind (base, manifest, blob, stats, invalid) and HTTP status.",
                &["kind", "status"],
            ),
            served_bytes: counter(
                r,
                "swarmhub_client_mirror_served_bytes_total",
                "Blob bytes the registry mirror sent.",
            ),
            streamed_blobs: counter(
                r,
                "swarmhub_client_mirror_streamed_blobs_total",
                "Blobs the registry mirror sent while their image was still being pulled.",
            ),
            aborted_streams: counter(
                r,
                "swarmhub_client_mirror_aborted_streams_total",
                "Streamed blobs broken off because the pull failed or the blob failed its digest.",
            ),
            refused_unverified: counter(
                r,
                "swarmhub_client_mirror_refused_unverified_total",
                "Manifests and blobs the registry mirror refused: they did not match their digest.",
            ),
            pulls: counter_vec(
                r,
                "swarmhub_client_mirror_pulls_total",
                "Image pulls the registry mirror started, by result (complete, failed).",
                &["result"],
            ),
            pulls_running: gauge(
                r,
                "swarmhub_client_mirror_pulls_running",
                "Image pulls the registry mirror has in progress.",
            ),
            fetched_bytes: counter_vec(
                r,
                "swarmhub_client_mirror_fetched_bytes_total",
                "Bytes of the images the registry mirror pulled, by source (hub, peer, http, local).",
                &["source"],
            ),
        }
    }
}

impl std::fmt::Debug for ClientMetrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClientMetrics").finish_non_exhaustive()
    }
}

impl Default for ClientMetrics {
    fn default() -> Self {
        Self::new()
    }
}

impl ClientMetrics {
    /// Fresh families in a fresh registry.
    pub fn new() -> Self {
        let r = Registry::new();
        super::build_info(&r);
        ClientMetrics {
            links: Arc::new(LinkFamilies::register(&r, "swarmhub_client")),
            received_bytes: counter_vec(
                &r,
                "swarmhub_client_received_bytes_total",
                "Accepted image bytes, by image and source (hub, peer, webseed).",
                &["image", "source"],
            ),
            sent_bytes: counter_vec(
                &r,
                "swarmhub_client_sent_bytes_total",
                "Image bytes uploaded to peers, by image.",
                &["image"],
            ),
            pull_duration: histogram_vec(
                &r,
                "swarmhub_client_pull_duration_seconds",
                "Time a pull took to a verified image, by image size class.",
                &["size"],
                &PULL_BUCKETS,
            ),
            pulls: counter_vec(
                &r,
                "swarmhub_client_pulls_total",
                "Pulls, by result (complete, up_to_date, failed).",
                &["result"],
            ),
            webseed_fallbacks: counter(
                &r,
                "swarmhub_client_webseed_fallbacks_total",
                "Pulls that stalled on peers and fetched from the hub web seed too.",
            ),
            piece_verification_failures: counter_vec(
                &r,
                "swarmhub_client_piece_verification_failures_total",
                "Pieces that failed their hash, by source (peers, webseed).",
                &["source"],
            ),
            bans: counter_vec(
                &r,
                "swarmhub_client_bans_total",
                "Peers this client banned, by reason.",
                &["reason"],
            ),
            peers: gauge_vec(
                &r,
                "swarmhub_client_peers",
                "Open peer connections, by image.",
                &["image"],
            ),
            mirror: MirrorMetrics::register(&r),
            registry: r,
        }
    }

    /// The registry to expose.
    pub fn registry(&self) -> &Registry {
        &self.registry
    }

    /// Connection counters of the client's peer listener.
    pub fn peer_link(&self) -> LinkMetrics {
        LinkMetrics::new(self.links.clone(), "peer")
    }

    /// Bytes of `image` accepted from the hub's web seed.
    pub fn webseed_received(&self, image: &str, bytes: u64) {
        self.received_bytes
            .with_label_values(&[image, "webseed"])
            .inc_by(bytes);
    }

    /// A pull of an image of `size` bytes ended with `result` after `took`
    /// (`complete` pulls also feed the duration histogram).
    pub fn pull_done(&self, size: u64, result: &str, took: Duration) {
        self.pulls.with_label_values(&[result]).inc();
        if result == "complete" {
            self.pull_duration
                .with_label_values(&[size_class(size)])
                .observe(took.as_secs_f64());
        }
    }
}

/// The `size` label of an image of `bytes`.
pub fn size_class(bytes: u64) -> &'static str {
    SIZE_CLASSES
        .iter()
        .find(|(max, _)| bytes <= *max)
        .map_or("over_4GiB", |(_, label)| label)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn size_classes_cover_every_size() {
        assert_eq!(size_class(0), "upto_16MiB");
        assert_eq!(size_class(16 << 20), "upto_16MiB");
        assert_eq!(size_class((16 << 20) + 1), "upto_256MiB");
        assert_eq!(size_class(4 << 30), "upto_4GiB");
        assert_eq!(size_class(u64::MAX), "over_4GiB");
    }

    #[test]
    fn a_complete_pull_is_observed_in_its_size_class() {
        let m = ClientMetrics::new();
        m.pull_done(8 << 20, "complete", Duration::from_secs(3));
        m.pull_done(8 << 20, "failed", Duration::from_secs(1));
        let text = super::super::encode(m.registry());
        assert!(text.contains("swarmhub_client_pull_duration_seconds_count{size=\"upto_16MiB\"} 1"));
        assert!(text.contains("swarmhub_client_pulls_total{result=\"failed\"} 1"));
    }
}
