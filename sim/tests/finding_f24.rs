//! Finding F24 (docs/findings.md): a FIFO pop with the previous batch's attemptId is taken for
//! a reentrant retry and inherits that batch's delivery counts, even when its batch is new;
//! with the gRPC client of rocketmq-clients #1322 (which keeps the attemptId after the proxy
//! dead-lettered a whole batch) a message never handed out arrives with reconsumeTimes 1 and,
//! at retryMaxTimes 0, goes to the DLQ unseen. Every other fix leaves it; its fix
//! `reentrant-pop-counts-only-its-batch` removes it, and with F25's fix
//! `dead-letter-acked-before-answer` (the scenario's first message is dead-lettered again on
//! each reentrant re-read that beats the proxy's ack: finding F25) everything holds.

mod common;

use broker_core::Fix;
use common::{assert_holds_on_develop, violated_with as violated};

const F24: &str = include_str!("../../scenarios/findings/reentrant-fifo-pop-inherits-counts.toml");

/// The scenario's pinned seeds.
const SEEDS: [u64; 3] = [0, 1, 2];

#[test]
fn f24_a_reentrant_pop_dead_letters_a_new_message_unless_fixed() {
    let (f24, f25) = (
        Fix::ReentrantPopCountsOnlyItsBatch,
        Fix::DeadLetterAckedBeforeAnswer,
    );
    let but_f24: Vec<Fix> = Fix::ALL.into_iter().filter(|&f| f != f24).collect();
    let dlq = ["dlq-accounting"];
    for seed in SEEDS {
        assert_eq!(violated(F24, seed, &[]), dlq, "develop, seed {seed}");
        assert_eq!(violated(F24, seed, &but_f24), dlq, "but F24, seed {seed}");
        assert_eq!(violated(F24, seed, &[f25]), dlq, "F25's fix, seed {seed}");
        assert!(
            violated(F24, seed, &[f24, f25]).is_empty(),
            "both, seed {seed}"
        );
        assert!(
            violated(F24, seed, &Fix::ALL).is_empty(),
            "every fix, seed {seed}"
        );
    }
}

/// The snapshot's client takes a new attemptId after the empty answer, so the next batch is
/// no reentrant retry; a graceful shutdown instead of the crash persists the ack, so the first
/// message is not redelivered and no batch is dead-lettered; with two attempts allowed the
/// inherited count is below the limit.
#[test]
fn f24_holds_with_the_snapshots_client_without_the_redelivery_or_with_a_retry_left() {
    let client = "keeps_attempt_id_until_messages = true";
    let crash = "action = \"crash\"";
    let retries = "max_reconsume_times = 0";
    assert!(F24.contains(client) && F24.contains(crash) && F24.contains(retries));
    let variants = [
        (
            "the snapshot's client",
            F24.replace(client, "keeps_attempt_id_until_messages = false"),
        ),
        (
            "a graceful shutdown",
            F24.replace(crash, "action = \"shutdown\""),
        ),
        (
            "retryMaxTimes 1",
            F24.replace(retries, "max_reconsume_times = 1"),
        ),
    ];
    assert_holds_on_develop(&variants, &SEEDS);
}
