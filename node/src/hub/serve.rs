//! `hub serve`: the HTTP API and tracker, the seeder, and the loop that picks
//! up catalog, user and setting changes made by other `swarmhub hub` commands.

use std::collections::{BTreeMap, HashMap};
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use swarmhub_core::metainfo::Metainfo;
use swarmhub_core::pieceset::PieceSet;
use swarmhub_core::tracker::{Auth, Tracker, TrackerConfig};
use swarmhub_core::{Id20, Instant};
use tokio::sync::watch;

use super::admin::{self, row_metainfo, AdminError};
use super::authsnap::AuthSnapshot;
use super::console::ConsoleState;
use super::counters::HubCounters;
use super::hostnames::{self, HostName};
use super::{HubSettings, PEER_TLS_OFF_WARNING};
use crate::db::Db;
use crate::image::ImageName;
use crate::logging::TRACKER_TARGET;
use crate::metrics::{HubMetrics, MetricsListen, MetricsServer, SwarmMetrics};
use crate::paths::{write_atomic, HubPaths};
use crate::peer::{
    self, Announcer, PortRange, Registry, SwarmHandle, SwarmSpec, SwitchTransport, Transport,
};
use crate::rate::Limits;
use crate::store::Storage;
use crate::tls::ca::HubCa;
use crate::tls::creds::KeyStore;
use crate::tls::peer::{Revocations, TlsTransport};
use crate::util::{random_hex, random_u64};

/// Identity the hub seeder announces with (user names may not be `hub`).
pub const HUB_IDENTITY: &str = "hub";

/// Options of `hub serve`.
#[derive(Clone, Debug)]
pub struct ServeOptions {
    /// HTTP API and tracker address.
    pub listen: SocketAddr,
    /// Seeder port range.
    pub seed_ports: PortRange,
    /// Seeder upload limit, bytes/s (0: none).
    pub max_upload_bps: u64,
    /// Seconds between client announces.
    pub announce_interval_s: u64,
    /// Address clients reach the seeder at; default: the address each client reached the API on.
    pub advertise_ip: Option<IpAddr>,
    /// Lifetime of the client certificates the hub signs.
    pub cert_lifetime: Duration,
    /// Where `/metrics` is served (plain HTTP), if anywhere.
    pub metrics_listen: MetricsListen,
}

/// Why the hub could not start.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ServeError {
    /// Admin-level failure (database, cache).
    #[error(transparent)]
    Admin(#[from] AdminError),
    /// A socket could not be bound.
    #[error("cannot listen on {what}: {error}")]
    Bind {
        /// Which listener.
        what: String,
        /// OS error.
        error: std::io::Error,
    },
    /// The metrics endpoint could not start.
    #[error(transparent)]
    Metrics(#[from] crate::metrics::MetricsError),
    /// Other I/O.
    #[error("{0}")]
    Io(String),
}

/// An image the hub serves.
pub(super) struct Served {
    pub(super) name: String,
    pub(super) meta: Arc<Metainfo>,
    pub(super) storage: Arc<Storage>,
}

impl Served {
    /// The `.torrent` with this hub's announce URL, so stock clients can use it
    /// as it is: the authority the caller asked for (`Host`), or else the
    /// address its connection reached. A `Host` that is not a plain authority
    /// is not echoed.
    pub(super) fn torrent(&self, host: Option<&str>, local: Option<SocketAddr>) -> Vec<u8> {
        let mut meta = Metainfo::clone(&self.meta);
        meta.announce = announce_url(host, local);
        meta.to_bytes()
    }
}

/// `https://AUTHORITY/announce` for a caller that asked for `host` (its `Host`
/// header) on a connection that reached `local`.
fn announce_url(host: Option<&str>, local: Option<SocketAddr>) -> Option<String> {
    let is_authority = |h: &&str| {
        !h.is_empty()
            && h.len() <= 255
            && h.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b".-:[]".contains(&b))
    };
    let authority = host
        .filter(is_authority)
        .map(str::to_owned)
        .or_else(|| local.map(|a| SocketAddr::new(a.ip().to_canonical(), a.port()).to_string()));
    authority.map(|a| format!("https://{a}/announce"))
}

