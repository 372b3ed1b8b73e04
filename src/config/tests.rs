//! The configuration's unit tests: every error message users can meet, the text keys kept as
//! written, the precedence of the sources, and the example file against the defaults.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use figment::providers::Format;
use figment::{Figment, Jail};
use serde::Deserialize;

use super::load::{choose_file, readable_by_others};
use super::providers::TEXT_KEYS;
use super::*;

/// Loads from YAML text alone: no file, no environment.
fn from_yaml(yaml: &str) -> Result<Config, ConfigError> {
    Config::load_from(Figment::from(Yaml::string(yaml)))
}

/// Loads from a YAML file alone.
fn from_file(path: &str) -> Result<Config, ConfigError> {
    Config::load_from(Figment::from(Yaml::file_exact(path)))
}

/// Loads from the environment alone.
fn from_env() -> Result<Config, ConfigError> {
    Config::load_from(Figment::from(Environment::new()))
}

/// Runs `test` in a fresh temporary working directory (figment's Jail, which also
/// serialises the tests that use it and restores the directory afterwards).
// Jail's closure must return figment's own (large) error type; nothing to shrink here.
#[allow(clippy::result_large_err)]
fn in_temp_dir(test: impl FnOnce(&mut Jail)) {
    Jail::expect_with(|jail| {
        test(jail);
        Ok(())
    });
}

/// Like `in_temp_dir`, with every environment variable removed for the test's duration
/// (restored afterwards), so a `LINKYMON_*` variable set outside cannot change the result.
fn with_clean_env(test: impl FnOnce(&mut Jail)) {
    in_temp_dir(|jail| {
        jail.clear_env();
        test(jail);
    });
}

fn error_of(result: Result<Config, ConfigError>) -> String {
    match result {
        Ok(config) => panic!("expected an error, got {config:?}"),
        Err(error) => error.to_string(),
    }
}

#[test]
fn a_password_file_readable_by_others_draws_a_warning_naming_it() {
    let file = Path::new("/etc/linkymon/config.yaml");
    let warning = readable_by_others(file, 0o100644, "mqtt.password").unwrap();
    assert!(warning.contains("/etc/linkymon/config.yaml"), "{warning}");
    assert!(warning.contains("mode 0644"), "{warning}");
    assert!(warning.contains("chmod 600"), "{warning}");
    assert!(readable_by_others(file, 0o100640, "mqtt.password").is_some());
    assert_eq!(readable_by_others(file, 0o100600, "mqtt.password"), None);
}

#[test]
fn the_defaults_are_valid() {
    Config::default().validate().unwrap();
}

#[test]
fn an_unknown_key_names_the_key_and_suggests_the_near_one() {
    let message = error_of(from_yaml("mqtt:\n  hots: broker.lan\n"));
    assert!(message.contains("unknown key `mqtt.hots`"), "{message}");
    assert!(message.contains("did you mean `mqtt.host`?"), "{message}");
    assert!(message.contains("YAML"), "{message}");
}

#[test]
fn an_unknown_key_far_from_any_lists_the_valid_ones() {
    let message = error_of(from_yaml("led:\n  colour: red\n"));
    assert!(message.contains("unknown key `led.colour`"), "{message}");
    assert!(
        message.contains("the keys under `led` are: gpio, active_low, states"),
        "{message}"
    );
}

#[test]
fn an_unknown_section_is_an_error_too() {
    let message = error_of(from_yaml("mqt:\n  host: x\n"));
    assert!(message.contains("unknown key `mqt`"), "{message}");
    assert!(message.contains("did you mean `mqtt`?"), "{message}");
}

#[test]
fn an_unknown_nested_key_from_the_environment_names_the_variable() {
    with_clean_env(|jail| {
        jail.set_env("LINKYMON_RELAY__DEBOUNC", "10ms");
        let message = error_of(from_env());
        assert!(message.contains("unknown key `relay.debounc`"), "{message}");
        assert!(
            message.contains("from LINKYMON_RELAY__DEBOUNC"),
            "{message}"
        );
        assert!(
            message.contains("did you mean `relay.debounce` (LINKYMON_RELAY__DEBOUNCE)?"),
            "{message}"
        );
    });
}

#[test]
fn the_environment_overrides_the_file_which_overrides_the_defaults() {
    with_clean_env(|jail| {
        jail.create_file("linkymon.yaml", "mqtt:\n  host: from-file\n  port: 1884\n")
            .unwrap();
        jail.set_env("LINKYMON_MQTT__HOST", "from-env");
        let config = Config::load(Some(Path::new("linkymon.yaml"))).unwrap();
        assert_eq!(config.mqtt.host, "from-env");
        assert_eq!(config.mqtt.port, 1884);
        assert_eq!(config.mqtt.base_topic, "linky");
    });
}

#[test]
fn load_reads_the_file_named_by_linkymon_config_and_the_environment() {
    with_clean_env(|jail| {
        jail.create_file("named.yaml", "publish:\n  interval: 1m\n")
            .unwrap();
        jail.set_env("LINKYMON_CONFIG", "named.yaml");
        jail.set_env("LINKYMON_METER__VOLTAGE", "240");
        let config = Config::load(None).unwrap();
        assert_eq!(config.publish.interval, Duration::from_secs(60));
        assert_eq!(config.meter.voltage, 240);
    });
}

