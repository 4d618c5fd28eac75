//! Bad input: every error names the file, the line and column, and the key, and says what is
//! wrong (listing the valid choices where there are few).

use scenarios::{load_str, Context, IssueKind, ScenarioError};

const INVARIANTS: &[&str] = &[
    "no-loss",
    "no-redelivery-after-ack",
    "bounded-deliveries",
    "revive-bookkeeping",
    "reset-takes-effect",
    "reset-leaves-other-queues",
    "orderly-order",
    "orderly-commit-safety",
    "offset-commit-durable",
    "offset-api-liveness",
    "revive-progress",
    "fifo-progress",
    "delivery-integrity",
    "dlq-accounting",
];

/// A valid scenario; the tests edit it in place so line numbers stay put. Steps and other
/// tables are appended from line 37.
const BASE: &str = r#"name = "bad"
duration_ms = 60_000
quiet_period_ms = 10_000

[[topics]]
name = "t"
queues = 2

[[groups]]
name = "g"

[[producers]]
name = "p"
topic = "t"
messages = 10

[[consumers]]
name = "c1"
kind = "scripted"
group = "g"
topic = "t"

[[consumers]]
name = "c2"
kind = "concurrent"
group = "g"
topic = "t"

[[clients]]
name = "admin"
kind = "admin"

[[clients]]
name = "offsets"
kind = "offset"

"#;

fn ctx() -> Context {
    Context::with_invariants(INVARIANTS.iter().copied())
}

fn load(src: &str) -> Result<scenarios::Scenario, ScenarioError> {
    load_str("bad.toml", src, &ctx())
}

/// `src` fails with an issue at `line:col` on `key` whose text contains every `needle`.
#[track_caller]
fn fails(src: &str, line: usize, col: usize, key: &str, needles: &[&str]) -> ScenarioError {
    let err = load(src).expect_err("should not load");
    let text = err.to_string();
    let prefix = format!("bad.toml:{line}:{col}: {key}: ");
    let line_text = text
        .lines()
        .find(|l| l.starts_with(&prefix))
        .unwrap_or_else(|| panic!("no issue starting with {prefix:?} in:\n{text}"));
    for n in needles {
        assert!(line_text.contains(n), "{n:?} not in {line_text:?}");
    }
    assert_eq!(err.exit_code(), 2);
    err
}

fn edit(from: &str, to: &str) -> String {
    assert!(BASE.contains(from), "{from:?} not in BASE");
    BASE.replacen(from, to, 1)
}

fn with(extra: &str) -> String {
    format!("{BASE}{extra}")
}

#[test]
fn base_is_valid() {
    load(BASE).unwrap();
}

#[test]
fn syntax_error() {
    let err = fails(
        &edit("duration_ms = 60_000", "duration_ms = 60 000"),
        2,
        15,
        "duration_ms",
        &["syntax error"],
    );
    assert_eq!(err.issues()[0].kind, IssueKind::Syntax);
}

#[test]
fn syntax_error_in_an_array_of_tables() {
    fails(
        &edit("name = \"c2\"", "name = \"c2"),
        24,
        11,
        "consumers[1].name",
        &["syntax error", "string"],
    );
}

#[test]
fn unknown_top_level_key() {
    let err = fails(
        &format!("durations_ms = 5\n{BASE}"),
        1,
        1,
        "durations_ms",
        &[
            "unknown key `durations_ms`",
            "valid keys: name, description, replays",
        ],
    );
    assert_eq!(err.issues()[0].kind, IssueKind::Schema);
}

#[test]
fn unknown_key_in_a_consumer() {
    fails(
        &edit(
            "kind = \"concurrent\"",
            "kind = \"concurrent\"\npop_invisble_time_ms = 5",
        ),
        26,
        1,
        "consumers[1].pop_invisble_time_ms",
        &["unknown key", "pop_invisible_time_ms", "consume_time_ms"],
    );
}

#[test]
fn unknown_broker_key() {
    fails(
        &with("[broker]\nreviveQueueNm = 4\n"),
        38,
        1,
        "broker.reviveQueueNm",
        &[
            "unknown key `reviveQueueNm`",
            "reviveQueueNum",
            "enablePopBufferMerge",
        ],
    );
}

