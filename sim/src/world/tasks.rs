//! Spawning the many short-lived tasks of a run (a reply, a consume request, an async ack)
//! without madsim's per-task bookkeeping piling up.
//!
//! madsim 0.2 keeps a `Weak` to every task a node has spawned (`NodeInfo.tasks`, so that a
//! kill can wake and drop them) and forgets the dead ones only when the node is killed or its
//! tasks are counted (`RuntimeMetrics::num_tasks`, which retains the live ones). A `Weak`
//! keeps its task's `TaskInfo` allocation, so without counting, a broker that spawns a task
//! per reply holds one for every reply it ever sent (1.6 M at 10^6 messages). Counting the
//! tasks now and then drops them. It draws no random number, moves no clock and keeps the live
//! tasks in spawn order, and a kill skips dead tasks anyway: the simulation is unchanged.

use madsim::runtime::Handle;
use madsim::task::JoinHandle;
use std::cell::Cell;
use std::future::Future;

/// Fewest spawns between two prunes, so a run with few live tasks does not prune per spawn.
const MIN_SPAWNS_BETWEEN_PRUNES: u64 = 4_096;

thread_local! {
    /// Spawns left before the next prune. Per thread, as a simulation runs on one; its value
    /// decides only when dead tasks are forgotten, never what the simulation does.
    static SPAWNS_TO_PRUNE: Cell<u64> = const { Cell::new(MIN_SPAWNS_BETWEEN_PRUNES) };
}

/// [`madsim::task::spawn`] on the current node, then a prune of finished tasks when due.
#[track_caller]
pub fn spawn<F>(future: F) -> JoinHandle<F::Output>
where
    F: Future + Send + 'static,
    F::Output: Send + 'static,
{
    let handle = madsim::task::spawn(future);
    prune_if_due();
    handle
}

/// Prunes after as many spawns as there were live tasks at the last prune (at least
/// [`MIN_SPAWNS_BETWEEN_PRUNES`]): the bookkeeping stays within about twice the live tasks
/// and each spawn pays O(1) for it, amortized.
fn prune_if_due() {
    let left = SPAWNS_TO_PRUNE.get().saturating_sub(1);
    if left > 0 {
        SPAWNS_TO_PRUNE.set(left);
        return;
    }
    let live = Handle::current().metrics().num_tasks() as u64;
    SPAWNS_TO_PRUNE.set(live.max(MIN_SPAWNS_BETWEEN_PRUNES));
}

#[cfg(test)]
mod tests {
    use super::*;
    use madsim::runtime::Runtime;

    #[test]
    fn a_prune_sets_the_next_window_to_the_live_tasks() {
        let rt = Runtime::new();
        let node = rt.create_node().build();
        let done = node.spawn(async {
            let live = 2 * MIN_SPAWNS_BETWEEN_PRUNES;
            let nap = std::time::Duration::from_secs(1);
            for _ in 0..live {
                spawn(madsim::time::sleep(nap));
            }
            SPAWNS_TO_PRUNE.set(1);
            spawn(async {}).await.expect("task ran");
            assert!(SPAWNS_TO_PRUNE.get() >= live, "the sleeping tasks are live");
            madsim::time::sleep(2 * nap).await;
            SPAWNS_TO_PRUNE.set(1);
            spawn(async {}).await.expect("task ran");
            assert_eq!(SPAWNS_TO_PRUNE.get(), MIN_SPAWNS_BETWEEN_PRUNES);
        });
        rt.block_on(done).expect("test task ran");
    }
}