#[test]
fn a_config_file_that_does_not_exist_names_the_path() {
    with_clean_env(|_| {
        let message = error_of(Config::load(Some(Path::new("/nonexistent/linkymon.yaml"))));
        assert!(
            message.contains("config file /nonexistent/linkymon.yaml does not exist"),
            "{message}"
        );
    });
}

#[test]
fn a_missing_file_named_by_linkymon_config_is_an_error_but_a_missing_system_file_is_not() {
    let system = Path::new("/nonexistent/etc/config.yaml");
    let named = choose_file(None, Some(PathBuf::from("/nonexistent/env.yaml")), system);
    assert!(matches!(named, Err(ConfigError::MissingFile { .. })));
    assert_eq!(choose_file(None, None, system), Ok(None));
}

#[test]
fn an_explicit_path_wins_over_linkymon_config() {
    let here = Path::new(env!("CARGO_MANIFEST_DIR")).join("Cargo.toml");
    let chosen = choose_file(
        Some(&here),
        Some(PathBuf::from("/nonexistent/env.yaml")),
        &here,
    );
    assert_eq!(chosen, Ok(Some(here.clone())));
}

#[test]
fn a_numeric_looking_password_from_the_environment_stays_text() {
    with_clean_env(|jail| {
        jail.set_env("LINKYMON_MQTT__PASSWORD", "0123");
        jail.set_env("LINKYMON_MQTT__USERNAME", "007");
        jail.set_env("LINKYMON_MQTT__CLIENT_ID", "1.50");
        jail.set_env("LINKYMON_LOGGER__METER", "021728123456");
        let config = from_env().unwrap();
        assert_eq!(config.mqtt.password, Some(Secret::new("0123")));
        assert_eq!(config.mqtt.username.as_deref(), Some("007"));
        assert_eq!(config.mqtt.client_id.as_deref(), Some("1.50"));
        assert_eq!(config.logger.meter.as_deref(), Some("021728123456"));
    });
}

#[test]
fn numbers_lists_and_booleans_from_the_environment_are_still_parsed() {
    with_clean_env(|jail| {
        jail.set_env("LINKYMON_MQTT__PORT", "8883");
        jail.set_env("LINKYMON_MQTT__TLS", "true");
        jail.set_env("LINKYMON_LED__STATES", "[tempo_red_today]");
        jail.set_env("LINKYMON_LOGGER__PRICES__HN", "0.1386");
        jail.set_env("LINKYMON_PUBLISH__INTERVAL", "0");
        let config = from_env().unwrap();
        assert_eq!(config.mqtt.port, 8883);
        assert!(config.mqtt.tls);
        assert_eq!(config.led.states, vec![LedState::TempoRedToday]);
        assert_eq!(config.prices.sets[0].kwh.get("hn"), Some(&0.1386));
        assert_eq!(config.publish.interval, Duration::ZERO);
    });
}

#[test]
fn a_numeric_looking_password_in_yaml_stays_text_quoted_or_not() {
    for (yaml, expected) in [
        ("mqtt:\n  password: 0123\n", "0123"),
        ("mqtt:\n  password: '0123'\n", "0123"),
        ("mqtt:\n  password: 123\n", "123"),
        ("mqtt:\n  password: 1.50\n", "1.50"),
        ("mqtt:\n  password: 0x1F\n", "0x1F"),
        ("mqtt:\n  password: True\n", "True"),
    ] {
        let config = from_yaml(yaml).unwrap();
        assert_eq!(config.mqtt.password, Some(Secret::new(expected)), "{yaml}");
    }
    let config = from_yaml("mqtt:\n  username: 0042\n  client_id: 7\n").unwrap();
    assert_eq!(config.mqtt.username.as_deref(), Some("0042"));
    assert_eq!(config.mqtt.client_id.as_deref(), Some("7"));
}

#[test]
fn a_null_text_value_is_none() {
    let config = from_yaml("mqtt:\n  password: null\n  username: ~\n").unwrap();
    assert_eq!(config.mqtt.password, None);
    assert_eq!(config.mqtt.username, None);
}

#[test]
fn durations_read_units_and_a_bare_zero() {
    for (written, expected) in [
        ("10s", Duration::from_secs(10)),
        ("0", Duration::ZERO),
        ("'0'", Duration::ZERO),
        ("1m30s", Duration::from_secs(90)),
        ("50ms", Duration::from_millis(50)),
    ] {
        let config = from_yaml(&format!("publish:\n  interval: {written}\n")).unwrap();
        assert_eq!(config.publish.interval, expected, "{written}");
    }
}

#[test]
fn a_duration_without_a_unit_is_an_error_naming_the_key() {
    let message = error_of(from_yaml("relay:\n  debounce: 50\n"));
    assert!(
        message.contains("bad value for `relay.debounce`"),
        "{message}"
    );
}

