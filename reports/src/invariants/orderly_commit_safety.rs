//! An orderly group's commit offset never passes an un-acked message of the outstanding batch, and at most one un-expired batch is outstanding per queue.

use super::{InvariantInfo, Verdict};
use crate::history::History;

pub(crate) const INFO: InvariantInfo = InvariantInfo {
    name: "orderly-commit-safety",
    statement: "An orderly group's commit offset never passes an un-acked message of the outstanding batch, and at most one un-expired batch is outstanding per queue.",
};

pub(crate) fn check(_history: &History) -> Verdict {
    Verdict::not_applicable("checker not implemented yet")
}
