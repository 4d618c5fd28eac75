//! The semantic pass: names unique and resolvable, the timeline consistent, values within
//! [`crate::limits`]. It runs on a scenario that already has the right shape and types, and
//! collects every problem rather than stopping at the first.

use crate::error::{valid_list, IssueKind};
use crate::limits::*;
use crate::locate::{kp, KeyPath};
use crate::model::*;
use crate::Context;
use broker_core::{Behaviour, Fix, Millis};
use std::collections::{BTreeMap, BTreeSet};

/// A problem found by [`validate`], at a key path.
pub struct Problem {
    pub kind: IssueKind,
    pub path: KeyPath,
    pub message: String,
}

struct V<'a> {
    sc: &'a Scenario,
    ctx: &'a Context,
    /// Is this key written in the file (rather than defaulted)?
    present: &'a dyn Fn(&KeyPath) -> bool,
    out: Vec<Problem>,
}

impl<'a> V<'a> {
    fn invalid(&mut self, path: KeyPath, message: impl Into<String>) {
        self.out.push(Problem {
            kind: IssueKind::Invalid,
            path,
            message: message.into(),
        });
    }
    fn limit(&mut self, path: KeyPath, message: impl Into<String>) {
        self.out.push(Problem {
            kind: IssueKind::Limit,
            path,
            message: message.into(),
        });
    }
}

/// What loads but likely does not do what the author meant: `(key, message)` pairs.
pub fn warnings(sc: &Scenario) -> Vec<(KeyPath, String)> {
    let mut out = Vec::new();
    for (i, step) in sc.steps.iter().enumerate() {
        if let Action::ResetOffset {
            queue: -1,
            offset: Some(offset),
            ..
        } = &step.action
        {
            let at = KeyPath::root().key("steps").index(i);
            out.push((
                at.key("offset"),
                format!(
                    "ignored: with `queue = -1` (every queue) upstream resets each queue by timestamp, not to offset {offset} (AdminBrokerProcessor.resetOffsetInner builds the offset map by timestamp unless one queue and an offset are given); name a queue to reset it to this offset"
                ),
            ));
        }
    }
    let proxy = &sc.proxy;
    for (i, c) in sc.consumers.iter().enumerate() {
        let t = c.pop_invisible_time_ms;
        let (min, max) = (
            proxy.min_invisible_time_mills_for_recv,
            proxy.max_invisible_time_mills,
        );
        if c.kind == ConsumerKindSpec::GrpcSimple && c.receive_loop && !(min..=max).contains(&t) {
            out.push((
                KeyPath::root()
                    .key("consumers")
                    .index(i)
                    .key("pop_invisible_time_ms"),
                format!(
                    "the proxy refuses every receive of this loop (ILLEGAL_INVISIBLE_TIME): {t} is outside [minInvisibleTimeMillsForRecv {min}, maxInvisibleTimeMills {max}] (GrpcValidator.validateInvisibleTime)"
                ),
            ));
        }
    }
    out
}

/// Check `sc`; an empty result means it is valid.
const LOCAL_MODE_REFUSED: &str = "is not modelled with [proxy] proxyMode = \"local\" (the proxy runs inside the broker process: a crash, shutdown, pause, clog or lost call would have to stop or cut both at once)";

/// What `sc` has that popsim's local mode does not model, with where: the proxy lives in
/// the broker process and calls its processors in-process, which popsim models as the proxy
/// node calling the broker over a network nothing disturbs (the scenario's latency stands for
/// the in-process hop's thread scheduling). So a fault that would separate the two, stop one
/// without the other, or lose a call between them is refused: random loss, clogs and
/// crashes, and scripted crashes, shutdowns, restarts, loss, and clogs or pauses of the
/// broker or the proxy. Random pauses stop consumers only. A swarm that draws local mode
/// draws it only where this is empty.
pub(crate) fn local_mode_refusals(sc: &Scenario) -> Vec<(KeyPath, &'static str)> {
    let mut out = Vec::new();
    let f = &sc.faults;
    for (key, on, what) in [
        ("loss_rate", f.loss_rate > 0.0, "random packet loss"),
        ("clog_every_ms", f.clog_every_ms > 0, "random clogs"),
        (
            "crash_every_ms",
            f.crash_every_ms > 0,
            "random broker stops",
        ),
    ] {
        if on {
            out.push((kp!["faults", key], what));
        }
    }
    for (i, step) in sc.steps.iter().enumerate() {
        let refused = match &step.action {
            Action::Crash => Some("a `crash` step"),
            Action::Shutdown => Some("a `shutdown` step"),
            Action::Restart => Some("a `restart` step"),
            Action::Clog { node } | Action::Unclog { node } | Action::Pause { node, .. }
                if node == "broker" || node == "proxy" =>
            {
                Some("clogging or pausing the broker or the proxy")
            }
            Action::SetLoss { rate } if *rate > 0.0 => Some("packet loss"),
            _ => None,
        };
        if let Some(what) = refused {
            out.push((kp!["steps", i, "action"], what));
        }
    }
    out
}

pub fn validate(sc: &Scenario, ctx: &Context, present: &dyn Fn(&KeyPath) -> bool) -> Vec<Problem> {
    let mut v = V {
        sc,
        ctx,
        present,
        out: Vec::new(),
    };
    v.top_level();
    v.broker();
    v.proxy();
    let topics = v.topics();
    let groups = v.names("groups", sc.groups.iter().map(|g| g.name.as_str()), true);
    v.nodes();
    v.producers(&topics);
    v.consumers(&topics, &groups);
    v.clients();
    v.steps(&topics, &groups);
    v.total_messages();
    v.faults();
    v.fault_clients();
    v.scheduler();
    v.expect();
    v.out.extend(crate::swarm::validate(sc));
    v.out
}

