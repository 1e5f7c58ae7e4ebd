//! Console sign-in: the admin password (argon2id hash in the database) or the
//! running hub's admin token, sessions in memory behind a cookie (Secure,
//! HttpOnly, SameSite=Strict), a CSRF token per session checked on every
//! form, and sign-in attempts throttled per address.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use axum::extract::{ConnectInfo, Form, FromRequestParts, State};
use axum::http::request::Parts;
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use maud::html;

use super::{notice, secure, Shared};
use crate::hub::api::ConnInfo;
use crate::util::{random_hex, secret_hash};

/// Session cookie name.
pub(crate) const SESSION_COOKIE: &str = "swarmhub_session";
/// Cookie carrying the sign-in form's CSRF token (before there is a session).
const LOGIN_COOKIE: &str = "swarmhub_login";
/// A session ends this long after sign-in.
const SESSION_LIFETIME: Duration = Duration::from_secs(12 * 3600);
/// Failed sign-ins allowed per address within [`THROTTLE_WINDOW`].
const MAX_FAILURES: u32 = 5;
/// Window of the sign-in throttle.
const THROTTLE_WINDOW: Duration = Duration::from_secs(60);
/// Most sessions kept at once (the oldest go first).
const MAX_SESSIONS: usize = 1024;

struct SessionEntry {
    csrf: String,
    expires: Instant,
}

/// Sessions and the sign-in throttle.
#[derive(Default)]
pub(crate) struct ConsoleState {
    /// By SHA-256 of the cookie value (the value itself is never kept).
    sessions: Mutex<HashMap<String, SessionEntry>>,
    failures: Mutex<HashMap<IpAddr, (Instant, u32)>>,
    /// Per-peer rates of the swarm view, from announce to announce.
    pub(super) rates: super::swarm::Rates,
}

impl std::fmt::Debug for ConsoleState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ConsoleState").finish_non_exhaustive()
    }
}

impl ConsoleState {
    fn open(&self) -> Option<(String, String)> {
        let token = random_hex(32).ok()?;
        let csrf = random_hex(24).ok()?;
        let mut m = self.sessions.lock().ok()?;
        let now = Instant::now();
        m.retain(|_, s| s.expires > now);
        if m.len() >= MAX_SESSIONS {
            if let Some(oldest) = m
                .iter()
                .min_by_key(|(_, s)| s.expires)
                .map(|(k, _)| k.clone())
            {
                m.remove(&oldest);
            }
        }
        m.insert(
            secret_hash(&token),
            SessionEntry {
                csrf: csrf.clone(),
                expires: now + SESSION_LIFETIME,
            },
        );
        Some((token, csrf))
    }

    fn find(&self, token: &str) -> Option<Session> {
        let key = secret_hash(token);
        let m = self.sessions.lock().ok()?;
        let s = m.get(&key).filter(|s| s.expires > Instant::now())?;
        Some(Session {
            key,
            csrf: s.csrf.clone(),
        })
    }

    fn close(&self, key: &str) {
        if let Ok(mut m) = self.sessions.lock() {
            m.remove(key);
        }
    }

    /// Seconds to wait when `ip` has failed too often, else `None`.
    fn throttled(&self, ip: IpAddr) -> Option<u64> {
        let m = self.failures.lock().ok()?;
        let (start, n) = *m.get(&ip)?;
        let left = THROTTLE_WINDOW.checked_sub(start.elapsed())?;
        (n >= MAX_FAILURES).then(|| left.as_secs().max(1))
    }

    fn failed(&self, ip: IpAddr) {
        if let Ok(mut m) = self.failures.lock() {
            let e = m.entry(ip).or_insert((Instant::now(), 0));
            if e.0.elapsed() >= THROTTLE_WINDOW {
                *e = (Instant::now(), 0);
            }
            e.1 += 1;
        }
    }
}

/// A signed-in caller; extracting it refuses everyone else (page views are
/// sent to the sign-in page, anything else gets 401).
#[derive(Clone, Debug)]
pub(crate) struct Session {
    key: String,
    /// The session's CSRF token.
    pub(crate) csrf: String,
}

