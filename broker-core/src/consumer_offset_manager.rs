//! `ConsumerOffsetManager` (`broker/.../offset/ConsumerOffsetManager.java`): the commit
//! offsets (`offsetTable`, persisted to consumerOffset.json every
//! `flushConsumerOffsetInterval`), the broker-side read cursors (`pullOffsetTable`, memory
//! only) and pending server-side resets (`resetOffsetTable`, memory only; persisted with
//! offsetTable under the proposed fix `reset-table-survives-restart`). Keys are
//! `topic@group`; values map queueId → offset.

use crate::config::Millis;
use crate::events::BrokerEvent;
use crate::keys::{offset_key, with_offset_key};
use std::collections::BTreeMap;

/// `topic@group` → queueId → offset.
pub type OffsetTable = BTreeMap<String, BTreeMap<u32, i64>>;

/// `ConsumerOffsetManager.consumerOffsetUpdateVersionStep`.
const UPDATE_VERSION_STEP: u64 = 500;

/// The three offset tables plus the last persisted image of `offsetTable`.
#[derive(Clone, Debug, Default)]
pub struct ConsumerOffsetManager {
    offset_table: OffsetTable,
    pull_offset_table: OffsetTable,
    reset_offset_table: OffsetTable,
    /// What consumerOffset.json holds: the image as of the last `persist()`.
    persisted: OffsetTable,
    /// resetOffsetTable as of the last `persist()`. Upstream never writes it (the field has
    /// no getter, `decode` restores offsetTable only); only the proposed fix
    /// `reset-table-survives-restart` restores it (see [`Self::restore_from_persisted`]).
    persisted_reset: OffsetTable,
    /// The first commit since the last persist (drives the next flush deadline).
    dirty_since: Option<Millis>,
    /// `dataVersion`, bumped every 500 commits.
    data_version: u64,
    commits: u64,
    use_server_side_reset_offset: bool,
    /// The proposed fix `init-offset-persists-at-once` (set by the broker from its switches,
    /// read only in [`Self::put_offset`]): a group's first offset of a queue is persisted
    /// as soon as offsetTable has it.
    pub first_offset_persists: bool,
    /// The lowest offset offsetTable may hold: 0, or −1 where the historical behaviour
    /// `kv-no-init-offset` commits the −1 it read at (before #9247). Asserted at the one
    /// place offsetTable is written ([`Self::put_offset`]).
    pub lowest_offset: i64,
}

fn get(table: &OffsetTable, key: &str, queue_id: u32) -> Option<i64> {
    table.get(key)?.get(&queue_id).copied()
}

impl ConsumerOffsetManager {
    pub fn new(use_server_side_reset_offset: bool) -> Self {
        Self {
            use_server_side_reset_offset,
            ..Self::default()
        }
    }

    /// `commitOffset(clientHost, group, topic, queueId, offset)`: unconditional, not monotonic
    /// (upstream only logs a warning when the value goes down).
    #[allow(clippy::too_many_arguments)]
    pub fn commit_offset(
        &mut self,
        ev: &mut Vec<BrokerEvent>,
        now: Millis,
        reason: &str,
        group: &str,
        topic: &str,
        queue_id: u32,
        offset: i64,
    ) {
        // −1 only from the KV path before #9247 (`kv-no-init-offset`), which commits the −1 it
        // read at.
        debug_assert!(offset >= -1, "commitOffset with a negative offset {offset}");
        let first = self.put_offset(offset_key(topic, group), queue_id, offset);
        self.mark_dirty(now);
        self.commits += 1;
        if self.commits % UPDATE_VERSION_STEP == 0 {
            self.data_version += 1;
        }
        ev.push(BrokerEvent::OffsetCommitted {
            at: now,
            group: group.into(),
            topic: topic.into(),
            queue_id,
            offset,
            reason: reason.into(),
        });
        if first {
            self.persist(ev, now);
        }
    }

    /// Writes a queue's offset into offsetTable (`commitOffset`, `assignResetOffset`). True
    /// when this is the group's first offset of the queue and the proposed fix
    /// `init-offset-persists-at-once` asks for it to be persisted at once: develop keeps it
    /// in memory until the next scheduled persist, and a crash before that makes the group
    /// new again (finding F20).
    fn put_offset(&mut self, key: String, queue_id: u32, offset: i64) -> bool {
        assert!(
            offset >= self.lowest_offset,
            "negative commit offset {key}:{queue_id}"
        );
        let first = self
            .offset_table
            .entry(key)
            .or_default()
            .insert(queue_id, offset)
            .is_none();
        first && self.first_offset_persists
    }

