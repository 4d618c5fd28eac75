//! Finding F33 (docs/findings.md): the gRPC proxy in local mode answers a changeInvisibleTime
//! with a handle that keeps the popped batch's start offset (`LocalMessageService
//! .changeInvisibleTime`), while the CK the change wrote starts at the message's own offset.
//! The ack of a later message's new handle is answered OK and keyed by the wrong CK start,
//! and the message comes back. It goes away with the proposed fix
//! `local-change-handle-from-request` alone, and in cluster mode.

mod common;

use broker_core::{ExtraInfo, Fix};
use common::{assert_finding, assert_holds_on_develop, run_with_fixes};
use reports::history::EventKind;

const F33: &str =
    include_str!("../../scenarios/findings/local-change-handle-names-batch-start.toml");

/// The scenario's pinned seeds.
const SEEDS: [u64; 3] = [0, 1, 2];

const LOCAL: &str = "proxyMode = \"local\"";

/// The scenario with one group only: the push consumer's renewals (`push`) or the simple
/// consumer's change (`simple`).
fn one_group(keep_push: bool) -> String {
    let simple_group = "[[groups]]\nname = \"g-simple\"\n\n";
    let push_group = "[[groups]]\nname = \"g-push\"\n\n";
    let simple_from = F33.find("[[consumers]]\nname = \"s1\"").expect("s1");
    let expect = F33.find("[expect]").expect("expect");
    let push_from = F33.find("[[consumers]]\nname = \"c1\"").expect("c1");
    assert!(F33.contains(simple_group) && F33.contains(push_group));
    if keep_push {
        format!("{}{}", &F33[..simple_from], &F33[expect..]).replace(simple_group, "")
    } else {
        format!("{}{}", &F33[..push_from], &F33[simple_from..]).replace(push_group, "")
    }
}

#[test]
fn f33_an_ack_of_a_changed_later_message_is_answered_ok_and_the_message_comes_back() {
    let fix = Fix::LocalChangeHandleFromRequest;
    for seed in SEEDS {
        assert_finding(F33, seed, fix, &["no-redelivery-after-ack"], "scenario");
        for (keep_push, what) in [(true, "push renewals"), (false, "simple change")] {
            let src = one_group(keep_push);
            assert_finding(&src, seed, fix, &["no-redelivery-after-ack"], what);
        }
    }
}

#[test]
fn f33_holds_in_cluster_mode_and_for_the_batch_first_message() {
    let cluster = F33.replace(LOCAL, "proxyMode = \"cluster\"");
    let one_message = F33.replace("messages = 3", "messages = 1");
    assert!(F33.contains(LOCAL) && F33.contains("messages = 3"));
    assert_holds_on_develop(
        &[("cluster mode", cluster), ("one message", one_message)],
        &SEEDS,
    );
}

/// The handles themselves: local mode's names the batch start and carries a tenth field
/// (the builder's commit log offset 0, then the real one); the fix's and cluster mode's name
/// the message's own offset.
#[test]
fn f33_the_changed_handle_names_the_batch_start_in_local_mode_only() {
    let simple = one_group(false);
    let changed = |src: &str, fixes: &[Fix]| -> Vec<ExtraInfo> {
        let h = run_with_fixes(src, 0, fixes).history;
        h.events
            .iter()
            .filter_map(|e| match &e.kind {
                EventKind::ChangeInvisibleResult {
                    new_receipt: Some(new),
                    ..
                } => ExtraInfo::parse(new),
                _ => None,
            })
            .collect()
    };
    let local = changed(&simple, &[]);
    assert_eq!(local.len(), 3);
    for h in &local {
        assert_eq!((h.ck_queue_offset, h.commit_log_offset), (0, Some(0)));
    }
    let fixed = changed(&simple, &[Fix::LocalChangeHandleFromRequest]);
    let cluster = changed(&simple.replace(LOCAL, "proxyMode = \"cluster\""), &[]);
    for hs in [fixed, cluster] {
        assert_eq!(hs.len(), 3);
        for h in &hs {
            assert_eq!(h.ck_queue_offset, h.queue_offset);
        }
    }
}

/// The report names the cause: the ack's receipt names another CK start than the revived
/// CK's, the change that answered with it, and where its ACK record was keyed. Without the
/// clause it said no ACK record was written, which is false here.
#[test]
fn f33_the_report_says_the_ack_named_another_ck_start() {
    let out = run_with_fixes(&one_group(false), 0, &[]);
    let why = out
        .results
        .iter()
        .find(|r| r.name == "no-redelivery-after-ack")
        .and_then(|r| r.witness.as_ref())
        .map(|w| w.summary.clone())
        .expect("a witness");
    for part in [
        "whose CK start offset 0 is not this CK's 1",
        "which the changeInvisibleTime on proxy answered with at ",
        "was keyed by start offset 0, not by this CK's",
    ] {
        assert!(why.contains(part), "{part:?} not in {why}");
    }
    assert!(!why.contains("no ACK record"), "{why}");
}
