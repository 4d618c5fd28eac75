use super::render::{tick_step, GLYPHS, SCRIPT, STYLE};
use super::*;
use crate::history::{ConsumeOutcome, EventKind, OffsetUpdateMode};
use crate::testkit::{answered, ok, Rcpt, H, T};
use broker_core::{BrokerEvent, ResponseCode};
use std::collections::BTreeSet;

#[test]
fn escape_covers_markup_and_controls() {
    assert_eq!(
        escape("a<b>&\"c\"'\u{1}\n"),
        "a&lt;b&gt;&amp;&quot;c&quot;&#39;\u{FFFD}\n"
    );
}

/// Parses as XML; the `<!DOCTYPE html>` declaration is allowed.
fn parse(html: &str) -> roxmltree::Document<'_> {
    let opt = roxmltree::ParsingOptions {
        allow_dtd: true,
        ..roxmltree::ParsingOptions::default()
    };
    roxmltree::Document::parse_with_options(html, opt).expect("well-formed XHTML")
}

/// The element with this id.
fn by_id<'a>(doc: &'a roxmltree::Document<'a>, id: &str) -> roxmltree::Node<'a, 'a> {
    doc.descendants()
        .find(|n| n.attribute("id") == Some(id))
        .unwrap_or_else(|| panic!("no #{id}"))
}

/// The marks of the lanes (and the rules), in page order.
fn marks<'a>(doc: &'a roxmltree::Document<'a>) -> Vec<roxmltree::Node<'a, 'a>> {
    let lanes = by_id(doc, "lanes");
    let rules = by_id(doc, "rules");
    lanes
        .descendants()
        .chain(rules.descendants())
        .filter(|n| n.attribute("data-t").is_some() && n.attribute("data-e").is_some())
        .collect()
}

fn class(n: &roxmltree::Node) -> String {
    n.attribute("class").unwrap_or("").to_owned()
}

/// The glyph part of a class: without the highlight flags.
fn glyph(n: &roxmltree::Node) -> String {
    class(n)
        .split(' ')
        .filter(|c| !matches!(*c, "w" | "a" | "n"))
        .collect::<Vec<_>>()
        .join(" ")
}

fn num(n: &roxmltree::Node, attr: &str) -> u64 {
    n.attribute(attr)
        .unwrap_or_else(|| panic!("no {attr}"))
        .parse()
        .expect("a number")
}

/// Lane labels, top to bottom.
fn labels(doc: &roxmltree::Document) -> Vec<String> {
    by_id(doc, "bg")
        .descendants()
        .filter(|n| n.has_tag_name("text"))
        .filter_map(|n| n.text().map(str::to_owned))
        .collect()
}

/// A re-pop after an ack, with hostile strings where a scenario file could put them.
fn hostile() -> History {
    let mut h = H::new();
    h.meta.scenario = "evil<script>alert('x')</script>&\"".into();
    h.meta.behaviours = vec!["b<1>".into()];
    h.end(5_000, 20_000);
    h.at(0).produce("m<0>&", 0, 0);
    let d = h.at(1_000).pop("c1", "m<0>&", 0, 0);
    h.at(1_500).listener(&d);
    h.listener_done(&d, ConsumeOutcome::Success, false);
    h.at(2_000).ack(&d);
    h.at(4_000).pop("c1", "m<0>&", 0, 0);
    h.at(6_000).crash();
    h.at(6_500).restart();
    h.push(
        "broker",
        EventKind::Fault {
            description: "clog \u{1} </svg>".into(),
        },
    );
    h.build()
}

