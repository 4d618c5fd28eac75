//! `PopBufferMergeService` end to end, and bug (c): acks merged in the buffer, flushed at
//! the 10 s stay limit without brokerName, never match their CK at revive.

mod common;
use broker_core::*;
use common::*;

/// Pop 4 at 0 s (invisible 20 s); ack 3 at 1 s (merged in the buffer); ack the last at 9 s
/// (refused by addAk's 8.5 s guard, written straight to the revive log with brokerName);
/// the CK flushes at 10 s with the 3 buffered acks; then let the reviver run.
fn issue_8835_schedule(w: &mut World) -> Vec<MessageExt> {
    w.send(4);
    let msgs = w.pop(32, 20_000);
    assert_eq!(msgs.len(), 4);
    assert_eq!(w.broker.snapshot().buffered_cks, 1, "CK held in the buffer");
    w.advance_to(1_000);
    for m in &msgs[..3] {
        assert_eq!(w.ack(m).code, ResponseCode::Success);
    }
    assert_eq!(
        w.count(|e| matches!(e, BrokerEvent::AckMergedInBuffer { .. })),
        3
    );
    assert!(
        w.ack_written_names().is_empty(),
        "merged acks write nothing yet"
    );
    w.advance_to(9_000);
    w.ack(&msgs[3]);
    assert_eq!(
        w.ack_written_names(),
        vec![Some("broker-a".to_owned())],
        "late ack goes direct, with bn"
    );
    assert_eq!(w.ck_written(), 0);
    w.advance_to(10_000);
    assert_eq!(w.ck_written(), 0, "still buffered at exactly 10 s");
    w.advance_to(10_010);
    assert_eq!(
        w.ck_written(),
        1,
        "flushed once popCkStayBufferTime has passed"
    );
    assert_eq!(w.broker.snapshot().buffered_cks, 0);
    w.advance_to(60_000);
    msgs
}

#[test]
fn bug_c_release_5_3_1_revives_the_acked_messages() {
    let mut w = World::new(
        BrokerConfig {
            enable_pop_buffer_merge: true,
            ..World::default_config()
        },
        Release::V5_3_1.behaviours(),
    );
    issue_8835_schedule(&mut w);
    let names = w.ack_written_names();
    assert_eq!(
        names[1..],
        [None, None, None],
        "flushed acks carry no brokerName"
    );
    let mut revived = w.revived();
    revived.sort();
    assert_eq!(
        revived,
        vec![("m1".into(), 1), ("m2".into(), 1), ("m3".into(), 1)]
    );
    let again = w.pop(32, 20_000);
    assert_eq!(
        World::ids(&again).len(),
        3,
        "the acked messages come back from %RETRY%"
    );
    assert!(again.iter().all(
        |m| m.retry_topic.as_deref() == Some("%RETRY%GroupA_TopicA") && m.reconsume_times == 1
    ));
}

#[test]
fn bug_c_fixed_revives_nothing() {
    let mut w = World::buffered(&[]);
    issue_8835_schedule(&mut w);
    assert_eq!(w.ack_written_names(), vec![Some("broker-a".to_owned()); 4]);
    assert!(w.revived().is_empty());
}

#[test]
fn buffered_ack_missing_broker_name_is_masked_by_the_blank_name_fallback() {
    let mut w = World::buffered(&[Behaviour::BufferedAckMissingBrokerName]);
    issue_8835_schedule(&mut w);
    assert_eq!(w.ack_written_names()[1..], [None, None, None]);
    assert!(
        w.revived().is_empty(),
        "#8981 substitutes this broker's name"
    );
}

#[test]
fn blank_name_fallback_missing_alone_is_harmless_when_acks_carry_names() {
    let mut w = World::buffered(&[Behaviour::ReviveNoBlankBrokerNameFallback]);
    issue_8835_schedule(&mut w);
    assert!(w.revived().is_empty());
}

