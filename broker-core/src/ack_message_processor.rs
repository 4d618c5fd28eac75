//! `AckMessageProcessor` (`broker/.../processor/AckMessageProcessor.java`): `ACK_MESSAGE`
//! and `BATCH_ACK_MESSAGE`. A non-orderly ack first tries to merge into its buffered CK
//! (`PopBufferMergeService.addAk`), else becomes an ACK record in the revive log, delivered
//! at the revive time. An orderly ack (reviveQid 999) goes to `ackOrderly`, or on the KV
//! path `ackOrderlyNew`; a KV non-orderly ack deletes its record (`ackAsync`). The answer is
//! `SUCCESS` whatever the revive-log append did: the response is created `SUCCESS` and
//! `handlePutMessageResult` only logs a failed put (and still decrements the in-flight
//! counter), so an ACK the store refused leaves its CK to be revived after a successful ack.
//! The proposed fix `ack-put-failure-answers-error` answers `SYSTEM_ERROR` instead.
//! A reviveQid beyond `reviveQueueNum` is not checked: the ACK is put to a revive queue no
//! `PopReviveService` reads.
//!
//! An ack is an operation of steps ([`AckOp`]): an orderly ack spins on its lock, and `addAk`
//! can be preempted between its guards and `markBitCAS`.

use crate::broker::Broker;
use crate::checkpoint::AckMsg;
use crate::config::Millis;
use crate::events::BrokerEvent;
use crate::inflight::OpId;
use crate::keys::{self, lock_key};
use crate::name::Name;
use crate::pop_buffer_merge_service::AkGuard;
use crate::protocol::{
    AckMessageRequest, BatchAck, BatchAckMessageRequest, ExtraInfo, Response, ResponseBody,
    ResponseCode, POP_ORDER_REVIVE_QUEUE,
};
use crate::Fix;
use std::collections::VecDeque;

/// What an ack names, once the receipt is parsed.
#[derive(Clone, Debug)]
pub(crate) struct AckTarget {
    pub group: String,
    pub topic: String,
    pub queue_id: u32,
    pub revive_qid: u32,
    pub start_offset: u64,
    pub pop_time: Millis,
    pub invisible_time: Millis,
}

impl AckTarget {
    /// The ack target a parsed receipt names.
    pub(crate) fn new(group: &str, topic: &str, queue_id: u32, extra: &ExtraInfo) -> Self {
        Self {
            group: group.to_owned(),
            topic: topic.to_owned(),
            queue_id,
            revive_qid: extra.revive_qid,
            start_offset: extra.ck_queue_offset,
            pop_time: extra.pop_time,
            invisible_time: extra.invisible_time,
        }
    }
}

/// One thing an ack request does, in order.
#[derive(Debug)]
enum AckUnit {
    /// `ackOrderly` (classic, queue lock) or `ackOrderlyNew` (KV, group@topic lock).
    Orderly {
        target: AckTarget,
        offset: u64,
        kv: bool,
    },
    /// `PopConsumerService.ackAsync`: delete the record.
    KvDelete { target: AckTarget, offset: u64 },
    /// `appendAck`: `addAk`, else an ACK record in the revive log.
    Append {
        ack: AckMsg,
        revive_qid: u32,
        revive_time: Millis,
    },
}

/// Where an ack unit stopped between two steps.
#[derive(Debug)]
enum AckStage {
    /// `addAk` found the buffered wrapper and passed its guards; `markBitCAS` is next.
    MarkBit(u64),
}

/// An `ACK_MESSAGE` / `BATCH_ACK_MESSAGE` in flight. Steps end where upstream can be
/// interleaved: an orderly ack spinning on its lock (`while (!tryLock) {}`), and `addAk`
/// between its guards and `markBitCAS` (the buffer scan may flush and drop the wrapper in
/// between).
#[derive(Debug)]
pub(crate) struct AckOp {
    units: VecDeque<AckUnit>,
    stage: Option<AckStage>,
    response: Response,
}

