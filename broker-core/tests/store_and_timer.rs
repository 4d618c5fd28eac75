//! Store put failures, the timer's rounding and lag, the reviver's knobs, the in-flight
//! thresholds, the store's page cache and retention, and an ACK for a revive queue nobody
//! reads.

mod common;
use broker_core::*;
use common::*;

fn revived_at(w: &World) -> Vec<Millis> {
    w.events
        .iter()
        .filter_map(|e| match e {
            BrokerEvent::Revived { at, .. } => Some(*at),
            _ => None,
        })
        .collect()
}

fn put_failures(w: &World, site: &str) -> usize {
    w.count(|e| matches!(e, BrokerEvent::StorePutFailed { site: s, .. } if s == site))
}

// ----------------------------------------------------------------------------------------
// Store put failures

/// Pop one message, fail every put while acking it, then let the CK come due.
fn ack_while_the_store_fails(fixes: &[Fix]) -> (World, Response) {
    let behaviours = fixes
        .iter()
        .fold(Behaviours::fixed(), |b, f| b.with_fix(*f));
    let mut w = World::new(World::default_config(), behaviours);
    w.send(1);
    let m = w.pop(1, 10_000).remove(0);
    w.broker.set_store_put_failure_rate(1.0);
    let r = w.ack(&m);
    w.broker.set_store_put_failure_rate(0.0);
    w.advance_to(30_000);
    (w, r)
}

#[test]
fn an_ack_whose_put_failed_is_answered_success_and_the_message_revives() {
    let (w, r) = ack_while_the_store_fails(&[]);
    assert_eq!(
        r.code,
        ResponseCode::Success,
        "handlePutMessageResult only logs"
    );
    assert_eq!(put_failures(&w, "AckMessageProcessor.appendAck"), 1);
    assert_eq!(w.revived_ids(), vec!["m1"], "the acked message comes back");
}

#[test]
fn with_the_fix_a_failed_ack_put_is_answered_an_error() {
    let (w, r) = ack_while_the_store_fails(&[Fix::AckPutFailureAnswersError]);
    assert_eq!(r.code, ResponseCode::SystemError);
    assert_eq!(
        w.revived_ids(),
        vec!["m1"],
        "the client knows the ack failed"
    );
}

#[test]
fn a_failed_ck_put_of_a_pop_is_put_again_by_the_scan() {
    let mut w = World::new(World::default_config(), Behaviours::fixed());
    w.send(2);
    w.broker.set_store_put_failure_rate(1.0);
    let msgs = w.pop(2, 10_000);
    assert_eq!(
        msgs.len(),
        2,
        "addCkJustOffset answers true whatever the put did"
    );
    w.advance_to(100);
    assert_eq!(w.ck_written(), 0);
    assert_eq!(
        w.commit_offset(0),
        Some(0),
        "an unstored just-offset CK blocks the commit"
    );
    w.broker.set_store_put_failure_rate(0.0);
    w.advance_to(200);
    assert_eq!(w.ck_written(), 1, "the scan put it again");
    assert_eq!(w.commit_offset(0), Some(2));
    w.advance_to(30_000);
    assert_eq!(w.revived_ids(), vec!["m1", "m2"]);
}

#[test]
fn a_failed_ck_put_of_change_invisible_time_is_an_error_and_keeps_the_old_receipt() {
    let mut w = World::new(World::default_config(), Behaviours::fixed());
    w.send(1);
    let m = w.pop(1, 10_000).remove(0);
    w.broker.set_store_put_failure_rate(1.0);
    let r = w.change_invisible(&m, &m.pop_ck.clone().unwrap(), 60_000);
    assert_eq!(r.code, ResponseCode::SystemError);
    w.broker.set_store_put_failure_rate(0.0);
    assert_eq!(w.ack(&m).code, ResponseCode::Success);
    w.advance_to(30_000);
    assert!(w.revived().is_empty(), "the old receipt still acks");
}

