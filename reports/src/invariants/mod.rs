//! The invariants a run's history must satisfy, one file each, with a registry and one
//! entry point, [`check`].
//!
//! Every checker reads only the [`History`] (events and the broker's final state), never
//! the simulation, so a saved history can be checked again. Each builds what it needs in
//! one pass over the events with ordered maps: the cost is linear or `n·log n` in the
//! history's length.

use crate::history::{EventKind, History};
use index::{witness_events, Facts};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fmt;

mod bounded_deliveries;
mod delivery_integrity;
mod dlq_accounting;
mod fifo_progress;
pub(crate) mod index;
mod no_loss;
mod no_redelivery_after_ack;
mod offset_api_liveness;
mod offset_commit_durable;
mod orderly_commit_safety;
mod orderly_order;
mod reset_leaves_other_queues;
mod reset_takes_effect;
mod revive_bookkeeping;
mod revive_progress;

/// An invariant's registry entry.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct InvariantInfo {
    /// Stable kebab-case name, as scenario files and the command line spell it.
    pub name: &'static str,
    /// One-line statement, shown in reports.
    pub statement: &'static str,
}

/// Whether an invariant held on a run.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "status", rename_all = "kebab-case")]
pub enum Status {
    Held,
    Violated,
    /// The run does not let the invariant be judged (e.g. it never got quiet, or nothing
    /// the invariant speaks about happened).
    NotApplicable {
        reason: String,
    },
}

/// The evidence for a verdict: which message, what went wrong, and the events that show it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Witness {
    pub msg_id: Option<String>,
    pub summary: String,
    /// Indexes into `history.events`, in history order.
    pub events: Vec<usize>,
}

/// Most [`Affected`] records a verdict keeps; the rest are only counted
/// ([`AffectedList::omitted`]), so a run that replays thousands of messages still gives a
/// small report.
pub const MAX_AFFECTED: usize = 1_000;

/// One thing a violation touched, usually a message of a group (else a queue, a revive
/// queue or an offset call), with the events that show it. Fields the invariant does not
/// speak about are `None`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Affected {
    /// What went wrong for this record, in kebab-case (e.g. `revived-after-ack`).
    pub kind: &'static str,
    pub msg_id: Option<String>,
    pub group: Option<String>,
    /// The queue the record is about; for a retry copy, the retry topic's.
    pub topic: Option<String>,
    pub queue_id: Option<u32>,
    pub queue_offset: Option<u64>,
    /// Indexes into `history.events`, in history order (shortened like a witness's).
    pub events: Vec<usize>,
}

impl Affected {
    /// A record of `kind` about what event `idx` names (message, group, queue, offset);
    /// its events are `idx` alone until [`Affected::events`] sets them.
    pub(crate) fn at(kind: &'static str, history: &History, idx: usize) -> Self {
        let mut a = Self {
            kind,
            msg_id: None,
            group: None,
            topic: None,
            queue_id: None,
            queue_offset: None,
            events: vec![idx],
        };
        if let Some(e) = history.events.get(idx) {
            a.fill_from(&e.kind);
        }
        a
    }

    /// Sets the fields `kind` names that are still empty.
    fn fill_from(&mut self, kind: &EventKind) {
        let f = crate::describe::event_fields(kind);
        if self.msg_id.is_none() {
            self.msg_id = f.msg_id.map(str::to_owned);
        }
        if self.group.is_none() {
            self.group = f.group.map(str::to_owned);
        }
        if self.topic.is_none() {
            self.topic = f.topic.map(str::to_owned);
            self.queue_id = f.queue_id;
            self.queue_offset = f.queue_offset;
        }
    }

    /// The group, when the event `at` read it from does not name one.
    pub(crate) fn group(mut self, group: &str) -> Self {
        self.group = Some(group.to_owned());
        self
    }

    /// The events that show it (sorted, deduplicated, shortened like a witness's).
    pub(crate) fn events(mut self, events: Vec<usize>) -> Self {
        self.events = witness_events(events);
        self
    }

    /// Fills what is still empty from the events, the first naming each field winning.
    fn filled(mut self, history: &History) -> Self {
        let events = std::mem::take(&mut self.events);
        for i in &events {
            if let Some(e) = history.events.get(*i) {
                self.fill_from(&e.kind);
            }
        }
        self.events = events;
        self
    }

