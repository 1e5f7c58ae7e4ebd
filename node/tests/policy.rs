//! Real processes: authentication, P2P switches, HTTP fallback, bad input, restart.

mod common;

use std::io::{Read, Write};
use std::time::Duration;

use common::*;
use swarmhub_core::tracker::http::{announce_query, decode_announce_response};
use swarmhub_core::tracker::{AnnounceEvent, AnnounceRequest};
use swarmhub_core::Id20;

fn secret_of(c: &Client) -> String {
    let db = swarmhub_node::db::Db::open(&c.home.join("client.db")).expect("client db");
    db.setting("secret").expect("read").expect("secret stored")
}

fn announce_path(info_hash: Id20, key: Option<&str>) -> String {
    announce_path_as(info_hash, key, Id20::new(*b"-TEST00-abcdefghijkl"))
}

fn announce_path_as(info_hash: Id20, key: Option<&str>, peer_id: Id20) -> String {
    let req = AnnounceRequest {
        info_hash,
        peer_id,
        ip: std::net::Ipv4Addr::UNSPECIFIED.into(),
        port: 7777,
        uploaded: 0,
        downloaded: 0,
        left: 1,
        event: AnnounceEvent::Started,
        numwant: Some(50),
        compact: true,
    };
    let mut p = format!("/announce?{}", announce_query(&req));
    if let Some(k) = key {
        p.push_str(&format!("&key={k}"));
    }
    p
}

fn info_hash_of(c: &Client, image: &str) -> Id20 {
    let db = swarmhub_node::db::Db::open(&c.home.join("client.db")).expect("client db");
    let row = db.image(image).expect("read").expect("image row");
    let raw = swarmhub_node::util::unhex(&row.info_hash).expect("hex");
    Id20::new(raw.try_into().expect("20 bytes"))
}

