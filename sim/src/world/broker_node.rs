//! The broker node: drives the sans-IO `broker_core::Broker` from madsim, with a seeded
//! scheduler for its threads.
//!
//! Requests arrive as datagrams and become broker-core operations ([`Broker::submit`]); one
//! scheduler task steps them. Whenever several steps are runnable at one instant the
//! scheduler's own ChaCha stream (`broker.scheduler`) picks which goes next, and at an
//! interleaving point ([`Step::Yield`]) a thread is descheduled for a drawn while with the
//! scenario's `[scheduler]` probability, as a pool thread waiting on a store read or losing
//! its core would be. A thread spinning on a held lock ([`Step::Spin`]) tries again a
//! millisecond later. The timer services (buffer scan, revive, offset flush) run as one more
//! runnable step when due. Same seed, same interleaving.
//!
//! At most `threads` requests are in flight; later ones wait in arrival order, as in a
//! pool's queue. A pop the long-polling service parks gives its thread back and keeps its
//! caller waiting; once woken (a message arrived, an orderly ack, its expiry) it queues for a
//! thread again a millisecond later and runs from its first step. Broker events are drained
//! into the recorder after every step. The `Broker`
//! value lives outside the node, so killing the node (a crash) drops the tasks, the socket
//! and every unsent response, while `Broker::crash`/`restart` decide what state survives.

use super::net::{Envelope, Reply, BROKER_PORT, REQUEST_TAG, RESPONSE_TAG};
use super::recorder::Recorder;
use broker_core::rng::{ChaCha8Rng, Rng};
use broker_core::{
    Broker, BrokerEvent, BrokerSnapshot, Millis, OpId, Request, Response, ResponseCode, Step,
    WakeReason,
};
use madsim::net::Endpoint;
use madsim::runtime::Handle;
use madsim::task::NodeId;
use scenarios::model::SchedulerSpec;
use std::collections::{BTreeMap, VecDeque};
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::Notify;

/// Receive loops on the broker's socket. madsim charges every receive at least 1 ms of
/// simulated time, so one loop would cap the broker at about 1 000 requests per simulated
/// second; several loops (like remoting's worker threads) lift that ceiling.
const RECEIVERS: usize = 4;

/// Most steps the scheduler takes at one instant before time must move: a bound on the loop
/// (TigerBeetle style), far above what any request mix needs.
const MAX_STEPS_PER_INSTANT: usize = 1_000_000;

/// The node name of the broker in histories and fault descriptions.
pub const BROKER_NODE: &str = "broker";

/// Where a request's answer goes: nowhere (oneway), or back to the caller.
type ReplyTo = Option<(SocketAddr, u64)>;

/// One runnable thing.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Runnable {
    Op(OpId),
    /// The broker's service threads: every timer due now.
    Timers,
    /// The scheduled executor's offset flush alone (it runs while the other services stall).
    Flush,
    /// A woken pop is handed to the pull executor again (`PopLongPollingService.wakeUp`):
    /// it queues for a thread like a new request.
    Admit(OpId),
}

/// A woken pop runs again this long after its wake: the hop through `pullMessageExecutor`.
/// It also keeps a pop that keeps waking itself (`restNum` left on a queue another pop holds)
/// from spinning within one instant.
const WAKE_HOP_MS: Millis = 1;

/// Longest the scheduler holds a pop that keeps waking itself while nothing else happens in
/// the broker (see [`Scheduler::hold`]): a bound on how late a rerun could notice a
/// time-dependent decision that [`Broker::woken_pop_horizon`] does not name.
const SPIN_HOLD_MAX_MS: Millis = 50;

/// What a pop's rerun that found nothing records: it parked, and its `restNum` woke the
/// key's first request (itself, or another such pop).
fn is_spin_event(e: &BrokerEvent) -> bool {
    match e {
        BrokerEvent::PopParked { .. } => true,
        BrokerEvent::PopWoken { reason, .. } => *reason == WakeReason::RestNum.name(),
        _ => false,
    }
}