#[test]
fn release_5_3_0_merge_key_without_broker_name_hides_bug_c() {
    let mut w = World::new(
        BrokerConfig {
            enable_pop_buffer_merge: true,
            ..World::default_config()
        },
        Release::V5_3_0.behaviours(),
    );
    issue_8835_schedule(&mut w);
    assert_eq!(w.ack_written_names()[1..], [None, None, None]);
    assert!(
        w.revived().is_empty(),
        "before #8494 the revive key had no brokerName at all"
    );
}

#[test]
fn batch_ack_flush_has_no_broker_name_and_relies_on_the_fallback() {
    let config = BrokerConfig {
        enable_pop_buffer_merge: true,
        enable_pop_batch_ack: true,
        ..World::default_config()
    };
    let mut fixed = World::new(config.clone(), Behaviours::fixed());
    issue_8835_schedule(&mut fixed);
    let batches = fixed.count(|e| matches!(e, BrokerEvent::AckWritten { batch: true, broker_name: None, ack_offsets, .. } if ack_offsets.len() == 3));
    assert_eq!(batches, 1, "one BatchAckMsg without brokerName (develop)");
    assert!(fixed.revived().is_empty());

    let mut no_fallback = World::new(
        config,
        [Behaviour::ReviveNoBlankBrokerNameFallback]
            .into_iter()
            .collect(),
    );
    issue_8835_schedule(&mut no_fallback);
    assert_eq!(
        no_fallback.revived().len(),
        3,
        "without #8981 the batch ack matches nothing"
    );
}

#[test]
fn fully_acked_buffered_ck_is_never_written() {
    let mut w = World::buffered(&[]);
    w.send(3);
    let msgs = w.pop(32, 20_000);
    w.advance_to(2_000);
    for m in &msgs {
        w.ack(m);
    }
    w.advance_to(60_000);
    assert_eq!(w.ck_written(), 0, "CK and acks cancel out in memory");
    assert!(w.ack_written_names().is_empty());
    assert!(w.revived().is_empty());
    assert_eq!(w.commit_offset(0), Some(3));
    assert_eq!(w.commits_with("PopBufferMergeService"), vec![3]);
}

#[test]
fn short_invisible_time_is_not_buffered() {
    let mut w = World::buffered(&[]);
    w.send(1);
    let _ = w.pop(32, 4_000);
    assert_eq!(
        w.count(|e| matches!(e, BrokerEvent::CkBuffered { .. })),
        0,
        "reviveTime − now < 4.5 s: addCk refuses"
    );
    assert_eq!(w.ck_written(), 1, "addCkJustOffset wrote it at once");
    w.advance(5);
    assert_eq!(
        w.broker.snapshot().buffered_cks,
        0,
        "a stored just-offset wrapper leaves at the next scan"
    );
}

#[test]
fn buffered_commit_waits_for_the_ck_at_the_head() {
    let mut w = World::buffered(&[]);
    w.send(4);
    let first = w.pop(2, 30_000);
    let second = w.pop(2, 30_000);
    assert_eq!(
        World::ids(&second),
        vec!["m3", "m4"],
        "read position = newest buffered CK's nextBeginOffset"
    );
    for m in &second {
        w.ack(m);
    }
    w.advance_to(1_000);
    assert_eq!(
        w.commit_offset(0),
        Some(0),
        "the un-acked head blocks the offset queue"
    );
    for m in &first {
        w.ack(m);
    }
    w.advance_to(1_100);
    assert_eq!(w.commit_offset(0), Some(4));
}

#[test]
fn no_wakeups_while_a_ck_waits_in_the_buffer() {
    let mut w = World::buffered(&[]);
    w.send(1);
    let _ = w.pop(1, 60_000);
    w.advance_to(5); // first scan after the pop
    let next = w.broker.next_deadline().expect("the flush is pending");
    assert_eq!(
        next, 1_000,
        "no 5 ms polling: the reviver's first round is the next thing"
    );
    w.advance_to(9_999);
    assert_eq!(
        w.broker.next_deadline(),
        Some(10_000),
        "the first offset persist, 10 s after the start"
    );
    w.advance_to(10_000);
    assert_eq!(
        w.broker.next_deadline(),
        Some(10_005),
        "then the 10 s flush, on the 5 ms grid"
    );
}

