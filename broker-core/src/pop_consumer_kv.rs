//! The RIP-73 KV pop path, `PopConsumerService` (`broker/.../pop/PopConsumerService.java`),
//! taken when `popConsumerKVServiceEnable`: one lock per group@topic, `requestCount`-based
//! queue start and retry preference, the FIFO block check *before* `getPopOffset` (where a
//! pending reset is applied), read position from the pull table (non-FIFO) or the commit
//! table (FIFO, since #9696), and `handleGetMessageResult`'s offset bookkeeping. Non-FIFO
//! deliveries become `PopConsumerRecord`s in the KV store (RocksDB, so they survive a
//! crash); an ack deletes the record and the service revives expired ones to the retry
//! topic (`revive`: the records whose visibility lies in `[currentTime − 3 s, now − 50 ms]`,
//! every 500 ms; a failed retry put writes the record back with a back-off,
//! `REWRITE_INTERVALS_IN_SECONDS`, up to `popReviveMaxAttemptTimes`, then drops it).
//!
//! With `enablePopBufferMerge` the service also has a `PopConsumerCache` (`PopConsumerCache`
//! in the same package): records of a pop go to the cache unless it is full
//! (`popCkMaxBufferSize`); an ack or a changeInvisibleTime deletes from the cache first,
//! keyed by offset only, and from the store what the cache did not have; the commit a pop
//! writes is the cache's smallest offset for the queue when it has one
//! (`handleGetMessageResult`); once a second `cleanupRecords` stages every record whose
//! visibility or `popCkStayBufferTime` has passed, revives the expired ones (`consumer.accept`,
//! whose future nobody reads: a failed revive is simply gone, #10667) and writes the others to
//! the store, then commits the queue's smallest cached offset (under `tryLock(group, topic)`,
//! skipped while a pop holds it; no `hasOffsetReset` check). A group nobody popped for
//! 2 min (`PopConsumerLockService.isLockTimeout`) has all its records written to the store and
//! its entry dropped, with no commit. The cache lives in memory: a crash or a shutdown drops
//! it (`PopConsumerService.shutdown` does not flush it). The model runs a cleanup pass in one
//! step, so its staging map (#9627) is always empty between steps; a commit the pass skips
//! because it would not change offsetTable is left out.

use crate::ack_message_processor::AckTarget;
use crate::broker::Broker;
use crate::checkpoint::PopCheckPoint;
use crate::config::Millis;
use crate::consumer_order_info_manager::OrderCountInfo;
use crate::events::{BrokerEvent, ReadFrom};
use crate::inflight::OpId;
use crate::keys::{self, SECOND};
use crate::locks::TryLocks;
use crate::name::Name;
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
/// `revive` scans from `currentTime − 3 s`.
const KV_SCAN_BACK: Millis = 3_000;
/// `PopConsumerService.REWRITE_INTERVALS_IN_SECONDS`: the back-off of a failed revive.
const REWRITE_INTERVALS_S: [Millis; 16] = [
    10, 30, 60, 120, 180, 240, 300, 360, 420, 480, 540, 600, 1200, 1800, 3600, 7200,
];
/// `popReviveMaxAttemptTimes` (BrokerConfig default 16).
const POP_REVIVE_MAX_ATTEMPT_TIMES: u32 = 16;
/// `PopConsumerLockService`'s timeout (2 min): a group whose lock nobody took for this long
/// is offline for `PopConsumerCache`.
const LOCK_TIMEOUT: Millis = 120_000;
/// `PopConsumerCache.run()`: `waitForRunning(1 s)` between cleanups.
const CACHE_CLEANUP_INTERVAL: Millis = 1_000;

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
    /// `attemptTimes`: failed revives so far.
    pub attempt_times: u32,
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

/// `PopConsumerCache`: records in memory per group@topic@queue, keyed by offset only.
#[derive(Clone, Debug, Default)]
pub struct PopConsumerCache {
    /// (group, topic, queue) → offset → record (`recordTreeMap`).
    table: BTreeMap<(String, String, u32), BTreeMap<u64, PopConsumerRecord>>,
    /// `estimateCacheSize`.
    estimate: u64,
    last_cleanup: Option<Millis>,
}

