//! The hub's HTTP surface: enrollment, catalog, metainfo, tracker (announce,
//! scrape) and web seed. Every handler answers bad input with a status and a
//! message naming the problem.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{ConnectInfo, Path, RawQuery, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::{Deserialize, Serialize};
use swarmhub_core::tracker::http::{
    encode_announce_response, encode_failure, encode_scrape_response, parse_announce_query,
    parse_scrape_query, AnnounceParseError,
};
use swarmhub_core::tracker::Auth;
use swarmhub_core::Id20;

use super::admin::ImageInfo;
use super::serve::{HubState, Served};
use super::{ADMIN_HEADER, AUTH_HEADER};
use crate::image::ImageName;
use crate::logging::TRACKER_TARGET;
use crate::metrics::hub::{announce_result, route_label};
use crate::util::{random_hex, secret_hash, unhex};

/// Largest web-seed range served in one request.
pub(crate) const MAX_RANGE_BYTES: u64 = 16 << 20;

/// One API connection: both ends (the local address tells clients where the
/// seeder is when they announce without an explicit address) and the identity
/// of the verified client certificate, if the client sent one.
#[derive(Clone, Debug)]
pub(crate) struct ConnInfo {
    pub(crate) remote: SocketAddr,
    pub(crate) local: Option<SocketAddr>,
    /// Shared, not copied, by the requests of the connection.
    pub(crate) identity: Option<Arc<str>>,
    /// [`crate::tls::cert_key`] of that certificate.
    pub(crate) cert_key: Option<Arc<str>>,
    /// When that certificate expires.
    pub(crate) cert_not_after: Option<std::time::SystemTime>,
}

type Shared = Arc<HubState>;

pub(super) fn router(state: Shared) -> Router {
    Router::new()
        .route("/api/v1/ca", get(ca))
        .route("/api/v1/enroll", post(enroll))
        .route("/api/v1/renew", post(renew))
        .route("/api/v1/keys", get(keys))
        .route("/api/v1/info", get(info))
        .route("/api/v1/images", get(images))
        .route("/api/v1/images/{image}/metainfo", get(metainfo))
        .route("/announce", get(announce))
        .route("/scrape", get(scrape))
        .route("/webseed/{info_hash}", get(webseed))
        .merge(super::console::router())
        .fallback(|| async { api_error(StatusCode::NOT_FOUND, "no such endpoint") })
        .layer(axum::middleware::from_fn_with_state(state.clone(), timed))
        .with_state(state)
}

/// Time every request into `swarmhub_hub_request_duration_seconds{route}`.
async fn timed(
    State(state): State<Shared>,
    req: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    let route = route_label(req.uri().path());
    let start = std::time::Instant::now();
    let resp = next.run(req).await;
    state
        .metrics
        .observe_request(route, start.elapsed().as_secs_f64());
    resp
}

fn api_error(status: StatusCode, msg: impl Into<String>) -> Response {
    #[derive(Serialize)]
    struct E {
        error: String,
    }
    (status, Json(E { error: msg.into() })).into_response()
}

enum Caller {
    Client(String),
    Admin,
}

/// The secret from `Authorization: Bearer ...`.
pub(crate) fn bearer(headers: &HeaderMap) -> Option<&str> {
    headers
        .get(AUTH_HEADER)?
        .to_str()
        .ok()?
        .strip_prefix("Bearer ")
        .map(str::trim)
}

/// A refused API call: status and message.
struct Refusal(StatusCode, String);

impl IntoResponse for Refusal {
    fn into_response(self) -> Response {
        api_error(self.0, self.1)
    }
}

/// Who is calling: the admin token of the hub's own CLI, or a client with a
/// verified certificate of an enrolled, unrevoked identity. A client secret,
/// when sent too, must belong to the same identity.
fn authenticate(state: &HubState, headers: &HeaderMap, conn: &ConnInfo) -> Result<Caller, Refusal> {
    let r = authenticate_caller(state, headers, conn);
    if let Err(Refusal(status, _)) = &r {
        state.counters.api_refused();
        let reason = match *status {
            StatusCode::FORBIDDEN => "revoked",
            _ => "not_authenticated",
        };
        state.metrics.api_link().refused(reason);
    }
    r
}

