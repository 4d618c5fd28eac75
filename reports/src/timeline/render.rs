//! The page: header, legend, overview, lanes and the inline script, as well-formed XHTML.

use super::layout::{
    thousands, DrawnLane, Layout, Source, Summary, GLYPH_PX, LANE_PAD, PLOT_W, ROW_H,
};
use super::marks::{self, FaultKind, Mark, Marks, Shape, FLAG_AFFECTED, FLAG_NOTE, FLAG_WITNESS};
use super::TimelineOptions;
use crate::describe::event_line;
use crate::history::{EventKind, History};
use crate::invariants::index::{is_success, secs, DeliveryClass, Facts};
use crate::invariants::InvariantResult;
use broker_core::{BrokerEvent, Millis};
use std::collections::BTreeSet;
use std::fmt::Write as _;

/// The stylesheet and the script, inlined into every page.
pub(super) const STYLE: &str = include_str!("timeline.css");
pub(super) const SCRIPT: &str = include_str!("timeline.js");

/// Right margin of the charts.
const PAD_R: f64 = 16.0;
/// The overview: two rate strips of this height, a gap, then the time axis.
const STRIP_H: f64 = 38.0;
const STRIP_GAP: f64 = 6.0;
const OVERVIEW_H: f64 = 2.0 * STRIP_H + STRIP_GAP + 6.0;
const AXIS_H: f64 = 22.0;
/// Buckets of the overview's rates.
const RATE_BUCKETS: u64 = 120;
/// The overview's inner coordinates: x from 0 to this over the scope.
const OV_UNITS: f64 = 1000.0;
/// At most this many affected message ids are named in the header per violation.
const NAMED_AFFECTED: usize = 40;

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

/// Every glyph the lanes use, by class, with its legend text. The legend is drawn from
/// this table, and a test checks that every mark's class is in it.
pub(super) const GLYPHS: &[(&str, Shape, &str)] = &[
    ("produce", Shape::Circle, "produced"),
    ("produce-failed", Shape::CrossCircle, "produce failed"),
    ("pop", Shape::Tick, "pop"),
    ("pop retry", Shape::Tick, "pop of a retry copy"),
    ("win", Shape::Window, "invisible window"),
    ("win retry", Shape::Window, "retry copy's window"),
    (
        "win cit",
        Shape::Window,
        "window set by changeInvisibleTime",
    ),
    ("listen", Shape::Span, "listener run, start to finish"),
    ("listen bad", Shape::Span, "listener failed"),
    ("listen late", Shape::Span, "listener outlived its receipt"),
    (
        "listen open",
        Shape::Span,
        "listener still running at the end",
    ),
    ("ack", Shape::Diamond, "ack SUCCESS"),
    ("ack bad", Shape::Diamond, "ack answered with an error"),
    ("ack timeout", Shape::Diamond, "ack timeout (no answer)"),
    ("cit", Shape::Down, "changeInvisibleTime"),
    ("cit bad", Shape::Down, "changeInvisibleTime failed"),
    ("ckbuf", Shape::Square, "CK buffered"),
    ("ck", Shape::Square, "CK written"),
    ("ackbuf", Shape::Dot, "ack merged in the CK buffer"),
    ("ackrec", Shape::Dot, "ack record written"),
    ("ackrec blank", Shape::Dot, "ack record, blank brokerName"),
    ("revive", Shape::Arrow, "revived to retry"),
    ("skip", Shape::Cross, "skipped on receipt"),
    ("dlq", Shape::Square, "sent to a DLQ"),
    ("commit", Shape::Tick, "offset commit"),
    ("upd", Shape::Span, "offset update, success"),
    (
        "upd false",
        Shape::Span,
        "offset update reported success, but failed",
    ),
    ("upd bad", Shape::Span, "offset update failed"),
    ("upd open", Shape::Span, "offset update never completed"),
    (
        "reset",
        Shape::Down,
        "reset asked, answered, assigned or taken",
    ),
    ("client", Shape::Tick, "consumer started"),
    ("client stop", Shape::Tick, "consumer stopped"),
    ("fault", Shape::Cross, "fault injected or healed"),
    (
        "persist",
        Shape::Tick,
        "offsets persisted (when a verdict cites it)",
    ),
    (
        "revive-commit",
        Shape::Tick,
        "revive offset committed (when a verdict cites it)",
    ),
    ("crash", Shape::Rule, "broker crash or shutdown"),
    ("restart", Shape::Rule, "broker restart"),
    ("sum", Shape::Bar, "collapsed messages by first delivery"),
];

