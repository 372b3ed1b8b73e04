//! The logger's view of one `state` message (contract §3): what a log line needs, read once.
//!
//! Only what the daily logs and Home Assistant need is kept; everything else in the payload is
//! ignored, so later additions to `state` never break the logger.

use jiff::Timestamp;
use serde::Deserialize;
use serde_json::{Map, Value};

use super::line::{HISTORIC_INDEX_KEYS, index_key};
use crate::publish::discovery::Contract;
use crate::tic::Mode;

/// One `state` message, parsed.
#[derive(Debug, Clone, PartialEq)]
pub struct State {
    /// When the frame's last byte arrived (`ts`).
    pub ts: Timestamp,
    /// The meter's serial number.
    pub meter: String,
    /// Historic or standard.
    pub mode: Mode,
    /// What `Periode=` says: historic `PTEC` as sent, else `derived.period`.
    pub periode: Option<String>,
    /// `derived.period`, the code prices use.
    pub period_code: Option<String>,
    /// Historic indexes already keyed for the log (`HN`, `HPM`, `HC`…), in the order of
    /// [`super::line::HISTORIC_INDEX_KEYS`] (the TIC's order).
    pub indexes: Vec<(String, u64)>,
    /// Standard-mode supplier registers `EASFnn` (n, Wh), by n.
    pub registers: Vec<(u8, u64)>,
    /// Standard mode: the supplier register counting now (`NTARF`).
    pub ntarf: Option<u8>,
    /// `EAIT`, the injected-energy index.
    pub injected_index: Option<u64>,
    /// `derived.consumption_va`: `PAPP` or `SINSTS`.
    pub consumed_va: Option<i64>,
    /// `IINST` (the sum of `IINST1..3` on a three-phase historic meter) or `IRMS1`.
    pub current_a: Option<i64>,
    /// `derived.injection_w`.
    pub injection_w: i64,
    /// What Home Assistant's device block says about the contract.
    pub contract: Contract,
    /// The message as received, so an unfinished line can be saved and replayed.
    pub payload: String,
}

/// Why a `state` message was not logged.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StateError {
    /// Not the JSON object of the contract.
    #[error("not a state object: {0}")]
    Json(String),
    /// No `ts` (only `linkymon decode` leaves it out), or one that is not ISO 8601 with offset.
    #[error("no usable `ts` (ISO 8601 with offset): {0:?}")]
    Time(Option<String>),
    /// No `meter` id, or one that is not letters and digits (it names files and topics).
    #[error("no usable `meter` id (letters and digits)")]
    NoMeter,
}

#[derive(Deserialize)]
struct Raw {
    ts: Option<String>,
    meter: Option<String>,
    mode: Option<String>,
    #[serde(default)]
    values: Map<String, Value>,
    #[serde(default)]
    derived: Value,
}