fn authenticate_caller(
    state: &HubState,
    headers: &HeaderMap,
    conn: &ConnInfo,
) -> Result<Caller, Refusal> {
    if let Some(token) = headers.get(ADMIN_HEADER).and_then(|v| v.to_str().ok()) {
        if token == state.admin_token {
            return Ok(Caller::Admin);
        }
        return Err(Refusal(
            StatusCode::UNAUTHORIZED,
            "wrong admin token".into(),
        ));
    }
    match cert_auth(state, conn, bearer(headers)) {
        Auth::Verified {
            identity,
            registered: true,
        } => Ok(Caller::Client(identity)),
        Auth::Verified { identity, .. } => Err(Refusal(
            StatusCode::FORBIDDEN,
            format!("client {identity:?} has been revoked on this hub"),
        )),
        Auth::Anonymous => Err(Refusal(
            StatusCode::UNAUTHORIZED,
            if conn.identity.is_none() {
                "no client certificate: log in with `swarmhub login HUB_URL --key KEY --fingerprint FP`"
                    .to_owned()
            } else {
                "unknown client, or a client secret that is not this certificate's: \
                 log in again with `swarmhub login HUB_URL --key KEY --fingerprint FP`"
                    .to_owned()
            },
        )),
    }
}

/// The identity of the connection's certificate as the users snapshot sees
/// it; a `secret` (our own header, never the announce's `key`, which stock
/// clients fill with a random value) that belongs to someone else makes the
/// caller anonymous.
fn cert_auth(state: &HubState, conn: &ConnInfo, secret: Option<&str>) -> Auth {
    let Some(identity) = &conn.identity else {
        return Auth::Anonymous;
    };
    let users = state.auth();
    if let Some(secret) = secret {
        match users.user_by_secret(&secret_hash(secret)) {
            Some((owner, _)) if owner == &**identity => {}
            _ => return Auth::Anonymous,
        }
    }
    match users.cert_state(identity) {
        // An older certificate of a re-enrolled name: not this client.
        Some((false, Some(key))) if conn.cert_key.as_deref() != Some(key) => Auth::Anonymous,
        Some((revoked, _)) => Auth::Verified {
            identity: identity.to_string(),
            registered: !revoked,
        },
        None => Auth::Anonymous,
    }
}

/// Body of `POST /api/v1/enroll`.
#[derive(Serialize, Deserialize, Debug)]
pub struct EnrollRequest {
    /// The one-time enrollment key.
    pub key: String,
    /// PEM certificate signing request for the key pair the client made.
    pub csr: String,
}

/// Answer to `POST /api/v1/enroll`.
#[derive(Serialize, Deserialize, Debug)]
pub struct EnrollResponse {
    /// The enrolled identity (user name).
    pub identity: String,
    /// The client secret for API calls and announces.
    pub secret: String,
    /// The client's certificate (PEM), bound to `identity`.
    pub certificate: String,
}

/// Answer to `GET /api/v1/ca`: the hub CA, for the client to pin.
#[derive(Serialize, Deserialize, Debug)]
pub struct CaResponse {
    /// The CA certificate (PEM).
    pub certificate: String,
    /// Its SHA-256 fingerprint.
    pub fingerprint: String,
}

/// Body of `POST /api/v1/renew`.
#[derive(Serialize, Deserialize, Debug)]
pub struct RenewRequest {
    /// PEM certificate signing request (usually for the same key pair).
    pub csr: String,
}

/// Answer to `POST /api/v1/renew`.
#[derive(Serialize, Deserialize, Debug)]
pub struct RenewResponse {
    /// The new certificate (PEM).
    pub certificate: String,
}

/// Answer to `GET /api/v1/keys`: the key each enrolled identity's
/// certificates must carry, so peers refuse older certificates of
/// re-enrolled names.
#[derive(Serialize, Deserialize, Debug, Default)]
pub struct KeysResponse {
    /// Identity -> [`crate::tls::cert_key`].
    pub keys: std::collections::BTreeMap<String, String>,
}

