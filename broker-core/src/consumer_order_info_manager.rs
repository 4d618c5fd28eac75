//! `ConsumerOrderInfoManager` (`broker/.../offset/ConsumerOrderInfoManager.java`): the
//! orderly-POP state per (topic@group, queue): the outstanding batch, which of it is acked,
//! per-offset delivery counts and changeInvisibleTime overrides. One un-acked, un-expired
//! message blocks the whole queue. Persisted to consumerOrderInfo.json on its own schedule
//! (`BrokerController.initializeResources`: every 10 s, the first 10 s after start, apart from
//! the offset table's `flushConsumerOffsetInterval`) and at a graceful shutdown
//! (`shutdownBasicService`); a crash restarts from the last image, up to 10 s stale: acks of
//! newer receipts then meet a stale popTime (`commitAndNext` −2, ignored), a missing OrderInfo
//! makes `commitAndNext` answer `offset + 1`, and delivery counts since the image are lost.
//! `encode()` runs `autoClean` first; every case it drops (idle for a day, deleted topic or
//! group, a queue id beyond the topic's read queues) is outside the model, so the image is the
//! table as it is.

use crate::config::Millis;
use crate::keys::{offset_key, with_offset_key};
use std::collections::BTreeMap;

/// Bound on a batch: upstream's `commitOffsetBit` is a `long`, and a pop returns ≤ 32.
const MAX_ORDER_BATCH: usize = 64;

/// `OrderInfo`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OrderInfo {
    pub pop_time: Millis,
    /// `i`.
    pub invisible_time: Millis,
    /// `o`: the batch's queue offsets, ascending (upstream stores first + diffs).
    pub offset_list: Vec<u64>,
    /// `ot`: per-offset next-visible overrides (changeInvisibleTime).
    pub offset_next_visible_time: BTreeMap<u64, Millis>,
    /// `oc`: per-offset delivery count, only entries > 0.
    pub offset_consumed_count: BTreeMap<u64, u32>,
    /// `l`.
    pub last_consume_timestamp: Millis,
    /// `cm`: bit i = entry i acked.
    pub commit_offset_bit: u64,
    /// `a`.
    pub attempt_id: Option<String>,
}

impl OrderInfo {
    fn is_not_ack(&self, i: usize) -> bool {
        self.commit_offset_bit & (1 << i) == 0
    }

    /// `needBlock`: not for an empty batch or the same attemptId (#6692); otherwise while any
    /// un-acked entry is still invisible (its override, else popTime + invisibleTime).
    pub fn need_block(&self, attempt_id: Option<&str>, now: Millis) -> bool {
        if self.offset_list.is_empty() {
            return false;
        }
        if self.attempt_id.is_some() && self.attempt_id.as_deref() == attempt_id {
            return false;
        }
        self.offset_list
            .iter()
            .enumerate()
            .any(|(i, offset)| self.is_not_ack(i) && now < self.next_visible_time(*offset))
    }

    /// When [`Self::need_block`] turns false by time alone: its last invisible un-acked
    /// entry becomes visible (`None` for an empty batch or one acked whole).
    fn unblocks_at(&self) -> Option<Millis> {
        (self.offset_list.iter().enumerate())
            .filter(|(i, _)| self.is_not_ack(*i))
            .map(|(_, &offset)| self.next_visible_time(offset))
            .max()
    }

    /// When one entry becomes visible again.
    pub fn next_visible_time(&self, offset: u64) -> Millis {
        self.offset_next_visible_time
            .get(&offset)
            .copied()
            .unwrap_or(self.pop_time + self.invisible_time)
    }

    /// `getNextOffset`: the first un-acked offset, or last + 1 when all are acked.
    pub fn get_next_offset(&self) -> i64 {
        match self
            .offset_list
            .iter()
            .enumerate()
            .find(|(i, _)| self.is_not_ack(*i))
        {
            Some((_, &o)) => o as i64,
            None => self.offset_list.last().map_or(-2, |&o| o as i64 + 1),
        }
    }

