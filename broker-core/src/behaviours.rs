//! The switch registry, two kinds in one place:
//!
//! - **Historical behaviours** ([`Behaviour`]): the closed set of upstream decisions that a
//!   later pull request changed. Each one, when switched on, restores exactly the old decision
//!   at the one place the upstream fix touched.
//! - **Proposed fixes** ([`Fix`]): the mirror image. Each changes one decision of upstream
//!   develop (the 2025-09 snapshot) to what popsim proposes upstream should do, at the one
//!   place a finding (docs/findings.md) traced its violation to.
//!
//! Either way the symptom (a duplicate, a lost offset, a hung future) has to emerge from the
//! simulated interaction. Nothing here says "deliver twice".
//!
//! The default is upstream develop: every historical behaviour fixed, no proposed fix on.

use serde::{Deserialize, Serialize};
use std::collections::BTreeSet;
use std::fmt;
use std::str::FromStr;

/// Which program carries the decision.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Side {
    /// broker-core reads the switch.
    Broker,
    /// A client model (or the gRPC proxy's) in the simulation reads the switch.
    Client,
}

/// One historical behaviour. The kebab-case names are the CLI and scenario-file names.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Behaviour {
    /// Before #8494: `PopReviveService` merge keys carry no brokerName.
    ReviveMergeKeyWithoutBrokerName,
    /// Before #8836: `PopBufferMergeService.putAckToStore` writes AckMsgs without brokerName.
    BufferedAckMissingBrokerName,
    /// Before #8981: `PopReviveService` does not substitute its own brokerName for a blank one.
    ReviveNoBlankBrokerNameFallback,
    /// 5.3.2 (#9087) until #9370: `resetOffsetInner` commits the pull offset on the KV path.
    ResetCommitsPullOffset,
    /// Until #9696: KV-path FIFO pops read the pull offset (`queryPullOffset`).
    KvFifoReadsPullOffset,
    /// Before #9150: `assignResetOffset` writes offsetTable only when the key already exists.
    ResetNeedsExistingOffsetKey,
    /// Before #8333 (client): a pop-timed-out result skips `processConsumeResult`, the only
    /// place maxReconsumeTimes was checked.
    PopTimeoutSkipsMaxReconsume,
    /// Before #8368 (client): the offset store can only update the broker oneway.
    OffsetUpdateOnewayOnly,
    /// #8368 until #10006 (client): `updateConsumerOffsetAsync` leaves the future incomplete
    /// for a response code its switch does not map.
    OffsetFutureUnmappedResponse,
    /// Before #9340: `PopConsumerService.addGetMessageResult` commits nothing for a FIFO read,
    /// and for a non-FIFO one `nextBeginOffset` unless it found messages.
    KvFifoNoCommitAtPop,
    /// Before #9247: `PopConsumerService` has no init offset; with nothing stored it reads at −1.
    KvNoInitOffset,
    /// Before #9247: `PopConsumerService.getMessageAsync` consumes and commits a pending reset
    /// but reads at the offset queried before it.
    KvReadIgnoresReset,
    /// Before #8404: `PopMessageProcessor.getInitOffset` returns the min for `MIN` without
    /// committing it, and has no rule for retry topics.
    InitMinNoCommit,
    /// Before #9027: `ConsumerManageProcessor.updateConsumerOffset` answers a null queueId or
    /// offset `SYSTEM_ERROR`.
    UpdateOffsetNullAnswersSystemError,
    /// Before #8980: `TimerMessageStore.doPut` retries a failed put itself, three more times
    /// 50 ms apart, and gives the record up after the fourth failure.
    TimerDoPutGivesUpAfterFour,
}

/// Static facts about a behaviour: where upstream changed it and which releases have it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct BehaviourInfo {
    pub behaviour: Behaviour,
    /// Kebab-case name, as typed on the command line.
    pub name: &'static str,
    pub side: Side,
    /// Upstream issue that reported it (apache/rocketmq).
    pub issue: &'static str,
    /// Upstream pull request that changed the decision.
    pub fix: &'static str,
    /// The decision, old versus new, in upstream's vocabulary.
    pub decision: &'static str,
    /// Releases (of [`Release::ALL`]) that carry the old decision.
    pub releases: &'static [Release],
}

impl Behaviour {
    /// Every behaviour, in registry order.
    pub const ALL: [Behaviour; 15] = [
        Behaviour::ReviveMergeKeyWithoutBrokerName,
        Behaviour::BufferedAckMissingBrokerName,
        Behaviour::ReviveNoBlankBrokerNameFallback,
        Behaviour::ResetCommitsPullOffset,
        Behaviour::KvFifoReadsPullOffset,
        Behaviour::ResetNeedsExistingOffsetKey,
        Behaviour::PopTimeoutSkipsMaxReconsume,
        Behaviour::OffsetUpdateOnewayOnly,
        Behaviour::OffsetFutureUnmappedResponse,
        Behaviour::KvFifoNoCommitAtPop,
        Behaviour::KvNoInitOffset,
        Behaviour::KvReadIgnoresReset,
        Behaviour::InitMinNoCommit,
        Behaviour::UpdateOffsetNullAnswersSystemError,
        Behaviour::TimerDoPutGivesUpAfterFour,
    ];

