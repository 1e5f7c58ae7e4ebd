//! The node's handling of connections: handshakes, messages, requests, uploads,
//! verdicts, choking and per-connection timers.

use core::net::SocketAddr;

use super::{peer_key, ApiError, BanReason, DisconnectReason, Node, NodeEvent, Output, PeerKey};
use crate::choker::ChokerPeer;
use crate::picker::BlockOutcome;
use crate::session::{Phase, Session, SessionEvent};
use crate::time::{Duration, Instant};
use crate::tracker::AnnounceEvent;
use crate::wire::{BlockRef, ExtendedHandshake, Handshake, Message};
use crate::ConnId;

/// At most this many regular slots change hands per tick between rechokes.
const MAX_UPGRADES_PER_TICK: usize = 2;
/// An unchoked peer that asked for nothing for the time one of our slots
/// takes to carry a piece, within these two, gives its slot to a waiting
/// peer when our uplink is underused (see `Node::rotate_idle_slots`).
const IDLE_SLOT_AFTER: Duration = Duration::from_secs(1);
const IDLE_SLOT_AFTER_MAX: Duration = Duration::from_secs(3);

impl Node {
    pub(super) fn handle_connected(
        &mut self,
        conn: ConnId,
        addr: SocketAddr,
        outbound: bool,
        identity: Option<String>,
    ) -> Result<(), ApiError> {
        if self.sessions.contains_key(&conn) {
            return Err(ApiError::ConnIdInUse(conn));
        }
        if outbound {
            self.dialing.remove(&addr);
        }
        let refuse = if self.banned.contains(&peer_key(addr, identity.as_deref()))
            || self.banned.contains(&PeerKey::Ip(addr.ip())) && identity.is_none()
        {
            Some(DisconnectReason::Banned)
        } else if self.config.require_auth && identity.is_none() {
            Some(DisconnectReason::NotAuthenticated)
        } else if self.over_budget(outbound) {
            Some(DisconnectReason::TooManyPeers)
        } else {
            None
        };
        if let Some(reason) = refuse {
            // Not one protocol byte goes to a refused peer.
            self.emit(Output::Disconnect { conn });
            self.event(NodeEvent::PeerDisconnected { conn, reason });
            return Ok(());
        }
        let n = self.config.geometry.num_pieces();
        let session = Session::new(conn, addr, outbound, identity, n, self.now);
        self.sessions.insert(conn, session);
        if outbound {
            self.connected_addrs.insert(addr, conn);
            self.send_handshake(conn);
        }
        Ok(())
    }

    /// Whether a new connection would exceed the connection budget.
    ///
    /// A connection this node dialed is always admitted: each dial was within
    /// the budget when it started, and peers that dial us meanwhile cannot
    /// take the slots of dials in flight (an inbound link is counted against
    /// sessions plus dials in flight). Only the hub's seeders
    /// (`pinned_peers`, a handful of ports), which are dialed whenever not
    /// connected, can take a node past `max_peers`, by at most their number:
    /// a client keeps its link to the hub however many peers it has.
    /// Refusing a connection we dialed would close it before our handshake,
    /// which the other end can only log as a peer that never spoke.
    fn over_budget(&self, outbound: bool) -> bool {
        !outbound
            && (self.sessions.len() + self.dialing.len() >= self.config.max_peers
                || self.inbound_full())
    }

    /// Half the connection budget of a downloading node is for peers that dial
    /// us. Keeping it to half means the first peers of a flash crowd cannot fill every slot of
    /// each other, leaving late arrivals with few connections.
    fn inbound_full(&self) -> bool {
        if self.picker.is_complete() {
            // A seed dials nobody; its whole budget is for peers that dial it.
            return false;
        }
        let inbound = self.sessions.values().filter(|s| !s.outbound).count();
        inbound >= self.config.max_peers - self.config.max_peers.div_ceil(2)
            && self.config.max_peers > 1
    }

    fn send_handshake(&mut self, conn: ConnId) {
        let handshake = Handshake {
            info_hash: self.config.info_hash,
            peer_id: self.config.peer_id,
            extended: true,
            fast: true,
        };
        self.emit(Output::SendHandshake { conn, handshake });
    }

