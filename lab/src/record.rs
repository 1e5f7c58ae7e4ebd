//! Run outputs in the simulator's schema (`peers.csv`, `timeline.csv`,
//! `summary.json`, see `swarmhub_sim::output`), so `swarmhub-reports` draws
//! lab runs and simulated runs alike. `summary.json` is the simulator's
//! [`swarmhub_sim::Summary`] with the lab's own fields added beside it.

use std::io::Write;
use std::path::Path;

use serde::Serialize;
use swarmhub_sim::output::{percentile, Percentiles};
use swarmhub_sim::Summary;

/// One client of a finished run (a `peers.csv` row).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct PeerRecord {
    /// Peer id (1..=N).
    pub id: usize,
    /// Scenario group.
    pub group: String,
    /// Seconds from the start to the client's launch.
    pub join_s: Option<f64>,
    /// Seconds from the start to its completion.
    pub complete_s: Option<f64>,
    /// Seconds from the start to its departure (none when it seeded to the end).
    pub leave_s: Option<f64>,
    /// Payload bytes from the hub (seeder and web seed), duplicates included
    /// where they are known (as the simulator counts them).
    pub bytes_down_hub: u64,
    /// Payload bytes from other clients, duplicates included where known.
    pub bytes_down_peers: u64,
    /// Payload bytes uploaded.
    pub bytes_up: u64,
    /// Of the bytes received, those that were not needed (duplicates), where
    /// the client reports them.
    pub bytes_wasted: Option<u64>,
}

impl PeerRecord {
    /// Seconds from join to completion.
    pub fn completion_s(&self) -> Option<f64> {
        Some(self.complete_s? - self.join_s.unwrap_or(0.0))
    }
}

/// One `timeline.csv` row; rates are wire bits per second from the veth counters.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct TimelineRecord {
    /// Seconds from the start.
    pub t_s: f64,
    /// Clients downloading.
    pub leechers: usize,
    /// Clients complete and still running.
    pub seeds: usize,
    /// Clients complete so far.
    pub completed: usize,
    /// What the hub sent.
    pub hub_egress_bps: f64,
    /// What clients sent.
    pub peer_egress_bps: f64,
}

/// The lab's fields of `summary.json`, beside the simulator's.
#[derive(Clone, Debug, Serialize)]
pub struct LabFields {
    /// What ran: `swarmhub`, `qbittorrent`, `transmission` or `aria2`.
    pub engine: String,
    /// `lab` (the simulator writes no such field).
    pub kind: String,
    /// Mean busy fraction of all CPUs from the first launch to the last completion.
    pub cpu_busy: f64,
    /// Highest 5-second moving average of the busy fraction.
    pub cpu_busy_peak: f64,
    /// `cpu_busy` above the saturation threshold: the result may be CPU bound.
    pub cpu_saturated: bool,
    /// CPU seconds the lab's own processes (hub, clients, seeds) used in that window.
    pub lab_cpu_s: f64,
    /// `lab_cpu_s` as a fraction of all CPUs over the window (the rest of
    /// `cpu_busy` is the kernel's forwarding and shaping, and anything else
    /// running on the machine).
    pub lab_cpu_busy: f64,
    /// CPU cores of the machine.
    pub cpus: usize,
    /// Bytes the hub's veth sent (payload plus TCP/IP, TLS, HTTP, BitTorrent framing).
    pub hub_wire_bytes_up: u64,
    /// Bytes all clients' veths sent.
    pub peer_wire_bytes_up: u64,
    /// Payload bytes clients fetched over HTTP from the hub (web seed fallback),
    /// included in `hub_bytes_up`.
    pub http_bytes: u64,
    /// Clients whose files matched the image's SHA-256.
    pub verified: usize,
    /// Packets the clients' download shapers passed.
    pub shaper_down_packets: u64,
    /// Packets they dropped (queue full): TCP sends these again.
    pub shaper_down_drops: u64,
    /// Packets every host's upload shaper passed.
    pub shaper_up_packets: u64,
    /// Packets they dropped.
    pub shaper_up_drops: u64,
    /// Whether `bytes_down_hub` / `bytes_down_peers` per client are measured
    /// (stock engines report only totals; then the split is left at zero).
    pub per_client_sources: bool,
    /// Shaper settings.
    pub tbf: String,
}

/// `summary.json` of a lab run.
#[derive(Clone, Debug, Serialize)]
pub struct LabSummary {
    /// Fields shared with the simulator.
    #[serde(flatten)]
    pub base: Summary,
    /// Lab-only fields.
    #[serde(flatten)]
    pub lab: LabFields,
}