fn is_kebab(s: &str) -> bool {
    !s.is_empty()
        && s.chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
        && !s.starts_with('-')
        && !s.ends_with('-')
}

/// RocketMQ's topic/group character set (`TopicValidator`), minus `%` and `|`, which only
/// system topics use.
fn is_rocketmq_name(s: &str) -> bool {
    !s.is_empty()
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
}

impl<'a> V<'a> {
    fn top_level(&mut self) {
        let sc = self.sc;
        if !is_kebab(&sc.name) {
            self.invalid(
                kp!["name"],
                format!("`{}` is not a kebab-case name (a-z, 0-9, -)", sc.name),
            );
        } else if sc.name.len() > MAX_NAME_LEN {
            self.limit(
                kp!["name"],
                format!("longer than {MAX_NAME_LEN} characters"),
            );
        }
        if sc.description.chars().count() > MAX_DESCRIPTION_LEN {
            self.limit(
                kp!["description"],
                format!("longer than {MAX_DESCRIPTION_LEN} characters"),
            );
        }
        if sc.duration_ms == 0 {
            self.invalid(kp!["duration_ms"], "must be greater than 0");
        } else if sc.duration_ms > MAX_DURATION_MS {
            self.limit(
                kp!["duration_ms"],
                format!(
                    "{} exceeds the limit of {MAX_DURATION_MS} (24 h)",
                    sc.duration_ms
                ),
            );
        }
        if sc.quiet_period_ms > sc.duration_ms {
            if (self.present)(&kp!["quiet_period_ms"]) {
                self.invalid(
                    kp!["quiet_period_ms"],
                    format!(
                        "{} is longer than duration_ms {}",
                        sc.quiet_period_ms, sc.duration_ms
                    ),
                );
            } else {
                self.invalid(
                    kp!["duration_ms"],
                    format!(
                        "{} is shorter than the default quiet_period_ms ({}); set quiet_period_ms to at most duration_ms",
                        sc.duration_ms, sc.quiet_period_ms
                    ),
                );
            }
        }
        if sc.seeds.is_empty() {
            self.invalid(kp!["seeds"], "at least one seed is needed");
        } else if sc.seeds.len() > MAX_SEEDS {
            self.limit(
                kp!["seeds"],
                format!("{} seeds exceed the limit of {MAX_SEEDS}", sc.seeds.len()),
            );
        } else {
            let mut seen = BTreeSet::new();
            for (i, s) in sc.seeds.iter().enumerate() {
                if !seen.insert(*s) {
                    self.invalid(kp!["seeds", i], format!("seed {s} is listed twice"));
                }
            }
        }
        for (key, list) in [
            ("replays", &sc.replays),
            ("fixes", &sc.fixes),
            ("upstream", &sc.upstream),
        ] {
            if list.len() > MAX_LIST_LEN {
                self.limit(kp![key], format!("more than {MAX_LIST_LEN} entries"));
            }
        }
        let mut seen = BTreeSet::new();
        for (i, r) in sc.replays.iter().enumerate() {
            if let Err(e) = r.parse::<Behaviour>() {
                self.invalid(kp!["replays", i], e.to_string());
            } else if !seen.insert(r) {
                self.invalid(kp!["replays", i], format!("`{r}` is listed twice"));
            }
        }
        let mut seen = BTreeSet::new();
        for (i, f) in sc.fixes.iter().enumerate() {
            if let Err(e) = f.parse::<Fix>() {
                self.invalid(kp!["fixes", i], e.to_string());
            } else if !seen.insert(f) {
                self.invalid(kp!["fixes", i], format!("`{f}` is listed twice"));
            }
        }
    }

    fn broker(&mut self) {
        let b = &self.sc.broker;
        let p = |k: &str| kp!["broker", k];
        if b.broker_name.trim().is_empty() {
            self.invalid(p("brokerName"), "must not be empty");
        }
        if b.broker_cluster_name.trim().is_empty() {
            self.invalid(p("brokerClusterName"), "must not be empty");
        }
        if b.revive_queue_num == 0 || b.revive_queue_num > MAX_REVIVE_QUEUE_NUM {
            self.limit(
                p("reviveQueueNum"),
                format!(
                    "{} is outside 1..={MAX_REVIVE_QUEUE_NUM}",
                    b.revive_queue_num
                ),
            );
        }
        let positive: [(&str, Millis); 6] = [
            ("popCkStayBufferTime", b.pop_ck_stay_buffer_time),
            ("popCkStayBufferTimeOut", b.pop_ck_stay_buffer_time_out),
            ("reviveInterval", b.revive_interval),
            ("reviveScanTime", b.revive_scan_time),
            (
                "flushConsumerOffsetInterval",
                b.flush_consumer_offset_interval,
            ),
            ("reviveAckWaitMs", b.revive_ack_wait_ms),
        ];
        for (k, val) in positive {
            if val == 0 {
                self.invalid(p(k), "must be greater than 0");
            } else if val > MAX_DURATION_MS {
                self.limit(
                    p(k),
                    format!("{val} exceeds the limit of {MAX_DURATION_MS} (24 h)"),
                );
            }
        }
        if b.revive_max_slow == 0 {
            self.invalid(p("reviveMaxSlow"), "must be at least 1");
        }
        if b.pop_from_retry_probability > 100 {
            self.invalid(
                p("popFromRetryProbability"),
                format!("{} is a percentage: 0..=100", b.pop_from_retry_probability),
            );
        }
        if b.pop_ck_max_buffer_size > MAX_TOTAL_MESSAGES * 10 {
            self.limit(
                p("popCkMaxBufferSize"),
                format!("exceeds {}", MAX_TOTAL_MESSAGES * 10),
            );
        }
        if b.pop_ck_offset_max_queue_size > MAX_TOTAL_MESSAGES {
            self.limit(
                p("popCkOffsetMaxQueueSize"),
                format!("exceeds {MAX_TOTAL_MESSAGES}"),
            );
        }
    }

