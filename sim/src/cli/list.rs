//! `popsim list`.

use super::CmdResult;
use broker_core::{Behaviour, Fix, Release};
use std::fmt::Write as _;
use std::process::ExitCode;

pub(super) fn cmd_list() -> CmdResult {
    let mut out = String::from("Built-in scenarios:\n");
    let builtins = scenarios::builtins();
    let width = builtins.iter().map(|(n, _)| n.len()).max().unwrap_or(0);
    for (name, summary) in &builtins {
        let extra = scenarios::builtin(name)
            .map(|sc| {
                let mut parts = Vec::new();
                if !sc.replays.is_empty() {
                    parts.push(format!("replays {}", sc.replays.join(", ")));
                }
                if !sc.upstream.is_empty() {
                    parts.push(sc.upstream.join(" "));
                }
                if parts.is_empty() {
                    String::new()
                } else {
                    format!(" [{}]", parts.join("; "))
                }
            })
            .unwrap_or_default();
        let _ = writeln!(out, "  {name:width$}  {summary}{extra}");
    }
    out.push_str("\nHistorical behaviours (--bug NAME):\n");
    let width = Behaviour::ALL
        .iter()
        .map(|b| b.name().len())
        .max()
        .unwrap_or(0);
    for b in Behaviour::ALL {
        let i = b.info();
        let side = match i.side {
            broker_core::Side::Broker => "broker",
            broker_core::Side::Client => "client",
        };
        let releases: Vec<&str> = i.releases.iter().map(|r| r.name()).collect();
        let _ = writeln!(
            out,
            "  {:width$}  {side}  issue {} fixed by {}  in {}",
            i.name,
            i.issue,
            i.fix,
            releases.join(", ")
        );
    }
    out.push_str("\nProposed fixes (--fix NAME, or --fix all):\n");
    let width = Fix::ALL.iter().map(|f| f.name().len()).max().unwrap_or(0);
    for f in Fix::ALL {
        let i = f.info();
        let _ = writeln!(out, "  {:width$}  changes {}", i.name, i.changes);
    }
    out.push_str(&crate::explore::list_random_variants());
    out.push_str("\nRelease profiles (--release VERSION):\n");
    for r in Release::ALL {
        let bs: Vec<&str> = r.behaviours().iter().map(|b| b.name()).collect();
        let kv = if r.has_kv_pop_path() {
            ""
        } else {
            " (no KV pop path)"
        };
        let list = if bs.is_empty() {
            "every fix in".to_owned()
        } else {
            bs.join(", ")
        };
        let _ = writeln!(out, "  {:7} {list}{kv}", r.name());
    }
    print!("{out}");
    Ok(ExitCode::SUCCESS)
}
