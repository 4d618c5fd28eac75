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
//!   `popTime + invisibleTime`, moved by a successful changeInvisibleTime; a new pop decided
//!   before that change was answered is judged by the deadline before it (the change may
//!   have reached the queue after the pop, and then left the new batch's OrderInfo alone).
//! - **Commit**: every broker `OffsetCommitted` for the queue must be ≤ the lowest un-acked
//!   offset of the outstanding batch. Commits made on purpose by a reset (reason containing
//!   "reset") or a client `UPDATE_CONSUMER_OFFSET` (reason containing "update") are exempt.
//!   When a later orderly read of the queue (`PopRead`) replaced the batch by right (the same
//!   attempt, or every entry acked or past its deadline when the read was decided), a commit
//!   up to the lowest offset of that read that no ack sent so far names by the read's
//!   `popTime` holds too: the broker's OrderInfo is the read's from then on
//!   (`ConsumerOrderInfoManager.update`, `commitAndNext` commits only for its popTime), and
//!   the proxy's table puts the read's handles into retried acks before any client records
//!   the pop.
//! - **One batch**: a new batch may start only when every entry of the outstanding one is
//!   acked or past its deadline when the broker decided it (the new pop's `PopRead`: its
//!   block check and offset come when the pop reaches the queue, after its `popTime`; the
//!   `popTime` when the history has no `PopRead`), unless it is the same attempt: equal
//!   `attempt_id`s, or the same consumer when the history does not record attempt ids.
//! - A pop whose messages the gRPC proxy's filter dead-lettered (`PopMessageResultFilterImpl`:
//!   reconsumeTimes ≥ maxAttempts, so `ProducerProcessor.forwardMessageToDeadLetterQueue`
//!   sends each back and then acks it) is a batch no client recorded: the proxy's ack of a
//!   message it forwarded (`SentToDlq` on a node other than the consumer's) names it by its
//!   handle (queue, `popTime`, offset), and joins that batch as an acked entry, placed at the
//!   pop's `PopRead` like a delivery.
//! - An entry retention deleted before the commit (`MessagesExpired` moved the queue's min
//!   offset past it) is not held: the pop's offset correction (`PopMessageProcessor`, the
//!   store's `nextBeginOffset` for an offset below its min) commits past what is gone.
//! - A consumed reset and a broker crash discard the outstanding batch (the reset clears the
//!   block on purpose; a crash may lose the un-flushed order info); so does a crash between
//!   a pop and its recorded delivery: a batch served before the latest crash is not one,
//!   nor is one served before its queue's latest consumed reset.

use super::index::{
    copy_key, dead_lettered_orderly_handle, is_success, proxy_dead_lettered, receipt_deadline,
    secs, witness_events, Facts, LookupMap, LookupSet, PopReads,
};
use super::{Affected, AffectedList, InvariantInfo, Verdict, Witness};
use crate::history::EventKind;
use broker_core::{BrokerEvent, ExtraInfo, Millis};
use std::collections::BTreeMap;

pub(crate) const INFO: InvariantInfo = InvariantInfo {
    name: "orderly-commit-safety",
    statement: "An orderly group's commit offset never passes an un-acked message of the outstanding batch, and at most one un-expired batch is outstanding per queue.",
};

struct Entry<'h> {
    msg_id: &'h str,
    delivery: usize,
    deadline: Millis,
    /// The latest successful changeInvisibleTime that moved `deadline`: when it was
    /// answered, and the deadline before it. (Only the latest: were two changes answered
    /// after one pop's decision, the pop would be judged by the first one's deadline. The
    /// proxy renews a handle every tens of seconds.)
    moved: Option<(Millis, Millis)>,
    ack_sent: bool,
    /// An ack of its handle sent before the delivery was recorded (the proxy's handle table
    /// put that handle into a client's retried ack): its event index.
    early_ack: Option<usize>,
}

impl Entry<'_> {
    /// The deadline the broker is known to have held at `t`. A change answered after `t` may
    /// have reached the queue after a pop decided at `t`, and then did not block it: the
    /// pop had taken the queue, and `ConsumerOrderInfoManager.updateNextVisibleTime` leaves
    /// an OrderInfo of another popTime alone.
    fn deadline_at(&self, t: Millis) -> Millis {
        match self.moved {
            Some((answered, before)) if answered > t => before,
            _ => self.deadline,
        }
    }
}

struct Batch<'h> {
    head: Head<'h>,
    entries: BTreeMap<u64, Entry<'h>>,
}

/// A batch as it started (its first hand-out): who popped it, and where and when the broker
/// read the queue for it. The queue's earlier heads are what a hand-out of an older pop,
/// recorded late, is judged against.
#[derive(Clone, Copy)]
struct Head<'h> {
    consumer: &'h str,
    pop_time: Millis,
    attempt_id: Option<&'h str>,
    /// Where its pop read the queue (the join's `after_from`).
    read: usize,
    decided: Millis,
    idx: usize,
}