#[test]
fn unenrolled_and_revoked_clients_are_refused() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = Hub::prepare(tmp.path(), "auth:1", 4 * MIB);
    let hub = Hub::start(&dir, &["--announce-interval", "2"]);
    let a = hub.client(tmp.path(), "a");
    let c = hub.client(tmp.path(), "c");

    // Unenrolled: no credentials, or made-up ones.
    let (status, _) = http_get(&hub, None, "/api/v1/info", &[]);
    assert_eq!(status, 401);
    let (status, _) = http_get(
        &hub,
        None,
        "/api/v1/info",
        &[("Authorization", "Bearer 00ff")],
    );
    assert_eq!(status, 401);
    // C's certificate authenticates C; a secret that is not C's spoils it.
    let (status, body) = http_get(&hub, Some(&c), "/api/v1/info", &[]);
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
    let (status, _) = http_get(
        &hub,
        Some(&c),
        "/api/v1/info",
        &[("Authorization", "Bearer 00ff")],
    );
    assert_eq!(status, 401);
    let o = c.pull("auth:1", &[]);
    assert!(o.status.success(), "{}", output_text(&o));
    let hash = info_hash_of(&c, "auth:1");
    for key in [None, Some("deadbeef")] {
        let (status, body) = http_get(&hub, None, &announce_path(hash, key), &[]);
        assert_eq!(status, 401, "{}", String::from_utf8_lossy(&body));
        assert!(decode_announce_response(&body).is_err());
    }

    // A seeds; the tracker lists it to C, until A is revoked.
    let mut seeder = a.spawn_pull("auth:1", &["--wait-after-exit"]);
    wait_until("a to complete", Duration::from_secs(60), || {
        a.image_file("auth", "1", "src.bin").exists()
    });
    std::thread::sleep(Duration::from_millis(500));
    let seed_port = seed_port(&hub);
    let others = |key: &str| -> usize {
        let (status, body) = http_get(&hub, Some(&c), &announce_path(hash, Some(key)), &[]);
        assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
        let resp = decode_announce_response(&body).expect("announce answer");
        resp.peers.iter().filter(|p| p.port != seed_port).count()
    };
    let c_key = secret_of(&c);
    assert_eq!(others(&c_key), 1, "A should be listed");
    // A stock BitTorrent client sends a random `key`: C's certificate decides.
    assert_eq!(
        others("5e3f1a2b"),
        1,
        "a random announce `key` refused an enrolled certificate"
    );
    let o = hub.cmd(&["user", "rm", "a"]);
    assert!(o.status.success(), "{}", output_text(&o));
    std::thread::sleep(Duration::from_millis(1500));
    assert_eq!(others(&c_key), 0, "revoked A still listed");
    let a_key = secret_of(&a);
    let (status, body) = http_get(&hub, Some(&a), &announce_path(hash, Some(&a_key)), &[]);
    assert_eq!(status, 403);
    assert!(String::from_utf8_lossy(&body).contains("revoked"));
    let (status, _) = http_get(
        &hub,
        Some(&a),
        "/api/v1/info",
        &[("Authorization", &format!("Bearer {a_key}"))],
    );
    assert_eq!(status, 403);
    let o = a.run(&["pull", "auth:1"]);
    assert!(!o.status.success());
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("revoked"),
        "{}",
        output_text(&o)
    );
    let _ = seeder.kill();
    let _ = seeder.wait();

    // Re-enrolled under the same name: the new credentials work, the old ones stay dead.
    let old = Client {
        home: tmp.path().join("a-before"),
    };
    copy_dir(&a.home.join("tls"), &old.home.join("tls"));
    let o = hub.login(&a, "a");
    assert!(o.status.success(), "{}", output_text(&o));
    let new_key = secret_of(&a);
    assert_ne!(new_key, a_key);
    std::thread::sleep(Duration::from_millis(1500));
    let a_id = Id20::new(*b"-TEST00-reenrolled-a");
    let (status, body) = http_get(
        &hub,
        Some(&a),
        &announce_path_as(hash, Some(&new_key), a_id),
        &[],
    );
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
    // The old secret, sent where our clients send it (the standard `key`
    // parameter is ignored: stock clients fill it with a random value).
    let (status, _) = http_get(
        &hub,
        Some(&a),
        &announce_path(hash, None),
        &[("Authorization", &format!("Bearer {a_key}"))],
    );
    assert_eq!(status, 401, "the revoked secret works again");
    let (status, _) = http_get(&hub, Some(&old), "/api/v1/info", &[]);
    assert_eq!(
        status, 401,
        "the certificate from before re-enrollment works again"
    );
    // Peers learn the key "a" is bound to now (and refuse the old one).
    let (status, body) = http_get(&hub, Some(&c), "/api/v1/keys", &[]);
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
    let keys: serde_json::Value = serde_json::from_slice(&body).expect("keys json");
    let key_of = |cl: &Client| {
        let pem = std::fs::read_to_string(cl.home.join("tls/node.crt")).expect("node.crt");
        let der = swarmhub_node::tls::pem_cert(&pem, "node.crt").expect("pem");
        swarmhub_node::tls::cert_key(&der).expect("key")
    };
    assert_eq!(keys["keys"]["a"].as_str(), Some(key_of(&a).as_str()));
    assert_ne!(key_of(&a), key_of(&old));
}

