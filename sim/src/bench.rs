//! `popsim bench`: what a seed costs, measured in one process and one run.
//!
//! Every timing is taken outside the madsim runtime (inside it `std::time` is virtual):
//! CPU time of the simulating thread (`CLOCK_THREAD_CPUTIME_ID`, read in the seed's own
//! thread before the runtime is built and after it is dropped), CPU time of the calling
//! thread for the checker, and wall time around the whole seed. CPU time is the planning
//! number: on a shared machine a busy neighbour inflates wall time but hardly CPU time.
//!
//! Each scenario is compared with a baseline measured in the same run: a bare two-node
//! madsim seed (fresh thread, runtime, two nodes, one endpoint each) exchanging as many
//! datagrams as the scenario's seeds did on average, so the ratio says what the broker
//! model, the clients, the recorder and the checker add on top of madsim itself.

use crate::cli::Format;
use crate::runner::{self, RunOptions};
use crate::world;
use broker_core::{Behaviour, Behaviours};
use clap::Args;
use scenarios::Scenario;
use serde::Serialize;
use std::process::ExitCode;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// Options of `popsim bench`.
#[derive(Clone, Debug, Args)]
pub struct BenchArgs {
    /// A quick run: fewer seeds, scaling up to 10^5 messages, no 10^6 run.
    #[arg(long)]
    pub quick: bool,
    #[arg(long, value_enum, default_value_t = Format::Text)]
    pub format: Format,
    /// Seeds per scenario (and per baseline); default 100, 20 with --quick.
    #[arg(long)]
    pub seeds: Option<u64>,
    /// Largest message count of the scaling runs, 1000 ..= 10^7 (the points are the powers
    /// of ten up to it); default 10^6, 10^5 with --quick. A point that would not fit in the
    /// memory available (estimated from the point before) is skipped, and said so.
    #[arg(long, value_name = "N", allow_negative_numbers = true, value_parser = parse_max_messages)]
    pub max_messages: Option<u64>,
    /// Skip timing `popsim verify` (run as a child process of this binary).
    #[arg(long)]
    pub no_verify: bool,
    /// Most seeds a "time to find" row sweeps before giving up (0: no such rows); default
    /// 2000, 0 with --quick.
    #[arg(long, value_name = "N")]
    pub find_cap: Option<u64>,
}

/// What one bench run does; [`BenchPlan::from_args`] maps the command line onto it.
#[derive(Clone, Debug)]
pub struct BenchPlan {
    pub seeds: u64,
    /// Message counts of the scaling runs, one seed each.
    pub scale: Vec<u64>,
    /// Seeds of the `--jobs 1` / `--jobs 2` comparison.
    pub jobs_seeds: u64,
    /// Time `popsim verify` as a child process of the current executable.
    pub verify: bool,
    /// Scenarios to measure (built-in names); empty = every built-in.
    pub scenarios: Vec<String>,
    pub quick: bool,
    /// Most seeds of a "time to find" row; 0 = no such rows.
    pub find_cap: u64,
}

impl BenchPlan {
    pub fn from_args(a: &BenchArgs) -> Self {
        let max = a
            .max_messages
            .unwrap_or(if a.quick { 100_000 } else { 1_000_000 });
        let scale = SCALE_POINTS
            .into_iter()
            .filter(|&n| n <= max.max(1_000))
            .collect();
        Self {
            seeds: a.seeds.unwrap_or(if a.quick { 20 } else { 100 }).max(1),
            scale,
            jobs_seeds: if a.quick { 8 } else { 24 },
            verify: !a.no_verify,
            scenarios: Vec::new(),
            quick: a.quick,
            find_cap: a.find_cap.unwrap_or(if a.quick { 0 } else { 2000 }),
        }
    }
}

/// The scaling points: one seed each, as far as `--max-messages`.
const SCALE_POINTS: [u64; 5] = [1_000, 10_000, 100_000, 1_000_000, 10_000_000];

/// `--max-messages`: a number of messages the scaling points go up to.
fn parse_max_messages(s: &str) -> Result<u64, String> {
    let (lo, hi) = (SCALE_POINTS[0], SCALE_POINTS[SCALE_POINTS.len() - 1]);
    match s.parse::<u64>() {
        Ok(n) if (lo..=hi).contains(&n) => Ok(n),
        _ => Err(format!(
            "--max-messages is a number of messages from {lo} to {hi} (the scaling points are the powers of ten up to it)"
        )),
    }
}

/// A scaling point not run because it would not fit in memory.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct SkippedScale {
    pub messages: u64,
    /// The point before's peak RSS, scaled linearly by the message count (peak RSS grows
    /// linearly: the history is kept whole until it is checked).
    pub estimated_peak_mib: f64,
    /// `MemAvailable` when the point was due.
    pub available_mib: f64,
}

/// Whether scaling point `messages` fits in `available_mib`, judged from the point before
/// (`prev`: its messages and peak RSS). Leaves a tenth of the memory free.
fn fits_in_memory(
    prev: Option<&ScalePoint>,
    messages: u64,
    available_mib: f64,
) -> Result<(), SkippedScale> {
    let Some(prev) = prev.filter(|p| p.messages > 0 && p.peak_rss_mib > 0.0) else {
        return Ok(());
    };
    let estimated = prev.peak_rss_mib * messages as f64 / prev.messages as f64;
    if available_mib > 0.0 && estimated > available_mib * 0.9 {
        return Err(SkippedScale {
            messages,
            estimated_peak_mib: estimated,
            available_mib,
        });
    }
    Ok(())
}

/// `MemAvailable` of `/proc/meminfo`, in MiB (0 where unknown).
fn available_mib() -> f64 {
    let kib = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("MemAvailable:"))
                .and_then(|v| v.split_whitespace().next()?.parse::<u64>().ok())
        })
        .unwrap_or(0);
    mib(kib)
}

/// Cost of one seed.
#[derive(Clone, Copy, Debug, Default)]
struct SeedCost {
    sim_cpu: Duration,
    check_cpu: Duration,
    wall: Duration,
    events: u64,
    messages: u64,
    sim_ms: u64,
    /// Seeds with a violated invariant.
    failed: u64,
}

