//! No `[broker]` key is accepted and then ignored: every key of the reference's `[broker]`
//! table is a `BrokerConfig` field, and broker-core's code (outside `config.rs` and outside
//! test modules) reads that field (`config.<field>`). Adding a key without a reader, or a
//! documented key that is not a field, fails here. The one exception is a key whose upstream
//! effect is void on the modelled store ([`NO_EFFECT_ON_THE_MODELLED_STORE`]): its field's doc
//! comment must say so and its reference row must too.

use std::collections::BTreeMap;
use std::path::Path;

fn crate_file(rel: &str) -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join(rel);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// The keys of the reference's `[broker]` table, in order.
fn documented_keys() -> Vec<String> {
    let doc = crate_file("../docs/scenario-reference.md");
    let start = doc.find("## `[broker]`").expect("a [broker] section");
    let section = &doc[start..];
    let end = section[3..].find("\n## ").map_or(section.len(), |i| i + 3);
    section[..end]
        .lines()
        .filter_map(|l| l.strip_prefix("| `"))
        .filter_map(|l| l.split_once("` |").map(|(k, _)| k.to_owned()))
        .collect()
}

fn camel(snake: &str) -> String {
    let mut out = String::new();
    let mut up = false;
    for c in snake.chars() {
        if c == '_' {
            up = true;
        } else if up {
            out.extend(c.to_uppercase());
            up = false;
        } else {
            out.push(c);
        }
    }
    out
}

/// `BrokerConfig`'s fields by their scenario key (serde's camelCase, or the explicit rename).
fn fields_by_key() -> BTreeMap<String, String> {
    let src = crate_file("src/config.rs");
    let body = &src[src.find("pub struct BrokerConfig {").expect("the struct")..];
    let body = &body[body.find('\n').expect("a body")..body.find("\n}").expect("its end")];
    let mut out = BTreeMap::new();
    let mut rename: Option<String> = None;
    for line in body.lines().map(str::trim) {
        if let Some(r) = line.strip_prefix("#[serde(rename = \"") {
            rename = Some(r.split('"').next().expect("a quoted name").to_owned());
        } else if let Some(f) = line.strip_prefix("pub ") {
            let field = f.split(':').next().expect("a field").trim().to_owned();
            let key = rename.take().unwrap_or_else(|| camel(&field));
            out.insert(key, field);
        }
    }
    out
}

/// broker-core's source outside config.rs, without comments and test modules.
fn readers_source() -> String {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .expect("src")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.extension().is_some_and(|x| x == "rs"))
        .filter(|p| p.file_name().is_some_and(|n| n != "config.rs"))
        .collect();
    files.sort();
    let mut all = String::new();
    for f in files {
        let text = std::fs::read_to_string(&f).expect("source");
        let code = match text.find("#[cfg(test)]\nmod tests") {
            Some(i) => &text[..i],
            None => &text[..],
        };
        for line in code.lines() {
            let line = line.split("//").next().unwrap_or("");
            all.push_str(line);
            all.push('\n');
        }
    }
    all
}

/// Keys accepted with no reader because upstream does exactly what the synchronous setting
/// does on the store the model is (a master with asynchronous flush and no synchronous
/// slave): `asyncPutMessageToSpecificQueue` returns a future already completed, so its
/// callback runs in the putting thread. Each field's doc comment says "No effect in the
/// model" and its reference row "No effect in popsim".
const NO_EFFECT_ON_THE_MODELLED_STORE: [&str; 2] = ["appendCkAsync", "appendAckAsync"];

/// The doc comment just above `pub <field>:` in config.rs's `BrokerConfig`.
fn field_doc(field: &str) -> String {
    let src = crate_file("src/config.rs");
    let at = src
        .find(&format!("pub {field}:"))
        .unwrap_or_else(|| panic!("field {field}"));
    src[..at]
        .lines()
        .rev()
        .skip(1)
        .map(str::trim)
        .take_while(|l| l.starts_with("///"))
        .collect::<Vec<_>>()
        .join(" ")
}

fn is_read(src: &str, field: &str) -> bool {
    let needle = format!("config.{field}");
    src.match_indices(&needle).any(|(i, _)| {
        src[i + needle.len()..]
            .chars()
            .next()
            .is_none_or(|c| !(c.is_alphanumeric() || c == '_'))
    })
}

#[test]
fn every_documented_broker_key_is_a_field_with_a_reader() {
    let keys = documented_keys();
    let fields = fields_by_key();
    assert!(keys.len() >= 20, "the table was found: {keys:?}");
    let src = readers_source();
    let mut unread = Vec::new();
    for key in &keys {
        let field = fields
            .get(key)
            .unwrap_or_else(|| panic!("documented key `{key}` is not a BrokerConfig field"));
        if NO_EFFECT_ON_THE_MODELLED_STORE.contains(&key.as_str()) {
            assert!(
                !is_read(&src, field),
                "`{key}` has a reader now: take it off the no-effect list"
            );
            assert!(
                field_doc(field).contains("No effect in the model"),
                "`{key}`'s doc comment must say why it has no effect"
            );
            let doc = crate_file("../docs/scenario-reference.md");
            let row = doc
                .lines()
                .find(|l| l.starts_with(&format!("| `{key}` |")))
                .expect("its row");
            assert!(
                row.contains("No effect in popsim"),
                "`{key}`'s reference row must say it has no effect"
            );
            continue;
        }
        if !is_read(&src, field) {
            unread.push(key.clone());
        }
    }
    assert!(unread.is_empty(), "accepted but never read: {unread:?}");
    for key in fields.keys() {
        assert!(
            keys.contains(key),
            "BrokerConfig key `{key}` is not documented"
        );
    }
}

#[test]
fn the_reader_check_can_fail() {
    let src = "fn f(c: &C) { let x = self.config.revive_interval_ms; } // config.never_read\n";
    assert!(is_read(src, "revive_interval_ms"));
    assert!(
        !is_read(src, "revive_interval"),
        "a prefix of another field is no reader"
    );
    let stripped: String = src.lines().map(|l| l.split("//").next().unwrap()).collect();
    assert!(!is_read(&stripped, "never_read"), "a comment is no reader");
    assert_eq!(camel("pop_ck_stay_buffer_time"), "popCkStayBufferTime");
}