fn f1(v: f64) -> String {
    let r = (v * 10.0).round() / 10.0;
    if r == r.trunc() {
        format!("{}", r as i64)
    } else {
        format!("{r:.1}")
    }
}

/// The glyph of a point mark, drawn around (0, 0); the page moves it with a transform.
fn point_svg(shape: Shape, class: &str, attrs: &str, inner: &str) -> String {
    match shape {
        Shape::Circle => format!("<circle class=\"{class}\" r=\"4\"{attrs}>{inner}</circle>"),
        Shape::Dot => format!("<circle class=\"{class}\" r=\"3\"{attrs}>{inner}</circle>"),
        Shape::Square => format!(
            "<rect class=\"{class}\" x=\"-4\" y=\"-4\" width=\"8\" height=\"8\"{attrs}>{inner}</rect>"
        ),
        Shape::Diamond => format!(
            "<polygon class=\"{class}\" points=\"0,-5 5,0 0,5 -5,0\"{attrs}>{inner}</polygon>"
        ),
        Shape::Arrow => format!(
            "<polygon class=\"{class}\" points=\"-5,-5 6,0 -5,5\"{attrs}>{inner}</polygon>"
        ),
        Shape::Down => format!(
            "<polygon class=\"{class}\" points=\"-5,-5 5,-5 0,5\"{attrs}>{inner}</polygon>"
        ),
        Shape::Tick => format!(
            "<rect class=\"{class}\" x=\"-1.5\" y=\"-5\" width=\"3\" height=\"10\"{attrs}>{inner}</rect>"
        ),
        Shape::Cross => format!(
            "<path class=\"{class}\" d=\"M-4,-4 L4,4 M-4,4 L4,-4\"{attrs}>{inner}</path>"
        ),
        Shape::CrossCircle => format!(
            "<path class=\"{class}\" d=\"M-4.5,0 A4.5,4.5 0 1,0 4.5,0 A4.5,4.5 0 1,0 -4.5,0 M-3,-3 L3,3 M-3,3 L3,-3\"{attrs}>{inner}</path>"
        ),
        Shape::Window | Shape::Span | Shape::Rule | Shape::Bar => String::new(),
    }
}

/// A span (listener run, offset update) from x0 to x1 at height y: a tall start cap, the
/// bar, a short end cap. The script draws the same path.
fn span_d(x0: f64, x1: f64, y: f64) -> String {
    let x1 = x1.max(x0 + 1.0);
    format!(
        "M{},{} v10 M{},{} H{} M{},{} v6",
        f1(x0),
        f1(y - 5.0),
        f1(x0),
        f1(y),
        f1(x1),
        f1(x1),
        f1(y - 3.0)
    )
}

fn row_y(row: u16) -> f64 {
    LANE_PAD + ROW_H * (f64::from(row) + 0.5)
}

fn flag_classes(flags: u8) -> String {
    let mut s = String::new();
    if flags & FLAG_WITNESS != 0 {
        s.push_str(" w");
    }
    if flags & FLAG_AFFECTED != 0 {
        s.push_str(" a");
    }
    if flags & FLAG_NOTE != 0 {
        s.push_str(" n");
    }
    s
}

fn events_attr(events: &[usize]) -> String {
    events
        .iter()
        .map(usize::to_string)
        .collect::<Vec<_>>()
        .join(" ")
}

