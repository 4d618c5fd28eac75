//! The proxy (apache/rocketmq `proxy/`, cluster mode) as its own node between the gRPC
//! clients and the broker: it answers the clients' `ReceiveMessage`, `AckMessage`,
//! `ChangeInvisibleDuration` and `ForwardMessageToDeadLetterQueue` calls with remoting
//! requests to the broker, and renews the invisible time of messages a push consumer is
//! consuming.
//!
//! | call | upstream | what the proxy does |
//! |---|---|---|
//! | `ReceiveMessage` | `ReceiveMessageActivity`, `ConsumerProcessor.popMessage` | long-polling time and invisible time from the request (auto-renew: `defaultInvisibleTimeMills`), a `POP_MESSAGE` of every queue of the broker (`ReceiveMessageQueueSelector` picks the broker's acting queue, −1), `ConsumeInitMode.MAX`, the group's FIFO flag and the client's attemptId; each message's handle gets its commit log offset (`createHandle`); `PopMessageResultFilterImpl` forwards a message whose reconsumeTimes reached maxAttempts to the DLQ; with auto-renew the handles go to the receipt-handle processor |
//! | `AckMessage` | `AckMessageActivity` | the latest renewed handle (`removeReceiptHandle`), an expired one refused (`INVALID_RECEIPT_HANDLE`), then `ACK_MESSAGE` per entry, or with `enableBatchAck` one `BATCH_ACK_MESSAGE` |
//! | `ChangeInvisibleDuration` | `ChangeInvisibleDurationActivity` | the latest handle, then `CHANGE_MESSAGE_INVISIBLETIME`; the answer's handle (with the commit log offset) goes back |
//! | `ForwardMessageToDeadLetterQueue` | `ForwardMessageToDLQActivity`, `ProducerProcessor.forwardMessageToDeadLetterQueue` | `CONSUMER_SEND_MSG_BACK` with delay level −1 and max 0 (always the DLQ), then an ack of the handle |
//!
//! The receipt-handle processor (`ReceiptHandleProcessor`, `DefaultReceiptHandleManager`)
//! scans every `renewSchedulePeriodMillis` and renews a handle whose next-visible time is
//! within `renewAheadTimeMillis`, by `RenewStrategyPolicy` (1, 3, 5, 10, 30, 60 min), until
//! the message has been consumed for `renewMaxTimeMillis`. Not modelled: clients going
//! offline (`clearGroup`: no modelled client unregisters), message filters (subscriptions
//! are `*`), several brokers. A receive answered after the client's deadline fails to write
//! (`ReceiveMessageResponseStreamWriter.processThrowableWhenWriteMessage`): its messages are
//! made visible again in a second.
//!
//! The proxy records what it sends the broker on its own node, as a client would
//! (`AckSent`/`AckResult`, `ChangeInvisibleResult`, with the gRPC client as `consumer`), its
//! receive hop (`ProxyPopped`) and its DLQ decisions (`SentToDlq`).

pub mod decisions;
pub mod protocol;
pub mod receipt_handle;

use crate::clients::decisions::GRPC_REQUEST_TIMEOUT;
use crate::clients::outcome;
use crate::clients::receipt::batch_ack_body;
use crate::world::net::{CallError, Envelope, Reply, RpcClient, PROXY_PORT};
use crate::world::recorder::Recorder;
use broker_core::{
    keys, AckMessageRequest as BrokerAck, Behaviours, ChangeInvisibleTimeRequest,
    ConsumerSendMsgBackRequest, ExtraInfo, Fix, InitMode, Millis, PopMessageRequest, Request,
    Response, ResponseBody, ResponseCode,
};
use decisions::{FilterResult, RenewAction, DEFAULT_TIMEOUT_MILLS, NACK_INVISIBLE_TIME};
use madsim::net::Endpoint;
use protocol::*;
use receipt_handle::{MessageReceiptHandle, ReceiptHandles};
use reports::history::{EventKind, GrpcCode, RpcOutcome};
use scenarios::model::{ProxyConfig, ProxyMode};
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::Duration;

/// The node name of the proxy in histories and fault descriptions.
pub const PROXY_NODE: &str = "proxy";
/// The proxy's IP.
pub const PROXY_IP: IpAddr = IpAddr::V4(Ipv4Addr::new(10, 0, 0, 2));

/// The proxy's address for gRPC clients.
pub fn proxy_addr() -> SocketAddr {
    SocketAddr::new(PROXY_IP, PROXY_PORT)
}

fn ms(t: Millis) -> Duration {
    Duration::from_millis(t)
}

