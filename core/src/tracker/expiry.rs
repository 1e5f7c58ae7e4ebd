//! Lazy expiry schedule: one record per peer entry, filed in a coarse time
//! bucket. Announces never touch it; `expire` re-files a record whose peer
//! announced since, so each entry costs at most one record visit per expiry
//! window however often it announces.

use std::collections::BTreeMap;

use crate::time::{Duration, Instant};
use crate::Id20;

/// Width of a bucket: peers expire up to this much after their deadline,
/// never before.
pub(crate) const GRANULARITY: Duration = Duration::from_secs(1);

/// Points at one peer entry; stale when the entry's serial differs.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Record {
    pub(crate) swarm: Id20,
    pub(crate) peer_id: Id20,
    pub(crate) serial: u64,
}

/// Records by bucket number (deadline rounded up to `GRANULARITY`).
#[derive(Debug, Default)]
pub(crate) struct Schedule {
    buckets: BTreeMap<u64, Vec<Record>>,
}

fn bucket_of(deadline: Instant) -> u64 {
    deadline.as_micros().div_ceil(GRANULARITY.as_micros())
}

impl Schedule {
    /// Files `record` to be looked at once `deadline` has passed.
    pub(crate) fn push(&mut self, deadline: Instant, record: Record) {
        self.buckets
            .entry(bucket_of(deadline))
            .or_default()
            .push(record);
    }

    /// When the earliest bucket falls due.
    pub(crate) fn next_due(&self) -> Option<Instant> {
        let (&bucket, _) = self.buckets.first_key_value()?;
        Some(Instant::from_micros(
            bucket.saturating_mul(GRANULARITY.as_micros()),
        ))
    }

    /// Takes out every record of a bucket that is due at `now`.
    pub(crate) fn take_due(&mut self, now: Instant) -> Vec<Record> {
        let mut due = Vec::new();
        while let Some(entry) = self.buckets.first_entry() {
            if entry.key().saturating_mul(GRANULARITY.as_micros()) > now.as_micros() {
                break;
            }
            let mut records = entry.remove();
            if due.is_empty() {
                due = records;
            } else {
                due.append(&mut records);
            }
        }
        due
    }

    /// Number of records filed (live or stale); for tests.
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.buckets.values().map(Vec::len).sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rec(serial: u64) -> Record {
        Record {
            swarm: Id20::new([0; 20]),
            peer_id: Id20::new([0; 20]),
            serial,
        }
    }

    #[test]
    fn records_come_out_only_once_due_rounded_up() {
        let mut s = Schedule::default();
        s.push(Instant::from_micros(1_500_000), rec(1));
        s.push(Instant::from_secs(5), rec(2));
        assert_eq!(s.next_due(), Some(Instant::from_secs(2)));
        assert!(s.take_due(Instant::from_micros(1_999_999)).is_empty());
        let due = s.take_due(Instant::from_secs(2));
        assert_eq!(due.iter().map(|r| r.serial).collect::<Vec<_>>(), vec![1]);
        assert_eq!(s.next_due(), Some(Instant::from_secs(5)));
        assert_eq!(s.take_due(Instant::from_secs(100)).len(), 1);
        assert_eq!(s.next_due(), None);
    }
}
