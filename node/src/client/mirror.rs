//! `swarmhub mirror`: the OCI distribution read API on loopback, for
//! containerd (`hosts.toml`) and skopeo, with manifests and blobs from the
//! swarm.
//!
//! A manifest or blob the hub has is pulled as its swarmhub image (hub
//! seeder and peers, mutual TLS) into the local store, and seeded afterwards
//! by the service this command runs. The pull runs in the background: a
//! manifest is answered as soon as its own pieces are verified and its
//! SHA-256 matches, and a blob asked for meanwhile is streamed as the pieces
//! holding it are verified, its digest checked before its last bytes go out
//! ([`super::mirror_live`]); the swarm fetches the pieces a reader waits for
//! first. A complete local blob is checked against its digest before a byte
//! is served. Blobs already held locally under the same digest, from
//! any image, are copied into the download first, so they are not fetched
//! again. What the hub lacks is answered 404, so containerd falls back to
//! the registry itself; the mirror never sees registry credentials.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use axum::body::Body;
use axum::http::{header, HeaderMap, HeaderValue, Method, Response, StatusCode, Uri};
use oci_spec::distribution::ErrorCode;
use swarmhub_core::metainfo::Metainfo;
use tokio::io::{AsyncReadExt, AsyncSeekExt};

use super::live::{LivePull, PullLink};
use super::mirror_live::{self, LiveFile};
use super::{open_db, pull_embedded, ClientConfig, ClientError, HubError, PullOptions};
use crate::image::ImageName;
use crate::metrics::client::MirrorMetrics;
use crate::metrics::{counter_sum, ClientMetrics, MetricsListen};
use crate::oci::digest::Sha256Digest;
use crate::oci::dist::{parse_path, parse_range, DistError, ManifestRef, RangeError, Request};
use crate::oci::reference::hub_name;
use crate::oci::walk::manifest_media_type;
use crate::oci::{
    blob_components, blob_of_components, blob_rel_path, parse_stored_root, MAX_MANIFEST_BYTES,
};
use crate::paths::{write_atomic, ClientPaths};
use crate::peer::PortRange;

/// The mirror's default address.
pub const DEFAULT_LISTEN: &str = "127.0.0.1:5050";
/// Path of the counters (JSON), outside the `/v2/` API.
pub const STATS_PATH: &str = "/swarmhub/stats";

/// Options of `swarmhub mirror`.
#[derive(Clone, Debug)]
pub struct MirrorOptions {
    /// Where to listen: loopback only.
    pub listen: SocketAddr,
    /// Peer ports for pulls and seeding.
    pub peer_ports: Option<PortRange>,
    /// Where `swarmhub mirror` serves its Prometheus metrics (none by default).
    pub metrics_listen: MetricsListen,
}

/// The `/swarmhub/stats` JSON: the mirror's metric families (see
/// [`MirrorMetrics`]) summed, and the pulls running now.
fn stats_json(m: &MirrorMetrics, pulling: Vec<serde_json::Value>) -> serde_json::Value {
    let req = |labels: &[(&str, &str)]| counter_sum(&m.requests, labels);
    let from = |source: &str| counter_sum(&m.fetched_bytes, &[("source", source)]);
    serde_json::json!({
        "requests": req(&[]),
        "manifests_served": req(&[("kind", "manifest"), ("status", "200")]),
        "blobs_served": req(&[("kind", "blob"), ("status", "200")])
            + req(&[("kind", "blob"), ("status", "206")]),
        "blobs_streamed": m.streamed_blobs.get(),
        "streams_aborted": m.aborted_streams.get(),
        "bytes_served": m.served_bytes.get(),
        "not_found": req(&[("status", "404")]),
        "refused_unverified": m.refused_unverified.get(),
        "pulls": counter_sum(&m.pulls, &[("result", "complete")]),
        "pulls_failed": counter_sum(&m.pulls, &[("result", "failed")]),
        "bytes_from_hub": from("hub"),
        "bytes_from_peers": from("peer"),
        "bytes_from_http": from("http"),
        "bytes_reused_local": from("local"),
        "pulling": pulling,
    })
}

