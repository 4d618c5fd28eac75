//! What a sweep keeps of its seeds, and how it adds them up. `popsim sweep` feeds its own
//! seeds through [`SweepState`]; `popsim merge` feeds the seed lines of several shard runs
//! through the same code. The state does not depend on the order seeds arrive in (it keeps
//! the smallest seeds of every list), so both print the same summary.

use crate::explore::{Regression, MAX_NEW_PER_SWEEP};
use crate::runner::SeedSummary;
use reports::commands::{FailureGroup, SweepReport};
use reports::invariants::Status;
use reports::SweepSummary;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// One seed of a sweep as its JSON line carries it (`"type": "seed"`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SeedRecord {
    pub seed: u64,
    pub failed: bool,
    pub violated: Vec<String>,
    pub held: Vec<String>,
    pub not_applicable: Vec<String>,
    pub panic: Option<String>,
    pub history_hash: String,
    /// With `--check-determinism`: the second run's hash, when it differs.
    pub nondeterministic: Option<String>,
    /// The witness shape of each violated invariant, in the order of `violated`.
    pub shapes: Vec<String>,
}

impl SeedRecord {
    pub fn from_summary(s: &SeedSummary) -> Self {
        let names = |pick: fn(&Status) -> bool| -> Vec<String> {
            s.verdicts
                .iter()
                .filter(|r| pick(&r.status))
                .map(|r| r.name.to_owned())
                .collect()
        };
        Self {
            seed: s.seed,
            failed: s.failed(),
            violated: s.violated.iter().map(|v| (*v).to_owned()).collect(),
            held: names(|st| *st == Status::Held),
            not_applicable: names(|st| matches!(st, Status::NotApplicable { .. })),
            panic: s.panic.as_ref().map(ToString::to_string),
            history_hash: format!("{:016x}", s.hash),
            nondeterministic: s.nondeterministic.map(|h| format!("{h:016x}")),
            shapes: s
                .violated
                .iter()
                .map(|v| {
                    s.shapes
                        .iter()
                        .find(|(n, _)| n == v)
                        .map(|(_, sh)| sh.clone())
                        .unwrap_or_default()
                })
                .collect(),
        }
    }

    /// A panic or a violated invariant (a determinism mismatch alone is not recorded).
    pub fn broke(&self) -> bool {
        self.panic.is_some() || !self.violated.is_empty()
    }
}

/// What a sweep is, as its summary line carries it (`"type": "summary"`); `popsim merge`
/// checks that every shard agrees on it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SweepHeader {
    /// The scenario's name.
    pub scenario: String,
    /// The scenario as given on the command line (a name or a file).
    pub source: String,
    /// The whole seed range, as given (`A..B` or `A..=B`).
    pub seeds: String,
    /// `I/N` of a sharded run.
    pub shard: Option<String>,
    /// Behaviours on (baseline and release included).
    pub behaviours: Vec<String>,
    pub fixes: Vec<String>,
    /// The `--bug`s (and release behaviours) a regression line records.
    pub bugs: Vec<String>,
    /// The `--bug`/`--fix`/`--release` words of the command line.
    pub switches: String,
    pub check_determinism: bool,
}

/// Adds up seeds, in seed order.
#[derive(Clone, Debug, Default)]
pub struct SweepState {
    pub summary: SweepSummary,
    groups: BTreeMap<(String, String), FailureGroup>,
    pub first_failing: Option<u64>,
    pub first_panic: Option<(u64, String)>,
    pub nondeterministic: Vec<u64>,
    /// The smallest failing seeds, as regressions lines.
    pub found: Vec<Regression>,
    /// Seeds that failed (a determinism mismatch included).
    pub failures: u64,
    bugs: Vec<String>,
}

impl SweepState {
    pub fn new(scenario: &str, bugs: Vec<String>) -> Self {
        Self {
            summary: SweepSummary::new(scenario),
            bugs,
            ..Self::default()
        }
    }

    pub fn add(&mut self, r: &SeedRecord) {
        match &r.panic {
            Some(p) => {
                self.summary.record_panic(r.seed);
                if self.first_panic.as_ref().is_none_or(|(s, _)| r.seed < *s) {
                    self.first_panic = Some((r.seed, p.clone()));
                }
            }
            None => self
                .summary
                .record_names(r.seed, &r.held, &r.violated, &r.not_applicable),
        }
        if r.nondeterministic.is_some() {
            self.nondeterministic.push(r.seed);
        }
        if r.failed {
            self.failures += 1;
            self.first_failing = Some(self.first_failing.map_or(r.seed, |s| s.min(r.seed)));
        }
        let mut group = |invariant: &str, shape: &str| {
            let g = self
                .groups
                .entry((invariant.to_owned(), shape.to_owned()))
                .or_insert_with(|| FailureGroup {
                    invariant: invariant.to_owned(),
                    shape: shape.to_owned(),
                    ..FailureGroup::default()
                });
            g.seeds += 1;
            keep_smallest(&mut g.first_seeds, r.seed, SweepSummary::FIRST_SEEDS);
        };
        if r.panic.is_some() {
            group("panic", "(panic)");
        }
        for (i, v) in r.violated.iter().enumerate() {
            group(v, r.shapes.get(i).map_or("", String::as_str));
        }
        if r.broke() {
            let pos = self.found.partition_point(|f| f.seed < r.seed);
            if pos < MAX_NEW_PER_SWEEP {
                self.found.insert(
                    pos,
                    Regression {
                        seed: r.seed,
                        bugs: self.bugs.clone(),
                        fixed_by: Vec::new(),
                        violates: match r.panic {
                            Some(_) => vec!["panic".to_owned()],
                            None => r.violated.clone(),
                        },
                    },
                );
                self.found.truncate(MAX_NEW_PER_SWEEP);
            }
        }
    }

    /// The report of the seeds added so far.
    pub fn report(&self, h: &SweepHeader, wall_s: f64) -> SweepReport {
        let mut groups: Vec<FailureGroup> = self.groups.values().cloned().collect();
        groups.sort_by(|a, b| {
            b.seeds
                .cmp(&a.seeds)
                .then_with(|| a.first_seeds.cmp(&b.first_seeds))
        });
        SweepReport {
            source: h.source.clone(),
            seeds: h.seeds.clone(),
            shard: h.shard.clone(),
            behaviours: h.behaviours.clone(),
            fixes: h.fixes.clone(),
            switches: h.switches.clone(),
            summary: self.summary.clone(),
            groups,
            first_failing: self.first_failing,
            first_panic: self.first_panic.clone(),
            nondeterministic: h.check_determinism.then(|| {
                let mut v = self.nondeterministic.clone();
                v.sort_unstable();
                v
            }),
            wall_s,
        }
    }
}

fn keep_smallest(seeds: &mut Vec<u64>, seed: u64, max: usize) {
    if let Err(pos) = seeds.binary_search(&seed) {
        seeds.insert(pos, seed);
        seeds.truncate(max);
    }
}

/// The seeds of shard `i` of `n` (1-based) of `range`: every n-th seed from the i-th.
pub fn shard_seeds(range: std::ops::Range<u64>, shard: Option<(u64, u64)>) -> Vec<u64> {
    match shard {
        Some((i, n)) => range
            .enumerate()
            .filter(|(k, _)| *k as u64 % n == i - 1)
            .map(|(_, s)| s)
            .collect(),
        None => range.collect(),
    }
}