/// One mark of a lane of height `h`.
fn mark_svg(h: &History, layout: &Layout, m: &Mark, row: u16, lane_h: f64) -> String {
    let class = format!("{}{}", m.class, flag_classes(m.flags));
    let chain = m
        .chain
        .map(|c| format!(" data-c=\"{}\"", c.id()))
        .unwrap_or_default();
    let title = format!("<title>{}</title>", escape(&marks::title(h, m)));
    let e = events_attr(&m.events);
    let x0 = layout.x(m.at);
    match m.shape {
        Shape::Window => {
            let x1 = layout.x(m.until);
            format!(
                "<rect class=\"{class}\" x=\"{}\" y=\"2\" width=\"{}\" height=\"{}\" data-s=\"w\" data-e=\"{e}\" data-t=\"{}\" data-u=\"{}\"{chain}>{title}</rect>",
                f1(x0),
                f1((x1 - x0).max(1.0)),
                f1(lane_h - 4.0),
                m.at,
                m.until
            )
        }
        Shape::Span => format!(
            "<path class=\"{class}\" d=\"{}\" data-s=\"s\" data-r=\"{row}\" data-e=\"{e}\" data-t=\"{}\" data-u=\"{}\"{chain}>{title}</path>",
            span_d(x0, layout.x(m.until), row_y(row)),
            m.at,
            m.until
        ),
        Shape::Rule | Shape::Bar => String::new(),
        shape => {
            let attrs = format!(
                " transform=\"translate({},{})\" data-r=\"{row}\" data-e=\"{e}\" data-t=\"{}\"{chain}",
                f1(x0),
                f1(row_y(row)),
                m.at
            );
            point_svg(shape, &class, &attrs, &title)
        }
    }
}

fn summary_svg(layout: &Layout, s: &Summary, lane_h: f64) -> String {
    let mut out = String::new();
    for (from, to, n) in &s.bars {
        let frac = *n as f64 / s.max.max(1) as f64;
        let bh = (frac * (lane_h - 6.0)).max(1.5);
        let x0 = layout.x(*from);
        let x1 = layout.x(*to);
        let _ = write!(
            out,
            "<rect class=\"sum\" x=\"{}\" y=\"{}\" width=\"{}\" height=\"{}\" data-s=\"b\" data-v=\"{:.3}\" data-t=\"{from}\" data-u=\"{to}\"><title>{} of {} first delivered {}..{}</title></rect>",
            f1(x0),
            f1(lane_h - 3.0 - bh),
            f1((x1 - x0 - 0.5).max(1.0)),
            f1(bh),
            frac,
            thousands(*n),
            thousands(s.count),
            secs(*from),
            secs(*to)
        );
    }
    out
}

/// The page.
pub(super) fn page(
    h: &History,
    results: &[InvariantResult],
    m: &Marks,
    layout: &Layout,
    opts: &TimelineOptions,
) -> String {
    let meta = &h.meta;
    let width = layout.label_w + PLOT_W + PAD_R;
    let mut s = String::with_capacity(64 * 1024);
    let title = format!("popsim timeline: {} seed {}", meta.scenario, meta.seed);
    s.push_str("<!DOCTYPE html>\n<html xmlns=\"http://www.w3.org/1999/xhtml\" lang=\"en\">\n<head>\n<meta charset=\"utf-8\"/>\n<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\"/>\n");
    let _ = writeln!(s, "<title>{}</title>", escape(&title));
    let _ = writeln!(s, "<style>{STYLE}</style>\n</head>\n<body>");
    // Reports script errors on the page, so a test (or a reader) sees them.
    s.push_str("<script>//<![CDATA[\nwindow.addEventListener('error', function (e) { document.documentElement.setAttribute('data-error', String(e.message)); });\n//]]></script>\n");
    s.push_str("<header id=\"top\">\n");
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
        h.events.len(),
        secs(meta.quiet_from)
    );
    scope_html(&mut s, layout, opts);
    verdicts_html(&mut s, h, results);
    legend_html(&mut s);
    left_out_html(&mut s, layout);
    s.push_str("</header>\n");
    controls_html(&mut s, layout);
    head_svg(&mut s, h, m, layout, width);
    plot_svg(&mut s, h, m, layout, width);
    s.push_str("<aside id=\"detail\" hidden=\"hidden\"><button type=\"button\" id=\"d-close\" title=\"clear the selection\">×</button><div id=\"d-body\"></div></aside>\n");
    let _ = write!(s, "<script>//<![CDATA[\n{SCRIPT}//]]></script>\n");
    s.push_str("</body>\n</html>\n");
    s
}

fn scope_html(s: &mut String, layout: &Layout, opts: &TimelineOptions) {
    let mut parts = Vec::new();
    if opts.window.is_some() {
        parts.push(format!(
            "the window {}..{}",
            secs(layout.t0),
            secs(layout.t1)
        ));
    }
    if let Some(m) = &opts.msg {
        parts.push(format!("message {}", escape(m)));
    }
    if !parts.is_empty() {
        let _ = writeln!(
            s,
            "<p class=\"note\">Narrowed to {}.</p>",
            parts.join(" and ")
        );
    }
}

