//! After a reset of a queue to X the next pop starts at X, acked messages are not replayed, and the reset survives a broker restart.
//!
//! Targets bug (a) (#9369: FIFO pops replay from a stale pull offset forever), bug (e)
//! (#9149: a reset of a never-committed topic@group lived only in memory) and #10229 (a
//! blocked FIFO queue ignores a reset).
//!
//! Semantics, for each successful reset of (group, topic, queue) to X (the broker's
//! `ResetAssigned`, or the admin's `ResetResult` when the broker event is missing), up to the
//! next reset of the same queue:
//! - **Starts at X**: the first pop batch out of the original queue that was popped after
//!   the reset (pop time later than the reset, or equal with the reset already consumed)
//!   begins at offset X. If the pop that took the reset (`ResetConsumed`) delivered
//!   nothing any client recorded (its answer was lost, or the queue was empty), or was
//!   popped before the reset and reached the queue after it (a pop takes its queues one
//!   after another), the first batch seen is a later pop and is not judged. The taker is
//!   the pop whose recorded read (`PopRead`) came from the pending reset, else a pop whose
//!   popTime is the instant the reset was taken. Two pops may share a popTime (two parked
//!   pops woken in one millisecond): a batch whose own recorded read came from elsewhere,
//!   after the taker's read from X, is not the taker's. Likewise not judged: when the first pop's
//!   CK after the reset starts at X but no client saw its answer (after a restart the
//!   pending reset is gone, and the pop reads X from the restored offsetTable without a
//!   `ResetConsumed`).
//!   Answers can cross: when the broker's recorded reads (`PopRead`) show that a pop
//!   popped no later read from X before the first batch seen was read, and a client got
//!   that batch from X later, the reset took effect (the KV path serialises two pops of a
//!   millisecond on the group@topic lock and records no CK).
//!   If the broker crashed in between, this is required only when an offset flush was due
//!   between the reset and the crash (an `OffsetsPersisted`, or 5 s, upstream's
//!   `flushConsumerOffsetInterval`): a younger reset may die with the process,
//!   but one the flush should have written must survive. That is bug (e): a reset that never
//!   reached offsetTable is in no flush at all. Upstream has one more way to lose it, which
//!   this clause reports rather than excuses: `assignResetOffset` writes offsetTable, but
//!   until a pop erases the pending reset (`resetPopOffset`, which then calls
//!   `clearOffsetQueue`), `PopBufferMergeService.commitOffset` still commits the
//!   `nextBeginOffset` of checkpoints popped before the reset, unconditionally, over it;
//!   a flush and a crash in that window restore the older offset and the in-memory reset
//!   table is gone.
//!   A reset to an offset retention deleted before the first batch (`MessagesExpired` moved
//!   the queue's min offset past X) starts at what is left: at most the min offset.
//! - **No endless replay**: once the group's effective acks (see no-redelivery-after-ack)
//!   after the reset cover every offset X..=Y, no later pop delivers an offset in X..=Y,
//!   unless it is a crash replay: a crash after the acked delivery restored a commit offset
//!   at or below it after the broker had read past it (acks never move a POP commit offset;
//!   the buffered CK that would have is lost with the process), or a pop took the reset
//!   again since the acked delivery's pop (a pending reset is erased when taken; under
//!   `reset-table-survives-restart` a restart restores resetOffsetTable from the last
//!   persist, so a reset taken after it is pending again and its range is replayed, acked
//!   messages included). An ack of what such a second take handed out covers the offset
//!   afresh.
//! - **Held at the end**: for the last reset of each queue, the final `offsetTable` (if the
//!   broker runs) and the persisted image (if a flush was due after the reset) hold an entry
//!   for topic@group and queue, at least X unless something committed below X after the
//!   reset. A reset followed by a crash with no flush due in between died with the process
//!   (upstream's durability window), and so did what a pop that took it committed: it is
//!   not judged here.

use super::index::{
    copy_key, crash_indices, flush_due_between, is_pop_ck, offset_key, persists,
    reset_died_in_crash, secs, witness_events, Facts, PopPositions, ResetPoint, Retention,
    Rollbacks,
};
use super::{Affected, AffectedList, InvariantInfo, Verdict, Witness};
use crate::history::{EventKind, History};
use broker_core::{BrokerEvent, Millis, ReadFrom};
use std::collections::{BTreeMap, BTreeSet};

pub(crate) const INFO: InvariantInfo = InvariantInfo {
    name: "reset-takes-effect",
    statement: "After a reset of a queue to X the next pop starts at X, acked messages are not replayed, and the reset survives a broker restart.",
};

/// The first post-reset pop batch: (consumer, popTime, lowest offset, its event index).
type FirstBatch<'h> = (&'h str, Millis, u64, usize);

struct Window<'h> {
    point: &'h ResetPoint,
    /// When a pop took the pending reset (`ResetConsumed`), if one did.
    consumed_at: Option<Millis>,
    /// The first take's event index (`ResetConsumed`).
    consumed_idx: Option<usize>,
    /// The popTime of the pop that took it, from its recorded read from the pending reset
    /// (`PopRead`); without one, `consumed_at` stands for it. A pop reaches its queues one
    /// after another (`PopMessageProcessor.popMsgFromTopic` chains `popMsgFromQueue`, each
    /// calling `getPopOffset` when its turn comes), so it may take a reset assigned after
    /// its popTime, and another pop's popTime may be the instant it took it. With it, the
    /// read's event index: two pops may share a popTime.
    taker_read: Option<(Millis, usize)>,
    /// The first pop after the reset as the broker saw it: its CK's (popTime, start offset).
    first_ck: Option<(Millis, u64)>,
    first: Option<FirstBatch<'h>>,
    first_judged: bool,
    /// Effectively acked offsets past `next`, with the delivery the ack covered.
    acked: BTreeMap<u64, usize>,
    /// Offsets X..next are covered by effective acks; when each was covered.
    next: u64,
    /// Offset → (the ack that covered it, the delivery that ack covered).
    covered_at: BTreeMap<u64, (usize, usize)>,
    committed_below: bool,
    /// Deliveries out of this queue popped after the reset.
    popped_after: BTreeSet<usize>,
    /// Takes of this reset after the first (`ResetConsumed`: event index, the offset taken).
    /// A pending reset is erased when a pop takes it, so only a restart brings it back:
    /// under `reset-table-survives-restart` it restores resetOffsetTable from the last
    /// persist, and a reset taken after that persist is pending again.
    retakes: Vec<(usize, i64)>,
}

struct Checker<'a, 'h> {
    h: &'h History,
    crashes: Vec<usize>,
    persists: Vec<usize>,
    rollbacks: &'a Rollbacks<'h>,
    pops: &'a PopPositions,
    retention: &'a Retention<'h>,
    problems: Vec<Witness>,
    affected: AffectedList,
}

impl Checker<'_, '_> {
    fn key_text(p: &ResetPoint) -> String {
        format!("group {}'s queue {}/{}", p.group, p.topic, p.queue)
    }

    /// The first crash strictly between the two indexes.
    fn crash_between(&self, after: usize, before: usize) -> Option<usize> {
        let i = self.crashes.partition_point(|c| *c <= after);
        self.crashes.get(i).copied().filter(|c| *c < before)
    }

