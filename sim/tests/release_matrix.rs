//! The release matrix agrees with upstream's history (the fact sheet's "fixed in" dates), and
//! scenario files users write run through `popsim run FILE.toml`.

use serde_json::{json, Value};
use std::process::{Command, Output};

fn popsim(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_popsim"))
        .args(args)
        .env_remove("MADSIM_TEST_SEED")
        .output()
        .expect("popsim runs")
}

/// Each documented bug breaks its invariant in exactly the releases that shipped the old
/// decision: (b) 5.3.0 (fixed by #8333 in 5.3.1); (c) 5.3.1 only (#8494 brought brokerName
/// into the merge key in 5.3.1, #8836/#8981 fixed it in 5.3.2); (a) 5.3.2 only (the KV path
/// first shipped in 5.3.2, #9370 fixed it in 5.3.3); (e) up to 5.3.1 (#9150 in 5.3.2); (d)
/// oneway-only updates in 5.3.0, the never-completed future from 5.3.1 until #10006.
#[test]
fn matrix_agrees_with_upstream_history() {
    let expected = [
        (
            "orderly-reset-replay",
            [
                &[][..],
                &[],
                &["no-redelivery-after-ack", "reset-takes-effect"],
                &[],
                &[],
            ],
        ),
        (
            "invisible-time-overrun",
            [&["bounded-deliveries"][..], &[], &[], &[], &[]],
        ),
        (
            "late-ack-after-ck-flush",
            [&[][..], &["no-redelivery-after-ack"], &[], &[], &[]],
        ),
        (
            "offset-update-under-loss",
            [
                &["offset-commit-durable"][..],
                &["offset-api-liveness"],
                &["offset-api-liveness"],
                &["offset-api-liveness"],
                &[],
            ],
        ),
        (
            "reset-before-first-subscribe",
            [
                &["reset-takes-effect"][..],
                &["reset-takes-effect"],
                &[],
                &[],
                &[],
            ],
        ),
    ];
    let names: Vec<&str> = expected.iter().map(|(n, _)| *n).collect();
    let mut args = vec!["matrix"];
    args.extend(&names);
    args.extend(["--format", "json"]);
    let o = popsim(&args);
    assert_eq!(o.status.code(), Some(1), "some release breaks an invariant");
    let doc: Value = serde_json::from_slice(&o.stdout).expect("matrix prints JSON");
    let rows = doc["rows"].as_array().expect("rows");
    assert_eq!(rows.len(), expected.len());
    for (row, (name, per_release)) in rows.iter().zip(expected) {
        assert_eq!(row["scenario"], json!(name));
        for (release, want) in ["5.3.0", "5.3.1", "5.3.2", "5.3.3", "latest"]
            .into_iter()
            .zip(per_release)
        {
            assert_eq!(row["violated"][release], json!(want), "{name} on {release}");
        }
    }
}

/// The user-written example files load and run with every fix in, and hold.
#[test]
fn user_written_scenario_files_run() {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../scenarios/tests/data");
    let mut files: Vec<_> = std::fs::read_dir(dir)
        .expect("example directory")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.extension().is_some_and(|x| x == "toml"))
        .collect();
    files.sort();
    assert!(files.len() >= 3, "examples: {files:?}");
    for f in files {
        let path = f.to_str().expect("utf-8 path");
        let o = popsim(&["run", path, "--seed", "1"]);
        let out = String::from_utf8_lossy(&o.stdout);
        assert_eq!(
            o.status.code(),
            Some(0),
            "{path}: {out}{}",
            String::from_utf8_lossy(&o.stderr)
        );
        assert!(out.contains("history hash"), "{path}: {out}");
    }
}
