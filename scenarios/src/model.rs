//! The scenario file format (TOML). Field names here are the keys a user writes; the
//! reference in docs/scenario-reference.md documents each one. Times are virtual
//! milliseconds since the start of the run.

use broker_core::{BrokerConfig, Millis};
use serde::{Deserialize, Serialize};

/// A whole scenario file.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Scenario {
    /// Kebab-case name, shown in reports.
    pub name: String,
    #[serde(default)]
    pub description: String,
    /// Historical behaviours (by name) this scenario replays: switched on for the "bug" row of
    /// `popsim verify`, off for the "fixed" row.
    #[serde(default)]
    pub replays: Vec<String>,
    /// Proposed fixes (by name) this scenario demonstrates: a finding on upstream develop.
    /// `popsim verify` runs it on develop (`expect.develop` must be violated) and with these
    /// fixes on (everything must hold).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub fixes: Vec<String>,
    /// Upstream references, e.g. ["#8835", "#8836"].
    #[serde(default)]
    pub upstream: Vec<String>,
    /// Virtual length of the run.
    pub duration_ms: Millis,
    /// Faults stop at `duration_ms − quiet_period_ms`; liveness is judged after that.
    #[serde(default = "default_quiet_period")]
    pub quiet_period_ms: Millis,
    /// Seeds `popsim verify` runs.
    #[serde(default = "default_seeds")]
    pub seeds: Vec<u64>,
    /// Upstream `BrokerConfig` keys (camelCase), e.g. `enablePopBufferMerge = true`.
    #[serde(default)]
    pub broker: BrokerConfig,
    /// Upstream `ProxyConfig` keys (camelCase) of the proxy node the gRPC consumers talk to.
    #[serde(default, skip_serializing_if = "ProxyConfig::is_default")]
    pub proxy: ProxyConfig,
    #[serde(default)]
    pub topics: Vec<TopicSpec>,
    #[serde(default)]
    pub groups: Vec<GroupSpec>,
    #[serde(default)]
    pub producers: Vec<ProducerSpec>,
    #[serde(default)]
    pub consumers: Vec<ConsumerSpec>,
    /// Offset and admin clients, addressed by timeline steps.
    #[serde(default)]
    pub clients: Vec<ClientSpec>,
    #[serde(default)]
    pub steps: Vec<Step>,
    #[serde(default)]
    pub faults: FaultSpec,
    /// The broker's threads: how many requests run at once and how often a thread is
    /// descheduled at an interleaving point.
    #[serde(default, skip_serializing_if = "SchedulerSpec::is_default")]
    pub scheduler: SchedulerSpec,
    #[serde(default)]
    pub expect: Expect,
    /// Ranges each seed draws its own parameters from (swarm exploration).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub swarm: Option<crate::swarm::SwarmSpec>,
}

fn default_quiet_period() -> Millis {
    30_000
}

fn default_seeds() -> Vec<u64> {
    vec![1]
}

/// A topic created on the broker at start.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TopicSpec {
    pub name: String,
    #[serde(default = "one")]
    pub queues: u32,
}

fn one() -> u32 {
    1
}

/// A subscription group created on the broker at start (`SubscriptionGroupConfig`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GroupSpec {
    pub name: String,
}

/// A producer that sends `messages` messages to `topic`, round-robin over its queues
/// (or to `queue`), one every `interval_ms` from `start_at_ms`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProducerSpec {
    pub name: String,
    pub topic: String,
    #[serde(default)]
    pub messages: u64,
    #[serde(default)]
    pub start_at_ms: Millis,
    #[serde(default = "default_interval")]
    pub interval_ms: Millis,
    /// Send only to this queue.
    #[serde(default)]
    pub queue: Option<u32>,
}

fn default_interval() -> Millis {
    10
}

