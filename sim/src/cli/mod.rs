//! The `popsim` command line: argument parsing and one module per command. Each command
//! resolves its inputs, calls the library (runner, verify, sweep) and prints through the
//! `reports` renderers; exit codes are 0 (every invariant held), 1 (a violation, a panic in
//! the simulation, or a determinism mismatch) and 2 (bad input).

mod list;
mod matrix;
mod merge;
mod run;
mod sweep;
mod verify;

pub use matrix::MatrixArgs;
pub use merge::MergeArgs;
pub use run::RunArgs;
pub use sweep::SweepArgs;
pub use verify::VerifyArgs;

use crate::runner::RunOptions;
use broker_core::{Behaviour, Behaviours, Fix, Release};
use clap::{Args, Parser, Subcommand, ValueEnum};
use reports::Layout;
use scenarios::Scenario;
use std::fmt::Write as _;
use std::io::IsTerminal;
use std::process::ExitCode;

/// Replay RocketMQ POP consumption bugs in a seeded, deterministic simulation.
///
/// Exit status: 0 every invariant held, 1 an invariant was violated (or the simulation
/// panicked, or a determinism check failed), 2 bad input.
#[derive(Debug, Parser)]
#[command(name = "popsim", version, max_term_width = 100)]
pub struct Cli {
    /// Print tables and reports whole, however wide (default: fit the terminal, or 120
    /// columns when output is not a terminal).
    #[arg(long, global = true)]
    pub wide: bool,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// List the built-in scenarios, the historical behaviours and the release profiles.
    List,
    /// Run one scenario on one seed and check its invariants.
    Run(RunArgs),
    /// Replay every documented bug: each scenario with its behaviours on and with every fix
    /// in, on its pinned seeds; compare with what the scenario expects.
    Verify(VerifyArgs),
    /// Run one scenario over a range of seeds.
    Sweep(SweepArgs),
    /// Add up the JSON lines of sharded sweeps (`sweep … --shard I/N --format json`) and
    /// print what the unsharded sweep prints.
    Merge(MergeArgs),
    /// Run scenarios under each release profile (5.3.0 … latest) and show which releases
    /// break which invariants.
    Matrix(MatrixArgs),
    /// Measure seeds/s, simulated ÷ wall time, scaling, parallel speed-up and memory,
    /// against a bare madsim baseline measured in the same run.
    Bench(crate::bench::BenchArgs),
    /// Reduce a failing seed to a minimal scripted scenario file that still violates the
    /// same invariant.
    Shrink(crate::shrink::ShrinkArgs),
}

/// Report format.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Format {
    /// Human-readable text.
    Text,
    /// JSON (`run`, `verify`, `matrix`: one document; `sweep`, `merge`: JSON lines).
    Json,
}

/// Report format of `run`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum RunFormat {
    /// Human-readable text: the resolved parameters, then the report.
    Text,
    /// One JSON document: parameters and the report model.
    Json,
    /// Markdown to paste into an issue.
    Markdown,
}

/// What to switch on.
#[derive(Debug, Args)]
pub struct BugArgs {
    /// Switch a historical behaviour on (repeatable); `popsim list` names them.
    #[arg(long = "bug", value_name = "NAME")]
    pub bugs: Vec<Behaviour>,
    /// Switch a proposed fix on (repeatable), or `all` of them; `popsim list` names them.
    #[arg(long = "fix", value_name = "NAME|all", value_parser = parse_fix)]
    pub fixes: Vec<FixList>,
    /// Run as a release profile: its historical behaviours on, and no KV pop path before 5.3.2.
    #[arg(long, value_name = "VERSION")]
    pub release: Option<Release>,
}

/// One `--fix` argument: a proposed fix, or every one (`all`).
#[derive(Clone, Debug)]
pub struct FixList(pub Vec<Fix>);

fn parse_fix(s: &str) -> Result<FixList, String> {
    Fix::parse_list(s).map(FixList).map_err(|e| e.to_string())
}

impl BugArgs {
    pub fn options(&self) -> RunOptions {
        let mut behaviours: Behaviours = self.bugs.iter().copied().collect();
        for f in self.fixes.iter().flat_map(|l| l.0.iter()) {
            behaviours.insert_fix(*f);
        }
        RunOptions {
            behaviours,
            release: self.release,
            trace: false,
            counts: false,
        }
    }

    /// The same switches as command-line words, for reproduce lines.
    pub fn words(&self) -> String {
        let mut s = String::new();
        for b in &self.bugs {
            let _ = write!(s, " --bug {b}");
        }
        s.push_str(&fix_words(&self.options().behaviours));
        if let Some(r) = self.release {
            let _ = write!(s, " --release {r}");
        }
        s
    }
}