    /// The one record a witness gives when its checker listed none: its message, and what
    /// the witness events about that message name.
    fn from_witness(kind: &'static str, history: &History, w: &Witness) -> Self {
        let about = |i: &usize| {
            let Some(e) = history.events.get(*i) else {
                return false;
            };
            w.msg_id.is_none()
                || crate::describe::event_fields(&e.kind).msg_id == w.msg_id.as_deref()
        };
        let mut a = Self {
            kind,
            msg_id: w.msg_id.clone(),
            group: None,
            topic: None,
            queue_id: None,
            queue_offset: None,
            events: w.events.clone(),
        };
        for i in w.events.iter().filter(|i| about(i)) {
            a.fill_from(&history.events[*i].kind);
        }
        a
    }
}

/// Every [`Affected`] record of a violation, up to [`MAX_AFFECTED`], in history order (by their
/// events). Records of one kind about the same message, group
/// and queue offset are one record with the events of all (a replay that repeats a hundred
/// times is one record per message).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct AffectedList {
    pub items: Vec<Affected>,
    /// How many more records there were.
    pub omitted: usize,
    /// Where each record's key is in `items`, or `None` past the cap.
    #[serde(skip)]
    keys: BTreeMap<AffectedKey, Option<usize>>,
}

type AffectedKey = (
    &'static str,
    Option<String>,
    Option<String>,
    Option<String>,
    Option<u32>,
    Option<u64>,
);

impl AffectedList {
    /// Adds a record, or merges its events into the record of the same kind about the same
    /// thing; a new record past [`MAX_AFFECTED`] is only counted.
    pub(crate) fn push(&mut self, a: Affected) {
        let key = (
            a.kind,
            a.msg_id.clone(),
            a.group.clone(),
            a.topic.clone(),
            a.queue_id,
            a.queue_offset,
        );
        match self.keys.get(&key) {
            Some(Some(i)) => {
                let item = &mut self.items[*i];
                let mut events = std::mem::take(&mut item.events);
                events.extend(a.events);
                item.events = witness_events(events);
            }
            Some(None) => {}
            None if self.items.len() < MAX_AFFECTED => {
                self.keys.insert(key, Some(self.items.len()));
                self.items.push(a);
            }
            None => {
                self.keys.insert(key, None);
                self.omitted += 1;
            }
        }
    }

    /// How many records there were, kept or not.
    pub fn total(&self) -> usize {
        self.items.len() + self.omitted
    }

    pub fn is_empty(&self) -> bool {
        self.total() == 0
    }

    /// Fills each record's empty fields from its events, and orders the records by their
    /// events (then kind and message, so the order is total).
    fn finish(mut self, history: &History) -> Self {
        self.keys.clear();
        self.items = std::mem::take(&mut self.items)
            .into_iter()
            .map(|a| a.filled(history))
            .collect();
        self.items.sort_by(|a, b| {
            (&a.events, a.kind, &a.msg_id, &a.group).cmp(&(&b.events, b.kind, &b.msg_id, &b.group))
        });
        self
    }
}

/// One invariant's verdict on one run.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct InvariantResult {
    pub name: &'static str,
    pub statement: &'static str,
    pub status: Status,
    /// Set when `status` is `Violated`: the first violation found.
    pub witness: Option<Witness>,
    /// With a violation: every message (or queue, or call) it touched, the witness's
    /// included. Empty otherwise.
    pub affected: AffectedList,
    /// Things a reader should see that do not break the invariant (e.g. an offset update
    /// the broker answered `SUCCESS` but ignored because a reset was pending).
    pub notes: Vec<Witness>,
}

impl InvariantResult {
    pub fn is_violated(&self) -> bool {
        self.status == Status::Violated
    }
}

/// What one checker concluded; the registry adds name and statement.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Verdict {
    pub status: Status,
    pub witness: Option<Witness>,
    pub notes: Vec<Witness>,
    pub affected: AffectedList,
}

impl Verdict {
    pub fn held() -> Self {
        Self {
            status: Status::Held,
            witness: None,
            notes: Vec::new(),
            affected: AffectedList::default(),
        }
    }

