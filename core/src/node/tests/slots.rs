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
    };
    node.handle_input(Instant::ZERO, Input::Handshake { conn, handshake })
        .unwrap();
    drain(node);
    node.check_invariants().unwrap();
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
