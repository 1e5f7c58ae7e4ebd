//! `/metrics` of a real hub and a real client: the byte counters move by the
//! image size, names and labels are there, `promtool check metrics` accepts
//! both, and a real Prometheus server scraping both answers PromQL with the
//! bytes a pull moved. The Grafana dashboard is valid JSON whose queries use
//! these names (and, with Prometheus here, parse).

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, SystemTime};

use common::*;

const DASHBOARD: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/dist/grafana-rollout.json");
const ALERTS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/dist/prometheus-alerts.yml");

/// Every metric name the hub and clients export (histograms by base name).
const NAMES: [&str; 29] = [
    "swarmhub_build_info",
    "swarmhub_hub_announces_total",
    "swarmhub_hub_downloads_completed_total",
    "swarmhub_hub_peers",
    "swarmhub_hub_sent_bytes_total",
    "swarmhub_hub_seeder_peers",
    "swarmhub_hub_piece_verification_failures_total",
    "swarmhub_hub_bans_total",
    "swarmhub_hub_request_duration_seconds",
    "swarmhub_hub_certificate_expiry_timestamp_seconds",
    "swarmhub_hub_upload_capacity_bytes_per_second",
    "swarmhub_hub_connections_total",
    "swarmhub_hub_connections_refused_total",
    "swarmhub_hub_tls_handshake_failures_total",
    "swarmhub_client_received_bytes_total",
    "swarmhub_client_sent_bytes_total",
    "swarmhub_client_pull_duration_seconds",
    "swarmhub_client_pulls_total",
    "swarmhub_client_webseed_fallbacks_total",
    "swarmhub_client_piece_verification_failures_total",
    "swarmhub_client_bans_total",
    "swarmhub_client_peers",
    "swarmhub_client_connections_total",
    "swarmhub_client_connections_refused_total",
    "swarmhub_client_tls_handshake_failures_total",
    "swarmhub_hub_dial_failures_total",
    "swarmhub_client_dial_failures_total",
    // Histogram series.
    "swarmhub_hub_request_duration_seconds_bucket",
    "swarmhub_client_pull_duration_seconds_bucket",
];

/// A plain HTTP/1.0 GET; returns (status, body).
fn get(addr: &str, target: &str) -> (u16, String) {
    let mut s = TcpStream::connect(addr).unwrap_or_else(|e| panic!("connect {addr}: {e}"));
    s.set_read_timeout(Some(Duration::from_secs(20)))
        .expect("timeout");
    write!(s, "GET {target} HTTP/1.0\r\nHost: {addr}\r\n\r\n").expect("send");
    let mut raw = Vec::new();
    s.read_to_end(&mut raw).expect("read");
    let text = String::from_utf8_lossy(&raw).into_owned();
    let (head, body) = text.split_once("\r\n\r\n").expect("header end");
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .expect("status");
    (status, body.to_owned())
}

/// `/metrics` of the process whose run folder is `run`.
fn scrape(run: &Path) -> String {
    let addr = std::fs::read_to_string(run.join("metrics.addr")).expect("metrics.addr");
    let (status, body) = get(addr.trim(), "/metrics");
    assert_eq!(status, 200, "{body}");
    body
}

/// Sum of the samples of `name` whose labels include every `labels` pair.
fn sample(text: &str, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
    let mut found = None;
    for line in text.lines().filter(|l| !l.starts_with('#')) {
        let (series, value) = match line.rsplit_once(' ') {
            Some(x) => x,
            None => continue,
        };
        let (n, l) = series.split_once('{').unwrap_or((series, ""));
        if n != name
            || !labels
                .iter()
                .all(|(k, v)| l.contains(&format!("{k}=\"{v}\"")))
        {
            continue;
        }
        let v: f64 = value.parse().expect("sample value");
        *found.get_or_insert(0.0) += v;
    }
    found
}

/// `promtool check metrics` on `text`, or a printed reason to skip.
fn promtool_check(text: &str, what: &str) {
    let Ok(mut child) = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
    else {
        eprintln!("SKIP promtool check of the {what} metrics: promtool not installed (Debian package prometheus)");
        return;
    };
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(text.as_bytes())
        .expect("write to promtool");
    let o = child.wait_with_output().expect("promtool");
    assert!(
        o.status.success(),
        "promtool check metrics refused the {what} metrics:\n{}\n{text}",
        output_text(&o)
    );
}

