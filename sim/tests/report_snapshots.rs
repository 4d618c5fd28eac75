//! Report snapshots: every built-in scenario at its pinned seeds, once per bug row (its
//! historical behaviours on) and once with every fix in, as the report model (YAML) and the
//! text renderer; plus the Markdown, the JSON (the model's and `popsim run --format json`'s)
//! and one HTML timeline. The snapshots under `tests/snapshots/` are reviewed and
//! committed: a changed report fails here until its new snapshot is reviewed
//! (`cargo insta review`, or `INSTA_UPDATE=always` and a look at the diff). CI never
//! updates them.
//!
//! The timeline is also parsed as XML, and the `--timeline`/`--trace` flags are exercised
//! through the binary.

use reports::{render_json, render_markdown, render_text, render_timeline, RunReport};
use sim::{run_seed, RunOptions, RunOutcome};
use std::process::Command;

fn scenario(name: &str) -> scenarios::Scenario {
    let ctx = scenarios::Context::with_invariants(reports::invariant_names());
    scenarios::resolve(name, &ctx).expect("a built-in scenario")
}

fn opts(bugs: &[String]) -> RunOptions {
    RunOptions {
        behaviours: bugs
            .iter()
            .map(|b| b.parse().expect("a known behaviour"))
            .collect(),
        counts: true,
        ..RunOptions::default()
    }
}

/// The scenario's variants as `popsim verify` runs them: each bug row, then every fix in.
/// A scenario with several bug rows names each by its behaviours.
fn variants(sc: &scenarios::Scenario) -> Vec<(String, Vec<String>)> {
    let rows = sc.bug_rows();
    let mut out: Vec<(String, Vec<String>)> = rows
        .iter()
        .map(|r| {
            let label = if rows.len() == 1 {
                "bug".to_owned()
            } else {
                format!("bug-{}", r.bugs.join("+"))
            };
            (label, r.bugs.clone())
        })
        .collect();
    out.push(("fixed".to_owned(), Vec::new()));
    out
}

fn report(o: &RunOutcome) -> RunReport {
    assert!(o.panic.is_none(), "seed {}: {:?}", o.seed, o.panic);
    let counts = o.counts.clone().expect("the options ask for counts");
    RunReport::new(&o.history, &o.results, counts, o.hash)
}

/// Snapshots one scenario: per variant, the reports of every pinned seed (YAML) and their
/// text renderings (one after the other).
fn snapshot_scenario(name: &str) {
    let sc = scenario(name);
    for (label, bugs) in variants(&sc) {
        let o = opts(&bugs);
        let reports: Vec<RunReport> = sc
            .seeds
            .iter()
            .map(|&seed| report(&run_seed(&sc, seed, &o)))
            .collect();
        let text: String = reports
            .iter()
            .map(render_text)
            .collect::<Vec<_>>()
            .join("\n");
        let snap = format!("{name}__{label}");
        insta::assert_yaml_snapshot!(snap.clone(), reports);
        insta::assert_snapshot!(format!("{snap}__text"), text);
    }
}

/// Every built-in, so a new one cannot go unsnapshotted: its snapshots are missing until
/// reviewed, and CI fails on a missing snapshot.
#[test]
fn every_builtin_scenario_bug_on_and_fixed() {
    let names: Vec<&str> = scenarios::builtins().into_iter().map(|(n, _)| n).collect();
    assert!(names.contains(&"late-ack-after-ck-flush"));
    for name in names {
        snapshot_scenario(name);
    }
}

const LATE_ACK_BUGS: [&str; 2] = [
    "buffered-ack-missing-broker-name",
    "revive-no-blank-broker-name-fallback",
];

fn late_ack(bug: bool) -> RunOutcome {
    let bugs: Vec<String> = if bug {
        LATE_ACK_BUGS.iter().map(|s| (*s).to_owned()).collect()
    } else {
        Vec::new()
    };
    run_seed(&scenario("late-ack-after-ck-flush"), 1, &opts(&bugs))
}

