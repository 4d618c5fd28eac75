//! In a FIFO group, a queue's poppable head message is delivered, and a delivered head is acked, dead-lettered or delivered again, within one invisible time plus the client's retry budget.
//!
//! Liveness of orderly POP (`ConsumerOrderInfoManager`): one un-acked message blocks its
//! whole queue until its invisible time ends, so a head that is never popped again, or an
//! ack that never moves the commit offset, stops the queue for good. Targets an OrderInfo
//! block that never lapses, an orderly ack that is lost or ignored, and a read position that
//! never reaches the head.
//!
//! Semantics, per (group, topic, queue) of every group with an orderly consumer:
//! - The *head* is the group's commit offset as the broker holds it: its `OffsetCommitted`
//!   events (an orderly pop commits its batch start, `ackOrderly` the first un-acked offset),
//!   a reset that wrote offsetTable, and after a crash the image the last
//!   `OffsetsPersisted` wrote. Before any commit, the head is "wherever the first
//!   pop starts": any delivery out of the queue serves it.
//! - The head is *waiting* while a message at or past it is known to exist (a `Produced`
//!   event, or a delivery proves it), the broker runs, and a consumer of the group runs
//!   (`ConsumerStarted` / `ConsumerStopped`; a group whose consumers have neither counts as
//!   running throughout). Its clock restarts whenever the head moves, the head is delivered, its
//!   message is sent to a DLQ, the queue is reset (requested, assigned or taken by a pop), the
//!   broker restarts, or a consumer of the group starts. Time is the broker's: a delivery
//!   counts at its `popTime`, not when its answer reached the client
//!   ([`PopPositions`](super::index::PopPositions) does the same for the reset checks).
//! - It must stop waiting by `max(clock, block) + invisible + budget`: `block` is when the
//!   latest batch popped from the queue stops blocking it (its receipts' `popTime +
//!   invisibleTime`, moved by a changeInvisibleTime, and by one whose answer was lost up to
//!   when the caller gave up plus its invisible time, since `ChangeInvisibleTimeProcessor`
//!   moves the OrderInfo before it answers; a batch popped for a gRPC client that
//!   never received it shows only in the proxy's renewals of its handles, which the proxy
//!   keeps renewing while the client is online, and they move `block` all the same: only a
//!   receive with the lost one's attemptId gets past that block), `invisible` is the largest
//!   `popInvisibleTime` of the group's orderly consumers (the consumer may be busy with a
//!   batch from another queue until that batch's pop times out), and `budget` is
//!   [`RETRY_BUDGET_MS`] ([`GRPC_RETRY_BUDGET_MS`] for a group of gRPC FIFO consumers)
//!   plus the longest listener run the history shows for the group (the
//!   orderly client starts no listener once the pop has timed out, but one started just
//!   before runs to its end). A delivered head that is acked moves the head; one that is
//!   not comes back after its block, so the same bound covers both halves of the statement.
//! - Judged only after the run got quiet: from `quiet_from` in a run with random faults, and
//!   in any run from the last `Fault` event (scripted clogs, pauses, crashes and restarts
//!   heal there), since a lost pop answer or a paused client is at-least-once's business, not
//!   a stall. The witness names the queue, the offset, how long it waited, and what held it:
//!   a missing ack, an ack that did not move the commit offset, the OrderInfo block of the
//!   latest batch, or nothing the history shows (a queue lock or the read position).

use super::index::{is_success, receipt_deadline, secs, witness_events, LookupMap};
use super::{InvariantInfo, Verdict, Witness};
use crate::history::{ConsumerKind, EventKind, History, RpcOutcome};
use broker_core::{BrokerEvent, ExtraInfo, Millis, POP_ORDER_REVIVE_QUEUE};
use std::collections::{BTreeMap, BTreeSet};

pub(crate) const INFO: InvariantInfo = InvariantInfo {
    name: "fifo-progress",
    statement: "In a FIFO group, a queue's poppable head message is delivered, and a delivered head is acked, dead-lettered or delivered again, within one invisible time plus the client's retry budget.",
};

/// How long the orderly push consumer may go without a pop answer once the network is
/// whole, listener aside: a pop sent before the run got quiet whose request or answer was
/// lost keeps its loop waiting until the call times out (15 s, the long-polling bound
/// `BROKER_SUSPEND_MAX_TIME_MILLIS` the model's client uses as its pop timeout), and then it
/// pauses `pullTimeDelayMillsWhenException` (3 s) before it pops again. The loop is
/// sequential, so an ack waiting out its 3 s `ASYNC_TIMEOUT` cannot add to that, and after
/// the quiet period nothing else is lost.
pub(crate) const RETRY_BUDGET_MS: Millis = 18_000;

/// The same for the gRPC FIFO push consumer: a receive whose request or answer was lost
/// keeps its process queue waiting until the call's deadline, the long-polling timeout
/// plus the request timeout (20 s + 3 s, `ConsumerImpl.receiveMessage`), then it receives
/// again after `RECEIVING_FAILURE_BACKOFF_DELAY` (1 s, `ProcessQueueImpl`). A parked receive
/// is not woken by the orderly ack that unblocks the queue (the proxy pops every queue, and
/// `ackOrderly` notifies only the queue's own key), but it is answered within the same
/// 20 s. Acks retry every second until they succeed, which the quiet network allows at once.
pub(crate) const GRPC_RETRY_BUDGET_MS: Millis = 24_000;

