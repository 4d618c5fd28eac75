//! The report model: one serde type per run ([`RunReport`]) and one per sweep
//! ([`SweepSummary`]), and the renderers over them. Every output format is a view of the
//! same model, so the numbers agree everywhere and a JSON report can be re-rendered later.

use crate::describe::{event_fields, event_line, event_type};
use crate::history::{EventKind, History};
use crate::invariants::index::{is_success, secs, DeliveryClass, Facts};
use crate::invariants::{self, Affected, AffectedList, InvariantResult, Status, StepHook, Witness};
use broker_core::{BrokerEvent, Release};
use serde::{Deserialize, Serialize};
use std::fmt::Write as _;

/// Everything one run's report says.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RunReport {
    pub scenario: String,
    pub seed: u64,
    pub release: Option<String>,
    /// Historical behaviours switched on (a release profile's included).
    pub behaviours: Vec<String>,
    pub faulty: bool,
    /// Virtual time the run lasted.
    pub virtual_duration_ms: u64,
    /// [`History::hash`] as 16 hex digits: equal seeds must give equal hashes.
    pub history_hash: String,
    pub events: usize,
    pub counts: Counts,
    pub invariants: Vec<InvariantReport>,
    /// The command line that replays this run.
    pub reproduce: String,
}

/// What happened, in numbers.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Counts {
    /// Messages a producer got SEND_OK for.
    pub produced: u64,
    /// Messages handed to consumers in pop responses (retry copies included).
    pub delivered: u64,
    pub listener_runs: u64,
    /// Acks the broker answered `SUCCESS`.
    pub acked: u64,
    pub skipped_on_receipt: u64,
    /// Messages the broker revived into a retry topic.
    pub revived: u64,
    /// Deliveries of retry copies.
    pub retried_deliveries: u64,
    pub sent_to_dlq: u64,
    pub duplicates: Duplicates,
}

/// Deliveries of a message a group already had, by cause. A redelivery after a
/// changeInvisibleTime (a nack) or after a reset is asked for, so it is not a duplicate.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Duplicates {
    /// A retry copy delivered after the group's effective ack (bug (c)'s shape).
    pub revive_after_ack: u64,
    /// The original popped again after the group's effective ack (bug (a)'s shape).
    pub re_pop_after_ack: u64,
    /// Delivered again because the previous receipt lapsed without an ack (bug (b)'s shape,
    /// and at-least-once's normal cost of a slow consumer).
    pub redelivery_after_timeout: u64,
    /// A retry copy already in flight when the ack came: revived earlier from a receipt chain
    /// the ack did not cover (two chains of one message arise when a crash rolls an offset
    /// back).
    pub concurrent_copy: u64,
}

/// One invariant's verdict, with its evidence spelled out as event lines.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct InvariantReport {
    pub name: String,
    pub statement: String,
    #[serde(flatten)]
    pub status: Status,
    pub witness: Option<WitnessReport>,
    pub notes: Vec<WitnessReport>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct WitnessReport {
    pub msg_id: Option<String>,
    pub summary: String,
    pub events: Vec<EventLine>,
    /// A violation's witness: every message (or queue, or offset call) the violation
    /// touched, the witness's own included, up to [`invariants::MAX_AFFECTED`]. Absent in
    /// notes.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub affected: Vec<AffectedReport>,
    /// How many more records there were past the cap.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub affected_omitted: usize,
}

fn is_zero(n: &usize) -> bool {
    *n == 0
}

/// One history event, as a witness shows it: the formatted line and its fields.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct EventLine {
    /// Index into the history's events.
    pub index: usize,
    pub at_ms: u64,
    pub node: String,
    /// The event's type as the saved history spells it (`delivered`, `ack-result`; a broker
    /// event's kind, e.g. `revived`).
    #[serde(rename = "type", default)]
    pub event_type: String,
    #[serde(flatten)]
    pub fields: Fields,
    /// `[t=12.345s node] what happened`.
    pub line: String,
}

/// What an event or an affected record names; each absent where it names nothing.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Fields {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub msg_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub group: Option<String>,
    /// For a retry copy, the retry topic (its queue and offset are the retry topic's).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub topic: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub queue_id: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub queue_offset: Option<u64>,
}

/// One message (or queue, or call) a violation touched.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AffectedReport {
    /// What went wrong for it, e.g. `revived-after-ack`, `not-acked`, `over-delivered`.
    pub kind: String,
    #[serde(flatten)]
    pub fields: Fields,
    /// The events that show it, in history order.
    pub times: Vec<EventTime>,
}

