//! Per orderly group and queue, deliveries follow queue-offset order: repeats are allowed, gaps and reordering are not.
//!
//! The per-queue form of openmessaging-chaos's `OrderChecker`: the stored sequence must be a
//! subsequence of what was delivered, duplicates tolerated.
//!
//! Semantics: take the orderly deliveries (`Delivered` with `orderly`) of each (group, topic,
//! queue) in history order. Each offset must be at most one past the highest offset
//! delivered so far: the next message, a step back to replay (after an expired batch, a
//! restart, or a reset), or, after a replay, the message past everything delivered before
//! (every offset up to there was delivered in order once; after a crash the broker's
//! `ConsumerOrderInfoManager.commitAndNext` may move on from a stale ack of the old batch).
//! Anything further ahead skips messages, which also covers reordering within a batch
//! (`0, 2, 1` skips 1 first). The first delivery of a queue may start anywhere (the
//! group's start position), and so may the first one after a reset of that queue, which
//! may move the position forward on purpose, unless the reset died in a crash (no offset
//! flush due between its assignment and the crash: the restart reads the older offset, as
//! no-loss and reset-takes-effect also judge). A pop that takes a pending reset to X
//! (`ResetConsumed`: `PopMessageProcessor.getPopOffset` → `resetPopOffset` →
//! `ConsumerOffsetManager.queryThenEraseResetOffset`) may also deliver X next, with or
//! without an assignment before it: under `reset-table-survives-restart` a restart restores
//! resetOffsetTable from the last persist, so an older reset, taken or overwritten since,
//! is pending again and taken with no new assignment.
//!
//! An offset the gRPC proxy's filter dead-lettered for the group (`SentToDlq` recorded on the
//! proxy: `PopMessageResultFilterImpl` found reconsumeTimes ≥ maxAttempts, and
//! `ProducerProcessor.forwardMessageToDeadLetterQueue` sent it back instead of handing it
//! out) was handed out by its pop to no client: a jump over offsets all dead-lettered so is
//! no skip. Nor is a jump over offsets retention deleted before the delivery
//! (`MessagesExpired` moved the queue's min offset past them): the store no longer has them,
//! and a pop below its min offset reads from the store's next offset (`PopMessageProcessor`'s
//! offset correction).
//!
//! A delivery is recorded when its answer reaches the client, one hop (or a clog, or a
//! pause) after the broker read; its place among the resets is its pop's (`PopRead`, see
//! `index::PopPositions`). So a jump to offset `o` is also allowed when, after the previous
//! delivery's pop and before this one's, a reset of the queue to an offset ≤ `o` was
//! assigned or a pop took a reset to `o`, even when both answers are recorded after it.

use super::index::{
    crash_indices, persists, proxy_dead_lettered, reset_died_in_crash, secs, witness_events, Facts,
};
use super::{Affected, AffectedList, InvariantInfo, Verdict, Witness};
use crate::history::EventKind;
use broker_core::BrokerEvent;
use std::collections::{BTreeMap, BTreeSet};

pub(crate) const INFO: InvariantInfo = InvariantInfo {
    name: "orderly-order",
    statement: "Per orderly group and queue, deliveries follow queue-offset order: repeats are allowed, gaps and reordering are not.",
};

/// (group, topic, queue).
type QueueKey<'h> = (&'h str, &'h str, u32);

/// A queue's deliveries so far: the previous one and the highest offset delivered in order,
/// as (offset, event index), and the offset of the latest reset a pop took (it may come next).
#[derive(Clone, Copy)]
struct Seen {
    last: (u64, usize),
    high: (u64, usize),
    taken_reset: Option<u64>,
}

#[cfg(test)]
pub(crate) fn check(history: &crate::history::History) -> Verdict {
    check_with(&Facts::new(history))
}

