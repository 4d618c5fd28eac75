//! Which lanes to draw, in what order, and where: lanes are ranked by relevance (what the
//! verdicts point at first, then messages with something unusual or near a fault or a reset,
//! then the rest, collapsed into summary lanes when they do not fit), marks that would
//! cover each other at the same time are stacked in rows, and every lane gets its height.

use super::marks::{FaultKind, LaneKey, Mark, Marks, Shape};
use super::{MAX_FOCUS_LANES, MAX_MARKS, MAX_MESSAGE_LANES, MAX_QUEUE_LANES};
use broker_core::Millis;
use std::collections::{BTreeMap, BTreeSet};

/// The plot's width in the static file (the script follows the window's width).
pub(super) const PLOT_W: f64 = 1100.0;
/// Height of one row of glyphs, and the padding above and below a lane's rows.
pub(super) const ROW_H: f64 = 11.0;
pub(super) const LANE_PAD: f64 = 4.0;
/// Points closer than this (in pixels) go to different rows.
pub(super) const GLYPH_PX: f64 = 8.0;
/// Width of one label character (11 px monospace) and the label column's margins.
const CHAR_W: f64 = 6.8;
/// Wide enough for the overview's labels.
const LABEL_MIN: f64 = 172.0;
/// A message with a mark this close to a fault or a reset of its group is drawn before the
/// rest.
const NEAR_MS: Millis = 1_000;
/// Buckets of a summary lane's histogram.
const SUMMARY_BARS: u64 = 80;

/// The time range and the message a timeline is narrowed to.
pub(super) struct Scope<'a> {
    pub t0: Millis,
    pub t1: Millis,
    pub msg: Option<&'a str>,
}

/// Messages collapsed into one lane: one group's messages that shared a fate.
pub(super) struct Summary {
    pub count: usize,
    /// (from, to, messages) per histogram bucket of their first delivery (or produce).
    pub bars: Vec<(Millis, Millis, usize)>,
    pub max: usize,
}

pub(super) enum Source {
    /// A lane of `Marks::lanes`.
    Lane,
    Summary(Summary),
}

pub(super) struct DrawnLane {
    pub source: Source,
    pub label: String,
    /// `c` cluster, `q` queue, `m` message, `s` summary.
    pub kind: char,
    pub flags: u8,
    /// 1: the verdicts point at it; 2: something unusual or near a fault; 3: the rest.
    pub tier: u8,
    pub group: Option<String>,
    /// `topic/queue`: the queue lane's, or the message's original queue.
    pub queue: Option<String>,
    pub msg: Option<String>,
    /// (mark index, row).
    pub marks: Vec<(usize, u16)>,
    pub rows: u16,
    pub y: f64,
    pub h: f64,
}

pub(super) struct Layout {
    pub t0: Millis,
    pub t1: Millis,
    pub label_w: f64,
    pub lanes: Vec<DrawnLane>,
    /// Crash and restart marks (rules across every lane).
    pub rules: Vec<usize>,
    pub height: f64,
    /// What was left out, one phrase each.
    pub left_out: Vec<String>,
    /// Messages drawn one lane each, and messages collapsed into summaries.
    pub drawn_messages: usize,
    pub collapsed_messages: usize,
}

impl Layout {
    pub fn x(&self, t: Millis) -> f64 {
        x_at(self.label_w, self.t0, self.t1, t)
    }
}

fn x_at(label_w: f64, t0: Millis, t1: Millis, t: Millis) -> f64 {
    let span = (t1.saturating_sub(t0)).max(1) as f64;
    label_w + (t as f64 - t0 as f64) * PLOT_W / span
}

/// What a message lane holds, for ranking and collapsing.
#[derive(Default)]
struct Stats {
    pops: usize,
    acked: bool,
    revived: bool,
    dlq: bool,
    skipped: bool,
    produce_failed: bool,
    unusual: bool,
    near: bool,
    first: Millis,
    /// When it was first delivered (else produced).
    main: Option<Millis>,
}

