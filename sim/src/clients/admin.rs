//! The admin client (`DefaultMQAdminExt.resetOffset…`): asks the broker to reset a group's
//! consume offset (`INVOKE_BROKER_TO_RESET_OFFSET`, `isForce = true`).

use super::{outcome, ClientCtx, ADMIN_TIMEOUT};
use broker_core::{Request, ResetOffsetRequest, ResponseBody};
use reports::history::EventKind;
use tokio::sync::mpsc;

/// One reset: a queue to an explicit offset, or (`queue` −1) every queue by `timestamp`
/// (`resetOffsetInner` ignores the offset then; a timestamp < 0 means the max offset).
#[derive(Clone, Debug)]
pub struct ResetCommand {
    pub group: String,
    pub topic: String,
    pub queue: i32,
    pub offset: Option<i64>,
    pub timestamp: i64,
}

#[derive(Clone)]
pub struct AdminClient {
    ctx: ClientCtx,
}

impl AdminClient {
    pub fn new(ctx: ClientCtx) -> Self {
        Self { ctx }
    }

    pub async fn serve(self, mut commands: mpsc::UnboundedReceiver<ResetCommand>) {
        while let Some(cmd) = commands.recv().await {
            let this = self.clone();
            crate::world::tasks::spawn(async move { this.reset(cmd).await });
        }
    }

    async fn reset(&self, cmd: ResetCommand) {
        let ResetCommand {
            group,
            topic,
            queue,
            offset,
            timestamp,
        } = cmd;
        self.ctx.record(EventKind::ResetRequested {
            client: broker_core::Name::new(&self.ctx.name),
            group: broker_core::Name::new(&group),
            topic: broker_core::Name::new(&topic),
            queue_id: queue,
            offset,
        });
        let req = Request::ResetOffset(ResetOffsetRequest {
            group: group.clone(),
            topic: topic.clone(),
            queue_id: queue,
            offset,
            timestamp,
            is_force: true,
        });
        let result = self.ctx.rpc.call(req, ADMIN_TIMEOUT).await;
        let offsets = match &result {
            Ok(r) => match &r.body {
                ResponseBody::ResetOffset { offsets } => {
                    offsets.iter().map(|(q, o)| (*q, *o)).collect()
                }
                _ => Vec::new(),
            },
            Err(_) => Vec::new(),
        };
        self.ctx.record(EventKind::ResetResult {
            client: broker_core::Name::new(&self.ctx.name),
            group: group.into(),
            topic: topic.into(),
            queue_id: queue,
            outcome: outcome(&result),
            offsets,
        });
    }
}