    /// The registry entry for this behaviour.
    pub fn info(self) -> BehaviourInfo {
        use Behaviour::*;
        use Release::*;
        let (name, side, issue, fix, decision, releases): (_, _, _, _, _, &'static [Release]) =
            match self {
                ReviveMergeKeyWithoutBrokerName => (
                    "revive-merge-key-without-broker-name",
                    Side::Broker,
                    "#8460",
                    "#8494",
                    "PopReviveService.consumeReviveMessage keys CKs and ACKs by topic+cid+queueId+startOffset+popTime, without brokerName",
                    &[V5_3_0],
                ),
                BufferedAckMissingBrokerName => (
                    "buffered-ack-missing-broker-name",
                    Side::Broker,
                    "#8835",
                    "#8836",
                    "PopBufferMergeService.putAckToStore builds the AckMsg without setBrokerName(point.getBrokerName())",
                    &[V5_3_0, V5_3_1],
                ),
                ReviveNoBlankBrokerNameFallback => (
                    "revive-no-blank-broker-name-fallback",
                    Side::Broker,
                    "#8460",
                    "#8981",
                    "PopReviveService keys an ACK with a blank brokerName as blank instead of this broker's name",
                    &[V5_3_0, V5_3_1],
                ),
                ResetCommitsPullOffset => (
                    "reset-commits-pull-offset",
                    Side::Broker,
                    "#9369",
                    "#9370",
                    "AdminBrokerProcessor.resetOffsetInner on the KV path calls commitPullOffset(reset) instead of clearPullOffset(group, topic)",
                    &[V5_3_2],
                ),
                KvFifoReadsPullOffset => (
                    "kv-fifo-reads-pull-offset",
                    Side::Broker,
                    "#9695",
                    "#9696",
                    "PopConsumerService.getPopOffset reads queryPullOffset for FIFO pops instead of queryOffset",
                    &[V5_3_2, V5_3_3],
                ),
                ResetNeedsExistingOffsetKey => (
                    "reset-needs-existing-offset-key",
                    Side::Broker,
                    "#9149",
                    "#9150",
                    "ConsumerOffsetManager.assignResetOffset writes offsetTable only if a map already exists for topic@group",
                    &[V5_3_0, V5_3_1],
                ),
                PopTimeoutSkipsMaxReconsume => (
                    "pop-timeout-skips-max-reconsume",
                    Side::Client,
                    "#8332",
                    "#8333",
                    "DefaultMQPushConsumerImpl.processPopResult does not ack messages whose reconsumeTimes exceeds maxReconsumeTimes; a pop-timed-out result skips processConsumeResult",
                    &[V5_3_0],
                ),
                OffsetUpdateOnewayOnly => (
                    "offset-update-oneway-only",
                    Side::Client,
                    "#8365",
                    "#8368",
                    "MQClientAPIExt has no updateConsumerOffsetAsync: a caller that wants a future gets updateConsumerOffsetOneWay's, completed at once (the synchronous MQClientAPIImpl.updateConsumerOffset exists)",
                    &[V5_3_0],
                ),
                OffsetFutureUnmappedResponse => (
                    "offset-future-unmapped-response",
                    Side::Client,
                    "#10005",
                    "#10006",
                    "MQClientAPIExt.updateConsumerOffsetAsync maps SUCCESS, SYSTEM_ERROR, SUBSCRIPTION_GROUP_NOT_EXIST and TOPIC_NOT_EXIST only (no default), so any other code never completes the future",
                    &[V5_3_1, V5_3_2, V5_3_3],
                ),
                KvFifoNoCommitAtPop => (
                    "kv-fifo-no-commit-at-pop",
                    Side::Broker,
                    "#9339",
                    "#9340",
                    "PopConsumerService.addGetMessageResult commits (pull offset and offset) only for a non-FIFO read, the read start if FOUND else nextBeginOffset; handleGetMessageResult commits FIFO reads too and a non-FIFO read's start whatever its status",
                    &[V5_3_2],
                ),
                KvNoInitOffset => (
                    "kv-no-init-offset",
                    Side::Broker,
                    "#9246",
                    "#9247",
                    "PopConsumerService.popAsync takes no initMode and getPopOffset only handles a reset: with no stored offset the store is read at -1 (OFFSET_TOO_SMALL: the min is committed and read), and a found read commits -1",
                    &[V5_3_2],
                ),
                KvReadIgnoresReset => (
                    "kv-read-ignores-reset",
                    Side::Broker,
                    "#9246",
                    "#9247",
                    "PopConsumerService.getMessageAsync erases and commits a pending reset (getPopOffset) but reads at the queryPullOffset value taken before it; since #9247 getPopOffset returns the reset and the read starts there",
                    &[V5_3_2],
                ),
                InitMinNoCommit => (
                    "init-min-no-commit",
                    Side::Broker,
                    "#8402",
                    "#8404",
                    "PopMessageProcessor.getInitOffset returns getMinOffsetInQueue for MIN without committing it, and a retry topic follows initMode like any topic",
                    &[V5_3_0],
                ),
                UpdateOffsetNullAnswersSystemError => (
                    "update-offset-null-answers-system-error",
                    Side::Broker,
                    "#9028",
                    "#9027",
                    "ConsumerManageProcessor.updateConsumerOffset answers a null queueId or offset SYSTEM_ERROR instead of INVALID_PARAMETER",
                    &[V5_3_0, V5_3_1],
                ),
                TimerDoPutGivesUpAfterFour => (
                    "timer-do-put-gives-up-after-four",
                    Side::Broker,
                    "#8979",
                    "#8980",
                    "TimerMessageStore.doPut retries a put that failed (OS_PAGE_CACHE_BUSY and the like) three more times 50 ms apart and then answers PUT_NO_RETRY, so TimerDequeuePutMessageService gives the record up after four failed puts; timerEnableRetryUntilSuccess does not exist",
                    &[V5_3_0, V5_3_1],
                ),
            };
        BehaviourInfo {
            behaviour: self,
            name,
            side,
            issue,
            fix,
            decision,
            releases,
        }
    }

    /// The kebab-case name.
    pub fn name(self) -> &'static str {
        self.info().name
    }

    /// Every valid name, comma-separated, for error messages.
    pub fn valid_names() -> String {
        Behaviour::ALL
            .iter()
            .map(|b| b.name())
            .collect::<Vec<_>>()
            .join(", ")
    }
}

impl fmt::Display for Behaviour {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// An unknown behaviour or release name; the message lists the valid ones.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UnknownName {
    pub what: &'static str,
    pub given: String,
    pub valid: String,
}

impl fmt::Display for UnknownName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "unknown {} `{}`; valid: {}",
            self.what, self.given, self.valid
        )
    }
}

impl std::error::Error for UnknownName {}

impl FromStr for Behaviour {
    type Err = UnknownName;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Behaviour::ALL
            .into_iter()
            .find(|b| b.name() == s)
            .ok_or_else(|| UnknownName {
                what: "historical behaviour",
                given: s.to_owned(),
                valid: Behaviour::valid_names(),
            })
    }
}

/// The switches in force for one run: historical behaviours switched on (old decisions
/// restored) and proposed fixes switched on (develop decisions changed). Empty = upstream
/// develop.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Behaviours {
    on: BTreeSet<Behaviour>,
    #[serde(default, skip_serializing_if = "BTreeSet::is_empty")]
    fixes: BTreeSet<Fix>,
}

impl Behaviours {
    /// Every behaviour fixed (upstream develop).
    pub fn fixed() -> Self {
        Self::default()
    }

    pub fn with(mut self, b: Behaviour) -> Self {
        self.on.insert(b);
        self
    }

    pub fn insert(&mut self, b: Behaviour) {
        self.on.insert(b);
    }

    /// Is the old decision in force?
    pub fn is_on(&self, b: Behaviour) -> bool {
        self.on.contains(&b)
    }

    /// The historical behaviours switched on, in registry order.
    pub fn iter(&self) -> impl Iterator<Item = Behaviour> + '_ {
        self.on.iter().copied()
    }

    /// No historical behaviour on (proposed fixes aside).
    pub fn is_empty(&self) -> bool {
        self.on.is_empty()
    }

    pub fn with_fix(mut self, f: Fix) -> Self {
        self.fixes.insert(f);
        self
    }

    pub fn insert_fix(&mut self, f: Fix) {
        self.fixes.insert(f);
    }

    /// Is the proposed decision in force instead of develop's?
    pub fn has_fix(&self, f: Fix) -> bool {
        self.fixes.contains(&f)
    }

    /// The proposed fixes switched on, in registry order.
    pub fn fixes(&self) -> impl Iterator<Item = Fix> + '_ {
        self.fixes.iter().copied()
    }
}

impl FromIterator<Behaviour> for Behaviours {
    fn from_iter<I: IntoIterator<Item = Behaviour>>(iter: I) -> Self {
        Self {
            on: iter.into_iter().collect(),
            fixes: BTreeSet::new(),
        }
    }
}

