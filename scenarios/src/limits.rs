//! Declared limits. A scenario is checked against them before anything is simulated, so a
//! typo such as `messages = 1000000000000` fails at load time instead of exhausting memory
//! or running for hours. docs/scenario-reference.md lists the same values.

use broker_core::Millis;

/// Largest scenario file read, in bytes (bounds everything parsed from it).
pub const MAX_FILE_BYTES: usize = 1 << 20;
/// Longest virtual run: 24 h.
pub const MAX_DURATION_MS: Millis = 24 * 60 * 60 * 1000;
/// Queues per topic: 1..=64.
pub const MAX_QUEUES: u32 = 64;
/// Messages per run: every producer's `messages` plus every `produce` step's `count`.
pub const MAX_TOTAL_MESSAGES: u64 = 1_000_000;
/// Longest invisible time (consumer `pop_invisible_time_ms`, pop and change-invisible-time
/// steps): 12 h. Zero is rejected.
pub const MAX_INVISIBLE_TIME_MS: Millis = 12 * 60 * 60 * 1000;
/// `popBatchNums` / pop `max`: 1..=32, the broker's `maxMsgNums` bound.
pub const MAX_POP_BATCH: u32 = 32;
/// Seeds per scenario: 1..=10 000.
pub const MAX_SEEDS: usize = 10_000;
/// `reviveQueueNum`: 1..=64.
pub const MAX_REVIVE_QUEUE_NUM: u32 = 64;
/// Timeline steps per scenario.
pub const MAX_STEPS: usize = 10_000;
/// Topics, groups, producers, consumers and clients, each.
pub const MAX_ENTITIES: usize = 64;
/// Length of any name (RocketMQ caps topic names at 127 characters).
pub const MAX_NAME_LEN: usize = 127;
/// `maxReconsumeTimes`: −1 (upstream default) ..= 1 000.
pub const MAX_RECONSUME_TIMES: i32 = 1_000;
/// `replays`, `upstream` and each `expect` list: at most this many entries.
pub const MAX_LIST_LEN: usize = 64;
/// `description` length in characters.
pub const MAX_DESCRIPTION_LEN: usize = 4_096;
/// Broker threads (`[scheduler] threads`).
pub const MAX_THREADS: u32 = 256;
