//! Console pages: Storage (the settings of `hub config`, through the same
//! [`admin::config`]; Update Cache runs [`admin::cache_update`]), Images
//! (add from a server path or by upload, remove), Clients (add, revoke) and
//! Logs.

use std::path::PathBuf;
use std::time::SystemTime;

use axum::body::Body;
use axum::extract::{Form, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use maud::{html, Markup};
use swarmhub_core::tracker::PeerView;

use super::auth::{FormData, Session};
use super::{age_text, csrf_field, error_page, host_of, notice, page, Shared};
use crate::hub::admin::{self, CacheReport, ConfigChange};
use crate::hub::{hostnames, seeder_setting_text, HubSettings, PEER_TLS_OFF_WARNING, SEEDER_KEYS};
use crate::util::{human_bytes, random_hex};

/// Run blocking admin work (hashing, copying, SQLite) off the runtime.
async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, admin::AdminError> + Send + 'static,
) -> Result<T, String> {
    match tokio::task::spawn_blocking(f).await {
        Ok(r) => r.map_err(|e| e.to_string()),
        Err(e) => Err(format!("task failed: {e}")),
    }
}

// ---- Storage ----

pub(super) async fn storage(State(state): State<Shared>, session: Session) -> Response {
    storage_page(&state, &session, None, None).await
}

async fn storage_page(
    state: &Shared,
    session: &Session,
    message: Option<Markup>,
    report: Option<CacheReport>,
) -> Response {
    let paths = state.paths.clone();
    // The database, as `hub config --all` reads it (the running hub picks
    // changes up within a second).
    let settings = match blocking(move || admin::config(&paths, &ConfigChange::default())).await {
        Ok(s) => s,
        Err(e) => {
            return error_page(
                session,
                StatusCode::INTERNAL_SERVER_ERROR,
                "/admin/storage",
                &e,
            )
        }
    };
    let body = html! {
        @if let Some(m) = message { (m) }
        @if !settings.peer_tls { (notice("warn", PEER_TLS_OFF_WARNING)) }
        form.card method="post" action="/admin/storage" {
            (csrf_field(session))
            h2 { "Settings" }
            (switch("cache", "Enable hub image cache", settings.cache))
            (switch("p2p", "Enable peer-to-peer image distribution", settings.p2p))
            (switch("seed", "Hub seeder (the hub seeds its images itself)", settings.seed))
            (switch("peer_tls", "Peer TLS (mutual TLS on peer links; off only for interoperability tests)", settings.peer_tls))
            h3 { "Seeder" }
            p.hint { "Leave a field empty to keep its value; " code { "default" } " restores the default." }
            @for key in SEEDER_KEYS {
                label.field {
                    span { (key) }
                    input type="text" name=(key) placeholder=(seeder_setting_text(&settings.seeder, key));
                }
            }
            h3 { "Host names" }
            label.field {
                span { "Names and addresses the hub is reached by (its certificate names them)" }
                input type="text" name="hostname"
                    value=[settings.hostnames.as_deref().map(hostnames::list_text)]
                    placeholder={"default: " (hostnames::list_text(&hostnames::default_names(Some(state.listen))))};
            }
            button type="submit" { "Save" }
        }
        form.card method="post" action="/admin/cache/update" {
            (csrf_field(session))
            h2 { "Image cache" }
            p { "Bring image folders placed in " code { (state.paths.cache().display()) "/NAME/TAG/" } " into the cache, re-hash changed ones and drop those whose folder is gone (" code { "swarmhub hub cache update" } ")." }
            button #update-cache type="submit" { "Update Cache" }
        }
        @if let Some(r) = report { (cache_report(&r)) }
    };
    page(session, "/admin/storage", "Storage", body)
}

fn switch(name: &str, label: &str, on: bool) -> Markup {
    html! {
        label.switch {
            input type="checkbox" name=(name) value="on" checked[on];
            span { (label) }
        }
    }
}

fn cache_report(r: &CacheReport) -> Markup {
    let changed: Vec<&String> = r.hashed.iter().filter(|n| !r.added.contains(n)).collect();
    html! {
        section.card #cache-report {
            h2 { "Update Cache" }
            dl {
                dt { "Added" } dd.added { @for n in &r.added { span.tag { (n) } } @if r.added.is_empty() { "none" } }
                dt { "Changed" } dd.changed { @for n in &changed { span.tag { (n) } } @if changed.is_empty() { "none" } }
                dt { "Removed" } dd.removed { @for n in &r.dropped { span.tag { (n) } } @if r.dropped.is_empty() { "none" } }
                dt { "Unchanged" } dd { (r.unchanged.len()) }
                @if !r.skipped.is_empty() {
                    dt { "Skipped" } dd { ul { @for s in &r.skipped { li { (s) } } } }
                }
            }
        }
    }
}

