//! `popsim run`: one scenario on one seed, with the resolved parameters first.

use super::{exit, load_warned, parse_seed, BugArgs, CmdResult, RunFormat, UsageError};
use crate::runner::{self, RunOptions};
use clap::Args;
use reports::{Layout, RunReport};
use scenarios::Scenario;
use std::fmt::Write as _;
use std::io::Write as _;

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

pub(super) fn cmd_run(a: &RunArgs, layout: Layout) -> CmdResult {
    let sc = load_warned(&a.scenario)?;
    if let Some(path) = &a.save_history {
        check_writable(path)?;
    }
    let (seed, source) = pick_seed(a.seed)?;
    let mut opts = a.bugs.options();
    opts.trace = a.trace && std::env::var_os("RUST_LOG").is_some();
    opts.counts = true;
    if let Some(path) = &a.timeline {
        crate::output::check_destination("--timeline", path).map_err(UsageError)?;
    }
    let reproduce = format!("popsim run {}{} --seed {seed}", a.scenario, a.bugs.words());
    if a.format == RunFormat::Text {
        let header = describe(&sc, seed, source, &opts);
        print!("{}", reports::commands::fit_lines(&header, layout));
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
        let mut r = RunReport::new(
            &outcome.history,
            &outcome.results,
            outcome
                .counts
                .clone()
                .expect("counted: the run did not panic"),
            outcome.hash,
        );
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
                (Some(r), _) if a.format == RunFormat::Text => {
                    reports::report::render_text_with(r, layout)
                }
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
            // What ran, as the runner prepared it (a random variant's drawn keys included).
            let prepared = runner::prepare(&sc, seed, &opts);
            let params = reports::commands::RunParameters {
                scenario: sc.name.clone(),
                source: a.scenario.clone(),
                seed,
                seed_source: source.to_owned(),
                behaviours: outcome.history.meta.behaviours.clone(),
                fixes: outcome.history.meta.fixes.clone(),
                release: outcome.history.meta.release.clone(),
                broker: changed_keys(&prepared.world.broker),
                proxy: changed_proxy_keys(&prepared.scenario.proxy),
                replaced: runner::replaced_values(&prepared.scenario),
                duration_ms: prepared.scenario.duration_ms,
                quiet_from_ms: outcome.history.meta.quiet_from,
            };
            print!(
                "{}",
                reports::commands::render_run_json(
                    &params,
                    report.as_ref(),
                    outcome.panic.as_ref().map(ToString::to_string),
                    outcome.hash,
                    second,
                    failed,
                    &reproduce,
                )
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
    // What runs, prepared as the runner prepares it: a random variant's lines show this
    // seed's draw, listed again below.
    let prepared = runner::prepare(original, seed, opts);
    let sc = &prepared.scenario;
    let mut s = String::new();
    let _ = writeln!(s, "scenario:   {}{}", sc.name, upstream(sc));
    let how = match source {
        "random" => " (random; pass --seed to replay)".to_owned(),
        other => format!(" (from {other})"),
    };
    let _ = writeln!(s, "seed:       {seed}{how}");
    let bs: Vec<&str> = prepared
        .opts
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
    let changed = changed_keys(&prepared.world.broker);
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
        "network:    latency {}..{} ms, loss {}",
        f.latency_ms.min, f.latency_ms.max, f.loss_rate
    );
    let scripted: Vec<String> = sc
        .steps
        .iter()
        .filter_map(|st| match &st.action {
            scenarios::model::Action::SetLoss { rate } => {
                Some(format!("loss {rate} from {} ms", st.at_ms))
            }
            _ => None,
        })
        .collect();
    let _ = writeln!(
        s,
        "faults:     random clogs every {} ms, crashes every {} ms, pauses every {} ms (0 = none){}",
        f.clog_every_ms,
        f.crash_every_ms,
        f.pause_every_ms,
        if scripted.is_empty() {
            String::new()
        } else {
            format!("; scripted {}", scripted.join(", "))
        }
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
