//! The gRPC `PushConsumer` (apache/rocketmq-clients, Java: `PushConsumerImpl`,
//! `ProcessQueueImpl`, `FifoConsumeService`, `StandardConsumeService`), through the proxy.
//!
//! Assignments (`RouteActivity.queryAssignment`): a FIFO group gets one message queue per
//! queue of the topic, any other group one queue of the broker (−1); each has a process queue
//! that receives on its own: batches of at most the settings' `receiveBatchSize` while its
//! share of `maxCacheMessageCount` has room (else it waits 1 s), with `autoRenew` (no
//! invisible duration: the proxy pops with its default and renews it) and the settings'
//! long-polling timeout; the call waits that plus the request timeout. After an answer, with
//! messages or empty, it receives again at once with a new attemptId; after an error 1 s
//! later (20 ms for `TOO_MANY_REQUESTS`), with a new attemptId unless the call ran out its
//! deadline (then the same one: the retry of a lost pop stays reentrant). With
//! `keeps_attempt_id_until_messages` (rocketmq-clients #1322, later than the snapshot) it
//! keeps the attemptId until a receive brings messages.
//!
//! Consumption runs on `consumptionThreadCount` threads. FIFO (`FifoConsumeService`): a
//! batch is consumed in order, one message at a time; a failure with attempts left is
//! consumed again after the retry policy's delay, with the delivery attempt counted up
//! (`eraseFifoMessage`); a success is acked and a failure at `maxAttempts` forwarded to the
//! DLQ, each retried every second until it succeeds (an ack refused with
//! `INVALID_RECEIPT_HANDLE` is given up); only then the next message. Non-FIFO
//! (`StandardConsumeService`): every message at once; success acks, failure nacks
//! (changeInvisibleDuration to the retry policy's delay), each retried likewise. The client
//! never checks a pop timeout: the proxy renews the receipt while it consumes. Decisions are
//! in [`super::decisions`].

use super::decisions::{self, FifoNext, StandardNext};
use super::grpc::GrpcCtx;
use super::receipt::record_deliveries;
use super::{run_listener, wait_running};
use broker_core::{MessageExt, Millis};
use madsim::rand::Rng;
use reports::history::{ConsumeOutcome, EventKind, GrpcCode, GrpcOutcome};
use scenarios::model::ConsumerSpec;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{watch, Semaphore};

fn ms(t: Millis) -> Duration {
    Duration::from_millis(t)
}

/// What the proxy's settings give the push consumer.
#[derive(Clone, Copy, Debug)]
pub struct PushSettings {
    /// `Subscription.receiveBatchSize` (`grpcClientConsumerLongPollingBatchSize`).
    pub receive_batch_size: u32,
    /// `Subscription.longPollingTimeout` (`grpcClientConsumerMaxLongPollingTimeoutMillis`).
    pub long_polling_timeout: Millis,
    /// The invisible time the proxy pops with for it (`defaultInvisibleTimeMills`).
    pub invisible_time: Millis,
}

/// A running gRPC push consumer.
pub struct GrpcPushConsumer {
    g: GrpcCtx,
    spec: ConsumerSpec,
    settings: PushSettings,
    queues: u32,
    threads: Arc<Semaphore>,
}

impl GrpcPushConsumer {
    pub fn new(g: GrpcCtx, spec: ConsumerSpec, settings: PushSettings, queues: u32) -> Self {
        Self {
            g,
            spec,
            settings,
            queues,
            threads: Arc::new(Semaphore::new(decisions::CONSUMPTION_THREAD_COUNT)),
        }
    }

    /// Starts a process queue per assignment; runs until the run ends.
    pub async fn run(self, running: watch::Receiver<bool>) {
        let this = Arc::new(self);
        this.g
            .ctx
            .rec
            .clock()
            .sleep_until(this.spec.start_at_ms)
            .await;
        super::record_started(&this.g.ctx, &this.spec.group, &running);
        let assignments: Vec<i32> = if this.g.fifo {
            (0..this.queues as i32).collect()
        } else {
            vec![-1]
        };
        let threshold = decisions::cache_threshold_per_queue(assignments.len());
        for q in assignments {
            let (pq, rx) = (this.clone(), running.clone());
            madsim::task::spawn(async move { pq.process_queue(q, threshold, rx).await });
        }
        std::future::pending::<()>().await;
    }

    /// One `ProcessQueueImpl`'s receive loop.
    async fn process_queue(
        self: Arc<Self>,
        q: i32,
        threshold: u32,
        mut running: watch::Receiver<bool>,
    ) {
        let cached = Arc::new(AtomicU32::new(0));
        let mut n = 0u64;
        let attempt_id = |n: u64| format!("{}-q{q}-{n}", self.g.ctx.name);
        loop {
            wait_running(&mut running).await;
            let held = cached.load(Ordering::Relaxed);
            if held >= threshold {
                madsim::time::sleep(ms(decisions::RECEIVING_BACKOFF_DELAY_WHEN_CACHE_IS_FULL))
                    .await;
                continue;
            }
            let batch =
                decisions::reception_batch_size(threshold, held, self.settings.receive_batch_size);
            let id = attempt_id(n);
            let result = self
                .g
                .receive(
                    batch,
                    None,
                    true,
                    self.settings.long_polling_timeout,
                    Some(id.clone()),
                    q,
                )
                .await;
            if !decisions::keep_attempt_id(
                matches!(result, Err(GrpcOutcome::Timeout)),
                matches!(&result, Ok(msgs) if !msgs.is_empty()),
                self.spec.keeps_attempt_id_until_messages,
            ) {
                n += 1;
            }
            match result {
                Ok(msgs) => {
                    if msgs.is_empty() {
                        continue;
                    }
                    record_deliveries(
                        &self.g.ctx,
                        &self.spec.group,
                        &msgs,
                        self.g.fifo,
                        self.g.fifo.then_some(id.as_str()),
                        (self.g.now(), self.settings.invisible_time),
                    );
                    cached.fetch_add(msgs.len() as u32, Ordering::Relaxed);
                    self.clone().consume(msgs, cached.clone());
                }
                Err(GrpcOutcome::Status {
                    code: GrpcCode::TooManyRequests,
                    ..
                }) => {
                    madsim::time::sleep(ms(decisions::RECEIVING_FLOW_CONTROL_BACKOFF_DELAY)).await
                }
                Err(_) => madsim::time::sleep(ms(decisions::RECEIVING_FAILURE_BACKOFF_DELAY)).await,
            }
        }
    }

