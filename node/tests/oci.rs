//! Container images through the swarm: `hub image import` from an OCI layout
//! and from a real registry (Debian's docker-registry, fed by skopeo), the
//! mirror serving real containerd instances (`ctr image pull --hosts-dir`)
//! and skopeo, and hostile requests. The registry/containerd test needs root
//! and those tools, and skips, saying why, without them.

mod common;
mod oci_util;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use common::*;
use oci_util::*;

#[test]
fn layout_import_checks_every_blob_and_reuses_cached_ones() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let hub = tmp.path().join("hub");
    let base = vec![1u8; 300_000];
    let (d1, _) = make_layout(
        &tmp.path().join("l1"),
        "1",
        &[raw_layer(base.clone()), raw_layer(vec![2u8; 1000])],
    );
    let l1 = tmp.path().join("l1");
    let o = import_layout(&hub, &format!("{}:1", l1.display()), "team/app:1");
    assert!(o.status.success(), "{}", text(&o));
    let out = String::from_utf8_lossy(&o.stdout).to_string();
    assert!(out.contains("as team.app:1") && out.contains(&d1), "{out}");
    let o = hub_cmd(&hub, &["image", "list"]);
    let list = String::from_utf8_lossy(&o.stdout).to_string();
    assert!(list.contains("team.app:1") && list.contains(&d1), "{list}");
    assert!(hub
        .join("cache/team.app/1/blobs/sha256")
        .join(&d1[7..])
        .is_file());
    assert!(hub.join("cache/team.app/1/index.json").is_file());

    // A second image sharing the base layer copies it from the cache.
    let l2 = tmp.path().join("l2");
    make_layout(&l2, "2", &[raw_layer(base), raw_layer(vec![3u8; 1000])]);
    let o = import_layout(&hub, l2.to_str().expect("utf8"), "team/app:2");
    assert!(o.status.success(), "{}", text(&o));
    let out = String::from_utf8_lossy(&o.stdout).to_string();
    assert!(out.contains("293.0 KiB reused"), "{out}");
    assert!(!out.contains(" 0 B reused"), "{out}");

    // Hostile layouts: a blob that fails its digest, a missing blob, a digest with `..`.
    let bad = tmp.path().join("bad");
    let (_, blobs) = make_layout(&bad, "1", &[raw_layer(vec![4u8; 5000])]);
    let layer = bad.join("blobs/sha256").join(&blobs[0][7..]);
    std::fs::write(&layer, vec![5u8; 5000]).expect("corrupt");
    let o = import_layout(&hub, bad.to_str().expect("utf8"), "bad/a:1");
    assert!(!o.status.success());
    assert!(text(&o).contains("not to its digest"), "{}", text(&o));
    std::fs::remove_file(&layer).expect("rm");
    let o = import_layout(&hub, bad.to_str().expect("utf8"), "bad/a:1");
    assert!(!o.status.success());
    assert!(text(&o).contains("missing"), "{}", text(&o));
    let index = std::fs::read_to_string(bad.join("index.json")).expect("index");
    let v: serde_json::Value = serde_json::from_str(&index).expect("json");
    let md = v["manifests"][0]["digest"]
        .as_str()
        .expect("digest")
        .to_owned();
    std::fs::write(
        bad.join("index.json"),
        index.replace(&md, "sha256:../../../etc/passwd"),
    )
    .expect("w");
    let o = import_layout(&hub, bad.to_str().expect("utf8"), "bad/a:1");
    assert!(!o.status.success());
    assert!(text(&o).contains("../../../etc/passwd"), "{}", text(&o));
    // A top manifest whose bytes do not match the digest index.json gives it.
    let other = sha256_bytes(b"something else");
    std::fs::write(bad.join("index.json"), index.replace(&md, &other)).expect("w");
    std::fs::write(
        bad.join("blobs/sha256").join(&other[7..]),
        std::fs::read(bad.join("blobs/sha256").join(&md[7..])).expect("r"),
    )
    .expect("w");
    let o = import_layout(&hub, bad.to_str().expect("utf8"), "bad/a:1");
    assert!(!o.status.success());
    assert!(text(&o).contains("not to its digest"), "{}", text(&o));
    let o = hub_cmd(&hub, &["image", "list"]);
    assert!(
        !String::from_utf8_lossy(&o.stdout).contains("bad.a"),
        "a refused import left an image"
    );
    let o = import_layout(&hub, l1.to_str().expect("utf8"), "../x:1");
    assert!(
        !o.status.success() && text(&o).contains("repository name"),
        "{}",
        text(&o)
    );
}

struct Containerd {
    _proc: Proc,
    sock: PathBuf,
    hosts: PathBuf,
}

