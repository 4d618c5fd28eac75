//! `PopBufferMergeService` (`broker/.../processor/PopBufferMergeService.java`): holds
//! checkpoints in memory so that acks arriving soon after the pop cancel them without any
//! revive-log traffic, and keeps a per-queue deque of checkpoints in pop order so that the
//! commit offset only moves past a checkpoint once it is done or stored (`scanCommitOffset`).
//!
//! Upstream scans every wrapper every 5 ms. The model scans on the same 5 ms grid but only
//! touches wrappers whose state changed since the last scan or whose 3 s / 10 s flush
//! threshold has come, which is what makes the scan able to change anything; the
//! outcome is the same as a full scan at that instant.

use crate::broker::Broker;
use crate::checkpoint::{mask_of, AckMsg, PopCheckPoint};
use crate::config::{BrokerConfig, Millis};
use crate::events::BrokerEvent;
use crate::inflight::OpId;
use crate::keys::{java_str, merge_key};
use std::collections::{BTreeMap, BTreeSet, VecDeque};

/// `PopBufferMergeService.interval`: the scan period.
pub const SCAN_INTERVAL: Millis = 5;
/// The 1.5 s margins of `addCk` / `addAk`.
const BUFFER_MARGIN: Millis = 1_500;

/// `PopCheckPointWrapper`.
#[derive(Clone, Debug)]
pub struct Wrapper {
    pub revive_qid: u32,
    pub ck: PopCheckPoint,
    /// Acks received in memory.
    pub bits: u32,
    /// Acks already written to the revive log.
    pub to_store_bits: u32,
    /// The read position after this pop; −1 = nothing to commit.
    pub next_begin_offset: i64,
    pub lock_key: String,
    pub merge_key: String,
    /// Written to the revive log at pop time; no in-memory merging.
    pub just_offset: bool,
    pub ck_stored: bool,
    /// Stored ahead of its flush by the proposed fix `refused-ack-stores-its-ck`: the buffer
    /// still keeps it (and merges acks in flight) until its normal flush time.
    stored_early: bool,
    in_buffer: bool,
    in_queue: bool,
    /// Its key in the flush queue, while it waits there.
    flush_key: Option<Millis>,
}

impl Wrapper {
    /// `isCkDone`: every message acked in memory.
    pub fn is_ck_done(&self) -> bool {
        let mask = mask_of(self.ck.num);
        self.bits & mask == mask
    }

    /// `isCkDoneForFinish`: every in-memory ack is also stored.
    pub fn is_ck_done_for_finish(&self) -> bool {
        (self.bits ^ self.to_store_bits) & mask_of(self.ck.num) == 0
    }

    /// The condition both the buffer scan (remove) and `scanCommitOffset` (commit) test. A
    /// CK the fix `refused-ack-stores-its-ck` stored early is not ready by its store alone
    /// while the buffer keeps it (until its normal flush, for acks in flight); once that
    /// flush took it out of the buffer it is, like any stored CK, or it would hold the
    /// queue's commit offset for good.
    fn is_ready(&self) -> bool {
        (self.just_offset && self.ck_stored)
            || self.is_ck_done()
            || (self.is_ck_done_for_finish()
                && self.ck_stored
                && !(self.stored_early && self.in_buffer))
    }

    /// The first instant `scan` would flush it (`removeCk`): revive time within
    /// `popCkStayBufferTimeOut`, or stayed longer than `popCkStayBufferTime`.
    fn flush_at(&self, config: &BrokerConfig) -> Millis {
        let by_revive =
            (self.ck.revive_time() + 1).saturating_sub(config.pop_ck_stay_buffer_time_out);
        let by_stay = self.ck.pop_time + config.pop_ck_stay_buffer_time + 1;
        by_revive.min(by_stay)
    }
}

/// What `addAk`'s guards decided for one ack.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum AkGuard {
    /// Merge its bits into this wrapper (`markBitCAS`).
    Merge(u64),
    /// Refused: the caller writes an ACK record of its own.
    Refused,
    /// Refused, and the proposed fix's put of the still-buffered CK failed: an ACK record
    /// now would overtake its CK, so the caller answers an error instead.
    CkPutFailed,
}

/// Why `addAk` refused an ack.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Refusal {
    /// Buffer merge off, or no wrapper for the key.
    Plain,
    /// A just-offset wrapper (`isJustOffset`): `addCkJustOffset` put its CK at pop time,
    /// and the scan puts it again while that put has failed, so it may still be unstored.
    JustOffset(u64),
    /// The time guards, near the revive time or after the stay time: wrapper `id`, whose CK
    /// may not be stored yet.
    Late(u64),
}

/// The service's state: `buffer` (mergeKey → wrapper) and `commitOffsets` (lockKey → deque).
#[derive(Clone, Debug, Default)]
pub struct PopBufferMergeService {
    wrappers: BTreeMap<u64, Wrapper>,
    next_id: u64,
    buffer: BTreeMap<String, u64>,
    commit_offsets: BTreeMap<String, VecDeque<u64>>,
    /// Wrappers whose state changed since the last scan, and the first such change's time.
    dirty: BTreeSet<u64>,
    dirty_queues: BTreeSet<String>,
    dirty_since: Option<Millis>,
    /// Buffered, not yet flushed wrappers by flush time.
    flush_queue: BTreeSet<(Millis, u64)>,
    /// Merge keys with separators (the proposed fix `merge-key-with-separator`).
    pub(crate) separated_keys: bool,
}

