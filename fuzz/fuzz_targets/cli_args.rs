//! Any argument list: `popsim`'s argument parser and its seed-range and shard parsers return
//! a value or a usage error, never panic. Commands are parsed, not run.

#![no_main]

use clap::Parser;
use libfuzzer_sys::fuzz_target;
use sim::cli::{parse_seed_range, parse_shard, Cli, Command};

/// Words the parser knows, so that inputs reach past the first error.
const WORDS: &[&str] = &[
    "run",
    "sweep",
    "verify",
    "matrix",
    "list",
    "--seed",
    "--seeds",
    "--shard",
    "--jobs",
    "--bug",
    "--release",
    "--format",
    "json",
    "text",
    "markdown",
    "--check-determinism",
    "--save-history",
    "late-ack-after-ck-flush",
    "0..10",
    "1/2",
    "--help",
    "-h",
    "--version",
];

fuzz_target!(|args: Vec<(u8, String)>| {
    // Each argument is either a known word (picked by the byte) or the fuzzer's own text.
    let words: Vec<String> = args
        .into_iter()
        .map(|(pick, s)| match WORDS.get(usize::from(pick)) {
            Some(w) => (*w).to_owned(),
            None => s,
        })
        .collect();
    for w in &words {
        let _ = parse_seed_range(w);
        let _ = parse_shard(w);
    }
    let argv = std::iter::once("popsim".to_owned()).chain(words);
    if let Ok(cli) = Cli::try_parse_from(argv) {
        if let Command::Sweep(a) = cli.command {
            let _ = parse_seed_range(&a.seeds);
            let _ = a.shard.as_deref().map(parse_shard);
        }
    }
});
