//! The clients' decisions as pure functions: no madsim, no I/O, no clock of their own (every
//! input that varies, the time included, is an argument). The async client nodes call these
//! and only do the I/O the answer asks for; the unit tests below pin each one to the
//! upstream code it follows.
//!
//! Remoting push consumer: `DefaultMQPushConsumerImpl` and
//! `ConsumeMessagePopConcurrentlyService` (apache/rocketmq, `client/`). gRPC clients:
//! `PushConsumerImpl`, `ProcessQueueImpl`, `FifoConsumeService`, `StandardConsumeService`,
//! `SimpleConsumerImpl` and the retry policies (apache/rocketmq-clients, `java/client/`).

use broker_core::{ExtraInfo, Millis};
use reports::history::ConsumeOutcome;

// ---------------------------------------------------------------------------------------
// The remoting push consumer

/// `DefaultMQPushConsumerImpl.MIN_POP_INVISIBLE_TIME`.
pub const MIN_POP_INVISIBLE_TIME: Millis = 5_000;
/// `DefaultMQPushConsumerImpl.MAX_POP_INVISIBLE_TIME`.
pub const MAX_POP_INVISIBLE_TIME: Millis = 300_000;
/// What `popMessage` pops with instead of an out-of-range `popInvisibleTime`.
pub const DEFAULT_POP_INVISIBLE_TIME: Millis = 60_000;
/// `DefaultMQPushConsumerImpl.BROKER_SUSPEND_MAX_TIME_MILLIS`: the pop's `pollTime`.
pub const BROKER_SUSPEND_MAX_TIME_MILLIS: Millis = 15_000;
/// `PullAPIWrapper.popAsync`: a polling pop's RPC timeout is `pollTime` plus this ("fix the
/// too earlier timeout of client when long polling").
pub const POLL_TIMEOUT_SLACK: Millis = 10_000;
/// `DefaultMQPushConsumerImpl.popDelayLevel`, in seconds.
pub const POP_DELAY_LEVEL: [u64; 16] = [
    10, 30, 60, 120, 180, 240, 300, 360, 420, 480, 540, 600, 1200, 1800, 3600, 7200,
];

/// `DefaultMQPushConsumerImpl.popMessage`: a `popInvisibleTime` outside
/// [[`MIN_POP_INVISIBLE_TIME`], [`MAX_POP_INVISIBLE_TIME`]] is replaced by 60 s.
pub fn remoting_pop_invisible_time(configured: Millis) -> Millis {
    if (MIN_POP_INVISIBLE_TIME..=MAX_POP_INVISIBLE_TIME).contains(&configured) {
        configured
    } else {
        DEFAULT_POP_INVISIBLE_TIME
    }
}

/// `PullAPIWrapper.popAsync` with `poll = true`: the RPC waits `pollTime + 10 s`.
pub fn polling_pop_timeout(poll_time: Millis) -> Millis {
    poll_time + POLL_TIMEOUT_SLACK
}

/// `ConsumeRequest.isPopTimeout`: a delivery whose receipt says nothing usable counts as
/// timed out, else it is once `now − popTime ≥ invisibleTime`. `receipt` is the parsed
/// `POP_CK` (`None`: missing or malformed). Upstream also treats `popTime ≤ 0` as unusable;
/// its popTime is epoch time and never 0 for a real receipt, while the model's virtual
/// clock starts at 0, so a parsed receipt's popTime is always usable here.
pub fn is_pop_timeout(now: Millis, receipt: Option<&ExtraInfo>) -> bool {
    match receipt {
        Some(info) if info.invisible_time > 0 => {
            now.saturating_sub(info.pop_time) >= info.invisible_time
        }
        _ => true,
    }
}

/// `DefaultMQPushConsumerImpl.getMaxReconsumeTimes`: −1 means 16.
pub fn remoting_max_reconsume_times(configured: i32) -> u32 {
    if configured < 0 {
        16
    } else {
        configured as u32
    }
}