/// The scheduler's state: what can run now, what runs later, who waits for a thread.
struct Scheduler {
    spec: SchedulerSpec,
    rng: ChaCha8Rng,
    ready: Vec<Runnable>,
    /// Descheduled or spinning operations by the time they may run again (and a sequence
    /// number, so equal times keep their order).
    later: BTreeMap<(Millis, u64), Runnable>,
    seq: u64,
    /// Requests waiting for a thread, in arrival order.
    queued: VecDeque<OpId>,
    /// Operations holding a thread, and where their answers go.
    running: BTreeMap<OpId, ReplyTo>,
    waiting: BTreeMap<OpId, ReplyTo>,
    /// Pops parked by the long-polling service: no thread, their answer still owed.
    parked: BTreeMap<OpId, ReplyTo>,
    /// Woken pops held between idle reruns ([`Scheduler::hold`]): the key of their `Admit`
    /// in `later`, so that anything else happening can bring it forward.
    held: BTreeMap<OpId, (Millis, u64)>,
}

impl Scheduler {
    fn new(spec: SchedulerSpec, rng: ChaCha8Rng) -> Self {
        Self {
            spec,
            rng,
            ready: Vec::new(),
            later: BTreeMap::new(),
            seq: 0,
            queued: VecDeque::new(),
            running: BTreeMap::new(),
            waiting: BTreeMap::new(),
            parked: BTreeMap::new(),
            held: BTreeMap::new(),
        }
    }

    /// A process death: every thread and queued request is gone.
    fn clear(&mut self) {
        self.ready.clear();
        self.later.clear();
        self.queued.clear();
        self.running.clear();
        self.waiting.clear();
        self.parked.clear();
        self.held.clear();
    }

    /// A pop parked: its thread is free, its answer waits.
    fn park(&mut self, op: OpId) {
        let reply = self.running.remove(&op).expect("a running operation parks");
        self.parked.insert(op, reply);
        self.fill_threads();
    }

    /// Woken pops queue for a thread again after the executor's hop.
    fn wake(&mut self, now: Millis, woken: Vec<OpId>) {
        for op in woken {
            self.readmit_at(op, now + WAKE_HOP_MS);
        }
    }

    /// A woken pop leaves the parked set and queues for a thread again at `at`.
    fn readmit_at(&mut self, op: OpId, at: Millis) {
        let reply = self.parked.remove(&op).expect("a woken pop was parked");
        self.waiting.insert(op, reply);
        self.run_later(at, Runnable::Admit(op));
    }

    /// Pops woken by a rerun that changed nothing but the long-polling service (a pop that
    /// found nothing, parked, and woke itself or the key's first request because of its
    /// `restNum`: `PopMessageProcessor.processRequest`) queue again only at `until(op)`
    /// (capped at [`SPIN_HOLD_MAX_MS`]), or one hop after anything else happens
    /// ([`Scheduler::release_held`]). Upstream such a pop reruns at once, over and over,
    /// until its polling time ends (apache/rocketmq#10034); a rerun in between would find
    /// the same state and end the same way, so only the reruns at a change are simulated.
    fn hold(&mut self, now: Millis, woken: Vec<OpId>, until: impl Fn(OpId) -> Option<Millis>) {
        for op in woken {
            let cap = now + SPIN_HOLD_MAX_MS;
            let at = until(op).map_or(cap, |t| t.min(cap)).max(now + WAKE_HOP_MS);
            self.readmit_at(op, at);
            self.held.insert(op, (at, self.seq));
        }
    }

    /// Something other than an idle rerun happened: every held pop runs again one hop later
    /// (as it would have, rerunning every hop).
    fn release_held(&mut self, now: Millis) {
        for (op, key) in std::mem::take(&mut self.held) {
            if key.0 > now + WAKE_HOP_MS {
                let r = self
                    .later
                    .remove(&key)
                    .expect("a held pop's admission is scheduled");
                debug_assert_eq!(r, Runnable::Admit(op));
                self.run_later(now + WAKE_HOP_MS, r);
            }
        }
    }

