//! The simulator against theory on regimes the shipped scenarios do not
//! cover (the scenarios in `sim/tests/theory/`), and the link-aware bound
//! and per-link byte counts on sites joined by thin links.
//!
//! The simulator is deterministic, so each ratio below is what one seed
//! gives every time. Where the core is not yet at the target of its regime
//! the assertion guards today's figure (README, "Regimes the shipped
//! scenarios do not cover"), so a change that makes it worse fails here.

use std::path::Path;

use swarmhub_sim::bound::bound;
use swarmhub_sim::{run_scenario, Scenario};

fn load(name: &str) -> Scenario {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/theory")
        .join(name);
    Scenario::load(&path).unwrap().0
}

fn parse(text: &str) -> Scenario {
    Scenario::parse(text, Path::new("test.toml")).unwrap()
}

/// Two sites: the hub and `a_peers` peers in `a`, `b_peers` peers in `b`
/// behind one link of `link`.
fn two_sites(a_peers: usize, b_peers: usize, link: &str) -> String {
    format!(
        r#"
name = "two-sites"
[image]
size = "8 MiB"
[hub]
upload = "200 Mbit/s"
site = "a"
[[group]]
name = "a"
count = {a_peers}
upload = "50 Mbit/s"
download = "200 Mbit/s"
site = "a"
[[group]]
name = "b"
count = {b_peers}
upload = "50 Mbit/s"
download = "200 Mbit/s"
site = "b"
[[network.site]]
name = "a"
[[network.site]]
name = "b"
[[network.link]]
from = "a"
to = "b"
capacity = "{link}"
latency = "5ms"
"#
    )
}

#[test]
fn the_bound_counts_the_link_into_a_site() {
    // One peer behind a 20 Mbit/s link to the only source: it cannot finish
    // before F / C = 8 MiB / 2.5 MB/s = 3.355 s, though its own download
    // and the hub would allow 0.34 s.
    let s = parse(&two_sites(1, 1, "20 Mbit/s"));
    let b = bound(&s);
    let f_over_c = (8u64 << 20) as f64 / 2.5e6;
    assert!(
        (b.site_link_s - f_over_c).abs() < 1e-9,
        "site term {} s, F/C {f_over_c} s",
        b.site_link_s
    );
    assert_eq!(b.bound_s, b.site_link_s);
    assert!(b.hub_copy_s < 0.5 && b.slowest_download_s < 0.5);
    // The run respects it.
    let (_, summary) = run_scenario(s, "h", 1, false, "test", |_, _, _| {});
    assert_eq!(summary.completed, 2);
    let max = summary.completion_s.max.unwrap();
    assert!(
        max >= f_over_c,
        "finished in {max} s, before F/C {f_over_c} s"
    );
    // Without the link the term is zero and the bound is Kumar-Ross's.
    let text = two_sites(1, 1, "20 Mbit/s");
    let flat =
        parse(&text[..text.find("[[network.site]]").unwrap()].replace("site = ", "# site = "));
    assert_eq!(bound(&flat).site_link_s, 0.0);
    assert!(bound(&flat).bound_s < 0.5);
}

#[test]
fn the_site_term_counts_the_peers_behind_the_link() {
    // 20 peers of 50 Mbit/s behind 10 Mbit/s: N_s F / (U_s + C) binds
    // before F / C does only when the site's own upload is small; here
    // F / C = 6.71 s and 20 F / (1000 + 10 Mbit/s) = 1.33 s.
    let s = parse(&two_sites(4, 20, "10 Mbit/s"));
    let b = bound(&s);
    let f = (8u64 << 20) as f64;
    assert!((b.site_link_s - f / 1.25e6).abs() < 1e-9);
    // With peer-to-peer off every copy crosses the link: N_s F / C.
    let off = parse(&format!(
        "{}\n[protocol]\np2p = false\n",
        two_sites(4, 20, "10 Mbit/s")
    ));
    let b_off = bound(&off);
    assert!((b_off.site_link_s - 20.0 * f / 1.25e6).abs() < 1e-6);
}

