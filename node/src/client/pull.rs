//! `pull NAME:TAG`: peer-to-peer download with HTTP fallback, resume by
//! re-verifying, file checks, atomic publication, optional seeding afterwards.

use std::net::{IpAddr, Ipv4Addr};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use indicatif::{ProgressBar, ProgressStyle};
use swarmhub_core::metainfo::Metainfo;
use swarmhub_core::pieceset::PieceSet;
use tokio::time::Instant;

use super::certs::PeerTransport;
use super::live::PullLink;
use super::outage::{HubOutage, DEFAULT_GIVE_UP_AFTER};
use super::{open_db, ClientConfig, ClientError, HubClient, HubError};
use crate::db::ImageRow;
use crate::hub::api::HubInfo;
use crate::image::ImageName;
use crate::paths::ClientPaths;
use crate::peer::{
    self, Announcer, Registry, SwarmHandle, SwarmSpec, SwarmStatus, Transport, WebOutcome,
    WebSeedSink,
};

/// What starting a swarm needs besides the image.
struct Net<'a> {
    paths: &'a ClientPaths,
    cfg: &'a ClientConfig,
    info: &'a HubInfo,
    metrics: &'a Arc<ClientMetrics>,
}
use crate::metrics::{ClientMetrics, MetricsListen, MetricsServer, SwarmMetrics};
use crate::rate::Limits;
use crate::store::{self, Storage};
use crate::util::{hex, human_bytes, random_hex};

/// Web-seed requests in flight at once.
const HTTP_PARALLEL: usize = 4;

/// Options of `pull`.
#[derive(Clone, Debug, Default)]
pub struct PullOptions {
    /// `NAME:TAG`.
    pub image: String,
    /// Keep seeding after completion until interrupted.
    pub wait_after_exit: bool,
    /// Also place the files in this folder.
    pub out: Option<PathBuf>,
    /// Override the upload limit, bytes/s.
    pub max_upload_bps: Option<u64>,
    /// Override the download limit, bytes/s.
    pub max_download_bps: Option<u64>,
    /// Override the HTTP fallback delay, seconds.
    pub fallback_after_s: Option<u64>,
    /// Override the peer port range.
    pub peer_ports: Option<peer::PortRange>,
    /// How long the hub's web seed may stay unreachable before the pull gives
    /// up (default [`DEFAULT_GIVE_UP_AFTER`]).
    pub give_up_after: Option<Duration>,
    /// Where `/metrics` is served during the pull and the seeding after it
    /// (default: nowhere).
    pub metrics_listen: MetricsListen,
    /// Override the cap on connections for this image (default: the
    /// client's `max_peers` setting, else the protocol's).
    pub max_peers: Option<usize>,
    /// Report progress here as the pull runs, and take the pieces its
    /// readers wait for as priorities (see [`super::live`]).
    pub link: Option<PullLink>,
    /// Count into these metrics (a long-running program's, such as the
    /// mirror's) instead of the pull's own.
    pub metrics: Option<Arc<ClientMetrics>>,
}

/// What a pull did (also written as JSON to `HOME/run/last_pull.json`).
#[derive(Clone, Debug, Default, serde::Serialize, serde::Deserialize)]
pub struct PullSummary {
    /// Image.
    pub image: String,
    /// Image size.
    pub size: u64,
    /// Bytes already on disk at start (resume).
    pub resumed_bytes: u64,
    /// Bytes from the hub seeder (P2P).
    pub from_hub: u64,
    /// Bytes from other clients.
    pub from_peers: u64,
    /// Bytes over HTTP (web seed).
    pub from_http: u64,
    /// Bytes that came twice (or unasked) from the hub seeder and other
    /// clients: received, then dropped. Not in `from_hub` or `from_peers`.
    #[serde(default)]
    pub wasted_from_hub: u64,
    /// As `wasted_from_hub`, from other clients.
    #[serde(default)]
    pub wasted_from_peers: u64,
    /// Bytes we uploaded.
    pub uploaded: u64,
    /// Seconds taken.
    pub seconds: f64,
    /// Seconds from the first block accepted to the last piece verified over
    /// peer-to-peer (the data phase: no HTTPS calls, setup or final checks);
    /// 0 when no block came that way.
    #[serde(default)]
    pub data_seconds: f64,
    /// Already complete locally.
    pub up_to_date: bool,
    /// Where the image is.
    pub path: PathBuf,
}

impl std::fmt::Display for PullSummary {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.up_to_date {
            return write!(
                f,
                "{} is up to date ({}) at {}",
                self.image,
                human_bytes(self.size),
                self.path.display()
            );
        }
        let got = self.from_hub + self.from_peers + self.from_http;
        write!(
            f,
            "pulled {} ({}) in {:.1} s, {}/s: {} from hub seeder, {} from peers, {} over HTTP, {} resumed, {} uploaded -> {}",
            self.image,
            human_bytes(self.size),
            self.seconds,
            human_bytes((got as f64 / self.seconds.max(0.001)) as u64),
            human_bytes(self.from_hub),
            human_bytes(self.from_peers),
            human_bytes(self.from_http),
            human_bytes(self.resumed_bytes),
            human_bytes(self.uploaded),
            self.path.display()
        )
    }
}

tokio::task_local! {
    /// Set by [`pull_embedded`]: the stop signal of a pull run inside another program.
    static EMBEDDED: tokio::sync::watch::Receiver<bool>;
}

