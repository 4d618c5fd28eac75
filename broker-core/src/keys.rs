//! Names and keys, as upstream `KeyBuilder`, `MixAll` and `PopAckConstants` spell them.

use std::cell::Cell;

/// `MixAll.RETRY_GROUP_TOPIC_PREFIX`.
pub const RETRY_GROUP_TOPIC_PREFIX: &str = "%RETRY%";
/// `MixAll.DLQ_GROUP_TOPIC_PREFIX`.
pub const DLQ_GROUP_TOPIC_PREFIX: &str = "%DLQ%";
/// `PopAckConstants.REVIVE_GROUP`: the group whose offsets record revive progress.
pub const REVIVE_GROUP: &str = "CID_RMQ_SYS_REVIVE_GROUP";
/// `PopAckConstants.REVIVE_TOPIC` prefix; the cluster name is appended.
pub const REVIVE_TOPIC_PREFIX: &str = "rmq_sys_REVIVE_LOG_";
/// `PopAckConstants.ackTimeInterval`: a CK becomes visible this long before its revive time.
pub const ACK_TIME_INTERVAL: u64 = 1_000;
/// `PopAckConstants.SECOND`.
pub const SECOND: u64 = 1_000;
/// `PopAckConstants.retryQueueNum`: queues of a POP retry topic.
pub const RETRY_QUEUE_NUM: u32 = 1;
/// `ConsumerOffsetManager.TOPIC_GROUP_SEPARATOR`.
pub const TOPIC_GROUP_SEPARATOR: &str = "@";
/// `KeyBuilder.POP_RETRY_SEPARATOR_V1` / `_V2`.
const POP_RETRY_SEPARATOR_V1: &str = "_";
const POP_RETRY_SEPARATOR_V2: &str = "+";

/// A number's decimal text, as Java's string concatenation prints it, on the stack. The
/// keys below are built several times in each step of a pop: `[..].concat()` with this
/// makes each in one allocation of the exact size, where `format!` goes through `fmt` for
/// every piece and regrows its buffer.
struct Decimal {
    digits: [u8; 20],
    start: usize,
}

impl Decimal {
    /// Any `i64` or `u64` fits the 20 digits (with the sign).
    fn new(n: impl Into<i128>) -> Decimal {
        let n: i128 = n.into();
        let mut digits = [0; 20];
        let mut start = digits.len();
        let mut rest = n.unsigned_abs();
        loop {
            start -= 1;
            digits[start] = b'0' + (rest % 10) as u8;
            rest /= 10;
            if rest == 0 {
                break;
            }
        }
        if n < 0 {
            start -= 1;
            digits[start] = b'-';
        }
        Decimal { digits, start }
    }

    fn as_str(&self) -> &str {
        std::str::from_utf8(&self.digits[self.start..]).expect("ASCII digits")
    }
}

/// `PopAckConstants.buildClusterReviveTopic`.
pub fn revive_topic(cluster: &str) -> String {
    [REVIVE_TOPIC_PREFIX, cluster].concat()
}

/// `KeyBuilder.buildPopRetryTopic(topic, group, v2)`.
pub fn pop_retry_topic(topic: &str, group: &str, v2: bool) -> String {
    if v2 {
        pop_retry_topic_v2(topic, group)
    } else {
        pop_retry_topic_v1(topic, group)
    }
}

/// `KeyBuilder.buildPopRetryTopicV1`: `%RETRY%group_topic`.
pub fn pop_retry_topic_v1(topic: &str, group: &str) -> String {
    [
        RETRY_GROUP_TOPIC_PREFIX,
        group,
        POP_RETRY_SEPARATOR_V1,
        topic,
    ]
    .concat()
}

/// `KeyBuilder.buildPopRetryTopicV2`: `%RETRY%group+topic`.
pub fn pop_retry_topic_v2(topic: &str, group: &str) -> String {
    [
        RETRY_GROUP_TOPIC_PREFIX,
        group,
        POP_RETRY_SEPARATOR_V2,
        topic,
    ]
    .concat()
}

/// `MixAll.getDLQTopic`.
pub fn dlq_topic(group: &str) -> String {
    [DLQ_GROUP_TOPIC_PREFIX, group].concat()
}

/// Is this a retry topic (`%RETRY%` prefix)?
pub fn is_retry_topic(topic: &str) -> bool {
    topic.starts_with(RETRY_GROUP_TOPIC_PREFIX)
}

/// `KeyBuilder.isPopRetryTopicV2`.
pub fn is_pop_retry_topic_v2(topic: &str) -> bool {
    is_retry_topic(topic) && topic.contains(POP_RETRY_SEPARATOR_V2)
}

