//! Typed loading of run folders (`peers.csv`, `timeline.csv`, `summary.json`,
//! optional `scenario.toml`) and sweep folders (`sweep.csv` plus `point-NNN/`
//! run folders). The schema is the one `swarmhub-sim` writes (`sim/src/output.rs`
//! and `sim/src/sweep.rs`); real runs use the same files.

use std::path::{Path, PathBuf};

use serde::de::DeserializeOwned;
use serde::Deserialize;

/// Why a run or sweep folder could not be loaded. Every variant names the file.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum LoadError {
    /// The file does not exist.
    #[error("{path}: file missing (is this a swarmhub-sim run or sweep folder?)")]
    Missing {
        /// File that was expected.
        path: PathBuf,
    },
    /// The file exists but could not be read.
    #[error("{path}: cannot read: {source}")]
    Io {
        /// File.
        path: PathBuf,
        /// Cause.
        source: std::io::Error,
    },
    /// The CSV header does not have the expected columns.
    #[error("{path}: bad header: expected columns {expected:?}, found {found:?}")]
    Header {
        /// File.
        path: PathBuf,
        /// Columns expected.
        expected: Vec<String>,
        /// Columns found.
        found: Vec<String>,
    },
    /// A row or value could not be parsed.
    #[error("{path}: line {line}: {problem}")]
    Parse {
        /// File.
        path: PathBuf,
        /// 1-based line number.
        line: u64,
        /// What is wrong.
        problem: String,
    },
    /// The file parsed but holds no usable data.
    #[error("{path}: {problem}")]
    Empty {
        /// File.
        path: PathBuf,
        /// What is missing.
        problem: String,
    },
}

/// One row of `peers.csv`.
#[derive(Clone, Debug, Deserialize, PartialEq)]
pub struct PeerRow {
    /// Host id (the hub is 0 and not listed).
    pub id: u64,
    /// Group name from the scenario.
    pub group: String,
    /// Site name (empty without topology).
    pub site: String,
    /// Join time, seconds.
    pub join_s: Option<f64>,
    /// Completion time, seconds (absent if it never completed).
    pub complete_s: Option<f64>,
    /// Leave time, seconds.
    pub leave_s: Option<f64>,
    /// Bytes downloaded from the hub.
    pub bytes_down_hub: u64,
    /// Bytes downloaded from peers.
    pub bytes_down_peers: u64,
    /// Bytes uploaded.
    pub bytes_up: u64,
    /// Bytes received and thrown away (duplicates, failed pieces); absent
    /// in outputs that predate the column or do not measure it.
    #[serde(default)]
    pub bytes_wasted: Option<u64>,
}

impl PeerRow {
    /// Seconds from join to completion, if it completed.
    pub fn completion_s(&self) -> Option<f64> {
        Some(self.complete_s? - self.join_s.unwrap_or(0.0))
    }
}

/// One row of `timeline.csv` (rates in bits per second).
#[derive(Clone, Debug, Deserialize, PartialEq)]
pub struct TimelineRow {
    /// Sample time, seconds.
    pub t_s: f64,
    /// Peers downloading.
    pub leechers: u64,
    /// Peers seeding.
    pub seeds: u64,
    /// Peers completed so far.
    pub completed: u64,
    /// Total download rate.
    pub throughput_bps: f64,
    /// Rate the hub sends.
    pub hub_egress_bps: f64,
    /// Rate peers send.
    pub peer_egress_bps: f64,
}

/// Completion-time percentiles, seconds.
#[derive(Clone, Debug, Deserialize, PartialEq)]
pub struct Percentiles {
    /// Median.
    pub p50: Option<f64>,
    /// 90th percentile.
    pub p90: Option<f64>,
    /// 99th percentile.
    pub p99: Option<f64>,
    /// Slowest.
    pub max: Option<f64>,
}

/// One inter-site link direction of `summary.json`'s `links`.
#[derive(Clone, Debug, Deserialize, PartialEq)]
pub struct LinkUse {
    /// Site the bytes left.
    pub from: String,
    /// Site they entered.
    pub to: String,
    /// Block bytes that crossed.
    pub bytes: u64,
    /// bytes / image size.
    pub copies: f64,
}

