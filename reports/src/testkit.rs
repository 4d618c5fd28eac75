//! A small builder for hand-made histories, so that each test reads like the schedule it
//! describes. Times are milliseconds; every helper records at the builder's current time
//! ([`H::at`]) and returns the index of the event it recorded, for witness assertions.

use crate::history::{
    ConsumeOutcome, ConsumerKind, ConsumerMeta, Event, EventKind, History, OffsetUpdateMode,
    RpcOutcome, RunMeta,
};
use broker_core::{
    BrokerEvent, BrokerSnapshot, CkRef, ExtraInfo, Millis, ReadFrom, ResponseCode,
    POP_ORDER_REVIVE_QUEUE,
};

/// The topic every helper uses unless told otherwise.
pub const T: &str = "TopicA";

/// A delivery the test can ack, nack or revive later.
#[derive(Clone, Debug)]
pub struct Rcpt {
    pub idx: usize,
    pub consumer: String,
    pub group: String,
    pub msg_id: String,
    pub receipt: String,
    /// The copy's topic (the retry topic for a retry copy), queue and offset.
    pub copy_topic: String,
    pub queue_id: u32,
    pub queue_offset: u64,
    pub reconsume_times: u32,
}

pub struct H {
    pub meta: RunMeta,
    pub events: Vec<Event>,
    pub final_state: BrokerSnapshot,
    now: Millis,
}

pub fn ok() -> RpcOutcome {
    RpcOutcome::Answered {
        code: ResponseCode::Success,
        remark: String::new().into(),
    }
}

pub fn answered(code: ResponseCode, remark: &str) -> RpcOutcome {
    RpcOutcome::Answered {
        code,
        remark: remark.to_owned().into(),
    }
}

impl H {
    /// One concurrent consumer `c1` in group `g1` on [`T`], maxReconsumeTimes −1 (16),
    /// invisible time 10 s; quiet from 0, ends at 0 (see [`H::end`]); no faults.
    pub fn new() -> Self {
        let mut h = Self {
            meta: RunMeta {
                scenario: "hand-made".into(),
                seed: 7,
                behaviours: vec![],
                fixes: vec![],
                release: None,
                consumers: vec![],
                quiet_from: 0,
                end_at: 0,
                faulty: false,
                offset_flush_interval: crate::history::DEFAULT_OFFSET_FLUSH_INTERVAL_MS,
            },
            events: vec![],
            final_state: BrokerSnapshot {
                running: true,
                ..Default::default()
            },
            now: 0,
        };
        h.consumer("c1", "g1", ConsumerKind::Concurrent, -1);
        h
    }

    /// A history with only orderly consumer `o1` in group `og`.
    pub fn orderly() -> Self {
        let mut h = Self::new();
        h.meta.consumers.clear();
        h.consumer("o1", "og", ConsumerKind::Orderly, -1);
        h
    }

    /// A history with only the gRPC FIFO push consumers `names` of `group`, retryMaxTimes
    /// `max` (−1: 16).
    pub fn grpc_fifo(names: &[&str], group: &str, max: i32) -> Self {
        let mut h = Self::new();
        h.meta.consumers.clear();
        for name in names {
            h.consumer(name, group, ConsumerKind::GrpcFifo, max);
        }
        h
    }

    /// Adds (or replaces) a consumer on [`T`].
    pub fn consumer(&mut self, name: &str, group: &str, kind: ConsumerKind, max: i32) -> &mut Self {
        self.meta.consumers.retain(|c| c.name != name);
        let effective = match (kind, max) {
            (ConsumerKind::Concurrent, -1) => 16,
            (ConsumerKind::Orderly, -1) => i32::MAX as u32,
            // maxAttempts = retryMaxTimes + 1 (−1: the group's 16).
            (k, -1) if k.is_grpc() => 17,
            (k, m) if k.is_grpc() => m as u32 + 1,
            (_, m) => m as u32,
        };
        self.meta.consumers.push(ConsumerMeta {
            name: name.into(),
            group: group.into(),
            topic: T.into(),
            kind,
            max_reconsume_times: max,
            effective_max_reconsume_times: effective,
            pop_invisible_time: 10_000,
        });
        self
    }

