//! Without faults, resets or changeInvisibleTime, the listener sees a message at most effective maxReconsumeTimes + 1 times per group.

use super::{InvariantInfo, Verdict};
use crate::history::History;

pub(crate) const INFO: InvariantInfo = InvariantInfo {
    name: "bounded-deliveries",
    statement: "Without faults, resets or changeInvisibleTime, the listener sees a message at most effective maxReconsumeTimes + 1 times per group.",
};

pub(crate) fn check(_history: &History) -> Verdict {
    Verdict::not_applicable("checker not implemented yet")
}
