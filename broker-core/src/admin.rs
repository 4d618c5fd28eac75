//! Administration and client offset requests: `AdminBrokerProcessor.resetOffsetInner`
//! (server-side reset), `ConsumerManageProcessor.updateConsumerOffset` /
//! `queryConsumerOffset`, topic and subscription-group creation, and `SEND_MESSAGE`.

use crate::broker::Broker;
use crate::config::Millis;
use crate::inflight::OpId;
use crate::protocol::{
    CreateSubscriptionGroupRequest, CreateTopicRequest, QueryConsumerOffsetRequest,
    ResetOffsetRequest, Response, ResponseBody, ResponseCode, SendMessageRequest,
    UpdateConsumerOffsetRequest,
};
use crate::store::StoredMessage;
use crate::Behaviour;
use crate::Name;
use std::collections::{BTreeMap, VecDeque};

/// A server-side reset in flight: the queues whose KV-path actions are still to come.
#[derive(Debug)]
pub(crate) struct ResetOp {
    req: ResetOffsetRequest,
    offsets: BTreeMap<u32, i64>,
    pending: VecDeque<(u32, i64)>,
}

/// Upper bound on queues per topic, to keep the model's state bounded.
pub const MAX_QUEUE_NUMS: u32 = 1_024;

impl Broker {
    /// `UPDATE_AND_CREATE_TOPIC`.
    pub(crate) fn create_topic(&mut self, req: CreateTopicRequest) -> Response {
        if req.read_queue_nums == 0 || req.read_queue_nums > MAX_QUEUE_NUMS || req.topic.is_empty()
        {
            return Response::error(
                ResponseCode::InvalidParameter,
                "illegal topic or queue number",
            );
        }
        self.store.create_topic(&req.topic, req.read_queue_nums);
        Response::success(ResponseBody::None)
    }

    /// `UPDATE_AND_CREATE_SUBSCRIPTIONGROUP`.
    pub(crate) fn create_subscription_group(
        &mut self,
        req: CreateSubscriptionGroupRequest,
    ) -> Response {
        if req.group.is_empty() {
            return Response::error(ResponseCode::InvalidParameter, "empty group");
        }
        self.groups.insert(req.group);
        Response::success(ResponseBody::None)
    }

    /// `SEND_MESSAGE`: append to the producer's queue.
    pub(crate) fn send_message(&mut self, now: Millis, req: SendMessageRequest) -> Response {
        let Some(config) = self.store.topic_config(&req.topic) else {
            return Response::error(
                ResponseCode::TopicNotExist,
                format!("topic[{}] not exist, apply first please!", req.topic),
            );
        };
        if req.queue_id >= config.write_queue_nums {
            return Response::error(
                ResponseCode::SystemError,
                format!(
                    "request queueId[{}] is illegal, writeQueueNums:[{}]",
                    req.queue_id, config.write_queue_nums
                ),
            );
        }
        let msg = StoredMessage {
            msg_id: Name::new(&req.msg_id),
            tags: req.tags,
            born_timestamp: req.born_timestamp,
            store_timestamp: now,
            reconsume_times: 0,
            origin_topic: None,
            first_pop_time: None,
            commit_log_offset: 0,
        };
        let queue_offset = self.store.put_message(&req.topic, req.queue_id, msg);
        self.notify_message_arriving(now, &req.topic, req.queue_id);
        Response::success(ResponseBody::SendResult {
            queue_id: req.queue_id,
            queue_offset,
            msg_id: req.msg_id,
        })
    }

