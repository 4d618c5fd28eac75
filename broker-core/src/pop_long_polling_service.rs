//! `PopLongPollingService` (`broker/.../longpolling/PopLongPollingService.java`): a pop that
//! found nothing is parked instead of answered, and answered when a message arrives, when an
//! orderly ack unblocks its queue, or when its poll time is up.
//!
//! Upstream `PopMessageProcessor.processRequest` ends a pop that found nothing with
//! `polling()`: a request with `pollTime > 0` that has not yet expired (`bornTime +
//! pollTime`, less `PopRequest.isTimeout`'s 50 ms) is added to `pollingMap` under its key
//! `topic@group@queueId` (`KeyBuilder.buildPollingKey`; −1 for an all-queue pop) and the
//! group is remembered for the topic (`topicCidMap`). A parked request is *woken* by:
//!
//! - a message stored in a queue of the topic (`NotifyMessageArrivingListener.arriving` →
//!   `PopMessageProcessor.notifyMessageArriving` → `notifyMessageArrivingWithRetryTopic`: a
//!   V2 retry topic notifies its normal topic; every group of the topic gets one wake on the
//!   −1 key and one on the queue's key);
//! - an orderly ack that left its queue unblocked (`ackOrderly`, `ackOrderlyNew` →
//!   `notifyMessageArriving(topic, queueId, group)`: the queue's own key only);
//! - a pop that answered (or parked) with `restNum > 0` (`notifyMessageArriving` on the
//!   request's own key: "recursive processing");
//! - the service thread, once `isTimeout` holds.
//!
//! Each notification takes one request of the key, the one expiring first (`pollFirst`,
//! `notifyLast = false` for the pop processor). A woken request runs `processRequest` again
//! from the start, with a new popTime (`wakeUp` submits it to `pullMessageExecutor`); if it
//! still finds nothing it parks again until it expires, and an expired one answers
//! `POLLING_TIMEOUT`. The model keeps broker-core sans-IO: a parked pop is an operation in
//! state [`crate::inflight::Step::Parked`]; [`crate::Broker::take_woken`] hands woken ones
//! back to the driver, which runs them again from their first step;
//! [`crate::Broker::next_deadline`] includes the earliest expiry. Not modelled: the message
//! filter in `notifyMessageArriving` (no subscription filters), Caffeine's eviction of idle
//! keys, `NotificationProcessor`'s own service (it serves `NOTIFICATION` requests, which no
//! modelled client sends), and the lag calculator's notify (metrics). The service thread
//! checks every 20 ms; the model wakes an expired request at the first millisecond
//! `isTimeout` holds.

use crate::broker::Broker;
use crate::config::Millis;
use crate::events::BrokerEvent;
use crate::inflight::OpId;
use crate::keys::{self, polling_key};
use crate::pop_message_processor::{pop_response, PopContext};
use crate::protocol::{PopMessageRequest, PopStatus, Response, ResponseBody, ResponseCode};
use std::collections::{BTreeMap, BTreeSet};

/// `BrokerConfig.popPollingSize`: parked requests per key before `POLLING_FULL`.
pub const POP_POLLING_SIZE: usize = 1024;
/// `BrokerConfig.maxPopPollingSize`: parked requests in all.
pub const MAX_POP_POLLING_SIZE: usize = 100_000;
/// `PopRequest.isTimeout`: a request counts as expired this long before `bornTime +
/// pollTime`.
pub const TIMEOUT_MARGIN_MS: Millis = 50;
/// `PopMessageRequestHeader.isTimeoutTooMuch`: a request that reaches `processRequest` this
/// long after `bornTime + pollTime` is answered `POLLING_TIMEOUT` at once.
pub const TIMEOUT_TOO_MUCH_MS: Millis = 500;

/// `PollingResult`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum PollingResult {
    PollingSuc,
    PollingFull,
    PollingTimeout,
    NotPolling,
}

/// Why a parked request was woken (the history's `PopWoken.reason`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WakeReason {
    /// `notifyMessageArriving` from the store's arrival listener.
    Arrival,
    /// `ackOrderly` / `ackOrderlyNew` left the queue unblocked.
    OrderlyAck,
    /// A pop of the same key ended with `restNum > 0`.
    RestNum,
    /// The service thread found it expired.
    Timeout,
}

