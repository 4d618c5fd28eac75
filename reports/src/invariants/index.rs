//! What several invariants (and the report's counts) need from a history, each computed in
//! one pass with ordered maps.

use crate::history::{Event, EventKind, History, RpcOutcome};
use broker_core::{
    BrokerEvent, CkRef, ExtraInfo, FastBuildHasher, Millis, Name, ResponseCode,
    POP_ORDER_REVIVE_QUEUE,
};
use std::cell::OnceCell;
use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};

/// A map for point lookups that are never iterated. A fixed hasher ([`FastBuildHasher`]), so
/// even its order would not depend on the process; iterate an ordered map instead wherever
/// order can reach a report.
pub(crate) type LookupMap<K, V> = HashMap<K, V, FastBuildHasher>;

/// A set for membership tests that is never iterated; as [`LookupMap`].
pub(crate) type LookupSet<K> = HashSet<K, FastBuildHasher>;

/// An empty [`LookupMap`] with room for `n` entries.
pub(crate) fn lookup_map<K, V>(n: usize) -> LookupMap<K, V> {
    LookupMap::with_capacity_and_hasher(n, Default::default())
}

/// At most this many event indexes go into a witness: enough to read, short enough to paste.
pub(crate) const MAX_WITNESS_EVENTS: usize = 20;

pub(crate) fn is_success(o: &RpcOutcome) -> bool {
    matches!(
        o,
        RpcOutcome::Answered {
            code: ResponseCode::Success,
            ..
        }
    )
}

/// POP retry topics (`%RETRY%group_topic`, `%RETRY%group+topic`) and the classic `%RETRY%group`.
pub(crate) fn is_retry_topic(topic: &str) -> bool {
    topic.starts_with("%RETRY%")
}

/// `ConsumerOffsetManager`'s key.
pub(crate) fn offset_key(topic: &str, group: &str) -> String {
    format!("{topic}@{group}")
}

/// Virtual milliseconds as seconds, e.g. `12.345s`.
pub(crate) fn secs(ms: Millis) -> String {
    format!("{}.{:03}s", ms / 1000, ms % 1000)
}

/// Sorts, dedups and shortens a witness's event list (keeping the first ones and the last).
pub(crate) fn witness_events(mut events: Vec<usize>) -> Vec<usize> {
    events.sort_unstable();
    events.dedup();
    if events.len() > MAX_WITNESS_EVENTS {
        let last = events[events.len() - 1];
        events.truncate(MAX_WITNESS_EVENTS - 1);
        events.push(last);
    }
    events
}

/// `BrokerController`'s initial delay of the offset flush after a (re)start.
pub(crate) const FIRST_FLUSH_DELAY_MS: Millis = 10_000;

/// Indexes of the `OffsetsPersisted` events, in order.
pub(crate) fn persists(h: &History) -> Vec<usize> {
    (h.events.iter().enumerate())
        .filter(|(_, e)| {
            matches!(
                e.kind,
                EventKind::Broker(BrokerEvent::OffsetsPersisted { .. })
            )
        })
        .map(|(i, _)| i)
        .collect()
}

/// Had a write to offsetTable at event `after` been flushed by event `before`? Yes if a
/// flush was recorded in between, or a flush was due: the broker flushes only a dirty table,
/// so a change that never reached offsetTable (bug (e)) records no flush and must not be
/// excused for it. Upstream's first flush comes 10 s after the process (re)started, then one
/// every `flushConsumerOffsetInterval` (`BrokerController`), so a write in the first 10 s is
/// due at that first flush, a later one within one period (the run's
/// `flushConsumerOffsetInterval`, [`RunMeta::offset_flush_interval`](crate::history::RunMeta)).
pub(crate) fn flush_due_between(
    h: &History,
    persists: &[usize],
    after: usize,
    before: usize,
) -> bool {
    let i = persists.partition_point(|p| *p <= after);
    let recorded = persists.get(i).is_some_and(|p| *p < before);
    let end = h.events.get(before).map_or(h.meta.end_at, |e| e.at);
    let at = h.events[after].at;
    let started = h.events[..after]
        .iter()
        .rev()
        .find_map(|e| match e.kind {
            EventKind::Broker(BrokerEvent::Restarted { at }) => Some(at),
            _ => None,
        })
        .unwrap_or(0);
    let due = (started + FIRST_FLUSH_DELAY_MS).max(at + h.meta.offset_flush_interval);
    // A flush due at the run's last instant has not run: the simulation stops there.
    recorded || end > due
}

/// The event indices of the broker's crashes (graceful shutdowns included), in order.
pub(crate) fn crash_indices(h: &History) -> Vec<usize> {
    (h.events.iter().enumerate())
        .filter(|(_, e)| matches!(e.kind, EventKind::Broker(BrokerEvent::Crashed { .. })))
        .map(|(i, _)| i)
        .collect()
}

/// A reset followed by a crash with no offset flush due in between died with the process,
/// taken by a pop or not: the pending reset lives in memory, and neither
/// `assignResetOffset`'s offsetTable write nor the commit of the pop that took it was
/// persisted, so the restart reads the older offset.
pub(crate) fn reset_died_in_crash(
    h: &History,
    flushes: &[usize],
    crashes: &[usize],
    p: &ResetPoint,
) -> bool {
    let i = crashes.partition_point(|c| *c <= p.idx);
    crashes
        .get(i)
        .is_some_and(|&crash| !flush_due_between(h, flushes, p.idx, crash))
}

/// What several checkers derive from one history, each computed at most once per
/// [`check`](super::check): the ack analysis alone is a third of a check's time, and three
/// invariants read it.
pub(crate) struct Facts<'h> {
    pub h: &'h History,
    pops: OnceCell<PopPositions>,
    rollbacks: OnceCell<Rollbacks<'h>>,
    acks: OnceCell<AckAnalysis>,
    retention: OnceCell<Retention<'h>>,
    origins: OnceCell<BTreeMap<&'h str, Origin>>,
    resets: OnceCell<Vec<ResetPoint>>,
}

impl<'h> Facts<'h> {
    pub fn new(h: &'h History) -> Self {
        Self {
            h,
            pops: OnceCell::new(),
            rollbacks: OnceCell::new(),
            acks: OnceCell::new(),
            retention: OnceCell::new(),
            origins: OnceCell::new(),
            resets: OnceCell::new(),
        }
    }

    pub fn pops(&self) -> &PopPositions {
        self.pops.get_or_init(|| PopPositions::new(self.h))
    }

    pub fn rollbacks(&self) -> &Rollbacks<'h> {
        self.rollbacks
            .get_or_init(|| Rollbacks::new(self.h, self.pops()))
    }

    pub fn acks(&self) -> &AckAnalysis {
        self.acks.get_or_init(|| analyse_acks(self))
    }

    pub fn retention(&self) -> &Retention<'h> {
        self.retention.get_or_init(|| Retention::new(self.h))
    }

    /// [`origins`]: five readers, a pass over every event and an entry per message.
    pub fn origins(&self) -> &BTreeMap<&'h str, Origin> {
        self.origins.get_or_init(|| origins(self.h))
    }

    /// [`resets`]: seven readers, a pass over every event.
    pub fn resets(&self) -> &[ResetPoint] {
        self.resets.get_or_init(|| resets(self.h))
    }
}

/// What retention deleted, and when: each queue's min offset as the broker's
/// `MessagesExpired` moved it (`DefaultMessageStore`'s clean services delete expired CommitLog
/// files and correct each queue's min offset). A message below its queue's min offset is gone:
/// a pop below it is corrected to the store's next offset (`PopMessageProcessor`'s offset
/// correction) and nobody can consume it any more, which no invariant holds against upstream.
pub(crate) struct Retention<'h>(BTreeMap<(&'h str, u32), Vec<(usize, u64)>>);

impl<'h> Retention<'h> {
    pub fn new(h: &'h History) -> Self {
        let mut moves: BTreeMap<(&'h str, u32), Vec<(usize, u64)>> = BTreeMap::new();
        for (idx, e) in h.events.iter().enumerate() {
            if let EventKind::Broker(BrokerEvent::MessagesExpired {
                topic,
                queue_id,
                min_offset,
                ..
            }) = &e.kind
            {
                moves
                    .entry((topic.as_str(), *queue_id))
                    .or_default()
                    .push((idx, *min_offset));
            }
        }
        Self(moves)
    }

    /// The queue's min offset once the events before `idx` happened (0: nothing deleted).
    pub fn min_before(&self, topic: &str, queue: u32, idx: usize) -> u64 {
        let Some(moves) = self.0.get(&(topic, queue)) else {
            return 0;
        };
        // A queue's min offset only grows.
        let n = moves.partition_point(|(i, _)| *i < idx);
        moves[..n].last().map_or(0, |(_, m)| *m)
    }

    /// Whether retention had deleted `offset` of the queue before event `idx`.
    pub fn gone_before(&self, topic: &str, queue: u32, offset: u64, idx: usize) -> bool {
        offset < self.min_before(topic, queue, idx)
    }
}

/// The broker's `PopRead`s so far, by (group, queue, popTime): each read's event index, the
/// offset it read from and its request's `attemptId`. Where a pop's read sits, for a
/// delivery ([`PopPositions`]) and for a handle no client recorded (the proxy's ack of what
/// its filter dead-lettered, orderly-commit-safety): one lookup, so both place a pop alike.
#[derive(Default)]
pub(crate) struct PopReads<'h>(ReadsByPop<'h>);

type ReadsByPop<'h> = LookupMap<(&'h str, CopyKey<'h>, Millis), Vec<(usize, u64, Option<&'h str>)>>;

impl<'h> PopReads<'h> {
    /// Notes the event at `idx` if it is a `PopRead` (retry queues keyed as queue 0).
    pub fn note(&mut self, idx: usize, e: &'h EventKind) {
        if let EventKind::Broker(BrokerEvent::PopRead {
            group,
            topic,
            queue_id,
            pop_time,
            offset,
            attempt_id,
            ..
        }) = e
        {
            let q = copy_key(topic, *queue_id, 0);
            self.0.entry((group, q, *pop_time)).or_default().push((
                idx,
                *offset,
                attempt_id.as_deref(),
            ));
        }
    }

