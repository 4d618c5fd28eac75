//! # scenarios
//!
//! The scenario file format popsim runs: its types ([`model`]), a loader that reports
//! errors with file, line, column and key, validation with declared [`limits`], and the
//! built-in scenarios that replay the documented upstream bugs.
//!
//! ```
//! let ctx = scenarios::Context::default();
//! let sc = scenarios::resolve("late-ack-after-ck-flush", &ctx).unwrap();
//! assert!(sc.broker.enable_pop_buffer_merge);
//! ```

pub mod limits;
pub mod model;

mod builtin;
mod error;
mod locate;
pub mod steps;
pub mod swarm;
mod validate;
mod write;

pub use builtin::{builtin, builtin_source, builtins};
pub use error::{Issue, IssueKind, ScenarioError, MAX_REPORTED_ISSUES};
pub use model::Scenario;
pub use write::to_toml;

use locate::{line_col, lookup, path_at, source_line, span_for, table_at};
use serde::Deserialize;
use std::ops::Range;
use std::path::Path;
use toml::de::DeTable;
use toml::Spanned;

/// What the loader checks names against, supplied by the caller so that this crate need not
/// depend on the checker.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Context {
    /// The invariant checker's names; `expect.*` entries must be among them. Empty = names
    /// are not checked (only their uniqueness is).
    pub invariant_names: Vec<String>,
}

impl Context {
    pub fn with_invariants<S: Into<String>>(names: impl IntoIterator<Item = S>) -> Self {
        Self {
            invariant_names: names.into_iter().map(Into::into).collect(),
        }
    }
}

/// Parse and validate a scenario. `origin` names the source in error messages (a file name
/// or a built-in's name).
pub fn load_str(origin: &str, src: &str, ctx: &Context) -> Result<Scenario, ScenarioError> {
    load_str_warned(origin, src, ctx).map(|(s, _)| s)
}

/// [`load_str`], with the scenario's warnings: things that load but likely do not do what
/// the author meant, each `file:line:column: key: warning: message` like an error.
pub fn load_str_warned(
    origin: &str,
    src: &str,
    ctx: &Context,
) -> Result<(Scenario, Vec<String>), ScenarioError> {
    let at = |span: Range<usize>, kind, key: String, message: String| {
        let (line, column) = line_col(src, span.start);
        Issue {
            kind,
            line,
            column,
            key,
            message,
            source_line: source_line(src, line).map(str::to_owned),
        }
    };
    if src.len() > limits::MAX_FILE_BYTES {
        return Err(ScenarioError::new(
            origin,
            vec![at(
                0..0,
                IssueKind::Limit,
                String::new(),
                format!(
                    "the file has {} bytes; the limit is {} bytes",
                    src.len(),
                    limits::MAX_FILE_BYTES
                ),
            )],
        ));
    }

    let tree = match DeTable::parse(src) {
        Ok(t) => t,
        Err(e) => {
            let span = e.span().unwrap_or(0..0);
            let key = syntax_error_key(src, span.start);
            let msg = format!("syntax error: {}", e.message().trim_end());
            return Err(ScenarioError::new(
                origin,
                vec![at(span, IssueKind::Syntax, key, msg)],
            ));
        }
    };

    let step_problems = steps::check_steps(&tree);
    if !step_problems.is_empty() {
        let issues = step_problems
            .into_iter()
            .map(|p| at(p.span, IssueKind::Schema, p.path.to_string(), p.message))
            .collect();
        return Err(ScenarioError::new(origin, issues));
    }

    let scenario = match Scenario::deserialize(toml::de::Deserializer::from(tree.clone())) {
        Ok(s) => s,
        Err(e) => {
            let (span, key, message) = locate_serde_error(&tree, &e);
            return Err(ScenarioError::new(
                origin,
                vec![at(span, IssueKind::Schema, key, message)],
            ));
        }
    };

    let present = |p: &locate::KeyPath| lookup(&tree, p).is_some();
    let problems = validate::validate(&scenario, ctx, &present);
    if problems.is_empty() {
        let warnings = validate::warnings(&scenario)
            .into_iter()
            .map(|(path, message)| {
                let (line, column) = line_col(src, span_for(&tree, &path).start);
                format!("{origin}:{line}:{column}: {path}: warning: {message}")
            })
            .collect();
        Ok((scenario, warnings))
    } else {
        let issues = problems
            .into_iter()
            .map(|p| {
                at(
                    span_for(&tree, &p.path),
                    p.kind,
                    p.path.to_string(),
                    p.message,
                )
            })
            .collect();
        Err(ScenarioError::new(origin, issues))
    }
}

