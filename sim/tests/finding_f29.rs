//! Finding F29 (docs/findings.md): the gRPC proxy takes a message's entry out of its
//! receipt-handle table before it changes the message's invisible time for a push
//! consumer's nack and leaves it out when the change fails; the client's retry names its
//! original handle, whose CK the proxy's renewal already acked, and is answered OK; the
//! renewal's CK is never acked and revives the message a second time. It goes away with the
//! proposed fix `failed-change-restores-handle` alone; every other fix (F26's and F28's,
//! the same decision in the ack and forward activities, included) leaves it.

mod common;

use broker_core::Fix;

/// The alternative fix: the proxy holds the entry while the call runs.
const HOLD: Fix = Fix::CallHoldsHandleEntry;
use common::{
    assert_finding_with_alternative, assert_holds_on_develop, without_clog, without_renewal,
};

const F29: &str =
    include_str!("../../scenarios/findings/failed-change-forgets-renewed-handle.toml");

/// The scenario's pinned seeds.
const SEEDS: [u64; 3] = [0, 1, 2];

#[test]
fn f29_a_retried_nack_of_the_original_handle_leaves_the_renewed_ck_unless_fixed() {
    for seed in SEEDS {
        let fix = Fix::FailedChangeRestoresHandle;
        assert_finding_with_alternative(
            F29,
            seed,
            (fix, Some(HOLD)),
            &["revive-bookkeeping"],
            "scenario",
        );
    }
}

/// Without the lost change, or without a renewal before it (a listener done before the
/// renew scan's lead), the nack changes the current handle and one copy comes back.
#[test]
fn f29_holds_without_the_failed_change_or_without_the_renewal() {
    let no_loss = without_clog(F29);
    let no_renewal = without_renewal(F29);
    assert_holds_on_develop(
        &[("no lost change", &no_loss), ("no renewal", &no_renewal)],
        &SEEDS,
    );
}