    pub fn at(&mut self, t: Millis) -> &mut Self {
        self.now = t;
        self
    }

    /// Quiet period from `quiet_from`, run ends at `end_at`.
    pub fn end(&mut self, quiet_from: Millis, end_at: Millis) -> &mut Self {
        self.meta.quiet_from = quiet_from;
        self.meta.end_at = end_at;
        self
    }

    pub fn faulty(&mut self) -> &mut Self {
        self.meta.faulty = true;
        self
    }

    pub fn push(&mut self, node: &str, kind: EventKind) -> usize {
        self.events.push(Event {
            at: self.now,
            node: node.into(),
            kind,
        });
        self.events.len() - 1
    }

    pub fn broker(&mut self, e: BrokerEvent) -> usize {
        self.push("broker", EventKind::Broker(e))
    }

    fn group_of(&self, consumer: &str) -> String {
        self.meta
            .consumers
            .iter()
            .find(|c| c.name == consumer)
            .map(|c| c.group.clone())
            .unwrap_or_else(|| "g1".into())
    }

    fn is_orderly(&self, consumer: &str) -> bool {
        self.meta
            .consumers
            .iter()
            .any(|c| c.name == consumer && c.kind.is_fifo())
    }

    fn invisible_of(&self, consumer: &str) -> Millis {
        self.meta
            .consumers
            .iter()
            .find(|c| c.name == consumer)
            .map_or(10_000, |c| c.pop_invisible_time)
    }

    /// A send of `msg` to queue `q` of [`T`] that timed out (it may still have been stored).
    pub fn produce_failed(&mut self, msg: &str, q: u32) -> usize {
        self.push(
            "producer",
            EventKind::ProduceFailed {
                producer: "p1".into(),
                msg_id: msg.into(),
                topic: T.into(),
                queue_id: q,
                reason: "timeout".into(),
            },
        )
    }

    pub fn produce(&mut self, msg: &str, q: u32, off: u64) -> usize {
        self.push(
            "producer",
            EventKind::Produced {
                producer: "p1".into(),
                msg_id: msg.into(),
                topic: T.into(),
                queue_id: q,
                queue_offset: off,
            },
        )
    }

    /// `consumer` pops `msg` from `T` queue `q` at offset `off` (orderly if the consumer is).
    pub fn pop(&mut self, consumer: &str, msg: &str, q: u32, off: u64) -> Rcpt {
        self.deliver(consumer, msg, None, q, off, 0, None, off)
    }

    /// One pop of `msgs` (message, offset; ascending) from queue `q`, with the broker's
    /// record of it first: an orderly consumer's pop commits the batch start
    /// (`PopMessageProcessor.orderly`), any other's buffers one CK for the batch. Every
    /// handle names the batch start.
    pub fn pop_batch(&mut self, consumer: &str, msgs: &[(&str, u64)], q: u32) -> Vec<Rcpt> {
        let start = msgs.first().map_or(0, |m| m.1);
        let group = self.group_of(consumer);
        if self.is_orderly(consumer) {
            self.commit(&group, q, start as i64, "PopMessageProcessor.orderly");
            let pop_time = self.now;
            self.pop_read(
                &group,
                q,
                pop_time,
                start,
                msgs.len() as u32,
                true,
                ReadFrom::CommitOffset,
            );
        } else {
            let ck = CkRef {
                topic: T.into(),
                group: group.into(),
                queue_id: q,
                start_offset: start,
                pop_time: self.now,
                invisible_time: self.invisible_of(consumer),
                num: msgs.len() as u32,
                broker_name: "broker-a".into(),
            };
            let at = self.now;
            self.broker(BrokerEvent::CkBuffered { at, ck: ck.into() });
        }
        msgs.iter()
            .map(|(m, off)| self.deliver(consumer, m, None, q, *off, 0, None, start))
            .collect()
    }