/// An event of an affected record: where it is in the history, when, and what it was.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct EventTime {
    pub index: usize,
    pub at_ms: u64,
    #[serde(rename = "type")]
    pub event_type: String,
}

impl RunReport {
    /// Checks the invariants named in `only` (empty = all) and builds the report.
    pub fn from_history(history: &History, only: &[String]) -> Self {
        let checked = check_and_count(history, only, true);
        let counts = checked.counts.expect("asked for");
        Self::new(history, &checked.results, counts, history.hash())
    }

    /// Builds the report from what [`check_and_count`] and [`History::hash`] found on
    /// `history` (a run at scale spends seconds on each, so they are not done again here).
    pub fn new(history: &History, results: &[InvariantResult], counts: Counts, hash: u64) -> Self {
        let meta = &history.meta;
        Self {
            scenario: meta.scenario.clone(),
            seed: meta.seed,
            release: meta.release.clone(),
            behaviours: meta.behaviours.clone(),
            faulty: meta.faulty,
            virtual_duration_ms: meta.end_at,
            history_hash: format!("{hash:016x}"),
            events: history.events.len(),
            counts,
            invariants: results
                .iter()
                .map(|r| invariant_report(history, r))
                .collect(),
            reproduce: reproduce(history),
        }
    }

    /// Names of the violated invariants, in report order.
    pub fn violated(&self) -> Vec<&str> {
        self.invariants
            .iter()
            .filter(|i| i.status == Status::Violated)
            .map(|i| i.name.as_str())
            .collect()
    }

    pub fn passed(&self) -> bool {
        self.violated().is_empty()
    }
}

fn witness_report(history: &History, w: &Witness, affected: &AffectedList) -> WitnessReport {
    WitnessReport {
        msg_id: w.msg_id.clone(),
        summary: w.summary.clone(),
        events: w
            .events
            .iter()
            .filter_map(|i| history.events.get(*i).map(|e| (i, e)))
            .map(|(i, e)| EventLine {
                index: *i,
                at_ms: e.at,
                node: e.node.to_string(),
                event_type: event_type(&e.kind).to_owned(),
                fields: fields_of(&e.kind),
                line: event_line(e),
            })
            .collect(),
        affected: affected
            .items
            .iter()
            .map(|a| affected_report(history, a))
            .collect(),
        affected_omitted: affected.omitted,
    }
}

fn fields_of(kind: &EventKind) -> Fields {
    let f = event_fields(kind);
    Fields {
        msg_id: f.msg_id.map(str::to_owned),
        group: f.group.map(str::to_owned),
        topic: f.topic.map(str::to_owned),
        queue_id: f.queue_id,
        queue_offset: f.queue_offset,
    }
}

fn affected_report(history: &History, a: &Affected) -> AffectedReport {
    AffectedReport {
        kind: a.kind.to_owned(),
        fields: Fields {
            msg_id: a.msg_id.clone(),
            group: a.group.clone(),
            topic: a.topic.clone(),
            queue_id: a.queue_id,
            queue_offset: a.queue_offset,
        },
        times: a
            .events
            .iter()
            .filter_map(|i| history.events.get(*i).map(|e| (i, e)))
            .map(|(i, e)| EventTime {
                index: *i,
                at_ms: e.at,
                event_type: event_type(&e.kind).to_owned(),
            })
            .collect(),
    }
}

fn invariant_report(history: &History, r: &InvariantResult) -> InvariantReport {
    InvariantReport {
        name: r.name.to_owned(),
        statement: r.statement.to_owned(),
        status: r.status.clone(),
        witness: r
            .witness
            .as_ref()
            .map(|w| witness_report(history, w, &r.affected)),
        notes: r
            .notes
            .iter()
            .map(|w| witness_report(history, w, &AffectedList::default()))
            .collect(),
    }
}

/// A history checked: the verdicts, and the tallies if asked for, from one set of [`Facts`].
#[derive(Clone, Debug)]
pub struct Checked {
    pub results: Vec<InvariantResult>,
    pub counts: Option<Counts>,
}

/// Checks the invariants named in `only` (empty = all) and, with `tally`, tallies the
/// history; the counts' duplicates read the ack analysis the checkers built (computed here if
/// none of them did).
pub fn check_and_count(history: &History, only: &[String], tally: bool) -> Checked {
    check_and_count_with(history, only, tally, &mut invariants::run_step)
}