/// What the API handlers share.
pub(super) struct HubState {
    pub(super) paths: HubPaths,
    pub(super) db: Mutex<Db>,
    pub(super) tracker: Mutex<Tracker>,
    pub(super) origin: tokio::time::Instant,
    pub(super) seed_port: u16,
    pub(super) settings: RwLock<HubSettings>,
    pub(super) by_name: RwLock<BTreeMap<String, Arc<Served>>>,
    pub(super) by_hash: RwLock<HashMap<Id20, Arc<Served>>>,
    pub(super) admin_token: String,
    pub(super) advertise_ip: Option<IpAddr>,
    pub(super) ca: HubCa,
    pub(super) cert_lifetime: Duration,
    /// What the seeder's TLS refuses: revoked names, old keys.
    pub(super) peer_revocations: Arc<Revocations>,
    /// Users and certificate keys for announces and API calls (never the
    /// database on that path); see [`HubState::refresh_auth`].
    pub(super) auth: RwLock<Arc<AuthSnapshot>>,
    /// Bumped after every swap of `auth`: a connection that cached what it
    /// was authenticated as checks this is unchanged before reusing it.
    pub(super) auth_generation: std::sync::atomic::AtomicU64,
    /// Running totals (live figures).
    pub(super) counters: Arc<HubCounters>,
    /// Admin console sessions and sign-in throttling.
    pub(super) console: ConsoleState,
    /// The address `hub serve` listens on (`--listen`).
    pub(super) listen: SocketAddr,
    /// `--max-upload-rate`, bytes/s (0: none); the upload capacity when no
    /// `upload` setting gives one.
    pub(super) upload_limit_bps: u64,
    /// The hub's metric families (served on `--metrics-listen`).
    pub(super) metrics: Arc<HubMetrics>,
}

impl HubState {
    pub(super) fn now(&self) -> Instant {
        Instant::from_micros(self.origin.elapsed().as_micros() as u64)
    }

    /// The current users snapshot (a pointer copy under a lock held for
    /// no longer than that).
    pub(super) fn auth(&self) -> Arc<AuthSnapshot> {
        self.auth
            .read()
            .map(|a| a.clone())
            .unwrap_or_else(|e| e.into_inner().clone())
    }

    /// Rebuild the users snapshot from the database; call after every change
    /// to users (the hub's own connection does not see them as a change of
    /// `data_version`).
    pub(super) fn refresh_auth(&self) {
        let loaded = match self.db.lock() {
            Ok(db) => AuthSnapshot::load(&db),
            Err(_) => return,
        };
        match loaded {
            Ok(snap) => {
                if let Ok(mut a) = self.auth.write() {
                    *a = Arc::new(snap);
                }
                // After the swap: a reader that sees the new number reads
                // the new snapshot.
                self.auth_generation
                    .fetch_add(1, std::sync::atomic::Ordering::Release);
            }
            Err(e) => tracing::error!(
                "cannot read users from the hub database, keeping the last ones: {e}"
            ),
        }
    }

    /// Whether peer-to-peer distribution is on (the announce path's check,
    /// without copying the settings).
    pub(super) fn p2p_enabled(&self) -> bool {
        self.settings
            .read()
            .map_or(HubSettings::default().p2p, |s| s.p2p)
    }

    /// The site of a client address under the `sites` setting.
    pub(super) fn site_of(&self, ip: IpAddr) -> Option<String> {
        let settings = self.settings.read().ok()?;
        settings.sites.site_of(ip).map(str::to_owned)
    }

    pub(super) fn settings(&self) -> HubSettings {
        self.settings.read().map(|s| s.clone()).unwrap_or_default()
    }
}

