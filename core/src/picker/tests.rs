use super::*;
use crate::rng::from_seed;
use proptest::prelude::*;

const BLOCK: u32 = 16 * 1024;

fn geometry(pieces: u32) -> Geometry {
    Geometry {
        total_length: u64::from(pieces) * 4 * u64::from(BLOCK) - 100,
        piece_length: 4 * BLOCK,
    }
}

fn picker(pieces: u32, strategy: PickStrategy) -> Picker {
    let config = PickerConfig {
        strategy,
        random_first_pieces: 0,
        ..PickerConfig::default()
    };
    Picker::new(config, geometry(pieces), PieceSet::new(pieces))
}

fn set(len: u32, pieces: &[u32]) -> PieceSet {
    let mut s = PieceSet::new(len);
    for &p in pieces {
        s.insert(p);
    }
    s
}

#[test]
fn rarest_piece_is_picked_first() {
    let mut p = picker(8, PickStrategy::RarestFirst);
    let mut rng = from_seed(1);
    let common = set(8, &[0, 1, 2, 3, 4, 5, 6, 7]);
    p.add_peer(&common);
    p.add_peer(&common);
    p.add_peer(&set(8, &[0, 1, 2, 3, 4, 6, 7]));
    // Piece 5 is held by two peers, every other by three.
    let mut out = Vec::new();
    p.pick(ConnId(1), &common, 1, false, &mut rng, &mut out);
    assert_eq!(out[0].piece, 5);
}

#[test]
fn sequential_strategy_goes_in_index_order() {
    let mut p = picker(6, PickStrategy::Sequential);
    let mut rng = from_seed(1);
    let has = set(6, &[1, 2, 4]);
    p.add_peer(&has);
    let mut out = Vec::new();
    p.pick(ConnId(1), &has, 12, false, &mut rng, &mut out);
    let pieces: Vec<u32> = out.iter().map(|b| b.piece).collect();
    assert_eq!(pieces, vec![1, 1, 1, 1, 2, 2, 2, 2, 4, 4, 4, 4]);
}

#[test]
fn partial_pieces_are_continued_before_new_ones() {
    let mut p = picker(4, PickStrategy::RarestFirst);
    let mut rng = from_seed(3);
    let all = PieceSet::full(4);
    p.add_peer(&all);
    let mut out = Vec::new();
    p.pick(ConnId(1), &all, 2, false, &mut rng, &mut out);
    let first = out[0].piece;
    let mut more = Vec::new();
    p.pick(ConnId(2), &all, 2, false, &mut rng, &mut more);
    assert!(more.iter().all(|b| b.piece == first), "{more:?}");
}

#[test]
fn last_block_is_short() {
    let mut p = picker(2, PickStrategy::Sequential);
    let mut rng = from_seed(3);
    let all = PieceSet::full(2);
    p.add_peer(&all);
    let mut out = Vec::new();
    p.pick(ConnId(1), &all, 8, false, &mut rng, &mut out);
    assert_eq!(out.len(), 8);
    assert_eq!(out[7].length, BLOCK - 100);
    let total: u64 = out.iter().map(|b| u64::from(b.length)).sum();
    assert_eq!(total, geometry(2).total_length);
}

#[test]
fn endgame_duplicates_requests_and_reports_cancels() {
    let mut p = picker(1, PickStrategy::RarestFirst);
    let mut rng = from_seed(3);
    let all = PieceSet::full(1);
    p.add_peer(&all);
    p.add_peer(&all);
    let mut a = Vec::new();
    p.pick(ConnId(1), &all, 10, false, &mut rng, &mut a);
    assert_eq!(a.len(), 4);
    assert!(p.in_endgame());
    let mut b = Vec::new();
    p.pick(ConnId(2), &all, 10, false, &mut rng, &mut b);
    assert_eq!(a, b, "endgame asks the second peer for the same blocks");
    let outcome = p.block_received(ConnId(2), b[0], false);
    assert_eq!(
        outcome,
        BlockOutcome::Accepted {
            cancel: vec![ConnId(1)],
            piece_complete: false
        }
    );
    assert_eq!(
        p.block_received(ConnId(1), a[0], false),
        BlockOutcome::Duplicate
    );
}