/// What a consumer node runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ConsumerKindSpec {
    /// The remoting POP push consumer (`DefaultMQPushConsumerImpl.popMessage` +
    /// `ConsumeMessagePopConcurrentlyService`), straight to the broker. (There is no
    /// `orderly` kind: the remoting push consumer never pops with `order = true`, and the
    /// loader says to use `grpc-push` with `fifo = true`.)
    Concurrent,
    /// No loop of its own: pops, acks and changes invisible time with the remoting client
    /// API (`MQClientAPIImpl`) only when a step says so.
    Scripted,
    /// The gRPC `PushConsumer` (apache/rocketmq-clients, Java) through the proxy:
    /// `FifoConsumeService` with `fifo = true`, `StandardConsumeService` otherwise.
    GrpcPush,
    /// The gRPC `SimpleConsumer` through the proxy, driven by `pop` (receive), `ack` and
    /// `change-invisible-time` steps, or with `receive_loop = true` by an application loop
    /// of its own (receive, consume, ack).
    GrpcSimple,
}

impl ConsumerKindSpec {
    /// Talks to the proxy.
    pub fn is_grpc(self) -> bool {
        matches!(
            self,
            ConsumerKindSpec::GrpcPush | ConsumerKindSpec::GrpcSimple
        )
    }

    /// Driven by timeline steps rather than a loop of its own, unless the consumer says
    /// otherwise ([`ConsumerSpec::is_stepped`]).
    pub fn is_stepped(self) -> bool {
        matches!(
            self,
            ConsumerKindSpec::Scripted | ConsumerKindSpec::GrpcSimple
        )
    }
}

/// A range of virtual milliseconds; a value is drawn uniformly from `[min, max]`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RangeMs {
    pub min: Millis,
    pub max: Millis,
}

/// A POP consumer.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConsumerSpec {
    pub name: String,
    pub kind: ConsumerKindSpec,
    pub group: String,
    pub topic: String,
    /// `popInvisibleTime` (client default 60 000). The remoting push consumer replaces a
    /// value outside [5 000, 300 000] with 60 000; the gRPC push consumer does not send one
    /// (the proxy pops with its `defaultInvisibleTimeMills` and renews it); `popsim run`
    /// says so when a value is replaced.
    #[serde(default = "default_invisible")]
    pub pop_invisible_time_ms: Millis,
    /// `maxReconsumeTimes` (−1 = upstream default: 16). For a gRPC consumer: the group's
    /// `retryMaxTimes` (−1 = 16); the proxy's `maxAttempts` is one more.
    #[serde(default = "minus_one")]
    pub max_reconsume_times: i32,
    /// `popBatchNums` (max messages per pop, ≤ 32).
    #[serde(default = "default_batch")]
    pub pop_batch_nums: u32,
    /// How long the listener takes per message.
    #[serde(default = "default_consume_time")]
    pub consume_time_ms: RangeMs,
    /// Percent of listener runs that return RECONSUME_LATER (failure).
    #[serde(default)]
    pub failure_percent: u32,
    /// Not an option of any client: the remoting push consumer acks one message per
    /// request, and only the proxy batch-acks (`[proxy] enableBatchAck`). Parsed so that the
    /// validator can say so; `true` is an error.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub batch_ack: bool,
    /// gRPC consumers: the group is a FIFO group (the proxy's settings carry the group's
    /// `consumeMessageOrderly`): receives pop with `order = true`, and the push consumer
    /// consumes each batch in order (`FifoConsumeService`).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub fifo: bool,
    /// gRPC simple consumer: `awaitDuration`, the long-polling timeout of each receive
    /// (the proxy clamps it to its min and max long-polling timeouts).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub await_duration_ms: Option<Millis>,
    /// gRPC simple consumer: run an application loop (receive, consume each message, ack
    /// the successes) instead of taking pop, ack and change-invisible-time steps.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub receive_loop: bool,
    /// gRPC push consumer: the rocketmq-clients of #1322 (2026-08, after the snapshot), whose
    /// process queue keeps its receive attemptId until a receive brings messages (empty
    /// answers and every failure keep it); the snapshot's client takes a new one after every
    /// answer and keeps it only after `DEADLINE_EXCEEDED`.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub keeps_attempt_id_until_messages: bool,
    /// When the consumer starts popping.
    #[serde(default)]
    pub start_at_ms: Millis,
    /// `ConsumeInitMode` for a group with no offset: "max" (default) or "min".
    #[serde(default)]
    pub init_mode: broker_core::InitMode,
}

