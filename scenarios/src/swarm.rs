//! Swarm exploration: the optional `[swarm]` table declares ranges, and each seed draws its
//! own fault and workload parameters from them (FoundationDB's knob randomisation, TigerBeetle
//! VOPR's `options_swarm`), so every seed explores a different corner.
//!
//! The draw is a pure function of the scenario and the seed ([`resolve`]): it uses its own
//! ChaCha8 stream (`swarm`), not madsim's RNG, so it can be printed before the run, and a scenario
//! without ranges keeps the random stream (and every pinned seed's history) it had before.

use crate::error::IssueKind;
use crate::limits::*;
use crate::locate::{kp, KeyPath};
use crate::model::{ConsumerKindSpec, RangeMs, Scenario};
use crate::validate::Problem;
use broker_core::rng::Rng;
use broker_core::Behaviour;
use serde::{Deserialize, Serialize};

/// A range of floats; a value is drawn uniformly from `[min, max]`.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RangeF {
    pub min: f64,
    pub max: f64,
}

/// The `[swarm]` table. Every key is optional; a key left out keeps the value the rest of
/// the file gives.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SwarmSpec {
    /// Historical behaviours on in every run of this scenario, bug row and fixed row alike:
    /// the release the swarm explores, so that `--bug` toggles only the fix under test.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub baseline: Vec<String>,
    /// Percent chance that each random fault kind given a range below is on for a seed
    /// (swarm testing: some seeds run without it). Default 50.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fault_on_percent: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub loss_rate: Option<RangeF>,
    /// The upper end of the one-way latency; the lower end is `faults.latency_ms.min`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub latency_max_ms: Option<RangeMs>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub clog_every_ms: Option<RangeMs>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub crash_every_ms: Option<RangeMs>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pause_every_ms: Option<RangeMs>,
    /// Each looping consumer's consume-time distribution is a sub-range of this one (two
    /// draws, the smaller is its min).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub consume_time_ms: Option<RangeMs>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pop_batch_nums: Option<RangeMs>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pop_invisible_time_ms: Option<RangeMs>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub failure_percent: Option<RangeMs>,
    /// No longer drawn: no consumer batch-acks (an error names the replacement,
    /// `proxy_batch_ack_percent`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub batch_ack_percent: Option<u32>,
    /// Percent chance of `[proxy] enableBatchAck = true`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub proxy_batch_ack_percent: Option<u32>,
    /// Messages each producer sends on its own schedule.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub messages: Option<RangeMs>,
    /// Percent chance of `enablePopBufferMerge = true`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub buffer_merge_percent: Option<u32>,
    /// BUGGIFY hooks in the client and broker drivers: each hook is active for a seed with
    /// 25 % and then fires on 25 % of its calls (FoundationDB's two-phase scheme).
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub buggify: bool,
    /// `faults.reset_every_ms` and `faults.update_offset_every_ms` (on with `fault_on_percent`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reset_every_ms: Option<RangeMs>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub update_offset_every_ms: Option<RangeMs>,
    /// Percent chances of broker switches: `popConsumerKVServiceEnable`, `enablePopBatchAck`,
    /// `enableRetryTopicV2`, `enableSkipLongAwaitingAck`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub kv_pop_percent: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pop_batch_ack_percent: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub retry_topic_v2_percent: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub skip_long_awaiting_ack_percent: Option<u32>,
    /// Broker ranges: `reviveQueueNum`, `reviveInterval`, `popCkStayBufferTime`,
    /// `popCkStayBufferTimeOut`, `popFromRetryProbability`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub revive_queue_num: Option<RangeMs>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub revive_interval_ms: Option<RangeMs>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pop_ck_stay_buffer_time_ms: Option<RangeMs>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pop_ck_stay_buffer_time_out_ms: Option<RangeMs>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pop_from_retry_probability: Option<RangeMs>,
    /// Every topic's queue count.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub queues: Option<RangeMs>,
    /// `[scheduler] preempt_percent`, and the upper end of `preempt_ms`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub preempt_percent: Option<RangeMs>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub preempt_ms_max: Option<RangeMs>,
    /// The upper end of `faults.timer_lag_ms` (its lower end is 0), on with
    /// `fault_on_percent`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub timer_lag_ms: Option<RangeMs>,
    /// `faults.store_put_failure_rate`, on with `fault_on_percent`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub store_put_failure_rate: Option<RangeF>,
    /// On half the seeds, each group of looping consumers gets one `max_reconsume_times`
    /// from this range (for a gRPC group its `retryMaxTimes`), so that the dead-letter paths
    /// run: the default of 16 attempts takes longer than a run. Its own coin, drawn after
    /// everything else: on the other half of the seeds the world is the one the file gives.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_reconsume_times: Option<RangeMs>,
    /// Percent of seeds on which each looping SimpleConsumer's batch is cut to what its
    /// listener can finish within its invisible time (batch × the longest drawn consume
    /// time ≤ the invisible time), as an application sizes its receive; on the other seeds
    /// the drawn batch stands and most acks of a large batch of slow messages come late.
    /// Its own coin, drawn last.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub simple_batch_fits_percent: Option<u32>,
    /// Percent of seeds that run without any random fault (loss, clogs, crashes, pauses,
    /// resets, offset updates, timer lag, failing puts), whatever was drawn for them: the
    /// invariants promised only without faults (bounded-deliveries) are judged there. Its
    /// own coin, drawn last.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub quiet_percent: Option<u32>,
    /// On half the seeds, `faults.retention_ms` from this range: the store deletes what is
    /// older (CommitLog expiry), so pops, revives and offset commits meet deleted messages.
    /// Its own coin, drawn after `quiet_percent` (retention is the store's environment, not a
    /// fault: a quiet seed keeps it).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub retention_ms: Option<RangeMs>,
    /// On half the seeds, `faults.page_cache_ms` from this range: a group that starts
    /// without an offset (new, or its offset lost in a crash) with init mode MAX starts at 0
    /// only while its queue's first message is in the page cache. Its own coin, drawn after
    /// `retention_ms`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub page_cache_ms: Option<RangeMs>,
    /// On half the seeds, `broker.popCkMaxBufferSize` from this range: a full merge buffer
    /// writes CKs straight to the revive log. Its own coin, drawn after `page_cache_ms`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pop_ck_max_buffer_size: Option<RangeMs>,
    /// On half the seeds, `broker.popCkOffsetMaxQueueSize` from this range: a queue's full
    /// offset deque refuses the buffer's CK. Its own coin, drawn after the one above.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pop_ck_offset_max_queue_size: Option<RangeMs>,
    /// On half the seeds, `broker.flushConsumerOffsetInterval` from this range: how much
    /// of the offsets a crash forgets. Its own coin, drawn after the one above.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub flush_consumer_offset_interval_ms: Option<RangeMs>,
    /// On half the seeds, `broker.enablePopMessageThreshold` on with
    /// `popInflightMessageThreshold` from this range: a pop skips a queue with too many
    /// messages in flight. Its own coin, drawn after the one above.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pop_inflight_message_threshold: Option<RangeMs>,
    /// On half the seeds, a late wave: each producer gets a twin `<name>-late` (same topic
    /// and queue, as many messages) that starts at a time drawn from this range. Without it
    /// every message of a run is sent in its first seconds, so the liveness checks after the
    /// quiet period judge only redeliveries; with it, new messages arrive after retention,
    /// crashes, resets and leaks changed the broker's state, and a group that stopped
    /// taking new messages shows. Its own coin, drawn last (new messages are not a fault:
    /// a quiet seed keeps it).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub late_start_ms: Option<RangeMs>,
    /// Each late twin's `interval_ms`, drawn per twin (without it: its producer's). Only
    /// with `late_start_ms`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub late_interval_ms: Option<RangeMs>,
    /// Percent of seeds whose gRPC push consumers are the rocketmq-clients of #1322
    /// (`keeps_attempt_id_until_messages`: a process queue keeps its receive attemptId until
    /// messages arrive), the client later than the snapshot that FIFO traffic now runs. Its
    /// own coin, drawn last.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub attempt_id_until_messages_percent: Option<u32>,
    /// On half the seeds, a non-FIFO gRPC push consumer (`RENEWING_CONSUMER`, a group of its
    /// own on the scenario's last topic) whose listener takes a time from this range per
    /// message: long enough for the proxy to renew its handles (`ReceiptHandleProcessor`,
    /// about 50 s into the proxy's 60 s), which no other consumer of the swarm reaches. Its
    /// own coin, drawn last.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub renewing_push_consume_time_ms: Option<RangeMs>,
    /// `faults.shutdown_percent` on every seed whose broker stops at random on the classic
    /// pop path: that share of its stops are graceful shutdowns. Nothing is drawn here (the
    /// world draws each stop's coin from a stream of its own), so every other draw stays as
    /// it was. KV-path seeds keep crashes only: a graceful restart there re-delivers the
    /// last popped batch of a queue though it was acked (F31, no proposed fix yet), which
    /// would fail every `--fix all` sweep.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub shutdown_percent: Option<u32>,
    /// `proxy.proxyMode = "local"` (the proxy inside the broker process) with this chance, on
    /// a seed with gRPC consumers whose drawn and scripted faults local mode models (no
    /// random loss, clogs or broker stops, and no step that stops, cuts or pauses the broker
    /// or the proxy: the same rule a scenario file is held to). Its own coin, drawn last,
    /// only on such a seed, so every other draw stays as it was.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub local_proxy_percent: Option<u32>,
}

