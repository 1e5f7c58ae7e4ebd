//! Super-seeding (after BEP 16) for the hub: instead of a bitfield, a
//! super-seed tells each peer about one or two pieces at a time, the rarest it
//! has advertised least, and tells it about another only when one of those
//! has spread (a second peer announced it). Each piece then leaves the hub
//! about once and peers must trade to finish, so the hub sends few copies.
//! A peer waiting for its pieces to spread may still be given one nobody
//! holds or fetches (up to twice `super_seed_pieces` pending): that is a
//! first copy whoever gets it, and it keeps the hub's uplink busy.
//!
//! Once a piece has been advertised `super_seed_max_adverts` times and other
//! peers hold it, it is not advertised again: the swarm carries it from there.
//!
//! In a swarm too small to trade (fewer than `super_seed_min_peers` downloading
//! peers), or when a peer finished its advertised pieces and nobody took them
//! from it for `super_seed_stall`, or when a downloading peer with nothing
//! advertised to it announced no piece for `super_seed_idle` (its sources may
//! be banned corrupt peers, which still count as holders here), the hub
//! reveals everything to that peer and serves it as a normal seed:
//! super-seeding must never stall a pull.

use super::Node;
use crate::session::{Phase, Session};
use crate::wire::Message;
use crate::ConnId;

impl Node {
    pub(super) fn super_seeding(&self) -> bool {
        self.config.super_seed && self.picker.is_complete()
    }

    /// Advertise pieces to `conn` until it has `super_seed_pieces` pending.
    pub(super) fn super_advertise(&mut self, conn: ConnId) {
        let want = self.config.super_seed_pieces.max(1);
        self.super_advertise_up_to(conn, want, false);
    }

    /// Advertise pieces to `conn` until it has `want` pending; only pieces
    /// nobody holds or fetches when `fresh_only`.
    fn super_advertise_up_to(&mut self, conn: ConnId, want: usize, fresh_only: bool) {
        use rand::RngExt;
        loop {
            let Some(s) = self.sessions.get(&conn) else {
                return;
            };
            if s.super_revealed || s.super_pending.len() >= want {
                return;
            }
            let n = self.config.geometry.num_pieces();
            let mut best: Vec<u32> = Vec::new();
            let mut best_key = (u32::MAX, u32::MAX);
            for p in 0..n {
                if s.remote_has.contains(p) || s.super_pending.contains(&p) {
                    continue;
                }
                let availability = self.picker.availability(p);
                let adverts = self.super_advert_count[p as usize];
                // Pieces others hold are offered only a few times. A piece
                // nobody holds yet is offered again only when fewer than that
                // many peers are fetching it now, so nothing can stall.
                let cap = self.config.super_seed_max_adverts;
                let fetching = self.super_advertised_to[p as usize].len() as u32;
                if (availability > 0 && adverts >= cap) || (availability == 0 && fetching >= cap) {
                    continue;
                }
                if fresh_only && (availability > 0 || fetching > 0) {
                    continue;
                }
                // Rarest first, counting the copies on their way from us:
                // a piece never sent goes before a second copy of any.
                let key = (availability + fetching, adverts);
                if key < best_key {
                    best_key = key;
                    best.clear();
                }
                if key == best_key {
                    best.push(p);
                }
            }
            if best.is_empty() {
                return;
            }
            let piece = best[self.rng.random_range(0..best.len())];
            self.super_advert_count[piece as usize] += 1;
            self.super_advertised_to[piece as usize].push(conn);
            if let Some(s) = self.sessions.get_mut(&conn) {
                s.super_pending.push(piece);
                s.super_stalled_since = None;
            }
            self.transmit(conn, Message::Have(piece));
        }
    }

    /// `conn` is unchoked and may have nothing left to fetch: advertise it
    /// more when it still holds its slot or a slot is free; otherwise it
    /// gave its slot back (and others took it), so it is choked and waits
    /// its turn like everyone else.
    fn super_keep_busy(&mut self, conn: ConnId) {
        let Some(s) = self.sessions.get(&conn) else {
            return;
        };
        let holding = holds_slot(s);
        let busy = self.super_held();
        if holding || busy < self.super_slots {
            self.super_advertise(conn);
        } else {
            self.set_choke(conn, true);
        }
    }