#[test]
fn wrong_type() {
    fails(
        &edit("messages = 10", "messages = \"ten\""),
        15,
        12,
        "producers[0].messages",
        &["wrong type", "string"],
    );
}

#[test]
fn negative_number_for_an_unsigned_key() {
    fails(
        &edit("messages = 10", "messages = -5"),
        15,
        12,
        "producers[0].messages",
        &["-5", "non-negative"],
    );
}

#[test]
fn bad_enum_value_lists_the_variants() {
    fails(
        &edit("kind = \"scripted\"", "kind = \"push\""),
        19,
        8,
        "consumers[0].kind",
        &[
            "unknown value `push`",
            "concurrent, scripted, grpc-push, grpc-simple",
        ],
    );
}

#[test]
fn missing_required_key() {
    fails(
        &BASE.replacen("duration_ms = 60_000\n", "\n", 1),
        1,
        1,
        "duration_ms",
        &["missing required key"],
    );
    fails(
        &edit("kind = \"concurrent\"\n", "\n"),
        23,
        1,
        "consumers[1].kind",
        &["missing required key `kind`"],
    );
}

#[test]
fn unknown_action() {
    fails(
        &with("[[steps]]\nat_ms = 1_000\naction = \"explode\"\n"),
        39,
        10,
        "steps[0].action",
        &["unknown action `explode`", "produce, pop, ack"],
    );
}

#[test]
fn unknown_key_for_an_action() {
    fails(
        &with("[[steps]]\nat_ms = 1_000\naction = \"pop\"\nconsumer = \"c1\"\nmaxx = 3\n"),
        41,
        1,
        "steps[0].maxx",
        &[
            "unknown key `maxx` for action `pop`",
            "valid: at_ms, action, consumer, max, queue, invisible_time_ms",
        ],
    );
}

#[test]
fn missing_key_for_an_action() {
    fails(
        &with(
            "[[steps]]\nat_ms = 1_000\naction = \"reset-offset\"\ngroup = \"g\"\ntopic = \"t\"\n",
        ),
        37,
        1,
        "steps[0].client",
        &["missing required key `client` for action `reset-offset`"],
    );
}

/// `offset` is required for a reset of one queue only: every queue is reset by timestamp.
#[test]
fn a_reset_of_one_queue_needs_an_offset() {
    fails(
        &with("[[steps]]\nat_ms = 1_000\naction = \"reset-offset\"\nclient = \"admin\"\ngroup = \"g\"\ntopic = \"t\"\nqueue = 0\n"),
        37,
        1,
        "steps[0].offset",
        &["missing required key `offset` for a reset of queue 0"],
    );
}

#[test]
fn wrong_type_in_a_step() {
    fails(
        &with("[[steps]]\nat_ms = 1_000\naction = \"pop\"\nconsumer = 1\n"),
        40,
        12,
        "steps[0].consumer",
        &["expected a string, found integer"],
    );
}

#[test]
fn negative_step_time() {
    fails(
        &with("[[steps]]\nat_ms = -5\naction = \"crash\"\n"),
        38,
        9,
        "steps[0].at_ms",
        &["-5 is out of range"],
    );
}

#[test]
fn unknown_update_mode() {
    fails(
        &with("[[steps]]\nat_ms = 1\naction = \"update-offset\"\nclient = \"offsets\"\nmode = \"maybe\"\ngroup = \"g\"\ntopic = \"t\"\n"),
        41,
        8,
        "steps[0].mode",
        &["unknown value `maybe`", "oneway, sync, future"],
    );
}

#[test]
fn unknown_consumer_in_a_step() {
    fails(
        &with("[[steps]]\nat_ms = 1_000\naction = \"pop\"\nconsumer = \"c9\"\n"),
        40,
        12,
        "steps[0].consumer",
        &["unknown consumer `c9`", "valid: c1"],
    );
}

#[test]
fn pop_step_for_a_looping_consumer() {
    fails(
        &with("[[steps]]\nat_ms = 1_000\naction = \"ack\"\nconsumer = \"c2\"\n"),
        40,
        12,
        "steps[0].consumer",
        &[
            "`c2` is concurrent",
            "only scripted and grpc-simple consumers",
            "stepped: c1",
        ],
    );
}