impl Containerd {
    fn start(dir: &Path) -> Containerd {
        std::fs::create_dir_all(dir).expect("mkdir");
        let sock = dir.join("containerd.sock");
        let d = dir.display();
        let config = format!(
            r#"version = 2
root = "{d}/root"
state = "{d}/state"
disabled_plugins = ["io.containerd.grpc.v1.cri", "io.containerd.snapshotter.v1.btrfs", "io.containerd.snapshotter.v1.zfs", "io.containerd.snapshotter.v1.devmapper", "io.containerd.snapshotter.v1.aufs", "io.containerd.snapshotter.v1.overlayfs"]
[grpc]
  address = "{d}/containerd.sock"
[ttrpc]
  address = "{d}/containerd.sock.ttrpc"
[debug]
  address = "{d}/debug.sock"
[metrics]
  address = ""
[plugins."io.containerd.internal.v1.opt"]
  path = "{d}/opt"
"#
        );
        std::fs::write(dir.join("config.toml"), config).expect("config");
        let log = std::fs::File::create(dir.join("containerd.log")).expect("log");
        let child = Command::new("containerd")
            .arg("--config")
            .arg(dir.join("config.toml"))
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("containerd");
        let p = Proc(child);
        wait_until("containerd socket", Duration::from_secs(30), || {
            sock.exists()
        });
        Containerd {
            _proc: p,
            sock,
            hosts: dir.join("hosts"),
        }
    }

    fn ctr(&self, args: &[&str]) -> Command {
        let mut c = Command::new("ctr");
        c.arg("--address").arg(&self.sock).args(args);
        c
    }

    fn spawn_pull(&self, image: &str) -> Child {
        self.ctr(&["image", "pull", "--snapshotter", "native", "--hosts-dir"])
            .arg(&self.hosts)
            .arg(image)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("ctr pull")
    }

    fn pull(&self, image: &str) {
        let o = self.spawn_pull(image).wait_with_output().expect("ctr pull");
        assert!(o.status.success(), "ctr pull {image}: {}", text(&o));
    }

    fn content(&self) -> String {
        let o = self
            .ctr(&["content", "ls"])
            .output()
            .expect("ctr content ls");
        assert!(o.status.success(), "{}", text(&o));
        String::from_utf8_lossy(&o.stdout).to_string()
    }
}

