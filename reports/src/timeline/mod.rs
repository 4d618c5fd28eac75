//! The HTML timeline: one self-contained file (inline SVG, CSS and script, no network
//! access) that draws a run's history on a virtual-time axis.
//!
//! - `marks`: what to draw, from the history: one lane for the cluster (crashes, restarts,
//!   faults, consumers starting and stopping), one per consumer-offset queue (`group ·
//!   topic/queue`: commits, resets, offset updates) and one per message and group (produce,
//!   each pop with its invisible window, the listener paired with its delivery's receipt,
//!   acks, changeInvisibleTime, the CK and ack records, revive to retry, DLQ).
//! - `layout`: which lanes and where: the verdicts' messages and queues first (witness,
//!   affected records, notes), then messages with something unusual or near a fault or a
//!   reset, then the rest, collapsed into summary lanes when they do not fit; glyphs at
//!   about the same time stack in rows.
//! - `render`: the page: header with the verdicts, a legend of every glyph, an overview of
//!   delivery, ack, revive and duplicate rates with faults shaded, the lanes, and the script
//!   (`timeline.js`: zoom and brush, click a mark to highlight its chain, filters, search, a
//!   detail panel, a width that follows the window).
//!
//! The markup is well-formed XHTML (the tests parse it as XML), and every string that can
//! come from a scenario file goes through [`escape`]. The output depends only on the
//! history, the results and the options, so the same seed gives the same file byte for byte.

mod layout;
mod marks;
mod render;

use crate::describe::event_fields;
use crate::history::History;
use crate::invariants::index::secs;
use crate::invariants::{InvariantResult, Status};
use broker_core::Millis;
use marks::{Highlights, LaneKey};
use std::collections::BTreeSet;

pub use render::escape;

/// At most this many message lanes are drawn one by one besides the ones the verdicts
/// point at; the rest are collapsed into summary lanes (one per group and fate).
pub const MAX_MESSAGE_LANES: usize = 150;
/// At most this many lanes of messages the verdicts point at (witness, affected, notes).
pub const MAX_FOCUS_LANES: usize = 1_000;
/// At most this many queue lanes are drawn (the verdicts' queues always).
pub const MAX_QUEUE_LANES: usize = 40;
/// Lanes are left out once this many marks are drawn (the verdicts' lanes never).
pub const MAX_MARKS: usize = 20_000;

/// How to narrow a timeline of a large run.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TimelineOptions {
    /// Only this range of virtual time (`--timeline-window`).
    pub window: Option<TimeWindow>,
    /// Only this message's lanes, with its queues and the cluster (`--timeline-msg`).
    pub msg: Option<String>,
}

/// A range of virtual time; an open end is the run's end.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TimeWindow {
    pub from: Millis,
    pub to: Option<Millis>,
}

/// Parses a time: `60s`, `1.5s`, `1500ms`, `2m`.
pub fn parse_time(s: &str) -> Result<Millis, String> {
    let bad = || format!("`{s}` is not a time: expected e.g. 60s, 1.5s, 1500ms or 2m");
    let t = s.trim();
    let (num, scale) = if let Some(n) = t.strip_suffix("ms") {
        (n, 1.0)
    } else if let Some(n) = t.strip_suffix('s') {
        (n, 1_000.0)
    } else if let Some(n) = t.strip_suffix('m') {
        (n, 60_000.0)
    } else {
        return Err(bad());
    };
    if num.is_empty() || !num.chars().all(|c| c.is_ascii_digit() || c == '.') {
        return Err(bad());
    }
    let v: f64 = num.parse().map_err(|_| bad())?;
    let ms = (v * scale).round();
    if !ms.is_finite() || ms > 1e15 {
        return Err(bad());
    }
    Ok(ms as Millis)
}

/// Parses `START..END` (`60s..70s`; either end may be left out: `..70s`, `60s..`).
pub fn parse_window(s: &str) -> Result<TimeWindow, String> {
    let Some((a, b)) = s.split_once("..") else {
        return Err(format!(
            "`{s}` is not a window: expected START..END, e.g. 60s..70s"
        ));
    };
    let from = if a.trim().is_empty() {
        0
    } else {
        parse_time(a).map_err(|e| format!("the start: {e}"))?
    };
    let to = if b.trim().is_empty() {
        None
    } else {
        Some(parse_time(b).map_err(|e| format!("the end: {e}"))?)
    };
    if let Some(to) = to {
        if to <= from {
            return Err(format!(
                "the window is empty: its start {} is not before its end {}",
                secs(from),
                secs(to)
            ));
        }
    }
    Ok(TimeWindow { from, to })
}

/// Checks a message id given to narrow a timeline: not empty, no spaces.
pub fn parse_msg_id(s: &str) -> Result<String, String> {
    if s.trim().is_empty() {
        return Err("a message id is needed, e.g. p1-0".to_owned());
    }
    if s.chars().any(char::is_whitespace) {
        return Err(format!("`{s}` is not a message id: it has a space"));
    }
    Ok(s.to_owned())
}

