//! Every revive puts reconsumeTimes + 1 into the group's POP retry topic, and never before the deadline of the copy's latest receipt.

use super::{InvariantInfo, Verdict};
use crate::history::History;

pub(crate) const INFO: InvariantInfo = InvariantInfo {
    name: "revive-bookkeeping",
    statement: "Every revive puts reconsumeTimes + 1 into the group's POP retry topic, and never before the deadline of the copy's latest receipt.",
};

pub(crate) fn check(_history: &History) -> Verdict {
    Verdict::not_applicable("checker not implemented yet")
}
