//! The per-seed runner and parallel sweeps.
//!
//! Every seed runs in a fresh OS thread with its own madsim `Runtime`: std's hash keys and
//! other per-thread state are seeded on first use, so reusing a thread would make a second
//! run of the same seed diverge (madsim #240). A panic inside the simulation is caught at the
//! thread join and reported as a failed seed with the node that panicked; a sweep goes on.

use crate::clients::decisions;
use crate::world::{self, WorldConfig};
use broker_core::{Behaviours, BrokerConfig, BrokerSnapshot, InitMode, Millis, Release};
use reports::history::{ConsumerKind, ConsumerMeta, Event, History, RunMeta};
use reports::{Checked, Counts, InvariantResult};
use scenarios::model::{ConsumerKindSpec, ConsumerSpec, ProxyConfig, Scenario};
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{mpsc, Mutex, Once};

/// What to switch on for a run.
#[derive(Clone, Debug, Default)]
pub struct RunOptions {
    /// Historical behaviours and proposed fixes switched on (in addition to the release's
    /// behaviours, if any).
    pub behaviours: Behaviours,
    /// A release profile: its behaviours are switched on, and a release without the KV pop
    /// path runs with `popConsumerKVServiceEnable = false`.
    pub release: Option<Release>,
    /// Install madsim's tracing subscriber (slow; for debugging one seed).
    pub trace: bool,
    /// Tally the history for a report (`popsim run`), through the facts the check built:
    /// sweeps never read the counts, and a scenario that checks a few invariants would pay
    /// for the ack analysis only for them.
    pub counts: bool,
}

impl RunOptions {
    /// Every behaviour in force: the release's plus the explicit ones.
    pub fn effective_behaviours(&self) -> Behaviours {
        let mut all = self.behaviours.clone();
        if let Some(r) = self.release {
            for b in r.behaviours().iter() {
                all.insert(b);
            }
        }
        all
    }

    /// The scenario's broker configuration as this run uses it.
    pub fn broker_config(&self, scenario: &Scenario) -> BrokerConfig {
        let mut cfg = scenario.broker.clone();
        if self.release.is_some_and(|r| !r.has_kv_pop_path()) {
            cfg.pop_consumer_kv_service_enable = false;
        }
        cfg
    }
}

/// A panic inside the simulation.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SimPanic {
    pub message: String,
    /// The simulated node whose task panicked, if known.
    pub node: Option<String>,
    pub location: Option<String>,
}

impl std::fmt::Display for SimPanic {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "panic")?;
        if let Some(n) = &self.node {
            write!(f, " on node `{n}`")?;
        }
        if let Some(l) = &self.location {
            write!(f, " at {l}")?;
        }
        write!(f, ": {}", self.message)
    }
}

/// One seed's result.
#[derive(Clone, Debug)]
pub struct RunOutcome {
    pub seed: u64,
    /// On a panic: the events recorded up to it and an empty final state.
    pub history: History,
    /// Empty on a panic.
    pub results: Vec<InvariantResult>,
    /// The history's tallies, from the same facts as `results`, when the options asked for
    /// them and the seed did not panic.
    pub counts: Option<Counts>,
    pub hash: u64,
    pub panic: Option<SimPanic>,
}

impl RunOutcome {
    /// Names of the violated invariants, in registry order.
    pub fn violated(&self) -> Vec<&'static str> {
        self.results
            .iter()
            .filter(|r| r.is_violated())
            .map(|r| r.name)
            .collect()
    }

    /// A panic or a violated invariant.
    pub fn failed(&self) -> bool {
        self.panic.is_some() || self.results.iter().any(InvariantResult::is_violated)
    }
}

