//! Writing a scenario back as a TOML file (`popsim shrink` does). Broker keys left at
//! upstream's defaults and empty lists are left out, so the file shows what matters.

use crate::model::Scenario;
use broker_core::BrokerConfig;

/// `sc` as scenario-file TOML that [`crate::load_str`] reads back to the same scenario.
pub fn to_toml(sc: &Scenario) -> String {
    let mut table = toml::Table::try_from(sc).expect("a scenario serialises to a TOML table");
    if let (Some(toml::Value::Table(now)), Ok(def)) = (
        table.get_mut("broker"),
        toml::Table::try_from(BrokerConfig::default()),
    ) {
        now.retain(|k, v| def.get(k) != Some(v));
    }
    if let (Some(toml::Value::Table(now)), Ok(def)) = (
        table.get_mut("faults"),
        toml::Table::try_from(crate::model::FaultSpec::default()),
    ) {
        now.retain(|k, v| def.get(k) != Some(v));
    }
    table.retain(|_, v| match v {
        toml::Value::Array(a) => !a.is_empty(),
        toml::Value::Table(t) => !t.is_empty(),
        toml::Value::String(s) => !s.is_empty(),
        _ => true,
    });
    if let Some(toml::Value::Table(e)) = table.get_mut("expect") {
        e.retain(|_, v| !matches!(v, toml::Value::Array(a) if a.is_empty()));
    }
    toml::to_string(&table).expect("a TOML table prints")
}

#[cfg(test)]
mod tests {
    use crate::{builtin, builtins, load_str, Context};

    #[test]
    fn every_builtin_reads_back_the_same() {
        for (name, _) in builtins() {
            let sc = builtin(name).expect("built-in");
            let text = super::to_toml(&sc);
            let back = load_str("w.toml", &text, &Context::default())
                .unwrap_or_else(|e| panic!("{name}: {}\n{text}", e.render()));
            assert_eq!(back, sc, "{name}");
        }
    }
}
