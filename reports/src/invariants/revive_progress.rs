//! At the end, every revive queue whose records are all past due has been processed up to its last record.
//!
//! Targets #3443 and #5408 (the revive group's offset stopped moving, so the same revive
//! records were read forever or CKs behind them were never revived).
//!
//! Semantics: judged on the broker's final state, and only if the broker was running at the
//! end. A revive queue with records is *due* when its latest record became visible
//! (`last_deliver_at`) at least [`SETTLE_MS`] before the run ended, and the broker had been
//! up for that long. For every due queue, `CID_RMQ_SYS_REVIVE_GROUP`'s committed offset must
//! be at least `max_offset − 1`: the offset of the last record (the reviver resumes at
//! committed + 1).

use super::index::{secs, witness_events};
use super::{InvariantInfo, Verdict, Witness};
use crate::history::{EventKind, History};
use broker_core::{BrokerEvent, Millis};
use std::collections::BTreeMap;

pub(crate) const INFO: InvariantInfo = InvariantInfo {
    name: "revive-progress",
    statement: "At the end, every revive queue whose records are all past due has been processed up to its last record.",
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
    // Per revive queue: the record at each offset, and the latest offset commit.
    let mut records: BTreeMap<(u32, u64), usize> = BTreeMap::new();
    let mut last_commit: BTreeMap<u32, usize> = BTreeMap::new();
    let mut up_since: Millis = 0;
    for (idx, e) in history.events.iter().enumerate() {
        match &e.kind {
            EventKind::Broker(BrokerEvent::CkWritten {
                revive_qid,
                revive_offset,
                ..
            })
            | EventKind::Broker(BrokerEvent::AckWritten {
                revive_qid,
                revive_offset,
                ..
            }) => {
                records.insert((*revive_qid, *revive_offset), idx);
            }
            EventKind::Broker(BrokerEvent::ReviveOffsetCommitted { revive_qid, .. }) => {
                last_commit.insert(*revive_qid, idx);
            }
            EventKind::Broker(BrokerEvent::Restarted { .. }) => up_since = e.at,
            _ => {}
        }
    }
    let mut judged = 0usize;
    let mut found = Vec::new();
    for rq in &fs.revive_queues {
        let due =
            rq.last_deliver_at.is_none_or(|d| d + SETTLE_MS <= end) && up_since + SETTLE_MS <= end;
        if rq.max_offset == 0 || !due {
            continue;
        }
        judged += 1;
        let last = rq.max_offset as i64 - 1;
        if rq.committed_offset >= last {
            continue;
        }
        let next = (rq.committed_offset + 1).max(0) as u64;
        let mut events: Vec<usize> = records
            .get(&(rq.revive_qid, next))
            .copied()
            .into_iter()
            .collect();
        events.extend(last_commit.get(&rq.revive_qid));
        let due_by = rq
            .last_deliver_at
            .map_or_else(String::new, |d| format!(", all visible by {}", secs(d)));
        found.push(Witness {
            msg_id: None,
            summary: format!(
                "revive queue {} ends with {} records{due_by}, but the revive group's offset is {} (the last record is {last}); the run ended at {}",
                rq.revive_qid,
                rq.max_offset,
                rq.committed_offset,
                secs(end)
            ),
            events: witness_events(events),
        });
    }
    if judged == 0 {
        return Verdict::not_applicable("no revive queue had records past due at the end");
    }
    Verdict::from_witness(found.into_iter().next())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::invariants::Status;
    use crate::testkit::H;
    use broker_core::events::ReviveQueueState;
    use broker_core::CkRef;

    fn ck() -> CkRef {
        CkRef {
            topic: crate::testkit::T.into(),
            group: "g1".into(),
            queue_id: 0,
            start_offset: 0,
            pop_time: 1_000,
            invisible_time: 10_000,
            num: 1,
            broker_name: "broker-a".into(),
        }
    }

    fn rq(
        max_offset: u64,
        committed_offset: i64,
        last_deliver_at: Option<Millis>,
    ) -> ReviveQueueState {
        ReviveQueueState {
            revive_qid: 0,
            max_offset,
            committed_offset,
            last_deliver_at,
        }
    }

    #[test]
    fn a_stuck_revive_offset_is_a_violation() {
        let mut h = H::new();
        h.end(0, 60_000);
        h.at(1_000).broker(BrokerEvent::CkWritten {
            at: 1_000,
            ck: ck(),
            revive_qid: 0,
            revive_offset: 0,
            deliver_at: 10_000,
            reason: "addCkJustOffset".into(),
        });
        let stuck = h.at(1_000).broker(BrokerEvent::AckWritten {
            at: 1_000,
            topic: crate::testkit::T.into(),
            group: "g1".into(),
            queue_id: 0,
            start_offset: 0,
            pop_time: 1_000,
            ack_offsets: vec![0],
            broker_name: Some("broker-a".into()),
            revive_qid: 0,
            revive_offset: 1,
            deliver_at: 11_000,
            batch: false,
            reason: "ack".into(),
        });
        let commit = h.at(13_000).broker(BrokerEvent::ReviveOffsetCommitted {
            at: 13_000,
            revive_qid: 0,
            offset: 0,
        });
        h.final_state.revive_queues = vec![rq(2, 0, Some(11_000))];
        let v = check(&h.build());
        assert_eq!(v.status, Status::Violated);
        let w = v.witness.unwrap();
        assert_eq!(w.events, vec![stuck, commit]);
        assert_eq!(
            w.summary,
            "revive queue 0 ends with 2 records, all visible by 11.000s, but the revive group's offset is 0 (the last record is 1); the run ended at 60.000s"
        );
    }

    #[test]
    fn processed_or_not_yet_due_queues_hold() {
        let mut h = H::new();
        h.end(0, 60_000);
        h.final_state.revive_queues = vec![
            rq(2, 1, Some(11_000)),
            ReviveQueueState {
                revive_qid: 1,
                ..rq(0, -1, None)
            },
        ];
        assert_eq!(check(&h.build()), Verdict::held());

        h.final_state.revive_queues = vec![rq(2, 0, Some(55_000))];
        assert_eq!(
            check(&h.build()),
            Verdict::not_applicable("no revive queue had records past due at the end")
        );

        h.final_state.revive_queues = vec![rq(2, 0, Some(11_000))];
        h.at(55_000).restart();
        assert!(
            matches!(check(&h.build()).status, Status::NotApplicable { .. }),
            "restarted too recently"
        );
        h.final_state.running = false;
        assert_eq!(
            check(&h.build()),
            Verdict::not_applicable("the broker was not running at the end")
        );
    }
}
