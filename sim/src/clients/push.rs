//! The remoting POP push consumer, concurrent (`DefaultMQPushConsumerImpl.popMessage` +
//! `ConsumeMessagePopConcurrentlyService`), straight to the broker.
//!
//! Pop loop: pop up to `popBatchNums` from every queue with `popInvisibleTime` (replaced by
//! 60 s outside [5 s, 300 s]) and a `pollTime` of 15 s: the broker parks an empty pop until
//! a message arrives or the poll time is up, and the client waits `pollTime + 10 s` for the
//! answer, then pops again at once (after an error, 3 s later). On receipt, the #8333 filter
//! acks messages whose reconsumeTimes exceed the effective max (unless
//! `pop-timeout-skips-max-reconsume` restores the old client); each message is one consume
//! request on a pool of `consumeThreadMin` listeners. A request whose pop has timed out
//! (`now − popTime ≥ invisibleTime`) before or after the listener is dropped: no ack, no
//! nack. Otherwise success acks; failure goes to [`decisions::on_failure`]. Every decision is
//! in [`decisions`].

use super::decisions::{self, FailureAction};
use super::receipt::{ack, change_invisible_time, receipt_of, record_deliveries};
use super::{run_listener, wait_running, ClientCtx, PopReply, POP_DELAY_FLOW_CONTROL};
use broker_core::{Behaviour, MessageExt, Millis, PopMessageRequest, Request};
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

/// A running concurrent POP push consumer.
pub struct PushConsumer {
    ctx: ClientCtx,
    spec: ConsumerSpec,
    max: u32,
    invisible_time: Millis,
    in_flight: Arc<AtomicU64>,
    threads: Arc<Semaphore>,
}

impl PushConsumer {
    pub fn new(ctx: ClientCtx, spec: ConsumerSpec) -> Self {
        let max = decisions::remoting_max_reconsume_times(spec.max_reconsume_times);
        let invisible_time = decisions::remoting_pop_invisible_time(spec.pop_invisible_time_ms);
        Self {
            ctx,
            spec,
            max,
            invisible_time,
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
        let poll_time = decisions::BROKER_SUSPEND_MAX_TIME_MILLIS;
        let timeout = Duration::from_millis(decisions::polling_pop_timeout(poll_time));
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
                invisible_time: this.invisible_time,
                order: false,
                attempt_id: None,
                init_mode: this.spec.init_mode,
                poll_time,
                born_time: Some(this.ctx.now()),
                count_by_queue: false,
            };
            let reply = PopReply::from(this.ctx.rpc.call(Request::PopMessage(req), timeout).await);
            let delay = reply.delay();
            if let PopReply::Found(pop) = reply {
                record_deliveries(
                    &this.ctx,
                    &this.spec.group,
                    &pop.msgs,
                    false,
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
            .partition(|m| decisions::skip_on_receipt(m.reconsume_times, self.max, filter));
        for msg in over {
            self.ctx.record(EventKind::SkippedOnReceipt {
                consumer: broker_core::Name::new(&self.ctx.name),
                group: broker_core::Name::new(&self.spec.group),
                msg_id: broker_core::Name::new(&msg.msg_id),
                reconsume_times: msg.reconsume_times,
                reason: format!(
                    "reconsumeTimes {} > maxReconsumeTimes {}",
                    msg.reconsume_times, self.max
                )
                .into(),
            });
            let this = self.clone();
            crate::world::tasks::spawn(async move {
                ack(&this.ctx, &this.spec.group, &msg).await;
            });
        }
        self.in_flight
            .fetch_add(keep.len() as u64, Ordering::Relaxed);
        for msg in keep {
            let this = self.clone();
            crate::world::tasks::spawn(async move { this.consume(msg).await });
        }
    }

    fn is_pop_timeout(&self, msg: &MessageExt) -> bool {
        let receipt = receipt_of(msg).map(|(_, info)| info);
        decisions::is_pop_timeout(self.ctx.now(), receipt.as_ref())
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
        let mut timed_out = false;
        let result = run_listener(
            &self.ctx,
            &self.spec.group,
            &self.spec,
            &msg,
            self.invisible_time,
            || {
                timed_out = self.is_pop_timeout(&msg);
                timed_out
            },
        )
        .await;
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
        if result == ConsumeOutcome::Success {
            if crate::buggify::buggify("push-ack-delay") {
                // The ack leaves late (a busy callback executor).
                let ms = madsim::rand::thread_rng().gen_range(1..=5_000);
                madsim::time::sleep(Duration::from_millis(ms)).await;
            }
            ack(&self.ctx, group, &msg).await;
            return;
        }
        let age = self.ctx.now().saturating_sub(msg.born_timestamp);
        match decisions::on_failure(msg.reconsume_times, self.max, age) {
            FailureAction::ChangeInvisibleTime(t) => {
                change_invisible_time(&self.ctx, group, &msg, t).await;
            }
            FailureAction::Ack => {
                ack(&self.ctx, group, &msg).await;
            }
            FailureAction::Nothing => {}
        }
    }
}
