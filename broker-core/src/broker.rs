//! The broker: owns every upstream component and routes requests to their processors
//! (`BrokerController`). Timers are pull-based: [`Broker::next_deadline`] says when
//! [`Broker::on_timer`] next has work; each service computes its own earliest useful time.

use crate::behaviours::{Behaviours, Fix};
use crate::checkpoint::{AckMsg, PopCheckPoint, ReviveRecord};
use crate::config::{BrokerConfig, Millis};
use crate::consumer_offset_manager::ConsumerOffsetManager;
use crate::consumer_order_info_manager::{ConsumerOrderInfoManager, ORDER_INFO_PERSIST_INTERVAL};
use crate::events::{BrokerEvent, BrokerSnapshot, QueueRange, ReviveQueueState};
use crate::inflight::{Op, OpId, Step};
use crate::keys::{revive_topic, ACK_TIME_INTERVAL, REVIVE_GROUP};
use crate::locks::TryLocks;
use crate::pop_buffer_merge_service::PopBufferMergeService;
use crate::pop_consumer_kv::PopConsumerService;
use crate::pop_inflight_message_counter::PopInflightMessageCounter;
use crate::pop_long_polling_service::PopLongPollingService;
use crate::pop_revive_service::PopReviveService;
use crate::protocol::{Request, Response};
use crate::rng::Rng;
use crate::rng::{self, ChaCha8Rng};
use crate::store::{timer_slot, DequeuePolicy, MessageStore, TIMER_PRECISION_MS};
use std::collections::{BTreeMap, BTreeSet};

/// `BrokerController`'s initial delay of both persist schedules (offsets and OrderInfo).
pub const INITIAL_PERSIST_DELAY: Millis = 10_000;

/// Most steps one request takes when run alone: one per queue read (at most
/// `MAX_QUEUE_NUMS` topic queues plus retry queues) or per ack unit.
const MAX_STEPS_ALONE: usize = 4 * 1_024;

/// The broker model (one `BrokerController`).
#[derive(Debug)]
pub struct Broker {
    pub(crate) config: BrokerConfig,
    pub(crate) behaviours: Behaviours,
    pub(crate) rng: ChaCha8Rng,
    pub(crate) running: bool,
    /// Topics, queues and the revive log (on disk).
    pub(crate) store: MessageStore,
    /// `SubscriptionGroupManager` (persisted on change).
    pub(crate) groups: BTreeSet<String>,
    pub(crate) offsets: ConsumerOffsetManager,
    pub(crate) order_info: ConsumerOrderInfoManager,
    pub(crate) buffer: PopBufferMergeService,
    pub(crate) revive: PopReviveService,
    pub(crate) kv: PopConsumerService,
    /// `PopInflightMessageCounter` (classic path; in memory).
    pub(crate) inflight: PopInflightMessageCounter,
    /// `PopLongPollingService`: pops parked until a message arrives or they expire.
    pub(crate) long_polling: PopLongPollingService,
    /// `PopMessageProcessor.ckMessageNumber`: round-robins non-orderly CKs over revive queues.
    pub(crate) ck_message_number: u64,
    /// `PopMessageProcessor.QueueLockManager`.
    pub(crate) queue_locks: TryLocks,
    /// Operations in flight ([`crate::inflight`]), and the last id handed out. Boxed: an
    /// operation is a few hundred bytes, and each step takes it out of the map and puts it
    /// back, which would move it through the B-tree's nodes every time.
    pub(crate) ops: BTreeMap<OpId, Box<Op>>,
    pub(crate) next_op: u64,
    pub(crate) events: Vec<BrokerEvent>,
    /// Probability that a store put of a CK, ACK, re-put CK or retry message fails (a fault
    /// input, [`Broker::set_store_put_failure_rate`]), and the stream its draws come from.
    store_put_failure_rate: f64,
    fault_rng: ChaCha8Rng,
    /// The timer's dequeue puts fail with the same rate, drawn from a stream of their own
    /// (so the other puts' draws are as they were).
    timer_put_rng: ChaCha8Rng,
    /// When the process (re)started: the persist schedules count from here.
    started_at: Millis,
    /// The last time `ConsumerOffsetManager.persist()` ran, to keep flushes strictly increasing.
    last_persist: Option<Millis>,
    /// The last time `ConsumerOrderInfoManager.persist()` ran.
    last_order_persist: Option<Millis>,
    /// The latest `now` seen; time never goes back, and no deadline is reported before it.
    clock: Millis,
}