/// Pop one message (10 s), then change its invisible time to 60 s with half the puts
/// failing, on the first broker seed whose draws store the new CK and fail `ackOrigin`'s put.
fn change_invisible_time_whose_ack_origin_fails(fixes: &[Fix]) -> (World, Response) {
    let behaviours = fixes
        .iter()
        .fold(Behaviours::fixed(), |b, f| b.with_fix(*f));
    for seed in 0..64 {
        let mut w = World::new(World::default_config(), behaviours.clone());
        w.broker = Broker::new(World::default_config(), behaviours.clone(), seed);
        w.create_topic(TOPIC, 1);
        w.ok(Request::CreateSubscriptionGroup(
            CreateSubscriptionGroupRequest {
                group: GROUP.into(),
            },
        ));
        w.send(1);
        let m = w.pop(1, 10_000).remove(0);
        w.broker.set_store_put_failure_rate(0.5);
        let r = w.change_invisible(&m, &m.pop_ck.clone().unwrap(), 60_000);
        w.broker.set_store_put_failure_rate(0.0);
        if put_failures(&w, broker_core::events::CHANGE_CK_REASON) == 0
            && put_failures(&w, "ChangeInvisibleTimeProcessor.ackOrigin") == 1
        {
            w.advance_to(100_000);
            return (w, r);
        }
    }
    panic!("no seed in 0..64 stored the new CK and failed the ACK put");
}

#[test]
fn a_failed_ack_origin_put_is_answered_success_and_the_old_ck_revives_early() {
    let (w, r) = change_invisible_time_whose_ack_origin_fails(&[]);
    assert_eq!(
        r.code,
        ResponseCode::Success,
        "ackOrigin only logs the failed put and completes true"
    );
    let at = revived_at(&w);
    assert_eq!(at.len(), 2, "the original CK and the new one: {at:?}");
    assert!(
        at[0] < 60_000,
        "the original CK revives before the new handle's deadline: {at:?}"
    );
}

#[test]
fn with_the_fix_a_failed_ack_origin_put_is_answered_an_error() {
    let (w, r) = change_invisible_time_whose_ack_origin_fails(&[Fix::AckOriginFailureAnswersError]);
    assert_eq!(
        r.code,
        ResponseCode::SystemError,
        "the client keeps the original receipt"
    );
    let at = revived_at(&w);
    assert_eq!(
        at.len(),
        2,
        "the new CK is stored already: it revives too (a duplicate, not a loss): {at:?}"
    );
}

#[test]
fn a_failed_revive_put_re_puts_the_ck_with_a_back_off() {
    // Find a seed whose draws fail the retry put and pass the re-put (rate 0.5).
    let mut found = false;
    for seed in 0..64 {
        let mut w = World::new(World::default_config(), Behaviours::fixed());
        w.broker = Broker::new(World::default_config(), Behaviours::fixed(), seed);
        w.ok(Request::CreateTopic(CreateTopicRequest {
            topic: TOPIC.into(),
            read_queue_nums: 1,
        }));
        w.ok(Request::CreateSubscriptionGroup(
            CreateSubscriptionGroupRequest {
                group: GROUP.into(),
            },
        ));
        w.send(1);
        let _ = w.pop(1, 10_000);
        w.advance_to(12_000);
        w.broker.set_store_put_failure_rate(0.5);
        w.advance_to(20_000);
        w.broker.set_store_put_failure_rate(0.0);
        let reput = w.events.iter().find_map(|e| match e {
            BrokerEvent::CkWritten {
                ck,
                reason,
                at,
                deliver_at,
                ..
            } if reason == "PopReviveService.rePutCK" => Some((ck.clone(), *at, *deliver_at)),
            _ => None,
        });
        let Some((ck, at, deliver_at)) = reput else {
            continue;
        };
        if put_failures(&w, "PopReviveService.reviveRetry") != 1 {
            continue;
        }
        found = true;
        // Same popTime, the message as startOffset, the first back-off (10 s) added once
        // the old revive time (10 s) had passed.
        assert_eq!((ck.start_offset, ck.num, ck.pop_time), (0, 1, 0));
        assert_eq!(ck.invisible_time, 20_000);
        assert_eq!(deliver_at, 19_000);
        assert!(at > 10_000);
        assert!(revived_at(&w).is_empty());
        w.advance_to(60_000);
        assert_eq!(w.revived_ids(), vec!["m1"], "the re-put CK revives it");
        break;
    }
    assert!(found, "no seed in 0..64 failed exactly the retry put");
}

