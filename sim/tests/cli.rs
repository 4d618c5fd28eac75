//! The popsim binary: help, exit codes and error messages.

use std::process::{Command, Output};

/// The workspace root, where CI runs popsim (its scenarios/regressions is found there).
fn root() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn popsim(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_popsim"))
        .args(args)
        .current_dir(root())
        .env_remove("MADSIM_TEST_SEED")
        .output()
        .expect("popsim runs")
}

fn text(o: &Output) -> (String, String) {
    (
        String::from_utf8_lossy(&o.stdout).into_owned(),
        String::from_utf8_lossy(&o.stderr).into_owned(),
    )
}

#[test]
fn help_lists_the_commands_and_exit_codes() {
    let o = popsim(&["--help"]);
    assert_eq!(o.status.code(), Some(0));
    let (out, _) = text(&o);
    for cmd in ["list", "run", "verify", "sweep", "matrix"] {
        assert!(out.contains(&format!("  {cmd} ")), "{cmd} in\n{out}");
    }
    assert!(
        out.contains("0 every invariant held, 1 an invariant was violated"),
        "{out}"
    );
    let o = popsim(&["run", "--help"]);
    let (out, _) = text(&o);
    for flag in [
        "--seed",
        "--bug",
        "--release",
        "--format",
        "--check-determinism",
        "MADSIM_TEST_SEED",
    ] {
        assert!(out.contains(flag), "{flag} in\n{out}");
    }
    let o = popsim(&["sweep", "--help"]);
    let (out, _) = text(&o);
    for flag in ["--seeds", "--jobs", "--shard", "A..B", "I/N"] {
        assert!(out.contains(flag), "{flag} in\n{out}");
    }
}

#[test]
fn list_names_scenarios_behaviours_and_releases() {
    let o = popsim(&["list"]);
    assert_eq!(o.status.code(), Some(0));
    let (out, _) = text(&o);
    for s in [
        "late-ack-after-ck-flush",
        "buffered-ack-missing-broker-name",
        "#8835",
        "#8836",
        "5.3.1",
        "latest",
    ] {
        assert!(out.contains(s), "{s} in\n{out}");
    }
    for b in broker_core::Behaviour::ALL {
        assert_eq!(
            out.matches(&format!("  {} ", b.name())).count(),
            1,
            "{b} listed once"
        );
    }
}

#[test]
fn usage_errors_exit_2_and_name_the_valid_choices() {
    let cases: &[(&[&str], &[&str])] = &[
        (
            &["run", "no-such-scenario"],
            &["no-such-scenario", "late-ack-after-ck-flush"],
        ),
        (
            &["run", "late-ack-after-ck-flush", "--bug", "deliver-twice"],
            &["deliver-twice", "buffered-ack-missing-broker-name"],
        ),
        (
            &["run", "late-ack-after-ck-flush", "--release", "5.4.0"],
            &["5.4.0", "5.3.2", "latest"],
        ),
        (
            &["run", "late-ack-after-ck-flush", "--seed", "x"],
            &["--seed"],
        ),
        (&["run", "missing-file.toml"], &["missing-file.toml"]),
        (
            &["sweep", "late-ack-after-ck-flush", "--seeds", "10"],
            &["malformed seed range `10`", "A..B"],
        ),
        (
            &["sweep", "late-ack-after-ck-flush", "--seeds", "5..2"],
            &["the range is empty"],
        ),
        (
            &[
                "sweep",
                "late-ack-after-ck-flush",
                "--seeds",
                "0..4",
                "--shard",
                "3/2",
            ],
            &["malformed shard `3/2`", "I/N"],
        ),
        (
            &[
                "sweep",
                "late-ack-after-ck-flush",
                "--seeds",
                "0..4",
                "--jobs",
                "0",
            ],
            &["--jobs"],
        ),
        (&["verify", "no-such-scenario"], &["no-such-scenario"]),
        (&["matrix", "no-such-scenario"], &["no-such-scenario"]),
        (&["frobnicate"], &["frobnicate"]),
    ];
    for (args, needles) in cases {
        let o = popsim(args);
        let (out, err) = text(&o);
        assert_eq!(
            o.status.code(),
            Some(2),
            "{args:?}: stdout {out} stderr {err}"
        );
        for n in *needles {
            assert!(err.contains(n), "{args:?}: `{n}` in\n{err}");
        }
    }
}