/// How a changeInvisibleTime to the broker ended, as the proxy sees it.
enum Changed {
    /// `AckStatus.OK`, with the new handle (the proxy's form).
    Ok(String),
    /// Answered, but not `SUCCESS` (`AckStatus.NO_EXIST`).
    NotOk,
    /// Refused before it was sent, or no answer.
    Failed(Status),
}

/// What a call did with the message's entry in the receipt-handle table.
enum Taken {
    /// Took it out (develop's `removeReceiptHandle`), if there was one.
    Removed(Option<MessageReceiptHandle>),
    /// Holds it, locked, until the call's answer (`call-holds-handle-entry`).
    Held(receipt_handle::Lease),
}

/// The proxy's state. Cheap to clone.
#[derive(Clone)]
pub struct Proxy {
    cfg: ProxyConfig,
    /// The proposed fix `dead-letter-acked-before-answer` (finding F25), read once here and
    /// used only in the filter's TO_DLQ branch of a receive.
    dead_letter_acked_before_answer: bool,
    /// The proposed fix `failed-ack-restores-handle` (finding F26), read once here and used
    /// only after an ack entry's answer.
    failed_ack_restores_handle: bool,
    /// The proposed fix `failed-forward-restores-handle` (finding F28), read once here and
    /// used only after a forward's answer.
    failed_forward_restores_handle: bool,
    /// The proposed fix `failed-change-restores-handle` (finding F29), read once here and
    /// used only after a changeInvisibleDuration's answer.
    failed_change_restores_handle: bool,
    /// The proposed fix `call-holds-handle-entry`, read once here and used only where a
    /// call takes the entry ([`Proxy::take_handle`]) and after its answer.
    call_holds_handle_entry: bool,
    /// The proposed fix `local-change-handle-from-request` (finding F33), read once here and
    /// used only where a changeInvisibleTime's answer becomes a handle, in local mode.
    local_change_handle_from_request: bool,
    rec: Recorder,
    broker: RpcClient,
    handles: ReceiptHandles,
}

impl Proxy {
    /// Serves on `ep` until the run ends; the renewal scan runs beside it.
    pub async fn run(cfg: ProxyConfig, fixes: &Behaviours, rec: Recorder, broker_addr: SocketAddr) {
        let broker = RpcClient::connect(PROXY_IP, broker_addr)
            .await
            .expect("the proxy binds its broker client");
        let ep = Endpoint::bind(proxy_addr())
            .await
            .expect("the proxy binds its gRPC port");
        let this = Proxy {
            cfg,
            dead_letter_acked_before_answer: fixes.has_fix(Fix::DeadLetterAckedBeforeAnswer),
            failed_ack_restores_handle: fixes.has_fix(Fix::FailedAckRestoresHandle),
            failed_forward_restores_handle: fixes.has_fix(Fix::FailedForwardRestoresHandle),
            failed_change_restores_handle: fixes.has_fix(Fix::FailedChangeRestoresHandle),
            call_holds_handle_entry: fixes.has_fix(Fix::CallHoldsHandleEntry),
            local_change_handle_from_request: fixes.has_fix(Fix::LocalChangeHandleFromRequest),
            rec,
            broker,
            handles: ReceiptHandles::new(fixes.has_fix(Fix::HandleKeyPerDelivery)),
        };
        let renewer = this.clone();
        madsim::task::spawn(async move { renewer.renew_loop().await });
        this.serve(ep).await;
    }

    fn now(&self) -> Millis {
        self.rec.clock().now_ms()
    }

    fn record(&self, kind: EventKind) {
        self.rec.record(PROXY_NODE, kind);
    }

    /// Accepts the clients' connections; each is served by its own task, every call on it by
    /// a task of its own (a gRPC server's executor).
    async fn serve(self, ep: Endpoint) {
        while let Ok((tx, rx, _from)) = ep.accept1().await {
            let this = self.clone();
            madsim::task::spawn(async move { this.connection(tx, rx).await });
        }
    }

    async fn connection(self, tx: madsim::net::Sender, mut rx: madsim::net::Receiver) {
        let tx = std::sync::Arc::new(tx);
        while let Ok(payload) = rx.recv().await {
            let Ok(envelope) = payload.downcast::<Envelope<GrpcRequest>>() else {
                continue;
            };
            let Envelope {
                id,
                oneway,
                request,
            } = *envelope;
            let (this, tx) = (self.clone(), tx.clone());
            madsim::task::spawn(async move {
                let response = this.handle(request).await;
                if !oneway {
                    let _ = tx.send(Box::new(Reply { id, response })).await;
                }
            });
        }
    }