    pub(super) fn handle_handshake(&mut self, conn: ConnId, hs: Handshake) {
        let Some(session) = self.sessions.get(&conn) else {
            return;
        };
        if session.phase != Phase::AwaitingHandshake {
            let v = crate::session::Violation::DuplicateHandshake;
            return self.drop_session(conn, v.into(), true);
        }
        if hs.info_hash != self.config.info_hash {
            return self.drop_session(conn, DisconnectReason::WrongInfoHash, true);
        }
        if hs.peer_id == self.config.peer_id {
            return self.drop_session(conn, DisconnectReason::OwnPeerId, true);
        }
        let outbound = session.outbound;
        if let Some(other) = self
            .sessions
            .values()
            .find(|s| s.conn != conn && s.peer_id == Some(hs.peer_id))
            .map(|s| s.conn)
        {
            // Both sides keep the connection dialed by the lower peer id.
            let dialer_of_new = if outbound {
                self.config.peer_id
            } else {
                hs.peer_id
            };
            let lower = self.config.peer_id.min(hs.peer_id);
            if dialer_of_new == lower {
                self.drop_session(other, DisconnectReason::DuplicatePeer, true);
            } else {
                return self.drop_session(conn, DisconnectReason::DuplicatePeer, true);
            }
        }
        let Some(session) = self.sessions.get_mut(&conn) else {
            return;
        };
        session.phase = Phase::Established;
        let addr = session.addr;
        self.backoff.remove(&addr);
        if outbound {
            // A peer took us: the swarm has room again.
            self.refused_in_row = 0;
            self.dial_pause_until = None;
        }
        session.peer_id = Some(hs.peer_id);
        // We always offer the fast extension (see `send_handshake`).
        session.fast = hs.fast;
        let fast = hs.fast;
        let identity = session.identity.clone();
        let far = self.site.is_some() && self.sessions.get(&conn).is_some_and(|s| self.is_far(s));
        if let Some(s) = self.sessions.get_mut(&conn) {
            s.far = far;
        }
        if !outbound {
            self.send_handshake(conn);
        }
        if hs.extended {
            let ext = ExtendedHandshake {
                client: Some(self.config.client_name.clone()),
                listen_port: Some(self.config.listen_port),
                reqq: Some(self.config.session.max_peer_requests as u32),
                // A super-seed shows a piece or two: libtorrent-based clients
                // drop an upload-only peer with so little to offer.
                upload_only: self.picker.is_complete() && !self.super_seeding(),
                revocation_epoch: None,
                super_seeding: self.super_seeding(),
                site: self.site.clone(),
            };
            self.transmit(conn, Message::ExtendedHandshake(ext));
        }
        if self.super_seeding() {
            // No bitfield: a piece or two at a time instead, when a slot is free.
            if fast {
                // BEP 6: the first message says what we have, here nothing yet.
                self.transmit(conn, Message::HaveNone);
            }
            self.super_fill_slots();
        } else if fast && self.picker.is_complete() {
            self.transmit(conn, Message::HaveAll);
        } else if self.picker.have().count() > 0 {
            let bits = bytes::Bytes::from(self.picker.have().to_bitfield());
            self.transmit(conn, Message::Bitfield(bits));
        } else if fast {
            self.transmit(conn, Message::HaveNone);
        }
        self.event(NodeEvent::PeerConnected {
            conn,
            peer_id: hs.peer_id,
            identity,
        });
        self.try_unchoke_now(conn);
    }

    pub(super) fn transmit(&mut self, conn: ConnId, msg: Message) {
        if let Some(s) = self.sessions.get_mut(&conn) {
            s.last_send = self.now;
        }
        self.emit(Output::Transmit { conn, msg });
    }

    pub(super) fn handle_message(&mut self, conn: ConnId, msg: Message) {
        let now = self.now;
        let geometry = self.config.geometry;
        let Some(session) = self.sessions.get_mut(&conn) else {
            return;
        };
        let (is_ext, ext_port) = match &msg {
            Message::ExtendedHandshake(ext) => (true, ext.listen_port),
            _ => (false, None),
        };
        let have = self.picker.have();
        let result = session.on_message(
            now,
            msg,
            &self.config.session,
            |p| have.contains(p),
            |p| geometry.piece_len(p),
        );
        let event = match result {
            Ok(e) => e,
            Err(v) => return self.drop_session(conn, v.into(), true),
        };
        if let Some(port) = ext_port {
            let addr = SocketAddr::new(session.addr.ip(), port);
            self.candidates.remove(&addr);
            self.connected_addrs.insert(addr, conn);
        }
        if is_ext && self.site.is_some() {
            return self.classify(conn);
        }
        let far = session.far;
        match event {
            SessionEvent::None => {}
            SessionEvent::Bitfield => {
                let has = session.remote_has.clone();
                self.picker.add_peer(&has);
                if !far {
                    self.near_add(&has);
                }
                self.after_remote_pieces_changed(conn, None);
                if self.super_seeding() {
                    self.super_after_bitfield(conn);
                }
            }
            SessionEvent::Have(piece) => {
                self.picker.peer_has(piece);
                if !far {
                    self.near_gained(piece);
                }
                if self.super_seeding() {
                    self.super_on_have(conn, piece);
                }
                self.after_remote_pieces_changed(conn, Some(piece));
            }
            SessionEvent::Haves(pieces) => {
                // The session counted only pieces new to it, so availability
                // stays the sum of the peers' piece sets.
                for &piece in &pieces {
                    self.picker.peer_has(piece);
                    if !far {
                        self.near_gained(piece);
                    }
                }
                if self.super_seeding() {
                    for &piece in &pieces {
                        self.super_on_have(conn, piece);
                    }
                }
                self.after_remote_pieces_changed(conn, None);
            }
            SessionEvent::Unchoked => self.fill_requests(conn),
            SessionEvent::Choked(dropped) => {
                let freed = !dropped.is_empty();
                for block in dropped {
                    self.picker.request_dropped(conn, block);
                }
                if freed {
                    self.refresh_interest();
                }
            }
            SessionEvent::InterestChanged => {
                if session.peer_interested && !session.am_choking {
                    // Unchoked while it was not interested: now it takes a slot.
                    self.enforce_slots(conn);
                } else if session.peer_interested {
                    self.try_unchoke_now(conn);
                } else {
                    self.fill_free_slots();
                }
            }
            SessionEvent::Rejected(block) => {
                self.picker.request_dropped(conn, block);
                self.ask_for_freed_blocks();
            }
            SessionEvent::RequestWhileChoked(block) => {
                self.transmit(conn, Message::Reject(block));
            }
            SessionEvent::Requested => self.serve_uploads(conn),
            SessionEvent::Block(block, data) => self.handle_block(conn, block, data),
        }
    }

