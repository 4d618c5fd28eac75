//! `popsim matrix`: every scenario under every release profile, on its pinned seeds.

use super::{exit, jobs, load_many, parse_jobs, progress, CmdResult, Format};
use crate::runner::{self, RunOptions};
use broker_core::{Behaviour, Release};
use clap::Args;
use reports::commands::{MatrixCell, MatrixFailure, MatrixRow};
use reports::Layout;
use scenarios::Scenario;
use std::collections::BTreeMap;

#[derive(Debug, Args)]
pub struct MatrixArgs {
    /// Scenarios to run (built-in names or files); default: every built-in scenario.
    #[arg(value_name = "SCENARIO")]
    pub scenarios: Vec<String>,
    #[arg(long, value_enum, default_value_t = Format::Text)]
    pub format: Format,
    /// Worker threads; default: the number of CPUs.
    #[arg(long, allow_negative_numbers = true, value_parser = parse_jobs)]
    pub jobs: Option<usize>,
}

/// Why a cell holds although the release ships every behaviour of one of the scenario's
/// bug rows: the other behaviours the release has on, which can hide the row's effect.
fn masked(sc: &Scenario, release: Release, violated: &[String]) -> Option<String> {
    let on = release.behaviours();
    let baseline = crate::explore::baseline(sc);
    for row in sc.bug_rows() {
        let bugs: Vec<Behaviour> = row.bugs.iter().filter_map(|b| b.parse().ok()).collect();
        // The behaviours this row runs with: its bugs and the scenario's baseline.
        let with: Vec<Behaviour> = bugs.iter().copied().chain(baseline.iter()).collect();
        if bugs.is_empty() || !bugs.iter().all(|b| on.is_on(*b)) {
            continue;
        }
        let held: Vec<&str> = row
            .violates
            .iter()
            .filter(|v| !violated.contains(v))
            .map(String::as_str)
            .collect();
        if held.is_empty() {
            continue;
        }
        // The release's other behaviours that touch the same upstream issue or fix are the
        // likely masks; without one, every other behaviour of the release is named.
        let others: Vec<Behaviour> = on.iter().filter(|b| !with.contains(b)).collect();
        let related: Vec<Behaviour> = others
            .iter()
            .copied()
            .filter(|o| {
                with.iter()
                    .any(|b| b.info().issue == o.info().issue || b.info().fix == o.info().fix)
            })
            .collect();
        let others: Vec<&str> = if related.is_empty() {
            &others
        } else {
            &related
        }
        .iter()
        .map(|b| b.name())
        .collect();
        let names: Vec<&str> = bugs.iter().map(|b| b.name()).collect();
        return Some(format!(
            "{release} ships {} but {} held on every pinned seed; {}",
            names.join(" + "),
            held.join(", "),
            if others.is_empty() {
                "no other behaviour of the release is on".to_owned()
            } else {
                format!(
                    "the release also has {} on, which takes another path past the bug",
                    others.join(", ")
                )
            }
        ));
    }
    None
}

pub(super) fn cmd_matrix(a: &MatrixArgs, layout: Layout) -> CmdResult {
    let scs = load_many(&a.scenarios, false)?;
    let jobs = jobs(a.jobs)?;
    let mut tasks = Vec::new();
    for (i, (_, sc)) in scs.iter().enumerate() {
        for (j, r) in Release::ALL.iter().enumerate() {
            for &seed in &sc.seeds {
                tasks.push((i, j, *r, seed));
            }
        }
    }
    let bar = progress(tasks.len() as u64, "matrix");
    let mut summaries = Vec::with_capacity(tasks.len());
    runner::par_for_each_ordered(
        &tasks,
        jobs,
        |(i, _, release, seed)| {
            let opts = RunOptions {
                release: Some(*release),
                ..RunOptions::default()
            };
            runner::run_summary(&scs[*i].1, *seed, &opts, false)
        },
        |_, s| {
            bar.inc(1);
            summaries.push(s);
        },
    );
    bar.finish_and_clear();
    // cells[(scenario, release)] = violated name (or `(panic)`) → first failing seed.
    let mut cells: BTreeMap<(usize, usize), BTreeMap<String, u64>> = BTreeMap::new();
    for ((i, j, _, seed), sum) in tasks.iter().zip(&summaries) {
        let cell = cells.entry((*i, *j)).or_default();
        for v in &sum.violated {
            cell.entry((*v).to_owned()).or_insert(*seed);
        }
        if sum.panic.is_some() {
            cell.entry("(panic)".into()).or_insert(*seed);
        }
    }
    let rows: Vec<MatrixRow> = scs
        .iter()
        .enumerate()
        .map(|(i, (source, sc))| MatrixRow {
            scenario: sc.name.clone(),
            cells: Release::ALL
                .iter()
                .enumerate()
                .map(|(j, r)| {
                    let cell = cells.get(&(i, j)).cloned().unwrap_or_default();
                    let violated: Vec<String> = cell.keys().cloned().collect();
                    MatrixCell {
                        release: r.name().to_owned(),
                        masked: masked(sc, *r, &violated),
                        failures: cell
                            .iter()
                            .map(|(inv, seed)| MatrixFailure {
                                invariant: inv.clone(),
                                seed: *seed,
                                reproduce: format!(
                                    "popsim run {source} --release {r} --seed {seed}"
                                ),
                            })
                            .collect(),
                        violated,
                    }
                })
                .collect(),
        })
        .collect();
    let any = rows
        .iter()
        .any(|r| r.cells.iter().any(|c| !c.violated.is_empty()));
    match a.format {
        Format::Text => print!("{}", reports::commands::render_matrix_text(&rows, layout)),
        Format::Json => print!("{}", reports::commands::render_matrix_json(&rows)),
    }
    Ok(exit(any))
}
