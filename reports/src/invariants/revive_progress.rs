//! At the end, the revive group's offset has passed every checkpoint of the revive log whose revive time is well past.
//!
//! Targets #3443 and #5408 (the revive group's offset stopped moving, so the same revive
//! records were read forever or CKs behind them were never revived).
//!
//! Semantics: judged on the broker's final state and the revive-log records the history
//! shows (`CkWritten` for pop, changeInvisibleTime and re-put CKs; `AckWritten`), and only
//! if the broker was running at the end and had been up for [`SETTLE_MS`].
//! - Revive-queue offsets are assigned as the timer delivers records (by timer slot, a record
//!   whose deliver time had passed at once), which the broker's final state lists per revive
//!   queue (`delivered`, revive-log offsets in queue order). That is the offset the reviver
//!   reads and commits, not the write-order offset in the events; a record still in the timer
//!   has none.
//! - A CK is *due* once it had been visible (`max(deliver_at, written at)`; in a run with
//!   random faults, where the timer may have lagged, not before the quiet period) for the
//!   broker's revive settle time (`revive_settle_ms` in the final state: up to
//!   `reviveMaxSlow` + 2 revive intervals of rest, a scan's 4.1 s of empty reads, and
//!   `endTime`'s margins; [`SETTLE_MS`] if absent) when the run ended. The reviver merges CKs
//!   in queue-offset order and stops at the first one not yet due, so the committed offset of
//!   `CID_RMQ_SYS_REVIVE_GROUP` must reach the queue offset of the last CK before the first CK
//!   that is not due.
//! - Records after the last CK (ACKs) need not be passed: upstream's `mergeAndRevive`
//!   commits the queue offset of the last CK it merged, not of the last record it read, so
//!   trailing acks are re-read by every scan until the next CK arrives. That is the steady
//!   state, not a stall; the stall #3443 / #5408 describe leaves CKs behind the offset.

use super::index::{secs, witness_events};
use super::{Affected, AffectedList, InvariantInfo, Verdict, Witness};
use crate::history::{EventKind, History};
use broker_core::{BrokerEvent, Millis};
use std::collections::BTreeMap;

pub(crate) const INFO: InvariantInfo = InvariantInfo {
    name: "revive-progress",
    statement: "At the end, the revive group's offset has passed every checkpoint of the revive log whose revive time is well past.",
};

/// A record visible at `t` is scanned and merged within a few seconds: the reviver waits
/// until it has seen traffic 2 s past a CK's revive time (which is 1 s after the CK became
/// visible), advances its horizon after 3 s without news, and runs every second.
pub(crate) const SETTLE_MS: Millis = 10_000;