/// Pop one message and fail every put while its CK comes due: the retry put and the re-put.
fn revive_while_the_store_fails(fixes: &[Fix]) -> World {
    let behaviours = fixes
        .iter()
        .fold(Behaviours::fixed(), |b, f| b.with_fix(*f));
    let mut w = World::new(World::default_config(), behaviours);
    w.send(1);
    let _ = w.pop(1, 10_000);
    w.advance_to(12_000);
    w.broker.set_store_put_failure_rate(1.0);
    w.advance_to(20_000);
    w.broker.set_store_put_failure_rate(0.0);
    w.advance_to(100_000);
    w
}

#[test]
fn a_failed_re_put_loses_the_message() {
    let w = revive_while_the_store_fails(&[]);
    assert_eq!(put_failures(&w, "PopReviveService.reviveRetry"), 1);
    assert_eq!(put_failures(&w, "PopReviveService.rePutCK"), 1);
    assert!(
        w.revived().is_empty(),
        "the revive offset moved on: nothing is left"
    );
}

#[test]
fn with_the_fix_a_failed_re_put_holds_the_revive_offset_and_the_next_round_revives() {
    let w = revive_while_the_store_fails(&[Fix::RePutFailureHoldsReviveOffset]);
    let retries = put_failures(&w, "PopReviveService.reviveRetry");
    assert!(
        retries > 1,
        "every round while the store fails reads the CK again"
    );
    assert_eq!(put_failures(&w, "PopReviveService.rePutCK"), retries);
    let at = revived_at(&w);
    assert_eq!(w.revived_ids(), vec!["m1"]);
    assert!(at[0] > 20_000, "revived once the store recovered: {at:?}");
}

#[test]
fn a_failed_buffered_ack_put_is_tried_again() {
    let mut w = World::buffered(&[]);
    w.send(2);
    let m = w.pop(2, 20_000).remove(0);
    w.ack(&m);
    // popCkStayBufferTime (10 s): the flush stores the CK and the ack.
    w.advance_to(10_000);
    w.broker.set_store_put_failure_rate(1.0);
    w.advance_to(10_100);
    w.broker.set_store_put_failure_rate(0.0);
    assert!(put_failures(&w, "PopBufferMergeService.putCkToStore") >= 1);
    w.advance_to(60_000);
    assert_eq!(
        w.count(|e| matches!(e, BrokerEvent::AckWritten { .. })),
        1,
        "stored once the store is back"
    );
    assert_eq!(w.revived_ids(), vec!["m2"], "only the un-acked one");
}

// ----------------------------------------------------------------------------------------
// The timer and the reviver

#[test]
fn a_lagging_timer_delays_revive_and_a_lag_over_a_second_keeps_end_time_still() {
    let run = |lag: Millis| {
        let mut w = World::new(World::default_config(), Behaviours::fixed());
        w.broker.set_timer_lag(0, lag);
        w.send(1);
        let _ = w.pop(1, 10_000);
        w.advance_to(40_000);
        let first = revived_at(&w);
        w.broker.set_timer_lag(w.now, 0);
        w.advance_to(60_000);
        (first, revived_at(&w))
    };
    assert_eq!(run(0).0, vec![12_100]);
    // 900 ms: the records reach the queue later, and endTime can still move to now.
    let (small, _) = run(900);
    assert_eq!(small.len(), 1);
    assert_ne!(small[0], 12_100, "the scans meet the CK at another time");
    // 1.5 s: getDequeueBehind() is 1, endTime never moves: no revive while it lags...
    let (lagging, later) = run(1_500);
    assert!(lagging.is_empty(), "{lagging:?}");
    // ...and once the lag is gone, it does.
    assert_eq!(later.len(), 1);
}

