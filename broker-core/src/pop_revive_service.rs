//! `PopReviveService` (`broker/.../processor/PopReviveService.java`): one reviver per revive
//! queue. Each tick it reads the records the timer has delivered since its offset
//! (`consumeReviveMessage`), matches ACKs to CKs by merge key, and puts every un-acked
//! message of each due CK to the POP retry topic with reconsumeTimes + 1
//! (`mergeAndRevive`, `reviveMsgFromCk`, `reviveRetry`); then it commits the
//! `CID_RMQ_SYS_REVIVE_GROUP` offset.
//!
//! Abstraction: upstream stops at the first CK with `endTime − reviveTime ≤ 2 s`, where
//! `endTime` is the newest deliver time its scan saw (advanced to "now" once the timer has
//! nothing more). The model's timer is exact and never behind, so `endTime = now`: a CK is
//! revived once `now − reviveTime > 2 s`, and by then every ACK with deliverTime ≤
//! reviveTime has been delivered after it.

use crate::broker::Broker;
use crate::checkpoint::{AckMsg, PopCheckPoint, ReviveRecord};
use crate::config::Millis;
use crate::events::BrokerEvent;
use crate::keys::{self, java_str, merge_key, ACK_TIME_INTERVAL, REVIVE_GROUP, SECOND};
use crate::store::{ReviveQueue, StoredMessage};
use crate::{Behaviour, Fix};
use std::collections::BTreeMap;

/// A CK is due once `now − reviveTime` exceeds this (`ackTimeInterval + 1 s`).
pub const REVIVE_MARGIN: Millis = ACK_TIME_INTERVAL + SECOND;

/// When a CK becomes due for revive: strictly more than 2 s after its revive time, and
/// never before the timer has delivered it.
pub fn due_at(ck: &PopCheckPoint, visible_at: Millis) -> Millis {
    (ck.revive_time() + REVIVE_MARGIN + 1).max(visible_at)
}

/// One revive queue's reviver state.
#[derive(Clone, Debug, Default)]
struct ReviveState {
    /// The in-memory `reviveOffset` (−1 = none yet); lost on a crash.
    revive_offset: i64,
    /// CKs not yet passed by revive progress, by delivery order (visible_at, log offset),
    /// with the time they become due. The first entry is the CK that blocks the reviver.
    unrevived: BTreeMap<(Millis, u64), Millis>,
    /// With `enableSkipLongAwaitingAck`: when every ACK written so far is old enough to be
    /// turned into a mock CK, so a tail of ACKs behind the last CK can be passed.
    ack_tail_wake: Option<Millis>,
}

/// The revivers of every revive queue, and their tick.
#[derive(Clone, Debug, Default)]
pub struct PopReviveService {
    queues: Vec<ReviveState>,
    /// The last tick that ran, so the next one is strictly later.
    last_tick: Option<Millis>,
}

impl PopReviveService {
    pub fn new(revive_queue_num: u32) -> Self {
        Self {
            queues: (0..revive_queue_num)
                .map(|_| ReviveState {
                    revive_offset: -1,
                    ..Default::default()
                })
                .collect(),
            last_tick: None,
        }
    }

    /// A CK was written to a revive queue.
    pub fn on_ck_written(
        &mut self,
        revive_qid: u32,
        visible_at: Millis,
        log_offset: u64,
        due: Millis,
    ) {
        self.queues[revive_qid as usize]
            .unrevived
            .insert((visible_at, log_offset), due);
    }

    /// An ACK was written; with `enableSkipLongAwaitingAck` it can become a mock CK once it
    /// has waited `reviveAckWaitMs` past its deliver time.
    pub fn on_ack_written(
        &mut self,
        revive_qid: u32,
        deliver_at: Millis,
        visible_at: Millis,
        wait: Millis,
    ) {
        let wake = (deliver_at + wait + 1).max(visible_at);
        let state = &mut self.queues[revive_qid as usize];
        state.ack_tail_wake = state.ack_tail_wake.max(Some(wake));
    }

    /// The earliest time any reviver can move: a due CK at the head of its queue, else (with
    /// `enableSkipLongAwaitingAck`) the time its ACK tail can be mocked past.
    fn next_due(&self) -> Option<Millis> {
        self.queues
            .iter()
            .filter_map(|q| match q.unrevived.first_key_value() {
                Some((_, &due)) => Some(due),
                None => q.ack_tail_wake,
            })
            .min()
    }

    /// The next reviver tick that can revive something, on the `reviveInterval` grid.
    pub fn next_deadline(&self, revive_interval: Millis) -> Option<Millis> {
        let due = self.next_due()?;
        let earliest = self.last_tick.map_or(due, |t| due.max(t + 1));
        Some(earliest.div_ceil(revive_interval) * revive_interval)
    }