/// Run the hub until SIGINT or SIGTERM.
pub async fn serve(paths: HubPaths, opts: ServeOptions) -> Result<(), ServeError> {
    serve_until(paths, opts, wait_for_signal()).await
}

/// Run the hub until `stop` completes (or SIGINT or SIGTERM): the entry point
/// for running a hub inside another program (the fleet harness). The API and
/// seeder addresses are in the run files `api.addr` and `seed.addr` once it is up.
pub async fn serve_until(
    paths: HubPaths,
    opts: ServeOptions,
    stop: impl std::future::Future<Output = ()> + Send + 'static,
) -> Result<(), ServeError> {
    let db = admin::open_db(&paths)?;
    let report = admin::cache_update(&paths, &db)?;
    for name in &report.hashed {
        tracing::info!("image {name}: hashed (new or changed files)");
    }
    for name in &report.dropped {
        tracing::warn!("image {name}: folder gone from the cache, dropped from the catalog");
    }
    for why in &report.skipped {
        tracing::warn!("cache: skipped {why}");
    }
    tracing::info!(
        "cache: {} images unchanged, not re-hashed",
        report.unchanged.len()
    );
    let settings = HubSettings::load(&db).map_err(AdminError::from)?;
    if let Some(file) = super::passwd::ensure_password(&paths, &db)? {
        tracing::warn!(
            "no admin password was set: generated one and wrote it to {} (mode 0600); \
             sign in to https://HUB/admin/ with it, and change it with `swarmhub hub admin passwd`",
            file.display()
        );
    }
    let ca = HubCa::load_or_create(&paths.ca_dir()).map_err(|e| ServeError::Io(e.to_string()))?;
    let names = hostnames::effective(settings.hostnames.as_deref(), Some(opts.listen));
    let peer_tls = PeerTls::new(&ca, &db, names)?;
    if !settings.peer_tls {
        tracing::warn!("{PEER_TLS_OFF_WARNING}");
    }
    let config = TrackerConfig {
        interval: swarmhub_core::Duration::from_secs(opts.announce_interval_s.max(1)),
        min_interval: swarmhub_core::Duration::from_secs((opts.announce_interval_s / 4).max(1)),
        ..TrackerConfig::default()
    };
    let mut tracker = Tracker::new(config, random_u64());
    for u in db.users().map_err(AdminError::from)? {
        if u.revoked {
            tracker.revoke(&u.name);
        }
    }

    let api = crate::peer::listener::listen(opts.listen).map_err(|error| ServeError::Bind {
        what: format!("{} (HTTP API)", opts.listen),
        error,
    })?;
    let api_addr = api
        .local_addr()
        .map_err(|e| ServeError::Io(e.to_string()))?;
    let seeder = peer::bind_first_free(opts.listen.ip(), opts.seed_ports)
        .await
        .map_err(|error| ServeError::Bind {
            what: format!("seed ports {}", opts.seed_ports),
            error,
        })?;
    let seed_addr = seeder
        .local_addr()
        .map_err(|e| ServeError::Io(e.to_string()))?;
    let metrics = Arc::new(HubMetrics::new());
    let metrics_server = MetricsServer::start_optional(
        opts.metrics_listen,
        metrics.registry(),
        &paths.run_file("metrics.addr"),
    )
    .await?;
    if let Ok(facts) = crate::tls::cert_facts(ca.cert_der()) {
        metrics.set_certificate_expiry("ca", facts.not_after);
    }
    let admin_token = random_hex(24).map_err(|e| ServeError::Io(e.to_string()))?;

    let state = Arc::new(HubState {
        paths: paths.clone(),
        db: Mutex::new(db),
        tracker: Mutex::new(tracker),
        origin: tokio::time::Instant::now(),
        seed_port: seed_addr.port(),
        settings: RwLock::new(settings.clone()),
        by_name: RwLock::new(BTreeMap::new()),
        by_hash: RwLock::new(HashMap::new()),
        admin_token: admin_token.clone(),
        advertise_ip: opts.advertise_ip,
        ca,
        cert_lifetime: opts.cert_lifetime,
        peer_revocations: peer_tls.revocations.clone(),
        auth: RwLock::new(Arc::new(AuthSnapshot::default())),
        auth_generation: std::sync::atomic::AtomicU64::new(0),
        counters: Arc::new(HubCounters::default()),
        console: ConsoleState::default(),
        listen: opts.listen,
        upload_limit_bps: opts.max_upload_bps,
        metrics: metrics.clone(),
    });
    state.refresh_auth();
    write_run_files(&paths, api_addr, seed_addr, &admin_token)?;

    let switch = Arc::new(SwitchTransport::new(
        peer_tls.transport.clone(),
        settings.peer_tls,
    ));
    let transport: Arc<dyn Transport> = switch.clone();
    let registry = Registry::default();
    let listener = peer::spawn_counted_listener(
        seeder,
        transport.clone(),
        registry.clone(),
        metrics.seeder_link(),
    );
    let mut seeders = Seeders {
        state: state.clone(),
        transport,
        switch,
        revocations: peer_tls.revocations,
        registry,
        limits: Arc::new(Limits::new(opts.max_upload_bps, 0)),
        running: HashMap::new(),
    };
    sync_catalog(&state, &mut seeders).await;

    let (stop_tx, mut stop_rx) = watch::channel(false);
    let app = super::api::router(state.clone());
    let server = tokio::spawn(super::https::serve(
        api,
        peer_tls.api,
        app,
        state.clone(),
        state.counters.clone(),
        stop_rx.clone(),
        metrics.api_link(),
    ));
    println!("swarmhub hub: API and tracker on https://{api_addr}, seeder on {seed_addr}");
    if let Some(m) = &metrics_server {
        println!("swarmhub hub: metrics on http://{}/metrics", m.addr());
    }
    tracing::info!(
        "API and tracker on https://{api_addr}; seeder on {seed_addr}; state in {}; CA {}",
        paths.root.display(),
        state.ca.fingerprint()
    );

    let signal = tokio::spawn(async move {
        tokio::select! {
            _ = wait_for_signal() => {}
            _ = stop => {}
        }
        let _ = stop_tx.send(true);
    });
    let mut hub_cert = peer_tls.cert;
    let mut version = -1;
    loop {
        tokio::select! {
            _ = stop_rx.wait_for(|s| *s) => break,
            _ = tokio::time::sleep(Duration::from_millis(500)) => {}
        }
        let changed = {
            let v = state
                .db
                .lock()
                .ok()
                .and_then(|db| db.data_version().ok())
                .unwrap_or(version);
            let c = v != version;
            version = v;
            c
        };
        if changed {
            sync_catalog(&state, &mut seeders).await;
        }
        expire(&state);
        seeders.publish();
        let names = hostnames::effective(state.settings().hostnames.as_deref(), Some(opts.listen));
        if names != hub_cert.names {
            hub_cert.names = names;
            hub_cert.reissue(&state.ca);
            tracing::info!(
                "host names changed: the hub certificate now names {}",
                hostnames::list_text(&hub_cert.names)
            );
        } else {
            hub_cert.renew_if_due(&state.ca);
        }
        metrics.set_certificate_expiry("hub", hub_cert.not_after);
        update_peer_gauges(&state);
    }
    tracing::info!("shutting down: stopping the seeder and the API");
    listener.abort();
    seeders.stop_all().await;
    let _ = server.await;
    signal.abort();
    drop(metrics_server);
    for f in ["api.addr", "seed.addr", "admin.token", "metrics.addr"] {
        let _ = std::fs::remove_file(paths.run_file(f));
    }
    tracing::info!("hub stopped");
    Ok(())
}