    /// The pop CK a delivery's handle names, buffered now (`CkBuffered`), for one message.
    pub fn pop_ck(&mut self, r: &Rcpt) -> usize {
        let ck = self.ck_of(r);
        let at = self.now;
        self.broker(BrokerEvent::CkBuffered { at, ck: ck.into() })
    }

    pub fn started(&mut self, consumer: &str) -> usize {
        let group = self.group_of(consumer);
        self.push(
            consumer,
            EventKind::ConsumerStarted {
                consumer: consumer.into(),
                group: group.into(),
            },
        )
    }

    pub fn stopped(&mut self, consumer: &str) -> usize {
        let group = self.group_of(consumer);
        self.push(
            consumer,
            EventKind::ConsumerStopped {
                consumer: consumer.into(),
                group: group.into(),
            },
        )
    }

    /// Like [`H::pop`], but the broker served the pop at `served` and the answer reaches
    /// the consumer now (events recorded in between happened after the pop).
    pub fn pop_served_at(
        &mut self,
        consumer: &str,
        msg: &str,
        q: u32,
        off: u64,
        served: Millis,
    ) -> Rcpt {
        self.pop_of_batch_served_at(consumer, msg, q, off, off, served)
    }

    /// Like [`H::pop_served_at`], for a message of a batch whose handle names the batch
    /// start `start` (the offset the pop read from).
    pub fn pop_of_batch_served_at(
        &mut self,
        consumer: &str,
        msg: &str,
        q: u32,
        off: u64,
        start: u64,
        served: Millis,
    ) -> Rcpt {
        self.served_at(consumer, msg, (q, off, start), None, served)
    }

    /// [`H::pop_served_at`] of an orderly pop with an explicit attemptId.
    pub fn pop_attempt_served_at(
        &mut self,
        consumer: &str,
        msg: &str,
        q: u32,
        off: u64,
        attempt: &str,
        served: Millis,
    ) -> Rcpt {
        self.served_at(consumer, msg, (q, off, off), Some(attempt.into()), served)
    }

    /// A delivery recorded now of a pop served at `served`; `at` is (queue, offset, batch
    /// start).
    fn served_at(
        &mut self,
        consumer: &str,
        msg: &str,
        at: (u32, u64, u64),
        attempt_id: Option<String>,
        served: Millis,
    ) -> Rcpt {
        let (q, off, start) = at;
        let now = self.now;
        self.now = served;
        let r = self.deliver(consumer, msg, None, q, off, 0, attempt_id, start);
        self.now = now;
        self.events[r.idx].at = now;
        r
    }

    /// An orderly pop with an explicit attemptId.
    pub fn pop_attempt(
        &mut self,
        consumer: &str,
        msg: &str,
        q: u32,
        off: u64,
        attempt: &str,
    ) -> Rcpt {
        self.deliver(consumer, msg, None, q, off, 0, Some(attempt.into()), off)
    }

    /// `consumer` pops a retry copy of `msg` from the V1 retry topic at `retry_off`.
    pub fn pop_retry(&mut self, consumer: &str, msg: &str, retry_off: u64, reconsume: u32) -> Rcpt {
        let retry = format!("%RETRY%{}_{}", self.group_of(consumer), T);
        self.deliver(
            consumer,
            msg,
            Some(retry),
            0,
            retry_off,
            reconsume,
            None,
            retry_off,
        )
    }