/// How the timer's dequeue side treats a failed put (`TimerDequeuePutMessageService.run`).
/// The proposed fix `timer-keeps-revive-records` (read only here) keeps every record (the
/// model's timer holds revive records alone); before #8980
/// (`timer-do-put-gives-up-after-four`, read only here) `doPut` tried four times 50 ms apart
/// and `timerEnableRetryUntilSuccess` did not exist; develop tries three times 500 ms apart,
/// or until the put succeeds with the setting on.
fn dequeue_policy(config: &BrokerConfig, behaviours: &Behaviours) -> DequeuePolicy {
    if behaviours.has_fix(Fix::TimerKeepsReviveRecords) {
        DequeuePolicy {
            max_attempts: None,
            ..DequeuePolicy::DEVELOP
        }
    } else if behaviours.is_on(crate::Behaviour::TimerDoPutGivesUpAfterFour) {
        DequeuePolicy {
            max_attempts: Some(4),
            retry_sleep: 50,
        }
    } else if config.timer_enable_retry_until_success {
        DequeuePolicy {
            max_attempts: None,
            ..DequeuePolicy::DEVELOP
        }
    } else {
        DequeuePolicy::DEVELOP
    }
}

impl Broker {
    /// A broker with no topics or groups. `seed` feeds the pseudo-random choices upstream
    /// makes with `ThreadLocalRandom` (queue start, retry-first probability).
    pub fn new(config: BrokerConfig, behaviours: Behaviours, seed: u64) -> Self {
        assert!(
            config.revive_queue_num > 0,
            "reviveQueueNum must be positive"
        );
        assert!(
            config.revive_interval > 0,
            "reviveInterval must be positive"
        );
        assert!(
            config.flush_consumer_offset_interval > 0,
            "flushConsumerOffsetInterval must be positive"
        );
        let mut store = MessageStore::new(
            revive_topic(&config.broker_cluster_name),
            config.revive_queue_num,
        );
        store.set_dequeue_policy(dequeue_policy(&config, &behaviours));
        let mut buffer = PopBufferMergeService::default();
        buffer.separated_keys = behaviours.has_fix(crate::Fix::MergeKeyWithSeparator);
        let mut offsets = ConsumerOffsetManager::new(config.use_server_side_reset_offset);
        offsets.first_offset_persists = behaviours.has_fix(crate::Fix::InitOffsetPersistsAtOnce);
        // Before #9247 the KV path commits the −1 it read at (`kv-no-init-offset`).
        offsets.lowest_offset = if behaviours.is_on(crate::Behaviour::KvNoInitOffset) {
            -1
        } else {
            0
        };
        let order_info =
            ConsumerOrderInfoManager::new(behaviours.has_fix(Fix::ReentrantPopCountsOnlyItsBatch));
        Self {
            offsets,
            revive: PopReviveService::new(
                &vec![-1; config.revive_queue_num as usize],
                0,
                config.revive_interval,
            ),
            store_put_failure_rate: 0.0,
            fault_rng: rng::stream(seed, "store.putFailure"),
            timer_put_rng: rng::stream(seed, "store.timerDequeuePut"),
            config,
            behaviours,
            rng: rng::stream(seed, "broker.randomQ"),
            running: true,
            store,
            groups: BTreeSet::new(),
            order_info,
            buffer,
            kv: PopConsumerService::default(),
            inflight: PopInflightMessageCounter::default(),
            long_polling: PopLongPollingService::default(),
            ck_message_number: 0,
            queue_locks: TryLocks::default(),
            ops: BTreeMap::new(),
            next_op: 0,
            events: Vec::new(),
            started_at: 0,
            last_persist: None,
            last_order_persist: None,
            clock: 0,
        }
    }

