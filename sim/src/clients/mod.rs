//! Client models, each a small state machine with an async loop on its own node, following
//! the upstream Java clients' decisions: the remoting client (`DefaultMQPushConsumerImpl`,
//! `ConsumeMessagePopConcurrentlyService`, `MQClientAPIImpl`, `MQClientAPIExt`,
//! `DefaultMQAdminExt`) and the gRPC clients of apache/rocketmq-clients (`PushConsumerImpl`,
//! `ProcessQueueImpl`, `SimpleConsumerImpl`), which talk to the proxy ([`crate::proxy`]).
//! Every decision is a pure function in [`decisions`]; the node code only does I/O. A
//! historical behaviour changes only the decision its upstream fix changed.

pub mod admin;
pub mod decisions;
pub mod grpc;
pub mod grpc_push;
pub mod grpc_simple;
pub mod offset;
pub mod producer;
pub mod push;
pub mod receipt;
pub mod scripted;

use crate::world::net::{CallError, RpcClient};
use crate::world::recorder::Recorder;
use broker_core::{Behaviours, Response};
use reports::history::RpcOutcome;
use std::time::Duration;

/// `DefaultMQProducer.sendMsgTimeout`.
pub const SEND_TIMEOUT: Duration = Duration::from_millis(3_000);
/// The scripted consumer's pop timeout: its pops do not long-poll (`pollTime` 0), so this
/// bounds only lost requests and responses.
pub const POP_TIMEOUT: Duration = Duration::from_millis(15_000);
/// `DefaultMQPushConsumerImpl.ASYNC_TIMEOUT`: ack and changeInvisibleTime.
pub const ASYNC_TIMEOUT: Duration = Duration::from_millis(3_000);
/// `RemoteBrokerOffsetStore.updateConsumeOffsetToBroker`'s sync timeout.
pub const OFFSET_SYNC_TIMEOUT: Duration = Duration::from_millis(5_000);
/// Admin and query calls.
pub const ADMIN_TIMEOUT: Duration = Duration::from_millis(5_000);
/// `pullTimeDelayMillsWhenException`: pause after a failed pop.
pub const POP_DELAY_ON_ERROR: Duration = Duration::from_millis(3_000);
/// `PULL_TIME_DELAY_MILLS_WHEN_CACHE_FLOW_CONTROL`.
pub const POP_DELAY_FLOW_CONTROL: Duration = Duration::from_millis(50);

/// What every client node carries: its name, its connection (to the broker, or for a gRPC
/// client, [`crate::world::net::GrpcClient`], to the proxy), the recorder and the run's
/// historical behaviours.
#[derive(Clone)]
pub struct ClientCtx<C = RpcClient> {
    pub name: String,
    pub rpc: C,
    pub rec: Recorder,
    pub behaviours: Behaviours,
}

impl<C> ClientCtx<C> {
    pub fn now(&self) -> broker_core::Millis {
        self.rec.clock().now_ms()
    }

    pub fn record(&self, kind: reports::history::EventKind) {
        self.rec.record(&self.name, kind);
    }
}

/// The history's view of an RPC's end.
pub fn outcome(result: &Result<Response, CallError>) -> RpcOutcome {
    match result {
        Ok(r) => RpcOutcome::Answered {
            code: r.code,
            remark: broker_core::Name::new(&r.remark),
        },
        Err(CallError::Timeout) => RpcOutcome::Timeout,
    }
}

/// Draws uniformly from `[min, max]` with the simulation's RNG.
pub fn draw_ms(range: scenarios::model::RangeMs) -> u64 {
    use madsim::rand::Rng;
    if range.max <= range.min {
        return range.min;
    }
    madsim::rand::thread_rng().gen_range(range.min..=range.max)
}