/// One proposed fix. The kebab-case names are the CLI (`--fix NAME`) and scenario-file names.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Fix {
    /// `PopBufferMergeService.commitOffset` does not commit over a pending reset.
    BufferCommitSkipsPendingReset,
    /// CK/ACK merge keys join their fields with a separator.
    MergeKeyWithSeparator,
    /// `resetOffsetInner` clears the pull offset of the reset queues only.
    ClearPullOffsetOfResetQueues,
    /// `PopConsumerService.clearCache` removes cached records without touching the lock.
    ClearCacheWithoutLock,
    /// `PopBufferMergeService.addAk` stores the buffered CK before refusing an ack near its
    /// revive time.
    RefusedAckStoresItsCk,
    /// `AckMessageProcessor.appendAck` answers an error when the ACK put failed.
    AckPutFailureAnswersError,
    /// `PopConsumerCache.cleanupRecords` keeps a record whose revive failed.
    CacheReviveFailureKeepsRecord,
    /// `ChangeInvisibleTimeProcessor.ackOrigin` completes `false` (`SYSTEM_ERROR`) when the
    /// ACK put of the original receipt failed.
    AckOriginFailureAnswersError,
    /// `PopReviveService.mergeAndRevive` does not commit the revive offset past a CK whose
    /// `rePutCK` put failed.
    RePutFailureHoldsReviveOffset,
    /// `PopReviveService.consumeReviveMessage` raises `endTime` from a record only up to the
    /// timer's read time.
    ReviveEndTimeFollowsTimer,
    /// `PopConsumerCache.commitOffset` does not commit over a pending reset.
    CacheCommitSkipsPendingReset,
    /// `ConsumerOffsetManager` persists `resetOffsetTable` with `offsetTable` and restores it.
    ResetTableSurvivesRestart,
    /// `PopConsumerCache.ConsumerRecords.delete` removes a cached record only if it is the
    /// record asked for (same popTime and invisible time), not any record at that offset.
    CacheDeleteMatchesRecord,
    /// `AdminBrokerProcessor.resetOffsetInner`'s KV cleanup skips a queue whose reset a pop
    /// already took (no longer `hasOffsetReset`).
    ResetCleanupSkipsTakenQueues,
    /// `PopConsumerService.changeInvisibilityDuration` skips the delete of the old record
    /// when its store key equals the new record's (the same visibility time).
    ChangeSkipsDeleteOfSameKey,
    /// `BrokerController`'s scheduled `ConsumerOffsetManager.persist` also persists
    /// `ConsumerOrderInfoManager`, so a restart restores a consistent pair.
    OrderInfoPersistsWithOffsets,
    /// `PopBufferMergeService.putAckToStore` / `putBatchAckToStore` give an ACK that is
    /// already due, while its CK's timer slot is still ahead of the timer's read time, a
    /// deliver time one timer slot ahead, so it goes through the wheel behind the CK.
    DueBufferedAckGoesThroughTimer,
    /// `ConsumerOrderInfoManager.commitAndNext` without an OrderInfo for the queue answers
    /// `queueOffset + 1` only for an ack of the commit offset, else −2 (nothing to commit).
    AckWithoutOrderInfoCommitsInOrder,
    /// `PopBufferMergeService.putCkToStore` writes the CK with the acks merged into the
    /// wrapper so far set in its `bitMap`, so the reviver skips them even if their own ACK
    /// records come too late.
    FlushedCkCarriesMergedAcks,
    /// `ConsumerOffsetManager` persists the offsets (`persist`) as soon as offsetTable gains a
    /// group's first offset of a queue (its init offset, whichever call writes it:
    /// `getInitOffset`'s commit, a reset's `assignResetOffset`, an update), so a crash before
    /// the next scheduled flush does not make the group new again.
    InitOffsetPersistsAtOnce,
    /// `PopMessageProcessor.popMsgFromQueue` does not apply `isPopShouldStop` to an orderly
    /// pop: the OrderInfo block already bounds an orderly queue to one batch in flight, and
    /// the pop that passes it clears the queue's count.
    OrderlyPopSkipsInflightThreshold,
    /// `AckMessageProcessor.appendAck` (batch ack) hands an orderly ack of an offset below
    /// the queue's min offset to `ackOrderly` instead of skipping it, so a head retention
    /// deleted does not hold the commit behind acked messages.
    OrderlyBatchAckBelowMinCommits,
    /// `PopReviveService.reviveMsgFromCk` takes a message it finds deleted off the
    /// `PopInflightMessageCounter`, as `reviveRetry` does for one it revives, so a message
    /// retention deleted while in flight does not stay counted until a restart.
    ReviveOfDeletedMessageLowersInflight,
    /// `ConsumerOrderInfoManager.OrderInfo.mergeOffsetConsumedCount` keeps, for a pop with the
    /// previous batch's attemptId, only the counts of the offsets this batch reads again, so
    /// a new batch does not inherit the delivery counts of an acked one.
    ReentrantPopCountsOnlyItsBatch,
    /// The gRPC proxy's `ConsumerProcessor.popMessage` answers a receive only once every
    /// message its filter dead-lettered was forwarded and acked, so a reentrant re-receive
    /// does not read the dead-lettered batch again.
    DeadLetterAckedBeforeAnswer,
    /// The gRPC proxy's `AckMessageActivity` puts back the receipt handle `getHandleString`
    /// took out of the `ReceiptHandleGroup` when the ack it made with it failed, so the
    /// client's retry acks the renewed handle rather than its original.
    FailedAckRestoresHandle,
    /// `ChangeInvisibleTimeProcessor.ackOrigin` gives an ACK of the original receipt that is
    /// already due, while the timer has not delivered the original CK's slot, a deliver time
    /// one timer slot from now, so it follows that CK through the wheel.
    DueAckOriginGoesThroughTimer,
    /// The gRPC proxy's `ForwardMessageToDLQActivity` puts back the receipt handle
    /// `getHandleString` took out of the `ReceiptHandleGroup` when the forward failed, so the
    /// client's retry forwards, and then acks, the renewed handle rather than its original.
    FailedForwardRestoresHandle,
    /// The gRPC proxy's `ChangeInvisibleDurationActivity` puts back the receipt handle
    /// `getHandleString` took out of the `ReceiptHandleGroup` when the change failed, so the
    /// client's retry changes the renewed handle rather than its original.
    FailedChangeRestoresHandle,
    /// The gRPC proxy's ack, changeInvisibleDuration and forward activities keep the
    /// message's `ReceiptHandleGroup` entry, locked, while their call to the broker runs and
    /// remove it only once the call succeeded, so a failed call leaves the renewed handle in
    /// the table and a client's retry that overtakes the call waits for its answer.
    CallHoldsHandleEntry,
    /// The gRPC proxy's `ReceiptHandleGroup.HandleKey` also compares a non-orderly handle's
    /// popTime, so a second delivery of a copy a push consumer still consumes gets its own
    /// entry instead of replacing the first one's.
    HandleKeyPerDelivery,
    /// `TimerDequeuePutMessageService.run` never gives up a record of the revive topic: a
    /// failed put of a CK or ACK is tried again until it succeeds.
    TimerKeepsReviveRecords,
    /// The gRPC proxy in local mode builds the handle a changeInvisibleTime answers with as
    /// the remoting client does: the request's offset as the CK's start offset (and no
    /// commit-log field of its own), so an ack or a second change of it names the CK the
    /// change wrote.
    LocalChangeHandleFromRequest,
}

