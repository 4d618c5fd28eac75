//! `DefaultReceiptHandleManager` and `ReceiptHandleGroup`: the receipt handles of messages a
//! push consumer is consuming, kept per (client, group) and message so that the proxy can
//! renew their invisible time and hand the latest handle to the ack.
//!
//! An entry is keyed like `ReceiptHandleGroup.HandleKey`: the message id, then the queue and
//! offset of the handle it was received with (not its popTime: a redelivery of the same copy
//! replaces the entry, finding F30; with the proposed fix `handle-key-per-delivery` a
//! non-orderly entry's key also has its original handle). Each entry has a lock (`HandleData.lock`): a renewal holds it while
//! its changeInvisibleTime is in flight, and an ack or nack that takes the entry out, or a
//! receive that puts a newer copy's handle in, waits for it up to
//! `lockTimeoutMsInHandleGroup`. The lock's expiry is not modelled (`HandleData.lock` takes
//! an entry locked longer than 3 × that timeout anyway, and `unlock` leaves the semaphore
//! taken after 2 ×): every holder's broker call ends within `DEFAULT_TIMEOUT_MILLS` (2 s),
//! under both bounds.

use super::decisions::LOCK_TIMEOUT_MS_IN_HANDLE_GROUP;
use broker_core::{ExtraInfo, Millis};
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::{Mutex as AsyncMutex, OwnedMutexGuard};

/// `MessageReceiptHandle`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MessageReceiptHandle {
    pub group: String,
    pub topic: String,
    pub msg_id: String,
    /// The handle the client got (and names in its ack).
    pub original: String,
    /// The latest handle (renewed ones replace it).
    pub current: String,
    pub reconsume_times: u32,
    pub consume_timestamp: Millis,
    pub renew_times: u32,
    pub renew_retry_times: u32,
}

/// (client, group).
pub type GroupKey = (String, String);
/// (msgId, queueId, offset, and with the proposed fix `handle-key-per-delivery` the
/// original handle of a non-orderly handle: `HandleKey.originalHandle`).
type HandleKey = (String, u32, u64, Option<String>);

/// One entry: its lock and its data (`None` once removed).
#[derive(Debug)]
pub struct HandleData {
    lock: Arc<AsyncMutex<()>>,
    pub data: Mutex<Option<MessageReceiptHandle>>,
}

/// One (client, group)'s `ReceiptHandleGroup`.
type HandleGroup = BTreeMap<HandleKey, Arc<HandleData>>;

/// The manager's table.
#[derive(Clone, Debug, Default)]
pub struct ReceiptHandles {
    groups: Arc<Mutex<BTreeMap<GroupKey, HandleGroup>>>,
    /// The proposed fix `handle-key-per-delivery`, read only where a key is made
    /// ([`ReceiptHandles::key`]).
    per_delivery: bool,
}

impl ReceiptHandles {
    /// An empty table; `per_delivery` is the proposed fix `handle-key-per-delivery`.
    pub fn new(per_delivery: bool) -> Self {
        Self {
            per_delivery,
            ..Self::default()
        }
    }

    /// `ReceiptHandleGroup.HandleKey` of `handle`: on develop its broker, queue and offset
    /// (#6755, for reentrant orderly consumption: a FIFO re-pop's handle replaces the
    /// batch's), so two deliveries of one non-orderly copy share an entry; with
    /// `handle-key-per-delivery`, a non-orderly handle's key also has the handle itself
    /// (the entry's original handle: upstream's `HandleKey.originalHandle`, which `equals`
    /// leaves out on develop), so each delivery keeps its own entry (finding F30).
    fn key(&self, msg_id: &str, handle: &str) -> Option<HandleKey> {
        let info = ExtraInfo::parse(handle)?;
        let delivery = (self.per_delivery && !info.is_order()).then(|| handle.to_owned());
        Some((
            msg_id.to_owned(),
            info.queue_id,
            info.queue_offset,
            delivery,
        ))
    }

    /// Whether two handles of `msg_id` name one entry.
    pub fn same_entry(&self, msg_id: &str, a: &str, b: &str) -> bool {
        self.key(msg_id, a)
            .is_some_and(|k| self.key(msg_id, b) == Some(k))
    }

