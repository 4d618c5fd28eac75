//! `popsim shrink`: reduce a failing seed to a small scripted scenario that still violates
//! the same invariant. No DST anchor shrinks a failing schedule (spec §2.7); since each rerun
//! is cheap and deterministic, this is greedy delta debugging over the scenario itself:
//! random faults become scripted steps, then faults, steps, consumers, producers, clients,
//! messages and the duration are cut while the seed still fails the same way.

use crate::cli::{BugArgs, UsageError};
use crate::runner::{run_seed, RunOptions};
use scenarios::model::{Action, FaultSpec, Scenario, Step};
use std::path::PathBuf;
use std::process::ExitCode;

/// How big a scenario is, on the axes the shrinker reduces.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Size {
    pub messages: u64,
    pub consumers: usize,
    pub producers: usize,
    pub clients: usize,
    pub steps: usize,
    /// Random fault kinds switched on plus scripted fault steps.
    pub faults: usize,
    pub duration_ms: u64,
}

impl Size {
    pub fn of(sc: &Scenario) -> Self {
        let f = &sc.faults;
        let random = usize::from(f.loss_rate > 0.0)
            + usize::from(f.clog_every_ms > 0)
            + usize::from(f.crash_every_ms > 0)
            + usize::from(f.pause_every_ms > 0);
        Self {
            messages: sc.producers.iter().map(|p| p.messages).sum::<u64>()
                + sc.steps
                    .iter()
                    .map(|s| match &s.action {
                        Action::Produce { count, .. } => *count,
                        _ => 0,
                    })
                    .sum::<u64>(),
            consumers: sc.consumers.len(),
            producers: sc.producers.len(),
            clients: sc.clients.len(),
            steps: sc.steps.len(),
            faults: random + sc.steps.iter().filter(|s| is_fault(&s.action)).count(),
            duration_ms: sc.duration_ms,
        }
    }
}

impl std::fmt::Display for Size {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} messages, {} consumers, {} producers, {} clients, {} steps, {} faults, {} ms",
            self.messages,
            self.consumers,
            self.producers,
            self.clients,
            self.steps,
            self.faults,
            self.duration_ms
        )
    }
}

fn is_fault(a: &Action) -> bool {
    matches!(
        a,
        Action::Crash
            | Action::Shutdown
            | Action::Restart
            | Action::Clog { .. }
            | Action::Unclog { .. }
            | Action::Pause { .. }
            | Action::SetLoss { .. }
            | Action::SetStorePutFailureRate { .. }
            | Action::SetTimerLag { .. }
    )
}

/// A shrink's result.
pub struct Shrunk {
    pub scenario: Scenario,
    pub invariant: String,
    pub before: Size,
    pub after: Size,
    /// Simulation runs spent.
    pub runs: usize,
}

