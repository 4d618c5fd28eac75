//! In a FIFO group, a queue's poppable head message is delivered, and a delivered head is acked, dead-lettered or delivered again, within one invisible time plus the client's retry budget (a looping SimpleConsumer: by its next receive that comes back short).
//!
//! Liveness of orderly POP (`ConsumerOrderInfoManager`): one un-acked message blocks its
//! whole queue until its invisible time ends, so a head that is never popped again, or an
//! ack that never moves the commit offset, stops the queue for good. Targets an OrderInfo
//! block that never lapses, an orderly ack that is lost or ignored, and a read position that
//! never reaches the head.
//!
//! Semantics, per (group, topic, queue) of every group with an orderly consumer, and of every
//! FIFO group consumed by a looping gRPC `SimpleConsumer` (below):
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
//!   receive with the lost one's attemptId gets past that block; after a crash, the block the
//!   last OrderInfo persist saved, when it ends later: the restart restores that OrderInfo,
//!   whose batch may have been renewed for minutes and acked only after the persist),
//!   `invisible` is the largest `popInvisibleTime` of the group's orderly consumers (the
//!   consumer may be busy with a batch from another queue until that batch's pop times
//!   out), and `budget` is
//!   [`RETRY_BUDGET_MS`] ([`GRPC_RETRY_BUDGET_MS`] for a group of gRPC FIFO consumers)
//!   plus the longest listener run the history shows for the group (the
//!   orderly client starts no listener once the pop has timed out, but one started just
//!   before runs to its end). A delivered head that is acked moves the head; one that is
//!   not comes back after its block, so the same bound covers both halves of the statement.
//! - A FIFO group consumed by a `SimpleConsumer` running its application loop is judged by
//!   that loop instead: a group is FIFO when the broker popped for it in order (a
//!   `Delivered { orderly: true }`: the proxy's receive pops with the subscription's
//!   `fifo`, `ReceiveMessageActivity.receiveMessage`), and a `SimpleConsumer` runs the loop
//!   when it records a lifecycle (`ConsumerStarted` / `ConsumerStopped`: the loop records
//!   its start, and timeline steps start and stop it). One driven by timeline steps records
//!   none: it pops only when told and owes no progress, so a group of only those is not
//!   judged. The loop is sequential (receive, every message of the batch through the
//!   listener with one ack per success, receive again, with a back-off after an error) and
//!   does not stop at the invisible time, so the invisible time says nothing about when it
//!   receives next. Each receive is sent after the loop's step before it (its previous
//!   answer, a listener's start or end, an ack's answer). The broker's orderly pop visits
//!   the queues from a rotating start and stops once the batch is full
//!   (`PopMessageProcessor.popMsgFromTopic` and `popMsgFromQueue`;
//!   `PopConsumerService.popAsync` and `getMessageAsync` on the KV path), skipping a
//!   blocked queue (`ConsumerOrderInfoManager.checkBlock`). So a receive sent after
//!   `t = max(clock, block)` (`block` counts every orderly read the broker made for the group,
//!   `PopRead`, for the loops' invisible time: a receive whose answer was lost shows
//!   nowhere else, as the SimpleConsumer neither renews nor retries with an attemptId)
//!   whose pop came back short of a full batch (fewer than the most any of the loop's
//!   receives found, by the proxy's `ProxyPopped` count) reached the head's queue and,
//!   barring a queue lock another pop held, must have brought the head: the head is due by
//!   its answer. Receives sent after `t` that came back full (the head's queue may not have
//!   been reached; a loop that takes longer than the invisible time over a batch keeps
//!   getting full batches of stale queues) or failed set no deadline, and so does a loop
//!   that sends none (it is busy with a batch; one that never receives again is the
//!   application's business, not a stall of the queue). A group with both kinds of consumer
//!   must meet the later of the two deadlines.
//! - Judged only after the run got quiet: from `quiet_from` in a run with random faults, and
//!   in any run from the last `Fault` event (scripted clogs, pauses, crashes and restarts
//!   heal there), since a lost pop answer or a paused client is at-least-once's business, not
//!   a stall. The witness names the queue, the offset, how long it waited, and what held it:
//!   a missing ack, an ack that did not move the commit offset, the OrderInfo block of the
//!   latest batch, or nothing the history shows (a queue lock or the read position).