fn verdicts_html(s: &mut String, h: &History, results: &[InvariantResult]) {
    let violated: Vec<&InvariantResult> = results.iter().filter(|r| r.is_violated()).collect();
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
            "<p class=\"fail\">FAIL: {} violated. Witness marks are red and their lanes shaded red; marks of other affected messages are ringed in orange. Click a mark to follow its chain.</p>",
            escape(&names.join(", "))
        );
    }
    let lines = |s: &mut String, events: &[usize]| {
        s.push_str("<ol class=\"ev\">\n");
        for i in events {
            if let Some(e) = h.events.get(*i) {
                let _ = writeln!(s, "<li data-e=\"{i}\">{}</li>", escape(&event_line(e)));
            }
        }
        s.push_str("</ol>\n");
    };
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
            let _ = writeln!(s, "<p>witness{msg}: {}</p>", escape(&w.summary));
            lines(s, &w.events);
        }
        let a = &r.affected;
        if a.total() > 1 {
            let mut ids: Vec<&str> = Vec::new();
            for item in &a.items {
                if let Some(m) = item.msg_id.as_deref() {
                    if !ids.contains(&m) {
                        ids.push(m);
                    }
                }
            }
            let _ = write!(
                s,
                "<p class=\"aff\">affected: {} records",
                thousands(a.total())
            );
            if !ids.is_empty() {
                s.push_str("; messages ");
                for (i, m) in ids.iter().take(NAMED_AFFECTED).enumerate() {
                    if i > 0 {
                        s.push_str(", ");
                    }
                    let _ = write!(
                        s,
                        "<span class=\"msgref\" data-m=\"{0}\">{0}</span>",
                        escape(m)
                    );
                }
                if ids.len() > NAMED_AFFECTED {
                    let _ = write!(s, " and {} more", ids.len() - NAMED_AFFECTED);
                }
            }
            s.push_str("</p>\n");
        }
    }
    for r in results {
        for n in &r.notes {
            let _ = writeln!(
                s,
                "<p class=\"notep\">note on <code>{}</code>: {}</p>",
                escape(r.name),
                escape(&n.summary)
            );
            if !n.events.is_empty() {
                lines(s, &n.events);
            }
        }
    }
}

fn legend_item(s: &mut String, class: &str, shape: Shape, label: &str) {
    let g = match shape {
        Shape::Window => format!("<rect class=\"{class}\" x=\"3\" y=\"2\" width=\"22\" height=\"12\"/>"),
        Shape::Span => format!("<path class=\"{class}\" d=\"{}\"/>", span_d(4.0, 24.0, 8.0)),
        Shape::Rule => format!("<line class=\"{class}\" x1=\"14\" y1=\"0\" x2=\"14\" y2=\"16\"/>"),
        Shape::Bar => format!(
            "<rect class=\"{class}\" x=\"4\" y=\"8\" width=\"5\" height=\"7\"/><rect class=\"{class}\" x=\"10\" y=\"3\" width=\"5\" height=\"12\"/><rect class=\"{class}\" x=\"16\" y=\"10\" width=\"5\" height=\"5\"/>"
        ),
        shape => point_svg(shape, class, " transform=\"translate(14,8)\"", ""),
    };
    let _ = writeln!(
        s,
        "<li><svg xmlns=\"http://www.w3.org/2000/svg\" width=\"28\" height=\"16\" viewBox=\"0 0 28 16\">{g}</svg>{}</li>",
        escape(label)
    );
}

fn legend_html(s: &mut String) {
    s.push_str("<ul class=\"legend\">\n");
    for (class, shape, label) in GLYPHS {
        legend_item(s, class, *shape, label);
    }
    legend_item(s, "pop w", Shape::Tick, "witness event");
    legend_item(s, "ack a", Shape::Diamond, "affected record's event");
    legend_item(s, "pop n", Shape::Tick, "note's event");
    legend_item(s, "band crash", Shape::Window, "broker down (overview)");
    legend_item(s, "band clog", Shape::Window, "clog or pause");
    legend_item(s, "band loss", Shape::Window, "packet loss");
    legend_item(s, "quiet", Shape::Window, "quiet period");
    s.push_str("</ul>\n");
    s.push_str("<p class=\"meta\">Hover a mark for its event. Click a mark to highlight its chain (the message's pops, CKs, acks, ack records, revives and retry copies in that group; an offset call; a queue's resets) and to see it in the panel. Drag on the overview or the axis to zoom, wheel over them to zoom in and out, double-click them for the whole run.</p>\n");
}

