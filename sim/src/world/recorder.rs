//! The virtual clock and the history recorder shared by every node of one run.

use broker_core::{BrokerEvent, Millis, Name};
use reports::history::{Event, EventKind, HistoryDigest};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Virtual milliseconds since the run started, read from madsim's clock. broker-core and the
/// history both use this time base.
#[derive(Clone, Copy, Debug)]
pub struct Clock {
    start: Instant,
}

impl Clock {
    /// Starts the clock now; must be called inside the simulation.
    pub fn start() -> Self {
        Self {
            start: Instant::now(),
        }
    }

    pub fn now_ms(&self) -> Millis {
        self.start.elapsed().as_millis() as Millis
    }

    /// The instant `at` virtual milliseconds after the start.
    pub fn instant(&self, at: Millis) -> Instant {
        self.start + Duration::from_millis(at)
    }

    /// Sleeps until `at`; returns at once when `at` has come (madsim would still charge
    /// a timer tick, pushing a second step of the same instant a millisecond later).
    pub async fn sleep_until(&self, at: Millis) {
        if self.start.elapsed() >= Duration::from_millis(at) {
            return;
        }
        madsim::time::sleep_until(self.instant(at)).await;
    }
}

/// Appends events in the order the simulation produced them. Cheap to clone.
#[derive(Clone, Debug)]
pub struct Recorder {
    clock: Clock,
    log: Arc<Mutex<Log>>,
}

/// The events of the run. Node names, like every name in an event, are shared `Name`s:
/// one allocation per distinct name, however many events carry it.
#[derive(Debug, Default)]
struct Log {
    events: Vec<Event>,
    /// The history hash of `events` so far.
    digest: HistoryDigest,
}

impl Log {
    fn push(&mut self, e: Event) {
        self.digest.event(&e);
        self.events.push(e);
    }
}

impl Recorder {
    pub fn new(clock: Clock) -> Self {
        Self {
            clock,
            log: Arc::default(),
        }
    }

    pub fn clock(&self) -> Clock {
        self.clock
    }

    /// Records `kind` on `node` at the current virtual time.
    pub fn record(&self, node: &str, kind: EventKind) {
        let at = self.clock.now_ms();
        self.record_at(at, node, kind);
    }

    pub fn record_at(&self, at: Millis, node: &str, kind: EventKind) {
        let node = Name::new(node);
        let mut log = self.log.lock().expect("recorder lock");
        log.push(Event { at, node, kind });
    }

    /// Records broker observations drained from broker-core, at the time each carries.
    pub fn record_broker(&self, node: &str, events: Vec<BrokerEvent>) {
        if events.is_empty() {
            return;
        }
        let at = self.clock.now_ms();
        let node = Name::new(node);
        let mut log = self.log.lock().expect("recorder lock");
        for e in events {
            log.push(Event {
                at,
                node: node.clone(),
                kind: history_kind(e),
            });
        }
    }

    /// Records a fault injection or heal.
    pub fn fault(&self, description: impl Into<String>) {
        self.record(
            "faults",
            EventKind::Fault {
                description: description.into().into(),
            },
        );
    }

    /// Takes every event recorded so far, with their digest (the history hash is
    /// `digest.finish(final_state)`).
    pub fn take(&self) -> (Vec<Event>, HistoryDigest) {
        let log = std::mem::take(&mut *self.log.lock().expect("recorder lock"));
        (log.events, log.digest)
    }
}

/// A broker observation as the history spells it: a DLQ store is the top-level `DlqWritten`
/// (what the checker's DLQ accounting reads), anything else `Broker(…)`.
fn history_kind(e: BrokerEvent) -> EventKind {
    match e {
        BrokerEvent::DlqWritten {
            group,
            msg_id,
            origin_topic,
            dlq_topic,
            dlq_queue_offset,
            reconsume_times,
            ..
        } => EventKind::DlqWritten {
            group,
            msg_id,
            origin_topic,
            dlq_topic,
            dlq_queue_offset,
            reconsume_times,
        },
        other => EventKind::Broker(other),
    }
}
