//! swarmhub-lab: the same scenario as the simulator, run with real processes
//! on shaped links. Every host (the hub and each client) gets a network
//! namespace joined by a veth pair to a bridge in a lab namespace; `tc tbf`
//! shapes each host's upload and download to the scenario's rates. The
//! engine is swarmhub itself or stock BitTorrent software for comparison, and
//! the outputs use the simulator's schema, so `swarmhub-reports` draws both.

pub mod compare;
pub mod counters;
pub mod cpu;
pub mod engine;
pub mod fleet;
pub mod net;
pub mod plan;
pub mod procs;
pub mod record;
pub mod run;
