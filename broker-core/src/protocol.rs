//! The broker's wire vocabulary: requests in, responses out, named after upstream's request
//! codes and headers (`remoting/.../protocol/RequestCode.java`, `ResponseCode.java`,
//! `header/*RequestHeader.java`). The simulation carries these values over its network; the
//! broker model consumes them without knowing how they travelled.

use crate::config::Millis;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Upstream `ResponseCode` names that the POP and offset paths answer with.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum ResponseCode {
    Success,
    SystemError,
    SystemBusy,
    TopicNotExist,
    SubscriptionGroupNotExist,
    InvalidParameter,
    MessageIllegal,
    NoMessage,
    QueryNotFound,
    PollingTimeout,
    PollingFull,
    NotLeaderForQueue,
}

impl ResponseCode {
    /// Upstream's constant name, e.g. `SUBSCRIPTION_GROUP_NOT_EXIST`.
    pub fn name(self) -> &'static str {
        match self {
            ResponseCode::Success => "SUCCESS",
            ResponseCode::SystemError => "SYSTEM_ERROR",
            ResponseCode::SystemBusy => "SYSTEM_BUSY",
            ResponseCode::TopicNotExist => "TOPIC_NOT_EXIST",
            ResponseCode::SubscriptionGroupNotExist => "SUBSCRIPTION_GROUP_NOT_EXIST",
            ResponseCode::InvalidParameter => "INVALID_PARAMETER",
            ResponseCode::MessageIllegal => "MESSAGE_ILLEGAL",
            ResponseCode::NoMessage => "NO_MESSAGE",
            ResponseCode::QueryNotFound => "QUERY_NOT_FOUND",
            ResponseCode::PollingTimeout => "POLLING_TIMEOUT",
            ResponseCode::PollingFull => "POLLING_FULL",
            ResponseCode::NotLeaderForQueue => "NOT_LEADER_FOR_QUEUE",
        }
    }
}

/// `ConsumeInitMode`: where a group with no offset starts.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum InitMode {
    /// `ConsumeInitMode.MIN` (0): from the min offset.
    Min,
    /// `ConsumeInitMode.MAX` (1, the push consumer's default): "pop the last one".
    #[default]
    Max,
}

/// `SEND_MESSAGE`: append one message to a queue. The producer chooses the queue.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SendMessageRequest {
    pub topic: String,
    pub queue_id: u32,
    /// The `UNIQ_KEY` property: the message's identity across revives and retries.
    pub msg_id: String,
    pub tags: Option<String>,
    pub born_timestamp: Millis,
}

/// `POP_MESSAGE` (`PopMessageRequestHeader`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PopMessageRequest {
    pub consumer_group: String,
    pub topic: String,
    /// −1 pops from every readable queue, as upstream.
    pub queue_id: i32,
    /// At most 32 (`INVALID_PARAMETER` above).
    pub max_msg_nums: u32,
    pub invisible_time: Millis,
    /// `order`: orderly (FIFO) pop.
    pub order: bool,
    /// `attemptId`: a retried orderly pop with the same id is reentrant (#6692).
    pub attempt_id: Option<String>,
    pub init_mode: InitMode,
    /// `pollTime`: how long the broker may park the request when it finds nothing
    /// (`PopLongPollingService`); 0 answers at once (`NOT_POLLING`).
    #[serde(default)]
    pub poll_time: Millis,
    /// `bornTime`: when the client built the request; `None` lets the broker fill in its own
    /// `now` (`processRequest` adds `BORN_TIME` when absent or 0). A parked request expires
    /// at `bornTime + pollTime`.
    #[serde(default)]
    pub born_time: Option<Millis>,
    /// How the caller reads a FIFO message's reconsumeTimes out of the answer's
    /// `orderCountInfo`, which the broker model resolves for it: `false`, the remoting
    /// client's rule (`MQClientAPIImpl.processPopResponse`: the message's offset key, else
    /// its queue's); `true`, the proxy in local mode's (`LocalMessageService.popMessage`: the
    /// queue's key only, the batch's minimum count).
    #[serde(default)]
    pub count_by_queue: bool,
}

