//! One madsim run per client model: what each records, and that each follows the upstream
//! client's decisions.

mod common;

use broker_core::{Behaviour, ResponseCode};
use common::*;
use reports::history::{
    ConsumeOutcome, EventKind, GrpcCode, GrpcOutcome, GrpcRpc, OffsetUpdateMode, RpcOutcome,
};
use std::collections::{BTreeMap, BTreeSet};

const BASIC: &str = r#"
name = "basic"
duration_ms = 20_000
quiet_period_ms = 5_000

[[topics]]
name = "t"
queues = 2

[[groups]]
name = "g"

[[producers]]
name = "p1"
topic = "t"
messages = 20
interval_ms = 50

[[consumers]]
name = "c1"
kind = "concurrent"
group = "g"
topic = "t"
init_mode = "min"
pop_invisible_time_ms = 30_000
consume_time_ms = { min = 5, max = 50 }

[expect]
invariants = ["no-redelivery-after-ack", "revive-bookkeeping"]
"#;

#[test]
fn producer_and_concurrent_consumer_deliver_and_ack_everything() {
    let out = run(BASIC, 7, &[]);
    let h = &out.history;
    let produced: BTreeSet<&str> = events(h, |k| matches!(k, EventKind::Produced { .. }))
        .map(|e| match &e.kind {
            EventKind::Produced { msg_id, .. } => msg_id.as_str(),
            _ => unreachable!(),
        })
        .collect();
    assert_eq!(
        produced.len(),
        20,
        "every send answered in a fault-free run"
    );
    let mut acked = BTreeSet::new();
    for e in &h.events {
        if let EventKind::AckResult {
            msg_id, outcome, ..
        } = &e.kind
        {
            assert!(answered(outcome, ResponseCode::Success), "{outcome:?}");
            acked.insert(msg_id.as_str());
        }
    }
    assert_eq!(acked, produced, "every message consumed and acked once");
    // An empty pop (POLLING_TIMEOUT) is retried at once, not after the error delay. (A
    // delivery may even precede the producer's SEND_OK: the answer is still on its way.)
    let produced_at: BTreeMap<&str, u64> = h
        .events
        .iter()
        .filter_map(|e| match &e.kind {
            EventKind::Produced { msg_id, .. } => Some((msg_id.as_str(), e.at)),
            _ => None,
        })
        .collect();
    for e in &h.events {
        if let EventKind::Delivered { msg_id, .. } = &e.kind {
            let lag = e.at.saturating_sub(produced_at[msg_id.as_str()]);
            assert!(
                lag < 1_000,
                "{msg_id} delivered {lag} ms after it was produced"
            );
        }
    }
    assert_eq!(
        count(h, |k| matches!(k, EventKind::ListenerStarted { .. })),
        20
    );
    assert_eq!(
        count(h, |k| matches!(k, EventKind::ConsumerStarted { .. })),
        1
    );
    assert!(h.events.iter().all(|e| e.at <= 20_000));
    assert!(
        h.events.windows(2).all(|w| w[0].at <= w[1].at),
        "events in time order"
    );
    assert!(!out.failed(), "violated: {:?}", out.violated());
}

/// Bug (b): listener 15 s, invisible 10 s, max 0. With the #8333 filter the listener runs
/// once and the revived copy is acked on receipt; without it the message is consumed again
/// and again.
const OVERRUN: &str = r#"
name = "overrun"
duration_ms = 90_000
quiet_period_ms = 5_000

[[topics]]
name = "t"

[[groups]]
name = "g"

[[producers]]
name = "p1"
topic = "t"
messages = 1

[[consumers]]
name = "c1"
kind = "concurrent"
group = "g"
topic = "t"
init_mode = "min"
pop_invisible_time_ms = 10_000
max_reconsume_times = 0
consume_time_ms = { min = 15_000, max = 15_000 }
"#;

