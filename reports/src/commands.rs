//! The outputs of `popsim verify`, `matrix`, `sweep` and `merge`: their row models, their
//! JSON envelopes and their text tables. A run's own report lives in [`crate::report`].
//!
//! Text tables fit a width: by default the verdict comes first and the widest columns are
//! cut with `…` to fit; [`Layout::wide`] prints every cell whole.

use crate::report::SweepSummary;
use serde::{Deserialize, Serialize};
use std::fmt::Write as _;

/// The version of every JSON document and JSON line popsim prints (`schema_version`).
/// Version 2: verify rows carry `unexpected`, `missing` and `reproduce`; matrix cells carry
/// a failing seed per violated invariant and why a cell is masked; sweep lines carry what
/// `popsim merge` needs.
pub const SCHEMA_VERSION: u32 = 2;

/// How wide text output may be.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Layout {
    /// Columns available (a terminal's width, else [`Layout::DEFAULT_WIDTH`]).
    pub width: usize,
    /// Print every cell whole, whatever the width (`--wide`).
    pub wide: bool,
}

impl Layout {
    /// The width assumed when output is not a terminal.
    pub const DEFAULT_WIDTH: usize = 120;
    /// The narrowest layout honoured; below it tables are cut to this.
    pub const MIN_WIDTH: usize = 60;

    pub fn compact(width: usize) -> Self {
        Self {
            width: width.max(Self::MIN_WIDTH),
            wide: false,
        }
    }

    pub fn wide() -> Self {
        Self {
            width: usize::MAX,
            wide: true,
        }
    }
}

impl Default for Layout {
    fn default() -> Self {
        Self::compact(Self::DEFAULT_WIDTH)
    }
}

/// `s` cut to `w` characters, the last one `…` when something was cut.
pub fn cut(s: &str, w: usize) -> String {
    if s.chars().count() <= w {
        return s.to_owned();
    }
    if w == 0 {
        return String::new();
    }
    let mut out: String = s.chars().take(w - 1).collect();
    out.push('…');
    out
}

/// A left-aligned text table. Columns marked `flexible` shrink (widest first, never below
/// their header) until a line fits `width`; their cells are then cut with `…`.
pub fn fit_table(header: &[&str], rows: &[Vec<String>], flexible: &[bool], width: usize) -> String {
    let n = header.len();
    let mut w: Vec<usize> = header.iter().map(|h| h.chars().count()).collect();
    for r in rows {
        for (i, c) in r.iter().enumerate().take(n) {
            w[i] = w[i].max(c.chars().count());
        }
    }
    let floor: Vec<usize> = header.iter().map(|h| h.chars().count().max(6)).collect();
    let total = |w: &[usize]| w.iter().sum::<usize>() + 2 * n.saturating_sub(1);
    while total(&w) > width {
        let Some(i) = (0..n)
            .filter(|&i| flexible.get(i).copied().unwrap_or(false) && w[i] > floor[i])
            .max_by_key(|&i| (w[i], std::cmp::Reverse(i)))
        else {
            break;
        };
        w[i] -= 1;
    }
    let line = |cells: &[String]| {
        let mut l = String::new();
        for (i, c) in cells.iter().enumerate().take(n) {
            let c = cut(c, w[i]);
            if i + 1 == n {
                l.push_str(&c);
            } else {
                let pad = w[i] - c.chars().count();
                l.push_str(&c);
                l.push_str(&" ".repeat(pad + 2));
            }
        }
        l.trim_end().to_owned() + "\n"
    };
    let mut s = line(&header.iter().map(|h| (*h).to_owned()).collect::<Vec<_>>());
    for r in rows {
        s.push_str(&line(r));
    }
    s
}

/// `text` folded into lines of at most `width` characters at spaces, every line after the
/// first indented by `indent` spaces. A word longer than a line stays whole.
pub fn wrap(text: &str, width: usize, indent: usize) -> String {
    let mut out = String::new();
    let mut line = String::new();
    let mut len = 0;
    for word in text.split(' ') {
        let wl = word.chars().count();
        if len > 0 && len + 1 + wl > width {
            out.push_str(line.trim_end());
            out.push('\n');
            line = " ".repeat(indent);
            len = indent;
        } else if len > 0 {
            line.push(' ');
            len += 1;
        }
        line.push_str(word);
        len += wl;
    }
    out.push_str(line.trim_end());
    out
}

