//! After a reset of a queue to X the next pop starts at X, acked messages are not replayed, and the reset survives a broker restart.

use super::{InvariantInfo, Verdict};
use crate::history::History;

pub(crate) const INFO: InvariantInfo = InvariantInfo {
    name: "reset-takes-effect",
    statement: "After a reset of a queue to X the next pop starts at X, acked messages are not replayed, and the reset survives a broker restart.",
};

pub(crate) fn check(_history: &History) -> Verdict {
    Verdict::not_applicable("checker not implemented yet")
}