/// Rounds up to the scan grid.
fn on_grid(t: Millis) -> Millis {
    t.div_ceil(SCAN_INTERVAL) * SCAN_INTERVAL
}

impl PopBufferMergeService {
    /// CKs held in `buffer`.
    pub fn buffered(&self) -> usize {
        self.buffer.len()
    }

    fn mark_dirty(&mut self, now: Millis, id: u64) {
        self.dirty.insert(id);
        self.dirty_since.get_or_insert(now);
    }

    fn mark_queue_dirty(&mut self, now: Millis, lock_key: &str) {
        if !self.dirty_queues.contains(lock_key) {
            self.dirty_queues.insert(lock_key.to_owned());
        }
        self.dirty_since.get_or_insert(now);
    }

    /// The next scan that can change anything.
    pub fn next_deadline(&self) -> Option<Millis> {
        let dirty = self.dirty_since.map(|t| on_grid(t + 1));
        let flush = self.flush_queue.first().map(|&(t, _)| on_grid(t));
        match (dirty, flush) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// `getLatestOffset(lockKey)`: the newest queued wrapper's `nextBeginOffset`, else −1.
    pub fn get_latest_offset(&self, lock_key: &str) -> i64 {
        self.commit_offsets
            .get(lock_key)
            .and_then(|q| q.back())
            .map_or(-1, |id| self.wrappers[id].next_begin_offset)
    }

    /// `clearOffsetQueue(lockKey)`: forget the queue's pending commits (on reset). Buffered
    /// CKs stay in `buffer` and still flush and revive.
    pub fn clear_offset_queue(&mut self, lock_key: &str) {
        if let Some(q) = self.commit_offsets.remove(lock_key) {
            for id in q {
                if let Some(w) = self.wrappers.get_mut(&id) {
                    w.in_queue = false;
                }
                self.free_if_unused(id);
            }
        }
        self.dirty_queues.remove(lock_key);
    }

    fn free_if_unused(&mut self, id: u64) {
        if self
            .wrappers
            .get(&id)
            .is_some_and(|w| !w.in_buffer && !w.in_queue)
        {
            self.unschedule_flush(id);
            self.wrappers.remove(&id);
            self.dirty.remove(&id);
        }
    }

    /// `checkQueueOk`.
    fn queue_ok(&self, lock_key: &str, config: &BrokerConfig) -> bool {
        self.commit_offsets
            .get(lock_key)
            .is_none_or(|q| (q.len() as u64) < config.pop_ck_offset_max_queue_size)
    }

    fn new_wrapper(
        &mut self,
        revive_qid: u32,
        ck: PopCheckPoint,
        next_begin_offset: i64,
        just_offset: bool,
    ) -> u64 {
        ck.check();
        let id = self.next_id;
        self.next_id += 1;
        let lock_key = crate::keys::lock_key(&ck.topic, &ck.cid, ck.queue_id);
        let merge_key = merge_key(
            &ck.topic,
            &ck.cid,
            ck.queue_id,
            ck.start_offset,
            ck.pop_time,
            Some(&ck.broker_name),
            self.separated_keys,
        );
        let w = Wrapper {
            revive_qid,
            ck,
            bits: 0,
            to_store_bits: 0,
            next_begin_offset,
            lock_key,
            merge_key,
            just_offset,
            ck_stored: false,
            stored_early: false,
            in_buffer: false,
            in_queue: false,
            flush_key: None,
        };
        self.wrappers.insert(id, w);
        id
    }

    /// `putOffsetQueue` + `buffer.put`.
    fn enqueue(&mut self, now: Millis, id: u64, into_buffer: bool) {
        let w = self.wrappers.get_mut(&id).expect("wrapper exists");
        w.in_queue = true;
        let lock_key = w.lock_key.clone();
        if into_buffer {
            w.in_buffer = true;
            let prior = self.buffer.insert(w.merge_key.clone(), id);
            debug_assert!(prior.is_none(), "mergeKey conflict must be refused before");
        }
        self.commit_offsets
            .entry(lock_key.clone())
            .or_default()
            .push_back(id);
        self.mark_dirty(now, id);
        self.mark_queue_dirty(now, &lock_key);
    }

    /// `addCk`: buffer a CK without writing it. Refused (false) when buffer merge is off, the
    /// revive time is under `popCkStayBufferTimeOut + 1.5 s` away, the buffer or the queue's
    /// deque is full, or the mergeKey is taken.
    pub fn add_ck(
        &mut self,
        config: &BrokerConfig,
        now: Millis,
        ck: &PopCheckPoint,
        revive_qid: u32,
        next_begin_offset: i64,
    ) -> bool {
        if !config.enable_pop_buffer_merge {
            return false;
        }
        if ck.revive_time() < now + config.pop_ck_stay_buffer_time_out + BUFFER_MARGIN {
            return false;
        }
        if self.buffer.len() as u64 > config.pop_ck_max_buffer_size {
            return false;
        }
        let lock_key = crate::keys::lock_key(&ck.topic, &ck.cid, ck.queue_id);
        if !self.queue_ok(&lock_key, config) {
            return false;
        }
        let key = merge_key(
            &ck.topic,
            &ck.cid,
            ck.queue_id,
            ck.start_offset,
            ck.pop_time,
            Some(&ck.broker_name),
            self.separated_keys,
        );
        if self.buffer.contains_key(&key) {
            return false;
        }
        let id = self.new_wrapper(revive_qid, ck.clone(), next_begin_offset, false);
        self.enqueue(now, id, true);
        self.schedule_flush(config, id);
        true
    }

    /// `addCkJustOffset`, first half: refuse on a mergeKey conflict, else create the wrapper.
    /// The caller stores the CK, then calls [`Self::just_offset_stored`].
    pub fn prepare_just_offset(
        &mut self,
        ck: &PopCheckPoint,
        revive_qid: u32,
        next_begin_offset: i64,
    ) -> Option<u64> {
        let key = merge_key(
            &ck.topic,
            &ck.cid,
            ck.queue_id,
            ck.start_offset,
            ck.pop_time,
            Some(&ck.broker_name),
            self.separated_keys,
        );
        if self.buffer.contains_key(&key) {
            return None;
        }
        Some(self.new_wrapper(revive_qid, ck.clone(), next_begin_offset, true))
    }

    /// `addCkJustOffset`, second half: the CK was put (`stored`: successfully); queue it.
    pub fn just_offset_queued(&mut self, now: Millis, id: u64, stored: bool) {
        self.wrappers
            .get_mut(&id)
            .expect("wrapper exists")
            .ck_stored = stored;
        self.enqueue(now, id, true);
    }

    /// `addAk` up to `markBitCAS`: the wrapper with the ack's mergeKey (its brokerName must
    /// match) and the guards. `Err` = refused: no such wrapper, or buffer merge is off
    /// ([`Refusal::Plain`]), it is just-offset, merge on or off ([`Refusal::JustOffset`]), or the revive time is under 4.5 s away or the CK was
    /// popped over 8.5 s ago ([`Refusal::Late`], with the wrapper, which may still be
    /// unstored).
    pub fn add_ak_guards(
        &self,
        config: &BrokerConfig,
        now: Millis,
        ack: &AckMsg,
    ) -> Result<u64, Refusal> {
        let key = merge_key(
            &ack.topic,
            &ack.consumer_group,
            ack.queue_id,
            ack.start_offset,
            ack.pop_time,
            Some(java_str(ack.broker_name.as_deref())),
            self.separated_keys,
        );
        let Some(&id) = self.buffer.get(&key) else {
            return Err(Refusal::Plain);
        };
        let w = &self.wrappers[&id];
        // With buffer merge off every CK is just-offset, and upstream refuses before it
        // looks (515-517): the refusal is the same, and so is the wrapper the fix
        // `refused-ack-stores-its-ck` stores first.
        if w.just_offset {
            return Err(Refusal::JustOffset(id));
        }
        if !config.enable_pop_buffer_merge {
            return Err(Refusal::Plain);
        }
        if w.ck.revive_time() < now + config.pop_ck_stay_buffer_time_out + BUFFER_MARGIN {
            return Err(Refusal::Late(id));
        }
        // Java's `now - popTime > popCkStayBufferTime - 1500`, signed: a stay time under
        // 1.5 s refuses every ack.
        let stayed = now as i64 - w.ck.pop_time as i64;
        if stayed > config.pop_ck_stay_buffer_time as i64 - BUFFER_MARGIN as i64 {
            return Err(Refusal::Late(id));
        }
        Ok(id)
    }

    /// Whether a wrapper's CK is still only in memory.
    pub fn ck_unstored(&self, id: u64) -> bool {
        self.wrappers
            .get(&id)
            .is_some_and(|w| w.in_buffer && !w.ck_stored)
    }

    /// `markBitCAS` on the wrapper `addAk` found. Upstream holds the wrapper object, so the
    /// bits are set even if the scan has meanwhile flushed it and dropped it from `buffer`;
    /// such bits are never stored. Returns the CK when the wrapper is still buffered, else
    /// `None` (the ack is lost, though `addAk` answers true).
    pub fn add_ak_mark_bits(
        &mut self,
        now: Millis,
        id: u64,
        ack: &AckMsg,
    ) -> Option<PopCheckPoint> {
        let w = self.wrappers.get_mut(&id)?;
        for &offset in &ack.ack_offsets {
            // An offset outside the CK is only logged upstream; the ack is still "merged".
            if let Some(i) = w.ck.index_of_ack(offset) {
                w.bits |= 1 << i;
            }
        }
        if !w.in_buffer {
            return None;
        }
        let ck = w.ck.clone();
        self.mark_dirty(now, id);
        Some(ck)
    }

    /// Puts a buffered wrapper in the flush queue at its threshold time.
    fn schedule_flush(&mut self, config: &BrokerConfig, id: u64) {
        let w = self.wrappers.get_mut(&id).expect("wrapper exists");
        if w.flush_key.is_none() {
            let at = w.flush_at(config);
            w.flush_key = Some(at);
            self.flush_queue.insert((at, id));
        }
    }

    /// Takes a wrapper out of the flush queue.
    fn unschedule_flush(&mut self, id: u64) {
        if let Some(w) = self.wrappers.get_mut(&id) {
            if let Some(at) = w.flush_key.take() {
                self.flush_queue.remove(&(at, id));
            }
        }
    }

    /// The wrappers a scan at `now` must look at: changed ones and due flushes.
    fn take_scan_set(&mut self, now: Millis) -> BTreeSet<u64> {
        let mut ids = std::mem::take(&mut self.dirty);
        while let Some(&(at, id)) = self.flush_queue.first() {
            if at > now {
                break;
            }
            self.flush_queue.pop_first();
            if let Some(w) = self.wrappers.get_mut(&id) {
                w.flush_key = None;
            }
            ids.insert(id);
        }
        self.dirty_since = None;
        ids
    }

    fn remove_from_buffer(&mut self, id: u64) {
        let w = self.wrappers.get_mut(&id).expect("wrapper exists");
        if w.in_buffer {
            w.in_buffer = false;
            self.buffer.remove(&w.merge_key);
        }
    }

    /// Drops everything (crash: the buffer lives in memory only).
    pub fn clear(&mut self) {
        *self = Self {
            next_id: self.next_id,
            separated_keys: self.separated_keys,
            ..Self::default()
        };
    }

    /// Internal consistency, checked after every scan in debug builds.
    pub fn check(&self) {
        for (key, id) in &self.buffer {
            let w = &self.wrappers[id];
            assert!(
                w.in_buffer && &w.merge_key == key,
                "buffer index out of sync"
            );
        }
        for (lock_key, q) in &self.commit_offsets {
            for id in q {
                let w = &self.wrappers[id];
                assert!(
                    w.in_queue && &w.lock_key == lock_key,
                    "offset deque out of sync"
                );
            }
        }
        for (id, w) in &self.wrappers {
            assert!(w.in_buffer || w.in_queue, "orphan wrapper");
            if let Some(at) = w.flush_key {
                assert!(
                    self.flush_queue.contains(&(at, *id)),
                    "flush key without queue entry"
                );
            }
            assert!(
                w.to_store_bits & !w.bits == 0,
                "stored an ack bit never received"
            );
            assert!(w.bits & !mask_of(w.ck.num) == 0, "ack bit beyond num");
        }
    }
}

/// What `scan` decided for one wrapper.
enum ScanStep {
    Nothing,
    Removed,
    Flush,
    Keep,
    /// A just-offset wrapper whose CK put failed: put it again.
    RePutJustOffset,
}

/// Bound on the shutdown's scan loop: upstream scans until the buffer is empty, which with a
/// failing store could be forever; the model gives up after this many passes.
const MAX_FINAL_SCANS: usize = 1_000;

impl Broker {
    /// `PopBufferMergeService.run()`'s tail at shutdown: `serving = false`, then `scan()` and
    /// `scanCommitOffset()` until the buffer and every offset queue are empty. With `serving`
    /// off every buffered CK is flushed (`removeCk`), so its CK and acks are stored and the
    /// queues commit.
    pub(crate) fn pop_buffer_final_scan(&mut self, now: Millis) {
        for _ in 0..MAX_FINAL_SCANS {
            if self.buffer.buffered() == 0 && self.buffer.commit_offsets.is_empty() {
                return;
            }
            let ids: Vec<u64> = self.buffer.wrappers.keys().copied().collect();
            let queues: Vec<String> = self.buffer.commit_offsets.keys().cloned().collect();
            for q in queues {
                self.buffer.mark_queue_dirty(now, &q);
            }
            for id in ids {
                match self.scan_step(now, id, false) {
                    ScanStep::Flush => self.flush_wrapper(now, id),
                    ScanStep::RePutJustOffset => self.re_put_just_offset(now, id),
                    ScanStep::Nothing | ScanStep::Removed | ScanStep::Keep => {}
                }
                self.buffer.free_if_unused(id);
            }
            self.scan_commit_offset(now);
        }
    }