async fn keys(
    State(state): State<Shared>,
    ConnectInfo(conn): ConnectInfo<ConnInfo>,
    headers: HeaderMap,
) -> Response {
    if let Err(r) = authenticate(&state, &headers, &conn) {
        return r.into_response();
    }
    let keys = match state.db.lock() {
        Ok(db) => db.cert_keys(),
        Err(_) => return api_error(StatusCode::INTERNAL_SERVER_ERROR, "database lock poisoned"),
    };
    match keys {
        Ok(k) => Json(KeysResponse {
            keys: k.into_iter().collect(),
        })
        .into_response(),
        Err(e) => api_error(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
    }
}

async fn ca(State(state): State<Shared>) -> Response {
    Json(CaResponse {
        certificate: state.ca.cert_pem().to_owned(),
        fingerprint: state.ca.fingerprint(),
    })
    .into_response()
}

/// Sign `csr` for `identity` with the hub's certificate lifetime. At
/// enrollment the identity is bound to the request's key; a renewal must
/// keep that key.
fn sign(state: &HubState, identity: &str, csr: &str, enroll: bool) -> Result<String, Refusal> {
    let bad = |e: crate::tls::TlsError| Refusal(StatusCode::BAD_REQUEST, e.to_string());
    let der = state
        .ca
        .sign_request(identity, csr, state.cert_lifetime)
        .map_err(bad)?;
    let key = crate::tls::cert_key(&der).map_err(bad)?;
    if let Ok(facts) = crate::tls::cert_facts(&der) {
        state.counters.client_certified(identity, facts.not_after);
    }
    let db = state.db.lock().map_err(|_| {
        Refusal(
            StatusCode::INTERNAL_SERVER_ERROR,
            "database lock poisoned".into(),
        )
    })?;
    let db_err = |e: crate::db::DbError| Refusal(StatusCode::INTERNAL_SERVER_ERROR, e.to_string());
    if enroll {
        db.set_cert_key(identity, &key).map_err(db_err)?;
        drop(db);
        state.peer_revocations.bind_key(identity, &key);
        state.refresh_auth();
    } else {
        let bound = db
            .user_cert_state(identity)
            .map_err(db_err)?
            .and_then(|s| s.1);
        if bound.is_some_and(|b| b != key) {
            return Err(Refusal(
                StatusCode::FORBIDDEN,
                format!("renewal for {identity:?} must keep the enrolled key pair"),
            ));
        }
    }
    Ok(crate::tls::cert_pem(&der))
}

async fn renew(
    State(state): State<Shared>,
    ConnectInfo(conn): ConnectInfo<ConnInfo>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let identity = match authenticate(&state, &headers, &conn) {
        Ok(Caller::Client(id)) => id,
        Ok(Caller::Admin) => {
            return api_error(
                StatusCode::BAD_REQUEST,
                "the admin token has no certificate",
            )
        }
        Err(r) => return r.into_response(),
    };
    let req: RenewRequest = match serde_json::from_slice(&body) {
        Ok(r) => r,
        Err(e) => {
            return api_error(
                StatusCode::BAD_REQUEST,
                format!("renew body must be JSON {{\"csr\": \"PEM\"}}: {e}"),
            )
        }
    };
    match sign(&state, &identity, &req.csr, false) {
        Ok(certificate) => {
            tracing::info!("renewed the certificate of {identity:?}");
            Json(RenewResponse { certificate }).into_response()
        }
        Err(r) => r.into_response(),
    }
}

async fn enroll(State(state): State<Shared>, body: Bytes) -> Response {
    let req: EnrollRequest = match serde_json::from_slice(&body) {
        Ok(r) => r,
        Err(e) => {
            return api_error(
                StatusCode::BAD_REQUEST,
                format!("enroll body must be JSON {{\"key\": \"...\", \"csr\": \"PEM\"}}: {e}"),
            )
        }
    };
    // Check the request before the single-use key is spent on it.
    if let Err(e) = rcgen::CertificateSigningRequestParams::from_pem(&req.csr) {
        return api_error(
            StatusCode::BAD_REQUEST,
            format!("certificate signing request: {e}"),
        );
    }
    let Ok(secret) = random_hex(32) else {
        return api_error(StatusCode::INTERNAL_SERVER_ERROR, "no OS randomness");
    };
    let result = match state.db.lock() {
        Ok(db) => db.enroll(&secret_hash(req.key.trim()), &secret_hash(&secret)),
        Err(_) => return api_error(StatusCode::INTERNAL_SERVER_ERROR, "database lock poisoned"),
    };
    match result {
        Ok(Some(identity)) => {
            tracing::info!("enrolled client {identity:?}");
            match sign(&state, &identity, &req.csr, true) {
                Ok(certificate) => Json(EnrollResponse {
                    identity,
                    secret,
                    certificate,
                })
                .into_response(),
                Err(r) => r.into_response(),
            }
        }
        Ok(None) => api_error(
            StatusCode::FORBIDDEN,
            "enrollment key unknown or already used: ask an operator for a new one (`swarmhub hub user add NAME`)",
        ),
        Err(e) => api_error(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
    }
}

/// Answer to `GET /api/v1/info`.
#[derive(Serialize, Deserialize, Debug, Clone)]
pub struct HubInfo {
    /// swarmhub version of the hub.
    pub version: String,
    /// Who the caller is.
    pub identity: String,
    /// The seeder's port.
    pub seed_port: u16,
    /// Peer-to-peer distribution enabled.
    pub p2p: bool,
    /// Image cache enabled.
    pub cache: bool,
    /// Peer links use mutual TLS (hubs that predate it: on).
    #[serde(default = "yes")]
    pub peer_tls: bool,
}

fn yes() -> bool {
    true
}

async fn info(
    State(state): State<Shared>,
    ConnectInfo(conn): ConnectInfo<ConnInfo>,
    headers: HeaderMap,
) -> Response {
    let identity = match authenticate(&state, &headers, &conn) {
        Ok(Caller::Client(id)) => id,
        Ok(Caller::Admin) => "admin".to_owned(),
        Err(r) => return r.into_response(),
    };
    let s = state.settings();
    Json(HubInfo {
        version: env!("CARGO_PKG_VERSION").to_owned(),
        identity,
        seed_port: state.seed_port,
        p2p: s.p2p,
        cache: s.cache,
        peer_tls: s.peer_tls,
    })
    .into_response()
}

async fn images(
    State(state): State<Shared>,
    ConnectInfo(conn): ConnectInfo<ConnInfo>,
    headers: HeaderMap,
) -> Response {
    if let Err(r) = authenticate(&state, &headers, &conn) {
        return r.into_response();
    }
    if !state.settings().cache {
        return Json(Vec::<ImageInfo>::new()).into_response();
    }
    let served: Vec<Arc<Served>> = state
        .by_name
        .read()
        .map(|m| m.values().cloned().collect())
        .unwrap_or_default();
    let tracker = state.tracker.lock().ok();
    let list: Vec<ImageInfo> = served
        .iter()
        .map(|s| {
            let stats = tracker
                .as_ref()
                .and_then(|t| t.swarm_stats(&s.meta.info_hash));
            ImageInfo {
                name: s.name.clone(),
                info_hash: crate::util::hex(&s.meta.info_hash.0),
                size: s.meta.total_length(),
                pieces: s.meta.num_pieces(),
                files: s.meta.files.len(),
                seeders: Some(stats.map_or(0, |x| x.seeders)),
                leechers: Some(stats.map_or(0, |x| x.leechers)),
            }
        })
        .collect();
    Json(list).into_response()
}

async fn metainfo(
    State(state): State<Shared>,
    ConnectInfo(conn): ConnectInfo<ConnInfo>,
    headers: HeaderMap,
    Path(image): Path<String>,
) -> Response {
    if let Err(r) = authenticate(&state, &headers, &conn) {
        return r.into_response();
    }
    let image: ImageName = match image.parse() {
        Ok(i) => i,
        Err(e) => return api_error(StatusCode::BAD_REQUEST, e.to_string()),
    };
    if !state.settings().cache {
        return api_error(
            StatusCode::SERVICE_UNAVAILABLE,
            "the hub image cache is disabled",
        );
    }
    let served = state
        .by_name
        .read()
        .ok()
        .and_then(|m| m.get(&image.to_string()).cloned());
    match served {
        Some(s) => (
            [(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/x-bittorrent"),
            )],
            s.torrent(
                headers.get(header::HOST).and_then(|h| h.to_str().ok()),
                conn.local,
            ),
        )
            .into_response(),
        None => api_error(
            StatusCode::NOT_FOUND,
            format!("no image {image} on this hub"),
        ),
    }
}

fn bencoded(status: StatusCode, body: Vec<u8>) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, HeaderValue::from_static("text/plain"))],
        body,
    )
        .into_response()
}

