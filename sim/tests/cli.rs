//! The popsim binary: help, exit codes and error messages.

use std::process::{Command, Output};

fn popsim(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_popsim"))
        .args(args)
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
    let o = popsim(&["run", path.to_str().unwrap(), "--seed", "1"]);
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
    let network = out
        .lines()
        .find(|l| l.starts_with("network:"))
        .unwrap_or_default();
    assert!(network.contains("latency 1..6 ms, loss 0.0087"), "{out}");
    assert!(network.contains("crashes every 57302 ms"), "{out}");
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
