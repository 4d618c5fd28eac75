//! Historical behaviours: the closed set of upstream decisions that a later pull request
//! changed. Each one, when switched on, restores exactly the old decision at the one place
//! the upstream fix touched; the symptom (a duplicate, a lost offset, a hung future) has to
//! emerge from the simulated interaction. Nothing here says "deliver twice".
//!
//! The default is upstream develop: every behaviour fixed.

use serde::{Deserialize, Serialize};
use std::collections::BTreeSet;
use std::fmt;
use std::str::FromStr;

/// Which program carries the decision.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Side {
    /// broker-core reads the switch.
    Broker,
    /// A client model in the simulation reads the switch.
    Client,
}

/// One historical behaviour. The kebab-case names are the CLI and scenario-file names.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Behaviour {
    /// Before #8494: `PopReviveService` merge keys carry no brokerName.
    ReviveMergeKeyWithoutBrokerName,
    /// Before #8836: `PopBufferMergeService.putAckToStore` writes AckMsgs without brokerName.
    BufferedAckMissingBrokerName,
    /// Before #8981: `PopReviveService` does not substitute its own brokerName for a blank one.
    ReviveNoBlankBrokerNameFallback,
    /// 5.3.2 (#9087) until #9370: `resetOffsetInner` commits the pull offset on the KV path.
    ResetCommitsPullOffset,
    /// Until #9696: KV-path FIFO pops read the pull offset (`queryPullOffset`).
    KvFifoReadsPullOffset,
    /// Before #9150: `assignResetOffset` writes offsetTable only when the key already exists.
    ResetNeedsExistingOffsetKey,
    /// Before #8333 (client): a pop-timed-out result skips `processConsumeResult`, the only
    /// place maxReconsumeTimes was checked.
    PopTimeoutSkipsMaxReconsume,
    /// Before #8368 (client): the offset store can only update the broker oneway.
    OffsetUpdateOnewayOnly,
    /// #8368 until #10006 (client): `updateConsumerOffsetAsync` leaves the future incomplete
    /// for a response code its switch does not map.
    OffsetFutureUnmappedResponse,
}

/// Static facts about a behaviour: where upstream changed it and which releases have it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct BehaviourInfo {
    pub behaviour: Behaviour,
    /// Kebab-case name, as typed on the command line.
    pub name: &'static str,
    pub side: Side,
    /// Upstream issue that reported it (apache/rocketmq).
    pub issue: &'static str,
    /// Upstream pull request that changed the decision.
    pub fix: &'static str,
    /// The decision, old versus new, in upstream's vocabulary.
    pub decision: &'static str,
    /// Releases (of [`Release::ALL`]) that carry the old decision.
    pub releases: &'static [Release],
}

impl Behaviour {
    /// Every behaviour, in registry order.
    pub const ALL: [Behaviour; 9] = [
        Behaviour::ReviveMergeKeyWithoutBrokerName,
        Behaviour::BufferedAckMissingBrokerName,
        Behaviour::ReviveNoBlankBrokerNameFallback,
        Behaviour::ResetCommitsPullOffset,
        Behaviour::KvFifoReadsPullOffset,
        Behaviour::ResetNeedsExistingOffsetKey,
        Behaviour::PopTimeoutSkipsMaxReconsume,
        Behaviour::OffsetUpdateOnewayOnly,
        Behaviour::OffsetFutureUnmappedResponse,
    ];

