//! CPU saturation check: `/proc/stat` samples, so that a CPU-bound run is
//! never mistaken for a network result.

/// Busy fraction above which a run is reported as CPU bound.
pub const SATURATED: f64 = 0.85;

/// Cumulative CPU time of the whole machine, in clock ticks.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CpuTimes {
    /// All ticks (user, nice, system, idle, iowait, irq, softirq, steal).
    pub total: u64,
    /// Idle and iowait ticks.
    pub idle: u64,
}

impl CpuTimes {
    /// Parse the aggregate `cpu` line of `/proc/stat` text.
    pub fn parse(proc_stat: &str) -> Option<CpuTimes> {
        let line = proc_stat.lines().find(|l| l.starts_with("cpu "))?;
        let v: Vec<u64> = line
            .split_whitespace()
            .skip(1)
            .map(str::parse)
            .collect::<Result<_, _>>()
            .ok()?;
        if v.len() < 4 {
            return None;
        }
        // guest and guest_nice (fields 9 and 10) are already counted in user and nice.
        let total = v.iter().take(8).sum();
        let idle = v[3] + v.get(4).copied().unwrap_or(0);
        Some(CpuTimes { total, idle })
    }

    /// Read `/proc/stat` now.
    pub fn read() -> Option<CpuTimes> {
        CpuTimes::parse(&std::fs::read_to_string("/proc/stat").ok()?)
    }

    /// Busy fraction (0..=1) of all CPUs between `earlier` and `self`.
    pub fn busy_since(&self, earlier: &CpuTimes) -> Option<f64> {
        let total = self.total.checked_sub(earlier.total)?;
        let idle = self.idle.checked_sub(earlier.idle)?;
        (total > 0).then(|| 1.0 - idle.min(total) as f64 / total as f64)
    }
}

/// User plus system clock ticks of a process, from `/proc/PID/stat` text.
pub fn parse_proc_ticks(stat: &str) -> Option<u64> {
    // The command name (field 2) is in parentheses and may hold spaces.
    let after = &stat[stat.rfind(')')? + 1..];
    let f: Vec<&str> = after.split_whitespace().collect();
    // After the name: state is field 3, utime field 14, stime field 15.
    Some(f.get(11)?.parse::<u64>().ok()? + f.get(12)?.parse::<u64>().ok()?)
}

/// CPU ticks process `pid` has used so far.
pub fn proc_ticks(pid: u32) -> Option<u64> {
    parse_proc_ticks(&std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?)
}

/// Clock ticks per second (`USER_HZ`).
pub fn ticks_per_s() -> u64 {
    rustix::param::clock_ticks_per_second()
}

/// Mean and peak busy fraction over a series of per-interval samples.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct CpuStats {
    /// Busy fraction over the whole window.
    pub mean: f64,
    /// Highest 5-sample moving average (about 5 s).
    pub peak: f64,
}

/// Mean of all samples and the highest moving average over `window` samples.
pub fn cpu_stats(samples: &[f64], window: usize) -> CpuStats {
    if samples.is_empty() {
        return CpuStats::default();
    }
    let mean = samples.iter().sum::<f64>() / samples.len() as f64;
    let w = window.clamp(1, samples.len());
    let peak = samples
        .windows(w)
        .map(|s| s.iter().sum::<f64>() / w as f64)
        .fold(0.0, f64::max);
    CpuStats { mean, peak }
}

#[cfg(test)]
mod tests {
    use super::*;

    const STAT: &str = "cpu  100 10 50 800 40 0 0 0 5 0\ncpu0 50 5 25 400 20 0 0 0 0 0\nintr 1 2\n";

    #[test]
    fn aggregate_line_is_parsed_without_guest_time() {
        let t = CpuTimes::parse(STAT).expect("parse");
        assert_eq!(t.total, 1000);
        assert_eq!(t.idle, 840);
        assert_eq!(
            CpuTimes::parse("cpu0 1 2 3 4\n"),
            None,
            "per-cpu lines are not the aggregate"
        );
        assert_eq!(CpuTimes::parse("cpu  1 x 3 4\n"), None);
    }

    #[test]
    fn busy_fraction_is_the_non_idle_share_of_the_interval() {
        let a = CpuTimes {
            total: 1000,
            idle: 840,
        };
        let b = CpuTimes {
            total: 1200,
            idle: 890,
        };
        let busy = b.busy_since(&a).expect("busy");
        assert!((busy - 0.75).abs() < 1e-12, "{busy}");
        assert_eq!(a.busy_since(&a), None, "no time passed");
        assert_eq!(a.busy_since(&b), None, "counters went backwards");
    }

    #[test]
    fn peak_is_a_moving_average() {
        let s = [0.2, 0.2, 1.0, 1.0, 0.2];
        let st = cpu_stats(&s, 2);
        assert!((st.mean - 0.52).abs() < 1e-12);
        assert!((st.peak - 1.0).abs() < 1e-12);
        assert_eq!(cpu_stats(&[], 5), CpuStats::default());
        assert!((cpu_stats(&[0.5], 5).peak - 0.5).abs() < 1e-12);
    }

    #[test]
    fn process_ticks_skip_a_command_name_with_spaces() {
        let stat = "4242 (swarm hub) S 1 4242 4242 0 -1 4194304 100 0 0 0 250 40 0 0 20 0 9 0";
        assert_eq!(parse_proc_ticks(stat), Some(290));
        assert_eq!(parse_proc_ticks("4242 (x) S 1"), None);
        assert!(proc_ticks(std::process::id()).is_some());
    }

    #[test]
    fn this_machine_has_a_readable_proc_stat() {
        let t = CpuTimes::read().expect("/proc/stat");
        assert!(t.total >= t.idle);
    }
}
