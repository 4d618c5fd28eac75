//! Key paths and source positions. Errors name the key a user wrote (`steps[2].consumer`)
//! and its line and column, so the loader keeps the parsed, spanned TOML tree next to the
//! typed scenario and maps between the two.

use std::fmt;
use std::ops::Range;
use toml::de::{DeTable, DeValue};
use toml::Spanned;

/// One step of a key path: a table key or an array index.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Seg {
    Key(String),
    Index(usize),
}

/// A dotted key path such as `consumers[1].kind` or `broker.reviveQueueNum`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct KeyPath(pub Vec<Seg>);

impl KeyPath {
    pub fn root() -> Self {
        Self(Vec::new())
    }

    /// This path extended by a key.
    pub fn key(&self, k: &str) -> Self {
        let mut v = self.0.clone();
        v.push(Seg::Key(k.to_owned()));
        Self(v)
    }

    /// This path extended by an array index.
    pub fn index(&self, i: usize) -> Self {
        let mut v = self.0.clone();
        v.push(Seg::Index(i));
        Self(v)
    }

    pub fn is_root(&self) -> bool {
        self.0.is_empty()
    }

    /// The path without its last segment.
    pub fn parent(&self) -> Option<Self> {
        if self.0.is_empty() {
            None
        } else {
            Some(Self(self.0[..self.0.len() - 1].to_vec()))
        }
    }
}

/// Shorthand for building paths in validation: `kp!["steps", 2, "consumer"]`.
macro_rules! kp {
    ($($seg:expr),* $(,)?) => {{
        #[allow(unused_mut)]
        let mut p = $crate::locate::KeyPath::root();
        $( p = $crate::locate::IntoSeg::push_onto($seg, p); )*
        p
    }};
}
pub(crate) use kp;

/// What [`kp!`] accepts as a segment.
pub trait IntoSeg {
    fn push_onto(self, p: KeyPath) -> KeyPath;
}
impl IntoSeg for &str {
    fn push_onto(self, p: KeyPath) -> KeyPath {
        p.key(self)
    }
}
impl IntoSeg for &String {
    fn push_onto(self, p: KeyPath) -> KeyPath {
        p.key(self)
    }
}
impl IntoSeg for usize {
    fn push_onto(self, p: KeyPath) -> KeyPath {
        p.index(self)
    }
}
impl IntoSeg for &KeyPath {
    fn push_onto(self, mut p: KeyPath) -> KeyPath {
        p.0.extend(self.0.iter().cloned());
        p
    }
}

fn bare_key(k: &str) -> bool {
    !k.is_empty()
        && k.chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
}

impl fmt::Display for KeyPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, seg) in self.0.iter().enumerate() {
            match seg {
                Seg::Key(k) => {
                    if i > 0 {
                        f.write_str(".")?;
                    }
                    if bare_key(k) {
                        f.write_str(k)?;
                    } else {
                        write!(f, "{k:?}")?;
                    }
                }
                Seg::Index(n) => write!(f, "[{n}]")?,
            }
        }
        Ok(())
    }
}

/// 1-based line and column (in characters) of a byte offset.
pub fn line_col(src: &str, offset: usize) -> (usize, usize) {
    let mut offset = offset.min(src.len());
    while !src.is_char_boundary(offset) {
        offset -= 1;
    }
    let before = &src[..offset];
    let line = before.matches('\n').count() + 1;
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    let column = src[line_start..offset].chars().count() + 1;
    (line, column)
}

/// The text of the 1-based line `line` (without its newline).
pub fn source_line(src: &str, line: usize) -> Option<&str> {
    src.split('\n')
        .nth(line.checked_sub(1)?)
        .map(|l| l.trim_end_matches('\r'))
}

fn contains(span: &Range<usize>, at: usize) -> bool {
    span.start <= at && (at < span.end || (span.start == span.end && at == span.start))
}

