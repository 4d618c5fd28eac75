//! `ConsumerOffsetManager` through the request API: update / query, server-side reset,
//! change (e), persistence and crash.

mod common;
use broker_core::*;
use common::*;

fn update(w: &mut World, queue_id: Option<i32>, offset: Option<i64>) -> Response {
    w.handle(Request::UpdateConsumerOffset(UpdateConsumerOffsetRequest {
        consumer_group: GROUP.into(),
        topic: TOPIC.into(),
        queue_id,
        commit_offset: offset,
    }))
}

#[test]
fn update_consumer_offset_checks_in_upstream_order() {
    let mut w = World::with(&[]);
    let mut req = UpdateConsumerOffsetRequest {
        consumer_group: "nope".into(),
        topic: "nope".into(),
        queue_id: None,
        commit_offset: None,
    };
    assert_eq!(
        w.handle(Request::UpdateConsumerOffset(req.clone())).code,
        ResponseCode::SubscriptionGroupNotExist
    );
    req.consumer_group = GROUP.into();
    assert_eq!(
        w.handle(Request::UpdateConsumerOffset(req.clone())).code,
        ResponseCode::TopicNotExist
    );
    req.topic = TOPIC.into();
    let r = w.handle(Request::UpdateConsumerOffset(req.clone()));
    assert_eq!(
        (r.code, r.remark.as_str()),
        (
            ResponseCode::InvalidParameter,
            "QueueId is null, topic is TopicA"
        )
    );
    req.queue_id = Some(0);
    let r = w.handle(Request::UpdateConsumerOffset(req.clone()));
    assert_eq!(
        (r.code, r.remark.as_str()),
        (
            ResponseCode::InvalidParameter,
            "Offset is null, topic is TopicA"
        )
    );
    req.commit_offset = Some(7);
    assert_eq!(
        w.handle(Request::UpdateConsumerOffset(req)).code,
        ResponseCode::Success
    );
    assert_eq!(w.commit_offset(0), Some(7));
    assert_eq!(w.commits_with("updateConsumerOffset"), vec![7]);
}

#[test]
fn commit_is_not_monotonic() {
    let mut w = World::with(&[]);
    update(&mut w, Some(0), Some(9));
    update(&mut w, Some(0), Some(2));
    assert_eq!(w.query_offset(0), Some(2));
}

#[test]
fn update_is_ignored_while_a_reset_is_pending() {
    let mut w = World::with(&[]);
    w.send(5);
    update(&mut w, Some(0), Some(4));
    w.reset(0, Some(1));
    let r = update(&mut w, Some(0), Some(5));
    assert_eq!(
        (r.code, r.remark.as_str()),
        (ResponseCode::Success, "Offset has been previously reset")
    );
    assert_eq!(
        w.commit_offset(0),
        Some(1),
        "the client's value was dropped"
    );
    let _ = w.pop(1, 10_000);
    assert_eq!(
        update(&mut w, Some(0), Some(5)).remark,
        "",
        "accepted once a pop consumed the reset"
    );
}

#[test]
fn query_consumer_offset_sees_a_pending_reset_and_not_found() {
    let mut w = World::with(&[]);
    assert_eq!(w.query_offset(0), None);
    let r = w.handle(Request::QueryConsumerOffset(QueryConsumerOffsetRequest {
        consumer_group: GROUP.into(),
        topic: TOPIC.into(),
        queue_id: 0,
        set_zero_if_not_found: true,
    }));
    assert_eq!(
        r.code,
        ResponseCode::QueryNotFound,
        "no message in memory, so no zero"
    );
    w.send(1);
    let r = w.handle(Request::QueryConsumerOffset(QueryConsumerOffsetRequest {
        consumer_group: GROUP.into(),
        topic: TOPIC.into(),
        queue_id: 0,
        set_zero_if_not_found: true,
    }));
    assert_eq!(r.body, ResponseBody::QueryConsumerOffset { offset: 0 });
    w.reset(0, Some(1));
    assert_eq!(w.query_offset(0), Some(1));
}