    /// `mergeOffsetConsumedCount`: an offset that was in the previous batch counts one more
    /// delivery, unless the attemptId is the same (a reentrant retry keeps the old counts).
    /// On develop a reentrant pop takes the previous map whole, with the counts of offsets
    /// that are not in its batch; `update` then takes the queue's count from them (finding
    /// F24). `batch_only` (the proposed fix `reentrant-pop-counts-only-its-batch`) keeps
    /// only the counts of the offsets this batch reads again.
    fn merge_offset_consumed_count(&mut self, prev: &OrderInfo, batch_only: bool) {
        if prev.attempt_id.is_some() && prev.attempt_id == self.attempt_id {
            self.offset_consumed_count = prev.offset_consumed_count.clone();
            if batch_only {
                let batch = &self.offset_list;
                self.offset_consumed_count.retain(|o, _| batch.contains(o));
            }
            return;
        }
        let mut counts = BTreeMap::new();
        for &o in &self.offset_list {
            if prev.offset_list.contains(&o) {
                counts.insert(
                    o,
                    prev.offset_consumed_count.get(&o).copied().unwrap_or(0) + 1,
                );
            }
        }
        self.offset_consumed_count = counts;
    }
}

/// What `update` appends to `orderCountInfo`: the per-offset counts and the queue minimum.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct OrderCountInfo {
    pub per_offset: BTreeMap<u64, u32>,
    pub queue_min: u32,
}

impl OrderCountInfo {
    /// The caller's rule, which becomes the message's reconsumeTimes: the remoting client's
    /// (`MQClientAPIImpl.processPopResponse`), the offset's count, else the queue's; or, with
    /// `by_queue`, the proxy in local mode's (`LocalMessageService.popMessage` 281, 292-297,
    /// never given #5367's per-offset lookup), the queue's count alone.
    pub fn reconsume_times(&self, offset: u64, by_queue: bool) -> u32 {
        if by_queue {
            return self.queue_min;
        }
        self.per_offset
            .get(&offset)
            .copied()
            .unwrap_or(self.queue_min)
    }
}

type Table = BTreeMap<String, BTreeMap<u32, OrderInfo>>;

/// The period of `consumerOrderInfoManager.persist()` (`BrokerController`: 10 s, not
/// configurable), also its initial delay.
pub const ORDER_INFO_PERSIST_INTERVAL: Millis = 10_000;

/// The table `topic@group` → queueId → OrderInfo, and its last persisted image.
#[derive(Clone, Debug, Default)]
pub struct ConsumerOrderInfoManager {
    /// The proposed fix `reentrant-pop-counts-only-its-batch`, read once when the broker is
    /// built ([`ConsumerOrderInfoManager::new`]) and used only by `mergeOffsetConsumedCount`.
    reentrant_counts_batch_only: bool,
    table: Table,
    /// What consumerOrderInfo.json holds.
    persisted: Table,
    /// The first change since the last persist (drives the next persist deadline).
    dirty_since: Option<Millis>,
}

impl ConsumerOrderInfoManager {
    /// An empty table; `reentrant_counts_batch_only` is the proposed fix's switch.
    pub fn new(reentrant_counts_batch_only: bool) -> Self {
        Self {
            reentrant_counts_batch_only,
            ..Self::default()
        }
    }

    fn mark_dirty(&mut self, now: Millis) {
        self.dirty_since.get_or_insert(now);
    }

    /// When the next periodic persist has something to write.
    pub fn dirty_since(&self) -> Option<Millis> {
        self.dirty_since
    }

    /// `ConfigManager.persist()`: consumerOrderInfo.json now holds the table.
    pub fn persist(&mut self) {
        self.persisted = self.table.clone();
        self.dirty_since = None;
    }

    /// A restart: `load()` reads back the last image.
    pub fn restore_from_persisted(&mut self) {
        self.table = self.persisted.clone();
        self.dirty_since = None;
    }

    pub fn get(&self, topic: &str, group: &str, queue_id: u32) -> Option<&OrderInfo> {
        with_offset_key(topic, group, |key| self.table.get(key))?.get(&queue_id)
    }

