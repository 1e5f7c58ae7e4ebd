//! One lab run: preflight, namespaces, the engine's hub and clients on their
//! schedule, one sample a second (veth counters, `/proc/stat`), outputs.
//! Whatever happens (error, Ctrl-C, SIGTERM, panic), the [`Lab`] guard stops
//! every process the run started and deletes every namespace it made.

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use sha2::{Digest, Sha256};
use swarmhub_sim::Scenario;

use crate::counters;
use crate::cpu::{cpu_stats, CpuTimes, SATURATED};
use crate::engine::{self, ClientBytes, Ctx, Engine, EngineKind};
use crate::net::{self, Names};
use crate::plan::{self, LabPlan, Leave};
use crate::record::{self, LabFields, PeerRecord, SummaryInput, TimelineRecord};

/// Options of `swarmhub-lab run`.
#[derive(Clone, Debug)]
pub struct RunOptions {
    /// Scenario file.
    pub scenario: PathBuf,
    /// Output folder.
    pub out: PathBuf,
    /// Software on the hosts.
    pub engine: EngineKind,
    /// The `swarmhub` binary.
    pub swarmhub_bin: PathBuf,
    /// Scratch folder (default: a fresh folder under the system temp folder).
    pub work: Option<PathBuf>,
    /// Keep the scratch folder (state, downloaded files, logs).
    pub keep_work: bool,
    /// Namespace name prefix.
    pub prefix: String,
    /// Stop after this many seconds even if clients are incomplete.
    pub timeout_s: Option<f64>,
    /// swarmhub clients' HTTP fallback delay.
    pub fallback_after_s: u64,
    /// The command line, recorded in `summary.json`.
    pub command: String,
}

/// The lab's resources; dropping it stops every process and removes every
/// namespace and (unless kept) the scratch folder.
struct Lab {
    ctx: Ctx,
    keep_work: bool,
}

impl Drop for Lab {
    fn drop(&mut self) {
        self.ctx.procs.stop_all(Duration::from_secs(10));
        let gone = net::teardown(&self.ctx.names);
        if !gone.is_empty() {
            eprintln!("swarmhub-lab: removed {} namespaces", gone.len());
        }
        if !self.keep_work {
            let _ = std::fs::remove_dir_all(&self.ctx.work);
        }
    }
}

/// Refuse to start without root or without `ip` and `tc`.
pub fn preflight() -> Result<()> {
    if !rustix::process::geteuid().is_root() {
        bail!(
            "swarmhub-lab needs root: it creates network namespaces, veth pairs, a bridge \
             and tc shapers. Run it as root (e.g. `sudo swarmhub-lab run ...`)."
        );
    }
    for tool in ["ip", "tc"] {
        let ok = std::process::Command::new(tool)
            .arg("-V")
            .output()
            .is_ok_and(|o| o.status.success());
        if !ok {
            bail!("`{tool}` is missing: install iproute2 (apt-get install iproute2)");
        }
    }
    Ok(())
}

/// Deterministic pseudo-random image bytes (xorshift), written to `path`;
/// returns their SHA-256.
pub fn write_image(path: &Path, len: u64) -> std::io::Result<[u8; 32]> {
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut f = std::io::BufWriter::new(std::fs::File::create(path)?);
    let mut h = Sha256::new();
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
        h.update(&buf[..n]);
        left -= n as u64;
    }
    f.flush()?;
    Ok(h.finalize().into())
}