fn stats(marks: &[Mark], idxs: &[usize], faults: &[(Millis, Millis)], resets: &[Millis]) -> Stats {
    let mut s = Stats {
        first: Millis::MAX,
        ..Stats::default()
    };
    let mut produced = None;
    for &i in idxs {
        let m = &marks[i];
        s.first = s.first.min(m.at);
        match m.class {
            "pop" | "pop retry" => {
                s.pops += 1;
                s.main.get_or_insert(m.at);
            }
            "ack" => s.acked = true,
            "revive" => s.revived = true,
            "dlq" => s.dlq = true,
            "skip" => s.skipped = true,
            "produce" => produced = produced.or(Some(m.at)),
            "produce-failed" => s.produce_failed = true,
            "ack bad" | "ack timeout" | "cit" | "cit bad" | "listen bad" | "listen late"
            | "listen open" => s.unusual = true,
            _ => {}
        }
        // Near a fault or a reset: what the message did then, not its windows.
        if m.shape.is_point() {
            let near = |from: Millis, to: Millis| {
                m.at + NEAR_MS >= from && m.at <= to.saturating_add(NEAR_MS)
            };
            if faults.iter().any(|(f, t)| near(*f, *t)) || resets.iter().any(|r| near(*r, *r)) {
                s.near = true;
            }
        }
    }
    s.main = s.main.or(produced);
    s.unusual |= s.pops > 1 || s.revived || s.dlq || s.skipped || s.produce_failed;
    s
}

fn fate(s: &Stats) -> &'static str {
    if s.produce_failed && s.pops == 0 {
        "failed to produce"
    } else if s.pops == 0 {
        "produced, never delivered"
    } else if s.dlq {
        "sent to the DLQ"
    } else if s.skipped {
        "skipped on receipt"
    } else if s.acked && s.pops == 1 {
        "acked once"
    } else if s.acked {
        "delivered more than once, acked"
    } else {
        "delivered, not acked"
    }
}