    #[allow(clippy::too_many_arguments)]
    fn deliver(
        &mut self,
        consumer: &str,
        msg: &str,
        retry_topic: Option<String>,
        q: u32,
        off: u64,
        reconsume: u32,
        attempt_id: Option<String>,
        ck_start: u64,
    ) -> Rcpt {
        let orderly = self.is_orderly(consumer);
        let group = self.group_of(consumer);
        let invisible = self.invisible_of(consumer);
        let receipt = ExtraInfo {
            ck_queue_offset: ck_start,
            commit_log_offset: None,
            pop_time: self.now,
            invisible_time: invisible,
            revive_qid: if orderly { POP_ORDER_REVIVE_QUEUE } else { 0 },
            topic_type: u8::from(retry_topic.is_some()),
            broker_name: "broker-a".into(),
            queue_id: q,
            queue_offset: off,
        }
        .build();
        let idx = self.push(
            consumer,
            EventKind::Delivered {
                consumer: consumer.into(),
                group: group.clone().into(),
                msg_id: msg.into(),
                topic: T.into(),
                queue_id: q,
                queue_offset: off,
                retry_topic: retry_topic.as_deref().map(broker_core::Name::new),
                reconsume_times: reconsume,
                pop_time: self.now,
                invisible_time: invisible,
                receipt: receipt.clone().into(),
                orderly,
                attempt_id: attempt_id.map(broker_core::Name::from),
            },
        );
        Rcpt {
            idx,
            consumer: consumer.into(),
            group,
            msg_id: msg.into(),
            receipt,
            copy_topic: retry_topic.unwrap_or_else(|| T.into()),
            queue_id: q,
            queue_offset: off,
            reconsume_times: reconsume,
        }
    }

    pub fn listener(&mut self, r: &Rcpt) -> usize {
        self.push(
            &r.consumer.clone(),
            EventKind::ListenerStarted {
                consumer: r.consumer.clone().into(),
                group: r.group.clone().into(),
                msg_id: r.msg_id.clone().into(),
                reconsume_times: r.reconsume_times,
            },
        )
    }

    pub fn listener_done(&mut self, r: &Rcpt, outcome: ConsumeOutcome, timed_out: bool) -> usize {
        self.push(
            &r.consumer.clone(),
            EventKind::ListenerFinished {
                consumer: r.consumer.clone().into(),
                group: r.group.clone().into(),
                msg_id: r.msg_id.clone().into(),
                outcome,
                pop_timed_out: timed_out,
            },
        )
    }

    pub fn skip(&mut self, r: &Rcpt, reason: &str) -> usize {
        self.push(
            &r.consumer.clone(),
            EventKind::SkippedOnReceipt {
                consumer: r.consumer.clone().into(),
                group: r.group.clone().into(),
                msg_id: r.msg_id.clone().into(),
                reconsume_times: r.reconsume_times,
                reason: reason.into(),
            },
        )
    }

    pub fn dlq(&mut self, r: &Rcpt) -> usize {
        let dlq = format!("%DLQ%{}", r.group);
        self.push(
            &r.consumer.clone(),
            EventKind::SentToDlq {
                consumer: r.consumer.clone().into(),
                group: r.group.clone().into(),
                msg_id: r.msg_id.clone().into(),
                dlq_topic: dlq.into(),
                reconsume_times: r.reconsume_times,
            },
        )
    }

    /// The gRPC proxy's filter dead-letters `msg` of `group` out of a pop it made for
    /// `consumer` (`PopMessageResultFilterImpl`): a `SentToDlq` on the proxy's node.
    pub fn proxy_dead_letters(
        &mut self,
        consumer: &str,
        group: &str,
        msg: &str,
        reconsume_times: u32,
    ) -> usize {
        self.push(
            "proxy",
            EventKind::SentToDlq {
                consumer: consumer.into(),
                group: group.into(),
                msg_id: msg.into(),
                dlq_topic: format!("%DLQ%{group}").into(),
                reconsume_times,
            },
        )
    }

    /// The broker stores `r`'s message in the group's DLQ at `dlq_off`.
    pub fn dlq_written(&mut self, r: &Rcpt, dlq_off: u64) -> usize {
        self.push(
            "broker",
            EventKind::DlqWritten {
                group: r.group.clone().into(),
                msg_id: r.msg_id.clone().into(),
                origin_topic: T.into(),
                dlq_topic: format!("%DLQ%{}", r.group).into(),
                dlq_queue_offset: dlq_off,
                reconsume_times: r.reconsume_times,
            },
        )
    }

    /// AckSent then a `SUCCESS` AckResult at the same time; returns the result's index.
    pub fn ack(&mut self, r: &Rcpt) -> usize {
        self.ack_sent(r);
        self.ack_result(r, ok())
    }

