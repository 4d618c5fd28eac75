//! The parser's two fuzzed properties, run on stable within CI time (the `fuzz/` crate runs
//! the same ones under libFuzzer): loading any text never panics, and a scenario that loads
//! serialises back to TOML that loads to an equal scenario. Crash inputs the fuzzer found are
//! kept in `fuzz/regressions/` and replayed here.

use scenarios::{load_str, Context, Scenario};

/// Every scenario source the repository has: the built-ins and the test data files.
fn sources() -> Vec<String> {
    let mut out: Vec<String> = scenarios::builtins()
        .into_iter()
        .map(|(n, _)| scenarios::builtin_source(n).unwrap().to_owned())
        .collect();
    let root = concat!(env!("CARGO_MANIFEST_DIR"), "/..");
    for dir in ["scenarios/tests/data", "sim/tests/data"] {
        let Ok(entries) = std::fs::read_dir(format!("{root}/{dir}")) else {
            continue;
        };
        let mut files: Vec<_> = entries.map(|e| e.unwrap().path()).collect();
        files.sort();
        out.extend(
            files
                .into_iter()
                .filter(|p| p.extension().is_some_and(|x| x == "toml"))
                .filter_map(|p| std::fs::read_to_string(p).ok()),
        );
    }
    out
}

/// The scenario written back as TOML (through the same serde model the loader reads).
fn to_toml(sc: &Scenario) -> String {
    let table = toml::Table::try_from(sc).expect("a scenario serialises to a TOML table");
    toml::to_string(&table).expect("a TOML table prints")
}

/// Loads `src`; when it loads, checks that it re-serialises to an equivalent scenario.
fn check(src: &str) -> Result<(), String> {
    let ctx = Context::default();
    if let Ok(sc) = load_str("fuzz.toml", src, &ctx) {
        let text = to_toml(&sc);
        let again = load_str("roundtrip.toml", &text, &ctx).map_err(|e| {
            format!(
                "re-serialised scenario does not load:\n{}\n{text}",
                e.render()
            )
        })?;
        if again != sc {
            return Err(format!("re-serialised to a different scenario:\n{text}"));
        }
    }
    Ok(())
}

#[test]
fn every_known_scenario_round_trips() {
    let all = sources();
    assert!(all.len() >= 6, "the built-ins at least");
    for src in &all {
        load_str("x.toml", src, &Context::default()).expect("a known scenario loads");
        check(src).unwrap();
    }
}

/// Inputs the fuzz targets once crashed or slowed on, kept as files.
#[test]
fn fuzz_regressions_never_panic() {
    let dir = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../fuzz/regressions/scenario_parse"
    );
    let mut n = 0;
    for e in std::fs::read_dir(dir).expect("fuzz/regressions/scenario_parse") {
        let bytes = std::fs::read(e.unwrap().path()).unwrap();
        if let Ok(src) = std::str::from_utf8(&bytes) {
            check(src).unwrap();
        }
        n += 1;
    }
    assert!(n > 0);
}

/// Fragments that tend to break parsers and validators.
const FRAGMENTS: &[&str] = &[
    "0",
    "-1",
    "1e400",
    "nan",
    "99999999999999999999",
    "\"",
    "'",
    "[",
    "]]",
    "{",
    "}",
    "=",
    ",",
    "\n",
    "\n[[steps]]\n",
    "\n[broker]\n",
    "\n[faults]\n",
    "\n[[expect.rows]]\n",
    "at_ms = 1\naction = \"crash\"\n",
    "true",
    "\"\u{0}\"",
    "\u{feff}",
    "é",
    "#",
    "1979-05-27",
    "inf",
    "0x10",
    "1_000",
    "[[consumers]]\nname = \"x\"\n",
];

/// Applies `edits` (offset, bytes to delete, fragment) to `src` at character boundaries.
fn mutate(src: &str, edits: &[(usize, usize, usize)]) -> String {
    let mut s = src.to_owned();
    for &(at, del, frag) in edits {
        let mut at = at % (s.len() + 1);
        while !s.is_char_boundary(at) {
            at -= 1;
        }
        let mut end = (at + del).min(s.len());
        while !s.is_char_boundary(end) {
            end += 1;
        }
        s.replace_range(at..end, FRAGMENTS[frag % FRAGMENTS.len()]);
    }
    s
}

/// A fixed-seed generator (the `roundtrip` stream of broker-core's ChaCha8 streams): the
/// cases are the same on every run, so a failure reproduces.
struct Rng(broker_core::rng::ChaCha8Rng);

impl Rng {
    fn new(seed: u64) -> Self {
        Self(broker_core::rng::stream(seed, "roundtrip"))
    }

    fn next(&mut self) -> usize {
        use broker_core::rng::Rng as _;
        self.0.gen::<u64>() as usize
    }
}

/// Cases per property: enough to cover every fragment at many places, small enough for CI.
const CASES: usize = 2_000;

/// Arbitrary text from TOML's punctuation and a few letters: an error, never a panic.
#[test]
fn arbitrary_text_never_panics() {
    const ALPHABET: &[u8] = b"[]{}=\"',.#abcdeimnorstu_019 \n-";
    let mut rng = Rng::new(1);
    for _ in 0..CASES {
        let len = rng.next() % 300;
        let src: String = (0..len)
            .map(|_| char::from(ALPHABET[rng.next() % ALPHABET.len()]))
            .collect();
        check(&src).unwrap_or_else(|e| panic!("{e}\ninput:\n{src}"));
    }
}

/// A known scenario with a few edits: an error, or a scenario that round-trips.
#[test]
fn mutated_scenarios_never_panic_and_round_trip() {
    let all = sources();
    let mut rng = Rng::new(2);
    for _ in 0..CASES {
        let src = &all[rng.next() % all.len()];
        let edits: Vec<(usize, usize, usize)> = (0..1 + rng.next() % 3)
            .map(|_| (rng.next(), rng.next() % 8, rng.next()))
            .collect();
        let mutated = mutate(src, &edits);
        check(&mutated).unwrap_or_else(|e| panic!("{e}\ninput:\n{mutated}"));
    }
}

/// What `popsim shrink` and `popsim explore` start from: a swarm's drawn seed written as a
/// file loads back, for every built-in swarm (before, a seed drawing the proxy's local mode
/// kept the swarm's fixed part, which local mode refused).
#[test]
fn every_drawn_seed_of_a_builtin_swarm_loads_back() {
    let ctx = Context::default();
    let mut swarms = 0;
    for (name, _) in scenarios::builtins() {
        let sc = scenarios::builtin(name).expect("a built-in loads");
        if sc.swarm.is_none() {
            continue;
        }
        swarms += 1;
        for seed in 0..300 {
            let (drawn, _) = scenarios::swarm::resolve(&sc, seed);
            let text = scenarios::to_toml(&drawn);
            if let Err(e) = load_str("drawn.toml", &text, &ctx) {
                panic!("{name} seed {seed} does not load back:\n{}", e.render());
            }
        }
    }
    assert!(swarms >= 2, "{swarms} swarms");
}