/// How a consumer runs: the history's kind, its effective maximum (`getMaxReconsumeTimes`,
/// or the proxy's `maxAttempts` for a gRPC client) and the invisible time its pops carry.
pub fn consumer_kind(c: &ConsumerSpec, proxy: &ProxyConfig) -> (ConsumerKind, u32, Millis) {
    let remoting = decisions::remoting_max_reconsume_times(c.max_reconsume_times);
    let attempts = decisions::max_attempts(c.max_reconsume_times);
    match c.kind {
        ConsumerKindSpec::Concurrent => (
            ConsumerKind::Concurrent,
            remoting,
            decisions::remoting_pop_invisible_time(c.pop_invisible_time_ms),
        ),
        ConsumerKindSpec::Scripted => (ConsumerKind::Concurrent, remoting, c.pop_invisible_time_ms),
        ConsumerKindSpec::GrpcPush => (
            if c.fifo {
                ConsumerKind::GrpcFifo
            } else {
                ConsumerKind::GrpcPush
            },
            attempts,
            push_invisible_time(c, proxy),
        ),
        ConsumerKindSpec::GrpcSimple => {
            (ConsumerKind::GrpcSimple, attempts, c.pop_invisible_time_ms)
        }
    }
}

/// The gRPC push consumer sends no invisible time: with auto-renew the proxy pops with its
/// `defaultInvisibleTimeMills` (without, the receive is refused).
fn push_invisible_time(c: &ConsumerSpec, proxy: &ProxyConfig) -> Millis {
    if proxy.enable_proxy_auto_renew {
        proxy.default_invisible_time_mills
    } else {
        c.pop_invisible_time_ms
    }
}

/// The scenario values a client replaces with its own, one line each (`popsim run`'s
/// header says them).
pub fn replaced_values(scenario: &Scenario) -> Vec<String> {
    let p = &scenario.proxy;
    let mut out = Vec::new();
    for c in &scenario.consumers {
        let n = &c.name;
        match c.kind {
            ConsumerKindSpec::Concurrent => {
                let used = decisions::remoting_pop_invisible_time(c.pop_invisible_time_ms);
                if used != c.pop_invisible_time_ms {
                    out.push(format!(
                        "{n}: pop_invisible_time_ms {} is outside [{}, {}]; the push consumer pops with {used} ms (DefaultMQPushConsumerImpl.popMessage)",
                        c.pop_invisible_time_ms,
                        decisions::MIN_POP_INVISIBLE_TIME,
                        decisions::MAX_POP_INVISIBLE_TIME
                    ));
                }
            }
            ConsumerKindSpec::GrpcPush => {
                let used = push_invisible_time(c, p);
                if used != c.pop_invisible_time_ms {
                    out.push(format!(
                        "{n}: pop_invisible_time_ms {} is not sent by the gRPC push consumer; the proxy pops with defaultInvisibleTimeMills {used} ms and renews it (ReceiveMessageActivity, ReceiptHandleProcessor)",
                        c.pop_invisible_time_ms
                    ));
                }
                let batch = p
                    .grpc_client_consumer_long_polling_batch_size
                    .min(crate::proxy::decisions::MAX_MSG_NUMS_FOR_POP_REQUEST);
                if batch != c.pop_batch_nums {
                    out.push(format!(
                        "{n}: pop_batch_nums {} is replaced by the settings' receiveBatchSize {batch} (proxy grpcClientConsumerLongPollingBatchSize)",
                        c.pop_batch_nums
                    ));
                }
            }
            _ => {}
        }
        if c.kind.is_grpc() {
            if c.init_mode == InitMode::Min {
                out.push(format!(
                    "{n}: init_mode min is replaced by max: the proxy pops with ConsumeInitMode.MAX (ReceiveMessageActivity)"
                ));
            }
            out.push(format!(
                "{n}: max_reconsume_times {} is the group's retryMaxTimes; maxAttempts {}",
                c.max_reconsume_times,
                decisions::max_attempts(c.max_reconsume_times)
            ));
        }
    }
    out
}

