//! A producer: sends its scheduled messages (round-robin over the topic's queues, or to one
//! queue) and any extra ones a timeline step asks for. No send retries, so a message whose
//! answer was lost is recorded as failed even if the broker stored it.

use super::{ClientCtx, SEND_TIMEOUT};
use broker_core::{Request, ResponseBody, ResponseCode, SendMessageRequest};
use reports::history::EventKind;
use scenarios::model::ProducerSpec;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc;

#[derive(Clone)]
pub struct Producer {
    ctx: ClientCtx,
    spec: ProducerSpec,
    queues: u32,
    sent: Arc<AtomicU64>,
}

impl Producer {
    pub fn new(ctx: ClientCtx, spec: ProducerSpec, topic_queues: u32) -> Self {
        Self {
            ctx,
            spec,
            queues: topic_queues.max(1),
            sent: Arc::default(),
        }
    }

    /// The scheduled sends.
    pub async fn run(self) {
        if self.spec.messages == 0 {
            return;
        }
        self.ctx
            .rec
            .clock()
            .sleep_until(self.spec.start_at_ms)
            .await;
        for i in 0..self.spec.messages {
            if i > 0 {
                madsim::time::sleep(Duration::from_millis(self.spec.interval_ms)).await;
            }
            self.send_one().await;
        }
    }

    /// Extra sends requested by `produce` steps.
    pub async fn serve(self, mut commands: mpsc::UnboundedReceiver<u64>) {
        while let Some(count) = commands.recv().await {
            for _ in 0..count {
                self.send_one().await;
            }
        }
    }

    async fn send_one(&self) {
        let n = self.sent.fetch_add(1, Ordering::Relaxed);
        let queue_id = self
            .spec
            .queue
            .unwrap_or((n % u64::from(self.queues)) as u32);
        let msg_id = format!("{}-{n}", self.spec.name);
        let req = SendMessageRequest {
            topic: self.spec.topic.clone(),
            queue_id,
            msg_id: msg_id.clone(),
            tags: None,
            born_timestamp: self.ctx.now(),
        };
        let result = self
            .ctx
            .rpc
            .call(Request::SendMessage(req), SEND_TIMEOUT)
            .await;
        let kind = match result {
            Ok(r) if r.code == ResponseCode::Success => match r.body {
                ResponseBody::SendResult {
                    queue_id,
                    queue_offset,
                    ..
                } => EventKind::Produced {
                    producer: broker_core::Name::new(&self.spec.name),
                    msg_id: msg_id.into(),
                    topic: broker_core::Name::new(&self.spec.topic),
                    queue_id,
                    queue_offset,
                },
                other => self.failed(
                    msg_id,
                    queue_id,
                    format!("SUCCESS without a send result: {other:?}"),
                ),
            },
            Ok(r) => self.failed(
                msg_id,
                queue_id,
                format!("{} {}", r.code.name(), r.remark).trim().to_owned(),
            ),
            Err(_) => self.failed(msg_id, queue_id, "timeout".to_owned()),
        };
        self.ctx.record(kind);
    }

    fn failed(&self, msg_id: String, queue_id: u32, reason: String) -> EventKind {
        EventKind::ProduceFailed {
            producer: broker_core::Name::new(&self.spec.name),
            msg_id: msg_id.into(),
            topic: broker_core::Name::new(&self.spec.topic),
            queue_id,
            reason: reason.into(),
        }
    }
}
