//! swarmhub-reports: turns run outputs (the simulator's `peers.csv`,
//! `timeline.csv`, `summary.json`, `sweep.csv`, and real runs in the same
//! schema) into charts (PNG and SVG) and a self-contained `report.html`.
//!
//! [`write_report`] loads a run or sweep folder, draws every chart into a
//! temporary folder inside it, and only when everything succeeded renames
//! `report.html` and `charts/` into place, so a failed report never replaces
//! a good one.

pub mod charts;
pub mod html;
pub mod load;

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

/// Load `dir` (run or sweep folder, detected by `sweep.csv`) and write
/// `dir/report.html` plus `dir/charts/`.
pub fn write_report(dir: &Path) -> Result<Report, ReportError> {
    let input = load(dir)?;
    let tmp = dir.join(format!(".report-tmp-{}", std::process::id()));
    let result = render_into(&input, &tmp);
    let names = match result {
        Ok(names) => names,
        Err(e) => {
            let _ = std::fs::remove_dir_all(&tmp);
            return Err(e);
        }
    };
    let html = dir.join("report.html");
    let charts_dir = dir.join("charts");
    let old = dir.join(format!(".report-old-{}", std::process::id()));
    if charts_dir.exists() {
        std::fs::rename(&charts_dir, &old).map_err(io(&charts_dir))?;
    }
    std::fs::rename(tmp.join("charts"), &charts_dir).map_err(io(&charts_dir))?;
    std::fs::rename(tmp.join("report.html"), &html).map_err(io(&html))?;
    let _ = std::fs::remove_dir_all(&old);
    let _ = std::fs::remove_dir_all(&tmp);
    Ok(Report {
        html,
        charts: names.iter().map(|n| charts_dir.join(n)).collect(),
    })
}

/// Draw every chart and the HTML into `tmp` (created afresh); returns chart file names.
fn render_into(input: &Input, tmp: &Path) -> Result<Vec<String>, ReportError> {
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
        std::fs::write(&svg_path, &svg).map_err(io(&svg_path))?;
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
    std::fs::write(&path, page).map_err(io(&path))?;
    Ok(names)
}