/// `ACK_MESSAGE` (`AckMessageRequestHeader`): the receipt handle is `extra_info`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AckMessageRequest {
    pub consumer_group: String,
    pub topic: String,
    pub queue_id: u32,
    /// The acked message's queue offset.
    pub offset: u64,
    /// The receipt handle (`ExtraInfoUtil` format), see [`ExtraInfo`].
    pub extra_info: String,
}

/// One `BatchAck` of a `BATCH_ACK_MESSAGE` body: acks for messages of one CK.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct BatchAck {
    pub consumer_group: String,
    pub topic: String,
    /// 0 normal, 1 retry V1, 2 retry V2 (as `ExtraInfo::topic_type`).
    pub retry: u8,
    pub queue_id: u32,
    pub revive_queue_id: u32,
    pub start_offset: u64,
    pub pop_time: Millis,
    pub invisible_time: Millis,
    /// Indexes relative to `start_offset` (upstream: a BitSet).
    pub bit_set: Vec<u32>,
}

/// `BATCH_ACK_MESSAGE` (`BatchAckMessageRequestBody`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct BatchAckMessageRequest {
    pub broker_name: String,
    pub acks: Vec<BatchAck>,
}

/// `CHANGE_MESSAGE_INVISIBLETIME` (`ChangeInvisibleTimeRequestHeader`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChangeInvisibleTimeRequest {
    pub consumer_group: String,
    pub topic: String,
    pub queue_id: u32,
    pub offset: u64,
    pub extra_info: String,
    pub invisible_time: Millis,
}

/// `CONSUMER_SEND_MSG_BACK` (`ConsumerSendMsgBackRequestHeader`): the gRPC proxy's
/// `forwardMessageToDeadLetterQueue` sends one with `delayLevel = -1` and
/// `maxReconsumeTimes = 0`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConsumerSendMsgBackRequest {
    pub group: String,
    /// The message's commit log offset (`lookMessageByOffset`).
    pub offset: u64,
    pub delay_level: i32,
    pub origin_msg_id: String,
    pub origin_topic: String,
    /// `None`: the group's `retryMaxTimes` (16).
    pub max_reconsume_times: Option<i32>,
}

/// `UPDATE_CONSUMER_OFFSET` (`UpdateConsumerOffsetRequestHeader`). The fields are nullable
/// upstream; a missing one gets `INVALID_PARAMETER`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct UpdateConsumerOffsetRequest {
    pub consumer_group: String,
    pub topic: String,
    pub queue_id: Option<i32>,
    pub commit_offset: Option<i64>,
}

/// `QUERY_CONSUMER_OFFSET` (`QueryConsumerOffsetRequestHeader`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct QueryConsumerOffsetRequest {
    pub consumer_group: String,
    pub topic: String,
    pub queue_id: u32,
    /// `setZeroIfNotFound` (upstream default true).
    pub set_zero_if_not_found: bool,
}

/// `INVOKE_BROKER_TO_RESET_OFFSET` (`ResetOffsetRequestHeader`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ResetOffsetRequest {
    pub group: String,
    pub topic: String,
    /// −1 = every queue.
    pub queue_id: i32,
    /// An explicit offset (single queue); `None` = by timestamp.
    pub offset: Option<i64>,
    /// Used when `offset` is `None`; < 0 means the max offset.
    pub timestamp: i64,
    pub is_force: bool,
}

/// `UPDATE_AND_CREATE_TOPIC`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CreateTopicRequest {
    pub topic: String,
    pub read_queue_nums: u32,
}

/// `UPDATE_AND_CREATE_SUBSCRIPTIONGROUP`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CreateSubscriptionGroupRequest {
    pub group: String,
}

/// Every request the broker model accepts.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Request {
    SendMessage(SendMessageRequest),
    PopMessage(PopMessageRequest),
    AckMessage(AckMessageRequest),
    BatchAckMessage(BatchAckMessageRequest),
    ChangeInvisibleTime(ChangeInvisibleTimeRequest),
    ConsumerSendMsgBack(ConsumerSendMsgBackRequest),
    UpdateConsumerOffset(UpdateConsumerOffsetRequest),
    QueryConsumerOffset(QueryConsumerOffsetRequest),
    ResetOffset(ResetOffsetRequest),
    CreateTopic(CreateTopicRequest),
    CreateSubscriptionGroup(CreateSubscriptionGroupRequest),
}

