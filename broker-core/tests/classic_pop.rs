//! End-to-end scenarios on the classic POP path.

mod common;
use broker_core::*;
use common::*;

#[test]
fn pop_ack_then_nothing_revives() {
    let mut w = World::new(World::default_config(), Behaviours::fixed());
    w.send(3);
    let msgs = w.pop(32, 10_000);
    assert_eq!(World::ids(&msgs), vec!["m1", "m2", "m3"]);
    for m in &msgs {
        assert_eq!(w.ack(m).code, ResponseCode::Success);
    }
    w.advance(60_000);
    assert!(w.revived().is_empty());
    assert_eq!(w.commit_offset(0), Some(3));
    assert!(w.pop(32, 10_000).is_empty());
}

#[test]
fn unacked_message_is_revived_and_popped_again() {
    let mut w = World::new(World::default_config(), Behaviours::fixed());
    w.send(2);
    let msgs = w.pop(32, 10_000);
    w.ack(&msgs[0]);
    w.advance(11_000);
    assert!(w.revived().is_empty(), "not before reviveTime + 2 s");
    w.advance(3_000);
    assert_eq!(w.revived(), vec![("m2".to_owned(), 1)]);
    let again = w.pop(32, 10_000);
    assert_eq!(World::ids(&again), vec!["m2"]);
    assert_eq!(again[0].reconsume_times, 1);
    assert!(again[0].retry_topic.as_deref() == Some("%RETRY%GroupA_TopicA"));
    w.ack(&again[0]);
    w.advance(60_000);
    assert_eq!(w.revived().len(), 1);
}

#[test]
fn idle_broker_has_no_deadline() {
    let mut w = World::new(World::default_config(), Behaviours::fixed());
    w.send(1);
    let msgs = w.pop(32, 10_000);
    w.ack(&msgs[0]);
    w.advance(100_000);
    assert_eq!(w.broker.next_deadline(), None);
}