    fn after_remote_pieces_changed(&mut self, conn: ConnId, piece: Option<u32>) {
        let complete = self.picker.is_complete();
        let Some(session) = self.sessions.get(&conn) else {
            return;
        };
        if complete && (session.remote_has.is_full() || session.upload_only) {
            return self.drop_session(conn, DisconnectReason::BothSeeds, true);
        }
        if !session.am_interested {
            let wanted = match piece {
                Some(p) if !session.far => {
                    !self.picker.have().contains(p) && self.picker.is_interesting_piece(p)
                }
                _ => true,
            };
            if wanted && self.wants_from(conn) {
                self.set_interest(conn, true);
            }
        }
        self.fill_requests(conn);
    }

    /// Whether we are interested in `conn` (see `refresh_interest`): we
    /// would ask it for a block now if it let us ([`Picker::can_pick`]).
    /// A node that knows its site keeps the plain rule (the peer has a
    /// piece we lack, of those we may fetch from it) and `refresh_interest`
    /// leaves it alone: there a slot handed back goes round far peers too,
    /// and in sites behind thin links that sent more copies across them
    /// (sites-hub-apart, seed 1: 1.55 -> 2.09 image copies over the hub's
    /// link to the larger site; last peer 1.72 -> 1.82x the link-aware
    /// bound, mean of seeds 1-3).
    fn wants_from(&self, conn: ConnId) -> bool {
        let Some(s) = self.sessions.get(&conn) else {
            return false;
        };
        if s.phase != Phase::Established || self.picker.is_complete() {
            return false;
        }
        match self.requestable(s.far, &s.remote_has) {
            Some(allowed) => self.picker.is_interesting(&allowed),
            None if self.site.is_some() => self.picker.is_interesting(&s.remote_has),
            None => self.picker.can_pick(conn, &s.remote_has),
        }
    }

    /// Interest follows what we would ask each peer for now, not merely
    /// whether it has a piece we lack: a peer that has only pieces we are
    /// already fetching in full from others hears NotInterested, so the
    /// upload slot it gave us goes to a peer that asks for something (an
    /// uplink otherwise sits idle behind slots nobody uses). Interest comes
    /// back when blocks are free to ask for again (a request dropped, a peer
    /// gone, a piece failed) or the peer announces a piece we want. A peer we
    /// still expect blocks from keeps our interest.
    pub(super) fn refresh_interest(&mut self) {
        if self.site.is_some() {
            return;
        }
        let conns: Vec<ConnId> = self
            .sessions
            .values()
            .filter(|s| s.phase == Phase::Established)
            .map(|s| s.conn)
            .collect();
        for conn in conns {
            let Some(s) = self.sessions.get(&conn) else {
                continue;
            };
            let (interested, waiting) = (s.am_interested, !s.requests_out.is_empty());
            let wants = self.wants_from(conn);
            if wants && !interested {
                self.set_interest(conn, true);
                self.fill_requests(conn);
            } else if !wants && interested && !waiting {
                self.set_interest(conn, false);
            }
        }
    }

