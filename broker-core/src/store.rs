//! `MessageStore` (`DefaultMessageStore`) as POP sees it: topics with consume queues of
//! logical offsets, and the revive topic `rmq_sys_REVIVE_LOG_<cluster>` whose records are
//! timer messages (`TimerMessageStore`): a record reaches its revive queue, and so becomes
//! visible to `PopReviveService`, only once `now ≥ deliverTimeMs`. CommitLog bytes, tags
//! hashes and filters are not modelled. Everything here survives a crash (it is on disk).

use crate::checkpoint::ReviveRecord;
use crate::config::Millis;
use std::collections::{BTreeMap, BTreeSet};

/// A message in a consume queue.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StoredMessage {
    /// `UNIQ_KEY`: identity across revives.
    pub msg_id: String,
    pub tags: Option<String>,
    pub born_timestamp: Millis,
    pub store_timestamp: Millis,
    pub reconsume_times: u32,
    /// For a revived copy: the topic it was first sent to.
    pub origin_topic: Option<String>,
    /// `PROPERTY_FIRST_POP_TIME`, set by the first revive.
    pub first_pop_time: Option<Millis>,
    /// Its position in the commit log, assigned by [`MessageStore::put_message`] (whatever
    /// the caller set). The model counts records, not bytes.
    pub commit_log_offset: u64,
}

/// `TopicConfig`: what the POP path reads of it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TopicConfig {
    pub read_queue_nums: u32,
    pub write_queue_nums: u32,
}

/// One `ConsumeQueue`: entry i has logical offset `min_offset + i`.
#[derive(Clone, Debug, Default)]
struct ConsumeQueue {
    min_offset: u64,
    msgs: Vec<StoredMessage>,
}

impl ConsumeQueue {
    fn max_offset(&self) -> u64 {
        self.min_offset + self.msgs.len() as u64
    }
}

/// `GetMessageStatus` values the POP path distinguishes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum GetMessageStatus {
    Found,
    NoMessageInQueue,
    OffsetTooSmall,
    OffsetOverflowOne,
    OffsetOverflowBadly,
    NoMatchedLogicQueue,
}

/// `GetMessageResult`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GetMessageResult {
    pub status: GetMessageStatus,
    pub next_begin_offset: u64,
    pub min_offset: u64,
    pub max_offset: u64,
    /// (queue offset, message), ascending.
    pub msgs: Vec<(u64, StoredMessage)>,
}

/// One revive-log record with its timer metadata.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReviveEntry {
    pub record: ReviveRecord,
    /// `deliverTimeMs`.
    pub deliver_at: Millis,
    pub written_at: Millis,
}

impl ReviveEntry {
    /// When the timer hands the record to the revive queue: its deliver time, or at once if
    /// that has already passed when it is written.
    pub fn visible_at(&self) -> Millis {
        self.deliver_at.max(self.written_at)
    }
}

/// One revive queue plus the timer wheel in front of it. Records are numbered in write order
/// (the "revive log offset" of [`crate::BrokerEvent::CkWritten`]); the timer appends them to
/// the queue in `(visible_at, write order)` order, which assigns the queue offsets the
/// reviver reads and commits, as upstream's timer re-put does.
#[derive(Clone, Debug, Default)]
pub struct ReviveQueue {
    entries: Vec<ReviveEntry>,
    /// Written, not yet delivered: (visible_at, log offset).
    pending: BTreeSet<(Millis, u64)>,
    /// Queue offset → log offset.
    delivered: Vec<u64>,
    /// The latest deliver time written so far.
    last_deliver_at: Option<Millis>,
}

impl ReviveQueue {
    /// Writes a record; returns its log offset.
    pub fn append(&mut self, record: ReviveRecord, deliver_at: Millis, now: Millis) -> u64 {
        let entry = ReviveEntry {
            record,
            deliver_at,
            written_at: now,
        };
        let log_offset = self.entries.len() as u64;
        self.pending.insert((entry.visible_at(), log_offset));
        self.last_deliver_at = self.last_deliver_at.max(Some(deliver_at));
        self.entries.push(entry);
        log_offset
    }

