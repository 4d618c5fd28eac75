//! Every revive puts reconsumeTimes + 1 into the group's POP retry topic, never before the deadline of the latest receipt for its checkpoint, and never from a checkpoint a successful changeInvisibleTime replaced.
//!
//! Semantics, for every broker `Revived` event:
//! - its `retry_topic` is `%RETRY%<group>_<topic>` (V1) or `%RETRY%<group>+<topic>` (V2);
//! - its `reconsume_times` is the revived copy's plus one. The revived copy is the message
//!   at (CK topic, queue, `queue_offset`): an original counts 0; a retry copy counts what
//!   the revive that created it wrote (or, failing that, what its non-orderly deliveries
//!   carried: an orderly delivery carries the group's consumed count for the offset instead).
//!   Retry topics have one queue, so retry copies are keyed by topic and offset only. A copy
//!   the history never mentions is not judged for this clause;
//! - it happens no earlier than `popTime + invisibleTime` of the latest receipt descended
//!   from the CK it revives: the delivery whose receipt names that CK (same copy, popTime and
//!   invisible time: a changeInvisibleTime's CK and a pop's may share a millisecond; a CK
//!   re-put by `rePutCK` with a stretched invisible time is matched to the receipt with the
//!   earliest deadline among those with a shorter one), followed through successful
//!   changeInvisibleTime answers, each of which names a new CK and moves the deadline (either
//!   way). A change the broker handled (the new CK's popTime) at or after the named
//!   receipt's own deadline moves nothing for that receipt: `ackOrigin` gives its ACK that
//!   deadline as deliver time, already passed, so the ACK is stored directly
//!   (`HookUtils.transformTimerMessage`) and may reach the revive queue before the receipt's
//!   CK, still in a lagging timer; `consumeReviveMessage` drops an ACK whose CK it has not
//!   read, and the CK revives from its own deadline (a request after its receipt expired
//!   may lose the race with a revive already due, as a late ack may). Receipts form a tree: a change names one receipt and moves the deadline of that
//!   receipt and its ancestors only, so a retried change of the same handle leaves the first
//!   attempt's CK (a sibling) its own deadline. Other deliveries of the same copy, such as a
//!   re-pop after a crash, come with CKs of their own and do not move this one's deadline. A
//!   CK that no recorded receipt names is judged by its own revive time. A broker crash after
//!   the changeInvisibleTime that moved a CK's deadline excuses reviving that CK early: the
//!   change acks the old CK (`ackOrigin`), and an ack merged only in
//!   `PopBufferMergeService`'s buffer dies with the process (at-least-once under a crash).
//! - it does not come from a CK whose receipt a successful changeInvisibleTime named in time
//!   (the broker handled it before the receipt's own deadline): the change's `ackOrigin`
//!   acked that CK, and the new CK carries the message on, so another revive of the old one
//!   is a second copy for one change. The same crash excuses it; a late change (above) does
//!   not count.
//! - nor from the CK of a receipt that the node holding it (the gRPC proxy, once it records
//!   `HandleRenewed`; the client keeps its own handle) passed over: a successful change it
//!   made on a client's behalf named an older receipt of the same delivery, before the held
//!   receipt's own deadline, so the held one was never acked (finding F29: a failed change
//!   took the renewed handle out of the proxy's table and the client's retry named its
//!   original). A client's own change never held the renewed receipt and is not judged so,
//!   nor is a change after another copy of the message at the same queue and offset reached
//!   the client since the renewal: the proxy's `ReceiptHandleGroup.put` replaced the renewed
//!   handle in that client's entry (its `HandleKey` is broker, queue and offset), so the
//!   proxy held it no more (a replay after a crash or a reset; the renewed CK reviving is
//!   at-least-once).

use super::index::{
    ck_key, ck_owner, copy_key, is_success, receipt_ck, receipt_deadline, secs, witness_events,
    CkKey, CkShape, CopyKey, LookupMap, ReviveQueues, RevivedCk,
};
use super::{Affected, AffectedList, InvariantInfo, Verdict, Witness};
use crate::history::{EventKind, History};
use broker_core::{BrokerEvent, ExtraInfo, Millis};

pub(crate) const INFO: InvariantInfo = InvariantInfo {
    name: "revive-bookkeeping",
    statement: "Every revive puts reconsumeTimes + 1 into the group's POP retry topic, never before the deadline of the latest receipt for its checkpoint, and never from a checkpoint a successful changeInvisibleTime replaced.",
};

