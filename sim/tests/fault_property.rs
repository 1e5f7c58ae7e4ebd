//! Property test of the swarm under faults, in the simulator: many seeds,
//! each drawing a small swarm and its faults (crashes with restart, graceful
//! leaves and rejoins, a hub outage, corrupt peers) from the seed, run with
//! every node's invariants and the engine's byte conservation checked after
//! every event (`Sim::set_check_invariants`). At the end: every honest peer
//! completed, nobody banned an honest peer, bytes are conserved.
//!
//! `SWARMHUB_PROP_SEEDS=N` runs seeds 0..N (default 32);
//! `SWARMHUB_PROP_SEED=N` runs seed N alone. A failing seed prints the
//! command that reruns it.

use std::fmt::Write as _;
use std::path::Path;

use rand::RngExt;
use swarmhub_core::rng::from_seed;
use swarmhub_sim::engine::HostState;
use swarmhub_sim::{Scenario, Sim};

/// Group name of the corrupt peers.
const BAD: &str = "bad";

/// The scenario of `seed`, as TOML (so a failure can show it).
fn draw(seed: u64) -> String {
    let mut rng = from_seed(seed ^ 0x5eed_fa17);
    let honest = rng.random_range(8..=16usize);
    let corrupt = if rng.random_bool(0.5) {
        rng.random_range(1..=3usize)
    } else {
        0
    };
    let pieces = rng.random_range(16..=64u64);
    let piece_kib = *[32u64, 64].get(rng.random_range(0..2usize)).unwrap();
    let hub_mbit = rng.random_range(4..=50u32);
    // Time for the hub to send one copy, ms: faults are drawn on this scale
    // so that they land while peers still download.
    let copy_ms = (pieces * piece_kib * 8 * 1024 / 1000 / u64::from(hub_mbit)).max(200) as u32;
    let mut t = String::new();
    writeln!(t, "name = \"fault-property-{seed}\"").unwrap();
    writeln!(t, "duration = \"900s\"").unwrap();
    writeln!(t, "[image]").unwrap();
    writeln!(t, "size = \"{} KiB\"", pieces * piece_kib).unwrap();
    writeln!(t, "piece_size = \"{piece_kib} KiB\"").unwrap();
    writeln!(t, "[hub]\nupload = \"{hub_mbit} Mbit/s\"").unwrap();
    for (name, count) in [("honest", honest), (BAD, corrupt)] {
        if count == 0 {
            continue;
        }
        let up = rng.random_range(2..=40u32);
        let down = rng.random_range(up.max(10)..=100u32);
        writeln!(
            t,
            "[[group]]\nname = \"{name}\"\ncount = {count}\nupload = \"{up} Mbit/s\"\ndownload = \"{down} Mbit/s\""
        )
        .unwrap();
        if name == BAD {
            writeln!(t, "corrupt = true").unwrap();
        }
    }
    match rng.random_range(0..3u32) {
        0 => writeln!(t, "[arrival]\nkind = \"flash\"").unwrap(),
        1 => writeln!(
            t,
            "[arrival]\nkind = \"staggered\"\ninterval = \"{}ms\"",
            rng.random_range(50..=1000u32)
        )
        .unwrap(),
        _ => writeln!(
            t,
            "[arrival]\nkind = \"poisson\"\nrate = {}",
            rng.random_range(1.0..10.0f64)
        )
        .unwrap(),
    }
    if rng.random_bool(0.5) {
        writeln!(
            t,
            "[departure]\nkind = \"seed-for\"\nduration = \"{}s\"",
            rng.random_range(1..=30u32)
        )
        .unwrap();
    }
    let window = |rng: &mut swarmhub_core::rng::Rng| {
        format!(
            "fraction = {:.2}\nstart = \"{}ms\"\nwindow = \"{}ms\"\ndowntime = \"{}ms\"",
            rng.random_range(0.1..0.5f64),
            rng.random_range(0..=copy_ms),
            rng.random_range(copy_ms / 10..=copy_ms * 2),
            rng.random_range(copy_ms / 20..=copy_ms)
        )
    };
    if rng.random_bool(0.6) {
        writeln!(t, "[churn]\n{}", window(&mut rng)).unwrap();
    }
    let mut faults = String::new();
    if rng.random_bool(0.5) {
        let start = rng.random_range(0..=copy_ms);
        let len = rng.random_range(copy_ms / 10..=copy_ms * 2);
        writeln!(
            faults,
            "hub_outage = {{ start = \"{start}ms\", end = \"{}ms\" }}",
            start + len
        )
        .unwrap();
    }
    if rng.random_bool(0.5) {
        writeln!(faults, "[faults.leave_rejoin]\n{}", window(&mut rng)).unwrap();
    }
    if !faults.is_empty() {
        writeln!(t, "[faults]\n{faults}").unwrap();
    }
    // Few slots and connections make the choker and the connection limits work.
    writeln!(
        t,
        "[protocol]\nunchoke_slots = {}\nmax_peers = {}\nrechoke_interval = \"{}s\"",
        rng.random_range(1..=6usize),
        rng.random_range(4..=20usize),
        rng.random_range(2..=10u32)
    )
    .unwrap();
    t
}

