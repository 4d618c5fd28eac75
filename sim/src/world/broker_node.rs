//! The broker node: drives the sans-IO `broker_core::Broker` from madsim.
//!
//! Requests arrive as datagrams and are handled in arrival order; a timer task sleeps until
//! `next_deadline()` and calls `on_timer`, and is woken early after every request (a request
//! can move the deadline forward). Broker events are drained into the recorder after every
//! call. The `Broker` value lives outside the node, so killing the node (a crash) drops the
//! tasks, the socket and every unsent response, while `Broker::crash`/`restart` decide what
//! state survives.

use super::net::{Envelope, Reply, BROKER_PORT, REQUEST_TAG, RESPONSE_TAG};
use super::recorder::Recorder;
use broker_core::{Broker, BrokerSnapshot, Request, Response};
use madsim::net::Endpoint;
use madsim::runtime::Handle;
use madsim::task::NodeId;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::Notify;

/// Receive loops on the broker's socket. madsim charges every receive at least 1 ms of
/// simulated time, so one loop would cap the broker at about 1 000 requests per simulated
/// second; several loops (like remoting's worker threads) lift that ceiling.
const RECEIVERS: usize = 4;

/// The node name of the broker in histories and fault descriptions.
pub const BROKER_NODE: &str = "broker";

struct State {
    broker: Broker,
    up: bool,
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
    pub fn new(broker: Broker, rec: Recorder, ip: IpAddr) -> Self {
        Self {
            state: Arc::new(Mutex::new(State { broker, up: true })),
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

    /// Handles a request directly, without the network (start-up administration).
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
        let timer = self.clone();
        madsim::task::spawn(async move { timer.timer_loop().await });
        for _ in 1..RECEIVERS {
            let (this, ep) = (self.clone(), ep.clone());
            madsim::task::spawn(async move { this.receive(ep).await });
        }
        self.receive(ep).await;
    }

    /// One receive loop: handles each request as it is taken from the socket.
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
            let response = self.with_broker(|b, now| b.handle(now, request));
            self.wake.notify_one();
            if !oneway {
                let ep = ep.clone();
                // Sending costs simulated time; the receive loop must not wait for it.
                madsim::task::spawn(async move {
                    let _ = ep
                        .send_to_raw(from, RESPONSE_TAG, Box::new(Reply { id, response }))
                        .await;
                });
            }
        }
    }

    async fn timer_loop(self) {
        let clock = self.rec.clock();
        loop {
            let deadline = self
                .state
                .lock()
                .expect("broker lock")
                .broker
                .next_deadline();
            match deadline {
                Some(at) => {
                    let now = clock.now_ms();
                    if at > now {
                        let wait = Duration::from_millis(at - now);
                        let _ = madsim::time::timeout(wait, self.wake.notified()).await;
                    }
                }
                None => self.wake.notified().await,
            }
            if deadline.is_some_and(|at| at <= clock.now_ms()) {
                if crate::buggify::buggify("broker-slow-timer") {
                    // A stalled scan thread: the merge/revive scan runs late.
                    let ms =
                        madsim::rand::Rng::gen_range(&mut madsim::rand::thread_rng(), 1..=2_000);
                    madsim::time::sleep(Duration::from_millis(ms)).await;
                }
                self.with_broker(|b, now| b.on_timer(now));
            }
        }
    }

    pub fn is_up(&self) -> bool {
        self.state.lock().expect("broker lock").up
    }

    /// The process dies: `Broker::crash`, then the node is killed (tasks, socket and unsent
    /// responses are gone). Returns false if it was already down.
    pub fn crash(&self, handle: &Handle) -> bool {
        {
            let mut st = self.state.lock().expect("broker lock");
            if !st.up {
                return false;
            }
            st.up = false;
        }
        self.with_broker(|b, now| b.crash(now));
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
