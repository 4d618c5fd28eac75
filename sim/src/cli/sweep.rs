//! `popsim sweep`: one scenario over a range of seeds (or one shard of it).

use super::{
    exit, jobs, load, parse_jobs, parse_seed_range, parse_shard, progress, BugArgs, CmdResult,
    Format, UsageError, MAX_SWEEP_SEEDS,
};
use crate::explore::Regression;
use crate::runner;
use crate::sweep::{shard_seeds, SeedRecord, SweepHeader, SweepState};
use clap::Args;
use reports::Layout;
use serde_json::json;
use std::io::Write as _;
use std::path::Path;
use std::process::ExitCode;

#[derive(Debug, Args)]
pub struct SweepArgs {
    /// Do not append failing seeds to the scenario's regressions file.
    #[arg(long)]
    pub no_record: bool,
    /// Directory of the regressions files (default: scenarios/regressions of the current
    /// directory, when it exists; else nothing is recorded).
    #[arg(long, value_name = "DIR")]
    pub regressions: Option<std::path::PathBuf>,
    /// A built-in scenario name or a path to a scenario file (.toml).
    #[arg(value_name = "SCENARIO|FILE.toml")]
    pub scenario: String,
    /// Seeds to run: A..B (B excluded) or A..=B (B included).
    #[arg(long, value_name = "A..B")]
    pub seeds: String,
    #[command(flatten)]
    pub bugs: BugArgs,
    /// Worker threads; default: the number of CPUs.
    #[arg(long, allow_negative_numbers = true, value_parser = parse_jobs)]
    pub jobs: Option<usize>,
    /// Run only shard I of N (1-based) of the seed range, e.g. 2/4 (every fourth seed from
    /// the second). `popsim merge` adds up the shards' JSON lines.
    #[arg(long, value_name = "I/N")]
    pub shard: Option<String>,
    #[arg(long, value_enum, default_value_t = Format::Text)]
    pub format: Format,
    /// Run every seed twice and fail if any two histories differ.
    #[arg(long)]
    pub check_determinism: bool,
}

/// A seed's JSON line.
pub(super) fn seed_line(scenario: &str, r: &SeedRecord) -> String {
    let mut v = json!({"type": "seed", "scenario": scenario});
    if let (Some(obj), Ok(serde_json::Value::Object(rec))) =
        (v.as_object_mut(), serde_json::to_value(r))
    {
        obj.extend(rec);
    }
    v.to_string()
}

/// Where and whether a sweep's failing seeds are recorded.
pub(super) struct Recording<'a> {
    pub no_record: bool,
    pub regressions: Option<&'a Path>,
}

/// Appends the failing seeds to the scenario's regressions file, and says so on stderr
/// (or says why not).
fn record(found: &[Regression], h: &SweepHeader, how: &Recording) {
    if found.is_empty() {
        return;
    }
    if how.no_record {
        eprintln!("regressions: not recorded (--no-record)");
        return;
    }
    if !h.fixes.is_empty() {
        eprintln!(
            "regressions: not recorded (proposed fixes on); a failure with a fix on is triaged by hand"
        );
        return;
    }
    if let Some(shard) = &h.shard {
        eprintln!(
            "regressions: not recorded by shard {shard}; `popsim merge` of every shard's JSON lines records them"
        );
        return;
    }
    let Some(dir) = crate::explore::regressions_dir(how.regressions) else {
        eprintln!(
            "regressions: not recorded: no {} in the current directory (pass --regressions DIR to record)",
            crate::explore::REGRESSIONS_DIR
        );
        return;
    };
    let file = crate::explore::regressions_file(&dir, &h.scenario);
    match crate::explore::append_regressions(&dir, &h.scenario, found) {
        Ok(added) if !added.is_empty() => eprintln!(
            "regressions: recorded {} new failing seed(s) in {}",
            added.len(),
            file.display()
        ),
        Ok(_) => eprintln!(
            "regressions: the first failing seeds are already recorded in {}",
            file.display()
        ),
        Err(e) => eprintln!("regressions: cannot record in {}: {e}", dir.display()),
    }
}

/// Records the regressions, prints the summary (text, or the JSON summary line) and
/// returns the exit code: the end of both `sweep` and `merge`.
pub(super) fn finish(
    h: &SweepHeader,
    state: &SweepState,
    wall_s: f64,
    format: Format,
    layout: Layout,
    how: &Recording,
) -> ExitCode {
    record(&state.found, h, how);
    let report = state.report(h, wall_s);
    match format {
        Format::Text => print!(
            "{}",
            reports::commands::render_sweep_report_text(&report, layout)
        ),
        Format::Json => println!(
            "{}",
            reports::commands::render_sweep_summary_line(h, &report)
        ),
    }
    exit(state.first_failing.is_some())
}

pub(super) fn cmd_sweep(a: &SweepArgs, layout: Layout) -> CmdResult {
    let sc = load(&a.scenario)?;
    let range = parse_seed_range(&a.seeds)?;
    if range.end - range.start > MAX_SWEEP_SEEDS {
        return Err(UsageError(format!(
            "--seeds {}: {} seeds exceed the limit of {MAX_SWEEP_SEEDS} per sweep; split the range, or use --shard I/N on several machines",
            a.seeds,
            range.end - range.start
        )));
    }
    let shard = a.shard.as_deref().map(parse_shard).transpose()?;
    if let Some((i, n)) = shard {
        if i > range.end - range.start {
            return Err(UsageError(format!(
                "--shard {i}/{n}: shard {i} of --seeds {} is empty ({} seeds); use at most {} shards",
                a.seeds,
                range.end - range.start,
                range.end - range.start
            )));
        }
    }
    if let Some(dir) = &a.regressions {
        if !a.no_record && !dir.is_dir() {
            return Err(UsageError(format!(
                "--regressions {}: no such directory",
                dir.display()
            )));
        }
    }
    let jobs = jobs(a.jobs)?;
    let seeds = shard_seeds(range, shard);
    let opts = a.bugs.options();
    let header = SweepHeader {
        scenario: sc.name.clone(),
        source: a.scenario.clone(),
        seeds: a.seeds.clone(),
        shard: shard.map(|(i, n)| format!("{i}/{n}")),
        behaviours: crate::explore::with_baseline(&opts, &sc)
            .effective_behaviours()
            .iter()
            .map(|b| b.name().to_owned())
            .collect(),
        fixes: opts
            .behaviours
            .fixes()
            .map(|f| f.name().to_owned())
            .collect(),
        bugs: opts
            .effective_behaviours()
            .iter()
            .map(|b| b.name().to_owned())
            .collect(),
        switches: a.bugs.words(),
        check_determinism: a.check_determinism,
    };
    let mut state = SweepState::new(&sc.name, header.bugs.clone());
    let stdout = std::io::stdout();
    let bar = progress(seeds.len() as u64, "sweep");
    let t0 = std::time::Instant::now();
    runner::sweep_each(&sc, &seeds, &opts, jobs, a.check_determinism, |_, s| {
        let rec = SeedRecord::from_summary(&s);
        state.add(&rec);
        if a.format == Format::Json {
            let _ = writeln!(stdout.lock(), "{}", seed_line(&sc.name, &rec));
        }
        bar.inc(1);
        bar.set_message(format!("{} failed", state.failures));
    });
    bar.finish_and_clear();
    let wall_s = t0.elapsed().as_secs_f64();
    let how = Recording {
        no_record: a.no_record,
        regressions: a.regressions.as_deref(),
    };
    Ok(finish(&header, &state, wall_s, a.format, layout, &how))
}