impl SwarmSpec {
    /// True if something is drawn per seed.
    pub fn draws_anything(&self) -> bool {
        let Self {
            baseline: _,
            fault_on_percent: _,
            buggify: _,
            loss_rate,
            latency_max_ms,
            clog_every_ms,
            crash_every_ms,
            pause_every_ms,
            consume_time_ms,
            pop_batch_nums,
            pop_invisible_time_ms,
            failure_percent,
            batch_ack_percent,
            proxy_batch_ack_percent,
            messages,
            buffer_merge_percent,
            reset_every_ms,
            update_offset_every_ms,
            kv_pop_percent,
            pop_batch_ack_percent,
            retry_topic_v2_percent,
            skip_long_awaiting_ack_percent,
            revive_queue_num,
            revive_interval_ms,
            pop_ck_stay_buffer_time_ms,
            pop_ck_stay_buffer_time_out_ms,
            pop_from_retry_probability,
            queues,
            preempt_percent,
            preempt_ms_max,
            timer_lag_ms,
            store_put_failure_rate,
            max_reconsume_times,
            simple_batch_fits_percent,
            quiet_percent,
            retention_ms,
            page_cache_ms,
            pop_ck_max_buffer_size,
            pop_ck_offset_max_queue_size,
            flush_consumer_offset_interval_ms,
            pop_inflight_message_threshold,
            late_start_ms,
            late_interval_ms: _,
            attempt_id_until_messages_percent,
            local_proxy_percent,
            renewing_push_consume_time_ms,
            shutdown_percent,
        } = self;
        loss_rate.is_some()
            || store_put_failure_rate.is_some()
            || timer_lag_ms.is_some()
            || [
                kv_pop_percent,
                pop_batch_ack_percent,
                retry_topic_v2_percent,
                skip_long_awaiting_ack_percent,
            ]
            .iter()
            .any(|p| p.is_some())
            || [
                reset_every_ms,
                update_offset_every_ms,
                revive_queue_num,
                revive_interval_ms,
                pop_ck_stay_buffer_time_ms,
                pop_ck_stay_buffer_time_out_ms,
                pop_from_retry_probability,
                queues,
                preempt_percent,
                preempt_ms_max,
                latency_max_ms,
                clog_every_ms,
                crash_every_ms,
                pause_every_ms,
                consume_time_ms,
                pop_batch_nums,
                pop_invisible_time_ms,
                failure_percent,
                messages,
                max_reconsume_times,
                retention_ms,
                page_cache_ms,
                pop_ck_max_buffer_size,
                pop_ck_offset_max_queue_size,
                flush_consumer_offset_interval_ms,
                pop_inflight_message_threshold,
                late_start_ms,
                renewing_push_consume_time_ms,
            ]
            .iter()
            .any(|r| r.is_some())
            || batch_ack_percent.is_some()
            || proxy_batch_ack_percent.is_some()
            || buffer_merge_percent.is_some()
            || simple_batch_fits_percent.is_some()
            || quiet_percent.is_some()
            || attempt_id_until_messages_percent.is_some()
            || shutdown_percent.is_some()
            || local_proxy_percent.is_some()
    }

    /// The spec with its ranges dropped (baseline and buggify kept): what a resolved
    /// scenario carries, so resolving it again draws nothing.
    pub fn fixed_part(&self) -> Self {
        Self {
            baseline: self.baseline.clone(),
            buggify: self.buggify,
            ..Self::default()
        }
    }
}

/// The swarm's draws: the run seed's `swarm` stream ([`broker_core::rng::stream`]).
struct Draw(broker_core::rng::ChaCha8Rng);

impl Draw {
    fn int(&mut self, r: RangeMs) -> u64 {
        if r.max <= r.min {
            return r.min;
        }
        self.0.gen_range(r.min..=r.max)
    }
    fn float(&mut self, r: RangeF) -> f64 {
        if r.max <= r.min {
            return r.min;
        }
        r.min + (r.max - r.min) * self.0.gen::<f64>()
    }
    fn percent(&mut self, p: u32) -> bool {
        self.0.gen_range(0..100) < p
    }
}

/// One drawn parameter, for printing: `faults.loss_rate = 0.013`.
#[derive(Clone, Debug, PartialEq)]
pub struct Drawn {
    pub key: String,
    pub value: String,
}