impl SeedCost {
    fn cpu(&self) -> Duration {
        self.sim_cpu + self.check_cpu
    }
    fn add(&mut self, o: &SeedCost) {
        self.sim_cpu += o.sim_cpu;
        self.check_cpu += o.check_cpu;
        self.wall += o.wall;
        self.events += o.events;
        self.messages += o.messages;
        self.sim_ms += o.sim_ms;
        self.failed += o.failed;
    }
}

fn clock(id: libc::clockid_t) -> Duration {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid out-pointer; called outside the simulation only (madsim's
    // clock_gettime override aborts on CPU clocks inside a runtime).
    let rc = unsafe { libc::clock_gettime(id, &mut ts) };
    if rc != 0 {
        return Duration::ZERO;
    }
    Duration::new(ts.tv_sec as u64, ts.tv_nsec as u32)
}

fn thread_cpu() -> Duration {
    clock(libc::CLOCK_THREAD_CPUTIME_ID)
}

/// A line of /proc/self/status in KiB (`VmHWM`, `VmRSS`); 0 where unavailable.
fn proc_status_kib(key: &str) -> u64 {
    let Ok(s) = std::fs::read_to_string("/proc/self/status") else {
        return 0;
    };
    s.lines()
        .find_map(|l| l.strip_prefix(key)?.strip_prefix(':'))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .unwrap_or(0)
}

/// The highest peak-RSS mark seen before a reset, in KiB: the process's peak is this or the
/// mark since the last reset, whichever is higher.
static PEAK_BEFORE_RESETS: AtomicU64 = AtomicU64::new(0);

/// Resets the peak-RSS mark, so each scaling run and step reports its own peak (Linux ≥
/// 4.0), keeping the mark it had for the process's peak ([`process_peak_kib`]).
fn reset_peak() -> bool {
    PEAK_BEFORE_RESETS.fetch_max(proc_status_kib("VmHWM"), Ordering::Relaxed);
    std::fs::write("/proc/self/clear_refs", "5").is_ok()
}

/// The process's peak RSS in KiB, across every reset of the mark.
fn process_peak_kib() -> u64 {
    proc_status_kib("VmHWM").max(PEAK_BEFORE_RESETS.load(Ordering::Relaxed))
}

fn mib(kib: u64) -> f64 {
    kib as f64 / 1024.0
}

/// One step of a seed as a scaling point measures it: the simulation, building the history,
/// each fact the invariants share, each invariant, the tally, dropping the history.
#[derive(Clone, Debug, Serialize)]
pub struct Phase {
    pub name: &'static str,
    pub cpu_s: f64,
    /// Peak RSS during the step (the mark is reset as it starts): what the process held
    /// before it, plus what the step added.
    pub peak_rss_mib: f64,
}

/// Measures steps into `phases` when there are some to fill (the peak mark is reset before
/// each step); otherwise only runs them.
struct Phases<'a>(Option<&'a mut Vec<Phase>>);

impl Phases<'_> {
    fn start(&mut self) -> Duration {
        if self.0.is_some() {
            reset_peak();
        }
        thread_cpu()
    }

    fn end(&mut self, name: &'static str, cpu0: Duration) {
        self.push(name, thread_cpu() - cpu0);
    }

    /// A step that took `cpu` (on this thread or another), with the peak mark as it is now.
    fn push(&mut self, name: &'static str, cpu: Duration) {
        if let Some(phases) = self.0.as_deref_mut() {
            phases.push(Phase {
                name,
                cpu_s: cpu.as_secs_f64(),
                peak_rss_mib: mib(proc_status_kib("VmHWM")),
            });
        }
    }

    fn step(&mut self, name: &'static str, run: &mut dyn FnMut()) {
        let cpu0 = self.start();
        run();
        self.end(name, cpu0);
    }
}

/// Runs one seed the way [`runner::run_seed`] does, through the same preparation (swarm
/// draw, baseline behaviours, BUGGIFY, world and network): a fresh thread and runtime, the
/// world, then the checker on the calling thread, timing each part, and each step into
/// `phases` if given.
fn scenario_seed(
    sc: &Scenario,
    seed: u64,
    opts: &RunOptions,
    phases: Option<&mut Vec<Phase>>,
) -> SeedCost {
    let mut phases = Phases(phases);
    let wall0 = Instant::now();
    let prepared = runner::prepare(sc, seed, opts);
    let p = prepared.clone();
    phases.start();
    let (out, sim_cpu) = std::thread::Builder::new()
        .name(format!("popsim-bench-{seed}"))
        .spawn(move || {
            let cpu0 = thread_cpu();
            let out = p.simulate_here();
            (out, thread_cpu() - cpu0)
        })
        .expect("spawn a bench thread")
        .join()
        .unwrap_or_else(|_| panic!("scenario `{}` seed {seed} panicked", sc.name));
    let messages = out.net_messages;
    phases.push("simulation", sim_cpu);
    let check0 = thread_cpu();
    let cpu0 = phases.start();
    let (history, hash) = prepared.history(out.output);
    phases.end("history", cpu0);
    let checked = prepared.check_with(&history, &mut |name, run| phases.step(name, run));
    let failed = checked
        .results
        .iter()
        .any(reports::InvariantResult::is_violated);
    std::hint::black_box((checked, hash));
    let events = history.events.len() as u64;
    let cpu0 = phases.start();
    drop(history);
    phases.end("dropping the history", cpu0);
    let check_cpu = thread_cpu() - check0;
    SeedCost {
        sim_cpu,
        check_cpu,
        wall: wall0.elapsed(),
        events,
        messages,
        sim_ms: prepared.scenario.duration_ms,
        failed: u64::from(failed),
    }
}

