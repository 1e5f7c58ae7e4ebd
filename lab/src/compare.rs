//! `swarmhub-lab compare`: one scenario in the simulator and in the lab with
//! each engine, side by side. Every run gets its own folder under OUT
//! (`sim/`, `swarmhub/`, `qbittorrent/`, ...), an `overlay.txt` naming the
//! others (so each report's completion CDF draws every run) and a report;
//! OUT/comparison.csv and OUT/comparison.md hold one row a run, and the
//! simulator-against-lab agreement of p50 and max for swarmhub.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use anyhow::{Context, Result};
use serde_json::Value;

use crate::engine::EngineKind;
use crate::run::{self, RunOptions};

/// How close the simulator's p50 and max must be to the swarmhub lab run's
/// (the real-network issue asks for 15%, aiming at 10%).
pub const AGREEMENT: f64 = 0.15;

/// Options of `swarmhub-lab compare`.
#[derive(Clone, Debug)]
pub struct CompareOptions {
    /// Scenario file.
    pub scenario: PathBuf,
    /// Output folder (one sub-folder a run).
    pub out: PathBuf,
    /// Engines to run in the lab, in order.
    pub engines: Vec<EngineKind>,
    /// Simulator seed (default: the scenario's).
    pub seed: Option<u64>,
    /// apt-get the stock engines' packages first.
    pub install: bool,
    /// Options every lab run shares (`out`, `engine` and `command` are set per run).
    pub run: RunOptions,
}

/// One row of the comparison.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct CompareRow {
    /// `sim` or the engine's name.
    pub run: String,
    /// Peers that completed.
    pub completed: u64,
    /// Peers.
    pub peers: u64,
    /// Median completion, seconds.
    pub p50_s: Option<f64>,
    /// Slowest completion, seconds.
    pub max_s: Option<f64>,
    /// Kumar-Ross bound, seconds.
    pub bound_s: f64,
    /// Payload image copies the hub (seed) sent, where the run measures it.
    pub seed_payload_copies: Option<f64>,
    /// Image copies the hub's veth sent on the wire (lab runs).
    pub seed_wire_copies: Option<f64>,
    /// Mean busy fraction of the CPUs (lab runs).
    pub cpu_busy: Option<f64>,
    /// The lab flagged the run as CPU bound.
    pub cpu_saturated: bool,
    /// Share of the packets offered to the clients' download shapers that
    /// they dropped (lab runs).
    pub down_drop_fraction: Option<f64>,
    /// Why the run has no figures.
    pub error: Option<String>,
}

impl CompareRow {
    /// max / bound.
    pub fn ratio_to_bound(&self) -> Option<f64> {
        Some(self.max_s? / self.bound_s).filter(|r| r.is_finite())
    }

    /// A row from a run's `summary.json` (simulator or lab).
    pub fn from_summary(run: &str, s: &Value) -> CompareRow {
        let f = |k: &str| s.get(k).and_then(Value::as_f64);
        let u = |k: &str| s.get(k).and_then(Value::as_u64).unwrap_or(0);
        let pct = |k: &str| {
            s.pointer(&format!("/completion_s/{k}"))
                .and_then(Value::as_f64)
        };
        let lab = s.get("kind").and_then(Value::as_str) == Some("lab");
        let per_source = s
            .get("per_client_sources")
            .and_then(Value::as_bool)
            .unwrap_or(!lab);
        let image = u("image_bytes").max(1) as f64;
        CompareRow {
            run: run.to_string(),
            completed: u("completed"),
            peers: u("peers"),
            p50_s: pct("p50"),
            max_s: pct("max"),
            bound_s: f("bound_s").unwrap_or(f64::NAN),
            seed_payload_copies: per_source.then(|| f("hub_copies")).flatten(),
            seed_wire_copies: lab.then(|| u("hub_wire_bytes_up") as f64 / image),
            cpu_busy: f("cpu_busy"),
            cpu_saturated: s.get("cpu_saturated").and_then(Value::as_bool) == Some(true),
            down_drop_fraction: lab
                .then(|| {
                    crate::counters::Shaper {
                        packets: s.get("shaper_down_packets")?.as_u64()?,
                        drops: s.get("shaper_down_drops")?.as_u64()?,
                    }
                    .drop_fraction()
                    .into()
                })
                .flatten(),
            error: None,
        }
    }

