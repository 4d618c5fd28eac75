//! The POP push consumer, concurrent (`DefaultMQPushConsumerImpl.popMessage` +
//! `ConsumeMessagePopConcurrentlyService`).
//!
//! Pop loop: pop up to `popBatchNums` from every queue with `popInvisibleTime`; on receipt,
//! the #8333 filter acks messages whose reconsumeTimes exceed the effective max (unless
//! `pop-timeout-skips-max-reconsume` restores the old client); each message is one consume
//! request on a pool of `consumeThreadMin` listeners. A request whose pop has timed out
//! (`now − popTime ≥ invisibleTime`) before or after the listener is dropped: no ack, no
//! nack. Otherwise success acks; failure at or past the max goes to `checkNeedAckOrDelay`,
//! below it changes the invisible time by delay level.

use super::receipt::{ack, batch_ack, change_invisible_time, receipt_of, record_deliveries};
use super::{draw_ms, wait_running, ClientCtx, PopReply, POP_DELAY_FLOW_CONTROL, POP_TIMEOUT};
use broker_core::{Behaviour, MessageExt, PopMessageRequest, Request};
use madsim::rand::Rng;
use reports::history::{ConsumeOutcome, EventKind};
use scenarios::model::ConsumerSpec;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{watch, Semaphore};

/// `DefaultMQPushConsumer.consumeThreadMin`: concurrent listener invocations.
pub const CONSUME_THREADS: usize = 20;
/// `DefaultMQPushConsumer.popThresholdForQueue`: messages waiting for ack before flow control.
pub const POP_THRESHOLD_FOR_QUEUE: u64 = 96;
/// `DefaultMQPushConsumerImpl.popDelayLevel`, in seconds.
pub const POP_DELAY_LEVEL: [u64; 16] = [
    10, 30, 60, 120, 180, 240, 300, 360, 420, 480, 540, 600, 1200, 1800, 3600, 7200,
];

/// `getMaxReconsumeTimes` of the concurrent push consumer: −1 means 16.
pub fn effective_max_reconsume(configured: i32) -> u32 {
    if configured < 0 {
        16
    } else {
        configured as u32
    }
}

/// A running concurrent POP push consumer.
pub struct PushConsumer {
    ctx: ClientCtx,
    spec: ConsumerSpec,
    max: u32,
    in_flight: Arc<AtomicU64>,
    threads: Arc<Semaphore>,
}

impl PushConsumer {
    pub fn new(ctx: ClientCtx, spec: ConsumerSpec) -> Self {
        let max = effective_max_reconsume(spec.max_reconsume_times);
        Self {
            ctx,
            spec,
            max,
            in_flight: Arc::default(),
            threads: Arc::new(Semaphore::new(CONSUME_THREADS)),
        }
    }

    /// The pop loop; runs until the run ends.
    pub async fn run(self, mut running: watch::Receiver<bool>) {
        let this = Arc::new(self);
        this.ctx
            .rec
            .clock()
            .sleep_until(this.spec.start_at_ms)
            .await;
        super::record_started(&this.ctx, &this.spec.group, &running);
        loop {
            wait_running(&mut running).await;
            if this.in_flight.load(Ordering::Relaxed) > POP_THRESHOLD_FOR_QUEUE {
                madsim::time::sleep(POP_DELAY_FLOW_CONTROL).await;
                continue;
            }
            let req = PopMessageRequest {
                consumer_group: this.spec.group.clone(),
                topic: this.spec.topic.clone(),
                queue_id: -1,
                max_msg_nums: this.spec.pop_batch_nums,
                invisible_time: this.spec.pop_invisible_time_ms,
                order: false,
                attempt_id: None,
                init_mode: this.spec.init_mode,
            };
            let reply = PopReply::from(
                this.ctx
                    .rpc
                    .call(Request::PopMessage(req), POP_TIMEOUT)
                    .await,
            );
            let delay = reply.delay();
            if let PopReply::Found(pop) = reply {
                record_deliveries(
                    &this.ctx,
                    &this.spec.group,
                    &pop.msgs,
                    None,
                    (pop.pop_time, pop.invisible_time),
                );
                this.process_pop_result(pop.msgs);
            }
            if let Some(d) = delay {
                madsim::time::sleep(d).await;
            }
        }
    }

    /// `processPopResult` then `submitPopConsumeRequest`.
    fn process_pop_result(self: &Arc<Self>, msgs: Vec<MessageExt>) {
        let filter = !self
            .ctx
            .behaviours
            .is_on(Behaviour::PopTimeoutSkipsMaxReconsume);
        let (over, keep): (Vec<_>, Vec<_>) = msgs
            .into_iter()
            .partition(|m| filter && m.reconsume_times > self.max);
        for msg in over {
            self.ctx.record(EventKind::SkippedOnReceipt {
                consumer: self.ctx.name.clone(),
                group: self.spec.group.clone(),
                msg_id: msg.msg_id.clone(),
                reconsume_times: msg.reconsume_times,
                reason: format!(
                    "reconsumeTimes {} > maxReconsumeTimes {}",
                    msg.reconsume_times, self.max
                ),
            });
            let this = self.clone();
            madsim::task::spawn(async move {
                ack(&this.ctx, &this.spec.group, &msg).await;
            });
        }
        self.in_flight
            .fetch_add(keep.len() as u64, Ordering::Relaxed);
        for msg in keep {
            let this = self.clone();
            madsim::task::spawn(async move { this.consume(msg).await });
        }
    }