fn unix_now() -> f64 {
    SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .expect("clock")
        .as_secs_f64()
}

/// A hub serving one image of `size` bytes, and a logged-in client.
fn hub_and_client(tmp: &Path, image: &str, size: u64) -> (Hub, Client) {
    let dir = Hub::prepare(tmp, image, size);
    let hub = Hub::start(&dir, &["--announce-interval", "1"]);
    let c = hub.client(tmp, "m1");
    (hub, c)
}

/// Wait until `c` finished pulling `name:tag` (the summary is written).
fn wait_pulled(c: &Client, child: &mut Child, name: &str, tag: &str) {
    let done = c.image_file(name, tag, "src.bin");
    let summary = c.home.join("run/last_pull.json");
    wait_until("the pull to complete", Duration::from_secs(120), || {
        assert!(
            child.try_wait().expect("try_wait").is_none(),
            "the seeding pull exited early"
        );
        done.exists() && summary.exists()
    });
}

fn stop(mut child: Child) {
    signal(&child, "-INT");
    let status = wait_child(&mut child, Duration::from_secs(30), "seeding pull");
    assert!(status.success(), "seeding pull ended with {status:?}");
}

#[test]
fn hub_and_client_metrics_count_a_pull() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let size = 8 * MIB;
    let (hub, c) = hub_and_client(tmp.path(), "metrics:1", size);
    let mut child = c.spawn_pull("metrics:1", &["--wait-after-exit"]);
    wait_pulled(&c, &mut child, "metrics", "1");

    let hub_run = hub.dir.join("run");
    let image = [("image", "metrics:1")];
    // The client's completed announce reaches the tracker within an interval.
    let mut hub_text = String::new();
    wait_until(
        "the hub to count the completed download",
        Duration::from_secs(30),
        || {
            hub_text = scrape(&hub_run);
            sample(&hub_text, "swarmhub_hub_downloads_completed_total", &image) == Some(1.0)
                && sample(&hub_text, "swarmhub_hub_peers", &[("state", "seeder")]) == Some(2.0)
        },
    );
    let client_text = scrape(&c.home.join("run"));

    // Bytes: the client received exactly the image, split as its summary says.
    let received = |source: &str| {
        sample(
            &client_text,
            "swarmhub_client_received_bytes_total",
            &[("image", "metrics:1"), ("source", source)],
        )
        .unwrap_or_else(|| panic!("no received bytes from {source}:\n{client_text}"))
    };
    let s = c.summary();
    assert_eq!(received("hub"), s["from_hub"].as_f64().unwrap(), "{s}");
    assert_eq!(received("peer"), s["from_peers"].as_f64().unwrap(), "{s}");
    assert_eq!(received("webseed"), s["from_http"].as_f64().unwrap(), "{s}");
    assert_eq!(
        received("hub") + received("peer") + received("webseed"),
        size as f64
    );
    // The hub sent about one image (endgame may send a block twice).
    let sent = sample(&hub_text, "swarmhub_hub_sent_bytes_total", &image).expect("hub sent");
    assert!(
        sent >= size as f64 && sent <= 1.25 * size as f64,
        "hub sent {sent} bytes for an image of {size}:\n{hub_text}"
    );

    // Names and labels.
    for name in [
        "swarmhub_build_info",
        "swarmhub_hub_announces_total",
        "swarmhub_hub_downloads_completed_total",
        "swarmhub_hub_peers",
        "swarmhub_hub_sent_bytes_total",
        "swarmhub_hub_request_duration_seconds_bucket",
        "swarmhub_hub_certificate_expiry_timestamp_seconds",
        "swarmhub_hub_upload_capacity_bytes_per_second",
        "swarmhub_hub_connections_total",
        "swarmhub_hub_piece_verification_failures_total",
    ] {
        assert!(sample(&hub_text, name, &[]).is_some(), "hub lacks {name}");
    }
    for name in [
        "swarmhub_client_received_bytes_total",
        "swarmhub_client_sent_bytes_total",
        "swarmhub_client_pull_duration_seconds_bucket",
        "swarmhub_client_pulls_total",
        "swarmhub_client_webseed_fallbacks_total",
        "swarmhub_client_peers",
    ] {
        assert!(
            sample(&client_text, name, &[]).is_some(),
            "client lacks {name}"
        );
    }
    let ok = sample(
        &hub_text,
        "swarmhub_hub_announces_total",
        &[("result", "ok")],
    );
    assert!(ok.is_some_and(|n| n >= 2.0), "announces: {ok:?}");
    for route in ["announce", "info", "metainfo"] {
        let n = sample(
            &hub_text,
            "swarmhub_hub_request_duration_seconds_count",
            &[("route", route)],
        );
        assert!(n.is_some_and(|n| n >= 1.0), "no {route} request timed");
    }
    let api = sample(
        &hub_text,
        "swarmhub_hub_connections_total",
        &[("listener", "api")],
    );
    assert!(api.is_some_and(|n| n >= 1.0), "API connections: {api:?}");
    let seeder = sample(
        &hub_text,
        "swarmhub_hub_connections_total",
        &[("listener", "seeder")],
    );
    assert!(
        seeder.is_some_and(|n| n >= 1.0),
        "seeder connections: {seeder:?}"
    );
    for cert in ["hub", "ca"] {
        let t = sample(
            &hub_text,
            "swarmhub_hub_certificate_expiry_timestamp_seconds",
            &[("certificate", cert)],
        )
        .expect("expiry");
        assert!(t > unix_now() + 86400.0, "{cert} expires at {t}");
    }
    assert_eq!(
        sample(
            &client_text,
            "swarmhub_client_pull_duration_seconds_count",
            &[("size", "upto_16MiB")]
        ),
        Some(1.0)
    );
    assert_eq!(
        sample(
            &client_text,
            "swarmhub_client_pulls_total",
            &[("result", "complete")]
        ),
        Some(1.0)
    );
    // Refusals: plain text on both TLS ports, an API call without a certificate.
    for addr in [
        hub.api.trim_start_matches("https://"),
        hub.seed_addr.as_str(),
    ] {
        let mut t = TcpStream::connect(addr).expect("connect");
        t.write_all(b"GET / HTTP/1.0\r\n\r\n").expect("write");
        let _ = t.read_to_end(&mut Vec::new());
    }
    let (status, _) = http_get(&hub, None, "/api/v1/info", &[]);
    assert_eq!(status, 401);
    let mut hub_text = String::new();
    wait_until("the hub to count refusals", Duration::from_secs(20), || {
        hub_text = scrape(&hub_run);
        let tls = |l| {
            sample(
                &hub_text,
                "swarmhub_hub_tls_handshake_failures_total",
                &[("listener", l), ("reason", "protocol")],
            )
        };
        tls("api").is_some()
            && tls("seeder").is_some()
            && sample(
                &hub_text,
                "swarmhub_hub_connections_refused_total",
                &[("listener", "api"), ("reason", "not_authenticated")],
            )
            .is_some()
            && sample(
                &hub_text,
                "swarmhub_hub_connections_refused_total",
                &[("listener", "seeder"), ("reason", "tls")],
            )
            .is_some()
    });
    promtool_check(&hub_text, "hub");
    promtool_check(&client_text, "client");

    // A second process asking for an address in use is refused, by address.
    let taken = std::fs::read_to_string(hub_run.join("metrics.addr")).expect("addr");
    let o = Command::new(BIN)
        .args(["hub", "--dir"])
        .arg(tmp.path().join("other-hub"))
        .args(["serve", "--listen", "127.0.0.1:0", "--seed-ports", "0"])
        .args(["--metrics-listen", taken.trim()])
        .output()
        .expect("second hub");
    assert!(!o.status.success(), "{}", output_text(&o));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains(&format!("cannot serve metrics on {}", taken.trim())),
        "{}",
        output_text(&o)
    );
    stop(child);

    // `service` in the same home serves the client families for what it seeds.
    let run = c.home.join("run");
    assert!(
        !run.join("metrics.addr").exists(),
        "the pull left its metrics.addr behind"
    );
    let service = c
        .command(&["service", "--peer-ports", "0"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn service");
    let mut text = String::new();
    wait_until("the service's metrics", Duration::from_secs(30), || {
        text = match std::fs::read_to_string(run.join("metrics.addr")) {
            Ok(a) => get(a.trim(), "/metrics").1,
            Err(_) => return false,
        };
        sample(&text, "swarmhub_client_peers", &image).is_some()
    });
    assert!(
        sample(&text, "swarmhub_client_sent_bytes_total", &image).is_some(),
        "{text}"
    );
    promtool_check(&text, "service");
    stop(service);
}

/// A seeding client whose file was altered after its pull is the only peer
/// of a newcomer: the newcomer counts the failed pieces and the ban (core
/// events counted by the driver), falls back to the web seed and says so in
/// its metrics; the hub counts the web seed bytes.
#[test]
fn bad_pieces_bans_and_fallbacks_are_counted() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let size = 4 * MIB;
    let (hub, a) = hub_and_client(tmp.path(), "metrics:3", size);
    let mut seeder = a.spawn_pull("metrics:3", &["--wait-after-exit"]);
    wait_pulled(&a, &mut seeder, "metrics", "3");
    let o = hub.cmd(&["config", "--disable=seed"]);
    assert!(o.status.success(), "{}", output_text(&o));
    // Flip a byte in every 64 KiB of the file the seeding client serves.
    {
        use std::io::{Seek, SeekFrom};
        let path = a.image_file("metrics", "3", "src.bin");
        let mut f = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .open(&path)
            .expect("open seeded file");
        for off in (0..size).step_by(64 << 10) {
            let mut b = [0u8; 1];
            f.seek(SeekFrom::Start(off)).expect("seek");
            f.read_exact(&mut b).expect("read");
            f.seek(SeekFrom::Start(off)).expect("seek");
            f.write_all(&[!b[0]]).expect("write");
        }
        f.sync_all().expect("sync");
    }
    std::thread::sleep(Duration::from_secs(2));

    let b = hub.client(tmp.path(), "m2");
    let mut newcomer = b.spawn_pull("metrics:3", &["--wait-after-exit", "--fallback-after", "2"]);
    wait_pulled(&b, &mut newcomer, "metrics", "3");
    assert_eq!(
        sha256_file(&b.image_file("metrics", "3", "src.bin")),
        sha256_file(&tmp.path().join("src.bin"))
    );
    let text = scrape(&b.home.join("run"));
    let failed = sample(
        &text,
        "swarmhub_client_piece_verification_failures_total",
        &[("source", "peers")],
    );
    assert!(
        failed.is_some_and(|n| n >= 1.0),
        "failures {failed:?}:\n{text}"
    );
    let bans = sample(&text, "swarmhub_client_bans_total", &[]);
    assert!(bans.is_some_and(|n| n >= 1.0), "bans {bans:?}:\n{text}");
    assert_eq!(
        sample(&text, "swarmhub_client_webseed_fallbacks_total", &[]),
        Some(1.0),
        "{text}"
    );
    let web = sample(
        &text,
        "swarmhub_client_received_bytes_total",
        &[("source", "webseed")],
    );
    assert!(web.is_some_and(|n| n > 0.0), "webseed bytes {web:?}");
    assert_eq!(
        web,
        b.summary()["from_http"].as_f64(),
        "the metric and the summary agree"
    );
    let hub_text = scrape(&hub.dir.join("run"));
    let hub_web = sample(
        &hub_text,
        "swarmhub_hub_sent_bytes_total",
        &[("image", "metrics:3"), ("path", "webseed")],
    );
    assert!(
        hub_web.is_some_and(|n| n >= web.unwrap_or(0.0)),
        "hub webseed {hub_web:?}"
    );
    promtool_check(&text, "client after a ban");
    stop(newcomer);
    stop(seeder);
}