/// (group, topic, queue).
type Key<'h> = (&'h str, &'h str, u32);

/// Something that changes a queue's obligation, at a broker time.
#[derive(Clone, Copy, Debug)]
enum Point<'h> {
    /// The commit offset is now this (`None`: no commit, e.g. restored to nothing).
    Head(Option<i64>),
    /// A reset of the queue was requested, assigned or taken.
    Reset,
    /// A message at this offset is known to exist.
    Exists(u64),
    /// A delivery of this offset that blocks the queue until `deadline`.
    Served {
        offset: u64,
        deadline: Millis,
    },
    /// A changeInvisibleTime moved a receipt of the queue to this deadline.
    Extend(Millis),
    /// The message at this offset was sent to a DLQ by the group.
    DeadLettered(u64),
    Down,
    Up,
    /// A consumer of the group started (`true`) or stopped.
    Running(bool, &'h str),
    /// Judging starts.
    Judge,
}

impl Point<'_> {
    /// Order among points at the same millisecond: state first, then deliveries, then
    /// availability, then the start of judging.
    fn rank(&self) -> u8 {
        match self {
            Point::Head(_) | Point::Reset => 0,
            Point::Exists(_) => 1,
            Point::Served { .. } | Point::Extend(_) | Point::DeadLettered(_) => 2,
            Point::Down | Point::Up | Point::Running(..) => 3,
            Point::Judge => 4,
        }
    }
}

/// What one group needs: its bound and its consumers.
struct GroupInfo<'h> {
    invisible: Millis,
    budget: Millis,
    topics: BTreeSet<&'h str>,
    consumers: BTreeSet<&'h str>,
    longest_listener: Millis,
}

impl GroupInfo<'_> {
    /// One invisible time plus the retry budget.
    fn bound(&self) -> Millis {
        self.invisible + self.budget + self.longest_listener
    }
}

/// The latest batch popped from a queue: its popTime and offset → delivery index.
#[derive(Clone, Debug, Default)]
struct Batch {
    pop_time: Millis,
    offsets: BTreeMap<u64, usize>,
}

/// A head that waited past its deadline, with what the queue looked like then.
struct Stall {
    head: Option<i64>,
    since: Millis,
    deadline: Millis,
    /// When it stopped waiting, and the event that ended it, if before the end.
    until: Option<(Millis, usize)>,
    armed_by: Option<usize>,
    /// The head's latest delivery before the deadline.
    last_delivery: Option<usize>,
    batch: Batch,
    block: Millis,
}

