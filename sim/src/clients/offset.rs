//! The offset client: `UPDATE_CONSUMER_OFFSET` three ways and `QUERY_CONSUMER_OFFSET`.
//!
//! - oneway (`updateConsumerOffsetOneway`): fire and forget; the caller assumes success.
//! - sync (`updateConsumerOffset`, invokeSync): SUCCESS returns, any other code or a timeout
//!   is an error.
//! - future (`MQClientAPIExt.updateConsumerOffsetAsync`, #8368): completes for every code,
//!   unless `offset-future-unmapped-response` restores the switch without a default, where
//!   only SUCCESS, SYSTEM_ERROR, SUBSCRIPTION_GROUP_NOT_EXIST and TOPIC_NOT_EXIST complete it.
//!
//! With `offset-update-oneway-only` (before #8368) there is no `updateConsumerOffsetAsync`:
//! a caller that wants a future (the proxy's `ClusterMessageService`) gets
//! `MQClientAPIExt.updateConsumerOffsetOneWay`'s, completed at once, so a future update goes
//! oneway. The synchronous `MQClientAPIImpl.updateConsumerOffset` (invokeSync) existed in
//! 5.3.0 and stays as it is.

use super::{outcome, ClientCtx, ADMIN_TIMEOUT, OFFSET_SYNC_TIMEOUT};
use broker_core::{
    Behaviour, QueryConsumerOffsetRequest, Request, ResponseCode, UpdateConsumerOffsetRequest,
};
use reports::history::{EventKind, OffsetUpdateMode, RpcOutcome};
use scenarios::model::UpdateMode;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc;

/// `updateConsumerOffsetAsync`'s invoke timeout.
pub const OFFSET_FUTURE_TIMEOUT: Duration = Duration::from_millis(3_000);

#[derive(Clone, Debug)]
pub enum OffsetCommand {
    Update {
        mode: UpdateMode,
        group: String,
        topic: String,
        queue: Option<i32>,
        offset: Option<i64>,
    },
    Query {
        group: String,
        topic: String,
        queue: u32,
    },
}

#[derive(Clone)]
pub struct OffsetClient {
    ctx: ClientCtx,
    calls: Arc<AtomicU64>,
}

impl OffsetClient {
    pub fn new(ctx: ClientCtx) -> Self {
        Self {
            ctx,
            calls: Arc::default(),
        }
    }

    /// Each command runs as its own caller, so a hung future blocks nothing else.
    pub async fn serve(self, mut commands: mpsc::UnboundedReceiver<OffsetCommand>) {
        while let Some(cmd) = commands.recv().await {
            let this = self.clone();
            crate::world::tasks::spawn(async move {
                match cmd {
                    OffsetCommand::Update {
                        mode,
                        group,
                        topic,
                        queue,
                        offset,
                    } => this.update(mode, group, topic, queue, offset).await,
                    OffsetCommand::Query {
                        group,
                        topic,
                        queue,
                    } => this.query(group, topic, queue).await,
                }
            });
        }
    }

    async fn update(
        &self,
        mode: UpdateMode,
        group: String,
        topic: String,
        queue: Option<i32>,
        offset: Option<i64>,
    ) {
        let call_id = self.calls.fetch_add(1, Ordering::Relaxed) + 1;
        let asked = match mode {
            UpdateMode::Oneway => OffsetUpdateMode::Oneway,
            UpdateMode::Sync => OffsetUpdateMode::Sync,
            UpdateMode::Future => OffsetUpdateMode::Future,
        };
        let (mode, downgraded_from) =
            // Before #8368 only the future API was missing: a sync update stays sync.
            if self.ctx.behaviours.is_on(Behaviour::OffsetUpdateOnewayOnly)
                && asked == OffsetUpdateMode::Future
            {
                (OffsetUpdateMode::Oneway, Some(asked))
            } else {
                (asked, None)
            };
        self.ctx.record(EventKind::OffsetUpdateStarted {
            client: broker_core::Name::new(&self.ctx.name),
            call_id,
            mode: mode.clone(),
            downgraded_from,
            group: broker_core::Name::new(&group),
            topic: broker_core::Name::new(&topic),
            queue_id: queue,
            offset,
        });
        let req = Request::UpdateConsumerOffset(UpdateConsumerOffsetRequest {
            consumer_group: group,
            topic,
            queue_id: queue,
            commit_offset: offset,
        });
        let completed = |outcome: Option<RpcOutcome>, caller_sees_success: bool| {
            EventKind::OffsetUpdateCompleted {
                client: broker_core::Name::new(&self.ctx.name),
                call_id,
                outcome,
                caller_sees_success,
            }
        };
        match mode {
            OffsetUpdateMode::Oneway => {
                self.ctx.rpc.oneway(req).await;
                self.ctx.record(completed(None, true));
            }
            OffsetUpdateMode::Sync => {
                let result = self.ctx.rpc.call(req, OFFSET_SYNC_TIMEOUT).await;
                let ok = matches!(&result, Ok(r) if r.code == ResponseCode::Success);
                self.ctx.record(completed(Some(outcome(&result)), ok));
            }
            OffsetUpdateMode::Future => {
                let result = self.ctx.rpc.call(req, OFFSET_FUTURE_TIMEOUT).await;
                if let Ok(r) = &result {
                    let mapped = matches!(
                        r.code,
                        ResponseCode::Success
                            | ResponseCode::SystemError
                            | ResponseCode::SubscriptionGroupNotExist
                            | ResponseCode::TopicNotExist
                    );
                    if !mapped
                        && self
                            .ctx
                            .behaviours
                            .is_on(Behaviour::OffsetFutureUnmappedResponse)
                    {
                        // The switch falls off its end: the future is never completed.
                        return;
                    }
                }
                let ok = matches!(&result, Ok(r) if r.code == ResponseCode::Success);
                self.ctx.record(completed(Some(outcome(&result)), ok));
            }
        }
    }

    /// `queryConsumerOffset`. The history has no event for a query's answer; the call still
    /// exercises the broker's read path (and its pending-reset lookup).
    async fn query(&self, group: String, topic: String, queue: u32) {
        let req = Request::QueryConsumerOffset(QueryConsumerOffsetRequest {
            consumer_group: group,
            topic,
            queue_id: queue,
            set_zero_if_not_found: true,
        });
        let _ = self.ctx.rpc.call(req, ADMIN_TIMEOUT).await;
    }
}
