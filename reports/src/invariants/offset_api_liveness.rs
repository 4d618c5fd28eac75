//! Every sync or future offset update completes, and none reports success for an update the broker did not accept.
//!
//! Targets bug (d)'s follow-up #10005 (`updateConsumerOffsetAsync`'s switch has no default,
//! so e.g. `INVALID_PARAMETER` leaves the future pending forever).
//!
//! Semantics:
//! - Every `OffsetUpdateStarted` in sync or future mode has an `OffsetUpdateCompleted`
//!   (normal or exceptional) for the same client and call id, provided it started at least
//!   [`GRACE_MS`] before the run ended. Every such call carries a timeout upstream, so it
//!   must settle even when the network loses the request or the answer. Oneway updates
//!   "complete" when sent and are not judged here.
//! - No completion (of any mode) tells the caller "success" when the outcome it records is
//!   a non-`SUCCESS` answer or a timeout.
//! - Judged only if the run got past its quiet period (`end_at > quiet_from`).

use super::index::{secs, witness_events};
use super::{Affected, AffectedList, InvariantInfo, Verdict, Witness};
use crate::history::{EventKind, History, OffsetUpdateMode, RpcOutcome};
use broker_core::{Millis, ResponseCode};
use std::collections::BTreeMap;

pub(crate) const INFO: InvariantInfo = InvariantInfo {
    name: "offset-api-liveness",
    statement: "Every sync or future offset update completes, and none reports success for an update the broker did not accept.",
};

/// How long before the run's end an update may start and still be excused for not having
/// completed: twice the largest client timeout upstream uses for this call (5 s).
pub(crate) const GRACE_MS: Millis = 10_000;

fn describe(
    mode: &OffsetUpdateMode,
    group: &str,
    topic: &str,
    queue: Option<i32>,
    offset: Option<i64>,
) -> String {
    let mode = match mode {
        OffsetUpdateMode::Oneway => "oneway",
        OffsetUpdateMode::Sync => "sync",
        OffsetUpdateMode::Future => "future",
    };
    let opt = |v: Option<i64>| v.map_or_else(|| "null".to_owned(), |v| v.to_string());
    format!(
        "{mode} update of {topic}@{group} queue {} to {}",
        opt(queue.map(i64::from)),
        opt(offset)
    )
}

