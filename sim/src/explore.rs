//! Swarm exploration around the runner: a `[swarm]` scenario's baseline behaviours, the
//! resolved draw printed before a run (TigerBeetle VOPR prints every swarm parameter at the
//! start), and the committed regressions files (proptest's failure persistence): `popsim
//! sweep` appends the seeds it finds failing, `popsim verify` and the tests replay them.

use crate::runner::RunOptions;
use broker_core::{Behaviour, Behaviours, Fix};
use scenarios::Scenario;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

/// `opts` with the scenario's `[swarm] baseline` behaviours switched on as well.
pub fn with_baseline(opts: &RunOptions, sc: &Scenario) -> RunOptions {
    let mut out = opts.clone();
    for b in baseline(sc).iter() {
        out.behaviours.insert(b);
    }
    out
}

/// The scenario's baseline behaviours (validated at load time).
pub fn baseline(sc: &Scenario) -> Behaviours {
    sc.swarm
        .iter()
        .flat_map(|s| s.baseline.iter())
        .filter_map(|b| b.parse::<Behaviour>().ok())
        .collect()
}

/// A `[swarm]` scenario with ranges: a random variant.
pub fn is_random_variant(sc: &Scenario) -> bool {
    sc.swarm.as_ref().is_some_and(|s| s.draws_anything())
}

/// The lines `popsim run` prints for the seed's draw: the baseline, every drawn parameter,
/// and the active BUGGIFY sites. Empty for a scenario without `[swarm]`.
pub fn describe_swarm(sc: &Scenario, seed: u64) -> String {
    let Some(sw) = &sc.swarm else {
        return String::new();
    };
    let mut s = String::new();
    if !sw.baseline.is_empty() {
        let _ = writeln!(
            s,
            "baseline:   {} (on in every run of this scenario)",
            sw.baseline.join(", ")
        );
    }
    let (_, drawn) = scenarios::swarm::resolve(sc, seed);
    if !drawn.is_empty() {
        let _ = writeln!(s, "swarm draw (seed {seed}):");
        let w = drawn.iter().map(|d| d.key.len()).max().unwrap_or(0);
        for d in &drawn {
            let _ = writeln!(s, "  {:w$} = {}", d.key, d.value);
        }
    }
    if sw.buggify {
        let active = crate::buggify::active_sites(seed);
        let _ = writeln!(
            s,
            "buggify:    {}",
            if active.is_empty() {
                "on, no site active for this seed".to_owned()
            } else {
                format!("active sites: {}", active.join(", "))
            }
        );
    }
    s
}

/// The `popsim list` section naming every built-in random variant.
pub fn list_random_variants() -> String {
    let mut rows = Vec::new();
    for (name, _) in scenarios::builtins() {
        let Some(sc) = scenarios::builtin(name).filter(is_random_variant) else {
            continue;
        };
        let mut parts = Vec::new();
        if !sc.replays.is_empty() {
            parts.push(format!("--bug {}", sc.replays.join(" --bug ")));
        }
        let base = baseline(&sc);
        if !base.is_empty() {
            let names: Vec<&str> = base.iter().map(|b| b.name()).collect();
            parts.push(format!("baseline {}", names.join(", ")));
        }
        rows.push((name, parts.join("; ")));
    }
    if rows.is_empty() {
        return String::new();
    }
    let mut s = String::from(
        "\nRandom variants (each seed draws its faults and workload from the file's [swarm] ranges):\n",
    );
    let w = rows.iter().map(|(n, _)| n.len()).max().unwrap_or(0);
    for (name, what) in rows {
        let _ = writeln!(s, "  {name:w$}  {what}");
    }
    s
}

// ---------------------------------------------------------------------------------------
// regressions

/// The regressions directory looked for in the current directory.
pub const REGRESSIONS_DIR: &str = "scenarios/regressions";

/// Where `sweep` records and `verify` replays regressions: `--regressions DIR` when given,
/// else `scenarios/regressions` of the current directory when it exists, else nowhere. No
/// path is compiled into the binary, so a prebuilt `popsim` run elsewhere never writes into
/// its source tree.
pub fn regressions_dir(flag: Option<&Path>) -> Option<PathBuf> {
    match flag {
        Some(dir) => Some(dir.to_path_buf()),
        None => {
            let dir = PathBuf::from(REGRESSIONS_DIR);
            dir.is_dir().then_some(dir)
        }
    }
}

/// The regressions file of scenario `name`.
pub fn regressions_file(dir: &Path, name: &str) -> PathBuf {
    dir.join(format!("{name}.txt"))
}

/// One persisted failing seed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Regression {
    pub seed: u64,
    /// Behaviours `--bug` switched on (the scenario's baseline is added by the runner).
    pub bugs: Vec<String>,
    /// Proposed fixes that make the seed hold: the triage of a failure on develop as a
    /// finding (written by hand after the trace, never by a sweep).
    pub fixed_by: Vec<String>,
    /// What failed: invariant names, or `panic`.
    pub violates: Vec<String>,
}

impl Regression {
    /// `seed 17 bugs a,b [fixed-by f] violates x,y`.
    pub fn line(&self) -> String {
        let list = |v: &[String]| {
            if v.is_empty() {
                "none".to_owned()
            } else {
                v.join(",")
            }
        };
        let fixed_by = if self.fixed_by.is_empty() {
            String::new()
        } else {
            format!(" fixed-by {}", self.fixed_by.join(","))
        };
        format!(
            "seed {} bugs {}{fixed_by} violates {}",
            self.seed,
            list(&self.bugs),
            list(&self.violates)
        )
    }