/// A timer 3 s behind: m1 popped (5 s) and acked in time, its ACK parked in the wheel (slot
/// 6 s, read at 10 s); m2 popped at 5 s (3.5 s) and acked late at 9.5 s, so its ACK is
/// stored directly. Returns the revived message ids.
fn late_ack_while_the_timer_lags(fixes: &[Fix]) -> Vec<String> {
    let behaviours = fixes
        .iter()
        .fold(Behaviours::fixed(), |b, f| b.with_fix(*f));
    let mut w = World::new(World::default_config(), behaviours);
    w.broker.set_timer_lag(0, 3_000);
    w.send(2);
    // Off the second: m1's CK (deliver 5.01 s) and ACK (6.01 s) wait in different slots.
    w.advance_to(1_010);
    let m1 = w.pop(1, 5_000).remove(0);
    w.advance_to(2_000);
    assert_eq!(w.ack(&m1).code, ResponseCode::Success);
    w.advance_to(5_000);
    let m2 = w.pop(1, 3_500).remove(0);
    w.advance_to(9_500);
    assert_eq!(
        w.ack(&m2).code,
        ResponseCode::Success,
        "a late ack is still accepted"
    );
    w.advance_to(20_000);
    w.broker.set_timer_lag(w.now, 0);
    w.advance_to(60_000);
    w.revived_ids()
}

#[test]
fn a_record_stored_directly_moves_end_time_past_an_ack_still_in_the_lagging_timer() {
    assert_eq!(
        late_ack_while_the_timer_lags(&[]),
        vec!["m1", "m2"],
        "the late ACK (deliver time 8.5 s) carries endTime past m1's reviveTime (6 s) + 2 s \
         while m1's ACK waits in the wheel"
    );
}

#[test]
fn with_the_fix_end_time_follows_the_timer_and_the_acked_message_stays_acked() {
    assert_eq!(
        late_ack_while_the_timer_lags(&[Fix::ReviveEndTimeFollowsTimer]),
        vec!["m2"],
        "only the late-acked message comes back"
    );
}

#[test]
fn revive_scan_time_ends_a_scan_that_keeps_reading() {
    let run = |scan_time: Millis| {
        let config = BrokerConfig {
            revive_scan_time: scan_time,
            ..World::default_config()
        };
        let mut w = World::new(config, Behaviours::fixed());
        w.send(1);
        w.advance_to(100);
        let _ = w.pop(1, 10_000);
        w.advance_to(60_000);
        revived_at(&w)
    };
    assert_eq!(run(10_000), vec![12_200]);
    // The CK (slot 9 s) reaches the queue at 10 s, partway into a scan: a non-empty read
    // after the scan time, so that scan ends unread, an idle round's rest follows, and a
    // later scan takes the CK: the rounds fall differently.
    let short = run(1);
    assert_eq!(short, vec![13_000]);
}

#[test]
fn revive_max_slow_spaces_the_idle_rounds() {
    let rounds = |max_slow: u32| {
        let config = BrokerConfig {
            revive_max_slow: max_slow,
            ..World::default_config()
        };
        let mut w = World::new(config, Behaviours::fixed());
        let mut wakeups = 0;
        while let Some(t) = w.broker.next_deadline() {
            if t > 120_000 {
                break;
            }
            w.advance_to(t);
            wakeups += 1;
        }
        wakeups
    };
    // An idle round: scan start, the 41st empty read, the merge; then a rest of slow × 1 s
    // and 1 s. With slow capped at 1 a round takes 6.1 s, at 3 it takes 8.1 s.
    let fast = rounds(1);
    let slow = rounds(3);
    assert!(fast > slow, "{fast} vs {slow}");
}

// ----------------------------------------------------------------------------------------
// In-flight thresholds

#[test]
fn the_classic_threshold_stops_pops_of_a_queue_with_too_much_in_flight() {
    let config = BrokerConfig {
        enable_pop_message_threshold: true,
        pop_inflight_message_threshold: 2,
        ..World::default_config()
    };
    let mut w = World::new(config, Behaviours::fixed());
    w.send(6);
    let first = w.pop(3, 60_000);
    assert_eq!(first.len(), 3);
    assert!(w.pop(3, 60_000).is_empty(), "3 in flight > 2");
    w.ack(&first[0]);
    assert_eq!(
        w.pop(3, 60_000).len(),
        3,
        "2 in flight is not above the threshold"
    );
    let off = BrokerConfig {
        enable_pop_message_threshold: false,
        pop_inflight_message_threshold: 2,
        ..World::default_config()
    };
    let mut w = World::new(off, Behaviours::fixed());
    w.send(6);
    assert_eq!(w.pop(3, 60_000).len(), 3);
    assert_eq!(w.pop(3, 60_000).len(), 3, "off: no threshold");
}