struct Mirror {
    paths: ClientPaths,
    peer_ports: Option<PortRange>,
    metrics: Arc<ClientMetrics>,
    /// One decision to pull an image at a time.
    locks: tokio::sync::Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>,
    /// Pulls running in the background, by image.
    pulls: std::sync::Mutex<HashMap<String, LivePull>>,
    /// Blob files checked against their digest: path -> (length, mtime).
    verified: std::sync::Mutex<HashMap<PathBuf, (u64, std::time::SystemTime)>>,
    stop: tokio::sync::watch::Receiver<bool>,
}

fn other(e: impl std::fmt::Display) -> ClientError {
    ClientError::Other(e.to_string())
}

/// Run the mirror and seed every local image until SIGINT/SIGTERM.
pub async fn mirror(paths: &ClientPaths, opts: &MirrorOptions) -> Result<(), ClientError> {
    check_listen(opts.listen)?;
    let metrics = Arc::new(ClientMetrics::new());
    with_seeding(
        serve(paths, opts, metrics.clone()),
        super::service::seed_all(
            paths,
            opts.peer_ports,
            None,
            None,
            metrics,
            opts.metrics_listen,
        ),
    )
    .await
}

/// Run the mirror's server beside the seeding loop: both stop on a signal,
/// and the seeding is awaited so its swarms say `stopped` to the tracker.
pub(crate) async fn with_seeding(
    server: impl std::future::Future<Output = Result<(), ClientError>>,
    seeding: impl std::future::Future<Output = Result<(), ClientError>>,
) -> Result<(), ClientError> {
    tokio::pin!(seeding);
    tokio::select! {
        r = server => match r {
            Ok(()) => seeding.await,
            Err(e) => Err(e),
        },
        r = &mut seeding => r,
    }
}

fn check_listen(listen: SocketAddr) -> Result<(), ClientError> {
    if listen.ip().is_loopback() {
        return Ok(());
    }
    Err(other(format!(
        "--listen {listen}: the mirror serves this machine only; use a loopback address such as {DEFAULT_LISTEN}"
    )))
}

/// The mirror's server alone (the caller seeds and serves `metrics`), until
/// SIGINT/SIGTERM.
pub async fn serve(
    paths: &ClientPaths,
    opts: &MirrorOptions,
    metrics: Arc<ClientMetrics>,
) -> Result<(), ClientError> {
    check_listen(opts.listen)?;
    let db = open_db(paths)?;
    let cfg = ClientConfig::load(&db)?;
    cfg.hub(paths).await?;
    let tcp = tokio::net::TcpListener::bind(opts.listen)
        .await
        .map_err(|e| other(format!("cannot listen on {}: {e}", opts.listen)))?;
    let addr = tcp.local_addr().map_err(other)?;
    write_atomic(&paths.run_file("mirror.addr"), addr.to_string().as_bytes())
        .map_err(|e| other(format!("{}: {e}", paths.run_file("mirror.addr").display())))?;
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let state = Arc::new(Mirror {
        paths: paths.clone(),
        peer_ports: opts.peer_ports,
        metrics,
        locks: tokio::sync::Mutex::default(),
        pulls: std::sync::Mutex::default(),
        verified: std::sync::Mutex::default(),
        stop: stop_rx,
    });
    println!("swarmhub mirror: OCI registry API on http://{addr}");
    let app = axum::Router::new().fallback({
        let state = state.clone();
        move |method: Method, uri: Uri, headers: HeaderMap| {
            let state = state.clone();
            async move { handle(&state, method, uri, headers).await }
        }
    });
    let result = axum::serve(tcp, app)
        .with_graceful_shutdown(super::pull::signal())
        .await
        .map_err(|e| other(format!("mirror server: {e}")));
    let _ = stop_tx.send(true);
    let _ = std::fs::remove_file(paths.run_file("mirror.addr"));
    result
}

fn error_response(e: &DistError, head: bool) -> Response<Body> {
    let body = e.body();
    let mut r = Response::new(if head {
        Body::empty()
    } else {
        Body::from(body.clone())
    });
    *r.status_mut() = StatusCode::from_u16(e.status).unwrap_or(StatusCode::BAD_REQUEST);
    let h = r.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    h.insert(header::CONTENT_LENGTH, HeaderValue::from(body.len()));
    r
}

async fn handle(
    state: &Arc<Mirror>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
) -> Response<Body> {
    let (kind, r) = route(state, &method, &uri, &headers).await;
    state
        .metrics
        .mirror
        .requests
        .with_label_values(&[kind, r.status().as_str()])
        .inc();
    r
}