#[test]
fn a_revocation_reaches_announces_on_a_connection_that_stays_open() {
    // The hub caches what a keep-alive connection's announces authenticated
    // as; removing the user must still refuse the next announce on it.
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = Hub::prepare(tmp.path(), "keep:1", MIB);
    let hub = Hub::start(&dir, &[]);
    let a = hub.client(tmp.path(), "a");
    let c = hub.client(tmp.path(), "c");
    let o = a.pull("keep:1", &[]);
    assert!(o.status.success(), "{}", output_text(&o));
    let hash = info_hash_of(&a, "keep:1");
    let (a_key, c_key) = (secret_of(&a), secret_of(&c));
    let a_auth = format!("Bearer {a_key}");
    let c_auth = format!("Bearer {c_key}");
    let a_id = Id20::new(*b"-TEST00-keepalive--a");
    let c_id = Id20::new(*b"-TEST00-keepalive--c");
    let mut a_conn = HubConn::open(&hub, Some(&a));
    let mut c_conn = HubConn::open(&hub, Some(&c));
    for _ in 0..3 {
        let (status, body) = a_conn.get(
            &announce_path_as(hash, None, a_id),
            &[("Authorization", &a_auth)],
        );
        assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
        decode_announce_response(&body).expect("announce answer");
    }
    let (status, _) = c_conn.get(
        &announce_path_as(hash, None, c_id),
        &[("Authorization", &c_auth)],
    );
    assert_eq!(status, 200);

    let o = hub.cmd(&["user", "rm", "a"]);
    assert!(o.status.success(), "{}", output_text(&o));
    let mut last = (200, Vec::new());
    wait_until(
        "an announce on A's open connection to be refused",
        Duration::from_secs(10),
        || {
            last = a_conn.get(
                &announce_path_as(hash, None, a_id),
                &[("Authorization", &a_auth)],
            );
            if last.0 == 200 {
                std::thread::sleep(Duration::from_millis(100));
            }
            last.0 != 200
        },
    );
    assert_eq!(last.0, 403, "{}", String::from_utf8_lossy(&last.1));
    assert!(
        String::from_utf8_lossy(&last.1).contains("revoked"),
        "{}",
        String::from_utf8_lossy(&last.1)
    );
    // The router's requests on the same connection are refused too.
    let (status, _) = a_conn.get("/api/v1/info", &[("Authorization", &a_auth)]);
    assert_eq!(status, 403);
    // C's open connection is untouched, and no longer lists A.
    let (status, body) = c_conn.get(
        &announce_path_as(hash, None, c_id),
        &[("Authorization", &c_auth)],
    );
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
    let peers = decode_announce_response(&body).expect("answer").peers;
    let seed_port = seed_port(&hub);
    assert!(
        peers.iter().all(|p| p.port == seed_port),
        "revoked A still listed to C: {peers:?}"
    );

    // Re-enrolled under the same name: the tracker takes identity "a" again,
    // but the connection that still holds the certificate from before must
    // not (only the hub's check of the certificate can tell them apart).
    let o = hub.login(&a, "a");
    assert!(o.status.success(), "{}", output_text(&o));
    let new_auth = format!("Bearer {}", secret_of(&a));
    let mut fresh = HubConn::open(&hub, Some(&a));
    wait_until(
        "the re-enrolled client to be taken",
        Duration::from_secs(10),
        || {
            let ok = fresh
                .get(
                    &announce_path_as(hash, None, a_id),
                    &[("Authorization", &new_auth)],
                )
                .0
                == 200;
            if !ok {
                std::thread::sleep(Duration::from_millis(100));
            }
            ok
        },
    );
    for auth in [&a_auth, &new_auth] {
        let (status, body) = a_conn.get(
            &announce_path_as(hash, None, a_id),
            &[("Authorization", auth)],
        );
        assert!(
            status == 401 || status == 403,
            "the certificate from before re-enrollment announced: {status} {}",
            String::from_utf8_lossy(&body)
        );
    }
}

