//! A reset of one queue does not make the group pop already-delivered messages of its other queues again.
//!
//! Targets the inference recorded with #9370: `clearPullOffset(group, topic)` drops the pull
//! offsets of *every* queue of topic@group, so after a single-queue reset a non-FIFO KV pop
//! on another queue falls back to its commit offset and may read in-flight messages again.
//!
//! Semantics: a delivery of offset o out of the original queue q' of group g is a violation
//! when g was already handed o out of q' earlier, a reset of a single other queue q of the
//! same topic and group was applied in between, and in between there was neither a reset of
//! q' itself (an all-queue reset resets q' too) nor a broker crash (a crash may roll commit
//! offsets back, which is at-least-once). A reset of q' counts at its assignment and again
//! where a pop took it (`ResetConsumed`): a read whose offset was taken before the reset was
//! pending is replayed when it is applied. "In between" is judged at the pops, not at the
//! answers' arrival (`index::PopPositions`): a reset between a pop and its answer came after
//! the pop. For orderly deliveries a re-pop after the earlier
//! batch lapsed un-acked is how orderly POP retries, so it counts only if the earlier
//! delivery was effectively acked or its receipt had not yet expired. Retry copies never
//! count: they are new copies in another topic.

use super::index::{secs, witness_events, Facts, ResetPoint};
use super::{Affected, AffectedList, InvariantInfo, Verdict, Witness};
use crate::history::EventKind;
use broker_core::{BrokerEvent, Millis};
use std::collections::BTreeMap;

pub(crate) const INFO: InvariantInfo = InvariantInfo {
    name: "reset-leaves-other-queues",
    statement: "A reset of one queue does not make the group pop already-delivered messages of its other queues again.",
};

/// The latest delivery of one offset: (event index, receipt deadline, orderly).
type Prior = (usize, Millis, bool);

#[cfg(test)]
pub(crate) fn check(history: &crate::history::History) -> Verdict {
    check_with(&Facts::new(history))
}

