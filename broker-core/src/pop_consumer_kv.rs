//! The RIP-73 KV pop path, `PopConsumerService` (`broker/.../pop/PopConsumerService.java`),
//! taken when `popConsumerKVServiceEnable`: one lock per group@topic, `requestCount`-based
//! queue start and retry preference, the FIFO block check *before* `getPopOffset` (where a
//! pending reset is applied), read position from the pull table (non-FIFO) or the commit
//! table (FIFO, since #9696), and `handleGetMessageResult`'s offset bookkeeping. Non-FIFO
//! deliveries become `PopConsumerRecord`s in the KV store (RocksDB, so they survive a
//! crash); an ack deletes the record and the service revives expired ones to the retry
//! topic. `PopConsumerCache` (the in-memory record cache) is not modelled: records always
//! go to the store, so the commit offset is the read start.

use crate::ack_message_processor::AckTarget;
use crate::broker::Broker;
use crate::checkpoint::PopCheckPoint;
use crate::config::Millis;
use crate::consumer_order_info_manager::OrderCountInfo;
use crate::events::{BrokerEvent, ReadFrom};
use crate::inflight::OpId;
use crate::keys;
use crate::locks::TryLocks;
use crate::pop_long_polling_service::PopEnd;
use crate::pop_message_processor::PopContext;
use crate::protocol::{InitMode, PopMessageRequest, POP_ORDER_REVIVE_QUEUE};
use crate::store::GetMessageStatus;
use crate::{Behaviour, Fix};
use std::collections::{BTreeMap, VecDeque};

/// The revive thread's pause when it found little to do.
pub const KV_REVIVE_INTERVAL: Millis = 500;
/// `revive` only takes records expired at least this long ago (`upperTime = now − 50`).
const KV_REVIVE_LAG: Millis = 50;

/// `PopConsumerRecord`'s key: visibility timeout, group, topic, queue, offset.
pub type RecordKey = (Millis, String, String, u32, u64);

/// `PopConsumerRecord`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PopConsumerRecord {
    pub pop_time: Millis,
    pub group: String,
    pub topic: String,
    pub queue_id: u32,
    /// 0 normal, 1 retry V1, 2 retry V2.
    pub retry_flag: u8,
    pub invisible_time: Millis,
    pub offset: u64,
    pub attempt_id: Option<String>,
}

impl PopConsumerRecord {
    /// `getVisibilityTimeout`.
    pub fn visibility_timeout(&self) -> Millis {
        self.pop_time + self.invisible_time
    }

    fn key(&self) -> RecordKey {
        (
            self.visibility_timeout(),
            self.group.clone(),
            self.topic.clone(),
            self.queue_id,
            self.offset,
        )
    }
}

/// The service's state: `PopConsumerRocksdbStore` (durable), `requestCountTable` and the
/// `PopConsumerLockService` locks.
#[derive(Clone, Debug, Default)]
pub struct PopConsumerService {
    records: BTreeMap<RecordKey, PopConsumerRecord>,
    request_count: BTreeMap<String, u64>,
    last_tick: Option<Millis>,
    pub(crate) locks: TryLocks,
}

/// `PopConsumerLockService`'s key: `groupId@topicId`.
pub(crate) fn kv_lock_key(group: &str, topic: &str) -> String {
    format!("{group}{}{topic}", keys::TOPIC_GROUP_SEPARATOR)
}

impl PopConsumerService {
    /// A crash loses the in-memory counters and locks; the KV store survives.
    pub fn clear(&mut self) {
        self.request_count.clear();
        self.last_tick = None;
        self.locks.clear();
    }

    /// The next revive pass that has an expired record to revive.
    pub fn next_deadline(&self) -> Option<Millis> {
        let (first, ..) = self.records.first_key_value()?.0;
        let due = first + KV_REVIVE_LAG;
        let earliest = self.last_tick.map_or(due, |t| due.max(t + 1));
        Some(earliest.div_ceil(KV_REVIVE_INTERVAL) * KV_REVIVE_INTERVAL)
    }

    fn write(&mut self, record: PopConsumerRecord) {
        self.records.insert(record.key(), record);
    }

    /// `deleteRecords`: by key, so the popTime and invisibleTime must match the receipt's.
    fn delete(&mut self, key: &RecordKey) -> bool {
        self.records.remove(key).is_some()
    }
}