/// One receipt of a delivery's tree.
struct Node {
    /// The deadline of the latest receipt descended from this one (itself included).
    deadline: Millis,
    /// The event that set `deadline`.
    from: usize,
    /// The receipt a changeInvisibleTime named to make this one (`None` for a delivery).
    parent: Option<usize>,
    /// The invisible time and start offset of the CK the receipt names.
    ck: CkShape,
    /// The changeInvisibleTime that acked this receipt's CK (`ackOrigin`).
    acked_by_change: Option<usize>,
    /// When the ACK of this receipt's CK is due: the handle's popTime + invisibleTime, which
    /// `ChangeInvisibleTimeProcessor.ackOrigin` gives the ACK as its deliver time.
    ack_due: Millis,
    /// A changeInvisibleTime named this receipt only once its ACK was already due: its
    /// deadline stays where it was.
    changed_late: bool,
    /// A change the node holding this receipt made on a client's behalf named an older
    /// receipt of the same delivery instead (finding F29), so this receipt, which should
    /// have been the one replaced, was never acked: (that change, the renewal that gave the
    /// holder this receipt).
    passed_over_by: Option<(usize, usize)>,
}

/// A receipt the gRPC proxy renewed for a client and keeps in that client's handle table.
#[derive(Clone, Copy)]
struct Held<'h> {
    /// The node that renewed it (the proxy).
    holder: &'h str,
    /// The client whose table entry holds it.
    client: &'h str,
    /// The receipt's node.
    node: usize,
    /// The copy's queue and offset: with the message, the entry's key (`HandleKey`).
    at: (u32, u64),
    /// The `HandleRenewed` event.
    renewal: usize,
}

/// The first receipt of `n`'s tree (its delivery).
fn root(nodes: &[Node], mut n: usize) -> usize {
    while let Some(p) = nodes[n].parent {
        n = p;
    }
    n
}

/// The node whose CK a revived CK is, among the nodes of its group, copy and popTime
/// ([`ck_owner`]: the one rule the ack analysis uses too).
fn node_of(nodes: &[Node], candidates: &[usize], ck: RevivedCk) -> Option<usize> {
    let by_shape: Vec<(CkShape, usize)> = candidates.iter().map(|&n| (nodes[n].ck, n)).collect();
    ck_owner(&by_shape, ck)
}

