//! Requests built from a delivery's receipt handle (`POP_CK`), as `MQClientAPIImpl` and
//! `DefaultMQPushConsumerImpl` build them, and their recording.

use super::{outcome, ClientCtx, ASYNC_TIMEOUT};
use broker_core::{
    AckMessageRequest, BatchAck, BatchAckMessageRequest, ChangeInvisibleTimeRequest, ExtraInfo,
    MessageExt, Millis, Request, ResponseBody, ResponseCode,
};
use reports::history::{EventKind, RpcOutcome};
use std::collections::BTreeMap;

/// `ExtraInfoUtil.getRealTopic`: the topic the copy was read from.
pub fn real_topic(msg: &MessageExt, info: &ExtraInfo, group: &str) -> String {
    match info.topic_type {
        0 => msg.topic.clone(),
        1 => msg
            .retry_topic
            .clone()
            .unwrap_or_else(|| format!("%RETRY%{group}_{}", msg.topic)),
        _ => msg
            .retry_topic
            .clone()
            .unwrap_or_else(|| format!("%RETRY%{group}+{}", msg.topic)),
    }
}

/// The receipt and its parsed form, if the delivery carries a well-formed one.
pub fn receipt_of(msg: &MessageExt) -> Option<(String, ExtraInfo)> {
    let r = msg.pop_ck.clone()?;
    let info = ExtraInfo::parse(&r)?;
    Some((r, info))
}

/// `ackAsync`: one ACK_MESSAGE, recorded as AckSent and AckResult.
pub async fn ack(ctx: &ClientCtx, group: &str, msg: &MessageExt) -> Option<RpcOutcome> {
    let (receipt, info) = receipt_of(msg)?;
    ctx.record(EventKind::AckSent {
        consumer: broker_core::Name::new(&ctx.name),
        group: broker_core::Name::new(group),
        msg_id: broker_core::Name::new(&msg.msg_id),
        receipt: broker_core::Name::new(&receipt),
    });
    let req = AckMessageRequest {
        consumer_group: group.to_owned(),
        topic: real_topic(msg, &info, group),
        queue_id: info.queue_id,
        offset: info.queue_offset,
        extra_info: receipt.clone(),
    };
    let result = ctx.rpc.call(Request::AckMessage(req), ASYNC_TIMEOUT).await;
    let out = outcome(&result);
    ctx.record(EventKind::AckResult {
        consumer: broker_core::Name::new(&ctx.name),
        group: broker_core::Name::new(group),
        msg_id: broker_core::Name::new(&msg.msg_id),
        receipt: receipt.into(),
        outcome: out.clone(),
    });
    Some(out)
}

/// `MQClientAPIImpl.batchAckMessageAsync(addr, topic, group, extraInfoList)`: one
/// `BatchAck` per `retry@queueId@ckQueueOffset@popTime` of the handles, each with the bits of
/// its messages' offsets relative to the CK's start; the broker name of the first handle.
pub fn batch_ack_body(group: &str, topic: &str, infos: &[ExtraInfo]) -> BatchAckMessageRequest {
    type MergeKey = (u8, u32, u64, Millis);
    let mut acks: BTreeMap<MergeKey, BatchAck> = BTreeMap::new();
    for info in infos {
        let key = (
            info.topic_type,
            info.queue_id,
            info.ck_queue_offset,
            info.pop_time,
        );
        let entry = acks.entry(key).or_insert_with(|| BatchAck {
            consumer_group: group.to_owned(),
            topic: topic.to_owned(),
            retry: info.topic_type,
            queue_id: info.queue_id,
            revive_queue_id: info.revive_qid,
            start_offset: info.ck_queue_offset,
            pop_time: info.pop_time,
            invisible_time: info.invisible_time,
            bit_set: Vec::new(),
        });
        entry
            .bit_set
            .push(info.queue_offset.saturating_sub(info.ck_queue_offset) as u32);
    }
    BatchAckMessageRequest {
        broker_name: infos
            .first()
            .map_or_else(String::new, |i| i.broker_name.clone()),
        acks: acks.into_values().collect(),
    }
}