    /// The timer delivers every record whose time has come, in order.
    pub fn deliver_due(&mut self, now: Millis) {
        while let Some(&(at, log_offset)) = self.pending.first() {
            if at > now {
                break;
            }
            self.pending.pop_first();
            self.delivered.push(log_offset);
        }
        debug_assert_eq!(
            self.delivered.len() + self.pending.len(),
            self.entries.len()
        );
    }

    /// Max queue offset (exclusive) of the delivered part.
    pub fn max_offset(&self) -> u64 {
        self.delivered.len() as u64
    }

    /// The delivered record at a queue offset.
    pub fn at(&self, queue_offset: u64) -> Option<&ReviveEntry> {
        let log_offset = *self.delivered.get(usize::try_from(queue_offset).ok()?)?;
        self.entries.get(log_offset as usize)
    }

    /// A record by log offset.
    pub fn entry(&self, log_offset: u64) -> &ReviveEntry {
        &self.entries[log_offset as usize]
    }

    /// Log offset of the record at a queue offset.
    pub fn log_offset_at(&self, queue_offset: u64) -> u64 {
        self.delivered[queue_offset as usize]
    }

    /// Records still in the timer, in delivery order: (visible_at, log offset).
    pub fn pending(&self) -> impl Iterator<Item = (Millis, u64)> + '_ {
        self.pending.iter().copied()
    }

    /// The earliest time the timer will deliver something.
    #[cfg(test)]
    pub fn next_delivery(&self) -> Option<Millis> {
        self.pending.first().map(|&(at, _)| at)
    }

    /// The latest deliver time of any record.
    pub fn last_deliver_at(&self) -> Option<Millis> {
        self.last_deliver_at
    }
}

/// The message store: topic configs (`TopicConfigManager`, persisted on change), consume
/// queues, and the revive topic's queues.
#[derive(Clone, Debug)]
pub struct MessageStore {
    topics: BTreeMap<String, TopicConfig>,
    queues: BTreeMap<String, Vec<ConsumeQueue>>,
    revive_topic: String,
    revive: Vec<ReviveQueue>,
    /// The commit log as far as lookups go: entry i is where record i was put.
    commit_log: Vec<(String, u32, u64)>,
}

impl MessageStore {
    pub fn new(revive_topic: String, revive_queue_num: u32) -> Self {
        assert!(revive_queue_num > 0, "reviveQueueNum must be positive");
        Self {
            topics: BTreeMap::new(),
            queues: BTreeMap::new(),
            revive_topic,
            revive: vec![ReviveQueue::default(); revive_queue_num as usize],
            commit_log: Vec::new(),
        }
    }

    /// `TopicConfigManager.updateTopicConfig`: create, or grow the queue count.
    pub fn create_topic(&mut self, topic: &str, queue_nums: u32) {
        assert!(queue_nums > 0, "a topic needs a queue");
        let config = TopicConfig {
            read_queue_nums: queue_nums,
            write_queue_nums: queue_nums,
        };
        self.topics.insert(topic.to_owned(), config);
        let queues = self.queues.entry(topic.to_owned()).or_default();
        if queues.len() < queue_nums as usize {
            queues.resize_with(queue_nums as usize, ConsumeQueue::default);
        }
    }

    /// `TopicConfigManager.selectTopicConfig`.
    pub fn topic_config(&self, topic: &str) -> Option<TopicConfig> {
        self.topics.get(topic).copied()
    }

    pub fn revive_topic(&self) -> &str {
        &self.revive_topic
    }

    fn queue(&self, topic: &str, queue_id: u32) -> Option<&ConsumeQueue> {
        self.queues.get(topic)?.get(queue_id as usize)
    }

