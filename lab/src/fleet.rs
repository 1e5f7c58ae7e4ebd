//! `swarmhub-lab fleet`: one real hub and N real clients in this process, over
//! loopback, with no root. The hub is `hub serve` itself (mutual TLS, the real
//! tracker, the seeder); each client is `pull --wait-after-exit` itself with
//! its own home, enrolled identity and certificate, peer listener, store and
//! rate limits. Outputs use the simulator's run schema, so `swarmhub-sim
//! report` draws a fleet run and `--compare` puts the simulator's run of the
//! written `scenario.toml` beside it.

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
    /// Peak resident memory of the whole process (hub and every client), bytes.
    pub process_rss_peak_bytes: u64,
    /// Most file descriptors open at once in the process (sampled each second).
    pub process_open_files_peak: usize,
    /// Payload bytes received beyond one image per client.
    pub wasted_bytes: u64,
    /// Connections the hub seeder refused: not counted by the node yet.
    pub refused_connections: Option<u64>,
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

/// Open files a fleet of `clients` may hold at once: every client's peer
/// links at its connection cap (a link has both ends in this process), its
/// listener, API connection and database, and one hub link per client.
pub fn open_files_needed(o: &FleetOptions) -> u64 {
    let per_client = client_max_peers(o) as u64 + 6;
    64 + o.clients as u64 * (per_client + 1)
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
    let limit = swarmhub_node::util::raise_open_file_limit();
    let wanted = open_files_needed(o);
    if let Some(limit) = limit.filter(|&l| l < wanted) {
        bail!(
            "{} clients in one process need about {wanted} open files (up to {} peer links \
             each, both ends in this process, plus the hub's), but the open-file limit is \
             {limit}: run fewer clients or raise the hard limit (`ulimit -Hn`, needs \
             CAP_SYS_RESOURCE) or cap each client's connections with --client-max-peers",
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
    let received: u64 = outcome
        .peers
        .iter()
        .map(|p| p.bytes_down_hub + p.bytes_down_peers)
        .sum();
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
        process_rss_peak_bytes: rss_peak_bytes(),
        process_open_files_peak: outcome.open_files_peak,
        wasted_bytes: received.saturating_sub(o.image_bytes * outcome.completed as u64),
        refused_connections: None,
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
    http_bytes: u64,
    completed: usize,
    errors: Vec<String>,
    end_s: f64,
    setup_s: f64,
    cpu_busy: f64,
    cpu_busy_peak: f64,
}

async fn fleet(
    o: &FleetOptions,
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
        // Hundreds of in-process clients and one hub: no endpoint to serve.
        metrics_listen: swarmhub_node::metrics::MetricsListen(None),
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
    let mut pulls = Vec::with_capacity(o.clients);
    for home in homes.iter().skip(1) {
        let opts = PullOptions {
            image: IMAGE.to_string(),
            wait_after_exit: true,
            max_upload_bps: Some((o.client_upload_bps / 8.0) as u64),
            max_download_bps: Some((o.client_download_bps / 8.0) as u64),
            fallback_after_s: Some(o.fallback_after_s),
            max_peers: o.client_max_peers,
            peer_ports: Some("0".parse().map_err(|e: String| anyhow::anyhow!(e))?),
            ..PullOptions::default()
        };
        let (home, rx) = (home.clone(), stop_rx.clone());
        pulls.push(tokio::spawn(async move {
            client::pull_embedded(&home, &opts, rx).await
        }));
    }
    let probe = tokio::spawn(probe_announces(homes[0].clone(), stop_rx.clone()));

    // Watch completions (the pull writes last_pull.json once its files are verified).
    let done_files: Vec<PathBuf> = homes
        .iter()
        .skip(1)
        .map(|h| h.run_file("last_pull.json"))
        .collect();
    let complete: Arc<Mutex<Vec<Option<f64>>>> = Arc::new(Mutex::new(vec![None; o.clients]));
    let mut timeline = Vec::new();
    let mut open_files_peak = 0;
    let mut busy = Vec::new();
    let mut lo_prev = loopback_tx_bytes();
    let mut cpu_prev = cpu0;
    let mut last_tick = Instant::now();
    let end_s = loop {
        tokio::time::sleep(Duration::from_millis(200)).await;
        let (files, c) = (done_files.clone(), complete.clone());
        let t = t0.elapsed().as_secs_f64();
        let completed = tokio::task::spawn_blocking(move || {
            let mut c = c.lock().expect("completions");
            for (slot, f) in c.iter_mut().zip(&files) {
                if slot.is_none() && f.exists() {
                    *slot = Some(t);
                }
            }
            c.iter().filter(|x| x.is_some()).count()
        })
        .await
        .context("completion scan")?;
        if last_tick.elapsed() >= Duration::from_secs(1) {
            let dt = last_tick.elapsed().as_secs_f64();
            last_tick = Instant::now();
            open_files_peak = open_files_peak.max(open_files());
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
        let failed = pulls.iter().filter(|p| p.is_finished()).count();
        if completed == o.clients || completed + failed >= o.clients {
            break t;
        }
        if t > o.timeout_s || interrupted.load(Ordering::Relaxed) {
            eprintln!("fleet: stopping with {completed} of {} complete", o.clients);
            break t;
        }
    };
    let cpu = crate::cpu::cpu_stats(&busy, 5);
    let _ = stop_tx.send(true);
    let mut peers = Vec::with_capacity(o.clients);
    let mut errors = Vec::new();
    let mut http_bytes = 0;
    let complete = complete.lock().expect("completions").clone();
    for (i, p) in pulls.into_iter().enumerate() {
        let s: PullSummary = match tokio::time::timeout(Duration::from_secs(60), p).await {
            Ok(Ok(Ok(s))) => s,
            Ok(Ok(Err(e))) => {
                errors.push(format!("c{}: {e}", i + 1));
                PullSummary::default()
            }
            Ok(Err(e)) => {
                errors.push(format!("c{}: task: {e}", i + 1));
                PullSummary::default()
            }
            Err(_) => {
                errors.push(format!("c{}: did not stop within 60 s", i + 1));
                PullSummary::default()
            }
        };
        http_bytes += s.from_http;
        peers.push(PeerRecord {
            id: i + 1,
            group: "clients".into(),
            join_s: Some(0.0),
            complete_s: complete[i],
            leave_s: None,
            bytes_down_hub: s.from_hub + s.from_http,
            bytes_down_peers: s.from_peers,
            bytes_up: s.uploaded,
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
        completed: peers.iter().filter(|p| p.complete_s.is_some()).count(),
        peers,
        timeline,
        announce_ms,
        announce_failures,
        open_files_peak,
        http_bytes,
        errors,
        end_s,
        setup_s,
        cpu_busy: cpu.mean,
        cpu_busy_peak: cpu.peak,
    })
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

/// Bytes sent on the loopback interface so far (every process on the machine).
fn loopback_tx_bytes() -> u64 {
    let text = std::fs::read_to_string("/proc/net/dev").unwrap_or_default();
    text.lines()
        .find_map(|l| l.trim_start().strip_prefix("lo:"))
        .and_then(|rest| rest.split_whitespace().nth(8)?.parse().ok())
        .unwrap_or(0)
}

fn open_files() -> usize {
    std::fs::read_dir("/proc/self/fd").map_or(0, |d| d.count())
}

/// `VmHWM` of this process, bytes.
fn rss_peak_bytes() -> u64 {
    let text = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    text.lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.split_whitespace().next()?.parse::<u64>().ok())
        .map_or(0, |kib| kib * 1024)
}
