//! Putting a finished report in place without ever leaving a half-written
//! one, and clearing temporary folders that crashed writers left behind.
//!
//! Each [`write_report`](crate::write_report) call draws into its own
//! `DIR/.report-tmp-PID-SEQ/` (PID of the process, SEQ a counter within it),
//! then moves the old `charts/` aside to `DIR/.report-old-PID-SEQ/`, moves
//! the new `charts/` and `report.html` in, and deletes the old charts. If a
//! move fails, the earlier moves are undone, so `report.html` and `charts/`
//! are the previous good report again.
//!
//! A writer that was killed leaves its folders behind. The next writer in
//! the same folder removes those of the two names above (and `.report-tmp-PID`
//! / `.report-old-PID`, the names earlier versions used) that no live writer
//! owns: see [`is_stale`]. Nothing else in the folder is touched.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::{Duration, SystemTime};

use crate::ReportError;

const TMP_PREFIX: &str = ".report-tmp-";
const OLD_PREFIX: &str = ".report-old-";
/// A writer's folder this old is stale even if its PID is alive (the PID was
/// reused): drawing one report takes seconds.
const MAX_AGE: Duration = Duration::from_secs(60 * 60);

/// Names of this process's folders that a writer is using right now.
static IN_FLIGHT: Mutex<BTreeSet<String>> = Mutex::new(BTreeSet::new());
static SEQ: AtomicU64 = AtomicU64::new(0);

/// The point at which an injected fault (tests only) makes a write fail.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Step {
    /// Writing one chart file into the temporary folder.
    WriteChart,
    /// Writing `report.html` into the temporary folder.
    WriteHtml,
    /// Moving the current `charts/` aside.
    SetChartsAside,
    /// Moving the new `charts/` into place.
    InstallCharts,
    /// Moving the new `report.html` into place.
    InstallHtml,
}

impl Step {
    #[cfg(test)]
    pub(crate) const ALL: [Step; 5] = [
        Step::WriteChart,
        Step::WriteHtml,
        Step::SetChartsAside,
        Step::InstallCharts,
        Step::InstallHtml,
    ];
}

/// Called before each step; an `Err` is treated as that step failing.
pub(crate) type Fault<'a> = &'a dyn Fn(Step) -> std::io::Result<()>;

/// One writer's temporary folders; dropping it deletes the temporary folder
/// and releases the names.
pub(crate) struct Scratch {
    /// `DIR/.report-tmp-PID-SEQ`: the new report is drawn here.
    pub(crate) tmp: PathBuf,
    /// `DIR/.report-old-PID-SEQ`: the previous `charts/` while it is swapped out.
    old: PathBuf,
    names: [String; 2],
}

impl Scratch {
    pub(crate) fn new(dir: &Path) -> Scratch {
        let id = format!(
            "{}-{}",
            std::process::id(),
            SEQ.fetch_add(1, Ordering::Relaxed)
        );
        let names = [format!("{TMP_PREFIX}{id}"), format!("{OLD_PREFIX}{id}")];
        lock_in_flight().extend(names.iter().cloned());
        Scratch {
            tmp: dir.join(&names[0]),
            old: dir.join(&names[1]),
            names,
        }
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        // `old` is not removed here: after a failed undo it holds the
        // previous charts (the error names it).
        let _ = std::fs::remove_dir_all(&self.tmp);
        let mut in_flight = lock_in_flight();
        for n in &self.names {
            in_flight.remove(n);
        }
    }
}

fn lock_in_flight() -> std::sync::MutexGuard<'static, BTreeSet<String>> {
    // The set stays consistent even if a holder panicked.
    IN_FLIGHT.lock().unwrap_or_else(|e| e.into_inner())
}

