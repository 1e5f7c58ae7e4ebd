//! Stock BitTorrent clients against the hub with peer TLS off (the interop
//! mode): aria2c with an enrolled client certificate through the hub's own
//! tracker, qbittorrent-nox (libtorrent) from the hub seeder, and a swarmhub
//! client trading pieces with aria2c. Each test skips, saying why, when its
//! client is not installed (`.ci/run` installs both when it runs as root).

mod common;

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::*;

fn installed(program: &str) -> bool {
    Command::new("sh")
        .args(["-c", &format!("command -v {program}")])
        .output()
        .is_ok_and(|o| o.status.success())
}

/// A hub with one image, peer TLS off, started.
fn interop_hub(root: &Path, image: &str, len: u64, extra: &[&str]) -> Hub {
    let dir = Hub::prepare(root, image, len);
    let o = hub_cmd(&dir, &["config", "--peer-tls=off"]);
    assert!(o.status.success(), "{}", output_text(&o));
    Hub::start(&dir, extra)
}

/// The image's `.torrent` as the hub serves it to `c`, written under `root`.
fn torrent_file(hub: &Hub, c: &Client, image: &str, root: &Path) -> (PathBuf, String) {
    let (status, body) = http_get(
        hub,
        Some(c),
        &format!("/api/v1/images/{image}/metainfo"),
        &[],
    );
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
    let meta = swarmhub_core::metainfo::Metainfo::from_bytes(&body).expect("metainfo");
    let hash = swarmhub_node::util::hex(&meta.info_hash.0);
    let path = root.join(format!("{hash}.torrent"));
    std::fs::write(&path, &body).expect("write torrent");
    (path, hash)
}

/// Every regular file under `dir` called `name`.
fn find_file(dir: &Path, name: &str) -> Option<PathBuf> {
    for entry in std::fs::read_dir(dir).ok()? {
        let path = entry.ok()?.path();
        if path.is_dir() {
            if let Some(p) = find_file(&path, name) {
                return Some(p);
            }
        } else if path.file_name().is_some_and(|n| n == name) {
            return Some(path);
        }
    }
    None
}

/// Wait until a file `name` under `dir` has the SHA-256 `want`.
fn wait_for_copy(dir: &Path, name: &str, want: [u8; 32], limit: Duration, who: &mut Child) {
    let start = Instant::now();
    loop {
        if find_file(dir, name).is_some_and(|p| sha256_file(&p) == want) {
            return;
        }
        if let Some(status) = who.try_wait().expect("try_wait") {
            panic!("the stock client exited ({status}) without a correct copy");
        }
        assert!(
            start.elapsed() < limit,
            "no correct copy of {name} under {} after {limit:?}",
            dir.display()
        );
        std::thread::sleep(Duration::from_millis(250));
    }
}

/// aria2c for `torrent`, saving under `save`, presenting `c`'s certificate
/// to the hub's tracker and verifying the hub's certificate against the hub
/// CA (`ca.crt` of `hub`): the hub's certificate names 127.0.0.1 among its
/// default host names, so no `--check-certificate=false`.
fn aria2c(hub: &Hub, c: &Client, torrent: &Path, save: &Path, port: u16, extra: &[&str]) -> Child {
    let tls = c.home.join("tls");
    let log = std::fs::File::create(save.with_extension("aria2.log")).expect("log");
    Command::new("aria2c")
        .args([
            "--enable-dht=false",
            "--enable-dht6=false",
            "--bt-enable-lpd=false",
            "--enable-peer-exchange=false",
            "--bt-require-crypto=false",
            "--file-allocation=none",
            "--disable-ipv6=true",
            "--console-log-level=warn",
            "--summary-interval=0",
            "--bt-stop-timeout=120",
        ])
        .arg(format!("--listen-port={port}"))
        .arg(format!(
            "--ca-certificate={}",
            hub.dir.join("ca/ca.crt").display()
        ))
        .arg(format!("--certificate={}", tls.join("node.crt").display()))
        .arg(format!("--private-key={}", tls.join("node.key").display()))
        .arg(format!("--dir={}", save.display()))
        .args(extra)
        .arg(torrent)
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .expect("spawn aria2c")
}

fn aria2_log(save: &Path) -> String {
    std::fs::read_to_string(save.with_extension("aria2.log")).unwrap_or_default()
}

