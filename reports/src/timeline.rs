//! The HTML timeline: one self-contained file (inline SVG and CSS, no script, no network
//! access) that draws a run's history on a virtual-time axis.
//!
//! Lanes: one for the cluster (crashes, restarts, faults, consumers starting and stopping),
//! one per consumer-offset queue (`group · topic/queue`: commits, resets, offset updates),
//! and one per message and group (produce, each pop with its invisible window, the listener,
//! acks, changeInvisibleTime, the CK and ack records, revive to retry, DLQ). Witness events
//! of violated invariants are drawn in red and their lanes shaded. Every mark has a
//! `<title>` (the hover text) with the event's full description.
//!
//! The markup is well-formed XHTML (the tests parse it as XML), and every string that can
//! come from a scenario file goes through [`escape`]. The output depends only on the
//! history and the results, so the same seed gives the same file byte for byte.

use crate::describe::event_line;
use crate::history::{Event, EventKind, History, RpcOutcome};
use crate::invariants::index::{is_success, secs};
use crate::invariants::{InvariantResult, Status};
use broker_core::{BrokerEvent, Millis};
use std::collections::{BTreeSet, HashMap};
use std::fmt::Write as _;

/// At most this many message lanes are drawn (witness messages first, then in order of
/// first appearance); the file says how many were left out. Keeps the SVG small enough for
/// a browser on long random runs.
pub const MAX_MESSAGE_LANES: usize = 150;
/// At most this many queue lanes are drawn.
pub const MAX_QUEUE_LANES: usize = 40;
/// At most this many marks (points, windows, lines) are drawn, in history order.
pub const MAX_MARKS: usize = 20_000;

const LABEL_W: f64 = 230.0;
const PLOT_W: f64 = 1100.0;
const LANE_H: f64 = 20.0;
const AXIS_H: f64 = 28.0;
const PAD_R: f64 = 20.0;

/// Escapes text for XML/HTML element content and attribute values. Characters XML 1.0
/// cannot carry at all (most C0 controls) become U+FFFD, so the file always parses.
pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            '\t' | '\n' | '\r' => out.push(c),
            c if (c as u32) < 0x20 || c == '\u{FFFE}' || c == '\u{FFFF}' => out.push('\u{FFFD}'),
            c => out.push(c),
        }
    }
    out
}

#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
enum LaneKey {
    Cluster,
    Queue {
        group: String,
        topic: String,
        queue_id: Option<u32>,
    },
    Message {
        msg_id: String,
        group: Option<String>,
    },
}

