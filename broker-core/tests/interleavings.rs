//! Operations of steps: what another operation sees while one waits at an interleaving
//! point, exactly where upstream's threads can interleave.

mod common;
use broker_core::*;
use common::*;

fn body(r: &Response) -> Vec<u64> {
    match &r.body {
        ResponseBody::Pop(p) => p.msgs.iter().map(|m| m.queue_offset).collect(),
        other => panic!("not a pop answer: {other:?}"),
    }
}

/// Steps `id` until it is done; panics if it needs more than `n` steps.
fn finish(w: &mut World, id: OpId) -> Response {
    for _ in 0..64 {
        match w.broker.step(w.now, id) {
            Step::Done(r) => {
                w.events.extend(w.broker.drain_events());
                return r;
            }
            Step::Yield | Step::Spin => {}
            Step::Parked => panic!("a pop with pollTime 0 never parks"),
        }
    }
    panic!("operation did not finish");
}

fn pop_queue_req(w: &World, order: bool) -> Request {
    let mut req = w.pop_req(4, 30_000, order);
    req.queue_id = 0;
    Request::PopMessage(req)
}

#[test]
fn a_classic_pop_skips_a_queue_another_pop_holds() {
    let mut w = World::with(&[]);
    w.send(3);
    let first = w.broker.submit(pop_queue_req(&w, false));
    assert_eq!(
        w.broker.step(w.now, first),
        Step::Yield,
        "holds the queue, read in flight"
    );
    let second = pop_queue_req(&w, false);
    let r = w.handle(second);
    assert!(
        body(&r).is_empty(),
        "QueueLockManager.tryLock failed: queue skipped"
    );
    assert_eq!(body(&finish(&mut w, first)), vec![0, 1, 2]);
    let third = pop_queue_req(&w, false);
    assert!(body(&w.handle(third)).is_empty(), "nothing left");
}

#[test]
fn an_orderly_ack_spins_while_a_pop_holds_the_queue() {
    let mut w = World::with(&[]);
    w.send(2);
    let msgs = w.pop_orderly(1, 30_000);
    w.advance_to(40_000);
    let pop = w.broker.submit(pop_queue_req(&w, true));
    assert_eq!(w.broker.step(w.now, pop), Step::Yield);
    let ack = w.broker.submit(Request::AckMessage(w.ack_req(&msgs[0])));
    assert_eq!(
        w.broker.step(w.now, ack),
        Step::Spin,
        "while (!tryLock) {{}}"
    );
    finish(&mut w, pop);
    assert!(matches!(w.broker.step(w.now, ack), Step::Done(_)));
}

/// KV path, FIFO: a reset, then two pops of the group at once.
fn two_pops_after_a_reset(behaviours: Behaviours) -> (Vec<u64>, Vec<u64>, World) {
    let config = BrokerConfig {
        pop_consumer_kv_service_enable: true,
        ..World::default_config()
    };
    let mut w = World::new(config, behaviours);
    w.send(4);
    let first = w.pop_orderly(4, 30_000);
    for m in &first {
        w.ack(m);
    }
    assert_eq!(w.reset(0, Some(1)).code, ResponseCode::Success);
    w.advance_to(1_000);
    let a = w.broker.submit(pop_queue_req(&w, true));
    assert_eq!(w.broker.step(w.now, a), Step::Yield, "read in flight");
    let b = w.broker.submit(pop_queue_req(&w, true));
    let rb = match w.broker.step(w.now, b) {
        Step::Done(r) => r,
        _ => {
            // b holds the group lock too and reads; a finishes first.
            let ra = finish(&mut w, a);
            let rb = finish(&mut w, b);
            return (body(&ra), body(&rb), w);
        }
    };
    let ra = finish(&mut w, a);
    (body(&ra), body(&rb), w)
}

#[test]
fn develop_clear_cache_frees_the_popping_threads_own_lock() {
    let (a, b, w) = two_pops_after_a_reset(Behaviours::fixed());
    assert_eq!(a, vec![1, 2, 3]);
    assert_eq!(b, vec![1, 2, 3], "a second pop read the same FIFO batch");
    assert!(
        w.count(|e| matches!(e, BrokerEvent::LockReleasedByOther { site, .. } if site == "PopConsumerService.clearCache"))
            == 0,
        "the lock clearCache frees is the caller's own: no other holder"
    );
    assert!(
        w.count(|e| matches!(e, BrokerEvent::LockReleasedByOther { site, .. } if site == "PopConsumerService.popAsync"))
            >= 1,
        "the first pop's final unlock frees the second pop's lock"
    );
}

