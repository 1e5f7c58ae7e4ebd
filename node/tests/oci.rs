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

/// Reads a response as it arrives: the head, then the body in pieces.
struct Streaming {
    s: std::net::TcpStream,
    status: u16,
    head: String,
    body: Vec<u8>,
}

impl Streaming {
    /// Send `GET path` and read until the head and at least one body byte are in.
    fn get(addr: &str, path: &str, headers: &[(&str, &str)]) -> Streaming {
        use std::io::Read;
        let mut s = send_get(addr, path, headers);
        let mut got = Vec::new();
        let mut buf = [0u8; 4096];
        loop {
            let n = s.read(&mut buf).expect("read");
            assert!(
                n > 0,
                "closed before the body: {}",
                String::from_utf8_lossy(&got)
            );
            got.extend_from_slice(&buf[..n]);
            if let Some(split) = got.windows(4).position(|w| w == b"\r\n\r\n") {
                if got.len() > split + 4 {
                    let head = String::from_utf8_lossy(&got[..split]).to_lowercase();
                    let status = head
                        .split_whitespace()
                        .nth(1)
                        .and_then(|c| c.parse().ok())
                        .expect("status");
                    let body = got[split + 4..].to_vec();
                    return Streaming {
                        s,
                        status,
                        head,
                        body,
                    };
                }
            }
        }
    }

    /// The rest of the body, to the end of the connection.
    fn finish(mut self) -> Vec<u8> {
        use std::io::Read;
        self.s
            .read_to_end(&mut self.body)
            .expect("the rest of the body");
        self.body
    }
}

#[test]
fn the_mirror_streams_a_blob_while_its_image_downloads() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let work = tmp.path();
    // A 4 MiB layer of noise, from a hub seeding at 128 KiB/s: about 32 s,
    // long enough that the first bytes come mid-download on a loaded machine.
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    let noise: Vec<u8> = (0..4 * MIB)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect();
    let (m, blobs) = make_layout(&work.join("l"), "1", &[raw_layer(noise.clone())]);
    let hub_dir = work.join("hub");
    let layout = format!("{}:1", work.join("l").display());
    let o = import_layout(&hub_dir, &layout, "team/app:1");
    assert!(o.status.success(), "import: {}", text(&o));
    let hub = Hub::start(&hub_dir, &["--max-upload-rate", "128K"]);
    let c = hub.client(work, "c");
    let addr = format!("127.0.0.1:{}", free_port());
    let metrics = format!("127.0.0.1:{}", free_port());
    let _mirror = Proc(
        c.command(&[
            "mirror",
            "--listen",
            &addr,
            "--peer-ports",
            "0",
            "--metrics-listen",
            &metrics,
        ])
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(work.join("mirror.log")).expect("log"))
        .spawn()
        .expect("mirror"),
    );
    wait_until("the mirror", Duration::from_secs(30), || answers(&addr));

    // The manifest, asked for by tag, comes as soon as its own pieces verify.
    let (s, head, manifest) = raw_get(&addr, "/v2/team/app/manifests/1", &[]);
    assert_eq!(s, 200, "{head}");
    assert_eq!(sha256_bytes(&manifest), m);
    let layer = &blobs[0];
    let blob = Streaming::get(&addr, &format!("/v2/team/app/blobs/{layer}"), &[]);
    assert_eq!(blob.status, 200, "{}", blob.head);
    assert!(
        blob.head
            .contains(&format!("content-length: {}", noise.len())),
        "{}",
        blob.head
    );
    // Its first bytes are here, and the image is still downloading.
    let during = stats(&addr);
    eprintln!("first {} bytes in; mirror: {during}", blob.body.len());
    assert_eq!(n(&during, "pulls"), 0, "{during}");
    let pulling = during["pulling"].as_array().expect("pulling").clone();
    assert!(
        pulling.len() == 1 && pulling[0]["image"] == "team.app:1",
        "{during}"
    );
    assert!(n(&pulling[0], "percent") < 100, "{during}");
    assert!(noise.starts_with(&blob.body), "the first bytes differ");
    // `images` and `doctor` tell it is downloading.
    let images = String::from_utf8_lossy(&c.run(&["images"]).stdout).to_string();
    assert!(images.contains("team.app:1: downloading"), "{images}");
    let doctor = text(&c.run(&["doctor"]));
    assert!(doctor.contains("team.app:1: downloading"), "{doctor}");

    // A range of the same blob, mid-download: right bytes, once it is verified.
    let tail = format!("bytes={}-{}", noise.len() - 100, noise.len() - 1);
    let (s, head, body) = raw_get(
        &addr,
        &format!("/v2/team/app/blobs/{layer}"),
        &[("Range", &tail)],
    );
    assert_eq!(s, 206, "{head}");
    assert_eq!(body, noise[noise.len() - 100..]);
    let whole = blob.finish();
    assert!(whole == noise, "streamed {} bytes that differ", whole.len());

    // Once done: counted once, and the same numbers in Prometheus.
    wait_until("the pull to end", Duration::from_secs(60), || {
        n(&stats(&addr), "pulls") == 1
    });
    let after = stats(&addr);
    eprintln!("mirror: {after}");
    assert!(n(&after, "blobs_streamed") >= 2, "{after}");
    assert_eq!(n(&after, "streams_aborted"), 0, "{after}");
    assert!(
        after["pulling"].as_array().is_some_and(|p| p.is_empty()),
        "{after}"
    );
    let fetched = n(&after, "bytes_from_hub") + n(&after, "bytes_from_http");
    assert!(fetched >= noise.len() as u64, "{after}");
    let (s, _, text_metrics) = raw_get(&metrics, "/metrics", &[]);
    assert_eq!(s, 200);
    let text_metrics = String::from_utf8_lossy(&text_metrics).to_string();
    let metric = |name: &str| -> u64 {
        text_metrics
            .lines()
            .find_map(|l| l.strip_prefix(name)?.trim().parse().ok())
            .unwrap_or_else(|| panic!("{name} missing:\n{text_metrics}"))
    };
    assert_eq!(
        metric("swarmhub_client_mirror_served_bytes_total"),
        n(&after, "bytes_served")
    );
    assert_eq!(
        metric("swarmhub_client_mirror_streamed_blobs_total"),
        n(&after, "blobs_streamed")
    );
    assert_eq!(
        metric("swarmhub_client_mirror_pulls_total{result=\"complete\"}"),
        1
    );
    assert_eq!(metric("swarmhub_client_mirror_pulls_running"), 0);
    assert_eq!(
        metric("swarmhub_client_mirror_requests_total{kind=\"manifest\",status=\"200\"}"),
        n(&after, "manifests_served")
    );
    assert_eq!(
        metric("swarmhub_client_mirror_fetched_bytes_total{source=\"hub\"}"),
        n(&after, "bytes_from_hub")
    );
    // The pull's own families count into the same endpoint.
    assert!(
        text_metrics.contains("swarmhub_client_received_bytes_total{image=\"team.app:1\""),
        "{text_metrics}"
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
    // containerd may have its blobs before the pulls end (they are
    // streamed): the byte counts are final once the pulls are.
    for (_, addr, _, _) in &clients {
        wait_until("the mirror's pull", Duration::from_secs(120), || {
            n(&stats(addr), "pulls") == 1
        });
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
    wait_until("the second pull", Duration::from_secs(120), || {
        n(&stats(addr0), "pulls") == n(&before, "pulls") + 1
    });
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