/// Two pops by (consumer, attemptId) are the same attempt (by attemptId, else by consumer):
/// `OrderInfo.needBlock` lets the retry through.
fn same_attempt(a: (&str, Option<&str>), b: (&str, Option<&str>)) -> bool {
    match (a.1, b.1) {
        (Some(x), Some(y)) => x == y,
        _ => a.0 == b.0,
    }
}

impl Batch<'_> {
    /// The lowest entry not acked among those at or above `min`, the queue's min offset:
    /// what retention deleted is no longer the batch's to hold.
    fn lowest_unacked(&self, min: u64) -> Option<(&u64, &Entry<'_>)> {
        self.entries.range(min..).find(|(_, e)| !e.ack_sent)
    }
}

type QueueKey<'h> = (&'h str, &'h str, u32);

/// A handle's place in its queue: (group, topic, queue, popTime, offset).
type HandleAt<'h> = (&'h str, &'h str, u32, Millis, u64);

/// The broker's latest orderly read of a queue (`PopRead`): what its OrderInfo holds from
/// then on (`ConsumerOrderInfoManager.update`), whether or not a client recorded the pop.
#[derive(Clone, Copy)]
struct Read<'h> {
    idx: usize,
    at: Millis,
    pop_time: Millis,
    offset: u64,
    count: u32,
    attempt_id: Option<&'h str>,
}

impl Batch<'_> {
    /// Whether `r`, a read after this batch's, replaced it in the broker's OrderInfo by
    /// right: the same attempt, or every entry acked or past its deadline when `r` was
    /// decided (what the One-batch clause asks of a hand-out of `r`).
    fn replaced_by(&self, r: &Read) -> bool {
        if r.idx < self.head.read || r.pop_time == self.head.pop_time {
            return false;
        }
        let same = matches!((r.attempt_id, self.head.attempt_id), (Some(x), Some(y)) if x == y);
        same || (self.entries.values()).all(|x| x.ack_sent || x.deadline_at(r.at) <= r.at)
    }
}

/// The lowest offset at or above `min` of read `r` that no ack sent so far names by `r`'s
/// popTime (`commitAndNext` commits only for the OrderInfo's popTime); `None` when all are.
fn lowest_unacked_of_read(
    r: &Read,
    (group, topic, queue): QueueKey<'_>,
    acked: &LookupSet<HandleAt<'_>>,
    min: u64,
) -> Option<u64> {
    let end = r.offset + u64::from(r.count);
    (r.offset.max(min)..end).find(|o| !acked.contains(&(group, topic, queue, r.pop_time, *o)))
}

#[cfg(test)]
pub(crate) fn check(history: &crate::history::History) -> Verdict {
    check_with(&Facts::new(history))
}

/// One hand-out joining its queue's batches: a client's orderly delivery, or the pop behind
/// a proxy's ack of a message its filter dead-lettered out of that pop.
struct Join<'h> {
    consumer: &'h str,
    key: QueueKey<'h>,
    queue_offset: u64,
    pop_time: Millis,
    attempt_id: Option<&'h str>,
    entry: Entry<'h>,
    /// Events at this index or later happened after the pop.
    after_from: usize,
    /// When the broker decided the pop (its block check).
    decided: Millis,
    /// The event that joins (for the witness).
    idx: usize,
}

#[derive(Default)]
struct State<'h> {
    batches: LookupMap<QueueKey<'h>, Batch<'h>>,
    /// Every batch each queue started, in order.
    heads: LookupMap<QueueKey<'h>, Vec<Head<'h>>>,
    last_crash: Option<usize>,
    // The latest consumed reset of each queue, by event index.
    last_reset: LookupMap<QueueKey<'h>, usize>,
    found: Option<Witness>,
    count: usize,
    affected: AffectedList,
}

impl<'h> State<'h> {
    /// Adds the hand-out to its batch, or starts a new batch with it (checking that the
    /// outstanding one was done when the broker decided the new pop).
    fn join(&mut self, history: &crate::history::History, j: Join<'h>) {
        // A pop the broker served before the latest crash (its answer recorded after it)
        // belongs to a batch the crash discarded.
        if self.last_crash.is_some_and(|c| c >= j.after_from) {
            return;
        }
        // Likewise a pop served before a reset of its queue was consumed: the reset cleared
        // its block (`resetPopOffset`).
        if (self.last_reset.get(&j.key)).is_some_and(|r| *r >= j.after_from) {
            return;
        }
        if let Some(b) = self.batches.get_mut(&j.key) {
            let h = b.head;
            if h.consumer == j.consumer && h.pop_time == j.pop_time {
                b.entries.insert(j.queue_offset, j.entry);
                return;
            }
            if j.after_from < h.read {
                self.join_late(history, &j);
                return;
            }
            let same = same_attempt((h.consumer, h.attempt_id), (j.consumer, j.attempt_id));
            let live = b
                .entries
                .values()
                .find(|x| !x.ack_sent && x.deadline_at(j.decided) > j.decided)
                .map(|x| (x.msg_id, x.delivery, x.deadline_at(j.decided)));
            if let (false, Some(live)) = (same, live) {
                self.second_batch(history, j.key, j.decided, live, h.pop_time, j.idx);
            }
        }
        let head = Head {
            consumer: j.consumer,
            pop_time: j.pop_time,
            attempt_id: j.attempt_id,
            read: j.after_from,
            decided: j.decided,
            idx: j.idx,
        };
        let entries = BTreeMap::from([(j.queue_offset, j.entry)]);
        self.batches.insert(j.key, Batch { head, entries });
        self.heads.entry(j.key).or_default().push(head);
    }

