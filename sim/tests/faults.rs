//! Faults: scripted crash/restart, clog, pause and loss, and random faults from the seed.

mod common;

use broker_core::BrokerEvent;
use common::*;
use reports::history::{EventKind, OffsetUpdateMode, RpcOutcome};

const CRASH: &str = r#"
name = "crash"
duration_ms = 30_000
quiet_period_ms = 5_000

[[topics]]
name = "t"

[[groups]]
name = "g"

[[clients]]
name = "o1"
kind = "offset"

[[steps]]
at_ms = 5_000
action = "crash"

[[steps]]
at_ms = 6_000
action = "update-offset"
client = "o1"
mode = "sync"
group = "g"
topic = "t"
queue = 0
offset = 3

[[steps]]
at_ms = 15_000
action = "restart"

[[steps]]
at_ms = 20_000
action = "update-offset"
client = "o1"
mode = "sync"
group = "g"
topic = "t"
queue = 0
offset = 4
"#;

#[test]
fn a_crashed_broker_answers_nothing_until_it_restarts() {
    let out = run(CRASH, 1, &[]);
    let h = &out.history;
    let f = faults(h);
    assert_eq!(
        f,
        vec![
            (5_000, "crash broker (scripted)".into()),
            (15_000, "restart broker (scripted)".into())
        ]
    );
    assert!(
        events(h, |k| matches!(
            k,
            EventKind::Broker(BrokerEvent::Crashed { .. })
        ))
        .count()
            == 1
    );
    assert!(
        events(h, |k| matches!(
            k,
            EventKind::Broker(BrokerEvent::Restarted { .. })
        ))
        .count()
            == 1
    );
    let outcomes: Vec<(u64, RpcOutcome)> = h
        .events
        .iter()
        .filter_map(|e| match &e.kind {
            EventKind::OffsetUpdateCompleted {
                outcome: Some(o), ..
            } => Some((e.at, o.clone())),
            _ => None,
        })
        .collect();
    assert_eq!(outcomes.len(), 2);
    assert_eq!(outcomes[0].1, RpcOutcome::Timeout, "no answer while down");
    assert!(outcomes[0].0 >= 11_000, "after the sync timeout");
    assert!(
        matches!(outcomes[1].1, RpcOutcome::Answered { .. }),
        "answers after the restart"
    );
}

const NET: &str = r#"
name = "net"
duration_ms = 40_000
quiet_period_ms = 5_000

[[topics]]
name = "t"

[[groups]]
name = "g"

[[clients]]
name = "o1"
kind = "offset"

[[steps]]
at_ms = 1_000
action = "clog"
node = "o1"

[[steps]]
at_ms = 1_500
action = "update-offset"
client = "o1"
mode = "future"
group = "g"
topic = "t"
queue = 0
offset = 1

[[steps]]
at_ms = 6_000
action = "unclog"
node = "o1"

[[steps]]
at_ms = 7_000
action = "pause"
node = "o1"
duration_ms = 2_000

[[steps]]
at_ms = 8_000
action = "update-offset"
client = "o1"
mode = "future"
group = "g"
topic = "t"
queue = 0
offset = 2

[[steps]]
at_ms = 15_000
action = "set-loss"
rate = 1.0

[[steps]]
at_ms = 16_000
action = "update-offset"
client = "o1"
mode = "sync"
group = "g"
topic = "t"
queue = 0
offset = 3
"#;

#[test]
fn clog_pause_and_loss() {
    let out = run(NET, 4, &[]);
    let h = &out.history;
    let f: Vec<String> = faults(h).into_iter().map(|(_, d)| d).collect();
    assert_eq!(
        f,
        [
            "clog o1 (scripted)",
            "unclog o1 (scripted)",
            "pause o1 for 2000 ms (scripted)",
            "resume o1 (scripted)",
            "packet loss 1 (scripted)"
        ]
    );
    let done: Vec<(u64, u64, Option<RpcOutcome>)> = h
        .events
        .iter()
        .filter_map(|e| match &e.kind {
            EventKind::OffsetUpdateCompleted {
                call_id, outcome, ..
            } => Some((*call_id, e.at, outcome.clone())),
            _ => None,
        })
        .collect();
    assert_eq!(done[0].0, 1);
    assert_eq!(done[0].2, Some(RpcOutcome::Timeout), "clogged: no answer");
    // The update started during the pause is sent only once the node resumes.
    let started2 = events(h, |k| {
        matches!(k, EventKind::OffsetUpdateStarted { call_id: 2, .. })
    })
    .next()
    .unwrap();
    assert!(started2.at >= 9_000, "{started2:?}");
    assert!(matches!(done[1].2, Some(RpcOutcome::Answered { .. })));
    assert_eq!(done[2].2, Some(RpcOutcome::Timeout), "everything lost");
    assert!(
        events(h, |k| matches!(
            k,
            EventKind::OffsetUpdateStarted {
                mode: OffsetUpdateMode::Sync,
                ..
            }
        ))
        .count()
            == 1
    );
}