/// The run header for `scenario` under `opts`.
pub fn run_meta(scenario: &Scenario, seed: u64, opts: &RunOptions) -> RunMeta {
    let consumers = scenario
        .consumers
        .iter()
        .map(|c| {
            let (kind, effective, invisible) = consumer_kind(c, &scenario.proxy);
            ConsumerMeta {
                name: c.name.clone(),
                group: c.group.clone(),
                topic: c.topic.clone(),
                kind,
                max_reconsume_times: c.max_reconsume_times,
                effective_max_reconsume_times: effective,
                pop_invisible_time: invisible,
            }
        })
        .collect();
    RunMeta {
        scenario: scenario.name.clone(),
        seed,
        behaviours: opts
            .effective_behaviours()
            .iter()
            .map(|b| b.name().to_owned())
            .collect(),
        fixes: opts
            .behaviours
            .fixes()
            .map(|f| f.name().to_owned())
            .collect(),
        release: opts.release.map(|r| r.name().to_owned()),
        consumers,
        quiet_from: scenario
            .duration_ms
            .saturating_sub(scenario.quiet_period_ms),
        end_at: scenario.duration_ms,
        faulty: world::faults::is_faulty(&scenario.faults),
        offset_flush_interval: scenario.broker.flush_consumer_offset_interval,
    }
}

/// Everything a seed runs with, prepared once for every path that runs a seed (`run`,
/// `sweep`, `verify`, `matrix`, `bench`, `shrink` and the run header): the `[swarm]` draw
/// resolved, the scenario's baseline behaviours on, BUGGIFY armed or not, the world's
/// configuration and madsim's network.
#[derive(Clone)]
pub struct PreparedSeed {
    pub seed: u64,
    /// The scenario as this seed runs it (its swarm ranges replaced by the draw).
    pub scenario: Scenario,
    /// What the draw picked, in a fixed order (empty without `[swarm]` ranges).
    pub drawn: Vec<scenarios::swarm::Drawn>,
    /// The caller's switches plus the scenario's baseline behaviours.
    pub opts: RunOptions,
    /// BUGGIFY hooks armed for this seed (`[swarm] buggify = true`).
    pub buggify: bool,
    pub meta: RunMeta,
    pub world: WorldConfig,
    pub net: madsim::Config,
}

/// Prepares `seed` of `scenario` under `opts`: the one place that decides what a seed runs.
pub fn prepare(scenario: &Scenario, seed: u64, opts: &RunOptions) -> PreparedSeed {
    let (resolved, drawn) = scenarios::swarm::resolve(scenario, seed);
    let opts = crate::explore::with_baseline(opts, &resolved);
    let buggify = resolved.swarm.as_ref().is_some_and(|s| s.buggify);
    let meta = run_meta(&resolved, seed, &opts);
    let world = WorldConfig {
        broker: opts.broker_config(&resolved),
        behaviours: opts.effective_behaviours(),
        seed,
    };
    let net = world::net_config(&resolved);
    PreparedSeed {
        seed,
        scenario: resolved,
        drawn,
        opts,
        buggify,
        meta,
        world,
        net,
    }
}

/// What the simulation of a prepared seed left behind, before checking.
pub struct Simulated {
    pub output: world::WorldOutput,
    /// Datagrams madsim's network carried.
    pub net_messages: u64,
}

impl PreparedSeed {
    /// Simulates the seed on the calling thread (which must be fresh: see the module doc)
    /// with BUGGIFY armed as prepared.
    pub fn simulate_here(&self) -> Simulated {
        if self.opts.trace {
            madsim::runtime::init_logger();
        }
        crate::buggify::set_seed(self.buggify.then_some(self.seed));
        let rt = madsim::runtime::Runtime::with_seed_and_config(self.seed, self.net.clone());
        let sc = self.scenario.clone();
        let cfg = self.world.clone();
        let out = rt.block_on(async move {
            let output = world::simulate(&sc, &cfg).await;
            let net_messages = madsim::net::NetSim::current().stat().msg_count;
            Simulated {
                output,
                net_messages,
            }
        });
        drop(rt);
        crate::buggify::set_seed(None);
        out
    }