    /// A hand-out of a pop that read the queue before the outstanding batch's did, recorded
    /// only now (the proxy acks what its filter dead-lettered once the send-back succeeded,
    /// after a later pop may have taken the queue). The reads since were decided without
    /// it: it is judged against the first batch read after it, which had to wait for it
    /// unless it was the same attempt (whose re-read replaces the OrderInfo,
    /// `ConsumerOrderInfoManager.update`). It was un-acked when that batch was decided (its
    /// ack, if any, is this event or later, unless the proxy's handle table put its handle
    /// into a retried ack before the hand-out was recorded).
    fn join_late(&mut self, history: &crate::history::History, j: &Join<'h>) {
        let heads = self
            .heads
            .get(&j.key)
            .map(Vec::as_slice)
            .unwrap_or_default();
        let next = (heads.iter()).find(|h| h.read > j.after_from && h.pop_time != j.pop_time);
        let Some(&next) = next else { return };
        // Its attempt as the batch's first hand-out recorded it: a consumer's latest
        // attempt may be a later receive's by now.
        let own = (heads.iter().rev())
            .find(|h| h.pop_time == j.pop_time && h.read <= j.after_from)
            .map_or((j.consumer, j.attempt_id), |h| (h.consumer, h.attempt_id));
        let same = same_attempt((next.consumer, next.attempt_id), own);
        // An ack of it sent before that batch's read let the broker move on.
        let acked_before = j.entry.early_ack.is_some_and(|a| a < next.read);
        let deadline = j.entry.deadline_at(next.decided);
        if !same && !acked_before && deadline > next.decided {
            let live = (j.entry.msg_id, j.entry.delivery, deadline);
            self.second_batch(history, j.key, next.decided, live, j.pop_time, next.idx);
        }
    }

    /// Records a second batch decided at `decided` while `live` (message, delivery,
    /// deadline) of the batch popped at `pop_time` was un-acked and invisible.
    fn second_batch(
        &mut self,
        history: &crate::history::History,
        (group, topic, queue_id): QueueKey<'h>,
        decided: Millis,
        (msg_id, delivery, deadline): (&str, usize, Millis),
        pop_time: Millis,
        idx: usize,
    ) {
        self.count += 1;
        self.affected.push(
            Affected::at("second-batch-while-invisible", history, delivery)
                .events(vec![delivery, idx]),
        );
        // Only the first is reported: format no other.
        if self.count == 1 {
            self.found = Some(Witness {
                msg_id: Some(msg_id.to_owned()),
                summary: format!(
                    "group {group} popped a second batch from queue {topic}/{queue_id} at {} while {msg_id} of the batch popped at {} was un-acked and invisible until {}",
                    secs(decided),
                    secs(pop_time),
                    secs(deadline)
                ),
                events: witness_events(vec![delivery, idx]),
            });
        }
    }
}

