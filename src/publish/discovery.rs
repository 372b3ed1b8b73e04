//! Home Assistant MQTT discovery: one retained config per entity, driven by the label table.
//!
//! This module decides what Home Assistant is told about a meter: which entities exist (only
//! for the labels the meter sends, plus a few fixed ones), their device class, state class and
//! unit, and which topic each reads. It turns that into [`Message`]s and nothing more: when to
//! send them (on every connection, when `<discovery_prefix>/status` says `online`, when a label
//! shows up for the first time) is the shell's decision, and the states themselves are
//! published elsewhere. Configs announced by an earlier run and not any more are cleared with
//! [`stale_config_clears`], from the retained configs the shell saw at connection.
//!
//! Choices Home Assistant imposes (checked against its sensor and MQTT documentation):
//! - `kVA` labels (PREF, PCOUP) are published in `VA` through a `× 1000` template, as the
//!   contract fixes; reactive indexes use the `reactive_energy` class in `varh`.
//! - An `enum` sensor has `options` and neither unit nor state class, and Home Assistant drops
//!   any state outside its options. So each enum entity maps the raw values the specification
//!   lists to what it shows (`ENUMS`), and renders anything else as `None`, which Home
//!   Assistant shows as unknown: `PTEC` shows the period codes that `state.derived.period` and
//!   the daily logs use (`HN`, `PM`, `BASE`, `HCJB`…; `prices:` writes them in lowercase); `DEMAIN` and the
//!   Tempo colour entities show `blue`, `white`, `red` (`----`, "not announced", is unknown).
//! - `object_id` is gone from discovery since Home Assistant 2026.4; `default_entity_id`
//!   (`sensor.linky_<id>_<object_id>`) names the entity the first time it is added. It needs
//!   Home Assistant 2025.10 or later: [`MIN_HA_VERSION`].
//! - Templates read JSON objects with brackets (`value_json['values']`), never with a dot:
//!   Jinja tries the attribute before the key, and `value_json.values` is the dict's `values`
//!   method, so every dotted read of a key named like a dict method renders nothing.
//!   `tests/ha_templates.py` renders every template with Jinja2 against real states.
//! - Two availability topics (`availability_mode: all`) for the meter's values: the daemon's
//!   `<base>/<id>/availability` and the line's `<base>/<id>/line` (`ON`/`OFF`), so they go
//!   unavailable when the daemon stops and when the line falls silent, rather than show the last
//!   values forever. The line's own `binary_sensor` (class `connectivity`, diagnostic) follows
//!   only the daemon's, so it stays visible while `OFF`; so do the daemon's counters (`diag`:
//!   what it read and when, worth seeing while the line is silent) and the relay contact (read
//!   on a GPIO, not on the line). The logger's `today_*` entities follow only the daemon's too:
//!   what was counted today stays true while the line is silent.
//! - Horodates are `timestamp` entities; a horodate without a season (`DPMx`) has no offset,
//!   so the template places it in Home Assistant's time zone (`as_local`): Home Assistant
//!   refuses a timestamp without a time zone.

mod energy;

use std::collections::BTreeSet;

pub use energy::{energy_config_messages, energy_leaves};
use serde_json::{Map, Value, json};

use super::Message;
use super::topics::Topics;
use crate::meter::Reading;
use crate::meter::labels::{self, Kind, Role, Unit};
use crate::tic::Mode;

/// The oldest Home Assistant that accepts these configs: `default_entity_id` came in 2025.10.
/// The README and `ha-discovery/README.md` say the same.
pub const MIN_HA_VERSION: &str = "2025.10";

/// What discovery needs from the configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Context {
    /// `mqtt.base_topic`: the entities read their states under it.
    pub base_topic: String,
    /// `mqtt.discovery_prefix`: where Home Assistant listens for configs.
    pub discovery_prefix: String,
    /// This program's version, shown as the origin's so users can tell which linkymon
    /// announced the entities. The device's `sw_version` is the meter's (see
    /// [`Contract::tic_version`]), not this.
    pub sw_version: String,
    /// `relay.gpio` is set: announce the relay contact's binary sensor. The meter cannot tell
    /// whether its contact is wired to us, so only the configuration decides.
    pub relay: bool,
}