    /// The read of `group`'s pop at `pop_time` on queue `q` (a [`copy_key`] with offset 0)
    /// whose handle names `start` as the offset it read from and whose request carried
    /// `attempt` (when both are known): the latest such read, else the latest read of
    /// `start`, else the latest read of that pop at all.
    pub fn find(
        &self,
        group: &str,
        q: CopyKey,
        pop_time: Millis,
        start: Option<u64>,
        attempt: Option<&str>,
    ) -> Option<usize> {
        // Another attempt's read is not this pop's.
        let mine = |a: &Option<&str>| match (attempt, a) {
            (Some(d), Some(r)) => d == *r,
            _ => true,
        };
        let rs = self.0.get(&(group, q, pop_time))?;
        (rs.iter().rev())
            .find(|(_, o, a)| Some(*o) == start && mine(a))
            .or_else(|| rs.iter().rev().find(|(_, o, _)| Some(*o) == start))
            .or(rs.last())
            .map(|(i, _, _)| *i)
    }
}

/// Where each delivery's pop sits among the history's events.
///
/// A client records `Delivered` when the answer reaches it, one network hop after the broker
/// served the pop at `popTime`. A crash or a reset in that gap happened *after* the pop even
/// though it is recorded before the delivery, so "was there a crash (reset) between these
/// two deliveries" must be asked of the pops, not of the receipts.
pub(crate) struct PopPositions(LookupMap<usize, (PopPos, Option<Millis>)>);

/// One pop's place among the events, as a half-open split of event indexes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct PopPos {
    /// Events at this index or later happened after the pop.
    pub after_from: usize,
    /// Events before this index happened before the pop.
    pub before_to: usize,
}

impl PopPositions {
    /// The broker's `PopRead` for the delivery's queue places its pop exactly: the moment the
    /// pop took its offset (a pop is an operation of steps and may start, at its `popTime`,
    /// before a reset it then consumes). A delivery without one (a hand-made history) is
    /// placed by time: every event earlier than its `popTime` came before it and every
    /// later one after it; an event in the same millisecond counts as both, so it can excuse
    /// but never convict.
    ///
    /// Two pops of a group may share a `popTime` (`processRequest` takes it as a request
    /// starts) and both read the same queue, one after the other under its lock: the
    /// delivery's handle names the offset its pop read from (the start `popMsgFromQueue`
    /// sends in `startOffsetInfo` and `MQClientAPIImpl.processPopResponse` writes into the
    /// handle; a retry copy's comes from the broker), and the latest read of that offset is
    /// its pop's. Without such a read (an offset the store corrected) the latest read stands.
    /// Both pops may read the same offset (a reset back to it between them): then the read
    /// whose request carried the delivery's `attemptId` is its pop's (develop-random 8448).
    pub fn new(h: &History) -> Self {
        let sorted = h.events.windows(2).all(|w| w[0].at <= w[1].at);
        let mut reads = PopReads::default();
        let mut out = LookupMap::default();
        for (idx, e) in h.events.iter().enumerate() {
            reads.note(idx, &e.kind);
            let EventKind::Delivered {
                group,
                topic,
                queue_id,
                retry_topic,
                pop_time,
                receipt,
                attempt_id,
                ..
            } = &e.kind
            else {
                continue;
            };
            let q = copy_key(retry_topic.as_deref().unwrap_or(topic), *queue_id, 0);
            let start = ExtraInfo::parse(receipt).map(|e| e.ck_queue_offset);
            let pos = match reads.find(group, q, *pop_time, start, attempt_id.as_deref()) {
                Some(read) => (
                    PopPos {
                        after_from: read,
                        before_to: read,
                    },
                    Some(h.events[read].at),
                ),
                None => (by_time(h, sorted, idx, *pop_time), None),
            };
            out.insert(idx, pos);
        }
        Self(out)
    }

    /// The pop behind the delivery at `idx`; any other event stands for itself.
    pub fn of(&self, idx: usize) -> PopPos {
        self.0.get(&idx).map_or(
            PopPos {
                after_from: idx + 1,
                before_to: idx,
            },
            |(p, _)| *p,
        )
    }

    /// The `PopRead` behind the delivery at `idx`, when the history recorded one.
    pub fn read_of(&self, idx: usize) -> Option<usize> {
        self.0
            .get(&idx)
            .and_then(|(p, at)| at.map(|_| p.after_from))
    }

    /// When the broker decided the pop behind the delivery at `idx` (took its offset and, for
    /// an orderly pop, checked the queue's block): its `PopRead`, else the delivery's
    /// `popTime`.
    pub fn decided_at(&self, idx: usize, pop_time: Millis) -> Millis {
        self.0.get(&idx).and_then(|(_, at)| *at).unwrap_or(pop_time)
    }
}

/// Places a pop at `pop_time` among the events before `idx` by their times. Recorded
/// histories are in time order (binary search); hand-made ones need not be (walk back).
fn by_time(h: &History, sorted: bool, idx: usize, pop_time: Millis) -> PopPos {
    let before = &h.events[..idx];
    if sorted {
        return PopPos {
            after_from: before.partition_point(|e| e.at < pop_time),
            before_to: before.partition_point(|e| e.at <= pop_time),
        };
    }
    let after_from = before
        .iter()
        .rposition(|e| e.at < pop_time)
        .map_or(0, |i| i + 1);
    let before_to = before
        .iter()
        .rposition(|e| e.at <= pop_time)
        .map_or(0, |i| i + 1);
    PopPos {
        after_from: after_from.min(before_to),
        before_to,
    }
}

/// A CK a pop wrote when it read: buffered (`addCk`) or stored at once (`addCkJustOffset`);
/// not the CK a changeInvisibleTime or a re-put writes for an older read.
pub(crate) fn is_pop_ck(kind: &EventKind) -> bool {
    match kind {
        EventKind::Broker(BrokerEvent::CkBuffered { .. }) => true,
        EventKind::Broker(BrokerEvent::CkWritten { reason, .. }) => {
            reason == "PopBufferMergeService.addCkJustOffset"
        }
        _ => false,
    }
}

/// What each broker crash rolled back, for telling a crash replay from a redelivery bug.
///
/// A crash loses everything `PopBufferMergeService` held (buffered CKs, their merged acks,
/// the offset queues behind `getLatestOffset`) and every offsetTable write since the last
/// `ConsumerOffsetManager.persist()`; the restart reads the persisted image back. A POP then
/// reads from that restored commit offset, so every message between it and where the broker
/// had read before the crash is popped once more, whatever acks came before or after.
pub(crate) struct Rollbacks<'h> {
    /// (crash index, restored commit offsets, read ends before the crash), in order.
    crashes: Vec<(usize, OffsetImage<'h>, OffsetImage<'h>)>,
}

/// (group, topic, queue) → offset.
type OffsetImage<'h> = BTreeMap<(&'h str, &'h str, u32), i64>;

impl<'h> Rollbacks<'h> {
    pub fn new(h: &'h History, pops: &PopPositions) -> Self {
        let mut table: OffsetImage = BTreeMap::new();
        let mut persisted: OffsetImage = BTreeMap::new();
        // One past the highest offset any pop had read, from its CK, its read, the pull
        // offset its read committed, or a delivery (orderly pops write no CK; a pop whose
        // answer was lost is seen only by its CK, or on the KV path by its read).
        let mut read_end: OffsetImage = BTreeMap::new();
        let mut crashes: Vec<(usize, OffsetImage, OffsetImage)> = Vec::new();

        for (idx, e) in h.events.iter().enumerate() {
            match &e.kind {
                // After a restart `ConsumerOrderInfoManager` holds its last persisted image
                // (every 10 s), which may lack acks the offset flush already covered: the next
                // `ackOrderly`'s `commitAndNext` then commits an offset the restored OrderInfo
                // still has un-acked, below the restored commit offset. That is the crash's
                // rollback too.
                EventKind::Broker(BrokerEvent::OffsetCommitted {
                    group,
                    topic,
                    queue_id,
                    offset,
                    reason,
                    ..
                }) if reason.starts_with("ackOrderly")
                    && table
                        .get(&(group.as_str(), topic.as_str(), *queue_id))
                        .is_some_and(|v| offset < v)
                    && !crashes.is_empty() =>
                {
                    let key = (group.as_str(), topic.as_str(), *queue_id);
                    if let Some((_, restored, _)) = crashes.last_mut() {
                        let r = restored.entry(key).or_insert(*offset);
                        *r = (*r).min(*offset);
                    }
                    table.insert(key, *offset);
                }
                EventKind::Broker(BrokerEvent::OffsetCommitted {
                    group,
                    topic,
                    queue_id,
                    offset,
                    ..
                })
                | EventKind::Broker(BrokerEvent::ResetAssigned {
                    group,
                    topic,
                    queue_id,
                    offset,
                    wrote_offset_table: true,
                    ..
                }) => {
                    table.insert((group, topic, *queue_id), *offset);
                }
                EventKind::Broker(BrokerEvent::OffsetsPersisted { .. }) => {
                    persisted = table.clone();
                }
                EventKind::Broker(BrokerEvent::CkBuffered { ck, .. })
                | EventKind::Broker(BrokerEvent::CkWritten { ck, .. }) => {
                    let q = copy_key(&ck.topic, ck.queue_id, 0).1;
                    read_past(
                        &mut read_end,
                        (&ck.group, &ck.topic, q),
                        (ck.start_offset + ck.num as u64) as i64,
                    );
                }
                EventKind::Broker(BrokerEvent::PopRead {
                    group,
                    topic,
                    queue_id,
                    offset,
                    count,
                    ..
                }) => {
                    let q = copy_key(topic, *queue_id, 0).1;
                    read_past(
                        &mut read_end,
                        (group, topic, q),
                        (offset + u64::from(*count)) as i64,
                    );
                }
                // A `PopRead` counts what the queue held when the pop took its offset; the
                // read itself runs later and returns what was stored meanwhile too. On the
                // KV path its end is the pull offset the read then commits
                // (`PopConsumerService.handleGetMessageResult` → `commitPullOffset` of
                // `nextBeginOffset`, non-FIFO), which a crash loses (`decode` restores
                // offsetTable only), so the next pop reads from the commit offset again.
                EventKind::Broker(BrokerEvent::PullOffsetCommitted {
                    group,
                    topic,
                    queue_id,
                    offset,
                    reason,
                    ..
                }) if reason == "PopConsumerService" => {
                    let q = copy_key(topic, *queue_id, 0).1;
                    read_past(&mut read_end, (group, topic, q), *offset);
                }
                EventKind::Delivered {
                    group,
                    topic,
                    queue_id,
                    queue_offset,
                    retry_topic,
                    ..
                } => {
                    let (t, q, o) = copy_key(
                        retry_topic.as_deref().unwrap_or(topic),
                        *queue_id,
                        *queue_offset,
                    );
                    read_past(&mut read_end, (group, t, q), o as i64 + 1);
                    // Popped before a crash recorded ahead of this receipt: that crash's
                    // broker had read it too.
                    let popped = pops.of(idx).after_from;
                    for (c, _, end) in crashes.iter_mut().rev() {
                        if *c < popped {
                            break;
                        }
                        read_past(end, (group, t, q), o as i64 + 1);
                    }
                }
                // A graceful shutdown (`BrokerController.shutdown`: the CK buffer drained,
                // offsetTable and OrderInfo persisted) keeps what a restart reads back: a
                // re-pop after it is no crash's replay. Where the restart still rolls a read
                // position back (the KV path's, which lives in the never-persisted
                // pullOffsetTable, finding F31), the redelivery is judged.
                EventKind::Broker(BrokerEvent::Crashed { graceful, .. }) => {
                    if !graceful {
                        crashes.push((idx, persisted.clone(), read_end.clone()));
                    }
                    table = persisted.clone();
                }
                _ => {}
            }
        }
        Self { crashes }
    }
}