/// The Storage form as a [`ConfigChange`]: unchecked switches are off,
/// empty seeder fields unchanged.
fn storage_change(form: &FormData, before: &HubSettings) -> ConfigChange {
    let mut c = ConfigChange::default();
    for key in ["cache", "p2p", "seed"] {
        if form.has(key) {
            c.enable.push(key.to_owned());
        } else {
            c.disable.push(key.to_owned());
        }
    }
    if form.has("peer_tls") != before.peer_tls {
        c.peer_tls = Some(if form.has("peer_tls") { "on" } else { "off" }.to_owned());
    }
    for key in SEEDER_KEYS {
        if let Some(v) = form.get(key).map(str::trim).filter(|v| !v.is_empty()) {
            c.set.push(format!("{key}={v}"));
        }
    }
    c.hostname = form.get("hostname").map(|h| match h.trim() {
        "" => "default".to_owned(),
        h => h.to_owned(),
    });
    c
}

pub(super) async fn storage_save(
    State(state): State<Shared>,
    session: Session,
    Form(form): Form<FormData>,
) -> Response {
    if let Err(r) = session.check(&form) {
        return r.into_response();
    }
    let paths = state.paths.clone();
    let result = blocking(move || {
        let before = admin::config(&paths, &ConfigChange::default())?;
        admin::config(&paths, &storage_change(&form, &before))
    })
    .await;
    let msg = match result {
        Ok(_) => {
            tracing::info!("admin console: settings saved");
            notice(
                "ok",
                "Saved. The running hub applies the settings within a second.",
            )
        }
        Err(e) => notice("error", &e),
    };
    storage_page(&state, &session, Some(msg), None).await
}

pub(super) async fn cache_update(
    State(state): State<Shared>,
    session: Session,
    Form(form): Form<FormData>,
) -> Response {
    if let Err(r) = session.check(&form) {
        return r.into_response();
    }
    let paths = state.paths.clone();
    match blocking(move || admin::cache_update(&paths, &admin::open_db(&paths)?)).await {
        Ok(report) => storage_page(&state, &session, None, Some(report)).await,
        Err(e) => storage_page(&state, &session, Some(notice("error", &e)), None).await,
    }
}

// ---- Images ----

pub(super) async fn images(State(state): State<Shared>, session: Session) -> Response {
    images_page(&state, &session, None)
}

fn images_page(state: &Shared, session: &Session, message: Option<Markup>) -> Response {
    let served: Vec<_> = state
        .by_name
        .read()
        .map(|m| m.values().cloned().collect())
        .unwrap_or_default();
    let tracker = state.tracker.lock().ok();
    let rows: Vec<_> = served
        .iter()
        .map(|s| {
            let stats = tracker
                .as_ref()
                .and_then(|t| t.swarm_stats(&s.meta.info_hash))
                .unwrap_or_default();
            (
                s.clone(),
                stats,
                state.counters.image_bytes(&s.meta.info_hash),
            )
        })
        .collect();
    drop(tracker);
    let cache_on = state.settings().cache;
    let body = html! {
        @if let Some(m) = message { (m) }
        @if !cache_on { (notice("warn", "The hub image cache is disabled: clients see no images. Enable it on the Storage page.")) }
        div.scroll {
            table #images {
                thead { tr { th { "Image" } th { "Size" } th { "Pieces" } th { "Seeders" } th { "Leechers" } th { "Completed" } th { "Hub sent (seeder)" } th { "Hub sent (web seed)" } th {} } }
                tbody {
                    @for (s, st, bytes) in &rows {
                        tr data-image=(s.name) {
                            td { a href={"/admin/swarm?image=" (s.name)} { (s.name) } }
                            td { (human_bytes(s.meta.total_length())) }
                            td { (s.meta.num_pieces()) }
                            td { (st.seeders) }
                            td { (st.leechers) }
                            td { (st.completed) }
                            td { (human_bytes(bytes.seeder_bytes)) }
                            td { (human_bytes(bytes.webseed_bytes)) }
                            td {
                                form.inline method="post" action="/admin/images/remove" data-confirm={"Remove " (s.name) " from the cache?"} {
                                    (csrf_field(session))
                                    input type="hidden" name="image" value=(s.name);
                                    button.danger type="submit" { "Remove" }
                                }
                            }
                        }
                    }
                    @if rows.is_empty() { tr { td colspan="9" { "No images in the cache." } } }
                }
            }
        }
        div.cards {
            form.card method="post" action="/admin/images/add" {
                (csrf_field(session))
                h2 { "Add from a path on the hub" }
                label.field { span { "Image (NAME:TAG)" } input type="text" name="image" required placeholder="app:1.0"; }
                label.field { span { "File or folder on the hub machine" } input type="text" name="path" required placeholder="/srv/images/app"; }
                button type="submit" { "Add" }
            }
            form.card #upload method="post" action="/admin/images/upload" {
                h2 { "Add by upload" }
                label.field { span { "Image (NAME:TAG)" } input type="text" name="image" required placeholder="tool:2"; }
                label.field { span { "File" } input type="file" name="file" required; }
                button type="submit" { "Upload" }
                p.hint #upload-status {}
            }
        }
    };
    page(session, "/admin/images", "Images", body)
}

