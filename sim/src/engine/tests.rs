//! Truth checks of the engine against physics and against itself.

use std::path::Path;

use proptest::prelude::*;

use crate::bound::bound;
use crate::scenario::Scenario;
use crate::{output, run_scenario};

fn scenario(text: &str) -> Scenario {
    Scenario::parse(text, Path::new("test.toml")).unwrap()
}

fn simple(
    peers: usize,
    size: &str,
    hub_up: &str,
    peer_up: &str,
    peer_down: &str,
    extra: &str,
) -> String {
    format!(
        r#"
name = "t"
[image]
size = "{size}"
[hub]
upload = "{hub_up}"
[[group]]
name = "p"
count = {peers}
upload = "{peer_up}"
download = "{peer_down}"
{extra}
"#
    )
}

fn max_completion(text: &str, seed: u64) -> (f64, f64, crate::Summary) {
    let s = scenario(text);
    let b = bound(&s).bound_s;
    let (_, summary) = run_scenario(s, "h", seed, false, "test", |_, _, _| {});
    assert_eq!(
        summary.completed, summary.peers,
        "not every peer completed: {summary:?}"
    );
    (summary.completion_s.max.unwrap(), b, summary)
}

#[test]
fn one_seed_to_one_peer_takes_size_over_rate_plus_latency() {
    // 128 MiB at min(200 Mbit/s up, 100 Mbit/s down) = 10.737 s, 10 ms latency.
    let text = simple(1, "128 MiB", "200 Mbit/s", "100 Mbit/s", "100 Mbit/s", "");
    let (t, _, _) = max_completion(&text, 1);
    let ideal = (128u64 << 20) as f64 / (100e6 / 8.0) + 0.010;
    let err = (t - ideal).abs() / ideal;
    assert!(
        err < 0.02,
        "took {t:.3} s, ideal {ideal:.3} s, error {:.2}%",
        err * 100.0
    );
}

#[test]
fn payload_efficiency_scales_transfer_time_and_bound() {
    // The same transfer as above with 95.6% of each link carrying payload:
    // 1/0.956 times as long, and the bound moves with it.
    let extra = "[network]\npayload_efficiency = 0.956";
    let text = simple(
        1,
        "128 MiB",
        "200 Mbit/s",
        "100 Mbit/s",
        "100 Mbit/s",
        extra,
    );
    let (t, b, _) = max_completion(&text, 1);
    let ideal = (128u64 << 20) as f64 / (0.956 * 100e6 / 8.0) + 0.010;
    let err = (t - ideal).abs() / ideal;
    assert!(err < 0.02, "took {t:.3} s, ideal {ideal:.3} s");
    let plain = bound(&scenario(&simple(
        1,
        "128 MiB",
        "200 Mbit/s",
        "100 Mbit/s",
        "100 Mbit/s",
        "",
    )))
    .bound_s;
    assert!((b * 0.956 - plain).abs() < 1e-9, "bound {b} vs {plain}");
}

#[test]
fn hub_only_takes_n_copies_over_hub_upload() {
    // 10 peers x 32 MiB through a 100 Mbit/s hub: 26.84 s.
    let extra = "[protocol]\np2p = false";
    let text = simple(
        10,
        "32 MiB",
        "100 Mbit/s",
        "100 Mbit/s",
        "100 Mbit/s",
        extra,
    );
    let (t, b, summary) = max_completion(&text, 1);
    let ideal = 10.0 * (32u64 << 20) as f64 / (100e6 / 8.0);
    assert!((b - ideal).abs() < 1e-9, "hub-only bound {b}");
    let err = (t - ideal).abs() / ideal;
    assert!(
        err < 0.02,
        "took {t:.3} s, ideal {ideal:.3} s, error {:.2}%",
        err * 100.0
    );
    assert_eq!(summary.peer_bytes_up, 0, "hub-only peers must not upload");
    assert!(
        (summary.hub_copies - 10.0).abs() < 0.01,
        "hub copies {}",
        summary.hub_copies
    );
}

