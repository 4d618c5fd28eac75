//! The madsim world of one run: a broker node driving broker-core, a proxy node when gRPC
//! clients need one, producer, consumer, offset-client and admin-client nodes with their own
//! IPs, the scripted timeline, random faults, and the recorder.

pub mod broker_node;
pub mod control;
pub mod faults;
pub mod net;
pub mod recorder;
pub mod tasks;

use crate::clients::admin::{AdminClient, ResetCommand};
use crate::clients::decisions;
use crate::clients::grpc::GrpcCtx;
use crate::clients::grpc_push::{GrpcPushConsumer, PushSettings};
use crate::clients::grpc_simple::GrpcSimpleConsumer;
use crate::clients::offset::{OffsetClient, OffsetCommand};
use crate::clients::producer::Producer;
use crate::clients::push::PushConsumer;
use crate::clients::scripted::{ScriptedCommand, ScriptedConsumer};
use crate::clients::ClientCtx;
use crate::proxy::{self, Proxy};
use broker_core::{
    Behaviours, Broker, BrokerConfig, BrokerSnapshot, CreateSubscriptionGroupRequest,
    CreateTopicRequest, Millis, Request,
};
use broker_node::BrokerNode;
use control::{Controller, Origin};
use net::{GrpcClient, RpcClient};
use recorder::{Clock, Recorder};
use reports::history::{Event, EventKind};
use scenarios::model::{Action, ClientKind, ConsumerKindSpec, Scenario};
use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr};
use tokio::sync::{mpsc, watch};

/// The broker's IP.
pub const BROKER_IP: IpAddr = IpAddr::V4(Ipv4Addr::new(10, 0, 0, 1));

/// The IP of the `i`-th client node (0-based).
fn client_ip(i: usize) -> IpAddr {
    IpAddr::V4(Ipv4Addr::new(
        10,
        0,
        1 + (i / 250) as u8,
        2 + (i % 250) as u8,
    ))
}

/// What a run needs besides the scenario.
#[derive(Clone, Debug)]
pub struct WorldConfig {
    pub broker: BrokerConfig,
    pub behaviours: Behaviours,
    pub seed: u64,
}

/// What a run leaves behind.
pub struct WorldOutput {
    pub events: Vec<Event>,
    /// The events' digest, fed as they were recorded.
    pub digest: reports::history::HistoryDigest,
    pub final_state: BrokerSnapshot,
}

/// The madsim network configuration a scenario asks for (latency; loss is switched on by
/// the fault generator so it can stop at the quiet period).
pub fn net_config(scenario: &Scenario) -> madsim::Config {
    use std::time::Duration;
    let mut cfg = madsim::Config::default();
    let l = scenario.faults.latency_ms;
    let min = Duration::from_millis(l.min);
    // `send_latency` is half-open; a microsecond past max makes `[min, max]` inclusive and
    // keeps an equal min and max valid.
    let max = Duration::from_millis(l.max.max(l.min)) + Duration::from_micros(1);
    cfg.net.send_latency = min..max;
    cfg
}

/// A client's context before its node has bound its endpoint.
struct CtxSeed {
    name: String,
    rec: Recorder,
    behaviours: Behaviours,
}

impl CtxSeed {
    fn with<C>(self, rpc: C) -> ClientCtx<C> {
        ClientCtx {
            name: self.name,
            rpc,
            rec: self.rec,
            behaviours: self.behaviours,
        }
    }
}

/// Timeline targets: where each named actor takes its commands.
#[derive(Default)]
struct Targets {
    producers: BTreeMap<String, mpsc::UnboundedSender<u64>>,
    scripted: BTreeMap<String, mpsc::UnboundedSender<ScriptedCommand>>,
    running: BTreeMap<String, (watch::Sender<bool>, String)>,
    offset: BTreeMap<String, mpsc::UnboundedSender<OffsetCommand>>,
    admin: BTreeMap<String, mpsc::UnboundedSender<ResetCommand>>,
}