/// `summary.json`.
#[derive(Clone, Debug, Deserialize, PartialEq)]
pub struct Summary {
    /// Scenario name.
    pub scenario: String,
    /// SHA-256 of the scenario text.
    pub scenario_hash: String,
    /// Seed.
    pub seed: u64,
    /// Peers (hub not counted).
    pub peers: u64,
    /// Image size.
    pub image_bytes: u64,
    /// Piece size.
    pub piece_bytes: u64,
    /// Block size.
    pub block_bytes: u64,
    /// Peer-to-peer on.
    pub p2p: bool,
    /// Peers that completed.
    pub completed: u64,
    /// Completion times.
    pub completion_s: Percentiles,
    /// Analytic lower bound.
    pub bound_s: f64,
    /// Slowest completion / bound.
    pub ratio_to_bound: Option<f64>,
    /// Bytes the hub uploaded.
    pub hub_bytes_up: u64,
    /// hub_bytes_up / image_bytes.
    pub hub_copies: f64,
    /// Bytes peers uploaded.
    pub peer_bytes_up: u64,
    /// Bytes peers received and threw away, when measured.
    #[serde(default)]
    pub wasted_bytes: Option<u64>,
    /// Bytes across each inter-site link and direction (simulator runs
    /// with links).
    #[serde(default)]
    pub links: Vec<LinkUse>,
    /// Simulated end time.
    pub sim_end_s: f64,
    /// Events processed.
    pub events: u64,
    /// Event trace hash.
    pub trace_hash: String,
    /// Wall-clock seconds.
    pub wall_s: f64,
    /// Events per wall second.
    pub events_per_s: f64,
    /// Simulated seconds per wall second.
    pub sim_s_per_wall_s: f64,
    /// Simulator version.
    pub version: String,
    /// Command that reproduces the run.
    pub command: String,
    /// What ran, for a lab run (`swarmhub`, `qbittorrent`, ...); absent for
    /// the simulator.
    #[serde(default)]
    pub engine: Option<String>,
}

/// A loaded run folder.
#[derive(Clone, Debug)]
pub struct Run {
    /// Folder.
    pub dir: PathBuf,
    /// `peers.csv`.
    pub peers: Vec<PeerRow>,
    /// `timeline.csv`.
    pub timeline: Vec<TimelineRow>,
    /// `summary.json`.
    pub summary: Summary,
    /// `scenario.toml` text, when the folder has one (sweep points do).
    pub scenario_toml: Option<String>,
    /// Other runs drawn on the completion CDF, named by `overlay.txt`.
    pub overlays: Vec<Overlay>,
}

/// Another run to compare with (the simulator's run beside a lab run, say).
/// `overlay.txt` in a run folder names them, one a line: the folder
/// (relative to the run folder, or absolute), then optionally a tab and a
/// legend label. Blank lines and lines starting with `#` are skipped.
#[derive(Clone, Debug)]
pub struct Overlay {
    /// Legend label (default: the folder name).
    pub label: String,
    /// Its `peers.csv`.
    pub peers: Vec<PeerRow>,
    /// Its `summary.json`.
    pub summary: Summary,
}

/// The most runs one chart draws beside the main one (the palette's size).
pub const MAX_OVERLAYS: usize = 6;

fn load_overlays(dir: &Path) -> Result<Vec<Overlay>, LoadError> {
    let path = dir.join("overlay.txt");
    let Some(text) = read_optional(&path)? else {
        return Ok(Vec::new());
    };
    let mut overlays = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let line = line.trim_end();
        if line.trim().is_empty() || line.starts_with('#') {
            continue;
        }
        if overlays.len() == MAX_OVERLAYS {
            return Err(LoadError::Parse {
                path,
                line: i as u64 + 1,
                problem: format!("more than {MAX_OVERLAYS} runs to overlay"),
            });
        }
        let (folder, label) = line.split_once('\t').unwrap_or((line, ""));
        let other = dir.join(folder.trim());
        let label = match label.trim() {
            "" => other
                .file_name()
                .map_or("other run".into(), |n| n.to_string_lossy().into_owned()),
            l => l.to_string(),
        };
        overlays.push(Overlay {
            label,
            peers: load_csv_optional(&other.join("peers.csv"), &PEERS_COLUMNS, &PEERS_OPTIONAL)?,
            summary: load_summary(&other.join("summary.json"))?,
        });
    }
    Ok(overlays)
}

