//! `PopMessageProcessor` (`broker/.../processor/PopMessageProcessor.java`), the classic
//! (file-based) POP path: request checks, queue selection with `randomQ`, per-queue
//! `popMsgFromQueue` (pop offset with init, reset and buffer position, orderly block check,
//! read with offset correction, checkpoint or OrderInfo), and the receipt handles.

use crate::broker::Broker;
use crate::checkpoint::{PopCheckPoint, MAX_CK_NUM};
use crate::config::Millis;
use crate::consumer_order_info_manager::OrderCountInfo;
use crate::events::{BrokerEvent, ReadFrom};
use crate::inflight::{Op, OpId};
use crate::keys::{self, lock_key};
use crate::name::Name;
use crate::pop_long_polling_service::PopEnd;
use crate::protocol::{
    ExtraInfo, InitMode, MessageExt, PopMessageRequest, PopResult, PopStatus, Response,
    ResponseBody, ResponseCode, POP_ORDER_REVIVE_QUEUE,
};
use crate::rng::Rng;
use crate::store::{GetMessageResult, GetMessageStatus, StoredMessage};
use crate::{Behaviour, Fix};
use std::collections::VecDeque;

/// Upstream rejects `maxMsgNums` above this.
pub const MAX_MSG_NUMS: u32 = 32;

/// One pop request in progress: what every queue's read appends to.
#[derive(Debug)]
pub(crate) struct PopContext {
    pub req: PopMessageRequest,
    pub pop_time: Millis,
    pub revive_qid: u32,
    pub random_q: u32,
    pub msgs: Vec<MessageExt>,
    pub rest_num: u64,
}

impl PopContext {
    pub(crate) fn remaining(&self) -> u32 {
        self.req.max_msg_nums.saturating_sub(self.msgs.len() as u32)
    }

    fn full(&self) -> bool {
        self.msgs.len() as u32 >= self.req.max_msg_nums
    }
}

/// Which of `processRequest`'s queue loops a classic pop is in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Phase {
    /// `needRetry`: the retry topic's queues first.
    RetryFirst,
    /// The normal topic: every queue from `randomQ`, or the requested one.
    Normal,
    /// Not `needRetry` and the batch not full: the retry topic afterwards.
    RetryAfter,
    Finished,
}

/// A queue whose lock this pop holds while its message read is in flight
/// (`getMessageAsync`; the lock is released when the read's future completes).
#[derive(Debug)]
pub(crate) struct HeldQueue {
    topic: String,
    is_retry: bool,
    queue_id: u32,
    lock_key: String,
    offset: u64,
    /// Why this offset, when nothing was there to record at the time (the read may still
    /// find messages appended since; then it is recorded at the read).
    unrecorded: Option<ReadFrom>,
}

/// A classic pop in flight (`PopMessageProcessor.processRequest`): upstream chains one
/// `popMsgFromQueue` future per queue, each taking the queue lock, reading asynchronously
/// and releasing the lock when the read completes. A step ends at each read.
#[derive(Debug)]
pub(crate) struct ClassicPop {
    ctx: PopContext,
    retry_topic: String,
    need_retry: bool,
    phase: Phase,
    plan: VecDeque<(String, bool, u32)>,
    held: Option<HeldQueue>,
}

impl Broker {
    /// `PopMessageProcessor.processRequest`: the checks of §2.1, then the KV or classic
    /// path, as an operation of several steps ([`crate::inflight`]).
    pub(crate) fn start_pop(
        &mut self,
        now: Millis,
        mut req: PopMessageRequest,
    ) -> Result<Op, Response> {
        // `BORN_TIME` is added when absent; a woken re-run keeps the first one.
        req.born_time.get_or_insert(now);
        if self.pop_timeout_too_much(now, &req) {
            return Err(Response::error(
                ResponseCode::PollingTimeout,
                format!(
                    "the broker[{}] pop message is timeout too much",
                    self.config.broker_name
                ),
            ));
        }
        if let Some(rejected) = self.check_pop_request(&req) {
            return Err(rejected);
        }
        if self.config.pop_consumer_kv_service_enable {
            return Ok(Op::KvPop(self.start_pop_kv(now, req)));
        }
        Ok(Op::ClassicPop(self.start_pop_classic(now, req)))
    }

