//! What to draw: one pass over the history turns events into marks on lanes (a message of a
//! group, a consumer-offset queue, the cluster), pairs what belongs together (a listener's
//! start and finish by their delivery's receipt, an offset update's start and completion, a
//! receipt's invisible window and the changeInvisibleTime that ends it), and collects the
//! fault intervals the overview shades. Nothing here knows about pixels.

use crate::describe::event_line;
use crate::history::{ConsumeOutcome, EventKind, History, RpcOutcome};
use crate::invariants::index::{is_success, secs, LookupMap};
use broker_core::{BrokerEvent, Millis};
use std::collections::{BTreeMap, BTreeSet};

/// A lane: the cluster, a consumer-offset queue, or a message as one group sees it.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub(super) enum LaneKey {
    Cluster,
    Queue {
        group: String,
        topic: String,
        /// `None`: the whole topic (a pull offset cleared for every queue).
        queue_id: Option<u32>,
    },
    Message {
        msg_id: String,
        /// `None`: a produce no consumer group subscribes to (or one that failed).
        group: Option<String>,
    },
}

impl LaneKey {
    pub fn label(&self) -> String {
        match self {
            LaneKey::Cluster => "cluster".to_owned(),
            LaneKey::Queue {
                group,
                topic,
                queue_id,
            } => {
                let q = queue_id.map_or_else(|| "*".to_owned(), |q| q.to_string());
                format!("{group} · {topic}/{q}")
            }
            LaneKey::Message { msg_id, group } => match group {
                Some(g) => format!("{msg_id} · {g}"),
                None => msg_id.clone(),
            },
        }
    }

    pub fn group(&self) -> Option<&str> {
        match self {
            LaneKey::Cluster => None,
            LaneKey::Queue { group, .. } => Some(group),
            LaneKey::Message { group, .. } => group.as_deref(),
        }
    }

    pub fn msg(&self) -> Option<&str> {
        match self {
            LaneKey::Message { msg_id, .. } => Some(msg_id),
            _ => None,
        }
    }
}

/// How a mark is drawn. Points sit at `at`; windows, spans and bars run to `until`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Shape {
    /// A band across the lane from `at` to `until` (an invisible window).
    Window,
    /// A bar from `at` to `until` with end caps (a listener run, an offset update).
    Span,
    Circle,
    /// A smaller circle (an ack merged in the CK buffer, an ack record).
    Dot,
    Square,
    Diamond,
    /// A triangle pointing right (revive).
    Arrow,
    /// A triangle pointing down (changeInvisibleTime, reset).
    Down,
    Tick,
    Cross,
    /// A circle with a cross (a produce that failed).
    CrossCircle,
    /// A line across every lane (crash, restart).
    Rule,
    /// A histogram bar in a summary lane.
    Bar,
}

impl Shape {
    /// Points stack in rows; spans stack in rows of their own; the rest lie behind them.
    pub fn is_point(self) -> bool {
        !matches!(self, Shape::Window | Shape::Span | Shape::Rule | Shape::Bar)
    }
}

/// Which highlight a mark carries: a witness event, an affected record's event, a note's.
pub(super) const FLAG_WITNESS: u8 = 1;
pub(super) const FLAG_AFFECTED: u8 = 2;
pub(super) const FLAG_NOTE: u8 = 4;

/// What a mark's hover text says.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Title {
    /// The first event's line.
    Event,
    /// A receipt's invisible window; `cit`: the one a changeInvisibleTime set.
    Window { cit: bool },
    /// A listener run: start line, then the finish line if there is one.
    Listener,
    /// An offset update: start line, then the completion line.
    Update,
}

/// What a click highlights with a mark: every mark of its chain (one message as one group
/// saw it: produce, pops, CKs, acks, ack records, revives, retry copies; or one offset
/// call; or the resets of one queue), and every mark of the same event.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(super) enum Chain {
    /// A message lane (by lane id): the message's whole life in that group.
    Lane(usize),
    /// An offset update call (by call number in the history).
    Call(usize),
    /// The reset requests, answers and assignments of one queue lane (by lane id).
    Reset(usize),
}