fn left_out_html(s: &mut String, layout: &Layout) {
    let mut notes = layout.left_out.clone();
    if layout.collapsed_messages > 0 {
        notes.insert(
            0,
            format!(
                "{} message lanes collapsed into summary lanes at the bottom ({} drawn one by one: the verdicts' messages, then messages with redeliveries, revives, failures or near a fault or a reset)",
                thousands(layout.collapsed_messages),
                thousands(layout.drawn_messages)
            ),
        );
    }
    if !notes.is_empty() {
        let _ = writeln!(
            s,
            "<p class=\"note\">Left out: {}. The full history: <code>--save-history FILE</code>; narrow with <code>--timeline-window</code> and <code>--timeline-msg</code>.</p>",
            escape(&notes.join("; "))
        );
    }
}

fn controls_html(s: &mut String, layout: &Layout) {
    let mut groups = BTreeSet::new();
    let mut queues = BTreeSet::new();
    for l in &layout.lanes {
        groups.extend(l.group.clone());
        queues.extend(l.queue.clone());
    }
    s.push_str("<div id=\"sticky\">\n<div id=\"controls\">\n");
    s.push_str("<label><input type=\"checkbox\" id=\"f-w\"/> witness lanes</label>\n");
    s.push_str("<label><input type=\"checkbox\" id=\"f-a\"/> affected and note lanes</label>\n");
    s.push_str("<select id=\"f-g\"><option value=\"\">every group</option>");
    for g in &groups {
        let _ = write!(s, "<option value=\"{0}\">{0}</option>", escape(g));
    }
    s.push_str("</select>\n<select id=\"f-q\"><option value=\"\">every queue</option>");
    for q in &queues {
        let _ = write!(s, "<option value=\"{0}\">{0}</option>", escape(q));
    }
    s.push_str(
        "</select>\n<input type=\"search\" id=\"f-m\" placeholder=\"message id\" size=\"14\"/>\n",
    );
    s.push_str("<button type=\"button\" id=\"z-out\">zoom out</button>\n<button type=\"button\" id=\"z-all\">whole range</button>\n<span id=\"z-info\"></span>\n</div>\n");
}

/// Per-bucket counts of deliveries, successful acks, revives and duplicate deliveries.
fn rates(h: &History, t0: Millis, t1: Millis) -> ([Vec<u64>; 4], Millis) {
    let bucket = (t1 - t0).div_ceil(RATE_BUCKETS).max(1);
    let n = ((t1 - t0) / bucket + 1) as usize;
    let mut out: [Vec<u64>; 4] = std::array::from_fn(|_| vec![0; n]);
    let slot = |t: Millis| ((t.clamp(t0, t1) - t0) / bucket) as usize;
    for e in &h.events {
        if e.at < t0 || e.at > t1 {
            continue;
        }
        let series = match &e.kind {
            EventKind::Delivered { .. } => 0,
            EventKind::AckResult { outcome, .. } if is_success(outcome) => 1,
            EventKind::Broker(BrokerEvent::Revived { .. }) => 2,
            _ => continue,
        };
        out[series][slot(e.at)] += 1;
    }
    let facts = Facts::new(h);
    for (idx, class) in &facts.acks().classes {
        let dup = matches!(
            class,
            DeliveryClass::AfterAck { .. }
                | DeliveryClass::AfterTimeout
                | DeliveryClass::ConcurrentCopy
        );
        let at = h.events[*idx].at;
        if dup && at >= t0 && at <= t1 {
            out[3][slot(at)] += 1;
        }
    }
    (out, bucket)
}