/// Reduces `sc` on `seed` (with `opts`) to a smaller scenario that still violates
/// `invariant` (default: the first invariant the original run violates). At most `budget`
/// reruns. The result is a plain scripted scenario: its `[swarm]` draw is resolved, its
/// behaviours are its `replays`, and it pins `seed`.
pub fn shrink(
    sc: &Scenario,
    seed: u64,
    opts: &RunOptions,
    invariant: Option<&str>,
    budget: usize,
) -> Result<Shrunk, String> {
    let first = run_seed(sc, seed, opts);
    if let Some(p) = &first.panic {
        return Err(format!(
            "seed {seed} panics ({p}); shrink reduces invariant violations"
        ));
    }
    let violated = first.violated();
    let target = match invariant {
        Some(i) if violated.contains(&i) => i.to_owned(),
        Some(i) => {
            return Err(format!(
                "seed {seed} does not violate `{i}` (it violates: {})",
                list(&violated)
            ))
        }
        None => violated
            .first()
            .map(|s| (*s).to_owned())
            .ok_or_else(|| format!("seed {seed} violates nothing; nothing to shrink"))?,
    };

    // The starting point: this seed's draw, as a scenario that replays the run's behaviours.
    // Prepared as the runner prepares the seed: the draw resolved, the baseline known.
    let prepared = crate::runner::prepare(sc, seed, opts);
    let mut base = prepared.scenario.clone();
    let baseline = crate::explore::baseline(&base);
    base.broker = prepared.world.broker.clone();
    base.replays = opts
        .effective_behaviours()
        .iter()
        .filter(|b| !baseline.is_on(*b))
        .map(|b| b.name().to_owned())
        .collect();
    base.name = format!("{}-shrunk-{seed}", sc.name);
    base.description = format!(
        "`{}` seed {seed}, shrunk: still violates {target}.",
        sc.name
    );
    base.seeds = vec![seed];
    base.expect.rows.clear();
    base.expect.fixed.clear();
    base.expect.with_bug.clear();
    base.expect.develop.clear();
    if base.replays.is_empty() {
        // Found on develop: a finding (its fixes, if any, named on the command line).
        base.fixes = opts
            .behaviours
            .fixes()
            .map(|f| f.name().to_owned())
            .collect();
        base.expect.develop = vec![target.clone()];
    } else {
        base.expect.with_bug = vec![target.clone()];
    }
    if !base.expect.invariants.is_empty() && !base.expect.invariants.contains(&target) {
        base.expect.invariants.push(target.clone());
    }
    let before = Size::of(&base);

    let mut s = Search {
        seed,
        target: target.clone(),
        fixes: opts.behaviours.fixes().collect(),
        runs: 1,
        budget,
        bar: crate::cli::progress(budget as u64, "shrink"),
    };
    s.bar.inc(1);
    // The bar every candidate must meet, including the start (its behaviours are now its
    // replays rather than command-line switches).
    let ctx = scenarios::Context::with_invariants(reports::invariant_names());
    if let Err(e) = scenarios::load_str("shrink.toml", &scenarios::to_toml(&base), &ctx) {
        return Err(format!(
            "seed {seed}'s draw does not load back as a scenario file (a bug in the writer):\n{}",
            e.render()
        ));
    }
    let mut cur = s
        .check(&base)
        .ok_or_else(|| format!("seed {seed} no longer violates `{target}` as a scenario file"))?;

    // Random faults as scripted steps, when the same seed still fails that way.
    let scripted = script_random_faults(&cur, &first.history.events);
    if let Some(c) = scripted.and_then(|c| s.check(&c)) {
        cur = c;
    }

    // First improvement, then start over from the smaller scenario: candidates are derived
    // from the current one, so applying a stale one would undo a cut.
    let mut tried = std::collections::BTreeSet::new();
    'outer: while !s.exhausted() {
        for cand in candidates(&cur) {
            if s.exhausted() {
                break 'outer;
            }
            if !tried.insert(scenarios::to_toml(&cand)) {
                continue;
            }
            if let Some(c) = s.check(&cand) {
                cur = c;
                continue 'outer;
            }
        }
        break;
    }
    s.bar.finish_and_clear();
    let after = Size::of(&cur);
    Ok(Shrunk {
        scenario: cur,
        invariant: target,
        before,
        after,
        runs: s.runs,
    })
}

fn list(v: &[&str]) -> String {
    if v.is_empty() {
        "nothing".into()
    } else {
        v.join(", ")
    }
}

struct Search {
    seed: u64,
    target: String,
    /// The proposed fixes the seed was run with: a candidate's file names them as a finding's
    /// `fixes` but switches none on, so each check switches them on as the final replay does.
    fixes: Vec<broker_core::Fix>,
    runs: usize,
    budget: usize,
    /// Reruns out of the budget (drawn on a terminal only).
    bar: indicatif::ProgressBar,
}

impl Search {
    fn exhausted(&self) -> bool {
        self.runs >= self.budget
    }