#[test]
fn markup_parses_as_xml_and_escapes_scenario_strings() {
    let h = hostile();
    let results = crate::invariants::check(&h, &[]);
    assert!(results.iter().any(|r| r.is_violated()));
    let html = render_timeline(&h, &results);
    let doc = parse(&html);
    let scripts: Vec<_> = doc
        .descendants()
        .filter(|n| n.has_tag_name("script"))
        .collect();
    assert_eq!(scripts.len(), 2, "the error hook and the page's own script");
    assert!(!html.contains("alert('x')</script>"), "escaped");
    assert!(html.contains("evil&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt;"));
    for attr in ["src=", "href=", "url(http", "@import"] {
        assert!(!html.contains(attr), "nothing loaded: {attr}");
    }
    for call in [
        "fetch(",
        "XMLHttpRequest",
        "import(",
        "WebSocket",
        "sendBeacon",
    ] {
        assert!(!SCRIPT.contains(call), "the script loads nothing: {call}");
    }
    assert!(labels(&doc).contains(&"m<0>& · g1".to_owned()));
    let witness = marks(&doc)
        .iter()
        .filter(|n| class(n).split(' ').any(|c| c == "w"))
        .count();
    assert!(witness >= 2, "the ack and the re-pop are witness marks");
    assert_eq!(html, render_timeline(&h, &results), "deterministic");
}

#[test]
fn script_and_style_fit_in_the_page() {
    assert!(
        !SCRIPT.contains("]]>") && !SCRIPT.contains("</"),
        "CDATA-safe"
    );
    assert!(!STYLE.contains('<') && !STYLE.contains('&'), "XML-safe CSS");
    for hook in ["data-ready", "data-sel-c", "data-sel-e", "select=witness"] {
        assert!(SCRIPT.contains(hook), "the tests' hook {hook}");
    }
}

