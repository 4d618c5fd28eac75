//! # reports
//!
//! popsim's history vocabulary ([`history`]), the invariant checker over a recorded history
//! and the broker's final state ([`invariants`]), and the report model with its renderers, and
//! the outputs of the other commands ([`commands`]).
//! Nothing here runs a simulation.

pub mod commands;
pub mod describe;
pub mod history;
pub mod invariants;
pub mod report;
pub mod timeline;

#[cfg(test)]
mod testkit;

pub use commands::{Layout, SCHEMA_VERSION};
pub use describe::{describe_event, event_line};
pub use history::{Event, EventKind, History, RunMeta};
pub use invariants::{
    check, invariant_names, lookup, run_step, try_check, InvariantInfo, InvariantResult, Status,
    StepHook, UnknownInvariant, Witness,
};
pub use report::{
    check_and_count, check_and_count_with, render_json, render_markdown, render_sweep_json,
    render_sweep_text, render_text, Checked, Counts, RunReport, SweepSummary,
};
pub use timeline::{render_timeline, render_timeline_with, TimelineOptions};