    fn mark_dirty(&mut self, now: Millis) {
        if self.dirty_since.is_none() {
            self.dirty_since = Some(now);
        }
    }

    /// `queryOffset(group, topic, q)`: a pending reset first (when
    /// `useServerSideResetOffset`), then offsetTable, else −1.
    pub fn query_offset(&self, group: &str, topic: &str, queue_id: u32) -> i64 {
        with_offset_key(topic, group, |key| {
            if self.use_server_side_reset_offset {
                if let Some(reset) = get(&self.reset_offset_table, key, queue_id) {
                    return reset;
                }
            }
            get(&self.offset_table, key, queue_id).unwrap_or(-1)
        })
    }

    /// The offset a restart would read back for a queue (−1 = none): the persisted image.
    pub fn query_persisted_offset(&self, group: &str, topic: &str, queue_id: u32) -> i64 {
        with_offset_key(topic, group, |key| get(&self.persisted, key, queue_id)).unwrap_or(-1)
    }

    /// `commitPullOffset`.
    #[allow(clippy::too_many_arguments)]
    pub fn commit_pull_offset(
        &mut self,
        ev: &mut Vec<BrokerEvent>,
        now: Millis,
        reason: &str,
        group: &str,
        topic: &str,
        queue_id: u32,
        offset: i64,
    ) {
        self.pull_offset_table
            .entry(offset_key(topic, group))
            .or_default()
            .insert(queue_id, offset);
        ev.push(BrokerEvent::PullOffsetCommitted {
            at: now,
            group: group.into(),
            topic: topic.into(),
            queue_id,
            offset,
            reason: reason.into(),
        });
    }

    /// The pull cursor alone, if there is one.
    pub fn pull_offset(&self, group: &str, topic: &str, queue_id: u32) -> Option<i64> {
        with_offset_key(topic, group, |key| {
            get(&self.pull_offset_table, key, queue_id)
        })
    }

    /// `queryPullOffset`: the pull cursor, else `queryOffset` (pending reset, then commit).
    pub fn query_pull_offset(&self, group: &str, topic: &str, queue_id: u32) -> i64 {
        match self.pull_offset(group, topic, queue_id) {
            Some(offset) => offset,
            None => self.query_offset(group, topic, queue_id),
        }
    }

    /// `clearPullOffset(group, topic)` (#9370): drops the whole `topic@group` entry, i.e.
    /// every queue's cursor (`queue_id` `None`). `Some(q)` drops queue `q`'s cursor only
    /// (the proposed fix `clear-pull-offset-of-reset-queues`).
    pub fn clear_pull_offset(
        &mut self,
        ev: &mut Vec<BrokerEvent>,
        now: Millis,
        group: &str,
        topic: &str,
        queue_id: Option<u32>,
    ) {
        let key = offset_key(topic, group);
        match queue_id {
            None => {
                self.pull_offset_table.remove(&key);
            }
            Some(q) => {
                if let Some(queues) = self.pull_offset_table.get_mut(&key) {
                    queues.remove(&q);
                }
            }
        }
        ev.push(BrokerEvent::PullOffsetCleared {
            at: now,
            group: group.into(),
            topic: topic.into(),
            queue_id,
        });
    }

    /// `assignResetOffset(topic, group, q, offset)`. The reset entry is always written; the
    /// offsetTable write is `computeIfAbsent` since #9150, and before it only happened when a
    /// map already existed for the key (`needs_existing_key`, the one place behaviour
    /// `reset-needs-existing-offset-key` is read). Returns whether offsetTable was written.
    #[allow(clippy::too_many_arguments)]
    pub fn assign_reset_offset(
        &mut self,
        ev: &mut Vec<BrokerEvent>,
        now: Millis,
        topic: &str,
        group: &str,
        queue_id: u32,
        offset: i64,
        needs_existing_key: bool,
    ) -> bool {
        if topic.is_empty() || group.is_empty() || offset < 0 {
            return false;
        }
        let key = offset_key(topic, group);
        self.reset_offset_table
            .entry(key.clone())
            .or_default()
            .insert(queue_id, offset);
        let (wrote, first) = if needs_existing_key && !self.offset_table.contains_key(&key) {
            (false, false)
        } else {
            (true, self.put_offset(key, queue_id, offset))
        };
        if wrote {
            self.mark_dirty(now);
        }
        ev.push(BrokerEvent::ResetAssigned {
            at: now,
            group: group.into(),
            topic: topic.into(),
            queue_id,
            offset,
            wrote_offset_table: wrote,
        });
        if first {
            self.persist(ev, now);
        }
        wrote
    }