pub(super) async fn image_add(
    State(state): State<Shared>,
    session: Session,
    Form(form): Form<FormData>,
) -> Response {
    if let Err(r) = session.check(&form) {
        return r.into_response();
    }
    let image = form.get("image").unwrap_or_default().trim().to_owned();
    let path = PathBuf::from(form.get("path").unwrap_or_default().trim());
    let paths = state.paths.clone();
    let name = image.clone();
    let msg = match blocking(move || admin::image_add(&paths, &name, &[path])).await {
        Ok(meta) => notice(
            "ok",
            &format!(
                "Added {image} ({}, {} files).",
                human_bytes(meta.total_length()),
                meta.files.len()
            ),
        ),
        Err(e) => notice("error", &e),
    };
    images_page(&state, &session, Some(msg))
}

/// Query of an upload: the image and the file's name.
#[derive(serde::Deserialize)]
pub(super) struct UploadQuery {
    image: String,
    file: String,
}

/// `POST /admin/images/upload?image=NAME:TAG&file=NAME` with the file as the
/// body and the CSRF token in `x-csrf-token` (the page's script sends it):
/// streamed to a temporary file in the hub folder, then added as
/// `hub image add` adds a file.
pub(super) async fn image_upload(
    State(state): State<Shared>,
    session: Session,
    headers: HeaderMap,
    query: Result<Query<UploadQuery>, axum::extract::rejection::QueryRejection>,
    body: Body,
) -> Response {
    if let Err(r) = session.check_token(headers.get("x-csrf-token").and_then(|v| v.to_str().ok())) {
        return r.into_response();
    }
    let Ok(Query(q)) = query else {
        return (
            StatusCode::BAD_REQUEST,
            "upload needs ?image=NAME:TAG&file=NAME",
        )
            .into_response_text();
    };
    let file = q
        .file
        .rsplit(['/', '\\'])
        .next()
        .unwrap_or_default()
        .to_owned();
    if file.is_empty() || file.starts_with('.') || file.len() > 255 {
        return (
            StatusCode::BAD_REQUEST,
            format!("file name {:?} is not usable", q.file),
        )
            .into_response_text();
    }
    let Ok(tag) = random_hex(8) else {
        return (
            StatusCode::INTERNAL_SERVER_ERROR,
            "no OS randomness".to_owned(),
        )
            .into_response_text();
    };
    let dir = state.paths.root.join(format!(".upload-{tag}"));
    let target = dir.join(&file);
    let result = receive(body, &dir, &target).await;
    let result = match result {
        Ok(n) => {
            let paths = state.paths.clone();
            let image = q.image.trim().to_owned();
            let t = target.clone();
            blocking(move || admin::image_add(&paths, &image, &[t]))
                .await
                .map(|m| (n, m))
        }
        Err(e) => Err(e),
    };
    let _ = tokio::fs::remove_dir_all(&dir).await;
    match result {
        Ok((n, meta)) => (
            StatusCode::OK,
            format!(
                "added {} ({} received, {} pieces)",
                q.image.trim(),
                human_bytes(n),
                meta.num_pieces()
            ),
        )
            .into_response_text(),
        Err(e) => (StatusCode::BAD_REQUEST, e).into_response_text(),
    }
}