/// `KeyBuilder.parseNormalTopic(retryTopic, group)`: the topic a POP retry topic belongs to.
pub fn parse_normal_topic(topic: &str, group: &str) -> String {
    if !is_retry_topic(topic) {
        return topic.to_owned();
    }
    let prefix_len = RETRY_GROUP_TOPIC_PREFIX.len() + group.len() + 1;
    topic
        .get(prefix_len..)
        .map(str::to_owned)
        .unwrap_or_else(|| topic.to_owned())
}

/// `KeyBuilder.parseNormalTopic(retryTopic)`: a V2 retry topic's normal topic (split at
/// its one `+`), any other topic itself.
pub fn parse_normal_topic_v2(topic: &str) -> String {
    if is_pop_retry_topic_v2(topic) {
        let parts: Vec<&str> = topic.split(POP_RETRY_SEPARATOR_V2).collect();
        if parts.len() == 2 {
            return parts[1].to_owned();
        }
    }
    topic.to_owned()
}

/// The extraInfo topic type (`ExtraInfoUtil`): 0 normal, 1 retry V1, 2 retry V2.
pub fn topic_type(topic: &str) -> u8 {
    if is_pop_retry_topic_v2(topic) {
        2
    } else if is_retry_topic(topic) {
        1
    } else {
        0
    }
}

/// `ExtraInfoUtil.getRealTopic`: the topic an ack or batch ack refers to.
pub fn real_topic(topic: &str, group: &str, topic_type: u8) -> String {
    if is_retry_topic(topic) {
        return topic.to_owned();
    }
    match topic_type {
        1 => pop_retry_topic_v1(topic, group),
        2 => pop_retry_topic_v2(topic, group),
        _ => topic.to_owned(),
    }
}

/// `ConsumerOffsetManager` key: `topic@group`.
pub fn offset_key(topic: &str, group: &str) -> String {
    offset_key_parts(topic, group).concat()
}

/// The pieces of `topic@group`, for [`offset_key`] and [`with_offset_key`].
fn offset_key_parts<'a>(topic: &'a str, group: &'a str) -> [&'a str; 3] {
    [topic, TOPIC_GROUP_SEPARATOR, group]
}

thread_local! {
    /// The buffer [`with_offset_key`] builds its keys in, reused by every lookup of the thread.
    static LOOKUP_KEY: Cell<String> = const { Cell::new(String::new()) };
}

/// Runs `f` with `topic@group` ([`offset_key`]) to look a table up by. A lookup only
/// compares the key, and the pop path makes several in each step, so the text goes into a
/// buffer reused from one lookup to the next instead of an allocation of its own.
pub fn with_offset_key<R>(topic: &str, group: &str, f: impl FnOnce(&str) -> R) -> R {
    let mut key = LOOKUP_KEY.take();
    key.clear();
    key.extend(offset_key_parts(topic, group));
    let found = f(&key);
    LOOKUP_KEY.set(key);
    found
}

/// `KeyBuilder.buildPollingKey` / the pop `lockKey`: `topic@group@queueId`.
pub fn lock_key(topic: &str, group: &str, queue_id: u32) -> String {
    polling_key(topic, group, queue_id.into())
}

/// `KeyBuilder.buildPollingKey`, whose queueId is −1 for a pop of every queue.
pub fn polling_key(topic: &str, group: &str, queue_id: i64) -> String {
    let queue_id = Decimal::new(queue_id);
    [
        topic,
        TOPIC_GROUP_SEPARATOR,
        group,
        TOPIC_GROUP_SEPARATOR,
        queue_id.as_str(),
    ]
    .concat()
}

/// Where the model's clock (0 at the start of a run) sits on upstream's: popTimes are
/// `System.currentTimeMillis()` upstream, 13 digits in any deployment since 2001. The merge
/// key prints a popTime as that epoch time, so its concatenation can be ambiguous only where
/// upstream's is (a clock near 0 would add popTimes of different lengths that cannot occur).
pub const MODEL_EPOCH_MS: u64 = 1_758_240_000_000;

