//! `popsim verify`: every documented bug and finding on its pinned seeds, and every
//! recorded regression, each row judged strictly against what it declares.

use super::{exit, jobs, load_many, parse_jobs, progress, CmdResult, Format, UsageError};
use clap::Args;
use reports::commands::{render_verify_json, render_verify_text};
use reports::Layout;

#[derive(Debug, Args)]
pub struct VerifyArgs {
    /// Directory of the regressions files replayed first (default: scenarios/regressions
    /// of the current directory, when it exists).
    #[arg(long, value_name = "DIR")]
    pub regressions: Option<std::path::PathBuf>,
    /// Scenarios to verify (built-in names or files); default: every built-in scenario.
    #[arg(value_name = "SCENARIO")]
    pub scenarios: Vec<String>,
    #[arg(long, value_enum, default_value_t = Format::Text)]
    pub format: Format,
    /// Worker threads; default: the number of CPUs.
    #[arg(long, allow_negative_numbers = true, value_parser = parse_jobs)]
    pub jobs: Option<usize>,
}

pub(super) fn cmd_verify(a: &VerifyArgs, layout: Layout) -> CmdResult {
    let scs = load_many(&a.scenarios, true)?;
    let jobs = jobs(a.jobs)?;
    let dir = crate::explore::regressions_dir(a.regressions.as_deref());
    if a.regressions.is_some() && !dir.as_ref().is_some_and(|d| d.is_dir()) {
        return Err(UsageError(format!(
            "--regressions {}: no such directory",
            a.regressions
                .as_ref()
                .map(|d| d.display().to_string())
                .unwrap_or_default()
        )));
    }
    if dir.is_none() {
        eprintln!(
            "regressions: none replayed: no {} in the current directory (pass --regressions DIR)",
            crate::explore::REGRESSIONS_DIR
        );
    }
    let tasks = crate::verify::plan(&scs, dir.as_deref()).map_err(UsageError)?;
    let bar = progress(tasks.len() as u64, "verify");
    let rows = crate::verify::run(&scs, &tasks, jobs, || bar.inc(1));
    bar.finish_and_clear();
    let all_ok = rows.iter().all(|r| r.ok);
    match a.format {
        Format::Text => print!("{}", render_verify_text(&rows, layout)),
        Format::Json => print!("{}", render_verify_json(&rows)),
    }
    Ok(exit(!all_ok))
}
