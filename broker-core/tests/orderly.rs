//! Orderly POP on the classic path (`ConsumerOrderInfoManager`, `ackOrderly`).

mod common;
use broker_core::*;
use common::*;

fn offsets(msgs: &[MessageExt]) -> Vec<u64> {
    msgs.iter().map(|m| m.queue_offset).collect()
}

#[test]
fn batch_blocks_the_queue_until_acked() {
    let mut w = World::with(&[]);
    w.send(5);
    let batch = w.pop_orderly(3, 10_000);
    assert_eq!(offsets(&batch), vec![0, 1, 2]);
    let receipt = ExtraInfo::parse(batch[0].pop_ck.as_deref().unwrap()).unwrap();
    assert!(receipt.is_order());
    assert_eq!(
        w.count(|e| matches!(e, BrokerEvent::CkWritten { .. })),
        0,
        "orderly pops write no CK"
    );
    assert!(
        w.pop_orderly(3, 10_000).is_empty(),
        "one outstanding batch blocks the queue"
    );
    for m in &batch {
        assert_eq!(w.ack(m).code, ResponseCode::Success);
    }
    assert_eq!(w.commit_offset(0), Some(3));
    assert_eq!(offsets(&w.pop_orderly(3, 10_000)), vec![3, 4]);
}

#[test]
fn commit_never_passes_the_first_unacked_offset() {
    let mut w = World::with(&[]);
    w.send(3);
    let batch = w.pop_orderly(3, 10_000);
    w.ack(&batch[2]);
    assert_eq!(w.commit_offset(0), Some(0));
    w.ack(&batch[1]);
    assert_eq!(w.commit_offset(0), Some(0));
    w.ack(&batch[0]);
    assert_eq!(w.commit_offset(0), Some(3));
}

#[test]
fn expired_batch_is_redelivered_from_the_first_unacked_with_counts() {
    let mut w = World::with(&[]);
    w.send(5);
    let batch = w.pop_orderly(3, 10_000);
    w.ack(&batch[0]);
    w.advance_to(5_000);
    assert!(w.pop_orderly(3, 10_000).is_empty());
    w.advance_to(10_000);
    let again = w.pop_orderly(3, 10_000);
    assert_eq!(offsets(&again), vec![1, 2, 3]);
    assert_eq!(
        again.iter().map(|m| m.reconsume_times).collect::<Vec<_>>(),
        vec![1, 1, 0]
    );
    assert!(
        w.revived().is_empty(),
        "no revive and no retry topic for orderly"
    );
}

#[test]
fn same_attempt_id_is_reentrant() {
    let mut w = World::with(&[]);
    w.send(3);
    let mut req = w.pop_req(2, 10_000, true);
    req.attempt_id = Some("attempt-1".into());
    let first = w.pop_with(req.clone());
    let retry = w.pop_with(req.clone());
    assert_eq!(
        offsets(&retry),
        offsets(&first),
        "a retried pop with the same attemptId reads the same batch"
    );
    assert!(
        retry.iter().all(|m| m.reconsume_times == 0),
        "and does not count as a redelivery"
    );
    req.attempt_id = Some("attempt-2".into());
    assert!(w.pop_with(req).is_empty(), "another attempt is blocked");
}

#[test]
fn ack_of_an_offset_outside_the_batch_is_illegal() {
    let mut w = World::with(&[]);
    w.send(5);
    let batch = w.pop_orderly(2, 10_000);
    let mut req = w.ack_req(&batch[0]);
    req.offset = 4;
    let r = w.handle(Request::AckMessage(req));
    assert_eq!(r.code, ResponseCode::MessageIllegal);
}

#[test]
fn stale_receipt_after_redelivery_is_ignored() {
    let mut w = World::with(&[]);
    w.send(2);
    let old = w.pop_orderly(2, 10_000);
    w.advance_to(11_000);
    let new = w.pop_orderly(2, 10_000);
    assert_eq!(offsets(&new), vec![0, 1]);
    for m in &old {
        assert_eq!(
            w.ack(m).code,
            ResponseCode::Success,
            "commitAndNext −2 answers SUCCESS"
        );
    }
    assert_eq!(w.commit_offset(0), Some(0));
    assert!(
        w.pop_orderly(2, 10_000).is_empty(),
        "still blocked by the new batch"
    );
    for m in &new {
        w.ack(m);
    }
    assert_eq!(w.commit_offset(0), Some(2));
}

#[test]
fn reset_unblocks_a_blocked_queue_on_the_classic_path() {
    let mut w = World::with(&[]);
    w.send(4);
    let _ = w.pop_orderly(2, 60_000);
    assert!(w.pop_orderly(2, 60_000).is_empty());
    assert_eq!(w.reset(0, Some(0)).code, ResponseCode::Success);
    let again = w.pop_orderly(2, 60_000);
    assert_eq!(
        offsets(&again),
        vec![0, 1],
        "resetPopOffset runs before checkBlock and clears the block"
    );
    assert_eq!(
        w.count(|e| matches!(e, BrokerEvent::ResetConsumed { offset: 0, .. })),
        1
    );
}

