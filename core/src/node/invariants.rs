//! `Node::check_invariants`: consistency checks of a node's state, for
//! property tests and the simulator's checked runs. Pure (no side effects),
//! O(pieces x connections); meant to run after every input in debug builds
//! of tests, not in production.

use std::collections::BTreeSet;

use super::{peer_key, Node};
use crate::session::Phase;

impl Node {
    /// Check what must hold between any two inputs, and say what does not:
    ///
    /// - the picker's own bookkeeping is consistent (see `Picker::check_invariants`);
    /// - availability: for every piece, the picker's count equals the number
    ///   of open sessions whose known piece set holds it;
    /// - requests: the blocks the picker has outstanding with each peer are
    ///   exactly the session's `requests_out`;
    /// - upload slots: no more interested peers unchoked than the node's
    ///   current upload slots (the choker's regular slots, widened or not,
    ///   plus the optimistic ones; or a super-seed's slots, plus the peers
    ///   that keep theirs after the slots were narrowed), a choked peer
    ///   has no queued requests, and no peer has more blocks in flight than
    ///   the largest upload window (`max_upload_window`, at least
    ///   `max_upload_inflight`: the window is sized from the sending rate);
    /// - the choker's slots stay within `slots ..= max_slots`;
    /// - bytes: `stats.bytes_down` plus the bytes the node got outside the
    ///   swarm (pieces it started with, pieces obtained by web seed) equals
    ///   the bytes of its verified pieces plus the bytes received into pieces
    ///   not yet verified (a failed piece takes its bytes off both sides);
    ///   `stats.bytes_up` is at least what the open sessions were sent;
    /// - no open session belongs to a banned peer;
    /// - locality: with a site known, each piece's same-site count is the
    ///   number of established same-site sessions holding it; without one,
    ///   no session is far.
    pub fn check_invariants(&self) -> Result<(), String> {
        self.picker.check_invariants()?;
        self.check_locality()?;

        let n = self.config.geometry.num_pieces() as usize;
        let mut counted = vec![0u32; n];
        for s in self.sessions.values() {
            for p in s.remote_has.iter() {
                counted[p as usize] += 1;
            }
        }
        let availability = self.picker.availability_all();
        if let Some(p) = (0..n).find(|&p| availability[p] != counted[p]) {
            return Err(format!(
                "availability of piece {p} is {} but {} connected peers have it",
                availability[p], counted[p]
            ));
        }

        let picker_requests = self.picker.requested_blocks();
        let session_requests: BTreeSet<_> = self
            .sessions
            .values()
            .flat_map(|s| s.requests_out.iter().map(|(b, _)| (s.conn, *b)))
            .collect();
        if picker_requests != session_requests {
            let only_picker: Vec<_> = picker_requests
                .difference(&session_requests)
                .take(3)
                .collect();
            let only_sessions: Vec<_> = session_requests
                .difference(&picker_requests)
                .take(3)
                .collect();
            return Err(format!(
                "outstanding requests disagree: picker only {only_picker:?}, sessions only {only_sessions:?}"
            ));
        }

        let (held, slots) = if self.super_seeding() {
            // Narrowed slots let their current holders finish (`super_over`).
            (self.super_held(), self.super_slots + self.super_over)
        } else {
            let held = self
                .sessions
                .values()
                .filter(|s| !s.am_choking && s.peer_interested)
                .count();
            (held, self.upload_slots())
        };
        if held > slots {
            return Err(format!(
                "{held} interested peers unchoked, only {slots} upload slots"
            ));
        }
        let max_slots = self.config.choker.max_slots.max(self.config.choker.slots);
        if !(self.config.choker.slots..=max_slots).contains(&self.choker.slots()) {
            return Err(format!(
                "choker has {} regular slots, outside {}..={max_slots}",
                self.choker.slots(),
                self.config.choker.slots
            ));
        }
        for s in self.sessions.values() {
            if !s.am_choking && s.phase != Phase::Established {
                return Err(format!("{:?} unchoked before its handshake", s.conn));
            }
            if s.am_choking && !s.their_queue.is_empty() {
                return Err(format!(
                    "{:?} is choked but has {} queued requests",
                    s.conn,
                    s.their_queue.len()
                ));
            }
            let most = self
                .config
                .session
                .max_upload_window
                .max(self.config.session.max_upload_inflight);
            if s.upload_inflight.len() > most {
                return Err(format!(
                    "{:?} has {} blocks in flight, at most {most}",
                    s.conn,
                    s.upload_inflight.len(),
                ));
            }
            if self
                .banned
                .contains(&peer_key(s.addr, s.identity.as_deref()))
            {
                return Err(format!("{:?} ({}) is banned but connected", s.conn, s.addr));
            }
        }

        let left = self.stats.bytes_down + self.outside_bytes;
        let right = self.picker.have_bytes() + self.picker.received_bytes();
        if left != right {
            return Err(format!(
                "bytes: downloaded {} + obtained outside {} != verified {} + received unverified {}",
                self.stats.bytes_down,
                self.outside_bytes,
                self.picker.have_bytes(),
                self.picker.received_bytes()
            ));
        }
        let sent: u64 = self.sessions.values().map(|s| s.bytes_up).sum();
        if sent > self.stats.bytes_up {
            return Err(format!(
                "bytes: open sessions were sent {sent}, more than the node's total {}",
                self.stats.bytes_up
            ));
        }
        Ok(())
    }

    fn check_locality(&self) -> Result<(), String> {
        if self.site.is_none() {
            return match self.sessions.values().find(|s| s.far) {
                Some(s) => Err(format!("{:?} is far while our site is unknown", s.conn)),
                None => Ok(()),
            };
        }
        let mut near = vec![0u16; self.near_count.len()];
        let sessions = self.sessions.values();
        for s in sessions.filter(|s| !s.far && s.phase == Phase::Established) {
            for p in s.remote_has.iter() {
                near[p as usize] += 1;
            }
        }
        let wrong = |p: usize| {
            near[p] != self.near_count[p] || (near[p] > 0) != self.near_union.contains(p as u32)
        };
        match (0..near.len()).find(|&p| wrong(p)) {
            Some(p) => Err(format!(
                "piece {p}: same-site count {} (in the union: {}) but {} same-site peers have it",
                self.near_count[p],
                self.near_union.contains(p as u32),
                near[p]
            )),
            None => Ok(()),
        }
    }
}
