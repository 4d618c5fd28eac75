//! The invariants a run's history must satisfy, one file each, with a registry and one
//! entry point, [`check`].
//!
//! Every checker reads only the [`History`] (events and the broker's final state), never
//! the simulation, so a saved history can be checked again. Each builds what it needs in
//! one pass over the events with ordered maps: the cost is linear or `n·log n` in the
//! history's length.

use crate::history::History;
use index::Facts;
use serde::{Deserialize, Serialize};
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

/// One invariant's verdict on one run.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct InvariantResult {
    pub name: &'static str,
    pub statement: &'static str,
    pub status: Status,
    /// Set when `status` is `Violated`: the first violation found.
    pub witness: Option<Witness>,
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
}

impl Verdict {
    pub fn held() -> Self {
        Self {
            status: Status::Held,
            witness: None,
            notes: Vec::new(),
        }
    }

    pub fn not_applicable(reason: impl Into<String>) -> Self {
        Self {
            status: Status::NotApplicable {
                reason: reason.into(),
            },
            witness: None,
            notes: Vec::new(),
        }
    }

    pub fn violated(witness: Witness) -> Self {
        Self {
            status: Status::Violated,
            witness: Some(witness),
            notes: Vec::new(),
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
}

type Checker = fn(&Facts) -> Verdict;

/// The registry, in report order.
const CHECKERS: &[(InvariantInfo, Checker)] = &[
    (no_loss::INFO, |f| no_loss::check(f.h)),
    (
        no_redelivery_after_ack::INFO,
        no_redelivery_after_ack::check_with,
    ),
    (bounded_deliveries::INFO, |f| bounded_deliveries::check(f.h)),
    (revive_bookkeeping::INFO, |f| revive_bookkeeping::check(f.h)),
    (reset_takes_effect::INFO, reset_takes_effect::check_with),
    (
        reset_leaves_other_queues::INFO,
        reset_leaves_other_queues::check_with,
    ),
    (orderly_order::INFO, |f| orderly_order::check(f.h)),
    (orderly_commit_safety::INFO, |f| {
        orderly_commit_safety::check(f.h)
    }),
    (offset_commit_durable::INFO, |f| {
        offset_commit_durable::check(f.h)
    }),
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
    let facts = Facts::new(history);
    CHECKERS
        .iter()
        .filter(|(info, _)| only.is_empty() || only.iter().any(|n| n == info.name))
        .map(|(info, checker)| {
            let v = checker(&facts);
            InvariantResult {
                name: info.name,
                statement: info.statement,
                status: v.status,
                witness: v.witness,
                notes: v.notes,
            }
        })
        .collect()
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

    #[test]
    fn try_check_rejects_unknown_names() {
        let h = History {
            meta: crate::history::RunMeta {
                scenario: "empty".into(),
                seed: 1,
                behaviours: vec![],
                release: None,
                consumers: vec![],
                quiet_from: 0,
                end_at: 0,
                faulty: false,
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