#[test]
fn receipt_filter_acks_messages_past_the_max() {
    let fixed = run(OVERRUN, 3, &[]);
    let h = &fixed.history;
    assert_eq!(
        count(h, |k| matches!(k, EventKind::ListenerStarted { .. })),
        1
    );
    assert!(
        events(h, |k| matches!(
            k,
            EventKind::ListenerFinished {
                pop_timed_out: true,
                ..
            }
        ))
        .count()
            == 1
    );
    let skipped: Vec<u32> = h
        .events
        .iter()
        .filter_map(|e| match &e.kind {
            EventKind::SkippedOnReceipt {
                reconsume_times, ..
            } => Some(*reconsume_times),
            _ => None,
        })
        .collect();
    assert_eq!(skipped, vec![1], "the revived copy is acked on receipt");

    let bug = run(OVERRUN, 3, &[Behaviour::PopTimeoutSkipsMaxReconsume]);
    let h = &bug.history;
    assert_eq!(
        count(h, |k| matches!(k, EventKind::SkippedOnReceipt { .. })),
        0
    );
    let max_rt = h
        .events
        .iter()
        .filter_map(|e| match &e.kind {
            EventKind::ListenerStarted {
                reconsume_times, ..
            } => Some(*reconsume_times),
            _ => None,
        })
        .max();
    assert!(max_rt >= Some(2), "consumed again and again: {max_rt:?}");
}

#[test]
fn failed_consumption_changes_invisible_time_by_delay_level() {
    let src = BASIC.replace(
        "consume_time_ms = { min = 5, max = 50 }",
        "failure_percent = 100\nmax_reconsume_times = 3",
    );
    let out = run(&src, 1, &[]);
    let h = &out.history;
    let mut delays = BTreeMap::new();
    for e in &h.events {
        if let EventKind::ChangeInvisibleResult {
            invisible_time,
            outcome,
            ..
        } = &e.kind
        {
            assert!(answered(outcome, ResponseCode::Success), "{outcome:?}");
            *delays.entry(*invisible_time).or_insert(0) += 1;
        }
    }
    // reconsumeTimes 0 → popDelayLevel[0] = 10 s.
    assert_eq!(delays.get(&10_000), Some(&20), "{delays:?}");
    assert!(
        events(h, |k| matches!(
            k,
            EventKind::ListenerFinished {
                outcome: ConsumeOutcome::Failure,
                ..
            }
        ))
        .count()
            >= 20
    );
}

const FIFO: &str = r#"
name = "fifo"
duration_ms = 30_000
quiet_period_ms = 5_000

[proxy]
grpcClientConsumerLongPollingBatchSize = 4

[[topics]]
name = "t"
queues = 2

[[groups]]
name = "g"

[[producers]]
name = "p1"
topic = "t"
messages = 12
interval_ms = 20

[[consumers]]
name = "c1"
kind = "grpc-push"
fifo = true
group = "g"
topic = "t"
pop_batch_nums = 4
start_at_ms = 2_000
"#;

#[test]
fn grpc_fifo_consumer_receives_through_the_proxy_in_queue_order() {
    let out = run(FIFO, 5, &[]);
    let h = &out.history;
    let mut per_queue: BTreeMap<u32, Vec<u64>> = BTreeMap::new();
    for e in &h.events {
        if let EventKind::Delivered {
            queue_id,
            queue_offset,
            orderly,
            attempt_id,
            receipt,
            ..
        } = &e.kind
        {
            assert_eq!(&*e.node, "c1");
            assert!(*orderly && attempt_id.is_some());
            let info = broker_core::ExtraInfo::parse(receipt).expect("a proxy handle");
            assert!(info.commit_log_offset.is_some(), "the proxy's ninth field");
            per_queue.entry(*queue_id).or_default().push(*queue_offset);
        }
    }
    for (q, offsets) in &per_queue {
        assert!(
            offsets.windows(2).all(|w| w[0] < w[1]),
            "queue {q} in order: {offsets:?}"
        );
    }
    assert_eq!(per_queue.values().map(Vec::len).sum::<usize>(), 12);
    // The proxy acks at the broker; the client sees the gRPC call end.
    let broker_acks: Vec<_> = events(h, |k| matches!(k, EventKind::AckResult { .. })).collect();
    assert!(broker_acks.iter().all(|e| &*e.node == "proxy"));
    assert_eq!(broker_acks.len(), 12);
    assert_eq!(
        count(h, |k| matches!(
            k,
            EventKind::GrpcCall {
                rpc: GrpcRpc::AckMessage,
                outcome: GrpcOutcome::Status {
                    code: GrpcCode::Ok,
                    ..
                },
                ..
            }
        )),
        12
    );
    assert!(count(h, |k| matches!(k, EventKind::ProxyPopped { .. })) > 0);
    assert!(!out.failed(), "violated: {:?}", out.violated());
}

