//! The one configuration tree: every setting linkymon reads, where it comes from, and what is valid.
//!
//! Sources, later ones winning: the built-in defaults (the `Default` impls below, and nowhere
//! else), then one YAML file, then `LINKYMON_*` environment variables with `__` between levels
//! (`LINKYMON_MQTT__HOST=broker.lan`). The file is `-c FILE` when given, else `$LINKYMON_CONFIG`,
//! else `/etc/linkymon/config.yaml` if it exists; without any, the defaults stand.
//!
//! This module owns parsing, defaults and validation, and turns every mistake a user can make into
//! a one-line [`ConfigError`] naming the key and where it was written. It does not decide what
//! the settings do: each subsystem reads its own section.
//!
//! Two readers replace figment's stock ones, for one reason: a value meant as text must keep the
//! spelling the user wrote. figment's environment provider turns `0123` into the number 123 and
//! its YAML provider reads `1.50` as the float 1.5, so a password or a meter id would silently
//! change. [`Yaml`] and [`Environment`] hand the keys listed in `TEXT_KEYS` over verbatim and parse
//! everything else as figment does.

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use figment::providers::Format;
use figment::value::{Dict, Empty, Map, Value};
use figment::{Figment, Metadata, Profile, Provider, Source};
use serde::de::{self, DeserializeOwned, DeserializeSeed, Deserializer, Visitor};
use serde::{Deserialize, Serialize};

/// The file read when neither `-c` nor `LINKYMON_CONFIG` names one (and only if it exists).
pub const SYSTEM_CONFIG_PATH: &str = "/etc/linkymon/config.yaml";

/// The environment variable that names the config file when `-c` is not given.
pub const CONFIG_PATH_VAR: &str = "LINKYMON_CONFIG";

/// The prefix of the environment variables that override file settings.
pub const ENV_PREFIX: &str = "LINKYMON_";

/// Keys whose value is text (strings, paths, durations, the port spec): the file and environment
/// readers pass them on exactly as written, so `password: 0123` stays `"0123"` and `interval: 0`
/// reaches the duration parser as `"0"`. A test checks that this is exactly the set of fields
/// whose deserializer asks for a string, so a new text field cannot be forgotten here.
const TEXT_KEYS: &[&str] = &[
    "meter.port",
    "mqtt.host",
    "mqtt.username",
    "mqtt.password",
    "mqtt.password_file",
    "mqtt.ca_file",
    "mqtt.client_cert",
    "mqtt.client_key",
    "mqtt.client_id",
    "mqtt.base_topic",
    "mqtt.discovery_prefix",
    "mqtt.embedded_bind",
    "mqtt.spool_dir",
    "publish.interval",
    "display.png_path",
    "relay.debounce",
    "logger.dir",
    "logger.pages_dir",
    "logger.timezone",
    "logger.meter",
    "logger.pages_interval",
    "logger.currency",
];

/// The name figment shows for the environment provider; also how errors recognise it.
const ENV_SOURCE_NAME: &str = "environment variable";

// ---------------------------------------------------------------------------------------------
// The tree
// ---------------------------------------------------------------------------------------------

/// Everything linkymon can be told, one section per subsystem.
///
/// Every section is `#[serde(default)]`, so a file only lists what it changes, and
/// `deny_unknown_fields`, so a misspelt key is an error instead of a silently ignored setting.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// Where the TIC bytes come from and how to read them.
    pub meter: MeterConfig,
    /// The broker connection, topics and offline spool.
    pub mqtt: MqttConfig,
    /// How often unchanged values are re-sent.
    pub publish: PublishConfig,
    /// The OLED screen or its PNG stand-in.
    pub display: DisplayConfig,
    /// The EJP LED.
    pub led: LedConfig,
    /// The meter's relay contact, read on a GPIO input.
    pub relay: RelayConfig,
    /// The logging sidecar: daily logs, pages and prices.
    pub logger: LoggerConfig,
}

/// `meter:` — the TIC source.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct MeterConfig {
    /// A serial device, `replay:PATH` or `simulate`; see [`PortSpec`].
    pub port: PortSpec,
    /// Which TIC mode to expect; `auto` tries both baud rates.
    pub mode: MeterMode,
    /// Replay pacing: 1.0 = the real baud rate, 0 = as fast as consumers take it.
    pub replay_speed: f64,
    /// Simulated seconds per real second, so a demo shows a day of changes in minutes.
    pub simulate_speed: f64,
    /// Mains voltage in volts, for the historic-mode injection estimate (`IINST × voltage`).
    pub voltage: u16,
}