#[test]
fn proposed_fix_keeps_the_lock_and_the_second_pop_finds_it_held() {
    let (a, b, _) =
        two_pops_after_a_reset(Behaviours::fixed().with_fix(Fix::ClearCacheWithoutLock));
    assert_eq!(a, vec![1, 2, 3]);
    assert!(b.is_empty(), "lock held: popAsync answers empty");
}

#[test]
fn an_ack_merged_after_the_scan_dropped_its_ck_is_lost() {
    let mut w = World::buffered(&[]);
    w.send(2);
    let msgs = w.pop(2, 60_000);
    w.advance_to(8_000);
    let ack = w.broker.submit(Request::AckMessage(w.ack_req(&msgs[0])));
    assert_eq!(
        w.broker.step(w.now, ack),
        Step::Yield,
        "guards passed at 8 s"
    );
    // A long stall of that thread: the CK stays 10 s in the buffer and is flushed.
    w.ack(&msgs[1]);
    w.advance_to(10_100);
    assert!(matches!(w.broker.step(w.now, ack), Step::Done(r) if r.code == ResponseCode::Success));
    w.events.extend(w.broker.drain_events());
    assert_eq!(
        w.count(|e| matches!(e, BrokerEvent::AckLostOnDroppedCk { ack_offset: 0, .. })),
        1
    );
    w.advance_to(70_000);
    assert_eq!(
        w.revived_ids(),
        vec![msgs[0].msg_id.clone()],
        "acked, yet revived"
    );
}

#[test]
fn a_crash_ends_every_operation_and_frees_its_locks() {
    let mut w = World::with(&[]);
    w.send(2);
    let pop = w.broker.submit(pop_queue_req(&w, false));
    assert_eq!(w.broker.step(w.now, pop), Step::Yield);
    assert_eq!(w.broker.in_flight(), 1);
    w.crash_restart();
    assert_eq!(w.broker.in_flight(), 0);
    let again = pop_queue_req(&w, false);
    assert_eq!(
        body(&w.handle(again)),
        vec![0, 1],
        "the queue lock died with the process"
    );
}

/// KV path with buffer merge, two queues: a pop caches two records of queue 1; a reset of
/// every queue to its max assigns both queues, then clears queue 0's cache and stops at its
/// interleaving point; the cache's cleanup runs (1 s); the reset clears queue 1's cache. The
/// offsets are persisted at 10 s and the broker crashes. Returns queue 1's restored offset.
fn cache_cleanup_inside_a_reset(behaviours: Behaviours) -> (Option<i64>, World) {
    let config = BrokerConfig {
        pop_consumer_kv_service_enable: true,
        enable_pop_buffer_merge: true,
        ..World::default_config()
    };
    let mut w = World::new(config, behaviours);
    w.create_topic(TOPIC, 2);
    w.send_to(TOPIC, 1, 2);
    let mut req = w.pop_req(2, 60_000, false);
    req.queue_id = 1;
    assert_eq!(w.pop_with(req).len(), 2);
    let reset = start_reset_of_every_queue(&mut w);
    assert_eq!(w.commit_offset(1), Some(2), "assignResetOffset");
    w.advance_to(1_000);
    assert!(matches!(finish(&mut w, reset).code, ResponseCode::Success));
    w.advance_to(10_500);
    w.crash_restart();
    (w.commit_offset(1), w)
}

#[test]
fn the_cache_commits_over_a_reset_in_progress_and_a_crash_loses_the_reset() {
    let (restored, w) = cache_cleanup_inside_a_reset(Behaviours::fixed());
    assert_eq!(
        w.commits_with("PopConsumerCache"),
        vec![0],
        "PopConsumerCache.commitOffset wrote the cache's smallest offset over the reset"
    );
    assert_eq!(restored, Some(0), "the reset is gone after the crash");
}

#[test]
fn with_the_fix_the_cache_skips_a_queue_with_a_pending_reset() {
    let (restored, w) = cache_cleanup_inside_a_reset(
        Behaviours::fixed().with_fix(Fix::CacheCommitSkipsPendingReset),
    );
    assert!(w.commits_with("PopConsumerCache").is_empty());
    assert_eq!(restored, Some(2), "the reset survived the crash");
}

