//! Once an ack of a message succeeds for a group, the message is neither revived nor popped again for that group unless its queue is reset to an offset at or below it.
//!
//! Targets bug (c) (#8835: acks flushed from the buffer without brokerName do not match
//! their CK, so acked messages are revived) and bug (a) (#9369: a FIFO queue replays from a
//! stale pull offset after a reset).
//!
//! Semantics:
//! - Identity is `msg_id`: a revive of m for group g (`Revived`), a delivery of a retry copy
//!   of m, or a re-pop of the original all count as m coming back.
//! - Only *effective* acks count: answered `SUCCESS`, made with m's current receipt for g
//!   (its latest delivery, or the handle a changeInvisibleTime returned), and answered no
//!   later than that receipt's `popTime + invisibleTime`. So does an ack the gRPC proxy made
//!   on a client's behalf with an older receipt of the same chain while it held the current
//!   one (it renewed the handle, then a failed ack took the renewed handle out of its table
//!   and the client's retry named its original; finding F26): the proxy answers the client
//!   OK, in time for the current receipt. A changeInvisibleTime of that
//!   receipt after the ack (another listener of the same copy failing, through the proxy's
//!   handle table) asks for the message again and withdraws the ack; so does one the proxy
//!   made for a client with an older receipt of that chain while it held the current one
//!   (the ack took the renewed handle out of its table, and the nack named the client's). An
//!   ack the proxy answered OK for the client's receipt of one delivery but sent with another
//!   delivery's handle (its table entry had been put for that one: `HandleRedirected`, finding
//!   F30) counts for both: the named delivery's CKs alive at the ack must not revive. A late
//!   or stale ack may lose the race with a revive that was already due; that is at-least-once
//!   working as designed.
//!   For orderly batches an ack counts once every lower offset of the batch is acked too,
//!   since the commit offset stops at the first un-acked entry. A batch starts where its
//!   pop read from (the start its handles name), so an entry the gRPC proxy's filter
//!   dead-lettered (`PopMessageResultFilterImpl` → `forwardMessageToDeadLetterQueue`, no
//!   delivery) holds the prefix until the proxy's ack of it succeeds.
//! - A reset of m's original queue to an offset ≤ m's offset, applied after the acked
//!   delivery (so also one still pending when the ack arrived, which upstream's
//!   `OffsetResetForPopIT` exercises), excuses the comeback: replay is what a reset asks for.
//!   For a re-pop of the original, so does one applied after the group's last read of that
//!   offset before the re-pop (its last `PopRead` covering it, else the original's previous
//!   delivery), even if a retry copy was delivered and acked after the reset. A copy of the
//!   original read before such a reset whose answer reached its client only after the ack
//!   of the reset's replay is the copy the reset rewound past, not a re-pop. A pop applies
//!   the offset its `ResetConsumed` names: under `reset-table-survives-restart` a restart
//!   restores the resets pending at the last persist, which may be older than the latest
//!   assignment (a reset taken after that persist comes back, like a rolled-back offset).
//! - A revive of a CK no receipt names (a pop whose answer was lost), or of a receipt chain
//!   the ack did not cover, is not a comeback; a retry copy already revived that way when the
//!   ack came is a concurrent copy, not a comeback (see the ack analysis in `index.rs`). A
//!   revived CK is a receipt's when copy, popTime and invisible time match: a
//!   changeInvisibleTime's CK and a pop's CK of the same copy may share a millisecond.
//! - A broker crash excuses a comeback only where the crash explains it (at-least-once
//!   under failure, not this bug; whether acks survive a crash is a durability question
//!   this invariant leaves alone):
//!   - a revive, when the crash came after the ack: acks merged only in the CK buffer die
//!     with it, and so does the first delivery of the retry copy such a revive made;
//!   - a re-pop of a copy, when a crash since the copy was last handed out (or ever, if no
//!     client saw it) restored a commit offset at or below it after the broker had read past
//!     it: the restart reads the last `ConsumerOffsetManager.persist()` image, and
//!     `PopBufferMergeService`'s offset queues are gone, so the group reads that range once
//!     more. The ack may come before or after the crash: a POP ack never moves the commit
//!     offset, and a receipt's CK lost from the buffer cannot move it either.
//!
//!   How many comebacks were excused that way is noted on the result.

use super::index::{
    acks_written, is_success, names_other_start, secs, witness_events, AfterAck, ComebackKind,
    Facts,
};
use super::{Affected, AffectedList, InvariantInfo, Verdict, Witness};
use crate::history::{EventKind, History};
use broker_core::{AckReadOutcome, BrokerEvent, CkRef, ExtraInfo, Millis, Name, ReadFrom};

pub(crate) const INFO: InvariantInfo = InvariantInfo {
    name: "no-redelivery-after-ack",
    statement: "Once an ack of a message succeeds for a group, the message is neither revived nor popped again for that group unless its queue is reset to an offset at or below it.",
};

#[cfg(test)]
pub(crate) fn check(history: &History) -> Verdict {
    check_with(&Facts::new(history))
}

pub(crate) fn check_with(facts: &Facts) -> Verdict {
    let history = facts.h;
    let a = facts.acks();
    if a.effective_acks.is_empty() {
        return Verdict::not_applicable("no ack succeeded in time with a current receipt");
    }
    let (after_crash, judged): (Vec<_>, Vec<_>) = a.after_ack.iter().partition(|c| c.crash_between);
    let notes = after_crash
        .first()
        .map(|c| Witness {
            msg_id: Some(c.msg_id.to_string()),
            summary: format!(
                "{} comeback(s) after an ack followed a broker crash and were not judged; the first: {}",
                after_crash.len(),
                describe(history, c)
            ),
            events: witness_events(vec![c.acked_delivery, c.ack, c.idx]),
        })
        .into_iter()
        .collect();
    let Some(first) = judged.first() else {
        return Verdict::held().with_notes(notes);
    };
    let mut affected = AffectedList::default();
    for c in &judged {
        let kind = match c.kind {
            ComebackKind::Revive => "revived-after-ack",
            ComebackKind::RetryDelivery => "retry-delivered-after-ack",
            ComebackKind::RePop => "re-popped-after-ack",
        };
        affected.push(Affected::at(kind, history, c.acked_delivery).events(vec![
            c.acked_delivery,
            c.ack,
            c.idx,
        ]));
    }
    let mut summary = describe(history, first);
    let mut events = vec![first.acked_delivery, first.ack, first.idx];
    if let Some((why, why_events)) = revive_why(history, first).or_else(|| re_pop_why(facts, first))
    {
        summary.push_str("; why: ");
        summary.push_str(&why);
        events.extend(why_events);
    }
    if judged.len() > 1 {
        // Name the kinds, so the total reads against the report's duplicate deliveries
        // (which count only deliveries: retry copies and re-pops, not the revives).
        let count = |k: ComebackKind| judged.iter().filter(|c| c.kind == k).count();
        let parts: Vec<String> = [
            (ComebackKind::Revive, "revived into the retry topic"),
            (ComebackKind::RetryDelivery, "retry copies delivered"),
            (ComebackKind::RePop, "re-popped"),
        ]
        .into_iter()
        .filter(|(k, _)| count(*k) > 0)
        .map(|(k, what)| format!("{} {what}", count(k)))
        .collect();
        summary.push_str(&format!(
            "; {} comebacks after an ack in all: {}",
            judged.len(),
            parts.join(", ")
        ));
    }
    Verdict::violated(Witness {
        msg_id: Some(first.msg_id.to_string()),
        summary,
        events: witness_events(events),
    })
    .with_notes(notes)
    .with_affected(affected)
}

