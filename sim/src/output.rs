//! Run outputs: `peers.csv`, `timeline.csv`, `summary.json` and, with
//! `--trace`, `events.csv`. The schema is shared with real runs (the lab) so the
//! reports crate draws both. Every file is a pure function of the scenario
//! text and the seed, except the wall-clock fields `wall_s`, `events_per_s` and
//! `sim_s_per_wall_s` of `summary.json`.

use std::fs;
use std::io::Write;
use std::path::Path;

use serde::Serialize;

use crate::bound::bound;
use crate::engine::{Sim, HUB};
use crate::scenario::Scenario;

/// Completion-time percentiles in seconds (from join to completion).
#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct Percentiles {
    /// Median.
    pub p50: Option<f64>,
    /// 90th percentile.
    pub p90: Option<f64>,
    /// 99th percentile.
    pub p99: Option<f64>,
    /// Slowest.
    pub max: Option<f64>,
}

/// What crossed one inter-site link in one direction.
#[derive(Clone, Debug, Serialize)]
pub struct LinkUse {
    /// Site the bytes left.
    pub from: String,
    /// Site they entered.
    pub to: String,
    /// Block bytes (payload) that crossed.
    pub bytes: u64,
    /// `bytes` over the image size.
    pub copies: f64,
}

/// `summary.json`.
#[derive(Clone, Debug, Serialize)]
pub struct Summary {
    /// Scenario name.
    pub scenario: String,
    /// SHA-256 of the scenario file's text.
    pub scenario_hash: String,
    /// Seed of the run.
    pub seed: u64,
    /// Peers (hub not counted).
    pub peers: usize,
    /// Image size.
    pub image_bytes: u64,
    /// Piece size.
    pub piece_bytes: u32,
    /// Block size.
    pub block_bytes: u32,
    /// Peer-to-peer on.
    pub p2p: bool,
    /// Peers that completed.
    pub completed: usize,
    /// Completion times.
    pub completion_s: Percentiles,
    /// Kumar-Ross lower bound for a flash crowd.
    pub bound_s: f64,
    /// completion max / bound.
    pub ratio_to_bound: Option<f64>,
    /// Block bytes the hub uploaded.
    pub hub_bytes_up: u64,
    /// hub_bytes_up / image_bytes.
    pub hub_copies: f64,
    /// Block bytes peers uploaded.
    pub peer_bytes_up: u64,
    /// Mean over peers of the block bytes each received (from the hub and
    /// from peers, duplicates and failed pieces included) over the image
    /// size: 1 is no waste.
    pub received_copies_mean: f64,
    /// The same for the peer that received most.
    pub received_copies_max: f64,
    /// Block bytes peers received and threw away (duplicates, unrequested
    /// blocks, pieces that failed their hash), summed over peers; absent
    /// where it is not measured (lab runs).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub wasted_bytes: Option<u64>,
    /// Block bytes across each inter-site link, per direction (absent
    /// without links).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub links: Vec<LinkUse>,
    /// Simulated time at the end of the run.
    pub sim_end_s: f64,
    /// Events processed.
    pub events: u64,
    /// FNV-1a hash of the event trace (hex), to compare runs.
    pub trace_hash: String,
    /// Wall-clock seconds (varies between runs).
    pub wall_s: f64,
    /// Events per wall-clock second (varies between runs).
    pub events_per_s: f64,
    /// Simulated seconds per wall-clock second (varies between runs).
    pub sim_s_per_wall_s: f64,
    /// swarmhub-sim version.
    pub version: String,
    /// Command that reproduces the run.
    pub command: String,
}

