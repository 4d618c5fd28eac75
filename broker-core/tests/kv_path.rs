//! The RIP-73 KV pop path (`popConsumerKVServiceEnable`) and bug (a).

mod common;
use broker_core::*;
use common::*;

fn kv_world(behaviours: Behaviours, queues: u32) -> World {
    let config = BrokerConfig {
        pop_consumer_kv_service_enable: true,
        ..World::default_config()
    };
    let mut w = World::new(config, behaviours);
    if queues > 1 {
        w.create_topic(TOPIC, queues);
    }
    w
}

fn pop_queue(w: &mut World, queue_id: i32, max: u32, order: bool) -> Vec<MessageExt> {
    let mut req = w.pop_req(max, 10_000, order);
    req.queue_id = queue_id;
    w.pop_with(req)
}

fn offsets(msgs: &[MessageExt]) -> Vec<u64> {
    msgs.iter().map(|m| m.queue_offset).collect()
}

fn pull_offset(w: &World, queue_id: u32) -> Option<i64> {
    w.broker
        .snapshot()
        .pull_offset_table
        .get(&format!("{TOPIC}@{GROUP}"))
        .and_then(|m| m.get(&queue_id))
        .copied()
}

#[test]
fn non_fifo_pop_writes_the_pull_offset_and_commits_the_read_start() {
    let mut w = kv_world(Behaviours::fixed(), 1);
    w.send(5);
    assert_eq!(offsets(&pop_queue(&mut w, 0, 2, false)), vec![0, 1]);
    assert_eq!(pull_offset(&w, 0), Some(2));
    assert_eq!(w.commit_offset(0), Some(0));
    assert_eq!(
        offsets(&pop_queue(&mut w, 0, 2, false)),
        vec![2, 3],
        "reads from the pull offset"
    );
    assert_eq!(pull_offset(&w, 0), Some(4));
    assert_eq!(w.commit_offset(0), Some(2), "commit = start of the read");
}

#[test]
fn ack_deletes_the_record_and_unacked_records_are_revived() {
    let mut w = kv_world(Behaviours::fixed(), 1);
    w.send(2);
    let msgs = pop_queue(&mut w, 0, 2, false);
    assert_eq!(w.ack(&msgs[0]).code, ResponseCode::Success);
    w.advance_to(10_000);
    assert!(
        w.revived().is_empty(),
        "not before popTime + invisibleTime + 50 ms"
    );
    w.advance_to(10_500);
    assert_eq!(w.revived(), vec![("m2".into(), 1)]);
    w.advance_to(60_000);
    assert_eq!(w.revived().len(), 1, "a revived record is deleted");
}

#[test]
fn change_invisible_time_rewrites_the_record() {
    let mut w = kv_world(Behaviours::fixed(), 1);
    w.send(1);
    let msgs = pop_queue(&mut w, 0, 1, false);
    w.advance_to(2_000);
    let r = w.ok(Request::ChangeInvisibleTime(ChangeInvisibleTimeRequest {
        consumer_group: GROUP.into(),
        topic: TOPIC.into(),
        queue_id: 0,
        offset: 0,
        extra_info: msgs[0].pop_ck.clone().unwrap(),
        invisible_time: 30_000,
    }));
    let ResponseBody::ChangeInvisibleTime { extra_info, .. } = r.body else {
        panic!()
    };
    w.advance_to(20_000);
    assert!(w.revived().is_empty(), "the old record was deleted");
    let mut ack = w.ack_req(&msgs[0]);
    ack.extra_info = extra_info;
    w.ok(Request::AckMessage(ack));
    w.advance_to(60_000);
    assert!(
        w.revived().is_empty(),
        "the new receipt acks the new record"
    );
}

/// Orderly KV pop, ack, reset to an earlier offset, then pop/ack rounds.
fn reset_then_loop(behaviours: Behaviours) -> Vec<Vec<u64>> {
    reset_then_rounds(behaviours, &[1_000, 2_000, 3_000, 4_000])
}

/// [`reset_then_loop`] with the rounds at the given times.
fn reset_then_rounds(behaviours: Behaviours, at: &[Millis]) -> Vec<Vec<u64>> {
    let mut w = kv_world(behaviours, 1);
    w.send(6);
    let first = pop_queue(&mut w, 0, 4, true);
    for m in &first {
        w.ack(m);
    }
    assert_eq!(w.commit_offset(0), Some(4));
    assert_eq!(w.reset(0, Some(1)).code, ResponseCode::Success);
    let mut rounds = Vec::new();
    for &t in at {
        w.advance_to(t);
        let msgs = pop_queue(&mut w, 0, 2, true);
        rounds.push(offsets(&msgs));
        for m in &msgs {
            w.ack(m);
        }
    }
    rounds
}

#[test]
fn bug_a_replays_the_same_offsets_forever() {
    let rounds = reset_then_loop(
        [
            Behaviour::ResetCommitsPullOffset,
            Behaviour::KvFifoReadsPullOffset,
        ]
        .into_iter()
        .collect(),
    );
    assert_eq!(
        rounds,
        vec![vec![1, 2]; 4],
        "the pull offset pins every FIFO read at the reset"
    );
}