/// The innermost key or value whose span contains `at`: its path and span.
pub fn path_at(root: &Spanned<DeTable<'_>>, at: usize) -> Option<(KeyPath, Range<usize>)> {
    let mut best: Option<(KeyPath, Range<usize>)> = None;
    let mut consider = |path: &KeyPath, span: Range<usize>| {
        if contains(&span, at) && best.as_ref().is_none_or(|(_, b)| span.len() <= b.len()) {
            best = Some((path.clone(), span));
        }
    };
    walk_table(root.get_ref(), &KeyPath::root(), &mut consider);
    best
}

/// The innermost table (or array-of-tables element) whose span contains `at`; the root when
/// none does. Serde reports a missing key at its table.
pub fn table_at(root: &Spanned<DeTable<'_>>, at: usize) -> KeyPath {
    let mut best: Option<(KeyPath, usize)> = None;
    let mut consider = |path: &KeyPath, v: &DeValue<'_>, span: Range<usize>| {
        if matches!(v, DeValue::Table(_))
            && contains(&span, at)
            && best.as_ref().is_none_or(|(_, len)| span.len() <= *len)
        {
            best = Some((path.clone(), span.len()));
        }
    };
    fn go(
        t: &DeTable<'_>,
        path: &KeyPath,
        f: &mut dyn FnMut(&KeyPath, &DeValue<'_>, Range<usize>),
    ) {
        for (k, v) in t.iter() {
            let p = path.key(k.get_ref());
            f(&p, v.get_ref(), v.span());
            match v.get_ref() {
                DeValue::Table(t) => go(t, &p, f),
                DeValue::Array(a) => {
                    for (i, item) in a.iter().enumerate() {
                        let pi = p.index(i);
                        f(&pi, item.get_ref(), item.span());
                        if let DeValue::Table(t) = item.get_ref() {
                            go(t, &pi, f);
                        }
                    }
                }
                _ => {}
            }
        }
    }
    go(root.get_ref(), &KeyPath::root(), &mut consider);
    best.map(|(p, _)| p).unwrap_or_default()
}

fn walk_table(t: &DeTable<'_>, path: &KeyPath, f: &mut dyn FnMut(&KeyPath, Range<usize>)) {
    for (k, v) in t.iter() {
        let p = path.key(k.get_ref());
        f(&p, k.span());
        f(&p, v.span());
        walk_value(v.get_ref(), &p, f);
    }
}

fn walk_value(v: &DeValue<'_>, path: &KeyPath, f: &mut dyn FnMut(&KeyPath, Range<usize>)) {
    match v {
        DeValue::Table(t) => walk_table(t, path, f),
        DeValue::Array(a) => {
            for (i, item) in a.iter().enumerate() {
                let p = path.index(i);
                f(&p, item.span());
                walk_value(item.get_ref(), &p, f);
            }
        }
        _ => {}
    }
}

/// The value written at `path`, if any.
pub fn lookup<'a, 'i>(
    root: &'a Spanned<DeTable<'i>>,
    path: &KeyPath,
) -> Option<&'a Spanned<DeValue<'i>>> {
    let mut segs = path.0.iter();
    let Seg::Key(first) = segs.next()? else {
        return None;
    };
    let mut value = root.get_ref().get(first.as_str())?;
    for seg in segs {
        value = match (seg, value.get_ref()) {
            (Seg::Key(key), DeValue::Table(t)) => t.get(key.as_str())?,
            (Seg::Index(i), DeValue::Array(a)) => a.get(*i)?,
            _ => return None,
        };
    }
    Some(value)
}

/// The span to point at for `path`: its value if written, else the nearest written ancestor,
/// else the start of the file.
pub fn span_for(root: &Spanned<DeTable<'_>>, path: &KeyPath) -> Range<usize> {
    let mut p = Some(path.clone());
    while let Some(cur) = p {
        if cur.is_root() {
            break;
        }
        if let Some(found) = lookup(root, &cur) {
            return found.span();
        }
        p = cur.parent();
    }
    0..0
}
