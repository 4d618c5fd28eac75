//! Finding F31 (docs/findings.md): on the KV pop path a non-FIFO pop commits its read start as
//! the consumer offset and its end to the pull table, which no persist writes; after a
//! graceful restart the next pop reads from the consumer offset and re-delivers the batch the
//! consumer acked. No proposed fix yet.

mod common;

use common::{assert_holds_on_develop, violated_with};

const F31: &str = include_str!("../../scenarios/findings/kv-restart-replays-acked-batch.toml");

/// The scenario's pinned seeds.
const SEEDS: [u64; 3] = [1, 2, 3];

#[test]
fn f31_a_graceful_restart_replays_the_acked_kv_batch() {
    for seed in SEEDS {
        assert_eq!(
            violated_with(F31, seed, &[]),
            ["no-redelivery-after-ack"],
            "seed {seed}"
        );
    }
}

/// The classic pop path, with or without buffer merge, keeps its read position in the
/// consumer offset and shuts down cleanly; a pop of the queue before the shutdown that finds
/// nothing commits the read position; a crash excuses the replay.
#[test]
fn f31_holds_on_the_classic_path_after_another_pop_or_after_a_crash() {
    let kv = "popConsumerKVServiceEnable = true";
    let shutdown = "action = \"shutdown\"";
    assert!(F31.contains(kv) && F31.contains(shutdown));
    let classic = F31.replace(kv, "popConsumerKVServiceEnable = false");
    let buffered = F31.replace(
        kv,
        "popConsumerKVServiceEnable = false\nenablePopBufferMerge = true",
    );
    let pop_again = F31.replace(
        "[[steps]]\nat_ms = 5_000",
        "[[steps]]\nat_ms = 3_000\naction = \"pop\"\nconsumer = \"c1\"\nqueue = 0\nmax = 3\n\n[[steps]]\nat_ms = 5_000",
    );
    assert_ne!(pop_again, F31);
    let crash = F31.replace(shutdown, "action = \"crash\"");
    assert_holds_on_develop(
        &[
            ("classic path", &classic),
            ("classic path, buffer merge", &buffered),
            ("popped again before the shutdown", &pop_again),
            ("a crash instead", &crash),
        ],
        &SEEDS,
    );
}