    /// The history of a finished simulation, and its hash (from the digest the recorder
    /// kept; tests compare it with [`History::hash`]).
    pub fn history(&self, out: world::WorldOutput) -> (History, u64) {
        let hash = out.digest.finish(&out.final_state);
        let history = History {
            meta: self.meta.clone(),
            events: out.events,
            final_state: out.final_state,
        };
        debug_assert_eq!(
            hash,
            history.hash(),
            "the recorded digest is the history's hash"
        );
        (history, hash)
    }

    /// Checks the scenario's invariants on `history`, and tallies it if the options ask.
    pub fn check(&self, history: &History) -> Checked {
        self.check_with(history, &mut reports::run_step)
    }

    /// [`Self::check`], each step (a shared fact, an invariant, the tally) run through
    /// `step`: how `popsim bench` measures where a seed's checking goes.
    pub fn check_with(&self, history: &History, step: reports::StepHook<'_>) -> Checked {
        reports::check_and_count_with(
            history,
            &self.scenario.expect.invariants,
            self.opts.counts,
            step,
        )
    }
}

/// Runs one seed in a fresh thread, then checks the scenario's invariants.
pub fn run_seed(scenario: &Scenario, seed: u64, opts: &RunOptions) -> RunOutcome {
    install_panic_hook();
    let prepared = prepare(scenario, seed, opts);
    let thread_name = format!("{SEED_THREAD_PREFIX}{seed}");
    let joined = {
        let p = prepared.clone();
        std::thread::Builder::new()
            .name(thread_name.clone())
            .spawn(move || p.simulate_here().output)
            .expect("spawn a seed thread")
            .join()
    };
    let scenario = &prepared.scenario;
    match joined {
        Ok(out) => {
            let (history, hash) = prepared.history(out);
            let Checked { results, counts } = prepared.check(&history);
            RunOutcome {
                seed,
                history,
                results,
                counts,
                hash,
                panic: None,
            }
        }
        Err(payload) => {
            let mut panic = take_panic(&thread_name).unwrap_or_else(|| SimPanic {
                message: payload_message(payload.as_ref()),
                node: None,
                location: None,
            });
            let known = known_nodes(scenario);
            if panic.node.as_ref().is_some_and(|n| !known.contains(n)) {
                panic.node = None;
            }
            let history = History {
                meta: prepared.meta.clone(),
                events: Vec::<Event>::new(),
                final_state: BrokerSnapshot::default(),
            };
            let hash = history.hash();
            RunOutcome {
                seed,
                history,
                results: Vec::new(),
                counts: None,
                hash,
                panic: Some(panic),
            }
        }
    }
}

fn known_nodes(sc: &Scenario) -> Vec<String> {
    let mut v = vec![
        world::broker_node::BROKER_NODE.to_owned(),
        "madsim-main".to_owned(),
    ];
    v.extend(sc.producers.iter().map(|p| p.name.clone()));
    v.extend(sc.consumers.iter().map(|c| c.name.clone()));
    v.extend(sc.clients.iter().map(|c| c.name.clone()));
    v
}

const SEED_THREAD_PREFIX: &str = "popsim-seed-";

static PANICS: Mutex<BTreeMap<String, SimPanic>> = Mutex::new(BTreeMap::new());

fn payload_message(p: &(dyn std::any::Any + Send)) -> String {
    if let Some(s) = p.downcast_ref::<&str>() {
        (*s).to_owned()
    } else if let Some(s) = p.downcast_ref::<String>() {
        s.clone()
    } else {
        "non-string panic payload".to_owned()
    }
}

