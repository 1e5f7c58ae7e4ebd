//! Process-wide memory budgets for data held between the network and the
//! disk: upload read spans, pieces assembled in memory, and verified pieces
//! waiting for their turn in the file SHA-256. One process may run many
//! swarms (a hub with many images, `service`, the lab's fleet of hundreds of
//! clients), so the limits are per process, not per swarm; a swarm that finds
//! a budget spent falls back to the disk (read per block, write per block and
//! read back to verify, re-read for the SHA-256), never to unbounded memory.

use std::sync::atomic::{AtomicUsize, Ordering};

/// A byte budget shared by everyone who takes from it.
#[derive(Debug)]
pub(crate) struct Budget {
    used: AtomicUsize,
    limit: usize,
}

impl Budget {
    pub(crate) const fn new(limit: usize) -> Self {
        Budget {
            used: AtomicUsize::new(0),
            limit,
        }
    }

    /// Take `n` bytes if they fit; false (nothing taken) when they do not.
    pub(crate) fn try_take(&self, n: usize) -> bool {
        self.used
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |u| {
                u.checked_add(n).filter(|&t| t <= self.limit)
            })
            .is_ok()
    }

    /// Give back `n` bytes taken earlier.
    pub(crate) fn give(&self, n: usize) {
        let _ = self
            .used
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |u| {
                Some(u.saturating_sub(n))
            });
    }

    #[cfg(test)]
    pub(crate) fn used(&self) -> usize {
        self.used.load(Ordering::Acquire)
    }
}

/// Read spans kept for uploads, all swarms together.
pub(crate) static READ_CACHE: Budget = Budget::new(64 << 20);

/// Pieces being received into memory, all swarms together.
pub(crate) static ASSEMBLY: Budget = Budget::new(256 << 20);

/// Verified pieces held for the in-order file SHA-256, all pulls together.
pub(crate) static DIGEST_HELD: Budget = Budget::new(128 << 20);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_budget_refuses_what_does_not_fit_and_takes_it_back() {
        let b = Budget::new(100);
        assert!(b.try_take(60));
        assert!(!b.try_take(50), "60 + 50 is over 100");
        assert_eq!(b.used(), 60);
        assert!(b.try_take(40));
        b.give(60);
        assert!(b.try_take(50));
        assert_eq!(b.used(), 90);
    }
}