/// The answer to one request, and its kind for the request counter.
async fn route(
    state: &Arc<Mirror>,
    method: &Method,
    uri: &Uri,
    headers: &HeaderMap,
) -> (&'static str, Response<Body>) {
    let head = method == Method::HEAD;
    if uri.path() == STATS_PATH {
        let json = stats_json(&state.metrics.mirror, state.pulling());
        let mut r = Response::new(Body::from(json.to_string()));
        r.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
        return ("stats", r);
    }
    let parsed = parse_path(uri.path());
    let kind = match &parsed {
        Ok(Request::Base) => "base",
        Ok(Request::Manifest { .. }) => "manifest",
        Ok(Request::Blob { .. }) => "blob",
        Err(_) => "invalid",
    };
    if method != Method::GET && !head {
        let e = DistError::new(405, ErrorCode::Unsupported, "this mirror is read-only");
        return (kind, error_response(&e, false));
    }
    let result = match parsed {
        Err(e) => Err(e),
        Ok(Request::Base) => {
            let mut r = Response::new(if head {
                Body::empty()
            } else {
                Body::from("{}")
            });
            let h = r.headers_mut();
            h.insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/json"),
            );
            h.insert(header::CONTENT_LENGTH, HeaderValue::from(2));
            h.insert(
                "docker-distribution-api-version",
                HeaderValue::from_static("registry/2.0"),
            );
            Ok(r)
        }
        Ok(Request::Manifest { name, reference }) => {
            serve_manifest(state, &name, &reference, head).await
        }
        Ok(Request::Blob { name, digest }) => {
            let range = headers
                .get(header::RANGE)
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned);
            serve_blob(state, &name, &digest, range.as_deref(), head).await
        }
    };
    let r = result.unwrap_or_else(|e| {
        // The path only: a query string may carry a registry token.
        tracing::info!(
            "mirror {} {}: {} {}",
            method,
            uri.path(),
            e.status,
            e.message
        );
        error_response(&e, head)
    });
    (kind, r)
}

fn unknown_manifest(what: impl std::fmt::Display) -> DistError {
    DistError::new(404, ErrorCode::ManifestUnknown, what.to_string())
}

fn unknown_blob(what: impl std::fmt::Display) -> DistError {
    DistError::new(404, ErrorCode::BlobUnknown, what.to_string())
}

async fn serve_manifest(
    state: &Arc<Mirror>,
    name: &str,
    reference: &ManifestRef,
    head: bool,
) -> Result<Response<Body>, DistError> {
    let (bytes, digest, media_type) = match reference {
        ManifestRef::Tag(tag) => {
            let image = hub_name(name, tag).map_err(unknown_manifest)?;
            let source = state.image_source(&image).await.map_err(unknown_manifest)?;
            let index = match &source {
                Source::Local(dir) => read_small(&dir.join("index.json"))
                    .await
                    .map_err(|e| unknown_manifest(format!("{image}: index.json: {e}")))?,
                Source::Live(live) => live_small(live, &["index.json".to_owned()])
                    .await
                    .map_err(|e| unknown_manifest(format!("{image}: index.json: {e}")))?,
            };
            let root = parse_stored_root(&index)
                .ok_or_else(|| unknown_manifest(format!("{image} is not an OCI image")))?;
            if root.repository.as_deref() != Some(name) {
                return Err(unknown_manifest(format!(
                    "{image} holds repository {:?}, not {name:?}",
                    root.repository
                )));
            }
            let bytes = match &source {
                Source::Local(dir) => read_small(&dir.join(blob_rel_path(&root.digest)))
                    .await
                    .map_err(|e| e.to_string()),
                Source::Live(live) => live_small(live, &blob_components(&root.digest)).await,
            }
            .map_err(|e| unknown_manifest(format!("manifest {}: {e}", root.digest)))?;
            let t = root.descriptor.media_type().to_string();
            (bytes, root.digest, Some(t))
        }
        ManifestRef::Digest(d) => {
            let bytes = match state.find_blob(name, d).await.map_err(unknown_manifest)? {
                BlobAt::Local(path) => read_small(&path).await.map_err(|e| e.to_string()),
                BlobAt::Live(f) => f.read_all(MAX_MANIFEST_BYTES).await,
            }
            .map_err(|e| unknown_manifest(format!("manifest {d}: {e}")))?;
            (bytes, *d, None)
        }
    };
    if Sha256Digest::of(&bytes) != digest {
        state.metrics.mirror.refused_unverified.inc();
        return Err(DistError::new(
            404,
            ErrorCode::DigestInvalid,
            format!("the local copy of manifest {digest} fails its digest; refused"),
        ));
    }
    let media_type = media_type.unwrap_or_else(|| manifest_media_type(&bytes));
    let len = bytes.len();
    let mut r = Response::new(if head {
        Body::empty()
    } else {
        Body::from(bytes)
    });
    let h = r.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_str(&media_type).map_err(|e| unknown_manifest(e.to_string()))?,
    );
    h.insert(header::CONTENT_LENGTH, HeaderValue::from(len));
    h.insert(
        "docker-content-digest",
        HeaderValue::from_str(&digest.to_string()).map_err(|e| unknown_manifest(e.to_string()))?,
    );
    Ok(r)
}

