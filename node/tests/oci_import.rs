//! `hub image import` details: multi-platform indexes and `--platform`,
//! registry credentials (`--username --password-stdin`, a Docker config
//! file) against a real `docker-registry` with htpasswd auth (skips, saying
//! why, without docker-registry and skopeo), and the mirror's API on an
//! image imported from a layout (no root, registry or containerd needed).

mod common;
mod oci_util;

use std::io::Write;
use std::process::{Command, Stdio};

use base64::Engine as _;
use common::*;
use oci_util::*;

#[test]
fn multi_platform_index_keeps_every_platform_or_the_named_ones() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let layout = tmp.path().join("multi");
    let (amd, amd_blobs) = make_layout(&layout, "x", &[raw_layer(vec![1u8; 4000])]);
    let (arm, arm_blobs) = make_layout(&layout, "x", &[raw_layer(vec![2u8; 4000])]);
    let size = |d: &str| {
        std::fs::metadata(layout.join("blobs/sha256").join(&d[7..]))
            .expect("blob")
            .len()
    };
    let entry = |d: &str, arch: &str| {
        serde_json::json!({
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "digest": d, "size": size(d),
            "platform": {"os": "linux", "architecture": arch},
        })
    };
    let index = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.index.v1+json",
        "manifests": [entry(&amd, "amd64"), entry(&arm, "arm64")],
    });
    let (idx, idx_size) = put_blob(&layout, &serde_json::to_vec(&index).expect("json"));
    let top = serde_json::json!({
        "schemaVersion": 2,
        "manifests": [{
            "mediaType": "application/vnd.oci.image.index.v1+json", "digest": idx, "size": idx_size,
            "annotations": {"org.opencontainers.image.ref.name": "1"},
        }],
    });
    std::fs::write(
        layout.join("index.json"),
        serde_json::to_vec(&top).expect("json"),
    )
    .expect("w");

    let hub = tmp.path().join("hub");
    let dir = layout.to_str().expect("utf8");
    let o = import_layout(&hub, dir, "multi/all:1");
    assert!(o.status.success(), "{}", output_text(&o));
    assert!(
        String::from_utf8_lossy(&o.stdout).contains(&idx),
        "{}",
        output_text(&o)
    );
    let cached = |tag: &str, d: &str| {
        hub.join("cache/multi.all")
            .join(tag)
            .join("blobs/sha256")
            .join(&d[7..])
            .is_file()
    };
    for d in amd_blobs.iter().chain(&arm_blobs).chain([&idx]) {
        assert!(cached("1", d), "{d} not kept");
    }

    let o = hub_cmd(
        &hub,
        &[
            "image",
            "import",
            "--oci-layout",
            dir,
            "--as",
            "multi/all:arm",
            "--platform",
            "linux/arm64",
        ],
    );
    assert!(o.status.success(), "{}", output_text(&o));
    let out = String::from_utf8_lossy(&o.stdout).to_string();
    assert!(
        !out.contains(&idx),
        "the filtered index kept its digest: {out}"
    );
    for d in &arm_blobs {
        assert!(cached("arm", d), "{d} not kept");
    }
    for d in &amd_blobs {
        assert!(!cached("arm", d), "{d} of the other platform kept");
    }

    let o = hub_cmd(
        &hub,
        &[
            "image",
            "import",
            "--oci-layout",
            dir,
            "--as",
            "multi/all:win",
            "--platform",
            "windows/amd64",
        ],
    );
    assert!(!o.status.success());
    assert!(
        output_text(&o).contains("linux/amd64, linux/arm64"),
        "{}",
        output_text(&o)
    );
    let o = hub_cmd(
        &hub,
        &[
            "image",
            "import",
            "--oci-layout",
            dir,
            "--platform",
            "linux",
        ],
    );
    assert!(
        !o.status.success() && output_text(&o).contains("OS/ARCH"),
        "{}",
        output_text(&o)
    );
}

