//! The Logs page: the last lines of the newest tracker or torrent log.

use axum::extract::{Query, State};
use axum::response::Response;
use maud::html;

use super::auth::Session;
use super::{notice, page, Shared};

/// Query of the Logs page.
#[derive(serde::Deserialize, Default)]
pub(super) struct LogQuery {
    log: Option<String>,
    level: Option<String>,
}

pub(super) async fn view(
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