/// Static facts about a proposed fix.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct FixInfo {
    pub fix: Fix,
    /// Kebab-case name, as typed on the command line.
    pub name: &'static str,
    pub side: Side,
    /// The upstream class and method whose decision changes.
    pub changes: &'static str,
    /// The decision, develop versus proposed, in upstream's vocabulary.
    pub decision: &'static str,
    /// Why: the finding (docs/findings.md) it answers.
    pub why: &'static str,
    /// A later upstream change that seems to address the same window, by number and title,
    /// if any.
    pub upstream: &'static str,
}

impl Fix {
    /// Every proposed fix, in registry order.
    pub const ALL: [Fix; 33] = [
        Fix::BufferCommitSkipsPendingReset,
        Fix::MergeKeyWithSeparator,
        Fix::ClearPullOffsetOfResetQueues,
        Fix::ClearCacheWithoutLock,
        Fix::RefusedAckStoresItsCk,
        Fix::AckPutFailureAnswersError,
        Fix::CacheReviveFailureKeepsRecord,
        Fix::AckOriginFailureAnswersError,
        Fix::RePutFailureHoldsReviveOffset,
        Fix::ReviveEndTimeFollowsTimer,
        Fix::CacheCommitSkipsPendingReset,
        Fix::ResetTableSurvivesRestart,
        Fix::CacheDeleteMatchesRecord,
        Fix::ResetCleanupSkipsTakenQueues,
        Fix::ChangeSkipsDeleteOfSameKey,
        Fix::OrderInfoPersistsWithOffsets,
        Fix::DueBufferedAckGoesThroughTimer,
        Fix::AckWithoutOrderInfoCommitsInOrder,
        Fix::FlushedCkCarriesMergedAcks,
        Fix::InitOffsetPersistsAtOnce,
        Fix::OrderlyPopSkipsInflightThreshold,
        Fix::OrderlyBatchAckBelowMinCommits,
        Fix::ReviveOfDeletedMessageLowersInflight,
        Fix::ReentrantPopCountsOnlyItsBatch,
        Fix::DeadLetterAckedBeforeAnswer,
        Fix::FailedAckRestoresHandle,
        Fix::DueAckOriginGoesThroughTimer,
        Fix::FailedForwardRestoresHandle,
        Fix::FailedChangeRestoresHandle,
        Fix::CallHoldsHandleEntry,
        Fix::HandleKeyPerDelivery,
        Fix::TimerKeepsReviveRecords,
        Fix::LocalChangeHandleFromRequest,
    ];