impl PopConsumerCache {
    fn key(r: &PopConsumerRecord) -> (String, String, u32) {
        (r.group.clone(), r.topic.clone(), r.queue_id)
    }

    /// `getMinOffsetInCache`: −1 without records.
    pub fn min_offset(&self, group: &str, topic: &str, queue_id: u32) -> i64 {
        self.table
            .get(&(group.to_owned(), topic.to_owned(), queue_id))
            .and_then(|m| m.keys().next())
            .map_or(-1, |&o| o as i64)
    }

    /// `getPopInFlightMessageCount`.
    pub fn in_flight(&self, group: &str, topic: &str, queue_id: u32) -> u64 {
        self.table
            .get(&(group.to_owned(), topic.to_owned(), queue_id))
            .map_or(0, |m| m.len() as u64)
    }

    /// `writeRecords`.
    fn write(&mut self, records: Vec<PopConsumerRecord>) {
        self.estimate += records.len() as u64;
        for r in records {
            self.table
                .entry(Self::key(&r))
                .or_default()
                .insert(r.offset, r);
        }
    }

    /// `deleteRecords` of one record: by offset, whatever its popTime; false if not cached.
    /// With `same_record` (the proposed fix `cache-delete-matches-record`) only the record
    /// with the request's popTime and invisible time is removed.
    fn delete(&mut self, r: &PopConsumerRecord, same_record: bool) -> bool {
        let found = self.table.get_mut(&Self::key(r)).is_some_and(|m| {
            let matches = m.get(&r.offset).is_some_and(|c| {
                !same_record || (c.pop_time == r.pop_time && c.invisible_time == r.invisible_time)
            });
            matches && m.remove(&r.offset).is_some()
        });
        if found {
            self.estimate = self.estimate.saturating_sub(1);
        }
        found
    }

    /// `removeRecords`: the queue's records are dropped, never revived.
    fn remove_queue(&mut self, group: &str, topic: &str, queue_id: u32) {
        self.table
            .remove(&(group.to_owned(), topic.to_owned(), queue_id));
    }
}

/// The service's state: `PopConsumerRocksdbStore` (durable), `requestCountTable`, the
/// `PopConsumerLockService` locks, the revive scan's `currentTime`, and the cache.
#[derive(Clone, Debug, Default)]
pub struct PopConsumerService {
    records: BTreeMap<RecordKey, PopConsumerRecord>,
    request_count: BTreeMap<String, u64>,
    last_tick: Option<Millis>,
    /// `currentTime`: the revive scan's lower bound is 3 s before it (`None`: from the start,
    /// upstream's initial 3 s on the epoch clock).
    current_time: Option<Millis>,
    started_at: Millis,
    pub(crate) locks: TryLocks,
    /// `PopConsumerCache` (with `enablePopBufferMerge`).
    pub(crate) cache: PopConsumerCache,
}

/// `PopConsumerLockService`'s key: `groupId@topicId`.
pub(crate) fn kv_lock_key(group: &str, topic: &str) -> String {
    [group, keys::TOPIC_GROUP_SEPARATOR, topic].concat()
}

impl PopConsumerService {
    /// A crash or shutdown loses the in-memory counters, locks and cache; the KV store
    /// survives. The service starts again at `now`.
    pub fn clear(&mut self) {
        self.request_count.clear();
        self.last_tick = None;
        self.current_time = None;
        self.locks.clear();
        self.cache = PopConsumerCache::default();
    }

    /// The process (re)starts at `now`.
    pub fn start(&mut self, now: Millis) {
        self.clear();
        self.started_at = now;
    }