    /// The configuration the broker runs with.
    pub fn config(&self) -> &BrokerConfig {
        &self.config
    }

    /// The historical behaviours switched on.
    pub fn behaviours(&self) -> &Behaviours {
        &self.behaviours
    }

    /// Is the process up?
    pub fn is_running(&self) -> bool {
        self.running
    }

    /// Handles one request at virtual time `now` to its end, with nothing interleaved: its
    /// operation is stepped until done. Must not be called while crashed, nor while another
    /// operation holds a lock it needs (it would spin forever).
    pub fn handle(&mut self, now: Millis, req: Request) -> Response {
        let id = self.submit(req);
        for _ in 0..MAX_STEPS_ALONE {
            match self.step(now, id) {
                Step::Done(response) => return response,
                Step::Yield => {}
                Step::Spin => panic!("handle(): a lock is held by another operation in flight"),
                Step::Parked => panic!(
                    "handle(): the pop parked (pollTime > 0); drive it with submit/step and take_woken"
                ),
            }
        }
        panic!("handle(): an operation took more than {MAX_STEPS_ALONE} steps");
    }

    /// Runs every service whose time has come (buffer scan, revive, offset persist, the
    /// long-polling service's expiries).
    pub fn on_timer(&mut self, now: Millis) {
        if !self.running {
            return;
        }
        self.tick_clock(now);
        self.advance_timer(now);
        if self.buffer.next_deadline().is_some_and(|t| t <= now) {
            self.pop_buffer_scan(now);
        }
        if self.revive.next_deadline().is_some_and(|t| t <= now) {
            self.pop_revive_tick(now);
        }
        if self.kv.next_deadline().is_some_and(|t| t <= now) {
            self.pop_kv_tick(now);
        }
        if self.long_polling.next_deadline().is_some_and(|t| t <= now) {
            self.pop_long_polling_tick(now);
        }
        if self.store.next_expiry().is_some_and(|t| t <= now) {
            for (topic, queue_id, min_offset) in self.store.expire(now) {
                self.events.push(BrokerEvent::MessagesExpired {
                    at: now,
                    topic: topic.into(),
                    queue_id,
                    min_offset,
                });
            }
        }
        self.persist_if_due(now);
        self.check_invariants();
    }

    /// The scheduled flushes alone (`BrokerController`'s `ConsumerOffsetManager.persist` and
    /// `ConsumerOrderInfoManager.persist`, on the scheduler thread): they run even while the
    /// buffer scan and revive threads stall.
    pub fn persist_if_due(&mut self, now: Millis) {
        if !self.running {
            return;
        }
        self.tick_clock(now);
        if self.persist_deadline().is_some_and(|t| t <= now) {
            self.offsets.persist(&mut self.events, now);
            self.last_persist = Some(now);
            // The proposed fix `order-info-persists-with-offsets` (read only here): the
            // offsetTable's image never gets ahead of OrderInfo's (finding F16).
            if self.behaviours.has_fix(Fix::OrderInfoPersistsWithOffsets) {
                self.persist_order_info(now);
            }
        }
        if self.order_persist_deadline().is_some_and(|t| t <= now) {
            self.persist_order_info(now);
        }
        self.check_invariants();
    }

    fn persist_order_info(&mut self, now: Millis) {
        self.order_info.persist();
        self.last_order_persist = Some(now);
        self.events
            .push(BrokerEvent::OrderInfoPersisted { at: now });
    }

    /// When the model next needs [`Broker::on_timer`]; `None` if never (or crashed).
    pub fn next_deadline(&self) -> Option<Millis> {
        if !self.running {
            return None;
        }
        [
            self.buffer.next_deadline(),
            self.revive.next_deadline(),
            self.kv.next_deadline(),
            self.long_polling.next_deadline(),
            self.persist_deadline(),
            self.order_persist_deadline(),
            self.store.next_expiry(),
            self.store.next_put_retry(),
        ]
        .into_iter()
        .flatten()
        .min()
        .map(|t| t.max(self.clock))
    }

