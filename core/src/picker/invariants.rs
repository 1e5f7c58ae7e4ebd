//! Consistency checks of the picker's bookkeeping, for property tests and the
//! simulator's debug runs (see `Node::check_invariants`). Pure; O(pieces +
//! blocks in partial pieces).

use std::collections::BTreeSet;

use super::{BlockState, Picker, PieceState};
use crate::wire::BlockRef;
use crate::ConnId;

impl Picker {
    /// Check that the picker's counters agree with its per-piece and
    /// per-block state: every piece in exactly one state, `have` the set of
    /// pieces in state `Have`, a partial record exactly for the pieces being
    /// downloaded or verified, the missing/received counters of each partial
    /// and `missing_in_partials` equal to the blocks they count, a verifying
    /// piece fully received, and the rarity index holding exactly the wanted
    /// pieces, each in the bucket of its availability.
    pub(crate) fn check_invariants(&self) -> Result<(), String> {
        let n = self.geometry.num_pieces();
        if self.state.len() != n as usize || self.availability.len() != n as usize {
            return Err("picker: per-piece vectors have the wrong length".into());
        }
        let mut missing_total = 0u64;
        let mut wanted = 0u32;
        for p in 0..n {
            let state = self.state[p as usize];
            if self.have.contains(p) != (state == PieceState::Have) {
                return Err(format!(
                    "picker: piece {p} is {state:?} but have={}",
                    self.have.contains(p)
                ));
            }
            let partial = self.partials.get(&p);
            match (state, partial) {
                (PieceState::Partial | PieceState::Verifying, Some(partial)) => {
                    let missing = partial
                        .blocks
                        .iter()
                        .filter(|b| **b == BlockState::Missing)
                        .count();
                    let received = partial
                        .blocks
                        .iter()
                        .filter(|b| matches!(b, BlockState::Received(_)))
                        .count();
                    if missing != partial.missing as usize || received != partial.received as usize
                    {
                        return Err(format!(
                            "picker: piece {p} counts missing={} received={} but its blocks say {missing} and {received}",
                            partial.missing, partial.received
                        ));
                    }
                    if partial
                        .blocks
                        .iter()
                        .any(|b| matches!(b, BlockState::Requested(v) if v.is_empty()))
                    {
                        return Err(format!("picker: piece {p} has a block requested of nobody"));
                    }
                    if (state == PieceState::Verifying) != (received == partial.blocks.len()) {
                        return Err(format!(
                            "picker: piece {p} is {state:?} with {received} of {} blocks received",
                            partial.blocks.len()
                        ));
                    }
                    missing_total += missing as u64;
                }
                (PieceState::Wanted | PieceState::Have, None) => {}
                (state, partial) => {
                    return Err(format!(
                        "picker: piece {p} is {state:?} but has_partial={}",
                        partial.is_some()
                    ))
                }
            }
            if state == PieceState::Wanted {
                wanted += 1;
            }
        }
        if missing_total != self.missing_in_partials {
            return Err(format!(
                "picker: missing_in_partials={} but partial pieces miss {missing_total} blocks",
                self.missing_in_partials
            ));
        }
        if self.rarity.wanted_len() != wanted {
            return Err(format!(
                "picker: rarity index holds {} wanted pieces, the states say {wanted}",
                self.rarity.wanted_len()
            ));
        }
        for k in 0..self.rarity.cap() {
            for &p in self.rarity.bucket(k) {
                let a = self.availability[p as usize];
                if self.state[p as usize] != PieceState::Wanted || a != k {
                    return Err(format!(
                        "picker: piece {p} ({:?}, availability {a}) sits in rarity bucket {k}",
                        self.state[p as usize]
                    ));
                }
            }
        }
        Ok(())
    }

    /// Availability of every piece (index = piece).
    pub(crate) fn availability_all(&self) -> &[u32] {
        &self.availability
    }

    /// Outstanding requests per peer: (peer, block) for every block of a
    /// partial piece requested of that peer.
    pub(crate) fn requested_blocks(&self) -> BTreeSet<(ConnId, BlockRef)> {
        let mut out = BTreeSet::new();
        for (&piece, partial) in &self.partials {
            for (i, b) in partial.blocks.iter().enumerate() {
                if let BlockState::Requested(peers) = b {
                    let block = self.block_ref(piece, i as u32);
                    out.extend(peers.iter().map(|p| (*p, block)));
                }
            }
        }
        out
    }

    /// Bytes of blocks received into pieces not yet verified.
    pub(crate) fn received_bytes(&self) -> u64 {
        self.partials
            .keys()
            .map(|&p| self.received_bytes_of(p))
            .sum()
    }

    /// Bytes of blocks of `piece` received and not yet verified.
    pub(crate) fn received_bytes_of(&self, piece: u32) -> u64 {
        self.partials.get(&piece).map_or(0, |partial| {
            partial
                .blocks
                .iter()
                .enumerate()
                .filter(|(_, b)| matches!(b, BlockState::Received(_)))
                .map(|(i, _)| {
                    u64::from(
                        self.geometry
                            .block_len(piece, i as u32, self.config.block_len),
                    )
                })
                .sum()
        })
    }

    /// Bytes of the verified pieces.
    pub(crate) fn have_bytes(&self) -> u64 {
        self.geometry.total_length - self.bytes_left()
    }
}