/// A form post without this session's CSRF token: answered 403.
#[derive(Debug)]
pub(crate) struct CsrfRefused;

impl IntoResponse for CsrfRefused {
    fn into_response(self) -> Response {
        secure(
            (
                StatusCode::FORBIDDEN,
                "missing or wrong CSRF token: reload the page and try again",
            )
                .into_response(),
        )
    }
}

impl Session {
    /// Refused unless `form` carries this session's CSRF token.
    pub(super) fn check(&self, form: &FormData) -> Result<(), CsrfRefused> {
        self.check_token(form.get("csrf"))
    }

    /// Refused unless `token` is this session's CSRF token.
    pub(super) fn check_token(&self, token: Option<&str>) -> Result<(), CsrfRefused> {
        match token {
            Some(t) if constant_eq(t, &self.csrf) => Ok(()),
            _ => Err(CsrfRefused),
        }
    }
}

/// A form's fields, in order (any field may be missing: handlers check).
#[derive(Debug, Default, serde::Deserialize)]
#[serde(transparent)]
pub(crate) struct FormData(Vec<(String, String)>);

impl FormData {
    /// The first value of `key`.
    pub(crate) fn get(&self, key: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    /// Whether `key` was sent (a checked checkbox).
    pub(crate) fn has(&self, key: &str) -> bool {
        self.get(key).is_some()
    }
}

fn constant_eq(a: &str, b: &str) -> bool {
    a.len() == b.len()
        && a.bytes()
            .zip(b.bytes())
            .fold(0u8, |acc, (x, y)| acc | (x ^ y))
            == 0
}

/// The value of cookie `name`.
fn cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|kv| kv.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v)
}

impl FromRequestParts<Shared> for Session {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, state: &Shared) -> Result<Self, Response> {
        if let Some(s) = cookie(&parts.headers, SESSION_COOKIE).and_then(|t| state.console.find(t))
        {
            return Ok(s);
        }
        let json = parts.uri.path().ends_with(".json") || parts.uri.path().ends_with(".js");
        Err(if parts.method == Method::GET && !json {
            secure(Redirect::to("/admin/login").into_response())
        } else {
            secure(
                (
                    StatusCode::UNAUTHORIZED,
                    "sign in to the admin console first",
                )
                    .into_response(),
            )
        })
    }
}

fn set_cookie(name: &str, value: &str, max_age_s: u64) -> HeaderValue {
    let v = format!(
        "{name}={value}; Path=/admin; Max-Age={max_age_s}; Secure; HttpOnly; SameSite=Strict"
    );
    HeaderValue::from_str(&v).unwrap_or_else(|_| HeaderValue::from_static(""))
}

/// The sign-in page, with a fresh form token in a cookie and in the form.
fn login_form(status: StatusCode, message: Option<(&str, &str)>) -> Response {
    let Ok(token) = random_hex(24) else {
        return (StatusCode::INTERNAL_SERVER_ERROR, "no OS randomness").into_response();
    };
    let markup = html! {
        (maud::DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { "Sign in · swarmhub hub" }
                link rel="stylesheet" href="/admin/assets/console.css";
            }
            body.login {
                main {
                    h1 { "swarmhub hub" }
                    @if let Some((kind, text)) = message { (notice(kind, text)) }
                    form method="post" action="/admin/login" {
                        input type="hidden" name="csrf" value=(token);
                        label for="password" { "Admin password or admin token" }
                        input #password type="password" name="password" autocomplete="current-password" required autofocus;
                        button type="submit" { "Sign in" }
                    }
                    p.hint { "Set the password with " code { "swarmhub hub admin passwd" } "; a hub started without one wrote a generated one to " code { "DIR/admin-password.txt" } "." }
                }
            }
        }
    };
    let mut resp = (status, markup).into_response();
    resp.headers_mut()
        .insert(header::SET_COOKIE, set_cookie(LOGIN_COOKIE, &token, 3600));
    secure(resp)
}

