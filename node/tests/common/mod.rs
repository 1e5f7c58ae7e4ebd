//! Helpers for tests that run real `swarmhub` processes on 127.0.0.1.
#![allow(dead_code, unreachable_pub)]

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::time::{Duration, Instant};

use sha2::{Digest, Sha256};

pub const BIN: &str = env!("CARGO_BIN_EXE_swarmhub");
pub const MIB: u64 = 1 << 20;
/// Tests run many hubs and seeding clients at once: each serves its
/// `/metrics` on a port of its own (the address lands in `run/metrics.addr`).
pub const METRICS_ENV: (&str, &str) = ("SWARMHUB_METRICS_LISTEN", "127.0.0.1:0");

/// Deterministic pseudo-random bytes (xorshift), different per `seed`.
pub fn write_image(path: &Path, len: u64, seed: u64) {
    let mut x = seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
    let mut f = std::io::BufWriter::new(std::fs::File::create(path).expect("create image"));
    let mut buf = vec![0u8; 1 << 16];
    let mut left = len;
    while left > 0 {
        for chunk in buf.chunks_mut(8) {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let b = x.to_le_bytes();
            chunk.copy_from_slice(&b[..chunk.len()]);
        }
        let n = left.min(buf.len() as u64) as usize;
        f.write_all(&buf[..n]).expect("write image");
        left -= n as u64;
    }
    f.flush().expect("flush");
}

pub fn sha256_file(path: &Path) -> [u8; 32] {
    let mut f = std::fs::File::open(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let mut h = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = f.read(&mut buf).expect("read");
        if n == 0 {
            break;
        }
        h.update(&buf[..n]);
    }
    h.finalize().into()
}