/// Why an acked original was popped again, when a restart explains where the pop read:
/// the pop read the queue from the commit offset the restart restored, while before the
/// stop the broker had read on from a later position (the KV path's pull offset, which
/// `consumerOffset.json` does not hold: finding F31). A crash's replay is excused before
/// this is asked; a graceful shutdown's is judged.
///
/// [`PopPositions`]: super::index::PopPositions
fn re_pop_why(facts: &Facts, c: &AfterAck) -> Option<(String, Vec<usize>)> {
    let ev = &facts.h.events;
    let EventKind::Delivered {
        group,
        topic,
        queue_id,
        retry_topic: None,
        ..
    } = &ev[c.idx].kind
    else {
        return None;
    };
    let same_queue = |g: &Name, t: &Name, q: u32| g == group && t == topic && q == *queue_id;
    // The read behind this delivery ([`PopPositions`]), if it came from the commit offset.
    let read = facts.pops().read_of(c.idx)?;
    let EventKind::Broker(BrokerEvent::PopRead {
        offset: start,
        from: ReadFrom::CommitOffset,
        ..
    }) = &ev[read].kind
    else {
        return None;
    };
    let restart = (ev[..read].iter())
        .rposition(|e| matches!(e.kind, EventKind::Broker(BrokerEvent::Restarted { .. })))?;
    // No pop of the queue between the restart and this read: it is the restart's.
    let popped_since = ev[restart..read].iter().any(|e| {
        matches!(&e.kind, EventKind::Broker(BrokerEvent::PopRead { group: g, topic: t, queue_id: q, .. }) if same_queue(g, t, *q))
    });
    if popped_since {
        return None;
    }
    let (stop, graceful) =
        ev[..restart]
            .iter()
            .enumerate()
            .rev()
            .find_map(|(i, e)| match e.kind {
                EventKind::Broker(BrokerEvent::Crashed { graceful, .. }) => Some((i, graceful)),
                _ => None,
            })?;
    let pull = ev[..stop].iter().rev().find_map(|e| match &e.kind {
        EventKind::Broker(BrokerEvent::PullOffsetCommitted {
            group: g,
            topic: t,
            queue_id: q,
            offset,
            ..
        }) if same_queue(g, t, *q) => Some(*offset),
        _ => None,
    });
    let mut why = format!(
        "the pop at {} read {topic}/{queue_id} from the commit offset {start}, which the restart at {} read back after the broker {} at {}",
        secs(ev[read].at),
        secs(ev[restart].at),
        if graceful { "shut down gracefully" } else { "crashed" },
        secs(ev[stop].at),
    );
    if let Some(p) = pull.filter(|p| *p > *start as i64) {
        why.push_str(&format!(
            "; before it the broker had read on from the pull offset {p} (pullOffsetTable, which consumerOffset.json does not hold)"
        ));
    }
    Some((why, vec![stop, restart, read]))
}

/// Why the reviver revived an acked message, from its recorded decisions: the CK's merge
/// key, and what became of the ACK records for the message (read before the CK and dropped,
/// keyed differently, written to another revive queue, or never written at all).
fn revive_why(history: &History, c: &AfterAck) -> Option<(String, Vec<usize>)> {
    let ev = &history.events;
    let EventKind::Broker(BrokerEvent::Revived {
        ck, queue_offset, ..
    }) = &ev[c.idx].kind
    else {
        return None;
    };
    let o = *queue_offset;
    let mut parts = Vec::new();
    let mut events = Vec::new();
    let decided = ev[..c.idx]
        .iter()
        .enumerate()
        .rev()
        .find_map(|(i, e)| match &e.kind {
            EventKind::Broker(BrokerEvent::ReviveDecided {
                ck: d,
                key,
                revive_qid,
                ..
            }) if d == ck => Some((i, key.as_str(), *revive_qid)),
            _ => None,
        });
    if let Some((i, key, qid)) = decided {
        parts.push(format!(
            "the reviver keyed the CK `{key}` in revive queue {qid} with offset {o}'s bit unset"
        ));
        events.push(i);
    }
    let same = |topic: &str, group: &str, queue_id: u32, start: u64, pop_time: u64| {
        topic == ck.topic
            && group == ck.group
            && queue_id == ck.queue_id
            && start == ck.start_offset
            && pop_time == ck.pop_time
    };
    let mut read = false;
    for (i, e) in ev[..c.idx].iter().enumerate() {
        if let EventKind::Broker(BrokerEvent::AckRecordRead {
            revive_qid,
            revive_offset,
            topic,
            group,
            queue_id,
            start_offset,
            pop_time,
            ack_offsets,
            key,
            outcome,
            ..
        }) = &e.kind
        {
            if !same(topic, group, *queue_id, *start_offset, *pop_time) || !ack_offsets.contains(&o)
            {
                continue;
            }
            read = true;
            events.push(i);
            let keyed = match decided {
                Some((_, k, _)) if k != key => format!(", keyed `{key}` (no match)"),
                _ => String::new(),
            };
            parts.push(format!(
                "its ACK record (position {revive_offset} of revive queue {revive_qid}) was read at {}{keyed}: {outcome}",
                secs(e.at)
            ));
            if *outcome == AckReadOutcome::NoCk {
                if let Some((why, w)) = overtaken(ev, (i, c.idx), ck, o) {
                    parts.push(why);
                    events.push(w);
                }
            }
        }
    }
    if !read {
        match acks_written(&ev[..c.idx], ck, o).next() {
            Some(w) => {
                let (qid, off) = (w.revive_qid, w.revive_offset);
                events.push(w.idx);
                // The same record: the first ACK written for the offset.
                match w.given_up(&ev[..c.idx]) {
                    Some((gone, at, attempts)) => {
                        events.push(gone);
                        parts.push(format!(
                            "its ACK record went to revive queue {qid} offset {off} and the timer gave it up at {} after {attempts} failed puts, so no reviver read it",
                            secs(at)
                        ));
                    }
                    None => parts.push(format!(
                        "its ACK record went to revive queue {qid} offset {off} and was not read before the revive"
                    )),
                }
            }
            None => match redirected(history, c, ck)
                .or_else(|| older_receipt_acked(history, c, ck).map(|(why, i)| (why, vec![i])))
                .or_else(|| misnamed_start(history, c, ck))
            {
                Some((why, at)) => {
                    parts.push(why);
                    events.extend(at);
                }
                None => parts.push(format!(
                    "no ACK record for offset {o} was written (the ack stayed in memory, or its put failed)"
                )),
            },
        }
    }
    (!parts.is_empty()).then(|| (parts.join("; "), events))
}

/// Why an ACK record read before event `read` found no CK: how the ACK and its CK were
/// written (who wrote each, when, and the deliver time: a record already due is stored
/// directly, one in the future waits in the timer), so the overtaking shows: the ACK's latest
/// write before the read, the CK's latest before the revive at `revive`.
fn overtaken(
    ev: &[crate::history::Event],
    (read, revive): (usize, usize),
    ck: &CkRef,
    o: u64,
) -> Option<(String, usize)> {
    let ack = acks_written(&ev[..read], ck, o).next_back()?;
    let (w, at, deliver, reason) = (ack.idx, ack.at, ack.deliver_at, ack.reason);
    let how = |written: Millis, deliver: Millis| {
        if deliver > written {
            format!("deliver time {}, through the timer", secs(deliver))
        } else {
            format!(
                "deliver time {}, already due: stored directly",
                secs(deliver)
            )
        }
    };
    let mut why = format!(
        "that ACK was written at {} by {reason} ({})",
        secs(at),
        how(at, deliver)
    );
    let ck_write = (ev[..revive].iter().rev()).find_map(|e| match &e.kind {
        EventKind::Broker(BrokerEvent::CkWritten {
            ck: c,
            deliver_at,
            reason,
            ..
        }) if **c == *ck => Some((e.at, *deliver_at, reason.as_str())),
        _ => None,
    });
    match ck_write {
        Some((at, deliver, reason)) => why.push_str(&format!(
            ", the CK at {} by {reason} ({})",
            secs(at),
            how(at, deliver)
        )),
        None => why.push_str(", the CK by none recorded"),
    }
    Some((why, w))
}