/// The sticky header: the rate overview (with faults shaded) and the time axis.
fn head_svg(s: &mut String, h: &History, m: &Marks, layout: &Layout, width: f64) {
    let (t0, t1) = (layout.t0, layout.t1);
    let lw = layout.label_w;
    let height = OVERVIEW_H + AXIS_H;
    let _ = writeln!(
        s,
        "<svg xmlns=\"http://www.w3.org/2000/svg\" id=\"head\" width=\"{}\" height=\"{}\" role=\"img\"><title>delivery, ack, revive and duplicate rates over time, faults shaded; the time axis</title>",
        f1(width),
        f1(height)
    );
    let (series, bucket) = rates(h, t0, t1);
    let per_s = |n: u64| n as f64 * 1000.0 / bucket as f64;
    let ux = |t: Millis| (t.clamp(t0, t1) - t0) as f64 * OV_UNITS / (t1 - t0).max(1) as f64;
    // Strip labels with their maxima.
    let strips: [(&str, [usize; 2], [&str; 2]); 2] = [
        (
            "deliveries · acks /s",
            [0, 1],
            ["rate r-deliv", "rate r-ack"],
        ),
        (
            "revives · duplicates /s",
            [2, 3],
            ["rate r-revive", "rate r-dup"],
        ),
    ];
    let _ = writeln!(
        s,
        "<svg id=\"ov\" x=\"{}\" y=\"0\" width=\"{}\" height=\"{}\" viewBox=\"0 0 {OV_UNITS} {}\" preserveAspectRatio=\"none\">",
        f1(lw),
        f1(PLOT_W),
        f1(OVERVIEW_H),
        f1(OVERVIEW_H)
    );
    let _ = writeln!(
        s,
        "<rect class=\"ovbg\" x=\"0\" y=\"0\" width=\"{OV_UNITS}\" height=\"{}\"/>",
        f1(OVERVIEW_H)
    );
    for f in &m.faults {
        if f.to < t0 || f.from > t1 {
            continue;
        }
        let x0 = ux(f.from);
        let w = (ux(f.to) - x0).max(0.8);
        let (class, y, hh) = match f.kind {
            FaultKind::Crash => ("band crash", 0.0, OVERVIEW_H),
            FaultKind::Clog | FaultKind::Pause => ("band clog", 0.0, OVERVIEW_H),
            FaultKind::Loss => ("band loss", OVERVIEW_H - 4.0, 4.0),
        };
        let _ = writeln!(
            s,
            "<rect class=\"{class}\" x=\"{}\" y=\"{}\" width=\"{}\" height=\"{}\"><title>{} {}..{}</title></rect>",
            f1(x0),
            f1(y),
            f1(w),
            f1(hh),
            escape(&f.label),
            secs(f.from),
            secs(f.to)
        );
    }
    let mut maxima = Vec::new();
    for (k, (_, idx, classes)) in strips.iter().enumerate() {
        let top = k as f64 * (STRIP_H + STRIP_GAP) + 2.0;
        let max = idx
            .iter()
            .flat_map(|i| series[*i].iter())
            .copied()
            .max()
            .unwrap_or(0);
        maxima.push(per_s(max));
        for (i, class) in idx.iter().zip(classes) {
            let pts: Vec<String> = series[*i]
                .iter()
                .enumerate()
                .map(|(b, n)| {
                    let t = t0 + b as u64 * bucket + bucket / 2;
                    let y = top + STRIP_H - 2.0 - (*n as f64 / max.max(1) as f64) * (STRIP_H - 4.0);
                    format!("{},{}", f1(ux(t.min(t1))), f1(y))
                })
                .collect();
            let _ = writeln!(
                s,
                "<polyline class=\"{class}\" vector-effect=\"non-scaling-stroke\" points=\"{}\"/>",
                pts.join(" ")
            );
        }
    }
    s.push_str("</svg>\n");
    for (k, (label, _, _)) in strips.iter().enumerate() {
        let top = k as f64 * (STRIP_H + STRIP_GAP) + 2.0;
        let _ = writeln!(
            s,
            "<text class=\"ovl\" x=\"{}\" y=\"{}\" text-anchor=\"end\">{label}</text><text class=\"ovl max\" x=\"{}\" y=\"{}\" text-anchor=\"end\">max {}</text>",
            f1(lw - 6.0),
            f1(top + 14.0),
            f1(lw - 6.0),
            f1(top + 28.0),
            f1(maxima[k])
        );
    }
    // The current zoom range on the overview, and the brush while dragging.
    let _ = writeln!(
        s,
        "<rect id=\"vr\" class=\"vr\" x=\"{}\" y=\"0\" width=\"{}\" height=\"{}\"/><rect id=\"brush\" class=\"brush\" x=\"0\" y=\"0\" width=\"0\" height=\"{}\"/>",
        f1(lw),
        f1(PLOT_W),
        f1(OVERVIEW_H),
        f1(height)
    );
    let _ = writeln!(
        s,
        "<g id=\"axis\" transform=\"translate(0,{})\">",
        f1(OVERVIEW_H)
    );
    let step = tick_step(t1 - t0);
    let mut t = t0.div_ceil(step) * step;
    while t <= t1 {
        let x = layout.x(t);
        let _ = writeln!(
            s,
            "<line class=\"tick\" x1=\"{0}\" y1=\"0\" x2=\"{0}\" y2=\"5\"/><text class=\"axis\" x=\"{0}\" y=\"16\" text-anchor=\"middle\">{1}</text>",
            f1(x),
            axis_label(t)
        );
        t += step;
    }
    s.push_str("</g>\n</svg>\n</div>\n");
}