#[test]
fn bug_a_release_5_3_2_replays_through_its_own_kv_code() {
    // 5.3.2 pins the read at the reset too, but its FIFO pops commit nothing (#9340 came
    // later): the first replay's acks move the commit offset to 3 past the pinned read, so
    // the next replay's acks are below it and ignored, its OrderInfo stays un-acked and
    // blocks the queue for the invisible time (10 s), and then the same offsets come again.
    let rounds = reset_then_rounds(
        Release::V5_3_2.behaviours(),
        &[1_000, 2_000, 3_000, 4_000, 12_500, 13_000, 23_000],
    );
    assert_eq!(
        rounds,
        vec![
            vec![1, 2],
            vec![1, 2],
            vec![],
            vec![],
            vec![1, 2],
            vec![],
            vec![1, 2]
        ]
    );
}

#[test]
fn bug_a_fixed_by_clear_pull_offset_progresses() {
    let rounds = reset_then_loop(Release::V5_3_3.behaviours());
    assert_eq!(rounds, vec![vec![1, 2], vec![3, 4], vec![5], vec![]]);
    let rounds = reset_then_loop(Behaviours::fixed());
    assert_eq!(rounds, vec![vec![1, 2], vec![3, 4], vec![5], vec![]]);
}

#[test]
fn reset_commits_pull_offset_mechanism() {
    let mut on = kv_world([Behaviour::ResetCommitsPullOffset].into_iter().collect(), 1);
    on.send(3);
    on.reset(0, Some(1));
    assert_eq!(pull_offset(&on, 0), Some(1));
    assert_eq!(on.count(|e| matches!(e, BrokerEvent::PullOffsetCommitted { reason, offset: 1, .. } if reason == "ResetOffsetInner")), 1);

    let mut off = kv_world(Behaviours::fixed(), 1);
    off.send(3);
    let _ = pop_queue(&mut off, 0, 1, false);
    assert_eq!(pull_offset(&off, 0), Some(1));
    off.reset(0, Some(0));
    assert_eq!(pull_offset(&off, 0), None, "clearPullOffset");
    assert_eq!(
        off.count(|e| matches!(e, BrokerEvent::PullOffsetCleared { .. })),
        1
    );
}

#[test]
fn reset_without_kv_path_leaves_the_pull_table_alone() {
    let mut w = World::with(&[Behaviour::ResetCommitsPullOffset]);
    w.send(3);
    w.reset(0, Some(1));
    assert!(w.broker.snapshot().pull_offset_table.is_empty());
}

/// A group that consumed non-FIFO (pull offset 2), then pops FIFO.
fn fifo_after_non_fifo(behaviours: Behaviours) -> Vec<Vec<u64>> {
    let mut w = kv_world(behaviours, 1);
    w.send(6);
    for m in pop_queue(&mut w, 0, 2, false) {
        w.ack(&m);
    }
    let mut rounds = Vec::new();
    for round in 0..3 {
        w.advance_to(1_000 * (round + 1));
        let msgs = pop_queue(&mut w, 0, 2, true);
        rounds.push(offsets(&msgs));
        for m in &msgs {
            w.ack(m);
        }
    }
    rounds
}

#[test]
fn kv_fifo_reads_pull_offset_on_pins_reads_at_the_stale_cursor() {
    let rounds = fifo_after_non_fifo([Behaviour::KvFifoReadsPullOffset].into_iter().collect());
    assert_eq!(
        rounds,
        vec![vec![2, 3]; 3],
        "FIFO pops never move the pull offset"
    );
}

#[test]
fn kv_fifo_reads_pull_offset_off_reads_the_commit_offset() {
    let rounds = fifo_after_non_fifo(Behaviours::fixed());
    assert_eq!(
        rounds,
        vec![vec![0, 1], vec![2, 3], vec![4, 5]],
        "starts at the non-FIFO commit (the read start)"
    );
}

#[test]
fn clear_pull_offset_drops_every_queue_of_the_topic() {
    let mut w = kv_world(Behaviours::fixed(), 2);
    w.send_to(TOPIC, 0, 2);
    w.send_to(TOPIC, 1, 4);
    assert_eq!(offsets(&pop_queue(&mut w, 1, 2, false)), vec![0, 1]);
    assert_eq!(offsets(&pop_queue(&mut w, 1, 2, false)), vec![2, 3]);
    w.reset(0, Some(0));
    assert_eq!(pull_offset(&w, 1), None);
    let again = pop_queue(&mut w, 1, 2, false);
    assert_eq!(
        offsets(&again),
        vec![2, 3],
        "queue 1 falls back to its commit offset: in-flight messages again"
    );
}

