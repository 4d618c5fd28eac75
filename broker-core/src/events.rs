//! What the broker did, as observations for the recorded history and the timeline.
//! Emitted by the model, drained by the driver; they never feed back into decisions.

use crate::config::Millis;
use crate::name::Name;

/// The `reason` of the ACK record `ChangeInvisibleTimeProcessor.ackOrigin` writes for the
/// receipt a changeInvisibleTime replaces (the checkers tell it from a consumer's ack by it).
pub const ACK_ORIGIN_REASON: &str = "ChangeInvisibleTimeProcessor.ackOrigin";
/// The `reason` of the CK `ChangeInvisibleTimeProcessor.appendCheckPoint` writes for the new
/// invisible time (the checkers tell it from a pop's CK by it).
pub const CHANGE_CK_REASON: &str = "ChangeInvisibleTimeProcessor.appendCheckPoint";
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Identity of a checkpoint, as the merge key spells it (`topic+cid+queueId+startOffset+popTime+brokerName`).
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct CkRef {
    /// The CK's topic (possibly a retry topic).
    pub topic: Name,
    pub group: Name,
    pub queue_id: u32,
    pub start_offset: u64,
    pub pop_time: Millis,
    pub invisible_time: Millis,
    pub num: u32,
    pub broker_name: Name,
}

/// What the reviver did with an ACK record it read (`consumeReviveMessage`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum AckReadOutcome {
    /// A CK with its key was in the scan's map: its bits were set.
    Matched,
    /// No CK with its key had been read in this scan (`point == null`): dropped.
    NoCk,
    /// No CK with its key, and it had waited past `reviveAckWaitMs`: a CK was mocked for it.
    Mocked,
}

impl std::fmt::Display for AckReadOutcome {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            AckReadOutcome::Matched => "matched its CK",
            AckReadOutcome::NoCk => "no CK with its key read yet: dropped",
            AckReadOutcome::Mocked => "no CK with its key, waited too long: a CK mocked for it",
        })
    }
}

/// Where a pop's read started, and why there (`getPopOffset`, `resetPopOffset`, the
/// KV path's `getPopOffset`, the offset correction).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ReadFrom {
    /// A pending server-side reset, taken by this pop (`queryThenEraseResetOffset`).
    PendingReset,
    /// The commit offset (`queryOffset`).
    CommitOffset,
    /// The pull offset (`queryPullOffset`, KV non-FIFO; and FIFO before #9696).
    PullOffset,
    /// The newest buffered CK's `nextBeginOffset` (`PopBufferMergeService.getLatestOffset`),
    /// ahead of the commit offset.
    BufferedCk,
    /// No offset yet: `getInitOffset`.
    InitOffset,
    /// The store answered `OFFSET_TOO_SMALL`/`OFFSET_OVERFLOW_BADLY`: corrected to
    /// `nextBeginOffset` and read again.
    Corrected,
}

impl ReadFrom {
    /// How a report says it.
    pub fn describe(self) -> &'static str {
        match self {
            ReadFrom::PendingReset => "the pending reset",
            ReadFrom::CommitOffset => "the commit offset",
            ReadFrom::PullOffset => "the pull offset",
            ReadFrom::BufferedCk => "the newest buffered CK's nextBeginOffset",
            ReadFrom::InitOffset => "the init offset",
            ReadFrom::Corrected => "the store's nextBeginOffset (offset correction)",
        }
    }
}

