//! A [`Reading`]: one frame's values, typed, with what the contract derives from them.

use std::collections::BTreeMap;

use serde::Serialize;
use serde::ser::{SerializeMap, Serializer};

use super::calendar::NextChange;
use super::labels::{self, LabelSpec};
use super::stge::{Stge, TempoColour};
use crate::tic::Mode;

/// A label's value, typed by the label table.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(untagged)]
pub enum Value {
    /// A numeric label, leading zeros dropped.
    Number(i64),
    /// A text label, trimmed.
    Text(String),
}

impl Value {
    /// The integer, for numeric labels.
    pub fn as_number(&self) -> Option<i64> {
        match self {
            Value::Number(n) => Some(*n),
            Value::Text(_) => None,
        }
    }

    /// The text, for text labels.
    pub fn as_text(&self) -> Option<&str> {
        match self {
            Value::Text(s) => Some(s),
            Value::Number(_) => None,
        }
    }
}

impl std::fmt::Display for Value {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Value::Number(n) => write!(f, "{n}"),
            Value::Text(s) => f.write_str(s),
        }
    }
}

/// One label of a reading.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// The TIC label as sent (`PAPP`, `NJOURF+1`, or a label the table does not know).
    pub label: String,
    /// Its value.
    pub value: Value,
    /// Its horodate as ISO 8601, for standard-mode labels that carry one.
    pub timestamp: Option<String>,
}

impl Entry {
    /// The label's row in the table, if it is known.
    pub fn spec(&self) -> Option<&'static LabelSpec> {
        labels::spec(&self.label)
    }
}

/// What the contract computes from the values (the `derived` object of `state`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Derived {
    /// Estimated injected power in W: `SINSTI` in standard mode; in historic mode
    /// `IINST × voltage` when `PAPP` is 0 (the Perl tool's rule), else 0.
    pub injection_w: i64,
    /// An EJP peak period is in progress.
    pub ejp: bool,
    /// An EJP peak is announced and has not started yet.
    pub ejp_notice: bool,
    /// Apparent power drawn, in VA (`PAPP` or `SINSTS`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub consumption_va: Option<i64>,
    /// The tariff period code the logs and prices use (`HN`, `PM`, `HC`, `HP`, `BASE`, `HCJB`…).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub period: Option<String>,
    /// Today's Tempo colour, on a Tempo contract.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tempo_today: Option<TempoColour>,
    /// Tomorrow's Tempo colour, once announced.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tempo_tomorrow: Option<TempoColour>,
    /// The status register, field by field (standard mode).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stge: Option<Stge>,
    /// Total energy drawn in Wh: `EAST` in standard mode; in historic mode the sum of the
    /// option's indexes (`EJPHN + EJPHPM`…), once each has been seen.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub energy_import_wh: Option<i64>,
    /// Total energy injected in Wh (`EAIT`, standard mode, producers).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub energy_export_wh: Option<i64>,
    /// Energy drawn per tariff period in Wh, by period name (`hn`, `pm`, `hcjb`…): the
    /// historic index of that period, or the `EASFxx` learnt to count it.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub energy: BTreeMap<&'static str, i64>,
    /// The next tariff change (standard mode, when the day profiles tell).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_change: Option<NextChange>,
    /// The frame had every group the calendar reads (`DATE`, `STGE`, `NTARF`, `NJOURF`,
    /// `NJOURF+1`, `PJOURF+1`): `next_change` is then the answer, `None` meaning that no
    /// change comes before the end of tomorrow. Otherwise `next_change` says nothing.
    #[serde(skip)]
    pub calendar_read: bool,
}

/// One frame, typed: what every output (MQTT, screen, LED, logs) works from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reading {
    /// The meter's serial number (ADCO or ADSC), or the last one seen on this line when this
    /// frame's group was lost to a bad checksum.
    pub meter: Option<String>,
    /// The frame's dialect.
    pub mode: Mode,
    /// Every verified label that passed the index guard, in frame order.
    pub entries: Vec<Entry>,
    /// Values computed from the labels.
    pub derived: Derived,
}

impl Reading {
    /// The value of a label, if the frame had it.
    pub fn get(&self, label: &str) -> Option<&Value> {
        self.entries
            .iter()
            .find(|e| e.label == label)
            .map(|e| &e.value)
    }

    /// The integer value of a numeric label.
    pub fn number(&self, label: &str) -> Option<i64> {
        self.get(label).and_then(Value::as_number)
    }

    /// The text value of a text label.
    pub fn text(&self, label: &str) -> Option<&str> {
        self.get(label).and_then(Value::as_text)
    }

    /// The `state` payload of the contract; `ts` is omitted when the source has no clock, and
    /// `seq` when the caller does not number its messages (`linkymon decode`).
    pub fn to_state_json(&self, ts: Option<&str>, seq: Option<u64>) -> String {
        let state = StatePayload {
            ts,
            seq,
            meter: self.meter.as_deref(),
            mode: self.mode.as_str(),
            values: Values(&self.entries),
            derived: &self.derived,
        };
        // Every key is a string and every value a string, integer, bool or null:
        // serde_json cannot fail on these types.
        serde_json::to_string(&state).expect("the state payload serializes")
    }
}

/// The `state` object (CONTRACT §3), its keys in the contract's order.
#[derive(Serialize)]
struct StatePayload<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    ts: Option<&'a str>,
    meter: Option<&'a str>,
    mode: &'static str,
    values: Values<'a>,
    derived: &'a Derived,
    #[serde(skip_serializing_if = "Option::is_none")]
    seq: Option<u64>,
}

/// The `values` object: each label in frame order, followed by `<LABEL>_ts` when it carries
/// a horodate.
struct Values<'a>(&'a [Entry]);

impl Serialize for Values<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(None)?;
        for entry in self.0 {
            map.serialize_entry(&entry.label, &entry.value)?;
            if let Some(ts) = &entry.timestamp {
                map.serialize_entry(&format!("{}_ts", entry.label), ts)?;
            }
        }
        map.end()
    }
}

impl TempoColour {
    /// From the historic `DEMAIN` value or a `PTEC` colour suffix.
    pub(crate) fn from_historic(code: &str) -> Option<Self> {
        match code {
            "BLEU" | "JB" => Some(TempoColour::Blue),
            "BLAN" | "JW" => Some(TempoColour::White),
            "ROUG" | "JR" => Some(TempoColour::Red),
            _ => None,
        }
    }
}