    /// `ConsumerManageProcessor.updateConsumerOffset`: group, topic, null checks; while a
    /// server-side reset is pending the update is ignored yet answered `SUCCESS`.
    pub(crate) fn update_consumer_offset(
        &mut self,
        now: Millis,
        req: UpdateConsumerOffsetRequest,
    ) -> Response {
        if !self.groups.contains(&req.consumer_group) {
            return Response::error(
                ResponseCode::SubscriptionGroupNotExist,
                format!("Group {} not exist!", req.consumer_group),
            );
        }
        if self.store.topic_config(&req.topic).is_none() {
            return Response::error(
                ResponseCode::TopicNotExist,
                format!("Topic {} not exist!", req.topic),
            );
        }
        // #9027 answers a null queueId or offset INVALID_PARAMETER; before it
        // (`update-offset-null-answers-system-error`, read only here) SYSTEM_ERROR.
        let null_code = if self
            .behaviours
            .is_on(Behaviour::UpdateOffsetNullAnswersSystemError)
        {
            ResponseCode::SystemError
        } else {
            ResponseCode::InvalidParameter
        };
        let Some(queue_id) = req.queue_id else {
            return Response::error(
                null_code,
                format!("QueueId is null, topic is {}", req.topic),
            );
        };
        let Some(offset) = req.commit_offset else {
            return Response::error(null_code, format!("Offset is null, topic is {}", req.topic));
        };
        let Ok(queue_id) = u32::try_from(queue_id) else {
            // Upstream would store it under a queue that never exists; nothing reads it.
            return Response::success(ResponseBody::None);
        };
        if self.config.use_server_side_reset_offset
            && self
                .offsets
                .has_offset_reset(&req.topic, &req.consumer_group, queue_id)
        {
            return Response {
                code: ResponseCode::Success,
                remark: "Offset has been previously reset".to_owned(),
                body: ResponseBody::None,
            };
        }
        self.offsets.commit_offset(
            &mut self.events,
            now,
            "updateConsumerOffset",
            &req.consumer_group,
            &req.topic,
            queue_id,
            offset,
        );
        Response::success(ResponseBody::None)
    }

    /// `ConsumerManageProcessor.queryConsumerOffset`: `queryOffset` (a pending reset shows);
    /// if negative, 0 when allowed and the first message is still in memory, else
    /// `QUERY_NOT_FOUND`.
    pub(crate) fn query_consumer_offset(
        &self,
        now: Millis,
        req: QueryConsumerOffsetRequest,
    ) -> Response {
        let offset = self
            .offsets
            .query_offset(&req.consumer_group, &req.topic, req.queue_id);
        if offset >= 0 {
            return Response::success(ResponseBody::QueryConsumerOffset { offset });
        }
        if !req.set_zero_if_not_found {
            return Response::error(
                ResponseCode::QueryNotFound,
                "Not found, do not set to zero, maybe this group boot first",
            );
        }
        let min = self.store.min_offset(&req.topic, req.queue_id);
        if min == 0 && self.store.check_in_mem(&req.topic, req.queue_id, 0, now) {
            return Response::success(ResponseBody::QueryConsumerOffset { offset: 0 });
        }
        Response::error(
            ResponseCode::QueryNotFound,
            "Not found, V3_0_6_SNAPSHOT maybe this group consumer boot first",
        )
    }

    /// `INVOKE_BROKER_TO_RESET_OFFSET`. Only the server-side mode is modelled (POP consumers
    /// hold no offsets, so the client-side `Broker2Client` mode cannot reach them).
    ///
    /// `resetOffsetInner`: topic and group checks; the offset map (an explicit offset for
    /// one queue within [min, max + 1], else by timestamp, < 0 meaning max);
    /// `assignResetOffset` per queue. On the KV path the admin thread then visits each queue
    /// (`clearCache`, the pull-offset action): a [`ResetOp`] step each, since a pop may run
    /// in between.
    pub(crate) fn start_reset_offset(
        &mut self,
        now: Millis,
        req: ResetOffsetRequest,
    ) -> Result<ResetOp, Response> {
        if !self.config.use_server_side_reset_offset {
            return Err(Response::error(
                ResponseCode::SystemError,
                "client-side reset (Broker2Client) is not modelled",
            ));
        }
        let Some(config) = self.store.topic_config(&req.topic) else {
            return Err(Response::error(
                ResponseCode::TopicNotExist,
                format!("Topic {} does not exist", req.topic),
            ));
        };
        if !self.groups.contains(&req.group) {
            return Err(Response::error(
                ResponseCode::SubscriptionGroupNotExist,
                format!("Group {} does not exist", req.group),
            ));
        }
        let queue_offsets = self.reset_offset_map(&req, config.read_queue_nums)?;
        if queue_offsets.is_empty() {
            return Err(Response::error(
                ResponseCode::SystemError,
                "No queues to reset.",
            ));
        }
        let needs_existing_key = self
            .behaviours
            .is_on(Behaviour::ResetNeedsExistingOffsetKey);
        for (&q, &offset) in &queue_offsets {
            self.offsets.assign_reset_offset(
                &mut self.events,
                now,
                &req.topic,
                &req.group,
                q,
                offset,
                needs_existing_key,
            );
        }
        for &q in queue_offsets.keys() {
            self.inflight.clear(&req.topic, &req.group, q);
        }
        let pending = if self.config.pop_consumer_kv_service_enable {
            queue_offsets.iter().map(|(&q, &o)| (q, o)).collect()
        } else {
            VecDeque::new()
        };
        Ok(ResetOp {
            req,
            offsets: queue_offsets,
            pending,
        })
    }

