//! What survives a crash and a graceful shutdown, and when things are persisted
//! (`BrokerController`'s schedules, `shutdownBasicService`).

mod common;
use broker_core::*;
use common::*;

fn offsets(msgs: &[MessageExt]) -> Vec<u64> {
    msgs.iter().map(|m| m.queue_offset).collect()
}

fn persists(w: &World) -> Vec<Millis> {
    w.events
        .iter()
        .filter_map(|e| match e {
            BrokerEvent::OffsetsPersisted { at } => Some(*at),
            _ => None,
        })
        .collect()
}

fn order_persists(w: &World) -> Vec<Millis> {
    w.events
        .iter()
        .filter_map(|e| match e {
            BrokerEvent::OrderInfoPersisted { at } => Some(*at),
            _ => None,
        })
        .collect()
}

#[test]
fn the_first_offset_flush_comes_10_s_after_each_start() {
    let mut w = World::with(&[]);
    w.send(3);
    let _ = w.pop(1, 60_000); // commits at 0 (init) and at the scan
    w.advance_to(12_000);
    w.now = 12_000;
    let _ = w.pop(1, 60_000);
    w.advance_to(30_000);
    assert_eq!(
        persists(&w),
        vec![10_000, 15_000],
        "not on a 5 s grid from 0"
    );
    w.broker.crash(31_000);
    w.broker.restart(33_000);
    w.now = 33_000;
    let _ = w.pop(1, 60_000);
    w.advance_to(60_000);
    assert_eq!(
        persists(&w),
        vec![10_000, 15_000, 43_000],
        "10 s after the restart"
    );
}

#[test]
fn order_info_is_persisted_every_10_s_apart_from_the_offsets() {
    let mut w = World::with(&[]);
    w.send(4);
    let batch = w.pop_orderly(2, 60_000);
    w.ack(&batch[0]);
    w.advance_to(25_000);
    assert_eq!(order_persists(&w), vec![10_000]);
    w.now = 25_000;
    w.ack(&batch[1]);
    w.advance_to(35_000);
    assert_eq!(order_persists(&w), vec![10_000, 30_000]);
}

/// An orderly batch popped after the last OrderInfo persist, then a crash once its commits
/// reached the offset image: the restarted broker has the offsets but not the OrderInfo.
fn orderly_batch_then_crash(ack_first: bool) -> (World, Vec<MessageExt>) {
    let mut w = World::with(&[]);
    w.send(6);
    let first = w.pop_orderly(2, 5_000);
    for m in &first {
        w.ack(m);
    }
    // OrderInfo persisted at 10 s with the first batch, acked.
    w.advance_to(10_500);
    w.now = 10_500;
    let second = w.pop_orderly(3, 60_000);
    assert_eq!(offsets(&second), vec![2, 3, 4]);
    if ack_first {
        w.ack(&second[0]);
        assert_eq!(w.commit_offset(0), Some(3));
    }
    // The offset persist at 15 s sees the commit; the OrderInfo persist would be at 20 s.
    w.advance_to(16_000);
    assert_eq!(order_persists(&w), vec![10_000]);
    w.crash_restart();
    (w, second)
}

#[test]
fn a_crash_restores_a_stale_order_info_and_a_newer_receipts_ack_is_ignored() {
    let (mut w, second) = orderly_batch_then_crash(true);
    assert_eq!(w.commit_offset(0), Some(3));
    // The OrderInfo is the 10 s image (the first batch, popTime 0): the second batch's ack
    // meets another popTime, commitAndNext answers −2, and the broker says SUCCESS.
    assert_eq!(w.ack(&second[1]).code, ResponseCode::Success);
    assert_eq!(w.commit_offset(0), Some(3), "the ack was ignored");
    // So offset 3 is delivered again although it was acked.
    let again = w.pop_orderly(3, 60_000);
    assert_eq!(offsets(&again), vec![3, 4, 5]);
}

#[test]
fn a_crash_before_any_order_info_persist_makes_an_ack_commit_offset_plus_one() {
    let mut w = World::with(&[]);
    w.send(4);
    let batch = w.pop_orderly(3, 60_000);
    // Offsets persisted at 10 s (init commit), no OrderInfo yet: the order persist comes at
    // 10 s too but the crash is before it.
    w.advance_to(9_000);
    w.crash_restart();
    assert_eq!(order_persists(&w), Vec::<Millis>::new());
    // The last offset of the batch acked first: without an OrderInfo, commitAndNext answers
    // its offset + 1 and the commit passes the un-acked 0 and 1.
    assert_eq!(w.ack(&batch[2]).code, ResponseCode::Success);
    assert_eq!(w.commit_offset(0), Some(3));
    assert_eq!(offsets(&w.pop_orderly(3, 60_000)), vec![3]);
}

