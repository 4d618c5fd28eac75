//! An orderly group's commit offset never passes an un-acked message of the outstanding batch, and at most one un-expired batch is outstanding per queue.
//!
//! Upstream's orderly POP (`ConsumerOrderInfoManager`) pins the commit offset at the first
//! un-acked entry of the batch and blocks the queue while any entry is invisible.
//!
//! Semantics, per (group, topic, queue) of groups with orderly deliveries:
//! - The *outstanding batch* is the latest orderly pop seen: the deliveries sharing consumer
//!   and `popTime`. An entry counts as acked once the client *sent* the ack (the broker
//!   commits before the answer comes back), even an ack of its handle sent before the
//!   delivery was recorded (the proxy may swap a just-registered handle into a retried ack). Each entry's deadline is its receipt's
//!   `popTime + invisibleTime`, moved by a successful changeInvisibleTime.
//! - **Commit**: every broker `OffsetCommitted` for the queue must be ≤ the lowest un-acked
//!   offset of the outstanding batch. Commits made on purpose by a reset (reason containing
//!   "reset") or a client `UPDATE_CONSUMER_OFFSET` (reason containing "update") are exempt.
//! - **One batch**: a new batch may start only when every entry of the outstanding one is
//!   acked or past its deadline when the broker decided it (the new pop's `PopRead`: its
//!   block check and offset come when the pop reaches the queue, after its `popTime`; the
//!   `popTime` when the history has no `PopRead`), unless it is the same attempt: equal
//!   `attempt_id`s, or the same consumer when the history does not record attempt ids.
//! - A consumed reset and a broker crash discard the outstanding batch (the reset clears the
//!   block on purpose; a crash may lose the un-flushed order info); so does a crash between
//!   a pop and its recorded delivery: a batch served before the latest crash is not one,
//!   nor is one served before its queue's latest consumed reset.

use super::index::{is_success, receipt_deadline, secs, witness_events, Facts, LookupMap};
use super::{Affected, AffectedList, InvariantInfo, Verdict, Witness};
use crate::history::EventKind;
use broker_core::{BrokerEvent, Millis};
use std::collections::{BTreeMap, BTreeSet};

pub(crate) const INFO: InvariantInfo = InvariantInfo {
    name: "orderly-commit-safety",
    statement: "An orderly group's commit offset never passes an un-acked message of the outstanding batch, and at most one un-expired batch is outstanding per queue.",
};

struct Entry<'h> {
    msg_id: &'h str,
    delivery: usize,
    deadline: Millis,
    ack_sent: bool,
}

struct Batch<'h> {
    consumer: &'h str,
    pop_time: Millis,
    attempt_id: Option<&'h str>,
    entries: BTreeMap<u64, Entry<'h>>,
}

impl Batch<'_> {
    fn lowest_unacked(&self) -> Option<(&u64, &Entry<'_>)> {
        self.entries.iter().find(|(_, e)| !e.ack_sent)
    }
}

type QueueKey<'h> = (&'h str, &'h str, u32);

#[cfg(test)]
pub(crate) fn check(history: &crate::history::History) -> Verdict {
    check_with(&Facts::new(history))
}

