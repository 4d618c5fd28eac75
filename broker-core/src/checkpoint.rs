//! The records of the revive log: `PopCheckPoint` (`store/.../pop/PopCheckPoint.java`),
//! `AckMsg` and `BatchAckMsg` (`AckMsg.java`, `BatchAckMsg.java`). Upstream serialises them
//! as JSON bodies tagged `ck`, `ack` and `bAck`; the model keeps them typed.

use crate::config::Millis;
use crate::events::CkRef;
use crate::name::Name;

/// Upstream caps a pop at 32 messages, so a CK's `bitMap` fits an `int`.
pub const MAX_CK_NUM: usize = 32;

/// `PopCheckPoint`: one pop's messages from one queue, with their ack bits.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PopCheckPoint {
    /// `so`: the offset the read started at.
    pub start_offset: u64,
    /// `pt`.
    pub pop_time: Millis,
    /// `it`.
    pub invisible_time: Millis,
    /// `bm`: bit i = message i acked.
    pub bit_map: u32,
    /// `n`: number of messages.
    pub num: u8,
    /// `q`.
    pub queue_id: u32,
    /// `t`: the topic read (possibly a retry topic).
    pub topic: Name,
    /// `c`: consumer group.
    pub cid: Name,
    /// `ro`: the CK's own offset in its revive queue, set when the reviver reads it back.
    pub revive_offset: u64,
    /// `d`: message offset − startOffset, one per message.
    pub queue_offset_diff: Vec<u32>,
    /// `bn`.
    pub broker_name: Name,
    /// `rp`: how often `rePutCK` rewrote it.
    pub re_put_times: u32,
}

impl PopCheckPoint {
    /// `getReviveTime`: popTime + invisibleTime.
    pub fn revive_time(&self) -> Millis {
        self.pop_time + self.invisible_time
    }

    /// `indexOfAck`: which message of the CK an ack offset names (`None` = upstream's −1).
    pub fn index_of_ack(&self, ack_offset: u64) -> Option<usize> {
        if ack_offset < self.start_offset {
            return None;
        }
        let diff = ack_offset - self.start_offset;
        if self.queue_offset_diff.is_empty() {
            // Old format without diffs: contiguous offsets.
            return (diff < u64::from(self.num)).then_some(diff as usize);
        }
        self.queue_offset_diff
            .iter()
            .position(|&d| u64::from(d) == diff)
    }

    /// `ackOffsetByIndex`.
    pub fn ack_offset_by_index(&self, index: usize) -> u64 {
        debug_assert!(index < usize::from(self.num));
        match self.queue_offset_diff.get(index) {
            Some(&d) => self.start_offset + u64::from(d),
            None => self.start_offset + index as u64,
        }
    }

    /// Every message offset of the CK, in index order.
    #[cfg(test)]
    pub fn offsets(&self) -> impl Iterator<Item = u64> + '_ {
        (0..usize::from(self.num)).map(|i| self.ack_offset_by_index(i))
    }

    /// A bit mask with one bit per message.
    pub fn full_mask(&self) -> u32 {
        mask_of(self.num)
    }

    /// The event-facing identity.
    pub fn ck_ref(&self) -> CkRef {
        CkRef {
            topic: self.topic.clone(),
            group: self.cid.clone(),
            queue_id: self.queue_id,
            start_offset: self.start_offset,
            pop_time: self.pop_time,
            invisible_time: self.invisible_time,
            num: u32::from(self.num),
            broker_name: self.broker_name.clone(),
        }
    }

    /// Structural checks that every CK the model builds satisfies.
    pub fn check(&self) {
        assert!(
            usize::from(self.num) <= MAX_CK_NUM,
            "CK num {} above 32",
            self.num
        );
        assert!(
            self.queue_offset_diff.is_empty()
                || self.queue_offset_diff.len() == usize::from(self.num),
            "CK diff list length {} != num {}",
            self.queue_offset_diff.len(),
            self.num
        );
        assert!(self.bit_map & !self.full_mask() == 0, "CK bits beyond num");
        assert!(
            self.queue_offset_diff.windows(2).all(|w| w[0] < w[1]),
            "CK diffs not increasing"
        );
    }
}

/// A mask of the low `num` bits.
pub fn mask_of(num: u8) -> u32 {
    if usize::from(num) >= MAX_CK_NUM {
        u32::MAX
    } else {
        (1u32 << num) - 1
    }
}

/// `AckMsg` / `BatchAckMsg`: acks for messages of one CK. A single ack has one offset.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AckMsg {
    /// `ao` (single) or `aol` (batch).
    pub ack_offsets: Vec<u64>,
    /// `so`: the CK's startOffset, from the receipt.
    pub start_offset: u64,
    /// `c`.
    pub consumer_group: Name,
    /// `t`.
    pub topic: Name,
    /// `q`.
    pub queue_id: u32,
    /// `pt`.
    pub pop_time: Millis,
    /// `bn`: `None` when the writer did not set it (Java `null`).
    pub broker_name: Option<Name>,
    /// A `BatchAckMsg` (tag `bAck`) rather than an `AckMsg` (tag `ack`).
    pub batch: bool,
}

/// One record of the revive log.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ReviveRecord {
    /// Tag `ck`.
    Ck(PopCheckPoint),
    /// Tag `ack` or `bAck`.
    Ack(AckMsg),
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ck(diffs: Vec<u32>) -> PopCheckPoint {
        PopCheckPoint {
            start_offset: 10,
            pop_time: 1_000,
            invisible_time: 5_000,
            bit_map: 0,
            num: 3,
            queue_id: 0,
            topic: "T".into(),
            cid: "G".into(),
            revive_offset: 0,
            queue_offset_diff: diffs,
            broker_name: "b".into(),
            re_put_times: 0,
        }
    }

    #[test]
    fn index_of_ack_uses_diffs_when_present() {
        let c = ck(vec![0, 2, 5]);
        c.check();
        assert_eq!(c.index_of_ack(9), None);
        assert_eq!(c.index_of_ack(10), Some(0));
        assert_eq!(c.index_of_ack(11), None);
        assert_eq!(c.index_of_ack(12), Some(1));
        assert_eq!(c.index_of_ack(15), Some(2));
        assert_eq!(c.ack_offset_by_index(2), 15);
        assert_eq!(c.revive_time(), 6_000);
        assert_eq!(c.offsets().collect::<Vec<_>>(), vec![10, 12, 15]);
    }

    #[test]
    fn index_of_ack_old_format_is_contiguous() {
        let c = ck(vec![]);
        assert_eq!(c.index_of_ack(12), Some(2));
        assert_eq!(c.index_of_ack(13), None);
        assert_eq!(mask_of(3), 0b111);
        assert_eq!(mask_of(32), u32::MAX);
    }
}