/// The scenario `sc` as seed `seed` runs it: every range of its `[swarm]` table replaced by
/// a value drawn from the seed, and the list of what was drawn (in a fixed order). A
/// scenario without ranges comes back unchanged with an empty list.
pub fn resolve(sc: &Scenario, seed: u64) -> (Scenario, Vec<Drawn>) {
    let Some(sw) = sc.swarm.as_ref().filter(|s| s.draws_anything()) else {
        return (sc.clone(), Vec::new());
    };
    let mut out = sc.clone();
    let mut drawn = Vec::new();
    let mut put = |key: String, value: String| drawn.push(Drawn { key, value });
    let mut d = Draw(broker_core::rng::stream(seed, "swarm"));
    let on = sw.fault_on_percent.unwrap_or(50);

    let f = &mut out.faults;
    if let Some(r) = sw.loss_rate {
        f.loss_rate = if d.percent(on) {
            (d.float(r) * 1e4).round() / 1e4
        } else {
            0.0
        };
        put("faults.loss_rate".into(), f.loss_rate.to_string());
    }
    if let Some(r) = sw.latency_max_ms {
        f.latency_ms.max = d.int(r).max(f.latency_ms.min);
        put(
            "faults.latency_ms".into(),
            format!("{}..{}", f.latency_ms.min, f.latency_ms.max),
        );
    }
    for (key, range, slot) in [
        ("clog_every_ms", sw.clog_every_ms, &mut f.clog_every_ms),
        ("crash_every_ms", sw.crash_every_ms, &mut f.crash_every_ms),
        ("pause_every_ms", sw.pause_every_ms, &mut f.pause_every_ms),
    ] {
        if let Some(r) = range {
            *slot = if d.percent(on) { d.int(r).max(1) } else { 0 };
            put(format!("faults.{key}"), slot.to_string());
        }
    }
    if let Some(p) = sw.buffer_merge_percent {
        out.broker.enable_pop_buffer_merge = d.percent(p);
        put(
            "broker.enablePopBufferMerge".into(),
            out.broker.enable_pop_buffer_merge.to_string(),
        );
    }
    for p in &mut out.producers {
        if let Some(r) = sw.messages {
            p.messages = d.int(r);
            put(
                format!("producers.{}.messages", p.name),
                p.messages.to_string(),
            );
        }
    }
    let receivable = RangeMs {
        min: out.proxy.min_invisible_time_mills_for_recv,
        max: out.proxy.max_invisible_time_mills,
    };
    for c in &mut out.consumers {
        if c.is_stepped() {
            continue;
        }
        let at = |k: &str| format!("consumers.{}.{k}", c.name);
        if let Some(r) = sw.consume_time_ms {
            let (a, b) = (d.int(r), d.int(r));
            c.consume_time_ms = RangeMs {
                min: a.min(b),
                max: a.max(b),
            };
            put(
                at("consume_time_ms"),
                format!("{}..{}", c.consume_time_ms.min, c.consume_time_ms.max),
            );
        }
        if let Some(r) = sw.pop_batch_nums {
            c.pop_batch_nums = d.int(r) as u32;
            put(at("pop_batch_nums"), c.pop_batch_nums.to_string());
        }
        if let Some(r) = sw.pop_invisible_time_ms {
            // A looping SimpleConsumer sends its invisible time with every receive, and the
            // proxy refuses one outside its range (`GrpcValidator.validateInvisibleTime`):
            // it draws from the part of the range the proxy accepts, so it consumes at all.
            let r = if c.kind == ConsumerKindSpec::GrpcSimple && c.receive_loop {
                within(r, receivable)
            } else {
                r
            };
            c.pop_invisible_time_ms = d.int(r);
            put(
                at("pop_invisible_time_ms"),
                c.pop_invisible_time_ms.to_string(),
            );
        }
        if let Some(r) = sw.failure_percent {
            c.failure_percent = d.int(r) as u32;
            put(at("failure_percent"), c.failure_percent.to_string());
        }
    }
    draw_develop_knobs(sw, &mut d, on, &mut out, &mut put);
    if let Some(r) = sw.max_reconsume_times {
        draw_max_reconsume_times(r, &mut d, &mut out, &mut put);
    }
    if let Some(p) = sw.simple_batch_fits_percent {
        if d.percent(p) {
            fit_simple_batches(&mut out, &mut put);
        }
    }
    if sw.quiet_percent.is_some_and(|p| d.percent(p)) {
        quiet(&mut out.faults, &mut drawn);
    }
    draw_store_and_broker_sizes(sw, &mut d, &mut out, &mut drawn);
    draw_late_wave(sw, &mut d, &mut out, &mut drawn);
    if let Some(p) = sw.attempt_id_until_messages_percent {
        if d.percent(p) {
            keep_attempt_ids_until_messages(&mut out, &mut drawn);
        }
    }
    if let Some(r) = sw.renewing_push_consume_time_ms.filter(|_| d.percent(50)) {
        add_renewing_consumer(r, &mut out, &mut drawn);
    }
    if let Some(p) = sw.shutdown_percent {
        if out.faults.crash_every_ms > 0 && !out.broker.pop_consumer_kv_service_enable {
            out.faults.shutdown_percent = p;
            drawn.push(Drawn {
                key: "faults.shutdown_percent".into(),
                value: p.to_string(),
            });
        }
    }
    if let Some(p) = sw.local_proxy_percent {
        let grpc = out.consumers.iter().any(|c| c.kind.is_grpc());
        if grpc && crate::validate::local_mode_refusals(&out).is_empty() && d.percent(p) {
            out.proxy.proxy_mode = crate::model::ProxyMode::Local;
            drawn.push(Drawn {
                key: "proxy.proxyMode".into(),
                value: "local".into(),
            });
        }
    }
    out.swarm = Some(sw.fixed_part());
    (out, drawn)
}

/// The store's environment and the broker's sizes and schedules, each on half the seeds with
/// a coin of its own, drawn after everything else (so a scenario without them keeps every
/// earlier draw) and after a quiet seed's faults went off: none of them is a fault.
fn draw_store_and_broker_sizes(
    sw: &SwarmSpec,
    d: &mut Draw,
    out: &mut Scenario,
    drawn: &mut Vec<Drawn>,
) {
    let b = &mut out.broker;
    for (key, range, slot) in [
        (
            "faults.retention_ms",
            sw.retention_ms,
            &mut out.faults.retention_ms,
        ),
        (
            "faults.page_cache_ms",
            sw.page_cache_ms,
            &mut out.faults.page_cache_ms,
        ),
        (
            "broker.popCkMaxBufferSize",
            sw.pop_ck_max_buffer_size,
            &mut b.pop_ck_max_buffer_size,
        ),
        (
            "broker.popCkOffsetMaxQueueSize",
            sw.pop_ck_offset_max_queue_size,
            &mut b.pop_ck_offset_max_queue_size,
        ),
        (
            "broker.flushConsumerOffsetInterval",
            sw.flush_consumer_offset_interval_ms,
            &mut b.flush_consumer_offset_interval,
        ),
    ] {
        if let Some(r) = range.filter(|_| d.percent(50)) {
            *slot = d.int(r);
            drawn.push(Drawn {
                key: key.into(),
                value: slot.to_string(),
            });
        }
    }
    // The threshold is read only with the switch on (`isPopShouldStop`).
    if let Some(r) = sw.pop_inflight_message_threshold.filter(|_| d.percent(50)) {
        b.pop_inflight_message_threshold = d.int(r);
        b.enable_pop_message_threshold = true;
        for (key, value) in [
            (
                "broker.popInflightMessageThreshold",
                b.pop_inflight_message_threshold.to_string(),
            ),
            ("broker.enablePopMessageThreshold", "true".to_owned()),
        ] {
            drawn.push(Drawn {
                key: key.into(),
                value,
            });
        }
    }
}

/// Every gRPC push consumer runs the client of rocketmq-clients #1322
/// (`attempt_id_until_messages_percent`).
fn keep_attempt_ids_until_messages(out: &mut Scenario, drawn: &mut Vec<Drawn>) {
    for c in (out.consumers.iter_mut()).filter(|c| c.kind == ConsumerKindSpec::GrpcPush) {
        c.keeps_attempt_id_until_messages = true;
        drawn.push(Drawn {
            key: format!("consumers.{}.keeps_attempt_id_until_messages", c.name),
            value: "true".into(),
        });
    }
}

/// The consumer `renewing_push_consume_time_ms` adds, and its group.
pub const RENEWING_CONSUMER: &str = "r-renew";
pub const RENEWING_GROUP: &str = "g-renew";

/// `renewing_push_consume_time_ms`: a non-FIFO gRPC push consumer with slow listeners, in a
/// group of its own on the last topic (nothing else of the scenario changes).
fn add_renewing_consumer(consume: RangeMs, out: &mut Scenario, drawn: &mut Vec<Drawn>) {
    let Some(topic) = out.topics.last().map(|t| t.name.clone()) else {
        return;
    };
    out.groups.push(crate::model::GroupSpec {
        name: RENEWING_GROUP.into(),
    });
    out.consumers.push(crate::model::ConsumerSpec {
        name: RENEWING_CONSUMER.into(),
        kind: ConsumerKindSpec::GrpcPush,
        group: RENEWING_GROUP.into(),
        topic: topic.clone(),
        pop_invisible_time_ms: 60_000,
        max_reconsume_times: -1,
        pop_batch_nums: 32,
        consume_time_ms: consume,
        failure_percent: 0,
        batch_ack: false,
        fifo: false,
        await_duration_ms: None,
        receive_loop: false,
        keeps_attempt_id_until_messages: false,
        start_at_ms: 0,
        init_mode: broker_core::InitMode::default(),
    });
    drawn.push(Drawn {
        key: format!("consumers.{RENEWING_CONSUMER}"),
        value: format!(
            "grpc-push, group {RENEWING_GROUP}, topic {topic}, consume {}..{} ms",
            consume.min, consume.max
        ),
    });
}

/// The name of a producer's late twin (`late_start_ms`).
pub fn late_twin_name(producer: &str) -> String {
    format!("{producer}-late")
}