#[test]
fn sizes_read_binary_units() {
    let config = from_yaml("mqtt:\n  spool_max: 64MiB\n").unwrap();
    assert_eq!(config.mqtt.spool_max, 64 * 1024 * 1024);
    let config = from_yaml("mqtt:\n  spool_max: 1000\n").unwrap();
    assert_eq!(config.mqtt.spool_max, 1000);
    let message = error_of(from_yaml("mqtt:\n  spool_max: lots\n"));
    assert!(
        message.contains("bad value for `mqtt.spool_max`"),
        "{message}"
    );
}

#[test]
fn a_bad_enum_value_names_the_key_and_lists_the_allowed_values() {
    let message = error_of(from_yaml("meter:\n  mode: automatic\n"));
    assert!(message.contains("bad value for `meter.mode`"), "{message}");
    assert!(
        message.contains("`automatic` is not one of `auto`, `historic`, `standard`"),
        "{message}"
    );
    let message = error_of(from_yaml("led:\n  states: [ejp_peak, blue]\n"));
    assert!(message.contains("bad value for `led.states"), "{message}");
    assert!(message.contains("`tempo_red_tomorrow`"), "{message}");
}

#[test]
fn a_value_where_a_section_belongs_says_so_in_user_terms() {
    let message = error_of(from_yaml("mqtt: 5\n"));
    assert!(message.contains("bad value for `mqtt`"), "{message}");
    assert!(message.contains("expected a section of keys"), "{message}");
}

#[test]
fn a_wrong_type_names_the_key_the_source_and_the_range() {
    with_clean_env(|jail| {
        jail.set_env("LINKYMON_MQTT__PORT", "70000");
        let message = error_of(from_env());
        assert!(
            message.contains("bad value for `mqtt.port` from LINKYMON_MQTT__PORT"),
            "{message}"
        );
        assert!(message.contains("from 0 to 65535"), "{message}");
    });
}

#[test]
fn the_debug_output_of_a_config_with_a_password_does_not_contain_it() {
    let config = from_yaml("mqtt:\n  password: hunter2-secret\n").unwrap();
    assert_eq!(
        config.mqtt.password.as_ref().map(Secret::expose),
        Some("hunter2-secret")
    );
    let debug = format!("{config:?} {config:#?}");
    assert!(!debug.contains("hunter2-secret"), "{debug}");
    assert!(debug.contains("***"), "{debug}");
    let json = serde_json::to_string(&config).unwrap();
    assert!(!json.contains("hunter2-secret"), "{json}");
}

#[test]
fn password_and_password_file_together_are_an_error() {
    let message = error_of(from_yaml(
        "mqtt:\n  password: x\n  password_file: /run/secrets/mqtt\n",
    ));
    assert!(message.contains("`mqtt.password_file`"), "{message}");
    assert!(message.contains("not both"), "{message}");
}

#[test]
fn password_file_supplies_the_password_without_its_trailing_newline() {
    in_temp_dir(|jail| {
        jail.create_file("secret", "0123 x\n").unwrap();
        let config = from_yaml("mqtt:\n  password_file: secret\n").unwrap();
        assert_eq!(config.mqtt.password, Some(Secret::new("0123 x")));
        let message = error_of(from_yaml("mqtt:\n  password_file: absent\n"));
        assert!(
            message.contains("bad value for `mqtt.password_file`"),
            "{message}"
        );
        assert!(message.contains("cannot read absent"), "{message}");
    });
}

#[test]
fn a_bad_timezone_is_an_error_naming_the_key() {
    let message = error_of(from_yaml("logger:\n  timezone: Europe/Pariss\n"));
    assert!(
        message.contains("bad value for `logger.timezone`"),
        "{message}"
    );
    assert!(message.contains("Europe/Pariss"), "{message}");
    assert!(from_yaml("logger:\n  timezone: America/New_York\n").is_ok());
}

#[test]
fn the_logger_meter_is_twelve_digits_and_max_meters_at_least_one() {
    for (yaml, key) in [
        ("logger:\n  meter: '0228'\n", "logger.meter"),
        ("logger:\n  meter: ../etc\n", "logger.meter"),
        ("logger:\n  max_meters: 0\n", "logger.max_meters"),
    ] {
        let message = error_of(from_yaml(yaml));
        assert!(
            message.contains(&format!("bad value for `{key}`")),
            "{yaml}: {message}"
        );
    }
    let config = from_yaml("logger:\n  meter: '021728123456'\n  max_meters: 2\n").unwrap();
    assert_eq!(config.logger.max_meters, 2);
}

#[test]
fn europe_paris_is_in_the_bundled_zone_database() {
    // The binary must work in a minimal image without /usr/share/zoneinfo.
    let bundled = jiff::tz::TimeZoneDatabase::bundled();
    assert!(bundled.get("Europe/Paris").is_ok());
}

#[test]
fn validation_names_the_key_and_the_file_it_came_from() {
    in_temp_dir(|jail| {
        jail.create_file("c.yaml", "logger:\n  frames_per_line: 0\n")
            .unwrap();
        let message = error_of(from_file("c.yaml"));
        assert!(
            message.contains("bad value for `logger.frames_per_line` in c.yaml"),
            "{message}"
        );
    });
}

