//! Analytic lower bound on flash-crowd distribution time.
//!
//! Kumar & Ross (2006), "Peer-assisted file distribution: the minimum
//! distribution time": with a server of upload `u_s`, N peers with uploads
//! `u_i` and downloads `d_i`, and a file of F bytes, no schedule can finish
//! before `max(F / u_s, F / d_min, N F / (u_s + sum u_i))`. Without peer-to-peer
//! exchange (the hub-only baseline) the peers' uploads do not count:
//! `max(F / d_min, N F / u_s)`. Capacities are payload rates: each is scaled
//! by `network.payload_efficiency` first.

use crate::scenario::Scenario;

/// The bound in seconds, with its three terms for display.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Bound {
    /// F / u_s: the hub must send at least one copy.
    pub hub_copy_s: f64,
    /// F / d_min: the slowest downloader must receive one copy.
    pub slowest_download_s: f64,
    /// N F / (u_s + sum u_i): total upload must carry N copies.
    pub total_upload_s: f64,
    /// The maximum of the three.
    pub bound_s: f64,
}

/// The bound for a scenario (its `protocol.p2p` decides which form).
pub fn bound(s: &Scenario) -> Bound {
    // Dividing F by the efficiency is the same as scaling every rate by it.
    let f = s.image.size.0 as f64 / s.network.payload_efficiency;
    let u_s = s.hub.upload.bytes_per_s();
    let n = s.peer_count() as f64;
    let d_min = s
        .groups
        .iter()
        .filter(|g| g.count > 0)
        .map(|g| g.download.bytes_per_s())
        .fold(f64::INFINITY, f64::min);
    let sum_u: f64 = if s.protocol.p2p {
        s.groups
            .iter()
            .map(|g| g.count as f64 * g.upload.bytes_per_s())
            .sum()
    } else {
        0.0
    };
    let hub_copy_s = f / u_s;
    let slowest_download_s = f / d_min;
    let total_upload_s = n * f / (u_s + sum_u);
    Bound {
        hub_copy_s,
        slowest_download_s,
        total_upload_s,
        bound_s: hub_copy_s.max(slowest_download_s).max(total_upload_s),
    }
}