    async fn handle(&self, request: GrpcRequest) -> GrpcResponse {
        match request {
            GrpcRequest::ReceiveMessage(r) => GrpcResponse::ReceiveMessage(self.receive(r).await),
            GrpcRequest::AckMessage(r) => GrpcResponse::AckMessage(self.ack(r).await),
            GrpcRequest::ChangeInvisibleDuration(r) => {
                GrpcResponse::ChangeInvisibleDuration(self.change_invisible_duration(r).await)
            }
            GrpcRequest::ForwardMessageToDeadLetterQueue(r) => {
                GrpcResponse::ForwardMessageToDeadLetterQueue(self.forward(r).await)
            }
        }
    }

    // -----------------------------------------------------------------------------------
    // ReceiveMessage

    /// `ReceiveMessageActivity.receiveMessage` → `ConsumerProcessor.popMessage`.
    async fn receive(&self, r: ReceiveMessageRequest) -> ReceiveMessageResponse {
        let fail = |status: Status| ReceiveMessageResponse {
            status,
            messages: Vec::new(),
        };
        let remaining = r.deadline.saturating_sub(self.now());
        let polling = match decisions::polling_time(
            r.long_polling_timeout,
            remaining,
            GRPC_REQUEST_TIMEOUT,
            &self.cfg,
        ) {
            Ok(t) => t,
            Err(s) => return fail(s),
        };
        let invisible = match decisions::receive_invisible_time(
            r.invisible_duration,
            r.auto_renew,
            &self.cfg,
        ) {
            Ok(t) => t,
            Err(s) => return fail(s),
        };
        let group = r.caller.group.clone();
        let pop = PopMessageRequest {
            consumer_group: group.clone(),
            topic: r.topic.clone(),
            queue_id: -1,
            max_msg_nums: decisions::pop_batch(r.batch_size),
            invisible_time: invisible,
            order: r.fifo,
            attempt_id: r.attempt_id.clone(),
            init_mode: InitMode::Max,
            poll_time: polling,
            born_time: None,
            // `LocalMessageService.popMessage` reads a FIFO message's count under its queue's
            // key only; the remoting client (cluster mode) tries its offset's key first.
            count_by_queue: self.cfg.proxy_mode == ProxyMode::Local,
        };
        let result = self
            .broker
            .call(Request::PopMessage(pop), ms(remaining))
            .await;
        let answer = outcome(&result);
        let (status, found) = match result {
            Err(CallError::Timeout) => (
                Status::new(GrpcCode::ProxyTimeout, "wait response from broker timeout"),
                Vec::new(),
            ),
            Ok(resp) => match (resp.code, resp.body) {
                (ResponseCode::Success, ResponseBody::Pop(p)) => (Status::ok(), p.msgs),
                (ResponseCode::PollingFull, _) => (
                    Status::new(GrpcCode::TooManyRequests, "polling full"),
                    Vec::new(),
                ),
                (ResponseCode::PollingTimeout | ResponseCode::NoMessage, _) => (
                    Status::new(GrpcCode::MessageNotFound, "no new message"),
                    Vec::new(),
                ),
                (code, _) => (
                    Status::new(decisions::grpc_code(code), resp.remark),
                    Vec::new(),
                ),
            },
        };
        // The proxy's handles, and the filter's verdict on each message.
        let mut keep = Vec::new();
        let mut to_dlq = Vec::new();
        for mut m in found {
            let Some(broker_handle) = m.pop_ck.clone() else {
                keep.push(m);
                continue;
            };
            let handle = decisions::create_handle(&broker_handle, m.commit_log_offset);
            m.pop_ck = Some(handle);
            match decisions::filter_message(m.reconsume_times, r.max_attempts) {
                FilterResult::Match => keep.push(m),
                FilterResult::ToDlq => to_dlq.push(m),
            }
        }
        self.record(EventKind::ProxyPopped {
            consumer: broker_core::Name::new(&r.caller.client_id),
            group: broker_core::Name::new(&group),
            topic: broker_core::Name::new(&r.topic),
            queue_id: -1,
            attempt_id: r.attempt_id.as_deref().map(broker_core::Name::new),
            found: (keep.len() + to_dlq.len()) as u32,
            to_dlq: to_dlq.len() as u32,
            outcome: answer,
        });
        let acked = self.dead_letter_acked_before_answer;
        let mut awaited = Vec::new();
        for m in to_dlq {
            self.record(EventKind::SentToDlq {
                consumer: broker_core::Name::new(&r.caller.client_id),
                group: broker_core::Name::new(&group),
                msg_id: broker_core::Name::new(&m.msg_id),
                dlq_topic: keys::dlq_topic(&group).into(),
                reconsume_times: m.reconsume_times,
            });
            // develop: `forwardMessageToDeadLetterQueue` is started and not awaited (the
            // task's handle is dropped, which detaches it), and its ack follows the send-back
            // on its own. The fix completes the pop result only once every forward and its
            // ack finished (their futures composed: each runs as its own task, as develop's
            // would, and the answer waits for all).
            let (this, caller, topic) = (self.clone(), r.caller.clone(), r.topic.clone());
            let handle = m.pop_ck.clone().unwrap_or_default();
            let forward = crate::world::tasks::spawn(async move {
                this.forward_to_dlq(&caller, &topic, &m.msg_id, &handle, acked)
                    .await;
            });
            if acked {
                awaited.push(forward);
            }
        }
        for forward in awaited {
            let _ = forward.await;
        }
        if !status.is_ok() {
            return fail(status);
        }
        if self.cfg.enable_proxy_auto_renew && r.auto_renew {
            let now = self.now();
            for m in &keep {
                let Some(handle) = m.pop_ck.clone() else {
                    continue;
                };
                let added = self.handles.add(
                    &r.caller.client_id,
                    MessageReceiptHandle {
                        group: group.clone(),
                        topic: r.topic.clone(),
                        msg_id: m.msg_id.clone(),
                        original: handle.clone(),
                        current: handle,
                        reconsume_times: m.reconsume_times,
                        consume_timestamp: now,
                        renew_times: 0,
                        renew_retry_times: 0,
                    },
                );
                if added.await.is_err() {
                    return fail(Status::new(
                        GrpcCode::InternalServerError,
                        "try to put handle failed",
                    ));
                }
            }
        }
        if keep.is_empty() {
            return fail(Status::new(GrpcCode::MessageNotFound, "no match message"));
        }
        if self.now() >= r.deadline {
            // The client's deadline has passed: its call is cancelled, and writing each
            // message fails (`processThrowableWhenWriteMessage`): the proxy makes it visible
            // again in a second. The receipt-handle processor keeps the handles it added.
            for m in &keep {
                let (this, caller, topic, m) =
                    (self.clone(), r.caller.clone(), r.topic.clone(), m.clone());
                crate::world::tasks::spawn(async move {
                    let handle = m.pop_ck.clone().unwrap_or_default();
                    this.change_at_broker(&caller, &topic, &m.msg_id, &handle, NACK_INVISIBLE_TIME)
                        .await;
                });
            }
        }
        ReceiveMessageResponse {
            status: Status::ok(),
            messages: keep,
        }
    }

