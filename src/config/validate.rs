//! What serde cannot check: ranges, formats and combinations of settings. The first problem
//! found is the one reported, so the user fixes one line at a time.

use super::error::{ConfigError, bad_value};
use super::schema::Config;
use crate::prices::{PERIODS, period_name};

impl Config {
    /// The first setting out of range, malformed or in conflict with another, as an error
    /// naming its key; loading then adds where the key was written.
    pub(super) fn validate(&self) -> Result<(), ConfigError> {
        let meter = &self.meter;
        if !(meter.replay_speed.is_finite() && meter.replay_speed >= 0.0) {
            return Err(bad_value(
                "meter.replay_speed",
                format!(
                    "must be 0 or more (1.0 = real pace, 0 = as fast as possible), not {}",
                    meter.replay_speed
                ),
            ));
        }
        if !(meter.simulate_speed.is_finite() && meter.simulate_speed > 0.0) {
            return Err(bad_value(
                "meter.simulate_speed",
                format!(
                    "must be more than 0 (simulated seconds per real second), not {}",
                    meter.simulate_speed
                ),
            ));
        }
        if !(100..=400).contains(&meter.voltage) {
            return Err(bad_value(
                "meter.voltage",
                format!("must be from 100 to 400 volts, not {}", meter.voltage),
            ));
        }

        let mqtt = &self.mqtt;
        if mqtt.host.is_empty() {
            return Err(bad_value("mqtt.host", "must not be empty".into()));
        }
        // A NUL cannot be sent in an MQTT string (MQTT 3.1.1 §1.5.3) nor in a host name: the
        // connection would fail on every attempt, silently retried forever.
        for (key, value) in [
            ("mqtt.host", Some(mqtt.host.as_str())),
            ("mqtt.username", mqtt.username.as_deref()),
            ("mqtt.password", mqtt.password.as_ref().map(|p| p.expose())),
            ("mqtt.client_id", mqtt.client_id.as_deref()),
        ] {
            if value.is_some_and(|v| v.contains('\0')) {
                return Err(bad_value(key, "must not contain a NUL character".into()));
            }
        }
        if let Some(id) = &mqtt.client_id
            && id.len() > MAX_CLIENT_ID
        {
            return Err(bad_value(
                "mqtt.client_id",
                format!(
                    "is {} bytes long; keep it to {MAX_CLIENT_ID} bytes (brokers may refuse \
                     more than 23)",
                    id.len()
                ),
            ));
        }
        if mqtt.spool_max == 0 {
            return Err(bad_value(
                "mqtt.spool_max",
                "must be a positive size like 64MiB, not 0".into(),
            ));
        }
        if mqtt.port == 0 {
            return Err(bad_value(
                "mqtt.port",
                "must be from 1 to 65535, not 0".into(),
            ));
        }
        if mqtt.password.is_some() && mqtt.password_file.is_some() {
            return Err(bad_value(
                "mqtt.password_file",
                "set either `mqtt.password` or `mqtt.password_file`, not both".into(),
            ));
        }
        if mqtt.client_cert.is_some() != mqtt.client_key.is_some() {
            let (set, unset) = if mqtt.client_cert.is_some() {
                ("mqtt.client_cert", "mqtt.client_key")
            } else {
                ("mqtt.client_key", "mqtt.client_cert")
            };
            return Err(bad_value(set, format!("needs `{unset}` as well")));
        }
        if mqtt.embedded_broker && mqtt.tls {
            return Err(bad_value(
                "mqtt.tls",
                "the embedded broker speaks plain MQTT: set `mqtt.tls: false`, or \
                 `mqtt.embedded_broker: false` to use a TLS broker"
                    .into(),
            ));
        }
        if mqtt.embedded_broker {
            let v5 = mqtt.embedded_v5_port();
            if v5 == 0 || v5 == mqtt.port {
                return Err(bad_value(
                    "mqtt.embedded_port_v5",
                    format!(
                        "the embedded broker's MQTT 5 listener (for `linkymon logger`) needs a \
                         port from 1 to 65535 other than mqtt.port ({}), not {v5}",
                        mqtt.port
                    ),
                ));
            }
        }
        if mqtt.embedded_broker && !cfg!(feature = "embedded-broker") {
            return Err(bad_value(
                "mqtt.embedded_broker",
                "this linkymon was built without the embedded broker (cargo feature \
                 `embedded-broker`): set it to false and run a broker such as mosquitto"
                    .into(),
            ));
        }
        if crate::broker::listen_addr(&mqtt.embedded_bind, mqtt.port).is_err() {
            return Err(bad_value(
                "mqtt.embedded_bind",
                format!(
                    "`{}` is not an IP address; write 127.0.0.1 (this machine only), \
                     0.0.0.0 (every IPv4 interface) or :: (every interface)",
                    mqtt.embedded_bind
                ),
            ));
        }
        check_topic_level("mqtt.base_topic", &mqtt.base_topic)?;
        check_topic_level("mqtt.discovery_prefix", &mqtt.discovery_prefix)?;

        if let (Some(led), Some(relay)) = (self.led.gpio, self.relay.gpio)
            && led == relay
        {
            return Err(bad_value(
                "relay.gpio",
                format!("pin {relay} is already `led.gpio`: use two different pins"),
            ));
        }

        let logger = &self.logger;
        if logger.frames_per_line == 0 {
            return Err(bad_value(
                "logger.frames_per_line",
                "must be 1 or more (one log line per N frames)".into(),
            ));
        }
        logger.time_zone()?;
        if let Some(id) = &logger.meter
            && !crate::logger::checks::is_meter_id(id)
        {
            return Err(bad_value(
                "logger.meter",
                "a meter id is its 12 digits (ADCO or ADSC), like 021728123456".into(),
            ));
        }
        if logger.max_meters == 0 {
            return Err(bad_value(
                "logger.max_meters",
                "must be 1 or more (how many meters the logger follows)".into(),
            ));
        }
        self.validate_prices()?;
        Ok(())
    }
}