    /// Peers that unchoke us and that we ask nothing of, now that a pick
    /// took blocks they could have served: NotInterested, so their slot is
    /// handed on at once rather than after an idle slot's hand-off time.
    fn release_unused_slots(&mut self, except: ConnId) {
        if self.site.is_some() {
            return;
        }
        let idle: Vec<ConnId> = self
            .sessions
            .values()
            .filter(|s| {
                s.conn != except
                    && s.am_interested
                    && !s.peer_choking
                    && s.requests_out.is_empty()
                    && s.phase == Phase::Established
            })
            .map(|s| s.conn)
            .collect();
        for conn in idle {
            if !self.wants_from(conn) {
                self.set_interest(conn, false);
            }
        }
    }

    fn set_interest(&mut self, conn: ConnId, interested: bool) {
        let Some(session) = self.sessions.get_mut(&conn) else {
            return;
        };
        if session.am_interested == interested {
            return;
        }
        session.am_interested = interested;
        let msg = if interested {
            Message::Interested
        } else {
            Message::NotInterested
        };
        self.transmit(conn, msg);
    }

    pub(super) fn fill_requests(&mut self, conn: ConnId) {
        let now = self.now;
        let block_len = self.config.picker.block_len;
        // Only seeds around us (the hub, finished peers): nobody downloads
        // from us, so the pieces we pick need not differ from anyone's.
        let front_first = self
            .sessions
            .values()
            .all(|s| s.phase != Phase::Established || s.remote_has.is_full() || s.upload_only);
        let allowed = match self.sessions.get(&conn) {
            Some(s) if s.far => self.requestable(true, &s.remote_has),
            _ => None,
        };
        let Some(session) = self.sessions.get_mut(&conn) else {
            return;
        };
        if !session.am_interested || !session.can_request(now, &self.config.session, block_len) {
            return;
        }
        let depth = session.request_depth(now, &self.config.session, block_len);
        let room = depth - session.requests_out.len();
        let mut blocks = Vec::new();
        let has = allowed.as_ref().unwrap_or(&session.remote_has);
        self.picker
            .pick(conn, has, room, front_first, &mut self.rng, &mut blocks);
        if blocks.is_empty() {
            // Nothing left to ask this peer for: tell it, so it frees our
            // slot (see `refresh_interest`).
            if session.requests_out.is_empty() && !self.wants_from(conn) {
                self.set_interest(conn, false);
            }
            return;
        }
        for block in &blocks {
            session.requests_out.push((*block, now));
        }
        for block in blocks {
            self.transmit(conn, Message::Request(block));
        }
        self.release_unused_slots(conn);
    }

    fn handle_block(&mut self, conn: ConnId, block: BlockRef, data: bytes::Bytes) {
        let late = self
            .sessions
            .get_mut(&conn)
            .is_some_and(|s| s.take_cancelled(block));
        match self.picker.block_received(conn, block, late) {
            BlockOutcome::Accepted {
                cancel,
                piece_complete,
            } => {
                self.stats.bytes_down += u64::from(block.length);
                self.emit(Output::StoreBlock { block, data });
                self.event(NodeEvent::BlockReceived {
                    conn,
                    bytes: block.length,
                });
                for other in cancel {
                    if let Some(s) = self.sessions.get_mut(&other) {
                        s.requests_out.retain(|(b, _)| *b != block);
                        self.transmit(other, Message::Cancel(block));
                    }
                }
                if piece_complete {
                    self.emit(Output::VerifyPiece { piece: block.piece });
                }
            }
            BlockOutcome::Duplicate | BlockOutcome::Unrequested => {
                self.stats.bytes_wasted += u64::from(block.length);
                self.event(NodeEvent::BlockWasted {
                    conn,
                    bytes: block.length,
                });
            }
        }
        self.fill_requests(conn);
    }

    pub(super) fn handle_block_sent(&mut self, conn: ConnId, block: BlockRef) {
        let now = self.now;
        let Some(session) = self.sessions.get_mut(&conn) else {
            return;
        };
        let Some(i) = session.upload_inflight.iter().position(|b| *b == block) else {
            return;
        };
        session.upload_inflight.swap_remove(i);
        session.bytes_up += u64::from(block.length);
        session.upload_rate.add(now, u64::from(block.length));
        session.recent_upload_rate.add(now, u64::from(block.length));
        self.stats.bytes_up += u64::from(block.length);
        self.event(NodeEvent::BlockUploaded {
            conn,
            bytes: block.length,
        });
        self.serve_uploads(conn);
    }

    pub(super) fn serve_uploads(&mut self, conn: ConnId) {
        let Some(session) = self.sessions.get_mut(&conn) else {
            return;
        };
        let max =
            session.upload_window(self.now, &self.config.session, self.config.picker.block_len);
        let mut sends = Vec::new();
        while !session.am_choking && session.upload_inflight.len() < max {
            let Some(block) = session.their_queue.pop_front() else {
                break;
            };
            session.upload_inflight.push(block);
            sends.push(block);
        }
        if !sends.is_empty() {
            session.last_send = self.now;
        }
        for block in sends {
            self.emit(Output::SendBlock { conn, block });
        }
    }

