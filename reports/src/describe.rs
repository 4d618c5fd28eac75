//! One-line, human-readable descriptions of history events, in upstream's vocabulary. Used
//! by witness lines in every renderer, and by anything that prints a timeline.

use crate::history::{ConsumeOutcome, Event, EventKind, GrpcOutcome, OffsetUpdateMode, RpcOutcome};
use crate::invariants::index::secs;
use broker_core::{BrokerEvent, CkRef};

/// `[t=12.345s node] what happened`.
pub fn event_line(e: &Event) -> String {
    format!("[t={} {}] {}", secs(e.at), e.node, describe_event(&e.kind))
}

fn outcome(o: &RpcOutcome) -> String {
    match o {
        RpcOutcome::Answered { code, remark } if remark.is_empty() => code.name().to_owned(),
        RpcOutcome::Answered { code, remark } => format!("{} ({remark})", code.name()),
        RpcOutcome::Timeout => "no answer (timeout)".to_owned(),
    }
}

fn grpc_outcome(o: &GrpcOutcome) -> String {
    match o {
        GrpcOutcome::Status { code, message } if message.is_empty() => code.name().to_owned(),
        GrpcOutcome::Status { code, message } => format!("{} ({message})", code.name()),
        GrpcOutcome::Timeout => "no answer (deadline exceeded)".to_owned(),
    }
}

/// A pop's queue as a request names it: a queue id, or every queue.
fn pop_queue(queue_id: i32) -> String {
    if queue_id < 0 {
        "every queue".to_owned()
    } else {
        format!("queue {queue_id}")
    }
}

fn ck(c: &CkRef) -> String {
    format!(
        "CK {}/{} start {} popTime {} invisible {} num {} brokerName {}",
        c.topic,
        c.queue_id,
        c.start_offset,
        secs(c.pop_time),
        secs(c.invisible_time),
        c.num,
        if c.broker_name.is_empty() {
            "(blank)"
        } else {
            &c.broker_name
        }
    )
}

fn opt<T: ToString>(v: &Option<T>) -> String {
    v.as_ref()
        .map_or_else(|| "null".to_owned(), ToString::to_string)
}