impl Config {
    /// `prices:` and the deprecated `logger.prices`, `logger.subscription_per_day` and
    /// `logger.currency` it replaces.
    fn validate_prices(&self) -> Result<(), ConfigError> {
        let logger = &self.logger;
        if let Some(codes) = &logger.prices {
            let mut seen = std::collections::BTreeSet::new();
            for (code, price) in codes {
                let key = format!("logger.prices.{code}");
                let Some(name) = period_name(code) else {
                    return Err(bad_value(&key, unknown_period(code)));
                };
                if !seen.insert(name) {
                    return Err(bad_value(
                        &key,
                        format!("the period {code} is written twice (in two cases); keep one"),
                    ));
                }
                check_price(&key, *price)?;
            }
        }
        if let Some(daily) = logger.subscription_per_day {
            check_price("logger.subscription_per_day", daily)?;
        }
        let prices = &self.prices;
        for (key, currency) in [
            ("prices.currency", Some(&prices.currency)),
            ("logger.currency", logger.currency.as_ref()),
        ] {
            if currency.is_some_and(|c| c.trim().is_empty()) {
                return Err(bad_value(
                    key,
                    "must not be empty; write a code like EUR".into(),
                ));
            }
        }
        for (i, set) in prices.sets.iter().enumerate() {
            let at = format!("prices.sets.{i}");
            if prices.sets[..i].iter().any(|other| other.from == set.from) {
                return Err(bad_value(
                    &format!("{at}.from"),
                    format!(
                        "another set already starts on {}; each set starts on its own day",
                        set.from
                    ),
                ));
            }
            for (period, price) in &set.kwh {
                let key = format!("{at}.kwh.{period}");
                match period_name(period) {
                    Some(name) if name == period => {}
                    Some(name) => {
                        return Err(bad_value(
                            &key,
                            format!("periods are written in lowercase: `{name}`"),
                        ));
                    }
                    None => return Err(bad_value(&key, unknown_period(period))),
                }
                check_price(&key, *price)?;
            }
            if set.subscription_per_day.is_some() && set.subscription_per_month.is_some() {
                return Err(bad_value(
                    &format!("{at}.subscription_per_month"),
                    "set either `subscription_per_day` or `subscription_per_month`, not both"
                        .into(),
                ));
            }
            for (name, value) in [
                ("subscription_per_day", set.subscription_per_day),
                ("subscription_per_month", set.subscription_per_month),
            ] {
                if let Some(value) = value {
                    check_price(&format!("{at}.{name}"), value)?;
                }
            }
        }
        if !prices.sets.is_empty() {
            for (key, set) in [
                ("logger.prices", logger.prices.is_some()),
                (
                    "logger.subscription_per_day",
                    logger.subscription_per_day.is_some(),
                ),
                (
                    "logger.currency",
                    logger
                        .currency
                        .as_ref()
                        .is_some_and(|c| *c != prices.currency),
                ),
            ] {
                if set {
                    return Err(bad_value(
                        key,
                        "is replaced by `prices:`, which is set too: remove the old key".into(),
                    ));
                }
            }
        }
        self.validate_fleet()
    }

