//! tracing setup: stderr plus log files.
//!
//! The hub writes `tracker.YYYY-MM-DD.log` (events whose target starts with
//! `tracker`) and `torrent.YYYY-MM-DD.log` (everything else of swarmhub's) in
//! its logs folder; clients write `swarmhub.YYYY-MM-DD.log` under their home.
//! Files roll over at midnight UTC and at most [`MAX_LOG_FILES`] of each kind
//! are kept (older ones, including the `PREFIX_YYYYMMDD_HHMMSS.log` files of
//! earlier versions, are deleted when a new one starts).
//!
//! Lines go to the files through a background thread (tracing-appender's
//! non-blocking writer): a request handler never waits on the disk. The
//! writer is not lossy: when its queue (128,000 lines) is full, logging
//! waits rather than dropping lines, so a refusal or a revocation is never
//! missing from the record. The volume that could fill it, one line per
//! announce, is logged at trace, below the files' default level.
//!
//! Levels: `SWARMHUB_LOG` sets the stderr filter (default `info` for the hub,
//! `warn` for clients), `SWARMHUB_FILE_LOG` the files' (default `debug` for
//! the hub, `info` for clients; `SWARMHUB_FILE_LOG=tracker=trace` adds the
//! per-announce lines). Both take `tracing_subscriber::EnvFilter` directives.
//!
//! No log line carries a secret: enrollment keys, client secrets, the admin
//! token and passwords are never formatted into one, and announce refusals
//! name the offending key, not its value (`node/tests/log_files.rs` checks).

use std::path::Path;

use tracing_appender::non_blocking::{NonBlocking, NonBlockingBuilder, WorkerGuard};
use tracing_appender::rolling::{RollingFileAppender, Rotation};
use tracing_subscriber::filter::{filter_fn, EnvFilter, FilterExt, LevelFilter};
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::Layer;

/// Target of tracker log events.
pub const TRACKER_TARGET: &str = "tracker";

/// Log files of each kind kept (one a day).
pub const MAX_LOG_FILES: usize = 14;

/// Environment variable with the stderr filter.
pub const STDERR_ENV: &str = "SWARMHUB_LOG";

/// Environment variable with the log files' filter.
pub const FILE_ENV: &str = "SWARMHUB_FILE_LOG";

/// Keeps the log writer threads running; dropping it writes out every
/// queued line. Hold it until the process ends.
#[must_use = "dropping the guard stops the log file writers"]
pub struct LogGuard {
    _workers: Vec<WorkerGuard>,
}

/// A daily-rolling `PREFIX.YYYY-MM-DD.log` in `dir`, behind a writer thread.
fn rolling(dir: &Path, prefix: &str) -> std::io::Result<(NonBlocking, WorkerGuard)> {
    std::fs::create_dir_all(dir)?;
    let appender = RollingFileAppender::builder()
        .rotation(Rotation::DAILY)
        .filename_prefix(prefix)
        .filename_suffix("log")
        .max_log_files(MAX_LOG_FILES)
        .build(dir)
        .map_err(std::io::Error::other)?;
    Ok(NonBlockingBuilder::default()
        .lossy(false)
        .thread_name(&format!("swarmhub-log-{prefix}"))
        .finish(appender))
}

/// The filter in `var`. The target filters of the files are `and`ed to it,
/// so a callsite below its level is off for good (one check at the first
/// call, none per event), the announce line at trace included.
fn env_filter(var: &str, default: LevelFilter) -> EnvFilter {
    EnvFilter::builder()
        .with_default_directive(default.into())
        .with_env_var(var)
        .from_env_lossy()
}

fn stderr_layer<S>(default: LevelFilter) -> impl Layer<S>
where
    S: tracing::Subscriber + for<'a> tracing_subscriber::registry::LookupSpan<'a>,
{
    tracing_subscriber::fmt::layer()
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_filter(env_filter(STDERR_ENV, default))
}

fn is_tracker(m: &tracing::Metadata<'_>) -> bool {
    m.target().starts_with(TRACKER_TARGET)
}

/// Hub logging: stderr at `info`, `tracker.*.log` and `torrent.*.log` in
/// `logs` at `debug` (see the module docs for the variables that change them).
pub fn init_hub(logs: &Path) -> std::io::Result<LogGuard> {
    let (tracker, tracker_guard) = rolling(logs, "tracker")?;
    let (torrent, torrent_guard) = rolling(logs, "torrent")?;
    let _ = tracing_subscriber::registry()
        .with(stderr_layer(LevelFilter::INFO))
        .with(
            tracing_subscriber::fmt::layer()
                .with_ansi(false)
                .with_writer(tracker)
                .with_filter(env_filter(FILE_ENV, LevelFilter::DEBUG).and(filter_fn(is_tracker))),
        )
        .with(
            tracing_subscriber::fmt::layer()
                .with_ansi(false)
                .with_writer(torrent)
                .with_filter(env_filter(FILE_ENV, LevelFilter::DEBUG).and(filter_fn(|m| {
                    !is_tracker(m) && m.target().starts_with("swarmhub")
                }))),
        )
        .try_init();
    Ok(LogGuard {
        _workers: vec![tracker_guard, torrent_guard],
    })
}

/// Client logging: stderr at `warn` (the progress bar owns the terminal),
/// `swarmhub.*.log` in `logs` at `info`.
pub fn init_client(logs: &Path) -> std::io::Result<LogGuard> {
    let (file, guard) = rolling(logs, "swarmhub")?;
    let _ = tracing_subscriber::registry()
        .with(stderr_layer(LevelFilter::WARN))
        .with(
            tracing_subscriber::fmt::layer()
                .with_ansi(false)
                .with_writer(file)
                .with_filter(
                    env_filter(FILE_ENV, LevelFilter::INFO)
                        .and(filter_fn(|m| m.target().starts_with("swarmhub"))),
                ),
        )
        .try_init();
    Ok(LogGuard {
        _workers: vec![guard],
    })
}

/// Whether `name` is a log file of kind `prefix` in a logs folder: this
/// version's `PREFIX.YYYY-MM-DD.log` or an earlier `PREFIX_*.log`.
pub fn is_log_file(name: &str, prefix: &str) -> bool {
    name.strip_prefix(prefix)
        .is_some_and(|rest| rest.starts_with('.') || rest.starts_with('_'))
        && name.ends_with(".log")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn log_file_names_of_both_versions_are_recognised() {
        assert!(is_log_file("tracker.2026-12-03.log", "tracker"));
        assert!(is_log_file("tracker_20260101_000000.log", "tracker"));
        assert!(!is_log_file("torrent.2026-12-03.log", "tracker"));
        assert!(!is_log_file("trackers.2026-12-03.log", "tracker"));
        assert!(!is_log_file("tracker.2026-12-03.txt", "tracker"));
    }
}