pub(crate) fn check(history: &History) -> Verdict {
    let fs = &history.final_state;
    let end = history.meta.end_at;
    if !fs.running {
        return Verdict::not_applicable("the broker was not running at the end");
    }
    let settle = if fs.revive_settle_ms > 0 {
        fs.revive_settle_ms
    } else {
        SETTLE_MS
    };
    let faulty_until = if history.meta.faulty {
        history.meta.quiet_from
    } else {
        0
    };
    // Revive queue → revive-log offset → (visible at, is a CK, event index).
    let mut records: BTreeMap<u32, BTreeMap<u64, (Millis, bool, usize)>> = BTreeMap::new();
    let mut last_commit: BTreeMap<u32, usize> = BTreeMap::new();
    let mut up_since: Millis = 0;
    for (idx, e) in history.events.iter().enumerate() {
        match &e.kind {
            EventKind::Broker(BrokerEvent::CkWritten {
                at,
                revive_qid,
                revive_offset,
                deliver_at,
                ..
            }) => {
                records
                    .entry(*revive_qid)
                    .or_default()
                    .insert(*revive_offset, ((*deliver_at).max(*at), true, idx));
            }
            EventKind::Broker(BrokerEvent::AckWritten {
                at,
                revive_qid,
                revive_offset,
                deliver_at,
                ..
            }) => {
                records
                    .entry(*revive_qid)
                    .or_default()
                    .insert(*revive_offset, ((*deliver_at).max(*at), false, idx));
            }
            EventKind::Broker(BrokerEvent::ReviveOffsetCommitted { revive_qid, .. }) => {
                last_commit.insert(*revive_qid, idx);
            }
            EventKind::Broker(BrokerEvent::Restarted { .. }) => up_since = e.at,
            _ => {}
        }
    }
    if up_since + settle > end {
        return Verdict::not_applicable("the broker was not up long enough before the end");
    }
    let mut judged = 0usize;
    let mut found = Vec::new();
    let mut affected = AffectedList::default();
    for (qid, recs) in &records {
        let Some(rq) = fs.revive_queues.iter().find(|q| q.revive_qid == *qid) else {
            continue;
        };
        // Queue offsets of the due CKs, up to the first CK that is not due.
        let due: Vec<(usize, Millis, usize)> = rq
            .delivered
            .iter()
            .enumerate()
            .filter_map(|(pos, log)| recs.get(log).map(|r| (pos, *r)))
            .filter(|(_, r)| r.1)
            .take_while(|(_, r)| r.0.max(faulty_until) + settle <= end)
            .map(|(pos, r)| (pos, r.0, r.2))
            .collect();
        let Some(&(last_due, last_visible, _)) = due.last() else {
            continue;
        };
        judged += 1;
        let committed = rq.committed_offset;
        if committed >= last_due as i64 {
            continue;
        }
        let stuck = due
            .iter()
            .find(|(pos, _, _)| *pos as i64 > committed)
            .map(|(pos, _, i)| (*pos, *i));
        let mut events: Vec<usize> = stuck.map(|s| s.1).into_iter().collect();
        events.extend(last_commit.get(qid));
        if let Some(first) = events.first().copied() {
            affected.push(Affected::at("revive-stuck", history, first).events(events.clone()));
        }
        found.push(Witness {
            msg_id: None,
            summary: format!(
                "revive queue {qid}: the CKs up to queue offset {last_due} were visible by {}, but the revive group's offset is {committed}{}; the run ended at {}",
                secs(last_visible),
                stuck.map_or_else(String::new, |(pos, _)| format!(", short of the CK at {pos}")),
                secs(end)
            ),
            events: witness_events(events),
        });
    }
    if judged == 0 {
        return Verdict::not_applicable("no checkpoint in the revive log was due at the end");
    }
    Verdict::from_witness(found.into_iter().next()).with_affected(affected)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::invariants::Status;
    use crate::testkit::{H, T};
    use broker_core::events::ReviveQueueState;
    use broker_core::CkRef;

    fn ck_written(h: &mut H, revive_offset: u64, deliver_at: Millis) -> usize {
        let at = deliver_at - 9_000;
        let ck = CkRef {
            topic: T.into(),
            group: "g1".into(),
            queue_id: 0,
            start_offset: revive_offset,
            pop_time: at,
            invisible_time: 10_000,
            num: 1,
            broker_name: "broker-a".into(),
        };
        h.at(at).broker(BrokerEvent::CkWritten {
            at,
            ck: ck.into(),
            revive_qid: 0,
            revive_offset,
            deliver_at,
            reason: "addCkJustOffset".into(),
        })
    }

    fn ack_written(h: &mut H, revive_offset: u64, deliver_at: Millis) -> usize {
        h.broker(BrokerEvent::AckWritten {
            at: deliver_at - 9_000,
            topic: T.into(),
            group: "g1".into(),
            queue_id: 0,
            start_offset: 0,
            pop_time: deliver_at - 10_000,
            ack_offsets: vec![0].into(),
            broker_name: Some("broker-a".into()),
            revive_qid: 0,
            revive_offset,
            deliver_at,
            batch: false,
            reason: "appendAck".into(),
        })
    }

    /// The final revive queue: records delivered in `delivered` order (revive-log offsets).
    fn final_queue(h: &mut H, delivered: &[u64], committed_offset: i64) {
        h.final_state.revive_queues = vec![ReviveQueueState {
            revive_qid: 0,
            max_offset: delivered.len() as u64,
            committed_offset,
            last_deliver_at: None,
            delivered: delivered.to_vec(),
        }];
    }

    #[test]
    fn a_revive_offset_stuck_before_a_due_ck_is_a_violation() {
        let mut h = H::new();
        h.end(0, 60_000);
        ck_written(&mut h, 0, 10_000);
        let stuck = ck_written(&mut h, 1, 12_000);
        ack_written(&mut h, 2, 12_000);
        let commit = h.at(13_000).broker(BrokerEvent::ReviveOffsetCommitted {
            at: 13_000,
            revive_qid: 0,
            offset: 0,
        });
        final_queue(&mut h, &[0, 1, 2], 0);
        let v = check(&h.build());
        assert_eq!(v.status, Status::Violated);
        let w = v.witness.unwrap();
        assert_eq!(w.events, vec![stuck, commit]);
        assert_eq!(
            w.summary,
            "revive queue 0: the CKs up to queue offset 1 were visible by 12.000s, but the revive group's offset is 0, short of the CK at 1; the run ended at 60.000s"
        );
    }

    #[test]
    fn trailing_acks_and_cks_not_yet_due_need_not_be_passed() {
        let mut h = H::new();
        h.end(0, 60_000);
        ck_written(&mut h, 0, 10_000);
        ack_written(&mut h, 1, 11_000);
        // Written third but delivered fourth: queue offsets follow delivery, so this CK is at
        // 3 and not due; the one written after it is at 2 and due.
        ck_written(&mut h, 2, 55_000);
        ck_written(&mut h, 3, 20_000);
        ack_written(&mut h, 4, 21_000);
        final_queue(&mut h, &[0, 1, 3, 2, 4], 2);
        assert_eq!(check(&h.build()), Verdict::held());
        final_queue(&mut h, &[0, 1, 3, 2, 4], 1);
        let w = check(&h.build()).witness.unwrap();
        assert!(
            w.summary
                .contains("the CKs up to queue offset 2 were visible by 20.000s"),
            "{}",
            w.summary
        );
    }

    #[test]
    fn nothing_due_or_no_broker_is_not_applicable() {
        let mut h = H::new();
        h.end(0, 60_000);
        ck_written(&mut h, 0, 55_000);
        final_queue(&mut h, &[0], -1);
        assert_eq!(
            check(&h.build()),
            Verdict::not_applicable("no checkpoint in the revive log was due at the end")
        );
        h.at(55_000).restart();
        assert_eq!(
            check(&h.build()),
            Verdict::not_applicable("the broker was not up long enough before the end")
        );
        h.final_state.running = false;
        assert_eq!(
            check(&h.build()),
            Verdict::not_applicable("the broker was not running at the end")
        );
    }
}