#[test]
fn the_orderly_kind_names_its_replacement() {
    fails(
        &edit("kind = \"concurrent\"", "kind = \"orderly\""),
        25,
        8,
        "consumers[1].kind",
        &[
            "`orderly` follows no client anyone runs",
            "never pops with order = true",
            "kind = \"grpc-push\" with fifo = true",
            "valid: concurrent, scripted, grpc-push, grpc-simple",
        ],
    );
}

#[test]
fn batch_ack_is_the_proxys_not_a_consumers() {
    fails(
        &edit(
            "kind = \"concurrent\"\ngroup = \"g\"\ntopic = \"t\"\n",
            "kind = \"concurrent\"\ngroup = \"g\"\ntopic = \"t\"\nbatch_ack = true\n",
        ),
        28,
        13,
        "consumers[1].batch_ack",
        &["only the proxy batch-acks", "[proxy] enableBatchAck = true"],
    );
    fails(
        &with("[swarm]\nbatch_ack_percent = 30\n"),
        38,
        21,
        "swarm.batch_ack_percent",
        &["use `proxy_batch_ack_percent`"],
    );
}

#[test]
fn grpc_keys_belong_to_grpc_consumers() {
    fails(
        &edit(
            "kind = \"concurrent\"\ngroup = \"g\"\ntopic = \"t\"\n",
            "kind = \"concurrent\"\ngroup = \"g\"\ntopic = \"t\"\nfifo = true\n",
        ),
        28,
        8,
        "consumers[1].fifo",
        &["a concurrent consumer pops non-orderly"],
    );
    fails(
        &edit(
            "kind = \"concurrent\"\ngroup = \"g\"\ntopic = \"t\"\n",
            "kind = \"grpc-push\"\ngroup = \"g\"\ntopic = \"t\"\nawait_duration_ms = 5_000\n",
        ),
        28,
        21,
        "consumers[1].await_duration_ms",
        &["only a grpc-simple consumer"],
    );
    fails(
        &with("[proxy]\nenableProxyAutoRenew = false\n")
            .replace("kind = \"concurrent\"", "kind = \"grpc-push\""),
        25,
        8,
        "consumers[1].kind",
        &["enableProxyAutoRenew = false", "ILLEGAL_INVISIBLE_TIME"],
    );
}

#[test]
fn grpc_simple_steps() {
    let simple = edit("kind = \"scripted\"", "kind = \"grpc-simple\"");
    load(&format!(
        "{simple}[[steps]]\nat_ms = 1_000\naction = \"pop\"\nconsumer = \"c1\"\nmax = 4\n"
    ))
    .unwrap();
    fails(
        &format!(
            "{simple}[[steps]]\nat_ms = 1_000\naction = \"ack\"\nconsumer = \"c1\"\nbatch = true\n"
        ),
        41,
        9,
        "steps[0].batch",
        &["one message per call", "enableBatchAck"],
    );
    fails(
        &format!(
            "{simple}[[steps]]\nat_ms = 1_000\naction = \"pop\"\nconsumer = \"c1\"\nqueue = 1\n"
        ),
        41,
        9,
        "steps[0].queue",
        &["names no queue"],
    );
    fails(
        &format!(
            "{simple}[[steps]]\nat_ms = 1_000\naction = \"start-consumer\"\nconsumer = \"c1\"\n"
        ),
        40,
        12,
        "steps[0].consumer",
        &["`c1` is grpc-simple"],
    );
}

#[test]
fn start_step_for_a_scripted_consumer() {
    fails(
        &with("[[steps]]\nat_ms = 1_000\naction = \"start-consumer\"\nconsumer = \"c1\"\n"),
        40,
        12,
        "steps[0].consumer",
        &["`c1` is scripted"],
    );
}

#[test]
fn reset_with_an_offset_client() {
    fails(
        &with("[[steps]]\nat_ms = 1\naction = \"reset-offset\"\nclient = \"offsets\"\ngroup = \"g\"\ntopic = \"t\"\noffset = 0\n"),
        40,
        10,
        "steps[0].client",
        &["`offsets` is an offset client", "needs an admin client", "valid: admin"],
    );
}