#[test]
fn values_out_of_range_are_errors_naming_the_key() {
    for (yaml, key) in [
        ("mqtt:\n  port: 0\n", "mqtt.port"),
        ("meter:\n  replay_speed: -1\n", "meter.replay_speed"),
        ("meter:\n  simulate_speed: 0\n", "meter.simulate_speed"),
        ("meter:\n  voltage: 99\n", "meter.voltage"),
        ("meter:\n  voltage: 401\n", "meter.voltage"),
        ("meter:\n  port: 'replay:'\n", "meter.port"),
        ("mqtt:\n  base_topic: linky/#\n", "mqtt.base_topic"),
        ("mqtt:\n  base_topic: a+b\n", "mqtt.base_topic"),
        ("mqtt:\n  base_topic: /linky\n", "mqtt.base_topic"),
        ("mqtt:\n  base_topic: linky/\n", "mqtt.base_topic"),
        ("mqtt:\n  discovery_prefix: ''\n", "mqtt.discovery_prefix"),
        ("mqtt:\n  client_cert: c.pem\n", "mqtt.client_cert"),
        ("logger:\n  prices: {H-N: 0.1}\n", "logger.prices.H-N"),
        ("logger:\n  prices: {HX: 0.1}\n", "logger.prices.HX"),
        (
            "logger:\n  prices: {HN: 0.1, hn: 0.2}\n",
            "logger.prices.hn",
        ),
        ("logger:\n  currency: ''\n", "logger.currency"),
        ("prices:\n  currency: ''\n", "prices.currency"),
        (
            "prices:\n  sets:\n    - {from: 2026-02-01, kwh: {hx: 0.1}}\n",
            "prices.sets.0.kwh.hx",
        ),
        (
            "prices:\n  sets:\n    - {from: 2026-02-01, kwh: {HN: 0.1}}\n",
            "prices.sets.0.kwh.HN",
        ),
        (
            "prices:\n  sets:\n    - {from: 2026-02-01, kwh: {hn: .nan}}\n",
            "prices.sets.0.kwh.hn",
        ),
        (
            "prices:\n  sets:\n    - {from: 2026-02-01, kwh: {hn: .inf}}\n",
            "prices.sets.0.kwh.hn",
        ),
        (
            "prices:\n  sets:\n    - {from: 2026-02-01, subscription_per_day: -1}\n",
            "prices.sets.0.subscription_per_day",
        ),
        (
            "prices:\n  sets:\n    - {from: 2026-02-01, subscription_per_month: -1}\n",
            "prices.sets.0.subscription_per_month",
        ),
        (
            "prices:\n  sets:\n    - {from: 2026-02-01, subscription_per_day: 1, \
             subscription_per_month: 30}\n",
            "prices.sets.0.subscription_per_month",
        ),
        (
            "prices:\n  sets:\n    - {from: 2026-08-01}\n    - {from: 2026-02-01}\n    \
             - {from: 2026-08-01}\n",
            "prices.sets.2.from",
        ),
        (
            "prices:\n  sets:\n    - {from: 2026-02-30}\n",
            "prices.sets.0.from",
        ),
        (
            "prices:\n  sets:\n    - {from: 1/2/2026}\n",
            "prices.sets.0.from",
        ),
        (
            "prices:\n  sets:\n    - {from: 2026}\n",
            "prices.sets.0.from",
        ),
        ("prices:\n  sets:\n    - {kwh: {hn: 1}}\n", "prices.sets.0"),
        (
            "logger:\n  prices: {HN: 0.1}\nprices:\n  sets:\n    - {from: 2026-02-01}\n",
            "logger.prices",
        ),
        (
            "logger:\n  subscription_per_day: 1\nprices:\n  sets:\n    - {from: 2026-02-01}\n",
            "logger.subscription_per_day",
        ),
        (
            "logger:\n  currency: CHF\nprices:\n  sets:\n    - {from: 2026-02-01}\n",
            "logger.currency",
        ),
        ("logger:\n  prices: {HN: -0.1}\n", "logger.prices.HN"),
        (
            "logger:\n  subscription_per_day: -1\n",
            "logger.subscription_per_day",
        ),
        ("led:\n  gpio: 17\nrelay:\n  gpio: 17\n", "relay.gpio"),
        ("mqtt:\n  embedded_bind: localhost\n", "mqtt.embedded_bind"),
        ("mqtt:\n  embedded_broker: true\n  tls: true\n", "mqtt.tls"),
        (
            "mqtt:\n  embedded_broker: true\n  embedded_port_v5: 1883\n",
            "mqtt.embedded_port_v5",
        ),
        (
            "mqtt:\n  embedded_broker: true\n  port: 65535\n",
            "mqtt.embedded_port_v5",
        ),
    ] {
        let message = error_of(from_yaml(yaml));
        assert!(
            message.contains(&format!("bad value for `{key}`")),
            "{yaml}: {message}"
        );
    }
    assert!(from_yaml("mqtt:\n  base_topic: home/linky\n").is_ok());
}