fn read_past<'h>(image: &mut OffsetImage<'h>, key: (&'h str, &'h str, u32), end: i64) {
    let e = image.entry(key).or_insert(end);
    *e = (*e).max(end);
}

impl Rollbacks<'_> {
    /// The latest crash with an event index at or after `from` that rolled `group`'s read
    /// position on (topic, queue) back to `offset` or below after the broker had read past
    /// it (as [`Rollbacks::replay_between`] judges one).
    pub fn last_replay_from(
        &self,
        group: &str,
        (topic, queue, offset): CopyKey<'_>,
        from: usize,
    ) -> Option<usize> {
        let key = (group, topic, queue);
        let i = self.crashes.partition_point(|c| c.0 < from);
        self.crashes[i..]
            .iter()
            .rev()
            .find(|(_, restored, read_end)| {
                restored.get(&key).is_none_or(|r| *r <= offset as i64)
                    && read_end.get(&key).is_some_and(|r| offset < *r as u64)
            })
            .map(|c| c.0)
    }

    /// The first crash with an event index in `from..to` that rolled `group`'s read
    /// position on (topic, queue) back to `offset` or below after the broker had read past
    /// it: the restored commit offset (none counts as below) ≤ `offset` < the highest offset
    /// read before the crash.
    pub fn replay_between(
        &self,
        group: &str,
        (topic, queue, offset): CopyKey<'_>,
        from: usize,
        to: usize,
    ) -> Option<usize> {
        let key = (group, topic, queue);
        let i = self.crashes.partition_point(|c| c.0 < from);
        self.crashes[i..]
            .iter()
            .take_while(|c| c.0 < to)
            .find(|(_, restored, read_end)| {
                restored.get(&key).is_none_or(|r| *r <= offset as i64)
                    && read_end.get(&key).is_some_and(|r| offset < *r as u64)
            })
            .map(|c| c.0)
    }
}

/// When a receipt stops protecting its copy: `popTime + invisibleTime` as the handle spells
/// it, or `fallback` for a handle that does not parse.
pub(crate) fn receipt_deadline(receipt: &str, fallback: Millis) -> Millis {
    ExtraInfo::parse(receipt).map_or(fallback, |e| e.pop_time + e.invisible_time)
}

/// Where a message was first stored: its topic, queue and offset.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Origin {
    pub topic: Name,
    pub queue: u32,
    pub offset: u64,
}

/// The gRPC proxy's filter dead-lettered a message out of a pop it made for a client
/// (`PopMessageResultFilterImpl`: reconsumeTimes ≥ maxAttempts, so
/// `ProducerProcessor.forwardMessageToDeadLetterQueue` sent it back instead of handing it
/// out): a `SentToDlq` recorded on a node other than the consumer's. No client got that
/// entry of the pop. Returns (group, consumer, message).
pub(crate) fn proxy_dead_lettered(e: &Event) -> Option<(&str, &str, &str)> {
    match &e.kind {
        EventKind::SentToDlq {
            consumer,
            group,
            msg_id,
            ..
        } if *e.node != **consumer => Some((group, consumer, msg_id)),
        _ => None,
    }
}

/// The proxy's ack of what its filter dead-lettered out of an orderly pop names that pop's
/// batch by its handle: the handle parsed, when it is an orderly pop's out of the message's
/// original topic, with the message's origin.
pub(crate) fn dead_lettered_orderly_handle<'o>(
    receipt: &str,
    msg_id: &str,
    origins: &'o BTreeMap<&str, Origin>,
) -> Option<(ExtraInfo, &'o Origin)> {
    let x = ExtraInfo::parse(receipt)?;
    let origin = origins.get(msg_id)?;
    (x.revive_qid == POP_ORDER_REVIVE_QUEUE && x.topic_type == 0).then_some((x, origin))
}

/// Each message's origin: from its `Produced` event, else from its first delivery out of the
/// original topic (a history may leave producers out).
pub(crate) fn origins(h: &History) -> BTreeMap<&str, Origin> {
    let mut out: BTreeMap<&str, Origin> = BTreeMap::new();
    for e in &h.events {
        match &e.kind {
            EventKind::Produced {
                msg_id,
                topic,
                queue_id,
                queue_offset,
                ..
            } => {
                out.insert(
                    msg_id,
                    Origin {
                        topic: topic.clone(),
                        queue: *queue_id,
                        offset: *queue_offset,
                    },
                );
            }
            EventKind::Delivered {
                msg_id,
                topic,
                queue_id,
                queue_offset,
                retry_topic: None,
                ..
            } => {
                out.entry(msg_id).or_insert_with(|| Origin {
                    topic: topic.clone(),
                    queue: *queue_id,
                    offset: *queue_offset,
                });
            }
            _ => {}
        }
    }
    out
}

/// A reset the broker applied to one queue.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct ResetPoint {
    /// The broker's `ResetAssigned`, or the admin's successful `ResetResult` when the history
    /// has no broker event for it.
    pub idx: usize,
    pub at: Millis,
    pub group: Name,
    pub topic: Name,
    pub queue: u32,
    pub offset: i64,
    /// The request named every queue (`queueId = −1`).
    pub all_queues: bool,
}

/// One admin reset request, as `resets` matches the broker's assignments and the answer to it.
struct ResetRequest<'h> {
    /// The `ResetRequested` event.
    idx: usize,
    client: &'h str,
    queue_id: i32,
    /// The offset the request names, if any.
    offset: Option<i64>,
    /// The offsets of its successful answer, wherever that comes in the history.
    answer: Option<&'h [(u32, i64)]>,
    /// Queues the broker assigned for this request so far.
    assigned: Vec<u32>,
    answered: bool,
}

impl ResetRequest<'_> {
    fn names(&self, q: u32) -> bool {
        self.queue_id < 0 || self.queue_id == q as i32
    }

    /// How well an assignment of queue `q` to `x` fits this request: a one-queue request
    /// that names an offset assigns exactly it (`resetOffsetInner` answers an error for one
    /// out of range and assigns nothing), and a successful answer lists every queue the
    /// request assigned with its offset.
    fn fit(&self, q: u32, x: i64) -> u8 {
        let offset_fits = match self.offset {
            Some(y) if self.queue_id >= 0 && y != -1 => y == x,
            _ => true,
        };
        let answer_lists = self.answer.is_some_and(|a| a.contains(&(q, x)));
        2 * u8::from(offset_fits) + u8::from(answer_lists)
    }
}

/// The oldest reset request of the same group, topic, client and queueId still out when an
/// answer comes: the one the answer belongs to.
fn answered_request<'a, 'h>(
    rs: &'a mut [ResetRequest<'h>],
    client: &str,
    queue_id: i32,
) -> Option<&'a mut ResetRequest<'h>> {
    let r = rs
        .iter_mut()
        .find(|r| !r.answered && r.client == client && r.queue_id == queue_id)?;
    r.answered = true;
    Some(r)
}

fn reset_request<'h>(idx: usize, client: &'h str, queue_id: i32) -> ResetRequest<'h> {
    ResetRequest {
        idx,
        client,
        queue_id,
        offset: None,
        answer: None,
        assigned: Vec::new(),
        answered: false,
    }
}

/// Every reset of one queue, in history order.
///
/// The admin tool sends each reset on its own (`DefaultMQAdminExt.resetOffset…`), so two
/// requests of one topic@group can be out at once: an all-queue reset the broker is still
/// working through (the KV path cleans each queue up in turn) and a one-queue reset sent
/// meanwhile. An answer belongs to the oldest request still out of the same client and
/// queueId. An assignment belongs to a request still out that names its queue and has not
/// assigned it yet (a request assigns each queue once): the one that fits it best (a
/// one-queue request's named offset, then its own answer's list), the oldest of those. A
/// request that never reached the broker stays out until its timeout, so the oldest alone
/// would take a newer request's assignment. The answer adds a point only for a queue its
/// own request never assigned.
pub(crate) fn resets(h: &History) -> Vec<ResetPoint> {
    let mut out = Vec::new();
    // Each request's successful answer, by the request's index, for the assignments that
    // come before it.
    let mut answers: BTreeMap<usize, &[(u32, i64)]> = BTreeMap::new();
    {
        let mut out_by: BTreeMap<(&str, &str), Vec<ResetRequest>> = BTreeMap::new();
        for (idx, e) in h.events.iter().enumerate() {
            match &e.kind {
                EventKind::ResetRequested {
                    client,
                    group,
                    topic,
                    queue_id,
                    ..
                } => out_by
                    .entry((group, topic))
                    .or_default()
                    .push(reset_request(idx, client, *queue_id)),
                EventKind::ResetResult {
                    client,
                    group,
                    topic,
                    queue_id,
                    outcome,
                    offsets,
                } => {
                    let Some(rs) = out_by.get_mut(&(group.as_str(), topic.as_str())) else {
                        continue;
                    };
                    if let Some(r) = answered_request(rs, client, *queue_id) {
                        if is_success(outcome) {
                            answers.insert(r.idx, offsets);
                        }
                    }
                }
                _ => {}
            }
        }
    }
    // (group, topic) → its requests, in history order.
    let mut requested: BTreeMap<(&str, &str), Vec<ResetRequest>> = BTreeMap::new();
    // (group, topic, queue) → index of the latest broker assignment.
    let mut assigned: BTreeMap<(&str, &str, u32), usize> = BTreeMap::new();
    for (idx, e) in h.events.iter().enumerate() {
        match &e.kind {
            EventKind::ResetRequested {
                client,
                group,
                topic,
                queue_id,
                offset,
            } => {
                requested
                    .entry((group, topic))
                    .or_default()
                    .push(ResetRequest {
                        offset: *offset,
                        answer: answers.get(&idx).copied(),
                        ..reset_request(idx, client, *queue_id)
                    });
            }
            EventKind::Broker(BrokerEvent::ResetAssigned {
                group,
                topic,
                queue_id,
                offset,
                ..
            }) => {
                assigned.insert((group, topic, *queue_id), idx);
                let q = *queue_id;
                let all_queues = requested
                    .get_mut(&(group.as_str(), topic.as_str()))
                    .and_then(|rs| {
                        let x = *offset;
                        let best = rs
                            .iter()
                            .filter(|r| !r.answered && r.names(q) && !r.assigned.contains(&q))
                            .map(|r| r.fit(q, x))
                            .max();
                        if let Some(r) = best.and_then(|best| {
                            rs.iter_mut().find(|r| {
                                !r.answered
                                    && r.names(q)
                                    && !r.assigned.contains(&q)
                                    && r.fit(q, x) == best
                            })
                        }) {
                            r.assigned.push(q);
                            return Some(r.queue_id < 0);
                        }
                        // No request out names it (the admin gave up on it and the broker
                        // applied it late): the latest one that names it, else the latest.
                        rs.iter()
                            .rev()
                            .find(|r| r.names(q))
                            .or(rs.last())
                            .map(|r| r.queue_id < 0)
                    })
                    .unwrap_or(false);
                out.push(ResetPoint {
                    idx,
                    at: e.at,
                    group: group.clone(),
                    topic: topic.clone(),
                    queue: q,
                    offset: *offset,
                    all_queues,
                });
            }
            EventKind::ResetResult {
                client,
                group,
                topic,
                queue_id,
                outcome,
                offsets,
            } => {
                let request = requested
                    .get_mut(&(group.as_str(), topic.as_str()))
                    .and_then(|rs| answered_request(rs, client, *queue_id));
                let request = request.map(|r| &*r);
                if !is_success(outcome) {
                    continue;
                }
                for (q, x) in offsets {
                    let seen = match request {
                        Some(r) => r.assigned.contains(q),
                        None => assigned.contains_key(&(group.as_str(), topic.as_str(), *q)),
                    };
                    if !seen && *x >= 0 {
                        out.push(ResetPoint {
                            idx,
                            at: e.at,
                            group: group.clone(),
                            topic: topic.clone(),
                            queue: *q,
                            offset: *x,
                            all_queues: *queue_id < 0,
                        });
                    }
                }
            }
            _ => {}
        }
    }
    out
}