#[test]
fn reset_of_an_unknown_group_and_queue() {
    let src = with(
        "[[steps]]\nat_ms = 1\naction = \"reset-offset\"\nclient = \"admin\"\ngroup = \"h\"\ntopic = \"t\"\nqueue = 5\noffset = 0\n",
    );
    fails(
        &src,
        41,
        9,
        "steps[0].group",
        &["unknown group `h`", "valid: g"],
    );
    fails(
        &src,
        43,
        9,
        "steps[0].queue",
        &["queue 5 does not exist", "0..=1"],
    );
}

#[test]
fn unknown_clog_node() {
    fails(
        &with("[[steps]]\nat_ms = 1\naction = \"clog\"\nnode = \"c3\"\n"),
        40,
        8,
        "steps[0].node",
        &[
            "unknown node `c3`",
            "valid: broker, p, c1, c2, admin, offsets",
        ],
    );
}

#[test]
fn steps_out_of_order() {
    fails(
        &with("[[steps]]\nat_ms = 5_000\naction = \"crash\"\n\n[[steps]]\nat_ms = 3_000\naction = \"restart\"\n"),
        42,
        9,
        "steps[1].at_ms",
        &["time order", "3000", "5000"],
    );
}

#[test]
fn step_after_the_end() {
    fails(
        &with("[[steps]]\nat_ms = 70_000\naction = \"crash\"\n"),
        38,
        9,
        "steps[0].at_ms",
        &["after duration_ms 60000"],
    );
}

#[test]
fn restart_without_crash() {
    fails(
        &with("[[steps]]\nat_ms = 1\naction = \"restart\"\n"),
        39,
        10,
        "steps[0].action",
        &["needs an earlier `crash`"],
    );
}

#[test]
fn absurd_message_count() {
    let err = fails(
        &edit("messages = 10", "messages = 1_000_000_000_000"),
        15,
        12,
        "producers[0].messages",
        &["1000000000000 exceeds the limit of 1000000"],
    );
    assert_eq!(err.issues()[0].kind, IssueKind::Limit);
}

#[test]
fn total_messages_over_the_limit() {
    fails(
        &with("[[steps]]\nat_ms = 1\naction = \"produce\"\nproducer = \"p\"\ncount = 999_995\n"),
        12,
        1,
        "producers",
        &["1000005 messages in total"],
    );
}

#[test]
fn zero_and_too_many_queues() {
    fails(
        &edit("queues = 2", "queues = 0"),
        7,
        10,
        "topics[0].queues",
        &["0 is outside 1..=64"],
    );
    fails(
        &edit("queues = 2", "queues = 65"),
        7,
        10,
        "topics[0].queues",
        &["65 is outside 1..=64"],
    );
}

#[test]
fn zero_invisible_time() {
    fails(
        &edit(
            "kind = \"concurrent\"",
            "kind = \"concurrent\"\npop_invisible_time_ms = 0",
        ),
        26,
        25,
        "consumers[1].pop_invisible_time_ms",
        &["greater than 0"],
    );
    fails(
        &with("[[steps]]\nat_ms = 1\naction = \"pop\"\nconsumer = \"c1\"\ninvisible_time_ms = 0\n"),
        41,
        21,
        "steps[0].invisible_time_ms",
        &["greater than 0"],
    );
}

#[test]
fn batch_over_32() {
    fails(
        &edit(
            "kind = \"concurrent\"",
            "kind = \"concurrent\"\npop_batch_nums = 33",
        ),
        26,
        18,
        "consumers[1].pop_batch_nums",
        &["33 is outside 1..=32"],
    );
}

#[test]
fn failure_percent_over_100() {
    fails(
        &edit(
            "kind = \"concurrent\"",
            "kind = \"concurrent\"\nfailure_percent = 150",
        ),
        26,
        19,
        "consumers[1].failure_percent",
        &["0..=100"],
    );
}

#[test]
fn range_min_above_max() {
    fails(
        &edit(
            "kind = \"concurrent\"",
            "kind = \"concurrent\"\nconsume_time_ms = { min = 50, max = 10 }",
        ),
        26,
        27,
        "consumers[1].consume_time_ms.min",
        &["min 50 is greater than max 10"],
    );
}