    /// `addReceiptHandle` (`ReceiptHandleGroup.put`): a new entry, or the live entry's data
    /// replaced under its lock, so a put waits for a renewal in flight and its handle
    /// replaces the renewal's result. `Err(())` when the lock could not be had within
    /// `lockTimeoutMsInHandleGroup`: upstream's put throws `INTERNAL_SERVER_ERROR` ("try to
    /// put handle failed") out of the receive, which then answers that error.
    pub async fn add(&self, client: &str, h: MessageReceiptHandle) -> Result<(), ()> {
        let Some(key) = self.key(&h.msg_id, &h.original) else {
            return Ok(());
        };
        let live = self
            .entry(client, &h.group, &key)
            .filter(|d| d.data.lock().expect("handle lock").is_some());
        if let Some(d) = live {
            let guard = lock(&d).await.ok_or(())?;
            let mut data = d.data.lock().expect("handle lock");
            // `needRemove` set while the put waited: a new entry, as below.
            if data.is_some() {
                *data = Some(h);
                drop(guard);
                return Ok(());
            }
        }
        self.insert(client, key, h);
        Ok(())
    }

    /// A new entry for `key` (replacing a removed one's).
    fn insert(&self, client: &str, key: HandleKey, h: MessageReceiptHandle) {
        let mut groups = self.groups.lock().expect("handles lock");
        let group = groups
            .entry((client.to_owned(), h.group.clone()))
            .or_default();
        group.insert(
            key,
            Arc::new(HandleData {
                lock: Arc::new(AsyncMutex::new(())),
                data: Mutex::new(Some(h)),
            }),
        );
    }

    /// Puts back an entry a failed ack, change or forward took out (the fixes
    /// `failed-ack-restores-handle`, `failed-change-restores-handle` and
    /// `failed-forward-restores-handle`), unless a receive added one for the same key
    /// meanwhile: that one's handle is newer.
    pub fn restore(&self, client: &str, h: MessageReceiptHandle) {
        let Some(key) = self.key(&h.msg_id, &h.original) else {
            return;
        };
        let live = self
            .entry(client, &h.group, &key)
            .is_some_and(|d| d.data.lock().expect("handle lock").is_some());
        if !live {
            self.insert(client, key, h);
        }
    }

    fn entry(&self, client: &str, group: &str, key: &HandleKey) -> Option<Arc<HandleData>> {
        let groups = self.groups.lock().expect("handles lock");
        groups
            .get(&(client.to_owned(), group.to_owned()))?
            .get(key)
            .cloned()
    }

    fn drop_entry(&self, client: &str, group: &str, key: &HandleKey, d: &Arc<HandleData>) {
        let mut groups = self.groups.lock().expect("handles lock");
        let gk = (client.to_owned(), group.to_owned());
        if let Some(g) = groups.get_mut(&gk) {
            if g.get(key).is_some_and(|cur| Arc::ptr_eq(cur, d)) {
                g.remove(key);
            }
            if g.is_empty() {
                groups.remove(&gk);
            }
        }
    }

    /// `removeReceiptHandle` (`ReceiptHandleGroup.remove`): takes the entry out, waiting for
    /// a renewal in flight; the latest handle, if there was one. `Err(())` when the lock
    /// could not be had in time (the proxy answers `INTERNAL_SERVER_ERROR`).
    pub async fn remove(
        &self,
        client: &str,
        group: &str,
        msg_id: &str,
        handle: &str,
    ) -> Result<Option<MessageReceiptHandle>, ()> {
        let Some(lease) = self.lock_entry(client, group, msg_id, handle).await? else {
            return Ok(None);
        };
        let taken = lease.handle.clone();
        lease.remove();
        Ok(Some(taken))
    }

    /// Every entry, in key order: what `scheduleRenewTask` scans.
    pub fn scan(&self) -> Vec<(GroupKey, MessageReceiptHandle)> {
        let groups = self.groups.lock().expect("handles lock");
        let mut out = Vec::new();
        for (gk, g) in groups.iter() {
            for d in g.values() {
                if let Some(h) = d.data.lock().expect("handle lock").clone() {
                    out.push((gk.clone(), h));
                }
            }
        }
        out
    }