    /// A restart: in-memory offsets fall back to the committed revive-group offsets; the
    /// pending-CK index is rebuilt from the revive log.
    /// `ack_wait` is `reviveAckWaitMs` when `enableSkipLongAwaitingAck` is on.
    pub fn restart(
        &mut self,
        committed: &[i64],
        queues: &[&ReviveQueue],
        ack_wait: Option<Millis>,
    ) {
        for (qid, state) in self.queues.iter_mut().enumerate() {
            state.revive_offset = committed[qid];
            state.unrevived.clear();
            state.ack_tail_wake = None;
            let q = queues[qid];
            let from = u64::try_from(committed[qid] + 1).unwrap_or(0);
            let delivered = (from..q.max_offset()).map(|o| q.log_offset_at(o));
            let pending = q.pending().map(|(_, log)| log);
            for log_offset in delivered.chain(pending) {
                let entry = q.entry(log_offset);
                let visible = entry.visible_at();
                match &entry.record {
                    ReviveRecord::Ck(ck) => {
                        state
                            .unrevived
                            .insert((visible, log_offset), due_at(ck, visible));
                    }
                    ReviveRecord::Ack(_) => {
                        if let Some(wait) = ack_wait {
                            let wake = (entry.deliver_at + wait + 1).max(visible);
                            state.ack_tail_wake = state.ack_tail_wake.max(Some(wake));
                        }
                    }
                }
            }
        }
        self.last_tick = None;
    }
}

/// What one scan of a revive queue collected (`ConsumeReviveObj`).
struct ConsumeReviveObj {
    /// mergeKey → CK with its queue offset set in `revive_offset`.
    map: BTreeMap<String, PopCheckPoint>,
    old_offset: i64,
}

impl Broker {
    /// One tick of every reviver (`PopReviveService.run` body).
    pub(crate) fn pop_revive_tick(&mut self, now: Millis) {
        if !self.config.timer_wheel_enable {
            return;
        }
        for qid in 0..self.store.revive_queue_num() {
            self.revive_queue_tick(now, qid);
        }
        self.revive.last_tick = Some(now);
    }