    /// The revive scan's lower bound for the pass due at `due`: 3 s before `currentTime`.
    /// Scans the model skipped before `due` (nothing was due) set `currentTime` to their
    /// upper time; a pass that runs later than `due` (a stalled thread) resumes from there,
    /// since upstream moves `currentTime` only when a scan runs (`PopConsumerService.revive`).
    fn scan_lower_bound(&self, due: Millis) -> Millis {
        let skipped = self
            .last_tick
            .filter(|t| due >= t + 2 * KV_REVIVE_INTERVAL)
            .map(|_| due - KV_REVIVE_INTERVAL - KV_REVIVE_LAG);
        skipped
            .or(self.current_time)
            .map_or(0, |c| c.saturating_sub(KV_SCAN_BACK))
    }

    /// The next revive pass that has an expired record in its window.
    fn revive_deadline(&self) -> Option<Millis> {
        let lower = self
            .current_time
            .map_or(0, |c| c.saturating_sub(KV_SCAN_BACK));
        let ((first, ..), _) = self
            .records
            .range((lower, String::new(), String::new(), 0, 0)..)
            .next()?;
        let due = first + KV_REVIVE_LAG;
        let earliest = self.last_tick.map_or(due, |t| due.max(t + 1));
        Some(earliest.div_ceil(KV_REVIVE_INTERVAL) * KV_REVIVE_INTERVAL)
    }

    /// The next cache cleanup, while the cache holds records: once a second from the start.
    fn cache_deadline(&self) -> Option<Millis> {
        if self.cache.table.is_empty() {
            return None;
        }
        let after = self
            .cache
            .last_cleanup
            .map_or(self.started_at, |t| t.max(self.started_at));
        let k = (after - self.started_at) / CACHE_CLEANUP_INTERVAL + 1;
        Some(self.started_at + k * CACHE_CLEANUP_INTERVAL)
    }

    /// The next time the service has something to do.
    pub fn next_deadline(&self) -> Option<Millis> {
        [self.revive_deadline(), self.cache_deadline()]
            .into_iter()
            .flatten()
            .min()
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
    /// The queue whose read is in flight: topic, queue, retry flag, consume offset (−1: none,
    /// before #9247), and why that offset when it is not recorded yet (see
    /// `PopMessageProcessor`'s `HeldQueue`).
    held: Option<(String, u32, u8, i64, Option<ReadFrom>)>,
    /// `PopConsumerRecord`s of the non-FIFO messages found, written at the end.
    records: Vec<PopConsumerRecord>,
    locked: bool,
}

impl Broker {
    /// `PopConsumerService.popAsync` before its lock: the context; the queue plan is drawn
    /// once the lock is taken ([`Self::kv_plan`]).
    pub(crate) fn start_pop_kv(&mut self, now: Millis, req: PopMessageRequest) -> KvPop {
        let fifo = req.order;
        KvPop {
            ctx: PopContext {
                req,
                pop_time: now,
                revive_qid: if fifo { POP_ORDER_REVIVE_QUEUE } else { 0 },
                random_q: 0,
                msgs: Vec::new(),
                rest_num: 0,
            },
            plan: VecDeque::new(),
            held: None,
            records: Vec::new(),
            locked: false,
        }
    }

    /// `popAsync` right after `consumerLockService.tryLock` succeeded: `requestCount` (taken
    /// and incremented only by a pop that holds the lock; one that found it held returned
    /// before), the retry preference and the queue plan.
    fn kv_plan(&mut self, req: &PopMessageRequest) -> VecDeque<(String, u32, u8)> {
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
        plan
    }