/// What happened, without time or node.
pub fn describe_event(kind: &EventKind) -> String {
    use EventKind as K;
    match kind {
        K::Produced {
            msg_id,
            topic,
            queue_id,
            queue_offset,
            ..
        } => {
            format!("produced {msg_id} at {topic}/{queue_id} offset {queue_offset}")
        }
        K::ProduceFailed {
            msg_id,
            topic,
            queue_id,
            reason,
            ..
        } => {
            format!("failed to produce {msg_id} to {topic}/{queue_id}: {reason}")
        }
        K::Delivered {
            consumer,
            group,
            msg_id,
            topic,
            queue_id,
            queue_offset,
            retry_topic,
            reconsume_times,
            pop_time,
            invisible_time,
            orderly,
            attempt_id,
            ..
        } => {
            let from = match retry_topic {
                Some(r) => format!("retry copy from {r}/{queue_id} offset {queue_offset}"),
                None => format!("from {topic}/{queue_id} offset {queue_offset}"),
            };
            let mut s = format!(
                "{consumer} ({group}) got {msg_id} {from}, reconsumeTimes {reconsume_times}, invisible until {}",
                secs(pop_time + invisible_time)
            );
            if *orderly {
                s.push_str(", orderly");
            }
            if let Some(a) = attempt_id {
                s.push_str(&format!(", attemptId {a}"));
            }
            s
        }
        K::SkippedOnReceipt {
            consumer,
            group,
            msg_id,
            reconsume_times,
            reason,
        } => {
            format!("{consumer} ({group}) skipped {msg_id} on receipt, reconsumeTimes {reconsume_times}: {reason}")
        }
        K::ListenerStarted {
            consumer,
            group,
            msg_id,
            reconsume_times,
        } => {
            format!("{consumer} ({group}) listener started on {msg_id}, reconsumeTimes {reconsume_times}")
        }
        K::ListenerFinished {
            consumer,
            group,
            msg_id,
            outcome,
            pop_timed_out,
        } => {
            let o = match outcome {
                ConsumeOutcome::Success => "success",
                ConsumeOutcome::Failure => "failure",
            };
            let late = if *pop_timed_out {
                ", pop timed out"
            } else {
                ""
            };
            format!("{consumer} ({group}) listener finished {msg_id}: {o}{late}")
        }
        K::AckSent {
            consumer,
            group,
            msg_id,
            receipt,
        } => {
            format!("{consumer} ({group}) sent ack of {msg_id} [{receipt}]")
        }
        K::AckResult {
            consumer,
            group,
            msg_id,
            outcome: o,
            ..
        } => {
            format!("{consumer} ({group}) ack of {msg_id}: {}", outcome(o))
        }
        K::ChangeInvisibleResult {
            consumer,
            group,
            msg_id,
            invisible_time,
            outcome: o,
            ..
        } => {
            format!(
                "{consumer} ({group}) changeInvisibleTime of {msg_id} to {}: {}",
                secs(*invisible_time),
                outcome(o)
            )
        }
        K::OffsetUpdateStarted {
            client,
            call_id,
            mode,
            downgraded_from,
            group,
            topic,
            queue_id,
            offset,
        } => {
            let name = |m: &OffsetUpdateMode| match m {
                OffsetUpdateMode::Oneway => "oneway",
                OffsetUpdateMode::Sync => "sync",
                OffsetUpdateMode::Future => "future",
            };
            let asked = downgraded_from
                .as_ref()
                .map(|m| format!(" (asked for {}; this client can only send oneway)", name(m)))
                .unwrap_or_default();
            format!(
                "{client} call {call_id}: {} update of {topic}@{group} queue {} to {}{asked}",
                name(mode),
                opt(queue_id),
                opt(offset)
            )
        }
        K::OffsetUpdateCompleted {
            client,
            call_id,
            outcome: o,
            caller_sees_success,
        } => {
            let told = if *caller_sees_success {
                "success"
            } else {
                "failure"
            };
            let o = o
                .as_ref()
                .map_or_else(|| "sent, no answer awaited".to_owned(), outcome);
            format!("{client} call {call_id} completed: {o}; the caller sees {told}")
        }
        K::ResetRequested {
            client,
            group,
            topic,
            queue_id,
            offset,
        } => {
            let to = offset.map_or_else(|| "by timestamp".to_owned(), |o| format!("to {o}"));
            format!("{client} asked to reset {topic}@{group} queue {queue_id} {to}")
        }
        K::ResetResult {
            client,
            group,
            topic,
            queue_id,
            outcome: o,
            offsets,
        } => {
            let mut s = format!(
                "{client} reset of {topic}@{group} queue {queue_id}: {}",
                outcome(o)
            );
            if !offsets.is_empty() {
                let list: Vec<String> = offsets.iter().map(|(q, x)| format!("{q}→{x}")).collect();
                s.push_str(&format!(" [{}]", list.join(", ")));
            }
            s
        }
        K::HandleRenewed {
            consumer,
            group,
            msg_id,
            receipt,
            new_receipt,
        } => {
            format!("renewed {consumer}'s handle of {msg_id} ({group}): [{receipt}] → [{new_receipt}]; the client keeps its own")
        }
        K::HandleRedirected {
            consumer,
            group,
            msg_id,
            receipt,
            original,
            current,
        } => {
            format!("{consumer}'s call for {msg_id} ({group}) named [{receipt}]; the proxy's entry was put for another delivery [{original}] and the call names [{current}]")
        }
        K::ForwardAckRefused {
            consumer,
            group,
            msg_id,
            receipt,
            reason,
        } => {
            format!("did not send the ack after {consumer}'s forward of {msg_id} ({group}) to the DLQ: {reason} [{receipt}]")
        }
        K::SentToDlq {
            consumer,
            group,
            msg_id,
            dlq_topic,
            reconsume_times,
        } => {
            format!("{consumer} ({group}) sent {msg_id} to {dlq_topic}, reconsumeTimes {reconsume_times}")
        }
        K::DlqWritten {
            group,
            msg_id,
            origin_topic,
            dlq_topic,
            dlq_queue_offset,
            reconsume_times,
        } => {
            format!("stored {msg_id} of {origin_topic} for {group} in {dlq_topic} offset {dlq_queue_offset}, reconsumeTimes {reconsume_times}")
        }
        K::GrpcCall {
            consumer,
            group,
            rpc,
            msg_id,
            outcome: o,
            detail,
        } => {
            let about = msg_id
                .as_ref()
                .map_or_else(String::new, |m| format!(" of {m}"));
            let detail = if detail.is_empty() {
                String::new()
            } else {
                format!(", {detail}")
            };
            format!(
                "{consumer} ({group}) {}{about} via the proxy: {}{detail}",
                rpc.name(),
                grpc_outcome(o)
            )
        }
        K::ProxyPopped {
            consumer,
            group,
            topic,
            queue_id,
            attempt_id,
            found,
            to_dlq,
            outcome: o,
        } => {
            let mut s = format!(
                "pop of {topic}@{group} {} for {consumer}: {}, {found} found",
                pop_queue(*queue_id),
                outcome(o)
            );
            if *to_dlq > 0 {
                s.push_str(&format!(", {to_dlq} forwarded to the DLQ"));
            }
            if let Some(a) = attempt_id {
                s.push_str(&format!(", attemptId {a}"));
            }
            s
        }
        K::ConsumerStarted { consumer, group } => format!("{consumer} ({group}) started"),
        K::ConsumerStopped { consumer, group } => format!("{consumer} ({group}) stopped"),
        K::Fault { description } => format!("fault: {description}"),
        K::Broker(b) => describe_broker(b),
    }
}