fn write_run_files(
    paths: &HubPaths,
    api: SocketAddr,
    seed: SocketAddr,
    token: &str,
) -> Result<(), ServeError> {
    let io = |e: std::io::Error| ServeError::Io(format!("{}: {e}", paths.run_file("").display()));
    write_atomic(&paths.run_file("admin.token"), token.as_bytes()).map_err(io)?;
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(
            paths.run_file("admin.token"),
            std::fs::Permissions::from_mode(0o600),
        )
        .map_err(io)?;
    }
    write_atomic(&paths.run_file("seed.addr"), seed.to_string().as_bytes()).map_err(io)?;
    write_atomic(&paths.run_file("api.addr"), api.to_string().as_bytes()).map_err(io)
}

async fn wait_for_signal() {
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

/// The tracker's seeders and leechers of every served image, as gauges.
fn update_peer_gauges(state: &HubState) {
    let served: Vec<(String, Id20)> = state
        .by_name
        .read()
        .map(|m| {
            m.iter()
                .map(|(k, v)| (k.clone(), v.meta.info_hash))
                .collect()
        })
        .unwrap_or_default();
    let Ok(t) = state.tracker.lock() else { return };
    for (name, hash) in served {
        let stats = t.swarm_stats(&hash);
        state.metrics.set_peers(
            &name,
            stats.map_or(0, |s| s.seeders),
            stats.map_or(0, |s| s.leechers),
        );
    }
}

fn expire(state: &HubState) {
    let now = state.now();
    if let Ok(mut t) = state.tracker.lock() {
        if t.poll_timeout().is_some_and(|at| at <= now) {
            let n = t.expire(now);
            if n > 0 {
                tracing::info!(target: TRACKER_TARGET, "expired {n} silent peers");
            }
        }
    }
}

struct Seeders {
    state: Arc<HubState>,
    transport: Arc<dyn Transport>,
    switch: Arc<SwitchTransport>,
    revocations: Arc<Revocations>,
    registry: Registry,
    limits: Arc<Limits>,
    running: HashMap<Id20, SwarmHandle>,
}

impl Seeders {
    fn start(&mut self, served: &Served) {
        if self.running.contains_key(&served.meta.info_hash) {
            return;
        }
        let state = self.state.clone();
        let local = move |info_hash, peer_id, p: swarmhub_core::node::AnnounceParams| {
            let ip = state
                .advertise_ip
                .unwrap_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED));
            let req = p.to_request(info_hash, peer_id, ip);
            let auth = Auth::Verified {
                identity: HUB_IDENTITY.to_owned(),
                registered: true,
            };
            let now = state.now();
            let site = state.site_of(ip);
            let mut t = state
                .tracker
                .lock()
                .map_err(|_| "tracker lock poisoned".to_owned())?;
            t.set_site(HUB_IDENTITY, site);
            t.handle_announce(now, &auth, &req)
                .map_err(|e| e.to_string())
        };
        let spec = SwarmSpec {
            max_peers: None,
            meta: served.meta.clone(),
            storage: served.storage.clone(),
            have: PieceSet::full(served.meta.num_pieces()),
            peer_id: peer::new_peer_id(peer::HUB_PEER_ID_PREFIX),
            listen_port: self.state.seed_port,
            transport: self.transport.clone(),
            announcer: Announcer::Local(Arc::new(local)),
            limits: self.limits.clone(),
            registry: self.registry.clone(),
            hub: Some(self.seeder_settings()),
            metrics: Some(SwarmMetrics::hub(&self.state.metrics, &served.name)),
        };
        match peer::spawn_swarm(spec) {
            Ok(h) => {
                self.running.insert(served.meta.info_hash, h);
            }
            Err(e) => tracing::error!("image {}: cannot start seeding: {e}", served.name),
        }
    }

    /// The seeder's settings for a swarm started now; without an `upload`
    /// setting, the `--max-upload-rate` limit is the upload capacity.
    fn seeder_settings(&self) -> swarmhub_core::settings::HubSettings {
        let settings = self.state.settings();
        let mut seeder = settings.seeder;
        seeder.super_seed = seeder.super_seed && settings.p2p;
        if seeder.upload_bps.is_none() && self.limits.up.bps() > 0 {
            seeder.upload_bps = Some(self.limits.up.bps());
        }
        seeder
    }

    async fn stop(&mut self, info_hash: &Id20) {
        if let Some(h) = self.running.remove(info_hash) {
            let sent = h.status.borrow().bytes_up;
            self.state.counters.seeder_stopped(*info_hash, sent);
            self.state.counters.seeder_stopped_to(*info_hash);
            h.shutdown().await;
        }
    }

    async fn stop_all(&mut self) {
        let all: Vec<(Id20, SwarmHandle)> = self.running.drain().collect();
        for (hash, h) in all {
            let sent = h.status.borrow().bytes_up;
            self.state.counters.seeder_stopped(hash, sent);
            self.state.counters.seeder_stopped_to(hash);
            h.shutdown().await;
        }
        self.state.counters.set_seeder_connections(0);
    }

    /// Copy the running swarms' figures into the counters.
    fn publish(&self) {
        let mut peers = 0;
        for (hash, h) in &self.running {
            let st = h.status.borrow();
            peers += st.peers as u64;
            self.state.counters.seeder_running(*hash, st.bytes_up);
            self.state
                .counters
                .seeder_running_to(*hash, &st.bytes_up_by_identity);
        }
        self.state.counters.set_seeder_connections(peers);
    }
}

