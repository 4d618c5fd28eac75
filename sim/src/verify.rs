//! `popsim verify` as a library: plan the rows (every scenario's bug rows and fixed row, or
//! for a finding its develop and fix rows, and every regressions line), run them, and judge
//! each against what it declares. A row is strict: it must violate exactly what it declares
//! (an extra violation is a mismatch, not a silent `ok`).

use crate::explore::Regression;
use crate::runner::{self, RunOptions, SeedSummary};
use broker_core::{Behaviour, Behaviours, Fix};
use reports::commands::VerifyRow;
use scenarios::Scenario;
use std::collections::BTreeSet;
use std::path::Path;

/// What a verify row must show.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Expectation {
    /// Exactly these invariants violated (a bug row, a finding's develop row, a regression).
    Violates(Vec<String>),
    /// Every invariant held, except those allowed (`expect.fixed`).
    Holds(Vec<String>),
}

/// One run `popsim verify` makes: a scenario, the switches on, a seed, and what must show.
#[derive(Clone, Debug)]
pub struct VerifyTask {
    /// Index into the scenarios verified.
    pub scenario: usize,
    /// Historical behaviours and proposed fixes switched on.
    pub on: Behaviours,
    /// The row's name: `bug: …`, `fixed`, `develop`, `fix: …`, `regression …`.
    pub variant: String,
    pub expect: Expectation,
    pub seed: u64,
}

fn behaviours(sc: &Scenario, names: &[String]) -> Result<Behaviours, String> {
    names
        .iter()
        .map(|n| {
            n.parse::<Behaviour>()
                .map_err(|e| format!("scenario `{}`: {e}", sc.name))
        })
        .collect()
}

fn fixes(sc: &Scenario, names: &[String]) -> Result<Vec<Fix>, String> {
    names
        .iter()
        .map(|n| {
            n.parse::<Fix>()
                .map_err(|e| format!("scenario `{}`: {e}", sc.name))
        })
        .collect()
}

/// The rows of one scenario on one seed: its bug rows and its fixed row, or for a finding
/// (`fixes` non-empty) the develop row and the row with its proposed fixes on.
pub fn scenario_tasks(i: usize, sc: &Scenario, seed: u64) -> Result<Vec<VerifyTask>, String> {
    let mut out = Vec::new();
    for row in sc.bug_rows() {
        let on = behaviours(sc, &row.bugs)?;
        let names: Vec<&str> = on.iter().map(|b| b.name()).collect();
        out.push(VerifyTask {
            scenario: i,
            on,
            variant: format!("bug: {}", names.join(" + ")),
            expect: Expectation::Violates(row.violates),
            seed,
        });
    }
    let fixes = fixes(sc, &sc.fixes)?;
    if fixes.is_empty() && !sc.expect.develop.is_empty() {
        // A finding with no proposed fix yet: only develop is judged.
        out.push(VerifyTask {
            scenario: i,
            on: Behaviours::fixed(),
            variant: "develop".to_owned(),
            expect: Expectation::Violates(sc.expect.develop.clone()),
            seed,
        });
    } else if fixes.is_empty() {
        out.push(VerifyTask {
            scenario: i,
            on: Behaviours::fixed(),
            variant: "fixed".to_owned(),
            expect: Expectation::Holds(sc.expect.fixed.clone()),
            seed,
        });
    } else {
        out.push(VerifyTask {
            scenario: i,
            on: Behaviours::fixed(),
            variant: "develop".to_owned(),
            expect: Expectation::Violates(sc.expect.develop.clone()),
            seed,
        });
        out.push(fix_task(i, seed, "", fixes));
    }
    Ok(out)
}

/// The row with proposed fixes on: everything must hold.
fn fix_task(scenario: usize, seed: u64, prefix: &str, fixes: Vec<Fix>) -> VerifyTask {
    let mut on = Behaviours::fixed();
    for f in &fixes {
        on.insert_fix(*f);
    }
    let names: Vec<&str> = fixes.iter().map(|f| f.name()).collect();
    VerifyTask {
        scenario,
        on,
        variant: format!("{prefix}fix: {}", names.join(" + ")),
        expect: Expectation::Holds(Vec::new()),
        seed,
    }
}

/// The rows of one regressions line: with its bugs on (fixes off) it must still violate
/// exactly what it recorded; then with every historical fix in and its `fixed-by` fixes on,
/// everything must hold. A line with neither bugs nor `fixed-by` is a failure on develop
/// that nobody has triaged yet: its hold row keeps verify failing.
pub fn regression_tasks(
    i: usize,
    sc: &Scenario,
    r: &Regression,
) -> Result<Vec<VerifyTask>, String> {
    let mut out = Vec::new();
    let fixed_by = fixes(sc, &r.fixed_by)?;
    if !r.bugs.is_empty() || !fixed_by.is_empty() {
        let on = r.behaviours();
        let names: Vec<&str> = on.iter().map(|b| b.name()).collect();
        out.push(VerifyTask {
            scenario: i,
            on,
            variant: if names.is_empty() {
                "regression develop".to_owned()
            } else {
                format!("regression bug: {}", names.join(" + "))
            },
            expect: Expectation::Violates(r.violates.clone()),
            seed: r.seed,
        });
    }
    if fixed_by.is_empty() {
        out.push(VerifyTask {
            scenario: i,
            on: Behaviours::fixed(),
            variant: "regression fixed".to_owned(),
            expect: Expectation::Holds(Vec::new()),
            seed: r.seed,
        });
    } else {
        out.push(fix_task(i, r.seed, "regression ", fixed_by));
    }
    Ok(out)
}

