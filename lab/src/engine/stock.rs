//! Stock BitTorrent software on the same topology: opentracker in the hub
//! namespace, a private `.torrent` made with mktorrent (same piece size as
//! swarmhub's), the same engine seeding in the hub namespace and downloading
//! in every client namespace. Each engine runs a done-hook that touches
//! `cN/done`, which the lab polls for completion. Byte counts come from the
//! veth counters (wire bytes; the hub/peer split per client is not measured).
//!
//! Settings (none artificially limiting): no DHT, PEX or LSD; TCP only (no
//! uTP); encryption allowed, not required; no rate, connection or queue
//! limits; seed forever. The stock seeds do not super-seed (their default).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};

use super::{Ctx, Engine, EngineKind, Totals};
use crate::net::in_ns;
use crate::plan::HUB_ADDR;
use crate::procs;

/// opentracker's port in the hub namespace.
pub const TRACKER_PORT: u16 = 6969;

/// Debian packages each engine needs.
pub fn packages(kind: EngineKind) -> &'static [&'static str] {
    match kind {
        EngineKind::Swarmhub => &[],
        EngineKind::Qbittorrent => &["qbittorrent-nox", "opentracker", "mktorrent"],
        EngineKind::Transmission => &[
            "transmission-daemon",
            "transmission-cli",
            "opentracker",
            "mktorrent",
        ],
        EngineKind::Aria2 => &["aria2", "opentracker", "mktorrent"],
    }
}

