//! Finding F30 (docs/findings.md): the gRPC proxy keys a push consumer's handle entry by
//! broker, queue and offset only, so a crash replay's second delivery of a copy the client is
//! still consuming replaces the first delivery's renewed handle (`ReceiptHandleGroup.put`);
//! the first listener's ack goes out with the second delivery's handle and is answered OK,
//! and the renewal's CK, never acked, revives the message. It goes away with the proposed fix
//! `handle-key-per-delivery` alone; every other fix leaves it.

mod common;

use broker_core::Fix;
use common::{assert_finding, assert_holds_on_develop};

const F30: &str = include_str!("../../scenarios/findings/put-replaces-consumed-delivery.toml");

/// The scenario's pinned seeds.
const SEEDS: [u64; 3] = [0, 1, 2];

#[test]
fn f30_an_ack_sent_with_the_replays_handle_leaves_the_renewed_ck_unless_fixed() {
    for seed in SEEDS {
        let fix = Fix::HandleKeyPerDelivery;
        assert_finding(F30, seed, fix, &["no-redelivery-after-ack"], "scenario");
    }
}

/// Without the crash there is no second delivery; with the listener done before the renewal
/// and the crash, its ack names the only delivery.
#[test]
fn f30_holds_without_the_replay_or_with_a_listener_done_before_it() {
    let crash = "action = \"crash\"";
    let restart = "action = \"restart\"";
    assert!(F30.contains(crash) && F30.contains(restart));
    let harmless = "action = \"set-loss\"\nrate = 0.0";
    let no_crash = F30.replace(crash, harmless).replace(restart, harmless);
    let listener = "consume_time_ms = { min = 75_000, max = 75_000 }";
    assert!(F30.contains(listener));
    let short = F30.replace(listener, "consume_time_ms = { min = 45_000, max = 45_000 }");
    assert_holds_on_develop(
        &[("no crash", &no_crash), ("listener done first", &short)],
        &SEEDS,
    );
}
