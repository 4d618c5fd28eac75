//! A message reaches a group's DLQ only after the group delivered it the effective maximum number of times and a client decided so, and once dead-lettered and acked (or its ack refused by a proxy that held a valid handle) it is not delivered again, nor stored in the DLQ again out of a FIFO read the proxy dead-lettered.
//!
//! POP leaves the dead-letter decision to the client: upstream's broker revives forever
//! (`PopReviveService.reviveRetry`), the gRPC proxy forwards a message whose reconsumeTimes
//! reached maxAttempts (`PopMessageResultFilterImpl`, then
//! `ProducerProcessor.forwardMessageToDeadLetterQueue`: a send-back with
//! maxReconsumeTimes 0, then an ack), and the orderly push consumer sends a message back
//! once it reached maxReconsumeTimes (`ConsumeMessagePopOrderlyService.checkReconsumeTimes`),
//! which the broker's send-back routes to `%DLQ%group`.
//!
//! Semantics. A message is *dead-lettered* for a group by a client decision (`SentToDlq`) or
//! a broker write (`DlqWritten`); a run with neither is not applicable.
//! - **Enough deliveries.** At each decision (and each write without a decision), the group
//!   had handed the message out at least the deciding consumer's effective maximum number of
//!   times *before* the delivery being dead-lettered (`effective_max_reconsume_times`:
//!   maxReconsumeTimes, or maxAttempts for a proxy client, −1 as the client defines it; for a
//!   write, the smallest among the group's consumers). The proxy's filter and the remoting
//!   orderly client dead-letter the hand-out whose reconsumeTimes reached the max, i.e. the
//!   one after `max` earlier ones. The gRPC FIFO push consumer decides itself, on its own
//!   node, after retrying locally (`ProcessQueueImpl.eraseFifoMessage`: its delivery
//!   attempt is reconsumeTimes + 1 and grows by one per local retry): for its decisions the
//!   delivery being dead-lettered is one of that consumer's own, and its listener runs since
//!   count too, `earlier + runs ≥ max` for some such delivery. A crash replay of the batch
//!   (`ConsumerOrderInfoManager` lost the block) may hand the message to another consumer, or
//!   to another process queue of the same one, while the first copy is still being retried:
//!   a later delivery neither raises the first copy's count nor restarts it. Listener runs
//!   do not name their copy, so a consumer's run counts for each of its copies received
//!   before it (lenient only while one consumer holds two copies of a message).
//!   Earlier hand-outs are the larger of: the group's recorded deliveries of the message up
//!   to the one being dead-lettered plus, for an orderly message, the orderly pops of its
//!   queue by the group that no client saw (the commit each makes at its popTime, with no
//!   delivery at that popTime; or with deliveries of other messages only, while the pop's
//!   `PopRead` covered this one: the proxy's filter dead-letters a message out of a batch
//!   whose other messages it hands out, and it is that pop's hand-out being dead-lettered,
//!   the delivery of no client) and that started at or below it after it was stored and
//!   before that delivery (before the decision, for a write or the proxy's filter), less
//!   that delivery; and its revives before it.
//!   `PopReviveService.reviveRetry` counts every hand-out whose invisible time lapsed, and
//!   `ConsumerOrderInfoManager.update` every re-read of the previous batch by a new
//!   attemptId, whether or not the pop's answer reached a client (with two consumers in a
//!   group, the lost pop's retry is no longer reentrant once the other took a turn). A
//!   message is taken as stored [`STORE_SLACK_MS`] before its `Produced`, its
//!   `ProduceFailed` (a send that timed out may have been stored) or its first delivery.
//! - **Decided.** Every `DlqWritten` follows a `SentToDlq` of the same group and message,
//!   and both name the group's DLQ topic (`%DLQ%group`, `MixAll.getDLQTopic`).
//! - **Not delivered again.** After it is dead-lettered, a delivery of it to the group from
//!   its original or retry topic that comes after an effective ack of it (as
//!   no-redelivery-after-ack defines it, with the same excuses: a reset of its queue, a crash
//!   replay, a retry copy already in flight when the ack came) is a violation. Without an
//!   effective ack it may come back: the forward and its ack are two calls upstream, so a
//!   lost or late ack lets the copy's invisible time lapse, and it is dead-lettered again.
//!   Except when the node that made that ack refused it itself, before any request, as
//!   expired, while its own renewal (`HandleRenewed`, the gRPC proxy's handle table) had
//!   given it a newer handle of the delivery still valid then (finding F28): that ack could
//!   not fail for lack of time; the proxy had forgotten the handle that would have made it.
//!   A handle the proxy acked with in the meantime (for a listener of another copy of the
//!   message in the same client: its table keys a handle by queue and offset) was used, not
//!   forgotten.
//!   A later delivery of the message to the group, at or after that handle's deadline, is a
//!   violation unless the broker crashed or the group was reset in between.
//! - **Stored once per ack** (orderly messages). Once a copy of it is in the group's DLQ and
//!   an ack of it by the group was answered `SUCCESS` within its receipt's invisible time,
//!   sent before the broker crashed and read the queue again (after that, the queue's
//!   OrderInfo holds another popTime and the ack moves nothing), naming the first offset of
//!   the batch the broker read (the proxy's ack after its forward,
//!   `ProducerProcessor.forwardMessageToDeadLetterQueue`), the broker
//!   stores no other copy the proxy's filter dead-lettered (out of a read the proxy made; a
//!   message a client decided itself is left out, since its forward is about a delivery it
//!   may have held since before the ack and is retried until answered) for the group unless the broker crashed, the group's
//!   offsets were reset or a client of the group got it again in between: an ack in time settles the read it answers, so a new
//!   copy means the message was read again behind it, by a read the ack did not cover (a
//!   reentrant FIFO pop that took the same batch again while the ack was on its way, whose
//!   new popTime made the ack stale: `ConsumerOrderInfoManager.commitAndNext` returns −2
//!   and the ack is still answered `SUCCESS`). Without such an ack the copy may come again,
//!   as above.

use super::index::{
    crash_indices, is_retry_topic, is_success, proxy_dead_lettered, receipt_deadline, secs,
    witness_events, DeliveryClass, Facts, LookupMap,
};
use super::{InvariantInfo, Verdict, Witness};
use crate::history::{EventKind, History};
use broker_core::{keys, BrokerEvent, ExtraInfo, Millis, POP_ORDER_REVIVE_QUEUE};
use std::collections::{BTreeMap, BTreeSet};

pub(crate) const INFO: InvariantInfo = InvariantInfo {
    name: "dlq-accounting",
    statement: "A message reaches a group's DLQ only after the group delivered it the effective maximum number of times and a client decided so, and once dead-lettered and acked (or its ack refused by a proxy that held a valid handle) it is not delivered again, nor stored in the DLQ again out of a FIFO read the proxy dead-lettered.",
};

/// How long before its producer recorded the send's outcome a message may have been stored
/// and popped: `DefaultMQProducer.sendMsgTimeout`, the longest a send waits for its answer.
pub(crate) const STORE_SLACK_MS: Millis = 3_000;

/// (group, topic, queue).
type QueueKey<'h> = (&'h str, &'h str, u32);

/// The commits an orderly pop makes at its popTime (classic and KV path).
fn is_orderly_pop_commit(reason: &str) -> bool {
    reason == "PopMessageProcessor.orderly" || reason == "PopConsumerService"
}

/// One consumer's delivery of a message, and its listener runs since (a FIFO gRPC client's
/// local attempts of that delivery, or of another copy it holds).
#[derive(Clone, Copy)]
struct OwnCopy {
    /// Position among the group's deliveries of the message.
    pos: usize,
    /// The message's revives recorded before it.
    revives: usize,
    at: Millis,
    runs: usize,
}