    pub fn not_applicable(reason: impl Into<String>) -> Self {
        Self {
            status: Status::NotApplicable {
                reason: reason.into(),
            },
            witness: None,
            notes: Vec::new(),
            affected: AffectedList::default(),
        }
    }

    pub fn violated(witness: Witness) -> Self {
        Self {
            status: Status::Violated,
            witness: Some(witness),
            notes: Vec::new(),
            affected: AffectedList::default(),
        }
    }

    /// Held unless a witness was found.
    pub fn from_witness(witness: Option<Witness>) -> Self {
        witness.map_or_else(Self::held, Self::violated)
    }

    pub fn with_notes(mut self, notes: Vec<Witness>) -> Self {
        self.notes = notes;
        self
    }

    /// Every record the violation touched; ignored unless the verdict is a violation.
    pub fn with_affected(mut self, affected: AffectedList) -> Self {
        self.affected = affected;
        self
    }
}

type Checker = fn(&Facts) -> Verdict;

/// The registry, in report order.
const CHECKERS: &[(InvariantInfo, Checker)] = &[
    (no_loss::INFO, no_loss::check_with),
    (
        no_redelivery_after_ack::INFO,
        no_redelivery_after_ack::check_with,
    ),
    (bounded_deliveries::INFO, bounded_deliveries::check_with),
    (revive_bookkeeping::INFO, |f| revive_bookkeeping::check(f.h)),
    (reset_takes_effect::INFO, reset_takes_effect::check_with),
    (
        reset_leaves_other_queues::INFO,
        reset_leaves_other_queues::check_with,
    ),
    (orderly_order::INFO, orderly_order::check_with),
    (orderly_commit_safety::INFO, |f| {
        orderly_commit_safety::check_with(f)
    }),
    (
        offset_commit_durable::INFO,
        offset_commit_durable::check_with,
    ),
    (offset_api_liveness::INFO, |f| {
        offset_api_liveness::check(f.h)
    }),
    (revive_progress::INFO, |f| revive_progress::check(f.h)),
    (fifo_progress::INFO, |f| fifo_progress::check(f.h)),
    (delivery_integrity::INFO, |f| delivery_integrity::check(f.h)),
    (dlq_accounting::INFO, dlq_accounting::check_with),
];

/// Every invariant, in report order.
pub const ALL: &[InvariantInfo] = &[
    no_loss::INFO,
    no_redelivery_after_ack::INFO,
    bounded_deliveries::INFO,
    revive_bookkeeping::INFO,
    reset_takes_effect::INFO,
    reset_leaves_other_queues::INFO,
    orderly_order::INFO,
    orderly_commit_safety::INFO,
    offset_commit_durable::INFO,
    offset_api_liveness::INFO,
    revive_progress::INFO,
    fifo_progress::INFO,
    delivery_integrity::INFO,
    dlq_accounting::INFO,
];

/// Every invariant name, in report order.
pub fn invariant_names() -> Vec<&'static str> {
    ALL.iter().map(|i| i.name).collect()
}

/// An invariant name that is not in the registry; the message lists the valid ones.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UnknownInvariant {
    pub given: String,
}

impl fmt::Display for UnknownInvariant {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "unknown invariant `{}`; valid: {}",
            self.given,
            invariant_names().join(", ")
        )
    }
}

impl std::error::Error for UnknownInvariant {}

/// The registry entry called `name`.
pub fn lookup(name: &str) -> Result<&'static InvariantInfo, UnknownInvariant> {
    ALL.iter()
        .find(|i| i.name == name)
        .ok_or_else(|| UnknownInvariant {
            given: name.to_owned(),
        })
}

/// Checks the invariants named in `only` (empty = all) and returns their verdicts in
/// registry order. Unknown names are ignored: validate them first with [`lookup`], or use
/// [`try_check`].
pub fn check(history: &History, only: &[String]) -> Vec<InvariantResult> {
    check_facts(&Facts::new(history), only, &mut run_step)
}