pub(crate) fn check_with(facts: &Facts) -> Verdict {
    let history = facts.h;
    let pops = facts.pops();
    let origins = facts.origins();
    let retention = facts.retention();
    let mut st = State::default();
    // (group, receipt) → (queue, popTime of its batch, offset).
    let mut receipts: LookupMap<(&str, &str), (QueueKey, Millis, u64)> = LookupMap::default();
    // (group, receipt) of acks sent before any delivery of that receipt was recorded.
    let mut early_acks: LookupMap<(&str, &str), usize> = LookupMap::default();
    // Where those acks' handles point: a pop the client has not recorded yet may already be
    // the broker's batch, and its acks commit.
    let mut early_handles: LookupSet<HandleAt> = LookupSet::default();
    // Each queue's latest orderly read.
    let mut newest_read: LookupMap<QueueKey, Read> = LookupMap::default();
    // (group, consumer, message) the proxy's filter dead-lettered and has not acked yet.
    // With the consumer's attempt when the filter decided (the proxy acks later, after the
    // consumer may have made other receives).
    let mut filtered: LookupMap<(&str, &str, &str), Option<&str>> = LookupMap::default();
    // The proxy's latest pop for a client: (consumer, group) → its attemptId.
    let mut attempts: LookupMap<(&str, &str), Option<&str>> = LookupMap::default();
    // The broker's reads, to place a dead-lettered handle's pop as a delivery's is.
    let mut reads = PopReads::default();
    let mut orderly = 0usize;

    for (idx, e) in history.events.iter().enumerate() {
        reads.note(idx, &e.kind);
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
                    moved: None,
                    ack_sent: early_acks.contains_key(&(group.as_str(), receipt.as_str())),
                    early_ack: early_acks.get(&(group.as_str(), receipt.as_str())).copied(),
                };
                st.join(
                    history,
                    Join {
                        consumer,
                        key,
                        queue_offset: *queue_offset,
                        pop_time: *pop_time,
                        attempt_id: attempt_id.as_deref(),
                        entry,
                        after_from: pops.of(idx).after_from,
                        decided: pops.decided_at(idx, *pop_time),
                        idx,
                    },
                );
            }
            EventKind::ProxyPopped {
                consumer,
                group,
                attempt_id,
                ..
            } => {
                attempts.insert((consumer, group), attempt_id.as_deref());
            }
            EventKind::SentToDlq { .. } => {
                if let Some(k @ (group, consumer, _)) = proxy_dead_lettered(e) {
                    let attempt = attempts.get(&(consumer, group)).copied().flatten();
                    filtered.insert(k, attempt);
                }
            }
            // The proxy acks what its filter dead-lettered (`PopMessageResultFilterImpl` →
            // `ProducerProcessor.forwardMessageToDeadLetterQueue`, an ack once the send-back
            // succeeded). No client recorded that pop, but it was the queue's newest batch:
            // the handle names it, and the ack is that entry's.
            EventKind::AckSent {
                consumer,
                group,
                msg_id,
                receipt,
            } if !receipts.contains_key(&(group.as_str(), receipt.as_str()))
                && filtered.contains_key(&(group.as_str(), consumer.as_str(), msg_id.as_str())) =>
            {
                let attempt_id = filtered
                    .remove(&(group.as_str(), consumer.as_str(), msg_id.as_str()))
                    .flatten();
                let Some((x, origin)) = dead_lettered_orderly_handle(receipt, msg_id, origins)
                else {
                    continue;
                };
                let key: QueueKey = (group, &origin.topic, x.queue_id);
                receipts.insert((group, receipt), (key, x.pop_time, x.queue_offset));
                // Placed at its read, as a delivery's pop is (`PopPositions`).
                let q = copy_key(&origin.topic, x.queue_id, 0);
                let start = Some(x.ck_queue_offset);
                let read = reads.find(group, q, x.pop_time, start, attempt_id);
                let (after_from, decided) = match read {
                    Some(r) => (r, history.events[r].at),
                    None => (
                        history.events[..idx].partition_point(|e| e.at < x.pop_time),
                        x.pop_time,
                    ),
                };
                st.join(
                    history,
                    Join {
                        consumer,
                        key,
                        queue_offset: x.queue_offset,
                        pop_time: x.pop_time,
                        attempt_id,
                        entry: Entry {
                            msg_id,
                            delivery: idx,
                            deadline: x.pop_time + x.invisible_time,
                            moved: None,
                            ack_sent: true,
                            early_ack: None,
                        },
                        after_from,
                        decided,
                        idx,
                    },
                );
            }
            EventKind::AckSent {
                group,
                msg_id,
                receipt,
                ..
            } => {
                let Some((key, pop_time, offset)) =
                    receipts.get(&(group.as_str(), receipt.as_str()))
                else {
                    // The proxy's handle table (`ReceiptHandleGroup.HandleKey`: broker, queue
                    // and offset, no popTime) may put the handle a new pop just registered
                    // into a retried ack of an old one, before the delivery is recorded.
                    early_acks.entry((group, receipt)).or_insert(idx);
                    let origin = origins.get(msg_id.as_str());
                    if let (Some(x), Some(o)) = (ExtraInfo::parse(receipt), origin) {
                        if o.queue == x.queue_id && o.offset == x.queue_offset {
                            let at = (group.as_str(), &*o.topic, x.queue_id, x.pop_time, o.offset);
                            early_handles.insert(at);
                        }
                    }
                    continue;
                };
                if let Some(b) = st
                    .batches
                    .get_mut(key)
                    .filter(|b| b.head.pop_time == *pop_time)
                {
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
                if let Some(b) = st
                    .batches
                    .get_mut(&key)
                    .filter(|b| b.head.pop_time == pop_time)
                {
                    if let Some(en) = b.entries.get_mut(&offset) {
                        en.moved = Some((e.at, en.deadline));
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
                let key = (group.as_str(), topic.as_str(), *queue_id);
                let Some(b) = st.batches.get(&key) else {
                    continue;
                };
                let min = retention.min_before(topic, *queue_id, idx);
                let Some((low, en)) = b.lowest_unacked(min) else {
                    continue;
                };
                // A later read replaced the batch by right, and acks of the new handles
                // (the proxy's table put them into retried acks) committed before any
                // client recorded that pop: the commit is judged against what it read.
                let newer = (newest_read.get(&key)).filter(|r| b.replaced_by(r));
                let within = newer.is_some_and(|r| {
                    lowest_unacked_of_read(r, key, &early_handles, min)
                        .is_none_or(|l| *offset <= l as i64)
                });
                if *offset > *low as i64 && !within {
                    st.count += 1;
                    st.affected.push(
                        Affected::at("committed-past-unacked", history, en.delivery)
                            .events(vec![en.delivery, idx]),
                    );
                    // Only the first is reported: format no other.
                    if st.count == 1 {
                        st.found = Some(Witness {
                            msg_id: Some(en.msg_id.to_owned()),
                            summary: format!(
                                "group {group}'s commit offset on queue {topic}/{queue_id} moved to {offset} at {} ({reason}) while offset {low} ({}) of the batch popped at {} was not acked",
                                secs(e.at),
                                en.msg_id,
                                secs(b.head.pop_time)
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
                st.batches.remove(&key);
                st.last_reset.insert(key, idx);
            }
            EventKind::Broker(BrokerEvent::Crashed { .. }) => {
                st.batches.clear();
                st.last_crash = Some(idx);
            }
            EventKind::Broker(BrokerEvent::PopRead {
                group,
                topic,
                queue_id,
                pop_time,
                offset,
                count,
                orderly: true,
                attempt_id,
                ..
            }) => {
                let read = Read {
                    idx,
                    at: e.at,
                    pop_time: *pop_time,
                    offset: *offset,
                    count: *count,
                    attempt_id: attempt_id.as_deref(),
                };
                newest_read.insert((group, topic, *queue_id), read);
            }
            _ => {}
        }
    }
    if orderly == 0 {
        return Verdict::not_applicable("no orderly delivery");
    }
    let count = st.count;
    Verdict::from_witness(st.found.map(|mut w| {
        if count > 1 {
            w.summary.push_str(&format!(" ({count} problems in all)"));
        }
        w
    }))
    .with_affected(st.affected)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::history::ConsumerKind;
    use crate::invariants::Status;
    use crate::testkit::H;
    use broker_core::{ExtraInfo, ReadFrom, POP_ORDER_REVIVE_QUEUE};

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

    /// Retention deleted the batch's un-acked head and the next pop's offset correction
    /// committed the queue's new min offset (the swarm with retention, seed 0): what is gone
    /// is not held. An un-acked entry retention left still is.
    #[test]
    fn a_commit_past_what_retention_deleted_holds() {
        let batch = |h: &mut H| {
            h.at(1_000)
                .pop_batch("o1", &[("m0", 0), ("m1", 1), ("m2", 2)], 0)
        };
        let mut h = H::orderly();
        let r = batch(&mut h);
        h.at(1_500).ack_sent(&r[1]);
        h.at(9_000).expired(0, 2);
        h.at(9_500)
            .commit("og", 0, 2, "PopMessageProcessor.offsetCorrection");
        assert_eq!(check(&h.build()), Verdict::held());

        let mut h = H::orderly();
        let r = batch(&mut h);
        h.at(1_500).ack_sent(&r[1]);
        h.at(9_000).expired(0, 2);
        let bad = h
            .at(9_500)
            .commit("og", 0, 3, "PopMessageProcessor.offsetCorrection");
        let v = check(&h.build());
        assert_eq!(v.status, Status::Violated);
        assert_eq!(v.witness.unwrap().events, vec![r[2].idx, bad]);

        // Deleted only after the commit: the head was still there.
        let mut h = H::orderly();
        let r = batch(&mut h);
        h.at(1_500).ack_sent(&r[1]);
        let bad = h
            .at(9_000)
            .commit("og", 0, 2, "PopMessageProcessor.offsetCorrection");
        h.at(9_500).expired(0, 2);
        let v = check(&h.build());
        assert_eq!(v.status, Status::Violated);
        assert_eq!(v.witness.unwrap().events, vec![r[0].idx, bad]);
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
    fn a_change_answered_after_the_next_pop_was_decided_does_not_block_it() {
        // Proxy-random seed 49403 (`--fix all`): the proxy's renewal of o2's batch (popTime
        // 25.018 s, visible again at 85.018 s) was answered SUCCESS at 85.037 s, after a pop
        // decided at 85.022 s had taken the queue; the renewal found an OrderInfo of another
        // popTime and moved nothing. Answered before the pop, the same change blocks it.
        let run = |renewed_at: Millis| {
            let mut h = H::orderly();
            h.consumer("o2", "og", ConsumerKind::Orderly, -1);
            let a = h.at(1_000).pop("o1", "m0", 0, 0); // invisible until 11.000s
            if renewed_at < 11_010 {
                h.at(renewed_at).proxy_renews(&a, 60_000);
            }
            h.at(11_010).pop_read(
                "og",
                0,
                11_010,
                0,
                1,
                true,
                broker_core::ReadFrom::CommitOffset,
            );
            if renewed_at >= 11_010 {
                h.at(renewed_at).proxy_renews(&a, 60_000);
            }
            h.at(11_040).pop_served_at("o2", "m0", 0, 0, 11_010);
            check(&h.build()).status
        };
        assert_eq!(run(11_025), Status::Held);
        assert_eq!(run(10_900), Status::Violated);
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
    fn a_commit_by_acks_of_a_read_no_client_recorded_yet_is_judged_against_that_read() {
        // proxy-random 326453: o1's batch (m0, m1) expired with m1 un-acked, a new receive
        // read 1..=2 (the broker's OrderInfo now holds its popTime), the proxy's table put
        // that pop's handle of m1 into o1's ack of its old one, and `commitAndNext` committed
        // 2, all before o1 recorded the new pop.
        let run = |read_at: Millis, acked: bool| {
            let mut h = H::orderly();
            for (m, off) in [("m0", 0), ("m1", 1), ("m2", 2)] {
                h.at(0).produce(m, 0, off);
            }
            let a = h.at(1_000).pop("o1", "m0", 0, 0);
            h.at(1_000).pop("o1", "m1", 0, 1);
            h.at(1_500).ack_sent(&a);
            h.at(1_500).commit("og", 0, 1, "ackOrderly");
            h.at(read_at)
                .pop_read("og", 0, read_at, 1, 2, true, ReadFrom::CommitOffset);
            let m1 = h.at(read_at).pop("o1", "m1", 0, 1);
            h.at(read_at).pop("o1", "m2", 0, 2);
            // Both deliveries (the last two events) are recorded after the ack and the commit.
            let delivered = h.events.split_off(m1.idx);
            if acked {
                h.at(read_at + 10).ack_sent(&m1);
            }
            h.at(read_at + 20).commit("og", 0, 2, "ackOrderly");
            h.events.extend(delivered);
            check(&h.build()).status
        };
        assert_eq!(run(20_000, true), Status::Held);
        // Without the new handle's ack, offset 1 of the new read is un-acked.
        assert_eq!(run(20_000, false), Status::Violated);
        // A read while m1 was still invisible did not replace the batch by right.
        assert_eq!(run(5_000, true), Status::Violated);
    }

    #[test]
    fn a_late_hand_out_acked_early_through_the_proxys_table_let_the_next_batch_in() {
        // develop-random 51367 (every fix): o1's pop read m0 at 1 s but its answer reached o1
        // only after o2's pop of the next offset; meanwhile o1's retried ack of an older
        // delivery of m0 took the handle that pop had registered in the proxy's table
        // (`ReceiptHandleGroup.HandleKey`: no popTime) and acked it, so the broker committed
        // past m0 before o2's read.
        let run = |early_ack: bool| {
            let mut h = H::orderly();
            h.consumer("o2", "og", ConsumerKind::Orderly, -1);
            h.at(1_000).pop_read(
                "og",
                0,
                1_000,
                0,
                1,
                true,
                broker_core::ReadFrom::CommitOffset,
            );
            if early_ack {
                let receipt = ExtraInfo {
                    ck_queue_offset: 0,
                    pop_time: 1_000,
                    invisible_time: 10_000,
                    revive_qid: POP_ORDER_REVIVE_QUEUE,
                    topic_type: 0,
                    broker_name: "broker-a".into(),
                    queue_id: 0,
                    queue_offset: 0,
                    commit_log_offset: None,
                }
                .build();
                h.at(2_000).push(
                    "proxy",
                    EventKind::AckSent {
                        consumer: "o1".into(),
                        group: "og".into(),
                        msg_id: "m0".into(),
                        receipt: receipt.into(),
                    },
                );
                h.at(2_010).commit("og", 0, 1, "ackOrderly");
            }
            h.at(3_000).pop_read(
                "og",
                0,
                3_000,
                1,
                1,
                true,
                broker_core::ReadFrom::CommitOffset,
            );
            h.at(3_010).pop_served_at("o2", "m1", 0, 1, 3_000);
            h.at(6_000).pop_served_at("o1", "m0", 0, 0, 1_000);
            check(&h.build()).status
        };
        assert_eq!(run(true), Status::Held);
        assert_eq!(
            run(false),
            Status::Violated,
            "m0 un-acked when o2's batch was decided"
        );
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

    /// Two pops of `group` that began at 1.023 s both read queue 0 from offset 0: attempt a1
    /// at once, attempt a2 at 1.124 s after a reset of the queue back to 0 (assigned at
    /// 1.103 s) was taken. Without `attempts` the reads carry no attemptId.
    fn two_reads_across_a_reset(h: &mut H, group: &str, attempts: bool) {
        let (a1, a2) = if attempts {
            (Some("a1"), Some("a2"))
        } else {
            (None, None)
        };
        h.at(1_023)
            .pop_read_of(a1, group, 0, (1_023, 0, 1), true, ReadFrom::InitOffset);
        h.at(1_103).reset(group, 0, 0);
        h.at(1_124).reset_consumed(group, 0, 0);
        h.at(1_124)
            .pop_read_of(a2, group, 0, (1_023, 0, 1), true, ReadFrom::PendingReset);
    }

    #[test]
    fn two_reads_of_one_offset_in_one_millisecond_are_told_apart_by_attempt() {
        // Develop-random seed 8448 (`--fix all`): two proxy pops of g-fifo began at 1.023 s.
        // o1's (attempt a1) read queue 13 from 0 at once; a reset of the queue to 0 was
        // assigned at 1.103 s; o2's (attempt a2) reached the queue at 1.124 s, took the
        // reset and read 0 again. o2's answer came first (1.305 s), o1's after (1.371 s).
        // Identical handles: only the attemptId tells which read each delivery came from.
        // o1's batch was read before the consumed reset, which discards it; o2's is the one
        // outstanding.
        let run = |attempts: bool| {
            let mut h = H::grpc_fifo(&["o1", "o2"], "og", -1);
            two_reads_across_a_reset(&mut h, "og", attempts);
            h.at(1_305)
                .pop_attempt_served_at("o2", "m0", 0, 0, "a2", 1_023);
            h.at(1_371)
                .pop_attempt_served_at("o1", "m0", 0, 0, "a1", 1_023);
            check(&h.build()).status
        };
        assert_eq!(run(true), Status::Held);
        // Without the attemptIds both deliveries are placed at the latest read, after the
        // reset: o1's looks like a second batch while o2's is outstanding.
        assert_eq!(run(false), Status::Violated);
    }

    #[test]
    fn a_dead_lettered_handle_is_placed_at_its_own_attempts_read() {
        // As above, but o1's copy of m0 never reached o1: the proxy's filter dead-lettered it
        // and acked the handle (f1 here). Its pop is placed as a delivery's is: at the read
        // its attempt made, before the consumed reset that discards that batch.
        let run = |attempts: bool| {
            let mut h = H::grpc_fifo(&["f1", "f2"], "fg", 2);
            h.at(0).produce("m0", 0, 0);
            two_reads_across_a_reset(&mut h, "fg", attempts);
            h.at(1_305)
                .pop_attempt_served_at("f2", "m0", 0, 0, "a2", 1_023);
            let popped = EventKind::ProxyPopped {
                consumer: "f1".into(),
                group: "fg".into(),
                topic: crate::testkit::T.into(),
                queue_id: -1,
                attempt_id: attempts.then(|| "a1".into()),
                found: 1,
                to_dlq: 1,
                outcome: crate::testkit::ok(),
            };
            h.at(1_370).push("proxy", popped);
            sent_to_dlq(&mut h, 1_371, "m0");
            dead_letter_ack(&mut h, 1_372, "m0", (1_023, 20_000), 0);
            check(&h.build()).status
        };
        assert_eq!(run(true), Status::Held);
        // Without the attemptIds the handle is placed at the latest read of offset 0, after
        // the reset: f1's batch looks like a second one while f2's is outstanding.
        assert_eq!(run(false), Status::Violated);
    }

    /// The proxy's filter forwards f1's `msg` of group fg to the DLQ at `at`.
    fn sent_to_dlq(h: &mut H, at: Millis, msg: &str) {
        h.at(at).proxy_dead_letters("f1", "fg", msg, 3);
    }

    /// The proxy's ack at `at` of f1's dead-lettered `msg` (queue 0 `offset`), by the handle
    /// of the orderly pop at (popTime, invisibleTime) `pop` that read from offset 0.
    fn dead_letter_ack(h: &mut H, at: Millis, msg: &str, pop: (Millis, Millis), offset: u64) {
        let receipt = ExtraInfo {
            ck_queue_offset: 0,
            pop_time: pop.0,
            invisible_time: pop.1,
            revive_qid: POP_ORDER_REVIVE_QUEUE,
            topic_type: 0,
            broker_name: "broker-a".into(),
            queue_id: 0,
            queue_offset: offset,
            commit_log_offset: Some(5),
        }
        .build();
        let ack = EventKind::AckSent {
            consumer: "f1".into(),
            group: "fg".into(),
            msg_id: msg.into(),
            receipt: receipt.into(),
        };
        h.at(at).push("proxy", ack);
    }

    #[test]
    fn the_proxys_ack_of_what_its_filter_dead_lettered_is_the_newest_batchs() {
        // develop-random with retryMaxTimes 2 (maxAttempts 3), seed 10: f1 got m0 (orders/3
        // offset 0) at reconsumeTimes 2 and never acked it. A later pop re-read it at
        // reconsumeTimes 3; the proxy's filter (`PopMessageResultFilterImpl`) forwarded it to
        // the DLQ and acked that pop's handle (`forwardMessageToDeadLetterQueue`), and the
        // commit moved to 1 (`ackOrderly`). No client recorded that pop: the handle names it.
        // `with_m1`: the re-read also got m1 (offset 1), handed out and not acked.
        let run = |decided: bool, with_m1: bool| {
            let mut h = H::grpc_fifo(&["f1"], "fg", 2);
            h.at(0).produce("m0", 0, 0);
            h.at(0).produce("m1", 0, 1);
            h.at(1_000).pop_batch("f1", &[("m0", 0)], 0); // invisible until 11.000s
            let t = 30_000;
            h.at(t).commit("fg", 0, 0, "PopMessageProcessor.orderly");
            let n = if with_m1 { 2 } else { 1 };
            h.at(t)
                .pop_read("fg", 0, t, 0, n, true, ReadFrom::CommitOffset);
            if decided {
                sent_to_dlq(&mut h, t + 4, "m0");
            }
            if with_m1 {
                h.at(t + 5).pop_of_batch_served_at("f1", "m1", 0, 1, 0, t);
            }
            dead_letter_ack(&mut h, t + 12, "m0", (t, 10_000), 0);
            let to = if with_m1 { 2 } else { 1 };
            h.at(t + 15).commit("fg", 0, to, "ackOrderly");
            check(&h.build())
        };
        assert_eq!(run(true, false), Verdict::held());
        // Without the filter's decision the ack is one of a handle no client recorded: it
        // names the read that replaced f1's expired batch, and acks that read's only entry
        // (the commit is judged against the read, as
        // `a_commit_by_acks_of_a_read_no_client_recorded_yet_is_judged_against_that_read`).
        assert_eq!(run(false, false), Verdict::held());
        // The dead-lettering pop is the outstanding batch: its un-acked m1 holds the commit.
        let v = run(true, true);
        assert_eq!(v.status, Status::Violated);
        assert_eq!(
            v.witness.unwrap().summary,
            "group fg's commit offset on queue TopicA/0 moved to 2 at 30.015s (ackOrderly) while offset 1 (m1) of the batch popped at 30.000s was not acked"
        );
    }

    #[test]
    fn a_late_dead_letter_ack_is_judged_against_the_read_after_its_pop() {
        // develop-random 83712 (`--fix all`): the proxy's filter dead-lettered a whole batch
        // of o2's attempt (read at 92.973 s) and acked it message by message until 93.096 s;
        // meanwhile the same attempt re-read the queue (93.002 s, which replaces the
        // OrderInfo) and o1 popped the next batch (93.072 s). The late acks were taken for a
        // new batch over o1's, and their attempt for o2's latest receive's.
        let run = |same_attempt_re_read: bool| {
            let mut h = H::grpc_fifo(&["f1", "f2"], "fg", 2);
            for o in 0..3 {
                h.at(0).produce(&format!("m{o}"), 0, o);
            }
            let t = 30_000;
            let popped = |h: &mut H, at: Millis, consumer: &str, attempt: &str| {
                let e = EventKind::ProxyPopped {
                    consumer: consumer.into(),
                    group: "fg".into(),
                    topic: crate::testkit::T.into(),
                    queue_id: -1,
                    attempt_id: Some(attempt.into()),
                    found: 1,
                    to_dlq: 0,
                    outcome: crate::testkit::ok(),
                };
                h.at(at).push("proxy", e);
            };
            // f1's attempt a reads m0 and m1; the filter dead-letters both.
            h.at(t).commit("fg", 0, 0, "PopMessageProcessor.orderly");
            h.at(t)
                .pop_read("fg", 0, t, 0, 2, true, ReadFrom::CommitOffset);
            popped(&mut h, t + 3, "f1", "a");
            for m in ["m0", "m1"] {
                sent_to_dlq(&mut h, t + 4, m);
            }
            // f1's next receive is another attempt: its latest, when the late ack comes.
            popped(&mut h, t + 5, "f1", "b");
            dead_letter_ack(&mut h, t + 6, "m0", (t, 60_000), 0);
            h.at(t + 7).commit("fg", 0, 1, "ackOrderly");
            if same_attempt_re_read {
                // Attempt a again (the proxy's retry) re-reads from 1: OrderInfo now holds m1 alone.
                h.at(t + 10)
                    .pop_read("fg", 0, t + 10, 1, 1, true, ReadFrom::CommitOffset);
                let r = h
                    .at(t + 12)
                    .pop_of_batch_served_at("f1", "m1", 0, 1, 1, t + 10);
                h.at(t + 13).ack(&r);
                h.at(t + 14).commit("fg", 0, 2, "ackOrderly");
            }
            // f2 pops the next batch.
            h.at(t + 20)
                .pop_read("fg", 0, t + 20, 2, 1, true, ReadFrom::CommitOffset);
            h.at(t + 22)
                .pop_of_batch_served_at("f2", "m2", 0, 2, 2, t + 20);
            // The proxy's ack of the dead-lettered m1 comes only now.
            dead_letter_ack(&mut h, t + 30, "m1", (t, 60_000), 1);
            check(&h.build())
        };
        let v = run(true);
        assert_ne!(v.status, Status::Violated, "{v:?}");
        // Without the re-read, f2's batch was decided while f1's m1 was un-acked.
        let v = run(false);
        assert_eq!(v.status, Status::Violated, "{v:?}");
        assert!(
            v.witness.unwrap().summary.contains("popped a second batch"),
            "second batch"
        );
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
