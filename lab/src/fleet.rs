//! `swarmhub-lab fleet`: one real hub and N real clients in this process, over
//! loopback, with no root. The hub is `hub serve` itself (mutual TLS, the real
//! tracker, the seeder); each client is `pull --wait-after-exit` itself with
//! its own home, enrolled identity and certificate, peer listener, store and
//! rate limits. Outputs use the simulator's run schema, so `swarmhub-sim
//! report` draws a fleet run and `--compare` puts the simulator's run of the
//! written `scenario.toml` beside it.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use serde::Serialize;
use sha2::{Digest, Sha256};
use swarmhub_core::node::AnnounceParams;
use swarmhub_core::tracker::AnnounceEvent;
use swarmhub_node::client::{self, PullOptions, PullSummary};
use swarmhub_node::hub::serve::{serve_until, ServeOptions};
use swarmhub_node::paths::{ClientPaths, HubPaths};
use swarmhub_node::peer::{self, Announcer};
use swarmhub_sim::output::percentile;
use tokio::sync::watch;

use crate::record::{self, LabFields, LabSummary, PeerRecord, SummaryInput, TimelineRecord};

/// The image every client pulls.
pub const IMAGE: &str = "fleet:1";
const FILE: &str = "fleet.bin";
/// How often a running fleet says how many clients are done.
const PROGRESS_EVERY: Duration = Duration::from_secs(15);

/// Settings of one fleet run.
#[derive(Clone, Debug)]
pub struct FleetOptions {
    /// Clients.
    pub clients: usize,
    /// Image size, bytes.
    pub image_bytes: u64,
    /// Output folder.
    pub out: PathBuf,
    /// Hub seeder upload limit, bits/s.
    pub hub_upload_bps: f64,
    /// Each client's upload limit, bits/s.
    pub client_upload_bps: f64,
    /// Each client's download limit, bits/s (0: none; the scenario then says 10 Gbit/s).
    pub client_download_bps: f64,
    /// Seconds between announces.
    pub announce_interval_s: u64,
    /// Seconds without progress before a client adds HTTP from the hub.
    pub fallback_after_s: u64,
    /// Give up on clients still pulling after this many seconds.
    pub timeout_s: f64,
    /// Each client's connection cap (`None`: the protocol's `max_peers`).
    pub client_max_peers: Option<usize>,
    /// Processes the clients run in, beside the hub's (`None`: the hub's own
    /// process when the fleet fits its open-file limit, else as many as it
    /// takes; see [`client_processes`]).
    pub client_processes: Option<usize>,
    /// Niceness of the client processes (when they run apart): they stand
    /// for other machines, so the hub's process is scheduled first.
    pub client_nice: i32,
    /// Command line, for `summary.json`.
    pub command: String,
}

/// The fleet's own fields of `summary.json`, beside the simulator's and the lab's.
#[derive(Clone, Debug, Serialize)]
pub struct FleetFields {
    /// Announce round trips of a probe client (HTTPS, client certificate,
    /// `event=stopped` so it never joins a peer list), sampled every 250 ms
    /// while the fleet runs: median, ms.
    pub announce_p50_ms: Option<f64>,
    /// Same, 99th percentile, ms.
    pub announce_p99_ms: Option<f64>,
    /// Probe announces made.
    pub announce_samples: usize,
    /// Probe announces that failed.
    pub announce_failures: usize,
    /// Peak resident memory of the fleet: the sum of each process's peak
    /// (hub and every client), bytes.
    pub process_rss_peak_bytes: u64,
    /// Most file descriptors open at once, summed over the processes (sampled
    /// each second).
    pub process_open_files_peak: usize,
    /// Processes the clients ran in (0: in the hub's).
    pub client_processes: usize,
    /// Their niceness (the hub's process has 0).
    pub client_nice: i32,
    /// Peak resident memory of the hub's process (the hub and the announce
    /// probe alone) when the clients ran in processes of their own, bytes.
    pub hub_rss_peak_bytes: Option<u64>,
    /// Most file descriptors the hub's process held at once, in that case.
    pub hub_open_files_peak: Option<usize>,
    /// Connections and requests the hub's seeder refused (any reason: too
    /// many peers, not authenticated, ...), from its metrics at the end of
    /// the run (None: they could not be read).
    pub refused_connections: Option<u64>,
    /// The same, by reason.
    pub refused_by_reason: BTreeMap<String, u64>,
    /// Clients whose pull returned an error, with the error.
    pub client_errors: Vec<String>,
}

/// `summary.json` of a fleet run.
#[derive(Clone, Debug, Serialize)]
pub struct FleetSummary {
    /// The simulator's and the lab's fields.
    #[serde(flatten)]
    pub lab: LabSummary,
    /// Fleet-only fields.
    #[serde(flatten)]
    pub fleet: FleetFields,
}

/// The scenario the fleet reproduces, for the simulator and for the bound.
pub fn scenario_text(o: &FleetOptions) -> String {
    let down = if o.client_download_bps > 0.0 {
        o.client_download_bps
    } else {
        10e9
    };
    format!(
        "name = \"fleet\"\n\
         description = \"swarmhub-lab fleet: {n} real clients and one hub in one process on loopback\"\n\
         seed = 1\n\n\
         [image]\nsize = \"{size} B\"\n\n\
         [hub]\nupload = \"{hub} bit/s\"\n\n\
         [[group]]\nname = \"clients\"\ncount = {n}\nupload = \"{up} bit/s\"\ndownload = \"{down} bit/s\"\n\n\
         [arrival]\nkind = \"flash\"\n\n\
         [departure]\nkind = \"forever\"\n\n\
         [protocol]\nannounce_interval = \"{ai}s\"\nmax_peers = {mp}\n\n\
         [network]\nlatency = \"0s\"\n",
        n = o.clients,
        size = o.image_bytes,
        hub = o.hub_upload_bps,
        up = o.client_upload_bps,
        down = down,
        ai = o.announce_interval_s,
        mp = client_max_peers(o),
    )
}