/// At the snapshot the gRPC client receives again with a new attemptId after every answer,
/// empty ones included (`ProcessQueueImpl.onReceiveMessageResult` → `receiveMessage()`);
/// keeping it until messages arrive is a later client (#1322). Once the producer is done,
/// each process queue's long-polling receives end empty and each carries an id of its own.
#[test]
fn grpc_fifo_consumer_takes_a_new_attempt_id_after_an_empty_receive() {
    let long = FIFO.replace("duration_ms = 30_000", "duration_ms = 120_000");
    let out = run(&long, 5, &[]);
    let mut ids: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for e in &out.history.events {
        if let EventKind::ProxyPopped {
            attempt_id: Some(id),
            found: 0,
            ..
        } = &e.kind
        {
            let queue = id.rsplit_once('-').expect("name-qN-n").0.to_owned();
            ids.entry(queue).or_default().push(id.to_string());
        }
    }
    assert!(
        ids.values().any(|v| v.len() >= 2),
        "empty receives: {ids:?}"
    );
    for (q, v) in &ids {
        let distinct: BTreeSet<&String> = v.iter().collect();
        assert_eq!(distinct.len(), v.len(), "process queue {q}: {v:?}");
    }
}

#[test]
fn grpc_fifo_retries_locally_then_forwards_to_the_dlq() {
    // retryMaxTimes 1: maxAttempts 2. Every listener run fails, so each message is consumed
    // twice in a row (the retry policy's 1 s apart), then forwarded to the DLQ by the
    // client; the proxy sends it back and acks it, and the broker stores it in %DLQ%g.
    let src = FIFO.replace(
        "start_at_ms = 2_000",
        "start_at_ms = 2_000\nfailure_percent = 100\nmax_reconsume_times = 1",
    );
    let out = run(&src, 5, &[]);
    let h = &out.history;
    let mut runs: BTreeMap<&str, Vec<u64>> = BTreeMap::new();
    for e in events(h, |k| matches!(k, EventKind::ListenerStarted { .. })) {
        if let EventKind::ListenerStarted { msg_id, .. } = &e.kind {
            runs.entry(msg_id).or_default().push(e.at);
        }
    }
    assert_eq!(runs.len(), 12);
    for (m, at) in &runs {
        assert_eq!(at.len(), 2, "{m}: two attempts");
        assert!(
            at[1] - at[0] >= 1_000,
            "{m}: the retry policy's first delay"
        );
    }
    let decided: Vec<&str> = events(h, |k| matches!(k, EventKind::SentToDlq { .. }))
        .map(|e| &*e.node)
        .collect();
    assert_eq!(decided.len(), 12);
    assert!(decided.iter().all(|n| *n == "c1"), "the client decides");
    assert_eq!(count(h, |k| matches!(k, EventKind::DlqWritten { .. })), 12);
    let dlq = out
        .results
        .iter()
        .find(|r| r.name == "dlq-accounting")
        .unwrap();
    assert_eq!(dlq.status, reports::Status::Held, "{:?}", dlq.witness);
    assert!(!out.failed(), "violated: {:?}", out.violated());
}

const GRPC_PUSH: &str = r#"
name = "grpc-push"
duration_ms = 120_000
quiet_period_ms = 5_000

[[topics]]
name = "t"

[[groups]]
name = "g"

[[producers]]
name = "p1"
topic = "t"
messages = 2

[[consumers]]
name = "c1"
kind = "grpc-push"
group = "g"
topic = "t"
start_at_ms = 1_000
"#;

#[test]
fn the_proxy_forwards_messages_past_max_attempts_on_receive() {
    // retryMaxTimes 0: maxAttempts 1. The first run fails and is nacked (changeInvisible-
    // Duration by the retry policy: 1 s); the revived copy comes back with reconsumeTimes 1,
    // and the proxy's filter forwards it to the DLQ instead of handing it out.
    let src = GRPC_PUSH.replace(
        "start_at_ms = 1_000",
        "start_at_ms = 1_000\nfailure_percent = 100\nmax_reconsume_times = 0",
    );
    let out = run(&src, 2, &[]);
    let h = &out.history;
    assert_eq!(
        count(h, |k| matches!(k, EventKind::ListenerStarted { .. })),
        2
    );
    let nacks: Vec<u64> = events(h, |k| matches!(k, EventKind::ChangeInvisibleResult { .. }))
        .filter_map(|e| match &e.kind {
            EventKind::ChangeInvisibleResult { invisible_time, .. } => Some(*invisible_time),
            _ => None,
        })
        .collect();
    assert_eq!(nacks, vec![1_000, 1_000]);
    let decided: Vec<&str> = events(h, |k| matches!(k, EventKind::SentToDlq { .. }))
        .map(|e| &*e.node)
        .collect();
    assert_eq!(
        decided,
        vec!["proxy", "proxy"],
        "the proxy's filter decides"
    );
    assert_eq!(count(h, |k| matches!(k, EventKind::DlqWritten { .. })), 2);
    assert!(!out.failed(), "violated: {:?}", out.violated());
}

