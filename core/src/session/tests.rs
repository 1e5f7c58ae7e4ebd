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
fn under_the_fast_extension_a_choke_keeps_requests_until_each_is_rejected() {
    let mut s = established(4);
    s.fast = true;
    feed(&mut s, Instant::ZERO, Message::Unchoke).unwrap();
    s.requests_out.push((block(0, 0), Instant::ZERO));
    s.requests_out.push((block(1, 0), Instant::ZERO));
    assert_eq!(
        feed(&mut s, Instant::ZERO, Message::Choke),
        Ok(SessionEvent::Choked(Vec::new()))
    );
    assert!(s.peer_choking);
    assert_eq!(s.requests_out.len(), 2, "a choke alone voids nothing");
    assert_eq!(
        feed(&mut s, Instant::ZERO, Message::Reject(block(1, 0))),
        Ok(SessionEvent::Rejected(block(1, 0)))
    );
    assert_eq!(s.requests_out, vec![(block(0, 0), Instant::ZERO)]);
    // A reject of what we no longer ask for (cancelled, or never asked).
    assert_eq!(
        feed(&mut s, Instant::ZERO, Message::Reject(block(1, 0))),
        Ok(SessionEvent::None)
    );
    // The request the peer still had is served after it unchokes us again.
    feed(&mut s, Instant::ZERO, Message::Unchoke).unwrap();
    let got = feed(
        &mut s,
        Instant::ZERO,
        Message::Piece(block(0, 0), vec![0; 16384].into()),
    );
    assert!(matches!(got, Ok(SessionEvent::Block(b, _)) if b == block(0, 0)));
    assert!(s.requests_out.is_empty());
}

#[test]
fn under_the_fast_extension_requests_while_choked_are_answered_until_they_flood() {
    let config = SessionConfig::default();
    let mut s = established(4);
    s.fast = true;
    assert!(s.am_choking);
    assert!(s.choke(Instant::ZERO).is_empty());
    let ask = |s: &mut Session, at: Instant| {
        s.on_message(
            at,
            Message::Request(block(2, 0)),
            &config,
            |_| true,
            |_| 256 * 1024,
        )
    };
    assert_eq!(
        ask(&mut s, Instant::from_secs(1)),
        Ok(SessionEvent::RequestWhileChoked(block(2, 0)))
    );
    // Long after the choke (a request can queue behind the peer's own
    // uploads) it is still answered, up to a flood's worth.
    let late = Instant::ZERO + config.choked_request_grace + Duration::from_secs(1);
    for _ in 0..config.max_peer_requests {
        assert_eq!(
            ask(&mut s, late),
            Ok(SessionEvent::RequestWhileChoked(block(2, 0)))
        );
    }
    assert_eq!(ask(&mut s, late), Err(Violation::RequestWhileChoked));
    assert!(s.their_queue.is_empty());
    // Without the extension the same late request is a breach at once.
    let mut plain = established(4);
    assert_eq!(ask(&mut plain, late), Err(Violation::RequestWhileChoked));
    assert_eq!(
        ask(&mut plain, Instant::from_secs(1)),
        Ok(SessionEvent::None)
    );
}

