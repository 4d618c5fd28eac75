//! # reports
//!
//! popsim's history vocabulary ([`history`]), the invariant checker over a recorded history
//! and the broker's final state, and the report model with its renderers. Nothing here runs
//! a simulation.

pub mod history;

pub use history::{Event, EventKind, History, RunMeta};