    /// A row for a run that failed.
    pub fn failed(run: &str, error: String) -> CompareRow {
        CompareRow {
            run: run.to_string(),
            bound_s: f64::NAN,
            error: Some(error),
            ..CompareRow::default()
        }
    }
}

/// `(lab - sim) / lab` for p50 and max: how far the simulator is from the
/// swarmhub lab run, as fractions of the lab's figures.
pub fn agreement(sim: &CompareRow, lab: &CompareRow) -> Option<(f64, f64)> {
    let rel = |s: Option<f64>, l: Option<f64>| Some((s? - l?) / l?).filter(|x| x.is_finite());
    Some((rel(sim.p50_s, lab.p50_s)?, rel(sim.max_s, lab.max_s)?))
}

fn opt(v: Option<f64>, digits: usize) -> String {
    v.map_or_else(|| "-".into(), |v| format!("{v:.digits$}"))
}

/// `comparison.csv`: one line a run.
pub fn csv(rows: &[CompareRow]) -> String {
    let mut w = csv::Writer::from_writer(Vec::new());
    let cell = |v: Option<f64>| v.map_or_else(String::new, |v| format!("{v:.4}"));
    let header = [
        "run",
        "completed",
        "peers",
        "p50_s",
        "max_s",
        "bound_s",
        "ratio_to_bound",
        "seed_payload_copies",
        "seed_wire_copies",
        "cpu_busy",
        "cpu_saturated",
        "down_drop_fraction",
        "error",
    ];
    // Writing into a Vec cannot fail.
    let _ = w.write_record(header);
    for r in rows {
        let _ = w.write_record([
            r.run.clone(),
            r.completed.to_string(),
            r.peers.to_string(),
            cell(r.p50_s),
            cell(r.max_s),
            cell(Some(r.bound_s).filter(|b| b.is_finite())),
            cell(r.ratio_to_bound()),
            cell(r.seed_payload_copies),
            cell(r.seed_wire_copies),
            cell(r.cpu_busy),
            r.cpu_saturated.to_string(),
            cell(r.down_drop_fraction),
            r.error.clone().unwrap_or_default(),
        ]);
    }
    String::from_utf8(w.into_inner().unwrap_or_default()).unwrap_or_default()
}

/// `comparison.md`: the table, then the simulator's agreement with the
/// swarmhub lab run.
pub fn markdown(scenario: &str, rows: &[CompareRow]) -> String {
    let mut out = format!(
        "# {scenario}: simulator and lab engines\n\n\
         | run | completed | p50 (s) | max (s) | max / bound | seed payload copies | \
         seed wire copies | CPU busy | download drops |\n|---|---|---|---|---|---|---|---|---|\n"
    );
    for r in rows {
        if let Some(e) = &r.error {
            let _ = writeln!(
                out,
                "| {} | failed: {} | | | | | | | |",
                r.run,
                e.replace('|', "/")
            );
            continue;
        }
        let cpu = match r.cpu_busy {
            Some(b) if r.cpu_saturated => format!("{:.0}% (CPU BOUND)", b * 100.0),
            Some(b) => format!("{:.0}%", b * 100.0),
            None => "-".into(),
        };
        let _ = writeln!(
            out,
            "| {} | {}/{} | {} | {} | {} | {} | {} | {} | {} |",
            r.run,
            r.completed,
            r.peers,
            opt(r.p50_s, 1),
            opt(r.max_s, 1),
            opt(r.ratio_to_bound(), 2),
            opt(r.seed_payload_copies, 2),
            opt(r.seed_wire_copies, 2),
            cpu,
            r.down_drop_fraction
                .map_or_else(|| "-".into(), |d| format!("{:.1}%", d * 100.0))
        );
    }
    if let Some(b) = rows.iter().map(|r| r.bound_s).find(|b| b.is_finite()) {
        let _ = writeln!(out, "\nKumar-Ross bound: {b:.2} s.");
    }
    let sim = rows.iter().find(|r| r.run == "sim" && r.error.is_none());
    let lab = rows
        .iter()
        .find(|r| r.run == "swarmhub" && r.error.is_none());
    if let Some((p50, max)) = sim.zip(lab).and_then(|(s, l)| agreement(s, l)) {
        let verdict = |x: f64| {
            if x.abs() <= AGREEMENT {
                "within"
            } else {
                "OUTSIDE"
            }
        };
        let _ = writeln!(
            out,
            "\nSimulator against the swarmhub lab run: p50 {:+.1}%, max {:+.1}% \
             (p50 {} and max {} the {:.0}% target).",
            p50 * 100.0,
            max * 100.0,
            verdict(p50),
            verdict(max),
            AGREEMENT * 100.0
        );
    }
    out
}

