//! The gRPC clients' calls to the proxy (`ConsumerImpl.receiveMessage`, `ackMessage`,
//! `changeInvisibleDuration`, `PushConsumerImpl.forwardMessageToDeadLetterQueue`), each
//! recorded as a `GrpcCall` when its answer (or deadline) comes. The proxy records what it
//! then asks the broker.

use super::decisions::{self, GRPC_REQUEST_TIMEOUT};
use super::ClientCtx;
use crate::proxy::protocol::*;
use crate::world::net::GrpcClient;
use broker_core::{MessageExt, Millis};
use reports::history::{EventKind, GrpcCode, GrpcOutcome, GrpcRpc};
use std::time::Duration;

/// A gRPC client's context: its connection to the proxy, its group and topic, and the
/// settings the proxy gave it (the group's FIFO flag, `maxAttempts`).
#[derive(Clone)]
pub struct GrpcCtx {
    pub ctx: ClientCtx<GrpcClient>,
    pub group: String,
    pub topic: String,
    pub fifo: bool,
    pub max_attempts: u32,
}

/// A call's end as the client sees it: the proxy's status, or no answer by the deadline.
pub type CallResult<T> = Result<T, GrpcOutcome>;

fn status_outcome(s: &Status) -> GrpcOutcome {
    GrpcOutcome::Status {
        code: s.code,
        message: broker_core::Name::new(&s.message),
    }
}

impl GrpcCtx {
    pub fn now(&self) -> Millis {
        self.ctx.now()
    }

    fn caller(&self) -> Caller {
        Caller {
            client_id: self.ctx.name.clone(),
            group: self.group.clone(),
        }
    }

    fn record(&self, rpc: GrpcRpc, msg_id: Option<&str>, outcome: GrpcOutcome, detail: String) {
        self.ctx.record(EventKind::GrpcCall {
            consumer: broker_core::Name::new(&self.ctx.name),
            group: broker_core::Name::new(&self.group),
            rpc,
            msg_id: msg_id.map(broker_core::Name::new),
            outcome,
            detail: detail.into(),
        });
    }

    async fn call(&self, req: GrpcRequest, timeout: Millis) -> Option<GrpcResponse> {
        self.ctx
            .rpc
            .call(req, Duration::from_millis(timeout))
            .await
            .ok()
    }

    /// `receiveMessage`: waits `await_duration` plus the request timeout. `Ok` with the
    /// messages (empty for `MESSAGE_NOT_FOUND`, which `StatusChecker` lets through for a
    /// receive), else the status or the timeout.
    pub async fn receive(
        &self,
        batch_size: u32,
        invisible_duration: Option<Millis>,
        auto_renew: bool,
        await_duration: Millis,
        attempt_id: Option<String>,
        queue_id: i32,
    ) -> CallResult<Vec<MessageExt>> {
        let timeout = decisions::receive_timeout(await_duration);
        let req = ReceiveMessageRequest {
            caller: self.caller(),
            topic: self.topic.clone(),
            queue_id,
            batch_size,
            invisible_duration,
            auto_renew,
            long_polling_timeout: Some(await_duration),
            attempt_id,
            fifo: self.fifo,
            max_attempts: self.max_attempts,
            deadline: self.now() + timeout,
        };
        let answer = self.call(GrpcRequest::ReceiveMessage(req), timeout).await;
        let (result, detail) = match answer {
            Some(GrpcResponse::ReceiveMessage(r)) => {
                let n = r.messages.len();
                let outcome = status_outcome(&r.status);
                let result = match r.status.code {
                    GrpcCode::Ok | GrpcCode::MessageNotFound => Ok(r.messages),
                    _ => Err(outcome.clone()),
                };
                (result, (outcome, format!("{n} message(s)")))
            }
            _ => (
                Err(GrpcOutcome::Timeout),
                (GrpcOutcome::Timeout, String::new()),
            ),
        };
        self.record(GrpcRpc::ReceiveMessage, None, detail.0, detail.1);
        result
    }

    /// `ackMessage` of one message (one entry).
    pub async fn ack(&self, msg: &MessageExt) -> CallResult<Status> {
        let req = AckMessageRequest {
            caller: self.caller(),
            topic: self.topic.clone(),
            entries: vec![AckEntry {
                msg_id: msg.msg_id.clone(),
                receipt_handle: msg.pop_ck.clone().unwrap_or_default(),
            }],
            deadline: self.now() + GRPC_REQUEST_TIMEOUT,
        };
        let answer = self
            .call(GrpcRequest::AckMessage(req), GRPC_REQUEST_TIMEOUT)
            .await;
        let result = match answer {
            Some(GrpcResponse::AckMessage(r)) => Ok(r.status),
            _ => Err(GrpcOutcome::Timeout),
        };
        let outcome = result.as_ref().map_or_else(Clone::clone, status_outcome);
        self.record(
            GrpcRpc::AckMessage,
            Some(&msg.msg_id),
            outcome,
            String::new(),
        );
        result
    }

    /// `changeInvisibleDuration`: the answer's status and receipt handle (empty unless OK).
    pub async fn change_invisible_duration(
        &self,
        msg: &MessageExt,
        invisible_duration: Millis,
    ) -> CallResult<(Status, String)> {
        let req = ChangeInvisibleDurationRequest {
            caller: self.caller(),
            topic: self.topic.clone(),
            msg_id: msg.msg_id.clone(),
            receipt_handle: msg.pop_ck.clone().unwrap_or_default(),
            invisible_duration,
            deadline: self.now() + GRPC_REQUEST_TIMEOUT,
        };
        let answer = self
            .call(
                GrpcRequest::ChangeInvisibleDuration(req),
                GRPC_REQUEST_TIMEOUT,
            )
            .await;
        let result = match answer {
            Some(GrpcResponse::ChangeInvisibleDuration(r)) => Ok((r.status, r.receipt_handle)),
            _ => Err(GrpcOutcome::Timeout),
        };
        let outcome = result
            .as_ref()
            .map_or_else(Clone::clone, |(s, _)| status_outcome(s));
        self.record(
            GrpcRpc::ChangeInvisibleDuration,
            Some(&msg.msg_id),
            outcome,
            format!("to {invisible_duration} ms"),
        );
        result
    }

    /// `forwardMessageToDeadLetterQueue`.
    pub async fn forward_to_dlq(&self, msg: &MessageExt, attempt: u32) -> CallResult<Status> {
        let req = ForwardMessageToDeadLetterQueueRequest {
            caller: self.caller(),
            topic: self.topic.clone(),
            msg_id: msg.msg_id.clone(),
            receipt_handle: msg.pop_ck.clone().unwrap_or_default(),
            delivery_attempt: attempt,
            max_delivery_attempts: self.max_attempts,
            deadline: self.now() + GRPC_REQUEST_TIMEOUT,
        };
        let answer = self
            .call(
                GrpcRequest::ForwardMessageToDeadLetterQueue(req),
                GRPC_REQUEST_TIMEOUT,
            )
            .await;
        let result = match answer {
            Some(GrpcResponse::ForwardMessageToDeadLetterQueue(s)) => Ok(s),
            _ => Err(GrpcOutcome::Timeout),
        };
        let outcome = result.as_ref().map_or_else(Clone::clone, status_outcome);
        self.record(
            GrpcRpc::ForwardMessageToDeadLetterQueue,
            Some(&msg.msg_id),
            outcome,
            String::new(),
        );
        result
    }
}