    /// The registry entry for this behaviour.
    pub fn info(self) -> BehaviourInfo {
        use Behaviour::*;
        use Release::*;
        let (name, side, issue, fix, decision, releases): (_, _, _, _, _, &'static [Release]) =
            match self {
                ReviveMergeKeyWithoutBrokerName => (
                    "revive-merge-key-without-broker-name",
                    Side::Broker,
                    "#8460",
                    "#8494",
                    "PopReviveService.consumeReviveMessage keys CKs and ACKs by topic+cid+queueId+startOffset+popTime, without brokerName",
                    &[V5_3_0],
                ),
                BufferedAckMissingBrokerName => (
                    "buffered-ack-missing-broker-name",
                    Side::Broker,
                    "#8835",
                    "#8836",
                    "PopBufferMergeService.putAckToStore builds the AckMsg without setBrokerName(point.getBrokerName())",
                    &[V5_3_0, V5_3_1],
                ),
                ReviveNoBlankBrokerNameFallback => (
                    "revive-no-blank-broker-name-fallback",
                    Side::Broker,
                    "#8460",
                    "#8981",
                    "PopReviveService keys an ACK with a blank brokerName as blank instead of this broker's name",
                    &[V5_3_0, V5_3_1],
                ),
                ResetCommitsPullOffset => (
                    "reset-commits-pull-offset",
                    Side::Broker,
                    "#9369",
                    "#9370",
                    "AdminBrokerProcessor.resetOffsetInner on the KV path calls commitPullOffset(reset) instead of clearPullOffset(group, topic)",
                    &[V5_3_2],
                ),
                KvFifoReadsPullOffset => (
                    "kv-fifo-reads-pull-offset",
                    Side::Broker,
                    "#9695",
                    "#9696",
                    "PopConsumerService.getPopOffset reads queryPullOffset for FIFO pops instead of queryOffset",
                    &[V5_3_2, V5_3_3],
                ),
                ResetNeedsExistingOffsetKey => (
                    "reset-needs-existing-offset-key",
                    Side::Broker,
                    "#9149",
                    "#9150",
                    "ConsumerOffsetManager.assignResetOffset writes offsetTable only if a map already exists for topic@group",
                    &[V5_3_0, V5_3_1],
                ),
                PopTimeoutSkipsMaxReconsume => (
                    "pop-timeout-skips-max-reconsume",
                    Side::Client,
                    "#8332",
                    "#8333",
                    "DefaultMQPushConsumerImpl.processPopResult does not ack messages whose reconsumeTimes exceeds maxReconsumeTimes; a pop-timed-out result skips processConsumeResult",
                    &[V5_3_0],
                ),
                OffsetUpdateOnewayOnly => (
                    "offset-update-oneway-only",
                    Side::Client,
                    "#8365",
                    "#8368",
                    "the offset store updates the broker with updateConsumerOffsetOneway only; there is no updateConsumerOffsetAsync",
                    &[V5_3_0],
                ),
                OffsetFutureUnmappedResponse => (
                    "offset-future-unmapped-response",
                    Side::Client,
                    "#10005",
                    "#10006",
                    "MQClientAPIExt.updateConsumerOffsetAsync maps SUCCESS, SYSTEM_ERROR, SUBSCRIPTION_GROUP_NOT_EXIST and TOPIC_NOT_EXIST only (no default), so any other code never completes the future",
                    &[V5_3_1, V5_3_2, V5_3_3],
                ),
            };
        BehaviourInfo {
            behaviour: self,
            name,
            side,
            issue,
            fix,
            decision,
            releases,
        }
    }

    /// The kebab-case name.
    pub fn name(self) -> &'static str {
        self.info().name
    }

    /// Every valid name, comma-separated, for error messages.
    pub fn valid_names() -> String {
        Behaviour::ALL
            .iter()
            .map(|b| b.name())
            .collect::<Vec<_>>()
            .join(", ")
    }
}

impl fmt::Display for Behaviour {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// An unknown behaviour or release name; the message lists the valid ones.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UnknownName {
    pub what: &'static str,
    pub given: String,
    pub valid: String,
}

impl fmt::Display for UnknownName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "unknown {} `{}`; valid: {}",
            self.what, self.given, self.valid
        )
    }
}

impl std::error::Error for UnknownName {}

impl FromStr for Behaviour {
    type Err = UnknownName;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Behaviour::ALL
            .into_iter()
            .find(|b| b.name() == s)
            .ok_or_else(|| UnknownName {
                what: "historical behaviour",
                given: s.to_owned(),
                valid: Behaviour::valid_names(),
            })
    }
}

/// The set of historical behaviours switched on for one run. Empty = upstream develop.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Behaviours(BTreeSet<Behaviour>);

impl Behaviours {
    /// Every behaviour fixed (upstream develop).
    pub fn fixed() -> Self {
        Self::default()
    }