/// Every kind of event, once or more: produce (also failed), pops of originals and retry
/// copies, listener runs (ok, failed, late, unfinished), acks (ok, error, timeout),
/// changeInvisibleTime (ok, failed), CKs, ack records, revive, skip, DLQ, commits, offset
/// updates (ok, false success, failed, never completed), resets, consumers, faults, crash
/// and restart; and enough plain messages to collapse.
fn everything() -> History {
    let mut h = H::new();
    h.end(50_000, 120_000);
    h.at(0).push(
        "c1",
        EventKind::ConsumerStarted {
            consumer: "c1".into(),
            group: "g1".into(),
        },
    );
    h.push(
        "faults",
        EventKind::Fault {
            description: "packet loss 0.02 (random)".into(),
        },
    );
    for i in 0..(MAX_MESSAGE_LANES as u64 + 40) {
        let m = format!("p{i}");
        h.at(100 + i).produce(&m, 1, i);
        let d = h.at(200 + i * 10).pop("c1", &m, 1, i);
        h.at(300 + i * 10).ack(&d);
    }
    h.at(3_000).produce("m0", 0, 0);
    h.produce_failed("lost", 0);
    let d = h.at(4_000).pop("c1", "m0", 0, 0);
    let ck = h.ck_of(&d);
    h.broker(BrokerEvent::CkBuffered {
        at: 4_000,
        ck: ck.clone().into(),
    });
    h.at(4_100).listener(&d);
    h.at(4_600)
        .listener_done(&d, ConsumeOutcome::Failure, false);
    h.ack_result(&d, answered(ResponseCode::SystemError, "busy"));
    h.at(4_700).ack_sent(&d);
    h.ack_result(&d, crate::history::RpcOutcome::Timeout);
    h.broker(BrokerEvent::AckMergedInBuffer {
        at: 4_700,
        ck: ck.clone().into(),
        ack_offset: 0,
    });
    h.at(5_000).broker(BrokerEvent::CkWritten {
        at: 5_000,
        ck: ck.clone().into(),
        revive_qid: 0,
        revive_offset: 0,
        deliver_at: 14_000,
        reason: "putCkToStore".into(),
    });
    for (bn, t) in [(None, 5_000), (Some("broker-a".to_owned()), 5_001)] {
        h.at(t).broker(BrokerEvent::AckWritten {
            at: t,
            topic: T.into(),
            group: "g1".into(),
            queue_id: 0,
            start_offset: 0,
            pop_time: 4_000,
            ack_offsets: vec![0].into(),
            broker_name: bn.map(broker_core::Name::from),
            revive_qid: 0,
            revive_offset: 1,
            deliver_at: t,
            batch: false,
            reason: "putAckToStore".into(),
        });
    }
    let n = h.at(6_000).change_invisible(&d, 5_000);
    h.at(6_500).push(
        "c1",
        EventKind::ChangeInvisibleResult {
            consumer: "c1".into(),
            group: "g1".into(),
            msg_id: "m0".into(),
            receipt: n.receipt.clone().into(),
            invisible_time: 1_000,
            new_receipt: None,
            outcome: answered(ResponseCode::SystemError, "no"),
        },
    );
    h.at(14_000).revive(&n, 0, 1);
    let r = h.at(15_000).pop_retry("c1", "m0", 0, 1);
    h.at(15_100).listener(&r);
    h.at(26_000)
        .listener_done(&r, ConsumeOutcome::Success, true);
    let r2 = h.at(27_000).pop_retry("c1", "m0", 1, 2);
    h.skip(&r2, "reconsumeTimes 2 > maxReconsumeTimes 1");
    let r3 = h.at(28_000).pop_retry("c1", "m0", 2, 3);
    h.dlq(&r3);
    h.at(29_000).listener(&r3);
    h.at(30_000).commit("g1", 0, 1, "PopBufferMergeService");
    for (call, outcome, sees) in [
        (1, Some(ok()), true),
        (2, Some(crate::history::RpcOutcome::Timeout), true),
        (3, Some(answered(ResponseCode::SystemError, "x")), false),
    ] {
        h.at(31_000 + call * 100)
            .update_started(call, OffsetUpdateMode::Future, "g1", 0, 1);
        h.at(31_050 + call * 100)
            .update_completed(call, outcome, sees);
    }
    h.at(32_000)
        .update_started(4, OffsetUpdateMode::Sync, "g1", 0, 1);
    h.at(33_000).reset("g1", 0, 0);
    h.at(34_000).reset_consumed("g1", 0, 0);
    h.at(35_000).push(
        "faults",
        EventKind::Fault {
            description: "clog broker (random) until 37000 ms".into(),
        },
    );
    // A message near the crash, so it is drawn rather than collapsed.
    h.at(35_500).produce("near", 3, 0);
    let d = h.at(35_600).pop("c1", "near", 3, 0);
    h.at(35_700).listener(&d);
    h.at(35_800)
        .listener_done(&d, ConsumeOutcome::Success, false);
    h.ack(&d);
    h.at(36_000).crash();
    h.at(37_000).push(
        "faults",
        EventKind::Fault {
            description: "unclog broker (random)".into(),
        },
    );
    h.at(38_000).restart();
    h.persist();
    h.broker(BrokerEvent::ReviveOffsetCommitted {
        at: 38_000,
        revive_qid: 0,
        offset: 1,
    });
    h.push(
        "c1",
        EventKind::ConsumerStopped {
            consumer: "c1".into(),
            group: "g1".into(),
        },
    );
    h.build()
}

