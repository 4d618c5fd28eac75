//! The history vocabulary: every client-visible event of a run (and the broker's own
//! observations), in the order the simulation recorded them. The checker reads only this
//! and the broker's final state, so a saved history can be checked again later.

use broker_core::{BrokerEvent, BrokerSnapshot, Millis, Name, ResponseCode};
use serde::{Deserialize, Serialize};

/// What a POP consumer is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ConsumerKind {
    /// The remoting push consumer (`ConsumeMessagePopConcurrentlyService`); scripted
    /// consumers are listed as this kind too.
    Concurrent,
    /// An orderly remoting POP consumer (`ConsumeMessagePopOrderlyService` with FIFO pops).
    /// No upstream client pops that way and popsim no longer simulates one; the kind stays
    /// so that older saved histories load, and is judged as a FIFO consumer.
    Orderly,
    /// The gRPC `PushConsumer` of a non-FIFO group, through the proxy.
    GrpcPush,
    /// The gRPC `PushConsumer` of a FIFO group (`FifoConsumeService`), through the proxy.
    GrpcFifo,
    /// The gRPC `SimpleConsumer`, through the proxy.
    GrpcSimple,
}

impl ConsumerKind {
    /// Pops FIFO (orderly) batches.
    pub fn is_fifo(self) -> bool {
        matches!(self, ConsumerKind::Orderly | ConsumerKind::GrpcFifo)
    }

    /// Talks to the proxy, not to the broker.
    pub fn is_grpc(self) -> bool {
        matches!(
            self,
            ConsumerKind::GrpcPush | ConsumerKind::GrpcFifo | ConsumerKind::GrpcSimple
        )
    }
}

/// Static facts about a consumer, for invariants that depend on its settings.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct ConsumerMeta {
    pub name: String,
    pub group: String,
    pub topic: String,
    pub kind: ConsumerKind,
    /// As configured (−1 = upstream default). For a gRPC consumer: the group's
    /// `retryMaxTimes`.
    pub max_reconsume_times: i32,
    /// The effective limit: `getMaxReconsumeTimes` for the remoting push consumer (−1 → 16);
    /// for a gRPC consumer the proxy's `maxAttempts` (`retryMaxTimes + 1`, −1 → 17): the
    /// proxy dead-letters a delivery whose reconsumeTimes reached it, and the FIFO client a
    /// message whose delivery attempts (reconsumeTimes plus local retries) did.
    pub effective_max_reconsume_times: u32,
    /// The invisible time the consumer's pops carry (after the client or proxy replaced the
    /// configured one, e.g. the proxy's 60 s for an auto-renewing push consumer).
    pub pop_invisible_time: Millis,
}

/// The run's header: what was simulated.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct RunMeta {
    pub scenario: String,
    pub seed: u64,
    /// Names of the historical behaviours switched on.
    pub behaviours: Vec<String>,
    /// Names of the proposed fixes switched on.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub fixes: Vec<String>,
    pub release: Option<String>,
    pub consumers: Vec<ConsumerMeta>,
    /// From this virtual time on every fault has healed; liveness checks look only at
    /// what should have happened after it plus a quiet period.
    pub quiet_from: Millis,
    /// The virtual time the run stopped.
    pub end_at: Millis,
    /// True if the run injected random faults (loss, clogs, crashes, pauses).
    pub faulty: bool,
    /// The broker's `flushConsumerOffsetInterval`: how often a flush of the offsets is due,
    /// which the durability checks need. Left out of the JSON at upstream's default.
    #[serde(
        default = "default_offset_flush_interval",
        skip_serializing_if = "is_default_offset_flush_interval"
    )]
    pub offset_flush_interval: Millis,
}

/// Upstream's default `flushConsumerOffsetInterval`.
pub const DEFAULT_OFFSET_FLUSH_INTERVAL_MS: Millis = 5_000;

fn default_offset_flush_interval() -> Millis {
    DEFAULT_OFFSET_FLUSH_INTERVAL_MS
}

fn is_default_offset_flush_interval(v: &Millis) -> bool {
    *v == DEFAULT_OFFSET_FLUSH_INTERVAL_MS
}

/// How a request/response exchange ended, as the client saw it.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum RpcOutcome {
    /// The broker answered (any code).
    Answered { code: ResponseCode, remark: Name },
    /// No answer within the client's timeout.
    Timeout,
}