/// `OffsetResetForPopIT.testResetOffsetThenAckOldForPopOrderly`.
#[test]
fn reset_then_ack_old_batch_keeps_the_queue_blocked() {
    let mut w = World::with(&[]);
    w.send(10);
    let old = w.pop_orderly(32, 60_000);
    assert_eq!(old.len(), 10);
    w.reset(0, Some(2));
    assert_eq!(
        w.query_offset(0),
        Some(2),
        "consume stats show the pending reset"
    );
    w.advance_to(100);
    let new = w.pop_orderly(32, 60_000);
    assert_eq!(offsets(&new), (2..10).collect::<Vec<_>>());
    for m in &old {
        assert_eq!(w.ack(m).code, ResponseCode::Success);
    }
    assert_eq!(w.commit_offset(0), Some(2), "old receipts move nothing");
    w.send(1);
    assert!(
        w.pop_orderly(32, 60_000).is_empty(),
        "the old acks leave the queue blocked"
    );
    for m in &new {
        w.ack(m);
    }
    assert_eq!(w.commit_offset(0), Some(10));
    assert_eq!(
        offsets(&w.pop_orderly(32, 60_000)),
        vec![10],
        "the new acks unblock it"
    );
}

#[test]
fn ack_orderly_does_not_commit_over_a_pending_reset() {
    let mut w = World::with(&[]);
    w.send(3);
    let batch = w.pop_orderly(3, 60_000);
    w.reset(0, Some(0));
    w.ack(&batch[0]);
    assert!(
        w.commits_with("ackOrderly").is_empty(),
        "RIP-48: hasOffsetReset guards the commit"
    );
    assert_eq!(w.query_offset(0), Some(0));
}

#[test]
fn change_invisible_time_extends_the_block() {
    let mut w = World::with(&[]);
    w.send(2);
    let batch = w.pop_orderly(2, 10_000);
    w.ack(&batch[0]);
    w.advance_to(5_000);
    let r = w.ok(Request::ChangeInvisibleTime(ChangeInvisibleTimeRequest {
        consumer_group: GROUP.into(),
        topic: TOPIC.into(),
        queue_id: 0,
        offset: 1,
        extra_info: batch[1].pop_ck.clone().unwrap(),
        invisible_time: 30_000,
    }));
    match r.body {
        ResponseBody::ChangeInvisibleTime {
            pop_time,
            invisible_time,
            revive_qid,
            ..
        } => {
            assert_eq!(
                (pop_time, invisible_time, revive_qid),
                (0, 35_000, 999),
                "original popTime kept"
            );
        }
        other => panic!("{other:?}"),
    }
    w.advance_to(12_000);
    assert!(
        w.pop_orderly(2, 10_000).is_empty(),
        "offset 1 is invisible until 35 s"
    );
    w.advance_to(35_000);
    assert_eq!(offsets(&w.pop_orderly(2, 10_000)), vec![1]);
}

/// `ChangeInvisibleTimeProcessor.processChangeInvisibleTimeForOrder` (and `…ForOrderNew` on
/// the KV path) returns early for an offset below the commit offset: `SUCCESS`, but the
/// response header is left as `createResponseCommand` made it, so popTime, invisibleTime and
/// reviveQid go out as 0 and the handle the client builds from them
/// (`MQClientAPIImpl.changeInvisibleTimeAsync`) is already expired. Echoing the old handle
/// instead let the proxy renew it again once a reset lowered the commit offset, and that
/// renewal moved the OrderInfo block by minutes.
#[test]
fn change_invisible_time_below_the_commit_offset_answers_an_expired_handle() {
    for kv in [false, true] {
        let config = BrokerConfig {
            pop_consumer_kv_service_enable: kv,
            ..World::default_config()
        };
        let mut w = World::new(config, Behaviours::fixed());
        w.send(2);
        w.advance_to(1_000);
        let batch = w.pop_orderly(2, 60_000);
        assert_eq!(offsets(&batch), vec![0, 1]);
        w.advance_to(4_000);
        assert_eq!(w.reset(0, Some(1)).code, ResponseCode::Success);
        assert_eq!(w.commit_offset(0), Some(1), "kv {kv}");
        w.advance_to(55_000);
        let receipt = batch[0].pop_ck.clone().unwrap();
        let r = w.change_invisible(&batch[0], &receipt, 60_000);
        assert_eq!(r.code, ResponseCode::Success, "kv {kv}");
        match r.body {
            ResponseBody::ChangeInvisibleTime {
                extra_info,
                pop_time,
                invisible_time,
                revive_qid,
            } => {
                assert_eq!(
                    (pop_time, invisible_time, revive_qid),
                    (0, 0, 0),
                    "kv {kv}: the header's defaults"
                );
                let new = ExtraInfo::parse(&extra_info).unwrap();
                assert_eq!(
                    (new.pop_time + new.invisible_time, new.queue_offset),
                    (0, 0),
                    "kv {kv}: an expired handle of the same offset"
                );
            }
            other => panic!("kv {kv}: {other:?}"),
        }
    }
}

#[test]
fn orderly_never_reads_the_retry_topic() {
    let config = BrokerConfig {
        pop_from_retry_probability: 100,
        ..World::default_config()
    };
    let mut w = World::new(config, Behaviours::fixed());
    w.send(1);
    let _ = w.pop(1, 5_000);
    w.advance_to(20_000);
    assert_eq!(w.revived().len(), 1);
    w.send(1);
    let msgs = w.pop_orderly(32, 10_000);
    assert_eq!(
        World::ids(&msgs),
        vec!["m2"],
        "the revived m1 stays in %RETRY%"
    );
}
