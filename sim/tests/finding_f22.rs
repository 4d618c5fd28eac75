//! Finding F22 (docs/findings.md): retention deletes the head of a FIFO batch in flight; the
//! proxy's batch ack of the head is answered SUCCESS but skipped below the min offset before
//! `ackOrderly`, so the acks of the later messages commit only the head's offset, and once
//! the batch lapses the offset correction re-reads from the new min and hands the acked
//! messages out again. On both pop paths; it goes away with the proposed fix
//! `orderly-batch-ack-below-min-commits` alone; every other fix leaves it.

mod common;

use broker_core::Fix;
use common::{assert_finding, violated_with as violated};

const F22: &str = include_str!("../../scenarios/findings/fifo-ack-of-deleted-head-skipped.toml");

/// The scenario's pinned seeds.
const SEEDS: [u64; 3] = [0, 1, 2];

#[test]
fn f22_an_orderly_batch_ack_of_a_deleted_head_is_skipped_and_acked_messages_come_back() {
    let kv = F22.replace(
        "[proxy]\n",
        "[broker]\npopConsumerKVServiceEnable = true\n\n[proxy]\n",
    );
    for seed in SEEDS {
        for (path, sc) in [("classic", F22), ("kv", kv.as_str())] {
            let fix = Fix::OrderlyBatchAckBelowMinCommits;
            assert_finding(sc, seed, fix, &["no-redelivery-after-ack"], path);
        }
    }
}

/// With single acks the head's ack is refused (`NO_MESSAGE`, reported to the client as an
/// error): the same replay follows, but nothing the client was told it acked comes back.
#[test]
fn f22_holds_with_single_acks() {
    let on = "enableBatchAck = true";
    assert!(F22.contains(on));
    let single = F22.replace(on, "enableBatchAck = false");
    for seed in SEEDS {
        assert!(
            violated(&single, seed, &[]).is_empty(),
            "single acks, seed {seed}"
        );
    }
}