/// `batchAckMessageAsync` for held deliveries: one BATCH_ACK_MESSAGE, recorded as one
/// AckSent and one AckResult per delivery.
pub async fn batch_ack(ctx: &ClientCtx, group: &str, topic: &str, msgs: &[MessageExt]) {
    let mut infos = Vec::new();
    let mut sent = Vec::new();
    for msg in msgs {
        let Some((receipt, info)) = receipt_of(msg) else {
            continue;
        };
        infos.push(info);
        ctx.record(EventKind::AckSent {
            consumer: broker_core::Name::new(&ctx.name),
            group: broker_core::Name::new(group),
            msg_id: broker_core::Name::new(&msg.msg_id),
            receipt: broker_core::Name::new(&receipt),
        });
        sent.push((msg.msg_id.clone(), receipt));
    }
    if sent.is_empty() {
        return;
    }
    let req = batch_ack_body(group, topic, &infos);
    let result = ctx
        .rpc
        .call(Request::BatchAckMessage(req), ASYNC_TIMEOUT)
        .await;
    let out = outcome(&result);
    for (msg_id, receipt) in sent {
        ctx.record(EventKind::AckResult {
            consumer: broker_core::Name::new(&ctx.name),
            group: broker_core::Name::new(group),
            msg_id: msg_id.into(),
            receipt: receipt.into(),
            outcome: out.clone(),
        });
    }
}

/// `changePopInvisibleTimeAsync`; returns the new receipt on success.
pub async fn change_invisible_time(
    ctx: &ClientCtx,
    group: &str,
    msg: &MessageExt,
    invisible_time: Millis,
) -> Option<String> {
    let (receipt, info) = receipt_of(msg)?;
    let req = ChangeInvisibleTimeRequest {
        consumer_group: group.to_owned(),
        topic: real_topic(msg, &info, group),
        queue_id: info.queue_id,
        offset: info.queue_offset,
        extra_info: receipt.clone(),
        invisible_time,
    };
    let result = ctx
        .rpc
        .call(Request::ChangeInvisibleTime(req), ASYNC_TIMEOUT)
        .await;
    let new_receipt = match &result {
        Ok(r) if r.code == ResponseCode::Success => match &r.body {
            ResponseBody::ChangeInvisibleTime { extra_info, .. } => Some(extra_info.clone()),
            _ => None,
        },
        _ => None,
    };
    ctx.record(EventKind::ChangeInvisibleResult {
        consumer: broker_core::Name::new(&ctx.name),
        group: broker_core::Name::new(group),
        msg_id: broker_core::Name::new(&msg.msg_id),
        receipt: receipt.into(),
        invisible_time,
        new_receipt: new_receipt.as_deref().map(broker_core::Name::new),
        outcome: outcome(&result),
    });
    new_receipt
}

/// Records a pop (or receive) response's messages as deliveries; `orderly` for FIFO pops,
/// with their `attempt_id` if the pop carried one.
pub fn record_deliveries<C>(
    ctx: &ClientCtx<C>,
    group: &str,
    msgs: &[MessageExt],
    orderly: bool,
    attempt_id: Option<&str>,
    fallback: (Millis, Millis),
) {
    for m in msgs {
        let (receipt, pop_time, invisible_time) = match receipt_of(m) {
            Some((r, info)) => (r, info.pop_time, info.invisible_time),
            None => (m.pop_ck.clone().unwrap_or_default(), fallback.0, fallback.1),
        };
        ctx.record(EventKind::Delivered {
            consumer: broker_core::Name::new(&ctx.name),
            group: broker_core::Name::new(group),
            msg_id: broker_core::Name::new(&m.msg_id),
            topic: broker_core::Name::new(&m.topic),
            queue_id: m.queue_id,
            queue_offset: m.queue_offset,
            retry_topic: m.retry_topic.as_deref().map(broker_core::Name::new),
            reconsume_times: m.reconsume_times,
            pop_time,
            invisible_time,
            receipt: receipt.into(),
            orderly,
            attempt_id: attempt_id.map(broker_core::Name::new),
        });
    }
}