#[test]
fn a_malformed_madsim_test_seed_is_a_usage_error() {
    let o = Command::new(env!("CARGO_BIN_EXE_popsim"))
        .args(["run", "late-ack-after-ck-flush"])
        .env("MADSIM_TEST_SEED", "soon")
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("MADSIM_TEST_SEED=`soon`"));
}

/// Bug (c) replayed on a pinned seed: parameters first, the report, exit 1 and a reproduce
/// line with the same arguments.
#[test]
fn run_reports_a_violation_with_a_reproduce_line() {
    let args = [
        "run",
        "late-ack-after-ck-flush",
        "--bug",
        "buffered-ack-missing-broker-name",
        "--bug",
        "revive-no-blank-broker-name-fallback",
        "--seed",
        "1",
    ];
    let o = popsim(&args);
    let (out, err) = text(&o);
    assert_eq!(o.status.code(), Some(1), "{out}\n{err}");
    assert!(
        out.starts_with("scenario:   late-ack-after-ck-flush"),
        "{out}"
    );
    assert!(out.contains("seed:       1 (from --seed)"));
    assert!(out.contains("VIOLATED no-redelivery-after-ack"), "{out}");
    assert!(out.contains(
        "reproduce: popsim run late-ack-after-ck-flush --bug buffered-ack-missing-broker-name --bug revive-no-blank-broker-name-fallback --seed 1"
    ));
    assert!(!out.contains("determinism:"));
}

/// A user-written file whose checked invariant holds: exit 0, no reproduce line; with the
/// determinism check, both runs agree.
#[test]
fn run_a_scenario_file_that_holds() {
    let path = std::env::temp_dir().join(format!("popsim-cli-{}.toml", std::process::id()));
    std::fs::write(&path, HOLDS).unwrap();
    let o = popsim(&[
        "run",
        path.to_str().unwrap(),
        "--seed",
        "3",
        "--check-determinism",
    ]);
    let _ = std::fs::remove_file(&path);
    let (out, err) = text(&o);
    assert_eq!(o.status.code(), Some(0), "{out}\n{err}");
    assert!(out.contains("held     no-redelivery-after-ack"), "{out}");
    assert!(out.contains("determinism: ok"), "{out}");
    assert!(!out.contains("reproduce:"));
}

/// `--trace` shows the gRPC FIFO consumer's hop through the proxy and the broker parking
/// and waking its pops; the header names the proxy node and what its settings replace.
#[test]
fn the_trace_shows_the_proxy_hop_and_long_polling() {
    let o = popsim(&[
        "run",
        "orderly-reset-replay",
        "--seed",
        "1",
        "--trace",
        "--bug",
        "reset-commits-pull-offset",
        "--bug",
        "kv-fifo-reads-pull-offset",
    ]);
    let (out, err) = text(&o);
    assert_eq!(o.status.code(), Some(1), "{out}\n{err}");
    assert!(
        out.contains("nodes:      broker, proxy (gRPC proxy)"),
        "{out}"
    );
    assert!(
        out.contains("proxy:      grpcClientConsumerLongPollingBatchSize=4"),
        "{out}"
    );
    assert!(
        out.contains(
            "replaced:   c1: max_reconsume_times -1 is the group's retryMaxTimes; maxAttempts 17"
        ),
        "{out}"
    );
    for needle in [
        " proxy] pop of orders@g-orderly every queue for c1: SUCCESS, 4 found, attemptId c1-q",
        " c1] c1 (g-orderly) ReceiveMessage via the proxy: OK (OK), 4 message(s)",
        " proxy] c1 (g-orderly) sent ack of p1-0 ",
        " c1] c1 (g-orderly) AckMessage of p1-0 via the proxy: OK (OK)",
        " broker] pop #",
        "found nothing: parked until ",
        "woken (timeout): runs again",
    ] {
        assert!(out.contains(needle), "{needle:?} not in the trace:\n{out}");
    }
}