/// A Prometheus server in its own folder, stopped on drop.
struct Prometheus {
    child: Child,
    addr: String,
    dir: PathBuf,
}

impl Prometheus {
    /// Start one scraping `targets` (job, address) every second, or say why not.
    fn start(dir: &Path, targets: &[(&str, &str)]) -> Result<Prometheus, String> {
        if Command::new("prometheus")
            .arg("--version")
            .output()
            .is_err()
        {
            return Err("prometheus not installed (Debian package prometheus)".into());
        }
        std::fs::create_dir_all(dir).map_err(|e| e.to_string())?;
        let mut config = format!(
            "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\n\
             rule_files:\n  - '{ALERTS}'\nscrape_configs:\n"
        );
        for (job, addr) in targets {
            config.push_str(&format!(
                "  - job_name: {job}\n    static_configs:\n      - targets: ['{addr}']\n"
            ));
        }
        let file = dir.join("prometheus.yml");
        std::fs::write(&file, config).map_err(|e| e.to_string())?;
        let addr = format!("127.0.0.1:{}", free_port());
        let log = std::fs::File::create(dir.join("prometheus.log")).map_err(|e| e.to_string())?;
        let child = Command::new("prometheus")
            .arg(format!("--config.file={}", file.display()))
            .arg(format!(
                "--storage.tsdb.path={}",
                dir.join("data").display()
            ))
            .arg(format!("--web.listen-address={addr}"))
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .map_err(|e| format!("starting prometheus: {e}"))?;
        let p = Prometheus {
            child,
            addr,
            dir: dir.to_owned(),
        };
        wait_until("Prometheus to be ready", Duration::from_secs(60), || {
            TcpStream::connect(&p.addr).is_ok() && get(&p.addr, "/-/ready").0 == 200
        });
        Ok(p)
    }