    /// An admitted woken pop takes its place in the queue for a thread.
    fn admit_woken(&mut self, op: OpId) {
        self.queued.push_back(op);
        self.fill_threads();
    }

    /// The request queue is at its capacity (`[scheduler] queue_capacity`, 0 = unbounded):
    /// every thread busy and that many requests waiting.
    fn is_full(&self) -> bool {
        self.spec.queue_capacity > 0
            && self.running.len() >= self.spec.threads as usize
            && self.queued.len() >= self.spec.queue_capacity as usize
    }

    fn admit(&mut self, op: OpId, reply: ReplyTo) {
        self.queued.push_back(op);
        self.waiting.insert(op, reply);
        self.fill_threads();
    }

    /// Queued requests take free threads.
    fn fill_threads(&mut self) {
        while self.running.len() < self.spec.threads as usize {
            let Some(op) = self.queued.pop_front() else {
                break;
            };
            let reply = self
                .waiting
                .remove(&op)
                .expect("queued request has a reply slot");
            self.running.insert(op, reply);
            self.ready.push(Runnable::Op(op));
        }
    }

    fn run_later(&mut self, at: Millis, r: Runnable) {
        self.seq += 1;
        self.later.insert((at, self.seq), r);
    }

    /// Moves everything due by `now` into the ready set.
    fn wake_due(&mut self, now: Millis) {
        while let Some(entry) = self.later.first_entry() {
            if entry.key().0 > now {
                break;
            }
            let r = entry.remove();
            if let Runnable::Admit(op) = r {
                self.held.remove(&op);
            }
            self.ready.push(r);
        }
    }

    /// The scheduler's choice among the runnable steps.
    fn pick(&mut self) -> Option<Runnable> {
        if self.ready.is_empty() {
            return None;
        }
        let i = self.rng.gen_range(0..self.ready.len());
        Some(self.ready.remove(i))
    }

    /// After a step that yielded: run again now, or (preempted) after a drawn while.
    fn after_yield(&mut self, now: Millis, op: OpId) {
        let spec = self.spec;
        if spec.preempt_percent > 0 && self.rng.gen_range(0..100) < spec.preempt_percent {
            let d = self
                .rng
                .gen_range(spec.preempt_ms.min..=spec.preempt_ms.max.max(spec.preempt_ms.min));
            self.run_later(now + d, Runnable::Op(op));
        } else {
            self.ready.push(Runnable::Op(op));
        }
    }

    fn pending(&self, r: Runnable) -> bool {
        self.ready.contains(&r) || self.later.values().any(|x| *x == r)
    }
}

struct State {
    broker: Broker,
    up: bool,
    sched: Scheduler,
}

/// Handle to the broker node and its model. Cheap to clone.
#[derive(Clone)]
pub struct BrokerNode {
    state: Arc<Mutex<State>>,
    wake: Arc<Notify>,
    rec: Recorder,
    addr: SocketAddr,
    id: Arc<Mutex<Option<NodeId>>>,
}

