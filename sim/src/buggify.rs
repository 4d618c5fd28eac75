//! BUGGIFY hooks for the client and broker drivers, with FoundationDB's two-phase semantics:
//! a call site is activated (or not) for the whole run by its name and the seed, and an
//! active site then fires on 25 % of the calls that reach it. madsim's own `buggify()` is one
//! global flag with no per-site activation (spec §1.8), hence this table.
//!
//! Hooks only perturb what a driver does around broker-core (delays, slow listeners), never
//! a decision broker-core makes. They are off unless the scenario's `[swarm]` says
//! `buggify = true`; off, a hook draws nothing from madsim's RNG, so seeds replay as before.

use madsim::rand::Rng;
use std::cell::Cell;

/// Percent of call sites active in a run.
pub const ACTIVATED_PERCENT: u64 = 25;
/// Percent of calls at an active site that fire.
pub const FIRED_PERCENT: u32 = 25;

thread_local! {
    // Each seed runs on its own thread, so the flag cannot leak between runs.
    static SEED: Cell<Option<u64>> = const { Cell::new(None) };
}

/// Switches the hooks on for this thread's run (`Some(seed)`) or off.
pub fn set_seed(seed: Option<u64>) {
    SEED.with(|s| s.set(seed));
}

/// Is `site` active in the run of `seed`? A pure function of both, so it can be printed.
pub fn activated(seed: u64, site: &str) -> bool {
    let mut h = 0xcbf2_9ce4_8422_2325u64 ^ seed.wrapping_mul(0x9E37_79B9_7F4A_7C15);
    for b in site.bytes() {
        h = (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3);
    }
    h = (h ^ (h >> 33)).wrapping_mul(0xff51_afd7_ed55_8ccd);
    (h ^ (h >> 33)) % 100 < ACTIVATED_PERCENT
}

/// True if the hook named `site` fires now.
pub fn buggify(site: &str) -> bool {
    let Some(seed) = SEED.with(Cell::get) else {
        return false;
    };
    activated(seed, site) && madsim::rand::thread_rng().gen_range(0..100u32) < FIRED_PERCENT
}

/// Every hook in the drivers, for `popsim run` to print which are active.
pub const SITES: &[&str] = &["push-ack-delay", "push-slow-listener", "broker-slow-timer"];

/// The active sites of `seed`'s run.
pub fn active_sites(seed: u64) -> Vec<&'static str> {
    SITES
        .iter()
        .copied()
        .filter(|s| activated(seed, s))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn activation_is_per_site_and_per_seed() {
        let runs: Vec<Vec<&str>> = (0..200).map(active_sites).collect();
        assert_eq!(runs, (0..200).map(active_sites).collect::<Vec<_>>());
        let active: usize = runs.iter().map(Vec::len).sum();
        // About a quarter of 3 × 200 sites.
        assert!((90..=210).contains(&active), "{active}");
        assert!(runs.iter().any(|r| r.len() == 1));
    }

    #[test]
    fn off_by_default() {
        assert!(!buggify("push-ack-delay"));
    }
}