    /// Virtual time only moves forward.
    pub(crate) fn tick_clock(&mut self, now: Millis) {
        assert!(
            now >= self.clock,
            "time went back: {now} after {}",
            self.clock
        );
        self.clock = now;
    }

    /// When the scheduled executor's flushes next have work ([`Broker::persist_if_due`]).
    pub fn next_flush(&self) -> Option<Millis> {
        if !self.running {
            return None;
        }
        [self.persist_deadline(), self.order_persist_deadline()]
            .into_iter()
            .flatten()
            .min()
            .map(|t| t.max(self.clock))
    }

    /// `ConsumerOffsetManager.persist()` runs at a fixed rate of `flushConsumerOffsetInterval`
    /// whose first run comes 10 s after the process started (`BrokerController`
    /// `scheduleAtFixedRate(…, 1000 * 10, flushConsumerOffsetInterval)`); only a flush after a
    /// change matters, so the deadline is the first run after the first unpersisted commit.
    fn persist_deadline(&self) -> Option<Millis> {
        let since = self.offsets.dirty_since()?;
        Some(self.schedule_after(
            since,
            self.last_persist,
            self.config.flush_consumer_offset_interval,
        ))
    }

    /// `ConsumerOrderInfoManager.persist()`: every 10 s, the first 10 s after the start.
    fn order_persist_deadline(&self) -> Option<Millis> {
        let since = self.order_info.dirty_since()?;
        Some(self.schedule_after(since, self.last_order_persist, ORDER_INFO_PERSIST_INTERVAL))
    }

    /// The first run of a `scheduleAtFixedRate(task, 10 s, period)` started at `started_at`
    /// that comes strictly after `since` and after the last run.
    fn schedule_after(&self, since: Millis, last: Option<Millis>, period: Millis) -> Millis {
        let first = self.started_at + INITIAL_PERSIST_DELAY;
        let after = last.map_or(since, |p| since.max(p + 1));
        if after < first {
            first
        } else {
            first + ((after - first) / period + 1) * period
        }
    }

    /// The process dies: everything volatile is lost at once.
    pub fn crash(&mut self, now: Millis) {
        assert!(self.running, "crash() on a crashed broker");
        self.tick_clock(now);
        self.stop(now, false);
    }

    /// A graceful shutdown (`BrokerController.shutdown` → `shutdownBasicService`), in
    /// upstream's order: the remoting server stops first (requests in flight get no answer);
    /// `PopConsumerService.shutdown` (its `PopConsumerCache` has no final flush: cached
    /// records are dropped, to be read again from the commit offset);
    /// `PopBufferMergeService.shutdown` (`run()`'s tail: `serving = false`, then `scan()` until
    /// the buffer and the offset queues are empty, which stores every CK and buffered ack and
    /// commits the offsets); the revivers and the timer stop; then
    /// `consumerOffsetManager.persist()` and `consumerOrderInfoManager.persist()`. The 2 s
    /// sleep before the final scans is collapsed: no request runs in it.
    pub fn shutdown(&mut self, now: Millis) {
        assert!(self.running, "shutdown() on a stopped broker");
        self.tick_clock(now);
        self.ops.clear();
        self.queue_locks.clear();
        self.kv.clear();
        self.pop_buffer_final_scan(now);
        self.offsets.persist(&mut self.events, now);
        self.last_persist = Some(now);
        self.persist_order_info(now);
        self.stop(now, true);
    }

