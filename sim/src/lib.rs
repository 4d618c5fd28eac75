//! # sim
//!
//! The madsim world around broker-core: a broker node, a proxy node for the gRPC clients,
//! producers, POP consumers, offset and admin clients talking over madsim's simulated network, faults drawn from one seed, the
//! recorder, the per-seed runner, and the `popsim` CLI's library half.
//!
//! ```
//! let ctx = scenarios::Context::with_invariants(reports::invariant_names());
//! let scenario = scenarios::resolve("late-ack-after-ck-flush", &ctx).unwrap();
//! let opts = sim::RunOptions {
//!     behaviours: ["buffered-ack-missing-broker-name", "revive-no-blank-broker-name-fallback"]
//!         .iter()
//!         .map(|b| b.parse().unwrap())
//!         .collect(),
//!     ..Default::default()
//! };
//! let outcome = sim::run_seed(&scenario, 1, &opts);
//! assert_eq!(outcome.violated(), ["no-redelivery-after-ack"]);
//! // Same seed, same history, byte for byte.
//! assert_eq!(sim::run_seed(&scenario, 1, &opts).hash, outcome.hash);
//! ```

#[cfg(not(madsim))]
compile_error!(
    "popsim's simulation must be compiled with `--cfg madsim`. The repository's \
     .cargo/config.toml sets it, but an exported RUSTFLAGS replaces that file's flags: \
     unset RUSTFLAGS, or include the flag in it, e.g. RUSTFLAGS=\"--cfg madsim $RUSTFLAGS\"."
);

pub mod bench;
pub mod buggify;
pub mod cli;
pub mod clients;
pub mod explore;
pub mod output;
pub mod proxy;
pub mod runner;
pub mod shrink;
pub mod sweep;
pub mod verify;
pub mod world;

pub use runner::{
    prepare, run_seed, sweep, PreparedSeed, RunOptions, RunOutcome, SeedSummary, SimPanic,
};
