//! Operations in flight: upstream's requests as sequences of steps.
//!
//! Upstream serves requests on thread pools and chains asynchronous store reads; two
//! requests (or a request and the admin thread) interleave wherever one of them waits. The
//! model keeps the interleaving points upstream has and nothing finer:
//!
//! | operation | a step ends |
//! |---|---|
//! | classic pop (`PopMessageProcessor.popMsgFromQueue`) | at each queue's asynchronous read, its queue lock held |
//! | KV pop (`PopConsumerService.popAsync`) | at each queue's asynchronous read, after `getPopOffset`; the group@topic lock taken at the start, released at the end |
//! | orderly ack (`ackOrderly`, `ackOrderlyNew`) | while it spins on a held lock |
//! | `addAk` | between its guards and `markBitCAS` |
//! | admin reset (`resetOffsetInner`) | before each queue's `clearCache` and pull-offset action (KV path) |
//!
//! What stays atomic, and why: sends, offset updates and queries, topic and group creation
//! (one short critical section each upstream); changeInvisibleTime (its CK put and
//! `ackOrigin` are synchronous; the orderly branch's queue-lock spin is short); the buffer
//! scan and the revive service (single threads whose own steps cannot interleave with
//! themselves; they meet requests through the queue lock, the buffer's wrappers and the
//! offset table, each of which is modelled at the request's side). The revive's message
//! reads are synchronous on a local store (`EscapeBridge.getMessageAsync` completes at
//! once), so `mergeAndRevive` is one step.
//!
//! The driver decides which operation steps next and when; broker-core decides what a step
//! does. [`crate::Broker::handle`] runs one request to its end (tests and start-up).

use crate::ack_message_processor::{AckOp, AckStep};
use crate::admin::ResetOp;
use crate::broker::Broker;
use crate::config::Millis;
use crate::pop_consumer_kv::KvPop;
use crate::pop_long_polling_service::PopEnd;
use crate::pop_message_processor::ClassicPop;
use crate::protocol::{Request, Response};
use serde::{Deserialize, Serialize};

/// An operation's id, unique for the broker's life (never reused across restarts).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct OpId(pub u64);

impl OpId {
    /// The broker's own service threads (buffer scan, revive), which take and release a
    /// lock within one step.
    pub const SERVICE: OpId = OpId(0);
}

/// How a step ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Step {
    /// Finished; the response, if the request expects one.
    Done(Response),
    /// At an interleaving point: another operation may run before the next step.
    Yield,
    /// Waiting for a lock another operation holds (a spin loop): step it again later.
    Spin,
    /// A pop that found nothing was parked by the long-polling service
    /// ([`crate::pop_long_polling_service`]): it holds no thread and takes no step until
    /// [`Broker::take_woken`] returns it; then it runs again from its first step.
    Parked,
}

/// The state of one operation between steps.
#[derive(Debug)]
pub(crate) enum Op {
    /// Submitted, not yet started.
    Start(Request),
    ClassicPop(ClassicPop),
    KvPop(KvPop),
    Ack(AckOp),
    Reset(ResetOp),
    /// A pop parked in `PopLongPollingService`, with its request (`bornTime` filled in).
    Parked(crate::protocol::PopMessageRequest),
}

/// A pop woken as it parked: its next step starts it again.
fn rerun(req: crate::protocol::PopMessageRequest) -> Op {
    Op::Start(Request::PopMessage(req))
}

/// How a pop's step ended (`None`: at its next read); a parked or re-run pop keeps its box.
fn after_pop(end: Option<PopEnd>, mut op: Box<Op>) -> (Step, Option<Box<Op>>) {
    match end {
        Some(PopEnd::Answer(r)) => (Step::Done(r), None),
        Some(PopEnd::Park(req)) => {
            *op = Op::Parked(req);
            (Step::Parked, Some(op))
        }
        Some(PopEnd::Rerun(req)) => {
            *op = rerun(req);
            (Step::Parked, Some(op))
        }
        None => (Step::Yield, Some(op)),
    }
}

impl Broker {
    /// Accepts a request as an operation; nothing runs until [`Broker::step`].
    pub fn submit(&mut self, req: Request) -> OpId {
        assert!(self.running, "submit() on a crashed broker");
        self.next_op += 1;
        let id = OpId(self.next_op);
        self.ops.insert(id, Box::new(Op::Start(req)));
        id
    }

    /// Runs operation `id` to its next interleaving point.
    pub fn step(&mut self, now: Millis, id: OpId) -> Step {
        assert!(self.running, "step() on a crashed broker");
        self.tick_clock(now);
        let op = self
            .ops
            .remove(&id)
            .expect("step() of an operation in flight");
        assert!(
            !matches!(*op, Op::Parked(_)),
            "step() of a parked pop {id:?}; it runs again once woken"
        );
        let (step, rest) = self.step_op(now, id, op);
        if let Some(rest) = rest {
            self.ops.insert(id, rest);
        }
        self.check_invariants();
        step
    }

    /// Operations in flight.
    pub fn in_flight(&self) -> usize {
        self.ops.len()
    }

    /// One step of `op`, which stays in its box: a step changes the operation in place and
    /// hands the box back while the operation goes on.
    fn step_op(&mut self, now: Millis, id: OpId, op: Box<Op>) -> (Step, Option<Box<Op>>) {
        let mut op = match *op {
            Op::Start(req) => match self.start_op(now, req) {
                Ok(op) => Box::new(op),
                Err(response) => return (Step::Done(response), None),
            },
            _ => op,
        };
        match &mut *op {
            Op::Start(_) => unreachable!("started above"),
            Op::ClassicPop(pop) => {
                let end = self.step_pop_classic(now, id, pop);
                after_pop(end, op)
            }
            Op::KvPop(pop) => {
                let end = self.step_pop_kv(now, id, pop);
                after_pop(end, op)
            }
            Op::Parked(_) => unreachable!("checked in step()"),
            Op::Ack(ack) => match self.step_ack(now, id, ack) {
                AckStep::Done(r) => (Step::Done(r), None),
                AckStep::Yield => (Step::Yield, Some(op)),
                AckStep::Spin => (Step::Spin, Some(op)),
            },
            Op::Reset(reset) => match self.step_reset(now, id, reset) {
                Some(r) => (Step::Done(r), None),
                None => (Step::Yield, Some(op)),
            },
        }
    }

    /// The request's first decision: an operation of several steps, or (`Err`) the answer
    /// of an atomic request or of a request rejected up front.
    fn start_op(&mut self, now: Millis, req: Request) -> Result<Op, Response> {
        match req {
            Request::PopMessage(r) => self.start_pop(now, r),
            Request::AckMessage(r) => self.start_ack(r).map(Op::Ack),
            Request::BatchAckMessage(r) => self.start_batch_ack(r).map(Op::Ack),
            Request::ResetOffset(r) => self.start_reset_offset(now, r).map(Op::Reset),
            Request::SendMessage(r) => Err(self.send_message(now, r)),
            Request::ChangeInvisibleTime(r) => Err(self.change_invisible_time(now, r)),
            Request::ConsumerSendMsgBack(r) => Err(self.consumer_send_msg_back(now, r)),
            Request::UpdateConsumerOffset(r) => Err(self.update_consumer_offset(now, r)),
            Request::QueryConsumerOffset(r) => Err(self.query_consumer_offset(now, r)),
            Request::CreateTopic(r) => Err(self.create_topic(r)),
            Request::CreateSubscriptionGroup(r) => Err(self.create_subscription_group(r)),
        }
    }
}