/// Bring the served images, the tracker's swarms and revocations, the settings
/// and the seeders in line with the database.
async fn sync_catalog(state: &Arc<HubState>, seeders: &mut Seeders) {
    let loaded = {
        let Ok(db) = state.db.lock() else { return };
        let settings = HubSettings::load(&db);
        let rows = db.images();
        let users = db.users();
        (settings, rows, users)
    };
    let (Ok(settings), Ok(rows), Ok(users)) = loaded else {
        tracing::error!("cannot read the hub database; keeping the current catalog");
        return;
    };
    let mut seeder_changed = false;
    state.refresh_auth();
    if let Ok(mut s) = state.settings.write() {
        seeder_changed = s.seeder != settings.seeder;
        if *s != settings {
            tracing::info!(
                "settings: image cache {}, peer-to-peer {}, hub seeder {}, peer TLS {}",
                on_off(settings.cache),
                on_off(settings.p2p),
                on_off(settings.seed),
                on_off(settings.peer_tls)
            );
        }
        *s = settings.clone();
    }
    state
        .metrics
        .set_upload_capacity(seeders.seeder_settings().upload_bps);
    if seeder_changed && !seeders.running.is_empty() {
        tracing::info!(
            "seeder settings changed ({:?}): restarting the seeder's swarms",
            settings.seeder
        );
        seeders.stop_all().await;
    }
    seeders.revocations.set(
        users
            .iter()
            .filter(|u| u.revoked)
            .map(|u| u.name.clone())
            .collect(),
    );
    if let Some(keys) = state.db.lock().ok().and_then(|db| db.cert_keys().ok()) {
        seeders.revocations.set_keys(keys.into_iter().collect());
    }
    if seeders.switch.set_tls(settings.peer_tls) {
        if settings.peer_tls {
            tracing::info!("peer TLS switched on: restarting the seeder's swarms");
        } else {
            tracing::warn!("{PEER_TLS_OFF_WARNING}");
        }
        seeders.stop_all().await;
    }
    if let Ok(mut t) = state.tracker.lock() {
        for u in &users {
            // Both idempotent: only a change of state moves the epoch.
            if u.revoked {
                t.revoke(&u.name);
            } else {
                t.unrevoke(&u.name);
            }
        }
    }
    let wanted: BTreeMap<String, crate::db::ImageRow> =
        rows.into_iter().map(|r| (r.name.clone(), r)).collect();
    let current: Vec<(String, Id20)> = state
        .by_name
        .read()
        .map(|m| {
            m.iter()
                .map(|(k, v)| (k.clone(), v.meta.info_hash))
                .collect()
        })
        .unwrap_or_default();
    for (name, hash) in &current {
        let keep = wanted
            .get(name)
            .is_some_and(|r| r.info_hash == crate::util::hex(&hash.0));
        if !keep {
            remove_image(state, name, hash);
            seeders.stop(hash).await;
            tracing::info!("image {name}: no longer served");
        }
    }
    for (name, row) in &wanted {
        let known = state
            .by_name
            .read()
            .map(|m| m.contains_key(name))
            .unwrap_or(true);
        if !known {
            match load_image(&state.paths, row) {
                Ok(served) => {
                    add_image(state, served);
                    tracing::info!("image {name}: served");
                }
                Err(e) => tracing::error!("image {name}: cannot serve: {e}"),
            }
        }
    }
    let served: Vec<Arc<Served>> = state
        .by_name
        .read()
        .map(|m| m.values().cloned().collect())
        .unwrap_or_default();
    if settings.p2p && settings.seed {
        for s in &served {
            seeders.start(s);
        }
    } else if !seeders.running.is_empty() {
        tracing::info!("peer-to-peer or hub seeder disabled: stopping the seeder");
        seeders.stop_all().await;
    }
}