/// How a consumer-offset update ended for the caller.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum OffsetUpdateMode {
    /// `updateConsumerOffsetOneway`: no answer is awaited.
    Oneway,
    /// `updateConsumerOffset` (invokeSync).
    Sync,
    /// `updateConsumerOffsetAsync` (a future).
    Future,
}

/// A gRPC status code the proxy answers with (`apache.rocketmq.v2.Code`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum GrpcCode {
    Ok,
    MultipleResults,
    BadRequest,
    IllegalInvisibleTime,
    IllegalPollingTime,
    InvalidReceiptHandle,
    MessageNotFound,
    TooManyRequests,
    InternalServerError,
    ProxyTimeout,
}

impl GrpcCode {
    /// The constant's name, e.g. `INVALID_RECEIPT_HANDLE`.
    pub fn name(self) -> &'static str {
        match self {
            GrpcCode::Ok => "OK",
            GrpcCode::MultipleResults => "MULTIPLE_RESULTS",
            GrpcCode::BadRequest => "BAD_REQUEST",
            GrpcCode::IllegalInvisibleTime => "ILLEGAL_INVISIBLE_TIME",
            GrpcCode::IllegalPollingTime => "ILLEGAL_POLLING_TIME",
            GrpcCode::InvalidReceiptHandle => "INVALID_RECEIPT_HANDLE",
            GrpcCode::MessageNotFound => "MESSAGE_NOT_FOUND",
            GrpcCode::TooManyRequests => "TOO_MANY_REQUESTS",
            GrpcCode::InternalServerError => "INTERNAL_SERVER_ERROR",
            GrpcCode::ProxyTimeout => "PROXY_TIMEOUT",
        }
    }
}

/// A gRPC call of a client to the proxy (`MessagingService`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum GrpcRpc {
    ReceiveMessage,
    AckMessage,
    ChangeInvisibleDuration,
    ForwardMessageToDeadLetterQueue,
}

impl GrpcRpc {
    /// The RPC's name in `service.proto`.
    pub fn name(self) -> &'static str {
        match self {
            GrpcRpc::ReceiveMessage => "ReceiveMessage",
            GrpcRpc::AckMessage => "AckMessage",
            GrpcRpc::ChangeInvisibleDuration => "ChangeInvisibleDuration",
            GrpcRpc::ForwardMessageToDeadLetterQueue => "ForwardMessageToDeadLetterQueue",
        }
    }
}

/// How a gRPC call ended, as the client saw it.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum GrpcOutcome {
    /// The proxy answered with this status.
    Status { code: GrpcCode, message: Name },
    /// No answer within the client's deadline.
    Timeout,
}

/// What the listener returned.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ConsumeOutcome {
    Success,
    Failure,
}