impl ConsumerSpec {
    /// Driven by timeline steps: a scripted consumer, or a grpc-simple one without
    /// `receive_loop`.
    pub fn is_stepped(&self) -> bool {
        self.kind.is_stepped() && !self.receive_loop
    }
}

fn default_invisible() -> Millis {
    60_000
}
fn minus_one() -> i32 {
    -1
}
fn default_batch() -> u32 {
    32
}
fn default_consume_time() -> RangeMs {
    RangeMs { min: 10, max: 10 }
}

/// The proxy's configuration (`ProxyConfig`), upstream's keys and defaults (develop,
/// 2025-09). Only what the modelled paths read.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default, rename_all = "camelCase")]
pub struct ProxyConfig {
    /// `proxyMode`: `cluster`, the proxy as a process of its own that calls the broker over
    /// remoting (`ClusterMessageService`), or `local`, inside the broker process calling
    /// its processors (`LocalMessageService`, the broker's `enableProxy`).
    pub proxy_mode: ProxyMode,
    /// `AckMessageActivity`: ack a request's entries with one `BATCH_ACK_MESSAGE` per broker
    /// (`ackMessageInBatch`) instead of one `ACK_MESSAGE` each.
    pub enable_batch_ack: bool,
    /// Renew the invisible time of messages a push consumer is consuming
    /// (`ReceiptHandleProcessor`); with it, a push consumer's receive pops with
    /// `defaultInvisibleTimeMills`.
    pub enable_proxy_auto_renew: bool,
    pub default_invisible_time_mills: Millis,
    /// A simple consumer's receive is refused (`ILLEGAL_INVISIBLE_TIME`) below this.
    pub min_invisible_time_mills_for_recv: Millis,
    pub max_invisible_time_mills: Millis,
    /// A receive's long-polling timeout is clamped to [min, max].
    pub grpc_client_consumer_min_long_polling_timeout_millis: Millis,
    pub grpc_client_consumer_max_long_polling_timeout_millis: Millis,
    /// The push consumer's receive batch size (the settings' `receiveBatchSize`).
    pub grpc_client_consumer_long_polling_batch_size: u32,
    /// Renew a handle once its next-visible time is this close.
    pub renew_ahead_time_millis: Millis,
    /// Renew for at most this long after the message was received; then the handle is
    /// changed to the group's retry delay and dropped (`STOP_RENEW`).
    pub renew_max_time_millis: Millis,
    pub renew_schedule_period_millis: Millis,
    pub max_renew_retry_times: u32,
}

impl Default for ProxyConfig {
    fn default() -> Self {
        Self {
            proxy_mode: ProxyMode::Cluster,
            enable_batch_ack: false,
            enable_proxy_auto_renew: true,
            default_invisible_time_mills: 60_000,
            min_invisible_time_mills_for_recv: 10_000,
            max_invisible_time_mills: 12 * 3_600_000,
            grpc_client_consumer_min_long_polling_timeout_millis: 5_000,
            grpc_client_consumer_max_long_polling_timeout_millis: 20_000,
            grpc_client_consumer_long_polling_batch_size: 32,
            renew_ahead_time_millis: 10_000,
            renew_max_time_millis: 3 * 3_600_000,
            renew_schedule_period_millis: 5_000,
            max_renew_retry_times: 3,
        }
    }
}

/// Upstream's `ProxyMode` (`proxyMode`; upstream compares it ignoring case, popsim takes it
/// lower-case).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ProxyMode {
    #[default]
    Cluster,
    Local,
}

impl ProxyConfig {
    pub fn is_default(&self) -> bool {
        *self == Self::default()
    }
}