/// Every line of `text` longer than the layout's width wrapped at spaces, continuations
/// indented four more than the line; lines starting with `reproduce:` (commands to copy)
/// and a wide layout are left whole.
pub fn fit_lines(text: &str, layout: Layout) -> String {
    if layout.wide {
        return text.to_owned();
    }
    let mut out = String::with_capacity(text.len());
    for l in text.lines() {
        if l.chars().count() <= layout.width || l.starts_with("reproduce: ") {
            out.push_str(l);
        } else {
            let lead = &l[..l.len() - l.trim_start().len()];
            out.push_str(lead);
            out.push_str(
                &wrap(l.trim_start(), layout.width.saturating_sub(lead.len()), 4)
                    .replace('\n', &format!("\n{lead}")),
            );
        }
        out.push('\n');
    }
    out
}

fn pretty(v: &serde_json::Value) -> String {
    serde_json::to_string_pretty(v).expect("a JSON value serialises") + "\n"
}

// ---------------------------------------------------------------------------------------
// verify

/// One row of `popsim verify`: a scenario with some switches on, on one seed, against what
/// the row declares.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct VerifyRow {
    pub scenario: String,
    /// `bug: a + b`, `fixed`, `develop`, `fix: f`, or a `regression …` row.
    pub variant: String,
    pub seed: u64,
    pub expected: String,
    pub observed: String,
    #[serde(rename = "match")]
    pub ok: bool,
    /// Invariants violated that the row does not declare.
    pub unexpected: Vec<String>,
    /// Invariants the row declares violated that held.
    pub missing: Vec<String>,
    /// The command line that replays the row.
    pub reproduce: String,
}

/// The verify table: compact (verdict first, expectations only for a mismatch) or, with
/// [`Layout::wide`], every column whole.
pub fn render_verify_text(rows: &[VerifyRow], layout: Layout) -> String {
    let verdict = |r: &VerifyRow| if r.ok { "ok" } else { "MISMATCH" }.to_owned();
    let mut s = if layout.wide {
        let header = [
            "scenario", "variant", "seed", "expected", "observed", "match",
        ];
        let cells: Vec<Vec<String>> = rows
            .iter()
            .map(|r| {
                vec![
                    r.scenario.clone(),
                    r.variant.clone(),
                    r.seed.to_string(),
                    r.expected.clone(),
                    r.observed.clone(),
                    verdict(r),
                ]
            })
            .collect();
        fit_table(&header, &cells, &[false; 6], usize::MAX)
    } else {
        let header = ["verdict", "scenario", "variant", "seed", "observed"];
        let cells: Vec<Vec<String>> = rows
            .iter()
            .map(|r| {
                vec![
                    verdict(r),
                    r.scenario.clone(),
                    r.variant.clone(),
                    r.seed.to_string(),
                    r.observed.clone(),
                ]
            })
            .collect();
        let table = fit_table(
            &header,
            &cells,
            &[false, true, true, false, true],
            layout.width,
        );
        // A mismatch is followed by what the row expected and how to replay it.
        let mut lines = table.lines();
        let mut out = String::new();
        if let Some(h) = lines.next() {
            out.push_str(h);
            out.push('\n');
        }
        for (r, l) in rows.iter().zip(lines) {
            out.push_str(l);
            out.push('\n');
            if !r.ok {
                let mut why = format!("expected {}", r.expected);
                if !r.unexpected.is_empty() {
                    let _ = write!(why, "; also violated {}", r.unexpected.join(", "));
                }
                if !r.missing.is_empty() {
                    let _ = write!(why, "; held {}", r.missing.join(", "));
                }
                out.push_str("    ");
                out.push_str(&wrap(&why, layout.width.saturating_sub(4), 6));
                out.push('\n');
                let _ = writeln!(out, "    reproduce: {}", r.reproduce);
            }
        }
        out
    };
    let bad = rows.iter().filter(|r| !r.ok).count();
    let _ = writeln!(
        s,
        "\n{} rows, {}",
        rows.len(),
        if bad == 0 {
            "all match".to_owned()
        } else {
            format!("{bad} do not match")
        }
    );
    s
}

