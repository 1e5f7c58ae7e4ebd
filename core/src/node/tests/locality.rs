//! Site locality: a node told its site asks far peers only for what its
//! site lacks, hands the rest back to its site, and tells its site to peers.

use core::net::SocketAddr;

use super::{drain, tracker_reply};
use crate::node::{Input, Node, NodeConfig, Output};
use crate::pieceset::PieceSet;
use crate::time::Instant;
use crate::wire::{BlockRef, ExtendedHandshake, Handshake, Message};
use crate::{ConnId, Id20};

const INFO: [u8; 20] = [1; 20];

/// A downloading node of 8 pieces of 256 KiB that the tracker put in "b".
fn node_in_b() -> Node {
    let g = crate::metainfo::Geometry {
        total_length: 8 << 18,
        piece_length: 1 << 18,
    };
    let config = NodeConfig::new(Id20::new(INFO), Id20::new([2; 20]), g);
    let mut n = Node::new(config, PieceSet::new(8), 1, Instant::ZERO);
    n.handle_input(Instant::ZERO, Input::Start).unwrap();
    drain(&mut n);
    let mut reply = tracker_reply(&[]);
    reply.site = Some("b".into());
    n.handle_input(Instant::ZERO, Input::Announced(Ok(reply)))
        .unwrap();
    drain(&mut n);
    n
}

/// Peer `n` dials us, names `site` and has the pieces of `bits`; it unchokes us.
fn peer(node: &mut Node, n: u8, site: &str, bits: u8) -> Vec<Output> {
    let conn = ConnId(u64::from(n));
    let addr: SocketAddr = format!("127.0.0.{n}:7000").parse().unwrap();
    let input = Input::Connected {
        conn,
        addr,
        outbound: false,
        identity: Some(format!("peer-{n}")),
    };
    node.handle_input(Instant::ZERO, input).unwrap();
    let handshake = Handshake {
        info_hash: Id20::new(INFO),
        peer_id: Id20::new([10 + n; 20]),
        extended: true,
        fast: false,
    };
    node.handle_input(Instant::ZERO, Input::Handshake { conn, handshake })
        .unwrap();
    let mut outs = drain(node);
    let ext = ExtendedHandshake {
        site: Some(site.into()),
        ..Default::default()
    };
    for msg in [
        Message::ExtendedHandshake(ext),
        Message::Bitfield(vec![bits].into()),
        Message::Unchoke,
    ] {
        node.handle_input(Instant::ZERO, Input::Message { conn, msg })
            .unwrap();
        outs.extend(drain(node));
    }
    outs
}

fn requested(outs: &[Output], n: u8) -> Vec<BlockRef> {
    outs.iter()
        .filter_map(|o| match o {
            Output::Transmit {
                conn,
                msg: Message::Request(b),
            } if *conn == ConnId(u64::from(n)) => Some(*b),
            _ => None,
        })
        .collect()
}

#[test]
fn far_peers_are_asked_only_for_what_the_site_lacks() {
    let mut n = node_in_b();
    assert_eq!(n.site(), Some("b"));
    // A same-site peer with pieces 0-3, then a far one with everything.
    let near = peer(&mut n, 1, "b", 0b1111_0000);
    assert!(!requested(&near, 1).is_empty());
    let far = peer(&mut n, 2, "a", 0b1111_1111);
    let asked = requested(&far, 2);
    assert!(!asked.is_empty());
    assert!(asked.iter().all(|b| b.piece >= 4), "{asked:?}");
    assert!(n.sessions[&ConnId(2)].far && !n.sessions[&ConnId(1)].far);
    // Our extended handshake tells our site.
    let ours = far.iter().find_map(|o| match o {
        Output::Transmit {
            msg: Message::ExtendedHandshake(e),
            ..
        } => Some(e.site.clone()),
        _ => None,
    });
    assert_eq!(ours, Some(Some("b".to_owned())));
}

#[test]
fn a_piece_the_site_gains_is_cancelled_across_the_link() {
    let mut n = node_in_b();
    let far = peer(&mut n, 2, "a", 0b1111_1111);
    let asked = requested(&far, 2);
    let piece = asked[0].piece;
    // A same-site peer announces that piece: the far requests for it go.
    peer(&mut n, 1, "b", 0);
    let conn = ConnId(1);
    let msg = Message::Have(piece);
    n.handle_input(Instant::ZERO, Input::Message { conn, msg })
        .unwrap();
    let outs = drain(&mut n);
    let cancelled: Vec<BlockRef> = outs
        .iter()
        .filter_map(|o| match o {
            Output::Transmit {
                conn,
                msg: Message::Cancel(b),
            } if *conn == ConnId(2) => Some(*b),
            _ => None,
        })
        .collect();
    let of_piece = asked.iter().filter(|b| b.piece == piece).count();
    assert_eq!(cancelled.len(), of_piece, "{cancelled:?}");
    assert!(cancelled.iter().all(|b| b.piece == piece));
    assert!(n.sessions[&ConnId(2)]
        .requests_out
        .iter()
        .all(|(b, _)| b.piece != piece));
    // ... and are asked of the same-site peer instead.
    assert!(requested(&outs, 1).iter().any(|b| b.piece == piece));
}

#[test]
fn without_a_site_every_peer_is_near() {
    let g = crate::metainfo::Geometry {
        total_length: 8 << 18,
        piece_length: 1 << 18,
    };
    let config = NodeConfig::new(Id20::new(INFO), Id20::new([2; 20]), g);
    let mut n = Node::new(config, PieceSet::new(8), 1, Instant::ZERO);
    peer(&mut n, 1, "b", 0b1111_0000);
    let outs = peer(&mut n, 2, "a", 0b1111_1111);
    assert!(n.site().is_none());
    assert!(!n.sessions[&ConnId(2)].far);
    assert!(requested(&outs, 2).iter().any(|b| b.piece < 4));
}
