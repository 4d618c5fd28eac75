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
    w.advance(12_000);
    assert!(w.revived().is_empty(), "not before reviveTime + 2 s");
    // The timer reads the CK's slot (8 s: its 9 s deliver time rounded down) once the clock
    // has left it, at 9 s, and the ACK's (9 s) at 10 s; the scan that read them revives
    // once endTime (10 s) is more than 3 s old and it moves to now, at 13.1 s.
    w.advance_to(13_099);
    assert!(w.revived().is_empty());
    w.advance_to(13_100);
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
fn an_idle_broker_only_runs_its_revivers_idle_rounds() {
    let mut w = World::new(World::default_config(), Behaviours::fixed());
    w.send(1);
    let msgs = w.pop(32, 10_000);
    w.ack(&msgs[0]);
    w.advance(100_000);
    let seen = w.events.len();
    // `run()`: a scan of 41 empty reads (4.1 s), then a rest of `slow` × 1 s (growing to
    // `reviveMaxSlow` = 3) plus the 1 s before the next scan: one round every 8.1 s.
    let first = w.broker.next_deadline().expect("the reviver never stops");
    w.advance(30_000);
    assert_eq!(w.events.len(), seen, "idle rounds change nothing");
    let next = w.broker.next_deadline().unwrap();
    assert!(next > first);
}

fn pop_code(w: &mut World, req: PopMessageRequest) -> ResponseCode {
    w.handle(Request::PopMessage(req)).code
}

#[test]
fn pop_request_checks() {
    let mut w = World::with(&[]);
    let mut req = w.pop_req(33, 10_000, false);
    assert_eq!(
        pop_code(&mut w, req.clone()),
        ResponseCode::InvalidParameter
    );
    req.max_msg_nums = 32;
    req.topic = "nope".into();
    assert_eq!(pop_code(&mut w, req.clone()), ResponseCode::TopicNotExist);
    req.topic = TOPIC.into();
    req.queue_id = 1;
    assert_eq!(
        pop_code(&mut w, req.clone()),
        ResponseCode::InvalidParameter
    );
    req.queue_id = 0;
    req.consumer_group = "nope".into();
    assert_eq!(
        pop_code(&mut w, req.clone()),
        ResponseCode::SubscriptionGroupNotExist
    );
    req.consumer_group = GROUP.into();
    let r = w.handle(Request::PopMessage(req.clone()));
    assert_eq!(
        r.code,
        ResponseCode::PollingTimeout,
        "nothing found: what a parked request ends with"
    );
    assert!(matches!(
        r.body,
        ResponseBody::Pop(PopResult {
            status: PopStatus::PollingNotFound,
            ..
        })
    ));

    let config = BrokerConfig {
        timer_wheel_enable: false,
        ..World::default_config()
    };
    let mut no_timer = World::new(config, Behaviours::fixed());
    assert_eq!(pop_code(&mut no_timer, req), ResponseCode::SystemError);
}

#[test]
fn send_checks_topic_and_queue() {
    let mut w = World::with(&[]);
    let mut req = SendMessageRequest {
        topic: "nope".into(),
        queue_id: 0,
        msg_id: "x".into(),
        tags: None,
        born_timestamp: 0,
    };
    assert_eq!(
        w.handle(Request::SendMessage(req.clone())).code,
        ResponseCode::TopicNotExist
    );
    req.topic = TOPIC.into();
    req.queue_id = 3;
    assert_eq!(
        w.handle(Request::SendMessage(req.clone())).code,
        ResponseCode::SystemError
    );
    req.queue_id = 0;
    let r = w.ok(Request::SendMessage(req));
    assert_eq!(
        r.body,
        ResponseBody::SendResult {
            queue_id: 0,
            queue_offset: 0,
            msg_id: "x".into()
        }
    );
}