/// The proposed fixes in `b` as `--fix` words (`--fix all` when every one is on).
pub fn fix_words(b: &Behaviours) -> String {
    let on: Vec<Fix> = b.fixes().collect();
    if on.is_empty() {
        String::new()
    } else if on.len() == Fix::ALL.len() {
        " --fix all".to_owned()
    } else {
        on.iter().map(|f| format!(" --fix {f}")).collect()
    }
}

/// A usage error: printed as `error: …`, exit status 2.
#[derive(Debug)]
pub struct UsageError(pub String);

pub(crate) type CmdResult = Result<ExitCode, UsageError>;

/// Parses `args` (with the program name first) and runs the command.
pub fn main_with<I, T>(args: I) -> ExitCode
where
    I: IntoIterator<Item = T>,
    T: Into<std::ffi::OsString> + Clone,
{
    let cli = match Cli::try_parse_from(args) {
        Ok(c) => c,
        Err(e) => {
            let _ = e.print();
            return ExitCode::from(if e.use_stderr() { 2 } else { 0 });
        }
    };
    let layout = layout(cli.wide);
    let result = match cli.command {
        Command::List => list::cmd_list(),
        Command::Run(a) => run::cmd_run(&a, layout),
        Command::Verify(a) => verify::cmd_verify(&a, layout),
        Command::Sweep(a) => sweep::cmd_sweep(&a, layout),
        Command::Merge(a) => merge::cmd_merge(&a, layout),
        Command::Matrix(a) => matrix::cmd_matrix(&a, layout),
        Command::Bench(a) => Ok(crate::bench::cmd_bench(&a)),
        Command::Shrink(a) => crate::shrink::cmd_shrink(&a),
    };
    match result {
        Ok(code) => code,
        Err(UsageError(msg)) => {
            eprintln!("error: {msg}");
            ExitCode::from(2)
        }
    }
}

pub(crate) fn exit(failed: bool) -> ExitCode {
    ExitCode::from(u8::from(failed))
}

pub(crate) fn context() -> scenarios::Context {
    scenarios::Context::with_invariants(reports::invariant_names())
}

pub(crate) fn load(arg: &str) -> Result<Scenario, UsageError> {
    scenarios::resolve(arg, &context()).map_err(|e| UsageError(e.render().trim_end().to_owned()))
}

/// [`load`], printing the scenario's load-time warnings (located like errors) to stderr.
pub(crate) fn load_warned(arg: &str) -> Result<Scenario, UsageError> {
    let (sc, warnings) = scenarios::resolve_warned(arg, &context())
        .map_err(|e| UsageError(e.render().trim_end().to_owned()))?;
    for w in warnings {
        eprintln!("{w}");
    }
    Ok(sc)
}

/// The named scenarios (with the name or path as given), or every built-in; with `warn`,
/// each scenario's warnings go to stderr.
pub(crate) fn load_many(
    args: &[String],
    warn: bool,
) -> Result<Vec<(String, Scenario)>, UsageError> {
    let names: Vec<String> = if args.is_empty() {
        scenarios::builtins()
            .into_iter()
            .map(|(n, _)| n.to_owned())
            .collect()
    } else {
        args.to_vec()
    };
    names
        .into_iter()
        .map(|n| {
            let sc = if warn { load_warned(&n) } else { load(&n) };
            sc.map(|s| (n, s))
        })
        .collect()
}

/// Most worker threads `--jobs` accepts: each runs a seed in a thread of its own, so a
/// typo like `--jobs 1000000` would try to start a million threads.
pub const MAX_JOBS: usize = 256;

/// Most seeds one sweep runs (before sharding): the seed list is held in memory, and at
/// about ten seeds a second 10 million seeds is already weeks of work.
pub const MAX_SWEEP_SEEDS: u64 = 10_000_000;

/// `--seed`: a u64, with a message that says so (a negative seed included).
pub fn parse_seed(s: &str) -> Result<u64, String> {
    s.parse()
        .map_err(|_| format!("a seed is a whole number from 0 to {}", u64::MAX))
}

/// `--jobs`: a count of worker threads (0 and the upper limit are checked by [`jobs`]).
pub fn parse_jobs(s: &str) -> Result<usize, String> {
    s.parse()
        .map_err(|_| format!("--jobs is a number of worker threads, 1 ..= {MAX_JOBS}"))
}

pub(crate) fn jobs(j: Option<usize>) -> Result<usize, UsageError> {
    match j {
        Some(0) => Err(UsageError("--jobs must be at least 1".into())),
        Some(n) if n > MAX_JOBS => Err(UsageError(format!(
            "--jobs {n} exceeds the limit of {MAX_JOBS} worker threads"
        ))),
        Some(n) => Ok(n),
        None => Ok(std::thread::available_parallelism().map_or(1, |n| n.get())),
    }
}

