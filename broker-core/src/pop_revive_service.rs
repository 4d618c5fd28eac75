//! `PopReviveService` (`broker/.../processor/PopReviveService.java`): one reviver thread per
//! revive queue, modelled step for step on the virtual clock.
//!
//! `run()`: `waitForRunning(reviveInterval)`, then a scan (`consumeReviveMessage`) and
//! `mergeAndRevive`; a round that found no CK waits `slow × reviveInterval` more, with `slow`
//! growing by one per idle round up to `reviveMaxSlow` (and back to 1 after a round with CKs).
//!
//! The scan reads every record the timer has delivered since the offset, in batches of 32
//! with no pause: a CK goes into the map under its merge key (a later one replaces an
//! earlier one, as upstream's `HashMap.put`), an ACK sets the bits of the CK with its key or
//! is dropped (or, with `enableSkipLongAwaitingAck`, mocked once it waited
//! `reviveAckWaitMs`). `endTime` is the largest `deliverTimeMs` read (the record's own,
//! unrounded property, not its timer slot; proposed fix `revive-end-time-follows-timer`:
//! at most the timer's read time), and `firstRt` the revive time of the first CK.
//! When a read finds nothing: `endTime` moves to now if it is set, more than 3 s old, and the
//! timer is not behind (`getDequeueBehind() <= 0`, whole seconds; the enqueue side is never
//! behind in the model); the scan ends once `endTime − firstRt > 2 s`; else it sleeps 100 ms,
//! and after 41 such sleeps in a row (`noMsgCount * 100 > 4 s`) it ends. A non-empty read
//! after `reviveScanTime` ends it too, unread. Upstream compares epoch times, where an unset
//! `endTime` or `firstRt` is 0; the model compares the same values on the epoch clock of
//! [`crate::keys::MODEL_EPOCH_MS`].
//!
//! `mergeAndRevive` takes the CKs in revive-offset order and stops at the first with
//! `endTime − reviveTime ≤ 2 s`; every un-acked message of the others is put to the retry
//! topic (`reviveMsgFromCk`, `reviveRetry`); a put that fails re-puts a one-message CK
//! (`rePutCK`): same popTime, the message as startOffset, its invisible time stretched by
//! 10 s, 20 s, … 7 200 s (`ckRewriteIntervalsInSeconds`) once the old CK's revive time has
//! passed, `rp` + 1, dropped after 17 re-puts if `skipWhenCKRePutReachMaxTimes`; the re-put's
//! own result is ignored (proposed fix `re-put-failure-holds-revive-offset`: a failed re-put
//! ends the round before its CK). Then `CID_RMQ_SYS_REVIVE_GROUP`'s offset is committed.
//!
//! What the model leaves out, and why: the biz-message read (`getBizMessage` →
//! `EscapeBridge.getMessageAsync`) completes at once on a local `DefaultMessageStore`, so
//! `reviveMsgFromCk`'s futures are done before it returns. The in-flight map then never holds
//! more than the CK being revived: the `inflightReviveRequestMap.size() > 3` throttle, its
//! 30 s "stay too long" `rePutCK` (which passes the map's timestamp pair, so the re-put CK's
//! startOffset would be a timestamp) and the per-CK commits of its completion loop are
//! unreachable; only a tiered or remote store makes them reachable. A biz message the local
//! store no longer has counts as done (`needRetry` is false for a local read since #8475).
//! Scans poll every 100 ms; the model wakes only at the polls that can change something (a
//! record delivered, `endTime` able to move, the 41st empty poll), which is the same scan.

use crate::broker::Broker;
use crate::checkpoint::{AckMsg, PopCheckPoint, ReviveRecord};
use crate::config::Millis;
use crate::events::{AckReadOutcome, BrokerEvent};
use crate::keys::{
    self, java_str, merge_key, ACK_TIME_INTERVAL, MODEL_EPOCH_MS, REVIVE_GROUP, SECOND,
};
use crate::store::{ReviveQueue, StoredMessage, Timer};
use crate::{Behaviour, Fix};
use std::collections::BTreeMap;

/// A CK is revived once `endTime − reviveTime` exceeds this (`ackTimeInterval + 1 s`).
pub const REVIVE_MARGIN: Millis = ACK_TIME_INTERVAL + SECOND;
/// The scan's sleep after an empty read.
pub const POLL_MS: Millis = 100;
/// `noMsgCount * 100 > 4 * SECOND`: the 41st empty read in a row ends the scan.
const MAX_EMPTY_POLLS: u32 = 40;
/// `endTime` moves to now only once it is this old.
const END_TIME_IDLE: Millis = 3 * SECOND;
/// `ckRewriteIntervalsInSeconds`: the re-put back-off, by `rp`.
pub const CK_REWRITE_INTERVALS_S: [Millis; 17] = [
    10, 20, 30, 60, 120, 180, 240, 300, 360, 420, 480, 540, 600, 1200, 1800, 3600, 7200,
];