    /// `hasOffsetReset`.
    pub fn has_offset_reset(&self, topic: &str, group: &str, queue_id: u32) -> bool {
        get(
            &self.reset_offset_table,
            &offset_key(topic, group),
            queue_id,
        )
        .is_some()
    }

    /// `queryThenEraseResetOffset`: removes and returns the pending reset. Like upstream it
    /// leaves an empty inner map behind.
    pub fn query_then_erase_reset_offset(
        &mut self,
        topic: &str,
        group: &str,
        queue_id: u32,
    ) -> Option<i64> {
        let table = &mut self.reset_offset_table;
        with_offset_key(topic, group, move |key| table.get_mut(key))?.remove(&queue_id)
    }

    /// When the next periodic `persist()` has something to write.
    pub fn dirty_since(&self) -> Option<Millis> {
        self.dirty_since
    }

    /// `ConfigManager.persist()`: consumerOffset.json now holds the current offsetTable.
    pub fn persist(&mut self, ev: &mut Vec<BrokerEvent>, now: Millis) {
        self.persisted = self.offset_table.clone();
        self.persisted_reset = self.reset_offset_table.clone();
        self.dirty_since = None;
        ev.push(BrokerEvent::OffsetsPersisted { at: now });
    }

    /// A restart: `decode` restores offsetTable from the persisted image only; the pull and
    /// reset tables were never persisted. With `keep_reset` (the proposed fix
    /// `reset-table-survives-restart`, read by the caller) the pending resets persisted with
    /// offsetTable are restored too.
    pub fn restore_from_persisted(&mut self, keep_reset: bool) {
        self.offset_table = self.persisted.clone();
        self.pull_offset_table.clear();
        self.reset_offset_table = if keep_reset {
            self.persisted_reset.clone()
        } else {
            OffsetTable::new()
        };
        self.dirty_since = None;
    }

    pub fn offset_table(&self) -> &OffsetTable {
        &self.offset_table
    }

    pub fn persisted_offset_table(&self) -> &OffsetTable {
        &self.persisted
    }

    pub fn pull_offset_table(&self) -> &OffsetTable {
        &self.pull_offset_table
    }