/// One thing the broker model did. `at` is the `now` it was given.
///
/// The `CkRef`s and offset lists are boxed: a run at scale keeps millions of events, and
/// inline they made these rare variants set every event's size (they serialize and hash
/// as before).
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum BrokerEvent {
    /// `PopBufferMergeService.addCk`: a CK is held in memory.
    CkBuffered { at: Millis, ck: Box<CkRef> },
    /// A CK record appended to the revive log (`putCkToStore`, `addCkJustOffset`, the
    /// changeInvisibleTime CK, or `rePutCK`); visible to the reviver at `deliver_at`.
    CkWritten {
        at: Millis,
        ck: Box<CkRef>,
        revive_qid: u32,
        revive_offset: u64,
        deliver_at: Millis,
        reason: Name,
    },
    /// `consumeReviveMessage` read an ACK or BatchAck record: the merge key it built and
    /// what became of it (a CK read earlier in this scan had the key, none had, or none had
    /// and `enableSkipLongAwaitingAck` mocked one).
    AckRecordRead {
        at: Millis,
        revive_qid: u32,
        /// Its position in the revive queue as the reviver reads it (delivery order), not
        /// the log offset `AckWritten` names.
        revive_offset: u64,
        topic: Name,
        group: Name,
        queue_id: u32,
        start_offset: u64,
        pop_time: Millis,
        ack_offsets: Box<[u64]>,
        key: Name,
        outcome: AckReadOutcome,
    },
    /// `mergeAndRevive` revives a CK: its merge key and the offsets whose bits acks set.
    ReviveDecided {
        at: Millis,
        revive_qid: u32,
        ck: Box<CkRef>,
        key: Name,
        acked: Box<[u64]>,
    },
    /// An ack merged into a buffered CK's bits (`addAk` returned true).
    AckMergedInBuffer {
        at: Millis,
        ck: Box<CkRef>,
        ack_offset: u64,
    },
    /// An ACK or BatchAck record appended to the revive log. `broker_name` is what the record
    /// carries (`None` = blank), which is what bug (c) is about.
    AckWritten {
        at: Millis,
        topic: Name,
        group: Name,
        queue_id: u32,
        start_offset: u64,
        pop_time: Millis,
        ack_offsets: Box<[u64]>,
        broker_name: Option<Name>,
        revive_qid: u32,
        revive_offset: u64,
        deliver_at: Millis,
        batch: bool,
        reason: Name,
    },
    /// The reviver put an un-acked message to the retry topic (`reviveRetry`).
    Revived {
        at: Millis,
        group: Name,
        /// The original topic of the message.
        topic: Name,
        msg_id: Name,
        /// The CK the revive came from.
        ck: Box<CkRef>,
        /// The message's offset in the CK's topic.
        queue_offset: u64,
        retry_topic: Name,
        retry_queue_offset: u64,
        reconsume_times: u32,
    },
    /// `CID_RMQ_SYS_REVIVE_GROUP`'s offset on a revive queue was committed.
    ReviveOffsetCommitted {
        at: Millis,
        revive_qid: u32,
        offset: u64,
    },
    /// `ConsumerOffsetManager.commitOffset` (offsetTable), with upstream's caller tag
    /// (e.g. "getPopOffset", "ResetPopOffset", "PopBufferMergeService", "ackOrderly",
    /// "updateConsumerOffset", "assignResetOffset").
    OffsetCommitted {
        at: Millis,
        group: Name,
        topic: Name,
        queue_id: u32,
        offset: i64,
        reason: Name,
    },
    /// `commitPullOffset`.
    PullOffsetCommitted {
        at: Millis,
        group: Name,
        topic: Name,
        queue_id: u32,
        offset: i64,
        reason: Name,
    },
    /// A pop took its offset in a queue (`getPopOffset`; for an orderly pop, after its block
    /// check) and starts reading: the moment the pop's position is decided, and why there.
    /// `offset`/`count` are what a read finds at that moment (the read completes later).
    PopRead {
        at: Millis,
        group: Name,
        topic: Name,
        queue_id: u32,
        pop_time: Millis,
        offset: u64,
        count: u32,
        orderly: bool,
        from: ReadFrom,
        /// The request's `attemptId` (the gRPC proxy sends one per receive): two pops of a
        /// group may share a `popTime` and read the same offset of a queue, and only this
        /// tells which read a delivery came from.
        #[serde(default)]
        attempt_id: Option<Name>,
    },
    /// Upstream freed a try-lock that another operation held (`PopConsumerLockService`
    /// locks are a bare flag): `site` freed operation `holder`'s lock from operation `by`.
    LockReleasedByOther {
        at: Millis,
        lock: Name,
        holder: u64,
        by: u64,
        site: Name,
    },
    /// `addAk` passed its guards, but the buffer scan flushed and dropped the wrapper before
    /// `markBitCAS`: the bit is set on a CK nobody stores, and the ack is lost although
    /// `addAk` answered true.
    AckLostOnDroppedCk {
        at: Millis,
        group: Name,
        topic: Name,
        queue_id: u32,
        start_offset: u64,
        pop_time: Millis,
        ack_offset: u64,
    },
    /// `clearPullOffset` (#9370): every queue's cursor, or (the proposed fix
    /// `clear-pull-offset-of-reset-queues`) one queue's.
    PullOffsetCleared {
        at: Millis,
        group: Name,
        topic: Name,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        queue_id: Option<u32>,
    },
    /// `assignResetOffset`; `wrote_offset_table` is false when change (e) is absent and the key was new.
    ResetAssigned {
        at: Millis,
        group: Name,
        topic: Name,
        queue_id: u32,
        offset: i64,
        wrote_offset_table: bool,
    },
    /// A pending reset was consumed by a pop (`queryThenEraseResetOffset`).
    ResetConsumed {
        at: Millis,
        group: Name,
        topic: Name,
        queue_id: u32,
        offset: i64,
    },
    /// A pop that found nothing was parked (`PopLongPollingService.polling` answered
    /// `POLLING_SUC`): operation `op` waits on `topic@group@queue_id` until `expires_at`
    /// (`bornTime + pollTime`), a message arrives, or an orderly ack unblocks the queue.
    PopParked {
        at: Millis,
        op: u64,
        group: Name,
        topic: Name,
        /// −1 for a pop of every queue.
        queue_id: i32,
        expires_at: Millis,
    },
    /// A parked pop was woken (`wakeUp`) and runs again from the start: `reason` is
    /// `notifyMessageArriving` (a message was stored), `ackOrderly` (an orderly ack left the
    /// queue unblocked), `restNum` (a pop of the same key left messages behind) or `timeout`.
    PopWoken {
        at: Millis,
        op: u64,
        group: Name,
        topic: Name,
        queue_id: i32,
        reason: Name,
    },
    /// `consumerSendMsgBack` stored a copy in the group's dead-letter queue (the history
    /// records it as the top-level `DlqWritten`).
    DlqWritten {
        at: Millis,
        group: Name,
        msg_id: Name,
        origin_topic: Name,
        dlq_topic: Name,
        dlq_queue_offset: u64,
        reconsume_times: u32,
    },
    /// `ConsumerOffsetManager.persist()` wrote consumerOffset.json.
    OffsetsPersisted { at: Millis },
    /// A store put failed (a fault): `site` is the upstream method that put it, `topic` and
    /// `queue_id` where it went (the revive topic and queue for a CK or ACK, the retry topic
    /// for a revive). What follows is the site's own handling.
    StorePutFailed {
        at: Millis,
        site: Name,
        topic: Name,
        queue_id: u32,
    },
    /// A CK (or one message of it, `queue_offset`) given up for good: `rePutCK` after the
    /// maximum re-puts with `skipWhenCKRePutReachMaxTimes`, or a KV record dropped after its
    /// last revive attempt. The message is never revived from it.
    CkDropped {
        at: Millis,
        ck: Box<CkRef>,
        queue_offset: u64,
        reason: Name,
    },
    /// Retention deleted a queue's oldest messages: its min offset is now `min_offset`.
    MessagesExpired {
        at: Millis,
        topic: Name,
        queue_id: u32,
        min_offset: u64,
    },
    /// `ConsumerOrderInfoManager.persist()` wrote consumerOrderInfo.json (orderly POP state).
    OrderInfoPersisted { at: Millis },
    /// The process stopped; volatile state is gone. `graceful`: a clean shutdown
    /// (`BrokerController.shutdown`), which first drained the CK buffer and persisted the
    /// offset and OrderInfo tables; otherwise a crash, which did none of that.
    Crashed {
        at: Millis,
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        graceful: bool,
    },
    /// The process started again from its persisted image.
    Restarted { at: Millis },
    /// (Last: a variant's place is part of the history hash.)
    /// `TimerDequeuePutMessageService.run` gave a revive record up after its dequeue puts
    /// failed `attempts` times (`timerEnableRetryUntilSuccess` off): the record written as
    /// `revive_offset` of revive queue `revive_qid` (a CK or an ACK) never reaches the queue,
    /// so no reviver reads it.
    TimerRecordDiscarded {
        at: Millis,
        revive_qid: u32,
        revive_offset: u64,
        attempts: u32,
    },
}

