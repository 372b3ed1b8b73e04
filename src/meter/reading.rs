//! A [`Reading`]: one frame's values, typed, with what the contract derives from them.

use std::borrow::Cow;
use std::sync::Arc;

use serde::Serialize;

use super::labels::{LABELS, LabelSpec};
use super::stge::{Stge, TempoColour};
use crate::tic::Mode;

/// A label's value, typed by the label table.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(untagged)]
pub enum Value {
    /// A numeric label, leading zeros dropped.
    Number(i64),
    /// A text label, trimmed. Shared: a meter repeats most texts frame after frame, and
    /// [`super::Meter`] hands out the previous frame's when it did.
    Text(Arc<str>),
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
    /// The TIC label (`PAPP`): the table's own name for a known label, so reading a frame
    /// copies only the labels the table does not know.
    pub label: Cow<'static, str>,
    /// Its value.
    pub value: Value,
    /// Its horodate as ISO 8601, for standard-mode labels that carry one.
    pub timestamp: Option<String>,
    /// The label's position in [`LABELS`], looked up once when the frame is read.
    pub(super) spec: Option<u8>,
}

impl Entry {
    /// The label's row in the table, if it is known; found when the frame was read, so the
    /// outputs that need it per entry do not search the table again.
    pub fn spec(&self) -> Option<&'static LabelSpec> {
        self.spec.map(|i| &LABELS[usize::from(i)])
    }

    /// The label's position in [`LABELS`], if it is known: a key for per-label state that
    /// needs no hashing.
    pub fn spec_index(&self) -> Option<u8> {
        self.spec
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
}

/// One frame, typed: what every output (MQTT, screen, LED, logs) works from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reading {
    /// The meter's serial number (ADCO or ADSC), or the last one seen on this line when this
    /// frame's group was lost to a bad checksum.
    pub meter: Option<Arc<str>>,
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
        match super::labels::spec_index(label) {
            Some(i) => self.get_known(i),
            None => self
                .entries
                .iter()
                .find(|e| e.spec.is_none() && e.label == label)
                .map(|e| &e.value),
        }
    }

    /// The value of the label at `index` in [`LABELS`] (see [`super::labels::position`]).
    pub fn get_known(&self, index: u8) -> Option<&Value> {
        self.entries
            .iter()
            .find(|e| e.spec == Some(index))
            .map(|e| &e.value)
    }

    /// The integer value of the label at `index` in [`LABELS`].
    pub fn known_number(&self, index: u8) -> Option<i64> {
        self.get_known(index).and_then(Value::as_number)
    }

    /// The text value of the label at `index` in [`LABELS`].
    pub fn known_text(&self, index: u8) -> Option<&str> {
        self.get_known(index).and_then(Value::as_text)
    }

    /// The integer value of a numeric label.
    pub fn number(&self, label: &str) -> Option<i64> {
        self.get(label).and_then(Value::as_number)
    }

    /// The text value of a text label.
    pub fn text(&self, label: &str) -> Option<&str> {
        self.get(label).and_then(Value::as_text)
    }

    /// The `state` payload of the contract; `ts` is omitted when the source has no clock.
    pub fn to_state_json(&self, ts: Option<&str>) -> String {
        let mut out = String::new();
        self.write_state_json(ts, &mut out);
        out
    }

    /// Appends the `state` payload to `out`, for a caller that reuses one buffer. Written by
    /// hand (it runs for every published frame), the same bytes serde_json would write.
    pub fn write_state_json(&self, ts: Option<&str>, out: &mut String) {
        super::json::write_state(out, self, ts);
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
