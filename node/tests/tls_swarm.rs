//! Real processes with peer TLS (the default): clients swap pieces over
//! mutual TLS, a revoked client is dropped by its peers within one announce
//! interval, a certificate renewal does not interrupt a pull, and turning peer
//! TLS off is loud.

mod common;

use std::io::{Read, Write};
use std::path::Path;
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use common::*;
use swarmhub_node::tls::{cert_facts, pem_cert};

fn spawn_service(c: &Client) -> (Child, u16) {
    let port_file = c.home.join("run/service.port");
    let _ = std::fs::remove_file(&port_file);
    let child = c
        .command(&["service", "--peer-ports", "0"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn service");
    wait_until("service port", Duration::from_secs(30), || {
        std::fs::read_to_string(&port_file).is_ok_and(|s| s.trim().parse::<u16>().is_ok())
    });
    let port = std::fs::read_to_string(&port_file)
        .expect("port")
        .trim()
        .parse()
        .expect("port number");
    (child, port)
}

fn logs_contain(home: &Path, needle: &str) -> bool {
    let Ok(dir) = std::fs::read_dir(home.join("logs")) else {
        return false;
    };
    dir.flatten()
        .any(|e| std::fs::read_to_string(e.path()).is_ok_and(|t| t.contains(needle)))
}

fn cert_not_after(c: &Client) -> std::time::SystemTime {
    let pem = std::fs::read_to_string(c.home.join("tls/node.crt")).expect("node.crt");
    let der = pem_cert(&pem, "node.crt").expect("pem");
    cert_facts(&der).expect("facts").not_after
}

fn stop_seeder(hub: &Hub, image: &str) {
    let o = hub.cmd(&["config", "--disable=seed"]);
    assert!(o.status.success(), "{}", output_text(&o));
    wait_until("the hub seeder to stop", Duration::from_secs(20), || {
        hub.stderr().contains(&format!("swarm {image}: stopped"))
    });
}

#[test]
fn clients_swap_over_tls_and_a_revoked_client_is_dropped_by_its_peers() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let size = 8 * MIB;
    let interval_s: u64 = 2;
    let dir = Hub::prepare(tmp.path(), "tls:1", size);
    let hub = Hub::start(&dir, &["--announce-interval", &interval_s.to_string()]);
    let want = sha256_file(&tmp.path().join("src.bin"));

    // A gets the image from the hub seeder (over TLS) and serves it.
    let a = hub.client(tmp.path(), "a");
    let o = a.pull("tls:1", &[]);
    assert!(o.status.success(), "{}", output_text(&o));
    assert_eq!(a.summary()["from_hub"].as_u64(), Some(size));
    stop_seeder(&hub, "tls:1");
    let (mut service, port) = spawn_service(&a);

    // A plain-TCP BitTorrent handshake to A's peer port gets nothing back
    // but, at most, a TLS alert.
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    let mut hs = vec![19u8];
    hs.extend_from_slice(b"BitTorrent protocol");
    hs.extend_from_slice(&[0; 8]);
    hs.extend_from_slice(&[0x11; 40]);
    s.write_all(&hs).expect("send");
    let mut got = Vec::new();
    let _ = s.read_to_end(&mut got);
    assert!(
        got.is_empty() || (got[0] == 0x15 && got.len() <= 7),
        "plain TCP handshake got {got:02x?}"
    );

    // B gets every byte from A: two enrolled clients over mutual TLS.
    let b = hub.client(tmp.path(), "b");
    let o = b.pull("tls:1", &["--fallback-after", "60"]);
    assert!(o.status.success(), "{}", output_text(&o));
    let sb = b.summary();
    assert_eq!(sb["from_peers"].as_u64(), Some(size), "{sb}");
    assert_eq!(sb["from_http"].as_u64(), Some(0), "{sb}");
    assert_eq!(sha256_file(&b.image_file("tls", "1", "src.bin")), want);

    // C downloads slowly from A; revoking C makes A drop it within one
    // announce interval (plus the hub's half-second database poll).
    let c = hub.client(tmp.path(), "c");
    let mut pull = c.spawn_pull(
        "tls:1",
        &["--max-download-rate", "256K", "--fallback-after", "120"],
    );
    std::thread::sleep(Duration::from_secs(3));
    assert!(
        !logs_contain(&a.home, "revoked"),
        "A dropped someone before any revocation"
    );
    let o = hub.cmd(&["user", "rm", "c"]);
    assert!(o.status.success(), "{}", output_text(&o));
    let revoked_at = Instant::now();
    wait_until(
        "A to drop revoked C",
        Duration::from_secs(interval_s + 3),
        || logs_contain(&a.home, "identity revoked by the hub"),
    );
    let took = revoked_at.elapsed();
    assert!(
        took <= Duration::from_millis(interval_s * 1000 + 1500),
        "A dropped C after {took:?}, more than one announce interval"
    );
    let _ = pull.kill();
    let _ = pull.wait();
    signal(&service, "-TERM");
    let _ = wait_child(&mut service, Duration::from_secs(20), "service stop");
}

#[test]
fn certificate_renewal_does_not_interrupt_a_pull() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let size = 8 * MIB;
    let dir = Hub::prepare(tmp.path(), "renew:1", size);
    let hub = Hub::start(&dir, &["--cert-lifetime", "12s"]);
    let a = hub.client(tmp.path(), "a");
    let first = cert_not_after(&a);
    // About 16 s at 512 KiB/s: the 12 s certificate is renewed (at 4 s left) mid-pull.
    let o = a.pull(
        "renew:1",
        &["--max-download-rate", "512K", "--fallback-after", "60"],
    );
    assert!(o.status.success(), "{}", output_text(&o));
    let s = a.summary();
    assert_eq!(s["from_hub"].as_u64(), Some(size), "{s}");
    assert_eq!(s["from_http"].as_u64(), Some(0), "{s}");
    assert!(
        s["seconds"].as_f64().expect("seconds") > 12.0,
        "the pull ended before the first certificate expired: {s}"
    );
    assert!(
        cert_not_after(&a) > first,
        "the certificate was not renewed"
    );
    assert!(hub.stderr().contains("renewed the certificate of \"a\""));
    assert_eq!(
        sha256_file(&a.image_file("renew", "1", "src.bin")),
        sha256_file(&tmp.path().join("src.bin"))
    );
}