/// The verify document.
pub fn render_verify_json(rows: &[VerifyRow]) -> String {
    let ok = rows.iter().all(|r| r.ok);
    pretty(&serde_json::json!({
        "schema_version": SCHEMA_VERSION,
        "command": "verify",
        "rows": rows,
        "ok": ok,
    }))
}

// ---------------------------------------------------------------------------------------
// matrix

/// A violated invariant in a matrix cell, with the first pinned seed that shows it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct MatrixFailure {
    /// An invariant name, or `(panic)`.
    pub invariant: String,
    pub seed: u64,
    pub reproduce: String,
}

/// One scenario under one release profile, over the scenario's pinned seeds.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct MatrixCell {
    pub release: String,
    /// Every invariant violated on some pinned seed (and `(panic)`), sorted.
    pub violated: Vec<String>,
    /// One failing seed per violated invariant, in the order of `violated`.
    pub failures: Vec<MatrixFailure>,
    /// Why a cell holds although the release ships a bug the scenario replays.
    pub masked: Option<String>,
}

/// One scenario across every release profile.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct MatrixRow {
    pub scenario: String,
    pub cells: Vec<MatrixCell>,
}

fn cell_word(c: &MatrixCell) -> String {
    match (c.violated.len(), &c.masked) {
        (0, None) => "ok".to_owned(),
        (0, Some(_)) => "ok (masked)".to_owned(),
        (1, _) => c.violated[0].clone(),
        (n, _) => format!("{n} violated"),
    }
}

/// The matrix: a cell per scenario and release, then every red cell with its failing seeds
/// and `reproduce:` lines, and every masked cell with its reason.
pub fn render_matrix_text(rows: &[MatrixRow], layout: Layout) -> String {
    let mut s =
        String::from("Invariants broken per release (over each scenario's pinned seeds):\n\n");
    let releases: Vec<&str> = rows
        .first()
        .map(|r| r.cells.iter().map(|c| c.release.as_str()).collect())
        .unwrap_or_default();
    let mut header = vec!["verdict", "scenario"];
    header.extend(releases.iter().copied());
    let cells: Vec<Vec<String>> = rows
        .iter()
        .map(|r| {
            let red = r.cells.iter().any(|c| !c.violated.is_empty());
            let mut row = vec![
                if red { "FAIL" } else { "ok" }.to_owned(),
                r.scenario.clone(),
            ];
            row.extend(r.cells.iter().map(|c| {
                if layout.wide {
                    if c.violated.is_empty() {
                        cell_word(c)
                    } else {
                        c.violated.join(", ")
                    }
                } else {
                    cell_word(c)
                }
            }));
            row
        })
        .collect();
    let mut flexible = vec![false, false];
    flexible.extend(releases.iter().map(|_| true));
    s.push_str(&fit_table(&header, &cells, &flexible, layout.width));
    let mut details = String::new();
    for r in rows {
        for c in &r.cells {
            for f in &c.failures {
                let _ = writeln!(
                    details,
                    "  {} on {}: {} (seed {})\n    reproduce: {}",
                    r.scenario, c.release, f.invariant, f.seed, f.reproduce
                );
            }
            if let Some(m) = &c.masked {
                let line = format!("{} on {}: masked: {m}", r.scenario, c.release);
                let _ = writeln!(
                    details,
                    "  {}",
                    wrap(&line, layout.width.saturating_sub(2), 4)
                );
            }
        }
    }
    if !details.is_empty() {
        s.push_str("\nRed and masked cells:\n");
        s.push_str(&details);
    }
    s
}

