//! The historical behaviours of the 5.3.x releases' KV path, init offset and offset update,
//! each on and off at its one decision point.

mod common;
use broker_core::*;
use common::*;

fn kv_world(behaviours: &[Behaviour], queues: u32) -> World {
    let config = BrokerConfig {
        pop_consumer_kv_service_enable: true,
        ..World::default_config()
    };
    let mut w = World::new(config, behaviours.iter().copied().collect());
    if queues > 1 {
        w.create_topic(TOPIC, queues);
    }
    w
}

fn pop_queue(
    w: &mut World,
    queue_id: i32,
    max: u32,
    order: bool,
    init: InitMode,
) -> Vec<MessageExt> {
    let mut req = w.pop_req(max, 60_000, order);
    req.queue_id = queue_id;
    req.init_mode = init;
    w.pop_with(req)
}

fn offsets(msgs: &[MessageExt]) -> Vec<u64> {
    msgs.iter().map(|m| m.queue_offset).collect()
}

fn commits(w: &World) -> Vec<(String, i64)> {
    w.events
        .iter()
        .filter_map(|e| match e {
            BrokerEvent::OffsetCommitted {
                reason,
                offset,
                topic,
                ..
            } if topic == TOPIC => Some((reason.to_string(), *offset)),
            _ => None,
        })
        .collect()
}

#[test]
fn kv_fifo_no_commit_at_pop() {
    // Since #9340 a FIFO read commits its start; before it nothing.
    let mut w = kv_world(&[], 1);
    w.send(3);
    assert_eq!(
        offsets(&pop_queue(&mut w, 0, 2, true, InitMode::Min)),
        vec![0, 1]
    );
    assert_eq!(
        commits(&w),
        vec![("getPopOffset".into(), 0), ("PopConsumerService".into(), 0)]
    );
    let mut w = kv_world(&[Behaviour::KvFifoNoCommitAtPop], 1);
    w.send(3);
    assert_eq!(
        offsets(&pop_queue(&mut w, 0, 2, true, InitMode::Min)),
        vec![0, 1]
    );
    assert_eq!(commits(&w), vec![("getPopOffset".into(), 0)]);
    // Non-FIFO, nothing found: the read start since #9340 (even the pre-correction one),
    // nextBeginOffset before. A reset to max + 1 reads OFFSET_OVERFLOW_BADLY, corrected to max.
    let run = |b: &[Behaviour]| {
        let mut w = kv_world(b, 1);
        w.send(2);
        assert_eq!(w.reset(0, Some(3)).code, ResponseCode::Success);
        w.events.clear();
        assert!(w.pop(2, 60_000).is_empty());
        commits(&w).last().cloned()
    };
    assert_eq!(run(&[]), Some(("PopConsumerService".into(), 3)));
    assert_eq!(
        run(&[Behaviour::KvFifoNoCommitAtPop]),
        Some(("PopConsumerService".into(), 2))
    );
}

#[test]
fn kv_no_init_offset() {
    // Since #9247 MAX starts at the init offset; before it the store is read at −1, which is
    // too small: the min is committed and read, and a found non-FIFO read commits −1.
    let mut w = kv_world(&[], 1);
    w.send(3);
    w.broker.set_store_limits(1, 0); // the first message is no longer in memory
    w.now = 10;
    assert_eq!(
        offsets(&pop_queue(&mut w, 0, 32, false, InitMode::Max)),
        vec![2]
    );
    assert_eq!(w.commit_offset(0), Some(2));

    let mut w = kv_world(&[Behaviour::KvNoInitOffset], 1);
    w.send(3);
    w.broker.set_store_limits(1, 0);
    w.now = 10;
    assert_eq!(
        offsets(&pop_queue(&mut w, 0, 32, false, InitMode::Max)),
        vec![0, 1, 2],
        "always from the min, whatever the client asks"
    );
    assert!(commits(&w).contains(&("PopMessageProcessor.offsetCorrection".into(), 0)));
    assert_eq!(w.commit_offset(0), Some(-1), "the read start, −1");
    // The pull offset carries the next pop; a crash with −1 persisted reads from min again.
    w.advance_to(10_000);
    w.crash_restart();
    assert_eq!(
        offsets(&pop_queue(&mut w, 0, 32, false, InitMode::Max)),
        vec![0, 1, 2]
    );
}

