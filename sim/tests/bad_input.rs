//! Bad input through the `popsim` binary: every scenario file in `tests/data/bad/` and every
//! command line in `tests/data/bad/commands.txt` exits with status 2, prints nothing on
//! stdout, writes no file, and prints exactly the message pinned in
//! `tests/data/bad/expected/<case>.txt`.
//!
//! A missing or changed expected file fails the test. To record new output after reviewing
//! it, run `POPSIM_BLESS=1 cargo test -p sim --test bad_input`; blessing is refused when `CI`
//! is set, so CI can only compare.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;

fn dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/bad")
}

/// One bad input: a name and the command line (with environment) that exercises it.
struct Case {
    name: String,
    env: Vec<(String, String)>,
    args: Vec<String>,
}

fn file_cases() -> Vec<Case> {
    let mut files: Vec<String> = std::fs::read_dir(dir())
        .expect("tests/data/bad")
        .map(|e| e.expect("a directory entry").path())
        .filter(|p| p.is_file() && p.extension().is_some_and(|x| x == "toml"))
        .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
        .collect();
    files.sort();
    files
        .into_iter()
        .map(|f| Case {
            name: f.trim_end_matches(".toml").to_owned(),
            env: Vec::new(),
            args: vec!["run".into(), f],
        })
        .collect()
}

fn command_cases() -> Vec<Case> {
    let text = std::fs::read_to_string(dir().join("commands.txt")).expect("commands.txt");
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(|l| {
            let mut words = l.split_whitespace();
            let name = words.next().unwrap().to_owned();
            let mut env = Vec::new();
            let mut args = Vec::new();
            for w in words {
                match w.split_once('=') {
                    Some((k, v))
                        if args.is_empty()
                            && k.chars().all(|c| c.is_ascii_uppercase() || c == '_') =>
                    {
                        env.push((k.to_owned(), v.to_owned()))
                    }
                    _ => args.push(w.to_owned()),
                }
            }
            Case { name, env, args }
        })
        .collect()
}

fn listing(d: &Path) -> BTreeSet<PathBuf> {
    let mut out = BTreeSet::new();
    let mut todo = vec![d.to_path_buf()];
    while let Some(p) = todo.pop() {
        for e in std::fs::read_dir(&p).unwrap() {
            let path = e.unwrap().path();
            if path.ends_with("expected") {
                continue;
            }
            if path.is_dir() {
                todo.push(path.clone());
            }
            out.insert(path);
        }
    }
    out
}

/// Runs one case and returns its transcript, after checking what every bad input must do.
fn run(case: &Case, problems: &mut Vec<String>) -> String {
    let before = listing(&dir());
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_popsim"));
    cmd.args(&case.args)
        .current_dir(dir())
        .env_remove("MADSIM_TEST_SEED")
        .env("NO_COLOR", "1");
    for (k, v) in &case.env {
        cmd.env(k, v);
    }
    let out = cmd.output().expect("popsim runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    let mut fail = |why: &str| problems.push(format!("{}: {why}\n{stderr}", case.name));
    if out.status.code() != Some(2) {
        fail(&format!("exit status {:?}, not 2", out.status.code()));
    }
    if !stdout.is_empty() {
        fail("wrote to stdout");
    }
    if stderr.trim().is_empty() {
        fail("no message");
    }
    if stderr.contains("panicked") || stderr.contains("RUST_BACKTRACE") {
        fail("panicked");
    }
    if listing(&dir()) != before {
        fail("left a file behind");
    }
    let mut t = String::from("$");
    for (k, v) in &case.env {
        t.push_str(&format!(" {k}={v}"));
    }
    t.push_str(" popsim");
    for a in &case.args {
        t.push(' ');
        t.push_str(a);
    }
    t.push_str(&format!(
        "\nexit: {}\n--- stderr\n{stderr}",
        out.status.code().map_or("signal".into(), |c| c.to_string())
    ));
    if !stdout.is_empty() {
        t.push_str(&format!("--- stdout\n{stdout}"));
    }
    t
}

/// Compares each transcript with its expected file (or records it when blessing).
fn check(cases: &[Case]) {
    let bless = std::env::var_os("POPSIM_BLESS").is_some();
    let ci = std::env::var("CI").is_ok_and(|v| !v.is_empty() && v != "0" && v != "false");
    assert!(
        !(bless && ci),
        "POPSIM_BLESS is refused in CI: expected files are only compared there"
    );
    let expected_dir = dir().join("expected");
    let mut problems = Vec::new();
    for case in cases {
        let got = run(case, &mut problems);
        let path = expected_dir.join(format!("{}.txt", case.name));
        if bless {
            std::fs::create_dir_all(&expected_dir).unwrap();
            std::fs::write(&path, &got).unwrap();
            continue;
        }
        match std::fs::read_to_string(&path) {
            Ok(want) if want == got => {}
            Ok(want) => problems.push(format!(
                "{}: output changed\n--- expected\n{want}--- got\n{got}",
                case.name
            )),
            Err(_) => problems.push(format!(
                "{}: no expected file {}\n--- got\n{got}",
                case.name,
                path.strip_prefix(env!("CARGO_MANIFEST_DIR"))
                    .unwrap()
                    .display()
            )),
        }
    }
    assert!(
        problems.is_empty(),
        "{} of {} cases failed (review, then POPSIM_BLESS=1 to record):\n\n{}",
        problems.len(),
        cases.len(),
        problems.join("\n")
    );
}

#[test]
fn every_bad_scenario_file_exits_2_with_a_located_message() {
    let cases = file_cases();
    check(&cases);
    // Located: the first line names the file, a line and a column (an empty or unreadable
    // file has no position to give).
    for case in &cases {
        let text =
            std::fs::read_to_string(dir().join("expected").join(format!("{}.txt", case.name)))
                .unwrap_or_default();
        let first = text.lines().find_map(|l| {
            l.trim_start_matches("error: ")
                .strip_prefix(&format!("{}.toml:", case.name))
        });
        let located = first.is_some_and(|rest| {
            let mut parts = rest.splitn(3, ':');
            parts.next().is_some_and(|l| l.parse::<usize>().is_ok())
                && parts.next().is_some_and(|c| c.parse::<usize>().is_ok())
        });
        assert!(located, "{}: message is not located:\n{text}", case.name);
    }
}

#[test]
fn every_bad_command_line_exits_2_with_one_clear_message() {
    check(&command_cases());
}

/// The corpus the issue asks for, and no stale expected files.
#[test]
fn the_corpus_is_complete() {
    let names: BTreeSet<String> = file_cases()
        .into_iter()
        .chain(command_cases())
        .map(|c| c.name)
        .collect();
    assert!(names.len() >= 40, "only {} bad inputs", names.len());
    assert_eq!(
        names.len(),
        file_cases().len() + command_cases().len(),
        "case names are unique"
    );
    for e in std::fs::read_dir(dir().join("expected")).unwrap() {
        let p = e.unwrap().path();
        let stem = p.file_stem().unwrap().to_string_lossy().into_owned();
        assert!(names.contains(&stem), "stale expected file {}", p.display());
    }
}