pub(crate) fn check(history: &History) -> Verdict {
    let meta = &history.meta;
    if meta.end_at <= meta.quiet_from {
        return Verdict::not_applicable("the run did not get past its quiet period");
    }
    // (client, call) → (index, description, judged for completion).
    let mut open: BTreeMap<(&str, u64), (usize, String, bool)> = BTreeMap::new();
    let mut calls = 0usize;
    let mut found: Vec<Witness> = Vec::new();
    let mut affected = AffectedList::default();
    for (idx, e) in history.events.iter().enumerate() {
        match &e.kind {
            EventKind::OffsetUpdateStarted {
                client,
                call_id,
                mode,
                group,
                topic,
                queue_id,
                offset,
                ..
            } => {
                let awaited = *mode != OffsetUpdateMode::Oneway;
                calls += usize::from(awaited);
                open.insert(
                    (client, *call_id),
                    (
                        idx,
                        describe(mode, group, topic, *queue_id, *offset),
                        awaited && e.at + GRACE_MS <= meta.end_at,
                    ),
                );
            }
            EventKind::OffsetUpdateCompleted {
                client,
                call_id,
                outcome,
                caller_sees_success,
            } => {
                let started = open.remove(&(client.as_str(), *call_id));
                let bad = match outcome {
                    Some(RpcOutcome::Answered { code, .. }) if *code != ResponseCode::Success => {
                        Some(code.name())
                    }
                    Some(RpcOutcome::Timeout) => Some("a timeout"),
                    _ => None,
                };
                if let (true, Some(bad)) = (*caller_sees_success, bad) {
                    let (what, mut events) = started.map_or_else(
                        || (format!("call {call_id}"), vec![]),
                        |(i, d, _)| (format!("call {call_id} ({d})"), vec![i]),
                    );
                    events.push(idx);
                    affected.push(
                        Affected::at("success-despite-failure", history, events[0])
                            .events(events.clone()),
                    );
                    found.push(Witness {
                        msg_id: None,
                        summary: format!(
                            "{client}'s {what} reported success at {} although it ended with {bad}",
                            secs(e.at)
                        ),
                        events: witness_events(events),
                    });
                }
            }
            _ => {}
        }
    }
    if calls == 0 {
        return Verdict::not_applicable("no sync or future offset update");
    }
    for ((client, call_id), (idx, what, judged)) in open {
        if judged {
            affected.push(Affected::at("never-completed", history, idx));
            found.push(Witness {
                msg_id: None,
                summary: format!(
                    "{client}'s call {call_id} ({what}), started at {}, never completed; the run ended at {}",
                    secs(history.events[idx].at),
                    secs(meta.end_at)
                ),
                events: vec![idx],
            });
        }
    }
    found.sort_by_key(|w| w.events.first().copied());
    let count = found.len();
    Verdict::from_witness(found.into_iter().next().map(|mut w| {
        if count > 1 {
            w.summary.push_str(&format!(" ({count} problems in all)"));
        }
        w
    }))
    .with_affected(affected)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::invariants::Status;
    use crate::testkit::{answered, ok, H};

    #[test]
    fn a_future_that_never_completes_is_a_violation() {
        let mut h = H::new();
        h.end(10_000, 60_000);
        h.at(1_000)
            .update_started(1, OffsetUpdateMode::Future, "g1", 0, 5);
        h.at(1_010).update_completed(1, Some(ok()), true);
        let hung = h
            .at(2_000)
            .update_started(2, OffsetUpdateMode::Future, "g1", 0, 6);
        // Started too close to the end to be judged.
        h.at(55_000)
            .update_started(3, OffsetUpdateMode::Sync, "g1", 0, 7);
        let v = check(&h.build());
        assert_eq!(v.status, Status::Violated);
        let w = v.witness.unwrap();
        assert_eq!(w.events, vec![hung]);
        assert_eq!(
            w.summary,
            "offset-client's call 2 (future update of TopicA@g1 queue 0 to 6), started at 2.000s, never completed; the run ended at 60.000s"
        );
    }

    #[test]
    fn success_reported_for_a_rejected_update_is_a_violation() {
        let mut h = H::new();
        h.end(10_000, 60_000);
        let s = h
            .at(1_000)
            .update_started(1, OffsetUpdateMode::Future, "g1", 0, 5);
        let c = h.at(1_010).update_completed(
            1,
            Some(answered(ResponseCode::InvalidParameter, "")),
            true,
        );
        let w = check(&h.build()).witness.unwrap();
        assert_eq!(w.events, vec![s, c]);
        assert!(
            w.summary
                .ends_with("reported success at 1.010s although it ended with INVALID_PARAMETER"),
            "{}",
            w.summary
        );
    }

    #[test]
    fn completed_calls_and_oneway_calls_hold() {
        let mut h = H::new();
        h.end(10_000, 60_000);
        h.at(1_000)
            .update_started(1, OffsetUpdateMode::Sync, "g1", 0, 5);
        h.at(1_010)
            .update_completed(1, Some(answered(ResponseCode::SystemError, "")), false);
        h.at(2_000)
            .update_started(2, OffsetUpdateMode::Future, "g1", 0, 5);
        h.at(5_000)
            .update_completed(2, Some(crate::history::RpcOutcome::Timeout), false);
        h.at(3_000)
            .update_started(3, OffsetUpdateMode::Oneway, "g1", 0, 5);
        assert_eq!(check(&h.build()), Verdict::held());
    }

    #[test]
    fn runs_that_never_got_quiet_are_not_applicable() {
        let mut h = H::new();
        h.end(60_000, 30_000);
        h.at(1_000)
            .update_started(1, OffsetUpdateMode::Future, "g1", 0, 5);
        assert_eq!(
            check(&h.build()),
            Verdict::not_applicable("the run did not get past its quiet period")
        );
        let mut h = H::new();
        h.end(10_000, 60_000);
        assert_eq!(
            check(&h.build()),
            Verdict::not_applicable("no sync or future offset update")
        );
    }
}