/// What one scan collects (`ConsumeReviveObj`) and where its loop is.
#[derive(Clone, Debug)]
struct Scan {
    /// `startScanTime`.
    start: Millis,
    old_offset: i64,
    /// The next queue offset to read.
    offset: u64,
    end_time: Option<Millis>,
    first_rt: Option<Millis>,
    no_msg_count: u32,
    /// The last read.
    last_poll: Millis,
    /// The next read that can change something.
    next_poll: Millis,
    /// The loop has ended; `mergeAndRevive` runs at this time.
    done_at: Option<Millis>,
    /// mergeKey → CK, with its queue offset in `revive_offset`.
    map: BTreeMap<String, PopCheckPoint>,
    /// Mock CKs for long-orphaned ACKs, `putAll` into the map at the end.
    mocks: BTreeMap<String, PopCheckPoint>,
}

/// Where a reviver thread is.
#[derive(Clone, Debug)]
enum Phase {
    /// In `waitForRunning`; the next scan starts at `until`.
    Waiting {
        until: Millis,
    },
    Scanning(Box<Scan>),
}

/// One revive queue's reviver.
#[derive(Clone, Debug)]
struct ReviveState {
    /// The in-memory `reviveOffset`; lost on a crash.
    revive_offset: i64,
    phase: Phase,
    /// `run()`'s `slow`.
    slow: u32,
    /// Revive-log offsets below this had their ACK records reported ([`BrokerEvent::AckRecordRead`]):
    /// a trailing ACK is read again every round (the committed offset stops at the last CK),
    /// and only its first reading is recorded.
    reported_to: u64,
}

/// The revivers of every revive queue.
#[derive(Clone, Debug, Default)]
pub struct PopReviveService {
    queues: Vec<ReviveState>,
}

/// Java's `endTime − firstRt > 2 s` on epoch times, where unset is 0.
fn scan_reached_first_rt(end_time: Option<Millis>, first_rt: Option<Millis>) -> bool {
    let epoch = |t: Option<Millis>| t.map_or(0, |t| i128::from(MODEL_EPOCH_MS + t));
    epoch(end_time) - epoch(first_rt) > i128::from(REVIVE_MARGIN)
}

impl PopReviveService {
    /// Revivers for a process started at `now` with committed revive offsets `committed`:
    /// each begins with `waitForRunning(reviveInterval)`.
    pub fn new(committed: &[i64], now: Millis, revive_interval: Millis) -> Self {
        Self {
            queues: committed
                .iter()
                .map(|&c| ReviveState {
                    revive_offset: c,
                    phase: Phase::Waiting {
                        until: now + revive_interval,
                    },
                    slow: 1,
                    reported_to: 0,
                })
                .collect(),
        }
    }

    /// When reviver `qid` next has something to do.
    fn deadline_of(&self, qid: usize) -> Millis {
        match &self.queues[qid].phase {
            Phase::Waiting { until } => *until,
            Phase::Scanning(scan) => scan.done_at.unwrap_or(scan.next_poll),
        }
    }

    /// The earliest time any reviver has something to do.
    pub fn next_deadline(&self) -> Option<Millis> {
        (0..self.queues.len()).map(|q| self.deadline_of(q)).min()
    }
}

/// The first read after `scan.last_poll` (on its 100 ms grid) that can change something:
/// a record becomes readable, `endTime` can move, or the 41st empty read ends the scan.
fn plan_next_poll(scan: &Scan, q: &ReviveQueue, timer: &Timer, now: Millis) -> Millis {
    let base = scan.last_poll;
    let poll = |k: u64| base + POLL_MS * k;
    // Reads left before the 41st empty one (this one counted).
    let k_full = u64::from(MAX_EMPTY_POLLS + 1 - scan.no_msg_count.min(MAX_EMPTY_POLLS));
    let mut best = poll(k_full);
    let first_at_or_after = |t: Millis| -> Millis {
        if t <= base {
            poll(1)
        } else {
            poll((t - base).div_ceil(POLL_MS).max(1))
        }
    };
    if q.max_offset() > scan.offset {
        best = best.min(first_at_or_after(now));
    }
    if let Some(slot) = q.next_slot() {
        best = best.min(first_at_or_after(timer.delivery_time(slot, now).max(now)));
    }
    if let Some(end) = scan.end_time {
        let t = first_at_or_after((end + END_TIME_IDLE + 1).max(now));
        if t < best && timer.dequeue_behind(t) == 0 {
            best = t;
        }
    }
    best
}

