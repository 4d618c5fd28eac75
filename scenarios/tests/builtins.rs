//! Every built-in scenario loads, validates and replays what its name says.

use broker_core::Behaviour;
use scenarios::model::{Action, ConsumerKindSpec};
use scenarios::{builtin, builtin_source, builtins, resolve, Context, IssueKind};

/// The invariant checker's names (reports::invariant_names), as scenario files spell them.
pub const INVARIANTS: &[&str] = &[
    "no-loss",
    "no-redelivery-after-ack",
    "bounded-deliveries",
    "revive-bookkeeping",
    "reset-takes-effect",
    "reset-leaves-other-queues",
    "orderly-order",
    "orderly-commit-safety",
    "offset-commit-durable",
    "offset-api-liveness",
    "revive-progress",
    "fifo-progress",
    "delivery-integrity",
    "dlq-accounting",
];

fn ctx() -> Context {
    Context::with_invariants(INVARIANTS.iter().copied())
}

#[test]
fn every_builtin_loads_and_validates() {
    let list = builtins();
    assert_eq!(list.len(), 45);
    for (name, summary) in list {
        assert!(!summary.is_empty());
        let sc = resolve(name, &ctx()).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(sc.name, name, "a built-in's `name` is its file name");
        assert_eq!(builtin(name).as_ref(), Some(&sc));
        assert!((3..=5).contains(&sc.seeds.len()), "{name}: pin 3-5 seeds");
        assert!(
            builtin_source(name).is_some_and(|s| s.starts_with('#')),
            "{name}: timeline comment first"
        );
    }
}

#[test]
fn bug_scenarios_replay_and_expect_a_violation() {
    for (name, _) in builtins() {
        let sc = builtin(name).unwrap();
        if name == "mixed-workload" || name == "develop-random" {
            assert!(
                sc.replays.is_empty()
                    && sc.expect.with_bug.is_empty()
                    && sc.expect.fixed.is_empty()
            );
            continue;
        }
        if sc.is_finding() {
            // A finding: develop must be violated, the proposed fix (if any yet) must hold.
            assert!(
                sc.replays.is_empty() && !sc.expect.develop.is_empty(),
                "{name}"
            );
            for f in &sc.fixes {
                f.parse::<broker_core::Fix>().unwrap();
            }
            continue;
        }
        assert!(!sc.replays.is_empty(), "{name}");
        let rows = sc.bug_rows();
        assert!(!rows.is_empty(), "{name}");
        for row in rows {
            assert!(
                !row.violates.is_empty(),
                "{name}: a bug row must expect a violation"
            );
            for b in &row.bugs {
                b.parse::<Behaviour>().unwrap();
            }
        }
    }
}