#[test]
fn reviving_twice_needs_two_expiries() {
    let mut w = World::buffered(&[]);
    w.send(1);
    let _ = w.pop(1, 10_000);
    w.advance_to(30_000);
    assert_eq!(w.revived(), vec![("m1".into(), 1)]);
    let again = w.pop(1, 10_000);
    assert_eq!(again[0].reconsume_times, 1);
    w.advance_to(60_000);
    assert_eq!(w.revived(), vec![("m1".into(), 1), ("m1".into(), 2)]);
}

fn buffered_with_f5_fix() -> World {
    World::new(
        BrokerConfig {
            enable_pop_buffer_merge: true,
            ..World::default_config()
        },
        Behaviours::fixed().with_fix(Fix::RefusedAckStoresItsCk),
    )
}

/// [`buffered_with_f5_fix`] with `n` messages popped in one buffered CK (invisible 20 s,
/// revive time 20 s), and the clock at `at`.
fn popped_with_f5_fix(n: usize, at: Millis) -> (World, Vec<MessageExt>) {
    let mut w = buffered_with_f5_fix();
    w.send(n as u64);
    let msgs = w.pop(32, 20_000);
    assert_eq!(msgs.len(), n);
    w.advance_to(at);
    (w, msgs)
}

/// Develop-random seed 1919 with every fix: the proposed fix `refused-ack-stores-its-ck`
/// stores the buffered CK before refusing a late ack; when that put fails the CK is still
/// unstored, and the scan must put it later, or its unacked messages are never revived.
#[test]
fn the_f5_fix_leaves_a_ck_whose_put_failed_for_the_scan() {
    let (mut w, msgs) = popped_with_f5_fix(2, 9_000);
    w.broker.set_store_put_failure_rate(1.0);
    w.ack(&msgs[0]);
    w.broker.set_store_put_failure_rate(0.0);
    w.advance_to(60_000);
    assert!(
        w.revived_ids().contains(&msgs[1].msg_id),
        "the never-acked message is revived: {:?}",
        w.revived_ids()
    );
}

/// Develop-random seed 82 with every fix: an ack that passed addAk's guards before the
/// 8.5 s limit is still in flight when a later ack is refused and the fix stores the CK.
/// The buffer must keep the wrapper until its normal flush (upstream stores a buffered CK
/// only then, 1.5 s after addAk stops accepting), so the in-flight ack still merges.
#[test]
fn the_f5_fix_keeps_the_wrapper_for_an_ack_in_flight() {
    let (mut w, msgs) = popped_with_f5_fix(3, 8_400);
    let first = w.broker.submit(Request::AckMessage(w.ack_req(&msgs[0])));
    assert_eq!(w.broker.step(w.now, first), Step::Yield, "guards passed");
    w.advance_to(8_600);
    assert_eq!(w.ack(&msgs[1]).code, ResponseCode::Success);
    w.advance_to(8_610);
    loop {
        if let Step::Done(r) = w.broker.step(w.now, first) {
            assert_eq!(r.code, ResponseCode::Success);
            break;
        }
    }
    w.events.extend(w.broker.drain_events());
    assert_eq!(
        w.count(|e| matches!(e, BrokerEvent::AckLostOnDroppedCk { .. })),
        0,
        "merged, not lost"
    );
    w.advance_to(60_000);
    assert_eq!(
        w.revived_ids(),
        vec![msgs[2].msg_id.clone()],
        "only the unacked one"
    );
}

/// A graceful restart in a develop-random variant with every fix (seed 1 of a copy with two
/// `shutdown` steps, the classic path): a wrapper whose CK the fix stored early and whose
/// messages were never all acked in memory (the late ack refused, the rest acked by
/// records or revived) held the queue's commit offset for good, once its normal flush had
/// taken it out of the buffer; the restart read that offset and re-delivered every acked
/// message behind it. Kept until its normal flush, the wrapper is then done like any other.
#[test]
fn the_f5_fix_lets_the_commit_offset_pass_an_early_stored_ck_after_its_flush() {
    let (mut w, msgs) = popped_with_f5_fix(2, 9_000);
    assert_eq!(
        w.ack(&msgs[0]).code,
        ResponseCode::Success,
        "refused, stored"
    );
    assert_eq!(w.ck_written(), 1, "the CK went first");
    w.advance_to(11_000);
    assert_eq!(
        w.broker.snapshot().buffered_cks,
        0,
        "flushed at its stay limit"
    );
    assert_eq!(w.commit_offset(0), Some(2), "the commit offset passed it");
}