/// Resets by (group, topic, queue), for "was this queue reset between i and j" questions.
pub(crate) struct ResetIndex(BTreeMap<(Name, Name, u32), BTreeMap<usize, i64>>);

impl ResetIndex {
    /// Each reset at its assignment and, when a pop took it, at that `ResetConsumed` too:
    /// a read that started before the assignment's effect (its offset computed while the
    /// reset was not yet pending, or a read that did not take it) is replayed when the reset
    /// is applied. A pop applies the offset its `ResetConsumed` names, which need not be the
    /// latest assignment's: under `reset-table-survives-restart` a restart restores
    /// resetOffsetTable from the last persist, so a reset taken (or overwritten) after that
    /// persist is pending again, and a pop takes it after a newer assignment was taken.
    pub fn new(h: &History, points: &[ResetPoint]) -> Self {
        let mut m: BTreeMap<(Name, Name, u32), BTreeMap<usize, i64>> = BTreeMap::new();
        for p in points {
            m.entry((p.group.clone(), p.topic.clone(), p.queue))
                .or_default()
                .insert(p.idx, p.offset);
        }
        for (i, e) in h.events.iter().enumerate() {
            let EventKind::Broker(BrokerEvent::ResetConsumed {
                group,
                topic,
                queue_id,
                offset,
                ..
            }) = &e.kind
            else {
                continue;
            };
            let Some(q) = m.get_mut(&(group.clone(), topic.clone(), *queue_id)) else {
                continue;
            };
            // The reset it took, as `queryThenEraseResetOffset` returned it.
            q.insert(i, *offset);
        }
        Self(m)
    }

    /// The first reset of `group`'s (topic, queue) to an offset ≤ `offset` with an event
    /// index in `from..to`. Resets are rare, so walking the range is cheap.
    pub fn rewind_between(
        &self,
        group: &str,
        topic: &str,
        queue: u32,
        offset: u64,
        from: usize,
        to: usize,
    ) -> Option<usize> {
        let m = self
            .0
            .get(&(group.to_owned().into(), topic.to_owned().into(), queue))?;
        m.range(from..to.max(from))
            .find(|(_, x)| **x <= offset as i64)
            .map(|(i, _)| *i)
    }
}

/// A stored copy of a message: (topic, queue, offset). Retry topics have one queue, so retry
/// copies are keyed with queue 0 whatever a record says.
pub(crate) type CopyKey<'h> = (&'h str, u32, u64);

pub(crate) fn copy_key(topic: &str, queue: u32, offset: u64) -> CopyKey<'_> {
    (topic, if is_retry_topic(topic) { 0 } else { queue }, offset)
}

/// Offsets the broker marked acked for one checkpoint: an ack merged into the buffer
/// (`PopBufferMergeService.addAk`, one offset) or an ACK record written (`AckWritten`, its
/// offsets). The checkpoint is keyed as an ack names it: (group, copy's queue and start,
/// popTime), the queue through [`copy_key`].
pub(crate) struct BrokerAck<'h> {
    pub group: &'h str,
    /// The checkpoint's topic (a retry topic for a retry copy).
    pub topic: &'h str,
    pub queue: u32,
    pub start: u64,
    pub pop_time: Millis,
    pub offsets: &'h [u64],
    /// The record `ChangeInvisibleTimeProcessor.ackOrigin` wrote for the receipt a
    /// changeInvisibleTime replaced, not a consumer's ack.
    pub ack_origin: bool,
}

/// The offsets `kind` marks acked, if it is an `AckMergedInBuffer` or an `AckWritten`.
pub(crate) fn broker_ack(kind: &EventKind) -> Option<BrokerAck<'_>> {
    let EventKind::Broker(b) = kind else {
        return None;
    };
    let (topic, queue, start, group, pop_time, offsets, ack_origin) = match b {
        BrokerEvent::AckMergedInBuffer { ck, ack_offset, .. } => (
            &ck.topic,
            ck.queue_id,
            ck.start_offset,
            &ck.group,
            ck.pop_time,
            std::slice::from_ref(ack_offset),
            false,
        ),
        BrokerEvent::AckWritten {
            topic,
            group,
            queue_id,
            start_offset,
            pop_time,
            ack_offsets,
            reason,
            ..
        } => (
            topic,
            *queue_id,
            *start_offset,
            group,
            *pop_time,
            &ack_offsets[..],
            reason == broker_core::events::ACK_ORIGIN_REASON,
        ),
        _ => return None,
    };
    let (topic, queue, start) = copy_key(topic, queue, start);
    Some(BrokerAck {
        group,
        topic,
        queue,
        start,
        pop_time,
        offsets,
        ack_origin,
    })
}

/// A CK as a receipt names it, in one group: (group, copy, popTime). The CK's start offset
/// is left out on purpose: a re-put CK (`rePutCK`) starts at the message's own offset but
/// keeps the popTime, and one copy is never popped twice in the same millisecond.
pub(crate) type CkKey<'h> = (&'h str, CopyKey<'h>, Millis);

/// The CK a receipt handle names (its popTime; the delivery's own for a handle that does
/// not parse).
pub(crate) fn ck_key<'h>(
    group: &'h str,
    copy: CopyKey<'h>,
    receipt: &str,
    pop_time: Millis,
) -> CkKey<'h> {
    (
        group,
        copy,
        ExtraInfo::parse(receipt).map_or(pop_time, |i| i.pop_time),
    )
}

/// The CK a receipt handle names, as [`ck_owner`] tells CKs of one key apart: its invisible
/// time, start offset and revive queue (the event's invisible time, and neither of the others,
/// for a handle that does not parse).
pub(crate) fn receipt_ck(receipt: &str, invisible_time: Millis) -> CkShape {
    ExtraInfo::parse(receipt).map_or((invisible_time, None, None), |i| {
        (
            i.invisible_time,
            Some(i.ck_queue_offset),
            Some(i.revive_qid),
        )
    })
}

/// A CK's invisible time, start offset and revive queue (the handle's `reviveQid`: a pop's
/// CK and a changeInvisibleTime's, `ChangeInvisibleTimeProcessor.appendCheckPoint`, go to the
/// revive queue the handle names).
pub(crate) type CkShape = (Millis, Option<u64>, Option<u32>);

/// A revived CK as [`ck_owner`] matches it: invisible time, start offset, and the revive
/// queue it was read from, when known ([`ReviveQueues`]).
pub(crate) type RevivedCk = (Millis, u64, Option<u32>);

/// The revive queue of the CK being revived: the reviver records its `ReviveDecided` for a CK
/// just before that CK's `Revived` events. A revive without one (the KV path's records) has
/// none.
#[derive(Default)]
pub(crate) struct ReviveQueues<'h>(Option<(&'h CkRef, u32)>);

impl<'h> ReviveQueues<'h> {
    /// Notes a reviver's decision; every event goes through here, in order.
    pub(crate) fn see(&mut self, e: &'h EventKind) {
        if let EventKind::Broker(BrokerEvent::ReviveDecided { ck, revive_qid, .. }) = e {
            self.0 = Some((ck, *revive_qid));
        }
    }

    /// `ck` as the owner rule matches it, from a `Revived` event's CK.
    pub(crate) fn revived(&self, ck: &CkRef) -> RevivedCk {
        let rq = self.0.filter(|(c, _)| **c == *ck).map(|(_, q)| q);
        (ck.invisible_time, ck.start_offset, rq)
    }
}