#[test]
fn builtins_carry_the_documented_preconditions() {
    let a = builtin("orderly-reset-replay").unwrap();
    assert!(a.broker.pop_consumer_kv_service_enable);
    // The client #9369 was reported with: the gRPC FIFO push consumer through the proxy.
    assert!(a
        .consumers
        .iter()
        .any(|c| c.kind == ConsumerKindSpec::GrpcPush && c.fifo));
    for name in [
        "orderly-reset-random",
        "kv-reset-lock-inversion",
        "mixed-workload",
        "develop-random",
    ] {
        let sc = builtin(name).unwrap();
        assert!(
            sc.consumers
                .iter()
                .any(|c| c.kind == ConsumerKindSpec::GrpcPush && c.fifo),
            "{name}: the FIFO consumer is the gRPC push consumer"
        );
    }
    assert!(a.replays.contains(&"reset-commits-pull-offset".to_owned()));
    assert_eq!(
        a.expect.with_bug,
        ["reset-takes-effect", "no-redelivery-after-ack"]
    );

    let b = builtin("invisible-time-overrun").unwrap();
    let c = &b.consumers[0];
    assert_eq!(
        (c.pop_invisible_time_ms, c.max_reconsume_times),
        (10_000, 0)
    );
    assert!(c.consume_time_ms.min > c.pop_invisible_time_ms);
    assert_eq!(b.producers[0].messages, 1);

    let cc = builtin("late-ack-after-ck-flush").unwrap();
    assert!(cc.broker.enable_pop_buffer_merge);
    assert_eq!(
        cc.replays,
        [
            "buffered-ack-missing-broker-name",
            "revive-no-blank-broker-name-fallback"
        ]
    );
    // The last ack of the first CK falls between the 8.5 s addAk window and the 10 s flush.
    let pop = cc
        .steps
        .iter()
        .find(|s| matches!(s.action, Action::Pop { .. }))
        .unwrap()
        .at_ms;
    let acks: Vec<u64> = cc
        .steps
        .iter()
        .filter(|s| matches!(s.action, Action::Ack { .. }))
        .map(|s| s.at_ms)
        .collect();
    assert!(acks[0] - pop <= 8_500 - 1_000);
    assert!((8_500..10_000).contains(&(acks[1] - pop)));

    let d = builtin("offset-update-under-loss").unwrap();
    assert!(d.steps.iter().any(|s| matches!(
        &s.action,
        Action::UpdateOffset {
            mode: scenarios::model::UpdateMode::Future,
            queue: None,
            ..
        }
    )));

    let e = builtin("reset-before-first-subscribe").unwrap();
    let kinds: Vec<&str> = e
        .steps
        .iter()
        .map(|s| match s.action {
            Action::ResetOffset { .. } => "reset",
            Action::Crash => "crash",
            Action::Restart => "restart",
            _ => "other",
        })
        .collect();
    assert_eq!(kinds, ["reset", "reset", "crash", "restart"]);
    let restart = e.steps.last().unwrap().at_ms;
    assert!(e
        .consumers
        .iter()
        .filter(|c| c.group == "g-new")
        .all(|c| c.start_at_ms > restart));

    let m = builtin("mixed-workload").unwrap();
    assert_eq!(m.topics.len(), 2);
    assert!(m.topics.iter().all(|t| t.queues == 4));
    assert_eq!(m.groups.len(), 3);
    assert!(m
        .consumers
        .iter()
        .any(|c| c.kind == ConsumerKindSpec::GrpcPush && c.fifo));
    assert!(
        m.proxy.enable_batch_ack,
        "batch acks where they are real: the proxy's"
    );
    assert!(m.faults.loss_rate > 0.0 && m.faults.clog_every_ms > 0);
    assert!(m.quiet_period_ms > 0);
}

#[test]
fn resolve_reports_unknown_names_with_the_builtin_list() {
    let err = resolve("late-ack", &ctx()).unwrap_err();
    assert_eq!(err.exit_code(), 2);
    assert_eq!(err.issues()[0].kind, IssueKind::UnknownScenario);
    let msg = err.to_string();
    assert!(msg.starts_with("late-ack: "), "{msg}");
    for (name, _) in builtins() {
        assert!(msg.contains(name), "{msg}");
    }
}

#[test]
fn resolve_reads_files_and_reports_missing_ones() {
    let dir = env!("CARGO_MANIFEST_DIR");
    let sc = resolve(&format!("{dir}/tests/data/two-consumers.toml"), &ctx()).unwrap();
    assert_eq!(sc.name, "two-consumers");
    let err = resolve("tests/data/does-not-exist.toml", &ctx()).unwrap_err();
    assert_eq!(err.issues()[0].kind, IssueKind::Io);
    assert!(err
        .to_string()
        .starts_with("tests/data/does-not-exist.toml: cannot read the file"));
}

#[test]
fn user_written_files_load() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data");
    let mut n = 0;
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "toml") {
            scenarios::load_file(&path, &ctx()).unwrap_or_else(|e| panic!("{}", e.render()));
            n += 1;
        }
    }
    assert!(n >= 3);
}

/// The discovery swarm draws the store and timer faults: some seeds run with them, some
/// without, and the draw names them.
#[test]
fn develop_random_draws_the_store_and_timer_faults() {
    let sc = builtin("develop-random").unwrap();
    let mut lag = 0;
    let mut failing = 0;
    for seed in 0..40 {
        let (resolved, drawn) = scenarios::swarm::resolve(&sc, seed);
        let f = &resolved.faults;
        assert!(f.timer_lag_ms.min == 0 && f.timer_lag_ms.max <= 5_000);
        assert!((0.0..=0.05).contains(&f.store_put_failure_rate));
        lag += usize::from(f.timer_lag_ms.max > 0);
        failing += usize::from(f.store_put_failure_rate > 0.0);
        for key in ["faults.timer_lag_ms", "faults.store_put_failure_rate"] {
            assert!(drawn.iter().any(|d| d.key == key), "seed {seed}: {key}");
        }
    }
    assert!(
        (5..35).contains(&lag),
        "{lag} of 40 seeds with a lagging timer"
    );
    assert!(
        (5..35).contains(&failing),
        "{failing} of 40 seeds with failing puts"
    );
}

