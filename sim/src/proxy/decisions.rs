//! The proxy's decisions as pure functions (apache/rocketmq `proxy/`): what a receive pops
//! with, which popped messages it hands out, when a receipt handle has expired, and when and
//! by how much the receipt-handle processor renews one. No madsim, no I/O; unit-tested below.

use super::protocol::Status;
use broker_core::{ExtraInfo, Millis, ResponseCode};
use reports::history::GrpcCode;
use scenarios::model::ProxyConfig;

/// `ProxyUtils.MAX_MSG_NUMS_FOR_POP_REQUEST`: a larger batch is cut to this.
pub const MAX_MSG_NUMS_FOR_POP_REQUEST: u32 = 32;
/// `MessagingProcessor.DEFAULT_TIMEOUT_MILLS`: the proxy's ack, changeInvisibleTime and
/// send-back calls to the broker.
pub const DEFAULT_TIMEOUT_MILLS: Millis = 2_000;
/// `ReceiveMessageResponseStreamWriter.NACK_INVISIBLE_TIME`: a message the proxy could not
/// write to its client becomes visible again this soon.
pub const NACK_INVISIBLE_TIME: Millis = 1_000;
/// `ProxyConfig.lockTimeoutMsInHandleGroup`: how long an ack waits for a renewal of the same
/// handle to finish (`ReceiptHandleGroup.HandleData.lock`).
pub const LOCK_TIMEOUT_MS_IN_HANDLE_GROUP: Millis = 3_000;
/// `RenewStrategyPolicy.next`: the n-th renewal's invisible time.
pub const RENEW_NEXT: [Millis; 6] = [60_000, 180_000, 300_000, 600_000, 1_800_000, 3_600_000];
/// `CustomizedRetryPolicy.next`: the group's retry policy (the stop-renew delay).
pub const GROUP_RETRY_NEXT: [Millis; 18] = crate::clients::decisions::CUSTOMIZED_RETRY_NEXT;

/// `ReceiveMessageActivity.receiveMessage`: the long-polling time. The request's
/// `longPollingTimeout` (else the time remaining less half the request timeout), clamped to
/// the configured [min, max]; if that exceeds the time remaining, the time remaining when it
/// is at least the min, else `ILLEGAL_POLLING_TIME`.
pub fn polling_time(
    requested: Option<Millis>,
    remaining: Millis,
    request_timeout: Millis,
    cfg: &ProxyConfig,
) -> Result<Millis, Status> {
    let min = cfg.grpc_client_consumer_min_long_polling_timeout_millis;
    let max = cfg.grpc_client_consumer_max_long_polling_timeout_millis;
    let mut t = requested.unwrap_or_else(|| remaining.saturating_sub(request_timeout / 2));
    t = t.clamp(min, max.max(min));
    if t > remaining {
        if remaining >= min {
            t = remaining;
        } else {
            return Err(Status::new(
                GrpcCode::IllegalPollingTime,
                "The deadline time remaining is not enough for polling, please check network condition",
            ));
        }
    }
    Ok(t)
}

/// The invisible time a receive pops with: with auto-renew (on in the config and asked for),
/// `defaultInvisibleTimeMills`; else the requested one, which must lie in
/// [`minInvisibleTimeMillsForRecv`, `maxInvisibleTimeMills`] (`GrpcValidator`).
pub fn receive_invisible_time(
    requested: Option<Millis>,
    auto_renew: bool,
    cfg: &ProxyConfig,
) -> Result<Millis, Status> {
    if cfg.enable_proxy_auto_renew && auto_renew {
        return Ok(cfg.default_invisible_time_mills);
    }
    validate_invisible_time(
        requested.unwrap_or(0),
        cfg.min_invisible_time_mills_for_recv,
        cfg,
    )
}

/// `GrpcValidator.validateInvisibleTime`.
pub fn validate_invisible_time(
    t: Millis,
    min: Millis,
    cfg: &ProxyConfig,
) -> Result<Millis, Status> {
    if t < min {
        return Err(Status::new(
            GrpcCode::IllegalInvisibleTime,
            format!("the invisibleTime is too small. min is {min}"),
        ));
    }
    if t > cfg.max_invisible_time_mills {
        return Err(Status::new(
            GrpcCode::IllegalInvisibleTime,
            format!(
                "the invisibleTime is too large. max is {}",
                cfg.max_invisible_time_mills
            ),
        ));
    }
    Ok(t)
}

/// `ConsumerProcessor.popMessage`: the batch, cut to [`MAX_MSG_NUMS_FOR_POP_REQUEST`].
pub fn pop_batch(batch_size: u32) -> u32 {
    batch_size.min(MAX_MSG_NUMS_FOR_POP_REQUEST)
}

/// `PopMessageFilter.FilterResult` (tags never mismatch here: subscriptions are `*`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FilterResult {
    Match,
    ToDlq,
}

