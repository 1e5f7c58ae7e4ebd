//! `swarmhub-lab`: run a scenario on real processes and shaped links.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;

use anyhow::{Context, Result};
use clap::{Parser, Subcommand};
use swarmhub_lab::compare::{self, CompareOptions};
use swarmhub_lab::engine::EngineKind;
use swarmhub_lab::net::{self, Names};
use swarmhub_lab::run::{self, RunOptions};

#[derive(Parser)]
#[command(
    name = "swarmhub-lab",
    version,
    about = "Real-network lab: a scenario on network namespaces and tbf-shaped veth links (needs root)"
)]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

/// Options of every lab run, for `run` and `compare` alike.
#[derive(clap::Args)]
struct LabArgs {
    /// The swarmhub binary (default: next to swarmhub-lab).
    #[arg(long)]
    swarmhub: Option<PathBuf>,
    /// Namespace prefix; namespaces named PREFIX-* are removed at start.
    #[arg(long, default_value = "shlab")]
    prefix: String,
    /// Stop a lab run after this many seconds (default: 20 x the bound + 120 s).
    #[arg(long)]
    timeout: Option<f64>,
    /// swarmhub clients: seconds without progress before HTTP fallback.
    #[arg(long, default_value_t = 60)]
    fallback_after: u64,
    /// Install the stock engines' Debian packages first (apt-get).
    #[arg(long)]
    install: bool,
}

impl LabArgs {
    /// Run options for `scenario` into `out` with `engine`; `swarmhub` runs
    /// need the binary.
    fn options(
        &self,
        scenario: PathBuf,
        out: PathBuf,
        engine: EngineKind,
        swarmhub_needed: bool,
    ) -> Result<RunOptions> {
        Ok(RunOptions {
            scenario,
            out,
            engine,
            swarmhub_bin: swarmhub_bin(self.swarmhub.clone(), swarmhub_needed)?,
            work: None,
            keep_work: false,
            prefix: self.prefix.clone(),
            timeout_s: self.timeout,
            fallback_after_s: self.fallback_after,
            command: std::env::args().collect::<Vec<_>>().join(" "),
        })
    }
}

