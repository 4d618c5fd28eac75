//! `ChangeInvisibleTimeProcessor` and `BATCH_ACK_MESSAGE` on the classic path.

mod common;
use broker_core::*;
use common::*;

fn new_receipt(r: &Response) -> String {
    match &r.body {
        ResponseBody::ChangeInvisibleTime { extra_info, .. } => extra_info.clone(),
        other => panic!("{other:?}"),
    }
}

#[test]
fn change_moves_the_revive_deadline_and_changes_the_receipt() {
    let mut w = World::with(&[]);
    w.send(1);
    let m = w.pop(1, 10_000).remove(0);
    w.advance_to(5_000);
    let r = w.change_invisible(&m, m.pop_ck.as_deref().unwrap(), 30_000);
    assert_eq!(r.code, ResponseCode::Success);
    let receipt = new_receipt(&r);
    let e = ExtraInfo::parse(&receipt).unwrap();
    assert_eq!(
        (e.ck_queue_offset, e.pop_time, e.invisible_time),
        (0, 5_000, 30_000)
    );
    assert!(w
        .events
        .iter()
        .any(|e| matches!(e, BrokerEvent::AckWritten { reason, .. } if reason == "ChangeInvisibleTimeProcessor.ackOrigin")));
    w.advance_to(30_000);
    assert!(
        w.revived().is_empty(),
        "the original CK is acked by ackOrigin"
    );
    w.advance_to(38_000);
    assert_eq!(
        w.revived(),
        vec![("m1".into(), 1)],
        "the new CK revives after 5 s + 30 s + 2 s"
    );
}

#[test]
fn ack_with_the_new_receipt_cancels_the_new_checkpoint() {
    let mut w = World::with(&[]);
    w.send(1);
    let m = w.pop(1, 10_000).remove(0);
    w.advance_to(1_000);
    let receipt = new_receipt(&w.change_invisible(&m, m.pop_ck.as_deref().unwrap(), 20_000));
    let mut ack = w.ack_req(&m);
    ack.extra_info = receipt;
    w.ok(Request::AckMessage(ack));
    w.advance_to(60_000);
    assert!(w.revived().is_empty());
}

#[test]
fn ack_with_the_old_receipt_after_a_change_does_not_stop_the_new_checkpoint() {
    let mut w = World::with(&[]);
    w.send(1);
    let m = w.pop(1, 10_000).remove(0);
    w.advance_to(1_000);
    let _ = w.change_invisible(&m, m.pop_ck.as_deref().unwrap(), 20_000);
    w.ack(&m);
    w.advance_to(60_000);
    assert_eq!(w.revived().len(), 1, "a stale handle acks the old CK only");
}

#[test]
fn change_rejects_offset_equal_to_max() {
    let mut w = World::with(&[]);
    w.send(1);
    let mut m = w.pop(1, 10_000).remove(0);
    m.queue_offset = 1;
    let receipt = m.pop_ck.clone().unwrap();
    assert_eq!(
        w.change_invisible(&m, &receipt, 20_000).code,
        ResponseCode::NoMessage,
        "#9186"
    );
}

#[test]
fn change_through_the_buffer_acks_origin_in_memory() {
    let mut w = World::buffered(&[]);
    w.send(1);
    let m = w.pop(1, 20_000).remove(0);
    w.advance_to(1_000);
    let receipt = new_receipt(&w.change_invisible(&m, m.pop_ck.as_deref().unwrap(), 20_000));
    assert_eq!(
        w.count(|e| matches!(e, BrokerEvent::AckMergedInBuffer { .. })),
        1
    );
    assert_eq!(
        w.ck_written(),
        1,
        "only the new CK is written; the buffered original cancels"
    );
    let mut ack = w.ack_req(&m);
    ack.extra_info = receipt;
    w.ok(Request::AckMessage(ack));
    w.advance_to(60_000);
    assert!(w.revived().is_empty());
    assert_eq!(w.commit_offset(0), Some(1));
}

