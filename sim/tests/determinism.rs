//! Same seed, same history, byte for byte; and a sweep reports the same failing seeds
//! whatever the number of workers.

mod common;

use broker_core::Behaviour;
use common::*;
use sim::{run_seed, sweep, RunOptions};

const WORKLOAD: &str = r#"
name = "determinism"
duration_ms = 60_000
quiet_period_ms = 15_000

[[topics]]
name = "t"
queues = 3

[[groups]]
name = "g"

[[groups]]
name = "go"

[[producers]]
name = "p1"
topic = "t"
messages = 60
interval_ms = 100

[[consumers]]
name = "c1"
kind = "concurrent"
group = "g"
topic = "t"
init_mode = "min"
pop_invisible_time_ms = 10_000
consume_time_ms = { min = 10, max = 12_000 }
failure_percent = 20

[[consumers]]
name = "c2"
kind = "grpc-push"
fifo = true
group = "go"
topic = "t"

[faults]
loss_rate = 0.05
clog_every_ms = 8_000
crash_every_ms = 20_000
pause_every_ms = 10_000
"#;

#[test]
fn same_seed_same_history_hash() {
    let sc = scenario(WORKLOAD);
    let opts = RunOptions::default();
    let a = run_seed(&sc, 99, &opts);
    let b = run_seed(&sc, 99, &opts);
    assert!(a.panic.is_none(), "{:?}", a.panic);
    assert_eq!(a.hash, b.hash);
    assert_eq!(a.history, b.history);
    // The hash comes from the digest the recorder fed event by event.
    assert_eq!(a.hash, a.history.hash());
    let c = run_seed(&sc, 100, &opts);
    assert_ne!(a.hash, c.hash, "the seed matters");
}

#[test]
fn jobs_do_not_change_the_failing_seeds() {
    let sc = scenario(WORKLOAD);
    let opts = RunOptions {
        behaviours: [Behaviour::PopTimeoutSkipsMaxReconsume]
            .into_iter()
            .collect(),
        ..RunOptions::default()
    };
    let seeds: Vec<u64> = (0..8).collect();
    let one = sweep(&sc, &seeds, &opts, 1, false);
    let two = sweep(&sc, &seeds, &opts, 2, false);
    assert_eq!(one, two);
    assert_eq!(
        one.iter().map(|s| s.seed).collect::<Vec<_>>(),
        seeds,
        "ordered by seed"
    );
}

// ---------------------------------------------------------------------------------------
// Proofs over the built-in scenarios, and a guard that shows the proofs can fail.

/// The seeds of `seeds` whose two runs under `driver` gave different history hashes.
/// `driver` runs one seed and returns its history hash.
fn replay_mismatches(driver: impl Fn(u64) -> u64, seeds: &[u64]) -> Vec<u64> {
    seeds
        .iter()
        .copied()
        .filter(|&s| driver(s) != driver(s))
        .collect()
}

/// Options for a built-in's first bug row (its behaviours on), or every fix in.
fn builtin_options(sc: &scenarios::Scenario, bug: bool) -> RunOptions {
    let behaviours = match sc.bug_rows().into_iter().next() {
        Some(row) if bug => row
            .bugs
            .iter()
            .map(|b| b.parse::<Behaviour>().expect("a known behaviour"))
            .collect(),
        _ => Default::default(),
    };
    RunOptions {
        behaviours,
        ..RunOptions::default()
    }
}

/// For two pinned seeds of every built-in (one with its bug on, one with every fix in): two
/// runs give the same history hash, and so do sweeps on one and on two workers.
#[test]
fn every_builtin_replays_identically_across_runs_jobs_and_sweeps() {
    let ctx = scenarios::Context::with_invariants(reports::invariant_names());
    for (name, _) in scenarios::builtins() {
        let sc = scenarios::resolve(name, &ctx).unwrap();
        let mut seeds = sc.seeds.clone();
        seeds.truncate(2);
        for (k, &seed) in seeds.iter().enumerate() {
            let opts = builtin_options(&sc, k == 0);
            let bad = replay_mismatches(|s| run_seed(&sc, s, &opts).hash, &[seed]);
            assert!(bad.is_empty(), "{name}: seed {seed} replayed differently");
            let run = run_seed(&sc, seed, &opts).hash;
            for jobs in [1, 2] {
                let swept = sweep(&sc, &[seed, seed + 1], &opts, jobs, false);
                assert_eq!(
                    swept[0].hash, run,
                    "{name}: seed {seed}, sweep --jobs {jobs}"
                );
                assert!(swept[0].panic.is_none(), "{name}: {:?}", swept[0].panic);
            }
        }
    }
}

/// Eight consumers, so that the order the world creates them in shows in the history.
const EIGHT_CONSUMERS: &str = r#"
name = "guard"
duration_ms = 6_000
quiet_period_ms = 1_000

[[topics]]
name = "t"
queues = 2

[[groups]]
name = "g"

[[producers]]
name = "p"
topic = "t"
messages = 16
interval_ms = 50