/// The matrix document: `violated` per release as before, and `cells` with the seeds.
pub fn render_matrix_json(rows: &[MatrixRow]) -> String {
    let any = rows
        .iter()
        .any(|r| r.cells.iter().any(|c| !c.violated.is_empty()));
    let out: Vec<serde_json::Value> = rows
        .iter()
        .map(|r| {
            let violated: serde_json::Map<String, serde_json::Value> = r
                .cells
                .iter()
                .map(|c| (c.release.clone(), serde_json::json!(c.violated)))
                .collect();
            let cells: serde_json::Map<String, serde_json::Value> = r
                .cells
                .iter()
                .map(|c| {
                    (
                        c.release.clone(),
                        serde_json::json!({
                            "violated": c.violated,
                            "failures": c.failures,
                            "masked": c.masked,
                        }),
                    )
                })
                .collect();
            serde_json::json!({"scenario": r.scenario, "violated": violated, "cells": cells})
        })
        .collect();
    pretty(&serde_json::json!({
        "schema_version": SCHEMA_VERSION,
        "command": "matrix",
        "rows": out,
        "any_violated": any,
    }))
}

// ---------------------------------------------------------------------------------------
// sweep

/// Failures that look alike: the same invariant with the same witness shape (the kinds of
/// events its witness shows, in order).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct FailureGroup {
    /// An invariant name, or `panic`.
    pub invariant: String,
    pub shape: String,
    pub seeds: u64,
    /// The smallest seeds of the group, at most [`SweepSummary::FIRST_SEEDS`].
    pub first_seeds: Vec<u64>,
}

/// Everything a sweep (or a merge of shards) prints, timing aside.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct SweepReport {
    /// The scenario as given on the command line (a name or a file).
    pub source: String,
    pub seeds: String,
    /// `I/N` of a sharded run.
    pub shard: Option<String>,
    pub behaviours: Vec<String>,
    pub fixes: Vec<String>,
    /// The `--bug`/`--fix`/`--release` words of the command line.
    pub switches: String,
    pub summary: SweepSummary,
    pub groups: Vec<FailureGroup>,
    pub first_failing: Option<u64>,
    pub first_panic: Option<(u64, String)>,
    /// `Some` when the sweep checked determinism: the seeds whose two runs differed.
    pub nondeterministic: Option<Vec<u64>>,
    /// Wall seconds the seeds took (added up over shards for a merge).
    pub wall_s: f64,
}

/// The sweep's text: header, summary table, failure groups, determinism, reproduce line and
/// timing (the only line that differs between a sweep and a merge of its shards).
pub fn render_sweep_report_text(r: &SweepReport, layout: Layout) -> String {
    let mut s = String::new();
    let _ = writeln!(
        s,
        "sweep: seeds {}{}, {} runs, behaviours: {}",
        r.seeds,
        r.shard
            .as_ref()
            .map(|t| format!(" (shard {t})"))
            .unwrap_or_default(),
        r.summary.runs,
        if r.behaviours.is_empty() {
            "none (every fix in)".to_owned()
        } else {
            r.behaviours.join(", ")
        }
    );
    if !r.fixes.is_empty() {
        let _ = writeln!(s, "proposed fixes: {}", r.fixes.join(", "));
    }
    if layout.wide {
        s.push_str(&crate::report::render_sweep_text(&r.summary));
    } else {
        // Invariants that applied to no run are folded into one line.
        let mut judged = r.summary.clone();
        let na: Vec<String> = judged
            .invariants
            .iter()
            .filter(|t| t.held == 0 && t.violated == 0)
            .map(|t| t.name.clone())
            .collect();
        judged.invariants.retain(|t| t.held > 0 || t.violated > 0);
        s.push_str(&crate::report::render_sweep_text(&judged));
        if !na.is_empty() {
            let _ = writeln!(s, "  n/a on every run: {}", na.join(", "));
        }
    }
    if !r.groups.is_empty() {
        s.push_str("\n  failures by invariant and witness shape:\n");
        let cells: Vec<Vec<String>> = r
            .groups
            .iter()
            .map(|g| {
                vec![
                    g.seeds.to_string(),
                    g.invariant.clone(),
                    g.shape.clone(),
                    g.first_seeds
                        .iter()
                        .map(u64::to_string)
                        .collect::<Vec<_>>()
                        .join(", "),
                ]
            })
            .collect();
        let table = fit_table(
            &["seeds", "invariant", "witness shape", "first seeds"],
            &cells,
            &[false, false, !layout.wide, false],
            layout.width.saturating_sub(4),
        );
        for l in table.lines() {
            let _ = writeln!(s, "    {l}");
        }
    }
    if let Some((seed, p)) = &r.first_panic {
        let _ = writeln!(s, "  first panic: seed {seed}: {p}");
    }
    if let Some(bad) = &r.nondeterministic {
        let _ = writeln!(
            s,
            "  determinism: {}",
            if bad.is_empty() {
                "every seed gave the same history twice".to_owned()
            } else {
                format!(
                    "FAILED on seeds {}",
                    bad.iter()
                        .map(u64::to_string)
                        .collect::<Vec<_>>()
                        .join(", ")
                )
            }
        );
    }
    if let Some(seed) = r.first_failing {
        let _ = writeln!(
            s,
            "reproduce: popsim run {}{} --seed {seed}",
            r.source, r.switches
        );
    }
    let _ = writeln!(
        s,
        "time: {:.1} s wall, {:.1} seeds/s",
        r.wall_s,
        r.summary.runs as f64 / r.wall_s.max(1e-9)
    );
    fit_lines(&s, layout)
}