#[test]
fn bytes_across_each_link_are_counted_per_direction() {
    let s = parse(&two_sites(8, 8, "40 Mbit/s"));
    let image = s.image.size.0;
    let (sim, summary) = run_scenario(s, "h", 1, false, "test", |_, _, _| {});
    assert_eq!(summary.completed, 16);
    assert_eq!(summary.links.len(), 2, "{:?}", summary.links);
    let ab = &summary.links[0];
    let ba = &summary.links[1];
    assert_eq!((ab.from.as_str(), ab.to.as_str()), ("a", "b"));
    assert_eq!((ba.from.as_str(), ba.to.as_str()), ("b", "a"));
    // Site b's peers hold the image only if at least one copy crossed into b,
    // and everything that crossed was received by a peer of b.
    let b_received: u64 = sim
        .hosts
        .iter()
        .filter(|h| h.site == "b")
        .map(|h| h.bytes_down_hub + h.bytes_down_peers)
        .sum();
    let a_received: u64 = sim
        .hosts
        .iter()
        .skip(1)
        .filter(|h| h.site == "a")
        .map(|h| h.bytes_down_hub + h.bytes_down_peers)
        .sum();
    assert!(ab.bytes >= image, "{} bytes crossed a -> b", ab.bytes);
    assert!(ab.bytes <= b_received);
    assert!(ba.bytes <= a_received);
    assert!((ab.copies - ab.bytes as f64 / image as f64).abs() < 1e-12);
    // The timeline's per-link rates add up to the same bytes.
    let step = 1.0;
    let from_timeline: f64 = sim
        .timeline
        .iter()
        .map(|r| r.link_bps.first().copied().unwrap_or(0.0) * step / 8.0)
        .sum();
    let err = (from_timeline - ab.bytes as f64).abs() / ab.bytes as f64;
    assert!(
        err < 1e-6,
        "timeline {from_timeline} vs summary {}",
        ab.bytes
    );
}

/// The last peer's completion over the optimum `t_star` for `seeds` runs of
/// a homogeneous scenario, after checking each run's floor, duplicates and
/// hub copies. One seed alone says little here: with every peer alike, the
/// order in which the first pieces spread is decided by ties, and a change
/// that helps on average moves single seeds by 5% either way.
fn homogeneous_ratios(name: &str, log2_n: f64, seeds: std::ops::RangeInclusive<u64>) -> Vec<f64> {
    let mut ratios = Vec::new();
    for seed in seeds {
        let s = load(name);
        let (f, m) = (s.image.size.0 as f64, 64.0);
        let u = s.hub.upload.bytes_per_s();
        let t_star = f / u * (1.0 + log2_n / m);
        let peers = s.peer_count();
        let (_, summary) = run_scenario(s, "h", seed, false, "test", |_, _, _| {});
        assert_eq!(summary.completed, peers);
        let max = summary.completion_s.max.unwrap();
        assert!(
            max >= t_star * 0.999,
            "seed {seed}: {max} s beats the optimum {t_star} s"
        );
        assert!(
            summary.received_copies_max <= 1.05,
            "seed {seed}: {summary:?}"
        );
        assert!(summary.hub_copies <= 1.6, "seed {seed}: {summary:?}");
        ratios.push(max / t_star);
    }
    ratios
}

fn mean(v: &[f64]) -> f64 {
    v.iter().sum::<f64>() / v.len() as f64
}

#[test]
fn homogeneous_hub_as_slow_as_a_peer() {
    // Mundinger-Weber-Weiss: T* = (F/u)(1 + floor(log2 N)/M), N = 64, M = 64.
    let ratios = homogeneous_ratios("homogeneous-64.toml", 6.0, 1..=4);
    // Target 1.2 T*; today a mean of 1.36 T* over seeds 1-4 (1.34-1.38;
    // seeds 1-6 1.35, against 1.37 over seeds 1-7 before the fast
    // extension's rejects, when seed 1 alone was 1.29), 1.33 on seed 1 before interest followed
    // what there is to ask a peer for, 1.55 before idle slots were handed on
    // instead of widened and leechers stopped rechoking the peers they
    // serve, 1.76 before clients sized their unchoke slots from their uplink
    // and the piece length.
    assert!(mean(&ratios) <= 1.38, "T* ratios {ratios:.3?}");
}

