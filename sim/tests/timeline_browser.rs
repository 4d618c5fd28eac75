//! The HTML timeline in a real browser. Every built-in scenario runs once (its first bug row
//! on, at its first pinned seed; with every fix in where it has no bug row), and its
//! timeline is loaded in headless Chromium with `#select=witness`, which makes the page's
//! script click the first witness mark (a note's when nothing is violated). The test reads
//! the DOM after the script ran (`--dump-dom`) and checks:
//! - the page is well-formed XHTML, and the script finished (`data-ready`) and raised no
//!   error (`data-error`, console);
//! - the selected mark is the first witness mark of the static page, and exactly its chain
//!   is highlighted: every mark of that chain (and of the same event), nothing else;
//! - the chain of a message holds every delivery of that message to that group in the
//!   history; the late-ack chain runs pop → CK → ack record → revive → retry copy.
//!
//! A screenshot of each page is kept under `target/tmp/timeline-browser/` (not committed).
//!
//! Without `chromium` on PATH the test says so and passes, unless POPSIM_REQUIRE_BROWSER
//! is set (CI sets it): then a missing browser fails it.

use reports::history::{EventKind, History};
use reports::render_timeline;
use sim::{run_seed, RunOptions};
use std::collections::BTreeMap;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// How long one browser run may take before it is killed.
const BROWSER_TIMEOUT: Duration = Duration::from_secs(90);

fn chromium() -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|d| d.join("chromium"))
        .find(|p| p.is_file())
}