/// Install the Debian packages `kind` needs (quietly; a no-op when present).
pub fn install(kind: EngineKind) -> Result<()> {
    let pkgs = packages(kind);
    if pkgs.is_empty() {
        return Ok(());
    }
    let status = |args: &[&str]| {
        Command::new("apt-get")
            .args(args)
            .env("DEBIAN_FRONTEND", "noninteractive")
            .stdout(std::process::Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    };
    let mut install = vec!["install", "-y", "-qq", "--no-install-recommends"];
    install.extend_from_slice(pkgs);
    // Try without `apt-get update` first (quick when the lists are fresh).
    let installed = status(&install) || (status(&["update", "-qq"]) && status(&install));
    if !installed {
        bail!("apt-get install {} failed", pkgs.join(" "));
    }
    Ok(())
}

/// A stock engine.
#[derive(Debug)]
pub struct Stock {
    kind: EngineKind,
    torrent: PathBuf,
    /// Client id -> index in `ctx.procs`.
    clients: BTreeMap<usize, usize>,
    reported: Vec<bool>,
}

impl Stock {
    /// Drive `kind`.
    pub fn new(kind: EngineKind) -> Stock {
        Stock {
            kind,
            torrent: PathBuf::new(),
            clients: BTreeMap::new(),
            reported: Vec::new(),
        }
    }

    fn data_dir(ctx: &Ctx, id: usize) -> PathBuf {
        ctx.work.join(format!("c{id}/data"))
    }

    /// Write `cN/done.sh`, which touches `cN/done`; returns the script path.
    fn done_hook(ctx: &Ctx, id: usize) -> Result<PathBuf> {
        use std::os::unix::fs::PermissionsExt;
        let dir = ctx.host_dir(id)?;
        let script = dir.join("done.sh");
        let flag = dir.join("done");
        std::fs::write(&script, format!("#!/bin/sh\ntouch '{}'\n", flag.display()))?;
        std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755))?;
        Ok(script)
    }

    /// The command running the engine on host `id` (0: the seed).
    fn command(&self, ctx: &Ctx, id: usize) -> Result<Command> {
        let ns = ctx.names.host_ns(id);
        let home = ctx.host_dir(id)?;
        let seed = id == 0;
        let save = if seed {
            ctx.work.clone()
        } else {
            let d = Self::data_dir(ctx, id);
            std::fs::create_dir_all(&d)?;
            d
        };
        let hook = Self::done_hook(ctx, id)?;
        let mut c = match self.kind {
            EngineKind::Qbittorrent => {
                write_qbittorrent_conf(&home, &hook)?;
                let mut c = in_ns(&ns, "qbittorrent-nox");
                c.arg(format!("--profile={}", home.display()))
                    .arg("--webui-port=8080")
                    .arg(format!("--save-path={}", save.display()));
                if seed {
                    c.arg("--skip-hash-check");
                }
                c.arg(&self.torrent);
                c
            }
            EngineKind::Aria2 => {
                let mut c = in_ns(&ns, "aria2c");
                c.args(ARIA2_ARGS)
                    .arg(format!("--dir={}", save.display()))
                    .arg(format!("--on-bt-download-complete={}", hook.display()));
                if seed {
                    c.arg("--check-integrity=true");
                }
                c.arg(&self.torrent);
                c
            }
            EngineKind::Transmission => {
                write_transmission_settings(&home, &save, &hook)?;
                let mut c = in_ns(&ns, "transmission-daemon");
                c.arg("--foreground")
                    .arg("--config-dir")
                    .arg(home.join("transmission"));
                c
            }
            EngineKind::Swarmhub => bail!("not a stock engine"),
        };
        c.env("HOME", &home);
        Ok(c)
    }

    /// transmission-daemon takes torrents over RPC once it listens.
    fn transmission_add(&self, ctx: &Ctx, id: usize) -> Result<()> {
        if self.kind != EngineKind::Transmission {
            return Ok(());
        }
        let ns = ctx.names.host_ns(id);
        let start = Instant::now();
        loop {
            let out = in_ns(&ns, "transmission-remote")
                .args(["127.0.0.1:9091", "-a"])
                .arg(&self.torrent)
                .output()
                .context("running transmission-remote")?;
            if out.status.success() {
                break;
            }
            ctx.check()?;
            if start.elapsed() > Duration::from_secs(30) {
                bail!(
                    "host {id}: transmission-remote -a failed: {}",
                    String::from_utf8_lossy(&out.stderr).trim()
                );
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        if id == 0 {
            // Check the seed's data, then start it.
            for args in [["-t", "all", "-v"], ["-t", "all", "-s"]] {
                in_ns(&ns, "transmission-remote")
                    .arg("127.0.0.1:9091")
                    .args(args)
                    .output()
                    .context("running transmission-remote")?;
            }
        }
        Ok(())
    }
}

/// aria2c options common to the seed and the clients.
const ARIA2_ARGS: &[&str] = &[
    "--enable-dht=false",
    "--enable-dht6=false",
    "--bt-enable-lpd=false",
    "--enable-peer-exchange=false",
    "--bt-max-peers=0",
    "--seed-ratio=0.0",
    "--listen-port=6881",
    "--bt-require-crypto=false",
    "--file-allocation=none",
    "--disable-ipv6=true",
    "--console-log-level=warn",
    "--summary-interval=0",
    "--max-overall-upload-limit=0",
    "--max-overall-download-limit=0",
    "--bt-request-peer-speed-limit=100M",
];

fn write_qbittorrent_conf(profile: &Path, hook: &Path) -> Result<()> {
    let dir = profile.join("qBittorrent/config");
    std::fs::create_dir_all(&dir)?;
    let conf = format!(
        "[LegalNotice]\nAccepted=true\n\n\
         [AutoRun]\nenabled=true\nprogram={hook}\n\n\
         [BitTorrent]\n\
         Session\\DHTEnabled=false\nSession\\PeXEnabled=false\nSession\\LSDEnabled=false\n\
         Session\\Encryption=0\nSession\\BTProtocol=TCP\nSession\\Port=6881\n\
         Session\\QueueingSystemEnabled=false\n\
         Session\\MaxConnections=-1\nSession\\MaxConnectionsPerTorrent=-1\n\
         Session\\MaxUploads=-1\nSession\\MaxUploadsPerTorrent=-1\n\
         Session\\GlobalMaxRatio=-1\nSession\\AnonymousModeEnabled=false\n\n\
         [Preferences]\nConnection\\ResolvePeerCountries=false\nWebUI\\Port=8080\nWebUI\\LocalHostAuth=false\n\
         WebUI\\HostHeaderValidation=false\nGeneral\\UseRandomPort=false\n",
        hook = hook.display()
    );
    std::fs::write(dir.join("qBittorrent.conf"), conf)?;
    Ok(())
}

fn write_transmission_settings(home: &Path, save: &Path, hook: &Path) -> Result<()> {
    let dir = home.join("transmission");
    std::fs::create_dir_all(&dir)?;
    let settings = serde_json::json!({
        "dht-enabled": false,
        "pex-enabled": false,
        "lpd-enabled": false,
        "utp-enabled": false,
        "encryption": 0,
        "peer-limit-global": 1000,
        "peer-limit-per-torrent": 1000,
        "peer-port": 51413,
        "port-forwarding-enabled": false,
        "download-dir": save,
        "incomplete-dir-enabled": false,
        "rpc-enabled": true,
        "rpc-bind-address": "127.0.0.1",
        "rpc-port": 9091,
        "rpc-authentication-required": false,
        "rpc-whitelist-enabled": false,
        "rpc-host-whitelist-enabled": false,
        "script-torrent-done-enabled": true,
        "script-torrent-done-filename": hook,
        "speed-limit-up-enabled": false,
        "speed-limit-down-enabled": false,
        "ratio-limit-enabled": false,
        "idle-seeding-limit-enabled": false,
        "download-queue-enabled": false,
        "seed-queue-enabled": false,
        "start-added-torrents": true,
        "message-level": 1,
    });
    std::fs::write(
        dir.join("settings.json"),
        serde_json::to_vec_pretty(&settings)?,
    )?;
    Ok(())
}

/// End (exclusive) of the bencoded value starting at `at`.
fn bencode_end(b: &[u8], at: usize) -> Option<usize> {
    match *b.get(at)? {
        b'i' => Some(at + b[at..].iter().position(|&c| c == b'e')? + 1),
        b'l' | b'd' => {
            let mut i = at + 1;
            while *b.get(i)? != b'e' {
                i = bencode_end(b, i)?;
            }
            Some(i + 1)
        }
        b'0'..=b'9' => {
            let colon = at + b[at..].iter().position(|&c| c == b':')?;
            let len: usize = std::str::from_utf8(&b[at..colon]).ok()?.parse().ok()?;
            let end = colon.checked_add(1 + len)?;
            (end <= b.len()).then_some(end)
        }
        _ => None,
    }
}

/// The info hash (hex) of a `.torrent`: SHA-1 of its bencoded `info` value.
pub fn info_hash_hex(torrent: &[u8]) -> Option<String> {
    use sha1::{Digest, Sha1};
    if torrent.first() != Some(&b'd') {
        return None;
    }
    let mut i = 1;
    while *torrent.get(i)? != b'e' {
        let key_end = bencode_end(torrent, i)?;
        let value_end = bencode_end(torrent, key_end)?;
        if &torrent[i..key_end] == b"4:info" {
            let digest = Sha1::digest(&torrent[key_end..value_end]);
            return Some(digest.iter().map(|b| format!("{b:02x}")).collect());
        }
        i = value_end;
    }
    None
}

fn tool(program: &str, args: &[&str], cwd: &Path) -> Result<()> {
    let out = Command::new(program)
        .args(args)
        .current_dir(cwd)
        .output()
        .with_context(|| format!("running {program} (install it, or pass --install)"))?;
    if !out.status.success() {
        bail!(
            "`{program} {}` failed: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(())
}

impl Engine for Stock {
    fn prepare(&mut self, ctx: &mut Ctx) -> Result<()> {
        let hub = ctx.host_dir(0)?;
        // opentracker drops to `nobody` and chroots into its working folder.
        let mut tracker = in_ns(&ctx.names.host_ns(0), "opentracker");
        let port = TRACKER_PORT.to_string();
        tracker
            .args(["-i", &HUB_ADDR.to_string(), "-p", &port, "-P", &port])
            .current_dir(&hub);
        self.torrent = ctx.work.join("lab.torrent");
        let log2 = ctx.plan.piece_bytes.trailing_zeros().to_string();
        let announce = format!("http://{HUB_ADDR}:{TRACKER_PORT}/announce");
        let image = ctx.image.to_string_lossy().into_owned();
        let torrent = self.torrent.to_string_lossy().into_owned();
        tool(
            "mktorrent",
            &["-p", "-a", &announce, "-l", &log2, "-o", &torrent, &image],
            &ctx.work,
        )?;
        // Debian's opentracker serves only whitelisted info hashes.
        let hash = info_hash_hex(&std::fs::read(&self.torrent)?)
            .context("mktorrent wrote a torrent without an info dictionary")?;
        std::fs::write(hub.join("whitelist"), format!("{hash}\n"))?;
        // It chroots into -d, so the list's path is inside that folder.
        tracker.arg("-d").arg(&hub).args(["-w", "/whitelist"]);
        let p = procs::spawn("opentracker", tracker, &ctx.work.join("tracker.log"), false)
            .context("starting opentracker (install it, or pass --install)")?;
        ctx.procs.add(p);

        let seed = self.command(ctx, 0)?;
        let log = ctx.log(0);
        let p = procs::spawn("seed", seed, &log, false).context("starting the seed")?;
        ctx.procs.add(p);
        self.transmission_add(ctx, 0)?;
        // Give the seed time to check its data and announce before clients come.
        std::thread::sleep(Duration::from_secs(5));
        ctx.check()?;
        self.reported = vec![false; ctx.plan.clients.len() + 1];
        Ok(())
    }

    fn start_client(&mut self, ctx: &mut Ctx, id: usize) -> Result<()> {
        let c = self.command(ctx, id)?;
        let p = procs::spawn(&format!("client {id}"), c, &ctx.log(id), false)
            .with_context(|| format!("starting client {id}"))?;
        self.clients.insert(id, ctx.procs.add(p));
        self.transmission_add(ctx, id)
    }

    fn poll_complete(&mut self, ctx: &mut Ctx) -> Result<Vec<(usize, Instant)>> {
        let now = Instant::now();
        let mut done = Vec::new();
        for &id in self.clients.keys() {
            if !self.reported[id] && ctx.work.join(format!("c{id}/done")).exists() {
                self.reported[id] = true;
                done.push((id, now));
            }
        }
        Ok(done)
    }

    fn exited(&mut self, ctx: &mut Ctx, id: usize) -> bool {
        self.clients
            .get(&id)
            .is_some_and(|&i| !ctx.procs.get_mut(i).alive())
    }

    fn stop_client(&mut self, ctx: &mut Ctx, id: usize) {
        if let Some(&i) = self.clients.get(&id) {
            ctx.procs.get_mut(i).stop(Duration::from_secs(10));
        }
    }

    fn finish(&mut self, ctx: &mut Ctx) -> Result<Totals> {
        ctx.procs.stop_all(Duration::from_secs(10));
        Ok(Totals::default())
    }

    fn client_file(&self, ctx: &Ctx, id: usize) -> PathBuf {
        let name = ctx.image.file_name().unwrap_or_default();
        Self::data_dir(ctx, id).join(name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn info_hash_is_the_sha1_of_the_info_value() {
        use sha1::{Digest, Sha1};
        let info = b"d6:lengthi5e4:name1:x12:piece lengthi16384e6:pieces0:e";
        let mut t = b"d8:announce3:url4:info".to_vec();
        t.extend_from_slice(info);
        t.extend_from_slice(b"e");
        let want: String = Sha1::digest(info)
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        assert_eq!(info_hash_hex(&t).as_deref(), Some(want.as_str()));
        assert_eq!(info_hash_hex(b"d8:announce3:urle"), None);
        assert_eq!(info_hash_hex(b"d4:infod"), None, "truncated");
        assert_eq!(bencode_end(b"li1e3:abce", 0), Some(10));
        assert_eq!(bencode_end(b"9:ab", 0), None);
    }

    #[test]
    fn configs_switch_off_discovery_and_limits() {
        let dir = tempfile::tempdir().expect("tempdir");
        let hook = dir.path().join("done.sh");
        write_qbittorrent_conf(dir.path(), &hook).expect("qbt");
        let conf = std::fs::read_to_string(dir.path().join("qBittorrent/config/qBittorrent.conf"))
            .expect("read");
        for line in [
            "Accepted=true",
            "Session\\DHTEnabled=false",
            "Session\\PeXEnabled=false",
            "Session\\LSDEnabled=false",
            "Session\\MaxConnectionsPerTorrent=-1",
            "Session\\QueueingSystemEnabled=false",
        ] {
            assert!(conf.lines().any(|l| l == line), "{line} missing");
        }
        assert!(conf.contains(&format!("program={}", hook.display())));
        write_transmission_settings(dir.path(), dir.path(), &hook).expect("tr");
        let v: serde_json::Value = serde_json::from_str(
            &std::fs::read_to_string(dir.path().join("transmission/settings.json")).expect("read"),
        )
        .expect("json");
        assert_eq!(v["dht-enabled"], false);
        assert_eq!(v["pex-enabled"], false);
        assert_eq!(v["script-torrent-done-enabled"], true);
        assert!(ARIA2_ARGS.contains(&"--enable-peer-exchange=false"));
        assert!(
            ARIA2_ARGS.contains(&"--seed-ratio=0.0"),
            "aria2 must keep seeding"
        );
    }
}