/// A KV pop in flight (`PopConsumerService.popAsync`): the group@topic lock is taken first
/// (held: an empty answer), then one `getMessageAsync` future per queue, chained; records
/// are written and the lock released when the chain completes. A step ends at each read.
#[derive(Debug)]
pub(crate) struct KvPop {
    ctx: PopContext,
    plan: VecDeque<(String, u32, u8)>,
    /// The queue whose read is in flight: topic, queue, retry flag, consume offset, and why
    /// that offset.
    held: Option<(String, u32, u8, u64, ReadFrom)>,
    /// `PopConsumerRecord`s of the non-FIFO messages found, written at the end.
    records: Vec<PopConsumerRecord>,
    locked: bool,
}

impl Broker {
    /// `PopConsumerService.popAsync` up to the first queue: `requestCount`, the retry
    /// preference and the queue plan.
    pub(crate) fn start_pop_kv(&mut self, now: Millis, req: PopMessageRequest) -> KvPop {
        let request_key = format!("{}@{}", req.consumer_group, req.topic);
        let counter = self.kv.request_count.entry(request_key).or_default();
        let request_count = *counter;
        *counter += 1;
        let prefer_retry = request_count % 5 == 0;
        let fifo = req.order;
        let retry_v1 = keys::pop_retry_topic_v1(&req.topic, &req.consumer_group);
        let retry_v2 = keys::pop_retry_topic_v2(&req.topic, &req.consumer_group);
        let mut plan = VecDeque::new();
        let retry_topics = |plan: &mut VecDeque<(String, u32, u8)>| {
            if self.config.retrieve_message_from_pop_retry_topic_v1 {
                plan.push_back((retry_v1.clone(), 0, 1));
            }
            if self.config.enable_retry_topic_v2 {
                plan.push_back((retry_v2.clone(), 0, 2));
            }
        };
        if !fifo && prefer_retry {
            retry_topics(&mut plan);
        }
        if req.queue_id >= 0 {
            plan.push_back((req.topic.clone(), req.queue_id as u32, 0));
        } else {
            let read = self
                .store
                .topic_config(&req.topic)
                .map_or(0, |c| c.read_queue_nums);
            for i in 0..u64::from(read) {
                let q = ((request_count + i) % u64::from(read)) as u32;
                plan.push_back((req.topic.clone(), q, 0));
            }
            if !fifo && !prefer_retry {
                retry_topics(&mut plan);
            }
        }
        KvPop {
            ctx: PopContext {
                req,
                pop_time: now,
                revive_qid: if fifo { POP_ORDER_REVIVE_QUEUE } else { 0 },
                random_q: 0,
                msgs: Vec::new(),
                rest_num: 0,
            },
            plan,
            held: None,
            records: Vec::new(),
            locked: false,
        }
    }

    /// One step of a KV pop. The first takes `consumerLockService.tryLock(group, topic)`;
    /// each later one finishes the read in flight and starts the next queue's; the last
    /// writes the records and unlocks. `Some` at the end: the answer, or parked (long
    /// polling).
    pub(crate) fn step_pop_kv(&mut self, now: Millis, op: OpId, pop: &mut KvPop) -> Option<PopEnd> {
        let lock = kv_lock_key(&pop.ctx.req.consumer_group, &pop.ctx.req.topic);
        if !pop.locked {
            if !self.kv.locks.try_lock(&lock, op) {
                // `popAsync` returns the empty context: nothing found, so the processor's
                // callback parks the request like any empty pop.
                return Some(self.finish_pop(now, op, &mut pop.ctx));
            }
            pop.locked = true;
        }
        loop {
            if let Some((topic, queue_id, retry_flag, offset, from)) = pop.held.take() {
                self.kv_handle_read(now, pop, &topic, queue_id, retry_flag, offset, from);
            }
            let Some((topic, queue_id, retry_flag)) = pop.plan.pop_front() else {
                break;
            };
            if let Some((offset, from)) =
                self.kv_begin_queue(now, op, &mut pop.ctx, &topic, queue_id)
            {
                pop.held = Some((topic, queue_id, retry_flag, offset, from));
                return None;
            }
        }
        for record in std::mem::take(&mut pop.records) {
            self.kv.write(record);
        }
        if let Some(holder) = self.kv.locks.unlock(&lock, op) {
            self.events.push(BrokerEvent::LockReleasedByOther {
                at: now,
                lock,
                holder: holder.0,
                by: op.0,
                site: "PopConsumerService.popAsync".to_owned(),
            });
        }
        Some(self.finish_pop(now, op, &mut pop.ctx))
    }

