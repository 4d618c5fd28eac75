//! # scenarios
//!
//! The scenario file format popsim runs: its types ([`model`]), a loader that reports
//! errors with file, line, column and key, validation with declared limits, and the
//! built-in scenarios that replay the documented upstream bugs.

pub mod model;

pub use model::Scenario;