    /// The logger's database, share group and client id (README "Fleets").
    fn validate_fleet(&self) -> Result<(), ConfigError> {
        let logger = &self.logger;
        if let Some(url) = &logger.database {
            // The URL is not repeated: it may hold a password.
            let parsed = url
                .expose()
                .parse::<tokio_postgres::Config>()
                .map_err(|e| {
                    bad_value(
                        "logger.database",
                        format!(
                            "is not a postgres:// URL ({e}); write postgres://user@host:5432/dbname"
                        ),
                    )
                })?;
            if parsed.get_hosts().is_empty() {
                return Err(bad_value(
                    "logger.database",
                    "names no host; write postgres://user@host:5432/dbname".into(),
                ));
            }
            if logger.database_password_file.is_some() && parsed.get_password().is_some() {
                return Err(bad_value(
                    "logger.database_password_file",
                    "the `logger.database` URL already holds a password: keep one of them".into(),
                ));
            }
        } else if logger.database_password_file.is_some() {
            return Err(bad_value(
                "logger.database_password_file",
                "is set without `logger.database`".into(),
            ));
        }
        if let Some(group) = &logger.share_group {
            if group.is_empty() || group.contains(['/', '+', '#', '\0']) {
                return Err(bad_value(
                    "logger.share_group",
                    "a share group is a name without `/`, `+`, `#` or NUL, like `fleet`".into(),
                ));
            }
            if logger.files {
                return Err(bad_value(
                    "logger.share_group",
                    "each logger of a share group sees only part of a meter's messages, so its \
                     daily logs and pages would be wrong: set `logger.files: false` (the \
                     database is the history)"
                        .into(),
                ));
            }
            if logger.database.is_none() {
                return Err(bad_value(
                    "logger.share_group",
                    "needs `logger.database`: with a share group the database is the history"
                        .into(),
                ));
            }
        }
        if !logger.files && logger.database.is_none() {
            return Err(bad_value(
                "logger.files",
                "is false and `logger.database` is not set: the logger would keep nothing".into(),
            ));
        }
        if let Some(id) = &logger.client_id
            && (id.is_empty() || id.contains('\0') || id.len() > MAX_CLIENT_ID)
        {
            return Err(bad_value(
                "logger.client_id",
                format!("must be 1 to {MAX_CLIENT_ID} bytes, without NUL"),
            ));
        }
        Ok(())
    }
}

/// Why `code` is refused as a period name.
fn unknown_period(code: &str) -> String {
    format!(
        "`{code}` is not a tariff period; the periods are {}",
        PERIODS.join(", ")
    )
}

/// A price or a subscription: a finite amount, 0 or more.
fn check_price(key: &str, price: f64) -> Result<(), ConfigError> {
    if price.is_finite() && price >= 0.0 {
        Ok(())
    } else {
        Err(bad_value(key, format!("must be 0 or more, not {price}")))
    }
}

/// The longest `mqtt.client_id` accepted, in bytes. MQTT 3.1.1 guarantees only 23 bytes, but
/// every broker linkymon is used with (mosquitto, rumqttd, EMQX, HiveMQ) takes more; 256 leaves
/// room for any sensible name while a pasted blob, which a broker would refuse on every
/// reconnect, is caught at start.
pub(super) const MAX_CLIENT_ID: usize = 256;

/// The longest topic prefix accepted, in bytes: an MQTT topic is at most 65,535 bytes, and the
/// topics linkymon builds add at most a meter id, an entity name and a few levels (well under
/// 256 bytes) to `mqtt.base_topic` or `mqtt.discovery_prefix`.
pub(super) const MAX_TOPIC_PREFIX: usize = 65_535 - 256;

/// A topic prefix must be usable as the start of a topic name: no wildcards, no NUL, no empty
/// level (which would make topics like `/id/state` or `linky//id/state`), no leading `$`
/// (topics the broker reserves, which clients may not publish to), and short enough for the
/// topics built on it to stay within MQTT's 65,535 bytes. Each of these would otherwise make
/// every publish fail and the connection be retried forever.
fn check_topic_level(key: &str, topic: &str) -> Result<(), ConfigError> {
    if topic.is_empty() {
        return Err(bad_value(key, "must not be empty".into()));
    }
    if topic.len() > MAX_TOPIC_PREFIX {
        return Err(bad_value(
            key,
            format!(
                "is {} bytes long; keep it under {MAX_TOPIC_PREFIX} bytes (an MQTT topic is at \
                 most 65535)",
                topic.len()
            ),
        ));
    }
    if topic.contains('\0') {
        return Err(bad_value(key, "must not contain a NUL character".into()));
    }
    if topic.starts_with('$') {
        return Err(bad_value(
            key,
            format!("`{topic}` starts with `$`, which brokers reserve for themselves"),
        ));
    }
    if topic.contains(['+', '#']) {
        return Err(bad_value(
            key,
            format!("`{topic}` contains an MQTT wildcard (+ or #); remove it"),
        ));
    }
    if topic.starts_with('/') || topic.ends_with('/') {
        return Err(bad_value(
            key,
            format!("`{topic}` must not start or end with `/`"),
        ));
    }
    if topic.contains("//") {
        return Err(bad_value(
            key,
            format!("`{topic}` has an empty level (`//`); write one `/` between levels"),
        ));
    }
    Ok(())
}
