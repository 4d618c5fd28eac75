//! Finding F16 (docs/findings.md): a reset taken by an orderly pop is lost from OrderInfo in
//! a crash. The violation needs the crash inside OrderInfo's persist period, and goes away
//! with the proposed fix `order-info-persists-with-offsets` alone; every other fix leaves it.

mod common;

use broker_core::Fix;
use common::{assert_finding, violated_with as violated};

const F16: &str = include_str!("../../scenarios/findings/orderly-taken-reset-lost-orderinfo.toml");

#[test]
fn f16_a_taken_reset_lost_from_orderinfo_loses_the_replay_unless_fixed() {
    for seed in 0..3 {
        assert_finding(
            F16,
            seed,
            Fix::OrderInfoPersistsWithOffsets,
            &["no-loss"],
            "scenario",
        );
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
            violated(&no_crash, seed, &[]).is_empty(),
            "no crash, seed {seed}"
        );
        assert!(
            violated(&later, seed, &[]).is_empty(),
            "crash after the persist, seed {seed}"
        );
    }
}