#[test]
fn the_embedded_broker_is_refused_only_by_a_build_without_it() {
    let result = from_yaml("mqtt:\n  embedded_broker: true\n  embedded_bind: '::'\n");
    if cfg!(feature = "embedded-broker") {
        let mqtt = result.unwrap().mqtt;
        assert!(mqtt.embedded_broker);
        // The logger's MQTT 5 listener: the next port unless set.
        assert_eq!(mqtt.embedded_v5_port(), 1884);
        let mqtt = from_yaml("mqtt:\n  port: 2000\n  embedded_port_v5: 1999\n")
            .unwrap()
            .mqtt;
        assert_eq!(mqtt.embedded_v5_port(), 1999);
    } else {
        let message = error_of(result);
        assert!(
            message.contains("bad value for `mqtt.embedded_broker`"),
            "{message}"
        );
        assert!(message.contains("embedded-broker"), "{message}");
    }
}

#[test]
fn price_sets_are_read_and_sorted_by_date() {
    let config = from_yaml(
        "prices:\n  currency: CHF\n  sets:\n    - from: 2026-08-01\n      kwh: {hn: 0.2, pm: 0.8}\n      \
         subscription_per_month: 14.1\n    - from: 2026-02-01\n      kwh: {hn: 0.1386}\n      \
         subscription_per_day: 0.45\n",
    )
    .unwrap();
    assert_eq!(config.prices.currency, "CHF");
    let dates: Vec<String> = config
        .prices
        .sets
        .iter()
        .map(|s| s.from.to_string())
        .collect();
    assert_eq!(dates, ["2026-02-01", "2026-08-01"]);
    assert_eq!(config.prices.sets[0].subscription_per_day, Some(0.45));
    assert_eq!(config.prices.sets[1].subscription_per_month, Some(14.1));
    assert_eq!(config.prices.sets[1].kwh.get("pm"), Some(&0.8));
}

#[test]
fn price_sets_can_come_from_the_environment() {
    with_clean_env(|jail| {
        jail.set_env("LINKYMON_PRICES__CURRENCY", "CHF");
        jail.set_env(
            "LINKYMON_PRICES__SETS",
            "[{from=2026-02-01,kwh={hn=0.1386,pm=0.7524},subscription_per_day=0.45}]",
        );
        let config = from_env().unwrap();
        assert_eq!(config.prices.currency, "CHF");
        assert_eq!(config.prices.sets.len(), 1);
        assert_eq!(config.prices.sets[0].from, jiff::civil::date(2026, 2, 1));
        assert_eq!(config.prices.sets[0].kwh.get("pm"), Some(&0.7524));
    });
}

#[test]
fn the_deprecated_logger_prices_become_one_set_from_the_beginning_of_time() {
    let config = from_yaml(
        "logger:\n  prices: {HN: 0.1386, pm: 0.7524}\n  subscription_per_day: 0.45\n  \
         currency: CHF\n",
    )
    .unwrap();
    assert_eq!(config.logger.prices, None);
    assert_eq!(config.logger.currency, None);
    assert_eq!(config.logger.subscription_per_day, None);
    assert_eq!(config.prices.currency, "CHF");
    let kwh = BTreeMap::from([("hn".to_owned(), 0.1386), ("pm".to_owned(), 0.7524)]);
    assert_eq!(config.prices.sets, [PriceSet::always(kwh, Some(0.45))]);
    let prices = crate::prices::Prices::new(&config.prices);
    let long_ago = jiff::civil::date(1900, 1, 1);
    assert_eq!(prices.kwh_price(long_ago, "PM"), Some(0.7524));
    assert_eq!(prices.subscription_for_day(long_ago), 0.45);
    // What the old example had (no price, no subscription) makes no set: costs stay unknown.
    let config =
        from_yaml("logger:\n  prices: {}\n  subscription_per_day: 0.0\n  currency: EUR\n").unwrap();
    assert!(config.prices.sets.is_empty());
}

#[test]
fn deprecated_price_keys_draw_one_warning_line_naming_them() {
    with_clean_env(|jail| {
        jail.create_file(
            "old.yaml",
            "logger:\n  prices: {HN: 0.1}\n  currency: EUR\n",
        )
        .unwrap();
        let (config, warnings) = Config::load_with_warnings(Some(Path::new("old.yaml"))).unwrap();
        assert_eq!(config.prices.sets.len(), 1);
        assert_eq!(warnings.len(), 1, "{warnings:?}");
        assert!(
            warnings[0].contains("`logger.prices`, `logger.currency` are deprecated"),
            "{}",
            warnings[0]
        );
        assert!(warnings[0].contains("prices:"), "{}", warnings[0]);
        jail.create_file("new.yaml", "prices:\n  sets:\n    - {from: 2026-02-01}\n")
            .unwrap();
        let (_, warnings) = Config::load_with_warnings(Some(Path::new("new.yaml"))).unwrap();
        assert!(warnings.is_empty(), "{warnings:?}");
    });
}