    /// One step of a KV pop. The first takes `consumerLockService.tryLock(group, topic)`;
    /// each later one finishes the read in flight and starts the next queue's; the last
    /// writes the records and unlocks. `Some` at the end: the answer, or parked (long
    /// polling).
    pub(crate) fn step_pop_kv(&mut self, now: Millis, op: OpId, pop: &mut KvPop) -> Option<PopEnd> {
        let lock = kv_lock_key(&pop.ctx.req.consumer_group, &pop.ctx.req.topic);
        if !pop.locked {
            if !self.kv.locks.try_lock_at(&lock, op, now) {
                // `popAsync` returns the empty context: nothing found, so the processor's
                // callback parks the request like any empty pop.
                return Some(self.finish_pop(now, op, &mut pop.ctx));
            }
            pop.locked = true;
            pop.plan = self.kv_plan(&pop.ctx.req);
        }
        loop {
            if let Some((topic, queue_id, retry_flag, offset, unrecorded)) = pop.held.take() {
                self.kv_handle_read(now, pop, &topic, queue_id, retry_flag, offset, unrecorded);
            }
            let Some((topic, queue_id, retry_flag)) = pop.plan.pop_front() else {
                break;
            };
            if let Some((offset, unrecorded)) =
                self.kv_begin_queue(now, op, &mut pop.ctx, &topic, queue_id)
            {
                pop.held = Some((topic, queue_id, retry_flag, offset, unrecorded));
                return None;
            }
        }
        let records = std::mem::take(&mut pop.records);
        if !records.is_empty() {
            if self.kv_cache_on() && !self.kv_cache_full() {
                self.kv.cache.write(records);
            } else {
                for record in records {
                    self.kv.write(record);
                }
            }
        }
        if let Some(holder) = self.kv.locks.unlock(&lock, op) {
            self.events.push(BrokerEvent::LockReleasedByOther {
                at: now,
                lock: lock.into(),
                holder: holder.0,
                by: op.0,
                site: "PopConsumerService.popAsync".into(),
            });
        }
        Some(self.finish_pop(now, op, &mut pop.ctx))
    }

    /// `popConsumerCache != null`: the cache exists with `enablePopBufferMerge`.
    fn kv_cache_on(&self) -> bool {
        self.config.enable_pop_buffer_merge
    }

    /// `isCacheFull`: `estimateCacheSize > popCkMaxBufferSize`.
    fn kv_cache_full(&self) -> bool {
        self.kv.cache.estimate > self.config.pop_ck_max_buffer_size
    }

    /// `PopConsumerService.isPopShouldStop`: with `enablePopMessageThreshold`, a queue whose
    /// cached records reach `popInflightMessageThreshold` is skipped (`>=`; only the cache is
    /// counted, so without it the threshold never applies).
    fn kv_pop_should_stop(&self, group: &str, topic: &str, queue_id: u32) -> bool {
        self.config.enable_pop_message_threshold
            && self.kv_cache_on()
            && self.kv.cache.in_flight(group, topic, queue_id)
                >= self.config.pop_inflight_message_threshold
    }