    /// [`H::ack`] made by the gRPC proxy for `r`'s client, on the proxy's node.
    pub fn proxy_ack(&mut self, r: &Rcpt) -> usize {
        self.ack_sent_on("proxy", r);
        self.ack_result_on("proxy", r, ok())
    }

    pub fn ack_sent(&mut self, r: &Rcpt) -> usize {
        self.ack_sent_on(&r.consumer.clone(), r)
    }

    fn ack_sent_on(&mut self, node: &str, r: &Rcpt) -> usize {
        self.push(
            node,
            EventKind::AckSent {
                consumer: r.consumer.clone().into(),
                group: r.group.clone().into(),
                msg_id: r.msg_id.clone().into(),
                receipt: r.receipt.clone().into(),
            },
        )
    }

    pub fn ack_result(&mut self, r: &Rcpt, outcome: RpcOutcome) -> usize {
        self.ack_result_on(&r.consumer.clone(), r, outcome)
    }

    fn ack_result_on(&mut self, node: &str, r: &Rcpt, outcome: RpcOutcome) -> usize {
        self.push(
            node,
            EventKind::AckResult {
                consumer: r.consumer.clone().into(),
                group: r.group.clone().into(),
                msg_id: r.msg_id.clone().into(),
                receipt: r.receipt.clone().into(),
                outcome,
            },
        )
    }

    /// A changeInvisibleTime of `r` whose answer was lost (the broker may have applied it).
    pub fn change_invisible_lost(&mut self, r: &Rcpt, invisible: Millis) -> usize {
        self.push(
            &r.consumer.clone(),
            EventKind::ChangeInvisibleResult {
                consumer: r.consumer.clone().into(),
                group: r.group.clone().into(),
                msg_id: r.msg_id.clone().into(),
                receipt: r.receipt.clone().into(),
                invisible_time: invisible,
                new_receipt: None,
                outcome: RpcOutcome::Timeout,
            },
        )
    }

    /// A successful changeInvisibleTime: the returned receipt replaces `r`'s.
    pub fn change_invisible(&mut self, r: &Rcpt, invisible: Millis) -> Rcpt {
        self.change_invisible_on(&r.consumer.clone(), r, invisible)
    }

    /// The gRPC proxy's renewal of `r` for its client (a changeInvisibleTime on the proxy's
    /// node, then `HandleRenewed`; the client keeps `r`).
    pub fn proxy_renews(&mut self, r: &Rcpt, invisible: Millis) -> Rcpt {
        let new = self.proxy_changes(r, invisible);
        self.push(
            "proxy",
            EventKind::HandleRenewed {
                consumer: r.consumer.clone().into(),
                group: r.group.clone().into(),
                msg_id: r.msg_id.clone().into(),
                receipt: r.receipt.clone().into(),
                new_receipt: new.receipt.clone().into(),
            },
        );
        new
    }

    /// The gRPC proxy took the handle entry of `named` (the client's receipt) for a call, and
    /// found it put for another delivery `other` of the same queue and offset, whose latest
    /// handle `current` the call names. Records `HandleRedirected`; the call follows.
    pub fn proxy_redirects(&mut self, named: &Rcpt, other: &Rcpt, current: &Rcpt) -> usize {
        self.push(
            "proxy",
            EventKind::HandleRedirected {
                consumer: named.consumer.clone().into(),
                group: named.group.clone().into(),
                msg_id: named.msg_id.clone().into(),
                receipt: named.receipt.clone().into(),
                original: other.receipt.clone().into(),
                current: current.receipt.clone().into(),
            },
        )
    }

    /// The gRPC proxy's ack after a forward of `r`, refused before it was sent (expired).
    pub fn forward_ack_refused(&mut self, r: &Rcpt) -> usize {
        self.push(
            "proxy",
            EventKind::ForwardAckRefused {
                consumer: r.consumer.clone().into(),
                group: r.group.clone().into(),
                msg_id: r.msg_id.clone().into(),
                receipt: r.receipt.clone().into(),
                reason: "receipt handle is expired".into(),
            },
        )
    }