/// Which of the receipts whose CKs share a revived CK's key (group, copy, popTime) the
/// revived CK is, from `(the receipt's CK shape, receipt)` ([`CkShape`]) in
/// recorded order: the latest with the same invisible time and start, else the latest with
/// the same invisible time, else the one with the longest invisible time below the CK's
/// (`PopReviveService.rePutCK` keeps a CK's popTime, starts the re-put CK at the message's own
/// offset and, once the CK is past its revive time, stretches its invisible time by the
/// re-put interval). A changeInvisibleTime's CK and a pop's CK may share the millisecond, with
/// the same invisible time (the proxy renews to 60 s and pops with 60 s) but not the same
/// start (the change's CK starts at the message, a pop's at its read); the reviver's key has
/// neither. A receipt whose handle names another revive queue than the one the CK was read
/// from is not its owner (proxy-random 13001, `handle-key-per-delivery`: the proxy renewed two
/// deliveries of one copy in one millisecond; the renewal whose `ackOrigin` failed left a CK
/// with the other's shape in its own handle's revive queue).
pub(crate) fn ck_owner<T: Copy>(candidates: &[(CkShape, T)], ck: RevivedCk) -> Option<T> {
    let (ck_invisible, ck_start, ck_rq) = ck;
    let same_queue = |rq: &Option<u32>| rq.is_none() || ck_rq.is_none() || *rq == ck_rq;
    let live = || (candidates.iter().rev()).filter(|((_, _, rq), _)| same_queue(rq));
    live()
        .find(|((inv, start, _), _)| *inv == ck_invisible && *start == Some(ck_start))
        .or_else(|| live().find(|((inv, _, _), _)| *inv == ck_invisible))
        .or_else(|| {
            // Only the classic reviver re-puts a CK under its popTime (the KV path's revive
            // writes a failed record back with popTime = now): a record's stretched shape is
            // another record, such as a change whose answer was lost (proxy-random 25921).
            ck_rq?;
            live()
                .filter(|((inv, _, _), _)| *inv < ck_invisible)
                .max_by_key(|((inv, _, _), _)| *inv)
        })
        .map(|(_, owner)| *owner)
}

/// Why a message reached a group again (or for the first time).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum DeliveryClass {
    First,
    /// After an effective ack (see [`analyse_acks`]): a duplicate the invariants forbid.
    AfterAck {
        ack: usize,
        acked_delivery: usize,
    },
    /// A retry copy that was already in flight when the ack came (revived before it, from a
    /// receipt chain the ack did not cover, e.g. one that outlived a broker crash).
    ConcurrentCopy,
    /// Replayed because its queue was reset to an offset at or below it.
    ResetReplay {
        reset: usize,
    },
    /// The previous receipt was moved by a changeInvisibleTime (a nack or a delay).
    AfterNack,
    /// The previous receipt lapsed without an effective ack.
    AfterTimeout,
}

/// How an acked message came back.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum ComebackKind {
    /// The broker revived it into the retry topic.
    Revive,
    /// A retry copy was delivered.
    RetryDelivery,
    /// The original was popped again.
    RePop,
}

/// A revive or delivery of a message after its effective ack, with no reset to excuse it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct AfterAck {
    pub idx: usize,
    pub group: Name,
    pub msg_id: Name,
    pub kind: ComebackKind,
    pub ack: usize,
    pub acked_delivery: usize,
    pub crash_between: bool,
}

#[derive(Debug, Default)]
pub(crate) struct AckAnalysis {
    /// Every `Delivered` event's class, by event index.
    pub classes: BTreeMap<usize, DeliveryClass>,
    pub after_ack: Vec<AfterAck>,
    /// Acks that count (see [`analyse_acks`]), by event index.
    pub effective_acks: Vec<usize>,
    /// (ack index, delivery index) for every delivery an effective ack covered, in ack order.
    pub acked: Vec<(usize, usize)>,
}

/// The effective ack of a message's current delivery.
#[derive(Clone, Copy)]
struct Acked<'h> {
    ack: usize,
    /// The delivery that began the acked receipt's chain (its index names the chain), and
    /// the copy it handed out.
    delivery: usize,
    copy: CopyKey<'h>,
}

/// The latest receipt of a chain that a changeInvisibleTime made, and the node holding it (the
/// client it was made for, or the gRPC proxy once it renewed it). A chain without one is headed
/// by its delivery.
#[derive(Clone, Copy)]
struct Head<'h> {
    receipt: &'h str,
    holder: &'h str,
    deadline: Millis,
}

/// A chain's head: its latest change's receipt, else its delivery's (`chain` is the
/// delivery's event index).
fn chain_head<'h>(
    h: &'h History,
    heads: &LookupMap<(&str, usize), Head<'h>>,
    group: &str,
    chain: usize,
) -> Option<Head<'h>> {
    heads.get(&(group, chain)).copied().or_else(|| {
        let e = &h.events[chain];
        match &e.kind {
            EventKind::Delivered {
                pop_time,
                invisible_time,
                receipt,
                ..
            } => Some(Head {
                receipt,
                holder: &e.node,
                deadline: pop_time + invisible_time,
            }),
            _ => None,
        }
    })
}

struct MsgState<'h> {
    /// The receipt that currently protects the message in this group.
    current: &'h Name,
    /// The node that holds `current`: the consumer it was delivered to or whose
    /// changeInvisibleTime returned it, or the gRPC proxy once its handle table holds it
    /// (`HandleRenewed`; the client keeps the handle it received).
    current_holder: &'h Name,
    current_delivery: usize,
    acked: Option<Acked<'h>>,
    nacked: bool,
}

struct ReceiptState<'h> {
    msg_id: &'h Name,
    /// The delivery that began the chain this receipt belongs to (a delivery and its
    /// changeInvisibleTime successors; its event index names the chain), and the copy it
    /// hands out.
    delivery: usize,
    deadline: Millis,
    copy: CopyKey<'h>,
    /// Orderly deliveries: their batch and offset.
    /// Boxed: only orderly deliveries have one, and every receipt's entry would otherwise
    /// carry its 72 bytes (at 10⁶ deliveries the receipts table is the checker's largest).
    batch: Option<Box<(BatchKey<'h>, u64)>>,
}

/// An orderly pop's batch: (group, topic, queue, consumer, popTime).
type BatchKey<'h> = (&'h str, &'h str, u32, &'h str, Millis);

struct BatchEntry<'h> {
    msg_id: &'h Name,
    /// The entry's delivery, which names its receipt chain.
    delivery: usize,
    copy: CopyKey<'h>,
    acked: Option<usize>,
}

#[derive(Default)]
struct Batch<'h> {
    entries: BTreeMap<u64, BatchEntry<'h>>,
    /// Offsets below this one are effectively acked.
    prefix_end: Option<u64>,
}

impl<'h> Batch<'h> {
    /// Lowers the batch's start to `start` (the read start its handles name).
    fn starts_at(&mut self, start: u64) {
        self.prefix_end = Some(self.prefix_end.map_or(start, |p| p.min(start)));
    }

    /// Advances the acked prefix over consecutive acked entries (an offset with no entry,
    /// read by the pop but handed to no client and not acked, stops it); each offset is
    /// passed once per batch. Returns the entries passed.
    fn advance(&mut self) -> Vec<(&'h Name, usize, CopyKey<'h>)> {
        let mut newly = Vec::new();
        let Some(mut off) = self.prefix_end else {
            return newly;
        };
        let last = self.entries.keys().next_back().copied();
        while last.is_some_and(|l| off <= l) {
            match self.entries.get(&off) {
                Some(e) if e.acked.is_some() => {
                    newly.push((e.msg_id, e.delivery, e.copy));
                    off += 1;
                }
                _ => break,
            }
        }
        self.prefix_end = Some(if last.is_some_and(|l| off <= l) {
            off
        } else {
            u64::MAX
        });
        newly
    }
}

/// (group, topic, queue) → the broker's pop reads there: (event index of the `PopRead`, first
/// offset, count, popTime). The count is what the queue held when the pop took its offset;
/// the pop's CK, when it comes, says how far the read went (messages stored meanwhile).
type QueueReads<'h> = LookupMap<(&'h str, CopyKey<'h>), Vec<(usize, u64, u32, Millis)>>;

/// Follows every message through its receipts and decides which acks count and which
/// comebacks they forbid.
///
/// An ack is *effective* when the broker answered `SUCCESS`, the receipt was the message's
/// current one for that group (the latest delivery, or the handle a changeInvisibleTime
/// returned for it), and the answer arrived no later than that receipt's deadline
/// (`popTime + invisibleTime`). A non-orderly ack with an older receipt of the current chain
/// is effective too when the node that made it on a client's behalf (the gRPC proxy) had
/// itself been handed the current receipt and the answer came within its deadline (finding
/// F26). Any other stale or late ack is allowed to be undone by a revive that was already
/// due, which is at-least-once working as designed. For orderly deliveries an
/// ack counts only once every lower offset of the same batch is effectively acked, because
/// the broker's commit offset stops at the first un-acked entry and a re-pop restarts there.
///
/// After an effective ack, these count as the message coming back: the same copy delivered
/// again; the original popped again; a revive of a CK of the acked receipt chain; and the
/// delivery of a retry copy made by such a revive or by no recorded revive at all. A CK no
/// recorded receipt names belongs to a pop whose answer never reached a client, so nobody
/// could ack it and its revive is not a comeback. A retry copy revived from a chain the ack
/// did not cover (two chains of one message exist after a crash rolled an offset back, a
/// reset, or a lost pop answer) was already in flight and is classed
/// [`DeliveryClass::ConcurrentCopy`], unless the client acked that chain too: an ack the gRPC
/// proxy answered OK for a receipt of one chain but sent with another delivery's handle (its
/// table entry had been put for that delivery, [`EventKind::HandleRedirected`]; finding F30)
/// covers the named chain's CKs alive at the ack.
/// The orderly entries an ack's prefix advance passed are effectively acked by it, each if
/// it is still its message's current delivery in the group.
fn prefix_acked<'h>(
    msgs: &mut LookupMap<(&'h Name, &'h Name), MsgState<'h>>,
    out: &mut AckAnalysis,
    group: &'h Name,
    idx: usize,
    newly: Vec<(&'h Name, usize, CopyKey<'h>)>,
) {
    if !newly.is_empty() {
        out.effective_acks.push(idx);
    }
    for (msg_id, delivery, copy) in newly {
        if let Some(m) = msgs.get_mut(&(group, msg_id)) {
            if m.current_delivery == delivery && m.acked.is_none() {
                m.acked = Some(Acked {
                    ack: idx,
                    delivery,
                    copy,
                });
                out.acked.push((idx, delivery));
            }
        }
    }
}

/// A proxy's answer to a call on a client's behalf (`consumer` is the client): the key a
/// [`EventKind::HandleRedirected`] before it was noted under (group, client, handle sent),
/// and whether it was a successful ack.
fn redirect_answer(e: &Event) -> Option<((&str, &str, &str), bool)> {
    let (consumer, group, receipt, ok) = match &e.kind {
        EventKind::AckResult {
            consumer,
            group,
            receipt,
            outcome,
            ..
        } => (consumer, group, receipt, is_success(outcome)),
        EventKind::ChangeInvisibleResult {
            consumer,
            group,
            receipt,
            ..
        } => (consumer, group, receipt, false),
        _ => return None,
    };
    (e.node != *consumer).then_some(((group.as_str(), consumer.as_str(), receipt.as_str()), ok))
}

