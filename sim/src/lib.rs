//! swarmhub-sim: a deterministic discrete-event simulator that drives the
//! unmodified swarmhub-core state machines over a virtual network, so capacity
//! planners can see how peer count, bandwidth, topology and protocol knobs
//! change distribution time and hub load before rollout.

pub mod bound;
pub mod engine;
pub mod net;
pub mod output;
pub mod scenario;
pub mod sweep;
pub mod topology;
pub mod units;

use std::path::Path;
use std::time::Instant as WallInstant;

pub use engine::Sim;
pub use output::Summary;
pub use scenario::{Scenario, ScenarioError};

/// Run a scenario with `seed`, returning the finished simulation and its summary.
/// `progress` sees (simulated seconds, completed, total) now and then.
pub fn run_scenario(
    scenario: Scenario,
    scenario_hash: &str,
    seed: u64,
    trace: bool,
    command: &str,
    progress: impl FnMut(swarmhub_core::Instant, usize, usize),
) -> (Sim, Summary) {
    let start = WallInstant::now();
    let mut sim = Sim::new(scenario, seed, trace);
    sim.run(progress);
    let wall_s = start.elapsed().as_secs_f64();
    let summary = output::summary(&sim, scenario_hash, wall_s, command);
    (sim, summary)
}

/// Load, run and write a scenario into `out`.
pub fn run_file(
    path: &Path,
    seed: Option<u64>,
    out: &Path,
    trace: bool,
) -> anyhow::Result<Summary> {
    let (scenario, text) = Scenario::load(path)?;
    let seed = seed.unwrap_or(scenario.seed);
    let hash = Scenario::hash_text(&text);
    let command = format!(
        "swarmhub-sim run {} --seed {seed} --out {}",
        path.display(),
        out.display()
    );
    let (sim, summary) = run_scenario(scenario, &hash, seed, trace, &command, |_, _, _| {});
    output::write(&sim, &summary, out)?;
    Ok(summary)
}