/// Upstream's order in `PopMessageProcessor.popMsgFromQueue`: `isPopShouldStop` runs before
/// `getPopOffset`, `ConsumerOrderInfoManager.checkBlock` and the orderly pop's
/// `clearInFlightMessageNum`, and only `ackOrderly` lowers an orderly queue's count (no CK,
/// no revive). An orderly batch above the threshold whose acks never come stops its queue
/// after the batch's invisible time too; a restart (the counter lives in memory) or an
/// admin reset (`resetOffsetInner` clears the queue's count) lets it go again.
#[test]
fn an_orderly_batch_above_the_threshold_stops_its_queue_until_acked() {
    let config = BrokerConfig {
        enable_pop_message_threshold: true,
        pop_inflight_message_threshold: 2,
        ..World::default_config()
    };
    let mut w = World::new(config.clone(), Behaviours::fixed());
    w.send(5);
    let batch = w.pop_orderly(3, 10_000);
    assert_eq!(batch.len(), 3);
    w.advance_to(20_000);
    assert!(
        w.pop_orderly(3, 10_000).is_empty(),
        "3 in flight > 2: skipped before checkBlock, though the block has lapsed"
    );
    w.advance_to(60_000);
    assert!(w.pop_orderly(3, 10_000).is_empty(), "and for good");
    w.crash_restart();
    assert_eq!(
        w.pop_orderly(3, 10_000).len(),
        3,
        "a restart forgets the count: the batch comes again"
    );

    let mut w = World::new(config.clone(), Behaviours::fixed());
    w.send(5);
    let batch = w.pop_orderly(3, 10_000);
    w.ack(&batch[0]);
    w.advance_to(20_000);
    assert_eq!(
        w.pop_orderly(3, 10_000).len(),
        3,
        "one ackOrderly brings it to 2, not above the threshold"
    );

    let mut w = World::new(config, Behaviours::fixed());
    w.send(5);
    w.pop_orderly(3, 10_000);
    w.advance_to(20_000);
    assert_eq!(w.reset(0, Some(0)).code, ResponseCode::Success);
    assert_eq!(
        w.pop_orderly(3, 10_000).len(),
        3,
        "an admin reset clears the queue's count"
    );
}

/// Finding F21's proposed fix: an orderly pop skips the threshold test, reaches
/// `checkBlock` and, the block lapsed, clears the count: the batch comes again.
#[test]
fn with_the_f21_fix_an_orderly_queue_above_the_threshold_pops_again_once_unblocked() {
    let config = BrokerConfig {
        enable_pop_message_threshold: true,
        pop_inflight_message_threshold: 2,
        ..World::default_config()
    };
    let fixed = Behaviours::fixed().with_fix(Fix::OrderlyPopSkipsInflightThreshold);
    let mut w = World::new(config.clone(), fixed);
    w.send(5);
    assert_eq!(w.pop_orderly(3, 10_000).len(), 3);
    w.advance_to(5_000);
    assert!(
        w.pop_orderly(3, 10_000).is_empty(),
        "still blocked by its OrderInfo"
    );
    w.advance_to(20_000);
    assert_eq!(
        w.pop_orderly(3, 10_000).len(),
        3,
        "the block lapsed: a replay"
    );
    // A concurrent pop of the same queue still meets the threshold.
    let mut w = World::new(
        config,
        Behaviours::fixed().with_fix(Fix::OrderlyPopSkipsInflightThreshold),
    );
    w.send(5);
    assert_eq!(w.pop(3, 10_000).len(), 3);
    assert!(w.pop(3, 10_000).is_empty(), "3 in flight > 2");
}