impl BrokerNode {
    pub fn new(
        broker: Broker,
        spec: SchedulerSpec,
        rng: ChaCha8Rng,
        rec: Recorder,
        ip: IpAddr,
    ) -> Self {
        Self {
            state: Arc::new(Mutex::new(State {
                broker,
                up: true,
                sched: Scheduler::new(spec, rng),
            })),
            wake: Arc::new(Notify::new()),
            rec,
            addr: SocketAddr::new(ip, BROKER_PORT),
            id: Arc::default(),
        }
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Creates the madsim node; its init task serves requests until the node is killed.
    pub fn build(&self, handle: &Handle) -> NodeId {
        let this = self.clone();
        let node = handle
            .create_node()
            .name(BROKER_NODE)
            .ip(self.addr.ip())
            .init(move || {
                let this = this.clone();
                async move { this.serve().await }
            })
            .build();
        *self.id.lock().expect("id lock") = Some(node.id());
        node.id()
    }

    pub fn node_id(&self) -> NodeId {
        self.id.lock().expect("id lock").expect("broker node built")
    }

    /// Handles a request directly and alone, without the network (start-up administration).
    pub fn handle_local(&self, request: Request) -> Response {
        self.with_broker(|b, now| b.handle(now, request))
    }

    fn with_broker<T>(&self, f: impl FnOnce(&mut Broker, u64) -> T) -> T {
        let now = self.rec.clock().now_ms();
        let mut st = self.state.lock().expect("broker lock");
        let out = f(&mut st.broker, now);
        let events = st.broker.drain_events();
        drop(st);
        self.rec.record_broker(BROKER_NODE, events);
        out
    }

    async fn serve(self) {
        let ep = Endpoint::bind(self.addr)
            .await
            .expect("broker binds its listen port");
        let sched = self.clone();
        let sched_ep = ep.clone();
        madsim::task::spawn(async move { sched.schedule(sched_ep).await });
        for _ in 1..RECEIVERS {
            let (this, ep) = (self.clone(), ep.clone());
            madsim::task::spawn(async move { this.receive(ep).await });
        }
        self.receive(ep).await;
    }

    /// One receive loop: each request taken from the socket becomes an operation.
    async fn receive(self, ep: Endpoint) {
        while let Ok((payload, from)) = ep.recv_from_raw(REQUEST_TAG).await {
            let Ok(envelope) = payload.downcast::<Envelope>() else {
                continue;
            };
            let Envelope {
                id,
                oneway,
                request,
            } = *envelope;
            let busy = {
                let mut st = self.state.lock().expect("broker lock");
                if st.sched.is_full() {
                    true
                } else {
                    let op = st.broker.submit(request);
                    st.sched.admit(op, (!oneway).then_some((from, id)));
                    false
                }
            };
            if busy {
                // The pool's queue is full: the remoting layer answers at once
                // (`NettyRemotingAbstract.processRequestCommand`, RejectedExecutionException).
                if !oneway {
                    let response = Response::error(
                        ResponseCode::SystemBusy,
                        "[OVERLOAD]system busy, start flow control for a while",
                    );
                    let ep = ep.clone();
                    crate::world::tasks::spawn(async move {
                        let _ = ep
                            .send_to_raw(from, RESPONSE_TAG, Box::new(Reply { id, response }))
                            .await;
                    });
                }
                continue;
            }
            self.wake.notify_one();
        }
    }

    /// The scheduler: steps whatever is runnable, in the seed's order, then sleeps until the
    /// next descheduled step, timer or arrival.
    async fn schedule(self, ep: Endpoint) {
        let clock = self.rec.clock();
        loop {
            let now = clock.now_ms();
            let mut steps = 0usize;
            while let Some(r) = self.next_runnable(now) {
                steps += 1;
                assert!(
                    steps <= MAX_STEPS_PER_INSTANT,
                    "the broker took more than {MAX_STEPS_PER_INSTANT} steps at {now} ms"
                );
                match r {
                    Runnable::Timers => self.run_timers(now),
                    Runnable::Flush => {
                        self.with_broker(|b, now| b.persist_if_due(now));
                        self.state
                            .lock()
                            .expect("broker lock")
                            .sched
                            .release_held(now);
                    }
                    Runnable::Op(op) => self.run_step(now, op, &ep),
                    Runnable::Admit(op) => {
                        let mut st = self.state.lock().expect("broker lock");
                        st.sched.admit_woken(op);
                    }
                }
            }
            let wait = {
                let st = self.state.lock().expect("broker lock");
                let next_op = st.sched.later.keys().next().map(|k| k.0);
                // Timers already scheduled (a stalled scan) wake through `later`.
                let next_timer = st
                    .broker
                    .next_deadline()
                    .filter(|_| !st.sched.pending(Runnable::Timers));
                let next_flush = st.broker.next_flush();
                [next_op, next_timer, next_flush]
                    .into_iter()
                    .flatten()
                    .min()
            };
            match wait {
                Some(at) if at > now => {
                    let d = Duration::from_millis(at - now);
                    let _ = madsim::time::timeout(d, self.wake.notified()).await;
                }
                Some(_) => madsim::task::yield_now().await,
                None => self.wake.notified().await,
            }
        }
    }

    /// The next runnable step at `now`, the timers included when due.
    fn next_runnable(&self, now: Millis) -> Option<Runnable> {
        let mut st = self.state.lock().expect("broker lock");
        let State { broker, sched, .. } = &mut *st;
        sched.wake_due(now);
        if broker.next_deadline().is_some_and(|t| t <= now) && !sched.pending(Runnable::Timers) {
            sched.ready.push(Runnable::Timers);
        }
        if broker.next_flush().is_some_and(|t| t <= now) && !sched.pending(Runnable::Flush) {
            sched.ready.push(Runnable::Flush);
        }
        sched.pick()
    }

    fn run_timers(&self, now: Millis) {
        if crate::buggify::buggify("broker-slow-timer") {
            // A stalled scan thread: the merge/revive scan runs late (the offset flush is a
            // runnable of its own, on the broker's scheduled executor, and is not held up).
            let ms = madsim::rand::Rng::gen_range(&mut madsim::rand::thread_rng(), 1..=2_000);
            let mut st = self.state.lock().expect("broker lock");
            st.sched.run_later(now + ms, Runnable::Timers);
            return;
        }
        let mut st = self.state.lock().expect("broker lock");
        st.broker.on_timer(now);
        st.sched.release_held(now);
        let events = st.broker.drain_events();
        // The long-polling service's expiries wake parked pops.
        let woken = st.broker.take_woken();
        st.sched.wake(now, woken);
        drop(st);
        self.rec.record_broker(BROKER_NODE, events);
    }

    fn run_step(&self, now: Millis, op: OpId, ep: &Endpoint) {
        let mut st = self.state.lock().expect("broker lock");
        let step = st.broker.step(now, op);
        let events = st.broker.drain_events();
        let idle = matches!(step, Step::Parked) && events.iter().all(is_spin_event);
        let done = match step {
            Step::Done(response) => Some(response),
            Step::Yield => {
                st.sched.after_yield(now, op);
                None
            }
            Step::Spin => {
                st.sched.run_later(now + 1, Runnable::Op(op));
                None
            }
            Step::Parked => {
                st.sched.park(op);
                None
            }
        };
        let woken = st.broker.take_woken();
        if idle {
            let State { broker, sched, .. } = &mut *st;
            sched.hold(now, woken, |op| broker.woken_pop_horizon(op, now));
        } else {
            st.sched.release_held(now);
            st.sched.wake(now, woken);
        }
        let reply = done.map(|response| {
            let to = st.sched.running.remove(&op).expect("a running operation");
            st.sched.fill_threads();
            (to, response)
        });
        drop(st);
        self.rec.record_broker(BROKER_NODE, events);
        if let Some((Some((from, id)), response)) = reply {
            let ep = ep.clone();
            // Sending costs simulated time; the scheduler must not wait for it.
            crate::world::tasks::spawn(async move {
                let _ = ep
                    .send_to_raw(from, RESPONSE_TAG, Box::new(Reply { id, response }))
                    .await;
            });
        }
    }

    pub fn is_up(&self) -> bool {
        self.state.lock().expect("broker lock").up
    }

    /// The process dies: `Broker::crash`, then the node is killed (tasks, socket and unsent
    /// responses are gone). Returns false if it was already down.
    pub fn crash(&self, handle: &Handle) -> bool {
        self.stop(handle, |b, now| b.crash(now))
    }

    /// A graceful shutdown: `Broker::shutdown` (drain, persist), then the node is killed.
    /// Returns false if it was already down.
    pub fn shutdown(&self, handle: &Handle) -> bool {
        self.stop(handle, |b, now| b.shutdown(now))
    }

    fn stop(&self, handle: &Handle, how: impl FnOnce(&mut Broker, Millis)) -> bool {
        {
            let mut st = self.state.lock().expect("broker lock");
            if !st.up {
                return false;
            }
            st.up = false;
            st.sched.clear();
        }
        self.with_broker(how);
        handle.kill(self.node_id());
        true
    }

    /// The process starts again from what survived. Returns false if it was already up.
    pub fn restart(&self, handle: &Handle) -> bool {
        {
            let mut st = self.state.lock().expect("broker lock");
            if st.up {
                return false;
            }
            st.up = true;
        }
        self.with_broker(|b, now| b.restart(now));
        handle.restart(self.node_id());
        true
    }

    /// Fault input: the store's put failure rate (see `Broker::set_store_put_failure_rate`).
    pub fn set_store_put_failure_rate(&self, rate: f64) {
        self.with_broker(|b, _| b.set_store_put_failure_rate(rate));
    }

    /// Fault input: the timer's lag (see `Broker::set_timer_lag`); the scheduler wakes, as
    /// a reviver may now read sooner or later.
    pub fn set_timer_lag(&self, lag: Millis) {
        self.with_broker(|b, now| b.set_timer_lag(now, lag));
        self.wake.notify_one();
    }

    pub fn snapshot(&self) -> BrokerSnapshot {
        let st = self.state.lock().expect("broker lock");
        st.broker.snapshot()
    }

    /// Drains any events still pending in the model (at the end of a run).
    pub fn flush_events(&self) {
        let events = self
            .state
            .lock()
            .expect("broker lock")
            .broker
            .drain_events();
        self.rec.record_broker(BROKER_NODE, events);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A scheduler with pop 7 parked, as a pop is just before its rerun wakes it.
    fn parked_pop() -> Scheduler {
        let mut s = Scheduler::new(
            SchedulerSpec::default(),
            broker_core::rng::stream(0, "test"),
        );
        s.running.insert(OpId(7), None);
        s.park(OpId(7));
        s
    }

    fn admit_at(s: &Scheduler) -> Vec<Millis> {
        (s.later.iter())
            .filter(|(_, r)| **r == Runnable::Admit(OpId(7)))
            .map(|(k, _)| k.0)
            .collect()
    }

    #[test]
    fn a_woken_pop_reruns_one_hop_later() {
        let mut s = parked_pop();
        s.wake(1_000, vec![OpId(7)]);
        assert_eq!(admit_at(&s), vec![1_000 + WAKE_HOP_MS]);
    }

    #[test]
    fn an_idle_rerun_is_held_until_its_horizon_or_the_cap() {
        let mut s = parked_pop();
        s.hold(1_000, vec![OpId(7)], |_| Some(1_020));
        assert_eq!(admit_at(&s), vec![1_020], "its horizon");
        let mut s = parked_pop();
        s.hold(1_000, vec![OpId(7)], |_| None);
        assert_eq!(admit_at(&s), vec![1_000 + SPIN_HOLD_MAX_MS], "the cap");
        let mut s = parked_pop();
        s.hold(1_000, vec![OpId(7)], |_| Some(1_000));
        assert_eq!(
            admit_at(&s),
            vec![1_000 + WAKE_HOP_MS],
            "never before a hop"
        );
    }

    #[test]
    fn anything_else_happening_brings_a_held_pop_forward_to_one_hop() {
        let mut s = parked_pop();
        s.hold(1_000, vec![OpId(7)], |_| None);
        s.release_held(1_010);
        assert_eq!(admit_at(&s), vec![1_010 + WAKE_HOP_MS]);
        assert!(s.held.is_empty());
        // Once admitted it is no longer held: a later release leaves the queue alone.
        let mut s = parked_pop();
        s.hold(1_000, vec![OpId(7)], |_| Some(1_005));
        s.wake_due(1_005);
        assert!(s.held.is_empty() && s.ready == vec![Runnable::Admit(OpId(7))]);
    }
}