/// A remoting push consumer's invisible time outside [5 s, 300 s] is replaced, and the
/// header says so.
#[test]
fn the_header_says_which_values_a_client_replaces() {
    let src = HOLDS.replace(
        "kind = \"scripted\"",
        "kind = \"concurrent\"\npop_invisible_time_ms = 3_000",
    )
    .replace("[[steps]]\nat_ms = 1_000\naction = \"pop\"\nconsumer = \"c1\"\n\n[[steps]]\nat_ms = 2_000\naction = \"ack\"\nconsumer = \"c1\"\n", "");
    let path =
        std::env::temp_dir().join(format!("popsim-cli-replaced-{}.toml", std::process::id()));
    std::fs::write(&path, src).unwrap();
    let o = popsim(&["run", path.to_str().unwrap(), "--seed", "1", "--wide"]);
    let _ = std::fs::remove_file(&path);
    let (out, err) = text(&o);
    assert_eq!(o.status.code(), Some(0), "{out}\n{err}");
    assert!(
        out.contains("replaced:   c1: pop_invisible_time_ms 3000 is outside [5000, 300000]; the push consumer pops with 60000 ms (DefaultMQPushConsumerImpl.popMessage)"),
        "{out}"
    );
}

const HOLDS: &str = r#"
name = "holds"
duration_ms = 10_000
quiet_period_ms = 1_000

[[topics]]
name = "t"

[[groups]]
name = "g"

[[producers]]
name = "p1"
topic = "t"
messages = 3

[[consumers]]
name = "c1"
kind = "scripted"
group = "g"
topic = "t"
init_mode = "min"

[[steps]]
at_ms = 1_000
action = "pop"
consumer = "c1"

[[steps]]
at_ms = 2_000
action = "ack"
consumer = "c1"

[expect]
invariants = ["no-redelivery-after-ack"]
"#;

#[test]
fn json_run_is_one_document() {
    let o = popsim(&[
        "run",
        "late-ack-after-ck-flush",
        "--seed",
        "2",
        "--format",
        "json",
    ]);
    let (out, err) = text(&o);
    let doc: serde_json::Value =
        serde_json::from_str(&out).unwrap_or_else(|e| panic!("{e}: {out}\n{err}"));
    assert_eq!(doc["parameters"]["seed"], 2);
    assert_eq!(doc["report"]["seed"], 2);
    assert_eq!(doc["report"]["scenario"], "late-ack-after-ck-flush");
    assert!(doc["report"]["invariants"]
        .as_array()
        .is_some_and(|r| !r.is_empty()));
}

#[test]
fn markdown_run_is_an_issue_snippet() {
    let o = popsim(&[
        "run",
        "late-ack-after-ck-flush",
        "--seed",
        "2",
        "--format",
        "markdown",
    ]);
    let (out, _) = text(&o);
    assert!(
        out.starts_with("### popsim: `late-ack-after-ck-flush` seed 2"),
        "{out}"
    );
    assert!(
        !out.contains("scenario:   "),
        "no parameter block in markdown"
    );
}

#[test]
fn sweep_json_lines_and_sharding() {
    let o = popsim(&[
        "sweep",
        "late-ack-after-ck-flush",
        "--seeds",
        "0..=5",
        "--shard",
        "2/3",
        "--format",
        "json",
        "--jobs",
        "2",
    ]);
    let (out, err) = text(&o);
    let lines: Vec<serde_json::Value> = out
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let seeds: Vec<u64> = lines
        .iter()
        .filter(|l| l["type"] == "seed")
        .map(|l| l["seed"].as_u64().unwrap())
        .collect();
    assert_eq!(seeds, vec![1, 4], "{err}");
    let summary = lines.last().unwrap();
    assert_eq!(summary["type"], "summary");
    assert_eq!(summary["summary"]["runs"], 2);
    assert_eq!(summary["shard"], "2/3");
}

