//! Every delivery carries the topic, queue offset and receipt handle the broker stored and wrote for it, and an ack of a handle marks only that message's offset.
//!
//! Upstream builds the receipt handle (`ExtraInfoUtil.buildExtraInfo`) from the checkpoint
//! it writes at pop (`PopMessageProcessor.appendCheckPoint`), rewrites a retry copy's topic
//! back to the original (`popResponseReturnActualRetryTopic = false`), and turns an ack of
//! the handle into a bit of that checkpoint (`AckMessageProcessor.appendAck`,
//! `PopBufferMergeService.addAk`, the flush in `scan`, `PopReviveService` matching by merge
//! key). A handle that names another checkpoint, or an ack that lands on another offset,
//! acks the wrong message and revives the right one.
//!
//! Semantics, for every `Delivered` event:
//! - **Topic and offset.** An original copy is delivered from the topic, queue and offset its
//!   `Produced` event stored it at (without one, from where its first delivery found it), and
//!   a non-orderly one with reconsumeTimes 0. A retry copy comes from a revive
//!   (`Revived`) of that message for that group into exactly that retry topic and offset,
//!   which is the group's V1 (`%RETRY%group_topic`) or V2 (`%RETRY%group+topic`) retry topic
//!   of the original topic, as the broker's `enableRetryTopicV2` chose when it revived; the
//!   delivery names the original topic (the model, like upstream by default, does not return
//!   the actual retry topic), and a non-orderly one carries the revive's reconsumeTimes.
//! - **Receipt handle.** It decodes; its queue, offset, popTime and invisible time are the
//!   delivery's, and its topic type is the copy's (0 original, 1 retry V1, 2 retry V2).
//!   An orderly delivery's handle has reviveQid 999, and the broker's record of that pop's
//!   read (`PopRead`, same group, queue and popTime) starts at or before the delivered
//!   offset and at or after the handle's start (the read may have been corrected forward,
//!   and may find messages appended after the pop took its offset). Any other
//!   handle names a pop checkpoint the broker wrote
//!   (`CkBuffered`, or `CkWritten` by `addCkJustOffset`) for that group and copy, with that
//!   start offset and popTime, whose invisible time and brokerName are the handle's, whose
//!   start is at or below the offset, whose revive queue (when a `CkWritten` of a pop CK
//!   shows it; a changeInvisibleTime's CK may share start and popTime but is never named by a
//!   delivery) is the handle's, and which covers no more deliveries than its `num`. A pop on the KV path
//!   (`PopConsumerService`, which keeps records instead of checkpoints) is recognised by its
//!   `PopRead` and is judged on the first two points only. A history with no broker record
//!   of any pop (no checkpoint, no `PopRead`) is not judged on handles.
//! - **Acks.** Every offset the broker marks acked for a checkpoint (`AckMergedInBuffer`,
//!   `AckWritten`) was named by an ack or a changeInvisibleTime (whose `ackOrigin` acks the
//!   old handle) of a handle of that checkpoint at that offset. Orderly acks leave no ack
//!   record and are judged by orderly-commit-safety.

use super::index::{broker_ack, copy_key, secs, witness_events, LookupMap};
use super::{InvariantInfo, Verdict, Witness};
use crate::history::{EventKind, History};
use broker_core::{keys, BrokerEvent, CkRef, ExtraInfo, Millis, POP_ORDER_REVIVE_QUEUE};
use std::collections::BTreeMap;

/// How long a changeInvisibleTime call may take before its caller records a result (the
/// clients' call time-outs are 3 s; the proxy adds its own hop).
const CHANGE_IN_FLIGHT_MS: Millis = 5_000;

pub(crate) const INFO: InvariantInfo = InvariantInfo {
    name: "delivery-integrity",
    statement: "Every delivery carries the topic, queue offset and receipt handle the broker stored and wrote for it, and an ack of a handle marks only that message's offset.",
};

/// A checkpoint as a handle names it: (group, copy topic, queue, start offset, popTime).
/// Retry topics have one queue, so a retry copy's CK is keyed with queue 0.
type CkId<'h> = (&'h str, &'h str, u32, u64, Millis);

fn ck_id(ck: &CkRef) -> CkId<'_> {
    let (t, q, start) = copy_key(&ck.topic, ck.queue_id, ck.start_offset);
    (&ck.group, t, q, start, ck.pop_time)
}

/// A checkpoint as an ack names it: (group, queue, start offset, popTime). The topic is
/// left out: a handle does not spell it.
type AckCk<'h> = (&'h str, u32, u64, Millis);