impl Default for MeterConfig {
    fn default() -> Self {
        MeterConfig {
            port: PortSpec::Serial(PathBuf::from("/dev/ttyAMA0")),
            mode: MeterMode::Auto,
            replay_speed: 1.0,
            simulate_speed: 60.0,
            voltage: 230,
        }
    }
}

/// `mqtt:` — the broker, what is published under which topics, and the offline spool.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct MqttConfig {
    /// Broker host name or address.
    pub host: String,
    /// Broker TCP port (1..65535).
    pub port: u16,
    /// User name, if the broker wants one.
    pub username: Option<String>,
    /// Password, if the broker wants one. After loading, also holds the password read from
    /// [`password_file`](Self::password_file).
    pub password: Option<Secret>,
    /// A file holding the password (trailing newline ignored), so it can live outside the
    /// config, e.g. as a container secret. Exclusive with `password`.
    pub password_file: Option<PathBuf>,
    /// Connect with TLS (rustls).
    pub tls: bool,
    /// CA certificate(s) in PEM to trust instead of the system roots.
    pub ca_file: Option<PathBuf>,
    /// Client certificate in PEM, for brokers that authenticate clients by certificate.
    pub client_cert: Option<PathBuf>,
    /// The private key of `client_cert`, in PEM.
    pub client_key: Option<PathBuf>,
    /// Check that the broker's certificate names `host`; turn off only for a broker reached by
    /// an address its certificate does not list.
    pub tls_server_name_check: bool,
    /// MQTT client id; `None` means `linkymon-<meter id>`.
    pub client_id: Option<String>,
    /// First level of every topic: `<base_topic>/<meter id>/...`.
    pub base_topic: String,
    /// Publish Home Assistant discovery configs.
    pub discovery: bool,
    /// Home Assistant's discovery prefix.
    pub discovery_prefix: String,
    /// Run an MQTT broker in-process, so no external broker is needed.
    pub embedded_broker: bool,
    /// The address the embedded broker listens on (loopback by default: no open port by surprise).
    pub embedded_bind: String,
    /// Where `state` messages wait on disk while the broker is unreachable.
    pub spool_dir: PathBuf,
    /// The spool's size limit in bytes (written `64MiB` etc.); the oldest messages go first.
    #[serde(with = "byte_size")]
    pub spool_max: u64,
}

impl Default for MqttConfig {
    fn default() -> Self {
        MqttConfig {
            host: "localhost".into(),
            port: 1883,
            username: None,
            password: None,
            password_file: None,
            tls: false,
            ca_file: None,
            client_cert: None,
            client_key: None,
            tls_server_name_check: true,
            client_id: None,
            base_topic: "linky".into(),
            discovery: true,
            discovery_prefix: "homeassistant".into(),
            embedded_broker: false,
            embedded_bind: "127.0.0.1".into(),
            spool_dir: PathBuf::from("./linkymon-data/spool"),
            spool_max: 64 * 1024 * 1024,
        }
    }
}

/// `publish:` — throttling.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PublishConfig {
    /// Numeric values unchanged in kind are re-sent at most this often; zero = every frame.
    #[serde(with = "humantime_serde")]
    pub interval: Duration,
}

impl Default for PublishConfig {
    fn default() -> Self {
        PublishConfig {
            interval: Duration::from_secs(10),
        }
    }
}

/// `display:` — the screen.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DisplayConfig {
    /// Which screen to drive.
    pub driver: DisplayDriver,
    /// Where the `png` driver writes the virtual screen.
    pub png_path: PathBuf,
    /// I²C bus number of the SSD1306 (`/dev/i2c-N`).
    pub i2c_bus: u8,
    /// I²C address of the SSD1306 (0x3C = 60 on most boards, some use 0x3D).
    pub i2c_address: u8,
}

impl Default for DisplayConfig {
    fn default() -> Self {
        DisplayConfig {
            driver: DisplayDriver::None,
            png_path: PathBuf::from("./linkymon-data/screen.png"),
            i2c_bus: 1,
            i2c_address: 0x3C,
        }
    }
}

/// `led:` — the EJP indicator.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LedConfig {
    /// BCM pin number; `None` = no LED.
    pub gpio: Option<u8>,
    /// The LED lights when the pin is low (wired to 3.3 V through the LED).
    pub active_low: bool,
    /// Which conditions light the LED.
    pub states: Vec<LedState>,
}

impl Default for LedConfig {
    fn default() -> Self {
        LedConfig {
            gpio: None,
            active_low: false,
            states: vec![LedState::EjpPeak, LedState::EjpNotice],
        }
    }
}