/// The name madsim gives the current task's node (its `gethostname` override).
fn current_node_name() -> Option<String> {
    let mut buf = [0u8; 256];
    // SAFETY: the buffer is valid for `buf.len()` bytes; gethostname NUL-terminates on success.
    let rc = unsafe { libc::gethostname(buf.as_mut_ptr().cast(), buf.len()) };
    if rc != 0 {
        return None;
    }
    let end = buf.iter().position(|&b| b == 0).unwrap_or(buf.len());
    String::from_utf8(buf[..end].to_vec()).ok()
}

/// Seed threads report panics to the runner instead of printing them; other threads keep
/// the default hook.
fn install_panic_hook() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        let default = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            let thread = std::thread::current();
            let Some(name) = thread.name().filter(|n| n.starts_with(SEED_THREAD_PREFIX)) else {
                default(info);
                return;
            };
            let panic = SimPanic {
                message: payload_message(info.payload()),
                node: current_node_name(),
                location: info
                    .location()
                    .map(|l| format!("{}:{}", l.file(), l.line())),
            };
            if let Ok(mut map) = PANICS.lock() {
                map.entry(name.to_owned()).or_insert(panic);
            }
        }));
    });
}

fn take_panic(thread_name: &str) -> Option<SimPanic> {
    PANICS.lock().ok()?.remove(thread_name)
}

/// What a sweep keeps of one seed (histories are dropped to keep memory flat).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SeedSummary {
    pub seed: u64,
    /// Every checked invariant's verdict, witnesses and notes dropped, in registry order.
    pub verdicts: Vec<InvariantResult>,
    pub violated: Vec<&'static str>,
    pub panic: Option<SimPanic>,
    pub hash: u64,
    /// With the determinism check: the second run's hash, when it differs.
    pub nondeterministic: Option<u64>,
    /// Per violated invariant, its witness's shape ([`witness_shape`]).
    pub shapes: Vec<(&'static str, String)>,
}

/// A witness's shape: the types of the events it shows, in order, repeats folded
/// (`delivered > ack-result > revived > delivered`). Failures of one shape are usually one
/// cause; a sweep groups them by it.
pub fn witness_shape(history: &History, witness: &reports::Witness) -> String {
    let mut kinds: Vec<&str> = Vec::new();
    for &i in &witness.events {
        let Some(e) = history.events.get(i) else {
            continue;
        };
        let t = reports::describe::event_type(&e.kind);
        if kinds.last() != Some(&t) {
            kinds.push(t);
        }
    }
    if kinds.is_empty() {
        "(no events)".to_owned()
    } else {
        kinds.join(" > ")
    }
}

impl SeedSummary {
    pub fn failed(&self) -> bool {
        self.panic.is_some() || !self.violated.is_empty() || self.nondeterministic.is_some()
    }
}

/// Runs one seed (twice with `check_determinism`) and keeps its summary.
pub fn run_summary(
    scenario: &Scenario,
    seed: u64,
    opts: &RunOptions,
    check_determinism: bool,
) -> SeedSummary {
    let first = run_seed(scenario, seed, opts);
    let nondeterministic = if check_determinism && first.panic.is_none() {
        let second = run_seed(scenario, seed, opts);
        (second.hash != first.hash).then_some(second.hash)
    } else {
        None
    };
    SeedSummary {
        seed,
        verdicts: first
            .results
            .iter()
            .map(|r| InvariantResult {
                witness: None,
                notes: Vec::new(),
                ..r.clone()
            })
            .collect(),
        violated: first.violated(),
        shapes: first
            .results
            .iter()
            .filter(|r| r.is_violated())
            .map(|r| {
                let shape = r.witness.as_ref().map_or_else(
                    || "(no witness)".to_owned(),
                    |w| witness_shape(&first.history, w),
                );
                (r.name, shape)
            })
            .collect(),
        panic: first.panic,
        hash: first.hash,
        nondeterministic,
    }
}

