//! swarmhub-core: the sans-IO protocol core of swarmhub.
//!
//! Everything the protocol decides lives here, so the simulator (`swarmhub-sim`)
//! measures the behaviour the real node (`swarmhub-node`) ships. No sockets, files,
//! clocks, global randomness or async: time comes in as an argument and randomness
//! from an owned, seeded ChaCha RNG.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod rng;
pub mod time;

pub use librqbit_core::hash_id::Id20;
pub use time::{Duration, Instant};
