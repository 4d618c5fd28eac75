//! Findings traced on upstream develop that have no proposed fix yet (docs/findings.md):
//! each keeps its violation on develop and with every proposed fix on, and holds once the
//! one circumstance it needs is taken away. When a fix lands, the scenario moves to
//! `scenarios/findings/` as a built-in.

mod common;

use broker_core::{Behaviours, Fix};
use sim::{run_seed, RunOptions};

/// F16: a reset taken by an orderly pop, lost from OrderInfo in a crash.
const F16: &str = include_str!("data/findings/orderly-taken-reset-lost-orderinfo.toml");

fn violated(src: &str, seed: u64, every_fix: bool) -> Vec<&'static str> {
    let mut behaviours = Behaviours::fixed();
    if every_fix {
        for f in Fix::ALL {
            behaviours = behaviours.with_fix(f);
        }
    }
    let opts = RunOptions {
        behaviours,
        ..RunOptions::default()
    };
    let out = run_seed(&common::scenario(src), seed, &opts);
    assert!(out.panic.is_none(), "seed {seed}: {:?}", out.panic);
    out.violated()
}

#[test]
fn f16_a_taken_reset_lost_from_orderinfo_loses_the_replay() {
    for seed in 0..3 {
        for every_fix in [false, true] {
            assert_eq!(
                violated(F16, seed, every_fix),
                vec!["no-loss"],
                "seed {seed}, every fix {every_fix}"
            );
        }
    }
}

#[test]
fn f16_holds_without_the_crash_or_with_orderinfo_persisted_first() {
    let crash = "[[steps]]\nat_ms = 16_000\naction = \"crash\"\n\n[[steps]]\nat_ms = 17_000\naction = \"restart\"\n";
    assert!(F16.contains(crash));
    let no_crash = F16.replace(crash, "");
    // The crash after OrderInfo's next persist (20 s), the late ack after the restart.
    let later = F16
        .replace(
            "at_ms = 16_000\naction = \"crash\"",
            "at_ms = 21_000\naction = \"crash\"",
        )
        .replace(
            "at_ms = 17_000\naction = \"restart\"",
            "at_ms = 22_000\naction = \"restart\"",
        )
        .replace(
            "at_ms = 20_000\naction = \"ack\"",
            "at_ms = 25_000\naction = \"ack\"",
        );
    assert_ne!(later, F16);
    for seed in 0..3 {
        assert!(
            violated(&no_crash, seed, false).is_empty(),
            "no crash, seed {seed}"
        );
        assert!(
            violated(&later, seed, false).is_empty(),
            "crash after the persist, seed {seed}"
        );
    }
}
