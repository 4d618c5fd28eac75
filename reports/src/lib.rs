//! # reports
//!
//! popsim's history vocabulary ([`history`]), the invariant checker over a recorded history
//! and the broker's final state ([`invariants`]), and the report model with its renderers.
//! Nothing here runs a simulation.

pub mod history;
pub mod invariants;

#[cfg(test)]
mod testkit;

pub use history::{Event, EventKind, History, RunMeta};
pub use invariants::{
    check, invariant_names, lookup, try_check, InvariantInfo, InvariantResult, Status,
    UnknownInvariant, Witness,
};