    /// What any stop leaves: the process is gone, and the next start reads the persisted
    /// images.
    fn stop(&mut self, now: Millis, graceful: bool) {
        self.running = false;
        // Every thread dies with the process: operations in flight end, their locks with them.
        self.ops.clear();
        self.queue_locks.clear();
        self.buffer.clear();
        self.kv.clear();
        self.long_polling.clear();
        self.ck_message_number = 0;
        self.store.stop_timer();
        // `decode` restores offsetTable only: a pending reset dies with the process, and a
        // stale ackOrderly after the restart commits over it. The proposed fix
        // `reset-table-survives-restart` (read only here) restores the persisted resets.
        self.offsets.restore_from_persisted(
            self.behaviours
                .has_fix(crate::Fix::ResetTableSurvivesRestart),
        );
        self.order_info.restore_from_persisted();
        self.events.push(BrokerEvent::Crashed { at: now, graceful });
    }

    /// The process starts from what survived the crash or shutdown: the persisted offsetTable
    /// and OrderInfo images, topics, groups, every queue and the revive log. The revivers
    /// resume from the committed revive-group offsets; the persist schedules start again.
    pub fn restart(&mut self, now: Millis) {
        assert!(!self.running, "restart() on a running broker");
        assert!(self.ops.is_empty(), "an operation survived the crash");
        self.tick_clock(now);
        self.running = true;
        let revive_topic = self.store.revive_topic().to_owned();
        let committed: Vec<i64> = (0..self.store.revive_queue_num())
            .map(|q| self.offsets.query_offset(REVIVE_GROUP, &revive_topic, q))
            .collect();
        self.revive = PopReviveService::new(&committed, now, self.config.revive_interval);
        self.advance_timer(now);
        self.kv.start(now);
        self.inflight.start(now);
        self.started_at = now;
        self.last_persist = None;
        self.last_order_persist = None;
        self.events.push(BrokerEvent::Restarted { at: now });
        self.check_invariants();
    }

    /// Observations since the last call, oldest first.
    pub fn drain_events(&mut self) -> Vec<BrokerEvent> {
        std::mem::take(&mut self.events)
    }

    /// Read-only view for the checker.
    pub fn snapshot(&self) -> BrokerSnapshot {
        let revive_topic = self.store.revive_topic();
        BrokerSnapshot {
            offset_table: self.offsets.offset_table().clone(),
            persisted_offset_table: self.offsets.persisted_offset_table().clone(),
            pull_offset_table: self.offsets.pull_offset_table().clone(),
            reset_offset_table: self.offsets.reset_offset_table().clone(),
            queues: self
                .store
                .ranges()
                .map(|(t, rs)| {
                    (
                        t.to_owned(),
                        rs.into_iter()
                            .map(|(min, max)| QueueRange { min, max })
                            .collect(),
                    )
                })
                .chain(std::iter::once((
                    revive_topic.to_owned(),
                    (0..self.store.revive_queue_num())
                        .map(|q| QueueRange {
                            min: 0,
                            max: self.store.revive_queue(q).max_offset(),
                        })
                        .collect(),
                )))
                .collect(),
            revive_queues: (0..self.store.revive_queue_num())
                .map(|q| {
                    let rq = self.store.revive_queue(q);
                    ReviveQueueState {
                        revive_qid: q,
                        max_offset: rq.max_offset(),
                        committed_offset: self.offsets.query_offset(REVIVE_GROUP, revive_topic, q),
                        last_deliver_at: rq.last_deliver_at(),
                        delivered: rq.delivered().to_vec(),
                    }
                })
                .collect(),
            buffered_cks: self.buffer.buffered(),
            running: self.running,
            revive_settle_ms: self.revive_settle_ms(),
        }
    }

