//! Upload slots and `Node::check_invariants` on a hand-driven seed.

use super::drain;
use crate::node::{Input, Node, NodeConfig, Output};
use crate::pieceset::PieceSet;
use crate::time::Instant;
use crate::wire::{Handshake, Message};
use crate::{ConnId, Id20};
use core::net::SocketAddr;

const INFO: [u8; 20] = [1; 20];

/// 16 pieces of 256 KiB, one upload slot and no optimistic one, no super-seeding.
fn one_slot_config() -> NodeConfig {
    let g = crate::metainfo::Geometry {
        total_length: 1 << 22,
        piece_length: 1 << 18,
    };
    let mut config = NodeConfig::new(Id20::new(INFO), Id20::new([2; 20]), g);
    config.choker.slots = 1;
    config.choker.optimistic_slots = 0;
    config.super_seed = false;
    config
}

/// A (non-super) seed of 16 pieces with one upload slot and no optimistic one.
fn one_slot_seed() -> Node {
    Node::new(one_slot_config(), PieceSet::full(16), 1, Instant::ZERO)
}

fn connect(node: &mut Node, conn: u64) {
    connect_with(node, conn, false);
}

/// Connect `conn`, which offers the BEP 6 fast extension when `fast`; what
/// the node sends it first.
fn connect_with(node: &mut Node, conn: u64, fast: bool) -> Vec<Message> {
    let addr: SocketAddr = format!("127.0.0.{conn}:7000").parse().unwrap();
    let conn = ConnId(conn);
    let input = Input::Connected {
        conn,
        addr,
        outbound: false,
        identity: Some(format!("peer-{}", conn.0)),
    };
    node.handle_input(Instant::ZERO, input).unwrap();
    let handshake = Handshake {
        info_hash: Id20::new(INFO),
        peer_id: Id20::new([10 + conn.0 as u8; 20]),
        extended: false,
        fast,
    };
    node.handle_input(Instant::ZERO, Input::Handshake { conn, handshake })
        .unwrap();
    let first = drain(node)
        .into_iter()
        .filter_map(|o| match o {
            Output::Transmit { msg, .. } => Some(msg),
            _ => None,
        })
        .collect();
    node.check_invariants().unwrap();
    first
}

/// Feed `msg` from `conn` at time zero; the choke/unchoke messages the node
/// sends back, by connection.
fn say(node: &mut Node, conn: u64, msg: Message) -> Vec<(u64, bool)> {
    let input = Input::Message {
        conn: ConnId(conn),
        msg,
    };
    at(node, 0, input)
}

/// Feed `input` at `at_ms` (the node's clock never goes back); the
/// choke/unchoke messages the node sends back, by connection.
fn at(node: &mut Node, at_ms: u64, input: Input) -> Vec<(u64, bool)> {
    transmitted(node, at_ms, input)
        .into_iter()
        .filter_map(|(conn, msg)| match msg {
            Message::Choke => Some((conn, true)),
            Message::Unchoke => Some((conn, false)),
            _ => None,
        })
        .collect()
}

/// Feed `input` at `at_ms`; every message the node sends back, by connection.
fn transmitted(node: &mut Node, at_ms: u64, input: Input) -> Vec<(u64, Message)> {
    node.handle_input(Instant::from_micros(at_ms * 1000), input)
        .unwrap();
    let outs = drain(node);
    node.check_invariants().unwrap();
    outs.into_iter()
        .filter_map(|o| match o {
            Output::Transmit { conn, msg } => Some((conn.0, msg)),
            _ => None,
        })
        .collect()
}

/// A peer unchoked, then not interested, gives its slot to the next peer;
/// when it is interested again it waits (choked) instead of taking a second
/// slot. Before the fix it kept its unchoke: two peers served on one slot
/// until the next rechoke (found by sim/tests/fault_property.rs).
#[test]
fn a_peer_that_regains_interest_does_not_take_a_second_slot() {
    let mut node = one_slot_seed();
    connect(&mut node, 1);
    connect(&mut node, 2);
    assert_eq!(say(&mut node, 1, Message::Interested), vec![(1, false)]);
    assert_eq!(say(&mut node, 2, Message::Interested), vec![]);
    // Peer 1 loses interest: its slot goes to peer 2 at once.
    assert_eq!(say(&mut node, 1, Message::NotInterested), vec![(2, false)]);
    // Peer 1 wants pieces again: the slot is taken, so it is choked.
    assert_eq!(say(&mut node, 1, Message::Interested), vec![(1, true)]);
}

/// The checker finds a broken count (here, availability raised by hand).
#[test]
fn check_invariants_reports_an_availability_mismatch() {
    let mut node = one_slot_seed();
    connect(&mut node, 1);
    assert_eq!(node.check_invariants(), Ok(()));
    node.picker.peer_has(3);
    let err = node.check_invariants().unwrap_err();
    assert!(err.contains("availability of piece 3"), "{err}");
}