    /// A changeInvisibleTime of `r` the gRPC proxy made for its client without renewing it:
    /// a client's changeInvisibleDuration it relayed, or its own `STOP_RENEW`.
    pub fn proxy_changes(&mut self, r: &Rcpt, invisible: Millis) -> Rcpt {
        self.change_invisible_on("proxy", r, invisible)
    }

    fn change_invisible_on(&mut self, node: &str, r: &Rcpt, invisible: Millis) -> Rcpt {
        let orderly = self.is_orderly(&r.consumer);
        let mut info = ExtraInfo::parse(&r.receipt).expect("testkit receipts parse");
        if orderly {
            // Orderly keeps the original popTime; the invisible time is stretched instead.
            info.invisible_time = self.now + invisible - info.pop_time;
        } else {
            info.ck_queue_offset = r.queue_offset;
            info.pop_time = self.now;
            info.invisible_time = invisible;
        }
        let new_receipt = info.build();
        let idx = self.push(
            node,
            EventKind::ChangeInvisibleResult {
                consumer: r.consumer.clone().into(),
                group: r.group.clone().into(),
                msg_id: r.msg_id.clone().into(),
                receipt: r.receipt.clone().into(),
                invisible_time: invisible,
                new_receipt: Some(new_receipt.clone().into()),
                outcome: ok(),
            },
        );
        Rcpt {
            idx,
            receipt: new_receipt,
            ..r.clone()
        }
    }

    /// The CK a delivery came from, as the broker names it.
    pub fn ck_of(&self, r: &Rcpt) -> CkRef {
        let info = ExtraInfo::parse(&r.receipt).expect("testkit receipts parse");
        CkRef {
            topic: r.copy_topic.clone().into(),
            group: r.group.clone().into(),
            queue_id: r.queue_id,
            start_offset: info.ck_queue_offset,
            pop_time: info.pop_time,
            invisible_time: info.invisible_time,
            num: 1,
            broker_name: "broker-a".into(),
        }
    }

    /// The broker writes the CK `ck` to revive queue `revive_qid` at `revive_offset` now, as
    /// `reason` does (`CkWritten`).
    pub fn ck_written(
        &mut self,
        ck: CkRef,
        (revive_qid, revive_offset): (u32, u64),
        deliver_at: Millis,
        reason: &str,
    ) -> usize {
        let at = self.now;
        self.broker(BrokerEvent::CkWritten {
            at,
            ck: ck.into(),
            revive_qid,
            revive_offset,
            deliver_at,
            reason: reason.into(),
        })
    }

    /// The broker writes an ACK record now for `ack_offsets` of the CK `ck` (revive queue 0 at
    /// `revive_offset`, one ack, not a batch), as `reason` does.
    pub fn ack_written(
        &mut self,
        ck: &CkRef,
        ack_offsets: &[u64],
        revive_offset: u64,
        deliver_at: Millis,
        reason: &str,
    ) -> usize {
        let at = self.now;
        self.broker(BrokerEvent::AckWritten {
            at,
            topic: ck.topic.clone(),
            group: ck.group.clone(),
            queue_id: ck.queue_id,
            start_offset: ck.start_offset,
            pop_time: ck.pop_time,
            ack_offsets: ack_offsets.into(),
            broker_name: Some(ck.broker_name.clone()),
            revive_qid: 0,
            revive_offset,
            deliver_at,
            batch: false,
            reason: reason.into(),
        })
    }

    /// The broker revives `r`'s copy into the V1 retry topic at `retry_off`.
    pub fn revive(&mut self, r: &Rcpt, retry_off: u64, reconsume: u32) -> usize {
        let ck = self.ck_of(r);
        self.revive_to(
            r,
            ck,
            retry_off,
            reconsume,
            &format!("%RETRY%{}_{}", r.group, T),
        )
    }