/// [`check_and_count`], each step (a shared fact, an invariant, the tally) run through
/// `step`, which may measure it.
pub fn check_and_count_with(
    history: &History,
    only: &[String],
    tally: bool,
    step: StepHook<'_>,
) -> Checked {
    let facts = Facts::new(history);
    let results = invariants::check_facts(&facts, only, step);
    let mut tallied = None;
    if tally {
        step("counts", &mut || tallied = Some(counts(&facts)));
    }
    Checked {
        results,
        counts: tallied,
    }
}

/// Tallies the history; duplicates use the same ack analysis as the invariants.
fn counts(facts: &Facts) -> Counts {
    let history = facts.h;
    let mut c = Counts::default();
    for e in &history.events {
        match &e.kind {
            EventKind::Produced { .. } => c.produced += 1,
            EventKind::Delivered { retry_topic, .. } => {
                c.delivered += 1;
                c.retried_deliveries += u64::from(retry_topic.is_some());
            }
            EventKind::ListenerStarted { .. } => c.listener_runs += 1,
            EventKind::AckResult { outcome, .. } => c.acked += u64::from(is_success(outcome)),
            EventKind::SkippedOnReceipt { .. } => c.skipped_on_receipt += 1,
            EventKind::SentToDlq { .. } => c.sent_to_dlq += 1,
            EventKind::Broker(BrokerEvent::Revived { .. }) => c.revived += 1,
            _ => {}
        }
    }
    for (idx, class) in &facts.acks().classes {
        let (idx, class) = (*idx, *class);
        let d = &mut c.duplicates;
        match class {
            DeliveryClass::AfterAck { .. } => {
                let retry = matches!(
                    &history.events[idx].kind,
                    EventKind::Delivered {
                        retry_topic: Some(_),
                        ..
                    }
                );
                if retry {
                    d.revive_after_ack += 1;
                } else {
                    d.re_pop_after_ack += 1;
                }
            }
            DeliveryClass::AfterTimeout => d.redelivery_after_timeout += 1,
            DeliveryClass::ConcurrentCopy => d.concurrent_copy += 1,
            DeliveryClass::First | DeliveryClass::ResetReplay { .. } | DeliveryClass::AfterNack => {
            }
        }
    }
    c
}

/// `popsim run <scenario> --seed <seed>`, with `--release` and the `--bug`s the release
/// profile does not already switch on.
fn reproduce(history: &History) -> String {
    let meta = &history.meta;
    let mut s = format!("popsim run {} --seed {}", meta.scenario, meta.seed);
    let profile = meta
        .release
        .as_deref()
        .and_then(|r| r.parse::<Release>().ok());
    if let Some(r) = &meta.release {
        write!(s, " --release {r}").expect("writing to a String");
    }
    for b in &meta.behaviours {
        let in_profile = profile.is_some_and(|p| p.behaviours().iter().any(|x| x.name() == b));
        if !in_profile {
            write!(s, " --bug {b}").expect("writing to a String");
        }
    }
    s
}

fn status_word(s: &Status) -> &'static str {
    match s {
        Status::Held => "held",
        Status::Violated => "VIOLATED",
        Status::NotApplicable { .. } => "n/a",
    }
}

fn verdict_line(r: &RunReport) -> String {
    let v = r.violated();
    match v.len() {
        0 => "PASS: no invariant violated".to_owned(),
        1 => format!("FAIL: 1 invariant violated: {}", v[0]),
        n => format!("FAIL: {n} invariants violated: {}", v.join(", ")),
    }
}

fn counts_lines(c: &Counts) -> [String; 2] {
    let d = &c.duplicates;
    // Only push consumers run listeners; deliveries without any listener run went to
    // scripted consumers, which ack when a step says so.
    let listener_runs = if c.listener_runs == 0 && c.delivered > 0 {
        "scripted".to_owned()
    } else {
        c.listener_runs.to_string()
    };
    [
        format!(
            "produced {}, delivered {}, listener runs {}, acked {}, skipped on receipt {}, revived {}, retried deliveries {}, sent to DLQ {}",
            c.produced,
            c.delivered,
            listener_runs,
            c.acked,
            c.skipped_on_receipt,
            c.revived,
            c.retried_deliveries,
            c.sent_to_dlq
        ),
        format!(
            "duplicate deliveries: revive-after-ack {}, re-pop-after-ack {}, redelivery-after-timeout {}, concurrent copy {}",
            d.revive_after_ack, d.re_pop_after_ack, d.redelivery_after_timeout, d.concurrent_copy
        ),
    ]
}