/// How an ack step ended.
pub(crate) enum AckStep {
    Done(Response),
    /// Another thread may run first.
    Yield,
    /// The lock is held: spin (try again later).
    Spin,
}

/// How the one-go `appendAck` of `ackOrigin` ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum AppendAck {
    /// Merged into the buffer or written to the revive log.
    Done,
    /// The ACK record's put failed (develop only logs it).
    AckPutFailed,
    /// Only with `refused-ack-stores-its-ck`: the put of the still-buffered CK failed, so no
    /// ACK record was written.
    CkPutFailed,
}

impl Broker {
    /// `ACK_MESSAGE`: topic, queue and `min ≤ offset ≤ max` checks, then `appendAck`. The
    /// topic is resolved from the receipt's topic type (`ExtraInfoUtil.getRealTopic`, which
    /// upstream's client applies before sending), so a client may name either.
    pub(crate) fn start_ack(&mut self, req: AckMessageRequest) -> Result<AckOp, Response> {
        let (extra, topic) = self.resolve_receipt(
            &req.topic,
            &req.consumer_group,
            req.queue_id,
            req.offset,
            &req.extra_info,
            true,
        )?;
        let target = AckTarget::new(&req.consumer_group, &topic, req.queue_id, &extra);
        let kv = self.config.pop_consumer_kv_service_enable;
        let unit = if extra.is_order() {
            AckUnit::Orderly {
                target,
                offset: req.offset,
                kv,
            }
        } else if kv {
            AckUnit::KvDelete {
                target,
                offset: req.offset,
            }
        } else {
            AckUnit::Append {
                ack: AckMsg {
                    ack_offsets: vec![req.offset],
                    start_offset: extra.ck_queue_offset,
                    consumer_group: Name::new(&req.consumer_group),
                    topic: Name::new(&topic),
                    queue_id: req.queue_id,
                    pop_time: extra.pop_time,
                    broker_name: Some(Name::new(&extra.broker_name)),
                    batch: false,
                },
                revive_qid: extra.revive_qid,
                revive_time: extra.pop_time + extra.invisible_time,
            }
        };
        Ok(AckOp {
            units: VecDeque::from([unit]),
            stage: None,
            response: Response::success(ResponseBody::None),
        })
    }

    /// One step of an ack: as many units as run without a wait.
    pub(crate) fn step_ack(&mut self, now: Millis, op: OpId, ack: &mut AckOp) -> AckStep {
        while let Some(unit) = ack.units.front() {
            let stage = ack.stage.take();
            let outcome = match (unit, stage) {
                (AckUnit::Orderly { target, offset, kv }, _) => {
                    let (target, offset, kv) = (target.clone(), *offset, *kv);
                    match self.ack_orderly(now, op, &target, offset, kv) {
                        None => return AckStep::Spin,
                        Some(r) => Some(r),
                    }
                }
                (AckUnit::KvDelete { target, offset }, _) => {
                    let (target, offset) = (target.clone(), *offset);
                    self.ack_kv_delete(&target, offset);
                    None
                }
                (AckUnit::Append { ack: msg, .. }, None) => match self.add_ak_guards(now, msg) {
                    AkGuard::Merge(id) => {
                        ack.stage = Some(AckStage::MarkBit(id));
                        return AckStep::Yield;
                    }
                    AkGuard::CkPutFailed => {
                        // Only with `refused-ack-stores-its-ck`: no ACK ahead of its CK.
                        let _ = ack.units.pop_front();
                        ack.response =
                            Response::error(ResponseCode::SystemError, "put ck msg error");
                        continue;
                    }
                    AkGuard::Refused => {
                        let Some(AckUnit::Append {
                            ack: msg,
                            revive_qid,
                            revive_time,
                        }) = ack.units.pop_front()
                        else {
                            unreachable!("front is an append")
                        };
                        // `handlePutMessageResult` decrements whatever the put did.
                        self.inflight.decrement(
                            &msg.topic,
                            &msg.consumer_group,
                            msg.pop_time,
                            msg.queue_id,
                            msg.ack_offsets.len() as u64,
                        );
                        let stored = self.put_ack_record(
                            now,
                            msg,
                            revive_qid,
                            revive_time,
                            "AckMessageProcessor.appendAck",
                        );
                        if !stored && self.behaviours.has_fix(Fix::AckPutFailureAnswersError) {
                            ack.response =
                                Response::error(ResponseCode::SystemError, "put ack msg error");
                        }
                        continue;
                    }
                },
                (AckUnit::Append { ack: msg, .. }, Some(AckStage::MarkBit(id))) => {
                    let msg = msg.clone();
                    self.add_ak_mark_bits(now, id, &msg);
                    self.inflight.decrement(
                        &msg.topic,
                        &msg.consumer_group,
                        msg.pop_time,
                        msg.queue_id,
                        msg.ack_offsets.len() as u64,
                    );
                    None
                }
            };
            if let Some(r) = outcome {
                if r.code != ResponseCode::Success {
                    ack.response = r;
                }
            }
            ack.units.pop_front();
        }
        AckStep::Done(std::mem::replace(
            &mut ack.response,
            Response::success(ResponseBody::None),
        ))
    }