pub fn wait_until(what: &str, limit: Duration, mut f: impl FnMut() -> bool) {
    let start = Instant::now();
    while !f() {
        assert!(
            start.elapsed() < limit,
            "timed out after {limit:?} waiting for {what}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Wait for a child with a time limit; kills it and panics when over.
pub fn wait_child(child: &mut Child, limit: Duration, what: &str) -> ExitStatus {
    let start = Instant::now();
    loop {
        if let Some(s) = child.try_wait().expect("try_wait") {
            return s;
        }
        if start.elapsed() > limit {
            let _ = child.kill();
            panic!("{what} did not finish within {limit:?}");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

pub fn signal(child: &Child, sig: &str) {
    let ok = Command::new("kill")
        .args([sig, &child.id().to_string()])
        .status()
        .expect("kill")
        .success();
    assert!(ok, "kill {sig} failed");
}

pub fn output_text(o: &Output) -> String {
    format!(
        "status {:?}\nstdout:\n{}\nstderr:\n{}",
        o.status,
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

/// A running hub in its own temporary folder.
pub struct Hub {
    pub dir: PathBuf,
    pub child: Option<Child>,
    pub api: String,
    pub seed_addr: String,
}

impl Hub {
    /// A hub folder with one generated image `NAME:TAG` of `len` bytes (not started).
    pub fn prepare(root: &Path, image: &str, len: u64) -> PathBuf {
        let dir = root.join("hub");
        let src = root.join("src.bin");
        write_image(&src, len, 7);
        let o = hub_cmd(&dir, &["image", "add", image, src.to_str().expect("utf8")]);
        assert!(o.status.success(), "image add: {}", output_text(&o));
        dir
    }

    pub fn start(dir: &Path, extra: &[&str]) -> Hub {
        Hub::start_at(dir, "127.0.0.1:0", extra)
    }

    /// Like [`Hub::start`] with the API on `listen` (a restarted hub must keep
    /// the address its clients logged in to).
    pub fn start_at(dir: &Path, listen: &str, extra: &[&str]) -> Hub {
        Hub::start_env(dir, listen, extra, &[])
    }

    /// Like [`Hub::start_at`] with extra environment variables.
    pub fn start_env(dir: &Path, listen: &str, extra: &[&str], env: &[(&str, &str)]) -> Hub {
        let api_file = dir.join("run/api.addr");
        let _ = std::fs::remove_file(&api_file);
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(dir.join("serve.stderr"))
            .expect("log");
        let child = Command::new(BIN)
            .env(METRICS_ENV.0, METRICS_ENV.1)
            .envs(env.iter().copied())
            .args(["hub", "--dir", dir.to_str().expect("utf8"), "serve"])
            .args(["--listen", listen, "--seed-ports", "0"])
            .args(extra)
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("spawn hub");
        let mut hub = Hub {
            dir: dir.to_owned(),
            child: Some(child),
            api: String::new(),
            seed_addr: String::new(),
        };
        wait_until("hub api.addr", Duration::from_secs(60), || {
            api_file.exists()
        });
        hub.api = format!(
            "https://{}",
            std::fs::read_to_string(&api_file).expect("api.addr").trim()
        );
        hub.seed_addr = std::fs::read_to_string(dir.join("run/seed.addr"))
            .expect("seed.addr")
            .trim()
            .to_owned();
        hub
    }

    pub fn cmd(&self, args: &[&str]) -> Output {
        hub_cmd(&self.dir, args)
    }

    pub fn add_user(&self, name: &str) -> String {
        let o = self.cmd(&["user", "add", name]);
        assert!(o.status.success(), "user add: {}", output_text(&o));
        String::from_utf8_lossy(&o.stdout).trim().to_owned()
    }

    /// The hub CA fingerprint, as `hub config --all` prints it.
    pub fn fingerprint(&self) -> String {
        let o = self.cmd(&["config", "--all"]);
        assert!(o.status.success(), "config: {}", output_text(&o));
        String::from_utf8_lossy(&o.stdout)
            .lines()
            .find_map(|l| l.strip_prefix("Hub CA fingerprint (SHA-256): "))
            .expect("fingerprint line")
            .trim()
            .to_owned()
    }

    /// `login` for `c` with a fresh key for `name`, pinning the hub CA.
    pub fn login(&self, c: &Client, name: &str) -> Output {
        let key = self.add_user(name);
        let fp = self.fingerprint();
        c.run(&["login", &self.api, "--key", &key, "--fingerprint", &fp])
    }

    /// A logged-in client with home under `root`.
    pub fn client(&self, root: &Path, name: &str) -> Client {
        let c = Client {
            home: root.join(name),
        };
        let o = self.login(&c, name);
        assert!(o.status.success(), "login: {}", output_text(&o));
        c
    }

    pub fn alive(&mut self) -> bool {
        self.child
            .as_mut()
            .is_some_and(|c| c.try_wait().ok().flatten().is_none())
    }

    /// SIGTERM and wait: a graceful stop.
    pub fn stop(&mut self) -> ExitStatus {
        let mut child = self.child.take().expect("running hub");
        signal(&child, "-TERM");
        wait_child(&mut child, Duration::from_secs(20), "hub shutdown")
    }

    pub fn stderr(&self) -> String {
        std::fs::read_to_string(self.dir.join("serve.stderr")).unwrap_or_default()
    }
}

impl Drop for Hub {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

pub fn hub_cmd(dir: &Path, args: &[&str]) -> Output {
    Command::new(BIN)
        .args(["hub", "--dir", dir.to_str().expect("utf8")])
        .args(args)
        .output()
        .expect("run swarmhub hub")
}

/// A client home.
pub struct Client {
    pub home: PathBuf,
}

impl Client {
    pub fn command(&self, args: &[&str]) -> Command {
        let mut c = Command::new(BIN);
        c.env("SWARMHUB_HOME", &self.home)
            .env(METRICS_ENV.0, METRICS_ENV.1)
            .args(args);
        c
    }

    pub fn run(&self, args: &[&str]) -> Output {
        self.command(args).output().expect("run swarmhub")
    }

    /// `pull IMAGE --peer-ports 0 EXTRA...`, spawned.
    pub fn spawn_pull(&self, image: &str, extra: &[&str]) -> Child {
        self.command(&["pull", image, "--peer-ports", "0"])
            .args(extra)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn pull")
    }

    pub fn pull(&self, image: &str, extra: &[&str]) -> Output {
        let child = self.spawn_pull(image, extra);
        child.wait_with_output().expect("pull output")
    }

    pub fn summary(&self) -> serde_json::Value {
        let raw = std::fs::read(self.home.join("run/last_pull.json")).expect("last_pull.json");
        serde_json::from_slice(&raw).expect("summary json")
    }

    pub fn image_file(&self, name: &str, tag: &str, file: &str) -> PathBuf {
        self.home.join("images").join(name).join(tag).join(file)
    }
}

/// A raw HTTP/1.0 GET to the hub API over TLS (trusting the hub CA), as
/// client `who` (with its certificate) or anonymously; returns (status, body).
/// A TLS connection to the hub's API as `who` (or with no client
/// certificate), and the `host:port` it went to.
fn hub_tls(
    hub: &Hub,
    who: Option<&Client>,
) -> (
    rustls::StreamOwned<rustls::ClientConnection, std::net::TcpStream>,
    String,
) {
    use rustls::pki_types::ServerName;
    use swarmhub_node::tls::creds::{CredentialFiles, KeyStore};
    let ca = swarmhub_node::tls::ca::HubCa::load(&hub.dir.join("ca")).expect("hub CA");
    let keys = who.map(|c| {
        let creds = CredentialFiles::new(c.home.join("tls"))
            .load()
            .expect("client credentials");
        KeyStore::new(creds.certified_key().expect("certified key"))
    });
    let config =
        swarmhub_node::tls::peer::hub_client_config(ca.cert_der(), keys).expect("TLS config");
    let host = hub.api.trim_start_matches("https://").to_owned();
    let tcp = std::net::TcpStream::connect(&host).expect("connect");
    tcp.set_read_timeout(Some(Duration::from_secs(20)))
        .expect("read timeout");
    let name = ServerName::try_from(swarmhub_node::tls::HUB_NAME).expect("name");
    let conn =
        rustls::ClientConnection::new(std::sync::Arc::new(config), name).expect("TLS client");
    (rustls::StreamOwned::new(conn, tcp), host)
}

pub fn http_get(
    hub: &Hub,
    who: Option<&Client>,
    path: &str,
    headers: &[(&str, &str)],
) -> (u16, Vec<u8>) {
    let (mut s, host) = hub_tls(hub, who);
    let mut req = format!("GET {path} HTTP/1.0\r\nHost: {host}\r\n");
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    req.push_str("\r\n");
    s.write_all(req.as_bytes()).expect("send");
    let mut resp = Vec::new();
    // The hub closes without close_notify at times; what was read is the answer.
    let _ = s.read_to_end(&mut resp);
    let split = resp
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("header end");
    let head = String::from_utf8_lossy(&resp[..split]).to_string();
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .expect("status");
    (status, resp[split + 4..].to_vec())
}

/// The port the hub's seeder listens on (to tell it apart in peer lists).
pub fn seed_port(hub: &Hub) -> u16 {
    hub.seed_addr
        .rsplit(':')
        .next()
        .and_then(|p| p.parse().ok())
        .expect("seeder port")
}

/// A free TCP port on 127.0.0.1 (free when this returns; good enough for tests).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("bind 127.0.0.1:0")
        .port()
}

/// A small tmpfs mounted for a test (root only), unmounted on drop.
pub struct Tmpfs {
    pub path: PathBuf,
}

impl Tmpfs {
    /// Mount `size` (e.g. "8m") at `path`, or say why not (not root, no mount).
    pub fn mount(path: &Path, size: &str) -> Result<Tmpfs, String> {
        let uid = Command::new("id")
            .arg("-u")
            .output()
            .map_err(|e| e.to_string())?;
        if String::from_utf8_lossy(&uid.stdout).trim() != "0" {
            return Err("not root: cannot mount a tmpfs".into());
        }
        std::fs::create_dir_all(path).map_err(|e| e.to_string())?;
        let o = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(path)
            .output()
            .map_err(|e| format!("mount: {e}"))?;
        if !o.status.success() {
            return Err(format!("mount -t tmpfs failed: {}", output_text(&o)));
        }
        Ok(Tmpfs {
            path: path.to_owned(),
        })
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.path).status();
    }
}

/// One HTTP/1.1 keep-alive connection to the hub's API over TLS, as `who`
/// (or with no client certificate): requests on it reuse the connection,
/// as a client's announces do.
pub struct HubConn {
    stream: rustls::StreamOwned<rustls::ClientConnection, std::net::TcpStream>,
    host: String,
}

impl HubConn {
    pub fn open(hub: &Hub, who: Option<&Client>) -> HubConn {
        let (stream, host) = hub_tls(hub, who);
        HubConn { stream, host }
    }

    /// `GET path` on this connection: status and body (read to its
    /// Content-Length, so the connection stays usable).
    pub fn get(&mut self, path: &str, headers: &[(&str, &str)]) -> (u16, Vec<u8>) {
        let mut req = format!("GET {path} HTTP/1.1\r\nHost: {}\r\n", self.host);
        for (k, v) in headers {
            req.push_str(&format!("{k}: {v}\r\n"));
        }
        req.push_str("\r\n");
        self.stream.write_all(req.as_bytes()).expect("send");
        let mut head = Vec::new();
        let mut byte = [0u8; 1];
        while !head.ends_with(b"\r\n\r\n") {
            self.stream
                .read_exact(&mut byte)
                .expect("response head (connection closed?)");
            head.push(byte[0]);
        }
        let head = String::from_utf8_lossy(&head).to_string();
        let status = head
            .split_whitespace()
            .nth(1)
            .and_then(|c| c.parse().ok())
            .expect("status");
        let len: usize = head
            .lines()
            .find_map(|l| {
                let (k, v) = l.split_once(':')?;
                k.eq_ignore_ascii_case("content-length")
                    .then(|| v.trim().parse().ok())?
            })
            .expect("a Content-Length (keep-alive answers carry one)");
        let mut body = vec![0u8; len];
        self.stream.read_exact(&mut body).expect("response body");
        (status, body)
    }
}
