//! Swarm exploration: random variants find their bug without scripted timing and nothing
//! with the fix, the committed regressions replay as recorded, and shrink writes a smaller
//! scenario that fails on its own.

use sim::explore::load_regressions;

/// The committed regressions files (the binary compiles in no path; the tests know theirs).
fn regressions_dir() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../scenarios/regressions")
}
use sim::{run_seed, sweep, RunOptions};

fn ctx() -> scenarios::Context {
    scenarios::Context::with_invariants(reports::invariant_names())
}

fn bugs(names: &[&str]) -> RunOptions {
    RunOptions {
        behaviours: names.iter().map(|b| b.parse().unwrap()).collect(),
        ..RunOptions::default()
    }
}

#[test]
fn a_random_variant_finds_its_bug_and_nothing_when_fixed() {
    let sc = scenarios::resolve("invisible-time-random", &ctx()).unwrap();
    let seeds: Vec<u64> = (0..40).collect();
    let on = sweep(
        &sc,
        &seeds,
        &bugs(&["pop-timeout-skips-max-reconsume"]),
        2,
        false,
    );
    assert!(on
        .iter()
        .any(|s| s.violated.contains(&"bounded-deliveries")));
    let off = sweep(&sc, &seeds, &RunOptions::default(), 2, false);
    assert!(off.iter().all(|s| !s.failed()), "fixed: nothing found");
}

#[test]
fn the_swarm_draw_is_printed_and_a_pure_function_of_the_seed() {
    let sc = scenarios::builtin("late-ack-random").unwrap();
    let a = sim::explore::describe_swarm(&sc, 9);
    assert_eq!(a, sim::explore::describe_swarm(&sc, 9));
    assert!(a.contains("consumers.c1.consume_time_ms"), "{a}");
    assert!(a.contains("baseline:   revive-no-blank-broker-name-fallback"));
    // The baseline is on in both rows.
    let opts = sim::explore::with_baseline(&RunOptions::default(), &sc);
    assert!(opts
        .behaviours
        .is_on(broker_core::Behaviour::ReviveNoBlankBrokerNameFallback));
}

/// Every committed regression replays as its file says: with its bugs on each recorded
/// invariant is still violated; with every fix in, nothing is; a finding (`fixed-by`) still
/// fails on develop and holds with its proposed fix.
#[test]
fn committed_regressions_replay() {
    let dir = regressions_dir();
    let mut replayed = 0;
    for (name, _) in scenarios::builtins() {
        let sc = scenarios::resolve(name, &ctx()).unwrap();
        for r in load_regressions(&dir, name).unwrap() {
            let line = r.line();
            if !r.fixed_by.is_empty() {
                // A finding: develop still violates it, and its proposed fix alone holds.
                let develop = run_seed(&sc, r.seed, &RunOptions::default());
                for v in &r.violates {
                    assert!(develop.violated().contains(&v.as_str()), "{name}: {line}");
                }
                let mut opts = RunOptions::default();
                for f in &r.fixed_by {
                    opts.behaviours.insert_fix(f.parse().unwrap());
                }
                let out = run_seed(&sc, r.seed, &opts);
                assert!(
                    !out.failed(),
                    "{name}: {line}: with its fix: {:?}",
                    out.violated()
                );
                replayed += 1;
                continue;
            }
            if !r.bugs.is_empty() {
                let out = run_seed(
                    &sc,
                    r.seed,
                    &bugs(&r.bugs.iter().map(String::as_str).collect::<Vec<_>>()),
                );
                for v in &r.violates {
                    assert!(out.violated().contains(&v.as_str()), "{name}: {line}");
                }
            }
            let fixed = run_seed(&sc, r.seed, &RunOptions::default());
            let allowed = &sc.expect.fixed;
            assert!(
                fixed.panic.is_none()
                    && fixed
                        .violated()
                        .iter()
                        .all(|v| allowed.iter().any(|a| a == v)),
                "{name}: {line}: fixed run violates {:?}",
                fixed.violated()
            );
            replayed += 1;
        }
    }
    assert!(replayed >= 3, "the repository commits regressions");
}