/// The hub's own certificate: the TLS transport of its seeder and the TLS
/// acceptor of its API.
struct PeerTls {
    transport: Arc<dyn Transport>,
    revocations: Arc<Revocations>,
    api: tokio_rustls::TlsAcceptor,
    cert: HubCert,
}

/// Lifetime of the hub's own certificate (made afresh at every start).
const HUB_CERT_LIFETIME: Duration = Duration::from_secs(90 * 24 * 3600);
/// A running hub re-issues its certificate when a third of it is left.
const HUB_CERT_RENEW_AFTER: Duration = Duration::from_secs(60 * 24 * 3600);

/// The hub's own key and the certificate stores of its seeder and API.
struct HubCert {
    key: rcgen::KeyPair,
    peer: Arc<KeyStore>,
    api: Arc<KeyStore>,
    issued: tokio::time::Instant,
    /// Host names and addresses the certificate carries.
    names: Vec<HostName>,
    /// End of validity of the current certificate (for the metrics).
    not_after: std::time::SystemTime,
}

type CertifiedPair = (
    Arc<rustls::sign::CertifiedKey>,
    Arc<rustls::sign::CertifiedKey>,
);

impl HubCert {
    /// Sign a fresh certificate for `key`: for the seeder (leaf only) and
    /// for the API (leaf and CA, so that a client can pin the CA at login).
    fn issue(
        ca: &HubCa,
        key: &rcgen::KeyPair,
        names: &[HostName],
    ) -> Result<CertifiedPair, crate::tls::TlsError> {
        let cert = ca.sign_hub_key(
            crate::tls::HUB_IDENTITY,
            key,
            std::time::SystemTime::now(),
            HUB_CERT_LIFETIME,
            names,
        )?;
        let peer = crate::tls::creds::certified_key(key, cert.clone())?;
        let api = crate::tls::creds::certified_key_chain(key, vec![cert, ca.cert_der().clone()])?;
        Ok((peer, api))
    }

