//! The Storage page: the settings `hub config` shows, changed through the
//! same [`admin::config`]; Update Cache runs [`admin::cache_update`].

use axum::extract::{Form, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use maud::{html, Markup};

use super::auth::{FormData, Session};
use super::{blocking, csrf_field, error_page, notice, page, Shared};
use crate::hub::admin::{self, CacheReport, ConfigChange};
use crate::hub::{hostnames, seeder_setting_text, HubSettings, PEER_TLS_OFF_WARNING, SEEDER_KEYS};

pub(super) async fn view(State(state): State<Shared>, session: Session) -> Response {
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

pub(super) async fn save(
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