#[test]
fn same_seed_same_files_and_different_seed_different_trace() {
    let text = simple(12, "8 MiB", "100 Mbit/s", "50 Mbit/s", "100 Mbit/s", "");
    let dir = tempfile::tempdir().unwrap();
    let run = |seed: u64, name: &str| {
        let (sim, summary) = run_scenario(scenario(&text), "h", seed, true, "test", |_, _, _| {});
        let out = dir.path().join(name);
        output::write(&sim, &summary, &out).unwrap();
        out
    };
    let a = run(5, "a");
    let b = run(5, "b");
    let c = run(6, "c");
    for file in ["peers.csv", "timeline.csv", "events.csv"] {
        let fa = std::fs::read(a.join(file)).unwrap();
        assert!(!fa.is_empty());
        assert_eq!(
            fa,
            std::fs::read(b.join(file)).unwrap(),
            "{file} differs for the same seed"
        );
    }
    let masked = |p: &Path| -> serde_json::Value {
        let mut v: serde_json::Value =
            serde_json::from_slice(&std::fs::read(p.join("summary.json")).unwrap()).unwrap();
        for k in ["wall_s", "events_per_s", "sim_s_per_wall_s"] {
            v[k] = serde_json::Value::Null;
        }
        v
    };
    assert_eq!(
        masked(&a),
        masked(&b),
        "summary differs beyond wall-clock fields"
    );
    assert_ne!(
        std::fs::read(a.join("events.csv")).unwrap(),
        std::fs::read(c.join("events.csv")).unwrap(),
        "a different seed gave the same trace"
    );
}

#[test]
fn corrupt_peers_are_banned_and_honest_peers_complete() {
    let text = r#"
name = "c"
[image]
size = "8 MiB"
[hub]
upload = "100 Mbit/s"
[[group]]
name = "honest"
count = 8
upload = "50 Mbit/s"
download = "100 Mbit/s"
[[group]]
name = "bad"
count = 2
upload = "100 Mbit/s"
download = "100 Mbit/s"
corrupt = true
"#;
    let (sim, summary) = run_scenario(scenario(text), "h", 3, true, "test", |_, _, _| {});
    assert_eq!(summary.completed, 10, "{summary:?}");
    let trace = sim.trace.as_ref().unwrap();
    let bans = trace
        .iter()
        .filter(|(_, _, e)| e.contains("PeerBanned"))
        .count();
    let failures = trace
        .iter()
        .filter(|(_, _, e)| e.contains("PieceFailed"))
        .count();
    assert!(failures > 0, "corrupt peers sent nothing that failed");
    assert!(bans > 0, "nobody banned a corrupt peer");
    // Every failed piece is thrown away and counted as wasted, per peer and
    // in the total.
    let piece = summary.piece_bytes as u64;
    let wasted = summary.wasted_bytes.expect("the simulator counts waste");
    assert!(
        wasted >= failures as u64 * piece,
        "{wasted} wasted bytes for {failures} failed pieces of {piece}"
    );
    let per_peer: u64 = (1..sim.hosts.len()).map(|h| sim.wasted(h)).sum();
    assert_eq!(per_peer, wasted);
    for (_, _, e) in trace.iter().filter(|(_, _, e)| e.contains("PeerBanned")) {
        assert!(
            e.contains("peer-9") || e.contains("peer-10"),
            "an honest peer was banned: {e}"
        );
    }
}

#[test]
fn churn_and_hub_outage_still_complete() {
    let extra = r#"
[churn]
fraction = 0.3
start = "1s"
window = "3s"
downtime = "2s"
[faults]
hub_outage = { start = "2s", end = "6s" }
"#;
    let text = simple(20, "16 MiB", "100 Mbit/s", "50 Mbit/s", "100 Mbit/s", extra);
    let (_, summary) = run_scenario(scenario(&text), "h", 9, false, "test", |_, _, _| {});
    assert_eq!(summary.completed, 20, "{summary:?}");
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 12, .. ProptestConfig::default() })]
    /// A model that beats physics is wrong: no flash crowd completes faster
    /// than the Kumar-Ross bound.
    #[test]
    fn flash_crowd_never_beats_the_bound(
        peers in 1usize..25,
        size_mib in 1u64..24,
        hub_mbit in prop::sample::select(vec![10u32, 50, 100, 1000]),
        up_mbit in prop::sample::select(vec![5u32, 20, 100]),
        down_mbit in prop::sample::select(vec![20u32, 100, 1000]),
        p2p in any::<bool>(),
        seed in any::<u64>(),
    ) {
        let extra = format!("[protocol]\np2p = {p2p}");
        let text = simple(peers, &format!("{size_mib} MiB"), &format!("{hub_mbit} Mbit/s"),
            &format!("{up_mbit} Mbit/s"), &format!("{down_mbit} Mbit/s"), &extra);
        let (t, b, _) = max_completion(&text, seed);
        prop_assert!(t >= b * (1.0 - 1e-9), "completed in {t} s, bound {b} s (seed {seed})");
    }
}

