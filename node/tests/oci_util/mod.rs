//! Helpers of the container image tests: OCI layouts made on the spot,
//! a registry on loopback, raw HTTP.
#![allow(dead_code, unreachable_pub)]

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use crate::common::*;

pub fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

pub fn sha256_bytes(b: &[u8]) -> String {
    use sha2::{Digest, Sha256};
    format!("sha256:{}", hex(&Sha256::digest(b)))
}

/// A blob written into `layout`: (digest, size).
pub fn put_blob(layout: &Path, bytes: &[u8]) -> (String, u64) {
    let d = sha256_bytes(bytes);
    let p = layout.join("blobs/sha256").join(&d[7..]);
    std::fs::create_dir_all(p.parent().expect("parent")).expect("mkdir");
    std::fs::write(&p, bytes).expect("write blob");
    (d, bytes.len() as u64)
}

/// A gzip-compressed layer tar holding one file of `len` pseudo-random
/// bytes (compressed already, so skopeo pushes it unchanged): (blob, diff ID).
pub fn layer_tar(work: &Path, name: &str, len: u64, seed: u64) -> Layer {
    let src = work.join(format!("src-{name}"));
    std::fs::create_dir_all(&src).expect("mkdir");
    write_image(&src.join(format!("{name}.bin")), len, seed);
    let out = work.join(format!("{name}.tar"));
    let o = Command::new("tar")
        .args([
            "--sort=name",
            "--mtime=@0",
            "--owner=0",
            "--group=0",
            "--numeric-owner",
        ])
        .arg("-cf")
        .arg(&out)
        .arg("-C")
        .arg(&src)
        .arg(".")
        .output()
        .expect("tar");
    assert!(o.status.success(), "tar: {}", text(&o));
    let tar = std::fs::read(&out).expect("read tar");
    let o = Command::new("gzip")
        .args(["-n", "-c"])
        .arg(&out)
        .output()
        .expect("gzip");
    assert!(o.status.success(), "gzip: {}", text(&o));
    Layer {
        blob: o.stdout,
        diff_id: sha256_bytes(&tar),
        media_type: "application/vnd.oci.image.layer.v1.tar+gzip",
    }
}

/// A layer blob with its uncompressed digest.
#[derive(Clone)]
pub struct Layer {
    pub blob: Vec<u8>,
    pub diff_id: String,
    pub media_type: &'static str,
}

/// A layer that is raw bytes (not a tar), for the import-only test.
pub fn raw_layer(bytes: Vec<u8>) -> Layer {
    Layer {
        diff_id: sha256_bytes(&bytes),
        blob: bytes,
        media_type: "application/vnd.oci.image.layer.v1.tar",
    }
}

pub fn arch() -> &'static str {
    match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        other => other,
    }
}

/// An OCI layout at `layout` with one image tagged `tag` made of `layers`
/// (tars); returns (manifest digest, every blob digest).
pub fn make_layout(layout: &Path, tag: &str, layers: &[Layer]) -> (String, Vec<String>) {
    std::fs::create_dir_all(layout).expect("mkdir");
    std::fs::write(
        layout.join("oci-layout"),
        br#"{"imageLayoutVersion":"1.0.0"}"#,
    )
    .expect("w");
    let mut descs = Vec::new();
    let mut all = Vec::new();
    let mut diff_ids = Vec::new();
    for l in layers {
        let (d, size) = put_blob(layout, &l.blob);
        descs.push(serde_json::json!({
            "mediaType": l.media_type, "digest": d, "size": size
        }));
        all.push(d);
        diff_ids.push(l.diff_id.clone());
    }
    let config = serde_json::json!({
        "architecture": arch(), "os": "linux", "config": {},
        "rootfs": {"type": "layers", "diff_ids": diff_ids},
    });
    let (cd, cs) = put_blob(layout, &serde_json::to_vec(&config).expect("json"));
    all.push(cd.clone());
    let manifest = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": cd, "size": cs},
        "layers": descs,
    });
    let (md, ms) = put_blob(layout, &serde_json::to_vec(&manifest).expect("json"));
    all.push(md.clone());
    let index = serde_json::json!({
        "schemaVersion": 2,
        "manifests": [{
            "mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": md, "size": ms,
            "annotations": {"org.opencontainers.image.ref.name": tag},
        }],
    });
    std::fs::write(
        layout.join("index.json"),
        serde_json::to_vec(&index).expect("json"),
    )
    .expect("w");
    (md, all)
}

