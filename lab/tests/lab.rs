//! A small real lab run (hub + 4 clients, 16 MiB, `scenarios/lab-smoke.toml`)
//! when the machine allows it: root, `ip` and `tc`, and network namespaces.
//! Otherwise the test prints why it is skipped and passes.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use swarmhub_lab::run::sha256_file;

const LAB: &str = env!("CARGO_BIN_EXE_swarmhub-lab");

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("workspace root")
        .to_path_buf()
}

fn text(o: &Output) -> String {
    format!(
        "status {:?}\nstdout:\n{}\nstderr:\n{}",
        o.status,
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

/// Why the lab cannot run here, if it cannot.
fn skip_reason() -> Option<String> {
    if !rustix::process::geteuid().is_root() {
        return Some("not root".into());
    }
    for tool in ["ip", "tc"] {
        let ok = Command::new(tool)
            .arg("-V")
            .output()
            .is_ok_and(|o| o.status.success());
        if !ok {
            return Some(format!("`{tool}` missing (apt-get install iproute2)"));
        }
    }
    let probe = format!("shlabprobe-{}", std::process::id());
    let ok = Command::new("ip")
        .args(["netns", "add", &probe])
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    let _ = Command::new("ip").args(["netns", "del", &probe]).status();
    (!ok).then(|| "cannot create network namespaces here".into())
}

/// The `swarmhub` binary of this target folder, built if missing.
fn swarmhub_bin() -> PathBuf {
    // The test runs from TARGET/PROFILE/deps/; binaries live in TARGET/PROFILE/.
    let exe = std::env::current_exe().expect("test exe");
    let profile_dir = exe.parent().and_then(Path::parent).expect("profile dir");
    let bin = profile_dir.join("swarmhub");
    if bin.is_file() {
        return bin;
    }
    // `cargo test --workspace` builds it (the node's tests need it); alone,
    // build it here, in a folder of its own: this cargo may hold the target lock.
    let target = profile_dir.parent().expect("target dir").join("lab-node");
    let mut build = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()));
    build
        .args(["build", "-p", "swarmhub-node", "--bin", "swarmhub"])
        .env("CARGO_TARGET_DIR", &target)
        .current_dir(root());
    let release = profile_dir.file_name().is_some_and(|n| n == "release");
    if release {
        build.arg("--release");
    }
    let ok = build.status().is_ok_and(|s| s.success());
    let bin = target
        .join(if release { "release" } else { "debug" })
        .join("swarmhub");
    assert!(ok && bin.is_file(), "could not build {}", bin.display());
    bin
}

fn namespaces(prefix: &str) -> Vec<String> {
    let out = Command::new("ip")
        .args(["netns", "list"])
        .output()
        .expect("ip netns list");
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| l.split_whitespace().next())
        .filter(|n| n.starts_with(prefix))
        .map(str::to_string)
        .collect()
}

fn lab_run(bin: &Path, out: &Path, work: &Path, prefix: &str) -> Command {
    let mut c = Command::new(LAB);
    c.arg("run")
        .arg(root().join("scenarios/lab-smoke.toml"))
        .arg("--out")
        .arg(out)
        .arg("--work")
        .arg(work)
        .args(["--keep-work", "--prefix", prefix, "--swarmhub"])
        .arg(bin)
        .stdin(Stdio::null());
    c
}

/// A full run: every client completes with the right bytes, the outputs
/// load with the reports crate, and nothing is left behind.
fn full_run(bin: &Path, tmp: &Path) {
    let (out, work) = (tmp.join("out"), tmp.join("work"));
    let prefix = format!("shlabt{}", std::process::id() % 10_000);
    let o = lab_run(bin, &out, &work, &prefix)
        .output()
        .expect("run swarmhub-lab");
    assert!(o.status.success(), "lab run failed:\n{}", text(&o));
    assert!(
        namespaces(&format!("{prefix}-")).is_empty(),
        "namespaces left behind"
    );

    let run = swarmhub_reports::load::load_run(&out).expect("reports load the lab run");
    assert_eq!(run.peers.len(), 4);
    assert_eq!(run.summary.completed, 4, "{}", text(&o));
    for p in &run.peers {
        let t = p.completion_s().expect("completed");
        assert!(t > 0.0 && t < 300.0, "completion {t}");
        assert_eq!(
            p.bytes_down_hub + p.bytes_down_peers,
            run.summary.image_bytes,
            "client {} payload",
            p.id
        );
    }
    // 16 MiB at a 20 Mbit/s download cannot take less than 6.7 s: the shaper works.
    assert!(run.summary.completion_s.max.expect("max") >= run.summary.bound_s * 0.95);
    assert!(!run.timeline.is_empty());
    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("summary.json")).expect("summary"))
            .expect("summary json");
    assert_eq!(json["engine"], "swarmhub");
    assert_eq!(json["verified"], 4);
    assert!(json["cpu_busy"]
        .as_f64()
        .is_some_and(|b| (0.0..=1.0).contains(&b)));

    let want = sha256_file(&work.join("image.bin")).expect("source image");
    for id in 1..=4 {
        let f = work.join(format!("c{id}/out/image.bin"));
        assert_eq!(
            sha256_file(&f).expect("client file"),
            want,
            "{}",
            f.display()
        );
    }
}