    /// `PopBufferMergeService.scan` at `now`, then `scanCommitOffset`.
    pub(crate) fn pop_buffer_scan(&mut self, now: Millis) {
        let ids = self.buffer.take_scan_set(now);
        for id in ids {
            match self.scan_step(now, id, true) {
                ScanStep::Nothing | ScanStep::Removed => {}
                ScanStep::Flush => self.flush_wrapper(now, id),
                ScanStep::RePutJustOffset => self.re_put_just_offset(now, id),
                ScanStep::Keep => self.buffer.schedule_flush(&self.config, id),
            }
            self.buffer.free_if_unused(id);
        }
        self.scan_commit_offset(now);
        if cfg!(debug_assertions) || cfg!(feature = "invariants") {
            self.buffer.check();
        }
    }

    /// One wrapper of `scan`: remove it when ready, flush it when `removeCk` (always once
    /// the service stopped `serving`).
    fn scan_step(&mut self, now: Millis, id: u64, serving: bool) -> ScanStep {
        let Some(w) = self.buffer.wrappers.get(&id) else {
            return ScanStep::Nothing;
        };
        if !w.in_buffer {
            return ScanStep::Nothing;
        }
        let lock_key = w.lock_key.clone();
        if w.is_ready() {
            self.buffer.remove_from_buffer(id);
            self.buffer.unschedule_flush(id);
            self.buffer.mark_queue_dirty(now, &lock_key);
            return ScanStep::Removed;
        }
        if w.just_offset {
            // "just offset should be in store": a failed put is tried again each scan.
            return if w.ck_stored {
                ScanStep::Nothing
            } else {
                ScanStep::RePutJustOffset
            };
        }
        let remove_ck = !serving
            || w.ck.revive_time() < now + self.config.pop_ck_stay_buffer_time_out
            || now.saturating_sub(w.ck.pop_time) > self.config.pop_ck_stay_buffer_time;
        if remove_ck {
            ScanStep::Flush
        } else {
            // Changed but not yet due: keep (or put back) its flush threshold.
            ScanStep::Keep
        }
    }