/// The baseline seed: a fresh thread and runtime, two nodes, and `messages` datagrams as
/// request/reply pairs between them, with the scenario's latency.
fn baseline_seed(seed: u64, messages: u64, net: madsim::Config) -> SeedCost {
    use std::net::{IpAddr, Ipv4Addr, SocketAddr};
    let wall0 = Instant::now();
    let (sim_ms, delivered, sim_cpu) = std::thread::Builder::new()
        .name(format!("popsim-baseline-{seed}"))
        .spawn(move || {
            let cpu0 = thread_cpu();
            let rt = madsim::runtime::Runtime::with_seed_and_config(seed, net);
            let handle = rt.handle().clone();
            let (sim_ms, delivered) = rt.block_on(async move {
                let server_addr = SocketAddr::new(IpAddr::V4(Ipv4Addr::new(10, 0, 0, 1)), 1);
                let client_ip = IpAddr::V4(Ipv4Addr::new(10, 0, 0, 2));
                let server = handle
                    .create_node()
                    .name("server")
                    .ip(server_addr.ip())
                    .build();
                let client = handle.create_node().name("client").ip(client_ip).build();
                let start = madsim::time::Instant::now();
                let (ready_tx, ready_rx) = tokio::sync::oneshot::channel();
                server.spawn(async move {
                    let ep = madsim::net::Endpoint::bind(server_addr).await.unwrap();
                    let _ = ready_tx.send(());
                    let mut buf = [0u8; 64];
                    loop {
                        let Ok((n, from)) = ep.recv_from(1, &mut buf).await else {
                            return;
                        };
                        let _ = ep.send_to(from, 2, &buf[..n]).await;
                    }
                });
                let pairs = messages.div_ceil(2);
                let done = client.spawn(async move {
                    let _ = ready_rx.await;
                    let ep = madsim::net::Endpoint::bind(SocketAddr::new(client_ip, 1))
                        .await
                        .unwrap();
                    let mut buf = [0u8; 64];
                    for i in 0..pairs {
                        ep.send_to(server_addr, 1, &i.to_le_bytes()).await.unwrap();
                        ep.recv_from(2, &mut buf).await.unwrap();
                    }
                });
                done.await.expect("baseline client");
                let delivered = madsim::net::NetSim::current().stat().msg_count;
                (start.elapsed().as_millis() as u64, delivered)
            });
            drop(rt);
            (sim_ms, delivered, thread_cpu() - cpu0)
        })
        .expect("spawn a baseline thread")
        .join()
        .expect("baseline seed");
    SeedCost {
        sim_cpu,
        check_cpu: Duration::ZERO,
        wall: wall0.elapsed(),
        events: 0,
        messages: delivered,
        sim_ms,
        failed: 0,
    }
}

/// Rates of a batch of seeds.
#[derive(Clone, Debug, Serialize)]
pub struct Rates {
    pub seeds: u64,
    pub cpu_s: f64,
    pub wall_s: f64,
    pub seeds_per_cpu_s: f64,
    pub seeds_per_wall_s: f64,
    /// Simulated time ÷ wall time.
    pub sim_per_wall: f64,
    /// Simulated time ÷ CPU time.
    pub sim_per_cpu: f64,
    pub messages_per_seed: f64,
    pub events_per_seed: f64,
    pub events_per_cpu_s: f64,
    pub events_per_wall_s: f64,
    /// Share of the CPU time spent in the checker (history → verdicts).
    pub checker_cpu_share: f64,
}

fn rates(n: u64, total: &SeedCost) -> Rates {
    let cpu = total.cpu().as_secs_f64().max(1e-9);
    let wall = total.wall.as_secs_f64().max(1e-9);
    let sim = total.sim_ms as f64 / 1000.0;
    Rates {
        seeds: n,
        cpu_s: cpu,
        wall_s: wall,
        seeds_per_cpu_s: n as f64 / cpu,
        seeds_per_wall_s: n as f64 / wall,
        sim_per_wall: sim / wall,
        sim_per_cpu: sim / cpu,
        messages_per_seed: total.messages as f64 / n as f64,
        events_per_seed: total.events as f64 / n as f64,
        events_per_cpu_s: total.events as f64 / cpu,
        events_per_wall_s: total.events as f64 / wall,
        checker_cpu_share: total.check_cpu.as_secs_f64() / cpu,
    }
}

/// One scenario against its baseline.
#[derive(Clone, Debug, Serialize)]
pub struct ScenarioBench {
    pub scenario: String,
    /// A documented bug (its first bug row switched on), or the no-bug workload.
    pub bug: bool,
    pub behaviours: Vec<String>,
    /// The seeds this row ran, `A..B` (B excluded).
    pub seeds: String,
    /// The sweep this row times: the same seeds, prepared by the same runner.
    pub command: String,
    /// Recorded events per seed (the same count `popsim run` reports per seed).
    pub events_per_seed: f64,
    /// Seeds with a violated invariant.
    pub failed_seeds: u64,
    pub simulated_s_per_seed: f64,
    pub rates: Rates,
    pub baseline: Rates,
    /// Scenario seeds/s ÷ baseline seeds/s (CPU time); target ≥ 0.5.
    pub vs_baseline_cpu: f64,
    /// The same on wall time.
    pub vs_baseline_wall: f64,
}

/// One seed of the synthetic scaling scenario.
#[derive(Clone, Debug, Serialize)]
pub struct ScalePoint {
    pub messages: u64,
    pub simulated_s: f64,
    pub events: u64,
    pub net_messages: u64,
    pub cpu_s: f64,
    pub checker_cpu_s: f64,
    pub wall_s: f64,
    /// CPU µs per produced message (simulation and checker).
    pub cpu_us_per_message: f64,
    pub checker_ns_per_event: f64,
    pub sim_per_wall: f64,
    /// Peak RSS while this point ran (the mark is reset before it, where Linux allows).
    pub peak_rss_mib: f64,
    /// How often the seed ran: a point that takes less than [`SCALE_MIN_CPU`] runs again,
    /// up to [`SCALE_MAX_RUNS`] times, and the figures are the median run's (one run of
    /// 10^3 messages is 40 ms, as much noise as signal).
    pub runs: u32,
    /// The median run's steps, in order (empty where the peak mark cannot be reset).
    pub phases: Vec<Phase>,
}

/// A scaling point runs again until its runs took this much CPU in all...
pub const SCALE_MIN_CPU: Duration = Duration::from_secs(2);
/// ...or it ran this often.
pub const SCALE_MAX_RUNS: u32 = 25;

/// `--jobs 1` against `--jobs 2` on the same seeds through the sweep runner.
#[derive(Clone, Debug, Serialize)]
pub struct JobsBench {
    pub scenario: String,
    pub seeds: u64,
    pub jobs1_wall_s: f64,
    pub jobs2_wall_s: f64,
    pub speedup: f64,
    pub cpus: usize,
}