    fn flush_due(&self, after: usize, before: usize) -> bool {
        flush_due_between(self.h, &self.persists, after, before)
    }

    fn judge_first(&mut self, w: &mut Window) {
        if w.first_judged {
            return;
        }
        let Some((_, pop_time, offset, idx)) = w.first else {
            return;
        };
        w.first_judged = true;
        let p = w.point;
        if offset as i64 == p.offset {
            return;
        }
        let min = self.retention.min_before(&p.topic, p.queue, idx);
        if p.offset < min as i64 && offset <= min {
            // Retention deleted X: the pop's offset correction (`PopMessageProcessor`, the
            // store's `nextBeginOffset` for an offset below its min) reads from what is left.
            return;
        }
        if w.taker_read
            .map(|(t, _)| t)
            .or(w.consumed_at)
            .is_some_and(|t| t != pop_time)
        {
            // The pop that took the reset is not this one: no client saw its answer (it was
            // lost), or it was popped before the reset and reached the queue after it.
            return;
        }
        if let Some((_, taker)) = w.taker_read {
            let taker_at_x = matches!(
                &self.h.events[taker].kind,
                EventKind::Broker(BrokerEvent::PopRead { offset: o, .. }) if *o as i64 == p.offset
            );
            if taker_at_x
                && self
                    .own_read(p, pop_time, offset, idx)
                    .is_some_and(|(i, from)| i > taker && from != ReadFrom::PendingReset)
            {
                // Two pops of one popTime (`PopMessageProcessor.processRequest` takes it when
                // it starts, so two parked pops woken in one millisecond share it). A pop
                // reads each queue once; this one read it from elsewhere after the other
                // took the reset and read from X: the taker is the other, and no client saw
                // its answer first.
                return;
            }
        }
        if w.taker_read.is_none()
            && w.consumed_idx
                .and_then(|take| self.first_read_after(p, take))
                .is_some_and(|o| o as i64 == p.offset)
        {
            // The pop that took the reset read nothing of the queue: `popMsgFromQueue` takes
            // it in `getPopOffset` before it sees that its batch is already full (or the
            // FIFO queue blocked), and the next read under the queue lock began at X, from
            // the offset the take committed. The batch seen first is another pop's of the
            // same popTime that reached the queue later (two parked pops woken in one
            // millisecond), read on from there.
            return;
        }
        if w.first_ck
            .is_some_and(|(t, start)| t <= pop_time && start as i64 == p.offset)
        {
            // An earlier pop (or one in the same millisecond, its CK first) read from X but
            // no client saw its answer first; a restart may have erased the pending reset, so
            // no `ResetConsumed` marks it.
            return;
        }
        if self.answers_crossed(w, pop_time, offset, idx) {
            return;
        }
        let mut events = vec![p.idx, idx];
        let mut summary = format!(
            "after {} was reset to {} at {}, the first pop delivered from offset {offset}",
            Self::key_text(p),
            p.offset,
            secs(p.at)
        );
        // Why the broker read there: the pop's recorded read (`getPopOffset`'s choice).
        let read = self.h.events[..idx]
            .iter()
            .enumerate()
            .rev()
            .find_map(|(i, e)| match &e.kind {
                EventKind::Broker(BrokerEvent::PopRead {
                    group,
                    topic,
                    queue_id,
                    pop_time: t,
                    from,
                    ..
                }) if *group == p.group
                    && *topic == p.topic
                    && *queue_id == p.queue
                    && *t == pop_time =>
                {
                    Some((i, *from))
                }
                _ => None,
            });
        if let Some((i, from)) = read {
            summary.push_str(&format!(", which the broker read from {}", from.describe()));
            events.push(i);
        }
        if let Some(crash) = self.crash_between(p.idx, idx) {
            if !self.flush_due(p.idx, crash) {
                return; // Lost with the un-flushed offsets: upstream's durability window.
            }
            events.push(crash);
            summary.push_str(&format!(
                "; the broker crashed at {}, after an offset flush was due, so the reset had to survive",
                secs(self.h.events[crash].at)
            ));
        }
        self.affected
            .push(Affected::at("first-pop-not-at-reset", self.h, idx).events(events.clone()));
        self.problems.push(Witness {
            msg_id: msg_of(self.h, idx),
            summary,
            events: witness_events(events),
        });
    }

    /// Whether the broker read the first batch seen (popped at `pop_time` from `offset`, the
    /// delivery at `idx`) after another pop's read from X that a client got later: two pops
    /// served one after the other in a millisecond (the KV path serialises them on the
    /// group@topic lock, `PopConsumerService.popAsync`, and records no CK) whose answers
    /// crossed on the way back. The recorded reads (`PopRead`) give the broker's order.
    fn answers_crossed(&self, w: &Window, pop_time: Millis, offset: u64, idx: usize) -> bool {
        let p = w.point;
        if p.offset < 0 {
            return false;
        }
        let x = p.offset as u64;
        let reads_of = |e: &EventKind| match e {
            EventKind::Broker(BrokerEvent::PopRead {
                group,
                topic,
                queue_id,
                pop_time,
                offset,
                ..
            }) if *group == p.group && *topic == p.topic && *queue_id == p.queue => {
                Some((*pop_time, *offset))
            }
            _ => None,
        };
        let Some((seen_read, _)) = self.own_read(p, pop_time, offset, idx) else {
            return false;
        };
        // An earlier read from X in the reset's window, popped no later, whose batch a
        // client recorded (at any time).
        (p.idx + 1..seen_read).any(|i| {
            let Some((t, start)) = reads_of(&self.h.events[i].kind) else {
                return false;
            };
            let after_reset = t > p.at || (t == p.at && w.consumed_at.is_some());
            start == x
                && after_reset
                && t <= pop_time
                && self.h.events[i..].iter().any(|e| {
                    matches!(&e.kind, EventKind::Delivered {
                        group,
                        topic,
                        queue_id,
                        queue_offset,
                        retry_topic: None,
                        pop_time: dt,
                        ..
                    } if *group == p.group
                        && *topic == p.topic
                        && *queue_id == p.queue
                        && *queue_offset == x
                        && *dt == t)
                })
        })
    }

    /// Where the broker's first recorded read (`PopRead`) of the reset's queue after event
    /// `take` began.
    fn first_read_after(&self, p: &ResetPoint, take: usize) -> Option<u64> {
        self.h.events[take + 1..]
            .iter()
            .find_map(|e| match &e.kind {
                EventKind::Broker(BrokerEvent::PopRead {
                    group,
                    topic,
                    queue_id,
                    offset,
                    ..
                }) if *group == p.group && *topic == p.topic && *queue_id == p.queue => {
                    Some(*offset)
                }
                _ => None,
            })
    }

    /// The first batch's own recorded read (popped at `pop_time` from `offset`, the
    /// delivery at `idx`): the latest such `PopRead` of the queue since the reset, with where
    /// the broker read from.
    fn own_read(
        &self,
        p: &ResetPoint,
        pop_time: Millis,
        offset: u64,
        idx: usize,
    ) -> Option<(usize, ReadFrom)> {
        (p.idx..idx)
            .rev()
            .find_map(|i| match &self.h.events[i].kind {
                EventKind::Broker(BrokerEvent::PopRead {
                    group,
                    topic,
                    queue_id,
                    pop_time: t,
                    offset: o,
                    from,
                    ..
                }) if *group == p.group
                    && *topic == p.topic
                    && *queue_id == p.queue
                    && *t == pop_time
                    && *o == offset =>
                {
                    Some((i, *from))
                }
                _ => None,
            })
    }