/// `relay:` — the meter's relay contact, read on a GPIO input.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RelayConfig {
    /// BCM pin number; `None` = not wired.
    pub gpio: Option<u8>,
    /// The input's pull resistor.
    pub pull: Pull,
    /// How long the input must hold a level before it counts (contacts bounce).
    #[serde(with = "humantime_serde")]
    pub debounce: Duration,
    /// The contact is closed when the pin reads low (the usual pull-up wiring).
    pub active_low: bool,
    /// The contact closed counts as an EJP peak for the LED and the screen, besides what the
    /// TIC says: for a contact the supplier programmed for EJP peaks, and for the hours when
    /// the TIC line is silent. Turn it off when the contact switches something else (off-peak
    /// hours): it is then only published.
    pub use_for_ejp: bool,
}

impl Default for RelayConfig {
    fn default() -> Self {
        RelayConfig {
            gpio: None,
            pull: Pull::Up,
            debounce: Duration::from_millis(50),
            active_low: true,
            use_for_ejp: true,
        }
    }
}

/// `logger:` — the sidecar's daily logs and pages.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LoggerConfig {
    /// Where `YYYY-MM-DD.log` files go.
    pub dir: PathBuf,
    /// Where the HTML pages go.
    pub pages_dir: PathBuf,
    /// One log line per this many frames (the Perl tool's N); at least 1.
    pub frames_per_line: u32,
    /// IANA zone that decides where a day starts and ends.
    pub timezone: String,
    /// Price per kWh by period code (`HN`, `PM`, ...). Codes are stored upper-case because
    /// environment variable names lose their case.
    pub prices: BTreeMap<String, f64>,
    /// Log only this meter id; `None` = every meter seen on the broker.
    pub meter: Option<String>,
    /// How often the pages are rebuilt.
    #[serde(with = "humantime_serde")]
    pub pages_interval: Duration,
    /// Currency code shown next to costs.
    pub currency: String,
    /// Fixed subscription cost per day, added to each day's cost.
    pub subscription_per_day: f64,
}

impl Default for LoggerConfig {
    fn default() -> Self {
        LoggerConfig {
            dir: PathBuf::from("./linkymon-data/logs"),
            pages_dir: PathBuf::from("./linkymon-data/pages"),
            frames_per_line: 8,
            timezone: "Europe/Paris".into(),
            prices: BTreeMap::new(),
            meter: None,
            pages_interval: Duration::from_secs(5 * 60),
            currency: "EUR".into(),
            subscription_per_day: 0.0,
        }
    }
}

impl LoggerConfig {
    /// The configured zone, ready for date arithmetic. Loading already checked that it exists,
    /// so an error here means the zone database changed under a running process.
    pub fn time_zone(&self) -> Result<jiff::tz::TimeZone, ConfigError> {
        jiff::tz::TimeZone::get(&self.timezone).map_err(|_| {
            bad_value(
                "logger.timezone",
                format!(
                    "`{}` is not a known time zone; use an IANA name like Europe/Paris",
                    self.timezone
                ),
            )
        })
    }
}

/// `meter.mode`: which TIC framing to expect.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum MeterMode {
    /// Try both and keep the one whose frames check out.
    Auto,
    /// Historic TIC: 1200 baud 7E1.
    Historic,
    /// Standard TIC: 9600 baud 7E1.
    Standard,
}

/// `display.driver`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DisplayDriver {
    /// No screen.
    None,
    /// An SSD1306 128×64 OLED over I²C.
    Ssd1306,
    /// A virtual screen written to `display.png_path`.
    Png,
}

/// An entry of `led.states`: a condition that lights the LED.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LedState {
    /// During an EJP peak period: steady.
    EjpPeak,
    /// While an EJP peak is announced but not started: blinking.
    EjpNotice,
    /// On a Tempo red day: steady.
    TempoRedToday,
    /// When tomorrow is a Tempo red day: blinking, like a notice.
    TempoRedTomorrow,
}

/// `relay.pull`: the GPIO input's pull resistor.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Pull {
    /// No pull resistor (the circuit provides one).
    None,
    /// Pull-up.
    Up,
    /// Pull-down.
    Down,
}

/// `meter.port`, parsed: the string users write, as the variant the code needs.
///
/// It reads and writes as the same string (`/dev/ttyAMA0`, `replay:PATH`, `simulate`), so the
/// file format stays what the contract says while no other module parses it again.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub enum PortSpec {
    /// A serial device such as `/dev/ttyAMA0` or `/dev/ttyUSB0`.
    Serial(PathBuf),
    /// `replay:PATH`: a raw capture played back.
    Replay(PathBuf),
    /// `simulate`: a simulated meter, for demos and tests.
    Simulate,
}

