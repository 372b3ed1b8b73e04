//! The configuration as types: one struct per section, its defaults (these `Default` impls are
//! the only place defaults live), and the values users write as text: `meter.port`, passwords,
//! sizes.

use std::collections::BTreeMap;
use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::error::{ConfigError, bad_value};

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
    /// `linkymon logger`: daily logs and pages.
    pub logger: LoggerConfig,
    /// The prices per kWh and subscriptions, each set valid from a date.
    pub prices: PricesConfig,
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
    /// MQTT client id; `None` means `linkymon-<meter id>`. The bridge status connection
    /// (`<base>/bridge/state`) uses `<client_id>-bridge`, see [`crate::publish::bridge`].
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
    /// The port of the embedded broker's MQTT 5 listener, for `linkymon logger`; `None` means
    /// `port` + 1. See [`MqttConfig::embedded_v5_port`].
    pub embedded_port_v5: Option<u16>,
    /// Where `state` messages wait on disk while the broker is unreachable.
    pub spool_dir: PathBuf,
    /// The spool's size limit in bytes (written `64MiB` etc.); the oldest messages go first.
    #[serde(with = "byte_size")]
    pub spool_max: u64,
}

impl MqttConfig {
    /// The port of the embedded broker's MQTT 5 listener: `embedded_port_v5`, else `port` + 1
    /// (65535 when `port` is 65535, which validation then refuses as the same port).
    pub fn embedded_v5_port(&self) -> u16 {
        self.embedded_port_v5
            .unwrap_or_else(|| self.port.saturating_add(1))
    }
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
            embedded_port_v5: None,
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
    /// `state` messages sent per second from the spool after an outage, so that subscribers
    /// and the broker's queues for them keep up; 0 = as fast as the broker acknowledges.
    pub backlog_rate: u32,
    /// How long a replay that ended waits for the broker to take what it spooled.
    #[serde(with = "humantime_serde")]
    pub drain_timeout: Duration,
}

