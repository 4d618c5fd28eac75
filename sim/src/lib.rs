//! # sim
//!
//! The madsim world around broker-core: a broker node, producers, POP consumers, offset and
//! admin clients talking over madsim's simulated network, faults drawn from one seed, the
//! recorder, the per-seed runner, and the `popsim` CLI's library half.

#[cfg(not(madsim))]
compile_error!(
    "popsim's simulation must be compiled with `--cfg madsim`. The repository's \
     .cargo/config.toml sets it, but an exported RUSTFLAGS replaces that file's flags: \
     unset RUSTFLAGS, or include the flag in it, e.g. RUSTFLAGS=\"--cfg madsim $RUSTFLAGS\"."
);

pub mod cli;
pub mod clients;
pub mod runner;
pub mod world;

pub use runner::{run_seed, sweep, RunOptions, RunOutcome, SeedSummary, SimPanic};