impl Broker {
    /// Every reviver whose time has come, in queue order; each runs until it waits again.
    pub(crate) fn pop_revive_tick(&mut self, now: Millis) {
        self.advance_timer(now);
        for qid in 0..self.store.revive_queue_num() {
            for _ in 0..1_000 {
                if self.revive.deadline_of(qid as usize) > now {
                    break;
                }
                self.revive_step(now, qid);
            }
        }
    }

    /// After a record reached revive queue `qid` or the timer's lag changed: the scan in
    /// progress may have to read sooner.
    pub(crate) fn revive_replan(&mut self, now: Millis, qid: u32) {
        let Some(state) = self.revive.queues.get_mut(qid as usize) else {
            return;
        };
        if let Phase::Scanning(scan) = &mut state.phase {
            if scan.done_at.is_none() {
                let q = self.store.revive_queue(qid);
                scan.next_poll = plan_next_poll(scan, q, &self.store.timer, now);
            }
        }
    }

    /// Drops the records of revive queue `qid` that no round reads again, so the revive log
    /// does not grow with the run. A round reads from `max(reviveOffset, committed) + 1`
    /// (`consumeReviveMessage`), and neither goes below the persisted offset: only
    /// `mergeAndRevive` commits the revive group's offset, always upwards; each persist
    /// copies the committed offset; a crash rolls both back to the persisted image. Any other
    /// writer of that offset (a commit, a reset) needs the revive topic to be a configured
    /// topic, which upstream refuses to create (`AdminBrokerProcessor.updateAndCreateTopic`,
    /// "conflict with system topic"); while it is one, nothing is trimmed.
    fn trim_revive_log(&mut self, qid: u32) {
        let revive_topic = self.store.revive_topic();
        if self.store.topic_config(revive_topic).is_some() {
            return;
        }
        let persisted = self
            .offsets
            .query_persisted_offset(REVIVE_GROUP, revive_topic, qid);
        self.store
            .trim_revive(qid, u64::try_from(persisted + 1).unwrap_or(0));
    }

    /// One thing reviver `qid` does at `now`: start a scan, read, or merge.
    fn revive_step(&mut self, now: Millis, qid: u32) {
        let interval = self.config.revive_interval;
        let state = &mut self.revive.queues[qid as usize];
        match &mut state.phase {
            Phase::Waiting { .. } => {
                if !self.config.timer_wheel_enable {
                    // "skip revive topic because timerWheelEnable is false"
                    state.phase = Phase::Waiting {
                        until: now + interval,
                    };
                    return;
                }
                self.trim_revive_log(qid);
                let revive_topic = self.store.revive_topic().to_owned();
                let committed = self.offsets.query_offset(REVIVE_GROUP, &revive_topic, qid);
                let state = &mut self.revive.queues[qid as usize];
                let old_offset = state.revive_offset.max(committed);
                state.phase = Phase::Scanning(Box::new(Scan {
                    start: now,
                    old_offset,
                    offset: u64::try_from(old_offset + 1).unwrap_or(0),
                    end_time: None,
                    first_rt: None,
                    no_msg_count: 0,
                    last_poll: now,
                    next_poll: now,
                    done_at: None,
                    map: BTreeMap::new(),
                    mocks: BTreeMap::new(),
                }));
                self.revive_poll(now, qid);
            }
            Phase::Scanning(scan) => {
                if scan.done_at.is_some_and(|t| t <= now) {
                    let Phase::Scanning(scan) =
                        std::mem::replace(&mut state.phase, Phase::Waiting { until: now })
                    else {
                        unreachable!("scanning")
                    };
                    self.merge_and_revive(now, qid, *scan);
                } else {
                    self.revive_poll(now, qid);
                }
            }
        }
    }

