//! The proposed fix `call-holds-handle-entry` (docs/findings.md, "The proxy swarm"): the
//! gRPC proxy keeps a message's receipt-handle entry, locked, while an ack, nack or forward
//! runs, and removes it only once the call succeeded. The restore fixes of F26, F28 and F29
//! put a failed call's entry back only when its answer came, so a client retry that
//! overtook the call found no entry and named the original handle: proxy-random 6912 (a
//! nack, F29's shape) and 47960 (an ack, F26's) fail with every other fix in and hold with
//! this one. The finding tests (`finding_f26.rs`, `finding_f28.rs`, `finding_f29.rs`) show
//! it closes each finding alone.

mod common;

use broker_core::Fix;
use common::violated_with as violated;

#[test]
fn an_overtaking_retry_waits_for_the_held_entry_instead_of_naming_the_original() {
    let src = scenarios::builtin_source("proxy-random").expect("built-in");
    let hold = Fix::CallHoldsHandleEntry;
    // Both seeds were found before `handle-key-per-delivery` (F30), whose entry keys change
    // their histories (47960 holds with it whatever this fix does): they run without it.
    let later = Fix::HandleKeyPerDelivery;
    let all: Vec<Fix> = Fix::ALL.into_iter().filter(|&f| f != later).collect();
    let others: Vec<Fix> = all.iter().copied().filter(|&f| f != hold).collect();
    // 6912 (the nack) moved when the timer's dequeue puts began to fail with the store's
    // (F32's round): its history no longer has the overtaking retry. F29's finding test
    // shows this fix closing the nack's shape alone.
    let (seed, want) = (47960, "no-redelivery-after-ack");
    assert_eq!(violated(src, seed, &others), [want], "seed {seed}");
    assert!(violated(src, seed, &all).is_empty(), "seed {seed}");
}
