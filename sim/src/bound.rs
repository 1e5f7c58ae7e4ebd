//! Analytic lower bound on flash-crowd distribution time.
//!
//! Kumar & Ross (2006), "Peer-assisted file distribution: the minimum
//! distribution time": with a server of upload `u_s`, N peers with uploads
//! `u_i` and downloads `d_i`, and a file of F bytes, no schedule can finish
//! before `max(F / u_s, F / d_min, N F / (u_s + sum u_i))`. Without peer-to-peer
//! exchange (the hub-only baseline) the peers' uploads do not count:
//! `max(F / d_min, N F / u_s)`. Capacities are payload rates: each is scaled
//! by `network.payload_efficiency` first.
//!
//! With sites joined by links, a fourth term: every byte a peer of site `s`
//! receives was uploaded by a peer of `s` or crossed one of the links into
//! `s` (capacity `C_s`, summed over them), so a site without the hub needs at
//! least `max(F / C_s, N_s F / (U_s + C_s))`, with `N_s` its peers and `U_s`
//! their upload (0 without peer-to-peer). The bound takes the largest site's
//! term. It is the cut argument of Kumar & Ross applied to each site's cut.

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
    /// The links into the site that needs longest (0 without links).
    pub site_link_s: f64,
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
    let site_link_s = site_link_s(s, f);
    Bound {
        hub_copy_s,
        slowest_download_s,
        total_upload_s,
        site_link_s,
        bound_s: hub_copy_s
            .max(slowest_download_s)
            .max(total_upload_s)
            .max(site_link_s),
    }
}

/// The largest over sites without the hub of `max(F / C_s, N_s F / (U_s +
/// C_s))`; `f` is the image size already divided by the payload efficiency.
fn site_link_s(s: &Scenario, f: f64) -> f64 {
    let net = &s.network;
    let site_of = |name: Option<&str>| -> usize {
        name.and_then(|n| net.sites.iter().position(|x| x.name == n))
            .unwrap_or(0)
    };
    let hub_site = site_of(s.hub.site.as_deref());
    let mut worst: f64 = 0.0;
    for (i, site) in net.sites.iter().enumerate() {
        if i == hub_site {
            continue;
        }
        let c_in: f64 = net
            .links
            .iter()
            .filter(|l| (l.from == site.name) != (l.to == site.name))
            .map(|l| l.capacity.bytes_per_s())
            .sum();
        if c_in <= 0.0 {
            // No link: the site is not cut off from the others.
            continue;
        }
        let (mut n_s, mut u_s) = (0.0, 0.0);
        for g in s.groups.iter().filter(|g| site_of(g.site.as_deref()) == i) {
            n_s += g.count as f64;
            if s.protocol.p2p {
                u_s += g.count as f64 * g.upload.bytes_per_s();
            }
        }
        if n_s == 0.0 {
            continue;
        }
        worst = worst.max((f / c_in).max(n_s * f / (u_s + c_in)));
    }
    worst
}
