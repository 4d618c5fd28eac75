//! Seeded randomness, one named stream per purpose: a ChaCha8 generator seeded with the
//! run's seed on the stream its purpose names. Streams are independent, so adding a draw
//! for one purpose leaves every other purpose's draws as they were.
//!
//! broker-core draws only what upstream draws with `ThreadLocalRandom`: `randomQ` per pop
//! (the first queue, `popFromRetryProbability`). The simulation draws its scheduler and the
//! swarm its parameters from streams of their own.

pub use rand::Rng;
use rand::SeedableRng;
pub use rand_chacha::ChaCha8Rng;

/// The stream for `purpose` of the run with `seed`.
pub fn stream(seed: u64, purpose: &str) -> ChaCha8Rng {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    rng.set_stream(fnv1a(purpose.as_bytes()));
    rng
}

/// FNV-1a, 64 bit: the stream number of a purpose's name.
fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(*b)).wrapping_mul(0x0000_0100_0000_01b3)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_seed_and_purpose_same_stream_other_purposes_differ() {
        let draw = |seed, purpose| -> Vec<u32> {
            let mut r = stream(seed, purpose);
            (0..8).map(|_| r.gen_range(0..100)).collect()
        };
        assert_eq!(draw(7, "a"), draw(7, "a"));
        assert_ne!(draw(7, "a"), draw(7, "b"));
        assert_ne!(draw(7, "a"), draw(8, "a"));
        assert!(draw(1, "a").iter().all(|&x| x < 100));
    }

    #[test]
    fn streams_are_value_stable() {
        // Pinned: a change of crate version or seeding would change every history.
        let mut r = stream(1, "broker.randomQ");
        let first: Vec<u32> = (0..4).map(|_| r.gen_range(0..100)).collect();
        assert_eq!(first, PINNED);
    }

    const PINNED: [u32; 4] = [19, 55, 25, 14];
}
