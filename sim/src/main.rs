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
        /// Also write OUT/report.html and OUT/charts/ (PNG and SVG).
        #[arg(long)]
        report: bool,
    },
    /// Print the Kumar-Ross lower bound on flash-crowd distribution time.
    Bound {
        /// Scenario file (TOML).
        scenario: PathBuf,
    },
    /// Write DIR/report.html and DIR/charts/ from a run or sweep folder
    /// (a folder with sweep.csv is a sweep).
    Report {
        /// Run or sweep output folder.
        dir: PathBuf,
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
                write_report(&out)?;
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
            let text = std::fs::read_to_string(&path)
                .map_err(|e| anyhow::anyhow!("cannot read scenario {}: {e}", path.display()))?;
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
                write_report(&out)?;
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
            say!("bound_s             {:.3}", b.bound_s);
        }
        Cmd::Report { dir } => write_report(&dir)?,
    }
    Ok(())
}

fn write_report(dir: &std::path::Path) -> anyhow::Result<()> {
    let report = swarmhub_reports::write_report(dir)?;
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