#[test]
fn a_bad_price_set_names_the_file_it_came_from() {
    with_clean_env(|jail| {
        jail.create_file(
            "c.yaml",
            "prices:\n  sets:\n    - from: 2026-02-01\n      kwh: {hx: 1}\n",
        )
        .unwrap();
        let message = error_of(from_file("c.yaml"));
        assert!(
            message.contains("bad value for `prices.sets.0.kwh.hx`"),
            "{message}"
        );
        assert!(message.contains("hcjb"), "lists the periods: {message}");
        jail.create_file("d.yaml", "prices:\n  sets:\n    - from: 2026-13-01\n")
            .unwrap();
        let message = error_of(from_file("d.yaml"));
        assert!(
            message.contains("`prices.sets.0.from` in d.yaml"),
            "{message}"
        );
        assert!(message.contains("YYYY-MM-DD"), "{message}");
    });
}

#[test]
fn the_port_spec_reads_and_writes_the_same_string() {
    for (written, parsed) in [
        ("/dev/ttyUSB0", PortSpec::Serial("/dev/ttyUSB0".into())),
        ("replay:caps/a.tic", PortSpec::Replay("caps/a.tic".into())),
        ("simulate", PortSpec::Simulate),
    ] {
        let config = from_yaml(&format!("meter:\n  port: {written}\n")).unwrap();
        assert_eq!(config.meter.port, parsed);
        assert_eq!(config.meter.port.to_string(), written);
    }
}

#[test]
fn empty_documents_and_empty_sections_mean_defaults() {
    assert_eq!(from_yaml("").unwrap(), Config::default());
    assert_eq!(from_yaml("# nothing\n").unwrap(), Config::default());
    assert_eq!(
        from_yaml("relay:\n  # gpio: 17\n").unwrap(),
        Config::default()
    );
}

#[test]
fn a_key_written_twice_is_an_error() {
    let message = error_of(from_yaml("mqtt:\n  host: a\n  host: b\n"));
    assert!(
        message.contains("`mqtt.host` is written twice"),
        "{message}"
    );
}

#[test]
fn a_yaml_syntax_error_names_the_file_and_line() {
    in_temp_dir(|jail| {
        jail.create_file("broken.yaml", "mqtt:\n  host: [\n")
            .unwrap();
        let message = error_of(from_file("broken.yaml"));
        assert!(message.contains("broken.yaml"), "{message}");
        assert!(message.contains("line"), "{message}");
    });
}

#[test]
fn every_error_is_one_line() {
    for result in [
        from_yaml("mqtt:\n  hots: x\n"),
        from_yaml("meter:\n  mode: x\n"),
        from_yaml("mqtt:\n  host: [\n"),
        from_yaml("meter:\n  voltage: 1\n"),
    ] {
        let message = error_of(result);
        assert!(!message.contains('\n'), "{message}");
    }
}

const EXAMPLE: &str = include_str!("../../config.example.yaml");

#[test]
fn the_example_config_parses_to_exactly_the_defaults() {
    assert_eq!(from_yaml(EXAMPLE).unwrap(), Config::default());
}

/// Leaf paths of a YAML tree, in document order; maps and lists that are empty or hold
/// values (prices, states) count as leaves.
fn leaf_paths(value: &serde_norway::Value, prefix: &str, out: &mut Vec<String>) {
    match value {
        serde_norway::Value::Mapping(map) if !prefix.contains('.') => {
            for (key, child) in map {
                let key = key.as_str().unwrap_or_default();
                leaf_paths(child, &join_key(prefix, key), out);
            }
        }
        _ => out.push(prefix.to_string()),
    }
}

#[test]
fn the_example_config_lists_every_key_in_the_struct_order() {
    let mut documented = Vec::new();
    leaf_paths(
        &serde_norway::from_str(EXAMPLE).unwrap(),
        "",
        &mut documented,
    );
    let mut expected = Vec::new();
    leaf_paths(
        &serde_norway::to_value(Config::default()).unwrap(),
        "",
        &mut expected,
    );
    assert_eq!(documented, expected);
    assert_eq!(expected.len(), 53);
}

/// A deserializer that feeds `Config::deserialize` placeholder values and records the key
/// paths at which a field asks for a string: the set `TEXT_KEYS` must match.
mod probe {
    use super::super::join_key;
    use serde::de::value::{Error, MapDeserializer, SeqDeserializer, StrDeserializer};
    use serde::de::{self, IntoDeserializer, Visitor};
    use std::cell::RefCell;