#[test]
fn fifo_block_is_checked_before_the_reset_is_applied() {
    let mut w = kv_world(Behaviours::fixed(), 1);
    w.send(4);
    let _ = pop_queue(&mut w, 0, 2, true);
    w.reset(0, Some(0));
    assert!(
        pop_queue(&mut w, 0, 2, true).is_empty(),
        "#10229: a blocked FIFO queue ignores the reset"
    );
    assert!(w.broker.snapshot().reset_offset_table[&format!("{TOPIC}@{GROUP}")].contains_key(&0));
    w.advance_to(10_000);
    assert_eq!(
        offsets(&pop_queue(&mut w, 0, 2, true)),
        vec![0, 1],
        "applied once the block expires"
    );
}

#[test]
fn kv_records_survive_a_crash() {
    let mut w = kv_world(Behaviours::fixed(), 1);
    w.send(1);
    let _ = pop_queue(&mut w, 0, 1, false);
    w.advance_to(1_000);
    w.crash_restart();
    w.advance_to(20_000);
    assert_eq!(
        w.revived(),
        vec![("m1".into(), 1)],
        "RocksDB records are durable"
    );
}

/// Develop-random seed 131 (BUGGIFY's slow timer on the KV path): the revive thread stalls
/// past a record's visibility and resumes from its old `currentTime`
/// (`PopConsumerService.revive` moves `currentTime` only when a scan runs), so the late scan
/// still covers the record. The model once took the stall for scans skipped because nothing
/// was due, and its window started 3.55 s before the late tick: the record was never revived.
#[test]
fn a_stalled_revive_scan_resumes_from_its_old_current_time() {
    let mut w = kv_world(Behaviours::fixed(), 1);
    w.send(2);
    let first = pop_queue(&mut w, 0, 1, false);
    assert_eq!(offsets(&first), vec![0]);
    let mut req = w.pop_req(1, 5_000, false);
    req.queue_id = 0;
    assert_eq!(offsets(&w.pop_with(req)), vec![1]);
    w.advance_to(6_000);
    assert_eq!(w.revived(), vec![("m2".into(), 1)], "the 5 s record");
    // The record visible at 10 s is due at the 10.5 s pass; the timer runs only at 13.7 s.
    w.now = 13_700;
    w.broker.on_timer(13_700);
    w.events.extend(w.broker.drain_events());
    assert_eq!(
        w.revived(),
        vec![("m2".into(), 1), ("m1".into(), 1)],
        "the late scan still covers it"
    );
}

/// Finding F15: one message popped at 0 with invisible 10 s (deadline 10 000), then at 4 s a
/// changeInvisibleTime of 6 s: the new deadline is the old one's millisecond, so the new
/// record's store key is the old record's. The change comes at `change_at` with invisible
/// time `invisible`; `buffered` runs it with `PopConsumerCache` (`popCkStayBufferTime` 2 s:
/// cached before 2 s, in the store after). Returns the messages revived by 60 s.
fn change_to_the_same_deadline(
    behaviours: Behaviours,
    buffered: bool,
    change_at: Millis,
    invisible: Millis,
) -> Vec<(String, u32)> {
    let config = BrokerConfig {
        pop_consumer_kv_service_enable: true,
        enable_pop_buffer_merge: buffered,
        pop_ck_stay_buffer_time: 2_000,
        ..World::default_config()
    };
    let mut w = World::new(config, behaviours);
    w.send(1);
    let msgs = pop_queue(&mut w, 0, 1, false);
    assert_eq!(msgs.len(), 1);
    w.advance_to(change_at);
    let r = w.change_invisible(&msgs[0], msgs[0].pop_ck.as_deref().unwrap(), invisible);
    assert_eq!(r.code, ResponseCode::Success);
    w.advance_to(60_000);
    w.revived()
}

#[test]
fn a_change_to_the_same_deadline_deletes_the_new_record_unless_fixed() {
    assert!(
        change_to_the_same_deadline(Behaviours::fixed(), false, 4_000, 6_000).is_empty(),
        "develop: the write replaced the old record, the delete removed the new one: lost"
    );
    assert!(
        !change_to_the_same_deadline(Behaviours::fixed(), false, 4_000, 6_001).is_empty(),
        "a deadline one millisecond later: two keys, the message revives"
    );
    let fixed = Behaviours::fixed().with_fix(Fix::ChangeSkipsDeleteOfSameKey);
    assert_eq!(
        change_to_the_same_deadline(fixed, false, 4_000, 6_000),
        vec![("m1".into(), 1)],
        "fixed: the delete of the same key is skipped, the record revives once"
    );
}

#[test]
fn with_the_cache_a_same_deadline_change_loses_the_record_only_once_it_left_the_cache() {
    assert_eq!(
        change_to_the_same_deadline(Behaviours::fixed(), true, 1_000, 9_000),
        vec![("m1".into(), 1)],
        "still cached: the cache delete succeeds and the store delete is skipped"
    );
    assert!(
        change_to_the_same_deadline(Behaviours::fixed(), true, 4_000, 6_000).is_empty(),
        "written to the store after popCkStayBufferTime: the store delete removes the new record"
    );
    let fixed = Behaviours::fixed().with_fix(Fix::ChangeSkipsDeleteOfSameKey);
    assert_eq!(
        change_to_the_same_deadline(fixed, true, 4_000, 6_000),
        vec![("m1".into(), 1)]
    );
}