/// Develop-random seed 2634 with every fix: the late ack's CK put fails; an ACK written now
/// would reach the revive log ahead of its CK and be dropped there, so the ack is answered
/// an error and the client's retry, once the CK is stored, leaves the message acked.
#[test]
fn the_f5_fix_answers_an_error_when_the_ck_put_fails() {
    let (mut w, msgs) = popped_with_f5_fix(2, 9_000);
    w.broker.set_store_put_failure_rate(1.0);
    assert_eq!(w.ack(&msgs[0]).code, ResponseCode::SystemError);
    assert!(w.ack_written_names().is_empty(), "no ACK ahead of its CK");
    w.broker.set_store_put_failure_rate(0.0);
    w.advance_to(9_100);
    assert_eq!(w.ack(&msgs[0]).code, ResponseCode::Success);
    w.advance_to(60_000);
    assert_eq!(w.revived_ids(), vec![msgs[1].msg_id.clone()]);
}

/// Develop-random seed 75040 with every fix: F5 through a just-offset wrapper. A CK too close
/// to its revive time for the buffer (`addCk` refuses under 4.5 s) goes to
/// `addCkJustOffset`, whose put fails; `addAk` refuses every ack for a just-offset wrapper,
/// so the ACK goes to the revive log at once (through the timer, deliver time 4 s) while the
/// CK waits for the scan. The scan's re-puts fail until past the ACK's slot, so the CK is
/// stored directly behind the delivered ACK, which the reviver drops: the acked m1 comes
/// back. With `refused-ack-stores-its-ck` the refusal first puts the unstored CK, as it does
/// for a late buffered one.
#[test]
fn a_just_offset_ck_whose_put_failed_is_overtaken_on_develop_and_not_with_the_f5_fix() {
    for merge in [true, false] {
        just_offset_ck_overtaken(merge);
    }
}

/// The same with buffer merge on or off. Off (the default), every CK is just-offset and
/// `addAk` refuses at its first guard, before it looks for the wrapper (515-517); the fix
/// applies there too (a graceful-restart variant of develop-random, seed 139 with every fix:
/// the scan stalled 5 s after the put failed, BUGGIFY).
fn just_offset_ck_overtaken(merge: bool) {
    let run = |behaviours: Behaviours| {
        let mut w = World::new(
            BrokerConfig {
                enable_pop_buffer_merge: merge,
                ..World::default_config()
            },
            behaviours,
        );
        w.send(2);
        w.broker.set_store_put_failure_rate(1.0);
        let msgs = w.pop(2, 4_000);
        assert_eq!(w.ck_written(), 0, "addCkJustOffset's put failed");
        w.broker.set_store_put_failure_rate(0.0);
        assert_eq!(w.ack(&msgs[0]).code, ResponseCode::Success);
        // The scan's re-puts fail until the ACK's slot is read (4 s); the timer's dequeue put
        // of the ACK, at 4 s, does not.
        w.broker.set_store_put_failure_rate(1.0);
        w.advance_to(3_999);
        w.broker.set_store_put_failure_rate(0.0);
        w.advance_to(60_000);
        w.revived_ids()
    };
    assert_eq!(
        run(Behaviours::fixed()),
        vec!["m1", "m2"],
        "the ACK was read before its CK and dropped (merge {merge})"
    );
    assert_eq!(
        run(Behaviours::fixed().with_fix(Fix::RefusedAckStoresItsCk)),
        vec!["m2"],
        "the refusal stored the CK first (merge {merge})"
    );
}