    /// What `ACK_MESSAGE` and `CHANGE_MESSAGE_INVISIBLETIME` check before acting: the receipt
    /// parses, the real topic (from the receipt's topic type), queue and offset pass
    /// [`Self::check_ack_target`]. The reviveQid is not checked (upstream only tells 999 apart).
    pub(crate) fn resolve_receipt(
        &self,
        topic: &str,
        group: &str,
        queue_id: u32,
        offset: u64,
        extra_info: &str,
        max_inclusive: bool,
    ) -> Result<(ExtraInfo, String), Response> {
        let Some(extra) = ExtraInfo::parse(extra_info) else {
            return Err(Response::error(
                ResponseCode::InvalidParameter,
                "malformed extraInfo",
            ));
        };
        let topic = keys::real_topic(topic, group, extra.topic_type);
        if let Some(rejected) = self.check_ack_target(&topic, queue_id, offset, max_inclusive) {
            return Err(rejected);
        }
        Ok((extra, topic))
    }

    /// The topic / queue / offset checks of `ACK_MESSAGE` (`max_inclusive`) and
    /// `CHANGE_MESSAGE_INVISIBLETIME` (`offset < max` since #9186).
    pub(crate) fn check_ack_target(
        &self,
        topic: &str,
        queue_id: u32,
        offset: u64,
        max_inclusive: bool,
    ) -> Option<Response> {
        let Some(config) = self.store.topic_config(topic) else {
            return Some(Response::error(
                ResponseCode::TopicNotExist,
                format!("topic[{topic}] not exist, apply first please!"),
            ));
        };
        if queue_id >= config.read_queue_nums {
            return Some(Response::error(
                ResponseCode::MessageIllegal,
                format!("queueId[{queue_id}] is illegal, topic:[{topic}] topicConfig.readQueueNums:[{}]", config.read_queue_nums),
            ));
        }
        let (min, max) = (
            self.store.min_offset(topic, queue_id),
            self.store.max_offset(topic, queue_id),
        );
        let above = if max_inclusive {
            offset > max
        } else {
            offset >= max
        };
        if offset < min || above {
            return Some(Response::error(
                ResponseCode::NoMessage,
                format!(
                    "offset is illegal, key:{topic}@{queue_id}, commit:{offset}, store:{min}~{max}"
                ),
            ));
        }
        None
    }

