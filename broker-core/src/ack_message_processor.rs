//! `AckMessageProcessor` (`broker/.../processor/AckMessageProcessor.java`): `ACK_MESSAGE`
//! and `BATCH_ACK_MESSAGE`. A non-orderly ack first tries to merge into its buffered CK
//! (`PopBufferMergeService.addAk`), else becomes an ACK record in the revive log, delivered
//! at the revive time. An orderly ack (reviveQid 999) goes to `ackOrderly`. The answer is
//! `SUCCESS` whatever the revive-log append did.

use crate::broker::Broker;
use crate::checkpoint::AckMsg;
use crate::config::Millis;
use crate::keys::{self, lock_key};
use crate::protocol::{
    AckMessageRequest, BatchAck, BatchAckMessageRequest, ExtraInfo, Response, ResponseBody,
    ResponseCode, POP_ORDER_REVIVE_QUEUE,
};

/// What an ack names, once the receipt is parsed.
pub(crate) struct AckTarget<'a> {
    pub group: &'a str,
    pub topic: &'a str,
    pub queue_id: u32,
    pub revive_qid: u32,
    pub start_offset: u64,
    pub pop_time: Millis,
    pub invisible_time: Millis,
}

impl<'a> AckTarget<'a> {
    /// The ack target a parsed receipt names.
    pub(crate) fn new(group: &'a str, topic: &'a str, queue_id: u32, extra: &ExtraInfo) -> Self {
        Self {
            group,
            topic,
            queue_id,
            revive_qid: extra.revive_qid,
            start_offset: extra.ck_queue_offset,
            pop_time: extra.pop_time,
            invisible_time: extra.invisible_time,
        }
    }
}

impl Broker {
    /// `ACK_MESSAGE`: topic, queue and `min ≤ offset ≤ max` checks, then `appendAck`. The
    /// topic is resolved from the receipt's topic type (`ExtraInfoUtil.getRealTopic`, which
    /// upstream's client applies before sending), so a client may name either.
    pub(crate) fn ack_message(&mut self, now: Millis, req: AckMessageRequest) -> Response {
        let (extra, topic) = match self.resolve_receipt(
            &req.topic,
            &req.consumer_group,
            req.queue_id,
            req.offset,
            &req.extra_info,
            true,
        ) {
            Ok(resolved) => resolved,
            Err(rejected) => return rejected,
        };
        let target = AckTarget::new(&req.consumer_group, &topic, req.queue_id, &extra);
        if self.config.pop_consumer_kv_service_enable {
            return self.ack_kv(now, &target, req.offset);
        }
        if extra.is_order() {
            return self.ack_orderly(now, &target, req.offset, "ackOrderly");
        }
        let ack = AckMsg {
            ack_offsets: vec![req.offset],
            start_offset: extra.ck_queue_offset,
            consumer_group: req.consumer_group.clone(),
            topic: topic.clone(),
            queue_id: req.queue_id,
            pop_time: extra.pop_time,
            broker_name: Some(extra.broker_name.clone()),
            batch: false,
        };
        self.append_ack(
            now,
            ack,
            extra.revive_qid,
            extra.pop_time + extra.invisible_time,
        );
        Response::success(ResponseBody::None)
    }

    /// What `ACK_MESSAGE` and `CHANGE_MESSAGE_INVISIBLETIME` check before acting: the receipt
    /// parses, the real topic (from the receipt's topic type), queue and offset pass
    /// [`Self::check_ack_target`], and a non-orderly reviveQid names a revive queue.
    pub(crate) fn resolve_receipt(
        &self,
        topic: &str,
        group: &str,
        queue_id: u32,
        offset: u64,
        extra_info: &str,
        max_inclusive: bool,
    ) -> Result<(ExtraInfo, String), Response> {
        let Some(extra) = ExtraInfo::parse(extra_info) else {
            return Err(Response::error(
                ResponseCode::InvalidParameter,
                "malformed extraInfo",
            ));
        };
        let topic = keys::real_topic(topic, group, extra.topic_type);
        if let Some(rejected) = self.check_ack_target(&topic, queue_id, offset, max_inclusive) {
            return Err(rejected);
        }
        if !extra.is_order() && extra.revive_qid >= self.config.revive_queue_num {
            return Err(Response::error(
                ResponseCode::InvalidParameter,
                format!("reviveQid {} is illegal", extra.revive_qid),
            ));
        }
        Ok((extra, topic))
    }

    /// The topic / queue / offset checks of `ACK_MESSAGE` (`max_inclusive`) and
    /// `CHANGE_MESSAGE_INVISIBLETIME` (`offset < max` since #9186).
    pub(crate) fn check_ack_target(
        &self,
        topic: &str,
        queue_id: u32,
        offset: u64,
        max_inclusive: bool,
    ) -> Option<Response> {
        let Some(config) = self.store.topic_config(topic) else {
            return Some(Response::error(
                ResponseCode::TopicNotExist,
                format!("topic[{topic}] not exist, apply first please!"),
            ));
        };
        if queue_id >= config.read_queue_nums {
            return Some(Response::error(
                ResponseCode::MessageIllegal,
                format!("queueId[{queue_id}] is illegal, topic:[{topic}] topicConfig.readQueueNums:[{}]", config.read_queue_nums),
            ));
        }
        let (min, max) = (
            self.store.min_offset(topic, queue_id),
            self.store.max_offset(topic, queue_id),
        );
        let above = if max_inclusive {
            offset > max
        } else {
            offset >= max
        };
        if offset < min || above {
            return Some(Response::error(
                ResponseCode::NoMessage,
                format!(
                    "offset is illegal, key:{topic}@{queue_id}, commit:{offset}, store:{min}~{max}"
                ),
            ));
        }
        None
    }

