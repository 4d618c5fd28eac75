//! Per orderly group and queue, deliveries follow queue-offset order: repeats are allowed, gaps and reordering are not.
//!
//! The per-queue form of openmessaging-chaos's `OrderChecker`: the stored sequence must be a
//! subsequence of what was delivered, duplicates tolerated.
//!
//! Semantics: take the orderly deliveries (`Delivered` with `orderly`) of each (group, topic,
//! queue) in history order. Each offset must be at most one past the previous delivered
//! offset: the next message, or a step back to replay (after an expired batch, a restart, or
//! a reset). Anything further ahead skips messages, which also covers reordering within a
//! batch (`0, 2, 1` skips 1 first). The first delivery of a queue may start anywhere (the
//! group's start position), and so may the first one after a reset of that queue, which
//! may move the position forward on purpose.

use super::index::{resets, secs, witness_events};
use super::{Affected, AffectedList, InvariantInfo, Verdict, Witness};
use crate::history::{EventKind, History};
use std::collections::BTreeMap;

pub(crate) const INFO: InvariantInfo = InvariantInfo {
    name: "orderly-order",
    statement: "Per orderly group and queue, deliveries follow queue-offset order: repeats are allowed, gaps and reordering are not.",
};

/// (group, topic, queue).
type QueueKey<'h> = (&'h str, &'h str, u32);

pub(crate) fn check(history: &History) -> Verdict {
    let points = resets(history);
    let mut reset_idx: BTreeMap<usize, Vec<QueueKey>> = BTreeMap::new();
    for p in &points {
        reset_idx
            .entry(p.idx)
            .or_default()
            .push((&p.group, &p.topic, p.queue));
    }
    // (group, topic, queue) → previous delivery (offset, index), None right after a reset.
    let mut prev: BTreeMap<QueueKey, Option<(u64, usize)>> = BTreeMap::new();
    let mut deliveries = 0usize;
    let mut found: Vec<Witness> = Vec::new();
    let mut affected = AffectedList::default();
    for (idx, e) in history.events.iter().enumerate() {
        for key in reset_idx.get(&idx).into_iter().flatten() {
            prev.insert(*key, None);
        }
        let EventKind::Delivered {
            group,
            msg_id,
            topic,
            queue_id,
            queue_offset,
            orderly: true,
            ..
        } = &e.kind
        else {
            continue;
        };
        deliveries += 1;
        let slot = prev.entry((group, topic, *queue_id)).or_insert(None);
        if let Some((p, pidx)) = *slot {
            if *queue_offset > p + 1 {
                affected
                    .push(Affected::at("offsets-skipped", history, idx).events(vec![pidx, idx]));
                found.push(Witness {
                    msg_id: Some(msg_id.clone()),
                    summary: format!(
                        "group {group} got offset {queue_offset} of queue {topic}/{queue_id} at {} right after offset {p}: offsets {}..={} were skipped",
                        secs(e.at),
                        p + 1,
                        queue_offset - 1
                    ),
                    events: witness_events(vec![pidx, idx]),
                });
            }
        }
        *slot = Some((*queue_offset, idx));
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
    fn concurrent_deliveries_are_not_judged() {
        let mut h = H::new();
        h.at(1_000).pop("c1", "m0", 0, 0);
        h.at(1_000).pop("c1", "m5", 0, 5);
        assert_eq!(
            check(&h.build()),
            Verdict::not_applicable("no orderly delivery")
        );
    }
}