#[test]
fn peer_tls_off_is_loud_and_login_pins_the_ca() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = Hub::prepare(tmp.path(), "plain:1", 2 * MIB);
    let hub = Hub::start(&dir, &[]);

    // A wrong fingerprint stores nothing and spends no key.
    let c = Client {
        home: tmp.path().join("x"),
    };
    let key = hub.add_user("x");
    let wrong = "00".repeat(32);
    let o = c.run(&["login", &hub.api, "--key", &key, "--fingerprint", &wrong]);
    assert!(!o.status.success());
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("not 00"),
        "{}",
        output_text(&o)
    );
    assert!(!c.home.join("tls/node.crt").exists());
    let o = c.run(&[
        "login",
        &hub.api,
        "--key",
        &key,
        "--fingerprint",
        &hub.fingerprint(),
    ]);
    assert!(o.status.success(), "the key was spent: {}", output_text(&o));
    let key_mode = {
        use std::os::unix::fs::PermissionsExt;
        std::fs::metadata(c.home.join("tls/node.key"))
            .expect("node.key")
            .permissions()
            .mode()
            & 0o777
    };
    assert_eq!(key_mode, 0o600);
    let ca_mode = {
        use std::os::unix::fs::PermissionsExt;
        std::fs::metadata(dir.join("ca/ca.key"))
            .expect("ca.key")
            .permissions()
            .mode()
            & 0o777
    };
    assert_eq!(ca_mode, 0o600);

    let o = hub.cmd(&["config", "--peer-tls=off"]);
    assert!(o.status.success(), "{}", output_text(&o));
    let text = String::from_utf8_lossy(&o.stdout);
    assert!(text.contains("Peer TLS: Disabled"), "{text}");
    assert!(text.contains("WARNING: peer TLS is OFF"), "{text}");
    std::thread::sleep(Duration::from_millis(1500));
    let o = c.run(&["doctor"]);
    assert!(!o.status.success(), "doctor passed with peer TLS off");
    assert!(
        String::from_utf8_lossy(&o.stdout).contains("FAIL peer TLS: WARNING: peer TLS is OFF"),
        "{}",
        output_text(&o)
    );
    // Plain TCP still works (interop mode), with the warning on the pull too.
    let o = c.pull("plain:1", &[]);
    assert!(o.status.success(), "{}", output_text(&o));
    assert!(String::from_utf8_lossy(&o.stderr).contains("WARNING: peer TLS is OFF"));
    assert_eq!(c.summary()["from_hub"].as_u64(), Some(2 * MIB));

    let o = hub.cmd(&["config", "--peer-tls=on"]);
    assert!(String::from_utf8_lossy(&o.stdout).contains("Peer TLS: Enabled"));
    std::thread::sleep(Duration::from_millis(1500));
    let o = c.run(&["doctor"]);
    assert!(
        String::from_utf8_lossy(&o.stdout).contains("PASS peer TLS"),
        "{}",
        output_text(&o)
    );
}