#[test]
fn receipt_handle_carries_the_checkpoint_identity() {
    let config = BrokerConfig {
        revive_queue_num: 3,
        ..BrokerConfig::default()
    };
    let mut w = World::new(config, Behaviours::fixed());
    w.send(3);
    w.advance_to(7);
    let first = w.pop(2, 15_000);
    let e = ExtraInfo::parse(first[1].pop_ck.as_deref().unwrap()).unwrap();
    assert_eq!(
        e,
        ExtraInfo {
            ck_queue_offset: 0,
            commit_log_offset: None,
            pop_time: 7,
            invisible_time: 15_000,
            revive_qid: 0,
            topic_type: 0,
            broker_name: "broker-a".into(),
            queue_id: 0,
            queue_offset: 1,
        }
    );
    let second = w.pop(2, 15_000);
    let e = ExtraInfo::parse(second[0].pop_ck.as_deref().unwrap()).unwrap();
    assert_eq!(
        (e.ck_queue_offset, e.revive_qid),
        (2, 1),
        "ckMessageNumber round-robins revive queues"
    );
}

#[test]
fn init_offset_rules() {
    // MAX init mode with the first message in memory: from 0.
    let mut w = World::with(&[]);
    w.send(3);
    let mut req = w.pop_req(32, 10_000, false);
    req.init_mode = InitMode::Max;
    assert_eq!(w.pop_with(req.clone()).len(), 3);
    assert_eq!(w.commits_with("getPopOffset"), vec![0]);

    // Without initPopOffsetByCheckMsgInMem: "pop the last one".
    let config = BrokerConfig {
        init_pop_offset_by_check_msg_in_mem: false,
        ..World::default_config()
    };
    let mut w = World::new(config, Behaviours::fixed());
    w.send(3);
    assert_eq!(World::ids(&w.pop_with(req)), vec!["m3"]);
    assert_eq!(w.commits_with("getPopOffset"), vec![2]);
}

#[test]
fn reads_never_repeat_before_the_commit() {
    let mut w = World::with(&[]);
    w.send(4);
    assert_eq!(World::ids(&w.pop(2, 10_000)), vec!["m1", "m2"]);
    assert_eq!(
        World::ids(&w.pop(2, 10_000)),
        vec!["m3", "m4"],
        "same instant: read position from the offset deque"
    );
    w.advance(5);
    assert_eq!(
        w.commit_offset(0),
        Some(4),
        "just-offset CKs commit at the next scan"
    );
}

#[test]
fn retry_first_when_random_draw_is_below_the_probability() {
    let config = BrokerConfig {
        pop_from_retry_probability: 100,
        ..World::default_config()
    };
    let mut w = World::new(config, Behaviours::fixed());
    w.send(1);
    let _ = w.pop(1, 5_000);
    w.advance_to(10_000);
    w.send(1);
    let msgs = w.pop(1, 5_000);
    assert_eq!(
        World::ids(&msgs),
        vec!["m1"],
        "the retry topic is read first"
    );
    assert_eq!(
        ExtraInfo::parse(msgs[0].pop_ck.as_deref().unwrap())
            .unwrap()
            .topic_type,
        1
    );
    let config = BrokerConfig {
        pop_from_retry_probability: 0,
        ..World::default_config()
    };
    let mut w = World::new(config, Behaviours::fixed());
    w.send(1);
    let _ = w.pop(1, 5_000);
    w.advance_to(10_000);
    w.send(1);
    assert_eq!(
        World::ids(&w.pop(2, 5_000)),
        vec!["m2", "m1"],
        "normal topic first, retry after"
    );
}

#[test]
fn retry_topic_v2_naming() {
    let config = BrokerConfig {
        enable_retry_topic_v2: true,
        retrieve_message_from_pop_retry_topic_v1: false,
        ..World::default_config()
    };
    let mut w = World::new(config, Behaviours::fixed());
    w.send(1);
    let _ = w.pop(1, 5_000);
    w.advance_to(10_000);
    let again = w.pop(1, 5_000);
    assert_eq!(
        again[0].retry_topic.as_deref(),
        Some("%RETRY%GroupA+TopicA")
    );
    assert_eq!(
        ExtraInfo::parse(again[0].pop_ck.as_deref().unwrap())
            .unwrap()
            .topic_type,
        2
    );
    assert_eq!(w.ack(&again[0]).code, ResponseCode::Success);
    w.advance_to(60_000);
    assert_eq!(w.revived().len(), 1);
}