#[test]
fn the_legend_names_every_glyph_and_every_glyph_is_drawn() {
    let h = everything();
    let mut results = crate::invariants::check(&h, &[]);
    // Routine bookkeeping is drawn when a verdict cites it.
    let cited: Vec<usize> = (h.events.iter().enumerate())
        .filter(|(_, e)| {
            matches!(
                e.kind,
                EventKind::Broker(
                    BrokerEvent::OffsetsPersisted { .. }
                        | BrokerEvent::ReviveOffsetCommitted { .. }
                )
            )
        })
        .map(|(i, _)| i)
        .collect();
    assert_eq!(cited.len(), 2);
    let uncited = render_timeline(&h, &[]);
    let uncited = parse(&uncited);
    assert!(
        !marks(&uncited)
            .iter()
            .any(|n| matches!(glyph(n).as_str(), "persist" | "revive-commit")),
        "not drawn unless cited"
    );
    results.push(crate::invariants::InvariantResult {
        name: "made-up",
        statement: "a verdict that cites bookkeeping",
        status: crate::invariants::Status::Violated,
        witness: Some(crate::invariants::Witness {
            msg_id: None,
            summary: "cites a persist and a revive commit".into(),
            events: cited,
        }),
        notes: Vec::new(),
        affected: Default::default(),
    });
    let html = render_timeline(&h, &results);
    let doc = parse(&html);
    let legend: BTreeSet<&str> = GLYPHS.iter().map(|g| g.0).collect();
    let mut drawn: BTreeSet<String> = marks(&doc).iter().map(glyph).collect();
    drawn.extend(
        by_id(&doc, "lanes")
            .descendants()
            .filter(|n| class(n) == "sum")
            .map(|n| class(&n)),
    );
    let legend_owned: BTreeSet<String> = legend.iter().map(|s| (*s).to_owned()).collect();
    let missing: Vec<_> = drawn.difference(&legend_owned).collect();
    assert!(missing.is_empty(), "not in the legend: {missing:?}");
    let unused: Vec<_> = legend_owned.difference(&drawn).collect();
    assert!(
        unused.is_empty(),
        "this history draws every glyph: {unused:?}"
    );
    // The legend is on the page, one item each, and tells a failed produce from a fault.
    let items: Vec<String> = doc
        .descendants()
        .filter(|n| {
            n.has_tag_name("li") && n.parent().and_then(|p| p.attribute("class")) == Some("legend")
        })
        .filter_map(|n| n.last_child().and_then(|c| c.text()).map(str::to_owned))
        .collect();
    for text in [
        "produce failed",
        "fault injected or healed",
        "ack timeout (no answer)",
        "window set by changeInvisibleTime",
    ] {
        assert!(items.iter().any(|i| i == text), "{text}: {items:?}");
    }
}

/// Bug (b)'s shape: every listener run (15 s) outlives its receipt (10 s); a retry copy
/// comes at 13 s, so each run overlaps the next.
fn overrun() -> (History, Vec<(u64, u64)>) {
    let mut h = H::new();
    h.consumer("c1", "g1", crate::history::ConsumerKind::Concurrent, 0);
    h.end(60_000, 80_000);
    h.at(0).produce("m1", 0, 0);
    let mut runs = Vec::new();
    let mut d: Rcpt = h.at(1_000).pop("c1", "m1", 0, 0);
    let mut pending: Vec<(Rcpt, u64)> = Vec::new();
    for i in 0..4u64 {
        let t = 1_000 + i * 13_000;
        if i > 0 {
            h.at(t - 1_000).revive(&d, i - 1, u32::try_from(i).unwrap());
            d = h
                .at(t)
                .pop_retry("c1", "m1", i - 1, u32::try_from(i).unwrap());
        }
        // Earlier runs that finish before this start.
        pending.retain(|(r, end)| {
            if *end <= t + 10 {
                h.at(*end).listener_done(r, ConsumeOutcome::Success, true);
                false
            } else {
                true
            }
        });
        h.at(t + 10).listener(&d);
        pending.push((d.clone(), t + 15_010));
        runs.push((t + 10, t + 15_010));
    }
    for (r, end) in pending {
        h.at(end).listener_done(&r, ConsumeOutcome::Success, true);
    }
    (h.build(), runs)
}

