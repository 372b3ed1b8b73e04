//! The logger's view of one `state` message (contract §3): what a log line needs, read once.
//!
//! Only what the daily logs and Home Assistant need is kept; everything else in the payload is
//! ignored, so later additions to `state` never break the logger.

use jiff::Timestamp;
use serde::Deserialize;
use serde_json::{Map, Value};

use super::checks::{self, CONTRACT_MARGIN, MAX_A, MAX_INDEX, MAX_VA};
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
    /// The most power the contract lets through, W (`ISOUSC` × 230 V × phases, or `PREF`),
    /// when the state says; what the index plausibility check allows for.
    pub max_power_w: Option<f64>,
    /// The daemon's per-meter sequence number, when it sends one (contract §3).
    pub seq: Option<u64>,
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
    /// No `meter` id, or one that is not a meter's: 12 digits (it names files and topics).
    #[error("no usable `meter` id (12 digits)")]
    NoMeter,
    /// A field a log line carries holds what no meter sends (a period code, a number).
    #[error("a field holds what no meter sends: {0}")]
    BadField(String),
    /// A number beyond the TIC's width or far beyond the contract.
    #[error("an implausible value: {0}")]
    Implausible(String),
}

impl StateError {
    /// The class it is counted in.
    pub fn refusal(&self) -> checks::Refusal {
        match self {
            StateError::Json(_) | StateError::Time(_) => checks::Refusal::Unparsable,
            StateError::NoMeter => checks::Refusal::BadMeterId,
            StateError::BadField(_) => checks::Refusal::BadField,
            StateError::Implausible(_) => checks::Refusal::Implausible,
        }
    }
}

/// The first `n` characters of `s`, for a message that names a bad value without copying a
/// flood into the log.
fn cut(s: &str) -> String {
    let mut out: String = s.chars().take(24).collect();
    if out.len() < s.len() {
        out.push('…');
    }
    format!("{out:?}")
}

#[derive(Deserialize)]
struct Raw {
    ts: Option<String>,
    meter: Option<String>,
    mode: Option<String>,
    seq: Option<u64>,
    #[serde(default)]
    values: Map<String, Value>,
    #[serde(default)]
    derived: Value,
}

impl State {
    /// Reads a `state` payload, refusing one whose fields a meter could not have sent (see
    /// [`super::checks`]): every text that reaches a log line is one of the TIC's codes, every
    /// number fits the TIC's width.
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
            .filter(|m| checks::is_meter_id(m))
            .ok_or(StateError::NoMeter)?;
        let mode = match raw.mode.as_deref() {
            Some("standard") => Mode::Standard,
            _ => Mode::Historic,
        };
        let values = &raw.values;
        let number = |label: &str| values.get(label).and_then(Value::as_u64);
        let period_code = match &raw.derived["period"] {
            Value::Null => None,
            Value::String(p) if checks::is_period_code(p) => Some(p.clone()),
            other => {
                return Err(StateError::BadField(format!(
                    "derived.period {}",
                    cut(&other.to_string())
                )));
            }
        };
        let ptec = match values.get("PTEC") {
            None | Some(Value::Null) => None,
            Some(Value::String(p)) if checks::is_ptec(p) => Some(p.clone()),
            Some(other) => {
                return Err(StateError::BadField(format!(
                    "PTEC {}",
                    cut(&other.to_string())
                )));
            }
        };
        // A number a log line carries: absent, or a whole number within the TIC's width.
        let index_number = |label: &str| -> Result<Option<u64>, StateError> {
            match values.get(label) {
                None | Some(Value::Null) => Ok(None),
                Some(v) => match v.as_u64() {
                    Some(n) if n <= MAX_INDEX => Ok(Some(n)),
                    _ => Err(StateError::Implausible(format!(
                        "{} {}",
                        cut(label),
                        cut(&v.to_string())
                    ))),
                },
            }
        };
        let mut state = State {
            ts,
            meter,
            mode,
            periode: match mode {
                Mode::Historic => ptec,
                Mode::Standard => period_code.clone(),
            },
            period_code,
            indexes: Vec::new(),
            registers: Vec::new(),
            ntarf: number("NTARF").and_then(|n| u8::try_from(n).ok()),
            injected_index: index_number("EAIT")?,
            consumed_va: raw.derived["consumption_va"].as_i64(),
            current_a: None,
            injection_w: raw.derived["injection_w"].as_i64().unwrap_or(0),
            contract: Contract::from_state(values, &raw.derived),
            max_power_w: None,
            seq: raw.seq,
            payload: payload.to_owned(),
        };
        for label in values.keys() {
            if let Some(key) = index_key(label) {
                if let Some(v) = index_number(label)? {
                    state.indexes.push((key.to_owned(), v));
                }
            } else if let Some(n) = label
                .strip_prefix("EASF")
                .filter(|n| n.len() == 2)
                .and_then(|n| n.parse::<u8>().ok())
                .filter(|n| (1..=10).contains(n))
                && let Some(v) = index_number(label)?
            {
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
        state.check_powers(values)?;
        Ok(state)
    }
}

impl State {
    /// Powers and currents within the TIC's width, and within [`CONTRACT_MARGIN`] times what
    /// the contract allows when the state says (`ISOUSC`, or `PREF`); notes that limit.
    fn check_powers(&mut self, values: &Map<String, Value>) -> Result<(), StateError> {
        let number = |label: &str| values.get(label).and_then(Value::as_i64);
        let three_phase = self.contract.three_phase || number("IINST3").is_some();
        let phases: i64 = if three_phase { 3 } else { 1 };
        let (max_w, max_a) = match self.mode {
            Mode::Historic => match number("ISOUSC").filter(|a| (1..=999).contains(a)) {
                Some(a) => (Some(a * 230 * phases), Some(a * phases)),
                None => (None, None),
            },
            Mode::Standard => match number("PREF").filter(|k| (1..=999).contains(k)) {
                Some(kva) => (Some(kva * 1000), Some(kva * 1000 / 200 * phases)),
                None => (None, None),
            },
        };
        self.max_power_w = max_w.map(|w| w as f64);
        let va_limit = max_w.map_or(MAX_VA, |w| (w * CONTRACT_MARGIN).min(MAX_VA));
        let a_limit = max_a.map_or(MAX_A * phases, |a| a * CONTRACT_MARGIN);
        let checks = [
            ("consumption_va", self.consumed_va, va_limit),
            ("PAPP", number("PAPP"), va_limit),
            ("SINSTS", number("SINSTS"), va_limit),
            ("current", self.current_a, a_limit),
            ("injection_w", Some(self.injection_w), MAX_VA * 10),
        ];
        for (what, value, limit) in checks {
            if let Some(v) = value
                && !(0..=limit).contains(&v)
            {
                return Err(StateError::Implausible(format!(
                    "{what} {v} (at most {limit})"
                )));
            }
        }
        Ok(())
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
            r#"{"ts":"2026-01-01T10:00:00+01:00","meter":"022812345678","mode":"standard",
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
        let no_ts = r#"{"meter":"021728123456","mode":"historic","values":{},"derived":{}}"#;
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

    fn with(values: &str, derived: &str) -> Result<State, StateError> {
        State::parse(&format!(
            r#"{{"ts":"2026-01-01T10:00:00+01:00","meter":"021728123456","mode":"historic",
                "values":{{"ISOUSC":30,{values}}},"derived":{{{derived}}}}}"#
        ))
    }