/// The `q` quantile (nearest rank) of sorted values; `None` when empty.
pub fn percentile(sorted: &[f64], q: f64) -> Option<f64> {
    if sorted.is_empty() {
        return None;
    }
    let rank = ((q * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len());
    Some(sorted[rank - 1])
}

/// Mean and largest of the bytes each peer received over the image size
/// (`summary.json`'s `received_copies_mean` and `received_copies_max`).
pub fn received_copies(image_bytes: u64, received: impl Iterator<Item = u64>) -> (f64, f64) {
    let image = image_bytes.max(1) as f64;
    let (mut sum, mut max, mut n) = (0.0, 0.0_f64, 0usize);
    for r in received {
        let copies = r as f64 / image;
        sum += copies;
        max = max.max(copies);
        n += 1;
    }
    (sum / n.max(1) as f64, max)
}

/// Build the summary of a finished run.
pub fn summary(sim: &Sim, scenario_hash: &str, wall_s: f64, command: &str) -> Summary {
    let s = &sim.scenario;
    let mut times: Vec<f64> = sim.hosts[1..]
        .iter()
        .filter_map(|h| Some(h.complete_at?.saturating_since(h.join_at?).as_secs_f64()))
        .collect();
    times.sort_by(f64::total_cmp);
    let completion_s = Percentiles {
        p50: percentile(&times, 0.50),
        p90: percentile(&times, 0.90),
        p99: percentile(&times, 0.99),
        max: times.last().copied(),
    };
    let b = bound(s).bound_s;
    let hub_bytes_up = sim.hosts[HUB].bytes_up;
    let peer_bytes_up: u64 = sim.hosts[1..].iter().map(|h| h.bytes_up).sum();
    let sim_end_s = sim.now.as_secs_f64();
    let (received_copies_mean, received_copies_max) = received_copies(
        s.image.size.0,
        sim.hosts[1..]
            .iter()
            .map(|h| h.bytes_down_hub + h.bytes_down_peers),
    );
    Summary {
        scenario: s.name.clone(),
        scenario_hash: scenario_hash.to_string(),
        seed: sim.seed,
        peers: s.peer_count(),
        image_bytes: s.image.size.0,
        piece_bytes: s.piece_size(),
        block_bytes: s.block_size(),
        p2p: s.protocol.p2p,
        completed: times.len(),
        ratio_to_bound: completion_s.max.map(|m| m / b),
        completion_s,
        bound_s: b,
        hub_bytes_up,
        hub_copies: hub_bytes_up as f64 / s.image.size.0 as f64,
        peer_bytes_up,
        received_copies_mean,
        received_copies_max,
        wasted_bytes: Some((1..sim.hosts.len()).map(|h| sim.wasted(h)).sum()),
        links: link_use(s, &sim.link_bytes),
        sim_end_s,
        events: sim.events,
        trace_hash: format!("{:016x}", sim.trace_hash),
        wall_s,
        events_per_s: sim.events as f64 / wall_s.max(1e-9),
        sim_s_per_wall_s: sim_end_s / wall_s.max(1e-9),
        version: env!("CARGO_PKG_VERSION").to_string(),
        command: command.to_string(),
    }
}

fn opt(t: Option<swarmhub_core::Instant>) -> String {
    t.map(|t| format!("{:.6}", t.as_secs_f64()))
        .unwrap_or_default()
}

/// Write every output file into `dir` (created if missing).
/// Names of link resource `i` (see `Sim::link_bytes`): (from, to).
fn link_names(s: &Scenario, i: usize) -> (String, String) {
    let l = &s.network.links[i / 2];
    if i.is_multiple_of(2) {
        (l.from.clone(), l.to.clone())
    } else {
        (l.to.clone(), l.from.clone())
    }
}

fn link_use(s: &Scenario, bytes: &[u64]) -> Vec<LinkUse> {
    bytes
        .iter()
        .enumerate()
        .map(|(i, &b)| {
            let (from, to) = link_names(s, i);
            LinkUse {
                from,
                to,
                bytes: b,
                copies: b as f64 / s.image.size.0 as f64,
            }
        })
        .collect()
}

pub fn write(sim: &Sim, summary: &Summary, dir: &Path) -> std::io::Result<()> {
    fs::create_dir_all(dir)?;
    let mut peers = csv::Writer::from_path(dir.join("peers.csv"))?;
    peers.write_record([
        "id",
        "group",
        "site",
        "join_s",
        "complete_s",
        "leave_s",
        "bytes_down_hub",
        "bytes_down_peers",
        "bytes_up",
        "bytes_wasted",
    ])?;
    for (i, h) in sim.hosts.iter().enumerate().skip(1) {
        peers.write_record([
            i.to_string(),
            h.group.clone(),
            h.site.clone(),
            opt(h.join_at),
            opt(h.complete_at),
            opt(h.leave_at),
            h.bytes_down_hub.to_string(),
            h.bytes_down_peers.to_string(),
            h.bytes_up.to_string(),
            sim.wasted(i).to_string(),
        ])?;
    }
    peers.flush()?;
    let mut tl = csv::Writer::from_path(dir.join("timeline.csv"))?;
    let mut header: Vec<String> = [
        "t_s",
        "leechers",
        "seeds",
        "completed",
        "throughput_bps",
        "hub_egress_bps",
        "peer_egress_bps",
    ]
    .iter()
    .map(|c| c.to_string())
    .collect();
    // One column per inter-site link and direction: `link_FROM_TO_bps`.
    for i in 0..sim.link_bytes.len() {
        let (from, to) = link_names(&sim.scenario, i);
        header.push(format!("link_{from}_{to}_bps"));
    }
    tl.write_record(&header)?;
    for r in &sim.timeline {
        let mut row = vec![
            format!("{:.3}", r.t_s),
            r.leechers.to_string(),
            r.seeds.to_string(),
            r.completed.to_string(),
            format!("{:.0}", r.from_hub_bps + r.from_peers_bps),
            format!("{:.0}", r.from_hub_bps),
            format!("{:.0}", r.from_peers_bps),
        ];
        for i in 0..sim.link_bytes.len() {
            row.push(format!("{:.0}", r.link_bps.get(i).copied().unwrap_or(0.0)));
        }
        tl.write_record(&row)?;
    }
    tl.flush()?;
    let mut f = fs::File::create(dir.join("summary.json"))?;
    serde_json::to_writer_pretty(&mut f, summary)?;
    writeln!(f)?;
    if let Some(trace) = &sim.trace {
        let mut ev = csv::Writer::from_path(dir.join("events.csv"))?;
        ev.write_record(["t_s", "host", "event"])?;
        for (t, h, text) in trace {
            ev.write_record([
                format!("{:.6}", t.as_secs_f64()),
                h.to_string(),
                text.clone(),
            ])?;
        }
        ev.flush()?;
    }
    Ok(())
}