#[test]
fn listener_runs_pair_by_receipt_and_their_starts_are_witness_marks() {
    let (h, runs) = overrun();
    let results = crate::invariants::check(&h, &[]);
    assert!(results
        .iter()
        .any(|r| r.name == "bounded-deliveries" && r.is_violated()));
    let html = render_timeline(&h, &results);
    let doc = parse(&html);
    let spans: Vec<(u64, u64)> = marks(&doc)
        .iter()
        .filter(|n| class(n).starts_with("listen"))
        .map(|n| (num(n, "data-t"), num(n, "data-u")))
        .collect();
    let mut got = spans.clone();
    got.sort_unstable();
    assert_eq!(got, runs, "15 s runs, the first included");
    let witness: Vec<_> = marks(&doc)
        .into_iter()
        .filter(|n| class(n).starts_with("listen") && class(n).split(' ').any(|c| c == "w"))
        .collect();
    assert_eq!(witness.len(), 4, "every listener start is a witness event");
    // Overlapping runs stack: no two overlapping spans share a row.
    let rows: Vec<(u64, u64, u64)> = marks(&doc)
        .iter()
        .filter(|n| class(n).starts_with("listen"))
        .map(|n| (num(n, "data-t"), num(n, "data-u"), num(n, "data-r")))
        .collect();
    for a in &rows {
        for b in &rows {
            if a != b && a.0 < b.1 && b.0 < a.1 {
                assert_ne!(a.2, b.2, "{a:?} and {b:?} overlap in one row");
            }
        }
    }
    // The witness lane is shaded and its label marked.
    let lane = by_id(&doc, "bg")
        .children()
        .find(|n| n.descendants().any(|t| t.text() == Some("m1 · g1")))
        .expect("m1's lane");
    let rect = lane.children().find(|c| c.has_tag_name("rect")).unwrap();
    assert!(
        class(&rect).split(' ').any(|c| c == "w"),
        "{}",
        class(&rect)
    );
    assert!(html.contains("Witness marks are red and their lanes shaded red"));
}

#[test]
fn glyphs_at_the_same_time_stack_in_rows() {
    let mut h = H::new();
    h.at(1_000).produce("m1", 0, 0);
    let d = h.at(1_000).pop("c1", "m1", 0, 0);
    let ck = h.ck_of(&d);
    h.broker(BrokerEvent::CkBuffered {
        at: 1_000,
        ck: ck.into(),
    });
    h.at(1_001).ack(&d);
    let html = render_timeline(&h.build(), &[]);
    let doc = parse(&html);
    let points: Vec<(String, u64)> = marks(&doc)
        .iter()
        .filter(|n| n.attribute("data-u").is_none())
        .map(|n| (glyph(n), num(n, "data-r")))
        .collect();
    let rows: BTreeSet<u64> = points.iter().map(|p| p.1).collect();
    assert_eq!(
        rows.len(),
        4,
        "produce, pop, CK, ack each in a row: {points:?}"
    );

    // Identical glyphs may cover each other (a run of commits), different ones may not.
    let mut h = H::new();
    for t in [1_000, 1_001, 1_002] {
        h.at(t).commit("g1", 0, 1, "PopBufferMergeService");
    }
    h.at(1_002).reset("g1", 0, 0);
    let html = render_timeline(&h.build(), &[]);
    let doc = parse(&html);
    let rows: Vec<(String, u64)> = marks(&doc)
        .iter()
        .map(|n| (glyph(n), num(n, "data-r")))
        .collect();
    assert!(
        rows.iter().filter(|r| r.0 == "commit").all(|r| r.1 == 0),
        "{rows:?}"
    );
    assert!(
        rows.iter().filter(|r| r.0 == "reset").all(|r| r.1 > 0),
        "{rows:?}"
    );
}

/// 300 plain messages, one acked and revived (the witness), one redelivered after a lapse
/// near a clog, and a note-free run otherwise.
fn crowd() -> History {
    let mut h = H::new();
    h.end(100_000, 200_000);
    for i in 0..300u64 {
        let m = format!("p{i}");
        h.at(i * 10).produce(&m, 0, i);
        let d = h.at(i * 10 + 5).pop("c1", &m, 0, i);
        h.at(i * 10 + 8).ack(&d);
    }
    h.at(40_000).push(
        "faults",
        EventKind::Fault {
            description: "pause c1 for 2000 ms (random)".into(),
        },
    );
    h.at(42_000).push(
        "faults",
        EventKind::Fault {
            description: "resume c1 (random)".into(),
        },
    );
    h.at(40_500).produce("slow", 1, 0);
    let d = h.at(41_000).pop("c1", "slow", 1, 0);
    h.at(52_000).revive(&d, 0, 1);
    let r = h.at(53_000).pop_retry("c1", "slow", 0, 1);
    h.at(53_100).ack(&r);
    h.at(60_000).produce("bad", 2, 0);
    let d = h.at(61_000).pop("c1", "bad", 2, 0);
    h.at(62_000).ack(&d);
    h.at(73_000).revive(&d, 1, 1);
    h.build()
}