    /// An instant PromQL query: the JSON answer.
    fn query(&self, promql: &str) -> serde_json::Value {
        let (status, body) = get(
            &self.addr,
            &format!("/api/v1/query?query={}", encode(promql)),
        );
        let v: serde_json::Value = serde_json::from_str(&body)
            .unwrap_or_else(|e| panic!("{promql}: HTTP {status}, not JSON ({e}): {body}"));
        assert_eq!(v["status"], "success", "{promql}: {body}");
        v
    }

    /// The single value of an instant query, if it has one.
    fn value(&self, promql: &str) -> Option<f64> {
        let v = self.query(promql);
        v["data"]["result"][0]["value"][1]
            .as_str()
            .and_then(|s| s.parse().ok())
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("prometheus.log")).unwrap_or_default()
    }
}

impl Drop for Prometheus {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Percent-encode a query parameter.
fn encode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// The PromQL expressions of the dashboard, Grafana's variables filled in.
fn dashboard_queries() -> Vec<String> {
    let raw = std::fs::read_to_string(DASHBOARD).expect("dashboard");
    let d: serde_json::Value = serde_json::from_str(&raw).expect("dashboard is JSON");
    d["panels"]
        .as_array()
        .expect("panels")
        .iter()
        .flat_map(|p| p["targets"].as_array().cloned().unwrap_or_default())
        .map(|t| t["expr"].as_str().expect("expr").to_owned())
        .map(|e| e.replace("$__rate_interval", "1m").replace("$image", ".*"))
        .collect()
}

#[test]
fn prometheus_scrapes_hub_and_client_and_sums_a_pull() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let size = 8 * MIB;
    let (hub, c) = hub_and_client(tmp.path(), "metrics:2", size);
    let hub_addr = std::fs::read_to_string(hub.dir.join("run/metrics.addr")).expect("addr");
    // The client's port is chosen up front so Prometheus scrapes it from the start.
    let client_addr = format!("127.0.0.1:{}", free_port());
    let prom = match Prometheus::start(
        &tmp.path().join("prometheus"),
        &[("hub", hub_addr.trim()), ("client", &client_addr)],
    ) {
        Ok(p) => p,
        Err(why) => {
            eprintln!("SKIP prometheus_scrapes_hub_and_client_and_sums_a_pull: {why}");
            return;
        }
    };
    let mut child = c.spawn_pull(
        "metrics:2",
        &["--wait-after-exit", "--metrics-listen", &client_addr],
    );
    wait_pulled(&c, &mut child, "metrics", "2");