[[consumers]]
name = "c1"
kind = "concurrent"
group = "g"
topic = "t"
init_mode = "min"

[[consumers]]
name = "c2"
kind = "concurrent"
group = "g"
topic = "t"
init_mode = "min"

[[consumers]]
name = "c3"
kind = "concurrent"
group = "g"
topic = "t"
init_mode = "min"

[[consumers]]
name = "c4"
kind = "concurrent"
group = "g"
topic = "t"
init_mode = "min"

[[consumers]]
name = "c5"
kind = "concurrent"
group = "g"
topic = "t"
init_mode = "min"

[[consumers]]
name = "c6"
kind = "concurrent"
group = "g"
topic = "t"
init_mode = "min"

[[consumers]]
name = "c7"
kind = "concurrent"
group = "g"
topic = "t"
init_mode = "min"

[[consumers]]
name = "c8"
kind = "concurrent"
group = "g"
topic = "t"
init_mode = "min"
"#;

/// The guard can fail: a test-only driver that passes the consumers through a `HashMap`
/// with a fresh, randomly keyed hasher (made outside the simulation, so madsim cannot seed
/// it) introduces exactly the nondeterminism the proofs above must catch, and they do. The
/// same driver with a `BTreeMap` passes.
#[test]
fn the_replay_guard_catches_a_randomly_seeded_hashmap() {
    use std::collections::{BTreeMap, HashMap};
    let sc = scenario(EIGHT_CONSUMERS);
    let opts = RunOptions::default();
    let seeds = [1, 2, 3];
    let hashed = |seed: u64| {
        let mut sc = sc.clone();
        let by_name: HashMap<String, _> = sc
            .consumers
            .drain(..)
            .map(|c| (c.name.clone(), c))
            .collect();
        sc.consumers.extend(by_name.into_values());
        run_seed(&sc, seed, &opts).hash
    };
    let caught = replay_mismatches(hashed, &seeds);
    assert!(
        !caught.is_empty(),
        "a randomly ordered node list went unnoticed on seeds {seeds:?}"
    );
    let ordered = |seed: u64| {
        let mut sc = sc.clone();
        let by_name: BTreeMap<String, _> = sc
            .consumers
            .drain(..)
            .map(|c| (c.name.clone(), c))
            .collect();
        sc.consumers.extend(by_name.into_values());
        run_seed(&sc, seed, &opts).hash
    };
    assert_eq!(replay_mismatches(ordered, &seeds), Vec::<u64>::new());
}

/// The binary agrees with itself: `run` and `sweep` report the same history hash for a
/// seed, and `sweep --jobs 1` and `--jobs 2` print the same lines.
#[test]
fn the_cli_reports_the_same_hash_from_run_and_sweep() {
    let popsim = |args: &[&str]| {
        let o = std::process::Command::new(env!("CARGO_BIN_EXE_popsim"))
            .args(args)
            .env_remove("MADSIM_TEST_SEED")
            .output()
            .expect("popsim runs");
        String::from_utf8(o.stdout).unwrap()
    };
    let sc = "late-ack-after-ck-flush";
    let run: serde_json::Value =
        serde_json::from_str(&popsim(&["run", sc, "--seed", "2", "--format", "json"])).unwrap();
    let one = popsim(&[
        "sweep", sc, "--seeds", "1..4", "--format", "json", "--jobs", "1",
    ]);
    let two = popsim(&[
        "sweep", sc, "--seeds", "1..4", "--format", "json", "--jobs", "2",
    ]);
    // Every line but the summary's timing field.
    let untimed = |out: &str| -> Vec<serde_json::Value> {
        out.lines()
            .map(|l| {
                let mut v: serde_json::Value = serde_json::from_str(l).unwrap();
                if let Some(o) = v.as_object_mut() {
                    o.remove("wall_s");
                }
                v
            })
            .collect()
    };
    assert_eq!(untimed(&one), untimed(&two));
    let seed2: serde_json::Value = one
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .find(|l| l["seed"] == 2)
        .unwrap();
    assert_eq!(run["report"]["history_hash"], seed2["history_hash"]);
}

/// The broker's scheduler decides interleavings from the seed alone: a scenario whose
/// outcome depends on the interleaving (two KV pops racing over a reset, finding F4) gives
/// the same history every time a seed is run, and different seeds really do interleave
/// differently (they break different invariants).
#[test]
fn the_same_seed_gives_the_same_interleaving() {
    let sc = scenarios::builtin("kv-reset-lock-inversion").expect("built in");
    let opts = RunOptions::default();
    let mut outcomes = std::collections::BTreeSet::new();
    for seed in 0..6 {
        let a = run_seed(&sc, seed, &opts);
        let b = run_seed(&sc, seed, &opts);
        assert_eq!(a.hash, b.hash, "seed {seed}: same seed, same interleaving");
        assert_eq!(a.history.events, b.history.events);
        outcomes.insert(a.violated());
    }
    assert!(
        outcomes.len() >= 2,
        "the outcome depends on the schedule: {outcomes:?}"
    );
}
