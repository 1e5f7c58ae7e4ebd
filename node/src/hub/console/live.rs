//! Live figures (small charts the page's script refreshes from
//! `live.json` every two seconds) and the tail of the hub's log files.

use std::path::Path;

use axum::extract::State;
use axum::response::{IntoResponse, Response};
use axum::Json;
use maud::html;

use super::auth::Session;
use super::{page, secure, Shared};
use crate::hub::counters::Totals;

/// Answer of `GET /admin/live.json`: totals now; the page turns successive
/// answers into rates.
#[derive(serde::Serialize)]
struct Live {
    /// Milliseconds since the hub started.
    t_ms: u64,
    /// The seeder's upload capacity, bytes/s (0: unknown).
    capacity_bps: u64,
    #[serde(flatten)]
    totals: Totals,
}

pub(super) async fn view(session: Session) -> Response {
    let charts = [
        ("upload", "Hub upload (seeder + web seed) against capacity"),
        ("announces", "Announces per second"),
        ("connections", "Connections (API and seeder peers)"),
        ("refusals", "Refusals per second (announces, API, TLS)"),
    ];
    let body = html! {
        p.hint { "Updated every 2 s from " code { "/admin/live.json" } "." }
        div.charts {
            @for (id, title) in charts {
                figure.card {
                    figcaption { (title) " " span.now data-now=(id) {} }
                    canvas.chart data-chart=(id) width="480" height="160" {}
                }
            }
        }
    };
    page(&session, "/admin/live", "Live figures", body)
}

pub(super) async fn json(State(state): State<Shared>, _s: Session) -> Response {
    let settings = state.settings();
    let live = Live {
        t_ms: state.origin.elapsed().as_millis() as u64,
        capacity_bps: settings.seeder.upload_bps.unwrap_or(state.upload_limit_bps),
        totals: state.counters.totals(),
    };
    secure(Json(live).into_response())
}

/// Rank of a level name (error 1 .. trace 5).
pub(super) fn level_rank(level: &str) -> Option<usize> {
    ["ERROR", "WARN", "INFO", "DEBUG", "TRACE"]
        .iter()
        .position(|l| l.eq_ignore_ascii_case(level))
        .map(|i| i + 1)
}

/// Bytes read from the end of a log file.
const TAIL_BYTES: u64 = 512 * 1024;

/// The last `max` lines at `level` or more severe of the newest
/// `PREFIX.*.log` (or older `PREFIX_*.log`) in `dir`: (file name, lines). A line's level is the first
/// level word among its first three fields (tracing's format).
pub(super) fn tail_log(
    dir: &Path,
    prefix: &str,
    level: usize,
    max: usize,
) -> Result<(String, Vec<String>), String> {
    use std::io::{Read, Seek, SeekFrom};
    // Newest by modification time: this version's `PREFIX.DATE.log` names
    // sort before an earlier version's `PREFIX_STAMP.log` ones.
    let newest = std::fs::read_dir(dir)
        .map_err(|e| format!("{}: {e}", dir.display()))?
        .filter_map(Result::ok)
        .filter_map(|e| {
            let name = e.file_name().into_string().ok()?;
            let modified = e.metadata().and_then(|m| m.modified()).ok()?;
            crate::logging::is_log_file(&name, prefix).then_some((modified, name))
        })
        .max()
        .map(|(_, name)| name)
        .ok_or_else(|| format!("no {prefix}.*.log in {}", dir.display()))?;
    let path = dir.join(&newest);
    let mut f = std::fs::File::open(&path).map_err(|e| format!("{}: {e}", path.display()))?;
    let len = f.metadata().map(|m| m.len()).unwrap_or(0);
    let start = len.saturating_sub(TAIL_BYTES);
    f.seek(SeekFrom::Start(start))
        .map_err(|e| format!("{}: {e}", path.display()))?;
    let mut raw = Vec::new();
    f.read_to_end(&mut raw)
        .map_err(|e| format!("{}: {e}", path.display()))?;
    let text = String::from_utf8_lossy(&raw);
    let mut lines: Vec<String> = text
        .lines()
        .skip(usize::from(start > 0))
        .filter(|l| {
            l.split_whitespace()
                .take(3)
                .find_map(level_rank)
                .is_none_or(|r| r <= level)
        })
        .map(str::to_owned)
        .collect();
    let drop = lines.len().saturating_sub(max);
    lines.drain(..drop);
    Ok((newest, lines))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tail_filters_by_level_and_takes_the_newest_file() {
        let tmp = tempfile::tempdir().expect("tempdir");
        std::fs::write(
            tmp.path().join("tracker_20260101_000000.log"),
            "2026 INFO old\n",
        )
        .expect("write");
        // An earlier version's name, older, then this version's.
        let old = std::fs::File::options()
            .write(true)
            .open(tmp.path().join("tracker_20260101_000000.log"))
            .expect("open");
        let day = std::time::Duration::from_secs(86_400);
        old.set_modified(std::time::SystemTime::now() - day)
            .expect("mtime");
        std::fs::write(
            tmp.path().join("tracker.2026-01-02.log"),
            "2026-01-02T00:00:00Z  INFO a: one\n2026-01-02T00:00:01Z DEBUG a: two\n2026-01-02T00:00:02Z ERROR a: three\n",
        )
        .expect("write");
        let (file, lines) = tail_log(tmp.path(), "tracker", 3, 10).expect("tail");
        assert_eq!(file, "tracker.2026-01-02.log");
        assert_eq!(lines.len(), 2, "{lines:?}");
        assert!(lines[1].ends_with("three"));
        let (_, lines) = tail_log(tmp.path(), "tracker", 5, 1).expect("tail");
        assert_eq!(lines.len(), 1);
        assert!(tail_log(tmp.path(), "torrent", 5, 1).is_err());
    }
}