fn header_fields(r: &RunReport) -> Vec<(&'static str, String)> {
    let behaviours = if r.behaviours.is_empty() {
        "none (every fix in)".to_owned()
    } else {
        r.behaviours.join(", ")
    };
    vec![
        ("scenario", r.scenario.clone()),
        ("seed", r.seed.to_string()),
        (
            "release",
            r.release.clone().unwrap_or_else(|| "-".to_owned()),
        ),
        ("behaviours", behaviours),
        (
            "faults",
            if r.faulty {
                "injected".to_owned()
            } else {
                "none".to_owned()
            },
        ),
        ("virtual duration", secs(r.virtual_duration_ms)),
        ("events", r.events.to_string()),
        ("history hash", r.history_hash.clone()),
    ]
}

/// At most this many message ids are named on a report's `affected:` line.
const AFFECTED_NAMED: usize = 10;

/// `affected: 12 records (6 revived-after-ack, 6 retry-delivered-after-ack); messages p1-0,
/// …`, when a violation touched more than its witness shows.
fn affected_line(w: &WitnessReport) -> Option<String> {
    let total = w.affected.len() + w.affected_omitted;
    if total < 2 {
        return None;
    }
    let mut kinds: Vec<(&str, usize)> = Vec::new();
    let mut msgs: Vec<&str> = Vec::new();
    for a in &w.affected {
        match kinds.iter_mut().find(|(k, _)| *k == a.kind) {
            Some((_, n)) => *n += 1,
            None => kinds.push((&a.kind, 1)),
        }
        if let Some(m) = a.fields.msg_id.as_deref() {
            if !msgs.contains(&m) {
                msgs.push(m);
            }
        }
    }
    let kinds: Vec<String> = kinds.iter().map(|(k, n)| format!("{n} {k}")).collect();
    let mut line = format!("affected: {total} records");
    if w.affected_omitted > 0 {
        write!(line, " ({} not listed)", w.affected_omitted).expect("writing to a String");
    }
    write!(line, " ({})", kinds.join(", ")).expect("writing to a String");
    if !msgs.is_empty() {
        let named: Vec<&str> = msgs.iter().take(AFFECTED_NAMED).copied().collect();
        write!(line, "; messages {}", named.join(", ")).expect("writing to a String");
        if msgs.len() > AFFECTED_NAMED {
            write!(line, " and {} more", msgs.len() - AFFECTED_NAMED).expect("writing to a String");
        }
    }
    Some(line)
}

/// A terminal-friendly report, every line whole. Witness events are `[t=12.345s node] …`
/// lines.
pub fn render_text(r: &RunReport) -> String {
    render_text_wide(r)
}

/// The text report for a layout: [`Layout::wide`] gives [`render_text`]; a compact layout
/// folds the invariants that did not apply into one line and wraps every longer line to
/// the width (continuations indented).
pub fn render_text_with(r: &RunReport, layout: crate::commands::Layout) -> String {
    if layout.wide {
        return render_text_wide(r);
    }
    let mut folded = r.clone();
    let na: Vec<String> = r
        .invariants
        .iter()
        .filter(|i| matches!(i.status, Status::NotApplicable { .. }))
        .map(|i| i.name.clone())
        .collect();
    folded
        .invariants
        .retain(|i| !matches!(i.status, Status::NotApplicable { .. }));
    let mut text = render_text_wide(&folded);
    if !na.is_empty() {
        let line = format!(
            "  n/a      {} (nothing to judge in this run; --wide gives the reasons)\n",
            na.join(", ")
        );
        // After the last invariant line, before the verdict's blank line.
        let cut_at = text
            .rfind("\n\nPASS")
            .or_else(|| text.rfind("\n\nFAIL"))
            .map_or(text.len(), |i| i + 1);
        text.insert_str(cut_at, &line);
    }
    crate::commands::fit_lines(&text, layout)
}

