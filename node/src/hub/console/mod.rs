//! The admin console at `/admin/`, on the API's listener: pages rendered by
//! the hub (maud templates compiled into the binary), a little embedded
//! JavaScript and CSS, behind a signed-in session (see [`auth`]).
//!
//! Only the sign-in page and the style sheet are reachable without a
//! session; every other route answers 401 (or redirects a page view to the
//! sign-in page), and every form post must carry the session's CSRF token
//! (403 otherwise). Enrolled clients' certificates grant nothing here.

mod auth;
mod clients;
mod images;
mod live;
mod logs;
mod storage;
mod swarm;

use std::sync::Arc;

use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::Router;
use maud::{html, Markup, DOCTYPE};

use super::serve::HubState;

pub(crate) use auth::ConsoleState;
use auth::Session;

type Shared = Arc<HubState>;

const CSS: &str = include_str!("assets/console.css");
const JS: &str = include_str!("assets/console.js");

/// The console's routes (merged into the API router).
pub(super) fn router() -> Router<Shared> {
    Router::new()
        .route("/admin", get(|| async { Redirect::to("/admin/") }))
        .route("/admin/", get(home))
        .route("/admin/login", get(auth::login_page).post(auth::login))
        .route("/admin/logout", post(auth::logout))
        .route("/admin/assets/console.css", get(css))
        .route("/admin/assets/console.js", get(js))
        .route("/admin/storage", get(storage::view).post(storage::save))
        .route("/admin/cache/update", post(storage::cache_update))
        .route("/admin/images", get(images::view))
        .route("/admin/images/add", post(images::add))
        .route("/admin/images/upload", post(images::upload))
        .route("/admin/images/remove", post(images::remove))
        .route("/admin/swarm", get(swarm::view))
        .route("/admin/swarm.json", get(swarm::json))
        .route("/admin/clients", get(clients::view))
        .route("/admin/clients/add", post(clients::add))
        .route("/admin/clients/revoke", post(clients::revoke))
        .route("/admin/live", get(live::view))
        .route("/admin/live.json", get(live::json))
        .route("/admin/logs", get(logs::view))
}

/// Every console route but the sign-in page and the style sheet, with its
/// method: what the console test checks refuses callers without a session.
pub const GUARDED_ROUTES: &[(&str, &str)] = &[
    ("GET", "/admin/"),
    ("GET", "/admin/assets/console.js"),
    ("POST", "/admin/logout"),
    ("GET", "/admin/storage"),
    ("POST", "/admin/storage"),
    ("POST", "/admin/cache/update"),
    ("GET", "/admin/images"),
    ("POST", "/admin/images/add"),
    ("POST", "/admin/images/upload"),
    ("POST", "/admin/images/remove"),
    ("GET", "/admin/swarm"),
    ("GET", "/admin/swarm.json"),
    ("GET", "/admin/clients"),
    ("POST", "/admin/clients/add"),
    ("POST", "/admin/clients/revoke"),
    ("GET", "/admin/live"),
    ("GET", "/admin/live.json"),
    ("GET", "/admin/logs"),
];

async fn home(_s: Session) -> Response {
    Redirect::to("/admin/storage").into_response()
}

async fn css() -> Response {
    asset(CSS, "text/css; charset=utf-8")
}

async fn js(_s: Session) -> Response {
    asset(JS, "text/javascript; charset=utf-8")
}

fn asset(body: &'static str, kind: &'static str) -> Response {
    (
        [
            (header::CONTENT_TYPE, HeaderValue::from_static(kind)),
            (header::CACHE_CONTROL, HeaderValue::from_static("no-cache")),
        ],
        body,
    )
        .into_response()
}

/// Headers every console page carries: no caching, no framing, scripts and
/// styles only from the hub itself.
fn secure(mut resp: Response) -> Response {
    let h = resp.headers_mut();
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(
            "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
             frame-ancestors 'none'; form-action 'self'",
        ),
    );
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    resp
}

/// The navigation entries: (path, label).
const NAV: [(&str, &str); 5] = [
    ("/admin/storage", "Storage"),
    ("/admin/images", "Images"),
    ("/admin/clients", "Clients"),
    ("/admin/live", "Live figures"),
    ("/admin/logs", "Logs"),
];

/// A signed-in page: navigation, sign-out, then `body`.
fn page(session: &Session, current: &str, title: &str, body: Markup) -> Response {
    let markup = html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                meta name="csrf-token" content=(session.csrf);
                title { (title) " · swarmhub hub" }
                link rel="stylesheet" href="/admin/assets/console.css";
                script src="/admin/assets/console.js" defer {}
            }
            body {
                header.top {
                    span.brand { "swarmhub hub" }
                    nav {
                        @for (path, label) in NAV {
                            a href=(path) class=[(path == current).then_some("current")] { (label) }
                        }
                    }
                    form.signout method="post" action="/admin/logout" {
                        (csrf_field(session))
                        button type="submit" { "Sign out" }
                    }
                }
                main { h1 { (title) } (body) }
            }
        }
    };
    secure(markup.into_response())
}

/// The hidden CSRF field of every form.
fn csrf_field(session: &Session) -> Markup {
    html! { input type="hidden" name="csrf" value=(session.csrf); }
}

/// A notice box: `kind` is `ok`, `warn` or `error`.
fn notice(kind: &str, text: &str) -> Markup {
    html! { p class={"notice " (kind)} role="status" { (text) } }
}

/// A console error page or fragment with a status.
fn error_page(session: &Session, status: StatusCode, current: &str, msg: &str) -> Response {
    let mut r = page(session, current, "Error", notice("error", msg));
    *r.status_mut() = status;
    r
}

/// The `Host` the browser used, if it is a plain authority (for the login
/// command shown to operators).
fn host_of(headers: &HeaderMap) -> Option<String> {
    let h = headers.get(header::HOST)?.to_str().ok()?;
    let ok = !h.is_empty()
        && h.len() <= 255
        && h.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b".-:[]".contains(&b));
    ok.then(|| h.to_owned())
}

/// Run blocking admin work (hashing, copying, SQLite) off the runtime.
pub(super) async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, crate::hub::admin::AdminError> + Send + 'static,
) -> Result<T, String> {
    match tokio::task::spawn_blocking(f).await {
        Ok(r) => r.map_err(|e| e.to_string()),
        Err(e) => Err(format!("task failed: {e}")),
    }
}

/// Whole seconds as `1h 02m`, `3m 04s` or `12s`.
fn age_text(secs: u64) -> String {
    match secs {
        s if s >= 3600 => format!("{}h {:02}m", s / 3600, s % 3600 / 60),
        s if s >= 60 => format!("{}m {:02}s", s / 60, s % 60),
        s => format!("{s}s"),
    }
}

/// A rate in bytes/s as text.
fn rate_text(bps: f64) -> String {
    format!("{}/s", crate::util::human_bytes(bps.max(0.0) as u64))
}
