//! `ChangeInvisibleTimeProcessor` (`broker/.../processor/ChangeInvisibleTimeProcessor.java`).
//! Non-orderly: a new one-message CK goes straight to the revive log with popTime = now
//! (`appendCheckPointThenAckOrigin`), then the original receipt is acked (`ackOrigin`,
//! through the buffer when it can), so the client's receipt handle changes. A failed CK put
//! answers `SYSTEM_ERROR` (the old receipt stays valid); a failed `ackOrigin` put is only
//! logged and answered `SUCCESS` with the new receipt, so the original CK is revived as well
//! (proposed fix `ack-origin-failure-answers-error`: answer `SYSTEM_ERROR` then).
//! With `refused-ack-stores-its-ck`, an `ackOrigin` whose put of the still-buffered original
//! CK failed writes no ACK ahead of it and answers `SYSTEM_ERROR`, as an ack does.
//! The new CK goes to the receipt's reviveQid, checked against nothing. Orderly: only
//! the OrderInfo's next-visible time for that offset moves; the popTime stays.

use crate::ack_message_processor::{AckTarget, AppendAck};
use crate::broker::Broker;
use crate::checkpoint::{AckMsg, PopCheckPoint};
use crate::config::Millis;
use crate::name::Name;
use crate::protocol::{
    ChangeInvisibleTimeRequest, ExtraInfo, Response, ResponseBody, ResponseCode,
};

impl Broker {
    /// `CHANGE_MESSAGE_INVISIBLETIME`: checks (`min ≤ offset < max`), then the orderly, KV or
    /// classic branch. The response carries the new receipt as the client builds it
    /// (`ckQueueOffset` = the message offset).
    pub(crate) fn change_invisible_time(
        &mut self,
        now: Millis,
        req: ChangeInvisibleTimeRequest,
    ) -> Response {
        let (extra, topic) = match self.resolve_receipt(
            &req.topic,
            &req.consumer_group,
            req.queue_id,
            req.offset,
            &req.extra_info,
            false,
        ) {
            Ok(resolved) => resolved,
            Err(rejected) => return rejected,
        };
        let target = AckTarget::new(&req.consumer_group, &topic, req.queue_id, &extra);
        let mut revive_qid = extra.revive_qid;
        let (pop_time, invisible_time) = if extra.is_order() {
            match self.change_invisible_time_for_order(now, &target, req.offset, req.invisible_time)
            {
                Some(answer) => answer,
                None => {
                    // The early return leaves the response header as it was made: every
                    // field 0, so the client's new handle is already expired.
                    revive_qid = 0;
                    (0, 0)
                }
            }
        } else if self.config.pop_consumer_kv_service_enable {
            self.change_invisibility_duration_kv(
                now,
                &target,
                req.offset,
                req.invisible_time,
                &extra.broker_name,
            );
            (now, req.invisible_time)
        } else {
            if let Err(remark) = self.append_check_point_then_ack_origin(
                now,
                &target,
                req.offset,
                req.invisible_time,
                &extra.broker_name,
            ) {
                return Response::error(ResponseCode::SystemError, remark);
            }
            (now, req.invisible_time)
        };
        let new_extra = ExtraInfo {
            ck_queue_offset: req.offset,
            pop_time,
            invisible_time,
            revive_qid,
            topic_type: extra.topic_type,
            broker_name: extra.broker_name.clone(),
            queue_id: req.queue_id,
            queue_offset: req.offset,
            commit_log_offset: None,
        };
        Response::success(ResponseBody::ChangeInvisibleTime {
            extra_info: new_extra.build(),
            pop_time,
            invisible_time,
            revive_qid,
        })
    }