/// KV path, four queues with one message each; pop `a` holds the group@topic lock while
/// pop `b` arrives; then pop `c` runs alone. Returns the queue `c` read.
fn queue_after_a_lost_lock() -> u32 {
    let config = BrokerConfig {
        pop_consumer_kv_service_enable: true,
        ..World::default_config()
    };
    let mut w = World::new(config, Behaviours::fixed());
    w.create_topic(TOPIC, 4);
    for q in 0..4 {
        w.send_to(TOPIC, q, 1);
    }
    let a = w
        .broker
        .submit(Request::PopMessage(w.pop_req(1, 30_000, true)));
    assert_eq!(
        w.broker.step(w.now, a),
        Step::Yield,
        "a holds the lock, read in flight"
    );
    let b = Request::PopMessage(w.pop_req(1, 30_000, true));
    assert!(
        body(&w.handle(b)).is_empty(),
        "lock held: popAsync answers empty"
    );
    let ra = match &finish(&mut w, a).body {
        ResponseBody::Pop(p) => p.msgs.iter().map(|m| m.queue_id).collect::<Vec<_>>(),
        other => panic!("not a pop answer: {other:?}"),
    };
    assert_eq!(ra, vec![0], "requestCount 0: the plan starts at queue 0");
    let c = w.pop_orderly(1, 30_000);
    assert_eq!(c.len(), 1);
    c[0].queue_id
}

#[test]
fn a_kv_pop_that_finds_the_lock_held_does_not_count_as_a_request() {
    // `PopConsumerService.popAsync` returns at a failed `tryLock` before
    // `requestCountTable`'s `getAndIncrement`: `b` leaves the count at 1, so `c` starts its
    // plan at queue 1, not 2.
    assert_eq!(queue_after_a_lost_lock(), 1);
}

/// Finding F14. KV path, two queues, per-queue pull-offset clears (F3's fix): a reset of
/// every queue to its max (0) assigns both, then clears queue 0 and stops at its
/// interleaving point. Meanwhile three messages reach queue 1, a pop of queue 1 takes the
/// pending reset, reads 0..2 and commits pull offset 3, and the client acks them. Then the
/// reset visits queue 1. Returns the offsets the next pop of queue 1 reads.
fn a_pop_takes_the_reset_before_the_cleanup_of_its_queue(fixes: &[Fix]) -> (Vec<u64>, World) {
    let config = BrokerConfig {
        pop_consumer_kv_service_enable: true,
        ..World::default_config()
    };
    let mut behaviours = Behaviours::fixed().with_fix(Fix::ClearPullOffsetOfResetQueues);
    for &f in fixes {
        behaviours = behaviours.with_fix(f);
    }
    let mut w = World::new(config, behaviours);
    w.create_topic(TOPIC, 2);
    let reset = start_reset_of_every_queue(&mut w);
    w.send_to(TOPIC, 1, 3);
    let mut req = w.pop_req(3, 60_000, false);
    req.queue_id = 1;
    let first = w.pop_with(req.clone());
    assert_eq!(
        first.iter().map(|m| m.queue_offset).collect::<Vec<_>>(),
        vec![0, 1, 2],
        "took the reset"
    );
    for m in &first {
        assert_eq!(w.ack(m).code, ResponseCode::Success);
    }
    assert!(matches!(finish(&mut w, reset).code, ResponseCode::Success));
    w.advance_to(1_000);
    let again = w.pop_with(req);
    (again.iter().map(|m| m.queue_offset).collect(), w)
}

#[test]
fn the_reset_cleanup_of_a_taken_queue_removes_the_pops_pull_offset() {
    let (again, w) = a_pop_takes_the_reset_before_the_cleanup_of_its_queue(&[]);
    assert_eq!(
        again,
        vec![0, 1, 2],
        "no pull offset: read from the commit offset, the acked messages again"
    );
    assert_eq!(
        w.commit_offset(1),
        Some(0),
        "the reset pop's commit (read start)"
    );
}

#[test]
fn with_the_fix_the_reset_cleanup_skips_a_queue_whose_reset_was_taken() {
    let (again, w) =
        a_pop_takes_the_reset_before_the_cleanup_of_its_queue(&[Fix::ResetCleanupSkipsTakenQueues]);
    assert!(
        again.is_empty(),
        "the pop's pull offset 3 survived: nothing new"
    );
    assert_eq!(w.commit_offset(1), Some(3));
}

/// Submits a reset of every queue of the topic to its max offset (timestamp −1) and runs its
/// first step: `resetOffsetInner` assigns every queue, cleans up queue 0, and yields.
fn start_reset_of_every_queue(w: &mut World) -> OpId {
    let reset = w.broker.submit(Request::ResetOffset(ResetOffsetRequest {
        group: GROUP.into(),
        topic: TOPIC.into(),
        queue_id: -1,
        offset: None,
        timestamp: -1,
        is_force: true,
    }));
    assert_eq!(
        w.broker.step(w.now, reset),
        Step::Yield,
        "assigned every queue, cleaned up queue 0"
    );
    w.events.extend(w.broker.drain_events());
    reset
}