/// How much of each fault one run saw.
#[derive(Default, Debug)]
struct Seen {
    /// Bans (all of corrupt peers, or the run failed).
    bans: usize,
    /// Peer restarts after a crash or a graceful leave.
    restarts: u32,
    /// Hub restarts after an outage.
    hub_restarts: u32,
    /// Block bytes lost on closed connections.
    bytes_lost: u64,
    /// Events processed (all checked).
    events: u64,
}

/// Run `seed`; Err says what went wrong.
fn run(seed: u64) -> Result<Seen, String> {
    let text = draw(seed);
    let scenario = Scenario::parse(&text, Path::new("fault_property.toml"))
        .map_err(|e| format!("bad drawn scenario: {e}\n{text}"))?;
    let mut sim = Sim::new(scenario, seed, false);
    sim.set_check_invariants(true);
    sim.run(|_, _, _| {});
    if let Some(v) = sim.violation() {
        return Err(v.to_string());
    }
    sim.conservation()?;
    let honest = |h: usize| h != 0 && sim.hosts[h].group != BAD;
    for ban in &sim.bans {
        match ban.whom {
            Some(w) if sim.hosts[w].group == BAD => {}
            _ => {
                return Err(format!(
                    "host {} banned {:?} ({}) at t={:.3}s, not a corrupt peer",
                    ban.by,
                    ban.whom,
                    ban.reason,
                    ban.at.as_secs_f64()
                ))
            }
        }
    }
    let stuck: Vec<String> = (1..sim.hosts.len())
        .filter(|&h| honest(h) && sim.hosts[h].complete_at.is_none())
        .map(|h| format!("{h} ({:?})", sim.hosts[h].state()))
        .collect();
    if !stuck.is_empty() {
        return Err(format!(
            "honest peers incomplete at t={:.1}s: {}",
            sim.now().as_secs_f64(),
            stuck.join(", ")
        ));
    }
    // Nobody is left crashed or paused for good.
    if let Some(h) = (1..sim.hosts.len()).find(|&h| sim.hosts[h].state() == HostState::Crashed) {
        return Err(format!("host {h} never restarted"));
    }
    // A crash or pause adds one incarnation and its restart another.
    let restarts = |h: &swarmhub_sim::engine::SimHost| h.incarnation().saturating_sub(1) / 2;
    Ok(Seen {
        bans: sim.bans.len(),
        restarts: sim.hosts[1..].iter().map(restarts).sum(),
        hub_restarts: restarts(&sim.hosts[0]),
        bytes_lost: sim.bytes_lost,
        events: sim.events,
    })
}

#[test]
fn swarm_survives_seeded_faults() {
    let seeds: Vec<u64> = match std::env::var("SWARMHUB_PROP_SEED") {
        Ok(s) => vec![s.parse().expect("SWARMHUB_PROP_SEED is a number")],
        Err(_) => {
            let n = std::env::var("SWARMHUB_PROP_SEEDS")
                .ok()
                .map_or(32, |s| s.parse().expect("SWARMHUB_PROP_SEEDS is a number"));
            (0..n).collect()
        }
    };
    let mut failed = Vec::new();
    let mut total = Seen::default();
    for &seed in &seeds {
        match run(seed) {
            Ok(seen) => {
                total.bans += seen.bans;
                total.restarts += seen.restarts;
                total.hub_restarts += seen.hub_restarts;
                total.bytes_lost += seen.bytes_lost;
                total.events += seen.events;
            }
            Err(reason) => {
                eprintln!(
                "seed {seed} failed: {reason}; rerun: SWARMHUB_PROP_SEED={seed} cargo test -p swarmhub-sim --test fault_property"
            );
                failed.push(seed);
            }
        }
    }
    eprintln!("{} seeds, faults seen: {total:?}", seeds.len());
    assert!(
        failed.is_empty(),
        "{} of {} seeds failed: {failed:?} (see above)",
        failed.len(),
        seeds.len()
    );
    if seeds.len() >= 16 {
        // The drawn faults really happen (the default 32 seeds see each kind).
        assert!(total.bans > 0, "no corrupt peer was banned: {total:?}");
        assert!(
            total.restarts > 0,
            "no peer crashed or left and came back: {total:?}"
        );
        assert!(total.hub_restarts > 0, "the hub never went down: {total:?}");
        assert!(
            total.bytes_lost > 0,
            "no block was cut off by a closed connection: {total:?}"
        );
    }
}
