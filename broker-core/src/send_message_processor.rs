//! `SendMessageProcessor`'s send-back (`AbstractSendMessageProcessor.consumerSendMsgBack`,
//! `CONSUMER_SEND_MSG_BACK`): a consumer hands a message back by its commit log offset. A
//! copy whose reconsumeTimes reached the max the request carries (the group's
//! `retryMaxTimes`, 16, when it carries none), or any copy sent back with a negative delay
//! level, goes to the group's dead-letter queue `%DLQ%group` (`MixAll.getDLQTopic`, one
//! queue, created on first use); any other to the classic retry topic `%RETRY%group`. The
//! copy keeps the body and properties, with reconsumeTimes + 1. The gRPC proxy's
//! `forwardMessageToDeadLetterQueue` always sends delay level −1 and max 0, so every one of
//! its forwards is a DLQ write. The classic retry topic's delayed delivery (the schedule
//! topic) is not modelled: no modelled client consumes `%RETRY%group`.

use crate::broker::Broker;
use crate::config::Millis;
use crate::events::BrokerEvent;
use crate::keys;
use crate::protocol::{ConsumerSendMsgBackRequest, Response, ResponseBody, ResponseCode};
use crate::store::StoredMessage;

/// `MixAll.DLQ_NUMS_PER_GROUP`.
pub const DLQ_NUMS_PER_GROUP: u32 = 1;
/// `SubscriptionGroupConfig.retryMaxTimes` default.
pub const RETRY_MAX_TIMES: i32 = 16;
/// `SubscriptionGroupConfig.retryQueueNums` default.
const RETRY_QUEUE_NUMS: u32 = 1;

impl Broker {
    /// `consumerSendMsgBack`: group check, the message looked up by commit log offset, DLQ
    /// or retry, then the put (which notifies long polling like any arrival).
    pub(crate) fn consumer_send_msg_back(
        &mut self,
        now: Millis,
        req: ConsumerSendMsgBackRequest,
    ) -> Response {
        if !self.groups.contains(&req.group) {
            return Response::error(
                ResponseCode::SubscriptionGroupNotExist,
                format!("subscription group not exist, {}", req.group),
            );
        }
        let retry_topic = format!("{}{}", keys::RETRY_GROUP_TOPIC_PREFIX, req.group);
        if self.store.topic_config(&retry_topic).is_none() {
            self.store.create_topic(&retry_topic, RETRY_QUEUE_NUMS);
        }
        let Some((_, _, _, msg)) = self.store.look_message_by_offset(req.offset) else {
            return Response::error(
                ResponseCode::SystemError,
                format!("look message by offset failed, {}", req.offset),
            );
        };
        let msg = msg.clone();
        let max = req.max_reconsume_times.unwrap_or(RETRY_MAX_TIMES);
        let to_dlq = i64::from(msg.reconsume_times) >= i64::from(max) || req.delay_level < 0;
        let topic = if to_dlq {
            let dlq = keys::dlq_topic(&req.group);
            if self.store.topic_config(&dlq).is_none() {
                self.store.create_topic(&dlq, DLQ_NUMS_PER_GROUP);
            }
            dlq
        } else {
            retry_topic
        };
        let copy = StoredMessage {
            msg_id: msg.msg_id.clone(),
            tags: msg.tags.clone(),
            born_timestamp: msg.born_timestamp,
            store_timestamp: now,
            reconsume_times: msg.reconsume_times + 1,
            origin_topic: Some(req.origin_topic.clone()),
            first_pop_time: msg.first_pop_time,
            commit_log_offset: 0,
        };
        let reconsume_times = copy.reconsume_times;
        let offset = self.store.put_message(&topic, 0, copy);
        if to_dlq {
            self.events.push(BrokerEvent::DlqWritten {
                at: now,
                group: req.group.as_str().into(),
                msg_id: msg.msg_id,
                origin_topic: req.origin_topic.into(),
                dlq_topic: topic.as_str().into(),
                dlq_queue_offset: offset,
                reconsume_times,
            });
        }
        self.notify_message_arriving(now, &topic, 0);
        Response::success(ResponseBody::None)
    }
}