    /// `processChangeInvisibleTimeForOrder` (`processChangeInvisibleTimeForOrderNew` on the KV
    /// path): ignored below the commit offset (`None`: the early `return response`, whose
    /// header still holds `createResponseCommand`'s zeros, so `SUCCESS` with popTime,
    /// invisibleTime and reviveQid 0); otherwise `updateNextVisibleTime(now +
    /// invisibleTime)`. Answers the original popTime and `newVisible − popTime`.
    fn change_invisible_time_for_order(
        &mut self,
        now: Millis,
        t: &AckTarget,
        offset: u64,
        invisible_time: Millis,
    ) -> Option<(Millis, Millis)> {
        let old_offset = self.offsets.query_offset(&t.group, &t.topic, t.queue_id);
        if (offset as i64) < old_offset {
            return None;
        }
        let next_visible = now + invisible_time;
        self.order_info.update_next_visible_time(
            now,
            &t.topic,
            &t.group,
            t.queue_id,
            offset,
            t.pop_time,
            next_visible,
        );
        Some((t.pop_time, next_visible.saturating_sub(t.pop_time)))
    }

    /// `appendCheckPointThenAckOrigin`: the new CK (num 1, startOffset = the message,
    /// popTime = now) straight to the revive log, then `ackOrigin`. An error if the CK put
    /// failed (then nothing was acked), or, with the proposed fix, if the ACK put failed.
    fn append_check_point_then_ack_origin(
        &mut self,
        now: Millis,
        t: &AckTarget,
        offset: u64,
        invisible_time: Millis,
        broker_name: &str,
    ) -> Result<(), &'static str> {
        let ck = PopCheckPoint {
            start_offset: offset,
            pop_time: now,
            invisible_time,
            bit_map: 0,
            num: 1,
            queue_id: t.queue_id,
            topic: Name::new(&t.topic),
            cid: Name::new(&t.group),
            revive_offset: 0,
            queue_offset_diff: vec![0],
            broker_name: Name::new(broker_name),
            re_put_times: 0,
        };
        if self
            .put_ck_to_store(now, &ck, t.revive_qid, crate::events::CHANGE_CK_REASON)
            .is_none()
        {
            return Err("change invisible, put new ck error");
        }
        // `ackOrigin` (287-295) only logs a failed put and completes true: the answer is
        // SUCCESS either way. With the proposed fix a failed put answers SYSTEM_ERROR; the new
        // CK is already stored and revives later (a duplicate, never a loss).
        match self.ack_origin(now, t, offset, broker_name) {
            AppendAck::Done => Ok(()),
            AppendAck::AckPutFailed
                if self
                    .behaviours
                    .has_fix(crate::Fix::AckOriginFailureAnswersError) =>
            {
                Err("change invisible, put ack msg fail")
            }
            AppendAck::AckPutFailed => Ok(()),
            // Only with `refused-ack-stores-its-ck`: the original CK is still buffered and
            // no ACK was written ahead of it; the old receipt stays valid, the new CK
            // revives later (a duplicate, never a loss).
            AppendAck::CkPutFailed => Err("put ck msg error"),
        }
    }

    /// `ackOrigin`: ack the old receipt, through the buffer if it can, else an ACK record
    /// delivered at the old receipt's popTime + invisibleTime (284). A change that reaches
    /// the broker after that time (the proxy checks expiry before its call) writes an ACK
    /// already due; the proposed fix `due-ack-origin-goes-through-timer` is read only here
    /// ([`Broker::due_ack_deliver_at`]).
    fn ack_origin(
        &mut self,
        now: Millis,
        t: &AckTarget,
        offset: u64,
        broker_name: &str,
    ) -> AppendAck {
        let ack = AckMsg {
            ack_offsets: vec![offset],
            start_offset: t.start_offset,
            consumer_group: Name::new(&t.group),
            topic: Name::new(&t.topic),
            queue_id: t.queue_id,
            pop_time: t.pop_time,
            broker_name: Some(Name::new(broker_name)),
            batch: false,
        };
        let deliver_at = self.due_ack_deliver_at(
            now,
            t.pop_time + t.invisible_time,
            crate::Fix::DueAckOriginGoesThroughTimer,
        );
        self.append_ack(
            now,
            ack,
            t.revive_qid,
            deliver_at,
            crate::events::ACK_ORIGIN_REASON,
        )
    }
}