#[derive(Subcommand)]
enum Cmd {
    /// Run a scenario and write peers.csv, timeline.csv and summary.json.
    Run {
        /// Scenario file (TOML), as for swarmhub-sim.
        scenario: PathBuf,
        /// Software on the hosts.
        #[arg(long, value_enum, default_value = "swarmhub")]
        engine: EngineKind,
        /// Output folder.
        #[arg(long)]
        out: PathBuf,
        /// Scratch folder for hub and client state (default: a temporary folder).
        #[arg(long)]
        work: Option<PathBuf>,
        /// Keep the scratch folder (downloaded files, logs) after the run.
        #[arg(long)]
        keep_work: bool,
        #[command(flatten)]
        lab: LabArgs,
        /// Also write OUT/report.html and OUT/charts/.
        #[arg(long)]
        report: bool,
        /// Another run folder (e.g. the simulator's run of the same scenario)
        /// to draw on the completion CDF: written to OUT/overlay.txt.
        #[arg(long)]
        compare: Option<PathBuf>,
    },
    /// Run a scenario in the simulator and in the lab with each engine;
    /// write every run's report (each CDF drawn with the others) and
    /// OUT/comparison.md and OUT/comparison.csv.
    Compare {
        /// Scenario file (TOML).
        scenario: PathBuf,
        /// Output folder: OUT/sim, OUT/ENGINE, OUT/comparison.{md,csv}.
        #[arg(long)]
        out: PathBuf,
        /// Engines to run, comma-separated.
        #[arg(
            long,
            value_enum,
            value_delimiter = ',',
            default_value = "swarmhub,qbittorrent,aria2,transmission"
        )]
        engines: Vec<EngineKind>,
        /// Simulator seed (default: the scenario's).
        #[arg(long)]
        seed: Option<u64>,
        #[command(flatten)]
        lab: LabArgs,
    },
    /// One real hub and N real clients in this process over loopback (no
    /// root): write peers.csv, timeline.csv and summary.json, and the
    /// scenario.toml the simulator runs for comparison.
    Fleet {
        /// Clients.
        #[arg(long)]
        clients: usize,
        /// Image size, e.g. 32MiB.
        #[arg(long)]
        image_size: swarmhub_sim::units::Size,
        /// Output folder.
        #[arg(long)]
        out: PathBuf,
        /// Sites: only 1 today (every client shares 127.0.0.1).
        #[arg(long, default_value_t = 1)]
        sites: usize,
        /// Each client's upload limit. Default: this machine's fleet
        /// budget (250 Mbit/s per CPU core) shared by the clients, at most
        /// 100 Mbit/s each, so the emulated links bound the run and not the
        /// CPU the whole fleet shares.
        #[arg(long)]
        client_upload: Option<swarmhub_sim::units::Rate>,
        /// Each client's download limit (default none).
        #[arg(long)]
        client_download: Option<swarmhub_sim::units::Rate>,
        /// The hub seeder's upload limit.
        #[arg(long, default_value = "1Gbit/s")]
        hub_upload: swarmhub_sim::units::Rate,
        /// Seconds between announces.
        #[arg(long, default_value_t = 10)]
        announce_interval: u64,
        /// Seconds without progress before a client adds HTTP from the hub.
        #[arg(long, default_value_t = 60)]
        fallback_after: u64,
        /// Stop waiting for clients after this many seconds.
        #[arg(long, default_value_t = 1800.0)]
        timeout: f64,
        /// Each client's cap on connections (`pull --max-peers`). Default: the
        /// protocol's 50, or fewer when the fleet would not fit in 60% of the
        /// memory available. Both ends of every link are on this machine, so
        /// this sets the open files and memory a fleet needs.
        #[arg(long)]
        client_max_peers: Option<usize>,
        /// Processes to run the clients in, beside the hub's (each has its
        /// own open-file limit). Default: in the hub's process when the fleet
        /// fits its open-file limit, else as many as it takes.
        #[arg(long)]
        client_processes: Option<usize>,
        /// Niceness of the client processes when they run apart (they stand
        /// for other machines, so the hub's process is scheduled first; 0: as
        /// the hub's).
        #[arg(long, default_value_t = 10)]
        client_nice: i32,
        /// Another run folder (e.g. the simulator's run of OUT/scenario.toml)
        /// to draw on the completion CDF.
        #[arg(long)]
        compare: Option<PathBuf>,
        /// Also write OUT/report.html and OUT/charts/.
        #[arg(long)]
        report: bool,
    },
    /// A fleet's client process (started by `fleet`, not by hand).
    #[command(hide = true)]
    FleetWorker {
        #[arg(long)]
        work: PathBuf,
        #[arg(long)]
        first: usize,
        #[arg(long)]
        last: usize,
        #[arg(long)]
        upload_bps: u64,
        #[arg(long)]
        download_bps: u64,
        #[arg(long)]
        fallback_after: u64,
        #[arg(long)]
        max_peers: Option<usize>,
        #[arg(long, default_value_t = 0)]
        nice: i32,
    },
    /// Remove the namespaces (and their processes) of an interrupted lab.
    Clean {
        /// Namespace prefix.
        #[arg(long, default_value = "shlab")]
        prefix: String,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match dispatch(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("swarmhub-lab: error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// SIGINT, SIGTERM and SIGHUP set the flag (the run then cleans up and
/// exits); a second one exits at once (the next run removes what is left).
fn interrupt_flag() -> Result<Arc<AtomicBool>> {
    use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM};
    let flag = Arc::new(AtomicBool::new(false));
    for sig in [SIGINT, SIGTERM, SIGHUP] {
        signal_hook::flag::register_conditional_shutdown(sig, 130, flag.clone())
            .context("installing signal handlers")?;
        signal_hook::flag::register(sig, flag.clone()).context("installing signal handlers")?;
    }
    Ok(flag)
}

fn default_swarmhub() -> Result<PathBuf> {
    let exe = std::env::current_exe().context("locating swarmhub-lab")?;
    let candidate = exe.with_file_name("swarmhub");
    if candidate.is_file() {
        return Ok(candidate);
    }
    anyhow::bail!(
        "no swarmhub binary next to {}: build it (`cargo build --release -p swarmhub-node`) \
         or pass --swarmhub PATH",
        exe.display()
    )
}

/// Point OUT/overlay.txt at `other`: `../NAME` when they share a parent
/// folder (so committed examples stay relocatable), else its absolute path.
fn write_overlay(out: &std::path::Path, other: &std::path::Path) -> Result<()> {
    let other =
        std::fs::canonicalize(other).with_context(|| format!("--compare {}", other.display()))?;
    let out_abs = std::fs::canonicalize(out)?;
    let path = match (other.parent(), out_abs.parent(), other.file_name()) {
        (Some(a), Some(b), Some(name)) if a == b => PathBuf::from("..").join(name),
        _ => other.clone(),
    };
    let label = match swarmhub_reports::load::load_summary(&other.join("summary.json")) {
        Ok(s) if s.events > 0 => "simulator".to_string(),
        _ => other
            .file_name()
            .map_or("other run".into(), |n| n.to_string_lossy().into_owned()),
    };
    compare::write_overlay_file(out, &[(path.display().to_string(), label)])?;
    Ok(())
}

/// `--swarmhub PATH`, or the binary beside swarmhub-lab when swarmhub runs.
fn swarmhub_bin(given: Option<PathBuf>, needed: bool) -> Result<PathBuf> {
    match given {
        Some(p) => std::fs::canonicalize(&p).with_context(|| format!("--swarmhub {}", p.display())),
        None if needed => default_swarmhub(),
        None => Ok(PathBuf::from("swarmhub")),
    }
}

fn dispatch(cli: Cli) -> Result<()> {
    match cli.cmd {
        Cmd::Run {
            scenario,
            engine,
            out,
            work,
            keep_work,
            lab,
            report,
            compare,
        } => {
            let interrupted = interrupt_flag()?;
            let opts = RunOptions {
                work,
                keep_work,
                ..lab.options(
                    scenario,
                    out.clone(),
                    engine,
                    engine == EngineKind::Swarmhub,
                )?
            };
            if lab.install {
                swarmhub_lab::engine::stock::install(engine)?;
            }
            let s = run::run(&opts, interrupted)?;
            let f = |x: Option<f64>| x.map_or("-".to_string(), |v| format!("{v:.2}"));
            let b = &s.base;
            println!(
                "scenario {} ({} clients, engine {})",
                b.scenario, b.peers, s.lab.engine
            );
            println!(
                "completed       {}/{} (files verified: {})",
                b.completed, b.peers, s.lab.verified
            );
            println!(
                "completion s    p50 {}  p90 {}  max {}",
                f(b.completion_s.p50),
                f(b.completion_s.p90),
                f(b.completion_s.max)
            );
            println!(
                "bound s         {:.2}  (max/bound {})",
                b.bound_s,
                f(b.ratio_to_bound)
            );
            let what = if s.lab.per_client_sources {
                "payload"
            } else {
                "wire bytes (stock engine)"
            };
            println!(
                "hub copies      {:.2}  ({what}; hub veth sent {:.2} image sizes)",
                b.hub_copies,
                s.lab.hub_wire_bytes_up as f64 / b.image_bytes as f64
            );
            println!(
                "cpu busy        {:.0}% mean, {:.0}% peak{}",
                s.lab.cpu_busy * 100.0,
                s.lab.cpu_busy_peak * 100.0,
                if s.lab.cpu_saturated {
                    "  (CPU BOUND)"
                } else {
                    ""
                }
            );
            let drops = swarmhub_lab::counters::Shaper {
                packets: s.lab.shaper_down_packets,
                drops: s.lab.shaper_down_drops,
            };
            println!(
                "shaper drops    {:.1}% of packets offered to the download shapers",
                drops.drop_fraction() * 100.0
            );
            println!("outputs         {}", out.display());
            if let Some(other) = compare {
                write_overlay(&out, &other)?;
            }
            if report {
                let r = swarmhub_reports::write_report(&out)?;
                println!("report          {}", r.html.display());
            }
            if b.completed < b.peers {
                anyhow::bail!(
                    "{} of {} clients did not complete",
                    b.peers - b.completed,
                    b.peers
                );
            }
            Ok(())
        }
        Cmd::Compare {
            scenario,
            out,
            engines,
            seed,
            lab,
        } => {
            let interrupted = interrupt_flag()?;
            let swarmhub_needed = engines.contains(&EngineKind::Swarmhub);
            let opts = CompareOptions {
                run: lab.options(
                    scenario.clone(),
                    out.clone(),
                    EngineKind::Swarmhub,
                    swarmhub_needed,
                )?,
                scenario,
                out: out.clone(),
                engines,
                seed,
                install: lab.install,
            };
            let rows = compare::compare(&opts, interrupted)?;
            print!("{}", std::fs::read_to_string(out.join("comparison.md"))?);
            println!("\noutputs: {}", out.display());
            let failed: Vec<&str> = rows
                .iter()
                .filter(|r| r.error.is_some() || r.completed < r.peers)
                .map(|r| r.run.as_str())
                .collect();
            if !failed.is_empty() {
                anyhow::bail!("runs failed or incomplete: {}", failed.join(", "));
            }
            Ok(())
        }
        Cmd::Fleet {
            clients,
            image_size,
            out,
            sites,
            client_upload,
            client_download,
            hub_upload,
            announce_interval,
            fallback_after,
            timeout,
            client_max_peers,
            client_processes,
            client_nice,
            compare,
            report,
        } => {
            if sites != 1 {
                anyhow::bail!(
                    "--sites {sites}: the fleet runs every client on 127.0.0.1, so the hub \
                     cannot tell sites apart yet; only --sites 1 is supported"
                );
            }
            let opts = swarmhub_lab::fleet::FleetOptions {
                clients,
                image_bytes: image_size.0,
                out: out.clone(),
                hub_upload_bps: hub_upload.0,
                client_upload_bps: match client_upload {
                    Some(r) => r.0,
                    None => {
                        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
                        let bps = swarmhub_lab::fleet::auto_client_upload_bps(clients, cores);
                        eprintln!(
                            "fleet: each client uploads at {:.2} Mbit/s: {:.0} Mbit/s per core \
                             of this machine's {cores} shared by {clients} clients (at most {:.0} \
                             each), so the emulated links and not the shared CPU bound the run; \
                             --client-upload sets it",
                            bps / 1e6,
                            swarmhub_lab::fleet::FLEET_UPLINK_PER_CORE_BPS / 1e6,
                            swarmhub_lab::fleet::AUTO_CLIENT_UPLOAD_MAX_BPS / 1e6,
                        );
                        bps
                    }
                },
                client_download_bps: client_download.map_or(0.0, |r| r.0),
                announce_interval_s: announce_interval,
                fallback_after_s: fallback_after,
                timeout_s: timeout,
                client_max_peers: client_max_peers.or_else(|| {
                    let available = swarmhub_lab::fleet::memory_available()?;
                    let cap = swarmhub_lab::fleet::auto_client_max_peers(clients, available)?;
                    eprintln!(
                        "fleet: each client keeps at most {cap} peer links: {clients} clients at \
                         the protocol's default would not fit in 60% of the {:.1} GB of memory \
                         available (about {:.1} MB per client plus {:.1} MB per link); \
                         --client-max-peers sets it",
                        available as f64 / 1e9,
                        swarmhub_lab::fleet::CLIENT_BASE_BYTES as f64 / 1e6,
                        swarmhub_lab::fleet::CLIENT_LINK_BYTES as f64 / 1e6,
                    );
                    Some(cap)
                }),
                client_processes,
                client_nice,
                command: std::env::args().collect::<Vec<_>>().join(" "),
            };
            let s = swarmhub_lab::fleet::run(&opts, interrupt_flag()?)?;
            print_fleet(&s);
            if let Some(other) = compare {
                write_overlay(&out, &other)?;
            }
            if report {
                let r = swarmhub_reports::write_report(&out)?;
                println!("report          {}", r.html.display());
            }
            let b = &s.lab.base;
            if b.completed < b.peers || s.lab.lab.verified < b.peers {
                anyhow::bail!(
                    "{} of {} clients complete, {} verified; errors: {:?}",
                    b.completed,
                    b.peers,
                    s.lab.lab.verified,
                    s.fleet.client_errors
                );
            }
            Ok(())
        }
        Cmd::FleetWorker {
            work,
            first,
            last,
            upload_bps,
            download_bps,
            fallback_after,
            max_peers,
            nice,
        } => swarmhub_lab::fleet::run_worker(&swarmhub_lab::fleet::WorkerSpec {
            work,
            first,
            last,
            upload_bps,
            download_bps,
            fallback_after_s: fallback_after,
            max_peers,
            nice,
        }),
        Cmd::Clean { prefix } => {
            run::preflight()?;
            let gone = net::teardown(&Names::new(&prefix));
            println!("removed {} namespaces", gone.len());
            Ok(())
        }
    }
}

fn print_fleet(s: &swarmhub_lab::fleet::FleetSummary) {
    let f = |x: Option<f64>| x.map_or("-".to_string(), |v| format!("{v:.2}"));
    let (b, l, fl) = (&s.lab.base, &s.lab.lab, &s.fleet);
    println!(
        "fleet           {} clients, image {} bytes",
        b.peers, b.image_bytes
    );
    println!(
        "completed       {}/{} (SHA-256 verified: {})",
        b.completed, b.peers, l.verified
    );
    println!(
        "completion s    p50 {}  p99 {}  max {}  (bound {:.2})",
        f(b.completion_s.p50),
        f(b.completion_s.p99),
        f(b.completion_s.max),
        b.bound_s
    );
    println!(
        "hub copies      {:.2}  (HTTP {} bytes)",
        b.hub_copies, l.http_bytes
    );
    println!(
        "announce ms     p50 {}  p99 {}  ({} probes, {} failed)",
        f(fl.announce_p50_ms),
        f(fl.announce_p99_ms),
        fl.announce_samples,
        fl.announce_failures
    );
    let mib = |b: u64| b as f64 / f64::from(1u32 << 20);
    println!(
        "processes       RSS peak {:.0} MiB, open files peak {} (clients in {})",
        mib(fl.process_rss_peak_bytes),
        fl.process_open_files_peak,
        match fl.client_processes {
            0 => "the hub's process".to_owned(),
            k => format!("{k} processes of their own"),
        }
    );
    if let (Some(rss), Some(files)) = (fl.hub_rss_peak_bytes, fl.hub_open_files_peak) {
        println!(
            "hub process     RSS peak {:.0} MiB, open files peak {files}",
            mib(rss)
        );
    }
    println!(
        "cpu busy        {:.0}% mean, {:.0}% peak{}",
        l.cpu_busy * 100.0,
        l.cpu_busy_peak * 100.0,
        if l.cpu_saturated {
            ": CPU bound, so the times are this machine's CPU, not the links the \
             simulator models; a lower --client-upload makes the links the limit"
        } else {
            ""
        }
    );
    if let Some(w) = s.lab.base.wasted_bytes {
        println!("wasted bytes    {w} (duplicates the clients dropped)");
    }
    if let Some(r) = fl.refused_connections {
        println!(
            "seeder refused  {r} connections or requests {:?}",
            fl.refused_by_reason
        );
    }
    if !fl.client_errors.is_empty() {
        println!("errors          {}", fl.client_errors.len());
        for e in fl.client_errors.iter().take(10) {
            println!("  {e}");
        }
    }
}
