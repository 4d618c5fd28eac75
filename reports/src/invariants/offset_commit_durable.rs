//! An offset update the caller saw succeed is what the broker holds at the end, unless a later commit or reset replaced it.

use super::{InvariantInfo, Verdict};
use crate::history::History;

pub(crate) const INFO: InvariantInfo = InvariantInfo {
    name: "offset-commit-durable",
    statement: "An offset update the caller saw succeed is what the broker holds at the end, unless a later commit or reset replaced it.",
};

pub(crate) fn check(_history: &History) -> Verdict {
    Verdict::not_applicable("checker not implemented yet")
}