    // -----------------------------------------------------------------------------------
    // Ack, changeInvisibleDuration, forward to DLQ

    /// `getHandleString`: the latest handle the receipt-handle processor holds for the
    /// entry, else the client's, with the entry it took out (`removeReceiptHandle`), if any,
    /// or with the proposed fix `call-holds-handle-entry` the entry locked for the call.
    /// `held` are the (message, handle)s this call already holds: another of the same entry
    /// finds none (as develop's second remove would) instead of waiting for its own lock.
    /// `Err` when the entry's lock could not be had in time.
    async fn take_handle(
        &self,
        caller: &Caller,
        msg_id: &str,
        handle: &str,
        held: &[(&str, &str)],
    ) -> Result<(String, Taken), Status> {
        let refused = || {
            Status::new(
                GrpcCode::InternalServerError,
                "try to remove and get handle failed",
            )
        };
        if !self.call_holds_handle_entry {
            let removed = (self.handles)
                .remove(&caller.client_id, &caller.group, msg_id, handle)
                .await
                .map_err(|()| refused())?;
            if let Some(h) = &removed {
                self.note_redirect(caller, handle, h);
            }
            let current = removed.as_ref().map_or(handle, |h| &h.current).to_owned();
            return Ok((current, Taken::Removed(removed)));
        }
        let same = |(m, h): &(&str, &str)| *m == msg_id && self.handles.same_entry(m, h, handle);
        if held.iter().any(same) {
            return Ok((handle.to_owned(), Taken::Removed(None)));
        }
        let lease = (self.handles)
            .lock_entry(&caller.client_id, &caller.group, msg_id, handle)
            .await
            .map_err(|()| refused())?;
        Ok(match lease {
            Some(l) => {
                self.note_redirect(caller, handle, &l.handle);
                (l.handle.current.clone(), Taken::Held(l))
            }
            None => (handle.to_owned(), Taken::Removed(None)),
        })
    }

    /// Records a call whose entry was put for another delivery than the one the client
    /// names (`ReceiptHandleGroup.put` replaced it: equal `HandleKey`), so the call goes out
    /// with that delivery's handle.
    fn note_redirect(&self, caller: &Caller, handle: &str, entry: &MessageReceiptHandle) {
        if entry.original != handle {
            self.record(EventKind::HandleRedirected {
                consumer: broker_core::Name::new(&caller.client_id),
                group: broker_core::Name::new(&caller.group),
                msg_id: broker_core::Name::new(&entry.msg_id),
                receipt: broker_core::Name::new(handle),
                original: broker_core::Name::new(&entry.original),
                current: broker_core::Name::new(&entry.current),
            });
        }
    }