/// The lanes.
fn plot_svg(s: &mut String, h: &History, m: &Marks, layout: &Layout, width: f64) {
    let lw = layout.label_w;
    let height = layout.height.max(1.0);
    let _ = writeln!(
        s,
        "<svg xmlns=\"http://www.w3.org/2000/svg\" id=\"plot\" width=\"{}\" height=\"{}\" data-t0=\"{}\" data-t1=\"{}\" data-lw=\"{}\" data-pw=\"{}\" data-row=\"{}\" data-pad=\"{}\" data-glyph=\"{}\" role=\"img\"><title>lanes</title>",
        f1(width),
        f1(height),
        layout.t0,
        layout.t1,
        f1(lw),
        f1(PLOT_W),
        f1(ROW_H),
        f1(LANE_PAD),
        f1(GLYPH_PX)
    );
    let _ = writeln!(
        s,
        "<defs><clipPath id=\"clip\"><rect id=\"cliprect\" x=\"{}\" y=\"-10\" width=\"{}\" height=\"1000000\"/></clipPath></defs>",
        f1(lw),
        f1(PLOT_W)
    );
    // Lane backgrounds and labels.
    s.push_str("<g id=\"bg\">\n");
    for (i, lane) in layout.lanes.iter().enumerate() {
        let mut class = String::from("lane");
        if i % 2 == 1 {
            class.push_str(" alt");
        }
        class.push_str(&flag_classes(lane.flags));
        if lane.kind == 's' {
            class.push_str(" s");
        }
        let _ = writeln!(
            s,
            "<g class=\"lb\" data-l=\"{i}\" transform=\"translate(0,{})\"><rect class=\"{class}\" x=\"0\" y=\"0\" width=\"{}\" height=\"{}\"/><text class=\"lbl{}\" x=\"6\" y=\"14\">{}</text></g>",
            f1(lane.y),
            f1(width),
            f1(lane.h),
            flag_classes(lane.flags),
            escape(&lane.label)
        );
    }
    s.push_str("</g>\n");
    // Grid, quiet period and fault shading, behind the marks.
    let _ = writeln!(s, "<g id=\"bands\" clip-path=\"url(#clip)\">");
    let step = tick_step(layout.t1 - layout.t0);
    let mut t = layout.t0.div_ceil(step) * step;
    s.push_str("<g id=\"grid\">");
    while t <= layout.t1 {
        let x = layout.x(t);
        let _ = write!(
            s,
            "<line class=\"grid\" x1=\"{0}\" y1=\"0\" x2=\"{0}\" y2=\"{1}\"/>",
            f1(x),
            f1(height)
        );
        t += step;
    }
    s.push_str("</g>\n");
    let quiet = h.meta.quiet_from.max(layout.t0);
    if quiet < layout.t1 {
        let _ = writeln!(
            s,
            "<rect class=\"quiet\" x=\"{}\" y=\"0\" width=\"{}\" height=\"{}\" data-s=\"w\" data-t=\"{quiet}\" data-u=\"{}\"><title>quiet period from {}: every fault healed</title></rect>",
            f1(layout.x(quiet)),
            f1(layout.x(layout.t1) - layout.x(quiet)),
            f1(height),
            layout.t1,
            secs(h.meta.quiet_from)
        );
    }
    for f in &m.faults {
        if f.kind == FaultKind::Loss || f.to < layout.t0 || f.from > layout.t1 {
            continue;
        }
        let class = if f.kind == FaultKind::Crash {
            "band crash"
        } else {
            "band clog"
        };
        let x0 = layout.x(f.from.max(layout.t0));
        let x1 = layout.x(f.to.min(layout.t1));
        let _ = writeln!(
            s,
            "<rect class=\"{class}\" x=\"{}\" y=\"0\" width=\"{}\" height=\"{}\" data-s=\"w\" data-t=\"{}\" data-u=\"{}\"><title>{} {}..{}</title></rect>",
            f1(x0),
            f1((x1 - x0).max(1.0)),
            f1(height),
            f.from,
            f.to,
            escape(&f.label),
            secs(f.from),
            secs(f.to)
        );
    }
    s.push_str("</g>\n<g id=\"lanes\">\n");
    for (i, lane) in layout.lanes.iter().enumerate() {
        lane_svg(s, h, m, layout, i, lane);
    }
    s.push_str("</g>\n<g id=\"rules\" clip-path=\"url(#clip)\">\n");
    for &r in &layout.rules {
        let mk = &m.marks[r];
        let x = layout.x(mk.at);
        let _ = writeln!(
            s,
            "<line class=\"{}{}\" x1=\"{2}\" y1=\"0\" x2=\"{2}\" y2=\"{3}\" data-s=\"r\" data-e=\"{4}\" data-t=\"{5}\"><title>{6}</title></line>",
            mk.class,
            flag_classes(mk.flags),
            f1(x),
            f1(height),
            events_attr(&mk.events),
            mk.at,
            escape(&marks::title(h, mk))
        );
    }
    s.push_str("</g>\n</svg>\n");
}

