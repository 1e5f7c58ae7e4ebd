//! Faults and rough edges a new user meets: a hub outage under a hub-only pull,
//! full disks during a download and an export, exports that must not share the
//! seeding copy, `--dir` after the hub subcommand, paths that name no file, and
//! the announce URL in the metainfo the hub serves.

mod common;

use std::time::Duration;

use common::*;

/// `--dir` works after the hub subcommand too, like `--home`; a path ending in
/// `..` is refused with an error that names it and does not blame UTF-8.
#[test]
fn hub_dir_after_the_subcommand_and_paths_naming_no_file() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path().join("hub");
    let src = tmp.path().join("files");
    std::fs::create_dir_all(src.join("sub")).expect("mkdir");
    write_image(&src.join("sub/a.bin"), 100_000, 1);
    let dir_s = dir.to_str().expect("utf8");
    let o = std::process::Command::new(BIN)
        .args(["hub", "image", "add", "app:1"])
        .arg(src.join("sub"))
        .args(["--dir", dir_s])
        .output()
        .expect("run");
    assert!(o.status.success(), "{}", output_text(&o));
    let o = std::process::Command::new(BIN)
        .args(["hub", "image", "list", "--dir", dir_s])
        .output()
        .expect("run");
    assert!(o.status.success(), "{}", output_text(&o));
    assert!(String::from_utf8_lossy(&o.stdout).contains("app:1"));

    let dotdot = src.join("sub/..");
    let o = hub_cmd(
        &dir,
        &["image", "add", "app:2", dotdot.to_str().expect("utf8")],
    );
    assert!(!o.status.success());
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains(dotdot.to_str().expect("utf8")), "{err}");
    assert!(!err.contains("UTF-8"), "{err}");
    assert!(err.contains("names no file or folder"), "{err}");
}

/// The metainfo from the API carries the hub's announce URL (the address the
/// caller used), so a stock client can use the file as it is.
#[test]
fn served_metainfo_names_the_hub_announce_url() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = Hub::prepare(tmp.path(), "app:1", MIB);
    let hub = Hub::start(&dir, &[]);
    let c = hub.client(tmp.path(), "c");
    let (status, body) = http_get(&hub, Some(&c), "/api/v1/images/app:1/metainfo", &[]);
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
    let meta = swarmhub_core::metainfo::Metainfo::from_bytes(&body).expect("metainfo");
    assert_eq!(meta.announce, Some(format!("{}/announce", hub.api)));
}

/// A client whose only source is the hub (peer-to-peer off) keeps retrying
/// through a hub restart and completes with the right bytes.
#[test]
fn hub_only_pull_survives_a_hub_restart() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = Hub::prepare(tmp.path(), "app:1", 12 * MIB);
    let listen = format!("127.0.0.1:{}", free_port());
    let mut hub = Hub::start_at(&dir, &listen, &[]);
    let c = hub.client(tmp.path(), "c");
    let o = c.run(&["config", "--disable=p2pdownload"]);
    assert!(o.status.success(), "{}", output_text(&o));
    // 12 MiB at 2 MiB/s: the hub goes away about a third of the way in.
    let mut pull = c.spawn_pull("app:1", &["--max-download-rate", "2M"]);
    std::thread::sleep(Duration::from_secs(2));
    assert!(
        pull.try_wait().expect("try_wait").is_none(),
        "pull ended early"
    );
    hub.stop();
    std::thread::sleep(Duration::from_secs(4));
    assert!(
        pull.try_wait().expect("try_wait").is_none(),
        "the pull gave up during the outage"
    );
    let _hub = Hub::start_at(&dir, &listen, &[]);
    let status = wait_child(&mut pull, Duration::from_secs(120), "pull after restart");
    let out = pull.wait_with_output().expect("output");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(status.success(), "pull failed: {err}");
    assert!(err.contains("retrying with backoff"), "{err}");
    assert!(err.contains("answers again after"), "{err}");
    assert_eq!(
        sha256_file(&c.image_file("app", "1", "src.bin")),
        sha256_file(&tmp.path().join("src.bin"))
    );
}