/// Upstream's counting (finding F23): a popped message retention deletes before its ack is
/// neither acked (`NO_MESSAGE` below the min offset, no `appendAck`) nor revived
/// (`reviveMsgFromCk` finds no biz message and goes on), so it stays in
/// `PopInflightMessageCounter`; once such leaks pass the threshold the queue is skipped for
/// good, though nothing is in flight. With the proposed fix the revive takes each deleted
/// message off the count, and the queue pops again.
#[test]
fn messages_retention_deleted_in_flight_stay_counted_unless_the_f23_fix_is_in() {
    let run = |behaviours: Behaviours| {
        let config = BrokerConfig {
            enable_pop_message_threshold: true,
            pop_inflight_message_threshold: 2,
            ..World::default_config()
        };
        let mut w = World::new(config, behaviours);
        w.broker.set_store_limits(0, 10_000);
        w.send(3);
        let batch = w.pop(3, 20_000);
        assert_eq!(batch.len(), 3);
        w.advance_to(15_000);
        for m in &batch {
            let code = w.handle(Request::AckMessage(w.ack_req(m))).code;
            assert_eq!(code, ResponseCode::NoMessage, "deleted at 10 s");
        }
        // Past the CK's revive time: the reviver finds every offset deleted.
        w.advance_to(60_000);
        assert!(w.revived_ids().is_empty());
        w.now = 60_000;
        w.send(2);
        World::ids(&w.pop(3, 20_000))
    };
    assert!(
        run(Behaviours::fixed()).is_empty(),
        "develop: 3 leaked > 2, the new messages are never popped"
    );
    assert_eq!(
        run(Behaviours::fixed().with_fix(Fix::ReviveOfDeletedMessageLowersInflight)),
        vec!["m4", "m5"],
        "the fix: the revive took the deleted messages off the count"
    );
}

#[test]
fn the_kv_threshold_counts_the_cache_only() {
    let config = |merge: bool| BrokerConfig {
        pop_consumer_kv_service_enable: true,
        enable_pop_buffer_merge: merge,
        enable_pop_message_threshold: true,
        pop_inflight_message_threshold: 3,
        ..World::default_config()
    };
    let mut w = World::new(config(true), Behaviours::fixed());
    w.send(6);
    assert_eq!(w.pop(3, 60_000).len(), 3);
    assert!(w.pop(3, 60_000).is_empty(), "3 cached records ≥ 3");
    let mut w = World::new(config(false), Behaviours::fixed());
    w.send(6);
    assert_eq!(w.pop(3, 60_000).len(), 3);
    assert_eq!(
        w.pop(3, 60_000).len(),
        3,
        "without the cache the threshold never applies"
    );
}

// ----------------------------------------------------------------------------------------
// PopConsumerCache

fn kv_cache_world() -> World {
    let config = BrokerConfig {
        pop_consumer_kv_service_enable: true,
        enable_pop_buffer_merge: true,
        ..World::default_config()
    };
    World::new(config, Behaviours::fixed())
}

#[test]
fn the_cache_holds_the_commit_at_its_smallest_offset_and_flushes_after_the_stay_time() {
    let mut w = kv_cache_world();
    w.send(4);
    let a = w.pop(2, 60_000);
    let b = w.pop(2, 60_000);
    assert_eq!(World::ids(&b), vec!["m3", "m4"]);
    assert_eq!(w.commit_offset(0), Some(0), "the cache's smallest offset");
    w.ack(&a[0]);
    w.ack(&a[1]);
    w.advance_to(1_000);
    assert_eq!(
        w.commit_offset(0),
        Some(2),
        "the cleanup commits the new smallest"
    );
    // popCkStayBufferTime (10 s): the records go to the store, the cache is empty and
    // commits nothing more.
    w.advance_to(11_000);
    w.advance_to(100_000);
    assert_eq!(w.revived_ids(), vec!["m3", "m4"], "revived from the store");
}

#[test]
fn a_crash_drops_the_cache_and_the_group_reads_again_from_its_commit() {
    let mut w = kv_cache_world();
    w.send(2);
    let a = w.pop(2, 60_000);
    assert_eq!(a.len(), 2);
    // Before popCkStayBufferTime: the records are only in the cache.
    w.advance_to(5_000);
    w.crash_restart();
    assert_eq!(World::ids(&w.pop(2, 60_000)), vec!["m1", "m2"]);
    w.advance_to(200_000);
    assert_eq!(
        w.revived_ids(),
        vec!["m1", "m2"],
        "the re-read's records, not the lost ones"
    );
}