fn tracker_failure_response(status: u16, reason: &str) -> Response {
    let (status, body) = tracker_failure(status, reason);
    bencoded(status, body)
}

fn tracker_failure(status: u16, reason: &str) -> (StatusCode, Vec<u8>) {
    let status = StatusCode::from_u16(status).unwrap_or(StatusCode::BAD_REQUEST);
    (status, encode_failure(reason))
}

async fn announce(
    State(state): State<Shared>,
    ConnectInfo(conn): ConnectInfo<ConnInfo>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Response {
    let mut cache = AnnounceAuth::default();
    let (status, body) = announce_reply(
        &state,
        &conn,
        &mut cache,
        query.as_deref().unwrap_or_default(),
        bearer(&headers),
    );
    bencoded(status, body)
}

/// What the announces of one connection were authenticated as, kept for the
/// connection's next announce: its client certificate cannot change, so the
/// answer only changes with the secret it sends or the users snapshot
/// ([`HubState::auth_generation`]). Saves hashing the secret and copying the
/// identity on every announce of a keep-alive connection.
#[derive(Default)]
pub(super) struct AnnounceAuth {
    cached: Option<CachedAuth>,
}

struct CachedAuth {
    generation: u64,
    secret: Option<Box<str>>,
    auth: Auth,
}

impl AnnounceAuth {
    /// [`cert_auth`] of this connection with `secret`, from the cache when
    /// neither changed since.
    fn get(&mut self, state: &HubState, conn: &ConnInfo, secret: Option<&str>) -> &Auth {
        // Read before the snapshot: a swap after this read shows as a new
        // number on the next announce.
        let generation = state
            .auth_generation
            .load(std::sync::atomic::Ordering::Acquire);
        let hit = self
            .cached
            .as_ref()
            .is_some_and(|c| c.generation == generation && c.secret.as_deref() == secret);
        if !hit {
            self.cached = Some(CachedAuth {
                generation,
                secret: secret.map(Into::into),
                auth: cert_auth(state, conn, secret),
            });
        }
        match &self.cached {
            Some(c) => &c.auth,
            None => &Auth::Anonymous,
        }
    }
}

/// The `/announce` of `conn` with `query` and the `secret` header: status
/// and bencoded body. Shared by the router's handler and the connection's
/// fast path ([`super::https`]).
pub(super) fn announce_reply(
    state: &HubState,
    conn: &ConnInfo,
    cache: &mut AnnounceAuth,
    query: &str,
    secret: Option<&str>,
) -> (StatusCode, Vec<u8>) {
    let remote = conn.remote.ip().to_canonical();
    state.counters.announce();
    let req = match parse_announce_query(query, remote) {
        Ok(r) => r,
        Err(e) => {
            state.counters.announce_refused();
            tracing::info!(
                target: TRACKER_TARGET,
                "announce from {remote} refused: malformed: {}",
                malformed_for_log(&e)
            );
            state
                .metrics
                .announces
                .with_label_values(&["malformed"])
                .inc();
            return tracker_failure(400, &format!("malformed announce: {e}"));
        }
    };
    let auth = cache.get(state, conn, secret);
    if !state.p2p_enabled() {
        state.counters.announce_refused();
        state
            .metrics
            .announces
            .with_label_values(&["p2p_disabled"])
            .inc();
        return tracker_failure(
            403,
            "peer-to-peer distribution is disabled on this hub: download over HTTP",
        );
    }
    let now = state.now();
    // The site comes from the address the request came from, every time: a
    // client that moved is regrouped at its next announce.
    let site = state.site_of(remote);
    let result = match state.tracker.lock() {
        Ok(mut t) => {
            if let Some(id) = identity(auth) {
                t.set_site(id, site);
            }
            t.handle_announce(now, auth, &req)
        }
        Err(_) => return tracker_failure(500, "tracker lock poisoned"),
    };
    count_announce(state, &req, result.as_ref().err());
    match result {
        Ok(mut resp) => {
            if let Some(id) = identity(auth) {
                state.counters.client_announced(id, conn.cert_not_after);
            }
            let seeder_ip = conn.local.map(|a| a.ip().to_canonical());
            for p in &mut resp.peers {
                if p.ip.is_unspecified() {
                    if let Some(ip) = seeder_ip {
                        p.ip = ip;
                    }
                }
            }
            resp.peers.retain(|p| !p.ip.is_unspecified());
            // Trace, not debug: the tracker log (at debug) must not take a
            // line per announce at tens of thousands of announces a second.
            tracing::trace!(
                target: TRACKER_TARGET,
                "announce {:?} from {remote}:{} ({:?}, left {}): {} peers",
                req.event, req.port, identity(auth), req.left, resp.peers.len()
            );
            (StatusCode::OK, encode_announce_response(&resp))
        }
        Err(e) => {
            state.counters.announce_refused();
            tracing::info!(target: TRACKER_TARGET, "announce from {remote} ({:?}) refused: {e}", identity(auth));
            tracker_failure(e.http_status(), &e.to_string())
        }
    }
}

/// A malformed announce as the log tells it: which key is wrong, never a
/// value the client sent (it may have put a key or a secret anywhere).
fn malformed_for_log(e: &AnnounceParseError) -> String {
    match e {
        AnnounceParseError::UnknownEvent { .. } => {
            "unknown \"event\": expected started, completed or stopped".to_owned()
        }
        other => other.to_string(),
    }
}

/// Count an announce by result, and a completed download by image.
fn count_announce(
    state: &HubState,
    req: &swarmhub_core::tracker::AnnounceRequest,
    error: Option<&swarmhub_core::tracker::AnnounceError>,
) {
    let result = error.map_or("ok", announce_result);
    state.metrics.count_announce(result);
    if error.is_none() && req.event == swarmhub_core::tracker::AnnounceEvent::Completed {
        let image = state
            .by_hash
            .read()
            .ok()
            .and_then(|m| m.get(&req.info_hash).map(|s| s.name.clone()));
        if let Some(image) = image {
            state
                .metrics
                .downloads_completed
                .with_label_values(&[&image])
                .inc();
        }
    }
}

fn identity(auth: &Auth) -> Option<&str> {
    match auth {
        Auth::Verified { identity, .. } => Some(identity),
        Auth::Anonymous => None,
    }
}

async fn scrape(
    State(state): State<Shared>,
    ConnectInfo(conn): ConnectInfo<ConnInfo>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Response {
    let query = query.unwrap_or_default();
    match cert_auth(&state, &conn, bearer(&headers)) {
        Auth::Verified {
            registered: true, ..
        } => {}
        Auth::Verified { identity, .. } => {
            return tracker_failure_response(
                403,
                &format!("identity {identity:?} has been revoked"),
            );
        }
        Auth::Anonymous => {
            return tracker_failure_response(
                401,
                "not authenticated: present the client certificate",
            );
        }
    }
    let hashes = match parse_scrape_query(&query) {
        Ok(h) => h,
        Err(e) => {
            return tracker_failure_response(400, &format!("malformed scrape: {e}"));
        }
    };
    let files = match state.tracker.lock() {
        Ok(t) => t.scrape(&hashes),
        Err(_) => {
            return tracker_failure_response(500, "tracker lock poisoned");
        }
    };
    bencoded(StatusCode::OK, encode_scrape_response(&files))
}

/// Parse the web seed's `Range` header, `bytes=FIRST-LAST` (one range, both ends
/// given, `FIRST <= LAST`); `None` for anything else. Public for the fuzz targets.
pub fn parse_range(h: &str) -> Option<(u64, u64)> {
    let (a, b) = h.trim().strip_prefix("bytes=")?.split_once('-')?;
    let (a, b): (u64, u64) = (a.trim().parse().ok()?, b.trim().parse().ok()?);
    (b >= a).then_some((a, b))
}

async fn webseed(
    State(state): State<Shared>,
    ConnectInfo(conn): ConnectInfo<ConnInfo>,
    headers: HeaderMap,
    Path(info_hash): Path<String>,
) -> Response {
    let caller = match authenticate(&state, &headers, &conn) {
        Ok(Caller::Client(id)) => Some(id),
        Ok(Caller::Admin) => None,
        Err(r) => return r.into_response(),
    };
    let Some(hash) = unhex(&info_hash).and_then(|b| <[u8; 20]>::try_from(b).ok()) else {
        return api_error(
            StatusCode::BAD_REQUEST,
            format!("{info_hash:?} is not a 40-digit hex info hash"),
        );
    };
    let Some(served) = state
        .by_hash
        .read()
        .ok()
        .and_then(|m| m.get(&Id20::new(hash)).cloned())
    else {
        return api_error(
            StatusCode::NOT_FOUND,
            format!("no image with info hash {info_hash} on this hub"),
        );
    };
    let total = served.meta.total_length();
    let Some(range) = headers.get(header::RANGE).and_then(|v| v.to_str().ok()) else {
        return api_error(
            StatusCode::BAD_REQUEST,
            "a Range: bytes=FIRST-LAST header is required",
        );
    };
    let Some((first, last)) = parse_range(range) else {
        return api_error(
            StatusCode::BAD_REQUEST,
            format!("unsupported Range {range:?}: use one bytes=FIRST-LAST range"),
        );
    };
    if first >= total || last >= total {
        return (
            StatusCode::RANGE_NOT_SATISFIABLE,
            [(header::CONTENT_RANGE, format!("bytes */{total}"))],
        )
            .into_response();
    }
    let len = last - first + 1;
    if len > MAX_RANGE_BYTES {
        return api_error(
            StatusCode::BAD_REQUEST,
            format!("range of {len} bytes is over the {MAX_RANGE_BYTES} byte limit"),
        );
    }
    let storage = served.storage.clone();
    match tokio::task::spawn_blocking(move || storage.read_range(first, len)).await {
        Ok(Ok(data)) => {
            state
                .counters
                .webseed_sent(served.meta.info_hash, caller.as_deref(), len);
            state
                .metrics
                .sent_bytes
                .with_label_values(&[&served.name, "webseed"])
                .inc_by(data.len() as u64);
            (
                StatusCode::PARTIAL_CONTENT,
                [
                    (
                        header::CONTENT_RANGE,
                        format!("bytes {first}-{last}/{total}"),
                    ),
                    (header::CONTENT_TYPE, "application/octet-stream".to_owned()),
                ],
                data,
            )
                .into_response()
        }
        Ok(Err(e)) => {
            tracing::error!("web seed read of {}: {e}", served.name);
            api_error(
                StatusCode::INTERNAL_SERVER_ERROR,
                format!("reading the image failed: {e}"),
            )
        }
        Err(e) => api_error(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_and_keys_parse() {
        assert_eq!(parse_range("bytes=0-99"), Some((0, 99)));
        assert_eq!(parse_range("bytes=5-4"), None);
        assert_eq!(parse_range("bytes=5-"), None);
        assert_eq!(parse_range("items=1-2"), None);
    }
}