    /// `getMessageAsync(future, …)` for one queue, up to the read: the FIFO block check,
    /// the remaining batch, `getPopOffset` (which consumes a pending reset). The offset to
    /// read from, and why, when a read is due.
    fn kv_begin_queue(
        &mut self,
        now: Millis,
        op: OpId,
        ctx: &mut PopContext,
        topic: &str,
        queue_id: u32,
    ) -> Option<(u64, ReadFrom)> {
        let req = &ctx.req;
        let group = req.consumer_group.clone();
        if req.order
            && self
                .order_info
                .check_block(req.attempt_id.as_deref(), topic, &group, queue_id, now)
        {
            return None;
        }
        if ctx.remaining() == 0 {
            return None;
        }
        let (init_mode, fifo) = (req.init_mode, req.order);
        let (offset, from) =
            self.kv_get_pop_offset(now, op, &group, topic, queue_id, init_mode, fifo);
        Some((u64::try_from(offset).unwrap_or(0), from))
    }

    /// The read (with offset correction) and `handleGetMessageResult`'s bookkeeping.
    #[allow(clippy::too_many_arguments)]
    fn kv_handle_read(
        &mut self,
        now: Millis,
        pop: &mut KvPop,
        topic: &str,
        queue_id: u32,
        retry_flag: u8,
        consume_offset: u64,
        from: ReadFrom,
    ) {
        let ctx = &mut pop.ctx;
        let group = ctx.req.consumer_group.clone();
        let remain = ctx.remaining();
        let (result, from) = self.read_with_offset_correction(
            now,
            &group,
            topic,
            queue_id,
            consume_offset,
            remain,
            from,
        );
        let found = result.status == GetMessageStatus::Found && !result.msgs.is_empty();
        let mut order_count = OrderCountInfo::default();
        if found {
            let offsets: Vec<u64> = result.msgs.iter().map(|(o, _)| *o).collect();
            if ctx.req.order {
                order_count = self.order_info.update(
                    ctx.req.attempt_id.as_deref(),
                    topic,
                    &group,
                    queue_id,
                    ctx.pop_time,
                    ctx.req.invisible_time,
                    &offsets,
                    now,
                );
            }
            ctx.rest_num += result.max_offset.saturating_sub(result.next_begin_offset);
        }
        let mut commit = consume_offset;
        if ctx.req.order {
            if !found {
                commit = result.next_begin_offset;
            }
        } else {
            self.offsets.commit_pull_offset(
                &mut self.events,
                now,
                "PopConsumerService",
                &group,
                topic,
                queue_id,
                result.next_begin_offset as i64,
            );
        }
        self.offsets.commit_offset(
            &mut self.events,
            now,
            "PopConsumerService",
            &group,
            topic,
            queue_id,
            commit as i64,
        );
        if !found {
            return;
        }
        self.pop_read(now, ctx, topic, queue_id, &result.msgs, from);
        for (queue_offset, msg) in result.msgs {
            if !ctx.req.order {
                pop.records.push(PopConsumerRecord {
                    pop_time: ctx.pop_time,
                    group: group.clone(),
                    topic: topic.to_owned(),
                    queue_id,
                    retry_flag,
                    invisible_time: ctx.req.invisible_time,
                    offset: queue_offset,
                    attempt_id: ctx.req.attempt_id.clone(),
                });
            }
            let reconsume_times = if ctx.req.order {
                order_count.reconsume_times(queue_offset)
            } else {
                msg.reconsume_times
            };
            let view = self.message_view(
                ctx,
                topic,
                retry_flag != 0,
                queue_id,
                consume_offset,
                queue_offset,
                msg,
                reconsume_times,
            );
            ctx.msgs.push(view);
        }
    }

    /// `PopConsumerService.clearCache(group, topic, queueId)` as the snapshot writes it:
    /// `while (tryLock) {}` (a free lock is taken, a held one is not), then, in `finally`,
    /// `unlock`: the lock ends up free whoever held it, the popAsync calling it included.
    /// The proposed fix `clear-cache-without-lock` (read only here, the mirror of #10250)
    /// drops the lock from it. `PopConsumerCache` is not modelled, so there are no records to
    /// remove.
    pub(crate) fn kv_clear_cache(&mut self, now: Millis, op: OpId, group: &str, topic: &str) {
        if self.behaviours.has_fix(Fix::ClearCacheWithoutLock) {
            return;
        }
        let lock = kv_lock_key(group, topic);
        let _ = self.kv.locks.try_lock(&lock, op);
        if let Some(holder) = self.kv.locks.unlock(&lock, op) {
            self.events.push(BrokerEvent::LockReleasedByOther {
                at: now,
                lock,
                holder: holder.0,
                by: op.0,
                site: "PopConsumerService.clearCache".to_owned(),
            });
        }
    }

