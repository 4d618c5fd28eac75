//! Finding F23 (docs/findings.md): with the in-flight threshold on, a message retention
//! deletes while it is popped and not acked stays counted in flight (its ack is answered
//! `NO_MESSAGE`, its revive finds nothing to retry); once such leaks pass the threshold every
//! pop skips the queue, and a group holding nothing in flight never gets what is stored
//! there after. It goes away with the proposed fix `revive-of-deleted-message-lowers-inflight`
//! alone; every other fix leaves it.

mod common;

use broker_core::Fix;
use common::{assert_finding, assert_holds_on_develop};

const F23: &str = include_str!("../../scenarios/findings/deleted-in-flight-stops-queue.toml");

/// The scenario's pinned seeds.
const SEEDS: [u64; 3] = [0, 1, 2];

#[test]
fn f23_messages_deleted_in_flight_stop_the_queue_unless_fixed() {
    for seed in SEEDS {
        let fix = Fix::ReviveOfDeletedMessageLowersInflight;
        assert_finding(F23, seed, fix, &["no-loss"], "scenario");
    }
}

#[test]
fn f23_holds_without_the_threshold_above_the_leak_or_when_the_acks_beat_retention() {
    let on = "enablePopMessageThreshold = true";
    let at = "popInflightMessageThreshold = 3";
    let retention = "retention_ms = 40_000";
    assert!(F23.contains(on) && F23.contains(at) && F23.contains(retention));
    let variants = [
        (
            "threshold off",
            F23.replace(on, "enablePopMessageThreshold = false"),
        ),
        (
            "threshold 5",
            F23.replace(at, "popInflightMessageThreshold = 5"),
        ),
        (
            "retention 50 s",
            F23.replace(retention, "retention_ms = 50_000"),
        ),
    ];
    assert_holds_on_develop(&variants, &SEEDS);
}