#[test]
fn lanes_go_by_relevance_and_the_rest_collapse() {
    let h = crowd();
    let results = crate::invariants::check(&h, &[]);
    assert!(results
        .iter()
        .any(|r| r.name == "no-redelivery-after-ack" && r.is_violated()));
    let html = render_timeline(&h, &results);
    let doc = parse(&html);
    let l = labels(&doc);
    assert_eq!(l[0], "cluster");
    let msg_lanes: Vec<&String> = l
        .iter()
        .filter(|s| s.contains(" · g1") && !s.contains('/'))
        .collect();
    assert_eq!(
        msg_lanes[0], "bad · g1",
        "the affected message first: {l:?}"
    );
    assert_eq!(
        msg_lanes[1], "slow · g1",
        "then the one revived near the pause: {l:?}"
    );
    assert!(
        l.iter().any(|s| s == "300 messages acked once · g1"),
        "the rest in one summary lane: {l:?}"
    );
    assert!(
        html.contains("300 message lanes collapsed"),
        "and the page says so"
    );
    // A summary lane draws its messages as a histogram.
    assert!(by_id(&doc, "lanes")
        .descendants()
        .any(|n| class(&n) == "sum"));
}

#[test]
fn narrowing_to_a_window_or_a_message() {
    let h = crowd();
    let results = crate::invariants::check(&h, &[]);
    let window = TimelineOptions {
        window: Some(parse_window("50s..70s").unwrap()),
        msg: None,
    };
    let html = render_timeline_with(&h, &results, &window).unwrap();
    let doc = parse(&html);
    for m in marks(&doc) {
        let (t, u) = (
            num(&m, "data-t"),
            m.attribute("data-u")
                .map_or(num(&m, "data-t"), |u| u.parse().unwrap()),
        );
        assert!(u >= 50_000 && t <= 70_000, "{t}..{u} is outside 50s..70s");
    }
    assert!(html.contains("Narrowed to the window 50.000s..70.000s"));
    assert!(
        !labels(&doc).iter().any(|l| l.starts_with("p1 ")),
        "no lane without a mark in the window"
    );

    let one = TimelineOptions {
        window: None,
        msg: Some("slow".into()),
    };
    let html = render_timeline_with(&h, &results, &one).unwrap();
    let l = labels(&parse(&html));
    assert_eq!(l, ["cluster", "slow · g1"]);

    let nope = TimelineOptions {
        window: None,
        msg: Some("p9999".into()),
    };
    let err = render_timeline_with(&h, &results, &nope).unwrap_err();
    assert!(matches!(err, TimelineError::Msg(_)));
    assert_eq!(
        err.to_string(),
        "no message `p9999` in this run (its ids look like p0, p1, p2)"
    );
    let late = TimelineOptions {
        window: Some(parse_window("500s..").unwrap()),
        msg: None,
    };
    let err = render_timeline_with(&h, &results, &late).unwrap_err();
    assert_eq!(
        err.to_string(),
        "the window starts at 500.000s, but the run ended at 200.000s"
    );
}

