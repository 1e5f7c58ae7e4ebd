//! What runs on the lab's hosts: swarmhub itself, or stock BitTorrent
//! software (qBittorrent, Transmission, aria2 with opentracker) for comparison.
//! The runner drives every engine the same way: prepare the hub, launch
//! clients at their join times, poll for completions, stop clients at their
//! departures, and collect byte counts at the end.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};

use crate::net::Names;
use crate::plan::LabPlan;
use crate::procs::Procs;

pub mod stock;
pub mod swarmhub;

/// Which software runs on the hosts.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum EngineKind {
    /// swarmhub hub and clients (mutual TLS, enrolled clients).
    Swarmhub,
    /// qbittorrent-nox (libtorrent-rasterbar) seed and clients, opentracker.
    Qbittorrent,
    /// transmission-daemon seed and clients, opentracker.
    Transmission,
    /// aria2c seed and clients, opentracker.
    Aria2,
}

impl EngineKind {
    /// Lower-case name, as on the command line and in `summary.json`.
    pub fn name(self) -> &'static str {
        match self {
            EngineKind::Swarmhub => "swarmhub",
            EngineKind::Qbittorrent => "qbittorrent",
            EngineKind::Transmission => "transmission",
            EngineKind::Aria2 => "aria2",
        }
    }
}

/// Everything an engine works with.
#[derive(Debug)]
pub struct Ctx {
    /// Namespace names.
    pub names: Names,
    /// Hosts and rates.
    pub plan: LabPlan,
    /// Scratch folder of the run (hub and client state, logs).
    pub work: PathBuf,
    /// The image file the hub serves.
    pub image: PathBuf,
    /// Processes started so far.
    pub procs: Procs,
    /// Set by SIGINT/SIGTERM.
    pub interrupted: Arc<AtomicBool>,
}

impl Ctx {
    /// Fail if the run was interrupted.
    pub fn check(&self) -> Result<()> {
        if self.interrupted.load(Ordering::Relaxed) {
            bail!("interrupted");
        }
        Ok(())
    }

    /// Folder of host `id` (created).
    pub fn host_dir(&self, id: usize) -> Result<PathBuf> {
        let d = self.work.join(if id == 0 {
            "hub".into()
        } else {
            format!("c{id}")
        });
        std::fs::create_dir_all(&d).with_context(|| format!("creating {}", d.display()))?;
        Ok(d)
    }

    /// Log file of host `id`.
    pub fn log(&self, id: usize) -> PathBuf {
        self.work.join(if id == 0 {
            "hub.log".into()
        } else {
            format!("c{id}.log")
        })
    }

    /// Poll `ready` every 100 ms until it holds, the time limit passes (an
    /// error naming `what` and `log`) or the run is interrupted.
    pub fn wait_for(
        &self,
        what: &str,
        limit: Duration,
        log: &Path,
        mut ready: impl FnMut() -> bool,
    ) -> Result<()> {
        let start = Instant::now();
        while !ready() {
            self.check()?;
            if start.elapsed() > limit {
                bail!(
                    "timed out after {} s waiting for {what}; see {}",
                    limit.as_secs(),
                    log.display()
                );
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        Ok(())
    }
}

/// Payload bytes of one client, as far as the engine reports them.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ClientBytes {
    /// From the hub's seeder.
    pub down_hub: u64,
    /// From other clients.
    pub down_peers: u64,
    /// From the hub over HTTP.
    pub down_http: u64,
    /// Uploaded.
    pub up: u64,
}

/// What an engine reports after the run.
#[derive(Clone, Debug, Default)]
pub struct Totals {
    /// Per client, index `id - 1`.
    pub clients: Vec<ClientBytes>,
    /// Payload the hub (seed) uploaded.
    pub hub_up: u64,
    /// Whether the hub/peer split per client is measured.
    pub per_client_sources: bool,
}

/// One kind of software driven through the lab.
pub trait Engine {
    /// Start the hub side (tracker, seed) and prepare every client's state.
    fn prepare(&mut self, ctx: &mut Ctx) -> Result<()>;
    /// Launch client `id` (1-based).
    fn start_client(&mut self, ctx: &mut Ctx, id: usize) -> Result<()>;
    /// Clients that completed since the last call, with the instant seen.
    fn poll_complete(&mut self, ctx: &mut Ctx) -> Result<Vec<(usize, Instant)>>;
    /// Whether client `id`'s process has exited.
    fn exited(&mut self, ctx: &mut Ctx, id: usize) -> bool;
    /// Stop client `id` (its departure).
    fn stop_client(&mut self, ctx: &mut Ctx, id: usize);
    /// Stop everything and report byte counts.
    fn finish(&mut self, ctx: &mut Ctx) -> Result<Totals>;
    /// Where client `id`'s copy of the image file is after completion.
    fn client_file(&self, ctx: &Ctx, id: usize) -> PathBuf;
}

/// The engine for `kind`.
pub fn make(kind: EngineKind, swarmhub_bin: PathBuf, fallback_after_s: u64) -> Box<dyn Engine> {
    match kind {
        EngineKind::Swarmhub => Box::new(swarmhub::Swarmhub::new(swarmhub_bin, fallback_after_s)),
        other => Box::new(stock::Stock::new(other)),
    }
}