/// One row of `sweep.csv`.
#[derive(Clone, Debug, PartialEq)]
pub struct SweepRow {
    /// Values of the varied keys, in header order.
    pub settings: Vec<String>,
    /// Point folder name (`point-NNN`).
    pub point: String,
    /// Peers.
    pub peers: u64,
    /// Peer-to-peer on.
    pub p2p: bool,
    /// Peers completed.
    pub completed: u64,
    /// Median completion, seconds.
    pub p50_s: Option<f64>,
    /// 90th percentile, seconds.
    pub p90_s: Option<f64>,
    /// 99th percentile, seconds.
    pub p99_s: Option<f64>,
    /// Slowest, seconds.
    pub max_s: Option<f64>,
    /// Analytic bound, seconds.
    pub bound_s: f64,
    /// max / bound.
    pub ratio_to_bound: Option<f64>,
    /// Bytes the hub uploaded.
    pub hub_bytes_up: u64,
    /// Hub copies.
    pub hub_copies: f64,
    /// Bytes peers uploaded.
    pub peer_bytes_up: u64,
    /// Events.
    pub events: u64,
    /// Wall seconds.
    pub wall_s: f64,
}

/// A loaded sweep folder.
#[derive(Clone, Debug)]
pub struct Sweep {
    /// Folder.
    pub dir: PathBuf,
    /// Varied keys (the columns before `point`).
    pub keys: Vec<String>,
    /// One row per point.
    pub rows: Vec<SweepRow>,
    /// `scenario.toml` of the first point, when present.
    pub base_scenario_toml: Option<String>,
}

const PEERS_COLUMNS: [&str; 9] = [
    "id",
    "group",
    "site",
    "join_s",
    "complete_s",
    "leave_s",
    "bytes_down_hub",
    "bytes_down_peers",
    "bytes_up",
];
const TIMELINE_COLUMNS: [&str; 7] = [
    "t_s",
    "leechers",
    "seeds",
    "completed",
    "throughput_bps",
    "hub_egress_bps",
    "peer_egress_bps",
];
const SWEEP_COLUMNS: [&str; 15] = [
    "point",
    "peers",
    "p2p",
    "completed",
    "p50_s",
    "p90_s",
    "p99_s",
    "max_s",
    "bound_s",
    "ratio_to_bound",
    "hub_bytes_up",
    "hub_copies",
    "peer_bytes_up",
    "events",
    "wall_s",
];

fn read(path: &Path) -> Result<String, LoadError> {
    std::fs::read_to_string(path).map_err(|source| {
        if source.kind() == std::io::ErrorKind::NotFound {
            LoadError::Missing {
                path: path.to_path_buf(),
            }
        } else {
            LoadError::Io {
                path: path.to_path_buf(),
                source,
            }
        }
    })
}

fn csv_error(path: &Path, e: &csv::Error) -> LoadError {
    let line = e.position().map_or(0, |p| p.line());
    let problem = match e.kind() {
        csv::ErrorKind::Deserialize { err, .. } => match err.field() {
            Some(f) => format!("column {}: {}", f + 1, err.kind()),
            None => err.kind().to_string(),
        },
        _ => e.to_string(),
    };
    LoadError::Parse {
        path: path.to_path_buf(),
        line,
        problem,
    }
}

fn header(path: &Path, r: &mut csv::Reader<&[u8]>) -> Result<Vec<String>, LoadError> {
    let h = r.headers().map_err(|e| csv_error(path, &e))?;
    Ok(h.iter().map(str::to_string).collect())
}