/// What a dead-lettering is judged on: the group's deliveries up to the one being
/// dead-lettered, the revives before it, the orderly pops no client saw, and the listener
/// runs of a decision taken after local retries.
#[derive(Clone, Copy)]
struct Basis {
    delivered: usize,
    revives: usize,
    unseen: usize,
    local: Option<usize>,
}

impl Basis {
    /// Hand-outs before the delivery being dead-lettered.
    fn before(&self) -> usize {
        (self.delivered + self.unseen)
            .saturating_sub(1)
            .max(self.revives)
    }

    /// The delivery attempt the decision can have reached.
    fn attempts(&self) -> usize {
        self.before() + self.local.unwrap_or(0)
    }
}

/// One message in one group, as far as dead-lettering goes.
#[derive(Default)]
struct MsgState<'h> {
    deliveries: Vec<usize>,
    revives: usize,
    /// Per consumer of the group: its deliveries. A later delivery (a crash replay of the
    /// batch, say) does not restart the local attempts of an earlier copy.
    copies: BTreeMap<&'h str, Vec<OwnCopy>>,
    /// Index of the first decision, and of the first dead-lettering of either kind.
    decided: Option<usize>,
    dead_at: Option<usize>,
    /// The latest DLQ copy stored, and the first ack in time answered `SUCCESS` after it.
    copy: Option<usize>,
    acked_after_copy: Option<usize>,
    /// A client of the group decided itself (not the proxy's filter, which decides on a read
    /// the proxy made): its forward is about a delivery it may have held since before an
    /// ack, and is retried until answered, so its copy may land after any later filter round.
    client_decided: bool,
    /// The latest renewal of the current delivery's handle by the gRPC proxy's handle table.
    renewed: Option<Renewed<'h>>,
    /// Since the current delivery, the proxy refused its own ack after a forward (the
    /// event) while that renewal was valid.
    forgot: Option<(usize, Renewed<'h>)>,
}

/// A renewal the gRPC proxy's handle table made (`HandleRenewed`).
#[derive(Clone, Copy)]
struct Renewed<'h> {
    idx: usize,
    node: &'h str,
    receipt: &'h str,
    deadline: Millis,
}

#[cfg(test)]
pub(crate) fn check(history: &History) -> Verdict {
    check_with(&Facts::new(history))
}

