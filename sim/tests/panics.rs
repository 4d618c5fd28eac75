//! A panic inside the simulation is a failed seed that names the node; a sweep goes on.

mod common;

use common::*;
use scenarios::model::{Action, Step};
use sim::{run_seed, sweep, RunOptions};

/// A scenario the loader would reject (a step names a consumer that does not exist), built
/// by hand so the world itself panics on the controller's node.
fn broken() -> scenarios::Scenario {
    let mut sc = scenario(
        r#"
name = "broken"
duration_ms = 5_000
quiet_period_ms = 1_000

[[topics]]
name = "t"
"#,
    );
    sc.steps.push(Step {
        at_ms: 1_000,
        action: Action::Ack {
            consumer: "ghost".into(),
            count: None,
            all_but: None,
            batch: false,
            skip: 0,
        },
    });
    sc
}

#[test]
fn a_panic_is_a_failed_seed_with_its_node() {
    let out = run_seed(&broken(), 5, &RunOptions::default());
    let p = out.panic.as_ref().expect("the run panicked");
    assert!(
        p.message.contains("no scripted consumer named `ghost`"),
        "{p}"
    );
    assert_eq!(p.node.as_deref(), Some("madsim-main"), "{p}");
    assert!(out.failed());
    assert!(out.results.is_empty());
}

#[test]
fn a_sweep_goes_on_after_a_panic() {
    let seeds = [1, 2, 3];
    let out = sweep(&broken(), &seeds, &RunOptions::default(), 2, false);
    assert_eq!(out.len(), 3);
    assert!(out.iter().all(|s| s.panic.is_some()));
}
