//! swarmhub-reports: turns run outputs (the simulator's `peers.csv`,
//! `timeline.csv`, `summary.json`, `sweep.csv`, and real runs in the same
//! schema) into charts (PNG and SVG) and a self-contained `report.html`.
//!
//! [`write_report`] loads a run or sweep folder, draws every chart into a
//! temporary folder inside it, and only when everything succeeded renames
//! `report.html` and `charts/` into place, so a failed report never replaces
//! a good one. [`write_report_with_points`] also writes each sweep point's
//! report, which the sweep report then links to.

pub mod charts;
pub mod html;
pub mod load;
mod swap;

use std::path::{Path, PathBuf};

pub use load::{load, Input, LoadError, Run, Sweep};

/// Why a report could not be written.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ReportError {
    /// An input file is missing or malformed.
    #[error(transparent)]
    Load(#[from] LoadError),
    /// A chart could not be drawn.
    #[error("{path}: cannot draw chart: {message}")]
    Draw {
        /// Chart file being written.
        path: PathBuf,
        /// What went wrong.
        message: String,
    },
    /// A file or folder could not be written.
    #[error("{path}: cannot write: {source}")]
    Io {
        /// File or folder.
        path: PathBuf,
        /// Cause.
        source: std::io::Error,
    },
}

/// What [`write_report`] produced.
#[derive(Clone, Debug)]
pub struct Report {
    /// `DIR/report.html`.
    pub html: PathBuf,
    /// Chart files (`DIR/charts/*.png` and `*.svg`).
    pub charts: Vec<PathBuf>,
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> ReportError + '_ {
    move |source| ReportError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// What [`write_report_with_points`] produced.
#[derive(Clone, Debug)]
pub struct Reports {
    /// The folder's own report (a run's, or the sweep's).
    pub folder: Report,
    /// Each point's report, in `sweep.csv` order (empty for a run folder).
    pub points: Vec<Report>,
}

/// Load `dir` (run or sweep folder, detected by `sweep.csv`) and write
/// `dir/report.html` plus `dir/charts/`. A sweep report links each point to
/// its `point-NNN/report.html` where one exists (see
/// [`write_report_with_points`]), else to its folder.
///
/// Temporary folders that an earlier, crashed writer left in `dir` are
/// removed first (see the `swap` module); nothing else is touched.
pub fn write_report(dir: &Path) -> Result<Report, ReportError> {
    write_report_faulty(dir, &|_| Ok(()))
}

/// Like [`write_report`], and for a sweep folder first write every point's
/// report (`point-NNN/report.html` and `point-NNN/charts/`), so that the
/// sweep report links to them.
pub fn write_report_with_points(dir: &Path) -> Result<Reports, ReportError> {
    let input = load(dir)?;
    let mut points = Vec::new();
    if let Input::Sweep(sweep) = &input {
        for row in &sweep.rows {
            // The loader accepts only plain folder names for points.
            points.push(write_report(&dir.join(&row.point))?);
        }
    }
    let folder = write_loaded(dir, &input, &|_| Ok(()))?;
    Ok(Reports { folder, points })
}

fn write_report_faulty(dir: &Path, fault: swap::Fault<'_>) -> Result<Report, ReportError> {
    let input = load(dir)?;
    write_loaded(dir, &input, fault)
}

fn write_loaded(dir: &Path, input: &Input, fault: swap::Fault<'_>) -> Result<Report, ReportError> {
    swap::remove_stale(dir);
    let scratch = swap::Scratch::new(dir);
    let names = render_into(input, &scratch.tmp, fault)?;
    swap::install(dir, &scratch, fault)?;
    let charts_dir = dir.join("charts");
    Ok(Report {
        html: dir.join("report.html"),
        charts: names.iter().map(|n| charts_dir.join(n)).collect(),
    })
}

/// Draw every chart and the HTML into `tmp` (created afresh); returns chart file names.
fn render_into(
    input: &Input,
    tmp: &Path,
    fault: swap::Fault<'_>,
) -> Result<Vec<String>, ReportError> {
    if tmp.exists() {
        std::fs::remove_dir_all(tmp).map_err(io(tmp))?;
    }
    let charts_dir = tmp.join("charts");
    std::fs::create_dir_all(&charts_dir).map_err(io(&charts_dir))?;
    let source = match input {
        Input::Run(r) => charts::Source::Run(r),
        Input::Sweep(s) => charts::Source::Sweep(s),
    };
    let mut svgs = Vec::new();
    let mut names = Vec::new();
    for &kind in charts::kinds(source) {
        let stem = kind.file_stem();
        let png = charts_dir.join(format!("{stem}.png"));
        let svg = charts::render(kind, source, &png).map_err(|e| ReportError::Draw {
            path: png.clone(),
            message: e.to_string(),
        })?;
        let svg_path = charts_dir.join(format!("{stem}.svg"));
        fault(swap::Step::WriteChart)
            .and_then(|()| std::fs::write(&svg_path, &svg))
            .map_err(io(&svg_path))?;
        names.push(format!("{stem}.png"));
        names.push(format!("{stem}.svg"));
        svgs.push((stem, svg));
    }
    let embedded: Vec<html::Embedded<'_>> = svgs
        .iter()
        .map(|(stem, svg)| html::Embedded { stem, svg })
        .collect();
    let page = match input {
        Input::Run(r) => html::run_report(r, &embedded),
        Input::Sweep(s) => html::sweep_report(s, &embedded),
    };
    let path = tmp.join("report.html");
    fault(swap::Step::WriteHtml)
        .and_then(|()| std::fs::write(&path, page))
        .map_err(io(&path))?;
    Ok(names)
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;

    /// A copy of the run fixture in `tmp/run`.
    fn run_folder(tmp: &Path) -> PathBuf {
        let fixture = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/run");
        let dir = tmp.join("run");
        std::fs::create_dir_all(&dir).unwrap();
        for f in ["peers.csv", "timeline.csv", "summary.json"] {
            std::fs::copy(fixture.join(f), dir.join(f)).unwrap();
        }
        dir
    }

    fn rename_scenario(dir: &Path, name: &str) {
        let path = dir.join("summary.json");
        let text = std::fs::read_to_string(&path).unwrap();
        let text = text.replace(
            "\"scenario\": \"small\"",
            &format!("\"scenario\": \"{name}\""),
        );
        std::fs::write(&path, text).unwrap();
    }

    /// Every entry under `dir` (folders as empty content) with its bytes.
    fn snapshot(dir: &Path) -> BTreeMap<PathBuf, Vec<u8>> {
        let mut out = BTreeMap::new();
        let mut todo = vec![dir.to_path_buf()];
        while let Some(d) = todo.pop() {
            for e in std::fs::read_dir(&d).unwrap() {
                let p = e.unwrap().path();
                let rel = p.strip_prefix(dir).unwrap().to_path_buf();
                if p.is_dir() {
                    todo.push(p);
                    out.insert(rel, Vec::new());
                } else {
                    out.insert(rel, std::fs::read(&p).unwrap());
                }
            }
        }
        out
    }

    /// Entries that differ between two snapshots (added, removed or changed).
    fn changed(a: &BTreeMap<PathBuf, Vec<u8>>, b: &BTreeMap<PathBuf, Vec<u8>>) -> Vec<PathBuf> {
        a.keys()
            .chain(b.keys())
            .filter(|k| a.get(*k) != b.get(*k))
            .cloned()
            .collect::<std::collections::BTreeSet<_>>()
            .into_iter()
            .collect()
    }

    fn fail_at(step: swap::Step) -> impl Fn(swap::Step) -> std::io::Result<()> {
        move |s| {
            if s == step {
                Err(std::io::Error::other(format!("injected at {s:?}")))
            } else {
                Ok(())
            }
        }
    }

    #[test]
    fn a_failure_at_any_step_leaves_the_previous_report() {
        for step in swap::Step::ALL {
            let tmp = tempfile::tempdir().unwrap();
            let dir = run_folder(tmp.path());
            write_report(&dir).unwrap();
            rename_scenario(&dir, "renamed");
            let before = snapshot(&dir);
            let html = std::fs::read_to_string(dir.join("report.html")).unwrap();
            assert!(html.contains("run report: small"));

            let err = write_report_faulty(&dir, &fail_at(step)).unwrap_err();
            assert!(err.to_string().contains("injected"), "{step:?}: {err}");
            // Same files, same bytes, and no temporary folders left.
            assert_eq!(
                changed(&snapshot(&dir), &before),
                [] as [PathBuf; 0],
                "{step:?}"
            );

            // The next write goes through.
            write_report(&dir).unwrap();
            let html = std::fs::read_to_string(dir.join("report.html")).unwrap();
            assert!(html.contains("run report: renamed"), "{step:?}");
        }
    }

    #[test]
    fn a_failed_first_report_leaves_nothing_behind() {
        for step in swap::Step::ALL {
            let tmp = tempfile::tempdir().unwrap();
            let dir = run_folder(tmp.path());
            let before = snapshot(&dir);
            // No charts to move aside on a first run: that step never comes.
            let result = write_report_faulty(&dir, &fail_at(step));
            if step == swap::Step::SetChartsAside {
                result.unwrap();
                continue;
            }
            result.unwrap_err();
            assert_eq!(
                changed(&snapshot(&dir), &before),
                [] as [PathBuf; 0],
                "{step:?}"
            );
        }
    }
}