#[test]
fn registry_import_with_credentials() {
    for tool in ["skopeo", "docker-registry"] {
        if !have(tool) {
            eprintln!("SKIP registry_import_with_credentials: {tool} not installed (apt-get install skopeo docker-registry)");
            return;
        }
    }
    let tmp = tempfile::tempdir().expect("tempdir");
    let work = tmp.path();
    let hash = bcrypt::hash("s3cret", 4).expect("bcrypt");
    let htpasswd = work.join("htpasswd");
    std::fs::write(&htpasswd, format!("bob:{hash}\n")).expect("htpasswd");
    let mut registry = Registry::start(work, "registry", Some(&htpasswd));
    let reg = registry.addr.clone();
    let (m, _) = make_layout(&work.join("l"), "1", &[raw_layer(vec![9u8; 70_000])]);
    let o = Command::new("skopeo")
        .args([
            "copy",
            "--preserve-digests",
            "--dest-tls-verify=false",
            "--dest-creds",
            "bob:s3cret",
        ])
        .arg(format!("oci:{}:1", work.join("l").display()))
        .arg(format!("docker://{reg}/team/app:1"))
        .output()
        .expect("skopeo");
    assert!(o.status.success(), "skopeo: {}", output_text(&o));

    let hub = work.join("hub");
    let image = format!("{reg}/team/app:1");
    let empty = work.join("no-docker-config.json");
    let o = hub_cmd(
        &hub,
        &[
            "image",
            "import",
            &image,
            "--insecure-registry",
            "--docker-config",
            empty.to_str().expect("utf8"),
        ],
    );
    assert!(!o.status.success());
    assert!(
        output_text(&o).contains("--username"),
        "{}",
        output_text(&o)
    );

    let mut child = Command::new(BIN)
        .args([
            "hub",
            "--dir",
            hub.to_str().expect("utf8"),
            "image",
            "import",
            &image,
        ])
        .args([
            "--insecure-registry",
            "--username",
            "bob",
            "--password-stdin",
        ])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("import");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(b"s3cret\n")
        .expect("password");
    let o = child.wait_with_output().expect("import");
    assert!(o.status.success(), "{}", output_text(&o));
    assert!(
        String::from_utf8_lossy(&o.stdout).contains(&m),
        "{}",
        output_text(&o)
    );

    // The same credentials from a Docker config file.
    let auth = base64::engine::general_purpose::STANDARD.encode("bob:s3cret");
    let cfg = work.join("config.json");
    std::fs::write(
        &cfg,
        format!(r#"{{"auths":{{"{reg}":{{"auth":"{auth}"}}}}}}"#),
    )
    .expect("w");
    let o = hub_cmd(
        &hub,
        &[
            "image",
            "import",
            &image,
            "--insecure-registry",
            "--docker-config",
            cfg.to_str().expect("utf8"),
            "--as",
            "team/app:copy",
        ],
    );
    assert!(o.status.success(), "{}", output_text(&o));
    let out = String::from_utf8_lossy(&o.stdout).to_string();
    assert!(
        out.contains("0 B fetched") || out.contains("reused"),
        "{out}"
    );
    registry.stop();
}

/// A raw HTTP/1.0 HEAD: (status, head).
fn raw_head(addr: &str, path: &str) -> (u16, String) {
    use std::io::Read;
    let mut s = std::net::TcpStream::connect(addr).expect("connect");
    s.write_all(format!("HEAD {path} HTTP/1.0\r\nHost: {addr}\r\n\r\n").as_bytes())
        .expect("send");
    let mut resp = String::new();
    let _ = s.read_to_string(&mut resp);
    let status = resp
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .expect("status");
    (status, resp.to_lowercase())
}

#[test]
fn mirror_serves_an_imported_layout_with_no_registry_nor_containerd() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let layer = vec![7u8; 600_000];
    let layout = tmp.path().join("l");
    let (m, blobs) = make_layout(&layout, "1", &[raw_layer(layer.clone())]);
    let hub_dir = tmp.path().join("hub");
    let o = import_layout(&hub_dir, layout.to_str().expect("utf8"), "team/tool:1");
    assert!(o.status.success(), "{}", output_text(&o));
    let hub = Hub::start(&hub_dir, &[]);
    let c = hub.client(tmp.path(), "c");
    let addr = format!("127.0.0.1:{}", free_port());
    let _mirror = Proc(
        c.command(&["mirror", "--listen", &addr, "--peer-ports", "0"])
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(tmp.path().join("mirror.log")).expect("log"))
            .spawn()
            .expect("mirror"),
    );
    wait_until("the mirror", std::time::Duration::from_secs(30), || {
        answers(&addr)
    });
    let (s, head) = raw_head(&addr, "/v2/");
    assert!(
        s == 200 && head.contains("docker-distribution-api-version: registry/2.0"),
        "{head}"
    );

    // By tag (with containerd's ns parameter): the image comes through the swarm.
    let (s, head) = raw_head(&addr, "/v2/team/tool/manifests/1?ns=registry.example");
    assert_eq!(s, 200, "{head}");
    assert!(
        head.contains(&format!("docker-content-digest: {m}")),
        "{head}"
    );
    let (s, head, body) = raw_get(&addr, "/v2/team/tool/manifests/1", &[]);
    assert_eq!(s, 200, "{head}");
    assert_eq!(sha256_bytes(&body), m);
    assert!(
        head.contains(&format!("content-length: {}", body.len())),
        "{head}"
    );
    let layer_digest = &blobs[0];
    let (s, head, body) = raw_get(&addr, &format!("/v2/team/tool/blobs/{layer_digest}"), &[]);
    assert_eq!(s, 200, "{head}");
    assert!(body == layer, "layer bytes differ");
    let (s, head) = raw_head(&addr, &format!("/v2/team/tool/blobs/{layer_digest}"));
    assert!(
        s == 200 && head.contains("content-length: 600000"),
        "{head}"
    );
    let (s, head, body) = raw_get(
        &addr,
        &format!("/v2/team/tool/blobs/{layer_digest}"),
        &[("Range", "bytes=-100")],
    );
    assert_eq!(s, 206, "{head}");
    assert!(
        head.contains("content-range: bytes 599900-599999/600000"),
        "{head}"
    );
    assert_eq!(body.len(), 100);
    let (s, head, _) = raw_get(
        &addr,
        &format!("/v2/team/tool/blobs/{layer_digest}"),
        &[("Range", "bytes=600000-")],
    );
    assert!(
        s == 416 && head.contains("content-range: bytes */600000"),
        "{head}"
    );

    // Unknown to the hub: 404 with the OCI code, so containerd falls back.
    let (s, _, body) = raw_get(&addr, "/v2/team/tool/manifests/2", &[]);
    assert_eq!(s, 404);
    assert!(String::from_utf8_lossy(&body).contains("MANIFEST_UNKNOWN"));
    let (s, _, body) = raw_get(
        &addr,
        &format!("/v2/team/tool/blobs/{}", sha256_bytes(b"x")),
        &[],
    );
    assert_eq!(s, 404);
    assert!(String::from_utf8_lossy(&body).contains("BLOB_UNKNOWN"));
    // Another repository does not get this image by tag.
    let (s, _, _) = raw_get(&addr, "/v2/team.tool/manifests/1", &[]);
    assert_eq!(s, 404);
    let (s, _, body) = raw_get(&addr, "/v2/team/%2e%2e/manifests/1", &[]);
    assert_eq!(s, 400);
    assert!(String::from_utf8_lossy(&body).contains("NAME_INVALID"));
    let stats = raw_get(&addr, "/swarmhub/stats", &[]).2;
    let v: serde_json::Value = serde_json::from_slice(&stats).expect("json");
    assert_eq!(v["pulls"], 1, "{v}");
    assert!(
        v["bytes_from_hub"].as_u64().unwrap_or(0) + v["bytes_from_http"].as_u64().unwrap_or(0)
            > 600_000,
        "{v}"
    );
}