/// The late wave (`late_start_ms`): on half the seeds, a twin per producer, with its start
/// (and with `late_interval_ms` its interval) drawn per twin in the producers' order.
fn draw_late_wave(sw: &SwarmSpec, d: &mut Draw, out: &mut Scenario, drawn: &mut Vec<Drawn>) {
    let Some(start) = sw.late_start_ms.filter(|_| d.percent(50)) else {
        return;
    };
    let mut twins = Vec::with_capacity(out.producers.len());
    for p in &out.producers {
        let mut twin = p.clone();
        twin.name = late_twin_name(&p.name);
        twin.start_at_ms = d.int(start);
        if let Some(r) = sw.late_interval_ms {
            twin.interval_ms = d.int(r).max(1);
        }
        for (key, value) in [
            ("messages", twin.messages),
            ("start_at_ms", twin.start_at_ms),
            ("interval_ms", twin.interval_ms),
        ] {
            drawn.push(Drawn {
                key: format!("producers.{}.{key}", twin.name),
                value: value.to_string(),
            });
        }
        twins.push(twin);
    }
    out.producers.extend(twins);
}

/// On half the seeds, one `max_reconsume_times` per group of looping consumers: the remoting
/// client's `maxReconsumeTimes` and the gRPC group's `retryMaxTimes` are the group's
/// (`SubscriptionGroupConfig`), so the group's consumers share it.
fn draw_max_reconsume_times(
    r: RangeMs,
    d: &mut Draw,
    out: &mut Scenario,
    put: &mut impl FnMut(String, String),
) {
    if !d.percent(50) {
        return;
    }
    let mut of_group: std::collections::BTreeMap<String, i32> = Default::default();
    for c in out.consumers.iter_mut().filter(|c| !c.is_stepped()) {
        let v = *of_group
            .entry(c.group.clone())
            .or_insert_with(|| i32::try_from(d.int(r)).unwrap_or(MAX_RECONSUME_TIMES));
        c.max_reconsume_times = v;
        put(
            format!("consumers.{}.max_reconsume_times", c.name),
            v.to_string(),
        );
    }
}

/// Cuts each looping SimpleConsumer's batch so that its listener runs, one after another,
/// fit in the invisible time the receive asks for (at least one message).
fn fit_simple_batches(out: &mut Scenario, put: &mut impl FnMut(String, String)) {
    for c in (out.consumers.iter_mut())
        .filter(|c| c.kind == ConsumerKindSpec::GrpcSimple && c.receive_loop)
    {
        let fits = c.pop_invisible_time_ms / c.consume_time_ms.max.max(1);
        let batch = u64::from(c.pop_batch_nums).min(fits).max(1) as u32;
        if batch != c.pop_batch_nums {
            c.pop_batch_nums = batch;
            put(
                format!("consumers.{}.pop_batch_nums", c.name),
                batch.to_string(),
            );
        }
    }
}

/// A quiet seed: every random fault off (what `is_faulty` counts), and the draw says so
/// where it had drawn one.
fn quiet(f: &mut crate::model::FaultSpec, drawn: &mut [Drawn]) {
    f.loss_rate = 0.0;
    f.clog_every_ms = 0;
    f.crash_every_ms = 0;
    f.pause_every_ms = 0;
    f.reset_every_ms = 0;
    f.update_offset_every_ms = 0;
    f.timer_lag_ms.max = 0;
    f.store_put_failure_rate = 0.0;
    for d in drawn.iter_mut().filter(|d| {
        d.key.starts_with("faults.")
            && d.key != "faults.latency_ms"
            && !matches!(d.value.as_str(), "0" | "0..0")
    }) {
        d.value = format!("0 (quiet seed; drawn {})", d.value);
    }
}

/// The part of `r` inside `bounds`, or `r` when they do not meet.
fn within(r: RangeMs, bounds: RangeMs) -> RangeMs {
    let (min, max) = (r.min.max(bounds.min), r.max.min(bounds.max));
    if min <= max {
        RangeMs { min, max }
    } else {
        r
    }
}

/// The knobs that choose which upstream code paths run (broker switches and sizes, queue
/// counts, the scheduler) and the operations drawn as faults. Drawn after everything else,
/// so a scenario without them keeps every earlier draw.
fn draw_develop_knobs(
    sw: &SwarmSpec,
    d: &mut Draw,
    on: u32,
    out: &mut Scenario,
    put: &mut impl FnMut(String, String),
) {
    for (key, range, slot) in [
        (
            "reset_every_ms",
            sw.reset_every_ms,
            &mut out.faults.reset_every_ms,
        ),
        (
            "update_offset_every_ms",
            sw.update_offset_every_ms,
            &mut out.faults.update_offset_every_ms,
        ),
    ] {
        if let Some(r) = range {
            *slot = if d.percent(on) { d.int(r).max(1) } else { 0 };
            put(format!("faults.{key}"), slot.to_string());
        }
    }
    let b = &mut out.broker;
    for (key, p, slot) in [
        (
            "popConsumerKVServiceEnable",
            sw.kv_pop_percent,
            &mut b.pop_consumer_kv_service_enable,
        ),
        (
            "enablePopBatchAck",
            sw.pop_batch_ack_percent,
            &mut b.enable_pop_batch_ack,
        ),
        (
            "enableRetryTopicV2",
            sw.retry_topic_v2_percent,
            &mut b.enable_retry_topic_v2,
        ),
        (
            "enableSkipLongAwaitingAck",
            sw.skip_long_awaiting_ack_percent,
            &mut b.enable_skip_long_awaiting_ack,
        ),
    ] {
        if let Some(p) = p {
            *slot = d.percent(p);
            put(format!("broker.{key}"), slot.to_string());
        }
    }
    if let Some(r) = sw.revive_queue_num {
        b.revive_queue_num = d.int(r) as u32;
        put(
            "broker.reviveQueueNum".into(),
            b.revive_queue_num.to_string(),
        );
    }
    for (key, range, slot) in [
        (
            "reviveInterval",
            sw.revive_interval_ms,
            &mut b.revive_interval,
        ),
        (
            "popCkStayBufferTime",
            sw.pop_ck_stay_buffer_time_ms,
            &mut b.pop_ck_stay_buffer_time,
        ),
        (
            "popCkStayBufferTimeOut",
            sw.pop_ck_stay_buffer_time_out_ms,
            &mut b.pop_ck_stay_buffer_time_out,
        ),
    ] {
        if let Some(r) = range {
            *slot = d.int(r);
            put(format!("broker.{key}"), slot.to_string());
        }
    }
    if let Some(r) = sw.pop_from_retry_probability {
        b.pop_from_retry_probability = d.int(r) as u32;
        put(
            "broker.popFromRetryProbability".into(),
            b.pop_from_retry_probability.to_string(),
        );
    }
    if let Some(r) = sw.queues {
        for t in &mut out.topics {
            t.queues = d.int(r) as u32;
            put(format!("topics.{}.queues", t.name), t.queues.to_string());
        }
    }
    let s = &mut out.scheduler;
    if let Some(r) = sw.preempt_percent {
        s.preempt_percent = d.int(r) as u32;
        put(
            "scheduler.preempt_percent".into(),
            s.preempt_percent.to_string(),
        );
    }
    if let Some(r) = sw.preempt_ms_max {
        s.preempt_ms.max = d.int(r).max(s.preempt_ms.min);
        put(
            "scheduler.preempt_ms".into(),
            format!("{}..{}", s.preempt_ms.min, s.preempt_ms.max),
        );
    }
    if let Some(p) = sw.proxy_batch_ack_percent {
        out.proxy.enable_batch_ack = d.percent(p);
        put(
            "proxy.enableBatchAck".into(),
            out.proxy.enable_batch_ack.to_string(),
        );
    }
    // The store and timer faults, drawn last so the draws above stay as they were.
    let f = &mut out.faults;
    if let Some(r) = sw.timer_lag_ms {
        f.timer_lag_ms = RangeMs {
            min: 0,
            max: if d.percent(on) { d.int(r) } else { 0 },
        };
        put(
            "faults.timer_lag_ms".into(),
            format!("{}..{}", f.timer_lag_ms.min, f.timer_lag_ms.max),
        );
    }
    if let Some(r) = sw.store_put_failure_rate {
        f.store_put_failure_rate = if d.percent(on) {
            (d.float(r) * 1e4).round() / 1e4
        } else {
            0.0
        };
        put(
            "faults.store_put_failure_rate".into(),
            f.store_put_failure_rate.to_string(),
        );
    }
}

