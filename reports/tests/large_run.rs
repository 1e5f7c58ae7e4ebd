//! A 10,000-peer run (the large-fleet scenario's size), generated here: the
//! per-peer bytes chart bins ranks, keeps its legend by group @ site, and
//! stays small; below the threshold it still draws a bar per peer.

use std::fmt::Write as _;
use std::path::Path;

use swarmhub_reports::charts::PEER_BIN_THRESHOLD;
use swarmhub_reports::write_report;

mod common;
use common::{check_png, check_svg};

const GIB: u64 = 1 << 30;
const CLASSES: [(&str, &str); 4] = [
    ("fleet", "eu"),
    ("fleet", "us"),
    ("edge", "eu"),
    ("edge", "us"),
];

/// A run folder with `n` peers in four group @ site classes; numbers come
/// from a fixed xorshift so the folder is the same on every run.
fn synthetic_run(dir: &Path, n: u64) {
    let fixture = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/run");
    std::fs::create_dir_all(dir).unwrap();
    let mut state = 0x9e37_79b9_7f4a_7c15u64;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    let mut peers = String::from(
        "id,group,site,join_s,complete_s,leave_s,bytes_down_hub,bytes_down_peers,bytes_up\n",
    );
    for id in 1..=n {
        let (group, site) = CLASSES[(next() % 4) as usize];
        let hub = next() % (GIB / 8);
        // A heavy tail of uploaders: most send under one copy, a few send many.
        let up = (next() % GIB) * (1 + next() % 8) / (1 + next() % 6);
        let complete = 30.0 + (next() % 60_000) as f64 / 1000.0;
        writeln!(
            peers,
            "{id},{group},{site},0.000000,{complete:.6},,{hub},{},{up}",
            GIB - hub
        )
        .unwrap();
    }
    std::fs::write(dir.join("peers.csv"), peers).unwrap();
    std::fs::copy(fixture.join("timeline.csv"), dir.join("timeline.csv")).unwrap();
    let mut summary: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(fixture.join("summary.json")).unwrap())
            .unwrap();
    summary["scenario"] = "synthetic-fleet".into();
    summary["peers"] = n.into();
    summary["completed"] = n.into();
    summary["image_bytes"] = GIB.into();
    std::fs::write(dir.join("summary.json"), summary.to_string()).unwrap();
}

fn svg_rects(path: &Path) -> usize {
    let text = std::fs::read_to_string(path).unwrap();
    let doc = roxmltree::Document::parse(&text).unwrap();
    doc.descendants().filter(|n| n.has_tag_name("rect")).count()
}

#[test]
fn ten_thousand_peers_are_binned_small_and_not_blank() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("fleet");
    synthetic_run(&dir, 10_000);
    write_report(&dir).unwrap();
    let png = dir.join("charts/peer-bytes.png");
    let size = std::fs::metadata(&png).unwrap().len();
    assert!(size < 200 * 1024, "{}: {size} bytes", png.display());
    check_png(&png);
    let svg = dir.join("charts/peer-bytes.svg");
    check_svg(&svg, "Who carried the swarm: synthetic-fleet (10000 peers)");
    for (group, site) in CLASSES {
        check_svg(&svg, &format!("uploaded: {group} @ {site}"));
    }
    check_svg(&svg, "each bar is 50 peers");
    // One bar per peer would be 10,000 rectangles; 200 bins of at most four
    // classes, plus legend and frame, stay well under 1,000.
    let rects = svg_rects(&svg);
    assert!(rects < 1000, "{rects} rectangles");
    let svg_size = std::fs::metadata(&svg).unwrap().len();
    assert!(svg_size < 200 * 1024, "{}: {svg_size} bytes", svg.display());
    // Every other chart of the run stays small too.
    for stem in ["completion-cdf", "throughput", "population"] {
        let png = dir.join(format!("charts/{stem}.png"));
        let size = std::fs::metadata(&png).unwrap().len();
        assert!(size < 200 * 1024, "{}: {size} bytes", png.display());
    }
}

#[test]
fn at_the_threshold_each_peer_keeps_its_bar() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("fleet");
    synthetic_run(&dir, PEER_BIN_THRESHOLD as u64);
    write_report(&dir).unwrap();
    let svg = dir.join("charts/peer-bytes.svg");
    check_svg(&svg, "ranked by bytes uploaded (rank)");
    assert!(svg_rects(&svg) >= PEER_BIN_THRESHOLD);
    check_png(&dir.join("charts/peer-bytes.png"));
}