impl Context {
    /// The version is this build's, so Home Assistant shows which linkymon announced what.
    pub fn new(base_topic: impl Into<String>, discovery_prefix: impl Into<String>) -> Self {
        Context {
            base_topic: base_topic.into(),
            discovery_prefix: discovery_prefix.into(),
            sw_version: env!("CARGO_PKG_VERSION").to_owned(),
            relay: false,
        }
    }

    /// The same context, announcing the relay contact when `relay` (`relay.gpio` is set).
    pub fn with_relay(mut self, relay: bool) -> Self {
        self.relay = relay;
        self
    }
}

/// The tariff option, as far as the meter tells.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tariff {
    /// One price all day (`OPTARIF BASE`).
    Base,
    /// Peak and off-peak hours (`OPTARIF HC..`).
    OffPeak,
    /// EJP: 22 mobile peak days a year (`OPTARIF EJP.`).
    Ejp,
    /// Tempo: blue, white and red days (`OPTARIF BBRx`, or STGE giving today's colour).
    Tempo,
    /// Not said (yet), or a supplier name the rules do not recognise.
    Unknown,
}

impl Tariff {
    /// From `OPTARIF` (historic) or `NGTF` (standard, supplier free text: matched loosely).
    fn from_option(option: &str) -> Self {
        let o = option.trim().to_ascii_uppercase();
        if o.starts_with("BBR") || o.contains("TEMPO") {
            Tariff::Tempo
        } else if o.contains("EJP") {
            Tariff::Ejp
        } else if o.contains("BASE") {
            Tariff::Base
        } else if o.starts_with("HC") || o.contains("CREUSE") {
            Tariff::OffPeak
        } else {
            Tariff::Unknown
        }
    }

    fn model_word(self) -> Option<&'static str> {
        match self {
            Tariff::Base => Some("Base"),
            Tariff::OffPeak => Some("HC"),
            Tariff::Ejp => Some("EJP"),
            Tariff::Tempo => Some("Tempo"),
            Tariff::Unknown => None,
        }
    }
}

/// What the contract changes in discovery: the EJP and Tempo entities and the device model.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Contract {
    /// The tariff option.
    pub tariff: Tariff,
    /// The meter reports three phases.
    pub three_phase: bool,
    /// The meter runs in producer mode (it counts injected energy).
    pub producer: bool,
    /// The TIC version the meter reports (`VTIC`, standard mode only), shown as the device's
    /// `sw_version`; `None` leaves it out (historic mode says nothing of its version).
    pub tic_version: Option<u8>,
}

impl Contract {
    /// What one reading says about the contract. A frame that lost its `OPTARIF`/`NGTF` group
    /// to a bad checksum gives [`Tariff::Unknown`], so callers should prefer a complete frame.
    pub fn from_reading(r: &Reading) -> Self {
        Contract::from_parts(
            r.text("OPTARIF").or(r.text("NGTF")),
            r.text("VTIC"),
            r.derived.tempo_today.is_some(),
            r.derived.stge.is_some_and(|s| s.producer),
            |l| r.get(l).is_some(),
        )
    }

    /// The same from a `state` payload's `values` and `derived` objects, for consumers of
    /// MQTT (the logger) that announce entities on the daemon's device.
    pub fn from_state(values: &Map<String, Value>, derived: &Value) -> Self {
        let text = |l: &str| values.get(l).and_then(Value::as_str);
        Contract::from_parts(
            text("OPTARIF").or(text("NGTF")),
            text("VTIC"),
            derived.get("tempo_today").is_some_and(|t| !t.is_null()),
            derived["stge"]["producer"].as_bool().unwrap_or(false),
            |l| values.contains_key(l),
        )
    }

    fn from_parts(
        option: Option<&str>,
        vtic: Option<&str>,
        tempo_today: bool,
        stge_producer: bool,
        has: impl Fn(&str) -> bool,
    ) -> Self {
        let tariff = if tempo_today {
            Tariff::Tempo // STGE (or a historic PTEC colour) says so whatever the name
        } else {
            option.map_or(Tariff::Unknown, Tariff::from_option)
        };
        let third_phase = ["IINST3", "IMAX3", "IRMS3", "URMS3", "SINSTS3"];
        Contract {
            tariff,
            three_phase: third_phase.iter().any(|l| has(l)),
            producer: stge_producer || has("EAIT"),
            // Two digits by the specification; anything else is not a version worth showing.
            tic_version: vtic
                .map(str::trim)
                .filter(|v| !v.is_empty() && v.len() <= 2 && v.bytes().all(|b| b.is_ascii_digit()))
                .and_then(|v| v.parse().ok()),
        }
    }