#[test]
fn shrink_writes_a_smaller_scenario_that_fails_alone() {
    let sc = scenarios::resolve("invisible-time-random", &ctx()).unwrap();
    let opts = bugs(&["pop-timeout-skips-max-reconsume"]);
    let out = sim::shrink::shrink(&sc, 8, &opts, None, 200).unwrap();
    assert_eq!(out.invariant, "bounded-deliveries");
    assert!(out.after.messages <= out.before.messages);
    assert!(out.after.duration_ms < out.before.duration_ms);
    let text = scenarios::to_toml(&out.scenario);
    let back = scenarios::load_str("shrunk.toml", &text, &ctx()).unwrap();
    assert!(back.swarm.as_ref().is_none_or(|s| !s.draws_anything()));
    let replay = bugs(&["pop-timeout-skips-max-reconsume"]);
    assert!(run_seed(&back, 8, &replay)
        .violated()
        .contains(&"bounded-deliveries"));
    // Deterministic: the same input shrinks to the same file.
    let again = sim::shrink::shrink(&sc, 8, &opts, None, 200).unwrap();
    assert_eq!(scenarios::to_toml(&again.scenario), text);
}

/// A seed that fails only with a proposed fix on (F5's open limit: its early CK put goes
/// through the timer, and a merged ack whose put failed is put again after its deliver time,
/// ahead of the CK): on develop the scan stores the CK directly, after its deliver time.
const FAILS_ONLY_WITH_THE_F5_FIX: &str = r#"
name = "f5-fix-early-ck-ack-re-put"
description = "F5's fix stores a buffered CK early through the timer; a merged ack whose put failed is put again after its deliver time, ahead of the CK."
duration_ms = 60_000
quiet_period_ms = 60_000
seeds = [5]

[broker]
enablePopBufferMerge = true
reviveQueueNum = 1
popCkStayBufferTimeOut = 847

[faults.latency_ms]
min = 5
max = 5

[scheduler]
preempt_percent = 0

[[topics]]
name = "t"

[[groups]]
name = "g"

[[producers]]
name = "p1"
topic = "t"

[[consumers]]
name = "c1"
kind = "scripted"
group = "g"
topic = "t"
init_mode = "min"

[[steps]]
at_ms = 100
action = "set-timer-lag"
lag_ms = 3_000

[[steps]]
at_ms = 500
action = "produce"
producer = "p1"
count = 3

[[steps]]
at_ms = 1_000
action = "pop"
consumer = "c1"
max = 3
invisible_time_ms = 8_000

[[steps]]
at_ms = 3_000
action = "ack"
consumer = "c1"
count = 1

[[steps]]
at_ms = 6_700
action = "set-store-put-failure-rate"
rate = 0.5

[[steps]]
at_ms = 6_800
action = "ack"
consumer = "c1"
count = 1

[[steps]]
at_ms = 6_808
action = "set-store-put-failure-rate"
rate = 1.0

[[steps]]
at_ms = 9_100
action = "set-store-put-failure-rate"
rate = 0.0

[[steps]]
at_ms = 20_000
action = "set-timer-lag"
lag_ms = 0

[expect]
develop = ["no-redelivery-after-ack"]
"#;

/// Shrinking a seed that fails with proposed fixes on checks every candidate with those fixes
/// on. Rerunning the candidates on develop, shrink refused this seed (it holds there), and on
/// a seed failing both ways it kept the develop failure and wrote a file that holds with the
/// fixes.
#[test]
fn shrink_with_fixes_on_checks_its_candidates_with_them() {
    let sc = scenarios::load_str("f5-fix.toml", FAILS_ONLY_WITH_THE_F5_FIX, &ctx()).unwrap();
    let mut fix = RunOptions::default();
    fix.behaviours
        .insert_fix("refused-ack-stores-its-ck".parse().unwrap());
    let seed = 5;
    assert!(
        !run_seed(&sc, seed, &RunOptions::default()).failed(),
        "holds on develop"
    );
    assert!(
        run_seed(&sc, seed, &fix)
            .violated()
            .contains(&"no-redelivery-after-ack"),
        "fails with the fix (if F5's limit is closed, this case needs another seed)"
    );
    let out = sim::shrink::shrink(&sc, seed, &fix, None, 100).unwrap();
    let text = scenarios::to_toml(&out.scenario);
    let back = scenarios::load_str("shrunk.toml", &text, &ctx()).unwrap();
    assert!(run_seed(&back, seed, &fix)
        .violated()
        .contains(&"no-redelivery-after-ack"));
    assert!(out.after.steps <= out.before.steps);
}

/// The committed shrunk example still fails alone, and holds with the fix.
#[test]
fn the_committed_shrunk_scenario_fails_alone() {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../scenarios/shrunk/late-ack-random-shrunk-2.toml"
    );
    let sc = scenarios::load_file(std::path::Path::new(path), &ctx()).unwrap();
    let on = run_seed(
        &sc,
        sc.seeds[0],
        &bugs(&["buffered-ack-missing-broker-name"]),
    );
    assert!(on.violated().contains(&"no-redelivery-after-ack"));
    assert!(!run_seed(&sc, sc.seeds[0], &RunOptions::default()).failed());
}
