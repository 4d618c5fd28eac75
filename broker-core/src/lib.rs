//! # broker-core
//!
//! A sans-IO model of the Apache RocketMQ broker's POP consumption and consumer-offset
//! management, decision for decision with upstream (develop, 2025-09) and with the
//! historical behaviours of [`behaviours`] switchable back on.
//!
//! No async, no I/O, no clock: every input carries `now`, outputs are returned, and
//! [`Broker::next_deadline`] tells the driver when the model next wants [`Broker::on_timer`].
//! The only randomness upstream uses (queue selection, `popFromRetryProbability`) comes from
//! a seed the driver passes in, so a run is a pure function of its inputs.

pub mod behaviours;
pub mod config;
pub mod events;
pub mod protocol;

mod broker;

pub use behaviours::{Behaviour, BehaviourInfo, Behaviours, Release, Side};
pub use broker::Broker;
pub use config::{BrokerConfig, Millis};
pub use events::{BrokerEvent, BrokerSnapshot, CkRef};
pub use protocol::*;