    /// After a call that took the entry out: develop leaves it gone whatever the answer, so
    /// the client's retry names its original handle. With the call's fix on (`fix`), a
    /// failed call puts the entry back, and the retry names the renewed handle (renewals go
    /// on meanwhile): `failed-ack-restores-handle` (finding F26),
    /// `failed-change-restores-handle` (F29), `failed-forward-restores-handle` (F28). Not
    /// after `INVALID_RECEIPT_HANDLE` unless the client retries on it (`retried_on_invalid`:
    /// only the forward's retry does); it gives up on that, and the handle has expired.
    /// An entry the call held (`call-holds-handle-entry`) goes on success and stays on such
    /// a failure, unlocked.
    fn restore_after_failure(
        &self,
        fix: bool,
        caller: &Caller,
        taken: Taken,
        s: &Status,
        retried_on_invalid: bool,
    ) {
        let failed = match s.code {
            GrpcCode::Ok => false,
            GrpcCode::InvalidReceiptHandle => retried_on_invalid,
            _ => true,
        };
        match taken {
            Taken::Held(lease) if !failed => lease.remove(),
            Taken::Held(lease) => drop(lease),
            Taken::Removed(Some(h)) if fix && failed => {
                self.handles.restore(&caller.client_id, h);
            }
            Taken::Removed(_) => {}
        }
    }

    /// After an ack entry's answer ([`Proxy::restore_after_failure`]).
    fn after_ack_entry(&self, caller: &Caller, taken: Taken, s: &Status) {
        self.restore_after_failure(self.failed_ack_restores_handle, caller, taken, s, false);
    }

    /// `AckMessageActivity.ackMessage`: one by one, or in one batch.
    async fn ack(&self, r: AckMessageRequest) -> AckMessageResponse {
        let mut results = Vec::with_capacity(r.entries.len());
        if self.cfg.enable_batch_ack {
            let mut batch = Vec::new();
            let mut taken = Vec::new();
            for e in &r.entries {
                let held: Vec<(&str, &str)> = (taken.iter())
                    .map(|(te, _): &(AckEntry, Taken)| {
                        (te.msg_id.as_str(), te.receipt_handle.as_str())
                    })
                    .collect();
                match self
                    .take_handle(&r.caller, &e.msg_id, &e.receipt_handle, &held)
                    .await
                {
                    Ok((h, t)) => {
                        batch.push((e.clone(), h));
                        taken.push((e.clone(), t));
                    }
                    Err(s) => results.push((e.clone(), s)),
                }
            }
            // `batch_ack` answers the refused entries first: match the entries by value.
            for (e, s) in self.batch_ack(&r.caller, &r.topic, batch).await {
                let t = (taken.iter().position(|(te, _)| *te == e))
                    .map_or(Taken::Removed(None), |i| taken.swap_remove(i).1);
                self.after_ack_entry(&r.caller, t, &s);
                results.push((e, s));
            }
        } else {
            for e in &r.entries {
                let status = match self
                    .take_handle(&r.caller, &e.msg_id, &e.receipt_handle, &[])
                    .await
                {
                    Ok((h, t)) => {
                        let s = self.ack_to_broker(&r.caller, &r.topic, &e.msg_id, &h).await;
                        self.after_ack_entry(&r.caller, t, &s);
                        s
                    }
                    Err(s) => s,
                };
                results.push((e.clone(), status));
            }
        }
        let statuses: Vec<Status> = results.iter().map(|(_, s)| s.clone()).collect();
        AckMessageResponse {
            status: decisions::ack_response_status(&statuses),
            entries: results,
        }
    }

    /// `ConsumerProcessor.ackMessage`'s checks before any request: the handle parses
    /// (`ReceiptHandle.decode`) and has not expired (`validateReceiptHandle`).
    fn ack_handle(&self, handle: &str) -> Result<ExtraInfo, Status> {
        let Some(info) = ExtraInfo::parse(handle) else {
            return Err(Status::new(GrpcCode::InternalServerError, "Parse failed"));
        };
        if decisions::is_expired(&info, self.now()) {
            return Err(Status::new(
                GrpcCode::InvalidReceiptHandle,
                "receipt handle is expired",
            ));
        }
        Ok(info)
    }