    /// `getMessageAsync(future, …)` for one queue, up to the read: the in-flight threshold,
    /// the FIFO block check, the remaining batch, `getPopOffset` (which consumes a pending
    /// reset). The offset to read from (−1: none, before #9247), and why, when a read is due.
    fn kv_begin_queue(
        &mut self,
        now: Millis,
        op: OpId,
        ctx: &mut PopContext,
        topic: &str,
        queue_id: u32,
    ) -> Option<(i64, Option<ReadFrom>)> {
        let req = &ctx.req;
        let group = req.consumer_group.clone();
        if self.kv_pop_should_stop(&group, topic, queue_id) {
            return None;
        }
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
        let recorded = self.pop_read(now, ctx, topic, queue_id, offset, from);
        Some((offset, (!recorded).then_some(from)))
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
        consume_offset: i64,
        unrecorded: Option<ReadFrom>,
    ) {
        let ctx = &mut pop.ctx;
        let group = ctx.req.consumer_group.clone();
        let remain = ctx.remaining();
        let result =
            self.read_with_offset_correction(now, &group, topic, queue_id, consume_offset, remain);
        if let Some(from) = unrecorded {
            self.pop_read_late(now, ctx, topic, queue_id, &result.msgs, from);
        }
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
        self.kv_commit_after_read(
            now,
            &group,
            topic,
            queue_id,
            ctx.req.order,
            found,
            consume_offset,
            result.next_begin_offset,
        );
        if !found {
            return;
        }
        let ck_offset = u64::try_from(consume_offset).unwrap_or(0);
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
                    attempt_times: 0,
                });
            }
            let reconsume_times = if ctx.req.order {
                order_count.reconsume_times(queue_offset, ctx.req.count_by_queue)
            } else {
                msg.reconsume_times
            };
            let view = self.message_view(
                ctx,
                topic,
                retry_flag != 0,
                queue_id,
                ck_offset,
                queue_offset,
                msg,
                reconsume_times,
            );
            ctx.msgs.push(view);
        }
    }

    /// `handleGetMessageResult`'s commits (since #9340): FIFO commits the read start when
    /// found, else `nextBeginOffset`; non-FIFO commits the pull offset `nextBeginOffset` and
    /// the read start, or the cache's smallest offset when it has one (taken before this
    /// pop's records are cached). Before #9340 (`kv-fifo-no-commit-at-pop`, read only here)
    /// `addGetMessageResult` committed nothing for FIFO and, for non-FIFO, the read start when
    /// found, else `nextBeginOffset`.
    #[allow(clippy::too_many_arguments)]
    fn kv_commit_after_read(
        &mut self,
        now: Millis,
        group: &str,
        topic: &str,
        queue_id: u32,
        fifo: bool,
        found: bool,
        consume_offset: i64,
        next_begin_offset: u64,
    ) {
        let next = next_begin_offset as i64;
        let before_9340 = self.behaviours.is_on(Behaviour::KvFifoNoCommitAtPop);
        let mut commit = consume_offset;
        if fifo {
            if before_9340 {
                return;
            }
            if !found {
                commit = next;
            }
        } else {
            if before_9340 && !found {
                commit = next;
            }
            self.offsets.commit_pull_offset(
                &mut self.events,
                now,
                "PopConsumerService",
                group,
                topic,
                queue_id,
                next,
            );
            if self.kv_cache_on() {
                let min = self.kv.cache.min_offset(group, topic, queue_id);
                if min != -1 {
                    commit = min;
                }
            }
        }
        self.offsets.commit_offset(
            &mut self.events,
            now,
            "PopConsumerService",
            group,
            topic,
            queue_id,
            commit,
        );
    }

    /// `PopConsumerService.clearCache(group, topic, queueId)` as the snapshot writes it:
    /// `while (tryLock) {}` (a free lock is taken, a held one is not), then the queue's
    /// cached records are dropped (`removeRecords`), and, in `finally`, `unlock`: the lock
    /// ends up free whoever held it, the popAsync calling it included. The proposed fix
    /// `clear-cache-without-lock` (read only here, the mirror of #10250) drops the lock from
    /// it.
    pub(crate) fn kv_clear_cache(
        &mut self,
        now: Millis,
        op: OpId,
        group: &str,
        topic: &str,
        queue_id: u32,
    ) {
        if self.behaviours.has_fix(Fix::ClearCacheWithoutLock) {
            self.kv.cache.remove_queue(group, topic, queue_id);
            return;
        }
        let lock = kv_lock_key(group, topic);
        let _ = self.kv.locks.try_lock_at(&lock, op, now);
        self.kv.cache.remove_queue(group, topic, queue_id);
        if let Some(holder) = self.kv.locks.unlock(&lock, op) {
            self.events.push(BrokerEvent::LockReleasedByOther {
                at: now,
                lock: lock.into(),
                holder: holder.0,
                by: op.0,
                site: "PopConsumerService.clearCache".into(),
            });
        }
    }

    /// `PopConsumerService.getPopOffset`: FIFO reads `queryOffset` (since #9696; before it
    /// `queryPullOffset`, behaviour `kv-fifo-reads-pull-offset`, read only here), non-FIFO
    /// `queryPullOffset`; init if negative (since #9247; before it, `kv-no-init-offset`, the
    /// store is read at −1, read only here); then a pending reset is consumed and wins (before
    /// #9247, `kv-read-ignores-reset`, read only here: 5.3.2's `getMessageAsync` consumed and
    /// committed the reset but read at the offset it had queried before).
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
            } else if self.offsets.has_offset_reset(topic, group, queue_id) {
                ReadFrom::PendingReset
            } else {
                ReadFrom::CommitOffset
            };
            (self.offsets.query_pull_offset(group, topic, queue_id), from)
        };
        if offset < 0 && !self.behaviours.is_on(Behaviour::KvNoInitOffset) {
            offset = self.get_init_offset(now, topic, group, queue_id, init_mode, true);
            from = ReadFrom::InitOffset;
        }
        let Some(reset) = self
            .offsets
            .query_then_erase_reset_offset(topic, group, queue_id)
        else {
            return (offset, from);
        };
        self.kv_clear_cache(now, op, group, topic, queue_id);
        self.order_info.clear_block(now, topic, group, queue_id);
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
            group: group.into(),
            topic: topic.into(),
            queue_id,
            offset: reset,
        });
        if self.behaviours.is_on(Behaviour::KvReadIgnoresReset) {
            return (offset, from);
        }
        (reset, ReadFrom::PendingReset)
    }

    /// `PopConsumerService.ackAsync`: delete the record the receipt names, from the cache
    /// (by offset) if it is there, else from the store (by its full key). The FIFO branch of
    /// `appendAckNew`, `ackOrderlyNew`, is in `ack_message_processor`.
    pub(crate) fn ack_kv_delete(&mut self, t: &AckTarget, offset: u64) {
        let record = receipt_record(t, offset);
        if self.kv_cache_delete(&record) {
            return;
        }
        self.kv.delete(&record.key());
    }

    /// `PopConsumerCache.deleteRecords` of one record, when the cache is on: true if the
    /// cache had it (the caller then skips the store delete).
    fn kv_cache_delete(&mut self, record: &PopConsumerRecord) -> bool {
        let same_record = self.behaviours.has_fix(Fix::CacheDeleteMatchesRecord);
        self.kv_cache_on() && self.kv.cache.delete(record, same_record)
    }

    /// `changeInvisibilityDuration` (458-482): write a record with the new popTime /
    /// invisible time to the store, then delete the old one (from the cache first, else
    /// from the store by its key). The store key holds the visibility time, not the popTime:
    /// a new deadline in the old one's millisecond gives both records one key, and develop's
    /// store delete then removes the record just written. The proposed fix
    /// `change-skips-delete-of-same-key` (read only here) skips that store delete.
    pub(crate) fn change_invisibility_duration_kv(
        &mut self,
        now: Millis,
        t: &AckTarget,
        offset: u64,
        invisible_time: Millis,
        _bn: &str,
    ) {
        let retry_flag = keys::topic_type(&t.topic);
        let changed = PopConsumerRecord {
            pop_time: now,
            group: t.group.clone(),
            topic: t.topic.clone(),
            queue_id: t.queue_id,
            retry_flag,
            invisible_time,
            offset,
            attempt_id: None,
            attempt_times: 0,
        };
        let changed_key = changed.key();
        self.kv.write(changed);
        let old = receipt_record(t, offset);
        if self.kv_cache_delete(&old) {
            return;
        }
        if old.key() == changed_key && self.behaviours.has_fix(Fix::ChangeSkipsDeleteOfSameKey) {
            return;
        }
        self.kv.delete(&old.key());
    }

    /// The service thread and the cache thread, whichever is due.
    pub(crate) fn pop_kv_tick(&mut self, now: Millis) {
        if self.kv.cache_deadline().is_some_and(|t| t <= now) {
            self.kv_cache_cleanup(now);
        }
        if self.kv.revive_deadline().is_some_and(|t| t <= now) {
            self.pop_kv_revive_tick(now);
        }
    }

    /// `PopConsumerService.revive`: every record whose visibility lies in
    /// `[currentTime − 3 s, now − 50 ms]` goes to the retry topic with reconsumeTimes + 1 and
    /// is deleted; a failed put writes it back with popTime = now and its invisible time
    /// stretched by the back-off, until `popReviveMaxAttemptTimes`, then drops it.
    /// `currentTime` becomes the last record's visibility, or the upper bound.
    fn pop_kv_revive_tick(&mut self, now: Millis) {
        let due = self.kv.revive_deadline().map_or(now, |d| d.min(now));
        let lower = self.kv.scan_lower_bound(due);
        let upper = now.saturating_sub(KV_REVIVE_LAG);
        let scanned: Vec<RecordKey> = self
            .kv
            .records
            .range((lower, String::new(), String::new(), 0, 0)..)
            .take_while(|(k, _)| k.0 <= upper)
            .map(|(k, _)| k.clone())
            .collect();
        let mut failures = Vec::new();
        for key in &scanned {
            let record = self.kv.records.remove(key).expect("scanned record");
            if self.kv_revive_record(now, &record) {
                continue;
            }
            if record.attempt_times < POP_REVIVE_MAX_ATTEMPT_TIMES {
                let i = (record.attempt_times as usize).min(REWRITE_INTERVALS_S.len() - 1);
                failures.push(PopConsumerRecord {
                    pop_time: now,
                    invisible_time: record.invisible_time + REWRITE_INTERVALS_S[i] * SECOND,
                    attempt_times: record.attempt_times + 1,
                    ..record
                });
            } else {
                self.events.push(BrokerEvent::CkDropped {
                    at: now,
                    ck: record_ck(&record, &self.config.broker_name).ck_ref().into(),
                    queue_offset: record.offset,
                    reason: "PopConsumerService.revive: drop record, message may be lost"
                        .to_owned()
                        .into(),
                });
            }
        }
        for r in failures {
            self.kv.write(r);
        }
        self.kv.current_time = Some(scanned.last().map_or(upper, |k| k.0));
        self.kv.last_tick = Some(now);
    }

    /// `PopConsumerCache.cleanupRecords`, one pass.
    fn kv_cache_cleanup(&mut self, now: Millis) {
        self.kv.cache.last_cleanup = Some(now);
        let keys: Vec<(String, String, u32)> = self.kv.cache.table.keys().cloned().collect();
        let mut remain = 0u64;
        for key in keys {
            let (group, topic, queue_id) = key.clone();
            let normal = keys::parse_normal_topic(&topic, &group);
            let offline =
                self.kv
                    .locks
                    .is_lock_timeout(&kv_lock_key(&group, &normal), now, LOCK_TIMEOUT);
            let records = self.kv.cache.table.get_mut(&key).expect("listed key");
            if offline {
                let all = std::mem::take(records);
                for r in all.into_values() {
                    self.kv.write(r);
                }
                self.kv.cache.table.remove(&key);
                continue;
            }
            let stay = self.config.pop_ck_stay_buffer_time;
            let staged: Vec<u64> = records
                .values()
                .filter(|r| r.visibility_timeout() <= now || r.pop_time + stay <= now)
                .map(|r| r.offset)
                .collect();
            let staged: Vec<PopConsumerRecord> = staged
                .into_iter()
                .filter_map(|o| records.remove(&o))
                .collect();
            let min = records.keys().next().copied();
            let left = records.len() as u64;
            if left == 0 {
                self.kv.cache.table.remove(&key);
            }
            for r in staged {
                if r.visibility_timeout() <= now {
                    // `consumer.accept(record)`: the revive's result is never looked at, so
                    // a failed revive is gone (#10667). The proposed fix
                    // `cache-revive-failure-keeps-record` (read only here) writes the record
                    // to the store instead, for the service's revive and its back-off.
                    let revived = self.kv_revive_record(now, &r);
                    if !revived && self.behaviours.has_fix(Fix::CacheReviveFailureKeepsRecord) {
                        self.kv.write(r);
                    }
                } else {
                    self.kv.write(r);
                }
            }
            if let Some(min) = min {
                self.kv_cache_commit(now, &group, &topic, queue_id, min as i64);
            }
            remain += left;
        }
        self.kv.cache.estimate = remain;
    }

    /// `PopConsumerCache.commitOffset`: under `tryLock(group, topic)` (skipped while held),
    /// unconditionally (`queryOffset` is only logged), even over a pending reset. The proposed
    /// fix `cache-commit-skips-pending-reset` (read only here) skips the queue while
    /// `hasOffsetReset`: the pop that consumes the reset commits it.
    fn kv_cache_commit(
        &mut self,
        now: Millis,
        group: &str,
        topic: &str,
        queue_id: u32,
        offset: i64,
    ) {
        let lock = kv_lock_key(group, topic);
        if !self.kv.locks.try_lock_at(&lock, OpId::SERVICE, now) {
            return;
        }
        if self.behaviours.has_fix(Fix::CacheCommitSkipsPendingReset)
            && self.offsets.has_offset_reset(topic, group, queue_id)
        {
            let _ = self.kv.locks.unlock(&lock, OpId::SERVICE);
            return;
        }
        let current = self
            .offsets
            .offset_table()
            .get(&keys::offset_key(topic, group))
            .and_then(|m| m.get(&queue_id))
            .copied();
        if current != Some(offset) {
            self.offsets.commit_offset(
                &mut self.events,
                now,
                "PopConsumerCache",
                group,
                topic,
                queue_id,
                offset,
            );
        }
        let _ = self.kv.locks.unlock(&lock, OpId::SERVICE);
    }

    /// `revive(record)`: read the message, put it to the retry topic. True when done (a
    /// message no longer in the store needs no retry on a local store).
    fn kv_revive_record(&mut self, now: Millis, record: &PopConsumerRecord) -> bool {
        let Some(msg) = self
            .store
            .message(&record.topic, record.queue_id, record.offset)
            .cloned()
        else {
            return true;
        };
        let ck = record_ck(record, &self.config.broker_name);
        self.revive_retry(now, &ck, record.offset, msg)
    }
}