    /// The request checks, in upstream's order (the ones the model has inputs for).
    fn check_pop_request(&self, req: &PopMessageRequest) -> Option<Response> {
        if req.max_msg_nums > MAX_MSG_NUMS {
            return Some(Response::error(
                ResponseCode::InvalidParameter,
                "the broker restrict max msg nums 32",
            ));
        }
        if !self.config.timer_wheel_enable {
            return Some(Response::error(
                ResponseCode::SystemError,
                "pop message is forbidden because timerWheelEnable is false",
            ));
        }
        let Some(topic_config) = self.store.topic_config(&req.topic) else {
            return Some(Response::error(
                ResponseCode::TopicNotExist,
                format!("topic[{}] not exist", req.topic),
            ));
        };
        if req.queue_id >= topic_config.read_queue_nums as i32 {
            return Some(Response::error(
                ResponseCode::InvalidParameter,
                format!(
                    "queueId[{}] is illegal, topic:[{}] readQueueNums:[{}]",
                    req.queue_id, req.topic, topic_config.read_queue_nums
                ),
            ));
        }
        if !self.groups.contains(&req.consumer_group) {
            return Some(Response::error(
                ResponseCode::SubscriptionGroupNotExist,
                format!("subscription group [{}] does not exist", req.consumer_group),
            ));
        }
        None
    }

    /// The classic path's decisions made before any queue: revive queue, `randomQ`,
    /// retry-first or retry-after, and which retry topic.
    fn start_pop_classic(&mut self, now: Millis, req: PopMessageRequest) -> ClassicPop {
        let random_q = self.rng.gen_range(0..100);
        let revive_qid = if req.order {
            POP_ORDER_REVIVE_QUEUE
        } else {
            let qid = (self.ck_message_number % u64::from(self.config.revive_queue_num)) as u32;
            self.ck_message_number += 1;
            qid
        };
        let need_retry = random_q < self.config.pop_from_retry_probability;
        let need_retry_v1 = self.config.enable_retry_topic_v2
            && self.config.retrieve_message_from_pop_retry_topic_v1
            && random_q % 2 == 0;
        let retry_topic = if need_retry_v1 {
            keys::pop_retry_topic_v1(&req.topic, &req.consumer_group)
        } else {
            keys::pop_retry_topic(
                &req.topic,
                &req.consumer_group,
                self.config.enable_retry_topic_v2,
            )
        };
        ClassicPop {
            ctx: PopContext {
                req,
                pop_time: now,
                revive_qid,
                random_q,
                msgs: Vec::new(),
                rest_num: 0,
            },
            retry_topic,
            need_retry,
            phase: Phase::RetryFirst,
            plan: VecDeque::new(),
            held: None,
        }
    }

    /// One step of a classic pop: finish the queue whose read was in flight (the read, the
    /// checkpoint, the lock released), then take the next queue's lock and start its read.
    /// `Some` when every queue has been visited: the answer, or parked (long polling).
    pub(crate) fn step_pop_classic(
        &mut self,
        now: Millis,
        op: OpId,
        pop: &mut ClassicPop,
    ) -> Option<PopEnd> {
        loop {
            if let Some(held) = pop.held.take() {
                self.finish_queue(now, op, &mut pop.ctx, held);
            }
            let Some((topic, is_retry, queue_id)) = self.next_pop_queue(pop) else {
                return Some(self.finish_pop(now, op, &mut pop.ctx));
            };
            if let Some(held) = self.begin_queue(now, op, &mut pop.ctx, &topic, is_retry, queue_id)
            {
                pop.held = Some(held);
                return None;
            }
        }
    }

