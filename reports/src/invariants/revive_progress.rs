//! At the end, every revive queue whose records are all past due has been processed up to its last record.

use super::{InvariantInfo, Verdict};
use crate::history::History;

pub(crate) const INFO: InvariantInfo = InvariantInfo {
    name: "revive-progress",
    statement: "At the end, every revive queue whose records are all past due has been processed up to its last record.",
};

pub(crate) fn check(_history: &History) -> Verdict {
    Verdict::not_applicable("checker not implemented yet")
}