    /// One read of `consumeReviveMessage`'s loop at `now` (and the reads at the same
    /// instant after a non-empty one).
    fn revive_poll(&mut self, now: Millis, qid: u32) {
        let Phase::Scanning(mut scan) = std::mem::replace(
            &mut self.revive.queues[qid as usize].phase,
            Phase::Waiting { until: now },
        ) else {
            unreachable!("a poll of a scan")
        };
        // Reads skipped because nothing could change were empty reads.
        let skipped = (now.saturating_sub(scan.last_poll) / POLL_MS).saturating_sub(1);
        scan.no_msg_count = (scan.no_msg_count + skipped as u32).min(MAX_EMPTY_POLLS);
        scan.last_poll = now;
        loop {
            let max = self.store.revive_queue(qid).max_offset();
            if max > scan.offset {
                scan.no_msg_count = 0;
                if now - scan.start > self.config.revive_scan_time {
                    scan.done_at = Some(now);
                    break;
                }
                self.consume_revive_records(now, qid, &mut scan, max);
                continue;
            }
            let behind = self.store.timer.dequeue_behind(now);
            if let Some(end) = scan.end_time {
                if now - end.min(now) > END_TIME_IDLE && behind == 0 {
                    scan.end_time = Some(now);
                }
            }
            if scan_reached_first_rt(scan.end_time, scan.first_rt) {
                scan.done_at = Some(now);
                break;
            }
            scan.no_msg_count += 1;
            if scan.no_msg_count > MAX_EMPTY_POLLS {
                scan.done_at = Some(now + POLL_MS);
                break;
            }
            let q = self.store.revive_queue(qid);
            scan.next_poll = plan_next_poll(&scan, q, &self.store.timer, now);
            break;
        }
        self.revive.queues[qid as usize].phase = Phase::Scanning(scan);
    }

    /// The merge key of a CK as the reviver builds it. Before #8494 it had no brokerName
    /// (`revive-merge-key-without-broker-name`, read here and in [`Self::revive_ack_key`]).
    fn revive_ck_key(&self, ck: &PopCheckPoint) -> String {
        let bn = (!self
            .behaviours
            .is_on(Behaviour::ReviveMergeKeyWithoutBrokerName))
        .then_some(ck.broker_name.as_str());
        merge_key(
            &ck.topic,
            &ck.cid,
            ck.queue_id,
            ck.start_offset,
            ck.pop_time,
            bn,
            self.behaviours.has_fix(Fix::MergeKeyWithSeparator),
        )
    }

    /// The merge key of an ACK / BatchAck. Since #8981 a blank brokerName is replaced by this
    /// broker's name; `revive-no-blank-broker-name-fallback` keys it as is (Java: `"null"`).
    fn revive_ack_key(&self, ack: &AckMsg) -> String {
        if self
            .behaviours
            .is_on(Behaviour::ReviveMergeKeyWithoutBrokerName)
        {
            return merge_key(
                &ack.topic,
                &ack.consumer_group,
                ack.queue_id,
                ack.start_offset,
                ack.pop_time,
                None,
                self.behaviours.has_fix(Fix::MergeKeyWithSeparator),
            );
        }
        let blank = ack
            .broker_name
            .as_deref()
            .is_none_or(|b| b.trim().is_empty());
        let bn = if blank
            && !self
                .behaviours
                .is_on(Behaviour::ReviveNoBlankBrokerNameFallback)
        {
            self.config.broker_name.as_str()
        } else {
            java_str(ack.broker_name.as_deref())
        };
        merge_key(
            &ack.topic,
            &ack.consumer_group,
            ack.queue_id,
            ack.start_offset,
            ack.pop_time,
            Some(bn),
            self.behaviours.has_fix(Fix::MergeKeyWithSeparator),
        )
    }

    /// The records of one read: every delivered record from the scan's offset up to `max`.
    fn consume_revive_records(&mut self, now: Millis, qid: u32, scan: &mut Scan, max: u64) {
        for offset in scan.offset..max {
            let q = self.store.revive_queue(qid);
            let entry = q.at(offset).expect("delivered record");
            match &entry.record {
                ReviveRecord::Ck(ck) => {
                    let mut ck = ck.clone();
                    ck.revive_offset = offset;
                    scan.first_rt.get_or_insert(ck.revive_time());
                    scan.map.insert(self.revive_ck_key(&ck), ck);
                }
                ReviveRecord::Ack(ack) => {
                    let key = self.revive_ack_key(ack);
                    let outcome = match scan.map.get_mut(&key) {
                        Some(ck) => {
                            for &ao in &ack.ack_offsets {
                                if let Some(i) = ck.index_of_ack(ao) {
                                    ck.bit_map |= 1 << i;
                                }
                            }
                            AckReadOutcome::Matched
                        }
                        None => {
                            let waited = now.saturating_sub(entry.deliver_at);
                            if self.config.enable_skip_long_awaiting_ack
                                && waited > self.config.revive_ack_wait_ms
                            {
                                let mock = mock_ck_for_ack(ack, offset);
                                scan.first_rt.get_or_insert(mock.revive_time());
                                scan.mocks.insert(key.clone(), mock);
                                AckReadOutcome::Mocked
                            } else {
                                AckReadOutcome::NoCk
                            }
                        }
                    };
                    let state = &mut self.revive.queues[qid as usize];
                    let first_read = offset >= state.reported_to;
                    state.reported_to = state.reported_to.max(offset + 1);
                    if first_read {
                        self.events.push(BrokerEvent::AckRecordRead {
                            at: now,
                            revive_qid: qid,
                            revive_offset: offset,
                            topic: ack.topic.clone(),
                            group: ack.consumer_group.clone(),
                            queue_id: ack.queue_id,
                            start_offset: ack.start_offset,
                            pop_time: ack.pop_time,
                            ack_offsets: ack.ack_offsets.as_slice().into(),
                            key: key.into(),
                            outcome,
                        });
                    }
                }
            }
            // `endTime` is the largest deliver time read (430-433), whatever the timer has
            // delivered so far. With the proposed fix a record raises it only up to the
            // timer's read time (`getCurrReadTimeMs`): a record stored directly while the
            // wheel lags does not carry endTime past ACKs still waiting in it.
            let raise_to = if self.behaviours.has_fix(Fix::ReviveEndTimeFollowsTimer) {
                entry
                    .deliver_at
                    .min(self.store.timer.curr_read_time_ms(now))
            } else {
                entry.deliver_at
            };
            scan.end_time = scan.end_time.max(Some(raise_to));
        }
        scan.offset = max;
    }

