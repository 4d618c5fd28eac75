//! `PopLongPollingService`: an empty pop with a poll time parks; arrivals, orderly acks and
//! expiry wake it, and a woken pop runs again from its first step.

mod common;
use broker_core::*;
use common::*;

const POLL: Millis = 15_000;

fn polling_req(w: &World, order: bool, queue_id: i32) -> PopMessageRequest {
    let mut req = w.pop_req(4, 30_000, order);
    req.queue_id = queue_id;
    req.poll_time = POLL;
    req.born_time = Some(w.now);
    req
}

/// Steps `id` to its end: `Some(response)`, or `None` once it parked.
fn run(w: &mut World, id: OpId) -> Option<Response> {
    for _ in 0..64 {
        let step = w.broker.step(w.now, id);
        w.events.extend(w.broker.drain_events());
        match step {
            Step::Done(r) => return Some(r),
            Step::Parked => return None,
            Step::Yield | Step::Spin => {}
        }
    }
    panic!("operation did not finish");
}

fn offsets(r: &Response) -> Vec<u64> {
    match &r.body {
        ResponseBody::Pop(p) => p.msgs.iter().map(|m| m.queue_offset).collect(),
        other => panic!("not a pop answer: {other:?}"),
    }
}

fn parked_events(w: &World) -> usize {
    (w.events.iter())
        .filter(|e| matches!(e, BrokerEvent::PopParked { .. }))
        .count()
}

fn woken_reasons(w: &World) -> Vec<String> {
    (w.events.iter())
        .filter_map(|e| match e {
            BrokerEvent::PopWoken { reason, .. } => Some(reason.to_string()),
            _ => None,
        })
        .collect()
}

#[test]
fn an_empty_pop_parks_and_a_message_wakes_it() {
    let mut w = World::with(&[]);
    let req = polling_req(&w, false, -1);
    let id = w.broker.submit(Request::PopMessage(req));
    assert_eq!(run(&mut w, id), None, "nothing to pop: parked");
    assert_eq!(parked_events(&w), 1);
    assert_eq!(w.broker.parked_pops(), 1);
    w.advance(1_000);
    w.send(2);
    assert_eq!(w.broker.take_woken(), vec![id], "the arrival woke it");
    assert_eq!(woken_reasons(&w), vec!["notifyMessageArriving"]);
    assert_eq!(w.broker.parked_pops(), 0);
    let r = run(&mut w, id).expect("answered");
    assert_eq!(r.code, ResponseCode::Success);
    assert_eq!(offsets(&r), vec![0, 1]);
    match &r.body {
        ResponseBody::Pop(p) => assert_eq!(p.pop_time, 1_000, "a new popTime"),
        _ => unreachable!(),
    }
}

#[test]
fn a_parked_pop_answers_polling_timeout_when_it_expires() {
    let mut w = World::with(&[]);
    let id = w
        .broker
        .submit(Request::PopMessage(polling_req(&w, false, -1)));
    assert_eq!(run(&mut w, id), None);
    w.advance_to(POLL - TIMEOUT_MARGIN_MS);
    assert!(w.broker.take_woken().is_empty(), "not yet expired");
    w.advance_to(POLL - TIMEOUT_MARGIN_MS + 1);
    assert_eq!(w.broker.take_woken(), vec![id]);
    assert_eq!(woken_reasons(&w), vec!["timeout"]);
    let r = run(&mut w, id).expect("expired: answered, not parked again");
    assert_eq!(r.code, ResponseCode::PollingTimeout);
    assert!(offsets(&r).is_empty());
}

#[test]
fn an_arrival_wakes_the_request_that_expires_first() {
    let mut w = World::with(&[]);
    let a = w
        .broker
        .submit(Request::PopMessage(polling_req(&w, false, -1)));
    assert_eq!(run(&mut w, a), None);
    w.advance(10);
    let b = w
        .broker
        .submit(Request::PopMessage(polling_req(&w, false, -1)));
    assert_eq!(run(&mut w, b), None);
    w.advance(10);
    w.send(1);
    // One message, two keys (−1 and queue 0): only the −1 key has requests; the first
    // to expire is woken.
    assert_eq!(w.broker.take_woken(), vec![a]);
    assert_eq!(offsets(&run(&mut w, a).expect("found")), vec![0]);
    w.send(0);
    assert_eq!(w.broker.parked_pops(), 1, "b still parked");
}