pub(super) async fn login_page() -> Response {
    login_form(StatusCode::OK, None)
}

pub(super) async fn login(
    State(state): State<Shared>,
    ConnectInfo(conn): ConnectInfo<ConnInfo>,
    headers: HeaderMap,
    Form(form): Form<FormData>,
) -> Response {
    let form_token = cookie(&headers, LOGIN_COOKIE);
    match (form.get("csrf"), form_token) {
        (Some(a), Some(b)) if constant_eq(a, b) => {}
        _ => {
            return secure(
                (
                    StatusCode::FORBIDDEN,
                    "missing or wrong CSRF token: reload the sign-in page",
                )
                    .into_response(),
            )
        }
    }
    let ip = conn.remote.ip().to_canonical();
    if let Some(wait) = state.console.throttled(ip) {
        let msg = format!("too many failed sign-ins from {ip}: wait {wait} s");
        return login_form(StatusCode::TOO_MANY_REQUESTS, Some(("error", &msg)));
    }
    let password = form.get("password").unwrap_or_default().to_owned();
    let ok = constant_eq(&password, &state.admin_token) || {
        let stored = match state.db.lock() {
            Ok(db) => crate::hub::passwd::stored_hash(&db).ok().flatten(),
            Err(_) => None,
        };
        tokio::task::spawn_blocking(move || {
            crate::hub::passwd::verify_hash(stored.as_deref(), &password)
        })
        .await
        .unwrap_or(false)
    };
    if !ok {
        state.console.failed(ip);
        tracing::warn!("admin console: failed sign-in from {ip}");
        return login_form(
            StatusCode::UNAUTHORIZED,
            Some(("error", "wrong password or admin token")),
        );
    }
    let Some((token, _)) = state.console.open() else {
        return (StatusCode::INTERNAL_SERVER_ERROR, "cannot open a session").into_response();
    };
    tracing::info!("admin console: signed in from {ip}");
    let mut resp = Redirect::to("/admin/storage").into_response();
    let h = resp.headers_mut();
    h.append(
        header::SET_COOKIE,
        set_cookie(SESSION_COOKIE, &token, SESSION_LIFETIME.as_secs()),
    );
    h.append(header::SET_COOKIE, set_cookie(LOGIN_COOKIE, "", 0));
    secure(resp)
}

pub(super) async fn logout(
    State(state): State<Shared>,
    session: Session,
    Form(form): Form<FormData>,
) -> Response {
    if let Err(r) = session.check(&form) {
        return r.into_response();
    }
    state.console.close(&session.key);
    let mut resp = Redirect::to("/admin/login").into_response();
    resp.headers_mut()
        .insert(header::SET_COOKIE, set_cookie(SESSION_COOKIE, "", 0));
    secure(resp)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn throttle_sessions_and_cookies() {
        let c = ConsoleState::default();
        let ip: IpAddr = "10.0.0.1".parse().unwrap();
        for _ in 0..MAX_FAILURES - 1 {
            c.failed(ip);
        }
        assert_eq!(c.throttled(ip), None);
        c.failed(ip);
        assert!(c.throttled(ip).is_some());
        assert_eq!(c.throttled("10.0.0.2".parse().unwrap()), None);

        let (token, csrf) = c.open().expect("open");
        let s = c.find(&token).expect("found");
        assert_eq!(s.csrf, csrf);
        assert!(s.check_token(Some(&csrf)).is_ok());
        assert!(s.check_token(Some("nope")).is_err());
        assert!(s.check_token(None).is_err());
        c.close(&s.key);
        assert!(c.find(&token).is_none());

        let mut h = HeaderMap::new();
        h.insert(
            header::COOKIE,
            HeaderValue::from_static("a=1; swarmhub_session=xyz"),
        );
        assert_eq!(cookie(&h, SESSION_COOKIE), Some("xyz"));
        assert_eq!(cookie(&h, "b"), None);
    }
}
