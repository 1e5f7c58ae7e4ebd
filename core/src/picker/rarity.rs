//! Pieces kept sorted by availability in one array of buckets, so that finding the
//! rarest piece a peer has, and moving a piece one availability step, are cheap.
//!
//! `order` holds every piece; bucket `k` is `order[starts[k]..starts[k + 1]]` and
//! holds the pieces whose key is `k`. A piece that is no longer wanted (being
//! downloaded or done) sits in the top bucket `cap`, out of the way of the scans.
//! Moving a piece up or down one key is a single swap with a bucket boundary.

#[derive(Clone, Debug)]
pub(crate) struct RarityIndex {
    order: Vec<u32>,
    pos: Vec<u32>,
    key: Vec<u32>,
    /// `starts[k]` = first index in `order` of bucket `k`; `starts[cap + 1] == n`.
    starts: Vec<u32>,
    cap: u32,
}

impl RarityIndex {
    /// Every piece wanted, availability 0.
    pub(crate) fn new(num_pieces: u32) -> Self {
        let cap = 64;
        let mut starts = vec![num_pieces; cap as usize + 2];
        starts[0] = 0;
        RarityIndex {
            order: (0..num_pieces).collect(),
            pos: (0..num_pieces).collect(),
            key: vec![0; num_pieces as usize],
            starts,
            cap,
        }
    }

    /// The key meaning "not wanted".
    #[cfg(test)]
    pub(crate) fn removed_key(&self) -> u32 {
        self.cap
    }

    #[cfg(test)]
    pub(crate) fn key(&self, piece: u32) -> u32 {
        self.key[piece as usize]
    }

    /// Number of wanted pieces (those not in the top bucket).
    pub(crate) fn wanted_len(&self) -> u32 {
        self.starts[self.cap as usize]
    }

    /// Number of buckets below the top one.
    pub(crate) fn cap(&self) -> u32 {
        self.cap
    }

    /// Pieces of bucket `k` (`k < cap`).
    pub(crate) fn bucket(&self, k: u32) -> &[u32] {
        let (a, b) = (self.starts[k as usize], self.starts[k as usize + 1]);
        &self.order[a as usize..b as usize]
    }

    /// All wanted pieces whose key is at least `from`.
    pub(crate) fn wanted_from(&self, from: u32) -> &[u32] {
        let a = self.starts[from.min(self.cap) as usize] as usize;
        let b = self.starts[self.cap as usize] as usize;
        &self.order[a..b]
    }

    /// Move `piece` to key `target` (when `removed`, to the top "not wanted"
    /// bucket), growing the bucket range when `target` would reach the top.
    pub(crate) fn set_key(&mut self, piece: u32, target: u32, removed: bool) {
        let target = if removed {
            self.cap
        } else {
            if target >= self.cap {
                self.grow(target + 1);
            }
            target
        };
        while self.key[piece as usize] < target {
            self.step_up(piece);
        }
        while self.key[piece as usize] > target {
            self.step_down(piece);
        }
    }

    fn swap(&mut self, i: u32, j: u32) {
        if i == j {
            return;
        }
        let (pi, pj) = (self.order[i as usize], self.order[j as usize]);
        self.order.swap(i as usize, j as usize);
        self.pos[pi as usize] = j;
        self.pos[pj as usize] = i;
    }

    fn step_up(&mut self, piece: u32) {
        let k = self.key[piece as usize];
        let last = self.starts[k as usize + 1] - 1;
        self.swap(self.pos[piece as usize], last);
        self.starts[k as usize + 1] -= 1;
        self.key[piece as usize] = k + 1;
    }

    fn step_down(&mut self, piece: u32) {
        let k = self.key[piece as usize];
        let first = self.starts[k as usize];
        self.swap(self.pos[piece as usize], first);
        self.starts[k as usize] += 1;
        self.key[piece as usize] = k - 1;
    }

    /// Rebuild with room for keys up to at least `need` (counting sort, O(n + cap)).
    fn grow(&mut self, need: u32) {
        let old_cap = self.cap;
        let mut cap = self.cap.max(1);
        while cap <= need {
            cap *= 2;
        }
        let n = self.order.len();
        let mapped: Vec<u32> = self
            .key
            .iter()
            .map(|&k| if k == old_cap { cap } else { k })
            .collect();
        let mut counts = vec![0u32; cap as usize + 2];
        for &k in &mapped {
            counts[k as usize + 1] += 1;
        }
        for i in 1..counts.len() {
            counts[i] += counts[i - 1];
        }
        let starts = counts.clone();
        let mut next = counts;
        let mut order = vec![0u32; n];
        // Keep the previous relative order so growth does not disturb scans.
        for &piece in &self.order {
            let k = mapped[piece as usize] as usize;
            order[next[k] as usize] = piece;
            self.pos[piece as usize] = next[k];
            next[k] += 1;
        }
        self.order = order;
        self.key = mapped;
        self.starts = starts;
        self.cap = cap;
    }

    #[cfg(test)]
    pub(crate) fn check_invariants(&self) {
        for (i, &p) in self.order.iter().enumerate() {
            assert_eq!(self.pos[p as usize] as usize, i);
            let k = self.key[p as usize];
            assert!(self.starts[k as usize] as usize <= i);
            assert!(i < self.starts[k as usize + 1] as usize);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn steps_keep_buckets_sorted_and_growth_preserves_keys() {
        let mut r = RarityIndex::new(10);
        for _ in 0..3 {
            r.set_key(4, r.key(4) + 1, false);
        }
        r.set_key(7, 1, false);
        r.set_key(2, 0, true);
        r.check_invariants();
        assert_eq!(r.bucket(3), &[4]);
        assert_eq!(r.bucket(1), &[7]);
        assert_eq!(r.wanted_len(), 9);
        r.set_key(4, 200, false);
        r.check_invariants();
        assert_eq!(r.key(4), 200);
        assert_eq!(r.key(2), r.removed_key());
        assert_eq!(r.wanted_len(), 9);
        r.set_key(2, 5, false);
        r.check_invariants();
        assert_eq!(r.wanted_len(), 10);
        assert_eq!(r.bucket(5), &[2]);
    }
}