/// A small file (`components`) of an image being pulled, once verified.
async fn live_small(live: &LivePull, components: &[String]) -> Result<Vec<u8>, String> {
    LiveFile::find(live, components)
        .await?
        .ok_or_else(|| format!("the image has no {}", components.join("/")))?
        .read_all(MAX_MANIFEST_BYTES)
        .await
}

async fn read_small(path: &Path) -> std::io::Result<Vec<u8>> {
    let f = tokio::fs::File::open(path).await?;
    let mut out = Vec::new();
    f.take(MAX_MANIFEST_BYTES + 1).read_to_end(&mut out).await?;
    if out.len() as u64 > MAX_MANIFEST_BYTES {
        return Err(std::io::Error::other("larger than a manifest may be"));
    }
    Ok(out)
}

async fn serve_blob(
    state: &Arc<Mirror>,
    name: &str,
    digest: &Sha256Digest,
    range: Option<&str>,
    head: bool,
) -> Result<Response<Body>, DistError> {
    let (path, len) = match state.find_blob(name, digest).await.map_err(unknown_blob)? {
        BlobAt::Local(path) => {
            let len = state.verify(&path, digest).await.map_err(|e| {
                state.metrics.mirror.refused_unverified.inc();
                DistError::new(404, ErrorCode::DigestInvalid, e)
            })?;
            (Ok(path), len)
        }
        BlobAt::Live(f) => {
            let len = f.len;
            (Err(f), len)
        }
    };
    let (status, first, count) = match range.map(|r| parse_range(r, len)) {
        None | Some(Err(RangeError::Ignore)) => (StatusCode::OK, 0, len),
        Some(Ok(r)) => (StatusCode::PARTIAL_CONTENT, r.first, r.last - r.first + 1),
        Some(Err(RangeError::Unsatisfiable)) => {
            let e = DistError::new(
                416,
                ErrorCode::SizeInvalid,
                format!(
                    "range {:?} is past the end of blob {digest} ({len} bytes)",
                    range.unwrap_or("")
                ),
            );
            let mut r = error_response(&e, head);
            r.headers_mut().insert(
                header::CONTENT_RANGE,
                HeaderValue::from_str(&format!("bytes */{len}"))
                    .map_err(|e| unknown_blob(e.to_string()))?,
            );
            return Ok(r);
        }
    };
    let body = match path {
        _ if head => Body::empty(),
        Err(live) => {
            state.metrics.mirror.streamed_blobs.inc();
            mirror_live::stream(live, *digest, first, count, state.metrics.clone())
        }
        Ok(path) => {
            let mut f = tokio::fs::File::open(&path)
                .await
                .map_err(|e| unknown_blob(format!("{}: {e}", path.display())))?;
            f.seek(std::io::SeekFrom::Start(first))
                .await
                .map_err(|e| unknown_blob(format!("{}: {e}", path.display())))?;
            state.metrics.mirror.served_bytes.inc_by(count);
            Body::from_stream(tokio_util::io::ReaderStream::new(f.take(count)))
        }
    };
    let mut r = Response::new(body);
    *r.status_mut() = status;
    let h = r.headers_mut();
    let bad = |e: axum::http::header::InvalidHeaderValue| unknown_blob(e.to_string());
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/octet-stream"),
    );
    h.insert(header::CONTENT_LENGTH, HeaderValue::from(count));
    h.insert(header::ACCEPT_RANGES, HeaderValue::from_static("bytes"));
    h.insert(
        "docker-content-digest",
        HeaderValue::from_str(&digest.to_string()).map_err(bad)?,
    );
    if status == StatusCode::PARTIAL_CONTENT {
        h.insert(
            header::CONTENT_RANGE,
            HeaderValue::from_str(&format!("bytes {first}-{}/{len}", first + count - 1))
                .map_err(bad)?,
        );
    }
    Ok(r)
}