impl std::str::FromStr for PortSpec {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if s == "simulate" {
            Ok(PortSpec::Simulate)
        } else if let Some(path) = s.strip_prefix("replay:") {
            if path.is_empty() {
                Err("`replay:` needs the path of a capture, e.g. `replay:capture.tic`".into())
            } else {
                Ok(PortSpec::Replay(PathBuf::from(path)))
            }
        } else if s.is_empty() {
            Err("write a serial device (e.g. /dev/ttyAMA0), `replay:PATH` or `simulate`".into())
        } else {
            Ok(PortSpec::Serial(PathBuf::from(s)))
        }
    }
}

impl TryFrom<String> for PortSpec {
    type Error = String;

    fn try_from(s: String) -> Result<Self, Self::Error> {
        s.parse()
    }
}

impl fmt::Display for PortSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PortSpec::Serial(path) => write!(f, "{}", path.display()),
            PortSpec::Replay(path) => write!(f, "replay:{}", path.display()),
            PortSpec::Simulate => f.write_str("simulate"),
        }
    }
}

impl From<PortSpec> for String {
    fn from(port: PortSpec) -> String {
        port.to_string()
    }
}

/// A password: readable by the code that needs it, never printed.
///
/// `Debug` shows `"***"` and serialising writes `"***"`, so dumping a `Config` into a log or a
/// bug report cannot leak it. Use [`Secret::expose`] where the real value is needed.
#[derive(Clone, PartialEq, Eq, Deserialize)]
#[serde(transparent)]
pub struct Secret(String);

impl Secret {
    /// Wraps a password.
    pub fn new(secret: impl Into<String>) -> Self {
        Secret(secret.into())
    }

    /// The password itself, for the one place that sends it to the broker.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("\"***\"")
    }
}

impl Serialize for Secret {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str("***")
    }
}

/// `spool_max` is a `u64` of bytes in the code and `64MiB` in the file.
mod byte_size {
    use bytesize::ByteSize;
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(bytes: &u64, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(&ByteSize(*bytes))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<u64, D::Error> {
        ByteSize::deserialize(deserializer).map(|size| size.0)
    }
}

// ---------------------------------------------------------------------------------------------
// Loading
// ---------------------------------------------------------------------------------------------

impl Config {
    /// Loads the configuration the way every subcommand does: defaults, then the config file
    /// (`path`, else `$LINKYMON_CONFIG`, else [`SYSTEM_CONFIG_PATH`] if it exists), then the
    /// environment; then validates and reads `mqtt.password_file`.
    pub fn load(path: Option<&Path>) -> Result<Config, ConfigError> {
        Config::load_from(Config::figment(path)?)
    }

    /// Like [`Config::load`], with the warnings to log once logging is up: a password in a
    /// file that other users can read (the config file, or `mqtt.password_file`).
    pub fn load_with_warnings(path: Option<&Path>) -> Result<(Config, Vec<String>), ConfigError> {
        let figment = Config::figment(path)?;
        let config = Config::load_from(figment.clone())?;
        let mut files = Vec::new();
        if let Some(Source::File(file)) = figment
            .find_metadata("mqtt.password")
            .and_then(|metadata| metadata.source.as_ref())
        {
            files.push(("mqtt.password", file.clone()));
        }
        if let Some(file) = &config.mqtt.password_file {
            files.push(("mqtt.password_file", file.clone()));
        }
        let warnings = files
            .into_iter()
            .filter_map(|(key, file)| {
                use std::os::unix::fs::PermissionsExt;
                let mode = std::fs::metadata(&file).ok()?.permissions().mode();
                readable_by_others(&file, mode, key)
            })
            .collect();
        Ok((config, warnings))
    }

    /// The sources [`Config::load`] merges, without extracting them: for callers that add a
    /// provider of their own (say, command-line flags) on top.
    pub fn figment(path: Option<&Path>) -> Result<Figment, ConfigError> {
        let from_env = std::env::var_os(CONFIG_PATH_VAR)
            .filter(|value| !value.is_empty())
            .map(PathBuf::from);
        let file = choose_file(path, from_env, Path::new(SYSTEM_CONFIG_PATH))?;
        let mut figment = Figment::new();
        if let Some(file) = file {
            figment = figment.merge(Yaml::file_exact(file));
        }
        Ok(figment.merge(Environment::new()))
    }

