//! Any bytes as a scenario file: loading returns an error or a scenario, never panics, and
//! a scenario that loads re-serialises to TOML that loads to an equal scenario.

#![no_main]

use libfuzzer_sys::fuzz_target;
use scenarios::{load_str, Context};

fuzz_target!(|data: &[u8]| {
    let Ok(src) = std::str::from_utf8(data) else {
        return;
    };
    let ctx = Context::default();
    let Ok(sc) = load_str("fuzz.toml", src, &ctx) else {
        return;
    };
    let table = toml::Table::try_from(&sc).expect("a scenario serialises to a TOML table");
    let text = toml::to_string(&table).expect("a TOML table prints");
    match load_str("roundtrip.toml", &text, &ctx) {
        Ok(again) => assert_eq!(again, sc, "re-serialised as:\n{text}"),
        Err(e) => panic!(
            "re-serialised scenario does not load:\n{}\n{text}",
            e.render()
        ),
    }
});
