//! Random faults drawn from the seed (madsim's RNG) according to the scenario's `FaultSpec`,
//! until the quiet period begins; everything injected is healed by then.

use super::control::{Controller, Origin};
use crate::clients::admin::ResetCommand;
use crate::clients::draw_ms;
use crate::clients::offset::OffsetCommand;
use broker_core::Millis;
use madsim::rand::Rng;
use scenarios::model::{FaultSpec, UpdateMode};
use tokio::sync::mpsc::UnboundedSender;

/// True if the spec injects anything at random.
pub fn is_faulty(spec: &FaultSpec) -> bool {
    spec.loss_rate > 0.0
        || spec.clog_every_ms > 0
        || spec.crash_every_ms > 0
        || spec.pause_every_ms > 0
        || spec.reset_every_ms > 0
        || spec.update_offset_every_ms > 0
        || spec.timer_lag_ms.max > 0
        || spec.store_put_failure_rate > 0.0
}

/// Who performs the operations drawn as faults, and on what.
pub struct Operators {
    /// The first `admin` client: random resets.
    pub admin: Option<UnboundedSender<ResetCommand>>,
    /// The first `offset` client: random offset updates.
    pub offset: Option<UnboundedSender<OffsetCommand>>,
    /// (group, topic, queues) the consumers subscribe: what resets move.
    pub consumed: Vec<(String, String, u32)>,
    /// (group, topic, queues) for groups without consumers: what offset updates write.
    pub unconsumed: Vec<(String, String, u32)>,
}

/// An exponentially distributed gap with the given mean.
fn exp_gap(mean: Millis) -> Millis {
    let u: f64 = madsim::rand::thread_rng().gen_range(0.0..1.0);
    (-(mean as f64) * (1.0 - u).ln()).round() as Millis
}

fn pick(names: &[String]) -> String {
    names[madsim::rand::thread_rng().gen_range(0..names.len())].clone()
}

/// Spawns one task per fault kind on the controller's node. `seed` is the run's: a stop's
/// kind (crash or graceful shutdown) comes from a stream of its own, so the other draws stay
/// as they were.
pub fn spawn_random_faults(
    ctl: &Controller,
    spec: &FaultSpec,
    (quiet_from, seed): (Millis, u64),
    consumers: Vec<String>,
    ops: Operators,
) {
    spawn_random_operations(ctl, spec, quiet_from, ops);
    spawn_store_faults(ctl, spec, quiet_from);
    if spec.loss_rate > 0.0 && quiet_from > 0 {
        let rate = spec.loss_rate;
        ctl.spawn(move |ctl| async move {
            ctl.set_loss(rate, Origin::Random);
            ctl.clock().sleep_until(quiet_from).await;
            ctl.set_loss(0.0, Origin::Random);
        });
    }
    if spec.clog_every_ms > 0 {
        let spec = spec.clone();
        let nodes: Vec<String> = ctl.node_names().cloned().collect();
        ctl.spawn(move |ctl| async move {
            let clock = ctl.clock();
            loop {
                let at = clock.now_ms() + exp_gap(spec.clog_every_ms);
                if at >= quiet_from || nodes.is_empty() {
                    break;
                }
                clock.sleep_until(at).await;
                let node = pick(&nodes);
                let end = (at + draw_ms(spec.clog_duration_ms)).min(quiet_from);
                if ctl.clog(&node, Origin::Random, Some(end)) {
                    ctl.spawn(move |ctl| async move {
                        ctl.clock().sleep_until(end).await;
                        ctl.unclog(&node, Origin::Random);
                    });
                }
            }
        });
    }
    if spec.crash_every_ms > 0 {
        let spec = spec.clone();
        let mut kind = broker_core::rng::stream(seed, "faults.shutdown");
        ctl.spawn(move |ctl| async move {
            let clock = ctl.clock();
            loop {
                let at = clock.now_ms() + exp_gap(spec.crash_every_ms);
                if at >= quiet_from {
                    break;
                }
                clock.sleep_until(at).await;
                let graceful = spec.shutdown_percent > 0
                    && broker_core::rng::Rng::gen_range(&mut kind, 0..100) < spec.shutdown_percent;
                let stopped = if graceful {
                    ctl.shutdown_broker(Origin::Random)
                } else {
                    ctl.crash_broker(Origin::Random)
                };
                if stopped {
                    let end = (at + draw_ms(spec.restart_after_ms)).min(quiet_from);
                    clock.sleep_until(end).await;
                    ctl.restart_broker(Origin::Random);
                }
            }
        });
    }
    if spec.pause_every_ms > 0 && !consumers.is_empty() {
        let spec = spec.clone();
        ctl.spawn(move |ctl| async move {
            let clock = ctl.clock();
            loop {
                let at = clock.now_ms() + exp_gap(spec.pause_every_ms);
                if at >= quiet_from {
                    break;
                }
                clock.sleep_until(at).await;
                let node = pick(&consumers);
                let dur = draw_ms(spec.pause_duration_ms).min(quiet_from - at);
                if dur > 0 && !ctl.is_paused(&node) {
                    ctl.spawn(
                        move |ctl| async move { ctl.pause(&node, dur, Origin::Random).await },
                    );
                }
            }
        });
    }
}