    /// `putCkToStore` / `buildCkMsg`: a CK record in its revive queue, a timer message
    /// delivered at reviveTime − `ackTimeInterval`. `None` if the store put failed.
    pub(crate) fn put_ck_to_store(
        &mut self,
        now: Millis,
        ck: &PopCheckPoint,
        revive_qid: u32,
        reason: &str,
    ) -> Option<u64> {
        ck.check();
        let revive_topic = self.store.revive_topic().to_owned();
        if self.store_put_fails(now, &revive_topic, revive_qid, reason) {
            return None;
        }
        let deliver_at = ck.revive_time().saturating_sub(ACK_TIME_INTERVAL);
        self.advance_timer(now);
        let (log_offset, _) =
            self.store
                .append_revive(revive_qid, ReviveRecord::Ck(ck.clone()), deliver_at, now);
        self.revive_replan(now, revive_qid);
        self.events.push(BrokerEvent::CkWritten {
            at: now,
            ck: ck.ck_ref().into(),
            revive_qid,
            revive_offset: log_offset,
            deliver_at,
            reason: reason.into(),
        });
        Some(log_offset)
    }

    /// The deliver time of an ACK record whose CK revives at `revive_time`: develop gives
    /// it `revive_time`, so an ACK written after that is stored directly
    /// (`HookUtils.transformTimerMessage`) and can overtake its CK, whose deliver time is one
    /// `ackTimeInterval` earlier (`buildCkMsg`) and which may still wait in a lagging timer
    /// wheel. With `fix` on (each caller names the fix read at its put) such an ACK, while
    /// the timer has not delivered the CK's slot (upstream `getCurrReadTimeMs` is not past
    /// it), is delivered one timer slot from now instead
    /// (`timerPrecisionMs`, so `transformTimerMessage` and the timer's enqueue side,
    /// `TimerMessageStore` 1441, both take it into the wheel): it goes through the wheel in
    /// a later slot than the CK's, and the reviver reads it after the CK. With the timer
    /// past the CK's slot the CK is in the revive queue already, and develop's decision
    /// stands (a direct ACK comes after it).
    pub(crate) fn due_ack_deliver_at(&self, now: Millis, revive_time: Millis, fix: Fix) -> Millis {
        if self.behaviours.has_fix(fix)
            && revive_time <= now
            && !self.store.timer.has_delivered(
                timer_slot(revive_time.saturating_sub(ACK_TIME_INTERVAL)),
                now,
            )
        {
            now + TIMER_PRECISION_MS
        } else {
            revive_time
        }
    }

    /// An ACK / BatchAck record in its revive queue, delivered at `deliver_at` (the revive
    /// time of the CK it acks). False if the store put failed.
    pub(crate) fn put_ack_record(
        &mut self,
        now: Millis,
        ack: AckMsg,
        revive_qid: u32,
        deliver_at: Millis,
        reason: &str,
    ) -> bool {
        let revive_topic = self.store.revive_topic().to_owned();
        if self.store_put_fails(now, &revive_topic, revive_qid, reason) {
            return false;
        }
        self.advance_timer(now);
        let (log_offset, _) =
            self.store
                .append_revive(revive_qid, ReviveRecord::Ack(ack.clone()), deliver_at, now);
        self.revive_replan(now, revive_qid);
        self.events.push(BrokerEvent::AckWritten {
            at: now,
            topic: ack.topic,
            group: ack.consumer_group,
            queue_id: ack.queue_id,
            start_offset: ack.start_offset,
            pop_time: ack.pop_time,
            ack_offsets: ack.ack_offsets.into(),
            broker_name: ack.broker_name,
            revive_qid,
            revive_offset: log_offset,
            deliver_at,
            batch: ack.batch,
            reason: reason.into(),
        });
        true
    }

    /// Does this store put fail? Drawn with the fault rate from the broker's own stream
    /// (nothing is drawn while the rate is 0); a failure is recorded.
    pub(crate) fn store_put_fails(
        &mut self,
        now: Millis,
        topic: &str,
        queue_id: u32,
        site: &str,
    ) -> bool {
        if self.store_put_failure_rate <= 0.0
            || !self
                .fault_rng
                .gen_bool(self.store_put_failure_rate.min(1.0))
        {
            return false;
        }
        self.events.push(BrokerEvent::StorePutFailed {
            at: now,
            site: site.into(),
            topic: topic.into(),
            queue_id,
        });
        true
    }