    /// `Linky historic EJP`, `Linky standard Tempo three-phase producer`…
    fn model(&self, mode: Mode) -> String {
        let mut model = format!("Linky {mode}");
        for word in [
            self.tariff.model_word(),
            self.three_phase.then_some("three-phase"),
            self.producer.then_some("producer"),
        ]
        .into_iter()
        .flatten()
        {
            model.push(' ');
            model.push_str(word);
        }
        model
    }

    /// Whether an EJP peak can be signalled: historic only says so on an EJP contract;
    /// standard mode signals mobile peaks through STGE on any contract but Tempo, where the
    /// same bits mean a non-blue day.
    fn has_ejp(&self, mode: Mode) -> bool {
        match mode {
            Mode::Historic => self.tariff == Tariff::Ejp,
            Mode::Standard => self.tariff != Tariff::Tempo,
        }
    }
}

/// Text labels whose values the specification lists, with what the entity shows for each.
/// The same pairs give the enum's `options` and its value template, so they cannot disagree.
#[rustfmt::skip]
const ENUMS: &[(&str, &[(&str, &str)])] = &[
    ("PTEC", &[
        ("TH..", "BASE"), ("HC..", "HC"), ("HP..", "HP"), ("HN..", "HN"), ("PM..", "PM"),
        ("HCJB", "HCJB"), ("HPJB", "HPJB"), ("HCJW", "HCJW"), ("HPJW", "HPJW"),
        ("HCJR", "HCJR"), ("HPJR", "HPJR"),
    ]),
    ("DEMAIN", &[("BLEU", "blue"), ("BLAN", "white"), ("ROUG", "red")]),
];

/// The options of the Tempo colour entities: the names `state.derived` uses.
const TEMPO_COLOURS: &[&str] = &["blue", "white", "red"];

/// How Home Assistant sees a TIC unit. Checked against the sensor documentation's table of
/// device classes: `apparent_power` accepts VA, `reactive_energy` varh, `duration` min.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct Classes {
    device_class: Option<&'static str>,
    state_class: Option<&'static str>,
    unit: Option<&'static str>,
}

const MEASUREMENT: Option<&str> = Some("measurement");
const TOTAL_INCREASING: Option<&str> = Some("total_increasing");

const fn classes(
    device_class: &'static str,
    state_class: Option<&'static str>,
    unit: &'static str,
) -> Classes {
    Classes {
        device_class: Some(device_class),
        state_class,
        unit: Some(unit),
    }
}

/// The classes of a unit and the factor that turns the meter's value into Home Assistant's unit.
fn unit_classes(unit: Unit) -> (Classes, u32) {
    match unit {
        Unit::Wh => (classes("energy", TOTAL_INCREASING, "Wh"), 1),
        Unit::VArh => (classes("reactive_energy", TOTAL_INCREASING, "varh"), 1),
        Unit::VA => (classes("apparent_power", MEASUREMENT, "VA"), 1),
        Unit::KVA => (classes("apparent_power", MEASUREMENT, "VA"), 1000),
        Unit::W => (classes("power", MEASUREMENT, "W"), 1),
        Unit::A => (classes("current", MEASUREMENT, "A"), 1),
        Unit::V => (classes("voltage", MEASUREMENT, "V"), 1),
        // PEJP is a fixed notice length, not worth long-term statistics.
        Unit::Min => (classes("duration", None, "min"), 1),
    }
}

/// The decimals Home Assistant should show for a unit: none for W, VA and V, whose TIC
/// values are whole numbers, and none for A either: the meter sends whole amperes (`IINST`,
/// `IRMS1`), so a decimal could only show a `.0` that says nothing.
fn precision(unit: Unit) -> Option<u8> {
    match unit {
        Unit::W | Unit::VA | Unit::KVA | Unit::V | Unit::A => Some(0),
        Unit::Wh | Unit::VArh | Unit::Min => None,
    }
}

/// Contract constants: they change only when the contract does, so they are diagnostics,
/// without a state class (long-term statistics of a constant are noise).
const CONTRACT_CONSTANTS: &[&str] = &["ISOUSC", "IMAX", "PREF", "PCOUP"];

