//! Uniform random sampling without replacement from a few index ranges, in
//! O(k) time and no allocation after warm-up.

use rand::Rng as _;

use crate::rng::Rng;

/// Most ranges a pool is built from (three groups plus one split around the
/// requester's own position, with room to spare).
const MAX_RANGES: usize = 6;

/// A set of dense positions given as disjoint half-open ranges.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct Pool {
    ranges: [(u32, u32); MAX_RANGES],
    count: usize,
    len: u32,
}

impl Pool {
    /// Adds `start..end`, leaving out `skip` if it falls inside.
    pub(crate) fn push_excluding(&mut self, start: u32, end: u32, skip: u32) {
        if start <= skip && skip < end {
            self.push(start, skip);
            self.push(skip + 1, end);
        } else {
            self.push(start, end);
        }
    }

    fn push(&mut self, start: u32, end: u32) {
        if start < end && self.count < MAX_RANGES {
            self.ranges[self.count] = (start, end);
            self.count += 1;
            self.len += end - start;
        }
    }

    /// Number of positions in the pool.
    pub(crate) fn len(&self) -> u32 {
        self.len
    }

    /// Appends every position of the pool, in order.
    fn push_all(&self, out: &mut Vec<u32>) {
        for &(start, end) in &self.ranges[..self.count] {
            out.extend(start..end);
        }
    }

    /// The `i`-th position of the pool (`i < len`).
    fn nth(&self, mut i: u32) -> u32 {
        for &(start, end) in &self.ranges[..self.count] {
            let n = end - start;
            if i < n {
                return start + i;
            }
            i -= n;
        }
        // Unreachable for i < len; return something harmless.
        self.ranges[0].0
    }
}

/// Reusable scratch space for sampling.
#[derive(Debug, Default)]
pub(crate) struct Sampler {
    /// Virtual indexes for the partial Fisher-Yates shuffle.
    deck: Vec<u32>,
    /// Open-addressing set of drawn indexes for rejection sampling.
    seen: Vec<u32>,
}

const EMPTY: u32 = u32::MAX;

impl Sampler {
    /// Appends to `out` the positions of `min(k, pool.len())` distinct members
    /// of `pool`, each subset equally likely and in random order.
    pub(crate) fn sample(&mut self, rng: &mut Rng, pool: &Pool, k: u32, out: &mut Vec<u32>) {
        let n = pool.len();
        let k = k.min(n);
        if k == 0 {
            return;
        }
        if n <= k.saturating_mul(4) {
            self.fisher_yates(rng, pool, k, out);
        } else {
            self.rejection(rng, pool, k, out);
        }
    }

    /// Partial Fisher-Yates over a deck of the pool's positions: O(n) set-up,
    /// used only when n is at most 4k.
    fn fisher_yates(&mut self, rng: &mut Rng, pool: &Pool, k: u32, out: &mut Vec<u32>) {
        let n = pool.len();
        self.deck.clear();
        pool.push_all(&mut self.deck);
        for i in 0..k {
            let j = i + below(rng, n - i);
            self.deck.swap(i as usize, j as usize);
        }
        out.extend_from_slice(&self.deck[..k as usize]);
    }

    /// Draw, reject repeats: with n > 4k fewer than one draw in four repeats.
    fn rejection(&mut self, rng: &mut Rng, pool: &Pool, k: u32, out: &mut Vec<u32>) {
        let n = pool.len();
        let capacity = (k as usize * 4).next_power_of_two();
        if self.seen.len() < capacity {
            self.seen.resize(capacity, EMPTY);
        }
        let mask = capacity - 1;
        let first = out.len();
        let mut taken = 0;
        while taken < k {
            let v = below(rng, n);
            let mut slot = (v.wrapping_mul(0x9E37_79B9) as usize) & mask;
            loop {
                match self.seen[slot] {
                    EMPTY => {
                        self.seen[slot] = v;
                        out.push(v);
                        taken += 1;
                        break;
                    }
                    x if x == v => break,
                    _ => slot = (slot + 1) & mask,
                }
            }
        }
        // Clear exactly the slots used, then map virtual indexes to positions.
        for v in &mut out[first..] {
            let mut slot = (v.wrapping_mul(0x9E37_79B9) as usize) & mask;
            while self.seen[slot] != EMPTY {
                self.seen[slot] = EMPTY;
                slot = (slot + 1) & mask;
            }
            *v = pool.nth(*v);
        }
    }
}

/// A uniform integer in `0..n` (`n > 0`), by Lemire's multiply-and-reject
/// method: one 32-bit draw, a division only on the rare near-miss.
fn below(rng: &mut Rng, n: u32) -> u32 {
    let mut product = u64::from(rng.next_u32()) * u64::from(n);
    if (product as u32) < n {
        let threshold = n.wrapping_neg() % n;
        while (product as u32) < threshold {
            product = u64::from(rng.next_u32()) * u64::from(n);
        }
    }
    (product >> 32) as u32
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rng::from_seed;

    fn pool(ranges: &[(u32, u32)], skip: u32) -> Pool {
        let mut pool = Pool::default();
        for &(a, b) in ranges {
            pool.push_excluding(a, b, skip);
        }
        pool
    }

    #[test]
    fn samples_are_distinct_members_of_the_pool() {
        let mut rng = from_seed(1);
        let mut sampler = Sampler::default();
        let p = pool(&[(0, 10), (20, 2000), (3000, 3001)], 25);
        assert_eq!(p.len(), 10 + 1979 + 1);
        for k in [0, 1, 5, 50, 400, 600, 5000] {
            let mut out = Vec::new();
            sampler.sample(&mut rng, &p, k, &mut out);
            assert_eq!(out.len() as u32, k.min(p.len()));
            let mut sorted = out.clone();
            sorted.sort_unstable();
            sorted.dedup();
            assert_eq!(sorted.len(), out.len(), "k={k}: repeats");
            for pos in out {
                let inside = pos < 10 || (20..2000).contains(&pos) || pos == 3000;
                assert!(inside && pos != 25, "k={k}: {pos} not in pool");
            }
        }
        assert!(
            sampler.seen.iter().all(|&s| s == EMPTY),
            "scratch set left dirty"
        );
    }

    #[test]
    fn below_stays_in_range() {
        let mut rng = from_seed(3);
        let mut hits = [0u32; 3];
        for _ in 0..30_000 {
            hits[below(&mut rng, 3) as usize] += 1;
        }
        assert!(
            hits.iter().all(|&h| (9_000..11_000).contains(&h)),
            "{hits:?}"
        );
        assert_eq!(below(&mut rng, 1), 0);
        assert!(below(&mut rng, u32::MAX) < u32::MAX);
    }

    #[test]
    fn both_methods_are_roughly_uniform() {
        let mut rng = from_seed(2);
        let mut sampler = Sampler::default();
        for (n, k) in [(30u32, 10u32), (1000, 10)] {
            let p = pool(&[(0, n)], u32::MAX);
            let mut hits = vec![0u32; n as usize];
            let rounds = 100_000;
            for _ in 0..rounds {
                let mut out = Vec::new();
                sampler.sample(&mut rng, &p, k, &mut out);
                for pos in out {
                    hits[pos as usize] += 1;
                }
            }
            let expected = f64::from(rounds * k) / f64::from(n);
            for (pos, &h) in hits.iter().enumerate() {
                let dev = (f64::from(h) - expected).abs() / expected;
                assert!(dev < 0.25, "n={n} pos={pos}: {h} hits, expected {expected}");
            }
        }
    }
}