/// `DefaultMQPushConsumerImpl.processPopResult` (#8333): a delivery whose reconsumeTimes is
/// past the max is acked without running the listener. `filter_on` is false under the
/// historical behaviour `pop-timeout-skips-max-reconsume` (5.3.0 had no such filter).
pub fn skip_on_receipt(reconsume_times: u32, max: u32, filter_on: bool) -> bool {
    filter_on && reconsume_times > max
}

/// What `processConsumeResult` does with a failed message.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FailureAction {
    /// `changePopInvisibleTimeAsync` to this many milliseconds.
    ChangeInvisibleTime(Millis),
    /// `ackAsync`: drop a message that has been failing for too long.
    Ack,
    /// Nothing is sent: upstream indexes `popDelayLevel[-1]` and the exception ends the
    /// request; the message comes back when its invisible time ends.
    Nothing,
}

/// `processConsumeResult` for a failure: at or past the max, `checkNeedAckOrDelay`; below
/// it, `changePopInvisibleTime` with the listener's `delayLevelWhenNextConsume` (the model's
/// listener leaves it at 0). `age` is `now − bornTimestamp`.
pub fn on_failure(reconsume_times: u32, max: u32, age: Millis) -> FailureAction {
    if reconsume_times >= max {
        check_need_ack_or_delay(age, reconsume_times)
    } else {
        FailureAction::ChangeInvisibleTime(change_pop_invisible_secs(reconsume_times, 0) * 1_000)
    }
}

/// `checkNeedAckOrDelay`: ack a message older than twice the last delay level; else delay
/// it by the level one above the largest its age has passed.
pub fn check_need_ack_or_delay(age: Millis, reconsume_times: u32) -> FailureAction {
    let last = POP_DELAY_LEVEL[POP_DELAY_LEVEL.len() - 1];
    if age > last * 1_000 * 2 {
        return FailureAction::Ack;
    }
    match delay_level_for_age(age) {
        Some(level) => FailureAction::ChangeInvisibleTime(
            change_pop_invisible_secs(reconsume_times, level) * 1_000,
        ),
        None => FailureAction::Nothing,
    }
}

/// The loop of `checkNeedAckOrDelay`: from the top, the first level whose delay the age has
/// reached, plus one. `None` when the age is below the first level: the loop ends at −1,
/// which upstream then uses as an index.
pub fn delay_level_for_age(age: Millis) -> Option<usize> {
    (0..POP_DELAY_LEVEL.len())
        .rev()
        .find(|&level| age >= POP_DELAY_LEVEL[level] * 1_000)
        .map(|level| level + 1)
}

/// `changePopInvisibleTime(msg, group, delayLevel)`: level 0 means the message's
/// reconsumeTimes; a level past the table means its last entry. Seconds.
pub fn change_pop_invisible_secs(reconsume_times: u32, delay_level: usize) -> u64 {
    let level = if delay_level == 0 {
        reconsume_times as usize
    } else {
        delay_level
    };
    POP_DELAY_LEVEL
        .get(level)
        .copied()
        .unwrap_or(POP_DELAY_LEVEL[POP_DELAY_LEVEL.len() - 1])
}

// ---------------------------------------------------------------------------------------
// The gRPC clients