/// `hub image import --oci-layout LAYOUT --as NAME` on the hub in `hub`.
pub fn import_layout(hub: &Path, layout: &str, name: &str) -> std::process::Output {
    hub_cmd(
        hub,
        &["image", "import", "--oci-layout", layout, "--as", name],
    )
}

pub fn text(o: &std::process::Output) -> String {
    output_text(o)
}

/// A child process killed on drop.
pub struct Proc(pub Child);

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

pub fn have(tool: &str) -> bool {
    Command::new("sh")
        .args(["-c", &format!("command -v {tool}")])
        .stdout(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// Connect to `addr` and send a raw HTTP/1.0 `GET path` with `headers`.
pub fn send_get(addr: &str, path: &str, headers: &[(&str, &str)]) -> TcpStream {
    let mut s = TcpStream::connect(addr).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(120)))
        .expect("timeout");
    let mut req = format!("GET {path} HTTP/1.0\r\nHost: {addr}\r\n");
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    req.push_str("\r\n");
    s.write_all(req.as_bytes()).expect("send");
    s
}

/// A raw HTTP/1.0 GET: (status, head, body).
pub fn raw_get(addr: &str, path: &str, headers: &[(&str, &str)]) -> (u16, String, Vec<u8>) {
    let mut s = send_get(addr, path, headers);
    let mut resp = Vec::new();
    let _ = s.read_to_end(&mut resp);
    let split = resp
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("header end");
    let head = String::from_utf8_lossy(&resp[..split]).to_lowercase();
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .expect("status");
    (status, head, resp[split + 4..].to_vec())
}

pub fn answers(addr: &str) -> bool {
    TcpStream::connect(addr).is_ok() && raw_get(addr, "/v2/", &[]).0 == 200
}

pub fn stats(addr: &str) -> serde_json::Value {
    let (s, _, body) = raw_get(addr, "/swarmhub/stats", &[]);
    assert_eq!(s, 200);
    serde_json::from_slice(&body).expect("stats json")
}

pub fn n(v: &serde_json::Value, k: &str) -> u64 {
    v[k].as_u64().unwrap_or_else(|| panic!("{k} in {v}"))
}

pub fn skopeo_copy(src: &str, dst: &str) {
    let o = Command::new("skopeo")
        .args([
            "copy",
            "--src-tls-verify=false",
            "--dest-tls-verify=false",
            src,
            dst,
        ])
        .output()
        .expect("skopeo");
    assert!(o.status.success(), "skopeo copy {src} {dst}: {}", text(&o));
}

/// `docker-registry` on a free loopback port with its own config and
/// storage, with htpasswd (basic) auth when `htpasswd` is given.
pub struct Registry {
    pub proc: Option<Proc>,
    pub addr: String,
}

impl Registry {
    pub fn start(work: &Path, name: &str, htpasswd: Option<&Path>) -> Registry {
        let addr = format!("127.0.0.1:{}", free_port());
        let auth = htpasswd
            .map(|p| {
                format!(
                    "auth:\n  htpasswd:\n    realm: test\n    path: {}\n",
                    p.display()
                )
            })
            .unwrap_or_default();
        let cfg = work.join(format!("{name}.yml"));
        std::fs::write(
            &cfg,
            format!(
                "version: 0.1\nstorage:\n  filesystem:\n    rootdirectory: {}\nhttp:\n  addr: {addr}\n{auth}",
                work.join(format!("{name}-data")).display()
            ),
        )
        .expect("registry config");
        let child = Command::new("docker-registry")
            .arg("serve")
            .arg(&cfg)
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(work.join(format!("{name}.log"))).expect("log"))
            .spawn()
            .expect("docker-registry");
        let proc = Proc(child);
        wait_until("the registry", Duration::from_secs(30), || {
            TcpStream::connect(&addr).is_ok() && matches!(raw_get(&addr, "/v2/", &[]).0, 200 | 401)
        });
        Registry {
            proc: Some(proc),
            addr,
        }
    }

    pub fn stop(&mut self) {
        drop(self.proc.take());
    }
}