/// Stream `body` into `target` (in a new folder `dir`); bytes written.
async fn receive(
    body: Body,
    dir: &std::path::Path,
    target: &std::path::Path,
) -> Result<u64, String> {
    use http_body_util::BodyExt;
    use tokio::io::AsyncWriteExt;
    let io = |e: std::io::Error| format!("{}: {e}", target.display());
    tokio::fs::create_dir_all(dir).await.map_err(io)?;
    let mut f = tokio::fs::File::create(target).await.map_err(io)?;
    let mut body = body;
    let mut n = 0u64;
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(|e| format!("upload interrupted: {e}"))?;
        if let Ok(data) = frame.into_data() {
            f.write_all(&data).await.map_err(io)?;
            n += data.len() as u64;
        }
    }
    f.flush().await.map_err(io)?;
    Ok(n)
}

trait TextResponse {
    fn into_response_text(self) -> Response;
}

impl<S: Into<String>> TextResponse for (StatusCode, S) {
    fn into_response_text(self) -> Response {
        super::secure((self.0, self.1.into()).into_response())
    }
}

pub(super) async fn image_remove(
    State(state): State<Shared>,
    session: Session,
    Form(form): Form<FormData>,
) -> Response {
    if let Err(r) = session.check(&form) {
        return r.into_response();
    }
    let image = form.get("image").unwrap_or_default().to_owned();
    let paths = state.paths.clone();
    let name = image.clone();
    let msg = match blocking(move || admin::image_rm(&paths, &name)).await {
        Ok(()) => notice("ok", &format!("Removed {image}.")),
        Err(e) => notice("error", &e),
    };
    images_page(&state, &session, Some(msg))
}

// ---- Clients ----

pub(super) async fn clients(
    State(state): State<Shared>,
    session: Session,
    headers: HeaderMap,
) -> Response {
    clients_page(&state, &session, &headers, None).await
}

/// Images each identity is pulling now (announced with bytes left).
fn current_pulls(state: &Shared) -> std::collections::BTreeMap<String, Vec<String>> {
    let served: Vec<_> = state
        .by_name
        .read()
        .map(|m| m.values().cloned().collect())
        .unwrap_or_default();
    let mut pulls = std::collections::BTreeMap::<String, Vec<String>>::new();
    if let Ok(t) = state.tracker.lock() {
        for s in &served {
            for p in t.swarm_peers(&s.meta.info_hash) {
                let PeerView { identity, left, .. } = p;
                if left > 0 {
                    pulls.entry(identity).or_default().push(s.name.clone());
                }
            }
        }
    }
    pulls
}

fn when(t: Option<SystemTime>, past: bool) -> String {
    let Some(t) = t else {
        return "never".to_owned();
    };
    let now = SystemTime::now();
    match (past, t.duration_since(now), now.duration_since(t)) {
        (true, _, Ok(d)) => format!("{} ago", age_text(d.as_secs())),
        (false, Ok(d), _) => format!("in {}", age_text(d.as_secs())),
        (false, Err(_), _) => "expired".to_owned(),
        (true, _, Err(_)) => "just now".to_owned(),
    }
}

async fn clients_page(
    state: &Shared,
    session: &Session,
    headers: &HeaderMap,
    added: Option<Markup>,
) -> Response {
    let paths = state.paths.clone();
    let users = match blocking(move || Ok(admin::open_db(&paths)?.users()?)).await {
        Ok(u) => u,
        Err(e) => {
            return error_page(
                session,
                StatusCode::INTERNAL_SERVER_ERROR,
                "/admin/clients",
                &e,
            )
        }
    };
    let pulls = current_pulls(state);
    let _ = headers;
    let body = html! {
        @if let Some(m) = added { (m) }
        div.scroll {
            table #clients {
                thead { tr { th { "Client" } th { "State" } th { "Last announce" } th { "Certificate expires" } th { "Pulling now" } th {} } }
                tbody {
                    @for u in &users {
                        @let seen = state.counters.client(&u.name);
                        tr data-client=(u.name) {
                            td { (u.name) }
                            td.state { @if u.revoked { "revoked" } @else if u.enrolled { "enrolled" } @else { "key issued, not logged in" } }
                            td { (when(seen.last_announce, true)) }
                            td { (when(seen.cert_not_after, false)) }
                            td { @for i in pulls.get(&u.name).into_iter().flatten() { span.tag { (i) } } }
                            td {
                                @if !u.revoked {
                                    form.inline method="post" action="/admin/clients/revoke" data-confirm={"Revoke " (u.name) "?"} {
                                        (csrf_field(session))
                                        input type="hidden" name="name" value=(u.name);
                                        button.danger type="submit" { "Revoke" }
                                    }
                                }
                            }
                        }
                    }
                    @if users.is_empty() { tr { td colspan="6" { "No clients yet." } } }
                }
            }
        }
        form.card method="post" action="/admin/clients/add" {
            (csrf_field(session))
            h2 { "Add a client" }
            label.field { span { "Client name (letters, digits, '.', '_', '-')" } input type="text" name="name" required placeholder="build-agent-17"; }
            button type="submit" { "Add client" }
        }
    };
    page(session, "/admin/clients", "Clients", body)
}