/// Where an image's files are.
enum Source {
    /// Complete in this folder.
    Local(PathBuf),
    /// Being pulled.
    Live(LivePull),
}

/// Where a blob is.
enum BlobAt {
    /// A file of a complete image.
    Local(PathBuf),
    /// A file of an image being pulled.
    Live(LiveFile),
}

/// Log a background pull's progress every few seconds until it ends.
async fn log_progress(image: ImageName, live: LivePull) {
    let rx = live.progress();
    drop(live);
    loop {
        tokio::time::sleep(PROGRESS_EVERY).await;
        let p = rx.borrow().clone();
        if p.ended() || rx.has_changed().is_err() {
            return;
        }
        let total = p.meta.as_ref().map_or(0, |m| m.total_length());
        tracing::info!(
            "mirror: pulling {image}: {}% ({} of {})",
            p.percent(),
            crate::util::human_bytes(p.have_bytes),
            crate::util::human_bytes(total)
        );
    }
}

/// How often a background pull's progress is logged.
const PROGRESS_EVERY: std::time::Duration = std::time::Duration::from_secs(5);

/// Local blobs by digest: (file, length).
type LocalBlobs = HashMap<Sha256Digest, (PathBuf, u64)>;

/// Every blob of every complete local image (on a blocking thread: it reads
/// the database and looks at every blob file).
async fn local_blobs(paths: &ClientPaths) -> Result<LocalBlobs, ClientError> {
    let paths = paths.clone();
    tokio::task::spawn_blocking(move || local_blobs_now(&paths))
        .await
        .map_err(other)?
}

fn local_blobs_now(paths: &ClientPaths) -> Result<LocalBlobs, ClientError> {
    let db = open_db(paths)?;
    let mut out = HashMap::new();
    for row in db.images()? {
        let (Ok(meta), Ok(image)) = (
            Metainfo::from_bytes(&row.metainfo),
            row.name.parse::<ImageName>(),
        ) else {
            continue;
        };
        let dir = paths.image_dir(&image);
        for f in &meta.files {
            if let Some(d) = blob_of_components(&f.path) {
                let p = dir.join(blob_rel_path(&d));
                if p.is_file() {
                    out.entry(d).or_insert((p, f.length));
                }
            }
        }
    }
    Ok(out)
}

impl Mirror {
    /// Where the files of `image` are: the local folder when it is complete
    /// and current (or the hub is unreachable and a local copy exists), else
    /// the pull of it running in the background, started here if none runs.
    async fn image_source(self: &Arc<Self>, image: &ImageName) -> Result<Source, String> {
        let lock = {
            let mut locks = self.locks.lock().await;
            locks.entry(image.to_string()).or_default().clone()
        };
        let _held = lock.lock().await;
        if let Some(live) = self.running(image) {
            return Ok(Source::Live(live));
        }
        let dir = self.paths.image_dir(image);
        let db = open_db(&self.paths).map_err(|e| e.to_string())?;
        let have_local = db.image(&image.to_string()).ok().flatten().is_some() && dir.is_dir();
        let cfg = ClientConfig::load(&db).map_err(|e| e.to_string())?;
        let hub = match cfg.hub(&self.paths).await {
            Ok(h) => h,
            Err(e) if have_local => {
                tracing::warn!("{image}: hub unreachable ({e}); serving the local copy");
                return Ok(Source::Local(dir));
            }
            Err(e) => return Err(e.to_string()),
        };
        let meta = match hub.metainfo(image).await {
            Ok(bytes) => Metainfo::from_bytes(&bytes).map_err(|e| format!("{image}: {e}"))?,
            Err(HubError::Refused { status: 404, .. }) => {
                return Err(format!("the hub has no image {image}"));
            }
            Err(e) if have_local => {
                tracing::warn!("{image}: {e}; serving the local copy");
                return Ok(Source::Local(dir));
            }
            Err(e) => return Err(e.to_string()),
        };
        let up_to_date = db
            .image(&image.to_string())
            .ok()
            .flatten()
            .is_some_and(|r| r.info_hash == crate::util::hex(&meta.info_hash.0));
        if up_to_date && dir.is_dir() {
            // The service seeds it; a pull would only say "up to date".
            return Ok(Source::Local(dir));
        }
        Ok(Source::Live(self.start_pull(image, meta)))
    }