/// How long a cold sweep takes to reach its first failing seed: `popsim sweep NAME --seeds
/// 0..CAP` with the random variant's `--bug` flags (a finding: on develop), stopped at the
/// first failure.
#[derive(Clone, Debug, Serialize)]
pub struct TimeToFind {
    pub scenario: String,
    pub command: String,
    /// `None` when no seed below the cap failed.
    pub first_failing_seed: Option<u64>,
    /// Seeds run (in batches of a few per worker, so a little past the first failure).
    pub seeds_run: u64,
    pub cap: u64,
    pub wall_s: f64,
}

/// `popsim verify`, run as a child process.
#[derive(Clone, Debug, Serialize)]
pub struct VerifyBench {
    pub wall_s: f64,
    /// User + system CPU of the child (all its worker threads).
    pub cpu_s: f64,
    pub exit_code: Option<i32>,
}

/// A target from the issue and whether this run met it.
#[derive(Clone, Debug, Serialize)]
pub struct Target {
    pub name: String,
    pub target: String,
    pub value: f64,
    pub met: bool,
}

/// Everything `popsim bench` prints.
#[derive(Clone, Debug, Serialize)]
pub struct BenchReport {
    pub quick: bool,
    pub cpus: usize,
    pub scenarios: Vec<ScenarioBench>,
    pub scaling: Vec<ScalePoint>,
    /// Scaling points asked for but not run: they would not fit in memory.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub scaling_skipped: Vec<SkippedScale>,
    /// Largest ÷ smallest CPU cost per message over the scaling points.
    pub scaling_spread: f64,
    pub jobs: JobsBench,
    pub verify: Option<VerifyBench>,
    /// One row per random variant and per finding (empty with --quick).
    pub time_to_find: Vec<TimeToFind>,
    pub peak_rss_mib: f64,
    pub targets: Vec<Target>,
}

/// The synthetic scaling scenario: one producer (one message per simulated ms, 1 ms
/// latency), one concurrent consumer group, no faults; the run lasts as long as the
/// sends take (about 4 ms each, a round trip plus the 1 ms receive charges) plus a 30 s tail.
///
/// A scenario file may not ask for more than [`scenarios::limits::MAX_TOTAL_MESSAGES`]
/// messages (the limit guards typed input against exhausting memory); the 10^7 point is
/// built here, so it loads the scenario at the limit and then sets its count and duration.
pub fn scale_scenario(messages: u64) -> Scenario {
    let loadable = messages.min(scenarios::limits::MAX_TOTAL_MESSAGES);
    let duration = |n: u64| n * 4 + 30_000;
    let src = format!(
        r#"
name = "bench-scale-{loadable}"
duration_ms = {}
quiet_period_ms = 30000
[[topics]]
name = "t"
queues = 4
[[groups]]
name = "g"
[[producers]]
name = "p"
topic = "t"
messages = {loadable}
interval_ms = 1
[[consumers]]
name = "c"
kind = "concurrent"
group = "g"
topic = "t"
consume_time_ms = {{ min = 1, max = 1 }}
init_mode = "min"
[faults]
latency_ms = {{ min = 1, max = 1 }}
"#,
        duration(loadable)
    );
    let ctx = scenarios::Context::with_invariants(reports::invariant_names());
    let mut sc =
        scenarios::load_str("bench-scale.toml", &src, &ctx).expect("the scaling scenario is valid");
    sc.name = format!("bench-scale-{messages}");
    sc.duration_ms = duration(messages);
    sc.producers[0].messages = messages;
    sc
}

fn bug_options(sc: &Scenario) -> (bool, RunOptions) {
    let Some(row) = sc.bug_rows().into_iter().next() else {
        return (false, RunOptions::default());
    };
    let behaviours: Behaviours = row
        .bugs
        .iter()
        .filter_map(|b| b.parse::<Behaviour>().ok())
        .collect();
    (
        true,
        RunOptions {
            behaviours,
            ..RunOptions::default()
        },
    )
}

/// The `--bug` words of [`bug_options`].
fn bug_words(opts: &RunOptions) -> String {
    opts.behaviours
        .iter()
        .map(|b| format!(" --bug {}", b.name()))
        .collect()
}

fn bench_scenario(name: &str, sc: &Scenario, seeds: u64) -> ScenarioBench {
    let (bug, opts) = bug_options(sc);
    let mut total = SeedCost::default();
    for seed in 0..seeds {
        total.add(&scenario_seed(sc, seed, &opts, None));
    }
    let msgs = (total.messages / seeds).max(2);
    let net = world::net_config(sc);
    let mut base = SeedCost::default();
    for seed in 0..seeds {
        base.add(&baseline_seed(seed, msgs, net.clone()));
    }
    let rates = rates(seeds, &total);
    let baseline = rates_baseline(seeds, &base);
    ScenarioBench {
        scenario: name.to_owned(),
        bug,
        behaviours: crate::explore::with_baseline(&opts, sc)
            .effective_behaviours()
            .iter()
            .map(|b| b.name().to_owned())
            .collect(),
        seeds: format!("0..{seeds}"),
        command: format!("popsim sweep {name} --seeds 0..{seeds}{}", bug_words(&opts)),
        events_per_seed: rates.events_per_seed,
        failed_seeds: total.failed,
        simulated_s_per_seed: total.sim_ms as f64 / 1000.0 / seeds as f64,
        vs_baseline_cpu: rates.seeds_per_cpu_s / baseline.seeds_per_cpu_s,
        vs_baseline_wall: rates.seeds_per_wall_s / baseline.seeds_per_wall_s,
        rates,
        baseline,
    }
}

fn rates_baseline(n: u64, total: &SeedCost) -> Rates {
    rates(n, total)
}