/// Runs `scenario` to its end inside the current madsim runtime.
pub async fn simulate(scenario: &Scenario, cfg: &WorldConfig) -> WorldOutput {
    let handle = madsim::runtime::Handle::current();
    let clock = Clock::start();
    let rec = Recorder::new(clock, scenario.total_messages());
    let duration = scenario.duration_ms;
    let quiet_from = duration.saturating_sub(scenario.quiet_period_ms);

    let mut model = Broker::new(cfg.broker.clone(), cfg.behaviours.clone(), cfg.seed);
    model.set_store_limits(scenario.faults.page_cache_ms, scenario.faults.retention_ms);
    let broker = BrokerNode::new(
        model,
        scenario.scheduler,
        broker_core::rng::stream(cfg.seed, "broker.scheduler"),
        rec.clone(),
        BROKER_IP,
    );
    for t in &scenario.topics {
        broker.handle_local(Request::CreateTopic(CreateTopicRequest {
            topic: t.name.clone(),
            read_queue_nums: t.queues,
        }));
    }
    for g in &scenario.groups {
        broker.handle_local(Request::CreateSubscriptionGroup(
            CreateSubscriptionGroupRequest {
                group: g.name.clone(),
            },
        ));
    }
    let broker_id = broker.build(&handle);
    let broker_addr = broker.addr();

    let mut nodes = BTreeMap::new();
    nodes.insert(broker_node::BROKER_NODE.to_owned(), broker_id);
    // The proxy, when a gRPC client needs one.
    if scenario.consumers.iter().any(|c| c.kind.is_grpc()) {
        let node = handle
            .create_node()
            .name(proxy::PROXY_NODE)
            .ip(proxy::PROXY_IP)
            .build();
        nodes.insert(proxy::PROXY_NODE.to_owned(), node.id());
        let (cfg, rec, fixes) = (scenario.proxy.clone(), rec.clone(), cfg.behaviours.clone());
        node.spawn(async move { Proxy::run(cfg, &fixes, rec, broker_addr).await });
    }
    let proxy_addr = proxy::proxy_addr();
    let grpc = |ctx: ClientCtx<GrpcClient>, spec: &scenarios::model::ConsumerSpec| GrpcCtx {
        ctx,
        group: spec.group.clone(),
        topic: spec.topic.clone(),
        fifo: spec.fifo,
        max_attempts: decisions::max_attempts(spec.max_reconsume_times),
    };
    let push_settings = PushSettings {
        receive_batch_size: scenario.proxy.grpc_client_consumer_long_polling_batch_size,
        long_polling_timeout: scenario
            .proxy
            .grpc_client_consumer_max_long_polling_timeout_millis,
        invisible_time: scenario.proxy.default_invisible_time_mills,
    };
    let mut targets = Targets::default();
    let mut next_ip = 0usize;
    let mut new_node = |name: &str| {
        let ip = client_ip(next_ip);
        next_ip += 1;
        let node = handle.create_node().name(name).ip(ip).build();
        nodes.insert(name.to_owned(), node.id());
        (node, ip)
    };
    let ctx_for = |name: &str| CtxSeed {
        name: name.to_owned(),
        rec: rec.clone(),
        behaviours: cfg.behaviours.clone(),
    };
    let queues_of = |topic: &str| {
        scenario
            .topics
            .iter()
            .find(|t| t.name == topic)
            .map_or(1, |t| t.queues)
    };

    for p in &scenario.producers {
        let (node, ip) = new_node(&p.name);
        let (tx, rx) = mpsc::unbounded_channel();
        targets.producers.insert(p.name.clone(), tx);
        let (spec, queues, ctx0) = (p.clone(), queues_of(&p.topic), ctx_for(&p.name));
        node.spawn(async move {
            let rpc = RpcClient::connect(ip, broker_addr)
                .await
                .expect("producer binds");
            let producer = Producer::new(ctx0.with(rpc), spec, queues);
            madsim::task::spawn(producer.clone().serve(rx));
            producer.run().await;
        });
    }
    let mut consumer_nodes = Vec::new();
    for c in &scenario.consumers {
        let (node, ip) = new_node(&c.name);
        consumer_nodes.push(c.name.clone());
        let (spec, ctx0) = (c.clone(), ctx_for(&c.name));
        match c.kind {
            ConsumerKindSpec::Concurrent => {
                let (tx, rx) = watch::channel(true);
                targets
                    .running
                    .insert(c.name.clone(), (tx, c.group.clone()));
                node.spawn(async move {
                    let rpc = RpcClient::connect(ip, broker_addr)
                        .await
                        .expect("consumer binds");
                    PushConsumer::new(ctx0.with(rpc), spec).run(rx).await
                });
            }
            ConsumerKindSpec::GrpcPush => {
                let (tx, rx) = watch::channel(true);
                targets
                    .running
                    .insert(c.name.clone(), (tx, c.group.clone()));
                let g0 = grpc;
                let queues = queues_of(&c.topic);
                node.spawn(async move {
                    let rpc = GrpcClient::connect(ip, proxy_addr)
                        .await
                        .expect("consumer binds");
                    let g = g0(ctx0.with(rpc), &spec);
                    GrpcPushConsumer::new(g, spec, push_settings, queues)
                        .run(rx)
                        .await
                });
            }
            ConsumerKindSpec::GrpcSimple if c.receive_loop => {
                let (tx, rx) = watch::channel(true);
                targets
                    .running
                    .insert(c.name.clone(), (tx, c.group.clone()));
                let g0 = grpc;
                node.spawn(async move {
                    let rpc = GrpcClient::connect(ip, proxy_addr)
                        .await
                        .expect("consumer binds");
                    let g = g0(ctx0.with(rpc), &spec);
                    GrpcSimpleConsumer::new(g, spec).run_loop(rx).await;
                });
            }
            ConsumerKindSpec::GrpcSimple => {
                let (tx, rx) = mpsc::unbounded_channel();
                targets.scripted.insert(c.name.clone(), tx);
                let g0 = grpc;
                node.spawn(async move {
                    let rpc = GrpcClient::connect(ip, proxy_addr)
                        .await
                        .expect("consumer binds");
                    let g = g0(ctx0.with(rpc), &spec);
                    GrpcSimpleConsumer::new(g, spec).run(rx).await;
                });
            }
            ConsumerKindSpec::Scripted => {
                let (tx, rx) = mpsc::unbounded_channel();
                targets.scripted.insert(c.name.clone(), tx);
                node.spawn(async move {
                    let rpc = RpcClient::connect(ip, broker_addr)
                        .await
                        .expect("consumer binds");
                    ScriptedConsumer::new(ctx0.with(rpc), spec).run(rx).await;
                });
            }
        }
    }
    for c in &scenario.clients {
        let (node, ip) = new_node(&c.name);
        let ctx0 = ctx_for(&c.name);
        match c.kind {
            ClientKind::Offset => {
                let (tx, rx) = mpsc::unbounded_channel();
                targets.offset.insert(c.name.clone(), tx);
                node.spawn(async move {
                    let rpc = RpcClient::connect(ip, broker_addr)
                        .await
                        .expect("client binds");
                    OffsetClient::new(ctx0.with(rpc)).serve(rx).await;
                });
            }
            ClientKind::Admin => {
                let (tx, rx) = mpsc::unbounded_channel();
                targets.admin.insert(c.name.clone(), tx);
                node.spawn(async move {
                    let rpc = RpcClient::connect(ip, broker_addr)
                        .await
                        .expect("client binds");
                    AdminClient::new(ctx0.with(rpc)).serve(rx).await;
                });
            }
        }
    }

    let ctl = Controller::new(handle.clone(), broker.clone(), nodes, rec.clone());
    let operators = faults::Operators {
        admin: targets.admin.values().next().cloned(),
        offset: targets.offset.values().next().cloned(),
        consumed: consumed_queues(scenario),
        unconsumed: unconsumed_queues(scenario),
    };
    faults::spawn_random_faults(
        &ctl,
        &scenario.faults,
        (quiet_from, cfg.seed),
        consumer_nodes,
        operators,
    );
    let mut steps = scenario.steps.clone();
    steps.sort_by_key(|s| s.at_ms);
    ctl.spawn(move |timeline_ctl| async move {
        for step in steps {
            if step.at_ms >= duration {
                break;
            }
            clock.sleep_until(step.at_ms).await;
            run_step(&timeline_ctl, &targets, step.at_ms, step.action);
        }
        // Keep the command channels open until the run ends.
        std::future::pending::<()>().await;
    });

    clock.sleep_until(duration).await;
    broker.flush_events();
    let final_state = broker.snapshot();
    let (events, digest) = rec.take();
    ctl.shutdown();
    madsim::time::sleep(std::time::Duration::from_millis(1)).await;
    WorldOutput {
        events,
        digest,
        final_state,
    }
}