fn lane_svg(s: &mut String, h: &History, m: &Marks, layout: &Layout, i: usize, lane: &DrawnLane) {
    let mut attrs = format!(" data-k=\"{}\"", lane.kind);
    let opt = |name: &str, v: &Option<String>| {
        v.as_ref()
            .map(|v| format!(" data-{name}=\"{}\"", escape(v)))
            .unwrap_or_default()
    };
    attrs.push_str(&opt("g", &lane.group));
    attrs.push_str(&opt("q", &lane.queue));
    attrs.push_str(&opt("m", &lane.msg));
    let flags = flag_classes(lane.flags).replace(' ', "");
    if !flags.is_empty() {
        let _ = write!(attrs, " data-f=\"{flags}\"");
    }
    let _ = writeln!(
        s,
        "<g class=\"lm\" data-l=\"{i}\"{attrs} data-tier=\"{}\" transform=\"translate(0,{})\"><g clip-path=\"url(#clip)\">",
        lane.tier,
        f1(lane.y)
    );
    match &lane.source {
        Source::Lane => {
            // Windows under spans under points, each in history order.
            let layer = |sh: Shape| match sh {
                Shape::Window => 0,
                Shape::Span => 1,
                _ => 2,
            };
            for l in 0..3 {
                for (mi, row) in &lane.marks {
                    let mk = &m.marks[*mi];
                    if layer(mk.shape) == l {
                        s.push_str(&mark_svg(h, layout, mk, *row, lane.h));
                        s.push('\n');
                    }
                }
            }
        }
        Source::Summary(sum) => s.push_str(&summary_svg(layout, sum, lane.h)),
    }
    s.push_str("</g></g>\n");
}

/// A tick step of 1, 2 or 5 × 10^k ms giving at most about 12 ticks.
pub(super) fn tick_step(span: Millis) -> Millis {
    let mut step = 1;
    loop {
        for m in [1, 2, 5] {
            if span / (step * m) <= 12 {
                return step * m;
            }
        }
        step *= 10;
    }
}

fn axis_label(t: Millis) -> String {
    if t % 1000 == 0 {
        format!("{}s", t / 1000)
    } else {
        let s = format!("{}.{:03}", t / 1000, t % 1000);
        format!("{}s", s.trim_end_matches('0'))
    }
}