/// Runs headless Chromium on `url` with a fresh profile; returns (stdout, stderr).
fn browse(bin: &Path, profile: &Path, extra: &[String], url: &str) -> (String, String) {
    let _ = std::fs::remove_dir_all(profile);
    std::fs::create_dir_all(profile).expect("a profile directory");
    let out_path = profile.with_extension("out");
    let err_path = profile.with_extension("err");
    let mut child = Command::new(bin)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--window-size=1400,1000",
            "--enable-logging=stderr",
            "--v=0",
        ])
        .arg(format!("--user-data-dir={}", profile.display()))
        .args(extra)
        .arg(url)
        .stdin(Stdio::null())
        .stdout(std::fs::File::create(&out_path).expect("stdout file"))
        .stderr(std::fs::File::create(&err_path).expect("stderr file"))
        .spawn()
        .expect("chromium starts");
    let start = Instant::now();
    loop {
        if child.try_wait().expect("waiting for chromium").is_some() {
            break;
        }
        if start.elapsed() > BROWSER_TIMEOUT {
            let _ = child.kill();
            let _ = child.wait();
            panic!("chromium did not finish in {BROWSER_TIMEOUT:?} on {url}");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let out = std::fs::read_to_string(&out_path).unwrap_or_default();
    let err = std::fs::read_to_string(&err_path).unwrap_or_default();
    let _ = std::fs::remove_dir_all(profile);
    (out, err)
}

/// One start tag: its name and attributes.
#[derive(Debug)]
struct Tag {
    name: String,
    attrs: BTreeMap<String, String>,
}

impl Tag {
    fn get(&self, k: &str) -> Option<&str> {
        self.attrs.get(k).map(String::as_str)
    }

    fn classes(&self) -> Vec<&str> {
        self.get("class").unwrap_or("").split(' ').collect()
    }
}

fn unescape(s: &str) -> String {
    s.replace("&quot;", "\"")
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&#39;", "'")
        .replace("&nbsp;", "\u{a0}")
        .replace("&amp;", "&")
}

/// The start tags of an HTML serialisation (Chromium's `--dump-dom`), script bodies
/// skipped. Enough for attribute checks; not a general HTML parser.
fn start_tags(html: &str) -> Vec<Tag> {
    let b = html.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while let Some(p) = html[i..].find('<').map(|p| p + i) {
        i = p + 1;
        if !b.get(i).is_some_and(u8::is_ascii_alphabetic) {
            continue;
        }
        let name_end = html[i..]
            .find(|c: char| c.is_whitespace() || c == '>' || c == '/')
            .map_or(html.len(), |e| e + i);
        let name = html[i..name_end].to_ascii_lowercase();
        let mut attrs = BTreeMap::new();
        let mut j = name_end;
        loop {
            while b.get(j).is_some_and(u8::is_ascii_whitespace) || b.get(j) == Some(&b'/') {
                j += 1;
            }
            if j >= b.len() || b[j] == b'>' {
                break;
            }
            let k_end = html[j..]
                .find(|c: char| c.is_whitespace() || c == '=' || c == '>')
                .map_or(html.len(), |e| e + j);
            let key = html[j..k_end].to_owned();
            j = k_end;
            if b.get(j) == Some(&b'=') && b.get(j + 1) == Some(&b'"') {
                let v_end = html[j + 2..].find('"').map_or(html.len(), |e| e + j + 2);
                attrs.insert(key, unescape(&html[j + 2..v_end]));
                j = v_end + 1;
            } else {
                attrs.insert(key, String::new());
            }
        }
        i = j;
        if name == "script" {
            i = html[i..].find("</script>").map_or(html.len(), |e| e + i);
        }
        out.push(Tag { name, attrs });
    }
    out
}

/// A mark as both pages show it: events, time, chain, glyph classes (no highlight).
type MarkId = (String, String, String, String);

fn mark_id(t: &Tag) -> MarkId {
    let glyph: Vec<&str> = t.classes().into_iter().filter(|c| *c != "hl").collect();
    (
        t.get("data-e").unwrap_or("").to_owned(),
        t.get("data-t").unwrap_or("").to_owned(),
        t.get("data-c").unwrap_or("").to_owned(),
        glyph.join(" "),
    )
}

/// The lane, chart and rule marks of a page (those with events).
fn page_marks(tags: &[Tag]) -> Vec<&Tag> {
    tags.iter()
        .filter(|t| t.get("data-e").is_some() && t.get("data-t").is_some())
        .collect()
}

/// What the script should pick for `#select=witness`: the witness mark of the earliest
/// event (a note's if there is none), a glyph before a window on a tie, then page order.
fn first_flagged<'a>(marks: &[&'a Tag]) -> Option<&'a Tag> {
    let key = |t: &Tag| {
        let e: u64 = t
            .get("data-e")
            .and_then(|e| e.split(' ').next())
            .and_then(|e| e.parse().ok())
            .unwrap_or(u64::MAX);
        (e, u8::from(t.get("data-s") == Some("w")))
    };
    for flag in ["w", "n"] {
        let best = marks
            .iter()
            .enumerate()
            .filter(|(_, t)| t.classes().contains(&flag))
            .min_by_key(|(i, t)| (key(t), *i))
            .map(|(_, t)| *t);
        if best.is_some() {
            return best;
        }
    }
    None
}

/// Deliveries of `msg` to `group` in the history, as event indexes.
fn deliveries(h: &History, msg: &str, group: &str) -> Vec<String> {
    (h.events.iter().enumerate())
        .filter(|(_, e)| {
            matches!(&e.kind, EventKind::Delivered { msg_id, group: g, .. } if msg_id == msg && g == group)
        })
        .map(|(i, _)| i.to_string())
        .collect()
}