/// One recorded event.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "kebab-case")]
pub enum EventKind {
    /// A producer got SEND_OK for a message.
    Produced {
        producer: Name,
        msg_id: Name,
        topic: Name,
        queue_id: u32,
        queue_offset: u64,
    },
    /// A producer gave up on a message (no answer, or an error code).
    ProduceFailed {
        producer: Name,
        msg_id: Name,
        topic: Name,
        queue_id: u32,
        reason: Name,
    },
    /// A message came back in a pop response to this consumer.
    Delivered {
        consumer: Name,
        group: Name,
        msg_id: Name,
        /// The original topic.
        topic: Name,
        /// Queue and offset the copy was read from (a retry copy: the retry topic's).
        queue_id: u32,
        queue_offset: u64,
        retry_topic: Option<Name>,
        reconsume_times: u32,
        pop_time: Millis,
        invisible_time: Millis,
        receipt: Name,
        orderly: bool,
        /// The orderly pop's `attemptId`: a retried pop with the same id is reentrant (#6692)
        /// and may return the outstanding batch again. `None` when unknown or not orderly.
        #[serde(default)]
        attempt_id: Option<Name>,
    },
    /// The client acked a delivery without running the listener (the #8333 receipt filter,
    /// or a tag mismatch).
    SkippedOnReceipt {
        consumer: Name,
        group: Name,
        msg_id: Name,
        reconsume_times: u32,
        reason: Name,
    },
    /// The listener started on a message.
    ListenerStarted {
        consumer: Name,
        group: Name,
        msg_id: Name,
        reconsume_times: u32,
    },
    /// The listener returned. `pop_timed_out` = the client found `now − popTime ≥ invisibleTime`.
    ListenerFinished {
        consumer: Name,
        group: Name,
        msg_id: Name,
        outcome: ConsumeOutcome,
        pop_timed_out: bool,
    },
    /// The client sent ACK_MESSAGE (or a batch entry) for a delivery.
    AckSent {
        consumer: Name,
        group: Name,
        msg_id: Name,
        receipt: Name,
    },
    /// The ack's answer.
    AckResult {
        consumer: Name,
        group: Name,
        msg_id: Name,
        receipt: Name,
        outcome: RpcOutcome,
    },
    /// CHANGE_MESSAGE_INVISIBLETIME's answer; `new_receipt` replaces the old on success.
    ChangeInvisibleResult {
        consumer: Name,
        group: Name,
        msg_id: Name,
        receipt: Name,
        invisible_time: Millis,
        new_receipt: Option<Name>,
        outcome: RpcOutcome,
    },
    /// A client started a consumer-offset update.
    OffsetUpdateStarted {
        client: Name,
        call_id: u64,
        mode: OffsetUpdateMode,
        /// The mode the caller asked for, when the client could not use it (before #8368
        /// every update goes oneway).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        downgraded_from: Option<OffsetUpdateMode>,
        group: Name,
        topic: Name,
        queue_id: Option<i32>,
        offset: Option<i64>,
    },
    /// The update's caller learned its outcome. A oneway update "completes" when sent:
    /// `outcome = None` means the caller was told nothing but success is assumed.
    OffsetUpdateCompleted {
        client: Name,
        call_id: u64,
        outcome: Option<RpcOutcome>,
        caller_sees_success: bool,
    },
    /// An admin asked for a reset.
    ResetRequested {
        client: Name,
        group: Name,
        topic: Name,
        queue_id: i32,
        offset: Option<i64>,
    },
    /// The reset's answer; `offsets` = the ResetOffsetBody on success.
    ResetResult {
        client: Name,
        group: Name,
        topic: Name,
        queue_id: i32,
        outcome: RpcOutcome,
        offsets: Vec<(u32, i64)>,
    },
    /// The client forwarded a message to a dead-letter queue instead of consuming it
    /// (the gRPC proxy's `forwardMessageToDeadLetterQueue`, or the orderly consumer's
    /// send-back once the max is reached). This is the decision: it is recorded when the
    /// client (or proxy) decides, before any send-back request goes out, and it is about the
    /// message's latest delivery to that consumer.
    SentToDlq {
        consumer: Name,
        group: Name,
        msg_id: Name,
        dlq_topic: Name,
        reconsume_times: u32,
    },
    /// The broker stored a message in a dead-letter queue. Upstream this is the send-back
    /// path (`CONSUMER_SEND_MSG_BACK`, `AbstractSendMessageProcessor.consumerSendMsgBack`):
    /// a message whose reconsumeTimes reached the max the request carries (the gRPC proxy's
    /// `forwardMessageToDeadLetterQueue` sends 0, so all of its forwards land here) or whose
    /// delay level is negative goes to `%DLQ%group` (`MixAll.getDLQTopic`) instead of the
    /// retry topic. Recorded on the broker's node when the DLQ copy is stored; every such
    /// write should follow a [`EventKind::SentToDlq`] decision for the same group and message.
    DlqWritten {
        group: Name,
        msg_id: Name,
        /// The topic the message was consumed from (the send-back's `originTopic`).
        origin_topic: Name,
        dlq_topic: Name,
        /// Where the DLQ copy was stored (DLQ topics have one queue).
        dlq_queue_offset: u64,
        /// The reconsumeTimes stored with the DLQ copy.
        reconsume_times: u32,
    },
    /// A gRPC client's call to the proxy ended (recorded by the client when the answer, or
    /// its deadline, comes). The proxy's own remoting calls to the broker are recorded on
    /// the proxy's node as `AckSent`/`AckResult`/`ChangeInvisibleResult` with the client as
    /// `consumer`; these say what the client saw. `msg_id` is the message the call is about,
    /// if one; for a receive, `detail` says how many messages came.
    GrpcCall {
        consumer: Name,
        group: Name,
        rpc: GrpcRpc,
        msg_id: Option<Name>,
        outcome: GrpcOutcome,
        #[serde(default, skip_serializing_if = "Name::is_empty")]
        detail: Name,
    },
    /// The proxy got the broker's answer to the pop it made for a client's
    /// `ReceiveMessage` (`ConsumerProcessor.popMessage`): `found` messages, of which
    /// `to_dlq` it forwarded to the DLQ (`PopMessageResultFilterImpl`: reconsumeTimes ≥
    /// maxAttempts) instead of handing them out. (Subscriptions are `*`, so the filter's
    /// tag mismatch never happens.)
    ProxyPopped {
        consumer: Name,
        group: Name,
        topic: Name,
        queue_id: i32,
        attempt_id: Option<Name>,
        found: u32,
        to_dlq: u32,
        outcome: RpcOutcome,
    },
    /// A consumer's pop loop started (scripted `StartConsumer`, or the run's start).
    ConsumerStarted { consumer: Name, group: Name },
    /// A consumer's pop loop stopped (scripted `StopConsumer`); its group consumes nothing
    /// more unless another of its consumers runs.
    ConsumerStopped { consumer: Name, group: Name },
    /// A fault was injected or healed (scripted or drawn from the seed).
    Fault { description: Name },
    /// Something the broker model did (CK flush, revive, commit, crash, restart…).
    Broker(BrokerEvent),
    /// The gRPC proxy's receipt-handle processor renewed a message it keeps for a push
    /// consumer (`DefaultReceiptHandleManager.startRenewMessage`, a `RENEW` that succeeded):
    /// its table now holds `new_receipt` for the message, while the client keeps the handle
    /// it received. Recorded on the proxy's node after the changeInvisibleTime's result; a
    /// `STOP_RENEW` and a client's own changeInvisibleDuration record none. (Last, so that
    /// the variants before it keep their discriminants, and a history without it its hash.)
    HandleRenewed {
        consumer: Name,
        group: Name,
        msg_id: Name,
        receipt: Name,
        new_receipt: Name,
    },
    /// The gRPC proxy did not send the ack that follows a forward to the DLQ whose send-back
    /// succeeded (`ProducerProcessor.forwardMessageToDeadLetterQueue`, an ack nobody waits
    /// for): `ConsumerProcessor.ackMessage` refused `receipt` before any request
    /// (`validateReceiptHandle`: expired), so the broker never hears of it. Recorded on the
    /// proxy's node, with the client as `consumer`; it is that ack's only trace. (Last, for
    /// the discriminants, as above.)
    ForwardAckRefused {
        consumer: Name,
        group: Name,
        msg_id: Name,
        receipt: Name,
        reason: Name,
    },
    /// The gRPC proxy took the handle-table entry of a client's ack, nack or forward naming
    /// `receipt`, and found it put for another delivery of the message at the same queue and
    /// offset, whose handle was `original` (`ReceiptHandleGroup.put` replaces a live entry
    /// with an equal `HandleKey`: broker, queue and offset). The call names that delivery's
    /// latest handle, `current`, instead of the client's (`AckMessageActivity`'s
    /// `getHandleString`). Recorded on the proxy's node, with the client as `consumer`, before
    /// the call's `AckSent` or result. (Last, for the discriminants, as above.)
    HandleRedirected {
        consumer: Name,
        group: Name,
        msg_id: Name,
        receipt: Name,
        original: Name,
        current: Name,
    },
}

