//! The Clients page: enrolled clients with what the hub last saw of them,
//! add (with the one-time key and the login command), revoke.

use std::time::SystemTime;

use axum::extract::{Form, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use maud::{html, Markup};
use swarmhub_core::tracker::PeerView;

use super::auth::{FormData, Session};
use super::{age_text, blocking, csrf_field, error_page, host_of, notice, page, Shared};
use crate::hub::admin;

pub(super) async fn view(State(state): State<Shared>, session: Session) -> Response {
    clients_page(&state, &session, None).await
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

async fn clients_page(state: &Shared, session: &Session, added: Option<Markup>) -> Response {
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

pub(super) async fn add(
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
    clients_page(&state, &session, Some(msg)).await
}

pub(super) async fn revoke(
    State(state): State<Shared>,
    session: Session,

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
    clients_page(&state, &session, Some(msg)).await
}