#[test]
fn the_proxy_renews_the_receipt_while_a_slow_listener_runs() {
    // A 70 s listener outlives the proxy's 60 s invisible time; the receipt-handle processor
    // renews it 10 s ahead (by one minute) and the ack goes out with the renewed handle.
    let src = GRPC_PUSH.replace(
        "start_at_ms = 1_000",
        "start_at_ms = 1_000\nconsume_time_ms = { min = 70_000, max = 70_000 }",
    );
    let out = run(&src, 3, &[]);
    let h = &out.history;
    let renewals: Vec<&reports::history::Event> =
        events(h, |k| matches!(k, EventKind::ChangeInvisibleResult { .. })).collect();
    assert_eq!(renewals.len(), 2, "one renewal per message");
    for r in &renewals {
        assert_eq!(&*r.node, "proxy");
        let EventKind::ChangeInvisibleResult {
            invisible_time,
            new_receipt,
            ..
        } = &r.kind
        else {
            unreachable!()
        };
        assert_eq!(*invisible_time, 60_000);
        assert!(new_receipt.is_some());
    }
    assert_eq!(
        count(h, |k| matches!(k, EventKind::Delivered { .. })),
        2,
        "not redelivered"
    );
    let acked: Vec<&str> = events(h, |k| matches!(k, EventKind::AckSent { .. }))
        .filter_map(|e| match &e.kind {
            EventKind::AckSent { receipt, .. } => Some(receipt.as_str()),
            _ => None,
        })
        .collect();
    // The two acks may go out in either order: each names one of the renewed handles.
    let mut renewed: Vec<&str> = renewals
        .iter()
        .filter_map(|r| match &r.kind {
            EventKind::ChangeInvisibleResult { new_receipt, .. } => new_receipt.as_deref(),
            _ => None,
        })
        .collect();
    let mut acked_sorted = acked.clone();
    renewed.sort_unstable();
    acked_sorted.sort_unstable();
    assert_eq!(acked_sorted, renewed, "acked with the renewed handles");
    assert!(!out.failed(), "violated: {:?}", out.violated());
}

const SIMPLE: &str = r#"
name = "simple"
duration_ms = 60_000
quiet_period_ms = 5_000

[[topics]]
name = "t"

[[groups]]
name = "g"

[[producers]]
name = "p1"
topic = "t"
messages = 3

[[consumers]]
name = "s1"
kind = "grpc-simple"
group = "g"
topic = "t"
pop_invisible_time_ms = 15_000
await_duration_ms = 5_000

[[steps]]
at_ms = 1_000
action = "pop"
consumer = "s1"
max = 3

[[steps]]
at_ms = 2_000
action = "change-invisible-time"
consumer = "s1"
invisible_time_ms = 30_000
count = 1

[[steps]]
at_ms = 3_000
action = "ack"
consumer = "s1"
count = 2

[[steps]]
at_ms = 20_000
action = "ack"
consumer = "s1"

[[steps]]
at_ms = 25_000
action = "pop"
consumer = "s1"
invisible_time_ms = 5_000
"#;

#[test]
fn grpc_simple_consumer_receives_changes_and_acks_on_steps() {
    let out = run(SIMPLE, 4, &[]);
    let h = &out.history;
    let calls: Vec<(GrpcRpc, Option<GrpcCode>)> =
        events(h, |k| matches!(k, EventKind::GrpcCall { .. }))
            .filter_map(|e| match &e.kind {
                EventKind::GrpcCall { rpc, outcome, .. } => Some((
                    *rpc,
                    match outcome {
                        GrpcOutcome::Status { code, .. } => Some(*code),
                        GrpcOutcome::Timeout => None,
                    },
                )),
                _ => None,
            })
            .collect();
    use GrpcCode::*;
    use GrpcRpc::*;
    assert_eq!(
        calls,
        vec![
            (ReceiveMessage, Some(Ok)),
            (ChangeInvisibleDuration, Some(Ok)),
            (AckMessage, Some(Ok)),
            (AckMessage, Some(Ok)),
            // The third message's 15 s receipt lapsed at 16 s: the proxy refuses it.
            (AckMessage, Some(InvalidReceiptHandle)),
            // 5 s is below minInvisibleTimeMillsForRecv (10 s).
            (ReceiveMessage, Some(IllegalInvisibleTime)),
        ]
    );
    // The changed one was acked with its new handle, and only the broker's answers count.
    assert_eq!(count(h, |k| matches!(k, EventKind::AckResult { .. })), 2);
}