#[test]
fn pop_all_queues_starts_at_random_q_and_reports_rest() {
    let mut w = World::with(&[]);
    w.create_topic(TOPIC, 4);
    for q in 0..4 {
        w.send_to(TOPIC, q, 2);
    }
    let r = w.handle(Request::PopMessage(w.pop_req(3, 10_000, false)));
    let ResponseBody::Pop(p) = r.body else {
        panic!()
    };
    assert_eq!(p.msgs.len(), 3);
    assert_eq!(p.rest_num, 5);
    let queues: Vec<u32> = p.msgs.iter().map(|m| m.queue_id).collect();
    assert_eq!(queues[0], queues[1], "a queue is drained before the next");
    assert_eq!((queues[0] + 1) % 4, queues[2]);
}

#[test]
fn ack_request_checks() {
    let mut w = World::with(&[]);
    w.send(1);
    let m = w.pop(1, 10_000).remove(0);
    let mut req = w.ack_req(&m);
    req.offset = 2;
    assert_eq!(
        w.handle(Request::AckMessage(req.clone())).code,
        ResponseCode::NoMessage
    );
    req.offset = 0;
    req.queue_id = 5;
    assert_eq!(
        w.handle(Request::AckMessage(req.clone())).code,
        ResponseCode::MessageIllegal
    );
    req.queue_id = 0;
    req.topic = "nope".into();
    assert_eq!(
        w.handle(Request::AckMessage(req.clone())).code,
        ResponseCode::TopicNotExist
    );
    req.topic = TOPIC.into();
    req.extra_info = "garbage".into();
    assert_eq!(
        w.handle(Request::AckMessage(req)).code,
        ResponseCode::InvalidParameter
    );
}

#[test]
fn same_seed_same_history() {
    let run = |seed| {
        let mut b = Broker::new(World::default_config(), Behaviours::fixed(), seed);
        b.handle(
            0,
            Request::CreateTopic(CreateTopicRequest {
                topic: TOPIC.into(),
                read_queue_nums: 8,
            }),
        );
        b.handle(
            0,
            Request::CreateSubscriptionGroup(CreateSubscriptionGroupRequest {
                group: GROUP.into(),
            }),
        );
        for q in 0..8 {
            b.handle(
                0,
                Request::SendMessage(SendMessageRequest {
                    topic: TOPIC.into(),
                    queue_id: q,
                    msg_id: format!("q{q}"),
                    tags: None,
                    born_timestamp: 0,
                }),
            );
        }
        let req = PopMessageRequest {
            consumer_group: GROUP.into(),
            topic: TOPIC.into(),
            queue_id: -1,
            max_msg_nums: 1,
            invisible_time: 10_000,
            order: false,
            attempt_id: None,
            init_mode: InitMode::Min,
            poll_time: 0,
            born_time: None,
            count_by_queue: false,
        };
        let mut first = Vec::new();
        for t in 0..4 {
            if let ResponseBody::Pop(p) = b.handle(t, Request::PopMessage(req.clone())).body {
                first.extend(p.msgs.into_iter().map(|m| m.msg_id));
            }
        }
        (first, b.drain_events())
    };
    assert_eq!(run(1), run(1));
    let starts: std::collections::BTreeSet<_> = (0..16).map(|s| run(s).0[0].clone()).collect();
    assert!(starts.len() > 1, "the seed picks the first queue");
}

#[test]
fn snapshot_lists_retry_and_revive_topics() {
    let mut w = World::with(&[]);
    w.send(1);
    let _ = w.pop(1, 5_000);
    w.advance_to(10_000);
    let s = w.broker.snapshot();
    assert_eq!(
        s.queues["%RETRY%GroupA_TopicA"],
        vec![events::QueueRange { min: 0, max: 1 }]
    );
    assert_eq!(s.queues["rmq_sys_REVIVE_LOG_DefaultCluster"].len(), 1);
    assert_eq!(s.revive_queues[0].max_offset, 1);
    assert_eq!(s.revive_queues[0].committed_offset, 0);
    assert_eq!(s.revive_queues[0].last_deliver_at, Some(4_000));
    assert!(s.running);
}