    /// `proxyMode = "local"` with what local mode does not model ([`local_mode_refusals`]),
    /// or with a swarm that draws (its faults would be drawn).
    fn local_proxy(&mut self) {
        if self.sc.proxy.proxy_mode != ProxyMode::Local {
            return;
        }
        for (path, what) in local_mode_refusals(self.sc) {
            self.invalid(path, format!("{what} {LOCAL_MODE_REFUSED}"));
        }
        // A resolved seed keeps the swarm's fixed part (baseline, BUGGIFY), which draws
        // nothing; BUGGIFY's sites slow clients and the timer, none of them a refused fault.
        if self.sc.swarm.as_ref().is_some_and(|s| s.draws_anything()) {
            self.invalid(
                kp!["swarm"],
                format!("a swarm (random faults) {LOCAL_MODE_REFUSED}; `[swarm] local_proxy_percent` draws local mode on seeds without them"),
            );
        }
    }

    fn proxy(&mut self) {
        self.local_proxy();
        let c = &self.sc.proxy;
        let p = |k: &str| kp!["proxy", k];
        for (k, val) in [
            ("defaultInvisibleTimeMills", c.default_invisible_time_mills),
            ("maxInvisibleTimeMills", c.max_invisible_time_mills),
            (
                "grpcClientConsumerMinLongPollingTimeoutMillis",
                c.grpc_client_consumer_min_long_polling_timeout_millis,
            ),
            (
                "grpcClientConsumerMaxLongPollingTimeoutMillis",
                c.grpc_client_consumer_max_long_polling_timeout_millis,
            ),
            ("renewAheadTimeMillis", c.renew_ahead_time_millis),
            ("renewMaxTimeMillis", c.renew_max_time_millis),
            ("renewSchedulePeriodMillis", c.renew_schedule_period_millis),
        ] {
            if val == 0 {
                self.invalid(p(k), "must be greater than 0");
            } else if val > MAX_DURATION_MS {
                self.limit(
                    p(k),
                    format!("{val} exceeds the limit of {MAX_DURATION_MS} (24 h)"),
                );
            }
        }
        if c.min_invisible_time_mills_for_recv > MAX_DURATION_MS {
            self.limit(
                p("minInvisibleTimeMillsForRecv"),
                format!("exceeds the limit of {MAX_DURATION_MS} (24 h)"),
            );
        }
        if c.grpc_client_consumer_min_long_polling_timeout_millis
            > c.grpc_client_consumer_max_long_polling_timeout_millis
        {
            self.invalid(
                p("grpcClientConsumerMinLongPollingTimeoutMillis"),
                format!(
                    "{} is greater than grpcClientConsumerMaxLongPollingTimeoutMillis {}",
                    c.grpc_client_consumer_min_long_polling_timeout_millis,
                    c.grpc_client_consumer_max_long_polling_timeout_millis
                ),
            );
        }
        if c.grpc_client_consumer_long_polling_batch_size == 0 {
            self.invalid(
                p("grpcClientConsumerLongPollingBatchSize"),
                "must be at least 1",
            );
        }
        if c.max_renew_retry_times > 1_000 {
            self.limit(p("maxRenewRetryTimes"), "exceeds 1000");
        }
    }