    /// `mergeAndRevive`: CKs in revive-offset order; stop at the first with
    /// `endTime − reviveTime ≤ 2 s`; then commit, and `run()` waits for the next round.
    fn merge_and_revive(&mut self, now: Millis, qid: u32, scan: Scan) {
        let Scan {
            mut map,
            mocks,
            old_offset,
            end_time,
            ..
        } = scan;
        // Upstream keeps mocks apart while scanning and `putAll`s them at the end: a mock
        // replaces a real CK with the same key.
        map.extend(mocks);
        let mut sorted: Vec<(String, PopCheckPoint)> = map.into_iter().collect();
        sorted.sort_by_key(|(_, ck)| ck.revive_offset);
        let end = end_time.map_or(0, |t| i128::from(MODEL_EPOCH_MS + t));
        let mut new_offset = old_offset;
        for (key, ck) in &sorted {
            let revive_time = i128::from(MODEL_EPOCH_MS + ck.revive_time());
            if end - revive_time <= i128::from(REVIVE_MARGIN) {
                break;
            }
            let normal_topic = keys::parse_normal_topic(&ck.topic, &ck.cid);
            if self.store.topic_config(&normal_topic).is_some()
                && self.groups.contains(ck.cid.as_str())
            {
                let all = (1u64 << ck.num).wrapping_sub(1);
                if u64::from(ck.bit_map) & all != all {
                    self.events.push(BrokerEvent::ReviveDecided {
                        at: now,
                        revive_qid: qid,
                        ck: ck.ck_ref().into(),
                        key: key.as_str().into(),
                        acked: (0..usize::from(ck.num))
                            .filter(|&i| ck.bit_map & (1 << i) != 0)
                            .map(|i| ck.ack_offset_by_index(i))
                            .collect(),
                    });
                }
                let kept = self.revive_msg_from_ck(now, qid, ck);
                // Develop commits past the CK whatever `rePutCK`'s put did (605). With the
                // proposed fix a failed re-put stops the round before this CK: the revive
                // offset stays at the CK before it and the next round reads it again.
                if !kept && self.behaviours.has_fix(Fix::RePutFailureHoldsReviveOffset) {
                    break;
                }
            }
            new_offset = ck.revive_offset as i64;
        }
        if new_offset > old_offset {
            let revive_topic = self.store.revive_topic().to_owned();
            self.offsets.commit_offset(
                &mut self.events,
                now,
                "PopReviveService",
                REVIVE_GROUP,
                &revive_topic,
                qid,
                new_offset,
            );
            self.events.push(BrokerEvent::ReviveOffsetCommitted {
                at: now,
                revive_qid: qid,
                offset: new_offset as u64,
            });
        }
        let interval = self.config.revive_interval;
        let max_slow = self.config.revive_max_slow;
        let state = &mut self.revive.queues[qid as usize];
        state.revive_offset = new_offset;
        // `run()`: a round without CKs takes a rest of `slow` intervals first.
        let rest = if sorted.is_empty() {
            let rest = u64::from(state.slow) * interval;
            if state.slow < max_slow {
                state.slow += 1;
            }
            rest
        } else {
            state.slow = 1;
            0
        };
        state.phase = Phase::Waiting {
            until: now + rest + interval,
        };
    }