/// Client upload, bits/s per CPU core of the machine, that a fleet emulates
/// by default. Every client shares this machine's cores, and a real client
/// on loopback costs about 10-25 CPU-s per GB it moves at fleet scale (TLS,
/// SHA-1, the kernel's socket copies). Past about 85% busy the run measures
/// the CPU, which the simulator does not model, instead of the links it
/// does: 500 clients at the old 100 Mbit/s each ran at 99% busy and 50 times
/// the simulator's time. At 250 Mbit/s per core, 500 clients on 2 cores
/// (1 Mbit/s each) ran 54-90% busy over four runs and within 5% of the
/// simulator on completion times (README).
pub const FLEET_UPLINK_PER_CORE_BPS: f64 = 250e6;

/// The most a client uploads by default, however few they are.
pub const AUTO_CLIENT_UPLOAD_MAX_BPS: f64 = 100e6;

/// The least a client uploads by default, however many they are.
pub const AUTO_CLIENT_UPLOAD_MIN_BPS: f64 = 64e3;

/// Default upload limit of each of `clients` on a machine of `cores`: the
/// machine's fleet budget ([`FLEET_UPLINK_PER_CORE_BPS`] per core) split
/// evenly, within [`AUTO_CLIENT_UPLOAD_MIN_BPS`] and
/// [`AUTO_CLIENT_UPLOAD_MAX_BPS`], rounded down to 1 kbit/s.
pub fn auto_client_upload_bps(clients: usize, cores: usize) -> f64 {
    let share = FLEET_UPLINK_PER_CORE_BPS * cores.max(1) as f64 / clients.max(1) as f64;
    (share.clamp(AUTO_CLIENT_UPLOAD_MIN_BPS, AUTO_CLIENT_UPLOAD_MAX_BPS) / 1e3).floor() * 1e3
}

/// Memory one client takes besides its peer links (store, database,
/// runtime, hub connections): about 4 MB. The 2,000-client fleet with 4
/// links each measured 3.6 MB per client in all (README).
pub const CLIENT_BASE_BYTES: u64 = 4_000_000;

/// Memory each peer link of a client adds (TLS buffers, the core's session,
/// blocks in flight): about 0.3 MB, from 500 clients with 50 links at
/// 16.9 MB each and 2,000 with 4 links at 3.6 MB each.
pub const CLIENT_LINK_BYTES: u64 = 300_000;

/// Share of the machine's available memory a fleet may plan to use.
const FLEET_MEMORY_SHARE: f64 = 0.6;

/// Default connection cap of each of `clients` on a machine with
/// `available` bytes of memory: `None` (the protocol's `max_peers`) when the
/// whole fleet fits in [`FLEET_MEMORY_SHARE`] of it at that cap, else the most
/// links per client that fit, at least 2. A fleet that set no cap would
/// otherwise run the machine out of memory (2,000 clients at 50 links need
/// about 38 GB) and be killed midway.
pub fn auto_client_max_peers(clients: usize, available: u64) -> Option<usize> {
    let protocol = swarmhub_core::settings::ProtocolSettings::default().max_peers;
    let budget = (available as f64 * FLEET_MEMORY_SHARE) as u64 / clients.max(1) as u64;
    let links = budget.saturating_sub(CLIENT_BASE_BYTES) / CLIENT_LINK_BYTES;
    (links < protocol as u64).then(|| (links as usize).max(2))
}

/// `MemAvailable` of `/proc/meminfo`, in bytes.
pub fn memory_available() -> Option<u64> {
    let text = std::fs::read_to_string("/proc/meminfo").ok()?;
    meminfo_available(&text)
}

