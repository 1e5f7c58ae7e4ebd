use super::*;

fn established(pieces: u32) -> Session {
    let mut s = Session::new(
        ConnId(1),
        "127.0.0.1:1".parse().unwrap(),
        true,
        None,
        pieces,
        Instant::ZERO,
    );
    s.phase = Phase::Established;
    s
}

fn feed(s: &mut Session, now: Instant, msg: Message) -> Result<SessionEvent, Violation> {
    s.on_message(
        now,
        msg,
        &SessionConfig::default(),
        |_| true,
        |_| 256 * 1024,
    )
}

#[test]
fn messages_before_handshake_are_violations() {
    let mut s = established(4);
    s.phase = Phase::AwaitingHandshake;
    assert_eq!(
        feed(&mut s, Instant::ZERO, Message::Interested),
        Err(Violation::BeforeHandshake("interested"))
    );
}

#[test]
fn first_bitfield_may_follow_the_extended_handshake() {
    let mut s = established(8);
    feed(
        &mut s,
        Instant::ZERO,
        Message::ExtendedHandshake(Default::default()),
    )
    .unwrap();
    assert_eq!(
        feed(
            &mut s,
            Instant::ZERO,
            Message::Bitfield(vec![0b1010_0000].into())
        ),
        Ok(SessionEvent::Bitfield)
    );
    assert_eq!(s.remote_has.iter().collect::<Vec<_>>(), vec![0, 2]);
}

#[test]
fn late_bitfield_counts_only_new_pieces_and_takes_none_back() {
    let mut s = established(8);
    feed(
        &mut s,
        Instant::ZERO,
        Message::Bitfield(vec![0b1010_0000].into()),
    )
    .unwrap();
    feed(&mut s, Instant::ZERO, Message::Have(7)).unwrap();
    // Pieces 0 and 2 are known, 1 and 3 are new; 7 is missing from this one
    // but a bitfield never takes a piece back.
    assert_eq!(
        feed(
            &mut s,
            Instant::ZERO,
            Message::Bitfield(vec![0b1111_0000].into())
        ),
        Ok(SessionEvent::Haves(vec![1, 3]))
    );
    assert_eq!(s.remote_has.iter().collect::<Vec<_>>(), vec![0, 1, 2, 3, 7]);
    // Nothing new: nothing for the node to do.
    assert_eq!(
        feed(
            &mut s,
            Instant::ZERO,
            Message::Bitfield(vec![0b0101_0000].into())
        ),
        Ok(SessionEvent::None)
    );
    // A bitfield after a have but as the peer's first bitfield is haves too.
    let mut t = established(8);
    feed(&mut t, Instant::ZERO, Message::Have(1)).unwrap();
    assert_eq!(
        feed(&mut t, Instant::ZERO, Message::Bitfield(vec![0xff].into())),
        Ok(SessionEvent::Haves(vec![0, 2, 3, 4, 5, 6, 7]))
    );
    assert!(t.remote_has.is_full());
}

#[test]
fn malformed_bitfields_are_refused_early_or_late() {
    for late in [false, true] {
        let mut s = established(6);
        if late {
            feed(&mut s, Instant::ZERO, Message::Have(0)).unwrap();
        }
        let before = s.remote_has.clone();
        for bad in [vec![0b1111_1110], vec![0b1000_0000, 0]] {
            assert_eq!(
                feed(&mut s, Instant::ZERO, Message::Bitfield(bad.into())),
                Err(Violation::BadBitfield { pieces: 6 }),
                "late: {late}"
            );
            assert_eq!(s.remote_has, before, "a refused bitfield changes nothing");
        }
    }
}

#[test]
fn have_out_of_range_is_a_violation() {
    let mut s = established(4);
    assert_eq!(
        feed(&mut s, Instant::ZERO, Message::Have(4)),
        Err(Violation::PieceOutOfRange {
            index: 4,
            pieces: 4
        })
    );
    assert_eq!(
        feed(&mut s, Instant::ZERO, Message::Have(3)),
        Ok(SessionEvent::Have(3))
    );
    assert_eq!(
        feed(&mut s, Instant::ZERO, Message::Have(3)),
        Ok(SessionEvent::None)
    );
}

#[test]
fn request_checks_bounds_and_queue() {
    let mut s = established(4);
    s.am_choking = false;
    let ok = BlockRef {
        piece: 1,
        begin: 0,
        length: 16384,
    };
    assert_eq!(
        feed(&mut s, Instant::ZERO, Message::Request(ok)),
        Ok(SessionEvent::Requested)
    );
    let past_end = BlockRef {
        piece: 1,
        begin: 256 * 1024 - 100,
        length: 16384,
    };
    assert_eq!(
        feed(&mut s, Instant::ZERO, Message::Request(past_end)),
        Err(Violation::BadRequest(past_end))
    );
    let too_long = BlockRef {
        piece: 1,
        begin: 0,
        length: 32768,
    };
    assert_eq!(
        feed(&mut s, Instant::ZERO, Message::Request(too_long)),
        Err(Violation::BadRequest(too_long))
    );
    feed(&mut s, Instant::ZERO, Message::Cancel(ok)).unwrap();
    assert!(s.their_queue.is_empty());
    let mut missing = established(4);
    missing.am_choking = false;
    let r = missing.on_message(
        Instant::ZERO,
        Message::Request(ok),
        &SessionConfig::default(),
        |_| false,
        |_| 256 * 1024,
    );
    assert_eq!(r, Err(Violation::RequestedMissingPiece(1)));
}

#[test]
fn choke_voids_our_requests() {
    let mut s = established(4);
    feed(&mut s, Instant::ZERO, Message::Unchoke).unwrap();
    let b = BlockRef {
        piece: 0,
        begin: 0,
        length: 16384,
    };
    s.requests_out.push((b, Instant::ZERO));
    assert_eq!(
        feed(&mut s, Instant::ZERO, Message::Choke),
        Ok(SessionEvent::Choked(vec![b]))
    );
    assert!(s.requests_out.is_empty());
}

#[test]
fn slow_requests_expire_and_mark_snubbed() {
    let config = SessionConfig::default();
    let mut s = established(4);
    s.peer_choking = false;
    let b = BlockRef {
        piece: 0,
        begin: 0,
        length: 16384,
    };
    s.requests_out.push((b, Instant::ZERO));
    assert_eq!(
        s.next_deadline(&config),
        Instant::ZERO + config.request_timeout
    );
    assert!(s.expire_requests(Instant::from_secs(5), &config).is_empty());
    assert_eq!(s.expire_requests(Instant::from_secs(31), &config), vec![b]);
    assert!(!s.snubbed);
    s.requests_out.push((b, Instant::from_secs(31)));
    s.expire_requests(Instant::from_secs(61), &config);
    assert!(s.snubbed);
}

#[test]
fn rate_estimate_tracks_and_decays() {
    let mut r = Rate::default();
    for i in 0..100 {
        r.add(Instant::from_micros(i * 100_000), 100_000);
    }
    // 1 MB/s for 10 s with a 5 s time constant: about 86% of the steady rate.
    let now = Instant::from_secs(10);
    let bps = r.get(now);
    assert!((800_000.0..1_000_000.0).contains(&bps), "{bps}");
    assert!(r.get(Instant::from_secs(40)) < bps / 100.0);
}
