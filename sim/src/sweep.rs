//! Sweeps: run a scenario over a grid of overridden keys, in parallel across
//! cores, and collect one summary row per point in `sweep.csv`.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;

use crate::scenario::{Scenario, ScenarioError};

/// One `--vary KEY=V1,V2,...` axis.
#[derive(Clone, Debug, PartialEq)]
pub struct Axis {
    /// Dotted key, e.g. `hub.upload`, `protocol.p2p`, `group.0.count`.
    pub key: String,
    /// Values as written (TOML values; bare words are strings).
    pub values: Vec<String>,
}

impl std::str::FromStr for Axis {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let (key, values) = s.split_once('=').ok_or_else(|| {
            format!("--vary {s:?}: expected KEY=V1,V2,... (e.g. group.0.count=10,100)")
        })?;
        let values: Vec<String> = values
            .split(',')
            .map(|v| v.trim().to_string())
            .filter(|v| !v.is_empty())
            .collect();
        if key.trim().is_empty() || values.is_empty() {
            return Err(format!("--vary {s:?}: needs a key and at least one value"));
        }
        Ok(Axis {
            key: key.trim().to_string(),
            values,
        })
    }
}

/// Set `key` (dotted; numeric parts index arrays) in a TOML document,
/// creating missing tables (`protocol.p2p` works on a file without `[protocol]`).
pub fn set_key(doc: &mut toml::Table, key: &str, raw: &str) -> Result<(), String> {
    let value: toml::Value = match toml::from_str::<toml::Table>(&format!("v = {raw}")) {
        Ok(mut t) => t.remove("v").expect("just parsed"),
        Err(_) => toml::Value::String(raw.to_string()),
    };
    let parts: Vec<&str> = key.split('.').collect();
    if parts.iter().any(|p| p.is_empty()) {
        return Err(format!("--vary {key}: empty key part"));
    }
    let (last, path) = parts.split_last().expect("split gives at least one part");
    let mut cur = doc;
    let mut i = 0;
    while i < path.len() {
        let part = path[i];
        let entry = cur
            .entry(part.to_string())
            .or_insert_with(|| toml::Value::Table(toml::Table::new()));
        cur = match entry {
            toml::Value::Table(t) => t,
            toml::Value::Array(a) => {
                i += 1;
                let idx_text = path.get(i).copied().unwrap_or(last);
                let idx: usize = idx_text.parse().map_err(|_| {
                    format!("--vary {key}: `{part}` is an array; follow it with an index")
                })?;
                let len = a.len();
                let slot = a.get_mut(idx).ok_or_else(|| {
                    format!("--vary {key}: index {idx} out of range (`{part}` has {len})")
                })?;
                if i >= path.len() {
                    *slot = value;
                    return Ok(());
                }
                match slot {
                    toml::Value::Table(t) => t,
                    _ => return Err(format!("--vary {key}: `{part}.{idx}` is not a table")),
                }
            }
            _ => return Err(format!("--vary {key}: `{part}` is a value, not a table")),
        };
        i += 1;
    }
    cur.insert(last.to_string(), value);
    Ok(())
}

/// One point of the grid.
#[derive(Clone, Debug)]
pub struct Point {
    /// (key, value) per axis.
    pub settings: Vec<(String, String)>,
    /// Scenario text with the overrides applied.
    pub text: String,
}

/// Expand the grid: every combination of the axes' values.
pub fn grid(base: &str, path: &Path, axes: &[Axis]) -> Result<Vec<Point>, ScenarioError> {
    let mut points = vec![Vec::<(String, String)>::new()];
    for axis in axes {
        points = points
            .into_iter()
            .flat_map(|p| {
                axis.values.iter().map(move |v| {
                    let mut q = p.clone();
                    q.push((axis.key.clone(), v.clone()));
                    q
                })
            })
            .collect();
    }
    let mut out = Vec::new();
    for settings in points {
        let mut doc: toml::Table = toml::from_str(base).map_err(|e| ScenarioError::Parse {
            path: path.to_path_buf(),
            message: Scenario::toml_message(base, &e),
        })?;
        for (k, v) in &settings {
            set_key(&mut doc, k, v).map_err(|problem| ScenarioError::Invalid {
                path: path.to_path_buf(),
                line: Scenario::line_of(base, k),
                key: k.clone(),
                problem,
            })?;
        }
        let text = toml::to_string(&doc).map_err(|e| ScenarioError::Parse {
            path: path.to_path_buf(),
            message: e.to_string(),
        })?;
        let note = settings
            .iter()
            .map(|(k, v)| format!("--vary {k}={v}"))
            .collect::<Vec<_>>()
            .join(", ");
        Scenario::parse_derived(&text, base, path, &format!("with {note}"))?;
        out.push(Point { settings, text });
    }
    Ok(out)
}