#[test]
fn an_idle_push_consumer_long_polls_instead_of_spinning() {
    // The 20 messages are sent in the first second; while they arrive, each arrival wakes
    // the parked pop. Afterwards there is nothing to pop: the pop parks for its 15 s poll
    // time and is answered POLLING_TIMEOUT when it expires, and the client pops again at
    // once: a pop every 15 s, not one every 200 ms.
    let idle = BASIC.replace("duration_ms = 20_000", "duration_ms = 61_000");
    let out = run(&idle, 7, &[]);
    let h = &out.history;
    let parked_when_idle = events(h, |k| {
        matches!(
            k,
            EventKind::Broker(broker_core::BrokerEvent::PopParked { .. })
        )
    })
    .filter(|e| e.at > 2_000)
    .count();
    assert!(
        (3..=4).contains(&parked_when_idle),
        "one parked pop per 15 s: {parked_when_idle}"
    );
    let timeouts = events(h, |k| {
        matches!(
            k,
            EventKind::Broker(broker_core::BrokerEvent::PopWoken { reason, .. }) if reason == "timeout"
        )
    })
    .count();
    assert!((3..=4).contains(&timeouts), "{timeouts}");
    let pops_answered_empty = events(h, |k| {
        matches!(
            k,
            EventKind::Broker(broker_core::BrokerEvent::PopWoken { .. })
        )
    })
    .count();
    assert!(
        pops_answered_empty < 40,
        "no empty-pop spin: {pops_answered_empty}"
    );
}

const SCRIPTED: &str = r#"
name = "scripted"
duration_ms = 10_000
quiet_period_ms = 1_000

[[topics]]
name = "t"

[[groups]]
name = "g"

[[producers]]
name = "p1"
topic = "t"
messages = 5
interval_ms = 5

[[consumers]]
name = "c1"
kind = "scripted"
group = "g"
topic = "t"
init_mode = "min"

[[steps]]
at_ms = 1_000
action = "pop"
consumer = "c1"
max = 4

[[steps]]
at_ms = 2_000
action = "ack"
consumer = "c1"
all_but = 1

[[steps]]
at_ms = 3_000
action = "change-invisible-time"
consumer = "c1"
invisible_time_ms = 20_000

[[steps]]
at_ms = 4_000
action = "ack"
consumer = "c1"
batch = true
"#;

#[test]
fn scripted_consumer_acts_only_on_steps() {
    let out = run(SCRIPTED, 2, &[]);
    let h = &out.history;
    assert_eq!(count(h, |k| matches!(k, EventKind::Delivered { .. })), 4);
    let acks: Vec<(u64, String)> = h
        .events
        .iter()
        .filter_map(|e| match &e.kind {
            EventKind::AckSent { msg_id, .. } => Some((e.at, msg_id.to_string())),
            _ => None,
        })
        .collect();
    assert_eq!(acks.len(), 4);
    assert!(acks[..3].iter().all(|(at, _)| (2_000..3_000).contains(at)));
    assert!(acks[3].0 >= 4_000);
    let cit: Vec<_> = events(h, |k| matches!(k, EventKind::ChangeInvisibleResult { .. })).collect();
    assert_eq!(cit.len(), 1, "only the held receipt changes");
    let EventKind::ChangeInvisibleResult {
        new_receipt: Some(new),
        ..
    } = &cit[0].kind
    else {
        panic!(
            "change-invisible-time answered with a new receipt: {:?}",
            cit[0]
        );
    };
    // The batch ack uses the receipt the change returned.
    assert!(
        events(
            h,
            |k| matches!(k, EventKind::AckSent { receipt, .. } if receipt == new)
        )
        .count()
            == 1
    );
    for e in &h.events {
        if let EventKind::AckResult { outcome, .. } = &e.kind {
            assert!(answered(outcome, ResponseCode::Success), "{outcome:?}");
        }
    }
}

const OFFSETS: &str = r#"
name = "offsets"
duration_ms = 30_000
quiet_period_ms = 1_000

[[topics]]
name = "t"