/// Read and load a scenario file. Errors name the file as given.
pub fn load_file(path: &Path, ctx: &Context) -> Result<Scenario, ScenarioError> {
    load_file_warned(path, ctx).map(|(s, _)| s)
}

/// [`load_file`], with the scenario's warnings ([`load_str_warned`]).
pub fn load_file_warned(
    path: &Path,
    ctx: &Context,
) -> Result<(Scenario, Vec<String>), ScenarioError> {
    let origin = path.display().to_string();
    let meta = std::fs::metadata(path).map_err(|e| {
        ScenarioError::single(&origin, IssueKind::Io, format!("cannot read the file: {e}"))
    })?;
    if meta.len() > limits::MAX_FILE_BYTES as u64 {
        return Err(ScenarioError::single(
            &origin,
            IssueKind::Limit,
            format!(
                "the file has {} bytes; the limit is {} bytes",
                meta.len(),
                limits::MAX_FILE_BYTES
            ),
        ));
    }
    let bytes = std::fs::read(path).map_err(|e| {
        ScenarioError::single(&origin, IssueKind::Io, format!("cannot read the file: {e}"))
    })?;
    let src = String::from_utf8(bytes).map_err(|e| {
        let (line, column) = {
            let valid = &e.as_bytes()[..e.utf8_error().valid_up_to()];
            let s = String::from_utf8_lossy(valid);
            line_col(&s, s.len())
        };
        ScenarioError::new(
            &origin,
            vec![Issue {
                kind: IssueKind::Syntax,
                line,
                column,
                key: String::new(),
                message: "the file is not valid UTF-8".to_owned(),
                source_line: None,
            }],
        )
    })?;
    load_str_warned(&origin, &src, ctx)
}

/// A built-in scenario by name, or a path to a `.toml` file. Anything else is an error that
/// lists the built-in names.
pub fn resolve(arg: &str, ctx: &Context) -> Result<Scenario, ScenarioError> {
    resolve_warned(arg, ctx).map(|(s, _)| s)
}

/// [`resolve`], with the scenario's warnings ([`load_str_warned`]).
pub fn resolve_warned(arg: &str, ctx: &Context) -> Result<(Scenario, Vec<String>), ScenarioError> {
    if let Some(src) = builtin_source(arg) {
        return load_str_warned(&format!("{arg}.toml"), src, ctx);
    }
    let path = Path::new(arg);
    if arg.ends_with(".toml") || path.is_file() {
        return load_file_warned(path, ctx);
    }
    let names: Vec<&str> = builtins().into_iter().map(|(n, _)| n).collect();
    Err(ScenarioError::single(
        arg,
        IssueKind::UnknownScenario,
        format!(
            "no built-in scenario has this name and it is not a .toml file; built-ins: {}",
            names.join(", ")
        ),
    ))
}