    /// The registry entry for this fix.
    pub fn info(self) -> FixInfo {
        use Fix::*;
        let (name, side, changes, decision, why, upstream) = match self {
            BufferCommitSkipsPendingReset => (
                "buffer-commit-skips-pending-reset",
                Side::Broker,
                "PopBufferMergeService.commitOffset",
                "develop commits a CK's nextBeginOffset unconditionally; proposed: skip the commit while ConsumerOffsetManager.hasOffsetReset(topic, group, queueId), as AckMessageProcessor.ackOrderly already does (RIP-48)",
                "finding F1: a CK popped before a reset is committed over the pending reset; a flush and a crash before the next pop lose the reset",
                "",
            ),
            MergeKeyWithSeparator => (
                "merge-key-with-separator",
                Side::Broker,
                "PopBufferMergeService.addCk/addAk, PopReviveService.consumeReviveMessage",
                "develop keys CKs and ACKs by topic+cid+queueId+startOffset+popTime+brokerName concatenated; proposed: join the fields with a separator (KeyBuilder style), so (queue 1, offset 23) and (queue 12, offset 3) differ",
                "finding F2: two CKs with equal concatenations in one revive scan overwrite each other; one is never revived and its messages are lost",
                "",
            ),
            ClearPullOffsetOfResetQueues => (
                "clear-pull-offset-of-reset-queues",
                Side::Broker,
                "AdminBrokerProcessor.resetOffsetInner",
                "develop calls ConsumerOffsetManager.clearPullOffset(group, topic), dropping every queue's pull offset; proposed: remove only the pull offsets of the queues being reset",
                "finding F3: a reset of one queue makes KV-path pops of the other queues fall back to their commit offset and read in-flight and acked messages again",
                "",
            ),
            ClearCacheWithoutLock => (
                "clear-cache-without-lock",
                Side::Broker,
                "PopConsumerService.clearCache",
                "develop runs `while (tryLock) {}` then unlocks in `finally`, freeing the group@topic lock whoever holds it (the popAsync that called it, or another pop when the admin thread calls it); proposed: remove the records without touching the lock",
                "finding F4: a pop that consumes a reset frees its own lock; a second pop of the group reads the same offsets while the first is still reading, and two consumers hold one FIFO batch",
                "#10250 \"Remove lock when resetting offset in PopConsumerService\" (fixes #10181, 2026-04)",
            ),
            RefusedAckStoresItsCk => (
                "refused-ack-stores-its-ck",
                Side::Broker,
                "PopBufferMergeService.addAk",
                "develop refuses an ack within popCkStayBufferTimeOut + 1.5 s of the revive time (or after popCkStayBufferTime − 1.5 s) while the CK may still sit in the buffer unstored, and every ack for a just-offset wrapper (isJustOffset, every CK when buffer merge is off: addAk then refuses at its first guard), whose put at pop time may have failed; the refused ack goes to the revive log on its own; proposed: before refusing, store the buffered CK if it is not stored yet, with the acks already merged into it (as scan's flush would), so every ACK record follows its CK even when the scan would flush those acks late, past their deliver time, ahead of a CK still in a lagging timer; the wrapper still stays in the buffer until its normal flush, an ack merged into it meanwhile is stored at once, and if that put fails the ack is answered SYSTEM_ERROR instead of writing an ACK ahead of its CK",
                "finding F5: when the buffer scan runs late (a stalled scan thread: synchronous CK puts on a slow store, a pause), the CK is put after its deliver time and lands in the revive queue behind an ACK for it; consumeReviveMessage drops an ACK whose CK it has not read (`point == null`), and the acked message is revived",
                "",
            ),
            AckPutFailureAnswersError => (
                "ack-put-failure-answers-error",
                Side::Broker,
                "AckMessageProcessor.appendAck / handlePutMessageResult",
                "develop creates the response SUCCESS and handlePutMessageResult only logs a failed ACK put; proposed: answer SYSTEM_ERROR when the put failed, so the client knows the ack did not happen and can ack again",
                "finding F6: under store pressure an ACK put fails, the client is told SUCCESS, and the CK revives the acked message",
                "",
            ),
            CacheReviveFailureKeepsRecord => (
                "cache-revive-failure-keeps-record",
                Side::Broker,
                "PopConsumerCache.cleanupRecords",
                "develop hands an expired staged record to consumer.accept (PopConsumerService.revive), discards the returned future and clears the staging map; proposed: when the revive fails, write the record to the KV store, where PopConsumerService.revive retries it with its back-off",
                "finding F7: on the KV path with buffer merge, a record that expires in the cache and whose retry put fails is dropped: the message is never revived",
                "#10667 \"cleanupRecords clears staged checkpoints regardless of the revive result, losing messages when an asynchronous revive fails\" (open)",
            ),
            AckOriginFailureAnswersError => (
                "ack-origin-failure-answers-error",
                Side::Broker,
                "ChangeInvisibleTimeProcessor.ackOrigin",
                "develop only logs a failed put of the original receipt's ACK and completes the future true, so processRequestAsync answers SUCCESS with the new handle; proposed: complete false when the put failed, so the answer is SYSTEM_ERROR (as a failed put of the new CK already is) and the client keeps the original receipt",
                "finding F8: a changeInvisibleTime whose ackOrigin put failed is answered SUCCESS; the original CK, never acked, revives the message at the old deadline, before the new handle's",
                "",
            ),
            RePutFailureHoldsReviveOffset => (
                "re-put-failure-holds-revive-offset",
                Side::Broker,
                "PopReviveService.mergeAndRevive / rePutCK",
                "develop ignores the result of rePutCK's putMessage and commits the revive offset past the CK whatever it did; proposed: when the re-put failed, stop before that CK and commit only up to the CK before it, so the next round reads it again",
                "finding F9: a revive whose retry put fails and whose re-put fails too is committed past; the CK is in no queue and its message is never revived",
                "",
            ),
            ReviveEndTimeFollowsTimer => (
                "revive-end-time-follows-timer",
                Side::Broker,
                "PopReviveService.consumeReviveMessage",
                "develop raises endTime to the largest deliverTimeMs of any record read, including one stored directly (its deliver time had passed when it was written) while the timer wheel lags; proposed: raise it from a record only up to TimerMessageStore.getCurrReadTimeMs(), as far as the timer has delivered",
                "finding F10: with a lagging timer a directly stored record moves endTime past ACKs still waiting in the wheel; mergeAndRevive revives CKs whose ACKs were written in time",
                "",
            ),
            CacheCommitSkipsPendingReset => (
                "cache-commit-skips-pending-reset",
                Side::Broker,
                "PopConsumerCache.commitOffset",
                "develop commits the queue's smallest cached offset under tryLock(group, topic) whatever ConsumerOffsetManager holds (a smaller value is only logged), even over a pending reset; proposed: skip the queue while hasOffsetReset(topic, group, queueId), as AckMessageProcessor.ackOrderly does (the KV twin of buffer-commit-skips-pending-reset)",
                "finding F11: on the KV path with buffer merge, the cache's commit overwrites a pending reset in offsetTable; a flush and a crash before the next pop lose the reset",
                "",
            ),
            ResetTableSurvivesRestart => (
                "reset-table-survives-restart",
                Side::Broker,
                "ConsumerOffsetManager.encode/decode (resetOffsetTable)",
                "develop keeps resetOffsetTable in memory only (no getter, so consumerOffset.json never holds it; decode restores offsetTable alone); proposed: persist the pending resets with offsetTable and restore them on start, so hasOffsetReset still guards the reset after a restart",
                "finding F12: after a restart a pending reset is gone from resetOffsetTable while offsetTable holds it; a stale ackOrderly of a batch popped before the reset commits commitAndNext's result over it",
                "",
            ),
            CacheDeleteMatchesRecord => (
                "cache-delete-matches-record",
                Side::Broker,
                "PopConsumerCache.ConsumerRecords.delete",
                "develop removes whatever cached record sits at the ack's offset (recordTreeMap.remove(offset)), and PopConsumerService.ackAsync/changeInvisibilityDuration skip the RocksDB delete when the cache delete succeeded; proposed: remove it only if it is the same record (same popTime and invisible time), else report it not cached so the caller deletes the record by its store key",
                "finding F13: an older record of the offset already written to RocksDB and a newer one cached after a reset: a changeInvisibleTime or ack of the old receipt deletes the new cached record, and the old one revives at its old deadline",
                "",
            ),
            ResetCleanupSkipsTakenQueues => (
                "reset-cleanup-skips-taken-queues",
                Side::Broker,
                "AdminBrokerProcessor.resetOffsetInner",
                "develop assigns every queue's reset first, then visits each queue on the KV path (PopConsumerService.clearCache, ConsumerOffsetManager.clearPullOffset) whatever happened since; proposed: skip a queue whose reset is no longer pending (!hasOffsetReset(topic, group, queueId)): the pop that took it has already cleared the cache and committed its own pull offset",
                "finding F14: a pop takes the reset between the two loops, reads from the reset offset and commits its pull offset; the admin's later cleanup of that queue removes the pull offset, and the next pop reads again from the commit offset what the client already acked",
                "",
            ),
            ChangeSkipsDeleteOfSameKey => (
                "change-skips-delete-of-same-key",
                Side::Broker,
                "PopConsumerService.changeInvisibilityDuration",
                "develop writes the new record and then deletes the old one by its key (visibility time, group, topic, queue, offset); proposed: skip the delete when the old record's key equals the new one's (changedPopTime + changedInvisibleTime = popTime + invisibleTime), since the write has already replaced it",
                "finding F15: a changeInvisibleTime whose new deadline falls in the old deadline's millisecond writes the new record over the old key and then deletes it; nothing revives the message",
                "",
            ),
            OrderInfoPersistsWithOffsets => (
                "order-info-persists-with-offsets",
                Side::Broker,
                "BrokerController.initializeScheduledTasks (ConsumerOffsetManager.persist, ConsumerOrderInfoManager.persist)",
                "develop persists the offsetTable every 5 s and OrderInfo every 10 s in separate tasks, so a restart can restore an offsetTable newer than OrderInfo; proposed: the offsetTable's task persists OrderInfo too (OrderInfo's own task stays), so the two images on disk are always taken together",
                "finding F16: a reset taken by an orderly pop is on disk in the offsetTable but not in OrderInfo when the broker crashes; after the restart OrderInfo holds the batch popped before the reset, and a late ack of that batch passes ackOrderly and commitAndNext and commits past the reset's replay",
                "",
            ),
            DueBufferedAckGoesThroughTimer => (
                "due-buffered-ack-goes-through-timer",
                Side::Broker,
                "PopBufferMergeService.putAckToStore / putBatchAckToStore",
                "develop gives a buffered ACK the CK's reviveTime as deliverTimeMs whenever the scan puts it, so one put after the revive time is stored directly (HookUtils.transformTimerMessage); proposed: when reviveTime has passed and the timer has not delivered the CK's slot yet (TimerMessageStore.getCurrReadTimeMs() <= the slot of its deliver time reviveTime - ackTimeInterval, buildCkMsg), deliver it at now + timerPrecisionMs, so it waits in the wheel one slot or more behind its CK",
                "finding F17: a merged ack whose put failed at the scan's flush is put again by a later scan after the revive time; stored directly, it overtakes its CK still parked in a lagging timer, consumeReviveMessage drops it (`point == null`) and the acked message is revived",
                "",
            ),
            AckWithoutOrderInfoCommitsInOrder => (
                "ack-without-order-info-commits-in-order",
                Side::Broker,
                "ConsumerOrderInfoManager.commitAndNext (called by AckMessageProcessor.ackOrderly / ackOrderlyNew)",
                "develop answers queueOffset + 1 for any ack of a queue that has no OrderInfo (none restored after a crash, or cleaned up), so ackOrderly commits one past whatever offset was acked; proposed: without an OrderInfo answer queueOffset + 1 only when the acked offset is the commit offset ackOrderly has just read, else -2 (nothing to commit, the ack still answers SUCCESS)",
                "finding F18: a FIFO SimpleConsumer acks a later message of its batch while an earlier one failed and stays un-acked; a crash after the pop and before OrderInfo's next persist loses the batch's OrderInfo, and the ack of the later message commits past the un-acked one, which is never delivered again",
                "",
            ),
            FlushedCkCarriesMergedAcks => (
                "flushed-ck-carries-merged-acks",
                Side::Broker,
                "PopBufferMergeService.putCkToStore (buildCkMsg of the buffered CK)",
                "develop writes the buffered CK with bitMap 0 and leaves the acks merged into it to separate ACK records put after it (putAckToStore / putBatchAckToStore; a failed put waits for a later scan); proposed: build the CK with the wrapper's merged bits set in its bitMap (PopCheckPoint.bitMap, which reviveMsgFromCk already skips), so an ack merged before the flush holds however late its own ACK record is stored; the ACK records are still put as before",
                "finding F19: a scan that runs past the revive time stores the CK directly; a merged ack's put fails and waits for the next scan, and a reviver round in between reads the CK without that ack and revives the acked message (or, for a changeInvisibleTime's ackOrigin, revives it before the new receipt's deadline)",
                "",
            ),
            InitOffsetPersistsAtOnce => (
                "init-offset-persists-at-once",
                Side::Broker,
                "ConsumerOffsetManager.commitOffset / assignResetOffset (a group's first offset of a queue; getInitOffset's init commit is the usual one)",
                "develop puts a group's first offset of a queue (\"getPopOffset\" from getInitOffset, or a reset or an update that comes first) into offsetTable in memory only, and consumerOffset.json holds it from the next scheduled persist (10 s after start, then every flushConsumerOffsetInterval); proposed: persist the offsets as soon as offsetTable gains a group's first offset of a queue, so the group's start survives a crash",
                "finding F20: a crash before the group's first offset flush restores an offsetTable without the group; the restarted broker takes it for a new group, and with init mode MAX and its queue's first message deleted or out of the page cache it starts at max − 1, skipping what was stored since the group started and what it had popped and not yet acked",
                "",
            ),
            OrderlyPopSkipsInflightThreshold => (
                "orderly-pop-skips-inflight-threshold",
                Side::Broker,
                "PopMessageProcessor.popMsgFromQueue (isPopShouldStop for an orderly pop)",
                "develop tests isPopShouldStop (PopInflightMessageCounter above popInflightMessageThreshold) before getPopOffset and ConsumerOrderInfoManager.checkBlock, so the orderly pop's clearInFlightMessageNum after an unblocked checkBlock is never reached once an orderly batch left the count above the threshold; proposed: an orderly pop skips the threshold test (its queue is bounded by the OrderInfo block, and the pop that passes the block clears the count)",
                "finding F21: with enablePopMessageThreshold and a threshold below an orderly batch, a batch whose acks do not all reach ackOrderly (refused as expired by the proxy, or answered NO_MESSAGE after retention) leaves the count above the threshold, and every later pop skips the queue: it stops for good, until a restart or an admin reset",
                "",
            ),
            OrderlyBatchAckBelowMinCommits => (
                "orderly-batch-ack-below-min-commits",
                Side::Broker,
                "AckMessageProcessor.appendAck / appendAckNew (a batch ack's offsets below the min offset)",
                "develop skips every offset of a batch ack outside the queue's [min, max] and still answers SUCCESS, so an orderly ack of a message retention deleted never reaches ackOrderly (ackOrderlyNew) and its OrderInfo bit stays unset; proposed: an orderly offset below the min offset goes to ackOrderly like any other (commitAndNext already ignores an offset that is not in the batch), only offsets above the max are skipped",
                "finding F22: retention deletes the head of a FIFO batch in flight; the proxy's batch ack of the head is answered SUCCESS but skipped, so the acks of later messages commit only the head's offset, and once the batch lapses the offset correction re-reads from the new min and hands the acked messages out again",
                "",
            ),
            ReviveOfDeletedMessageLowersInflight => (
                "revive-of-deleted-message-lowers-inflight",
                Side::Broker,
                "PopReviveService.reviveMsgFromCk (a message getBizMessage no longer finds, needRetry false)",
                "develop counts a popped message in PopInflightMessageCounter until an ack is appended (AckMessageProcessor) or reviveRetry puts its retry copy; a message retention deleted meanwhile gets neither (its ack is answered NO_MESSAGE below the min offset, and reviveMsgFromCk finds no biz message and goes on), so it stays counted until a restart; proposed: reviveMsgFromCk decrements the count for a message it finds deleted, as reviveRetry does for one it revives",
                "finding F23: with enablePopMessageThreshold, every message retention deletes while popped and not acked leaks one from its queue's in-flight count; once the leaks reach popInflightMessageThreshold, isPopShouldStop skips the queue for good (until a restart), and a non-FIFO group that holds nothing in flight never gets the messages stored there after",
                "",
            ),
            ReentrantPopCountsOnlyItsBatch => (
                "reentrant-pop-counts-only-its-batch",
                Side::Broker,
                "ConsumerOrderInfoManager.OrderInfo.mergeOffsetConsumedCount (a pop with the previous OrderInfo's attemptId)",
                "develop gives a pop with the previous OrderInfo's attemptId the previous offsetConsumedCount whole, although its batch may be new (the old one acked and committed); update then builds the queue's count (buildQueueIdOrderCountInfo) as the minimum over those stale entries whenever there are as many of them as offsets in the batch, and a message with no count of its own takes the queue's count as its reconsumeTimes (MQClientAPIImpl.processPopResponse); proposed: keep only the counts of the offsets the batch reads again",
                "finding F24: a gRPC FIFO process queue keeps its attemptId after a receive that brought no message (rocketmq-clients ProcessQueueImpl), so once the proxy dead-lettered a whole batch for it, its next batch is popped as a reentrant retry and inherits the dead-lettered batch's counts: a message never handed out arrives with reconsumeTimes 1, and with retryMaxTimes 0 the proxy's filter dead-letters it unseen (and again on each reentrant re-read that beats the proxy's ack)",
                "",
            ),
            DeadLetterAckedBeforeAnswer => (
                "dead-letter-acked-before-answer",
                Side::Client,
                "proxy ConsumerProcessor.popMessage (the filter's TO_DLQ branch)",
                "develop starts forwardMessageToDeadLetterQueue for each message PopMessageResultFilterImpl dead-letters and answers the receive without waiting; ProducerProcessor.forwardMessageToDeadLetterQueue acks the message only once the send-back succeeded; proposed: complete the pop result only once every such forward and its ack have finished",
                "finding F25: a FIFO receive whose batch the proxy dead-lettered whole is answered empty before the proxy's ack reaches the broker; a client that keeps its attemptId after an empty answer (rocketmq-clients #1322) receives again at once, the broker's reentrant pop (OrderInfo.needBlock) reads the same batch with a new popTime, which makes the ack stale (commitAndNext −2, still answered SUCCESS), and the filter dead-letters it again: the group's DLQ gets a copy per round until an ack wins the race",
                "",
            ),
            FailedAckRestoresHandle => (
                "failed-ack-restores-handle",
                Side::Client,
                "proxy AckMessageActivity.processAckMessage / ackMessageInBatch (getHandleString → ReceiptHandleGroup.remove)",
                "develop takes the message's entry out of the ReceiptHandleGroup before the ack (getHandleString: remove, needRemove) and leaves it out whatever the ack's result, so the renewed handle is forgotten and the client's retry (rocketmq-clients ProcessQueueImpl.ackMessageLater, with the handle it received) names the original; proposed: when the ack is not OK, put the entry back (ReceiptHandleGroup.put), so the retry acks the latest handle and the renewals go on",
                "finding F26: a push consumer's ack through the proxy fails after the proxy renewed the message's handle (a lost request, or a refused ACK put); the retry acks the client's original handle, which the renewal's changeInvisibleTime already acked, and is answered OK; the renewal's CK is never acked and revives the message the client was told was acked",
                "",
            ),
            DueAckOriginGoesThroughTimer => (
                "due-ack-origin-goes-through-timer",
                Side::Broker,
                "ChangeInvisibleTimeProcessor.ackOrigin (its ACK's deliverTimeMs)",
                "develop gives the ACK of the original receipt the original popTime + invisibleTime as deliverTimeMs, so a changeInvisibleTime that reaches the broker after that time (the proxy checked the handle's expiry before the call) writes an ACK that is already due and stored directly (HookUtils.transformTimerMessage); proposed: when that time has passed and the timer has not delivered the original CK's slot yet (TimerMessageStore.getCurrReadTimeMs() <= the slot of its deliver time reviveTime - ackTimeInterval), deliver it at now + timerPrecisionMs, so it waits in the wheel one slot or more behind its CK",
                "finding F27: the proxy's renewal (or a client's changeInvisibleDuration) of a handle about to expire passes the proxy's expiry check and reaches the broker just after the deadline; ackOrigin's ACK is stored directly and overtakes the original CK still in a lagging timer, consumeReviveMessage drops it (`point == null`), and the original CK revives the message the client holds under the new handle, and acks",
                "",
            ),
            FailedForwardRestoresHandle => (
                "failed-forward-restores-handle",
                Side::Client,
                "proxy ForwardMessageToDLQActivity.forwardMessageToDeadLetterQueue (getHandleString → ReceiptHandleGroup.remove)",
                "develop takes the message's entry out of the ReceiptHandleGroup before the forward and leaves it out whatever the forward's result, so the renewed handle is forgotten and the client's retry (rocketmq-clients ProcessQueueImpl.forwardToDeadLetterQueue, every second on any failure, with the handle it received) names the original; ProducerProcessor.forwardMessageToDeadLetterQueue checks no expiry before the send-back, and its ack after it (not waited for) refuses the expired original (ConsumerProcessor.ackMessage, validateReceiptHandle); proposed: when the forward is not OK, put the entry back (ReceiptHandleGroup.put), so the retry forwards and acks the latest handle and the renewals go on",
                "finding F28: a FIFO push consumer's forward to the DLQ through the proxy fails after the proxy renewed the message's handle, and the retry comes after the original handle expired; the send-back stores the DLQ copy and the client is told OK, the ack that follows is refused by the proxy itself, the renewed handle lapses, and the queue hands the dead-lettered message out again: consumed again and dead-lettered again",
                "",
            ),
            FailedChangeRestoresHandle => (
                "failed-change-restores-handle",
                Side::Client,
                "proxy ChangeInvisibleDurationActivity.changeInvisibleDuration (getHandleString → ReceiptHandleGroup.remove)",
                "develop takes the message's entry out of the ReceiptHandleGroup before the change and leaves it out whatever the change's result, so the renewed handle is forgotten and the client's retry (rocketmq-clients ProcessQueueImpl.changeInvisibleDuration, every second until OK or INVALID_RECEIPT_HANDLE, with the handle it received) changes the original, whose CK the renewal's ackOrigin already acked, while the renewed CK is left to revive; proposed: when the change is not OK (and not INVALID_RECEIPT_HANDLE), put the entry back (ReceiptHandleGroup.put), so the retry changes the latest handle and the renewals go on",
                "finding F29: a push consumer's nack (changeInvisibleDuration after a failed listener) through the proxy fails after the proxy renewed the message's handle; the retry changes the client's original and is answered OK, a CK for the requested delay is written and revives the message, and the renewal's CK, never acked, revives it a second time: two retry copies for one nack",
                "",
            ),
            CallHoldsHandleEntry => (
                "call-holds-handle-entry",
                Side::Client,
                "proxy ReceiptHandleProcessor.removeReceiptHandle as AckMessageActivity, ChangeInvisibleDurationActivity and ForwardMessageToDLQActivity call it (getHandleString → ReceiptHandleGroup.remove)",
                "develop takes the message's entry out of the ReceiptHandleGroup (remove, needRemove) before the call to the broker; proposed: hold the entry's lock (HandleData.lock, as a renewal does) while the call runs and remove the entry only when it succeeded, leaving it, unlocked, when it failed",
                "findings F26, F28 and F29, and the limit of their fixes: the restore fixes put a failed call's entry back only once its answer came, so a client retry that overtook the call (sent after the client's deadline, while the proxy's call still waited for the broker) found no entry and named the original (proxy-random 6912, 47960); holding the entry makes that retry wait for the first call's answer and then name the latest handle",
                "",
            ),
            HandleKeyPerDelivery => (
                "handle-key-per-delivery",
                Side::Client,
                "proxy ReceiptHandleGroup.HandleKey (equals, hashCode), as ReceiptHandleGroup.put and remove use it",
                "develop keys a push consumer's handle entry by broker, queue and offset only (#6755, for reentrant orderly consumption), so ReceiptHandleGroup.put of a second delivery of a non-orderly copy the client still consumes replaces the first delivery's handle, renewed or not, and the first listener's ack (AckMessageActivity.getHandleString → remove) goes out with the second delivery's handle; proposed: for a non-orderly handle, also compare the original handle (its popTime), so each delivery keeps its own entry; orderly handles keep the dedup",
                "finding F30: after a crash replay or a reset hands a push consumer a copy it is still consuming, the first listener's ack is sent with the new copy's handle and answered OK; the first delivery's CK (or the proxy's renewal of it), which nothing renews or acks any more, revives the message the client was told was acked",
                "",
            ),
            TimerKeepsReviveRecords => (
                "timer-keeps-revive-records",
                Side::Broker,
                "TimerMessageStore.TimerDequeuePutMessageService.run (a PUT_NEED_RETRY answer)",
                "develop, with timerEnableRetryUntilSuccess off (the default since #8980), gives a timer record up after three failed dequeue puts 500 ms apart (OS_PAGE_CACHE_BUSY, SERVICE_NOT_AVAILABLE, a flush or slave timeout); proposed: keep retrying a record whose real topic is the revive topic (rmq_sys_REVIVE_LOG_*), as timerEnableRetryUntilSuccess does for every record; the wheel waits on the slot meanwhile (checkDequeueLatch), so the revive is late, never lost",
                "finding F32: a store that refuses puts for about a second as the timer dequeues a POP record loses the record: an ACK record given up never cancels its CK, which revives the message the client was told was acked; a CK given up is never revived, and its message, popped and not acked, is never delivered again (the offset moved past it at the pop)",
                "",
            ),
            LocalChangeHandleFromRequest => (
                "local-change-handle-from-request",
                Side::Client,
                "proxy LocalMessageService.changeInvisibleTime (the AckResult's extraInfo)",
                "develop's local mode (the proxy inside the broker, proxyMode local) builds the new handle from the old one: the old handle's startOffset (the popped batch's first offset in the queue) and no commitLogOffset, so its ninth field is 0 and ConsumerProcessor.createHandle appends the real one as a tenth; ChangeInvisibleTimeProcessor wrote the new CK with the message's own offset as its startOffset, so an ack (AckMessageProcessor: the CK's startOffset from the handle's first field) or a second change's ackOrigin of a message past the batch's first names a CK that does not exist; proposed: build it as MQClientAPIImpl.changeInvisibleTimeAsync does in cluster mode (ExtraInfoUtil.buildExtraInfo with the request's offset, then the offset)",
                "finding F33: through a proxy in local mode, a message after the first of a popped batch whose invisible time was changed (a SimpleConsumer's changeInvisibleDuration, or the proxy's renewal of a push consumer's long listener) and then acked with the new handle is answered OK and comes back: the ACK and the CK the change wrote have different merge keys",
                "",
            ),
        };
        FixInfo {
            fix: self,
            name,
            side,
            changes,
            decision,
            why,
            upstream,
        }
    }

