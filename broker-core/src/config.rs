//! Broker configuration, mirroring the fields of upstream `BrokerConfig`
//! (`common/src/main/java/org/apache/rocketmq/common/BrokerConfig.java`) that POP
//! consumption reads. Field names serialise in upstream's camelCase so a scenario file
//! can say `enablePopBufferMerge = true` exactly as a `broker.conf` would.

use serde::{Deserialize, Serialize};

/// Virtual time in milliseconds since the start of a simulation.
pub type Millis = u64;

/// The subset of upstream `BrokerConfig` that the POP model reads. Defaults are upstream's
/// (develop, 2025-09) unless a comment says otherwise.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields, default)]
pub struct BrokerConfig {
    /// `brokerName`: part of every CK/ACK merge key and of the receipt handle.
    pub broker_name: String,
    /// `brokerClusterName`: names the revive topic `rmq_sys_REVIVE_LOG_<cluster>`.
    pub broker_cluster_name: String,
    /// `enablePopBufferMerge` (default false): keep CKs in `PopBufferMergeService` and merge acks in memory.
    pub enable_pop_buffer_merge: bool,
    /// `popCkStayBufferTime` (10 000 ms): how long a CK may stay in the buffer before it is flushed.
    pub pop_ck_stay_buffer_time: Millis,
    /// `popCkStayBufferTimeOut` (3 000 ms): flush when the revive time is this close.
    pub pop_ck_stay_buffer_time_out: Millis,
    /// `popCkMaxBufferSize` (200 000): buffered CKs beyond this are written straight to the revive log.
    pub pop_ck_max_buffer_size: u64,
    /// `popCkOffsetMaxQueueSize` (20 000): bound on each queue's offset deque.
    pub pop_ck_offset_max_queue_size: u64,
    /// `enablePopBatchAck` (default false): flush buffered acks as one `BatchAckMsg`.
    pub enable_pop_batch_ack: bool,
    /// `reviveQueueNum` (8): queues of the revive topic.
    pub revive_queue_num: u32,
    /// `reviveInterval` (1 000 ms): pause between revive scans.
    pub revive_interval: Millis,
    /// `reviveMaxSlow` (3): revive requests allowed in flight.
    pub revive_max_slow: u32,
    /// `reviveScanTime` (10 000 ms): upper bound on one revive scan.
    pub revive_scan_time: Millis,
    /// `enableSkipLongAwaitingAck` (default false): mock a CK for an ACK that waited too long.
    pub enable_skip_long_awaiting_ack: bool,
    /// `reviveAckWaitMs` (3 min).
    pub revive_ack_wait_ms: Millis,
    /// `skipWhenCKRePutReachMaxTimes` (default false).
    #[serde(rename = "skipWhenCKRePutReachMaxTimes")]
    pub skip_when_ck_re_put_reach_max_times: bool,
    /// `useServerSideResetOffset` (default true): admin resets are applied by the broker.
    pub use_server_side_reset_offset: bool,
    /// `popFromRetryProbability` (20): percent of pops that read the retry topic first.
    pub pop_from_retry_probability: u32,
    /// `enableRetryTopicV2` (default false): `%RETRY%group+topic` instead of `%RETRY%group_topic`.
    pub enable_retry_topic_v2: bool,
    /// `retrieveMessageFromPopRetryTopicV1` (default true).
    #[serde(rename = "retrieveMessageFromPopRetryTopicV1")]
    pub retrieve_message_from_pop_retry_topic_v1: bool,
    /// `popConsumerKVServiceEnable` (default false): the RIP-73 KV pop path (`PopConsumerService`).
    #[serde(rename = "popConsumerKVServiceEnable")]
    pub pop_consumer_kv_service_enable: bool,
    /// `enablePopMessageThreshold` (default false).
    pub enable_pop_message_threshold: bool,
    /// `popInflightMessageThreshold` (10 000).
    pub pop_inflight_message_threshold: u64,
    /// `initPopOffsetByCheckMsgInMem` (default true).
    pub init_pop_offset_by_check_msg_in_mem: bool,
    /// `flushConsumerOffsetInterval` (5 000 ms): `ConsumerOffsetManager.persist()` period; what a
    /// crash loses is what was committed since the last persist.
    pub flush_consumer_offset_interval: Millis,
    /// `timerWheelEnable` (default true): POP needs timer messages for CK/ACK records.
    pub timer_wheel_enable: bool,
    /// `timerEnableRetryUntilSuccess` (`MessageStoreConfig`, default false; since #8980,
    /// 5.3.2): the timer's dequeue side tries a failed put until it succeeds instead of giving
    /// the record up after three attempts (`TimerDequeuePutMessageService.run`).
    pub timer_enable_retry_until_success: bool,
    /// `appendCkAsync` (default false): the buffer's CK puts go through
    /// `EscapeBridge.asyncPutMessageToSpecificQueue` (`PopBufferMergeService.putCkToStore`)
    /// and the wrapper counts as stored only once the future completes
    /// (`handleCkMessagePutResult`). No effect in the model, by upstream's own code: the
    /// modelled store is a master with asynchronous flush and no synchronous slave, where
    /// `CommitLog.asyncPutMessage` appends in the calling thread and returns a future already
    /// completed (`CommitLog.DefaultFlushManager.handleDiskFlush` for `ASYNC_FLUSH`, `handleHA` for at
    /// most one ack), so the callback runs inside `putCkToStore` and the scan sees the CK
    /// stored, as with a synchronous put. Only `SYNC_FLUSH` or a synchronous slave would
    /// complete it later, and neither is modelled.
    pub append_ck_async: bool,
    /// `appendAckAsync` (default false): ACK puts through the asynchronous put
    /// (`PopBufferMergeService.putAckToStore` / `putBatchAckToStore`,
    /// `AckMessageProcessor.appendAck`; with `appendCkAsync` too, `ChangeInvisibleTimeProcessor`
    /// answers from the future). No effect in the model, for the reason given at
    /// [`Self::append_ck_async`]: the future is complete when returned, so every callback runs
    /// in the putting thread before the request or the scan goes on.
    pub append_ack_async: bool,
}

impl Default for BrokerConfig {
    fn default() -> Self {
        Self {
            broker_name: "broker-a".to_owned(),
            broker_cluster_name: "DefaultCluster".to_owned(),
            enable_pop_buffer_merge: false,
            pop_ck_stay_buffer_time: 10_000,
            pop_ck_stay_buffer_time_out: 3_000,
            pop_ck_max_buffer_size: 200_000,
            pop_ck_offset_max_queue_size: 20_000,
            enable_pop_batch_ack: false,
            revive_queue_num: 8,
            revive_interval: 1_000,
            revive_max_slow: 3,
            revive_scan_time: 10_000,
            enable_skip_long_awaiting_ack: false,
            revive_ack_wait_ms: 180_000,
            skip_when_ck_re_put_reach_max_times: false,
            use_server_side_reset_offset: true,
            pop_from_retry_probability: 20,
            enable_retry_topic_v2: false,
            retrieve_message_from_pop_retry_topic_v1: true,
            pop_consumer_kv_service_enable: false,
            enable_pop_message_threshold: false,
            pop_inflight_message_threshold: 10_000,
            init_pop_offset_by_check_msg_in_mem: true,
            flush_consumer_offset_interval: 5_000,
            timer_wheel_enable: true,
            timer_enable_retry_until_success: false,
            append_ck_async: false,
            append_ack_async: false,
        }
    }
}
