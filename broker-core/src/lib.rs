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
pub mod keys;
pub mod protocol;

mod ack_message_processor;
mod admin;
mod broker;
mod change_invisible_time_processor;
mod checkpoint;
mod consumer_offset_manager;
mod consumer_order_info_manager;
mod pop_buffer_merge_service;
mod pop_consumer_kv;
mod pop_message_processor;
mod pop_revive_service;
mod rng;
mod store;

pub use behaviours::{Behaviour, BehaviourInfo, Behaviours, Release, Side};
pub use broker::Broker;
pub use config::{BrokerConfig, Millis};
pub use events::{BrokerEvent, BrokerSnapshot, CkRef};
pub use protocol::*;