    /// The timer reads up to `now` (`MessageStore::advance_timer_with`); its dequeue puts
    /// fail with the store's put failure rate, each failure recorded, and a record given up
    /// after its last attempt is recorded too.
    pub(crate) fn advance_timer(&mut self, now: Millis) {
        let rate = self.store_put_failure_rate;
        let rng = &mut self.timer_put_rng;
        let events = &mut self.events;
        let topic = self.store.revive_topic_name();
        let discarded = self.store.advance_timer_with(now, &mut |revive_qid| {
            if rate <= 0.0 || !rng.gen_bool(rate.min(1.0)) {
                return false;
            }
            events.push(BrokerEvent::StorePutFailed {
                at: now,
                site: "TimerDequeuePutMessageService.run".into(),
                topic: topic.clone(),
                queue_id: revive_qid,
            });
            true
        });
        for d in discarded {
            events.push(BrokerEvent::TimerRecordDiscarded {
                at: now,
                revive_qid: d.revive_qid,
                revive_offset: d.log_offset,
                attempts: d.attempts,
            });
        }
    }

    /// Fault input: from now on each store put of a CK, ACK, re-put CK or retry message
    /// fails with this probability (`putMessage` answering e.g. `OS_PAGE_CACHE_BUSY`).
    pub fn set_store_put_failure_rate(&mut self, rate: f64) {
        self.store_put_failure_rate = rate.clamp(0.0, 1.0);
    }

    /// The store's environment: how long a message's CommitLog bytes stay in the page cache
    /// (`checkInMemByConsumeOffset`; 0 = forever) and how old a message gets before
    /// retention deletes it (0 = never).
    pub fn set_store_limits(&mut self, page_cache_ms: Millis, retention_ms: Millis) {
        self.store.set_limits(page_cache_ms, retention_ms);
    }

    /// Fault input: from now on the timer's dequeue side runs `lag` behind the clock.
    pub fn set_timer_lag(&mut self, now: Millis, lag: Millis) {
        self.tick_clock(now);
        self.advance_timer(now);
        self.store.timer.set_lag(lag);
        self.advance_timer(now);
        for q in 0..self.store.revive_queue_num() {
            self.revive_replan(now, q);
        }
    }

    /// How long after a CK reached its revive queue the reviver has surely merged it: a
    /// rest of up to `reviveMaxSlow` intervals and the interval before the next scan, the
    /// scan's 4.1 s of empty reads, `endTime`'s 3 s of idleness past the CK's records and the
    /// 2 s past its revive time, and a timer slot.
    pub fn revive_settle_ms(&self) -> Millis {
        self.config.revive_interval * (u64::from(self.config.revive_max_slow) + 2) + 12_000
    }

    /// Cross-component invariants, asserted after every input in debug builds and wherever
    /// the `invariants` feature is on (the simulation turns it on in release too).
    pub(crate) fn check_invariants(&self) {
        if !(cfg!(debug_assertions) || cfg!(feature = "invariants")) {
            return;
        }
        // The offset table's lower bound and each OrderInfo's ascending offsets are asserted
        // where they are written (`ConsumerOffsetManager::put_offset`,
        // `ConsumerOrderInfoManager::update`): a walk of both tables after every step cost
        // about 8 % of a sweep.
        assert!(
            self.running || self.buffer.buffered() == 0,
            "a crashed broker holds no buffer"
        );
        assert!(
            self.running || self.ops.is_empty(),
            "no operation survives a crash"
        );
        // Every parked operation is in the long-polling service or woken, and vice versa.
        let parked = (self.ops.values())
            .filter(|op| matches!(***op, crate::inflight::Op::Parked(_)))
            .count();
        assert_eq!(
            parked,
            self.long_polling.parked(),
            "parked pops and the long-polling service disagree"
        );
        // A queue lock is held only by an operation in flight, across its read.
        for (key, holder) in self.queue_locks.held_by() {
            assert!(
                self.ops.contains_key(&holder),
                "queue lock {key} held by {holder:?}, which is not in flight"
            );
        }
    }
}