    /// `PopConsumerService.getPopOffset`: FIFO reads `queryOffset` (since #9696; before it
    /// `queryPullOffset`, behaviour `kv-fifo-reads-pull-offset`, read only here), non-FIFO
    /// `queryPullOffset`; init if negative; then a pending reset is consumed and wins.
    #[allow(clippy::too_many_arguments)]
    fn kv_get_pop_offset(
        &mut self,
        now: Millis,
        op: OpId,
        group: &str,
        topic: &str,
        queue_id: u32,
        init_mode: InitMode,
        fifo: bool,
    ) -> (i64, ReadFrom) {
        let fifo_reads_commit = fifo && !self.behaviours.is_on(Behaviour::KvFifoReadsPullOffset);
        let (mut offset, mut from) = if fifo_reads_commit {
            (
                self.offsets.query_offset(group, topic, queue_id),
                ReadFrom::CommitOffset,
            )
        } else {
            let from = if self.offsets.pull_offset(group, topic, queue_id).is_some() {
                ReadFrom::PullOffset
            } else {
                ReadFrom::CommitOffset
            };
            (self.offsets.query_pull_offset(group, topic, queue_id), from)
        };
        if offset < 0 {
            offset = self.get_init_offset(now, topic, group, queue_id, init_mode, true);
            from = ReadFrom::InitOffset;
        }
        let Some(reset) = self
            .offsets
            .query_then_erase_reset_offset(topic, group, queue_id)
        else {
            return (offset, from);
        };
        self.kv_clear_cache(now, op, group, topic);
        self.order_info.clear_block(topic, group, queue_id);
        self.offsets.commit_offset(
            &mut self.events,
            now,
            "ResetPopOffset",
            group,
            topic,
            queue_id,
            reset,
        );
        self.events.push(BrokerEvent::ResetConsumed {
            at: now,
            group: group.to_owned(),
            topic: topic.to_owned(),
            queue_id,
            offset: reset,
        });
        (reset, ReadFrom::PendingReset)
    }

    /// `PopConsumerService.ackAsync`: delete the record the receipt names (the FIFO branch
    /// of `appendAckNew`, `ackOrderlyNew`, is in `ack_message_processor`).
    pub(crate) fn ack_kv_delete(&mut self, t: &AckTarget, offset: u64) {
        let key = (
            t.pop_time + t.invisible_time,
            t.group.clone(),
            t.topic.clone(),
            t.queue_id,
            offset,
        );
        self.kv.delete(&key);
    }

    /// `changeInvisibilityDuration`: write a record with the new popTime / invisible time,
    /// then delete the old one.
    pub(crate) fn change_invisibility_duration_kv(
        &mut self,
        now: Millis,
        t: &AckTarget,
        offset: u64,
        invisible_time: Millis,
        _bn: &str,
    ) {
        let retry_flag = keys::topic_type(&t.topic);
        self.kv.write(PopConsumerRecord {
            pop_time: now,
            group: t.group.clone(),
            topic: t.topic.clone(),
            queue_id: t.queue_id,
            retry_flag,
            invisible_time,
            offset,
            attempt_id: None,
        });
        let old = (
            t.pop_time + t.invisible_time,
            t.group.clone(),
            t.topic.clone(),
            t.queue_id,
            offset,
        );
        self.kv.delete(&old);
    }

    /// `PopConsumerService.revive`: every record expired at least 50 ms ago goes to the retry
    /// topic with reconsumeTimes + 1 and is deleted. (Puts never fail in the model, so the
    /// back-off re-write is not reached.)
    pub(crate) fn pop_kv_revive_tick(&mut self, now: Millis) {
        self.kv.last_tick = Some(now);
        while let Some((key, _)) = self.kv.records.first_key_value() {
            if key.0 + KV_REVIVE_LAG > now {
                break;
            }
            let (_, record) = self.kv.records.pop_first().expect("non-empty");
            self.kv_revive_record(now, &record);
        }
    }

    fn kv_revive_record(&mut self, now: Millis, record: &PopConsumerRecord) {
        let Some(msg) = self
            .store
            .message(&record.topic, record.queue_id, record.offset)
            .cloned()
        else {
            return;
        };
        let ck = PopCheckPoint {
            start_offset: record.offset,
            pop_time: record.pop_time,
            invisible_time: record.invisible_time,
            bit_map: 0,
            num: 1,
            queue_id: record.queue_id,
            topic: record.topic.clone(),
            cid: record.group.clone(),
            revive_offset: 0,
            queue_offset_diff: vec![0],
            broker_name: self.config.broker_name.clone(),
            re_put_times: 0,
        };
        self.revive_retry(now, &ck, record.offset, msg);
    }
}
