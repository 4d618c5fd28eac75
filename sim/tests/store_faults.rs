//! The store and timer faults, the store's environment and a graceful shutdown, end to end:
//! each changes the outcome of a seed it hits.

mod common;

use broker_core::{Behaviour, BrokerEvent, ResponseCode};
use common::*;
use reports::history::{EventKind, History};
use reports::invariants::Status;

fn verdict(h: &History, name: &str) -> Status {
    reports::invariants::check(h, &[])
        .into_iter()
        .find(|r| r.name == name)
        .expect("an invariant of that name")
        .status
}

fn revived_at(h: &History) -> Vec<u64> {
    events(h, |k| {
        matches!(k, EventKind::Broker(BrokerEvent::Revived { .. }))
    })
    .map(|e| e.at)
    .collect()
}

fn workload(faults: &str) -> String {
    format!(
        r#"
name = "store-faults"
duration_ms = 120_000
quiet_period_ms = 70_000

[[topics]]
name = "t"

[[groups]]
name = "g"

[[producers]]
name = "p"
topic = "t"
messages = 40
interval_ms = 200

[[consumers]]
name = "c"
kind = "concurrent"
group = "g"
topic = "t"
pop_invisible_time_ms = 10_000
pop_batch_nums = 4
init_mode = "min"

[faults]
{faults}
"#
    )
}

#[test]
fn failing_store_puts_turn_an_ack_into_a_redelivery() {
    let clean = workload("");
    let failing = workload("store_put_failure_rate = 0.2");
    let mut hit = false;
    for seed in 1..=8 {
        let h = run(&failing, seed, &[]).history;
        let ack_failed = events(&h, |k| {
            matches!(k, EventKind::Broker(BrokerEvent::StorePutFailed { site, .. })
                if site == "AckMessageProcessor.appendAck")
        })
        .count();
        if ack_failed == 0 {
            continue;
        }
        hit = true;
        assert!(h.meta.faulty);
        assert_eq!(
            verdict(&h, "no-redelivery-after-ack"),
            Status::Violated,
            "seed {seed}: an ACK put failed, was answered SUCCESS, and the CK revived"
        );
        let base = run(&clean, seed, &[]).history;
        assert_eq!(verdict(&base, "no-redelivery-after-ack"), Status::Held);
        assert_eq!(
            count(&base, |k| matches!(
                k,
                EventKind::Broker(BrokerEvent::StorePutFailed { .. })
            )),
            0
        );
        break;
    }
    assert!(hit, "no seed in 1..=8 failed an ACK put");
}

fn one_unacked(faults: &str) -> String {
    format!(
        r#"
name = "timer-lag"
duration_ms = 60_000
quiet_period_ms = 30_000

[[topics]]
name = "t"

[[groups]]
name = "g"

[[producers]]
name = "p"
topic = "t"

[[consumers]]
name = "c"
kind = "scripted"
group = "g"
topic = "t"
init_mode = "min"

[[steps]]
at_ms = 500
action = "produce"
producer = "p"

[[steps]]
at_ms = 1_000
action = "pop"
consumer = "c"
max = 1
invisible_time_ms = 5_000

[faults]
{faults}
"#
    )
}

#[test]
fn a_lagging_timer_holds_revives_back_until_it_catches_up() {
    let seed = 3;
    let base = revived_at(&run(&one_unacked(""), seed, &[]).history);
    assert_eq!(base.len(), 1);
    assert!(base[0] < 12_000, "{base:?}");
    // A lag of 1.5 s to 2 s: getDequeueBehind() ≥ 1 keeps endTime still, and nothing else
    // comes to push it: no revive until the lag ends with the quiet period (30 s).
    let lagging = revived_at(
        &run(
            &one_unacked("timer_lag_ms = { min = 1_500, max = 2_000 }"),
            seed,
            &[],
        )
        .history,
    );
    assert_eq!(lagging.len(), 1);
    assert!(lagging[0] >= 30_000, "{lagging:?}");
}

#[test]
fn a_scripted_timer_lag_does_the_same() {
    let src = one_unacked("").replace(
        "[faults]",
        "[[steps]]\nat_ms = 1_200\naction = \"set-timer-lag\"\nlag_ms = 1_500\n\n[[steps]]\nat_ms = 25_000\naction = \"set-timer-lag\"\nlag_ms = 0\n\n[faults]",
    );
    let h = run(&src, 1, &[]).history;
    let at = revived_at(&h);
    assert_eq!(at.len(), 1);
    assert!(at[0] >= 25_000, "{at:?}");
    assert!(faults(&h)
        .iter()
        .any(|(_, d)| d == "timer lag 1500 ms (scripted)"));
}

