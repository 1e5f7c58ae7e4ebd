//! Piece and block arithmetic of an image, without its file list or hashes.

use librqbit_core::lengths::last_element_size;

/// Size of a request block on the wire (BEP 3 convention): 16 KiB.
pub const BLOCK_LEN: u32 = 16 * 1024;

/// The piece and block layout of an image: all the node and the simulator need to
/// know about its size.
///
/// Methods never panic: a zero `piece_length` or `block_len` gives zero pieces or
/// blocks, and an index out of range gives length 0.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Geometry {
    /// Image size in bytes (sum of the file lengths).
    pub total_length: u64,
    /// Length of every piece but the last, in bytes.
    pub piece_length: u32,
}

impl Geometry {
    /// A geometry from its two numbers.
    pub const fn new(total_length: u64, piece_length: u32) -> Self {
        Self {
            total_length,
            piece_length,
        }
    }

    /// Number of pieces: `ceil(total_length / piece_length)`, saturating at `u32::MAX`
    /// (validated metainfo never gets close).
    pub fn num_pieces(&self) -> u32 {
        if self.piece_length == 0 {
            return 0;
        }
        let n = self.total_length.div_ceil(u64::from(self.piece_length));
        u32::try_from(n).unwrap_or(u32::MAX)
    }

    /// Byte offset of piece `index` in the image (not checked against the size).
    pub fn piece_offset(&self, index: u32) -> u64 {
        u64::from(index) * u64::from(self.piece_length)
    }

    /// Length of piece `index`: `piece_length`, except the last piece, which is
    /// shorter when the size is not a multiple. 0 when `index >= num_pieces()`.
    pub fn piece_len(&self, index: u32) -> u32 {
        let n = self.num_pieces();
        if index >= n {
            return 0;
        }
        if index + 1 < n {
            return self.piece_length;
        }
        let last = last_element_size(self.total_length, u64::from(self.piece_length));
        // `last <= piece_length`, so it fits.
        u32::try_from(last).unwrap_or(self.piece_length)
    }

    /// Number of blocks of `block_len` bytes in piece `piece` (the last block may be
    /// shorter). 0 for an invalid piece or a zero `block_len`.
    pub fn num_blocks(&self, piece: u32, block_len: u32) -> u32 {
        if block_len == 0 {
            return 0;
        }
        self.piece_len(piece).div_ceil(block_len)
    }

    /// Length of block `block` of piece `piece` when blocks are `block_len` bytes:
    /// `block_len`, except the piece's last block. 0 when out of range.
    pub fn block_len(&self, piece: u32, block: u32, block_len: u32) -> u32 {
        let piece_len = self.piece_len(piece);
        let start = u64::from(block) * u64::from(block_len);
        if block_len == 0 || start >= u64::from(piece_len) {
            return 0;
        }
        let left = u64::from(piece_len) - start;
        // `left <= piece_len`, so it fits.
        u32::try_from(left.min(u64::from(block_len))).unwrap_or(0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const KIB: u32 = 1024;

    #[test]
    fn exact_multiple_has_full_last_piece() {
        let g = Geometry::new(4 * 256 * u64::from(KIB), 256 * KIB);
        assert_eq!(g.num_pieces(), 4);
        assert_eq!(g.piece_len(3), 256 * KIB);
        assert_eq!(g.piece_len(4), 0);
        assert_eq!(g.piece_offset(3), 3 * 256 * u64::from(KIB));
    }

    #[test]
    fn last_piece_is_shorter() {
        let g = Geometry::new(1_000_000, 256 * KIB);
        assert_eq!(g.num_pieces(), 4);
        assert_eq!(g.piece_len(0), 256 * KIB);
        assert_eq!(g.piece_len(3), 1_000_000 - 3 * 256 * KIB);
        let sum: u64 = (0..g.num_pieces()).map(|i| u64::from(g.piece_len(i))).sum();
        assert_eq!(sum, 1_000_000);
    }

    #[test]
    fn blocks_split_each_piece() {
        let g = Geometry::new(1_000_000, 256 * KIB);
        assert_eq!(g.num_blocks(0, BLOCK_LEN), 16);
        // Last piece: 213_568 bytes = 13 full blocks + 576 bytes.
        assert_eq!(g.num_blocks(3, BLOCK_LEN), 14);
        assert_eq!(g.block_len(3, 12, BLOCK_LEN), BLOCK_LEN);
        assert_eq!(g.block_len(3, 13, BLOCK_LEN), 576);
        assert_eq!(g.block_len(3, 14, BLOCK_LEN), 0);
        assert_eq!(g.block_len(9, 0, BLOCK_LEN), 0);
        for piece in 0..g.num_pieces() {
            let sum: u32 = (0..g.num_blocks(piece, BLOCK_LEN))
                .map(|b| g.block_len(piece, b, BLOCK_LEN))
                .sum();
            assert_eq!(sum, g.piece_len(piece));
        }
    }

    #[test]
    fn degenerate_inputs_do_not_panic() {
        let zero_piece = Geometry::new(100, 0);
        assert_eq!(zero_piece.num_pieces(), 0);
        assert_eq!(zero_piece.piece_len(0), 0);
        let empty = Geometry::new(0, 16 * KIB);
        assert_eq!(empty.num_pieces(), 0);
        assert_eq!(empty.num_blocks(0, BLOCK_LEN), 0);
        let g = Geometry::new(100, 16 * KIB);
        assert_eq!(g.num_blocks(0, 0), 0);
        assert_eq!(g.block_len(0, 0, 0), 0);
        assert_eq!(g.block_len(0, u32::MAX, u32::MAX), 0);
        let huge = Geometry::new(u64::MAX, 1);
        assert_eq!(huge.num_pieces(), u32::MAX);
    }
}
