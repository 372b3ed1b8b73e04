//! The one configuration tree: every setting linkymon reads, where it comes from, and what is valid.
//!
//! Sources, later ones winning: the built-in defaults (the `Default` impls of the sections, and
//! nowhere else), then one YAML file, then `LINKYMON_*` environment variables with `__` between
//! levels (`LINKYMON_MQTT__HOST=broker.lan`). The file is `-c FILE` when given, else
//! `$LINKYMON_CONFIG`, else `/etc/linkymon/config.yaml` if it exists; without any, the defaults
//! stand.
//!
//! This module owns parsing, defaults and validation, and turns every mistake a user can make into
//! a one-line [`ConfigError`] naming the key and where it was written. It does not decide what
//! the settings do: each subsystem reads its own section.
//!
//! # Layout
//! - `schema`: the typed tree, one struct per section, with its defaults and the values users
//!   write as text ([`PortSpec`], [`Secret`], sizes).
//! - `load`: which file is read, the sources merged in order, and [`Config::load`].
//! - `providers`: the YAML file ([`Yaml`]) and the environment ([`Environment`]) as figment
//!   providers that keep text values as written.
//! - `validate`: what serde cannot check (ranges, formats, combinations).
//! - `error`: [`ConfigError`] and [`Origin`], the messages users read.

mod error;
mod load;
mod providers;
mod schema;
#[cfg(test)]
mod tests;
mod validate;

pub use error::{ConfigError, Origin};
pub use providers::{Environment, Yaml};
pub use schema::{
    Config, DisplayConfig, DisplayDriver, LedConfig, LedState, LoggerConfig, MeterConfig,
    MeterMode, MqttConfig, PortSpec, PriceSet, PricesConfig, PublishConfig, Pull, RelayConfig,
    Secret,
};

/// The file read when neither `-c` nor `LINKYMON_CONFIG` names one (and only if it exists).
pub const SYSTEM_CONFIG_PATH: &str = "/etc/linkymon/config.yaml";

/// The environment variable that names the config file when `-c` is not given.
pub const CONFIG_PATH_VAR: &str = "LINKYMON_CONFIG";

/// The prefix of the environment variables that override file settings.
pub const ENV_PREFIX: &str = "LINKYMON_";

/// The dotted path of `child` under `parent` (`""` is the top).
fn join_key(parent: &str, child: &str) -> String {
    if parent.is_empty() {
        child.to_string()
    } else {
        format!("{parent}.{child}")
    }
}

/// The environment variable that sets `key` (`mqtt.port` → `LINKYMON_MQTT__PORT`).
fn env_var_name(key: &str) -> String {
    format!(
        "{ENV_PREFIX}{}",
        key.replace('.', "__").to_ascii_uppercase()
    )
}