#[test]
fn an_orderly_ack_wakes_a_pop_parked_on_its_queue_only() {
    let mut w = World::with(&[]);
    w.send(2);
    let first = w.pop_orderly(1, 30_000);
    assert_eq!(first.len(), 1);
    // Two FIFO pops of the blocked queue park: one on queue 0's key, one on −1's.
    let on_queue = w
        .broker
        .submit(Request::PopMessage(polling_req(&w, true, 0)));
    assert_eq!(run(&mut w, on_queue), None, "queue 0 is blocked");
    let on_all = w
        .broker
        .submit(Request::PopMessage(polling_req(&w, true, -1)));
    assert_eq!(run(&mut w, on_all), None);
    assert_eq!(w.ack(&first[0]).code, ResponseCode::Success);
    assert_eq!(
        w.broker.take_woken(),
        vec![on_queue],
        "ackOrderly notifies the queue's key, not −1"
    );
    assert_eq!(woken_reasons(&w), vec!["ackOrderly"]);
    assert_eq!(offsets(&run(&mut w, on_queue).expect("found")), vec![1]);
    assert_eq!(w.broker.parked_pops(), 1);
}

#[test]
fn a_crash_drops_parked_pops() {
    let mut w = World::with(&[]);
    let id = w
        .broker
        .submit(Request::PopMessage(polling_req(&w, false, -1)));
    assert_eq!(run(&mut w, id), None);
    w.broker.crash(w.now);
    w.broker.restart(w.now + 1);
    w.now += 1;
    assert_eq!(w.broker.parked_pops(), 0);
    w.send(1);
    assert!(w.broker.take_woken().is_empty());
}

#[test]
fn a_request_long_past_its_poll_time_is_refused() {
    let mut w = World::with(&[]);
    w.send(1);
    let mut req = polling_req(&w, false, -1);
    w.advance(POLL + TIMEOUT_TOO_MUCH_MS + 1);
    req.born_time = Some(0);
    let r = w.handle(Request::PopMessage(req));
    assert_eq!(r.code, ResponseCode::PollingTimeout, "isTimeoutTooMuch");
}

#[test]
fn a_pop_without_poll_time_answers_at_once() {
    let mut w = World::with(&[]);
    let r = w.handle(Request::PopMessage(w.pop_req(4, 30_000, false)));
    assert_eq!(r.code, ResponseCode::PollingTimeout);
    assert_eq!(parked_events(&w), 0);
}

#[test]
fn a_send_back_with_a_negative_delay_level_writes_the_dlq() {
    let mut w = World::with(&[]);
    w.send(1);
    let m = w.pop(1, 30_000).pop().expect("a message");
    let r = w.handle(Request::ConsumerSendMsgBack(ConsumerSendMsgBackRequest {
        group: GROUP.into(),
        offset: m.commit_log_offset,
        delay_level: -1,
        origin_msg_id: m.msg_id.clone(),
        origin_topic: TOPIC.into(),
        max_reconsume_times: Some(0),
    }));
    assert_eq!(r.code, ResponseCode::Success);
    let written: Vec<_> = (w.events.iter())
        .filter_map(|e| match e {
            BrokerEvent::DlqWritten {
                msg_id,
                dlq_topic,
                reconsume_times,
                ..
            } => Some((msg_id.to_string(), dlq_topic.to_string(), *reconsume_times)),
            _ => None,
        })
        .collect();
    assert_eq!(written, vec![(m.msg_id, format!("%DLQ%{GROUP}"), 1)]);
    let bad = w.handle(Request::ConsumerSendMsgBack(ConsumerSendMsgBackRequest {
        group: GROUP.into(),
        offset: 99,
        delay_level: -1,
        origin_msg_id: "x".into(),
        origin_topic: TOPIC.into(),
        max_reconsume_times: Some(0),
    }));
    assert_eq!(
        bad.code,
        ResponseCode::SystemError,
        "no message at that offset"
    );
}