    /// Extracts, completes and validates a configuration from any figment; tests use it with
    /// [`Yaml::string`] to stay clear of the real files and environment.
    pub fn load_from(figment: Figment) -> Result<Config, ConfigError> {
        let mut config: Config = figment
            .extract()
            .map_err(|error| ConfigError::from_figment(error, &figment))?;
        config.logger.prices = std::mem::take(&mut config.logger.prices)
            .into_iter()
            .map(|(period, price)| (period.to_ascii_uppercase(), price))
            .collect();
        let locate = |error: ConfigError| error.located(&figment);
        config.validate().map_err(locate)?;
        config.mqtt.read_password_file().map_err(locate)?;
        Ok(config)
    }

    /// Checks what serde cannot: ranges, formats and combinations. The first problem wins, so
    /// the user fixes one line at a time.
    fn validate(&self) -> Result<(), ConfigError> {
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
        for (period, price) in &logger.prices {
            let key = format!("logger.prices.{period}");
            if period.is_empty() || !period.chars().all(|c| c.is_ascii_alphanumeric()) {
                return Err(bad_value(
                    &key,
                    "a period code is letters and digits only, like HN or PM".into(),
                ));
            }
            if !(price.is_finite() && *price >= 0.0) {
                return Err(bad_value(&key, format!("must be 0 or more, not {price}")));
            }
        }
        let daily = logger.subscription_per_day;
        if !(daily.is_finite() && daily >= 0.0) {
            return Err(bad_value(
                "logger.subscription_per_day",
                format!("must be 0 or more, not {daily}"),
            ));
        }
        Ok(())
    }
}

impl MqttConfig {
    /// Fills `password` from `password_file`. Validation already refused both being set.
    fn read_password_file(&mut self) -> Result<(), ConfigError> {
        let Some(path) = &self.password_file else {
            return Ok(());
        };
        let text = std::fs::read_to_string(path).map_err(|e| {
            bad_value(
                "mqtt.password_file",
                format!("cannot read {}: {e}", path.display()),
            )
        })?;
        self.password = Some(Secret::new(text.trim_end_matches(['\n', '\r'])));
        Ok(())
    }
}

/// Picks the config file: the explicit one, else the one the environment names (both must
/// exist), else the system one if present.
fn choose_file(
    explicit: Option<&Path>,
    from_env: Option<PathBuf>,
    system: &Path,
) -> Result<Option<PathBuf>, ConfigError> {
    match explicit.map(Path::to_path_buf).or(from_env) {
        Some(path) if !path.exists() => Err(ConfigError::MissingFile { path }),
        Some(path) => Ok(Some(path)),
        None => Ok(system.exists().then(|| system.to_path_buf())),
    }
}

/// The warning for a file holding a password (set by `key`) that users other than its owner
/// can read; `None` when only the owner can.
fn readable_by_others(file: &Path, mode: u32, key: &str) -> Option<String> {
    (mode & 0o044 != 0).then(|| {
        format!(
            "{} holds the MQTT password ({key}) and other users can read it (mode {:04o}): \
             run `chmod 600 {}`",
            file.display(),
            mode & 0o7777,
            file.display()
        )
    })
}

fn bad_value(key: &str, problem: String) -> ConfigError {
    ConfigError::BadValue {
        key: key.into(),
        origin: None,
        problem,
    }
}

/// A topic prefix must be usable as the start of a topic name: no wildcards, no empty levels at
/// either end (which would make topics like `/id/state` or `linky//id/state`).
fn check_topic_level(key: &str, topic: &str) -> Result<(), ConfigError> {
    if topic.is_empty() {
        return Err(bad_value(key, "must not be empty".into()));
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
    Ok(())
}

fn is_text_key(path: &str) -> bool {
    TEXT_KEYS.contains(&path)
}

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

// ---------------------------------------------------------------------------------------------
// Providers
// ---------------------------------------------------------------------------------------------

/// figment's YAML format, except that text keys keep their spelling.
///
/// Use it like figment's own: `Yaml::file_exact(path)`, `Yaml::string(text)`. Besides text keys
/// it differs in two small ways: an empty document or an empty top-level section (`relay:` with
/// everything under it commented out) means "defaults", and a key written twice is an error.
pub struct Yaml;

impl Format for Yaml {
    type Error = serde_norway::Error;

    const NAME: &'static str = "YAML";

    fn from_str<T: DeserializeOwned>(string: &str) -> Result<T, Self::Error> {
        let tree = Tree { path: "" }.deserialize(serde_norway::Deserializer::from_str(string))?;
        let tree = match tree {
            Value::Empty(..) => Value::from(Dict::new()),
            tree => tree,
        };
        T::deserialize(&tree).map_err(<serde_norway::Error as de::Error>::custom)
    }
}

/// Builds a figment [`Value`] from YAML, asking the YAML reader for the raw text at text keys.
struct Tree<'a> {
    /// Dotted path of the value being read; `""` at the top.
    path: &'a str,
}

impl<'de> DeserializeSeed<'de> for Tree<'_> {
    type Value = Value;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Value, D::Error> {
        if is_text_key(self.path) {
            deserializer.deserialize_option(Text)
        } else {
            deserializer.deserialize_any(self)
        }
    }
}