    pub(super) fn handle_verdict(&mut self, piece: u32, ok: bool) -> Result<(), ApiError> {
        let Some(outcome) = self.picker.piece_verified(piece, ok) else {
            return Err(ApiError::NotVerifying(piece));
        };
        if ok {
            self.after_piece_verified(piece);
        } else {
            self.stats.hash_failures += 1;
            let len = self.config.geometry.piece_len(piece);
            self.stats.bytes_wasted += u64::from(len);
            self.stats.bytes_down = self.stats.bytes_down.saturating_sub(u64::from(len));
            self.event(NodeEvent::PieceFailed { piece });
            self.blame(piece, &outcome.contributors);
            self.refresh_interest();
            let conns: Vec<ConnId> = self.sessions.keys().copied().collect();
            for conn in conns {
                self.fill_requests(conn);
            }
        }
        Ok(())
    }

    pub(super) fn handle_obtained(&mut self, piece: u32) {
        let received = self.picker.received_bytes_of(piece);
        let (cancels, changed) = self.picker.piece_obtained(piece);
        if !changed {
            return;
        }
        let len = u64::from(self.config.geometry.piece_len(piece));
        self.outside_bytes += len - received;
        for (conn, block) in cancels {
            if let Some(s) = self.sessions.get_mut(&conn) {
                s.requests_out.retain(|(b, _)| *b != block);
                self.transmit(conn, Message::Cancel(block));
            }
        }
        self.after_piece_verified(piece);
    }

    fn after_piece_verified(&mut self, piece: u32) {
        self.event(NodeEvent::PieceVerified { piece });
        let conns: Vec<ConnId> = self
            .sessions
            .values()
            // Peers that have the piece do not need to hear of it, except a
            // seed (upload-only), which may be super-seeding and watch haves.
            .filter(|s| {
                s.phase == Phase::Established && (!s.remote_has.contains(piece) || s.upload_only)
            })
            .map(|s| s.conn)
            .collect();
        // In random order: the first peers to hear of a piece are the first
        // to ask for it and to take our free upload slots, and connection
        // order (oldest first) would favour the peers that arrived first.
        let mut conns = conns;
        for i in (1..conns.len()).rev() {
            use rand::RngExt;
            conns.swap(i, self.rng.random_range(0..=i));
        }
        for conn in conns {
            self.transmit(conn, Message::Have(piece));
        }
        if self.picker.is_complete() {
            self.on_complete();
        }
    }

    fn on_complete(&mut self) {
        self.event(NodeEvent::Complete);
        self.announce(AnnounceEvent::Completed);
        let seeds: Vec<ConnId> = self
            .sessions
            .values()
            .filter(|s| s.remote_has.is_full() || s.upload_only)
            .map(|s| s.conn)
            .collect();
        for conn in seeds {
            self.drop_session(conn, DisconnectReason::BothSeeds, true);
        }
        let conns: Vec<ConnId> = self.sessions.keys().copied().collect();
        for conn in conns {
            self.set_interest(conn, false);
        }
    }

    fn blame(&mut self, piece: u32, contributors: &[(ConnId, u32)]) {
        let sole = contributors.len() == 1;
        for &(conn, _) in contributors {
            let Some(s) = self.sessions.get(&conn) else {
                continue;
            };
            let key = peer_key(s.addr, s.identity.as_deref());
            let failures = {
                let f = self.failures.entry(key).or_insert(0);
                *f += 1;
                *f
            };
            let reason = if sole {
                Some(BanReason::SoleSourceOfBadPiece { piece })
            } else if failures >= self.config.ban_after_failures {
                Some(BanReason::TooManyHashFailures { failures })
            } else {
                None
            };
            if let Some(reason) = reason {
                self.ban(conn, reason);
            }
        }
    }

    fn ban(&mut self, conn: ConnId, reason: BanReason) {
        let Some(s) = self.sessions.get(&conn) else {
            return;
        };
        let (addr, identity) = (s.addr, s.identity.clone());
        self.banned.insert(peer_key(addr, identity.as_deref()));
        self.stats.bans += 1;
        self.event(NodeEvent::PeerBanned {
            conn,
            addr,
            identity,
            reason,
        });
        self.drop_session(conn, DisconnectReason::Banned, true);
    }

