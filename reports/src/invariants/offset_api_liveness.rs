//! Every sync or future offset update completes, and none reports success for an update the broker did not accept.

use super::{InvariantInfo, Verdict};
use crate::history::History;

pub(crate) const INFO: InvariantInfo = InvariantInfo {
    name: "offset-api-liveness",
    statement: "Every sync or future offset update completes, and none reports success for an update the broker did not accept.",
};

pub(crate) fn check(_history: &History) -> Verdict {
    Verdict::not_applicable("checker not implemented yet")
}