impl<'de> Visitor<'de> for Tree<'_> {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a YAML value")
    }

    fn visit_bool<E>(self, v: bool) -> Result<Value, E> {
        Ok(Value::from(v))
    }

    fn visit_i64<E>(self, v: i64) -> Result<Value, E> {
        Ok(Value::from(v))
    }

    fn visit_u64<E>(self, v: u64) -> Result<Value, E> {
        Ok(Value::from(v))
    }

    fn visit_f64<E>(self, v: f64) -> Result<Value, E> {
        Ok(Value::from(v))
    }

    fn visit_str<E>(self, v: &str) -> Result<Value, E> {
        Ok(Value::from(v))
    }

    fn visit_unit<E>(self) -> Result<Value, E> {
        Ok(Value::from(Empty::None))
    }

    fn visit_none<E>(self) -> Result<Value, E> {
        Ok(Value::from(Empty::None))
    }

    fn visit_some<D: Deserializer<'de>>(self, deserializer: D) -> Result<Value, D::Error> {
        self.deserialize(deserializer)
    }

    fn visit_seq<A: de::SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let mut items = Vec::new();
        while let Some(item) = seq.next_element_seed(Tree { path: self.path })? {
            items.push(item);
        }
        Ok(Value::from(items))
    }

    fn visit_map<A: de::MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        let mut dict = Dict::new();
        while let Some(key) = map.next_key_seed(Key)? {
            let path = join_key(self.path, &key);
            let value = map.next_value_seed(Tree { path: &path })?;
            if dict.contains_key(&key) {
                return Err(de::Error::custom(format!(
                    "key `{path}` is written twice; keep one"
                )));
            }
            let empty_section = self.path.is_empty() && matches!(value, Value::Empty(..));
            if !empty_section {
                dict.insert(key, value);
            }
        }
        Ok(Value::from(dict))
    }
}

/// Reads a mapping key as the text written, so `01:` stays `"01"`.
struct Key;

impl<'de> DeserializeSeed<'de> for Key {
    type Value = String;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<String, D::Error> {
        String::deserialize(deserializer)
    }
}

/// Reads a text value (or null) as written.
struct Text;

impl<'de> Visitor<'de> for Text {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("text")
    }

    fn visit_str<E>(self, v: &str) -> Result<Value, E> {
        Ok(Value::from(v))
    }

    fn visit_unit<E>(self) -> Result<Value, E> {
        Ok(Value::from(Empty::None))
    }

    fn visit_none<E>(self) -> Result<Value, E> {
        Ok(Value::from(Empty::None))
    }

    fn visit_some<D: Deserializer<'de>>(self, deserializer: D) -> Result<Value, D::Error> {
        deserializer.deserialize_str(Text)
    }
}

/// The `LINKYMON_*` environment variables, with `__` between levels.
///
/// Like figment's `Env`, values are parsed (`true`, `[ejp_peak,ejp_notice]`, `1.5`), except
/// at text keys, whose values are taken verbatim: `LINKYMON_MQTT__PASSWORD=0123` is `"0123"`.
/// `LINKYMON_CONFIG` names the file and is not a setting.
pub struct Environment {
    env: figment::providers::Env,
}

impl Environment {
    /// Reads the process environment when figment asks for the data, not now.
    pub fn new() -> Self {
        Environment {
            env: figment::providers::Env::prefixed(ENV_PREFIX)
                .split("__")
                .ignore(&["config"]),
        }
    }
}

impl Default for Environment {
    fn default() -> Self {
        Environment::new()
    }
}

impl Provider for Environment {
    fn metadata(&self) -> Metadata {
        Metadata::named(ENV_SOURCE_NAME)
            .interpolater(|_: &Profile, keys: &[&str]| env_var_name(&keys.join(".")))
    }

