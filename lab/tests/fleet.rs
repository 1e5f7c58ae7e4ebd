//! The fleet harness smoke: one real hub and 50 real clients in one
//! `swarmhub-lab fleet` process over loopback (no root), a small image; and
//! a few clients in processes of their own.

use std::process::Command;

const LAB: &str = env!("CARGO_BIN_EXE_swarmhub-lab");

/// `swarmhub-lab fleet ARGS --out OUT` with small-fleet settings; asserts it
/// succeeded and returns its status and output, for messages.
fn fleet(args: &[&str], out: &std::path::Path) -> String {
    let o = Command::new(LAB)
        .arg("fleet")
        .args(args)
        .args(["--client-upload", "40Mbit/s", "--announce-interval", "2"])
        .args(["--timeout", "240", "--out"])
        .arg(out)
        .output()
        .expect("run swarmhub-lab fleet");
    let text = format!(
        "status {:?}\nstdout:\n{}\nstderr:\n{}",
        o.status,
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    assert!(o.status.success(), "{text}");
    text
}

#[test]
fn fleet_of_fifty_clients_completes_and_writes_the_run_schema() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let out = tmp.path().join("fleet");
    let text = fleet(&["--clients", "50", "--image-size", "1MiB"], &out);

    let run = swarmhub_reports::load::load_run(&out).expect("reports load the fleet run");
    assert_eq!(run.peers.len(), 50, "{text}");
    assert!(run.peers.iter().all(|p| p.complete_s.is_some()), "{text}");
    assert_eq!(run.summary.completed, 50);
    let json: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(out.join("summary.json")).expect("summary.json"),
    )
    .expect("json");
    assert_eq!(
        json["verified"], 50,
        "every copy matches the image's SHA-256"
    );
    assert_eq!(json["kind"], "fleet");
    let copies = json["hub_copies"].as_f64().expect("hub_copies");
    assert!(
        (0.9..50.0).contains(&copies),
        "the hub sent {copies} copies; clients must have shared: {text}"
    );
    let from_peers: u64 = run.peers.iter().map(|p| p.bytes_down_peers).sum();
    assert!(from_peers > 0, "no client uploaded to another: {text}");
    // Each client's duplicates, as its core counted them, are in peers.csv
    // and summed in summary.json; what a client received less what it
    // dropped is one image.
    let mut wasted = 0;
    for p in &run.peers {
        let w = p.bytes_wasted.expect("fleet clients report bytes_wasted");
        assert_eq!(
            p.bytes_down_hub + p.bytes_down_peers - w,
            1 << 20,
            "client {}: received {} + {} with {w} wasted",
            p.id,
            p.bytes_down_hub,
            p.bytes_down_peers
        );
        wasted += w;
    }
    assert_eq!(json["wasted_bytes"].as_u64(), Some(wasted), "{json}");
    assert!(
        json["announce_samples"].as_u64().expect("samples") > 0,
        "{json}"
    );
    assert!(json["announce_p99_ms"].as_f64().is_some(), "{json}");
    assert!(json["process_rss_peak_bytes"].as_u64().expect("rss") > 0);
    // The hub's seeder, read from its metrics, turned no client away: the
    // only refusals are second connections of a client it already serves
    // (both ends dialled at once).
    assert!(json["refused_connections"].as_u64().is_some(), "{json}");
    let reasons = json["refused_by_reason"].as_object().expect("reasons");
    assert!(
        reasons.keys().all(|r| r == "duplicate_peer"),
        "refused: {reasons:?}"
    );
    assert!(
        json["client_errors"].as_array().expect("errors").is_empty(),
        "{json}"
    );
    assert!(!run.timeline.is_empty());
    let scenario = std::fs::read_to_string(out.join("scenario.toml")).expect("scenario.toml");
    assert!(scenario.contains("count = 50"), "{scenario}");
    // No scratch state is left behind.
    let left: Vec<_> = std::fs::read_dir(&out)
        .expect("out")
        .filter_map(|e| e.ok())
        .filter(|e| e.file_name().to_string_lossy().starts_with("fleet-work-"))
        .collect();
    assert!(left.is_empty(), "scratch folder left in {}", out.display());
}

#[test]
fn fleet_clients_in_processes_of_their_own_complete_and_the_hub_is_measured_alone() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let out = tmp.path().join("fleet");
    let text = fleet(
        &[
            "--clients",
            "24",
            "--image-size",
            "2MiB",
            "--client-processes",
            "3",
        ],
        &out,
    );
    let json: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(out.join("summary.json")).expect("summary.json"),
    )
    .expect("json");
    assert_eq!(json["verified"], 24, "{json}");
    assert_eq!(json["completed"], 24, "{json}");
    assert_eq!(json["client_processes"], 3, "{json}");
    let hub = json["hub_rss_peak_bytes"].as_u64().expect("hub RSS");
    let all = json["process_rss_peak_bytes"].as_u64().expect("RSS");
    assert!(hub > 0 && hub < all, "hub {hub} of {all}: {json}");
    assert!(
        json["client_errors"].as_array().expect("errors").is_empty(),
        "{json}"
    );
    // Every client's bytes were reported back by its process.
    let run = swarmhub_reports::load::load_run(&out).expect("reports load the fleet run");
    let got: u64 = run
        .peers
        .iter()
        .map(|p| p.bytes_down_hub + p.bytes_down_peers)
        .sum();
    assert!(got >= 24 * 2 * 1024 * 1024, "{got} bytes: {text}");
}