/// Is this pull run by [`pull_embedded`]?
fn embedded() -> bool {
    EMBEDDED.try_with(|_| ()).is_ok()
}

/// [`pull`] inside another program (the fleet harness, many clients in one
/// process): no progress bar, no summary on stdout, and `stop` turning true
/// acts as SIGINT does (a seeding pull then returns its summary).
pub async fn pull_embedded(
    paths: &ClientPaths,
    opts: &PullOptions,
    stop: tokio::sync::watch::Receiver<bool>,
) -> Result<PullSummary, ClientError> {
    EMBEDDED.scope(stop, pull(paths, opts)).await
}

fn other(e: impl std::fmt::Display) -> ClientError {
    ClientError::Other(e.to_string())
}

/// Pull an image. Returns after completion (or, with `wait_after_exit`, after
/// seeding ends with SIGINT/SIGTERM).
pub async fn pull(paths: &ClientPaths, opts: &PullOptions) -> Result<PullSummary, ClientError> {
    let metrics = opts.metrics.clone().unwrap_or_default();
    let ended = |m: &ClientMetrics| {
        ["complete", "up_to_date"]
            .iter()
            .map(|r| m.pulls.with_label_values(&[r]).get())
            .sum::<u64>()
    };
    let ended_before = ended(&metrics);
    let run_file = paths.run_file("metrics.addr");
    let server = MetricsServer::start_optional(opts.metrics_listen, metrics.registry(), &run_file)
        .await
        .map_err(other)?;
    if let Some(m) = &server {
        if !embedded() {
            eprintln!("metrics on http://{}/metrics", m.addr());
        }
    }
    let started = Instant::now();
    let result = pull_counted(paths, opts, &metrics).await;
    let finished = ended(&metrics) > ended_before;
    if result.is_err() && !finished {
        metrics.pull_done(0, "failed", started.elapsed());
    }
    if let (Err(e), Some(link)) = (&result, &opts.link) {
        link.update(|p| {
            p.failed = Some(e.to_string());
            true
        });
    }
    if server.is_some() {
        let _ = std::fs::remove_file(&run_file);
    }
    result
}