    /// `update` at pop: a new OrderInfo for the new batch (all un-acked), carrying over the
    /// delivery counts; returns the `orderCountInfo` the response carries.
    #[allow(clippy::too_many_arguments)]
    pub fn update(
        &mut self,
        attempt_id: Option<&str>,
        topic: &str,
        group: &str,
        queue_id: u32,
        pop_time: Millis,
        invisible_time: Millis,
        offsets: &[u64],
        now: Millis,
    ) -> OrderCountInfo {
        assert!(offsets.len() <= MAX_ORDER_BATCH, "orderly batch too large");
        assert!(
            offsets.windows(2).all(|w| w[0] < w[1]),
            "OrderInfo offsets not ascending"
        );
        let qs = self.table.entry(offset_key(topic, group)).or_default();
        let mut info = OrderInfo {
            pop_time,
            invisible_time,
            offset_list: offsets.to_vec(),
            offset_next_visible_time: BTreeMap::new(),
            offset_consumed_count: BTreeMap::new(),
            last_consume_timestamp: now,
            commit_offset_bit: 0,
            attempt_id: attempt_id.map(str::to_owned),
        };
        if let Some(prev) = qs.get(&queue_id) {
            info.merge_offset_consumed_count(prev, self.reentrant_counts_batch_only);
        }
        let mut count = OrderCountInfo {
            per_offset: info.offset_consumed_count.clone(),
            queue_min: 0,
        };
        if info.offset_consumed_count.len() == info.offset_list.len() {
            count.queue_min = info
                .offset_consumed_count
                .values()
                .copied()
                .min()
                .unwrap_or(0);
        }
        qs.insert(queue_id, info);
        self.mark_dirty(now);
        count
    }

    /// `checkBlock`.
    pub fn check_block(
        &self,
        attempt_id: Option<&str>,
        topic: &str,
        group: &str,
        queue_id: u32,
        now: Millis,
    ) -> bool {
        self.get(topic, group, queue_id)
            .is_some_and(|info| info.need_block(attempt_id, now))
    }

    /// The earliest time after `now` at which some queue's block lapses by time alone.
    pub fn next_unblock_after(&self, now: Millis) -> Option<Millis> {
        (self.table.values().flat_map(|qs| qs.values()))
            .filter_map(OrderInfo::unblocks_at)
            .filter(|&t| t > now)
            .min()
    }

    /// `clearBlock`: drop the queue's OrderInfo (on reset).
    pub fn clear_block(&mut self, now: Millis, topic: &str, group: &str, queue_id: u32) {
        if let Some(qs) = self.table.get_mut(&offset_key(topic, group)) {
            if qs.remove(&queue_id).is_some() {
                self.mark_dirty(now);
            }
        }
    }

    /// `commitAndNext`: mark an ack. Returns `queueOffset + 1` without an OrderInfo, −1 for
    /// an offset not in the batch, −2 for a stale popTime, else the next offset to commit.
    ///
    /// `in_order_at`: the proposed fix `ack-without-order-info-commits-in-order` (the
    /// caller reads it and passes the commit offset): without an OrderInfo, answer
    /// `queueOffset + 1` only for an ack of exactly that offset, else −2 (nothing to commit),
    /// so an ack of a later offset cannot commit past one the batch has not acked.
    #[allow(clippy::too_many_arguments)]
    pub fn commit_and_next(
        &mut self,
        topic: &str,
        group: &str,
        queue_id: u32,
        queue_offset: u64,
        pop_time: Millis,
        now: Millis,
        in_order_at: Option<i64>,
    ) -> i64 {
        let without_info = || match in_order_at {
            Some(commit) if queue_offset as i64 != commit => -2,
            _ => queue_offset as i64 + 1,
        };
        let Some(qs) = self.table.get_mut(&offset_key(topic, group)) else {
            return without_info();
        };
        let Some(info) = qs.get_mut(&queue_id) else {
            return without_info();
        };
        if info.offset_list.is_empty() {
            return -1;
        }
        if pop_time != info.pop_time {
            return -2;
        }
        let Some(i) = info.offset_list.iter().position(|&o| o == queue_offset) else {
            return -1;
        };
        info.commit_offset_bit |= 1 << i;
        info.last_consume_timestamp = now;
        let next = info.get_next_offset();
        self.mark_dirty(now);
        next
    }