    /// The kebab-case name.
    pub fn name(self) -> &'static str {
        self.info().name
    }

    /// Every valid name, comma-separated, for error messages.
    pub fn valid_names() -> String {
        Fix::ALL
            .iter()
            .map(|f| f.name())
            .collect::<Vec<_>>()
            .join(", ")
    }

    /// A `--fix` argument: one name, or `all` for every proposed fix.
    pub fn parse_list(s: &str) -> Result<Vec<Fix>, UnknownName> {
        if s == "all" {
            return Ok(Fix::ALL.to_vec());
        }
        s.parse().map(|f| vec![f]).map_err(|mut e: UnknownName| {
            e.valid.push_str(", all");
            e
        })
    }
}

impl fmt::Display for Fix {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Fix {
    type Err = UnknownName;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Fix::ALL
            .into_iter()
            .find(|f| f.name() == s)
            .ok_or_else(|| UnknownName {
                what: "proposed fix",
                given: s.to_owned(),
                valid: Fix::valid_names(),
            })
    }
}

/// An upstream release profile: the behaviours it carries and what it can be configured with.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum Release {
    #[serde(rename = "5.3.0")]
    V5_3_0,
    #[serde(rename = "5.3.1")]
    V5_3_1,
    #[serde(rename = "5.3.2")]
    V5_3_2,
    #[serde(rename = "5.3.3")]
    V5_3_3,
    /// Upstream develop with every fix in.
    #[serde(rename = "latest")]
    Latest,
}

