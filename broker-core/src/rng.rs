//! The one source of pseudo-randomness: upstream draws `ThreadLocalRandom.nextInt(100)` per
//! pop (`randomQ`, which picks the first queue and decides `popFromRetryProbability`). The
//! model draws the same numbers from a SplitMix64 stream seeded by the driver, so a run is
//! a pure function of its seed.

/// SplitMix64 (Steele, Lea, Flood 2014): tiny, full-period, good enough for choices.
#[derive(Clone, Debug)]
pub(crate) struct SplitMix64 {
    state: u64,
}

impl SplitMix64 {
    pub(crate) fn new(seed: u64) -> Self {
        Self { state: seed }
    }

    pub(crate) fn next_u64(&mut self) -> u64 {
        self.state = self.state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.state;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in `0..bound` (`Random.nextInt(bound)`); `bound` must be positive.
    pub(crate) fn next_below(&mut self, bound: u32) -> u32 {
        assert!(bound > 0, "next_below needs a positive bound");
        // Multiply-shift: unbiased enough for bounds this small, and branch-free.
        ((u128::from(self.next_u64()) * u128::from(bound)) >> 64) as u32
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_seed_same_stream_and_bounded() {
        let mut a = SplitMix64::new(7);
        let mut b = SplitMix64::new(7);
        for _ in 0..1000 {
            let x = a.next_below(100);
            assert_eq!(x, b.next_below(100));
            assert!(x < 100);
        }
        assert_ne!(SplitMix64::new(1).next_u64(), SplitMix64::new(2).next_u64());
    }
}