#[test]
fn p2p_off_on_client_or_hub_and_stalled_swarms_use_http() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let size = 8 * MIB;
    let dir = Hub::prepare(tmp.path(), "web:1", size);
    let hub = Hub::start(&dir, &[]);
    let want = sha256_file(&tmp.path().join("src.bin"));

    // Client side switch.
    let a = hub.client(tmp.path(), "a");
    let o = a.run(&["config", "--disable=p2pdownload"]);
    assert_eq!(
        String::from_utf8_lossy(&o.stdout).trim(),
        "Peer-to-peer download: Disabled"
    );
    let all = a.run(&["config", "--all"]);
    assert!(String::from_utf8_lossy(&all.stdout).contains("Peer-to-peer download: Disabled"));
    let o = a.pull("web:1", &[]);
    assert!(o.status.success(), "{}", output_text(&o));
    assert_eq!(a.summary()["from_http"].as_u64(), Some(size));
    assert_eq!(sha256_file(&a.image_file("web", "1", "src.bin")), want);
    let o = a.run(&["config", "--enable=p2pdownload"]);
    assert_eq!(
        String::from_utf8_lossy(&o.stdout).trim(),
        "Peer-to-peer download: Enabled"
    );

    // Nobody delivers (hub seeder off, no peers): fall back after the timeout, and say so.
    let o = hub.cmd(&["config", "--disable=seed"]);
    assert!(o.status.success());
    wait_until("the hub seeder to stop", Duration::from_secs(20), || {
        hub.stderr().contains("swarm web:1: stopped")
    });
    let b = hub.client(tmp.path(), "b");
    let o = b.pull("web:1", &["--fallback-after", "2"]);
    assert!(o.status.success(), "{}", output_text(&o));
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("falling back to HTTP"),
        "{}",
        output_text(&o)
    );
    let s = b.summary();
    assert_eq!(s["from_http"].as_u64(), Some(size), "{s}");
    assert_eq!(sha256_file(&b.image_file("web", "1", "src.bin")), want);

    // Hub side switch.
    let o = hub.cmd(&["config", "--enable=seed", "--disable=p2p"]);
    assert!(String::from_utf8_lossy(&o.stdout).contains("Peer-to-peer distribution: Disabled"));
    std::thread::sleep(Duration::from_millis(1500));
    let c = hub.client(tmp.path(), "c");
    let o = c.pull("web:1", &[]);
    assert!(o.status.success(), "{}", output_text(&o));
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("disabled on the hub"),
        "{}",
        output_text(&o)
    );
    assert_eq!(c.summary()["from_http"].as_u64(), Some(size));
    assert_eq!(sha256_file(&c.image_file("web", "1", "src.bin")), want);
}

#[test]
fn after_a_stall_http_and_late_peers_share_the_rest() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let size = 16 * MIB;
    let dir = Hub::prepare(tmp.path(), "mix:1", size);
    let hub = Hub::start(&dir, &["--announce-interval", "1"]);
    let want = sha256_file(&tmp.path().join("src.bin"));
    let a = hub.client(tmp.path(), "a");
    let o = a.pull("mix:1", &[]);
    assert!(o.status.success(), "{}", output_text(&o));

    // Nobody serves: B stalls, falls back to HTTP (slowly, 1 MiB/s), and keeps its swarm.
    let o = hub.cmd(&["config", "--disable=seed"]);
    assert!(o.status.success(), "{}", output_text(&o));
    wait_until("the hub seeder to stop", Duration::from_secs(20), || {
        hub.stderr().contains("swarm mix:1: stopped")
    });
    let b = hub.client(tmp.path(), "b");
    let pull = b.spawn_pull(
        "mix:1",
        &["--fallback-after", "2", "--max-download-rate", "1M"],
    );
    std::thread::sleep(Duration::from_secs(3));
    // A peer turns up late: B takes pieces from it while HTTP goes on.
    let mut seeder = a.spawn_pull("mix:1", &["--wait-after-exit"]);
    let o = pull.wait_with_output().expect("pull output");
    let _ = seeder.kill();
    let _ = seeder.wait();
    assert!(o.status.success(), "{}", output_text(&o));
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("falling back to HTTP"),
        "{}",
        output_text(&o)
    );
    let s = b.summary();
    let (http, peers, hub_bytes) = (
        s["from_http"].as_u64().expect("from_http"),
        s["from_peers"].as_u64().expect("from_peers"),
        s["from_hub"].as_u64().expect("from_hub"),
    );
    assert_eq!(hub_bytes, 0, "the hub seeder is off");
    assert!(http > 0, "nothing over HTTP: {s}");
    assert!(
        peers > 0,
        "the late peer delivered nothing: {s}\n{}",
        output_text(&o)
    );
    assert!(
        http + peers >= size,
        "HTTP {http} + peers {peers} < image {size}"
    );
    assert_eq!(sha256_file(&b.image_file("mix", "1", "src.bin")), want);
}

