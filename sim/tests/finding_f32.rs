//! Finding F32 (docs/findings.md): with `timerEnableRetryUntilSuccess` off (the default),
//! `TimerDequeuePutMessageService.run` gives a timer record up after three failed puts 500 ms
//! apart. A POP ACK record given up never cancels its CK, which revives the acked message; a
//! CK given up is never revived, and its message is lost. It goes away with the proposed fix
//! `timer-keeps-revive-records` alone, and with the setting on.

mod common;

use broker_core::Fix;
use common::{assert_finding, assert_holds_on_develop};

const F32: &str = include_str!("../../scenarios/findings/timer-gives-up-ack-record.toml");

/// The scenario's pinned seeds.
const SEEDS: [u64; 3] = [1, 2, 3];

const FAIL_FROM: &str = "at_ms = 11_500\naction = \"set-store-put-failure-rate\"";
const FAIL_UNTIL: &str = "at_ms = 13_200\naction = \"set-store-put-failure-rate\"";

/// The scenario with the store failing from `from` until `until` (ms).
fn window(from: u32, until: u32) -> String {
    assert!(F32.contains(FAIL_FROM) && F32.contains(FAIL_UNTIL));
    F32.replace(FAIL_FROM, &FAIL_FROM.replace("11_500", &from.to_string()))
        .replace(
            FAIL_UNTIL,
            &FAIL_UNTIL.replace("13_200", &until.to_string()),
        )
}

/// The CK variant: no ack, the store failing while the wheel puts the CK (~11 s), and a
/// consumer of the group from 25 s on that acks whatever it gets.
fn ck_variant() -> String {
    let ack = "[[steps]]\nat_ms = 2_000\naction = \"ack\"\nconsumer = \"c1\"\n\n";
    let pop_again = "[[steps]]\nat_ms = 25_000\naction = \"pop\"\nconsumer = \"c1\"\nmax = 1\n";
    let span = "duration_ms = 30_000\nquiet_period_ms = 10_000";
    let first = "[[steps]]\nat_ms = 500";
    let src = window(10_500, 12_200);
    assert!(src.contains(ack) && src.contains(pop_again) && src.contains(span));
    src.replace(ack, "")
        .replace(pop_again, "")
        .replace(span, "duration_ms = 130_000\nquiet_period_ms = 100_000")
        .replace(
            first,
            &format!(
                "[[consumers]]\nname = \"c2\"\nkind = \"concurrent\"\ngroup = \"g\"\ntopic = \"t\"\npop_invisible_time_ms = 10_000\nstart_at_ms = 25_000\ninit_mode = \"min\"\n\n{first}"
            ),
        )
        .replace(
            "develop = [\"no-redelivery-after-ack\"]",
            "develop = [\"no-loss\"]",
        )
}

#[test]
fn f32_an_ack_record_the_timer_gives_up_lets_its_ck_revive_the_acked_message() {
    for seed in SEEDS {
        let fix = Fix::TimerKeepsReviveRecords;
        assert_finding(F32, seed, fix, &["no-redelivery-after-ack"], "scenario");
    }
}

#[test]
fn f32_a_ck_the_timer_gives_up_loses_its_message() {
    let src = ck_variant();
    for seed in SEEDS {
        let fix = Fix::TimerKeepsReviveRecords;
        assert_finding(&src, seed, fix, &["no-loss"], "CK variant");
    }
}

/// Two failed puts are retried (the third succeeds at ~13 s); `timerEnableRetryUntilSuccess`
/// keeps the record however long the store fails.
#[test]
fn f32_holds_after_two_failed_puts_or_with_retry_until_success() {
    let retry = format!("{F32}\n[broker]\ntimerEnableRetryUntilSuccess = true\n");
    let retry_ck = format!(
        "{}\n[broker]\ntimerEnableRetryUntilSuccess = true\n",
        ck_variant()
    );
    assert_holds_on_develop(
        &[
            ("two failed puts", window(11_500, 12_700)),
            ("retry until success", retry),
            ("retry until success, CK", retry_ck),
        ],
        &SEEDS,
    );
}

/// Before #8980 (5.3.0, 5.3.1) `doPut` tried four times 50 ms apart and
/// `timerEnableRetryUntilSuccess` did not exist: a 300 ms failure around the ACK's slot,
/// which develop rides out (its second attempt comes 500 ms later), gives the record up, with
/// the setting or without it.
#[test]
fn f32_before_8980_four_quick_puts_give_the_record_up_within_300_ms() {
    use broker_core::Behaviour;
    let short = window(11_900, 12_200);
    let set = format!("{short}\n[broker]\ntimerEnableRetryUntilSuccess = true\n");
    let old = Behaviour::TimerDoPutGivesUpAfterFour;
    for seed in SEEDS {
        assert!(
            common::violated_with(&short, seed, &[]).is_empty(),
            "develop, seed {seed}"
        );
        for src in [&short, &set] {
            assert_eq!(
                common::run(src, seed, &[old]).violated(),
                ["no-redelivery-after-ack"],
                "seed {seed}"
            );
        }
    }
}