    pub fn reset_offset_table(&self) -> &OffsetTable {
        &self.reset_offset_table
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn com() -> (ConsumerOffsetManager, Vec<BrokerEvent>) {
        (ConsumerOffsetManager::new(true), Vec::new())
    }

    #[test]
    #[should_panic(expected = "negative commit offset")]
    fn a_commit_below_the_lowest_offset_is_refused() {
        let (mut m, mut ev) = com();
        m.commit_offset(&mut ev, 0, "t", "G", "T", 0, -1);
    }

    #[test]
    fn the_kv_path_before_9247_may_commit_minus_one() {
        let (mut m, mut ev) = com();
        m.lowest_offset = -1;
        m.commit_offset(&mut ev, 0, "t", "G", "T", 0, -1);
        assert_eq!(m.query_offset("G", "T", 0), -1);
    }

    #[test]
    fn commit_is_not_monotonic() {
        let (mut m, mut ev) = com();
        m.commit_offset(&mut ev, 0, "t", "G", "T", 0, 10);
        m.commit_offset(&mut ev, 1, "t", "G", "T", 0, 3);
        assert_eq!(m.query_offset("G", "T", 0), 3);
        assert_eq!(m.query_offset("G", "T", 1), -1);
        assert_eq!(ev.len(), 2);
    }

    #[test]
    fn query_order_reset_then_commit() {
        let (mut m, mut ev) = com();
        m.commit_offset(&mut ev, 0, "t", "G", "T", 0, 10);
        m.assign_reset_offset(&mut ev, 0, "T", "G", 0, 4, false);
        assert_eq!(m.query_offset("G", "T", 0), 4);
        assert!(m.has_offset_reset("T", "G", 0));
        assert_eq!(m.query_then_erase_reset_offset("T", "G", 0), Some(4));
        assert!(!m.has_offset_reset("T", "G", 0));
        // assignResetOffset also wrote offsetTable.
        assert_eq!(m.query_offset("G", "T", 0), 4);
        assert_eq!(
            m.reset_offset_table().get("T@G").map(BTreeMap::len),
            Some(0)
        );
    }

    #[test]
    fn reset_ignored_without_server_side_reset() {
        let mut m = ConsumerOffsetManager::new(false);
        let mut ev = Vec::new();
        m.commit_offset(&mut ev, 0, "t", "G", "T", 0, 10);
        m.assign_reset_offset(&mut ev, 0, "T", "G", 0, 4, true);
        // queryOffset skips the reset table, but assignResetOffset wrote offsetTable.
        assert_eq!(m.query_offset("G", "T", 0), 4);
    }

    #[test]
    fn pull_offset_falls_back_to_reset_then_commit() {
        let (mut m, mut ev) = com();
        assert_eq!(m.query_pull_offset("G", "T", 0), -1);
        m.commit_offset(&mut ev, 0, "t", "G", "T", 0, 7);
        assert_eq!(m.query_pull_offset("G", "T", 0), 7);
        m.commit_pull_offset(&mut ev, 0, "p", "G", "T", 0, 100);
        m.commit_pull_offset(&mut ev, 0, "p", "G", "T", 1, 50);
        assert_eq!(m.query_pull_offset("G", "T", 0), 100);
        m.clear_pull_offset(&mut ev, 0, "G", "T", Some(0));
        assert_eq!(m.query_pull_offset("G", "T", 0), 7);
        assert_eq!(
            m.query_pull_offset("G", "T", 1),
            50,
            "the proposed fix keeps the other queues' cursors"
        );
        m.clear_pull_offset(&mut ev, 0, "G", "T", None);
        assert_eq!(
            m.query_pull_offset("G", "T", 1),
            -1,
            "clearPullOffset drops every queue"
        );
    }

    #[test]
    fn assign_reset_with_and_without_change_e() {
        let (mut m, mut ev) = com();
        assert!(!m.assign_reset_offset(&mut ev, 0, "T", "G", 0, 5, true));
        assert_eq!(m.offset_table().get("T@G"), None);
        assert!(m.assign_reset_offset(&mut ev, 0, "T", "G2", 0, 5, false));
        assert_eq!(m.offset_table()["T@G2"][&0], 5);
        m.commit_offset(&mut ev, 0, "t", "G", "T", 1, 1);
        assert!(
            m.assign_reset_offset(&mut ev, 0, "T", "G", 0, 5, true),
            "key exists now"
        );
        assert!(
            !m.assign_reset_offset(&mut ev, 0, "T", "G", 0, -1, false),
            "negative ignored"
        );
        assert!(
            !m.assign_reset_offset(&mut ev, 0, "", "G", 0, 1, false),
            "blank ignored"
        );
    }

    #[test]
    fn restart_keeps_only_the_persisted_image() {
        let (mut m, mut ev) = com();
        m.commit_offset(&mut ev, 0, "t", "G", "T", 0, 1);
        assert_eq!(m.dirty_since(), Some(0));
        m.persist(&mut ev, 5_000);
        assert_eq!(m.dirty_since(), None);
        m.commit_offset(&mut ev, 6_000, "t", "G", "T", 0, 2);
        m.commit_pull_offset(&mut ev, 0, "p", "G", "T", 0, 9);
        m.assign_reset_offset(&mut ev, 0, "T", "G", 1, 0, false);
        m.restore_from_persisted(false);
        assert_eq!(m.query_offset("G", "T", 0), 1);
        assert_eq!(m.query_pull_offset("G", "T", 0), 1);
        assert!(!m.has_offset_reset("T", "G", 1));
    }

    #[test]
    fn a_persisted_reset_survives_a_restart_only_when_kept() {
        for keep in [false, true] {
            let (mut m, mut ev) = com();
            m.assign_reset_offset(&mut ev, 0, "T", "G", 0, 4, false);
            m.persist(&mut ev, 5_000);
            m.assign_reset_offset(&mut ev, 6_000, "T", "G", 1, 7, false);
            m.restore_from_persisted(keep);
            assert_eq!(m.query_offset("G", "T", 0), 4, "offsetTable was persisted");
            assert_eq!(m.has_offset_reset("T", "G", 0), keep, "keep = {keep}");
            assert!(
                !m.has_offset_reset("T", "G", 1),
                "assigned after the persist"
            );
        }
    }
}