/// What the summary is built from besides the records.
#[derive(Clone, Debug)]
pub struct SummaryInput<'a> {
    /// The scenario.
    pub scenario: &'a swarmhub_sim::Scenario,
    /// SHA-256 of its text.
    pub scenario_hash: String,
    /// Seconds from the start to the end of the run.
    pub end_s: f64,
    /// Wall seconds of the whole command (setup included).
    pub wall_s: f64,
    /// Command line.
    pub command: String,
}

/// Completion percentiles of the peers that completed.
pub fn completion_percentiles(peers: &[PeerRecord]) -> Percentiles {
    let mut times: Vec<f64> = peers.iter().filter_map(PeerRecord::completion_s).collect();
    times.sort_by(f64::total_cmp);
    Percentiles {
        p50: percentile(&times, 0.50),
        p90: percentile(&times, 0.90),
        p99: percentile(&times, 0.99),
        max: times.last().copied(),
    }
}

/// Build the summary. `hub_bytes_up` is payload the clients received from the
/// hub (the simulator counts block bytes), so hub copies compare like for like.
pub fn summary(
    input: &SummaryInput<'_>,
    peers: &[PeerRecord],
    hub_bytes_up: u64,
    lab: LabFields,
) -> LabSummary {
    let s = input.scenario;
    let completion_s = completion_percentiles(peers);
    let bound_s = swarmhub_sim::bound::bound(s).bound_s;
    // Where the lab cannot split a client's bytes by source these are 0.
    let (received_copies_mean, received_copies_max) = swarmhub_sim::output::received_copies(
        s.image.size.0,
        peers.iter().map(|p| p.bytes_down_hub + p.bytes_down_peers),
    );
    let base = Summary {
        scenario: s.name.clone(),
        scenario_hash: input.scenario_hash.clone(),
        seed: s.seed,
        peers: peers.len(),
        image_bytes: s.image.size.0,
        piece_bytes: s.piece_size(),
        block_bytes: s.block_size(),
        p2p: s.protocol.p2p,
        completed: peers.iter().filter(|p| p.complete_s.is_some()).count(),
        ratio_to_bound: completion_s.max.map(|m| m / bound_s),
        completion_s,
        bound_s,
        hub_bytes_up,
        hub_copies: hub_bytes_up as f64 / s.image.size.0 as f64,
        peer_bytes_up: peers.iter().map(|p| p.bytes_up).sum(),
        received_copies_mean,
        received_copies_max,
        wasted_bytes: peers.iter().map(|p| p.bytes_wasted).sum(),
        links: Vec::new(),
        sim_end_s: input.end_s,
        events: 0,
        trace_hash: String::new(),
        wall_s: input.wall_s,
        events_per_s: 0.0,
        sim_s_per_wall_s: 1.0,
        version: env!("CARGO_PKG_VERSION").to_string(),
        command: input.command.clone(),
    };
    LabSummary { base, lab }
}

fn opt(t: Option<f64>) -> String {
    t.map(|t| format!("{t:.6}")).unwrap_or_default()
}

