//! The gRPC `SimpleConsumer` (apache/rocketmq-clients, Java: `SimpleConsumerImpl`), through
//! the proxy. Without `receive_loop` it is driven by timeline steps like the scripted
//! consumer: `pop` is `receive(max, invisible_time_ms)` (no auto-renew, no attemptId,
//! long-polling for the consumer's `await_duration_ms`), `ack` acks held messages one call
//! each, and `change-invisible-time` calls `changeInvisibleDuration` for each. None of them
//! retries. As upstream's `changeInvisibleDuration0` does, the message's receipt handle
//! becomes the one in any answer, before its status is checked: a refused change leaves it
//! empty.
//!
//! With `receive_loop = true` it runs the application loop of the client's examples
//! (`SimpleConsumerExample`, `AsyncSimpleConsumerExample`): receive up to `pop_batch_nums`
//! (the proxy cuts a larger batch to `ProxyUtils.MAX_MSG_NUMS_FOR_POP_REQUEST`) with
//! `pop_invisible_time_ms`, then each message in order through the listener and one ack
//! per success, then receive again; see [`GrpcSimpleConsumer::run_loop`]. The client adds
//! nothing of its own: `SimpleConsumerImpl.receive0` only picks a queue and sends the
//! request, and `ack0` sends one `AckMessage` and checks its status; for a FIFO group the
//! proxy and broker's orderly pop decide what a receive returns.

use super::decisions;
use super::grpc::GrpcCtx;
use super::receipt::record_deliveries;
use super::scripted::ScriptedCommand;
use super::{run_listener, wait_running};
use broker_core::{MessageExt, Millis};
use reports::history::{ConsumeOutcome, GrpcCode, GrpcOutcome};
use scenarios::model::ConsumerSpec;
use std::time::Duration;
use tokio::sync::{mpsc, watch};

/// `await_duration_ms` when the scenario leaves it out: the proxy's minimum long-polling
/// time (`grpcClientConsumerMinLongPollingTimeoutMillis`).
pub const DEFAULT_AWAIT_DURATION: Millis = 5_000;

pub struct GrpcSimpleConsumer {
    g: GrpcCtx,
    spec: ConsumerSpec,
    held: Vec<MessageExt>,
}

impl GrpcSimpleConsumer {
    pub fn new(g: GrpcCtx, spec: ConsumerSpec) -> Self {
        Self {
            g,
            spec,
            held: Vec::new(),
        }
    }

    /// Executes commands in the order the timeline sent them.
    pub async fn run(mut self, mut commands: mpsc::UnboundedReceiver<ScriptedCommand>) {
        while let Some(cmd) = commands.recv().await {
            match cmd {
                ScriptedCommand::Pop {
                    max,
                    invisible_time,
                    ..
                } => self.receive(max, invisible_time).await,
                ScriptedCommand::Ack {
                    count,
                    all_but,
                    skip,
                    ..
                } => self.ack(skip, count, all_but).await,
                ScriptedCommand::ChangeInvisibleTime {
                    invisible_time,
                    count,
                } => self.change_invisible_duration(invisible_time, count).await,
            }
        }
    }

    /// The application loop (`receive_loop = true`), from `start_at_ms` while the consumer
    /// runs: a receive of up to `pop_batch_nums` with `pop_invisible_time_ms`, long-polling
    /// for `await_duration_ms`; an empty answer is followed by the next receive at once, an
    /// error or a lost answer by one after a back-off (the examples have none: the async
    /// one receives again as soon as its semaphore allows; the loop borrows
    /// `ProcessQueueImpl`'s receiving back-offs, 1 s, 20 ms for `TOO_MANY_REQUESTS`, so a
    /// fast refusal cannot spin). Then each message, in the order received, goes through
    /// the listener; a success is acked with one `AckMessage`, not retried (the examples log
    /// a failed ack and go on), even if the listener outlasted the invisible time: the
    /// proxy and broker answer as they do. A failure is not acked and nothing else is
    /// sent: the message comes back when its invisible time ends, as a `SimpleConsumer`
    /// application that does not ack gets it again (the examples ack every message and
    /// have no failure path; `changeInvisibleDuration` is the application's own choice).
    pub async fn run_loop(self, mut running: watch::Receiver<bool>) {
        let ctx = &self.g.ctx;
        ctx.rec.clock().sleep_until(self.spec.start_at_ms).await;
        super::record_started(ctx, &self.spec.group, &running);
        let invisible = self.spec.pop_invisible_time_ms;
        let wait = self
            .spec
            .await_duration_ms
            .unwrap_or(DEFAULT_AWAIT_DURATION);
        loop {
            wait_running(&mut running).await;
            let result = self
                .g
                .receive(
                    self.spec.pop_batch_nums,
                    Some(invisible),
                    false,
                    wait,
                    None,
                    -1,
                )
                .await;
            let msgs = match result {
                Ok(msgs) => msgs,
                Err(GrpcOutcome::Status {
                    code: GrpcCode::TooManyRequests,
                    ..
                }) => {
                    let d = decisions::RECEIVING_FLOW_CONTROL_BACKOFF_DELAY;
                    madsim::time::sleep(Duration::from_millis(d)).await;
                    continue;
                }
                Err(_) => {
                    let d = decisions::RECEIVING_FAILURE_BACKOFF_DELAY;
                    madsim::time::sleep(Duration::from_millis(d)).await;
                    continue;
                }
            };
            record_deliveries(
                ctx,
                &self.spec.group,
                &msgs,
                self.g.fifo,
                None,
                (self.g.now(), invisible),
            );
            for msg in msgs {
                let outcome =
                    run_listener(ctx, &self.g.group, &self.spec, &msg, invisible, || false).await;
                if outcome == ConsumeOutcome::Success {
                    let _ = self.g.ack(&msg).await;
                }
            }
        }
    }

    async fn receive(&mut self, max: u32, invisible_time: Option<Millis>) {
        let invisible = invisible_time.unwrap_or(self.spec.pop_invisible_time_ms);
        let wait = self
            .spec
            .await_duration_ms
            .unwrap_or(DEFAULT_AWAIT_DURATION);
        if let Ok(msgs) = self
            .g
            .receive(max, Some(invisible), false, wait, None, -1)
            .await
        {
            record_deliveries(
                &self.g.ctx,
                &self.spec.group,
                &msgs,
                self.g.fifo,
                None,
                (self.g.now(), invisible),
            );
            self.held.extend(msgs);
        }
    }

    async fn ack(&mut self, skip: u32, count: Option<u32>, all_but: Option<u32>) {
        for msg in crate::clients::scripted::select_held(&mut self.held, skip, count, all_but) {
            let _ = self.g.ack(&msg).await;
        }
    }

    async fn change_invisible_duration(&mut self, invisible_time: Millis, count: Option<u32>) {
        let n = count.map_or(self.held.len(), |c| (c as usize).min(self.held.len()));
        for i in 0..n {
            let msg = self.held[i].clone();
            if let Ok((_, handle)) = self.g.change_invisible_duration(&msg, invisible_time).await {
                self.held[i].pop_ck = Some(handle);
            }
        }
    }
}