/// The CK/ACK merge key of `PopBufferMergeService` and `PopReviveService`: a plain
/// concatenation `topic + cid + queueId + startOffset + popTime + brokerName`, exactly as
/// upstream builds it (no separators, so it inherits upstream's ambiguity: queue 1 offset 23
/// and queue 12 offset 3 concatenate alike). `broker_name` `None` leaves it out (the
/// pre-#8494 revive key). `separated` is the proposed fix `merge-key-with-separator`, read
/// only here: the fields joined with `@`.
pub fn merge_key(
    topic: &str,
    cid: &str,
    queue_id: u32,
    start_offset: u64,
    pop_time: u64,
    broker_name: Option<&str>,
    separated: bool,
) -> String {
    let sep = if separated { TOPIC_GROUP_SEPARATOR } else { "" };
    let pop_time = MODEL_EPOCH_MS + pop_time;
    let (queue_id, start_offset, pop_time) = (
        Decimal::new(queue_id),
        Decimal::new(start_offset),
        Decimal::new(pop_time),
    );
    let fields = [
        topic,
        sep,
        cid,
        sep,
        queue_id.as_str(),
        sep,
        start_offset.as_str(),
        sep,
        pop_time.as_str(),
        sep,
        broker_name.unwrap_or(""),
    ];
    // Without a broker name the key ends at the popTime (no trailing separator).
    let n = if broker_name.is_some() {
        fields.len()
    } else {
        fields.len() - 2
    };
    fields[..n].concat()
}

/// Java's string concatenation of a nullable brokerName: `null` prints as `"null"`.
pub fn java_str(s: Option<&str>) -> &str {
    s.unwrap_or("null")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_topic_names_follow_key_builder() {
        assert_eq!(pop_retry_topic("T", "G", false), "%RETRY%G_T");
        assert_eq!(pop_retry_topic("T", "G", true), "%RETRY%G+T");
        assert_eq!(topic_type("%RETRY%G_T"), 1);
        assert_eq!(topic_type("%RETRY%G+T"), 2);
        assert_eq!(topic_type("T"), 0);
        assert_eq!(parse_normal_topic("%RETRY%G_T", "G"), "T");
        assert_eq!(parse_normal_topic("%RETRY%G+T", "G"), "T");
        assert_eq!(real_topic("T", "G", 1), "%RETRY%G_T");
        assert_eq!(real_topic("%RETRY%G_T", "G", 1), "%RETRY%G_T");
        assert_eq!(dlq_topic("G"), "%DLQ%G");
        assert_eq!(
            revive_topic("DefaultCluster"),
            "rmq_sys_REVIVE_LOG_DefaultCluster"
        );
    }

    #[test]
    fn merge_key_prints_numbers_as_java_does() {
        for n in [0, 7, 10, 99, 1_000, 4_294_967_295, u64::MAX] {
            assert_eq!(Decimal::new(n).as_str(), n.to_string());
        }
        for n in [-1, i64::MIN, i64::MAX] {
            assert_eq!(Decimal::new(n).as_str(), n.to_string());
        }
        assert_eq!(
            merge_key("%RETRY%G_T", "G", 0, 0, 0, None, true),
            format!("%RETRY%G_T@G@0@0@{MODEL_EPOCH_MS}")
        );
    }

    #[test]
    fn merge_key_is_plain_concatenation() {
        assert_eq!(
            merge_key("T", "G", 1, 23, 5, Some("b"), false),
            "TG1231758240000005b"
        );
        // popTimes print as 13-digit epoch times: no ambiguity across startOffset/popTime.
        assert_ne!(
            merge_key("T", "G", 0, 1, 2_345, None, false),
            merge_key("T", "G", 0, 12, 345, None, false)
        );
        // Upstream's key is ambiguous across queueId/startOffset boundaries; so is ours.
        assert_eq!(
            merge_key("T", "G", 1, 23, 5, Some("b"), false),
            merge_key("T", "G", 12, 3, 5, Some("b"), false)
        );
        // The proposed fix tells them apart.
        assert_eq!(
            merge_key("T", "G", 1, 23, 5, Some("b"), true),
            "T@G@1@23@1758240000005@b"
        );
        assert_ne!(
            merge_key("T", "G", 1, 23, 5, None, true),
            merge_key("T", "G", 12, 3, 5, None, true)
        );
        assert_eq!(java_str(None), "null");
        assert_eq!(offset_key("T", "G"), "T@G");
        assert_eq!(with_offset_key("Topic", "G", str::to_owned), "Topic@G");
        assert_eq!(with_offset_key("T", "G", str::to_owned), "T@G");
        // A lookup inside a lookup builds its own key.
        let nested = with_offset_key("A", "B", |a| {
            with_offset_key("C", "D", |c| a.to_owned() + " " + c)
        });
        assert_eq!(nested, "A@B C@D");
        assert_eq!(lock_key("T", "G", 3), "T@G@3");
    }

    #[test]
    fn keys_print_numbers_as_format_does() {
        for q in [0, 7, 10, 12_345, u32::MAX] {
            assert_eq!(lock_key("T", "G", q), format!("T@G@{q}"));
        }
        for q in [-1, 0, 9, i64::from(i32::MAX), i64::MIN, i64::MAX] {
            assert_eq!(polling_key("T", "G", q), format!("T@G@{q}"));
        }
    }
}