    /// `appendAck` tail, in one go (`ackOrigin` of changeInvisibleTime): `addAk`, else an
    /// ACK record delivered at `deliver_at`. With the proposed fix
    /// `refused-ack-stores-its-ck`, a refusal whose put of the buffered CK failed writes no
    /// ACK record (it would overtake its CK), as `appendAck` proper does.
    pub(crate) fn append_ack(
        &mut self,
        now: Millis,
        ack: AckMsg,
        revive_qid: u32,
        deliver_at: Millis,
        reason: &str,
    ) -> AppendAck {
        match self.add_ak_guards(now, &ack) {
            AkGuard::Merge(id) => {
                self.add_ak_mark_bits(now, id, &ack);
                AppendAck::Done
            }
            AkGuard::CkPutFailed => AppendAck::CkPutFailed,
            AkGuard::Refused => {
                if self.put_ack_record(now, ack, revive_qid, deliver_at, reason) {
                    AppendAck::Done
                } else {
                    AppendAck::AckPutFailed
                }
            }
        }
    }

    /// `BATCH_ACK_MESSAGE`: each `BatchAck` becomes one `BatchAckMsg` (offsets outside
    /// [min, max] skipped) carrying the body's brokerName, or per-offset `ackOrderly`.
    pub(crate) fn start_batch_ack(
        &mut self,
        req: BatchAckMessageRequest,
    ) -> Result<AckOp, Response> {
        if req.acks.is_empty() {
            return Err(Response::error(ResponseCode::NoMessage, "empty batch ack"));
        }
        let mut units = VecDeque::new();
        for b in &req.acks {
            self.batch_ack_units(b, &req.broker_name, &mut units);
        }
        Ok(AckOp {
            units,
            stage: None,
            response: Response::success(ResponseBody::None),
        })
    }

    fn batch_ack_units(&self, b: &BatchAck, broker_name: &str, units: &mut VecDeque<AckUnit>) {
        let topic = keys::real_topic(&b.topic, &b.consumer_group, b.retry);
        // "Illegal topic or queue found when batch ack": logged only.
        if self.store.topic_config(&topic).is_none() {
            return;
        }
        let (min, max) = (
            self.store.min_offset(&topic, b.queue_id),
            self.store.max_offset(&topic, b.queue_id),
        );
        // `appendAck` skips an offset outside [min, max] and still answers SUCCESS; with the
        // proposed fix `orderly-batch-ack-below-min-commits` (read only here) an orderly ack
        // below the min offset goes to `ackOrderly` too.
        let below_min_ok = b.revive_queue_id == POP_ORDER_REVIVE_QUEUE
            && self.behaviours.has_fix(Fix::OrderlyBatchAckBelowMinCommits);
        let offsets: Vec<u64> = b
            .bit_set
            .iter()
            .map(|&i| b.start_offset + u64::from(i))
            .filter(|&o| (o >= min || below_min_ok) && o <= max)
            .collect();
        let target = AckTarget {
            group: b.consumer_group.clone(),
            topic: topic.clone(),
            queue_id: b.queue_id,
            revive_qid: b.revive_queue_id,
            start_offset: b.start_offset,
            pop_time: b.pop_time,
            invisible_time: b.invisible_time,
        };
        let kv = self.config.pop_consumer_kv_service_enable;
        if b.revive_queue_id == POP_ORDER_REVIVE_QUEUE {
            for &offset in &offsets {
                units.push_back(AckUnit::Orderly {
                    target: target.clone(),
                    offset,
                    kv,
                });
            }
            return;
        }
        if kv {
            for &offset in &offsets {
                units.push_back(AckUnit::KvDelete {
                    target: target.clone(),
                    offset,
                });
            }
            return;
        }
        if offsets.is_empty() {
            return;
        }
        units.push_back(AckUnit::Append {
            ack: AckMsg {
                ack_offsets: offsets,
                start_offset: b.start_offset,
                consumer_group: Name::new(&b.consumer_group),
                topic: Name::new(&topic),
                queue_id: b.queue_id,
                pop_time: b.pop_time,
                broker_name: Some(Name::new(broker_name)),
                batch: true,
            },
            revive_qid: b.revive_queue_id,
            revive_time: b.pop_time + b.invisible_time,
        });
    }