/// The swarm's looping SimpleConsumers draw their invisible time within the proxy's receive
/// range (a receive outside it is refused, so the consumer would never consume), while the
/// other consumers keep the swarm's whole range.
#[test]
fn develop_random_draws_a_looping_simple_consumers_invisible_time_the_proxy_accepts() {
    let sc = builtin("develop-random").unwrap();
    let mut below_for_others = 0;
    for seed in 0..60 {
        let (resolved, _) = scenarios::swarm::resolve(&sc, seed);
        let lo = resolved.proxy.min_invisible_time_mills_for_recv;
        let hi = resolved.proxy.max_invisible_time_mills;
        for c in &resolved.consumers {
            let t = c.pop_invisible_time_ms;
            if c.kind == ConsumerKindSpec::GrpcSimple && c.receive_loop {
                assert!((lo..=hi).contains(&t), "seed {seed}: {} draws {t}", c.name);
            } else {
                below_for_others += usize::from(t < lo);
            }
        }
    }
    assert!(
        below_for_others > 0,
        "the other consumers keep the swarm's range below the proxy's minimum"
    );
}

/// The discovery swarm reaches the dead-letter paths: on about half the seeds every group of
/// looping consumers draws a maxReconsumeTimes of 0..=3 (the default 16 attempts take longer
/// than a run), one value per group; the other seeds keep the default.
#[test]
fn develop_random_draws_a_max_reconsume_times_that_reaches_the_dlq_on_some_seeds() {
    let sc = builtin("develop-random").unwrap();
    let mut drawn = 0;
    for seed in 0..60 {
        let (resolved, _) = scenarios::swarm::resolve(&sc, seed);
        // The renewing consumer is drawn after this and keeps the default.
        let looping: Vec<_> = (resolved.consumers.iter())
            .filter(|c| !c.is_stepped() && c.name != scenarios::swarm::RENEWING_CONSUMER)
            .collect();
        if looping.iter().all(|c| c.max_reconsume_times == -1) {
            continue;
        }
        drawn += 1;
        for c in &looping {
            assert!(
                (0..=3).contains(&c.max_reconsume_times),
                "seed {seed}: {}",
                c.name
            );
            let mut same_group = looping.iter().filter(|o| o.group == c.group);
            assert!(
                same_group.all(|o| o.max_reconsume_times == c.max_reconsume_times),
                "seed {seed}: one value per group"
            );
        }
    }
    assert!((15..45).contains(&drawn), "{drawn} of 60 seeds draw it");
}

/// One develop-random seed in ten runs without any random fault, so the invariants promised
/// only without faults (bounded-deliveries) are judged in the swarm.
#[test]
fn develop_random_runs_some_seeds_without_random_faults() {
    let sc = builtin("develop-random").unwrap();
    let quiet = (0..200)
        .filter(|&seed| {
            let f = scenarios::swarm::resolve(&sc, seed).0.faults;
            f.loss_rate == 0.0
                && f.clog_every_ms == 0
                && f.crash_every_ms == 0
                && f.pause_every_ms == 0
                && f.reset_every_ms == 0
                && f.update_offset_every_ms == 0
                && f.timer_lag_ms.max == 0
                && f.store_put_failure_rate == 0.0
        })
        .count();
    assert!((8..=40).contains(&quiet), "{quiet} of 200 seeds are quiet");
}

/// On about half the develop-random seeds each producer has a late twin sending from
/// 30..150 s, so new messages meet the broker after the faults healed (the quiet period
/// begins at 80 s) and the liveness checks judge them.
#[test]
fn develop_random_sends_a_late_wave_on_half_the_seeds() {
    let sc = builtin("develop-random").unwrap();
    let mut late = 0;
    let mut after_quiet = 0;
    for seed in 0..100 {
        let resolved = scenarios::swarm::resolve(&sc, seed).0;
        let twins: Vec<_> = (resolved.producers.iter())
            .filter(|p| p.name.ends_with("-late"))
            .collect();
        if twins.is_empty() {
            continue;
        }
        late += 1;
        assert_eq!(twins.len(), sc.producers.len(), "seed {seed}");
        for t in twins {
            assert!((30_000..=150_000).contains(&t.start_at_ms), "seed {seed}");
            assert!((100..=2_000).contains(&t.interval_ms), "seed {seed}");
            after_quiet += usize::from(t.start_at_ms > sc.duration_ms - sc.quiet_period_ms);
        }
    }
    assert!((30..=70).contains(&late), "{late} of 100 seeds");
    assert!(after_quiet > 0, "some twins start after the faults stop");
}