    /// Forget a session; `tell_driver` when the node itself closes it.
    pub(super) fn drop_session(
        &mut self,
        conn: ConnId,
        reason: DisconnectReason,
        tell_driver: bool,
    ) {
        let Some(session) = self.sessions.remove(&conn) else {
            return;
        };
        self.picker.remove_peer(conn, &session.remote_has);
        if !session.far && session.phase == Phase::Established {
            self.near_remove(&session.remote_has);
        }
        self.choker.remove(conn);
        if !session.super_pending.is_empty() {
            self.super_forget(conn, &session.super_pending);
        }
        if session.outbound && session.phase == Phase::AwaitingHandshake {
            // It closed before answering our handshake: it is full.
            self.back_off(session.addr);
        }
        if session.outbound && self.config.pinned_peers.contains(&session.addr) {
            // Redial the hub later, not in a tight loop if it refuses us.
            self.pinned_retry_at = Some(self.now + self.config.announce_retry);
        }
        self.connected_addrs.retain(|_, c| *c != conn);
        if tell_driver {
            self.emit(Output::Disconnect { conn });
        }
        self.event(NodeEvent::PeerDisconnected { conn, reason });
        if !session.am_choking {
            self.fill_free_slots();
        }
        // Blocks requested from this peer are free again: ask others.
        self.ask_for_freed_blocks();
    }

    /// Requests were dropped: renew interest, and ask the peers that unchoke
    /// us for the freed blocks now, not at their next block or our next tick.
    fn ask_for_freed_blocks(&mut self) {
        self.refresh_interest();
        let conns: Vec<ConnId> = self
            .sessions
            .values()
            .filter(|s| !s.peer_choking && s.am_interested)
            .map(|s| s.conn)
            .collect();
        for c in conns {
            self.fill_requests(c);
        }
    }

    pub(super) fn session_timers(&mut self, conn: ConnId) {
        let now = self.now;
        let config = self.config.session.clone();
        let Some(session) = self.sessions.get_mut(&conn) else {
            return;
        };
        match session.phase {
            Phase::AwaitingHandshake => {
                if now >= session.connected_at + config.handshake_timeout {
                    self.drop_session(conn, DisconnectReason::HandshakeTimeout, true);
                }
                return;
            }
            Phase::Established => {}
        }
        if now >= session.last_recv + config.idle_timeout {
            return self.drop_session(conn, DisconnectReason::IdleTimeout, true);
        }
        let expired = session.expire_requests(now, &config);
        let keepalive = now >= session.last_send + config.keepalive_interval;
        for block in &expired {
            self.picker.request_dropped(conn, *block);
        }
        // Tell the peer, so it does not send what we will fetch elsewhere
        // (a copy already on the wire is still taken, see `take_cancelled`).
        for block in &expired {
            self.transmit(conn, Message::Cancel(*block));
        }
        if keepalive && expired.is_empty() {
            self.transmit(conn, Message::KeepAlive);
        }
        if !expired.is_empty() {
            self.refresh_interest();
            let conns: Vec<ConnId> = self.sessions.keys().copied().collect();
            for c in conns {
                self.fill_requests(c);
            }
        }
    }

    /// Unchoke `conn` at once when it is interested and a slot is free, so a
    /// newcomer does not wait for the next rechoke round.
    fn try_unchoke_now(&mut self, conn: ConnId) {
        if self.super_seeding() {
            return self.super_fill_slots();
        }
        let slots = self.upload_slots();
        let Some(s) = self.sessions.get(&conn) else {
            return;
        };
        if !s.peer_interested || !s.am_choking || s.phase != Phase::Established {
            return;
        }
        let unchoked = self
            .sessions
            .values()
            .filter(|s| !s.am_choking && s.peer_interested)
            .count();
        let far_full = s.far && self.far_unchoked() >= self.config.choker.cross_site_slots;
        if unchoked < slots && !far_full {
            self.set_choke(conn, false);
        }
    }

    /// `conn` was unchoked while not interested and became interested: it
    /// wants a slot now. A peer that lost interest gave its slot back (and
    /// `fill_free_slots` may have handed it on), so when no slot is free it
    /// is choked and waits like any other peer; the peers holding slots keep
    /// them (choking one of them would cut off its requests in flight).
    fn enforce_slots(&mut self, conn: ConnId) {
        let held = if self.super_seeding() {
            self.super_held()
        } else {
            self.sessions
                .values()
                .filter(|s| !s.am_choking && s.peer_interested)
                .count()
        };
        if held > self.upload_slots() {
            self.set_choke(conn, true);
        }
    }