pub(crate) fn check_with(facts: &Facts) -> Verdict {
    let h = facts.h;
    let dead_lettered = h.events.iter().any(|e| {
        matches!(
            e.kind,
            EventKind::SentToDlq { .. } | EventKind::DlqWritten { .. }
        )
    });
    if !dead_lettered {
        return Verdict::not_applicable("no message was dead-lettered");
    }
    let max_of = |consumer: &str| {
        (h.meta.consumers.iter())
            .find(|c| c.name == consumer)
            .map(|c| c.effective_max_reconsume_times)
    };
    // Consumers that retry locally and decide a DLQ forward themselves.
    let local_retries = |consumer: &str| {
        (h.meta.consumers.iter())
            .any(|c| c.name == consumer && c.kind == crate::history::ConsumerKind::GrpcFifo)
    };
    let group_max = |group: &str| {
        (h.meta.consumers.iter())
            .filter(|c| c.group == group)
            .map(|c| c.effective_max_reconsume_times)
            .min()
    };
    // The broker's orderly pops per (group, topic, queue): (popTime, start), and the
    // popTimes a client recorded a delivery for.
    let mut pops: BTreeMap<QueueKey, Vec<(Millis, i64)>> = BTreeMap::new();
    let mut seen: BTreeSet<(&str, &str, u32, Millis)> = BTreeSet::new();
    // The broker's orderly reads per (group, topic, queue) and popTime: (start, count); and
    // the (group, message, popTime) of every delivery out of an original topic.
    let mut reads: BTreeMap<(QueueKey, Millis), Vec<(u64, u32)>> = BTreeMap::new();
    // The same reads in the order the broker made them: (event index, popTime). Concurrent
    // pops (a lock another pop freed, F4) read in another order than their popTimes.
    let mut read_order: LookupMap<QueueKey, Vec<(usize, Millis)>> = LookupMap::default();
    let mut got: BTreeSet<(&str, &str, Millis)> = BTreeSet::new();
    // Message → where it is stored, and the earliest it can have been stored.
    let mut stored: LookupMap<&str, (&str, u32, u64)> = LookupMap::default();
    let mut stored_from: LookupMap<&str, Millis> = LookupMap::default();
    let mut could_store = |msg_id, at: Millis| {
        let t = stored_from.entry(msg_id).or_insert(at);
        *t = (*t).min(at);
    };
    // A send that timed out names no offset (develop-random 20366: the message was stored and
    // read by an orderly pop no client saw): its topic from the failed send, its offset from
    // any handle of it that names the original topic (an ack, a delivery), or a revive of it
    // from that topic.
    let mut failed_topic: LookupMap<&str, &str> = LookupMap::default();
    let mut named: Vec<(&str, u32, u64)> = Vec::new();
    for (idx, e) in h.events.iter().enumerate() {
        match &e.kind {
            EventKind::Broker(BrokerEvent::OffsetCommitted {
                group,
                topic,
                queue_id,
                offset,
                reason,
                ..
            }) if is_orderly_pop_commit(reason) => {
                (pops.entry((group, topic, *queue_id)).or_default()).push((e.at, *offset));
            }
            EventKind::Broker(BrokerEvent::PopRead {
                group,
                topic,
                queue_id,
                pop_time,
                offset,
                count,
                orderly: true,
                ..
            }) => {
                (reads
                    .entry(((group, topic, *queue_id), *pop_time))
                    .or_default())
                .push((*offset, *count));
                (read_order.entry((group, topic, *queue_id)).or_default()).push((idx, *pop_time));
            }
            EventKind::Delivered {
                group,
                msg_id,
                topic,
                queue_id,
                queue_offset,
                retry_topic: None,
                pop_time,
                ..
            } => {
                seen.insert((group, topic, *queue_id, *pop_time));
                got.insert((group, msg_id, *pop_time));
                stored
                    .entry(msg_id)
                    .or_insert((topic, *queue_id, *queue_offset));
                could_store(msg_id, pop_time.saturating_sub(STORE_SLACK_MS));
            }
            EventKind::Produced {
                msg_id,
                topic,
                queue_id,
                queue_offset,
                ..
            } => {
                stored.insert(msg_id, (topic, *queue_id, *queue_offset));
                could_store(msg_id, e.at.saturating_sub(STORE_SLACK_MS));
            }
            // A send that timed out may still have been stored.
            EventKind::ProduceFailed { msg_id, topic, .. } => {
                could_store(msg_id, e.at.saturating_sub(STORE_SLACK_MS));
                failed_topic.insert(msg_id, topic);
            }
            EventKind::AckSent {
                msg_id, receipt, ..
            } => {
                if let Some(x) = ExtraInfo::parse(receipt).filter(|x| x.topic_type == 0) {
                    named.push((msg_id, x.queue_id, x.queue_offset));
                }
            }
            EventKind::Broker(BrokerEvent::Revived {
                msg_id,
                ck,
                queue_offset,
                ..
            }) if !is_retry_topic(&ck.topic) => {
                named.push((msg_id, ck.queue_id, *queue_offset));
            }
            _ => {}
        }
    }
    for (msg_id, q, offset) in named {
        if let Some(topic) = failed_topic.get(msg_id) {
            stored.entry(msg_id).or_insert((topic, q, offset));
        }
    }
    for list in pops.values_mut() {
        list.sort_unstable();
    }
    // Whether the orderly read of `key` at `pop_time` covered `offset` while no client got
    // `msg_id` from that pop: the gRPC proxy's filter kept it back (`PopMessageResultFilterImpl`
    // → `forwardMessageToDeadLetterQueue`) and handed out the rest of the batch.
    let kept_back = |key: QueueKey, pop_time: Millis, msg_id: &str, offset: u64| -> bool {
        !got.contains(&(key.0, msg_id, pop_time))
            && (reads.get(&(key, pop_time)).into_iter().flatten())
                .any(|(start, n)| *start <= offset && offset < start + u64::from(*n))
    };
    // Orderly pops by `group` no client saw that may have handed `msg_id` out by `until`:
    // started at or below it, after it was stored; or that read it and handed out only
    // other messages of the batch.
    let orderly_pops = |group: &str, msg_id: &str, until: Millis| -> usize {
        let Some((topic, q, offset)) = stored.get(msg_id).copied() else {
            return 0;
        };
        let from = stored_from.get(msg_id).copied().unwrap_or(0);
        let Some(list) = pops.get(&(group, topic, q)) else {
            return 0;
        };
        // Sorted by time: look only between `from` and `until`.
        let window = &list[list.partition_point(|(p, _)| *p < from)..];
        let window = &window[..window.partition_point(|(p, _)| *p <= until)];
        let times: BTreeSet<Millis> = (window.iter())
            .filter(|(p, start)| {
                *start <= offset as i64
                    && (!seen.contains(&(group, topic, q, *p))
                        || kept_back((group, topic, q), *p, msg_id, offset))
            })
            .map(|(p, _)| *p)
            .collect();
        times.len()
    };
    let acks = facts.acks();
    let crash_excused: LookupMap<usize, bool> = (acks.after_ack.iter())
        .map(|a| (a.idx, a.crash_between))
        .collect();

    // An ack answered `SUCCESS` at `at` settles the orderly read its receipt names if it came
    // within the receipt's invisible time and the message was the first of the batch the
    // broker read at that popTime: the commit offset passes an orderly entry only once every
    // lower one of the batch is acked (`ConsumerOrderInfoManager.commitAndNext`), so an ack
    // further in may settle nothing, and the batch is read again when its invisible time
    // lapses. (A concurrent message has copies of its own, one per revive, each of which
    // may be dead-lettered in its turn: not judged here.)
    let origins = facts.origins();
    let crashes = crash_indices(h);
    // An ack sent after the broker crashed and read its queue again (the crash rolled the
    // commit offset back and lost or replaced the read's OrderInfo) names a batch the queue
    // no longer holds: `commitAndNext` finds another popTime, moves nothing, and the ack is
    // still answered `SUCCESS`; it settles nothing either. (A reentrant read without a crash
    // between, F25's, leaves the ack judged.)
    let settles = |group: &str, msg_id: &str, receipt: &str, at: Millis, sent: usize| {
        ExtraInfo::parse(receipt).is_some_and(|x| {
            let first_of_batch = || {
                origins.get(msg_id).is_some_and(|o| {
                    let queue = (group, o.topic.as_str(), x.queue_id);
                    let read = (reads.get(&(queue, x.pop_time)).into_iter().flatten())
                        .any(|(start, _)| *start == x.queue_offset);
                    // The named read's latest before the ack, then a crash, then a read of
                    // another popTime, all before the ack was sent.
                    let order = read_order.get(&queue).map_or(&[][..], Vec::as_slice);
                    let before = &order[..order.partition_point(|(i, _)| *i < sent)];
                    let superseded = (before.iter().rposition(|(_, p)| *p == x.pop_time))
                        .is_some_and(|n| {
                            let named = before[n].0;
                            let crash = crashes[crashes.partition_point(|c| *c <= named)..]
                                .first()
                                .copied();
                            crash.is_some_and(|c| {
                                (before[n + 1..].iter()).any(|(i, p)| *i > c && *p != x.pop_time)
                            })
                        });
                    read && !superseded
                })
            };
            at <= x.pop_time + x.invisible_time
                && x.revive_qid == POP_ORDER_REVIVE_QUEUE
                && first_of_batch()
        })
    };
    // Where each (node, group, receipt)'s latest ack was sent (its event index).
    let mut sent: LookupMap<(&str, &str, &str), usize> = LookupMap::default();
    let resets = facts.resets();
    // A crash or a reset of the group between two events lets a settled message be read again.
    let excused_between = |group: &str, from: usize, to: usize| {
        let i = crashes.partition_point(|c| *c <= from);
        crashes.get(i).is_some_and(|c| *c < to)
            || (resets.iter()).any(|p| p.group == group && from < p.idx && p.idx < to)
    };

    let mut msgs: BTreeMap<(&str, &str), MsgState> = BTreeMap::new();
    let mut found: Vec<Witness> = Vec::new();
    for (idx, e) in h.events.iter().enumerate() {
        match &e.kind {
            EventKind::AckResult {
                group,
                msg_id,
                receipt,
                outcome,
                ..
            } if is_success(outcome) => {
                if let Some(st) = msgs.get_mut(&(group.as_str(), msg_id.as_str())) {
                    // The proxy acked with its renewed handle (for a listener of another
                    // copy of the message: its table keys a handle by queue and offset) and
                    // dropped it, as it should: a later refusal forgot nothing.
                    if st
                        .renewed
                        .is_some_and(|r| r.node == &*e.node && r.receipt == receipt.as_str())
                    {
                        st.renewed = None;
                    }
                    let sent_idx = (sent.get(&(e.node.as_str(), group.as_str(), receipt.as_str())))
                        .copied()
                        .unwrap_or(idx);
                    if st.copy.is_some() && settles(group, msg_id, receipt, e.at, sent_idx) {
                        st.acked_after_copy.get_or_insert(idx);
                    }
                }
            }
            EventKind::AckSent { group, receipt, .. } => {
                sent.insert((e.node.as_str(), group.as_str(), receipt.as_str()), idx);
            }
            EventKind::Delivered {
                consumer,
                group,
                msg_id,
                topic,
                ..
            } if !topic.starts_with(keys::DLQ_GROUP_TOPIC_PREFIX) => {
                let st = msgs.entry((group, msg_id)).or_default();
                if let (
                    Some(dead),
                    Some(DeliveryClass::AfterAck {
                        ack,
                        acked_delivery,
                    }),
                ) = (st.dead_at, acks.classes.get(&idx))
                {
                    if !crash_excused.get(&idx).copied().unwrap_or(false) {
                        found.push(witness(
                            msg_id,
                            format!(
                                "{msg_id} was dead-lettered for group {group} at {} and acked at {}, but the group got it again",
                                secs(h.events[dead].at),
                                secs(h.events[*ack].at)
                            ),
                            vec![dead, *ack, *acked_delivery, idx],
                        ));
                    }
                }
                if let (Some(dead), Some((refused, renewed))) = (st.dead_at, st.forgot) {
                    if e.at >= renewed.deadline && !excused_between(group, refused, idx) {
                        let mut events = vec![dead, renewed.idx, refused, idx];
                        events.extend(st.copy);
                        found.push(witness(
                            msg_id,
                            format!(
                                "{msg_id} was dead-lettered for group {group} at {} and the forward's send-back succeeded, but at {} the proxy refused its own ack after it: the forward named the client's original handle, expired, while the proxy's renewal at {} had given it a handle valid until {} (which it forgot); the group got the message again at {}",
                                secs(h.events[dead].at),
                                secs(h.events[refused].at),
                                secs(h.events[renewed.idx].at),
                                secs(renewed.deadline),
                                secs(e.at)
                            ),
                            events,
                        ));
                    }
                }
                st.renewed = None;
                st.forgot = None;
                let copy = OwnCopy {
                    pos: st.deliveries.len(),
                    revives: st.revives,
                    at: e.at,
                    runs: 0,
                };
                st.copies.entry(consumer).or_default().push(copy);
                st.deliveries.push(idx);
                // Handed out again (judged above): a new round, which may end in the DLQ.
                st.acked_after_copy = None;
            }
            EventKind::ListenerStarted {
                consumer,
                group,
                msg_id,
                ..
            } => {
                let st = msgs.entry((group, msg_id)).or_default();
                for c in st.copies.get_mut(&**consumer).into_iter().flatten() {
                    c.runs += 1;
                }
            }
            EventKind::Broker(BrokerEvent::Revived { group, msg_id, .. }) => {
                msgs.entry((group, msg_id)).or_default().revives += 1;
            }
            EventKind::HandleRenewed {
                group,
                msg_id,
                new_receipt,
                ..
            } => {
                msgs.entry((group, msg_id)).or_default().renewed = Some(Renewed {
                    idx,
                    node: &e.node,
                    receipt: new_receipt,
                    deadline: receipt_deadline(new_receipt, e.at),
                });
            }
            // The ack after a forward, refused by the node whose renewal holds a newer handle
            // still valid: that node had forgotten its own handle (finding F28).
            EventKind::ForwardAckRefused {
                group,
                msg_id,
                receipt,
                ..
            } => {
                let st = msgs.entry((group, msg_id)).or_default();
                if let Some(r) = st.renewed.filter(|r| {
                    r.node == &*e.node && r.receipt != receipt.as_str() && e.at <= r.deadline
                }) {
                    st.forgot.get_or_insert((idx, r));
                }
            }
            EventKind::SentToDlq {
                consumer,
                group,
                msg_id,
                dlq_topic,
                ..
            } => {
                let st = msgs.entry((group, msg_id)).or_default();
                st.decided.get_or_insert(idx);
                st.dead_at.get_or_insert(idx);
                st.client_decided |= proxy_dead_lettered(e).is_none();
                let max = max_of(consumer);
                // The client's own decision after local retries (not the proxy's filter)
                // dead-letters one of its own deliveries after the runs it made of it: judged
                // on the one that allows the most attempts. The proxy's filter and the
                // remoting client dead-letter the group's latest hand-out.
                let local = *e.node == **consumer && local_retries(consumer);
                let own = (st.copies.get(&**consumer).into_iter().flatten())
                    .filter(|_| local)
                    .map(|c| Basis {
                        delivered: c.pos + 1,
                        revives: c.revives,
                        unseen: orderly_pops(group, msg_id, c.at),
                        local: Some(c.runs),
                    })
                    .max_by_key(Basis::attempts);
                let basis = match own {
                    Some(b) => b,
                    None => Basis {
                        delivered: st.deliveries.len(),
                        revives: st.revives,
                        unseen: orderly_pops(group, msg_id, e.at),
                        local: local.then_some(0),
                    },
                };
                found.extend(enough(h, idx, st, &basis, max, group, msg_id, dlq_topic));
            }
            EventKind::DlqWritten {
                group,
                msg_id,
                dlq_topic,
                ..
            } => {
                let st = msgs.entry((group, msg_id)).or_default();
                st.dead_at.get_or_insert(idx);
                if let (Some(prev), Some(ack)) = (st.copy, st.acked_after_copy) {
                    // Only copies the proxy's filter decided on (a write without any decision
                    // is judged above).
                    let filtered = st.decided.is_some() && !st.client_decided;
                    if filtered && !excused_between(group, prev, idx) {
                        found.push(witness(
                            msg_id,
                            format!(
                                "the broker stored {msg_id} in {dlq_topic} for group {group} again at {}: a copy was stored at {} and an ack of it answered SUCCESS in time at {}, with no crash or reset since",
                                secs(e.at),
                                secs(h.events[prev].at),
                                secs(h.events[ack].at)
                            ),
                            vec![prev, ack, idx],
                        ));
                    }
                }
                st.copy = Some(idx);
                st.acked_after_copy = None;
                let max = match st.decided {
                    Some(_) => None, // Judged at the decision.
                    None => {
                        let mut why = format!(
                            "the broker stored {msg_id} in {dlq_topic} for group {group}, but no client of the group had decided to dead-letter it"
                        );
                        let mut events = vec![idx];
                        if let Some((d, other)) = stored_instead_of(h, idx, group, msg_id) {
                            why.push_str(&format!(
                                "; it was stored in place of {other}, which {} decided to dead-letter at {} and of which no copy was stored: the send-back looked up another message than the one decided (it reads the message at the commit log offset the forward's handle names)",
                                h.events[d].node,
                                secs(h.events[d].at)
                            ));
                            events.insert(0, d);
                        }
                        found.push(witness(msg_id, why, events));
                        group_max(group)
                    }
                };
                let basis = Basis {
                    delivered: st.deliveries.len(),
                    revives: st.revives,
                    unseen: orderly_pops(group, msg_id, e.at),
                    local: None,
                };
                found.extend(enough(h, idx, st, &basis, max, group, msg_id, dlq_topic));
            }
            _ => {}
        }
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

fn witness(msg_id: &str, summary: String, events: Vec<usize>) -> Witness {
    Witness {
        msg_id: Some(msg_id.to_owned()),
        summary,
        events: witness_events(events),
    }
}

/// The DLQ topic is the group's and the message was handed out at least `max` times before
/// the delivery being dead-lettered (the last of `basis.delivered`), counting the listener
/// runs of a decision taken after local retries.
#[allow(clippy::too_many_arguments)]
fn enough(
    h: &History,
    idx: usize,
    st: &MsgState,
    basis: &Basis,
    max: Option<u32>,
    group: &str,
    msg_id: &str,
    dlq_topic: &str,
) -> Option<Witness> {
    let expected = keys::dlq_topic(group);
    let what = match &h.events[idx].kind {
        EventKind::DlqWritten { .. } => "the broker stored",
        _ => "a client dead-lettered",
    };
    if dlq_topic != expected {
        return Some(Witness {
            msg_id: Some(msg_id.to_owned()),
            summary: format!(
                "{what} {msg_id} of group {group} in {dlq_topic}, not the group's DLQ {expected}"
            ),
            events: vec![idx],
        });
    }
    let max = max?;
    // Hand-outs before the one being dead-lettered.
    let Basis {
        delivered,
        revives,
        unseen,
        local,
    } = *basis;
    let before = basis.before();
    if basis.attempts() as u64 >= u64::from(max) {
        return None;
    }
    let mut events = st.deliveries[..delivered.min(st.deliveries.len())].to_vec();
    events.push(idx);
    let runs = local.map_or_else(String::new, |r| {
        format!(", then {r} attempt(s) of that delivery")
    });
    Some(Witness {
        msg_id: Some(msg_id.to_owned()),
        summary: format!(
            "{what} {msg_id} for group {group} after handing it out {before} time(s) before ({delivered} deliveries, {unseen} orderly pops no client saw, {revives} revives){runs}; the effective maximum is {max}"
        ),
        events: witness_events(events),
    })
}

/// The group's latest dead-letter decision before the DLQ write at `idx`, when it named
/// another message than the one stored and no copy of that message was stored after it:
/// the decision this write answered, for another message (finding F33's DLQ face: the
/// send-back reads the message at the commit log offset the handle names).
fn stored_instead_of<'h>(
    h: &'h History,
    idx: usize,
    group: &str,
    stored: &str,
) -> Option<(usize, &'h str)> {
    let (d, other) = h.events[..idx]
        .iter()
        .enumerate()
        .rev()
        .find_map(|(i, e)| match &e.kind {
            EventKind::SentToDlq {
                group: g, msg_id, ..
            } if *g == group => Some((i, msg_id.as_str())),
            _ => None,
        })?;
    let copied = h.events[d..idx].iter().any(|e| {
        matches!(&e.kind, EventKind::DlqWritten { group: g, msg_id, .. } if *g == group && *msg_id == other)
    });
    (other != stored && !copied).then_some((d, other))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::history::{ConsumeOutcome, ConsumerKind, RpcOutcome};
    use crate::invariants::Status;
    use crate::testkit::{ok, Rcpt, H};
    use broker_core::ReadFrom;

    /// Orderly consumer o1 with maxReconsumeTimes `max`; m0 is delivered `n` times and
    /// fails each time. Returns the deliveries.
    fn failing(h: &mut H, max: i32, n: u32) -> Vec<Rcpt> {
        h.consumer("o1", "og", ConsumerKind::Orderly, max);
        h.at(0).produce("m0", 0, 0);
        (0..n)
            .map(|i| {
                let t = 1_000 + u64::from(i) * 20_000;
                let mut r = h.at(t).pop("o1", "m0", 0, 0);
                r.reconsume_times = i;
                h.listener(&r);
                h.at(t + 100)
                    .listener_done(&r, ConsumeOutcome::Failure, false);
                r
            })
            .collect()
    }

    /// The proxy's filter dead-letters m0 (FIFO, maxAttempts 1, handed out once before) out
    /// of the orderly read at `pop_time`, the broker stores a copy, and the proxy acks it
    /// with that read's handle (answered with `ack`, `ack_after` ms after the read). The read
    /// starts at `start` and ends at m0 (`off`).
    fn proxy_reads_and_dead_letters(
        h: &mut H,
        pop_time: Millis,
        (start, off): (u64, u64),
        ack: RpcOutcome,
        ack_after: Millis,
    ) {
        h.at(pop_time)
            .commit("fg", 0, start as i64, "PopMessageProcessor.orderly");
        let count = (off - start + 1) as u32;
        h.pop_read(
            "fg",
            0,
            pop_time,
            start,
            count,
            true,
            ReadFrom::CommitOffset,
        );
        h.at(pop_time + 10).proxy_dead_letters("f1", "fg", "m0", 1);
        let r = filtered_receipt(pop_time, start, off);
        h.at(pop_time + 20).dlq_written(&r, 0);
        proxy_acks_filtered(h, &r, pop_time + 30, pop_time + ack_after, ack);
    }

    /// The handle of m0 (offset `off`) in f1's orderly read at `pop_time` from `start`.
    fn filtered_receipt(pop_time: Millis, start: u64, off: u64) -> Rcpt {
        Rcpt {
            idx: 0,
            consumer: "f1".into(),
            group: "fg".into(),
            msg_id: "m0".into(),
            receipt: ExtraInfo {
                ck_queue_offset: start,
                pop_time,
                invisible_time: 60_000,
                revive_qid: POP_ORDER_REVIVE_QUEUE,
                topic_type: 0,
                broker_name: "broker-a".into(),
                queue_id: 0,
                queue_offset: off,
                commit_log_offset: Some(0),
            }
            .build(),
            copy_topic: crate::testkit::T.into(),
            queue_id: 0,
            queue_offset: off,
            reconsume_times: 1,
        }
    }

    /// The proxy's ack of `r` after its forward: sent at `sent`, answered at `answered`.
    fn proxy_acks_filtered(h: &mut H, r: &Rcpt, sent: Millis, answered: Millis, ack: RpcOutcome) {
        h.at(sent).push(
            "proxy",
            EventKind::AckSent {
                consumer: "f1".into(),
                group: "fg".into(),
                msg_id: "m0".into(),
                receipt: r.receipt.clone().into(),
            },
        );
        h.at(answered).push(
            "proxy",
            EventKind::AckResult {
                consumer: "f1".into(),
                group: "fg".into(),
                msg_id: "m0".into(),
                receipt: r.receipt.clone().into(),
                outcome: ack,
            },
        );
    }

    /// Finding F25: m0, handed out once, is read again at 61 s and dead-lettered; the
    /// proxy's ack is answered SUCCESS, and a reentrant read at 61.05 s (the same batch) is
    /// dead-lettered again.
    fn re_dead_lettered(between: impl FnOnce(&mut H)) -> Verdict {
        let mut h = H::grpc_fifo(&["f1"], "fg", 0);
        h.at(0).produce("m0", 0, 0);
        h.at(1_000).pop("f1", "m0", 0, 0);
        proxy_reads_and_dead_letters(&mut h, 61_000, (0, 0), ok(), 45);
        between(&mut h);
        proxy_reads_and_dead_letters(&mut h, 61_050, (0, 0), ok(), 45);
        check(&h.build())
    }

    #[test]
    fn a_copy_stored_again_after_an_ack_in_time_is_a_violation() {
        let v = re_dead_lettered(|_| {});
        assert_eq!(v.status, Status::Violated);
        assert!(v.witness.unwrap().summary.starts_with(
            "the broker stored m0 in %DLQ%fg for group fg again at 61.070s: a copy was stored at 61.020s and an ack of it answered SUCCESS in time at 61.045s"
        ));
    }

    #[test]
    fn a_crash_a_failed_ack_a_late_ack_or_an_ack_inside_the_batch_lets_it_come_again() {
        // A crash between the ack and the second read: the commit may not have been persisted.
        let v = re_dead_lettered(|h| {
            h.at(61_046).crash();
            h.at(61_047).restart();
        });
        assert_eq!(v, Verdict::held(), "a crash");
        // The first ack timed out, or came after the invisible time: it settled nothing.
        for (ack, after) in [(RpcOutcome::Timeout, 45), (ok(), 60_001)] {
            let late = after > 60_000;
            let mut h = H::grpc_fifo(&["f1"], "fg", 0);
            h.at(0).produce("m0", 0, 0);
            h.at(1_000).pop("f1", "m0", 0, 0);
            proxy_reads_and_dead_letters(&mut h, 1_040, (0, 0), ack, after);
            proxy_reads_and_dead_letters(&mut h, 61_050, (0, 0), ok(), 45);
            assert_eq!(check(&h.build()), Verdict::held(), "late: {late}");
        }
        // The read began below m0: its ack alone does not move the commit offset past m0.
        let mut h = H::grpc_fifo(&["f1"], "fg", 0);
        h.at(0).produce("m0", 0, 1);
        h.at(1_000).pop("f1", "m0", 0, 1);
        proxy_reads_and_dead_letters(&mut h, 61_000, (0, 1), ok(), 45);
        proxy_reads_and_dead_letters(&mut h, 61_050, (0, 1), ok(), 45);
        assert_eq!(check(&h.build()), Verdict::held(), "inside the batch");

        // Proxy-random 45065 (`--fix all`): f1's batch read at 1 s was renewed by the proxy;
        // a crash at 30 s rolled the queue back, the filter read it again at 61 s and stored
        // a copy; f1's ack of the 1 s batch's handle at 75 s was answered SUCCESS in time,
        // but `commitAndNext` found the 61 s read's popTime and moved nothing: the read at
        // 80 s stores m0 again. Without the crash the same ack settles the queue, and the
        // second copy is a violation.
        for crash in [true, false] {
            let mut h = H::grpc_fifo(&["f1"], "fg", 0);
            h.at(0).produce("m0", 0, 0);
            h.at(1_000)
                .pop_read("fg", 0, 1_000, 0, 1, true, ReadFrom::CommitOffset);
            let d = h.at(1_000).pop("f1", "m0", 0, 0);
            if crash {
                h.at(30_000).crash();
                h.at(31_000).restart();
            }
            let renewed = h.at(50_000).proxy_renews(&d, 60_000);
            proxy_reads_and_dead_letters(&mut h, 61_000, (0, 0), RpcOutcome::Timeout, 45);
            proxy_acks_filtered(&mut h, &renewed, 75_000, 75_010, ok());
            proxy_reads_and_dead_letters(&mut h, 80_000, (0, 0), ok(), 45);
            let status = check(&h.build()).status;
            if crash {
                assert_eq!(status, Status::Held, "an ack of a batch the crash replaced");
            } else {
                assert_eq!(status, Status::Violated, "an ack of the current batch");
            }
        }
    }

    #[test]
    fn no_redelivery_a_client_decision_or_a_second_copy_without_a_first_ack() {
        // The second copy is the client's own decision about a delivery it held.
        let mut h = H::grpc_fifo(&["f1"], "fg", 0);
        h.at(0).produce("m0", 0, 0);
        let r = h.at(1_000).pop("f1", "m0", 0, 0);
        h.at(2_000).listener(&r);
        proxy_reads_and_dead_letters(&mut h, 61_000, (0, 0), ok(), 45);
        h.at(61_050).dlq(&r);
        h.at(61_060).dlq_written(&r, 1);
        assert_eq!(check(&h.build()), Verdict::held(), "the client's decision");
        // The client decided first and its forward was held up (retried every second) past
        // a round of the filter, whose copy and ack landed in between.
        let mut h = H::grpc_fifo(&["f1"], "fg", 0);
        h.at(0).produce("m0", 0, 0);
        let r = h.at(1_000).pop("f1", "m0", 0, 0);
        h.at(2_000).listener(&r);
        h.at(3_000).dlq(&r);
        proxy_reads_and_dead_letters(&mut h, 61_000, (0, 0), ok(), 45);
        h.at(99_000).dlq_written(&r, 1);
        assert_eq!(
            check(&h.build()),
            Verdict::held(),
            "a client's late forward"
        );
        // A client got m0 again in between: a new round.
        let v = re_dead_lettered(|h| {
            h.at(61_048).pop("f1", "m0", 0, 0);
        });
        assert_eq!(v, Verdict::held(), "a delivery in between");
    }

    #[test]
    fn no_dead_letter_is_not_applicable() {
        let mut h = H::orderly();
        failing(&mut h, 2, 2);
        assert_eq!(
            check(&h.build()),
            Verdict::not_applicable("no message was dead-lettered")
        );
    }

    #[test]
    fn a_decided_dlq_after_the_maximum_holds() {
        // maxReconsumeTimes 2: the third delivery (reconsumeTimes 2) is sent back and acked,
        // and the broker stores it in %DLQ%og.
        let mut h = H::orderly();
        let rs = failing(&mut h, 2, 3);
        let last = &rs[2];
        h.at(41_200).dlq(last);
        h.at(41_250).dlq_written(last, 0);
        h.at(41_300).ack(last);
        assert_eq!(check(&h.build()), Verdict::held());
    }

    #[test]
    fn a_dlq_before_the_maximum_is_a_violation() {
        let mut h = H::orderly();
        let rs = failing(&mut h, 3, 1);
        let d = h.at(1_200).dlq(&rs[0]);
        let w = check(&h.build()).witness.unwrap();
        assert_eq!(w.msg_id.as_deref(), Some("m0"));
        assert_eq!(w.events, vec![rs[0].idx, d]);
        assert_eq!(
            w.summary,
            "a client dead-lettered m0 for group og after handing it out 0 time(s) before (1 deliveries, 0 orderly pops no client saw, 0 revives); the effective maximum is 3"
        );
        // One short: maxReconsumeTimes 2 dead-letters the third hand-out (reconsumeTimes 2),
        // not the second.
        let mut h = H::orderly();
        let rs = failing(&mut h, 2, 2);
        h.at(21_200).dlq(&rs[1]);
        assert_eq!(check(&h.build()).status, Status::Violated);
    }

    /// gRPC FIFO consumer f1 (retryMaxTimes 2, so maxAttempts 3): m0 is delivered once and
    /// its listener fails `runs` times in a row (local retries).
    fn fifo_local(runs: u32) -> (H, Rcpt) {
        let mut h = H::grpc_fifo(&["f1"], "fg", 2);
        h.at(0).produce("m0", 0, 0);
        let r = h.at(1_000).pop("f1", "m0", 0, 0);
        for i in 0..runs {
            let t = 1_000 + u64::from(i) * 5_000;
            h.at(t).listener(&r);
            h.at(t + 100)
                .listener_done(&r, ConsumeOutcome::Failure, false);
        }
        (h, r)
    }

    #[test]
    fn a_fifo_client_counts_its_local_attempts() {
        // Three failed attempts of one delivery: attempt 3 = maxAttempts, then the client
        // forwards it (eraseFifoMessage → forwardToDeadLetterQueue) and the broker stores it.
        let (mut h, r) = fifo_local(3);
        h.at(20_000).dlq(&r);
        h.at(20_050).dlq_written(&r, 0);
        assert_eq!(check(&h.build()), Verdict::held());
        // Two attempts are one short.
        let (mut h, r) = fifo_local(2);
        let d = h.at(20_000).dlq(&r);
        let w = check(&h.build()).witness.expect("violated");
        assert_eq!(w.events, vec![r.idx, d]);
        assert!(
            w.summary.ends_with(
                "(1 deliveries, 0 orderly pops no client saw, 0 revives), then 2 attempt(s) of that delivery; the effective maximum is 3"
            ),
            "{}",
            w.summary
        );
    }

    #[test]
    fn a_later_delivery_does_not_restart_the_local_attempts() {
        // f1 got m0 (reconsumeTimes 0) and failed it `before` times; a crash lost the
        // OrderInfo block, so the batch was handed out again, to f2 or to another process
        // queue of f1; f1's next local attempts failed and it forwarded m0. The decision
        // counts f1's runs of its first copy, not only the runs after the replay.
        let shape = |to: &str, before: u32, after: u32| {
            let mut h = H::grpc_fifo(&["f1", "f2"], "fg", 2);
            h.at(0).produce("m0", 0, 0);
            let r = h.at(1_000).pop("f1", "m0", 0, 0);
            let mut t = 2_000;
            let run = |h: &mut H, t: &mut u64| {
                h.at(*t).listener(&r);
                h.at(*t + 20)
                    .listener_done(&r, ConsumeOutcome::Failure, false);
                *t += 5_000;
            };
            for _ in 0..before {
                run(&mut h, &mut t);
            }
            h.at(t).pop(to, "m0", 0, 0);
            t += 100;
            for _ in 0..after {
                run(&mut h, &mut t);
            }
            let d = h.at(t).dlq(&r);
            (check(&h.build()), r.idx, d)
        };
        for to in ["f2", "f1"] {
            assert_eq!(shape(to, 2, 1).0, Verdict::held(), "replay to {to}");
            // Two runs in all are one short, however they fall around the replay.
            assert_eq!(shape(to, 1, 1).0.status, Status::Violated, "replay to {to}");
        }
        assert_eq!(shape("f2", 0, 2).0.status, Status::Violated);
        let (v, first, d) = shape("f2", 1, 1);
        let w = v.witness.expect("violated");
        assert_eq!(w.events, vec![first, d]);
        assert!(
            w.summary.ends_with(
                "(1 deliveries, 0 orderly pops no client saw, 0 revives), then 2 attempt(s) of that delivery; the effective maximum is 3"
            ),
            "{}",
            w.summary
        );
        // f2's own runs of its copy are not f1's attempts.
        let mut h = H::grpc_fifo(&["f1", "f2"], "fg", 2);
        h.at(0).produce("m0", 0, 0);
        let r = h.at(1_000).pop("f1", "m0", 0, 0);
        let again = h.at(2_000).pop("f2", "m0", 0, 0);
        for t in [3_000, 8_000] {
            h.at(t).listener(&again);
            h.at(t + 20)
                .listener_done(&again, ConsumeOutcome::Failure, false);
        }
        h.at(9_000).listener(&r);
        h.at(9_020)
            .listener_done(&r, ConsumeOutcome::Failure, false);
        h.at(9_100).dlq(&r);
        assert_eq!(check(&h.build()).status, Status::Violated);
    }

    #[test]
    fn the_proxys_filter_does_not_count_listener_runs() {
        // The same three runs, but the decision is recorded on the proxy's node: the
        // receive-time filter dead-letters only a hand-out whose reconsumeTimes reached
        // maxAttempts, and m0 was handed out once.
        let (mut h, r) = fifo_local(3);
        h.at(20_000).proxy_dead_letters(
            &r.consumer.clone(),
            &r.group.clone(),
            &r.msg_id.clone(),
            0,
        );
        assert_eq!(check(&h.build()).status, Status::Violated);
    }

    #[test]
    fn revives_count_hand_outs_whose_answer_was_lost() {
        // maxReconsumeTimes 3; only one pop answer reached c1, but the broker revived m0
        // three times: reconsumeTimes 3 is four hand-outs.
        let mut h = H::new();
        h.consumer("c1", "g1", ConsumerKind::Concurrent, 3);
        h.at(0).produce("m0", 0, 0);
        let first = h.at(1_000).pop("c1", "m0", 0, 0);
        for i in 0..3 {
            h.at(12_000 + i * 12_000).revive(&first, i, i as u32 + 1);
        }
        let r = h.at(50_000).pop_retry("c1", "m0", 2, 3);
        h.dlq(&r);
        assert_eq!(check(&h.build()), Verdict::held());
        // Without the revives, one delivery is too few.
        let mut h = H::new();
        h.consumer("c1", "g1", ConsumerKind::Concurrent, 3);
        let r = h.at(1_000).pop("c1", "m0", 0, 0);
        h.dlq(&r);
        assert_eq!(check(&h.build()).status, Status::Violated);
    }

    #[test]
    fn orderly_pops_no_client_saw_count_as_hand_outs() {
        // Two orderly consumers, maxReconsumeTimes 2. A pop at 18.5 s re-read m0 (offset 1)
        // but its answer was lost, so the next pop hands m0 out with reconsumeTimes 2 after
        // only one recorded delivery.
        let shape = |unseen_start: Option<i64>| {
            let mut h = H::orderly();
            h.consumer("o1", "og", ConsumerKind::Orderly, 2);
            h.consumer("o2", "og", ConsumerKind::Orderly, 2);
            h.at(300).produce("m0", 0, 1);
            h.at(400).pop_batch("o2", &[("m0", 1)], 0);
            if let Some(start) = unseen_start {
                h.at(18_500)
                    .commit("og", 0, start, "PopMessageProcessor.orderly");
            }
            let again = h.at(28_600).pop_batch("o2", &[("m0", 1)], 0);
            h.at(28_700).dlq(&again[0]);
            check(&h.build()).status
        };
        assert_eq!(shape(Some(1)), Status::Held);
        assert_eq!(shape(None), Status::Violated);
        // A pop that started past m0 never handed it out.
        assert_eq!(shape(Some(2)), Status::Violated);

        // A send that timed out but was stored: the unseen pop came long before m0's first
        // recorded delivery, and counts only because the failed send says when m0 existed.
        let lost_send = |failed: bool| {
            let mut h = H::orderly();
            h.consumer("o1", "og", ConsumerKind::Orderly, 2);
            if failed {
                h.at(3_300).produce_failed("m0", 0);
            }
            h.at(18_500)
                .commit("og", 0, 1, "PopMessageProcessor.orderly");
            h.at(28_600).pop_batch("o1", &[("m0", 1)], 0);
            let again = h.at(40_000).pop_batch("o1", &[("m0", 1)], 0);
            h.at(40_100).dlq(&again[0]);
            check(&h.build()).status
        };
        assert_eq!(lost_send(true), Status::Held);
        assert_eq!(lost_send(false), Status::Violated);
    }

    #[test]
    fn a_failed_send_never_delivered_is_placed_by_the_proxys_handle() {
        // develop-random 20366 (every fix): p-orders-13's send timed out, but it was stored
        // (offset 1); an orderly pop no client saw read 0..=1; a later pop read it again and
        // the proxy's filter dead-lettered it (maxAttempts 1) without any delivery. Only the
        // handle the proxy acks with places it, and with it the unseen pop is its hand-out.
        let run = |failed_send: bool| {
            let mut h = H::grpc_fifo(&["f1"], "fg", 0);
            if failed_send {
                h.at(3_300).produce_failed("m0", 0);
            }
            h.at(600).commit("fg", 0, 0, "PopMessageProcessor.orderly");
            h.pop_read("fg", 0, 600, 0, 2, true, ReadFrom::CommitOffset);
            proxy_reads_and_dead_letters(&mut h, 88_000, (0, 1), ok(), 45);
            check(&h.build()).status
        };
        assert_eq!(run(true), Status::Held);
        assert_eq!(run(false), Status::Violated, "nothing says where m0 is");
    }

    #[test]
    fn a_pop_whose_batch_the_proxy_handed_out_but_for_the_dead_lettered_message_counts() {
        // develop-random with retryMaxTimes 2 (maxAttempts 3), seed 16: s1 got p-orders-19
        // (orders/3 offset 1) at reconsumeTimes 0, 1, 2; the pop at 122.630 s read offsets
        // 1..=2, the proxy's filter (`PopMessageResultFilterImpl`) forwarded p-orders-19
        // (reconsumeTimes 3) and handed out offset 2. Here f1 gets m0 and m1 in one FIFO
        // batch three times; the fourth pop reads both, m1 is forwarded and m0 handed out.
        // That pop is m1's fourth hand-out, though a client recorded a delivery at its
        // popTime.
        let shape = |read: u32| {
            let mut h = H::grpc_fifo(&["f1"], "fg", 2);
            h.at(0).produce("m0", 0, 0);
            h.at(0).produce("m1", 0, 1);
            for i in 0..3 {
                h.at(1_000 + i * 20_000)
                    .pop_batch("f1", &[("m0", 0), ("m1", 1)], 0);
            }
            let t = 61_000;
            h.at(t).commit("fg", 0, 0, "PopMessageProcessor.orderly");
            h.at(t)
                .pop_read("fg", 0, t, 0, read, true, ReadFrom::CommitOffset);
            h.at(t + 5).pop_of_batch_served_at("f1", "m0", 0, 0, 0, t);
            h.at(t + 4).proxy_dead_letters("f1", "fg", "m1", 3);
            check(&h.build())
        };
        assert_eq!(shape(2), Verdict::held());
        // A read of offset 0 alone never handed m1 out a fourth time.
        let v = shape(1);
        assert_eq!(v.status, Status::Violated);
        assert!(
            v.witness.unwrap().summary.ends_with(
                "after handing it out 2 time(s) before (3 deliveries, 0 orderly pops no client saw, 0 revives); the effective maximum is 3"
            )
        );
    }

    #[test]
    fn a_dlq_write_without_a_decision_or_elsewhere_is_a_violation() {
        let mut h = H::orderly();
        let rs = failing(&mut h, 0, 1);
        let w = h.at(1_200).dlq_written(&rs[0], 0);
        let v = check(&h.build()).witness.unwrap();
        assert_eq!(v.events, vec![w]);
        assert_eq!(
            v.summary,
            "the broker stored m0 in %DLQ%og for group og, but no client of the group had decided to dead-letter it"
        );
        // Decided, but stored in another group's DLQ.
        let mut h = H::orderly();
        let rs = failing(&mut h, 0, 1);
        h.at(1_200).dlq(&rs[0]);
        let w = h.at(1_250).dlq_written(&rs[0], 0);
        if let EventKind::DlqWritten { dlq_topic, .. } = &mut h.events[w].kind {
            *dlq_topic = "%DLQ%billing".into();
        }
        assert_eq!(
            check(&h.build()).witness.unwrap().summary,
            "the broker stored m0 of group og in %DLQ%billing, not the group's DLQ %DLQ%og"
        );
    }

    #[test]
    fn a_dlq_write_of_another_message_than_the_one_decided_says_so() {
        // Develop-random seed 103 (F33's DLQ face): o1 decided to dead-letter m0, and the
        // send-back stored m9, the message at the commit log offset its handle named.
        let mut h = H::orderly();
        let rs = failing(&mut h, 0, 1);
        let d = h.at(1_200).dlq(&rs[0]);
        let mut other = rs[0].clone();
        other.msg_id = "m9".into();
        let w = h.at(1_250).dlq_written(&other, 0);
        let v = check(&h.build()).witness.unwrap();
        assert_eq!(v.events, vec![d, w]);
        assert!(
            v.summary.contains("; it was stored in place of m0, which o1 decided to dead-letter at 1.200s and of which no copy was stored"),
            "{}",
            v.summary
        );
        // A copy of the decided message stored in between: no such clause.
        let mut h = H::orderly();
        let rs = failing(&mut h, 0, 1);
        h.at(1_200).dlq(&rs[0]);
        h.at(1_210).dlq_written(&rs[0], 0);
        let w = h.at(1_250).dlq_written(&other, 1);
        let v = check(&h.build()).witness.unwrap();
        assert_eq!(v.events, vec![w]);
        assert!(!v.summary.contains("in place of"), "{}", v.summary);
    }

    #[test]
    fn delivered_again_after_dead_letter_and_ack_is_a_violation() {
        let mut h = H::new();
        h.consumer("c1", "g1", ConsumerKind::Concurrent, 0);
        h.at(0).produce("m0", 0, 0);
        let r = h.at(1_000).pop("c1", "m0", 0, 0);
        let d = h.at(1_100).dlq(&r);
        let a = h.at(1_200).ack(&r);
        let again = h.at(30_000).pop("c1", "m0", 0, 0);
        let w = check(&h.build()).witness.unwrap();
        assert_eq!(w.events, vec![r.idx, d, a, again.idx]);
        assert_eq!(
            w.summary,
            "m0 was dead-lettered for group g1 at 1.100s and acked at 1.200s, but the group got it again"
        );
    }

    #[test]
    fn a_failed_ack_after_the_forward_or_a_reset_excuses_a_redelivery() {
        // The ack after the forward got no answer: the copy's invisible time lapsed.
        let mut h = H::new();
        h.consumer("c1", "g1", ConsumerKind::Concurrent, 0);
        h.at(0).produce("m0", 0, 0);
        let r = h.at(1_000).pop("c1", "m0", 0, 0);
        h.at(1_100).dlq(&r);
        h.at(1_200).ack_sent(&r);
        h.at(4_200).ack_result(&r, RpcOutcome::Timeout);
        h.at(12_000).revive(&r, 0, 1);
        let again = h.at(13_000).pop_retry("c1", "m0", 0, 1);
        h.dlq(&again);
        assert_eq!(check(&h.build()), Verdict::held());

        // Acked, then the queue was reset to it.
        let mut h = H::new();
        h.consumer("c1", "g1", ConsumerKind::Concurrent, 0);
        h.at(0).produce("m0", 0, 0);
        let r = h.at(1_000).pop("c1", "m0", 0, 0);
        h.at(1_100).dlq(&r);
        h.at(1_200).ack(&r);
        h.at(5_000).reset("g1", 0, 0);
        h.at(6_000).pop("c1", "m0", 0, 0);
        assert_eq!(check(&h.build()), Verdict::held());
    }

    /// F28's shape: f1 (gRPC FIFO, 3 attempts) holds m0 under H0 (visible again at 61 s);
    /// the proxy renews it at 76 s (valid until 115 s); after three local attempts f1
    /// forwards H0 at 82 s; the send-back is stored at 85 s, and at `refused_at` the proxy
    /// refuses its ack after it, naming H0 (or the renewed handle: `refused_renewed`).
    /// Without `renew` nothing is renewed. Returns the history and the renewal's index.
    fn forwarded_after_renewal(
        renew: bool,
        refused_renewed: bool,
        refused_at: Millis,
    ) -> (H, Option<usize>) {
        forwarded_after_renewal_and(renew, refused_renewed, refused_at, |_, _| {})
    }

    /// [`forwarded_after_renewal`], with `between` run on the renewed receipt after the
    /// renewal and before the forward.
    fn forwarded_after_renewal_and(
        renew: bool,
        refused_renewed: bool,
        refused_at: Millis,
        between: impl FnOnce(&mut H, &Rcpt),
    ) -> (H, Option<usize>) {
        let mut h = H::grpc_fifo(&["f1"], "fg", 2);
        h.at(0).produce("m0", 0, 0);
        let r = h.at(1_000).pop("f1", "m0", 0, 0);
        for t in [1_000, 26_000, 51_000] {
            h.at(t).listener(&r);
            h.at(t + 24_000)
                .listener_done(&r, ConsumeOutcome::Failure, false);
        }
        let renewed = renew.then(|| h.at(76_000).proxy_renews(&r, 39_000));
        if let Some(n) = &renewed {
            between(&mut h, n);
        }
        h.at(82_000).dlq(&r);
        h.at(85_000).dlq_written(&r, 0);
        let named = match (&renewed, refused_renewed) {
            (Some(n), true) => n.clone(),
            _ => r.clone(),
        };
        h.at(refused_at).forward_ack_refused(&named);
        // The renewal's HandleRenewed follows its changeInvisibleTime.
        let renewal = renewed.map(|n| n.idx + 1);
        (h, renewal)
    }

    #[test]
    fn an_ack_the_proxy_refused_while_it_held_a_valid_handle_keeps_the_message_away() {
        // Develop (finding F28): the proxy refused H0 while its renewal was valid until
        // 115 s; the queue hands m0 out again at 120 s.
        let (mut h, renewal) = forwarded_after_renewal(true, false, 85_010);
        let again = h.at(120_000).pop("f1", "m0", 0, 0);
        let hist = h.build();
        let w = check(&hist).witness.expect("violated");
        assert!(w.events.contains(&renewal.unwrap()) && w.events.contains(&again.idx));
        assert!(
            w.summary.contains("the proxy refused its own ack after it")
                && w.summary.contains("valid until 115.000s"),
            "{}",
            w.summary
        );

        // No renewal: the proxy held nothing newer, the ack's refusal is at-least-once.
        let (mut h, ..) = forwarded_after_renewal(false, false, 85_010);
        h.at(120_000).pop("f1", "m0", 0, 0);
        assert_eq!(check(&h.build()), Verdict::held());
        // The refused handle is the renewed one itself (it had lapsed): nothing forgotten.
        let (mut h, ..) = forwarded_after_renewal(true, true, 85_010);
        h.at(120_000).pop("f1", "m0", 0, 0);
        assert_eq!(check(&h.build()), Verdict::held());
        // Refused after the renewed handle's deadline: it could not have been acked either.
        let (mut h, ..) = forwarded_after_renewal(true, false, 116_000);
        h.at(120_000).pop("f1", "m0", 0, 0);
        assert_eq!(check(&h.build()), Verdict::held());
        // A crash in between lets the message be read again.
        let (mut h, ..) = forwarded_after_renewal(true, false, 85_010);
        h.at(100_000).crash();
        h.at(101_000).restart();
        h.at(120_000).pop("f1", "m0", 0, 0);
        assert_eq!(check(&h.build()), Verdict::held());
        // Proxy-random 3957 (`--fix all`): a listener of another copy of m0 in the same
        // client was acked with the renewed handle (the proxy's table keys it by queue and
        // offset), which the proxy then dropped as it should; a crash rolled that ack's
        // commit back, and the forward's ack, with the expired original, was refused. The
        // proxy forgot nothing: the crash explains the comeback.
        let (mut h, ..) = forwarded_after_renewal_and(true, false, 85_010, |h, renewed| {
            h.at(78_000).proxy_ack(renewed);
            h.at(80_000).crash();
            h.at(81_000).restart();
        });
        h.at(120_000).pop("f1", "m0", 0, 0);
        assert_eq!(check(&h.build()), Verdict::held());
    }
}