    fn is_pop_timeout(&self, msg: &MessageExt) -> bool {
        match receipt_of(msg) {
            Some((_, info)) if info.pop_time > 0 && info.invisible_time > 0 => {
                self.ctx.now().saturating_sub(info.pop_time) >= info.invisible_time
            }
            _ => true,
        }
    }

    /// `ConsumeRequest.run` for one message.
    async fn consume(self: Arc<Self>, msg: MessageExt) {
        let _permit = self
            .threads
            .clone()
            .acquire_owned()
            .await
            .expect("semaphore open");
        if self.is_pop_timeout(&msg) {
            // "the pop message time out so abort consume"
            self.in_flight.fetch_sub(1, Ordering::Relaxed);
            return;
        }
        let group = self.spec.group.clone();
        self.ctx.record(EventKind::ListenerStarted {
            consumer: self.ctx.name.clone(),
            group: group.clone(),
            msg_id: msg.msg_id.clone(),
            reconsume_times: msg.reconsume_times,
        });
        madsim::time::sleep(Duration::from_millis(draw_ms(self.spec.consume_time_ms))).await;
        if crate::buggify::buggify("push-slow-listener") {
            // A listener stuck up to the invisible time (GC, a slow downstream call).
            let extra = madsim::rand::thread_rng().gen_range(0..=self.spec.pop_invisible_time_ms);
            madsim::time::sleep(Duration::from_millis(extra)).await;
        }
        let failed = madsim::rand::thread_rng().gen_range(0..100u32) < self.spec.failure_percent;
        let result = if failed {
            ConsumeOutcome::Failure
        } else {
            ConsumeOutcome::Success
        };
        let timed_out = self.is_pop_timeout(&msg);
        self.ctx.record(EventKind::ListenerFinished {
            consumer: self.ctx.name.clone(),
            group: group.clone(),
            msg_id: msg.msg_id.clone(),
            outcome: result,
            pop_timed_out: timed_out,
        });
        self.in_flight.fetch_sub(1, Ordering::Relaxed);
        drop(_permit);
        if timed_out {
            // "processQueue invalid or popTimeout": processConsumeResult is skipped.
            return;
        }
        self.process_consume_result(msg, result).await;
    }

    /// `processConsumeResult` for a batch of one.
    async fn process_consume_result(&self, msg: MessageExt, result: ConsumeOutcome) {
        let group = &self.spec.group;
        if result == ConsumeOutcome::Success && crate::buggify::buggify("push-ack-delay") {
            // The ack leaves late (a busy callback executor).
            let ms = madsim::rand::thread_rng().gen_range(1..=5_000);
            madsim::time::sleep(Duration::from_millis(ms)).await;
        }
        match result {
            ConsumeOutcome::Success if self.spec.batch_ack => {
                batch_ack(&self.ctx, group, std::slice::from_ref(&msg)).await
            }
            ConsumeOutcome::Success => {
                ack(&self.ctx, group, &msg).await;
            }
            ConsumeOutcome::Failure if msg.reconsume_times >= self.max => {
                self.check_need_ack_or_delay(&msg).await
            }
            ConsumeOutcome::Failure => {
                // The listener's context leaves delayLevelWhenNextConsume at 0.
                self.change_pop_invisible_time(&msg, 0).await;
            }
        }
    }

    /// `checkNeedAckOrDelay`: drop (ack) a message older than twice the last delay level,
    /// else delay it by the level matching its age.
    async fn check_need_ack_or_delay(&self, msg: &MessageExt) {
        let age = self.ctx.now().saturating_sub(msg.born_timestamp);
        let last = POP_DELAY_LEVEL[POP_DELAY_LEVEL.len() - 1];
        if age > last * 1000 * 2 {
            ack(&self.ctx, &self.spec.group, msg).await;
            return;
        }
        let mut level: i64 = POP_DELAY_LEVEL.len() as i64 - 1;
        while level >= 0 {
            if age >= POP_DELAY_LEVEL[level as usize] * 1000 {
                level += 1;
                break;
            }
            level -= 1;
        }
        if level < 0 {
            // Upstream indexes popDelayLevel[-1] here and the exception ends the request:
            // nothing is sent, the message reappears when its invisible time ends.
            return;
        }
        self.change_pop_invisible_time(msg, level as usize).await;
    }

    /// `changePopInvisibleTime(msg, group, delayLevel)`.
    async fn change_pop_invisible_time(&self, msg: &MessageExt, delay_level: usize) {
        let level = if delay_level == 0 {
            msg.reconsume_times as usize
        } else {
            delay_level
        };
        let secs = POP_DELAY_LEVEL
            .get(level)
            .copied()
            .unwrap_or(POP_DELAY_LEVEL[POP_DELAY_LEVEL.len() - 1]);
        change_invisible_time(&self.ctx, &self.spec.group, msg, secs * 1000).await;
    }
}