/// Whether few users look at a label, so its entity starts disabled: the distributor
/// indexes, the reactive indexes, yesterday's maxima, the previous load curve points and the
/// mean voltages (standard mode).
fn rarely_used(label: &str) -> bool {
    label.starts_with("EASD")
        || label.starts_with("ERQ")
        || label.starts_with("UMOY")
        || (label.starts_with("SMAX") && label.ends_with("-1"))
        || label == "CCASN-1"
        || label == "CCAIN-1"
}

/// The timestamp template of a horodated label: its ISO 8601 `_ts` from `state`, placed in
/// Home Assistant's time zone when it has no offset (`DPMx`), `None` (unknown) when the frame
/// has none or it cannot be read.
fn timestamp_template(label: &str) -> String {
    format!(
        "{{% set t = as_datetime(value_json['values'].get('{label}_ts'), None) %}}\
         {{{{ as_local(t).isoformat() if t else 'None' }}}}"
    )
}

/// One Home Assistant entity, before it becomes a config payload.
#[derive(Debug, Clone)]
struct Entity {
    component: &'static str,
    object_id: String,
    name: String,
    state_topic: String,
    /// The subscription QoS: 1 for the topics the contract publishes at QoS 1.
    qos: u8,
    value_template: Option<String>,
    classes: Classes,
    options: Vec<&'static str>,
    diagnostic: bool,
    /// A unit that is not one of the table's (the currency of a cost).
    unit_text: Option<String>,
    /// `state_class: total` resetting each day or month: the template of the reset's instant
    /// ([`TODAY_RESET`], [`MONTH_RESET`]).
    last_reset: Option<&'static str>,
    /// `suggested_display_precision`: the decimals worth showing.
    precision: Option<u8>,
    /// `false` for labels few users look at: the entity exists, disabled until a user
    /// enables it, so it costs no state writes or history.
    enabled_by_default: bool,
    /// Unavailable while `<base>/<id>/line` is `OFF` too (see the module's doc): the meter's
    /// values; `false` for what stays true while the line is silent.
    follows_line: bool,
}

impl Entity {
    fn sensor(object_id: impl Into<String>, name: impl Into<String>, state_topic: String) -> Self {
        Entity {
            component: "sensor",
            object_id: object_id.into(),
            name: name.into(),
            state_topic,
            qos: 0,
            value_template: None,
            classes: Classes::default(),
            options: Vec::new(),
            diagnostic: false,
            unit_text: None,
            last_reset: None,
            precision: None,
            enabled_by_default: true,
            follows_line: true,
        }
    }
}

/// An `enum` sensor has options, and neither unit nor state class.
const ENUM: Classes = Classes {
    device_class: Some("enum"),
    state_class: None,
    unit: None,
};

/// The entity id part for a label: lowercase, and anything Home Assistant does not allow in
/// an id (`+` of `NJOURF+1`, `-` of `SMAXSN-1`) becomes `_`.
pub fn object_id(label: &str) -> String {
    label
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_lowercase()
            } else {
                '_'
            }
        })
        .collect()
}

/// The retained discovery configs of meter `meter_id`: one entity per label in `labels` (the
/// labels this meter has sent; others get none), plus `power`, `injection`, the decoder
/// counters, the EJP or Tempo entities its contract calls for, and the relay contact when
/// [`Context::relay`] says it is wired.
///
/// Pass every label seen since start: labels such as `PEJP`, `ADPS` or `DPM1` come and go, so
/// call again (and publish) when a new one shows up. The output does not depend on the order
/// of `labels`.
pub fn config_messages<I>(
    meter_id: &str,
    mode: Mode,
    contract: &Contract,
    labels: I,
    ctx: &Context,
) -> Vec<Message>
where
    I: IntoIterator,
    I::Item: AsRef<str>,
{
    let topics = Topics::new(&ctx.base_topic, meter_id);
    let sent: BTreeSet<String> = labels.into_iter().map(|l| l.as_ref().to_owned()).collect();
    // Table order first; labels the table does not know (a firmware's `TENSION`) after, as
    // plain diagnostics, if their name can be a topic.
    let known = labels::LABELS
        .iter()
        .map(|s| s.label)
        .filter(|l| sent.contains(*l));
    let unknown = sent
        .iter()
        .map(String::as_str)
        .filter(|l| labels::spec(l).is_none())
        .filter(|l| {
            l.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"+-".contains(&b))
        });
    // Table labels never share an object id (a test checks it); an unknown label that would
    // take one already used, fixed entities first, is left out rather than break both.
    let fixed = fixed_entities(mode, contract, ctx.relay, &topics);
    let mut taken: BTreeSet<String> = fixed.iter().map(|e| e.object_id.clone()).collect();
    let mut entities: Vec<Entity> = known
        .chain(unknown)
        .map(|l| label_entity(l, &topics))
        .filter(|e| taken.insert(e.object_id.clone()))
        .collect();
    entities.extend(fixed);

    messages(&entities, meter_id, mode, contract, ctx)
}

