//! One daily-log line: the Perl LinkyMonitor's `DATA` shape, written and read back.
//!
//! ```text
//! 2021/02/20 19:10:22<TAB>DATA<TAB>Periode=HN.., IndexHN=000688322, IndexHPM=000080072, PuissConsommee=00000, IConsommee=013
//! └ local time ─────┘          └ key=value, separated by ", " ──────────────────────────────────────────────────────────┘
//! ```
//!
//! | key | meaning | written as |
//! |---|---|---|
//! | `Periode` | the tariff period: historic `PTEC` as sent (`HN..`), standard mode the period code (`HP`) | text |
//! | `Index<key>` | one energy index in Wh; [`index_key`] names the key | 9 digits (the TIC width) |
//! | `IndexInjectee` | the injected-energy index (standard `EAIT`), when the meter has one | 9 digits |
//! | `PuissConsommee` | apparent power drawn (`PAPP`/`SINSTS`), VA, averaged over the line's frames | 5 digits |
//! | `IConsommee` | current (`IINST`/`IRMS1`), A, averaged | 3 digits |
//! | `PuissInjectee` | estimated injected power, W, averaged; only when it is not 0 | 5 digits |
//!
//! Readers ignore keys they do not know, so a Perl log, or a log from a later linkymon, reads.
//! This module owns the text only: which frames a line sums up is [`super::window`]'s business.

use std::fmt;
use std::str::FromStr;

use jiff::civil::DateTime;

/// Historic index labels and their log keys: the option prefix stripped, as the Perl tool
/// named its EJP keys (`EJPHN` → `IndexHN`, `EJPHPM` → `IndexHPM`). A test checks that every
/// historic energy index of [`crate::meter::labels::LABELS`] has its key here.
pub const HISTORIC_INDEX_KEYS: &[(&str, &str)] = &[
    ("BASE", "BASE"),
    ("HCHC", "HC"),
    ("HCHP", "HP"),
    ("EJPHN", "HN"),
    ("EJPHPM", "HPM"),
    ("BBRHCJB", "HCJB"),
    ("BBRHPJB", "HPJB"),
    ("BBRHCJW", "HCJW"),
    ("BBRHPJW", "HPJW"),
    ("BBRHCJR", "HCJR"),
    ("BBRHPJR", "HPJR"),
];

/// The log key (after `Index`) of a historic index label, if it is one.
pub fn index_key(label: &str) -> Option<&'static str> {
    HISTORIC_INDEX_KEYS
        .iter()
        .find(|(l, _)| *l == label)
        .map(|(_, k)| *k)
}

/// The tariff period code an index key counts for: the key itself, except the Perl tool's
/// `HPM` (EJP peak hours), whose period is `PM` as `PTEC` says. Prices are keyed by this code.
pub fn period_of_key(key: &str) -> &str {
    if key == "HPM" { "PM" } else { key }
}

/// The period code of a `Periode=` value: `HN..` → `HN`, `TH..` (historic base) → `BASE`;
/// standard-mode codes pass through.
pub fn period_code(periode: &str) -> &str {
    match periode.trim().trim_end_matches('.') {
        "TH" => "BASE",
        code => code,
    }
}

/// One line of a daily log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogLine {
    /// Local time (in `logger.timezone`) of the last frame the line sums up, to the second.
    pub time: DateTime,
    /// `Periode=`: historic `PTEC` as sent, or a standard-mode period code.
    pub period: String,
    /// `Index<key>=` values in Wh, in the order written.
    pub indexes: Vec<(String, u64)>,
    /// `IndexInjectee=`: the injected-energy index in Wh.
    pub injected_index: Option<u64>,
    /// `PuissConsommee=`: average apparent power drawn, VA.
    pub consumed_va: Option<u32>,
    /// `IConsommee=`: average current, A.
    pub current_a: Option<u32>,
    /// `PuissInjectee=`: average injected power, W; absent means none.
    pub injected_w: Option<u32>,
}

impl LogLine {
    /// The value of `Index<key>`.
    pub fn index(&self, key: &str) -> Option<u64> {
        self.indexes.iter().find(|(k, _)| k == key).map(|(_, v)| *v)
    }

    /// The period code of `Periode=` (see [`period_code`]).
    pub fn period_code(&self) -> &str {
        period_code(&self.period)
    }
}