#[test]
fn reset_checks_and_offset_map() {
    let mut w = World::with(&[]);
    w.send(3);
    let mut req = ResetOffsetRequest {
        group: GROUP.into(),
        topic: "nope".into(),
        queue_id: 0,
        offset: Some(1),
        timestamp: -1,
        is_force: true,
    };
    assert_eq!(
        w.handle(Request::ResetOffset(req.clone())).code,
        ResponseCode::TopicNotExist
    );
    req.topic = TOPIC.into();
    req.group = "nope".into();
    assert_eq!(
        w.handle(Request::ResetOffset(req.clone())).code,
        ResponseCode::SubscriptionGroupNotExist
    );
    req.group = GROUP.into();
    req.offset = Some(5);
    let r = w.handle(Request::ResetOffset(req.clone()));
    assert_eq!(
        (r.code, r.remark.as_str()),
        (
            ResponseCode::SystemError,
            "Target offset 5 not in consume queue range [0-3]"
        )
    );
    req.offset = Some(4);
    assert_eq!(
        w.handle(Request::ResetOffset(req.clone())).code,
        ResponseCode::Success,
        "max + 1 is allowed"
    );
    req.offset = None;
    req.queue_id = -1;
    let r = w.ok(Request::ResetOffset(req));
    assert_eq!(
        r.body,
        ResponseBody::ResetOffset {
            offsets: [(0, 3)].into_iter().collect()
        },
        "timestamp < 0: max"
    );
}

#[test]
fn reset_by_timestamp_finds_the_first_message_stored_at_or_after_it() {
    let mut w = World::with(&[]);
    w.send(2);
    w.advance_to(1_000);
    w.send(2);
    let r = w.ok(Request::ResetOffset(ResetOffsetRequest {
        group: GROUP.into(),
        topic: TOPIC.into(),
        queue_id: 0,
        offset: None,
        timestamp: 500,
        is_force: true,
    }));
    assert_eq!(
        r.body,
        ResponseBody::ResetOffset {
            offsets: [(0, 2)].into_iter().collect()
        }
    );
}

#[test]
fn reset_moves_the_next_classic_pop() {
    let mut w = World::with(&[]);
    w.send(5);
    for m in w.pop(32, 10_000) {
        w.ack(&m);
    }
    w.advance(10);
    assert_eq!(w.commit_offset(0), Some(5));
    w.reset(0, Some(2));
    let again = w.pop(32, 10_000);
    assert_eq!(World::ids(&again), vec!["m3", "m4", "m5"]);
    assert_eq!(
        w.count(|e| matches!(e, BrokerEvent::ResetConsumed { offset: 2, .. })),
        1
    );
    assert!(
        w.broker
            .snapshot()
            .reset_offset_table
            .values()
            .all(|m| m.is_empty()),
        "erased by the pop"
    );
}

/// Bug (e): a reset for a topic@group that never committed, then a restart.
fn reset_new_key_then_restart(behaviours: &[Behaviour]) -> (bool, Option<i64>) {
    let mut w = World::with(behaviours);
    w.send(5);
    w.reset(0, Some(3));
    let wrote = w.events.iter().any(|e| {
        matches!(
            e,
            BrokerEvent::ResetAssigned {
                wrote_offset_table: true,
                ..
            }
        )
    });
    // The first persist comes 10 s after the start.
    w.advance_to(10_000);
    w.crash_restart();
    (wrote, w.commit_offset(0))
}

#[test]
fn bug_e_reset_needs_existing_offset_key_on_loses_the_reset() {
    assert_eq!(
        reset_new_key_then_restart(&[Behaviour::ResetNeedsExistingOffsetKey]),
        (false, None)
    );
}

#[test]
fn bug_e_fixed_persists_the_reset() {
    assert_eq!(reset_new_key_then_restart(&[]), (true, Some(3)));
}

#[test]
fn reset_needs_existing_offset_key_still_writes_an_existing_key() {
    let mut w = World::with(&[Behaviour::ResetNeedsExistingOffsetKey]);
    w.send(5);
    update(&mut w, Some(0), Some(4));
    w.reset(0, Some(1));
    assert_eq!(w.commit_offset(0), Some(1));
}

#[test]
fn offsets_persist_on_the_flush_interval_and_a_crash_loses_the_rest() {
    let mut w = World::with(&[]);
    w.send(4);
    let first = w.pop(2, 60_000);
    for m in &first {
        w.ack(m);
    }
    w.advance_to(9_999);
    assert_eq!(
        w.count(|e| matches!(e, BrokerEvent::OffsetsPersisted { .. })),
        0,
        "no persist in the first 10 s (BrokerController's initial delay)"
    );
    w.advance_to(10_000);
    assert_eq!(
        w.count(|e| matches!(e, BrokerEvent::OffsetsPersisted { at: 10_000 })),
        1
    );
    assert_eq!(
        w.broker.snapshot().persisted_offset_table,
        w.broker.snapshot().offset_table
    );
    let second = w.pop(2, 60_000);
    assert_eq!(World::ids(&second), vec!["m3", "m4"]);
    w.advance_to(11_000);
    assert_eq!(w.commit_offset(0), Some(4));
    w.crash_restart();
    assert_eq!(
        w.commit_offset(0),
        Some(2),
        "the commit after the last persist is gone"
    );
    assert_eq!(
        World::ids(&w.pop(32, 60_000)),
        vec!["m3", "m4"],
        "at-least-once: read again"
    );
}

