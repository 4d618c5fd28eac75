//! Key-level checks of `[[steps]]` tables against the schema of their `action`.
//!
//! `Step` flattens an internally tagged `Action`, so serde buffers each step before it knows
//! the action: unknown keys would be ignored and type errors would lose their position. This
//! pass checks every step's keys and value types on the spanned tree first, so each problem
//! points at the exact key or value. The `schema_matches_model` test keeps the table below in
//! step with [`crate::model::Action`].

use crate::locate::{KeyPath, Seg};
use std::ops::Range;
use toml::de::{DeTable, DeValue};
use toml::Spanned;

/// The type a step key takes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Ty {
    Str,
    U32,
    U64,
    I32,
    I64,
    /// A number (an integer is accepted).
    F64,
    Bool,
    /// One of a fixed set of strings.
    OneOf(&'static [&'static str]),
}

impl Ty {
    pub fn describe(self) -> String {
        match self {
            Ty::Str => "a string".to_owned(),
            Ty::U32 => "a non-negative integer (at most 4294967295)".to_owned(),
            Ty::U64 => "a non-negative integer".to_owned(),
            Ty::I32 => "an integer (32-bit)".to_owned(),
            Ty::I64 => "an integer".to_owned(),
            Ty::F64 => "a number".to_owned(),
            Ty::Bool => "a boolean".to_owned(),
            Ty::OneOf(v) => format!("one of {}", v.join(", ")),
        }
    }
}

/// One key of a step.
#[derive(Clone, Copy, Debug)]
pub struct FieldSchema {
    pub key: &'static str,
    pub ty: Ty,
    pub required: bool,
    /// For the reference: what the key means.
    pub doc: &'static str,
}

/// The keys an action takes besides `at_ms` and `action`.
#[derive(Clone, Copy, Debug)]
pub struct ActionSchema {
    pub name: &'static str,
    pub fields: &'static [FieldSchema],
}

const fn req(key: &'static str, ty: Ty, doc: &'static str) -> FieldSchema {
    FieldSchema {
        key,
        ty,
        required: true,
        doc,
    }
}
const fn opt(key: &'static str, ty: Ty, doc: &'static str) -> FieldSchema {
    FieldSchema {
        key,
        ty,
        required: false,
        doc,
    }
}

/// The update modes of `update-offset`.
pub const UPDATE_MODES: &[&str] = &["oneway", "sync", "future"];

/// Every action, in the order of [`crate::model::Action`].
pub const ACTIONS: &[ActionSchema] = &[
    ActionSchema {
        name: "produce",
        fields: &[
            req("producer", Ty::Str, "producer name"),
            opt("count", Ty::U64, "messages to send now (default 1)"),
        ],
    },
    ActionSchema {
        name: "pop",
        fields: &[
            req("consumer", Ty::Str, "scripted or grpc-simple consumer name"),
            opt("max", Ty::U32, "maxMsgNums, 1..=32 (default 32)"),
            opt("queue", Ty::U32, "queue id to pop (default: all queues)"),
            opt(
                "invisible_time_ms",
                Ty::U64,
                "invisible time of this pop (default: the consumer's pop_invisible_time_ms)",
            ),
        ],
    },
    ActionSchema {
        name: "ack",
        fields: &[
            req("consumer", Ty::Str, "scripted or grpc-simple consumer name"),
            opt("count", Ty::U32, "ack only the first `count` held receipts"),
            opt(
                "all_but",
                Ty::U32,
                "ack all held receipts but the last `all_but`",
            ),
            opt("batch", Ty::Bool, "use BATCH_ACK_MESSAGE (default false)"),
            opt(
                "skip",
                Ty::U32,
                "leave the oldest `skip` held receipts held and ack from the next (default 0)",
            ),
        ],
    },
    ActionSchema {
        name: "change-invisible-time",
        fields: &[
            req("consumer", Ty::Str, "scripted or grpc-simple consumer name"),
            req("invisible_time_ms", Ty::U64, "new invisible time"),
            opt(
                "count",
                Ty::U32,
                "change only the first `count` held receipts",
            ),
        ],
    },
    ActionSchema {
        name: "reset-offset",
        fields: &[
            req("client", Ty::Str, "admin client name"),
            req("group", Ty::Str, "group name"),
            req("topic", Ty::Str, "topic name"),
            opt(
                "queue",
                Ty::I32,
                "queue id, or -1 for every queue (default -1)",
            ),
            opt(
                "offset",
                Ty::I64,
                "the offset to reset one queue to (required with a queue; every queue is reset to its max offset)",
            ),
        ],
    },
    ActionSchema {
        name: "update-offset",
        fields: &[
            req("client", Ty::Str, "offset client name"),
            req("mode", Ty::OneOf(UPDATE_MODES), "oneway, sync or future"),
            req("group", Ty::Str, "group name"),
            req("topic", Ty::Str, "topic name"),
            opt(
                "queue",
                Ty::I32,
                "queue id; left out = sent as null (INVALID_PARAMETER)",
            ),
            opt(
                "offset",
                Ty::I64,
                "offset; left out = sent as null (INVALID_PARAMETER)",
            ),
        ],
    },
    ActionSchema {
        name: "query-offset",
        fields: &[
            req("client", Ty::Str, "offset client name"),
            req("group", Ty::Str, "group name"),
            req("topic", Ty::Str, "topic name"),
            req("queue", Ty::U32, "queue id"),
        ],
    },
    ActionSchema {
        name: "crash",
        fields: &[],
    },
    ActionSchema {
        name: "shutdown",
        fields: &[],
    },
    ActionSchema {
        name: "restart",
        fields: &[],
    },
    ActionSchema {
        name: "clog",
        fields: &[req(
            "node",
            Ty::Str,
            "`broker`, or a producer, consumer or client name",
        )],
    },
    ActionSchema {
        name: "unclog",
        fields: &[req(
            "node",
            Ty::Str,
            "a node clogged by an earlier `clog` step",
        )],
    },
    ActionSchema {
        name: "pause",
        fields: &[
            req(
                "node",
                Ty::Str,
                "`broker`, or a producer, consumer or client name",
            ),
            req("duration_ms", Ty::U64, "how long the node's tasks stop"),
        ],
    },
    ActionSchema {
        name: "set-loss",
        fields: &[req(
            "rate",
            Ty::F64,
            "packet-loss probability from now on, 0..=1",
        )],
    },
    ActionSchema {
        name: "set-store-put-failure-rate",
        fields: &[req(
            "rate",
            Ty::F64,
            "probability that a CK, ACK, re-put or retry put fails from now on, 0..=1",
        )],
    },
    ActionSchema {
        name: "set-timer-lag",
        fields: &[req(
            "lag_ms",
            Ty::U64,
            "how far the timer's dequeue side runs behind the clock from now on",
        )],
    },
    ActionSchema {
        name: "start-consumer",
        fields: &[req(
            "consumer",
            Ty::Str,
            "concurrent or grpc-push consumer name",
        )],
    },
    ActionSchema {
        name: "stop-consumer",
        fields: &[req(
            "consumer",
            Ty::Str,
            "concurrent or grpc-push consumer name",
        )],
    },
];