/// The main job on one scenario: every row matches, exit 0.
#[test]
fn verify_one_scenario() {
    let o = popsim(&["verify", "invisible-time-overrun", "--jobs", "2"]);
    let (out, err) = text(&o);
    assert_eq!(o.status.code(), Some(0), "{out}\n{err}");
    assert!(
        out.contains("bug: pop-timeout-skips-max-reconsume"),
        "{out}"
    );
    assert!(out.contains("violated bounded-deliveries"), "{out}");
    assert!(out.trim_end().ends_with("rows, all match"), "{out}");
    let o = popsim(&["verify", "invisible-time-overrun", "--format", "json"]);
    let doc: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(doc["ok"], true);
    assert_eq!(
        doc["rows"].as_array().map(Vec::len),
        Some(6),
        "3 seeds, bug and fixed"
    );
}

/// Bug (c) shipped only in 5.3.1: the matrix shows it there and nowhere else.
#[test]
fn matrix_shows_which_release_breaks_what() {
    let o = popsim(&["matrix", "late-ack-after-ck-flush", "--format", "json"]);
    assert_eq!(o.status.code(), Some(1), "a release breaks an invariant");
    let doc: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let row = &doc["rows"][0]["violated"];
    assert_eq!(row["5.3.1"], serde_json::json!(["no-redelivery-after-ack"]));
    for r in ["5.3.0", "5.3.2", "5.3.3", "latest"] {
        assert_eq!(row[r], serde_json::json!([]), "{r}");
    }
}

#[test]
fn a_random_variant_prints_the_parameters_it_runs_with() {
    let o = popsim(&["run", "late-ack-random", "--seed", "20"]);
    let (out, _) = text(&o);
    // The header shows this seed's draw, not the file's `[faults]` defaults…
    let line = |p: &str| out.lines().find(|l| l.starts_with(p)).unwrap_or_default();
    assert!(
        line("network:").contains("latency 1..6 ms, loss 0.0087"),
        "{out}"
    );
    assert!(line("faults:").contains("crashes every 57302 ms"), "{out}");
    assert!(
        out.contains("  faults.latency_ms                  = 1..6"),
        "{out}"
    );
    // …and the behaviours that are on, the scenario's baseline included.
    assert!(
        out.contains("behaviours: revive-no-blank-broker-name-fallback\n"),
        "{out}"
    );
}

/// A fresh empty directory under the system's temporary directory.
fn scratch(name: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("popsim-cli-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn popsim_in(dir: &std::path::Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_popsim"))
        .args(args)
        .current_dir(dir)
        .env_remove("MADSIM_TEST_SEED")
        .env_remove("COLUMNS")
        .output()
        .expect("popsim runs")
}

/// By default verify's table fits 120 columns (output is not a terminal here), verdict
/// first; `--wide` prints today's full table.
#[test]
fn verify_fits_120_columns_unless_wide() {
    let o = popsim(&["verify", "orderly-reset-replay", "late-ack-after-ck-flush"]);
    let (out, err) = text(&o);
    assert_eq!(o.status.code(), Some(0), "{out}\n{err}");
    assert!(out.starts_with("verdict "), "{out}");
    let widest = out.lines().map(|l| l.chars().count()).max().unwrap();
    assert!(widest <= 120, "{widest} columns:\n{out}");
    let o = popsim(&["verify", "orderly-reset-replay", "--wide"]);
    let (out, _) = text(&o);
    assert!(out.starts_with("scenario "), "{out}");
    assert!(out.lines().map(|l| l.chars().count()).max().unwrap() > 120);
}