impl State {
    /// Reads a `state` payload.
    pub fn parse(payload: &str) -> Result<State, StateError> {
        let raw: Raw =
            serde_json::from_str(payload).map_err(|e| StateError::Json(e.to_string()))?;
        let ts = raw
            .ts
            .as_deref()
            .and_then(|t| t.parse::<Timestamp>().ok())
            .ok_or_else(|| StateError::Time(raw.ts.clone()))?;
        let meter = raw
            .meter
            .filter(|m| !m.is_empty() && m.bytes().all(|b| b.is_ascii_alphanumeric()))
            .ok_or(StateError::NoMeter)?;
        let mode = match raw.mode.as_deref() {
            Some("standard") => Mode::Standard,
            _ => Mode::Historic,
        };
        let values = &raw.values;
        let number = |label: &str| values.get(label).and_then(Value::as_u64);
        let text = |label: &str| values.get(label).and_then(Value::as_str);
        let period_code = raw.derived["period"].as_str().map(str::to_owned);
        let mut state = State {
            ts,
            meter,
            mode,
            periode: match mode {
                Mode::Historic => text("PTEC").map(str::to_owned),
                Mode::Standard => period_code.clone(),
            },
            period_code,
            indexes: Vec::new(),
            registers: Vec::new(),
            ntarf: number("NTARF").and_then(|n| u8::try_from(n).ok()),
            injected_index: number("EAIT"),
            consumed_va: raw.derived["consumption_va"].as_i64(),
            current_a: None,
            injection_w: raw.derived["injection_w"].as_i64().unwrap_or(0),
            contract: Contract::from_state(values, &raw.derived),
            payload: payload.to_owned(),
        };
        for (label, value) in values {
            let Some(v) = value.as_u64() else { continue };
            if let Some(key) = index_key(label) {
                state.indexes.push((key.to_owned(), v));
            } else if let Some(n) = label.strip_prefix("EASF").and_then(|n| n.parse().ok()) {
                state.registers.push((n, v));
            }
        }
        state
            .indexes
            .sort_by_key(|(key, _)| HISTORIC_INDEX_KEYS.iter().position(|(_, k)| k == key));
        state.registers.sort_unstable();
        let phases: Vec<i64> = ["IINST1", "IINST2", "IINST3"]
            .iter()
            .filter_map(|l| values.get(*l).and_then(Value::as_i64))
            .collect();
        state.current_a = values
            .get("IINST")
            .and_then(Value::as_i64)
            .or((!phases.is_empty()).then(|| phases.iter().sum()))
            .or(values.get("IRMS1").and_then(Value::as_i64));
        Ok(state)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The contract's example `state`.
    pub const EJP_STATE: &str = r#"{"ts":"2026-11-28T21:04:05+01:00","meter":"021728123456","mode":"historic",
 "values":{"ADCO":"021728123456","OPTARIF":"EJP.","ISOUSC":45,"EJPHN":688322,"EJPHPM":80072,
           "PTEC":"HN..","IINST":13,"IMAX":90,"PAPP":0,"MOTDETAT":"000000"},
 "derived":{"injection_w":2990,"ejp":false,"ejp_notice":false,"consumption_va":0,"period":"HN"}}"#;

    #[test]
    fn the_contract_example_gives_what_a_perl_line_needs() {
        let s = State::parse(EJP_STATE).unwrap();
        assert_eq!(s.ts.to_string(), "2026-11-28T20:04:05Z");
        assert_eq!(s.meter, "021728123456");
        assert_eq!(s.periode.as_deref(), Some("HN.."));
        assert_eq!(
            s.indexes,
            [("HN".to_owned(), 688_322), ("HPM".to_owned(), 80_072)]
        );
        assert_eq!(
            (s.consumed_va, s.current_a, s.injection_w),
            (Some(0), Some(13), 2990)
        );
    }

    #[test]
    fn standard_mode_keeps_the_supplier_registers_and_ntarf() {
        let s = State::parse(
            r#"{"ts":"2026-01-01T10:00:00+01:00","meter":"0228","mode":"standard",
                "values":{"EAST":5000,"EASF01":3000,"EASF02":2000,"NTARF":2,"IRMS1":4,"EAIT":77},
                "derived":{"injection_w":0,"consumption_va":900,"period":"HP"}}"#,
        )
        .unwrap();
        assert_eq!(s.registers, [(1, 3000), (2, 2000)]);
        assert_eq!(s.ntarf, Some(2));
        assert_eq!(s.periode.as_deref(), Some("HP"));
        assert_eq!((s.current_a, s.injected_index), (Some(4), Some(77)));
    }

    #[test]
    fn a_state_without_ts_or_meter_is_refused() {
        let no_ts = r#"{"meter":"1","mode":"historic","values":{},"derived":{}}"#;
        assert!(matches!(State::parse(no_ts), Err(StateError::Time(None))));
        let no_meter = r#"{"ts":"2026-01-01T10:00:00+01:00","meter":null,"values":{}}"#;
        assert_eq!(State::parse(no_meter), Err(StateError::NoMeter));
        let path = r#"{"ts":"2026-01-01T10:00:00+01:00","meter":"../etc","values":{}}"#;
        assert_eq!(
            State::parse(path),
            Err(StateError::NoMeter),
            "it names a directory"
        );
        assert!(matches!(State::parse("[]"), Err(StateError::Json(_))));
    }
}
