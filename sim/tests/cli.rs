//! The `swarmhub-sim` binary end to end: run, bound, sweep, and bad input.

use std::process::Command;

const TINY: &str = r#"
name = "tiny"
[image]
size = "4 MiB"
[hub]
upload = "100 Mbit/s"
[[group]]
name = "p"
count = 4
upload = "50 Mbit/s"
download = "100 Mbit/s"
"#;

fn sim() -> Command {
    Command::new(env!("CARGO_BIN_EXE_swarmhub-sim"))
}

#[test]
fn run_writes_the_three_files_with_the_schema() {
    let dir = tempfile::tempdir().unwrap();
    let scenario = dir.path().join("tiny.toml");
    std::fs::write(&scenario, TINY).unwrap();
    let out = dir.path().join("out");
    let o = sim()
        .arg("run")
        .arg(&scenario)
        .arg("--out")
        .arg(&out)
        .arg("--seed")
        .arg("3")
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let peers = std::fs::read_to_string(out.join("peers.csv")).unwrap();
    assert!(peers.starts_with(
        "id,group,site,join_s,complete_s,leave_s,bytes_down_hub,bytes_down_peers,bytes_up,bytes_wasted\n"
    ));
    assert_eq!(peers.lines().count(), 5);
    let timeline = std::fs::read_to_string(out.join("timeline.csv")).unwrap();
    assert!(timeline.starts_with("t_s,leechers,seeds,completed,throughput_bps,hub_egress_bps"));
    let summary: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.join("summary.json")).unwrap()).unwrap();
    assert_eq!(summary["seed"], 3);
    assert_eq!(summary["completed"], 4);
    for key in [
        "scenario_hash",
        "bound_s",
        "ratio_to_bound",
        "hub_copies",
        "events",
        "wall_s",
        "events_per_s",
        "wasted_bytes",
    ] {
        assert!(!summary[key].is_null(), "summary lacks {key}");
    }
    assert!(summary["completion_s"]["p99"].as_f64().unwrap() > 0.0);
}

#[test]
fn bound_prints_the_kumar_ross_figure() {
    let dir = tempfile::tempdir().unwrap();
    let scenario = dir.path().join("tiny.toml");
    std::fs::write(&scenario, TINY).unwrap();
    let o = sim().arg("bound").arg(&scenario).output().unwrap();
    assert!(o.status.success());
    let text = String::from_utf8(o.stdout).unwrap();
    // max(F/u_s = 0.3355, F/d = 0.3355, N F/(u_s + 4 u) = 4*4MiB/(12.5+25 MB/s) = 0.447)
    assert!(text.contains("bound_s             0.447"), "{text}");
}

#[test]
fn sweep_runs_every_point() {
    let dir = tempfile::tempdir().unwrap();
    let scenario = dir.path().join("tiny.toml");
    std::fs::write(&scenario, TINY).unwrap();
    let out = dir.path().join("sweep");
    let o = sim()
        .args(["sweep"])
        .arg(&scenario)
        .args([
            "--vary",
            "group.0.count=2,6",
            "--vary",
            "protocol.p2p=true,false",
            "--out",
        ])
        .arg(&out)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let csv = std::fs::read_to_string(out.join("sweep.csv")).unwrap();
    assert!(
        csv.starts_with("group.0.count,protocol.p2p,point,"),
        "{csv}"
    );
    assert_eq!(csv.lines().count(), 5, "{csv}");
    assert!(out.join("point-003").join("summary.json").exists());
}

#[test]
fn bad_input_fails_with_a_clear_message() {
    let dir = tempfile::tempdir().unwrap();
    let scenario = dir.path().join("bad.toml");
    std::fs::write(&scenario, TINY.replace("count = 4", "count = 4\nspeed = 9")).unwrap();
    let o = sim().arg("run").arg(&scenario).output().unwrap();
    assert!(!o.status.success());
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("bad.toml") && err.contains("speed"), "{err}");
    let o = sim()
        .arg("run")
        .arg(dir.path().join("missing.toml"))
        .output()
        .unwrap();
    assert!(!o.status.success());
    assert!(String::from_utf8_lossy(&o.stderr).contains("cannot read scenario"));
    let o = sim()
        .arg("sweep")
        .arg(&scenario)
        .args(["--vary", "nokey", "--out", "x"])
        .output()
        .unwrap();
    assert!(!o.status.success());
    assert!(String::from_utf8_lossy(&o.stderr).contains("KEY=V1,V2"));
}
