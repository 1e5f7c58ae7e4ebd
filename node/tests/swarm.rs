//! Real processes sharing an image: many clients at once, seeding after exit,
//! resume after SIGKILL.

mod common;

use std::time::Duration;

use common::*;

/// A hub (upload limited so that clients must trade) and 6 clients pulling a
/// 64 MiB image at once: every copy matches and the hub sent less than 3 copies.
#[test]
fn six_clients_pull_at_once_and_share() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let size = 64 * MIB;
    let dir = Hub::prepare(tmp.path(), "big:1", size);
    let hub = Hub::start(
        &dir,
        &["--announce-interval", "3", "--max-upload-rate", "12M"],
    );
    let clients: Vec<Client> = (0..6)
        .map(|i| hub.client(tmp.path(), &format!("c{i}")))
        .collect();
    let mut children: Vec<_> = clients
        .iter()
        .map(|c| c.spawn_pull("big:1", &["--fallback-after", "120"]))
        .collect();
    for (i, child) in children.iter_mut().enumerate() {
        let status = wait_child(child, Duration::from_secs(300), "pull");
        assert!(status.success(), "client {i} failed: {status:?}");
    }
    let want = sha256_file(&tmp.path().join("src.bin"));
    let mut from_hub = 0;
    let mut from_peers = 0;
    for c in &clients {
        assert_eq!(sha256_file(&c.image_file("big", "1", "src.bin")), want);
        let s = c.summary();
        assert_eq!(s["from_http"], 0, "no HTTP fallback expected: {s}");
        from_hub += s["from_hub"].as_u64().expect("from_hub");
        from_peers += s["from_peers"].as_u64().expect("from_peers");
    }
    assert!(
        from_hub < 3 * size,
        "hub sent {from_hub} bytes, over 3x the image"
    );
    assert!(from_peers > 0, "clients never uploaded to each other");
    assert_eq!(from_hub + from_peers, 6 * size);
}

/// A client that keeps seeding (`--wait-after-exit`) serves a newcomer after
/// the hub seeder is switched off.
#[test]
fn seeding_client_serves_after_hub_seeder_stops() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let size = 16 * MIB;
    let dir = Hub::prepare(tmp.path(), "app:2", size);
    let hub = Hub::start(&dir, &["--announce-interval", "2"]);
    let a = hub.client(tmp.path(), "a");
    let mut seeder = a.spawn_pull("app:2", &["--wait-after-exit"]);
    let done = a.image_file("app", "2", "src.bin");
    wait_until("first client to complete", Duration::from_secs(120), || {
        done.exists()
    });
    let o = hub.cmd(&["config", "--disable=seed"]);
    assert!(
        String::from_utf8_lossy(&o.stdout).contains("Hub seeder: Disabled"),
        "{}",
        output_text(&o)
    );
    std::thread::sleep(Duration::from_secs(2));

    let b = hub.client(tmp.path(), "b");
    let o = b.pull("app:2", &["--fallback-after", "60"]);
    assert!(o.status.success(), "{}", output_text(&o));
    let s = b.summary();
    assert_eq!(s["from_peers"].as_u64(), Some(size), "{s}");
    assert_eq!(s["from_hub"], 0, "{s}");
    assert_eq!(s["from_http"], 0, "{s}");
    assert_eq!(
        sha256_file(&b.image_file("app", "2", "src.bin")),
        sha256_file(&tmp.path().join("src.bin"))
    );

    signal(&seeder, "-INT");
    let status = wait_child(&mut seeder, Duration::from_secs(20), "seeding client");
    assert!(status.success(), "seeding client exit: {status:?}");
}

/// SIGKILL mid-download, then pull again: what was verified is kept, the rest
/// is fetched, and nothing looks complete in between.
#[test]
fn killed_pull_resumes_and_completes() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let size = 32 * MIB;
    let dir = Hub::prepare(tmp.path(), "res:1", size);
    let hub = Hub::start(&dir, &[]);
    let c = hub.client(tmp.path(), "c");
    let mut child = c.spawn_pull("res:1", &["--max-download-rate", "4M"]);
    std::thread::sleep(Duration::from_secs(4));
    assert!(
        child.try_wait().expect("try_wait").is_none(),
        "pull ended too early for the test"
    );
    child.kill().expect("SIGKILL");
    let _ = child.wait();
    assert!(
        !c.image_file("res", "1", "src.bin").exists(),
        "a half image is visible in the store"
    );
    let listing = c.run(&["images"]);
    assert!(String::from_utf8_lossy(&listing.stdout).contains("no local images"));

    let o = c.pull("res:1", &[]);
    assert!(o.status.success(), "{}", output_text(&o));
    let s = c.summary();
    let resumed = s["resumed_bytes"].as_u64().expect("resumed");
    assert!(resumed > 0 && resumed < size, "resumed {resumed} of {size}");
    assert_eq!(
        sha256_file(&c.image_file("res", "1", "src.bin")),
        sha256_file(&tmp.path().join("src.bin"))
    );
}

/// `service` seeds what a client pulled earlier, after the pull has exited.
#[test]
fn service_seeds_local_images() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let size = 8 * MIB;
    let dir = Hub::prepare(tmp.path(), "svc:1", size);
    let hub = Hub::start(&dir, &["--announce-interval", "2"]);
    let a = hub.client(tmp.path(), "a");
    let o = a.pull("svc:1", &[]);
    assert!(o.status.success(), "{}", output_text(&o));
    let mut service = a
        .command(&["service", "--peer-ports", "0"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("spawn service");
    let pid_file = a.home.join("run/service.pid");
    wait_until("service to start", Duration::from_secs(30), || {
        pid_file.exists()
    });
    let o = hub.cmd(&["config", "--disable=seed"]);
    assert!(o.status.success());
    std::thread::sleep(Duration::from_secs(2));

    let b = hub.client(tmp.path(), "b");
    let o = b.pull("svc:1", &["--fallback-after", "60"]);
    assert!(o.status.success(), "{}", output_text(&o));
    assert_eq!(b.summary()["from_peers"].as_u64(), Some(size));
    signal(&service, "-TERM");
    let status = wait_child(&mut service, Duration::from_secs(20), "service");
    assert!(status.success(), "service exit: {status:?}");
    assert!(!pid_file.exists(), "service left its pid file behind");
}