    /// Re-issue when due; new connections get the new certificate.
    fn renew_if_due(&mut self, ca: &HubCa) {
        if self.issued.elapsed() >= HUB_CERT_RENEW_AFTER {
            self.reissue(ca);
        }
    }

    /// Issue afresh now (new names, or renewal).
    fn reissue(&mut self, ca: &HubCa) {
        match Self::issue(ca, &self.key, &self.names) {
            Ok((peer, api)) => {
                self.not_after = not_after(&peer);
                self.peer.replace(peer);
                self.api.replace(api);
                self.issued = tokio::time::Instant::now();
                tracing::info!("re-issued the hub's own certificate");
            }
            Err(e) => tracing::error!("cannot re-issue the hub's own certificate: {e}"),
        }
    }
}

/// End of validity of a certified key's leaf certificate.
fn not_after(key: &rustls::sign::CertifiedKey) -> std::time::SystemTime {
    key.cert
        .first()
        .and_then(|c| crate::tls::cert_facts(c).ok())
        .map_or(std::time::SystemTime::UNIX_EPOCH, |f| f.not_after)
}

impl PeerTls {
    fn new(ca: &HubCa, db: &Db, names: Vec<HostName>) -> Result<PeerTls, ServeError> {
        let tls = |e: crate::tls::TlsError| ServeError::Io(format!("hub certificate: {e}"));
        let key = crate::tls::creds::new_key().map_err(tls)?;
        let (peer_key, api_key) = HubCert::issue(ca, &key, &names).map_err(tls)?;
        let expires = not_after(&peer_key);
        let keys = KeyStore::new(peer_key);
        let api_keys = KeyStore::new(api_key);
        // Revocation on the API is answered by the handlers (403, with a
        // message), not by a TLS alert.
        let api = crate::tls::peer::api_server_config(
            ca.cert_der(),
            api_keys.clone(),
            Revocations::new(),
        )
        .map_err(tls)?;
        let revocations = Revocations::new();
        revocations.set(
            db.users()
                .map_err(AdminError::from)?
                .into_iter()
                .filter(|u| u.revoked)
                .map(|u| u.name)
                .collect(),
        );
        let transport =
            TlsTransport::new(ca.cert_der(), keys.clone(), revocations.clone()).map_err(tls)?;
        Ok(PeerTls {
            transport: Arc::new(transport),
            revocations,
            api: tokio_rustls::TlsAcceptor::from(Arc::new(api)),
            cert: HubCert {
                key,
                peer: keys,
                api: api_keys,
                issued: tokio::time::Instant::now(),
                names,
                not_after: expires,
            },
        })
    }
}