pub(crate) fn check(history: &History) -> Verdict {
    // Copy → reconsumeTimes it was stored with.
    let mut stored: LookupMap<CopyKey, u32> = LookupMap::default();
    // Receipt trees (a delivery and its changeInvisibleTime successors), one node per
    // receipt: the latest deadline of the node's subtree, the event that set it, and the
    // receipt the change named (its parent).
    let mut nodes: Vec<Node> = Vec::new();
    // A CK key (group, copy, popTime) → the nodes whose CKs have it: a changeInvisibleTime's
    // CK and a pop's CK written in the same millisecond share it.
    let mut by_ck: LookupMap<CkKey, Vec<usize>> = LookupMap::default();
    // (group, receipt) → (node, copy).
    let mut receipts: LookupMap<(&str, &str), (usize, CopyKey)> = LookupMap::default();
    let mut revives = 0usize;
    let mut first: Option<Witness> = None;
    let mut violations = 0usize;
    let mut affected = AffectedList::default();
    let mut last_crash: Option<usize> = None;
    // (group, message) → the receipt a node renewed for a client (`HandleRenewed`: the gRPC
    // proxy's handle table holds it; the client keeps its own). A later delivery's receipts
    // are in another tree (`root`).
    let mut held: LookupMap<(&str, &str), Held> = LookupMap::default();

    let mut revive_queues = ReviveQueues::default();
    for (idx, e) in history.events.iter().enumerate() {
        revive_queues.see(&e.kind);
        match &e.kind {
            EventKind::Produced {
                topic,
                queue_id,
                queue_offset,
                ..
            } => {
                stored.insert(copy_key(topic, *queue_id, *queue_offset), 0);
            }
            EventKind::Delivered {
                group,
                topic,
                queue_id,
                queue_offset,
                retry_topic,
                reconsume_times,
                pop_time,
                invisible_time,
                receipt,
                orderly,
                consumer,
                msg_id,
                ..
            } => {
                let copy = copy_key(
                    retry_topic.as_deref().unwrap_or(topic),
                    *queue_id,
                    *queue_offset,
                );
                // Another copy of the held one reached its client: the proxy's
                // `ReceiptHandleGroup.put` replaced the renewed handle in that client's entry
                // (`HandleKey` equality is broker, queue and offset), so it holds it no more.
                let key = (group.as_str(), msg_id.as_str());
                if (held.get(&key))
                    .is_some_and(|h| h.client == &**consumer && h.at == (copy.1, copy.2))
                {
                    held.remove(&key);
                }
                // An original is stored with 0. An orderly delivery's reconsumeTimes is the
                // group's consumed count for that offset (the broker's order count info,
                // which `processPopResponse` copies into the message), not the stored
                // copy's, so it says nothing about what a revive must add to.
                if retry_topic.is_none() {
                    stored.entry(copy).or_insert(0);
                } else if !orderly {
                    stored.entry(copy).or_insert(*reconsume_times);
                }
                nodes.push(Node {
                    deadline: pop_time + invisible_time,
                    from: idx,
                    parent: None,
                    ck: receipt_ck(receipt, *invisible_time),
                    acked_by_change: None,
                    ack_due: receipt_deadline(receipt, pop_time + invisible_time),
                    changed_late: false,
                    passed_over_by: None,
                });
                let node = nodes.len() - 1;
                (by_ck
                    .entry(ck_key(group, copy, receipt, *pop_time))
                    .or_default())
                .push(node);
                receipts.insert((group, receipt), (node, copy));
            }
            EventKind::HandleRenewed {
                consumer,
                group,
                msg_id,
                new_receipt,
                ..
            } => {
                if let Some(&(node, copy)) = receipts.get(&(group.as_str(), new_receipt.as_str())) {
                    let holder = &e.node;
                    let (client, at, renewal) = (&**consumer, (copy.1, copy.2), idx);
                    held.insert(
                        (group, msg_id),
                        Held {
                            holder,
                            client,
                            node,
                            at,
                            renewal,
                        },
                    );
                }
            }
            EventKind::ChangeInvisibleResult {
                consumer,
                group,
                msg_id,
                receipt,
                invisible_time,
                new_receipt: Some(new),
                outcome,
            } if is_success(outcome) => {
                let Some((named, copy)) =
                    receipts.get(&(group.as_str(), receipt.as_str())).copied()
                else {
                    continue;
                };
                // The new receipt is a child of the one the change named; a retried change
                // of the same handle makes a sibling, so the deadline moves on the named
                // receipt and its ancestors only, never on an earlier sibling.
                let deadline = receipt_deadline(new, e.at + invisible_time);
                nodes.push(Node {
                    deadline,
                    from: idx,
                    parent: Some(named),
                    ck: receipt_ck(new, *invisible_time),
                    acked_by_change: None,
                    ack_due: deadline,
                    changed_late: false,
                    passed_over_by: None,
                });
                let node = nodes.len() - 1;
                // The broker handled the change at the new CK's popTime. From the named
                // receipt's own deadline on, its ACK is due at once and is stored directly,
                // while that receipt's CK may still wait in a lagging timer: the reviver can
                // read the ACK first and drop it. Such a late change does not move the named
                // receipt's deadline (nor, later, do its descendants' changes).
                let handled = ExtraInfo::parse(new).map_or(e.at, |x| x.pop_time);
                if handled >= nodes[named].ack_due {
                    nodes[named].changed_late = true;
                }
                let mut up = Some(named);
                while let Some(n) = up {
                    if !nodes[n].changed_late {
                        nodes[n].deadline = deadline;
                        nodes[n].from = idx;
                    }
                    up = nodes[n].parent;
                }
                if ExtraInfo::parse(receipt).is_some() {
                    nodes[named].acked_by_change = Some(idx);
                }
                // The node that holds a renewed receipt of this delivery changed an older one
                // on a client's behalf, before the held receipt's own deadline: the proxy
                // forgot its renewed handle (a failed change took it out of the table) and
                // changed the client's original, whose CK the renewal had acked already.
                if let Some(&Held {
                    holder,
                    node: r,
                    renewal,
                    ..
                }) = held.get(&(group.as_str(), msg_id.as_str()))
                {
                    if r == named {
                        held.remove(&(group.as_str(), msg_id.as_str()));
                    } else if holder == &*e.node
                        && *e.node != **consumer
                        && root(&nodes, r) == root(&nodes, named)
                        && handled < nodes[r].ack_due
                    {
                        nodes[r].passed_over_by.get_or_insert((idx, renewal));
                    }
                }
                (by_ck.entry(ck_key(group, copy, new, e.at)).or_default()).push(node);
                receipts.insert((group, new), (node, copy));
            }
            EventKind::Broker(BrokerEvent::Crashed { .. }) => last_crash = Some(idx),
            EventKind::Broker(BrokerEvent::Revived {
                group,
                topic,
                msg_id,
                ck,
                queue_offset,
                retry_topic,
                retry_queue_offset,
                reconsume_times,
                ..
            }) => {
                revives += 1;
                let copy = copy_key(&ck.topic, ck.queue_id, *queue_offset);
                let mut problems = Vec::new();
                let mut kinds = Vec::new();
                let mut events = vec![idx];
                let v1 = format!("%RETRY%{group}_{topic}");
                let v2 = format!("%RETRY%{group}+{topic}");
                if *retry_topic != v1 && *retry_topic != v2 {
                    problems.push(format!("went to {retry_topic}, not {v1} or {v2}"));
                    kinds.push("wrong-retry-topic");
                }
                if let Some(prev) = stored.get(&copy) {
                    if *reconsume_times != prev + 1 {
                        problems.push(format!(
                            "carries reconsumeTimes {reconsume_times}, the revived copy had {prev}"
                        ));
                        kinds.push("wrong-reconsume-times");
                    }
                }
                let key = (group.as_str(), copy, ck.pop_time);
                let node = by_ck
                    .get(&key)
                    .and_then(|c| node_of(&nodes, c, revive_queues.revived(ck)));
                let (deadline, from) = match node {
                    Some(n) => (nodes[n].deadline, Some(nodes[n].from)),
                    None => (ck.pop_time + ck.invisible_time, None),
                };
                let ack_died = node
                    .and_then(|n| nodes[n].acked_by_change)
                    .is_some_and(|change| last_crash.is_some_and(|c| c > change));
                // A change in time acked the CK's receipt (`ackOrigin`): the CK is done.
                let replaced_by = node
                    .filter(|&n| !nodes[n].changed_late)
                    .and_then(|n| nodes[n].acked_by_change);
                if e.at < deadline && !ack_died {
                    problems.push(format!(
                        "happened at {}, before the latest receipt's deadline {}",
                        secs(e.at),
                        secs(deadline)
                    ));
                    kinds.push("revived-before-deadline");
                    events.extend(from);
                } else if let Some((change, renewal)) = (node.and_then(|n| nodes[n].passed_over_by))
                    .filter(|(c, _)| last_crash.is_none_or(|l| l <= *c))
                {
                    let by = &history.events[change];
                    problems.push(format!(
                        "came from the checkpoint of the receipt {}'s renewal at {} gave it, which {} passed over: its changeInvisibleTime answered at {} on the client's behalf named the client's older receipt, already acked by that renewal, so this checkpoint was never acked (a second copy for one change)",
                        by.node,
                        secs(history.events[renewal].at),
                        by.node,
                        secs(by.at)
                    ));
                    kinds.push("revived-after-passed-over-change");
                    events.extend([renewal, change]);
                } else if let (Some(change), false) = (replaced_by, ack_died) {
                    // Why the ackOrigin did not cancel it, where the history says.
                    let lost = super::index::ack_given_up(history, ck, *queue_offset, idx);
                    problems.push(format!(
                        "came from a checkpoint whose receipt the changeInvisibleTime answered at {} had replaced (its ackOrigin acks that checkpoint): a second copy{}{}",
                        secs(history.events[change].at),
                        lost.map_or(String::new(), |(_, (_, at, attempts))| format!(
                            "; the timer gave that ACK record up at {} after {attempts} failed puts, so no reviver read it",
                            secs(at)
                        )),
                        misnamed_origin(&history.events[change].kind, ck).unwrap_or_default()
                    ));
                    kinds.push("revived-after-change");
                    events.push(change);
                    events.extend(lost.into_iter().flat_map(|(a, (g, _, _))| [a.idx, g]));
                }
                stored.insert(
                    copy_key(retry_topic, 0, *retry_queue_offset),
                    *reconsume_times,
                );
                if !problems.is_empty() {
                    violations += 1;
                    affected.push(Affected::at(kinds[0], history, idx).events(events.clone()));
                    if first.is_none() {
                        first = Some(Witness {
                            msg_id: Some(msg_id.to_string()),
                            summary: format!(
                                "the revive of {msg_id} for group {group} {}",
                                problems.join("; ")
                            ),
                            events: witness_events(events),
                        });
                    }
                }
            }
            _ => {}
        }
    }
    if revives == 0 {
        return Verdict::not_applicable("nothing was revived");
    }
    if let Some(w) = first.as_mut() {
        if violations > 1 {
            w.summary
                .push_str(&format!(" ({violations} bad revives in all)"));
        }
    }
    Verdict::from_witness(first).with_affected(affected)
}

