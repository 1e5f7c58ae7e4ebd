//! The Images page: the catalog with live counts, add from a path on the
//! hub or by upload, remove.

use std::path::PathBuf;

use axum::body::Body;
use axum::extract::{Form, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use maud::{html, Markup};

use super::auth::{FormData, Session};
use super::{blocking, csrf_field, notice, page, Shared};
use crate::hub::admin;
use crate::util::{human_bytes, random_hex};

pub(super) async fn view(State(state): State<Shared>, session: Session) -> Response {
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

pub(super) async fn add(
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
pub(super) async fn upload(
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

pub(super) async fn remove(
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
