//! The hub's web seed through an outage: failed requests are retried with
//! backoff until the hub answers again, or until it has been unreachable for
//! `--give-up-after`. A pull whose only source is the hub then survives a hub
//! restart, and says on its progress line since when the hub is gone.

use std::sync::Mutex;
use std::time::Duration;

use tokio::time::Instant;

use super::{ClientError, HubError};

/// How long a pull waits for an unreachable hub by default: one hour.
pub const DEFAULT_GIVE_UP_AFTER: Duration = Duration::from_secs(3600);

/// First retry delay; doubled per failed attempt up to [`MAX_BACKOFF`].
const FIRST_BACKOFF: Duration = Duration::from_millis(500);
/// Longest wait between two attempts.
const MAX_BACKOFF: Duration = Duration::from_secs(10);

/// Since when the hub has been failing, shared by the web-seed workers.
#[derive(Debug)]
pub(super) struct HubOutage {
    url: String,
    give_up_after: Duration,
    down: Mutex<Option<Down>>,
}

#[derive(Debug)]
struct Down {
    since: Instant,
    /// Wall-clock time of the first failure, `HH:MM:SS UTC`.
    since_utc: String,
}

/// What to do after a failed request: wait, then try again.
#[derive(Debug, PartialEq, Eq)]
pub(super) struct Retry {
    /// How long to wait.
    pub(super) wait: Duration,
    /// This failure began the outage (to say so once).
    pub(super) first: bool,
}

/// The hub may answer again: no connection, a cut-off body, or a server-side
/// error (a restarting hub answers 503). A 4xx is the hub's word and final.
pub(super) fn is_transient(e: &HubError) -> bool {
    match e {
        HubError::Unreachable { .. } | HubError::BadAnswer { .. } => true,
        HubError::Refused { status, .. } => *status >= 500 || *status == 408 || *status == 429,
        HubError::BadUrl(_) => false,
    }
}

fn utc_now() -> String {
    let t = time::OffsetDateTime::now_utc();
    format!("{:02}:{:02}:{:02} UTC", t.hour(), t.minute(), t.second())
}

impl HubOutage {
    /// For the hub at `url`, giving up after `give_up_after` of failures.
    pub(super) fn new(url: &str, give_up_after: Duration) -> Self {
        HubOutage {
            url: url.to_owned(),
            give_up_after,
            down: Mutex::new(None),
        }
    }

    /// A request failed with `e` on its `attempt`-th try (1 = first): retry
    /// after the backoff, or give up with an error naming the hub, the time it
    /// went away and the last error.
    pub(super) fn failed(&self, e: HubError, attempt: u32) -> Result<Retry, ClientError> {
        if !is_transient(&e) {
            return Err(e.into());
        }
        let mut down = self.down.lock().unwrap_or_else(|p| p.into_inner());
        let first = down.is_none();
        let d = down.get_or_insert_with(|| Down {
            since: Instant::now(),
            since_utc: utc_now(),
        });
        let gone = d.since.elapsed();
        if gone >= self.give_up_after {
            return Err(ClientError::Other(format!(
                "giving up: the hub {} has been unreachable since {} ({} s, the --give-up-after \
                 limit); last error: {e}",
                self.url,
                d.since_utc,
                gone.as_secs()
            )));
        }
        let exp = attempt.saturating_sub(1).min(16);
        let wait = FIRST_BACKOFF
            .saturating_mul(1 << exp)
            .min(MAX_BACKOFF)
            .min(self.give_up_after - gone);
        Ok(Retry { wait, first })
    }

    /// A request succeeded: the outage, if any, is over. Returns how long it lasted.
    pub(super) fn recovered(&self) -> Option<Duration> {
        let mut down = self.down.lock().unwrap_or_else(|p| p.into_inner());
        down.take().map(|d| d.since.elapsed())
    }

    /// For the progress line: `hub unreachable since 12:00:01 UTC (35 s)`, or
    /// `None` while the hub answers.
    pub(super) fn note(&self) -> Option<String> {
        let down = self.down.lock().unwrap_or_else(|p| p.into_inner());
        down.as_ref().map(|d| {
            format!(
                "hub unreachable since {} ({} s), retrying",
                d.since_utc,
                d.since.elapsed().as_secs()
            )
        })
    }

    /// The hub's URL.
    pub(super) fn url(&self) -> &str {
        &self.url
    }

    /// The give-up limit.
    pub(super) fn give_up_after(&self) -> Duration {
        self.give_up_after
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn unreachable() -> HubError {
        HubError::Unreachable {
            url: "https://hub:7070".into(),
            detail: "connection refused".into(),
        }
    }

    #[tokio::test(start_paused = true)]
    async fn backoff_doubles_to_a_cap_and_the_outage_ends_on_success() {
        let o = HubOutage::new("https://hub:7070", Duration::from_secs(3600));
        assert_eq!(o.note(), None);
        let waits: Vec<Duration> = (1..=7)
            .map(|a| o.failed(unreachable(), a).expect("retry").wait)
            .collect();
        let ms: Vec<u128> = waits.iter().map(Duration::as_millis).collect();
        assert_eq!(ms, [500, 1000, 2000, 4000, 8000, 10_000, 10_000]);
        assert!(matches!(
            o.failed(unreachable(), 1),
            Ok(Retry { first: false, .. })
        ));
        tokio::time::advance(Duration::from_secs(35)).await;
        let note = o.note().expect("down");
        assert!(
            note.contains("hub unreachable since") && note.contains("(35 s)"),
            "{note}"
        );
        assert_eq!(o.recovered(), Some(Duration::from_secs(35)));
        assert_eq!(o.note(), None);
        assert!(matches!(
            o.failed(unreachable(), 1),
            Ok(Retry { first: true, .. })
        ));
    }

    #[tokio::test(start_paused = true)]
    async fn gives_up_after_the_limit_naming_the_hub() {
        let o = HubOutage::new("https://hub:7070", Duration::from_secs(60));
        assert!(o.failed(unreachable(), 1).is_ok());
        tokio::time::advance(Duration::from_secs(59)).await;
        // The last wait ends at the limit, not past it.
        assert_eq!(
            o.failed(unreachable(), 9).expect("retry"),
            Retry {
                wait: Duration::from_secs(1),
                first: false
            }
        );
        tokio::time::advance(Duration::from_secs(1)).await;
        let e = o
            .failed(unreachable(), 10)
            .expect_err("gave up")
            .to_string();
        assert!(
            e.contains("https://hub:7070") && e.contains("--give-up-after"),
            "{e}"
        );
        assert!(e.contains("connection refused"), "{e}");
    }

    #[test]
    fn refusals_are_final_and_server_errors_are_not() {
        let refused = |status| HubError::Refused {
            what: "web seed range".into(),
            status,
            message: String::new(),
        };
        assert!(!is_transient(&refused(404)));
        assert!(!is_transient(&refused(403)));
        assert!(is_transient(&refused(503)));
        assert!(is_transient(&unreachable()));
        let o = HubOutage::new("https://hub:7070", Duration::from_secs(60));
        assert!(matches!(
            o.failed(refused(404), 1),
            Err(ClientError::Hub(HubError::Refused { status: 404, .. }))
        ));
        assert_eq!(o.note(), None, "a refusal is no outage");
    }
}