#[test]
fn homogeneous_256_hub_as_slow_as_a_peer() {
    // The same with N = 256: T* = (F/u)(1 + 8/64).
    let ratios = homogeneous_ratios("homogeneous-256.toml", 8.0, 1..=3);
    // Target 1.2 T*; today a mean of 1.49 T* over seeds 1-3 (1.44-1.57;
    // seeds 1-6 1.47, against 1.48 over seeds 1-7 before the fast
    // extension's rejects, when seed 1 alone was 1.42), 1.45
    // on seed 1 before interest followed what there is to ask a peer for,
    // 1.64 before idle slots were handed on instead of widened and leechers
    // kept the peers they serve.
    assert!(mean(&ratios) <= 1.52, "T* ratios {ratios:.3?}");
}

#[test]
fn hub_twice_as_fast_as_a_peer_keeps_its_uplink_on_new_pieces() {
    // 32 peers at 5 Mbit/s each way and a 10 Mbit/s hub: downloads bound the
    // run (Kumar-Ross F/d = 107.4 s). A super-seed that waited for each
    // peer's pieces to spread before offering it another left its uplink a
    // third used while peers traded, and the last pieces first left the hub
    // near the end: 1.70-1.95x and 3.0-3.6 hub copies over seeds 1-3. Now a
    // waiting peer may take a piece nobody has: 1.09-1.11x, 1.6-1.7 copies.
    for seed in 1..=2 {
        let s = load("hub-twice-a-peer.toml");
        let (_, summary) = run_scenario(s, "h", seed, false, "test", |_, _, _| {});
        assert_eq!(summary.completed, 32);
        let ratio = summary.ratio_to_bound.unwrap();
        assert!((1.0..=1.2).contains(&ratio), "seed {seed}: {ratio}");
        assert!(summary.hub_copies <= 2.0, "seed {seed}: {summary:?}");
        assert!(
            summary.received_copies_max <= 1.05,
            "seed {seed}: {summary:?}"
        );
    }
}

#[test]
fn heterogeneous_classes_against_kumar_ross_and_each_peers_download() {
    // Five classes and 2% of peers at 1 Mbit/s up, 2 Mbit/s down: the last
    // peer within 1.3x the Kumar-Ross bound, the slow peers within 1.3x
    // their own F/d, and nobody fetching duplicates.
    let s = load("heterogeneous-classes.toml");
    let f = s.image.size.0 as f64;
    let slow_d = s
        .groups
        .iter()
        .find(|g| g.name == "slow")
        .unwrap()
        .download
        .bytes_per_s();
    let (sim, summary) = run_scenario(s, "h", 1, false, "test", |_, _, _| {});
    assert_eq!(summary.completed, 500);
    let ratio = summary.ratio_to_bound.unwrap();
    assert!((1.0..=1.3).contains(&ratio), "{ratio}");
    let own = f / slow_d;
    for h in sim.hosts.iter().filter(|h| h.group == "slow") {
        let took = (h.complete_at.unwrap().as_secs_f64()) - h.join_at.unwrap().as_secs_f64();
        assert!(
            (0.999..=1.3).contains(&(took / own)),
            "a slow peer took {took} s, {:.3}x its own F/d {own} s",
            took / own
        );
    }
    assert!(summary.received_copies_mean <= 1.05, "{summary:?}");
    assert!(summary.received_copies_max <= 1.15, "{summary:?}");
}