    /// The pulls running now: image, percent verified, bytes (for the
    /// stats, `images` and `doctor`).
    fn pulling(&self) -> Vec<serde_json::Value> {
        let Ok(pulls) = self.pulls.lock() else {
            return Vec::new();
        };
        let mut out: Vec<_> = pulls
            .iter()
            .filter_map(|(image, live)| {
                let p = live.progress().borrow().clone();
                (!p.ended()).then(|| {
                    serde_json::json!({
                        "image": image,
                        "percent": p.percent(),
                        "bytes": p.have_bytes,
                        "total": p.meta.as_ref().map_or(0, |m| m.total_length()),
                    })
                })
            })
            .collect();
        out.sort_by(|a, b| a["image"].as_str().cmp(&b["image"].as_str()));
        out
    }

    /// The pull of `image` running now, if any.
    fn running(&self, image: &ImageName) -> Option<LivePull> {
        let pulls = self.pulls.lock().ok()?;
        let live = pulls.get(&image.to_string())?;
        (!live.progress().borrow().ended()).then(|| live.clone())
    }

    /// Pull `image` in the background; its progress is logged every few seconds.
    fn start_pull(self: &Arc<Self>, image: &ImageName, meta: Metainfo) -> LivePull {
        let (link, live) = PullLink::new();
        if let Ok(mut pulls) = self.pulls.lock() {
            pulls.insert(image.to_string(), live.clone());
        }
        tracing::info!(
            "mirror: pulling {image} ({}) through the swarm",
            crate::util::human_bytes(meta.total_length())
        );
        tokio::spawn(log_progress(image.clone(), live.clone()));
        let (this, image, mine) = (self.clone(), image.clone(), live.clone());
        let m = &self.metrics.mirror;
        m.pulls_running.inc();
        tokio::spawn(async move {
            let result = this.run_pull(&image, &meta, link.clone()).await;
            let m = &this.metrics.mirror;
            m.pulls_running.dec();
            let outcome = if result.is_ok() { "complete" } else { "failed" };
            m.pulls.with_label_values(&[outcome]).inc();
            if let Err(e) = result {
                tracing::warn!("mirror: {e}");
                link.update(|p| {
                    let first = p.failed.is_none();
                    if first {
                        p.failed = Some(e.clone());
                    }
                    first
                });
            }
            if let Ok(mut pulls) = this.pulls.lock() {
                if pulls.get(&image.to_string()).is_some_and(|l| l.same(&mine)) {
                    pulls.remove(&image.to_string());
                }
            }
        });
        live
    }

    async fn run_pull(
        &self,
        image: &ImageName,
        meta: &Metainfo,
        link: PullLink,
    ) -> Result<(), String> {
        let reused = self.seed_partial(meta).await.map_err(|e| e.to_string())?;
        let fetched = &self.metrics.mirror.fetched_bytes;
        fetched.with_label_values(&["local"]).inc_by(reused);
        let opts = PullOptions {
            image: image.to_string(),
            peer_ports: self.peer_ports,
            link: Some(link),
            metrics: Some(self.metrics.clone()),
            ..PullOptions::default()
        };
        let summary = pull_embedded(&self.paths, &opts, self.stop.clone())
            .await
            .map_err(|e| format!("pulling {image}: {e}"))?;
        for (source, n) in [
            ("hub", summary.from_hub),
            ("peer", summary.from_peers),
            ("http", summary.from_http),
        ] {
            fetched.with_label_values(&[source]).inc_by(n);
        }
        tracing::info!("mirror: {summary}");
        Ok(())
    }

