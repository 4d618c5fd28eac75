//! The `popsim` command line: argument parsing and the commands. Each command resolves its
//! inputs, calls the runner and prints; exit codes are 0 (every invariant held), 1 (a
//! violation, a panic in the simulation, or a determinism mismatch) and 2 (bad input).

use crate::runner::{self, RunOptions, SeedSummary};
use broker_core::{Behaviour, Behaviours, Fix, Release};
use clap::{Args, Parser, Subcommand, ValueEnum};
use reports::{RunReport, SweepSummary};
use scenarios::Scenario;
use serde_json::json;
use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::io::{IsTerminal, Write as _};
use std::process::ExitCode;

/// Replay RocketMQ POP consumption bugs in a seeded, deterministic simulation.
///
/// Exit status: 0 every invariant held, 1 an invariant was violated (or the simulation
/// panicked, or a determinism check failed), 2 bad input.
#[derive(Debug, Parser)]
#[command(name = "popsim", version, max_term_width = 100)]
pub struct Cli {
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
    /// JSON (`run`, `verify`, `matrix`: one document; `sweep`: JSON lines).
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

#[derive(Debug, Args)]
pub struct RunArgs {
    /// A built-in scenario name or a path to a scenario file (.toml).
    #[arg(value_name = "SCENARIO|FILE.toml")]
    pub scenario: String,
    /// The seed; default: $MADSIM_TEST_SEED, else a random seed (printed).
    #[arg(long, allow_negative_numbers = true, value_parser = parse_seed)]
    pub seed: Option<u64>,
    #[command(flatten)]
    pub bugs: BugArgs,
    #[arg(long, value_enum, default_value_t = RunFormat::Text)]
    pub format: RunFormat,
    /// Run the seed twice and fail if the two histories differ.
    #[arg(long)]
    pub check_determinism: bool,
    /// Print the event log: every recorded event as `[t=12.345s node] …` in virtual time
    /// (before the report with --format text, else to stderr). With RUST_LOG set, madsim's
    /// own tracing output goes to stderr too.
    #[arg(long)]
    pub trace: bool,
    /// Write the recorded history (meta, every event, final broker state) as JSON to FILE.
    #[arg(long, value_name = "FILE")]
    pub save_history: Option<std::path::PathBuf>,
    /// Write the run as one self-contained HTML timeline to FILE (a lane per message and
    /// per queue, the violation's witness in red); see docs/report-formats.md.
    #[arg(long, value_name = "FILE.html")]
    pub timeline: Option<std::path::PathBuf>,
    /// With --timeline: draw only this range of virtual time, e.g. 60s..70s (1500ms, 1.5s
    /// and 2m work too; either end may be left out).
    #[arg(long, value_name = "A..B", requires = "timeline", value_parser = reports::timeline::parse_window)]
    pub timeline_window: Option<reports::timeline::TimeWindow>,
    /// With --timeline: draw only this message (in every group), its queues and the cluster.
    #[arg(long, value_name = "ID", requires = "timeline", value_parser = reports::timeline::parse_msg_id)]
    pub timeline_msg: Option<String>,
}

#[derive(Debug, Args)]
pub struct VerifyArgs {
    /// Directory of the regressions files replayed first (default: the workspace's
    /// scenarios/regressions).
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

#[derive(Debug, Args)]
pub struct SweepArgs {
    /// Do not append failing seeds to the scenario's regressions file.
    #[arg(long)]
    pub no_record: bool,
    /// Directory of the regressions files (default: the workspace's scenarios/regressions).
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
    /// Run only shard I of N (1-based) of the seed range, e.g. 2/4.
    #[arg(long, value_name = "I/N")]
    pub shard: Option<String>,
    #[arg(long, value_enum, default_value_t = Format::Text)]
    pub format: Format,
    /// Run every seed twice and fail if any two histories differ.
    #[arg(long)]
    pub check_determinism: bool,
}

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

/// A usage error: printed as `error: …`, exit status 2.
#[derive(Debug)]
pub struct UsageError(pub String);

type CmdResult = Result<ExitCode, UsageError>;

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
    let result = match cli.command {
        Command::List => cmd_list(),
        Command::Run(a) => cmd_run(&a),
        Command::Verify(a) => cmd_verify(&a),
        Command::Sweep(a) => cmd_sweep(&a),
        Command::Matrix(a) => cmd_matrix(&a),
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

fn exit(failed: bool) -> ExitCode {
    ExitCode::from(u8::from(failed))
}

fn context() -> scenarios::Context {
    scenarios::Context::with_invariants(reports::invariant_names())
}

fn load(arg: &str) -> Result<Scenario, UsageError> {
    scenarios::resolve(arg, &context()).map_err(|e| UsageError(e.render().trim_end().to_owned()))
}

/// The named scenarios, or every built-in.
fn load_many(args: &[String]) -> Result<Vec<(String, Scenario)>, UsageError> {
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
        .map(|n| load(&n).map(|s| (n, s)))
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

fn jobs(j: Option<usize>) -> Result<usize, UsageError> {
    match j {
        Some(0) => Err(UsageError("--jobs must be at least 1".into())),
        Some(n) if n > MAX_JOBS => Err(UsageError(format!(
            "--jobs {n} exceeds the limit of {MAX_JOBS} worker threads"
        ))),
        Some(n) => Ok(n),
        None => Ok(std::thread::available_parallelism().map_or(1, |n| n.get())),
    }
}

/// Behaviours named in a scenario, parsed.
fn behaviours(sc: &Scenario, names: &[String]) -> Result<Behaviours, UsageError> {
    names
        .iter()
        .map(|n| {
            n.parse::<Behaviour>()
                .map_err(|e| UsageError(format!("scenario `{}`: {e}", sc.name)))
        })
        .collect()
}

// ---------------------------------------------------------------------------------------
// list

fn cmd_list() -> CmdResult {
    let mut out = String::from("Built-in scenarios:\n");
    let builtins = scenarios::builtins();
    let width = builtins.iter().map(|(n, _)| n.len()).max().unwrap_or(0);
    for (name, summary) in &builtins {
        let extra = scenarios::builtin(name)
            .map(|sc| {
                let mut parts = Vec::new();
                if !sc.replays.is_empty() {
                    parts.push(format!("replays {}", sc.replays.join(", ")));
                }
                if !sc.upstream.is_empty() {
                    parts.push(sc.upstream.join(" "));
                }
                if parts.is_empty() {
                    String::new()
                } else {
                    format!(" [{}]", parts.join("; "))
                }
            })
            .unwrap_or_default();
        let _ = writeln!(out, "  {name:width$}  {summary}{extra}");
    }
    out.push_str("\nHistorical behaviours (--bug NAME):\n");
    let width = Behaviour::ALL
        .iter()
        .map(|b| b.name().len())
        .max()
        .unwrap_or(0);
    for b in Behaviour::ALL {
        let i = b.info();
        let side = match i.side {
            broker_core::Side::Broker => "broker",
            broker_core::Side::Client => "client",
        };
        let releases: Vec<&str> = i.releases.iter().map(|r| r.name()).collect();
        let _ = writeln!(
            out,
            "  {:width$}  {side}  issue {} fixed by {}  in {}",
            i.name,
            i.issue,
            i.fix,
            releases.join(", ")
        );
    }
    out.push_str("\nProposed fixes (--fix NAME, or --fix all):\n");
    let width = Fix::ALL.iter().map(|f| f.name().len()).max().unwrap_or(0);
    for f in Fix::ALL {
        let i = f.info();
        let _ = writeln!(out, "  {:width$}  changes {}", i.name, i.changes);
    }
    out.push_str(&crate::explore::list_random_variants());
    out.push_str("\nRelease profiles (--release VERSION):\n");
    for r in Release::ALL {
        let bs: Vec<&str> = r.behaviours().iter().map(|b| b.name()).collect();
        let kv = if r.has_kv_pop_path() {
            ""
        } else {
            " (no KV pop path)"
        };
        let list = if bs.is_empty() {
            "every fix in".to_owned()
        } else {
            bs.join(", ")
        };
        let _ = writeln!(out, "  {:7} {list}{kv}", r.name());
    }
    print!("{out}");
    Ok(ExitCode::SUCCESS)
}

// ---------------------------------------------------------------------------------------
// run

/// Where the seed came from.
fn pick_seed(flag: Option<u64>) -> Result<(u64, &'static str), UsageError> {
    if let Some(s) = flag {
        return Ok((s, "--seed"));
    }
    if let Ok(v) = std::env::var("MADSIM_TEST_SEED") {
        let s = v.trim().parse::<u64>().map_err(|_| {
            UsageError(format!(
                "MADSIM_TEST_SEED=`{v}` is not a seed; expected an unsigned 64-bit integer"
            ))
        })?;
        return Ok((s, "MADSIM_TEST_SEED"));
    }
    Ok((random_seed(), "random"))
}

/// A fresh seed from the wall clock and the process id (outside the simulation).
fn random_seed() -> u64 {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64);
    let mut h = reports::history::Fnv1a::new();
    h.write(&nanos.to_le_bytes());
    h.write(&std::process::id().to_le_bytes());
    h.finish() % 1_000_000_000
}

fn cmd_run(a: &RunArgs) -> CmdResult {
    let sc = load(&a.scenario)?;
    if let Some(path) = &a.save_history {
        check_writable(path)?;
    }
    let (seed, source) = pick_seed(a.seed)?;
    let mut opts = a.bugs.options();
    opts.trace = a.trace && std::env::var_os("RUST_LOG").is_some();
    if let Some(path) = &a.timeline {
        crate::output::check_destination("--timeline", path).map_err(UsageError)?;
    }
    let reproduce = format!("popsim run {}{} --seed {seed}", a.scenario, a.bugs.words());
    if a.format == RunFormat::Text {
        print!("{}", describe(&sc, seed, source, &opts));
        let _ = std::io::stdout().flush();
    }
    let outcome = runner::run_seed(&sc, seed, &opts);
    if let Some(path) = &a.save_history {
        let json = serde_json::to_string_pretty(&outcome.history).expect("history serialises");
        std::fs::write(path, json + "\n").map_err(|e| {
            UsageError(format!(
                "cannot write the history to {}: {e}",
                path.display()
            ))
        })?;
    }
    if a.trace {
        crate::output::print_trace(&outcome.history, a.format == RunFormat::Text);
    }
    if let Some(path) = &a.timeline {
        let narrow = reports::TimelineOptions {
            window: a.timeline_window,
            msg: a.timeline_msg.clone(),
        };
        let html = reports::render_timeline_with(&outcome.history, &outcome.results, &narrow)
            .map_err(|e| {
                let flag = match e {
                    reports::timeline::TimelineError::Window(_) => "--timeline-window",
                    reports::timeline::TimelineError::Msg(_) => "--timeline-msg",
                };
                UsageError(format!("{flag}: {e}"))
            })?;
        crate::output::write_atomically(path, html.as_bytes()).map_err(|e| {
            UsageError(format!(
                "cannot write the timeline to {}: {e}",
                path.display()
            ))
        })?;
    }
    let second = (a.check_determinism && outcome.panic.is_none())
        .then(|| runner::run_seed(&sc, seed, &opts).hash);
    let nondeterministic = second.filter(|h| *h != outcome.hash);
    let failed = outcome.failed() || nondeterministic.is_some();
    let report = outcome.panic.is_none().then(|| {
        let mut r = RunReport::new(&outcome.history, &outcome.results);
        r.reproduce = reproduce.clone();
        r
    });
    let determinism = second.map(|h| match nondeterministic {
        Some(_) => format!(
            "determinism: FAILED: history hash {:016x} then {h:016x}",
            outcome.hash
        ),
        None => format!("determinism: ok (two runs, history hash {h:016x})"),
    });
    match a.format {
        RunFormat::Text | RunFormat::Markdown => {
            let mut out = match (&report, &outcome.panic) {
                (Some(r), _) if a.format == RunFormat::Text => reports::render_text(r),
                (Some(r), _) => reports::render_markdown(r),
                (None, Some(p)) => {
                    format!("seed {seed}: the simulation panicked: {p}\nreproduce: {reproduce}\n")
                }
                (None, None) => unreachable!("a run without a report panicked"),
            };
            if let Some(d) = &determinism {
                out.push_str(d);
                out.push('\n');
                if nondeterministic.is_some() && report.as_ref().is_some_and(|r| r.passed()) {
                    out.push_str(&format!("reproduce: {reproduce} --check-determinism\n"));
                }
            }
            print!("{out}");
        }
        RunFormat::Json => {
            let doc = json!({
                "schema_version": 1,
                "command": "run",
                "parameters": {
                    "scenario": sc.name,
                    "source": a.scenario,
                    "seed": seed,
                    "seed_source": source,
                    "behaviours": outcome.history.meta.behaviours,
                    "fixes": outcome.history.meta.fixes,
                    "release": outcome.history.meta.release,
                    "broker": changed_keys(&opts.broker_config(&sc)),
                    "proxy": changed_proxy_keys(&sc.proxy),
                    "replaced": runner::replaced_values(&scenarios::swarm::resolve(&sc, seed).0),
                    "duration_ms": sc.duration_ms,
                    "quiet_from_ms": outcome.history.meta.quiet_from,
                },
                "report": report,
                "panic": outcome.panic.as_ref().map(ToString::to_string),
                "determinism": second.map(|h| json!({"ok": h == outcome.hash, "second_hash": format!("{h:016x}")})),
                "failed": failed,
                "reproduce": failed.then_some(reproduce),
            });
            println!(
                "{}",
                serde_json::to_string_pretty(&doc).expect("report serialises")
            );
        }
    }
    Ok(exit(failed))
}

/// Refuses a `--save-history` destination that cannot be written, before anything runs:
/// its directory must exist and it must not be a directory itself.
fn check_writable(path: &std::path::Path) -> Result<(), UsageError> {
    let bad = |why: &str| {
        Err(UsageError(format!(
            "--save-history {}: {why}",
            path.display()
        )))
    };
    if path.is_dir() {
        return bad("is a directory; give a file name");
    }
    let parent = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(std::path::Path::new("."));
    if !parent.is_dir() {
        return bad(&format!(
            "the directory {} does not exist",
            parent.display()
        ));
    }
    Ok(())
}

/// The resolved parameters, printed before the run.
fn describe(original: &Scenario, seed: u64, source: &str, opts: &RunOptions) -> String {
    // What runs: a random variant's lines show this seed's draw, listed again below.
    let (resolved, _) = scenarios::swarm::resolve(original, seed);
    let sc = &resolved;
    let mut s = String::new();
    let _ = writeln!(s, "scenario:   {}{}", sc.name, upstream(sc));
    let how = match source {
        "random" => " (random; pass --seed to replay)".to_owned(),
        other => format!(" (from {other})"),
    };
    let _ = writeln!(s, "seed:       {seed}{how}");
    let bs: Vec<&str> = crate::explore::with_baseline(opts, original)
        .effective_behaviours()
        .iter()
        .map(|b| b.name())
        .collect();
    let _ = writeln!(
        s,
        "behaviours: {}",
        if bs.is_empty() {
            "none (every fix in)".to_owned()
        } else {
            bs.join(", ")
        }
    );
    let fixes: Vec<&str> = opts.behaviours.fixes().map(|f| f.name()).collect();
    if !fixes.is_empty() {
        let _ = writeln!(s, "fixes:      {} (proposed)", fixes.join(", "));
    }
    if let Some(r) = opts.release {
        let _ = writeln!(s, "release:    {r}");
    }
    let _ = writeln!(
        s,
        "duration:   {} ms (faults stop at {} ms)",
        sc.duration_ms,
        sc.duration_ms.saturating_sub(sc.quiet_period_ms)
    );
    let cfg = opts.broker_config(sc);
    let changed = changed_keys(&cfg);
    let _ = writeln!(
        s,
        "broker:     {}",
        if changed.is_empty() {
            "defaults".to_owned()
        } else {
            changed.join(", ")
        }
    );
    if sc.consumers.iter().any(|c| c.kind.is_grpc()) {
        let changed = changed_proxy_keys(&sc.proxy);
        let _ = writeln!(
            s,
            "proxy:      {}",
            if changed.is_empty() {
                "defaults".to_owned()
            } else {
                changed.join(", ")
            }
        );
    }
    for r in runner::replaced_values(sc) {
        let _ = writeln!(s, "replaced:   {r}");
    }
    let f = &sc.faults;
    let _ = writeln!(
        s,
        "network:    latency {}..{} ms, loss {}; random clogs every {} ms, crashes every {} ms, pauses every {} ms (0 = none)",
        f.latency_ms.min, f.latency_ms.max, f.loss_rate, f.clog_every_ms, f.crash_every_ms, f.pause_every_ms
    );
    let mut nodes = vec!["broker".to_owned()];
    if sc.consumers.iter().any(|c| c.kind.is_grpc()) {
        nodes.push(format!("{} (gRPC proxy)", crate::proxy::PROXY_NODE));
    }
    nodes.extend(
        sc.producers
            .iter()
            .map(|p| format!("{} (producer)", p.name)),
    );
    nodes.extend(
        sc.consumers
            .iter()
            .map(|c| format!("{} ({} consumer)", c.name, kebab(c.kind))),
    );
    nodes.extend(
        sc.clients
            .iter()
            .map(|c| format!("{} ({} client)", c.name, kebab(c.kind))),
    );
    let _ = writeln!(s, "nodes:      {}", nodes.join(", "));
    let _ = writeln!(s, "steps:      {}", sc.steps.len());
    s.push_str(&crate::explore::describe_swarm(original, seed));
    s.push('\n');
    s
}

/// A scenario enum value as the file spells it.
fn kebab<T: serde::Serialize>(v: T) -> String {
    serde_json::to_value(v)
        .ok()
        .and_then(|j| j.as_str().map(str::to_owned))
        .unwrap_or_default()
}

fn upstream(sc: &Scenario) -> String {
    if sc.upstream.is_empty() {
        String::new()
    } else {
        format!(" ({})", sc.upstream.join(", "))
    }
}

/// The broker keys that differ from upstream's defaults, as `key=value`.
fn changed_keys(cfg: &broker_core::BrokerConfig) -> Vec<String> {
    changed(cfg, &broker_core::BrokerConfig::default())
}

/// The proxy keys that differ from upstream's defaults, as `key=value`.
fn changed_proxy_keys(cfg: &scenarios::model::ProxyConfig) -> Vec<String> {
    changed(cfg, &scenarios::model::ProxyConfig::default())
}

fn changed<T: serde::Serialize>(cfg: &T, default: &T) -> Vec<String> {
    let (Ok(serde_json::Value::Object(now)), Ok(serde_json::Value::Object(def))) =
        (serde_json::to_value(cfg), serde_json::to_value(default))
    else {
        return Vec::new();
    };
    now.iter()
        .filter(|(k, v)| def.get(*k) != Some(*v))
        .map(|(k, v)| format!("{k}={v}"))
        .collect()
}

// ---------------------------------------------------------------------------------------
// verify

/// One verify row: a scenario, bug on or fixed, on one seed.
#[derive(Clone, Debug)]
struct VerifyRow {
    scenario: String,
    variant: String,
    seed: u64,
    expected: String,
    observed: String,
    ok: bool,
}

/// What a verify run must show.
#[derive(Clone, Debug)]
enum Expectation {
    /// Every listed invariant violated (a bug row, or develop under a finding).
    Violates(Vec<String>),
    /// Every invariant held, except those allowed (`expect.fixed`).
    Holds(Vec<String>),
}

/// One run `popsim verify` makes: a scenario, the switches on, a seed, and what must show.
struct VerifyTask {
    scenario: usize,
    /// Historical behaviours and proposed fixes switched on.
    on: Behaviours,
    /// The row's name: `bug: …`, `fixed`, `develop`, `fix: …`.
    variant: String,
    expect: Expectation,
    seed: u64,
}

/// The rows of one scenario on one seed: its bug rows and its fixed row, or for a finding
/// (`fixes` non-empty) the develop row and the row with its proposed fixes on.
fn scenario_tasks(
    i: usize,
    sc: &Scenario,
    seed: u64,
    prefix: &str,
) -> Result<Vec<VerifyTask>, UsageError> {
    let mut out = Vec::new();
    for row in sc.bug_rows() {
        let on = behaviours(sc, &row.bugs)?;
        let names: Vec<&str> = on.iter().map(|b| b.name()).collect();
        out.push(VerifyTask {
            scenario: i,
            on,
            variant: format!("{prefix}bug: {}", names.join(" + ")),
            expect: Expectation::Violates(row.violates),
            seed,
        });
    }
    let fixes = fixes(sc, &sc.fixes)?;
    if fixes.is_empty() {
        out.push(VerifyTask {
            scenario: i,
            on: Behaviours::fixed(),
            variant: format!("{prefix}fixed"),
            expect: Expectation::Holds(sc.expect.fixed.clone()),
            seed,
        });
    } else {
        out.push(VerifyTask {
            scenario: i,
            on: Behaviours::fixed(),
            variant: format!("{prefix}develop"),
            expect: Expectation::Violates(sc.expect.develop.clone()),
            seed,
        });
        out.push(fix_task(i, seed, prefix, fixes));
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
/// what it recorded; then with every historical fix in and its `fixed-by` fixes on,
/// everything must hold. A line with neither bugs nor `fixed-by` is a failure on develop
/// that nobody has triaged yet: its hold row keeps verify failing.
fn regression_tasks(
    i: usize,
    sc: &Scenario,
    r: &crate::explore::Regression,
) -> Result<Vec<VerifyTask>, UsageError> {
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

/// Proposed fixes named in a scenario or a regressions line, parsed.
fn fixes(sc: &Scenario, names: &[String]) -> Result<Vec<Fix>, UsageError> {
    names
        .iter()
        .map(|n| {
            n.parse::<Fix>()
                .map_err(|e| UsageError(format!("scenario `{}`: {e}", sc.name)))
        })
        .collect()
}

fn cmd_verify(a: &VerifyArgs) -> CmdResult {
    let scs = load_many(&a.scenarios)?;
    let jobs = jobs(a.jobs)?;
    let dir = a
        .regressions
        .clone()
        .unwrap_or_else(crate::explore::default_regressions_dir);
    let mut tasks = Vec::new();
    for (i, (_, sc)) in scs.iter().enumerate() {
        // Recorded failing seeds first (proptest's convention).
        for r in crate::explore::load_regressions(&dir, &sc.name).map_err(UsageError)? {
            tasks.extend(regression_tasks(i, sc, &r)?);
        }
        for &seed in &sc.seeds {
            tasks.extend(scenario_tasks(i, sc, seed, "")?);
        }
    }
    // Heaviest scenarios first (by messages produced), so the last worker does not finish
    // alone on a long seed; rows are reported in task order all the same.
    let weight = |t: &VerifyTask| -> u64 {
        let sc = &scs[t.scenario].1;
        sc.producers.iter().map(|p| p.messages).sum()
    };
    let mut order: Vec<usize> = (0..tasks.len()).collect();
    order.sort_by_key(|&i| std::cmp::Reverse(weight(&tasks[i])));
    let done = runner::par_map(&order, jobs, |&i| {
        let t = &tasks[i];
        let opts = RunOptions {
            behaviours: t.on.clone(),
            ..RunOptions::default()
        };
        runner::run_summary(&scs[t.scenario].1, t.seed, &opts, false)
    });
    // Back to task order.
    let mut done: Vec<_> = order.into_iter().zip(done).collect();
    done.sort_unstable_by_key(|(i, _)| *i);
    let summaries = done.into_iter().map(|(_, sum)| sum);
    let rows: Vec<VerifyRow> = tasks
        .iter()
        .zip(summaries)
        .map(|(t, sum)| {
            let violated: BTreeSet<&str> = sum.violated.iter().copied().collect();
            let (expected, ok) = match &t.expect {
                Expectation::Violates(violates) => {
                    let want: BTreeSet<&str> = violates.iter().map(String::as_str).collect();
                    let exp = if want.is_empty() {
                        "anything (none declared)".to_owned()
                    } else {
                        format!("violates {}", join(&want))
                    };
                    (exp, sum.panic.is_none() && want.is_subset(&violated))
                }
                Expectation::Holds(allowed) => {
                    let allowed: BTreeSet<&str> = allowed.iter().map(String::as_str).collect();
                    let exp = if allowed.is_empty() {
                        "all hold".to_owned()
                    } else {
                        format!("all hold (may violate {})", join(&allowed))
                    };
                    (exp, sum.panic.is_none() && violated.is_subset(&allowed))
                }
            };
            VerifyRow {
                scenario: scs[t.scenario].1.name.clone(),
                variant: t.variant.clone(),
                seed: t.seed,
                expected,
                observed: observed(&sum),
                ok,
            }
        })
        .collect();
    let all_ok = rows.iter().all(|r| r.ok);
    match a.format {
        Format::Text => print!("{}", render_verify(&rows)),
        Format::Json => {
            let rows: Vec<_> = rows
                .iter()
                .map(|r| {
                    json!({"scenario": r.scenario, "variant": r.variant, "seed": r.seed,
                           "expected": r.expected, "observed": r.observed, "match": r.ok})
                })
                .collect();
            let doc = json!({"schema_version": 1, "command": "verify", "rows": rows, "ok": all_ok});
            println!(
                "{}",
                serde_json::to_string_pretty(&doc).expect("report serialises")
            );
        }
    }
    Ok(exit(!all_ok))
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

fn render_verify(rows: &[VerifyRow]) -> String {
    let header = [
        "scenario", "variant", "seed", "expected", "observed", "match",
    ];
    let cells: Vec<[String; 6]> = rows
        .iter()
        .map(|r| {
            [
                r.scenario.clone(),
                r.variant.clone(),
                r.seed.to_string(),
                r.expected.clone(),
                r.observed.clone(),
                if r.ok { "ok" } else { "MISMATCH" }.to_owned(),
            ]
        })
        .collect();
    let mut s = table(&header, &cells);
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

/// A plain left-aligned text table.
fn table<const N: usize>(header: &[&str; N], rows: &[[String; N]]) -> String {
    let mut w = header.map(str::len);
    for r in rows {
        for (i, c) in r.iter().enumerate() {
            w[i] = w[i].max(c.chars().count());
        }
    }
    let line = |cells: Vec<&str>| {
        let mut l = String::new();
        for (i, c) in cells.iter().enumerate() {
            if i + 1 == N {
                l.push_str(c);
            } else {
                let _ = write!(l, "{c:w$}  ", w = w[i]);
            }
        }
        l.trim_end().to_owned() + "\n"
    };
    let mut s = line(header.to_vec());
    for r in rows {
        s.push_str(&line(r.iter().map(String::as_str).collect()));
    }
    s
}

// ---------------------------------------------------------------------------------------
// sweep

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

fn cmd_sweep(a: &SweepArgs) -> CmdResult {
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
    let jobs = jobs(a.jobs)?;
    let seeds: Vec<u64> = match shard {
        Some((i, n)) => range
            .clone()
            .enumerate()
            .filter(|(k, _)| *k as u64 % n == i - 1)
            .map(|(_, s)| s)
            .collect(),
        None => range.clone().collect(),
    };
    let opts = a.bugs.options();
    let tty = std::io::stderr().is_terminal();
    let shard_text = shard.map(|(i, n)| format!("{i}/{n}"));
    let behaviours: Vec<&str> = crate::explore::with_baseline(&opts, &sc)
        .effective_behaviours()
        .iter()
        .map(|b| b.name())
        .collect();
    let bug_names: Vec<String> = opts
        .effective_behaviours()
        .iter()
        .map(|b| b.name().to_owned())
        .collect();
    let mut found: Vec<crate::explore::Regression> = Vec::new();
    let mut summary = SweepSummary::new(sc.name.clone());
    let mut first_failing: Option<u64> = None;
    let mut nondeterministic: Vec<u64> = Vec::new();
    let mut first_panic: Option<(u64, String)> = None;
    let mut failures = 0usize;
    let stdout = std::io::stdout();
    runner::sweep_each(&sc, &seeds, &opts, jobs, a.check_determinism, |done, r| {
        match &r.panic {
            Some(p) => {
                summary.record_panic(r.seed);
                first_panic.get_or_insert((r.seed, p.to_string()));
            }
            None => summary.record(r.seed, &r.verdicts),
        }
        if r.nondeterministic.is_some() {
            nondeterministic.push(r.seed);
        }
        if r.failed() {
            failures += 1;
            first_failing.get_or_insert(r.seed);
        }
        let broke = r.panic.is_some() || !r.violated.is_empty();
        if broke && found.len() < crate::explore::MAX_NEW_PER_SWEEP {
            found.push(crate::explore::Regression {
                seed: r.seed,
                bugs: bug_names.clone(),
                fixed_by: Vec::new(),
                violates: match r.panic {
                    Some(_) => vec!["panic".to_owned()],
                    None => r.violated.iter().map(|v| (*v).to_owned()).collect(),
                },
            });
        }
        if a.format == Format::Json {
            let line = json!({
                "type": "seed",
                "scenario": sc.name,
                "seed": r.seed,
                "failed": r.failed(),
                "violated": r.violated,
                "panic": r.panic.as_ref().map(ToString::to_string),
                "history_hash": format!("{:016x}", r.hash),
                "nondeterministic": r.nondeterministic.map(|h| format!("{h:016x}")),
            });
            let _ = writeln!(stdout.lock(), "{line}");
        }
        if tty {
            eprint!("\r{}/{} seeds, {failures} failed", done + 1, seeds.len());
            if done + 1 == seeds.len() {
                eprintln!();
            }
        }
    });
    let failed = first_failing.is_some();
    let with_fixes = opts.behaviours.fixes().next().is_some();
    if with_fixes && !found.is_empty() && !a.no_record {
        eprintln!(
            "regressions: not recorded (proposed fixes on); a failure with a fix on is triaged by hand"
        );
    }
    if !a.no_record && !with_fixes && !found.is_empty() {
        let dir = a
            .regressions
            .clone()
            .unwrap_or_else(crate::explore::default_regressions_dir);
        match crate::explore::append_regressions(&dir, &sc.name, &found) {
            Ok(added) if !added.is_empty() => eprintln!(
                "regressions: recorded {} new failing seed(s) in {}",
                added.len(),
                crate::explore::regressions_file(&dir, &sc.name).display()
            ),
            Ok(_) => {}
            Err(e) => eprintln!("regressions: cannot record in {}: {e}", dir.display()),
        }
    }
    match a.format {
        Format::Text => {
            let mut s = String::new();
            let _ = writeln!(
                s,
                "sweep: seeds {}{}, {} runs, behaviours: {}",
                a.seeds,
                shard_text
                    .as_ref()
                    .map(|t| format!(" (shard {t})"))
                    .unwrap_or_default(),
                summary.runs,
                if behaviours.is_empty() {
                    "none (every fix in)".to_owned()
                } else {
                    behaviours.join(", ")
                }
            );
            if with_fixes {
                let names: Vec<&str> = opts.behaviours.fixes().map(|f| f.name()).collect();
                let _ = writeln!(s, "proposed fixes: {}", names.join(", "));
            }
            s.push_str(&reports::render_sweep_text(&summary));
            if let Some((seed, p)) = &first_panic {
                let _ = writeln!(s, "  first panic: seed {seed}: {p}");
            }
            if a.check_determinism {
                let _ = writeln!(
                    s,
                    "  determinism: {}",
                    if nondeterministic.is_empty() {
                        "every seed gave the same history twice".to_owned()
                    } else {
                        format!(
                            "FAILED on seeds {}",
                            nondeterministic
                                .iter()
                                .map(u64::to_string)
                                .collect::<Vec<_>>()
                                .join(", ")
                        )
                    }
                );
            }
            if let Some(seed) = first_failing {
                let _ = writeln!(
                    s,
                    "reproduce: popsim run {}{} --seed {seed}",
                    a.scenario,
                    a.bugs.words()
                );
            }
            print!("{s}");
        }
        Format::Json => {
            let line = json!({
                "type": "summary",
                "schema_version": 1,
                "scenario": sc.name,
                "seeds": a.seeds,
                "shard": shard_text,
                "behaviours": behaviours,
                "fixes": opts.behaviours.fixes().map(|f| f.name()).collect::<Vec<_>>(),
                "nondeterministic_seeds": nondeterministic,
                "summary": summary,
            });
            println!("{line}");
        }
    }
    Ok(exit(failed))
}

// ---------------------------------------------------------------------------------------
// matrix

fn cmd_matrix(a: &MatrixArgs) -> CmdResult {
    let scs = load_many(&a.scenarios)?;
    let jobs = jobs(a.jobs)?;
    let mut tasks = Vec::new();
    for (i, (_, sc)) in scs.iter().enumerate() {
        for (j, r) in Release::ALL.iter().enumerate() {
            for &seed in &sc.seeds {
                tasks.push((i, j, *r, seed));
            }
        }
    }
    let summaries = runner::par_map(&tasks, jobs, |(i, _, release, seed)| {
        let opts = RunOptions {
            release: Some(*release),
            ..RunOptions::default()
        };
        runner::run_summary(&scs[*i].1, *seed, &opts, false)
    });
    // cells[(scenario, release)] = violated names (or panics) over the pinned seeds.
    let mut cells: BTreeMap<(usize, usize), BTreeSet<String>> = BTreeMap::new();
    for ((i, j, _, _), sum) in tasks.iter().zip(&summaries) {
        let cell = cells.entry((*i, *j)).or_default();
        cell.extend(sum.violated.iter().map(|v| (*v).to_owned()));
        if sum.panic.is_some() {
            cell.insert("(panic)".into());
        }
    }
    let any = cells.values().any(|c| !c.is_empty());
    match a.format {
        Format::Text => {
            let mut rows = Vec::new();
            for (i, (_, sc)) in scs.iter().enumerate() {
                let mut row = vec![sc.name.clone()];
                for j in 0..Release::ALL.len() {
                    let c = &cells[&(i, j)];
                    row.push(if c.is_empty() {
                        "ok".into()
                    } else {
                        c.iter().cloned().collect::<Vec<_>>().join(", ")
                    });
                }
                rows.push(row);
            }
            let mut s = String::from(
                "Invariants broken per release (over each scenario's pinned seeds):\n\n",
            );
            s.push_str(&matrix_table(&rows));
            print!("{s}");
        }
        Format::Json => {
            let mut out = Vec::new();
            for (i, (_, sc)) in scs.iter().enumerate() {
                let per: BTreeMap<&str, Vec<String>> = Release::ALL
                    .iter()
                    .enumerate()
                    .map(|(j, r)| (r.name(), cells[&(i, j)].iter().cloned().collect()))
                    .collect();
                out.push(json!({"scenario": sc.name, "violated": per}));
            }
            let doc =
                json!({"schema_version": 1, "command": "matrix", "rows": out, "any_violated": any});
            println!(
                "{}",
                serde_json::to_string_pretty(&doc).expect("report serialises")
            );
        }
    }
    Ok(exit(any))
}

fn matrix_table(rows: &[Vec<String>]) -> String {
    let mut header = vec!["scenario".to_owned()];
    header.extend(Release::ALL.iter().map(|r| r.name().to_owned()));
    let mut w: Vec<usize> = header.iter().map(String::len).collect();
    for r in rows {
        for (i, c) in r.iter().enumerate() {
            w[i] = w[i].max(c.chars().count());
        }
    }
    let mut s = String::new();
    for r in std::iter::once(&header).chain(rows) {
        let mut l = String::new();
        for (i, c) in r.iter().enumerate() {
            let _ = write!(l, "{c:w$}  ", w = w[i]);
        }
        s.push_str(l.trim_end());
        s.push('\n');
    }
    s
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