/// The configs of `entities`, all on the meter's one device.
fn messages(
    entities: &[Entity],
    meter_id: &str,
    mode: Mode,
    contract: &Contract,
    ctx: &Context,
) -> Vec<Message> {
    let mut device = json!({
        "identifiers": [format!("linky_{meter_id}")],
        "name": format!("Linky {meter_id}"),
        "manufacturer": "Enedis",
        "model": contract.model(mode),
        "serial_number": meter_id,
    });
    if let Some(v) = contract.tic_version {
        device["sw_version"] = format!("{v:02}").into();
    }
    // No `support_url`: the project has no public address yet, and a made-up one would send
    // users nowhere.
    let origin = json!({
        "name": "linkymon",
        "sw_version": ctx.sw_version,
    });
    let topics = Topics::new(&ctx.base_topic, meter_id);
    let availability = [topics.availability(), topics.leaf("line")];
    entities
        .iter()
        .map(|e| {
            let topic = format!(
                "{}/{}/linky_{meter_id}/{}/config",
                ctx.discovery_prefix, e.component, e.object_id
            );
            let payload = payload(e, meter_id, &device, &origin, &availability);
            Message::new(topic, payload.to_string(), true, 1)
        })
        .collect()
}

/// Labels that a meter sends only at times (an overload, an EJP notice, a mobile peak, a
/// message): a run that has not seen them yet keeps their entities.
const INTERMITTENT: &[&str] = &[
    "PEJP", "ADPS", "ADIR1", "ADIR2", "ADIR3", "DPM1", "FPM1", "DPM2", "FPM2", "DPM3", "FPM3",
    "MSG1", "MSG2", "PPOINTE",
];

/// The logger's object ids start with one of these; the daemon leaves them alone.
const LOGGER_PREFIXES: &[&str] = &["today_", "month_", "price"];

/// The MQTT filter matching every config this module can announce for meter `meter_id`
/// (`<discovery_prefix>/+/linky_<id>/+/config`): subscribe to it for a moment at connection,
/// and give the topics of its retained messages to [`stale_config_clears`].
pub fn config_filter(meter_id: &str, ctx: &Context) -> String {
    format!("{}/+/linky_{meter_id}/+/config", ctx.discovery_prefix)
}

/// The empty retained messages that remove the configs of meter `meter_id` that an earlier
/// run announced and this one does not: the relay contact after `relay.gpio` was unset, the
/// EJP entities after a change to Tempo, the indexes of a former tariff.
///
/// `announced` are the config topics sent now (from [`config_messages`]), `retained` the
/// topics of the non-empty retained configs the broker holds (seen through
/// [`config_filter`]). A retained topic is cleared only when it is this meter's, under this
/// prefix, not announced now, not the logger's (`today_*`, `month_*`, `price`: it announces
/// its own), and not a
/// label that comes and goes ([`INTERMITTENT`]: `PEJP`, `ADPS`, `DPMx`…), whose entity must
/// survive a restart between two notices, nor an energy entity (`energy_*`, whose history
/// must survive a period not seen since the restart). Anything else in `retained` (another meter, another
/// program) is ignored. The output is sorted, each topic once, retained at QoS 1 like the
/// configs, so it can be sent before them.
///
/// Pass the configs of a complete frame: a label lost to a bad checksum would be cleared, and
/// Home Assistant would delete its entity until the label is announced again.
pub fn stale_config_clears<A, R>(
    meter_id: &str,
    announced: A,
    retained: R,
    ctx: &Context,
) -> Vec<Message>
where
    A: IntoIterator,
    A::Item: AsRef<str>,
    R: IntoIterator,
    R::Item: AsRef<str>,
{
    let announced: BTreeSet<String> = announced
        .into_iter()
        .map(|t| t.as_ref().to_owned())
        .collect();
    let node = format!("linky_{meter_id}");
    let keep: BTreeSet<String> = INTERMITTENT.iter().map(|l| object_id(l)).collect();
    let ours = |topic: &str| -> bool {
        let Some(rest) = topic.strip_prefix(&ctx.discovery_prefix) else {
            return false;
        };
        let parts: Vec<&str> = rest.split('/').collect();
        // ["", component, node, object_id, "config"]
        matches!(
            parts.as_slice(),
            ["", component, n, object, "config"]
                if ["sensor", "binary_sensor"].contains(component)
                    && *n == node
                    && !LOGGER_PREFIXES.iter().any(|p| object.starts_with(p))
                    && !object.starts_with(energy::ENERGY_PREFIX)
                    && !keep.contains(*object)
        )
    };
    let stale: BTreeSet<String> = retained
        .into_iter()
        .map(|t| t.as_ref().to_owned())
        .filter(|t| ours(t) && !announced.contains(t))
        .collect();
    stale
        .into_iter()
        .map(|topic| Message::new(topic, String::new(), true, 1))
        .collect()
}