    /// `scan` with `removeCk`: `putCkToStore` (a failed put leaves it unstored, to be tried
    /// again by the next scan, and stores no ack before it), then every buffered ack not yet
    /// stored (`putAckToStore` per index, or one `putBatchAckToStore`; a failed put leaves
    /// its `toStoreBits` unset for the next scan), then drop it from `buffer` once all is
    /// stored. With `appendCkAsync` (`putCkToStore`'s asynchronous put) upstream skips the
    /// acks while the put's future has not marked the CK stored; on the modelled store that
    /// future is complete when returned, so the CK is stored (or failed) here, as below
    /// (`BrokerConfig::append_ck_async`).
    fn flush_wrapper(&mut self, now: Millis, id: u64) {
        if !self.buffer.wrappers[&id].ck_stored {
            let (ck, revive_qid) = self.buffered_ck_to_store(id);
            if self
                .put_ck_to_store(now, &ck, revive_qid, "PopBufferMergeService.putCkToStore")
                .is_none()
            {
                self.buffer.mark_dirty(now, id);
                return;
            }
            self.buffer
                .wrappers
                .get_mut(&id)
                .expect("wrapper exists")
                .ck_stored = true;
        }
        self.store_buffered_acks(now, id);
        let w = &self.buffer.wrappers[&id];
        if w.is_ck_done_for_finish() && w.ck_stored {
            let lock_key = w.lock_key.clone();
            self.buffer.remove_from_buffer(id);
            self.buffer.mark_queue_dirty(now, &lock_key);
        } else {
            // An ack put failed: the next scan tries again.
            self.buffer.mark_dirty(now, id);
        }
    }