/// Keys every step has.
pub const COMMON_KEYS: &[&str] = &["at_ms", "action"];

/// The schema of an action by name.
pub fn action(name: &str) -> Option<&'static ActionSchema> {
    ACTIONS.iter().find(|a| a.name == name)
}

/// A problem found by [`check_steps`], before it is given a line and column.
pub struct StepProblem {
    pub path: KeyPath,
    pub span: Range<usize>,
    pub message: String,
}

/// Check every `[[steps]]` table's keys and value types. Anything else about `steps`
/// (not an array at all, …) is left to serde, which reports it with its position.
pub fn check_steps(root: &Spanned<DeTable<'_>>) -> Vec<StepProblem> {
    let mut out = Vec::new();
    let Some(steps) = root.get_ref().get("steps") else {
        return out;
    };
    let DeValue::Array(items) = steps.get_ref() else {
        return out;
    };
    for (i, item) in items.iter().enumerate() {
        let path = KeyPath(vec![Seg::Key("steps".to_owned()), Seg::Index(i)]);
        let DeValue::Table(table) = item.get_ref() else {
            out.push(StepProblem {
                path,
                span: item.span(),
                message: format!("expected a table, found {}", item.get_ref().type_str()),
            });
            continue;
        };
        check_step(table, item.span(), &path, &mut out);
    }
    out
}

fn check_step(table: &DeTable<'_>, span: Range<usize>, path: &KeyPath, out: &mut Vec<StepProblem>) {
    let mut problem = |p: KeyPath, span: Range<usize>, message: String| {
        out.push(StepProblem {
            path: p,
            span,
            message,
        })
    };
    match table.get("at_ms") {
        Some(v) => {
            if let Some(msg) = type_error(v.get_ref(), Ty::U64) {
                problem(path.key("at_ms"), v.span(), msg);
            }
        }
        None => problem(
            path.key("at_ms"),
            span.clone(),
            "missing required key `at_ms`".to_owned(),
        ),
    }
    let names = ACTIONS
        .iter()
        .map(|a| a.name)
        .collect::<Vec<_>>()
        .join(", ");
    let schema = match table.get("action") {
        None => {
            problem(
                path.key("action"),
                span,
                format!("missing required key `action`; valid actions: {names}"),
            );
            return;
        }
        Some(v) => match v.get_ref() {
            DeValue::String(s) => match action(s) {
                Some(a) => a,
                None => {
                    problem(
                        path.key("action"),
                        v.span(),
                        format!("unknown action `{s}`; valid: {names}"),
                    );
                    return;
                }
            },
            other => {
                problem(
                    path.key("action"),
                    v.span(),
                    format!(
                        "expected a string, found {}; valid actions: {names}",
                        other.type_str()
                    ),
                );
                return;
            }
        },
    };
    for (k, v) in table.iter() {
        let key: &str = k.get_ref();
        if COMMON_KEYS.contains(&key) {
            continue;
        }
        match schema.fields.iter().find(|f| f.key == key) {
            None => {
                let valid: Vec<&str> = COMMON_KEYS
                    .iter()
                    .copied()
                    .chain(schema.fields.iter().map(|f| f.key))
                    .collect();
                problem(
                    path.key(key),
                    k.span(),
                    format!(
                        "unknown key `{key}` for action `{}`; valid: {}",
                        schema.name,
                        valid.join(", ")
                    ),
                );
            }
            Some(f) => {
                if let Some(msg) = type_error(v.get_ref(), f.ty) {
                    problem(path.key(key), v.span(), msg);
                }
            }
        }
    }
    for f in schema.fields.iter().filter(|f| f.required) {
        if table.get(f.key).is_none() {
            problem(
                path.key(f.key),
                span.clone(),
                format!(
                    "missing required key `{}` for action `{}`",
                    f.key, schema.name
                ),
            );
        }
    }
}