/// Develop-random seeds 10477 and 14686 with every fix: a late ack makes the fix
/// `refused-ack-stores-its-ck` store the buffered CK before its revive time, into a timer
/// wheel that lags; the acks merged in the buffer earlier wait for the scan's flush. The
/// scan stalls past the revive time, so those ACK records are past their deliver time and
/// stored directly, ahead of their CK still in the wheel: the reviver reads them first and
/// drops them (`PopReviveService.consumeReviveMessage`, `point == null`). Returns the
/// revived message ids.
fn early_stored_ck_then_a_stalled_flush(behaviours: Behaviours) -> Vec<String> {
    let mut w = World::new(
        BrokerConfig {
            enable_pop_buffer_merge: true,
            ..World::default_config()
        },
        behaviours,
    );
    w.broker.set_timer_lag(0, 4_000);
    w.send(3);
    // Revive time 8 s: the CK's flush comes at 8 s − popCkStayBufferTimeOut (3 s).
    let msgs = w.pop(32, 8_000);
    assert_eq!(msgs.len(), 3);
    w.advance_to(1_000);
    assert_eq!(w.ack(&msgs[0]).code, ResponseCode::Success, "merged");
    w.advance_to(4_000);
    assert_eq!(
        w.ack(&msgs[1]).code,
        ResponseCode::Success,
        "refused by addAk (under 4.5 s to the revive time): an ACK record of its own"
    );
    // The scan thread stalls from before its 5 s flush until 8.5 s.
    w.now = 8_500;
    w.broker.on_timer(w.now);
    w.events.extend(w.broker.drain_events());
    w.advance_to(30_000);
    w.broker.set_timer_lag(w.now, 0);
    w.advance_to(60_000);
    w.revived_ids()
}

#[test]
fn the_f5_fix_stores_the_buffered_acks_with_the_early_ck() {
    // Without the fix the stalled scan stores the CK and its acks directly, in order.
    assert_eq!(
        early_stored_ck_then_a_stalled_flush(Behaviours::fixed()),
        vec!["m3"]
    );
    assert_eq!(
        early_stored_ck_then_a_stalled_flush(
            Behaviours::fixed().with_fix(Fix::RefusedAckStoresItsCk)
        ),
        vec!["m3"],
        "the ack merged at 1 s must follow the CK the fix stored at 4 s"
    );
}

/// Develop-random seed 23381 with every fix: a changeInvisibleTime of a buffered receipt
/// late in its life; `ackOrigin`'s ack is refused by addAk, the fix's put of the buffered
/// CK fails, and an ACK record written now would reach the revive log ahead of its CK and
/// be dropped there (the original CK then revives before the new receipt's deadline). As
/// for an ack, no ACK is written and the change is answered an error: the old receipt
/// stays valid.
#[test]
fn the_f5_fix_answers_a_change_an_error_when_the_ck_put_fails() {
    // The store's put failures are drawn one per put from a seeded stream: burn a few draws
    // (changes of another message that fail their first put), then pick a rate that lets
    // the new CK through and fails the buffered CK's put. The interleaving is checked
    // below, so the test cannot pass vacuously.
    for burn in 0..16 {
        for percent in 1..100 {
            let (mut w, msgs) = popped_with_f5_fix(2, 9_000);
            let other = msgs[1].pop_ck.clone().expect("receipt");
            w.broker.set_store_put_failure_rate(0.999);
            for _ in 0..burn {
                let _ = w.change_invisible(&msgs[1], &other, 30_000);
            }
            w.events.extend(w.broker.drain_events());
            let before = w.events.len();
            w.broker
                .set_store_put_failure_rate(f64::from(percent) / 100.0);
            let receipt = msgs[0].pop_ck.clone().expect("receipt");
            let r = w.change_invisible(&msgs[0], &receipt, 30_000);
            w.broker.set_store_put_failure_rate(0.0);
            w.events.extend(w.broker.drain_events());
            let new_ck_written = w.events[before..].iter().any(|e| {
                matches!(e, BrokerEvent::CkWritten { reason, .. }
                    if reason.contains("appendCheckPoint"))
            });
            let ck_put_failed = w.events[before..].iter().any(|e| {
                matches!(e, BrokerEvent::StorePutFailed { site, .. }
                    if site.contains("addAk"))
            });
            if !(new_ck_written && ck_put_failed) {
                continue;
            }
            assert_eq!(r.code, ResponseCode::SystemError, "{r:?}");
            assert!(w.ack_written_names().is_empty(), "no ACK ahead of its CK");
            return;
        }
    }
    panic!("no rate gave the interleaving");
}