    fn judge_end(&mut self, w: &Window) {
        let p = w.point;
        if reset_died_in_crash(self.h, &self.persists, &self.crashes, p) {
            return; // Upstream's durability window.
        }
        let key = offset_key(&p.topic, &p.group);
        let fs = &self.h.final_state;
        let mut tables = Vec::new();
        if fs.running {
            tables.push(("final offsetTable", &fs.offset_table));
        }
        if self.flush_due(p.idx, usize::MAX) {
            tables.push(("persisted offsetTable image", &fs.persisted_offset_table));
        }
        for (what, table) in tables {
            let held = table.get(&key).and_then(|m| m.get(&p.queue)).copied();
            let wrong = match held {
                None => Some(format!("has no entry for {key} queue {}", p.queue)),
                Some(v) if v < p.offset && !w.committed_below => {
                    Some(format!("holds {v} for {key} queue {}", p.queue))
                }
                Some(_) => None,
            };
            if let Some(wrong) = wrong {
                self.affected
                    .push(Affected::at("reset-not-held", self.h, p.idx).events(vec![p.idx]));
                self.problems.push(Witness {
                    msg_id: None,
                    summary: format!(
                        "after {} was reset to {} at {}, the {what} {wrong}",
                        Self::key_text(p),
                        p.offset,
                        secs(p.at)
                    ),
                    events: vec![p.idx],
                });
                return;
            }
        }
    }
}

fn msg_of(h: &History, idx: usize) -> Option<String> {
    match &h.events[idx].kind {
        EventKind::Delivered { msg_id, .. } => Some(msg_id.to_string()),
        _ => None,
    }
}

#[cfg(test)]
pub(crate) fn check(history: &History) -> Verdict {
    check_with(&Facts::new(history))
}