fn integer(v: &DeValue<'_>) -> Option<Option<i128>> {
    match v {
        DeValue::Integer(i) => Some(i128::from_str_radix(i.as_str(), i.radix()).ok()),
        _ => None,
    }
}

/// Why `v` is not of type `ty`, if it is not.
pub fn type_error(v: &DeValue<'_>, ty: Ty) -> Option<String> {
    let wrong = || {
        Some(format!(
            "expected {}, found {}",
            ty.describe(),
            v.type_str()
        ))
    };
    let range = |lo: i128, hi: i128| match integer(v) {
        None => wrong(),
        Some(Some(n)) if (lo..=hi).contains(&n) => None,
        Some(Some(n)) => Some(format!("{n} is out of range: expected {}", ty.describe())),
        Some(None) => Some(format!("integer out of range: expected {}", ty.describe())),
    };
    match ty {
        Ty::Str if v.is_str() => None,
        Ty::Str => wrong(),
        Ty::Bool if v.is_bool() => None,
        Ty::Bool => wrong(),
        Ty::U32 => range(0, u32::MAX.into()),
        Ty::U64 => range(0, u64::MAX.into()),
        Ty::I32 => range(i32::MIN.into(), i32::MAX.into()),
        Ty::I64 => range(i64::MIN.into(), i64::MAX.into()),
        Ty::F64 => match v {
            DeValue::Integer(_) => None,
            DeValue::Float(f) => match f.as_str().parse::<f64>() {
                Ok(x) if x.is_finite() => None,
                _ => Some(format!("{} is not a finite number", f.as_str())),
            },
            _ => wrong(),
        },
        Ty::OneOf(allowed) => match v.as_str() {
            None => wrong(),
            Some(s) if allowed.contains(&s) => None,
            Some(s) => Some(format!(
                "unknown value `{s}`; valid: {}",
                allowed.join(", ")
            )),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Step;

    fn sample(ty: Ty) -> &'static str {
        match ty {
            Ty::Str => "\"x\"",
            Ty::U32 | Ty::U64 | Ty::I32 | Ty::I64 => "1",
            Ty::F64 => "0.5",
            Ty::Bool => "true",
            Ty::OneOf(v) => match v.first() {
                Some(&"oneway") => "\"oneway\"",
                _ => "\"?\"",
            },
        }
    }

    /// The schema table and `model::Action` agree: a step with every key of an action
    /// deserializes, and serializes back to exactly those keys.
    #[test]
    fn schema_matches_model() {
        for a in ACTIONS {
            let mut src = format!("at_ms = 5\naction = \"{}\"\n", a.name);
            for f in a.fields {
                src.push_str(&format!("{} = {}\n", f.key, sample(f.ty)));
            }
            let step: Step = toml::from_str(&src).unwrap_or_else(|e| panic!("{}: {e}", a.name));
            let back = toml::Value::try_from(&step).unwrap();
            let mut keys: Vec<&str> = back
                .as_table()
                .unwrap()
                .keys()
                .map(String::as_str)
                .collect();
            keys.sort_unstable();
            let mut want: Vec<&str> = COMMON_KEYS
                .iter()
                .copied()
                .chain(a.fields.iter().map(|f| f.key))
                .collect();
            want.sort_unstable();
            assert_eq!(keys, want, "action {}", a.name);
        }
    }

    #[test]
    fn integer_ranges() {
        fn v(s: &str) -> toml::de::DeValue<'_> {
            toml::de::DeValue::parse(s).unwrap().into_inner()
        }
        assert!(type_error(&v("4294967295"), Ty::U32).is_none());
        assert!(type_error(&v("4294967296"), Ty::U32).is_some());
        assert!(type_error(&v("-1"), Ty::U64).is_some());
        assert!(type_error(&v("-1"), Ty::I32).is_none());
        assert!(type_error(&v("0x10"), Ty::U32).is_none());
        assert!(type_error(&v("1"), Ty::F64).is_none());
        assert!(type_error(&v("nan"), Ty::F64).is_some());
    }
}
