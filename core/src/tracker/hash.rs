//! Hash maps for the announce path, keyed by a secret drawn from the
//! tracker's seeded RNG.
//!
//! Lookups by info hash, peer id, address and identity are the bulk of an
//! announce; B-trees cost a cache miss per level and a `memcmp` per key
//! compared, a hash table about one of each. The hasher is deterministic
//! for a given seed (so runs reproduce), and its key is unknown to clients,
//! which makes crafting colliding peer ids harder (it is a fast folded
//! multiply, not a cryptographic PRF). Iteration order of these maps never
//! reaches output: callers sort whenever they list.

use std::hash::{BuildHasher, Hasher};

use rand::RngExt;

use crate::rng::Rng;

/// A `hashbrown` map with the tracker's keyed hasher.
pub(crate) type Map<K, V> = hashbrown::HashMap<K, V, Keyed>;

/// Builds [`KeyedHasher`]s sharing one secret.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Keyed {
    key: u64,
}

impl Keyed {
    /// A hasher key drawn from `rng`.
    pub(crate) fn from_rng(rng: &mut Rng) -> Self {
        Keyed { key: rng.random() }
    }

    /// An empty map using this key.
    pub(crate) fn map<K, V>(self) -> Map<K, V> {
        hashbrown::HashMap::with_hasher(self)
    }
}

impl BuildHasher for Keyed {
    type Hasher = KeyedHasher;

    fn build_hasher(&self) -> KeyedHasher {
        KeyedHasher { state: self.key }
    }
}

/// Folded-multiply hasher (as in foldhash / ahash's fallback).
#[derive(Clone, Copy, Debug)]
pub(crate) struct KeyedHasher {
    state: u64,
}

const MUL: u64 = 0x5851_F42D_4C95_7F2D;

impl KeyedHasher {
    #[inline]
    fn mix(&mut self, word: u64) {
        let product = u128::from(self.state ^ word) * u128::from(MUL);
        self.state = (product as u64) ^ ((product >> 64) as u64);
    }
}

impl Hasher for KeyedHasher {
    #[inline]
    fn write(&mut self, bytes: &[u8]) {
        let mut chunks = bytes.chunks_exact(8);
        for chunk in &mut chunks {
            let mut word = [0u8; 8];
            word.copy_from_slice(chunk);
            self.mix(u64::from_le_bytes(word));
        }
        let rest = chunks.remainder();
        if !rest.is_empty() {
            let mut word = [0u8; 8];
            word[..rest.len()].copy_from_slice(rest);
            self.mix(u64::from_le_bytes(word) ^ ((rest.len() as u64) << 56));
        }
    }

    #[inline]
    fn write_u8(&mut self, n: u8) {
        self.mix(u64::from(n));
    }

    #[inline]
    fn write_u16(&mut self, n: u16) {
        self.mix(u64::from(n));
    }

    #[inline]
    fn write_u32(&mut self, n: u32) {
        self.mix(u64::from(n));
    }

    #[inline]
    fn write_u64(&mut self, n: u64) {
        self.mix(n);
    }

    #[inline]
    fn write_usize(&mut self, n: usize) {
        self.mix(n as u64);
    }

    #[inline]
    fn finish(&self) -> u64 {
        // One more fold so the top bits (hashbrown's tags) depend on every
        // input bit.
        let product = u128::from(self.state) * u128::from(MUL.rotate_left(32));
        (product as u64) ^ ((product >> 64) as u64)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rng::from_seed;
    use crate::Id20;

    fn hash_of<T: std::hash::Hash>(keyed: Keyed, value: &T) -> u64 {
        keyed.hash_one(value)
    }

    #[test]
    fn same_key_same_hash_other_key_other_hash() {
        let a = Keyed::from_rng(&mut from_seed(1));
        let b = Keyed::from_rng(&mut from_seed(2));
        let id = Id20::new([7; 20]);
        assert_eq!(hash_of(a, &id), hash_of(a, &id));
        assert_ne!(hash_of(a, &id), hash_of(b, &id));
        assert_ne!(hash_of(a, &"alice"), hash_of(a, &"alicf"));
    }

    #[test]
    fn single_byte_changes_spread_over_top_bits() {
        let keyed = Keyed::from_rng(&mut from_seed(3));
        let mut tags = std::collections::BTreeSet::new();
        for i in 0..20 {
            for b in 0..=255u8 {
                let mut bytes = [0u8; 20];
                bytes[i] = b;
                tags.insert(hash_of(keyed, &Id20::new(bytes)) >> 57);
            }
        }
        assert_eq!(tags.len(), 128, "all 7-bit tags reached");
    }
}
