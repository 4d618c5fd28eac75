//! Shared helpers for the simulation tests.
#![allow(dead_code)]

use broker_core::{Behaviour, Behaviours, Fix, ResponseCode};
use reports::history::{Event, EventKind, History, RpcOutcome};
use scenarios::Scenario;
use sim::{run_seed, RunOptions, RunOutcome};

/// Parses an inline scenario (validated like a file).
pub fn scenario(src: &str) -> Scenario {
    scenarios::load_str("test.toml", src, &scenarios::Context::default())
        .unwrap_or_else(|e| panic!("test scenario does not load:\n{}", e.render()))
}

/// Runs `src` on `seed` with `bugs` on; fails the test on a panic inside the simulation.
pub fn run(src: &str, seed: u64, bugs: &[Behaviour]) -> RunOutcome {
    let sc = scenario(src);
    let opts = RunOptions {
        behaviours: bugs.iter().copied().collect(),
        ..RunOptions::default()
    };
    let out = run_seed(&sc, seed, &opts);
    if let Some(p) = &out.panic {
        panic!("seed {seed}: {p}");
    }
    out
}

/// Runs `src` on `seed` with the given proposed fixes on (every historical behaviour off);
/// fails the test on a panic inside the simulation.
pub fn run_with_fixes(src: &str, seed: u64, fixes: &[Fix]) -> RunOutcome {
    let behaviours = fixes
        .iter()
        .fold(Behaviours::fixed(), |b, &f| b.with_fix(f));
    let opts = RunOptions {
        behaviours,
        ..RunOptions::default()
    };
    let out = run_seed(&scenario(src), seed, &opts);
    assert!(out.panic.is_none(), "seed {seed}: {:?}", out.panic);
    out
}

/// The invariants `src` violates on `seed` with the given proposed fixes on (every
/// historical behaviour off); fails the test on a panic inside the simulation.
pub fn violated_with(src: &str, seed: u64, fixes: &[Fix]) -> Vec<&'static str> {
    run_with_fixes(src, seed, fixes).violated()
}

/// A finding's rows on `seed` of its scenario `src`: `want` violated on develop and with
/// every proposed fix but `fix`; nothing violated with `fix` alone or with every fix.
/// `what` names the variant in failure messages.
pub fn assert_finding(src: &str, seed: u64, fix: Fix, want: &[&str], what: &str) {
    assert_finding_with_alternative(src, seed, (fix, None), want, what);
}

/// [`assert_finding`] for a finding that a second proposed fix, `alternative`, also closes:
/// every fix but the two leaves it, and each alone fixes it.
pub fn assert_finding_with_alternative(
    src: &str,
    seed: u64,
    (fix, alternative): (Fix, Option<Fix>),
    want: &[&str],
    what: &str,
) {
    if let Some(alt) = alternative {
        assert!(
            violated_with(src, seed, &[alt]).is_empty(),
            "the alternative fix alone, {what}, seed {seed}"
        );
    }
    let others: Vec<Fix> = (Fix::ALL.into_iter())
        .filter(|&f| f != fix && Some(f) != alternative)
        .collect();
    assert_eq!(
        violated_with(src, seed, &[]),
        want,
        "develop, {what}, seed {seed}"
    );
    assert_eq!(
        violated_with(src, seed, &others),
        want,
        "every other fix, {what}, seed {seed}"
    );
    assert!(
        violated_with(src, seed, &[fix]).is_empty(),
        "the fix alone, {what}, seed {seed}"
    );
    assert!(
        violated_with(src, seed, &Fix::ALL).is_empty(),
        "every fix, {what}, seed {seed}"
    );
}

pub fn events<'a>(
    h: &'a History,
    f: impl Fn(&EventKind) -> bool + 'a,
) -> impl Iterator<Item = &'a Event> + 'a {
    h.events.iter().filter(move |e| f(&e.kind))
}

pub fn count(h: &History, f: impl Fn(&EventKind) -> bool) -> usize {
    h.events.iter().filter(|e| f(&e.kind)).count()
}

pub fn answered(o: &RpcOutcome, code: ResponseCode) -> bool {
    matches!(o, RpcOutcome::Answered { code: c, .. } if *c == code)
}

pub fn faults(h: &History) -> Vec<(u64, String)> {
    h.events
        .iter()
        .filter_map(|e| match &e.kind {
            EventKind::Fault { description } => Some((e.at, description.to_string())),
            _ => None,
        })
        .collect()
}

/// A finding scenario's broker clog and unclog steps, as they spell them (after `at_ms`).
pub const CLOG_BROKER: &str = "action = \"clog\"\nnode = \"broker\"";
pub const UNCLOG_BROKER: &str = "action = \"unclog\"\nnode = \"broker\"";

/// `src` with its broker clog and unclog steps made harmless (loss set to 0 at the same
/// times): the scenario without the lost request.
pub fn without_clog(src: &str) -> String {
    assert!(src.contains(CLOG_BROKER) && src.contains(UNCLOG_BROKER));
    src.replace(CLOG_BROKER, "action = \"set-loss\"\nrate = 0.0")
        .replace(UNCLOG_BROKER, "action = \"set-loss\"\nrate = 0.0")
}

/// `src` (F26's and F29's shape: a 55 s listener, the broker clogged from 55.9 s to 56.2 s)
/// with the listener done at 30 s and the clog moved along: the listener ends before the
/// proxy's first renewal, so the lost request names the current handle.
pub fn without_renewal(src: &str) -> String {
    let listener = "consume_time_ms = { min = 55_000, max = 55_000 }";
    assert!(src.contains(listener) && src.contains(CLOG_BROKER) && src.contains(UNCLOG_BROKER));
    src.replace(listener, "consume_time_ms = { min = 30_000, max = 30_000 }")
        .replace("at_ms = 55_900", "at_ms = 30_900")
        .replace("at_ms = 56_200", "at_ms = 31_200")
}

/// Every variant (what it changes, its source) holds on develop on every seed.
pub fn assert_holds_on_develop<S: AsRef<str>>(variants: &[(&str, S)], seeds: &[u64]) {
    for (what, src) in variants {
        for &seed in seeds {
            assert!(
                violated_with(src.as_ref(), seed, &[]).is_empty(),
                "{what}, seed {seed}"
            );
        }
    }
}