    /// The candidate as its file would load, if it is valid and still fails on target.
    fn check(&mut self, cand: &Scenario) -> Option<Scenario> {
        let ctx = scenarios::Context::with_invariants(reports::invariant_names());
        let loaded = scenarios::load_str("shrink.toml", &scenarios::to_toml(cand), &ctx).ok()?;
        if self.exhausted() {
            return None;
        }
        self.runs += 1;
        self.bar.inc(1);
        let mut opts = RunOptions {
            behaviours: loaded
                .replays
                .iter()
                .filter_map(|b| b.parse().ok())
                .collect(),
            ..RunOptions::default()
        };
        for &f in &self.fixes {
            opts.behaviours.insert_fix(f);
        }
        let out = run_seed(&loaded, self.seed, &opts);
        (out.panic.is_none() && out.violated().contains(&self.target.as_str())).then_some(loaded)
    }
}

/// The random faults the run injected, as scripted steps, with random faults off.
fn script_random_faults(sc: &Scenario, events: &[reports::history::Event]) -> Option<Scenario> {
    use reports::history::EventKind;
    let mut added = Vec::new();
    for e in events {
        let EventKind::Fault { description } = &e.kind else {
            continue;
        };
        let Some(d) = description.strip_suffix(" (random)").or_else(|| {
            description
                .split_once(" (random) until")
                .map(|(head, _)| head)
        }) else {
            continue;
        };
        let w: Vec<&str> = d.split_whitespace().collect();
        let action = match w.as_slice() {
            ["crash", _] => Action::Crash,
            ["restart", _] => Action::Restart,
            ["clog", node] => Action::Clog {
                node: (*node).to_owned(),
            },
            ["unclog", node] => Action::Unclog {
                node: (*node).to_owned(),
            },
            ["pause", node, "for", ms, "ms"] => Action::Pause {
                node: (*node).to_owned(),
                duration_ms: ms.parse().ok()?,
            },
            ["packet", "loss", rate] => Action::SetLoss {
                rate: rate.parse().ok()?,
            },
            ["store", "put", "failures", rate] => Action::SetStorePutFailureRate {
                rate: rate.parse().ok()?,
            },
            ["timer", "lag", ms, "ms"] => Action::SetTimerLag {
                lag_ms: ms.parse().ok()?,
            },
            // "resume" ends a pause the pause step already bounds.
            _ => continue,
        };
        added.push(Step {
            at_ms: e.at,
            action,
        });
    }
    let mut out = sc.clone();
    // The store's environment is not a fault: it stays.
    out.faults = FaultSpec {
        latency_ms: sc.faults.latency_ms,
        retention_ms: sc.faults.retention_ms,
        page_cache_ms: sc.faults.page_cache_ms,
        ..FaultSpec::default()
    };
    out.steps.extend(added);
    // Stable: equal times keep scripted steps first, then faults in the order they happened.
    out.steps.sort_by_key(|s| s.at_ms);
    Some(out)
}

/// Does step `s` name `node`?
fn names(s: &Step, node: &str) -> bool {
    let n = node;
    match &s.action {
        Action::Produce { producer, .. } => producer == n,
        Action::Pop { consumer, .. }
        | Action::Ack { consumer, .. }
        | Action::ChangeInvisibleTime { consumer, .. }
        | Action::StartConsumer { consumer }
        | Action::StopConsumer { consumer } => consumer == n,
        Action::ResetOffset { client, .. }
        | Action::UpdateOffset { client, .. }
        | Action::QueryOffset { client, .. } => client == n,
        Action::Clog { node } | Action::Unclog { node } | Action::Pause { node, .. } => node == n,
        Action::Crash
        | Action::Shutdown
        | Action::Restart
        | Action::SetLoss { .. }
        | Action::SetStorePutFailureRate { .. }
        | Action::SetTimerLag { .. } => false,
    }
}