    /// `appendAck` tail: `addAk`, else an ACK record delivered at popTime + invisibleTime.
    pub(crate) fn append_ack(
        &mut self,
        now: Millis,
        ack: AckMsg,
        revive_qid: u32,
        revive_time: Millis,
    ) {
        if self.add_ak(now, &ack) {
            return;
        }
        self.put_ack_record(
            now,
            ack,
            revive_qid,
            revive_time,
            "AckMessageProcessor.appendAck",
        );
    }

    /// `BATCH_ACK_MESSAGE`: each `BatchAck` becomes one `BatchAckMsg` (offsets outside
    /// [min, max] skipped) carrying the body's brokerName, or per-offset `ackOrderly`.
    pub(crate) fn batch_ack_message(
        &mut self,
        now: Millis,
        req: BatchAckMessageRequest,
    ) -> Response {
        if req.acks.is_empty() {
            return Response::error(ResponseCode::NoMessage, "empty batch ack");
        }
        let mut response = Response::success(ResponseBody::None);
        for b in &req.acks {
            if let Some(failed) = self.append_batch_ack(now, b, &req.broker_name) {
                response = failed;
            }
        }
        response
    }

    fn append_batch_ack(
        &mut self,
        now: Millis,
        b: &BatchAck,
        broker_name: &str,
    ) -> Option<Response> {
        let topic = keys::real_topic(&b.topic, &b.consumer_group, b.retry);
        // "Illegal topic or queue found when batch ack": logged only.
        self.store.topic_config(&topic)?;
        let (min, max) = (
            self.store.min_offset(&topic, b.queue_id),
            self.store.max_offset(&topic, b.queue_id),
        );
        let offsets: Vec<u64> = b
            .bit_set
            .iter()
            .map(|&i| b.start_offset + u64::from(i))
            .filter(|&o| o >= min && o <= max)
            .collect();
        let target = AckTarget {
            group: &b.consumer_group,
            topic: &topic,
            queue_id: b.queue_id,
            revive_qid: b.revive_queue_id,
            start_offset: b.start_offset,
            pop_time: b.pop_time,
            invisible_time: b.invisible_time,
        };
        if self.config.pop_consumer_kv_service_enable {
            let mut failed = None;
            for &o in &offsets {
                let r = self.ack_kv(now, &target, o);
                if r.code != ResponseCode::Success {
                    failed = Some(r);
                }
            }
            return failed;
        }
        if b.revive_queue_id == POP_ORDER_REVIVE_QUEUE {
            let mut failed = None;
            for &o in &offsets {
                let r = self.ack_orderly(now, &target, o, "ackOrderly");
                if r.code != ResponseCode::Success {
                    failed = Some(r);
                }
            }
            return failed;
        }
        if offsets.is_empty() || b.revive_queue_id >= self.config.revive_queue_num {
            return None;
        }
        let ack = AckMsg {
            ack_offsets: offsets,
            start_offset: b.start_offset,
            consumer_group: b.consumer_group.clone(),
            topic,
            queue_id: b.queue_id,
            pop_time: b.pop_time,
            broker_name: Some(broker_name.to_owned()),
            batch: true,
        };
        self.append_ack(now, ack, b.revive_queue_id, b.pop_time + b.invisible_time);
        None
    }

    /// `ackOrderly` (and `ackOrderlyNew`, which differs only in its lock): ignore an ack
    /// below the commit offset (a pending reset counts); `commitAndNext`; commit the next
    /// offset unless a reset is pending (RIP-48); −1 → `MESSAGE_ILLEGAL`, −2 → ignored.
    pub(crate) fn ack_orderly(
        &mut self,
        now: Millis,
        t: &AckTarget<'_>,
        ack_offset: u64,
        reason: &str,
    ) -> Response {
        let old_offset = self.offsets.query_offset(t.group, t.topic, t.queue_id);
        if (ack_offset as i64) < old_offset {
            return Response::success(ResponseBody::None);
        }
        let next = self
            .order_info
            .commit_and_next(t.topic, t.group, t.queue_id, ack_offset, t.pop_time, now);
        if next > -1 {
            if !self.offsets.has_offset_reset(t.topic, t.group, t.queue_id) {
                self.offsets.commit_offset(
                    &mut self.events,
                    now,
                    reason,
                    t.group,
                    t.topic,
                    t.queue_id,
                    next,
                );
            }
            return Response::success(ResponseBody::None);
        }
        if next == -1 {
            return Response::error(
                ResponseCode::MessageIllegal,
                format!(
                    "offset is illegal, key:{}, old:{old_offset}, commit:{ack_offset}, next:{next}",
                    lock_key(t.topic, t.group, t.queue_id)
                ),
            );
        }
        Response::success(ResponseBody::None)
    }
}