/// ... and bytes that do not add up.
#[test]
fn check_invariants_reports_unaccounted_bytes() {
    let mut node = one_slot_seed();
    node.stats.bytes_down += 1;
    let err = node.check_invariants().unwrap_err();
    assert!(err.starts_with("bytes:"), "{err}");
}

/// An uplink left idle by a peer that holds the slot and asks for nothing
/// (everything it lacks it fetches elsewhere) goes to the peer that waits,
/// instead of a second slot; once the holder asks for blocks, an idle uplink
/// widens as before.
#[test]
fn a_slot_whose_holder_asks_nothing_goes_to_a_waiting_peer() {
    let mut node = one_slot_seed();
    node.config.upload_capacity_bps = Some(1_000_000);
    connect(&mut node, 1);
    connect(&mut node, 2);
    assert_eq!(say(&mut node, 1, Message::Interested), vec![(1, false)]);
    assert_eq!(say(&mut node, 2, Message::Interested), vec![]);
    // Silent for 1 s (the floor; the slot carries a 256 KiB piece in
    // 0.26 s): its slot goes to peer 2, which waited longest.
    assert_eq!(
        at(&mut node, 1_000, Input::Timeout),
        vec![(1, true), (2, false)]
    );
    // Peer 2 asks for a block: it is busy, so the still idle uplink opens a
    // second slot, for peer 1.
    let block = crate::wire::BlockRef {
        piece: 0,
        begin: 0,
        length: 16384,
    };
    let request = Input::Message {
        conn: ConnId(2),
        msg: Message::Request(block),
    };
    assert_eq!(at(&mut node, 1_500, request), vec![]);
    assert_eq!(at(&mut node, 2_000, Input::Timeout), vec![(1, false)]);
}

/// While a silent holder has had less than a piece's time through its slot
/// (2.6 s at 100 kB/s), it keeps the slot and the idle uplink widens.
#[test]
fn a_holder_keeps_its_slot_for_a_piece_time() {
    let mut node = one_slot_seed();
    node.config.upload_capacity_bps = Some(100_000);
    connect(&mut node, 1);
    connect(&mut node, 2);
    connect(&mut node, 3);
    assert_eq!(say(&mut node, 1, Message::Interested), vec![(1, false)]);
    assert_eq!(say(&mut node, 2, Message::Interested), vec![]);
    assert_eq!(at(&mut node, 1_000, Input::Timeout), vec![(2, false)]);
    assert_eq!(say(&mut node, 3, Message::Interested), vec![]);
    // At 3 s peer 1 has been silent for 3 s, peer 2 for 2 s: only peer 1
    // gives its slot to peer 3.
    assert_eq!(
        at(&mut node, 3_000, Input::Timeout),
        vec![(1, true), (3, false)]
    );
}

/// A leecher of 16 pieces of 256 KiB that knows no site.
fn leecher() -> Node {
    Node::new(one_slot_config(), PieceSet::new(16), 1, Instant::ZERO)
}

/// Feed `msg` from `conn` at time zero; every message the node sends back.
fn sent(node: &mut Node, conn: u64, msg: Message) -> Vec<(u64, Message)> {
    let input = Input::Message {
        conn: ConnId(conn),
        msg,
    };
    transmitted(node, 0, input)
}

/// A peer that has only a piece we already ask another peer for in full
/// hears NotInterested, so the slot it gave us goes to someone it can
/// serve; when those requests are dropped (the other peer choked us) we ask
/// it again, and for exactly the dropped blocks.
#[test]
fn interest_follows_what_there_is_to_ask_a_peer_for() {
    let mut node = leecher();
    connect(&mut node, 1);
    connect(&mut node, 2);
    assert!(sent(&mut node, 1, Message::Have(0)).contains(&(1, Message::Interested)));
    assert!(sent(&mut node, 2, Message::Have(0)).contains(&(2, Message::Interested)));
    // Peer 1 unchokes us: all 16 blocks of piece 0 go to it.
    let asked = sent(&mut node, 1, Message::Unchoke);
    let requests = asked
        .iter()
        .filter(|(c, m)| *c == 1 && matches!(m, Message::Request(_)))
        .count();
    assert_eq!(requests, 16, "{asked:?}");
    // Peer 2 unchokes us too: nothing is left to ask it for.
    assert_eq!(
        sent(&mut node, 2, Message::Unchoke),
        vec![(2, Message::NotInterested)]
    );
    // Peer 1 chokes us: its requests are dropped, and peer 2 gets them.
    let after = sent(&mut node, 1, Message::Choke);
    assert_eq!(after.first(), Some(&(2, Message::Interested)), "{after:?}");
    let again = after
        .iter()
        .filter(|(c, m)| *c == 2 && matches!(m, Message::Request(b) if b.piece == 0))
        .count();
    assert_eq!(again, 16, "{after:?}");
    // A piece only peer 2 has that we want keeps our interest in it.
    assert!(
        !sent(&mut node, 2, Message::Have(1)).contains(&(2, Message::NotInterested)),
        "peer 2 still has blocks for us"
    );
}