/// SHA-256 of a file.
pub fn sha256_file(path: &Path) -> std::io::Result<[u8; 32]> {
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

/// Per-client timing of a run.
#[derive(Clone, Copy, Debug, Default)]
struct ClientState {
    joined: Option<Instant>,
    complete: Option<Instant>,
    left: Option<Instant>,
}

/// Counter and CPU samples taken once a second.
struct Sampler {
    bridge_ns: String,
    clients: usize,
    /// Counters at the start (login and setup traffic are not the run's).
    first: Vec<counters::Bytes>,
    last: Option<(Instant, Vec<counters::Bytes>, Option<CpuTimes>)>,
    /// Per sample: when, machine busy fraction, CPU ticks of the lab's processes so far.
    cpu: Vec<(Instant, f64, u64)>,
    /// Latest CPU ticks of each lab process.
    proc_ticks: BTreeMap<u32, u64>,
}

impl Sampler {
    /// Read the bridge ports' counters (v0 = hub, vN = client N) and the CPU.
    fn read(&self) -> Result<Vec<counters::Bytes>> {
        let map = counters::read(&self.bridge_ns)?;
        Ok((0..=self.clients)
            .map(|i| map.get(&Names::port(i)).copied().unwrap_or_default())
            .collect())
    }

    /// Take a sample; returns (hub, peers) egress in bits/s since the last one.
    fn sample(&mut self, pids: &[u32]) -> Result<Option<(f64, f64)>> {
        let now = Instant::now();
        let bytes = self.read()?;
        let cpu = CpuTimes::read();
        for &pid in pids {
            if let Some(t) = crate::cpu::proc_ticks(pid) {
                self.proc_ticks.insert(pid, t);
            }
        }
        let lab_ticks = self.proc_ticks.values().sum();
        let rates = self.last.as_ref().map(|(t, prev, prev_cpu)| {
            let dt = now.duration_since(*t).as_secs_f64().max(1e-3);
            if let (Some(c), Some(p)) = (cpu, prev_cpu) {
                if let Some(busy) = c.busy_since(p) {
                    self.cpu.push((now, busy, lab_ticks));
                }
            }
            // A bridge port receives what its host sends.
            let d = |i: usize| bytes[i].rx.saturating_sub(prev[i].rx) as f64 * 8.0 / dt;
            let hub = d(0);
            let peers = (1..bytes.len()).map(d).sum();
            (hub, peers)
        });
        if self.first.is_empty() {
            self.first = bytes.clone();
        }
        self.last = Some((now, bytes, cpu));
        Ok(rates)
    }
}

fn secs(t0: Instant, t: Option<Instant>) -> Option<f64> {
    t.map(|t| t.saturating_duration_since(t0).as_secs_f64())
}

fn work_dir(opts: &RunOptions) -> Result<PathBuf> {
    let dir = match &opts.work {
        Some(d) => d.clone(),
        None => std::env::temp_dir().join(format!("swarmhub-lab-{}", std::process::id())),
    };
    if dir.exists() {
        std::fs::remove_dir_all(&dir).with_context(|| format!("clearing {}", dir.display()))?;
    }
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    Ok(std::fs::canonicalize(&dir)?)
}

/// Run the lab and write its outputs; returns the summary.
pub fn run(opts: &RunOptions, interrupted: Arc<AtomicBool>) -> Result<record::LabSummary> {
    let wall = Instant::now();
    preflight()?;
    let (scenario, text) = Scenario::load(&opts.scenario)?;
    let plan = plan::plan(&scenario)?;
    if plan.clients.len() > plan::COMFORTABLE_CLIENTS {
        eprintln!(
            "swarmhub-lab: warning: {} clients; above about {} a 2-core machine is CPU bound",
            plan.clients.len(),
            plan::COMFORTABLE_CLIENTS
        );
    }
    let mut engine = engine::make(
        opts.engine,
        opts.swarmhub_bin.clone(),
        opts.fallback_after_s,
    );
    let names = Names::new(&opts.prefix);
    let stale = net::teardown(&names);
    if !stale.is_empty() {
        eprintln!(
            "swarmhub-lab: removed {} stale namespaces of an earlier run ({})",
            stale.len(),
            stale.join(" ")
        );
    }
    let work = work_dir(opts)?;
    let image = work.join("image.bin");
    let mut lab = Lab {
        ctx: Ctx {
            names: names.clone(),
            plan: plan.clone(),
            work: work.clone(),
            image: image.clone(),
            procs: Default::default(),
            interrupted,
        },
        keep_work: opts.keep_work,
    };
    eprintln!(
        "swarmhub-lab: {} hosts on a bridge (namespaces {}*), engine {}",
        plan.clients.len() + 1,
        names.ns_prefix(),
        opts.engine.name()
    );
    for c in net::setup_commands(&names, &plan) {
        lab.ctx.check()?;
        net::run(&c)?;
    }
    let image_sha = write_image(&image, plan.image_bytes).context("writing the image")?;
    engine.prepare(&mut lab.ctx)?;
    eprintln!(
        "swarmhub-lab: hub ready; starting {} clients",
        plan.clients.len()
    );

    let limit = opts.timeout_s.unwrap_or_else(|| default_timeout(&scenario));
    let (t0, states, timeline, sampler) = drive(&mut lab.ctx, engine.as_mut(), &plan, limit)?;
    let end = Instant::now();
    let mut totals = engine.finish(&mut lab.ctx)?;
    let (shaper_down, shaper_up) = shaper_totals(&names, plan.clients.len());
    let counters = sampler.read().unwrap_or_default();
    let since = |i: usize, tx: bool| {
        let first = sampler.first.get(i).copied().unwrap_or_default();
        let last = counters.get(i).copied().unwrap_or_default();
        if tx {
            last.tx.saturating_sub(first.tx)
        } else {
            last.rx.saturating_sub(first.rx)
        }
    };
    if !totals.per_client_sources {
        // Stock engines: wire bytes from the bridge ports, no hub/peer split.
        totals.hub_up = since(0, false);
        totals.clients = (1..=plan.clients.len())
            .map(|i| ClientBytes {
                down_peers: since(i, true),
                up: since(i, false),
                ..ClientBytes::default()
            })
            .collect();
    }

    let mut verified = 0;
    for c in &plan.clients {
        let f = engine.client_file(&lab.ctx, c.id);
        match sha256_file(&f) {
            Ok(h) if h == image_sha => verified += 1,
            Ok(_) => eprintln!(
                "swarmhub-lab: client {}: {} has the WRONG SHA-256",
                c.id,
                f.display()
            ),
            Err(_) if states[c.id - 1].complete.is_none() => {}
            Err(e) => eprintln!("swarmhub-lab: client {}: {}: {e}", c.id, f.display()),
        }
    }
    let peers = peer_records(&plan, t0, &states, &totals.clients);
    let last_done = states
        .iter()
        .filter_map(|s| s.complete)
        .max()
        .unwrap_or(end);
    let window: Vec<_> = sampler
        .cpu
        .iter()
        .filter(|(t, _, _)| *t <= last_done + Duration::from_secs(1))
        .collect();
    let busy: Vec<f64> = window.iter().map(|(_, b, _)| *b).collect();
    let cpu = cpu_stats(&busy, 5);
    let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
    let lab_cpu_s = match (window.first(), window.last()) {
        (Some(a), Some(b)) => b.2.saturating_sub(a.2) as f64 / crate::cpu::ticks_per_s() as f64,
        _ => 0.0,
    };
    let window_s = match (window.first(), window.last()) {
        (Some(a), Some(b)) => b.0.duration_since(a.0).as_secs_f64(),
        _ => 0.0,
    };
    let lab_fields = LabFields {
        engine: opts.engine.name().into(),
        kind: "lab".into(),
        cpu_busy: cpu.mean,
        cpu_busy_peak: cpu.peak,
        cpu_saturated: cpu.mean > SATURATED,
        lab_cpu_s,
        lab_cpu_busy: if window_s > 0.0 {
            lab_cpu_s / (window_s * cpus as f64)
        } else {
            0.0
        },
        cpus,
        hub_wire_bytes_up: since(0, false),
        peer_wire_bytes_up: (1..counters.len()).map(|i| since(i, false)).sum(),
        http_bytes: totals.clients.iter().map(|c| c.down_http).sum(),
        verified,
        shaper_down_packets: shaper_down.packets,
        shaper_down_drops: shaper_down.drops,
        shaper_up_packets: shaper_up.packets,
        shaper_up_drops: shaper_up.drops,
        per_client_sources: totals.per_client_sources,
        tbf: format!(
            "tbf rate = capacity, burst = max(32 KiB, 10 ms of rate), latency {} ms",
            net::TBF_LATENCY_MS
        ),
    };
    let input = SummaryInput {
        scenario: &scenario,
        scenario_hash: Scenario::hash_text(&text),
        end_s: end.duration_since(t0).as_secs_f64(),
        wall_s: wall.elapsed().as_secs_f64(),
        command: opts.command.clone(),
    };
    let summary = record::summary(&input, &peers, totals.hub_up, lab_fields);
    record::write(&opts.out, &peers, &timeline, &summary, &text)
        .with_context(|| format!("writing outputs to {}", opts.out.display()))?;
    if summary.lab.cpu_saturated {
        eprintln!(
            "\n!!! swarmhub-lab: WARNING: the CPUs were {:.0}% busy on average (peak {:.0}%): \
             this run is CPU bound, not network bound. Do not read it as a network result; \
             use fewer clients or lower rates.\n",
            summary.lab.cpu_busy * 100.0,
            summary.lab.cpu_busy_peak * 100.0
        );
    }
    drop(lab);
    Ok(summary)
}

/// Packets the clients' download shapers (bridge ports `v1`..`vN`) and
/// every host's upload shaper (its `eth0`) passed and dropped. A shaper that
/// cannot be read is left out with a warning.
fn shaper_totals(names: &Names, clients: usize) -> (counters::Shaper, counters::Shaper) {
    let add = |sum: &mut counters::Shaper, s: &counters::Shaper| {
        sum.packets += s.packets;
        sum.drops += s.drops;
    };
    let warn = |e: net::NetError| eprintln!("swarmhub-lab: warning: shaper counters: {e}");
    let mut down = counters::Shaper::default();
    match counters::read_shapers(&names.bridge_ns(), None) {
        Ok(all) => (1..=clients)
            .filter_map(|id| all.get(&Names::port(id)))
            .for_each(|s| add(&mut down, s)),
        Err(e) => warn(e),
    }
    let mut up = counters::Shaper::default();
    for id in 0..=clients {
        match counters::read_shapers(&names.host_ns(id), Some("eth0")) {
            Ok(all) => all.values().for_each(|s| add(&mut up, s)),
            Err(e) => warn(e),
        }
    }
    (down, up)
}

/// Default time limit: the scenario's duration, but at most 20 times the
/// bound plus two minutes, so a stuck run ends.
fn default_timeout(s: &Scenario) -> f64 {
    let b = swarmhub_sim::bound::bound(s).bound_s;
    s.duration.secs().min(20.0 * b + 120.0)
}

type Driven = (Instant, Vec<ClientState>, Vec<TimelineRecord>, Sampler);

/// The run proper: launches, completions, departures and samples until every
/// client is done (or gone) or `limit_s` passes.
fn drive(ctx: &mut Ctx, engine: &mut dyn Engine, plan: &LabPlan, limit_s: f64) -> Result<Driven> {
    let n = plan.clients.len();
    let mut sampler = Sampler {
        bridge_ns: ctx.names.bridge_ns(),
        clients: n,
        first: Vec::new(),
        last: None,
        cpu: Vec::new(),
        proc_ticks: BTreeMap::new(),
    };
    let mut states = vec![ClientState::default(); n];
    let mut timeline = Vec::new();
    sampler.sample(&ctx.procs.pids())?;
    let t0 = Instant::now();
    let mut next_sample = t0 + Duration::from_secs(1);
    let mut last_report = t0;
    loop {
        ctx.check()?;
        let now = Instant::now();
        for (c, st) in plan.clients.iter().zip(states.iter_mut()) {
            if st.joined.is_none() && now >= t0 + Duration::from_secs_f64(c.join_s) {
                engine.start_client(ctx, c.id)?;
                st.joined = Some(Instant::now());
            }
        }
        for (id, t) in engine.poll_complete(ctx)? {
            if let Some(st) = states.get_mut(id.wrapping_sub(1)) {
                st.complete.get_or_insert(t);
            }
        }
        for (i, st) in states.iter_mut().enumerate() {
            let id = i + 1;
            if st.left.is_some() || st.joined.is_none() {
                continue;
            }
            let due = match (plan.leave, st.complete) {
                (Leave::AtCompletion, Some(_)) => true,
                (Leave::After(d), Some(c)) => now >= c + Duration::from_secs_f64(d),
                _ => false,
            };
            if due {
                engine.stop_client(ctx, id);
                st.left = Some(Instant::now());
            } else if st.complete.is_none() && engine.exited(ctx, id) {
                eprintln!(
                    "swarmhub-lab: client {id} exited before completing; see {}",
                    ctx.log(id).display()
                );
                st.left = Some(now);
            }
        }
        if now >= next_sample {
            next_sample += Duration::from_secs(1);
            if let Some((hub, peers)) = sampler.sample(&ctx.procs.pids())? {
                let t = now.duration_since(t0).as_secs_f64();
                timeline.push(row(t, &states, hub, peers));
            }
        }
        let done = states
            .iter()
            .all(|s| s.joined.is_some() && (s.complete.is_some() || s.left.is_some()));
        if done {
            break;
        }
        if now.duration_since(last_report) >= Duration::from_secs(10) {
            last_report = now;
            let complete = states.iter().filter(|s| s.complete.is_some()).count();
            eprintln!(
                "swarmhub-lab: t = {:.0} s: {complete}/{n} complete",
                now.duration_since(t0).as_secs_f64()
            );
        }
        if now.duration_since(t0).as_secs_f64() > limit_s {
            eprintln!("swarmhub-lab: time limit of {limit_s:.0} s reached; stopping the run");
            break;
        }
        std::thread::sleep(Duration::from_millis(25));
    }
    if let Some((hub, peers)) = sampler.sample(&ctx.procs.pids())? {
        let t = Instant::now().duration_since(t0).as_secs_f64();
        timeline.push(row(t, &states, hub, peers));
    }
    Ok((t0, states, timeline, sampler))
}

fn row(t_s: f64, states: &[ClientState], hub: f64, peers: f64) -> TimelineRecord {
    let joined = |s: &&ClientState| s.joined.is_some();
    TimelineRecord {
        t_s,
        leechers: states
            .iter()
            .filter(joined)
            .filter(|s| s.complete.is_none() && s.left.is_none())
            .count(),
        seeds: states
            .iter()
            .filter(|s| s.complete.is_some() && s.left.is_none())
            .count(),
        completed: states.iter().filter(|s| s.complete.is_some()).count(),
        hub_egress_bps: hub,
        peer_egress_bps: peers,
    }
}

fn peer_records(
    plan: &LabPlan,
    t0: Instant,
    states: &[ClientState],
    bytes: &[ClientBytes],
) -> Vec<PeerRecord> {
    plan.clients
        .iter()
        .zip(states)
        .map(|(c, st)| {
            let b = bytes.get(c.id - 1).copied().unwrap_or_default();
            PeerRecord {
                id: c.id,
                group: c.group.clone(),
                join_s: secs(t0, st.joined),
                complete_s: secs(t0, st.complete),
                leave_s: secs(t0, st.left),
                bytes_down_hub: b.down_hub + b.down_http,
                bytes_down_peers: b.down_peers,
                bytes_up: b.up,
                bytes_wasted: None,
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn image_bytes_are_deterministic_and_hashed_while_written() {
        let dir = tempfile::tempdir().expect("tempdir");
        let (a, b) = (dir.path().join("a"), dir.path().join("b"));
        let ha = write_image(&a, 100_003).expect("write");
        let hb = write_image(&b, 100_003).expect("write");
        assert_eq!(ha, hb);
        assert_eq!(sha256_file(&a).expect("hash"), ha);
        assert_eq!(std::fs::metadata(&a).expect("meta").len(), 100_003);
        let hc = write_image(&b, 100_002).expect("write");
        assert_ne!(ha, hc);
    }

    #[test]
    fn timeline_rows_count_leechers_seeds_and_completed() {
        let t = Instant::now();
        let states = [
            ClientState::default(),
            ClientState {
                joined: Some(t),
                ..Default::default()
            },
            ClientState {
                joined: Some(t),
                complete: Some(t),
                ..Default::default()
            },
            ClientState {
                joined: Some(t),
                complete: Some(t),
                left: Some(t),
            },
        ];
        let r = row(3.0, &states, 1.0, 2.0);
        assert_eq!((r.leechers, r.seeds, r.completed), (1, 1, 2));
    }
}