fn describe_broker(b: &BrokerEvent) -> String {
    use BrokerEvent as B;
    match b {
        B::CkBuffered { ck: c, .. } => format!("{} buffered", ck(c)),
        B::CkWritten { ck: c, revive_qid, revive_offset, deliver_at, reason, .. } => format!(
            "{} written to revive queue {revive_qid} offset {revive_offset}, deliver time {} ({reason})",
            ck(c),
            secs(*deliver_at)
        ),
        B::AckMergedInBuffer { ck: c, ack_offset, .. } => {
            format!("ack of offset {ack_offset} merged into buffered {}", ck(c))
        }
        B::AckRecordRead {
            revive_qid,
            revive_offset,
            topic,
            group,
            queue_id,
            start_offset,
            pop_time,
            ack_offsets,
            key,
            outcome,
            ..
        } => format!(
            "reviver read the ACK for {topic}@{group} queue {queue_id} start {start_offset} popTime {} offsets {ack_offsets:?} at position {revive_offset} of revive queue {revive_qid}, key {key}: {outcome}",
            secs(*pop_time)
        ),
        B::ReviveDecided {
            revive_qid,
            ck: c,
            key,
            acked,
            ..
        } => format!(
            "reviver revives {} from revive queue {revive_qid}: key {key}, acked offsets {acked:?}",
            ck(c)
        ),
        B::AckWritten {
            topic,
            group,
            queue_id,
            start_offset,
            pop_time,
            ack_offsets,
            broker_name,
            revive_qid,
            revive_offset,
            deliver_at,
            batch,
            reason,
            ..
        } => format!(
            "{} for {topic}@{group} queue {queue_id} start {start_offset} popTime {} offsets {ack_offsets:?} brokerName {} written to revive queue {revive_qid} offset {revive_offset}, deliver time {} ({reason})",
            if *batch { "BatchAck" } else { "ACK" },
            secs(*pop_time),
            broker_name.as_deref().unwrap_or("(blank)"),
            secs(*deliver_at)
        ),
        B::Revived {
            group,
            msg_id,
            ck: c,
            queue_offset,
            retry_topic,
            retry_queue_offset,
            reconsume_times,
            ..
        } => format!(
            "revived {msg_id} for {group} from {}/{} offset {queue_offset} to {retry_topic} offset {retry_queue_offset}, reconsumeTimes {reconsume_times}",
            c.topic, c.queue_id
        ),
        B::ReviveOffsetCommitted { revive_qid, offset, .. } => {
            format!("revive group offset of revive queue {revive_qid} committed at {offset}")
        }
        B::OffsetCommitted { group, topic, queue_id, offset, reason, .. } => {
            format!("offsetTable {topic}@{group} queue {queue_id} := {offset} ({reason})")
        }
        B::PullOffsetCommitted { group, topic, queue_id, offset, reason, .. } => {
            format!("pullOffsetTable {topic}@{group} queue {queue_id} := {offset} ({reason})")
        }
        B::PullOffsetCleared {
            group,
            topic,
            queue_id: None,
            ..
        } => format!("pullOffsetTable {topic}@{group} cleared"),
        B::PullOffsetCleared {
            group,
            topic,
            queue_id: Some(q),
            ..
        } => format!("pullOffsetTable {topic}@{group} queue {q} cleared"),
        B::ResetAssigned { group, topic, queue_id, offset, wrote_offset_table, .. } => {
            let note = if *wrote_offset_table { "" } else { "; offsetTable not written" };
            format!("reset of {topic}@{group} queue {queue_id} to {offset} assigned{note}")
        }
        B::ResetConsumed { group, topic, queue_id, offset, .. } => {
            format!("pending reset of {topic}@{group} queue {queue_id} to {offset} taken by a pop")
        }
        B::OffsetsPersisted { .. } => "consumer offsets persisted".to_owned(),
        B::OrderInfoPersisted { .. } => "orderly POP state (OrderInfo) persisted".to_owned(),
        B::StorePutFailed { site, topic, queue_id, .. } => {
            format!("store put to {topic}/{queue_id} failed ({site})")
        }
        B::CkDropped { ck: c, queue_offset, reason, .. } => format!(
            "gave up reviving {}/{} offset {queue_offset} (CK start {}, popTime {}): {reason}",
            c.topic,
            c.queue_id,
            c.start_offset,
            secs(c.pop_time)
        ),
        B::TimerRecordDiscarded { revive_qid, revive_offset, attempts, .. } => format!(
            "the timer gave up revive record {revive_offset} of revive queue {revive_qid} after {attempts} failed puts: no reviver reads it"
        ),
        B::MessagesExpired { topic, queue_id, min_offset, .. } => {
            format!("retention deleted {topic}/{queue_id} below offset {min_offset}")
        }
        B::PopRead { group, topic, queue_id, pop_time, offset, count, orderly, from, .. } => {
            let last = offset + u64::from(*count) - 1;
            let kind = if *orderly { "orderly pop" } else { "pop" };
            format!(
                "{kind} of {topic}@{group} queue {queue_id} (popTime {}) read offsets {offset}..={last} from {}",
                secs(*pop_time),
                from.describe()
            )
        }
        B::LockReleasedByOther { lock, holder, by, site, .. } => {
            format!("{site} (operation #{by}) freed lock {lock} held by operation #{holder}")
        }
        B::AckLostOnDroppedCk { group, topic, queue_id, start_offset, pop_time, ack_offset, .. } => format!(
            "ack of {topic}@{group} queue {queue_id} offset {ack_offset} merged into the CK (start {start_offset}, popTime {}) after the scan had flushed and dropped it: lost",
            secs(*pop_time)
        ),
        B::PopParked { op, group, topic, queue_id, expires_at, .. } => format!(
            "pop #{op} of {topic}@{group} {} found nothing: parked until {} (long polling)",
            pop_queue(*queue_id),
            secs(*expires_at)
        ),
        B::PopWoken { op, group, topic, queue_id, reason, .. } => format!(
            "parked pop #{op} of {topic}@{group} {} woken ({reason}): runs again",
            pop_queue(*queue_id)
        ),
        B::DlqWritten {
            group,
            msg_id,
            origin_topic,
            dlq_topic,
            dlq_queue_offset,
            reconsume_times,
            ..
        } => format!("stored {msg_id} of {origin_topic} for {group} in {dlq_topic} offset {dlq_queue_offset}, reconsumeTimes {reconsume_times}"),
        B::Crashed {
            graceful: false, ..
        } => "broker crashed".to_owned(),
        B::Crashed { graceful: true, .. } => {
            "broker shut down (buffer drained, offsets and OrderInfo persisted)".to_owned()
        }
        B::Restarted { .. } => "broker restarted".to_owned(),
    }
}