impl WakeReason {
    /// As the history spells it.
    pub fn name(self) -> &'static str {
        match self {
            WakeReason::Arrival => "notifyMessageArriving",
            WakeReason::OrderlyAck => "ackOrderly",
            WakeReason::RestNum => "restNum",
            WakeReason::Timeout => "timeout",
        }
    }
}

/// One parked request: its key in `pollingMap`, its expiry and its place in the set.
#[derive(Clone, Debug)]
struct Parked {
    key: String,
    expired: Millis,
    seq: u64,
}

/// The service's state. Volatile: a crash drops every parked request with its channel.
#[derive(Clone, Debug, Default)]
pub struct PopLongPollingService {
    /// `pollingMap`: key → requests ordered by expiry (`PopRequest.COMPARATOR`), then by
    /// arrival.
    polling_map: BTreeMap<String, BTreeSet<(Millis, u64, OpId)>>,
    /// `topicCidMap`: topic → the groups that ever parked on it.
    topic_cid: BTreeMap<String, BTreeSet<String>>,
    parked: BTreeMap<OpId, Parked>,
    seq: u64,
    /// Woken operations the driver has not taken yet, in wake order.
    woken: Vec<OpId>,
}

impl PopLongPollingService {
    /// The process died: every parked request (and its channel) is gone.
    pub fn clear(&mut self) {
        self.polling_map.clear();
        self.topic_cid.clear();
        self.parked.clear();
        self.woken.clear();
    }

    /// Requests parked now.
    pub fn parked(&self) -> usize {
        self.parked.len()
    }

    /// The first millisecond some parked request counts as expired (`now > expired − 50`).
    pub fn next_deadline(&self) -> Option<Millis> {
        (self.parked.values())
            .map(|p| (p.expired + 1).saturating_sub(TIMEOUT_MARGIN_MS))
            .min()
    }

    fn is_timeout(expired: Millis, now: Millis) -> bool {
        now + TIMEOUT_MARGIN_MS > expired
    }

    /// `polling`: park `op` unless it expired or the maps are full.
    fn polling(&mut self, now: Millis, op: OpId, req: &PopMessageRequest) -> PollingResult {
        if req.poll_time == 0 {
            return PollingResult::NotPolling;
        }
        self.remember_cid(&req.topic, &req.consumer_group);
        let expired = req.born_time.unwrap_or(now) + req.poll_time;
        if self.parked.len() >= MAX_POP_POLLING_SIZE {
            return PollingResult::PollingFull;
        }
        if Self::is_timeout(expired, now) {
            return PollingResult::PollingTimeout;
        }
        let key = polling_key(&req.topic, &req.consumer_group, req.queue_id.into());
        let queue = self.polling_map.entry(key.clone()).or_default();
        if queue.len() > POP_POLLING_SIZE {
            return PollingResult::PollingFull;
        }
        self.seq += 1;
        queue.insert((expired, self.seq, op));
        self.parked.insert(
            op,
            Parked {
                key,
                expired,
                seq: self.seq,
            },
        );
        PollingResult::PollingSuc
    }

    /// `polling`'s `topicCidMap` entry: the group under its topic. The names are copied
    /// only when new, as pops park again and again under the same ones.
    fn remember_cid(&mut self, topic: &str, group: &str) {
        match self.topic_cid.get_mut(topic) {
            Some(groups) if groups.contains(group) => {}
            Some(groups) => {
                groups.insert(group.to_owned());
            }
            None => {
                let groups = BTreeSet::from([group.to_owned()]);
                self.topic_cid.insert(topic.to_owned(), groups);
            }
        }
    }

    /// `pollRemotingCommands`: the first request of a key, taken off it.
    fn poll_first(&mut self, key: &str) -> Option<OpId> {
        let queue = self.polling_map.get_mut(key)?;
        let (_, _, op) = queue.pop_first()?;
        if queue.is_empty() {
            self.polling_map.remove(key);
        }
        self.parked.remove(&op);
        Some(op)
    }

    /// The request a notification of `key` would take.
    fn first_of(&self, key: &str) -> Option<OpId> {
        self.polling_map.get(key)?.first().map(|(_, _, op)| *op)
    }