fn render_text_wide(r: &RunReport) -> String {
    let mut s = String::new();
    let w = |s: &mut String, line: &str| {
        s.push_str(line);
        s.push('\n');
    };
    w(
        &mut s,
        &format!("popsim run report: {} seed {}", r.scenario, r.seed),
    );
    for (k, v) in header_fields(r).into_iter().skip(2) {
        w(&mut s, &format!("  {k:<17}{v}"));
    }
    w(&mut s, "");
    w(&mut s, "counts");
    for line in counts_lines(&r.counts) {
        w(&mut s, &format!("  {line}"));
    }
    w(&mut s, "");
    w(&mut s, "invariants");
    for i in &r.invariants {
        let mut head = format!("  {:<9}{}", status_word(&i.status), i.name);
        if let Status::NotApplicable { reason } = &i.status {
            write!(head, ": {reason}").expect("writing to a String");
        }
        w(&mut s, &head);
        if i.status == Status::Violated {
            w(&mut s, &format!("           {}", i.statement));
        }
        if let Some(wit) = &i.witness {
            let msg = wit
                .msg_id
                .as_deref()
                .map(|m| format!(" ({m})"))
                .unwrap_or_default();
            w(&mut s, &format!("           witness{msg}: {}", wit.summary));
            for e in &wit.events {
                w(&mut s, &format!("             {}", e.line));
            }
            if let Some(line) = affected_line(wit) {
                w(&mut s, &format!("           {line}"));
            }
        }
        for n in &i.notes {
            w(&mut s, &format!("           note: {}", n.summary));
            for e in &n.events {
                w(&mut s, &format!("             {}", e.line));
            }
        }
    }
    w(&mut s, "");
    w(&mut s, &verdict_line(r));
    if !r.passed() {
        w(&mut s, &format!("reproduce: {}", r.reproduce));
    }
    s
}

/// The report as pretty JSON, with the model's field names.
pub fn render_json(r: &RunReport) -> String {
    let mut s = serde_json::to_string_pretty(r).expect("the report model serialises");
    s.push('\n');
    s
}

/// Markdown to paste into a GitHub issue: a header table, the verdicts, and each violation's
/// witness as a text block.
pub fn render_markdown(r: &RunReport) -> String {
    let mut s = String::new();
    let verdict = if r.passed() {
        "pass".to_owned()
    } else {
        format!("violates {}", r.violated().join(", "))
    };
    writeln!(s, "### popsim: `{}` seed {} {verdict}", r.scenario, r.seed)
        .expect("writing to a String");
    s.push_str("\n| | |\n|---|---|\n");
    for (k, v) in header_fields(r) {
        writeln!(s, "| {k} | {} |", md_cell(&v)).expect("writing to a String");
    }
    let [counts, dups] = counts_lines(&r.counts);
    writeln!(s, "\n**Counts:** {counts}; {dups}.").expect("writing to a String");
    s.push_str("\n| invariant | status | details |\n|---|---|---|\n");
    for i in &r.invariants {
        let (status, details) = match (&i.status, &i.witness) {
            (Status::Held, _) => ("held", String::new()),
            (Status::Violated, w) => (
                "**violated**",
                w.as_ref().map(|w| w.summary.clone()).unwrap_or_default(),
            ),
            (Status::NotApplicable { reason }, _) => ("n/a", reason.clone()),
        };
        let mut details = details;
        for n in &i.notes {
            if !details.is_empty() {
                details.push_str("<br>");
            }
            details.push_str(&format!("note: {}", n.summary));
        }
        let row = format!("| `{}` | {status} | {} |", i.name, md_cell(&details));
        writeln!(s, "{}", row.replace("|  |", "| |")).expect("writing to a String");
    }
    for i in r.invariants.iter().filter(|i| i.status == Status::Violated) {
        writeln!(s, "\n#### `{}` violated\n\n> {}", i.name, i.statement)
            .expect("writing to a String");
        if let Some(w) = &i.witness {
            let msg = w
                .msg_id
                .as_deref()
                .map(|m| format!(" (`{m}`)"))
                .unwrap_or_default();
            writeln!(s, "\nWitness{msg}: {}\n\n```text", w.summary).expect("writing to a String");
            for e in &w.events {
                writeln!(s, "{}", e.line).expect("writing to a String");
            }
            s.push_str("```\n");
            if let Some(line) = affected_line(w) {
                writeln!(s, "\n{line}").expect("writing to a String");
            }
        }
    }
    writeln!(s, "\nReproduce:\n\n```sh\n{}\n```", r.reproduce).expect("writing to a String");
    s
}

/// Table cells cannot hold `|` or newlines.
fn md_cell(s: &str) -> String {
    s.replace('|', "\\|").replace('\n', "<br>")
}

/// Many runs of one scenario: how often each invariant failed, and where to look first.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SweepSummary {
    pub scenario: String,
    pub runs: u64,
    /// Runs with a violated invariant or a panic.
    pub failed_runs: u64,
    /// Runs that panicked inside the simulation.
    pub panicked_runs: u64,
    /// The smallest panicking seeds, at most [`SweepSummary::FIRST_SEEDS`].
    pub first_panicking_seeds: Vec<u64>,
    /// One tally per invariant seen, in registry order.
    pub invariants: Vec<InvariantTally>,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct InvariantTally {
    pub name: String,
    pub held: u64,
    pub violated: u64,
    pub not_applicable: u64,
    /// The smallest violating seeds, at most [`SweepSummary::FIRST_SEEDS`].
    pub first_failing_seeds: Vec<u64>,
}