fn bench_scale(messages: u64) -> ScalePoint {
    let sc = scale_scenario(messages);
    let reset = reset_peak();
    let mut costs = Vec::new();
    let mut spent = Duration::ZERO;
    while spent < SCALE_MIN_CPU && costs.len() < SCALE_MAX_RUNS as usize {
        let mut phases = Vec::new();
        let c = scenario_seed(&sc, 1, &RunOptions::default(), reset.then_some(&mut phases));
        spent += c.cpu();
        costs.push((c, phases));
    }
    costs.sort_by_key(|(c, _)| c.cpu());
    let runs = costs.len() as u32;
    // Each step reset the mark: the point's peak is its largest step's, over every run.
    let peak = (costs.iter().flat_map(|(_, ps)| ps))
        .map(|p| p.peak_rss_mib)
        .fold(0.0, f64::max);
    let (c, phases) = costs.swap_remove(costs.len() / 2);
    let cpu = c.cpu().as_secs_f64();
    ScalePoint {
        messages,
        simulated_s: c.sim_ms as f64 / 1000.0,
        events: c.events,
        net_messages: c.messages,
        cpu_s: cpu,
        checker_cpu_s: c.check_cpu.as_secs_f64(),
        wall_s: c.wall.as_secs_f64(),
        cpu_us_per_message: cpu * 1e6 / messages as f64,
        checker_ns_per_event: c.check_cpu.as_secs_f64() * 1e9 / c.events.max(1) as f64,
        sim_per_wall: c.sim_ms as f64 / 1000.0 / c.wall.as_secs_f64().max(1e-9),
        peak_rss_mib: peak,
        runs,
        phases,
    }
}

fn bench_jobs(name: &str, sc: &Scenario, seeds: u64) -> JobsBench {
    let (_, opts) = bug_options(sc);
    let list: Vec<u64> = (0..seeds).collect();
    let time = |jobs| {
        let t = Instant::now();
        runner::sweep_each(sc, &list, &opts, jobs, false, |_, s| {
            std::hint::black_box(s);
        });
        t.elapsed().as_secs_f64()
    };
    // Warm both paths once so the first measurement pays no one-off costs.
    let _ = time(2);
    let j1 = time(1);
    let j2 = time(2);
    JobsBench {
        scenario: name.to_owned(),
        seeds,
        jobs1_wall_s: j1,
        jobs2_wall_s: j2,
        speedup: j1 / j2.max(1e-9),
        cpus: std::thread::available_parallelism().map_or(1, |n| n.get()),
    }
}

/// The built-ins a "time to find" row measures, with the switches their sweep runs with: a
/// random variant with its `replays` as `--bug` flags, a finding (`fixes` non-empty) on
/// develop.
fn find_targets(names: &[String]) -> Vec<(String, Scenario, RunOptions)> {
    let mut out = Vec::new();
    for name in names {
        let Some(sc) = scenarios::builtin(name) else {
            continue;
        };
        if crate::explore::is_random_variant(&sc) {
            let behaviours: Behaviours = sc
                .replays
                .iter()
                .filter_map(|b| b.parse::<Behaviour>().ok())
                .collect();
            let opts = RunOptions {
                behaviours,
                ..RunOptions::default()
            };
            out.push((name.clone(), sc, opts));
        } else if sc.is_finding() {
            out.push((name.clone(), sc, RunOptions::default()));
        }
    }
    out
}

/// Sweeps `sc` from seed 0 in batches until a seed fails or `cap` seeds ran.
pub fn time_to_find(name: &str, sc: &Scenario, opts: &RunOptions, cap: u64) -> TimeToFind {
    let jobs = std::thread::available_parallelism().map_or(1, |n| n.get());
    let batch = (jobs as u64 * 4).max(1);
    let t = Instant::now();
    let mut found = None;
    let mut start = 0;
    while start < cap && found.is_none() {
        let seeds: Vec<u64> = (start..(start + batch).min(cap)).collect();
        runner::sweep_each(sc, &seeds, opts, jobs, false, |_, s| {
            if s.failed() && found.is_none() {
                found = Some(s.seed);
            }
        });
        start += seeds.len() as u64;
    }
    TimeToFind {
        scenario: name.to_owned(),
        command: format!("popsim sweep {name} --seeds 0..{cap}{}", bug_words(opts)),
        first_failing_seed: found,
        seeds_run: start,
        cap,
        wall_s: t.elapsed().as_secs_f64(),
    }
}

/// CPU time of the waited-for child processes (only `popsim verify` is one).
fn children_cpu() -> Duration {
    // SAFETY: zeroed rusage is a valid out-parameter for getrusage.
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: `ru` is a valid out-pointer.
    if unsafe { libc::getrusage(libc::RUSAGE_CHILDREN, &mut ru) } != 0 {
        return Duration::ZERO;
    }
    let tv = |t: libc::timeval| Duration::new(t.tv_sec as u64, t.tv_usec as u32 * 1000);
    tv(ru.ru_utime) + tv(ru.ru_stime)
}

fn bench_verify() -> Option<VerifyBench> {
    let exe = std::env::current_exe().ok()?;
    let t = Instant::now();
    let status = std::process::Command::new(exe)
        .args(["verify", "--format", "json"])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status()
        .ok()?;
    Some(VerifyBench {
        wall_s: t.elapsed().as_secs_f64(),
        cpu_s: children_cpu().as_secs_f64(),
        exit_code: status.code(),
    })
}

fn target(name: &str, target: &str, value: f64, met: bool) -> Target {
    Target {
        name: name.to_owned(),
        target: target.to_owned(),
        value,
        met,
    }
}