use super::index::{is_success, receipt_deadline, secs, witness_events, LookupMap};
use super::{InvariantInfo, Verdict, Witness};
use crate::history::{
    ConsumerKind, EventKind, GrpcCode, GrpcOutcome, GrpcRpc, History, RpcOutcome,
};
use broker_core::{BrokerEvent, ExtraInfo, Millis, POP_ORDER_REVIVE_QUEUE};
use std::collections::{BTreeMap, BTreeSet};

pub(crate) const INFO: InvariantInfo = InvariantInfo {
    name: "fifo-progress",
    statement: "In a FIFO group, a queue's poppable head message is delivered, and a delivered head is acked, dead-lettered or delivered again, within one invisible time plus the client's retry budget (a looping SimpleConsumer: by its next receive that comes back short).",
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
    /// The broker persisted its OrderInfo (`ConsumerOrderInfoManager.persist`): a crash
    /// restores the queue's block as it was then.
    OrderInfoPersisted,
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
            Point::Served { .. }
            | Point::Extend(_)
            | Point::DeadLettered(_)
            | Point::OrderInfoPersisted => 2,
            Point::Down | Point::Up | Point::Running(..) => 3,
            Point::Judge => 4,
        }
    }
}

/// A looping SimpleConsumer's receives.
#[derive(Default)]
struct Loop {
    answers: Vec<Answer>,
    /// What the broker found for the pending receive (the proxy's `ProxyPopped`).
    found: Option<u32>,
    /// The loop's latest step: an answer to one of its calls, a listener's start or end, its
    /// start. Its next receive is sent after it.
    active: Millis,
}

/// One receive's answer, as the loop got it.
struct Answer {
    at: Millis,
    /// The receive was sent after this (the loop's step before it).
    sent_after: Millis,
    /// The proxy answered OK or MESSAGE_NOT_FOUND: its pop ran.
    popped: bool,
    /// How many messages the broker's pop found (the proxy's count, else the deliveries).
    found: u32,
}

/// What one group needs: its bound and its consumers.
struct GroupInfo<'h> {
    /// The group has a FIFO push consumer (orderly remoting, gRPC FIFO): the bound is
    /// `invisible + budget + longest_listener` past the head's start.
    push: bool,
    invisible: Millis,
    budget: Millis,
    topics: BTreeSet<&'h str>,
    consumers: BTreeSet<&'h str>,
    longest_listener: Millis,
    /// The group's looping SimpleConsumers: for each, its receive answers in order (when,
    /// when the receive was sent at the earliest, and whether its pop ran and came back with
    /// less than the largest batch the loop ever got: it then reached every queue).
    loops: Vec<Vec<(Millis, Millis, bool)>>,
    /// The largest invisible time of those loops' receives.
    loop_invisible: Millis,
}

