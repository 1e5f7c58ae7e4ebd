//! Behaviour that stock BitTorrent clients rely on: late bitfields read as
//! haves, and a super-seeding seed that does not call itself upload-only.

use core::net::SocketAddr;

use super::drain;
use crate::node::{Input, Node, NodeConfig, Output};
use crate::pieceset::PieceSet;
use crate::time::Instant;
use crate::wire::{ExtendedHandshake, Handshake, Message};
use crate::{ConnId, Id20};

const INFO: [u8; 20] = [1; 20];

/// A node with `have` of 8 pieces of 256 KiB and `super_seed` set.
fn node(have: PieceSet, super_seed: bool) -> Node {
    let g = crate::metainfo::Geometry {
        total_length: 8 << 18,
        piece_length: 1 << 18,
    };
    let mut config = NodeConfig::new(Id20::new(INFO), Id20::new([2; 20]), g);
    config.super_seed = super_seed;
    Node::new(config, have, 1, Instant::ZERO)
}

/// Connect peer `n` (inbound, extended handshake) and return what the node sent.
fn connect(node: &mut Node, n: u8) -> Vec<Output> {
    let conn = ConnId(u64::from(n));
    let addr: SocketAddr = format!("127.0.0.{n}:7000").parse().unwrap();
    let identity = Some(format!("peer-{n}"));
    let connected = Input::Connected {
        conn,
        addr,
        outbound: false,
        identity,
    };
    node.handle_input(Instant::ZERO, connected).unwrap();
    let handshake = Handshake {
        info_hash: Id20::new(INFO),
        peer_id: Id20::new([10 + n; 20]),
        extended: true,
        fast: false,
    };
    node.handle_input(Instant::ZERO, Input::Handshake { conn, handshake })
        .unwrap();
    drain(node)
}

fn send(node: &mut Node, n: u8, msg: Message) {
    let conn = ConnId(u64::from(n));
    node.handle_input(Instant::ZERO, Input::Message { conn, msg })
        .unwrap();
    drain(node);
}

fn bitfield(bits: u8) -> Message {
    Message::Bitfield(vec![bits].into())
}

/// The picker's availability of every piece equals the count of connected
/// peers whose piece set holds it.
fn assert_availability_is_sum_of_peers(node: &Node) {
    for p in 0..8 {
        let holders = node
            .sessions
            .values()
            .filter(|s| s.remote_has.contains(p))
            .count() as u32;
        assert_eq!(node.picker.availability(p), holders, "piece {p}");
    }
}

#[test]
fn late_bitfield_adds_haves_without_counting_a_piece_twice() {
    let mut n = node(PieceSet::new(8), false);
    connect(&mut n, 1);
    connect(&mut n, 2);
    send(&mut n, 1, bitfield(0b1100_0000));
    send(&mut n, 2, Message::Have(0));
    send(&mut n, 1, Message::Have(5));
    // aria2 style: a second bitfield instead of haves, repeating old pieces.
    send(&mut n, 1, bitfield(0b1110_0100));
    send(&mut n, 2, bitfield(0b1000_0001));
    assert_eq!(n.peer_count(), 2, "late bitfields closed a connection");
    assert_availability_is_sum_of_peers(&n);
    assert_eq!(n.picker.availability(0), 2);
    assert_eq!(n.picker.availability(2), 1);
    assert_eq!(n.picker.availability(7), 1);
    // A malformed one still closes the connection, and its pieces leave with it.
    send(&mut n, 2, Message::Bitfield(vec![0, 0].into()));
    assert_eq!(n.peer_count(), 1);
    assert_availability_is_sum_of_peers(&n);
    assert_eq!(n.picker.availability(7), 0);
}

fn extended_handshake(outs: &[Output]) -> ExtendedHandshake {
    outs.iter()
        .find_map(|o| match o {
            Output::Transmit {
                msg: Message::ExtendedHandshake(ext),
                ..
            } => Some(ext.clone()),
            _ => None,
        })
        .expect("an extended handshake was sent")
}

#[test]
fn super_seed_does_not_say_upload_only_but_a_plain_seed_does() {
    let mut hub = node(PieceSet::full(8), true);
    let ext = extended_handshake(&connect(&mut hub, 1));
    assert!(!ext.upload_only, "libtorrent would drop this super-seed");
    assert!(ext.super_seeding);
    let mut seed = node(PieceSet::full(8), false);
    let ext = extended_handshake(&connect(&mut seed, 1));
    assert!(ext.upload_only && !ext.super_seeding);
    let mut leecher = node(PieceSet::new(8), true);
    let ext = extended_handshake(&connect(&mut leecher, 1));
    assert!(!ext.upload_only && !ext.super_seeding);
}

#[test]
fn peers_treat_a_super_seed_as_a_seed_and_tell_it_their_haves() {
    let mut n = node(PieceSet::new(8), false);
    connect(&mut n, 1);
    connect(&mut n, 2);
    let ext = ExtendedHandshake {
        super_seeding: true,
        ..Default::default()
    };
    send(&mut n, 1, Message::ExtendedHandshake(ext));
    send(&mut n, 2, Message::ExtendedHandshake(Default::default()));
    // Both advertise piece 3; we then get it (from the web seed, say).
    send(&mut n, 1, Message::Have(3));
    send(&mut n, 2, Message::Have(3));
    assert!(n.sessions[&ConnId(1)].upload_only);
    assert!(!n.sessions[&ConnId(2)].upload_only);
    n.handle_input(Instant::ZERO, Input::PieceObtained { piece: 3 })
        .unwrap();
    let told: Vec<ConnId> = drain(&mut n)
        .into_iter()
        .filter_map(|o| match o {
            Output::Transmit {
                conn,
                msg: Message::Have(3),
            } => Some(conn),
            _ => None,
        })
        .collect();
    // The super-seed watches haves to know its piece spread; a leecher that
    // has the piece needs no have.
    assert_eq!(told, vec![ConnId(1)]);
}