/// The logger's entities, on the same device as the daemon's: today's and the month's cost
/// (`monetary`, `total`, reset at local midnight and on the 1st) and energy per period code,
/// read from the retained `<base>/<id>/today` and `<base>/<id>/month` messages, and, when
/// prices are configured, the price now from `<base>/<id>/price`. `periods` are the codes the
/// meter's indexes count (`HN`, `PM`…); call again when one appears. `(currency, priced)`:
/// the currency of costs, and whether any price is configured. `mode` and `contract` give the
/// device's model, the same the daemon announces, so the two never disagree about the device.
///
/// The price is what Home Assistant's energy dashboard takes as "an entity with the current
/// price": a number with a unit ending in `/kWh` (`EUR/kWh`). It has no device class
/// (`monetary` accepts only a currency as unit) and state class `measurement`, so its history
/// is kept as statistics.
pub fn today_config_messages<I>(
    meter_id: &str,
    mode: Mode,
    contract: &Contract,
    periods: I,
    (currency, priced): (&str, bool),
    ctx: &Context,
) -> Vec<Message>
where
    I: IntoIterator,
    I::Item: AsRef<str>,
{
    let topics = Topics::new(&ctx.base_topic, meter_id);
    let periods: BTreeSet<String> = periods.into_iter().map(|p| p.as_ref().to_owned()).collect();
    let periods: Vec<&String> = periods
        .iter()
        .filter(|p| p.bytes().all(|b| b.is_ascii_alphanumeric()))
        .collect();
    let mut entities = Vec::new();
    // (object id prefix, name, topic, reset template, how a period is keyed in the payload)
    let spans = [
        ("today", "today", topics.leaf("today"), TODAY_RESET, false),
        (
            "month",
            "this month",
            topics.leaf("month"),
            MONTH_RESET,
            true,
        ),
    ];
    for (prefix, span, topic, reset, lowercase) in spans {
        entities.push(Entity {
            classes: Classes {
                device_class: Some("monetary"),
                state_class: Some("total"),
                unit: None,
            },
            qos: 1,
            value_template: Some("{{ value_json.cost }}".to_owned()),
            last_reset: Some(reset),
            unit_text: Some(currency.to_owned()),
            ..Entity::sensor(
                format!("{prefix}_cost"),
                format!("Cost {span}"),
                topic.clone(),
            )
        });
        for period in &periods {
            let key = if lowercase {
                period.to_ascii_lowercase()
            } else {
                (*period).clone()
            };
            entities.push(Entity {
                // No state class: the meter's indexes already feed the energy dashboard, and a
                // second source of the same energy would count it twice.
                classes: classes("energy", None, "Wh"),
                qos: 1,
                value_template: Some(format!("{{{{ value_json.energy_wh.{key} | default(0) }}}}")),
                ..Entity::sensor(
                    format!("{prefix}_energy_{}", object_id(period)),
                    format!("Energy {span} {period}"),
                    topic.clone(),
                )
            });
        }
    }
    if priced {
        entities.push(Entity {
            classes: Classes {
                device_class: None,
                state_class: Some("measurement"),
                unit: None,
            },
            qos: 1,
            value_template: Some(LABEL_TEMPLATE.to_owned()),
            unit_text: Some(format!("{currency}/kWh")),
            precision: Some(4),
            ..Entity::sensor("price", "Price per kWh", topics.leaf("price"))
        });
    }
    // The logger's figures stay true while the meter's line is silent.
    for entity in &mut entities {
        entity.follows_line = false;
    }
    messages(&entities, meter_id, mode, contract, ctx)
}