/// (group, topic, queue count) of every consumer's subscription, without repeats.
fn consumed_queues(sc: &Scenario) -> Vec<(String, String, u32)> {
    let mut out: Vec<(String, String, u32)> = Vec::new();
    for c in &sc.consumers {
        let queues = sc
            .topics
            .iter()
            .find(|t| t.name == c.topic)
            .map_or(1, |t| t.queues);
        let key = (c.group.clone(), c.topic.clone(), queues);
        if !out.contains(&key) {
            out.push(key);
        }
    }
    out
}

/// (group, topic, queue count) for every group no consumer belongs to, on every topic.
fn unconsumed_queues(sc: &Scenario) -> Vec<(String, String, u32)> {
    sc.groups
        .iter()
        .filter(|g| sc.consumers.iter().all(|c| c.group != g.name))
        .flat_map(|g| {
            sc.topics
                .iter()
                .map(move |t| (g.name.clone(), t.name.clone(), t.queues))
        })
        .collect()
}

fn no_target(at: Millis, what: &str, name: &str) -> ! {
    panic!("step at {at} ms: no {what} named `{name}`")
}

/// Executes one timeline step: client actions go to the actor's node as commands, faults
/// are applied by the controller.
fn run_step(ctl: &Controller, t: &Targets, at: Millis, action: Action) {
    match action {
        Action::Produce { producer, count } => {
            let tx = t
                .producers
                .get(&producer)
                .unwrap_or_else(|| no_target(at, "producer", &producer));
            let _ = tx.send(count);
        }
        Action::Pop {
            consumer,
            max,
            queue,
            invisible_time_ms,
        } => scripted(
            t,
            at,
            &consumer,
            ScriptedCommand::Pop {
                max,
                queue,
                invisible_time: invisible_time_ms,
            },
        ),
        Action::Ack {
            consumer,
            count,
            all_but,
            batch,
            skip,
        } => scripted(
            t,
            at,
            &consumer,
            ScriptedCommand::Ack {
                count,
                all_but,
                batch,
                skip,
            },
        ),
        Action::ChangeInvisibleTime {
            consumer,
            invisible_time_ms,
            count,
        } => scripted(
            t,
            at,
            &consumer,
            ScriptedCommand::ChangeInvisibleTime {
                invisible_time: invisible_time_ms,
                count,
            },
        ),
        Action::ResetOffset {
            client,
            group,
            topic,
            queue,
            offset,
        } => {
            let tx = t
                .admin
                .get(&client)
                .unwrap_or_else(|| no_target(at, "admin client", &client));
            let _ = tx.send(ResetCommand {
                group,
                topic,
                queue,
                offset,
                timestamp: -1,
            });
        }
        Action::UpdateOffset {
            client,
            mode,
            group,
            topic,
            queue,
            offset,
        } => {
            let tx = t
                .offset
                .get(&client)
                .unwrap_or_else(|| no_target(at, "offset client", &client));
            let _ = tx.send(OffsetCommand::Update {
                mode,
                group,
                topic,
                queue,
                offset,
            });
        }
        Action::QueryOffset {
            client,
            group,
            topic,
            queue,
        } => {
            let tx = t
                .offset
                .get(&client)
                .unwrap_or_else(|| no_target(at, "offset client", &client));
            let _ = tx.send(OffsetCommand::Query {
                group,
                topic,
                queue,
            });
        }
        Action::Crash => {
            ctl.crash_broker(Origin::Scripted);
        }
        Action::Shutdown => {
            ctl.shutdown_broker(Origin::Scripted);
        }
        Action::Restart => {
            ctl.restart_broker(Origin::Scripted);
        }
        Action::Clog { node } => {
            ctl.clog(&node, Origin::Scripted, None);
        }
        Action::Unclog { node } => {
            ctl.unclog(&node, Origin::Scripted);
        }
        Action::Pause { node, duration_ms } => {
            ctl.spawn(
                move |ctl| async move { ctl.pause(&node, duration_ms, Origin::Scripted).await },
            );
        }
        Action::SetLoss { rate } => ctl.set_loss(rate, Origin::Scripted),
        Action::SetStorePutFailureRate { rate } => {
            ctl.set_store_put_failure_rate(rate, Origin::Scripted)
        }
        Action::SetTimerLag { lag_ms } => ctl.set_timer_lag(lag_ms, Origin::Scripted),
        Action::StartConsumer { consumer } => set_running(ctl, t, at, &consumer, true),
        Action::StopConsumer { consumer } => set_running(ctl, t, at, &consumer, false),
    }
}

fn scripted(t: &Targets, at: Millis, consumer: &str, cmd: ScriptedCommand) {
    let tx = t
        .scripted
        .get(consumer)
        .unwrap_or_else(|| no_target(at, "scripted consumer", consumer));
    let _ = tx.send(cmd);
}

/// Starts or stops a consumer's pop loop, recording the change at the step's time.
fn set_running(ctl: &Controller, t: &Targets, at: Millis, consumer: &str, on: bool) {
    // A scripted or gRPC simple consumer has no loop to start or stop.
    if t.scripted.contains_key(consumer) {
        return;
    }
    let (tx, group) = t
        .running
        .get(consumer)
        .unwrap_or_else(|| no_target(at, "consumer", consumer));
    if *tx.borrow() == on {
        return;
    }
    let _ = tx.send(on);
    let (name, group) = (
        broker_core::Name::new(consumer),
        broker_core::Name::new(group),
    );
    let kind = if on {
        EventKind::ConsumerStarted {
            consumer: name,
            group,
        }
    } else {
        EventKind::ConsumerStopped {
            consumer: name,
            group,
        }
    };
    ctl.record(consumer, kind);
}