/// Runs each step of a check (a fact several invariants share, then each invariant, then
/// the tally) by calling the step it is given, exactly once; it may measure the step around
/// the call (`popsim bench` takes each step's CPU time and peak memory).
pub type StepHook<'a> = &'a mut dyn FnMut(&'static str, &mut dyn FnMut());

/// A hook that only runs each step.
pub fn run_step(_: &'static str, step: &mut dyn FnMut()) {
    step();
}

/// Computes one shared fact (the facts cache what they compute).
type FactStep = fn(&Facts);

/// The facts several invariants share, in an order where each finds what it reads already
/// computed. A full check computes them up front, each as its own step, so a step's cost is
/// its own and not that of the first invariant that reads it.
const FACTS: &[(&str, FactStep)] = &[
    ("facts: pop positions", |f| {
        f.pops();
    }),
    ("facts: rollbacks", |f| {
        f.rollbacks();
    }),
    ("facts: retention", |f| {
        f.retention();
    }),
    ("facts: origins", |f| {
        f.origins();
    }),
    ("facts: resets", |f| {
        f.resets();
    }),
    ("facts: ack analysis", |f| {
        f.acks();
    }),
];

/// [`check`] over facts the caller keeps, so that what the checkers derived (the ack
/// analysis) serves the report's counts too; each step runs through `step`.
pub(crate) fn check_facts(
    facts: &Facts,
    only: &[String],
    step: StepHook<'_>,
) -> Vec<InvariantResult> {
    let history = facts.h;
    if only.is_empty() {
        for (name, fact) in FACTS {
            step(name, &mut || fact(facts));
        }
    }
    CHECKERS
        .iter()
        .filter(|(info, _)| only.is_empty() || only.iter().any(|n| n == info.name))
        .map(|(info, checker)| {
            let mut result = None;
            step(info.name, &mut || {
                result = Some(check_one(info, *checker, facts, history));
            });
            result.expect("a step hook runs the step it is given")
        })
        .collect()
}

/// One invariant's verdict, with the events it affected.
fn check_one(
    info: &InvariantInfo,
    checker: fn(&Facts) -> Verdict,
    facts: &Facts,
    history: &History,
) -> InvariantResult {
    let v = checker(facts);
    let affected = match (&v.status, &v.witness) {
        (Status::Violated, Some(w)) if v.affected.is_empty() => {
            let mut list = AffectedList::default();
            list.push(Affected::from_witness(info.name, history, w));
            list
        }
        (Status::Violated, _) => v.affected.finish(history),
        _ => AffectedList::default(),
    };
    InvariantResult {
        name: info.name,
        statement: info.statement,
        status: v.status,
        witness: v.witness,
        notes: v.notes,
        affected,
    }
}

/// [`check`], but an unknown name in `only` is an error.
pub fn try_check(
    history: &History,
    only: &[String],
) -> Result<Vec<InvariantResult>, UnknownInvariant> {
    for n in only {
        lookup(n)?;
    }
    Ok(check(history, only))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testkit::H;

    #[test]
    fn names_are_unique_kebab_case_and_match_the_checkers() {
        let names = invariant_names();
        let mut sorted = names.clone();
        sorted.sort_unstable();
        sorted.dedup();
        assert_eq!(sorted.len(), names.len(), "duplicate invariant name");
        for n in &names {
            assert!(
                n.chars().all(|c| c.is_ascii_lowercase() || c == '-'),
                "{n} is not kebab-case"
            );
        }
        let checker_names: Vec<_> = CHECKERS.iter().map(|(i, _)| i.name).collect();
        assert_eq!(checker_names, names);
    }

    #[test]
    fn statements_are_the_files_doc_comments() {
        let sources = [
            include_str!("no_loss.rs"),
            include_str!("no_redelivery_after_ack.rs"),
            include_str!("bounded_deliveries.rs"),
            include_str!("revive_bookkeeping.rs"),
            include_str!("reset_takes_effect.rs"),
            include_str!("reset_leaves_other_queues.rs"),
            include_str!("orderly_order.rs"),
            include_str!("orderly_commit_safety.rs"),
            include_str!("offset_commit_durable.rs"),
            include_str!("offset_api_liveness.rs"),
            include_str!("revive_progress.rs"),
            include_str!("fifo_progress.rs"),
            include_str!("delivery_integrity.rs"),
            include_str!("dlq_accounting.rs"),
        ];
        for (info, src) in ALL.iter().zip(sources) {
            let first = src.lines().next().unwrap_or_default();
            assert_eq!(
                first,
                format!("//! {}", info.statement),
                "doc comment of {}",
                info.name
            );
        }
    }

    #[test]
    fn lookup_names_the_valid_invariants() {
        assert_eq!(lookup("no-loss").unwrap().name, "no-loss");
        let err = lookup("no-duplicates").unwrap_err().to_string();
        assert!(
            err.starts_with("unknown invariant `no-duplicates`; valid: no-loss, "),
            "{err}"
        );
        assert!(err.contains("revive-progress"), "{err}");
    }

    /// The verdict `name` gives on `h`.
    fn result(h: &History, name: &str) -> InvariantResult {
        check(h, &[name.to_owned()]).remove(0)
    }

    /// A step hook sees each shared fact, each invariant and the tally once, in order, and
    /// the verdicts are those of a check without one.
    #[test]
    fn a_step_hook_runs_each_step_once_and_moves_no_verdict() {
        let mut h = H::new();
        h.at(0).produce("m0", 1, 0);
        let d = h.at(1_000).pop("c1", "m0", 1, 0);
        h.at(2_000).ack(&d);
        h.at(13_000).revive(&d, 0, 1);
        let h = h.build();
        let mut steps = Vec::new();
        let got = crate::check_and_count_with(&h, &[], true, &mut |name, run| {
            steps.push(name);
            run();
        });
        assert_eq!(got.results, check(&h, &[]));
        assert!(got.results[1].is_violated(), "the revive after the ack");
        let mut expect: Vec<&str> = FACTS.iter().map(|(n, _)| *n).collect();
        expect.extend(invariant_names());
        expect.push("counts");
        assert_eq!(steps, expect);
        // With `only`, the named invariant alone; its facts as it reads them.
        steps.clear();
        crate::check_and_count_with(&h, &["no-loss".into()], false, &mut |name, run| {
            steps.push(name);
            run();
        });
        assert_eq!(steps, ["no-loss"]);
    }

    #[test]
    fn affected_lists_every_message_with_its_queue_and_times() {
        // Three acked messages, all revived: one witness, three records.
        let mut h = H::new();
        let mut expect = Vec::new();
        for o in 0..3u64 {
            let m = format!("m{o}");
            h.at(o).produce(&m, 1, o);
            let d = h.at(1_000).pop("c1", &m, 1, o);
            let ack = h.at(2_000).ack(&d);
            let rev = h.at(13_000 + o).revive(&d, o, 1);
            expect.push((m, vec![d.idx, ack, rev]));
        }
        let r = result(&h.build(), "no-redelivery-after-ack");
        assert!(r.is_violated());
        assert_eq!(r.affected.omitted, 0);
        let got: Vec<_> = r
            .affected
            .items
            .iter()
            .map(|a| (a.msg_id.clone().unwrap(), a.events.clone()))
            .collect();
        assert_eq!(got, expect);
        let a = &r.affected.items[2];
        assert_eq!(a.kind, "revived-after-ack");
        assert_eq!(a.group.as_deref(), Some("g1"));
        assert_eq!(a.topic.as_deref(), Some(crate::testkit::T));
        assert_eq!((a.queue_id, a.queue_offset), (Some(1), Some(2)));
    }

    #[test]
    fn affected_is_capped_and_counts_the_rest() {
        let mut h = H::new();
        h.end(0, 100_000);
        let n = MAX_AFFECTED as u64 + 5;
        for o in 0..n {
            h.at(o).produce(&format!("m{o}"), 0, o);
        }
        // The commit offset passed them all: skipped, not a backlog.
        h.final_offset("g1", 0, n as i64);
        let r = result(&h.build(), "no-loss");
        assert!(r.is_violated());
        assert_eq!(r.affected.items.len(), MAX_AFFECTED);
        assert_eq!(r.affected.omitted, 5);
        assert_eq!(r.affected.total(), n as usize);
        let first = &r.affected.items[0];
        assert_eq!(first.kind, "never-delivered");
        assert_eq!(first.msg_id.as_deref(), Some("m0"));
        assert_eq!(
            first.group.as_deref(),
            Some("g1"),
            "from the consumer, not the produce"
        );
        assert_eq!(first.events, [0]);
    }

    #[test]
    fn every_replay_and_every_over_delivery_is_listed() {
        // Bug (a): both acked offsets replay after the reset, m3 twice.
        let mut h = H::orderly();
        let reset = h.at(1_000).reset("og", 0, 3);
        let a = h.at(2_000).pop("o1", "m3", 0, 3);
        let b = h.at(2_000).pop("o1", "m4", 0, 4);
        h.at(2_100).ack(&a);
        let ack_b = h.at(2_200).ack(&b);
        let a2 = h.at(3_000).pop("o1", "m3", 0, 3);
        let b2 = h.at(3_000).pop("o1", "m4", 0, 4);
        let a3 = h.at(4_000).pop("o1", "m3", 0, 3);
        h.final_offset("og", 0, 5);
        let r = result(&h.build(), "reset-takes-effect");
        let kinds: Vec<_> = r
            .affected
            .items
            .iter()
            .map(|a| (a.kind, a.msg_id.as_deref().unwrap(), a.queue_offset))
            .collect();
        assert_eq!(
            kinds,
            [
                ("replayed-after-ack", "m3", Some(3)),
                ("replayed-after-ack", "m4", Some(4))
            ]
        );
        assert_eq!(r.affected.items[1].events, [reset, ack_b, b2.idx]);
        let m3 = &r.affected.items[0].events;
        assert!(
            m3.contains(&a2.idx) && m3.contains(&a3.idx),
            "one record per message, with every replay: {m3:?}"
        );

        // Bug (b): two messages over the limit, each with its queue from its delivery.
        let mut h = H::new();
        h.consumer("c1", "g1", crate::history::ConsumerKind::Concurrent, 0);
        for (m, o) in [("m1", 4u64), ("m2", 5)] {
            let d = h.at(0).pop("c1", m, 2, o);
            h.at(100).listener(&d);
            let r = h.at(14_000).pop_retry("c1", m, o, 1);
            h.at(14_100).listener(&r);
        }
        let r = result(&h.build(), "bounded-deliveries");
        let got: Vec<_> = r
            .affected
            .items
            .iter()
            .map(|a| {
                (
                    a.kind,
                    a.msg_id.as_deref().unwrap(),
                    a.queue_id,
                    a.queue_offset,
                )
            })
            .collect();
        assert_eq!(
            got,
            [
                ("over-delivered", "m1", Some(2), Some(4)),
                ("over-delivered", "m2", Some(2), Some(5))
            ]
        );
    }

    #[test]
    fn a_witness_alone_gives_one_record() {
        let mut h = H::new();
        h.at(0).produce("m0", 3, 9);
        let d = h.at(1_000).pop("c1", "m0", 3, 9);
        let h = h.build();
        let w = Witness {
            msg_id: Some("m0".into()),
            summary: "something".into(),
            events: vec![0, d.idx],
        };
        let a = Affected::from_witness("new-invariant", &h, &w);
        assert_eq!(a.kind, "new-invariant");
        assert_eq!(a.msg_id.as_deref(), Some("m0"));
        assert_eq!(a.group.as_deref(), Some("g1"));
        assert_eq!((a.queue_id, a.queue_offset), (Some(3), Some(9)));
        assert_eq!(a.events, [0, d.idx]);
    }

    #[test]
    fn try_check_rejects_unknown_names() {
        let h = History {
            meta: crate::history::RunMeta {
                scenario: "empty".into(),
                seed: 1,
                behaviours: vec![],
                fixes: vec![],
                release: None,
                consumers: vec![],
                quiet_from: 0,
                end_at: 0,
                faulty: false,
                offset_flush_interval: crate::history::DEFAULT_OFFSET_FLUSH_INTERVAL_MS,
            },
            events: vec![],
            final_state: Default::default(),
        };
        assert!(try_check(&h, &["nope".into()]).is_err());
        let only = try_check(&h, &["revive-progress".into(), "no-loss".into()]).unwrap();
        let names: Vec<_> = only.iter().map(|r| r.name).collect();
        assert_eq!(
            names,
            ["no-loss", "revive-progress"],
            "registry order, not request order"
        );
        assert_eq!(check(&h, &[]).len(), ALL.len());
    }
}