fn batch_of(msgs: &[MessageExt], broker_name: &str) -> BatchAckMessageRequest {
    let e = ExtraInfo::parse(msgs[0].pop_ck.as_deref().unwrap()).unwrap();
    BatchAckMessageRequest {
        broker_name: broker_name.into(),
        acks: vec![BatchAck {
            consumer_group: GROUP.into(),
            topic: TOPIC.into(),
            retry: e.topic_type,
            queue_id: e.queue_id,
            revive_queue_id: e.revive_qid,
            start_offset: e.ck_queue_offset,
            pop_time: e.pop_time,
            invisible_time: e.invisible_time,
            bit_set: msgs
                .iter()
                .map(|m| (m.queue_offset - e.ck_queue_offset) as u32)
                .collect(),
        }],
    }
}

#[test]
fn batch_ack_writes_one_record_with_the_body_broker_name() {
    let mut w = World::with(&[]);
    w.send(3);
    let msgs = w.pop(3, 10_000);
    let req = batch_of(&msgs[..2], "broker-a");
    w.ok(Request::BatchAckMessage(req));
    assert!(w.events.iter().any(|e| matches!(e, BrokerEvent::AckWritten { batch: true, ack_offsets, broker_name: Some(bn), .. } if **ack_offsets == [0, 1] && bn == "broker-a")));
    w.advance_to(60_000);
    assert_eq!(w.revived_ids(), vec!["m3"]);
}

#[test]
fn batch_ack_skips_offsets_outside_the_queue() {
    let mut w = World::with(&[]);
    w.send(2);
    let msgs = w.pop(2, 10_000);
    let mut req = batch_of(&msgs, "broker-a");
    req.acks[0].bit_set.push(9);
    w.ok(Request::BatchAckMessage(req));
    assert!(w.events.iter().any(
        |e| matches!(e, BrokerEvent::AckWritten { ack_offsets, .. } if **ack_offsets == [0, 1])
    ));
    let empty = BatchAckMessageRequest {
        broker_name: "broker-a".into(),
        acks: vec![],
    };
    assert_eq!(
        w.handle(Request::BatchAckMessage(empty)).code,
        ResponseCode::NoMessage
    );
}

#[test]
fn batch_ack_of_an_orderly_batch_goes_through_ack_orderly() {
    let mut w = World::with(&[]);
    w.send(3);
    let msgs = w.pop_orderly(3, 10_000);
    let req = batch_of(&msgs, "broker-a");
    w.ok(Request::BatchAckMessage(req));
    assert_eq!(w.commit_offset(0), Some(3));
    assert!(w.count(|e| matches!(e, BrokerEvent::AckWritten { .. })) == 0);
}

#[test]
fn batch_ack_merges_into_the_buffer() {
    let mut w = World::buffered(&[]);
    w.send(3);
    let msgs = w.pop(3, 20_000);
    let req = batch_of(&msgs, "broker-a");
    w.ok(Request::BatchAckMessage(req));
    assert_eq!(
        w.count(|e| matches!(e, BrokerEvent::AckMergedInBuffer { .. })),
        3
    );
    w.advance_to(60_000);
    assert_eq!(w.ck_written(), 0);
    assert!(w.revived().is_empty());
}

#[test]
fn batch_ack_with_a_foreign_broker_name_misses_the_buffer_and_the_revive_key() {
    let mut w = World::buffered(&[]);
    w.send(2);
    let msgs = w.pop(2, 20_000);
    let req = batch_of(&msgs, "broker-b");
    w.ok(Request::BatchAckMessage(req));
    assert_eq!(
        w.count(|e| matches!(e, BrokerEvent::AckMergedInBuffer { .. })),
        0
    );
    w.advance_to(60_000);
    assert_eq!(w.revived().len(), 2, "brokerName is part of the key");

    let mut old = World::new(
        BrokerConfig {
            enable_pop_buffer_merge: true,
            ..World::default_config()
        },
        [Behaviour::ReviveMergeKeyWithoutBrokerName]
            .into_iter()
            .collect(),
    );
    old.send(2);
    let msgs = old.pop(2, 20_000);
    let req = batch_of(&msgs, "broker-b");
    old.ok(Request::BatchAckMessage(req));
    old.advance_to(60_000);
    assert!(
        old.revived().is_empty(),
        "before #8494 the revive key ignored brokerName"
    );
}