/// The start F17's and F19's tests share: buffer merge on (and the timer's dequeue side
/// `timer_lag` behind), 2 messages popped in one buffered CK at 0 s (invisible 8 s), the
/// first acked at 1 s and merged; at 4.99 s the CK is still buffered.
fn first_of_two_acked_into_the_buffer(
    behaviours: Behaviours,
    seed: u64,
    timer_lag: Millis,
) -> World {
    first_of_two_acked_into(
        BrokerConfig {
            enable_pop_buffer_merge: true,
            ..World::default_config()
        },
        behaviours,
        seed,
        timer_lag,
    )
}

/// [`first_of_two_acked_into_the_buffer`] on a broker `config` that merges in its buffer.
fn first_of_two_acked_into(
    config: BrokerConfig,
    behaviours: Behaviours,
    seed: u64,
    timer_lag: Millis,
) -> World {
    assert!(config.enable_pop_buffer_merge);
    let mut w = World::seeded(config, behaviours, seed);
    if timer_lag > 0 {
        w.broker.set_timer_lag(0, timer_lag);
    }
    w.send(2);
    let msgs = w.pop(32, 8_000);
    assert_eq!(msgs.len(), 2);
    w.advance_to(1_000);
    assert_eq!(w.ack(&msgs[0]).code, ResponseCode::Success, "merged");
    w.advance_to(4_990);
    assert_eq!(w.ck_written(), 0, "still buffered");
    w
}

/// The merge and revive threads stall from before the 5 s flush until 10.5 s, past the
/// revive time + 2 s (the F19 window); then one scan runs.
fn stall_the_scan_until_10_5_s(w: &mut World) {
    w.now = 10_500;
    w.broker.on_timer(w.now);
    w.events.extend(w.broker.drain_events());
}

/// What [`scan_ack_re_put_after_the_revive_time`] saw: the re-put ACK's write time and
/// deliver time, and the revived message ids.
struct RePut {
    written_at: Millis,
    deliver_at: Millis,
    revived: Vec<String>,
}

/// Finding F17 (scenarios/findings/scan-ack-re-put-overtakes-ck.toml): the timer lags 3 s;
/// 2 messages popped in one buffered CK at 0 s (revive time 8 s), the first acked at 1 s
/// (merged). The scan flushes at 5 s (revive time − popCkStayBufferTimeOut): the CK put goes
/// through, into the wheel (deliver time 7 s), and the ACK put fails. Every later scan's
/// retry fails until 8.1 s, past the revive time; that put succeeds. Returns `None` if the
/// broker seed's put-failure draws do not give that interleaving.
fn scan_ack_re_put_after_the_revive_time(behaviours: Behaviours, seed: u64) -> Option<RePut> {
    let mut w = first_of_two_acked_into_the_buffer(behaviours, seed, 3_000);
    w.broker.set_store_put_failure_rate(0.5);
    while w.ck_written() == 0 {
        if w.now > 5_500 {
            return None;
        }
        w.advance(1);
    }
    w.broker.set_store_put_failure_rate(1.0);
    if !w.ack_written_names().is_empty() {
        return None;
    }
    w.advance_to(8_100);
    assert!(w.ack_written_names().is_empty(), "every retry failed");
    w.broker.set_store_put_failure_rate(0.0);
    w.advance_to(8_200);
    let (written_at, deliver_at) = w
        .events
        .iter()
        .find_map(|e| match e {
            BrokerEvent::AckWritten { at, deliver_at, .. } => Some((*at, *deliver_at)),
            _ => None,
        })
        .expect("the retry after the revive time went in");
    w.advance_to(20_000);
    w.broker.set_timer_lag(w.now, 0);
    w.advance_to(60_000);
    Some(RePut {
        written_at,
        deliver_at,
        revived: w.revived_ids(),
    })
}