/// One event at a virtual time on a node.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Event {
    pub at: Millis,
    /// Shared by every event of the node (the recorder keeps one per name).
    pub node: Name,
    #[serde(flatten)]
    pub kind: EventKind,
}

/// A whole run: header, events in recorded order, and the broker's state at the end.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct History {
    pub meta: RunMeta,
    pub events: Vec<Event>,
    pub final_state: BrokerSnapshot,
}

impl History {
    /// A stable 64-bit digest of the events and final state: FNV-1a fed each event's time,
    /// node and kind, then the final state, through their `Hash` (integers little-endian
    /// and lengths as 8 bytes, see [`Fnv1a`], so every platform agrees). A saved history
    /// read back hashes the same. Equal seeds must give equal hashes; this is what the
    /// determinism checks compare. It used to hash each event's JSON, which cost a
    /// sixteenth of a seed's CPU.
    pub fn hash(&self) -> u64 {
        let mut d = HistoryDigest::new();
        for e in &self.events {
            d.event(e);
        }
        d.finish(&self.final_state)
    }
}

/// [`History::hash`] taken as the events are recorded: the recorder feeds each event once,
/// while it is still in cache, instead of a second pass over the whole history at the end.
#[derive(Clone, Copy, Debug, Default)]
pub struct HistoryDigest(Fnv1a);