/// `PopMessageResultFilterImpl.filterMessage`: a message whose reconsumeTimes reached the
/// client's `maxAttempts` goes to the DLQ instead of the client.
pub fn filter_message(reconsume_times: u32, max_attempts: u32) -> FilterResult {
    if reconsume_times >= max_attempts {
        FilterResult::ToDlq
    } else {
        FilterResult::Match
    }
}

/// `ConsumerProcessor.createHandle`: the proxy's receipt handle, the broker's plus the
/// message's commit log offset.
pub fn create_handle(broker_handle: &str, commit_log_offset: u64) -> String {
    format!("{broker_handle} {commit_log_offset}")
}

/// The handle `LocalMessageService.changeInvisibleTime` (local mode) answers a successful
/// change with: `ReceiptHandle.builder()` fed the old handle's `startOffset`, topic type,
/// broker, queue and offset and the answer's popTime, invisible time and revive queue, and no
/// `commitLogOffset`, which `encode` writes as 0 (so `createHandle`'s appended offset is a
/// tenth field, and `ReceiptHandle.decode` reads the commit log offset 0). The CK the change
/// wrote starts at the message's own offset (`ChangeInvisibleTimeProcessor`), which this
/// handle names only for a batch's first message. Cluster mode's remoting client
/// (`MQClientAPIImpl.changeInvisibleTimeAsync`) builds it from the request's offset: that is
/// the broker model's `extra_info`.
pub fn local_changed_handle(
    old: &ExtraInfo,
    pop_time: Millis,
    invisible_time: Millis,
    revive_qid: u32,
) -> String {
    let local = ExtraInfo {
        pop_time,
        invisible_time,
        revive_qid,
        commit_log_offset: Some(0),
        ..old.clone()
    };
    local.build()
}

/// `ReceiptHandle.getNextVisibleTime`: popTime + invisibleTime.
pub fn next_visible_time(handle: &ExtraInfo) -> Millis {
    handle.pop_time + handle.invisible_time
}

/// `ReceiptHandle.isExpired` (`AbstractProcessor.validateReceiptHandle` refuses such a
/// handle with `INVALID_RECEIPT_HANDLE`).
pub fn is_expired(handle: &ExtraInfo, now: Millis) -> bool {
    next_visible_time(handle) <= now
}

/// `DefaultReceiptHandleManager.scheduleRenewTask`: a handle is renewed once its next-visible
/// time is at most `renewAheadTimeMillis` away.
pub fn needs_renew(handle: &ExtraInfo, now: Millis, cfg: &ProxyConfig) -> bool {
    next_visible_time(handle).saturating_sub(now) <= cfg.renew_ahead_time_millis
}

/// What `startRenewMessage` does with a handle.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RenewAction {
    /// changeInvisibleTime to this (`RENEW` with `RenewStrategyPolicy`).
    Renew(Millis),
    /// The message has been consumed for `renewMaxTimeMillis`: changeInvisibleTime to the
    /// group's retry delay for its reconsumeTimes, then drop the handle (`STOP_RENEW`).
    StopRenew(Millis),
    /// Too many failed renewals: drop the handle.
    Drop,
}

/// `startRenewMessage`.
pub fn renew_action(
    now: Millis,
    consume_timestamp: Millis,
    renew_times: u32,
    renew_retry_times: u32,
    reconsume_times: u32,
    cfg: &ProxyConfig,
) -> RenewAction {
    if renew_retry_times >= cfg.max_renew_retry_times {
        return RenewAction::Drop;
    }
    if now.saturating_sub(consume_timestamp) < cfg.renew_max_time_millis {
        RenewAction::Renew(renew_delay(renew_times))
    } else {
        RenewAction::StopRenew(group_retry_delay(reconsume_times))
    }
}

/// `RenewStrategyPolicy.nextDelayDuration`.
pub fn renew_delay(renew_times: u32) -> Millis {
    RENEW_NEXT[(renew_times as usize).min(RENEW_NEXT.len() - 1)]
}

/// `CustomizedRetryPolicy.nextDelayDuration(reconsumeTimes)`: index reconsumeTimes + 2
/// (the old delay-level table's offset), capped at the last.
pub fn group_retry_delay(reconsume_times: u32) -> Millis {
    GROUP_RETRY_NEXT[(reconsume_times as usize + 2).min(GROUP_RETRY_NEXT.len() - 1)]
}

/// `DefaultReceiptHandleManager.renewExceptionNeedRetry`: a renewal that failed for any
/// reason but a bad receipt handle is tried again at the next scan.
pub fn renew_failure_retries(code: GrpcCode) -> bool {
    code != GrpcCode::InvalidReceiptHandle
}

/// `ResponseBuilder.buildCode`: the gRPC code for a broker response code.
pub fn grpc_code(code: ResponseCode) -> GrpcCode {
    match code {
        ResponseCode::Success => GrpcCode::Ok,
        ResponseCode::SystemBusy => GrpcCode::TooManyRequests,
        _ => GrpcCode::InternalServerError,
    }
}