async fn pull_counted(
    paths: &ClientPaths,
    opts: &PullOptions,
    metrics: &Arc<ClientMetrics>,
) -> Result<PullSummary, ClientError> {
    let image: ImageName = opts.image.parse().map_err(other)?;
    let db = open_db(paths)?;
    let cfg = ClientConfig::load(&db)?;
    let hub = cfg.hub(paths).await?;
    let outage = Arc::new(HubOutage::new(
        hub.base(),
        opts.give_up_after.unwrap_or(DEFAULT_GIVE_UP_AFTER),
    ));
    // A hub that is busy (a flash crowd at its door) or restarting is
    // retried with backoff, as the web seed is, up to --give-up-after.
    let info = retry_hub(&outage, || hub.info()).await?;
    let torrent = retry_hub(&outage, || hub.metainfo(&image)).await?;
    let meta = Metainfo::from_bytes(&torrent)
        .map_err(|e| other(format!("the hub sent invalid metainfo for {image}: {e}")))?;
    if meta.name != image.to_string() {
        return Err(other(format!(
            "the hub sent metainfo named {:?} for {image}",
            meta.name
        )));
    }
    let meta = Arc::new(meta);
    let limits = Arc::new(Limits::new(
        opts.max_upload_bps.unwrap_or(cfg.max_upload_bps),
        opts.max_download_bps.unwrap_or(cfg.max_download_bps),
    ));
    let p2p = cfg.p2p_download && info.p2p;
    let net = Net {
        paths,
        cfg: &cfg,
        info: &info,
        metrics,
    };
    let final_dir = paths.image_dir(&image);
    let started = Instant::now();
    let mut summary = PullSummary {
        image: image.to_string(),
        size: meta.total_length(),
        path: final_dir.clone(),
        ..PullSummary::default()
    };

    let existing = db.image(&image.to_string())?;
    if existing.is_some_and(|r| r.info_hash == hex(&meta.info_hash.0)) && final_dir.is_dir() {
        summary.up_to_date = true;
        metrics.pull_done(summary.size, "up_to_date", started.elapsed());
        report_published(opts.link.as_ref(), &meta, &final_dir);
        export(&final_dir, &meta, opts.out.as_deref()).await?;
        record(paths, &summary);
        if !embedded() {
            println!("{summary}");
        }
        if opts.wait_after_exit && p2p {
            let storage = Arc::new(Storage::open(&final_dir, meta.clone(), false)?);
            let seeding = Seeding::start(
                &net,
                opts,
                &hub,
                storage,
                PieceSet::full(meta.num_pieces()),
                limits,
            )
            .await?;
            if !embedded() {
                eprintln!("seeding {image} until interrupted (Ctrl-C)");
            }
            seeding.wait_for_signal().await;
        }
        return Ok(summary);
    }

    let partial = paths.partial(&meta.info_hash);
    let resuming = partial.exists();
    let storage = {
        let (p, m) = (partial.clone(), meta.clone());
        Arc::new(blocking(move || Storage::open(&p, m, true)).await??)
    };
    storage
        .stream_file_digests()
        .map_err(|e| other(format!("starting the SHA-256 thread: {e}")))?;
    let bar = progress_bar(meta.total_length());
    let mut have = PieceSet::new(meta.num_pieces());
    if let Some(link) = &opts.link {
        link.update(|p| {
            p.meta = Some(meta.clone());
            p.dir = Some(partial.clone());
            p.have = have.clone();
            true
        });
    }
    if resuming {
        bar.set_message("re-verifying what is on disk");
        have = verify_all(storage.clone(), &bar).await?;
        summary.resumed_bytes = have_bytes(&meta, &have);
        tracing::info!(
            "{image}: resuming with {} of {} pieces",
            have.count(),
            meta.num_pieces()
        );
    }
    bar.set_position(have_bytes(&meta, &have));
    if let Some(link) = &opts.link {
        link.set_have(&have);
    }

    let mut seeding = None;
    if !have.is_full() && p2p {
        let s = Seeding::start(
            &net,
            opts,
            &hub,
            storage.clone(),
            have.clone(),
            limits.clone(),
        )
        .await?;
        let fallback =
            Duration::from_secs(opts.fallback_after_s.unwrap_or(cfg.fallback_after_s).max(1));
        let link = opts.link.as_ref();
        let outcome = watch_swarm(&s.handle, &bar, &meta, Some(fallback), &outage, link).await;
        let outcome = match outcome {
            Watch::Ended(o) => o,
            Watch::Stalled(why) => {
                bar.suspend(|| {
                    eprintln!(
                        "{why}: falling back to HTTP from the hub, a few pieces at a time while \
                     the swarm stays silent (peers keep working alongside)"
                    )
                });
                tracing::warn!("{image}: swarm stalled, fetching the rest over HTTP too");
                metrics.webseed_fallbacks.inc();
                let (o, http) = http_beside_swarm(
                    &hub, &s.handle, &bar, &meta, &limits, &outage, metrics, link, fallback,
                )
                .await;
                summary.from_http = http;
                o
            }
        };
        let status = s.handle.status.borrow().clone();
        summary.from_hub = status.bytes_from_hub;
        summary.from_peers = status.bytes_from_peers;
        summary.wasted_from_hub = status.wasted_from_hub;
        summary.wasted_from_peers = status.wasted_from_peers;
        if let (Some(a), Some(b)) = (status.first_block_at, status.completed_at) {
            summary.data_seconds = b.saturating_duration_since(a).as_secs_f64();
        }
        match outcome {
            SwarmOutcome::Complete => {
                have = PieceSet::full(meta.num_pieces());
                seeding = Some(s);
            }
            SwarmOutcome::Interrupted => {
                s.stop().await;
                bar.abandon();
                return Err(other(format!(
                    "interrupted: run `swarmhub pull {image}` again to resume"
                )));
            }
            SwarmOutcome::Failed(e) => {
                s.stop().await;
                bar.abandon();
                return Err(other(e));
            }
        }
    } else if !have.is_full() {
        let why = if info.p2p {
            "peer-to-peer download is disabled in this client's config"
        } else {
            "peer-to-peer is disabled on the hub"
        };
        bar.suspend(|| eprintln!("{why}: downloading over HTTP from the hub"));
    }
    if !have.is_full() {
        let target = WebTarget::Storage(storage.clone(), opts.link.clone());
        let fetched = Arc::new(AtomicU64::new(0));
        tokio::select! {
            r = http_fetch(&hub, &meta, target, &have, &bar, &limits, &fetched, &outage, metrics) => {
                r?;
                summary.from_http = fetched.load(Ordering::Relaxed);
            }
            _ = signal() => {
                bar.abandon();
                return Err(other(format!("interrupted: run `swarmhub pull {image}` again to resume")));
            }
        }
    }
    bar.set_message("checking file hashes");
    {
        let (p, m, st) = (partial.clone(), meta.clone(), storage.clone());
        blocking(move || {
            st.sync()
                .map_err(|e| other(format!("{}: {e}", p.display())))?;
            // Hashed while the pieces arrived; a full pass only when that
            // could not cover every piece in order.
            match st.finish_file_digests() {
                Some(verdict) => verdict.map_err(ClientError::from),
                None => store::verify_file_hashes(&p, &m).map_err(ClientError::from),
            }
        })
        .await??;
    }
    publish(paths, &image, &meta, &partial, &final_dir)?;
    report_published(opts.link.as_ref(), &meta, &final_dir);
    bar.finish_and_clear();
    summary.seconds = started.elapsed().as_secs_f64();
    metrics.pull_done(summary.size, "complete", started.elapsed());
    if let Some(s) = &seeding {
        summary.uploaded = s.handle.status.borrow().bytes_up;
    }
    export(&final_dir, &meta, opts.out.as_deref()).await?;
    record(paths, &summary);
    if !embedded() {
        println!("{summary}");
    }

    if opts.wait_after_exit && p2p {
        let s = match seeding {
            Some(s) => s,
            None => {
                let st = Arc::new(Storage::open(&final_dir, meta.clone(), false)?);
                Seeding::start(
                    &net,
                    opts,
                    &hub,
                    st,
                    PieceSet::full(meta.num_pieces()),
                    limits,
                )
                .await?
            }
        };
        if !embedded() {
            eprintln!("seeding {image} until interrupted (Ctrl-C)");
        }
        signal().await;
        // Record again so `uploaded` counts the seeding time too (the lab reads it).
        summary.uploaded = s.handle.status.borrow().bytes_up;
        record(paths, &summary);
        s.stop().await;
    } else if let Some(s) = seeding {
        s.stop().await;
    }
    Ok(summary)
}