pub(crate) fn analyse_acks(f: &Facts) -> AckAnalysis {
    let h = f.h;
    let origins = f.origins();
    let resets = ResetIndex::new(h, f.resets());
    let mut out = AckAnalysis::default();
    // Point lookups only, never iterated: hash maps (fixed keys) spare the ordered maps'
    // string comparisons along shared prefixes (receipts, message ids).
    // Sized up front: growing a large table holds the old one and the new one at once.
    let deliveries = (h.events.iter())
        .filter(|e| matches!(e.kind, EventKind::Delivered { .. }))
        .count();
    // Keyed by the history's names (8 bytes each, not a 16-byte `&str`): at 10⁶ deliveries
    // these two are the checker's largest tables.
    let mut msgs: LookupMap<(&Name, &Name), MsgState> = lookup_map(deliveries);
    let mut receipts: LookupMap<(&Name, &Name), ReceiptState> = lookup_map(deliveries);
    let mut batches: LookupMap<BatchKey, Batch> = LookupMap::default();
    // A CK key → the receipt chains whose CKs have it, with each CK's invisible time: a
    // changeInvisibleTime's CK and a pop's CK of the same copy written in the same
    // millisecond share the key (and the reviver's merge key) and differ in invisible time.
    let mut by_ck: LookupMap<CkKey, Vec<(CkShape, usize)>> = lookup_map(deliveries);
    // Retry copy → (revive index, whether that revive came back after an ack).
    let mut revived: LookupMap<(&str, CopyKey), (usize, bool)> = LookupMap::default();
    // (group, copy) → its latest delivery.
    let mut copy_delivered: LookupMap<(&str, CopyKey), usize> = lookup_map(deliveries);
    let mut last_crash: Option<usize> = None;

    let pops = f.pops();
    let rollbacks = f.rollbacks();
    // A delivery after an effective ack is excused by a crash only as a crash replay: the
    // restart rolled the read position back over a copy the broker had read since it last
    // handed this copy out ([`Rollbacks`]). The first delivery of a retry copy revived after
    // a crash that followed the ack is excused too: the crash lost that ack from the CK
    // buffer, and the revive itself is judged (and excused) on its own.
    let crash_replay = |group: &str,
                        copy: CopyKey,
                        prev_of_copy: Option<usize>,
                        idx: usize,
                        ack_lost: bool|
     -> bool {
        let from = prev_of_copy.map_or(0, |p| pops.of(p).after_from);
        (ack_lost && prev_of_copy.is_none())
            || rollbacks
                .replay_between(group, copy, from, pops.of(idx).before_to)
                .is_some()
    };
    // A reset after `from` (an event index) and before the later event (a pop, or a revive)
    // rewinds the queue over the message.
    let excuse_from = |group: &str, msg_id: &str, from: usize, until: usize| -> Option<usize> {
        let o = origins.get(msg_id)?;
        let to = pops.of(until).before_to;
        resets.rewind_between(group, &o.topic, o.queue, o.offset, from, to)
    };
    // ... after the earlier delivery's pop.
    let excuse = |group: &str, msg_id: &str, since: usize, until: usize| -> Option<usize> {
        excuse_from(group, msg_id, pops.of(since).after_from, until)
    };
    let mut reads: QueueReads = LookupMap::default();
    // (group, chain) → its head, once a change made one ([`Head`]).
    let mut heads: LookupMap<(&str, usize), Head> = LookupMap::default();
    // (group, client, handle sent) → the chain of the receipt the client named (a chain is
    // its delivery's event index), for a call the proxy redirected, until its answer.
    let mut redirecting: LookupMap<(&str, &str, &str), usize> = LookupMap::default();
    // (group, chain) → the proxy's `AckResult` answered OK for a receipt of that chain and
    // sent with another delivery's handle ([`EventKind::HandleRedirected`]).
    let mut redirected: LookupMap<(&str, usize), usize> = LookupMap::default();
    // (group, consumer, message) the proxy's filter dead-lettered.
    let mut filtered: BTreeSet<(&str, &str, &str)> = BTreeSet::new();

    let mut revive_queues = ReviveQueues::default();
    for (idx, e) in h.events.iter().enumerate() {
        revive_queues.see(&e.kind);
        if let Some((key, ok)) = redirect_answer(e) {
            if let (Some(chain), true) = (redirecting.remove(&key), ok) {
                redirected.insert((key.0, chain), idx);
            }
        }
        match &e.kind {
            EventKind::HandleRedirected {
                consumer,
                group,
                receipt,
                current,
                ..
            } => {
                // A non-orderly receipt: an orderly entry is replaced by design (a re-pop of
                // the batch, #6755), and its acks are judged by the batch.
                if let Some(r) = (receipts.get(&(group, receipt))).filter(|r| r.batch.is_none()) {
                    let key = (group.as_str(), consumer.as_str(), current.as_str());
                    redirecting.insert(key, r.delivery);
                }
            }
            EventKind::Delivered {
                consumer,
                group,
                msg_id,
                topic,
                queue_id,
                queue_offset,
                retry_topic,
                pop_time,
                invisible_time,
                receipt,
                orderly,
                ..
            } => {
                let copy = copy_key(
                    retry_topic.as_deref().unwrap_or(topic),
                    *queue_id,
                    *queue_offset,
                );
                let prev_of_copy = copy_delivered.insert((group, copy), idx);
                let class = match msgs.get(&(group, msg_id)) {
                    None => DeliveryClass::First,
                    Some(st) => {
                        let since = st.acked.map_or(st.current_delivery, |a| a.delivery);
                        let mut from = pops.of(since).after_from;
                        if retry_topic.is_none() && st.acked.is_some() {
                            // A re-pop of the original after an ack of another copy (a retry
                            // copy delivered after the reset, while the reset's replay of the
                            // original was pending): a reset counts from the group's last
                            // read of this offset before this pop (a `PopRead` covering it,
                            // which also sees pops whose answer was lost), else from the
                            // copy's previous delivery.
                            let before = pops.of(idx).before_to;
                            let read = (reads
                                .get(&(group.as_str(), copy_key(topic, *queue_id, 0))))
                            .and_then(|v| {
                                v.iter().rev().find(|(r, o, n, _)| {
                                    *r < before
                                        && *o <= *queue_offset
                                        && *queue_offset < o + u64::from(*n)
                                })
                            })
                            .map(|(r, ..)| r + 1);
                            let prev = prev_of_copy.map(|p| pops.of(p).after_from);
                            if let Some(last) = read.max(prev) {
                                from = from.min(last);
                            }
                        }
                        // A copy of the original read before a reset that the acked copy's
                        // read followed (its answer reached the client late) is the copy the
                        // reset rewound past, not a pop after the ack: the reset between the
                        // two reads excuses it.
                        let read_before = || {
                            let a = st.acked.filter(|_| retry_topic.is_none())?;
                            excuse_from(group, msg_id, pops.of(idx).after_from, a.delivery)
                        };
                        match (
                            excuse_from(group, msg_id, from, idx).or_else(read_before),
                            st.acked,
                        ) {
                            (Some(reset), _) => DeliveryClass::ResetReplay { reset },
                            (None, Some(a)) => {
                                let older = retry_topic.is_some()
                                    && copy != a.copy
                                    && revived
                                        .get(&(group.as_str(), copy))
                                        .is_some_and(|(r, came_back)| *r < a.ack || !came_back);
                                if older {
                                    DeliveryClass::ConcurrentCopy
                                } else {
                                    out.after_ack.push(AfterAck {
                                        idx,
                                        group: group.clone(),
                                        msg_id: msg_id.clone(),
                                        kind: if retry_topic.is_some() {
                                            ComebackKind::RetryDelivery
                                        } else {
                                            ComebackKind::RePop
                                        },
                                        ack: a.ack,
                                        acked_delivery: a.delivery,
                                        crash_between: crash_replay(
                                            group,
                                            copy,
                                            prev_of_copy,
                                            idx,
                                            retry_topic.is_some()
                                                && last_crash.is_some_and(|c| c > a.ack),
                                        ),
                                    });
                                    DeliveryClass::AfterAck {
                                        ack: a.ack,
                                        acked_delivery: a.delivery,
                                    }
                                }
                            }
                            (None, None) if st.nacked => DeliveryClass::AfterNack,
                            (None, None) => DeliveryClass::AfterTimeout,
                        }
                    }
                };
                out.classes.insert(idx, class);
                (by_ck
                    .entry(ck_key(group, copy, receipt, *pop_time))
                    .or_default())
                .push((receipt_ck(receipt, *invisible_time), idx));
                let batch = orderly.then(|| {
                    let key: BatchKey = (group, topic, *queue_id, consumer, *pop_time);
                    let b = batches.entry(key).or_default();
                    b.entries.insert(
                        *queue_offset,
                        BatchEntry {
                            msg_id,
                            delivery: idx,
                            copy,
                            acked: None,
                        },
                    );
                    // The batch starts where its pop read from, which its handles name:
                    // a message the proxy's filter dead-lettered out of it has no delivery.
                    let start = ExtraInfo::parse(receipt)
                        .map_or(*queue_offset, |x| x.ck_queue_offset.min(*queue_offset));
                    b.starts_at(start);
                    Box::new((key, *queue_offset))
                });
                receipts.insert(
                    (group, receipt),
                    ReceiptState {
                        msg_id,
                        delivery: idx,
                        deadline: pop_time + invisible_time,
                        copy,
                        batch,
                    },
                );
                msgs.insert(
                    (group, msg_id),
                    MsgState {
                        current: receipt,
                        current_holder: &e.node,
                        current_delivery: idx,
                        acked: None,
                        nacked: false,
                    },
                );
            }
            EventKind::HandleRenewed {
                group,
                msg_id,
                new_receipt,
                ..
            } => {
                if let Some(m) = msgs.get_mut(&(group, msg_id)) {
                    if m.current == new_receipt {
                        m.current_holder = &e.node;
                    }
                }
                if let Some(r) = receipts.get(&(group, new_receipt)) {
                    if let Some(hd) = chain_head(h, &heads, group, r.delivery)
                        .filter(|hd| hd.receipt == new_receipt)
                    {
                        let holder = &e.node;
                        heads.insert((group, r.delivery), Head { holder, ..hd });
                    }
                }
            }
            EventKind::ChangeInvisibleResult {
                consumer,
                group,
                receipt,
                invisible_time,
                new_receipt: Some(new),
                outcome,
                ..
            } if is_success(outcome) => {
                let Some(old) = receipts.get(&(group, receipt)) else {
                    continue;
                };
                let st = ReceiptState {
                    msg_id: old.msg_id,
                    delivery: old.delivery,
                    deadline: receipt_deadline(new, e.at + invisible_time),
                    copy: old.copy,
                    batch: old.batch.clone(),
                };
                (by_ck.entry(ck_key(group, st.copy, new, e.at)).or_default())
                    .push((receipt_ck(new, *invisible_time), st.delivery));
                // The chain's head moves as the message's current receipt does (below), for
                // any chain of the message.
                if let Some(hd) = chain_head(h, &heads, group, st.delivery) {
                    let moves = hd.receipt == receipt
                        || (st.batch.is_none() && e.node != *consumer && hd.holder == e.node);
                    if moves {
                        let head = Head {
                            receipt: new,
                            holder: consumer,
                            deadline: st.deadline,
                        };
                        heads.insert((group, st.delivery), head);
                    }
                }
                if let Some(m) = msgs.get_mut(&(group, st.msg_id)) {
                    // An older receipt of the current chain, changed on a client's behalf by
                    // the node that holds the current one, stands for the current receipt, as
                    // such an ack does (F26): the proxy renewed the handle, an ack of another
                    // listener of the same copy took the entry out of its table, and this
                    // listener's nack went out with the handle the client kept.
                    let for_current = m.current == receipt
                        || (st.batch.is_none()
                            && e.node != *consumer
                            && *m.current_holder == e.node
                            && receipts
                                .get(&(group, m.current))
                                .is_some_and(|cur| cur.delivery == st.delivery));
                    if for_current {
                        m.current = new;
                        // The client it was made for, also through the proxy (whose answer
                        // may never reach the client); a renewal says so next.
                        m.current_holder = consumer;
                        m.nacked = true;
                        // A nack of the acked receipt asks for the message again.
                        m.acked = None;
                    }
                }
                receipts.insert((group, new), st);
            }
            EventKind::SentToDlq { .. } => {
                filtered.extend(proxy_dead_lettered(e));
            }
            // The proxy acks what its filter dead-lettered out of an orderly pop
            // (`PopMessageResultFilterImpl` → `ProducerProcessor.forwardMessageToDeadLetterQueue`,
            // the ack once the send-back succeeded): no client got that entry, but its ack
            // is the batch's, and the handle names the batch.
            EventKind::AckResult {
                consumer,
                group,
                msg_id,
                receipt,
                outcome,
            } if is_success(outcome)
                && !receipts.contains_key(&(group, receipt))
                && filtered.contains(&(group.as_str(), consumer.as_str(), msg_id.as_str())) =>
            {
                let Some((x, o)) = dead_lettered_orderly_handle(receipt, msg_id, origins) else {
                    continue;
                };
                let key: BatchKey = (group, &o.topic, x.queue_id, consumer, x.pop_time);
                let b = batches.entry(key).or_default();
                b.entries.insert(
                    x.queue_offset,
                    BatchEntry {
                        msg_id,
                        delivery: idx,
                        copy: copy_key(&o.topic, x.queue_id, x.queue_offset),
                        acked: Some(idx),
                    },
                );
                b.starts_at(x.ck_queue_offset.min(x.queue_offset));
                let newly = b.advance();
                prefix_acked(&mut msgs, &mut out, group, idx, newly);
            }
            EventKind::AckResult {
                consumer,
                group,
                receipt,
                outcome,
                ..
            } if is_success(outcome) => {
                let Some(r) = receipts.get(&(group, receipt)) else {
                    continue;
                };
                let Some(m) = msgs.get_mut(&(group, r.msg_id)) else {
                    continue;
                };
                let in_time = if m.current == receipt {
                    e.at <= r.deadline
                } else {
                    // An older receipt of the current chain, acked on a client's behalf by the
                    // node that holds the current one: the gRPC proxy renewed the client's
                    // handle, and after a failed ack forgot the renewed one and acks the
                    // client's original on the retry (finding F26). Its OK tells the client
                    // the message is settled, so the ack counts. A client's own change (also
                    // one relayed by the proxy whose answer the client never got) and the
                    // proxy's STOP_RENEW leave the client the holder: its stale ack is
                    // at-least-once under failure, as before.
                    // So does such an ack of an older receipt of another chain of the
                    // message (F30: a replay's ack took the proxy's entry first, and the
                    // client's ack of the first delivery went out with the handle it kept).
                    // The head itself of a chain that is not the message's current one stays
                    // uncounted, as before: one ack per message is tracked (proxy-random 2661,
                    // two retry copies acked one after the other).
                    r.batch.is_none()
                        && e.node != *consumer
                        && chain_head(h, &heads, group, r.delivery).is_some_and(|hd| {
                            hd.receipt != receipt.as_str()
                                && hd.holder == e.node
                                && e.at <= hd.deadline
                        })
                };
                if !in_time {
                    continue;
                }
                match r.batch.as_deref() {
                    None => {
                        m.acked = Some(Acked {
                            ack: idx,
                            delivery: r.delivery,
                            copy: r.copy,
                        });
                        out.effective_acks.push(idx);
                        out.acked.push((idx, r.delivery));
                    }
                    Some((key, offset)) => {
                        let Some(b) = batches.get_mut(key) else {
                            continue;
                        };
                        if let Some(entry) = b.entries.get_mut(offset) {
                            entry.acked = Some(idx);
                        }
                        let newly = b.advance();
                        prefix_acked(&mut msgs, &mut out, group, idx, newly);
                    }
                }
            }
            EventKind::Broker(BrokerEvent::Revived {
                group,
                msg_id,
                ck,
                queue_offset,
                retry_topic,
                retry_queue_offset,
                ..
            }) => {
                let ck_copy = copy_key(&ck.topic, ck.queue_id, *queue_offset);
                let chain = (by_ck.get(&(group.as_str(), ck_copy, ck.pop_time)))
                    .and_then(|c| ck_owner(c, revive_queues.revived(ck)));
                let acked = msgs.get(&(group, msg_id)).and_then(|st| st.acked);
                let covered = acked
                    .filter(|a| chain == Some(a.delivery))
                    .map(|a| (a.ack, a.delivery))
                    .or_else(|| {
                        // The client acked a receipt of this chain through the proxy, in time
                        // for this CK, and was told OK, but the proxy sent another delivery's
                        // handle: its table entry had been put for that one.
                        let chain = chain?;
                        let ack = *redirected.get(&(group.as_str(), chain))?;
                        let at = h.events[ack].at;
                        let due = ck.pop_time + ck.invisible_time;
                        (ck.pop_time <= at && at <= due).then_some((ack, chain))
                    });
                let came_back =
                    covered.filter(|&(_, delivery)| excuse(group, msg_id, delivery, idx).is_none());
                if let Some((ack, acked_delivery)) = came_back {
                    out.after_ack.push(AfterAck {
                        idx,
                        group: group.clone(),
                        msg_id: msg_id.clone(),
                        kind: ComebackKind::Revive,
                        ack,
                        acked_delivery,
                        crash_between: last_crash.is_some_and(|c| c > ack),
                    });
                }
                let came_back = came_back.is_some();
                revived.insert(
                    (group, copy_key(retry_topic, 0, *retry_queue_offset)),
                    (idx, came_back),
                );
            }
            // A graceful shutdown stored every buffered ack first: it explains no revive.
            EventKind::Broker(BrokerEvent::Crashed {
                graceful: false, ..
            }) => last_crash = Some(idx),
            EventKind::Broker(BrokerEvent::PopRead {
                group,
                topic,
                queue_id,
                offset,
                count,
                pop_time,
                ..
            }) => {
                (reads
                    .entry((group, copy_key(topic, *queue_id, 0)))
                    .or_default())
                .push((idx, *offset, *count, *pop_time));
            }
            // The read went as far as its CK: a message stored after the pop took its offset
            // was read too (develop-random 16276: a `PopRead` of one message whose CK holds
            // two).
            EventKind::Broker(
                BrokerEvent::CkBuffered { ck, .. } | BrokerEvent::CkWritten { ck, .. },
            ) if is_pop_ck(&e.kind) => {
                let key = (ck.group.as_str(), copy_key(&ck.topic, ck.queue_id, 0));
                if let Some(read) = reads.get_mut(&key).and_then(|v| {
                    (v.iter_mut().rev())
                        .find(|(_, o, _, t)| *o == ck.start_offset && *t == ck.pop_time)
                }) {
                    read.2 = read.2.max(ck.num);
                }
            }
            _ => {}
        }
    }
    out
}