    /// The CK `putCkToStore` writes for a buffered wrapper (`buildCkMsg` of its CK) and its
    /// revive queue. Develop writes the CK as the pop built it, `bitMap` 0: the acks merged
    /// into the wrapper reach the revive log only as the ACK records put after it, and one
    /// whose put failed waits for a later scan. With the proposed fix
    /// `flushed-ck-carries-merged-acks` (read only here) the CK's `bitMap` holds the acks
    /// merged so far (`pointWrapper.getBits()`); the reviver skips a set bit
    /// (`reviveMsgFromCk`) and ORs the ACKs it reads into it, so a merged ack holds however
    /// late its own ACK record comes (finding F19). The ACK records are still put.
    fn buffered_ck_to_store(&self, id: u64) -> (PopCheckPoint, u32) {
        let w = &self.buffer.wrappers[&id];
        let mut ck = w.ck.clone();
        if self
            .behaviours
            .has_fix(crate::Fix::FlushedCkCarriesMergedAcks)
        {
            ck.bit_map = w.bits & ck.full_mask();
        }
        (ck, w.revive_qid)
    }

    /// `scan`'s puts of a stored CK's buffered acks: every ack not yet stored
    /// (`putAckToStore` per index, or one `putBatchAckToStore`); a failed put leaves its
    /// `toStoreBits` unset for the next scan.
    pub(crate) fn store_buffered_acks(&mut self, now: Millis, id: u64) {
        let w = &self.buffer.wrappers[&id];
        let (ck, revive_qid) = (w.ck.clone(), w.revive_qid);
        let to_store = w.bits & !w.to_store_bits & ck.full_mask();
        let indexes: Vec<usize> = (0..usize::from(ck.num))
            .filter(|i| to_store & (1 << i) != 0)
            .collect();
        if indexes.is_empty() {
            return;
        }
        let mut stored_bits = 0;
        if self.config.enable_pop_batch_ack {
            if self.put_batch_ack_to_store(now, &ck, revive_qid, &indexes) {
                stored_bits = to_store;
            }
        } else {
            for &i in &indexes {
                if self.put_ack_to_store(now, &ck, revive_qid, i) {
                    stored_bits |= 1 << i;
                }
            }
        }
        self.buffer
            .wrappers
            .get_mut(&id)
            .expect("wrapper exists")
            .to_store_bits |= stored_bits;
    }

    /// `scan`'s just-offset branch: `putCkToStore` again; still failing, the next scan tries.
    fn re_put_just_offset(&mut self, now: Millis, id: u64) {
        self.put_just_offset_ck(now, id, "PopBufferMergeService.putCkToStore");
        self.buffer.mark_dirty(now, id);
    }

    /// `putCkToStore` of a just-offset wrapper whose put at pop time failed; once stored it
    /// is ready, and its queue's commit may move on. Whether the put succeeded.
    fn put_just_offset_ck(&mut self, now: Millis, id: u64, reason: &str) -> bool {
        let w = &self.buffer.wrappers[&id];
        let (ck, revive_qid) = (w.ck.clone(), w.revive_qid);
        if self.put_ck_to_store(now, &ck, revive_qid, reason).is_none() {
            return false;
        }
        let w = self.buffer.wrappers.get_mut(&id).expect("wrapper exists");
        w.ck_stored = true;
        let lock_key = w.lock_key.clone();
        self.buffer.mark_queue_dirty(now, &lock_key);
        true
    }