    pub fn with(mut self, b: Behaviour) -> Self {
        self.0.insert(b);
        self
    }

    pub fn insert(&mut self, b: Behaviour) {
        self.0.insert(b);
    }

    /// Is the old decision in force?
    pub fn is_on(&self, b: Behaviour) -> bool {
        self.0.contains(&b)
    }

    pub fn iter(&self) -> impl Iterator<Item = Behaviour> + '_ {
        self.0.iter().copied()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl FromIterator<Behaviour> for Behaviours {
    fn from_iter<I: IntoIterator<Item = Behaviour>>(iter: I) -> Self {
        Self(iter.into_iter().collect())
    }
}

/// An upstream release profile: the behaviours it carries and what it can be configured with.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum Release {
    #[serde(rename = "5.3.0")]
    V5_3_0,
    #[serde(rename = "5.3.1")]
    V5_3_1,
    #[serde(rename = "5.3.2")]
    V5_3_2,
    #[serde(rename = "5.3.3")]
    V5_3_3,
    /// Upstream develop with every fix in.
    #[serde(rename = "latest")]
    Latest,
}

impl Release {
    pub const ALL: [Release; 5] = [
        Release::V5_3_0,
        Release::V5_3_1,
        Release::V5_3_2,
        Release::V5_3_3,
        Release::Latest,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Release::V5_3_0 => "5.3.0",
            Release::V5_3_1 => "5.3.1",
            Release::V5_3_2 => "5.3.2",
            Release::V5_3_3 => "5.3.3",
            Release::Latest => "latest",
        }
    }

    /// The historical behaviours present in this release.
    pub fn behaviours(self) -> Behaviours {
        Behaviour::ALL
            .into_iter()
            .filter(|b| b.info().releases.contains(&self))
            .collect()
    }

    /// The RIP-73 KV pop path (`popConsumerKVServiceEnable`) first shipped in 5.3.2; an older
    /// broker ignores the setting and pops on the classic path.
    pub fn has_kv_pop_path(self) -> bool {
        self >= Release::V5_3_2
    }
}

impl fmt::Display for Release {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Release {
    type Err = UnknownName;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Release::ALL
            .into_iter()
            .find(|r| r.name() == s)
            .ok_or_else(|| UnknownName {
                what: "release",
                given: s.to_owned(),
                valid: Release::ALL
                    .iter()
                    .map(|r| r.name())
                    .collect::<Vec<_>>()
                    .join(", "),
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_are_unique() {
        let mut seen = BTreeSet::new();
        for b in Behaviour::ALL {
            assert!(seen.insert(b.name()), "duplicate name {}", b.name());
            assert_eq!(b.name().parse::<Behaviour>().unwrap(), b);
            assert!(!b.info().releases.is_empty());
            assert!(
                !b.info().releases.contains(&Release::Latest),
                "latest has every fix"
            );
        }
    }

    #[test]
    fn unknown_name_lists_valid_ones() {
        let err = "deliver-twice".parse::<Behaviour>().unwrap_err();
        assert!(err.to_string().contains("buffered-ack-missing-broker-name"));
        let err = "5.4.0".parse::<Release>().unwrap_err();
        assert!(err.to_string().contains("5.3.2"));
    }

    #[test]
    fn release_profiles_follow_upstream_history() {
        let r531 = Release::V5_3_1.behaviours();
        assert!(r531.is_on(Behaviour::BufferedAckMissingBrokerName));
        assert!(r531.is_on(Behaviour::ReviveNoBlankBrokerNameFallback));
        assert!(!r531.is_on(Behaviour::ReviveMergeKeyWithoutBrokerName));
        let r532 = Release::V5_3_2.behaviours();
        assert!(r532.is_on(Behaviour::ResetCommitsPullOffset));
        assert!(!r532.is_on(Behaviour::BufferedAckMissingBrokerName));
        assert!(!Release::V5_3_3
            .behaviours()
            .is_on(Behaviour::ResetCommitsPullOffset));
        assert!(Release::Latest.behaviours().is_empty());
        assert!(!Release::V5_3_1.has_kv_pop_path());
        assert!(Release::V5_3_2.has_kv_pop_path());
    }
}