[[groups]]
name = "g"

[[clients]]
name = "o1"
kind = "offset"

[[clients]]
name = "a1"
kind = "admin"

[[steps]]
at_ms = 1_000
action = "update-offset"
client = "o1"
mode = "oneway"
group = "g"
topic = "t"
queue = 0
offset = 0

[[steps]]
at_ms = 2_000
action = "update-offset"
client = "o1"
mode = "sync"
group = "g"
topic = "t"
offset = 0

[[steps]]
at_ms = 3_000
action = "update-offset"
client = "o1"
mode = "future"
group = "g"
topic = "t"
offset = 0

[[steps]]
at_ms = 4_000
action = "update-offset"
client = "o1"
mode = "future"
group = "g"
topic = "t"
queue = 0
offset = 0

[[steps]]
at_ms = 5_000
action = "reset-offset"
client = "a1"
group = "g"
topic = "t"
queue = 0
offset = 0

[[steps]]
at_ms = 6_000
action = "query-offset"
client = "o1"
group = "g"
topic = "t"
queue = 0
"#;

/// How an update ended: (outcome, caller_sees_success); `None` = never completed.
type Completion = Option<(Option<RpcOutcome>, bool)>;

/// Mode and completion per call id.
fn offset_calls(h: &reports::history::History) -> BTreeMap<u64, (OffsetUpdateMode, Completion)> {
    let mut calls = BTreeMap::new();
    for e in &h.events {
        match &e.kind {
            EventKind::OffsetUpdateStarted { call_id, mode, .. } => {
                calls.insert(*call_id, (mode.clone(), None));
            }
            EventKind::OffsetUpdateCompleted {
                call_id,
                outcome,
                caller_sees_success,
                ..
            } => {
                calls.get_mut(call_id).expect("started first").1 =
                    Some((outcome.clone(), *caller_sees_success));
            }
            _ => {}
        }
    }
    calls
}

#[test]
fn offset_client_modes_follow_upstream() {
    let out = run(OFFSETS, 1, &[]);
    let calls = offset_calls(&out.history);
    assert_eq!(calls.len(), 4);
    assert_eq!(calls[&1], (OffsetUpdateMode::Oneway, Some((None, true))));
    // A missing queueId is INVALID_PARAMETER: sync throws, the fixed future completes.
    let (mode, done) = &calls[&2];
    assert_eq!(*mode, OffsetUpdateMode::Sync);
    assert!(
        matches!(done, Some((Some(o), false)) if answered(o, ResponseCode::InvalidParameter)),
        "{done:?}"
    );
    let (mode, done) = &calls[&3];
    assert_eq!(*mode, OffsetUpdateMode::Future);
    assert!(
        matches!(done, Some((Some(o), false)) if answered(o, ResponseCode::InvalidParameter)),
        "{done:?}"
    );
    assert!(matches!(&calls[&4].1, Some((Some(o), true)) if answered(o, ResponseCode::Success)));
    let h = &out.history;
    assert_eq!(
        count(h, |k| matches!(k, EventKind::ResetRequested { .. })),
        1
    );
    assert!(events(h, |k| matches!(k, EventKind::ResetResult { outcome, .. } if answered(outcome, ResponseCode::Success))).count() == 1);

    // #10005: the unmapped INVALID_PARAMETER leaves the future pending forever.
    let bug = run(OFFSETS, 1, &[Behaviour::OffsetFutureUnmappedResponse]);
    let calls = offset_calls(&bug.history);
    assert_eq!(calls[&3].1, None, "never completed");
    assert!(calls[&2].1.is_some() && calls[&4].1.is_some());

    // Before #8368 there is no future API: a future update goes oneway (its future is
    // completed at once); the synchronous update existed and still throws.
    let old = run(OFFSETS, 1, &[Behaviour::OffsetUpdateOnewayOnly]);
    let calls = offset_calls(&old.history);
    for id in [1, 3, 4] {
        assert_eq!(
            calls[&id],
            (OffsetUpdateMode::Oneway, Some((None, true))),
            "call {id}"
        );
    }
    assert_eq!(calls[&2].0, OffsetUpdateMode::Sync);
    assert!(
        matches!(&calls[&2].1, Some((Some(o), false)) if answered(o, ResponseCode::InvalidParameter)),
        "{calls:?}"
    );
}

