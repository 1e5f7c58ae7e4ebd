//! swarmhub-core: the sans-IO protocol core of swarmhub.
//!
//! Everything the protocol decides lives here, so the simulator (`swarmhub-sim`)
//! measures the behaviour the real node (`swarmhub-node`) ships. No sockets, files,
//! clocks, global randomness or async: time comes in as an argument and randomness
//! from an owned, seeded ChaCha RNG.
//!
//! Modules, bottom up:
//! - [`time`], [`rng`]: injected time and seeded randomness.
//! - [`metainfo`]: image metainfo (BEP 3 + BEP 27 private, per-file SHA-256).
//! - [`wire`]: BEP 3 / BEP 10 message codec with an incremental decoder.
//! - [`pieceset`], [`picker`], [`choker`], [`session`]: the parts of a peer.
//! - [`node`]: one peer's view of one image as a state machine.
//! - [`tracker`]: the hub's private tracker logic and HTTP announce encoding.
//! - [`settings`]: hub, client and protocol settings, and the one place
//!   they become a [`NodeConfig`] (used by the simulator and the node alike).
//! - [`memswarm`]: an in-memory swarm of real nodes for tests and demos.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod choker;
pub mod memswarm;
pub mod metainfo;
pub mod node;
pub mod picker;
pub mod pieceset;
pub mod rng;
pub mod session;
pub mod settings;
pub mod sites;
pub mod time;
pub mod tracker;
pub mod wire;

pub use librqbit_core::hash_id::Id20;
pub use node::{Input, Node, NodeConfig, NodeEvent, Output};
pub use time::{Duration, Instant};

/// A connection, as numbered by the driver. Unique among a node's open connections.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ConnId(pub u64);