impl Request {
    /// Upstream `RequestCode` constant name, for logs and histories.
    pub fn code_name(&self) -> &'static str {
        match self {
            Request::SendMessage(_) => "SEND_MESSAGE",
            Request::PopMessage(_) => "POP_MESSAGE",
            Request::AckMessage(_) => "ACK_MESSAGE",
            Request::BatchAckMessage(_) => "BATCH_ACK_MESSAGE",
            Request::ChangeInvisibleTime(_) => "CHANGE_MESSAGE_INVISIBLETIME",
            Request::ConsumerSendMsgBack(_) => "CONSUMER_SEND_MSG_BACK",
            Request::UpdateConsumerOffset(_) => "UPDATE_CONSUMER_OFFSET",
            Request::QueryConsumerOffset(_) => "QUERY_CONSUMER_OFFSET",
            Request::ResetOffset(_) => "INVOKE_BROKER_TO_RESET_OFFSET",
            Request::CreateTopic(_) => "UPDATE_AND_CREATE_TOPIC",
            Request::CreateSubscriptionGroup(_) => "UPDATE_AND_CREATE_SUBSCRIPTIONGROUP",
        }
    }
}

/// A stored message as a consumer sees it (`MessageExt`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct MessageExt {
    /// The topic as delivered: for a retry copy, the original topic
    /// (`popResponseReturnActualRetryTopic = false`, upstream's default).
    pub topic: String,
    /// The queue and offset the copy was read from (for a retry copy: the retry topic's queue
    /// 0 and its offset there).
    pub queue_id: u32,
    pub queue_offset: u64,
    /// The retry topic the copy was read from, if it is a revived copy.
    pub retry_topic: Option<String>,
    /// `UNIQ_KEY`: identity shared by the original and every revived copy.
    pub msg_id: String,
    pub reconsume_times: u32,
    pub born_timestamp: Millis,
    pub store_timestamp: Millis,
    /// Where the copy sits in the commit log (`commitLogOffset`): the gRPC proxy appends it
    /// to the receipt handle and a send-back names the message by it.
    pub commit_log_offset: u64,
    pub tags: Option<String>,
    /// `POP_CK`: the receipt handle for this delivery (`ExtraInfoUtil.buildExtraInfo`, as the
    /// client derives it in `MQClientAPIImpl.processPopResponse`).
    pub pop_ck: Option<String>,
}

/// Upstream `PopStatus`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum PopStatus {
    Found,
    NoNewMsg,
    PollingFull,
    PollingNotFound,
}

/// The body of a POP_MESSAGE response.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PopResult {
    pub status: PopStatus,
    pub pop_time: Millis,
    pub invisible_time: Millis,
    pub revive_qid: u32,
    pub rest_num: u64,
    pub msgs: Vec<MessageExt>,
}

/// A response's typed body.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum ResponseBody {
    None,
    SendResult {
        queue_id: u32,
        queue_offset: u64,
        msg_id: String,
    },
    Pop(PopResult),
    /// CHANGE_MESSAGE_INVISIBLETIME: the new receipt handle.
    ChangeInvisibleTime {
        extra_info: String,
        pop_time: Millis,
        invisible_time: Millis,
        revive_qid: u32,
    },
    QueryConsumerOffset {
        offset: i64,
    },
    /// `ResetOffsetBody`: queueId → offset.
    ResetOffset {
        offsets: BTreeMap<u32, i64>,
    },
}

/// A response: a code, a remark (upstream's text where it matters, e.g. "Offset has been
/// previously reset") and a body.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Response {
    pub code: ResponseCode,
    pub remark: String,
    pub body: ResponseBody,
}

impl Response {
    pub fn success(body: ResponseBody) -> Self {
        Self {
            code: ResponseCode::Success,
            remark: String::new(),
            body,
        }
    }