/// Admin resets and offset updates at random times, until the quiet period: offsets are
/// drawn inside the queue's current range, as an operator would pick them.
fn spawn_random_operations(ctl: &Controller, spec: &FaultSpec, quiet_from: Millis, ops: Operators) {
    if let (Some(admin), true) = (
        ops.admin,
        spec.reset_every_ms > 0 && !ops.consumed.is_empty(),
    ) {
        let (every, subs) = (spec.reset_every_ms, ops.consumed);
        ctl.spawn(move |ctl| async move {
            let clock = ctl.clock();
            loop {
                let at = clock.now_ms() + exp_gap(every);
                if at >= quiet_from {
                    break;
                }
                clock.sleep_until(at).await;
                let (group, topic, queues) = subs[pick_index(subs.len())].clone();
                let mut rng = madsim::rand::thread_rng();
                let cmd = if rng.gen_bool(0.5) {
                    let queue = rng.gen_range(0..queues);
                    let (min, max) = ctl.queue_range(&topic, queue);
                    ResetCommand {
                        group,
                        topic,
                        queue: queue as i32,
                        offset: Some(rng.gen_range(min..=max) as i64),
                        timestamp: -1,
                    }
                } else {
                    // Every queue back to a moment of the run so far (resetOffsetByTime).
                    ResetCommand {
                        group,
                        topic,
                        queue: -1,
                        offset: None,
                        timestamp: rng.gen_range(0..=at) as i64,
                    }
                };
                let _ = admin.send(cmd);
            }
        });
    }
    if let (Some(client), true) = (
        ops.offset,
        spec.update_offset_every_ms > 0 && !ops.unconsumed.is_empty(),
    ) {
        let (every, subs) = (spec.update_offset_every_ms, ops.unconsumed);
        ctl.spawn(move |ctl| async move {
            let clock = ctl.clock();
            loop {
                let at = clock.now_ms() + exp_gap(every);
                if at >= quiet_from {
                    break;
                }
                clock.sleep_until(at).await;
                let (group, topic, queues) = subs[pick_index(subs.len())].clone();
                let mut rng = madsim::rand::thread_rng();
                let queue = rng.gen_range(0..queues);
                let (min, max) = ctl.queue_range(&topic, queue);
                let mode =
                    [UpdateMode::Oneway, UpdateMode::Sync, UpdateMode::Future][rng.gen_range(0..3)];
                let _ = client.send(OffsetCommand::Update {
                    mode,
                    group,
                    topic,
                    queue: Some(queue as i32),
                    offset: Some(rng.gen_range(min..=max) as i64),
                });
            }
        });
    }
}

/// The broker's store and timer faults: put failures at a fixed rate, and a timer whose lag
/// is redrawn every second (each redraw recorded, so a shrink can script it), both until the
/// quiet period.
fn spawn_store_faults(ctl: &Controller, spec: &FaultSpec, quiet_from: Millis) {
    if spec.store_put_failure_rate > 0.0 && quiet_from > 0 {
        let rate = spec.store_put_failure_rate;
        ctl.spawn(move |ctl| async move {
            ctl.set_store_put_failure_rate(rate, Origin::Random);
            ctl.clock().sleep_until(quiet_from).await;
            ctl.set_store_put_failure_rate(0.0, Origin::Random);
        });
    }
    if spec.timer_lag_ms.max > 0 && quiet_from > 0 {
        let range = spec.timer_lag_ms;
        ctl.spawn(move |ctl| async move {
            let clock = ctl.clock();
            loop {
                let now = clock.now_ms();
                if now >= quiet_from {
                    break;
                }
                ctl.set_timer_lag(draw_ms(range), Origin::Random);
                clock
                    .sleep_until((now + TIMER_LAG_REDRAW_MS).min(quiet_from))
                    .await;
            }
            ctl.set_timer_lag(0, Origin::Random);
        });
    }
}

/// How often a lagging timer's lag is redrawn.
const TIMER_LAG_REDRAW_MS: Millis = 1_000;

fn pick_index(len: usize) -> usize {
    madsim::rand::thread_rng().gen_range(0..len)
}