#[test]
fn a_due_scan_ack_re_put_overtakes_its_ck_on_develop_and_not_with_the_f17_fix() {
    let seed = (0..64)
        .find(|&s| scan_ack_re_put_after_the_revive_time(Behaviours::fixed(), s).is_some())
        .expect("some seed lets the CK put through and fails the ACK put");
    let develop = scan_ack_re_put_after_the_revive_time(Behaviours::fixed(), seed).unwrap();
    assert!(develop.written_at > 8_000, "put after the revive time");
    assert_eq!(
        develop.deliver_at, 8_000,
        "the CK's revive time: stored directly"
    );
    assert_eq!(
        develop.revived,
        vec!["m1", "m2"],
        "the ACK was read before its CK and dropped: the acked m1 comes back"
    );
    let fixed = scan_ack_re_put_after_the_revive_time(
        Behaviours::fixed().with_fix(Fix::DueBufferedAckGoesThroughTimer),
        seed,
    )
    .expect("the fix changes nothing before the re-put");
    assert_eq!(fixed.written_at, develop.written_at);
    assert_eq!(
        fixed.deliver_at,
        fixed.written_at + 1_000,
        "one timer slot ahead: into the wheel, behind the CK's slot (6 s)"
    );
    assert_eq!(fixed.revived, vec!["m2"], "only the unacked message");
}

/// With the timer past the CK's slot (no lag) the CK is in the revive queue already: the
/// fix keeps develop's deliver time, and a direct ACK re-put after the revive time follows
/// the CK.
#[test]
fn the_f17_fix_leaves_a_due_ack_alone_when_the_ck_was_delivered() {
    let run = |behaviours: Behaviours| {
        let mut w = first_of_two_acked_into_the_buffer(behaviours, 42, 0);
        stall_the_scan_until_10_5_s(&mut w);
        w.advance_to(60_000);
        (w.ack_written_names().len(), w.revived_ids())
    };
    let develop = run(Behaviours::fixed());
    assert_eq!(develop, (1, vec!["m2".to_owned()]));
    assert_eq!(
        run(Behaviours::fixed().with_fix(Fix::FlushedCkCarriesMergedAcks)),
        develop
    );
}

/// `appendCkAsync` / `appendAckAsync` on a master with asynchronous flush and no synchronous
/// slave, the store the model is: `CommitLog.asyncPutMessage` appends in the calling thread
/// and its future is already complete (`DefaultFlushManager.handleDiskFlush` for
/// `ASYNC_FLUSH`), so `putCkToStore`'s callback (`handleCkMessagePutResult`) marks the CK
/// stored before the scan tests `isCkStored`, and the merged ACKs go out in the same scan.
/// A flush stalled past the revive time + 2 s (the F19 window) therefore revives nothing
/// acked without a failed put, and every event is the one the synchronous put gives.
#[test]
fn append_async_puts_complete_inline_and_change_nothing() {
    let run = |append_async: bool| {
        let mut w = first_of_two_acked_into(
            BrokerConfig {
                enable_pop_buffer_merge: true,
                append_ck_async: append_async,
                append_ack_async: append_async,
                ..World::default_config()
            },
            Behaviours::fixed(),
            42,
            0,
        );
        stall_the_scan_until_10_5_s(&mut w);
        let written: Vec<(&str, Millis)> = w
            .events
            .iter()
            .filter_map(|e| match e {
                BrokerEvent::CkWritten { at, .. } => Some(("ck", *at)),
                BrokerEvent::AckWritten { at, .. } => Some(("ack", *at)),
                _ => None,
            })
            .collect();
        assert_eq!(
            written,
            vec![("ck", 10_500), ("ack", 10_500)],
            "the CK and its merged ACK in the same scan"
        );
        w.advance_to(60_000);
        assert_eq!(w.revived_ids(), vec!["m2"], "only the unacked message");
        w.events
    };
    assert_eq!(run(true), run(false));
}
