//! Fault operations on the world (crash/restart, clog, pause, loss), shared by the scripted
//! timeline and the random fault generator. Every operation records a `Fault` event.

use super::broker_node::{BrokerNode, BROKER_NODE};
use super::recorder::Recorder;
use broker_core::Millis;
use madsim::net::NetSim;
use madsim::runtime::Handle;
use madsim::task::NodeId;
use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Who asked for a fault.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Origin {
    Scripted,
    Random,
}

impl Origin {
    fn tag(self) -> &'static str {
        match self {
            Origin::Scripted => "scripted",
            Origin::Random => "random",
        }
    }
}

#[derive(Clone)]
pub struct Controller {
    /// Tasks spawned on the controller's node, aborted at the end of the run.
    tasks: Arc<Mutex<Vec<madsim::task::AbortHandle>>>,
    handle: Handle,
    broker: BrokerNode,
    nodes: Arc<BTreeMap<String, NodeId>>,
    rec: Recorder,
    clogged: Arc<Mutex<BTreeSet<String>>>,
    paused: Arc<Mutex<BTreeSet<String>>>,
}

impl Controller {
    pub fn new(
        handle: Handle,
        broker: BrokerNode,
        nodes: BTreeMap<String, NodeId>,
        rec: Recorder,
    ) -> Self {
        Self {
            tasks: Arc::default(),
            handle,
            broker,
            nodes: Arc::new(nodes),
            rec,
            clogged: Arc::default(),
            paused: Arc::default(),
        }
    }

    pub fn clock(&self) -> super::recorder::Clock {
        self.rec.clock()
    }

    /// The queue's current [min, max] offsets (both 0 for a queue not yet written).
    pub fn queue_range(&self, topic: &str, queue: u32) -> (u64, u64) {
        self.broker
            .snapshot()
            .queues
            .get(topic)
            .and_then(|qs| qs.get(queue as usize))
            .map_or((0, 0), |r| (r.min, r.max))
    }

    /// Spawns `f(controller)` on the controller's node, to be aborted by
    /// [`Controller::shutdown`].
    pub fn spawn<F, Fut>(&self, f: F)
    where
        F: FnOnce(Controller) -> Fut,
        Fut: std::future::Future<Output = ()> + Send + 'static,
    {
        let task = madsim::task::spawn(f(self.clone()));
        self.tasks
            .lock()
            .expect("task lock")
            .push(task.abort_handle());
    }

    /// Ends every task of the run: aborts the controller's tasks and kills every node.
    ///
    /// Pending tasks hold endpoints and handles that reach back into the runtime's timers,
    /// which hold the tasks' wakers: a reference cycle that would keep each seed's whole
    /// world alive after its runtime is dropped. The executor drops an aborted or killed
    /// task's future the next time it runs, so the caller must then let time pass once.
    pub fn shutdown(&self) {
        for t in self.tasks.lock().expect("task lock").drain(..) {
            t.abort();
        }
        for id in self.nodes.values() {
            self.handle.kill(*id);
        }
    }

    /// Records an event on behalf of `node` (a change the controller made to it).
    pub fn record(&self, node: &str, kind: reports::history::EventKind) {
        self.rec.record(node, kind);
    }

    pub fn node_names(&self) -> impl Iterator<Item = &String> {
        self.nodes.keys()
    }

    fn node(&self, name: &str) -> NodeId {
        *self
            .nodes
            .get(name)
            .unwrap_or_else(|| panic!("no node named `{name}` in this world"))
    }

    pub fn crash_broker(&self, origin: Origin) -> bool {
        let done = self.broker.crash(&self.handle);
        if done {
            self.rec
                .fault(format!("crash {BROKER_NODE} ({})", origin.tag()));
        }
        done
    }

    /// A graceful shutdown: the broker drains and persists before it stops.
    pub fn shutdown_broker(&self, origin: Origin) -> bool {
        let done = self.broker.shutdown(&self.handle);
        if done {
            self.rec
                .fault(format!("shutdown {BROKER_NODE} ({})", origin.tag()));
        }
        done
    }

    pub fn restart_broker(&self, origin: Origin) -> bool {
        let done = self.broker.restart(&self.handle);
        if done {
            self.rec
                .fault(format!("restart {BROKER_NODE} ({})", origin.tag()));
        }
        done
    }

    pub fn broker_up(&self) -> bool {
        self.broker.is_up()
    }

    /// Cuts `node` off the network in both directions. False if it already was.
    pub fn clog(&self, node: &str, origin: Origin, until: Option<Millis>) -> bool {
        let id = self.node(node);
        if !self
            .clogged
            .lock()
            .expect("clog lock")
            .insert(node.to_owned())
        {
            return false;
        }
        NetSim::current().clog_node(id);
        let until = until.map(|t| format!(" until {t} ms")).unwrap_or_default();
        self.rec
            .fault(format!("clog {node} ({}){until}", origin.tag()));
        true
    }

    pub fn unclog(&self, node: &str, origin: Origin) -> bool {
        let id = self.node(node);
        if !self.clogged.lock().expect("clog lock").remove(node) {
            return false;
        }
        NetSim::current().unclog_node(id);
        self.rec.fault(format!("unclog {node} ({})", origin.tag()));
        true
    }

    pub fn is_paused(&self, node: &str) -> bool {
        self.paused.lock().expect("pause lock").contains(node)
    }

    /// Stops `node`'s tasks for `duration_ms` (a GC stall), then resumes them.
    pub async fn pause(&self, node: &str, duration_ms: Millis, origin: Origin) {
        let id = self.node(node);
        if !self
            .paused
            .lock()
            .expect("pause lock")
            .insert(node.to_owned())
        {
            return;
        }
        self.handle.pause(id);
        self.rec.fault(format!(
            "pause {node} for {duration_ms} ms ({})",
            origin.tag()
        ));
        madsim::time::sleep(Duration::from_millis(duration_ms)).await;
        self.handle.resume(id);
        self.paused.lock().expect("pause lock").remove(node);
        self.rec.fault(format!("resume {node} ({})", origin.tag()));
    }

    /// Store puts of CKs, ACKs, re-put CKs and retry messages fail with `rate` from now on.
    pub fn set_store_put_failure_rate(&self, rate: f64, origin: Origin) {
        self.broker.set_store_put_failure_rate(rate);
        self.rec
            .fault(format!("store put failures {rate} ({})", origin.tag()));
    }

    /// The broker's timer runs `lag` ms behind from now on.
    pub fn set_timer_lag(&self, lag: Millis, origin: Origin) {
        self.broker.set_timer_lag(lag);
        self.rec
            .fault(format!("timer lag {lag} ms ({})", origin.tag()));
    }

    pub fn set_loss(&self, rate: f64, origin: Origin) {
        NetSim::current().update_config(|c| c.packet_loss_rate = rate);
        self.rec
            .fault(format!("packet loss {rate} ({})", origin.tag()));
    }
}