    /// Copy blobs held locally under the digest the new image names into
    /// its download folder, so the pull verifies them instead of fetching
    /// them. Copies, not links: a piece that spans two files is written
    /// whole, and must not touch another image's file. Returns the bytes copied.
    async fn seed_partial(&self, meta: &Metainfo) -> Result<u64, ClientError> {
        let local = local_blobs(&self.paths).await?;
        let partial = self.paths.partial(&meta.info_hash);
        let wanted: Vec<(PathBuf, PathBuf, u64)> = meta
            .files
            .iter()
            .filter_map(|f| {
                let d = blob_of_components(&f.path)?;
                let (src, len) = local.get(&d)?;
                let dest = partial.join(blob_rel_path(&d));
                (*len == f.length && !dest.exists()).then(|| (src.clone(), dest, f.length))
            })
            .collect();
        tokio::task::spawn_blocking(move || {
            let mut copied = 0;
            for (src, dest, len) in wanted {
                if let Some(p) = dest.parent() {
                    std::fs::create_dir_all(p)
                        .map_err(|e| other(format!("{}: {e}", p.display())))?;
                }
                std::fs::copy(&src, &dest)
                    .map_err(|e| other(format!("{}: {e}", dest.display())))?;
                copied += len;
            }
            Ok(copied)
        })
        .await
        .map_err(other)?
    }

    /// Where blob `digest` is: a file of any complete local image, else a
    /// file of a pull running now, else of a pull started of the hub image of
    /// repository `name` that holds it.
    async fn find_blob(
        self: &Arc<Self>,
        name: &str,
        digest: &Sha256Digest,
    ) -> Result<BlobAt, String> {
        if let Some((p, _)) = local_blobs(&self.paths)
            .await
            .map_err(|e| e.to_string())?
            .remove(digest)
        {
            return Ok(BlobAt::Local(p));
        }
        let want = blob_components(digest);
        if let Some(f) = self.running_file(&want) {
            return Ok(BlobAt::Live(f));
        }
        let db = open_db(&self.paths).map_err(|e| e.to_string())?;
        let cfg = ClientConfig::load(&db).map_err(|e| e.to_string())?;
        let hub = cfg.hub(&self.paths).await.map_err(|e| e.to_string())?;
        let prefix = format!("{}:", name.replace('/', "."));
        for info in hub.images().await.map_err(|e| e.to_string())? {
            if !info.name.starts_with(&prefix) {
                continue;
            }
            let Ok(image) = info.name.parse::<ImageName>() else {
                continue;
            };
            let Ok(bytes) = hub.metainfo(&image).await else {
                continue;
            };
            let Ok(meta) = Metainfo::from_bytes(&bytes) else {
                continue;
            };
            if meta.files.iter().any(|f| f.path == want) {
                return match self.image_source(&image).await? {
                    Source::Local(dir) => Ok(BlobAt::Local(dir.join(blob_rel_path(digest)))),
                    Source::Live(live) => LiveFile::find(&live, &want)
                        .await?
                        .map(BlobAt::Live)
                        .ok_or_else(|| format!("{image} has no {digest}")),
                };
            }
        }
        Err(format!("no image of {name} on the hub holds {digest}"))
    }

    /// File `components` of a pull running now that knows its metainfo.
    fn running_file(&self, components: &[String]) -> Option<LiveFile> {
        let pulls = self.pulls.lock().ok()?;
        pulls.values().find_map(|live| {
            let p = live.progress();
            let p = p.borrow();
            if p.ended() {
                return None;
            }
            LiveFile::in_image(live, p.meta.as_ref()?, components)
        })
    }

    /// Check `path` against `digest` (once per file version); its length.
    async fn verify(&self, path: &Path, digest: &Sha256Digest) -> Result<u64, String> {
        let meta = tokio::fs::metadata(path)
            .await
            .map_err(|e| format!("{}: {e}", path.display()))?;
        let stamp = (meta.len(), meta.modified().map_err(|e| e.to_string())?);
        if self.verified.lock().map_err(|e| e.to_string())?.get(path) == Some(&stamp) {
            return Ok(stamp.0);
        }
        let p = path.to_owned();
        let (actual, len) = tokio::task::spawn_blocking(move || Sha256Digest::of_file(&p))
            .await
            .map_err(|e| e.to_string())?
            .map_err(|e| format!("{}: {e}", path.display()))?;
        if actual != *digest {
            return Err(format!(
                "the local copy of blob {digest} hashes to {actual}; refused"
            ));
        }
        self.verified
            .lock()
            .map_err(|e| e.to_string())?
            .insert(path.to_owned(), (len, stamp.1));
        Ok(len)
    }
}