impl fmt::Display for LogLine {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let t = self.time;
        write!(
            f,
            "{:04}/{:02}/{:02} {:02}:{:02}:{:02}\tDATA\tPeriode={}",
            t.year(),
            t.month(),
            t.day(),
            t.hour(),
            t.minute(),
            t.second(),
            self.period
        )?;
        for (key, value) in &self.indexes {
            write!(f, ", Index{key}={value:09}")?;
        }
        if let Some(v) = self.injected_index {
            write!(f, ", IndexInjectee={v:09}")?;
        }
        if let Some(v) = self.consumed_va {
            write!(f, ", PuissConsommee={v:05}")?;
        }
        if let Some(v) = self.current_a {
            write!(f, ", IConsommee={v:03}")?;
        }
        if let Some(v) = self.injected_w {
            write!(f, ", PuissInjectee={v:05}")?;
        }
        Ok(())
    }
}

/// Why a line could not be read. `Copy` and small, so a reader can count them by kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum ParseError {
    /// The line does not start with `YYYY/MM/DD HH:MM:SS` and a tab.
    #[error("no `YYYY/MM/DD HH:MM:SS` time at the start")]
    BadTime,
    /// The second column is not `DATA` (the Perl tool wrote only DATA lines).
    #[error("not a DATA line")]
    NotData,
    /// No `Periode=` key.
    #[error("no Periode=")]
    NoPeriod,
    /// A key this reader knows has a value that is not a number.
    #[error("{0}= is not a number")]
    BadNumber(&'static str),
}

impl FromStr for LogLine {
    type Err = ParseError;

    fn from_str(line: &str) -> Result<Self, ParseError> {
        let line = line.trim_end_matches(['\r', '\n']);
        let (stamp, rest) = line.split_once('\t').ok_or(ParseError::BadTime)?;
        let time = parse_time(stamp.trim()).ok_or(ParseError::BadTime)?;
        let (kind, fields) = rest.split_once('\t').unwrap_or((rest, ""));
        if kind.trim() != "DATA" {
            return Err(ParseError::NotData);
        }
        let mut out = LogLine {
            time,
            period: String::new(),
            indexes: Vec::new(),
            injected_index: None,
            consumed_va: None,
            current_a: None,
            injected_w: None,
        };
        let mut has_period = false;
        for field in fields.split(',') {
            let Some((key, value)) = field.trim().split_once('=') else {
                continue; // not key=value: nothing a reader could use
            };
            match key {
                "Periode" => {
                    out.period = value.to_owned();
                    has_period = true;
                }
                "IndexInjectee" => out.injected_index = Some(number(value, "IndexInjectee")?),
                "PuissConsommee" => out.consumed_va = Some(number(value, "PuissConsommee")?),
                "IConsommee" => out.current_a = Some(number(value, "IConsommee")?),
                "PuissInjectee" => out.injected_w = Some(number(value, "PuissInjectee")?),
                _ => {
                    if let Some(index) = key.strip_prefix("Index").filter(|k| !k.is_empty()) {
                        out.indexes
                            .push((index.to_owned(), number(value, "Index")?));
                    }
                }
            }
        }
        if !has_period {
            return Err(ParseError::NoPeriod);
        }
        Ok(out)
    }
}

fn number<T: FromStr>(value: &str, key: &'static str) -> Result<T, ParseError> {
    let value = value.trim();
    if value.is_empty() || !value.bytes().all(|b| b.is_ascii_digit()) {
        return Err(ParseError::BadNumber(key));
    }
    value.parse().map_err(|_| ParseError::BadNumber(key))
}

