//! Per orderly group and queue, deliveries follow queue-offset order: repeats are allowed, gaps and reordering are not.

use super::{InvariantInfo, Verdict};
use crate::history::History;

pub(crate) const INFO: InvariantInfo = InvariantInfo {
    name: "orderly-order",
    statement: "Per orderly group and queue, deliveries follow queue-offset order: repeats are allowed, gaps and reordering are not.",
};

pub(crate) fn check(_history: &History) -> Verdict {
    Verdict::not_applicable("checker not implemented yet")
}