/// A hub no faster than a peer and peers of two speeds, one of them slow:
/// request pipelines sized from each peer's rate and timeouts that cancel
/// keep the received bytes near one image (before they were sized alike,
/// slow peers received two to three images' worth). The slowest still
/// receive up to about 1.22 images here; issue 12's target is 1.15, so the
/// bound below is the regression guard, not the goal.
#[test]
fn peers_receive_about_one_image_whatever_their_speed() {
    let text = r#"
name = "t"
[image]
size = "8 MiB"
piece_size = "256 KiB"
[hub]
upload = "20 Mbit/s"
[[group]]
name = "fast"
count = 24
upload = "20 Mbit/s"
download = "80 Mbit/s"
[[group]]
name = "slow"
count = 4
upload = "1 Mbit/s"
download = "2 Mbit/s"
"#;
    let (_, _, summary) = max_completion(text, 3);
    assert!(
        summary.received_copies_mean <= 1.05,
        "mean received {:.3} images",
        summary.received_copies_mean
    );
    assert!(
        summary.received_copies_max <= 1.3,
        "a peer received {:.3} images",
        summary.received_copies_max
    );
    assert!(summary.received_copies_mean >= 1.0, "every peer completed");
    // Without faults the waste is duplicates only: a few percent at most.
    let wasted = summary.wasted_bytes.expect("counted") as f64;
    let image = (summary.image_bytes * summary.peers as u64) as f64;
    assert!(
        wasted / image < 0.05,
        "wasted {:.3} of the images",
        wasted / image
    );
}

/// A corrupt block stored before a crash must not fail the piece the
/// restarted peer later downloads from an honest peer (it did: the honest
/// sole source was banned; found by tests/fault_property.rs, seeds 129, 192).
#[test]
fn a_restart_forgets_corrupt_blocks_of_the_last_incarnation() {
    let text = simple(2, "1 MiB", "10 Mbit/s", "10 Mbit/s", "10 Mbit/s", "");
    let mut sim = super::Sim::new(scenario(&text), 1, false);
    sim.tainted.insert((1, 0));
    sim.tainted.insert((2, 0));
    sim.start_node(1);
    assert!(!sim.tainted.contains(&(1, 0)));
    assert!(sim.tainted.contains(&(2, 0)), "another host's taint stays");
}

/// A checked run of a faulty swarm finds nothing wrong, and the byte
/// counters balance; a count broken by hand is reported with host and seed.
#[test]
fn checked_run_balances_and_reports_a_violation() {
    let extra = r#"
[churn]
fraction = 0.3
start = "500ms"
window = "1s"
downtime = "500ms"
[faults]
hub_outage = { start = "1s", end = "2s" }
leave_rejoin = { fraction = 0.3, start = "200ms", window = "1s", downtime = "1s" }
"#;
    let text = simple(10, "2 MiB", "20 Mbit/s", "10 Mbit/s", "40 Mbit/s", extra);
    let mut sim = super::Sim::new(scenario(&text), 4, false);
    sim.set_check_invariants(true);
    sim.run(|_, _, _| {});
    assert_eq!(sim.violation(), None);
    assert_eq!(sim.completed, 10);
    sim.conservation().unwrap();
    let paused_or_crashed = sim.hosts[1..]
        .iter()
        .filter(|h| h.incarnation() > 1)
        .count();
    assert!(paused_or_crashed > 0, "no peer left or crashed");

    let mut sim = super::Sim::new(scenario(&text), 4, false);
    sim.set_check_invariants(true);
    sim.bytes_lost = 1;
    sim.run(|_, _, _| {});
    let v = sim.violation().expect("the broken count is found");
    assert!(
        v.contains("seed 4") && v.contains("bytes not conserved"),
        "{v}"
    );
}