    /// An upload slot came free (a peer lost interest or left): give it to an
    /// interested choked peer now rather than at the next rechoke, so upload
    /// capacity does not sit idle for up to a rechoke interval.
    pub(super) fn fill_free_slots(&mut self) {
        if self.super_seeding() {
            return self.super_fill_slots();
        }
        let slots = self.upload_slots();
        let unchoked_interested = self
            .sessions
            .values()
            .filter(|s| !s.am_choking && s.peer_interested)
            .count();
        if unchoked_interested >= slots {
            return;
        }
        let mut waiting: Vec<ConnId> = self
            .sessions
            .values()
            .filter(|s| s.am_choking && s.peer_interested && s.phase == Phase::Established)
            .map(|s| s.conn)
            .collect();
        // The peers choked longest first, ties at random (no peer id is
        // favoured): a slot handed on goes round the waiting peers in turn.
        for i in (1..waiting.len()).rev() {
            use rand::RngExt;
            waiting.swap(i, self.rng.random_range(0..=i));
        }
        waiting.sort_by_key(|c| self.sessions.get(c).map(|s| s.choked_at));
        let mut free = slots - unchoked_interested;
        let mut far_free = self
            .config
            .choker
            .cross_site_slots
            .saturating_sub(self.far_unchoked());
        for conn in waiting {
            if free == 0 {
                break;
            }
            if self.sessions.get(&conn).is_some_and(|s| s.far) {
                if far_free == 0 {
                    continue;
                }
                far_free -= 1;
            }
            free -= 1;
            self.set_choke(conn, false);
        }
    }

    /// Peers we upload to at once: the choker's regular and optimistic slots,
    /// or, while super-seeding, the super-seed slots (see `adapt_super_slots`).
    pub(super) fn upload_slots(&self) -> usize {
        if self.super_seeding() {
            self.super_slots
        } else {
            self.choker.slots() + self.config.choker.optimistic_slots
        }
    }

    /// Per-tick check that the uplink is not idle while peers wait: when the
    /// last tick used under 80% of the known upload capacity and an
    /// interested peer is choked, open one more slot and fill it now instead
    /// of at the next rechoke (up to ten seconds of idle uplink otherwise).
    pub(super) fn widen_if_idle(&mut self) {
        let (since, mark) = self.up_mark;
        self.up_mark = (self.now, self.stats.bytes_up);
        let Some(cap) = self.config.upload_capacity_bps else {
            return;
        };
        let dt = self.now.saturating_since(since).as_secs_f64();
        if dt <= 0.0 {
            return;
        }
        let used = (self.stats.bytes_up - mark) as f64 / dt;
        if self.super_seeding() {
            let waiting = self.super_has_waiting();
            return self.adapt_super_slots(used, cap as f64, waiting);
        }
        let waiting = self
            .sessions
            .values()
            .filter(|s| s.am_choking && s.peer_interested && s.phase == Phase::Established)
            .count();
        if used < 0.8 * cap as f64 && waiting > 0 && !self.rotate_idle_slots(waiting) {
            self.choker.set_slots(self.choker.slots() + 1);
            self.fill_free_slots();
        }
    }

    /// Unchoked, interested peers that have asked us for nothing for
    /// `IDLE_SLOT_AFTER` (or a piece's time through one of our slots),
    /// longest silent first: everything we have that they lack they are
    /// fetching from others.
    fn idle_slot_holders(&self) -> Vec<ConnId> {
        let now = self.now;
        let piece_time = self.config.upload_capacity_bps.map_or(0.0, |cap| {
            let slots =
                (self.config.choker.slots + self.config.choker.optimistic_slots).max(1) as f64;
            f64::from(self.config.geometry.piece_length) * slots / cap.max(1) as f64
        });
        let after = Duration::from_secs_f64(piece_time.min(60.0))
            .max(IDLE_SLOT_AFTER)
            .min(IDLE_SLOT_AFTER_MAX);
        let mut idle: Vec<(Instant, ConnId)> = self
            .sessions
            .values()
            .filter(|s| {
                s.phase == Phase::Established
                    && !s.am_choking
                    && s.peer_interested
                    && s.their_queue.is_empty()
                    && s.upload_inflight.is_empty()
                    && now >= s.asked_at + after
            })
            .map(|s| (s.asked_at, s.conn))
            .collect();
        idle.sort();
        idle.into_iter().map(|(_, c)| c).collect()
    }

    /// The uplink is underused while peers wait: when it is because peers
    /// holding slots ask for nothing, hand their slots to the waiting peers
    /// instead of opening more. Widening then would split the uplink over
    /// ever more peers (it grew to 20-28 slots of a 2-slot uplink), so a
    /// piece that only we have reaches all of them at once, late, instead of
    /// one of them at full rate and from there on to the rest. `waiting`
    /// peers are choked and interested. Returns whether any slot changed
    /// hands.
    fn rotate_idle_slots(&mut self, waiting: usize) -> bool {
        let idle = self.idle_slot_holders();
        if idle.is_empty() {
            return false;
        }
        for conn in idle.into_iter().take(waiting) {
            self.set_choke(conn, true);
        }
        self.fill_free_slots();
        true
    }

