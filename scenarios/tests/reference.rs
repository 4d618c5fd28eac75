//! docs/scenario-reference.md stays in step with the format: its example loads, and every
//! action, broker key and limit it must document is there.

use scenarios::{load_str, Context};

fn reference() -> String {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../docs/scenario-reference.md");
    std::fs::read_to_string(path).expect("docs/scenario-reference.md")
}

#[test]
fn the_complete_example_loads() {
    let doc = reference();
    let start = doc.rfind("```toml\n").expect("a toml example") + "```toml\n".len();
    let end = start + doc[start..].find("```").expect("closing fence");
    let sc = load_str("example.toml", &doc[start..end], &Context::default())
        .unwrap_or_else(|e| panic!("{}", e.render()));
    assert_eq!(sc.name, "late-ack-example");
}

#[test]
fn every_action_and_key_is_documented() {
    let doc = reference();
    for a in scenarios::steps::ACTIONS {
        assert!(
            doc.contains(&format!("### `{}`", a.name)) || doc.contains(&format!("`{}`", a.name)),
            "{}",
            a.name
        );
        for f in a.fields {
            assert!(
                doc.contains(&format!("| `{}` |", f.key)),
                "{}.{}",
                a.name,
                f.key
            );
        }
    }
    let broker = toml::Value::try_from(broker_core::BrokerConfig::default()).unwrap();
    for key in broker.as_table().unwrap().keys() {
        assert!(doc.contains(&format!("| `{key}` |")), "broker key {key}");
    }
    for b in broker_core::Behaviour::ALL {
        assert!(
            doc.contains(&format!("`{}`", b.name())),
            "behaviour {}",
            b.name()
        );
    }
    for f in broker_core::Fix::ALL {
        assert!(
            doc.contains(&format!("`{}`", f.name())),
            "proposed fix {}",
            f.name()
        );
    }
    let proxy = toml::Value::try_from(scenarios::model::ProxyConfig::default()).unwrap();
    for key in proxy.as_table().unwrap().keys() {
        assert!(doc.contains(&format!("| `{key}` |")), "proxy key {key}");
    }
    for key in [
        "name",
        "kind",
        "group",
        "topic",
        "pop_invisible_time_ms",
        "max_reconsume_times",
        "pop_batch_nums",
        "consume_time_ms",
        "failure_percent",
        "fifo",
        "await_duration_ms",
        "batch_ack",
        "start_at_ms",
        "init_mode",
    ] {
        assert!(doc.contains(&format!("| `{key}` |")), "consumer key {key}");
    }
    for kind in ["concurrent", "grpc-push", "grpc-simple", "scripted"] {
        assert!(doc.contains(&format!("`{kind}`")), "consumer kind {kind}");
    }
    // Every [faults] key, with each optional one set so that it serialises.
    let faults = scenarios::model::FaultSpec {
        reset_every_ms: 1,
        update_offset_every_ms: 1,
        timer_lag_ms: scenarios::model::RangeMs { min: 0, max: 1 },
        store_put_failure_rate: 0.1,
        retention_ms: 1,
        page_cache_ms: 1,
        ..Default::default()
    };
    for key in toml::Value::try_from(faults)
        .unwrap()
        .as_table()
        .unwrap()
        .keys()
    {
        assert!(doc.contains(&format!("| `{key}` |")), "faults key {key}");
    }
    let scheduler = scenarios::model::SchedulerSpec {
        queue_capacity: 1,
        ..Default::default()
    };
    let scheduler = toml::Value::try_from(scheduler).unwrap();
    for key in scheduler.as_table().unwrap().keys() {
        assert!(doc.contains(&format!("| `{key}` |")), "scheduler key {key}");
    }
    for (name, _) in scenarios::builtins() {
        assert!(doc.contains(&format!("`{name}`")), "built-in {name}");
    }
}
