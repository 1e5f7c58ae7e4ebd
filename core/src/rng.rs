//! Seeded randomness. Every state machine owns one [`Rng`]; children get seeds
//! drawn from their parent so a single seed reproduces a whole swarm.

use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha12Rng;

/// The core's random number generator: ChaCha12, seeded explicitly.
pub type Rng = ChaCha12Rng;

/// A new generator from a 64-bit seed.
pub fn from_seed(seed: u64) -> Rng {
    ChaCha12Rng::seed_from_u64(seed)
}

/// Draw a seed for a child state machine from its parent's generator.
pub fn child_seed(parent: &mut Rng) -> u64 {
    parent.random()
}