    /// A super-seed serves only as many peers at once as its uplink fills
    /// at their rates, so each piece leaves it at full speed and lands in
    /// about (F/M)/u_s; peers start trading at once instead of after the hub
    /// has sent a whole image's worth of bytes to everyone at u_s/N each.
    /// The number adapts every tick: it grows (up to doubling) while the
    /// uplink is under 90% used and someone waits, and shrinks by one when
    /// the uplink is full, so the same rule fits a hub as slow as one peer
    /// and one a thousand times faster.
    fn adapt_super_slots(&mut self, used_bps: f64, cap_bps: f64, waiting: bool) {
        let slots = self.super_slots;
        if used_bps < 0.9 * cap_bps && waiting {
            let factor = (0.95 * cap_bps / used_bps.max(1.0)).clamp(1.25, 2.0);
            let grown = ((slots as f64 * factor).ceil() as usize).max(slots + 1);
            self.super_slots = grown.min(self.config.max_peers.max(1));
            self.fill_free_slots();
        } else if used_bps > 0.98 * cap_bps && slots > 1 {
            // Nobody is cut off: the peers served now keep their slots, and
            // the next slot that frees is not handed on.
            self.super_slots = slots - 1;
            self.super_over = self.super_held().saturating_sub(self.super_slots);
        }
    }

    fn choker_peers(&self) -> Vec<ChokerPeer> {
        let now = self.now;
        self.sessions
            .values()
            .filter(|s| s.phase == Phase::Established)
            .map(|s| ChokerPeer {
                conn: s.conn,
                interested: s.peer_interested,
                snubbed: s.snubbed,
                download_bps: s.download_rate.get(now),
                bytes_given: s.bytes_up,
                connected_at: s.connected_at,
                pieces: s.remote_has.count(),
                far: s.far,
                unchoked: !s.am_choking,
            })
            .collect()
    }

    /// Per-tick tit-for-tat between rechokes (see `Choker::upgrade`).
    pub(super) fn reciprocate(&mut self) {
        if self.picker.is_complete() {
            return;
        }
        let mut peers = self.choker_peers();
        for _ in 0..MAX_UPGRADES_PER_TICK {
            let sessions = &self.sessions;
            let Some((out, into)) = self
                .choker
                .upgrade(&peers, |c| sessions.get(&c).is_some_and(|s| !s.am_choking))
            else {
                return;
            };
            self.set_choke(out, true);
            self.set_choke(into, false);
            peers.retain(|p| p.conn != out && p.conn != into);
        }
    }

    pub(super) fn rechoke(&mut self) {
        let now = self.now;
        if self.super_seeding() {
            // Uninterested peers give their slot back; the free slots go to
            // waiting peers at random. A peer keeps its slot while it fetches
            // what was advertised to it.
            let idle: Vec<ConnId> = self
                .sessions
                .values()
                .filter(|s| s.phase == Phase::Established && !s.am_choking && !s.peer_interested)
                .map(|s| s.conn)
                .collect();
            for conn in idle {
                self.set_choke(conn, true);
            }
            self.fill_free_slots();
            return;
        }
        let peers = self.choker_peers();
        if let Some(cap) = self.config.upload_capacity_bps {
            let used: f64 = self.sessions.values().map(|s| s.upload_rate.get(now)).sum();
            let waiting = peers
                .iter()
                .any(|p| p.interested && !self.choker.unchoked().contains(&p.conn));
            let slots = self.choker.slots();
            if used < 0.9 * cap as f64 && waiting && self.idle_slot_holders().is_empty() {
                // Widen quickly (by half) while capacity sits idle; narrow
                // one at a time when saturated.
                self.choker.set_slots(slots + slots.div_ceil(2));
            } else if used > 0.98 * cap as f64 {
                self.choker.set_slots(slots.saturating_sub(1));
            }
        }
        let seeding = self.picker.is_complete();
        let unchoke = self
            .choker
            .rechoke(now, seeding, &peers, &mut self.rng)
            .clone();
        for p in peers {
            self.set_choke(p.conn, !unchoke.contains(&p.conn));
        }
    }

    pub(super) fn set_choke(&mut self, conn: ConnId, choke: bool) {
        let now = self.now;
        let Some(s) = self.sessions.get_mut(&conn) else {
            return;
        };
        if s.am_choking == choke {
            return;
        }
        s.am_choking = choke;
        if choke {
            let void = s.choke(now);
            let fast = s.fast;
            self.transmit(conn, Message::Choke);
            if fast {
                // BEP 6: a choke voids nothing by itself; say which requests
                // we drop (blocks already handed to the driver still go).
                for block in void {
                    self.transmit(conn, Message::Reject(block));
                }
            }
        } else {
            s.asked_at = now;
            self.transmit(conn, Message::Unchoke);
        }
    }
}