#[test]
fn a_cache_record_whose_revive_fails_is_lost_unless_the_fix_keeps_it() {
    let run = |fixes: &[Fix]| {
        let behaviours = fixes
            .iter()
            .fold(Behaviours::fixed(), |b, f| b.with_fix(*f));
        let config = BrokerConfig {
            pop_consumer_kv_service_enable: true,
            enable_pop_buffer_merge: true,
            ..World::default_config()
        };
        let mut w = World::new(config, behaviours);
        w.send(1);
        let _ = w.pop(1, 3_000);
        w.advance_to(2_500);
        w.broker.set_store_put_failure_rate(1.0);
        w.advance_to(3_200); // the cleanup at 3 s revives it: the put fails
        w.broker.set_store_put_failure_rate(0.0);
        w.advance_to(60_000);
        w.revived_ids()
    };
    assert_eq!(run(&[]), Vec::<String>::new());
    assert_eq!(run(&[Fix::CacheReviveFailureKeepsRecord]), vec!["m1"]);
}

#[test]
fn a_failed_kv_revive_is_written_back_with_a_back_off() {
    let config = BrokerConfig {
        pop_consumer_kv_service_enable: true,
        ..World::default_config()
    };
    let mut w = World::new(config, Behaviours::fixed());
    w.send(1);
    let _ = w.pop(1, 3_000);
    w.broker.set_store_put_failure_rate(1.0);
    w.advance_to(4_000);
    w.broker.set_store_put_failure_rate(0.0);
    assert_eq!(put_failures(&w, "PopReviveService.reviveRetry"), 1);
    w.advance_to(12_000);
    assert!(w.revived().is_empty(), "10 s back-off");
    w.advance_to(20_000);
    assert_eq!(w.revived_ids(), vec!["m1"]);
}

// ----------------------------------------------------------------------------------------
// The store's page cache and retention, and revive queues nobody reads

#[test]
fn init_max_pops_the_last_one_once_the_first_message_left_the_page_cache() {
    let run = |page_cache_ms: Millis| {
        let mut w = World::new(World::default_config(), Behaviours::fixed());
        w.broker.set_store_limits(page_cache_ms, 0);
        w.send(5);
        w.advance_to(5_000);
        let mut req = w.pop_req(32, 10_000, false);
        req.init_mode = InitMode::Max;
        World::ids(&w.pop_with(req))
    };
    assert_eq!(
        run(0),
        vec!["m1", "m2", "m3", "m4", "m5"],
        "in memory: from 0"
    );
    assert_eq!(run(1_000), vec!["m5"], "paged out: max − 1");
}

#[test]
fn retention_moves_the_min_offset() {
    let mut w = World::new(World::default_config(), Behaviours::fixed());
    w.broker.set_store_limits(0, 10_000);
    w.send(3);
    w.advance_to(5_000);
    w.now = 5_000;
    w.send(2);
    w.advance_to(12_000);
    assert!(w
        .events
        .iter()
        .any(|e| matches!(e, BrokerEvent::MessagesExpired { min_offset: 3, .. })));
    let mut req = w.pop_req(32, 10_000, false);
    req.init_mode = InitMode::Max;
    assert_eq!(
        World::ids(&w.pop_with(req)),
        vec!["m5"],
        "min > 0: init MAX pops the last one"
    );
    let mut req = w.pop_req(32, 10_000, false);
    req.consumer_group = "other".into();
    w.ok(Request::CreateSubscriptionGroup(
        CreateSubscriptionGroupRequest {
            group: "other".into(),
        },
    ));
    req.init_mode = InitMode::Min;
    assert_eq!(World::ids(&w.pop_with(req)), vec!["m4", "m5"]);
}

#[test]
fn an_ack_for_a_revive_queue_nobody_reads_is_accepted_and_changes_nothing() {
    let mut w = World::new(World::default_config(), Behaviours::fixed());
    w.send(1);
    let m = w.pop(1, 10_000).remove(0);
    // A receipt from a broker with more revive queues (reviveQueueNum is 1 here).
    let mut info = ExtraInfo::parse(m.pop_ck.as_deref().unwrap()).unwrap();
    info.revive_qid = 5;
    let mut req = w.ack_req(&m);
    req.extra_info = info.build();
    assert_eq!(
        w.handle(Request::AckMessage(req)).code,
        ResponseCode::Success
    );
    assert_eq!(
        w.count(|e| matches!(e, BrokerEvent::AckWritten { revive_qid: 5, .. })),
        1
    );
    w.advance_to(30_000);
    assert_eq!(w.revived_ids(), vec!["m1"], "no reviver reads queue 5");
}