/// aria2c, holding an enrolled client certificate, finds the hub seeder
/// through the hub's tracker (HTTPS announce) and downloads the image. The
/// image has 16 pieces, so aria2c sends bitfields where others send haves.
#[test]
fn aria2c_downloads_from_the_hub_through_its_tracker() {
    if !installed("aria2c") {
        eprintln!("skipped aria2c_downloads_from_the_hub_through_its_tracker: aria2c not installed (apt-get install aria2)");
        return;
    }
    let tmp = tempfile::tempdir().expect("tempdir");
    let hub = interop_hub(tmp.path(), "app:1", 4 * MIB, &[]);
    let c = hub.client(tmp.path(), "aria");
    let (torrent, _) = torrent_file(&hub, &c, "app:1", tmp.path());
    let save = tmp.path().join("aria-save");
    let mut aria = aria2c(&hub, &c, &torrent, &save, free_port(), &["--seed-time=0"]);
    let status = wait_child(&mut aria, Duration::from_secs(180), "aria2c");
    assert!(status.success(), "aria2c: {status}\n{}", aria2_log(&save));
    let got = find_file(&save, "src.bin").expect("aria2c saved src.bin");
    assert_eq!(sha256_file(&got), sha256_file(&tmp.path().join("src.bin")));
}

/// Reach the qBittorrent Web API on 127.0.0.1:`port` (no login: local
/// clients are trusted by the profile's config): (status, body).
fn qbt_api(port: u16, path: &str, form: Option<&str>) -> Option<(u16, String)> {
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(10))).ok()?;
    let req = match form {
        Some(body) => format!(
            "POST {path} HTTP/1.0\r\nHost: 127.0.0.1:{port}\r\n\
             Content-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        ),
        None => format!("GET {path} HTTP/1.0\r\nHost: 127.0.0.1:{port}\r\n\r\n"),
    };
    s.write_all(req.as_bytes()).ok()?;
    let mut resp = String::new();
    s.read_to_string(&mut resp).ok()?;
    let status = resp.split_whitespace().nth(1)?.parse().ok()?;
    let body = resp
        .split_once("\r\n\r\n")
        .map_or("", |(_, b)| b)
        .to_owned();
    Some((status, body))
}

fn write_qbt_conf(profile: &Path, peer_port: u16, webui_port: u16) {
    let dir = profile.join("qBittorrent/config");
    std::fs::create_dir_all(&dir).expect("mkdir");
    let conf = format!(
        "[LegalNotice]\nAccepted=true\n\n\
         [BitTorrent]\n\
         Session\\DHTEnabled=false\nSession\\PeXEnabled=false\nSession\\LSDEnabled=false\n\
         Session\\Encryption=2\nSession\\BTProtocol=TCP\nSession\\Port={peer_port}\n\
         Session\\QueueingSystemEnabled=false\nSession\\AnonymousModeEnabled=false\n\n\
         [Preferences]\nWebUI\\Port={webui_port}\nWebUI\\LocalHostAuth=false\n\
         WebUI\\HostHeaderValidation=false\nWebUI\\CSRFProtection=false\n\
         General\\UseRandomPort=false\nConnection\\ResolvePeerCountries=false\n"
    );
    std::fs::write(dir.join("qBittorrent.conf"), conf).expect("write conf");
}