pub(crate) fn check_with(facts: &Facts) -> Verdict {
    let history = facts.h;
    let points = facts.resets();
    if points.is_empty() {
        return Verdict::not_applicable("no reset succeeded");
    }
    let acks = facts.acks();
    let mut acked_by: BTreeMap<usize, Vec<usize>> = BTreeMap::new();
    for (ack, delivery) in &acks.acked {
        acked_by.entry(*ack).or_default().push(*delivery);
    }
    let crashes = crash_indices(history);
    let mut c = Checker {
        h: history,
        crashes,
        persists: persists(history),
        rollbacks: facts.rollbacks(),
        pops: facts.pops(),
        retention: facts.retention(),
        problems: Vec::new(),
        affected: AffectedList::default(),
    };
    let mut by_idx: BTreeMap<usize, Vec<&ResetPoint>> = BTreeMap::new();
    for p in points {
        by_idx.entry(p.idx).or_default().push(p);
    }
    let mut open: BTreeMap<(&str, &str, u32), Window> = BTreeMap::new();
    let mut replays = 0usize;
    let mut first_replay = None;
    for (idx, e) in history.events.iter().enumerate() {
        for p in by_idx.get(&idx).into_iter().flatten() {
            let w = Window {
                point: p,
                consumed_at: None,
                consumed_idx: None,
                taker_read: None,
                first_ck: None,
                first: None,
                first_judged: false,
                acked: BTreeMap::new(),
                next: p.offset.max(0) as u64,
                covered_at: BTreeMap::new(),
                committed_below: false,
                popped_after: BTreeSet::new(),
                retakes: Vec::new(),
            };
            if let Some(mut old) = open.insert((&p.group, &p.topic, p.queue), w) {
                c.judge_first(&mut old);
            }
        }
        match &e.kind {
            EventKind::Broker(BrokerEvent::ResetConsumed {
                group,
                topic,
                queue_id,
                offset,
                ..
            }) => {
                if let Some(w) = open.get_mut(&(group.as_str(), topic.as_str(), *queue_id)) {
                    if w.consumed_at.is_some() {
                        w.retakes.push((idx, *offset));
                    }
                    w.consumed_at = Some(e.at);
                    w.consumed_idx.get_or_insert(idx);
                }
            }
            EventKind::Broker(BrokerEvent::PopRead {
                group,
                topic,
                queue_id,
                pop_time,
                from: ReadFrom::PendingReset,
                ..
            }) => {
                if let Some(w) = open.get_mut(&(group.as_str(), topic.as_str(), *queue_id)) {
                    // Only the pop that took the window's reset reads from it.
                    if w.consumed_at.is_some() && w.taker_read.is_none() {
                        w.taker_read = Some((*pop_time, idx));
                    }
                }
            }
            EventKind::Broker(BrokerEvent::CkBuffered { ck, .. })
            | EventKind::Broker(BrokerEvent::CkWritten { ck, .. })
                if is_pop_ck(&e.kind) =>
            {
                if let Some(w) = open.get_mut(&(ck.group.as_str(), ck.topic.as_str(), ck.queue_id))
                {
                    let after = ck.pop_time > w.point.at
                        || (ck.pop_time == w.point.at && w.consumed_at.is_some());
                    if after && w.first_ck.is_none() {
                        w.first_ck = Some((ck.pop_time, ck.start_offset));
                    }
                }
            }
            EventKind::Broker(BrokerEvent::OffsetCommitted {
                group,
                topic,
                queue_id,
                offset,
                ..
            }) => {
                if let Some(w) = open.get_mut(&(group.as_str(), topic.as_str(), *queue_id)) {
                    w.committed_below |= *offset < w.point.offset;
                }
            }
            EventKind::Delivered {
                consumer,
                group,
                topic,
                queue_id,
                queue_offset,
                retry_topic: None,
                pop_time,
                ..
            } => {
                let Some(w) = open.get_mut(&(group.as_str(), topic.as_str(), *queue_id)) else {
                    continue;
                };
                let p = w.point;
                if *pop_time < p.at || (*pop_time == p.at && w.consumed_at.is_none()) {
                    continue; // Popped before the reset (or not provably after it).
                }
                w.popped_after.insert(idx);
                match w.first {
                    None => w.first = Some((consumer, *pop_time, *queue_offset, idx)),
                    Some((fc, ft, fo, _))
                        if fc == consumer && ft == *pop_time && !w.first_judged =>
                    {
                        if *queue_offset < fo {
                            w.first = Some((consumer, *pop_time, *queue_offset, idx));
                        }
                    }
                    Some(_) => c.judge_first(w),
                }
                if let Some((at, acked_delivery)) = w.covered_at.get(queue_offset).copied() {
                    let (from, to) = (
                        c.pops.of(acked_delivery).after_from,
                        c.pops.of(idx).before_to,
                    );
                    let replay = c.rollbacks.replay_between(
                        group,
                        copy_key(topic, *queue_id, *queue_offset),
                        from,
                        to,
                    );
                    // A pop that took the reset again since the acked delivery's pop replays
                    // what it asks for (`getPopOffset` → `queryThenEraseResetOffset`).
                    let retaken = w
                        .retakes
                        .iter()
                        .any(|(i, y)| (from..to).contains(i) && *y <= *queue_offset as i64);
                    if replay.is_none() && !retaken {
                        // A replay bug repeats this hundreds of times per run: keep the
                        // first (events come in order) and count the rest.
                        replays += 1;
                        first_replay.get_or_insert((p, at, idx, *queue_offset, *pop_time));
                        c.affected.push(
                            Affected::at("replayed-after-ack", history, idx)
                                .events(vec![p.idx, at, idx]),
                        );
                    }
                }
            }
            _ => {}
        }
        for d in acked_by.get(&idx).into_iter().flatten() {
            let EventKind::Delivered {
                group,
                topic,
                queue_id,
                queue_offset,
                retry_topic: None,
                ..
            } = &history.events[*d].kind
            else {
                continue;
            };
            let Some(w) = open.get_mut(&(group.as_str(), topic.as_str(), *queue_id)) else {
                continue;
            };
            // An ack of a pop served before the reset (its answer may arrive after it)
            // covers nothing the reset asked for.
            if !w.popped_after.contains(d) {
                continue;
            }
            if *queue_offset < w.next {
                // Covered already. After a pop took the reset again, an ack of what it
                // handed out covers the offset afresh: a later replay needs its own excuse.
                let renewed = w.retakes.last().is_some_and(|(r, _)| {
                    c.pops.of(*d).after_from > *r
                        && w.covered_at
                            .get(queue_offset)
                            .is_some_and(|(_, old)| c.pops.of(*old).after_from <= *r)
                });
                if renewed {
                    w.covered_at.insert(*queue_offset, (idx, *d));
                }
                continue;
            }
            w.acked.insert(*queue_offset, *d);
            while let Some(delivery) = w.acked.remove(&w.next) {
                w.covered_at.insert(w.next, (idx, delivery));
                w.next += 1;
            }
        }
    }
    for (_, mut w) in std::mem::take(&mut open) {
        c.judge_first(&mut w);
        c.judge_end(&w);
    }
    let affected = std::mem::take(&mut c.affected);
    let mut problems = c.problems;
    if let Some((p, at, idx, queue_offset, pop_time)) = first_replay {
        problems.push(Witness {
            msg_id: msg_of(history, idx),
            summary: format!(
                "after {} was reset to {}, offset {queue_offset} was popped again at {} although offsets {}..={queue_offset} had been acked by {}",
                Checker::key_text(p),
                p.offset,
                secs(pop_time),
                p.offset,
                secs(history.events[at].at),
            ),
            events: witness_events(vec![p.idx, at, idx]),
        });
    }
    problems.sort_by_key(|w| w.events.last().copied());
    let count = problems.len() + replays.saturating_sub(1);
    let first = problems.into_iter().next().map(|mut w| {
        if count > 1 {
            w.summary.push_str(&format!(" ({count} problems in all)"));
        }
        w
    });
    Verdict::from_witness(first).with_affected(affected)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::history::ConsumerKind;
    use crate::invariants::Status;
    use crate::testkit::H;

    /// Pops and acks `offs` of queue 0 at `t`, one batch.
    fn pop_ack(h: &mut H, t: Millis, offs: std::ops::Range<u64>) -> Vec<usize> {
        let mut idxs = Vec::new();
        let rs: Vec<_> = offs
            .map(|o| h.at(t).pop("c1", &format!("m{o}"), 0, o))
            .collect();
        for r in &rs {
            idxs.push(r.idx);
            idxs.push(h.at(t + 100).ack(r));
        }
        idxs
    }

    #[test]
    fn an_ack_of_a_pop_served_before_the_reset_covers_nothing() {
        // Orderly-reset-random seed 630: the reset to 0 is assigned at 1.005s, a pop of
        // offset 5 served at `served` answers at 1.010s and is acked; 0..5 are then popped
        // and acked, and 5 comes again. Its ack counts towards the reset's window only if
        // the pop was served after the reset.
        let replay = |served: Millis| {
            let mut h = H::new();
            h.at(1_005).reset("g1", 0, 0);
            let d = h.at(1_010).pop_served_at("c1", "m5", 0, 5, served);
            h.at(1_100).ack(&d);
            h.at(2_000).reset_consumed("g1", 0, 0);
            pop_ack(&mut h, 2_000, 0..5);
            pop_ack(&mut h, 3_000, 5..6);
            h.final_offset("g1", 0, 6);
            check(&h.build()).status
        };
        assert_eq!(replay(1_000), Status::Held);
        assert_eq!(replay(1_006), Status::Violated);
    }

    #[test]
    fn a_reset_followed_correctly_holds() {
        let mut h = H::new();
        pop_ack(&mut h, 1_000, 0..6);
        h.at(2_000).reset("g1", 0, 2);
        h.at(3_000).reset_consumed("g1", 0, 2);
        pop_ack(&mut h, 3_000, 2..6);
        pop_ack(&mut h, 4_000, 6..8);
        h.final_offset("g1", 0, 8);
        assert_eq!(check(&h.build()), Verdict::held());
    }

    #[test]
    fn the_witness_says_where_the_first_pop_read_from() {
        let mut h = H::new();
        h.at(1_000).reset("g1", 0, 0);
        h.at(2_000).pop_read(
            "g1",
            0,
            2_000,
            3,
            1,
            false,
            broker_core::ReadFrom::CommitOffset,
        );
        h.at(2_000).pop("c1", "m3", 0, 3);
        h.final_offset("g1", 0, 4);
        let w = check(&h.build()).witness.unwrap();
        assert!(
            w.summary
                .contains("the first pop delivered from offset 3, which the broker read from the commit offset"),
            "{}",
            w.summary
        );
    }

    /// The reset's X was deleted by retention before the first pop, which the store's offset
    /// correction read from the min offset (the swarm with retention, seed 158): the reset
    /// took effect. Past the min offset it did not.
    #[test]
    fn a_reset_to_what_retention_deleted_starts_at_what_is_left() {
        let world = |h: &mut H, first: std::ops::Range<u64>| {
            pop_ack(h, 1_000, 0..6);
            h.at(2_000).reset("g1", 0, 2);
            h.at(2_500).expired(0, 4);
            let f = pop_ack(h, 3_000, first);
            h.final_offset("g1", 0, 8);
            f
        };
        let mut h = H::new();
        world(&mut h, 4..8);
        assert_eq!(check(&h.build()), Verdict::held());

        let mut h = H::new();
        let first = world(&mut h, 6..8);
        let v = check(&h.build());
        assert_eq!(v.status, Status::Violated);
        assert_eq!(v.witness.unwrap().events[1], first[0]);
    }

    #[test]
    fn a_first_pop_elsewhere_is_a_violation() {
        let mut h = H::new();
        pop_ack(&mut h, 1_000, 0..6);
        let reset = h.at(2_000).reset("g1", 0, 2);
        let first = pop_ack(&mut h, 3_000, 6..8);
        h.final_offset("g1", 0, 8);
        let v = check(&h.build());
        assert_eq!(v.status, Status::Violated);
        let w = v.witness.unwrap();
        assert_eq!(w.msg_id.as_deref(), Some("m6"));
        assert_eq!(w.events, vec![reset, first[0]]);
        assert_eq!(
            w.summary,
            "after group g1's queue TopicA/0 was reset to 2 at 2.000s, the first pop delivered from offset 6"
        );
    }

    #[test]
    fn endless_replay_after_acks_is_a_violation() {
        // Bug (a): every pop after the reset starts at X again.
        let mut h = H::orderly();
        let reset = h.at(1_000).reset("og", 0, 3);
        let a = h.at(2_000).pop("o1", "m3", 0, 3);
        let b = h.at(2_000).pop("o1", "m4", 0, 4);
        let ack_a = h.at(2_100).ack(&a);
        h.at(2_200).ack(&b);
        let again = h.at(3_000).pop("o1", "m3", 0, 3);
        h.final_offset("og", 0, 5);
        let w = check(&h.build()).witness.unwrap();
        assert_eq!(w.msg_id.as_deref(), Some("m3"));
        assert_eq!(w.events, vec![reset, ack_a, again.idx]);
        assert_eq!(
            w.summary,
            "after group og's queue TopicA/0 was reset to 3, offset 3 was popped again at 3.000s although offsets 3..=3 had been acked by 2.100s"
        );
    }

    #[test]
    fn a_reset_a_restart_restored_excuses_the_replay_of_what_was_acked_after_its_first_take() {
        // Develop-random seed 296545 with every fix (KV path): a reset of queue 0 to 4 was
        // persisted while pending, a pop took it and c1 got m4 and m5, and a crash before
        // the next flush brought it back (`reset-table-survives-restart` restores
        // resetOffsetTable from the last persist). c1 acked both after the restart; the next
        // pop took the restored reset and read m4 again. The restored commit offset (6, what
        // a pop's read begun before the reset committed over it) is past 4, so no crash
        // rolled the commit offset back: the reset's second take replays.
        let run = |retake: bool, acked_again_then_replayed: bool| {
            let mut h = H::new();
            h.at(0).produce("m4", 0, 4);
            h.at(0).produce("m5", 0, 5);
            h.at(1_000).reset("g1", 0, 4);
            h.at(1_010).commit("g1", 0, 6, "PopConsumerService");
            h.at(1_500).persist();
            h.at(2_000).reset_consumed("g1", 0, 4);
            h.at(2_000)
                .pop_read("g1", 0, 2_000, 4, 2, false, ReadFrom::PendingReset);
            let a = h.at(2_010).pop_served_at("c1", "m4", 0, 4, 2_000);
            let b = h
                .at(2_010)
                .pop_of_batch_served_at("c1", "m5", 0, 5, 4, 2_000);
            h.at(2_500).crash();
            h.at(3_000).restart();
            h.at(4_000).ack(&a);
            h.at(4_100).ack(&b);
            if retake {
                h.at(9_000).reset_consumed("g1", 0, 4);
                h.at(9_000)
                    .pop_read("g1", 0, 9_000, 4, 2, false, ReadFrom::PendingReset);
            } else {
                h.at(9_000)
                    .pop_read("g1", 0, 9_000, 4, 2, false, ReadFrom::CommitOffset);
            }
            let again = h.at(9_010).pop_served_at("c1", "m4", 0, 4, 9_000);
            if acked_again_then_replayed {
                // The second take's batch is acked in turn; a later read of 4 that takes no
                // reset replays it.
                h.at(9_500).ack(&again);
                h.at(12_000)
                    .pop_read("g1", 0, 12_000, 4, 1, false, ReadFrom::CommitOffset);
                h.at(12_010).pop_served_at("c1", "m4", 0, 4, 12_000);
            }
            h.final_offset("g1", 0, 6);
            check(&h.build()).status
        };
        assert_eq!(run(true, false), Status::Held);
        // The same re-pop read from the commit offset with no reset taken is a violation.
        assert_eq!(run(false, false), Status::Violated);
        // After the second take the window counts afresh: a replay of what was acked since
        // is judged.
        assert_eq!(run(true, true), Status::Violated);
    }

    #[test]
    fn a_reset_lost_in_a_crash_after_a_flush_is_a_violation() {
        // Bug (e): the reset lived only in the in-memory reset table.
        let mut h = H::new();
        // The table was never dirtied, so no flush is recorded: the first flush, 10 s after
        // the start, was due.
        let reset = h.at(1_000).reset("g1", 0, 4);
        let crash = h.at(11_000).crash();
        h.at(12_000).restart();
        let first = h.at(13_000).pop("c1", "m9", 0, 9);
        h.final_offset("g1", 0, 10);
        let w = check(&h.build()).witness.unwrap();
        assert_eq!(w.events, vec![reset, crash, first.idx]);
        assert_eq!(
            w.summary,
            "after group g1's queue TopicA/0 was reset to 4 at 1.000s, the first pop delivered from offset 9; the broker crashed at 11.000s, after an offset flush was due, so the reset had to survive"
        );
        // A recorded flush counts even sooner.
        let mut h = H::new();
        h.at(1_000).reset("g1", 0, 4);
        h.at(2_000).persist();
        h.at(3_000).crash();
        h.at(3_500).restart();
        h.at(4_000).pop("c1", "m9", 0, 9);
        h.final_offset("g1", 0, 10);
        assert_eq!(check(&h.build()).status, Status::Violated);

        // Crashing before any flush was due: upstream's durability window. The first flush
        // comes 10 s after the start, so 5 s after the reset are not enough there.
        let mut h = H::new();
        h.at(1_000).reset("g1", 0, 4);
        h.at(6_000).crash();
        h.at(7_000).restart();
        h.at(8_000).pop("c1", "m9", 0, 9);
        h.final_offset("g1", 0, 10);
        assert_eq!(check(&h.build()), Verdict::held());
        let mut h = H::new();
        h.at(1_000).reset("g1", 0, 4);
        h.at(2_000).crash();
        h.at(3_000).restart();
        h.at(4_000).pop("c1", "m9", 0, 9);
        h.final_offset("g1", 0, 10);
        assert_eq!(check(&h.build()), Verdict::held());
    }

    /// A pop's CK as the buffer records it, for a pop whose answer no client saw.
    fn unseen_pop(h: &mut H, at: Millis, start: u64, num: u32) -> usize {
        h.at(at).broker(BrokerEvent::CkBuffered {
            at,
            ck: Box::new(broker_core::CkRef {
                topic: crate::testkit::T.into(),
                group: "g1".into(),
                queue_id: 0,
                start_offset: start,
                pop_time: at,
                invisible_time: 10_000,
                num,
                broker_name: "broker-a".into(),
            }),
        })
    }

    #[test]
    fn a_first_pop_at_x_that_no_client_saw_is_not_a_lost_reset() {
        // Chaos seed 4: the reset reached offsetTable and a flush; the restart erased the
        // pending reset, so the first pop read from X by the restored commit offset (no
        // `ResetConsumed`), and its answer was lost. The next pop goes on from X + 3.
        let mut h = H::new();
        h.at(1_000).reset("g1", 0, 0);
        h.at(2_000).persist();
        h.at(3_000).crash();
        h.at(4_000).restart();
        unseen_pop(&mut h, 5_000, 0, 3);
        h.at(6_000).pop("c1", "m3", 0, 3);
        h.final_offset("g1", 0, 4);
        assert_eq!(check(&h.build()), Verdict::held());

        // A CK that shows the first pop read elsewhere excuses nothing.
        let mut h = H::new();
        h.at(1_000).reset("g1", 0, 0);
        h.at(2_000).persist();
        h.at(3_000).crash();
        h.at(4_000).restart();
        unseen_pop(&mut h, 5_000, 2, 1);
        h.at(6_000).pop("c1", "m3", 0, 3);
        h.final_offset("g1", 0, 4);
        assert_eq!(check(&h.build()).status, Status::Violated);
    }

    #[test]
    fn a_pop_at_x_in_the_same_millisecond_counts_as_first() {
        // Develop-random seed 9968: two pops in one millisecond; the one that took the reset
        // read from X (its CK first), the other from X + 2, and the latter's answer arrived
        // first.
        let run = |taker_start: u64| {
            let mut h = H::new();
            h.at(1_000).reset("g1", 0, 0);
            h.at(2_000).reset_consumed("g1", 0, 0);
            unseen_pop(&mut h, 2_000, taker_start, 2);
            h.at(2_000).pop("c1", "m2", 0, 2);
            h.final_offset("g1", 0, 3);
            check(&h.build()).status
        };
        assert_eq!(run(0), Status::Held);
        assert_eq!(run(1), Status::Violated);
    }

    #[test]
    fn a_kv_pop_at_x_whose_answer_came_second_counts_as_first() {
        // Develop-random seeds 10178 and 19704 with every fix: on the KV path (no CK events)
        // two parked pops ran in one millisecond under the group@topic lock, one after the
        // other. The first took the reset and read X..=X+1, the second read X + 2 from the
        // pull offset the first had committed, and the second's answer reached its client
        // first.
        let run = |taker_start: u64, taker_seen: bool| {
            let mut h = H::new();
            h.at(1_000).reset("g1", 0, 0);
            h.at(2_000).reset_consumed("g1", 0, 0);
            h.at(2_000).pop_read(
                "g1",
                0,
                2_000,
                taker_start,
                2,
                false,
                ReadFrom::PendingReset,
            );
            h.at(2_000)
                .pop_read("g1", 0, 2_000, 2, 1, false, ReadFrom::PullOffset);
            h.at(2_010).pop_served_at("c2", "m2", 0, 2, 2_000);
            if taker_seen {
                h.at(2_020).pop_served_at("c1", "m0", 0, taker_start, 2_000);
                h.at(2_020)
                    .pop_served_at("c1", "m1", 0, taker_start + 1, 2_000);
            }
            h.final_offset("g1", 0, 3);
            check(&h.build()).status
        };
        assert_eq!(run(0, true), Status::Held);
        // The pop read first began elsewhere: the reset did not take effect.
        assert_eq!(run(1, true), Status::Violated);
        // The taker's answer lost: the seen pop read its queue after the taker's read from
        // X, so it is not the taker (develop-random 69747).
        assert_eq!(run(0, false), Status::Held);
        assert_eq!(run(1, false), Status::Violated);
    }

    #[test]
    fn a_reset_taken_by_a_pop_whose_batch_was_full_is_judged_at_the_next_read() {
        // Develop-random seed 16744 with every fix: the reset of orders/2 to 1 at 66.705 s;
        // two parked pops woken in one millisecond got popTime 75.989 s. c1's batch was
        // full before it reached queue 2, where it still took the reset (`getPopOffset`
        // comes before the batch-size check) and read nothing. c1's next pop read 1 from
        // the commit offset the take committed; c2's pop of popTime 75.989 s reached the
        // queue after that read and went on from the buffered CK's 2, and its answer came
        // first.
        let run = |next_read_at_x: bool| {
            let mut h = H::new();
            h.at(66_705).reset("g1", 0, 1);
            h.at(75_989).reset_consumed("g1", 0, 1);
            if next_read_at_x {
                h.at(76_087)
                    .pop_read("g1", 0, 76_087, 1, 1, false, ReadFrom::CommitOffset);
            }
            h.at(76_114)
                .pop_read("g1", 0, 75_989, 2, 2, false, ReadFrom::BufferedCk);
            h.at(76_131).pop_served_at("c2", "m2", 0, 2, 75_989);
            h.at(76_131).pop_served_at("c2", "m3", 0, 3, 75_989);
            if next_read_at_x {
                h.at(76_200).pop_served_at("c1", "m1", 0, 1, 76_087);
            }
            h.final_offset("g1", 0, 4);
            check(&h.build()).status
        };
        assert_eq!(run(true), Status::Held);
        // No read began at X after the take: the reset did not take effect.
        assert_eq!(run(false), Status::Violated);
    }

    #[test]
    fn a_lost_answer_of_a_pop_of_the_same_pop_time_that_took_the_reset_is_not_judged() {
        // Develop-random seed 69747 (with every fix and without): the reset of orders/1 to 3
        // at 35.036 s; two parked KV pops woken by the long-polling timeout at 49.096 s both
        // got popTime 49.097 s. The first (c2's) took the reset and read 3..=31; c2's link
        // was clogged and its answer was lost (the records revived at 59.5 s). The second
        // (c1's) read 32 from the pull offset the first had committed. Both popTimes are
        // the taker's, so the popTime cannot tell which pop took the reset; the order of
        // the recorded reads can.
        let run = |taker_first: bool| {
            let mut h = H::new();
            h.at(35_036).reset("g1", 0, 3);
            let taker = |h: &mut H| {
                h.at(49_097).reset_consumed("g1", 0, 3);
                h.at(49_097)
                    .pop_read("g1", 0, 49_097, 3, 29, false, ReadFrom::PendingReset);
            };
            if taker_first {
                taker(&mut h);
            }
            // The seen pop's read: after the taker's (49.139 s in the seed), or in the
            // same millisecond before it.
            let read_at = if taker_first { 49_139 } else { 49_097 };
            h.at(read_at)
                .pop_read("g1", 0, 49_097, 32, 3, false, ReadFrom::PullOffset);
            if !taker_first {
                taker(&mut h);
            }
            h.at(49_213).pop_served_at("c1", "m32", 0, 32, 49_097);
            h.final_offset("g1", 0, 35);
            check(&h.build()).status
        };
        assert_eq!(run(true), Status::Held);
        // The seen pop read the pull offset while the reset was still pending: it did not
        // take it, and it was the first pop after the reset.
        assert_eq!(run(false), Status::Violated);
    }

    #[test]
    fn a_pop_begun_before_the_reset_that_took_it_is_known_by_its_read() {
        // Develop-random seed 44476 with every fix: a pop with popTime 3.441 s reached the
        // queue only after the reset to 5 (assigned at 3.458 s), at 3.533 s, queue after
        // queue; it took the pending reset and read 5, and c2 got offset 5 (popped before the
        // reset, so not judged as the first batch). The next pop, whose popTime happens to
        // be 3.533 s too, read 6 from the commit offset the taker's CK had moved. The pop
        // that took the reset is told by its recorded read's popTime, not by when it took it.
        let run = |taker_pop_time: Option<Millis>, seen_read: bool| {
            let mut h = H::new();
            h.consumer("c2", "g1", ConsumerKind::Concurrent, -1);
            h.at(3_458).reset("g1", 0, 5);
            h.at(3_533).reset_consumed("g1", 0, 5);
            if let Some(t) = taker_pop_time {
                h.at(3_533)
                    .pop_read("g1", 0, t, 5, 1, false, ReadFrom::PendingReset);
            }
            h.at(3_533).commit("g1", 0, 6, "PopBufferMergeService");
            h.at(3_637).pop_served_at("c2", "m5", 0, 5, 3_441);
            if seen_read {
                h.at(3_686)
                    .pop_read("g1", 0, 3_533, 6, 1, false, ReadFrom::CommitOffset);
            }
            h.at(3_794).pop_served_at("c1", "m6", 0, 6, 3_533);
            h.final_offset("g1", 0, 7);
            check(&h.build()).status
        };
        assert_eq!(run(Some(3_441), true), Status::Held);
        // The seen pop took the reset itself (its only recorded read is the one from the
        // pending reset) and still delivered 6.
        assert_eq!(run(Some(3_533), false), Status::Violated);
        // Two pops of popTime 3.533 s: the seen one read from the commit offset after the
        // other's read took the reset, whose answer no client saw (develop-random 69747).
        assert_eq!(run(Some(3_533), true), Status::Held);
        // Without a recorded read, a pop of the millisecond the reset was taken in is taken
        // for the taker, as before.
        assert_eq!(run(None, true), Status::Violated);
    }

    #[test]
    fn the_answer_to_an_all_queue_reset_overlapping_another_request_is_no_second_reset() {
        // Develop-random seeds 171839 and 178932 with every fix: the admin asked for an
        // all-queue reset at 4.839 s and the broker assigned every queue at 4.849 s (queue 0
        // to 0 here); while the broker still worked through the queues, the admin sent a
        // one-queue reset of queue 1 (4.884 s, answered 4.928 s). A pop begun at 4.840 s took
        // queue 0's pending reset at 4.945 s and read 0; the all-queue answer reached the
        // admin at 5.086 s, and the next pop (5.112 s) read 1 from the pull offset. The
        // answer was matched with the latest request of the group, whose assignments did not
        // include queue 0, so it counted as a second reset of queue 0 at 5.086 s whose first
        // pop read 1.
        let run = |taken: bool| {
            let mut h = H::new();
            h.at(4_839).reset_request("g1", -1, None);
            h.at(4_849).reset_assigned("g1", 0, 0);
            h.at(4_849).reset_assigned("g1", 1, 0);
            h.at(4_884).reset_request("g1", 1, Some(2));
            h.at(4_906).reset_assigned("g1", 1, 2);
            h.at(4_928).reset_result("g1", 1, &[(1, 2)]);
            if taken {
                h.at(4_945).reset_consumed("g1", 0, 0);
                h.at(4_945)
                    .pop_read("g1", 0, 4_840, 0, 1, false, ReadFrom::PendingReset);
            } else {
                // The pop read the pull offset past 0: the reset did not take effect.
                h.at(4_945)
                    .pop_read("g1", 0, 4_945, 1, 1, false, ReadFrom::PullOffset);
            }
            h.at(5_086).reset_result("g1", -1, &[(0, 0), (1, 0)]);
            if taken {
                h.at(5_100).pop_served_at("c1", "m0", 0, 0, 4_840);
                h.at(5_112)
                    .pop_read("g1", 0, 5_112, 1, 1, false, ReadFrom::PullOffset);
                h.at(5_327).pop_served_at("c1", "m1", 0, 1, 5_112);
            } else {
                h.at(5_100).pop_served_at("c1", "m1", 0, 1, 4_945);
            }
            h.final_offset("g1", 0, 2);
            h.final_offset("g1", 1, 2);
            check(&h.build())
        };
        assert_eq!(run(true), Verdict::held());
        let v = run(false);
        assert_eq!(v.status, Status::Violated);
        assert!(v
            .witness
            .unwrap()
            .summary
            .starts_with("after group g1's queue TopicA/0 was reset to 0 at 4.849s,"),);
    }

    #[test]
    fn an_older_reset_request_that_never_reached_the_broker_takes_no_assignment() {
        // Develop-random 122192 with every fix: the admin's all-queue reset of 0.644 s never
        // reached the broker (it timed out at 5.645 s); a one-queue reset of queue 0 to 0,
        // sent at 1.158 s, was assigned at 1.167 s and taken at 1.175 s by a pop that read
        // 0..=2, the millisecond its answer [0→0] came. Given to the oldest request out that
        // names queue 0, the assignment left the one-queue answer a reset of its own at
        // 1.175 s, whose first pop (22.188 s) read 3.
        let run = |taken: bool| {
            let mut h = H::new();
            h.at(644).reset_request("g1", -1, None);
            h.at(1_158).reset_request("g1", 0, Some(0));
            h.at(1_167).reset_assigned("g1", 0, 0);
            if taken {
                h.at(1_175).reset_consumed("g1", 0, 0);
                h.at(1_175)
                    .pop_read("g1", 0, 1_175, 0, 3, false, ReadFrom::PendingReset);
            } else {
                h.at(1_175)
                    .pop_read("g1", 0, 1_175, 3, 1, false, ReadFrom::PullOffset);
            }
            h.at(1_175).reset_result("g1", 0, &[(0, 0)]);
            if taken {
                h.at(1_207).pop_served_at("c1", "m0", 0, 0, 1_175);
                h.at(1_207).pop_served_at("c1", "m1", 0, 1, 1_175);
                h.at(1_207).pop_served_at("c1", "m2", 0, 2, 1_175);
            } else {
                h.at(1_207).pop_served_at("c1", "m3", 0, 3, 1_175);
            }
            h.at(5_645).reset_timeout("g1", -1);
            if taken {
                h.at(22_188)
                    .pop_read("g1", 0, 22_188, 3, 1, false, ReadFrom::PullOffset);
                h.at(22_213).pop_served_at("c1", "m3", 0, 3, 22_188);
            }
            h.final_offset("g1", 0, 4);
            check(&h.build())
        };
        assert_eq!(run(true), Verdict::held());
        let v = run(false);
        assert_eq!(v.status, Status::Violated);
        assert!(v
            .witness
            .unwrap()
            .summary
            .starts_with("after group g1's queue TopicA/0 was reset to 0 at 1.167s,"));
    }

    #[test]
    fn a_one_queue_reset_that_never_reached_the_broker_takes_no_other_offset() {
        // Develop-random 159835 with every fix: the admin's reset of queue 1 to 0 (2.818 s)
        // never reached the broker (timeout 7.819 s); an all-queue reset sent at 4.646 s
        // assigned every queue to 2 at 4.655 s, a pop took queue 1's at 4.701 s and read 2,
        // and the all-queue answer came at 4.956 s. The assignment of queue 1 to 2 went to the
        // older one-queue request (which names 0), so the answer added a reset of queue 1 at
        // 4.956 s, and the next pop's read of 3 from the pull offset looked like it not taken.
        let run = |taken: bool| {
            let mut h = H::new();
            h.at(2_818).reset_request("g1", 1, Some(0));
            h.at(4_646).reset_request("g1", -1, None);
            h.at(4_655).reset_assigned("g1", 0, 2);
            h.at(4_655).reset_assigned("g1", 1, 2);
            if taken {
                h.at(4_701).reset_consumed("g1", 1, 2);
                h.at(4_701)
                    .pop_read("g1", 1, 4_513, 2, 1, false, ReadFrom::PendingReset);
                h.at(4_701).reset_consumed("g1", 0, 2);
                h.at(4_701)
                    .pop_read("g1", 0, 4_513, 2, 1, false, ReadFrom::PendingReset);
            } else {
                // A pop begun after the assignment read queue 1 from the pull offset.
                h.at(4_701).reset_consumed("g1", 0, 2);
                h.at(4_701)
                    .pop_read("g1", 0, 4_513, 2, 1, false, ReadFrom::PendingReset);
                h.at(4_701)
                    .pop_read("g1", 1, 4_701, 3, 1, false, ReadFrom::PullOffset);
            }
            h.at(4_720).pop_served_at("c1", "a2", 0, 2, 4_513);
            if taken {
                h.at(4_720).pop_served_at("c1", "m2", 1, 2, 4_513);
            } else {
                h.at(4_720).pop_served_at("c1", "m3", 1, 3, 4_701);
            }
            h.at(4_956).reset_result("g1", -1, &[(0, 2), (1, 2)]);
            if taken {
                h.at(5_443)
                    .pop_read("g1", 1, 5_012, 3, 1, false, ReadFrom::PullOffset);
                h.at(5_846).pop_served_at("c1", "m3", 1, 3, 5_012);
            }
            h.at(7_819).reset_timeout("g1", 1);
            h.final_offset("g1", 0, 3);
            h.final_offset("g1", 1, 4);
            check(&h.build())
        };
        assert_eq!(run(true), Verdict::held());
        let v = run(false);
        assert_eq!(v.status, Status::Violated);
        assert!(v
            .witness
            .unwrap()
            .summary
            .starts_with("after group g1's queue TopicA/1 was reset to 2 at 4.655s,"));
    }

    #[test]
    fn a_replay_after_a_crash_lost_the_buffered_ck_is_not_endless_replay() {
        // Chaos seed 22: pops read 0..=1 after the reset and their CK sat in the buffer; the
        // crash lost it and the commit offset stayed at X, so acks after the restart move
        // nothing and the next pop reads 0 again.
        let mut h = H::new();
        h.at(1_000).reset("g1", 0, 0);
        h.at(2_000).persist();
        let a = h.at(3_000).pop("c1", "m0", 0, 0);
        let b = h.at(3_000).pop("c1", "m1", 0, 1);
        h.at(4_000).crash();
        h.at(5_000).restart();
        h.at(6_000).ack(&a);
        h.at(6_000).ack(&b);
        h.at(20_000).pop("c1", "m0", 0, 0);
        h.final_offset("g1", 0, 2);
        assert_eq!(check(&h.build()), Verdict::held());

        // Had the commit past 1 been flushed before the crash, the replay is a violation.
        let mut h = H::new();
        h.at(1_000).reset("g1", 0, 0);
        let a = h.at(3_000).pop("c1", "m0", 0, 0);
        let b = h.at(3_000).pop("c1", "m1", 0, 1);
        h.at(3_500).ack(&a);
        h.at(3_500).ack(&b);
        h.at(3_600).commit("g1", 0, 2, "PopBufferMergeService");
        h.at(3_700).persist();
        h.at(4_000).crash();
        h.at(5_000).restart();
        h.at(20_000).pop("c1", "m0", 0, 0);
        h.final_offset("g1", 0, 2);
        assert_eq!(check(&h.build()).status, Status::Violated);
    }

    #[test]
    fn a_final_table_without_the_reset_is_a_violation() {
        let mut h = H::new();
        let reset = h.at(1_000).reset("g1", 0, 4);
        let w = check(&h.build()).witness.unwrap();
        assert_eq!(w.events, vec![reset]);
        assert_eq!(
            w.summary,
            "after group g1's queue TopicA/0 was reset to 4 at 1.000s, the final offsetTable has no entry for TopicA@g1 queue 0"
        );

        let mut h = H::new();
        h.at(1_000).reset("g1", 0, 4);
        h.final_offset("g1", 0, 4);
        assert_eq!(check(&h.build()), Verdict::held());
    }

    #[test]
    fn a_flush_due_at_the_last_instant_of_the_run_is_not_judged() {
        // reset-clears-other-pull-offsets: a reset at 3.008 s, the first offset flush due at
        // 10 s (10 s after the start), and the run ends at 10 s: the simulation stops before
        // that flush runs, so the persisted image cannot hold the reset yet.
        let run = |end_at: Millis| {
            let mut h = H::new();
            h.at(3_008).reset("g1", 0, 4);
            h.final_offset("g1", 0, 4);
            h.end(end_at, end_at);
            let mut history = h.build();
            history.final_state.persisted_offset_table.clear();
            check(&history).status
        };
        assert_eq!(run(10_000), Status::Held);
        assert_eq!(run(10_001), Status::Violated);
    }

    #[test]
    fn a_reset_that_died_in_a_crash_is_not_judged_at_the_end() {
        // Develop-random seed 170 with every fix: a reset 0.2 s after a restart, the broker
        // crashes again 1.5 s later with no offset flush due (the first comes 10 s after a
        // start): the pending reset and its offsetTable write die with the process.
        let run = |crash_at: Millis| {
            let mut h = H::new();
            h.at(3_000).reset("g1", 0, 4);
            h.at(crash_at).crash();
            h.at(crash_at + 1_000).restart();
            h.final_offset("g1", 0, 0);
            h.end(20_000, 20_000);
            let mut history = h.build();
            history.final_state.persisted_offset_table.clear();
            check(&history).status
        };
        assert_eq!(run(4_500), Status::Held);
        assert_eq!(run(12_000), Status::Violated);
    }

    #[test]
    fn a_reset_taken_and_then_lost_in_a_crash_is_not_judged_at_the_end() {
        // Develop-random seed 1687: the reset is taken (committed in memory) 0.2 s later,
        // and the broker crashes 4 s after it, before the next flush.
        let mut h = H::new();
        h.at(3_000).reset("g1", 0, 4);
        h.at(3_200).reset_consumed("g1", 0, 4);
        h.at(3_200).commit("g1", 0, 4, "ResetPopOffset");
        h.at(7_000).crash();
        h.at(8_000).restart();
        h.final_offset("g1", 0, 0);
        h.end(20_000, 20_000);
        let mut history = h.build();
        history.final_state.persisted_offset_table.clear();
        assert_eq!(check(&history).status, Status::Held);
    }

    #[test]
    fn a_lost_answer_to_the_pop_that_took_the_reset_is_not_judged() {
        let mut h = H::new();
        h.at(1_000).reset("g1", 0, 2);
        // The pop at 2.000s took the reset and read 2..4; its answer never arrived.
        h.at(2_000).reset_consumed("g1", 0, 2);
        h.at(3_000).pop("c1", "m5", 0, 5);
        h.final_offset("g1", 0, 6);
        assert_eq!(check(&h.build()), Verdict::held());
    }

    #[test]
    fn pops_in_flight_at_the_reset_are_not_judged() {
        let mut h = H::new();
        h.at(1_000).reset("g1", 0, 0);
        // Popped at 1.000s in the same millisecond, before the reset was consumed.
        h.at(1_000).pop("c1", "m7", 0, 7);
        h.at(1_500).reset_consumed("g1", 0, 0);
        h.at(1_500).pop("c1", "m0", 0, 0);
        h.final_offset("g1", 0, 1);
        assert_eq!(check(&h.build()), Verdict::held());
        assert_eq!(
            check(&H::new().build()),
            Verdict::not_applicable("no reset succeeded")
        );
    }
}