/// The client's ack went out with another delivery's handle: the proxy's entry for it had
/// been put for a later copy at the same queue and offset (`ReceiptHandleGroup.put`). Its
/// events: the renewal that made the revived CK, if the proxy's, that copy's delivery, and
/// the proxy's note of the redirect.
fn redirected(history: &History, c: &AfterAck, ck: &CkRef) -> Option<(String, Vec<usize>)> {
    let ev = &history.events;
    let ack = &ev[c.ack];
    let EventKind::AckResult {
        consumer,
        group,
        receipt: sent,
        ..
    } = &ack.kind
    else {
        return None;
    };
    let (i, named, original) =
        ev[..c.ack]
            .iter()
            .enumerate()
            .rev()
            .find_map(|(i, e)| match &e.kind {
                EventKind::HandleRedirected {
                    consumer: k,
                    group: g,
                    receipt,
                    original,
                    current,
                    ..
                } if e.node == ack.node && k == consumer && g == group && current == sent => {
                    Some((i, receipt, original))
                }
                _ => None,
            })?;
    let delivered = ev[..i].iter().rposition(|e| {
        matches!(&e.kind, EventKind::Delivered { group: g, receipt, .. }
            if g == group && receipt == original)
    });
    let pop_time = |r: &str| ExtraInfo::parse(r).map_or(0, |x| x.pop_time);
    let renewed = ev[..i].iter().rposition(|e| {
        matches!(&e.kind, EventKind::HandleRenewed { group: g, msg_id, new_receipt, .. }
            if *g == c.group && *msg_id == c.msg_id && pop_time(new_receipt) == ck.pop_time)
    });
    Some((
        format!(
            "{consumer}'s ack at {} named the receipt of popTime {}, but {}'s handle entry for that queue and offset had been put for the delivery of popTime {} (`ReceiptHandleGroup.put`, equal HandleKey), so the ack went out with that delivery's handle and this CK was never acked, while {consumer} was told OK",
            secs(ack.at),
            secs(pop_time(named)),
            ack.node,
            secs(pop_time(sent)),
        ),
        renewed.into_iter().chain(delivered).chain([i]).collect(),
    ))
}

/// The ack named the revived CK's popTime and the message's offset, but another start
/// offset than the CK's (finding F33's shape: local mode's changed handle keeps the popped
/// batch's start), so its ACK record was keyed by another CK's start: the change that
/// answered with that receipt, and the record.
fn misnamed_start(
    history: &History,
    c: &AfterAck,
    ck: &broker_core::CkRef,
) -> Option<(String, Vec<usize>)> {
    let ev = &history.events;
    let EventKind::AckResult { receipt, .. } = &ev[c.ack].kind else {
        return None;
    };
    let acked = names_other_start(receipt, ck)?;
    let named = broker_core::CkRef {
        start_offset: acked.ck_queue_offset,
        ..ck.clone()
    };
    let written = acks_written(&ev[..c.ack], &named, acked.queue_offset).next_back();
    let changed = ev[..c.ack]
        .iter()
        .enumerate()
        .rev()
        .find_map(|(i, e)| match &e.kind {
            EventKind::ChangeInvisibleResult {
                new_receipt: Some(new),
                ..
            } if new == receipt => Some((i, e.node.as_str(), e.at)),
            _ => None,
        });
    let mut why = format!(
        "the ack named receipt `{receipt}`, whose CK start offset {} is not this CK's {} (its popTime and offset {} are)",
        acked.ck_queue_offset, ck.start_offset, acked.queue_offset
    );
    let mut events = Vec::new();
    if let Some((i, node, at)) = changed {
        why.push_str(&format!(
            ", which the changeInvisibleTime on {node} answered with at {}",
            secs(at)
        ));
        events.push(i);
    }
    if let Some(w) = written {
        why.push_str(&format!(
            "; its ACK record (revive queue {} offset {}) was keyed by start offset {}, not by this CK's",
            w.revive_qid, w.revive_offset, acked.ck_queue_offset
        ));
        events.push(w.idx);
    }
    Some((why, events))
}

/// The ack named an older receipt of the chain than the revived CK's (finding F26's shape):
/// the changeInvisibleTime that replaced it with the CK's receipt, and who made it.
fn older_receipt_acked(
    history: &History,
    c: &AfterAck,
    ck: &broker_core::CkRef,
) -> Option<(String, usize)> {
    let ev = &history.events;
    let EventKind::AckResult { receipt, .. } = &ev[c.ack].kind else {
        return None;
    };
    let acked = ExtraInfo::parse(receipt)?;
    if acked.pop_time == ck.pop_time {
        return None;
    }
    let (i, node) = ev[..c.ack]
        .iter()
        .enumerate()
        .rev()
        .find_map(|(i, e)| match &e.kind {
            EventKind::ChangeInvisibleResult {
                group,
                msg_id,
                new_receipt: Some(new),
                outcome,
                ..
            } if is_success(outcome)
                && *group == c.group
                && *msg_id == c.msg_id
                && ExtraInfo::parse(new).is_some_and(|x| x.pop_time == ck.pop_time) =>
            {
                Some((i, e.node.as_str()))
            }
            _ => None,
        })?;
    Some((
        format!(
            "the ack at {} named the receipt of popTime {}, which {node}'s changeInvisibleTime at {} had replaced with this CK's (popTime {}): its ACK matched the older CK, and {node} answered its client as if the message were settled",
            secs(ev[c.ack].at),
            secs(acked.pop_time),
            secs(ev[i].at),
            secs(ck.pop_time),
        ),
        i,
    ))
}

