//! `hub image import` details: multi-platform indexes and `--platform`, and
//! registry credentials (`--username --password-stdin`, a Docker config
//! file) against a real `docker-registry` with htpasswd auth (skips, saying
//! why, without docker-registry and skopeo).

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
    let o = hub_cmd(
        &hub,
        &[
            "image",
            "import",
            "--oci-layout",
            dir,
            "--as",
            "multi/all:1",
        ],
    );
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