/// (checkpoint, offset) → the first ack or change that named it. One map, not a map per
/// checkpoint: at 10^6 messages a small map per CK cost about 100 MB.
type Requested<'h> = BTreeMap<(AckCk<'h>, u64), usize>;

/// What [`Requested`] holds for one checkpoint: (offset, event), by offset.
fn requested_of(requested: &Requested<'_>, id: AckCk<'_>) -> Vec<(u64, usize)> {
    requested
        .range((id, 0)..=(id, u64::MAX))
        .map(|(&(_, offset), &idx)| (offset, idx))
        .collect()
}

/// A pop's reads, by (group, topic, queue, popTime): (first offset, count) of each.
type PopReads<'h> = LookupMap<(&'h str, &'h str, u32, Millis), Vec<(u64, u32)>>;

struct PopCk<'h> {
    idx: usize,
    ck: &'h CkRef,
    /// Distinct offsets delivered under it.
    delivered: Vec<u64>,
}

pub(crate) fn check(history: &History) -> Verdict {
    // Pass 1: what the broker stored and wrote.
    let mut produced: LookupMap<&str, (&str, u32, u64, usize)> = LookupMap::default();
    // (group, retry topic, retry offset) → the revive.
    let mut revived: LookupMap<(&str, &str, u64), usize> = LookupMap::default();
    let mut cks: LookupMap<CkId, PopCk> = LookupMap::default();
    // (CK, invisible time) → the revive queue of its first write: a `rePutCK` of a
    // changeInvisibleTime's CK keeps its start and popTime but not its invisible time
    // (proxy-random 118736).
    let mut revive_qid: LookupMap<(CkId, Millis), u32> = LookupMap::default();
    let mut pop_reads: PopReads = LookupMap::default();
    let mut requested: Requested = BTreeMap::new();
    let mut pops_recorded = false;
    for (idx, e) in history.events.iter().enumerate() {
        match &e.kind {
            EventKind::Produced {
                msg_id,
                topic,
                queue_id,
                queue_offset,
                ..
            } => {
                produced
                    .entry(msg_id)
                    .or_insert((topic, *queue_id, *queue_offset, idx));
            }
            EventKind::Broker(BrokerEvent::Revived {
                group,
                retry_topic,
                retry_queue_offset,
                ..
            }) => {
                revived.insert((group, retry_topic, *retry_queue_offset), idx);
            }
            EventKind::Broker(BrokerEvent::CkBuffered { ck, .. }) => {
                pops_recorded = true;
                cks.entry(ck_id(ck)).or_insert(PopCk {
                    idx,
                    ck,
                    delivered: Vec::new(),
                });
            }
            EventKind::Broker(BrokerEvent::CkWritten {
                ck,
                revive_qid: qid,
                reason,
                ..
            }) => {
                if reason == "PopBufferMergeService.addCkJustOffset" {
                    pops_recorded = true;
                    cks.entry(ck_id(ck)).or_insert(PopCk {
                        idx,
                        ck,
                        delivered: Vec::new(),
                    });
                }
                // A delivered handle names a pop CK, never the one a changeInvisibleTime
                // wrote (`appendCheckPoint`), which may share its start and popTime.
                if reason != broker_core::events::CHANGE_CK_REASON {
                    (revive_qid.entry((ck_id(ck), ck.invisible_time))).or_insert(*qid);
                }
            }
            EventKind::Broker(BrokerEvent::PopRead {
                group,
                topic,
                queue_id,
                pop_time,
                offset,
                count,
                ..
            }) => {
                pops_recorded = true;
                pop_reads
                    .entry((group, topic, *queue_id, *pop_time))
                    .or_default()
                    .push((*offset, *count));
            }
            EventKind::AckSent { group, receipt, .. }
            | EventKind::ChangeInvisibleResult { group, receipt, .. } => {
                if let Some(x) = ExtraInfo::parse(receipt) {
                    let ck = (group.as_str(), x.queue_id, x.ck_queue_offset, x.pop_time);
                    requested.entry((ck, x.queue_offset)).or_insert(idx);
                }
            }
            _ => {}
        }
    }

    // Pass 2: every delivery and every broker ack record.
    let mut found: Vec<Witness> = Vec::new();
    let mut judged = 0usize;
    // Message id → its first original delivery, when no `Produced` says where it is.
    let mut first_seen: LookupMap<&str, (&str, u32, u64, usize)> = LookupMap::default();
    // The CKs changeInvisibleTime calls wrote: (group, topic, queue, start = the message's
    // offset). `appendCheckPointThenAckOrigin` writes one before it acks the old handle,
    // which with buffer merge on is an ack merged into the buffer, named by no reason.
    let mut change_cks: LookupMap<(&str, &str, u32, u64), Millis> = LookupMap::default();
    for (idx, e) in history.events.iter().enumerate() {
        if let EventKind::Broker(BrokerEvent::CkWritten { ck, reason, .. }) = &e.kind {
            if reason == broker_core::events::CHANGE_CK_REASON {
                change_cks.insert((&ck.group, &ck.topic, ck.queue_id, ck.start_offset), e.at);
            }
        }
        match &e.kind {
            EventKind::Delivered { .. } => {
                judged += 1;
                let problem = judge_delivery(
                    history,
                    idx,
                    &produced,
                    &mut first_seen,
                    &revived,
                    &mut cks,
                    &revive_qid,
                    &pop_reads,
                    pops_recorded,
                );
                found.extend(problem);
            }
            kind => {
                let Some(a) = broker_ack(kind) else { continue };
                let merged_origin = match kind {
                    EventKind::Broker(BrokerEvent::AckMergedInBuffer {
                        ck, ack_offset, ..
                    }) => change_cks.contains_key(&(
                        ck.group.as_str(),
                        ck.topic.as_str(),
                        ck.queue_id,
                        *ack_offset,
                    )),
                    _ => false,
                };
                // A changeInvisibleTime shows only by its result: one whose ackOrigin came
                // less than a call's time-out before the end may have had none recorded yet.
                if (a.ack_origin || merged_origin)
                    && e.at + CHANGE_IN_FLIGHT_MS > history.meta.end_at
                {
                    continue;
                }
                let id = (a.group, a.queue, a.start, a.pop_time);
                for o in a.offsets {
                    if let Some(w) = judge_ack(idx, id, *o, a.topic, &requested) {
                        found.push(w);
                        break;
                    }
                }
            }
        }
    }
    // A checkpoint cannot cover more deliveries than its messages.
    let mut over: Vec<&PopCk> = cks
        .values()
        .filter(|c| c.delivered.len() > c.ck.num as usize)
        .collect();
    over.sort_by_key(|c| c.idx);
    for c in over {
        found.push(Witness {
            msg_id: None,
            summary: format!(
                "{} deliveries' handles name group {}'s CK on {}/{} (start {}, popTime {}), which holds {} message(s)",
                c.delivered.len(),
                c.ck.group,
                c.ck.topic,
                c.ck.queue_id,
                c.ck.start_offset,
                secs(c.ck.pop_time),
                c.ck.num
            ),
            events: vec![c.idx],
        });
    }
    if judged == 0 {
        return Verdict::not_applicable("no delivery");
    }
    found.sort_by_key(|w| w.events.last().copied());
    let count = found.len();
    Verdict::from_witness(found.into_iter().next().map(|mut w| {
        if count > 1 {
            w.summary.push_str(&format!(" ({count} problems in all)"));
        }
        w
    }))
}

