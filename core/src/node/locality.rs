//! Site locality: which connections cross an inter-site link, and the rules
//! that make each piece cross a link about once and then spread inside the
//! site.
//!
//! The hub tells a node its site in the announce answer (and which listed
//! peers share it); the node tells its site to every peer in the extended
//! handshake, so inbound peers are classified too. Once the node knows its
//! site, a connection is *far* when the remote names another site, or names
//! none and is not one of the same-site peers of the tracker's lists.
//!
//! A thin link of capacity C is the bottleneck of the site behind it: every
//! duplicate crossing is C spent for nothing. So, with a site known:
//! - dialing: same-site candidates first; at most `cross_site_peers` far
//!   connections (the hub's pinned seeders aside);
//! - requests to a far peer: only pieces no same-site neighbour has. When a
//!   same-site neighbour announces a piece we are fetching across a link,
//!   the rest of it is cancelled there and fetched inside the site;
//! - unchoking (see `Choker`): far peers hold at most
//!   `ChokerConfig::cross_site_slots` of our slots.
//!
//! With no site known nothing here changes what the node does: every
//! connection is near and no count is kept. The hub (a super-seed) tells its
//! site but treats every connection as near: it is every site's origin.

use core::net::SocketAddr;

use super::Node;
use crate::pieceset::PieceSet;
use crate::session::{Phase, Session};
use crate::tracker::AnnounceResponse;
use crate::wire::Message;
use crate::ConnId;

impl Node {
    /// Our site, as the hub told it (`None` until an announce answer names one).
    pub fn site(&self) -> Option<&str> {
        self.site.as_deref()
    }

    /// Takes our site and the same-site peers from a tracker answer.
    pub(super) fn learn_sites(&mut self, resp: &AnnounceResponse) {
        let near = resp.peers.iter().take(resp.near_peers as usize);
        self.near_addrs
            .extend(near.map(|p| SocketAddr::new(p.ip, p.port)));
        if resp.site.is_some() && resp.site != self.site {
            self.site = resp.site.clone();
            self.reclassify_all();
        }
    }

    /// Whether a session crosses a link, as far as we know now.
    pub(super) fn is_far(&self, s: &Session) -> bool {
        let Some(ours) = self.site.as_deref() else {
            return false;
        };
        if self.config.super_seed {
            // The hub is every site's origin: it serves all sites alike.
            return false;
        }
        match s.site.as_deref() {
            Some(theirs) => theirs != ours,
            None => {
                let listed_near = |a: &SocketAddr| self.near_addrs.contains(a);
                !(listed_near(&s.addr)
                    || self
                        .connected_addrs
                        .iter()
                        .any(|(a, c)| *c == s.conn && listed_near(a)))
            }
        }
    }

    /// Re-derives one session's side after its extended handshake.
    pub(super) fn classify(&mut self, conn: ConnId) {
        let Some(s) = self.sessions.get(&conn) else {
            return;
        };
        let far = self.is_far(s);
        if far == s.far {
            return;
        }
        let counted = s.phase == Phase::Established;
        let has = s.remote_has.clone();
        if let Some(s) = self.sessions.get_mut(&conn) {
            s.far = far;
        }
        if counted {
            if far {
                self.near_remove(&has);
            } else {
                self.near_add(&has);
            }
        }
        self.fill_requests(conn);
    }

    /// Our site changed: classify every connection again and recount.
    fn reclassify_all(&mut self) {
        let conns: Vec<ConnId> = self.sessions.keys().copied().collect();
        for conn in &conns {
            let far = self.sessions.get(conn).is_some_and(|s| self.is_far(s));
            if let Some(s) = self.sessions.get_mut(conn) {
                s.far = far;
            }
        }
        let n = self.config.geometry.num_pieces();
        self.near_count = vec![0; n as usize];
        self.near_union = PieceSet::new(n);
        let sets: Vec<PieceSet> = self
            .sessions
            .values()
            .filter(|s| !s.far && s.phase == Phase::Established)
            .map(|s| s.remote_has.clone())
            .collect();
        for has in &sets {
            self.near_add(has);
        }
        for conn in conns {
            self.fill_requests(conn);
        }
    }