    /// `ConsumerProcessor.ackMessage`: refuse an expired handle, else `ACK_MESSAGE`.
    async fn ack_to_broker(
        &self,
        caller: &Caller,
        topic: &str,
        msg_id: &str,
        handle: &str,
    ) -> Status {
        let info = match self.ack_handle(handle) {
            Ok(info) => info,
            Err(s) => return s,
        };
        let group = &caller.group;
        self.record(EventKind::AckSent {
            consumer: broker_core::Name::new(&caller.client_id),
            group: broker_core::Name::new(group),
            msg_id: broker_core::Name::new(msg_id),
            receipt: broker_core::Name::new(handle),
        });
        let req = BrokerAck {
            consumer_group: group.clone(),
            topic: keys::real_topic(topic, group, info.topic_type),
            queue_id: info.queue_id,
            offset: info.queue_offset,
            extra_info: handle.to_owned(),
        };
        let result = self
            .broker
            .call(Request::AckMessage(req), ms(DEFAULT_TIMEOUT_MILLS))
            .await;
        self.record(EventKind::AckResult {
            consumer: broker_core::Name::new(&caller.client_id),
            group: broker_core::Name::new(group),
            msg_id: broker_core::Name::new(msg_id),
            receipt: broker_core::Name::new(handle),
            outcome: outcome(&result),
        });
        ack_status(&result)
    }

    /// `ConsumerProcessor.batchAckMessage`: expired handles are refused, the rest go to the
    /// broker as one `BATCH_ACK_MESSAGE` (`batchAckMessageAsync`), every entry answered with
    /// its result.
    async fn batch_ack(
        &self,
        caller: &Caller,
        topic: &str,
        batch: Vec<(AckEntry, String)>,
    ) -> Vec<(AckEntry, Status)> {
        let now = self.now();
        let mut out = Vec::new();
        let mut send = Vec::new();
        for (e, h) in batch {
            match ExtraInfo::parse(&h) {
                None => out.push((
                    e,
                    Status::new(GrpcCode::InternalServerError, "Parse failed"),
                )),
                Some(info) if decisions::is_expired(&info, now) => out.push((
                    e,
                    Status::new(GrpcCode::InvalidReceiptHandle, "receipt handle is expired"),
                )),
                Some(info) => send.push((e, h, info)),
            }
        }
        if send.is_empty() {
            return out;
        }
        for (e, h, _) in &send {
            self.record(EventKind::AckSent {
                consumer: broker_core::Name::new(&caller.client_id),
                group: broker_core::Name::new(&caller.group),
                msg_id: broker_core::Name::new(&e.msg_id),
                receipt: broker_core::Name::new(h),
            });
        }
        let infos: Vec<ExtraInfo> = send.iter().map(|(_, _, i)| i.clone()).collect();
        let body = batch_ack_body(&caller.group, topic, &infos);
        let result = self
            .broker
            .call(Request::BatchAckMessage(body), ms(DEFAULT_TIMEOUT_MILLS))
            .await;
        let answer = outcome(&result);
        let status = ack_status(&result);
        for (e, h, _) in send {
            self.record(EventKind::AckResult {
                consumer: broker_core::Name::new(&caller.client_id),
                group: broker_core::Name::new(&caller.group),
                msg_id: broker_core::Name::new(&e.msg_id),
                receipt: h.into(),
                outcome: answer.clone(),
            });
            out.push((e, status.clone()));
        }
        out
    }

    /// `ChangeInvisibleDurationActivity.changeInvisibleDuration`.
    async fn change_invisible_duration(
        &self,
        r: ChangeInvisibleDurationRequest,
    ) -> ChangeInvisibleDurationResponse {
        let fail = |status| ChangeInvisibleDurationResponse {
            status,
            receipt_handle: String::new(),
        };
        if let Err(s) = decisions::validate_invisible_time(r.invisible_duration, 0, &self.cfg) {
            return fail(s);
        }
        let (handle, taken) = match self
            .take_handle(&r.caller, &r.msg_id, &r.receipt_handle, &[])
            .await
        {
            Ok(h) => h,
            Err(s) => return fail(s),
        };
        let response = match self
            .change_at_broker(
                &r.caller,
                &r.topic,
                &r.msg_id,
                &handle,
                r.invisible_duration,
            )
            .await
        {
            Changed::Ok(new) => ChangeInvisibleDurationResponse {
                status: Status::ok(),
                receipt_handle: new,
            },
            Changed::NotOk => fail(Status::new(
                GrpcCode::InternalServerError,
                "changeInvisibleDuration failed: status is abnormal",
            )),
            Changed::Failed(s) => fail(s),
        };
        let fix = self.failed_change_restores_handle;
        self.restore_after_failure(fix, &r.caller, taken, &response.status, false);
        response
    }

