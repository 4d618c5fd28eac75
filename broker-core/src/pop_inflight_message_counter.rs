//! `PopInflightMessageCounter` (`broker/.../processor/PopInflightMessageCounter.java`): per
//! topic@group and queue, the messages the classic path has handed out and not yet seen
//! acked or revived. Read only by `PopMessageProcessor.isPopShouldStop` (with
//! `enablePopMessageThreshold`); the KV path never uses it. In memory only.
//!
//! - +n after a pop's read of n messages whose CK was accepted, or whose OrderInfo was
//!   updated (`popMsgFromQueue`), under the topic read (a retry topic counts apart);
//! - −n for every non-orderly ack that reaches `appendAck`'s tail (merged in the buffer, or
//!   put to the revive log, **even when the put failed**); −1 per orderly ack that passes
//!   `commitAndNext` (not on its early returns); −1 per message `reviveRetry` put;
//! - a decrement for a popTime before the process started (`shouldStartTime`, with
//!   `disappearTimeAfterStart` −1) is ignored; a count that reaches 0 or less is removed;
//! - cleared per queue by an orderly pop that is not blocked, and by an admin reset.

use crate::config::Millis;
use crate::keys::{offset_key, with_offset_key};
use std::collections::BTreeMap;

/// The counters: `topic@group` → queue → count (entries ≤ 0 are removed).
#[derive(Clone, Debug, Default)]
pub struct PopInflightMessageCounter {
    table: BTreeMap<String, BTreeMap<u32, i64>>,
    /// `BrokerController.shouldStartTime`: the start time plus `disappearTimeAfterStart` (−1).
    should_start_time: i64,
}

impl PopInflightMessageCounter {
    /// A process started at `now`: nothing counted yet.
    pub fn start(&mut self, now: Millis) {
        self.table.clear();
        self.should_start_time = now as i64 - 1;
    }

    /// `incrementInFlightMessageNum`.
    pub fn increment(&mut self, topic: &str, group: &str, queue_id: u32, num: u64) {
        if num == 0 {
            return;
        }
        let qs = self.table.entry(offset_key(topic, group)).or_default();
        let c = qs.entry(queue_id).or_default();
        *c += num as i64;
        if *c <= 0 {
            qs.remove(&queue_id);
        }
    }

    /// `decrementInFlightMessageNum(topic, group, popTime, queueId, delta)`.
    pub fn decrement(
        &mut self,
        topic: &str,
        group: &str,
        pop_time: Millis,
        queue_id: u32,
        delta: u64,
    ) {
        if (pop_time as i64) < self.should_start_time {
            return;
        }
        let key = offset_key(topic, group);
        let Some(qs) = self.table.get_mut(&key) else {
            return;
        };
        if let Some(c) = qs.get_mut(&queue_id) {
            *c -= delta as i64;
            if *c <= 0 {
                qs.remove(&queue_id);
            }
        }
        if qs.is_empty() {
            self.table.remove(&key);
        }
    }

    /// `clearInFlightMessageNum`.
    pub fn clear(&mut self, topic: &str, group: &str, queue_id: u32) {
        let key = offset_key(topic, group);
        if let Some(qs) = self.table.get_mut(&key) {
            qs.remove(&queue_id);
            if qs.is_empty() {
                self.table.remove(&key);
            }
        }
    }

    /// `getGroupPopInFlightMessageNum`.
    pub fn get(&self, topic: &str, group: &str, queue_id: u32) -> u64 {
        with_offset_key(topic, group, |key| self.table.get(key))
            .and_then(|qs| qs.get(&queue_id))
            .map_or(0, |&c| c.max(0) as u64)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_in_flight_and_ignores_pops_before_the_start() {
        let mut c = PopInflightMessageCounter::default();
        c.start(0);
        c.increment("T", "G", 0, 3);
        c.decrement("T", "G", 5, 0, 1);
        assert_eq!(c.get("T", "G", 0), 2);
        c.decrement("T", "G", 5, 0, 5);
        assert_eq!(c.get("T", "G", 0), 0, "removed at ≤ 0");
        c.increment("T", "G", 0, 4);
        c.start(10_000);
        assert_eq!(c.get("T", "G", 0), 0, "a restart forgets everything");
        c.increment("T", "G", 0, 4);
        c.decrement("T", "G", 9_998, 0, 1);
        assert_eq!(
            c.get("T", "G", 0),
            4,
            "a popTime before the start is ignored"
        );
        c.decrement("T", "G", 9_999, 0, 1);
        assert_eq!(c.get("T", "G", 0), 3);
        c.clear("T", "G", 0);
        assert_eq!(c.get("T", "G", 0), 0);
    }
}
