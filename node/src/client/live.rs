//! A pull watched while it runs, for a program that reads the image's files
//! before the image is complete (the container mirror streams a blob as its
//! pieces verify): where the files are, which pieces are verified, how the
//! pull ended, and the pieces that program waits for, which the pull hands to
//! its swarm as priorities.
//!
//! [`PullLink::new`] makes both ends: the [`PullLink`] goes into
//! [`super::PullOptions::link`], the [`LivePull`] to the readers.

use std::collections::{BTreeMap, HashSet};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use swarmhub_core::metainfo::Metainfo;
use swarmhub_core::pieceset::PieceSet;
use tokio::sync::watch;

/// What a running pull has done so far.
#[derive(Clone, Debug, Default)]
pub struct PullProgress {
    /// The image's metainfo, once the hub sent it.
    pub meta: Option<Arc<Metainfo>>,
    /// Where its files are: the download folder, then the image folder once
    /// published (a file opened before the move stays valid after it).
    pub dir: Option<PathBuf>,
    /// Pieces verified against their SHA-1 and written under `dir`.
    pub have: PieceSet,
    /// Bytes of the pieces in `have`.
    pub have_bytes: u64,
    /// Every file passed its SHA-256 and the image is published.
    pub published: bool,
    /// The pull ended without the image: why.
    pub failed: Option<String>,
}

impl PullProgress {
    /// Has the pull ended, either way?
    pub fn ended(&self) -> bool {
        self.published || self.failed.is_some()
    }

    /// Percent of the image verified (0 before the metainfo is known).
    pub fn percent(&self) -> u32 {
        match &self.meta {
            Some(m) if m.total_length() > 0 => {
                (self.have_bytes.saturating_mul(100) / m.total_length()).min(100) as u32
            }
            _ => 0,
        }
    }
}

/// The pull's end of the link.
#[derive(Clone)]
pub struct PullLink {
    progress: Arc<watch::Sender<PullProgress>>,
    priority: watch::Receiver<Vec<u32>>,
}

impl std::fmt::Debug for PullLink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PullLink").finish_non_exhaustive()
    }
}

impl PullLink {
    /// Both ends of a new link.
    pub fn new() -> (PullLink, LivePull) {
        let (progress, progress_rx) = watch::channel(PullProgress::default());
        let (priority_tx, priority) = watch::channel(Vec::new());
        let link = PullLink {
            progress: Arc::new(progress),
            priority,
        };
        let live = LivePull {
            progress: progress_rx,
            wants: Arc::new(Wants {
                by_reader: Mutex::new((0, BTreeMap::new())),
                tx: priority_tx,
            }),
        };
        (link, live)
    }

    /// Change the progress (readers wake up when `f` says it changed something).
    pub fn update(&self, f: impl FnOnce(&mut PullProgress) -> bool) {
        self.progress.send_if_modified(f);
    }

    /// Record `have` as the verified pieces.
    pub(crate) fn set_have(&self, have: &PieceSet) {
        self.update(|p| {
            if p.have == *have {
                return false;
            }
            p.have = have.clone();
            p.have_bytes = p
                .meta
                .as_ref()
                .map_or(0, |m| have.iter().map(|i| u64::from(m.piece_len(i))).sum());
            true
        });
    }

    /// Add one verified piece.
    pub(crate) fn add_piece(&self, piece: u32) {
        self.update(|p| {
            let len = p.meta.as_ref().map_or(0, |m| u64::from(m.piece_len(piece)));
            if p.have.len() > piece && p.have.insert(piece) {
                p.have_bytes += len;
                return true;
            }
            false
        });
    }

    /// The pieces readers wait for, in the order to fetch them.
    pub(crate) fn priority(&self) -> watch::Receiver<Vec<u32>> {
        self.priority.clone()
    }
}

/// The readers' end of the link.
#[derive(Clone)]
pub struct LivePull {
    progress: watch::Receiver<PullProgress>,
    wants: Arc<Wants>,
}

/// The pieces each reader waits for, by reader.
struct Wants {
    by_reader: Mutex<(u64, BTreeMap<u64, Vec<u32>>)>,
    tx: watch::Sender<Vec<u32>>,
}

impl Wants {
    fn set(&self, reader: u64, pieces: Option<Vec<u32>>) {
        let Ok(mut g) = self.by_reader.lock() else {
            return;
        };
        match pieces {
            Some(p) => {
                g.1.insert(reader, p);
            }
            None => {
                g.1.remove(&reader);
            }
        }
        // Older readers first; each piece once.
        let mut seen = HashSet::new();
        let all: Vec<u32> =
            g.1.values()
                .flatten()
                .copied()
                .filter(|p| seen.insert(*p))
                .collect();
        self.tx.send_if_modified(|cur| {
            let changed = *cur != all;
            *cur = all;
            changed
        });
    }
}

impl LivePull {
    /// Is `other` an end of the same link?
    pub fn same(&self, other: &LivePull) -> bool {
        self.progress.same_channel(&other.progress)
    }

    /// The progress, to read or wait on.
    pub fn progress(&self) -> watch::Receiver<PullProgress> {
        self.progress.clone()
    }

    /// A reader that waits for pieces: what it names with [`Want::set`] is
    /// fetched first, until it is dropped.
    pub fn want(&self) -> Want {
        let id = self.wants.by_reader.lock().map_or(0, |mut g| {
            g.0 += 1;
            g.0
        });
        Want {
            wants: self.wants.clone(),
            id,
        }
    }
}

/// One reader's wish list (see [`LivePull::want`]).
pub struct Want {
    wants: Arc<Wants>,
    id: u64,
}

impl Want {
    /// Fetch these pieces first (replaces the previous list).
    pub fn set(&self, pieces: Vec<u32>) {
        self.wants.set(self.id, Some(pieces));
    }
}

impl Drop for Want {
    fn drop(&mut self) {
        self.wants.set(self.id, None);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wants_merge_in_reader_order_and_leave_with_their_reader() {
        let (link, live) = PullLink::new();
        let rx = link.priority();
        let a = live.want();
        let b = live.want();
        b.set(vec![5, 6]);
        a.set(vec![1, 5]);
        assert_eq!(*rx.borrow(), vec![1, 5, 6]);
        drop(a);
        assert_eq!(*rx.borrow(), vec![5, 6]);
        drop(b);
        assert!(rx.borrow().is_empty());
    }

    #[test]
    fn progress_counts_pieces_once() {
        let (link, live) = PullLink::new();
        let meta = Arc::new(Metainfo::synthetic("a:1", 1000, 256 * 1024, 1));
        link.update(|p| {
            p.have = PieceSet::new(meta.num_pieces());
            p.meta = Some(meta.clone());
            true
        });
        link.add_piece(0);
        link.add_piece(0);
        let p = live.progress().borrow().clone();
        assert_eq!(p.have_bytes, 1000);
        assert_eq!(p.percent(), 100);
        assert!(!p.ended());
    }
}
