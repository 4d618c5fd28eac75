//! Finding F19 (docs/findings.md): a broker pause holds the buffer's scan past the revive
//! time; the flushed CK is stored directly, the put of an ack merged into it fails, and the
//! reviver's round at the resume reads the CK before the next scan's re-put and revives the
//! acked message. The violation needs the pause to end past the revive time + 2 s and the
//! failed ACK put, and goes away with the proposed fix `flushed-ck-carries-merged-acks`
//! alone; every other fix leaves it.

mod common;

use broker_core::Fix;
use common::{assert_finding, violated_with as violated};

const F19: &str = include_str!("../../scenarios/findings/late-flush-revives-merged-ack.toml");

/// The scenario's pinned seeds: the CK put at the resume goes through, the ACK put fails.
const SEEDS: [u64; 3] = [24, 17, 30];

#[test]
fn f19_a_late_flush_whose_ack_put_fails_revives_the_acked_message_unless_fixed() {
    for seed in SEEDS {
        let fix = Fix::FlushedCkCarriesMergedAcks;
        assert_finding(F19, seed, fix, &["no-redelivery-after-ack"], "scenario");
    }
}

#[test]
fn f19_holds_with_a_shorter_pause_or_without_the_failed_put() {
    let pause = "duration_ms = 5_800";
    assert!(F19.contains(pause));
    // Resumed at 10.9 s, under the revive time + 2 s: the re-put ACK goes in 5 ms later,
    // before the reviver's endTime can pass the CK.
    let shorter = F19
        .replace(pause, "duration_ms = 5_400")
        .replace("at_ms = 11_200", "at_ms = 10_800")
        .replace("at_ms = 11_400", "at_ms = 11_000");
    let failing = "rate = 0.5";
    assert!(F19.contains(failing));
    let no_failure = F19.replace(failing, "rate = 0.0");
    for seed in SEEDS {
        assert!(
            violated(&shorter, seed, &[]).is_empty(),
            "pause to 10.9 s, seed {seed}"
        );
        assert!(
            violated(&no_failure, seed, &[]).is_empty(),
            "no failed put, seed {seed}"
        );
    }
}