/// KV, two queues: queue 1 is popped and acked up to 2, then every queue is reset to 0 and
/// a pop of queue 1 runs between the reset's assignment and its step for queue 1.
fn reset_race(behaviours: &[Behaviour]) -> Vec<u64> {
    let mut w = kv_world(behaviours, 2);
    w.send_to(TOPIC, 1, 4);
    for m in pop_queue(&mut w, 1, 2, false, InitMode::Min) {
        w.ack(&m);
    }
    w.now = 1_000;
    let reset = w.broker.submit(Request::ResetOffset(ResetOffsetRequest {
        group: GROUP.into(),
        topic: TOPIC.into(),
        queue_id: -1,
        offset: None,
        timestamp: 0,
        is_force: true,
    }));
    // The first step assigns every queue's reset and visits queue 0.
    assert_eq!(w.broker.step(w.now, reset), Step::Yield);
    let read = offsets(&pop_queue(&mut w, 1, 32, false, InitMode::Min));
    assert!(matches!(w.broker.step(w.now, reset), Step::Done(_)));
    read
}

#[test]
fn kv_read_ignores_reset() {
    // Since #9247 the pop that takes the reset reads from it; in 5.3.2 it consumed and
    // committed the reset but read at the pull offset it had queried before. The pull
    // offset is still there in 5.3.2 (its reset commits, not clears, each queue's in turn).
    let b = Behaviour::ResetCommitsPullOffset;
    assert_eq!(reset_race(&[b]), vec![0, 1, 2, 3]);
    assert_eq!(
        reset_race(&[b, Behaviour::KvReadIgnoresReset]),
        vec![2, 3],
        "the reset is taken and committed, the read is not at it"
    );
    // With develop's reset the first queue's step already cleared every pull offset.
    assert_eq!(
        reset_race(&[Behaviour::KvReadIgnoresReset]),
        vec![0, 1, 2, 3]
    );
}

#[test]
fn init_min_no_commit() {
    let run = |b: &[Behaviour]| {
        let mut w = World::with(b);
        w.send(2);
        let got = offsets(&w.pop(32, 60_000));
        (
            got,
            commits(&w)
                .into_iter()
                .filter(|c| c.0 == "getPopOffset")
                .count(),
        )
    };
    assert_eq!(
        run(&[]),
        (vec![0, 1], 1),
        "MIN commits its init offset since #8404"
    );
    assert_eq!(run(&[Behaviour::InitMinNoCommit]), (vec![0, 1], 0));
    // Uncommitted, the next pop inits again: the same MIN read, nothing written.
    let mut w = World::with(&[Behaviour::InitMinNoCommit]);
    w.send(2);
    let first = w.pop(1, 60_000);
    assert_eq!(offsets(&first), vec![0]);
    assert_eq!(
        w.commit_offset(0),
        None,
        "the just-offset CK is queued, not yet committed"
    );
}

#[test]
fn update_offset_null_answers_system_error() {
    let run = |b: &[Behaviour]| {
        let mut w = World::with(b);
        w.handle(Request::UpdateConsumerOffset(UpdateConsumerOffsetRequest {
            consumer_group: GROUP.into(),
            topic: TOPIC.into(),
            queue_id: None,
            commit_offset: Some(1),
        }))
        .code
    };
    assert_eq!(run(&[]), ResponseCode::InvalidParameter);
    assert_eq!(
        run(&[Behaviour::UpdateOffsetNullAnswersSystemError]),
        ResponseCode::SystemError
    );
}
