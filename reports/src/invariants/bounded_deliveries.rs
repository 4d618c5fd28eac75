//! Without faults, resets or changeInvisibleTime, the listener sees a message at most effective maxReconsumeTimes + 1 times per group.
//!
//! Targets bug (b) (#8332: a pop-timed-out result skipped the only maxReconsumeTimes check,
//! so a slow listener consumed the same message forever).
//!
//! Semantics:
//! - Counts `ListenerStarted` per (group, msg_id); retry copies count, skipped-on-receipt
//!   deliveries do not (the listener never ran).
//! - The limit is `effective_max_reconsume_times + 1` of the consumer that ran the listener
//!   (the largest in the group if several consumers saw it): −1 means 16 for concurrent
//!   consumers and `i32::MAX` for orderly ones, as `getMaxReconsumeTimes` says.
//! - For a FIFO (orderly) message the bound is per *streak*: upstream counts a hand-out only
//!   as a re-read of the queue's previous batch (`ConsumerOrderInfoManager.update` builds a
//!   new `OrderInfo` for every orderly pop and `OrderInfo.mergeOffsetConsumedCount` carries a
//!   count over only for an offset in the previous batch's offset list; upstream's
//!   `ConsumerOrderInfoManagerTest.testConsumedCount` pins this), so reconsumeTimes, and the
//!   proxy filter's and the orderly client's dead-letter decision with it, start again from
//!   0 once a read of the queue left the message out (a pop across several queues that filled
//!   its batch before reaching it). A streak begins at a group's orderly read (`PopRead`) that
//!   covers the message's offset when the group's previous read of that queue did not; a run
//!   belongs to the streak of its consumer's latest delivery of the message before it. The
//!   acked entries of a batch whose head lapsed come back with it (the new `OrderInfo`
//!   starts with no acked bit), as no-redelivery-after-ack allows, and count in the streak.
//! - Judged only where the bound is promised: a run with injected faults is not applicable;
//!   a group that saw a reset is left out (a reset replays on purpose); a message whose
//!   receipt was moved by a changeInvisibleTime in that group is left out (a nack asks for
//!   redelivery, and the orderly client may suspend and retry).

use super::index::{is_success, secs, witness_events, Facts, LookupMap, LookupSet};
use super::{Affected, AffectedList, InvariantInfo, Verdict, Witness};
use crate::history::{EventKind, History};
use broker_core::{BrokerEvent, Millis, Name};
use std::collections::BTreeMap;

pub(crate) const INFO: InvariantInfo = InvariantInfo {
    name: "bounded-deliveries",
    statement: "Without faults, resets or changeInvisibleTime, the listener sees a message at most effective maxReconsumeTimes + 1 times per group.",
};

#[cfg(test)]
pub(crate) fn check(history: &History) -> Verdict {
    check_with(&Facts::new(history))
}