/// Run every point with `threads` workers; point `i` writes into `out/point-i`.
/// Returns the summaries in point order.
pub fn run_grid(
    points: &[Point],
    path: &Path,
    seed: Option<u64>,
    out: &Path,
    threads: usize,
    on_done: &(dyn Fn(usize) + Sync),
) -> anyhow::Result<Vec<crate::Summary>> {
    let next = AtomicUsize::new(0);
    let results: Mutex<Vec<Option<anyhow::Result<crate::Summary>>>> =
        Mutex::new((0..points.len()).map(|_| None).collect());
    std::thread::scope(|s| {
        for _ in 0..threads.max(1).min(points.len().max(1)) {
            s.spawn(|| loop {
                let i = next.fetch_add(1, Ordering::SeqCst);
                if i >= points.len() {
                    return;
                }
                let r = run_point(&points[i], i, path, seed, out);
                results.lock().expect("no panics hold this lock")[i] = Some(r);
                on_done(i);
            });
        }
    });
    results
        .into_inner()
        .expect("threads joined")
        .into_iter()
        .map(|r| r.expect("every point ran"))
        .collect()
}

fn run_point(
    p: &Point,
    i: usize,
    path: &Path,
    seed: Option<u64>,
    out: &Path,
) -> anyhow::Result<crate::Summary> {
    let scenario = Scenario::parse(&p.text, path)?;
    let seed = seed.unwrap_or(scenario.seed);
    let hash = Scenario::hash_text(&p.text);
    let dir: PathBuf = out.join(format!("point-{i:03}"));
    std::fs::create_dir_all(&dir)?;
    std::fs::write(dir.join("scenario.toml"), &p.text)?;
    let vary: Vec<String> = p
        .settings
        .iter()
        .map(|(k, v)| format!("--vary {k}={v}"))
        .collect();
    let command = format!(
        "swarmhub-sim sweep {} {} --seed {seed}",
        path.display(),
        vary.join(" ")
    );
    let (sim, summary) = crate::run_scenario(scenario, &hash, seed, false, &command, |_, _, _| {});
    crate::output::write(&sim, &summary, &dir)?;
    Ok(summary)
}

/// Write `sweep.csv`: the axes' values then the summary figures, one row per point.
pub fn write_csv(points: &[Point], summaries: &[crate::Summary], out: &Path) -> anyhow::Result<()> {
    let mut w = csv::Writer::from_path(out.join("sweep.csv"))?;
    let mut header: Vec<String> = points
        .first()
        .map(|p| p.settings.iter().map(|(k, _)| k.clone()).collect())
        .unwrap_or_default();
    header.extend(
        [
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
        ]
        .map(String::from),
    );
    w.write_record(&header)?;
    let f = |x: Option<f64>| x.map(|v| format!("{v:.3}")).unwrap_or_default();
    for (i, (p, s)) in points.iter().zip(summaries).enumerate() {
        let mut row: Vec<String> = p.settings.iter().map(|(_, v)| v.clone()).collect();
        row.extend([
            format!("point-{i:03}"),
            s.peers.to_string(),
            s.p2p.to_string(),
            s.completed.to_string(),
            f(s.completion_s.p50),
            f(s.completion_s.p90),
            f(s.completion_s.p99),
            f(s.completion_s.max),
            format!("{:.3}", s.bound_s),
            f(s.ratio_to_bound),
            s.hub_bytes_up.to_string(),
            format!("{:.3}", s.hub_copies),
            s.peer_bytes_up.to_string(),
            s.events.to_string(),
            format!("{:.3}", s.wall_s),
        ]);
        w.write_record(&row)?;
    }
    w.flush()?;
    Ok(())
}