/// Offset or admin client.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClientSpec {
    pub name: String,
    pub kind: ClientKind,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ClientKind {
    /// `RemoteBrokerOffsetStore` / `MQClientAPIImpl` offset calls.
    Offset,
    /// `DefaultMQAdminExt` (reset offset).
    Admin,
}

/// How an offset client updates.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum UpdateMode {
    Oneway,
    Sync,
    Future,
}

/// One scripted step of the timeline, at `at_ms`.
///
/// No `deny_unknown_fields` here: serde does not support it together with `flatten` (every
/// key would be reported unknown). The loader checks step keys against
/// [`crate::steps::ACTIONS`] before deserializing instead.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Step {
    pub at_ms: Millis,
    #[serde(flatten)]
    pub action: Action,
}

/// What a step does.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "action", rename_all = "kebab-case")]
pub enum Action {
    /// A producer sends `count` messages now.
    Produce {
        producer: String,
        #[serde(default = "one_u64")]
        count: u64,
    },
    /// A scripted consumer pops up to `max` messages and holds their receipts (a gRPC
    /// simple consumer: one `receive(max, invisible_time_ms)`).
    Pop {
        consumer: String,
        #[serde(default = "default_batch")]
        max: u32,
        #[serde(default)]
        queue: Option<u32>,
        #[serde(default)]
        invisible_time_ms: Option<Millis>,
    },
    /// A scripted or gRPC simple consumer acks the receipts it holds: all, or all but the
    /// last `all_but`, or the first `count`; after leaving the oldest `skip` held.
    Ack {
        consumer: String,
        #[serde(default)]
        count: Option<u32>,
        #[serde(default)]
        all_but: Option<u32>,
        #[serde(default, skip_serializing_if = "is_zero_u32")]
        skip: u32,
        #[serde(default)]
        batch: bool,
    },
    /// A scripted or gRPC simple consumer changes the invisible time of the receipts it
    /// holds.
    ChangeInvisibleTime {
        consumer: String,
        invisible_time_ms: Millis,
        #[serde(default)]
        count: Option<u32>,
    },
    /// An admin client resets a group's offset (queue −1 = all queues).
    ResetOffset {
        client: String,
        group: String,
        topic: String,
        #[serde(default = "minus_one")]
        queue: i32,
        /// Required for one queue; a reset of every queue (`queue = -1`) goes by timestamp.
        #[serde(default)]
        offset: Option<i64>,
    },
    /// An offset client updates a consumer offset. A missing queue or offset is sent as null.
    UpdateOffset {
        client: String,
        mode: UpdateMode,
        group: String,
        topic: String,
        #[serde(default)]
        queue: Option<i32>,
        #[serde(default)]
        offset: Option<i64>,
    },
    /// An offset client queries a consumer offset.
    QueryOffset {
        client: String,
        group: String,
        topic: String,
        queue: u32,
    },
    /// The broker process dies (nothing is flushed).
    Crash,
    /// The broker shuts down gracefully: it drains the CK buffer and persists the offset and
    /// OrderInfo tables first (`BrokerController.shutdown`).
    Shutdown,
    /// The broker process starts again (after a `crash` or a `shutdown`).
    Restart,
    /// Cut a node off the network (both directions).
    Clog {
        node: String,
    },
    /// Undo [`Action::Clog`].
    Unclog {
        node: String,
    },
    /// Stop a node's tasks for `duration_ms` (a GC stall).
    Pause {
        node: String,
        duration_ms: Millis,
    },
    /// Set the network's packet-loss rate from now on.
    SetLoss {
        rate: f64,
    },
    /// From now on store puts of CKs, ACKs, re-put CKs and retry messages fail with this
    /// probability.
    SetStorePutFailureRate {
        rate: f64,
    },
    /// From now on the broker's timer runs this far behind the clock.
    SetTimerLag {
        lag_ms: Millis,
    },
    /// Start or stop a consumer's pop loop.
    StartConsumer {
        consumer: String,
    },
    StopConsumer {
        consumer: String,
    },
}