pub(crate) fn check_with(facts: &Facts) -> Verdict {
    let history = facts.h;
    let pops = facts.pops();
    let mut batches: LookupMap<QueueKey, Batch> = LookupMap::default();
    // (group, receipt) → (queue, popTime of its batch, offset).
    let mut receipts: LookupMap<(&str, &str), (QueueKey, Millis, u64)> = LookupMap::default();
    // (group, receipt) of acks sent before any delivery of that receipt was recorded.
    let mut early_acks: BTreeSet<(&str, &str)> = BTreeSet::new();
    let mut last_crash: Option<usize> = None;
    // The latest consumed reset of each queue, by event index.
    let mut last_reset: LookupMap<QueueKey, usize> = LookupMap::default();
    let mut orderly = 0usize;
    let mut found: Option<Witness> = None;
    let mut count = 0usize;
    let mut affected = AffectedList::default();

    for (idx, e) in history.events.iter().enumerate() {
        match &e.kind {
            EventKind::Delivered {
                consumer,
                group,
                msg_id,
                topic,
                queue_id,
                queue_offset,
                pop_time,
                invisible_time,
                receipt,
                orderly: true,
                attempt_id,
                ..
            } => {
                orderly += 1;
                let key: QueueKey = (group, topic, *queue_id);
                receipts.insert((group, receipt), (key, *pop_time, *queue_offset));
                let entry = Entry {
                    msg_id,
                    delivery: idx,
                    deadline: pop_time + invisible_time,
                    ack_sent: early_acks.contains(&(group.as_str(), receipt.as_str())),
                };
                // A pop the broker served before the latest crash (its answer recorded after
                // it) belongs to a batch the crash discarded.
                if last_crash.is_some_and(|c| c >= pops.of(idx).after_from) {
                    continue;
                }
                // Likewise a pop served before a reset of its queue was consumed: the reset
                // cleared its block (`resetPopOffset`).
                if last_reset
                    .get(&key)
                    .is_some_and(|r| *r >= pops.of(idx).after_from)
                {
                    continue;
                }
                if let Some(b) = batches.get_mut(&key) {
                    if b.consumer == consumer && b.pop_time == *pop_time {
                        b.entries.insert(*queue_offset, entry);
                        continue;
                    }
                    let same_attempt = match (b.attempt_id, attempt_id.as_deref()) {
                        (Some(x), Some(y)) => x == y,
                        _ => b.consumer == consumer,
                    };
                    let decided = pops.decided_at(idx, *pop_time);
                    let live = b
                        .entries
                        .values()
                        .find(|x| !x.ack_sent && x.deadline > decided);
                    if let (false, Some(live)) = (same_attempt, live) {
                        count += 1;
                        affected.push(
                            Affected::at("second-batch-while-invisible", history, live.delivery)
                                .events(vec![live.delivery, idx]),
                        );
                        // Only the first is reported: format no other.
                        if count == 1 {
                            found = Some(Witness {
                                msg_id: Some(live.msg_id.to_owned()),
                                summary: format!(
                                    "group {group} popped a second batch from queue {topic}/{queue_id} at {} while {} of the batch popped at {} was un-acked and invisible until {}",
                                    secs(decided),
                                    live.msg_id,
                                    secs(b.pop_time),
                                    secs(live.deadline)
                                ),
                                events: witness_events(vec![live.delivery, idx]),
                            });
                        }
                    }
                }
                let mut entries = BTreeMap::new();
                entries.insert(*queue_offset, entry);
                batches.insert(
                    key,
                    Batch {
                        consumer,
                        pop_time: *pop_time,
                        attempt_id: attempt_id.as_deref(),
                        entries,
                    },
                );
            }
            EventKind::AckSent { group, receipt, .. } => {
                let Some((key, pop_time, offset)) =
                    receipts.get(&(group.as_str(), receipt.as_str()))
                else {
                    // The proxy's handle table (`ReceiptHandleGroup.HandleKey`: broker, queue
                    // and offset, no popTime) may put the handle a new pop just registered
                    // into a retried ack of an old one, before the delivery is recorded.
                    early_acks.insert((group, receipt));
                    continue;
                };
                if let Some(b) = batches.get_mut(key).filter(|b| b.pop_time == *pop_time) {
                    if let Some(en) = b.entries.get_mut(offset) {
                        en.ack_sent = true;
                    }
                }
            }
            EventKind::ChangeInvisibleResult {
                group,
                receipt,
                invisible_time,
                new_receipt: Some(new),
                outcome,
                ..
            } if is_success(outcome) => {
                let Some(r) = receipts.get(&(group.as_str(), receipt.as_str())).copied() else {
                    continue;
                };
                let (key, pop_time, offset) = r;
                if let Some(b) = batches.get_mut(&key).filter(|b| b.pop_time == pop_time) {
                    if let Some(en) = b.entries.get_mut(&offset) {
                        en.deadline = receipt_deadline(new, e.at + invisible_time);
                    }
                }
                receipts.insert((group, new), r);
            }
            EventKind::Broker(BrokerEvent::OffsetCommitted {
                group,
                topic,
                queue_id,
                offset,
                reason,
                ..
            }) => {
                let why = reason.to_ascii_lowercase();
                if why.contains("reset") || why.contains("update") {
                    continue;
                }
                let Some(b) = batches.get(&(group.as_str(), topic.as_str(), *queue_id)) else {
                    continue;
                };
                let Some((low, en)) = b.lowest_unacked() else {
                    continue;
                };
                if *offset > *low as i64 {
                    count += 1;
                    affected.push(
                        Affected::at("committed-past-unacked", history, en.delivery)
                            .events(vec![en.delivery, idx]),
                    );
                    // Only the first is reported: format no other.
                    if count == 1 {
                        found = Some(Witness {
                            msg_id: Some(en.msg_id.to_owned()),
                            summary: format!(
                                "group {group}'s commit offset on queue {topic}/{queue_id} moved to {offset} at {} ({reason}) while offset {low} ({}) of the batch popped at {} was not acked",
                                secs(e.at),
                                en.msg_id,
                                secs(b.pop_time)
                            ),
                            events: witness_events(vec![en.delivery, idx]),
                        });
                    }
                }
            }
            EventKind::Broker(BrokerEvent::ResetConsumed {
                group,
                topic,
                queue_id,
                ..
            }) => {
                let key = (group.as_str(), topic.as_str(), *queue_id);
                batches.remove(&key);
                last_reset.insert(key, idx);
            }
            EventKind::Broker(BrokerEvent::Crashed { .. }) => {
                batches.clear();
                last_crash = Some(idx);
            }
            _ => {}
        }
    }
    if orderly == 0 {
        return Verdict::not_applicable("no orderly delivery");
    }
    Verdict::from_witness(found.map(|mut w| {
        if count > 1 {
            w.summary.push_str(&format!(" ({count} problems in all)"));
        }
        w
    }))
    .with_affected(affected)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::history::ConsumerKind;
    use crate::invariants::Status;
    use crate::testkit::H;
    use broker_core::ReadFrom;

    #[test]
    fn commits_that_follow_acks_hold() {
        let mut h = H::orderly();
        h.at(1_000).commit("og", 0, 0, "getPopOffset");
        let a = h.at(1_000).pop("o1", "m0", 0, 0);
        let b = h.at(1_000).pop("o1", "m1", 0, 1);
        h.at(1_500).ack_sent(&a);
        h.at(1_500).commit("og", 0, 1, "ackOrderly");
        h.at(1_600).ack_sent(&b);
        h.at(1_600).commit("og", 0, 2, "ackOrderly");
        // The next batch only after the first is acked; a reset may move anywhere.
        h.at(2_000).pop("o1", "m2", 0, 2);
        h.at(2_500).commit("og", 0, 9, "ResetPopOffset");
        assert_eq!(check(&h.build()), Verdict::held());
    }

    #[test]
    fn a_commit_past_an_unacked_entry_is_a_violation() {
        let mut h = H::orderly();
        let a = h.at(1_000).pop("o1", "m0", 0, 0);
        let b = h.at(1_000).pop("o1", "m1", 0, 1);
        h.at(1_500).ack_sent(&b);
        let bad = h.at(1_500).commit("og", 0, 2, "ackOrderly");
        let v = check(&h.build());
        assert_eq!(v.status, Status::Violated);
        let w = v.witness.unwrap();
        assert_eq!(w.msg_id.as_deref(), Some("m0"));
        assert_eq!(w.events, vec![a.idx, bad]);
        assert_eq!(
            w.summary,
            "group og's commit offset on queue TopicA/0 moved to 2 at 1.500s (ackOrderly) while offset 0 (m0) of the batch popped at 1.000s was not acked"
        );
    }

    #[test]
    fn a_second_live_batch_is_a_violation_unless_same_attempt_or_expired() {
        let mut h = H::orderly();
        h.consumer("o2", "og", ConsumerKind::Orderly, -1);
        let a = h.at(1_000).pop("o1", "m0", 0, 0);
        let second = h.at(2_000).pop("o2", "m0", 0, 0);
        let w = check(&h.build()).witness.unwrap();
        assert_eq!(w.events, vec![a.idx, second.idx]);
        assert_eq!(
            w.summary,
            "group og popped a second batch from queue TopicA/0 at 2.000s while m0 of the batch popped at 1.000s was un-acked and invisible until 11.000s"
        );

        // Same attemptId: a reentrant retry. Different attemptIds from one consumer: not.
        let mut h = H::orderly();
        h.at(1_000).pop_attempt("o1", "m0", 0, 0, "a1");
        h.at(2_000).pop_attempt("o1", "m0", 0, 0, "a1");
        assert_eq!(check(&h.build()), Verdict::held());
        let mut h = H::orderly();
        h.at(1_000).pop_attempt("o1", "m0", 0, 0, "a1");
        h.at(2_000).pop_attempt("o1", "m0", 0, 0, "a2");
        assert_eq!(check(&h.build()).status, Status::Violated);

        // After the deadline (moved by changeInvisibleTime) the queue may be popped again.
        let mut h = H::orderly();
        h.consumer("o2", "og", ConsumerKind::Orderly, -1);
        let a = h.at(1_000).pop("o1", "m0", 0, 0);
        h.at(5_000).change_invisible(&a, 1_000);
        h.at(7_000).pop("o2", "m0", 0, 0);
        assert_eq!(check(&h.build()), Verdict::held());
    }

    #[test]
    fn a_pop_begun_before_the_deadline_that_reached_the_queue_after_it_holds() {
        // develop-random seed 2: o1's pop began at 136.303s (its popTime) and reached queue
        // orders/6 at 136.4s, after o2's batch lapsed at 136.355s; the broker's block check
        // ran then. The popTime alone would call it a second live batch.
        let run = |reached: Option<Millis>| {
            let mut h = H::orderly();
            h.consumer("o2", "og", ConsumerKind::Orderly, -1);
            h.at(1_000).pop("o1", "m0", 0, 0); // invisible until 11.000s
            if let Some(t) = reached {
                h.at(t).pop_read(
                    "og",
                    0,
                    10_950,
                    0,
                    1,
                    true,
                    broker_core::ReadFrom::CommitOffset,
                );
            }
            h.at(11_020).pop_served_at("o2", "m0", 0, 0, 10_950);
            check(&h.build()).status
        };
        assert_eq!(run(Some(11_010)), Status::Held);
        assert_eq!(run(None), Status::Violated);
    }

    #[test]
    fn an_ack_sent_before_its_delivery_is_recorded_counts() {
        // chaos seed 151: the proxy's handle table (ReceiptHandleGroup.HandleKey: msgId,
        // queue and offset, no popTime) swapped the handle a new pop had just registered
        // into the client's retried ack of an old handle; that ack reached the broker
        // before the client's delivery of the new handle was recorded.
        let run = |early_ack: bool| {
            let mut h = H::orderly();
            let a = h.at(2_000).pop_served_at("o1", "m0", 0, 0, 1_000);
            let b = h.at(2_000).pop_served_at("o1", "m1", 0, 1, 1_000);
            if early_ack {
                let ack = h.at(1_500).ack_sent(&b);
                let ev = h.events.remove(ack);
                h.events.insert(a.idx, ev);
            }
            h.at(2_500).ack_sent(&a);
            h.at(2_500).commit("og", 0, 2, "ackOrderly");
            check(&h.build()).status
        };
        assert_eq!(run(true), Status::Held);
        // Without that ack, offset 1 is un-acked when the commit passes it.
        assert_eq!(run(false), Status::Violated);
    }

    #[test]
    fn a_batch_popped_before_a_crash_but_recorded_after_it_is_discarded() {
        // chaos seed 11: the broker served o1's pop, crashed before the answer reached o1
        // (a crash may lose the un-flushed order info), and o2 popped the queue after the
        // restart; o1's delivery is recorded after the crash.
        let run = |served: Millis| {
            let mut h = H::orderly();
            h.consumer("o2", "og", ConsumerKind::Orderly, -1);
            h.at(3_000).crash();
            h.at(4_000).restart();
            h.at(5_000).pop_served_at("o1", "m0", 0, 0, served);
            h.at(6_000).pop("o2", "m0", 0, 0);
            check(&h.build()).status
        };
        assert_eq!(run(1_000), Status::Held);
        // A pop served after the restart is the outstanding batch.
        assert_eq!(run(4_500), Status::Violated);
    }

    #[test]
    fn a_batch_popped_before_a_consumed_reset_but_recorded_after_it_is_discarded() {
        // Develop-random seed 248: a pop served at 20.530 s, a reset consumed by the next
        // pop at 20.930 s (resetPopOffset clears the block), and both answers recorded at
        // 22.6 s, the older one first.
        let run = |first: Millis| {
            let mut h = H::orderly();
            h.consumer("o2", "og", ConsumerKind::Orderly, -1);
            h.at(500).reset("og", 0, 0);
            let read = |h: &mut H, at: Millis, from| {
                h.at(at).pop_read("og", 0, at, 0, 1, true, from);
            };
            if first < 2_000 {
                read(&mut h, first, ReadFrom::CommitOffset);
                h.at(2_000).reset_consumed("og", 0, 0);
                read(&mut h, 2_000, ReadFrom::PendingReset);
            } else {
                h.at(1_500).reset_consumed("og", 0, 0);
                read(&mut h, first, ReadFrom::CommitOffset);
                read(&mut h, 2_600, ReadFrom::CommitOffset);
            }
            let second = if first < 2_000 { 2_000 } else { 2_600 };
            h.at(3_000).pop_served_at("o1", "m0", 0, 0, first);
            h.at(3_100).pop_served_at("o2", "m0", 0, 0, second);
            check(&h.build()).status
        };
        assert_eq!(run(1_000), Status::Held);
        // Both served after the reset was consumed: two batches outstanding at once.
        assert_eq!(run(2_500), Status::Violated);
    }

    #[test]
    fn a_batch_read_before_the_reset_by_a_pop_of_the_takers_pop_time_is_discarded() {
        // Develop-random seed 193165 (`--fix all`): two proxy pops of the group began at
        // 1.008 s. o1's read queue 0 from 0 at once (three messages); the other read another
        // queue first, reached queue 0 at 1.069 s, after a reset to 2 was assigned, took it
        // (`resetPopOffset` clears the block) and read 2 from there, and committed its read
        // start 2 at 1.167 s. o1's answer was recorded at 1.150 s. Both reads share group,
        // queue and popTime; o1's handles name the read from 0, served before the reset.
        let run = |delivered_start: u64| {
            let mut h = H::orderly();
            h.at(1_008).commit("og", 0, 0, "getPopOffset");
            h.at(1_008)
                .pop_read("og", 0, 1_008, 0, 3, true, ReadFrom::InitOffset);
            h.at(1_008)
                .commit("og", 0, 0, "PopMessageProcessor.orderly");
            h.at(1_039).reset("og", 0, 2);
            h.at(1_069).reset_consumed("og", 0, 2);
            h.at(1_069).commit("og", 0, 2, "ResetPopOffset");
            h.at(1_069)
                .pop_read("og", 0, 1_008, 2, 1, true, ReadFrom::PendingReset);
            for off in delivered_start..3 {
                let msg = format!("m{off}");
                h.at(1_150)
                    .pop_of_batch_served_at("o1", &msg, 0, off, delivered_start, 1_008);
            }
            h.at(1_167)
                .commit("og", 0, 2, "PopMessageProcessor.orderly");
            if delivered_start == 2 {
                h.at(1_200)
                    .commit("og", 0, 3, "PopMessageProcessor.orderly");
            }
            check(&h.build()).status
        };
        assert_eq!(run(0), Status::Held);
        // The batch read from the pending reset is outstanding: a commit past its un-acked
        // offset 2 is a violation.
        assert_eq!(run(2), Status::Violated);
    }

    #[test]
    fn concurrent_groups_are_not_applicable() {
        let mut h = H::new();
        let d = h.at(1_000).pop("c1", "m0", 0, 0);
        h.at(1_000).commit("g1", 0, 5, "PopBufferMergeService");
        h.at(2_000).ack(&d);
        assert_eq!(
            check(&h.build()),
            Verdict::not_applicable("no orderly delivery")
        );
    }
}
