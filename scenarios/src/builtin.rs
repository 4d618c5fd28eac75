//! The built-in scenarios, embedded from `scenarios/builtin/*.toml`, and the findings'
//! shrunk scenarios from `scenarios/findings/*.toml`.

use crate::{load_str, Context, Scenario};

struct Builtin {
    name: &'static str,
    summary: &'static str,
    source: &'static str,
}

const BUILTINS: &[Builtin] = &[
    Builtin {
        name: "orderly-reset-replay",
        summary: "(a) #9369: KV-path orderly POP, reset to an earlier offset, then the same offsets replay forever",
        source: include_str!("../builtin/orderly-reset-replay.toml"),
    },
    Builtin {
        name: "invisible-time-overrun",
        summary: "(b) #8332: consume takes 15 s with a 10 s invisible time and maxReconsumeTimes 0; unbounded redelivery",
        source: include_str!("../builtin/invisible-time-overrun.toml"),
    },
    Builtin {
        name: "late-ack-after-ck-flush",
        summary: "(c) #8835: buffered CK flushed with N-1 acks, the last ack comes later; the N-1 acked messages are revived",
        source: include_str!("../builtin/late-ack-after-ck-flush.toml"),
    },
    Builtin {
        name: "offset-update-under-loss",
        summary: "(d) #8365/#10005: offset updates oneway under packet loss, and a future that never completes",
        source: include_str!("../builtin/offset-update-under-loss.toml"),
    },
    Builtin {
        name: "reset-before-first-subscribe",
        summary: "(e) #9149: reset a group that never committed, restart the broker; the reset is lost",
        source: include_str!("../builtin/reset-before-first-subscribe.toml"),
    },
    Builtin {
        name: "late-ack-random",
        summary: "(c) random variant of late-ack-after-ck-flush: consume times around the buffer window, random faults",
        source: include_str!("../builtin/late-ack-random.toml"),
    },
    Builtin {
        name: "invisible-time-random",
        summary: "(b) random variant of invisible-time-overrun: listener vs invisible time drawn per seed",
        source: include_str!("../builtin/invisible-time-random.toml"),
    },
    Builtin {
        name: "orderly-reset-random",
        summary: "(a) random variant of orderly-reset-replay: workload and faults drawn per seed",
        source: include_str!("../builtin/orderly-reset-random.toml"),
    },
    Builtin {
        name: "reset-subscribe-random",
        summary: "(e) random variant of reset-before-first-subscribe: broker crashes and network faults drawn per seed",
        source: include_str!("../builtin/reset-subscribe-random.toml"),
    },
    Builtin {
        name: "mixed-workload",
        summary: "every fix in: 2 topics, 3 groups incl. orderly, loss, latency, clogs and a crash; nothing may be violated",
        source: include_str!("../builtin/mixed-workload.toml"),
    },
    Builtin {
        name: "develop-random",
        summary: "the discovery swarm: upstream develop, every fix in, every knob that picks a code path drawn per seed",
        source: include_str!("../builtin/develop-random.toml"),
    },
    Builtin {
        name: "proxy-random",
        summary: "the proxy's discovery swarm: every client a gRPC client, proxy-broker blips, every fix in, every knob drawn per seed",
        source: include_str!("../builtin/proxy-random.toml"),
    },
    Builtin {
        name: "buffer-commit-over-reset",
        summary: "finding F1 on develop: PopBufferMergeService commits a CK over a pending reset; a flush and a crash before the next pop lose the reset",
        source: include_str!("../findings/buffer-commit-over-reset.toml"),
    },
    Builtin {
        name: "merge-key-collision",
        summary: "finding F2 on develop: two changeInvisibleTime CKs whose concatenated merge keys are equal; one is never revived",
        source: include_str!("../findings/merge-key-collision.toml"),
    },
    Builtin {
        name: "reset-clears-other-pull-offsets",
        summary: "finding F3 on develop: a one-queue reset on the KV path drops every queue's pull offset; another queue re-reads acked messages",
        source: include_str!("../findings/reset-clears-other-pull-offsets.toml"),
    },
    Builtin {
        name: "kv-reset-lock-inversion",
        summary: "finding F4 on develop: a KV pop that takes a reset frees its own group lock in clearCache; a second pop reads the same FIFO batch",
        source: include_str!("../findings/kv-reset-lock-inversion.toml"),
    },
    Builtin {
        name: "late-ck-flush-behind-ack",
        summary: "finding F5 on develop: a buffered CK flushed late lands behind an ACK that addAk refused; the reviver drops the ACK and revives an acked message",
        source: include_str!("../findings/late-ck-flush-behind-ack.toml"),
    },
    Builtin {
        name: "ack-put-failure-answered-success",
        summary: "finding F6 on develop: an ACK whose store put failed is answered SUCCESS; the CK revives the acked message",
        source: include_str!("../findings/ack-put-failure-answered-success.toml"),
    },
    Builtin {
        name: "kv-cache-revive-failure-lost",
        summary: "finding F7 on develop: a PopConsumerCache record whose revive put fails is dropped; its message is never revived",
        source: include_str!("../findings/kv-cache-revive-failure-lost.toml"),
    },
    Builtin {
        name: "ack-origin-failure-answered-success",
        summary: "finding F8 on develop: a changeInvisibleTime whose ACK of the original receipt failed is answered SUCCESS; the original CK revives before the new deadline",
        source: include_str!("../findings/ack-origin-failure-answered-success.toml"),
    },
    Builtin {
        name: "revive-re-put-failure-lost",
        summary: "finding F9 on develop: a CK whose retry put and re-put both fail is committed past by the reviver; its message is never revived",
        source: include_str!("../findings/revive-re-put-failure-lost.toml"),
    },
    Builtin {
        name: "revive-end-time-past-lagging-timer",
        summary: "finding F10 on develop: with the timer wheel lagging, a late ACK stored directly moves the reviver's endTime past an ACK still in the wheel; the acked message is revived",
        source: include_str!("../findings/revive-end-time-past-lagging-timer.toml"),
    },
    Builtin {
        name: "kv-cache-commit-over-reset",
        summary: "finding F11 on develop: PopConsumerCache commits its smallest cached offset over a reset in progress; a flush and a crash lose the reset",
        source: include_str!("../findings/kv-cache-commit-over-reset.toml"),
    },
    Builtin {
        name: "orderly-reset-lost-on-restart",
        summary: "finding F12 on develop: a restart keeps a reset in offsetTable but drops the pending-reset entry; a stale ackOrderly of the old batch commits over it",
        source: include_str!("../findings/orderly-reset-lost-on-restart.toml"),
    },
    Builtin {
        name: "kv-cache-delete-other-record",
        summary: "finding F13 on develop: PopConsumerCache deletes a record by offset only; a changeInvisibleTime of an old receipt removes the newer cached record and the old one revives early",
        source: include_str!("../findings/kv-cache-delete-other-record.toml"),
    },
    Builtin {
        name: "kv-reset-tail-clears-taken-pull-offset",
        summary: "finding F14 on develop: a pop takes a KV reset before the admin's cleanup of its queue; the cleanup removes the pop's pull offset and the next pop re-reads acked messages",
        source: include_str!("../findings/kv-reset-tail-clears-taken-pull-offset.toml"),
    },
    Builtin {
        name: "kv-change-to-same-deadline-deletes-new-record",
        summary: "finding F15 on develop: a changeInvisibleTime whose new deadline equals the old one writes and then deletes one record key; the message is never revived",
        source: include_str!("../findings/kv-change-to-same-deadline-deletes-new-record.toml"),
    },
    Builtin {
        name: "orderly-taken-reset-lost-orderinfo",
        summary: "finding F16 on develop: a reset taken by an orderly pop is lost from OrderInfo in a crash; a late ack of the batch popped before it commits past the replay",
        source: include_str!("../findings/orderly-taken-reset-lost-orderinfo.toml"),
    },
    Builtin {
        name: "scan-ack-re-put-overtakes-ck",
        summary: "finding F17 on develop: a buffered ACK whose put failed at the scan's flush is put again after its deliver time, ahead of its CK in a lagging timer; the reviver drops it and revives the acked message",
        source: include_str!("../findings/scan-ack-re-put-overtakes-ck.toml"),
    },
    Builtin {
        name: "simple-fifo-ack-past-failed-after-crash",
        summary: "finding F18 on develop: after a crash lost a FIFO queue's OrderInfo, a SimpleConsumer's ack of a later message commits past an earlier one that failed; it is never delivered again",
        source: include_str!("../findings/simple-fifo-ack-past-failed-after-crash.toml"),
    },
    Builtin {
        name: "late-flush-revives-merged-ack",
        summary: "finding F19 on develop: a pause holds the buffer's scan past the revive time; the flushed CK goes in directly, a merged ack's put fails, and the reviver revives the acked message before the re-put",
        source: include_str!("../findings/late-flush-revives-merged-ack.toml"),
    },
    Builtin {
        name: "init-offset-lost-in-crash",
        summary: "finding F20 on develop: a crash before the first offset persist after a group's first pop makes the group new again; its first message out of the page cache, it restarts at max - 1 and skips what it had not acked",
        source: include_str!("../findings/init-offset-lost-in-crash.toml"),
    },
    Builtin {
        name: "orderly-batch-above-inflight-threshold",
        summary: "finding F21 on develop: with the in-flight threshold below an orderly batch, acks the proxy refuses leave the count above it, and every later pop skips the queue before the orderly clear: it stops for good",
        source: include_str!("../findings/orderly-batch-above-inflight-threshold.toml"),
    },
    Builtin {
        name: "fifo-ack-of-deleted-head-skipped",
        summary: "finding F22 on develop: retention deletes a FIFO batch's head; its batch ack is answered SUCCESS but skipped, the later acks commit only the head, and the acked messages come back",
        source: include_str!("../findings/fifo-ack-of-deleted-head-skipped.toml"),
    },
    Builtin {
        name: "deleted-in-flight-stops-queue",
        summary: "finding F23 on develop: retention deletes popped messages before their acks; neither the acks (NO_MESSAGE) nor the revive take them off the in-flight count, which stays above the threshold, and every later pop skips the queue",
        source: include_str!("../findings/deleted-in-flight-stops-queue.toml"),
    },
    Builtin {
        name: "reentrant-fifo-pop-inherits-counts",
        summary: "finding F24 on develop with the gRPC client of #1322: a FIFO receive keeps its attemptId after the proxy dead-lettered its batch; the next batch, popped as a reentrant retry, inherits the old delivery counts and a message never handed out is dead-lettered",
        source: include_str!("../findings/reentrant-fifo-pop-inherits-counts.toml"),
    },
    Builtin {
        name: "reentrant-pop-re-dead-letters",
        summary: "finding F25 on develop with the gRPC client of #1322: the proxy answers a FIFO receive it dead-lettered before its ack lands; the reentrant re-receive reads the batch again, makes the ack stale, and the message is dead-lettered again",
        source: include_str!("../findings/reentrant-pop-re-dead-letters.toml"),
    },
    Builtin {
        name: "failed-ack-forgets-renewed-handle",
        summary: "finding F26 on develop: the gRPC proxy's failed ack takes the renewed handle out of its table; the client's retry acks its original handle, answered OK, and the renewal's CK revives the message",
        source: include_str!("../findings/failed-ack-forgets-renewed-handle.toml"),
    },
    Builtin {
        name: "due-ack-origin-overtakes-ck",
        summary: "finding F27 on develop: a changeInvisibleTime the proxy checked just before the handle's deadline reaches the broker just after it; ackOrigin's ACK is stored directly ahead of the original CK in a lagging timer, is dropped, and the original CK revives the message acked under the new handle",
        source: include_str!("../findings/due-ack-origin-overtakes-ck.toml"),
    },
    Builtin {
        name: "failed-forward-forgets-renewed-handle",
        summary: "finding F28 on develop: the gRPC proxy's failed forward to the DLQ takes the renewed handle out of its table; the FIFO client's retry with its expired original is stored and answered OK, the proxy refuses its own ack after it, and the queue hands the message out again",
        source: include_str!("../findings/failed-forward-forgets-renewed-handle.toml"),
    },
    Builtin {
        name: "failed-change-forgets-renewed-handle",
        summary: "finding F29 on develop: the gRPC proxy's failed nack (changeInvisibleDuration) takes the renewed handle out of its table; the client's retry changes its original handle, answered OK, and the renewal's CK revives the message a second time",
        source: include_str!("../findings/failed-change-forgets-renewed-handle.toml"),
    },
    Builtin {
        name: "put-replaces-consumed-delivery",
        summary: "finding F30 on develop: a crash replay hands a gRPC push consumer a copy it is still consuming; the proxy's ReceiptHandleGroup.put replaces the first delivery's renewed handle, whose ack then goes out with the new copy's handle, answered OK, and the renewal's CK revives the message",
        source: include_str!("../findings/put-replaces-consumed-delivery.toml"),
    },
    Builtin {
        name: "kv-restart-replays-acked-batch",
        summary: "finding F31 on develop: on the KV pop path a pop commits its read start as the consumer offset and its end only to the never-persisted pull table; after a graceful broker restart the next pop re-delivers the batch the consumer acked",
        source: include_str!("../findings/kv-restart-replays-acked-batch.toml"),
    },
    Builtin {
        name: "timer-gives-up-ack-record",
        summary: "finding F32 on develop: the store fails puts for a second as the timer wheel puts an ACK record into its revive queue; with timerEnableRetryUntilSuccess off the timer gives the record up after three failed puts, and its CK revives the acked message",
        source: include_str!("../findings/timer-gives-up-ack-record.toml"),
    },
    Builtin {
        name: "local-change-handle-names-batch-start",
        summary: "finding F33 on develop: through a proxy in local mode, a changed message's new handle names its popped batch's first offset; the ack of a later message of the batch is answered OK, misses the CK the change wrote, and the message comes back",
        source: include_str!("../findings/local-change-handle-names-batch-start.toml"),
    },
];

/// Every built-in scenario: (name, one-line summary), in a stable order.
pub fn builtins() -> Vec<(&'static str, &'static str)> {
    BUILTINS.iter().map(|b| (b.name, b.summary)).collect()
}

/// The TOML text of a built-in scenario.
pub fn builtin_source(name: &str) -> Option<&'static str> {
    BUILTINS.iter().find(|b| b.name == name).map(|b| b.source)
}

/// A built-in scenario, parsed and validated (without checking invariant names; pass a
/// [`Context`] to [`crate::resolve`] for that). The crate's tests load every built-in, so
/// `None` means only "no such name".
pub fn builtin(name: &str) -> Option<Scenario> {
    let src = builtin_source(name)?;
    load_str(&format!("{name}.toml"), src, &Context::default()).ok()
}