impl GroupInfo<'_> {
    fn new() -> Self {
        Self {
            push: false,
            invisible: 0,
            budget: 0,
            topics: BTreeSet::new(),
            consumers: BTreeSet::new(),
            longest_listener: 0,
            loops: Vec::new(),
            loop_invisible: 0,
        }
    }

    /// When a head that became poppable at `t` (its clock, or the end of the queue's block)
    /// must have stopped waiting; the later of what each consumer kind allows. A FIFO push
    /// consumer: one invisible time plus the retry budget and the longest listener run. A
    /// looping SimpleConsumer: the first receive sent after `t` whose pop came back short of
    /// a full batch reached every queue, the head's too, so the head is due by its answer.
    /// Receives sent after `t` that came back full or failed, or none at all (the loop is
    /// busy with a batch), set no deadline.
    fn deadline(&self, t: Millis) -> Millis {
        let mut d = 0;
        if self.push {
            d = t + self.invisible + self.budget + self.longest_listener;
        }
        for answers in &self.loops {
            let due = (answers.iter())
                .find(|a| a.1 >= t && a.2)
                .map_or(Millis::MAX, |a| a.0);
            d = d.max(due);
        }
        d
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
        let g = groups.entry(&c.group).or_insert_with(GroupInfo::new);
        g.push = true;
        g.invisible = g.invisible.max(c.pop_invisible_time);
        g.budget = g.budget.max(if c.kind == ConsumerKind::GrpcFifo {
            GRPC_RETRY_BUDGET_MS
        } else {
            RETRY_BUDGET_MS
        });
        g.topics.insert(&c.topic);
        g.consumers.insert(&c.name);
    }
    let group_of: BTreeMap<&str, &str> = (meta.consumers.iter())
        .map(|c| (c.name.as_str(), c.group.as_str()))
        .collect();
    let simple: BTreeSet<&str> = (meta.consumers.iter())
        .filter(|c| c.kind == ConsumerKind::GrpcSimple)
        .map(|c| c.name.as_str())
        .collect();

    // Pass 1: the queues, the end of the faults, listener runs, the lifecycle, the FIFO
    // groups and the SimpleConsumers' loops.
    let mut last_fault: Option<Millis> = None;
    let mut queues: BTreeMap<&str, BTreeSet<u32>> = BTreeMap::new();
    let mut lifecycle_seen: BTreeSet<&str> = BTreeSet::new();
    let mut listening: BTreeMap<&str, Millis> = BTreeMap::new();
    let mut longest_listener: BTreeMap<&str, Millis> = BTreeMap::new();
    let mut orderly_groups: BTreeSet<&str> = BTreeSet::new();
    let mut loops: BTreeMap<&str, Loop> = BTreeMap::new();
    // The loop whose receive answered at this time with no proxy count: its deliveries.
    let mut counting: Option<(&str, Millis)> = None;
    for e in &history.events {
        match &e.kind {
            EventKind::Fault { .. } => last_fault = Some(e.at),
            EventKind::Produced {
                topic, queue_id, ..
            } => {
                queues.entry(topic).or_default().insert(*queue_id);
            }
            EventKind::Delivered {
                consumer,
                group,
                topic,
                queue_id,
                retry_topic,
                orderly,
                ..
            } => {
                if counting == Some((consumer.as_str(), e.at)) {
                    if let Some(a) = loops
                        .get_mut(consumer.as_str())
                        .and_then(|l| l.answers.last_mut())
                    {
                        a.found += 1;
                    }
                }
                if retry_topic.is_none() {
                    queues.entry(topic).or_default().insert(*queue_id);
                }
                if *orderly {
                    orderly_groups.insert(group);
                }
            }
            EventKind::ConsumerStarted { consumer, group }
            | EventKind::ConsumerStopped { consumer, group } => {
                lifecycle_seen.insert(group);
                if simple.contains(consumer.as_str()) {
                    loops.entry(consumer).or_default();
                }
            }
            EventKind::GrpcCall {
                consumer,
                rpc: GrpcRpc::ReceiveMessage,
                outcome,
                ..
            } => {
                if let Some(l) = loops.get_mut(consumer.as_str()) {
                    let popped = matches!(
                        outcome,
                        GrpcOutcome::Status {
                            code: GrpcCode::Ok | GrpcCode::MessageNotFound,
                            ..
                        }
                    );
                    let found = l.found.take();
                    l.answers.push(Answer {
                        at: e.at,
                        sent_after: l.active,
                        popped,
                        found: found.unwrap_or(0),
                    });
                    // Without the proxy's count, the deliveries that follow are counted.
                    counting = found.is_none().then_some((consumer.as_str(), e.at));
                }
            }
            EventKind::ProxyPopped {
                consumer,
                found,
                outcome,
                ..
            } => {
                if let Some(l) = loops.get_mut(consumer.as_str()) {
                    // A pop whose answer the proxy never got found an unknown number.
                    l.found = matches!(outcome, RpcOutcome::Answered { .. }).then_some(*found);
                }
            }
            EventKind::ListenerStarted { consumer, .. } => {
                listening.insert(consumer, e.at);
            }
            EventKind::ListenerFinished { consumer, .. } => {
                let start = listening.remove(consumer.as_str());
                let group = group_of.get(consumer.as_str()).copied();
                if let (Some(start), Some(g)) = (start, group) {
                    let l = longest_listener.entry(g).or_default();
                    *l = (*l).max(e.at.saturating_sub(start));
                }
            }
            _ => {}
        }
        if let EventKind::GrpcCall { consumer, .. }
        | EventKind::ListenerStarted { consumer, .. }
        | EventKind::ListenerFinished { consumer, .. }
        | EventKind::ConsumerStarted { consumer, .. } = &e.kind
        {
            if let Some(l) = loops.get_mut(consumer.as_str()) {
                l.active = e.at;
            }
        }
    }
    // A looping SimpleConsumer of a FIFO group: its group is judged by its receives.
    // Only the loop records a lifecycle (`ConsumerStarted` when it starts, and the
    // timeline's start and stop steps); a SimpleConsumer driven by timeline steps records
    // none, pops only when told, and owes no progress.
    for c in (meta.consumers.iter()).filter(|c| orderly_groups.contains(c.group.as_str())) {
        let Some(l) = loops.get(c.name.as_str()) else {
            continue;
        };
        let g = groups.entry(&c.group).or_insert_with(GroupInfo::new);
        g.topics.insert(&c.topic);
        g.consumers.insert(&c.name);
        g.loop_invisible = g.loop_invisible.max(c.pop_invisible_time);
        let full = l.answers.iter().map(|a| a.found).max().unwrap_or(0);
        let answers = (l.answers.iter()).map(|a| (a.at, a.sent_after, a.popped && a.found < full));
        g.loops.push(answers.collect());
    }
    for (name, g) in &mut groups {
        g.longest_listener = longest_listener.get(name).copied().unwrap_or(0);
    }
    if groups.is_empty() {
        return Verdict::not_applicable("no FIFO (orderly) group");
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
    // A group judged by its receives alone has no bound to wait out.
    groups.retain(|_, g| !g.push || g.deadline(judge_from) <= meta.end_at);
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
            EventKind::Broker(BrokerEvent::PopRead {
                group,
                topic,
                queue_id,
                pop_time,
                count: 1..,
                orderly: true,
                ..
            }) => {
                // An orderly pop for a looping SimpleConsumer blocks the queue whether or not
                // its answer reached the client, and one whose answer was lost shows nowhere
                // else (no auto-renew, no attemptId: `ReceiveMessageActivity.receiveMessage`).
                let inv = groups.get(group.as_str()).map_or(0, |g| g.loop_invisible);
                if inv > 0 {
                    let k: Key = (group, topic, *queue_id);
                    push(k, *pop_time, Point::Extend(pop_time + inv));
                }
            }
            EventKind::Broker(BrokerEvent::OrderInfoPersisted { .. }) => {
                for k in &keys {
                    push(*k, e.at, Point::OrderInfoPersisted);
                }
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
                // A delivery proves the message exists, for every group's head, from when
                // the client had it: not from its popTime, which the broker takes once per
                // request before it walks the queues (`PopMessageProcessor.processRequest`),
                // so a message put while the pop was on its way to that queue comes with a
                // popTime before it existed.
                for other in on_queue(&keys, topic, *queue_id) {
                    push(other, e.at, Point::Exists(*queue_offset));
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
            always_running: !lifecycle_seen.contains(key.0),
            ..Walk::default()
        };
        for (at, idx, p) in pts {
            q.check(at, g);
            q.apply(at, idx, p);
        }
        q.check(meta.end_at, g);
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
    /// `block` and `batch` as the last OrderInfo persist saved them: what a crash restores.
    persisted: (Millis, Batch),
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
    fn check(&mut self, at: Millis, g: &GroupInfo) {
        let Some((since, armed_by)) = self.since else {
            return;
        };
        let deadline = g.deadline(since.max(self.block));
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
            Point::OrderInfoPersisted => self.persisted = (self.block, self.batch.clone()),
            Point::Down | Point::Up => {
                self.down = matches!(p, Point::Down);
                if self.down && self.persisted.0 > self.block {
                    // The restart reads the OrderInfo of the last persist: an older batch
                    // blocks again until its deadline as persisted (a renewal may have moved
                    // it minutes ahead) even if an ack since then committed past it. (The
                    // later batch's block is kept when it ends later: lenient, as whether a
                    // batch popped since the persist survives is not judged here.)
                    (self.block, self.batch) = self.persisted.clone();
                }
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
    use crate::history::{GrpcRpc, RpcOutcome};
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
            let v = check(&h.build());
            eprintln!("{v:?}");
            v.status
        };
        let v = run(true);
        assert_eq!(v, Status::Held);
        assert_eq!(
            run(false),
            Status::Violated,
            "without the renewal nothing shows the batch: due by 64 s"
        );
    }

    #[test]
    fn a_crash_restores_the_block_the_last_order_info_persist_saved() {
        // Proxy-random seed 81920 (`--fix all`): o2's batch popped at 1.0 s was renewed to
        // 290 s; its ack committed past offset 2 at 111.4 s, after the persists of 110.6 s,
        // and a pop read from 3 at 113.0 s. The crash at 115.1 s restored commit offset 2 and
        // the persisted OrderInfo, whose block held offset 2 until 290 s: it came again at
        // 293 s. Here offset 0, popped at 1 s, is renewed to 200 s and persisted at 6 s,
        // acked at 8 s; offset 1 is popped at 9 s; the crash comes at 10 s.
        let run = |persisted: bool| {
            let mut h = fifo(2);
            h.consumer("o1", "og", ConsumerKind::GrpcFifo, -1);
            h.end(0, 300_000);
            h.at(500).commit("og", 0, 0, "getPopOffset");
            h.persist();
            let d = pop(&mut h, 1_000, 0..1);
            h.at(5_000).proxy_renews(&d[0], 195_000);
            if persisted {
                h.at(6_000).persist_order_info();
            }
            h.at(8_000);
            ack(&mut h, &d[0]);
            pop(&mut h, 9_000, 1..2);
            h.at(10_000).crash();
            h.at(11_000).restart();
            for (i, r) in pop(&mut h, 201_000, 0..2).iter().enumerate() {
                h.at(201_100 + i as Millis * 100);
                ack(&mut h, r);
            }
            check(&h.build()).status
        };
        assert_eq!(run(true), Status::Held);
        assert_eq!(run(false), Status::Violated, "no OrderInfo survived");
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

    /// A looping SimpleConsumer `s1` of FIFO group `og`, started at 0, and `n` messages on
    /// queue 0. It is built as a gRPC FIFO consumer so that its pops are orderly (the proxy
    /// pops with `order = true` for a FIFO group's SimpleConsumer); [`as_simple`] makes it a
    /// SimpleConsumer again.
    fn simple(n: u64) -> H {
        let mut h = H::grpc_fifo(&["s1"], "og", -1);
        h.end(0, 200_000);
        h.at(0).started("s1");
        for o in 0..n {
            h.at(o * 10).produce(&format!("m{o}"), 0, o);
        }
        h
    }

    fn as_simple(h: &H) -> History {
        let mut history = h.build();
        history.meta.consumers[0].kind = ConsumerKind::GrpcSimple;
        history
    }

    /// s1's receive answered OK at `t` with `n` messages.
    fn receive_call(h: &mut H, t: Millis, n: usize) -> usize {
        h.at(t).push(
            "s1",
            EventKind::GrpcCall {
                consumer: "s1".into(),
                group: "og".into(),
                rpc: GrpcRpc::ReceiveMessage,
                msg_id: None,
                outcome: crate::history::GrpcOutcome::Status {
                    code: crate::history::GrpcCode::Ok,
                    message: "".into(),
                },
                detail: format!("{n} message(s)").into(),
            },
        )
    }

    /// s1's receive answered at `t` with `msgs` (message, offset) from queue `q`, popped
    /// then.
    fn receive(h: &mut H, t: Millis, msgs: &[(&str, u64)], q: u32) -> Vec<Rcpt> {
        receive_call(h, t, msgs.len());
        if msgs.is_empty() {
            return Vec::new();
        }
        h.pop_batch("s1", msgs, q)
    }

    /// s1's receive answered at `t` with these (offset, queue): `m{o}` of queue 0 and
    /// `n{o}` of queue 1, each queue's popped as one batch.
    fn receive_from(h: &mut H, t: Millis, msgs: &[(u64, u32)]) -> Vec<Rcpt> {
        receive_call(h, t, msgs.len());
        let mut out = Vec::new();
        for (q, prefix) in [(0, "m"), (1, "n")] {
            let names: Vec<(String, u64)> = (msgs.iter().filter(|m| m.1 == q))
                .map(|m| (format!("{prefix}{}", m.0), m.0))
                .collect();
            let batch: Vec<(&str, u64)> = names.iter().map(|(m, o)| (m.as_str(), *o)).collect();
            if !batch.is_empty() {
                out.extend(h.at(t).pop_batch("s1", &batch, q));
            }
        }
        out
    }

    /// The loop's listener runs `r` from `t` for `run` ms, then acks it (the broker commits
    /// the next offset); returns when the ack was answered.
    fn consume(h: &mut H, t: Millis, r: &Rcpt, run: Millis) -> Millis {
        h.at(t).listener(r);
        h.at(t + run)
            .listener_done(r, crate::history::ConsumeOutcome::Success, false);
        h.at(t + run + 50).ack(r);
        h.commit("og", r.queue_id, r.queue_offset as i64 + 1, "ackOrderly");
        t + run + 50
    }

    #[test]
    fn a_looping_simple_consumer_s_fifo_group_is_judged_by_its_loop() {
        // s1 receives m0 at 1 s and acks it at 1.55 s; its later receives come back empty
        // every 5 s (long polling). Offset 1 waits from 1.55 s, and the
        // batch's block counts until its invisible time ends at 11 s. The receive answered at
        // 11 s was sent at 6 s; the next one, sent after 11 s, came back short of a full
        // batch (empty): due by its answer at 16 s.
        let run = |served: Option<Millis>| {
            let mut h = simple(2);
            let r = receive(&mut h, 1_000, &[("m0", 0)], 0);
            consume(&mut h, 1_000, &r[0], 500);
            let mut t = 6_000;
            while t <= 195_000 {
                let msgs: &[(&str, u64)] = if served == Some(t) { &[("m1", 1)] } else { &[] };
                for r in receive(&mut h, t, msgs, 0) {
                    consume(&mut h, t, &r, 500);
                }
                t += 5_000;
            }
            check(&as_simple(&h))
        };
        assert_eq!(run(Some(16_000)), Verdict::held());
        let late = run(Some(21_000));
        assert_eq!(late.status, Status::Violated);
        assert!(
            late.witness.as_ref().unwrap().summary.contains(
                "head offset 1 was waiting from 1.550s and was served only at 21.000s, 19.450s later (due by 16.000s)"
            ),
            "{:?}",
            late.witness
        );
        // Never served: before the loop was judged, this group had no FIFO consumer kind.
        let stalled = run(None);
        assert_eq!(stalled.status, Status::Violated);
        assert!(
            stalled.witness.as_ref().unwrap().summary.ends_with(
                "held by nothing the history shows: no un-acked delivery of it and no batch blocking the queue (a queue lock or the read position)"
            ),
            "{:?}",
            stalled.witness
        );
    }

    #[test]
    fn another_group_s_delivery_proves_a_message_exists_from_its_arrival_not_its_pop_time() {
        // Develop-random with late producers, seed 1042 (`--fix all`): g-fifo's pop took its
        // popTime (82.674 s), was preempted, and read orders/15 after p-late-orders-15 was
        // put there (82.953 s); s1's receive, sent at 82.842 s, had passed queue 15 before
        // the put and came back short at 83.036 s. The head was taken to exist from g-fifo's
        // popTime, so that short receive looked like one that skipped it.
        let run = |s1_served_at: Millis| {
            let mut h = simple(1);
            h.consumer("o2", "og2", ConsumerKind::GrpcFifo, -1);
            h.at(0).started("o2");
            let r = receive(&mut h, 1_000, &[("m0", 0)], 0);
            consume(&mut h, 1_000, &r[0], 500);
            // Short receives; m0's block ends at 11 s. The one answered at 21.3 s was sent
            // at 20.5 s, after og2's popTime.
            for t in [6_000, 11_000, 16_000, 20_500, 21_300] {
                receive(&mut h, t, &[], 0);
            }
            // m1 is put at 21.5 s; og2's pop, with popTime 20 s, hands it over at 22 s.
            h.at(21_500).produce("m1", 0, 1);
            h.at(22_000).pop_served_at("o2", "m1", 0, 1, 20_000);
            let mut t = 26_000;
            while t <= 195_000 {
                let msgs: &[(&str, u64)] = if t == s1_served_at { &[("m1", 1)] } else { &[] };
                for r in receive(&mut h, t, msgs, 0) {
                    consume(&mut h, t, &r, 500);
                }
                t += 5_000;
            }
            check(&as_simple(&h))
        };
        // The receive answered at 26 s was sent at 21.3 s, before m1 existed; the next one
        // serves it: on time.
        assert_eq!(run(31_000).status, Status::Held, "{:?}", run(31_000));
        // Served only at 36 s: the receive sent at 26 s came back short at 31 s.
        assert_eq!(run(36_000).status, Status::Violated);
    }

    #[test]
    fn a_looping_simple_consumer_may_be_busy_with_a_long_batch_past_its_invisible_time() {
        // s1 (invisible 10 s) receives eight messages of queue 1 at 1 s and runs them one
        // after another, 8 s each, acking each: it receives again at 65.5 s. Offset 0 of
        // queue 0, produced at 2 s, waits for that receive, past the push consumer's bound
        // (2 + 10 + 24 + 8 s): the loop does not stop at the invisible time. `second` and
        // `third`: what the next two receives bring.
        let run = |second: &[(u64, u32)], third: &[(u64, u32)]| {
            let mut h = simple(0);
            let first: Vec<(u64, u32)> = (0..8).map(|o| (o, 1)).collect();
            for (o, _) in [&first[..], second, third]
                .concat()
                .iter()
                .filter(|m| m.1 == 1)
            {
                h.at(*o).produce(&format!("n{o}"), 1, *o);
            }
            h.at(2_000).produce("m0", 0, 0);
            let mut t = 1_000;
            for batch in [&first[..], second, third] {
                for r in receive_from(&mut h, t, batch) {
                    t = consume(&mut h, t, &r, 8_000);
                }
                t += 100;
            }
            while t <= 395_000 {
                t += 5_000;
                receive(&mut h, t, &[], 0);
            }
            h.end(0, 400_000);
            check(&as_simple(&h))
        };
        let head = [(0, 0)];
        // Served by the receive after the long batch: held.
        assert_eq!(run(&head, &[]), Verdict::held());
        // That receive, sent at 65.4 s, came back empty: it reached every queue.
        let v = run(&[], &[]);
        assert!(
            v.witness.as_ref().unwrap().summary.contains(
                "head its first message was waiting from 2.000s and was still waiting when the run ended at 400.000s, 398.000s later (due by 65.500s)"
            ),
            "{:?}",
            v.witness
        );
        // It came back with a full batch of queue 1 (eight, the most s1 ever got): the broker
        // stops once the batch is full, so it may not have reached queue 0, and s1 is busy
        // with it until 130 s. The head served then holds; a short batch then without it
        // does not.
        let full: Vec<(u64, u32)> = (8..16).map(|o| (o, 1)).collect();
        assert_eq!(run(&full, &head), Verdict::held());
        let v = run(&full, &[(16, 1)]);
        assert!(
            v.witness
                .as_ref()
                .unwrap()
                .summary
                .contains("(due by 130.000s)"),
            "{:?}",
            v.witness
        );
        // A loop that sent no receive after its first batch when the run ends owes nothing yet.
        let mut h = simple(0);
        let first: Vec<(u64, u32)> = (0..8).map(|o| (o, 1)).collect();
        for o in 0..8 {
            h.at(o).produce(&format!("n{o}"), 1, o);
        }
        h.at(2_000).produce("m0", 0, 0);
        let mut t = 1_000;
        for r in receive_from(&mut h, t, &first) {
            t = consume(&mut h, t, &r, 8_000);
        }
        h.end(0, 70_000);
        assert_eq!(check(&as_simple(&h)), Verdict::held());
    }

    #[test]
    fn a_pop_whose_answer_was_lost_blocks_a_looping_simple_consumer_s_queue() {
        // Develop-random seed 826: s1 acks m0 at 1.55 s; m1 is produced at 2 s. The broker
        // pops m1 at 8 s for the receive s1 sent at 6 s, but the answer is lost: s1's call
        // times out at 14 s, and the batch blocks the queue until 18 s (invisible 10 s) all
        // the same. The receive s1 sends at 14 s finds the queue blocked and comes back empty
        // at 20 s; the next one brings m1 at 25 s. Only the broker's read shows the batch.
        let run = |read: bool| {
            let mut h = simple(1);
            let r = receive(&mut h, 1_000, &[("m0", 0)], 0);
            consume(&mut h, 1_000, &r[0], 500);
            h.at(2_000).produce("m1", 0, 1);
            receive(&mut h, 6_000, &[], 0);
            if read {
                h.at(8_000)
                    .commit("og", 0, 1, "PopMessageProcessor.orderly");
                h.pop_read("og", 0, 8_000, 1, 1, true, ReadFrom::CommitOffset);
            }
            h.at(14_000).push(
                "s1",
                EventKind::GrpcCall {
                    consumer: "s1".into(),
                    group: "og".into(),
                    rpc: GrpcRpc::ReceiveMessage,
                    msg_id: None,
                    outcome: crate::history::GrpcOutcome::Timeout,
                    detail: "".into(),
                },
            );
            receive(&mut h, 20_000, &[], 0);
            for r in receive(&mut h, 25_000, &[("m1", 1)], 0) {
                consume(&mut h, 25_000, &r, 500);
            }
            let mut t = 25_000;
            while t < 195_000 {
                t += 5_000;
                receive(&mut h, t, &[], 0);
            }
            check(&as_simple(&h))
        };
        assert_eq!(run(true), Verdict::held());
        let v = run(false);
        assert!(
            v.witness
                .as_ref()
                .unwrap()
                .summary
                .contains("(due by 20.000s)"),
            "{:?}",
            v.witness
        );
    }

    #[test]
    fn a_simple_consumer_driven_by_steps_or_of_a_normal_group_owes_no_progress() {
        // A SimpleConsumer without a loop records no lifecycle: it pops when the timeline
        // says so, and its group is not judged however long the head waits.
        let mut h = simple(2);
        h.events.clear();
        h.produce("m0", 0, 0);
        h.produce("m1", 0, 1);
        let r = receive(&mut h, 1_000, &[("m0", 0)], 0);
        h.at(1_100).ack(&r[0]);
        h.commit("og", 0, 1, "ackOrderly");
        assert_eq!(
            check(&as_simple(&h)),
            Verdict::not_applicable("no FIFO (orderly) group")
        );
        // A looping one whose group is not FIFO (its deliveries are not orderly).
        let mut h = simple(2);
        h.consumer("s1", "og", ConsumerKind::GrpcSimple, -1);
        for t in [1_000, 6_000, 11_000] {
            receive(&mut h, t, &[], 0);
        }
        receive(&mut h, 16_000, &[("m0", 0)], 0);
        assert_eq!(
            check(&h.build()),
            Verdict::not_applicable("no FIFO (orderly) group")
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