impl LaneKey {
    fn label(&self) -> String {
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
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Shape {
    /// A band from `at` to `until` (an invisible window).
    Window,
    /// A line from `at` to `until` in the lane's middle (the listener, an offset update).
    Span,
    Circle,
    Square,
    Diamond,
    /// A triangle pointing right (revive).
    Arrow,
    /// A triangle pointing down (changeInvisibleTime, reset).
    Down,
    Tick,
    Cross,
    /// A line across every lane (crash, restart).
    Rule,
}

#[derive(Clone, Debug)]
struct Mark {
    lane: usize,
    shape: Shape,
    at: Millis,
    until: Millis,
    class: &'static str,
    title: String,
    witness: bool,
}

/// Lanes and marks, built in one pass over the history.
struct Plot {
    lanes: Vec<LaneKey>,
    lane_index: HashMap<LaneKey, usize>,
    /// Lanes holding a witness event.
    hot: BTreeSet<usize>,
    marks: Vec<Mark>,
    dropped_marks: usize,
    /// Message lanes left out by [`MAX_MESSAGE_LANES`]; queue lanes by [`MAX_QUEUE_LANES`].
    dropped_messages: BTreeSet<LaneKey>,
    dropped_queues: BTreeSet<String>,
}

impl Plot {
    fn lane(&mut self, key: LaneKey) -> Option<usize> {
        if let Some(i) = self.lane_index.get(&key) {
            return Some(*i);
        }
        let (count, cap) = match &key {
            LaneKey::Cluster => (0, usize::MAX),
            LaneKey::Queue { .. } => (
                self.lanes
                    .iter()
                    .filter(|l| matches!(l, LaneKey::Queue { .. }))
                    .count(),
                MAX_QUEUE_LANES,
            ),
            LaneKey::Message { .. } => (
                self.lanes
                    .iter()
                    .filter(|l| matches!(l, LaneKey::Message { .. }))
                    .count(),
                MAX_MESSAGE_LANES,
            ),
        };
        if count >= cap {
            match &key {
                LaneKey::Queue { .. } => {
                    self.dropped_queues.insert(key.label());
                }
                _ => {
                    self.dropped_messages.insert(key);
                }
            }
            return None;
        }
        self.lanes.push(key.clone());
        self.lane_index.insert(key, self.lanes.len() - 1);
        Some(self.lanes.len() - 1)
    }

    #[allow(clippy::too_many_arguments)]
    fn mark(
        &mut self,
        key: LaneKey,
        shape: Shape,
        at: Millis,
        until: Millis,
        class: &'static str,
        title: String,
        witness: bool,
    ) {
        let Some(lane) = self.lane(key) else { return };
        if self.marks.len() >= MAX_MARKS {
            self.dropped_marks += 1;
            return;
        }
        if witness {
            self.hot.insert(lane);
        }
        self.marks.push(Mark {
            lane,
            shape,
            at,
            until,
            class,
            title,
            witness,
        });
    }
}

/// Which (group, msg) lanes a (topic, queue, offset) belongs to, learnt from produces,
/// deliveries and revives as the history goes.
#[derive(Default)]
struct Offsets {
    by_queue_offset: HashMap<(String, u32, u64), String>,
}

impl Offsets {
    fn learn(&mut self, topic: &str, queue_id: u32, offset: u64, msg_id: &str) {
        self.by_queue_offset
            .entry((topic.to_owned(), queue_id, offset))
            .or_insert_with(|| msg_id.to_owned());
    }

    fn msg(&self, topic: &str, queue_id: u32, offset: u64) -> Option<&String> {
        self.by_queue_offset
            .get(&(topic.to_owned(), queue_id, offset))
    }
}

fn msg_lane(msg_id: &str, group: &str) -> LaneKey {
    LaneKey::Message {
        msg_id: msg_id.to_owned(),
        group: Some(group.to_owned()),
    }
}

fn queue_lane(group: &str, topic: &str, queue_id: Option<u32>) -> LaneKey {
    LaneKey::Queue {
        group: group.to_owned(),
        topic: topic.to_owned(),
        queue_id,
    }
}

/// Message lanes that hold a witness event: they are laid out first so a cap never hides them.
fn witness_lanes(history: &History, witness: &BTreeSet<usize>) -> Vec<LaneKey> {
    let mut out = Vec::new();
    for &i in witness {
        let Some(e) = history.events.get(i) else {
            continue;
        };
        let key = match &e.kind {
            EventKind::Delivered { msg_id, group, .. }
            | EventKind::SkippedOnReceipt { msg_id, group, .. }
            | EventKind::ListenerStarted { msg_id, group, .. }
            | EventKind::ListenerFinished { msg_id, group, .. }
            | EventKind::AckSent { msg_id, group, .. }
            | EventKind::AckResult { msg_id, group, .. }
            | EventKind::ChangeInvisibleResult { msg_id, group, .. }
            | EventKind::SentToDlq { msg_id, group, .. }
            | EventKind::Broker(BrokerEvent::Revived { msg_id, group, .. }) => {
                msg_lane(msg_id, group)
            }
            _ => continue,
        };
        if !out.contains(&key) {
            out.push(key);
        }
    }
    out
}

fn build(history: &History, witness: &BTreeSet<usize>) -> Plot {
    let mut p = Plot {
        lanes: Vec::new(),
        lane_index: HashMap::new(),
        hot: BTreeSet::new(),
        marks: Vec::new(),
        dropped_marks: 0,
        dropped_messages: BTreeSet::new(),
        dropped_queues: BTreeSet::new(),
    };
    p.lane(LaneKey::Cluster);
    for key in witness_lanes(history, witness) {
        p.lane(key);
    }
    let mut offsets = Offsets::default();
    // Groups that consume each topic, so a produce shows on every group's lane of the message.
    let mut groups_of_topic: HashMap<&str, Vec<&str>> = HashMap::new();
    for c in &history.meta.consumers {
        let gs = groups_of_topic.entry(c.topic.as_str()).or_default();
        if !gs.contains(&c.group.as_str()) {
            gs.push(c.group.as_str());
        }
    }
    let mut listener_start: HashMap<(&str, &str), Millis> = HashMap::new();
    let mut update_start: HashMap<(&str, u64), (LaneKey, Millis)> = HashMap::new();
    for (i, e) in history.events.iter().enumerate() {
        let w = witness.contains(&i);
        let title = event_line(e);
        event_marks(
            &mut p,
            e,
            title,
            w,
            &mut offsets,
            &groups_of_topic,
            &mut listener_start,
            &mut update_start,
        );
    }
    p
}

#[allow(clippy::too_many_arguments)]
fn event_marks<'h>(
    p: &mut Plot,
    e: &'h Event,
    title: String,
    w: bool,
    offsets: &mut Offsets,
    groups_of_topic: &HashMap<&str, Vec<&str>>,
    listener_start: &mut HashMap<(&'h str, &'h str), Millis>,
    update_start: &mut HashMap<(&'h str, u64), (LaneKey, Millis)>,
) {
    use EventKind as K;
    let at = e.at;
    match &e.kind {
        K::Produced {
            msg_id,
            topic,
            queue_id,
            queue_offset,
            ..
        } => {
            offsets.learn(topic, *queue_id, *queue_offset, msg_id);
            match groups_of_topic.get(topic.as_str()) {
                Some(groups) => {
                    for g in groups {
                        p.mark(
                            msg_lane(msg_id, g),
                            Shape::Circle,
                            at,
                            at,
                            "produce",
                            title.clone(),
                            w,
                        );
                    }
                }
                None => {
                    let key = LaneKey::Message {
                        msg_id: msg_id.clone(),
                        group: None,
                    };
                    p.mark(key, Shape::Circle, at, at, "produce", title, w);
                }
            }
        }
        K::ProduceFailed { msg_id, .. } => {
            let key = LaneKey::Message {
                msg_id: msg_id.clone(),
                group: None,
            };
            p.mark(key, Shape::Cross, at, at, "bad", title, w);
        }
        K::Delivered {
            group,
            msg_id,
            topic,
            queue_id,
            queue_offset,
            retry_topic,
            pop_time,
            invisible_time,
            ..
        } => {
            offsets.learn(
                retry_topic.as_deref().unwrap_or(topic),
                *queue_id,
                *queue_offset,
                msg_id,
            );
            let key = msg_lane(msg_id, group);
            let (win, pop) = if retry_topic.is_some() {
                ("win retry", "pop retry")
            } else {
                ("win", "pop")
            };
            let until = pop_time + invisible_time;
            let wt = format!(
                "invisible window {}..{} of this pop: {title}",
                secs(*pop_time),
                secs(until)
            );
            p.mark(key.clone(), Shape::Window, *pop_time, until, win, wt, w);
            p.mark(key, Shape::Tick, at, at, pop, title, w);
        }
        K::SkippedOnReceipt { group, msg_id, .. } => {
            p.mark(
                msg_lane(msg_id, group),
                Shape::Cross,
                at,
                at,
                "skip",
                title,
                w,
            );
        }
        K::ListenerStarted {
            consumer, msg_id, ..
        } => {
            listener_start.insert((consumer, msg_id), at);
        }
        K::ListenerFinished {
            consumer,
            group,
            msg_id,
            outcome,
            ..
        } => {
            let start = listener_start
                .remove(&(consumer.as_str(), msg_id.as_str()))
                .unwrap_or(at);
            let class = match outcome {
                crate::history::ConsumeOutcome::Success => "listen",
                crate::history::ConsumeOutcome::Failure => "listen bad",
            };
            p.mark(
                msg_lane(msg_id, group),
                Shape::Span,
                start,
                at,
                class,
                title,
                w,
            );
        }
        K::AckSent { .. } => {}
        K::AckResult {
            group,
            msg_id,
            outcome,
            ..
        } => {
            let class = if is_success(outcome) {
                "ack"
            } else {
                "ack bad"
            };
            p.mark(
                msg_lane(msg_id, group),
                Shape::Diamond,
                at,
                at,
                class,
                title,
                w,
            );
        }
        K::ChangeInvisibleResult {
            group,
            msg_id,
            invisible_time,
            new_receipt,
            outcome,
            ..
        } => {
            let key = msg_lane(msg_id, group);
            if new_receipt.is_some() && matches!(outcome, RpcOutcome::Answered { .. }) {
                let wt = format!(
                    "invisible window {}..{} after changeInvisibleTime: {title}",
                    secs(at),
                    secs(at + invisible_time)
                );
                p.mark(
                    key.clone(),
                    Shape::Window,
                    at,
                    at + invisible_time,
                    "win cit",
                    wt,
                    w,
                );
            }
            p.mark(key, Shape::Down, at, at, "cit", title, w);
        }
        K::SentToDlq { group, msg_id, .. } => {
            p.mark(
                msg_lane(msg_id, group),
                Shape::Square,
                at,
                at,
                "dlq",
                title,
                w,
            );
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
            let key = queue_lane(group, topic, q);
            update_start.insert((client, *call_id), (key.clone(), at));
            p.mark(key, Shape::Circle, at, at, "upd", title, w);
        }
        K::OffsetUpdateCompleted {
            client,
            call_id,
            caller_sees_success,
            ..
        } => {
            if let Some((key, start)) = update_start.remove(&(client.as_str(), *call_id)) {
                let class = if *caller_sees_success {
                    "upd"
                } else {
                    "upd bad"
                };
                p.mark(key, Shape::Span, start, at, class, title, w);
            } else {
                p.mark(LaneKey::Cluster, Shape::Tick, at, at, "upd", title, w);
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
            let q = u32::try_from(*queue_id).ok();
            p.mark(
                queue_lane(group, topic, q),
                Shape::Down,
                at,
                at,
                "reset",
                title,
                w,
            );
        }
        K::DlqWritten { .. } => {}
        K::ConsumerStarted { .. } | K::ConsumerStopped { .. } => {
            p.mark(LaneKey::Cluster, Shape::Tick, at, at, "client", title, w);
        }
        K::Fault { .. } => {
            p.mark(LaneKey::Cluster, Shape::Cross, at, at, "fault", title, w);
        }
        K::Broker(b) => broker_marks(p, b, at, title, w, offsets),
    }
}

fn broker_marks(
    p: &mut Plot,
    b: &BrokerEvent,
    at: Millis,
    title: String,
    w: bool,
    offsets: &mut Offsets,
) {
    use BrokerEvent as B;
    match b {
        B::CkBuffered { ck, .. } | B::CkWritten { ck, .. } => {
            let (shape, class) = match b {
                B::CkBuffered { .. } => (Shape::Square, "ckbuf"),
                _ => (Shape::Square, "ck"),
            };
            for off in ck.start_offset..ck.start_offset + u64::from(ck.num) {
                if let Some(m) = offsets.msg(&ck.topic, ck.queue_id, off) {
                    p.mark(
                        msg_lane(m, &ck.group),
                        shape,
                        at,
                        at,
                        class,
                        title.clone(),
                        w,
                    );
                }
            }
        }
        B::AckMergedInBuffer { ck, ack_offset, .. } => {
            if let Some(m) = offsets.msg(&ck.topic, ck.queue_id, *ack_offset) {
                p.mark(
                    msg_lane(m, &ck.group),
                    Shape::Circle,
                    at,
                    at,
                    "ackbuf",
                    title,
                    w,
                );
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
                if let Some(m) = offsets.msg(topic, *queue_id, *off) {
                    p.mark(
                        msg_lane(m, group),
                        Shape::Circle,
                        at,
                        at,
                        class,
                        title.clone(),
                        w,
                    );
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
            offsets.learn(retry_topic, 0, *retry_queue_offset, msg_id);
            p.mark(
                msg_lane(msg_id, group),
                Shape::Arrow,
                at,
                at,
                "revive",
                title,
                w,
            );
        }
        B::ReviveOffsetCommitted { .. } | B::OffsetsPersisted { .. } => {}
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
            p.mark(
                queue_lane(group, topic, Some(*queue_id)),
                Shape::Tick,
                at,
                at,
                "commit",
                title,
                w,
            );
        }
        B::PullOffsetCleared { group, topic, .. } => {
            p.mark(
                queue_lane(group, topic, None),
                Shape::Tick,
                at,
                at,
                "reset",
                title,
                w,
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
            p.mark(
                queue_lane(group, topic, Some(*queue_id)),
                Shape::Down,
                at,
                at,
                "reset",
                title,
                w,
            );
        }
        B::Crashed { .. } => {
            p.mark(LaneKey::Cluster, Shape::Rule, at, at, "crash", title, w);
        }
        B::Restarted { .. } => {
            p.mark(LaneKey::Cluster, Shape::Rule, at, at, "restart", title, w);
        }
    }
}

/// A tick step of 1, 2 or 5 × 10^k ms giving at most about 12 ticks.
fn tick_step(end: Millis) -> Millis {
    let mut step = 1;
    loop {
        for m in [1, 2, 5] {
            if end / (step * m) <= 12 {
                return step * m;
            }
        }
        step *= 10;
    }
}

const STYLE: &str = "
body { font: 13px/1.4 system-ui, sans-serif; margin: 16px; color: #1a202c; }
h1 { font-size: 18px; margin: 0 0 6px; }
p, ul, ol { margin: 4px 0; }
.meta { color: #4a5568; }
.fail { color: #c53030; font-weight: 600; }
.pass { color: #2f855a; font-weight: 600; }
.note { color: #975a16; }
code, .ev { font-family: ui-monospace, monospace; font-size: 12px; }
svg { display: block; margin-top: 8px; }
svg text { font: 11px ui-monospace, monospace; fill: #2d3748; }
svg text.axis { fill: #718096; }
.lane { fill: #ffffff; }
.lane.alt { fill: #f7fafc; }
.lane.hot { fill: #fff5f5; }
text.hot { fill: #c53030; font-weight: 700; }
.grid { stroke: #e2e8f0; stroke-width: 1; }
.quiet { fill: #edf2f7; opacity: 0.6; }
.win { fill: #90cdf4; opacity: 0.45; }
.win.retry { fill: #fbd38d; }
.win.cit { fill: #d6bcfa; }
.pop { fill: #2b6cb0; }
.pop.retry { fill: #c05621; }
.produce { fill: #2c5282; }
.listen { stroke: #4a5568; stroke-width: 3; }
.listen.bad { stroke: #e53e3e; }
.ack { fill: #38a169; }
.ack.bad { fill: #e53e3e; }
.ackbuf { fill: #ffffff; stroke: #38a169; stroke-width: 1.5; }
.ackrec { fill: #319795; }
.ackrec.blank { fill: #ffffff; stroke: #319795; stroke-width: 1.5; stroke-dasharray: 2 1; }
.ckbuf { fill: #ffffff; stroke: #6b46c1; stroke-width: 1.5; }
.ck { fill: #6b46c1; }
.cit { fill: #805ad5; }
.revive { fill: #dd6b20; }
.dlq { fill: #1a202c; }
.skip, .bad { stroke: #718096; stroke-width: 2; }
.fault { stroke: #a0aec0; stroke-width: 2; }
.client { fill: #4a5568; }
.commit { fill: #718096; }
.upd { fill: #2b6cb0; stroke: #2b6cb0; stroke-width: 2; }
.upd.bad { fill: #e53e3e; stroke: #e53e3e; }
.reset { fill: #b83280; }
.crash { stroke: #e53e3e; stroke-width: 2; stroke-dasharray: 6 3; }
.restart { stroke: #38a169; stroke-width: 2; stroke-dasharray: 6 3; }
.w { stroke: #e53e3e; stroke-width: 2.5; }
.win.w { fill: #feb2b2; opacity: 0.7; stroke: #e53e3e; stroke-width: 1; }
";

/// Draws one mark's shape at (x0..x1, lane middle y).
fn shape_svg(m: &Mark, x0: f64, x1: f64, y: f64, top: f64, bottom: f64) -> String {
    let class = if m.witness {
        format!("{} w", m.class)
    } else {
        m.class.to_owned()
    };
    let t = format!("<title>{}</title>", escape(&m.title));
    match m.shape {
        Shape::Window => format!(
            "<rect class=\"{class}\" x=\"{x0:.1}\" y=\"{:.1}\" width=\"{:.1}\" height=\"12\">{t}</rect>",
            y - 6.0,
            (x1 - x0).max(1.0)
        ),
        Shape::Span => format!(
            "<line class=\"{class}\" x1=\"{x0:.1}\" y1=\"{y:.1}\" x2=\"{:.1}\" y2=\"{y:.1}\">{t}</line>",
            x1.max(x0 + 1.0)
        ),
        Shape::Circle => format!(
            "<circle class=\"{class}\" cx=\"{x0:.1}\" cy=\"{y:.1}\" r=\"{}\">{t}</circle>",
            // Ack marks sit on the CK's square at a flush: smaller, so both show.
            if m.class.starts_with("ack") { 3 } else { 4 }
        ),
        Shape::Square => format!(
            "<rect class=\"{class}\" x=\"{:.1}\" y=\"{:.1}\" width=\"8\" height=\"8\">{t}</rect>",
            x0 - 4.0,
            y - 4.0
        ),
        Shape::Diamond => format!(
            "<polygon class=\"{class}\" points=\"{x0:.1},{:.1} {:.1},{y:.1} {x0:.1},{:.1} {:.1},{y:.1}\">{t}</polygon>",
            y - 6.0,
            x0 + 5.0,
            y + 6.0,
            x0 - 5.0
        ),
        Shape::Arrow => format!(
            "<polygon class=\"{class}\" points=\"{:.1},{:.1} {:.1},{y:.1} {:.1},{:.1}\">{t}</polygon>",
            x0 - 5.0,
            y - 6.0,
            x0 + 6.0,
            x0 - 5.0,
            y + 6.0
        ),
        Shape::Down => format!(
            "<polygon class=\"{class}\" points=\"{:.1},{:.1} {:.1},{:.1} {x0:.1},{:.1}\">{t}</polygon>",
            x0 - 5.0,
            y - 6.0,
            x0 + 5.0,
            y - 6.0,
            y + 6.0
        ),
        Shape::Tick => format!(
            "<rect class=\"{class}\" x=\"{:.1}\" y=\"{:.1}\" width=\"3\" height=\"16\">{t}</rect>",
            x0 - 1.5,
            y - 8.0
        ),
        Shape::Cross => format!(
            "<path class=\"{class}\" d=\"M{:.1},{:.1} L{:.1},{:.1} M{:.1},{:.1} L{:.1},{:.1}\">{t}</path>",
            x0 - 4.0,
            y - 4.0,
            x0 + 4.0,
            y + 4.0,
            x0 - 4.0,
            y + 4.0,
            x0 + 4.0,
            y - 4.0
        ),
        Shape::Rule => format!(
            "<line class=\"{class}\" x1=\"{x0:.1}\" y1=\"{top:.1}\" x2=\"{x0:.1}\" y2=\"{bottom:.1}\">{t}</line>"
        ),
    }
}

/// Shortens a lane label to fit the label column.
fn clip(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        s.to_owned()
    } else {
        let mut t: String = s.chars().take(max - 1).collect();
        t.push('…');
        t
    }
}

/// Renders the run as one self-contained XHTML-compatible HTML page. `results` are the
/// invariant verdicts checked on `history` (empty when there are none, e.g. after a panic).
pub fn render_timeline(history: &History, results: &[InvariantResult]) -> String {
    let meta = &history.meta;
    let witness: BTreeSet<usize> = results
        .iter()
        .filter(|r| r.status == Status::Violated)
        .filter_map(|r| r.witness.as_ref())
        .flat_map(|w| w.events.iter().copied())
        .collect();
    let plot = build(history, &witness);
    let end = history
        .events
        .iter()
        .map(|e| e.at)
        .max()
        .unwrap_or(0)
        .max(meta.end_at)
        .max(1);
    let xs = |t: Millis| LABEL_W + (t.min(end) as f64) * PLOT_W / (end as f64);
    let lanes_h = plot.lanes.len() as f64 * LANE_H;
    let height = AXIS_H + lanes_h + 6.0;
    let width = LABEL_W + PLOT_W + PAD_R;

    let mut s = String::new();
    let title = format!("popsim timeline: {} seed {}", meta.scenario, meta.seed);
    s.push_str("<!DOCTYPE html>\n<html xmlns=\"http://www.w3.org/1999/xhtml\" lang=\"en\">\n<head>\n<meta charset=\"utf-8\"/>\n");
    let _ = writeln!(s, "<title>{}</title>", escape(&title));
    let _ = writeln!(s, "<style>{STYLE}</style>\n</head>\n<body>");
    let _ = writeln!(s, "<h1>{}</h1>", escape(&title));
    let behaviours = if meta.behaviours.is_empty() {
        "none (every fix in)".to_owned()
    } else {
        meta.behaviours.join(", ")
    };
    let _ = writeln!(
        s,
        "<p class=\"meta\">release {} · behaviours: {} · faults {} · virtual duration {} · {} events · quiet from {}</p>",
        escape(meta.release.as_deref().unwrap_or("-")),
        escape(&behaviours),
        if meta.faulty { "injected" } else { "none" },
        secs(meta.end_at),
        history.events.len(),
        secs(meta.quiet_from)
    );
    verdicts_html(&mut s, history, results);
    legend_html(&mut s);
    caps_html(&mut s, &plot);

    let _ = writeln!(
        s,
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{width:.0}\" height=\"{height:.0}\" viewBox=\"0 0 {width:.0} {height:.0}\" role=\"img\">"
    );
    let _ = writeln!(s, "<title>{}</title>", escape(&title));
    // Lane backgrounds and labels.
    for (i, lane) in plot.lanes.iter().enumerate() {
        let y = AXIS_H + i as f64 * LANE_H;
        let hot = plot.hot.contains(&i);
        let class = if hot {
            "lane hot"
        } else if i % 2 == 1 {
            "lane alt"
        } else {
            "lane"
        };
        let label = lane.label();
        let _ = writeln!(
            s,
            "<rect class=\"{class}\" x=\"0\" y=\"{y:.1}\" width=\"{width:.0}\" height=\"{LANE_H:.0}\"/>"
        );
        let _ = writeln!(
            s,
            "<text{} x=\"4\" y=\"{:.1}\">{}<title>{}</title></text>",
            if hot { " class=\"hot\"" } else { "" },
            y + LANE_H * 0.7,
            escape(&clip(&label, 30)),
            escape(&label)
        );
    }
    // The quiet period, then the time axis and grid.
    let qx = xs(meta.quiet_from);
    let _ = writeln!(
        s,
        "<rect class=\"quiet\" x=\"{qx:.1}\" y=\"{AXIS_H:.0}\" width=\"{:.1}\" height=\"{lanes_h:.0}\"><title>quiet period from {}: every fault healed</title></rect>",
        (xs(end) - qx).max(0.0),
        secs(meta.quiet_from)
    );
    let step = tick_step(end);
    let mut t = 0;
    while t <= end {
        let x = xs(t);
        let _ = writeln!(
            s,
            "<line class=\"grid\" x1=\"{x:.1}\" y1=\"{:.0}\" x2=\"{x:.1}\" y2=\"{:.0}\"/>\n<text class=\"axis\" x=\"{:.1}\" y=\"16\">{}</text>",
            AXIS_H - 6.0,
            AXIS_H + lanes_h,
            x - 12.0,
            axis_label(t)
        );
        t += step;
    }
    // Windows under lines under points, each in history order.
    let layer = |m: &Mark| match m.shape {
        Shape::Window => 0,
        Shape::Span | Shape::Rule => 1,
        _ => 2,
    };
    for l in 0..3 {
        for m in plot.marks.iter().filter(|m| layer(m) == l) {
            let y = AXIS_H + m.lane as f64 * LANE_H + LANE_H / 2.0;
            s.push_str(&shape_svg(
                m,
                xs(m.at),
                xs(m.until),
                y,
                AXIS_H,
                AXIS_H + lanes_h,
            ));
            s.push('\n');
        }
    }
    s.push_str("</svg>\n</body>\n</html>\n");
    s
}

fn axis_label(t: Millis) -> String {
    if t % 1000 == 0 {
        format!("{}s", t / 1000)
    } else {
        format!("{}.{:03}s", t / 1000, t % 1000)
    }
}

fn verdicts_html(s: &mut String, history: &History, results: &[InvariantResult]) {
    let violated: Vec<&InvariantResult> = results
        .iter()
        .filter(|r| r.status == Status::Violated)
        .collect();
    if results.is_empty() {
        s.push_str("<p class=\"note\">No invariant verdicts (the run did not finish).</p>\n");
    } else if violated.is_empty() {
        let _ = writeln!(
            s,
            "<p class=\"pass\">PASS: every checked invariant held ({} checked).</p>",
            results.len()
        );
    } else {
        let names: Vec<&str> = violated.iter().map(|r| r.name).collect();
        let _ = writeln!(
            s,
            "<p class=\"fail\">FAIL: {} violated. Witness events are drawn in red and their lanes shaded.</p>",
            escape(&names.join(", "))
        );
    }
    for r in &violated {
        let _ = writeln!(
            s,
            "<p><code>{}</code>: {}</p>",
            escape(r.name),
            escape(r.statement)
        );
        if let Some(w) = &r.witness {
            let msg = w
                .msg_id
                .as_deref()
                .map(|m| format!(" ({})", escape(m)))
                .unwrap_or_default();
            let _ = writeln!(
                s,
                "<p>witness{msg}: {}</p>\n<ol class=\"ev\">",
                escape(&w.summary)
            );
            for i in &w.events {
                if let Some(e) = history.events.get(*i) {
                    let _ = writeln!(s, "<li>{}</li>", escape(&event_line(e)));
                }
            }
            s.push_str("</ol>\n");
        }
    }
}

fn legend_html(s: &mut String) {
    let items: [(&str, &str, &str); 14] = [
        ("produce", "circle", "produce"),
        ("pop", "tick", "pop"),
        ("win", "band", "invisible window"),
        ("win retry", "band", "retry copy's window"),
        ("listen", "line", "listener"),
        ("ack", "diamond", "ack"),
        ("cit", "down", "changeInvisibleTime"),
        ("ckbuf", "square", "CK buffered"),
        ("ck", "square", "CK flushed"),
        ("ackbuf", "circle", "ack merged in buffer"),
        ("ackrec blank", "circle", "ack record, blank brokerName"),
        ("revive", "arrow", "revive to retry"),
        ("dlq", "square", "DLQ"),
        ("reset", "down", "reset"),
    ];
    let w = LABEL_W + PLOT_W;
    let _ = writeln!(
        s,
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{w:.0}\" height=\"44\" viewBox=\"0 0 {w:.0} 44\" role=\"img\"><title>legend</title>"
    );
    let mut x = 8.0;
    let mut y = 11.0;
    for (class, shape, label) in items {
        // Wrap to a second row rather than run off the right edge.
        if x + 40.0 + label.len() as f64 * 6.7 > w {
            x = 8.0;
            y += 22.0;
        }
        let m = Mark {
            lane: 0,
            shape: match shape {
                "circle" => Shape::Circle,
                "tick" => Shape::Tick,
                "band" => Shape::Window,
                "line" => Shape::Span,
                "diamond" => Shape::Diamond,
                "down" => Shape::Down,
                "arrow" => Shape::Arrow,
                _ => Shape::Square,
            },
            at: 0,
            until: 0,
            class,
            title: label.to_owned(),
            witness: false,
        };
        let x1 = if matches!(m.shape, Shape::Window | Shape::Span) {
            x + 16.0
        } else {
            x
        };
        s.push_str(&shape_svg(&m, x, x1, y, 0.0, 44.0));
        let tx = x1 + 8.0;
        let _ = write!(s, "<text x=\"{tx:.1}\" y=\"{:.0}\">{label}</text>", y + 4.0);
        x = tx + label.len() as f64 * 6.7 + 14.0;
    }
    s.push_str("\n</svg>\n");
    s.push_str("<p class=\"meta\">Dashed red and green rules across every lane: broker crash and restart; grey crosses on the cluster lane: faults; the shaded right part: the quiet period. Hover any mark for the event.</p>\n");
}

fn caps_html(s: &mut String, plot: &Plot) {
    let mut notes = Vec::new();
    if !plot.dropped_messages.is_empty() {
        notes.push(format!(
            "{} message lanes not drawn (at most {MAX_MESSAGE_LANES}; witness messages first)",
            plot.dropped_messages.len()
        ));
    }
    if !plot.dropped_queues.is_empty() {
        notes.push(format!(
            "{} queue lanes not drawn (at most {MAX_QUEUE_LANES})",
            plot.dropped_queues.len()
        ));
    }
    if plot.dropped_marks > 0 {
        notes.push(format!(
            "{} marks not drawn (at most {MAX_MARKS}, in history order)",
            plot.dropped_marks
        ));
    }
    if !notes.is_empty() {
        let _ = writeln!(
            s,
            "<p class=\"note\">Truncated: {}. The full history: <code>--save-history FILE</code>.</p>",
            notes.join("; ")
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::history::ConsumeOutcome;
    use crate::testkit::H;

    #[test]
    fn escape_covers_markup_and_controls() {
        assert_eq!(
            escape("a<b>&\"c\"'\u{1}\n"),
            "a&lt;b&gt;&amp;&quot;c&quot;&#39;\u{FFFD}\n"
        );
    }

    /// Parses as XML; the `<!DOCTYPE html>` declaration is allowed.
    fn parse(html: &str) -> roxmltree::Document<'_> {
        let opt = roxmltree::ParsingOptions {
            allow_dtd: true,
            ..roxmltree::ParsingOptions::default()
        };
        roxmltree::Document::parse_with_options(html, opt).expect("well-formed XHTML")
    }

    /// A re-pop after an ack, with hostile strings where a scenario file could put them.
    fn hostile() -> History {
        let mut h = H::new();
        h.meta.scenario = "evil<script>alert('x')</script>&\"".into();
        h.meta.behaviours = vec!["b<1>".into()];
        h.end(5_000, 20_000);
        h.at(0).produce("m<0>&", 0, 0);
        let d = h.at(1_000).pop("c1", "m<0>&", 0, 0);
        h.at(1_500).listener(&d);
        h.listener_done(&d, ConsumeOutcome::Success, false);
        h.at(2_000).ack(&d);
        h.at(4_000).pop("c1", "m<0>&", 0, 0);
        h.at(6_000).crash();
        h.at(6_500).restart();
        h.push(
            "broker",
            EventKind::Fault {
                description: "clog \u{1} </svg>".into(),
            },
        );
        h.build()
    }

    #[test]
    fn markup_parses_as_xml_and_escapes_scenario_strings() {
        let h = hostile();
        let results = crate::invariants::check(&h, &[]);
        assert!(results.iter().any(|r| r.is_violated()));
        let html = render_timeline(&h, &results);
        let doc = parse(&html);
        assert!(!html.contains("<script"), "no script, escaped");
        assert!(
            !html.contains("http://") || !html.contains("href"),
            "no links"
        );
        let svg = doc
            .descendants()
            .find(|n| {
                n.has_tag_name(("http://www.w3.org/2000/svg", "svg"))
                    && n.descendants().count() > 100
            })
            .expect("the chart");
        let labels: Vec<&str> = svg
            .descendants()
            .filter(|n| n.has_tag_name("text"))
            .filter_map(|n| n.text())
            .collect();
        assert!(labels.contains(&"m<0>& · g1"), "{labels:?}");
        let witness = svg
            .descendants()
            .filter(|n| n.attribute("class").is_some_and(|c| c.ends_with(" w")))
            .count();
        assert!(witness >= 2, "the ack and the re-pop are witness marks");
        assert_eq!(html, render_timeline(&h, &results), "deterministic");
    }

    #[test]
    fn caps_lanes_and_says_so() {
        let mut h = H::new();
        for i in 0..(MAX_MESSAGE_LANES as u64 + 10) {
            h.at(i).produce(&format!("m{i}"), 0, i);
        }
        let html = render_timeline(&h.build(), &[]);
        parse(&html);
        assert!(html.contains("10 message lanes not drawn"), "{html}");
    }

    #[test]
    fn tick_steps_are_round() {
        assert_eq!(tick_step(100_000), 10_000);
        assert_eq!(tick_step(12), 1);
        assert_eq!(tick_step(30_000), 5_000);
    }
}