    /// `ReceiptHandleGroup.computeIfPresent`: locks the entry named by `original` for a
    /// renewal. `None` if it is gone (or its lock could not be had in time).
    pub async fn lock_for_renew(
        &self,
        gk: &GroupKey,
        msg_id: &str,
        original: &str,
    ) -> Option<Lease> {
        self.lock_entry(&gk.0, &gk.1, msg_id, original)
            .await
            .ok()
            .flatten()
    }

    /// Locks the live entry `handle` names, waiting for a holder up to
    /// `lockTimeoutMsInHandleGroup`: `Ok(None)` if there is none, `Err(())` if the lock
    /// could not be had in time.
    pub async fn lock_entry(
        &self,
        client: &str,
        group: &str,
        msg_id: &str,
        handle: &str,
    ) -> Result<Option<Lease>, ()> {
        let Some(key) = self.key(msg_id, handle) else {
            return Ok(None);
        };
        let Some(d) = self.entry(client, group, &key) else {
            return Ok(None);
        };
        let guard = lock(&d).await.ok_or(())?;
        let Some(h) = d.data.lock().expect("handle lock").clone() else {
            return Ok(None);
        };
        Ok(Some(Lease {
            handles: self.clone(),
            gk: (client.to_owned(), group.to_owned()),
            key,
            data: d,
            _guard: guard,
            handle: h,
        }))
    }
}

/// `HandleData.lock` with `lockTimeoutMsInHandleGroup`.
async fn lock(d: &Arc<HandleData>) -> Option<OwnedMutexGuard<()>> {
    let wait = Duration::from_millis(LOCK_TIMEOUT_MS_IN_HANDLE_GROUP);
    madsim::time::timeout(wait, d.lock.clone().lock_owned())
        .await
        .ok()
}

/// A locked entry: a renewal in flight, which ends with [`Lease::update`] or
/// [`Lease::remove`], or (the proposed fix `call-holds-handle-entry`) a client's ack, nack
/// or forward in flight, which removes it on success and leaves it, unlocked, otherwise.
pub struct Lease {
    handles: ReceiptHandles,
    gk: GroupKey,
    key: HandleKey,
    data: Arc<HandleData>,
    _guard: OwnedMutexGuard<()>,
    pub handle: MessageReceiptHandle,
}

impl Lease {
    /// The renewal's result replaces the entry's data.
    pub fn update(self, h: MessageReceiptHandle) {
        let mut data = self.data.data.lock().expect("handle lock");
        if data.is_some() {
            *data = Some(h);
        }
    }