#[test]
fn failed_piece_is_requeued_and_contributors_reported() {
    let mut p = picker(1, PickStrategy::RarestFirst);
    let mut rng = from_seed(3);
    let all = PieceSet::full(1);
    p.add_peer(&all);
    let mut out = Vec::new();
    p.pick(ConnId(7), &all, 4, false, &mut rng, &mut out);
    let mut last = None;
    for b in &out {
        last = Some(p.block_received(ConnId(7), *b, false));
    }
    assert_eq!(
        last,
        Some(BlockOutcome::Accepted {
            cancel: vec![],
            piece_complete: true
        })
    );
    let verdict = p.piece_verified(0, false).unwrap();
    assert_eq!(verdict.contributors, vec![(ConnId(7), 4)]);
    assert!(!p.have().contains(0));
    let mut again = Vec::new();
    p.pick(ConnId(8), &all, 4, false, &mut rng, &mut again);
    assert_eq!(again, out, "the failed piece is requested again");
    for b in &again {
        p.block_received(ConnId(8), *b, false);
    }
    p.piece_verified(0, true).unwrap();
    assert!(p.is_complete());
    assert_eq!(p.bytes_left(), 0);
}

#[test]
fn unrequested_and_misaligned_blocks_are_refused() {
    let mut p = picker(2, PickStrategy::RarestFirst);
    let bogus = BlockRef {
        piece: 0,
        begin: 5,
        length: BLOCK,
    };
    assert_eq!(
        p.block_received(ConnId(1), bogus, false),
        BlockOutcome::Unrequested
    );
    let out_of_range = BlockRef {
        piece: 9,
        begin: 0,
        length: BLOCK,
    };
    assert_eq!(
        p.block_received(ConnId(1), out_of_range, false),
        BlockOutcome::Unrequested
    );
    let not_started = BlockRef {
        piece: 1,
        begin: 0,
        length: BLOCK,
    };
    assert_eq!(
        p.block_received(ConnId(1), not_started, false),
        BlockOutcome::Unrequested
    );
}

#[test]
fn dropped_requests_become_missing_again() {
    let mut p = picker(1, PickStrategy::RarestFirst);
    let mut rng = from_seed(3);
    let all = PieceSet::full(1);
    p.add_peer(&all);
    let mut out = Vec::new();
    p.pick(ConnId(1), &all, 4, false, &mut rng, &mut out);
    p.remove_peer(ConnId(1), &all);
    p.add_peer(&all);
    let mut again = Vec::new();
    p.pick(ConnId(2), &all, 4, false, &mut rng, &mut again);
    assert_eq!(again.len(), 4);
    assert!(!p.in_endgame() || again.len() == 4);
}

#[test]
fn a_peer_with_only_pieces_asked_of_others_has_nothing_to_pick() {
    let mut p = picker(3, PickStrategy::RarestFirst);
    let mut rng = from_seed(3);
    let zero = set(3, &[0]);
    let rest = set(3, &[1, 2]);
    p.add_peer(&zero);
    p.add_peer(&zero);
    p.add_peer(&rest);
    assert!(p.can_pick(ConnId(2), &zero));
    let mut out = Vec::new();
    p.pick(ConnId(1), &zero, 4, false, &mut rng, &mut out);
    assert_eq!(out.len(), 4, "every block of piece 0 asked of peer 1");
    assert!(!p.in_endgame());
    // Piece 0 is still wanted, but nothing of it is left to ask peer 2 for.
    assert!(p.is_interesting(&zero));
    assert!(!p.can_pick(ConnId(2), &zero));
    assert!(p.can_pick(ConnId(3), &rest));
    p.request_dropped(ConnId(1), out[2]);
    assert!(
        p.can_pick(ConnId(2), &zero),
        "a dropped block is free again"
    );
    let mut again = Vec::new();
    p.pick(ConnId(2), &zero, 4, false, &mut rng, &mut again);
    assert_eq!(again, vec![out[2]]);
}

#[test]
fn in_endgame_only_duplicates_not_yet_asked_can_be_picked() {
    let mut p = picker(1, PickStrategy::RarestFirst);
    let mut rng = from_seed(3);
    let all = PieceSet::full(1);
    p.add_peer(&all);
    p.add_peer(&all);
    let mut a = Vec::new();
    p.pick(ConnId(1), &all, 10, false, &mut rng, &mut a);
    assert!(p.in_endgame());
    assert!(
        !p.can_pick(ConnId(1), &all),
        "everything is asked of peer 1"
    );
    assert!(p.can_pick(ConnId(2), &all));
    let mut b = Vec::new();
    p.pick(ConnId(2), &all, 10, false, &mut rng, &mut b);
    assert_eq!(b.len(), a.len());
    assert!(!p.can_pick(ConnId(2), &all));
}