/// Write `peers.csv`, `timeline.csv`, `summary.json` and `scenario.toml` into `dir`.
pub fn write(
    dir: &Path,
    peers: &[PeerRecord],
    timeline: &[TimelineRecord],
    summary: &impl Serialize,
    scenario_text: &str,
) -> std::io::Result<()> {
    std::fs::create_dir_all(dir)?;
    let mut w = csv::Writer::from_path(dir.join("peers.csv"))?;
    w.write_record([
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
    for p in peers {
        w.write_record([
            p.id.to_string(),
            p.group.clone(),
            String::new(),
            opt(p.join_s),
            opt(p.complete_s),
            opt(p.leave_s),
            p.bytes_down_hub.to_string(),
            p.bytes_down_peers.to_string(),
            p.bytes_up.to_string(),
            p.bytes_wasted.map(|w| w.to_string()).unwrap_or_default(),
        ])?;
    }
    w.flush()?;
    let mut w = csv::Writer::from_path(dir.join("timeline.csv"))?;
    w.write_record([
        "t_s",
        "leechers",
        "seeds",
        "completed",
        "throughput_bps",
        "hub_egress_bps",
        "peer_egress_bps",
    ])?;
    for r in timeline {
        w.write_record([
            format!("{:.3}", r.t_s),
            r.leechers.to_string(),
            r.seeds.to_string(),
            r.completed.to_string(),
            format!("{:.0}", r.hub_egress_bps + r.peer_egress_bps),
            format!("{:.0}", r.hub_egress_bps),
            format!("{:.0}", r.peer_egress_bps),
        ])?;
    }
    w.flush()?;
    let mut f = std::fs::File::create(dir.join("summary.json"))?;
    serde_json::to_writer_pretty(&mut f, summary)?;
    writeln!(f)?;
    std::fs::write(dir.join("scenario.toml"), scenario_text)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const SCENARIO: &str = r#"
name = "rec"
[image]
size = "16 MiB"
[hub]
upload = "100 Mbit/s"
[[group]]
name = "peers"
count = 3
upload = "20 Mbit/s"
download = "20 Mbit/s"
"#;

    fn lab_fields() -> LabFields {
        LabFields {
            engine: "swarmhub".into(),
            kind: "lab".into(),
            cpu_busy: 0.4,
            cpu_busy_peak: 0.6,
            cpu_saturated: false,
            lab_cpu_s: 3.0,
            lab_cpu_busy: 0.2,
            cpus: 2,
            hub_wire_bytes_up: 40 << 20,
            peer_wire_bytes_up: 30 << 20,
            http_bytes: 0,
            verified: 2,
            shaper_down_packets: 1000,
            shaper_down_drops: 10,
            shaper_up_packets: 900,
            shaper_up_drops: 0,
            per_client_sources: true,
            tbf: "test".into(),
        }
    }

    #[test]
    fn outputs_load_with_the_reports_loader() {
        let scenario =
            swarmhub_sim::Scenario::parse(SCENARIO, Path::new("rec.toml")).expect("scenario");
        let peers: Vec<PeerRecord> = (1..=3)
            .map(|id| PeerRecord {
                id,
                group: "peers".into(),
                join_s: Some(0.5 * id as f64),
                complete_s: (id < 3).then_some(10.0 + id as f64),
                leave_s: None,
                bytes_down_hub: 4 << 20,
                bytes_down_peers: 12 << 20,
                bytes_up: 10 << 20,
                bytes_wasted: None,
            })
            .collect();
        let timeline = vec![
            TimelineRecord {
                t_s: 1.0,
                leechers: 3,
                hub_egress_bps: 9e7,
                peer_egress_bps: 2e7,
                ..TimelineRecord::default()
            },
            TimelineRecord {
                t_s: 2.0,
                leechers: 1,
                seeds: 2,
                completed: 2,
                ..TimelineRecord::default()
            },
        ];
        let input = SummaryInput {
            scenario: &scenario,
            scenario_hash: "abc".into(),
            end_s: 13.0,
            wall_s: 20.0,
            command: "swarmhub-lab run rec.toml".into(),
        };
        let s = summary(&input, &peers, 8 << 20, lab_fields());
        assert_eq!(s.base.completed, 2);
        assert_eq!(s.base.completion_s.max, Some(11.0));
        assert_eq!(s.base.completion_s.p50, Some(10.5));
        assert!((s.base.hub_copies - 0.5).abs() < 1e-12);
        let dir = tempfile::tempdir().expect("tempdir");
        write(dir.path(), &peers, &timeline, &s, SCENARIO).expect("write");

        let run = swarmhub_reports::load::load_run(dir.path()).expect("reports load the lab run");
        assert_eq!(run.peers.len(), 3);
        assert_eq!(run.peers[2].complete_s, None);
        assert_eq!(run.peers[0].completion_s(), Some(10.5));
        assert_eq!(run.timeline[0].throughput_bps, 1.1e8);
        assert_eq!(run.summary.completed, 2);
        assert_eq!(run.summary.ratio_to_bound, s.base.ratio_to_bound);
        assert_eq!(run.scenario_toml.as_deref(), Some(SCENARIO));
        let json: serde_json::Value = serde_json::from_str(
            &std::fs::read_to_string(dir.path().join("summary.json")).expect("read"),
        )
        .expect("json");
        assert_eq!(json["engine"], "swarmhub");
        assert_eq!(json["cpu_busy"], 0.4);
        assert_eq!(
            json["scenario"], "rec",
            "flattened beside the simulator's fields"
        );

        // A second run named in overlay.txt is loaded for the CDF chart.
        let other = dir.path().join("other");
        write(&other, &peers[..2], &timeline, &s, SCENARIO).expect("write other");
        crate::compare::write_overlay_file(
            dir.path(),
            &[
                ("other".into(), "simulator".into()),
                ("other".into(), String::new()),
            ],
        )
        .expect("overlay");
        let run = swarmhub_reports::load::load_run(dir.path()).expect("load with overlay");
        let labels: Vec<(&str, usize)> = run
            .overlays
            .iter()
            .map(|o| (o.label.as_str(), o.peers.len()))
            .collect();
        assert_eq!(labels, [("simulator", 2), ("other", 2)]);
        assert_eq!(run.summary.engine.as_deref(), Some("swarmhub"));
    }
}