    pub fn error(code: ResponseCode, remark: impl Into<String>) -> Self {
        Self {
            code,
            remark: remark.into(),
            body: ResponseBody::None,
        }
    }
}

/// The receipt handle (`ExtraInfoUtil`): space-separated
/// `ckQueueOffset popTime invisibleTime reviveQid topicType brokerName queueId queueOffset`,
/// and in the gRPC proxy's form (`ReceiptHandle.encode`, `ConsumerProcessor.createHandle`) a
/// ninth field, the commit log offset. The broker reads the first eight of either.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExtraInfo {
    /// The CK's `startOffset`.
    pub ck_queue_offset: u64,
    pub pop_time: Millis,
    pub invisible_time: Millis,
    /// 999 = orderly (`KeyBuilder.POP_ORDER_REVIVE_QUEUE`).
    pub revive_qid: u32,
    /// 0 normal, 1 retry V1, 2 retry V2.
    pub topic_type: u8,
    pub broker_name: String,
    pub queue_id: u32,
    pub queue_offset: u64,
    /// The proxy's ninth field (`ReceiptHandle.commitLogOffset`); `None` in a broker handle.
    pub commit_log_offset: Option<u64>,
}

/// The most space-separated fields [`ExtraInfo::parse`] reads.
const MAX_HANDLE_FIELDS: usize = 12;

/// `KeyBuilder.POP_ORDER_REVIVE_QUEUE`.
pub const POP_ORDER_REVIVE_QUEUE: u32 = 999;

impl ExtraInfo {
    /// `ExtraInfoUtil.buildExtraInfo` with the message's own offset appended (and the
    /// proxy's commit log offset, if any).
    pub fn build(&self) -> String {
        let mut s = format!(
            "{} {} {} {} {} {} {} {}",
            self.ck_queue_offset,
            self.pop_time,
            self.invisible_time,
            self.revive_qid,
            self.topic_type,
            self.broker_name,
            self.queue_id,
            self.queue_offset
        );
        if let Some(c) = self.commit_log_offset {
            s.push_str(&format!(" {c}"));
        }
        s
    }

    /// `ExtraInfoUtil.split` + getters (`ReceiptHandle.decode` for a ninth field). `None` for
    /// a malformed handle (upstream answers `INVALID_PARAMETER`/throws).
    ///
    /// Clients, the proxy and the checker parse every handle they see, several times each: one
    /// pass over the bytes, with numbers read as `str::parse` reads them (an optional `+`,
    /// then digits, no overflow), and nothing allocated but the broker name.
    pub fn parse(s: &str) -> Option<Self> {
        // Fields past the ninth are read by nobody upstream (`ReceiptHandle.decode` reads
        // the ninth as the commit log offset): the handle local mode's changeInvisibleTime
        // answers with has ten. More than `MAX_HANDLE_FIELDS` is refused.
        let mut f = [""; MAX_HANDLE_FIELDS];
        let mut n = 0;
        let mut start = 0;
        for (i, b) in s.bytes().enumerate() {
            if b == b' ' {
                *f.get_mut(n)? = &s[start..i];
                n += 1;
                start = i + 1;
            }
        }
        *f.get_mut(n)? = &s[start..];
        n += 1;
        let commit_log_offset = match n {
            0..8 => return None,
            8 => None,
            _ => Some(parse_num(f[8])?),
        };
        Some(Self {
            ck_queue_offset: parse_num(f[0])?,
            pop_time: parse_num(f[1])?,
            invisible_time: parse_num(f[2])?,
            revive_qid: parse_num(f[3])?,
            topic_type: parse_num(f[4])?,
            broker_name: f[5].to_owned(),
            queue_id: parse_num(f[6])?,
            queue_offset: parse_num(f[7])?,
            commit_log_offset,
        })
    }

    /// The handle the broker issued, without the proxy's ninth field.
    pub fn broker_handle(&self) -> String {
        Self {
            commit_log_offset: None,
            ..self.clone()
        }
        .build()
    }