    /// `reviveMsgFromCk`: every message whose bit is clear goes to the retry topic; a put
    /// that fails re-puts a CK for it (`rePutCK`). A message no longer in the store is
    /// skipped: a local read never asks for a retry. False if a re-put's own put failed
    /// (upstream does not look).
    fn revive_msg_from_ck(&mut self, now: Millis, qid: u32, ck: &PopCheckPoint) -> bool {
        let mut kept = true;
        for i in 0..usize::from(ck.num) {
            if ck.bit_map & (1 << i) != 0 {
                continue;
            }
            let offset = ck.ack_offset_by_index(i);
            let Some(msg) = self.store.message(&ck.topic, ck.queue_id, offset).cloned() else {
                // Deleted (retention): nothing to revive, and upstream leaves it counted in
                // flight (finding F23).
                if self
                    .behaviours
                    .has_fix(Fix::ReviveOfDeletedMessageLowersInflight)
                {
                    self.inflight
                        .decrement(&ck.topic, &ck.cid, ck.pop_time, ck.queue_id, 1);
                }
                continue;
            };
            if !self.revive_retry(now, ck, offset, msg) {
                kept &= self.re_put_ck(now, qid, ck, offset);
            }
        }
        kept
    }

    /// `rePutCK`: a one-message CK for `msg_offset`, same popTime, `rp` + 1, its invisible
    /// time stretched by the back-off once the old CK's revive time has passed; dropped after
    /// 17 re-puts with `skipWhenCKRePutReachMaxTimes`. Upstream ignores the put's result;
    /// it is returned (false: the put failed) for the proposed fix in `mergeAndRevive`.
    fn re_put_ck(&mut self, now: Millis, qid: u32, old: &PopCheckPoint, msg_offset: u64) -> bool {
        let rp = old.re_put_times;
        let max = CK_REWRITE_INTERVALS_S.len() as u32;
        if rp >= max && self.config.skip_when_ck_re_put_reach_max_times {
            self.events.push(BrokerEvent::CkDropped {
                at: now,
                ck: old.ck_ref().into(),
                queue_offset: msg_offset,
                reason: "PopReviveService.rePutCK: rePut CK reach max times".into(),
            });
            return true;
        }
        let mut invisible_time = old.invisible_time;
        if old.revive_time() <= now {
            let i = (rp as usize).min(CK_REWRITE_INTERVALS_S.len() - 1);
            invisible_time += CK_REWRITE_INTERVALS_S[i] * SECOND;
        }
        let ck = PopCheckPoint {
            start_offset: msg_offset,
            pop_time: old.pop_time,
            invisible_time,
            bit_map: 0,
            num: 1,
            queue_id: old.queue_id,
            topic: old.topic.clone(),
            cid: old.cid.clone(),
            revive_offset: 0,
            queue_offset_diff: vec![0],
            broker_name: old.broker_name.clone(),
            re_put_times: rp + 1,
        };
        self.put_ck_to_store(now, &ck, qid, "PopReviveService.rePutCK")
            .is_some()
    }

    /// `reviveRetry`: put a copy with reconsumeTimes + 1 to the POP retry topic (the CK's
    /// own topic if that already is one), creating it with one queue on first use
    /// (`addRetryTopicIfNotExist`, which also `initPopRetryOffset`s the group at 0). False if
    /// the put failed.
    pub(crate) fn revive_retry(
        &mut self,
        now: Millis,
        ck: &PopCheckPoint,
        offset: u64,
        msg: StoredMessage,
    ) -> bool {
        let retry_topic = if keys::is_retry_topic(&ck.topic) {
            ck.topic.to_string()
        } else {
            keys::pop_retry_topic(&ck.topic, &ck.cid, self.config.enable_retry_topic_v2)
        };
        self.add_retry_topic_if_not_exist(now, &retry_topic, &ck.cid);
        let origin_topic = msg
            .origin_topic
            .clone()
            .unwrap_or_else(|| keys::parse_normal_topic(&ck.topic, &ck.cid));
        let first_pop_time = if msg.reconsume_times == 0 || msg.first_pop_time.is_none() {
            Some(ck.pop_time)
        } else {
            msg.first_pop_time
        };
        let copy = StoredMessage {
            msg_id: msg.msg_id.clone(),
            tags: msg.tags.clone(),
            born_timestamp: msg.born_timestamp,
            store_timestamp: now,
            reconsume_times: msg.reconsume_times + 1,
            origin_topic: Some(origin_topic.clone()),
            first_pop_time,
            commit_log_offset: 0,
        };
        let reconsume_times = copy.reconsume_times;
        if self.store_put_fails(now, &retry_topic, 0, "PopReviveService.reviveRetry") {
            return false;
        }
        let retry_offset = self.store.put_message(&retry_topic, 0, copy);
        self.inflight
            .decrement(&ck.topic, &ck.cid, ck.pop_time, ck.queue_id, 1);
        self.notify_message_arriving(now, &retry_topic, 0);
        self.events.push(BrokerEvent::Revived {
            at: now,
            group: ck.cid.clone(),
            topic: origin_topic.into(),
            msg_id: msg.msg_id,
            ck: ck.ck_ref().into(),
            queue_offset: offset,
            retry_topic: retry_topic.into(),
            retry_queue_offset: retry_offset,
            reconsume_times,
        });
        true
    }