    pub fn revive_to(
        &mut self,
        r: &Rcpt,
        ck: CkRef,
        retry_off: u64,
        reconsume: u32,
        retry_topic: &str,
    ) -> usize {
        let at = self.now;
        self.broker(BrokerEvent::Revived {
            at,
            group: r.group.clone().into(),
            topic: T.into(),
            msg_id: r.msg_id.clone().into(),
            ck: ck.into(),
            queue_offset: r.queue_offset,
            retry_topic: retry_topic.into(),
            retry_queue_offset: retry_off,
            reconsume_times: reconsume,
        })
    }

    /// A successful reset of `group`'s queue `q` on [`T`] to `x`: request, the broker's
    /// assignment, the answer. Returns the assignment's index.
    pub fn reset(&mut self, group: &str, q: u32, x: i64) -> usize {
        self.reset_request(group, q as i32, Some(x));
        let idx = self.reset_assigned(group, q, x);
        self.reset_result(group, q as i32, &[(q, x)]);
        idx
    }

    /// The broker's assignment of a reset of `group`'s queue `q` on [`T`] to `x`
    /// (`assignResetOffset`).
    pub fn reset_assigned(&mut self, group: &str, q: u32, x: i64) -> usize {
        let at = self.now;
        self.broker(BrokerEvent::ResetAssigned {
            at,
            group: group.into(),
            topic: T.into(),
            queue_id: q,
            offset: x,
            wrote_offset_table: true,
        })
    }

    /// The admin's successful answer to a reset of `group`'s queue `q` on [`T`] (−1: every
    /// queue), with the offsets the broker sent back.
    pub fn reset_result(&mut self, group: &str, q: i32, offsets: &[(u32, i64)]) -> usize {
        self.push(
            "admin",
            EventKind::ResetResult {
                client: "admin".into(),
                group: group.into(),
                topic: T.into(),
                queue_id: q,
                outcome: ok(),
                offsets: offsets.to_vec(),
            },
        )
    }

    /// The admin's reset of `group`'s queue `q` on [`T`] (−1: every queue) got no answer.
    pub fn reset_timeout(&mut self, group: &str, q: i32) -> usize {
        self.push(
            "admin",
            EventKind::ResetResult {
                client: "admin".into(),
                group: group.into(),
                topic: T.into(),
                queue_id: q,
                outcome: RpcOutcome::Timeout,
                offsets: Vec::new(),
            },
        )
    }

    pub fn reset_request(&mut self, group: &str, q: i32, x: Option<i64>) -> usize {
        self.push(
            "admin",
            EventKind::ResetRequested {
                client: "admin".into(),
                group: group.into(),
                topic: T.into(),
                queue_id: q,
                offset: x,
            },
        )
    }

    /// The broker's record that a pop of `group` (begun at `pop_time`) read `count`
    /// messages from `offset` of [`T`] queue `q` now, and why there.
    #[allow(clippy::too_many_arguments)]
    pub fn pop_read(
        &mut self,
        group: &str,
        q: u32,
        pop_time: Millis,
        offset: u64,
        count: u32,
        orderly: bool,
        from: ReadFrom,
    ) -> usize {
        self.pop_read_of(None, group, q, (pop_time, offset, count), orderly, from)
    }

    /// [`H::pop_read`] of a request with `attempt_id`; `read` is (popTime, offset, count).
    pub fn pop_read_of(
        &mut self,
        attempt_id: Option<&str>,
        group: &str,
        q: u32,
        read: (Millis, u64, u32),
        orderly: bool,
        from: ReadFrom,
    ) -> usize {
        let at = self.now;
        let (pop_time, offset, count) = read;
        self.broker(BrokerEvent::PopRead {
            at,
            group: group.into(),
            topic: T.into(),
            queue_id: q,
            pop_time,
            offset,
            count,
            orderly,
            from,
            attempt_id: attempt_id.map(broker_core::Name::new),
        })
    }

    pub fn reset_consumed(&mut self, group: &str, q: u32, x: i64) -> usize {
        let at = self.now;
        self.broker(BrokerEvent::ResetConsumed {
            at,
            group: group.into(),
            topic: T.into(),
            queue_id: q,
            offset: x,
        })
    }