fn is_zero(v: &Millis) -> bool {
    *v == 0
}

/// Min and max offset of one queue (`getMinOffsetInQueue` / `getMaxOffsetInQueue`, max exclusive).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct QueueRange {
    pub min: u64,
    pub max: u64,
}

/// One revive queue's progress.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct ReviveQueueState {
    pub revive_qid: u32,
    /// Records in the revive queue (max offset, exclusive).
    pub max_offset: u64,
    /// `CID_RMQ_SYS_REVIVE_GROUP`'s committed offset (−1 = none).
    pub committed_offset: i64,
    /// The latest `deliver_at` of any record in the queue, if any.
    pub last_deliver_at: Option<Millis>,
    /// The revive-log offsets (`CkWritten`/`AckWritten` `revive_offset`) in queue order: the
    /// order the timer delivered them in, which the reviver reads and commits.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub delivered: Vec<u64>,
}

/// A read-only picture of the broker's state for the checker and the reports.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct BrokerSnapshot {
    /// `offsetTable`: `topic@group` → queueId → offset.
    pub offset_table: BTreeMap<String, BTreeMap<u32, i64>>,
    /// The `offsetTable` image last persisted (what a restart would read back).
    pub persisted_offset_table: BTreeMap<String, BTreeMap<u32, i64>>,
    pub pull_offset_table: BTreeMap<String, BTreeMap<u32, i64>>,
    pub reset_offset_table: BTreeMap<String, BTreeMap<u32, i64>>,
    /// topic → per-queue ranges (includes retry, DLQ and revive topics).
    pub queues: BTreeMap<String, Vec<QueueRange>>,
    pub revive_queues: Vec<ReviveQueueState>,
    /// CKs still held in `PopBufferMergeService.buffer`.
    pub buffered_cks: usize,
    pub running: bool,
    /// How long after a CK reached its revive queue the reviver has surely merged it
    /// (`Broker::revive_settle_ms`, from `reviveInterval` and `reviveMaxSlow`; 0 = unknown).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub revive_settle_ms: Millis,
}