impl HistoryDigest {
    pub fn new() -> Self {
        Self(Fnv1a::new())
    }

    /// Feeds the next event: its time, node and kind.
    pub fn event(&mut self, e: &Event) {
        use std::hash::Hash;
        e.at.hash(&mut self.0);
        e.node.hash(&mut self.0);
        e.kind.hash(&mut self.0);
    }

    /// The history's hash, once every event was fed: the final state closes it.
    pub fn finish(mut self, final_state: &BrokerSnapshot) -> u64 {
        use std::hash::Hash;
        final_state.hash(&mut self.0);
        self.0.finish()
    }
}

/// FNV-1a, 64 bit: tiny, stable across platforms and releases.
#[derive(Clone, Copy, Debug)]
pub struct Fnv1a(u64);

impl Fnv1a {
    pub fn new() -> Self {
        Self(0xcbf2_9ce4_8422_2325)
    }

    pub fn write(&mut self, bytes: &[u8]) {
        for b in bytes {
            self.0 ^= u64::from(*b);
            self.0 = self.0.wrapping_mul(0x0000_0100_0000_01b3);
        }
    }

    pub fn finish(self) -> u64 {
        self.0
    }
}

/// A `Hasher` whose digest is the same on every platform: fixed-width integers are written
/// little-endian, and `usize`/`isize` (lengths, enum discriminants) as 8 bytes.
impl std::hash::Hasher for Fnv1a {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        Fnv1a::write(self, bytes);
    }

    fn write_u16(&mut self, n: u16) {
        Fnv1a::write(self, &n.to_le_bytes());
    }

    fn write_u32(&mut self, n: u32) {
        Fnv1a::write(self, &n.to_le_bytes());
    }

    fn write_u64(&mut self, n: u64) {
        Fnv1a::write(self, &n.to_le_bytes());
    }

    fn write_u128(&mut self, n: u128) {
        Fnv1a::write(self, &n.to_le_bytes());
    }

    fn write_usize(&mut self, n: usize) {
        Fnv1a::write(self, &(n as u64).to_le_bytes());
    }

    fn write_i16(&mut self, n: i16) {
        Fnv1a::write(self, &n.to_le_bytes());
    }

    fn write_i32(&mut self, n: i32) {
        Fnv1a::write(self, &n.to_le_bytes());
    }

    fn write_i64(&mut self, n: i64) {
        Fnv1a::write(self, &n.to_le_bytes());
    }

    fn write_i128(&mut self, n: i128) {
        Fnv1a::write(self, &n.to_le_bytes());
    }

    fn write_isize(&mut self, n: isize) {
        Fnv1a::write(self, &(n as i64).to_le_bytes());
    }
}

impl Default for Fnv1a {
    fn default() -> Self {
        Self::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A run at the largest scaling point keeps millions of events: their size is what its
    /// memory is (BENCHMARKS.md, "Shared names"). A new field or variant that grows the event
    /// should be a decision, not an accident (box it, or raise this bound and say why). The
    /// broker events box their `CkRef` and offset lists: 136 → 120 bytes; the largest
    /// variants are now `AckWritten` and `Delivered`.
    #[test]
    fn an_event_stays_small() {
        assert!(
            std::mem::size_of::<Event>() <= 120,
            "Event is {} bytes",
            std::mem::size_of::<Event>()
        );
        assert_eq!(std::mem::size_of::<Name>(), 8);
    }

    /// A name serializes as its text, exactly as the `String` it replaced did, so saved
    /// histories read back and every history hash stays the same.
    #[test]
    fn a_name_round_trips_as_a_plain_string() {
        let e = Event {
            at: 7,
            node: "c1".into(),
            kind: EventKind::ConsumerStarted {
                consumer: "c1".into(),
                group: "g".into(),
            },
        };
        let json = serde_json::to_string(&e).expect("serialize");
        assert_eq!(
            json,
            r#"{"at":7,"node":"c1","type":"consumer-started","consumer":"c1","group":"g"}"#
        );
        assert_eq!(serde_json::from_str::<Event>(&json).expect("parse"), e);
    }
}