/// Runs the whole bench; `progress` gets one line per finished part.
pub fn run(plan: &BenchPlan, mut progress: impl FnMut(&str)) -> BenchReport {
    let names: Vec<String> = if plan.scenarios.is_empty() {
        scenarios::builtins()
            .into_iter()
            .map(|(n, _)| n.to_owned())
            .collect()
    } else {
        plan.scenarios.clone()
    };
    let mut benches = Vec::new();
    for name in &names {
        let sc = scenarios::builtin(name).unwrap_or_else(|| panic!("no built-in `{name}`"));
        let b = bench_scenario(name, &sc, plan.seeds);
        progress(&format!(
            "{name}: {:.0} seeds/s CPU, baseline {:.0}, ratio {:.2}",
            b.rates.seeds_per_cpu_s, b.baseline.seeds_per_cpu_s, b.vs_baseline_cpu
        ));
        benches.push(b);
    }
    let mut scaling: Vec<ScalePoint> = Vec::new();
    let mut scaling_skipped = Vec::new();
    for &n in &plan.scale {
        if let Err(skip) = fits_in_memory(scaling.last(), n, available_mib()) {
            progress(&format!(
                "scale {n}: not run: it needs about {:.0} MiB, {:.0} MiB are available",
                skip.estimated_peak_mib, skip.available_mib
            ));
            scaling_skipped.push(skip);
            break;
        }
        let p = bench_scale(n);
        progress(&format!(
            "scale {n}: {:.2} s CPU, {:.2} µs/message, peak {:.0} MiB",
            p.cpu_s, p.cpu_us_per_message, p.peak_rss_mib
        ));
        scaling.push(p);
    }
    let costs: Vec<f64> = scaling.iter().map(|p| p.cpu_us_per_message).collect();
    let spread = match (
        costs.iter().copied().reduce(f64::max),
        costs.iter().copied().reduce(f64::min),
    ) {
        (Some(hi), Some(lo)) if lo > 0.0 => hi / lo,
        _ => 1.0,
    };
    let jobs_name = names
        .iter()
        .find(|n| n.as_str() == "mixed-workload")
        .unwrap_or(&names[0])
        .clone();
    let jobs_sc = scenarios::builtin(&jobs_name).expect("built-in");
    let jobs = bench_jobs(&jobs_name, &jobs_sc, plan.jobs_seeds);
    progress(&format!("jobs: speedup {:.2}", jobs.speedup));
    let verify = if plan.verify { bench_verify() } else { None };
    let mut time_to_find_rows = Vec::new();
    if plan.find_cap > 0 {
        for (name, sc, opts) in find_targets(&names) {
            let row = time_to_find(&name, &sc, &opts, plan.find_cap);
            progress(&format!(
                "{name}: first failing seed {} after {:.2} s",
                row.first_failing_seed
                    .map_or_else(|| format!("none below {}", row.cap), |s| s.to_string()),
                row.wall_s
            ));
            time_to_find_rows.push(row);
        }
    }

    let mut targets = Vec::new();
    for b in benches.iter().filter(|b| b.bug) {
        targets.push(target(
            &format!("{}: seeds/s vs bare madsim", b.scenario),
            ">= 0.5",
            b.vs_baseline_cpu,
            b.vs_baseline_cpu >= 0.5,
        ));
        targets.push(target(
            &format!("{}: simulated / wall", b.scenario),
            ">= 10000",
            b.rates.sim_per_wall,
            b.rates.sim_per_wall >= 10_000.0,
        ));
    }
    if let Some(v) = &verify {
        targets.push(target(
            "popsim verify wall seconds",
            "< 1",
            v.wall_s,
            v.wall_s < 1.0,
        ));
    }
    if scaling.len() > 1 {
        targets.push(target(
            "cost per message, largest / smallest",
            "<= 1.5",
            spread,
            spread <= 1.5,
        ));
    }
    if let Some(p) = scaling.iter().find(|p| p.messages == 1_000_000) {
        targets.push(target(
            "10^6 messages: CPU seconds",
            "< 30",
            p.cpu_s,
            p.cpu_s < 30.0,
        ));
        targets.push(target(
            "10^6 messages: wall seconds",
            "< 30",
            p.wall_s,
            p.wall_s < 30.0,
        ));
        targets.push(target(
            "10^6 messages: peak RSS MiB",
            "< 1024",
            p.peak_rss_mib,
            p.peak_rss_mib < 1024.0,
        ));
    }
    if let Some(p) = scaling.iter().find(|p| p.messages == 10_000_000) {
        targets.push(target(
            "10^7 messages: wall seconds",
            "< 300",
            p.wall_s,
            p.wall_s < 300.0,
        ));
        targets.push(target(
            "10^7 messages: peak RSS MiB",
            "< 2048",
            p.peak_rss_mib,
            p.peak_rss_mib < 2048.0,
        ));
    }
    for skip in &scaling_skipped {
        targets.push(target(
            &format!(
                "{} messages: not run, estimated peak RSS MiB",
                skip.messages
            ),
            &format!("<= {:.0} available", skip.available_mib * 0.9),
            skip.estimated_peak_mib,
            false,
        ));
    }
    targets.push(target(
        "--jobs 2 / --jobs 1",
        ">= 1.8",
        jobs.speedup,
        jobs.speedup >= 1.8,
    ));
    BenchReport {
        quick: plan.quick,
        cpus: jobs.cpus,
        scenarios: benches,
        scaling,
        scaling_skipped,
        scaling_spread: spread,
        jobs,
        verify,
        time_to_find: time_to_find_rows,
        peak_rss_mib: mib(process_peak_kib()),
        targets,
    }
}