pub(crate) fn check(history: &History) -> Verdict {
    let meta = &history.meta;
    let mut groups: BTreeMap<&str, GroupInfo> = BTreeMap::new();
    for c in (meta.consumers.iter()).filter(|c| c.kind.is_fifo()) {
        let g = groups.entry(&c.group).or_insert_with(|| GroupInfo {
            invisible: 0,
            budget: 0,
            topics: BTreeSet::new(),
            consumers: BTreeSet::new(),
            longest_listener: 0,
        });
        g.invisible = g.invisible.max(c.pop_invisible_time);
        g.budget = g.budget.max(if c.kind == ConsumerKind::GrpcFifo {
            GRPC_RETRY_BUDGET_MS
        } else {
            RETRY_BUDGET_MS
        });
        g.topics.insert(&c.topic);
        g.consumers.insert(&c.name);
    }
    if groups.is_empty() {
        return Verdict::not_applicable("no FIFO (orderly) group");
    }
    let group_of: BTreeMap<&str, &str> = (meta.consumers.iter())
        .map(|c| (c.name.as_str(), c.group.as_str()))
        .collect();

    // Pass 1: the queues, the end of the faults, listener runs, the lifecycle.
    let mut last_fault: Option<Millis> = None;
    let mut queues: BTreeMap<&str, BTreeSet<u32>> = BTreeMap::new();
    let mut lifecycle_seen: BTreeSet<&str> = BTreeSet::new();
    let mut listening: BTreeMap<&str, Millis> = BTreeMap::new();
    for e in &history.events {
        match &e.kind {
            EventKind::Fault { .. } => last_fault = Some(e.at),
            EventKind::Produced {
                topic, queue_id, ..
            }
            | EventKind::Delivered {
                topic,
                queue_id,
                retry_topic: None,
                ..
            } => {
                queues.entry(topic).or_default().insert(*queue_id);
            }
            EventKind::ConsumerStarted { group, .. } | EventKind::ConsumerStopped { group, .. } => {
                lifecycle_seen.insert(group);
            }
            EventKind::ListenerStarted { consumer, .. } => {
                listening.insert(consumer, e.at);
            }
            EventKind::ListenerFinished { consumer, .. } => {
                let start = listening.remove(consumer.as_str());
                let group = group_of.get(consumer.as_str()).copied();
                if let (Some(start), Some(g)) = (start, group.and_then(|g| groups.get_mut(g))) {
                    g.longest_listener = g.longest_listener.max(e.at.saturating_sub(start));
                }
            }
            _ => {}
        }
    }
    for (topic, ranges) in &history.final_state.queues {
        for (q, r) in ranges.iter().enumerate() {
            if r.max > 0 {
                queues.entry(topic).or_default().insert(q as u32);
            }
        }
    }
    let judge_from = match (meta.faulty, last_fault) {
        (true, f) => meta.quiet_from.max(f.unwrap_or(0)),
        (false, f) => f.unwrap_or(0),
    };
    groups.retain(|_, g| judge_from + g.bound() <= meta.end_at);
    if groups.is_empty() {
        return Verdict::not_applicable(format!(
            "the run ended {} after it got quiet, less than one invisible time plus the retry budget",
            secs(meta.end_at.saturating_sub(judge_from)),
        ));
    }
    let mut keys: BTreeSet<Key> = BTreeSet::new();
    for (g, info) in &groups {
        for t in &info.topics {
            for q in queues.get(t).into_iter().flatten() {
                keys.insert((g, t, *q));
            }
        }
    }

    // Pass 2: every key's points, with the broker's commit offsets as they were.
    let mut points: BTreeMap<Key, Vec<(Millis, usize, Point)>> =
        keys.iter().map(|k| (*k, Vec::new())).collect();
    let mut table: BTreeMap<Key, i64> = BTreeMap::new();
    let mut persisted: BTreeMap<Key, i64> = BTreeMap::new();
    let mut msg_at: BTreeMap<(&str, u32, u64), &str> = BTreeMap::new();
    let mut origin: LookupMap<&str, (&str, u32, u64)> = LookupMap::default();
    // (group, receipt) → its queue, for changeInvisibleTime.
    let mut receipt_key: LookupMap<(&str, &str), Key> = LookupMap::default();
    // (group, receipt) → index of its first successful ack.
    let mut acked: LookupMap<(&str, &str), usize> = LookupMap::default();
    for (idx, e) in history.events.iter().enumerate() {
        let mut push = |k, at, p| {
            // Points outside the judged keys are dropped.
            if let Some(v) = points.get_mut(&k) {
                v.push((at, idx, p));
            }
        };
        match &e.kind {
            EventKind::Broker(BrokerEvent::OffsetCommitted {
                group,
                topic,
                queue_id,
                offset,
                ..
            }) => {
                let k: Key = (group, topic, *queue_id);
                table.insert(k, *offset);
                push(k, e.at, Point::Head(Some(*offset)));
            }
            EventKind::Broker(BrokerEvent::ResetAssigned {
                group,
                topic,
                queue_id,
                offset,
                wrote_offset_table,
                ..
            }) => {
                let k: Key = (group, topic, *queue_id);
                push(k, e.at, Point::Reset);
                if *wrote_offset_table {
                    table.insert(k, *offset);
                    push(k, e.at, Point::Head(Some(*offset)));
                }
            }
            EventKind::Broker(BrokerEvent::ResetConsumed {
                group,
                topic,
                queue_id,
                ..
            }) => push((group, topic, *queue_id), e.at, Point::Reset),
            EventKind::ResetRequested {
                group,
                topic,
                queue_id,
                ..
            } => {
                let all = *queue_id < 0;
                for k in keys
                    .iter()
                    .filter(|k| k.0 == group && k.1 == topic && (all || k.2 as i32 == *queue_id))
                {
                    push(*k, e.at, Point::Reset);
                }
            }
            EventKind::Broker(BrokerEvent::OffsetsPersisted { .. }) => {
                persisted = table.clone();
            }
            EventKind::Broker(BrokerEvent::Crashed { .. }) => {
                table = persisted.clone();
                for k in &keys {
                    push(*k, e.at, Point::Down);
                    push(*k, e.at, Point::Head(table.get(k).copied()));
                }
            }
            EventKind::Broker(BrokerEvent::Restarted { .. }) => {
                for k in &keys {
                    push(*k, e.at, Point::Up);
                }
            }
            EventKind::Produced {
                msg_id,
                topic,
                queue_id,
                queue_offset,
                ..
            } => {
                msg_at.insert((topic, *queue_id, *queue_offset), msg_id);
                origin.insert(msg_id, (topic, *queue_id, *queue_offset));
                for k in on_queue(&keys, topic, *queue_id) {
                    push(k, e.at, Point::Exists(*queue_offset));
                }
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
                receipt,
                ..
            } => {
                msg_at
                    .entry((topic, *queue_id, *queue_offset))
                    .or_insert(msg_id);
                origin
                    .entry(msg_id)
                    .or_insert((topic, *queue_id, *queue_offset));
                let k: Key = (group, topic, *queue_id);
                receipt_key.insert((group, receipt), k);
                // A delivery proves the message exists, for every group's head.
                for other in on_queue(&keys, topic, *queue_id) {
                    push(other, *pop_time, Point::Exists(*queue_offset));
                }
                let deadline = pop_time + invisible_time;
                let offset = *queue_offset;
                push(k, *pop_time, Point::Served { offset, deadline });
            }
            EventKind::ChangeInvisibleResult {
                group,
                msg_id,
                receipt,
                invisible_time,
                new_receipt: Some(new),
                outcome,
                ..
            } if is_success(outcome) => {
                let known = receipt_key
                    .get(&(group.as_str(), receipt.as_str()))
                    .copied();
                let mut k = known;
                if k.is_none() {
                    if let Some((key, pop_time, first)) =
                        undelivered_key(group, msg_id, receipt, &origin)
                    {
                        // The batch blocked the queue from its pop on, until its first
                        // handle's deadline.
                        push(key, pop_time, Point::Extend(first));
                        k = Some(key);
                    }
                }
                if let Some(k) = k {
                    receipt_key.insert((group, new), k);
                    let deadline = receipt_deadline(new, e.at + invisible_time);
                    push(k, e.at, Point::Extend(deadline));
                }
            }
            EventKind::ChangeInvisibleResult {
                group,
                msg_id,
                receipt,
                invisible_time,
                outcome: RpcOutcome::Timeout,
                ..
            } => {
                // The broker may have applied it (`updateNextVisibleTime` from its own now), at
                // the latest when the caller gave up. No new receipt is known.
                let mut k = receipt_key
                    .get(&(group.as_str(), receipt.as_str()))
                    .copied();
                if k.is_none() {
                    if let Some((key, pop_time, first)) =
                        undelivered_key(group, msg_id, receipt, &origin)
                    {
                        push(key, pop_time, Point::Extend(first));
                        k = Some(key);
                    }
                }
                if let Some(k) = k {
                    push(k, e.at, Point::Extend(e.at + invisible_time));
                }
            }
            EventKind::AckResult {
                group,
                receipt,
                outcome,
                ..
            } if is_success(outcome) => {
                acked.entry((group, receipt)).or_insert(idx);
            }
            EventKind::SentToDlq { group, msg_id, .. } => {
                if let Some((t, q, o)) = origin.get(msg_id.as_str()).copied() {
                    push((group, t, q), e.at, Point::DeadLettered(o));
                }
            }
            EventKind::ConsumerStarted { consumer, group }
            | EventKind::ConsumerStopped { consumer, group } => {
                let on = matches!(e.kind, EventKind::ConsumerStarted { .. });
                let member = (groups.get(group.as_str()))
                    .is_some_and(|g| g.consumers.contains(consumer.as_str()));
                if member {
                    for k in keys.iter().filter(|k| k.0 == group) {
                        push(*k, e.at, Point::Running(on, consumer));
                    }
                }
            }
            _ => {}
        }
    }

    let mut judged = 0usize;
    let mut stalls: Vec<(Key, Stall)> = Vec::new();
    for (key, mut pts) in points {
        let g = &groups[key.0];
        pts.push((judge_from, usize::MAX, Point::Judge));
        pts.sort_by_key(|(at, idx, p)| (*at, p.rank(), *idx));
        let mut q = Walk {
            bound: g.bound(),
            always_running: !lifecycle_seen.contains(key.0),
            ..Walk::default()
        };
        for (at, idx, p) in pts {
            q.check(at);
            q.apply(at, idx, p);
        }
        q.check(meta.end_at);
        q.close(meta.end_at, None, false);
        judged += q.judged;
        stalls.extend(q.stalls.into_iter().map(|s| (key, s)));
    }
    if judged == 0 && stalls.is_empty() {
        return Verdict::not_applicable(
            "no FIFO queue had a message waiting after the run got quiet",
        );
    }
    stalls.sort_by_key(|(_, s)| (s.since, s.armed_by));
    let count = stalls.len();
    Verdict::from_witness(stalls.into_iter().next().map(|(key, s)| {
        let (cause, cause_events) = explain(history, key, &s, &acked);
        let head = s
            .head
            .map_or_else(|| "its first message".to_owned(), |h| format!("offset {h}"));
        let waited = match s.until {
            Some((u, _)) => format!("served only at {}, {} later", secs(u), secs(u - s.since)),
            None => format!(
                "still waiting when the run ended at {}, {} later",
                secs(meta.end_at),
                secs(meta.end_at - s.since)
            ),
        };
        let mut events: Vec<usize> = s.armed_by.into_iter().collect();
        events.extend(s.until.map(|u| u.1));
        events.extend(cause_events);
        let mut summary = format!(
            "group {}'s FIFO queue {}/{}: head {head} was waiting from {} and was {waited} (due by {}); held by {cause}",
            key.0,
            key.1,
            key.2,
            secs(s.since),
            secs(s.deadline),
        );
        if count > 1 {
            summary.push_str(&format!(" ({count} stalls in all)"));
        }
        Witness {
            msg_id: s
                .head
                .and_then(|h| msg_at.get(&(key.1, key.2, h as u64)))
                .map(|m| (*m).to_owned()),
            summary,
            events: witness_events(events),
        }
    }))
}