const RANDOM: &str = r#"
name = "random-faults"
duration_ms = 120_000
quiet_period_ms = 30_000

[[topics]]
name = "t"
queues = 2

[[groups]]
name = "g"

[[producers]]
name = "p1"
topic = "t"
messages = 200
interval_ms = 200

[[consumers]]
name = "c1"
kind = "concurrent"
group = "g"
topic = "t"
init_mode = "min"
pop_invisible_time_ms = 20_000

[faults]
loss_rate = 0.05
latency_ms = { min = 2, max = 20 }
clog_every_ms = 10_000
clog_duration_ms = { min = 500, max = 3_000 }
crash_every_ms = 30_000
restart_after_ms = { min = 1_000, max = 4_000 }
pause_every_ms = 15_000
pause_duration_ms = { min = 200, max = 1_500 }
"#;

#[test]
fn random_faults_come_from_the_seed_and_stop_at_the_quiet_period() {
    let a = run(RANDOM, 11, &[]);
    let f = faults(&a.history);
    assert!(f.iter().any(|(_, d)| d.starts_with("clog ")), "{f:?}");
    assert!(f.iter().any(|(_, d)| d.starts_with("pause ")), "{f:?}");
    assert!(
        f.iter().all(|(at, _)| *at <= 90_000),
        "healed by the quiet period: {f:?}"
    );
    let injected = |p: &str| f.iter().filter(|(_, d)| d.starts_with(p)).count();
    assert_eq!(injected("clog "), injected("unclog "));
    assert_eq!(injected("crash "), injected("restart "));
    assert_eq!(injected("pause "), injected("resume "));
    assert!(a.history.meta.faulty);
    let b = run(RANDOM, 11, &[]);
    assert_eq!(faults(&b.history), f, "same seed, same faults");
    let c = run(RANDOM, 12, &[]);
    assert_ne!(faults(&c.history), f, "another seed, other faults");
}

/// `shutdown_percent`: that share of the random stops are graceful shutdowns, at the times
/// the crashes came (the kind has a stream of its own, so nothing else moves).
#[test]
fn a_share_of_the_random_stops_are_graceful_shutdowns() {
    let stops = |src: &str, seed| -> Vec<(u64, String)> {
        faults(&run(src, seed, &[]).history)
            .into_iter()
            .filter(|(_, d)| d.starts_with("crash ") || d.starts_with("shutdown "))
            .collect()
    };
    let every = RANDOM.replace(
        "restart_after_ms = { min = 1_000, max = 4_000 }",
        "restart_after_ms = { min = 1_000, max = 4_000 }\nshutdown_percent = 100",
    );
    let half = every.replace("shutdown_percent = 100", "shutdown_percent = 50");
    assert_ne!(every, RANDOM);
    let (mut crashes, mut shutdowns) = (0, 0);
    for seed in 0..6 {
        let crash = stops(RANDOM, seed);
        let graceful = stops(&every, seed);
        assert!(crash.iter().all(|(_, d)| d.starts_with("crash ")));
        assert!(graceful.iter().all(|(_, d)| d.starts_with("shutdown ")));
        // The first stop comes at the same time whatever its kind.
        assert_eq!(crash.first().map(|s| s.0), graceful.first().map(|s| s.0));
        for (_, d) in stops(&half, seed) {
            if d.starts_with("crash ") {
                crashes += 1;
            } else {
                shutdowns += 1;
            }
        }
    }
    assert!(
        crashes > 0 && shutdowns > 0,
        "{crashes} crashes, {shutdowns} shutdowns"
    );
}