    /// `putAckToStore`: one buffered ack as an `AckMsg`. Before #8836 the AckMsg carried no
    /// brokerName; this is the one place `buffered-ack-missing-broker-name` is read.
    fn put_ack_to_store(
        &mut self,
        now: Millis,
        ck: &PopCheckPoint,
        revive_qid: u32,
        index: usize,
    ) -> bool {
        let broker_name = if self
            .behaviours
            .is_on(crate::Behaviour::BufferedAckMissingBrokerName)
        {
            None
        } else {
            Some(ck.broker_name.clone())
        };
        let ack = AckMsg {
            ack_offsets: vec![ck.ack_offset_by_index(index)],
            start_offset: ck.start_offset,
            consumer_group: ck.cid.clone(),
            topic: ck.topic.clone(),
            queue_id: ck.queue_id,
            pop_time: ck.pop_time,
            broker_name,
            batch: false,
        };
        let deliver_at = self.buffered_ack_deliver_at(now, ck);
        self.put_ack_record(
            now,
            ack,
            revive_qid,
            deliver_at,
            "PopBufferMergeService.putAckToStore",
        )
    }

    /// The `deliverTimeMs` of a buffered ACK the scan puts: develop sets the CK's revive
    /// time (`putAckToStore` 657, `putBatchAckToStore` 713), so a put after the revive time
    /// (a retry of a failed put, or a late scan) is stored directly
    /// (`HookUtils.transformTimerMessage`) and can overtake its CK, whose deliver time was
    /// one `ackTimeInterval` earlier (`buildCkMsg`) and which may still wait in a lagging
    /// timer wheel. The proposed fix `due-buffered-ack-goes-through-timer` is read only here
    /// ([`Broker::due_ack_deliver_at`]).
    fn buffered_ack_deliver_at(&self, now: Millis, ck: &PopCheckPoint) -> Millis {
        self.due_ack_deliver_at(
            now,
            ck.revive_time(),
            crate::Fix::DueBufferedAckGoesThroughTimer,
        )
    }

    /// `putBatchAckToStore`: the buffered acks as one `BatchAckMsg`. Upstream (develop) never
    /// sets its brokerName; only the reviver's blank-name fallback (#8981) matches it.
    fn put_batch_ack_to_store(
        &mut self,
        now: Millis,
        ck: &PopCheckPoint,
        revive_qid: u32,
        indexes: &[usize],
    ) -> bool {
        let ack = AckMsg {
            ack_offsets: indexes.iter().map(|&i| ck.ack_offset_by_index(i)).collect(),
            start_offset: ck.start_offset,
            consumer_group: ck.cid.clone(),
            topic: ck.topic.clone(),
            queue_id: ck.queue_id,
            pop_time: ck.pop_time,
            broker_name: None,
            batch: true,
        };
        let deliver_at = self.buffered_ack_deliver_at(now, ck);
        self.put_ack_record(
            now,
            ack,
            revive_qid,
            deliver_at,
            "PopBufferMergeService.putBatchAckToStore",
        )
    }

    /// `scanCommitOffset`: per changed deque, pop every ready head and commit its
    /// `nextBeginOffset` ([`Broker::commit_offset_of_wrapper`]); a head that is not ready
    /// blocks.
    fn scan_commit_offset(&mut self, now: Millis) {
        let queues = std::mem::take(&mut self.buffer.dirty_queues);
        for lock_key in queues {
            while let Some(&id) = self
                .buffer
                .commit_offsets
                .get(&lock_key)
                .and_then(VecDeque::front)
            {
                let w = &self.buffer.wrappers[&id];
                if !w.is_ready() {
                    break;
                }
                if w.next_begin_offset >= 0 {
                    let (group, topic, q, next) = (
                        w.ck.cid.clone(),
                        w.ck.topic.clone(),
                        w.ck.queue_id,
                        w.next_begin_offset,
                    );
                    if !self.queue_locks.try_lock(&lock_key, OpId::SERVICE) {
                        // A pop holds the queue: `commitOffset` returns false and this
                        // queue waits for the next scan.
                        self.buffer.mark_queue_dirty(now, &lock_key);
                        break;
                    }
                    self.commit_offset_of_wrapper(now, &group, &topic, q, next);
                    self.unlock_queue(&lock_key, OpId::SERVICE);
                }
                let q = self
                    .buffer
                    .commit_offsets
                    .get_mut(&lock_key)
                    .expect("deque exists");
                q.pop_front();
                if q.is_empty() {
                    self.buffer.commit_offsets.remove(&lock_key);
                }
                self.buffer
                    .wrappers
                    .get_mut(&id)
                    .expect("wrapper exists")
                    .in_queue = false;
                self.buffer.free_if_unused(id);
            }
        }
    }

    /// `commitOffset(wrapper)` under the queue lock: develop commits `nextBeginOffset` unconditionally (only a
    /// warning when it is not larger), even over a pending server-side reset. The proposed
    /// fix `buffer-commit-skips-pending-reset` (read only here) skips the commit while
    /// `hasOffsetReset`, as `AckMessageProcessor.ackOrderly` does since RIP-48: the pop that
    /// consumes the reset commits it, and this CK's offsets are before the reset anyway.
    fn commit_offset_of_wrapper(
        &mut self,
        now: Millis,
        group: &str,
        topic: &str,
        q: u32,
        next: i64,
    ) {
        if self
            .behaviours
            .has_fix(crate::Fix::BufferCommitSkipsPendingReset)
            && self.offsets.has_offset_reset(topic, group, q)
        {
            return;
        }
        self.offsets.commit_offset(
            &mut self.events,
            now,
            "PopBufferMergeService",
            group,
            topic,
            q,
            next,
        );
    }

