//! A set of piece indices as a bit set, convertible to and from the BEP 3 bitfield
//! layout (most significant bit of the first byte is piece 0).

/// Which pieces of an image a peer has.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct PieceSet {
    words: Vec<u64>,
    len: u32,
    count: u32,
}

impl PieceSet {
    /// An empty set over `len` pieces.
    pub fn new(len: u32) -> Self {
        PieceSet {
            words: vec![0; (len as usize).div_ceil(64)],
            len,
            count: 0,
        }
    }

    /// A full set over `len` pieces.
    pub fn full(len: u32) -> Self {
        let mut s = Self::new(len);
        for w in &mut s.words {
            *w = u64::MAX;
        }
        let tail = len % 64;
        if tail != 0 {
            if let Some(last) = s.words.last_mut() {
                *last = (1u64 << tail) - 1;
            }
        }
        s.count = len;
        s
    }

    /// The pieces of `self` that `other` lacks (`other` over the same range).
    pub fn difference(&self, other: &PieceSet) -> PieceSet {
        let mut out = self.clone();
        let mut count = 0;
        for (i, w) in out.words.iter_mut().enumerate() {
            *w &= !other.words.get(i).copied().unwrap_or(0);
            count += w.count_ones();
        }
        out.count = count;
        out
    }

    /// Number of pieces the set ranges over.
    pub fn len(&self) -> u32 {
        self.len
    }

    /// True when the set ranges over no pieces at all.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Number of pieces present.
    pub fn count(&self) -> u32 {
        self.count
    }

    /// True when every piece is present.
    pub fn is_full(&self) -> bool {
        self.count == self.len
    }

    /// True when `piece` is present (false when out of range).
    pub fn contains(&self, piece: u32) -> bool {
        if piece >= self.len {
            return false;
        }
        self.words[(piece / 64) as usize] & (1 << (piece % 64)) != 0
    }

    /// Add `piece`; returns true if it was newly added. Out of range is ignored.
    pub fn insert(&mut self, piece: u32) -> bool {
        if piece >= self.len || self.contains(piece) {
            return false;
        }
        self.words[(piece / 64) as usize] |= 1 << (piece % 64);
        self.count += 1;
        true
    }

    /// Remove `piece`; returns true if it was present.
    pub fn remove(&mut self, piece: u32) -> bool {
        if !self.contains(piece) {
            return false;
        }
        self.words[(piece / 64) as usize] &= !(1 << (piece % 64));
        self.count -= 1;
        true
    }

    /// Present pieces in increasing order.
    pub fn iter(&self) -> impl Iterator<Item = u32> + '_ {
        self.words.iter().enumerate().flat_map(|(wi, &w)| {
            let mut w = w;
            std::iter::from_fn(move || {
                if w == 0 {
                    return None;
                }
                let bit = w.trailing_zeros();
                w &= w - 1;
                Some(wi as u32 * 64 + bit)
            })
        })
    }

    /// True when `other` has a piece this set lacks.
    pub fn lacks_any_of(&self, other: &PieceSet) -> bool {
        self.words
            .iter()
            .zip(&other.words)
            .any(|(mine, theirs)| theirs & !mine != 0)
    }

    /// The BEP 3 bitfield bytes: piece 0 is the high bit of byte 0; spare bits zero.
    pub fn to_bitfield(&self) -> Vec<u8> {
        let mut out = vec![0u8; (self.len as usize).div_ceil(8)];
        for piece in self.iter() {
            out[(piece / 8) as usize] |= 0x80 >> (piece % 8);
        }
        out
    }

    /// Parse a BEP 3 bitfield for `len` pieces. `None` when the byte length is
    /// wrong or a spare bit past the last piece is set.
    pub fn from_bitfield(bytes: &[u8], len: u32) -> Option<Self> {
        if bytes.len() != (len as usize).div_ceil(8) {
            return None;
        }
        let mut set = Self::new(len);
        for (i, &b) in bytes.iter().enumerate() {
            for bit in 0..8u32 {
                if b & (0x80 >> bit) != 0 {
                    let piece = i as u32 * 8 + bit;
                    if piece >= len {
                        return None;
                    }
                    set.insert(piece);
                }
            }
        }
        Some(set)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn full_set_has_exactly_len_pieces() {
        let s = PieceSet::full(70);
        assert_eq!(s.count(), 70);
        assert!(s.contains(69));
        assert!(!s.contains(70));
        assert_eq!(s.iter().count(), 70);
    }

    #[test]
    fn bitfield_rejects_spare_bits_and_wrong_length() {
        assert!(PieceSet::from_bitfield(&[0xff], 7).is_none());
        assert!(PieceSet::from_bitfield(&[0xfe], 7).is_some());
        assert!(PieceSet::from_bitfield(&[0xfe, 0], 7).is_none());
        assert_eq!(
            PieceSet::from_bitfield(&[0x80], 1)
                .unwrap()
                .iter()
                .collect::<Vec<_>>(),
            vec![0]
        );
    }

    proptest! {
        #[test]
        fn bitfield_round_trips(len in 1u32..300, seed in proptest::collection::vec(any::<u32>(), 0..50)) {
            let mut s = PieceSet::new(len);
            for p in seed { s.insert(p % len); }
            let back = PieceSet::from_bitfield(&s.to_bitfield(), len).unwrap();
            prop_assert_eq!(&back, &s);
            prop_assert_eq!(back.iter().count() as u32, s.count());
        }
    }
}