pub(crate) fn check_with(facts: &Facts) -> Verdict {
    let history = facts.h;
    if history.meta.faulty {
        return Verdict::not_applicable("the run injected faults");
    }
    let limit_of = |consumer: &str| -> u64 {
        history
            .meta
            .consumers
            .iter()
            .find(|c| c.name == consumer)
            .map_or(u64::MAX, |c| u64::from(c.effective_max_reconsume_times) + 1)
    };
    // Where each message was stored: (topic, queue, offset) → message.
    let at_offset: LookupMap<(Name, u32, u64), &str> = (facts.origins().iter())
        .map(|(m, o)| ((o.topic.clone(), o.queue, o.offset), *m))
        .collect();
    // The group's previous orderly read of each queue: (start, count).
    let mut last_read: LookupMap<(&str, &str, u32), (u64, u32)> = LookupMap::default();
    // (group, msg) → popTimes of the reads that began a streak of it.
    let mut streaks: LookupMap<(&str, &str), Vec<Millis>> = LookupMap::default();
    // (group, msg, consumer) → popTimes of the consumer's orderly deliveries, in order.
    let mut fifo_deliveries: LookupMap<(&str, &str, &str), Vec<Millis>> = LookupMap::default();
    // Per run: the popTime of its consumer's latest orderly delivery of the message.
    let mut run_pop: LookupMap<usize, Millis> = LookupMap::default();
    let mut reset_groups: LookupSet<&str> = LookupSet::default();
    let mut nacked: LookupSet<(&str, &str)> = LookupSet::default();
    // (group, msg) → (limit, listener runs).
    let mut runs: BTreeMap<(&str, &str), (u64, Vec<usize>)> = BTreeMap::new();
    // (group, msg) → its first delivery, which names the queue and offset.
    let mut first_delivery: LookupMap<(&str, &str), usize> = LookupMap::default();
    // (group, msg) → every delivery's (index, receipt deadline) and every listener finish:
    // why the runs repeated.
    let mut deliveries: LookupMap<(&str, &str), Vec<(usize, u64)>> = LookupMap::default();
    let mut finishes: LookupMap<(&str, &str), Vec<usize>> = LookupMap::default();
    for (idx, e) in history.events.iter().enumerate() {
        match &e.kind {
            EventKind::Broker(BrokerEvent::PopRead {
                group,
                topic,
                queue_id,
                offset,
                count,
                pop_time,
                orderly: true,
                ..
            }) => {
                let prev = last_read.insert((group, topic, *queue_id), (*offset, *count));
                let covers =
                    |(s, n): (u64, u32), o: u64| s <= o && o < s.saturating_add(u64::from(n));
                for o in *offset..offset.saturating_add(u64::from(*count)) {
                    if prev.is_some_and(|p| covers(p, o)) {
                        continue;
                    }
                    if let Some(m) = at_offset.get(&(topic.clone(), *queue_id, o)) {
                        streaks.entry((group, m)).or_default().push(*pop_time);
                    }
                }
            }
            EventKind::Delivered {
                consumer,
                group,
                msg_id,
                pop_time,
                invisible_time,
                orderly,
                ..
            } => {
                if *orderly {
                    (fifo_deliveries
                        .entry((group, msg_id, consumer))
                        .or_default())
                    .push(*pop_time);
                }
                first_delivery.entry((group, msg_id)).or_insert(idx);
                deliveries
                    .entry((group, msg_id))
                    .or_default()
                    .push((idx, pop_time + invisible_time));
            }
            EventKind::ListenerFinished { group, msg_id, .. } => {
                finishes.entry((group, msg_id)).or_default().push(idx);
            }
            EventKind::ResetRequested { group, .. }
            | EventKind::Broker(BrokerEvent::ResetAssigned { group, .. }) => {
                reset_groups.insert(group);
            }
            EventKind::ChangeInvisibleResult {
                group,
                msg_id,
                outcome,
                ..
            } if is_success(outcome) => {
                nacked.insert((group, msg_id));
            }
            EventKind::ListenerStarted {
                consumer,
                group,
                msg_id,
                ..
            } => {
                let r = runs.entry((group, msg_id)).or_insert((0, Vec::new()));
                r.0 = r.0.max(limit_of(consumer));
                r.1.push(idx);
                if let Some(p) = (fifo_deliveries.get(&(group.as_str(), msg_id.as_str(), consumer)))
                    .and_then(|d| d.last())
                {
                    run_pop.insert(idx, *p);
                }
            }
            _ => {}
        }
    }
    let mut judged = 0usize;
    let mut worst: Option<(&str, &str, u64, &Vec<usize>)> = None;
    let mut affected = AffectedList::default();
    // A message's (group, message), its limit, and its runs split into its streaks (one
    // list for any other than a FIFO message); in `runs`' order, which is the report's.
    type Split<'a> = ((&'a str, &'a str), (u64, Vec<Vec<usize>>));
    let mut split: Vec<Split> = Vec::with_capacity(runs.len());
    for (key, (limit, idxs)) in &runs {
        let starts = streaks.get(key).map_or(&[][..], Vec::as_slice);
        let mut parts: BTreeMap<usize, Vec<usize>> = BTreeMap::new();
        for &i in idxs {
            let streak = run_pop
                .get(&i)
                .map_or(0, |p| starts.partition_point(|s| s <= p));
            parts.entry(streak).or_default().push(i);
        }
        split.push((*key, (*limit, parts.into_values().collect())));
    }
    for ((group, msg), (limit, parts)) in &split {
        if reset_groups.contains(group) || nacked.contains(&(*group, *msg)) {
            continue;
        }
        judged += 1;
        let Some(idxs) = parts
            .iter()
            .max_by_key(|p| (p.len(), std::cmp::Reverse(p[0])))
        else {
            continue;
        };
        let over = idxs.len() as u64 > *limit;
        if over {
            let delivery = first_delivery.get(&(*group, *msg)).copied();
            affected.push({
                let mut events = idxs.clone();
                events.extend(delivery);
                Affected::at("over-delivered", history, idxs[0]).events(events)
            });
        }
        // The earliest offender in history order makes the most readable witness.
        if over && worst.is_none_or(|w| idxs[*limit as usize] < w.3[w.2 as usize]) {
            worst = Some((group, msg, *limit, idxs));
        }
    }
    if judged == 0 {
        return Verdict::not_applicable("no listener run outside resets and changeInvisibleTime");
    }
    Verdict::from_witness(worst.map(|(group, msg, limit, idxs)| {
        let key = (group, msg);
        let why = why_repeated(
            history,
            idxs,
            deliveries.get(&key).map_or(&[][..], Vec::as_slice),
            finishes.get(&key).map_or(&[][..], Vec::as_slice),
            limit - 1,
        );
        let mut events = idxs.clone();
        events.extend(why.events);
        Witness {
            msg_id: Some((*msg).to_owned()),
            summary: format!(
                "the listener of group {group} ran {} times on {msg}; the limit is {limit} (maxReconsumeTimes {} + 1){}",
                idxs.len(),
                limit - 1,
                why.text
            ),
            events: witness_events(events),
        }
    }))
    .with_affected(affected)
}

