//! Upload slots and `Node::check_invariants` on a hand-driven seed.

use super::drain;
use crate::node::{Input, Node, NodeConfig, Output};
use crate::pieceset::PieceSet;
use crate::time::Instant;
use crate::wire::{Handshake, Message};
use crate::{ConnId, Id20};
use core::net::SocketAddr;

const INFO: [u8; 20] = [1; 20];

/// A (non-super) seed of 16 pieces with one upload slot and no optimistic one.
fn one_slot_seed() -> Node {
    let g = crate::metainfo::Geometry {
        total_length: 1 << 22,
        piece_length: 1 << 18,
    };
    let mut config = NodeConfig::new(Id20::new(INFO), Id20::new([2; 20]), g);
    config.choker.slots = 1;
    config.choker.optimistic_slots = 0;
    config.super_seed = false;
    Node::new(config, PieceSet::full(16), 1, Instant::ZERO)
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

/// Feed `msg` from `conn`; the choke/unchoke messages the node sends back, by connection.
fn say(node: &mut Node, conn: u64, msg: Message) -> Vec<(u64, bool)> {
    let input = Input::Message {
        conn: ConnId(conn),
        msg,
    };
    node.handle_input(Instant::ZERO, input).unwrap();
    let outs = drain(node);
    node.check_invariants().unwrap();
    outs.iter()
        .filter_map(|o| match o {
            Output::Transmit {
                conn,
                msg: Message::Choke,
            } => Some((conn.0, true)),
            Output::Transmit {
                conn,
                msg: Message::Unchoke,
            } => Some((conn.0, false)),
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
