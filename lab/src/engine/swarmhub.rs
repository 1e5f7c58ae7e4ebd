//! swarmhub on the lab: the hub (`hub serve`: API, tracker, super-seeding
//! seeder) in the hub namespace, one enrolled client per client namespace
//! (`login` with a one-time key and the pinned CA fingerprint, then
//! `pull --wait-after-exit`). Peer links are mutual TLS, the default.
//! A client's completion is the moment it prints its `pulled ...` line (after
//! the per-file SHA-256 check); byte counts come from `HOME/run/last_pull.json`,
//! which the client rewrites when it stops seeding.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use serde::Deserialize;

use super::{ClientBytes, Ctx, Engine, Totals};
use crate::net::in_ns;
use crate::plan::HUB_ADDR;
use crate::procs;

/// Image name on the hub.
pub const IMAGE: &str = "lab:1";
/// API and tracker port of the hub.
pub const API_PORT: u16 = 7070;

/// The swarmhub engine.
#[derive(Debug)]
pub struct Swarmhub {
    bin: PathBuf,
    fallback_after_s: u64,
    /// Client id -> index in `ctx.procs`.
    clients: BTreeMap<usize, usize>,
    done_tx: mpsc::Sender<(usize, Instant)>,
    done_rx: mpsc::Receiver<(usize, Instant)>,
}

/// The fields of `last_pull.json` the lab uses.
#[derive(Debug, Deserialize)]
struct PullSummary {
    from_hub: u64,
    from_peers: u64,
    from_http: u64,
    uploaded: u64,
}

impl Swarmhub {
    /// Use the `swarmhub` binary at `bin`.
    pub fn new(bin: PathBuf, fallback_after_s: u64) -> Swarmhub {
        let (done_tx, done_rx) = mpsc::channel();
        Swarmhub {
            bin,
            fallback_after_s,
            clients: BTreeMap::new(),
            done_tx,
            done_rx,
        }
    }

    fn bin(&self) -> &str {
        self.bin.to_str().unwrap_or("swarmhub")
    }

    /// Run `swarmhub hub --dir DIR ARGS` in the root namespace (no network needed).
    fn hub_cmd(&self, dir: &Path, args: &[&str]) -> Result<String> {
        let out = Command::new(&self.bin)
            .arg("hub")
            .arg("--dir")
            .arg(dir)
            .args(args)
            .stdin(Stdio::null())
            .output()
            .with_context(|| format!("running {}", self.bin.display()))?;
        if !out.status.success() {
            bail!(
                "`swarmhub hub {}` failed: {}",
                args.join(" "),
                String::from_utf8_lossy(&out.stderr).trim()
            );
        }
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    }

    fn login(&self, ctx: &Ctx, id: usize, hub_dir: &Path, fingerprint: &str) -> Result<()> {
        let key = self.hub_cmd(hub_dir, &["user", "add", &format!("c{id}")])?;
        let home = ctx.host_dir(id)?;
        let url = format!("https://{HUB_ADDR}:{API_PORT}");
        let out = in_ns(&ctx.names.host_ns(id), self.bin())
            .arg("--home")
            .arg(&home)
            .args([
                "login",
                &url,
                "--key",
                key.trim(),
                "--fingerprint",
                fingerprint,
            ])
            .stdin(Stdio::null())
            .output()
            .context("running swarmhub login")?;
        if !out.status.success() {
            bail!(
                "client {id}: login failed: {}",
                String::from_utf8_lossy(&out.stderr).trim()
            );
        }
        Ok(())
    }
}

/// Forward a client's stdout to its log; report the `pulled ...` line.
fn watch_stdout(
    id: usize,
    out: impl std::io::Read + Send + 'static,
    log: PathBuf,
    done: mpsc::Sender<(usize, Instant)>,
) {
    std::thread::spawn(move || {
        let mut file = std::fs::File::options().append(true).open(&log).ok();
        for line in BufReader::new(out).lines() {
            let Ok(line) = line else { break };
            let now = Instant::now();
            if line.starts_with("pulled ") {
                let _ = done.send((id, now));
            }
            if let Some(f) = file.as_mut() {
                let _ = writeln!(f, "{line}");
            }
        }
    });
}