/// The layout of text output: `--wide`, else the terminal's width (stdout's, then
/// `$COLUMNS`), else [`Layout::DEFAULT_WIDTH`].
fn layout(wide: bool) -> Layout {
    if wide {
        return Layout::wide();
    }
    Layout::compact(terminal_width().unwrap_or(Layout::DEFAULT_WIDTH))
}

/// Columns of the terminal on stdout, or `$COLUMNS`.
fn terminal_width() -> Option<usize> {
    if std::io::stdout().is_terminal() {
        // SAFETY: TIOCGWINSZ fills a `winsize` through a valid out-pointer; fd 1 is open.
        let mut ws: libc::winsize = unsafe { std::mem::zeroed() };
        let rc = unsafe { libc::ioctl(1, libc::TIOCGWINSZ, &mut ws) };
        if rc == 0 && ws.ws_col > 0 {
            return Some(usize::from(ws.ws_col));
        }
    }
    std::env::var("COLUMNS")
        .ok()?
        .trim()
        .parse()
        .ok()
        .filter(|&c: &usize| c > 0)
}

/// A progress bar on stderr for `len` steps: drawn on a terminal, hidden when stderr is
/// piped or redirected (so logs and JSON stay clean).
pub fn progress(len: u64, what: &str) -> indicatif::ProgressBar {
    if !std::io::stderr().is_terminal() {
        return indicatif::ProgressBar::hidden();
    }
    let bar = indicatif::ProgressBar::new(len);
    let style = indicatif::ProgressStyle::with_template(
        "{prefix} [{bar:30}] {pos}/{len} {msg} ({elapsed}, eta {eta})",
    )
    .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar())
    .progress_chars("=> ");
    bar.set_style(style);
    bar.set_prefix(what.to_owned());
    bar
}

/// Parses `A..B` (B excluded) or `A..=B` (B included) into the seeds it names.
pub fn parse_seed_range(s: &str) -> Result<std::ops::Range<u64>, UsageError> {
    let bad = |why: &str| {
        UsageError(format!(
            "malformed seed range `{s}`: {why}; expected A..B (B excluded) or A..=B (B included) with A < B, e.g. --seeds 0..1000"
        ))
    };
    let (a, b, inclusive) = if let Some((a, b)) = s.split_once("..=") {
        (a, b, true)
    } else if let Some((a, b)) = s.split_once("..") {
        (a, b, false)
    } else {
        return Err(bad("no `..`"));
    };
    let a: u64 = a
        .trim()
        .parse()
        .map_err(|_| bad("the start is not an unsigned integer"))?;
    let b: u64 = b
        .trim()
        .parse()
        .map_err(|_| bad("the end is not an unsigned integer"))?;
    let end = if inclusive {
        b.checked_add(1)
            .ok_or_else(|| bad("the end is too large"))?
    } else {
        b
    };
    if end <= a {
        return Err(bad("the range is empty"));
    }
    Ok(a..end)
}

/// Parses `I/N` (1 ≤ I ≤ N).
pub fn parse_shard(s: &str) -> Result<(u64, u64), UsageError> {
    let bad = |why: &str| {
        UsageError(format!(
            "malformed shard `{s}`: {why}; expected I/N with 1 ≤ I ≤ N, e.g. --shard 2/4 runs the second quarter of the seeds"
        ))
    };
    let (i, n) = s.split_once('/').ok_or_else(|| bad("no `/`"))?;
    let i: u64 = i
        .trim()
        .parse()
        .map_err(|_| bad("I is not an unsigned integer"))?;
    let n: u64 = n
        .trim()
        .parse()
        .map_err(|_| bad("N is not an unsigned integer"))?;
    if n == 0 || i == 0 || i > n {
        return Err(bad("I must be between 1 and N"));
    }
    Ok((i, n))
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn cli_definition_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn seed_ranges() {
        assert_eq!(parse_seed_range("0..10").unwrap(), 0..10);
        assert_eq!(parse_seed_range("5..=7").unwrap(), 5..8);
        for bad in ["10", "5..5", "9..3", "a..3", "1..b", ""] {
            let e = parse_seed_range(bad).unwrap_err();
            assert!(e.0.contains("expected A..B"), "{bad}: {}", e.0);
        }
    }

    #[test]
    fn shards() {
        assert_eq!(parse_shard("1/4").unwrap(), (1, 4));
        for bad in ["0/4", "5/4", "1/0", "x/2", "3"] {
            assert!(
                parse_shard(bad).unwrap_err().0.contains("expected I/N"),
                "{bad}"
            );
        }
    }
}