impl Chain {
    pub fn id(self) -> String {
        match self {
            Chain::Lane(l) => format!("m{l}"),
            Chain::Call(c) => format!("u{c}"),
            Chain::Reset(l) => format!("r{l}"),
        }
    }
}

#[derive(Clone, Debug)]
pub(super) struct Mark {
    /// Index into [`Marks::lanes`].
    pub lane: usize,
    pub shape: Shape,
    pub at: Millis,
    pub until: Millis,
    /// CSS classes, the first naming the glyph (see the legend).
    pub class: &'static str,
    /// History events the mark stands for, the main one first.
    pub events: Vec<usize>,
    pub title: Title,
    pub chain: Option<Chain>,
    pub flags: u8,
}

/// What injured the run for a while, for the overview's shading.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(super) enum FaultKind {
    Crash,
    Clog,
    Pause,
    /// Random packet loss over the network (a rate, not an outage).
    Loss,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) struct FaultSpan {
    pub kind: FaultKind,
    pub from: Millis,
    pub to: Millis,
    pub label: String,
}

/// Every mark of a history, by lane, plus what the overview needs.
pub(super) struct Marks {
    pub lanes: Vec<LaneKey>,
    pub marks: Vec<Mark>,
    pub faults: Vec<FaultSpan>,
    /// Each message's original queue (`topic/queue`), for filters.
    pub origin: BTreeMap<String, String>,
}

/// Event indexes to highlight.
#[derive(Default)]
pub(super) struct Highlights {
    pub witness: BTreeSet<usize>,
    pub affected: BTreeSet<usize>,
    pub note: BTreeSet<usize>,
}

impl Highlights {
    fn flags(&self, events: &[usize]) -> u8 {
        let mut f = 0;
        for e in events {
            if self.witness.contains(e) {
                f |= FLAG_WITNESS;
            }
            if self.affected.contains(e) {
                f |= FLAG_AFFECTED;
            }
            if self.note.contains(e) {
                f |= FLAG_NOTE;
            }
        }
        f
    }
}

/// A delivery a listener may still start on: (delivery index, reconsumeTimes, popTime,
/// invisible time, started).
type Pending = (usize, u32, Millis, Millis, bool);

/// A listener run not finished yet: (start index, start time, delivery index, receipt
/// deadline).
type Run = (usize, Millis, usize, Millis);

