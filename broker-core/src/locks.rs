//! The broker's try-locks, as upstream writes them: `PopMessageProcessor.QueueLockManager`
//! (one `TimedLock` per `topic@group@queueId`) and `PopConsumerLockService` (one per
//! `group@topic`, the KV path). Both are an `AtomicBoolean` upstream: `tryLock` is a CAS
//! from free to held and `unlock` sets free, whoever calls it. The model keeps who holds a
//! lock only to tell when upstream releases a lock it does not hold
//! (`PopConsumerService.clearCache`); it never refuses such a release.
//!
//! Stale-lock cleaning (60 s for queue locks, 2 min for the KV locks) is left out: a lock is
//! held across one step boundary at most, far shorter than either timeout. What the KV
//! lock's `TimedLock.lockTime` is also read for is kept: `PopConsumerLockService.isLockTimeout`
//! tells `PopConsumerCache` a group went offline when nobody took its lock for 2 min.

use crate::config::Millis;
use crate::inflight::OpId;
use std::collections::BTreeMap;

/// One family of try-locks, keyed by upstream's lock key.
#[derive(Clone, Debug, Default)]
pub struct TryLocks {
    held: BTreeMap<String, OpId>,
    /// `TimedLock.lockTime`: the last successful [`TryLocks::try_lock_at`] of each key.
    lock_times: BTreeMap<String, Millis>,
}

impl TryLocks {
    /// `TimedLock.tryLock`: [`TryLocks::try_lock`], recording the lock time on success.
    pub fn try_lock_at(&mut self, key: &str, by: OpId, now: Millis) -> bool {
        let ok = self.try_lock(key, by);
        if ok {
            self.lock_times.insert(key.to_owned(), now);
        }
        ok
    }

    /// `PopConsumerLockService.isLockTimeout`: nobody took the lock within `timeout`
    /// (or ever, in this process).
    pub fn is_lock_timeout(&self, key: &str, now: Millis, timeout: Millis) -> bool {
        self.lock_times
            .get(key)
            .is_none_or(|&t| now.saturating_sub(t) > timeout)
    }

    /// `tryLock`: takes the lock if it is free.
    pub fn try_lock(&mut self, key: &str, by: OpId) -> bool {
        if self.held.contains_key(key) {
            return false;
        }
        self.held.insert(key.to_owned(), by);
        true
    }

    /// `unlock`: frees the lock whoever holds it. Returns the holder when that was not `by`
    /// (upstream has released somebody else's lock), `None` otherwise.
    pub fn unlock(&mut self, key: &str, by: OpId) -> Option<OpId> {
        self.held.remove(key).filter(|holder| *holder != by)
    }

    /// Every lock is freed (a process death).
    pub fn clear(&mut self) {
        self.held.clear();
        self.lock_times.clear();
    }

    /// Locks held by operations that no longer exist (must be none).
    pub fn held_by(&self) -> impl Iterator<Item = (&str, OpId)> + '_ {
        self.held.iter().map(|(k, v)| (k.as_str(), *v))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn try_lock_is_exclusive_and_unlock_frees_whoever_holds() {
        let mut l = TryLocks::default();
        assert!(l.try_lock("t@g@0", OpId(1)));
        assert!(!l.try_lock("t@g@0", OpId(2)));
        assert!(l.try_lock("t@g@1", OpId(2)));
        assert_eq!(l.unlock("t@g@0", OpId(1)), None);
        assert!(l.try_lock("t@g@0", OpId(3)));
        // Upstream's unlock is `set(false)`: a non-holder frees it too, and we say whose it was.
        assert_eq!(l.unlock("t@g@0", OpId(1)), Some(OpId(3)));
        assert!(l.held_by().all(|(k, _)| k != "t@g@0"));
        assert_eq!(l.unlock("t@g@0", OpId(1)), None);
    }
}