impl SweepSummary {
    /// How many seeds a summary keeps per list: enough to pick one to replay.
    pub const FIRST_SEEDS: usize = 5;

    pub fn new(scenario: impl Into<String>) -> Self {
        Self {
            scenario: scenario.into(),
            ..Self::default()
        }
    }

    /// Adds one run's verdicts.
    pub fn record(&mut self, seed: u64, results: &[InvariantResult]) {
        self.count(seed, results.iter().map(|r| (r.name, &r.status)));
    }

    /// Adds one run's report.
    pub fn add(&mut self, report: &RunReport) {
        self.count(
            report.seed,
            report
                .invariants
                .iter()
                .map(|i| (i.name.as_str(), &i.status)),
        );
    }

    /// Adds one run's verdicts given as invariant names (a sweep's JSON line).
    pub fn record_names(
        &mut self,
        seed: u64,
        held: &[String],
        violated: &[String],
        not_applicable: &[String],
    ) {
        let na = Status::NotApplicable {
            reason: String::new(),
        };
        let verdicts: Vec<(&str, &Status)> = held
            .iter()
            .map(|n| (n.as_str(), &Status::Held))
            .chain(violated.iter().map(|n| (n.as_str(), &Status::Violated)))
            .chain(not_applicable.iter().map(|n| (n.as_str(), &na)))
            .collect();
        self.count(seed, verdicts.into_iter());
    }

    /// Adds one run that panicked (and so has no verdicts).
    pub fn record_panic(&mut self, seed: u64) {
        self.runs += 1;
        self.failed_runs += 1;
        self.panicked_runs += 1;
        keep_smallest(&mut self.first_panicking_seeds, seed);
    }

    fn count<'a>(&mut self, seed: u64, verdicts: impl Iterator<Item = (&'a str, &'a Status)>) {
        self.runs += 1;
        let mut failed = false;
        for (name, status) in verdicts {
            let t = self.tally(name);
            match status {
                Status::Held => t.held += 1,
                Status::NotApplicable { .. } => t.not_applicable += 1,
                Status::Violated => {
                    t.violated += 1;
                    keep_smallest(&mut t.first_failing_seeds, seed);
                    failed = true;
                }
            }
        }
        self.failed_runs += u64::from(failed);
    }

    fn tally(&mut self, name: &str) -> &mut InvariantTally {
        let pos = self
            .invariants
            .iter()
            .position(|t| t.name == name)
            .unwrap_or_else(|| {
                self.invariants.push(InvariantTally {
                    name: name.to_owned(),
                    ..InvariantTally::default()
                });
                let order = |n: &str| {
                    invariants::ALL
                        .iter()
                        .position(|i| i.name == n)
                        .unwrap_or(usize::MAX)
                };
                self.invariants.sort_by_key(|t| order(&t.name));
                self.invariants
                    .iter()
                    .position(|t| t.name == name)
                    .expect("just inserted")
            });
        &mut self.invariants[pos]
    }
}

fn keep_smallest(seeds: &mut Vec<u64>, seed: u64) {
    if let Err(pos) = seeds.binary_search(&seed) {
        seeds.insert(pos, seed);
        seeds.truncate(SweepSummary::FIRST_SEEDS);
    }
}

fn seed_list(seeds: &[u64]) -> String {
    seeds
        .iter()
        .map(u64::to_string)
        .collect::<Vec<_>>()
        .join(", ")
}