    fn parse(line: &str) -> Result<Self, String> {
        let w: Vec<&str> = line.split_whitespace().collect();
        let list = |s: &str| -> Vec<String> {
            if s == "none" {
                Vec::new()
            } else {
                s.split(',').map(str::to_owned).collect()
            }
        };
        let (seed, bugs, fixed_by, inv) = match w.as_slice() {
            ["seed", seed, "bugs", bugs, "violates", inv] => (seed, bugs, &"none", inv),
            ["seed", seed, "bugs", bugs, "fixed-by", fixes, "violates", inv] => {
                (seed, bugs, fixes, inv)
            }
            _ => {
                return Err(
                    "expected `seed N bugs A,B|none [fixed-by F,G] violates X,Y`".to_owned(),
                )
            }
        };
        let seed = seed
            .parse()
            .map_err(|_| format!("`{seed}` is not a seed"))?;
        let bugs = list(bugs);
        for b in &bugs {
            b.parse::<Behaviour>().map_err(|e| e.to_string())?;
        }
        let fixed_by = list(fixed_by);
        for f in &fixed_by {
            f.parse::<Fix>().map_err(|e| e.to_string())?;
        }
        Ok(Self {
            seed,
            bugs,
            fixed_by,
            violates: list(inv),
        })
    }

    /// The behaviours as a set.
    pub fn behaviours(&self) -> Behaviours {
        self.bugs.iter().filter_map(|b| b.parse().ok()).collect()
    }
}

/// The regressions recorded for `name` (none if the file does not exist). Errors name the
/// file and line.
pub fn load_regressions(dir: &Path, name: &str) -> Result<Vec<Regression>, String> {
    let path = regressions_file(dir, name);
    let text = match std::fs::read_to_string(&path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(format!("{}: {e}", path.display())),
    };
    text.lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty() && !l.trim_start().starts_with('#'))
        .map(|(i, l)| {
            Regression::parse(l).map_err(|e| format!("{}:{}: {e}", path.display(), i + 1))
        })
        .collect()
}

/// At most this many new seeds are recorded per sweep: the first failing ones (in seed
/// order), enough to pin a finding without flooding verify.
pub const MAX_NEW_PER_SWEEP: usize = 3;

/// Appends the regressions not yet recorded (same seed and behaviours), creating the file
/// with its header; returns the lines added.
pub fn append_regressions(
    dir: &Path,
    name: &str,
    found: &[Regression],
) -> std::io::Result<Vec<String>> {
    let old = load_regressions(dir, name).unwrap_or_default();
    let mut new: Vec<&Regression> = Vec::new();
    for r in found {
        let known = |o: &Regression| o.seed == r.seed && o.behaviours() == r.behaviours();
        if !old.iter().any(known) && !new.iter().any(|o| known(o)) {
            new.push(r);
        }
    }
    if new.is_empty() {
        return Ok(Vec::new());
    }
    std::fs::create_dir_all(dir)?;
    let path = regressions_file(dir, name);
    let mut text = std::fs::read_to_string(&path).unwrap_or_else(|_| header(name));
    if !text.ends_with('\n') {
        text.push('\n');
    }
    let lines: Vec<String> = new.iter().map(|r| r.line()).collect();
    for l in &lines {
        text.push_str(l);
        text.push('\n');
    }
    std::fs::write(&path, text)?;
    Ok(lines)
}

fn header(name: &str) -> String {
    format!(
        "# Failing seeds of `{name}` found by `popsim sweep` (appended, deduplicated).\n\
         # `popsim verify` and `cargo test` replay them before the pinned seeds:\n\
         # with `bugs` on, each listed invariant must still be violated; with every fix in\n\
         # (`bugs` off, the scenario's baseline still on) every invariant must hold, so a\n\
         # line with `bugs none` fails verify until the bug it found is fixed, or until its\n\
         # trace shows upstream develop behaviour and `fixed-by F` names the proposed fix:\n\
         # then develop must still violate it and the run with F on must hold.\n\
         # Commit this file.\n"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_round_trip_and_appends_dedupe() {
        let dir = std::env::temp_dir().join(format!("popsim-regr-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let r = Regression {
            seed: 17,
            bugs: vec!["buffered-ack-missing-broker-name".into()],
            fixed_by: Vec::new(),
            violates: vec!["no-redelivery-after-ack".into()],
        };
        assert_eq!(Regression::parse(&r.line()).unwrap(), r);
        let none = Regression {
            seed: 3,
            bugs: Vec::new(),
            fixed_by: Vec::new(),
            violates: vec!["panic".into()],
        };
        assert_eq!(Regression::parse(&none.line()).unwrap(), none);
        let finding = Regression {
            seed: 5,
            bugs: Vec::new(),
            fixed_by: vec!["merge-key-with-separator".into()],
            violates: vec!["no-loss".into()],
        };
        assert_eq!(
            finding.line(),
            "seed 5 bugs none fixed-by merge-key-with-separator violates no-loss"
        );
        assert_eq!(Regression::parse(&finding.line()).unwrap(), finding);
        let added = append_regressions(&dir, "x", &[r.clone(), r.clone(), none.clone()]).unwrap();
        assert_eq!(added.len(), 2);
        assert!(append_regressions(&dir, "x", std::slice::from_ref(&r))
            .unwrap()
            .is_empty());
        assert_eq!(load_regressions(&dir, "x").unwrap(), vec![r, none]);
        std::fs::write(regressions_file(&dir, "y"), "seed x\n").unwrap();
        assert!(load_regressions(&dir, "y").unwrap_err().contains("y.txt:1"));
        let _ = std::fs::remove_dir_all(&dir);
    }
}