fn io(path: &Path, source: std::io::Error) -> ReportError {
    ReportError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// Rename with an injected fault first.
fn rename(fault: Fault<'_>, step: Step, from: &Path, to: &Path) -> std::io::Result<()> {
    fault(step)?;
    std::fs::rename(from, to)
}

/// Move `scratch.tmp/charts` and `scratch.tmp/report.html` into `dir`,
/// replacing the previous report; on failure put the previous one back.
pub(crate) fn install(dir: &Path, scratch: &Scratch, fault: Fault<'_>) -> Result<(), ReportError> {
    let charts = dir.join("charts");
    let html = dir.join("report.html");
    let had_charts = std::fs::symlink_metadata(&charts).is_ok();
    if had_charts {
        rename(fault, Step::SetChartsAside, &charts, &scratch.old).map_err(|e| io(&charts, e))?;
    }
    let undo = |err: ReportError| -> ReportError {
        if had_charts {
            if let Err(e) = std::fs::rename(&scratch.old, &charts) {
                return io(&scratch.old, e);
            }
        }
        err
    };
    if let Err(e) = rename(
        fault,
        Step::InstallCharts,
        &scratch.tmp.join("charts"),
        &charts,
    ) {
        return Err(undo(io(&charts, e)));
    }
    if let Err(e) = rename(
        fault,
        Step::InstallHtml,
        &scratch.tmp.join("report.html"),
        &html,
    ) {
        // Take the new charts out again before the old ones go back.
        if let Err(e) = std::fs::rename(&charts, scratch.tmp.join("charts")) {
            return Err(io(&charts, e));
        }
        return Err(undo(io(&html, e)));
    }
    let _ = std::fs::remove_dir_all(&scratch.old);
    Ok(())
}

/// The PID in a writer's folder name, if `name` is one.
fn writer_pid(name: &str) -> Option<u32> {
    let rest = name
        .strip_prefix(TMP_PREFIX)
        .or_else(|| name.strip_prefix(OLD_PREFIX))?;
    let (pid, seq) = rest.split_once('-').unwrap_or((rest, "0"));
    let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    if !digits(pid) || !digits(seq) {
        return None;
    }
    pid.parse().ok()
}

/// Whether process `pid` is running: `None` where that cannot be told
/// (no `/proc`).
fn process_alive(pid: u32) -> Option<bool> {
    let proc = Path::new("/proc");
    if cfg!(target_os = "linux") && proc.join("self").exists() {
        Some(proc.join(pid.to_string()).exists())
    } else {
        None
    }
}

/// Whether a writer's folder is left over. A folder of this process is stale
/// unless a writer here is using it (a folder with this PID that is not in
/// use was left by an earlier process with the same PID, as happens in
/// containers); another PID's folder is stale when that process is gone, or
/// when it is older than an hour (the PID was reused). When liveness cannot
/// be told, only the age counts.
fn is_stale(
    pid: u32,
    own_pid: u32,
    in_use: bool,
    alive: Option<bool>,
    age: Option<Duration>,
) -> bool {
    if in_use {
        return false;
    }
    if pid == own_pid {
        return true;
    }
    alive == Some(false) || age.is_some_and(|a| a > MAX_AGE)
}

/// Remove stale writer folders in `dir`; returns the ones removed. Entries
/// that are not folders, or whose names are not a writer's, are left alone.
/// Best effort: a folder that cannot be removed is skipped.
pub(crate) fn remove_stale(dir: &Path) -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let own_pid = std::process::id();
    let mut removed = Vec::new();
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(name) = name.to_str() else { continue };
        let Some(pid) = writer_pid(name) else {
            continue;
        };
        // DirEntry::metadata does not follow symlinks: a link is not ours.
        let Ok(meta) = entry.metadata() else { continue };
        if !meta.is_dir() {
            continue;
        }
        let age = meta
            .modified()
            .ok()
            .and_then(|m| SystemTime::now().duration_since(m).ok());
        let in_use = lock_in_flight().contains(name);
        if is_stale(pid, own_pid, in_use, process_alive(pid), age)
            && std::fs::remove_dir_all(entry.path()).is_ok()
        {
            removed.push(entry.path());
        }
    }
    removed.sort();
    removed
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_writer_names_are_recognised() {
        assert_eq!(writer_pid(".report-tmp-123-4"), Some(123));
        assert_eq!(writer_pid(".report-old-123-4"), Some(123));
        assert_eq!(writer_pid(".report-tmp-77"), Some(77));
        for other in [
            ".report-tmp-",
            ".report-tmp-12a",
            ".report-tmp-12-",
            ".report-tmp-12-3-4",
            ".report-tmp--3",
            ".report-tmpx-12",
            "report-tmp-12",
            ".report-new-12",
            ".report-tmp-99999999999",
            "charts",
        ] {
            assert_eq!(writer_pid(other), None, "{other}");
        }
    }

    #[test]
    fn staleness_follows_owner_liveness_and_age() {
        let young = Some(Duration::from_secs(5));
        let old = Some(MAX_AGE + Duration::from_secs(1));
        // In use by a writer of this process: never stale.
        assert!(!is_stale(10, 10, true, Some(true), old));
        // This PID but not in use: an earlier process with the same PID.
        assert!(is_stale(10, 10, false, Some(true), young));
        // Another process: stale when it is gone or the folder is old.
        assert!(is_stale(11, 10, false, Some(false), young));
        assert!(!is_stale(11, 10, false, Some(true), young));
        assert!(is_stale(11, 10, false, Some(true), old));
        assert!(!is_stale(11, 10, false, None, young));
        assert!(is_stale(11, 10, false, None, old));
        assert!(!is_stale(11, 10, false, None, None));
    }
}