#[test]
fn bad_input_gets_clear_errors_and_the_hub_keeps_serving() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = Hub::prepare(tmp.path(), "ok:1", 4 * MIB);
    let mut hub = Hub::start(&dir, &[]);
    let a = hub.client(tmp.path(), "a");
    let key = secret_of(&a);

    // Malformed announce.
    let (status, body) = http_get(
        &hub,
        Some(&a),
        &format!("/announce?info_hash=abc&key={key}"),
        &[],
    );
    assert_eq!(status, 400);
    let text = String::from_utf8_lossy(&body);
    assert!(
        text.contains("failure reason") && text.contains("info_hash"),
        "{text}"
    );

    // Garbage on the seeder port (peer TLS on): the connection is dropped
    // with at most a TLS alert record (type 0x15, 7 bytes), nothing else.
    let mut s = std::net::TcpStream::connect(&hub.seed_addr).expect("connect seeder");
    s.set_read_timeout(Some(Duration::from_secs(15)))
        .expect("timeout");
    s.write_all(&[0xAB; 100]).expect("send garbage");
    let mut got = Vec::new();
    let _ = s.read_to_end(&mut got);
    assert!(
        got.is_empty() || (got[0] == 0x15 && got.len() <= 7),
        "the seeder answered garbage with {got:02x?}"
    );

    // Image names with path separators, missing files.
    let o = hub.cmd(&[
        "image",
        "add",
        "../evil:1",
        tmp.path().join("src.bin").to_str().expect("utf8"),
    ]);
    assert!(!o.status.success());
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("path separator"),
        "{}",
        output_text(&o)
    );
    let o = hub.cmd(&["image", "add", "new:1", "/definitely/not/here"]);
    assert!(!o.status.success());
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("/definitely/not/here: no such file"),
        "{}",
        output_text(&o)
    );
    let o = a.run(&["pull", "a/b:1"]);
    assert!(!o.status.success());
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("path separator"),
        "{}",
        output_text(&o)
    );
    let (status, body) = http_get(
        &hub,
        Some(&a),
        "/api/v1/images/..%2Fx:1/metainfo",
        &[("Authorization", &format!("Bearer {key}"))],
    );
    assert_eq!(status, 400, "{}", String::from_utf8_lossy(&body));
    let (status, _) = http_get(
        &hub,
        Some(&a),
        "/webseed/xyz",
        &[("Authorization", &format!("Bearer {key}"))],
    );
    assert_eq!(status, 400);

    // Still serving.
    assert!(hub.alive(), "hub died: {}", hub.stderr());
    let out = tmp.path().join("exported");
    let o = a.pull("ok:1", &["--out", out.to_str().expect("utf8")]);
    assert!(o.status.success(), "{}", output_text(&o));
    let want = sha256_file(&tmp.path().join("src.bin"));
    assert_eq!(sha256_file(&a.image_file("ok", "1", "src.bin")), want);
    assert_eq!(sha256_file(&out.join("src.bin")), want);
    let o = a.run(&["doctor"]);
    assert!(o.status.success(), "{}", output_text(&o));
    assert_eq!(
        String::from_utf8_lossy(&o.stdout).matches("PASS").count(),
        7,
        "{}",
        output_text(&o)
    );
}