/// When the change named a receipt of the checkpoint's popTime but another CK start offset
/// (finding F33: local mode's changed handle keeps the popped batch's start), why its
/// `ackOrigin` missed: it was keyed by that start.
fn misnamed_origin(change: &EventKind, ck: &broker_core::CkRef) -> Option<String> {
    let EventKind::ChangeInvisibleResult { receipt, .. } = change else {
        return None;
    };
    let named = super::index::names_other_start(receipt, ck)?;
    Some(format!(
        "; that change named receipt `{receipt}`, whose CK start offset {} is not this checkpoint's {}, so its ackOrigin was keyed by another CK",
        named.ck_queue_offset, ck.start_offset
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::invariants::Status;
    use crate::testkit::H;

    #[test]
    fn a_change_that_named_another_ck_start_says_its_ack_origin_missed() {
        // F33 (proxy-random 21, local mode): the renewal's handle kept the batch's start 3;
        // the change named it, and its ackOrigin was keyed by start 3, not the CK's 7.
        let ck = broker_core::CkRef {
            topic: "t".into(),
            group: "g".into(),
            queue_id: 0,
            start_offset: 7,
            pop_time: 175_020,
            invisible_time: 60_000,
            num: 1,
            broker_name: "broker-a".into(),
        };
        let change = |receipt: &str| EventKind::ChangeInvisibleResult {
            consumer: "c".into(),
            group: "g".into(),
            msg_id: "m".into(),
            receipt: receipt.into(),
            invisible_time: 5_000,
            new_receipt: None,
            outcome: crate::history::RpcOutcome::Timeout,
        };
        let why = misnamed_origin(&change("3 175020 60000 3 1 broker-a 0 7 0 85"), &ck);
        assert_eq!(
            why.as_deref(),
            Some("; that change named receipt `3 175020 60000 3 1 broker-a 0 7 0 85`, whose CK start offset 3 is not this checkpoint's 7, so its ackOrigin was keyed by another CK")
        );
        // The CK's own start, or another popTime: nothing to say.
        assert_eq!(
            misnamed_origin(&change("7 175020 60000 3 1 broker-a 0 7 85"), &ck),
            None
        );
        assert_eq!(
            misnamed_origin(&change("3 1000 60000 3 1 broker-a 0 7 85"), &ck),
            None
        );
    }

    #[test]
    fn a_correct_revive_chain_holds() {
        let mut h = H::new();
        h.at(0).produce("m1", 0, 0);
        let d = h.at(1_000).pop("c1", "m1", 0, 0);
        h.at(11_000).revive(&d, 0, 1);
        let r1 = h.at(12_000).pop_retry("c1", "m1", 0, 1);
        // A changeInvisibleTime that shortens the deadline: revive right after the new one.
        let r1 = h.at(13_000).change_invisible(&r1, 5_000);
        h.at(18_000).revive(&r1, 1, 2);
        let ck = h.ck_of(&d);
        let v2 = format!("%RETRY%g1+{}", crate::testkit::T);
        let d2 = h.at(1_000).pop("c1", "m2", 0, 1);
        h.at(20_000).revive_to(&d2, ck, 2, 1, &v2);
        assert_eq!(check(&h.build()), Verdict::held());
    }

    #[test]
    fn a_crash_after_the_change_excuses_reviving_the_old_ck_early() {
        // develop-random seed 91: the changeInvisibleTime's ackOrigin merged into the old
        // CK in the buffer; a crash lost it, and the stored old CK was revived before the
        // new receipt's deadline.
        let run = |crash_after_change: bool| {
            let mut h = H::new();
            h.at(0).produce("m1", 0, 0);
            let d = h.at(1_000).pop("c1", "m1", 0, 0);
            if !crash_after_change {
                h.at(3_000).crash();
                h.at(4_000).restart();
            }
            h.at(5_000).change_invisible(&d, 30_000);
            if crash_after_change {
                h.at(8_000).crash();
                h.at(9_000).restart();
            }
            h.at(12_000).revive(&d, 0, 1);
            check(&h.build()).status
        };
        assert_eq!(run(true), Status::Held);
        // A crash before the change excuses nothing.
        assert_eq!(run(false), Status::Violated);
    }

    #[test]
    fn a_revive_before_the_moved_deadline_is_a_violation() {
        let mut h = H::new();
        h.at(0).produce("m1", 0, 0);
        let d = h.at(1_000).pop("c1", "m1", 0, 0);
        let moved = h.at(5_000).change_invisible(&d, 30_000);
        // The original CK's revive time (11 s) passed, but the receipt now lasts until 35 s.
        let rev = h.at(12_000).revive(&d, 0, 1);
        let v = check(&h.build());
        assert_eq!(v.status, Status::Violated);
        let w = v.witness.unwrap();
        assert_eq!(w.events, vec![moved.idx, rev]);
        assert_eq!(
            w.summary,
            "the revive of m1 for group g1 happened at 12.000s, before the latest receipt's deadline 35.000s"
        );
    }

    #[test]
    fn a_change_handled_after_the_receipts_deadline_does_not_move_it() {
        // develop-random seed 14404 (and 11350, 15349, 17128, 18026 with every fix in): the
        // change reached the broker 2 ms after the receipt's deadline. ackOrigin's ACK, due
        // at once, was stored directly and read before the original CK, which a lagging
        // timer still held; the reviver dropped the ACK and revived the CK.
        let run = |change_at: Millis| {
            let mut h = H::new();
            h.at(0).produce("m1", 0, 0);
            let d = h.at(1_000).pop("c1", "m1", 0, 0);
            h.at(change_at).change_invisible(&d, 10_000);
            h.at(change_at + 4_500).revive(&d, 0, 1);
            check(&h.build()).status
        };
        // The receipt (popTime 1 s, invisible 10 s) was due at 11 s.
        assert_eq!(run(11_002), Status::Held);
        assert_eq!(run(11_000), Status::Held);
        // A change 1 ms before the deadline: its ACK waits in the timer behind the CK.
        assert_eq!(run(10_999), Status::Violated);
    }

    #[test]
    fn a_late_change_leaves_the_ancestors_it_moved_before_moving() {
        // The first change was in time and acked the pop's CK; the second, on the first
        // change's receipt, came late: the pop's CK still lasts until the latest receipt's
        // deadline, the first change's CK only until its own.
        let run = |revive_pop_ck: bool| {
            let mut h = H::new();
            h.at(0).produce("m1", 0, 0);
            let d = h.at(1_000).pop("c1", "m1", 0, 0);
            let r1 = h.at(5_000).change_invisible(&d, 2_000);
            h.at(7_500).change_invisible(&r1, 10_000);
            let target = if revive_pop_ck { d } else { r1 };
            h.at(9_000).revive(&target, 0, 1);
            check(&h.build()).status
        };
        assert_eq!(run(false), Status::Held);
        assert_eq!(run(true), Status::Violated);
    }

    #[test]
    fn a_retried_change_of_the_same_handle_leaves_the_first_changes_ck_its_own_deadline() {
        // chaos seed 13: the client retried a nack naming the original handle after the
        // first attempt timed out (ChangeInvisibleDurationActivity falls back to the
        // original handle when removeReceiptHandle finds none). Each attempt wrote a CK of
        // its own and acked only the CK the handle names (ChangeInvisibleTimeProcessor
        // .ackOrigin), so the first attempt's CK is a sibling of the second's, never acked,
        // and revives at its own deadline.
        let run = |revive_first_change: bool| {
            let mut h = H::new();
            h.at(0).produce("m1", 0, 0);
            let d = h.at(1_000).pop("c1", "m1", 0, 0);
            let r1 = h.at(5_000).change_invisible(&d, 1_000);
            h.at(9_000).change_invisible(&d, 1_000);
            let target = if revive_first_change { r1 } else { d };
            h.at(9_500).revive(&target, 0, 1);
            check(&h.build()).status
        };
        assert_eq!(run(true), Status::Held);
        // The original CK's latest descendant is the second attempt's (deadline 10 s).
        assert_eq!(run(false), Status::Violated);
    }

    #[test]
    fn a_change_ck_and_a_pop_ck_in_the_same_millisecond_keep_their_own_deadlines() {
        // chaos seed 426: a changeInvisibleTime wrote its CK (popTime = now,
        // ChangeInvisibleTimeProcessor.appendCheckPoint) in the same millisecond a pop of the
        // same copy wrote its own; the two CKs differ in their invisible time only.
        let run = |pop_first: bool, revive_change_ck: bool| {
            let mut h = H::new();
            h.at(0).produce("m1", 0, 0);
            let d = h.at(1_000).pop("c1", "m1", 0, 0);
            let (r1, d2) = if pop_first {
                let d2 = h.at(5_000).pop("c1", "m1", 0, 0);
                (h.at(5_000).change_invisible(&d, 1_000), d2)
            } else {
                let r1 = h.at(5_000).change_invisible(&d, 1_000);
                (r1, h.at(5_000).pop("c1", "m1", 0, 0))
            };
            let target = if revive_change_ck { r1 } else { d2 };
            h.at(6_500).revive(&target, 0, 1);
            check(&h.build()).status
        };
        for pop_first in [false, true] {
            // The change's CK is due at 6 s.
            assert_eq!(run(pop_first, true), Status::Held, "pop first: {pop_first}");
            // The pop's CK is due at 15 s.
            assert_eq!(
                run(pop_first, false),
                Status::Violated,
                "pop first: {pop_first}"
            );
        }
    }

    #[test]
    fn a_change_ck_and_a_pop_ck_of_one_millisecond_and_invisible_time_differ_in_start() {
        // develop-random 12698 (every fix, the renewing consumer): the proxy renewed m1 (a
        // change CK starting at m1's offset 1) in the same millisecond a pop that took a
        // reset read 0..1 again with the same 10 s; a later renewal of the pop's handle moved
        // only that one's deadline, and the change's CK revived at its own. The start offset
        // tells the two CKs apart.
        let run = |revive_change_ck: bool| {
            let mut h = H::new();
            h.at(0).produce("m0", 0, 0);
            h.at(0).produce("m1", 0, 1);
            let d = h.at(1_000).pop_batch("c1", &[("m0", 0), ("m1", 1)], 0);
            let changed = h.at(5_000).proxy_renews(&d[1], 10_000);
            let again = h.at(5_000).pop_batch("c1", &[("m0", 0), ("m1", 1)], 0);
            h.at(14_000).proxy_renews(&again[1], 60_000);
            // Both CKs: popTime 5 s, invisible 10 s; the change's starts at 1, the pop's at 0.
            let target = if revive_change_ck {
                &changed
            } else {
                &again[1]
            };
            h.at(16_000).revive(target, 0, 1);
            check(&h.build()).status
        };
        assert_eq!(run(true), Status::Held, "the change's CK, due at 15 s");
        assert_eq!(
            run(false),
            Status::Violated,
            "the pop's CK, renewed to 74 s"
        );
    }

    #[test]
    fn another_delivery_of_the_copy_does_not_move_this_cks_deadline() {
        // After a crash the original is popped again with a CK of its own; the old CK still
        // revives at its own deadline.
        let mut h = H::new();
        h.at(0).produce("m1", 0, 0);
        let d = h.at(1_000).pop("c1", "m1", 0, 0);
        h.at(5_000).crash();
        h.at(6_000).restart();
        h.at(7_000).pop("c1", "m1", 0, 0);
        h.at(12_000).revive(&d, 0, 1);
        assert_eq!(check(&h.build()), Verdict::held());
    }

    #[test]
    fn wrong_count_and_wrong_topic_are_violations() {
        let mut h = H::new();
        h.at(0).produce("m1", 0, 0);
        let d = h.at(1_000).pop("c1", "m1", 0, 0);
        h.at(11_000).revive(&d, 0, 1);
        let r1 = h.at(12_000).pop_retry("c1", "m1", 0, 1);
        // The retry copy had 1; its revive must write 2.
        let bad = h.at(22_000).revive(&r1, 1, 1);
        let w = check(&h.build()).witness.unwrap();
        assert_eq!(w.events, vec![bad]);
        assert_eq!(
            w.summary,
            "the revive of m1 for group g1 carries reconsumeTimes 1, the revived copy had 1"
        );

        let mut h = H::new();
        let d = h.at(1_000).pop("c1", "m1", 0, 0);
        let ck = h.ck_of(&d);
        let bad = h.at(11_000).revive_to(&d, ck, 0, 1, "%RETRY%g1");
        let w = check(&h.build()).witness.unwrap();
        assert_eq!(w.events, vec![bad]);
        assert!(
            w.summary
                .contains("went to %RETRY%g1, not %RETRY%g1_TopicA or %RETRY%g1+TopicA"),
            "{}",
            w.summary
        );
    }

    #[test]
    fn an_orderly_groups_consumed_count_is_not_the_copys_reconsume_times() {
        // No `Produced` event (the producer's send timed out after the store). An orderly
        // group met the original first, with its consumed count 1; another group's revive
        // of that original rightly writes 1.
        let mut h = H::new();
        h.consumer("o1", "og", crate::history::ConsumerKind::Orderly, -1);
        let o = h.at(1_000).pop("o1", "m1", 0, 0);
        if let EventKind::Delivered {
            reconsume_times, ..
        } = &mut h.events[o.idx].kind
        {
            *reconsume_times = 1;
        }
        let d = h.at(2_000).pop("c1", "m1", 0, 0);
        h.at(13_000).revive(&d, 0, 1);
        assert_eq!(check(&h.build()), Verdict::held());
    }

    #[test]
    fn no_revive_is_not_applicable() {
        let mut h = H::new();
        let d = h.at(1_000).pop("c1", "m1", 0, 0);
        h.at(2_000).ack(&d);
        assert_eq!(
            check(&h.build()),
            Verdict::not_applicable("nothing was revived")
        );
    }

    #[test]
    fn a_checkpoint_a_change_replaced_does_not_revive() {
        // The change at 2 s acked d's CK (ackOrigin) and wrote one for 5 s: a revive of d's
        // own CK after the new deadline is a second copy.
        let shape = |crash: bool, change_at: Millis| {
            let mut h = H::new();
            let d = h.at(1_000).pop("c1", "m1", 0, 0);
            let n = h.at(change_at).change_invisible(&d, 5_000);
            if crash {
                h.at(change_at + 100).crash();
                h.at(change_at + 200).restart();
            }
            h.at(change_at + 5_000).revive(&n, 0, 1);
            let old = h.at(change_at + 60_000).revive(&d, 1, 1);
            (h.build(), n.idx, old)
        };
        let (hist, change, old) = shape(false, 2_000);
        let w = check(&hist).witness.expect("violated");
        assert_eq!(w.events, vec![change, old]);
        assert!(w.summary.contains("had replaced"), "{}", w.summary);
        assert!(!w.summary.contains("timer"), "{}", w.summary);
        // F32: the ackOrigin's ACK record, given up by the timer, is named.
        let mut h = H::new();
        let d = h.at(1_000).pop("c1", "m1", 0, 0);
        let ck = h.ck_of(&d);
        let ack = h.at(2_000).ack_written(
            &ck,
            &[0],
            1,
            11_000,
            "ChangeInvisibleTimeProcessor.ackOrigin",
        );
        let n = h.at(2_000).change_invisible(&d, 5_000);
        h.at(7_000).revive(&n, 0, 1);
        let gone = h.at(13_000).broker(BrokerEvent::TimerRecordDiscarded {
            at: 13_000,
            revive_qid: 0,
            revive_offset: 1,
            attempts: 3,
        });
        let old = h.at(62_000).revive(&d, 1, 1);
        let w = check(&h.build()).witness.expect("violated");
        assert_eq!(w.events, vec![ack, n.idx, gone, old]);
        assert!(
            w.summary.ends_with(
                "a second copy; the timer gave that ACK record up at 13.000s after 3 failed puts, so no reviver read it"
            ),
            "{}",
            w.summary
        );
        // A crash after the change may have lost its ackOrigin from the buffer.
        assert_eq!(check(&shape(true, 2_000).0), Verdict::held());
        // A change handled at the old deadline: its ACK is due at once and may be dropped
        // ahead of the CK (F27's window), so the old CK may still revive.
        assert_eq!(check(&shape(false, 11_000).0), Verdict::held());
    }

    #[test]
    fn a_renewed_checkpoint_the_proxy_passed_over_does_not_revive() {
        // F29: the proxy renewed c1's handle (R1), then changed c1's original on its behalf
        // (the nack's retry, after a failed change took R1 out of its table): R1's CK is
        // never acked and revives as a second copy.
        let shape = |by_client: bool, change_at: Millis| {
            let mut h = H::new();
            let d = h.at(1_000).pop("c1", "m1", 0, 0);
            let r1 = h.at(55_000).proxy_renews(&d, 60_000);
            let c3 = if by_client {
                h.at(change_at).change_invisible(&d, 1_000)
            } else {
                h.at(change_at).proxy_changes(&d, 1_000)
            };
            h.at(change_at + 1_000).revive(&c3, 0, 1);
            let again = h.at(115_000).revive(&r1, 1, 1);
            (h.build(), c3.idx, again)
        };
        let (hist, change, again) = shape(false, 59_000);
        let w = check(&hist).witness.expect("violated");
        // The renewal's HandleRenewed follows its changeInvisibleTime at 55 s.
        let renewal = (hist.events.iter())
            .position(|e| matches!(e.kind, EventKind::HandleRenewed { .. }))
            .expect("renewed");
        assert_eq!(w.events, vec![renewal, change, again]);
        assert!(w.summary.contains("passed over"), "{}", w.summary);
        // The client's own change: it never held R1, a retried change's sibling keeps its
        // CK (at-least-once, as before).
        assert_eq!(check(&shape(true, 59_000).0), Verdict::held());
        // The proxy's change after R1's own deadline passed over nothing it could use.
        assert_eq!(check(&shape(false, 115_010).0.clone()).status, Status::Held);
    }

    #[test]
    fn a_renewed_handle_a_later_copy_replaced_in_the_proxys_table_was_not_passed_over() {
        // proxy-random 282895: crash replays hand c1 a second copy (B) of m1 at the same
        // offset while it still consumes the first; the proxy renews B (R1), then a third
        // copy (C) reaches c1 and `ReceiptHandleGroup.put` replaces R1 in c1's entry (the
        // key is message, queue and offset). When B's listener fails, the proxy has no R1
        // to use and changes B's own handle: it passed over nothing it held, and R1's CK
        // reviving is at-least-once after the replay. A copy to another client goes into
        // that client's table and leaves c1's entry, and R1 in it, alone.
        let shape = |third_to: &str| {
            let mut h = H::new();
            h.at(0).produce("m1", 0, 0);
            h.at(1_000).pop("c1", "m1", 0, 0);
            h.at(5_000).crash();
            h.at(6_000).restart();
            let b = h.at(10_000).pop("c1", "m1", 0, 0);
            let r1 = h.at(55_000).proxy_renews(&b, 60_000);
            h.at(56_000).pop(third_to, "m1", 0, 0);
            let nack = h.at(59_000).proxy_changes(&b, 1_000);
            h.at(60_000).revive(&nack, 0, 1);
            h.at(115_000).revive(&r1, 1, 1);
            h.build()
        };
        assert_eq!(check(&shape("c1")).status, Status::Held);
        let w = check(&shape("c2")).witness.expect("violated");
        assert!(w.summary.contains("passed over"), "{}", w.summary);
    }
}