#[test]
fn markdown_and_json_of_a_violation() {
    let r = report(&late_ack(true));
    insta::assert_snapshot!(
        "late-ack-after-ck-flush__bug__seed1__markdown",
        render_markdown(&r)
    );
    let json = render_json(&r);
    insta::assert_snapshot!("late-ack-after-ck-flush__bug__seed1__json", json);
    let back: RunReport = serde_json::from_str(&json).expect("the JSON reads back");
    assert_eq!(back, r);
}

/// Parses as XML; the `<!DOCTYPE html>` declaration is allowed.
fn parse(html: &str) -> roxmltree::Document<'_> {
    let opt = roxmltree::ParsingOptions {
        allow_dtd: true,
        ..roxmltree::ParsingOptions::default()
    };
    roxmltree::Document::parse_with_options(html, opt).expect("well-formed XHTML")
}

/// The hover text of every mark whose class starts with `class`.
fn mark_titles<'a>(doc: &'a roxmltree::Document<'a>, class: &str) -> Vec<&'a str> {
    doc.descendants()
        .filter(|n| {
            n.attribute("class")
                .is_some_and(|c| c.split(' ').next() == Some(class))
        })
        .filter_map(|n| n.children().find(|c| c.has_tag_name("title")))
        .filter_map(|t| t.text())
        .collect()
}

/// The message id a mark's hover text names after `word ` (e.g. `acked `).
fn msg_ids(titles: &[&str], word: &str) -> Vec<String> {
    let mut ids: Vec<String> = titles
        .iter()
        .filter_map(|t| t.split(word).nth(1))
        .filter_map(|rest| rest.split([' ', ',', ':']).next())
        .map(str::to_owned)
        .collect();
    ids.sort();
    ids.dedup();
    ids
}

/// The page without its stylesheet and its script (the same in every timeline, and tested
/// on their own): what the snapshot pins is what this run drew.
fn without_style_and_script(html: &str) -> String {
    let mut out = html.to_owned();
    for (open, close) in [("<style>", "</style>"), ("<script>", "</script>")] {
        let mut from = 0;
        while let Some(a) = out[from..].find(open).map(|i| i + from) {
            let b = out[a..].find(close).expect("closed") + a;
            out.replace_range(a + open.len()..b, "…");
            from = a + open.len() + "…".len() + close.len();
        }
    }
    out
}

#[test]
fn late_ack_timeline_shows_the_acked_messages_revived() {
    let o = late_ack(true);
    let html = render_timeline(&o.history, &o.results);
    let doc = parse(&html);
    // Each pop of 4 is acked in full; with the bug the 3 acks merged in memory are lost at
    // revive, so N−1 = 3 messages of each CK come back.
    let revived = msg_ids(&mark_titles(&doc, "revive"), "revived ");
    assert_eq!(revived.len(), 6, "{revived:?}");
    let acked = msg_ids(&mark_titles(&doc, "ack"), "ack of ");
    assert!(
        !mark_titles(&doc, "ackbuf").is_empty(),
        "acks merged in the CK buffer are drawn"
    );
    for m in &revived {
        assert!(
            acked.contains(m),
            "{m} was acked before its revive: {acked:?}"
        );
    }
    assert!(
        html.contains("FAIL: no-redelivery-after-ack violated"),
        "the verdict heads the page"
    );
    assert!(
        doc.descendants().any(|n| n
            .attribute("class")
            .is_some_and(|c| c.split(' ').any(|c| c == "w"))),
        "the witness is highlighted"
    );
    insta::assert_snapshot!(
        "late-ack-after-ck-flush__bug__seed1__timeline",
        without_style_and_script(&html)
    );

    let fixed = late_ack(false);
    let html = render_timeline(&fixed.history, &fixed.results);
    let doc = parse(&html);
    assert!(
        msg_ids(&mark_titles(&doc, "revive"), "revived ").is_empty(),
        "fixed: nothing revived"
    );
    assert!(html.contains("PASS"));
}

fn popsim(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_popsim"))
        .args(args)
        .env_remove("MADSIM_TEST_SEED")
        .env_remove("RUST_LOG")
        .output()
        .expect("popsim runs")
}