    /// Takes `op` off its key (the service thread's timeout wake).
    fn remove(&mut self, op: OpId) -> bool {
        let Some(p) = self.parked.remove(&op) else {
            return false;
        };
        if let Some(queue) = self.polling_map.get_mut(&p.key) {
            queue.remove(&(p.expired, p.seq, op));
            if queue.is_empty() {
                self.polling_map.remove(&p.key);
            }
        }
        true
    }

    /// Parked requests that count as expired at `now`, earliest first.
    fn expired(&self, now: Millis) -> Vec<OpId> {
        let mut due: Vec<(Millis, u64, OpId)> = (self.parked.iter())
            .filter(|(_, p)| Self::is_timeout(p.expired, now))
            .map(|(op, p)| (p.expired, p.seq, *op))
            .collect();
        due.sort_unstable();
        due.into_iter().map(|(_, _, op)| op).collect()
    }
}

/// How a pop that ran to its end finishes: answered, or parked.
pub(crate) enum PopEnd {
    Answer(Response),
    /// Parked: the request (its `bornTime` filled in) waits in the long-polling service.
    Park(PopMessageRequest),
    /// Parked and at once woken by its own `restNum` notification (it was the first request
    /// of its key): it runs again from the start once the driver takes it.
    Rerun(PopMessageRequest),
}

impl Broker {
    /// The request check that comes before everything else in `processRequest`:
    /// `isTimeoutTooMuch`.
    pub(crate) fn pop_timeout_too_much(&self, now: Millis, req: &PopMessageRequest) -> bool {
        let born = req.born_time.unwrap_or(now);
        now.saturating_sub(born).saturating_sub(req.poll_time) > TIMEOUT_TOO_MUCH_MS
    }

    /// The end of `processRequest` (classic) and of `popAsync`'s callback (KV path): messages
    /// found → `SUCCESS`, and another request of the key is notified if some are left; none
    /// → `polling()`: parked (the rest notified likewise), `POLLING_FULL`, or
    /// `POLLING_TIMEOUT`.
    pub(crate) fn finish_pop(&mut self, now: Millis, op: OpId, ctx: &mut PopContext) -> PopEnd {
        let req = &ctx.req;
        let rest = ctx.rest_num > 0;
        if !ctx.msgs.is_empty() {
            let response = pop_response(ctx);
            if rest {
                let req = &ctx.req;
                let (topic, q, group) = (&req.topic, req.queue_id, &req.consumer_group);
                self.notify_key(now, topic, q, group, WakeReason::RestNum);
            }
            return PopEnd::Answer(response);
        }
        let polling = self.long_polling.polling(now, op, req);
        match polling {
            PollingResult::PollingSuc => {
                let parked = ctx.req.clone();
                let expired = parked.born_time.unwrap_or(now) + parked.poll_time;
                self.events.push(BrokerEvent::PopParked {
                    at: now,
                    op: op.0,
                    group: parked.consumer_group.as_str().into(),
                    topic: parked.topic.as_str().into(),
                    queue_id: parked.queue_id,
                    expires_at: expired,
                });
                if rest {
                    let (topic, q, group) =
                        (&parked.topic, parked.queue_id, &parked.consumer_group);
                    let key = polling_key(topic, group, q.into());
                    if self.long_polling.first_of(&key) == Some(op) {
                        self.long_polling.poll_first(&key);
                        self.woken_event(now, op, &parked, WakeReason::RestNum);
                        self.long_polling.woken.push(op);
                        return PopEnd::Rerun(parked);
                    }
                    self.notify_key(now, topic, q, group, WakeReason::RestNum);
                }
                PopEnd::Park(parked)
            }
            PollingResult::PollingFull => {
                let mut r = pop_response(ctx);
                r.code = ResponseCode::PollingFull;
                if let ResponseBody::Pop(body) = &mut r.body {
                    body.status = PopStatus::PollingFull;
                }
                PopEnd::Answer(r)
            }
            PollingResult::PollingTimeout | PollingResult::NotPolling => {
                PopEnd::Answer(pop_response(ctx))
            }
        }
    }