/// The event's type as the saved history spells it (`delivered`, `ack-result`, …); a broker
/// event's own variant in kebab-case (`revived`, `ck-written`, …).
pub fn event_type(kind: &EventKind) -> &'static str {
    use BrokerEvent as B;
    use EventKind as K;
    match kind {
        K::Produced { .. } => "produced",
        K::ProduceFailed { .. } => "produce-failed",
        K::Delivered { .. } => "delivered",
        K::SkippedOnReceipt { .. } => "skipped-on-receipt",
        K::ListenerStarted { .. } => "listener-started",
        K::ListenerFinished { .. } => "listener-finished",
        K::AckSent { .. } => "ack-sent",
        K::AckResult { .. } => "ack-result",
        K::ChangeInvisibleResult { .. } => "change-invisible-result",
        K::HandleRenewed { .. } => "handle-renewed",
        K::ForwardAckRefused { .. } => "forward-ack-refused",
        K::HandleRedirected { .. } => "handle-redirected",
        K::OffsetUpdateStarted { .. } => "offset-update-started",
        K::OffsetUpdateCompleted { .. } => "offset-update-completed",
        K::ResetRequested { .. } => "reset-requested",
        K::ResetResult { .. } => "reset-result",
        K::SentToDlq { .. } => "sent-to-dlq",
        K::DlqWritten { .. } => "dlq-written",
        K::GrpcCall { .. } => "grpc-call",
        K::ProxyPopped { .. } => "proxy-popped",
        K::ConsumerStarted { .. } => "consumer-started",
        K::ConsumerStopped { .. } => "consumer-stopped",
        K::Fault { .. } => "fault",
        K::Broker(b) => match b {
            B::CkBuffered { .. } => "ck-buffered",
            B::CkWritten { .. } => "ck-written",
            B::AckMergedInBuffer { .. } => "ack-merged-in-buffer",
            B::AckWritten { .. } => "ack-written",
            B::AckRecordRead { .. } => "ack-record-read",
            B::ReviveDecided { .. } => "revive-decided",
            B::Revived { .. } => "revived",
            B::ReviveOffsetCommitted { .. } => "revive-offset-committed",
            B::OffsetCommitted { .. } => "offset-committed",
            B::PullOffsetCommitted { .. } => "pull-offset-committed",
            B::PullOffsetCleared { .. } => "pull-offset-cleared",
            B::ResetAssigned { .. } => "reset-assigned",
            B::ResetConsumed { .. } => "reset-consumed",
            B::OffsetsPersisted { .. } => "offsets-persisted",
            B::OrderInfoPersisted { .. } => "order-info-persisted",
            B::StorePutFailed { .. } => "store-put-failed",
            B::CkDropped { .. } => "ck-dropped",
            B::TimerRecordDiscarded { .. } => "timer-record-discarded",
            B::MessagesExpired { .. } => "messages-expired",
            B::PopRead { .. } => "pop-read",
            B::LockReleasedByOther { .. } => "lock-released-by-other",
            B::AckLostOnDroppedCk { .. } => "ack-lost-on-dropped-ck",
            B::PopParked { .. } => "pop-parked",
            B::PopWoken { .. } => "pop-woken",
            B::DlqWritten { .. } => "dlq-written",
            B::Crashed { .. } => "crashed",
            B::Restarted { .. } => "restarted",
        },
    }
}