/// `4,200`.
pub(super) fn thousands(n: usize) -> String {
    let s = n.to_string();
    let mut out = String::new();
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// Lays the marks out: ranks and selects lanes, collapses the rest, stacks glyphs.
pub(super) fn lay_out(m: &Marks, scope: &Scope, focus: &BTreeSet<LaneKey>) -> Layout {
    let (t0, t1) = (scope.t0, scope.t1.max(scope.t0 + 1));
    // In-scope marks per lane.
    let mut per_lane: Vec<Vec<usize>> = vec![Vec::new(); m.lanes.len()];
    let mut rules = Vec::new();
    for (i, mk) in m.marks.iter().enumerate() {
        if mk.until < t0 || mk.at > t1 {
            continue;
        }
        if mk.shape == Shape::Rule {
            rules.push(i);
        } else {
            per_lane[mk.lane].push(i);
        }
    }
    let wanted = |k: &LaneKey| match (scope.msg, k) {
        (None, _) | (_, LaneKey::Cluster) => true,
        (Some(id), LaneKey::Message { msg_id, .. }) => msg_id == id,
        (Some(_), LaneKey::Queue { .. }) => focus.contains(k),
    };
    let faults: Vec<(Millis, Millis)> = (m.faults.iter())
        .filter(|f| f.kind != FaultKind::Loss)
        .map(|f| (f.from, f.to))
        .collect();
    // Reset times per group.
    let mut resets: BTreeMap<&str, Vec<Millis>> = BTreeMap::new();
    for (l, idxs) in per_lane.iter().enumerate() {
        if let LaneKey::Queue { group, .. } = &m.lanes[l] {
            for i in idxs {
                if m.marks[*i].class == "reset" {
                    resets.entry(group).or_default().push(m.marks[*i].at);
                }
            }
        }
    }
    let no_resets = Vec::new();

    let mut queues: [Vec<usize>; 3] = Default::default();
    let mut msgs: [Vec<(usize, Stats)>; 3] = Default::default();
    let mut lane_flags = vec![0u8; m.lanes.len()];
    let mut left_out = Vec::new();
    let mut out_of_scope = 0usize;
    for (l, key) in m.lanes.iter().enumerate() {
        let idxs = &per_lane[l];
        lane_flags[l] = idxs.iter().fold(0, |f, i| f | m.marks[*i].flags);
        if matches!(key, LaneKey::Cluster) {
            continue;
        }
        if idxs.is_empty() {
            continue;
        }
        if !wanted(key) {
            out_of_scope += usize::from(matches!(key, LaneKey::Message { .. }));
            continue;
        }
        let top = lane_flags[l] != 0 || focus.contains(key);
        match key {
            LaneKey::Queue { .. } => {
                let busy = idxs.iter().any(|i| {
                    matches!(m.marks[*i].class, "reset") || m.marks[*i].class.starts_with("upd")
                });
                let tier = if top {
                    0
                } else if busy {
                    1
                } else {
                    2
                };
                queues[tier].push(l);
            }
            LaneKey::Message { group, .. } => {
                let r = group
                    .as_deref()
                    .and_then(|g| resets.get(g))
                    .unwrap_or(&no_resets);
                let st = stats(&m.marks, idxs, &faults, r);
                let tier = if top {
                    0
                } else if st.unusual || st.near {
                    1
                } else {
                    2
                };
                msgs[tier].push((l, st));
            }
            LaneKey::Cluster => {}
        }
    }
    if out_of_scope > 0 {
        left_out.push(format!(
            "{} other message lanes (narrowed to one message)",
            thousands(out_of_scope)
        ));
    }

    // Queue lanes: the focus ones always, then the busy ones, then the rest, up to the cap.
    let mut chosen: Vec<(usize, u8)> = vec![(0, 0)];
    let mut queue_count = 0;
    let mut dropped_queues = 0;
    let mut queue_tiers: [Vec<usize>; 3] = Default::default();
    for (tier, ls) in queues.iter().enumerate() {
        for &l in ls {
            if tier == 0 || queue_count < MAX_QUEUE_LANES {
                queue_tiers[tier].push(l);
                queue_count += 1;
            } else {
                dropped_queues += 1;
            }
        }
    }
    if dropped_queues > 0 {
        left_out.push(format!(
            "{dropped_queues} queue lanes (at most {MAX_QUEUE_LANES}; the verdicts' queues and those with resets or offset updates first)"
        ));
    }
    // Message lanes: the focus ones, then the unusual ones by score, then the rest; what
    // does not fit is collapsed into one summary lane per group and fate.
    let [focus_msgs, mut unusual, plain] = msgs;
    unusual.sort_by_key(|(l, s)| {
        (
            std::cmp::Reverse(u8::from(s.unusual) * 2 + u8::from(s.near)),
            s.first,
            *l,
        )
    });
    let mut collapsed: Vec<(usize, Stats)> = Vec::new();
    let mut msg_tiers: [Vec<usize>; 3] = Default::default();
    for (i, (l, st)) in focus_msgs.into_iter().enumerate() {
        if i < MAX_FOCUS_LANES {
            msg_tiers[0].push(l);
        } else {
            collapsed.push((l, st));
        }
    }
    if unusual.len() + plain.len() <= MAX_MESSAGE_LANES {
        msg_tiers[1].extend(unusual.iter().map(|(l, _)| *l));
        msg_tiers[2].extend(plain.iter().map(|(l, _)| *l));
    } else {
        for (i, (l, st)) in unusual.into_iter().enumerate() {
            if i < MAX_MESSAGE_LANES {
                msg_tiers[1].push(l);
            } else {
                collapsed.push((l, st));
            }
        }
        collapsed.extend(plain);
    }
    for tier in 0..3 {
        let t = tier as u8 + 1;
        chosen.extend(queue_tiers[tier].iter().map(|l| (*l, t)));
        chosen.extend(msg_tiers[tier].iter().map(|l| (*l, t)));
    }

    // The mark cap: lanes past it are left out, except the cluster and the verdicts' lanes.
    let mut total = 0usize;
    let mut capped = 0usize;
    chosen.retain(|(l, tier)| {
        let n = per_lane[*l].len();
        if *tier <= 1 || total + n <= MAX_MARKS {
            total += n;
            true
        } else {
            capped += 1;
            false
        }
    });
    if capped > 0 {
        left_out.push(format!(
            "{capped} lanes past {} marks",
            thousands(MAX_MARKS)
        ));
    }

    let mut lanes: Vec<DrawnLane> = Vec::new();
    let mut drawn_messages = 0;
    for (l, tier) in chosen {
        let key = &m.lanes[l];
        let (kind, queue) = match key {
            LaneKey::Cluster => ('c', None),
            LaneKey::Queue {
                topic, queue_id, ..
            } => (
                'q',
                Some(format!(
                    "{topic}/{}",
                    queue_id.map_or_else(|| "*".to_owned(), |q| q.to_string())
                )),
            ),
            LaneKey::Message { msg_id, .. } => {
                drawn_messages += 1;
                ('m', m.origin.get(msg_id).cloned())
            }
        };
        lanes.push(DrawnLane {
            source: Source::Lane,
            label: key.label(),
            kind,
            flags: lane_flags[l],
            tier,
            group: key.group().map(str::to_owned),
            queue,
            msg: key.msg().map(str::to_owned),
            marks: per_lane[l].iter().map(|i| (*i, 0)).collect(),
            rows: 1,
            y: 0.0,
            h: 0.0,
        });
    }
    let collapsed_messages = collapsed.len();
    lanes.extend(summaries(m, collapsed, t0, t1));

    let label_w = lanes
        .iter()
        .map(|l| l.label.chars().count())
        .max()
        .map_or(LABEL_MIN, |n| (n as f64 * CHAR_W + 14.0).max(LABEL_MIN))
        .ceil();
    let mut layout = Layout {
        t0,
        t1,
        label_w,
        lanes,
        rules,
        height: 0.0,
        left_out,
        drawn_messages,
        collapsed_messages,
    };
    stack(&mut layout, &m.marks);
    layout
}

/// One summary lane per (group, fate), largest first.
fn summaries(m: &Marks, collapsed: Vec<(usize, Stats)>, t0: Millis, t1: Millis) -> Vec<DrawnLane> {
    let mut by: BTreeMap<(Option<String>, &'static str), Vec<Millis>> = BTreeMap::new();
    for (l, st) in &collapsed {
        let g = m.lanes[*l].group().map(str::to_owned);
        by.entry((g, fate(st)))
            .or_default()
            .push(st.main.unwrap_or(st.first));
    }
    let mut groups: Vec<_> = by.into_iter().collect();
    groups.sort_by(|a, b| b.1.len().cmp(&a.1.len()).then_with(|| a.0.cmp(&b.0)));
    let span = t1 - t0;
    let bucket = span.div_ceil(SUMMARY_BARS).max(1);
    groups
        .into_iter()
        .map(|((group, fate), times)| {
            let mut counts: BTreeMap<u64, usize> = BTreeMap::new();
            for t in &times {
                *counts.entry((t.clamp(&t0, &t1) - t0) / bucket).or_default() += 1;
            }
            let bars: Vec<(Millis, Millis, usize)> = counts
                .into_iter()
                .map(|(b, n)| (t0 + b * bucket, (t0 + (b + 1) * bucket).min(t1), n))
                .collect();
            let max = bars.iter().map(|b| b.2).max().unwrap_or(1);
            let noun = if times.len() == 1 {
                "message"
            } else {
                "messages"
            };
            let label = match &group {
                Some(g) => format!("{} {noun} {fate} · {g}", thousands(times.len())),
                None => format!("{} {noun} {fate}", thousands(times.len())),
            };
            DrawnLane {
                source: Source::Summary(Summary {
                    count: times.len(),
                    bars,
                    max,
                }),
                label,
                kind: 's',
                flags: 0,
                tier: 3,
                group,
                queue: None,
                msg: None,
                marks: Vec::new(),
                rows: 1,
                y: 0.0,
                h: 0.0,
            }
        })
        .collect()
}

/// Assigns rows so that glyphs at about the same time do not cover each other, then the
/// lanes' heights and positions. A glyph may cover an identical one (same class and
/// highlight: a run of commits, a replay popped a hundred times): that hides nothing.
fn stack(layout: &mut Layout, marks: &[Mark]) {
    let (lw, t0, t1) = (layout.label_w, layout.t0, layout.t1);
    let x = |t: Millis| x_at(lw, t0, t1, t);
    let mut y = 0.0;
    for lane in &mut layout.lanes {
        // Per row: where its last glyph ends, and what it was.
        let mut point_rows: Vec<(f64, &str, u8)> = Vec::new();
        let mut span_rows: Vec<(f64, &str, u8)> = Vec::new();
        let mut order: Vec<usize> = (0..lane.marks.len()).collect();
        order.sort_by_key(|i| (marks[lane.marks[*i].0].at, lane.marks[*i].0));
        for i in order {
            let mk = &marks[lane.marks[i].0];
            let (rows, start, end, same_ok) = match mk.shape {
                s if s.is_point() => {
                    let x0 = x(mk.at);
                    (
                        &mut point_rows,
                        x0 - GLYPH_PX / 2.0,
                        x0 + GLYPH_PX / 2.0,
                        true,
                    )
                }
                Shape::Span => (
                    &mut span_rows,
                    x(mk.at) - 3.0,
                    x(mk.until).max(x(mk.at) + 1.0) + 3.0,
                    false,
                ),
                _ => continue,
            };
            let fits = |r: &(f64, &str, u8)| {
                r.0 <= start || (same_ok && r.1 == mk.class && r.2 == mk.flags)
            };
            let row = match rows.iter().position(fits) {
                Some(r) => r,
                None => {
                    rows.push((f64::NEG_INFINITY, "", 0));
                    rows.len() - 1
                }
            };
            rows[row] = (rows[row].0.max(end), mk.class, mk.flags);
            lane.marks[i].1 = u16::try_from(row).unwrap_or(u16::MAX);
        }
        lane.rows = u16::try_from(point_rows.len().max(span_rows.len()).max(1)).unwrap_or(u16::MAX);
        lane.h = f64::from(lane.rows) * ROW_H + 2.0 * LANE_PAD;
        lane.y = y;
        y += lane.h;
    }
    layout.height = y;
}
