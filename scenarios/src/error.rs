//! [`ScenarioError`]: every problem with a scenario, located at file, line, column and key.

use std::fmt;

/// How many issues [`ScenarioError`]'s `Display` prints before summarising the rest.
pub const MAX_REPORTED_ISSUES: usize = 20;

/// What kind of problem an [`Issue`] is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum IssueKind {
    /// The file could not be read.
    Io,
    /// The text is not valid TOML.
    Syntax,
    /// Valid TOML, but an unknown key, a missing key, a wrong type or an unknown variant.
    Schema,
    /// Well-formed, but inconsistent: an unknown name, steps out of order, ….
    Invalid,
    /// A value outside a declared limit ([`crate::limits`]).
    Limit,
    /// `resolve` was given a name that is neither a built-in nor a `.toml` path.
    UnknownScenario,
}

/// One located problem.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Issue {
    pub kind: IssueKind,
    /// 1-based; 0 when the problem has no position (I/O, unknown scenario name).
    pub line: usize,
    /// 1-based, in characters; 0 when `line` is 0.
    pub column: usize,
    /// The key path, e.g. `steps[2].consumer`; empty when the problem is not about one key.
    pub key: String,
    pub message: String,
    /// The source line, for [`ScenarioError::render`].
    pub source_line: Option<String>,
}

/// Why a scenario could not be loaded. `Display` prints one line per issue:
/// `file:line:column: key: message`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ScenarioError {
    origin: String,
    issues: Vec<Issue>,
}

impl ScenarioError {
    pub(crate) fn new(origin: &str, mut issues: Vec<Issue>) -> Self {
        // Issues without a position first, then in file order; a stable sort keeps the
        // order the checks found them in for issues on the same spot.
        issues.sort_by_key(|i| (i.line, i.column));
        Self {
            origin: origin.to_owned(),
            issues,
        }
    }

    pub(crate) fn single(origin: &str, kind: IssueKind, message: String) -> Self {
        Self::new(
            origin,
            vec![Issue {
                kind,
                line: 0,
                column: 0,
                key: String::new(),
                message,
                source_line: None,
            }],
        )
    }

    /// The file name (or built-in name) the problems are in.
    pub fn origin(&self) -> &str {
        &self.origin
    }

    /// Every problem found, in file order. Never empty.
    pub fn issues(&self) -> &[Issue] {
        &self.issues
    }

    /// The process exit code for a scenario that cannot be used: 2 (usage error).
    pub fn exit_code(&self) -> i32 {
        2
    }

    /// Like `Display`, plus the offending source line and a caret under the column, for a
    /// terminal.
    pub fn render(&self) -> String {
        let mut out = String::new();
        for issue in self.issues.iter().take(MAX_REPORTED_ISSUES) {
            out.push_str(&self.format_issue(issue));
            out.push('\n');
            if let Some(text) = &issue.source_line {
                let gutter = issue.line.to_string().len();
                out.push_str(&format!("{:gutter$} |\n", ""));
                out.push_str(&format!("{} | {}\n", issue.line, text));
                let pad: String = text
                    .chars()
                    .take(issue.column.saturating_sub(1))
                    .map(|c| if c == '\t' { '\t' } else { ' ' })
                    .collect();
                out.push_str(&format!("{:gutter$} | {pad}^\n", ""));
            }
        }
        self.push_more(&mut out);
        out
    }

    fn format_issue(&self, issue: &Issue) -> String {
        let mut s = self.origin.clone();
        if issue.line > 0 {
            s.push_str(&format!(":{}:{}", issue.line, issue.column));
        }
        s.push_str(": ");
        if !issue.key.is_empty() {
            s.push_str(&issue.key);
            s.push_str(": ");
        }
        s.push_str(&issue.message);
        s
    }

    fn push_more(&self, out: &mut String) {
        if self.issues.len() > MAX_REPORTED_ISSUES {
            out.push_str(&format!(
                "{}: … and {} more problems\n",
                self.origin,
                self.issues.len() - MAX_REPORTED_ISSUES
            ));
        }
    }
}

impl fmt::Display for ScenarioError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut out = String::new();
        for (n, issue) in self.issues.iter().take(MAX_REPORTED_ISSUES).enumerate() {
            if n > 0 {
                out.push('\n');
            }
            out.push_str(&self.format_issue(issue));
        }
        if self.issues.len() > MAX_REPORTED_ISSUES {
            out.push('\n');
            self.push_more(&mut out);
            out.pop();
        }
        f.write_str(&out)
    }
}

impl std::error::Error for ScenarioError {}

/// A list of names for an error message: all of them when there are few, else a count.
pub(crate) fn valid_list<'a>(names: impl IntoIterator<Item = &'a str>) -> String {
    let names: Vec<&str> = names.into_iter().collect();
    match names.len() {
        0 => "none are defined".to_owned(),
        n if n <= 12 => format!("valid: {}", names.join(", ")),
        n => format!("{n} are defined, e.g. {}", names[..6].join(", ")),
    }
}