/// A terminal-friendly sweep summary.
pub fn render_sweep_text(s: &SweepSummary) -> String {
    let rate = if s.runs == 0 {
        0.0
    } else {
        s.failed_runs as f64 * 100.0 / s.runs as f64
    };
    let mut out = format!(
        "popsim sweep summary: {}\n  runs {}, failed {} ({rate:.2}% of runs), panicked {}\n",
        s.scenario, s.runs, s.failed_runs, s.panicked_runs
    );
    if !s.first_panicking_seeds.is_empty() {
        writeln!(
            out,
            "  first panicking seeds: {}",
            seed_list(&s.first_panicking_seeds)
        )
        .expect("writing to a String");
    }
    out.push_str(
        "\n  invariant                   violated      held       n/a  first failing seeds\n",
    );
    for t in &s.invariants {
        let line = format!(
            "  {:<26}{:>9}{:>10}{:>10}  {}",
            t.name,
            t.violated,
            t.held,
            t.not_applicable,
            seed_list(&t.first_failing_seeds)
        );
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

/// The sweep summary as pretty JSON.
pub fn render_sweep_json(s: &SweepSummary) -> String {
    let mut out = serde_json::to_string_pretty(s).expect("the sweep summary serialises");
    out.push('\n');
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::history::{ConsumeOutcome, OffsetUpdateMode};
    use crate::testkit::{answered, H, T};
    use broker_core::events::ReviveQueueState;
    use broker_core::{CkRef, ResponseCode};

    /// Bug (c)'s shape, small: two acks merged in the CK buffer are flushed without
    /// brokerName, so revive does not match them and both messages come back.
    fn buffered_acks_revived() -> crate::history::History {
        let mut h = H::new();
        h.meta.scenario = "late-ack-after-ck-flush".into();
        h.meta.seed = 3;
        h.meta.release = Some("5.3.1".into());
        h.meta.behaviours = vec![
            "buffered-ack-missing-broker-name".into(),
            "revive-no-blank-broker-name-fallback".into(),
        ];
        h.end(20_000, 100_000);
        h.at(0).produce("m0", 0, 0);
        h.at(10).produce("m1", 0, 1);
        let ds = h.at(1_000).pop_batch("c1", &[("m0", 0), ("m1", 1)], 0);
        let (d0, d1) = (&ds[0], &ds[1]);
        let ck = CkRef {
            num: 2,
            ..h.ck_of(d0)
        };
        for d in [d0, d1] {
            h.at(1_200).listener(d);
            h.listener_done(d, ConsumeOutcome::Success, false);
            h.at(2_500).ack(d);
            h.broker(BrokerEvent::AckMergedInBuffer {
                at: 2_500,
                ck: ck.clone().into(),
                ack_offset: d.queue_offset,
            });
        }
        h.at(11_000).broker(BrokerEvent::CkWritten {
            at: 11_000,
            ck: ck.clone().into(),
            revive_qid: 0,
            revive_offset: 0,
            deliver_at: 10_000,
            reason: "PopBufferMergeService.putCkToStore".into(),
        });
        h.broker(BrokerEvent::AckWritten {
            at: 11_000,
            topic: T.into(),
            group: "g1".into(),
            queue_id: 0,
            start_offset: 0,
            pop_time: 1_000,
            ack_offsets: vec![0, 1].into(),
            broker_name: None,
            revive_qid: 0,
            revive_offset: 1,
            deliver_at: 11_000,
            batch: true,
            reason: "PopBufferMergeService.putBatchAckToStore".into(),
        });
        h.at(13_000)
            .revive_to(d0, ck.clone(), 0, 1, "%RETRY%g1_TopicA");
        h.at(13_000).revive_to(d1, ck, 1, 1, "%RETRY%g1_TopicA");
        h.broker(BrokerEvent::ReviveOffsetCommitted {
            at: 13_000,
            revive_qid: 0,
            offset: 0,
        });
        for (off, msg) in [(0, "m0"), (1, "m1")] {
            let r = h.at(22_000).pop_retry("c1", msg, off, 1);
            h.pop_ck(&r);
            h.listener(&r);
            h.at(22_100).ack(&r);
        }
        h.final_state.revive_queues = vec![ReviveQueueState {
            revive_qid: 0,
            max_offset: 2,
            committed_offset: 0,
            last_deliver_at: Some(11_000),
            delivered: vec![0, 1],
        }];
        h.build()
    }

    /// Orderly consumption with a reset and an offset update the pending reset swallowed.
    fn orderly_with_reset() -> crate::history::History {
        let mut h = H::orderly();
        h.meta.scenario = "orderly-with-reset".into();
        h.meta.seed = 11;
        h.end(5_000, 30_000);
        for o in 0..3 {
            h.at(o * 10).produce(&format!("m{o}"), 0, o);
        }
        let a = h.at(1_000).pop("o1", "m0", 0, 0);
        let b = h.at(1_000).pop("o1", "m1", 0, 1);
        h.at(1_100).ack(&a);
        h.commit("og", 0, 1, "ackOrderly");
        h.at(1_200).ack(&b);
        h.commit("og", 0, 2, "ackOrderly");
        h.at(2_000).reset("og", 0, 1);
        h.at(2_100)
            .update_started(1, OffsetUpdateMode::Sync, "og", 0, 3);
        h.at(2_110).update_completed(
            1,
            Some(answered(
                ResponseCode::Success,
                "Offset has been previously reset",
            )),
            true,
        );
        h.at(3_000).reset_consumed("og", 0, 1);
        h.commit("og", 0, 1, "ResetPopOffset");
        let b2 = h.at(3_000).pop("o1", "m1", 0, 1);
        let c2 = h.at(3_000).pop("o1", "m2", 0, 2);
        h.at(3_100).ack(&b2);
        h.commit("og", 0, 2, "ackOrderly");
        h.at(3_200).ack(&c2);
        h.commit("og", 0, 3, "ackOrderly");
        h.final_offset("og", 0, 3);
        h.build()
    }

    #[test]
    fn report_model_for_a_violation() {
        let report = RunReport::from_history(&buffered_acks_revived(), &[]);
        assert_eq!(report.violated(), ["no-redelivery-after-ack"]);
        insta::assert_yaml_snapshot!("run_report_violation", report);
    }

    #[test]
    fn renderers_for_a_violation() {
        let report = RunReport::from_history(&buffered_acks_revived(), &[]);
        insta::assert_snapshot!("run_report_violation_text", render_text(&report));
        insta::assert_snapshot!("run_report_violation_markdown", render_markdown(&report));
        insta::assert_snapshot!("run_report_violation_json", render_json(&report));
    }

    #[test]
    fn report_model_and_text_for_a_clean_run_with_a_note() {
        let report = RunReport::from_history(&orderly_with_reset(), &[]);
        assert!(report.passed(), "{:?}", report.violated());
        insta::assert_yaml_snapshot!("run_report_clean", report);
        insta::assert_snapshot!("run_report_clean_text", render_text(&report));
    }

    #[test]
    fn json_round_trips_and_only_selects_invariants() {
        let h = buffered_acks_revived();
        let report = RunReport::from_history(&h, &["revive-bookkeeping".into(), "no-loss".into()]);
        let names: Vec<_> = report.invariants.iter().map(|i| i.name.as_str()).collect();
        assert_eq!(names, ["no-loss", "revive-bookkeeping"]);
        let back: RunReport = serde_json::from_str(&render_json(&report)).unwrap();
        assert_eq!(back, report);
        assert_eq!(
            report.reproduce, "popsim run late-ack-after-ck-flush --seed 3 --release 5.3.1",
            "the 5.3.1 profile already carries both behaviours"
        );
    }

    #[test]
    fn counts_classify_duplicates() {
        let c = counts(&Facts::new(&buffered_acks_revived()));
        assert_eq!(
            (c.produced, c.delivered, c.listener_runs, c.acked, c.revived),
            (2, 4, 4, 4, 2)
        );
        assert_eq!(c.retried_deliveries, 2);
        assert_eq!(
            c.duplicates,
            Duplicates {
                revive_after_ack: 2,
                re_pop_after_ack: 0,
                redelivery_after_timeout: 0,
                concurrent_copy: 0
            }
        );
        // A lapsed receipt: the second delivery is a redelivery after timeout.
        let mut h = H::new();
        let d = h.at(0).pop("c1", "m0", 0, 0);
        h.at(12_000).revive(&d, 0, 1);
        h.at(13_000).pop_retry("c1", "m0", 0, 1);
        assert_eq!(
            counts(&Facts::new(&h.build()))
                .duplicates
                .redelivery_after_timeout,
            1
        );
    }

    fn sweep() -> SweepSummary {
        let mut s = SweepSummary::new("late-ack-after-ck-flush");
        let bad = buffered_acks_revived();
        for seed in [9, 4, 7, 1, 8, 2, 6] {
            let mut h = bad.clone();
            h.meta.seed = seed;
            s.add(&RunReport::from_history(&h, &[]));
        }
        s.record(3, &crate::invariants::check(&orderly_with_reset(), &[]));
        s.record_panic(5);
        s
    }

    #[test]
    fn sweep_summary_model_and_renderers() {
        let s = sweep();
        assert_eq!((s.runs, s.failed_runs, s.panicked_runs), (9, 8, 1));
        let t = s
            .invariants
            .iter()
            .find(|t| t.name == "no-redelivery-after-ack")
            .unwrap();
        assert_eq!((t.violated, t.held, t.not_applicable), (7, 1, 0));
        assert_eq!(
            t.first_failing_seeds,
            [1, 2, 4, 6, 7],
            "smallest five, sorted"
        );
        insta::assert_yaml_snapshot!("sweep_summary", s);
        insta::assert_snapshot!("sweep_summary_text", render_sweep_text(&s));
        insta::assert_snapshot!("sweep_summary_json", render_sweep_json(&s));
    }
}