    /// `ackOrderly` (queue lock) and `ackOrderlyNew` (the KV path's group@topic lock): ignore
    /// an ack below the commit offset (a pending reset counts); spin on the lock (`None`: it
    /// is held, try again); under it check again, `commitAndNext`, commit the next offset
    /// unless a reset is pending (RIP-48); −1 → `MESSAGE_ILLEGAL`, −2 → ignored.
    fn ack_orderly(
        &mut self,
        now: Millis,
        op: OpId,
        t: &AckTarget,
        ack_offset: u64,
        kv: bool,
    ) -> Option<Response> {
        let ok = Some(Response::success(ResponseBody::None));
        let old_offset = self.offsets.query_offset(&t.group, &t.topic, t.queue_id);
        if (ack_offset as i64) < old_offset {
            return ok;
        }
        let lock = if kv {
            crate::pop_consumer_kv::kv_lock_key(&t.group, &t.topic)
        } else {
            lock_key(&t.topic, &t.group, t.queue_id)
        };
        let locked = if kv {
            self.kv.locks.try_lock_at(&lock, op, now)
        } else {
            self.queue_locks.try_lock(&lock, op)
        };
        if !locked {
            return None;
        }
        let response = self.ack_orderly_locked(now, t, ack_offset, kv);
        if kv {
            if let Some(holder) = self.kv.locks.unlock(&lock, op) {
                self.events.push(BrokerEvent::LockReleasedByOther {
                    at: now,
                    lock: lock.into(),
                    holder: holder.0,
                    by: op.0,
                    site: "AckMessageProcessor.ackOrderlyNew".into(),
                });
            }
        } else {
            self.unlock_queue(&lock, op);
        }
        Some(response)
    }

    /// The part of `ackOrderly` under the lock.
    fn ack_orderly_locked(
        &mut self,
        now: Millis,
        t: &AckTarget,
        ack_offset: u64,
        kv: bool,
    ) -> Response {
        let old_offset = self.offsets.query_offset(&t.group, &t.topic, t.queue_id);
        if (ack_offset as i64) < old_offset {
            return Response::success(ResponseBody::None);
        }
        // The proposed fix `ack-without-order-info-commits-in-order` (read only here):
        // `commitAndNext` without an OrderInfo commits only an ack of the commit offset.
        let in_order_at = self
            .behaviours
            .has_fix(Fix::AckWithoutOrderInfoCommitsInOrder)
            .then_some(old_offset);
        let next = self.order_info.commit_and_next(
            &t.topic,
            &t.group,
            t.queue_id,
            ack_offset,
            t.pop_time,
            now,
            in_order_at,
        );
        if next != -1 && !kv {
            // `ackOrderly` decrements after its lock is released, unless it returned early.
            self.inflight
                .decrement(&t.topic, &t.group, t.pop_time, t.queue_id, 1);
        }
        if next > -1 {
            if !self
                .offsets
                .has_offset_reset(&t.topic, &t.group, t.queue_id)
            {
                self.offsets.commit_offset(
                    &mut self.events,
                    now,
                    if kv { "ackOrderlyNew" } else { "ackOrderly" },
                    &t.group,
                    &t.topic,
                    t.queue_id,
                    next,
                );
            }
            // Wake a pop parked on this queue unless it is still blocked.
            if !self
                .order_info
                .check_block(None, &t.topic, &t.group, t.queue_id, now)
            {
                self.notify_orderly_ack(now, &t.topic, t.queue_id, &t.group);
            }
            return Response::success(ResponseBody::None);
        }
        if next == -1 {
            return Response::error(
                ResponseCode::MessageIllegal,
                format!(
                    "offset is illegal, key:{}, old:{old_offset}, commit:{ack_offset}, next:{next}",
                    lock_key(&t.topic, &t.group, t.queue_id)
                ),
            );
        }
        Response::success(ResponseBody::None)
    }
}