/// The record a receipt names, as `ackAsync` and `changeInvisibilityDuration` build it
/// from the receipt's popTime, invisible time and offset.
fn receipt_record(t: &AckTarget, offset: u64) -> PopConsumerRecord {
    PopConsumerRecord {
        pop_time: t.pop_time,
        group: t.group.clone(),
        topic: t.topic.clone(),
        queue_id: t.queue_id,
        retry_flag: 0,
        invisible_time: t.invisible_time,
        offset,
        attempt_id: None,
        attempt_times: 0,
    }
}

/// The one-message CK a record stands for, as `reviveRetry` and the events name it.
fn record_ck(record: &PopConsumerRecord, broker_name: &str) -> PopCheckPoint {
    PopCheckPoint {
        start_offset: record.offset,
        pop_time: record.pop_time,
        invisible_time: record.invisible_time,
        bit_map: 0,
        num: 1,
        queue_id: record.queue_id,
        topic: Name::new(&record.topic),
        cid: Name::new(&record.group),
        revive_offset: 0,
        queue_offset_diff: vec![0],
        broker_name: Name::new(broker_name),
        re_put_times: 0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(pop_time: Millis, invisible_time: Millis) -> PopConsumerRecord {
        PopConsumerRecord {
            pop_time,
            group: "g".into(),
            topic: "t".into(),
            queue_id: 4,
            retry_flag: 0,
            invisible_time,
            offset: 0,
            attempt_id: None,
            attempt_times: 0,
        }
    }

    /// Develop-random seed 8995: the cache holds the re-pop's record of offset 0 (popTime
    /// 7 694) when a changeInvisibleTime of the older receipt (popTime 3 519, its record
    /// already in RocksDB) asks to delete it. Develop deletes by offset; the proposed fix
    /// `cache-delete-matches-record` only deletes the record asked for.
    #[test]
    fn a_cache_delete_by_offset_removes_another_receipts_record_unless_fixed() {
        let newer = record(7_694, 10_552);
        let older = record(3_519, 10_552);
        let mut cache = PopConsumerCache::default();
        cache.write(vec![newer.clone()]);
        assert!(
            cache.delete(&older, false),
            "develop: any record at the offset"
        );
        assert_eq!(cache.in_flight("g", "t", 4), 0);

        let mut cache = PopConsumerCache::default();
        cache.write(vec![newer.clone()]);
        assert!(
            !cache.delete(&older, true),
            "fixed: not the record asked for"
        );
        assert_eq!(cache.in_flight("g", "t", 4), 1);
        assert!(cache.delete(&newer, true));
    }
}