/// Where among `ev` the timer gave up the record written as `log_offset` of revive queue
/// `qid` (`TimerRecordDiscarded`): its index, time and failed puts.
fn given_up(ev: &[crate::history::Event], qid: u32, log_offset: u64) -> Option<(usize, u64, u32)> {
    ev.iter().enumerate().find_map(|(i, e)| match &e.kind {
        EventKind::Broker(BrokerEvent::TimerRecordDiscarded {
            revive_qid,
            revive_offset,
            attempts,
            ..
        }) if *revive_qid == qid && *revive_offset == log_offset => Some((i, e.at, *attempts)),
        _ => None,
    })
}

/// The ACK record for offset `o` of the CK `ck` written before event `upto` that the timer
/// gave up, if any: the record, and the discard's index, time and failed puts. For
/// explanations only: no verdict reads it.
pub(crate) fn ack_given_up<'h>(
    history: &'h History,
    ck: &'h broker_core::CkRef,
    o: u64,
    upto: usize,
) -> Option<(AckRecord<'h>, (usize, Millis, u32))> {
    let ev = &history.events[..upto];
    acks_written(ev, ck, o).find_map(|r| r.given_up(ev).map(|gone| (r, gone)))
}

/// An ACK record the broker wrote (`AckWritten`), as the explanations use it.
#[derive(Clone, Copy, Debug)]
pub(crate) struct AckRecord<'h> {
    /// Its event's index.
    pub idx: usize,
    pub at: Millis,
    pub revive_qid: u32,
    pub revive_offset: u64,
    pub deliver_at: Millis,
    pub reason: &'h str,
}

impl AckRecord<'_> {
    /// Where among `ev` (the history, or a prefix of it) the timer gave this record up:
    /// the discard's index, time and failed puts.
    pub fn given_up(&self, ev: &[crate::history::Event]) -> Option<(usize, Millis, u32)> {
        given_up(&ev[self.idx..], self.revive_qid, self.revive_offset)
            .map(|(j, at, attempts)| (self.idx + j, at, attempts))
    }
}