#[derive(Clone, Debug)]
enum Op {
    AddPeer(u8, Vec<u16>),
    Have(u8, u16),
    Pick(u8, u8),
    Receive(u8),
    Drop(u8),
    Leave(u8),
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        (0u8..6, proptest::collection::vec(0u16..40, 0..40)).prop_map(|(p, v)| Op::AddPeer(p, v)),
        (0u8..6, 0u16..40).prop_map(|(p, x)| Op::Have(p, x)),
        (0u8..6, 1u8..20).prop_map(|(p, n)| Op::Pick(p, n)),
        (0u8..6).prop_map(Op::Receive),
        (0u8..6).prop_map(Op::Drop),
        (0u8..6).prop_map(Op::Leave),
    ]
}

proptest! {
    /// Over random peer arrivals, haves, picks, arrivals of blocks, drops and
    /// departures: no pick names a piece the peer lacks or one already verified.
    #[test]
    fn picks_respect_peer_pieces_and_completed_pieces(
        ops in proptest::collection::vec(op(), 1..200),
        strategy in prop_oneof![Just(PickStrategy::RarestFirst), Just(PickStrategy::Random), Just(PickStrategy::Sequential)],
        seed in any::<u64>(),
        front_first in any::<bool>(),
    ) {
        const N: u32 = 40;
        let mut p = Picker::new(PickerConfig { strategy, ..PickerConfig::default() }, geometry(N), PieceSet::new(N));
        let mut rng = from_seed(seed);
        let mut peers: BTreeMap<u8, (PieceSet, Vec<BlockRef>)> = BTreeMap::new();
        for op in ops {
            match op {
                Op::AddPeer(id, pieces) => {
                    if let Some((old, _)) = peers.remove(&id) { p.remove_peer(ConnId(id.into()), &old); }
                    let s = set(N, &pieces.iter().map(|&x| u32::from(x)).collect::<Vec<_>>());
                    p.add_peer(&s);
                    peers.insert(id, (s, Vec::new()));
                }
                Op::Have(id, x) => if let Some((s, _)) = peers.get_mut(&id) {
                    if s.insert(u32::from(x)) { p.peer_has(u32::from(x)); }
                },
                Op::Pick(id, n) => if let Some((s, pending)) = peers.get_mut(&id) {
                    let mut out = Vec::new();
                    p.pick(ConnId(id.into()), s, n.into(), front_first, &mut rng, &mut out);
                    prop_assert!(out.len() <= n as usize);
                    for b in &out {
                        prop_assert!(s.contains(b.piece), "picked piece {} the peer lacks", b.piece);
                        prop_assert!(!p.have().contains(b.piece), "picked verified piece {}", b.piece);
                        prop_assert!(!pending.contains(b), "asked the same peer twice for {b:?}");
                    }
                    pending.extend(out);
                },
                Op::Receive(id) => if let Some((_, pending)) = peers.get_mut(&id) {
                    if let Some(b) = pending.pop() {
                        if let BlockOutcome::Accepted { piece_complete: true, .. } = p.block_received(ConnId(id.into()), b, false) {
                            p.piece_verified(b.piece, true);
                        }
                    }
                },
                Op::Drop(id) => if let Some((_, pending)) = peers.get_mut(&id) {
                    if let Some(b) = pending.pop() { p.request_dropped(ConnId(id.into()), b); }
                },
                Op::Leave(id) => if let Some((s, _)) = peers.remove(&id) {
                    p.remove_peer(ConnId(id.into()), &s);
                },
            }
            p.rarity.check_invariants();
        }
    }
}

#[test]
fn piece_obtained_out_of_band_cancels_its_requests() {
    let mut p = picker(2, PickStrategy::Sequential);
    let mut rng = from_seed(3);
    let all = PieceSet::full(2);
    p.add_peer(&all);
    let mut out = Vec::new();
    p.pick(ConnId(1), &all, 2, false, &mut rng, &mut out);
    let (cancels, changed) = p.piece_obtained(0);
    assert!(changed);
    assert_eq!(cancels, vec![(ConnId(1), out[0]), (ConnId(1), out[1])]);
    assert!(p.have().contains(0));
    assert_eq!(p.piece_obtained(0), (vec![], false));
    let (_, changed) = p.piece_obtained(1);
    assert!(changed && p.is_complete());
    let mut more = Vec::new();
    p.pick(ConnId(1), &all, 8, false, &mut rng, &mut more);
    assert!(more.is_empty(), "nothing left to pick");
}