    /// `notifyMessageArrivingWithRetryTopic`: a message was stored in `topic`'s queue
    /// `queue_id` (the store's arrival listener).
    pub(crate) fn notify_message_arriving(&mut self, now: Millis, topic: &str, queue_id: u32) {
        let notify_topic = if keys::is_pop_retry_topic_v2(topic) {
            keys::parse_normal_topic_v2(topic)
        } else {
            topic.to_owned()
        };
        let Some(cids) = self.long_polling.topic_cid.get(&notify_topic).cloned() else {
            return;
        };
        for cid in cids {
            self.notify_key(now, &notify_topic, -1, &cid, WakeReason::Arrival);
            self.notify_key(
                now,
                &notify_topic,
                queue_id as i32,
                &cid,
                WakeReason::Arrival,
            );
        }
    }

    /// `PopMessageProcessor.notifyMessageArriving(topic, queueId, cid)` from an orderly ack.
    pub(crate) fn notify_orderly_ack(
        &mut self,
        now: Millis,
        topic: &str,
        queue_id: u32,
        group: &str,
    ) {
        self.notify_key(now, topic, queue_id as i32, group, WakeReason::OrderlyAck);
    }

    /// One wake on one key, if a request is parked there.
    fn notify_key(
        &mut self,
        now: Millis,
        topic: &str,
        queue_id: i32,
        group: &str,
        why: WakeReason,
    ) {
        let key = polling_key(topic, group, queue_id.into());
        if let Some(op) = self.long_polling.poll_first(&key) {
            self.wake_up(now, op, why);
        }
    }

    /// The service thread: every parked request that expired is woken to answer.
    pub(crate) fn pop_long_polling_tick(&mut self, now: Millis) {
        for op in self.long_polling.expired(now) {
            if self.long_polling.remove(op) {
                self.wake_up(now, op, WakeReason::Timeout);
            }
        }
    }

    /// `wakeUp`: the parked operation becomes a new run of the same request.
    fn wake_up(&mut self, now: Millis, op: OpId, why: WakeReason) {
        let Some(crate::inflight::Op::Parked(req)) = self.ops.remove(&op).map(|parked| *parked)
        else {
            panic!("woke {op:?}, which is not parked");
        };
        self.woken_event(now, op, &req, why);
        self.ops.insert(
            op,
            Box::new(crate::inflight::Op::Start(
                crate::protocol::Request::PopMessage(req),
            )),
        );
        self.long_polling.woken.push(op);
    }

    fn woken_event(&mut self, now: Millis, op: OpId, req: &PopMessageRequest, why: WakeReason) {
        self.events.push(BrokerEvent::PopWoken {
            at: now,
            op: op.0,
            group: req.consumer_group.as_str().into(),
            topic: req.topic.as_str().into(),
            queue_id: req.queue_id,
            reason: why.name().into(),
        });
    }

    /// The earliest later time at which the woken pop `op` could end differently from its
    /// last run with nothing else happening in the broker: its long-polling expiry (from
    /// then `polling` answers `POLLING_TIMEOUT`) or the end of some FIFO block
    /// (`checkBlock` turning false by time alone). The driver may hold a pop that keeps
    /// waking itself (`restNum`) until then, or until anything else happens; `None` when
    /// `op` is not a woken pop.
    pub fn woken_pop_horizon(&self, op: OpId, now: Millis) -> Option<Millis> {
        let crate::inflight::Op::Start(crate::protocol::Request::PopMessage(req)) =
            &**self.ops.get(&op)?
        else {
            return None;
        };
        let expired = req.born_time.unwrap_or(now) + req.poll_time;
        let timeout_from = (expired + 1).saturating_sub(TIMEOUT_MARGIN_MS);
        let unblock = self.order_info.next_unblock_after(now);
        Some(unblock.map_or(timeout_from, |t| t.min(timeout_from)))
    }

    /// Parked operations woken since the last call, in wake order: the driver runs each from
    /// its first step again ([`Broker::step`]).
    pub fn take_woken(&mut self) -> Vec<OpId> {
        std::mem::take(&mut self.long_polling.woken)
    }

    /// Pops parked now.
    pub fn parked_pops(&self) -> usize {
        self.long_polling.parked()
    }
}