/// The causal chain behind repeated runs, from the first run: its delivery's deadline, when
/// the listener finished, and whether the client took the pop-timeout path.
struct Why {
    text: String,
    events: Vec<usize>,
}

fn why_repeated(
    history: &History,
    runs: &[usize],
    deliveries: &[(usize, u64)],
    finishes: &[usize],
    max: u64,
) -> Why {
    let at = |i: usize| history.events[i].at;
    let Some(&start) = runs.first() else {
        return Why {
            text: String::new(),
            events: Vec::new(),
        };
    };
    let delivery = deliveries.iter().rev().find(|(d, _)| *d < start).copied();
    let finish = finishes.iter().copied().find(|f| *f > start);
    let timed_out = |f: usize| {
        matches!(
            history.events[f].kind,
            EventKind::ListenerFinished {
                pop_timed_out: true,
                ..
            }
        )
    };
    let late_runs = finishes.iter().filter(|f| timed_out(**f)).count();
    let (Some((d, deadline)), Some(f)) = (delivery, finish) else {
        return Why {
            text: String::new(),
            events: Vec::new(),
        };
    };
    let mut text = format!(
        "; why: the first run went from {} to {}, ",
        secs(at(start)),
        secs(at(f))
    );
    if timed_out(f) {
        text.push_str(&format!(
            "past its receipt's deadline {}: the client took the pop-timeout path (no ack, no nack) and the broker revived the message; {late_runs} of {} runs ended that way",
            secs(deadline),
            runs.len()
        ));
        if history
            .meta
            .behaviours
            .iter()
            .any(|b| b == "pop-timeout-skips-max-reconsume")
        {
            text.push_str(&format!(
                "; a timed-out result skips processConsumeResult, the only place this client checks maxReconsumeTimes {max}, and it does not ack over-consumed messages on receipt (pop-timeout-skips-max-reconsume, #8333)"
            ));
        }
    } else {
        text.push_str(&format!("within its receipt's deadline {}", secs(deadline)));
    }
    Why {
        text,
        events: vec![d, f],
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::history::{ConsumeOutcome, ConsumerKind};
    use crate::invariants::Status;
    use crate::testkit::H;

    /// Bug (b)'s shape: maxReconsumeTimes 0, every listener run outlives the receipt.
    fn slow_listener(h: &mut H, runs: u32) -> Vec<usize> {
        let mut idxs = Vec::new();
        let mut d = h.at(0).pop("c1", "m1", 0, 0);
        for i in 0..runs {
            let t = u64::from(i) * 16_000;
            if i > 0 {
                d = h.at(t).pop_retry("c1", "m1", u64::from(i - 1), i);
            }
            idxs.push(h.at(t).listener(&d));
            h.at(t + 12_000).revive(&d, u64::from(i), i + 1);
            h.at(t + 15_000)
                .listener_done(&d, ConsumeOutcome::Success, true);
        }
        idxs
    }

    #[test]
    fn more_listener_runs_than_the_limit_is_a_violation() {
        let mut h = H::new();
        h.consumer("c1", "g1", ConsumerKind::Concurrent, 0);
        let runs = slow_listener(&mut h, 3);
        let v = check(&h.build());
        assert_eq!(v.status, Status::Violated);
        let w = v.witness.unwrap();
        assert_eq!(w.msg_id.as_deref(), Some("m1"));
        assert!(runs.iter().all(|r| w.events.contains(r)), "{:?}", w.events);
        assert!(
            w.summary.starts_with(
                "the listener of group g1 ran 3 times on m1; the limit is 1 (maxReconsumeTimes 0 + 1); why: the first run went from"
            ),
            "{}",
            w.summary
        );
    }

    #[test]
    fn runs_within_the_effective_limit_hold() {
        // maxReconsumeTimes −1 means 16: three runs are fine.
        let mut h = H::new();
        slow_listener(&mut h, 3);
        assert_eq!(check(&h.build()), Verdict::held());
        // maxReconsumeTimes 2: exactly three runs are fine.
        let mut h = H::new();
        h.consumer("c1", "g1", ConsumerKind::Concurrent, 2);
        slow_listener(&mut h, 3);
        assert_eq!(check(&h.build()), Verdict::held());
    }

    #[test]
    fn a_fifo_message_a_read_left_out_starts_its_count_again() {
        // develop-random with retryMaxTimes 2, seed 1261 (no faults): s1 ran p-orders-48
        // (orders/3 offset 9) five times, maxAttempts 3. A pop across queues filled its batch
        // with orders/3 offsets 3..=4 only; the next read of 3..=9 found offset 9 outside
        // the previous batch, so `OrderInfo.mergeOffsetConsumedCount` gave it count 0 again.
        // Here: orderly o1, maxReconsumeTimes 1 (two runs); m1 at offset 1.
        let shape = |middle: &[(&str, u64)], run_middle: bool| {
            let mut h = H::orderly();
            h.consumer("o1", "og", ConsumerKind::Orderly, 1);
            h.at(0).produce("m0", 0, 0);
            h.at(0).produce("m1", 0, 1);
            let first = h.at(1_000).pop_batch("o1", &[("m0", 0), ("m1", 1)], 0);
            h.at(2_000).listener(&first[1]);
            let mid = h.at(20_000).pop_batch("o1", middle, 0);
            if run_middle {
                if let Some(r) = mid.iter().find(|r| r.msg_id == "m1") {
                    h.at(21_000).listener(r);
                }
            }
            for t in [40_000, 60_000] {
                let b = h.at(t).pop_batch("o1", &[("m0", 0), ("m1", 1)], 0);
                h.at(t + 1_000).listener(&b[1]);
            }
            check(&h.build())
        };
        // The read at 20 s left m1 out: two streaks, one run and two.
        assert_eq!(shape(&[("m0", 0)], false), Verdict::held());
        // It read m1 too: one streak of three runs (or four, with the run of that read).
        assert_eq!(
            shape(&[("m0", 0), ("m1", 1)], false).status,
            Status::Violated
        );
        let v = shape(&[("m0", 0), ("m1", 1)], true);
        assert!(v.witness.unwrap().summary.starts_with(
            "the listener of group og ran 4 times on m1; the limit is 2 (maxReconsumeTimes 1 + 1)"
        ));
    }

    #[test]
    fn faults_resets_and_nacks_take_runs_out_of_scope() {
        let mut h = H::new();
        h.consumer("c1", "g1", ConsumerKind::Concurrent, 0);
        slow_listener(&mut h, 3);
        h.faulty();
        assert_eq!(
            check(&h.build()),
            Verdict::not_applicable("the run injected faults")
        );

        let mut h = H::new();
        h.consumer("c1", "g1", ConsumerKind::Concurrent, 0);
        slow_listener(&mut h, 3);
        h.at(50_000).reset("g1", 0, 0);
        assert!(matches!(
            check(&h.build()).status,
            Status::NotApplicable { .. }
        ));

        let mut h = H::new();
        h.consumer("c1", "g1", ConsumerKind::Concurrent, 0);
        let d = h.at(0).pop("c1", "m2", 0, 1);
        h.listener(&d);
        let d = h.at(1_000).change_invisible(&d, 5_000);
        h.at(7_000).listener(&d);
        assert!(matches!(
            check(&h.build()).status,
            Status::NotApplicable { .. }
        ));
    }
}
