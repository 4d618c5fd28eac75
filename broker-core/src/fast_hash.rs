//! A fixed, fast hasher for the lookup-only hash tables (the name interner, the checker's
//! point lookups).
//!
//! SipHash (`DefaultHasher`) resists crafted keys, which nothing here needs: every key is
//! made by the run itself. This is the multiply-rotate word hash rustc uses for its own
//! tables, a few instructions per eight bytes. Its output is fixed for a given input on every
//! platform, so even a table's iteration order would not depend on the process; the tables
//! that use it are never iterated anyway.

use std::hash::{BuildHasherDefault, Hasher};

/// The odd multiplier (from the golden ratio) that spreads each word over the high bits.
const SEED: u64 = 0x51_7c_c1_b7_27_22_0a_95;

#[derive(Clone, Copy, Debug, Default)]
pub struct FastHasher {
    hash: u64,
}

/// The `BuildHasher` of a table keyed with [`FastHasher`].
pub type FastBuildHasher = BuildHasherDefault<FastHasher>;

impl FastHasher {
    #[inline]
    fn add(&mut self, word: u64) {
        self.hash = (self.hash.rotate_left(5) ^ word).wrapping_mul(SEED);
    }
}

impl Hasher for FastHasher {
    #[inline]
    fn write(&mut self, bytes: &[u8]) {
        let mut chunks = bytes.chunks_exact(8);
        for chunk in &mut chunks {
            self.add(u64::from_le_bytes(
                chunk.try_into().expect("an 8-byte chunk"),
            ));
        }
        let rest = chunks.remainder();
        if !rest.is_empty() {
            let mut last = [0u8; 8];
            last[..rest.len()].copy_from_slice(rest);
            // The length keeps "a\0" and "a" apart.
            self.add(u64::from_le_bytes(last) ^ ((rest.len() as u64) << 56));
        }
    }

    #[inline]
    fn write_u8(&mut self, i: u8) {
        self.add(u64::from(i));
    }

    #[inline]
    fn write_u32(&mut self, i: u32) {
        self.add(u64::from(i));
    }

    #[inline]
    fn write_u64(&mut self, i: u64) {
        self.add(i);
    }

    #[inline]
    fn write_usize(&mut self, i: usize) {
        self.add(i as u64);
    }

    /// Folds the high bits down: a product's low bits depend only on its inputs' low bits,
    /// and the table picks its bucket from the low bits.
    #[inline]
    fn finish(&self) -> u64 {
        let h = self.hash ^ (self.hash >> 32);
        h ^ (h >> 16)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::hash::{BuildHasher, Hash};

    fn hash_of<T: Hash>(t: &T) -> u64 {
        FastBuildHasher::default().hash_one(t)
    }

    #[test]
    fn equal_keys_hash_equal_and_near_keys_apart() {
        assert_eq!(
            hash_of(&"p-events-25"),
            hash_of(&String::from("p-events-25"))
        );
        let names: Vec<String> = (0..10_000).map(|i| format!("p-events-{i}")).collect();
        let mut hashes: Vec<u64> = names.iter().map(hash_of).collect();
        let mut low: Vec<u64> = hashes.iter().map(|h| h & 0xfff).collect();
        hashes.sort_unstable();
        hashes.dedup();
        assert_eq!(hashes.len(), names.len(), "no collisions among near names");
        // The low twelve bits (a table's bucket) spread too: most of 4 096 values are taken.
        low.sort_unstable();
        low.dedup();
        assert!(low.len() > 3_000, "{} distinct low bit patterns", low.len());
        assert_ne!(hash_of(&("a", "b")), hash_of(&("ab", "")));
    }

    #[test]
    fn the_digest_is_fixed() {
        // Pinned: the hasher must not change with the platform or the process.
        assert_eq!(hash_of(&"g@orders"), hash_of(&"g@orders"));
        let h = 7u64.wrapping_mul(SEED);
        let h = h ^ (h >> 32);
        assert_eq!(hash_of(&7u64), h ^ (h >> 16));
    }
}
