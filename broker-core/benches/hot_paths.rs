//! Micro-benchmarks of broker-core's hot paths: pop, ack (plain and through the CK buffer),
//! the buffer merge scan and the revive scan. `cargo bench -p broker-core`.

use broker_core::{
    AckMessageRequest, Behaviours, Broker, BrokerConfig, CreateSubscriptionGroupRequest,
    CreateTopicRequest, InitMode, Millis, PopMessageRequest, Request, ResponseBody,
    SendMessageRequest,
};
use divan::Bencher;

fn main() {
    divan::main();
}

const QUEUES: u32 = 4;
const INVISIBLE: Millis = 60_000;

/// A broker with topic `t` (4 queues), group `g` and `messages` stored messages.
fn broker(buffer_merge: bool, messages: u64) -> Broker {
    let cfg = BrokerConfig {
        enable_pop_buffer_merge: buffer_merge,
        ..BrokerConfig::default()
    };
    let mut b = Broker::new(cfg, Behaviours::default(), 1);
    b.handle(
        0,
        Request::CreateTopic(CreateTopicRequest {
            topic: "t".into(),
            read_queue_nums: QUEUES,
        }),
    );
    b.handle(
        0,
        Request::CreateSubscriptionGroup(CreateSubscriptionGroupRequest { group: "g".into() }),
    );
    for i in 0..messages {
        b.handle(
            1,
            Request::SendMessage(SendMessageRequest {
                topic: "t".into(),
                queue_id: (i % u64::from(QUEUES)) as u32,
                msg_id: format!("m-{i}"),
                tags: None,
                born_timestamp: 1,
            }),
        );
    }
    b
}

fn pop_request() -> Request {
    Request::PopMessage(PopMessageRequest {
        consumer_group: "g".into(),
        topic: "t".into(),
        queue_id: -1,
        max_msg_nums: 32,
        invisible_time: INVISIBLE,
        order: false,
        attempt_id: None,
        init_mode: InitMode::Min,
        poll_time: 0,
        born_time: None,
        count_by_queue: false,
    })
}

/// Pops everything stored, returning one ack request per delivered message.
fn pop_all(b: &mut Broker, now: Millis) -> Vec<AckMessageRequest> {
    let mut acks = Vec::new();
    loop {
        let r = b.handle(now, pop_request());
        let ResponseBody::Pop(p) = r.body else { break };
        if p.msgs.is_empty() {
            break;
        }
        for m in p.msgs {
            acks.push(AckMessageRequest {
                consumer_group: "g".into(),
                topic: m.topic,
                queue_id: m.queue_id,
                offset: m.queue_offset,
                extra_info: m.pop_ck.expect("a pop receipt"),
            });
        }
    }
    acks
}

/// One pop of up to 32 messages from a broker holding 1024.
#[divan::bench(args = [false, true])]
fn pop(bencher: Bencher, buffer_merge: bool) {
    bencher
        .with_inputs(|| broker(buffer_merge, 1024))
        .bench_local_refs(|b| b.handle(10, pop_request()));
}

/// One ack of a message delivered by an earlier pop (1024 outstanding).
#[divan::bench(args = [false, true])]
fn ack(bencher: Bencher, buffer_merge: bool) {
    bencher
        .with_inputs(|| {
            let mut b = broker(buffer_merge, 1024);
            let acks = pop_all(&mut b, 10);
            let ack = acks[acks.len() / 2].clone();
            (b, ack)
        })
        .bench_local_refs(|(b, ack)| b.handle(20, Request::AckMessage(ack.clone())));
}

/// The buffer merge scan over `n` buffered CKs (every pop of 32 leaves one per queue).
#[divan::bench(args = [64, 512])]
fn buffer_scan(bencher: Bencher, pops: u64) {
    bencher
        .with_inputs(|| {
            let mut b = broker(true, pops * 32);
            let acks = pop_all(&mut b, 10);
            for a in acks.iter().step_by(2) {
                b.handle(20, Request::AckMessage(a.clone()));
            }
            b
        })
        .bench_local_refs(|b| {
            let at = b.next_deadline().unwrap_or(30);
            b.on_timer(at);
        });
}

/// The revive scan once every CK of `n` pops is due: reads the revive queue, merges the
/// acks, writes the retry copies.
#[divan::bench(args = [64, 512])]
fn revive_scan(bencher: Bencher, pops: u64) {
    bencher
        .with_inputs(|| {
            let mut b = broker(false, pops * 32);
            let acks = pop_all(&mut b, 10);
            for a in acks.iter().step_by(2) {
                b.handle(20, Request::AckMessage(a.clone()));
            }
            b
        })
        .bench_local_refs(|b| b.on_timer(10 + INVISIBLE + 60_000));
}