    pub struct Probe<'a> {
        pub path: String,
        pub text_keys: &'a RefCell<Vec<String>>,
    }

    impl<'de> de::Deserializer<'de> for Probe<'_> {
        type Error = Error;

        fn deserialize_any<V: Visitor<'de>>(self, v: V) -> Result<V::Value, Error> {
            v.visit_u64(0)
        }
        fn deserialize_bool<V: Visitor<'de>>(self, v: V) -> Result<V::Value, Error> {
            v.visit_bool(false)
        }
        fn deserialize_f64<V: Visitor<'de>>(self, v: V) -> Result<V::Value, Error> {
            v.visit_f64(0.0)
        }
        fn deserialize_str<V: Visitor<'de>>(self, v: V) -> Result<V::Value, Error> {
            self.text_keys.borrow_mut().push(self.path);
            v.visit_str("0")
        }
        fn deserialize_string<V: Visitor<'de>>(self, v: V) -> Result<V::Value, Error> {
            self.deserialize_str(v)
        }
        fn deserialize_option<V: Visitor<'de>>(self, v: V) -> Result<V::Value, Error> {
            v.visit_some(self)
        }
        fn deserialize_seq<V: Visitor<'de>>(self, v: V) -> Result<V::Value, Error> {
            v.visit_seq(SeqDeserializer::new(std::iter::empty::<u8>()))
        }
        fn deserialize_map<V: Visitor<'de>>(self, v: V) -> Result<V::Value, Error> {
            v.visit_map(MapDeserializer::new(std::iter::empty::<(String, u8)>()))
        }
        fn deserialize_newtype_struct<V: Visitor<'de>>(
            self,
            _: &'static str,
            v: V,
        ) -> Result<V::Value, Error> {
            v.visit_newtype_struct(self)
        }
        fn deserialize_enum<V: Visitor<'de>>(
            self,
            _: &'static str,
            variants: &'static [&'static str],
            v: V,
        ) -> Result<V::Value, Error> {
            let first: StrDeserializer<'_, Error> = variants[0].into_deserializer();
            v.visit_enum(first)
        }
        fn deserialize_struct<V: Visitor<'de>>(
            self,
            _: &'static str,
            fields: &'static [&'static str],
            v: V,
        ) -> Result<V::Value, Error> {
            v.visit_map(Fields {
                fields: fields.iter(),
                current: String::new(),
                probe: self,
            })
        }
        serde::forward_to_deserialize_any! {
            i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 char bytes byte_buf unit
            unit_struct tuple tuple_struct identifier ignored_any
        }
    }

    struct Fields<'a> {
        fields: std::slice::Iter<'static, &'static str>,
        current: String,
        probe: Probe<'a>,
    }

    impl<'de> de::MapAccess<'de> for Fields<'_> {
        type Error = Error;

        fn next_key_seed<K: de::DeserializeSeed<'de>>(
            &mut self,
            seed: K,
        ) -> Result<Option<K::Value>, Error> {
            let Some(field) = self.fields.next() else {
                return Ok(None);
            };
            self.current = join_key(&self.probe.path, field);
            let key: StrDeserializer<'_, Error> = field.into_deserializer();
            seed.deserialize(key).map(Some)
        }

        fn next_value_seed<V: de::DeserializeSeed<'de>>(
            &mut self,
            seed: V,
        ) -> Result<V::Value, Error> {
            seed.deserialize(Probe {
                path: self.current.clone(),
                text_keys: self.probe.text_keys,
            })
        }
    }
}

#[test]
fn text_keys_are_exactly_the_fields_that_read_a_string() {
    let found = std::cell::RefCell::new(Vec::new());
    let probe = probe::Probe {
        path: String::new(),
        text_keys: &found,
    };
    Config::deserialize(probe).unwrap();
    assert_eq!(found.into_inner(), TEXT_KEYS);
}

#[test]
fn topic_prefixes_that_would_make_every_publish_fail_are_refused() {
    let long = format!("mqtt:\n  base_topic: {}\n", "a".repeat(65_535));
    for (yaml, key, says) in [
        (
            "mqtt:\n  base_topic: \"a//b\"\n",
            "mqtt.base_topic",
            "empty level",
        ),
        (
            "mqtt:\n  base_topic: /linky\n",
            "mqtt.base_topic",
            "start or end",
        ),
        (
            "mqtt:\n  base_topic: linky/\n",
            "mqtt.base_topic",
            "start or end",
        ),
        (
            "mqtt:\n  base_topic: \"li+nky\"\n",
            "mqtt.base_topic",
            "wildcard",
        ),
        (
            "mqtt:\n  base_topic: \"$SYS/x\"\n",
            "mqtt.base_topic",
            "`$`",
        ),
        ("mqtt:\n  base_topic: \"a\\0b\"\n", "mqtt.base_topic", "NUL"),
        (
            "mqtt:\n  discovery_prefix: \"ha//x\"\n",
            "mqtt.discovery_prefix",
            "empty level",
        ),
        (
            "mqtt:\n  discovery_prefix: \"$ha\"\n",
            "mqtt.discovery_prefix",
            "`$`",
        ),
        (long.as_str(), "mqtt.base_topic", "65535"),
        ("mqtt:\n  host: \"a\\0b\"\n", "mqtt.host", "NUL"),
        ("mqtt:\n  client_id: \"a\\0b\"\n", "mqtt.client_id", "NUL"),
        ("mqtt:\n  spool_max: 0\n", "mqtt.spool_max", "positive size"),
    ] {
        let message = error_of(from_yaml(yaml));
        assert!(message.contains(&format!("`{key}`")), "{message}");
        assert!(message.contains(says), "{message}");
    }
    let at_cap = format!("mqtt:\n  client_id: {}\n", "c".repeat(256));
    assert!(from_yaml(&at_cap).is_ok());
    let over = format!("mqtt:\n  client_id: {}\n", "c".repeat(257));
    let message = error_of(from_yaml(&over));
    assert!(message.contains("`mqtt.client_id`"), "{message}");
    assert!(message.contains("257 bytes"), "{message}");
    assert!(from_yaml("mqtt:\n  base_topic: home/linky\n").is_ok());
}