/// A pull that starts while the hub is away (restarting, or a flash crowd
/// at its door) waits for it with backoff instead of failing on its first
/// API call, and completes once the hub is back.
#[test]
fn pull_started_while_the_hub_is_down_waits_for_it() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = Hub::prepare(tmp.path(), "app:1", 2 * MIB);
    let listen = format!("127.0.0.1:{}", free_port());
    let mut hub = Hub::start_at(&dir, &listen, &[]);
    let c = hub.client(tmp.path(), "c");
    hub.stop();
    let mut pull = c.spawn_pull("app:1", &[]);
    std::thread::sleep(Duration::from_secs(3));
    assert!(
        pull.try_wait().expect("try_wait").is_none(),
        "the pull gave up while the hub was down"
    );
    let _hub = Hub::start_at(&dir, &listen, &[]);
    let status = wait_child(
        &mut pull,
        Duration::from_secs(120),
        "pull after the hub came up",
    );
    let out = pull.wait_with_output().expect("output");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(status.success(), "pull failed: {err}");
    assert!(err.contains("retrying with backoff"), "{err}");
    assert_eq!(
        sha256_file(&c.image_file("app", "1", "src.bin")),
        sha256_file(&tmp.path().join("src.bin"))
    );
}

/// `pull --out` places copies: editing one leaves the seeding copy intact.
#[test]
fn export_is_a_copy_not_a_link_to_the_seeding_file() {
    use std::os::unix::fs::MetadataExt;
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = Hub::prepare(tmp.path(), "app:1", 3 * MIB);
    let hub = Hub::start(&dir, &[]);
    let c = hub.client(tmp.path(), "c");
    let out = tmp.path().join("out");
    let o = c.pull("app:1", &["--out", out.to_str().expect("utf8")]);
    assert!(o.status.success(), "{}", output_text(&o));
    let want = sha256_file(&tmp.path().join("src.bin"));
    let (exported, seeded) = (out.join("src.bin"), c.image_file("app", "1", "src.bin"));
    assert_eq!(sha256_file(&exported), want);
    let ino = |p: &std::path::Path| std::fs::metadata(p).expect("stat").ino();
    assert_ne!(ino(&exported), ino(&seeded), "export is a hard link");
    std::fs::write(&exported, b"edited").expect("edit export");
    assert_eq!(
        sha256_file(&seeded),
        want,
        "editing the export changed the store"
    );
    // Up to date: exporting again replaces the edited file, leaving no temporary.
    let o = c.pull("app:1", &["--out", out.to_str().expect("utf8")]);
    assert!(o.status.success(), "{}", output_text(&o));
    assert_eq!(sha256_file(&exported), want);
    let names: Vec<String> = std::fs::read_dir(&out)
        .expect("ls out")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(names, ["src.bin"]);
}

/// Full disks: a download names the file it could not write, and an export
/// leaves neither a truncated file under the real name nor its temporary.
#[test]
fn full_disks_name_the_path_and_leave_no_truncated_export() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let small = match Tmpfs::mount(&tmp.path().join("small"), "6m") {
        Ok(t) => t,
        Err(why) => {
            eprintln!("skipped full_disks_name_the_path_and_leave_no_truncated_export: {why}");
            return;
        }
    };
    let dir = Hub::prepare(tmp.path(), "app:1", 12 * MIB);
    let hub = Hub::start(&dir, &[]);

    // The home is on the small disk: the download itself runs out of space.
    let c = hub.client(&small.path, "c");
    let o = c.pull("app:1", &[]);
    assert!(
        !o.status.success(),
        "pull fit in 6 MiB: {}",
        output_text(&o)
    );
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("No space left on device"), "{err}");
    assert!(
        err.contains(small.path.to_str().expect("utf8")),
        "no path: {err}"
    );
    drop(c);
    let _ = std::fs::remove_dir_all(small.path.join("c"));

    // The home has room; --out is on the small disk.
    let d = hub.client(tmp.path(), "d");
    let out = small.path.join("out");
    let o = d.pull("app:1", &["--out", out.to_str().expect("utf8")]);
    assert!(
        !o.status.success(),
        "export fit in 6 MiB: {}",
        output_text(&o)
    );
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("No space left on device"), "{err}");
    assert!(
        err.contains(out.join("src.bin").to_str().expect("utf8")),
        "{err}"
    );
    let left: Vec<_> = std::fs::read_dir(&out)
        .expect("ls out")
        .map(|e| e.expect("entry").file_name())
        .collect();
    assert!(left.is_empty(), "export left {left:?}");
    // The image itself is complete in the store.
    assert_eq!(
        sha256_file(&d.image_file("app", "1", "src.bin")),
        sha256_file(&tmp.path().join("src.bin"))
    );
}
