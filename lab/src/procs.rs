//! The processes the lab starts: each in its own process group (so a Ctrl-C
//! at the terminal reaches the lab, which then stops them in order), logged to
//! a file, and always stopped by pid: SIGTERM, a grace period, then SIGKILL.

use std::fs::File;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use rustix::process::{kill_process, Pid, Signal};

/// Send SIGTERM (or SIGKILL when `hard`) to `pid`; a process already gone is fine.
pub fn kill_pid(pid: i32, hard: bool) {
    if let Some(pid) = Pid::from_raw(pid) {
        let sig = if hard { Signal::KILL } else { Signal::TERM };
        let _ = kill_process(pid, sig);
    }
}

/// One started process.
#[derive(Debug)]
pub struct Proc {
    /// What it is, for messages (`hub`, `client 3`).
    pub name: String,
    /// The child.
    pub child: Child,
}

impl Proc {
    /// Still running?
    pub fn alive(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    /// SIGTERM, wait up to `grace`, then SIGKILL; reaps the child.
    pub fn stop(&mut self, grace: Duration) {
        if !self.alive() {
            return;
        }
        kill_pid(self.child.id() as i32, false);
        let start = Instant::now();
        while start.elapsed() < grace {
            if !self.alive() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Start `cmd` with stdin closed, stderr (and stdout unless `pipe_stdout`)
/// appended to `log`, in a process group of its own.
pub fn spawn(name: &str, mut cmd: Command, log: &Path, pipe_stdout: bool) -> std::io::Result<Proc> {
    use std::os::unix::process::CommandExt;
    let file = File::options().create(true).append(true).open(log)?;
    let stdout = if pipe_stdout {
        Stdio::piped()
    } else {
        Stdio::from(file.try_clone()?)
    };
    let child = cmd
        .stdin(Stdio::null())
        .stdout(stdout)
        .stderr(Stdio::from(file))
        .process_group(0)
        .spawn()?;
    Ok(Proc {
        name: name.to_string(),
        child,
    })
}

/// Every process of a run, stopped together (and on drop).
#[derive(Debug, Default)]
pub struct Procs {
    list: Vec<Proc>,
}

impl Procs {
    /// Keep `p`; returns its index.
    pub fn add(&mut self, p: Proc) -> usize {
        self.list.push(p);
        self.list.len() - 1
    }

    /// The process at `index`.
    pub fn get_mut(&mut self, index: usize) -> &mut Proc {
        &mut self.list[index]
    }

    /// Process ids of the processes still running.
    pub fn pids(&mut self) -> Vec<u32> {
        self.list
            .iter_mut()
            .filter_map(|p| p.alive().then(|| p.child.id()))
            .collect()
    }

    /// Stop every process, newest first (clients before the hub): SIGTERM to
    /// all, a shared grace period, then SIGKILL to the rest.
    pub fn stop_all(&mut self, grace: Duration) {
        for p in self.list.iter_mut().rev() {
            if p.alive() {
                kill_pid(p.child.id() as i32, false);
            }
        }
        let start = Instant::now();
        while start.elapsed() < grace && self.list.iter_mut().any(Proc::alive) {
            std::thread::sleep(Duration::from_millis(20));
        }
        for p in self.list.iter_mut().rev() {
            if p.alive() {
                eprintln!(
                    "swarmhub-lab: {} did not stop on SIGTERM; killing it",
                    p.name
                );
                let _ = p.child.kill();
            }
            let _ = p.child.wait();
        }
        self.list.clear();
    }
}

impl Drop for Procs {
    fn drop(&mut self) {
        self.stop_all(Duration::from_secs(5));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stop_all_ends_every_child_and_logs_output() {
        let dir = tempfile::tempdir().expect("tempdir");
        let log = dir.path().join("log");
        let mut procs = Procs::default();
        let mut sh = Command::new("sh");
        sh.args(["-c", "echo started; exec sleep 30"]);
        let i = procs.add(spawn("sleeper", sh, &log, false).expect("spawn"));
        // A process that ignores SIGTERM must be killed after the grace period.
        let mut stubborn = Command::new("sh");
        stubborn.args(["-c", "trap '' TERM; while true; do sleep 0.05; done"]);
        procs.add(spawn("stubborn", stubborn, &log, false).expect("spawn"));
        std::thread::sleep(Duration::from_millis(200));
        assert!(procs.get_mut(i).alive());
        let start = Instant::now();
        procs.stop_all(Duration::from_millis(300));
        assert!(start.elapsed() < Duration::from_secs(5));
        assert!(procs.list.is_empty());
        let text = std::fs::read_to_string(&log).expect("log");
        assert!(text.contains("started"), "{text:?}");
    }
}