/// What an event names: its message, group, and the queue and offset it is about (a retry
/// copy's delivery: the retry topic's queue; a CK: its start offset). `None` where the event
/// does not say.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct EventFields<'a> {
    pub msg_id: Option<&'a str>,
    pub group: Option<&'a str>,
    pub topic: Option<&'a str>,
    pub queue_id: Option<u32>,
    pub queue_offset: Option<u64>,
}

/// The [`EventFields`] of one event.
pub fn event_fields(kind: &EventKind) -> EventFields<'_> {
    use BrokerEvent as B;
    use EventKind as K;
    let q = |q: i32| u32::try_from(q).ok();
    let o = |o: i64| u64::try_from(o).ok();
    let none = EventFields::default();
    match kind {
        K::Produced {
            msg_id,
            topic,
            queue_id,
            queue_offset,
            ..
        } => EventFields {
            msg_id: Some(msg_id),
            topic: Some(topic),
            queue_id: Some(*queue_id),
            queue_offset: Some(*queue_offset),
            ..none
        },
        K::ProduceFailed {
            msg_id,
            topic,
            queue_id,
            ..
        } => EventFields {
            msg_id: Some(msg_id),
            topic: Some(topic),
            queue_id: Some(*queue_id),
            ..none
        },
        K::Delivered {
            group,
            msg_id,
            topic,
            queue_id,
            queue_offset,
            retry_topic,
            ..
        } => EventFields {
            msg_id: Some(msg_id),
            group: Some(group),
            topic: Some(retry_topic.as_deref().unwrap_or(topic)),
            queue_id: Some(*queue_id),
            queue_offset: Some(*queue_offset),
        },
        K::SkippedOnReceipt { group, msg_id, .. }
        | K::ListenerStarted { group, msg_id, .. }
        | K::ListenerFinished { group, msg_id, .. }
        | K::AckSent { group, msg_id, .. }
        | K::AckResult { group, msg_id, .. }
        | K::ChangeInvisibleResult { group, msg_id, .. }
        | K::HandleRenewed { group, msg_id, .. }
        | K::ForwardAckRefused { group, msg_id, .. }
        | K::HandleRedirected { group, msg_id, .. }
        | K::SentToDlq { group, msg_id, .. } => EventFields {
            msg_id: Some(msg_id),
            group: Some(group),
            ..none
        },
        K::DlqWritten {
            group,
            msg_id,
            dlq_topic,
            dlq_queue_offset,
            ..
        } => EventFields {
            msg_id: Some(msg_id),
            group: Some(group),
            topic: Some(dlq_topic),
            queue_id: Some(0),
            queue_offset: Some(*dlq_queue_offset),
        },
        K::OffsetUpdateStarted {
            group,
            topic,
            queue_id,
            offset,
            ..
        } => EventFields {
            group: Some(group),
            topic: Some(topic),
            queue_id: queue_id.and_then(q),
            queue_offset: offset.and_then(o),
            ..none
        },
        K::ResetRequested {
            group,
            topic,
            queue_id,
            offset,
            ..
        } => EventFields {
            group: Some(group),
            topic: Some(topic),
            queue_id: q(*queue_id),
            queue_offset: offset.and_then(o),
            ..none
        },
        K::ResetResult {
            group,
            topic,
            queue_id,
            ..
        } => EventFields {
            group: Some(group),
            topic: Some(topic),
            queue_id: q(*queue_id),
            ..none
        },
        K::ConsumerStarted { group, .. } | K::ConsumerStopped { group, .. } => EventFields {
            group: Some(group),
            ..none
        },
        K::GrpcCall { group, msg_id, .. } => EventFields {
            msg_id: msg_id.as_deref(),
            group: Some(group),
            ..none
        },
        K::ProxyPopped {
            group,
            topic,
            queue_id,
            ..
        } => EventFields {
            group: Some(group),
            topic: Some(topic),
            queue_id: q(*queue_id),
            ..none
        },
        K::OffsetUpdateCompleted { .. } | K::Fault { .. } => none,
        K::Broker(b) => match b {
            B::Revived {
                group,
                msg_id,
                ck,
                queue_offset,
                ..
            } => EventFields {
                msg_id: Some(msg_id),
                group: Some(group),
                topic: Some(&ck.topic),
                queue_id: Some(ck.queue_id),
                queue_offset: Some(*queue_offset),
            },
            B::CkBuffered { ck, .. } | B::CkWritten { ck, .. } | B::ReviveDecided { ck, .. } => {
                EventFields {
                    group: Some(&ck.group),
                    topic: Some(&ck.topic),
                    queue_id: Some(ck.queue_id),
                    queue_offset: Some(ck.start_offset),
                    ..none
                }
            }
            B::AckMergedInBuffer { ck, ack_offset, .. } => EventFields {
                group: Some(&ck.group),
                topic: Some(&ck.topic),
                queue_id: Some(ck.queue_id),
                queue_offset: Some(*ack_offset),
                ..none
            },
            B::AckWritten {
                topic,
                group,
                queue_id,
                start_offset,
                ..
            }
            | B::AckRecordRead {
                topic,
                group,
                queue_id,
                start_offset,
                ..
            } => EventFields {
                group: Some(group),
                topic: Some(topic),
                queue_id: Some(*queue_id),
                queue_offset: Some(*start_offset),
                ..none
            },
            B::OffsetCommitted {
                group,
                topic,
                queue_id,
                offset,
                ..
            }
            | B::PullOffsetCommitted {
                group,
                topic,
                queue_id,
                offset,
                ..
            }
            | B::ResetAssigned {
                group,
                topic,
                queue_id,
                offset,
                ..
            }
            | B::ResetConsumed {
                group,
                topic,
                queue_id,
                offset,
                ..
            } => EventFields {
                group: Some(group),
                topic: Some(topic),
                queue_id: Some(*queue_id),
                queue_offset: o(*offset),
                ..none
            },
            B::PullOffsetCleared { group, topic, .. } => EventFields {
                group: Some(group),
                topic: Some(topic),
                ..none
            },
            B::PopRead {
                group,
                topic,
                queue_id,
                offset,
                ..
            }
            | B::AckLostOnDroppedCk {
                group,
                topic,
                queue_id,
                ack_offset: offset,
                ..
            } => EventFields {
                group: Some(group),
                topic: Some(topic),
                queue_id: Some(*queue_id),
                queue_offset: Some(*offset),
                ..none
            },
            B::CkDropped {
                ck, queue_offset, ..
            } => EventFields {
                group: Some(&ck.group),
                topic: Some(&ck.topic),
                queue_id: Some(ck.queue_id),
                queue_offset: Some(*queue_offset),
                ..none
            },
            B::StorePutFailed {
                topic, queue_id, ..
            } => EventFields {
                topic: Some(topic),
                queue_id: Some(*queue_id),
                ..none
            },
            B::MessagesExpired {
                topic,
                queue_id,
                min_offset,
                ..
            } => EventFields {
                topic: Some(topic),
                queue_id: Some(*queue_id),
                queue_offset: Some(*min_offset),
                ..none
            },
            B::PopParked {
                group,
                topic,
                queue_id,
                ..
            }
            | B::PopWoken {
                group,
                topic,
                queue_id,
                ..
            } => EventFields {
                group: Some(group),
                topic: Some(topic),
                queue_id: q(*queue_id),
                ..none
            },
            // Never in a history: the recorder turns it into the top-level `DlqWritten`.
            B::DlqWritten { .. } => none,
            B::ReviveOffsetCommitted { .. }
            | B::LockReleasedByOther { .. }
            | B::TimerRecordDiscarded { .. }
            | B::OffsetsPersisted { .. }
            | B::OrderInfoPersisted { .. }
            | B::Crashed { .. }
            | B::Restarted { .. } => none,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::history::{GrpcCode, GrpcRpc};
    use crate::testkit::H;

    #[test]
    fn the_proxy_hop_and_long_polling_read_as_upstream_says_them() {
        let mut h = H::new();
        h.at(1_000).broker(BrokerEvent::PopParked {
            at: 1_000,
            op: 7,
            group: "g1".into(),
            topic: "TopicA".into(),
            queue_id: -1,
            expires_at: 21_000,
        });
        h.at(1_500).broker(BrokerEvent::PopWoken {
            at: 1_500,
            op: 7,
            group: "g1".into(),
            topic: "TopicA".into(),
            queue_id: -1,
            reason: "notifyMessageArriving".into(),
        });
        h.at(1_510).push(
            "proxy",
            EventKind::ProxyPopped {
                consumer: "c1".into(),
                group: "g1".into(),
                topic: "TopicA".into(),
                queue_id: -1,
                attempt_id: Some("c1-q0-3".into()),
                found: 2,
                to_dlq: 1,
                outcome: crate::testkit::ok(),
            },
        );
        h.at(1_520).push(
            "c1",
            EventKind::GrpcCall {
                consumer: "c1".into(),
                group: "g1".into(),
                rpc: GrpcRpc::AckMessage,
                msg_id: Some("m1".into()),
                outcome: crate::history::GrpcOutcome::Status {
                    code: GrpcCode::InvalidReceiptHandle,
                    message: "receipt handle is expired".into(),
                },
                detail: String::new().into(),
            },
        );
        let hist = h.build();
        let lines: Vec<String> = hist.events.iter().map(event_line).collect();
        assert_eq!(
            lines,
            [
                "[t=1.000s broker] pop #7 of TopicA@g1 every queue found nothing: parked until 21.000s (long polling)",
                "[t=1.500s broker] parked pop #7 of TopicA@g1 every queue woken (notifyMessageArriving): runs again",
                "[t=1.510s proxy] pop of TopicA@g1 every queue for c1: SUCCESS, 2 found, 1 forwarded to the DLQ, attemptId c1-q0-3",
                "[t=1.520s c1] c1 (g1) AckMessage of m1 via the proxy: INVALID_RECEIPT_HANDLE (receipt handle is expired)",
            ]
        );
        let types: Vec<&str> = hist.events.iter().map(|e| event_type(&e.kind)).collect();
        assert_eq!(
            types,
            ["pop-parked", "pop-woken", "proxy-popped", "grpc-call"]
        );
    }

    #[test]
    fn lines_show_time_node_and_upstream_names() {
        let mut h = H::new();
        h.at(1_234).produce("m1", 0, 7);
        let d = h.at(2_000).pop("c1", "m1", 0, 7);
        h.at(12_500).revive(&d, 3, 1);
        h.at(13_000).reset_request("g1", -1, None);
        let hist = h.build();
        let lines: Vec<String> = hist.events.iter().map(event_line).collect();
        assert_eq!(
            lines,
            [
                "[t=1.234s producer] produced m1 at TopicA/0 offset 7",
                "[t=2.000s c1] c1 (g1) got m1 from TopicA/0 offset 7, reconsumeTimes 0, invisible until 12.000s",
                "[t=12.500s broker] revived m1 for g1 from TopicA/0 offset 7 to %RETRY%g1_TopicA offset 3, reconsumeTimes 1",
                "[t=13.000s admin] admin asked to reset TopicA@g1 queue -1 by timestamp",
            ]
        );
    }
}
