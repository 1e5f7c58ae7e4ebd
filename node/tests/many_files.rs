//! An image with more files than the process may keep open is added, served by
//! the hub and pulled by a client. This test binary lowers its own open-file
//! limit (soft and hard) to 1,024, which the hub and client processes inherit
//! and cannot raise, so 3,000 files are above it. `SWARMHUB_MANY_FILES=100000`
//! runs the full-size case (see README, release build).

mod common;

use std::path::Path;
use std::time::{Duration, Instant};

use common::*;
use rustix::process::{getrlimit, setrlimit, Resource, Rlimit};

const LIMIT: u64 = 1024;

fn file_count() -> usize {
    std::env::var("SWARMHUB_MANY_FILES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(3_000)
}

/// Small files in 100-file folders, each with distinct content.
fn write_tree(root: &Path, n: usize) {
    for i in 0..n {
        let dir = root.join(format!("d{:04}", i / 100));
        if i % 100 == 0 {
            std::fs::create_dir_all(&dir).expect("mkdir");
        }
        let body = format!("file {i} {}\n", "x".repeat(i % 97));
        std::fs::write(dir.join(format!("f{i:06}")), body).expect("write file");
    }
}

#[test]
fn image_with_more_files_than_the_open_file_limit_is_served_and_pulled() {
    let n = file_count();
    let now = getrlimit(Resource::Nofile);
    let lowered = Rlimit {
        current: Some(LIMIT),
        maximum: Some(LIMIT),
    };
    if now.maximum.is_some_and(|m| m < LIMIT) {
        println!(
            "skipped: hard open-file limit {:?} is below {LIMIT}",
            now.maximum
        );
        return;
    }
    setrlimit(Resource::Nofile, lowered).expect("lower the open-file limit");
    assert!(n > LIMIT as usize || std::env::var("SWARMHUB_MANY_FILES").is_ok());

    let tmp = tempfile::tempdir().expect("tempdir");
    let src = tmp.path().join("files");
    write_tree(&src, n);
    let dir = tmp.path().join("hub");
    let started = Instant::now();
    let o = hub_cmd(
        &dir,
        &["image", "add", "many:1", src.to_str().expect("utf8")],
    );
    assert!(o.status.success(), "image add: {}", output_text(&o));
    eprintln!(
        "image add of {n} files: {:.1} s",
        started.elapsed().as_secs_f64()
    );

    let mut hub = Hub::start(&dir, &["--announce-interval", "2"]);
    let list = hub.cmd(&["image", "list"]);
    assert!(
        String::from_utf8_lossy(&list.stdout).contains("many:1"),
        "{}",
        output_text(&list)
    );
    let c = hub.client(tmp.path(), "c");
    let started = Instant::now();
    let mut pull = c.spawn_pull("many:1", &["--fallback-after", "30"]);
    let status = wait_child(&mut pull, Duration::from_secs(900), "pull");
    let out = pull.wait_with_output().expect("pull output");
    assert!(
        status.success(),
        "pull failed: {}\nhub:\n{}",
        output_text(&out),
        hub.stderr()
    );
    eprintln!(
        "pull of {n} files: {:.1} s",
        started.elapsed().as_secs_f64()
    );
    assert!(hub.alive(), "hub died: {}", hub.stderr());
    assert!(
        !hub.stderr().contains("Too many open files"),
        "hub ran out of file handles:\n{}",
        hub.stderr()
    );

    for i in (0..n).step_by(1.max(n / 500)).chain([n - 1]) {
        let rel = format!("d{:04}/f{i:06}", i / 100);
        let got = c.image_file("many", "1", &format!("files/{rel}"));
        assert_eq!(
            sha256_file(&got),
            sha256_file(&src.join(&rel)),
            "{} differs from its source",
            got.display()
        );
    }
    let s = c.summary();
    let total: u64 = (0..n)
        .map(|i| format!("file {i} {}\n", "x".repeat(i % 97)).len() as u64)
        .sum();
    let got = s["from_hub"].as_u64().unwrap_or(0)
        + s["from_peers"].as_u64().unwrap_or(0)
        + s["from_http"].as_u64().unwrap_or(0);
    assert_eq!(got, total, "bytes received do not add up to the image: {s}");
}