    /// Peers holding a super-seed slot now.
    pub(super) fn super_held(&self) -> usize {
        self.sessions
            .values()
            .filter(|s| s.phase == Phase::Established && holds_slot(s))
            .count()
    }

    /// Give free super-seed slots to waiting peers. A peer holds a slot
    /// while it is unchoked and fetching what was advertised to it (or, once
    /// revealed everything, while interested). Free slots go to the peers
    /// given least so far (ties at random), which are advertised their
    /// pieces only now: a piece is advertised to a peer the hub is about to
    /// serve, so with few slots each piece leaves the hub once, at full
    /// rate, to a peer that can pass it on at once.
    pub(super) fn super_fill_slots(&mut self) {
        use rand::RngExt;
        let slots = self.super_slots;
        let mut busy = self.super_held();
        self.super_over = self.super_over.min(busy.saturating_sub(slots));
        if busy >= slots {
            return;
        }
        let mut waiting: Vec<(u64, ConnId)> = self
            .sessions
            .values()
            .filter(|s| {
                s.phase == Phase::Established
                    && s.am_choking
                    && !s.upload_only
                    && !s.remote_has.is_full()
            })
            .map(|s| (s.bytes_up, s.conn))
            .collect();
        for i in (1..waiting.len()).rev() {
            waiting.swap(i, self.rng.random_range(0..=i));
        }
        waiting.sort_by_key(|(given, _)| *given);
        // Each failed advert scans every piece; a few in a row mean nothing
        // is left to advertise now (the rest wait for pieces to spread).
        let mut failed_adverts = 0;
        for (_, conn) in waiting {
            if busy >= slots || failed_adverts >= MAX_FAILED_ADVERTS {
                return;
            }
            let Some(s) = self.sessions.get(&conn) else {
                continue;
            };
            let ready = if s.super_revealed {
                s.peer_interested
            } else if fetching_from_us(s) {
                true
            } else {
                // Nothing pending: advertise as usual. Pieces fetched and
                // waiting to spread: a piece nobody holds or fetches is still
                // worth sending it now, a first copy whoever gets it, while
                // the hub's uplink would idle meanwhile (lab-flash-crowd: hub
                // egress 7 of 25 Mbit/s while peers traded, and the last
                // pieces first left the hub after 120 s).
                let pieces = self.config.super_seed_pieces.max(1);
                let waits = !s.super_pending.is_empty();
                let want = if waits { 2 * pieces } else { pieces };
                self.super_advertise_up_to(conn, want, waits);
                let advertised = self.sessions.get(&conn).is_some_and(fetching_from_us);
                if !advertised {
                    failed_adverts += 1;
                }
                advertised
            };
            if ready {
                self.set_choke(conn, false);
                busy += 1;
            }
        }
    }

    /// The peer's bitfield arrived after we advertised: drop advertised pieces
    /// it already has and advertise others.
    pub(super) fn super_after_bitfield(&mut self, conn: ConnId) {
        let Some(s) = self.sessions.get_mut(&conn) else {
            return;
        };
        let had: Vec<u32> = s
            .super_pending
            .iter()
            .copied()
            .filter(|p| s.remote_has.contains(*p))
            .collect();
        s.super_pending.retain(|p| !had.contains(p));
        let unchoked = !s.am_choking;
        self.super_forget(conn, &had);
        if unchoked {
            self.super_keep_busy(conn);
        }
        self.super_fill_slots();
    }

    /// Peer `from` announced `piece`.
    pub(super) fn super_on_have(&mut self, from: ConnId, piece: u32) {
        if let Some(s) = self.sessions.get_mut(&from) {
            s.super_progress_at = self.now;
        }
        let spread = self.picker.availability(piece) >= 2;
        let Some(list) = self.super_advertised_to.get_mut(piece as usize) else {
            return;
        };
        let waiting = std::mem::take(list);
        // `from` finished a piece we sent it: its slot is free for the next peer.
        let freed = waiting.contains(&from);
        let mut keep = Vec::new();
        let mut advance = Vec::new();
        for conn in waiting {
            if conn == from && !spread {
                // It finished the piece but nobody else has it yet: wait.
                if let Some(s) = self.sessions.get_mut(&conn) {
                    s.super_stalled_since.get_or_insert(self.now);
                }
                keep.push(conn);
            } else {
                advance.push(conn);
            }
        }
        self.super_advertised_to[piece as usize] = keep;
        let changed = !advance.is_empty();
        if !spread && self.super_swarm_is_small() {
            // Nobody to trade with: do not make a lone puller wait.
            self.super_reveal(from);
        }
        for conn in advance {
            if let Some(s) = self.sessions.get_mut(&conn) {
                s.super_pending.retain(|p| *p != piece);
                // Its piece spread: it is not waiting on us any more.
                s.super_stalled_since = None;
                if !s.am_choking {
                    self.super_keep_busy(conn);
                }
            }
        }
        if changed || freed {
            self.super_fill_slots();
        }
    }