#[test]
fn unknown_behaviour_name() {
    fails(
        &format!("replays = [\"deliver-twice\"]\n{BASE}"),
        1,
        12,
        "replays[0]",
        &[
            "unknown historical behaviour `deliver-twice`",
            "buffered-ack-missing-broker-name",
        ],
    );
}

#[test]
fn unknown_invariant_name() {
    fails(
        &format!("replays = [\"reset-commits-pull-offset\"]\n{BASE}[expect]\nwith_bug = [\"no-dupes\"]\n"),
        39,
        13,
        "expect.with_bug[0]",
        &["unknown invariant `no-dupes`", "no-loss", "revive-progress"],
    );
}

#[test]
fn with_bug_needs_replays() {
    fails(
        &with("[expect]\nwith_bug = [\"no-loss\"]\n"),
        38,
        12,
        "expect.with_bug",
        &["`replays` is empty"],
    );
}

#[test]
fn loss_rate_above_one() {
    fails(
        &with("[faults]\nloss_rate = 1.5\n"),
        38,
        13,
        "faults.loss_rate",
        &["1.5 is a probability"],
    );
    fails(
        &with("[[steps]]\nat_ms = 1\naction = \"set-loss\"\nrate = 1.5\n"),
        40,
        8,
        "steps[0].rate",
        &["1.5"],
    );
}

#[test]
fn broker_limits() {
    fails(
        &with("[broker]\nreviveQueueNum = 0\n"),
        38,
        18,
        "broker.reviveQueueNum",
        &["0 is outside 1..=64"],
    );
    fails(
        &with("[broker]\npopCkStayBufferTime = 0\n"),
        38,
        23,
        "broker.popCkStayBufferTime",
        &["greater than 0"],
    );
}

#[test]
fn seeds() {
    fails(
        &format!("seeds = []\n{BASE}"),
        1,
        9,
        "seeds",
        &["at least one seed"],
    );
    fails(
        &format!("seeds = [1, 2, 1]\n{BASE}"),
        1,
        16,
        "seeds[2]",
        &["seed 1 is listed twice"],
    );
}

#[test]
fn quiet_period_longer_than_the_run() {
    fails(
        &edit("quiet_period_ms = 10_000", "quiet_period_ms = 90_000"),
        3,
        19,
        "quiet_period_ms",
        &["longer than duration_ms"],
    );
    fails(
        &edit("quiet_period_ms = 10_000\n", "\n").replacen("60_000", "20_000", 1),
        2,
        15,
        "duration_ms",
        &["default quiet_period_ms"],
    );
}

#[test]
fn duration_over_a_day() {
    fails(
        &edit("duration_ms = 60_000", "duration_ms = 100_000_000"),
        2,
        15,
        "duration_ms",
        &["exceeds the limit of 86400000"],
    );
}

#[test]
fn duplicate_and_reserved_names() {
    fails(
        &with("[[topics]]\nname = \"t\"\n"),
        38,
        8,
        "topics[1].name",
        &["`t` is defined twice"],
    );
    fails(
        &edit("name = \"p\"", "name = \"broker\""),
        13,
        8,
        "producers[0].name",
        &["reserved"],
    );
    fails(
        &edit("name = \"offsets\"", "name = \"c1\""),
        34,
        8,
        "clients[1].name",
        &["node names must be unique"],
    );
    fails(
        &edit("name = \"p\"", "name = \"proxy\""),
        13,
        8,
        "producers[0].name",
        &["`proxy` is reserved for the proxy node"],
    );
}

#[test]
fn unknown_topic_and_group_references() {
    fails(
        &edit(
            "group = \"g\"\ntopic = \"t\"\n\n[[consumers]]",
            "group = \"x\"\ntopic = \"t\"\n\n[[consumers]]",
        ),
        20,
        9,
        "consumers[0].group",
        &["unknown group `x`", "valid: g"],
    );
    fails(
        &edit("topic = \"t\"\nmessages", "topic = \"u\"\nmessages"),
        14,
        9,
        "producers[0].topic",
        &["unknown topic `u`", "valid: t"],
    );
}

