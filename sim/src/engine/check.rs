//! Checked runs: invariants of every node and of the engine's byte counters,
//! verified after every event when [`Sim::set_check_invariants`] is on (or
//! `SWARMHUB_SIM_CHECK=1`). Off by default: a checked run is much slower and
//! an unchecked run's outputs do not depend on the checks.

use super::{HostState, Sim};

impl Sim {
    /// Turn per-event invariant checks on or off. A violation stops the run;
    /// [`Sim::violation`] then says what failed, where and when.
    pub fn set_check_invariants(&mut self, on: bool) {
        self.check = on;
    }

    /// The first invariant violation of a checked run, if any.
    pub fn violation(&self) -> Option<&str> {
        self.violation.as_deref()
    }

    /// After an event (`what`, for the message): check every node that took
    /// an input, and the swarm-wide byte conservation.
    pub(crate) fn check_event(&mut self, what: &str) {
        let mut touched = std::mem::take(&mut self.touched);
        touched.sort_unstable();
        touched.dedup();
        for &h in &touched {
            if let Err(e) = self.check_host(h) {
                self.fail(h, what, &e);
                return;
            }
        }
        if let Err(e) = self.conservation() {
            self.fail(0, what, &e);
        }
    }

    fn fail(&mut self, h: usize, what: &str, problem: &str) {
        let host = &self.hosts[h];
        let mut what = what.to_string();
        what.truncate(160);
        self.violation = Some(format!(
            "invariant violated at t={:.6}s on host {h} ({}, incarnation {}), seed {}, after event {what}: {problem}",
            self.now.as_secs_f64(),
            host.group,
            host.incarnation,
            self.seed,
        ));
    }

    /// The node's own invariants, and its counters against the engine's
    /// since it started: bytes the engine finished sending for it equal the
    /// node's `bytes_up`, and bytes delivered to it equal its `bytes_down`
    /// plus `bytes_wasted` (a failed piece moves bytes from one to the other).
    fn check_host(&self, h: usize) -> Result<(), String> {
        let host = &self.hosts[h];
        let Some(node) = host.node.as_ref() else {
            return Ok(());
        };
        if host.state != HostState::Active {
            return Ok(());
        }
        node.check_invariants()?;
        let stats = node.stats();
        let (up0, down0) = host.counters_at_start;
        let up = host.bytes_up - up0;
        let down = host.bytes_down_hub + host.bytes_down_peers - down0;
        if up != stats.bytes_up {
            return Err(format!(
                "engine sent {up} block bytes for this node, the node counts {}",
                stats.bytes_up
            ));
        }
        if down != stats.bytes_down + stats.bytes_wasted {
            return Err(format!(
                "engine delivered {down} block bytes to this node, the node counts {} kept + {} wasted",
                stats.bytes_down, stats.bytes_wasted
            ));
        }
        Ok(())
    }

    /// Bytes conserved across the swarm. Holds at every instant, so also at
    /// the end of a run:
    ///
    /// sum of `bytes_up` = sum of bytes delivered (`bytes_down_hub` +
    /// `bytes_down_peers`) + `bytes_lost` + `bytes_in_transit`
    ///
    /// where a block counts as sent once its flow finished (the sender's
    /// uplink carried all of it), as delivered when it arrived on an open
    /// connection, as lost when it arrived after its connection closed (a
    /// crash, a ban, a disconnect while it was on the wire), and as in
    /// transit in between. A flow cut short by a closed connection counts
    /// nowhere: its bytes were never sent whole.
    pub fn conservation(&self) -> Result<(), String> {
        let up: u64 = self.hosts.iter().map(|h| h.bytes_up).sum();
        let down: u64 = self
            .hosts
            .iter()
            .map(|h| h.bytes_down_hub + h.bytes_down_peers)
            .sum();
        if up != down + self.bytes_lost + self.bytes_in_transit {
            return Err(format!(
                "bytes not conserved: sent {up} != delivered {down} + lost {} + in transit {}",
                self.bytes_lost, self.bytes_in_transit
            ));
        }
        Ok(())
    }
}

impl Sim {
    /// Simulated time now (the end of the run, after [`Sim::run`]).
    pub fn now(&self) -> swarmhub_core::Instant {
        self.now
    }
}

impl super::SimHost {
    /// Lifecycle state.
    pub fn state(&self) -> HostState {
        self.state
    }

    /// Incremented at every start, crash and graceful stop of the host.
    pub fn incarnation(&self) -> u32 {
        self.incarnation
    }
}