#[test]
fn restarted_hub_serves_without_rehashing() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = Hub::prepare(tmp.path(), "keep:1", 4 * MIB);
    let mut hub = Hub::start(&dir, &[]);
    let status = hub.stop();
    assert!(status.success(), "graceful stop: {status:?}");
    let hub = Hub::start(&dir, &[]);
    wait_until("catalog load", Duration::from_secs(10), || {
        hub.stderr().contains("images unchanged")
    });
    assert!(
        hub.stderr()
            .contains("cache: 1 images unchanged, not re-hashed"),
        "{}",
        hub.stderr()
    );
    assert!(!hub.stderr().contains("hashed (new or changed files)"));
    let a = hub.client(tmp.path(), "a");
    let o = a.pull("keep:1", &[]);
    assert!(o.status.success(), "{}", output_text(&o));
    let list = hub.cmd(&["image", "list"]);
    let text = String::from_utf8_lossy(&list.stdout);
    assert!(
        text.contains("keep:1") && text.contains("4.0 MiB"),
        "{text}"
    );
    let logs: Vec<String> = std::fs::read_dir(dir.join("logs"))
        .expect("logs")
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .collect();
    for kind in ["tracker", "torrent"] {
        assert!(
            logs.iter()
                .any(|n| n.starts_with(&format!("{kind}.")) && n.ends_with(".log")),
            "no {kind}.DATE.log: {logs:?}"
        );
    }
}

fn copy_dir(from: &std::path::Path, to: &std::path::Path) {
    std::fs::create_dir_all(to).expect("mkdir");
    for e in std::fs::read_dir(from).expect("read_dir").flatten() {
        std::fs::copy(e.path(), to.join(e.file_name())).expect("copy");
    }
}

#[test]
fn hub_sites_setting_round_trips_and_announces_name_the_site() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = Hub::prepare(tmp.path(), "site:1", 4 * MIB);
    // A malformed range is refused with the entry named; nothing is stored.
    let o = hub_cmd(
        &dir,
        &["config", "--sites", "127.0.0.0/8=lab, 10.0.0.0/33=far"],
    );
    assert!(!o.status.success(), "{}", output_text(&o));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("10.0.0.0/33"), "{err}");
    assert!(err.contains("not a CIDR range"), "{err}");
    let o = hub_cmd(&dir, &["config", "--all"]);
    assert!(
        output_text(&o).contains("Sites: none"),
        "{}",
        output_text(&o)
    );
    // Set, shown normalized (longest prefix first), kept across runs.
    let o = hub_cmd(
        &dir,
        &["config", "--sites", "10.1.2.3/16=paris,127.0.0.0/8=lab"],
    );
    assert!(o.status.success(), "{}", output_text(&o));
    let o = hub_cmd(&dir, &["config", "--all"]);
    assert!(
        String::from_utf8_lossy(&o.stdout).contains("Sites: 10.1.0.0/16=paris, 127.0.0.0/8=lab"),
        "{}",
        output_text(&o)
    );

    // A client announcing from 127.0.0.1 is told it is in "lab".
    let hub = Hub::start(&dir, &["--announce-interval", "2"]);
    let c = hub.client(tmp.path(), "c");
    let o = c.pull("site:1", &[]);
    assert!(o.status.success(), "{}", output_text(&o));
    let hash = info_hash_of(&c, "site:1");
    let (status, body) = http_get(&hub, Some(&c), &announce_path(hash, None), &[]);
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
    let resp = decode_announce_response(&body).expect("announce answer");
    assert_eq!(resp.site.as_deref(), Some("lab"));
    assert!(resp.near_peers as usize <= resp.peers.len());

    // Cleared: no site in the answers once the hub has re-read its settings.
    let o = hub.cmd(&["config", "--sites", "none"]);
    assert!(o.status.success(), "{}", output_text(&o));
    wait_until("the hub to drop the sites", Duration::from_secs(30), || {
        let (status, body) = http_get(&hub, Some(&c), &announce_path(hash, None), &[]);
        status == 200 && decode_announce_response(&body).is_ok_and(|r| r.site.is_none())
    });
}