/// Human-readable rendering.
pub fn render_text(r: &BenchReport) -> String {
    use std::fmt::Write as _;
    let mut s = String::new();
    let _ = writeln!(
        s,
        "popsim bench{} ({} CPUs; rates per CPU-second of the simulating and checking threads, wall in brackets)\n",
        if r.quick { " --quick" } else { "" },
        r.cpus
    );
    let _ = writeln!(
        s,
        "{:<30} {:>7} {:>9} {:>16} {:>16} {:>7} {:>12} {:>11} {:>8}",
        "scenario",
        "msgs",
        "events",
        "seeds/s",
        "baseline seeds/s",
        "ratio",
        "sim/wall",
        "events/s",
        "checker"
    );
    for b in &r.scenarios {
        let _ = writeln!(
            s,
            "{:<30} {:>7.0} {:>9.0} {:>8.0} ({:>5.0}) {:>8.0} ({:>5.0}) {:>7.2} {:>12.0} {:>11.0} {:>7.0}%",
            b.scenario,
            b.rates.messages_per_seed,
            b.rates.events_per_seed,
            b.rates.seeds_per_cpu_s,
            b.rates.seeds_per_wall_s,
            b.baseline.seeds_per_cpu_s,
            b.baseline.seeds_per_wall_s,
            b.vs_baseline_cpu,
            b.rates.sim_per_wall,
            b.rates.events_per_cpu_s,
            b.rates.checker_cpu_share * 100.0
        );
    }
    let _ = writeln!(
        s,
        "\n{:>9} {:>5} {:>10} {:>10} {:>9} {:>9} {:>10} {:>12} {:>10}",
        "messages",
        "runs",
        "events",
        "sim s",
        "CPU s",
        "wall s",
        "µs/msg",
        "checker ns/ev",
        "peak MiB"
    );
    for p in &r.scaling {
        let _ = writeln!(
            s,
            "{:>9} {:>5} {:>10} {:>10.0} {:>9.2} {:>9.2} {:>10.2} {:>12.0} {:>10.0}",
            p.messages,
            p.runs,
            p.events,
            p.simulated_s,
            p.cpu_s,
            p.wall_s,
            p.cpu_us_per_message,
            p.checker_ns_per_event,
            p.peak_rss_mib
        );
    }
    for k in &r.scaling_skipped {
        let _ = writeln!(
            s,
            "{:>9} not run: its peak RSS would be about {:.0} MiB (the point before, scaled), {:.0} MiB are available",
            k.messages, k.estimated_peak_mib, k.available_mib
        );
    }
    let _ = writeln!(
        s,
        "cost per message, largest / smallest: {:.2}\n",
        r.scaling_spread
    );
    if let Some(p) = r.scaling.last().filter(|p| !p.phases.is_empty()) {
        render_phases(&mut s, p);
    }
    let _ = writeln!(
        s,
        "{} seeds of {}: --jobs 1 {:.2} s, --jobs 2 {:.2} s, speedup {:.2}",
        r.jobs.seeds, r.jobs.scenario, r.jobs.jobs1_wall_s, r.jobs.jobs2_wall_s, r.jobs.speedup
    );
    if let Some(v) = &r.verify {
        let _ = writeln!(
            s,
            "popsim verify: {:.2} s wall, {:.2} s CPU",
            v.wall_s, v.cpu_s
        );
    }
    if !r.time_to_find.is_empty() {
        let _ = writeln!(
            s,
            "\ntime to find (cold sweep from seed 0 to its first failing seed):"
        );
        for t in &r.time_to_find {
            let _ = writeln!(
                s,
                "  {:<28} {:>8} {:>7} seeds {:>8.2} s   {}",
                t.scenario,
                t.first_failing_seed
                    .map_or_else(|| "none".to_owned(), |x| format!("seed {x}")),
                t.seeds_run,
                t.wall_s,
                t.command
            );
        }
        s.push('\n');
    }
    let _ = writeln!(s, "peak RSS of this process: {:.0} MiB\n", r.peak_rss_mib);
    for t in &r.targets {
        let _ = writeln!(
            s,
            "[{}] {} {}: {:.2}",
            if t.met { "met" } else { "MISSED" },
            t.name,
            t.target,
            t.value
        );
    }
    s
}

/// Where the largest scaling point's CPU time and memory go, step by step.
fn render_phases(s: &mut String, p: &ScalePoint) {
    use std::fmt::Write as _;
    let _ = writeln!(
        s,
        "{} messages, step by step (the median run; peak: the most RSS held during the step):",
        p.messages
    );
    let _ = writeln!(
        s,
        "  {:<32} {:>8} {:>6} {:>9}",
        "step", "CPU s", "CPU", "peak MiB"
    );
    for ph in &p.phases {
        let _ = writeln!(
            s,
            "  {:<32} {:>8.2} {:>5.0}% {:>9.0}",
            ph.name,
            ph.cpu_s,
            ph.cpu_s * 100.0 / p.cpu_s.max(1e-9),
            ph.peak_rss_mib
        );
    }
    s.push('\n');
}

