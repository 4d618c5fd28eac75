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

/// Events a run records per message it produces, for reserving the log up front: about 6.5
/// at 10^6 messages of the scaling scenario and 10 at 10^4. Reserving takes address space
/// only, since pages are touched as events arrive; a log that outgrows it doubles as before.
const EVENTS_PER_MESSAGE: usize = 10;

/// The largest reservation (2^27 events, 15 GiB of address space); past it, or when the
/// address space is refused, the log grows.
const MAX_RESERVED_EVENTS: usize = 1 << 27;

/// Runs of fewer messages grow their log as it fills: a sweep's seeds (a few hundred
/// messages) ran 2-4 % slower with a reservation each (`perf stat popsim sweep
/// develop-random --seeds 0..100 --fix all`: 4.78 s against 4.67 s of task-clock).
const MIN_RESERVED_MESSAGES: u64 = 10_000;

impl Recorder {
    /// A recorder whose log has room for the events of `messages` produced messages, so a
    /// large run's log is never copied to grow (each copy touched fresh pages the kernel
    /// zeroes: 8 % of a 10^5-message run's time).
    pub fn new(clock: Clock, messages: u64) -> Self {
        let room = match messages {
            0..MIN_RESERVED_MESSAGES => 0,
            _ => usize::try_from(messages)
                .unwrap_or(usize::MAX)
                .saturating_mul(EVENTS_PER_MESSAGE)
                .min(MAX_RESERVED_EVENTS),
        };
        let mut log = Log::default();
        // A machine that cannot map that much address space runs with a growing log.
        let _ = log.events.try_reserve_exact(room);
        Self {
            clock,
            log: Arc::new(Mutex::new(log)),
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

#[cfg(test)]
mod tests {
    use super::*;

    fn room(messages: u64) -> usize {
        let rt = madsim::runtime::Runtime::new();
        rt.block_on(async move {
            let rec = Recorder::new(Clock::start(), messages);
            let log = rec.log.lock().expect("recorder lock");
            log.events.capacity()
        })
    }

    #[test]
    fn a_large_runs_log_has_room_for_its_messages_events_up_to_a_bound() {
        assert!(room(10_000) >= 10_000 * EVENTS_PER_MESSAGE);
        assert_eq!(room(1_000), 0, "a small run grows its log");
        assert!(room(u64::MAX) <= MAX_RESERVED_EVENTS);
    }
}