fn on_off(b: bool) -> &'static str {
    if b {
        "enabled"
    } else {
        "disabled"
    }
}

fn load_image(paths: &HubPaths, row: &crate::db::ImageRow) -> Result<Served, String> {
    let image: ImageName = row.name.parse().map_err(|e| format!("{e}"))?;
    let meta = Arc::new(row_metainfo(row).map_err(|e| e.to_string())?);
    let dir = paths.image_dir(&image);
    let storage = Storage::open(&dir, meta.clone(), false).map_err(|e| e.to_string())?;
    Ok(Served {
        name: row.name.clone(),
        meta,
        storage: Arc::new(storage),
    })
}

fn add_image(state: &HubState, served: Served) {
    let served = Arc::new(served);
    state.metrics.track_image(&served.name);
    if let Ok(mut t) = state.tracker.lock() {
        t.add_swarm(served.meta.info_hash);
    }
    if let Ok(mut m) = state.by_hash.write() {
        m.insert(served.meta.info_hash, served.clone());
    }
    if let Ok(mut m) = state.by_name.write() {
        m.insert(served.name.clone(), served);
    }
}

fn remove_image(state: &HubState, name: &str, hash: &Id20) {
    state.metrics.forget_image(name);
    if let Ok(mut t) = state.tracker.lock() {
        t.remove_swarm(hash);
    }
    if let Ok(mut m) = state.by_hash.write() {
        m.remove(hash);
    }
    if let Ok(mut m) = state.by_name.write() {
        m.remove(name);
    }
}

#[cfg(test)]
mod announce_tests {
    use super::announce_url;

    #[test]
    fn announce_url_is_the_callers_authority_or_the_local_address() {
        let local = Some("[::ffff:10.0.0.5]:7070".parse().unwrap());
        assert_eq!(
            announce_url(Some("hub.example:7070"), local).as_deref(),
            Some("https://hub.example:7070/announce")
        );
        for bad in ["", "evil/x?y", "a b", "x\r\nSet-Cookie:1"] {
            assert_eq!(
                announce_url(Some(bad), local).as_deref(),
                Some("https://10.0.0.5:7070/announce"),
                "{bad:?}"
            );
        }
        assert_eq!(announce_url(None, None), None);
    }
}