/// `ClientConfigurationBuilder.requestTimeout`.
pub const GRPC_REQUEST_TIMEOUT: Millis = 3_000;
/// `ProcessQueueImpl.RECEIVING_FAILURE_BACKOFF_DELAY`.
pub const RECEIVING_FAILURE_BACKOFF_DELAY: Millis = 1_000;
/// `ProcessQueueImpl.RECEIVING_FLOW_CONTROL_BACKOFF_DELAY` (a `TooManyRequestsException`).
pub const RECEIVING_FLOW_CONTROL_BACKOFF_DELAY: Millis = 20;
/// `ProcessQueueImpl.RECEIVING_BACKOFF_DELAY_WHEN_CACHE_IS_FULL`.
pub const RECEIVING_BACKOFF_DELAY_WHEN_CACHE_IS_FULL: Millis = 1_000;
/// `ProcessQueueImpl.ACK_MESSAGE_FAILURE_BACKOFF_DELAY` (also for changeInvisibleDuration
/// and the FIFO DLQ forward).
pub const ACK_MESSAGE_FAILURE_BACKOFF_DELAY: Millis = 1_000;
/// `PushConsumerBuilderImpl.maxCacheMessageCount`.
pub const MAX_CACHE_MESSAGE_COUNT: u32 = 4_096;
/// `PushConsumerBuilderImpl.consumptionThreadCount`.
pub const CONSUMPTION_THREAD_COUNT: usize = 20;
/// `SubscriptionGroupConfig.retryMaxTimes` default.
pub const RETRY_MAX_TIMES: u32 = 16;
/// `CustomizedRetryPolicy.next`, the group retry policy the proxy sends the client as its
/// backoff (`GrpcClientSettingsManager.mergeSubscriptionData`), in milliseconds.
pub const CUSTOMIZED_RETRY_NEXT: [Millis; 18] = [
    1_000, 5_000, 10_000, 30_000, 60_000, 120_000, 180_000, 240_000, 300_000, 360_000, 420_000,
    480_000, 540_000, 600_000, 1_200_000, 1_800_000, 3_600_000, 7_200_000,
];

/// `GrpcClientSettingsManager.mergeSubscriptionData`: the settings' `maxAttempts` is the
/// group's `retryMaxTimes` + 1 (−1: the default 16).
pub fn max_attempts(retry_max_times: i32) -> u32 {
    let retry = if retry_max_times < 0 {
        RETRY_MAX_TIMES
    } else {
        retry_max_times as u32
    };
    retry + 1
}

/// `GrpcConverter.buildMessage`: a message's first delivery attempt is its reconsumeTimes
/// + 1.
pub fn delivery_attempt(reconsume_times: u32) -> u32 {
    reconsume_times + 1
}

/// `CustomizedBackoffRetryPolicy.getNextAttemptDelay(attempt)` over the proxy's durations:
/// the `attempt`-th entry (1-based), the last for an attempt past the table.
pub fn next_attempt_delay(attempt: u32) -> Millis {
    let i = (attempt.max(1) as usize - 1).min(CUSTOMIZED_RETRY_NEXT.len() - 1);
    CUSTOMIZED_RETRY_NEXT[i]
}

/// What `ProcessQueueImpl.eraseFifoMessage` does after a listener run.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FifoNext {
    /// Consume the same message again after this delay, with the attempt counted up.
    RetryLocally(Millis),
    /// Ack it (retried until it succeeds).
    Ack,
    /// Out of attempts: forward it to the DLQ (retried until it succeeds).
    ForwardToDlq,
}

/// `eraseFifoMessage`: a failure with attempts left is retried locally after the retry
/// policy's delay; a success is acked; a failure at `maxAttempts` goes to the DLQ.
pub fn erase_fifo(outcome: ConsumeOutcome, attempt: u32, max_attempts: u32) -> FifoNext {
    match outcome {
        ConsumeOutcome::Failure if attempt < max_attempts => {
            FifoNext::RetryLocally(next_attempt_delay(attempt))
        }
        ConsumeOutcome::Success => FifoNext::Ack,
        ConsumeOutcome::Failure => FifoNext::ForwardToDlq,
    }
}

/// What `ProcessQueueImpl.eraseMessage` (the non-FIFO path) does after a listener run.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StandardNext {
    Ack,
    /// `nackMessage`: changeInvisibleDuration to the retry policy's delay for the delivery
    /// attempt.
    Nack(Millis),
}

/// `eraseMessage`: ack a success, nack a failure.
pub fn erase_standard(outcome: ConsumeOutcome, attempt: u32) -> StandardNext {
    match outcome {
        ConsumeOutcome::Success => StandardNext::Ack,
        ConsumeOutcome::Failure => StandardNext::Nack(next_attempt_delay(attempt)),
    }
}