/// Loads one built-in's timeline and checks it; returns a line for the log.
fn check_builtin(bin: &Path, dir: &Path, name: &str) -> String {
    let ctx = scenarios::Context::with_invariants(reports::invariant_names());
    let sc = scenarios::resolve(name, &ctx).expect("a built-in scenario");
    let bugs = sc
        .bug_rows()
        .first()
        .map(|r| r.bugs.clone())
        .unwrap_or_default();
    let seed = sc.seeds.first().copied().unwrap_or(1);
    let opts = RunOptions {
        behaviours: bugs
            .iter()
            .map(|b| b.parse().expect("a known behaviour"))
            .collect(),
        ..RunOptions::default()
    };
    let o = run_seed(&sc, seed, &opts);
    assert!(o.panic.is_none(), "{name}: {:?}", o.panic);
    let violated = o.results.iter().any(|r| r.is_violated());
    let html = render_timeline(&o.history, &o.results);
    let file = dir.join(format!("{name}.html"));
    std::fs::write(&file, &html).expect("the page is written");
    let url = format!("file://{}#select=witness", file.display());

    let xml = roxmltree::ParsingOptions {
        allow_dtd: true,
        ..roxmltree::ParsingOptions::default()
    };
    if let Err(e) = roxmltree::Document::parse_with_options(&html, xml) {
        panic!("{name}: the page is not well-formed XHTML: {e}");
    }
    let static_tags = start_tags(&html);
    let marks = page_marks(&static_tags);
    let first = first_flagged(&marks);
    if violated {
        assert!(first.is_some(), "{name}: a violation, but no witness mark");
    }

    let (dom, log) = browse(
        bin,
        &dir.join(format!("{name}.profile")),
        &["--dump-dom".into()],
        &url,
    );
    let tags = start_tags(&dom);
    let html_tag = tags
        .iter()
        .find(|t| t.name == "html")
        .unwrap_or_else(|| panic!("{name}: no DOM dumped; chromium said:\n{log}"));
    assert_eq!(html_tag.get("data-error"), None, "{name}: a script error");
    for line in log.lines().filter(|l| l.contains("CONSOLE")) {
        assert!(
            !line.contains("Uncaught") && !line.contains("Error"),
            "{name}: the console reports {line}"
        );
    }
    assert_eq!(
        html_tag.get("data-ready"),
        Some("1"),
        "{name}: the script did not finish"
    );

    let mut line = format!("{name} (seed {seed}, bugs {bugs:?}): script ran");
    if let Some(first) = first {
        let e0 = first
            .get("data-e")
            .and_then(|e| e.split(' ').next())
            .expect("a mark names its event");
        let chain = first.get("data-c").unwrap_or("");
        assert_eq!(
            html_tag.get("data-sel-e"),
            Some(e0),
            "{name}: selected event"
        );
        assert_eq!(
            html_tag.get("data-sel-c"),
            Some(chain),
            "{name}: selected chain"
        );
        let in_chain = |t: &Tag| {
            (!chain.is_empty() && t.get("data-c") == Some(chain))
                || t.get("data-e")
                    .is_some_and(|e| e.split(' ').any(|x| x == e0))
        };
        let mut want: Vec<MarkId> = marks
            .iter()
            .filter(|t| in_chain(t))
            .map(|t| mark_id(t))
            .collect();
        let dom_marks = page_marks(&tags);
        let mut lit: Vec<MarkId> = dom_marks
            .iter()
            .filter(|t| t.classes().contains(&"hl"))
            .map(|t| mark_id(t))
            .collect();
        want.sort();
        lit.sort();
        assert!(
            !lit.is_empty(),
            "{name}: the witness chain did not highlight"
        );
        assert_eq!(lit, want, "{name}: highlighted marks differ from the chain");
        assert_eq!(
            dom_marks.len(),
            marks.len(),
            "{name}: the script added or lost marks"
        );
        // A message's chain: every delivery of it to that group is lit.
        if chain.starts_with('m') {
            let (msg, group) = lane_of_chain(&static_tags, first);
            let lit_events: Vec<&str> = dom_marks
                .iter()
                .filter(|t| t.classes().contains(&"hl"))
                .filter_map(|t| t.get("data-e"))
                .flat_map(|e| e.split(' '))
                .collect();
            for d in deliveries(&o.history, &msg, &group) {
                assert!(
                    lit_events.contains(&d.as_str()),
                    "{name}: delivery {d} of {msg} to {group} is not in the lit chain"
                );
            }
            line.push_str(&format!(
                "; clicked event {e0}, {} marks of {msg} · {group} lit",
                lit.len()
            ));
        } else {
            line.push_str(&format!("; clicked event {e0}, {} marks lit", lit.len()));
        }
        if name == "late-ack-after-ck-flush" {
            // pop → CK → ack record → revive → retry copy.
            let firsts: Vec<(&str, bool)> = lit
                .iter()
                .map(|m| (m.3.split(' ').next().unwrap_or(""), m.3.contains("retry")))
                .collect();
            for (glyph, retry) in [
                ("pop", false),
                ("ck", false),
                ("ackrec", false),
                ("revive", false),
                ("pop", true),
            ] {
                assert!(
                    firsts.contains(&(glyph, retry)),
                    "{name}: no {glyph}{} in the chain: {lit:?}",
                    if retry { " retry" } else { "" }
                );
            }
        }
    }

    if name == "late-ack-after-ck-flush" {
        // Zoom and the message search from the URL: the axis and range follow, and every
        // other message's lane is hidden.
        let narrowed = format!("file://{}#t=60000..70000&msg=p1-0", file.display());
        let (dom, _) = browse(
            bin,
            &dir.join(format!("{name}.profile")),
            &["--dump-dom".into()],
            &narrowed,
        );
        assert!(
            dom.contains("showing 60.000s..70.000s of 0.000s..100.000s"),
            "{name}: the zoom from the URL"
        );
        let tags = start_tags(&dom);
        let lanes: Vec<&Tag> = tags
            .iter()
            .filter(|t| t.get("class") == Some("lm"))
            .collect();
        assert!(lanes.len() > 3);
        for l in lanes {
            let hidden = l.get("style").is_some_and(|s| s.contains("display: none"));
            let keep = l.get("data-k") == Some("c") || l.get("data-m") == Some("p1-0");
            assert_eq!(hidden, !keep, "{name}: lane {:?} with msg=p1-0", l.attrs);
        }
        line.push_str("; zoom and search from the URL work");
    }

    let png = dir.join(format!("{name}.png"));
    let _ = std::fs::remove_file(&png);
    let (_, log) = browse(
        bin,
        &dir.join(format!("{name}.profile")),
        &[format!("--screenshot={}", png.display())],
        &url,
    );
    let size = std::fs::metadata(&png).map_or(0, |m| m.len());
    assert!(
        size > 10_000,
        "{name}: no screenshot ({size} bytes); chromium said:\n{log}"
    );
    line
}