    /// The next queue in upstream's order; a phase's queue list is built when it begins, so
    /// the retry-after loop sees whether the batch is already full.
    fn next_pop_queue(&self, pop: &mut ClassicPop) -> Option<(String, bool, u32)> {
        while pop.plan.is_empty() {
            let order = pop.ctx.req.order;
            pop.phase = match pop.phase {
                Phase::RetryFirst => {
                    if pop.need_retry && !order {
                        pop.plan = self.topic_plan(&pop.retry_topic, true, pop.ctx.random_q);
                    }
                    Phase::Normal
                }
                Phase::Normal => {
                    let req = &pop.ctx.req;
                    if req.queue_id < 0 {
                        pop.plan = self.topic_plan(&req.topic, false, pop.ctx.random_q);
                    } else {
                        pop.plan
                            .push_back((req.topic.clone(), false, req.queue_id as u32));
                    }
                    Phase::RetryAfter
                }
                Phase::RetryAfter => {
                    if !pop.need_retry && !pop.ctx.full() && !order {
                        pop.plan = self.topic_plan(&pop.retry_topic, true, pop.ctx.random_q);
                    }
                    Phase::Finished
                }
                Phase::Finished => return None,
            };
        }
        pop.plan.pop_front()
    }

    /// `popMsgFromTopic`: every read queue of `topic`, starting at `randomQ`.
    fn topic_plan(
        &self,
        topic: &str,
        is_retry: bool,
        random_q: u32,
    ) -> VecDeque<(String, bool, u32)> {
        let Some(config) = self.store.topic_config(topic) else {
            return VecDeque::new();
        };
        (0..config.read_queue_nums)
            .map(|i| {
                (
                    topic.to_owned(),
                    is_retry,
                    (random_q + i) % config.read_queue_nums,
                )
            })
            .collect()
    }

    /// `popMsgFromQueue` up to the read (§2.3): the offset for `restNum`, then
    /// `QueueLockManager.tryLock` (a locked queue is skipped, its backlog counted), then the
    /// pop offset with init and reset, the orderly block check. `Some` with the lock held when
    /// a read is due.
    fn begin_queue(
        &mut self,
        now: Millis,
        op: OpId,
        ctx: &mut PopContext,
        topic: &str,
        is_retry: bool,
        queue_id: u32,
    ) -> Option<HeldQueue> {
        let group = &ctx.req.consumer_group;
        let lock_key = lock_key(topic, group, queue_id);
        let init_mode = ctx.req.init_mode;
        let (before, _) = self.get_pop_offset(
            now, topic, group, queue_id, init_mode, false, &lock_key, false,
        );
        let max = self.store.max_offset(topic, queue_id);
        if !self.queue_locks.try_lock(&lock_key, op) {
            if !ctx.req.order {
                ctx.rest_num += max.saturating_sub(u64::try_from(before).unwrap_or(0));
            }
            return None;
        }
        // `isPopShouldStop`: too many messages in flight on this queue. Tested before the
        // orderly block check and its clear of the count; the proposed fix
        // `orderly-pop-skips-inflight-threshold` (read only here) skips it for an orderly pop.
        let orderly_exempt = ctx.req.order
            && self
                .behaviours
                .has_fix(Fix::OrderlyPopSkipsInflightThreshold);
        if self.config.enable_pop_message_threshold
            && !orderly_exempt
            && self.inflight.get(topic, group, queue_id)
                > self.config.pop_inflight_message_threshold
        {
            ctx.rest_num += max.saturating_sub(u64::try_from(before).unwrap_or(0));
            self.unlock_queue(&lock_key, op);
            return None;
        }
        let (offset, from) = self.get_pop_offset(
            now, topic, group, queue_id, init_mode, true, &lock_key, true,
        );
        let offset = u64::try_from(offset).unwrap_or(0);
        let blocked = ctx.req.order
            && self.order_info.check_block(
                ctx.req.attempt_id.as_deref(),
                topic,
                group,
                queue_id,
                now,
            );
        if !blocked && ctx.req.order {
            self.inflight.clear(topic, group, queue_id);
        }
        if blocked || ctx.full() {
            if !blocked {
                ctx.rest_num += max.saturating_sub(offset);
            }
            self.unlock_queue(&lock_key, op);
            return None;
        }
        let recorded = self.pop_read(now, ctx, topic, queue_id, offset as i64, from);
        Some(HeldQueue {
            topic: topic.to_owned(),
            is_retry,
            queue_id,
            lock_key,
            offset,
            unrecorded: (!recorded).then_some(from),
        })
    }

    /// `QueueLockManager.unLock`. Every upstream caller releases only the lock it took.
    pub(crate) fn unlock_queue(&mut self, lock_key: &str, op: OpId) {
        let other = self.queue_locks.unlock(lock_key, op);
        assert!(
            other.is_none(),
            "queue lock {lock_key} released by {op:?}, held by {other:?}"
        );
    }