/// When today's totals started: local midnight of `today`'s `date`.
const TODAY_RESET: &str = "{{ as_local(as_datetime(value_json.date)).isoformat() }}";

/// When the month's totals started: local midnight of the 1st of `month`'s month.
const MONTH_RESET: &str = "{{ as_local(as_datetime(value_json.month ~ '-01')).isoformat() }}";

/// The template of a label's own topic: the value, and unknown (`None`) for the empty
/// retained payload that clears a label gone from the frames (Home Assistant's MQTT sensor
/// reads a rendered `None` as unknown, but ignores an empty state on a numeric sensor, which
/// would keep the stale value).
const LABEL_TEMPLATE: &str = "{{ value if value != '' else None }}";

/// The entity of one label, from its row in the table.
fn label_entity(label: &str, topics: &Topics) -> Entity {
    let mut e = Entity::sensor(object_id(label), label, topics.label(label));
    e.value_template = Some(LABEL_TEMPLATE.to_owned());
    let Some(spec) = labels::spec(label) else {
        e.diagnostic = true;
        return e;
    };
    e.name = spec.name.to_owned();
    // The indexes named by label are diagnostics: the energy dashboard uses the entities named
    // by period ([`energy_config_messages`]), which survive a change of mode.
    e.diagnostic = matches!(spec.role, Role::Diagnostic | Role::Index);
    e.enabled_by_default = !rarely_used(label);
    if let Some(unit) = spec.unit {
        let (mut classes, factor) = unit_classes(unit);
        if CONTRACT_CONSTANTS.contains(&label) {
            classes.state_class = None;
            e.diagnostic = true;
        }
        e.classes = classes;
        e.precision = precision(unit);
        if factor != 1 {
            e.value_template = Some(format!(
                "{{{{ value | int * {factor} if value != '' else None }}}}"
            ));
        }
    } else if spec.kind == Kind::Text && spec.horodate {
        // DATE's data is empty and DPMx/FPMx's is `00`: what matters is the horodate, which
        // only `state` carries (`values['<LABEL>_ts']`). Absent from a frame means none: unknown.
        e.state_topic = topics.state();
        e.qos = 1;
        e.classes.device_class = Some("timestamp");
        e.value_template = Some(timestamp_template(label));
    } else if let Some((_, values)) = ENUMS.iter().find(|(l, _)| *l == label) {
        let pairs: Vec<String> = values
            .iter()
            .map(|(raw, shown)| format!("'{raw}': '{shown}'"))
            .collect();
        e.classes = ENUM;
        e.options = values.iter().map(|(_, shown)| *shown).collect();
        // An empty payload (the label gone) is no key: `None`, unknown.
        e.value_template = Some(format!("{{{{ {{{}}}.get(value) }}}}", pairs.join(", ")));
    }
    e
}