#[test]
fn consumed_counts_since_the_last_order_persist_are_lost() {
    let mut w = World::with(&[]);
    w.send(2);
    let _ = w.pop_orderly(2, 1_000);
    w.advance_to(1_000);
    let again = w.pop_orderly(2, 1_000);
    assert_eq!(again[0].reconsume_times, 1);
    w.advance_to(2_000);
    w.crash_restart();
    let after = w.pop_orderly(2, 1_000);
    assert_eq!(
        after[0].reconsume_times, 0,
        "the counts lived in memory only"
    );
}

/// Buffer merge on: a pop buffers its CK, an ack merges into it in memory, then the broker
/// stops (crash or shutdown) and starts again.
fn buffered_ack_then_stop(graceful: bool) -> World {
    let mut w = World::buffered(&[]);
    w.send(2);
    let msgs = w.pop(2, 20_000);
    w.advance_to(1_000);
    w.ack(&msgs[0]);
    assert_eq!(w.broker.snapshot().buffered_cks, 1);
    if graceful {
        w.broker.shutdown(w.now);
    } else {
        w.broker.crash(w.now);
    }
    w.broker.restart(w.now + 1_000);
    w.events.extend(w.broker.drain_events());
    w.advance_to(60_000);
    w
}

#[test]
fn a_shutdown_drains_the_buffer_and_persists_a_crash_does_not() {
    let w = buffered_ack_then_stop(true);
    assert!(w
        .events
        .iter()
        .any(|e| matches!(e, BrokerEvent::Crashed { graceful: true, .. })));
    assert_eq!(
        w.count(|e| matches!(e, BrokerEvent::AckWritten { reason, .. } if reason == "PopBufferMergeService.putAckToStore")),
        1,
        "the buffered ack was stored at shutdown"
    );
    assert_eq!(
        w.revived_ids(),
        vec!["m2"],
        "only the un-acked message revives"
    );
    assert_eq!(persists(&w).first(), Some(&1_000), "persisted at shutdown");

    let w = buffered_ack_then_stop(false);
    assert_eq!(
        w.revived_ids(),
        Vec::<String>::new(),
        "the CK itself was never stored: the offset re-reads both"
    );
    assert!(
        persists(&w).is_empty(),
        "nothing persisted before the crash, nothing to persist after it"
    );
    assert_eq!(
        w.commit_offset(0),
        None,
        "the init commit died with the process"
    );
}

#[test]
fn a_shutdown_persists_order_info_so_the_newer_receipt_still_acks() {
    let mut w = World::with(&[]);
    w.send(3);
    let batch = w.pop_orderly(3, 60_000);
    w.ack(&batch[0]);
    w.broker.shutdown(w.now);
    w.broker.restart(w.now);
    w.events.extend(w.broker.drain_events());
    assert_eq!(w.ack(&batch[1]).code, ResponseCode::Success);
    assert_eq!(
        w.commit_offset(0),
        Some(2),
        "the OrderInfo survived: the ack counts"
    );
}

/// Classic path, orderly: a batch of 0..9, offset 0 acked, then a reset of the queue to 4;
/// both tables are persisted at 10 s and the broker crashes. After the restart the consumer
/// acks offset 4 with its receipt from the old batch, and the group pops once the batch's
/// invisible time has passed. Returns the offsets of that pop.
fn stale_orderly_ack_after_a_reset_and_a_restart(behaviours: Behaviours) -> Vec<u64> {
    let mut w = World::new(World::default_config(), behaviours);
    w.send(10);
    let batch = w.pop_orderly(10, 60_000);
    assert_eq!(offsets(&batch), (0..10).collect::<Vec<_>>());
    assert_eq!(w.ack(&batch[0]).code, ResponseCode::Success);
    assert_eq!(w.reset(0, Some(4)).code, ResponseCode::Success);
    w.advance_to(10_500);
    w.crash_restart();
    assert_eq!(
        w.commit_offset(0),
        Some(4),
        "offsetTable was persisted with the reset"
    );
    assert_eq!(w.ack(&batch[4]).code, ResponseCode::Success);
    w.advance_to(70_000);
    offsets(&w.pop_orderly(32, 60_000))
}