fn block(piece: u32, i: u32) -> crate::wire::BlockRef {
    crate::wire::BlockRef {
        piece,
        begin: i * crate::wire::BLOCK_LEN,
        length: crate::wire::BLOCK_LEN,
    }
}

/// Under the fast extension (BEP 6) a seed says what it has with HaveAll,
/// and when it chokes a peer it rejects each request it drops, and each one
/// that arrives while the peer is choked: the peer learns exactly which
/// requests it must place elsewhere. A plain peer is told nothing.
#[test]
fn a_fast_peer_hears_which_of_its_requests_a_choke_drops() {
    let mut node = one_slot_seed();
    assert_eq!(connect_with(&mut node, 1, true), vec![Message::HaveAll]);
    assert!(matches!(
        connect_with(&mut node, 2, false).as_slice(),
        [Message::Bitfield(_)]
    ));
    assert_eq!(say(&mut node, 1, Message::Interested), vec![(1, false)]);
    let mut served = Vec::new();
    for i in 0..12 {
        let input = Input::Message {
            conn: ConnId(1),
            msg: Message::Request(block(0, i)),
        };
        node.handle_input(Instant::ZERO, input).unwrap();
        for o in drain(&mut node) {
            if let Output::SendBlock { block, .. } = o {
                served.push(block);
            }
        }
    }
    assert!(!served.is_empty() && served.len() < 12, "{served:?}");
    // Peer 1 leaves its slot to peer 2, then wants it back: it is choked.
    assert_eq!(say(&mut node, 2, Message::Interested), vec![]);
    assert_eq!(say(&mut node, 1, Message::NotInterested), vec![(2, false)]);
    let out = sent(&mut node, 1, Message::Interested);
    assert_eq!(out.first(), Some(&(1, Message::Choke)), "{out:?}");
    let rejected = blocks_in(&out, 1, |m| match m {
        Message::Reject(b) => Some(*b),
        _ => None,
    });
    let queued: Vec<_> = (0..12)
        .map(|i| block(0, i))
        .filter(|b| !served.contains(b))
        .collect();
    assert_eq!(rejected, queued, "every dropped request, none served");
    // A request that crossed the choke is rejected too.
    assert_eq!(
        sent(&mut node, 1, Message::Request(block(1, 0))),
        vec![(1, Message::Reject(block(1, 0)))]
    );
    // Peer 2 (no fast extension) is choked in the plain way: no rejects.
    assert_eq!(say(&mut node, 2, Message::NotInterested), vec![(1, false)]);
    assert_eq!(say(&mut node, 2, Message::Request(block(2, 0))), vec![]);
}

/// A fast leecher keeps its requests when choked: a peer that had not read
/// them yet may still serve them after unchoking us, and asking someone else
/// meanwhile would fetch those blocks twice. Only a reject frees a request.
#[test]
fn a_fast_leecher_places_elsewhere_only_what_was_rejected() {
    let mut node = leecher();
    connect_with(&mut node, 1, true);
    connect_with(&mut node, 2, true);
    sent(&mut node, 1, Message::Have(0));
    sent(&mut node, 2, Message::Have(0));
    let asked = sent(&mut node, 1, Message::Unchoke);
    let to_1 = requests_in(&asked, 1);
    assert_eq!(to_1.len(), 16, "{asked:?}");
    assert_eq!(
        sent(&mut node, 2, Message::Unchoke),
        vec![(2, Message::NotInterested)]
    );
    // The choke alone moves nothing to peer 2.
    assert!(sent(&mut node, 1, Message::Choke).is_empty());
    // Each reject sends exactly its block to peer 2, at once.
    let out = sent(&mut node, 1, Message::Reject(to_1[3]));
    assert_eq!(out.first(), Some(&(2, Message::Interested)), "{out:?}");
    assert_eq!(requests_in(&out, 2), vec![to_1[3]], "{out:?}");
    let out = sent(&mut node, 1, Message::Reject(to_1[7]));
    assert_eq!(requests_in(&out, 2), vec![to_1[7]], "{out:?}");
}

/// The blocks of the messages to `conn` that `pick` names.
fn blocks_in(
    out: &[(u64, Message)],
    conn: u64,
    pick: impl Fn(&Message) -> Option<crate::wire::BlockRef>,
) -> Vec<crate::wire::BlockRef> {
    out.iter()
        .filter(|(c, _)| *c == conn)
        .filter_map(|(_, m)| pick(m))
        .collect()
}

/// The blocks requested of `conn`.
fn requests_in(out: &[(u64, Message)], conn: u64) -> Vec<crate::wire::BlockRef> {
    blocks_in(out, conn, |m| match m {
        Message::Request(b) => Some(*b),
        _ => None,
    })
}