fn describe(history: &History, c: &AfterAck) -> String {
    let what = match c.kind {
        ComebackKind::Revive => "was revived",
        ComebackKind::RetryDelivery => "was delivered again as a retry copy",
        ComebackKind::RePop => "was popped again",
    };
    let ev = &history.events;
    format!(
        "{} {} for group {} at {} after its ack succeeded at {}",
        c.msg_id,
        what,
        c.group,
        secs(ev[c.idx].at),
        secs(ev[c.ack].at)
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::history::RpcOutcome;
    use crate::invariants::Status;
    use crate::testkit::{Rcpt, H};
    use broker_core::{BrokerEvent, ExtraInfo, Millis, Name, ReadFrom};

    #[test]
    fn an_orderly_ack_past_an_entry_the_proxy_dead_lettered_waits_for_its_ack() {
        // develop-random with retryMaxTimes 0 (maxAttempts 1), seed 146: a pop at 70.668 s
        // read orders/3 offsets 1..=6; the proxy's filter (`PopMessageResultFilterImpl`)
        // forwarded offsets 1 and 2 to the DLQ and acked them
        // (`forwardMessageToDeadLetterQueue`), but the ack of offset 1 got no answer, so the
        // commit stayed at 1. s1 acked offset 3 (p-orders-33); the batch lapsed, and once a
        // later pop dead-lettered offsets 1 and 2 again, offset 3 came back. Here f1's pop
        // reads 0..=1, m0 is dead-lettered, m1 handed out and acked, and the batch re-read.
        let run = |dlq_ack_ok: bool| {
            let mut h = H::grpc_fifo(&["f1"], "fg", 0);
            h.at(0).produce("m0", 0, 0);
            h.at(0).produce("m1", 0, 1);
            let pop = |h: &mut H, t: Millis| {
                h.at(t).commit("fg", 0, 0, "PopConsumerService");
                h.at(t)
                    .pop_read("fg", 0, t, 0, 2, true, ReadFrom::CommitOffset);
                h.at(t + 4).proxy_dead_letters("f1", "fg", "m0", 1);
                let m1 = h.at(t + 5).pop_of_batch_served_at("f1", "m1", 0, 1, 0, t);
                let receipt: Name = ExtraInfo {
                    ck_queue_offset: 0,
                    pop_time: t,
                    invisible_time: 10_000,
                    revive_qid: broker_core::POP_ORDER_REVIVE_QUEUE,
                    topic_type: 0,
                    broker_name: "broker-a".into(),
                    queue_id: 0,
                    queue_offset: 0,
                    commit_log_offset: Some(3),
                }
                .build()
                .into();
                (receipt, m1)
            };
            let (receipt, m1) = pop(&mut h, 1_000);
            let ack = EventKind::AckSent {
                consumer: "f1".into(),
                group: "fg".into(),
                msg_id: "m0".into(),
                receipt: receipt.clone(),
            };
            h.at(1_010).push("proxy", ack);
            let outcome = if dlq_ack_ok {
                crate::testkit::ok()
            } else {
                RpcOutcome::Timeout
            };
            let result = EventKind::AckResult {
                consumer: "f1".into(),
                group: "fg".into(),
                msg_id: "m0".into(),
                receipt,
                outcome,
            };
            h.at(1_020).push("proxy", result);
            h.at(3_000).ack(&m1);
            pop(&mut h, 30_000);
            check(&h.build()).status
        };
        // m0's forward was never acked: the commit stayed below m1, whose ack took no effect
        // (nothing else was acked, so there is nothing to judge).
        assert!(matches!(run(false), Status::NotApplicable { .. }));
        // With m0 acked, m1's ack moved the commit past it: its comeback is a violation.
        assert_eq!(run(true), Status::Violated);
    }

    #[test]
    fn revive_after_a_successful_ack_is_a_violation() {
        let mut h = H::new();
        h.at(0).produce("m1", 0, 0);
        let d = h.at(1_000).pop("c1", "m1", 0, 0);
        let ack = h.at(2_000).ack(&d);
        let rev = h.at(13_000).revive(&d, 0, 1);
        h.at(14_000).pop_retry("c1", "m1", 0, 1);
        let v = check(&h.build());
        assert_eq!(v.status, Status::Violated);
        let w = v.witness.unwrap();
        assert_eq!(w.msg_id.as_deref(), Some("m1"));
        assert_eq!(w.events, vec![d.idx, ack, rev]);
        assert!(w.summary.starts_with(
            "m1 was revived for group g1 at 13.000s after its ack succeeded at 2.000s"
        ));
        assert!(
            w.summary.ends_with(
                "2 comebacks after an ack in all: 1 revived into the retry topic, 1 retry copies delivered"
            ),
            "{}",
            w.summary
        );
    }

    /// m1 popped by c1 at 1 s and acked at 2 s: the history, the delivery and its CK.
    fn acked_at_2_s() -> (H, Rcpt, broker_core::CkRef) {
        let mut h = H::new();
        h.at(0).produce("m1", 0, 0);
        let d = h.at(1_000).pop("c1", "m1", 0, 0);
        h.at(2_000).ack(&d);
        let ck = h.ck_of(&d);
        (h, d, ck)
    }

    /// The reviver read, at `at` and position `pos` of revive queue 0, an ACK of offset 0 of
    /// `ck` keyed `key`, and found no CK with that key (`point == null`): dropped.
    fn dropped_ack_read(
        h: &mut H,
        at: Millis,
        (ck, pos): (&broker_core::CkRef, u64),
        key: &str,
    ) -> usize {
        h.at(at).broker(BrokerEvent::AckRecordRead {
            at,
            revive_qid: 0,
            revive_offset: pos,
            topic: ck.topic.clone(),
            group: ck.group.clone(),
            queue_id: ck.queue_id,
            start_offset: ck.start_offset,
            pop_time: ck.pop_time,
            ack_offsets: vec![0].into(),
            key: key.into(),
            outcome: broker_core::AckReadOutcome::NoCk,
        })
    }

    #[test]
    fn the_witness_says_why_the_reviver_revived_an_acked_message() {
        // Bug (c)'s shape: the ACK record carries no brokerName, so the reviver keys it
        // differently from the CK and drops it.
        let (mut h, d, ck) = acked_at_2_s();
        let read = dropped_ack_read(&mut h, 12_000, (&ck, 1), "TopicAg10010000null");
        let decided = h.at(13_000).broker(BrokerEvent::ReviveDecided {
            at: 13_000,
            revive_qid: 0,
            ck: ck.clone().into(),
            key: "TopicAg10010000broker-a".into(),
            acked: Box::new([]),
        });
        h.at(13_000).revive(&d, 0, 1);
        let w = check(&h.build()).witness.unwrap();
        assert!(
            w.summary.ends_with(
                "; why: the reviver keyed the CK `TopicAg10010000broker-a` in revive queue 0 with offset 0's bit unset; its ACK record (position 1 of revive queue 0) was read at 12.000s, keyed `TopicAg10010000null` (no match): no CK with its key read yet: dropped"
            ),
            "{}",
            w.summary
        );
        assert!(w.events.contains(&read) && w.events.contains(&decided));
    }

    /// F32: an ACK record the timer gave up is named, with the discard, in the why.
    #[test]
    fn the_witness_names_an_ack_record_the_timer_gave_up() {
        let (mut h, d, ck) = acked_at_2_s();
        h.at(2_000)
            .ack_written(&ck, &[0], 1, 11_000, "AckMessageProcessor.appendAck");
        let gone = h.at(13_000).broker(BrokerEvent::TimerRecordDiscarded {
            at: 13_000,
            revive_qid: 0,
            revive_offset: 1,
            attempts: 3,
        });
        h.at(15_000).revive(&d, 0, 1);
        let w = check(&h.build()).witness.unwrap();
        assert!(
            w.summary.contains(
                "its ACK record went to revive queue 0 offset 1 and the timer gave it up at 13.000s after 3 failed puts, so no reviver read it"
            ),
            "{}",
            w.summary
        );
        assert!(w.events.contains(&gone));
    }

    #[test]
    fn the_witness_shows_how_a_dropped_ack_overtook_its_ck() {
        // F27's shape: the CK waits in the timer (deliver time 10 s), the ACK is written
        // after its deliver time and stored directly, and is read before the CK.
        let (mut h, d, ck) = acked_at_2_s();
        h.at(1_000).broker(BrokerEvent::CkWritten {
            at: 1_000,
            ck: ck.clone().into(),
            revive_qid: 0,
            revive_offset: 0,
            deliver_at: 10_000,
            reason: "PopBufferMergeService.addCkJustOffset".into(),
        });
        let written = h.at(11_015).ack_written(
            &ck,
            &[0],
            1,
            11_000,
            "ChangeInvisibleTimeProcessor.ackOrigin",
        );
        dropped_ack_read(&mut h, 11_100, (&ck, 0), "k");
        h.at(14_000).revive(&d, 0, 1);
        let w = check(&h.build()).witness.unwrap();
        assert!(
            w.summary.contains(
                "dropped; that ACK was written at 11.015s by ChangeInvisibleTimeProcessor.ackOrigin (deliver time 11.000s, already due: stored directly), the CK at 1.000s by PopBufferMergeService.addCkJustOffset (deliver time 10.000s, through the timer)"
            ),
            "{}",
            w.summary
        );
        assert!(w.events.contains(&written));
    }

    #[test]
    fn re_pop_of_an_acked_original_is_a_violation() {
        let mut h = H::new();
        let d = h.at(1_000).pop("c1", "m1", 0, 0);
        let ack = h.at(2_000).ack(&d);
        let again = h.at(5_000).pop("c1", "m1", 0, 0);
        let w = check(&h.build()).witness.unwrap();
        assert_eq!(w.events, vec![d.idx, ack, again.idx]);
        assert_eq!(
            w.summary,
            "m1 was popped again for group g1 at 5.000s after its ack succeeded at 2.000s"
        );
    }

    #[test]
    fn comebacks_after_a_crash_are_noted_not_judged() {
        let mut h = H::new();
        let d = h.at(1_000).pop("c1", "m1", 0, 0);
        let ack = h.at(2_000).ack(&d);
        h.at(3_000).crash();
        h.at(4_000).restart();
        let again = h.at(5_000).pop("c1", "m1", 0, 0);
        let v = check(&h.build());
        assert_eq!(v.status, Status::Held);
        assert_eq!(v.notes.len(), 1);
        assert_eq!(v.notes[0].events, vec![d.idx, ack, again.idx]);
        assert_eq!(
            v.notes[0].summary,
            "1 comeback(s) after an ack followed a broker crash and were not judged; the first: m1 was popped again for group g1 at 5.000s after its ack succeeded at 2.000s"
        );
    }

    #[test]
    fn revives_the_ack_did_not_cover_are_not_comebacks() {
        let mut h = H::new();
        // A pop whose answer never arrived left a CK behind (popTime 500).
        let lost_ck = {
            let d = h.at(500).pop("c1", "m1", 0, 0);
            let ck = h.ck_of(&d);
            h.events.pop();
            ck
        };
        let d = h.at(1_000).pop("c1", "m1", 0, 0);
        h.at(2_000).ack(&d);
        h.at(11_000)
            .revive_to(&d, lost_ck, 0, 1, "%RETRY%g1_TopicA");
        let copy = h.at(12_000).pop_retry("c1", "m1", 0, 1);
        let v = check(&h.build());
        assert_eq!(v, Verdict::held());
        let h = h.build();
        let facts = Facts::new(&h);
        let classes = &facts.acks().classes;
        assert_eq!(
            classes[&copy.idx],
            crate::invariants::index::DeliveryClass::ConcurrentCopy
        );
    }

    #[test]
    fn a_change_ck_in_the_ack_s_millisecond_is_not_the_acked_receipt_s_ck() {
        // develop-random seed 18575: a changeInvisibleTime of the first receipt wrote its
        // CK (popTime = now, ChangeInvisibleTimeProcessor.appendCheckPoint) in the millisecond
        // a pop that took a reset of the queue began; that pop's receipt was acked. The two
        // CKs share group, copy and popTime and differ in their invisible time only: the
        // change's CK, never acked, revives the message as the first receipt chain's.
        let run = |revive_change_ck: bool| {
            let mut h = H::new();
            h.at(0).produce("m1", 0, 0);
            let d = h.at(1_000).pop("c1", "m1", 0, 0);
            let r1 = h.at(5_000).change_invisible(&d, 1_000);
            let d2 = h.at(5_000).pop("c1", "m1", 0, 0);
            h.at(5_500).ack(&d2);
            let target = if revive_change_ck { r1 } else { d2 };
            h.at(16_500).revive(&target, 0, 1);
            h.at(17_000).pop_retry("c1", "m1", 0, 1);
            check(&h.build()).status
        };
        assert_eq!(run(true), Status::Held);
        assert_eq!(run(false), Status::Violated);
    }

    #[test]
    fn a_re_pop_after_a_crash_that_followed_the_copys_last_delivery_is_excused() {
        // The original's commit was rolled back by the crash; the group acked a retry copy
        // after the restart and then met the original again.
        let mut h = H::new();
        let d = h.at(1_000).pop("c1", "m1", 0, 0);
        h.at(5_000).crash();
        h.at(6_000).restart();
        h.at(12_000).revive(&d, 0, 1);
        let r = h.at(13_000).pop_retry("c1", "m1", 0, 1);
        h.at(13_500).ack(&r);
        h.at(14_000).pop("c1", "m1", 0, 0);
        let v = check(&h.build());
        assert_eq!(v.status, Status::Held);
        assert_eq!(v.notes.len(), 1);
    }

    #[test]
    fn a_re_pop_from_a_rolled_back_offset_after_a_lost_answer_is_excused() {
        // Mixed-workload seed 8: the original's pop answer was lost (only its CK shows);
        // the CK committed 1 in memory, but the last flush held 0, so after the crash the
        // group acks the revived copy and then pops the original again from offset 0.
        let mut h = H::new();
        h.at(0).produce("m1", 0, 0);
        let lost = h.at(1_000).pop("c1", "m1", 0, 0);
        let ck = h.ck_of(&lost);
        h.events.pop();
        h.broker(BrokerEvent::CkBuffered {
            at: 1_000,
            ck: ck.into(),
        });
        h.at(2_000).commit("g1", 0, 0, "getPopOffset");
        h.at(3_000).persist();
        h.at(12_000).commit("g1", 0, 1, "PopBufferMergeService");
        h.at(14_000).crash();
        h.at(15_000).restart();
        h.at(16_000).revive(&lost, 0, 1);
        let r = h.at(17_000).pop_retry("c1", "m1", 0, 1);
        h.at(17_500).ack(&r);
        h.at(18_000).pop("c1", "m1", 0, 0);
        let v = check(&h.build());
        assert_eq!(v.status, Status::Held, "{v:?}");
        assert_eq!(v.notes.len(), 1);

        // Had the commit past it been flushed, the restart could not bring it back.
        let mut h = H::new();
        h.at(0).produce("m1", 0, 0);
        let lost = h.at(1_000).pop("c1", "m1", 0, 0);
        let ck = h.ck_of(&lost);
        h.events.pop();
        h.broker(BrokerEvent::CkBuffered {
            at: 1_000,
            ck: ck.into(),
        });
        h.at(12_000).commit("g1", 0, 1, "PopBufferMergeService");
        h.at(13_000).persist();
        h.at(14_000).crash();
        h.at(15_000).restart();
        h.at(16_000).revive(&lost, 0, 1);
        let r = h.at(17_000).pop_retry("c1", "m1", 0, 1);
        h.at(17_500).ack(&r);
        h.at(18_000).pop("c1", "m1", 0, 0);
        assert_eq!(check(&h.build()).status, Status::Violated);
    }

    #[test]
    fn a_re_pop_after_a_crash_of_what_a_kv_read_found_past_its_pop_read_is_excused() {
        // develop-random seed 57324 (the KV path, no buffer merge): a pop took queue 0's pull
        // offset 0 when only offset 0 was stored (its `PopRead`: 0, count 1); m1 was stored
        // at offset 1 before the read ran, so the read returned 0..=1 and committed the pull
        // offset 2 (`PopConsumerService.handleGetMessageResult` → `commitPullOffset` of
        // `nextBeginOffset`) and the commit offset 0 (the read start). Its answer was lost.
        // The crash loses the pull offset (`ConsumerOffsetManager.decode` restores offsetTable
        // only), so the next pop reads from 0 again (`queryPullOffset` falls back to
        // `queryOffset`), after the group acked the copy its record revived.
        let run = |crash: bool, flushed_past: bool| {
            let mut h = H::new();
            h.at(0).produce("m0", 0, 0);
            h.at(1_000)
                .pop_read("g1", 0, 1_000, 0, 1, false, ReadFrom::PullOffset);
            let lost = h.pop("c1", "m1", 0, 1);
            h.events.pop();
            h.at(1_050).produce("m1", 0, 1);
            h.at(1_100).broker(BrokerEvent::PullOffsetCommitted {
                at: 1_100,
                group: "g1".into(),
                topic: crate::testkit::T.into(),
                queue_id: 0,
                offset: 2,
                reason: "PopConsumerService".into(),
            });
            h.commit(
                "g1",
                0,
                if flushed_past { 2 } else { 0 },
                "PopConsumerService",
            );
            h.at(5_000).persist();
            if crash {
                h.at(6_000).crash();
                h.at(7_000).restart();
            }
            h.at(12_000).revive(&lost, 0, 1);
            let r = h.at(13_000).pop_retry("c1", "m1", 0, 1);
            h.at(13_500).ack(&r);
            h.at(14_000).pop("c1", "m1", 0, 1);
            check(&h.build())
        };
        let v = run(true, false);
        assert_eq!(v.status, Status::Held, "{v:?}");
        assert_eq!(v.notes.len(), 1);
        // Without the crash, or with a commit past m1 flushed before it, nothing explains it.
        assert_eq!(run(false, false).status, Status::Violated);
        assert_eq!(run(true, true).status, Status::Violated);
    }

    /// Finding F31: on the KV path a pop commits its read start as the consumer offset and
    /// the read's end as the pull offset, which no persist writes; after a restart the next
    /// pop reads from the commit offset again. A crash excuses the replay; a graceful
    /// shutdown, which persisted what a restart reads back, does not.
    #[test]
    fn a_kv_batch_re_popped_after_a_graceful_restart_is_judged() {
        let run = |stop: fn(&mut H) -> usize| {
            let mut h = H::new();
            h.at(0).produce("m0", 0, 0);
            h.at(1_000)
                .pop_read("g1", 0, 1_000, 0, 1, false, ReadFrom::PullOffset);
            let d = h.pop("c1", "m0", 0, 0);
            h.at(1_100).broker(BrokerEvent::PullOffsetCommitted {
                at: 1_100,
                group: "g1".into(),
                topic: crate::testkit::T.into(),
                queue_id: 0,
                offset: 1,
                reason: "PopConsumerService".into(),
            });
            h.commit("g1", 0, 0, "PopConsumerService");
            h.at(2_000).ack(&d);
            h.at(5_000).persist();
            stop(h.at(5_000));
            h.at(6_000).restart();
            h.at(8_000)
                .pop_read("g1", 0, 8_000, 0, 1, false, ReadFrom::CommitOffset);
            h.pop("c1", "m0", 0, 0);
            check(&h.build())
        };
        let crashed = run(H::crash);
        assert_eq!(crashed.status, Status::Held, "{crashed:?}");
        assert_eq!(crashed.notes.len(), 1, "{crashed:?}");
        let shut_down = run(H::shutdown);
        assert_eq!(shut_down.status, Status::Violated, "{shut_down:?}");
        let why = &shut_down.witness.expect("a witness").summary;
        assert!(
            why.contains("read TopicA/0 from the commit offset 0, which the restart at 6.000s read back after the broker shut down gracefully at 5.000s; before it the broker had read on from the pull offset 1"),
            "{why}"
        );
    }

    #[test]
    fn a_re_pop_after_an_ack_orderly_from_restored_order_info_is_excused() {
        // Develop-random seed 21 (gRPC FIFO through the proxy): o1 pops offsets 0..=1, acks
        // offset 0 (commit 1, flushed), the broker crashes before ConsumerOrderInfoManager
        // persists that ack, and after the restart the ack of offset 1 finds offset 0
        // un-acked in the restored OrderInfo: `ackOrderly` commits 0 and the next pop reads
        // offset 0 again. The crash explains the comeback.
        let run = |crash: bool| {
            let mut h = H::orderly();
            h.at(0).produce("m0", 0, 0);
            h.at(0).produce("m1", 0, 1);
            let rs = h.at(1_000).pop_batch("o1", &[("m0", 0), ("m1", 1)], 0);
            h.at(2_000).ack(&rs[0]);
            h.at(2_000).commit("og", 0, 1, "ackOrderly");
            h.at(5_000).persist();
            if crash {
                h.at(6_000).crash();
                h.at(7_000).restart();
            }
            h.at(8_000).ack(&rs[1]);
            h.at(8_000).commit("og", 0, 0, "ackOrderly");
            h.at(9_000).pop_batch("o1", &[("m0", 0), ("m1", 1)], 0);
            check(&h.build())
        };
        let v = run(true);
        assert_eq!(v.status, Status::Held, "{v:?}");
        assert_eq!(v.notes.len(), 1);
        assert_eq!(run(false).status, Status::Violated);
    }

    #[test]
    fn revive_without_ack_or_after_a_late_ack_holds() {
        let mut h = H::new();
        let d1 = h.at(1_000).pop("c1", "m1", 0, 0);
        h.at(13_000).revive(&d1, 0, 1);
        h.at(14_000).pop_retry("c1", "m1", 0, 1);
        // m2's ack answers after its receipt expired: the revive may win that race.
        let d2 = h.at(1_000).pop("c1", "m2", 0, 1);
        h.at(12_000).ack(&d2);
        h.at(13_000).revive(&d2, 1, 1);
        // m3 is acked in time and never seen again.
        let d3 = h.at(1_000).pop("c1", "m3", 0, 2);
        h.at(2_000).ack(&d3);
        assert_eq!(check(&h.build()), Verdict::held());
    }

    #[test]
    fn an_ack_with_a_stale_receipt_does_not_count() {
        let mut h = H::new();
        let d = h.at(1_000).pop("c1", "m1", 0, 0);
        let moved = h.at(2_000).change_invisible(&d, 5_000);
        h.at(3_000).ack(&d);
        h.at(9_000).revive(&moved, 0, 1);
        let v = check(&h.build());
        assert!(matches!(v.status, Status::NotApplicable { .. }), "{v:?}");
    }

    #[test]
    fn a_proxy_ack_of_the_original_after_it_renewed_the_handle_counts() {
        // Finding F26: the proxy renewed the client's handle (d → renewed), its ack of the
        // renewed handle failed and took the entry with it, and the client's retry made the
        // proxy ack the original: answered SUCCESS, and the client is told OK. The renewal's
        // CK is never acked and revives the message.
        let mut h = H::new();
        let d = h.at(1_000).pop("c1", "m1", 0, 0);
        let renewed = h.at(51_000).proxy_renews(&d, 60_000);
        let ack = h.at(58_000).proxy_ack(&d);
        let rev = h.at(111_000).revive(&renewed, 0, 1);
        let v = check(&h.build());
        assert_eq!(v.status, Status::Violated);
        let w = v.witness.expect("a witness");
        assert!(w.events.contains(&ack) && w.events.contains(&rev), "{w:?}");

        // After the renewed handle's deadline the proxy's ack settles nothing.
        let mut h = H::new();
        let d = h.at(1_000).pop("c1", "m1", 0, 0);
        let renewed = h.at(51_000).proxy_renews(&d, 5_000);
        h.at(57_000).proxy_ack(&d);
        h.at(57_500).revive(&renewed, 0, 1);
        assert!(matches!(
            check(&h.build()).status,
            Status::NotApplicable { .. }
        ));

        // A change the proxy made without renewing (a client's changeInvisibleDuration whose
        // answer never reached the client, or a STOP_RENEW) leaves the client the holder: the
        // ack of its stale handle settles nothing, as any stale ack.
        let mut h = H::new();
        let d = h.at(1_000).pop("c1", "m1", 0, 0);
        let moved = h.at(10_000).proxy_changes(&d, 20_000);
        h.at(15_000).proxy_ack(&d);
        h.at(31_000).revive(&moved, 0, 1);
        assert!(matches!(
            check(&h.build()).status,
            Status::NotApplicable { .. }
        ));

        // A renewal whose answer the proxy never got leaves the original current: the ack of
        // it counts as before, and the renewal's orphan CK is not a comeback.
        let mut h = H::new();
        let d = h.at(1_000).pop("c1", "m1", 0, 0);
        h.at(5_000).change_invisible_lost(&d, 60_000);
        h.at(6_000).proxy_ack(&d);
        assert_eq!(check(&h.build()), Verdict::held());
    }

    #[test]
    fn an_ack_the_proxy_sent_with_a_later_copys_handle_covers_the_clients_chain() {
        // Proxy-random seed 541 (`--fix all`): the client consumes a copy (b) the proxy
        // renewed (b1); a crash replay hands it the same queue and offset again (c), whose
        // `ReceiptHandleGroup.put` replaces b1 in the entry (equal `HandleKey`). The client's
        // ack of b takes that entry and goes out with c's handle: the client is told OK, and
        // b1's CK, never acked, revives.
        let run = |redirect: bool, reset: bool| {
            let mut h = H::new();
            h.at(0).produce("m1", 0, 0);
            let b = h.at(1_000).pop("c1", "m1", 0, 0);
            let b1 = h.at(51_000).proxy_renews(&b, 60_000);
            if reset {
                h.at(64_000).reset("g1", 0, 0);
            }
            let c = h.at(65_000).pop("c1", "m1", 0, 0);
            if redirect {
                h.at(70_000).proxy_redirects(&b, &c, &c);
            }
            let ack = h.at(70_000).proxy_ack(&c);
            let rev = h.at(111_500).revive(&b1, 0, 1);
            (check(&h.build()), ack, rev)
        };
        let (v, ack, rev) = run(true, false);
        assert_eq!(v.status, Status::Violated, "{v:?}");
        let w = v.witness.expect("a witness");
        assert!(w.events.contains(&ack) && w.events.contains(&rev), "{w:?}");
        assert!(w.summary.contains("put for"), "{}", w.summary);
        // The same ack of c's own handle, made for c: b's chain is another, not acked.
        assert!(matches!(run(false, false).0.status, Status::Held));
        // A reset after b was read rewinds over the message: its comebacks are excused.
        let v = run(true, true).0;
        assert!(matches!(v.status, Status::Held), "{v:?}");
    }

    #[test]
    fn a_proxy_ack_of_the_first_delivery_after_the_replays_counts_for_the_first_chain() {
        // F30, the replay acked first: the replay's ack took the proxy's entry (which held
        // the replay's handle), so the client's later ack of the first delivery goes out
        // with the handle it kept, answered OK; the proxy's renewal of the first delivery
        // (b1), which nothing holds any more, revives.
        let run = |renewed_by_proxy: bool| {
            let mut h = H::new();
            h.at(0).produce("m1", 0, 0);
            let b = h.at(1_000).pop("c1", "m1", 0, 0);
            let b1 = if renewed_by_proxy {
                h.at(8_000).proxy_renews(&b, 60_000)
            } else {
                h.at(8_000).change_invisible(&b, 60_000)
            };
            let c = h.at(9_000).pop("c1", "m1", 0, 0);
            h.at(12_000).proxy_ack(&c);
            let ack = h.at(15_000).proxy_ack(&b);
            let rev = h.at(68_500).revive(&b1, 0, 1);
            (check(&h.build()), ack, rev)
        };
        let (v, ack, rev) = run(true);
        assert_eq!(v.status, Status::Violated, "{v:?}");
        let w = v.witness.expect("a witness");
        assert!(w.events.contains(&ack) && w.events.contains(&rev), "{w:?}");
        // The client's own change leaves it the holder of b1: its stale ack through the proxy
        // settles nothing (at-least-once, as before).
        assert!(
            matches!(run(false).0.status, Status::Held),
            "{:?}",
            run(false).0
        );
    }

    #[test]
    fn a_change_invisible_time_after_the_ack_asks_for_the_message_again() {
        // Chaos seed 32 (gRPC push through the proxy): the same copy is delivered twice to
        // one client; the first listener's ack takes the proxy's handle entry (keyed by
        // message, queue and offset), which holds the second delivery's handle, so the ack
        // names the current receipt; the second listener fails and nacks that same receipt
        // with changeInvisibleTime. The new CK revives the message: the client asked for it.
        let mut h = H::new();
        let d = h.at(1_000).pop("c1", "m1", 0, 0);
        h.at(2_000).ack(&d);
        let moved = h.at(3_000).change_invisible(&d, 1_000);
        h.at(6_000).revive(&moved, 0, 1);
        assert_eq!(check(&h.build()), Verdict::held());

        // Proxy-random seed 461 (`--fix all`): the same, with the proxy's renewal between.
        // The proxy renewed the second delivery's handle (the client keeps its own); the
        // first listener's ack took the renewed entry, so the second listener's nack went
        // out with the handle the client kept, an older receipt of the acked chain. It asks
        // for the message again just the same.
        let mut h = H::new();
        let d = h.at(1_000).pop("c1", "m1", 0, 0);
        let renewed = h.at(51_000).proxy_renews(&d, 60_000);
        h.at(55_000).proxy_ack(&renewed);
        let moved = h.at(58_000).proxy_changes(&d, 1_000);
        h.at(65_000).revive(&moved, 0, 1);
        assert_eq!(check(&h.build()), Verdict::held());

        // A change of a receipt the ack had already superseded withdraws nothing.
        let mut h = H::new();
        let d = h.at(1_000).pop("c1", "m1", 0, 0);
        let current = h.at(1_500).change_invisible(&d, 5_000);
        h.at(2_000).ack(&current);
        h.at(3_000).change_invisible(&d, 1_000);
        h.at(9_000).revive(&current, 0, 1);
        assert_eq!(check(&h.build()).status, Status::Violated);
    }

    #[test]
    fn a_reset_applied_after_the_acked_read_excuses_the_replay() {
        // Develop-random seed 4549 (KV FIFO): a pop computed its offset before a reset was
        // assigned and read offset 1 just after, from the commit offset; the reset stayed
        // pending, the delivery was acked, and the next pop took the reset and replayed 1.
        let run = |consumed_at: Millis| {
            let mut h = H::new();
            h.at(0).produce("m1", 0, 1);
            h.at(1_000).reset("g1", 0, 1);
            h.at(1_010)
                .pop_read("g1", 0, 900, 1, 1, false, ReadFrom::CommitOffset);
            let d = h.at(1_020).pop_served_at("c1", "m1", 0, 1, 900);
            h.at(2_000).ack(&d);
            h.at(consumed_at).reset_consumed("g1", 0, 1);
            h.at(3_000)
                .pop_read("g1", 0, 3_000, 1, 1, false, ReadFrom::PendingReset);
            h.at(3_010).pop_served_at("c1", "m1", 0, 1, 3_000);
            check(&h.build()).status
        };
        assert_eq!(run(3_000), Status::Held);
    }

    #[test]
    fn a_reset_a_restart_restored_excuses_the_replay_it_makes() {
        // Develop-random seed 76738 with every fix (KV path): a reset of queue 0 to 0 was
        // persisted while pending, a pop took it and c1 got m0, and a crash before the next
        // flush brought it back (`reset-table-survives-restart` restores resetOffsetTable
        // from the last persist). c1 acked m0 after the restart; a flush wrote the restored
        // reset again; a newer reset to 7 was assigned and taken, and a crash before the
        // next flush restored the reset to 0 once more. The next pop took it and read m0
        // again: the replay of a reset the broker applied, though the latest assignment of
        // the queue was to 7. The commit offset of a read begun before the first reset (1)
        // is what every restart restores, so no crash rolled the commit offset back.
        let run = |takes_restored_reset: bool| {
            let mut h = H::new();
            h.at(0).produce("m0", 0, 0);
            h.at(1_000).reset("g1", 0, 0);
            h.at(1_010).commit("g1", 0, 1, "PopConsumerService");
            h.at(1_500).persist();
            h.at(2_000).reset_consumed("g1", 0, 0);
            h.at(2_000)
                .pop_read("g1", 0, 2_000, 0, 1, false, ReadFrom::PendingReset);
            let d = h.at(2_010).pop_served_at("c1", "m0", 0, 0, 2_000);
            h.at(2_500).crash();
            h.at(3_000).restart();
            h.at(4_000).ack(&d);
            h.at(4_500).persist();
            h.at(5_000).reset("g1", 0, 7);
            h.at(6_000).reset_consumed("g1", 0, 7);
            h.at(7_000).crash();
            h.at(8_000).restart();
            if takes_restored_reset {
                h.at(9_000).reset_consumed("g1", 0, 0);
                h.at(9_000)
                    .pop_read("g1", 0, 9_000, 0, 1, false, ReadFrom::PendingReset);
            } else {
                h.at(9_000)
                    .pop_read("g1", 0, 9_000, 0, 1, false, ReadFrom::CommitOffset);
            }
            h.at(9_010).pop_served_at("c1", "m0", 0, 0, 9_000);
            check(&h.build()).status
        };
        assert_eq!(run(true), Status::Held);
        // The same re-pop read from the commit offset with no reset taken is a violation.
        assert_eq!(run(false), Status::Violated);
    }

    #[test]
    fn a_reset_to_at_or_below_the_message_excuses_the_replay() {
        let mut h = H::new();
        let d = h.at(1_000).pop("c1", "m5", 0, 5);
        h.at(2_000).ack(&d);
        h.at(3_000).reset("g1", 0, 5);
        h.at(4_000).pop("c1", "m5", 0, 5);
        assert_eq!(check(&h.build()), Verdict::held());

        // A reset of another queue, or to a later offset, excuses nothing.
        let mut h = H::new();
        let d = h.at(1_000).pop("c1", "m5", 0, 5);
        h.at(2_000).ack(&d);
        h.at(3_000).reset("g1", 1, 0);
        h.at(3_000).reset("g1", 0, 6);
        h.at(4_000).pop("c1", "m5", 0, 5);
        assert_eq!(check(&h.build()).status, Status::Violated);
    }

    #[test]
    fn a_crash_while_the_pop_answer_was_in_flight_excuses_the_replay() {
        // Late-ack-random seed 1647: the broker crashes at 1.005s and restarts at 3.000s;
        // the pop was served at `served` and its answer arrived 10 ms later. Served before
        // the crash, its CK (and the offset it advanced) died in the buffer, so after the
        // restart the ack succeeds and the restored commit offset hands the message out
        // again: a crash replay, not a redelivery bug.
        let replay = |served: Millis| {
            let mut h = H::new();
            h.at(0).produce("m1", 0, 0);
            h.at(1_005).crash();
            if served > 3_000 {
                h.at(3_000).restart();
            }
            let d = h.at(served + 10).pop_served_at("c1", "m1", 0, 0, served);
            if served < 3_000 {
                h.at(3_000).restart();
            }
            h.at(5_000).ack(&d);
            h.at(18_000).pop("c1", "m1", 0, 0);
            check(&h.build()).status
        };
        assert_eq!(replay(1_000), Status::Held);
        // Served after the restart, nothing excuses the second pop.
        assert_eq!(replay(3_005), Status::Violated);
    }

    #[test]
    fn a_reset_while_the_pop_answer_was_in_flight_excuses_the_replay() {
        // Orderly-reset-random seed 630: the pop was served at 1.000s, the reset to 5
        // assigned at `reset_at`, the answer arrived at 1.010s and was acked; a replay
        // from the reset offset is the reset's doing only if the reset followed the pop.
        let replay = |reset_at: Millis| {
            let mut h = H::new();
            h.at(reset_at).reset("g1", 0, 5);
            let d = h.at(1_010).pop_served_at("c1", "m5", 0, 5, 1_000);
            h.at(2_000).ack(&d);
            h.at(4_000).pop("c1", "m5", 0, 5);
            check(&h.build()).status
        };
        assert_eq!(replay(1_005), Status::Held);
        // A reset before the pop was served excuses nothing.
        assert_eq!(replay(995), Status::Violated);
    }

    #[test]
    fn a_pop_begun_before_a_reset_that_read_after_it_is_the_resets_doing() {
        // Orderly-reset-random seed 128 with the broker's scheduler: the pop began at 7.997s
        // (its popTime), was descheduled at its read, the reset to 3 was assigned at 8.003s,
        // and the pop read offset 3 from the pending reset at 8.004s. The broker's PopRead
        // places the pop after the reset; its popTime alone would place it before.
        let replay = |read_at: Option<Millis>| {
            let mut h = H::new();
            let d = h.at(1_000).pop("c1", "m3", 0, 3);
            h.at(1_500).ack(&d);
            h.at(8_003).reset("g1", 0, 3);
            if let Some(t) = read_at {
                h.at(t)
                    .pop_read("g1", 0, 7_997, 3, 1, false, ReadFrom::PendingReset);
            }
            h.at(8_010).pop_served_at("c1", "m3", 0, 3, 7_997);
            check(&h.build()).status
        };
        assert_eq!(replay(Some(8_004)), Status::Held);
        assert_eq!(replay(None), Status::Violated);
    }

    #[test]
    fn a_reset_before_an_acked_retry_copy_still_excuses_the_originals_replay() {
        // develop-random seed 68: the reset to 3 came after the original's delivery; its
        // CK revived, the retry copy was delivered and acked, and only then did the group
        // read offset 5 again: the replay the reset asked for, still pending when the
        // acked retry copy was delivered.
        let run = |between: Option<bool>| {
            let mut h = H::new();
            let d = h.at(1_000).pop("c1", "m5", 0, 5);
            h.at(3_000).reset("g1", 0, 3);
            match between {
                // A pop of offset 5 after the reset: the replay happened then.
                Some(true) => {
                    h.at(5_000).pop("c1", "m5", 0, 5);
                }
                // A pop that read offset 5 after the reset but whose answer was lost.
                Some(false) => {
                    h.at(5_000)
                        .pop_read("g1", 0, 5_000, 3, 3, false, ReadFrom::PendingReset);
                }
                None => {}
            }
            h.at(12_000).revive(&d, 0, 1);
            let r = h.at(13_000).pop_retry("c1", "m5", 0, 1);
            h.at(14_000).ack(&r);
            h.at(20_000).pop("c1", "m5", 0, 5);
            check(&h.build()).status
        };
        assert_eq!(run(None), Status::Held);
        // The reset's replay of offset 5 was already served: the second one is not excused.
        assert_eq!(run(Some(true)), Status::Violated);
        assert_eq!(run(Some(false)), Status::Violated);
    }

    #[test]
    fn a_read_counts_as_far_as_its_ck_went_when_a_reset_excuses_a_replay() {
        // develop-random 16276 (every fix): a pop took offset 4 when only 4 was stored (its
        // `PopRead` says one message) and read 4 and 5 (its CK holds two); its answer was
        // lost. A reset to 3 came after; the CK revived m5, whose retry copy was delivered
        // and acked, and the group then read offset 5 again: the reset's replay, which the
        // read's `PopRead` alone did not show covering 5.
        use crate::testkit::{Rcpt, T};
        use broker_core::CkRef;
        let run = |ck_num: u32| {
            let mut h = H::new();
            h.at(0).produce("m4", 0, 4);
            h.at(0).produce("m5", 0, 5);
            h.at(1_000)
                .pop_read("g1", 0, 1_000, 4, 1, false, ReadFrom::CommitOffset);
            let ck = CkRef {
                topic: T.into(),
                group: "g1".into(),
                queue_id: 0,
                start_offset: 4,
                pop_time: 1_000,
                invisible_time: 10_000,
                num: ck_num,
                broker_name: "broker-a".into(),
            };
            h.at(1_100).broker(BrokerEvent::CkWritten {
                at: 1_100,
                ck: ck.clone().into(),
                revive_qid: 0,
                revive_offset: 0,
                deliver_at: 10_000,
                reason: "PopBufferMergeService.addCkJustOffset".into(),
            });
            h.at(3_000).reset("g1", 0, 3);
            let lost = Rcpt {
                idx: 0,
                consumer: "c1".into(),
                group: "g1".into(),
                msg_id: "m5".into(),
                receipt: String::new(),
                copy_topic: T.into(),
                queue_id: 0,
                queue_offset: 5,
                reconsume_times: 0,
            };
            h.at(12_000).revive_to(&lost, ck, 0, 1, "%RETRY%g1_t");
            let r = h.at(13_000).pop_retry("c1", "m5", 0, 1);
            h.at(14_000).ack(&r);
            h.at(20_000).pop("c1", "m5", 0, 5);
            check(&h.build()).status
        };
        assert_eq!(run(2), Status::Held, "the CK read 5: the reset's replay");
        assert_eq!(run(1), Status::Violated, "no read of 5 before the reset");
    }

    #[test]
    fn a_copy_read_before_the_reset_that_replayed_the_acked_copy_is_not_a_comeback() {
        // Develop-random seed 25511 with every fix (KV path): c1's pop read offset 1 at
        // 1.307s from the pull offset and c1 was paused until 4.318s, so the answer reached
        // it only then; in between an admin reset the queue to 1, a pop took the reset and
        // read 1 again for c2, and c2 acked that copy at 3.691s. c1's copy was read before
        // the reset, not popped again after the ack.
        let run = |reset: bool| {
            let mut h = H::new();
            h.at(0).produce("m1", 0, 1);
            h.at(1_307)
                .pop_read("g1", 0, 1_307, 1, 1, false, ReadFrom::PullOffset);
            if reset {
                h.at(1_487).reset("g1", 0, 1);
                h.at(1_589).reset_consumed("g1", 0, 1);
            }
            let from = if reset {
                ReadFrom::PendingReset
            } else {
                ReadFrom::PullOffset
            };
            h.at(1_589).pop_read("g1", 0, 1_589, 1, 1, false, from);
            let d = h.at(1_696).pop_served_at("c2", "m1", 0, 1, 1_589);
            h.at(3_691).ack(&d);
            h.at(4_319).pop_served_at("c1", "m1", 0, 1, 1_307);
            check(&h.build()).status
        };
        assert_eq!(run(true), Status::Held);
        // Without the reset, two reads of one offset are a redelivery after the ack.
        assert_eq!(run(false), Status::Violated);
    }

    #[test]
    fn orderly_acks_count_only_as_a_prefix_of_the_batch() {
        // Offset 1 is acked but 0 is not: the re-pop from the commit offset brings 1 back.
        let mut h = H::orderly();
        h.at(1_000).pop("o1", "m0", 0, 0);
        let d1 = h.at(1_000).pop("o1", "m1", 0, 1);
        h.at(2_000).ack(&d1);
        h.at(12_000).pop("o1", "m0", 0, 0);
        h.at(12_000).pop("o1", "m1", 0, 1);
        assert_eq!(
            check(&h.build()),
            Verdict::not_applicable("no ack succeeded in time with a current receipt")
        );

        // Acking 0 then completes the prefix: replaying 1 afterwards is a violation (bug (a)).
        let mut h = H::orderly();
        let d0b = h.at(1_000).pop("o1", "m0", 0, 0);
        let d1b = h.at(1_000).pop("o1", "m1", 0, 1);
        h.at(2_000).ack(&d1b);
        let ack0 = h.at(3_000).ack(&d0b);
        let replay = h.at(4_000).pop("o1", "m1", 0, 1);
        let w = check(&h.build()).witness.unwrap();
        assert_eq!(w.msg_id.as_deref(), Some("m1"));
        assert_eq!(w.events, vec![d1b.idx, ack0, replay.idx]);
    }
}