    /// Retention deleted queue `q` of `T` below `min_offset` (`MessagesExpired`).
    pub fn expired(&mut self, q: u32, min_offset: u64) -> usize {
        let at = self.now;
        self.broker(BrokerEvent::MessagesExpired {
            at,
            topic: T.into(),
            queue_id: q,
            min_offset,
        })
    }

    pub fn commit(&mut self, group: &str, q: u32, offset: i64, reason: &str) -> usize {
        let at = self.now;
        self.broker(BrokerEvent::OffsetCommitted {
            at,
            group: group.into(),
            topic: T.into(),
            queue_id: q,
            offset,
            reason: reason.into(),
        })
    }

    /// An update started; a oneway one is the pre-#8368 client's, which had to send a
    /// sync update oneway (see [`H::update_started_chosen_oneway`] for a caller's own).
    pub fn update_started(
        &mut self,
        call: u64,
        mode: OffsetUpdateMode,
        group: &str,
        q: i32,
        offset: i64,
    ) -> usize {
        let downgraded_from = (mode == OffsetUpdateMode::Oneway).then_some(OffsetUpdateMode::Sync);
        self.update_started_as(call, mode, downgraded_from, group, q, offset)
    }

    /// A oneway update the caller chose (`updateConsumerOffsetOneway`).
    pub fn update_started_chosen_oneway(
        &mut self,
        call: u64,
        group: &str,
        q: i32,
        offset: i64,
    ) -> usize {
        self.update_started_as(call, OffsetUpdateMode::Oneway, None, group, q, offset)
    }

    fn update_started_as(
        &mut self,
        call: u64,
        mode: OffsetUpdateMode,
        downgraded_from: Option<OffsetUpdateMode>,
        group: &str,
        q: i32,
        offset: i64,
    ) -> usize {
        self.push(
            "offset-client",
            EventKind::OffsetUpdateStarted {
                client: "offset-client".into(),
                call_id: call,
                mode,
                downgraded_from,
                group: group.into(),
                topic: T.into(),
                queue_id: Some(q),
                offset: Some(offset),
            },
        )
    }

    pub fn update_completed(
        &mut self,
        call: u64,
        outcome: Option<RpcOutcome>,
        sees_success: bool,
    ) -> usize {
        self.push(
            "offset-client",
            EventKind::OffsetUpdateCompleted {
                client: "offset-client".into(),
                call_id: call,
                outcome,
                caller_sees_success: sees_success,
            },
        )
    }

    pub fn crash(&mut self) -> usize {
        self.stop(false)
    }

    /// A graceful shutdown (`shutdown` step): the broker drained and persisted first.
    pub fn shutdown(&mut self) -> usize {
        self.stop(true)
    }

    fn stop(&mut self, graceful: bool) -> usize {
        let at = self.now;
        self.final_state.running = false;
        self.broker(BrokerEvent::Crashed { at, graceful })
    }

    pub fn restart(&mut self) -> usize {
        let at = self.now;
        self.final_state.running = true;
        self.broker(BrokerEvent::Restarted { at })
    }

    pub fn persist(&mut self) -> usize {
        let at = self.now;
        self.broker(BrokerEvent::OffsetsPersisted { at })
    }

    pub fn persist_order_info(&mut self) -> usize {
        let at = self.now;
        self.broker(BrokerEvent::OrderInfoPersisted { at })
    }

    /// Sets `offsetTable[T@group][q]` in the final state (and in the persisted image).
    pub fn final_offset(&mut self, group: &str, q: u32, offset: i64) -> &mut Self {
        let key = format!("{T}@{group}");
        self.final_state
            .offset_table
            .entry(key.clone())
            .or_default()
            .insert(q, offset);
        self.final_state
            .persisted_offset_table
            .entry(key)
            .or_default()
            .insert(q, offset);
        self
    }

    pub fn build(&self) -> History {
        History {
            meta: self.meta.clone(),
            events: self.events.clone(),
            final_state: self.final_state.clone(),
        }
    }
}