/// qbittorrent-nox (libtorrent) downloads the image from the super-seeding
/// hub seeder, which it would drop if the hub called itself upload-only. It
/// has no client certificate for the tracker, so it is told the seeder's
/// address through its Web API.
#[test]
fn qbittorrent_downloads_from_the_hub_seeder() {
    if !installed("qbittorrent-nox") {
        eprintln!("skipped qbittorrent_downloads_from_the_hub_seeder: qbittorrent-nox not installed (apt-get install qbittorrent-nox)");
        return;
    }
    let tmp = tempfile::tempdir().expect("tempdir");
    let hub = interop_hub(tmp.path(), "app:1", 8 * MIB, &[]);
    let c = hub.client(tmp.path(), "q");
    let (torrent, hash) = torrent_file(&hub, &c, "app:1", tmp.path());
    let profile = tmp.path().join("qbt");
    let save = tmp.path().join("qbt-save");
    let webui = free_port();
    write_qbt_conf(&profile, free_port(), webui);
    let log = std::fs::File::create(tmp.path().join("qbt.log")).expect("log");
    let mut qbt = Command::new("qbittorrent-nox")
        .arg(format!("--profile={}", profile.display()))
        .arg(format!("--webui-port={webui}"))
        .arg(format!("--save-path={}", save.display()))
        .arg(&torrent)
        .env("HOME", &profile)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .expect("spawn qbittorrent-nox");
    struct Kill<'a>(&'a mut Child);
    impl Drop for Kill<'_> {
        fn drop(&mut self) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
    let qbt = Kill(&mut qbt);
    let peers = format!("hashes={hash}&peers={}", hub.seed_addr);
    let want = sha256_file(&tmp.path().join("src.bin"));
    let start = Instant::now();
    let mut added = false;
    loop {
        if !added {
            // The torrent is known once the Web API lists it.
            let listed = qbt_api(webui, &format!("/api/v2/torrents/info?hashes={hash}"), None)
                .is_some_and(|(s, b)| s == 200 && b.contains(&hash));
            if listed {
                let r = qbt_api(webui, "/api/v2/torrents/addPeers", Some(&peers));
                added = r.is_some_and(|(s, _)| s == 200);
            }
        }
        if find_file(&save, "src.bin").is_some_and(|p| sha256_file(&p) == want) {
            break;
        }
        if let Some(status) = qbt.0.try_wait().expect("try_wait") {
            panic!(
                "qbittorrent-nox exited ({status}): {}",
                std::fs::read_to_string(tmp.path().join("qbt.log")).unwrap_or_default()
            );
        }
        assert!(
            start.elapsed() < Duration::from_secs(180),
            "qbittorrent-nox has no correct copy after 180 s (peer added: {added}); hub: {}",
            hub.stderr()
        );
        std::thread::sleep(Duration::from_millis(500));
    }
}

/// A swarmhub client and aria2c pull at once from a slow hub seeder and
/// trade: the swarmhub client both receives from and sends to aria2c, and
/// both copies are right.
#[test]
fn swarmhub_client_and_aria2c_trade_pieces() {
    if !installed("aria2c") {
        eprintln!("skipped swarmhub_client_and_aria2c_trade_pieces: aria2c not installed (apt-get install aria2)");
        return;
    }
    let tmp = tempfile::tempdir().expect("tempdir");
    let hub = interop_hub(
        tmp.path(),
        "app:1",
        16 * MIB,
        &["--announce-interval", "2", "--max-upload-rate", "2M"],
    );
    let ours = hub.client(tmp.path(), "ours");
    let theirs = hub.client(tmp.path(), "aria");
    let (torrent, _) = torrent_file(&hub, &theirs, "app:1", tmp.path());
    let save = tmp.path().join("aria-save");
    // aria2c keeps seeding (no --seed-time) until it is killed.
    let mut aria = aria2c(
        &hub,
        &theirs,
        &torrent,
        &save,
        free_port(),
        &["--seed-ratio=0.0"],
    );
    struct Kill<'a>(&'a mut Child);
    impl Drop for Kill<'_> {
        fn drop(&mut self) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
    let aria = Kill(&mut aria);
    let mut pull = ours.spawn_pull("app:1", &["--fallback-after", "300"]);
    let status = wait_child(&mut pull, Duration::from_secs(240), "swarmhub pull");
    let out = pull.wait_with_output().expect("output");
    assert!(
        status.success(),
        "pull: {}\naria2c: {}",
        String::from_utf8_lossy(&out.stderr),
        aria2_log(&save)
    );
    let want = sha256_file(&tmp.path().join("src.bin"));
    assert_eq!(sha256_file(&ours.image_file("app", "1", "src.bin")), want);
    wait_for_copy(&save, "src.bin", want, Duration::from_secs(120), aria.0);
    let s = ours.summary();
    let from_peers = s["from_peers"].as_u64().expect("from_peers");
    let uploaded = s["uploaded"].as_u64().expect("uploaded");
    eprintln!("swarmhub client beside aria2c: {s}");
    // aria2c is the only other peer: what came from peers came from it, and
    // what went up went to it.
    assert!(from_peers > 0, "nothing from aria2c: {s}");
    assert!(uploaded > 0, "nothing to aria2c: {s}");
}