    /// `popMsgFromQueue` after the read completed: offset correction, checkpoint or
    /// OrderInfo, the messages; then the queue lock is released.
    fn finish_queue(&mut self, now: Millis, op: OpId, ctx: &mut PopContext, held: HeldQueue) {
        let HeldQueue {
            topic,
            is_retry,
            queue_id,
            lock_key,
            offset,
            unrecorded,
        } = held;
        self.read_queue(now, ctx, &topic, is_retry, queue_id, offset, unrecorded);
        self.unlock_queue(&lock_key, op);
    }

    /// The read and what follows it in `popMsgFromQueue`.
    #[allow(clippy::too_many_arguments)]
    fn read_queue(
        &mut self,
        now: Millis,
        ctx: &mut PopContext,
        topic: &str,
        is_retry: bool,
        queue_id: u32,
        offset: u64,
        unrecorded: Option<ReadFrom>,
    ) {
        let group = ctx.req.consumer_group.clone();
        let final_offset = offset;
        let result = self.read_with_offset_correction(
            now,
            &group,
            topic,
            queue_id,
            offset as i64,
            ctx.remaining(),
        );
        if let Some(from) = unrecorded {
            self.pop_read_late(now, ctx, topic, queue_id, &result.msgs, from);
        }
        let mut order_count = OrderCountInfo::default();
        if !result.msgs.is_empty() {
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
                self.offsets.commit_offset(
                    &mut self.events,
                    now,
                    "PopMessageProcessor.orderly",
                    &group,
                    topic,
                    queue_id,
                    final_offset as i64,
                );
            } else if !self.append_check_point(
                now,
                ctx,
                topic,
                queue_id,
                final_offset,
                &offsets,
                result.next_begin_offset,
            ) {
                ctx.rest_num += offsets.len() as u64;
                return;
            }
            self.inflight
                .increment(topic, &group, queue_id, offsets.len() as u64);
        }
        ctx.rest_num += result.max_offset.saturating_sub(result.next_begin_offset);
        for (queue_offset, msg) in result.msgs {
            let reconsume_times = if ctx.req.order {
                order_count.reconsume_times(queue_offset, ctx.req.count_by_queue)
            } else {
                msg.reconsume_times
            };
            let view = self.message_view(
                ctx,
                topic,
                is_retry,
                queue_id,
                final_offset,
                queue_offset,
                msg,
                reconsume_times,
            );
            ctx.msgs.push(view);
        }
    }

    /// Records the moment a pop takes its offset in a queue ([`BrokerEvent::PopRead`]): the
    /// offset, why there, and what a read from it finds now. Returns false, recording
    /// nothing, when a read would find nothing now. The read itself completes later, on the
    /// store's thread, and may find more (messages appended meanwhile).
    pub(crate) fn pop_read(
        &mut self,
        now: Millis,
        ctx: &PopContext,
        topic: &str,
        queue_id: u32,
        offset: i64,
        from: ReadFrom,
    ) -> bool {
        let Some((first, count, corrected)) =
            self.store
                .peek_read(topic, queue_id, offset, ctx.remaining())
        else {
            return false;
        };
        self.events.push(BrokerEvent::PopRead {
            at: now,
            group: ctx.req.consumer_group.as_str().into(),
            topic: topic.into(),
            queue_id,
            pop_time: ctx.pop_time,
            offset: first,
            count,
            orderly: ctx.req.order,
            from: if corrected { ReadFrom::Corrected } else { from },
            attempt_id: ctx.req.attempt_id.as_deref().map(crate::Name::new),
        });
        true
    }

    /// The record of a pop whose offset found nothing when taken but whose read found
    /// messages appended since: made at the read.
    pub(crate) fn pop_read_late(
        &mut self,
        now: Millis,
        ctx: &PopContext,
        topic: &str,
        queue_id: u32,
        msgs: &[(u64, StoredMessage)],
        from: ReadFrom,
    ) {
        let Some(&(first, _)) = msgs.first() else {
            return;
        };
        self.events.push(BrokerEvent::PopRead {
            at: now,
            group: ctx.req.consumer_group.as_str().into(),
            topic: topic.into(),
            queue_id,
            pop_time: ctx.pop_time,
            offset: first,
            count: msgs.len() as u32,
            orderly: ctx.req.order,
            from,
            attempt_id: ctx.req.attempt_id.as_deref().map(crate::Name::new),
        });
    }

    /// `getMessageAsync` with the "offset correction": on `OFFSET_TOO_SMALL` or
    /// `OFFSET_OVERFLOW_BADLY` commit `nextBeginOffset` and read again from there. A negative
    /// offset (the KV path before #9247 reads at −1) is too small for any non-empty queue.
    pub(crate) fn read_with_offset_correction(
        &mut self,
        now: Millis,
        group: &str,
        topic: &str,
        queue_id: u32,
        offset: i64,
        max_nums: u32,
    ) -> GetMessageResult {
        let result = self.store.get_message_at(topic, queue_id, offset, max_nums);
        if matches!(
            result.status,
            GetMessageStatus::OffsetTooSmall | GetMessageStatus::OffsetOverflowBadly
        ) {
            let next = result.next_begin_offset;
            self.offsets.commit_offset(
                &mut self.events,
                now,
                "PopMessageProcessor.offsetCorrection",
                group,
                topic,
                queue_id,
                next as i64,
            );
            return self.store.get_message(topic, queue_id, next, max_nums);
        }
        result
    }

    /// `getPopOffset`: commit offset (a pending reset included), else the init offset; then
    /// a pending reset wins (`resetPopOffset`); else the later of it and the newest buffered
    /// CK's `nextBeginOffset`, so a read never repeats before its CK is committed. Says which
    /// of these it was.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn get_pop_offset(
        &mut self,
        now: Millis,
        topic: &str,
        group: &str,
        queue_id: u32,
        init_mode: InitMode,
        init: bool,
        lock_key: &str,
        check_reset: bool,
    ) -> (i64, ReadFrom) {
        let mut offset = self.offsets.query_offset(group, topic, queue_id);
        let mut from = ReadFrom::CommitOffset;
        if offset < 0 {
            offset = self.get_init_offset(now, topic, group, queue_id, init_mode, init);
            from = ReadFrom::InitOffset;
        }
        if check_reset {
            if let Some(reset) = self.reset_pop_offset(now, topic, group, queue_id) {
                return (reset, ReadFrom::PendingReset);
            }
        }
        let buffer_offset = self.buffer.get_latest_offset(lock_key);
        if buffer_offset > offset {
            (buffer_offset, ReadFrom::BufferedCk)
        } else {
            (offset, from)
        }
    }

    /// `getInitOffset`: min for `MIN` or a retry topic; 0 if the first message is still in
    /// memory (`initPopOffsetByCheckMsgInMem`, `checkInMemByConsumeOffset(topic, q, 0, 1)`);
    /// else "pop the last one" (max − 1, floored at 0). Committed when `init`, whichever the
    /// mode (in memory: consumerOffset.json has it from the next scheduled persist; under the
    /// proposed fix `init-offset-persists-at-once` a group's first offset of a queue is
    /// persisted at once, `ConsumerOffsetManager::put_offset`). Before #8404
    /// (`init-min-no-commit`, read only here) `MIN` returned the min at once, uncommitted, and
    /// a retry topic had no rule of its own.
    pub(crate) fn get_init_offset(
        &mut self,
        now: Millis,
        topic: &str,
        group: &str,
        queue_id: u32,
        init_mode: InitMode,
        init: bool,
    ) -> i64 {
        let min = self.store.min_offset(topic, queue_id);
        let before_8404 = self.behaviours.is_on(Behaviour::InitMinNoCommit);
        if before_8404 && init_mode == InitMode::Min {
            return min as i64;
        }
        let offset = if init_mode == InitMode::Min || (!before_8404 && keys::is_retry_topic(topic))
        {
            min
        } else if self.config.init_pop_offset_by_check_msg_in_mem
            && min == 0
            && self.store.check_in_mem(topic, queue_id, 0, now)
        {
            0
        } else {
            self.store.max_offset(topic, queue_id).saturating_sub(1)
        };
        if init {
            self.offsets.commit_offset(
                &mut self.events,
                now,
                "getPopOffset",
                group,
                topic,
                queue_id,
                offset as i64,
            );
        }
        offset as i64
    }

    /// `resetPopOffset`: consume a pending reset: `clearBlock`, `clearOffsetQueue`, commit it.
    fn reset_pop_offset(
        &mut self,
        now: Millis,
        topic: &str,
        group: &str,
        queue_id: u32,
    ) -> Option<i64> {
        let reset = self
            .offsets
            .query_then_erase_reset_offset(topic, group, queue_id)?;
        self.order_info.clear_block(now, topic, group, queue_id);
        self.buffer
            .clear_offset_queue(&lock_key(topic, group, queue_id));
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
        Some(reset)
    }

    /// `appendCheckPoint`: build the CK (one diff per message), try `addCk`, else
    /// `addCkJustOffset` (written to the revive log now).
    #[allow(clippy::too_many_arguments)]
    fn append_check_point(
        &mut self,
        now: Millis,
        ctx: &PopContext,
        topic: &str,
        queue_id: u32,
        offset: u64,
        msg_offsets: &[u64],
        next_begin_offset: u64,
    ) -> bool {
        assert!(msg_offsets.len() <= MAX_CK_NUM);
        let ck = PopCheckPoint {
            start_offset: offset,
            pop_time: ctx.pop_time,
            invisible_time: ctx.req.invisible_time,
            bit_map: 0,
            num: msg_offsets.len() as u8,
            queue_id,
            topic: Name::new(topic),
            cid: Name::new(&ctx.req.consumer_group),
            revive_offset: 0,
            queue_offset_diff: msg_offsets.iter().map(|&o| (o - offset) as u32).collect(),
            broker_name: Name::new(&self.config.broker_name),
            re_put_times: 0,
        };
        let next = next_begin_offset as i64;
        if self.add_ck_buffered(now, &ck, ctx.revive_qid, next) {
            return true;
        }
        self.add_ck_just_offset(now, &ck, ctx.revive_qid, next)
    }

    /// The message as the client sees it, with its receipt handle (`ExtraInfoUtil`). A retry
    /// copy is shown under its original topic (`popResponseReturnActualRetryTopic = false`).
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn message_view(
        &self,
        ctx: &PopContext,
        topic: &str,
        is_retry: bool,
        queue_id: u32,
        ck_offset: u64,
        queue_offset: u64,
        msg: StoredMessage,
        reconsume_times: u32,
    ) -> MessageExt {
        let extra = ExtraInfo {
            ck_queue_offset: ck_offset,
            pop_time: ctx.pop_time,
            invisible_time: ctx.req.invisible_time,
            revive_qid: ctx.revive_qid,
            topic_type: keys::topic_type(topic),
            broker_name: self.config.broker_name.clone(),
            queue_id,
            queue_offset,
            commit_log_offset: None,
        };
        MessageExt {
            topic: ctx.req.topic.clone(),
            queue_id,
            queue_offset,
            retry_topic: is_retry.then(|| topic.to_owned()),
            msg_id: msg.msg_id.into(),
            reconsume_times,
            born_timestamp: msg.born_timestamp,
            store_timestamp: msg.store_timestamp,
            commit_log_offset: msg.commit_log_offset,
            tags: msg.tags,
            pop_ck: Some(extra.build()),
        }
    }
}

/// The response: `SUCCESS` with `FOUND`, or what a request that is not (or no longer)
/// parked ends with: `POLLING_TIMEOUT`, which the client reads as `POLLING_NOT_FOUND`.
pub(crate) fn pop_response(ctx: &mut PopContext) -> Response {
    let msgs = std::mem::take(&mut ctx.msgs);
    let found = !msgs.is_empty();
    let result = PopResult {
        status: if found {
            PopStatus::Found
        } else {
            PopStatus::PollingNotFound
        },
        pop_time: ctx.pop_time,
        invisible_time: ctx.req.invisible_time,
        revive_qid: ctx.revive_qid,
        rest_num: ctx.rest_num,
        msgs,
    };
    if found {
        Response::success(ResponseBody::Pop(result))
    } else {
        Response {
            code: ResponseCode::PollingTimeout,
            remark: "NO_MESSAGE_IN_QUEUE".to_owned(),
            body: ResponseBody::Pop(result),
        }
    }
}
