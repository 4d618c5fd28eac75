//! Finding F27 (docs/findings.md): a changeInvisibleTime the proxy checked just before the
//! handle's deadline reaches the broker just after it; ackOrigin's ACK of the original
//! receipt is already due, is stored directly ahead of the original CK still in a lagging
//! timer, and the reviver drops it; the original CK revives the message the client acked
//! under its new handle. It goes away with the proposed fix `due-ack-origin-goes-through-timer`
//! alone; every other fix (F17's, the same decision for the buffer's ACK puts, included)
//! leaves it.

mod common;

use broker_core::Fix;
use common::{assert_finding, assert_holds_on_develop};

const F27: &str = include_str!("../../scenarios/findings/due-ack-origin-overtakes-ck.toml");

/// The scenario's pinned seeds.
const SEEDS: [u64; 3] = [0, 1, 2];

const CHANGE: &str = "at_ms = 11_003";
const LAG: &str = "lag_ms = 200";

#[test]
fn f27_a_due_ack_origin_overtakes_the_original_ck_unless_fixed() {
    for seed in SEEDS {
        let fix = Fix::DueAckOriginGoesThroughTimer;
        assert_finding(F27, seed, fix, &["no-redelivery-after-ack"], "scenario");
    }
}

/// A change that reaches the broker before the deadline writes an ACK the timer delivers
/// after the CK; one the proxy finds expired changes nothing; with the timer on time the
/// original CK is in the revive queue before the late ACK. Each holds on develop.
#[test]
fn f27_holds_with_the_change_in_time_refused_or_without_the_timer_lag() {
    assert!(F27.contains(CHANGE) && F27.contains(LAG));
    let in_time = F27.replace(CHANGE, "at_ms = 10_995");
    let expired = F27.replace(CHANGE, "at_ms = 11_008");
    let no_lag = F27.replace(LAG, "lag_ms = 0");
    let variants = [
        ("in time", &in_time),
        ("refused as expired", &expired),
        ("no lag", &no_lag),
    ];
    assert_holds_on_develop(&variants, &SEEDS);
}