/// Every one-step reduction of `sc`, most aggressive first.
fn candidates(sc: &Scenario) -> Vec<Scenario> {
    let mut out = Vec::new();
    // Random fault kinds off.
    let f = &sc.faults;
    for (on, off) in [
        (
            f.loss_rate > 0.0,
            (|f: &mut FaultSpec| f.loss_rate = 0.0) as fn(&mut FaultSpec),
        ),
        (f.crash_every_ms > 0, |f| f.crash_every_ms = 0),
        (f.clog_every_ms > 0, |f| f.clog_every_ms = 0),
        (f.pause_every_ms > 0, |f| f.pause_every_ms = 0),
        (f.store_put_failure_rate > 0.0, |f| {
            f.store_put_failure_rate = 0.0
        }),
        (f.timer_lag_ms.max > 0, |f| {
            f.timer_lag_ms = scenarios::model::RangeMs { min: 0, max: 0 }
        }),
    ] {
        if on {
            let mut c = sc.clone();
            off(&mut c.faults);
            out.push(c);
        }
    }
    // Steps: delta debugging, removing chunks from half the timeline down to single steps.
    let n = sc.steps.len();
    let mut chunk = n.div_ceil(2).max(1);
    for _ in 0..usize::from(n > 0) * 64 {
        let mut start = 0;
        while start < n {
            let mut c = sc.clone();
            c.steps.drain(start..(start + chunk).min(n));
            out.push(c);
            start += chunk;
        }
        if chunk == 1 {
            break;
        }
        chunk = chunk.div_ceil(2);
    }
    // Fault steps in pairs (a crash with its restart, a clog with its unclog).
    for (i, s) in sc.steps.iter().enumerate() {
        let partner = match &s.action {
            Action::Crash | Action::Shutdown => sc.steps[i + 1..]
                .iter()
                .position(|t| t.action == Action::Restart),
            Action::Clog { node } => sc.steps[i + 1..]
                .iter()
                .position(|t| matches!(&t.action, Action::Unclog { node: m } if m == node)),
            _ => None,
        };
        if let Some(j) = partner {
            let mut c = sc.clone();
            c.steps.remove(i + 1 + j);
            c.steps.remove(i);
            out.push(c);
        }
    }
    // Whole nodes, with the steps that name them.
    for (i, c0) in sc.consumers.iter().enumerate() {
        let mut c = sc.clone();
        c.consumers.remove(i);
        c.steps.retain(|s| !names(s, &c0.name));
        out.push(c);
    }
    for (i, p0) in sc.producers.iter().enumerate() {
        let mut c = sc.clone();
        c.producers.remove(i);
        c.steps.retain(|s| !names(s, &p0.name));
        out.push(c);
    }
    for (i, k0) in sc.clients.iter().enumerate() {
        let mut c = sc.clone();
        c.clients.remove(i);
        c.steps.retain(|s| !names(s, &k0.name));
        out.push(c);
    }
    // Fewer messages.
    for (i, p) in sc.producers.iter().enumerate() {
        for m in smaller(p.messages, 0) {
            let mut c = sc.clone();
            c.producers[i].messages = m;
            out.push(c);
        }
    }
    for (i, s) in sc.steps.iter().enumerate() {
        if let Action::Produce { count, .. } = s.action {
            for m in smaller(count, 1) {
                let mut c = sc.clone();
                if let Action::Produce { count, .. } = &mut c.steps[i].action {
                    *count = m;
                }
                out.push(c);
            }
        }
    }
    // Less time: cut the run, keeping the quiet period's share where it fits.
    // Coarse steps only: one-millisecond cuts would spend the budget for nothing.
    let d0 = sc.duration_ms;
    for d in [d0 / 2, d0 - d0 / 4, d0 - d0 / 8, d0 - d0 / 16] {
        if d == 0 || d >= d0 {
            continue;
        }
        let mut c = sc.clone();
        c.duration_ms = d;
        c.quiet_period_ms = sc.quiet_period_ms.min(d);
        c.steps.retain(|s| s.at_ms <= d);
        out.push(c);
    }
    out
}

/// Smaller values to try for `v`, smallest first: the floor, half, and one less.
fn smaller(v: u64, floor: u64) -> Vec<u64> {
    let mut out = Vec::new();
    for x in [floor, v / 2, v.saturating_sub(v / 8), v.saturating_sub(1)] {
        if x >= floor && x < v && !out.contains(&x) {
            out.push(x);
        }
    }
    out
}