#[test]
fn a_voltage_beyond_a_u16_gives_the_voltage_range() {
    let message = error_of(from_yaml("meter:\n  voltage: 100000\n"));
    assert!(message.contains("`meter.voltage`"), "{message}");
    assert!(message.contains("from 100 to 400"), "{message}");
    assert!(!message.contains("65535"), "{message}");
}

#[test]
fn a_negative_spool_max_asks_for_a_positive_size() {
    for yaml in ["mqtt:\n  spool_max: -5\n", "mqtt:\n  spool_max: -5MiB\n"] {
        let message = error_of(from_yaml(yaml));
        assert!(message.contains("`mqtt.spool_max`"), "{message}");
        assert!(message.contains("must be a positive size"), "{message}");
        assert!(!message.contains("overflow"), "{message}");
    }
}

#[test]
fn a_bad_list_from_the_environment_names_the_variable_that_was_set() {
    with_clean_env(|jail| {
        jail.set_env("LINKYMON_LED__STATES", "[x]");
        let message = error_of(from_env());
        assert!(message.contains("from LINKYMON_LED__STATES:"), "{message}");
        assert!(!message.contains("__0"), "{message}");
    });
}

#[test]
fn a_bad_price_from_the_environment_names_its_variable() {
    for (value, says) in [("abc", "expected a number"), ("-1", "must be 0 or more")] {
        with_clean_env(|jail| {
            jail.set_env("LINKYMON_LOGGER__PRICES__HN", value);
            let message = error_of(from_env());
            assert!(
                message.contains("from LINKYMON_LOGGER__PRICES__HN"),
                "{value}: {message}"
            );
            assert!(message.contains(says), "{message}");
        });
    }
    with_clean_env(|jail| {
        jail.create_file("c.yaml", "logger:\n  prices:\n    hn: -1\n")
            .unwrap();
        let message = error_of(from_file("c.yaml"));
        assert!(message.contains("in c.yaml"), "{message}");
    });
}

#[test]
fn config_and_password_files_must_be_small_regular_files() {
    with_clean_env(|jail| {
        let dir = jail.directory().to_path_buf();
        let big = dir.join("big.yaml");
        std::fs::write(&big, vec![b'#'; 1024 * 1024 + 1]).unwrap();
        for (path, says) in [
            (Path::new("/dev/zero"), "not a regular file"),
            (dir.as_path(), "not a regular file"),
            (big.as_path(), "1048577 bytes"),
        ] {
            let message = error_of(Config::load(Some(path)));
            assert!(message.contains(&path.display().to_string()), "{message}");
            assert!(message.contains(says), "{message}");
            let yaml = format!("mqtt:\n  password_file: {}\n", path.display());
            let message = error_of(from_yaml(&yaml));
            assert!(message.contains("`mqtt.password_file`"), "{message}");
            assert!(message.contains(says), "{message}");
        }
    });
}

#[test]
fn a_share_group_with_file_logs_is_refused_in_one_line() {
    let message = error_of(from_yaml(
        "logger:\n  database: postgres://u@db/linky\n  share_group: fleet\n",
    ));
    assert!(message.contains("`logger.share_group`"), "{message}");
    assert!(message.contains("logger.files: false"), "{message}");
    assert!(!message.contains('\n'), "{message}");
    let message = error_of(from_yaml("logger:\n  share_group: fleet\n  files: false\n"));
    assert!(message.contains("needs `logger.database`"), "{message}");
    let config = from_yaml(
        "logger:\n  database: postgres://u@db/linky\n  share_group: fleet\n  files: false\n",
    )
    .unwrap();
    assert_eq!(config.logger.share_group.as_deref(), Some("fleet"));
}

#[test]
fn the_database_url_is_checked_and_never_shown() {
    let message = error_of(from_yaml("logger:\n  database: 'mysql://x:hunter2@h/db'\n"));
    assert!(message.contains("`logger.database`"), "{message}");
    assert!(!message.contains("hunter2"), "{message}");
    let config = from_yaml("logger:\n  database: 'postgres://u:hunter2@db/linky'\n").unwrap();
    let debug = format!("{config:?}");
    assert!(!debug.contains("hunter2"), "{debug}");
    let message = error_of(from_yaml("logger:\n  files: false\n"));
    assert!(message.contains("would keep nothing"), "{message}");
}

#[test]
fn database_password_file_supplies_the_password() {
    in_temp_dir(|jail| {
        jail.create_file("pg", "s3cret\n").unwrap();
        let config =
            from_yaml("logger:\n  database: postgres://u@db/linky\n  database_password_file: pg\n")
                .unwrap();
        assert_eq!(config.logger.database_password, Some(Secret::new("s3cret")));
        let settings = crate::logger::database::Settings::from_config(&config).unwrap();
        assert_eq!(settings.config.get_password(), Some(&b"s3cret"[..]));
        let message = error_of(from_yaml(
            "logger:\n  database: postgres://u:x@db/linky\n  database_password_file: pg\n",
        ));
        assert!(message.contains("already holds a password"), "{message}");
    });
}
