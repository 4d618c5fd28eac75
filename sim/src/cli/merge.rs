//! `popsim merge`: adds up the JSON lines of a sharded sweep (`popsim sweep … --shard I/N
//! --format json`, one run per shard) and prints what the unsharded sweep prints: the same
//! summary, exit code and regressions lines (timing aside). Missing or overlapping shards
//! and seeds are bad input (exit 2).

use super::sweep::{finish, seed_line, Recording};
use super::{parse_seed_range, parse_shard, CmdResult, Format, UsageError};
use crate::sweep::{SeedRecord, SweepHeader, SweepState};
use clap::Args;
use reports::Layout;
use std::io::{BufRead, Write as _};
use std::path::PathBuf;

#[derive(Debug, Args)]
pub struct MergeArgs {
    /// Files holding the shards' JSON lines (any number of shards per file, in any order);
    /// none or `-`: standard input.
    #[arg(value_name = "FILE")]
    pub inputs: Vec<PathBuf>,
    /// Do not append failing seeds to the scenario's regressions file.
    #[arg(long)]
    pub no_record: bool,
    /// Directory of the regressions files (default: scenarios/regressions of the current
    /// directory, when it exists; else nothing is recorded).
    #[arg(long, value_name = "DIR")]
    pub regressions: Option<PathBuf>,
    /// `text`: the sweep's summary; `json`: every seed line in seed order, then the merged
    /// summary line.
    #[arg(long, value_enum, default_value_t = Format::Text)]
    pub format: Format,
}

/// Bits for the seeds of a range: which ones were seen.
struct SeenSeeds {
    start: u64,
    bits: Vec<u64>,
    count: u64,
}

impl SeenSeeds {
    fn new(range: &std::ops::Range<u64>) -> Self {
        let len = range.end - range.start;
        Self {
            start: range.start,
            bits: vec![0; len.div_ceil(64) as usize],
            count: 0,
        }
    }

    /// False if the seed was seen before.
    fn insert(&mut self, seed: u64) -> bool {
        let k = seed - self.start;
        let (w, b) = ((k / 64) as usize, k % 64);
        let fresh = self.bits[w] & (1 << b) == 0;
        self.bits[w] |= 1 << b;
        self.count += u64::from(fresh);
        fresh
    }

    fn missing(&self, range: &std::ops::Range<u64>, max: usize) -> Vec<u64> {
        range
            .clone()
            .filter(|&s| {
                let k = s - self.start;
                self.bits[(k / 64) as usize] & (1 << (k % 64)) == 0
            })
            .take(max)
            .collect()
    }
}

/// One input line, located for error messages.
struct Line {
    at: String,
    value: serde_json::Value,
}

fn read_lines(inputs: &[PathBuf]) -> Result<Vec<Line>, UsageError> {
    let mut out = Vec::new();
    let mut read = |name: String, r: &mut dyn BufRead| -> Result<(), UsageError> {
        for (i, l) in r.lines().enumerate() {
            let l = l.map_err(|e| UsageError(format!("{name}: {e}")))?;
            if l.trim().is_empty() {
                continue;
            }
            let value = serde_json::from_str(&l).map_err(|e| {
                UsageError(format!(
                    "{name}:{}: not a JSON line of `popsim sweep --format json`: {e}",
                    i + 1
                ))
            })?;
            out.push(Line {
                at: format!("{name}:{}", i + 1),
                value,
            });
        }
        Ok(())
    };
    let stdin_only = inputs.is_empty() || inputs.iter().all(|p| p.as_os_str() == "-");
    if stdin_only {
        read("<stdin>".into(), &mut std::io::stdin().lock())?;
    } else {
        for p in inputs {
            if p.as_os_str() == "-" {
                read("<stdin>".into(), &mut std::io::stdin().lock())?;
                continue;
            }
            let f =
                std::fs::File::open(p).map_err(|e| UsageError(format!("{}: {e}", p.display())))?;
            read(p.display().to_string(), &mut std::io::BufReader::new(f))?;
        }
    }
    Ok(out)
}