/// Every row of `scenarios`: recorded failing seeds first (proptest's convention), then
/// the pinned seeds.
pub fn plan(
    scenarios: &[(String, Scenario)],
    regressions: Option<&Path>,
) -> Result<Vec<VerifyTask>, String> {
    let mut tasks = Vec::new();
    for (i, (_, sc)) in scenarios.iter().enumerate() {
        if let Some(dir) = regressions {
            for r in crate::explore::load_regressions(dir, &sc.name)? {
                tasks.extend(regression_tasks(i, sc, &r)?);
            }
        }
        for &seed in &sc.seeds {
            tasks.extend(scenario_tasks(i, sc, seed)?);
        }
    }
    Ok(tasks)
}

fn join(set: &BTreeSet<&str>) -> String {
    set.iter().copied().collect::<Vec<_>>().join(", ")
}

fn observed(sum: &SeedSummary) -> String {
    if let Some(p) = &sum.panic {
        return p.to_string();
    }
    if sum.violated.is_empty() {
        "all held".to_owned()
    } else {
        format!("violated {}", sum.violated.join(", "))
    }
}

/// The command line that replays a task (`source` is the scenario as given).
pub fn reproduce(source: &str, t: &VerifyTask) -> String {
    let bugs: String =
        t.on.iter()
            .map(|b| format!(" --bug {}", b.name()))
            .collect();
    format!(
        "popsim run {source}{bugs}{} --seed {}",
        crate::cli::fix_words(&t.on),
        t.seed
    )
}

/// Judges one run against its task.
pub fn judge(t: &VerifyTask, scenario: &str, source: &str, sum: &SeedSummary) -> VerifyRow {
    let violated: BTreeSet<&str> = sum.violated.iter().copied().collect();
    let (expected, unexpected, missing) = match &t.expect {
        Expectation::Violates(violates) => {
            let want: BTreeSet<&str> = violates.iter().map(String::as_str).collect();
            let exp = if want.is_empty() {
                "violates (none declared)".to_owned()
            } else {
                format!("violates {}", join(&want))
            };
            (
                exp,
                violated.difference(&want).copied().collect::<Vec<_>>(),
                want.difference(&violated).copied().collect::<Vec<_>>(),
            )
        }
        Expectation::Holds(allowed) => {
            let allowed: BTreeSet<&str> = allowed.iter().map(String::as_str).collect();
            let exp = if allowed.is_empty() {
                "all hold".to_owned()
            } else {
                format!("all hold (may violate {})", join(&allowed))
            };
            (
                exp,
                violated.difference(&allowed).copied().collect(),
                Vec::new(),
            )
        }
    };
    let declared_nothing = matches!(&t.expect, Expectation::Violates(v) if v.is_empty());
    VerifyRow {
        scenario: scenario.to_owned(),
        variant: t.variant.clone(),
        seed: t.seed,
        expected,
        observed: observed(sum),
        ok: sum.panic.is_none() && unexpected.is_empty() && missing.is_empty() && !declared_nothing,
        unexpected: unexpected.into_iter().map(str::to_owned).collect(),
        missing: missing.into_iter().map(str::to_owned).collect(),
        reproduce: reproduce(source, t),
    }
}

/// Runs every task on `jobs` threads (heaviest scenarios first, so the last worker does not
/// finish alone on a long seed) and judges it; rows come back in task order. `tick` is
/// called once per finished run.
pub fn run(
    scenarios: &[(String, Scenario)],
    tasks: &[VerifyTask],
    jobs: usize,
    mut tick: impl FnMut(),
) -> Vec<VerifyRow> {
    let weight = |t: &VerifyTask| -> u64 {
        let sc = &scenarios[t.scenario].1;
        sc.producers.iter().map(|p| p.messages).sum()
    };
    let mut order: Vec<usize> = (0..tasks.len()).collect();
    order.sort_by_key(|&i| std::cmp::Reverse(weight(&tasks[i])));
    let mut done: Vec<(usize, SeedSummary)> = Vec::with_capacity(tasks.len());
    runner::par_for_each_ordered(
        &order,
        jobs,
        |&i| {
            let t = &tasks[i];
            let opts = RunOptions {
                behaviours: t.on.clone(),
                ..RunOptions::default()
            };
            runner::run_summary(&scenarios[t.scenario].1, t.seed, &opts, false)
        },
        |k, sum| {
            tick();
            done.push((order[k], sum));
        },
    );
    done.sort_unstable_by_key(|(i, _)| *i);
    tasks
        .iter()
        .zip(done)
        .map(|(t, (_, sum))| {
            let (source, sc) = &scenarios[t.scenario];
            judge(t, &sc.name, source, &sum)
        })
        .collect()
}