    /// Check a list of names: non-empty, RocketMQ characters, unique, within the count limit.
    /// Returns the names.
    fn names<'n>(
        &mut self,
        table: &str,
        names: impl Iterator<Item = &'n str>,
        rocketmq: bool,
    ) -> Vec<&'n str> {
        let names: Vec<&str> = names.collect();
        if names.len() > MAX_ENTITIES {
            self.limit(
                kp![table],
                format!("{} entries exceed the limit of {MAX_ENTITIES}", names.len()),
            );
        }
        let mut seen = BTreeSet::new();
        for (i, n) in names.iter().enumerate() {
            let at = kp![table, i, "name"];
            if n.is_empty() {
                self.invalid(at, "must not be empty");
            } else if n.chars().count() > MAX_NAME_LEN {
                self.limit(at, format!("longer than {MAX_NAME_LEN} characters"));
            } else if rocketmq && !is_rocketmq_name(n) {
                self.invalid(at, format!("`{n}` may contain only A-Z, a-z, 0-9, _ and -"));
            } else if !seen.insert(*n) {
                self.invalid(at, format!("`{n}` is defined twice"));
            }
        }
        names
    }

    fn topics(&mut self) -> BTreeMap<&'a str, u32> {
        let sc = self.sc;
        self.names("topics", sc.topics.iter().map(|t| t.name.as_str()), true);
        for (i, t) in sc.topics.iter().enumerate() {
            if t.queues == 0 || t.queues > MAX_QUEUES {
                self.limit(
                    kp!["topics", i, "queues"],
                    format!("{} is outside 1..={MAX_QUEUES}", t.queues),
                );
            }
        }
        sc.topics
            .iter()
            .map(|t| (t.name.as_str(), t.queues))
            .collect()
    }

    /// Producers, consumers and clients share one namespace (and `broker` is taken): `clog`
    /// and `pause` steps address them by name.
    fn nodes(&mut self) {
        let sc = self.sc;
        self.names(
            "producers",
            sc.producers.iter().map(|p| p.name.as_str()),
            true,
        );
        self.names(
            "consumers",
            sc.consumers.iter().map(|c| c.name.as_str()),
            true,
        );
        self.names("clients", sc.clients.iter().map(|c| c.name.as_str()), true);
        let mut owner: BTreeMap<&str, &str> = BTreeMap::new();
        let all = sc
            .producers
            .iter()
            .enumerate()
            .map(|(i, p)| ("producers", i, p.name.as_str()))
            .chain(
                sc.consumers
                    .iter()
                    .enumerate()
                    .map(|(i, c)| ("consumers", i, c.name.as_str())),
            )
            .chain(
                sc.clients
                    .iter()
                    .enumerate()
                    .map(|(i, c)| ("clients", i, c.name.as_str())),
            );
        for (table, i, name) in all {
            if name == "broker" || name == "proxy" {
                self.invalid(
                    kp![table, i, "name"],
                    format!("`{name}` is reserved for the {name} node"),
                );
            } else if let Some(prev) = owner.get(name) {
                if *prev != table {
                    self.invalid(
                        kp![table, i, "name"],
                        format!("`{name}` is already the name of one of the {prev}; node names must be unique"),
                    );
                }
            } else {
                owner.insert(name, table);
            }
        }
    }

    fn topic_ref(&mut self, at: KeyPath, name: &str, topics: &BTreeMap<&str, u32>) -> Option<u32> {
        let q = topics.get(name).copied();
        if q.is_none() {
            self.invalid(
                at,
                format!(
                    "unknown topic `{name}`; {}",
                    valid_list(topics.keys().copied())
                ),
            );
        }
        q
    }

    fn group_ref(&mut self, at: KeyPath, name: &str, groups: &[&str]) {
        if !groups.contains(&name) {
            self.invalid(
                at,
                format!(
                    "unknown group `{name}`; {}",
                    valid_list(groups.iter().copied())
                ),
            );
        }
    }

    fn queue_ref(&mut self, at: KeyPath, queue: i64, queues: Option<u32>, topic: &str) {
        if let Some(n) = queues {
            if queue < 0 || queue >= i64::from(n) {
                self.invalid(
                    at,
                    format!(
                        "queue {queue} does not exist: topic `{topic}` has queues 0..={}",
                        n.saturating_sub(1)
                    ),
                );
            }
        }
    }

    fn time(&mut self, at: KeyPath, t: Millis, what: &str) {
        if t > self.sc.duration_ms {
            self.invalid(
                at,
                format!("{what} {t} is after duration_ms {}", self.sc.duration_ms),
            );
        }
    }

    fn range(&mut self, at: KeyPath, r: RangeMs) {
        if r.min > r.max {
            self.invalid(
                at.key("min"),
                format!("min {} is greater than max {}", r.min, r.max),
            );
        } else if r.max > MAX_DURATION_MS {
            self.limit(
                at.key("max"),
                format!("{} exceeds the limit of {MAX_DURATION_MS} (24 h)", r.max),
            );
        }
    }

    fn invisible(&mut self, at: KeyPath, t: Millis) {
        if t == 0 {
            self.invalid(at, "must be greater than 0");
        } else if t > MAX_INVISIBLE_TIME_MS {
            self.limit(
                at,
                format!("{t} exceeds the limit of {MAX_INVISIBLE_TIME_MS} (12 h)"),
            );
        }
    }

    fn batch(&mut self, at: KeyPath, n: u32) {
        if n == 0 || n > MAX_POP_BATCH {
            self.limit(
                at,
                format!("{n} is outside 1..={MAX_POP_BATCH} (the broker rejects maxMsgNums > 32)"),
            );
        }
    }

    fn producers(&mut self, topics: &BTreeMap<&str, u32>) {
        for (i, p) in self.sc.producers.iter().enumerate() {
            let queues = self.topic_ref(kp!["producers", i, "topic"], &p.topic, topics);
            if let Some(q) = p.queue {
                self.queue_ref(kp!["producers", i, "queue"], q.into(), queues, &p.topic);
            }
            if p.messages > MAX_TOTAL_MESSAGES {
                self.limit(
                    kp!["producers", i, "messages"],
                    format!(
                        "{} exceeds the limit of {MAX_TOTAL_MESSAGES} messages per run",
                        p.messages
                    ),
                );
            }
            self.time(kp!["producers", i, "start_at_ms"], p.start_at_ms, "start");
            if p.interval_ms > MAX_DURATION_MS {
                self.limit(
                    kp!["producers", i, "interval_ms"],
                    format!("exceeds {MAX_DURATION_MS} (24 h)"),
                );
            }
        }
    }

    fn consumers(&mut self, topics: &BTreeMap<&str, u32>, groups: &[&str]) {
        for (i, c) in self.sc.consumers.iter().enumerate() {
            let at = |k: &str| kp!["consumers", i, k];
            self.group_ref(at("group"), &c.group, groups);
            self.topic_ref(at("topic"), &c.topic, topics);
            self.invisible(at("pop_invisible_time_ms"), c.pop_invisible_time_ms);
            self.batch(at("pop_batch_nums"), c.pop_batch_nums);
            if c.max_reconsume_times < -1 || c.max_reconsume_times > MAX_RECONSUME_TIMES {
                self.limit(
                    at("max_reconsume_times"),
                    format!(
                        "{} is outside -1..={MAX_RECONSUME_TIMES}",
                        c.max_reconsume_times
                    ),
                );
            }
            self.range(at("consume_time_ms"), c.consume_time_ms);
            if c.failure_percent > 100 {
                self.invalid(
                    at("failure_percent"),
                    format!("{} is a percentage: 0..=100", c.failure_percent),
                );
            }
            self.time(at("start_at_ms"), c.start_at_ms, "start");
            if c.batch_ack {
                self.invalid(
                    at("batch_ack"),
                    "no client has this option: the remoting push consumer acks one message per ACK_MESSAGE and only the proxy batch-acks; use a grpc-push consumer and set [proxy] enableBatchAck = true",
                );
            }
            if c.kind == ConsumerKindSpec::GrpcPush && !self.sc.proxy.enable_proxy_auto_renew {
                self.invalid(
                    at("kind"),
                    "a gRPC push consumer receives with autoRenew and no invisible duration; with [proxy] enableProxyAutoRenew = false the proxy refuses every such receive (ILLEGAL_INVISIBLE_TIME)",
                );
            }
            if c.fifo && !c.kind.is_grpc() {
                self.invalid(
                    at("fifo"),
                    format!(
                        "a {} consumer pops non-orderly; fifo is the setting of a gRPC consumer's group (grpc-push, grpc-simple)",
                        kind_name(c.kind)
                    ),
                );
            }
            if c.keeps_attempt_id_until_messages && c.kind != ConsumerKindSpec::GrpcPush {
                self.invalid(
                    at("keeps_attempt_id_until_messages"),
                    format!(
                        "only a grpc-push consumer's process queues send receive attemptIds; a {} consumer does not",
                        kind_name(c.kind)
                    ),
                );
            }
            if c.receive_loop && c.kind != ConsumerKindSpec::GrpcSimple {
                self.invalid(
                    at("receive_loop"),
                    format!(
                        "only a grpc-simple consumer takes receive_loop; a {} consumer {}",
                        kind_name(c.kind),
                        if c.kind.is_stepped() {
                            "acts only on pop, ack and change-invisible-time steps"
                        } else {
                            "always runs its own loop"
                        }
                    ),
                );
            }
            match c.await_duration_ms {
                Some(_) if c.kind != ConsumerKindSpec::GrpcSimple => self.invalid(
                    at("await_duration_ms"),
                    format!(
                        "only a grpc-simple consumer has an await duration; a {} consumer has none",
                        kind_name(c.kind)
                    ),
                ),
                Some(0) => self.invalid(at("await_duration_ms"), "must be greater than 0"),
                Some(t) if t > MAX_DURATION_MS => self.limit(
                    at("await_duration_ms"),
                    format!("{t} exceeds the limit of {MAX_DURATION_MS} (24 h)"),
                ),
                _ => {}
            }
        }
    }

    fn clients(&mut self) {
        // Names are checked in `nodes`; kinds are an enum serde has checked.
    }

    fn steps(&mut self, topics: &BTreeMap<&str, u32>, groups: &[&str]) {
        let sc = self.sc;
        if sc.steps.len() > MAX_STEPS {
            self.limit(
                kp!["steps"],
                format!("{} steps exceed the limit of {MAX_STEPS}", sc.steps.len()),
            );
            return;
        }
        let consumers: BTreeMap<&str, &'a ConsumerSpec> =
            sc.consumers.iter().map(|c| (c.name.as_str(), c)).collect();
        let consumer_names: Vec<&str> = sc.consumers.iter().map(|c| c.name.as_str()).collect();
        let scripted: Vec<&str> = sc
            .consumers
            .iter()
            .filter(|c| c.is_stepped())
            .map(|c| c.name.as_str())
            .collect();
        let looping: Vec<&str> = sc
            .consumers
            .iter()
            .filter(|c| !c.is_stepped())
            .map(|c| c.name.as_str())
            .collect();
        let producers: Vec<&str> = sc.producers.iter().map(|p| p.name.as_str()).collect();
        let clients: BTreeMap<&str, ClientKind> = sc
            .clients
            .iter()
            .map(|c| (c.name.as_str(), c.kind))
            .collect();
        let clients_of = |k: ClientKind| -> Vec<&str> {
            sc.clients
                .iter()
                .filter(|c| c.kind == k)
                .map(|c| c.name.as_str())
                .collect()
        };
        let proxy = sc.consumers.iter().any(|c| c.kind.is_grpc());
        let nodes: Vec<&str> = std::iter::once("broker")
            .chain(proxy.then_some("proxy"))
            .chain(producers.iter().copied())
            .chain(consumer_names.iter().copied())
            .chain(sc.clients.iter().map(|c| c.name.as_str()))
            .collect();

        let mut prev_at = 0;
        let mut broker_up = true;
        let mut clogged: BTreeSet<&str> = BTreeSet::new();
        for (i, step) in sc.steps.iter().enumerate() {
            let at = |k: &str| kp!["steps", i, k];
            if step.at_ms < prev_at {
                self.invalid(
                    at("at_ms"),
                    format!(
                        "steps must be in time order: {} comes after a step at {prev_at}",
                        step.at_ms
                    ),
                );
            }
            prev_at = prev_at.max(step.at_ms);
            self.time(at("at_ms"), step.at_ms, "step time");

            // A scripted consumer is driven only by pop/ack/change-invisible-time steps;
            // a looping one only by start/stop-consumer.
            let scripted_ref = |this: &mut Self, name: &str| -> Option<&'a ConsumerSpec> {
                match consumers.get(name) {
                    None => {
                        this.invalid(
                            at("consumer"),
                            format!(
                                "unknown consumer `{name}`; {}",
                                valid_list(scripted.iter().copied())
                            ),
                        );
                        None
                    }
                    Some(c) if c.receive_loop && c.kind.is_stepped() => {
                        let i = sc
                            .consumers
                            .iter()
                            .position(|x| x.name == c.name)
                            .unwrap_or(0);
                        this.invalid(
                            at("consumer"),
                            format!(
                                "consumer `{name}` runs its own receive loop (consumers[{i}].receive_loop = true); a loop and pop, ack or change-invisible-time steps cannot drive the same consumer ({})",
                                if scripted.is_empty() { "no consumer takes steps".to_owned() } else { format!("stepped: {}", scripted.join(", ")) }
                            ),
                        );
                        None
                    }
                    Some(c) if !c.is_stepped() => {
                        this.invalid(
                            at("consumer"),
                            format!(
                                "consumer `{name}` is {}; only scripted and grpc-simple consumers take pop, ack and change-invisible-time steps ({})",
                                kind_name(c.kind),
                                if scripted.is_empty() { "none are defined".to_owned() } else { format!("stepped: {}", scripted.join(", ")) }
                            ),
                        );
                        None
                    }
                    Some(c) => Some(c),
                }
            };
            let client_ref = |this: &mut Self, name: &str, want: ClientKind| {
                let valid = clients_of(want);
                match clients.get(name) {
                    None => this.invalid(
                        at("client"),
                        format!(
                            "unknown client `{name}`; {}",
                            valid_list(valid.iter().copied())
                        ),
                    ),
                    Some(k) if *k != want => this.invalid(
                        at("client"),
                        format!(
                            "client `{name}` is an {} client; this action needs an {} client ({})",
                            client_kind_name(*k),
                            client_kind_name(want),
                            valid_list(valid.iter().copied())
                        ),
                    ),
                    Some(_) => {}
                }
            };
            let node_ref = |this: &mut Self, name: &str| -> bool {
                let ok = nodes.contains(&name);
                if !ok {
                    this.invalid(
                        at("node"),
                        format!(
                            "unknown node `{name}`; {}",
                            valid_list(nodes.iter().copied())
                        ),
                    );
                }
                ok
            };

            match &step.action {
                Action::Produce { producer, count } => {
                    if !producers.contains(&producer.as_str()) {
                        self.invalid(
                            at("producer"),
                            format!("unknown producer `{producer}`; {}", valid_list(producers.iter().copied())),
                        );
                    }
                    if *count == 0 {
                        self.invalid(at("count"), "must be at least 1");
                    } else if *count > MAX_TOTAL_MESSAGES {
                        self.limit(at("count"), format!("{count} exceeds the limit of {MAX_TOTAL_MESSAGES} messages per run"));
                    }
                }
                Action::Pop { consumer, max, queue, invisible_time_ms } => {
                    let c = scripted_ref(self, consumer);
                    self.batch(at("max"), *max);
                    if let (Some(q), Some(c)) = (queue, c) {
                        if c.kind == ConsumerKindSpec::GrpcSimple {
                            self.invalid(at("queue"), "a gRPC simple consumer's receive names no queue (the proxy pops every queue of the broker)");
                        } else {
                            let queues = topics.get(c.topic.as_str()).copied();
                            self.queue_ref(at("queue"), (*q).into(), queues, &c.topic);
                        }
                    }
                    if let Some(t) = invisible_time_ms {
                        self.invisible(at("invisible_time_ms"), *t);
                    }
                }
                Action::Ack { consumer, count, all_but, batch, skip: _ } => {
                    let c = scripted_ref(self, consumer);
                    if *batch && c.is_some_and(|c| c.kind == ConsumerKindSpec::GrpcSimple) {
                        self.invalid(at("batch"), "a gRPC simple consumer acks one message per call; the proxy batches its acks when [proxy] enableBatchAck = true");
                    }
                    if count.is_some() && all_but.is_some() {
                        self.invalid(at("all_but"), "give `count` or `all_but`, not both");
                    }
                }
                Action::ChangeInvisibleTime { consumer, invisible_time_ms, count: _ } => {
                    scripted_ref(self, consumer);
                    self.invisible(at("invisible_time_ms"), *invisible_time_ms);
                }
                Action::ResetOffset { client, group, topic, queue, offset } => {
                    client_ref(self, client, ClientKind::Admin);
                    self.group_ref(at("group"), group, groups);
                    let queues = self.topic_ref(at("topic"), topic, topics);
                    if *queue != -1 {
                        self.queue_ref(at("queue"), (*queue).into(), queues, topic);
                    }
                    match offset {
                        Some(o) if *o < 0 => {
                            self.invalid(at("offset"), format!("{o} is negative; give an offset ≥ 0"));
                        }
                        None if *queue != -1 => self.invalid(
                            at("offset"),
                            format!("missing required key `offset` for a reset of queue {queue} (leave out `queue` to reset every queue to its max offset)"),
                        ),
                        _ => {}
                    }
                }
                Action::UpdateOffset { client, mode: _, group, topic, queue, offset } => {
                    client_ref(self, client, ClientKind::Offset);
                    self.group_ref(at("group"), group, groups);
                    let queues = self.topic_ref(at("topic"), topic, topics);
                    if let Some(q) = queue {
                        self.queue_ref(at("queue"), (*q).into(), queues, topic);
                    }
                    if let Some(o) = offset {
                        if *o < 0 {
                            self.invalid(at("offset"), format!("{o} is negative; leave the key out to send null"));
                        }
                    }
                }
                Action::QueryOffset { client, group, topic, queue } => {
                    client_ref(self, client, ClientKind::Offset);
                    self.group_ref(at("group"), group, groups);
                    let queues = self.topic_ref(at("topic"), topic, topics);
                    self.queue_ref(at("queue"), (*queue).into(), queues, topic);
                }
                Action::Crash | Action::Shutdown => {
                    if !broker_up {
                        self.invalid(at("action"), "the broker is already down (stopped by an earlier `crash` or `shutdown` step)");
                    }
                    broker_up = false;
                }
                Action::Restart => {
                    if broker_up {
                        self.invalid(at("action"), "the broker is running; `restart` needs an earlier `crash` or `shutdown` step");
                    }
                    broker_up = true;
                }
                Action::Clog { node } => {
                    if node_ref(self, node) && !clogged.insert(node.as_str()) {
                        self.invalid(at("node"), format!("`{node}` is already clogged"));
                    }
                }
                Action::Unclog { node } => {
                    if node_ref(self, node) && !clogged.remove(node.as_str()) {
                        self.invalid(at("node"), format!("`{node}` is not clogged at this point"));
                    }
                }
                Action::Pause { node, duration_ms } => {
                    node_ref(self, node);
                    if *duration_ms == 0 {
                        self.invalid(at("duration_ms"), "must be greater than 0");
                    }
                    self.time(at("duration_ms"), *duration_ms, "pause duration");
                }
                Action::SetLoss { rate } | Action::SetStorePutFailureRate { rate } => {
                    if !(0.0..=1.0).contains(rate) {
                        self.invalid(at("rate"), format!("{rate} is a probability: 0..=1"));
                    }
                }
                Action::SetTimerLag { lag_ms } => {
                    self.time(at("lag_ms"), *lag_ms, "timer lag");
                }
                Action::StartConsumer { consumer } | Action::StopConsumer { consumer } => match consumers.get(consumer.as_str()) {
                    None => self.invalid(
                        at("consumer"),
                        format!("unknown consumer `{consumer}`; {}", valid_list(looping.iter().copied())),
                    ),
                    Some(c) if c.is_stepped() => self.invalid(
                        at("consumer"),
                        format!("consumer `{consumer}` is {}: it has no loop to start or stop; it takes pop, ack and change-invisible-time steps", kind_name(c.kind)),
                    ),
                    Some(_) => {}
                },
            }
        }
    }

    fn total_messages(&mut self) {
        let sc = self.sc;
        let total = sc.total_messages();
        if total > MAX_TOTAL_MESSAGES
            && sc
                .producers
                .iter()
                .all(|p| p.messages <= MAX_TOTAL_MESSAGES)
        {
            let at = if sc.producers.is_empty() {
                kp!["steps"]
            } else {
                kp!["producers"]
            };
            self.limit(
                at,
                format!("{total} messages in total (producers plus produce steps) exceed the limit of {MAX_TOTAL_MESSAGES}"),
            );
        }
    }

    fn faults(&mut self) {
        let f = &self.sc.faults;
        let p = |k: &str| kp!["faults", k];
        if !(0.0..=1.0).contains(&f.loss_rate) {
            self.invalid(
                p("loss_rate"),
                format!("{} is a probability: 0..=1", f.loss_rate),
            );
        }
        self.range(p("latency_ms"), f.latency_ms);
        self.range(p("clog_duration_ms"), f.clog_duration_ms);
        self.range(p("restart_after_ms"), f.restart_after_ms);
        if f.shutdown_percent > 100 {
            self.invalid(
                p("shutdown_percent"),
                format!("{} is a percentage: 0..=100", f.shutdown_percent),
            );
        }
        self.range(p("pause_duration_ms"), f.pause_duration_ms);
        self.range(p("timer_lag_ms"), f.timer_lag_ms);
        if !(0.0..=1.0).contains(&f.store_put_failure_rate) {
            self.invalid(
                p("store_put_failure_rate"),
                format!("{} is a probability: 0..=1", f.store_put_failure_rate),
            );
        }
        for (k, every) in [
            ("clog_every_ms", f.clog_every_ms),
            ("crash_every_ms", f.crash_every_ms),
            ("pause_every_ms", f.pause_every_ms),
            ("reset_every_ms", f.reset_every_ms),
            ("update_offset_every_ms", f.update_offset_every_ms),
            ("retention_ms", f.retention_ms),
            ("page_cache_ms", f.page_cache_ms),
        ] {
            if every > MAX_DURATION_MS {
                self.limit(
                    p(k),
                    format!("{every} exceeds the limit of {MAX_DURATION_MS} (24 h)"),
                );
            }
        }
    }

    /// Random operations need the client that performs them (the swarm may switch them on).
    fn fault_clients(&mut self) {
        let sc = self.sc;
        let swarm_on = |r: Option<RangeMs>| r.is_some();
        let sw = sc.swarm.as_ref();
        let has = |k: ClientKind| sc.clients.iter().any(|c| c.kind == k);
        if (sc.faults.reset_every_ms > 0 || sw.is_some_and(|s| swarm_on(s.reset_every_ms)))
            && !has(ClientKind::Admin)
        {
            self.invalid(
                kp!["faults", "reset_every_ms"],
                "random resets need an `admin` client in [[clients]]",
            );
        }
        if (sc.faults.update_offset_every_ms > 0
            || sw.is_some_and(|s| swarm_on(s.update_offset_every_ms)))
            && !has(ClientKind::Offset)
        {
            self.invalid(
                kp!["faults", "update_offset_every_ms"],
                "random offset updates need an `offset` client in [[clients]]",
            );
        }
    }

    fn scheduler(&mut self) {
        let sp = &self.sc.scheduler;
        let p = |k: &str| kp!["scheduler", k];
        if sp.threads == 0 || sp.threads > MAX_THREADS {
            self.limit(
                p("threads"),
                format!("{} is outside 1..={MAX_THREADS}", sp.threads),
            );
        }
        if sp.preempt_percent > 100 {
            self.invalid(
                p("preempt_percent"),
                format!("{} is a percentage: 0..=100", sp.preempt_percent),
            );
        }
        self.range(p("preempt_ms"), sp.preempt_ms);
        if sp.preempt_ms.min == 0 && sp.preempt_percent > 0 {
            self.invalid(
                p("preempt_ms").key("min"),
                "a descheduled thread waits at least 1 ms",
            );
        }
    }

    fn expect(&mut self) {
        let e = &self.sc.expect;
        let known = &self.ctx.invariant_names;
        let lists: [(&str, &Vec<String>); 4] = [
            ("invariants", &e.invariants),
            ("with_bug", &e.with_bug),
            ("fixed", &e.fixed),
            ("develop", &e.develop),
        ];
        for (key, list) in lists {
            if list.len() > MAX_LIST_LEN {
                self.limit(
                    kp!["expect", key],
                    format!("more than {MAX_LIST_LEN} entries"),
                );
                continue;
            }
            let mut seen = BTreeSet::new();
            for (i, name) in list.iter().enumerate() {
                if !known.is_empty() && !known.contains(name) {
                    self.invalid(
                        kp!["expect", key, i],
                        format!("unknown invariant `{name}`; {}", invariant_list(known)),
                    );
                } else if !seen.insert(name) {
                    self.invalid(kp!["expect", key, i], format!("`{name}` is listed twice"));
                } else if key != "invariants"
                    && !e.invariants.is_empty()
                    && !e.invariants.contains(name)
                {
                    self.invalid(
                        kp!["expect", key, i],
                        format!("`{name}` is not checked: add it to expect.invariants"),
                    );
                }
            }
        }
        if !e.with_bug.is_empty() && self.sc.replays.is_empty() {
            self.invalid(
                kp!["expect", "with_bug"],
                "expects violations with the replayed behaviours on, but `replays` is empty",
            );
        }
        if !e.develop.is_empty() && !self.sc.replays.is_empty() {
            self.invalid(
                kp!["expect", "develop"],
                "expects violations on develop (every historical behaviour fixed), but `replays` names behaviours: use `with_bug` or [[expect.rows]]",
            );
        }
        self.expect_rows();
    }

    /// `[[expect.rows]]`: each row's behaviours come from `replays`, its invariants are known
    /// and checked.
    fn expect_rows(&mut self) {
        let e = &self.sc.expect;
        let known = &self.ctx.invariant_names;
        if e.rows.len() > MAX_LIST_LEN {
            self.limit(
                kp!["expect", "rows"],
                format!("more than {MAX_LIST_LEN} entries"),
            );
            return;
        }
        for (r, row) in e.rows.iter().enumerate() {
            if row.bugs.is_empty() {
                self.invalid(
                    kp!["expect", "rows", r, "bugs"],
                    "a bug row needs at least one behaviour",
                );
            }
            if row.bugs.len() > MAX_LIST_LEN || row.violates.len() > MAX_LIST_LEN {
                self.limit(
                    kp!["expect", "rows", r],
                    format!("more than {MAX_LIST_LEN} entries"),
                );
                continue;
            }
            for (i, b) in row.bugs.iter().enumerate() {
                if !self.sc.replays.contains(b) {
                    self.invalid(
                        kp!["expect", "rows", r, "bugs", i],
                        format!(
                            "`{b}` is not in `replays`; {}",
                            valid_list(self.sc.replays.iter().map(String::as_str))
                        ),
                    );
                }
            }
            for (i, name) in row.violates.iter().enumerate() {
                if !known.is_empty() && !known.contains(name) {
                    self.invalid(
                        kp!["expect", "rows", r, "violates", i],
                        format!("unknown invariant `{name}`; {}", invariant_list(known)),
                    );
                } else if !e.invariants.is_empty() && !e.invariants.contains(name) {
                    self.invalid(
                        kp!["expect", "rows", r, "violates", i],
                        format!("`{name}` is not checked: add it to expect.invariants"),
                    );
                }
            }
        }
    }
}

fn kind_name(k: ConsumerKindSpec) -> &'static str {
    match k {
        ConsumerKindSpec::Concurrent => "concurrent",
        ConsumerKindSpec::Scripted => "scripted",
        ConsumerKindSpec::GrpcPush => "grpc-push",
        ConsumerKindSpec::GrpcSimple => "grpc-simple",
    }
}

fn client_kind_name(k: ClientKind) -> &'static str {
    match k {
        ClientKind::Offset => "offset",
        ClientKind::Admin => "admin",
    }
}

/// The checker's invariant names for an error message: all of them, however many, since a
/// scenario must spell one exactly (the shortened [`valid_list`] would hide most).
fn invariant_list(known: &[String]) -> String {
    format!("valid: {}", known.join(", "))
}