/// One queue's walk through its points, in time order.
#[derive(Default)]
struct Walk<'h> {
    bound: Millis,
    head: Option<i64>,
    /// Highest offset known to exist.
    exists: Option<u64>,
    down: bool,
    running: BTreeSet<&'h str>,
    always_running: bool,
    judging: bool,
    /// The waiting head's clock and the event that started it.
    since: Option<(Millis, Option<usize>)>,
    /// When the latest batch stops blocking the queue.
    block: Millis,
    batch: Batch,
    /// The latest delivery of each offset.
    last_served: BTreeMap<u64, usize>,
    /// Something was delivered since the head was last unknown (then the pop committed its
    /// start, so a head still unknown means the history lacks the commits).
    served_unknown: bool,
    judged: usize,
    open: Option<Stall>,
    stalls: Vec<Stall>,
}

impl<'h> Walk<'h> {
    fn waiting(&self) -> bool {
        let work = match (self.exists, self.head) {
            (Some(max), Some(h)) => max as i64 >= h,
            (Some(_), None) => !self.served_unknown,
            (None, _) => false,
        };
        work && !self.down && (self.always_running || !self.running.is_empty())
    }

    /// Before a point at `at`: has the waiting head passed its deadline?
    fn check(&mut self, at: Millis) {
        let Some((since, armed_by)) = self.since else {
            return;
        };
        let deadline = since.max(self.block) + self.bound;
        if self.judging && at > deadline && self.open.is_none() {
            self.open = Some(Stall {
                head: self.head,
                since,
                deadline,
                until: None,
                armed_by,
                last_delivery: (self.head).and_then(|h| self.last_served.get(&(h as u64)).copied()),
                batch: self.batch.clone(),
                block: self.block,
            });
        }
    }

