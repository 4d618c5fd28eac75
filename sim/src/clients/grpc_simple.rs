//! The gRPC `SimpleConsumer` (apache/rocketmq-clients, Java: `SimpleConsumerImpl`), through
//! the proxy, driven by timeline steps like the scripted consumer: `pop` is
//! `receive(max, invisible_time_ms)` (no auto-renew, no attemptId, long-polling for the
//! consumer's `await_duration_ms`), `ack` acks held messages one call each, and
//! `change-invisible-time` calls `changeInvisibleDuration` for each. None of them retries.
//! As upstream's `changeInvisibleDuration0` does, the message's receipt handle becomes the
//! one in any answer, before its status is checked: a refused change leaves it empty.

use super::grpc::GrpcCtx;
use super::receipt::record_deliveries;
use super::scripted::ScriptedCommand;
use broker_core::{MessageExt, Millis};
use scenarios::model::ConsumerSpec;
use tokio::sync::mpsc;

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
                ScriptedCommand::Ack { count, all_but, .. } => self.ack(count, all_but).await,
                ScriptedCommand::ChangeInvisibleTime {
                    invisible_time,
                    count,
                } => self.change_invisible_duration(invisible_time, count).await,
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

    /// The held messages a step selects: the first `count`, all but the last `all_but`, or
    /// all.
    fn select(&mut self, count: Option<u32>, all_but: Option<u32>) -> Vec<MessageExt> {
        let n = self.held.len();
        let take = match (count, all_but) {
            (Some(c), _) => (c as usize).min(n),
            (None, Some(k)) => n.saturating_sub(k as usize),
            (None, None) => n,
        };
        self.held.drain(..take).collect()
    }

    async fn ack(&mut self, count: Option<u32>, all_but: Option<u32>) {
        for msg in self.select(count, all_but) {
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