    /// `ConsumerProcessor.changeInvisibleTime`: refuse an expired handle, else
    /// `CHANGE_MESSAGE_INVISIBLETIME`; the new handle gets the commit log offset.
    async fn change_at_broker(
        &self,
        caller: &Caller,
        topic: &str,
        msg_id: &str,
        handle: &str,
        invisible_time: Millis,
    ) -> Changed {
        let Some(info) = ExtraInfo::parse(handle) else {
            return Changed::Failed(Status::new(GrpcCode::InternalServerError, "Parse failed"));
        };
        if decisions::is_expired(&info, self.now()) {
            return Changed::Failed(Status::new(
                GrpcCode::InvalidReceiptHandle,
                "receipt handle is expired",
            ));
        }
        let group = &caller.group;
        let req = ChangeInvisibleTimeRequest {
            consumer_group: group.clone(),
            topic: keys::real_topic(topic, group, info.topic_type),
            queue_id: info.queue_id,
            offset: info.queue_offset,
            extra_info: handle.to_owned(),
            invisible_time,
        };
        let result = self
            .broker
            .call(Request::ChangeInvisibleTime(req), ms(DEFAULT_TIMEOUT_MILLS))
            .await;
        let new = match &result {
            Ok(r) if r.code == ResponseCode::Success => match &r.body {
                ResponseBody::ChangeInvisibleTime {
                    extra_info,
                    pop_time,
                    invisible_time,
                    revive_qid,
                } => {
                    let answered = match self.cfg.proxy_mode {
                        ProxyMode::Local if !self.local_change_handle_from_request => {
                            decisions::local_changed_handle(
                                &info,
                                *pop_time,
                                *invisible_time,
                                *revive_qid,
                            )
                        }
                        _ => extra_info.clone(),
                    };
                    Some(decisions::create_handle(
                        &answered,
                        info.commit_log_offset.unwrap_or(0),
                    ))
                }
                _ => None,
            },
            _ => None,
        };
        self.record(EventKind::ChangeInvisibleResult {
            consumer: broker_core::Name::new(&caller.client_id),
            group: broker_core::Name::new(group),
            msg_id: broker_core::Name::new(msg_id),
            receipt: broker_core::Name::new(handle),
            invisible_time,
            new_receipt: new.as_deref().map(broker_core::Name::new),
            outcome: outcome(&result),
        });
        match (result, new) {
            (_, Some(new)) => Changed::Ok(new),
            (Ok(_), None) => Changed::NotOk,
            (Err(_), _) => Changed::Failed(Status::new(
                GrpcCode::ProxyTimeout,
                "wait response from broker timeout",
            )),
        }
    }

    /// `ForwardMessageToDLQActivity.forwardMessageToDeadLetterQueue`: the entry
    /// `getHandleString` takes out stays out whatever the answer on develop, so the client's
    /// retry (on any failure) names its original handle; with the fix
    /// `failed-forward-restores-handle` (finding F28) a failed forward puts it back.
    async fn forward(&self, r: ForwardMessageToDeadLetterQueueRequest) -> Status {
        let (handle, taken) = match self
            .take_handle(&r.caller, &r.msg_id, &r.receipt_handle, &[])
            .await
        {
            Ok(h) => h,
            Err(s) => return s,
        };
        let s = (self.forward_to_dlq(&r.caller, &r.topic, &r.msg_id, &handle, false)).await;
        let fix = self.failed_forward_restores_handle;
        self.restore_after_failure(fix, &r.caller, taken, &s, true);
        s
    }

    /// `ProducerProcessor.forwardMessageToDeadLetterQueue`: a send-back to the DLQ (delay
    /// level −1, max 0) by the handle's commit log offset; once it succeeded, an ack of the
    /// handle, not waited for (`await_ack`: waited for, the proposed fix of finding F25 for
    /// the receive's filter).
    async fn forward_to_dlq(
        &self,
        caller: &Caller,
        topic: &str,
        msg_id: &str,
        handle: &str,
        await_ack: bool,
    ) -> Status {
        let Some(info) = ExtraInfo::parse(handle) else {
            return Status::new(GrpcCode::InternalServerError, "Parse failed");
        };
        let Some(offset) = info.commit_log_offset else {
            return Status::new(GrpcCode::InvalidReceiptHandle, "commit log offset is empty");
        };
        let req = ConsumerSendMsgBackRequest {
            group: caller.group.clone(),
            offset,
            delay_level: -1,
            origin_msg_id: msg_id.to_owned(),
            origin_topic: keys::real_topic(topic, &caller.group, info.topic_type),
            max_reconsume_times: Some(0),
        };
        let result = self
            .broker
            .call(Request::ConsumerSendMsgBack(req), ms(DEFAULT_TIMEOUT_MILLS))
            .await;
        match result {
            Ok(r) if r.code == ResponseCode::Success && await_ack => {
                self.ack_after_forward(caller, topic, msg_id, handle).await;
                Status::ok()
            }
            Ok(r) if r.code == ResponseCode::Success => {
                let (this, caller, topic, msg_id, handle) = (
                    self.clone(),
                    caller.clone(),
                    topic.to_owned(),
                    msg_id.to_owned(),
                    handle.to_owned(),
                );
                crate::world::tasks::spawn(async move {
                    this.ack_after_forward(&caller, &topic, &msg_id, &handle)
                        .await;
                });
                Status::ok()
            }
            Ok(r) => Status::new(decisions::grpc_code(r.code), r.remark),
            Err(_) => Status::new(GrpcCode::ProxyTimeout, "wait response from broker timeout"),
        }
    }