fn check_header(path: &Path, found: &[String], expected: &[&str]) -> Result<(), LoadError> {
    if found
        .iter()
        .map(String::as_str)
        .eq(expected.iter().copied())
    {
        Ok(())
    } else {
        Err(LoadError::Header {
            path: path.to_path_buf(),
            expected: expected.iter().map(|s| s.to_string()).collect(),
            found: found.to_vec(),
        })
    }
}

/// Columns a `peers.csv` may end with after [`PEERS_COLUMNS`] (newer outputs).
const PEERS_OPTIONAL: [&str; 1] = ["bytes_wasted"];

/// Rows of the CSV file at `path`, whose header must be `columns`, then
/// `optional` columns in that order (newer outputs).
fn load_csv_optional<T: DeserializeOwned>(
    path: &Path,
    columns: &[&str],
    optional: &[&str],
) -> Result<Vec<T>, LoadError> {
    load_csv_with(path, columns, optional, |_| false)
}

/// A `timeline.csv` column of one inter-site link direction
/// (`link_FROM_TO_bps`), written only by scenarios with links.
fn is_link_column(name: &str) -> bool {
    name.starts_with("link_") && name.ends_with("_bps")
}

/// Like [`load_csv_optional`]; any columns after those that `tail` accepts
/// are allowed too (and not read into `T`).
fn load_csv_with<T: DeserializeOwned>(
    path: &Path,
    columns: &[&str],
    optional: &[&str],
    tail: fn(&str) -> bool,
) -> Result<Vec<T>, LoadError> {
    let text = read(path)?;
    let mut r = csv::Reader::from_reader(text.as_bytes());
    let found = header(path, &mut r)?;
    let extra = found
        .len()
        .saturating_sub(columns.len())
        .min(optional.len());
    let mut expected: Vec<&str> = columns.to_vec();
    expected.extend_from_slice(&optional[..extra]);
    let rest = found.get(expected.len()..).unwrap_or_default();
    if rest.iter().all(|c| tail(c)) {
        expected.extend(rest.iter().map(String::as_str));
    }
    check_header(path, &found, &expected)?;
    r.deserialize()
        .map(|row| row.map_err(|e| csv_error(path, &e)))
        .collect()
}

fn read_optional(path: &Path) -> Result<Option<String>, LoadError> {
    match read(path) {
        Ok(t) => Ok(Some(t)),
        Err(LoadError::Missing { .. }) => Ok(None),
        Err(e) => Err(e),
    }
}

/// Load `summary.json`.
pub fn load_summary(path: &Path) -> Result<Summary, LoadError> {
    let text = read(path)?;
    serde_json::from_str(&text).map_err(|e| LoadError::Parse {
        path: path.to_path_buf(),
        line: e.line() as u64,
        problem: e.to_string(),
    })
}

/// Load a run folder.
pub fn load_run(dir: &Path) -> Result<Run, LoadError> {
    let summary = load_summary(&dir.join("summary.json"))?;
    let peers = load_csv_optional(&dir.join("peers.csv"), &PEERS_COLUMNS, &PEERS_OPTIONAL)?;
    let timeline: Vec<TimelineRow> = load_csv_with(
        &dir.join("timeline.csv"),
        &TIMELINE_COLUMNS,
        &[],
        is_link_column,
    )?;
    if timeline.is_empty() {
        return Err(LoadError::Empty {
            path: dir.join("timeline.csv"),
            problem: "no rows after the header".into(),
        });
    }
    let scenario_toml = read_optional(&dir.join("scenario.toml"))?;
    let overlays = load_overlays(dir)?;
    Ok(Run {
        dir: dir.to_path_buf(),
        peers,
        timeline,
        summary,
        scenario_toml,
        overlays,
    })
}

fn field<T: std::str::FromStr>(
    path: &Path,
    line: u64,
    rec: &csv::StringRecord,
    at: usize,
    name: &str,
) -> Result<T, LoadError> {
    let raw = rec.get(at).unwrap_or("");
    raw.parse().map_err(|_| LoadError::Parse {
        path: path.to_path_buf(),
        line,
        problem: format!("column `{name}`: cannot parse {raw:?}"),
    })
}