    /// Per-tick check: reveal everything when the swarm is too small to trade,
    /// to a peer that has been waiting too long on a piece it took from us, or
    /// to one with nothing from us to fetch that has stopped making progress.
    pub(super) fn super_tick(&mut self) {
        if !self.super_seeding() {
            return;
        }
        let now = self.now;
        let stall = self.config.super_seed_stall;
        let idle = self.config.super_seed_idle;
        let small = self.super_swarm_is_small();
        let idle_leecher = |s: &&crate::session::Session| {
            s.super_pending.is_empty()
                && !s.upload_only
                && !s.remote_has.is_full()
                && now >= s.super_progress_at + idle
        };
        let reveal: Vec<ConnId> = self
            .sessions
            .values()
            .filter(|s| s.phase == Phase::Established && !s.super_revealed)
            .filter(|s| {
                small || s.super_stalled_since.is_some_and(|t| now >= t + stall) || idle_leecher(s)
            })
            .map(|s| s.conn)
            .collect();
        for conn in reveal {
            self.super_reveal(conn);
        }
        self.super_fill_slots();
    }

    /// A choked downloading peer waits for a slot. (Peers told nothing yet
    /// cannot be interested: interest is no measure here.)
    pub(super) fn super_has_waiting(&self) -> bool {
        self.sessions.values().any(|s| {
            s.phase == Phase::Established
                && s.am_choking
                && !s.upload_only
                && !s.remote_has.is_full()
                && (!s.super_revealed || s.peer_interested)
        })
    }

    /// Fewer downloading peers than `super_seed_min_peers` are connected: too
    /// few to trade among themselves. (Interest is no measure: once the hub
    /// has advertised a piece enough times, peers rightly lose interest in it.)
    fn super_swarm_is_small(&self) -> bool {
        let leechers = self
            .sessions
            .values()
            .filter(|s| s.phase == Phase::Established && !s.remote_has.is_full() && !s.upload_only)
            .count();
        leechers < self.config.super_seed_min_peers
    }

    /// Serve `conn` as a normal seed from now on.
    pub(super) fn super_reveal(&mut self, conn: ConnId) {
        let Some(s) = self.sessions.get_mut(&conn) else {
            return;
        };
        s.super_revealed = true;
        let pending = std::mem::take(&mut s.super_pending);
        let missing: Vec<u32> = (0..self.config.geometry.num_pieces())
            .filter(|p| !s.remote_has.contains(*p) && !pending.contains(p))
            .collect();
        self.super_forget(conn, &pending);
        // A bitfield may only open a connection; later, one have per piece.
        for piece in missing {
            self.transmit(conn, Message::Have(piece));
        }
    }

    /// Forget `conn`'s advertised pieces (it left or was revealed everything).
    pub(super) fn super_forget(&mut self, conn: ConnId, pending: &[u32]) {
        for &p in pending {
            if let Some(list) = self.super_advertised_to.get_mut(p as usize) {
                list.retain(|c| *c != conn);
            }
        }
    }
}

/// Failed adverts in a row after which `super_fill_slots` stops looking.
const MAX_FAILED_ADVERTS: usize = 4;

/// The peer holds one of a super-seed's slots: unchoked, and fetching what
/// was advertised to it (or interested, once revealed everything).
fn holds_slot(s: &Session) -> bool {
    !s.am_choking && (s.peer_interested || fetching_from_us(s))
}

/// The peer still lacks a piece we advertised to it.
fn fetching_from_us(s: &Session) -> bool {
    s.super_pending.iter().any(|p| !s.remote_has.contains(*p))
}