/// One listener run, the same for every consuming client model: `ListenerStarted`, the
/// consume time drawn from `spec.consume_time_ms` (plus, when the `push-slow-listener`
/// BUGGIFY hook fires, a stall of up to `stall_max`), a failure drawn with
/// `spec.failure_percent`, then `ListenerFinished` with `pop_timed_out()` asked at the end.
pub async fn run_listener<C>(
    ctx: &ClientCtx<C>,
    group: &str,
    spec: &scenarios::model::ConsumerSpec,
    msg: &broker_core::MessageExt,
    stall_max: broker_core::Millis,
    pop_timed_out: impl FnOnce() -> bool,
) -> reports::history::ConsumeOutcome {
    use madsim::rand::Rng;
    use reports::history::{ConsumeOutcome, EventKind};
    ctx.record(EventKind::ListenerStarted {
        consumer: broker_core::Name::new(&ctx.name),
        group: broker_core::Name::new(group),
        msg_id: broker_core::Name::new(&msg.msg_id),
        reconsume_times: msg.reconsume_times,
    });
    madsim::time::sleep(Duration::from_millis(draw_ms(spec.consume_time_ms))).await;
    if crate::buggify::buggify("push-slow-listener") {
        // A listener stuck up to the invisible time (GC, a slow downstream call).
        let extra = madsim::rand::thread_rng().gen_range(0..=stall_max);
        madsim::time::sleep(Duration::from_millis(extra)).await;
    }
    let failed = madsim::rand::thread_rng().gen_range(0..100u32) < spec.failure_percent;
    let outcome = if failed {
        ConsumeOutcome::Failure
    } else {
        ConsumeOutcome::Success
    };
    ctx.record(EventKind::ListenerFinished {
        consumer: broker_core::Name::new(&ctx.name),
        group: broker_core::Name::new(group),
        msg_id: broker_core::Name::new(&msg.msg_id),
        outcome,
        pop_timed_out: pop_timed_out(),
    });
    outcome
}

/// Waits while a consumer is stopped.
pub async fn wait_running(running: &mut tokio::sync::watch::Receiver<bool>) {
    while !*running.borrow_and_update() {
        if running.changed().await.is_err() {
            // The controller is gone (end of run): never resume.
            std::future::pending::<()>().await;
        }
    }
}

/// Records the run-start `ConsumerStarted` of a looping consumer, if it is running then.
pub fn record_started<C>(
    ctx: &ClientCtx<C>,
    group: &str,
    running: &tokio::sync::watch::Receiver<bool>,
) {
    if *running.borrow() {
        ctx.record(reports::history::EventKind::ConsumerStarted {
            consumer: broker_core::Name::new(&ctx.name),
            group: broker_core::Name::new(group),
        });
    }
}

/// What a pop response means to the client (`MQClientAPIImpl.processPopResponse` and the
/// push consumer's `PopCallback`).
#[derive(Debug)]
pub enum PopReply {
    /// FOUND with messages.
    Found(broker_core::PopResult),
    /// NO_NEW_MSG / POLLING_NOT_FOUND (`POLLING_TIMEOUT` or `PULL_NOT_FOUND`, or FOUND with
    /// nothing left after filtering): pop again at once (the broker held the request for
    /// its poll time).
    Empty,
    /// POLLING_FULL, another response code, or no answer: pop again after
    /// `pullTimeDelayMillsWhenException`.
    Failed,
}

impl PopReply {
    pub fn from(result: Result<Response, crate::world::net::CallError>) -> Self {
        use broker_core::{PopStatus, ResponseBody, ResponseCode};
        let Ok(resp) = result else {
            return PopReply::Failed;
        };
        match (resp.code, resp.body) {
            (ResponseCode::Success, ResponseBody::Pop(pop)) => match pop.status {
                PopStatus::Found if !pop.msgs.is_empty() => PopReply::Found(pop),
                PopStatus::PollingFull => PopReply::Failed,
                _ => PopReply::Empty,
            },
            (ResponseCode::PollingTimeout | ResponseCode::NoMessage, _) => PopReply::Empty,
            _ => PopReply::Failed,
        }
    }

    /// The pause before the next pop (`executePopPullRequestImmediately` or `…Later`).
    pub fn delay(&self) -> Option<Duration> {
        match self {
            PopReply::Found(_) | PopReply::Empty => None,
            PopReply::Failed => Some(POP_DELAY_ON_ERROR),
        }
    }
}