#[test]
fn containerd_pulls_through_the_mirror() {
    let root = Command::new("id")
        .arg("-u")
        .output()
        .map(|o| o.stdout == b"0\n")
        .unwrap_or(false);
    if !root {
        eprintln!("SKIP containerd_pulls_through_the_mirror: needs root (containerd)");
        return;
    }
    for tool in ["containerd", "ctr", "skopeo", "docker-registry", "tar"] {
        if !have(tool) {
            eprintln!("SKIP containerd_pulls_through_the_mirror: {tool} not installed (apt-get install containerd skopeo docker-registry)");
            return;
        }
    }
    let tmp = tempfile::tempdir().expect("tempdir");
    let work = tmp.path();
    let base = layer_tar(work, "base", 6 * MIB, 1);
    let mid = layer_tar(work, "mid", 2 * MIB, 2);
    let top1 = layer_tar(work, "top1", MIB, 3);
    let top2 = layer_tar(work, "top2", MIB, 4);
    let lone = layer_tar(work, "lone", 300_000, 5);
    let (m1, blobs1) = make_layout(&work.join("l1"), "1", &[base.clone(), mid, top1]);
    let (_m2, blobs2) = make_layout(&work.join("l2"), "2", &[base.clone(), top2]);
    make_layout(&work.join("l3"), "3", &[lone]);

    // A registry on loopback with its own config and storage.
    let mut registry = Registry::start(work, "registry", None);
    let reg = registry.addr.clone();
    for (l, t) in [("l1", "1"), ("l2", "2"), ("l3", "3")] {
        skopeo_copy(
            &format!("oci:{}:{t}", work.join(l).display()),
            &format!("docker://{reg}/test/app:{t}"),
        );
    }

    // The hub imports two of the three from the registry.
    let hub_dir = work.join("hub");
    std::fs::create_dir_all(&hub_dir).expect("mkdir");
    let hub = Hub::start(
        &hub_dir,
        &["--announce-interval", "2", "--max-upload-rate", "512K"],
    );
    for t in ["1", "2"] {
        let o = hub.cmd(&[
            "image",
            "import",
            &format!("{reg}/test/app:{t}"),
            "--insecure-registry",
        ]);
        assert!(o.status.success(), "import: {}", text(&o));
    }
    let list = String::from_utf8_lossy(&hub.cmd(&["image", "list"]).stdout).to_string();
    let raw = Command::new("skopeo")
        .args([
            "inspect",
            "--raw",
            "--tls-verify=false",
            &format!("docker://{reg}/test/app:1"),
        ])
        .output()
        .expect("inspect");
    assert!(
        list.contains("test.app:1") && list.contains(&m1),
        "{list} {m1} {}",
        text(&raw)
    );
    // Without --insecure-registry, plain HTTP is not used.
    let o = hub.cmd(&["image", "import", &format!("{reg}/test/app:3")]);
    assert!(!o.status.success(), "{}", text(&o));

    // Three clients, each with a mirror and its own containerd.
    let mut clients = Vec::new();
    for i in 0..3 {
        let c = hub.client(work, &format!("c{i}"));
        let addr = format!("127.0.0.1:{}", free_port());
        let mirror = Proc(
            c.command(&["mirror", "--listen", &addr, "--peer-ports", "0"])
                .stdout(Stdio::null())
                .stderr(std::fs::File::create(work.join(format!("mirror{i}.log"))).expect("log"))
                .spawn()
                .expect("mirror"),
        );
        wait_until("the mirror", Duration::from_secs(30), || answers(&addr));
        let ctd = Containerd::start(&work.join(format!("ctd{i}")));
        let o = c.run(&[
            "mirror",
            "setup",
            "--containerd",
            "--registry",
            &reg,
            "--server",
            &format!("http://{reg}"),
            "--listen",
            &addr,
            "--hosts-dir",
            ctd.hosts.to_str().expect("utf8"),
        ]);
        assert!(o.status.success(), "setup: {}", text(&o));
        clients.push((c, addr, mirror, ctd));
    }
    let o = clients[0].0.run(&["mirror", "--listen", "0.0.0.0:5999"]);
    assert!(
        !o.status.success() && text(&o).contains("loopback"),
        "{}",
        text(&o)
    );

    // All three pull image 1 at once.
    let image1 = format!("{reg}/test/app:1");
    let pulls: Vec<Child> = clients
        .iter()
        .map(|(_, _, _, ctd)| ctd.spawn_pull(&image1))
        .collect();
    for p in pulls {
        let o = p.wait_with_output().expect("ctr");
        assert!(o.status.success(), "ctr pull: {}", text(&o));
    }
    let (mut peers, mut hub_bytes) = (0, 0);
    for (_, addr, _, ctd) in &clients {
        let content = ctd.content();
        for d in &blobs1 {
            assert!(
                content.contains(d),
                "{d} missing from containerd's content:\n{content}"
            );
        }
        let s = stats(addr);
        eprintln!("mirror {addr}: {s}");
        assert!(n(&s, "blobs_served") >= 3, "{s}");
        peers += n(&s, "bytes_from_peers");
        hub_bytes += n(&s, "bytes_from_hub") + n(&s, "bytes_from_http");
    }
    eprintln!("image 1 over three mirrors: {peers} bytes from peers, {hub_bytes} from the hub");
    assert!(peers > hub_bytes, "peers {peers} <= hub {hub_bytes}");

    // A second image sharing the base layer: only the new layer is fetched.
    let (c0, addr0, _, ctd0) = &clients[0];
    let before = stats(addr0);
    ctd0.pull(&format!("{reg}/test/app:2"));
    let after = stats(addr0);
    let got = |s: &serde_json::Value| {
        n(s, "bytes_from_hub") + n(s, "bytes_from_peers") + n(s, "bytes_from_http")
    };
    let fetched = got(&after) - got(&before);
    let reused = n(&after, "bytes_reused_local") - n(&before, "bytes_reused_local");
    eprintln!("image 2 on client 0: {fetched} bytes fetched, {reused} reused");
    assert!(reused >= base.blob.len() as u64, "reused {reused}");
    assert!(fetched < base.blob.len() as u64 / 2, "fetched {fetched}");
    let content = ctd0.content();
    for d in &blobs2 {
        assert!(content.contains(d), "{d} missing");
    }

    let listing = String::from_utf8_lossy(&c0.run(&["images"]).stdout).to_string();
    assert!(
        listing.contains("test.app:1") && listing.contains(&m1),
        "{listing}"
    );

    // What the hub lacks falls through to the registry.
    let (_, addr2, _, ctd2) = &clients[2];
    let before = n(&stats(addr2), "not_found");
    ctd2.pull(&format!("{reg}/test/app:3"));
    assert!(n(&stats(addr2), "not_found") > before);

    // The registry gone, image 2 still pulls through the swarm.
    registry.stop();
    let (_, _, _, ctd1) = &clients[1];
    ctd1.pull(&format!("{reg}/test/app:2"));

    // skopeo from the mirror gives byte-identical blobs.
    let out = work.join("copy");
    skopeo_copy(
        &format!("docker://{addr0}/test/app:1"),
        &format!("oci:{}:1", out.display()),
    );
    for d in &blobs1 {
        let a = std::fs::read(work.join("l1/blobs/sha256").join(&d[7..])).expect("orig");
        let b = std::fs::read(out.join("blobs/sha256").join(&d[7..])).expect("copy");
        assert!(a == b, "{d} differs after skopeo copy from the mirror");
    }

    // Ranges, and hostile requests refused with OCI errors.
    let bd = &blobs1[0];
    let (s, head, body) = raw_get(
        addr0,
        &format!("/v2/test/app/blobs/{bd}"),
        &[("Range", "bytes=0-9")],
    );
    assert_eq!(s, 206, "{head}");
    assert!(
        head.contains(&format!("content-range: bytes 0-9/{}", base.blob.len())),
        "{head}"
    );
    assert!(
        head.contains("accept-ranges: bytes")
            && head.contains(&format!("docker-content-digest: {bd}")),
        "{head}"
    );
    assert_eq!(body, base.blob[..10]);
    let (s, head, body) = raw_get(
        addr0,
        &format!("/v2/test/app/blobs/{bd}"),
        &[("Range", "bytes=99999999999999999999-")],
    );
    assert_eq!(s, 416, "{head}");
    assert!(String::from_utf8_lossy(&body).contains("SIZE_INVALID"));
    let (s, _, body) = raw_get(addr0, "/v2/../../etc/manifests/passwd", &[]);
    assert_eq!(s, 400);
    assert!(String::from_utf8_lossy(&body).contains("NAME_INVALID"));
    let (s, _, body) = raw_get(
        addr0,
        &format!("/v2/test/app/manifests/{}", sha256_bytes(b"none")),
        &[],
    );
    assert_eq!(s, 404);
    assert!(String::from_utf8_lossy(&body).contains("MANIFEST_UNKNOWN"));
    let (s, head, _) = raw_get(addr0, &format!("/v2/test/app/manifests/{m1}"), &[]);
    assert_eq!(s, 200, "{head}");
    assert!(
        head.contains("application/vnd.oci.image.manifest.v1+json"),
        "{head}"
    );
    // A local blob that no longer matches its digest is never served.
    let top = c0
        .home
        .join("images/test.app/1/blobs/sha256")
        .join(&blobs1[2][7..]);
    let mut bytes = std::fs::read(&top).expect("read");
    bytes[100] ^= 0xff;
    std::fs::write(&top, &bytes).expect("corrupt");
    let (s, _, body) = raw_get(addr0, &format!("/v2/test/app/blobs/{}", blobs1[2]), &[]);
    assert_eq!(s, 404);
    let body = String::from_utf8_lossy(&body).to_string();
    assert!(body.contains("DIGEST_INVALID"), "{body}");
    let man = c0
        .home
        .join("images/test.app/1/blobs/sha256")
        .join(&m1[7..]);
    let mut bytes = std::fs::read(&man).expect("read");
    bytes[5] ^= 0x01;
    std::fs::write(&man, &bytes).expect("corrupt");
    let (s, _, body) = raw_get(addr0, "/v2/test/app/manifests/1", &[]);
    assert_eq!(s, 404);
    assert!(String::from_utf8_lossy(&body).contains("DIGEST_INVALID"));

    let o = c0.run(&["doctor"]);
    assert!(
        String::from_utf8_lossy(&o.stdout).contains("PASS mirror:"),
        "{}",
        text(&o)
    );

    // The same endpoint inside `swarmhub service` once enabled in config (on
    // the default address, so only when that port is free here).
    let c0 = Client {
        home: c0.home.clone(),
    };
    drop(clients);
    if std::net::TcpListener::bind("127.0.0.1:5050").is_err() {
        eprintln!("SKIP the service's mirror: 127.0.0.1:5050 is taken on this machine");
        return;
    }
    let o = c0.run(&["config", "--enable=mirror"]);
    assert!(o.status.success(), "{}", text(&o));
    let all = String::from_utf8_lossy(&c0.run(&["config", "--all"]).stdout).to_string();
    assert!(
        all.contains("Registry mirror in the service: Enabled"),
        "{all}"
    );
    let _service = Proc(
        c0.command(&["service", "--peer-ports", "0"])
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(work.join("service.log")).expect("log"))
            .spawn()
            .expect("service"),
    );
    wait_until("the service's mirror", Duration::from_secs(30), || {
        answers("127.0.0.1:5050")
    });
    let (s, head, _) = raw_get("127.0.0.1:5050", "/v2/test/app/manifests/2", &[]);
    assert_eq!(s, 200, "{head}");
}