/// The summary line of `popsim sweep --format json` (and of `popsim merge`): the sweep's
/// header fields (`header` must serialise to an object), then the totals of `r`.
pub fn render_sweep_summary_line(header: &impl Serialize, r: &SweepReport) -> String {
    let mut v = serde_json::json!({"type": "summary", "schema_version": SCHEMA_VERSION});
    if let (Some(obj), Ok(serde_json::Value::Object(head))) =
        (v.as_object_mut(), serde_json::to_value(header))
    {
        obj.extend(head);
        obj.insert(
            "nondeterministic_seeds".into(),
            serde_json::json!(r.nondeterministic.clone().unwrap_or_default()),
        );
        obj.insert("summary".into(), serde_json::json!(r.summary));
        obj.insert("groups".into(), serde_json::json!(r.groups));
        obj.insert("first_failing".into(), serde_json::json!(r.first_failing));
        obj.insert("wall_s".into(), serde_json::json!(r.wall_s));
    }
    v.to_string()
}

// ---------------------------------------------------------------------------------------
// run

/// What `popsim run --format json` says ran, besides the report.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RunParameters {
    pub scenario: String,
    /// The scenario as given on the command line.
    pub source: String,
    pub seed: u64,
    /// `--seed`, `MADSIM_TEST_SEED` or `random`.
    pub seed_source: String,
    pub behaviours: Vec<String>,
    pub fixes: Vec<String>,
    pub release: Option<String>,
    /// Broker keys that differ from upstream's defaults, `key=value`.
    pub broker: Vec<String>,
    /// Proxy keys that differ from upstream's defaults, `key=value`.
    pub proxy: Vec<String>,
    /// Values the loader replaced (`what: from → to`), as `describe` lists them.
    pub replaced: Vec<String>,
    pub duration_ms: u64,
    pub quiet_from_ms: u64,
}

/// The `popsim run --format json` document. `second_hash` is the determinism check's second
/// history hash, when it ran.
pub fn render_run_json(
    p: &RunParameters,
    report: Option<&crate::report::RunReport>,
    panic: Option<String>,
    first_hash: u64,
    second_hash: Option<u64>,
    failed: bool,
    reproduce: &str,
) -> String {
    pretty(&serde_json::json!({
        "schema_version": SCHEMA_VERSION,
        "command": "run",
        "parameters": p,
        "report": report,
        "panic": panic,
        "determinism": second_hash.map(|h| serde_json::json!({
            "ok": h == first_hash,
            "second_hash": format!("{h:016x}"),
        })),
        "failed": failed,
        "reproduce": failed.then_some(reproduce),
    }))
}