    /// The head stopped waiting at `at` (served, if `progress`): close its clock.
    fn close(&mut self, at: Millis, by: Option<usize>, progress: bool) {
        if self.since.take().is_some() && self.judging && progress {
            self.judged += 1;
        }
        if let Some(mut s) = self.open.take() {
            s.until = by.map(|i| (at, i));
            self.stalls.push(s);
        }
    }

    fn apply(&mut self, at: Millis, idx: usize, p: Point<'h>) {
        let by = (idx != usize::MAX).then_some(idx);
        match p {
            Point::Head(h) => {
                if h != self.head {
                    self.close(at, by, true);
                    self.head = h;
                    self.served_unknown = false;
                }
            }
            Point::Reset => self.close(at, by, false),
            Point::Exists(o) => self.exists = Some(self.exists.map_or(o, |m| m.max(o))),
            Point::Served { offset, deadline } => {
                if at > self.batch.pop_time || self.batch.offsets.is_empty() {
                    self.batch = Batch {
                        pop_time: at,
                        offsets: BTreeMap::new(),
                    };
                    self.block = deadline;
                }
                self.batch.offsets.insert(offset, idx);
                self.block = self.block.max(deadline);
                self.last_served.insert(offset, idx);
                self.served_unknown |= self.head.is_none();
                if self.head.is_none_or(|h| h == offset as i64) {
                    self.close(at, by, true);
                }
            }
            Point::Extend(deadline) => self.block = self.block.max(deadline),
            Point::DeadLettered(o) => {
                if self.head == Some(o as i64) {
                    self.close(at, by, true);
                }
            }
            Point::Down | Point::Up => {
                self.down = matches!(p, Point::Down);
                self.close(at, by, false);
            }
            Point::Running(on, consumer) => {
                if on {
                    self.running.insert(consumer);
                } else {
                    self.running.remove(consumer);
                }
                self.close(at, by, false);
            }
            Point::Judge => {
                self.judging = true;
                self.close(at, by, false);
            }
        }
        if !self.waiting() {
            self.close(at, by, false);
        } else if self.since.is_none() {
            self.since = Some((at, by));
        }
    }
}

/// What held a stalled head, and the events that show it.
fn explain(
    history: &History,
    key: Key,
    s: &Stall,
    acked: &LookupMap<(&str, &str), usize>,
) -> (String, Vec<usize>) {
    if let Some(d) = s.last_delivery {
        if let EventKind::Delivered {
            consumer,
            receipt,
            pop_time,
            invisible_time,
            ..
        } = &history.events[d].kind
        {
            return match acked.get(&(key.0, receipt.as_str())) {
                Some(a) => (
                    format!(
                        "an ack that did not move the commit offset: its delivery to {consumer} popped at {} was acked at {}",
                        secs(*pop_time),
                        secs(history.events[*a].at)
                    ),
                    vec![d, *a],
                ),
                None => (
                    format!(
                        "a missing ack: its delivery to {consumer} popped at {} (invisible until {}) was neither acked nor dead-lettered, and no pop delivered it again",
                        secs(*pop_time),
                        secs(pop_time + invisible_time)
                    ),
                    vec![d],
                ),
            };
        }
    }
    // Entries of the latest batch whose delivery no successful ack answered by the deadline.
    let unacked: Vec<(u64, usize)> = (s.batch.offsets.iter())
        .filter(|(_, d)| match &history.events[**d].kind {
            EventKind::Delivered { receipt, .. } => acked
                .get(&(key.0, receipt.as_str()))
                .is_none_or(|a| history.events[*a].at > s.deadline),
            _ => false,
        })
        .map(|(o, d)| (*o, *d))
        .collect();
    if s.block > s.since && !unacked.is_empty() {
        let offsets: Vec<String> = unacked.iter().map(|(o, _)| o.to_string()).collect();
        return (
            format!(
                "the OrderInfo block of the batch popped at {} (un-acked offsets {}) until {}, and no pop delivered the head after it lapsed",
                secs(s.batch.pop_time),
                offsets.join(", "),
                secs(s.block)
            ),
            unacked.iter().map(|(_, d)| *d).collect(),
        );
    }
    (
        "nothing the history shows: no un-acked delivery of it and no batch blocking the queue (a queue lock or the read position)".to_owned(),
        Vec::new(),
    )
}

/// The queue of an orderly receipt no delivery showed: a batch popped for a client that
/// never received it (a gRPC receive whose answer was lost), whose handles the proxy added
/// before writing the answer (`ReceiveMessageActivity.receiveMessage`) and renews while the
/// client is online (`DefaultReceiptHandleManager.scheduleRenewTask`). The receipt names
/// its queue and offset; the message's origin names the topic, and must agree. With the
/// batch's popTime and the receipt's deadline (`popTime + invisibleTime`).
fn undelivered_key<'h>(
    group: &'h str,
    msg_id: &str,
    receipt: &str,
    origin: &LookupMap<&'h str, (&'h str, u32, u64)>,
) -> Option<(Key<'h>, Millis, Millis)> {
    let info = ExtraInfo::parse(receipt)?;
    let (topic, queue, offset) = origin.get(msg_id).copied()?;
    let orderly = info.revive_qid == POP_ORDER_REVIVE_QUEUE && info.topic_type == 0;
    (orderly && info.queue_id == queue && info.queue_offset == offset).then_some((
        (group, topic, queue),
        info.pop_time,
        info.pop_time + info.invisible_time,
    ))
}