/// `popsim bench`. Exit status 0 whether or not the targets are met: the figures are the
/// output, and the targets are judged by whoever reads them.
pub fn cmd_bench(a: &BenchArgs) -> ExitCode {
    let plan = BenchPlan::from_args(a);
    let names = if plan.scenarios.is_empty() {
        scenarios::builtins().len()
    } else {
        plan.scenarios.len()
    };
    let finds = if plan.find_cap > 0 {
        find_targets(
            &scenarios::builtins()
                .into_iter()
                .map(|(n, _)| n.to_owned())
                .collect::<Vec<_>>(),
        )
        .len()
    } else {
        0
    };
    let bar = crate::cli::progress((names + plan.scale.len() + 1 + finds) as u64, "bench");
    let report = run(&plan, |line| {
        bar.inc(1);
        if bar.is_hidden() {
            eprintln!("bench: {line}");
        } else {
            bar.println(format!("bench: {line}"));
        }
    });
    bar.finish_and_clear();
    let out = match a.format {
        Format::Json => serde_json::to_string_pretty(&report).expect("report serialises") + "\n",
        Format::Text => render_text(&report),
    };
    let mut stdout = std::io::stdout().lock();
    let _ = std::io::Write::write_all(&mut stdout, out.as_bytes());
    ExitCode::SUCCESS
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_tiny_bench_reports_every_figure() {
        let plan = BenchPlan {
            seeds: 1,
            scale: vec![200, 400],
            jobs_seeds: 2,
            verify: false,
            scenarios: vec!["late-ack-after-ck-flush".into()],
            quick: true,
            find_cap: 0,
        };
        let r = run(&plan, |_| {});
        let v = serde_json::to_value(&r).unwrap();
        let sc = &v["scenarios"][0];
        for key in [
            "seeds_per_cpu_s",
            "seeds_per_wall_s",
            "sim_per_wall",
            "events_per_cpu_s",
            "messages_per_seed",
        ] {
            assert!(sc["rates"][key].as_f64().unwrap() > 0.0, "rates.{key}");
            if key != "events_per_cpu_s" {
                assert!(
                    sc["baseline"][key].as_f64().unwrap() > 0.0,
                    "baseline.{key}"
                );
            }
        }
        assert!(sc["vs_baseline_cpu"].as_f64().unwrap() > 0.0);
        assert_eq!(v["scaling"].as_array().unwrap().len(), 2);
        assert!(v["scaling"][1]["cpu_us_per_message"].as_f64().unwrap() > 0.0);
        assert!(v["scaling"][1]["events"].as_u64().unwrap() > 400);
        // Each step of the point: the simulation, the history, every shared fact and
        // invariant, the tally if asked, and the drop; the point's peak is its largest step's.
        let p = &r.scaling[1];
        if reset_peak() {
            let names: Vec<&str> = p.phases.iter().map(|ph| ph.name).collect();
            assert_eq!(names[..2], ["simulation", "history"]);
            assert_eq!(names.last(), Some(&"dropping the history"));
            for inv in reports::invariant_names() {
                assert!(names.contains(&inv), "{inv} in {names:?}");
            }
            let steps_cpu: f64 = p.phases.iter().map(|ph| ph.cpu_s).sum();
            assert!(
                steps_cpu <= p.cpu_s * 1.01 + 1e-3,
                "{steps_cpu} > {}",
                p.cpu_s
            );
            assert!(p.phases.iter().all(|ph| ph.peak_rss_mib <= p.peak_rss_mib));
            // The process's peak survives the resets.
            assert!(
                r.peak_rss_mib >= p.peak_rss_mib,
                "{} < {}",
                r.peak_rss_mib,
                p.peak_rss_mib
            );
            assert!(render_text(&r).contains("400 messages, step by step"));
        }
        assert!(v["jobs"]["speedup"].as_f64().unwrap() > 0.0);
        assert!(v["peak_rss_mib"].as_f64().unwrap() > 0.0);
        assert!(v["targets"].as_array().unwrap().len() >= 3);
    }

    /// A bench row runs exactly what `popsim sweep NAME --seeds 0..K` runs: a random
    /// variant with BUGGIFY and a baseline, so the draw, the baseline and the hooks all count.
    #[test]
    fn a_bench_row_runs_the_seeds_the_runner_runs() {
        let name = "late-ack-random";
        let sc = scenarios::builtin(name).unwrap();
        let b = bench_scenario(name, &sc, 3);
        let (_, opts) = bug_options(&sc);
        let events: u64 = (0..3)
            .map(|seed| runner::run_seed(&sc, seed, &opts).history.events.len() as u64)
            .sum();
        assert_eq!(b.events_per_seed, events as f64 / 3.0);
        assert_eq!(b.seeds, "0..3");
        assert!(
            b.command
                .starts_with("popsim sweep late-ack-random --seeds 0..3 --bug "),
            "{}",
            b.command
        );
        assert!(b
            .behaviours
            .contains(&"revive-no-blank-broker-name-fallback".to_owned()));
    }

    #[test]
    fn time_to_find_stops_at_the_first_failing_seed() {
        let sc = scenarios::builtin("late-ack-after-ck-flush").unwrap();
        let (_, opts) = bug_options(&sc);
        let t = time_to_find("late-ack-after-ck-flush", &sc, &opts, 50);
        assert_eq!(t.first_failing_seed, Some(0));
        assert!(t.seeds_run < 50);
        let held = time_to_find("late-ack-after-ck-flush", &sc, &RunOptions::default(), 3);
        assert_eq!((held.first_failing_seed, held.seeds_run), (None, 3));
    }

    #[test]
    fn the_scaling_scenario_delivers_every_message() {
        let sc = scale_scenario(300);
        let out = runner::run_seed(&sc, 1, &RunOptions::default());
        assert!(out.violated().is_empty(), "{:?}", out.violated());
        let produced = out
            .history
            .events
            .iter()
            .filter(|e| matches!(e.kind, reports::history::EventKind::Produced { .. }))
            .count();
        assert_eq!(produced, 300);
    }

    /// The 10^7 point lies past the scenario file's message limit; building it must not
    /// panic, and it must be the same scenario as below the limit but for its size.
    #[test]
    fn the_largest_scaling_point_builds_past_the_file_limit() {
        let big = scale_scenario(10_000_000);
        assert_eq!(big.producers[0].messages, 10_000_000);
        assert_eq!(big.duration_ms, 40_030_000);
        let mut small = scale_scenario(1_000_000);
        small.name = big.name.clone();
        small.duration_ms = big.duration_ms;
        small.producers[0].messages = big.producers[0].messages;
        assert_eq!(small, big);
    }

    fn point(messages: u64, peak_rss_mib: f64) -> ScalePoint {
        ScalePoint {
            messages,
            simulated_s: 0.0,
            events: 0,
            net_messages: 0,
            cpu_s: 0.0,
            checker_cpu_s: 0.0,
            wall_s: 0.0,
            cpu_us_per_message: 0.0,
            checker_ns_per_event: 0.0,
            sim_per_wall: 0.0,
            peak_rss_mib,
            runs: 1,
            phases: Vec::new(),
        }
    }

    /// The 10^7 point is skipped, not run into the OOM killer, when the 10^6 point's peak
    /// scaled by ten does not fit in the memory available.
    #[test]
    fn a_scaling_point_that_would_not_fit_in_memory_is_skipped() {
        let prev = point(1_000_000, 3_000.0);
        assert_eq!(
            fits_in_memory(Some(&prev), 10_000_000, 24_000.0),
            Err(SkippedScale {
                messages: 10_000_000,
                estimated_peak_mib: 30_000.0,
                available_mib: 24_000.0,
            })
        );
        assert_eq!(fits_in_memory(Some(&prev), 10_000_000, 40_000.0), Ok(()));
        assert_eq!(fits_in_memory(None, 10_000_000, 1.0), Ok(()), "first point");
        assert_eq!(
            fits_in_memory(Some(&prev), 10_000_000, 0.0),
            Ok(()),
            "memory unknown: run"
        );
    }

    #[test]
    fn max_messages_goes_up_to_ten_million() {
        assert_eq!(parse_max_messages("10000000"), Ok(10_000_000));
        for bad in ["999", "10000001", "-1", "lots"] {
            let e = parse_max_messages(bad).unwrap_err();
            assert!(e.contains("from 1000 to 10000000"), "{bad}: {e}");
        }
        let plan = |n| {
            BenchPlan::from_args(&BenchArgs {
                quick: false,
                format: Format::Text,
                seeds: None,
                max_messages: n,
                no_verify: true,
                find_cap: None,
            })
            .scale
        };
        assert_eq!(plan(None).last(), Some(&1_000_000), "10^7 only when asked");
        assert_eq!(plan(Some(10_000_000)).last(), Some(&10_000_000));
    }
}