    fn revive_queue_tick(&mut self, now: Millis, qid: u32) {
        self.store.revive_queue_mut(qid).deliver_due(now);
        let obj = self.consume_revive_message(now, qid);
        self.merge_and_revive(now, qid, obj);
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

    /// `consumeReviveMessage`: read every delivered record after the offset; CKs go into the
    /// map (a later CK with the same key replaces the earlier, as upstream's HashMap), ACKs
    /// set bits of the CK with their key or are dropped (unless `enableSkipLongAwaitingAck`
    /// turns a long-orphaned ACK into a mock CK so the offset can move past it).
    fn consume_revive_message(&mut self, now: Millis, qid: u32) -> ConsumeReviveObj {
        let revive_topic = self.store.revive_topic().to_owned();
        let committed = self.offsets.query_offset(REVIVE_GROUP, &revive_topic, qid);
        let state = &self.revive.queues[qid as usize];
        let old_offset = state.revive_offset.max(committed);
        let mut obj = ConsumeReviveObj {
            map: BTreeMap::new(),
            old_offset,
        };
        let mut mocks = BTreeMap::new();
        let q = self.store.revive_queue(qid);
        let start = u64::try_from(old_offset + 1).unwrap_or(0);
        for offset in start..q.max_offset() {
            let entry = q.at(offset).expect("delivered record");
            match &entry.record {
                ReviveRecord::Ck(ck) => {
                    let mut ck = ck.clone();
                    ck.revive_offset = offset;
                    obj.map.insert(self.revive_ck_key(&ck), ck);
                }
                ReviveRecord::Ack(ack) => {
                    let key = self.revive_ack_key(ack);
                    match obj.map.get_mut(&key) {
                        Some(ck) => {
                            for &ao in &ack.ack_offsets {
                                if let Some(i) = ck.index_of_ack(ao) {
                                    ck.bit_map |= 1 << i;
                                }
                            }
                        }
                        None => {
                            let waited = now.saturating_sub(entry.deliver_at);
                            if self.config.enable_skip_long_awaiting_ack
                                && waited > self.config.revive_ack_wait_ms
                            {
                                mocks.insert(key, mock_ck_for_ack(ack, offset));
                            }
                        }
                    }
                }
            }
        }
        // Upstream keeps mocks apart while scanning and `putAll`s them at the end: the last
        // orphan ACK of a key wins, and a mock replaces a real CK with the same key.
        obj.map.extend(mocks);
        obj
    }

    /// `mergeAndRevive`: CKs in revive-offset order; stop at the first that is not due.
    fn merge_and_revive(&mut self, now: Millis, qid: u32, obj: ConsumeReviveObj) {
        let mut sorted: Vec<PopCheckPoint> = obj.map.into_values().collect();
        sorted.sort_by_key(|ck| ck.revive_offset);
        let mut new_offset = obj.old_offset;
        for ck in &sorted {
            if now.saturating_sub(ck.revive_time()) <= REVIVE_MARGIN {
                break;
            }
            let normal_topic = keys::parse_normal_topic(&ck.topic, &ck.cid);
            if self.store.topic_config(&normal_topic).is_some() && self.groups.contains(&ck.cid) {
                self.revive_msg_from_ck(now, ck);
            }
            new_offset = ck.revive_offset as i64;
        }
        if new_offset > obj.old_offset {
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
            self.forget_revived(qid, new_offset as u64);
        }
        self.revive.queues[qid as usize].revive_offset = new_offset;
        self.settle_ack_tail(qid, new_offset);
    }

    /// Once nothing is left beyond the revive offset, the ACK-tail wake-up is spent. Not
    /// before: an ACK that matched a CK in this scan stays behind that CK's offset, and only
    /// the next scan, which starts past the CK, finds it orphaned and mocks it. Once the
    /// wake-up's time has come every ACK left is old enough to mock, so the next tick moves.
    fn settle_ack_tail(&mut self, qid: u32, new_offset: i64) {
        let q = self.store.revive_queue(qid);
        let at_end = new_offset + 1 >= q.max_offset() as i64 && q.pending().next().is_none();
        if at_end {
            self.revive.queues[qid as usize].ack_tail_wake = None;
        }
    }

    /// Drops from the pending-CK index every CK at or below the new revive offset.
    fn forget_revived(&mut self, qid: u32, new_offset: u64) {
        let q = self.store.revive_queue(qid);
        let log = q.log_offset_at(new_offset);
        let limit = (q.entry(log).visible_at(), log);
        let state = &mut self.revive.queues[qid as usize];
        while let Some((&key, _)) = state.unrevived.first_key_value() {
            if key > limit {
                break;
            }
            state.unrevived.pop_first();
        }
    }

    /// `reviveMsgFromCk`: every message whose bit is clear goes to the retry topic. A message
    /// no longer in the store is skipped, as upstream treats it as done.
    fn revive_msg_from_ck(&mut self, now: Millis, ck: &PopCheckPoint) {
        for i in 0..usize::from(ck.num) {
            if ck.bit_map & (1 << i) != 0 {
                continue;
            }
            let offset = ck.ack_offset_by_index(i);
            let Some(msg) = self.store.message(&ck.topic, ck.queue_id, offset).cloned() else {
                continue;
            };
            self.revive_retry(now, ck, offset, msg);
        }
    }

    /// `reviveRetry`: put a copy with reconsumeTimes + 1 to the POP retry topic (the CK's
    /// own topic if that already is one), creating it with one queue on first use
    /// (`addRetryTopicIfNotExist`, which also `initPopRetryOffset`s the group at 0).
    pub(crate) fn revive_retry(
        &mut self,
        now: Millis,
        ck: &PopCheckPoint,
        offset: u64,
        msg: StoredMessage,
    ) {
        let retry_topic = if keys::is_retry_topic(&ck.topic) {
            ck.topic.clone()
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
        let retry_offset = self.store.put_message(&retry_topic, 0, copy);
        self.notify_message_arriving(now, &retry_topic, 0);
        self.events.push(BrokerEvent::Revived {
            at: now,
            group: ck.cid.clone(),
            topic: origin_topic,
            msg_id: msg.msg_id,
            ck: ck.ck_ref(),
            queue_offset: offset,
            retry_topic,
            retry_queue_offset: retry_offset,
            reconsume_times,
        });
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
            broker_name: bn.map(str::to_owned),
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

    #[test]
    fn a_ck_is_due_strictly_after_two_seconds_past_its_revive_time() {
        assert_eq!(due_at(&ck(), 0), 77 + 1_000 + 2_001);
        assert_eq!(
            due_at(&ck(), 10_000),
            10_000,
            "never before the timer delivers it"
        );
        let mut s = PopReviveService::new(2);
        assert_eq!(s.next_deadline(1_000), None);
        s.on_ck_written(1, 76, 0, 3_078);
        assert_eq!(
            s.next_deadline(1_000),
            Some(4_000),
            "on the reviveInterval grid"
        );
        s.last_tick = Some(4_000);
        assert_eq!(
            s.next_deadline(1_000),
            Some(5_000),
            "strictly after the last tick"
        );
    }
}
