//! `swarmhub-sim`: run scenarios, sweeps and bounds from the command line.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use indicatif::{ProgressBar, ProgressStyle};
use swarmhub_sim::sweep::{self, Axis};
use swarmhub_sim::{bound, output, run_scenario, Scenario};

#[derive(Parser)]
#[command(
    name = "swarmhub-sim",
    version,
    about = "Deterministic swarm simulator driving the real swarmhub core"
)]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Run one scenario and write peers.csv, timeline.csv and summary.json.
    Run {
        /// Scenario file (TOML).
        scenario: PathBuf,
        /// Seed (default: the scenario's `seed`).
        #[arg(long)]
        seed: Option<u64>,
        /// Output folder.
        #[arg(long, default_value = "out")]
        out: PathBuf,
        /// Also write events.csv with every node event.
        #[arg(long)]
        trace: bool,
        /// Also write OUT/report.html and OUT/charts/ (PNG and SVG).
        #[arg(long)]
        report: bool,
    },
    /// Run a grid of overridden keys in parallel and write sweep.csv.
    Sweep {
        /// Scenario file (TOML).
        scenario: PathBuf,
        /// KEY=V1,V2,... (repeatable), e.g. group.0.count=10,100,1000 or protocol.p2p=true,false.
        #[arg(long = "vary", required = true)]
        vary: Vec<Axis>,
        /// Seed for every point (default: the scenario's `seed`).
        #[arg(long)]
        seed: Option<u64>,
        /// Output folder.
        #[arg(long)]
        out: PathBuf,
        /// Worker threads (default: the machine's cores).
        #[arg(long)]
        jobs: Option<usize>,
        /// Also write OUT/report.html and OUT/charts/ (PNG and SVG), and each
        /// point's OUT/point-NNN/report.html, which the sweep report links to.
        #[arg(long)]
        report: bool,
    },
    /// Print the Kumar-Ross lower bound on flash-crowd distribution time.
    Bound {
        /// Scenario file (TOML).
        scenario: PathBuf,
    },
    /// Write DIR/report.html and DIR/charts/ from a run or sweep folder
    /// (a folder with sweep.csv is a sweep; its points get reports too).
    Report {
        /// Run or sweep output folder.
        dir: PathBuf,
        /// For a sweep folder, write only the sweep report, not each point's.
        #[arg(long)]
        no_points: bool,
    },
}

/// Print a line to stdout; a closed pipe (`| head`) is not an error worth a panic.
macro_rules! say {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stdout().lock(), $($arg)*);
    }};
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("swarmhub-sim: error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn bar(len: u64, what: &str) -> ProgressBar {
    let pb = ProgressBar::new(len);
    pb.set_style(
        ProgressStyle::with_template(&format!(
            "{{spinner}} {what} [{{elapsed_precise}}] {{bar:40}} {{pos}}/{{len}} {{msg}}"
        ))
        .expect("valid template"),
    );
    pb
}

fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.cmd {
        Cmd::Run {
            scenario: path,
            seed,
            out,
            trace,
            report,
        } => {
            let (scenario, text) = Scenario::load(&path)?;
            let seed = seed.unwrap_or(scenario.seed);
            let hash = Scenario::hash_text(&text);
            let command = format!(
                "swarmhub-sim run {} --seed {seed} --out {}",
                path.display(),
                out.display()
            );
            let pb = bar(scenario.peer_count() as u64, "peers complete");
            let (sim, summary) =
                run_scenario(scenario, &hash, seed, trace, &command, |t, done, _| {
                    pb.set_position(done as u64);
                    pb.set_message(format!("t = {:.0} s simulated", t.as_secs_f64()));
                });
            pb.finish_and_clear();
            output::write(&sim, &summary, &out)?;
            print_summary(&summary, &out);
            if report {
                write_report(&out, false)?;
            }
        }
        Cmd::Sweep {
            scenario: path,
            vary,
            seed,
            out,
            jobs,
            report,
        } => {
            let text = std::fs::read_to_string(&path).map_err(|error| {
                swarmhub_sim::ScenarioError::Read {
                    path: path.clone(),
                    error,
                }
            })?;
            let points = sweep::grid(&text, &path, &vary)?;
            let threads =
                jobs.unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()));
            let pb = bar(points.len() as u64, "sweep points");
            let summaries = sweep::run_grid(&points, &path, seed, &out, threads, &|_| pb.inc(1))?;
            pb.finish_and_clear();
            sweep::write_csv(&points, &summaries, &out)?;
            say!(
                "{} points -> {}",
                points.len(),
                out.join("sweep.csv").display()
            );
            for (p, s) in points.iter().zip(&summaries) {
                let keys: Vec<String> =
                    p.settings.iter().map(|(k, v)| format!("{k}={v}")).collect();
                say!(
                    "  {:<40} max {:>9} s  bound {:>9.1} s  hub copies {:>7.2}",
                    keys.join(" "),
                    s.completion_s.max.map_or("-".into(), |m| format!("{m:.1}")),
                    s.bound_s,
                    s.hub_copies
                );
            }
            if report {
                write_report(&out, true)?;
            }
        }
        Cmd::Bound { scenario: path } => {
            let (scenario, _) = Scenario::load(&path)?;
            let b = bound::bound(&scenario);
            say!("scenario            {}", scenario.name);
            say!(
                "hub sends one copy  F/u_s            = {:.3} s",
                b.hub_copy_s
            );
            say!(
                "slowest download    F/d_min          = {:.3} s",
                b.slowest_download_s
            );
            say!(
                "total upload        N*F/(u_s+sum u_i) = {:.3} s",
                b.total_upload_s
            );
            if b.site_link_s > 0.0 {
                say!(
                    "links into a site   max F/C, N_s*F/(U_s+C) = {:.3} s",
                    b.site_link_s
                );
            }
            say!("bound_s             {:.3}", b.bound_s);
        }
        Cmd::Report { dir, no_points } => write_report(&dir, !no_points)?,
    }
    Ok(())
}

