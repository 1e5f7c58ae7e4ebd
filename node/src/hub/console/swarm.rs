//! The live swarm view of one image: every peer the tracker knows, with its
//! identity, site, progress, rates (from one announce to the next) and where
//! its bytes came from: the hub's web seed and the hub seeder, as the hub
//! counted them, and other peers (the rest of what the peer reported).

use std::collections::HashMap;
use std::sync::Mutex;

use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use maud::html;
use swarmhub_core::{Id20, Instant};

use super::auth::Session;
use super::{age_text, error_page, page, rate_text, secure, Shared};
use crate::util::human_bytes;

/// Last figures seen per (image, peer id), for rates.
#[derive(Default)]
pub(crate) struct Rates(Mutex<HashMap<(Id20, Id20), Sample>>);

#[derive(Clone, Copy)]
struct Sample {
    at: Instant,
    uploaded: u64,
    downloaded: u64,
    up_bps: f64,
    down_bps: f64,
}

/// One row of the swarm view.
#[derive(serde::Serialize)]
struct PeerRow {
    identity: String,
    site: Option<String>,
    addr: String,
    progress: f64,
    left_bytes: u64,
    up_bps: f64,
    down_bps: f64,
    uploaded_bytes: u64,
    downloaded_bytes: u64,
    /// Bytes of this image the hub's web seed sent this identity.
    from_webseed_bytes: u64,
    /// Bytes of this image the hub seeder sent this identity.
    from_seeder_bytes: u64,
    /// The rest of what it reported downloaded: from other peers.
    from_peers_bytes: u64,
    last_announce_s: u64,
}

/// Query naming the image.
#[derive(serde::Deserialize)]
pub(super) struct ImageQuery {
    image: String,
}

fn rows(state: &Shared, image: &str) -> Option<Vec<PeerRow>> {
    let served = state.by_name.read().ok()?.get(image).cloned()?;
    let hash = served.meta.info_hash;
    let size = served.meta.total_length().max(1);
    let (peers, now) = {
        let t = state.tracker.lock().ok()?;
        (t.swarm_peers(&hash), state.now())
    };
    let mut rates = state.console.rates.0.lock().ok()?;
    rates.retain(|(h, id), _| *h != hash || peers.iter().any(|p| p.peer_id == *id));
    let list = peers
        .into_iter()
        .map(|p| {
            let key = (hash, p.peer_id);
            let prev = rates.get(&key).copied();
            let sample = match prev {
                Some(s) if s.at == p.last_announce => s,
                Some(s) => {
                    let dt = (p.last_announce - s.at).as_secs_f64().max(1e-3);
                    Sample {
                        at: p.last_announce,
                        uploaded: p.uploaded,
                        downloaded: p.downloaded,
                        up_bps: p.uploaded.saturating_sub(s.uploaded) as f64 / dt,
                        down_bps: p.downloaded.saturating_sub(s.downloaded) as f64 / dt,
                    }
                }
                None => Sample {
                    at: p.last_announce,
                    uploaded: p.uploaded,
                    downloaded: p.downloaded,
                    up_bps: 0.0,
                    down_bps: 0.0,
                },
            };
            rates.insert(key, sample);
            let webseed = state.counters.webseed_to(&p.identity, &hash);
            let seeder = state.counters.seeder_to(&p.identity, &hash);
            PeerRow {
                site: p.site,
                addr: format!("{}:{}", p.addr.ip, p.addr.port),
                progress: 1.0 - p.left.min(size) as f64 / size as f64,
                left_bytes: p.left,
                up_bps: sample.up_bps,
                down_bps: sample.down_bps,
                uploaded_bytes: p.uploaded,
                downloaded_bytes: p.downloaded,
                from_webseed_bytes: webseed,
                from_seeder_bytes: seeder,
                from_peers_bytes: p.downloaded.saturating_sub(webseed + seeder),
                last_announce_s: now.saturating_since(p.last_announce).as_micros() / 1_000_000,
                identity: p.identity,
            }
        })
        .collect();
    Some(list)
}

pub(super) async fn view(
    State(state): State<Shared>,
    session: Session,
    query: Result<Query<ImageQuery>, QueryRejection>,
) -> Response {
    let Ok(Query(q)) = query else {
        return error_page(
            &session,
            StatusCode::BAD_REQUEST,
            "/admin/images",
            "name an image: /admin/swarm?image=NAME:TAG",
        );
    };
    let Some(list) = rows(&state, &q.image) else {
        return error_page(
            &session,
            StatusCode::NOT_FOUND,
            "/admin/images",
            &format!("no image {} on this hub", q.image),
        );
    };
    let body = html! {
        p.hint { "Peers as the tracker knows them from their announces; refreshed every 2 s. Rates are from one announce to the next." }
        div.scroll {
            table #swarm data-swarm=(q.image) {
                thead { tr {
                    th { "Identity" } th { "Site" } th { "Address" } th { "Progress" }
                    th { "Down" } th { "Up" } th { "From hub web seed" } th { "From hub seeder" } th { "From peers" } th { "Last announce" }
                } }
                tbody {
                    @for r in &list {
                        tr data-peer=(r.identity) {
                            td { (r.identity) }
                            td { (r.site.as_deref().unwrap_or("-")) }
                            td { (r.addr) }
                            td { progress max="100" value=(format!("{:.0}", r.progress * 100.0)) {} " " (format!("{:.0}%", r.progress * 100.0)) }
                            td { (rate_text(r.down_bps)) }
                            td { (rate_text(r.up_bps)) }
                            td { (human_bytes(r.from_webseed_bytes)) }
                            td { (human_bytes(r.from_seeder_bytes)) }
                            td { (human_bytes(r.from_peers_bytes)) }
                            td { (age_text(r.last_announce_s)) " ago" }
                        }
                    }
                    @if list.is_empty() { tr.empty { td colspan="10" { "No peers in this swarm right now." } } }
                }
            }
        }
    };
    page(
        &session,
        "/admin/images",
        &format!("Swarm of {}", q.image),
        body,
    )
}

pub(super) async fn json(
    State(state): State<Shared>,
    _s: Session,
    query: Result<Query<ImageQuery>, QueryRejection>,
) -> Response {
    let Ok(Query(q)) = query else {
        return secure((StatusCode::BAD_REQUEST, "name an image: ?image=NAME:TAG").into_response());
    };
    match rows(&state, &q.image) {
        Some(list) => secure(Json(list).into_response()),
        None => secure(
            (
                StatusCode::NOT_FOUND,
                format!("no image {} on this hub", q.image),
            )
                .into_response(),
        ),
    }
}
