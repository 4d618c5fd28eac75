//! Finding F25 (docs/findings.md): the gRPC proxy answers a FIFO receive whose batch its
//! filter dead-lettered before its ack reaches the broker; with the gRPC client of
//! rocketmq-clients #1322 (which keeps its attemptId after the empty answer) the re-receive is
//! a reentrant pop that reads the batch again and makes the ack stale, and the message is
//! dead-lettered again. It goes away with the proposed fix `dead-letter-acked-before-answer`
//! alone; every other fix leaves it.

mod common;

use broker_core::Fix;
use common::{assert_finding, assert_holds_on_develop};

const F25: &str = include_str!("../../scenarios/findings/reentrant-pop-re-dead-letters.toml");

/// The scenario's pinned seeds.
const SEEDS: [u64; 3] = [0, 2, 3];

#[test]
fn f25_a_reentrant_pop_re_reads_a_dead_lettered_batch_unless_fixed() {
    for seed in SEEDS {
        let fix = Fix::DeadLetterAckedBeforeAnswer;
        assert_finding(F25, seed, fix, &["dlq-accounting"], "scenario");
    }
}

/// The snapshot's client takes a new attemptId after the empty answer, so the next pop is
/// blocked until the proxy's ack commits; a graceful shutdown instead of the crash persists
/// the first ack, so nothing is read again and nothing dead-lettered.
#[test]
fn f25_holds_with_the_snapshots_client_or_without_the_redelivery() {
    let client = "keeps_attempt_id_until_messages = true";
    let crash = "action = \"crash\"";
    assert!(F25.contains(client) && F25.contains(crash));
    let variants = [
        (
            "the snapshot's client",
            F25.replace(client, "keeps_attempt_id_until_messages = false"),
        ),
        (
            "a graceful shutdown",
            F25.replace(crash, "action = \"shutdown\""),
        ),
    ];
    assert_holds_on_develop(&variants, &SEEDS);
}