/// A row that violates more than it declares is a mismatch, with what else it violated and
/// how to replay it.
#[test]
fn verify_is_strict_about_extra_violations() {
    let dir = scratch("strict");
    let src = scenarios::builtin_source("mixed-workload").unwrap();
    // mixed-workload holds when fixed; declare a bug row that names a different invariant
    // than the one the bug breaks.
    let file = dir.join("strict.toml");
    let src = src.replace(
        "name = \"mixed-workload\"",
        "name = \"strict\"\nreplays = [\"buffered-ack-missing-broker-name\", \"revive-no-blank-broker-name-fallback\"]",
    );
    std::fs::write(
        &file,
        format!(
            "{src}\n[[expect.rows]]\nbugs = [\"buffered-ack-missing-broker-name\", \"revive-no-blank-broker-name-fallback\"]\nviolates = [\"no-loss\"]\n"
        ),
    )
    .unwrap();
    let o = popsim_in(&dir, &["verify", "strict.toml", "--format", "json"]);
    let (out, err) = text(&o);
    assert_eq!(o.status.code(), Some(1), "{out}\n{err}");
    let doc: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(doc["schema_version"], 2);
    let bug = doc["rows"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["variant"].as_str().unwrap().starts_with("bug:"))
        .unwrap();
    assert_eq!(bug["match"], false);
    assert_eq!(
        bug["unexpected"],
        serde_json::json!(["no-redelivery-after-ack"])
    );
    assert_eq!(bug["missing"], serde_json::json!(["no-loss"]));
    assert!(bug["reproduce"]
        .as_str()
        .unwrap()
        .starts_with("popsim run strict.toml --bug "));
    assert!(
        err.contains("regressions: none replayed"),
        "no scenarios/regressions here: {err}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

/// Every violated cell names a failing seed and its reproduce line; the masked 5.3.0 cell
/// says why.
#[test]
fn matrix_cells_carry_seeds_and_masks() {
    let o = popsim(&["matrix", "late-ack-after-ck-flush", "--format", "json"]);
    let doc: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let cells = &doc["rows"][0]["cells"];
    let f = &cells["5.3.1"]["failures"][0];
    assert_eq!(f["invariant"], "no-redelivery-after-ack");
    assert_eq!(
        f["reproduce"],
        format!(
            "popsim run late-ack-after-ck-flush --release 5.3.1 --seed {}",
            f["seed"]
        )
    );
    let masked = cells["5.3.0"]["masked"].as_str().unwrap();
    assert!(
        masked.contains("revive-merge-key-without-broker-name"),
        "{masked}"
    );
    for rel in ["5.3.2", "5.3.3", "latest"] {
        assert!(cells[rel]["masked"].is_null(), "{rel}");
    }
    let o = popsim(&["matrix", "late-ack-after-ck-flush"]);
    let (out, _) = text(&o);
    assert!(out.contains("reproduce: popsim run late-ack-after-ck-flush --release 5.3.1 --seed"));
    assert!(out.contains("on 5.3.0: masked: "), "{out}");
}

const SWEEP: [&str; 6] = [
    "sweep",
    "late-ack-random",
    "--seeds",
    "0..24",
    "--bug",
    "buffered-ack-missing-broker-name",
];

/// Without `scenarios/regressions` in the current directory a sweep writes nothing and
/// says so; with one it appends there and says where.
#[test]
fn sweep_records_regressions_only_in_the_current_directory() {
    let dir = scratch("record");
    let o = popsim_in(&dir, &[&SWEEP[..], &["--jobs", "2"]].concat());
    let (out, err) = text(&o);
    assert_eq!(o.status.code(), Some(1), "{out}\n{err}");
    assert!(
        err.contains(
            "regressions: not recorded: no scenarios/regressions in the current directory"
        ),
        "{err}"
    );
    assert_eq!(std::fs::read_dir(&dir).unwrap().count(), 0, "wrote nothing");
    assert!(out.contains("% of runs)"), "failure rate: {out}");
    assert!(
        out.contains("failures by invariant and witness shape"),
        "{out}"
    );
    std::fs::create_dir_all(dir.join("scenarios/regressions")).unwrap();
    let o = popsim_in(&dir, &[&SWEEP[..], &["--jobs", "2"]].concat());
    let (_, err) = text(&o);
    assert!(
        err.contains("regressions: recorded 3 new failing seed(s) in scenarios/regressions/late-ack-random.txt"),
        "{err}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

/// Four shards merged print what the unsharded sweep prints (timing aside), with the same
/// exit code and regressions lines; a missing or repeated shard is exit 2.
#[test]
fn merge_of_shards_equals_the_unsharded_sweep() {
    let dir = scratch("merge");
    std::fs::create_dir_all(dir.join("a/scenarios/regressions")).unwrap();
    std::fs::create_dir_all(dir.join("b/scenarios/regressions")).unwrap();
    let whole = popsim_in(&dir.join("a"), &[&SWEEP[..], &["--jobs", "2"]].concat());
    let mut files = Vec::new();
    for i in 1..=4 {
        let shard = format!("{i}/4");
        let o = popsim_in(
            &dir,
            &[
                &SWEEP[..],
                &["--jobs", "1", "--shard", &shard, "--format", "json"],
            ]
            .concat(),
        );
        let f = dir.join(format!("s{i}.jsonl"));
        std::fs::write(&f, &o.stdout).unwrap();
        files.push(f.display().to_string());
    }
    let args: Vec<&str> = std::iter::once("merge")
        .chain(files.iter().rev().map(String::as_str))
        .collect();
    let merged = popsim_in(&dir.join("b"), &args);
    let strip = |o: &Output| {
        let (out, err) = text(o);
        let out: Vec<String> = out
            .lines()
            .filter(|l| !l.starts_with("time: "))
            .map(str::to_owned)
            .collect();
        (out, err)
    };
    assert_eq!(strip(&merged), strip(&whole));
    assert_eq!(merged.status.code(), whole.status.code());
    assert_eq!(
        std::fs::read_to_string(dir.join("a/scenarios/regressions/late-ack-random.txt")).unwrap(),
        std::fs::read_to_string(dir.join("b/scenarios/regressions/late-ack-random.txt")).unwrap()
    );
    // JSON: every seed line in seed order and the summary line, as the unsharded sweep.
    let json_whole = popsim_in(
        &dir,
        &[
            &SWEEP[..],
            &["--jobs", "2", "--no-record", "--format", "json"],
        ]
        .concat(),
    );
    let json_args: Vec<&str> = ["merge", "--no-record", "--format", "json"]
        .into_iter()
        .chain(files.iter().map(String::as_str))
        .collect();
    let json_merged = popsim_in(&dir, &json_args);
    let untimed = |o: &Output| -> Vec<serde_json::Value> {
        text(o)
            .0
            .lines()
            .map(|l| {
                let mut v: serde_json::Value = serde_json::from_str(l).unwrap();
                v.as_object_mut().unwrap().remove("wall_s");
                v
            })
            .collect()
    };
    assert_eq!(untimed(&json_merged), untimed(&json_whole));
    let missing = popsim_in(&dir, &["merge", &files[0], &files[1], &files[3]]);
    assert_eq!(missing.status.code(), Some(2));
    assert!(
        text(&missing).1.contains("missing shards: 3/4"),
        "{:?}",
        text(&missing)
    );
    let twice = popsim_in(
        &dir,
        &[
            "merge", &files[0], &files[1], &files[1], &files[2], &files[3],
        ],
    );
    assert_eq!(twice.status.code(), Some(2));
    assert!(
        text(&twice).1.contains("overlapping shards"),
        "{:?}",
        text(&twice)
    );
    // A shard cut short: its seeds are missing.
    let short = dir.join("short.jsonl");
    let s2 = std::fs::read_to_string(&files[1]).unwrap();
    let cut: Vec<&str> = s2.lines().skip(1).collect();
    std::fs::write(&short, cut.join("\n")).unwrap();
    let o = popsim_in(
        &dir,
        &[
            "merge",
            &files[0],
            short.to_str().unwrap(),
            &files[2],
            &files[3],
        ],
    );
    assert_eq!(o.status.code(), Some(2));
    assert!(
        text(&o).1.contains("missing seeds: 1 of 24"),
        "{:?}",
        text(&o)
    );
    let _ = std::fs::remove_dir_all(&dir);
}

/// The shipped recipe, deploy/sweep-parallel.sh: GNU parallel runs the shards (as local
/// jobs, and through `--sshlogin`, here the local login `:`), merge adds them up. Skipped
/// when `parallel` is missing, unless POPSIM_REQUIRE_PARALLEL is set (CI sets it).
#[test]
fn a_four_shard_sweep_through_gnu_parallel_matches() {
    let has = Command::new("parallel")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    if !has {
        assert!(
            std::env::var_os("POPSIM_REQUIRE_PARALLEL").is_none(),
            "POPSIM_REQUIRE_PARALLEL is set but GNU parallel is not installed"
        );
        eprintln!("skipped: GNU parallel is not installed (apt-get install parallel)");
        return;
    }
    let dir = scratch("parallel");
    let script = root().join("deploy/sweep-parallel.sh");
    let whole = popsim_in(
        &dir,
        &[&SWEEP[..], &["--jobs", "2", "--no-record"]].concat(),
    );
    let body = |o: &Output| -> Vec<String> {
        text(o)
            .0
            .lines()
            .filter(|l| !l.starts_with("time: "))
            .map(str::to_owned)
            .collect()
    };
    for opts in ["--jobs 2", "--sshlogin 2/:"] {
        let merged = Command::new("bash")
            .arg(&script)
            .arg("4")
            .args(&SWEEP[1..])
            .args(["--jobs", "1"])
            .current_dir(&dir)
            .env("POPSIM", env!("CARGO_BIN_EXE_popsim"))
            .env("PARALLEL_OPTS", opts)
            .env("MERGE_OPTS", "--no-record")
            .output()
            .unwrap();
        assert_eq!(body(&merged), body(&whole), "{opts}: {}", text(&merged).1);
        assert_eq!(merged.status.code(), whole.status.code(), "{opts}");
    }
    let _ = std::fs::remove_dir_all(&dir);
}

/// `reset-offset` with `queue = -1` loads, with a located warning on stderr.
#[test]
fn a_reset_of_every_queue_warns_that_its_offset_is_ignored() {
    let dir = scratch("warn");
    let src = scenarios::builtin_source("reset-before-first-subscribe").unwrap();
    let warned = src.replacen("queue = 0\n", "queue = -1\n", 1);
    assert_ne!(warned, src);
    std::fs::write(dir.join("w.toml"), &warned).unwrap();
    let o = popsim_in(&dir, &["run", "w.toml", "--seed", "1"]);
    let (_, err) = text(&o);
    let line = err
        .lines()
        .find(|l| l.contains("warning:"))
        .unwrap_or_default();
    assert!(line.starts_with("w.toml:"), "{err}");
    assert!(
        line.contains(".offset: warning: ignored: with `queue = -1`"),
        "{err}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

/// Scripted packet loss shows in the run header's faults line.
#[test]
fn the_run_header_shows_scripted_loss() {
    let o = popsim(&["run", "offset-update-under-loss", "--seed", "1", "--wide"]);
    let (out, _) = text(&o);
    let faults = out
        .lines()
        .find(|l| l.starts_with("faults:"))
        .unwrap_or_default();
    assert!(
        faults.contains("scripted loss 0.4 from 9000 ms, loss 0 from 22000 ms"),
        "{out}"
    );
}

/// Run reports (header included), sweeps and the matrix fit 120 columns by default; only
/// `reproduce:` lines, commands to copy whole, may be longer.
#[test]
fn run_sweep_and_matrix_fit_120_columns() {
    let cases: [&[&str]; 5] = [
        &[
            "run",
            "orderly-reset-replay",
            "--seed",
            "1",
            "--bug",
            "reset-commits-pull-offset",
            "--bug",
            "kv-fifo-reads-pull-offset",
        ],
        &["run", "develop-random", "--seed", "3"],
        &["run", "late-ack-random", "--seed", "20"],
        &[&SWEEP[..], &["--jobs", "2", "--no-record"]].concat(),
        &[
            "matrix",
            "late-ack-after-ck-flush",
            "offset-update-under-loss",
            "kv-reset-lock-inversion",
        ],
    ];
    for args in cases {
        let o = popsim(args);
        let (out, err) = text(&o);
        assert!(!out.is_empty(), "{args:?}: {err}");
        for l in out.lines() {
            if l.trim_start().starts_with("reproduce: ") {
                continue;
            }
            assert!(
                l.chars().count() <= 120,
                "{args:?}: {} columns: {l}",
                l.chars().count()
            );
        }
    }
    let o = popsim(&["run", "develop-random", "--seed", "3"]);
    let (out, _) = text(&o);
    assert!(out.contains("  n/a      "), "n/a invariants folded: {out}");
}
