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
kind = "orderly"
group = "go"
topic = "t"
init_mode = "min"
pop_invisible_time_ms = 10_000

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