#[test]
fn poisson_arrivals_against_qiu_srikant() {
    // Qiu & Srikant (2004), fluid model of a swarm in steady state: mean
    // download time T = max{1/c, (1/eta)(1/mu - 1/gamma)}, with c and mu a
    // peer's download and upload in images per second, 1/gamma the seeding
    // time and eta = 1 (every leecher uploads at full rate).
    let s = load("poisson-steady.toml");
    let f = s.image.size.0 as f64;
    let g = &s.groups[0];
    let seed_s = match &s.departure {
        swarmhub_sim::scenario::Departure::SeedFor { duration } => duration.0.as_secs_f64(),
        other => panic!("poisson-steady seeds for a while, not {other:?}"),
    };
    let qs = (f / g.download.bytes_per_s()).max(f / g.upload.bytes_per_s() - seed_s);
    assert!((qs - 23.55).abs() < 0.01, "Qiu-Srikant T {qs} s");
    let (sim, summary) = run_scenario(s, "h", 1, false, "test", |_, _, _| {});
    let took: Vec<f64> = sim
        .hosts
        .iter()
        .skip(1)
        .filter_map(|h| Some(h.complete_at?.as_secs_f64() - h.join_at?.as_secs_f64()))
        .collect();
    assert_eq!(took.len(), 900, "{summary:?}");
    let mean = took.iter().sum::<f64>() / took.len() as f64;
    // Target within 15%; today 1.12x (seeds 1-3: 1.118-1.120; 1.18 before
    // a peer told those it had nothing to ask for that it was not
    // interested, so their slots went to peers that ask).
    assert!(
        mean <= 1.15 * qs,
        "mean {mean} s is {:.3}x Qiu-Srikant's {qs} s",
        mean / qs
    );
    assert!(summary.received_copies_mean <= 1.05, "{summary:?}");
    assert!(summary.received_copies_max <= 1.15, "{summary:?}");
}

#[test]
fn one_fast_link_with_latency_is_kept_full() {
    // One hub -> one client at 1 Gbit/s with 10 ms each way: the pipeline
    // must cover the bandwidth-delay product (125 MB/s x 20 ms = 2.5 MB,
    // 153 blocks of 16 KiB). With at most 64 blocks (1 MiB) in flight the
    // pair ran at 1 MiB per round trip, 52 MB/s, 2.4 times the bound.
    let s = parse(
        r#"
name = "one-fast-link"
[image]
size = "256 MiB"
[hub]
upload = "1 Gbit/s"
[[group]]
name = "client"
count = 1
upload = "1 Gbit/s"
download = "1 Gbit/s"
[network]
latency = "10ms"
"#,
    );
    let (_, summary) = run_scenario(s, "h", 1, false, "test", |_, _, _| {});
    assert_eq!(summary.completed, 1);
    let max = summary.completion_s.max.unwrap();
    assert!(max >= summary.bound_s * 0.999, "{summary:?}");
    assert!(
        max <= 1.1 * summary.bound_s,
        "{max} s is {:.2}x the link's {} s",
        max / summary.bound_s,
        summary.bound_s
    );
}

/// Runs a scenario with sites; returns the summary and, per site, the
/// last peer's completion over the link-aware bound.
fn run_sites(s: Scenario) -> (swarmhub_sim::Summary, Vec<(String, f64)>) {
    let peers: usize = s.groups.iter().map(|g| g.count).sum();
    let (sim, summary) = run_scenario(s, "h", 1, false, "test", |_, _, _| {});
    assert_eq!(summary.completed, peers, "{summary:?}");
    let bound_s = summary.bound_s;
    let mut last: Vec<(String, f64)> = Vec::new();
    for h in sim.hosts.iter().skip(1) {
        let t = h.complete_at.expect("complete").as_secs_f64() / bound_s;
        match last.iter_mut().find(|(site, _)| *site == h.site) {
            Some((_, max)) => *max = max.max(t),
            None => last.push((h.site.clone(), t)),
        }
    }
    (summary, last)
}