    /// `updateNextVisibleTime` (orderly changeInvisibleTime); ignored for a stale popTime.
    #[allow(clippy::too_many_arguments)]
    pub fn update_next_visible_time(
        &mut self,
        now: Millis,
        topic: &str,
        group: &str,
        queue_id: u32,
        queue_offset: u64,
        pop_time: Millis,
        next_visible: Millis,
    ) {
        let Some(info) = self
            .table
            .get_mut(&offset_key(topic, group))
            .and_then(|qs| qs.get_mut(&queue_id))
        else {
            return;
        };
        if pop_time != info.pop_time {
            return;
        }
        info.offset_next_visible_time
            .insert(queue_offset, next_visible);
        self.mark_dirty(now);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_block_lapses_when_its_last_unacked_entry_is_visible_again() {
        let mut m = ConsumerOrderInfoManager::default();
        assert_eq!(m.next_unblock_after(0), None);
        m.update(None, "T", "G", 0, 1_000, 10_000, &[5, 6], 1_000);
        m.update(None, "T", "G", 1, 2_000, 30_000, &[9], 2_000);
        assert_eq!(m.next_unblock_after(2_000), Some(11_000));
        assert_eq!(
            m.next_unblock_after(11_000),
            Some(32_000),
            "only later ends count"
        );
        assert!(m.check_block(None, "T", "G", 0, 10_999));
        assert!(!m.check_block(None, "T", "G", 0, 11_000));
        assert_eq!(m.next_unblock_after(32_000), None);
    }

    #[test]
    #[should_panic(expected = "OrderInfo offsets not ascending")]
    fn an_orderly_batch_out_of_order_is_refused() {
        let mut m = ConsumerOrderInfoManager::default();
        m.update(None, "T", "G", 0, 1_000, 10_000, &[6, 5], 1_000);
    }

    #[test]
    fn block_until_acked_or_expired() {
        let mut m = ConsumerOrderInfoManager::default();
        assert!(!m.check_block(None, "T", "G", 0, 0));
        let c = m.update(Some("a1"), "T", "G", 0, 1_000, 10_000, &[5, 6, 7], 1_000);
        assert_eq!(c.queue_min, 0);
        assert!(m.check_block(Some("a2"), "T", "G", 0, 2_000));
        assert!(
            !m.check_block(Some("a1"), "T", "G", 0, 2_000),
            "same attemptId is reentrant"
        );
        assert!(!m.check_block(None, "T", "G", 0, 11_000), "expired");
        assert_eq!(m.commit_and_next("T", "G", 0, 6, 1_000, 0, None), 5);
        assert_eq!(m.commit_and_next("T", "G", 0, 5, 1_000, 0, None), 7);
        assert_eq!(
            m.commit_and_next("T", "G", 0, 7, 999, 0, None),
            -2,
            "stale popTime"
        );
        assert_eq!(
            m.commit_and_next("T", "G", 0, 9, 1_000, 0, None),
            -1,
            "not in batch"
        );
        assert_eq!(m.commit_and_next("T", "G", 0, 7, 1_000, 0, None), 8);
        assert!(!m.check_block(None, "T", "G", 0, 2_000), "all acked");
        assert_eq!(
            m.commit_and_next("T", "G", 1, 3, 1_000, 0, None),
            4,
            "no OrderInfo"
        );
    }

    #[test]
    fn consumed_counts_grow_on_redelivery() {
        let mut m = ConsumerOrderInfoManager::default();
        m.update(None, "T", "G", 0, 0, 10, &[0, 1], 0);
        let c = m.update(None, "T", "G", 0, 20, 10, &[0, 1, 2], 20);
        assert_eq!(c.reconsume_times(0, false), 1);
        assert_eq!(c.reconsume_times(2, false), 0);
        let c = m.update(None, "T", "G", 0, 40, 10, &[0, 1, 2], 40);
        assert_eq!(c.reconsume_times(0, false), 2);
        assert_eq!(c.reconsume_times(2, false), 1);
        // Local mode's proxy reads the queue's count alone: the batch's minimum.
        assert_eq!(
            (c.reconsume_times(0, true), c.reconsume_times(0, false)),
            (1, 2)
        );
        assert_eq!(c.queue_min, 1);
        let c = m.update(Some("x"), "T", "G", 0, 60, 10, &[0, 1, 2], 60);
        assert_eq!(c.reconsume_times(0, false), 3);
        let c = m.update(Some("x"), "T", "G", 0, 70, 10, &[0, 1, 2], 70);
        assert_eq!(
            c.reconsume_times(0, false),
            3,
            "same attempt keeps the counts"
        );
    }

    /// A pop that reuses its attemptId after its batch was acked reads a new batch as a
    /// reentrant retry: on develop it inherits the old batch's counts, and with as many of
    /// them as it has offsets the queue's count (what a message without its own count gets)
    /// is their minimum, so a message never delivered gets reconsumeTimes 1 (F24). The fix
    /// keeps only the counts of the offsets read again.
    #[test]
    fn a_reentrant_pop_of_a_new_batch_inherits_the_old_counts_on_develop_only() {
        for (fix, expect) in [(false, 1), (true, 0)] {
            let mut m = ConsumerOrderInfoManager::new(fix);
            m.update(Some("a1"), "T", "G", 0, 0, 60_000, &[2], 0);
            let c = m.update(Some("a2"), "T", "G", 0, 10, 60_000, &[2], 10);
            assert_eq!(c.reconsume_times(2, false), 1, "a redelivery counts");
            assert_eq!(m.commit_and_next("T", "G", 0, 2, 10, 20, None), 3);
            let c = m.update(Some("a2"), "T", "G", 0, 100, 60_000, &[3], 100);
            assert_eq!(c.reconsume_times(3, false), expect, "fix {fix}");
            // A reentrant retry of the same batch keeps its counts either way.
            let c = m.update(Some("a2"), "T", "G", 0, 110, 60_000, &[3], 110);
            assert_eq!(c.reconsume_times(3, false), expect, "fix {fix}");
        }
        let mut m = ConsumerOrderInfoManager::new(true);
        m.update(Some("a1"), "T", "G", 0, 0, 60_000, &[2, 3], 0);
        let c = m.update(Some("a2"), "T", "G", 0, 10, 60_000, &[2, 3], 10);
        assert_eq!(c.queue_min, 1);
        let c = m.update(Some("a2"), "T", "G", 0, 20, 60_000, &[2, 3], 20);
        assert_eq!(
            (c.reconsume_times(2, false), c.queue_min),
            (1, 1),
            "same batch kept"
        );
    }

    #[test]
    fn next_visible_override_and_clear_block() {
        let mut m = ConsumerOrderInfoManager::default();
        m.update(None, "T", "G", 0, 0, 10_000, &[0, 1], 0);
        m.update_next_visible_time(0, "T", "G", 0, 1, 0, 30_000);
        assert!(m.check_block(None, "T", "G", 0, 20_000));
        m.update_next_visible_time(0, "T", "G", 0, 1, 5, 90_000);
        assert_eq!(
            m.get("T", "G", 0).unwrap().next_visible_time(1),
            30_000,
            "stale popTime ignored"
        );
        m.clear_block(0, "T", "G", 0);
        assert!(!m.check_block(None, "T", "G", 0, 20_000));
    }

    #[test]
    fn a_restart_reads_back_the_last_image() {
        let mut m = ConsumerOrderInfoManager::default();
        assert_eq!(m.dirty_since(), None);
        m.update(None, "T", "G", 0, 1_000, 60_000, &[5, 6], 1_000);
        assert_eq!(m.dirty_since(), Some(1_000));
        m.persist();
        assert_eq!(m.dirty_since(), None);
        // A newer batch and an ack after the image: both lost in a crash.
        m.update(None, "T", "G", 0, 2_000, 60_000, &[5, 6, 7], 2_000);
        assert_eq!(m.commit_and_next("T", "G", 0, 5, 2_000, 2_100, None), 6);
        m.update(None, "T", "G", 1, 2_000, 60_000, &[0], 2_000);
        m.restore_from_persisted();
        // The newer receipt's ack meets the stale popTime: −2, ignored.
        assert_eq!(m.commit_and_next("T", "G", 0, 6, 2_000, 3_000, None), -2);
        // No OrderInfo for queue 1 any more: offset + 1.
        assert_eq!(m.commit_and_next("T", "G", 1, 0, 2_000, 3_000, None), 1);
        assert_eq!(m.get("T", "G", 0).unwrap().offset_list, vec![5, 6]);
    }

    #[test]
    fn without_order_info_the_in_order_fix_commits_only_the_commit_offset() {
        let mut m = ConsumerOrderInfoManager::default();
        // develop: an ack past an un-acked offset commits past it.
        assert_eq!(m.commit_and_next("T", "G", 0, 5, 1_000, 2_000, None), 6);
        // The fix: only an ack of the commit offset moves it.
        assert_eq!(m.commit_and_next("T", "G", 0, 5, 1_000, 2_000, Some(4)), -2);
        assert_eq!(m.commit_and_next("T", "G", 0, 4, 1_000, 2_000, Some(4)), 5);
        // With an OrderInfo the fix changes nothing.
        m.update(None, "T", "G", 0, 1_000, 60_000, &[4, 5, 6], 1_000);
        assert_eq!(m.commit_and_next("T", "G", 0, 5, 1_000, 2_000, Some(4)), 4);
        assert_eq!(m.commit_and_next("T", "G", 0, 4, 1_000, 2_000, Some(4)), 6);
    }
}