/// The shards' common header, checked: one sweep, every shard once.
fn check_shards(summaries: &[(String, SweepHeader)]) -> Result<SweepHeader, UsageError> {
    let Some((first_at, first)) = summaries.first() else {
        return Err(UsageError(
            "merge: no summary line in the input; give the complete output of every `popsim sweep … --shard I/N --format json`".into(),
        ));
    };
    let same = |h: &SweepHeader| SweepHeader {
        shard: None,
        ..h.clone()
    };
    for (at, h) in summaries {
        if same(h) != same(first) {
            return Err(UsageError(format!(
                "merge: {at} is another sweep than {first_at} (scenario, seeds, switches and determinism check must agree): `{}` --seeds {}{} vs `{}` --seeds {}{}",
                h.source, h.seeds, h.switches, first.source, first.seeds, first.switches
            )));
        }
    }
    let mut n_of: Option<u64> = None;
    let mut seen: std::collections::BTreeMap<u64, &str> = std::collections::BTreeMap::new();
    for (at, h) in summaries {
        let Some(text) = &h.shard else {
            if summaries.len() > 1 {
                return Err(UsageError(format!(
                    "merge: overlapping input: {at} is an unsharded sweep of every seed, and there are {} summaries",
                    summaries.len()
                )));
            }
            return Ok(same(h));
        };
        let (i, n) = parse_shard(text).map_err(|e| UsageError(format!("{at}: {}", e.0)))?;
        if let Some(m) = n_of.filter(|m| *m != n) {
            return Err(UsageError(format!(
                "merge: {at} is shard {i}/{n}, but another input splits the seeds in {m}"
            )));
        }
        n_of = Some(n);
        if let Some(other) = seen.insert(i, at) {
            return Err(UsageError(format!(
                "merge: overlapping shards: shard {i}/{n} appears twice ({other} and {at})"
            )));
        }
    }
    let n = n_of.unwrap_or(1);
    let missing: Vec<String> = (1..=n)
        .filter(|i| !seen.contains_key(i))
        .map(|i| format!("{i}/{n}"))
        .collect();
    if !missing.is_empty() {
        return Err(UsageError(format!(
            "merge: missing shards: {} (of {n}); run them and merge every shard's output",
            missing.join(", ")
        )));
    }
    Ok(same(first))
}

pub(super) fn cmd_merge(a: &MergeArgs, layout: Layout) -> CmdResult {
    let lines = read_lines(&a.inputs)?;
    let mut summaries: Vec<(String, SweepHeader)> = Vec::new();
    let mut wall_s = 0.0;
    for l in &lines {
        match l.value.get("type").and_then(|t| t.as_str()) {
            Some("summary") => {
                let v = l.value.get("schema_version").and_then(|v| v.as_u64());
                if v != Some(u64::from(reports::SCHEMA_VERSION)) {
                    return Err(UsageError(format!(
                        "{}: schema_version {} is not {} (merge shards of the same popsim version)",
                        l.at,
                        v.map_or("missing".to_owned(), |v| v.to_string()),
                        reports::SCHEMA_VERSION
                    )));
                }
                let h: SweepHeader = serde_json::from_value(l.value.clone())
                    .map_err(|e| UsageError(format!("{}: summary line: {e}", l.at)))?;
                wall_s += l
                    .value
                    .get("wall_s")
                    .and_then(|w| w.as_f64())
                    .unwrap_or(0.0);
                summaries.push((l.at.clone(), h));
            }
            Some("seed") => {}
            _ => {
                return Err(UsageError(format!(
                    "{}: neither a `seed` nor a `summary` line",
                    l.at
                )))
            }
        }
    }
    let header = check_shards(&summaries)?;
    let range = parse_seed_range(&header.seeds)?;
    let mut seen = SeenSeeds::new(&range);
    let mut state = SweepState::new(&header.scenario, header.bugs.clone());
    let mut records: Vec<SeedRecord> = Vec::new();
    for l in lines.iter().filter(|l| l.value["type"] == "seed") {
        if l.value["scenario"] != header.scenario.as_str() {
            return Err(UsageError(format!(
                "{}: a seed of scenario {}, not {}",
                l.at, l.value["scenario"], header.scenario
            )));
        }
        let r: SeedRecord = serde_json::from_value(l.value.clone())
            .map_err(|e| UsageError(format!("{}: seed line: {e}", l.at)))?;
        if !range.contains(&r.seed) {
            return Err(UsageError(format!(
                "{}: seed {} is outside --seeds {}",
                l.at, r.seed, header.seeds
            )));
        }
        if !seen.insert(r.seed) {
            return Err(UsageError(format!(
                "{}: overlapping input: seed {} appears more than once",
                l.at, r.seed
            )));
        }
        state.add(&r);
        if a.format == Format::Json {
            records.push(r);
        }
    }
    let total = range.end - range.start;
    if seen.count != total {
        let missing = seen.missing(&range, 5);
        return Err(UsageError(format!(
            "merge: missing seeds: {} of {total} have no line (first: {}); a shard's output is incomplete",
            total - seen.count,
            missing
                .iter()
                .map(u64::to_string)
                .collect::<Vec<_>>()
                .join(", ")
        )));
    }
    if a.format == Format::Json {
        records.sort_unstable_by_key(|r| r.seed);
        let mut out = std::io::stdout().lock();
        for r in &records {
            let _ = writeln!(out, "{}", seed_line(&header.scenario, r));
        }
    }
    let how = Recording {
        no_record: a.no_record,
        regressions: a.regressions.as_deref(),
    };
    Ok(finish(&header, &state, wall_s, a.format, layout, &how))
}