/// The first thing wrong with the delivery at `idx`, if any.
#[allow(clippy::too_many_arguments)]
fn judge_delivery<'h>(
    history: &'h History,
    idx: usize,
    produced: &LookupMap<&'h str, (&'h str, u32, u64, usize)>,
    first_seen: &mut LookupMap<&'h str, (&'h str, u32, u64, usize)>,
    revived: &LookupMap<(&'h str, &'h str, u64), usize>,
    cks: &mut LookupMap<CkId<'h>, PopCk<'h>>,
    revive_qid: &LookupMap<(CkId<'h>, Millis), u32>,
    pop_reads: &PopReads<'h>,
    pops_recorded: bool,
) -> Option<Witness> {
    let EventKind::Delivered {
        consumer,
        group,
        msg_id,
        topic,
        queue_id,
        queue_offset,
        retry_topic,
        reconsume_times,
        pop_time,
        invisible_time,
        receipt,
        orderly,
        ..
    } = &history.events[idx].kind
    else {
        return None;
    };
    // Described only when it fails: every delivery passes through here.
    let what = || {
        format!(
            "{consumer} ({group}) got {msg_id} {}",
            match retry_topic {
                Some(r) => format!("as a retry copy from {r}/{queue_id} offset {queue_offset}"),
                None => format!("from {topic}/{queue_id} offset {queue_offset}"),
            }
        )
    };
    let fail = |why: String, mut events: Vec<usize>| {
        events.push(idx);
        Some(Witness {
            msg_id: Some(msg_id.to_string()),
            summary: format!("{}, but {why}", what()),
            events: witness_events(events),
        })
    };
    // Topic and offset.
    match retry_topic {
        None => {
            let stored = produced.get(msg_id.as_str()).copied().or_else(|| {
                Some(
                    *first_seen
                        .entry(msg_id)
                        .or_insert((topic, *queue_id, *queue_offset, idx)),
                )
            });
            if let Some((t, q, o, at)) = stored {
                if (t, q, o) != (topic.as_str(), *queue_id, *queue_offset) {
                    return fail(format!("it was stored at {t}/{q} offset {o}"), vec![at]);
                }
            }
            if !orderly && *reconsume_times != 0 {
                return fail(
                    format!("it carries reconsumeTimes {reconsume_times}; the original was stored with 0"),
                    vec![],
                );
            }
        }
        Some(r) => {
            let v1 = keys::pop_retry_topic_v1(topic, group);
            let v2 = keys::pop_retry_topic_v2(topic, group);
            if *r != v1 && *r != v2 {
                return fail(
                    format!(
                        "{r} is neither of group {group}'s retry topics for {topic} ({v1}, {v2})"
                    ),
                    vec![],
                );
            }
            let (rt, _, ro) = copy_key(r, *queue_id, *queue_offset);
            let Some(rev) = revived.get(&(group.as_str(), rt, ro)).copied() else {
                return fail(
                    format!(
                        "no revive for group {group} stored a copy at {r} offset {queue_offset}"
                    ),
                    vec![],
                );
            };
            let EventKind::Broker(BrokerEvent::Revived {
                msg_id: rm,
                topic: rtopic,
                reconsume_times: rrt,
                ..
            }) = &history.events[rev].kind
            else {
                return None;
            };
            if rm != msg_id || rtopic != topic {
                return fail(
                    format!(
                        "the revive that stored {r} offset {queue_offset} stored {rm} of {rtopic}"
                    ),
                    vec![rev],
                );
            }
            if !orderly && rrt != reconsume_times {
                return fail(
                    format!("it carries reconsumeTimes {reconsume_times}; the revive stored {rrt}"),
                    vec![rev],
                );
            }
        }
    }
    // The receipt handle.
    let Some(x) = ExtraInfo::parse(receipt) else {
        return fail(
            format!("its receipt handle [{receipt}] does not decode"),
            vec![],
        );
    };
    let copy_topic = retry_topic.as_deref().unwrap_or(topic);
    let want_type = keys::topic_type(copy_topic);
    let fields = [
        ("queue", u64::from(x.queue_id), u64::from(*queue_id)),
        ("offset", x.queue_offset, *queue_offset),
        ("popTime", x.pop_time, *pop_time),
        ("invisible time", x.invisible_time, *invisible_time),
        ("topic type", u64::from(x.topic_type), u64::from(want_type)),
    ];
    if let Some((name, got, want)) = fields.iter().find(|(_, got, want)| got != want) {
        return fail(
            format!("its receipt handle [{receipt}] says {name} {got}, not {want}"),
            vec![],
        );
    }
    if x.ck_queue_offset > *queue_offset {
        return fail(
            format!(
                "its receipt handle [{receipt}] starts at {}, past the message",
                x.ck_queue_offset
            ),
            vec![],
        );
    }
    if *orderly != (x.revive_qid == POP_ORDER_REVIVE_QUEUE) {
        return fail(
            format!(
                "its receipt handle [{receipt}] has reviveQid {} for {} delivery",
                x.revive_qid,
                if *orderly {
                    "an orderly"
                } else {
                    "a non-orderly"
                }
            ),
            vec![],
        );
    }
    if !pops_recorded {
        return None;
    }
    let (ct, cq, _) = copy_key(copy_topic, *queue_id, 0);
    let reads = pop_reads.get(&(group.as_str(), copy_topic, *queue_id, *pop_time));
    if *orderly {
        return match reads {
            Some(rs)
                // The read may find more than was there when the pop took its offset.
                if rs
                    .iter()
                    .any(|&(o, _)| o <= *queue_offset && x.ck_queue_offset <= o) =>
            {
                None
            }
            Some(rs) => fail(
                format!(
                    "its receipt handle starts at {} while the orderly pop at that popTime read {}",
                    x.ck_queue_offset,
                    rs.iter()
                        .map(|(o, n)| format!("{o}..={}", o + u64::from(*n) - 1))
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
                vec![],
            ),
            None => fail(
                format!(
                    "the broker recorded no orderly pop of group {group} on {copy_topic}/{queue_id} at its popTime {}",
                    secs(x.pop_time)
                ),
                vec![],
            ),
        };
    }
    let id: CkId = (group, ct, cq, x.ck_queue_offset, x.pop_time);
    let Some(ck) = cks.get_mut(&id) else {
        if reads.is_some() {
            return None; // The KV path keeps a record, not a checkpoint.
        }
        return fail(
            format!(
                "its receipt handle names a CK (start {}, popTime {}) the broker never wrote for {group} on {copy_topic}/{queue_id}",
                x.ck_queue_offset,
                secs(x.pop_time)
            ),
            vec![],
        );
    };
    if !ck.delivered.contains(queue_offset) {
        ck.delivered.push(*queue_offset);
    }
    let ck_idx = ck.idx;
    let c = ck.ck;
    let qid = revive_qid.get(&(id, x.invisible_time)).copied();
    let mismatch = if c.invisible_time != x.invisible_time {
        Some(format!(
            "invisible time {} where the CK has {}",
            x.invisible_time, c.invisible_time
        ))
    } else if c.broker_name != x.broker_name {
        Some(format!(
            "brokerName {} where the CK has {}",
            x.broker_name, c.broker_name
        ))
    } else if qid.is_some_and(|q| q != x.revive_qid) {
        Some(format!(
            "reviveQid {} where the CK went to revive queue {}",
            x.revive_qid,
            qid.unwrap_or_default()
        ))
    } else {
        None
    };
    match mismatch {
        Some(m) => fail(
            format!("its receipt handle [{receipt}] has {m}"),
            vec![ck_idx],
        ),
        None => None,
    }
}

/// An ack record marking `offset` of checkpoint `id` that no handle asked for.
fn judge_ack(
    idx: usize,
    id: AckCk<'_>,
    offset: u64,
    topic: &str,
    requested: &Requested<'_>,
) -> Option<Witness> {
    if requested.contains_key(&(id, offset)) {
        return None;
    }
    let (group, q, start, pop_time) = id;
    let asked = requested_of(requested, id);
    let list: Vec<String> = asked.iter().map(|(o, _)| o.to_string()).collect();
    let mut events: Vec<usize> = asked.iter().map(|&(_, i)| i).collect();
    events.push(idx);
    Some(Witness {
        msg_id: None,
        summary: format!(
            "the broker marked offset {offset} of group {group}'s CK on {topic}/{q} (start {start}, popTime {}) acked, but no handle of that CK was acked at {offset} (acks asked for: {})",
            secs(pop_time),
            if list.is_empty() {
                "none".to_owned()
            } else {
                list.join(", ")
            }
        ),
        events: witness_events(events),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::history::ConsumerKind;
    use crate::invariants::Status;
    use crate::testkit::{Rcpt, H, T};

    /// c1 pops m0 and m1 (one CK) and acks both; the broker merges the acks; m1 is revived
    /// and its retry copy popped (with its own CK) and acked; orderly o1 pops m0.
    fn consistent() -> (H, Vec<Rcpt>) {
        let mut h = H::new();
        h.consumer("o1", "og", ConsumerKind::Orderly, -1);
        h.at(0).produce("m0", 0, 0);
        h.at(0).produce("m1", 0, 1);
        let rs = h.at(1_000).pop_batch("c1", &[("m0", 0), ("m1", 1)], 0);
        let ck = CkRef {
            num: 2,
            ..h.ck_of(&rs[0])
        };
        h.at(1_100).ack(&rs[0]);
        h.broker(BrokerEvent::AckMergedInBuffer {
            at: 1_100,
            ck: ck.clone().into(),
            ack_offset: 0,
        });
        h.at(11_000).broker(BrokerEvent::CkWritten {
            at: 11_000,
            ck: ck.into(),
            revive_qid: 0,
            revive_offset: 0,
            deliver_at: 10_000,
            reason: "PopBufferMergeService.putCkToStore".into(),
        });
        h.at(13_000).revive(&rs[1], 0, 1);
        let retry = h.at(14_000).pop_retry("c1", "m1", 0, 1);
        h.pop_ck(&retry);
        h.at(14_100).ack(&retry);
        h.broker(BrokerEvent::AckWritten {
            at: 14_100,
            topic: "%RETRY%g1_TopicA".into(),
            group: "g1".into(),
            queue_id: 0,
            start_offset: 0,
            pop_time: 14_000,
            ack_offsets: vec![0].into(),
            broker_name: Some("broker-a".into()),
            revive_qid: 0,
            revive_offset: 1,
            deliver_at: 24_000,
            batch: false,
            reason: "AckMessageProcessor.appendAck".into(),
        });
        let o = h.at(2_000).pop_batch("o1", &[("m0", 0)], 0);
        let mut all = rs;
        all.push(retry);
        all.extend(o);
        (h, all)
    }

    fn summary(h: &H) -> String {
        let v = check(&h.build());
        assert_eq!(v.status, Status::Violated);
        v.witness.unwrap().summary
    }

    #[test]
    fn deliveries_that_match_what_the_broker_stored_hold() {
        let (h, _) = consistent();
        assert_eq!(check(&h.build()), Verdict::held());
        assert_eq!(
            check(&H::new().build()),
            Verdict::not_applicable("no delivery")
        );
    }

    #[test]
    fn a_delivery_from_another_position_is_a_violation() {
        let (mut h, _) = consistent();
        let d = h.at(20_000).pop("c1", "m1", 0, 2);
        h.pop_ck(&d);
        let w = check(&h.build()).witness.unwrap();
        assert_eq!(w.msg_id.as_deref(), Some("m1"));
        assert_eq!(w.events, vec![1, d.idx]);
        assert_eq!(
            w.summary,
            "c1 (g1) got m1 from TopicA/0 offset 2, but it was stored at TopicA/0 offset 1"
        );
    }

    #[test]
    fn a_retry_copy_the_broker_did_not_revive_there_is_a_violation() {
        // Another group's retry topic.
        let (mut h, _) = consistent();
        if let crate::history::EventKind::Delivered { retry_topic, .. } = &mut h
            .events
            .iter_mut()
            .rev()
            .find(|e| {
                matches!(
                    &e.kind,
                    crate::history::EventKind::Delivered {
                        retry_topic: Some(_),
                        ..
                    }
                )
            })
            .unwrap()
            .kind
        {
            *retry_topic = Some(format!("%RETRY%other_{T}").into());
        }
        assert_eq!(
            summary(&h),
            "c1 (g1) got m1 as a retry copy from %RETRY%other_TopicA/0 offset 0, but %RETRY%other_TopicA is neither of group g1's retry topics for TopicA (%RETRY%g1_TopicA, %RETRY%g1+TopicA)"
        );
        // The group's retry topic, but an offset no revive wrote.
        let (mut h, _) = consistent();
        let r = h.at(30_000).pop_retry("c1", "m1", 1, 1);
        h.pop_ck(&r);
        assert_eq!(
            summary(&h),
            "c1 (g1) got m1 as a retry copy from %RETRY%g1_TopicA/0 offset 1, but no revive for group g1 stored a copy at %RETRY%g1_TopicA offset 1"
        );
        // The right copy with the wrong reconsumeTimes.
        let (mut h, _) = consistent();
        let r = h.at(30_000).pop_retry("c1", "m1", 0, 3);
        h.pop_ck(&r);
        assert!(summary(&h).ends_with("but it carries reconsumeTimes 3; the revive stored 1"));
    }

    #[test]
    fn a_handle_naming_a_checkpoint_the_broker_never_wrote_is_a_violation() {
        // The handle's start offset is its own, but the CK starts at the batch start.
        let (mut h, _) = consistent();
        h.at(20_000).produce("m2", 0, 2);
        h.at(20_000).produce("m3", 0, 3);
        let rs = h.at(21_000).pop_batch("c1", &[("m2", 2)], 0);
        let stray = h.at(21_000).pop("c1", "m3", 0, 3);
        assert!(rs.len() == 1);
        assert_eq!(
            summary(&h),
            "c1 (g1) got m3 from TopicA/0 offset 3, but its receipt handle names a CK (start 3, popTime 21.000s) the broker never wrote for g1 on TopicA/0"
        );
        let _ = stray;

        // A CK written to revive queue 1 while the handle says 0.
        let (mut h, rs) = consistent();
        let ck = h.ck_of(&rs[2]);
        h.at(14_000).broker(BrokerEvent::CkWritten {
            at: 14_000,
            ck: ck.into(),
            revive_qid: 1,
            revive_offset: 3,
            deliver_at: 23_000,
            reason: "PopBufferMergeService.putCkToStore".into(),
        });
        assert!(
            summary(&h).ends_with("has reviveQid 0 where the CK went to revive queue 1"),
            "{}",
            summary(&h)
        );

        // Two deliveries under a CK of one message.
        let (mut h, _) = consistent();
        h.at(20_000).produce("m2", 0, 2);
        h.at(20_000).produce("m3", 0, 3);
        let a = h.at(21_000).pop("c1", "m2", 0, 2);
        h.pop_ck(&a);
        let mut b = h.at(21_000).pop("c1", "m3", 0, 3);
        let mut info = ExtraInfo::parse(&b.receipt).unwrap();
        info.ck_queue_offset = 2;
        b.receipt = info.build();
        if let crate::history::EventKind::Delivered { receipt, .. } = &mut h.events[b.idx].kind {
            *receipt = b.receipt.clone().into();
        }
        assert!(summary(&h).starts_with(
            "2 deliveries' handles name group g1's CK on TopicA/0 (start 2, popTime 21.000s), which holds 1 message(s)"
        ));
    }

    /// m0 popped by c1 at 1 s (its CK buffered) and changed to `invisible` at 2 s: the
    /// history so far, and the change's CK (popTime 2 s, starting at the message).
    fn popped_then_changed(invisible: Millis) -> (H, CkRef) {
        let mut h = H::new();
        h.at(0).produce("m0", 0, 0);
        let d = h.at(1_000).pop("c1", "m0", 0, 0);
        h.pop_ck(&d);
        h.at(2_000).change_invisible(&d, invisible);
        let ck = CkRef {
            pop_time: 2_000,
            invisible_time: invisible,
            ..h.ck_of(&d)
        };
        (h, ck)
    }

    #[test]
    fn a_change_ck_in_the_same_millisecond_does_not_speak_for_a_pops_ck() {
        // chaos seed 15: a changeInvisibleTime wrote its CK (start = the message's offset,
        // popTime = now, the old handle's revive queue: ChangeInvisibleTimeProcessor
        // .appendCheckPoint) in the same millisecond a pop buffered a CK for the same copy
        // and start, which went to another revive queue. A delivered handle always names a
        // pop CK, so only pop CKs say which revive queue it went to.
        let run = |pop_ck_qid: Option<u32>| {
            let (mut h, ck) = popped_then_changed(5_000);
            h.ck_written(ck, (1, 0), 7_000, broker_core::events::CHANGE_CK_REASON);
            let again = h.at(2_000).pop("c1", "m0", 0, 0);
            h.pop_ck(&again);
            if let Some(qid) = pop_ck_qid {
                let ck = h.ck_of(&again);
                h.ck_written(ck, (qid, 1), 12_000, "PopBufferMergeService.putCkToStore");
            }
            check(&h.build()).status
        };
        assert_eq!(run(None), Status::Held);
        assert_eq!(run(Some(0)), Status::Held);
        // The pop's own CK in another revive queue than its handle says still fails.
        assert_eq!(run(Some(1)), Status::Violated);
    }

    #[test]
    fn a_re_put_change_ck_does_not_speak_for_a_pops_ck() {
        // Proxy-random 118736 (`--fix all`): a changeInvisibleTime's CK (1 s, revive queue 1)
        // and a pop's CK share start and popTime; the reviver re-puts the change's CK
        // (`rePutCK`, its invisible time stretched, same revive queue) before the pop's CK is
        // flushed to its own revive queue 0.
        let (mut h, change_ck) = popped_then_changed(1_000);
        let again = h.at(2_000).pop("c1", "m0", 0, 0);
        h.pop_ck(&again);
        let re_put = CkRef {
            invisible_time: 11_000,
            ..change_ck
        };
        h.at(3_000)
            .ck_written(re_put, (1, 1), 13_000, "PopReviveService.rePutCK");
        let ck = h.ck_of(&again);
        h.at(12_000)
            .ck_written(ck, (0, 2), 12_000, "PopBufferMergeService.putCkToStore");
        assert_eq!(check(&h.build()).status, Status::Held);
    }

    #[test]
    fn orderly_handles_are_checked_against_the_orderly_pop() {
        let (mut h, _) = consistent();
        h.at(20_000).produce("m2", 0, 2);
        // A pop the broker has no record of.
        h.at(21_000).pop("o1", "m2", 0, 2);
        assert_eq!(
            summary(&h),
            "o1 (og) got m2 from TopicA/0 offset 2, but the broker recorded no orderly pop of group og on TopicA/0 at its popTime 21.000s"
        );
        // A handle with a non-orderly reviveQid.
        let (mut h, _) = consistent();
        h.at(20_000).produce("m2", 0, 2);
        let r = h.at(21_000).pop_batch("o1", &[("m2", 2)], 0);
        let mut info = ExtraInfo::parse(&r[0].receipt).unwrap();
        info.revive_qid = 3;
        if let crate::history::EventKind::Delivered { receipt, .. } = &mut h.events[r[0].idx].kind {
            *receipt = info.build().into();
        }
        assert!(summary(&h).ends_with("has reviveQid 3 for an orderly delivery"));
    }

    #[test]
    fn an_ack_marking_another_offset_is_a_violation() {
        // c1 acked m0 (offset 0) of the CK holding 0 and 1; the broker marked 1.
        let (mut h, rs) = consistent();
        let ck = CkRef {
            num: 2,
            ..h.ck_of(&rs[0])
        };
        let wrong = h.at(1_200).broker(BrokerEvent::AckMergedInBuffer {
            at: 1_200,
            ck: ck.into(),
            ack_offset: 1,
        });
        let v = check(&h.build());
        let w = v.witness.unwrap();
        assert_eq!(w.msg_id, None);
        assert_eq!(
            w.summary,
            "the broker marked offset 1 of group g1's CK on TopicA/0 (start 0, popTime 1.000s) acked, but no handle of that CK was acked at 1 (acks asked for: 0)"
        );
        assert_eq!(*w.events.last().unwrap(), wrong);
    }

    #[test]
    fn an_ack_origin_whose_change_was_still_in_flight_at_the_end_is_not_judged() {
        // Chaos seeds 615 and 658: a nack's changeInvisibleTime reached the broker at
        // 119.999 s (ackOrigin marked offset 1) and the run ended before the client's
        // result was recorded, the only place the request shows.
        let run = |at: Millis| {
            let (mut h, rs) = consistent();
            let ck = h.ck_of(&rs[0]);
            h.at(at).ack_written(
                &ck,
                &[1],
                1,
                at + 10_000,
                "ChangeInvisibleTimeProcessor.ackOrigin",
            );
            h.end(100_000, 120_000);
            check(&h.build()).status
        };
        assert_eq!(run(119_999), Status::Held);
        assert_eq!(run(100_000), Status::Violated);
    }

    #[test]
    fn an_ack_origin_merged_into_the_buffer_while_its_change_was_in_flight_is_not_judged() {
        // develop-random seed 84127 (every fix on): with buffer merge on, a nack's
        // changeInvisibleTime wrote its new CK at 239.976 s and merged the ack of the old
        // handle into the buffered CK (`appendCheckPointThenAckOrigin`, then `ackOrigin` ->
        // `PopBufferMergeService.addAk`); the run ended before the client recorded the result.
        let run = |change_ck: bool, at: Millis| {
            let (mut h, rs) = consistent();
            let ck = h.ck_of(&rs[0]);
            if change_ck {
                h.at(at).broker(BrokerEvent::CkWritten {
                    at,
                    ck: Box::new(CkRef {
                        start_offset: 1,
                        pop_time: at,
                        num: 1,
                        ..ck.clone()
                    }),
                    revive_qid: 0,
                    revive_offset: 1,
                    deliver_at: at + 10_000,
                    reason: broker_core::events::CHANGE_CK_REASON.into(),
                });
            }
            h.at(at).broker(BrokerEvent::AckMergedInBuffer {
                at,
                ck: CkRef { num: 2, ..ck }.into(),
                ack_offset: 1,
            });
            h.end(100_000, 120_000);
            check(&h.build()).status
        };
        assert_eq!(run(true, 119_999), Status::Held);
        // Without the change's CK, or long before the end, it is judged.
        assert_eq!(run(false, 119_999), Status::Violated);
        assert_eq!(run(true, 100_000), Status::Violated);
    }

    #[test]
    fn without_broker_pop_records_handles_are_not_judged() {
        let mut h = H::new();
        h.at(0).produce("m0", 0, 0);
        h.at(0).produce("m1", 0, 1);
        let a = h.at(1_000).pop("c1", "m0", 0, 0);
        h.at(1_000).pop("c1", "m1", 0, 1);
        h.at(1_100).ack(&a);
        assert_eq!(check(&h.build()), Verdict::held());
        // Positions are still judged.
        h.at(2_000).pop("c1", "m0", 0, 5);
        assert_eq!(check(&h.build()).status, Status::Violated);
    }
}