    /// `addRetryTopicIfNotExist` + `initPopRetryOffset`.
    fn add_retry_topic_if_not_exist(&mut self, now: Millis, retry_topic: &str, group: &str) {
        if self.store.topic_config(retry_topic).is_some() {
            return;
        }
        self.store.create_topic(retry_topic, keys::RETRY_QUEUE_NUM);
        if self.offsets.query_offset(group, retry_topic, 0) < 0 {
            self.offsets.commit_offset(
                &mut self.events,
                now,
                "initPopRetryOffset",
                group,
                retry_topic,
                0,
                0,
            );
        }
    }
}

/// `createMockCkForAck`: a `num = 0` CK at the ACK's position.
fn mock_ck_for_ack(ack: &AckMsg, revive_offset: u64) -> PopCheckPoint {
    PopCheckPoint {
        start_offset: ack.start_offset,
        pop_time: ack.pop_time,
        invisible_time: 0,
        bit_map: 0,
        num: 0,
        queue_id: ack.queue_id,
        topic: ack.topic.clone(),
        cid: ack.consumer_group.clone(),
        revive_offset,
        queue_offset_diff: Vec::new(),
        broker_name: ack.broker_name.clone().unwrap_or_default(),
        re_put_times: 0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Behaviours, BrokerConfig};

    fn broker(behaviours: &[Behaviour]) -> Broker {
        Broker::new(
            BrokerConfig::default(),
            behaviours.iter().copied().collect::<Behaviours>(),
            0,
        )
    }

    fn ack(bn: Option<&str>) -> AckMsg {
        AckMsg {
            ack_offsets: vec![3],
            start_offset: 2,
            consumer_group: "G".into(),
            topic: "T".into(),
            queue_id: 1,
            pop_time: 77,
            broker_name: bn.map(crate::Name::new),
            batch: false,
        }
    }

    fn ck() -> PopCheckPoint {
        PopCheckPoint {
            start_offset: 2,
            pop_time: 77,
            invisible_time: 1_000,
            bit_map: 0,
            num: 2,
            queue_id: 1,
            topic: "T".into(),
            cid: "G".into(),
            revive_offset: 0,
            queue_offset_diff: vec![0, 1],
            broker_name: "broker-a".into(),
            re_put_times: 0,
        }
    }

    #[test]
    fn blank_ack_broker_name_falls_back_to_this_broker_since_8981() {
        let b = broker(&[]);
        assert_eq!(b.revive_ack_key(&ack(None)), "TG121758240000077broker-a");
        assert_eq!(
            b.revive_ack_key(&ack(Some(" "))),
            "TG121758240000077broker-a"
        );
        assert_eq!(
            b.revive_ack_key(&ack(Some("broker-b"))),
            "TG121758240000077broker-b"
        );
        assert_eq!(b.revive_ck_key(&ck()), "TG121758240000077broker-a");
    }

    #[test]
    fn without_the_fallback_a_blank_name_keys_as_java_prints_it() {
        let b = broker(&[Behaviour::ReviveNoBlankBrokerNameFallback]);
        assert_eq!(b.revive_ack_key(&ack(None)), "TG121758240000077null");
        assert_eq!(b.revive_ack_key(&ack(Some(""))), "TG121758240000077");
        assert_ne!(b.revive_ack_key(&ack(None)), b.revive_ck_key(&ck()));
    }

    #[test]
    fn before_8494_neither_key_has_a_broker_name() {
        let b = broker(&[Behaviour::ReviveMergeKeyWithoutBrokerName]);
        assert_eq!(b.revive_ck_key(&ck()), "TG121758240000077");
        assert_eq!(
            b.revive_ack_key(&ack(Some("broker-b"))),
            "TG121758240000077"
        );
        assert_eq!(b.revive_ack_key(&ack(None)), "TG121758240000077");
    }

    fn re_puts(b: &Broker) -> Vec<PopCheckPoint> {
        b.events
            .iter()
            .filter_map(|e| match e {
                BrokerEvent::CkWritten { ck, .. } => Some(ck),
                _ => None,
            })
            .map(|c| PopCheckPoint {
                start_offset: c.start_offset,
                pop_time: c.pop_time,
                invisible_time: c.invisible_time,
                bit_map: 0,
                num: c.num as u8,
                queue_id: c.queue_id,
                topic: c.topic.clone(),
                cid: c.group.clone(),
                revive_offset: 0,
                queue_offset_diff: vec![0],
                broker_name: c.broker_name.clone(),
                re_put_times: 0,
            })
            .collect()
    }

    #[test]
    fn re_put_ck_backs_off_and_gives_up_after_17_with_the_switch() {
        let old = |rp: u32| PopCheckPoint {
            re_put_times: rp,
            ..ck()
        };
        // Revive time (1 077) passed: the table's interval for rp is added.
        let mut b = broker(&[]);
        b.re_put_ck(5_000, 0, &old(0), 3);
        b.re_put_ck(5_000, 0, &old(4), 3);
        b.re_put_ck(5_000, 0, &old(40), 3);
        let cks = re_puts(&b);
        assert_eq!(
            cks.iter().map(|c| c.invisible_time).collect::<Vec<_>>(),
            vec![1_000 + 10_000, 1_000 + 120_000, 1_000 + 7_200_000]
        );
        assert!(cks
            .iter()
            .all(|c| c.start_offset == 3 && c.num == 1 && c.pop_time == 77));
        // Before its revive time: no back-off.
        let mut b = broker(&[]);
        b.re_put_ck(500, 0, &old(0), 3);
        assert_eq!(re_puts(&b)[0].invisible_time, 1_000);
        // 17 re-puts: dropped with skipWhenCKRePutReachMaxTimes, re-put without it.
        let mut b = broker(&[]);
        b.config.skip_when_ck_re_put_reach_max_times = true;
        b.re_put_ck(5_000, 0, &old(16), 3);
        b.re_put_ck(5_000, 0, &old(17), 3);
        assert_eq!(re_puts(&b).len(), 1);
        assert!(b.events.iter().any(|e| matches!(
            e,
            BrokerEvent::CkDropped {
                queue_offset: 3,
                ..
            }
        )));
        let mut b = broker(&[]);
        b.re_put_ck(5_000, 0, &old(17), 3);
        assert_eq!(re_puts(&b).len(), 1, "kept without the switch");
    }

    #[test]
    fn the_revive_log_is_trimmed_up_to_the_persisted_revive_offset_only() {
        let mut b = broker(&[]);
        let topic = b.store.revive_topic().to_owned();
        for _ in 0..6 {
            b.store
                .append_revive(0, ReviveRecord::Ack(ack(None)), 100, 1_000);
        }
        let commit = |b: &mut Broker, offset| {
            let ev = &mut b.events;
            b.offsets
                .commit_offset(ev, 1_000, "t", REVIVE_GROUP, &topic, 0, offset);
        };
        b.trim_revive_log(0);
        assert_eq!(b.store.revive_queue(0).trimmed_to(), 0, "nothing committed");
        commit(&mut b, 2);
        b.offsets.persist(&mut b.events, 1_000);
        commit(&mut b, 4);
        b.trim_revive_log(0);
        // A crash rolls the committed offset back to 2: a round reads from 3 on.
        assert_eq!(b.store.revive_queue(0).trimmed_to(), 3);
        b.crash(2_000);
        b.restart(3_000);
        b.revive_step(3_000, 0);
        assert_eq!(b.store.revive_queue(0).trimmed_to(), 3);
        // A configured topic of the revive topic's name could have its offsets written by
        // requests: nothing more is trimmed.
        b.store.create_topic(&topic, 1);
        commit(&mut b, 5);
        b.offsets.persist(&mut b.events, 3_000);
        b.trim_revive_log(0);
        assert_eq!(b.store.revive_queue(0).trimmed_to(), 3);
    }

    #[test]
    fn end_time_against_first_rt_compares_epoch_times() {
        // No CK read: firstRt is 0 upstream, so any endTime ends the scan.
        assert!(scan_reached_first_rt(Some(5), None));
        assert!(!scan_reached_first_rt(None, None));
        assert!(!scan_reached_first_rt(None, Some(10)));
        assert!(!scan_reached_first_rt(Some(3_000), Some(1_000)));
        assert!(scan_reached_first_rt(Some(3_001), Some(1_000)));
    }
}