fn one_u64() -> u64 {
    1
}

/// Random faults drawn from the seed until the quiet period begins.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct FaultSpec {
    /// Packet-loss probability per message.
    pub loss_rate: f64,
    /// One-way latency range.
    pub latency_ms: RangeMs,
    /// Mean virtual time between random node clogs (0 = none).
    pub clog_every_ms: Millis,
    /// How long a random clog lasts.
    pub clog_duration_ms: RangeMs,
    /// Mean virtual time between random broker stops, crashes or (`shutdown_percent`)
    /// graceful shutdowns (0 = none).
    pub crash_every_ms: Millis,
    /// Downtime before the restart.
    pub restart_after_ms: RangeMs,
    /// Percent of the random broker stops that are graceful shutdowns
    /// (`BrokerController.shutdown`: the CK buffer drained, the offsets persisted) rather
    /// than crashes; each stop's coin comes from a stream of its own. 0 = every one a crash.
    #[serde(skip_serializing_if = "is_zero_u32")]
    pub shutdown_percent: u32,
    /// Mean virtual time between random consumer pauses (0 = none).
    pub pause_every_ms: Millis,
    pub pause_duration_ms: RangeMs,
    /// Mean virtual time between random admin resets (0 = none): a consumer group's single
    /// queue to an offset inside the queue's range, or all its queues back to a past
    /// timestamp. Needs an `admin` client.
    #[serde(skip_serializing_if = "is_zero")]
    pub reset_every_ms: Millis,
    /// Mean virtual time between random consumer-offset updates (0 = none), each in a
    /// random mode (oneway, sync, future) to an offset inside the queue's range, for a group
    /// no consumer of the scenario belongs to (a POP group's progress is the broker's).
    /// Needs an `offset` client.
    #[serde(skip_serializing_if = "is_zero")]
    pub update_offset_every_ms: Millis,
    /// How far the timer's dequeue side runs behind the clock (`TimerMessageStore`
    /// `currReadTimeMs`): redrawn from this range every second until the quiet period, 0
    /// after. A lag of a second or more also keeps the reviver's `endTime` from moving to now.
    /// `{ min = 0, max = 0 }` (the default) = no lag.
    #[serde(skip_serializing_if = "RangeMs::is_zero")]
    pub timer_lag_ms: RangeMs,
    /// Probability that a store put of a CK, an ACK, a re-put CK or a revived retry message
    /// fails, until the quiet period.
    #[serde(skip_serializing_if = "is_zero_f")]
    pub store_put_failure_rate: f64,
    /// Retention: a message is deleted once it is this old, and its queue's min offset
    /// moves past it (0 = never). The environment, not a fault: it holds for the whole run.
    #[serde(skip_serializing_if = "is_zero")]
    pub retention_ms: Millis,
    /// How long a message's CommitLog bytes stay in the OS page cache, as
    /// `checkInMemByConsumeOffset` sees it (0 = forever). Decides where a new group with
    /// init mode MAX starts (`initPopOffsetByCheckMsgInMem`). For the whole run.
    #[serde(skip_serializing_if = "is_zero")]
    pub page_cache_ms: Millis,
}

fn is_zero(v: &Millis) -> bool {
    *v == 0
}

fn is_zero_f(v: &f64) -> bool {
    *v == 0.0
}

impl RangeMs {
    /// `{ min = 0, max = 0 }`.
    pub fn is_zero(&self) -> bool {
        self.min == 0 && self.max == 0
    }
}

impl Default for FaultSpec {
    fn default() -> Self {
        Self {
            loss_rate: 0.0,
            latency_ms: RangeMs { min: 1, max: 10 },
            clog_every_ms: 0,
            clog_duration_ms: RangeMs {
                min: 1_000,
                max: 5_000,
            },
            crash_every_ms: 0,
            restart_after_ms: RangeMs {
                min: 1_000,
                max: 5_000,
            },
            shutdown_percent: 0,
            pause_every_ms: 0,
            pause_duration_ms: RangeMs {
                min: 500,
                max: 3_000,
            },
            reset_every_ms: 0,
            update_offset_every_ms: 0,
            timer_lag_ms: RangeMs { min: 0, max: 0 },
            store_put_failure_rate: 0.0,
            retention_ms: 0,
            page_cache_ms: 0,
        }
    }
}

