//! A reset of one queue does not make the group pop already-delivered messages of its other queues again.

use super::{InvariantInfo, Verdict};
use crate::history::History;

pub(crate) const INFO: InvariantInfo = InvariantInfo {
    name: "reset-leaves-other-queues",
    statement: "A reset of one queue does not make the group pop already-delivered messages of its other queues again.",
};

pub(crate) fn check(_history: &History) -> Verdict {
    Verdict::not_applicable("checker not implemented yet")
}
