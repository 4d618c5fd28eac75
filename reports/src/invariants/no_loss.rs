//! Every message produced at or after a group's start position is eventually acked, skipped by a documented client policy, or sent to a DLQ by that group.

use super::{InvariantInfo, Verdict};
use crate::history::History;

pub(crate) const INFO: InvariantInfo = InvariantInfo {
    name: "no-loss",
    statement: "Every message produced at or after a group's start position is eventually acked, skipped by a documented client policy, or sent to a DLQ by that group.",
};

pub(crate) fn check(_history: &History) -> Verdict {
    Verdict::not_applicable("checker not implemented yet")
}