/// Maps `f` over `items` on `jobs` worker threads and hands each result to `sink` on the
/// calling thread, in the items' order (a result that finishes early waits in a small
/// reorder buffer).
pub fn par_for_each_ordered<T: Sync, R: Send>(
    items: &[T],
    jobs: usize,
    f: impl Fn(&T) -> R + Sync,
    mut sink: impl FnMut(usize, R),
) {
    let jobs = jobs.clamp(1, items.len().max(1));
    let next = AtomicUsize::new(0);
    let (tx, rx) = mpsc::channel::<(usize, R)>();
    std::thread::scope(|s| {
        for _ in 0..jobs {
            let (tx, next, f) = (tx.clone(), &next, &f);
            s.spawn(move || loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                let Some(item) = items.get(i) else { break };
                if tx.send((i, f(item))).is_err() {
                    break;
                }
            });
        }
        drop(tx);
        let mut waiting = BTreeMap::new();
        let mut emit = 0;
        for (i, r) in rx {
            waiting.insert(i, r);
            while let Some(r) = waiting.remove(&emit) {
                sink(emit, r);
                emit += 1;
            }
        }
    });
}

/// Maps `f` over `items` on `jobs` worker threads, keeping the items' order.
pub fn par_map<T: Sync, R: Send>(items: &[T], jobs: usize, f: impl Fn(&T) -> R + Sync) -> Vec<R> {
    let mut out = Vec::with_capacity(items.len());
    par_for_each_ordered(items, jobs, f, |_, r| out.push(r));
    out
}

/// Runs `seeds` on `jobs` worker threads (each seed still in its own fresh thread) and
/// hands each seed's summary to `on_seed` on the calling thread, in seed order, so the
/// caller keeps only what it aggregates.
pub fn sweep_each(
    scenario: &Scenario,
    seeds: &[u64],
    opts: &RunOptions,
    jobs: usize,
    check_determinism: bool,
    on_seed: impl FnMut(usize, SeedSummary),
) {
    par_for_each_ordered(
        seeds,
        jobs,
        |&seed| run_summary(scenario, seed, opts, check_determinism),
        on_seed,
    );
}

/// [`sweep_each`], collected.
pub fn sweep(
    scenario: &Scenario,
    seeds: &[u64],
    opts: &RunOptions,
    jobs: usize,
    check_determinism: bool,
) -> Vec<SeedSummary> {
    let mut out = Vec::with_capacity(seeds.len());
    sweep_each(scenario, seeds, opts, jobs, check_determinism, |_, s| {
        out.push(s)
    });
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn par_map_keeps_the_items_order_whatever_finishes_first() {
        let items: Vec<u64> = (0..40).collect();
        for jobs in [1, 2, 5] {
            let out = par_map(&items, jobs, |&i| {
                // Later items finish first.
                std::thread::sleep(std::time::Duration::from_micros(200 * (40 - i)));
                i * 2
            });
            assert_eq!(
                out,
                items.iter().map(|i| i * 2).collect::<Vec<_>>(),
                "jobs {jobs}"
            );
        }
    }

    #[test]
    fn a_release_profile_adds_its_behaviours_and_may_drop_the_kv_path() {
        let mut sc = scenarios::builtin("orderly-reset-replay").expect("built-in");
        sc.broker.pop_consumer_kv_service_enable = true;
        let old = RunOptions {
            release: Some(Release::V5_3_1),
            ..RunOptions::default()
        };
        assert!(!old.broker_config(&sc).pop_consumer_kv_service_enable);
        assert_eq!(old.effective_behaviours(), Release::V5_3_1.behaviours());
        let kv = RunOptions {
            release: Some(Release::V5_3_2),
            behaviours: [broker_core::Behaviour::PopTimeoutSkipsMaxReconsume]
                .into_iter()
                .collect(),
            ..RunOptions::default()
        };
        assert!(kv.broker_config(&sc).pop_consumer_kv_service_enable);
        let on = kv.effective_behaviours();
        assert!(on.is_on(broker_core::Behaviour::ResetCommitsPullOffset));
        assert!(on.is_on(broker_core::Behaviour::PopTimeoutSkipsMaxReconsume));
    }
}