impl Default for PublishConfig {
    fn default() -> Self {
        PublishConfig {
            interval: Duration::from_secs(10),
            backlog_rate: 50,
            drain_timeout: Duration::from_secs(600),
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

/// `logger:` — `linkymon logger`'s daily logs and pages.
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
    /// Deprecated for `prices.sets`: price per kWh by period code (`HN`, `PM`, ...). Loading
    /// moves it into [`Config::prices`] as one set valid from the beginning of time and leaves
    /// `None` here. Not listed in config.example.yaml.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub prices: Option<BTreeMap<String, f64>>,
    /// Log only this meter id (12 digits); `None` = every meter seen on the broker.
    pub meter: Option<String>,
    /// The most meters one logger follows; states of further ids are dropped and counted
    /// (anything on the broker can publish a `state` under a new id). A fleet sets it to its size.
    pub max_meters: usize,
    /// Write the daily logs and pages (the default). `false` leaves the database as the only
    /// history, as a share group requires.
    pub files: bool,
    /// A PostgreSQL database to keep every `state` in (`postgres://user@host:port/dbname`);
    /// `None` = none. Shown as `***` in dumps, since the URL may hold a password.
    pub database: Option<Secret>,
    /// A file holding the database password (trailing newline ignored), as
    /// `mqtt.password_file`.
    pub database_password_file: Option<PathBuf>,
    /// The password read from [`database_password_file`](Self::database_password_file).
    #[serde(skip)]
    pub database_password: Option<Secret>,
    /// An MQTT shared subscription group: loggers of one group split the `state` messages
    /// between them (`$share/<group>/<base>/+/state`). Needs `database` and `files: false`.
    pub share_group: Option<String>,
    /// The logger's MQTT client id; `None` = `linkymon-logger-<base topic>`. Each logger of a
    /// share group needs its own, so that each keeps its persistent session.
    pub client_id: Option<String>,
    /// How often the pages are rebuilt.
    #[serde(with = "humantime_serde")]
    pub pages_interval: Duration,
    /// Deprecated for `prices.currency`; loading moves it there and leaves `None` here.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub currency: Option<String>,
    /// Deprecated for `prices.sets[].subscription_per_day`; loading moves it into
    /// [`Config::prices`] with `logger.prices` and leaves `None` here.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub subscription_per_day: Option<f64>,
}

impl Default for LoggerConfig {
    fn default() -> Self {
        LoggerConfig {
            dir: PathBuf::from("./linkymon-data/logs"),
            pages_dir: PathBuf::from("./linkymon-data/pages"),
            frames_per_line: 8,
            timezone: "Europe/Paris".into(),
            prices: None,
            meter: None,
            max_meters: 4,
            files: true,
            database: None,
            database_password_file: None,
            database_password: None,
            share_group: None,
            client_id: None,
            pages_interval: Duration::from_secs(5 * 60),
            currency: None,
            subscription_per_day: None,
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

/// `prices:` — what energy costs, for the logger's `today`, `month`, `price` and pages.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PricesConfig {
    /// Currency code shown next to costs and in the price's unit (`EUR/kWh`).
    pub currency: String,
    /// Price sets, each valid from its `from` date until the next set's. Loading sorts them by
    /// date (validation refused two on the same date); a day before the first set has no price.
    pub sets: Vec<PriceSet>,
}

impl Default for PricesConfig {
    fn default() -> Self {
        PricesConfig {
            currency: "EUR".into(),
            sets: Vec::new(),
        }
    }
}

/// One entry of `prices.sets`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PriceSet {
    /// The first day (local, `logger.timezone`) the set applies to, written `YYYY-MM-DD`.
    #[serde(with = "civil_date")]
    pub from: jiff::civil::Date,
    /// Price per kWh by period, named as in `<base>/<id>/energy/<period>` (`hn`, `pm`,
    /// `hcjb`…; see [`crate::prices::PERIODS`]).
    #[serde(default)]
    pub kwh: BTreeMap<String, f64>,
    /// Fixed cost per day. Exclusive with `subscription_per_month`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subscription_per_day: Option<f64>,
    /// Fixed cost per month, spread evenly over the days of each month. Exclusive with
    /// `subscription_per_day`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subscription_per_month: Option<f64>,
}

impl PriceSet {
    /// A set in force since the beginning of time, as the deprecated `logger.prices` and
    /// `logger.subscription_per_day` meant.
    pub fn always(kwh: BTreeMap<String, f64>, subscription_per_day: Option<f64>) -> PriceSet {
        PriceSet {
            from: jiff::civil::Date::MIN,
            kwh,
            subscription_per_day,
            subscription_per_month: None,
        }
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

/// `spool_max` is a `u64` of bytes in the code and `64MiB` (or a plain number of bytes) in the
/// file. A negative number is refused as such, not as bytesize's "integer overflow".
/// A day written `YYYY-MM-DD`, as in `prices.sets[].from`.
mod civil_date {
    use jiff::civil::Date;
    use serde::{Deserialize, Deserializer, Serializer, de};

    pub fn serialize<S: Serializer>(date: &Date, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(date)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Date, D::Error> {
        let text = String::deserialize(deserializer)?;
        let wrong = || {
            de::Error::custom(format!(
                "`{text}` is not a date; write YYYY-MM-DD, like 2026-02-01"
            ))
        };
        let shaped = text.len() == 10
            && text.bytes().enumerate().all(|(i, b)| {
                if i == 4 || i == 7 {
                    b == b'-'
                } else {
                    b.is_ascii_digit()
                }
            });
        if !shaped {
            return Err(wrong());
        }
        text.parse().map_err(|_| wrong())
    }
}

mod byte_size {
    use std::fmt;

    use bytesize::ByteSize;
    use serde::de::{self, Visitor};
    use serde::{Deserializer, Serializer};

    pub fn serialize<S: Serializer>(bytes: &u64, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(&ByteSize(*bytes))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<u64, D::Error> {
        deserializer.deserialize_any(Size)
    }

    fn not_positive<E: de::Error>(found: impl fmt::Display) -> E {
        E::custom(format!(
            "must be a positive size like 64MiB or 500kB, not {found}"
        ))
    }

    struct Size;

    impl Visitor<'_> for Size {
        type Value = u64;

        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("a size like 64MiB or 500kB")
        }

        fn visit_u64<E: de::Error>(self, v: u64) -> Result<u64, E> {
            Ok(v)
        }

        fn visit_i64<E: de::Error>(self, v: i64) -> Result<u64, E> {
            u64::try_from(v).map_err(|_| not_positive(v))
        }

        fn visit_f64<E: de::Error>(self, v: f64) -> Result<u64, E> {
            Err(E::custom(format!(
                "write a size like 64MiB or 500kB, or a whole number of bytes, not {v}"
            )))
        }

        fn visit_str<E: de::Error>(self, v: &str) -> Result<u64, E> {
            if v.trim_start().starts_with('-') {
                return Err(not_positive(v));
            }
            v.parse::<ByteSize>()
                .map(|size| size.0)
                .map_err(|_| E::custom(format!("`{v}` is not a size like 64MiB or 500kB")))
        }
    }
}
