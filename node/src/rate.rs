//! Bandwidth limits: a token bucket shared by every connection of a process.

use std::sync::Mutex;
use std::time::Duration;

use tokio::time::Instant;

/// A token bucket in bytes per second; 0 means unlimited. Callers take tokens
/// after (download) or before (upload) moving bytes and sleep off any debt, so
/// the long-run rate stays at the limit whatever the message sizes.
#[derive(Debug)]
pub struct RateLimiter {
    bps: u64,
    state: Mutex<(f64, Instant)>,
}

impl RateLimiter {
    /// A limiter of `bps` bytes per second (0: unlimited).
    pub fn new(bps: u64) -> Self {
        RateLimiter {
            bps,
            state: Mutex::new((0.0, Instant::now())),
        }
    }

    /// The limit, 0 for none.
    pub fn bps(&self) -> u64 {
        self.bps
    }

    /// Take `n` bytes' worth of tokens, sleeping while in debt.
    pub async fn acquire(&self, n: usize) {
        if self.bps == 0 {
            return;
        }
        let rate = self.bps as f64;
        let burst = (rate / 10.0).max(64.0 * 1024.0);
        let wait = {
            let Ok(mut s) = self.state.lock() else {
                return;
            };
            let now = Instant::now();
            let elapsed = now.saturating_duration_since(s.1).as_secs_f64();
            s.0 = (s.0 + elapsed * rate).min(burst) - n as f64;
            s.1 = now;
            if s.0 < 0.0 {
                Some(Duration::from_secs_f64(-s.0 / rate))
            } else {
                None
            }
        };
        if let Some(w) = wait {
            tokio::time::sleep(w).await;
        }
    }
}

/// The upload and download limits of a process.
#[derive(Debug)]
pub struct Limits {
    /// Upload limit (piece payloads sent).
    pub up: RateLimiter,
    /// Download limit (bytes read from peers and the web seed).
    pub down: RateLimiter,
}

impl Limits {
    /// Limits in bytes per second; 0 is unlimited.
    pub fn new(up_bps: u64, down_bps: u64) -> Self {
        Limits {
            up: RateLimiter::new(up_bps),
            down: RateLimiter::new(down_bps),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn long_run_rate_holds_the_limit() {
        let l = RateLimiter::new(1 << 20);
        let start = Instant::now();
        for _ in 0..64 {
            l.acquire(64 * 1024).await;
        }
        // 4 MiB at 1 MiB/s, with at most one burst of credit: >= 3.8 s.
        let took = start.elapsed().as_secs_f64();
        assert!(took > 3.8 && took < 4.5, "took {took}");
        let free = RateLimiter::new(0);
        let t = Instant::now();
        free.acquire(1 << 30).await;
        assert_eq!(t.elapsed(), Duration::ZERO);
    }
}
