//! The orderly POP consumer (`ConsumeMessagePopOrderlyService` with FIFO pops): pops with
//! `order = true` and an attemptId (reused when a pop gets no answer, so the broker treats
//! the retry as reentrant, #6692), consumes the batch in queue order and acks each message.
//! A failure below the max leaves the rest of the batch un-acked: the broker blocks the
//! queue and redelivers after the invisible time with a higher reconsumeTimes. At the max
//! the message is sent back towards the DLQ (recorded as `SentToDlq`) and acked.

use super::receipt::{ack, receipt_of, record_deliveries};
use super::{
    draw_ms, wait_running, ClientCtx, PopReply, POP_DELAY_ON_ERROR, POP_DELAY_WHEN_EMPTY,
    POP_TIMEOUT,
};
use broker_core::{MessageExt, PopMessageRequest, Request};
use madsim::rand::Rng;
use reports::history::{ConsumeOutcome, EventKind};
use scenarios::model::ConsumerSpec;
use std::time::Duration;
use tokio::sync::watch;

/// `ConsumeMessagePopOrderlyService.getMaxReconsumeTimes`: −1 means `Integer.MAX_VALUE`.
pub fn effective_max_reconsume(configured: i32) -> u32 {
    if configured < 0 {
        i32::MAX as u32
    } else {
        configured as u32
    }
}

pub struct OrderlyConsumer {
    ctx: ClientCtx,
    spec: ConsumerSpec,
    max: u32,
}

impl OrderlyConsumer {
    pub fn new(ctx: ClientCtx, spec: ConsumerSpec) -> Self {
        let max = effective_max_reconsume(spec.max_reconsume_times);
        Self { ctx, spec, max }
    }

    pub async fn run(self, mut running: watch::Receiver<bool>) {
        self.ctx
            .rec
            .clock()
            .sleep_until(self.spec.start_at_ms)
            .await;
        super::record_started(&self.ctx, &self.spec.group, &running);
        let mut attempt = 0u64;
        loop {
            wait_running(&mut running).await;
            let attempt_id = format!("{}-{attempt}", self.ctx.name);
            let req = PopMessageRequest {
                consumer_group: self.spec.group.clone(),
                topic: self.spec.topic.clone(),
                queue_id: -1,
                max_msg_nums: self.spec.pop_batch_nums,
                invisible_time: self.spec.pop_invisible_time_ms,
                order: true,
                attempt_id: Some(attempt_id.clone()),
                init_mode: self.spec.init_mode,
            };
            let reply = PopReply::from(
                self.ctx
                    .rpc
                    .call(Request::PopMessage(req), POP_TIMEOUT)
                    .await,
            );
            match reply {
                PopReply::Found(pop) => {
                    attempt += 1;
                    record_deliveries(
                        &self.ctx,
                        &self.spec.group,
                        &pop.msgs,
                        Some(&attempt_id),
                        (pop.pop_time, pop.invisible_time),
                    );
                    self.consume_batch(pop.msgs).await;
                }
                PopReply::Empty => {
                    attempt += 1;
                    madsim::time::sleep(POP_DELAY_WHEN_EMPTY).await;
                }
                // No answer (or an error): retry with the same attemptId.
                PopReply::Failed => madsim::time::sleep(POP_DELAY_ON_ERROR).await,
            }
        }
    }

    fn is_pop_timeout(&self, msg: &MessageExt) -> bool {
        match receipt_of(msg) {
            Some((_, info)) => self.ctx.now().saturating_sub(info.pop_time) >= info.invisible_time,
            None => true,
        }
    }

    async fn consume_batch(&self, msgs: Vec<MessageExt>) {
        let group = self.spec.group.clone();
        for msg in msgs {
            if self.is_pop_timeout(&msg) {
                return;
            }
            self.ctx.record(EventKind::ListenerStarted {
                consumer: self.ctx.name.clone(),
                group: group.clone(),
                msg_id: msg.msg_id.clone(),
                reconsume_times: msg.reconsume_times,
            });
            madsim::time::sleep(Duration::from_millis(draw_ms(self.spec.consume_time_ms))).await;
            let failed =
                madsim::rand::thread_rng().gen_range(0..100u32) < self.spec.failure_percent;
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
            if timed_out {
                return;
            }
            if failed {
                if msg.reconsume_times < self.max {
                    // SUSPEND_CURRENT_QUEUE_A_MOMENT: stop here, keep order.
                    return;
                }
                // checkReconsumeTimes: at the max the message is sent back with the max set,
                // which the broker routes to the group's DLQ; the queue moves on.
                self.ctx.record(EventKind::SentToDlq {
                    consumer: self.ctx.name.clone(),
                    group: group.clone(),
                    msg_id: msg.msg_id.clone(),
                    dlq_topic: format!("%DLQ%{group}"),
                    reconsume_times: msg.reconsume_times,
                });
            }
            ack(&self.ctx, &group, &msg).await;
        }
    }
}