    #[test]
    fn a_forged_period_never_reaches_a_line() {
        let forged = r#""PTEC":"HN..\n2026/01/01 10:00:00\tDATA\tPeriode=HN.., IndexHN=999999999""#;
        assert!(matches!(with(forged, ""), Err(StateError::BadField(_))));
        assert!(matches!(
            with(r#""PTEC":"HN..""#, r#""period":"HN\nDATA""#),
            Err(StateError::BadField(_))
        ));
        assert!(matches!(
            with(r#""PTEC":7"#, ""),
            Err(StateError::BadField(_))
        ));
        let ok = with(r#""PTEC":"HCJB""#, r#""period":"HCJB""#).unwrap();
        assert_eq!(ok.periode.as_deref(), Some("HCJB"));
    }

    #[test]
    fn numbers_beyond_the_tic_or_the_contract_are_refused() {
        for values in [
            r#""BASE":18446744073709551616"#,
            r#""BASE":18446744073709551615"#,
            r#""BASE":1000000000"#,
            r#""BASE":-1"#,
            r#""EASF01":1e12"#,
            r#""IINST":500"#,
        ] {
            assert!(
                matches!(with(values, ""), Err(StateError::Implausible(_))),
                "{values}"
            );
        }
        // 30 A × 230 V = 6.9 kVA; 3× is 20.7 kVA.
        assert!(matches!(
            with(r#""PAPP":30000"#, r#""consumption_va":30000"#),
            Err(StateError::Implausible(_))
        ));
        let ok = with(r#""BASE":999999999,"IINST":40"#, r#""consumption_va":9000"#).unwrap();
        assert_eq!(ok.max_power_w, Some(6900.0));
        assert_eq!(ok.indexes, [("BASE".to_owned(), 999_999_999)]);
    }

    #[test]
    fn seq_is_read_when_the_daemon_sends_it() {
        assert_eq!(with(r#""BASE":1"#, "").unwrap().seq, None);
        let s = State::parse(
            r#"{"ts":"2026-01-01T10:00:00+01:00","meter":"021728123456","seq":42,"values":{}}"#,
        )
        .unwrap();
        assert_eq!(s.seq, Some(42));
    }

    #[test]
    fn forged_meter_ids_are_refused() {
        for id in ["0228", "abcdefghijkl", &"1".repeat(200_000)] {
            let p = format!(r#"{{"ts":"2026-01-01T10:00:00+01:00","meter":"{id}","values":{{}}}}"#);
            assert_eq!(State::parse(&p), Err(StateError::NoMeter));
        }
    }
}