/// The broker node's threads and the seeded scheduler that interleaves them.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SchedulerSpec {
    /// Requests in flight at once (a pool's threads); later ones queue.
    pub threads: u32,
    /// Percent of interleaving points (a store read, an `addAk` between guard and CAS, the
    /// admin thread between queues) at which the thread is descheduled.
    pub preempt_percent: u32,
    /// How long a descheduled thread waits before its next step.
    pub preempt_ms: RangeMs,
    /// Requests that may wait for a thread; one more is answered `SYSTEM_BUSY`
    /// ("[OVERLOAD]system busy", `NettyRemotingAbstract.processRequestCommand` when the
    /// processor's executor rejects it). 0 = unbounded (upstream's queues hold 10 000 to
    /// 1 000 000).
    #[serde(skip_serializing_if = "is_zero_u32")]
    pub queue_capacity: u32,
}

fn is_zero_u32(v: &u32) -> bool {
    *v == 0
}

impl Default for SchedulerSpec {
    fn default() -> Self {
        Self {
            threads: 8,
            preempt_percent: 10,
            preempt_ms: RangeMs { min: 1, max: 10 },
            queue_capacity: 0,
        }
    }
}

impl SchedulerSpec {
    pub fn is_default(&self) -> bool {
        *self == Self::default()
    }
}

/// What the scenario expects.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Expect {
    /// Invariants to check (empty = every invariant).
    pub invariants: Vec<String>,
    /// Invariants that must be violated with the replayed behaviours on.
    pub with_bug: Vec<String>,
    /// Invariants that may be violated with every fix in (normally none).
    pub fixed: Vec<String>,
    /// Invariants that must be violated on upstream develop, i.e. with the scenario's
    /// proposed `fixes` off. Needs a non-empty `fixes`.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub develop: Vec<String>,
    /// `popsim verify`'s bug rows, when one row with every `replays` behaviour on does not tell
    /// the story (e.g. behaviours from disjoint releases). Empty = one row: `replays` on,
    /// `with_bug` violated.
    pub rows: Vec<BugRow>,
}

/// One bug row of `popsim verify`: these behaviours on together, these invariants violated.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BugRow {
    /// Behaviour names, each also listed in `replays`.
    pub bugs: Vec<String>,
    /// Invariants that must be violated with exactly `bugs` on.
    pub violates: Vec<String>,
}

impl Scenario {
    /// Messages the run produces: every producer's plus every produce step's (saturating).
    pub fn total_messages(&self) -> u64 {
        let from_producers =
            (self.producers.iter()).fold(0u64, |a, p| a.saturating_add(p.messages));
        self.steps
            .iter()
            .fold(from_producers, |a, s| match &s.action {
                Action::Produce { count, .. } => a.saturating_add(*count),
                _ => a,
            })
    }

    /// A finding on upstream develop: it expects a violation there (`expect.develop`), with
    /// the proposed fixes that make it hold, if any are proposed yet.
    pub fn is_finding(&self) -> bool {
        !self.fixes.is_empty() || !self.expect.develop.is_empty()
    }

    /// The bug rows `popsim verify` runs: `expect.rows`, or else the single row
    /// (`replays`, `expect.with_bug`). None for a scenario that replays nothing.
    pub fn bug_rows(&self) -> Vec<BugRow> {
        if !self.expect.rows.is_empty() {
            return self.expect.rows.clone();
        }
        if self.replays.is_empty() {
            return Vec::new();
        }
        vec![BugRow {
            bugs: self.replays.clone(),
            violates: self.expect.with_bug.clone(),
        }]
    }
}