/// The `[swarm]` table's problems, located at its keys.
pub(crate) fn validate(sc: &Scenario) -> Vec<Problem> {
    let Some(sw) = &sc.swarm else {
        return Vec::new();
    };
    let mut out = Vec::new();
    let mut bad = |kind, path: KeyPath, message: String| {
        out.push(Problem {
            kind,
            path,
            message,
        })
    };
    if sw.batch_ack_percent.is_some() {
        bad(
            IssueKind::Invalid,
            kp!["swarm", "batch_ack_percent"],
            "no consumer batch-acks (the remoting push consumer sends one ACK_MESSAGE per message; only the proxy batches): use `proxy_batch_ack_percent`, the chance of [proxy] enableBatchAck".into(),
        );
    }
    let mut seen = std::collections::BTreeSet::new();
    for (i, b) in sw.baseline.iter().enumerate() {
        if let Err(e) = b.parse::<Behaviour>() {
            bad(
                IssueKind::Invalid,
                kp!["swarm", "baseline", i],
                e.to_string(),
            );
        } else if !seen.insert(b) {
            bad(
                IssueKind::Invalid,
                kp!["swarm", "baseline", i],
                format!("`{b}` is listed twice"),
            );
        } else if sc.replays.contains(b) {
            bad(
                IssueKind::Invalid,
                kp!["swarm", "baseline", i],
                format!("`{b}` is also in `replays`: a baseline behaviour is on in both rows"),
            );
        }
    }
    for (key, p) in [
        ("fault_on_percent", sw.fault_on_percent),
        ("proxy_batch_ack_percent", sw.proxy_batch_ack_percent),
        ("buffer_merge_percent", sw.buffer_merge_percent),
        ("kv_pop_percent", sw.kv_pop_percent),
        ("pop_batch_ack_percent", sw.pop_batch_ack_percent),
        ("retry_topic_v2_percent", sw.retry_topic_v2_percent),
        (
            "skip_long_awaiting_ack_percent",
            sw.skip_long_awaiting_ack_percent,
        ),
        ("simple_batch_fits_percent", sw.simple_batch_fits_percent),
        ("quiet_percent", sw.quiet_percent),
        (
            "attempt_id_until_messages_percent",
            sw.attempt_id_until_messages_percent,
        ),
        ("shutdown_percent", sw.shutdown_percent),
        ("local_proxy_percent", sw.local_proxy_percent),
    ] {
        if let Some(p) = p.filter(|p| *p > 100) {
            bad(
                IssueKind::Invalid,
                kp!["swarm", key],
                format!("{p} is a percentage: 0..=100"),
            );
        }
    }
    for (key, range) in [
        ("loss_rate", sw.loss_rate),
        ("store_put_failure_rate", sw.store_put_failure_rate),
    ] {
        let Some(r) = range else { continue };
        if !(0.0..=1.0).contains(&r.min) || !(0.0..=1.0).contains(&r.max) {
            bad(
                IssueKind::Invalid,
                kp!["swarm", key],
                "a probability range: 0 ≤ min ≤ max ≤ 1".into(),
            );
        } else if r.min > r.max {
            bad(
                IssueKind::Invalid,
                kp!["swarm", key, "min"],
                format!("min {} is greater than max {}", r.min, r.max),
            );
        }
    }
    let limits: [(&str, Option<RangeMs>, u64, u64); 30] = [
        ("timer_lag_ms", sw.timer_lag_ms, 0, MAX_DURATION_MS),
        ("reset_every_ms", sw.reset_every_ms, 1, MAX_DURATION_MS),
        (
            "update_offset_every_ms",
            sw.update_offset_every_ms,
            1,
            MAX_DURATION_MS,
        ),
        (
            "revive_queue_num",
            sw.revive_queue_num,
            1,
            u64::from(MAX_REVIVE_QUEUE_NUM),
        ),
        (
            "revive_interval_ms",
            sw.revive_interval_ms,
            1,
            MAX_DURATION_MS,
        ),
        (
            "pop_ck_stay_buffer_time_ms",
            sw.pop_ck_stay_buffer_time_ms,
            1,
            MAX_DURATION_MS,
        ),
        (
            "pop_ck_stay_buffer_time_out_ms",
            sw.pop_ck_stay_buffer_time_out_ms,
            1,
            MAX_DURATION_MS,
        ),
        (
            "pop_from_retry_probability",
            sw.pop_from_retry_probability,
            0,
            100,
        ),
        ("queues", sw.queues, 1, u64::from(MAX_QUEUES)),
        ("preempt_percent", sw.preempt_percent, 0, 100),
        ("preempt_ms_max", sw.preempt_ms_max, 1, MAX_DURATION_MS),
        ("latency_max_ms", sw.latency_max_ms, 0, MAX_DURATION_MS),
        ("clog_every_ms", sw.clog_every_ms, 1, MAX_DURATION_MS),
        ("crash_every_ms", sw.crash_every_ms, 1, MAX_DURATION_MS),
        ("pause_every_ms", sw.pause_every_ms, 1, MAX_DURATION_MS),
        ("consume_time_ms", sw.consume_time_ms, 0, MAX_DURATION_MS),
        (
            "pop_batch_nums",
            sw.pop_batch_nums,
            1,
            u64::from(MAX_POP_BATCH),
        ),
        (
            "pop_invisible_time_ms",
            sw.pop_invisible_time_ms,
            1,
            MAX_INVISIBLE_TIME_MS,
        ),
        ("failure_percent", sw.failure_percent, 0, 100),
        ("messages", sw.messages, 0, MAX_TOTAL_MESSAGES),
        (
            "max_reconsume_times",
            sw.max_reconsume_times,
            0,
            MAX_RECONSUME_TIMES as u64,
        ),
        ("retention_ms", sw.retention_ms, 1, MAX_DURATION_MS),
        ("page_cache_ms", sw.page_cache_ms, 1, MAX_DURATION_MS),
        (
            "pop_ck_max_buffer_size",
            sw.pop_ck_max_buffer_size,
            0,
            MAX_TOTAL_MESSAGES * 10,
        ),
        (
            "pop_ck_offset_max_queue_size",
            sw.pop_ck_offset_max_queue_size,
            0,
            MAX_TOTAL_MESSAGES,
        ),
        (
            "flush_consumer_offset_interval_ms",
            sw.flush_consumer_offset_interval_ms,
            1,
            MAX_DURATION_MS,
        ),
        (
            "pop_inflight_message_threshold",
            sw.pop_inflight_message_threshold,
            0,
            MAX_TOTAL_MESSAGES,
        ),
        ("late_start_ms", sw.late_start_ms, 0, MAX_DURATION_MS),
        ("late_interval_ms", sw.late_interval_ms, 1, MAX_DURATION_MS),
        (
            "renewing_push_consume_time_ms",
            sw.renewing_push_consume_time_ms,
            0,
            MAX_DURATION_MS,
        ),
    ];
    for (key, r, lo, hi) in limits {
        let Some(r) = r else { continue };
        if r.min > r.max {
            bad(
                IssueKind::Invalid,
                kp!["swarm", key, "min"],
                format!("min {} is greater than max {}", r.min, r.max),
            );
        } else if r.min < lo || r.max > hi {
            let at = if r.min < lo { "min" } else { "max" };
            bad(
                IssueKind::Limit,
                kp!["swarm", key, at],
                format!("{}..={} is outside {lo}..={hi}", r.min, r.max),
            );
        }
    }
    if let Some(r) = sw.queues {
        // Every queue a file names must exist whatever the draw.
        let named = sc
            .producers
            .iter()
            .filter_map(|p| p.queue)
            .chain(sc.steps.iter().filter_map(|s| match &s.action {
                crate::model::Action::Pop { queue, .. } => *queue,
                crate::model::Action::ResetOffset { queue, .. }
                | crate::model::Action::UpdateOffset {
                    queue: Some(queue), ..
                } => u32::try_from(*queue).ok(),
                crate::model::Action::QueryOffset { queue, .. } => Some(*queue),
                _ => None,
            }))
            .max();
        if let Some(q) = named.filter(|q| u64::from(*q) >= r.min) {
            bad(
                IssueKind::Invalid,
                kp!["swarm", "queues", "min"],
                format!(
                    "queue {q} is named in the file; a draw of {} queues has no such queue",
                    r.min
                ),
            );
        }
    }
    if let Some(r) = sw.messages {
        // A late wave doubles what the producers send.
        let waves = if sw.late_start_ms.is_some() { 2 } else { 1 };
        let n = (r.max.saturating_mul(sc.producers.len() as u64)).saturating_mul(waves);
        if n > MAX_TOTAL_MESSAGES {
            bad(
                IssueKind::Limit,
                kp!["swarm", "messages", "max"],
                format!(
                    "{} producers × {}{} exceeds the limit of {MAX_TOTAL_MESSAGES} messages per run",
                    sc.producers.len(),
                    r.max,
                    if waves == 2 { " × 2 (the late wave)" } else { "" }
                ),
            );
        }
    }
    out.extend(validate_late_wave(sc, sw));
    out
}