    /// `addCkJustOffset`: write the CK to the revive log now and queue its offset. The wrapper
    /// is buffered and queued whether the put worked or not (the pop hands its messages out
    /// either way); an unstored one blocks its queue's commit, and `scan` puts it again.
    pub(crate) fn add_ck_just_offset(
        &mut self,
        now: Millis,
        ck: &PopCheckPoint,
        revive_qid: u32,
        next_begin_offset: i64,
    ) -> bool {
        let Some(id) = self
            .buffer
            .prepare_just_offset(ck, revive_qid, next_begin_offset)
        else {
            // A mergeKey conflict: upstream refuses the pop's CK.
            return false;
        };
        let stored = self
            .put_ck_to_store(now, ck, revive_qid, "PopBufferMergeService.addCkJustOffset")
            .is_some();
        self.buffer.just_offset_queued(now, id, stored);
        true
    }

    /// `addCk` with the event.
    pub(crate) fn add_ck_buffered(
        &mut self,
        now: Millis,
        ck: &PopCheckPoint,
        revive_qid: u32,
        next_begin_offset: i64,
    ) -> bool {
        let ok = self
            .buffer
            .add_ck(&self.config, now, ck, revive_qid, next_begin_offset);
        if ok {
            self.events.push(BrokerEvent::CkBuffered {
                at: now,
                ck: ck.ck_ref().into(),
            });
        }
        ok
    }

    /// `addAk`'s guards ([`PopBufferMergeService::add_ak_guards`]). On a late refusal, or one
    /// for a just-offset wrapper whose put at pop time failed, with the CK still unstored, the
    /// proposed fix `refused-ack-stores-its-ck` (read only here) stores
    /// it first, as the scan's flush would, with the acks already merged into it, so the ACK
    /// record the caller writes next follows it in the revive log; when that put fails the
    /// caller must not write the ACK ahead of its CK ([`AkGuard::CkPutFailed`]). The buffered
    /// acks go with the CK because the scan may flush them only after their deliver time
    /// (a stalled scan): stored directly then, they would overtake a CK still parked in a
    /// lagging timer wheel, and the reviver would drop them. Acks merged into the wrapper
    /// later are stored as they come ([`Broker::add_ak_mark_bits`]).
    pub(crate) fn add_ak_guards(&mut self, now: Millis, ack: &AckMsg) -> AkGuard {
        match self.buffer.add_ak_guards(&self.config, now, ack) {
            Ok(id) => AkGuard::Merge(id),
            Err(Refusal::Late(id))
                if self.behaviours.has_fix(crate::Fix::RefusedAckStoresItsCk)
                    && self.buffer.ck_unstored(id) =>
            {
                let (ck, revive_qid) = self.buffered_ck_to_store(id);
                if self
                    .put_ck_to_store(now, &ck, revive_qid, "PopBufferMergeService.addAk")
                    .is_none()
                {
                    // The CK stays for the scan's flush.
                    return AkGuard::CkPutFailed;
                }
                let w = self.buffer.wrappers.get_mut(&id).expect("wrapper exists");
                w.ck_stored = true;
                w.stored_early = true;
                self.store_buffered_acks(now, id);
                AkGuard::Refused
            }
            // The same decision for a just-offset wrapper whose put at pop time failed: no
            // ack was merged into it, so its CK alone goes first.
            Err(Refusal::JustOffset(id))
                if self.behaviours.has_fix(crate::Fix::RefusedAckStoresItsCk)
                    && self.buffer.ck_unstored(id) =>
            {
                if self.put_just_offset_ck(now, id, "PopBufferMergeService.addAk") {
                    AkGuard::Refused
                } else {
                    AkGuard::CkPutFailed
                }
            }
            Err(_) => AkGuard::Refused,
        }
    }