/// 32 producers sending back to back (each waits for its answer, as a sync send does):
/// about 2 400 requests per simulated second. The broker keeps up; madsim charges 1 ms per
/// receive, so a single receive loop would cap it near 1 000.
#[test]
fn the_broker_keeps_up_with_many_producers() {
    let mut src = String::from(
        "name = \"fast\"\nduration_ms = 6_000\nquiet_period_ms = 1_000\n\n[[topics]]\nname = \"t\"\nqueues = 4\n",
    );
    for i in 0..32 {
        src.push_str(&format!(
            "\n[[producers]]\nname = \"p{i}\"\ntopic = \"t\"\nmessages = 100\ninterval_ms = 1\n"
        ));
    }
    let h = run(&src, 1, &[]).history;
    assert_eq!(
        count(&h, |k| matches!(k, EventKind::ProduceFailed { .. })),
        0
    );
    assert_eq!(
        count(&h, |k| matches!(k, EventKind::Produced { .. })),
        3_200
    );
    let last = events(&h, |k| matches!(k, EventKind::Produced { .. }))
        .last()
        .unwrap();
    assert!(last.at < 3_000, "the last send answered at {} ms", last.at);
}

const SIMPLE_LOOP: &str = r#"
name = "simple-loop"
duration_ms = 30_000
quiet_period_ms = 5_000

[[topics]]
name = "t"
queues = 2

[[groups]]
name = "g"

[[producers]]
name = "p1"
topic = "t"
messages = 12
interval_ms = 20

[[consumers]]
name = "s1"
kind = "grpc-simple"
receive_loop = true
group = "g"
topic = "t"
pop_batch_nums = 4
pop_invisible_time_ms = 15_000
await_duration_ms = 5_000
consume_time_ms = { min = 5, max = 50 }
start_at_ms = 1_000
"#;

/// The messages a history's consumers acked with an `OK` answer, in ack order.
fn grpc_acked_ok(h: &reports::history::History) -> Vec<&str> {
    events(h, |k| {
        matches!(
            k,
            EventKind::GrpcCall {
                rpc: GrpcRpc::AckMessage,
                outcome: GrpcOutcome::Status {
                    code: GrpcCode::Ok,
                    ..
                },
                ..
            }
        )
    })
    .filter_map(|e| match &e.kind {
        EventKind::GrpcCall { msg_id, .. } => msg_id.as_deref(),
        _ => None,
    })
    .collect()
}

#[test]
fn a_looping_simple_consumer_receives_consumes_and_acks_everything() {
    for fifo in [false, true] {
        let src = if fifo {
            SIMPLE_LOOP.replace("receive_loop = true", "receive_loop = true\nfifo = true")
        } else {
            SIMPLE_LOOP.to_owned()
        };
        let out = run(&src, 6, &[]);
        let h = &out.history;
        let produced: BTreeSet<&str> = events(h, |k| matches!(k, EventKind::Produced { .. }))
            .filter_map(|e| match &e.kind {
                EventKind::Produced { msg_id, .. } => Some(msg_id.as_str()),
                _ => None,
            })
            .collect();
        assert_eq!(produced.len(), 12);
        let acked = grpc_acked_ok(h);
        assert_eq!(acked.len(), 12, "fifo {fifo}: one ack each");
        assert_eq!(acked.iter().copied().collect::<BTreeSet<_>>(), produced);
        // Each message: delivered, consumed, then acked, in the order received.
        let mut delivered = Vec::new();
        let mut started = Vec::new();
        for e in &h.events {
            match &e.kind {
                EventKind::Delivered {
                    msg_id,
                    orderly,
                    attempt_id,
                    ..
                } => {
                    assert_eq!(&*e.node, "s1");
                    assert_eq!(*orderly, fifo, "FIFO receives pop orderly");
                    assert!(attempt_id.is_none(), "a simple consumer sends no attemptId");
                    delivered.push(msg_id.as_str());
                }
                EventKind::ListenerStarted { msg_id, .. } => started.push(msg_id.as_str()),
                _ => {}
            }
        }
        assert_eq!(
            delivered, started,
            "fifo {fifo}: consumed in the order received"
        );
        assert_eq!(
            started, acked,
            "fifo {fifo}: each acked right after its listener"
        );
        assert!(
            h.events.iter().all(|e| !matches!(
                e.kind,
                EventKind::ListenerStarted { .. } if e.at < 1_000
            )),
            "nothing before start_at_ms"
        );
        assert!(!out.failed(), "fifo {fifo}: violated: {:?}", out.violated());
    }
}