/// Why a narrowed timeline was refused.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TimelineError {
    /// The window starts after the run ended.
    Window(String),
    /// The run never saw the message.
    Msg(String),
}

impl std::fmt::Display for TimelineError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            TimelineError::Window(e) | TimelineError::Msg(e) => f.write_str(e),
        }
    }
}

impl std::error::Error for TimelineError {}

/// Renders the run as one self-contained XHTML-compatible HTML page. `results` are the
/// invariant verdicts checked on `history` (empty when there are none, e.g. after a panic).
pub fn render_timeline(history: &History, results: &[InvariantResult]) -> String {
    render_timeline_with(history, results, &TimelineOptions::default())
        .expect("no narrowing, nothing to refuse")
}

/// [`render_timeline`], narrowed to a time window or one message. Refuses a window that
/// starts after the run ended and a message the run never saw.
pub fn render_timeline_with(
    history: &History,
    results: &[InvariantResult],
    opts: &TimelineOptions,
) -> Result<String, TimelineError> {
    let end = history
        .events
        .iter()
        .map(|e| e.at)
        .max()
        .unwrap_or(0)
        .max(history.meta.end_at)
        .max(1);
    let (t0, t1) = match opts.window {
        None => (0, end),
        Some(w) => {
            if w.from >= end {
                return Err(TimelineError::Window(format!(
                    "the window starts at {}, but the run ended at {}",
                    secs(w.from),
                    secs(end)
                )));
            }
            (w.from, w.to.unwrap_or(end).min(end))
        }
    };
    if let Some(id) = &opts.msg {
        let seen = history
            .events
            .iter()
            .any(|e| event_fields(&e.kind).msg_id == Some(id.as_str()));
        if !seen {
            let mut examples: Vec<&str> = Vec::new();
            for e in &history.events {
                match event_fields(&e.kind).msg_id {
                    Some(m) if !examples.contains(&m) => examples.push(m),
                    _ => {}
                }
                if examples.len() == 3 {
                    break;
                }
            }
            return Err(TimelineError::Msg(if examples.is_empty() {
                format!("no message `{id}` in this run: it has no messages")
            } else {
                format!(
                    "no message `{id}` in this run (its ids look like {})",
                    examples.join(", ")
                )
            }));
        }
    }
    let hl = highlights(results);
    let marks = marks::build(history, &hl);
    let focus = focus(history, results, &marks, opts.msg.as_deref());
    let scope = layout::Scope {
        t0,
        t1,
        msg: opts.msg.as_deref(),
    };
    let layout = layout::lay_out(&marks, &scope, &focus);
    Ok(render::page(history, results, &marks, &layout, opts))
}

/// The events the verdicts point at.
fn highlights(results: &[InvariantResult]) -> Highlights {
    let mut hl = Highlights::default();
    for r in results {
        if r.status == Status::Violated {
            hl.witness
                .extend(r.witness.iter().flat_map(|w| w.events.iter().copied()));
            hl.affected
                .extend((r.affected.items.iter()).flat_map(|a| a.events.iter().copied()));
        }
        hl.note
            .extend(r.notes.iter().flat_map(|n| n.events.iter().copied()));
    }
    hl
}

/// Lanes to draw first: every affected record's message (for its group, or every group) and
/// queue, and the queues the witness events name. With `--timeline-msg`, the queues of
/// that message instead.
fn focus(
    history: &History,
    results: &[InvariantResult],
    marks: &marks::Marks,
    msg: Option<&str>,
) -> BTreeSet<LaneKey> {
    let mut out = BTreeSet::new();
    let queue = |group: &str, topic: &str, q: u32| LaneKey::Queue {
        group: group.to_owned(),
        topic: topic.to_owned(),
        queue_id: Some(q),
    };
    if let Some(id) = msg {
        for e in &history.events {
            let f = event_fields(&e.kind);
            if f.msg_id == Some(id) {
                if let (Some(g), Some(t), Some(q)) = (f.group, f.topic, f.queue_id) {
                    out.insert(queue(g, t, q));
                }
            }
        }
        return out;
    }
    for r in results.iter().filter(|r| r.status == Status::Violated) {
        for a in &r.affected.items {
            if let (Some(g), Some(t), Some(q)) = (&a.group, &a.topic, a.queue_id) {
                out.insert(queue(g, t, q));
            }
            if let Some(m) = &a.msg_id {
                match &a.group {
                    Some(g) => {
                        out.insert(LaneKey::Message {
                            msg_id: m.clone(),
                            group: Some(g.clone()),
                        });
                    }
                    None => out.extend(
                        (marks.lanes.iter())
                            .filter(|k| k.msg() == Some(m.as_str()))
                            .cloned(),
                    ),
                }
            }
        }
        for i in r.witness.iter().flat_map(|w| w.events.iter()) {
            let Some(e) = history.events.get(*i) else {
                continue;
            };
            let f = event_fields(&e.kind);
            if let (Some(g), Some(t), Some(q)) = (f.group, f.topic, f.queue_id) {
                out.insert(queue(g, t, q));
            }
        }
    }
    out
}

#[cfg(test)]
mod tests;