fn opt_field(
    path: &Path,
    line: u64,
    rec: &csv::StringRecord,
    at: usize,
    name: &str,
) -> Result<Option<f64>, LoadError> {
    if rec.get(at).unwrap_or("").is_empty() {
        Ok(None)
    } else {
        field(path, line, rec, at, name).map(Some)
    }
}

fn sweep_row(
    path: &Path,
    rec: &csv::StringRecord,
    k: usize,
    line: u64,
) -> Result<SweepRow, LoadError> {
    let f = |i: usize| (k + i, SWEEP_COLUMNS[i]);
    macro_rules! get {
        ($i:expr) => {{
            let (at, name) = f($i);
            field(path, line, rec, at, name)?
        }};
    }
    macro_rules! opt {
        ($i:expr) => {{
            let (at, name) = f($i);
            opt_field(path, line, rec, at, name)?
        }};
    }
    let point = rec.get(k).unwrap_or("");
    if !is_folder_name(point) {
        return Err(LoadError::Parse {
            path: path.to_path_buf(),
            line,
            problem: format!(
                "column `point`: {point:?} is not a folder name inside the sweep folder \
                 (expected e.g. point-000)"
            ),
        });
    }
    Ok(SweepRow {
        settings: rec.iter().take(k).map(str::to_string).collect(),
        point: point.to_string(),
        peers: get!(1),
        p2p: get!(2),
        completed: get!(3),
        p50_s: opt!(4),
        p90_s: opt!(5),
        p99_s: opt!(6),
        max_s: opt!(7),
        bound_s: get!(8),
        ratio_to_bound: opt!(9),
        hub_bytes_up: get!(10),
        hub_copies: get!(11),
        peer_bytes_up: get!(12),
        events: get!(13),
        wall_s: get!(14),
    })
}

/// Whether `name` is one plain folder name (not empty, `.`, `..`, a path or
/// absolute), so that joining it to the sweep folder stays inside it.
fn is_folder_name(name: &str) -> bool {
    let mut parts = Path::new(name).components();
    matches!(parts.next(), Some(std::path::Component::Normal(_)))
        && parts.next().is_none()
        && !name.contains(['/', '\\'])
}

/// Load a sweep folder (`sweep.csv`; point folders are read only for the
/// first point's `scenario.toml`).
pub fn load_sweep(dir: &Path) -> Result<Sweep, LoadError> {
    let path = dir.join("sweep.csv");
    let text = read(&path)?;
    let mut r = csv::Reader::from_reader(text.as_bytes());
    let found = header(&path, &mut r)?;
    let k = found.iter().position(|c| c == "point").unwrap_or(0);
    check_header(&path, &found[k..], &SWEEP_COLUMNS).map_err(|_| LoadError::Header {
        path: path.clone(),
        expected: ["KEY..."]
            .iter()
            .chain(SWEEP_COLUMNS.iter())
            .map(|s| s.to_string())
            .collect(),
        found: found.clone(),
    })?;
    let mut rows = Vec::new();
    for rec in r.records() {
        let rec = rec.map_err(|e| csv_error(&path, &e))?;
        let line = rec.position().map_or(0, |p| p.line());
        rows.push(sweep_row(&path, &rec, k, line)?);
    }
    if rows.is_empty() {
        return Err(LoadError::Empty {
            path,
            problem: "no points after the header".into(),
        });
    }
    let base_scenario_toml = read_optional(&dir.join(&rows[0].point).join("scenario.toml"))?;
    Ok(Sweep {
        dir: dir.to_path_buf(),
        keys: found[..k].to_vec(),
        rows,
        base_scenario_toml,
    })
}

/// What a folder holds.
#[derive(Clone, Debug)]
pub enum Input {
    /// A run folder.
    Run(Box<Run>),
    /// A sweep folder.
    Sweep(Sweep),
}

/// Load a run or sweep folder: `sweep.csv` makes it a sweep, otherwise a run.
pub fn load(dir: &Path) -> Result<Input, LoadError> {
    if dir.join("sweep.csv").exists() {
        load_sweep(dir).map(Input::Sweep)
    } else {
        load_run(dir).map(|r| Input::Run(Box::new(r)))
    }
}