/// `ConsumerImpl.receiveMessage`: a receive's deadline is the await (long-polling) duration
/// plus the request timeout.
pub fn receive_timeout(await_duration: Millis) -> Millis {
    await_duration + GRPC_REQUEST_TIMEOUT
}

/// `PushConsumerImpl.cacheMessageCountThresholdPerQueue`: the cache shared out over the
/// process queues, at least 1.
pub fn cache_threshold_per_queue(queues: usize) -> u32 {
    (MAX_CACHE_MESSAGE_COUNT / queues.max(1) as u32).max(1)
}

/// `ProcessQueueImpl.getReceptionBatchSize`: what is left of the cache, at least 1, at most
/// the settings' receive batch size.
pub fn reception_batch_size(threshold: u32, cached: u32, receive_batch_size: u32) -> u32 {
    threshold
        .saturating_sub(cached)
        .max(1)
        .min(receive_batch_size)
}

/// Whether the next receive of a process queue keeps this receive's attemptId
/// (rocketmq-clients at the snapshot, 6cc37178, 2025-09): `onReceiveMessageResult` receives
/// again with a new id (`receiveMessage()` → `generateAttemptId`) after every answer, with
/// messages or without (`StatusChecker` takes `MESSAGE_NOT_FOUND` for an empty answer); of
/// the failures only `DEADLINE_EXCEEDED` keeps the id (`receiveMessageImmediately`'s
/// `onFailure`), so a FIFO receive retried after its answer was lost stays reentrant.
/// `until_messages`: rocketmq-clients #1322 (2026-08, after the snapshot), which keeps the id
/// until a receive brings messages, whatever else ends it.
pub fn keep_attempt_id(
    deadline_exceeded: bool,
    received_messages: bool,
    until_messages: bool,
) -> bool {
    if until_messages {
        !received_messages
    } else {
        deadline_exceeded
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn receipt(pop_time: Millis, invisible_time: Millis) -> ExtraInfo {
        ExtraInfo {
            ck_queue_offset: 0,
            pop_time,
            invisible_time,
            revive_qid: 0,
            topic_type: 0,
            broker_name: "broker-a".into(),
            queue_id: 0,
            queue_offset: 0,
            commit_log_offset: None,
        }
    }

    #[test]
    fn invisible_time_outside_5s_to_300s_is_replaced_by_60s() {
        assert_eq!(remoting_pop_invisible_time(4_999), 60_000);
        assert_eq!(remoting_pop_invisible_time(5_000), 5_000);
        assert_eq!(remoting_pop_invisible_time(300_000), 300_000);
        assert_eq!(remoting_pop_invisible_time(300_001), 60_000);
        assert_eq!(polling_pop_timeout(BROKER_SUSPEND_MAX_TIME_MILLIS), 25_000);
    }

    #[test]
    fn pop_timeout_is_popped_plus_invisible_reached() {
        let r = receipt(1_000, 10_000);
        assert!(!is_pop_timeout(10_999, Some(&r)));
        assert!(is_pop_timeout(11_000, Some(&r)), "≥, not >");
        assert!(
            !is_pop_timeout(5, Some(&receipt(0, 10))),
            "popTime 0 is time 0"
        );
        assert!(is_pop_timeout(0, None), "no receipt: timed out");
        assert!(is_pop_timeout(0, Some(&receipt(0, 0))), "invisibleTime 0");
    }

    #[test]
    fn max_reconsume_times_and_the_receipt_filter() {
        assert_eq!(remoting_max_reconsume_times(-1), 16);
        assert_eq!(remoting_max_reconsume_times(0), 0);
        assert_eq!(remoting_max_reconsume_times(3), 3);
        assert!(
            !skip_on_receipt(3, 3, true),
            "at the max: consumed once more"
        );
        assert!(skip_on_receipt(4, 3, true), "past it: acked unconsumed");
        assert!(!skip_on_receipt(4, 3, false), "5.3.0: no filter");
    }

    #[test]
    fn delay_levels_follow_check_need_ack_or_delay() {
        assert_eq!(delay_level_for_age(9_999), None, "below 10 s: index -1");
        assert_eq!(delay_level_for_age(10_000), Some(1));
        assert_eq!(delay_level_for_age(59_999), Some(2));
        assert_eq!(delay_level_for_age(7_200_000), Some(16));
        assert_eq!(change_pop_invisible_secs(0, 0), 10);
        assert_eq!(
            change_pop_invisible_secs(2, 0),
            60,
            "level 0 uses reconsumeTimes"
        );
        assert_eq!(change_pop_invisible_secs(2, 1), 30);
        assert_eq!(
            change_pop_invisible_secs(0, 16),
            7_200,
            "past the table: the last"
        );
        assert_eq!(change_pop_invisible_secs(40, 0), 7_200);
        assert_eq!(
            check_need_ack_or_delay(14_400_001, 16),
            FailureAction::Ack,
            "older than twice the last level"
        );
        assert_eq!(
            check_need_ack_or_delay(14_400_000, 16),
            FailureAction::ChangeInvisibleTime(7_200_000)
        );
        assert_eq!(check_need_ack_or_delay(5_000, 16), FailureAction::Nothing);
        assert_eq!(
            on_failure(1, 16, 0),
            FailureAction::ChangeInvisibleTime(30_000)
        );
        assert_eq!(
            on_failure(16, 16, 40_000),
            FailureAction::ChangeInvisibleTime(60_000),
            "at the max: by age (30 s passed: level 2)"
        );
    }

    #[test]
    fn grpc_max_attempts_and_backoff() {
        assert_eq!(max_attempts(-1), 17);
        assert_eq!(max_attempts(0), 1);
        assert_eq!(max_attempts(2), 3);
        assert_eq!(delivery_attempt(0), 1);
        assert_eq!(next_attempt_delay(1), 1_000);
        assert_eq!(next_attempt_delay(2), 5_000);
        assert_eq!(next_attempt_delay(18), 7_200_000);
        assert_eq!(next_attempt_delay(99), 7_200_000);
    }

    #[test]
    fn fifo_retries_locally_then_forwards_to_the_dlq() {
        use ConsumeOutcome::{Failure, Success};
        assert_eq!(erase_fifo(Failure, 1, 3), FifoNext::RetryLocally(1_000));
        assert_eq!(erase_fifo(Failure, 2, 3), FifoNext::RetryLocally(5_000));
        assert_eq!(erase_fifo(Failure, 3, 3), FifoNext::ForwardToDlq);
        assert_eq!(erase_fifo(Success, 3, 3), FifoNext::Ack);
        assert_eq!(
            erase_fifo(Failure, 1, 1),
            FifoNext::ForwardToDlq,
            "maxAttempts 1"
        );
        assert_eq!(erase_standard(Success, 1), StandardNext::Ack);
        assert_eq!(erase_standard(Failure, 2), StandardNext::Nack(5_000));
    }

    #[test]
    fn receive_sizes_timeouts_and_attempt_ids() {
        assert_eq!(receive_timeout(20_000), 23_000);
        assert_eq!(cache_threshold_per_queue(4), 1_024);
        assert_eq!(cache_threshold_per_queue(0), 4_096);
        assert_eq!(reception_batch_size(1_024, 0, 32), 32);
        assert_eq!(reception_batch_size(1_024, 1_010, 32), 14);
        assert_eq!(reception_batch_size(1_024, 2_000, 32), 1, "at least one");
        let kept = "a call past its deadline is retried with its id";
        assert!(keep_attempt_id(true, false, false), "{kept}");
        let renewed = "any answer, empty or not, or other failure";
        assert!(!keep_attempt_id(false, false, false), "{renewed}");
        assert!(!keep_attempt_id(false, true, false), "{renewed}");
        // #1322: until messages arrive.
        assert!(keep_attempt_id(false, false, true), "an empty answer");
        assert!(keep_attempt_id(true, false, true), "a failure");
        assert!(!keep_attempt_id(false, true, true), "messages");
    }
}