#[test]
fn windows_and_times_parse_with_clear_errors() {
    assert_eq!(parse_time("60s"), Ok(60_000));
    assert_eq!(parse_time("1.5s"), Ok(1_500));
    assert_eq!(parse_time("250ms"), Ok(250));
    assert_eq!(parse_time("2m"), Ok(120_000));
    assert_eq!(
        parse_window("60s..70s"),
        Ok(TimeWindow {
            from: 60_000,
            to: Some(70_000)
        })
    );
    assert_eq!(
        parse_window("..1s"),
        Ok(TimeWindow {
            from: 0,
            to: Some(1_000)
        })
    );
    assert_eq!(
        parse_window("5s.."),
        Ok(TimeWindow {
            from: 5_000,
            to: None
        })
    );
    assert_eq!(
        parse_window("60x..70s").unwrap_err(),
        "the start: `60x` is not a time: expected e.g. 60s, 1.5s, 1500ms or 2m"
    );
    assert_eq!(
        parse_window("60s..-1s").unwrap_err(),
        "the end: `-1s` is not a time: expected e.g. 60s, 1.5s, 1500ms or 2m"
    );
    assert_eq!(
        parse_window("70s..60s").unwrap_err(),
        "the window is empty: its start 70.000s is not before its end 60.000s"
    );
    assert_eq!(
        parse_window("60s").unwrap_err(),
        "`60s` is not a window: expected START..END, e.g. 60s..70s"
    );
    for bad in ["60", "s", "1e3s", "1.2.3s", ""] {
        assert!(parse_time(bad).is_err(), "{bad}");
    }
    assert!(parse_msg_id(" ").is_err());
    assert!(parse_msg_id("a b").is_err());
    assert_eq!(parse_msg_id("p1-0").as_deref(), Ok("p1-0"));
}

#[test]
fn a_message_lane_is_one_chain_and_an_offset_call_another() {
    let h = everything();
    let html = render_timeline(&h, &crate::invariants::check(&h, &[]));
    let doc = parse(&html);
    // Every mark of m0's lane is in one chain, and no other lane's mark is.
    let lane = by_id(&doc, "lanes")
        .children()
        .find(|g| g.attribute("data-m") == Some("m0"))
        .expect("m0's lane");
    let chains: BTreeSet<&str> = lane
        .descendants()
        .filter_map(|n| n.attribute("data-c"))
        .collect();
    assert_eq!(chains.len(), 1, "{chains:?}");
    let c = chains.into_iter().next().unwrap();
    let elsewhere = marks(&doc)
        .iter()
        .filter(|n| n.attribute("data-c") == Some(c))
        .filter(|n| !n.ancestors().any(|a| a == lane))
        .count();
    assert_eq!(elsewhere, 0);
    let classes: BTreeSet<String> = lane
        .descendants()
        .filter(|n| n.attribute("data-c") == Some(c))
        .map(|n| glyph(&n))
        .collect();
    for want in ["pop", "ckbuf", "ck", "ackrec", "revive", "pop retry"] {
        assert!(classes.contains(want), "{want} in the chain: {classes:?}");
    }
    // An ack's diamond stands for the request and its answer.
    let acks: Vec<_> = lane
        .descendants()
        .filter(|n| glyph(n).starts_with("ack ") || glyph(n) == "ack")
        .filter_map(|n| n.attribute("data-e"))
        .collect();
    assert!(acks.iter().any(|e| e.split(' ').count() == 2), "{acks:?}");
    // An offset update's start and completion are one span, its own chain.
    let upd: Vec<_> = marks(&doc)
        .into_iter()
        .filter(|n| class(n).starts_with("upd"))
        .collect();
    assert_eq!(upd.len(), 4);
    assert!(upd
        .iter()
        .all(|n| n.attribute("data-c").is_some_and(|c| c.starts_with('u'))));
    assert_eq!(
        upd.iter().filter(|n| glyph(n) == "upd open").count(),
        1,
        "the call that never completed runs to the end"
    );
}

#[test]
fn tick_steps_are_round() {
    assert_eq!(tick_step(100_000), 10_000);
    assert_eq!(tick_step(12), 1);
    assert_eq!(tick_step(30_000), 5_000);
}
