//! The broker: owns every upstream component and routes requests to their processors.

use crate::behaviours::Behaviours;
use crate::config::{BrokerConfig, Millis};
use crate::events::{BrokerEvent, BrokerSnapshot};
use crate::protocol::{Request, Response};

/// The broker model (one `BrokerController`).
#[derive(Debug)]
pub struct Broker {
    _config: BrokerConfig,
    _behaviours: Behaviours,
    _seed: u64,
}

impl Broker {
    /// A broker with no topics or groups. `seed` feeds the pseudo-random choices upstream
    /// makes with `ThreadLocalRandom` (queue start, retry-first probability).
    pub fn new(config: BrokerConfig, behaviours: Behaviours, seed: u64) -> Self {
        Self { _config: config, _behaviours: behaviours, _seed: seed }
    }

    /// Handles one request at virtual time `now`.
    pub fn handle(&mut self, _now: Millis, _req: Request) -> Response {
        todo!("broker-core implementation")
    }

    /// Runs every service whose time has come (buffer scan, revive, offset persist).
    pub fn on_timer(&mut self, _now: Millis) {
        todo!("broker-core implementation")
    }

    /// When the model next needs [`Broker::on_timer`]; `None` if never.
    pub fn next_deadline(&self) -> Option<Millis> {
        todo!("broker-core implementation")
    }

    /// The process dies: everything volatile is lost at once.
    pub fn crash(&mut self, _now: Millis) {
        todo!("broker-core implementation")
    }

    /// The process starts from what survived the crash.
    pub fn restart(&mut self, _now: Millis) {
        todo!("broker-core implementation")
    }

    /// Observations since the last call, oldest first.
    pub fn drain_events(&mut self) -> Vec<BrokerEvent> {
        todo!("broker-core implementation")
    }

    /// Read-only view for the checker.
    pub fn snapshot(&self) -> BrokerSnapshot {
        todo!("broker-core implementation")
    }
}
