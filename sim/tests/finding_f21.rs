//! Finding F21 (docs/findings.md): with the in-flight threshold below an orderly batch, a
//! batch whose acks do not all reach `ackOrderly` (the proxy refuses the late ones) leaves
//! the queue's count above the threshold; `isPopShouldStop` runs before the orderly pop's
//! block check and its clear of the count, so every later pop skips the queue and it stops
//! for good. It goes away with the proposed fix `orderly-pop-skips-inflight-threshold`
//! alone; every other fix leaves it.

mod common;

use broker_core::Fix;
use common::{assert_finding, violated_with as violated};

const F21: &str =
    include_str!("../../scenarios/findings/orderly-batch-above-inflight-threshold.toml");

/// The scenario's pinned seeds.
const SEEDS: [u64; 3] = [0, 1, 2];

#[test]
fn f21_an_orderly_batch_above_the_threshold_stops_its_queue_unless_fixed() {
    for seed in SEEDS {
        let fix = Fix::OrderlyPopSkipsInflightThreshold;
        assert_finding(F21, seed, fix, &["fifo-progress"], "scenario");
    }
}

#[test]
fn f21_holds_without_the_threshold_or_with_one_above_what_the_acks_left() {
    let on = "enablePopMessageThreshold = true";
    let at = "popInflightMessageThreshold = 20";
    assert!(F21.contains(on) && F21.contains(at));
    let off = F21.replace(on, "enablePopMessageThreshold = false");
    let higher = F21.replace(at, "popInflightMessageThreshold = 24");
    for seed in SEEDS {
        assert!(
            violated(&off, seed, &[]).is_empty(),
            "threshold off, seed {seed}"
        );
        assert!(
            violated(&higher, seed, &[]).is_empty(),
            "threshold 24, seed {seed}"
        );
    }
}

/// The stopped queue's pops wake themselves (`restNum`) for their whole poll time; the
/// broker node holds each such pop between reruns that would find the same state
/// (`Scheduler::hold`): about 108 000 wake-ups on develop when it reran every millisecond,
/// a few hundred now, and the verdict is the same (above).
#[test]
fn f21s_self_waking_pops_are_simulated_at_their_changes_not_every_millisecond() {
    use broker_core::BrokerEvent;
    use reports::history::EventKind;
    let out = common::run(F21, 0, &[]);
    let h = &out.history;
    let wakes = common::count(
        h,
        |k| matches!(k, EventKind::Broker(BrokerEvent::PopWoken { reason, .. }) if reason == "restNum"),
    );
    assert!((1..5_000).contains(&wakes), "{wakes} restNum wake-ups");
}
