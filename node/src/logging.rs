//! tracing setup: stderr plus log files.
//!
//! The hub writes `tracker_YYYYMMDD_HHMMSS.log` (events whose target starts with
//! `tracker`) and `torrent_YYYYMMDD_HHMMSS.log` (everything else) in its logs
//! folder; clients write `swarmhub_YYYYMMDD_HHMMSS.log` under their home.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use tracing_subscriber::filter::{filter_fn, EnvFilter, LevelFilter};
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::Layer;

use crate::util::utc_stamp;

/// Target of tracker log events.
pub const TRACKER_TARGET: &str = "tracker";

fn open(dir: &Path, prefix: &str, stamp: &str) -> std::io::Result<(File, PathBuf)> {
    std::fs::create_dir_all(dir)?;
    // Two starts in the same second must not truncate each other's log.
    let mut path = dir.join(format!("{prefix}_{stamp}.log"));
    let mut n = 1;
    while path.exists() {
        path = dir.join(format!("{prefix}_{stamp}_{n}.log"));
        n += 1;
    }
    Ok((File::create(&path)?, path))
}

fn stderr_filter(default: LevelFilter) -> EnvFilter {
    EnvFilter::builder()
        .with_default_directive(default.into())
        .with_env_var("SWARMHUB_LOG")
        .from_env_lossy()
}

/// Hub logging: stderr at `info` (or `SWARMHUB_LOG`), files at debug.
pub fn init_hub(logs: &Path) -> std::io::Result<Vec<PathBuf>> {
    let stamp = utc_stamp();
    let (tracker, tp) = open(logs, "tracker", &stamp)?;
    let (torrent, rp) = open(logs, "torrent", &stamp)?;
    let file_level = LevelFilter::DEBUG;
    let is_tracker = |m: &tracing::Metadata<'_>| m.target().starts_with(TRACKER_TARGET);
    let _ = tracing_subscriber::registry()
        .with(
            tracing_subscriber::fmt::layer()
                .with_writer(std::io::stderr)
                .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
                .with_filter(stderr_filter(LevelFilter::INFO)),
        )
        .with(
            tracing_subscriber::fmt::layer()
                .with_ansi(false)
                .with_writer(Mutex::new(tracker))
                .with_filter(file_level)
                .with_filter(filter_fn(is_tracker)),
        )
        .with(
            tracing_subscriber::fmt::layer()
                .with_ansi(false)
                .with_writer(Mutex::new(torrent))
                .with_filter(file_level)
                .with_filter(filter_fn(move |m| {
                    !is_tracker(m) && m.target().starts_with("swarmhub")
                })),
        )
        .try_init();
    Ok(vec![tp, rp])
}

/// Client logging: stderr at `warn` (the progress bar owns the terminal), a file at info.
pub fn init_client(logs: &Path) -> std::io::Result<PathBuf> {
    let (file, path) = open(logs, "swarmhub", &utc_stamp())?;
    let _ = tracing_subscriber::registry()
        .with(
            tracing_subscriber::fmt::layer()
                .with_writer(std::io::stderr)
                .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
                .with_filter(stderr_filter(LevelFilter::WARN)),
        )
        .with(
            tracing_subscriber::fmt::layer()
                .with_ansi(false)
                .with_writer(Mutex::new(file))
                .with_filter(LevelFilter::INFO)
                .with_filter(filter_fn(|m| m.target().starts_with("swarmhub"))),
        )
        .try_init();
    Ok(path)
}