/// Write `dir/overlay.txt` naming other runs, as (folder relative to `dir`
/// or absolute, legend label), in the format `swarmhub_reports::load` reads.
pub fn write_overlay_file(dir: &Path, others: &[(String, String)]) -> std::io::Result<()> {
    let mut text = String::from("# runs drawn beside this one (folder<TAB>label)\n");
    for (folder, label) in others {
        let _ = writeln!(text, "{folder}\t{label}");
    }
    std::fs::write(dir.join("overlay.txt"), text)
}

fn legend(run: &str) -> String {
    if run == "sim" {
        "simulator".into()
    } else {
        format!("{run} lab")
    }
}

/// Run the simulator and every engine, then write overlays, reports and
/// the comparison. A failed engine is recorded and the others still run;
/// an interruption stops at once.
pub fn compare(opts: &CompareOptions, interrupted: Arc<AtomicBool>) -> Result<Vec<CompareRow>> {
    run::preflight()?;
    std::fs::create_dir_all(&opts.out)
        .with_context(|| format!("creating {}", opts.out.display()))?;
    let (scenario, text) = swarmhub_sim::Scenario::load(&opts.scenario)?;
    let sim_dir = opts.out.join("sim");
    eprintln!("swarmhub-lab: simulator run into {}", sim_dir.display());
    swarmhub_sim::run_file(&opts.scenario, opts.seed, &sim_dir, false)?;
    std::fs::write(sim_dir.join("scenario.toml"), &text)?;
    let mut done = vec!["sim".to_string()];

    for &engine in &opts.engines {
        if interrupted.load(Ordering::Relaxed) {
            anyhow::bail!("interrupted");
        }
        let name = engine.name();
        let run_opts = RunOptions {
            out: opts.out.join(name),
            engine,
            command: format!("{} (engine {name})", opts.run.command),
            ..opts.run.clone()
        };
        let result = if opts.install {
            crate::engine::stock::install(engine)
        } else {
            Ok(())
        }
        .and_then(|()| run::run(&run_opts, interrupted.clone()));
        match result {
            Ok(_) => done.push(name.to_string()),
            Err(e) if interrupted.load(Ordering::Relaxed) => return Err(e),
            Err(e) => {
                eprintln!("swarmhub-lab: engine {name} failed: {e:#}");
                std::fs::write(opts.out.join(format!("{name}.error")), format!("{e:#}\n"))?;
            }
        }
    }

    let mut rows = Vec::new();
    for name in std::iter::once("sim").chain(opts.engines.iter().map(|e| e.name())) {
        let dir = opts.out.join(name);
        if !done.iter().any(|d| d == name) {
            let why =
                std::fs::read_to_string(opts.out.join(format!("{name}.error"))).unwrap_or_default();
            rows.push(CompareRow::failed(name, why.trim().to_string()));
            continue;
        }
        let others: Vec<(String, String)> = done
            .iter()
            .filter(|d| *d != name)
            .map(|d| (format!("../{d}"), legend(d)))
            .collect();
        write_overlay_file(&dir, &others)?;
        swarmhub_reports::write_report(&dir)
            .with_context(|| format!("writing the report of {}", dir.display()))?;
        let json = std::fs::read_to_string(dir.join("summary.json"))?;
        let summary: Value = serde_json::from_str(&json)
            .with_context(|| format!("{}/summary.json", dir.display()))?;
        rows.push(CompareRow::from_summary(name, &summary));
    }
    std::fs::write(opts.out.join("comparison.csv"), csv(&rows))?;
    std::fs::write(
        opts.out.join("comparison.md"),
        markdown(&scenario.name, &rows),
    )?;
    Ok(rows)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lab_summary(engine: &str, p50: f64, max: f64, per_source: bool) -> Value {
        serde_json::json!({
            "scenario": "s", "peers": 4, "completed": 4, "image_bytes": 1000,
            "completion_s": {"p50": p50, "p90": max, "p99": max, "max": max},
            "bound_s": 10.0, "hub_copies": 1.5, "kind": "lab", "engine": engine,
            "per_client_sources": per_source, "hub_wire_bytes_up": 2000,
            "cpu_busy": 0.9, "cpu_saturated": true,
            "shaper_down_packets": 900, "shaper_down_drops": 100,
        })
    }

    #[test]
    fn rows_take_payload_copies_only_where_measured() {
        let sim = serde_json::json!({
            "scenario": "s", "peers": 4, "completed": 3, "image_bytes": 1000,
            "completion_s": {"p50": 11.0, "max": 12.0}, "bound_s": 10.0, "hub_copies": 1.2,
        });
        let s = CompareRow::from_summary("sim", &sim);
        assert_eq!((s.completed, s.seed_payload_copies), (3, Some(1.2)));
        assert_eq!((s.seed_wire_copies, s.cpu_busy), (None, None));
        assert_eq!(s.ratio_to_bound(), Some(1.2));

        let sh = CompareRow::from_summary("swarmhub", &lab_summary("swarmhub", 12.0, 14.0, true));
        assert_eq!(sh.seed_payload_copies, Some(1.5));
        assert_eq!(sh.seed_wire_copies, Some(2.0));
        assert!(sh.cpu_saturated);
        assert_eq!(sh.down_drop_fraction, Some(0.1));
        assert_eq!(s.down_drop_fraction, None);

        let q = CompareRow::from_summary("qbittorrent", &lab_summary("qb", 9.0, 11.0, false));
        assert_eq!(
            q.seed_payload_copies, None,
            "stock engines report wire bytes only"
        );
        assert_eq!(q.seed_wire_copies, Some(2.0));
    }

    #[test]
    fn agreement_is_relative_to_the_lab_and_judged_in_the_markdown() {
        let sim = CompareRow {
            run: "sim".into(),
            p50_s: Some(9.0),
            max_s: Some(10.0),
            bound_s: 8.0,
            ..CompareRow::default()
        };
        let lab = CompareRow {
            run: "swarmhub".into(),
            p50_s: Some(10.0),
            max_s: Some(12.5),
            bound_s: 8.0,
            ..CompareRow::default()
        };
        let (p50, max) = agreement(&sim, &lab).expect("both have figures");
        assert!((p50 + 0.1).abs() < 1e-12 && (max + 0.2).abs() < 1e-12);
        let md = markdown("s", &[sim.clone(), lab.clone()]);
        assert!(md.contains("p50 -10.0%, max -20.0%"), "{md}");
        assert!(
            md.contains("(p50 within and max OUTSIDE the 15% target)"),
            "{md}"
        );
        assert!(md.contains("Kumar-Ross bound: 8.00 s"), "{md}");

        let failed = CompareRow::failed("aria2", "apt-get install aria2 failed".into());
        let md = markdown("s", &[sim, lab, failed.clone()]);
        assert!(
            md.contains("| aria2 | failed: apt-get install aria2 failed |"),
            "{md}"
        );
        assert!(
            md.lines()
                .all(|l| !l.starts_with('|') || l.matches('|').count() == 10),
            "{md}"
        );
        let csv = csv(&[failed]);
        assert_eq!(csv.lines().count(), 2);
        assert!(
            csv.ends_with(",false,,apt-get install aria2 failed\n"),
            "{csv}"
        );
    }
}