    /// `needRemove`: the entry goes.
    pub fn remove(self) {
        self.data.data.lock().expect("handle lock").take();
        self.handles
            .drop_entry(&self.gk.0, &self.gk.1, &self.key, &self.data);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use madsim::runtime::Runtime;

    /// A handle of message `m`'s copy at queue 0, offset 5, popped at `pop_time`.
    fn handle(pop_time: Millis) -> MessageReceiptHandle {
        let h = format!("5 {pop_time} 60000 0 0 broker-a 0 5 0");
        MessageReceiptHandle {
            group: "g".into(),
            topic: "t".into(),
            msg_id: "m".into(),
            original: h.clone(),
            current: h,
            reconsume_times: 0,
            consume_timestamp: pop_time,
            renew_times: 0,
            renew_retry_times: 0,
        }
    }

    /// The entry's current handle after a renewal of the first copy, in flight for
    /// `renewal_ms`, meets a put of a second copy at the same queue and offset.
    fn put_during_renewal(renewal_ms: u64) -> (Result<(), ()>, String) {
        let rt = Runtime::new();
        let node = rt.create_node().build();
        let done = node.spawn(async move {
            let handles = ReceiptHandles::default();
            let (first, second) = (handle(1_000), handle(2_000));
            handles.add("c", first.clone()).await.expect("a new entry");
            let gk = ("c".to_owned(), "g".to_owned());
            let lease = (handles.lock_for_renew(&gk, "m", &first.original).await)
                .expect("the entry is there");
            let put = {
                let handles = handles.clone();
                madsim::task::spawn(async move { handles.add("c", second).await })
            };
            madsim::time::sleep(Duration::from_millis(renewal_ms)).await;
            let renewed = MessageReceiptHandle {
                current: "5 3000 60000 0 0 broker-a 0 5 0".into(),
                ..first
            };
            lease.update(renewed);
            let added = put.await.expect("the put ran");
            let current = handles.scan().remove(0).1.current;
            (added, current)
        });
        rt.block_on(done).expect("test task ran")
    }

    #[test]
    fn a_put_waits_for_a_renewal_in_flight_and_its_handle_wins() {
        // `ReceiptHandleGroup.put` locks the entry: the renewal's result lands first, and
        // the newer copy's handle replaces it (a put that did not wait was overwritten by
        // the older copy's renewed handle).
        let (added, current) = put_during_renewal(100);
        assert_eq!(added, Ok(()));
        assert_eq!(current, handle(2_000).current);
    }

    #[test]
    fn a_put_that_cannot_lock_the_entry_in_time_fails() {
        // Past `lockTimeoutMsInHandleGroup` the put throws (the receive answers
        // INTERNAL_SERVER_ERROR) and the renewal's result stays.
        let (added, current) = put_during_renewal(LOCK_TIMEOUT_MS_IN_HANDLE_GROUP + 100);
        assert_eq!(added, Err(()));
        assert_eq!(current, "5 3000 60000 0 0 broker-a 0 5 0");
    }

    /// A first copy renewed, a second copy of the same queue and offset put, then the first
    /// copy's handle removed: (what the removal returned, the handles left).
    fn remove_first_after_second(per_delivery: bool) -> (Option<String>, Vec<String>) {
        let rt = Runtime::new();
        let node = rt.create_node().build();
        let done = node.spawn(async move {
            let handles = ReceiptHandles::new(per_delivery);
            let (first, second) = (handle(1_000), handle(2_000));
            handles.add("c", first.clone()).await.expect("a new entry");
            let gk = ("c".to_owned(), "g".to_owned());
            let lease = (handles.lock_for_renew(&gk, "m", &first.original).await)
                .expect("the entry is there");
            lease.update(MessageReceiptHandle {
                current: "5 1500 60000 0 0 broker-a 0 5 0".into(),
                ..first.clone()
            });
            handles.add("c", second).await.expect("the put");
            let removed =
                (handles.remove("c", "g", "m", &first.original).await).expect("no lock held");
            let left = handles.scan().into_iter().map(|(_, h)| h.current).collect();
            (removed.map(|h| h.current), left)
        });
        rt.block_on(done).expect("test task ran")
    }

    #[test]
    fn a_second_delivery_replaces_the_first_unless_keys_are_per_delivery() {
        // Develop (finding F30): one `HandleKey` for both copies; the put replaced the
        // renewed handle, and the first copy's removal takes the second copy's handle.
        let (removed, left) = remove_first_after_second(false);
        assert_eq!(removed, Some(handle(2_000).current));
        assert!(left.is_empty(), "{left:?}");
        // `handle-key-per-delivery`: the first copy's removal takes its renewed handle, and
        // the second copy's entry stays.
        let (removed, left) = remove_first_after_second(true);
        assert_eq!(removed.as_deref(), Some("5 1500 60000 0 0 broker-a 0 5 0"));
        assert_eq!(left, vec![handle(2_000).current]);
    }

    #[test]
    fn orderly_handles_keep_one_entry_per_offset_with_keys_per_delivery() {
        // The reentrant orderly dedup (#6755) stays: a FIFO re-pop's handle (revive queue
        // 999) replaces the batch's.
        let handles = ReceiptHandles::new(true);
        let fifo = |pop_time: u64| format!("5 {pop_time} 60000 999 0 broker-a 0 5 0");
        assert!(handles.same_entry("m", &fifo(1_000), &fifo(2_000)));
        assert!(!handles.same_entry("m", &handle(1_000).original, &handle(2_000).original));
        assert!(ReceiptHandles::new(false).same_entry(
            "m",
            &handle(1_000).original,
            &handle(2_000).original
        ));
    }
}