fn meminfo_available(text: &str) -> Option<u64> {
    let line = text.lines().find(|l| l.starts_with("MemAvailable:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}

/// Open files a client may hold in a process of its own: its peer links at
/// its connection cap (both ends, when the peer runs in the same process),
/// its listener, API, seeder and web-seed connections, database and image files.
fn open_files_per_client(o: &FleetOptions) -> u64 {
    2 * client_max_peers(o) as u64 + 10
}

/// Open files the hub holds per client: its ends of the API, seeder and
/// web-seed connections.
const HUB_FILES_PER_CLIENT: u64 = 4;

/// Open files a fleet of `clients` may hold at once in one process: every
/// client's (see [`open_files_per_client`]) and the hub's ends of theirs.
pub fn open_files_needed(o: &FleetOptions) -> u64 {
    64 + o.clients as u64 * (open_files_per_client(o) + HUB_FILES_PER_CLIENT)
}

/// How many processes the clients run in under the open-file `limit`: 0 (in
/// the hub's process) when the whole fleet fits in 80% of it, else enough
/// processes that each holds at most 60% of it. `--client-processes` overrides.
pub fn client_processes(o: &FleetOptions, limit: u64) -> usize {
    if let Some(k) = o.client_processes {
        return k.min(o.clients);
    }
    if open_files_needed(o) * 5 <= limit * 4 {
        return 0;
    }
    let per_process = (limit * 3 / 5).max(1);
    let total = o.clients as u64 * open_files_per_client(o);
    (total.div_ceil(per_process) as usize).clamp(1, o.clients)
}

/// The connection cap of a client's swarm: `--client-max-peers`, else the
/// protocol's default, which the real client uses.
fn client_max_peers(o: &FleetOptions) -> usize {
    o.client_max_peers
        .unwrap_or_else(|| swarmhub_core::settings::ProtocolSettings::default().max_peers)
        .max(1)
}

/// Deterministic bytes (xorshift), as the lab's other engines use.
fn write_image(path: &Path, len: u64) -> std::io::Result<()> {
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut f = std::io::BufWriter::new(std::fs::File::create(path)?);
    let mut buf = vec![0u8; 1 << 16];
    let mut left = len;
    while left > 0 {
        for chunk in buf.chunks_mut(8) {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            chunk.copy_from_slice(&x.to_le_bytes()[..chunk.len()]);
        }
        let n = left.min(buf.len() as u64) as usize;
        f.write_all(&buf[..n])?;
        left -= n as u64;
    }
    f.flush()
}

fn sha256_file(path: &Path) -> std::io::Result<[u8; 32]> {
    use std::io::Read;
    let mut f = std::fs::File::open(path)?;
    let mut h = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = f.read(&mut buf)?;
        if n == 0 {
            return Ok(h.finalize().into());
        }
        h.update(&buf[..n]);
    }
}

/// Run the fleet, write the outputs into `o.out`, return the summary.
pub fn run(o: &FleetOptions, interrupted: Arc<AtomicBool>) -> Result<FleetSummary> {
    if o.clients == 0 {
        bail!("--clients must be at least 1");
    }
    let limit = swarmhub_node::util::raise_open_file_limit().unwrap_or(1 << 20);
    let processes = client_processes(o, limit);
    let (wanted, why) = if processes == 0 {
        (open_files_needed(o), "in the hub's process")
    } else {
        let per = o.clients.div_ceil(processes) as u64 * open_files_per_client(o);
        (per, "in each client process")
    };
    let hub_wanted = 64 + o.clients as u64 * HUB_FILES_PER_CLIENT;
    if wanted > limit || hub_wanted > limit {
        bail!(
            "{} clients need about {wanted} open files {why} (up to {} peer links each, \
             both ends when in one process) and the hub about {hub_wanted}, but the \
             open-file limit is {limit}: give more --client-processes, cap each client's \
             connections with --client-max-peers, or raise the hard limit (`ulimit -Hn`, \
             needs CAP_SYS_RESOURCE)",
            o.clients,
            client_max_peers(o)
        );
    }
    std::fs::create_dir_all(&o.out).with_context(|| format!("{}", o.out.display()))?;
    let work = tempfile::Builder::new()
        .prefix("fleet-work-")
        .tempdir_in(&o.out)
        .context("scratch folder")?;
    let started = Instant::now();
    let src = work.path().join("src").join(FILE);
    std::fs::create_dir_all(src.parent().expect("parent"))?;
    write_image(&src, o.image_bytes).with_context(|| format!("{}", src.display()))?;
    let want = sha256_file(&src)?;

    let hub_paths = HubPaths::new(work.path().join("hub"));
    swarmhub_node::hub::admin::image_add(&hub_paths, IMAGE, std::slice::from_ref(&src))
        .context("hub image add")?;
    let mut keys = Vec::with_capacity(o.clients + 1);
    for i in 0..=o.clients {
        let name = if i == 0 {
            "probe".to_string()
        } else {
            format!("c{i}")
        };
        keys.push(swarmhub_node::hub::admin::user_add(&hub_paths, &name).context("hub user add")?);
    }
    let ca = swarmhub_node::tls::ca::HubCa::load_or_create(&hub_paths.ca_dir())
        .map_err(|e| anyhow::anyhow!("hub CA: {e}"))?;
    let fingerprint = ca.fingerprint();

    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("tokio runtime")?;
    let outcome = rt.block_on(fleet(
        o,
        processes,
        &hub_paths,
        &keys,
        &fingerprint,
        work.path(),
        interrupted,
    ))?;
    let setup_s = outcome.setup_s;

    // Every client's copy against the source.
    let mut verified = 0;
    for i in 1..=o.clients {
        let p = ClientPaths::new(work.path().join(format!("c{i}")))
            .image_dir(&IMAGE.parse().expect("image name"))
            .join(FILE);
        if sha256_file(&p).ok() == Some(want) {
            verified += 1;
        }
    }
    let scenario_text = scenario_text(o);
    let scenario = swarmhub_sim::Scenario::parse(&scenario_text, Path::new("fleet.toml"))
        .map_err(|e| anyhow::anyhow!("fleet scenario: {e}"))?;
    let hub_bytes_up: u64 = outcome.peers.iter().map(|p| p.bytes_down_hub).sum();
    let input = SummaryInput {
        scenario: &scenario,
        scenario_hash: swarmhub_sim::Scenario::hash_text(&scenario_text),
        end_s: outcome.end_s,
        wall_s: started.elapsed().as_secs_f64(),
        command: o.command.clone(),
    };
    let lab = LabFields {
        engine: "swarmhub".into(),
        kind: "fleet".into(),
        cpu_busy: outcome.cpu_busy,
        cpu_busy_peak: outcome.cpu_busy_peak,
        cpu_saturated: outcome.cpu_busy > 0.85,
        lab_cpu_s: 0.0,
        lab_cpu_busy: 0.0,
        cpus: std::thread::available_parallelism().map_or(1, |n| n.get()),
        hub_wire_bytes_up: 0,
        peer_wire_bytes_up: 0,
        http_bytes: outcome.http_bytes,
        verified,
        shaper_down_packets: 0,
        shaper_down_drops: 0,
        shaper_up_packets: 0,
        shaper_up_drops: 0,
        per_client_sources: true,
        tbf: format!(
            "none: loopback in one process, token-bucket limits in swarmhub; setup {setup_s:.1} s"
        ),
    };
    let mut lat = outcome.announce_ms.clone();
    lat.sort_by(f64::total_cmp);
    let fleet = FleetFields {
        announce_p50_ms: percentile(&lat, 0.50),
        announce_p99_ms: percentile(&lat, 0.99),
        announce_samples: lat.len(),
        announce_failures: outcome.announce_failures,
        process_rss_peak_bytes: rss_peak_bytes(None) + outcome.workers_rss_peak,
        process_open_files_peak: outcome.open_files_peak,
        client_processes: processes,
        client_nice: if processes > 0 { o.client_nice } else { 0 },
        hub_rss_peak_bytes: (processes > 0).then(|| rss_peak_bytes(None)),
        hub_open_files_peak: (processes > 0).then_some(outcome.hub_open_files_peak),
        refused_connections: outcome.refused.as_ref().map(|r| r.values().sum()),
        refused_by_reason: outcome.refused.clone().unwrap_or_default(),
        client_errors: outcome.errors.clone(),
    };
    let summary = FleetSummary {
        lab: record::summary(&input, &outcome.peers, hub_bytes_up, lab),
        fleet,
    };
    record::write(
        &o.out,
        &outcome.peers,
        &outcome.timeline,
        &summary,
        &scenario_text,
    )?;
    Ok(summary)
}

/// What the async part measured.
struct Outcome {
    peers: Vec<PeerRecord>,
    timeline: Vec<TimelineRecord>,
    announce_ms: Vec<f64>,
    announce_failures: usize,
    open_files_peak: usize,
    hub_open_files_peak: usize,
    workers_rss_peak: u64,
    refused: Option<BTreeMap<String, u64>>,
    http_bytes: u64,
    errors: Vec<String>,
    end_s: f64,
    setup_s: f64,
    cpu_busy: f64,
    cpu_busy_peak: f64,
}

async fn fleet(
    o: &FleetOptions,
    processes: usize,
    hub_paths: &HubPaths,
    keys: &[String],
    fingerprint: &str,
    work: &Path,
    interrupted: Arc<AtomicBool>,
) -> Result<Outcome> {
    let setup = Instant::now();
    let (stop_tx, stop_rx) = watch::channel(false);
    let serve_opts = ServeOptions {
        listen: "127.0.0.1:0".parse().expect("address"),
        seed_ports: "0".parse().map_err(|e: String| anyhow::anyhow!(e))?,
        max_upload_bps: (o.hub_upload_bps / 8.0) as u64,
        announce_interval_s: o.announce_interval_s,
        advertise_ip: None,
        cert_lifetime: Duration::from_secs(24 * 3600),
        // Scraped once at the end, for the seeder's refusals.
        metrics_listen: swarmhub_node::metrics::MetricsListen(Some(
            "127.0.0.1:0".parse().expect("address"),
        )),
    };
    let mut hub_stop = stop_rx.clone();
    let hub = tokio::spawn(serve_until(hub_paths.clone(), serve_opts, async move {
        let _ = hub_stop.wait_for(|s| *s).await;
    }));
    let api_file = hub_paths.run_file("api.addr");
    let api = loop {
        if let Ok(a) = tokio::fs::read_to_string(&api_file).await {
            break format!("https://{}", a.trim());
        }
        if hub.is_finished() {
            let r = hub.await.context("hub task")?;
            bail!("the hub stopped at start: {r:?}");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };

    // Enroll every client (and the probe), a few at a time.
    let homes: Vec<ClientPaths> = (0..=o.clients)
        .map(|i| {
            let name = if i == 0 {
                "probe".to_string()
            } else {
                format!("c{i}")
            };
            ClientPaths::new(work.join(name))
        })
        .collect();
    let gate = Arc::new(tokio::sync::Semaphore::new(16));
    let mut logins = tokio::task::JoinSet::new();
    for (home, key) in homes.iter().zip(keys) {
        let (home, key, api, fp, gate) = (
            home.clone(),
            key.clone(),
            api.clone(),
            fingerprint.to_string(),
            gate.clone(),
        );
        logins.spawn(async move {
            let _permit = gate.acquire_owned().await;
            client::login(&home, &api, &key, Some(&fp))
                .await
                .map_err(|e| format!("login of {}: {e}", home.root.display()))
        });
    }
    while let Some(r) = logins.join_next().await {
        r.context("login task")?.map_err(anyhow::Error::msg)?;
    }
    let setup_s = setup.elapsed().as_secs_f64();
    eprintln!(
        "fleet: hub on {api}, {} clients enrolled in {setup_s:.1} s; pulling {IMAGE} ({} bytes)",
        o.clients, o.image_bytes
    );

    // Launch every pull at once (a flash crowd).
    let t0 = Instant::now();
    let cpu0 = crate::cpu::CpuTimes::read();
    let spec = WorkerSpec {
        work: work.to_owned(),
        first: 1,
        last: o.clients,
        upload_bps: (o.client_upload_bps / 8.0) as u64,
        download_bps: (o.client_download_bps / 8.0) as u64,
        fallback_after_s: o.fallback_after_s,
        max_peers: o.client_max_peers,
        nice: o.client_nice,
    };
    let mut clients = if processes == 0 {
        Clients::InProcess(spawn_pulls(&spec, &stop_rx)?)
    } else {
        let per = o.clients.div_ceil(processes);
        let mut workers = Vec::with_capacity(processes);
        for k in 0..processes {
            let first = 1 + k * per;
            let last = ((k + 1) * per).min(o.clients);
            if first > last {
                break;
            }
            let spec = WorkerSpec {
                first,
                last,
                ..spec.clone()
            };
            workers.push(Worker::spawn(&spec)?);
        }
        eprintln!(
            "fleet: clients in {} processes of up to {per}",
            workers.len()
        );
        Clients::Workers(workers)
    };
    let probe = tokio::spawn(probe_announces(homes[0].clone(), stop_rx.clone()));

    // Watch completions (the pull writes last_pull.json once its files are
    // verified) and failures (the marker a failed pull leaves).
    let done_files: Vec<(PathBuf, PathBuf)> = homes
        .iter()
        .skip(1)
        .map(|h| (h.run_file("last_pull.json"), failed_marker(h)))
        .collect();
    let complete: Arc<Mutex<Vec<Option<f64>>>> = Arc::new(Mutex::new(vec![None; o.clients]));
    let mut timeline = Vec::new();
    let (mut open_files_peak, mut hub_open_files_peak) = (0, 0);
    let mut busy = Vec::new();
    let mut lo_prev = loopback_tx_bytes();
    let mut cpu_prev = cpu0;
    let mut last_tick = Instant::now();
    let mut last_said = Instant::now();
    let end_s = loop {
        tokio::time::sleep(Duration::from_millis(200)).await;
        let (files, c) = (done_files.clone(), complete.clone());
        let t = t0.elapsed().as_secs_f64();
        let (completed, marked) = tokio::task::spawn_blocking(move || {
            let mut c = c.lock().expect("completions");
            let mut marked = 0;
            for (slot, (done, failed)) in c.iter_mut().zip(&files) {
                if slot.is_none() {
                    if done.exists() {
                        *slot = Some(t);
                    } else if failed.exists() {
                        marked += 1;
                    }
                }
            }
            (c.iter().filter(|x| x.is_some()).count(), marked)
        })
        .await
        .context("completion scan")?;
        if last_tick.elapsed() >= Duration::from_secs(1) {
            let dt = last_tick.elapsed().as_secs_f64();
            last_tick = Instant::now();
            let hub_files = open_files(None);
            hub_open_files_peak = hub_open_files_peak.max(hub_files);
            open_files_peak = open_files_peak.max(hub_files + clients.open_files());
            let lo = loopback_tx_bytes();
            let now = crate::cpu::CpuTimes::read();
            if let (Some(a), Some(b)) = (&now, &cpu_prev) {
                if let Some(x) = a.busy_since(b) {
                    busy.push(x);
                }
            }
            cpu_prev = now;
            timeline.push(TimelineRecord {
                t_s: t,
                leechers: o.clients - completed,
                seeds: completed,
                completed,
                hub_egress_bps: 0.0,
                peer_egress_bps: lo.saturating_sub(lo_prev) as f64 * 8.0 / dt,
            });
            lo_prev = lo;
        }
        let failed = marked.max(clients.gone());
        if last_said.elapsed() >= PROGRESS_EVERY {
            last_said = Instant::now();
            let failed = if failed > 0 {
                format!(", {failed} failed")
            } else {
                String::new()
            };
            eprintln!(
                "fleet: {t:.0} s: {completed} of {} complete{failed}",
                o.clients
            );
        }
        if completed == o.clients || completed + failed >= o.clients {
            break t;
        }
        if t > o.timeout_s || interrupted.load(Ordering::Relaxed) {
            eprintln!("fleet: stopping with {completed} of {} complete", o.clients);
            break t;
        }
    };
    let cpu = crate::cpu::cpu_stats(&busy, 5);
    let refused = seeder_refusals(hub_paths).await;
    let _ = stop_tx.send(true);
    let mut peers = Vec::with_capacity(o.clients);
    let mut errors = Vec::new();
    let mut http_bytes = 0;
    let complete = complete.lock().expect("completions").clone();
    let (results, workers_rss_peak) = clients.finish(o.clients).await;
    for (i, r) in results.into_iter().enumerate() {
        let s = r.unwrap_or_else(|e| {
            errors.push(format!("c{}: {e}", i + 1));
            PullSummary::default()
        });
        http_bytes += s.from_http;
        peers.push(PeerRecord {
            id: i + 1,
            group: "clients".into(),
            join_s: Some(0.0),
            complete_s: complete[i],
            leave_s: None,
            bytes_down_hub: s.from_hub + s.from_http + s.wasted_from_hub,
            bytes_down_peers: s.from_peers + s.wasted_from_peers,
            bytes_up: s.uploaded,
            bytes_wasted: Some(s.wasted_from_hub + s.wasted_from_peers),
        });
    }
    let (announce_ms, announce_failures) = probe.await.unwrap_or_default();
    match tokio::time::timeout(Duration::from_secs(30), hub).await {
        Ok(Ok(Ok(()))) => {}
        Ok(Ok(Err(e))) => errors.push(format!("hub: {e}")),
        Ok(Err(e)) => errors.push(format!("hub task: {e}")),
        Err(_) => errors.push("hub: did not stop within 30 s".into()),
    }
    Ok(Outcome {
        peers,
        timeline,
        announce_ms,
        announce_failures,
        open_files_peak,
        hub_open_files_peak,
        workers_rss_peak,
        refused,
        http_bytes,
        errors,
        end_s,
        setup_s,
        cpu_busy: cpu.mean,
        cpu_busy_peak: cpu.peak,
    })
}

/// The clients `first..=last` of a fleet and how they pull: what the hub's
/// process hands a client process (`swarmhub-lab fleet-worker`).
#[derive(Clone, Debug)]
pub struct WorkerSpec {
    /// The fleet's scratch folder (client homes are `WORK/cN`, enrolled).
    pub work: PathBuf,
    /// First client.
    pub first: usize,
    /// Last client.
    pub last: usize,
    /// Each client's upload limit, bytes/s.
    pub upload_bps: u64,
    /// Each client's download limit, bytes/s (0: none).
    pub download_bps: u64,
    /// Seconds without progress before a client adds HTTP from the hub.
    pub fallback_after_s: u64,
    /// Each client's connection cap.
    pub max_peers: Option<usize>,
    /// Niceness the client process takes (0: as the hub's).
    pub nice: i32,
}

impl WorkerSpec {
    fn home(&self, i: usize) -> ClientPaths {
        ClientPaths::new(self.work.join(format!("c{i}")))
    }

    /// The command line of a client process running these clients.
    fn args(&self) -> Vec<String> {
        let mut a = vec![
            "fleet-worker".to_owned(),
            "--work".to_owned(),
            self.work.display().to_string(),
            "--first".to_owned(),
            self.first.to_string(),
            "--last".to_owned(),
            self.last.to_string(),
            "--upload-bps".to_owned(),
            self.upload_bps.to_string(),
            "--download-bps".to_owned(),
            self.download_bps.to_string(),
            "--fallback-after".to_owned(),
            self.fallback_after_s.to_string(),
        ];
        if let Some(m) = self.max_peers {
            a.extend(["--max-peers".to_owned(), m.to_string()]);
        }
        a.extend(["--nice".to_owned(), self.nice.to_string()]);
        a
    }
}

/// Where a client whose pull ended in an error before the fleet stopped
/// writes the error, for the hub's process to count it.
fn failed_marker(home: &ClientPaths) -> PathBuf {
    home.run_file("fleet_failed")
}

type PullTask = tokio::task::JoinHandle<std::result::Result<PullSummary, String>>;

/// Start the pulls of `spec`'s clients (`pull --wait-after-exit`, until `stop`).
fn spawn_pulls(spec: &WorkerSpec, stop: &watch::Receiver<bool>) -> Result<Vec<PullTask>> {
    let mut pulls = Vec::with_capacity(spec.last + 1 - spec.first);
    for i in spec.first..=spec.last {
        let opts = PullOptions {
            image: IMAGE.to_string(),
            wait_after_exit: true,
            max_upload_bps: Some(spec.upload_bps),
            max_download_bps: Some(spec.download_bps),
            fallback_after_s: Some(spec.fallback_after_s),
            max_peers: spec.max_peers,
            peer_ports: Some("0".parse().map_err(|e: String| anyhow::anyhow!(e))?),
            ..PullOptions::default()
        };
        let (home, rx) = (spec.home(i), stop.clone());
        pulls.push(tokio::spawn(async move {
            let r = client::pull_embedded(&home, &opts, rx.clone()).await;
            let r = r.map_err(|e| e.to_string());
            if let Err(e) = &r {
                if !*rx.borrow() {
                    let _ = std::fs::write(failed_marker(&home), e);
                }
            }
            r
        }));
    }
    Ok(pulls)
}

/// Wait (at most 60 s each) for pulls told to stop.
async fn collect(pulls: Vec<PullTask>) -> Vec<std::result::Result<PullSummary, String>> {
    let mut out = Vec::with_capacity(pulls.len());
    for p in pulls {
        out.push(
            match tokio::time::timeout(Duration::from_secs(60), p).await {
                Ok(Ok(r)) => r,
                Ok(Err(e)) => Err(format!("task: {e}")),
                Err(_) => Err("did not stop within 60 s".into()),
            },
        );
    }
    out
}

/// One client's result, as a client process reports it (one JSON line each).
#[derive(Serialize, serde::Deserialize)]
struct WorkerLine {
    id: usize,
    summary: Option<PullSummary>,
    error: Option<String>,
    /// On the last line only: the process's peak RSS.
    rss_peak_bytes: Option<u64>,
}

/// `swarmhub-lab fleet-worker`: pull as `spec`'s clients until a line `stop`
/// (or the end) on stdin, then print one [`WorkerLine`] per client.
pub fn run_worker(spec: &WorkerSpec) -> Result<()> {
    swarmhub_node::util::raise_open_file_limit();
    if spec.nice != 0 {
        rustix::process::nice(spec.nice).context("nice")?;
    }
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("tokio runtime")?;
    rt.block_on(async {
        let (stop_tx, stop_rx) = watch::channel(false);
        let pulls = spawn_pulls(spec, &stop_rx)?;
        // Told to stop on stdin, or the hub's process went away.
        tokio::task::spawn_blocking(|| {
            let mut line = String::new();
            while std::io::stdin().read_line(&mut line).is_ok_and(|n| n > 0) {
                if line.trim() == "stop" {
                    break;
                }
                line.clear();
            }
        })
        .await
        .context("stdin")?;
        let _ = stop_tx.send(true);
        let mut out = std::io::stdout().lock();
        for (k, r) in collect(pulls).await.into_iter().enumerate() {
            let (summary, error) = match r {
                Ok(s) => (Some(s), None),
                Err(e) => (None, Some(e)),
            };
            let line = WorkerLine {
                id: spec.first + k,
                summary,
                error,
                rss_peak_bytes: None,
            };
            writeln!(out, "{}", serde_json::to_string(&line)?)?;
        }
        let last = WorkerLine {
            id: 0,
            summary: None,
            error: None,
            rss_peak_bytes: Some(rss_peak_bytes(None)),
        };
        writeln!(out, "{}", serde_json::to_string(&last)?)?;
        out.flush()?;
        Ok(())
    })
}

/// A client process, seen from the hub's.
struct Worker {
    child: tokio::process::Child,
    first: usize,
    last: usize,
}

impl Worker {
    fn spawn(spec: &WorkerSpec) -> Result<Worker> {
        use std::process::Stdio;
        let exe = std::env::current_exe().context("the lab's own executable")?;
        let child = tokio::process::Command::new(exe)
            .args(spec.args())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            // Its own process group: ^C reaches the hub's process, which stops it.
            .process_group(0)
            .kill_on_drop(true)
            .spawn()
            .context("starting a fleet client process")?;
        Ok(Worker {
            child,
            first: spec.first,
            last: spec.last,
        })
    }
}

/// Where the clients run.
enum Clients {
    /// Tasks in the hub's process.
    InProcess(Vec<PullTask>),
    /// Processes of their own.
    Workers(Vec<Worker>),
}

impl Clients {
    /// Open files of the client processes (0 in the hub's).
    fn open_files(&self) -> usize {
        match self {
            Clients::InProcess(_) => 0,
            Clients::Workers(w) => w
                .iter()
                .filter_map(|w| w.child.id())
                .map(|pid| open_files(Some(pid)))
                .sum(),
        }
    }

    /// Clients whose process has exited (0 in the hub's): they pull no more.
    fn gone(&mut self) -> usize {
        match self {
            Clients::InProcess(_) => 0,
            Clients::Workers(w) => w
                .iter_mut()
                .filter_map(|w| {
                    let span = w.last + 1 - w.first;
                    w.child.try_wait().ok().flatten().map(|_| span)
                })
                .sum(),
        }
    }

    /// Stop every client; each one's result (clients 1..=n) and the client
    /// processes' summed peak RSS.
    async fn finish(self, n: usize) -> (Vec<std::result::Result<PullSummary, String>>, u64) {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let mut workers = match self {
            Clients::InProcess(pulls) => return (collect(pulls).await, 0),
            Clients::Workers(w) => w,
        };
        // Tell every process first, so they stop side by side.
        for w in &mut workers {
            if let Some(mut stdin) = w.child.stdin.take() {
                let _ = stdin.write_all(b"stop\n").await;
            }
        }
        let mut results: Vec<std::result::Result<PullSummary, String>> = (0..n)
            .map(|_| Err("no report from its client process".into()))
            .collect();
        let mut rss = 0;
        for mut w in workers {
            let mut text = String::new();
            if let Some(mut out) = w.child.stdout.take() {
                let read = out.read_to_string(&mut text);
                let _ = tokio::time::timeout(Duration::from_secs(120), read).await;
            }
            let _ = tokio::time::timeout(Duration::from_secs(10), w.child.wait()).await;
            for line in text.lines() {
                let Ok(l) = serde_json::from_str::<WorkerLine>(line) else {
                    continue;
                };
                if let Some(r) = l.rss_peak_bytes {
                    rss += r;
                } else if (w.first..=w.last).contains(&l.id) && l.id <= n {
                    results[l.id - 1] = match (l.summary, l.error) {
                        (Some(s), _) => Ok(s),
                        (None, e) => Err(e.unwrap_or_else(|| "no result".into())),
                    };
                }
            }
        }
        (results, rss)
    }
}

/// Announce every 250 ms as the probe identity with `event=stopped` (so it
/// never appears in a peer list) until `stop`; returns round trips in ms and
/// the failure count.
async fn probe_announces(home: ClientPaths, mut stop: watch::Receiver<bool>) -> (Vec<f64>, usize) {
    let hub = match client::open_db(&home)
        .and_then(|db| client::ClientConfig::load(&db))
        .map(|cfg| async move { cfg.hub(&home).await })
    {
        Ok(f) => match f.await {
            Ok(h) => h,
            Err(e) => {
                eprintln!("fleet: announce probe disabled: {e}");
                return (Vec::new(), 0);
            }
        },
        Err(e) => {
            eprintln!("fleet: announce probe disabled: {e}");
            return (Vec::new(), 0);
        }
    };
    let announcer = Announcer::Http {
        client: hub.http().clone(),
        url: hub.announce_url(),
        key: hub.secret().unwrap_or_default().to_owned(),
    };
    let info_hash = {
        let meta = hub.metainfo(&IMAGE.parse().expect("image")).await;
        match meta
            .ok()
            .and_then(|b| swarmhub_core::metainfo::Metainfo::from_bytes(&b).ok())
        {
            Some(m) => m.info_hash,
            None => {
                eprintln!("fleet: announce probe disabled: no metainfo for {IMAGE}");
                return (Vec::new(), 0);
            }
        }
    };
    let peer_id = peer::new_peer_id(peer::CLIENT_PEER_ID_PREFIX);
    let params = AnnounceParams {
        event: AnnounceEvent::Stopped,
        uploaded: 0,
        downloaded: 0,
        left: 0,
        numwant: 0,
        port: 1,
    };
    let (mut ms, mut failures) = (Vec::new(), 0);
    loop {
        tokio::select! {
            _ = stop.wait_for(|s| *s) => break,
            _ = tokio::time::sleep(Duration::from_millis(250)) => {}
        }
        let t = Instant::now();
        match announcer.announce(info_hash, peer_id, params.clone()).await {
            Ok(_) => ms.push(t.elapsed().as_secs_f64() * 1e3),
            Err(_) => failures += 1,
        }
    }
    (ms, failures)
}

/// What the hub's seeder refused so far: the sum of its
/// `swarmhub_hub_connections_refused_total{listener="seeder"}` counters, read
/// from its metrics endpoint (`run/metrics.addr`).
async fn seeder_refusals(hub: &HubPaths) -> Option<BTreeMap<String, u64>> {
    let addr = tokio::fs::read_to_string(hub.run_file("metrics.addr"))
        .await
        .ok()?;
    let addr = addr.trim().to_owned();
    let text = tokio::task::spawn_blocking(move || -> std::io::Result<String> {
        use std::io::Read;
        let mut s = std::net::TcpStream::connect(&addr)?;
        s.set_read_timeout(Some(Duration::from_secs(10)))?;
        write!(s, "GET /metrics HTTP/1.0\r\nHost: {addr}\r\n\r\n")?;
        let mut out = String::new();
        s.read_to_string(&mut out)?;
        Ok(out)
    })
    .await
    .ok()?
    .ok()?;
    Some(refusals_in(&text))
}

/// The seeder's refusals in a metrics text, by reason.
fn refusals_in(text: &str) -> BTreeMap<String, u64> {
    let mut out = BTreeMap::new();
    for l in text.lines() {
        let Some(labels) = l.strip_prefix("swarmhub_hub_connections_refused_total{") else {
            continue;
        };
        if !labels.contains("listener=\"seeder\"") {
            continue;
        }
        let reason = labels
            .split("reason=\"")
            .nth(1)
            .and_then(|r| r.split('"').next())
            .unwrap_or("unknown");
        if let Some(n) = l.rsplit(' ').next().and_then(|v| v.parse::<f64>().ok()) {
            *out.entry(reason.to_owned()).or_default() += n as u64;
        }
    }
    out
}

/// Bytes sent on the loopback interface so far (every process on the machine).
fn loopback_tx_bytes() -> u64 {
    let text = std::fs::read_to_string("/proc/net/dev").unwrap_or_default();
    text.lines()
        .find_map(|l| l.trim_start().strip_prefix("lo:"))
        .and_then(|rest| rest.split_whitespace().nth(8)?.parse().ok())
        .unwrap_or(0)
}

/// Open file descriptors of process `pid` (None: this one).
fn open_files(pid: Option<u32>) -> usize {
    let dir = pid.map_or("/proc/self/fd".to_owned(), |p| format!("/proc/{p}/fd"));
    std::fs::read_dir(dir).map_or(0, |d| d.count())
}

/// `VmHWM` of process `pid` (None: this one), bytes.
fn rss_peak_bytes(pid: Option<u32>) -> u64 {
    let path = pid.map_or("/proc/self/status".to_owned(), |p| {
        format!("/proc/{p}/status")
    });
    let text = std::fs::read_to_string(path).unwrap_or_default();
    text.lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.split_whitespace().next()?.parse::<u64>().ok())
        .map_or(0, |kib| kib * 1024)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn opts(clients: usize, max_peers: usize) -> FleetOptions {
        FleetOptions {
            clients,
            image_bytes: 1 << 20,
            out: PathBuf::from("out"),
            hub_upload_bps: 1e9,
            client_upload_bps: 1e8,
            client_download_bps: 0.0,
            announce_interval_s: 10,
            fallback_after_s: 60,
            timeout_s: 60.0,
            client_max_peers: Some(max_peers),
            client_processes: None,
            client_nice: 10,
            command: String::new(),
        }
    }

    #[test]
    fn the_default_client_upload_shares_the_machines_budget() {
        // 500 clients on 2 cores: 1 Mbit/s each.
        assert_eq!(auto_client_upload_bps(500, 2), 1e6);
        // Twice the cores, twice the rate; twice the clients, half.
        assert_eq!(auto_client_upload_bps(500, 4), 2e6);
        assert_eq!(auto_client_upload_bps(1000, 2), 5e5);
        // A small fleet is capped; a huge one keeps a floor; rounded to kbit/s.
        assert_eq!(auto_client_upload_bps(2, 16), AUTO_CLIENT_UPLOAD_MAX_BPS);
        assert_eq!(
            auto_client_upload_bps(1_000_000, 1),
            AUTO_CLIENT_UPLOAD_MIN_BPS
        );
        assert_eq!(auto_client_upload_bps(3000, 2), 166e3);
        // Zero cores or clients are read as one.
        assert_eq!(auto_client_upload_bps(0, 0), AUTO_CLIENT_UPLOAD_MAX_BPS);
    }

    #[test]
    fn the_default_connection_cap_fits_the_fleet_in_memory() {
        let gb = 1_000_000_000;
        // 500 clients in 22 GB: the protocol's 50 links fit (19 MB each).
        assert_eq!(auto_client_max_peers(500, 22 * gb), None);
        // 2,000 in 22 GB: 6.6 MB each, 8 links.
        assert_eq!(auto_client_max_peers(2000, 22 * gb), Some(8));
        // Never below 2, however little memory.
        assert_eq!(auto_client_max_peers(100_000, gb), Some(2));
        assert_eq!(
            meminfo_available("MemTotal: 100 kB\nMemFree: 5 kB\nMemAvailable:   2048 kB\n"),
            Some(2 * 1024 * 1024)
        );
        assert_eq!(meminfo_available("MemTotal: 100 kB\n"), None);
    }

    #[test]
    fn seeder_refusals_are_summed_over_reasons_and_the_api_is_left_out() {
        let text = "# HELP x\n\
            swarmhub_hub_connections_refused_total{listener=\"seeder\",reason=\"too_many_peers\"} 3\n\
            swarmhub_hub_connections_refused_total{listener=\"api\",reason=\"revoked\"} 5\n\
            swarmhub_hub_connections_refused_total{listener=\"seeder\",reason=\"unknown_image\"} 2\n\
            swarmhub_hub_connections_total{listener=\"seeder\"} 40\n";
        let r = refusals_in(text);
        assert_eq!(r.values().sum::<u64>(), 5);
        assert_eq!(r["too_many_peers"], 3);
        assert!(refusals_in("").is_empty());
    }

    #[test]
    fn clients_leave_the_hub_process_only_when_they_do_not_fit_its_open_files() {
        // 300 clients of 16 peers fit 65,536 open files: one process.
        assert_eq!(client_processes(&opts(300, 16), 65_536), 0);
        // 2,000 clients of 2 peers do not fit 20,000: each process then
        // holds at most 60% of the limit.
        let o = opts(2000, 2);
        let k = client_processes(&o, 20_000);
        assert!(k >= 2, "{k}");
        let per = o.clients.div_ceil(k) as u64 * open_files_per_client(&o);
        assert!(per <= 12_000, "{per} files in each of {k}");
        // Asked for, it is what was asked (never more than the clients).
        let asked = FleetOptions {
            client_processes: Some(50),
            ..opts(8, 2)
        };
        assert_eq!(client_processes(&asked, 20_000), 8);
    }
}