    /// `ExtraInfoUtil.isOrder`.
    pub fn is_order(&self) -> bool {
        self.revive_qid == POP_ORDER_REVIVE_QUEUE
    }
}

/// An unsigned number as `str::parse` reads it: an optional `+`, then at least one ASCII
/// digit, and no overflow of `T`.
fn parse_num<T: TryFrom<u64>>(field: &str) -> Option<T> {
    let digits = field.as_bytes();
    let digits = digits.strip_prefix(b"+").unwrap_or(digits);
    if digits.is_empty() {
        return None;
    }
    let mut v: u64 = 0;
    for b in digits {
        let d = b.wrapping_sub(b'0');
        if d > 9 {
            return None;
        }
        v = v.checked_mul(10)?.checked_add(u64::from(d))?;
    }
    T::try_from(v).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn extra_info_round_trips() {
        let e = ExtraInfo {
            ck_queue_offset: 4,
            pop_time: 1000,
            invisible_time: 10_000,
            revive_qid: 3,
            topic_type: 0,
            broker_name: "broker-a".into(),
            queue_id: 1,
            queue_offset: 6,
            commit_log_offset: None,
        };
        assert_eq!(ExtraInfo::parse(&e.build()), Some(e.clone()));
        assert_eq!(ExtraInfo::parse("1 2 3"), None);
        let proxy = ExtraInfo::parse("4 1000 10000 3 0 broker-a 1 6 7").expect("nine fields");
        assert_eq!(proxy.commit_log_offset, Some(7));
        assert_eq!(proxy.broker_handle(), e.build());
        assert_eq!(ExtraInfo::parse("4 1000 10000 3 0 broker-a 1 6 x"), None);
        assert_eq!(
            ExtraInfo::parse("4 1000 10000 3 0 broker-a 1 6 7 8 9 10 11"),
            None,
            "more fields than any handle has"
        );
        assert_eq!(ExtraInfo::parse("x 2 3 4 0 b 1 2"), None);
        assert_eq!(
            ExtraInfo::parse("1 2 3 4 256 b 1 2"),
            None,
            "topic type is a u8"
        );
        assert_eq!(
            ExtraInfo::parse("1 2 3 4 0 b 1 2 "),
            None,
            "an empty ninth field"
        );
        // Local mode's changed handle: the builder's commit log offset 0, then the one
        // `createHandle` appends, which nobody reads.
        let local = ExtraInfo::parse("0 5 6 1 0 b 2 3 0 77").expect("ten fields");
        assert_eq!((local.ck_queue_offset, local.queue_offset), (0, 3));
        assert_eq!(local.commit_log_offset, Some(0));
    }

    /// The reading `parse` replaced: `split(' ')` and `str::parse` per field.
    fn parse_by_split(s: &str) -> Option<ExtraInfo> {
        let f: Vec<&str> = s.split(' ').collect();
        if !(8..=MAX_HANDLE_FIELDS).contains(&f.len()) {
            return None;
        }
        Some(ExtraInfo {
            ck_queue_offset: f[0].parse().ok()?,
            pop_time: f[1].parse().ok()?,
            invisible_time: f[2].parse().ok()?,
            revive_qid: f[3].parse().ok()?,
            topic_type: f[4].parse().ok()?,
            broker_name: f[5].to_owned(),
            queue_id: f[6].parse().ok()?,
            queue_offset: f[7].parse().ok()?,
            commit_log_offset: match f.get(8) {
                Some(c) => Some(c.parse().ok()?),
                None => None,
            },
        })
    }

    proptest::proptest! {
        /// Any string, handle-like or not, reads as `split` and `str::parse` read it.
        #[test]
        fn parse_reads_as_split_and_str_parse(
            fields in proptest::collection::vec(
                proptest::prop_oneof![
                    "[0-9]{1,3}",
                    "\\+?[0-9]{1,21}",
                    "[-+a-z0-9 ]{0,4}",
                    proptest::strategy::Just(String::new()),
                ],
                0..12,
            )
        ) {
            let s = fields.join(" ");
            proptest::prop_assert_eq!(ExtraInfo::parse(&s), parse_by_split(&s));
        }
    }
}
