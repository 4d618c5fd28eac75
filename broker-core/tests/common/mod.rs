//! Test harness: a broker plus a virtual clock, with helpers named after client actions.
#![allow(dead_code)]

use broker_core::*;

pub const TOPIC: &str = "TopicA";
pub const GROUP: &str = "GroupA";

/// A broker with a clock. `advance_to` fires every timer due up to the target, in order.
pub struct World {
    pub broker: Broker,
    pub now: Millis,
    pub events: Vec<BrokerEvent>,
    pub sent: u64,
}

impl World {
    pub fn new(config: BrokerConfig, behaviours: Behaviours) -> Self {
        Self::seeded(config, behaviours, 42)
    }

    /// [`World::new`] with the broker's own seed (its store put failures are drawn from it).
    pub fn seeded(config: BrokerConfig, behaviours: Behaviours, seed: u64) -> Self {
        let mut w = Self {
            broker: Broker::new(config, behaviours, seed),
            now: 0,
            events: Vec::new(),
            sent: 0,
        };
        w.ok(Request::CreateTopic(CreateTopicRequest {
            topic: TOPIC.into(),
            read_queue_nums: 1,
        }));
        w.ok(Request::CreateSubscriptionGroup(
            CreateSubscriptionGroupRequest {
                group: GROUP.into(),
            },
        ));
        w
    }

    pub fn default_config() -> BrokerConfig {
        BrokerConfig {
            revive_queue_num: 1,
            ..BrokerConfig::default()
        }
    }

    pub fn handle(&mut self, req: Request) -> Response {
        let r = self.broker.handle(self.now, req);
        self.events.extend(self.broker.drain_events());
        r
    }

    pub fn ok(&mut self, req: Request) -> Response {
        let r = self.handle(req.clone());
        assert_eq!(r.code, ResponseCode::Success, "{req:?} -> {r:?}");
        r
    }

    /// Runs timers up to and including `t`, then sets the clock to `t`.
    pub fn advance_to(&mut self, t: Millis) {
        let mut steps = 0;
        while let Some(d) = self.broker.next_deadline() {
            if d > t {
                break;
            }
            assert!(d >= self.now, "deadline {d} in the past (now {})", self.now);
            self.now = d;
            self.broker.on_timer(d);
            self.events.extend(self.broker.drain_events());
            steps += 1;
            assert!(steps < 1_000_000, "timer loop does not converge");
        }
        self.now = t;
    }

    pub fn advance(&mut self, dt: Millis) {
        let t = self.now + dt;
        self.advance_to(t);
    }

    pub fn send_to(&mut self, topic: &str, queue_id: u32, n: u64) {
        for _ in 0..n {
            self.sent += 1;
            let id = format!("m{}", self.sent);
            self.ok(Request::SendMessage(SendMessageRequest {
                topic: topic.into(),
                queue_id,
                msg_id: id,
                tags: None,
                born_timestamp: self.now,
            }));
        }
    }

    pub fn send(&mut self, n: u64) {
        self.send_to(TOPIC, 0, n);
    }

    pub fn pop_req(&self, max: u32, invisible: Millis, order: bool) -> PopMessageRequest {
        PopMessageRequest {
            consumer_group: GROUP.into(),
            topic: TOPIC.into(),
            queue_id: -1,
            max_msg_nums: max,
            invisible_time: invisible,
            order,
            attempt_id: None,
            init_mode: InitMode::Min,
            poll_time: 0,
            born_time: None,
            count_by_queue: false,
        }
    }

    pub fn pop_with(&mut self, req: PopMessageRequest) -> Vec<MessageExt> {
        match self.handle(Request::PopMessage(req)).body {
            ResponseBody::Pop(p) => p.msgs,
            other => panic!("unexpected pop body {other:?}"),
        }
    }

    pub fn pop(&mut self, max: u32, invisible: Millis) -> Vec<MessageExt> {
        let req = self.pop_req(max, invisible, false);
        self.pop_with(req)
    }

    pub fn pop_orderly(&mut self, max: u32, invisible: Millis) -> Vec<MessageExt> {
        let req = self.pop_req(max, invisible, true);
        self.pop_with(req)
    }

    pub fn ack_req(&self, m: &MessageExt) -> AckMessageRequest {
        AckMessageRequest {
            consumer_group: GROUP.into(),
            topic: m.topic.clone(),
            queue_id: m.queue_id,
            offset: m.queue_offset,
            extra_info: m.pop_ck.clone().expect("receipt"),
        }
    }