/// For a syntax error, the key being written where it happened: the key before `=` on its
/// line, under the nearest preceding `[table]` or `[[array]]` header (with its index). The
/// document does not parse, so this reads the text line by line.
fn syntax_error_key(src: &str, at: usize) -> String {
    let (line, _) = line_col(src, at);
    let mut table = String::new();
    let mut arrays: std::collections::BTreeMap<String, usize> = Default::default();
    for l in src.split('\n').take(line.saturating_sub(1)) {
        let t = l.trim();
        if let Some(inner) = t.strip_prefix("[[") {
            if let Some(end) = inner.find("]]") {
                let name = inner[..end].trim().to_owned();
                let n = arrays.entry(name.clone()).or_insert(0);
                table = format!("{name}[{n}]");
                *n += 1;
            }
        } else if let Some(inner) = t.strip_prefix('[') {
            if let Some(end) = inner.find(']') {
                table = inner[..end].trim().to_owned();
            }
        }
    }
    let text = source_line(src, line).unwrap_or("");
    let key = text
        .split_once('=')
        .map(|(k, _)| k.trim())
        .filter(|k| !k.is_empty() && !k.starts_with('[') && !k.starts_with('#'));
    match (table.is_empty(), key) {
        (_, None) => table,
        (true, Some(k)) => k.to_owned(),
        (false, Some(k)) => format!("{table}.{k}"),
    }
}

/// Turn a serde error from the TOML deserializer into (span, key path, message).
fn locate_serde_error(
    tree: &Spanned<DeTable<'_>>,
    e: &toml::de::Error,
) -> (Range<usize>, String, String) {
    let msg = e.message().trim_end();
    let span = e.span().unwrap_or(0..0);
    if let Some(rest) = msg.strip_prefix("missing field `") {
        let field = rest.split('`').next().unwrap_or("");
        let key = table_at(tree, span.start).key(field);
        return (
            span,
            key.to_string(),
            format!("missing required key `{field}`"),
        );
    }
    let path = path_at(tree, span.start)
        .map(|(p, _)| p)
        .unwrap_or_default();
    (span, path.to_string(), rewrite_serde_message(msg))
}

/// serde's wording, in the file's vocabulary: keys not fields, values not variants.
fn rewrite_serde_message(msg: &str) -> String {
    let ticks =
        |s: &str| -> Vec<String> { s.split('`').skip(1).step_by(2).map(str::to_owned).collect() };
    if let Some(rest) = msg.strip_prefix("unknown field `") {
        let mut names = ticks(&format!("`{rest}"));
        let given = if names.is_empty() {
            String::new()
        } else {
            names.remove(0)
        };
        if names.is_empty() {
            return format!("unknown key `{given}`; this table takes no keys");
        }
        return format!("unknown key `{given}`; valid keys: {}", names.join(", "));
    }
    if let Some(rest) = msg.strip_prefix("unknown variant `") {
        let mut names = ticks(&format!("`{rest}"));
        let given = if names.is_empty() {
            String::new()
        } else {
            names.remove(0)
        };
        if given == "orderly" && names.iter().any(|n| n == "grpc-push") {
            return format!(
                "`orderly` follows no client anyone runs: the remoting push consumer never pops with order = true (DefaultMQPushConsumerImpl.popMessage; ConsumeMessagePopOrderlyService only takes a lock object); FIFO POP comes from the gRPC clients through the proxy: use kind = \"grpc-push\" with fifo = true; valid: {}",
                names.join(", ")
            );
        }
        return format!("unknown value `{given}`; valid: {}", names.join(", "));
    }
    if let Some(rest) = msg.strip_prefix("invalid type: ") {
        return format!(
            "wrong type: {}",
            rest.replace("expected u32", "expected a non-negative integer")
                .replace("expected u64", "expected a non-negative integer")
                .replace("expected i32", "expected an integer")
                .replace("expected i64", "expected an integer")
                .replace("expected f64", "expected a number")
        );
    }
    if let Some(rest) = msg.strip_prefix("invalid value: ") {
        return format!(
            "invalid value: {}",
            rest.replace(
                "expected u32",
                "expected a non-negative integer (at most 4294967295)"
            )
            .replace("expected u64", "expected a non-negative integer")
        );
    }
    msg.to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;
    use locate::KeyPath;

    #[test]
    fn key_path_display() {
        let p = KeyPath::root().key("steps").index(2).key("consumer");
        assert_eq!(p.to_string(), "steps[2].consumer");
    }
}