#[test]
fn after_a_restart_a_stale_orderly_ack_commits_over_the_reset() {
    let read = stale_orderly_ack_after_a_reset_and_a_restart(Behaviours::fixed());
    assert_eq!(
        read.first(),
        Some(&1),
        "resetOffsetTable died with the process: commitAndNext's 1 was committed over 4"
    );
}

#[test]
fn with_the_fix_the_reset_survives_the_restart_and_guards_the_ack() {
    let read = stale_orderly_ack_after_a_reset_and_a_restart(
        Behaviours::fixed().with_fix(Fix::ResetTableSurvivesRestart),
    );
    assert_eq!(read.first(), Some(&4), "the pop takes the reset");
}

/// Finding F20: a new group (init mode MAX) pops 0..=2 at 1 s, its first message still in the
/// page cache, so `getInitOffset` commits 0, in memory only. The broker crashes at 3 s, before
/// the first offset flush (10 s after start), and restarts; offsets 3 and 4 are stored at 4 s.
/// At 6 s the first message has left the page cache: the group has no offset, is taken for a
/// new one, and starts at max − 1 = 4, so offset 3 is never delivered (0..=2 come back only
/// as their CKs revive; an orderly batch has none). With the init commit persisted at once
/// the restart restores 0 and the group reads on from there.
fn a_new_groups_start_across_a_crash(behaviours: Behaviours) -> (Vec<u64>, Vec<u64>) {
    let mut w = World::new(World::default_config(), behaviours);
    w.broker.set_store_limits(2_000, 0);
    w.send(3);
    w.advance_to(1_000);
    let mut req = w.pop_req(32, 30_000, false);
    req.init_mode = InitMode::Max;
    let first = offsets(&w.pop_with(req.clone()));
    w.advance_to(3_000);
    w.crash_restart();
    w.advance_to(4_000);
    w.send(2);
    w.advance_to(6_000);
    (first, offsets(&w.pop_with(req)))
}

#[test]
fn a_crash_before_the_first_offset_flush_makes_a_group_new_again_unless_its_init_offset_persists() {
    let (first, after) = a_new_groups_start_across_a_crash(Behaviours::fixed());
    assert_eq!(first, vec![0, 1, 2], "in the page cache: from 0");
    assert_eq!(after, vec![4], "a new group again: max − 1, 0..=3 skipped");
    let fixed = Behaviours::fixed().with_fix(Fix::InitOffsetPersistsAtOnce);
    let (first, after) = a_new_groups_start_across_a_crash(fixed);
    assert_eq!(first, vec![0, 1, 2]);
    assert_eq!(
        after,
        vec![0, 1, 2, 3, 4],
        "the restart restored 0: a replay"
    );
}

/// F20's fix covers a group's first offset however it is written (develop-random 23186): an
/// admin reset before the group's first pop of the queue writes offsetTable
/// (`assignResetOffset`); a crash before the first flush loses it on develop, and the restart's
/// init answers max − 1. With the fix the reset's entry is persisted at once.
#[test]
fn a_reset_that_writes_a_groups_first_offset_persists_at_once_with_the_f20_fix() {
    let run = |behaviours: Behaviours| {
        let mut w = World::new(World::default_config(), behaviours);
        w.broker.set_store_limits(2_000, 0);
        w.send(3);
        w.advance_to(500);
        assert_eq!(w.reset(0, Some(0)).code, ResponseCode::Success);
        w.advance_to(3_000);
        w.crash_restart();
        w.advance_to(4_000);
        w.send(2);
        w.advance_to(6_000);
        let mut req = w.pop_req(32, 30_000, false);
        req.init_mode = InitMode::Max;
        offsets(&w.pop_with(req))
    };
    assert_eq!(
        run(Behaviours::fixed()),
        vec![4],
        "develop: a new group, max − 1"
    );
    let fixed = Behaviours::fixed().with_fix(Fix::InitOffsetPersistsAtOnce);
    assert_eq!(
        run(fixed),
        vec![0, 1, 2, 3, 4],
        "the reset's 0 survived the crash"
    );
}