/// Two messages popped in one CK (10 s) come due with half the puts failing, on the first
/// broker seed whose draws fail both retry puts, store m1's re-put CK and fail m2's. m1's
/// re-put CK (`rePutCK`: startOffset m1's offset 0, the old popTime) has the old CK's merge
/// key. `late`: the timer lags 15 s until 20 s, so the revive comes after the re-put CK's
/// deliver time and the next round reads both CKs; otherwise the next round reads the old
/// CK alone (the re-put one still in the timer).
fn ck_held_after_its_first_message_was_re_put(fixes: &[Fix], late: bool) -> World {
    let behaviours = fixes
        .iter()
        .fold(Behaviours::fixed(), |b, f| b.with_fix(*f));
    for seed in 0..256 {
        let mut w = World::new(World::default_config(), behaviours.clone());
        w.broker = Broker::new(World::default_config(), behaviours.clone(), seed);
        w.create_topic(TOPIC, 1);
        w.ok(Request::CreateSubscriptionGroup(
            CreateSubscriptionGroupRequest {
                group: GROUP.into(),
            },
        ));
        w.send(2);
        if late {
            w.broker.set_timer_lag(0, 15_000);
        }
        let _ = w.pop(2, 10_000);
        w.advance_to(if late { 20_000 } else { 12_000 });
        if late {
            w.broker.set_timer_lag(20_000, 0);
        }
        w.broker.set_store_put_failure_rate(0.5);
        while w.now < 60_000
            && !w
                .events
                .iter()
                .any(|e| matches!(e, BrokerEvent::ReviveDecided { .. }))
        {
            let t = w.now + 100;
            w.advance_to(t);
        }
        w.broker.set_store_put_failure_rate(0.0);
        let puts: Vec<&str> = w
            .events
            .iter()
            .filter_map(|e| match e {
                BrokerEvent::StorePutFailed { site, .. } => Some(site.as_ref()),
                BrokerEvent::CkWritten { reason, .. } if reason == "PopReviveService.rePutCK" => {
                    Some("stored re-put")
                }
                _ => None,
            })
            .collect();
        if puts
            == [
                "PopReviveService.reviveRetry",
                "stored re-put",
                "PopReviveService.reviveRetry",
                "PopReviveService.rePutCK",
            ]
        {
            w.advance_to(200_000);
            return w;
        }
    }
    panic!("no seed in 0..256 failed both retry puts and only the second re-put");
}

#[test]
fn the_f9_fix_loses_a_held_ck_to_the_re_put_ck_of_its_first_message() {
    // Develop-random 63861 (`--fix all`): the reviver, late, revived a CK of seven messages
    // of events/2; offset 0's retry put failed and its re-put was stored, offset 4's retry
    // put and re-put failed. The fix held the revive offset before the CK, and the next
    // round read it again together with offset 0's re-put CK, whose merge key is the same
    // (`consumeReviveMessage` keys by topic, group, queue, startOffset, popTime and broker;
    // `rePutCK` keeps the popTime and takes the message's offset as startOffset): the later
    // record replaced the old CK in the map, and offset 4 was never revived.
    let w = ck_held_after_its_first_message_was_re_put(&[Fix::RePutFailureHoldsReviveOffset], true);
    assert_eq!(w.revived_ids(), vec!["m1"], "m2 is lost");
    // The next round read the old CK alone: both revive (m1 twice, by its re-put CK too).
    let w =
        ck_held_after_its_first_message_was_re_put(&[Fix::RePutFailureHoldsReviveOffset], false);
    assert_eq!(w.revived_ids(), vec!["m1", "m2", "m1"]);
    // Develop commits past the CK at once: m2 is lost there too (F9 itself).
    let w = ck_held_after_its_first_message_was_re_put(&[], true);
    assert_eq!(w.revived_ids(), vec!["m1"]);
}