/// `late_start_ms` and `late_interval_ms`: the wave must be able to send, its twins' names
/// must be free, and the doubled messages must fit the run's limit.
fn validate_late_wave(sc: &Scenario, sw: &SwarmSpec) -> Vec<Problem> {
    let mut out = Vec::new();
    let mut bad = |kind, path: KeyPath, message: String| {
        out.push(Problem {
            kind,
            path,
            message,
        })
    };
    let Some(start) = sw.late_start_ms else {
        if sw.late_interval_ms.is_some() {
            bad(
                IssueKind::Invalid,
                kp!["swarm", "late_interval_ms"],
                "the late twins' interval: set `late_start_ms` too, or drop it".into(),
            );
        }
        return out;
    };
    if start.max > sc.duration_ms {
        bad(
            IssueKind::Invalid,
            kp!["swarm", "late_start_ms", "max"],
            format!(
                "start {} is after duration_ms {}",
                start.max, sc.duration_ms
            ),
        );
    }
    let taken: std::collections::BTreeSet<&str> = (sc.producers.iter().map(|p| p.name.as_str()))
        .chain(sc.consumers.iter().map(|c| c.name.as_str()))
        .chain(sc.clients.iter().map(|c| c.name.as_str()))
        .collect();
    for p in &sc.producers {
        let twin = late_twin_name(&p.name);
        if taken.contains(twin.as_str()) {
            bad(
                IssueKind::Invalid,
                kp!["swarm", "late_start_ms"],
                format!(
                    "producer `{}`'s late twin would be named `{twin}`, which is taken",
                    p.name
                ),
            );
        }
    }
    let sent = (sc.producers.iter()).fold(0u64, |a, p| a.saturating_add(p.messages));
    if sw.messages.is_none() && sent.saturating_mul(2) > MAX_TOTAL_MESSAGES {
        bad(
            IssueKind::Limit,
            kp!["swarm", "late_start_ms"],
            format!("the late wave doubles the producers' {sent} messages, past the limit of {MAX_TOTAL_MESSAGES} per run"),
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{load_str, Context};

    const BASE: &str = r#"
name = "s"
duration_ms = 60_000
[[topics]]
name = "t"
[[groups]]
name = "g"
[[producers]]
name = "p"
topic = "t"
messages = 3
[[consumers]]
name = "c"
kind = "concurrent"
group = "g"
topic = "t"
"#;

    #[test]
    fn the_draw_is_a_pure_function_of_the_seed() {
        let src = format!(
            "{BASE}[swarm]\nloss_rate = {{ min = 0.0, max = 0.2 }}\nconsume_time_ms = {{ min = 10, max = 9000 }}\nmessages = {{ min = 1, max = 50 }}\nfault_on_percent = 100\n"
        );
        let sc = load_str("s.toml", &src, &Context::default()).expect("valid");
        let (a, da) = resolve(&sc, 7);
        let (b, db) = resolve(&sc, 7);
        assert_eq!(a, b);
        assert_eq!(da, db);
        assert_eq!(da.len(), 3);
        assert!(a.faults.loss_rate > 0.0 && a.faults.loss_rate <= 0.2);
        let c = &a.consumers[0].consume_time_ms;
        assert!(c.min <= c.max && c.max <= 9000);
        assert!((1..=50).contains(&a.producers[0].messages));
        // Resolved once, nothing is left to draw.
        assert!(resolve(&a, 8).1.is_empty());
        let differ = (0..20).any(|s| resolve(&sc, s).0 != a);
        assert!(differ, "different seeds draw different worlds");
    }

    #[test]
    fn max_reconsume_times_is_one_per_group_on_half_the_seeds() {
        let src = format!(
            "{BASE}[[consumers]]\nname = \"c2\"\nkind = \"concurrent\"\ngroup = \"g\"\ntopic = \"t\"\n[[groups]]\nname = \"h\"\n[[consumers]]\nname = \"d\"\nkind = \"concurrent\"\ngroup = \"h\"\ntopic = \"t\"\n[swarm]\nmax_reconsume_times = {{ min = 0, max = 3 }}\n"
        );
        let sc = load_str("s.toml", &src, &Context::default()).expect("valid");
        let mut drawn_seeds = 0;
        let mut groups_differ = false;
        for seed in 0..200 {
            let (r, d) = resolve(&sc, seed);
            let m: Vec<i32> = r.consumers.iter().map(|c| c.max_reconsume_times).collect();
            if d.is_empty() {
                // The other half: the file's world, default included.
                assert_eq!(m, [-1, -1, -1]);
                continue;
            }
            drawn_seeds += 1;
            assert_eq!(d.len(), 3, "{d:?}");
            assert_eq!(m[0], m[1], "one value per group");
            assert!(m.iter().all(|v| (0..=3).contains(v)), "{m:?}");
            groups_differ |= m[0] != m[2];
        }
        assert!((60..=140).contains(&drawn_seeds), "{drawn_seeds}");
        assert!(groups_differ, "each group draws its own");
    }

    #[test]
    fn a_looping_simple_consumer_batch_fits_its_invisible_time_on_the_drawn_seeds() {
        let src = format!(
            "{BASE}[[consumers]]\nname = \"s\"\nkind = \"grpc-simple\"\nreceive_loop = true\ngroup = \"g\"\ntopic = \"t\"\n[swarm]\npop_batch_nums = {{ min = 20, max = 32 }}\nconsume_time_ms = {{ min = 1000, max = 8000 }}\npop_invisible_time_ms = {{ min = 10000, max = 30000 }}\nsimple_batch_fits_percent = 50\n"
        );
        let sc = load_str("s.toml", &src, &Context::default()).expect("valid");
        let (mut cut, mut kept) = (0, 0);
        for seed in 0..100 {
            let (r, _) = resolve(&sc, seed);
            let (c, s) = (&r.consumers[0], &r.consumers[1]);
            // The push consumer keeps its draw.
            assert!(c.pop_batch_nums >= 20);
            let fits = s.pop_batch_nums == 1
                || u64::from(s.pop_batch_nums) * s.consume_time_ms.max <= s.pop_invisible_time_ms;
            if s.pop_batch_nums < 20 {
                assert!(fits, "{:?}", s);
                cut += 1;
            } else {
                kept += 1;
            }
        }
        assert!(cut > 20 && kept > 20, "cut {cut}, kept {kept}");
    }

    #[test]
    fn graceful_stops_go_to_classic_path_seeds_that_crash_and_draw_nothing() {
        let swarm = "[swarm]\nfault_on_percent = 50\ncrash_every_ms = { min = 5000, max = 9000 }\nkv_pop_percent = 50\n";
        let with = format!("{BASE}{swarm}shutdown_percent = 40\n");
        let without = format!("{BASE}{swarm}");
        let load = |src: &str| load_str("s.toml", src, &Context::default()).expect("valid");
        let (with, without) = (load(&with), load(&without));
        let mut graceful = 0;
        for seed in 0..100 {
            let (a, _) = resolve(&with, seed);
            let (b, _) = resolve(&without, seed);
            let eligible = a.faults.crash_every_ms > 0 && !a.broker.pop_consumer_kv_service_enable;
            assert_eq!(a.faults.shutdown_percent, if eligible { 40 } else { 0 });
            graceful += usize::from(eligible);
            // Nothing else moved.
            let mut a = a;
            a.faults.shutdown_percent = 0;
            assert_eq!(a, b, "seed {seed}");
        }
        assert!(graceful > 10, "{graceful}");
    }

    #[test]
    fn local_mode_goes_to_grpc_seeds_without_the_faults_it_does_not_model() {
        let grpc = BASE.replace("kind = \"concurrent\"", "kind = \"grpc-push\"");
        let swarm = "[swarm]\nfault_on_percent = 50\nloss_rate = { min = 0.01, max = 0.05 }\nclog_every_ms = { min = 5000, max = 9000 }\n";
        let load = |src: &str| load_str("s.toml", src, &Context::default()).expect("valid");
        let with = load(&format!("{grpc}{swarm}local_proxy_percent = 60\n"));
        let without = load(&format!("{grpc}{swarm}"));
        let remoting = load(&format!("{BASE}{swarm}local_proxy_percent = 100\n"));
        let (mut local, mut eligible) = (0, 0);
        for seed in 0..200 {
            let (a, da) = resolve(&with, seed);
            let (b, _) = resolve(&without, seed);
            let quiet = a.faults.loss_rate == 0.0 && a.faults.clog_every_ms == 0;
            let is_local = a.proxy.proxy_mode == crate::model::ProxyMode::Local;
            assert!(!is_local || quiet, "seed {seed}: local mode with faults");
            assert_eq!(is_local, da.iter().any(|d| d.key == "proxy.proxyMode"));
            eligible += usize::from(quiet);
            local += usize::from(is_local);
            // Nothing else moved.
            let mut a = a;
            a.proxy.proxy_mode = crate::model::ProxyMode::Cluster;
            assert_eq!(a, b, "seed {seed}");
            // No gRPC consumer, no proxy: never drawn.
            let (r, _) = resolve(&remoting, seed);
            assert_eq!(r.proxy.proxy_mode, crate::model::ProxyMode::Cluster);
        }
        assert!(
            eligible > 20 && local > 10 && local < eligible,
            "{local} of {eligible}"
        );
    }

    #[test]
    fn a_quiet_seed_runs_without_random_faults_and_says_so() {
        let src = format!(
            "{BASE}[swarm]\nfault_on_percent = 100\nloss_rate = {{ min = 0.01, max = 0.05 }}\ncrash_every_ms = {{ min = 5000, max = 9000 }}\nlatency_max_ms = {{ min = 5, max = 9 }}\nquiet_percent = 30\n"
        );
        let sc = load_str("s.toml", &src, &Context::default()).expect("valid");
        let (mut quiet, mut loud) = (0, 0);
        for seed in 0..100 {
            let (r, d) = resolve(&sc, seed);
            let f = &r.faults;
            // Latency is no fault: every seed keeps its draw.
            assert!((5..=9).contains(&f.latency_ms.max));
            if f.loss_rate == 0.0 {
                quiet += 1;
                assert_eq!(f.crash_every_ms, 0);
                let loss = d.iter().find(|x| x.key == "faults.loss_rate").unwrap();
                assert!(
                    loss.value.starts_with("0 (quiet seed; drawn 0.0"),
                    "{loss:?}"
                );
            } else {
                loud += 1;
                assert!(f.crash_every_ms > 0);
            }
        }
        assert!((15..=45).contains(&quiet) && loud > 50, "{quiet} quiet");
    }

    /// Loads the file `without` and with `extra` keys appended, and resolves both on seeds
    /// 0..200: a key drawn last must leave every earlier draw as the file without it gives
    /// (checked here), and `check` gets each seed's two resolutions.
    fn each_seed_drawn_last(
        without: &str,
        extra: &str,
        mut check: impl FnMut(u64, (Scenario, Vec<Drawn>), (Scenario, Vec<Drawn>)),
    ) {
        let ctx = Context::default();
        let with = format!("{without}{extra}");
        let a = load_str("a.toml", without, &ctx).expect("valid");
        let b = load_str("b.toml", &with, &ctx).expect("valid");
        for seed in 0..200 {
            let ((ra, da), (rb, db)) = (resolve(&a, seed), resolve(&b, seed));
            assert_eq!(db[..da.len()], da[..], "seed {seed}");
            check(seed, (ra, da), (rb, db));
        }
    }

    /// Retention and the page cache each come on about half the seeds, drawn after every
    /// other key: the rest of each seed's draw is the one the file without them gives, and a
    /// quiet seed keeps them (the store's environment, not a fault).
    #[test]
    fn retention_and_page_cache_are_drawn_last_on_half_the_seeds() {
        let without = format!(
            "{BASE}[swarm]\nfault_on_percent = 100\nloss_rate = {{ min = 0.01, max = 0.05 }}\nquiet_percent = 30\n"
        );
        let (mut retained, mut paged, mut quiet_retained) = (0, 0, 0);
        each_seed_drawn_last(
            &without,
            "retention_ms = { min = 5000, max = 9000 }\npage_cache_ms = { min = 10, max = 20 }\n",
            |seed, (ra, da), (rb, db)| {
                assert_eq!(ra.faults.loss_rate, rb.faults.loss_rate);
                let f = &rb.faults;
                if f.retention_ms > 0 {
                    assert!((5000..=9000).contains(&f.retention_ms));
                    retained += 1;
                    quiet_retained += usize::from(f.loss_rate == 0.0);
                }
                if f.page_cache_ms > 0 {
                    assert!((10..=20).contains(&f.page_cache_ms));
                    paged += 1;
                }
                let extra: Vec<&str> = db[da.len()..].iter().map(|x| x.key.as_str()).collect();
                let expect: Vec<&str> = [
                    (f.retention_ms > 0).then_some("faults.retention_ms"),
                    (f.page_cache_ms > 0).then_some("faults.page_cache_ms"),
                ]
                .into_iter()
                .flatten()
                .collect();
                assert_eq!(extra, expect, "seed {seed}");
            },
        );
        assert!((70..=130).contains(&retained), "{retained} retained");
        assert!((70..=130).contains(&paged), "{paged} paged");
        assert!(quiet_retained > 0, "a quiet seed keeps its retention");
    }

    /// The broker's sizes and schedules come after retention and the page cache, each on
    /// about half the seeds; a drawn in-flight threshold switches the threshold on.
    #[test]
    fn broker_sizes_are_drawn_after_the_store_on_half_the_seeds() {
        let without = format!("{BASE}[swarm]\nretention_ms = {{ min = 5000, max = 9000 }}\n");
        let mut on = [0usize; 4];
        each_seed_drawn_last(&without, "pop_ck_max_buffer_size = { min = 1, max = 5 }\npop_ck_offset_max_queue_size = { min = 1, max = 3 }\nflush_consumer_offset_interval_ms = { min = 1000, max = 2000 }\npop_inflight_message_threshold = { min = 10, max = 50 }\n", |seed, (_, da), (rb, db)| {
            let br = &rb.broker;
            let drawn = [
                (1..=5).contains(&br.pop_ck_max_buffer_size),
                (1..=3).contains(&br.pop_ck_offset_max_queue_size),
                (1000..=2000).contains(&br.flush_consumer_offset_interval),
                (10..=50).contains(&br.pop_inflight_message_threshold),
            ];
            for (n, d) in on.iter_mut().zip(drawn) {
                *n += usize::from(d);
            }
            assert_eq!(br.enable_pop_message_threshold, drawn[3], "seed {seed}");
            assert_eq!(
                db.len() - da.len(),
                drawn.iter().filter(|d| **d).count() + usize::from(drawn[3])
            );
        });
        assert!(on.iter().all(|n| (70..=130).contains(n)), "{on:?}");
    }

    /// The late wave comes on about half the seeds, drawn after every other key (the rest of
    /// each seed's draw is the one the file without it gives): a twin per producer, with
    /// its producer's topic, queue and drawn count, its own start and interval.
    #[test]
    fn the_late_wave_is_a_twin_per_producer_drawn_last_on_half_the_seeds() {
        let without = format!(
            "{BASE}[[producers]]\nname = \"q\"\ntopic = \"t\"\nqueue = 0\ninterval_ms = 7\n[swarm]\nmessages = {{ min = 2, max = 9 }}\nquiet_percent = 30\nretention_ms = {{ min = 5000, max = 9000 }}\n"
        );
        let mut late = 0;
        each_seed_drawn_last(&without, "late_start_ms = { min = 20000, max = 40000 }\nlate_interval_ms = { min = 100, max = 200 }\n", |seed, (ra, da), (rb, db)| {
            assert_eq!(rb.producers[..2], ra.producers[..], "seed {seed}");
            if rb.producers.len() == 2 {
                assert_eq!(db.len(), da.len(), "seed {seed}");
                return;
            }
            late += 1;
            assert_eq!(rb.producers.len(), 4);
            for (p, twin) in ra.producers.iter().zip(&rb.producers[2..]) {
                assert_eq!(twin.name, format!("{}-late", p.name));
                assert_eq!(
                    (&twin.topic, twin.queue, twin.messages),
                    (&p.topic, p.queue, p.messages)
                );
                assert!((20_000..=40_000).contains(&twin.start_at_ms), "{twin:?}");
                assert!((100..=200).contains(&twin.interval_ms), "{twin:?}");
            }
            assert_eq!(db.len() - da.len(), 6, "three keys per twin");
            // Resolved, it draws nothing more.
            assert!(resolve(&rb, seed).1.is_empty());
        });
        assert!((70..=130).contains(&late), "{late} late");
    }

    /// The later client's coin comes after the late wave: on about half the seeds every gRPC
    /// push consumer keeps its attemptId until messages arrive, and the rest of the draw is
    /// the one the file without the key gives.
    #[test]
    fn the_later_clients_attempt_ids_are_drawn_last() {
        let without = format!(
            "{BASE}[[consumers]]\nname = \"o\"\nkind = \"grpc-push\"\nfifo = true\ngroup = \"g\"\ntopic = \"t\"\n[swarm]\nlate_start_ms = {{ min = 1, max = 2 }}\n"
        );
        let mut later = 0;
        each_seed_drawn_last(
            &without,
            "attempt_id_until_messages_percent = 50\n",
            |seed, (ra, da), (rb, db)| {
                assert_eq!(ra.producers, rb.producers, "seed {seed}");
                let (c, o) = (&rb.consumers[0], &rb.consumers[1]);
                assert!(
                    !c.keeps_attempt_id_until_messages,
                    "a remoting consumer has no attemptId"
                );
                later += usize::from(o.keeps_attempt_id_until_messages);
                assert_eq!(
                    db.len() - da.len(),
                    usize::from(o.keeps_attempt_id_until_messages)
                );
            },
        );
        assert!((70..=130).contains(&later), "{later} of 200");
    }

    /// The renewing consumer comes on about half the seeds, drawn after every other key: a
    /// seed without it is the scenario the file without the knob gives, and with it only a
    /// non-FIFO gRPC push consumer and its group are added (on the last topic).
    #[test]
    fn the_renewing_push_consumer_is_drawn_last_on_half_the_seeds() {
        let without = format!(
            "{BASE}[[topics]]\nname = \"u\"\n[swarm]\nattempt_id_until_messages_percent = 50\n"
        );
        let mut added = 0;
        each_seed_drawn_last(
            &without,
            "renewing_push_consume_time_ms = { min = 40000, max = 65000 }\n",
            |seed, (ra, da), (mut rb, db)| {
                if db.len() == da.len() {
                    assert_eq!(ra, rb, "seed {seed}: nothing else changes");
                    return;
                }
                added += 1;
                assert_eq!(db.len(), da.len() + 1);
                let r = rb.consumers.pop().expect("the renewing consumer");
                assert_eq!(
                    rb.groups.pop().map(|g| g.name).as_deref(),
                    Some(RENEWING_GROUP)
                );
                assert_eq!(
                    (r.name.as_str(), r.topic.as_str()),
                    (RENEWING_CONSUMER, "u")
                );
                assert!(r.kind == ConsumerKindSpec::GrpcPush && !r.fifo);
                assert_eq!(
                    (r.consume_time_ms.min, r.consume_time_ms.max),
                    (40_000, 65_000)
                );
                rb.swarm = ra.swarm.clone();
                assert_eq!(ra, rb, "seed {seed}: the rest is as without the knob");
            },
        );
        assert!((70..=130).contains(&added), "{added} of 200");
    }

    #[test]
    fn a_late_wave_that_cannot_run_is_located() {
        let ctx = Context::default();
        for (swarm, path, says) in [
            (
                "late_interval_ms = { min = 1, max = 2 }",
                "swarm.late_interval_ms",
                "set `late_start_ms` too",
            ),
            (
                "late_start_ms = { min = 1000, max = 70000 }",
                "swarm.late_start_ms.max",
                "after duration_ms 60000",
            ),
            (
                "late_start_ms = { min = 1, max = 2 }\nlate_interval_ms = { min = 0, max = 2 }",
                "swarm.late_interval_ms.min",
                "outside 1..=",
            ),
            (
                "late_start_ms = { min = 1, max = 2 }\nmessages = { min = 1, max = 600000 }",
                "swarm.messages.max",
                "× 2 (the late wave)",
            ),
        ] {
            let src = format!("{BASE}[swarm]\n{swarm}\n");
            let text = load_str("s.toml", &src, &ctx).unwrap_err().render();
            assert!(
                text.contains(path) && text.contains(says),
                "{swarm}: {text}"
            );
        }
        let taken = format!(
            "{BASE}[[producers]]\nname = \"p-late\"\ntopic = \"t\"\n[swarm]\nlate_start_ms = {{ min = 1, max = 2 }}\n"
        );
        let text = load_str("s.toml", &taken, &ctx).unwrap_err().render();
        assert!(text.contains("late twin would be named `p-late`"), "{text}");
        let doubled = BASE.replace("messages = 3", "messages = 600000");
        let text = load_str(
            "s.toml",
            &format!("{doubled}[swarm]\nlate_start_ms = {{ min = 1, max = 2 }}\n"),
            &ctx,
        )
        .unwrap_err()
        .render();
        assert!(text.contains("the late wave doubles"), "{text}");
    }

    #[test]
    fn a_retention_range_of_zero_is_located() {
        let src = format!("{BASE}[swarm]\nretention_ms = {{ min = 0, max = 10 }}\n");
        let text = load_str("s.toml", &src, &Context::default())
            .unwrap_err()
            .render();
        assert!(text.contains("swarm.retention_ms.min"), "{text}");
        assert!(text.contains("0..=10 is outside 1..="), "{text}");
    }

    #[test]
    fn a_scenario_without_swarm_is_unchanged() {
        let sc = load_str("s.toml", BASE, &Context::default()).expect("valid");
        assert_eq!(resolve(&sc, 3), (sc, Vec::new()));
    }

    #[test]
    fn bad_ranges_are_located() {
        let src = format!(
            "{BASE}[swarm]\npop_batch_nums = {{ min = 4, max = 40 }}\nbaseline = [\"nope\"]\nloss_rate = {{ min = 0.5, max = 0.1 }}\n"
        );
        let e = load_str("s.toml", &src, &Context::default()).unwrap_err();
        let text = e.render();
        assert!(text.contains("swarm.pop_batch_nums.max"), "{text}");
        assert!(text.contains("swarm.baseline[0]"), "{text}");
        assert!(text.contains("swarm.loss_rate.min"), "{text}");
        let unknown = format!("{BASE}[swarm]\nlos_rate = 1\n");
        let e = load_str("s.toml", &unknown, &Context::default()).unwrap_err();
        assert!(e.render().contains("swarm.los_rate"), "{}", e.render());
    }
}