    /// A same-site peer's pieces join the counts (bitfield, or reclassified).
    pub(super) fn near_add(&mut self, has: &PieceSet) {
        if self.site.is_none() {
            return;
        }
        for piece in has.iter() {
            self.near_gained(piece);
        }
    }

    /// A same-site peer left (or turned out to be far).
    pub(super) fn near_remove(&mut self, has: &PieceSet) {
        if self.site.is_none() {
            return;
        }
        for piece in has.iter() {
            if let Some(c) = self.near_count.get_mut(piece as usize) {
                *c = c.saturating_sub(1);
                if *c == 0 {
                    self.near_union.remove(piece);
                }
            }
        }
    }

    /// A same-site peer has `piece` now. The first one in our view makes
    /// our far requests for it pointless: cancel them, so the rest comes
    /// from inside the site.
    pub(super) fn near_gained(&mut self, piece: u32) {
        if self.site.is_none() {
            return;
        }
        let Some(c) = self.near_count.get_mut(piece as usize) else {
            return;
        };
        *c = c.saturating_add(1);
        if *c == 1 {
            self.near_union.insert(piece);
            self.cancel_far_requests(piece);
        }
    }

    fn cancel_far_requests(&mut self, piece: u32) {
        let config = self.config.session.clone();
        let far: Vec<ConnId> = self
            .sessions
            .values()
            .filter(|s| s.far && s.requests_out.iter().any(|(b, _)| b.piece == piece))
            .map(|s| s.conn)
            .collect();
        for conn in far {
            let Some(s) = self.sessions.get_mut(&conn) else {
                continue;
            };
            let mut cancelled = Vec::new();
            s.requests_out.retain(|(b, _)| {
                let hit = b.piece == piece;
                if hit {
                    cancelled.push(*b);
                }
                !hit
            });
            for block in &cancelled {
                s.remember_cancelled(*block, &config);
            }
            for block in cancelled {
                self.picker.request_dropped(conn, block);
                self.transmit(conn, Message::Cancel(block));
            }
            self.fill_requests(conn);
        }
    }

    /// The pieces of `has` we may ask a peer for: all of them from a
    /// same-site peer, only those no same-site neighbour has from a far one.
    pub(super) fn requestable(&self, far: bool, has: &PieceSet) -> Option<PieceSet> {
        if !far {
            return None;
        }
        Some(has.difference(&self.near_union))
    }

    /// Far connections that count against `cross_site_peers`: established
    /// or being dialed, the pinned hub seeders aside.
    fn far_connections(&self) -> usize {
        let pinned = |a: &SocketAddr| self.config.pinned_peers.contains(a);
        let sessions = self
            .sessions
            .values()
            .filter(|s| s.far && !pinned(&s.addr))
            .count();
        let dialing = self
            .dialing
            .iter()
            .filter(|a| !pinned(a) && !self.near_addrs.contains(a))
            .count();
        sessions + dialing
    }

    /// With a site known: a random same-site candidate, else a random far
    /// one while under `cross_site_peers`. `None` when neither.
    pub(super) fn pick_local_candidate(&mut self) -> Option<SocketAddr> {
        use rand::RngExt;
        let near: Vec<SocketAddr> = self
            .candidates
            .iter()
            .copied()
            .filter(|a| self.near_addrs.contains(a))
            .collect();
        let pool = if !near.is_empty() {
            near
        } else if self.far_connections() < self.config.cross_site_peers {
            self.candidates.iter().copied().collect()
        } else {
            return None;
        };
        if pool.is_empty() {
            return None;
        }
        let addr = pool[self.rng.random_range(0..pool.len())];
        self.candidates.remove(&addr);
        Some(addr)
    }

    /// Far peers we unchoke now (for `ChokerConfig::cross_site_slots`).
    pub(super) fn far_unchoked(&self) -> usize {
        self.sessions
            .values()
            .filter(|s| s.far && !s.am_choking && s.peer_interested)
            .count()
    }
}