#[test]
fn endgame_waits_for_the_last_blocks() {
    // 8 pieces of 4 blocks: 32 blocks, all requested from peer 1.
    let mut p = Picker::new(
        PickerConfig {
            random_first_pieces: 0,
            endgame_max_bytes: 4 * u64::from(crate::wire::BLOCK_LEN),
            ..PickerConfig::default()
        },
        geometry(8),
        PieceSet::new(8),
    );
    let mut rng = from_seed(3);
    let all = PieceSet::full(8);
    p.add_peer(&all);
    p.add_peer(&all);
    let mut a = Vec::new();
    p.pick(ConnId(1), &all, 64, false, &mut rng, &mut a);
    assert_eq!(a.len(), 32);
    assert!(!p.in_endgame(), "32 blocks outstanding is not the end");
    let mut b = Vec::new();
    p.pick(ConnId(2), &all, 64, false, &mut rng, &mut b);
    assert!(b.is_empty(), "no duplicate requests before endgame: {b:?}");
    for blk in &a[..28] {
        p.block_received(ConnId(1), *blk, false);
    }
    assert_eq!(p.outstanding_blocks(), 4);
    assert!(p.in_endgame());
    p.pick(ConnId(2), &all, 64, false, &mut rng, &mut b);
    assert_eq!(b, a[28..].to_vec(), "only the last four are asked twice");
}

#[test]
fn endgame_with_large_blocks_duplicates_one_block_at_most() {
    // 4 pieces of 2 blocks of 4 MiB: the 256 KiB endgame budget is less
    // than one block, so endgame waits for the very last one.
    let block = 4u32 << 20;
    let geometry = Geometry {
        total_length: 32 << 20,
        piece_length: 8 << 20,
    };
    let mut p = Picker::new(
        PickerConfig {
            random_first_pieces: 0,
            block_len: block,
            ..PickerConfig::default()
        },
        geometry,
        PieceSet::new(4),
    );
    let mut rng = from_seed(3);
    let all = PieceSet::full(4);
    p.add_peer(&all);
    p.add_peer(&all);
    let mut a = Vec::new();
    p.pick(ConnId(1), &all, 64, false, &mut rng, &mut a);
    assert_eq!(a.len(), 8);
    for blk in &a[..6] {
        p.block_received(ConnId(1), *blk, false);
    }
    assert_eq!(p.outstanding_blocks(), 2);
    assert!(
        !p.in_endgame(),
        "two 4 MiB blocks are 8 MiB, beyond the budget"
    );
    let mut b = Vec::new();
    p.pick(ConnId(2), &all, 64, false, &mut rng, &mut b);
    assert!(b.is_empty(), "no duplicate yet: {b:?}");
    p.block_received(ConnId(1), a[6], false);
    assert!(
        p.in_endgame(),
        "the last block is always allowed a second copy"
    );
    p.pick(ConnId(2), &all, 64, false, &mut rng, &mut b);
    assert_eq!(b, vec![a[7]]);
}

#[test]
fn a_late_block_after_a_cancel_is_taken_and_the_new_request_cancelled() {
    let mut p = picker(1, PickStrategy::RarestFirst);
    let mut rng = from_seed(3);
    let all = PieceSet::full(1);
    p.add_peer(&all);
    p.add_peer(&all);
    let mut a = Vec::new();
    p.pick(ConnId(1), &all, 1, false, &mut rng, &mut a);
    // Peer 1 timed out: the block goes to peer 2.
    p.request_dropped(ConnId(1), a[0]);
    let mut b = Vec::new();
    p.pick(ConnId(2), &all, 1, false, &mut rng, &mut b);
    assert_eq!(a, b);
    // Without the late flag a block nobody asked this peer for is refused ...
    assert_eq!(
        p.block_received(ConnId(1), a[0], false),
        BlockOutcome::Unrequested
    );
    // ... with it, peer 1's copy wins and peer 2's request is cancelled.
    assert_eq!(
        p.block_received(ConnId(1), a[0], true),
        BlockOutcome::Accepted {
            cancel: vec![ConnId(2)],
            piece_complete: false
        }
    );
}