struct Builder<'h> {
    h: &'h History,
    hl: &'h Highlights,
    out: Marks,
    lane_index: LookupMap<LaneKey, usize>,
    /// (topic, queue, offset) → the message stored there, learnt from produces, deliveries
    /// and revives.
    by_offset: LookupMap<(&'h str, u32, u64), &'h str>,
    groups_of_topic: BTreeMap<&'h str, Vec<&'h str>>,
    /// (consumer, msg) → deliveries not yet started.
    pending: LookupMap<(&'h str, &'h str), Vec<Pending>>,
    /// (consumer, msg) → listener runs not yet finished.
    runs: LookupMap<(&'h str, &'h str), Vec<Run>>,
    /// (group, receipt) → the ack sent with it, waiting for its answer.
    acks_sent: LookupMap<(&'h str, &'h str), usize>,
    /// (group, receipt) → the mark of its invisible window, so a changeInvisibleTime can
    /// end it.
    windows: LookupMap<(&'h str, &'h str), usize>,
    /// (client, call id) → (mark of the start, start index, start time, call number).
    updates: LookupMap<(&'h str, u64), (usize, usize, Millis, usize)>,
    calls: usize,
    /// Open fault intervals by what they hold (node or "loss"), with their start.
    open_faults: BTreeMap<(FaultKind, String), (Millis, String)>,
}

impl<'h> Builder<'h> {
    fn lane(&mut self, key: LaneKey) -> usize {
        if let Some(i) = self.lane_index.get(&key) {
            return *i;
        }
        self.out.lanes.push(key.clone());
        self.lane_index.insert(key, self.out.lanes.len() - 1);
        self.out.lanes.len() - 1
    }

    fn msg_lane(&mut self, msg_id: &str, group: Option<&str>) -> usize {
        self.lane(LaneKey::Message {
            msg_id: msg_id.to_owned(),
            group: group.map(str::to_owned),
        })
    }

    fn queue_lane(&mut self, group: &str, topic: &str, queue_id: Option<u32>) -> usize {
        self.lane(LaneKey::Queue {
            group: group.to_owned(),
            topic: topic.to_owned(),
            queue_id,
        })
    }

    /// Adds a mark and returns its index.
    #[allow(clippy::too_many_arguments)]
    fn mark(
        &mut self,
        lane: usize,
        shape: Shape,
        at: Millis,
        until: Millis,
        class: &'static str,
        events: Vec<usize>,
        title: Title,
        chain: Option<Chain>,
    ) -> usize {
        let flags = self.hl.flags(&events);
        self.out.marks.push(Mark {
            lane,
            shape,
            at,
            until,
            class,
            events,
            title,
            chain,
            flags,
        });
        self.out.marks.len() - 1
    }

    /// A point mark on a message lane, in that lane's chain.
    fn on_msg(
        &mut self,
        msg: &str,
        group: &str,
        shape: Shape,
        at: Millis,
        class: &'static str,
        idx: usize,
    ) {
        let lane = self.msg_lane(msg, Some(group));
        self.mark(
            lane,
            shape,
            at,
            at,
            class,
            vec![idx],
            Title::Event,
            Some(Chain::Lane(lane)),
        );
    }

    fn cluster(&mut self, shape: Shape, at: Millis, class: &'static str, idx: usize) {
        let lane = self.lane(LaneKey::Cluster);
        self.mark(lane, shape, at, at, class, vec![idx], Title::Event, None);
    }

    fn learn(&mut self, topic: &'h str, queue: u32, offset: u64, msg: &'h str) {
        self.by_offset.entry((topic, queue, offset)).or_insert(msg);
    }

    fn event(&mut self, idx: usize) {
        use EventKind as K;
        let h = self.h;
        let e = &h.events[idx];
        let at = e.at;
        match &e.kind {
            K::Produced {
                msg_id,
                topic,
                queue_id,
                queue_offset,
                ..
            } => {
                self.learn(topic, *queue_id, *queue_offset, msg_id);
                let groups = self.groups_of_topic.get(topic.as_str()).cloned();
                match groups {
                    Some(groups) => {
                        for g in groups {
                            self.on_msg(msg_id, g, Shape::Circle, at, "produce", idx);
                        }
                    }
                    None => {
                        let lane = self.msg_lane(msg_id, None);
                        self.mark(
                            lane,
                            Shape::Circle,
                            at,
                            at,
                            "produce",
                            vec![idx],
                            Title::Event,
                            Some(Chain::Lane(lane)),
                        );
                    }
                }
            }
            K::ProduceFailed { msg_id, .. } => {
                let lane = self.msg_lane(msg_id, None);
                self.mark(
                    lane,
                    Shape::CrossCircle,
                    at,
                    at,
                    "produce-failed",
                    vec![idx],
                    Title::Event,
                    Some(Chain::Lane(lane)),
                );
            }
            K::Delivered {
                consumer,
                group,
                msg_id,
                topic,
                queue_id,
                queue_offset,
                retry_topic,
                reconsume_times,
                pop_time,
                invisible_time,
                receipt,
                ..
            } => {
                self.learn(
                    retry_topic.as_deref().unwrap_or(topic),
                    *queue_id,
                    *queue_offset,
                    msg_id,
                );
                let lane = self.msg_lane(msg_id, Some(group));
                let retry = retry_topic.is_some();
                let w = self.mark(
                    lane,
                    Shape::Window,
                    *pop_time,
                    pop_time + invisible_time,
                    if retry { "win retry" } else { "win" },
                    vec![idx],
                    Title::Window { cit: false },
                    Some(Chain::Lane(lane)),
                );
                self.windows.insert((group, receipt), w);
                self.mark(
                    lane,
                    Shape::Tick,
                    at,
                    at,
                    if retry { "pop retry" } else { "pop" },
                    vec![idx],
                    Title::Event,
                    Some(Chain::Lane(lane)),
                );
                self.pending.entry((consumer, msg_id)).or_default().push((
                    idx,
                    *reconsume_times,
                    *pop_time,
                    *invisible_time,
                    false,
                ));
            }
            K::SkippedOnReceipt { group, msg_id, .. } => {
                self.on_msg(msg_id, group, Shape::Cross, at, "skip", idx);
            }
            K::ListenerStarted {
                consumer,
                msg_id,
                reconsume_times,
                ..
            } => {
                // Pair with the latest delivery of this copy to this consumer that no run
                // has taken yet: that delivery's receipt is the one the listener holds.
                let key = (consumer.as_str(), msg_id.as_str());
                let pending = self.pending.entry(key).or_default();
                let pos = (pending
                    .iter()
                    .rposition(|p| !p.4 && p.1 == *reconsume_times))
                .or_else(|| pending.iter().rposition(|p| !p.4));
                let (delivery, deadline) = match pos {
                    Some(p) => {
                        let p = &mut pending[p];
                        p.4 = true;
                        (p.0, p.2 + p.3)
                    }
                    None => (idx, Millis::MAX),
                };
                self.runs
                    .entry(key)
                    .or_default()
                    .push((idx, at, delivery, deadline));
            }
            K::ListenerFinished {
                consumer,
                group,
                msg_id,
                outcome,
                pop_timed_out,
            } => {
                // The client says whether its receipt had lapsed: of the runs in progress,
                // the oldest whose receipt agrees is the one that finished.
                let key = (consumer.as_str(), msg_id.as_str());
                let runs = self.runs.entry(key).or_default();
                let pos = runs
                    .iter()
                    .position(|r| (at >= r.3) == *pop_timed_out)
                    .or(if runs.is_empty() { None } else { Some(0) });
                let (start_idx, start, _, _) = match pos {
                    Some(p) => runs.remove(p),
                    None => (idx, at, idx, at),
                };
                let class = match (outcome, pop_timed_out) {
                    (_, true) => "listen late",
                    (ConsumeOutcome::Success, false) => "listen",
                    (ConsumeOutcome::Failure, false) => "listen bad",
                };
                let lane = self.msg_lane(msg_id, Some(group));
                let events = if start_idx == idx {
                    vec![idx]
                } else {
                    vec![start_idx, idx]
                };
                self.mark(
                    lane,
                    Shape::Span,
                    start,
                    at,
                    class,
                    events,
                    Title::Listener,
                    Some(Chain::Lane(lane)),
                );
            }
            K::AckSent { group, receipt, .. } => {
                self.acks_sent.insert((group, receipt), idx);
            }
            K::AckResult {
                group,
                msg_id,
                receipt,
                outcome,
                ..
            } => {
                let class = match outcome {
                    o if is_success(o) => "ack",
                    RpcOutcome::Timeout => "ack timeout",
                    RpcOutcome::Answered { .. } => "ack bad",
                };
                // The diamond stands for the request and its answer.
                let mut events = vec![idx];
                events.extend(self.acks_sent.remove(&(group.as_str(), receipt.as_str())));
                let lane = self.msg_lane(msg_id, Some(group));
                self.mark(
                    lane,
                    Shape::Diamond,
                    at,
                    at,
                    class,
                    events,
                    Title::Event,
                    Some(Chain::Lane(lane)),
                );
            }
            K::ChangeInvisibleResult {
                group,
                msg_id,
                receipt,
                invisible_time,
                new_receipt,
                outcome,
                ..
            } => {
                let lane = self.msg_lane(msg_id, Some(group));
                if let (Some(new), true) = (new_receipt, is_success(outcome)) {
                    // The old receipt's CK is acked: its window ends here.
                    if let Some(old) = self.windows.remove(&(group.as_str(), receipt.as_str())) {
                        let m = &mut self.out.marks[old];
                        m.until = m.until.min(at).max(m.at);
                    }
                    let w = self.mark(
                        lane,
                        Shape::Window,
                        at,
                        at + invisible_time,
                        "win cit",
                        vec![idx],
                        Title::Window { cit: true },
                        Some(Chain::Lane(lane)),
                    );
                    self.windows.insert((group, new), w);
                }
                let class = if is_success(outcome) {
                    "cit"
                } else {
                    "cit bad"
                };
                self.mark(
                    lane,
                    Shape::Down,
                    at,
                    at,
                    class,
                    vec![idx],
                    Title::Event,
                    Some(Chain::Lane(lane)),
                );
            }
            K::SentToDlq { group, msg_id, .. } | K::DlqWritten { group, msg_id, .. } => {
                self.on_msg(msg_id, group, Shape::Square, at, "dlq", idx);
            }
            // The renewal's changeInvisibleTime, just before, has its mark.
            K::HandleRenewed { .. } => {}
            // The call that follows, on the same node, has its mark.
            K::HandleRedirected { .. } => {}
            // An ack the proxy never sent: a failed ack's diamond.
            K::ForwardAckRefused { group, msg_id, .. } => {
                self.on_msg(msg_id, group, Shape::Diamond, at, "ack bad", idx);
            }
            K::OffsetUpdateStarted {
                client,
                call_id,
                group,
                topic,
                queue_id,
                ..
            } => {
                let q = queue_id.and_then(|q| u32::try_from(q).ok());
                let lane = self.queue_lane(group, topic, q);
                self.calls += 1;
                let call = self.calls;
                let m = self.mark(
                    lane,
                    Shape::Span,
                    at,
                    at,
                    "upd open",
                    vec![idx],
                    Title::Update,
                    Some(Chain::Call(call)),
                );
                self.updates.insert((client, *call_id), (m, idx, at, call));
            }
            K::OffsetUpdateCompleted {
                client,
                call_id,
                caller_sees_success,
                outcome,
            } => {
                let ok = outcome.as_ref().is_none_or(is_success);
                let class = match (caller_sees_success, ok) {
                    (true, true) => "upd",
                    (true, false) => "upd false",
                    (false, _) => "upd bad",
                };
                match self.updates.remove(&(client.as_str(), *call_id)) {
                    Some((m, start_idx, _, _)) => {
                        let m = &mut self.out.marks[m];
                        m.until = at;
                        m.class = class;
                        m.events = vec![start_idx, idx];
                        m.flags = self.hl.flags(&m.events);
                    }
                    None => self.cluster(Shape::Tick, at, "upd", idx),
                }
            }
            K::ResetRequested {
                group,
                topic,
                queue_id,
                ..
            }
            | K::ResetResult {
                group,
                topic,
                queue_id,
                ..
            } => {
                let lane = self.queue_lane(group, topic, u32::try_from(*queue_id).ok());
                self.mark(
                    lane,
                    Shape::Down,
                    at,
                    at,
                    "reset",
                    vec![idx],
                    Title::Event,
                    Some(Chain::Reset(lane)),
                );
            }
            // A gRPC client's call to the proxy: on its message's lane when it names one; a
            // receive only when a verdict cites it.
            K::GrpcCall {
                group,
                msg_id: Some(msg_id),
                ..
            } => self.on_msg(msg_id, group, Shape::Dot, at, "client", idx),
            K::GrpcCall { msg_id: None, .. } | K::ProxyPopped { .. } => {
                if self.hl.flags(&[idx]) != 0 {
                    self.cluster(Shape::Tick, at, "client", idx);
                }
            }
            K::ConsumerStarted { .. } => self.cluster(Shape::Tick, at, "client", idx),
            K::ConsumerStopped { .. } => self.cluster(Shape::Tick, at, "client stop", idx),
            K::Fault { description } => {
                self.fault(description, at);
                self.cluster(Shape::Cross, at, "fault", idx);
            }
            K::Broker(b) => self.broker(b, at, idx),
        }
    }

    fn broker(&mut self, b: &'h BrokerEvent, at: Millis, idx: usize) {
        use BrokerEvent as B;
        match b {
            B::CkBuffered { ck, .. } | B::CkWritten { ck, .. } => {
                let class = if matches!(b, B::CkBuffered { .. }) {
                    "ckbuf"
                } else {
                    "ck"
                };
                for off in ck.start_offset..ck.start_offset + u64::from(ck.num) {
                    if let Some(m) = self.by_offset.get(&(ck.topic.as_str(), ck.queue_id, off)) {
                        let m = *m;
                        self.on_msg(m, &ck.group, Shape::Square, at, class, idx);
                    }
                }
            }
            B::AckMergedInBuffer { ck, ack_offset, .. } => {
                if let Some(m) = self
                    .by_offset
                    .get(&(ck.topic.as_str(), ck.queue_id, *ack_offset))
                {
                    let m = *m;
                    self.on_msg(m, &ck.group, Shape::Dot, at, "ackbuf", idx);
                }
            }
            B::AckWritten {
                topic,
                group,
                queue_id,
                ack_offsets,
                broker_name,
                ..
            } => {
                let class = if broker_name.as_deref().unwrap_or("").is_empty() {
                    "ackrec blank"
                } else {
                    "ackrec"
                };
                for off in ack_offsets {
                    if let Some(m) = self.by_offset.get(&(topic.as_str(), *queue_id, *off)) {
                        let m = *m;
                        self.on_msg(m, group, Shape::Dot, at, class, idx);
                    }
                }
            }
            B::Revived {
                group,
                msg_id,
                retry_topic,
                retry_queue_offset,
                ..
            } => {
                // Retry topics have one queue in the model; a pop of the copy confirms it.
                self.learn(retry_topic, 0, *retry_queue_offset, msg_id);
                self.on_msg(msg_id, group, Shape::Arrow, at, "revive", idx);
            }
            // Routine bookkeeping, drawn only when a verdict cites it.
            B::CkDropped {
                ck, queue_offset, ..
            } => {
                if let Some(m) =
                    self.by_offset
                        .get(&(ck.topic.as_str(), ck.queue_id, *queue_offset))
                {
                    let m = *m;
                    self.on_msg(m, &ck.group, Shape::Cross, at, "fault", idx);
                }
            }
            // The reviver's reasoning: shown in witnesses and the detail panel, not drawn.
            B::AckRecordRead { .. } | B::ReviveDecided { .. } => {}
            B::StorePutFailed { .. }
            | B::MessagesExpired { .. }
            | B::TimerRecordDiscarded { .. } => {
                if self.hl.flags(&[idx]) != 0 {
                    self.cluster(Shape::Cross, at, "fault", idx);
                }
            }
            B::ReviveOffsetCommitted { .. }
            | B::OffsetsPersisted { .. }
            | B::OrderInfoPersisted { .. } => {
                if self.hl.flags(&[idx]) != 0 {
                    let class =
                        if matches!(b, B::OffsetsPersisted { .. } | B::OrderInfoPersisted { .. }) {
                            "persist"
                        } else {
                            "revive-commit"
                        };
                    self.cluster(Shape::Tick, at, class, idx);
                }
            }
            B::OffsetCommitted {
                group,
                topic,
                queue_id,
                ..
            }
            | B::PullOffsetCommitted {
                group,
                topic,
                queue_id,
                ..
            } => {
                let lane = self.queue_lane(group, topic, Some(*queue_id));
                self.mark(
                    lane,
                    Shape::Tick,
                    at,
                    at,
                    "commit",
                    vec![idx],
                    Title::Event,
                    None,
                );
            }
            B::PullOffsetCleared { group, topic, .. } => {
                let lane = self.queue_lane(group, topic, None);
                self.mark(
                    lane,
                    Shape::Tick,
                    at,
                    at,
                    "reset",
                    vec![idx],
                    Title::Event,
                    Some(Chain::Reset(lane)),
                );
            }
            B::ResetAssigned {
                group,
                topic,
                queue_id,
                ..
            }
            | B::ResetConsumed {
                group,
                topic,
                queue_id,
                ..
            } => {
                let lane = self.queue_lane(group, topic, Some(*queue_id));
                self.mark(
                    lane,
                    Shape::Down,
                    at,
                    at,
                    "reset",
                    vec![idx],
                    Title::Event,
                    Some(Chain::Reset(lane)),
                );
            }
            // A pop's read: drawn on its queue only when a verdict cites it.
            B::PopRead {
                group,
                topic,
                queue_id,
                ..
            } => {
                if self.hl.flags(&[idx]) != 0 {
                    let lane = self.queue_lane(group, topic, Some(*queue_id));
                    self.mark(
                        lane,
                        Shape::Tick,
                        at,
                        at,
                        "commit",
                        vec![idx],
                        Title::Event,
                        None,
                    );
                }
            }
            B::LockReleasedByOther { .. } => {
                if self.hl.flags(&[idx]) != 0 {
                    self.cluster(Shape::Tick, at, "commit", idx);
                }
            }
            // Long polling: a park and its wake, on the pop's queue (every queue: the
            // group's topic lane) only when a verdict cites them.
            B::PopParked {
                group,
                topic,
                queue_id,
                ..
            }
            | B::PopWoken {
                group,
                topic,
                queue_id,
                ..
            } => {
                if self.hl.flags(&[idx]) != 0 {
                    let lane = self.queue_lane(group, topic, u32::try_from(*queue_id).ok());
                    self.mark(
                        lane,
                        Shape::Tick,
                        at,
                        at,
                        "commit",
                        vec![idx],
                        Title::Event,
                        None,
                    );
                }
            }
            // Never in a history: the recorder turns it into the top-level `DlqWritten`.
            B::DlqWritten { .. } => {}
            B::AckLostOnDroppedCk {
                group,
                topic,
                queue_id,
                ack_offset,
                ..
            } => {
                if let Some(m) = self
                    .by_offset
                    .get(&(topic.as_str(), *queue_id, *ack_offset))
                {
                    let m = *m;
                    self.on_msg(m, group, Shape::Dot, at, "ackbuf", idx);
                }
            }
            B::Crashed { graceful, .. } => {
                let label = if *graceful {
                    "broker shut down"
                } else {
                    "broker down"
                };
                self.open_faults
                    .insert((FaultKind::Crash, String::new()), (at, label.into()));
                self.cluster(Shape::Rule, at, "crash", idx);
            }
            B::Restarted { .. } => {
                self.close_fault(FaultKind::Crash, String::new(), at);
                self.cluster(Shape::Rule, at, "restart", idx);
            }
        }
    }

    /// Opens or closes a fault interval from a fault's description (`clog NODE (…)`,
    /// `unclog NODE (…)`, `pause NODE for N ms (…)`, `resume NODE (…)`, `packet loss R (…)`).
    /// Crashes come from the broker's own events.
    fn fault(&mut self, description: &str, at: Millis) {
        let words: Vec<&str> = description.split_whitespace().collect();
        match words.as_slice() {
            ["clog", node, ..] => {
                self.open_faults.insert(
                    (FaultKind::Clog, (*node).to_owned()),
                    (at, format!("{node} clogged")),
                );
            }
            ["unclog", node, ..] => self.close_fault(FaultKind::Clog, (*node).to_owned(), at),
            ["pause", node, ..] => {
                self.open_faults.insert(
                    (FaultKind::Pause, (*node).to_owned()),
                    (at, format!("{node} paused")),
                );
            }
            ["resume", node, ..] => self.close_fault(FaultKind::Pause, (*node).to_owned(), at),
            ["packet", "loss", rate, ..] => {
                self.close_fault(FaultKind::Loss, String::new(), at);
                if rate.parse::<f64>().is_ok_and(|r| r > 0.0) {
                    self.open_faults.insert(
                        (FaultKind::Loss, String::new()),
                        (at, format!("packet loss {rate}")),
                    );
                }
            }
            _ => {}
        }
    }

    fn close_fault(&mut self, kind: FaultKind, what: String, at: Millis) {
        if let Some((from, label)) = self.open_faults.remove(&(kind, what)) {
            self.out.faults.push(FaultSpan {
                kind,
                from,
                to: at,
                label,
            });
        }
    }

    fn finish(mut self) -> Marks {
        let meta = &self.h.meta;
        let end = self.h.events.last().map_or(0, |e| e.at).max(meta.end_at);
        // Listener runs the run ended (or a crash cut) before they finished.
        let mut open: Vec<(usize, Millis)> =
            (self.runs.values().flatten()).map(|r| (r.0, r.1)).collect();
        open.sort_unstable();
        for (start_idx, start) in open {
            if let EventKind::ListenerStarted { group, msg_id, .. } = &self.h.events[start_idx].kind
            {
                let lane = self.msg_lane(msg_id, Some(group));
                self.mark(
                    lane,
                    Shape::Span,
                    start,
                    end,
                    "listen open",
                    vec![start_idx],
                    Title::Listener,
                    Some(Chain::Lane(lane)),
                );
            }
        }
        // Offset updates that never completed run to the end.
        for (m, _, _, _) in self.updates.values() {
            self.out.marks[*m].until = end;
        }
        // Faults still in force at the end healed when the quiet period began.
        let heal = meta.quiet_from.max(1).min(end);
        for ((kind, _), (from, label)) in std::mem::take(&mut self.open_faults) {
            self.out.faults.push(FaultSpan {
                kind,
                from,
                to: heal.max(from),
                label,
            });
        }
        self.out
            .faults
            .sort_by(|a, b| (a.from, a.kind, &a.label).cmp(&(b.from, b.kind, &b.label)));
        self.out
    }
}

/// Every mark of the history.
pub(super) fn build(h: &History, hl: &Highlights) -> Marks {
    let mut groups_of_topic: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
    for c in &h.meta.consumers {
        let gs = groups_of_topic.entry(c.topic.as_str()).or_default();
        if !gs.contains(&c.group.as_str()) {
            gs.push(c.group.as_str());
        }
    }
    let origin = crate::invariants::index::origins(h)
        .into_iter()
        .map(|(m, o)| (m.to_owned(), format!("{}/{}", o.topic, o.queue)))
        .collect();
    let mut b = Builder {
        h,
        hl,
        out: Marks {
            lanes: Vec::new(),
            marks: Vec::with_capacity(h.events.len()),
            faults: Vec::new(),
            origin,
        },
        lane_index: LookupMap::default(),
        by_offset: LookupMap::default(),
        groups_of_topic,
        pending: LookupMap::default(),
        runs: LookupMap::default(),
        acks_sent: LookupMap::default(),
        windows: LookupMap::default(),
        updates: LookupMap::default(),
        calls: 0,
        open_faults: BTreeMap::new(),
    };
    b.lane(LaneKey::Cluster);
    for i in 0..h.events.len() {
        b.event(i);
    }
    b.finish()
}

/// A mark's hover text.
pub(super) fn title(h: &History, m: &Mark) -> String {
    let line = |i: usize| h.events.get(i).map(event_line).unwrap_or_default();
    let first = m.events.first().copied().unwrap_or(usize::MAX);
    match m.title {
        Title::Event => line(first),
        Title::Window { cit } => format!(
            "invisible window {}..{} {}: {}",
            secs(m.at),
            secs(m.until),
            if cit {
                "after changeInvisibleTime"
            } else {
                "of this pop"
            },
            line(first)
        ),
        Title::Listener => {
            let mut t = format!(
                "listener {}..{} ({}): {}",
                secs(m.at),
                secs(m.until),
                secs(m.until - m.at),
                line(first)
            );
            match m.events.get(1) {
                Some(f) => {
                    t.push_str(" | ");
                    t.push_str(&line(*f));
                }
                None if m.class.contains("open") => t.push_str(" | still running at the end"),
                None => {}
            }
            t
        }
        Title::Update => {
            let mut t = line(first);
            match m.events.get(1) {
                Some(f) => {
                    t.push_str(" | ");
                    t.push_str(&line(*f));
                }
                None => t.push_str(" | never completed"),
            }
            t
        }
    }
}
