//! # broker-core
//!
//! A sans-IO model of the Apache RocketMQ broker's POP consumption and consumer-offset
//! management, decision for decision with upstream (develop, 2025-09) and with the
//! historical behaviours of [`behaviours`] switchable back on.
//!
//! No async, no I/O, no clock: every input carries `now`, outputs are returned, and
//! [`Broker::next_deadline`] tells the driver when the model next wants [`Broker::on_timer`].
//! A request is an operation of steps ([`Broker::submit`], [`Broker::step`]): the driver
//! interleaves operations where upstream's threads can, and [`Broker::handle`] runs one
//! alone.
//! The only randomness upstream uses (queue selection, `popFromRetryProbability`) comes from
//! a seed the driver passes in, so a run is a pure function of its inputs.
//!
//! One module per upstream mechanism:
//!
//! | module | upstream |
//! |---|---|
//! | `store` | `DefaultMessageStore` consume queues; the revive topic behind `TimerMessageStore` |
//! | `consumer_offset_manager` | `ConsumerOffsetManager` (offset, pull and reset tables; persist) |
//! | `pop_message_processor` | `PopMessageProcessor` (classic pop, `getPopOffset`, `appendCheckPoint`) |
//! | `pop_long_polling_service` | `PopLongPollingService` (parked pops, their wakes and expiries) |
//! | `send_message_processor` | `AbstractSendMessageProcessor.consumerSendMsgBack` (retry and DLQ send-back) |
//! | `ack_message_processor` | `AckMessageProcessor` (ack, batch ack, `ackOrderly`) |
//! | `change_invisible_time_processor` | `ChangeInvisibleTimeProcessor` |
//! | `pop_buffer_merge_service` | `PopBufferMergeService` (CK buffer, offset deques, `scan`) |
//! | `pop_revive_service` | `PopReviveService` (`consumeReviveMessage`, `mergeAndRevive`) |
//! | `consumer_order_info_manager` | `ConsumerOrderInfoManager` (orderly POP) |
//! | `pop_inflight_message_counter` | `PopInflightMessageCounter` (the classic in-flight threshold) |
//! | `pop_consumer_kv` | `PopConsumerService`, `PopConsumerCache` (the RIP-73 KV path) |
//! | `admin` | `AdminBrokerProcessor.resetOffsetInner`, `ConsumerManageProcessor`, topic/group creation, send |
//! | `locks` | `PopMessageProcessor.QueueLockManager`, `PopConsumerLockService` |
//! | [`inflight`] | requests as operations of steps: where upstream's threads interleave |
//! | [`keys`] | `KeyBuilder`, `MixAll`, `PopAckConstants` names and keys |
//!
//! What survives [`Broker::crash`] + [`Broker::restart`]: topics, groups, every queue, the
//! revive log and its timer, the KV pop records in the store, and `offsetTable` and
//! `ConsumerOrderInfoManager` as of their last persists (the first 10 s after a start, then
//! every `flushConsumerOffsetInterval` and every 10 s). What is lost: the CK buffer and
//! offset deques (buffered acks included), `PopConsumerCache`, the pull and reset tables,
//! changes since the last persists, the in-flight counters, the locks, the parked pops, and the
//! revivers' in-memory offsets (they resume from the committed revive-group offsets).
//! [`Broker::shutdown`] is the graceful stop: it drains the CK buffer and persists both
//! tables first (the KV cache is still dropped).
//!
//! Faults the driver feeds in: [`Broker::set_timer_lag`] (the timer's dequeue side behind
//! the clock) and [`Broker::set_store_put_failure_rate`] (CK, ACK, re-put and retry puts that
//! fail); each store failure is handled where upstream handles it.

pub mod behaviours;
pub mod config;
pub mod events;
pub mod fast_hash;
pub mod inflight;
pub mod keys;
pub mod name;
pub mod protocol;

mod ack_message_processor;
mod admin;
mod broker;
mod change_invisible_time_processor;
mod checkpoint;
mod consumer_offset_manager;
mod consumer_order_info_manager;
mod locks;
mod pop_buffer_merge_service;
mod pop_consumer_kv;
mod pop_inflight_message_counter;
mod pop_long_polling_service;
mod pop_message_processor;
mod pop_revive_service;
pub mod rng;
mod send_message_processor;
mod store;

pub use behaviours::{Behaviour, BehaviourInfo, Behaviours, Fix, FixInfo, Release, Side};
pub use broker::Broker;
pub use config::{BrokerConfig, Millis};
pub use events::{AckReadOutcome, BrokerEvent, BrokerSnapshot, CkRef, ReadFrom};
pub use fast_hash::{FastBuildHasher, FastHasher};
pub use inflight::{OpId, Step};
pub use name::Name;
pub use pop_long_polling_service::{
    WakeReason, MAX_POP_POLLING_SIZE, POP_POLLING_SIZE, TIMEOUT_MARGIN_MS, TIMEOUT_TOO_MUCH_MS,
};
pub use protocol::*;