#[test]
fn priority_pieces_start_first_rarest_first() {
    let mut p = picker(8, PickStrategy::RarestFirst);
    let mut rng = from_seed(3);
    let all = set(8, &[0, 1, 2, 3, 4, 5, 6, 7]);
    p.add_peer(&all);
    // Piece 9 is outside the image; pieces 6 and 2 the peer has and nobody
    // started: one of them first, then the other, before any other piece.
    p.set_priority(vec![9, 6, 2]);
    let mut out = Vec::new();
    p.pick(ConnId(1), &all, 4, false, &mut rng, &mut out);
    let first = out[0].piece;
    assert!(first == 6 || first == 2, "{out:?}");
    assert!(out.iter().all(|b| b.piece == first), "{out:?}");
    out.clear();
    p.pick(ConnId(1), &all, 8, false, &mut rng, &mut out);
    // The first piece's blocks are all requested: the other comes next.
    let second = 8 - first;
    assert_eq!(out.first().map(|b| b.piece), Some(second), "{out:?}");
    // Equally rare: one of the list's first four, whatever the draw, and
    // not always the same one (readers on several machines spread).
    let mut firsts = std::collections::BTreeSet::new();
    for seed in 0..32 {
        let mut p = picker(8, PickStrategy::RarestFirst);
        p.add_peer(&all);
        p.set_priority(vec![7, 1, 4, 0, 5, 6, 2, 3]);
        out.clear();
        p.pick(ConnId(1), &all, 1, false, &mut from_seed(seed), &mut out);
        assert!([7, 1, 4, 0].contains(&out[0].piece), "seed {seed}: {out:?}");
        firsts.insert(out[0].piece);
    }
    assert!(firsts.len() > 1, "{firsts:?}");
    // Among priority pieces, the rarest goes first: a second peer holds
    // piece 4, so piece 3 (only the first peer has it) is started before it.
    let mut r = picker(8, PickStrategy::RarestFirst);
    r.add_peer(&all);
    r.add_peer(&set(8, &[4]));
    r.set_priority(vec![4, 3]);
    out.clear();
    r.pick(ConnId(1), &all, 1, false, &mut rng, &mut out);
    assert_eq!(out[0].piece, 3, "{out:?}");
    // A peer without the priority pieces gets the strategy's choice.
    let mut q = picker(8, PickStrategy::Sequential);
    q.add_peer(&all);
    q.set_priority(vec![5]);
    out.clear();
    q.pick(ConnId(2), &set(8, &[1, 3]), 1, false, &mut rng, &mut out);
    assert_eq!(out[0].piece, 1);
}

/// The pieces started, in order, when `peer`'s every block is asked one
/// piece (4 blocks) at a time and each piece is received and verified.
fn pieces_in_pick_order(p: &mut Picker, has: &PieceSet, front_first: bool, seed: u64) -> Vec<u32> {
    let mut rng = from_seed(seed);
    let mut order = Vec::new();
    loop {
        let mut out = Vec::new();
        p.pick(ConnId(1), has, 4, front_first, &mut rng, &mut out);
        let Some(first) = out.first() else {
            return order;
        };
        order.push(first.piece);
        for b in &out {
            p.block_received(ConnId(1), *b, false);
        }
        p.piece_verified(first.piece, true);
    }
}

#[test]
fn front_first_keeps_rarity_but_breaks_ties_near_the_front() {
    // 200 pieces of 64 KiB and a window of 512 KiB: 8 pieces.
    let all = set(200, &(0..200).collect::<Vec<_>>());
    let config = PickerConfig {
        random_first_pieces: 0,
        in_order_window_bytes: 8 * 4 * u64::from(BLOCK),
        ..PickerConfig::default()
    };
    let mut p = Picker::new(config, geometry(200), PieceSet::new(200));
    p.add_peer(&all);
    let order = pieces_in_pick_order(&mut p, &all, true, 5);
    assert_eq!(order.len(), 200);
    // Each pick is among the 8 lowest pieces not yet started.
    let mut started = [false; 200];
    for &piece in &order {
        let front: Vec<u32> = (0..200).filter(|&q| !started[q as usize]).take(8).collect();
        assert!(front.contains(&piece), "{piece} not in {front:?}");
        started[piece as usize] = true;
    }
    // Without it, the same seed scatters picks over the whole image.
    let mut q = picker(200, PickStrategy::RarestFirst);
    q.add_peer(&all);
    let scattered = pieces_in_pick_order(&mut q, &all, false, 5);
    assert!(
        scattered[..20].iter().any(|&x| x >= 50),
        "{:?}",
        &scattered[..20]
    );

    // Rarity still decides first: a rarer piece at the back goes before the front.
    let mut r = picker(200, PickStrategy::RarestFirst);
    r.add_peer(&all);
    r.add_peer(&set(200, &(0..199).collect::<Vec<_>>()));
    let mut rng = from_seed(9);
    let mut out = Vec::new();
    r.pick(ConnId(1), &all, 1, true, &mut rng, &mut out);
    assert_eq!(out[0].piece, 199);
}
