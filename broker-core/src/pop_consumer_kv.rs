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
use crate::events::BrokerEvent;
use crate::keys;
use crate::pop_message_processor::{pop_response, PopContext};
use crate::protocol::{
    InitMode, PopMessageRequest, Response, ResponseBody, POP_ORDER_REVIVE_QUEUE,
};
use crate::store::GetMessageStatus;
use crate::Behaviour;
use std::collections::BTreeMap;

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

/// The service's state: `PopConsumerRocksdbStore` (durable) and `requestCountTable`.
#[derive(Clone, Debug, Default)]
pub struct PopConsumerService {
    records: BTreeMap<RecordKey, PopConsumerRecord>,
    request_count: BTreeMap<String, u64>,
    last_tick: Option<Millis>,
}

impl PopConsumerService {
    /// A crash loses the in-memory counters; the KV store survives.
    pub fn clear(&mut self) {
        self.request_count.clear();
        self.last_tick = None;
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

impl Broker {
    /// `PopConsumerService.popAsync`.
    pub(crate) fn pop_kv(&mut self, now: Millis, req: &PopMessageRequest) -> Response {
        let request_key = format!("{}@{}", req.consumer_group, req.topic);
        let counter = self.kv.request_count.entry(request_key).or_default();
        let request_count = *counter;
        *counter += 1;
        let prefer_retry = request_count % 5 == 0;
        let fifo = req.order;
        let revive_qid = if fifo { POP_ORDER_REVIVE_QUEUE } else { 0 };
        let mut ctx = PopContext {
            req,
            pop_time: now,
            revive_qid,
            random_q: 0,
            msgs: Vec::new(),
            rest_num: 0,
        };
        let retry_v1 = keys::pop_retry_topic_v1(&req.topic, &req.consumer_group);
        let retry_v2 = keys::pop_retry_topic_v2(&req.topic, &req.consumer_group);
        if !fifo && prefer_retry {
            self.kv_retry_topics(now, &mut ctx, &retry_v1, &retry_v2);
        }
        if req.queue_id >= 0 {
            self.kv_get_message(now, &mut ctx, &req.topic, req.queue_id as u32, 0);
        } else {
            let read = self
                .store
                .topic_config(&req.topic)
                .map_or(0, |c| c.read_queue_nums);
            for i in 0..u64::from(read) {
                let q = ((request_count + i) % u64::from(read)) as u32;
                self.kv_get_message(now, &mut ctx, &req.topic, q, 0);
            }
            if !fifo && !prefer_retry {
                self.kv_retry_topics(now, &mut ctx, &retry_v1, &retry_v2);
            }
        }
        pop_response(ctx)
    }

    fn kv_retry_topics(
        &mut self,
        now: Millis,
        ctx: &mut PopContext<'_>,
        retry_v1: &str,
        retry_v2: &str,
    ) {
        if self.config.retrieve_message_from_pop_retry_topic_v1 {
            self.kv_get_message(now, ctx, retry_v1, 0, 1);
        }
        if self.config.enable_retry_topic_v2 {
            self.kv_get_message(now, ctx, retry_v2, 0, 2);
        }
    }

    /// `getMessageAsync(future, …)` for one queue: FIFO block check, remaining batch,
    /// `getPopOffset`, read (with offset correction), `handleGetMessageResult`.
    fn kv_get_message(
        &mut self,
        now: Millis,
        ctx: &mut PopContext<'_>,
        topic: &str,
        queue_id: u32,
        retry_flag: u8,
    ) {
        let req = ctx.req;
        let group = req.consumer_group.as_str();
        if req.order
            && self
                .order_info
                .check_block(req.attempt_id.as_deref(), topic, group, queue_id, now)
        {
            return;
        }
        let remain = ctx.remaining();
        if remain == 0 {
            return;
        }
        let consume_offset =
            self.kv_get_pop_offset(now, group, topic, queue_id, req.init_mode, req.order);
        let consume_offset = u64::try_from(consume_offset).unwrap_or(0);
        let result =
            self.read_with_offset_correction(now, group, topic, queue_id, consume_offset, remain);
        let found = result.status == GetMessageStatus::Found && !result.msgs.is_empty();
        let mut order_count = OrderCountInfo::default();
        if found {
            let offsets: Vec<u64> = result.msgs.iter().map(|(o, _)| *o).collect();
            if req.order {
                order_count = self.order_info.update(
                    req.attempt_id.as_deref(),
                    topic,
                    group,
                    queue_id,
                    ctx.pop_time,
                    req.invisible_time,
                    &offsets,
                    now,
                );
            }
            ctx.rest_num += result.max_offset.saturating_sub(result.next_begin_offset);
        }
        let mut commit = consume_offset;
        if req.order {
            if !found {
                commit = result.next_begin_offset;
            }
        } else {
            self.offsets.commit_pull_offset(
                &mut self.events,
                now,
                "PopConsumerService",
                group,
                topic,
                queue_id,
                result.next_begin_offset as i64,
            );
        }
        self.offsets.commit_offset(
            &mut self.events,
            now,
            "PopConsumerService",
            group,
            topic,
            queue_id,
            commit as i64,
        );
        if !found {
            return;
        }
        for (queue_offset, msg) in result.msgs {
            if !req.order {
                self.kv.write(PopConsumerRecord {
                    pop_time: ctx.pop_time,
                    group: group.to_owned(),
                    topic: topic.to_owned(),
                    queue_id,
                    retry_flag,
                    invisible_time: req.invisible_time,
                    offset: queue_offset,
                    attempt_id: req.attempt_id.clone(),
                });
            }
            let reconsume_times = if req.order {
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

    /// `PopConsumerService.getPopOffset`: FIFO reads `queryOffset` (since #9696; before it
    /// `queryPullOffset`, behaviour `kv-fifo-reads-pull-offset`, read only here), non-FIFO
    /// `queryPullOffset`; init if negative; then a pending reset is consumed and wins.
    fn kv_get_pop_offset(
        &mut self,
        now: Millis,
        group: &str,
        topic: &str,
        queue_id: u32,
        init_mode: InitMode,
        fifo: bool,
    ) -> i64 {
        let fifo_reads_commit = fifo && !self.behaviours.is_on(Behaviour::KvFifoReadsPullOffset);
        let mut offset = if fifo_reads_commit {
            self.offsets.query_offset(group, topic, queue_id)
        } else {
            self.offsets.query_pull_offset(group, topic, queue_id)
        };
        if offset < 0 {
            offset = self.get_init_offset(now, topic, group, queue_id, init_mode, true);
        }
        let Some(reset) = self
            .offsets
            .query_then_erase_reset_offset(topic, group, queue_id)
        else {
            return offset;
        };
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
        reset
    }

    /// `appendAckNew` for one offset: FIFO → `ackOrderlyNew`; else `ackAsync` deletes the
    /// record the receipt names.
    pub(crate) fn ack_kv(&mut self, now: Millis, t: &AckTarget<'_>, offset: u64) -> Response {
        if t.revive_qid == POP_ORDER_REVIVE_QUEUE {
            return self.ack_orderly(now, t, offset, "ackOrderlyNew");
        }
        let key = (
            t.pop_time + t.invisible_time,
            t.group.to_owned(),
            t.topic.to_owned(),
            t.queue_id,
            offset,
        );
        self.kv.delete(&key);
        Response::success(ResponseBody::None)
    }

    /// `changeInvisibilityDuration`: write a record with the new popTime / invisible time,
    /// then delete the old one.
    pub(crate) fn change_invisibility_duration_kv(
        &mut self,
        now: Millis,
        t: &AckTarget<'_>,
        offset: u64,
        invisible_time: Millis,
        _bn: &str,
    ) {
        let retry_flag = keys::topic_type(t.topic);
        self.kv.write(PopConsumerRecord {
            pop_time: now,
            group: t.group.to_owned(),
            topic: t.topic.to_owned(),
            queue_id: t.queue_id,
            retry_flag,
            invisible_time,
            offset,
            attempt_id: None,
        });
        let old = (
            t.pop_time + t.invisible_time,
            t.group.to_owned(),
            t.topic.to_owned(),
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