    let received = r#"sum(swarmhub_client_received_bytes_total{job="client",image="metrics:2"})"#;
    let sent = r#"sum(swarmhub_hub_sent_bytes_total{job="hub",image="metrics:2"})"#;
    let start = std::time::Instant::now();
    let (got, hub_sent) = loop {
        let (got, hub_sent) = (prom.value(received), prom.value(sent));
        let hub_done = hub_sent.is_some_and(|s| s >= size as f64);
        if (got == Some(size as f64) && hub_done) || start.elapsed() > Duration::from_secs(60) {
            break (got, hub_sent);
        }
        std::thread::sleep(Duration::from_millis(250));
    };
    let targets = || get(&prom.addr, "/api/v1/targets").1;
    assert_eq!(
        got,
        Some(size as f64),
        "client bytes; targets: {}",
        targets()
    );
    let hub_sent = hub_sent.unwrap_or_else(|| panic!("no hub bytes; targets: {}", targets()));
    assert!(
        hub_sent >= size as f64 && hub_sent <= 1.25 * size as f64,
        "hub sent {hub_sent} for {size}"
    );
    let up = prom.value(r#"sum(up{job=~"hub|client"})"#);
    assert_eq!(up, Some(2.0), "both targets up:\n{}", prom.log());
    // Every dashboard query parses and runs against the real series.
    for q in dashboard_queries() {
        prom.query(&q);
    }
    // The shipped alert rules load and evaluate without error.
    let mut rules = serde_json::Value::Null;
    wait_until(
        "the alert rules to evaluate",
        Duration::from_secs(30),
        || {
            let (_, body) = get(&prom.addr, "/api/v1/rules");
            rules = serde_json::from_str(&body).expect("rules JSON");
            let all: Vec<&serde_json::Value> = rules["data"]["groups"]
                .as_array()
                .into_iter()
                .flatten()
                .flat_map(|g| g["rules"].as_array().into_iter().flatten())
                .collect();
            assert!(
                all.iter().all(|r| r["health"] != "err"),
                "a rule failed: {rules}"
            );
            all.len() == 8 && all.iter().all(|r| r["health"] == "ok")
        },
    );
    stop(child);
}

#[test]
fn the_alert_rules_pass_promtool_and_use_known_names() {
    let text = std::fs::read_to_string(ALERTS).expect("node/dist/prometheus-alerts.yml");
    for line in text.lines().filter(|l| l.trim_start().starts_with("expr:")) {
        for n in line
            .split(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
            .filter(|w| w.starts_with("swarmhub_"))
        {
            assert!(NAMES.contains(&n), "rule {line} uses unknown metric {n}");
        }
    }
    match Command::new("promtool")
        .args(["check", "rules", ALERTS])
        .output()
    {
        Ok(o) => assert!(o.status.success(), "{}", output_text(&o)),
        Err(_) => eprintln!(
            "SKIP promtool check rules: promtool not installed (Debian package prometheus)"
        ),
    }
}

#[test]
fn the_grafana_dashboard_is_json_with_the_rollout_panels_and_known_names() {
    let raw = std::fs::read_to_string(DASHBOARD).expect("node/dist/grafana-rollout.json");
    let d: serde_json::Value = serde_json::from_str(&raw).expect("dashboard is valid JSON");
    assert_eq!(d["uid"], "swarmhub-rollout");
    let titles: Vec<&str> = d["panels"]
        .as_array()
        .expect("panels")
        .iter()
        .map(|p| p["title"].as_str().expect("title"))
        .collect();
    for want in [
        "Rollout completion",
        "Hub egress against capacity",
        "Share of bytes from peers",
    ] {
        assert!(titles.contains(&want), "no panel {want:?} in {titles:?}");
    }
    let queries = dashboard_queries();
    assert!(queries.len() >= 10, "{queries:?}");
    for q in &queries {
        let names: Vec<&str> = q
            .split(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
            .filter(|w| w.starts_with("swarmhub_"))
            .collect();
        assert!(!names.is_empty(), "query uses no swarmhub metric: {q}");
        for n in names {
            assert!(NAMES.contains(&n), "query {q} uses unknown metric {n}");
        }
    }
}