/// Image copies that crossed the link `from -> to`.
fn copies(summary: &swarmhub_sim::Summary, from: &str, to: &str) -> f64 {
    let l = summary.links.iter().find(|l| l.from == from && l.to == to);
    l.unwrap_or_else(|| panic!("no link {from} -> {to}: {:?}", summary.links))
        .copies
}

#[test]
fn site_bookkeeping_holds_after_every_event() {
    // Same-site piece counts, far flags and slots checked at every event of
    // a two-site run (`Node::check_invariants`), with peers of both sites
    // joining at once.
    let s = parse(&two_sites(12, 12, "30 Mbit/s"));
    let mut sim = swarmhub_sim::Sim::new(s, 1, false);
    sim.set_check_invariants(true);
    sim.run(|_, _, _| {});
    assert_eq!(sim.violation(), None);
    assert!(sim.hosts.iter().skip(1).all(|h| h.complete_at.is_some()));
}

#[test]
fn thin_links_against_the_link_aware_bound() {
    let s = load("thin-links.toml");
    let b = bound(&s);
    let f = s.image.size.0 as f64;
    assert!((b.site_link_s - f / 12.5e6).abs() < 1e-9, "{b:?}");
    let (summary, per_site) = run_sites(s);
    let ratio = summary.ratio_to_bound.unwrap();
    assert!(ratio >= 1.0);
    // Site locality (peers prefer their own site, fetch across a link only
    // what their site lacks): 4.83 and 3.87 copies per link before, 1.46
    // and 1.36 now; the last peer 4.86x the bound before, 1.49x now
    // (target 1.3x, see README).
    assert!(ratio <= 1.5, "{ratio}");
    for to in ["b", "c"] {
        let c = copies(&summary, "a", to);
        assert!((1.0..=1.5).contains(&c), "a -> {to}: {c} copies");
    }
    for (site, r) in per_site {
        assert!(r <= 1.5, "site {site}: last peer {r:.3}x the bound");
    }
}

#[test]
fn sites_with_the_hub_in_a_site_of_its_own() {
    // Two peer sites behind links of 200 and 50 Mbit/s, the slower one
    // listed first; the hub alone in hq. Before locality: 8.13 and 6.83
    // copies across the links and 7.88x the bound; now 1.73, 1.71 and
    // 1.89x (targets 1.5 copies and 1.3x: see README).
    let (summary, per_site) = run_sites(load("sites-hub-apart.toml"));
    let ratio = summary.ratio_to_bound.unwrap();
    assert!((1.0..=1.95).contains(&ratio), "{ratio}");
    for to in ["west", "east"] {
        let c = copies(&summary, "hq", to);
        assert!((1.0..=1.8).contains(&c), "hq -> {to}: {c} copies");
    }
    assert!(per_site.iter().all(|(_, r)| *r <= 1.95), "{per_site:?}");
    assert!(summary.received_copies_max <= 1.05, "{summary:?}");
}

#[test]
fn four_sites_in_a_star_of_unequal_links() {
    // Hub and 30 peers in a; 20, 30 and 10 peers behind 100, 50 and
    // 25 Mbit/s links, groups listed out of topology order. Before
    // locality: 9.59, 8.14 and 6.51 copies, 6.17x the bound; now 1.80,
    // 1.59, 1.45 copies and 1.45x.
    let (summary, per_site) = run_sites(load("sites-star-4.toml"));
    let ratio = summary.ratio_to_bound.unwrap();
    assert!((1.0..=1.5).contains(&ratio), "{ratio}");
    for (to, max) in [("b", 1.9), ("c", 1.7), ("d", 1.5)] {
        let c = copies(&summary, "a", to);
        assert!((1.0..=max).contains(&c), "a -> {to}: {c} copies");
    }
    // The site behind the thinnest link is the last; none is left behind.
    let d = per_site.iter().find(|(s, _)| s == "d").unwrap().1;
    assert!(per_site.iter().all(|(_, r)| *r <= d), "{per_site:?}");
    assert!(d <= 1.5, "{per_site:?}");
}