fn late_group(faults: &str) -> String {
    format!(
        r#"
name = "late-group"
duration_ms = 30_000
quiet_period_ms = 10_000

[[topics]]
name = "t"

[[groups]]
name = "g"

[[producers]]
name = "p"
topic = "t"
messages = 5
interval_ms = 10

[[consumers]]
name = "c"
kind = "concurrent"
group = "g"
topic = "t"
start_at_ms = 5_000
init_mode = "max"

[faults]
{faults}
"#
    )
}

fn delivered(h: &History) -> usize {
    count(h, |k| matches!(k, EventKind::Delivered { .. }))
}

#[test]
fn page_cache_and_retention_decide_where_a_new_group_starts() {
    assert_eq!(
        delivered(&run(&late_group(""), 1, &[]).history),
        5,
        "from 0: in memory"
    );
    assert_eq!(
        delivered(&run(&late_group("page_cache_ms = 1_000"), 1, &[]).history),
        1,
        "paged out: max − 1"
    );
    let h = run(&late_group("retention_ms = 2_000"), 1, &[]).history;
    assert!(
        count(&h, |k| matches!(
            k,
            EventKind::Broker(BrokerEvent::MessagesExpired { .. })
        )) > 0
    );
    assert_eq!(delivered(&h), 0, "nothing left to pop");
}

fn buffered_ack_then(stop: &str) -> String {
    format!(
        r#"
name = "stop"
duration_ms = 60_000
quiet_period_ms = 30_000

[broker]
enablePopBufferMerge = true

[[topics]]
name = "t"

[[groups]]
name = "g"

[[producers]]
name = "p"
topic = "t"

[[consumers]]
name = "c"
kind = "scripted"
group = "g"
topic = "t"
init_mode = "min"

[[steps]]
at_ms = 500
action = "produce"
producer = "p"
count = 2

[[steps]]
at_ms = 1_000
action = "pop"
consumer = "c"
max = 2
invisible_time_ms = 20_000

[[steps]]
at_ms = 2_000
action = "ack"
consumer = "c"
count = 1

[[steps]]
at_ms = 3_000
action = "{stop}"

[[steps]]
at_ms = 4_000
action = "restart"

[[steps]]
at_ms = 40_000
action = "pop"
consumer = "c"
max = 2
"#
    )
}

#[test]
fn a_shutdown_keeps_what_a_crash_loses() {
    // Crash: the buffered CK and its merged ack die with the process, and the commit was
    // never flushed; the restart reads both messages again, the acked one included.
    let crashed = run(&buffered_ack_then("crash"), 1, &[]).history;
    assert_eq!(delivered(&crashed), 4);
    // Shutdown: the CK and the ack are stored and the commit persisted; only the un-acked
    // message comes back, revived.
    let stopped = run(&buffered_ack_then("shutdown"), 1, &[]).history;
    assert_eq!(delivered(&stopped), 3);
    assert_eq!(revived_at(&stopped).len(), 1);
    assert!(faults(&stopped)
        .iter()
        .any(|(_, d)| d == "shutdown broker (scripted)"));
    assert!(events(&stopped, |k| matches!(
        k,
        EventKind::Broker(BrokerEvent::Crashed { graceful: true, .. })
    ))
    .next()
    .is_some());
}

#[test]
fn a_full_request_queue_answers_system_busy_and_the_old_future_never_completes() {
    let sc = scenarios::builtin("offset-update-under-loss").unwrap();
    let src = scenarios::builtin_source("offset-update-under-loss").unwrap();
    assert!(sc.scheduler.queue_capacity > 0);
    let busy = |h: &History| {
        count(h, |k| {
            matches!(k,
            EventKind::OffsetUpdateCompleted { outcome: Some(o), .. } if answered(o, ResponseCode::SystemBusy))
        })
    };
    let fixed = run(src, 1, &[]).history;
    assert!(
        busy(&fixed) >= 1,
        "the update that found the queue full is answered SYSTEM_BUSY"
    );
    assert_eq!(verdict(&fixed, "offset-api-liveness"), Status::Held);
    // 5.3.1: the null updates are SYSTEM_ERROR (mapped); only SYSTEM_BUSY hangs.
    let v531 = run(
        src,
        1,
        &[
            Behaviour::OffsetFutureUnmappedResponse,
            Behaviour::UpdateOffsetNullAnswersSystemError,
        ],
    )
    .history;
    assert_eq!(busy(&v531), 0, "that future never completes");
    assert_eq!(verdict(&v531, "offset-api-liveness"), Status::Violated);
}