/// The ACK records written among `ev` for offset `o` of the CK `ck` (its topic, group,
/// queue, start offset and popTime), in order.
pub(crate) fn acks_written<'a>(
    ev: &'a [crate::history::Event],
    ck: &'a broker_core::CkRef,
    o: u64,
) -> impl DoubleEndedIterator<Item = AckRecord<'a>> + 'a {
    ev.iter()
        .enumerate()
        .filter_map(move |(idx, e)| match &e.kind {
            EventKind::Broker(BrokerEvent::AckWritten {
                at,
                topic,
                group,
                queue_id,
                start_offset,
                pop_time,
                ack_offsets,
                revive_qid,
                revive_offset,
                deliver_at,
                reason,
                ..
            }) if *topic == ck.topic
                && *group == ck.group
                && *queue_id == ck.queue_id
                && *start_offset == ck.start_offset
                && *pop_time == ck.pop_time
                && ack_offsets.contains(&o) =>
            {
                Some(AckRecord {
                    idx,
                    at: *at,
                    revive_qid: *revive_qid,
                    revive_offset: *revive_offset,
                    deliver_at: *deliver_at,
                    reason: reason.as_str(),
                })
            }
            _ => None,
        })
}

/// The handle `receipt` when it names the CK `ck`'s popTime but another CK start offset
/// (finding F33: local mode's changed handle keeps the popped batch's start), so an ack or
/// an `ackOrigin` of it was keyed by another CK than `ck`. For explanations only.
pub(crate) fn names_other_start(receipt: &str, ck: &broker_core::CkRef) -> Option<ExtraInfo> {
    ExtraInfo::parse(receipt)
        .filter(|named| named.pop_time == ck.pop_time && named.ck_queue_offset != ck.start_offset)
}

/// The CK of delivery `d` (a `Delivered` event) the timer gave up, if any: a CK written for
/// the delivery's topic, group, queue and popTime at or below its offset, then given up
/// (`TimerRecordDiscarded`). Returns the CK's and the discard's indexes, the discard's
/// time and its failed puts. For explanations only: no verdict reads it.
pub(crate) fn ck_given_up(history: &History, d: usize) -> Option<(usize, usize, Millis, u32)> {
    let EventKind::Delivered {
        group,
        topic,
        queue_id,
        queue_offset,
        retry_topic,
        pop_time,
        ..
    } = &history.events[d].kind
    else {
        return None;
    };
    let read_topic = retry_topic.as_ref().unwrap_or(topic);
    history
        .events
        .iter()
        .enumerate()
        .find_map(|(i, e)| match &e.kind {
            EventKind::Broker(BrokerEvent::CkWritten {
                ck,
                revive_qid,
                revive_offset,
                ..
            }) if ck.topic == *read_topic
                && ck.group == *group
                && ck.queue_id == *queue_id
                && ck.pop_time == *pop_time
                && ck.start_offset <= *queue_offset =>
            {
                given_up(&history.events[i..], *revive_qid, *revive_offset)
                    .map(|(j, at, attempts)| (i, i + j, at, attempts))
            }
            _ => None,
        })
}

#[cfg(test)]
mod tests {
    use super::{ck_owner, names_other_start, resets};
    use crate::testkit::H;

    #[test]
    fn a_receipt_of_the_ck_pop_time_with_another_start_names_another_ck() {
        let ck = broker_core::CkRef {
            topic: "t".into(),
            group: "g".into(),
            queue_id: 0,
            start_offset: 1,
            pop_time: 4_041,
            invisible_time: 20_000,
            num: 1,
            broker_name: "broker-a".into(),
        };
        let other = names_other_start("0 4041 20000 2 0 broker-a 0 1 0 1", &ck).expect("start 0");
        assert_eq!((other.ck_queue_offset, other.queue_offset), (0, 1));
        // The CK's own start, another popTime, or no handle at all: not another CK.
        assert!(names_other_start("1 4041 20000 2 0 broker-a 0 1 1", &ck).is_none());
        assert!(names_other_start("0 5000 20000 2 0 broker-a 0 1 1", &ck).is_none());
        assert!(names_other_start("not a handle", &ck).is_none());
    }

    /// Two requests of one group out at once (develop-random 171839): an all-queue reset,
    /// assigned at once and answered late, and a one-queue reset sent and answered in
    /// between. Each assignment is one reset point, labelled by the request it came from, and
    /// neither answer adds a point. Group g2: both requests reach the broker after both
    /// were sent; each queue's first assignment is the all-queue request's.
    #[test]
    fn overlapping_reset_requests_give_one_point_per_assignment() {
        let mut h = H::new();
        h.at(1_000).reset_request("g1", -1, None);
        let a0 = h.at(1_010).reset_assigned("g1", 0, 0);
        let a1 = h.at(1_010).reset_assigned("g1", 1, 0);
        h.at(1_020).reset_request("g1", 1, Some(2));
        let b1 = h.at(1_030).reset_assigned("g1", 1, 2);
        h.at(1_040).reset_result("g1", 1, &[(1, 2)]);
        h.at(1_200).reset_result("g1", -1, &[(0, 0), (1, 0)]);
        h.at(2_000).reset_request("g2", -1, None);
        h.at(2_001).reset_request("g2", 1, Some(2));
        let c0 = h.at(2_010).reset_assigned("g2", 0, 0);
        let c1 = h.at(2_010).reset_assigned("g2", 1, 0);
        let d1 = h.at(2_011).reset_assigned("g2", 1, 2);
        h.at(2_030).reset_result("g2", -1, &[(0, 0), (1, 0)]);
        h.at(2_031).reset_result("g2", 1, &[(1, 2)]);
        // An answer whose request the history does not show assigned: its point is the
        // answer.
        h.at(3_000).reset_request("g1", 0, Some(3));
        let late = h.at(3_050).reset_result("g1", 0, &[(0, 3)]);
        let points: Vec<_> = resets(&h.build())
            .into_iter()
            .map(|p| (p.idx, p.group.to_string(), p.queue, p.offset, p.all_queues))
            .collect();
        let g = |s: &str| s.to_string();
        assert_eq!(
            points,
            vec![
                (a0, g("g1"), 0, 0, true),
                (a1, g("g1"), 1, 0, true),
                (b1, g("g1"), 1, 2, false),
                (c0, g("g2"), 0, 0, true),
                (c1, g("g2"), 1, 0, true),
                (d1, g("g2"), 1, 2, false),
                (late, g("g1"), 0, 3, false),
            ]
        );
    }

    #[test]
    fn an_assignment_belongs_to_the_request_it_fits_not_to_an_older_one_still_out() {
        let mut h = H::new();
        // An all-queue request that never reached the broker, then a one-queue request
        // whose answer lists the assignment (develop-random 122192).
        h.at(1_000).reset_request("g1", -1, None);
        h.at(1_100).reset_request("g1", 0, Some(0));
        let a0 = h.at(1_110).reset_assigned("g1", 0, 0);
        h.at(1_120).reset_result("g1", 0, &[(0, 0)]);
        h.at(6_000).reset_timeout("g1", -1);
        // A one-queue request naming 0 that never reached the broker, then an all-queue
        // request assigning 2 (develop-random 159835): the offset tells them apart even
        // with both answers lost.
        h.at(7_000).reset_request("g2", 1, Some(0));
        h.at(7_100).reset_request("g2", -1, None);
        let b0 = h.at(7_110).reset_assigned("g2", 0, 2);
        let b1 = h.at(7_110).reset_assigned("g2", 1, 2);
        h.at(12_000).reset_timeout("g2", 1);
        h.at(12_100).reset_timeout("g2", -1);
        let points: Vec<_> = resets(&h.build())
            .into_iter()
            .map(|p| (p.idx, p.group.to_string(), p.queue, p.offset, p.all_queues))
            .collect();
        let g = |s: &str| s.to_string();
        assert_eq!(
            points,
            vec![
                (a0, g("g1"), 0, 0, false),
                (b0, g("g2"), 0, 2, true),
                (b1, g("g2"), 1, 2, true),
            ]
        );
    }

    /// A pop's CK (invisible 60 s) and a changeInvisibleTime's CK (30 s) share a
    /// millisecond; `rePutCK` later stretches the pop's CK to 65 s. The revived CK is the
    /// pop's: the longest invisible time below it, not the earliest deadline among the
    /// shorter ones (the rule revive-bookkeeping once had, which named the change's).
    #[test]
    fn a_re_put_ck_belongs_to_the_longest_invisible_time_below_it() {
        let q = Some(0);
        let same_ms = [
            ((60_000, Some(0), q), "pop"),
            ((30_000, Some(3), q), "change"),
        ];
        assert_eq!(ck_owner(&same_ms, (65_000, 3, q)), Some("pop"));
        assert_eq!(ck_owner(&same_ms, (30_000, 3, q)), Some("change"));
        assert_eq!(ck_owner(&same_ms, (60_000, 0, q)), Some("pop"));
        assert_eq!(ck_owner(&same_ms, (20_000, 0, q)), None);
        // Equal invisible times: the latest recorded receipt, unless the start tells them
        // apart.
        let twins = [
            ((30_000, Some(3), q), "first"),
            ((30_000, Some(0), q), "second"),
        ];
        assert_eq!(ck_owner(&twins, (30_000, 7, q)), Some("second"));
        assert_eq!(ck_owner(&twins, (30_000, 3, q)), Some("first"));
    }

    /// Proxy-random 13001 (`--fix all`): two renewals of one copy in one millisecond, the
    /// first's `ackOrigin` failed (no receipt), the second's handle names revive queue 3.
    /// The first's CK, read from revive queue 2, has the second's shape but is not its CK.
    #[test]
    fn a_ck_from_another_revive_queue_is_not_the_receipts() {
        let renewed = [((60_000, Some(16), Some(3)), "renewed")];
        assert_eq!(ck_owner(&renewed, (60_000, 16, Some(2))), None);
        assert_eq!(ck_owner(&renewed, (60_000, 16, Some(3))), Some("renewed"));
        // A revive whose queue is not known (the KV path) matches by shape, as before.
        assert_eq!(ck_owner(&renewed, (60_000, 16, None)), Some("renewed"));
    }

    /// Proxy-random 25921 (`--fix all`, the KV path): a renewal to 180 s whose answer was
    /// lost and another delivery's renewal to 60 s were handled in one millisecond. The
    /// first's record revives; the KV path never re-puts a record under its popTime, so it is
    /// not the 60 s receipt's CK stretched (the classic `rePutCK` rule).
    #[test]
    fn a_kv_record_is_never_a_stretched_ck() {
        let renewed = [((60_000, Some(12), Some(0)), "renewed")];
        assert_eq!(ck_owner(&renewed, (180_000, 12, None)), None);
        assert_eq!(ck_owner(&renewed, (180_000, 12, Some(0))), Some("renewed"));
    }
}