pub(super) async fn client_add(
    State(state): State<Shared>,
    session: Session,
    headers: HeaderMap,
    Form(form): Form<FormData>,
) -> Response {
    if let Err(r) = session.check(&form) {
        return r.into_response();
    }
    let name = form.get("name").unwrap_or_default().trim().to_owned();
    let paths = state.paths.clone();
    let n = name.clone();
    let msg = match blocking(move || admin::user_add(&paths, &n)).await {
        Ok(key) => {
            let fp = state.ca.fingerprint();
            let host = host_of(&headers).unwrap_or_else(|| state.listen.to_string());
            let cmd = format!("swarmhub login https://{host} --key {key} --fingerprint {fp}");
            tracing::info!("admin console: added client {name:?}");
            html! {
                section.card.added #new-client {
                    h2 { "Client " (name) " added" }
                    p { "The key works once. Copy it now; it is not shown again." }
                    dl {
                        dt { "One-time key" } dd { code #client-key { (key) } }
                        dt { "Hub CA fingerprint (SHA-256)" } dd { code #ca-fingerprint { (fp) } }
                    }
                    p { "On the client run:" }
                    pre #login-command { (cmd) }
                }
            }
        }
        Err(e) => notice("error", &e),
    };
    clients_page(&state, &session, &headers, Some(msg)).await
}

pub(super) async fn client_revoke(
    State(state): State<Shared>,
    session: Session,
    headers: HeaderMap,
    Form(form): Form<FormData>,
) -> Response {
    if let Err(r) = session.check(&form) {
        return r.into_response();
    }
    let name = form.get("name").unwrap_or_default().to_owned();
    let paths = state.paths.clone();
    let n = name.clone();
    let msg = match blocking(move || admin::user_rm(&paths, &n)).await {
        Ok(()) => {
            tracing::info!("admin console: revoked client {name:?}");
            notice(
                "ok",
                &format!("Revoked {name}: refused at its next announce or API call."),
            )
        }
        Err(e) => notice("error", &e),
    };
    clients_page(&state, &session, &headers, Some(msg)).await
}

// ---- Logs ----

/// Query of the Logs page.
#[derive(serde::Deserialize, Default)]
pub(super) struct LogQuery {
    log: Option<String>,
    level: Option<String>,
}

pub(super) async fn logs(
    State(state): State<Shared>,
    session: Session,
    Query(q): Query<LogQuery>,
) -> Response {
    let which = match q.log.as_deref() {
        Some("torrent") => "torrent",
        _ => "tracker",
    };
    let level = q
        .level
        .as_deref()
        .and_then(super::live::level_rank)
        .unwrap_or(5);
    let dir = state.paths.logs();
    let lines = tokio::task::spawn_blocking(move || super::live::tail_log(&dir, which, level, 300))
        .await
        .unwrap_or_else(|e| Err(e.to_string()));
    let levels = ["error", "warn", "info", "debug", "trace"];
    let body = html! {
        form.filters method="get" action="/admin/logs" {
            label { "Log " select name="log" {
                option value="tracker" selected[which == "tracker"] { "tracker" }
                option value="torrent" selected[which == "torrent"] { "torrent" }
            } }
            label { "Level " select name="level" {
                @for (i, l) in levels.iter().enumerate() {
                    option value=(l) selected[i + 1 == level] { (l) " and above" }
                }
            } }
            button type="submit" { "Show" }
        }
        @match lines {
            Ok((file, lines)) => {
                p.hint { (file) " — last " (lines.len()) " lines" }
                pre.log #log-lines { @for l in &lines { (l) "\n" } }
            }
            Err(e) => { (notice("warn", &e)) }
        }
    };
    page(&session, "/admin/logs", "Logs", body)
}