pub(crate) fn check_with(facts: &Facts) -> Verdict {
    let history = facts.h;
    let points = facts.resets();
    if !points.iter().any(|p| !p.all_queues) {
        return Verdict::not_applicable("no single-queue reset succeeded");
    }
    let mut by_idx: BTreeMap<usize, Vec<&ResetPoint>> = BTreeMap::new();
    for p in points {
        by_idx.entry(p.idx).or_default().push(p);
    }
    let acks = facts.acks();
    let acked_at: BTreeMap<usize, usize> = acks.acked.iter().map(|(a, d)| (*d, *a)).collect();
    // Deliveries are placed at their pops: a reset or crash between a pop and its answer
    // came after the pop. Same-millisecond events may excuse, never convict.
    let pops = facts.pops();

    // (group, topic) → queue → index of its latest reset (assigned or taken by a pop), all
    // resets and single-queue ones.
    let mut own: BTreeMap<(&str, &str), BTreeMap<u32, usize>> = BTreeMap::new();
    let mut single: BTreeMap<(&str, &str), BTreeMap<u32, &ResetPoint>> = BTreeMap::new();
    let mut seen: BTreeMap<(&str, &str, u32, u64), Prior> = BTreeMap::new();
    let mut last_crash: Option<usize> = None;
    let mut found: Vec<Witness> = Vec::new();
    let mut affected = AffectedList::default();

    for (idx, e) in history.events.iter().enumerate() {
        for p in by_idx.get(&idx).into_iter().flatten() {
            own.entry((&p.group, &p.topic))
                .or_default()
                .insert(p.queue, idx);
            if !p.all_queues {
                single
                    .entry((&p.group, &p.topic))
                    .or_default()
                    .insert(p.queue, p);
            }
        }
        match &e.kind {
            EventKind::Broker(BrokerEvent::Crashed { .. }) => last_crash = Some(idx),
            // A pop that takes a pending reset (`PopMessageProcessor.resetPopOffset`) clears
            // the queue's offset queue and commits the reset offset: a read that took its
            // offset before the reset was pending is replayed from here.
            EventKind::Broker(BrokerEvent::ResetConsumed {
                group,
                topic,
                queue_id,
                ..
            }) => {
                own.entry((group, topic))
                    .or_default()
                    .insert(*queue_id, idx);
            }
            EventKind::Delivered {
                group,
                msg_id,
                topic,
                queue_id,
                queue_offset,
                retry_topic: None,
                pop_time,
                invisible_time,
                orderly,
                ..
            } => {
                let key = (group.as_str(), topic.as_str(), *queue_id, *queue_offset);
                let prior = seen.insert(key, (idx, pop_time + invisible_time, *orderly));
                let Some((prev, deadline, prev_orderly)) = prior else {
                    continue;
                };
                let gt = (group.as_str(), topic.as_str());
                let (prev_pop, this_pop) = (pops.of(prev), pops.of(idx));
                let own_reset = own
                    .get(&gt)
                    .and_then(|m| m.get(queue_id))
                    .is_some_and(|r| *r >= prev_pop.after_from);
                if own_reset || last_crash.is_some_and(|c| c >= prev_pop.after_from) {
                    continue;
                }
                let acked = acked_at.get(&prev).is_some_and(|a| *a < idx);
                if prev_orderly && !acked && pops.decided_at(idx, *pop_time) >= deadline {
                    continue;
                }
                let other = single
                    .get(&gt)
                    .into_iter()
                    .flat_map(|m| m.iter())
                    .filter(|(q, p)| {
                        *q != queue_id && p.idx >= prev_pop.before_to && p.idx < this_pop.after_from
                    })
                    .map(|(_, p)| *p)
                    .min_by_key(|p| p.idx);
                if let Some(r) = other {
                    affected.push(
                        Affected::at("re-popped-after-other-reset", history, idx)
                            .events(vec![prev, r.idx, idx]),
                    );
                    found.push(Witness {
                        msg_id: Some(msg_id.to_string()),
                        summary: format!(
                            "after group {group}'s queue {topic}/{} was reset at {}, {msg_id} (queue {topic}/{queue_id} offset {queue_offset}, first delivered at {}) was popped again at {}",
                            r.queue,
                            secs(r.at),
                            secs(history.events[prev].at),
                            secs(*pop_time)
                        ),
                        events: witness_events(vec![prev, r.idx, idx]),
                    });
                }
            }
            _ => {}
        }
    }
    let count = found.len();
    Verdict::from_witness(found.into_iter().next().map(|mut w| {
        if count > 1 {
            w.summary.push_str(&format!(" ({count} re-pops in all)"));
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

    #[test]
    fn re_pop_on_another_queue_after_a_reset_is_a_violation() {
        let mut h = H::new();
        let d = h.at(1_000).pop("c1", "m5", 1, 5);
        let reset = h.at(2_000).reset("g1", 0, 0);
        let again = h.at(3_000).pop("c1", "m5", 1, 5);
        let v = check(&h.build());
        assert_eq!(v.status, Status::Violated);
        let w = v.witness.unwrap();
        assert_eq!(w.msg_id.as_deref(), Some("m5"));
        assert_eq!(w.events, vec![d.idx, reset, again.idx]);
        assert_eq!(
            w.summary,
            "after group g1's queue TopicA/0 was reset at 2.000s, m5 (queue TopicA/1 offset 5, first delivered at 1.000s) was popped again at 3.000s"
        );
    }

    #[test]
    fn a_reset_of_its_own_queue_while_the_answer_was_in_flight_excuses_the_re_pop() {
        // develop-random seed 55: o1's pop of queue 9 was served at 6.797s, an all-queue
        // reset (queue 9 to 0 included) was assigned at 7.108s, the answer arrived at
        // 7.115s; a later one-queue reset of queue 2 came before queue 9's re-pop from 0.
        // The queue-9 reset followed the pop: the re-pop is its doing.
        let run = |own_reset_at: Millis| {
            let mut h = H::new();
            h.at(own_reset_at).reset("g1", 1, 5);
            h.at(1_010).pop_served_at("c1", "m5", 1, 5, 1_000);
            h.at(3_000).reset("g1", 0, 0);
            h.at(5_000).pop("c1", "m5", 1, 5);
            check(&h.build()).status
        };
        assert_eq!(run(1_005), Status::Held);
        // The own reset before the pop was served excuses nothing.
        assert_eq!(run(995), Status::Violated);
    }

    #[test]
    fn a_reset_of_its_own_queue_a_later_pop_took_excuses_the_re_pop() {
        // develop-random seed 41446 (every fix on): c1's pop (popTime 4.366s) took its
        // offset in orders/0 before an all-queue reset (queue 0 to 2) was assigned at
        // 4.502s, and its read, recorded when it completed at 4.524s, found offset 2. At
        // 4.633s another pop took queue 0's pending reset (`resetPopOffset`:
        // `clearOffsetQueue` dropped the first pop's offset wrapper and committed 2), so the
        // next pop read offset 2 again. A one-queue reset of orders/2 fell in between; the
        // replay is queue 0's own reset taking effect.
        let run = |taken_at: Millis| {
            let mut h = H::new();
            h.at(1_000).reset_request("g1", -1, None);
            for q in [0, 1] {
                h.broker(BrokerEvent::ResetAssigned {
                    at: 1_000,
                    group: "g1".into(),
                    topic: crate::testkit::T.into(),
                    queue_id: q,
                    offset: 5,
                    wrote_offset_table: true,
                });
            }
            if taken_at < 1_010 {
                h.at(taken_at).reset_consumed("g1", 1, 5);
            }
            h.at(1_010)
                .pop_read("g1", 1, 900, 5, 1, false, broker_core::ReadFrom::BufferedCk);
            h.at(1_050).pop_served_at("c1", "m5", 1, 5, 900);
            if taken_at > 1_010 {
                h.at(taken_at).reset_consumed("g1", 1, 5);
            }
            h.at(2_000).reset("g1", 0, 0);
            h.at(3_000).pop("c1", "m5", 1, 5);
            check(&h.build()).status
        };
        assert_eq!(run(1_100), Status::Held);
        // Taken before the first pop's read: the read came after it and nothing replays it.
        assert_eq!(run(1_005), Status::Violated);
    }

    #[test]
    fn an_orderly_re_pop_the_broker_decided_after_the_lapse_holds() {
        // develop-random seed 122: o2's pop began at 28.196s, before o1's receipt lapsed at
        // 28.258s, but reached queue 2 (and checked its block) at 28.3s.
        let run = |decided: Option<Millis>| {
            let mut h = H::orderly();
            h.consumer("o2", "og", ConsumerKind::Orderly, -1);
            h.at(1_000).pop("o1", "m5", 1, 5); // invisible until 11.000s
            h.at(5_000).reset("og", 0, 0);
            if let Some(t) = decided {
                h.at(t).pop_read(
                    "og",
                    1,
                    10_950,
                    5,
                    1,
                    true,
                    broker_core::ReadFrom::CommitOffset,
                );
            }
            h.at(11_020).pop_served_at("o2", "m5", 1, 5, 10_950);
            check(&h.build()).status
        };
        assert_eq!(run(Some(11_010)), Status::Held);
        assert_eq!(run(None), Status::Violated);
    }

    #[test]
    fn replays_of_the_reset_queue_and_after_a_crash_hold() {
        let mut h = H::new();
        h.at(1_000).pop("c1", "m0", 0, 0);
        h.at(1_000).pop("c1", "m5", 1, 5);
        h.at(2_000).reset("g1", 0, 0);
        // The reset queue itself replays, and a crash may roll queue 1 back.
        h.at(3_000).pop("c1", "m0", 0, 0);
        h.at(4_000).crash();
        h.at(5_000).restart();
        h.at(6_000).pop("c1", "m5", 1, 5);
        // A retry copy is a new copy.
        h.at(7_000).pop_retry("c1", "m5", 0, 1);
        assert_eq!(check(&h.build()), Verdict::held());
    }

    #[test]
    fn an_orderly_re_pop_after_expiry_holds_but_not_after_an_ack() {
        let mut h = H::new();
        h.consumer("o1", "og", ConsumerKind::Orderly, -1);
        h.at(1_000).pop("o1", "m5", 1, 5);
        h.at(2_000).reset("og", 0, 0);
        h.at(11_000).pop("o1", "m5", 1, 5);
        assert_eq!(check(&h.build()), Verdict::held());

        let mut h = H::new();
        h.consumer("o1", "og", ConsumerKind::Orderly, -1);
        let d = h.at(1_000).pop("o1", "m5", 1, 5);
        h.at(1_500).ack(&d);
        h.at(2_000).reset("og", 0, 0);
        h.at(11_000).pop("o1", "m5", 1, 5);
        assert_eq!(check(&h.build()).status, Status::Violated);
    }

    #[test]
    fn all_queue_resets_are_not_applicable() {
        let mut h = H::new();
        h.at(1_000).reset_request("g1", -1, None);
        h.at(1_000).broker(BrokerEvent::ResetAssigned {
            at: 1_000,
            group: "g1".into(),
            topic: crate::testkit::T.into(),
            queue_id: 0,
            offset: 0,
            wrote_offset_table: true,
        });
        assert_eq!(
            check(&h.build()),
            Verdict::not_applicable("no single-queue reset succeeded")
        );
    }
}