impl Engine for Swarmhub {
    fn prepare(&mut self, ctx: &mut Ctx) -> Result<()> {
        let hub_dir = ctx.host_dir(0)?;
        self.hub_cmd(
            &hub_dir,
            &["image", "add", IMAGE, &ctx.image.to_string_lossy()],
        )?;
        if !ctx.plan.p2p {
            self.hub_cmd(&hub_dir, &["config", "--disable", "p2p"])?;
        }
        let config = self.hub_cmd(&hub_dir, &["config", "--all"])?;
        let fingerprint = config
            .lines()
            .find_map(|l| l.strip_prefix("Hub CA fingerprint (SHA-256): "))
            .context("`swarmhub hub config --all` printed no CA fingerprint")?
            .trim()
            .to_string();
        let mut serve = in_ns(&ctx.names.host_ns(0), self.bin());
        serve
            .arg("hub")
            .arg("--dir")
            .arg(&hub_dir)
            .args(["serve", "--listen", &format!("0.0.0.0:{API_PORT}")])
            .args([
                "--announce-interval",
                &ctx.plan.announce_interval_s.to_string(),
            ]);
        let log = ctx.log(0);
        let p = procs::spawn("hub", serve, &log, false).context("starting the hub")?;
        ctx.procs.add(p);
        let api = hub_dir.join("run/api.addr");
        ctx.wait_for("the hub to listen", Duration::from_secs(60), &log, || {
            api.exists()
        })?;
        for c in ctx.plan.clients.clone() {
            ctx.check()?;
            self.login(ctx, c.id, &hub_dir, &fingerprint)?;
        }
        Ok(())
    }

    fn start_client(&mut self, ctx: &mut Ctx, id: usize) -> Result<()> {
        let home = ctx.host_dir(id)?;
        let mut pull = in_ns(&ctx.names.host_ns(id), self.bin());
        pull.arg("--home")
            .arg(&home)
            .args(["pull", IMAGE, "--wait-after-exit", "--out"])
            .arg(home.join("out"))
            .args(["--fallback-after", &self.fallback_after_s.to_string()]);
        let log = ctx.log(id);
        let mut p = procs::spawn(&format!("client {id}"), pull, &log, true)
            .with_context(|| format!("starting client {id}"))?;
        if let Some(out) = p.child.stdout.take() {
            watch_stdout(id, out, log, self.done_tx.clone());
        }
        self.clients.insert(id, ctx.procs.add(p));
        Ok(())
    }

    fn poll_complete(&mut self, _ctx: &mut Ctx) -> Result<Vec<(usize, Instant)>> {
        Ok(self.done_rx.try_iter().collect())
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
        let ids: Vec<usize> = self.clients.keys().copied().collect();
        for &id in &ids {
            if let Some(&i) = self.clients.get(&id) {
                if ctx.procs.get_mut(i).alive() {
                    procs::kill_pid(ctx.procs.get_mut(i).child.id() as i32, false);
                }
            }
        }
        for id in ids {
            self.stop_client(ctx, id);
        }
        let mut totals = Totals {
            per_client_sources: true,
            ..Totals::default()
        };
        for c in &ctx.plan.clients {
            let path = ctx.work.join(format!("c{}/run/last_pull.json", c.id));
            let b = match std::fs::read_to_string(&path)
                .ok()
                .and_then(|t| serde_json::from_str::<PullSummary>(&t).ok())
            {
                Some(s) => ClientBytes {
                    down_hub: s.from_hub,
                    down_peers: s.from_peers,
                    down_http: s.from_http,
                    up: s.uploaded,
                },
                None => ClientBytes::default(),
            };
            totals.hub_up += b.down_hub + b.down_http;
            totals.clients.push(b);
        }
        Ok(totals)
    }

    fn client_file(&self, ctx: &Ctx, id: usize) -> PathBuf {
        let name = ctx.image.file_name().unwrap_or_default();
        ctx.work.join(format!("c{id}/out")).join(name)
    }
}