    /// `markBitCAS` with its events: merged, or lost on a wrapper the scan already dropped.
    /// On a wrapper whose CK the fix `refused-ack-stores-its-ck` stored early, the merged
    /// ack is stored at once, behind its CK ([`Broker::add_ak_guards`]).
    pub(crate) fn add_ak_mark_bits(&mut self, now: Millis, id: u64, ack: &AckMsg) {
        match self.buffer.add_ak_mark_bits(now, id, ack) {
            Some(ck) => {
                for &ack_offset in &ack.ack_offsets {
                    self.events.push(BrokerEvent::AckMergedInBuffer {
                        at: now,
                        ck: ck.ck_ref().into(),
                        ack_offset,
                    });
                }
                if self.buffer.wrappers[&id].stored_early {
                    self.store_buffered_acks(now, id);
                }
            }
            None => {
                for &ack_offset in &ack.ack_offsets {
                    self.events.push(BrokerEvent::AckLostOnDroppedCk {
                        at: now,
                        group: ack.consumer_group.clone(),
                        topic: ack.topic.clone(),
                        queue_id: ack.queue_id,
                        start_offset: ack.start_offset,
                        pop_time: ack.pop_time,
                        ack_offset,
                    });
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config() -> BrokerConfig {
        BrokerConfig {
            enable_pop_buffer_merge: true,
            ..BrokerConfig::default()
        }
    }

    fn ck(pop_time: Millis, invisible_time: Millis, num: u8) -> PopCheckPoint {
        PopCheckPoint {
            start_offset: 10,
            pop_time,
            invisible_time,
            bit_map: 0,
            num,
            queue_id: 0,
            topic: "T".into(),
            cid: "G".into(),
            revive_offset: 0,
            queue_offset_diff: (0..u32::from(num)).collect(),
            broker_name: "b".into(),
            re_put_times: 0,
        }
    }

    fn ack(c: &PopCheckPoint, offset: u64, bn: Option<&str>) -> AckMsg {
        AckMsg {
            ack_offsets: vec![offset],
            start_offset: c.start_offset,
            consumer_group: c.cid.clone(),
            topic: c.topic.clone(),
            queue_id: c.queue_id,
            pop_time: c.pop_time,
            broker_name: bn.map(crate::Name::new),
            batch: false,
        }
    }

    #[test]
    fn add_ck_guards() {
        let mut s = PopBufferMergeService::default();
        let off = BrokerConfig::default();
        assert!(
            !s.add_ck(&off, 0, &ck(0, 60_000, 1), 0, 11),
            "buffer merge disabled"
        );
        assert!(
            !s.add_ck(&config(), 0, &ck(0, 4_499, 1), 0, 11),
            "revive time under 4.5 s away"
        );
        assert!(s.add_ck(&config(), 0, &ck(0, 4_500, 1), 0, 11));
        assert!(
            !s.add_ck(&config(), 0, &ck(0, 4_500, 1), 0, 11),
            "mergeKey taken"
        );
        let tiny = BrokerConfig {
            pop_ck_offset_max_queue_size: 1,
            ..config()
        };
        assert!(
            !s.add_ck(&tiny, 0, &ck(1, 60_000, 1), 0, 12),
            "offset deque full"
        );
        assert_eq!(s.buffered(), 1);
        s.check();
    }

    /// `addAk` in one go: merged (true) or refused.
    fn merge(s: &mut PopBufferMergeService, now: Millis, a: &AckMsg) -> bool {
        match s.add_ak_guards(&config(), now, a) {
            Ok(id) => {
                s.add_ak_mark_bits(now, id, a);
                true
            }
            Err(_) => false,
        }
    }

    #[test]
    fn add_ak_guards_and_merge_key() {
        let mut s = PopBufferMergeService::default();
        let c = ck(0, 60_000, 2);
        assert!(s.add_ck(&config(), 0, &c, 0, 12));
        assert!(
            !merge(&mut s, 100, &ack(&c, 10, Some("other"))),
            "bn is in the key"
        );
        assert!(
            merge(&mut s, 8_500, &ack(&c, 10, Some("b"))),
            "8.5 s is still in"
        );
        assert!(
            !merge(&mut s, 8_501, &ack(&c, 11, Some("b"))),
            "stayed too long"
        );
        assert!(
            merge(&mut s, 100, &ack(&c, 99, Some("b"))),
            "outside the CK: swallowed"
        );
        let w = s.wrappers.values().next().unwrap();
        assert_eq!((w.bits, w.is_ck_done()), (0b01, false));
        let near = ck(0, 10_000, 1);
        assert!(s.add_ck(&config(), 0, &ck(0, 10_000, 1).tap_start(20), 0, 21));
        assert!(
            !merge(&mut s, 5_501, &ack(&near.tap_start(20), 20, Some("b"))),
            "revive time under 4.5 s away"
        );
    }

    #[test]
    fn a_stay_time_under_the_margin_refuses_every_ack() {
        let short = BrokerConfig {
            pop_ck_stay_buffer_time: 1_000,
            ..config()
        };
        let mut s = PopBufferMergeService::default();
        let c = ck(0, 60_000, 1);
        assert!(s.add_ck(&short, 0, &c, 0, 11));
        assert!(s.add_ak_guards(&short, 0, &ack(&c, 10, Some("b"))).is_err());
    }

    #[test]
    fn latest_offset_and_clear_offset_queue() {
        let mut s = PopBufferMergeService::default();
        assert_eq!(s.get_latest_offset("T@G@0"), -1);
        assert!(s.add_ck(&config(), 0, &ck(0, 60_000, 2), 0, 12));
        assert!(s.add_ck(&config(), 1, &ck(1, 60_000, 2).tap_start(12), 0, 14));
        assert_eq!(s.get_latest_offset("T@G@0"), 14);
        s.clear_offset_queue("T@G@0");
        assert_eq!(s.get_latest_offset("T@G@0"), -1);
        assert_eq!(s.buffered(), 2, "buffered CKs stay and still flush");
        s.check();
    }

    #[test]
    fn next_deadline_is_the_flush_threshold_not_the_scan_period() {
        let mut s = PopBufferMergeService::default();
        assert_eq!(s.next_deadline(), None);
        assert!(s.add_ck(&config(), 3, &ck(3, 60_000, 1), 0, 11));
        assert_eq!(s.next_deadline(), Some(5), "a change: the next 5 ms scan");
        let _ = s.take_scan_set(5);
        assert_eq!(
            s.next_deadline(),
            Some(10_005),
            "popTime + 10 s + 1 ms, on the grid"
        );
        let mut s = PopBufferMergeService::default();
        assert!(s.add_ck(&config(), 0, &ck(0, 6_000, 1), 0, 11));
        let _ = s.take_scan_set(5);
        assert_eq!(
            s.next_deadline(),
            Some(3_005),
            "reviveTime − 3 s, on the grid"
        );
    }

    trait StartAt {
        fn tap_start(self, start: u64) -> Self;
    }

    impl StartAt for PopCheckPoint {
        fn tap_start(mut self, start: u64) -> Self {
            self.start_offset = start;
            self
        }
    }
}