    /// The ack after a forward's send-back succeeded. Its result goes nowhere, so a refusal
    /// before any request (an expired handle: `ForwardMessageToDLQActivity`'s retry may name
    /// one, `forwardMessageToDeadLetterQueue` checks none) is recorded, its only trace.
    async fn ack_after_forward(&self, caller: &Caller, topic: &str, msg_id: &str, handle: &str) {
        if let Err(s) = self.ack_handle(handle) {
            self.record(EventKind::ForwardAckRefused {
                consumer: broker_core::Name::new(&caller.client_id),
                group: broker_core::Name::new(&caller.group),
                msg_id: broker_core::Name::new(msg_id),
                receipt: broker_core::Name::new(handle),
                reason: s.message.into(),
            });
            return;
        }
        self.ack_to_broker(caller, topic, msg_id, handle).await;
    }

    // -----------------------------------------------------------------------------------
    // The receipt-handle processor

    /// `scheduleRenewTask` every `renewSchedulePeriodMillis` (first at once).
    async fn renew_loop(self) {
        loop {
            let now = self.now();
            for (gk, h) in self.handles.scan() {
                let Some(info) = ExtraInfo::parse(&h.current) else {
                    continue;
                };
                if !decisions::needs_renew(&info, now, &self.cfg) {
                    continue;
                }
                let this = self.clone();
                crate::world::tasks::spawn(async move {
                    this.renew_message(gk, h.msg_id, h.original).await;
                });
            }
            madsim::time::sleep(ms(self.cfg.renew_schedule_period_millis)).await;
        }
    }

    /// `renewMessage` → `startRenewMessage`, under the entry's lock.
    async fn renew_message(&self, gk: (String, String), msg_id: String, original: String) {
        let Some(lease) = self.handles.lock_for_renew(&gk, &msg_id, &original).await else {
            return;
        };
        let h = lease.handle.clone();
        let caller = Caller {
            client_id: gk.0.clone(),
            group: gk.1.clone(),
        };
        let action = decisions::renew_action(
            self.now(),
            h.consume_timestamp,
            h.renew_times,
            h.renew_retry_times,
            h.reconsume_times,
            &self.cfg,
        );
        match action {
            RenewAction::Drop => lease.remove(),
            RenewAction::Renew(t) => {
                match self
                    .change_at_broker(&caller, &h.topic, &msg_id, &h.current, t)
                    .await
                {
                    Changed::Ok(new) => {
                        self.record(EventKind::HandleRenewed {
                            consumer: caller.client_id.as_str().into(),
                            group: caller.group.as_str().into(),
                            msg_id: msg_id.as_str().into(),
                            receipt: h.current.as_str().into(),
                            new_receipt: new.as_str().into(),
                        });
                        lease.update(MessageReceiptHandle {
                            current: new,
                            renew_retry_times: 0,
                            renew_times: h.renew_times + 1,
                            ..h
                        })
                    }
                    Changed::Failed(s) if decisions::renew_failure_retries(s.code) => {
                        lease.update(MessageReceiptHandle {
                            renew_retry_times: h.renew_retry_times + 1,
                            ..h
                        })
                    }
                    Changed::Failed(_) | Changed::NotOk => lease.remove(),
                }
            }
            RenewAction::StopRenew(t) => {
                self.change_at_broker(&caller, &h.topic, &msg_id, &h.current, t)
                    .await;
                lease.remove();
            }
        }
    }
}

/// `AckMessageActivity.convertToAckMessageResultEntry` for a broker answer.
fn ack_status(result: &Result<Response, CallError>) -> Status {
    match outcome(result) {
        RpcOutcome::Answered {
            code: ResponseCode::Success,
            ..
        } => Status::ok(),
        RpcOutcome::Answered { .. } => Status::new(
            GrpcCode::InternalServerError,
            "ack failed: status is abnormal",
        ),
        RpcOutcome::Timeout => {
            Status::new(GrpcCode::ProxyTimeout, "wait response from broker timeout")
        }
    }
}