#[test]
fn step_that_is_not_a_table() {
    fails(
        &format!("steps = [1]\n{BASE}"),
        1,
        10,
        "steps[0]",
        &["expected a table, found integer"],
    );
}

#[test]
fn ack_with_count_and_all_but() {
    fails(
        &with(
            "[[steps]]\nat_ms = 1\naction = \"ack\"\nconsumer = \"c1\"\ncount = 1\nall_but = 1\n",
        ),
        42,
        11,
        "steps[0].all_but",
        &["not both"],
    );
}

#[test]
fn several_problems_are_all_reported_in_file_order() {
    let src = edit("queues = 2", "queues = 0").replacen("messages = 10", "messages = 2_000_000", 1);
    let err = load(&src).unwrap_err();
    let lines: Vec<String> = err.to_string().lines().map(str::to_owned).collect();
    assert!(
        lines[0].starts_with("bad.toml:7:10: topics[0].queues: "),
        "{lines:?}"
    );
    assert!(
        lines[1].starts_with("bad.toml:15:12: producers[0].messages: "),
        "{lines:?}"
    );
}

#[test]
fn render_shows_the_line_and_a_caret() {
    let err = load(&edit("queues = 2", "queues = 0")).unwrap_err();
    let r = err.render();
    assert!(r.contains("7 | queues = 0\n"), "{r}");
    assert!(r.contains("  |          ^\n"), "{r}");
}

#[test]
fn oversized_input_is_refused_before_parsing() {
    let src = format!("{BASE}#{}\n", "x".repeat(scenarios::limits::MAX_FILE_BYTES));
    let err = load(&src).unwrap_err();
    assert_eq!(err.issues()[0].kind, IssueKind::Limit);
    assert!(err.to_string().starts_with("bad.toml:1:1: the file has"));
}

#[test]
fn no_panic_on_truncated_or_mangled_builtins() {
    for (name, _) in scenarios::builtins() {
        let src = scenarios::builtin_source(name).unwrap();
        let cuts = src.char_indices().map(|(i, _)| i).step_by(7);
        for cut in cuts {
            let _ = load(&src[..cut]);
            let mangled: String = src
                .char_indices()
                .map(|(i, c)| {
                    if i == cut {
                        ['"', '[', '=', '-', '9', '\n'][i % 6]
                    } else {
                        c
                    }
                })
                .collect();
            let _ = load(&mangled);
        }
    }
}

#[test]
fn deeply_nested_input_is_an_error_not_a_stack_overflow() {
    let depth = 50_000;
    let src = format!(
        "name = \"x\"\nduration_ms = 1\nx = {}{}\n",
        "[".repeat(depth),
        "]".repeat(depth)
    );
    let err = load(&src).unwrap_err();
    assert!(err.to_string().starts_with("bad.toml:3:"), "{err}");
    let src = format!(
        "name = \"x\"\nduration_ms = 1\nx = {}1{}\n",
        "{a=".repeat(depth),
        "}".repeat(depth)
    );
    assert!(load(&src).is_err());
}

#[test]
fn bug_row_behaviour_not_replayed() {
    fails(
        &format!(
            "replays = [\"reset-commits-pull-offset\"]\n{BASE}[[expect.rows]]\nbugs = [\"offset-update-oneway-only\"]\nviolates = [\"no-loss\"]\n"
        ),
        39,
        9,
        "expect.rows[0].bugs[0]",
        &["`offset-update-oneway-only` is not in `replays`", "reset-commits-pull-offset"],
    );
}

#[test]
fn shutdown_alternates_with_restart_like_crash() {
    load(&with(
        "[[steps]]\nat_ms = 1_000\naction = \"shutdown\"\n\n[[steps]]\nat_ms = 2_000\naction = \"restart\"\n",
    ))
    .unwrap();
    fails(
        &with("[[steps]]\nat_ms = 1_000\naction = \"shutdown\"\n\n[[steps]]\nat_ms = 2_000\naction = \"crash\"\n"),
        43,
        10,
        "steps[1].action",
        &["already down", "shutdown"],
    );
    fails(
        &with("[[steps]]\nat_ms = 1_000\naction = \"restart\"\n"),
        39,
        10,
        "steps[0].action",
        &["`crash` or `shutdown`"],
    );
}