    /// One step of a reset: the next queue's KV-path actions (`resetOffsetInner` 2154-2163:
    /// `clearCache`, then the pull-offset action); the answer after the last.
    pub(crate) fn step_reset(
        &mut self,
        now: Millis,
        op: OpId,
        reset: &mut ResetOp,
    ) -> Option<Response> {
        if let Some((q, offset)) = reset.pending.pop_front() {
            let (group, topic) = (reset.req.group.clone(), reset.req.topic.clone());
            // Develop visits the queue whatever happened since the assignment; the proposed
            // fix `reset-cleanup-skips-taken-queues` (read only here) skips a queue whose
            // reset a pop already took (`getPopOffset` cleared the cache and the pop
            // committed its own pull offset).
            let taken = self
                .behaviours
                .has_fix(crate::Fix::ResetCleanupSkipsTakenQueues)
                && !self.offsets.has_offset_reset(&topic, &group, q);
            if !taken {
                self.kv_clear_cache(now, op, &group, &topic, q);
                self.reset_pull_offset_action(now, &reset.req, q, offset);
            }
            if !reset.pending.is_empty() {
                return None;
            }
        }
        Some(Response::success(ResponseBody::ResetOffset {
            offsets: std::mem::take(&mut reset.offsets),
        }))
    }

    /// The queue → offset map of `resetOffsetInner`.
    fn reset_offset_map(
        &self,
        req: &ResetOffsetRequest,
        read_queue_nums: u32,
    ) -> Result<BTreeMap<u32, i64>, Response> {
        let mut map = BTreeMap::new();
        if req.queue_id >= 0 {
            let q = req.queue_id as u32;
            let offset = match req.offset {
                Some(offset) if offset != -1 => {
                    let (min, max) = (
                        self.store.min_offset(&req.topic, q) as i64,
                        self.store.max_offset(&req.topic, q) as i64,
                    );
                    if offset < min || offset > max + 1 {
                        return Err(Response::error(
                            ResponseCode::SystemError,
                            format!(
                                "Target offset {offset} not in consume queue range [{min}-{max}]"
                            ),
                        ));
                    }
                    offset
                }
                _ => self.search_offset_by_timestamp(&req.topic, q, req.timestamp),
            };
            map.insert(q, offset);
        } else {
            for q in 0..read_queue_nums {
                map.insert(
                    q,
                    self.search_offset_by_timestamp(&req.topic, q, req.timestamp),
                );
            }
        }
        Ok(map)
    }

    /// `searchOffsetByTimestamp`: < 0 means the max offset.
    fn search_offset_by_timestamp(&self, topic: &str, queue_id: u32, timestamp: i64) -> i64 {
        match u64::try_from(timestamp) {
            Ok(ts) => self.store.offset_by_time(topic, queue_id, ts) as i64,
            Err(_) => self.store.max_offset(topic, queue_id) as i64,
        }
    }

    /// The KV-path step of `resetOffsetInner`: `clearPullOffset(group, topic)` since #9370;
    /// from 5.3.2 until then `commitPullOffset(reset)` (`reset-commits-pull-offset`, read
    /// only here). Develop clears every queue's cursor even for a one-queue reset; the
    /// proposed fix `clear-pull-offset-of-reset-queues` (read only here) clears the reset
    /// queue's.
    fn reset_pull_offset_action(
        &mut self,
        now: Millis,
        req: &ResetOffsetRequest,
        queue_id: u32,
        offset: i64,
    ) {
        if self.behaviours.is_on(Behaviour::ResetCommitsPullOffset) {
            self.offsets.commit_pull_offset(
                &mut self.events,
                now,
                "ResetOffsetInner",
                &req.group,
                &req.topic,
                queue_id,
                offset,
            );
        } else {
            let only = self
                .behaviours
                .has_fix(crate::Fix::ClearPullOffsetOfResetQueues)
                .then_some(queue_id);
            self.offsets
                .clear_pull_offset(&mut self.events, now, &req.group, &req.topic, only);
        }
    }
}
