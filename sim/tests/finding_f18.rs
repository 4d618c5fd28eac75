//! Finding F18 (docs/findings.md): a FIFO SimpleConsumer acks later messages of its batch
//! while an earlier one failed; after a crash lost the batch's OrderInfo, `commitAndNext`
//! answers `queueOffset + 1` and `ackOrderly` commits past the failed message. The
//! violation needs the out-of-order ack and the crash, and goes away with the proposed fix
//! `ack-without-order-info-commits-in-order` alone; every other fix leaves it.

mod common;

use broker_core::Fix;
use common::{assert_finding, violated_with as violated};

const F18: &str =
    include_str!("../../scenarios/findings/simple-fifo-ack-past-failed-after-crash.toml");

#[test]
fn f18_an_ack_past_a_failed_message_without_orderinfo_loses_it_unless_fixed() {
    for seed in 0..3 {
        let fix = Fix::AckWithoutOrderInfoCommitsInOrder;
        assert_finding(F18, seed, fix, &["no-loss"], "scenario");
    }
}

#[test]
fn f18_holds_with_the_acks_in_order_or_without_the_crash() {
    let skip = "consumer = \"s1\"\nskip = 1\n";
    assert!(F18.contains(skip));
    // The failed message acked too, first: every ack is of the commit offset in turn.
    let in_order = F18.replace(skip, "consumer = \"s1\"\n");
    let crash = "[[steps]]\nat_ms = 3_000\naction = \"crash\"\n\n[[steps]]\nat_ms = 4_000\naction = \"restart\"\n";
    assert!(F18.contains(crash));
    let no_crash = F18.replace(crash, "");
    for seed in 0..3 {
        assert!(
            violated(&in_order, seed, &[]).is_empty(),
            "acks in order, seed {seed}"
        );
        assert!(
            violated(&no_crash, seed, &[]).is_empty(),
            "no crash, seed {seed}"
        );
    }
}