pub(crate) fn check_with(facts: &Facts) -> Verdict {
    let history = facts.h;
    let points = facts.resets();
    let pops = facts.pops();
    let (flushes, crashes) = (persists(history), crash_indices(history));
    let mut reset_idx: BTreeMap<usize, Vec<(QueueKey, i64)>> = BTreeMap::new();
    // (group, topic, queue) → event index → (offset, taken by a pop): the resets a pop's
    // window may hold.
    let mut by_queue: BTreeMap<QueueKey, BTreeMap<usize, (i64, bool)>> = BTreeMap::new();
    // A reset that died in a crash never moved the queue: the restart reads the older
    // offset, and what follows continues (or replays) what came before the reset. A pop
    // that took it before the crash still names it (`ResetConsumed`).
    // A dead reset a pop took before the crash still moved the queue until then: what it
    // delivered is a detour the crash undid. If nothing had come since the reset before it
    // (to X), the restart reads X again from the last flush, so X may come next after the
    // detour. (reset index → the queues and the crash that killed it.)
    let mut dead: BTreeMap<usize, Vec<(QueueKey, usize)>> = BTreeMap::new();
    for p in points {
        if reset_died_in_crash(history, &flushes, &crashes, p) {
            let crash = crashes[crashes.partition_point(|c| *c <= p.idx)];
            let key = (p.group.as_str(), p.topic.as_str(), p.queue);
            dead.entry(p.idx).or_default().push((key, crash));
        }
    }
    for p in points
        .iter()
        .filter(|p| !reset_died_in_crash(history, &flushes, &crashes, p))
    {
        let key = (p.group.as_str(), p.topic.as_str(), p.queue);
        reset_idx.entry(p.idx).or_default().push((key, p.offset));
        by_queue
            .entry(key)
            .or_default()
            .insert(p.idx, (p.offset, false));
    }
    for (idx, e) in history.events.iter().enumerate() {
        if let EventKind::Broker(BrokerEvent::ResetConsumed {
            group,
            topic,
            queue_id,
            offset,
            ..
        }) = &e.kind
        {
            by_queue
                .entry((group, topic, *queue_id))
                .or_default()
                .insert(idx, (*offset, true));
        }
    }
    // (group, topic, queue) → the previous delivery and the highest offset delivered in
    // order (offset, index each); None right after a reset.
    let mut prev: BTreeMap<QueueKey, Option<Seen>> = BTreeMap::new();
    // The offsets the gRPC proxy's filter dead-lettered for a group
    // (`PopMessageResultFilterImpl` → `ProducerProcessor.forwardMessageToDeadLetterQueue`):
    // (group, topic, queue, offset).
    let origins = facts.origins();
    let retention = facts.retention();
    let mut dead_lettered: BTreeSet<(&str, &str, u32, u64)> = BTreeSet::new();
    let mut deliveries = 0usize;
    let mut found: Vec<Witness> = Vec::new();
    let mut affected = AffectedList::default();
    // The target of each queue's latest live reset (read only while nothing came since it).
    let mut fresh: BTreeMap<QueueKey, i64> = BTreeMap::new();
    // crash index → (queue, the live reset's target the restart reads again).
    let mut undo_at: BTreeMap<usize, Vec<(QueueKey, u64)>> = BTreeMap::new();
    for (idx, e) in history.events.iter().enumerate() {
        for (key, offset) in reset_idx.get(&idx).into_iter().flatten() {
            prev.insert(*key, None);
            fresh.insert(*key, *offset);
        }
        for (key, crash) in dead.get(&idx).into_iter().flatten() {
            if let (Some(None), Some(x)) = (prev.get(key), fresh.get(key)) {
                if let Ok(x) = u64::try_from(*x) {
                    undo_at.entry(*crash).or_default().push((*key, x));
                }
            }
        }
        for (key, x) in undo_at.remove(&idx).into_iter().flatten() {
            if let Some(Some(seen)) = prev.get_mut(&key) {
                seen.taken_reset = Some(x);
            }
        }
        if let EventKind::Broker(BrokerEvent::ResetConsumed {
            group,
            topic,
            queue_id,
            offset,
            ..
        }) = &e.kind
        {
            if let (Some(Some(seen)), Ok(x)) = (
                prev.get_mut(&(group.as_str(), topic.as_str(), *queue_id)),
                u64::try_from(*offset),
            ) {
                seen.taken_reset = Some(x);
            }
            continue;
        }
        if let EventKind::SentToDlq { .. } = &e.kind {
            if let Some((group, _, msg_id)) = proxy_dead_lettered(e) {
                if let Some(o) = origins.get(msg_id) {
                    dead_lettered.insert((group, o.topic.as_str(), o.queue, o.offset));
                }
            }
            continue;
        }
        let EventKind::Delivered {
            group,
            msg_id,
            topic,
            queue_id,
            queue_offset,
            retry_topic,
            orderly: true,
            ..
        } = &e.kind
        else {
            continue;
        };
        let read_from = retry_topic.as_deref().unwrap_or(topic);
        deliveries += 1;
        let slot = prev.entry((group, topic, *queue_id)).or_insert(None);
        let mut high = (*queue_offset, idx);
        if let Some(Seen {
            last: (p, pidx),
            high: (h, hidx),
            taken_reset,
        }) = *slot
        {
            // Between the previous delivery's pop and this one's, a reset to at most this
            // offset was assigned, or a pop took a reset to exactly this offset: the answers
            // may both be recorded after it (develop-random 156938). A reset in the previous
            // pop's millisecond (a hand-made history has no `PopRead`) may be the one that
            // pop took, so it must come after that pop for sure.
            let reset_between = || {
                let (from, to) = (pops.of(pidx).before_to, pops.of(idx).before_to);
                by_queue
                    .get(&(group.as_str(), topic.as_str(), *queue_id))
                    .is_some_and(|m| {
                        m.range(from..to.max(from)).any(|(_, (x, taken))| {
                            let o = i64::try_from(*queue_offset).unwrap_or(i64::MAX);
                            if *taken {
                                *x == o
                            } else {
                                *x <= o
                            }
                        })
                    })
            };
            // Every offset in between is gone: the proxy's filter dead-lettered it out of
            // the group's pops (handed out, to no client, and sent to the DLQ), or retention
            // deleted it.
            let skipped_gone = || {
                let min = retention.min_before(read_from, *queue_id, idx);
                (h + 1..*queue_offset).all(|o| {
                    o < min
                        || dead_lettered.contains(&(group.as_str(), topic.as_str(), *queue_id, o))
                })
            };
            if *queue_offset > h + 1
                && taken_reset != Some(*queue_offset)
                && !reset_between()
                && !skipped_gone()
            {
                let after = if p == h {
                    format!("right after offset {p}")
                } else {
                    format!("after offset {p}, past offset {h}, the highest it had got in order")
                };
                affected
                    .push(Affected::at("offsets-skipped", history, idx).events(vec![hidx, idx]));
                found.push(Witness {
                    msg_id: Some(msg_id.to_string()),
                    summary: format!(
                        "group {group} got offset {queue_offset} of queue {topic}/{queue_id} at {} {after}: offsets {}..={} were skipped",
                        secs(e.at),
                        h + 1,
                        queue_offset - 1
                    ),
                    events: witness_events(vec![hidx, idx]),
                });
            } else if h >= *queue_offset {
                high = (h, hidx);
            }
        }
        *slot = Some(Seen {
            last: (*queue_offset, idx),
            high,
            taken_reset: slot.and_then(|s| s.taken_reset),
        });
    }
    if deliveries == 0 {
        return Verdict::not_applicable("no orderly delivery");
    }
    let count = found.len();
    Verdict::from_witness(found.into_iter().next().map(|mut w| {
        if count > 1 {
            w.summary.push_str(&format!(" ({count} skips in all)"));
        }
        w
    }))
    .with_affected(affected)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::invariants::Status;
    use crate::testkit::H;
    use broker_core::ReadFrom;

    #[test]
    fn in_order_with_replays_holds() {
        let mut h = H::orderly();
        for (t, o) in [
            (1_000, 3),
            (1_000, 4),
            (1_000, 5),
            (12_000, 4),
            (12_000, 5),
            (13_000, 6),
        ] {
            h.at(t).pop("o1", &format!("m{o}"), 0, o);
        }
        // Another queue and a reset forward start fresh.
        h.at(1_000).pop("o1", "n9", 1, 9);
        h.at(14_000).reset("og", 0, 20);
        h.at(15_000).pop("o1", "m20", 0, 20);
        assert_eq!(check(&h.build()), Verdict::held());
    }

    #[test]
    fn offsets_the_proxy_dead_lettered_are_no_skip() {
        // develop-random with retryMaxTimes 0 (maxAttempts 1), seed 52: s1 got orders/4
        // offset 0; a pop read 1..=2 but its answer was lost, so the next read of them
        // carried reconsumeTimes 1 and the proxy's filter (`PopMessageResultFilterImpl`)
        // forwarded both to the DLQ; the next delivery was offset 3.
        let run = |dead: &[&str]| {
            let mut h = H::grpc_fifo(&["f1"], "fg", 0);
            for o in 0..4 {
                h.at(0).produce(&format!("m{o}"), 0, o);
            }
            h.at(1_000).pop("f1", "m0", 0, 0);
            for m in dead {
                h.at(20_000).proxy_dead_letters("f1", "fg", m, 1);
            }
            h.at(40_000).pop("f1", "m3", 0, 3);
            check(&h.build())
        };
        assert_eq!(run(&["m1", "m2"]), Verdict::held());
        // Offset 2 was neither delivered nor dead-lettered: skipped.
        let v = run(&["m1"]);
        assert_eq!(
            v.witness.unwrap().summary,
            "group fg got offset 3 of queue TopicA/0 at 40.000s right after offset 0: offsets 1..=2 were skipped"
        );
        // A client's own decision (the FIFO push consumer's, on its node) is about a
        // delivery it got, not a pop it never saw: recorded on f1, it excuses nothing.
        let mut h = H::grpc_fifo(&["f1"], "fg", 0);
        for o in 0..3 {
            h.at(0).produce(&format!("m{o}"), 0, o);
        }
        h.at(1_000).pop("f1", "m0", 0, 0);
        let sent = EventKind::SentToDlq {
            consumer: "f1".into(),
            group: "fg".into(),
            msg_id: "m1".into(),
            dlq_topic: "%DLQ%fg".into(),
            reconsume_times: 0,
        };
        h.at(20_000).push("f1", sent);
        h.at(40_000).pop("f1", "m2", 0, 2);
        assert_eq!(check(&h.build()).status, Status::Violated);
    }

    /// Offset 2 was deleted by retention while offset 1's batch was out (the swarm with
    /// retention, seed 38): the next pop reads 3 and nothing was skipped. A gap retention
    /// did not make (deleted only after, or a message above the min) still is one.
    #[test]
    fn a_jump_over_what_retention_deleted_is_no_skip() {
        let mut h = H::orderly();
        h.at(1_000).pop("o1", "m0", 0, 0);
        h.at(1_000).pop("o1", "m1", 0, 1);
        h.at(30_000).expired(0, 3);
        h.at(31_000).pop("o1", "m3", 0, 3);
        assert_eq!(check(&h.build()), Verdict::held());

        let mut h = H::orderly();
        h.at(1_000).pop("o1", "m0", 0, 0);
        h.at(1_000).pop("o1", "m1", 0, 1);
        h.at(30_000).expired(0, 2);
        h.at(31_000).pop("o1", "m4", 0, 4);
        let v = check(&h.build());
        assert_eq!(v.status, Status::Violated);
        assert!(v
            .witness
            .unwrap()
            .summary
            .ends_with("offsets 2..=3 were skipped"));

        let mut h = H::orderly();
        h.at(1_000).pop("o1", "m0", 0, 0);
        h.at(1_000).pop("o1", "m1", 0, 1);
        h.at(31_000).pop("o1", "m3", 0, 3);
        h.at(32_000).expired(0, 3);
        assert_eq!(check(&h.build()).status, Status::Violated);
    }

    #[test]
    fn a_gap_or_a_swap_is_a_violation() {
        let mut h = H::orderly();
        h.at(1_000).pop("o1", "m0", 0, 0);
        let one = h.at(1_000).pop("o1", "m1", 0, 1);
        let three = h.at(1_000).pop("o1", "m3", 0, 3);
        let v = check(&h.build());
        assert_eq!(v.status, Status::Violated);
        let w = v.witness.unwrap();
        assert_eq!(w.msg_id.as_deref(), Some("m3"));
        assert_eq!(w.events, vec![one.idx, three.idx]);
        assert_eq!(
            w.summary,
            "group og got offset 3 of queue TopicA/0 at 1.000s right after offset 1: offsets 2..=2 were skipped"
        );

        let mut h = H::orderly();
        h.at(1_000).pop("o1", "m0", 0, 0);
        h.at(1_000).pop("o1", "m2", 0, 2);
        h.at(1_000).pop("o1", "m1", 0, 1);
        assert_eq!(check(&h.build()).status, Status::Violated);
    }

    #[test]
    fn after_a_step_back_delivery_may_resume_past_the_highest_offset_delivered() {
        // chaos seed 398: offsets 0..=10 were delivered, a crash made the queue replay from
        // 0 (0..=5 again), and stale acks of the old batch moved the commit offset on
        // (ConsumerOrderInfoManager.commitAndNext answers queueOffset + 1 when the restart
        // lost the OrderInfo), so 11 came next. Every offset was delivered in order once.
        let run = |resume: u64| {
            let mut h = H::orderly();
            for o in 0..=3 {
                h.at(1_000).pop("o1", &format!("m{o}"), 0, o);
            }
            for o in 0..=1 {
                h.at(12_000).pop("o1", &format!("m{o}"), 0, o);
            }
            h.at(13_000).pop("o1", &format!("m{resume}"), 0, resume);
            check(&h.build())
        };
        assert_eq!(run(4), Verdict::held());
        // Offset 4 was never delivered.
        let v = run(5);
        assert_eq!(v.status, Status::Violated);
        assert_eq!(
            v.witness.unwrap().summary,
            "group og got offset 5 of queue TopicA/0 at 13.000s after offset 1, past offset 3, the highest it had got in order: offsets 4..=4 were skipped"
        );
    }

    #[test]
    fn concurrent_deliveries_are_not_judged() {
        let mut h = H::new();
        h.at(1_000).pop("c1", "m0", 0, 0);
        h.at(1_000).pop("c1", "m5", 0, 5);
        assert_eq!(
            check(&h.build()),
            Verdict::not_applicable("no orderly delivery")
        );
    }

    #[test]
    fn a_reset_that_died_in_a_crash_does_not_restart_the_queue() {
        // develop-random 156036 (with or without fixes): o1 got offsets 0 and 1 of orders/3
        // at 0.6 s; a crash at 0.7 s lost the OrderInfo and every commit. A reset of every
        // queue (orders/3 to 7) was assigned at 11.3 s and the broker crashed at 12.7 s, with
        // no offset flush due since its restart at 5.5 s: the pending reset and its
        // offsetTable write died with the process (`ConsumerOffsetManager.assignResetOffset`
        // keeps them in memory). The next pop read orders/3 from 0 again (the commit offset),
        // o1 acked 0 and then 1 with the first batch's handle (`ackOrderlyNew` →
        // `ConsumerOrderInfoManager.commitAndNext` answers queueOffset + 1 with no OrderInfo),
        // and the next pop delivered 2. Every offset was delivered in order once.
        let run = |resume: u64, flushed: bool| {
            let mut h = H::orderly();
            for o in 0..=1 {
                h.at(600).pop("o1", &format!("m{o}"), 0, o);
            }
            h.at(700).crash();
            h.at(5_400).restart();
            h.at(11_300).reset("og", 0, 7);
            if flushed {
                h.at(12_000).persist();
            }
            h.at(12_700).crash();
            h.at(17_000).restart();
            h.at(24_900).pop("o1", "m0", 0, 0);
            h.at(48_600).pop("o1", &format!("m{resume}"), 0, resume);
            check(&h.build())
        };
        assert_eq!(run(2, false), Verdict::held());
        // Offset 2 was never delivered: 3 skips it, reset or not.
        let v = run(3, false);
        assert_eq!(v.status, Status::Violated);
        assert_eq!(
            v.witness.unwrap().summary,
            "group og got offset 3 of queue TopicA/0 at 48.600s after offset 0, past offset 1, the highest it had got in order: offsets 2..=2 were skipped"
        );
        // A reset flushed before the crash survived it: the queue started over at the
        // reset, and 2 right after 0 skips 1.
        let v = run(2, true);
        assert_eq!(v.status, Status::Violated);
        assert_eq!(
            v.witness.unwrap().summary,
            "group og got offset 2 of queue TopicA/0 at 48.600s right after offset 0: offsets 1..=1 were skipped"
        );
        // A reset to 3 between the two pops that died in the crash excuses no jump to 3
        // either (the rule for resets between two pops, 156938, skips dead ones too).
        let mut h = H::orderly();
        for o in 0..=1 {
            h.at(600).pop("o1", &format!("m{o}"), 0, o);
        }
        h.at(11_300).reset("og", 0, 3);
        h.at(12_700).crash();
        h.at(17_000).restart();
        h.at(48_600).pop("o1", "m3", 0, 3);
        assert_eq!(check(&h.build()).status, Status::Violated);
    }

    #[test]
    fn what_a_dead_reset_delivered_before_its_crash_is_a_detour_the_crash_undid() {
        // develop-random 23039 (`--fix all`): a reset of orders/2 to 17 (forward, on purpose)
        // was flushed; nothing came at 17 yet. A reset back to 3 was assigned at 45.0 s and
        // taken at 47.6 s (3 and 4 delivered), and the broker crashed at 51.5 s, 7.8 s after
        // its restart, before the first offset flush (10 s after start): the reset and the
        // pop's commit died with the process, the restart read 17 again, and the next pop
        // delivered 17. The queue was where the first reset left it; 5..=16 were never asked
        // for but by the reset the crash undid.
        let run = |first: Option<u64>, resume: u64, flushed: bool| {
            let mut h = H::orderly();
            if let Some(f) = first {
                for o in 0..=f {
                    h.at(600).pop("o1", &format!("m{o}"), 0, o);
                }
            }
            h.at(9_900).reset("og", 0, 17);
            h.at(10_000).persist();
            h.at(43_600).crash();
            h.at(43_700).restart();
            h.at(45_000).reset("og", 0, 3);
            if flushed {
                h.at(45_500).persist();
            }
            h.at(47_600).reset_consumed("og", 0, 3);
            for o in 3..=4 {
                h.at(47_600).pop("o1", &format!("m{o}"), 0, o);
            }
            h.at(51_500).crash();
            h.at(56_200).restart();
            h.at(65_000).pop("o1", &format!("m{resume}"), 0, resume);
            check(&h.build())
        };
        assert_eq!(run(None, 17, false), Verdict::held());
        // The group had 0..=2 before the first reset: the same.
        assert_eq!(run(Some(2), 17, false), Verdict::held());
        // The restart reads 17: 18 skips it.
        assert_eq!(run(None, 18, false).status, Status::Violated);
        // The reset back to 3 was flushed: the queue stayed there, and 17 after 4 skips 5..=16.
        let v = run(None, 17, true);
        assert_eq!(v.status, Status::Violated);
        assert_eq!(
            v.witness.unwrap().summary,
            "group og got offset 17 of queue TopicA/0 at 65.000s right after offset 4: offsets 5..=16 were skipped"
        );
    }

    #[test]
    fn a_reset_a_restart_restored_may_move_the_queue_forward() {
        // develop-random 11574 (`--fix all`): a reset to 66 was persisted while pending
        // (taken at 41.8 s, but the crash at 42.9 s restored it and no pop took it before the
        // persist at 62.3 s); a newer reset to 29 was assigned and taken (29..=60 delivered),
        // and the crash at 66.5 s, with no flush due since that assignment, restored
        // resetOffsetTable from that persist (`reset-table-survives-restart`), so the next
        // pop took the reset to 66 again (`getPopOffset` → `resetPopOffset` →
        // `queryThenEraseResetOffset`) with no new assignment. The pop's own reset moves the
        // queue forward on purpose. (In the seed the first taker's batch 66..=76 had reached
        // o1, so 66 came in order anyway; here its answer is lost, so only the taken reset
        // explains 66 after 31.)
        let run = |resume: u64, restored: bool| {
            let mut h = H::orderly();
            h.at(1_000).reset("og", 0, 66);
            h.at(1_500).persist();
            h.at(2_000).reset_consumed("og", 0, 66);
            h.at(2_500).crash();
            h.at(3_000).restart();
            h.at(4_000).reset("og", 0, 29);
            h.at(4_500).reset_consumed("og", 0, 29);
            for o in 29..=31 {
                h.at(4_500).pop("o1", &format!("m{o}"), 0, o);
            }
            h.at(6_000).crash();
            h.at(7_000).restart();
            if restored {
                h.at(8_000).reset_consumed("og", 0, 66);
            }
            h.at(8_000).pop("o1", &format!("m{resume}"), 0, resume);
            check(&h.build())
        };
        assert_eq!(run(66, true), Verdict::held());
        // The reset taken was to 66: 67 skips 66.
        let v = run(67, true);
        assert_eq!(v.status, Status::Violated);
        assert_eq!(
            v.witness.unwrap().summary,
            "group og got offset 67 of queue TopicA/0 at 8.000s right after offset 31: offsets 32..=66 were skipped"
        );
        // No pop took a reset after the crash: the restart read the flushed offsetTable, where
        // the reset to 66 wrote 66 (`assignResetOffset`), and 29..=31 were the detour of a
        // reset that died in the crash; 66 may come, 67 skips it.
        assert_eq!(run(66, false), Verdict::held());
        assert_eq!(run(67, false).status, Status::Violated);
    }

    #[test]
    fn a_reset_between_the_pops_of_two_answers_recorded_after_it_may_move_the_queue_forward() {
        // develop-random 156938 (also without fixes): o2's orderly pop read orders/2 offsets
        // 0..=1 at 0.923 s; a reset of the queue to 3 was assigned at 1.720 s and taken by
        // o2's next pop (another attemptId) at 1.726 s (`getPopOffset` → `resetPopOffset`
        // clears the block before `checkBlock`), which read 3..=4. o2's link was clogged
        // until 4.3 s, so both answers reached it only at 5.331 s and 5.341 s, after the
        // reset: 3 came right after 1, and offset 2 was skipped by the reset itself.
        let run = |reset: Option<i64>| {
            let mut h = H::orderly();
            h.at(923)
                .pop_read("og", 0, 923, 0, 2, true, ReadFrom::InitOffset);
            let from = match reset {
                Some(x) => {
                    h.at(1_720).reset("og", 0, x);
                    h.at(1_726).reset_consumed("og", 0, x);
                    ReadFrom::PendingReset
                }
                None => ReadFrom::CommitOffset,
            };
            h.at(1_726).pop_read("og", 0, 1_726, 3, 2, true, from);
            for o in 0..=1 {
                h.at(5_331).pop_served_at("o1", &format!("m{o}"), 0, o, 923);
            }
            for o in 3..=4 {
                h.at(5_341)
                    .pop_served_at("o1", &format!("m{o}"), 0, o, 1_726);
            }
            check(&h.build())
        };
        assert_eq!(run(Some(3)), Verdict::held());
        // No reset between the two pops: 3 after 1 skips 2.
        let v = run(None);
        assert_eq!(v.status, Status::Violated);
        assert_eq!(
            v.witness.unwrap().summary,
            "group og got offset 3 of queue TopicA/0 at 5.341s right after offset 1: offsets 2..=2 were skipped"
        );
        // A reset to 4 between them does not explain 3.
        assert_eq!(run(Some(4)).status, Status::Violated);
    }
}