    /// `ConsumeService.consume(pq, messages)`.
    fn consume(self: Arc<Self>, msgs: Vec<MessageExt>, cached: Arc<AtomicU32>) {
        if self.g.fifo {
            crate::world::tasks::spawn(async move { self.consume_iteratively(msgs, cached).await });
        } else {
            for msg in msgs {
                let (this, cached) = (self.clone(), cached.clone());
                crate::world::tasks::spawn(async move { this.consume_standard(msg, cached).await });
            }
        }
    }

    /// `FifoConsumeService.consumeIteratively` with `eraseFifoMessage`.
    async fn consume_iteratively(self: Arc<Self>, msgs: Vec<MessageExt>, cached: Arc<AtomicU32>) {
        for msg in msgs {
            let mut attempt = decisions::delivery_attempt(msg.reconsume_times);
            let mut delay = 0;
            loop {
                let outcome = self.listen(&msg, delay).await;
                match decisions::erase_fifo(outcome, attempt, self.g.max_attempts) {
                    FifoNext::RetryLocally(d) => {
                        attempt += 1;
                        delay = d;
                    }
                    FifoNext::Ack => {
                        self.ack_until_done(&msg).await;
                        break;
                    }
                    FifoNext::ForwardToDlq => {
                        self.forward_until_done(&msg, attempt).await;
                        break;
                    }
                }
            }
            cached.fetch_sub(1, Ordering::Relaxed);
        }
    }

    /// `StandardConsumeService.consume` for one message, then `eraseMessage`.
    async fn consume_standard(self: Arc<Self>, msg: MessageExt, cached: Arc<AtomicU32>) {
        let outcome = self.listen(&msg, 0).await;
        let attempt = decisions::delivery_attempt(msg.reconsume_times);
        match decisions::erase_standard(outcome, attempt) {
            StandardNext::Ack => self.ack_until_done(&msg).await,
            StandardNext::Nack(t) => self.nack_until_done(&msg, t).await,
        }
        cached.fetch_sub(1, Ordering::Relaxed);
    }

    /// `ConsumeService.consume(messageView, delay)`: after `delay`, a `ConsumeTask` on a
    /// consumption thread.
    async fn listen(&self, msg: &MessageExt, delay: Millis) -> ConsumeOutcome {
        if delay > 0 {
            madsim::time::sleep(ms(delay)).await;
        }
        let _permit = self
            .threads
            .clone()
            .acquire_owned()
            .await
            .expect("semaphore open");
        run_listener(
            &self.g.ctx,
            &self.g.group,
            &self.spec,
            msg,
            self.settings.invisible_time,
            || false,
        )
        .await
    }

    /// `ProcessQueueImpl.ackMessage`: retried every second until `OK`; given up on
    /// `INVALID_RECEIPT_HANDLE`.
    async fn ack_until_done(&self, msg: &MessageExt) {
        if crate::buggify::buggify("push-ack-delay") {
            let t = madsim::rand::thread_rng().gen_range(1..=5_000);
            madsim::time::sleep(ms(t)).await;
        }
        loop {
            match self.g.ack(msg).await {
                Ok(s) if s.is_ok() || s.code == GrpcCode::InvalidReceiptHandle => return,
                _ => madsim::time::sleep(ms(decisions::ACK_MESSAGE_FAILURE_BACKOFF_DELAY)).await,
            }
        }
    }

    /// `nackMessage` → `changeInvisibleDuration`, retried likewise.
    async fn nack_until_done(&self, msg: &MessageExt, invisible: Millis) {
        loop {
            match self.g.change_invisible_duration(msg, invisible).await {
                Ok((s, _)) if s.is_ok() || s.code == GrpcCode::InvalidReceiptHandle => return,
                _ => madsim::time::sleep(ms(decisions::ACK_MESSAGE_FAILURE_BACKOFF_DELAY)).await,
            }
        }
    }

    /// `forwardToDeadLetterQueue`: the decision is recorded, then the forward is retried
    /// every second until `OK`.
    async fn forward_until_done(&self, msg: &MessageExt, attempt: u32) {
        let g = &self.g;
        g.ctx.record(EventKind::SentToDlq {
            consumer: broker_core::Name::new(&g.ctx.name),
            group: broker_core::Name::new(&g.group),
            msg_id: broker_core::Name::new(&msg.msg_id),
            dlq_topic: broker_core::keys::dlq_topic(&g.group).into(),
            reconsume_times: msg.reconsume_times,
        });
        loop {
            match g.forward_to_dlq(msg, attempt).await {
                Ok(s) if s.is_ok() => return,
                _ => madsim::time::sleep(ms(decisions::ACK_MESSAGE_FAILURE_BACKOFF_DELAY)).await,
            }
        }
    }
}
