//! Once an ack of a message succeeds for a group, the message is neither revived nor popped again for that group unless its queue is reset to an offset at or below it.

use super::{InvariantInfo, Verdict};
use crate::history::History;

pub(crate) const INFO: InvariantInfo = InvariantInfo {
    name: "no-redelivery-after-ack",
    statement: "Once an ack of a message succeeds for a group, the message is neither revived nor popped again for that group unless its queue is reset to an offset at or below it.",
};

pub(crate) fn check(_history: &History) -> Verdict {
    Verdict::not_applicable("checker not implemented yet")
}