/// `AckMessageActivity.setAckResponseStatus`: one code for all entries, or
/// `MULTIPLE_RESULTS`.
pub fn ack_response_status(entries: &[Status]) -> Status {
    let mut codes: Vec<GrpcCode> = entries.iter().map(|s| s.code).collect();
    codes.sort_unstable();
    codes.dedup();
    match codes.as_slice() {
        [] => Status::new(GrpcCode::InternalServerError, "ack message result is empty"),
        [one] => Status::new(*one, one.name()),
        _ => Status::new(GrpcCode::MultipleResults, "MULTIPLE_RESULTS"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn handle(pop_time: Millis, invisible: Millis) -> ExtraInfo {
        ExtraInfo::parse(&format!("0 {pop_time} {invisible} 0 0 broker-a 0 0 7")).unwrap()
    }

    #[test]
    fn polling_time_is_clamped_and_must_fit_the_deadline() {
        let cfg = ProxyConfig::default();
        assert_eq!(polling_time(Some(20_000), 23_000, 3_000, &cfg), Ok(20_000));
        assert_eq!(
            polling_time(Some(30_000), 40_000, 3_000, &cfg),
            Ok(20_000),
            "max"
        );
        assert_eq!(
            polling_time(Some(1_000), 4_000 + 5_000, 3_000, &cfg),
            Ok(5_000),
            "min"
        );
        assert_eq!(
            polling_time(Some(20_000), 12_000, 3_000, &cfg),
            Ok(12_000),
            "remaining"
        );
        assert_eq!(
            polling_time(Some(20_000), 4_999, 3_000, &cfg)
                .unwrap_err()
                .code,
            GrpcCode::IllegalPollingTime
        );
        assert_eq!(
            polling_time(None, 23_000, 3_000, &cfg),
            Ok(20_000),
            "remaining − rt/2"
        );
    }

    #[test]
    fn receive_invisible_time_auto_renew_or_validated() {
        let cfg = ProxyConfig::default();
        assert_eq!(receive_invisible_time(None, true, &cfg), Ok(60_000));
        assert_eq!(
            receive_invisible_time(Some(30_000), false, &cfg),
            Ok(30_000)
        );
        assert_eq!(
            receive_invisible_time(Some(9_999), false, &cfg)
                .unwrap_err()
                .code,
            GrpcCode::IllegalInvisibleTime
        );
        let off = ProxyConfig {
            enable_proxy_auto_renew: false,
            ..ProxyConfig::default()
        };
        assert!(
            receive_invisible_time(None, true, &off).is_err(),
            "no time given"
        );
        assert_eq!(
            validate_invisible_time(1, 0, &cfg),
            Ok(1),
            "changeInvisibleDuration"
        );
        assert!(validate_invisible_time(12 * 3_600_000 + 1, 0, &cfg).is_err());
    }

    #[test]
    fn filter_and_handles() {
        assert_eq!(pop_batch(40), 32);
        assert_eq!(filter_message(16, 17), FilterResult::Match);
        assert_eq!(filter_message(17, 17), FilterResult::ToDlq);
        assert_eq!(create_handle("0 1 2 3 0 b 0 0", 9), "0 1 2 3 0 b 0 0 9");
        let h = handle(1_000, 60_000);
        assert!(!is_expired(&h, 60_999));
        assert!(is_expired(&h, 61_000));
        let cfg = ProxyConfig::default();
        assert!(!needs_renew(&h, 50_999, &cfg));
        assert!(needs_renew(&h, 51_000, &cfg));
    }

    #[test]
    fn renewals_follow_the_strategy_then_stop() {
        let cfg = ProxyConfig::default();
        assert_eq!(
            renew_action(0, 0, 0, 0, 0, &cfg),
            RenewAction::Renew(60_000)
        );
        assert_eq!(
            renew_action(0, 0, 9, 0, 0, &cfg),
            RenewAction::Renew(3_600_000)
        );
        assert_eq!(renew_action(0, 0, 0, 3, 0, &cfg), RenewAction::Drop);
        assert_eq!(
            renew_action(3 * 3_600_000, 0, 5, 0, 1, &cfg),
            RenewAction::StopRenew(30_000),
            "after 3 h: the group's delay for reconsumeTimes 1 (index 3)"
        );
        assert_eq!(group_retry_delay(40), 7_200_000);
        assert!(renew_failure_retries(GrpcCode::ProxyTimeout));
        assert!(!renew_failure_retries(GrpcCode::InvalidReceiptHandle));
    }

    #[test]
    fn ack_status_merges_entries() {
        let ok = Status::ok();
        let bad = Status::new(GrpcCode::InvalidReceiptHandle, "expired");
        assert_eq!(
            ack_response_status(&[ok.clone(), ok.clone()]).code,
            GrpcCode::Ok
        );
        assert_eq!(
            ack_response_status(&[ok, bad]).code,
            GrpcCode::MultipleResults
        );
        assert_eq!(ack_response_status(&[]).code, GrpcCode::InternalServerError);
        assert_eq!(
            grpc_code(ResponseCode::SystemBusy),
            GrpcCode::TooManyRequests
        );
    }
}