    /// `CHANGE_MESSAGE_INVISIBLETIME` of `m` with `receipt`.
    pub fn change_invisible(
        &mut self,
        m: &MessageExt,
        receipt: &str,
        invisible_time: Millis,
    ) -> Response {
        self.handle(Request::ChangeInvisibleTime(ChangeInvisibleTimeRequest {
            consumer_group: GROUP.into(),
            topic: m.topic.clone(),
            queue_id: m.queue_id,
            offset: m.queue_offset,
            extra_info: receipt.to_owned(),
            invisible_time,
        }))
    }

    pub fn ack(&mut self, m: &MessageExt) -> Response {
        let req = self.ack_req(m);
        self.handle(Request::AckMessage(req))
    }

    pub fn reset(&mut self, queue_id: i32, offset: Option<i64>) -> Response {
        self.handle(Request::ResetOffset(ResetOffsetRequest {
            group: GROUP.into(),
            topic: TOPIC.into(),
            queue_id,
            offset,
            timestamp: -1,
            is_force: true,
        }))
    }

    pub fn query_offset(&mut self, queue_id: u32) -> Option<i64> {
        match self
            .handle(Request::QueryConsumerOffset(QueryConsumerOffsetRequest {
                consumer_group: GROUP.into(),
                topic: TOPIC.into(),
                queue_id,
                set_zero_if_not_found: false,
            }))
            .body
        {
            ResponseBody::QueryConsumerOffset { offset } => Some(offset),
            _ => None,
        }
    }

    pub fn commit_offset(&self, queue_id: u32) -> Option<i64> {
        let key = format!("{TOPIC}@{GROUP}");
        self.broker
            .snapshot()
            .offset_table
            .get(&key)
            .and_then(|m| m.get(&queue_id))
            .copied()
    }

    pub fn crash_restart(&mut self) {
        self.broker.crash(self.now);
        self.broker.restart(self.now);
        self.events.extend(self.broker.drain_events());
    }

    pub fn revived(&self) -> Vec<(String, u32)> {
        self.events
            .iter()
            .filter_map(|e| match e {
                BrokerEvent::Revived {
                    msg_id,
                    reconsume_times,
                    ..
                } => Some((msg_id.to_string(), *reconsume_times)),
                _ => None,
            })
            .collect()
    }

    pub fn ids(msgs: &[MessageExt]) -> Vec<String> {
        msgs.iter().map(|m| m.msg_id.clone()).collect()
    }
}

impl World {
    pub fn with(behaviours: &[Behaviour]) -> Self {
        Self::new(Self::default_config(), behaviours.iter().copied().collect())
    }

    pub fn buffered(behaviours: &[Behaviour]) -> Self {
        let config = BrokerConfig {
            enable_pop_buffer_merge: true,
            ..Self::default_config()
        };
        Self::new(config, behaviours.iter().copied().collect())
    }

    pub fn count(&self, pred: impl Fn(&BrokerEvent) -> bool) -> usize {
        self.events.iter().filter(|e| pred(e)).count()
    }

    pub fn ck_written(&self) -> usize {
        self.count(|e| matches!(e, BrokerEvent::CkWritten { .. }))
    }

    /// `broker_name` of every AckWritten, in order.
    pub fn ack_written_names(&self) -> Vec<Option<String>> {
        self.events
            .iter()
            .filter_map(|e| match e {
                BrokerEvent::AckWritten { broker_name, .. } => {
                    Some(broker_name.as_ref().map(|n| n.to_string()))
                }
                _ => None,
            })
            .collect()
    }

    pub fn commits_with(&self, reason: &str) -> Vec<i64> {
        self.events
            .iter()
            .filter_map(|e| match e {
                BrokerEvent::OffsetCommitted {
                    reason: r,
                    offset,
                    topic,
                    ..
                } if r == reason && topic == TOPIC => Some(*offset),
                _ => None,
            })
            .collect()
    }

    pub fn revived_ids(&self) -> Vec<String> {
        self.revived().into_iter().map(|(id, _)| id).collect()
    }

    pub fn create_topic(&mut self, topic: &str, queues: u32) {
        self.ok(Request::CreateTopic(CreateTopicRequest {
            topic: topic.into(),
            read_queue_nums: queues,
        }));
    }
}