/// Entities that do not come from a label: the line, estimates, decoder counters, EJP, Tempo
/// and the relay contact.
fn fixed_entities(mode: Mode, contract: &Contract, relay: bool, topics: &Topics) -> Vec<Entity> {
    let (power, _) = unit_classes(Unit::W);
    let mut entities = vec![
        Entity {
            component: "binary_sensor",
            qos: 1,
            classes: Classes {
                device_class: Some("connectivity"),
                ..Classes::default()
            },
            diagnostic: true,
            // Visible while `OFF`: that is what it is there to say.
            follows_line: false,
            ..Entity::sensor("line", "TIC line", topics.leaf("line"))
        },
        Entity {
            classes: power,
            precision: precision(Unit::W),
            ..Entity::sensor("power", "Active power", topics.leaf("power"))
        },
        Entity {
            classes: power,
            precision: precision(Unit::W),
            ..Entity::sensor("injection", "Injected power", topics.leaf("injection"))
        },
    ];
    let diag = [
        ("frames_ok", "Frames received"),
        ("checksum_errors", "Checksum errors"),
        ("bytes_skipped", "Bytes skipped"),
        ("uptime_s", "Uptime"),
        ("spool_backlog", "Spool backlog"),
        ("spool_bytes", "Spool size"),
    ];
    for (key, name) in diag {
        let classes = match key {
            "uptime_s" => classes("duration", None, "s"),
            // `state` messages waiting on disk for the broker: non-zero after an outage.
            "spool_backlog" => Classes {
                state_class: MEASUREMENT,
                ..Classes::default()
            },
            "spool_bytes" => classes("data_size", MEASUREMENT, "B"),
            // Counters restart with the daemon, which `total_increasing` expects.
            _ => Classes {
                state_class: TOTAL_INCREASING,
                ..Classes::default()
            },
        };
        entities.push(Entity {
            classes,
            value_template: Some(format!("{{{{ value_json.{key} }}}}")),
            diagnostic: true,
            follows_line: false,
            ..Entity::sensor(key, name, topics.leaf("diag"))
        });
    }
    if contract.has_ejp(mode) {
        for (key, name) in [("ejp", "EJP peak"), ("ejp_notice", "EJP peak announced")] {
            entities.push(Entity {
                component: "binary_sensor",
                qos: 1,
                ..Entity::sensor(key, name, topics.leaf(key))
            });
        }
    }
    if relay {
        // Whatever the contract: the supplier may program the contact for any purpose.
        entities.push(Entity {
            component: "binary_sensor",
            qos: 1,
            follows_line: false,
            ..Entity::sensor("relay", "Relay contact", topics.leaf("relay"))
        });
    }
    if contract.tariff == Tariff::Tempo {
        let colours = [
            ("tempo_today", "Tempo colour today"),
            ("tempo_tomorrow", "Tempo colour tomorrow"),
        ];
        for (key, name) in colours {
            entities.push(Entity {
                classes: ENUM,
                options: TEMPO_COLOURS.to_vec(),
                value_template: Some(format!(
                    "{{{{ value_json.derived.{key} | default('None') }}}}"
                )),
                qos: 1,
                ..Entity::sensor(key, name, topics.state())
            });
        }
    }
    entities
}

/// The config payload of one entity; `availability` is the daemon's topic and the line's.
fn payload(
    e: &Entity,
    meter_id: &str,
    device: &Value,
    origin: &Value,
    availability: &[String; 2],
) -> Value {
    let unique_id = format!("linky_{meter_id}_{}", e.object_id);
    let mut p = Map::new();
    let mut put = |key: &str, value: Value| {
        p.insert(key.to_owned(), value);
    };
    put("name", e.name.as_str().into());
    put(
        "default_entity_id",
        format!("{}.{unique_id}", e.component).into(),
    );
    put("unique_id", unique_id.into());
    put("state_topic", e.state_topic.as_str().into());
    let [daemon, line] = availability;
    if e.follows_line {
        put(
            "availability",
            json!([
                { "topic": daemon, "payload_available": "online", "payload_not_available": "offline" },
                { "topic": line, "payload_available": "ON", "payload_not_available": "OFF" },
            ]),
        );
        put("availability_mode", "all".into());
    } else {
        put("availability_topic", daemon.as_str().into());
        put("payload_available", "online".into());
        put("payload_not_available", "offline".into());
    }
    put("device", device.clone());
    put("origin", origin.clone());
    if e.qos != 0 {
        put("qos", e.qos.into());
    }
    if e.component == "binary_sensor" {
        put("payload_on", "ON".into());
        put("payload_off", "OFF".into());
    }
    let optional = [
        ("device_class", e.classes.device_class),
        ("state_class", e.classes.state_class),
        ("unit_of_measurement", e.classes.unit),
        ("value_template", e.value_template.as_deref()),
        ("entity_category", e.diagnostic.then_some("diagnostic")),
    ];
    for (key, value) in optional {
        if let Some(v) = value {
            put(key, v.into());
        }
    }
    if let Some(unit) = &e.unit_text {
        put("unit_of_measurement", unit.as_str().into());
    }
    if let Some(reset) = e.last_reset {
        put("last_reset_value_template", reset.into());
    }
    if !e.options.is_empty() {
        put("options", e.options.clone().into());
    }
    if let Some(precision) = e.precision {
        put("suggested_display_precision", precision.into());
    }
    if !e.enabled_by_default {
        put("enabled_by_default", false.into());
    }
    Value::Object(p)
}

#[cfg(test)]
mod tests;