    fn data(&self) -> Result<Map<Profile, Dict>, figment::Error> {
        let mut dict = Dict::new();
        for (key, raw) in self.env.iter() {
            let value = if is_text_key(key.as_str()) {
                Value::from(raw)
            } else {
                match raw.parse::<Value>() {
                    Ok(value) => value,
                    Err(never) => match never {},
                }
            };
            let keys: Vec<&str> = key.as_str().split('.').collect();
            insert_path(&mut dict, &keys, value);
        }
        Ok(Profile::Default.collect(dict))
    }
}

/// Puts `value` at `keys` in `dict`, creating (or replacing non-dict values with) dicts on the
/// way. Env var order is arbitrary, so a clash such as `A=1` and `A__B=2` resolves either way;
/// both cannot be meant.
fn insert_path(dict: &mut Dict, keys: &[&str], value: Value) {
    match keys {
        [] => {}
        [last] => {
            dict.insert((*last).to_string(), value);
        }
        [first, rest @ ..] => {
            let child = dict
                .entry((*first).to_string())
                .or_insert_with(|| Value::from(Dict::new()));
            if child.as_dict().is_none() {
                *child = Value::from(Dict::new());
            }
            if let Value::Dict(_, child) = child {
                insert_path(child, rest, value);
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Errors
// ---------------------------------------------------------------------------------------------

/// A configuration the user must fix. Each displays as one line naming the key or file, where
/// it was written, and what would be accepted; the binary prints it and exits with status 2.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ConfigError {
    /// The file given with `-c` or `LINKYMON_CONFIG` is not there.
    #[error(
        "config file {} does not exist: create it (config.example.yaml lists every key) or name another with -c FILE or LINKYMON_CONFIG",
        path.display()
    )]
    MissingFile {
        /// The path as given.
        path: PathBuf,
    },
    /// A key that is not part of the configuration, usually a typo.
    #[error("unknown key `{key}`{}; {hint}", in_origin(origin))]
    UnknownKey {
        /// Dotted path of the key as written (`mqtt.hots`).
        key: String,
        /// Where it was written, when known.
        origin: Option<Origin>,
        /// The nearest valid key, or the list of valid ones.
        hint: String,
    },
    /// A value of the wrong kind, out of range, or in conflict with another.
    #[error("bad value for `{key}`{}: {problem}", in_origin(origin))]
    BadValue {
        /// Dotted path of the key (`mqtt.port`).
        key: String,
        /// Where the value was written, when known (not for defaults).
        origin: Option<Origin>,
        /// What is wrong and what would be accepted.
        problem: String,
    },
    /// The file could not be read or is not valid YAML.
    #[error("cannot read the configuration{}: {problem}", in_origin(origin))]
    Unreadable {
        /// The file or other source, when known.
        origin: Option<Origin>,
        /// The reader's message, with line and column for YAML syntax errors.
        problem: String,
    },
}

/// Where a setting came from, for error messages.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Origin {
    /// A config file.
    File(PathBuf),
    /// An environment variable, by name (`LINKYMON_MQTT__PORT`).
    Env(String),
    /// Any other figment provider, by its name.
    Other(String),
}

impl Origin {
    fn from_metadata(metadata: &Metadata, key: &str) -> Origin {
        match &metadata.source {
            Some(Source::File(path)) => Origin::File(path.clone()),
            _ if metadata.name == ENV_SOURCE_NAME => Origin::Env(env_var_name(key)),
            _ => Origin::Other(metadata.name.to_string()),
        }
    }
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Origin::File(path) => write!(f, "in {}", path.display()),
            Origin::Env(var) => write!(f, "from {var}"),
            Origin::Other(name) => write!(f, "from {name}"),
        }
    }
}

fn in_origin(origin: &Option<Origin>) -> String {
    origin.as_ref().map(|o| format!(" {o}")).unwrap_or_default()
}