#[test]
fn store_fault_keys_are_checked() {
    fails(
        &with("[faults]\nstore_put_failure_rate = 1.5\n"),
        38,
        26,
        "faults.store_put_failure_rate",
        &["probability"],
    );
    fails(
        &with("[faults]\ntimer_lag_ms = { min = 5, max = 1 }\n"),
        38,
        24,
        "faults.timer_lag_ms.min",
        &["greater than max"],
    );
    fails(
        &with("[[steps]]\nat_ms = 1_000\naction = \"set-store-put-failure-rate\"\nrate = 2.0\n"),
        40,
        8,
        "steps[0].rate",
        &["probability"],
    );
}

#[test]
fn a_receive_loop_and_steps_cannot_drive_one_consumer() {
    let looping = edit(
        "kind = \"scripted\"",
        "kind = \"grpc-simple\"\nreceive_loop = true",
    );
    load(&looping).unwrap();
    // A looping simple consumer is started and stopped like the other looping ones.
    load(&format!(
        "{looping}[[steps]]\nat_ms = 1_000\naction = \"stop-consumer\"\nconsumer = \"c1\"\n"
    ))
    .unwrap();
    for action in ["pop", "ack"] {
        fails(
            &format!(
                "{looping}[[steps]]\nat_ms = 1_000\naction = \"{action}\"\nconsumer = \"c1\"\n"
            ),
            41,
            12,
            "steps[0].consumer",
            &[
                "`c1` runs its own receive loop",
                "consumers[0].receive_loop = true",
                "no consumer takes steps",
            ],
        );
    }
    fails(
        &format!(
            "{looping}[[steps]]\nat_ms = 1_000\naction = \"change-invisible-time\"\nconsumer = \"c1\"\ninvisible_time_ms = 20_000\n"
        ),
        41,
        12,
        "steps[0].consumer",
        &["`c1` runs its own receive loop"],
    );
    fails(
        &edit(
            "kind = \"concurrent\"\ngroup = \"g\"\ntopic = \"t\"\n",
            "kind = \"concurrent\"\ngroup = \"g\"\ntopic = \"t\"\nreceive_loop = true\n",
        ),
        28,
        16,
        "consumers[1].receive_loop",
        &[
            "only a grpc-simple consumer takes receive_loop",
            "always runs its own loop",
        ],
    );
}

/// Only the gRPC push consumer's process queues send a receive attemptId.
#[test]
fn the_later_clients_attempt_id_is_for_a_grpc_push_consumer_only() {
    fails(
        &edit(
            "kind = \"concurrent\"\ngroup = \"g\"\ntopic = \"t\"\n",
            "kind = \"concurrent\"\ngroup = \"g\"\ntopic = \"t\"\nkeeps_attempt_id_until_messages = true\n",
        ),
        28,
        35,
        "consumers[1].keeps_attempt_id_until_messages",
        &["only a grpc-push consumer's process queues send receive attemptIds"],
    );
}

#[test]
fn a_receive_loop_below_the_proxys_minimum_invisible_time_is_warned() {
    let looping = edit(
        "kind = \"scripted\"",
        "kind = \"grpc-simple\"\nreceive_loop = true\npop_invisible_time_ms = 5_000",
    );
    let (_, warnings) = scenarios::load_str_warned("bad.toml", &looping, &ctx()).unwrap();
    assert_eq!(warnings.len(), 1, "{warnings:?}");
    assert!(
        warnings[0].starts_with("bad.toml:21:25: consumers[0].pop_invisible_time_ms: warning: the proxy refuses every receive"),
        "{warnings:?}"
    );
    // Steps choose their own invisible time: no warning without the loop.
    let stepped = edit(
        "kind = \"scripted\"",
        "kind = \"grpc-simple\"\npop_invisible_time_ms = 5_000",
    );
    let (_, warnings) = scenarios::load_str_warned("bad.toml", &stepped, &ctx()).unwrap();
    assert!(warnings.is_empty(), "{warnings:?}");
}