impl Release {
    pub const ALL: [Release; 5] = [
        Release::V5_3_0,
        Release::V5_3_1,
        Release::V5_3_2,
        Release::V5_3_3,
        Release::Latest,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Release::V5_3_0 => "5.3.0",
            Release::V5_3_1 => "5.3.1",
            Release::V5_3_2 => "5.3.2",
            Release::V5_3_3 => "5.3.3",
            Release::Latest => "latest",
        }
    }

    /// The historical behaviours present in this release.
    pub fn behaviours(self) -> Behaviours {
        Behaviour::ALL
            .into_iter()
            .filter(|b| b.info().releases.contains(&self))
            .collect()
    }

    /// The RIP-73 KV pop path (`popConsumerKVServiceEnable`) first shipped in 5.3.2; an older
    /// broker ignores the setting and pops on the classic path.
    pub fn has_kv_pop_path(self) -> bool {
        self >= Release::V5_3_2
    }
}

impl fmt::Display for Release {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Release {
    type Err = UnknownName;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Release::ALL
            .into_iter()
            .find(|r| r.name() == s)
            .ok_or_else(|| UnknownName {
                what: "release",
                given: s.to_owned(),
                valid: Release::ALL
                    .iter()
                    .map(|r| r.name())
                    .collect::<Vec<_>>()
                    .join(", "),
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_are_unique() {
        let mut seen = BTreeSet::new();
        for b in Behaviour::ALL {
            assert!(seen.insert(b.name()), "duplicate name {}", b.name());
            assert_eq!(b.name().parse::<Behaviour>().unwrap(), b);
            assert!(!b.info().releases.is_empty());
            assert!(
                !b.info().releases.contains(&Release::Latest),
                "latest has every fix"
            );
        }
    }

    #[test]
    fn fix_names_round_trip_and_all_means_every_fix() {
        let mut seen = BTreeSet::new();
        for f in Fix::ALL {
            assert!(seen.insert(f.name()), "duplicate name {}", f.name());
            assert_eq!(f.name().parse::<Fix>().unwrap(), f);
            assert!(Behaviour::ALL.iter().all(|b| b.name() != f.name()));
        }
        assert_eq!(Fix::parse_list("all").unwrap(), Fix::ALL.to_vec());
        let err = Fix::parse_list("deliver-once").unwrap_err().to_string();
        assert!(err.contains("proposed fix") && err.contains("all"), "{err}");
    }

    #[test]
    fn unknown_name_lists_valid_ones() {
        let err = "deliver-twice".parse::<Behaviour>().unwrap_err();
        assert!(err.to_string().contains("buffered-ack-missing-broker-name"));
        let err = "5.4.0".parse::<Release>().unwrap_err();
        assert!(err.to_string().contains("5.3.2"));
    }

    #[test]
    fn release_profiles_follow_upstream_history() {
        let r531 = Release::V5_3_1.behaviours();
        assert!(r531.is_on(Behaviour::BufferedAckMissingBrokerName));
        assert!(r531.is_on(Behaviour::ReviveNoBlankBrokerNameFallback));
        assert!(!r531.is_on(Behaviour::ReviveMergeKeyWithoutBrokerName));
        let r532 = Release::V5_3_2.behaviours();
        assert!(r532.is_on(Behaviour::ResetCommitsPullOffset));
        assert!(!r532.is_on(Behaviour::BufferedAckMissingBrokerName));
        assert!(!Release::V5_3_3
            .behaviours()
            .is_on(Behaviour::ResetCommitsPullOffset));
        assert!(Release::Latest.behaviours().is_empty());
        let r532 = Release::V5_3_2.behaviours();
        for b in [
            Behaviour::KvFifoNoCommitAtPop,
            Behaviour::KvNoInitOffset,
            Behaviour::KvReadIgnoresReset,
        ] {
            assert!(r532.is_on(b), "{b}");
            assert!(!Release::V5_3_3.behaviours().is_on(b), "{b}");
        }
        assert!(Release::V5_3_0
            .behaviours()
            .is_on(Behaviour::InitMinNoCommit));
        assert!(!Release::V5_3_1
            .behaviours()
            .is_on(Behaviour::InitMinNoCommit));
        assert!(Release::V5_3_1
            .behaviours()
            .is_on(Behaviour::UpdateOffsetNullAnswersSystemError));
        assert!(!r532.is_on(Behaviour::UpdateOffsetNullAnswersSystemError));
        assert!(!Release::V5_3_1.has_kv_pop_path());
        assert!(Release::V5_3_2.has_kv_pop_path());
    }
}