    /// `putMessage`: appends, assigns the commit log offset, and returns the logical offset.
    pub fn put_message(&mut self, topic: &str, queue_id: u32, mut msg: StoredMessage) -> u64 {
        let q = self
            .queues
            .get_mut(topic)
            .and_then(|qs| qs.get_mut(queue_id as usize))
            .unwrap_or_else(|| panic!("put to a missing queue {topic}:{queue_id}"));
        let offset = q.max_offset();
        msg.commit_log_offset = self.commit_log.len() as u64;
        q.msgs.push(msg);
        self.commit_log.push((topic.to_owned(), queue_id, offset));
        offset
    }

    /// `lookMessageByOffset`: the message at a commit log offset, with where it is queued.
    pub fn look_message_by_offset(
        &self,
        commit_log_offset: u64,
    ) -> Option<(&str, u32, u64, &StoredMessage)> {
        let (topic, q, offset) = self
            .commit_log
            .get(usize::try_from(commit_log_offset).ok()?)?;
        let msg = self.message(topic, *q, *offset)?;
        Some((topic, *q, *offset, msg))
    }

    /// `getMinOffsetInQueue` (0 for an unknown queue, as upstream's empty queue).
    pub fn min_offset(&self, topic: &str, queue_id: u32) -> u64 {
        self.queue(topic, queue_id).map_or(0, |q| q.min_offset)
    }

    /// `getMaxOffsetInQueue` (exclusive).
    pub fn max_offset(&self, topic: &str, queue_id: u32) -> u64 {
        self.queue(topic, queue_id)
            .map_or(0, ConsumeQueue::max_offset)
    }

    /// `checkInMemByConsumeOffset(topic, q, offset, 1)`: the model keeps every message in
    /// memory, so this is "does the message exist".
    pub fn check_in_mem(&self, topic: &str, queue_id: u32, offset: u64) -> bool {
        self.queue(topic, queue_id)
            .is_some_and(|q| offset >= q.min_offset && offset < q.max_offset())
    }

    /// One message by offset (`getBizMessage` for the reviver).
    pub fn message(&self, topic: &str, queue_id: u32, offset: u64) -> Option<&StoredMessage> {
        let q = self.queue(topic, queue_id)?;
        let i = offset.checked_sub(q.min_offset)?;
        q.msgs.get(usize::try_from(i).ok()?)
    }

    /// `DefaultMessageStore.getMessage`: up to `max_nums` messages from `offset`, with the
    /// status and `nextBeginOffset` corrections upstream computes.
    pub fn get_message(
        &self,
        topic: &str,
        queue_id: u32,
        offset: u64,
        max_nums: u32,
    ) -> GetMessageResult {
        let Some(q) = self.queue(topic, queue_id) else {
            return GetMessageResult {
                status: GetMessageStatus::NoMatchedLogicQueue,
                next_begin_offset: 0,
                min_offset: 0,
                max_offset: 0,
                msgs: Vec::new(),
            };
        };
        let (min, max) = (q.min_offset, q.max_offset());
        let mut result = GetMessageResult {
            status: GetMessageStatus::Found,
            next_begin_offset: offset,
            min_offset: min,
            max_offset: max,
            msgs: Vec::new(),
        };
        if max == 0 {
            result.status = GetMessageStatus::NoMessageInQueue;
            result.next_begin_offset = 0;
        } else if offset < min {
            result.status = GetMessageStatus::OffsetTooSmall;
            result.next_begin_offset = min;
        } else if offset == max {
            result.status = GetMessageStatus::OffsetOverflowOne;
        } else if offset > max {
            result.status = GetMessageStatus::OffsetOverflowBadly;
            result.next_begin_offset = max;
        } else {
            let end = max.min(offset + u64::from(max_nums));
            for o in offset..end {
                result.msgs.push((o, q.msgs[(o - min) as usize].clone()));
            }
            result.next_begin_offset = end;
        }
        result
    }

    /// `getOffsetInQueueByTime`: the first offset stored at or after `timestamp`, else max.
    pub fn offset_by_time(&self, topic: &str, queue_id: u32, timestamp: Millis) -> u64 {
        let Some(q) = self.queue(topic, queue_id) else {
            return 0;
        };
        let i = q.msgs.partition_point(|m| m.store_timestamp < timestamp);
        q.min_offset + i as u64
    }