/// The (message, group) of the lane that holds `mark` in the static page.
fn lane_of_chain(tags: &[Tag], mark: &Tag) -> (String, String) {
    // Marks follow their lane's start tag; find the last lane tag before this mark.
    let pos = tags
        .iter()
        .position(|t| std::ptr::eq(t, mark))
        .expect("the mark is in the page");
    let lane = tags[..pos]
        .iter()
        .rev()
        .find(|t| t.get("class") == Some("lm"))
        .expect("a lane before the mark");
    (
        lane.get("data-m").unwrap_or("").to_owned(),
        lane.get("data-g").unwrap_or("").to_owned(),
    )
}

#[test]
fn every_builtin_timeline_runs_in_a_browser_and_highlights_the_witness_chain() {
    let Some(bin) = chromium() else {
        let required = std::env::var_os("POPSIM_REQUIRE_BROWSER").is_some();
        assert!(
            !required,
            "POPSIM_REQUIRE_BROWSER is set but no `chromium` is on PATH (apt-get install chromium)"
        );
        // Straight to stderr, past the test harness's capture, so the skip is seen.
        let _ = writeln!(
            std::io::stderr().lock(),
            "SKIPPED: no `chromium` on PATH, so the timeline was not tested in a browser \
             (install it, e.g. apt-get install chromium; set POPSIM_REQUIRE_BROWSER=1 to fail instead)"
        );
        return;
    };
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("timeline-browser");
    std::fs::create_dir_all(&dir).expect("the artifact directory");
    let names: Vec<&str> = scenarios::builtins().into_iter().map(|(n, _)| n).collect();
    assert!(names.len() >= 10, "{names:?}");
    for name in names {
        let line = check_builtin(&bin, &dir, name);
        eprintln!("{line}");
    }
    eprintln!("pages and screenshots: {}", dir.display());
}
