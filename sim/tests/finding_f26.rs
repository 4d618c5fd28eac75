//! Finding F26 (docs/findings.md): the gRPC proxy takes a message's entry out of its
//! receipt-handle table before it acks and leaves it out when the ack fails; the push
//! client's retry names its original handle, which the proxy's renewal already replaced, and
//! is answered OK; the renewal's CK revives the message. It goes away with the proposed fix
//! `failed-ack-restores-handle` alone; every other fix leaves it.

mod common;

use broker_core::Fix;

/// The alternative fix: the proxy holds the entry while the call runs.
const HOLD: Fix = Fix::CallHoldsHandleEntry;
use common::{
    assert_finding_with_alternative, assert_holds_on_develop, violated_with as violated,
    without_clog, without_renewal, CLOG_BROKER as CLOG, UNCLOG_BROKER as UNCLOG,
};

const F26: &str = include_str!("../../scenarios/findings/failed-ack-forgets-renewed-handle.toml");

/// The scenario's pinned seeds.
const SEEDS: [u64; 3] = [0, 1, 2];

#[test]
fn f26_a_retried_ack_of_the_original_handle_leaves_the_renewed_ck_unless_fixed() {
    for seed in SEEDS {
        let fix = Fix::FailedAckRestoresHandle;
        assert_finding_with_alternative(
            F26,
            seed,
            (fix, Some(HOLD)),
            &["no-redelivery-after-ack"],
            "scenario",
        );
    }
}

/// Without the lost ack, or without a renewal before it (a listener done before the renew
/// scan's lead), the ack names the current handle and nothing comes back.
#[test]
fn f26_holds_without_the_failed_ack_or_without_the_renewal() {
    let no_loss = without_clog(F26);
    let no_renewal = without_renewal(F26);
    assert_holds_on_develop(
        &[("no lost ack", &no_loss), ("no renewal", &no_renewal)],
        &SEEDS,
    );
}

/// An ACK put the store refused does the same once F6's fix answers it with an error (on
/// develop F6 answers it SUCCESS, and the renewed CK revives anyway): F6's fix alone leaves
/// the gRPC push consumer with F26.
#[test]
fn f26_follows_a_refused_ack_put_once_f6_is_fixed() {
    let src = F26
        .replace(CLOG, "action = \"set-store-put-failure-rate\"\nrate = 1.0")
        .replace(
            UNCLOG,
            "action = \"set-store-put-failure-rate\"\nrate = 0.0",
        )
        .replace("at_ms = 56_200", "at_ms = 56_500");
    let f6 = Fix::AckPutFailureAnswersError;
    let f26 = Fix::FailedAckRestoresHandle;
    for seed in SEEDS {
        let want = ["no-redelivery-after-ack"];
        assert_eq!(violated(&src, seed, &[]), want, "develop, seed {seed}");
        assert_eq!(violated(&src, seed, &[f6]), want, "F6's fix, seed {seed}");
        assert!(
            violated(&src, seed, &[f6, f26]).is_empty(),
            "both, seed {seed}"
        );
    }
}