async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> T + Send + 'static,
) -> Result<T, ClientError> {
    tokio::task::spawn_blocking(f).await.map_err(other)
}

fn progress_bar(total: u64) -> ProgressBar {
    if embedded() {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::new(total);
    if let Ok(style) = ProgressStyle::with_template(
        "{spinner} [{bar:30}] {percent:>3}% {binary_bytes}/{binary_total_bytes} {binary_bytes_per_sec} {msg}",
    ) {
        bar.set_style(style.progress_chars("=> "));
    }
    bar
}

fn have_bytes(meta: &Metainfo, have: &PieceSet) -> u64 {
    have.iter().map(|p| u64::from(meta.piece_len(p))).sum()
}

async fn verify_all(storage: Arc<Storage>, bar: &ProgressBar) -> Result<PieceSet, ClientError> {
    let bar = bar.clone();
    blocking(move || {
        let meta = storage.meta().clone();
        let mut have = PieceSet::new(meta.num_pieces());
        for p in 0..meta.num_pieces() {
            if storage
                .verify(p)
                .map_err(|e| other(format!("verifying piece {p}: {e}")))?
            {
                have.insert(p);
                bar.inc(u64::from(meta.piece_len(p)));
            }
        }
        bar.set_position(have_bytes(&meta, &have));
        Ok(have)
    })
    .await?
}

/// A running swarm with its listener (and the certificate renewal it needs).
struct Seeding {
    handle: SwarmHandle,
    listener: tokio::task::JoinHandle<()>,
    _transport: PeerTransport,
}

impl Seeding {
    async fn start(
        net: &Net<'_>,
        opts: &PullOptions,
        hub: &HubClient,
        storage: Arc<Storage>,
        have: PieceSet,
        limits: Arc<Limits>,
    ) -> Result<Seeding, ClientError> {
        let ports = opts.peer_ports.unwrap_or(net.cfg.peer_ports);
        let tcp = peer::bind_first_free(IpAddr::V4(Ipv4Addr::UNSPECIFIED), ports)
            .await
            .map_err(|e| other(format!("cannot listen for peers: {e}")))?;
        let port = tcp.local_addr().map_err(other)?.port();
        let peer_transport = PeerTransport::new(net.paths, hub, net.info).await?;
        let transport: Arc<dyn Transport> = peer_transport.transport.clone();
        let registry = Registry::default();
        let listener = peer::spawn_counted_listener(
            tcp,
            transport.clone(),
            registry.clone(),
            net.metrics.peer_link(),
        );
        let metrics = SwarmMetrics::client(net.metrics, &storage.meta().name);
        let spec = SwarmSpec {
            meta: storage.meta().clone(),
            storage,
            have,
            peer_id: peer::new_peer_id(peer::CLIENT_PEER_ID_PREFIX),
            listen_port: port,
            transport,
            announcer: Announcer::Http {
                client: hub.http().clone(),
                url: hub.announce_url(),
                key: hub.secret().unwrap_or_default().to_owned(),
            },
            limits,
            registry,
            hub: None,
            metrics: Some(metrics),
            max_peers: opts.max_peers.or(net.cfg.max_peers),
        };
        tracing::info!("listening for peers on port {port}");
        let handle = peer::spawn_swarm(spec).map_err(other)?;
        Ok(Seeding {
            handle,
            listener,
            _transport: peer_transport,
        })
    }

    async fn stop(self) {
        self.listener.abort();
        self.handle.shutdown().await;
    }

    async fn wait_for_signal(self) {
        signal().await;
        self.stop().await;
    }
}

/// How a swarm run ended.
enum SwarmOutcome {
    Complete,
    Interrupted,
    Failed(String),
}

/// What [`watch_swarm`] saw.
enum Watch {
    Ended(SwarmOutcome),
    /// Nothing arrived for the fallback delay (and why that counts as a
    /// stall, for the message).
    Stalled(String),
}

/// A client that receives nothing while its peers keep gaining pieces is
/// waiting for its turn (a flash crowd's first minute on slow uplinks), not
/// stalled; it falls back anyway after this many fallback delays.
const STARVED_FACTOR: u32 = 4;

async fn watch_swarm(
    handle: &SwarmHandle,
    bar: &ProgressBar,
    meta: &Metainfo,
    fallback: Option<Duration>,
    outage: &HubOutage,
    link: Option<&PullLink>,
) -> Watch {
    let mut rx = handle.status.clone();
    let mut priority = link.map(PullLink::priority);
    if let Some(p) = &mut priority {
        handle.set_priority(p.borrow_and_update().clone());
    }
    let mut last_bytes = 0;
    let mut last_progress = Instant::now();
    // The most pieces the connected peers held together, and when it grew.
    let (mut peer_pieces, mut last_swarm_progress) = (0, Instant::now());
    let sig = signal();
    tokio::pin!(sig);
    loop {
        let s: SwarmStatus = rx.borrow_and_update().clone();
        bar.set_position(meta.total_length() - s.bytes_left);
        if let Some(link) = link {
            link.set_have(&s.have);
        }
        let http = if fallback.is_none() { " | + HTTP" } else { "" };
        let down = outage.note().map(|n| format!(" | {n}")).unwrap_or_default();
        bar.set_message(format!(
            "{} peers | from hub {} | from peers {}{http}{down}",
            s.peers,
            human_bytes(s.bytes_from_hub),
            human_bytes(s.bytes_from_peers)
        ));
        if s.complete {
            return Watch::Ended(SwarmOutcome::Complete);
        }
        if let Some(e) = s.fatal {
            return Watch::Ended(SwarmOutcome::Failed(e));
        }
        let got = s.bytes_from_hub + s.bytes_from_peers;
        if s.peer_pieces > peer_pieces {
            peer_pieces = s.peer_pieces;
            last_swarm_progress = Instant::now();
        }
        if got != last_bytes {
            last_bytes = got;
            last_progress = Instant::now();
        } else if let Some(f) = fallback {
            if let Some(why) = stall(last_progress.elapsed(), last_swarm_progress.elapsed(), f) {
                return Watch::Stalled(why);
            }
        }
        let wanted = async {
            match priority.as_mut() {
                Some(p) => p.changed().await.ok(),
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            _ = &mut sig => return Watch::Ended(SwarmOutcome::Interrupted),
            _ = rx.changed() => {}
            Some(()) = wanted => {
                if let Some(p) = &mut priority {
                    handle.set_priority(p.borrow_and_update().clone());
                }
            }
            _ = tokio::time::sleep(Duration::from_millis(250)) => {}
        }
    }
}

/// Longest wait between two web-seed doses (see [`http_beside_swarm`]); a
/// shorter `--fallback-after` shortens it too.
const DOSE_WAIT: Duration = Duration::from_secs(5);
/// Each dose is this many times the last while the swarm stays silent.
const DOSE_GROWTH: u32 = 4;

/// Whether a swarm that delivered nothing to us for `quiet`, while our peers
/// last gained a piece `swarm_quiet` ago, counts as stalled after `fallback`:
/// the reason when it does. Nothing for us while the peers progress is a
/// queue, not a stall, until [`STARVED_FACTOR`] times `fallback`.
fn stall(quiet: Duration, swarm_quiet: Duration, fallback: Duration) -> Option<String> {
    let secs = fallback.as_secs();
    if quiet >= fallback && swarm_quiet >= fallback {
        Some(format!(
            "no peer or seeder delivered for {secs} s, and the peers gained no piece either"
        ))
    } else if quiet >= fallback * STARVED_FACTOR {
        Some(format!(
            "no peer or seeder delivered for {} s, although the peers kept gaining pieces",
            secs * u64::from(STARVED_FACTOR)
        ))
    } else {
        None
    }
}

/// Fetch the missing pieces over HTTP while the swarm keeps running and
/// feeding the node: whichever source delivers a piece first wins. Returns how
/// the swarm ended and the bytes the web seed supplied.
///
/// HTTP comes in doses, so that a client the swarm merely overlooked (it had
/// nothing to trade, nobody unchoked it) costs the hub a piece or a few, not
/// the image: one piece first, then, every `min(DOSE_WAIT, fallback)` in which
/// the swarm still delivered nothing, `DOSE_GROWTH` times the last dose. Once
/// the swarm delivers again no more doses are granted until it has been
/// silent for a wait again (then one piece again). A swarm that delivers
/// nothing at all (the seeder unreachable) gets the whole image over HTTP
/// after a few waits: 1 + 4 + 16 + 64 + ... pieces.
#[allow(clippy::too_many_arguments)]
async fn http_beside_swarm(
    hub: &HubClient,
    swarm: &SwarmHandle,
    bar: &ProgressBar,
    meta: &Arc<Metainfo>,
    limits: &Arc<Limits>,
    outage: &Arc<HubOutage>,
    metrics: &Arc<ClientMetrics>,
    link: Option<&PullLink>,
    fallback: Duration,
) -> (SwarmOutcome, u64) {
    let sink = swarm.web_seed();
    let have = swarm.status.borrow().have.clone();
    let fetched = Arc::new(AtomicU64::new(0));
    let gate = Arc::new(tokio::sync::Semaphore::new(0));
    let fetch = http_fetch(
        hub,
        meta,
        WebTarget::Swarm(sink, gate.clone()),
        &have,
        bar,
        limits,
        &fetched,
        outage,
        metrics,
    );
    let doses = grant_doses(
        swarm.status.clone(),
        gate.clone(),
        DOSE_WAIT.min(fallback),
        meta.num_pieces(),
    );
    let watch = watch_swarm(swarm, bar, meta, None, outage, link);
    tokio::pin!(fetch, watch, doses);
    let mut fetching = true;
    let outcome = loop {
        tokio::select! {
            r = &mut fetch, if fetching => {
                fetching = false;
                if let Err(e) = r {
                    break SwarmOutcome::Failed(e.to_string());
                }
            }
            () = &mut doses, if fetching => {}
            w = &mut watch => match w {
                Watch::Ended(SwarmOutcome::Complete) if fetching => {
                    // Let the fetchers count the pieces they handed over last;
                    // those waiting for a dose stop.
                    gate.close();
                    if let Err(e) = fetch.await {
                        tracing::warn!("web seed after completion: {e}");
                    }
                    break SwarmOutcome::Complete;
                }
                Watch::Ended(o) => break o,
                // Unreachable without a fallback delay; keep the swarm's word.
                Watch::Stalled(why) => break SwarmOutcome::Failed(why),
            },
        }
    };
    gate.close();
    (outcome, fetched.load(Ordering::Relaxed))
}

/// Add web-seed permits to `gate` in doses, as [`http_beside_swarm`] says,
/// watching what the swarm (hub seeder and peers, not the web seed) delivers.
/// Runs until dropped.
async fn grant_doses(
    status: tokio::sync::watch::Receiver<SwarmStatus>,
    gate: Arc<tokio::sync::Semaphore>,
    wait: Duration,
    pieces: u32,
) {
    let delivered = || {
        let s = status.borrow();
        s.bytes_from_hub + s.bytes_from_peers
    };
    let mut dose = 1u32;
    loop {
        gate.add_permits(dose as usize);
        let mut mark = delivered();
        tokio::time::sleep(wait).await;
        if delivered() == mark {
            dose = dose.saturating_mul(DOSE_GROWTH).min(pieces.max(1));
            continue;
        }
        // The swarm works again: HTTP waits until it is silent for a wait.
        dose = 1;
        loop {
            mark = delivered();
            tokio::time::sleep(wait).await;
            if delivered() == mark {
                break;
            }
        }
        tracing::info!(
            "swarm silent for {} s again: one more piece over HTTP",
            wait.as_secs()
        );
    }
}

/// Where web-seed pieces go.
enum WebTarget {
    /// Straight into the files (no swarm runs), told to the link if any.
    Storage(Arc<Storage>, Option<PullLink>),
    /// Into a running swarm, which stores, verifies and announces them; a
    /// piece is fetched only with a permit from the gate (closed: stop).
    Swarm(WebSeedSink, Arc<tokio::sync::Semaphore>),
}

impl WebTarget {
    fn has(&self, piece: u32) -> bool {
        match self {
            WebTarget::Storage(..) => false,
            WebTarget::Swarm(sink, _) => sink.has(piece),
        }
    }

    /// Wait until `piece` may be fetched: false when the fetch should stop.
    async fn may_fetch(&self) -> bool {
        match self {
            WebTarget::Storage(..) => true,
            WebTarget::Swarm(_, gate) => match gate.acquire().await {
                Ok(permit) => {
                    permit.forget();
                    true
                }
                Err(_) => false,
            },
        }
    }

    /// A permit taken for a piece that did not need fetching after all.
    fn give_back(&self) {
        if let WebTarget::Swarm(_, gate) = self {
            gate.add_permits(1);
        }
    }

    /// Store and verify `data` as `piece`: true when it was used.
    async fn put(&self, piece: u32, data: bytes::Bytes) -> Result<WebOutcome, ClientError> {
        match self {
            WebTarget::Storage(storage, link) => {
                let st = storage.clone();
                let ok = tokio::task::spawn_blocking(move || st.write_verified(piece, data))
                    .await
                    .map_err(other)?
                    .map_err(|e| other(format!("writing piece {piece}: {e}")))?;
                if let (true, Some(link)) = (ok, link) {
                    link.add_piece(piece);
                }
                Ok(if ok {
                    WebOutcome::Taken
                } else {
                    WebOutcome::BadHash
                })
            }
            WebTarget::Swarm(sink, _) => sink.deliver(piece, data).await.map_err(other),
        }
    }
}

/// `call` until it succeeds, retrying failures that may pass (no
/// connection, a 5xx) with the outage's backoff; the first one is said on
/// stderr. Gives up as [`HubOutage::failed`] says.
async fn retry_hub<T, F, Fut>(outage: &HubOutage, mut call: F) -> Result<T, ClientError>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, HubError>>,
{
    let mut attempt = 0;
    loop {
        attempt += 1;
        match call().await {
            Ok(v) => {
                if let Some(gone) = outage.recovered() {
                    tracing::info!(
                        "hub {} answers again after {} s",
                        outage.url(),
                        gone.as_secs()
                    );
                }
                return Ok(v);
            }
            Err(e) => {
                let detail = e.to_string();
                let retry = outage.failed(e, attempt)?;
                if retry.first {
                    tracing::warn!("{detail}: retrying");
                    if !embedded() {
                        eprintln!(
                            "{detail}: retrying with backoff (giving up after {} s)",
                            outage.give_up_after().as_secs()
                        );
                    }
                }
                tokio::time::sleep(retry.wait).await;
            }
        }
    }
}

/// Shown on the progress line while only the web seed downloads.
const HTTP_ONLY: &str = "over HTTP from the hub";

/// Fetch every piece not in `have` (nor obtained by the swarm meanwhile)
/// from the web seed, adding the bytes used to `fetched`. Requests that fail
/// because the hub is unreachable are retried as `outage` says.
#[allow(clippy::too_many_arguments)]
async fn http_fetch(
    hub: &HubClient,
    meta: &Arc<Metainfo>,
    target: WebTarget,
    have: &PieceSet,
    bar: &ProgressBar,
    limits: &Arc<Limits>,
    fetched: &Arc<AtomicU64>,
    outage: &Arc<HubOutage>,
    metrics: &Arc<ClientMetrics>,
) -> Result<(), ClientError> {
    let mut missing: Vec<u32> = (0..meta.num_pieces())
        .filter(|p| !have.contains(*p))
        .collect();
    let direct = matches!(target, WebTarget::Storage(..));
    if direct {
        bar.set_message(HTTP_ONLY);
    } else {
        // Beside a swarm, in an order of this client's own, so that clients
        // that fell back at once fetch different pieces and can trade them.
        let order = std::collections::hash_map::RandomState::new();
        missing.sort_by_cached_key(|p| std::hash::BuildHasher::hash_one(&order, p));
    }
    let queue = Arc::new(std::sync::Mutex::new(missing.into_iter()));
    let target = Arc::new(target);
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..HTTP_PARALLEL {
        let (queue, hub, meta, target, bar, limits, fetched, outage, metrics) = (
            queue.clone(),
            hub.clone(),
            meta.clone(),
            target.clone(),
            bar.clone(),
            limits.clone(),
            fetched.clone(),
            outage.clone(),
            metrics.clone(),
        );
        tasks.spawn(async move {
            let geometry = meta.geometry();
            loop {
                let next = queue.lock().map_err(other)?.next();
                let Some(piece) = next else {
                    return Ok::<(), ClientError>(());
                };
                if target.has(piece) {
                    continue;
                }
                if !target.may_fetch().await {
                    return Ok(());
                }
                if target.has(piece) {
                    target.give_back();
                    continue;
                }
                let first = geometry.piece_offset(piece);
                let len = u64::from(geometry.piece_len(piece));
                let mut attempt = 0;
                let mut failures = 0;
                while !target.has(piece) {
                    let data = match hub.range(&meta.info_hash, first, first + len - 1).await {
                        Ok(data) => data,
                        Err(e) => {
                            failures += 1;
                            wait_for_hub(e, failures, &outage, &bar, direct).await?;
                            continue;
                        }
                    };
                    failures = 0;
                    if let Some(gone) = outage.recovered() {
                        bar.suspend(|| {
                            eprintln!(
                                "hub {} answers again after {} s",
                                outage.url(),
                                gone.as_secs()
                            )
                        });
                        if direct {
                            bar.set_message(HTTP_ONLY);
                        }
                    }
                    attempt += 1;
                    limits.down.acquire(data.len()).await;
                    match target.put(piece, data.into()).await? {
                        WebOutcome::Taken => {
                            fetched.fetch_add(len, Ordering::Relaxed);
                            metrics.webseed_received(&meta.name, len);
                            if direct {
                                bar.inc(len);
                            }
                            break;
                        }
                        WebOutcome::AlreadyHad => break,
                        WebOutcome::BadHash if attempt >= 3 => {
                            webseed_bad_piece(&metrics);
                            return Err(other(format!(
                                "piece {piece} from the hub's web seed failed its hash 3 times"
                            )));
                        }
                        WebOutcome::BadHash => webseed_bad_piece(&metrics),
                    }
                }
            }
        });
    }
    while let Some(r) = tasks.join_next().await {
        r.map_err(other)??;
    }
    Ok(())
}

fn webseed_bad_piece(metrics: &ClientMetrics) {
    metrics
        .piece_verification_failures
        .with_label_values(&["webseed"])
        .inc();
}

/// A web-seed request failed with `e`, the `failures`-th time in a row: say
/// so (once per outage, and on the progress line), wait out the backoff, or
/// give up when the hub is refusing or gone for too long.
async fn wait_for_hub(
    e: HubError,
    failures: u32,
    outage: &HubOutage,
    bar: &ProgressBar,
    direct: bool,
) -> Result<(), ClientError> {
    let text = e.to_string();
    let retry = outage.failed(e, failures)?;
    if retry.first {
        tracing::warn!("web seed: {text}; retrying");
        bar.suspend(|| {
            eprintln!(
                "{text}: retrying with backoff for up to {} s (--give-up-after)",
                outage.give_up_after().as_secs()
            )
        });
    }
    if direct {
        if let Some(note) = outage.note() {
            bar.set_message(format!("{HTTP_ONLY} | {note}"));
        }
    }
    tokio::time::sleep(retry.wait).await;
    Ok(())
}

/// Tell the link (if any) that the image is complete at `dir`.
fn report_published(link: Option<&PullLink>, meta: &Arc<Metainfo>, dir: &Path) {
    if let Some(link) = link {
        link.update(|p| {
            p.meta = Some(meta.clone());
            p.dir = Some(dir.to_owned());
            p.have = PieceSet::full(meta.num_pieces());
            p.have_bytes = meta.total_length();
            p.published = true;
            true
        });
    }
}

/// Move the verified download into the store and record it.
fn publish(
    paths: &ClientPaths,
    image: &ImageName,
    meta: &Metainfo,
    partial: &Path,
    final_dir: &Path,
) -> Result<(), ClientError> {
    let io = |p: &Path, e: std::io::Error| other(format!("{}: {e}", p.display()));
    if let Some(parent) = final_dir.parent() {
        std::fs::create_dir_all(parent).map_err(|e| io(parent, e))?;
    }
    if final_dir.exists() {
        let old = final_dir.with_file_name(format!(".old-{}", random_hex(6).map_err(other)?));
        std::fs::rename(final_dir, &old).map_err(|e| io(final_dir, e))?;
        let _ = std::fs::remove_dir_all(&old);
    }
    std::fs::rename(partial, final_dir).map_err(|e| io(partial, e))?;
    let db = open_db(paths)?;
    db.put_image(&ImageRow {
        name: image.to_string(),
        info_hash: hex(&meta.info_hash.0),
        metainfo: meta.to_bytes(),
        stamps: store::stamps(final_dir, meta)?,
    })?;
    Ok(())
}

/// Write the summary for scripts and tests (best effort).
fn record(paths: &ClientPaths, summary: &PullSummary) {
    if let Ok(json) = serde_json::to_vec_pretty(summary) {
        let _ = crate::paths::write_atomic(&paths.run_file("last_pull.json"), &json);
    }
}

/// Place the image's files in `out` too, as copies: a hard link would let an
/// edit of the exported file change what this client seeds (and get it banned
/// by its peers). `std::fs::copy` uses `copy_file_range`, which file systems
/// that can (Btrfs, XFS) serve by sharing extents, so a copy there costs no
/// space. Each file is written under a temporary name and renamed into place:
/// a full disk leaves no truncated file under the real name, and the partial
/// copy is removed.
async fn export(dir: &Path, meta: &Arc<Metainfo>, out: Option<&Path>) -> Result<(), ClientError> {
    let Some(out) = out else { return Ok(()) };
    let (dir, meta, out) = (dir.to_owned(), meta.clone(), out.to_owned());
    blocking(move || {
        for f in &meta.files {
            let rel: PathBuf = f.path.iter().collect();
            export_file(&dir.join(&rel), &out.join(&rel))?;
        }
        Ok(())
    })
    .await?
}

fn export_file(src: &Path, dst: &Path) -> Result<(), ClientError> {
    let fail = |e: std::io::Error| {
        other(format!(
            "exporting {} to {}: {e}",
            src.display(),
            dst.display()
        ))
    };
    if let Some(parent) = dst.parent() {
        std::fs::create_dir_all(parent).map_err(|e| other(format!("{}: {e}", parent.display())))?;
    }
    let tmp = dst.with_file_name(format!(".swarmhub-export-{}", random_hex(6).map_err(fail)?));
    let written = std::fs::copy(src, &tmp)
        .and_then(|_| std::fs::File::open(&tmp)?.sync_all())
        .and_then(|()| std::fs::rename(&tmp, dst));
    if let Err(e) = written {
        let _ = std::fs::remove_file(&tmp);
        return Err(fail(e));
    }
    Ok(())
}

/// SIGINT or SIGTERM, or the stop signal of [`pull_embedded`].
pub(crate) async fn signal() {
    if let Ok(mut stop) = EMBEDDED.try_with(|s| s.clone()) {
        tokio::select! {
            _ = os_signal() => {}
            // A dropped sender stops too.
            _ = stop.wait_for(|s| *s) => {}
        }
        return;
    }
    os_signal().await;
}

async fn os_signal() {
    use tokio::signal::unix::{signal, SignalKind};
    match (
        signal(SignalKind::interrupt()),
        signal(SignalKind::terminate()),
    ) {
        (Ok(mut i), Ok(mut t)) => {
            tokio::select! {
                _ = i.recv() => {}
                _ = t.recv() => {}
            }
        }
        _ => {
            let _ = tokio::signal::ctrl_c().await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Permits granted so far (none is ever taken here).
    fn granted(gate: &tokio::sync::Semaphore) -> usize {
        gate.available_permits()
    }

    #[test]
    fn a_client_waiting_while_its_peers_progress_is_not_stalled_until_starved() {
        let s = Duration::from_secs;
        let f = s(60);
        // Nothing for us, nothing for the peers: stalled after the delay.
        assert!(stall(s(59), s(59), f).is_none());
        let why = stall(s(60), s(60), f).expect("stalled");
        assert!(why.contains("60 s") && why.contains("no piece"), "{why}");
        // The peers gained a piece 10 s ago: a queue, until 4 delays.
        assert!(stall(s(61), s(10), f).is_none());
        assert!(stall(s(239), s(0), f).is_none());
        let why = stall(s(240), s(0), f).expect("starved");
        assert!(
            why.contains("240 s") && why.contains("kept gaining"),
            "{why}"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn http_doses_grow_while_the_swarm_is_silent_and_stop_while_it_delivers() {
        let wait = Duration::from_secs(5);
        let (tx, rx) = tokio::sync::watch::channel(SwarmStatus::default());
        let gate = Arc::new(tokio::sync::Semaphore::new(0));
        let doses = tokio::spawn(grant_doses(rx, gate.clone(), wait, 100));
        let step = |secs: f64| tokio::time::sleep(Duration::from_secs_f64(secs));
        step(0.5).await;
        assert_eq!(granted(&gate), 1, "one piece first");
        step(5.0).await;
        assert_eq!(granted(&gate), 1 + 4, "silent swarm: four times the dose");
        step(5.0).await;
        assert_eq!(granted(&gate), 1 + 4 + 16);

        // The swarm delivers again: no dose while it keeps delivering.
        for _ in 0..6 {
            tx.send_modify(|s| s.bytes_from_peers += 16_384);
            step(2.0).await;
        }
        assert_eq!(granted(&gate), 21, "no HTTP while peers deliver");

        // Silent again for a whole wait (the last delivery came in the
        // wait ending at 25 s, so the next ends at 30 s): one piece, then
        // growth again.
        step(5.5).await;
        assert_eq!(granted(&gate), 21, "silent for less than a whole wait");
        step(2.5).await;
        assert_eq!(granted(&gate), 22, "a silent wait restarts at one piece");
        step(5.0).await;
        assert_eq!(granted(&gate), 26);
        for _ in 0..4 {
            step(5.0).await;
        }
        assert_eq!(
            granted(&gate),
            26 + 16 + 64 + 100 + 100,
            "doses never exceed the image's pieces"
        );
        doses.abort();
    }
}