#[test]
fn have_all_and_have_none_stand_for_a_full_and_an_empty_bitfield() {
    let mut s = established(10);
    assert_eq!(
        feed(&mut s, Instant::ZERO, Message::HaveAll),
        Ok(SessionEvent::Bitfield)
    );
    assert!(s.remote_has.is_full());
    let mut s = established(10);
    assert_eq!(
        feed(&mut s, Instant::ZERO, Message::HaveNone),
        Ok(SessionEvent::None)
    );
    assert_eq!(s.remote_has.count(), 0);
    // After other messages, HaveAll reads as the haves it adds.
    feed(&mut s, Instant::ZERO, Message::Have(3)).unwrap();
    let Ok(SessionEvent::Haves(new)) = feed(&mut s, Instant::ZERO, Message::HaveAll) else {
        panic!("a late have-all adds haves");
    };
    assert_eq!(new.len(), 9);
    assert!(!new.contains(&3));
    assert!(s.remote_has.is_full());
    assert_eq!(
        feed(&mut s, Instant::ZERO, Message::Suggest(10)),
        Err(Violation::PieceOutOfRange {
            index: 10,
            pieces: 10
        })
    );
    assert_eq!(
        feed(&mut s, Instant::ZERO, Message::AllowedFast(9)),
        Ok(SessionEvent::None)
    );
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

fn block(piece: u32, i: u32) -> BlockRef {
    BlockRef {
        piece,
        begin: i * 16384,
        length: 16384,
    }
}

/// An established session that unchokes us.
fn unchoked() -> Session {
    let mut s = established(4);
    s.peer_choking = false;
    s
}

/// `s` receives `bytes` every `every_us` microseconds, 100 times from
/// t = 0; returns the instant of the last delivery.
fn deliver_steadily(s: &mut Session, bytes: u64, every_us: u64) -> Instant {
    for i in 0..100 {
        s.recent_download_rate
            .add(Instant::from_micros(i * every_us), bytes);
        s.pipeline_rate
            .add(Instant::from_micros(i * every_us), bytes);
        s.bytes_down += bytes;
    }
    Instant::from_micros(99 * every_us)
}

#[test]
fn pipeline_depth_follows_the_peers_rate() {
    let config = SessionConfig::default();
    let mut s = unchoked();
    // Unknown rate: the configured initial depth.
    assert_eq!(s.request_depth(Instant::ZERO, &config, 16384), 32);
    // 1 MB/s for ten seconds: a quarter second of it is about 15 blocks
    // (read just after a 100 kB delivery, the 250 ms rate is up to a
    // quarter high).
    let now = deliver_steadily(&mut s, 100_000, 100_000);
    let fast = s.request_depth(now, &config, 16384);
    assert!((13..=20).contains(&fast), "fast depth {fast}");
    // 50 MB/s: a quarter second of it is 760 blocks; the cap holds (and is deep
    // enough for 1 Gbit/s at 32 ms round trip).
    let mut faster = unchoked();
    deliver_steadily(&mut faster, 5_000_000, 100_000);
    let capped = faster.request_depth(now, &config, 16384);
    assert_eq!(capped, config.max_request_queue_depth);
    assert!(capped * 16384 >= 4_000_000, "{capped} blocks in flight");
    // The peer said it queues at most 10 requests: never more than that.
    s.remote_reqq = Some(10);
    assert_eq!(s.request_depth(now, &config, 16384), 10);
    // A trickle of 4 kB/s: the floor of two blocks.
    let mut slow = unchoked();
    let now = deliver_steadily(&mut slow, 4_000, 1_000_000);
    assert_eq!(
        slow.request_depth(now, &config, 16384),
        config.min_request_queue_depth
    );
}

#[test]
fn request_timeouts_scale_with_the_queue_ahead_and_the_rate() {
    let config = SessionConfig::default();
    // Unknown rate: the fixed ceiling.
    assert_eq!(
        request_timeout_for(16384, 0.0, &config),
        config.request_timeout
    );
    // 10 blocks ahead at 16 kB/s: about 10 s expected, 40 s would exceed the ceiling.
    assert_eq!(
        request_timeout_for(10 * 16384, 16384.0, &config),
        config.request_timeout
    );
    // 2 blocks at 16 kB/s: 8 s.
    assert_eq!(
        request_timeout_for(2 * 16384, 16384.0, &config),
        Duration::from_secs(8)
    );
    // A fast link: the floor.
    assert_eq!(
        request_timeout_for(16384, 1e9, &config),
        config.min_request_timeout
    );
}

#[test]
fn expired_requests_are_remembered_once_as_cancelled() {
    let config = SessionConfig::default();
    let mut s = established(4);
    s.peer_choking = false;
    s.requests_out.push((block(0, 0), Instant::ZERO));
    s.requests_out.push((block(0, 1), Instant::from_secs(20)));
    let expired = s.expire_requests(Instant::from_secs(31), &config);
    assert_eq!(expired, vec![block(0, 0)]);
    assert_eq!(s.requests_out.len(), 1);
    assert!(s.take_cancelled(block(0, 0)));
    assert!(!s.take_cancelled(block(0, 0)), "only once");
    assert!(
        !s.take_cancelled(block(0, 1)),
        "still requested, not cancelled"
    );
}

#[test]
fn upload_window_grows_with_the_rate_we_send_at() {
    let config = SessionConfig::default();
    let mut s = established(64);
    // Unknown rate: the fixed floor.
    assert_eq!(s.upload_window(Instant::ZERO, &config, 16384), 4);
    // 2 MB/s sent for a few seconds: 10 KB per 5 ms, still the floor.
    let mut now = Instant::ZERO;
    for _ in 0..400 {
        now += Duration::from_millis(10);
        s.recent_upload_rate.add(now, 20_000);
    }
    assert_eq!(s.upload_window(now, &config, 16384), 4);
    // 400 MB/s: 2 MB per 5 ms is 123 blocks, capped at the maximum.
    for _ in 0..400 {
        now += Duration::from_millis(10);
        s.recent_upload_rate.add(now, 4_000_000);
    }
    assert_eq!(
        s.upload_window(now, &config, 16384),
        config.max_upload_window
    );
    // 100 MB/s: 500 KB per 5 ms, about 31 blocks.
    let mut mid = established(64);
    for _ in 0..400 {
        now += Duration::from_millis(10);
        mid.recent_upload_rate.add(now, 1_000_000);
    }
    let w = mid.upload_window(now, &config, 16384);
    assert!((28..=34).contains(&w), "window {w}");
    // A link that goes quiet shrinks back to the floor.
    let later = now + Duration::from_secs(20);
    assert_eq!(mid.upload_window(later, &config, 16384), 4);
}

#[test]
fn a_deep_queue_that_keeps_delivering_does_not_expire_its_tail() {
    // Sixteen requests sent at once to a link that delivers one block a
    // second: the last waits 16 s, but only behind blocks that arrived, so
    // none expires while blocks keep coming.
    let config = SessionConfig::default();
    let mut s = established(4);
    feed(&mut s, Instant::ZERO, Message::Unchoke).unwrap();
    for i in 0..16 {
        s.requests_out.push((block(0, i), Instant::ZERO));
    }
    for i in 0..15 {
        let now = Instant::from_secs(u64::from(i) + 1);
        let data = bytes::Bytes::from(vec![0u8; 16384]);
        feed(&mut s, now, Message::Piece(block(0, i), data)).unwrap();
        let next = s.next_deadline(&config);
        assert!(
            next > now + Duration::from_secs(4),
            "block {i}: next deadline {next:?} at {now:?}"
        );
        assert!(
            s.expire_requests(now + Duration::from_millis(900), &config)
                .is_empty(),
            "a request expired after block {i} though the link delivers"
        );
    }
    // The link stalls: the last request expires no sooner than the floor
    // after the last delivery, and by the ceiling.
    assert!(s
        .expire_requests(Instant::from_secs(19), &config)
        .is_empty());
    assert_eq!(
        s.expire_requests(Instant::from_secs(15) + config.request_timeout, &config),
        vec![block(0, 15)]
    );
}