/// The judged keys on one queue of a topic (every group's).
fn on_queue<'h>(keys: &BTreeSet<Key<'h>>, topic: &str, q: u32) -> Vec<Key<'h>> {
    keys.iter()
        .filter(|k| k.1 == topic && k.2 == q)
        .copied()
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::history::RpcOutcome;
    use crate::invariants::Status;
    use crate::testkit::{Rcpt, H};
    use broker_core::ReadFrom;

    /// An orderly consumer running from 0 and `n` messages on queue 0.
    fn fifo(n: u64) -> H {
        let mut h = H::orderly();
        h.end(0, 60_000);
        h.at(0).started("o1");
        for o in 0..n {
            h.at(o * 10).produce(&format!("m{o}"), 0, o);
        }
        h
    }

    /// Acks `r` and the broker commits the next offset, as `ackOrderly` does.
    fn ack(h: &mut H, r: &Rcpt) -> usize {
        let a = h.ack(r);
        h.commit("og", 0, r.queue_offset as i64 + 1, "ackOrderly");
        a
    }

    fn pop(h: &mut H, t: Millis, offs: std::ops::Range<u64>) -> Vec<Rcpt> {
        let msgs: Vec<(String, u64)> = offs.map(|o| (format!("m{o}"), o)).collect();
        let msgs: Vec<(&str, u64)> = msgs.iter().map(|(m, o)| (m.as_str(), *o)).collect();
        h.at(t).pop_batch("o1", &msgs, 0)
    }

    #[test]
    fn a_queue_that_keeps_moving_holds() {
        let mut h = fifo(3);
        for (i, r) in pop(&mut h, 1_000, 0..3).iter().enumerate() {
            h.at(1_100 + i as Millis * 10);
            ack(&mut h, r);
        }
        h.at(5_000).produce("m3", 0, 3);
        let r = pop(&mut h, 5_200, 3..4);
        h.at(5_300);
        ack(&mut h, &r[0]);
        assert_eq!(check(&h.build()), Verdict::held());
    }

    #[test]
    fn a_head_neither_acked_nor_delivered_again_is_a_violation() {
        // Bound: invisible 10 s + budget 18 s; the block of the pop at 1 s lapses at 11 s.
        let mut h = fifo(1);
        let d = pop(&mut h, 1_000, 0..1);
        let v = check(&h.build());
        assert_eq!(v.status, Status::Violated);
        let w = v.witness.unwrap();
        assert_eq!(w.msg_id.as_deref(), Some("m0"));
        assert_eq!(w.events, vec![d[0].idx]);
        assert_eq!(
            w.summary,
            "group og's FIFO queue TopicA/0: head offset 0 was waiting from 1.000s and was still waiting when the run ended at 60.000s, 59.000s later (due by 39.000s); held by a missing ack: its delivery to o1 popped at 1.000s (invisible until 11.000s) was neither acked nor dead-lettered, and no pop delivered it again"
        );

        // Delivered again within the bound, then acked: held.
        let mut h = fifo(1);
        pop(&mut h, 1_000, 0..1);
        let again = pop(&mut h, 20_000, 0..1);
        h.at(20_100);
        ack(&mut h, &again[0]);
        assert_eq!(check(&h.build()), Verdict::held());

        // Delivered again, but only after the bound.
        let mut h = fifo(1);
        let first = pop(&mut h, 1_000, 0..1);
        let late = pop(&mut h, 45_000, 0..1);
        h.at(45_100);
        ack(&mut h, &late[0]);
        let w = check(&h.build()).witness.unwrap();
        assert_eq!(w.events, vec![first[0].idx, late[0].idx]);
        assert!(
            w.summary
                .contains("was served only at 45.000s, 44.000s later (due by 39.000s)"),
            "{}",
            w.summary
        );
    }

    #[test]
    fn time_is_the_broker_pop_not_the_client_receipt() {
        // The redelivery was served at `served` and its answer reached o1 at 50 s.
        let redelivered = |served: Millis| {
            let mut h = fifo(1);
            pop(&mut h, 1_000, 0..1);
            let r = h.at(50_000).pop_served_at("o1", "m0", 0, 0, served);
            h.at(50_100);
            ack(&mut h, &r);
            check(&h.build()).status
        };
        assert_eq!(redelivered(38_000), Status::Held);
        assert_eq!(redelivered(40_000), Status::Violated);
    }

    #[test]
    fn a_pop_lost_before_the_quiet_period_may_hold_the_client_until_its_timeout() {
        // Chaos seed 25: the pop o1 sent before the run got quiet at 60 s got no answer; its
        // loop waited out the 15 s pop timeout and the 3 s pause after a failed pop, and
        // popped the head again at 77.811s. Due by 60.415 + 10 + 18 = 88.415s.
        let redelivered = |at: Millis| {
            let mut h = fifo(1);
            h.faulty();
            h.end(60_000, 120_000);
            pop(&mut h, 50_415, 0..1);
            let r = pop(&mut h, at, 0..1);
            h.at(at + 100);
            ack(&mut h, &r[0]);
            check(&h.build()).status
        };
        assert_eq!(redelivered(77_811), Status::Held);
        assert_eq!(redelivered(89_000), Status::Violated);
    }

    #[test]
    fn a_grpc_fifo_group_is_judged_with_the_grpc_budget() {
        // The same lost-answer case for a gRPC FIFO push consumer (invisible 10 s here): its
        // receive waits out 20 s + 3 s, then 1 s: due by 60.415 + 10 + 24 = 94.415s.
        let redelivered = |at: Millis| {
            let mut h = fifo(1);
            h.consumer("o1", "og", ConsumerKind::GrpcFifo, -1);
            h.faulty();
            h.end(60_000, 120_000);
            pop(&mut h, 50_415, 0..1);
            let r = pop(&mut h, at, 0..1);
            h.at(at + 100);
            ack(&mut h, &r[0]);
            check(&h.build()).status
        };
        assert_eq!(
            redelivered(89_000),
            Status::Held,
            "past the remoting budget"
        );
        assert_eq!(redelivered(95_000), Status::Violated);
        // A group whose only consumer is a gRPC push (non-FIFO) consumer is not judged.
        let mut h = fifo(1);
        h.consumer("o1", "og", ConsumerKind::GrpcPush, -1);
        pop(&mut h, 1_000, 0..1);
        assert!(matches!(
            check(&h.build()).status,
            Status::NotApplicable { .. }
        ));
    }

    #[test]
    fn the_proxy_renewing_a_batch_no_client_received_blocks_the_queue() {
        // o1 (gRPC FIFO) acks offset 0; the broker pops offset 1 for it at 20 s (invisible
        // 60 s), but the answer is lost. The proxy holds the handle and renews it at 70 s for
        // a minute: the OrderInfo blocks the queue for every other attemptId until 130 s, so
        // offset 1 delivered at 150 s is in time (due by 130 + 10 + 24 s).
        let run = |renew: bool| {
            let mut h = fifo(2);
            h.consumer("o1", "og", ConsumerKind::GrpcFifo, -1);
            h.faulty();
            h.end(30_000, 240_000);
            let d = pop(&mut h, 1_000, 0..1);
            h.at(1_100);
            ack(&mut h, &d[0]);
            h.at(20_000).commit("og", 0, 1, "PopConsumerService");
            h.pop_read("og", 0, 20_000, 1, 1, true, ReadFrom::CommitOffset);
            let mut info = ExtraInfo {
                ck_queue_offset: 1,
                pop_time: 20_000,
                invisible_time: 60_000,
                revive_qid: POP_ORDER_REVIVE_QUEUE,
                topic_type: 0,
                broker_name: "broker-a".into(),
                queue_id: 0,
                queue_offset: 1,
                commit_log_offset: Some(1),
            };
            let receipt = info.build();
            info.invisible_time = 130_000 - info.pop_time;
            if renew {
                h.at(70_000).push(
                    "proxy",
                    EventKind::ChangeInvisibleResult {
                        consumer: "o1".into(),
                        group: "og".into(),
                        msg_id: "m1".into(),
                        receipt: receipt.into(),
                        invisible_time: 60_000,
                        new_receipt: Some(info.build().into()),
                        outcome: crate::testkit::ok(),
                    },
                );
            }
            let r = pop(&mut h, 150_000, 1..2);
            h.at(150_100);
            ack(&mut h, &r[0]);
            check(&h.build()).status
        };
        assert_eq!(run(true), Status::Held);
        assert_eq!(
            run(false),
            Status::Violated,
            "without the renewal nothing shows the batch: due by 64 s"
        );
    }

    #[test]
    fn a_renewal_whose_answer_was_lost_may_have_moved_the_block() {
        // o1 (gRPC FIFO) got offset 0 popped at 1 s (invisible 10 s). The proxy renewed its
        // handle at 8 s for 3 minutes; no answer came by 11 s, but the broker may have moved
        // the OrderInfo to 191 s at most, so offset 0 delivered again at 220 s is in time
        // (due by 191 + 10 + 24 s). A renewal answered with an error moved nothing: due by
        // 11 + 10 + 24 s. Nor does a lost one excuse a wait past its own bound.
        let run = |outcome: Option<RpcOutcome>, again: Millis| {
            let mut h = fifo(1);
            h.consumer("o1", "og", ConsumerKind::GrpcFifo, -1);
            h.end(0, 300_000);
            let d = pop(&mut h, 1_000, 0..1);
            if let Some(outcome) = outcome {
                h.at(11_000).push(
                    "proxy",
                    EventKind::ChangeInvisibleResult {
                        consumer: "o1".into(),
                        group: "og".into(),
                        msg_id: "m0".into(),
                        receipt: d[0].receipt.clone().into(),
                        invisible_time: 180_000,
                        new_receipt: None,
                        outcome,
                    },
                );
            }
            let r = pop(&mut h, again, 0..1);
            h.at(again + 100);
            ack(&mut h, &r[0]);
            check(&h.build()).status
        };
        assert_eq!(run(Some(RpcOutcome::Timeout), 220_000), Status::Held);
        assert_eq!(
            run(Some(RpcOutcome::Timeout), 230_000),
            Status::Violated,
            "past 191 + 34 s"
        );
        let refused = crate::testkit::answered(broker_core::ResponseCode::SystemError, "");
        assert_eq!(run(Some(refused), 220_000), Status::Violated);
        assert_eq!(run(None, 220_000), Status::Violated);
    }

    #[test]
    fn an_ack_that_does_not_move_the_commit_offset_is_named() {
        let mut h = fifo(1);
        let d = pop(&mut h, 1_000, 0..1);
        let a = h.at(1_100).ack(&d[0]);
        let w = check(&h.build()).witness.unwrap();
        assert_eq!(w.events, vec![d[0].idx, a]);
        assert!(
            w.summary.ends_with("held by an ack that did not move the commit offset: its delivery to o1 popped at 1.000s was acked at 1.100s"),
            "{}",
            w.summary
        );
    }

    #[test]
    fn a_poppable_head_nobody_pops_is_a_violation() {
        let mut h = fifo(1);
        let d = pop(&mut h, 1_000, 0..1);
        h.at(1_100);
        ack(&mut h, &d[0]);
        let produced = h.at(2_000).produce("m1", 0, 1);
        let w = check(&h.build()).witness.unwrap();
        assert_eq!(w.msg_id.as_deref(), Some("m1"));
        assert_eq!(w.events, vec![produced]);
        assert_eq!(
            w.summary,
            "group og's FIFO queue TopicA/0: head offset 1 was waiting from 2.000s and was still waiting when the run ended at 60.000s, 58.000s later (due by 39.000s); held by nothing the history shows: no un-acked delivery of it and no batch blocking the queue (a queue lock or the read position)"
        );
    }

    #[test]
    fn the_block_of_an_unacked_batch_is_named() {
        // An offset update moved the commit offset past a batch nobody acked; the batch's
        // OrderInfo still blocks the queue, and after it lapses nothing pops offset 5.
        let mut h = fifo(6);
        let batch = pop(&mut h, 500, 0..2);
        h.at(1_000).commit("og", 0, 5, "updateConsumerOffset");
        let w = check(&h.build()).witness.unwrap();
        assert!(
            w.summary.ends_with("held by the OrderInfo block of the batch popped at 0.500s (un-acked offsets 0, 1) until 10.500s, and no pop delivered the head after it lapsed"),
            "{}",
            w.summary
        );
        assert!(w.events.contains(&batch[0].idx) && w.events.contains(&batch[1].idx));
    }

    #[test]
    fn no_consumer_a_down_broker_or_a_reset_excuse_the_wait() {
        let stalled = |h: &mut H| {
            pop(h, 1_000, 0..1);
        };
        let mut h = fifo(1);
        stalled(&mut h);
        h.at(2_000).stopped("o1");
        assert_eq!(check(&h.build()), Verdict::held());

        let mut h = fifo(1);
        stalled(&mut h);
        h.at(2_000).crash();
        assert_eq!(check(&h.build()), Verdict::held());

        // A reset restarts the clock; the run ends before the new deadline.
        let mut h = fifo(1);
        stalled(&mut h);
        h.at(20_000).reset("og", 0, 0);
        h.end(0, 30_000);
        assert_eq!(check(&h.build()), Verdict::held());
        // But a stall after the reset is still one.
        h.end(0, 60_000);
        assert_eq!(check(&h.build()).status, Status::Violated);

        // A restart (and a consumer start) restart it too.
        let mut h = fifo(1);
        stalled(&mut h);
        h.at(2_000).crash();
        h.at(3_000).restart();
        assert_eq!(check(&h.build()).status, Status::Violated);
        h.end(0, 35_000);
        assert_eq!(check(&h.build()), Verdict::held());
    }

    #[test]
    fn only_the_quiet_part_of_a_faulty_run_is_judged() {
        let mut h = fifo(2);
        h.faulty();
        h.end(40_000, 100_000);
        let d = pop(&mut h, 1_000, 0..1);
        // Stalled from 1 s to 35 s, before the quiet period.
        let again = pop(&mut h, 35_000, 0..1);
        h.at(35_100);
        ack(&mut h, &again[0]);
        let r = pop(&mut h, 35_200, 1..2);
        h.at(35_300);
        ack(&mut h, &r[0]);
        assert_eq!(d.len(), 1);
        // Nothing waits after 40 s: nothing to judge.
        assert!(matches!(
            check(&h.build()).status,
            Status::NotApplicable { .. }
        ));
        // A head served in time after the quiet period began holds.
        h.at(50_000).produce("m2", 0, 2);
        let r = pop(&mut h, 50_200, 2..3);
        h.at(50_300);
        ack(&mut h, &r[0]);
        assert_eq!(check(&h.build()), Verdict::held());
        // One that waits too long is a violation.
        h.at(60_000).produce("m3", 0, 3);
        assert_eq!(check(&h.build()).status, Status::Violated);
        // A fault after the quiet period (a scripted clog healing at 90 s) moves it.
        h.at(90_000).push(
            "faults",
            crate::history::EventKind::Fault {
                description: "unclog o1 (scripted)".into(),
            },
        );
        assert_eq!(
            check(&h.build()),
            Verdict::not_applicable(
                "the run ended 10.000s after it got quiet, less than one invisible time plus the retry budget"
            )
        );
    }

    #[test]
    fn nothing_to_judge_is_not_applicable() {
        assert_eq!(
            check(&H::new().build()),
            Verdict::not_applicable("no FIFO (orderly) group")
        );
        let mut h = H::orderly();
        h.end(0, 60_000);
        assert_eq!(
            check(&h.build()),
            Verdict::not_applicable("no FIFO queue had a message waiting after the run got quiet")
        );
    }
}