#[test]
fn a_looping_simple_consumer_leaves_failures_to_come_back_after_the_invisible_time() {
    // retryMaxTimes 1: maxAttempts 2. Every listener run fails and the loop sends nothing:
    // the message comes back once its 15 s are up (reconsumeTimes 1), fails again, and on
    // its next revival the proxy forwards it to the DLQ instead of handing it out.
    let src = SIMPLE_LOOP
        .replace("duration_ms = 30_000", "duration_ms = 120_000")
        .replace("messages = 12", "messages = 4")
        .replace(
            "start_at_ms = 1_000",
            "start_at_ms = 1_000\nfailure_percent = 100\nmax_reconsume_times = 1",
        );
    let out = run(&src, 6, &[]);
    let h = &out.history;
    assert_eq!(
        count(h, |k| matches!(
            k,
            EventKind::GrpcCall {
                rpc: GrpcRpc::AckMessage | GrpcRpc::ChangeInvisibleDuration,
                ..
            }
        )),
        0,
        "a failure is neither acked nor nacked"
    );
    let mut deliveries: BTreeMap<&str, Vec<(u64, u32)>> = BTreeMap::new();
    for e in &h.events {
        if let EventKind::Delivered {
            msg_id,
            reconsume_times,
            ..
        } = &e.kind
        {
            deliveries
                .entry(msg_id.as_str())
                .or_default()
                .push((e.at, *reconsume_times));
        }
    }
    assert_eq!(deliveries.len(), 4);
    for (m, d) in &deliveries {
        assert_eq!(d.len(), 2, "{m}: delivered twice: {d:?}");
        assert_eq!((d[0].1, d[1].1), (0, 1), "{m}");
        assert!(
            d[1].0 - d[0].0 >= 15_000,
            "{m}: back only after its invisible time: {d:?}"
        );
    }
    assert_eq!(
        count(h, |k| matches!(
            k,
            EventKind::ListenerFinished {
                outcome: ConsumeOutcome::Failure,
                ..
            }
        )),
        8
    );
    let decided: Vec<&str> = events(h, |k| matches!(k, EventKind::SentToDlq { .. }))
        .map(|e| &*e.node)
        .collect();
    assert_eq!(decided, vec!["proxy"; 4], "the proxy's filter decides");
    assert!(!out.failed(), "violated: {:?}", out.violated());
}

#[test]
fn a_looping_simple_consumer_acks_late_and_the_proxy_refuses() {
    // A 20 s listener outlives the 15 s receipt: the ack still goes out, and the proxy
    // refuses the lapsed handle; the message comes back and is consumed again.
    let src = SIMPLE_LOOP
        .replace("duration_ms = 30_000", "duration_ms = 60_000")
        .replace("messages = 12", "messages = 1")
        .replace(
            "consume_time_ms = { min = 5, max = 50 }",
            "consume_time_ms = { min = 20_000, max = 20_000 }",
        );
    let out = run(&src, 6, &[]);
    let h = &out.history;
    let acks: Vec<Option<GrpcCode>> = events(h, |k| {
        matches!(
            k,
            EventKind::GrpcCall {
                rpc: GrpcRpc::AckMessage,
                ..
            }
        )
    })
    .map(|e| match &e.kind {
        EventKind::GrpcCall {
            outcome: GrpcOutcome::Status { code, .. },
            ..
        } => Some(*code),
        _ => None,
    })
    .collect();
    assert_eq!(
        acks.first(),
        Some(&Some(GrpcCode::InvalidReceiptHandle)),
        "{acks:?}"
    );
    assert!(count(h, |k| matches!(k, EventKind::Delivered { .. })) >= 2);
}

#[test]
fn a_looping_simple_consumer_honours_stop_and_start_steps() {
    // Stopped before its start, it receives nothing until started at 10 s, then consumes
    // everything.
    let src = format!(
        "{SIMPLE_LOOP}
[[steps]]
at_ms = 500
action = \"stop-consumer\"
consumer = \"s1\"

[[steps]]
at_ms = 10_000
action = \"start-consumer\"
consumer = \"s1\"
"
    );
    let out = run(&src, 6, &[]);
    let h = &out.history;
    let first = events(h, |k| matches!(k, EventKind::Delivered { .. }))
        .map(|e| e.at)
        .min();
    assert!(first.is_some_and(|t| t >= 10_000), "{first:?}");
    assert_eq!(grpc_acked_ok(h).len(), 12);
    assert!(!out.failed(), "violated: {:?}", out.violated());
}