/// `compare` with swarmhub alone: the simulator and the lab side by side,
/// each report drawing the other, and the comparison table.
fn compare_run(bin: &Path, tmp: &Path) {
    let out = tmp.join("cmp");
    let prefix = format!("shlabc{}", std::process::id() % 10_000);
    let o = Command::new(LAB)
        .arg("compare")
        .arg(root().join("scenarios/lab-smoke.toml"))
        .arg("--out")
        .arg(&out)
        .args(["--engines", "swarmhub", "--prefix", &prefix, "--swarmhub"])
        .arg(bin)
        .stdin(Stdio::null())
        .output()
        .expect("run swarmhub-lab compare");
    assert!(o.status.success(), "compare failed:\n{}", text(&o));
    assert!(namespaces(&format!("{prefix}-")).is_empty());
    let stdout = String::from_utf8_lossy(&o.stdout);
    assert!(
        stdout.contains("Simulator against the swarmhub lab run: p50"),
        "{}",
        text(&o)
    );
    let table = std::fs::read_to_string(out.join("comparison.csv")).expect("comparison.csv");
    let runs: Vec<&str> = table
        .lines()
        .skip(1)
        .filter_map(|l| l.split(',').next())
        .collect();
    assert_eq!(runs, ["sim", "swarmhub"], "{table}");
    for (dir, other) in [("sim", "swarmhub lab"), ("swarmhub", "simulator")] {
        let run = swarmhub_reports::load::load_run(&out.join(dir)).expect("load");
        let labels: Vec<&str> = run.overlays.iter().map(|o| o.label.as_str()).collect();
        assert_eq!(labels, [other], "{dir}");
        let html = std::fs::read_to_string(out.join(dir).join("report.html")).expect("report");
        assert!(
            html.contains("Compared runs") && html.contains(other),
            "{dir}"
        );
    }
}

/// SIGTERM in the middle of a run: non-zero exit, every namespace and
/// process gone.
fn interrupted_run(bin: &Path, tmp: &Path) {
    let prefix = format!("shlabi{}", std::process::id() % 10_000);
    let mut child = lab_run(bin, &tmp.join("out-int"), &tmp.join("work-int"), &prefix)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn lab");
    let hub_ns = format!("{prefix}-h0");
    let start = Instant::now();
    // Wait until the hub's namespace has a process in it (the hub serves).
    loop {
        let pids = Command::new("ip")
            .args(["netns", "pids", &hub_ns])
            .output()
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
            .unwrap_or_default();
        if !pids.is_empty() {
            break;
        }
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "hub never started"
        );
        assert!(child.try_wait().expect("wait").is_none(), "lab ended early");
        std::thread::sleep(Duration::from_millis(50));
    }
    std::thread::sleep(Duration::from_millis(500));
    swarmhub_lab::procs::kill_pid(child.id() as i32, false);
    let status = loop {
        if let Some(s) = child.try_wait().expect("wait") {
            break s;
        }
        assert!(
            start.elapsed() < Duration::from_secs(120),
            "lab ignored SIGTERM"
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(!status.success(), "an interrupted run must fail");
    assert!(
        namespaces(&format!("{prefix}-")).is_empty(),
        "namespaces left after SIGTERM"
    );
}

#[test]
fn lab_runs_a_small_swarm_and_cleans_up() {
    if let Some(why) = skip_reason() {
        eprintln!("SKIPPED lab_runs_a_small_swarm_and_cleans_up: {why}");
        return;
    }
    let bin = swarmhub_bin();
    let tmp = tempfile::tempdir().expect("tempdir");
    full_run(&bin, tmp.path());
    compare_run(&bin, tmp.path());
    interrupted_run(&bin, tmp.path());
}

#[test]
fn lab_refuses_to_run_without_root() {
    // As root, drop privileges with setpriv (util-linux) to see the refusal.
    let mut c = if rustix::process::geteuid().is_root() {
        if Command::new("setpriv").arg("--version").output().is_err() {
            eprintln!("SKIPPED lab_refuses_to_run_without_root: setpriv missing");
            return;
        }
        let mut c = Command::new("setpriv");
        c.args(["--reuid=65534", "--regid=65534", "--clear-groups", LAB]);
        c
    } else {
        Command::new(LAB)
    };
    let dir = tempfile::tempdir().expect("tempdir");
    let o = c
        .arg("run")
        .arg(root().join("scenarios/lab-smoke.toml"))
        .arg("--out")
        .arg(dir.path().join("out"))
        .args(["--swarmhub", "/bin/true"])
        .output()
        .expect("run");
    assert!(!o.status.success(), "{}", text(&o));
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("needs root"),
        "{}",
        text(&o)
    );
}
