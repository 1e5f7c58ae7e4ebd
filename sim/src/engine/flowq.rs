//! The finish times of flows, one entry per flow, in an indexed binary heap.
//!
//! A flow's finish time moves whenever its rate does (several times per block
//! on a busy network). Keeping those times in the main event queue leaves a
//! stale entry behind at every move; here the entry is updated in place, so
//! every pop is a real finish (or a finish re-checked after a slowdown).
//! Keys are (time, sequence number) drawn from the engine's one counter, so
//! flows and other events interleave exactly as they would in one queue.

use swarmhub_core::Instant;

use crate::net::FlowId;

/// Heap position of a flow slot that has no entry.
const ABSENT: u32 = u32::MAX;

#[derive(Clone, Copy, Debug)]
struct Entry {
    at: Instant,
    seq: u64,
    flow: FlowId,
}

impl Entry {
    fn key(&self) -> (Instant, u64) {
        (self.at, self.seq)
    }
}

/// Pending flow finishes, earliest first.
#[derive(Debug, Default)]
pub(crate) struct FlowQueue {
    heap: Vec<Entry>,
    /// `pos[flow slot]`: where the flow's entry sits in `heap`.
    pos: Vec<u32>,
}

impl FlowQueue {
    /// Set (or move) the finish of `flow` to `at`, ordered after every key
    /// with a smaller `seq` at the same instant.
    pub(crate) fn set(&mut self, flow: FlowId, at: Instant, seq: u64) {
        let slot = flow.index() as usize;
        if self.pos.len() <= slot {
            self.pos.resize(slot + 1, ABSENT);
        }
        let entry = Entry { at, seq, flow };
        match self.pos[slot] {
            ABSENT => {
                self.heap.push(entry);
                let i = self.heap.len() - 1;
                self.pos[slot] = i as u32;
                self.sift_up(i);
            }
            i => {
                let i = i as usize;
                let older = self.heap[i].key();
                self.heap[i] = entry;
                if entry.key() < older {
                    self.sift_up(i);
                } else {
                    self.sift_down(i);
                }
            }
        }
    }

    /// Drop the entry of `flow`'s slot, if any.
    pub(crate) fn remove(&mut self, flow: FlowId) {
        let slot = flow.index() as usize;
        let Some(&i) = self.pos.get(slot) else {
            return;
        };
        if i == ABSENT {
            return;
        }
        self.take(i as usize);
    }

    /// The earliest key.
    pub(crate) fn peek(&self) -> Option<(Instant, u64)> {
        self.heap.first().map(Entry::key)
    }

    /// Remove and return the earliest flow and its finish time.
    pub(crate) fn pop(&mut self) -> Option<(FlowId, Instant)> {
        if self.heap.is_empty() {
            return None;
        }
        let e = self.take(0);
        Some((e.flow, e.at))
    }

    /// Flows with an entry.
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.heap.len()
    }

    fn take(&mut self, i: usize) -> Entry {
        let last = self.heap.len() - 1;
        self.swap(i, last);
        let e = self.heap.pop().expect("non-empty");
        self.pos[e.flow.index() as usize] = ABSENT;
        if i < self.heap.len() {
            self.sift_down(i);
            self.sift_up(i);
        }
        e
    }

    fn swap(&mut self, a: usize, b: usize) {
        self.heap.swap(a, b);
        self.pos[self.heap[a].flow.index() as usize] = a as u32;
        self.pos[self.heap[b].flow.index() as usize] = b as u32;
    }

    fn sift_up(&mut self, mut i: usize) {
        while i > 0 {
            let parent = (i - 1) / 2;
            if self.heap[i].key() >= self.heap[parent].key() {
                break;
            }
            self.swap(i, parent);
            i = parent;
        }
    }

    fn sift_down(&mut self, mut i: usize) {
        let n = self.heap.len();
        loop {
            let (l, r) = (2 * i + 1, 2 * i + 2);
            let mut m = i;
            if l < n && self.heap[l].key() < self.heap[m].key() {
                m = l;
            }
            if r < n && self.heap[r].key() < self.heap[m].key() {
                m = r;
            }
            if m == i {
                return;
            }
            self.swap(i, m);
            i = m;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::net::Net;
    use proptest::prelude::*;

    /// Flow ids from a real network (their constructor is private to `net`).
    fn flows(n: usize) -> Vec<FlowId> {
        let mut net = Net::new(1);
        let a = net.add_host(1e6, 1e6, 0);
        let b = net.add_host(1e6, 1e6, 0);
        let mut out = Vec::new();
        (0..n)
            .map(|i| net.start(Instant::ZERO, a, b, 1000, i as u64, &mut out))
            .collect()
    }

    proptest! {
        /// Against a plain model (a map from flow to key): after any sequence
        /// of sets and removes, pops come out in key order, one per flow, with
        /// the latest key of each.
        #[test]
        fn pops_in_key_order_with_latest_keys(
            ops in prop::collection::vec((0usize..12, 0u64..50, any::<bool>()), 0..200)
        ) {
            let ids = flows(12);
            let mut q = FlowQueue::default();
            let mut model: std::collections::BTreeMap<usize, (Instant, u64)> = Default::default();
            for (seq, (f, t, remove)) in ops.into_iter().enumerate() {
                if remove {
                    q.remove(ids[f]);
                    model.remove(&f);
                } else {
                    let at = Instant::from_micros(t);
                    q.set(ids[f], at, seq as u64);
                    model.insert(f, (at, seq as u64));
                }
                prop_assert_eq!(q.len(), model.len());
            }
            let mut expected: Vec<((Instant, u64), usize)> =
                model.iter().map(|(&f, &k)| (k, f)).collect();
            expected.sort();
            for (key, f) in expected {
                prop_assert_eq!(q.peek(), Some(key));
                let (flow, at) = q.pop().expect("entry");
                prop_assert_eq!(flow, ids[f]);
                prop_assert_eq!(at, key.0);
            }
            prop_assert!(q.pop().is_none());
        }
    }
}