/// `popsim shrink`.
#[derive(Debug, clap::Args)]
pub struct ShrinkArgs {
    /// A built-in scenario name or a path to a scenario file (.toml).
    #[arg(value_name = "SCENARIO|FILE.toml")]
    pub scenario: String,
    /// The failing seed.
    #[arg(long, allow_negative_numbers = true, value_parser = crate::cli::parse_seed)]
    pub seed: u64,
    #[command(flatten)]
    pub bugs: BugArgs,
    /// The invariant that must stay violated; default: the first one the seed violates.
    #[arg(long, value_name = "NAME")]
    pub invariant: Option<String>,
    /// Where to write the scenario; default: <name>-shrunk-<seed>.toml here.
    #[arg(long, short, value_name = "FILE")]
    pub out: Option<PathBuf>,
    /// Most simulation reruns to spend.
    #[arg(long, default_value_t = 1000)]
    pub budget: usize,
}

/// Shrinks, writes the file, re-runs it from the file, and prints the reduction.
pub fn cmd_shrink(a: &ShrinkArgs) -> Result<ExitCode, UsageError> {
    let ctx = scenarios::Context::with_invariants(reports::invariant_names());
    let sc = scenarios::resolve(&a.scenario, &ctx)
        .map_err(|e| UsageError(e.render().trim_end().to_owned()))?;
    let opts = a.bugs.options();
    let started = std::time::Instant::now();
    let out = shrink(&sc, a.seed, &opts, a.invariant.as_deref(), a.budget).map_err(UsageError)?;
    let path = a
        .out
        .clone()
        .unwrap_or_else(|| PathBuf::from(format!("{}.toml", out.scenario.name)));
    let mut bugs: String = out
        .scenario
        .replays
        .iter()
        .map(|b| format!(" --bug {b}"))
        .collect();
    bugs.push_str(&crate::cli::fix_words(&opts.behaviours));
    let file = path.display().to_string();
    let header = format!(
        "# Shrunk by `popsim shrink {}{} --seed {}`: the smallest scenario found that still\n\
         # violates `{}` on seed {}.\n\
         # before: {}\n\
         # after:  {}\n\
         # Replay: popsim run {file}{bugs} --seed {}   or   popsim verify {file}\n\n",
        a.scenario,
        bug_words(a),
        a.seed,
        out.invariant,
        a.seed,
        out.before,
        out.after,
        a.seed,
    );
    std::fs::write(&path, header + &scenarios::to_toml(&out.scenario))
        .map_err(|e| UsageError(format!("cannot write {file}: {e}")))?;
    // The file on its own must still fail the same way.
    let again = scenarios::load_file(&path, &ctx)
        .map_err(|e| UsageError(e.render().trim_end().to_owned()))?;
    let mut replay = RunOptions {
        behaviours: again
            .replays
            .iter()
            .filter_map(|b| b.parse().ok())
            .collect(),
        ..RunOptions::default()
    };
    for f in opts.behaviours.fixes() {
        replay.behaviours.insert_fix(f);
    }
    let confirmed = run_seed(&again, a.seed, &replay)
        .violated()
        .contains(&out.invariant.as_str());
    println!(
        "shrink: {} seed {} violates {}",
        sc.name, a.seed, out.invariant
    );
    println!("  before: {}", out.before);
    println!("  after:  {}", out.after);
    println!(
        "  {} reruns in {:.1} s; wrote {file}",
        out.runs,
        started.elapsed().as_secs_f64()
    );
    println!(
        "  replay: popsim run {file}{bugs} --seed {} ({})",
        a.seed,
        if confirmed {
            "checked: fails alone"
        } else {
            "WARNING: the written file did not fail again"
        }
    );
    Ok(ExitCode::from(u8::from(!confirmed)))
}

fn bug_words(a: &ShrinkArgs) -> String {
    a.bugs.words()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn smaller_values_go_down() {
        assert_eq!(smaller(8, 0), vec![0, 4, 7]);
        assert_eq!(smaller(1, 1), Vec::<u64>::new());
        assert_eq!(smaller(2, 1), vec![1]);
    }
}
