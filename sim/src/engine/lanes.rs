//! FIFO lanes for events scheduled a fixed delay ahead.
//!
//! Most events are messages that arrive one latency after they are sent, and a
//! scenario has only a few distinct latencies (one per pair of sites, and the
//! round trip of a connection set-up). Events pushed with the same delay from a
//! clock that never runs backwards come out in time order, so each delay keeps
//! a plain FIFO instead of sharing the binary heap: push and pop are O(1), and
//! the engine takes the earliest key across the heap, the flow queue and the
//! lane heads, which keeps the one global (time, sequence) order exactly.

use std::collections::VecDeque;

use swarmhub_core::{Duration, Instant};

use super::Ev;

/// Delays beyond this many distinct values go to the heap.
const MAX_LANES: usize = 32;

/// One FIFO per delay.
#[derive(Debug, Default)]
pub(crate) struct Lanes {
    lanes: Vec<Lane>,
}

#[derive(Debug)]
struct Lane {
    delay: Duration,
    events: VecDeque<(Instant, u64, Ev)>,
}

impl Lanes {
    /// Queue `ev` at `now + delay` with sequence `seq`; gives it back when
    /// every lane is taken by another delay.
    pub(crate) fn push(
        &mut self,
        now: Instant,
        delay: Duration,
        seq: u64,
        ev: Ev,
    ) -> Result<(), Ev> {
        let at = now + delay;
        let lane = match self.lanes.iter().position(|l| l.delay == delay) {
            Some(i) => i,
            None if self.lanes.len() < MAX_LANES => {
                self.lanes.push(Lane {
                    delay,
                    events: VecDeque::new(),
                });
                self.lanes.len() - 1
            }
            None => return Err(ev),
        };
        let events = &mut self.lanes[lane].events;
        debug_assert!(events.back().is_none_or(|b| (b.0, b.1) < (at, seq)));
        events.push_back((at, seq, ev));
        Ok(())
    }

    /// The earliest head: its key and lane.
    pub(crate) fn peek(&self) -> Option<((Instant, u64), usize)> {
        let mut best: Option<((Instant, u64), usize)> = None;
        for (i, lane) in self.lanes.iter().enumerate() {
            if let Some(&(at, seq, _)) = lane.events.front() {
                if best.is_none_or(|(k, _)| (at, seq) < k) {
                    best = Some(((at, seq), i));
                }
            }
        }
        best
    }

    /// Take the head of `lane` (from [`Lanes::peek`]).
    pub(crate) fn pop(&mut self, lane: usize) -> Option<(Instant, Ev)> {
        self.lanes[lane]
            .events
            .pop_front()
            .map(|(at, _, ev)| (at, ev))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_leave_in_time_then_sequence_order_across_lanes() {
        let mut lanes = Lanes::default();
        let ms = Duration::from_millis;
        let t = |m: u64| Instant::from_micros(m * 1000);
        lanes.push(t(0), ms(10), 1, Ev::Sample).unwrap();
        lanes.push(t(0), ms(5), 2, Ev::HubDown).unwrap();
        lanes.push(t(5), ms(5), 3, Ev::HubUp).unwrap();
        lanes.push(t(5), ms(10), 4, Ev::Leave(1)).unwrap();
        let mut order = Vec::new();
        while let Some((key, lane)) = lanes.peek() {
            let (at, ev) = lanes.pop(lane).unwrap();
            assert_eq!(at, key.0);
            order.push((at, format!("{ev:?}")));
        }
        // At 10 ms the event pushed first (sequence 1) leaves before the one
        // pushed later with the shorter delay (sequence 3).
        assert_eq!(
            order,
            vec![
                (t(5), "HubDown".to_string()),
                (t(10), "Sample".to_string()),
                (t(10), "HubUp".to_string()),
                (t(15), "Leave(1)".to_string()),
            ]
        );
    }

    #[test]
    fn a_delay_beyond_the_lane_limit_is_handed_back() {
        let mut lanes = Lanes::default();
        for i in 0..MAX_LANES as u64 {
            lanes
                .push(Instant::ZERO, Duration::from_micros(i + 1), i, Ev::Sample)
                .unwrap();
        }
        let back = lanes.push(Instant::ZERO, Duration::from_secs(9), 99, Ev::HubUp);
        assert!(matches!(back, Err(Ev::HubUp)));
        // A delay that has a lane still fits.
        assert!(lanes
            .push(Instant::ZERO, Duration::from_micros(1), 100, Ev::Sample)
            .is_ok());
    }
}