/// `YYYY/MM/DD HH:MM:SS`, fixed width as both tools write it.
fn parse_time(s: &str) -> Option<DateTime> {
    let b = s.as_bytes();
    if b.len() != 19 || b[4] != b'/' || b[7] != b'/' || b[10] != b' ' {
        return None;
    }
    if b[13] != b':' || b[16] != b':' {
        return None;
    }
    let digits = |from: usize, to: usize| -> Option<i32> {
        let part = &s[from..to];
        part.bytes()
            .all(|c| c.is_ascii_digit())
            .then(|| part.parse().ok())
            .flatten()
    };
    let [y, mo, d, h, mi, se] = [
        digits(0, 4)?,
        digits(5, 7)?,
        digits(8, 10)?,
        digits(11, 13)?,
        digits(14, 16)?,
        digits(17, 19)?,
    ];
    DateTime::new(
        i16::try_from(y).ok()?,
        i8::try_from(mo).ok()?,
        i8::try_from(d).ok()?,
        i8::try_from(h).ok()?,
        i8::try_from(mi).ok()?,
        i8::try_from(se).ok()?,
        0,
    )
    .ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::meter::labels::{LABELS, Role, Unit};
    use jiff::civil::date;
    use proptest::prelude::*;

    const PERL: &str = "2021/02/20 19:10:22\tDATA\tPeriode=HN.., IndexHN=000688322, \
                        IndexHPM=000080072, PuissConsommee=00000, IConsommee=013";

    fn perl_line() -> LogLine {
        LogLine {
            time: date(2021, 2, 20).at(19, 10, 22, 0),
            period: "HN..".into(),
            indexes: vec![("HN".into(), 688_322), ("HPM".into(), 80_072)],
            injected_index: None,
            consumed_va: Some(0),
            current_a: Some(13),
            injected_w: None,
        }
    }

    #[test]
    fn the_perl_sample_line_parses() {
        assert_eq!(PERL.parse::<LogLine>(), Ok(perl_line()));
    }

    #[test]
    fn an_ejp_line_is_written_exactly_as_the_perl_tool_wrote_it() {
        assert_eq!(perl_line().to_string(), PERL);
    }

    #[test]
    fn unknown_keys_are_ignored_and_a_crlf_ending_is_fine() {
        let line = format!("{PERL}, Tension=231, Note=bonjour\r\n");
        assert_eq!(line.parse::<LogLine>(), Ok(perl_line()));
    }

    #[test]
    fn unreadable_lines_say_why() {
        for (line, why) in [
            ("", ParseError::BadTime),
            ("2021/02/20 19:10\tDATA\tPeriode=HN..", ParseError::BadTime),
            (
                "2021/02/30 19:10:22\tDATA\tPeriode=HN..",
                ParseError::BadTime,
            ),
            ("2021/02/20 19:10:22\tINFO\tstarted", ParseError::NotData),
            ("2021/02/20 19:10:22\tDATA\tIndexHN=1", ParseError::NoPeriod),
            (
                "2021/02/20 19:10:22\tDATA\tPeriode=HN.., IndexHN=00x",
                ParseError::BadNumber("Index"),
            ),
            (
                "2021/02/20 19:10:22\tDATA\tPeriode=HN.., PuissConsommee=-1",
                ParseError::BadNumber("PuissConsommee"),
            ),
        ] {
            assert_eq!(line.parse::<LogLine>(), Err(why), "{line:?}");
        }
    }

    #[test]
    fn period_codes_drop_the_dots_and_name_the_historic_base() {
        assert_eq!(period_code("HN.."), "HN");
        assert_eq!(period_code("PM.."), "PM");
        assert_eq!(period_code("TH.."), "BASE");
        assert_eq!(period_code("HCJB"), "HCJB");
        assert_eq!(period_of_key("HPM"), "PM");
        assert_eq!(period_of_key("HC"), "HC");
    }

    #[test]
    fn every_historic_energy_index_of_the_label_table_has_a_log_key() {
        let historic = LABELS.iter().take_while(|s| s.label != "ADSC");
        for spec in historic.filter(|s| s.role == Role::Index && s.unit == Some(Unit::Wh)) {
            assert!(index_key(spec.label).is_some(), "{}", spec.label);
        }
    }

    fn any_line() -> impl Strategy<Value = LogLine> {
        let time = (1970i16..2100, 1i8..=12, 1i8..=28, 0i8..24, 0i8..60, 0i8..60)
            .prop_map(|(y, mo, d, h, mi, s)| date(y, mo, d).at(h, mi, s, 0));
        let key = "[A-Z][A-Z0-9]{0,7}";
        (
            time,
            "[A-Z]{2}[A-Z.]{0,2}",
            prop::collection::vec((key, 0u64..2_000_000_000), 0..6),
            prop::option::of(0u64..2_000_000_000),
            prop::option::of(0u32..200_000),
            prop::option::of(0u32..2_000),
            prop::option::of(0u32..200_000),
        )
            .prop_map(
                |(time, period, indexes, injected_index, consumed_va, current_a, injected_w)| {
                    LogLine {
                        time,
                        period,
                        indexes,
                        injected_index,
                        consumed_va,
                        current_a,
                        injected_w,
                    }
                },
            )
    }

    proptest! {
        #[test]
        fn a_written_line_reads_back_the_same(line in any_line()) {
            let text = line.to_string();
            prop_assert!(!text.contains('\n'));
            prop_assert_eq!(text.parse::<LogLine>(), Ok(line));
        }

        #[test]
        fn any_text_reads_or_says_why_without_panicking(text in "\\PC{0,120}") {
            let _ = text.parse::<LogLine>();
        }
    }
}