/// Write the folder's report; with `points`, a sweep's point reports first.
fn write_report(dir: &std::path::Path, points: bool) -> anyhow::Result<()> {
    let (report, point_reports) = if points {
        let r = swarmhub_reports::write_report_with_points(dir)?;
        (r.folder, r.points)
    } else {
        (swarmhub_reports::write_report(dir)?, Vec::new())
    };
    if !point_reports.is_empty() {
        say!(
            "point reports   {} ({})",
            point_reports.len(),
            dir.join("point-NNN/report.html").display()
        );
    }
    say!(
        "report          {} ({} chart files in {})",
        report.html.display(),
        report.charts.len(),
        dir.join("charts").display()
    );
    Ok(())
}

fn print_summary(s: &swarmhub_sim::Summary, out: &std::path::Path) {
    let f = |x: Option<f64>| x.map_or("-".to_string(), |v| format!("{v:.2}"));
    say!(
        "scenario {} seed {} ({} peers, p2p {})",
        s.scenario,
        s.seed,
        s.peers,
        s.p2p
    );
    say!("completed       {}/{}", s.completed, s.peers);
    say!(
        "completion s    p50 {}  p90 {}  p99 {}  max {}",
        f(s.completion_s.p50),
        f(s.completion_s.p90),
        f(s.completion_s.p99),
        f(s.completion_s.max)
    );
    say!(
        "bound s         {:.2}  (max/bound {})",
        s.bound_s,
        f(s.ratio_to_bound)
    );
    say!(
        "hub copies      {:.2}  (hub sent {} bytes; peers sent {})",
        s.hub_copies,
        s.hub_bytes_up,
        s.peer_bytes_up
    );
    say!(
        "events          {}  in {:.2} s wall ({:.0} events/s, {:.1} simulated s per wall s)",
        s.events,
        s.wall_s,
        s.events_per_s,
        s.sim_s_per_wall_s
    );
    say!("outputs         {}", out.display());
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `sweep --report` writes every point's report and the sweep report
    /// links to them; `report --no-points` writes the sweep report only.
    #[test]
    fn sweep_report_covers_every_point() {
        let tmp = tempfile::tempdir().unwrap();
        let small =
            PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../reports/tests/fixtures/small.toml");
        let out = tmp.path().join("sw");
        let args = [
            "swarmhub-sim",
            "sweep",
            small.to_str().unwrap(),
            "--vary",
            "protocol.p2p=true,false",
            "--out",
            out.to_str().unwrap(),
            "--jobs",
            "1",
            "--report",
        ];
        run(Cli::parse_from(args)).unwrap();
        let html = std::fs::read_to_string(out.join("report.html")).unwrap();
        for point in ["point-000", "point-001"] {
            assert!(out.join(point).join("report.html").is_file(), "{point}");
            assert!(out.join(point).join("charts/peer-bytes.svg").is_file());
            assert!(html.contains(&format!("<a href=\"{point}/report.html\">")));
        }

        let copy = tmp.path().join("copy");
        std::fs::create_dir_all(copy.join("point-000")).unwrap();
        std::fs::create_dir_all(copy.join("point-001")).unwrap();
        std::fs::copy(out.join("sweep.csv"), copy.join("sweep.csv")).unwrap();
        for point in ["point-000", "point-001"] {
            for f in ["peers.csv", "timeline.csv", "summary.json", "scenario.toml"] {
                std::fs::copy(out.join(point).join(f), copy.join(point).join(f)).unwrap();
            }
        }
        let copy_arg = copy.to_str().unwrap();
        run(Cli::parse_from([
            "swarmhub-sim",
            "report",
            copy_arg,
            "--no-points",
        ]))
        .unwrap();
        assert!(copy.join("report.html").is_file());
        assert!(!copy.join("point-000/report.html").exists());
        run(Cli::parse_from(["swarmhub-sim", "report", copy_arg])).unwrap();
        assert!(copy.join("point-001/report.html").is_file());
    }
}