#[test]
fn run_json_document() {
    let o = popsim(&[
        "run",
        "late-ack-after-ck-flush",
        "--seed",
        "1",
        "--release",
        "5.3.1",
        "--format",
        "json",
    ]);
    assert_eq!(o.status.code(), Some(1));
    let out = String::from_utf8(o.stdout).expect("utf-8");
    let doc: serde_json::Value = serde_json::from_str(&out).expect("one JSON document");
    assert_eq!(doc["failed"], true);
    assert_eq!(doc["report"]["scenario"], "late-ack-after-ck-flush");
    insta::assert_snapshot!("cli_run_json", out);
}

#[test]
fn run_writes_the_timeline_and_prints_the_trace() {
    let dir = std::env::temp_dir().join(format!("popsim-timeline-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("a temp dir");
    let file = dir.join("t.html");
    let path = file.to_str().expect("utf-8 path");
    let o = popsim(&[
        "run",
        "late-ack-after-ck-flush",
        "--seed",
        "1",
        "--bug",
        LATE_ACK_BUGS[0],
        "--bug",
        LATE_ACK_BUGS[1],
        "--trace",
        "--timeline",
        path,
    ]);
    assert_eq!(o.status.code(), Some(1));
    let out = String::from_utf8(o.stdout).expect("utf-8");
    let log = out
        .split("event log:\n")
        .nth(1)
        .expect("an event log before the report");
    assert!(
        log.lines().next().is_some_and(|l| l.starts_with("  [t=0.")),
        "{log}"
    );
    assert!(log.contains("revived"), "{log}");
    let html = std::fs::read_to_string(&file).expect("the timeline was written");
    let in_process = late_ack(true);
    assert_eq!(
        html,
        render_timeline(&in_process.history, &in_process.results),
        "the file is the renderer's output for the same run"
    );
    let left: Vec<_> = std::fs::read_dir(&dir)
        .expect("the temp dir")
        .map(|e| e.expect("an entry").file_name())
        .collect();
    assert_eq!(left.len(), 1, "no temporary file left: {left:?}");

    // A destination in a missing directory is bad input, refused before the run.
    let bad = dir.join("missing").join("t.html");
    let o = popsim(&[
        "run",
        "late-ack-after-ck-flush",
        "--seed",
        "1",
        "--timeline",
        bad.to_str().expect("utf-8 path"),
    ]);
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("does not exist"));

    // Narrowed to a window and a message; bad values are refused with exit 2.
    let narrowed = |extra: &[&str]| {
        let mut args = vec![
            "run",
            "late-ack-after-ck-flush",
            "--seed",
            "1",
            "--timeline",
            path,
        ];
        args.extend_from_slice(extra);
        popsim(&args)
    };
    let o = narrowed(&["--timeline-window", "60s..70s", "--timeline-msg", "p1-0"]);
    assert_eq!(
        o.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    let html = std::fs::read_to_string(&file).expect("the timeline was written");
    assert!(html.contains("Narrowed to the window 60.000s..70.000s and message p1-0"));
    for (extra, says) in [
        (
            &["--timeline-window", "60x..70s"][..],
            "invalid value '60x..70s' for '--timeline-window <A..B>': the start: `60x` is not a time",
        ),
        (
            &["--timeline-window", "70s..60s"][..],
            "the window is empty: its start 70.000s is not before its end 60.000s",
        ),
        (
            &["--timeline-window", "500s.."][..],
            "--timeline-window: the window starts at 500.000s, but the run ended at 100.000s",
        ),
        (
            &["--timeline-msg", "p9-9"][..],
            "--timeline-msg: no message `p9-9` in this run",
        ),
        (&["--timeline-msg", ""][..], "a message id is needed"),
    ] {
        let o = narrowed(extra);
        let err = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(2), "{extra:?}: {err}");
        assert!(err.contains(says), "{extra:?}: {err}");
    }
    let o = popsim(&[
        "run",
        "late-ack-after-ck-flush",
        "--seed",
        "1",
        "--timeline-msg",
        "p1-0",
    ]);
    assert_eq!(o.status.code(), Some(2), "--timeline-msg needs --timeline");
    assert!(String::from_utf8_lossy(&o.stderr).contains("--timeline <FILE.html>"));
    let _ = std::fs::remove_dir_all(&dir);
}