    /// A revive queue by id.
    pub fn revive_queue(&self, revive_qid: u32) -> &ReviveQueue {
        &self.revive[revive_qid as usize]
    }

    pub fn revive_queue_mut(&mut self, revive_qid: u32) -> &mut ReviveQueue {
        &mut self.revive[revive_qid as usize]
    }

    pub fn revive_queue_num(&self) -> u32 {
        self.revive.len() as u32
    }

    /// Every topic with its queue ranges, for the snapshot.
    pub fn ranges(&self) -> impl Iterator<Item = (&str, Vec<(u64, u64)>)> + '_ {
        self.queues.iter().map(|(t, qs)| {
            (
                t.as_str(),
                qs.iter().map(|q| (q.min_offset, q.max_offset())).collect(),
            )
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::checkpoint::{AckMsg, ReviveRecord};

    fn msg(id: &str, at: Millis) -> StoredMessage {
        StoredMessage {
            msg_id: id.into(),
            tags: None,
            born_timestamp: at,
            store_timestamp: at,
            reconsume_times: 0,
            origin_topic: None,
            first_pop_time: None,
            commit_log_offset: 0,
        }
    }

    #[test]
    fn get_message_statuses_follow_default_message_store() {
        let mut s = MessageStore::new("R".into(), 1);
        s.create_topic("T", 2);
        assert_eq!(
            s.get_message("T", 0, 0, 32).status,
            GetMessageStatus::NoMessageInQueue
        );
        assert_eq!(
            s.get_message("X", 0, 0, 32).status,
            GetMessageStatus::NoMatchedLogicQueue
        );
        for i in 0..5 {
            assert_eq!(s.put_message("T", 0, msg(&format!("m{i}"), i * 10)), i);
        }
        let r = s.get_message("T", 0, 1, 2);
        assert_eq!(r.status, GetMessageStatus::Found);
        assert_eq!(r.msgs.iter().map(|m| m.0).collect::<Vec<_>>(), vec![1, 2]);
        assert_eq!(r.next_begin_offset, 3);
        let r = s.get_message("T", 0, 5, 2);
        assert_eq!(
            (r.status, r.next_begin_offset),
            (GetMessageStatus::OffsetOverflowOne, 5)
        );
        let r = s.get_message("T", 0, 9, 2);
        assert_eq!(
            (r.status, r.next_begin_offset),
            (GetMessageStatus::OffsetOverflowBadly, 5)
        );
        assert_eq!(s.offset_by_time("T", 0, 25), 3);
        assert_eq!(s.offset_by_time("T", 0, 1000), 5);
        assert!(s.check_in_mem("T", 0, 0));
        assert!(!s.check_in_mem("T", 1, 0));
    }

    #[test]
    fn timer_delivers_in_deliver_time_order() {
        let mut q = ReviveQueue::default();
        let ack = |o| {
            ReviveRecord::Ack(AckMsg {
                ack_offsets: vec![o],
                start_offset: 0,
                consumer_group: "G".into(),
                topic: "T".into(),
                queue_id: 0,
                pop_time: 0,
                broker_name: None,
                batch: false,
            })
        };
        assert_eq!(q.append(ack(0), 5_000, 0), 0);
        assert_eq!(q.append(ack(1), 2_000, 0), 1);
        assert_eq!(q.append(ack(2), 100, 1_000), 2); // late: visible at once
        q.deliver_due(999);
        assert_eq!(q.max_offset(), 0);
        q.deliver_due(2_000);
        assert_eq!(q.max_offset(), 2);
        assert_eq!(q.log_offset_at(0), 2);
        assert_eq!(q.log_offset_at(1), 1);
        assert_eq!(q.next_delivery(), Some(5_000));
        q.deliver_due(10_000);
        assert_eq!(q.log_offset_at(2), 0);
        assert_eq!(q.last_deliver_at(), Some(5_000));
    }
}