impl ConfigError {
    /// Turns figment's error into one for people: the key's full path, the provider that set
    /// it, and for an unknown key the valid key it most resembles.
    fn from_figment(error: figment::Error, figment: &Figment) -> ConfigError {
        // figment chains errors; the first one is enough to act on.
        let error = error.into_iter().next().unwrap_or_else(|| {
            figment::Error::from("figment reported an error without details".to_string())
        });
        let parent = error.path.join(".");
        let origin_of = |key: &str| {
            figment
                .find_metadata(key)
                .or(error.metadata.as_ref())
                .map(|metadata| Origin::from_metadata(metadata, key))
        };
        use figment::error::Kind;
        match &error.kind {
            Kind::UnknownField(field, expected) => {
                // figment's path ends with the unknown field itself; the section is before it.
                let mut section = error.path.clone();
                if section.last() == Some(field) {
                    section.pop();
                }
                let parent = section.join(".");
                let key = join_key(&parent, field);
                let origin = origin_of(&key);
                let hint = match nearest(field, expected) {
                    Some(near) => {
                        let near = join_key(&parent, near);
                        match origin {
                            Some(Origin::Env(_)) => {
                                format!("did you mean `{near}` ({})?", env_var_name(&near))
                            }
                            _ => format!("did you mean `{near}`?"),
                        }
                    }
                    None if parent.is_empty() => {
                        format!("the sections are: {}", expected.join(", "))
                    }
                    None => format!("the keys under `{parent}` are: {}", expected.join(", ")),
                };
                ConfigError::UnknownKey { key, origin, hint }
            }
            kind if parent.is_empty() => ConfigError::Unreadable {
                origin: origin_of(""),
                problem: describe(kind),
            },
            kind => ConfigError::BadValue {
                origin: origin_of(&parent),
                key: parent,
                problem: describe(kind),
            },
        }
    }

    /// Adds where a key was set, for errors found after extraction (validation).
    fn located(self, figment: &Figment) -> ConfigError {
        match self {
            ConfigError::BadValue {
                key,
                origin: None,
                problem,
            } => ConfigError::BadValue {
                origin: figment
                    .find_metadata(&key)
                    .map(|metadata| Origin::from_metadata(metadata, &key)),
                key,
                problem,
            },
            other => other,
        }
    }
}

/// The valid key closest to a misspelt one, if any is close enough to be a likely typo.
fn nearest<'a>(unknown: &str, valid: &[&'a str]) -> Option<&'a str> {
    valid
        .iter()
        .map(|candidate| {
            (
                strsim::normalized_damerau_levenshtein(unknown, candidate),
                candidate,
            )
        })
        .filter(|(similarity, _)| *similarity >= 0.6)
        .max_by(|a, b| a.0.total_cmp(&b.0))
        .map(|(_, candidate)| *candidate)
}

/// figment's error kinds in words a user acts on (`expected u16` → a number range).
fn describe(kind: &figment::error::Kind) -> String {
    use figment::error::Kind;
    match kind {
        Kind::Message(message) => message.clone(),
        Kind::InvalidType(actual, expected) | Kind::InvalidValue(actual, expected) => {
            format!("found {actual}, expected {}", expected_in_words(expected))
        }
        Kind::UnknownVariant(found, allowed) => {
            let allowed: Vec<String> = allowed.iter().map(|v| format!("`{v}`")).collect();
            format!("`{found}` is not one of {}", allowed.join(", "))
        }
        other => other.to_string(),
    }
}

fn expected_in_words(expected: &str) -> String {
    let range = |min: i128, max: i128| format!("a whole number from {min} to {max}");
    match expected {
        "u8" => range(0, u8::MAX.into()),
        "u16" => range(0, u16::MAX.into()),
        "u32" => range(0, u32::MAX.into()),
        "u64" => range(0, u64::MAX.into()),
        "i64" => range(i64::MIN.into(), i64::MAX.into()),
        "f64" | "f32" => "a number".into(),
        // bytesize's own word for `spool_max`.
        "parsable string" => "a size like 64MiB or 500kB".into(),
        // Serde names our section types (`struct MqttConfig`); users know them as sections.
        other if other.starts_with("struct ") => "a section of keys".into(),
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use figment::Jail;

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
            assert_eq!(config.logger.prices.get("HN"), Some(&0.1386));
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
            ("logger:\n  prices: {HN: -0.1}\n", "logger.prices.HN"),
            (
                "logger:\n  subscription_per_day: -1\n",
                "logger.subscription_per_day",
            ),
            ("led:\n  gpio: 17\nrelay:\n  gpio: 17\n", "relay.gpio"),
            ("mqtt:\n  embedded_bind: localhost\n", "mqtt.embedded_bind"),
            ("mqtt:\n  embedded_broker: true\n  tls: true\n", "mqtt.tls"),
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
            assert!(result.unwrap().mqtt.embedded_broker);
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
    fn price_codes_are_stored_upper_case() {
        let config = from_yaml("logger:\n  prices: {hn: 0.1386, PM: 0.7524}\n").unwrap();
        let codes: Vec<&str> = config.logger.prices.keys().map(String::as_str).collect();
        assert_eq!(codes, ["HN", "PM"]);
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

    const EXAMPLE: &str = include_str!("../config.example.yaml");

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
        assert_eq!(expected.len(), 45);
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
}
