//! The scripted consumer: no loop of its own. It pops, acks and changes invisible time with
//! the remoting client API (`MQClientAPIImpl.popMessage`, `ackMessageAsync`,
//! `batchAckMessageAsync`, `changeInvisibleTimeAsync`) only when a timeline step says so,
//! holding the receipts of what it popped. Its pops do not long-poll (`pollTime` 0): the
//! broker answers at once, and the next step is not held up.

use super::receipt::{ack, batch_ack, change_invisible_time, record_deliveries};
use super::{ClientCtx, PopReply, POP_TIMEOUT};
use broker_core::{MessageExt, Millis, PopMessageRequest, Request};
use scenarios::model::ConsumerSpec;
use tokio::sync::mpsc;

/// A timeline step addressed to a scripted consumer.
#[derive(Clone, Debug)]
pub enum ScriptedCommand {
    Pop {
        max: u32,
        queue: Option<u32>,
        invisible_time: Option<Millis>,
    },
    Ack {
        count: Option<u32>,
        all_but: Option<u32>,
        batch: bool,
        /// Leave the oldest `skip` held receipts held; select from the rest.
        skip: u32,
    },
    ChangeInvisibleTime {
        invisible_time: Millis,
        count: Option<u32>,
    },
}

pub struct ScriptedConsumer {
    ctx: ClientCtx,
    spec: ConsumerSpec,
    held: Vec<MessageExt>,
}

impl ScriptedConsumer {
    pub fn new(ctx: ClientCtx, spec: ConsumerSpec) -> Self {
        Self {
            ctx,
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
                    queue,
                    invisible_time,
                } => self.pop(max, queue, invisible_time).await,
                ScriptedCommand::Ack {
                    count,
                    all_but,
                    batch,
                    skip,
                } => self.ack(skip, count, all_but, batch).await,
                ScriptedCommand::ChangeInvisibleTime {
                    invisible_time,
                    count,
                } => self.change_invisible_time(invisible_time, count).await,
            }
        }
    }

    async fn pop(&mut self, max: u32, queue: Option<u32>, invisible_time: Option<Millis>) {
        let req = PopMessageRequest {
            consumer_group: self.spec.group.clone(),
            topic: self.spec.topic.clone(),
            queue_id: queue.map_or(-1, |q| q as i32),
            max_msg_nums: max,
            invisible_time: invisible_time.unwrap_or(self.spec.pop_invisible_time_ms),
            order: false,
            attempt_id: None,
            init_mode: self.spec.init_mode,
            poll_time: 0,
            born_time: None,
            count_by_queue: false,
        };
        let reply = PopReply::from(
            self.ctx
                .rpc
                .call(Request::PopMessage(req), POP_TIMEOUT)
                .await,
        );
        if let PopReply::Found(pop) = reply {
            record_deliveries(
                &self.ctx,
                &self.spec.group,
                &pop.msgs,
                false,
                None,
                (pop.pop_time, pop.invisible_time),
            );
            self.held.extend(pop.msgs);
        }
    }

    /// Which held receipts a step selects, after the oldest `skip`: the first `count`, all
    /// but the last `all_but`, or all.
    fn select(&mut self, skip: u32, count: Option<u32>, all_but: Option<u32>) -> Vec<MessageExt> {
        select_held(&mut self.held, skip, count, all_but)
    }

    async fn ack(&mut self, skip: u32, count: Option<u32>, all_but: Option<u32>, batch: bool) {
        let chosen = self.select(skip, count, all_but);
        if batch {
            batch_ack(&self.ctx, &self.spec.group, &self.spec.topic, &chosen).await;
        } else {
            for msg in &chosen {
                ack(&self.ctx, &self.spec.group, msg).await;
            }
        }
    }

    async fn change_invisible_time(&mut self, invisible_time: Millis, count: Option<u32>) {
        let n = count.map_or(self.held.len(), |c| (c as usize).min(self.held.len()));
        for i in 0..n {
            let msg = self.held[i].clone();
            if let Some(new_receipt) =
                change_invisible_time(&self.ctx, &self.spec.group, &msg, invisible_time).await
            {
                self.held[i].pop_ck = Some(new_receipt);
            }
        }
    }
}

/// The held receipts an `ack` step selects: past the oldest `skip`, the first `count`, all
/// but the last `all_but`, or all; the selected ones leave `held`.
pub(crate) fn select_held(
    held: &mut Vec<MessageExt>,
    skip: u32,
    count: Option<u32>,
    all_but: Option<u32>,
) -> Vec<MessageExt> {
    let from = (skip as usize).min(held.len());
    let n = held.len() - from;
    let take = match (count, all_but) {
        (Some(c), _) => (c as usize).min(n),
        (None, Some(k)) => n.saturating_sub(k as usize),
        (None, None) => n,
    };
    held.drain(from..from + take).collect()
}

#[cfg(test)]
mod tests {
    use super::select_held;
    use broker_core::MessageExt;

    fn held(n: u64) -> Vec<MessageExt> {
        (0..n)
            .map(|o| MessageExt {
                topic: "t".into(),
                queue_id: 0,
                queue_offset: o,
                retry_topic: None,
                msg_id: format!("m{o}"),
                reconsume_times: 0,
                born_timestamp: 0,
                store_timestamp: 0,
                commit_log_offset: o,
                tags: None,
                pop_ck: None,
            })
            .collect()
    }

    fn offsets(v: &[MessageExt]) -> Vec<u64> {
        v.iter().map(|m| m.queue_offset).collect()
    }

    #[test]
    fn an_ack_step_can_leave_the_oldest_receipts_held() {
        let mut h = held(4);
        assert_eq!(offsets(&select_held(&mut h, 1, Some(2), None)), [1, 2]);
        assert_eq!(offsets(&h), [0, 3]);
        let mut h = held(4);
        assert_eq!(offsets(&select_held(&mut h, 1, None, Some(1))), [1, 2]);
        let mut h = held(4);
        assert_eq!(offsets(&select_held(&mut h, 0, None, None)), [0, 1, 2, 3]);
        let mut h = held(2);
        assert!(select_held(&mut h, 5, None, None).is_empty());
        assert_eq!(offsets(&h), [0, 1]);
    }
}