#[test]
fn crash_clears_the_buffer_and_volatile_tables() {
    let config = BrokerConfig {
        enable_pop_buffer_merge: true,
        pop_consumer_kv_service_enable: false,
        ..World::default_config()
    };
    let mut w = World::new(config, Behaviours::fixed());
    w.send(2);
    let _ = w.pop(2, 60_000);
    w.reset(0, Some(0));
    assert_eq!(w.broker.snapshot().buffered_cks, 1);
    w.broker.crash(w.now);
    let s = w.broker.snapshot();
    assert!(!s.running);
    assert_eq!(s.buffered_cks, 0);
    assert!(s.reset_offset_table.is_empty());
    assert_eq!(w.broker.next_deadline(), None);
    w.broker.restart(w.now);
    assert!(w.broker.snapshot().running);
}

#[test]
#[should_panic(expected = "crashed broker")]
fn handle_while_crashed_is_a_driver_bug() {
    let mut w = World::with(&[]);
    w.broker.crash(0);
    w.broker.handle(
        0,
        Request::CreateSubscriptionGroup(CreateSubscriptionGroupRequest { group: "g".into() }),
    );
}

#[test]
fn revive_progress_is_lost_with_unpersisted_commits_and_revives_again() {
    let mut w = World::with(&[]);
    w.send(1);
    let _ = w.pop(1, 10_000);
    w.advance_to(14_000);
    assert_eq!(w.revived().len(), 1);
    assert_eq!(w.broker.snapshot().revive_queues[0].committed_offset, 0);
    w.crash_restart();
    assert_eq!(
        w.broker.snapshot().revive_queues[0].committed_offset,
        -1,
        "revive-group commit not yet persisted"
    );
    w.advance_to(30_000);
    assert_eq!(
        w.revived(),
        vec![("m1".into(), 1), ("m1".into(), 1)],
        "the CK is revived a second time"
    );
}

#[test]
fn persisted_revive_progress_survives_a_restart() {
    let mut w = World::with(&[]);
    w.send(1);
    let _ = w.pop(1, 10_000);
    w.advance_to(16_000);
    w.crash_restart();
    w.advance_to(60_000);
    assert_eq!(w.revived().len(), 1);
}

#[test]
fn offset_correction_commits_next_begin_offset() {
    let mut w = World::with(&[]);
    w.send(2);
    update(&mut w, Some(0), Some(10));
    assert!(w.pop(32, 10_000).is_empty());
    assert_eq!(
        w.commits_with("PopMessageProcessor.offsetCorrection"),
        vec![2]
    );
    assert_eq!(w.commit_offset(0), Some(2));
    w.send(1);
    assert_eq!(World::ids(&w.pop(32, 10_000)), vec!["m3"]);
}

/// Upstream's reviver commits only CK positions: ACK records behind the last CK stay
/// beyond the revive offset, unless `enableSkipLongAwaitingAck` mocks a CK for them.
fn revive_tail(skip_long_awaiting_ack: bool) -> (i64, u64) {
    let config = BrokerConfig {
        enable_skip_long_awaiting_ack: skip_long_awaiting_ack,
        revive_ack_wait_ms: 5_000,
        ..World::default_config()
    };
    let mut w = World::new(config, Behaviours::fixed());
    w.send(1);
    let m = w.pop(1, 10_000).remove(0);
    w.ack(&m);
    w.advance_to(120_000);
    let rq = w.broker.snapshot().revive_queues[0].clone();
    assert!(w.revived().is_empty());
    (rq.committed_offset, rq.max_offset)
}

#[test]
fn ack_tail_is_not_committed_past_by_default() {
    assert_eq!(
        revive_tail(false),
        (0, 2),
        "CK at 0 processed; the ACK at 1 stays"
    );
}

#[test]
fn skip_long_awaiting_ack_moves_the_revive_offset_past_the_ack_tail() {
    assert_eq!(revive_tail(true), (1, 2));
}
