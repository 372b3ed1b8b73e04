//! From `state` messages to log lines: every `frames_per_line` states of one local day make a
//! line, filed in that day.
//!
//! This is a pure state machine: the shell pushes each [`State`] as it arrives and writes the
//! lines it gets back. Time comes only from the states' own `ts`, so a message that arrives late
//! (after a broker outage, from the daemon's spool) is filed by when it was measured:
//!
//! - Each local day (of `logger.timezone`, daylight-saving changes included) has its own open
//!   window; a state joins the window of its day, never another day's, and is never dropped, even
//!   when it is older than the states already in that window.
//! - A window makes a line when it holds `frames_per_line` states. A window that has received
//!   nothing while `frames_per_line` states went to other days is closed early, with the states it
//!   has: that is how the last minutes before midnight get their line once the new day has begun,
//!   and how a burst of late messages for a past day ends up in that day's file.
//! - What is still open when the logger stops is [`Aggregator::pending`]: the shell saves it
//!   and pushes it again at start, so a restart neither loses nor splits a line.
//!
//! A line sums its states up: the time, period and indexes of the latest state (by `ts`), and
//! the averages of the power drawn, the current and the injected power over all of them.
//!
//! Standard mode has no per-period index labels, only the supplier registers `EASF01..10` and
//! `NTARF`, the register counting now. Register n is logged as `Index<code>`, where code is the
//! period `derived.period` gave while `NTARF` was n (learned as the logger runs), else the code
//! the contract's usual register order gives (`BASE`; `HC`, `HP`; EJP `HN`, `HPM`; Tempo `HCJB`,
//! `HPJB`, `HCJW`, `HPJW`, `HCJR`, `HPJR`), else `EASFnn`. Registers that stay at 0 (most
//! contracts use two of ten) are left out.

use std::collections::BTreeMap;

use jiff::civil::Date;
use jiff::tz::TimeZone;

use super::line::LogLine;
use super::state::State;
use crate::publish::discovery::Tariff;
use crate::tic::Mode;

/// A line and the local day whose file it belongs to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Filed {
    /// The local day of the line's time.
    pub date: Date,
    /// The line.
    pub line: LogLine,
}

/// The open windows of one meter.
#[derive(Debug, Clone)]
pub struct Aggregator {
    frames_per_line: usize,
    tz: TimeZone,
    windows: Vec<Window>,
    learned: BTreeMap<u8, String>,
}

#[derive(Debug, Clone)]
struct Window {
    date: Date,
    states: Vec<State>,
    /// States that went to other windows since this one last received one.
    idle: usize,
}

/// The local day of an instant in `tz`.
pub fn local_date(ts: jiff::Timestamp, tz: &TimeZone) -> Date {
    tz.to_datetime(ts).date()
}

impl Aggregator {
    /// One line per `frames_per_line` states (at least 1), days in `tz`.
    pub fn new(frames_per_line: u32, tz: TimeZone) -> Self {
        Aggregator {
            frames_per_line: usize::try_from(frames_per_line.max(1)).unwrap_or(usize::MAX),
            tz,
            windows: Vec::new(),
            learned: BTreeMap::new(),
        }
    }

    /// Adds a state; returns the lines it completes (usually none or one).
    pub fn push(&mut self, state: State) -> Vec<Filed> {
        if let (Mode::Standard, Some(n), Some(code)) =
            (state.mode, state.ntarf, state.period_code.as_deref())
            && !code.starts_with("EASF")
        {
            self.learned.insert(n, key_of_period(code).to_owned());
        }
        let date = local_date(state.ts, &self.tz);
        let mut out = Vec::new();
        let n = self.frames_per_line;
        for w in &mut self.windows {
            if w.date != date {
                w.idle += 1;
            }
        }
        match self.windows.iter_mut().find(|w| w.date == date) {
            Some(w) => {
                w.states.push(state);
                w.idle = 0;
            }
            None => self.windows.push(Window {
                date,
                states: vec![state],
                idle: 0,
            }),
        }
        let (done, open): (Vec<Window>, Vec<Window>) = std::mem::take(&mut self.windows)
            .into_iter()
            .partition(|w| w.states.len() >= n || w.idle >= n);
        self.windows = open;
        for w in done {
            out.push(self.close(w));
        }
        out
    }

    /// Closes every open window now, partial or not (for a caller that has no more states).
    pub fn flush(&mut self) -> Vec<Filed> {
        std::mem::take(&mut self.windows)
            .into_iter()
            .map(|w| self.close(w))
            .collect()
    }

    /// The states of the open windows, oldest window first: what to save at shutdown and
    /// push again at start.
    pub fn pending(&self) -> impl Iterator<Item = &State> {
        self.windows.iter().flat_map(|w| w.states.iter())
    }

    fn close(&self, w: Window) -> Filed {
        let mut states = w.states;
        states.sort_by_key(|s| s.ts); // stable: equal stamps keep their arrival order
        let last = &states[states.len() - 1];
        let mut indexes: Vec<(String, u64)> = Vec::new();
        let mut set = |key: String, value: u64| match indexes.iter_mut().find(|(k, _)| *k == key) {
            Some(slot) => slot.1 = value,
            None => indexes.push((key, value)),
        };
        for s in &states {
            for (key, value) in &s.indexes {
                set(key.clone(), *value);
            }
            for &(n, value) in s.registers.iter().filter(|(_, v)| *v > 0) {
                set(self.register_key(s.contract.tariff, n), value);
            }
        }
        let average = |values: &mut dyn Iterator<Item = i64>| {
            let (sum, count) = values.fold((0i64, 0i64), |(s, c), v| (s + v.max(0), c + 1));
            (count > 0).then(|| u32::try_from((sum + count / 2) / count).unwrap_or(u32::MAX))
        };
        let injected = average(&mut states.iter().map(|s| s.injection_w)).filter(|&w| w > 0);
        Filed {
            date: w.date,
            line: LogLine {
                time: self.tz.to_datetime(last.ts),
                period: states
                    .iter()
                    .rev()
                    .find_map(|s| s.periode.clone())
                    .unwrap_or_else(|| "----".into()),
                indexes,
                injected_index: states.iter().rev().find_map(|s| s.injected_index),
                consumed_va: average(&mut states.iter().filter_map(|s| s.consumed_va)),
                current_a: average(&mut states.iter().filter_map(|s| s.current_a)),
                injected_w: injected,
            },
        }
    }

    fn register_key(&self, tariff: Tariff, n: u8) -> String {
        if let Some(key) = self.learned.get(&n) {
            return key.clone();
        }
        let usual: &[&str] = match tariff {
            Tariff::Base => &["BASE"],
            Tariff::OffPeak => &["HC", "HP"],
            Tariff::Ejp => &["HN", "HPM"],
            Tariff::Tempo => &["HCJB", "HPJB", "HCJW", "HPJW", "HCJR", "HPJR"],
            Tariff::Unknown => &[],
        };
        usual
            .get(usize::from(n).wrapping_sub(1))
            .map_or_else(|| format!("EASF{n:02}"), |k| (*k).to_owned())
    }
}

/// The log key of a period code: EJP's peak `PM` is logged as the Perl tool's `IndexHPM`.
fn key_of_period(code: &str) -> &str {
    if code == "PM" { "HPM" } else { code }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn paris() -> TimeZone {
        TimeZone::get("Europe/Paris").unwrap()
    }

    /// A historic EJP state at `ts` with PAPP `va`, IINST `a` and index HN `hn`.
    fn ejp(ts: &str, ptec: &str, hn: u64, va: i64, a: i64) -> State {
        State::parse(&format!(
            r#"{{"ts":"{ts}","meter":"021728123456","mode":"historic",
              "values":{{"OPTARIF":"EJP.","EJPHN":{hn},"EJPHPM":80072,"PTEC":"{ptec}","IINST":{a},"PAPP":{va}}},
              "derived":{{"injection_w":0,"consumption_va":{va},"period":"HN"}}}}"#
        ))
        .unwrap()
    }

    fn lines(agg: &mut Aggregator, states: Vec<State>) -> Vec<String> {
        states
            .into_iter()
            .flat_map(|s| agg.push(s))
            .map(|f| format!("{} {}", f.date, f.line))
            .collect()
    }

    #[test]
    fn n_states_make_one_line_with_the_last_time_and_index_and_the_averages() {
        let mut agg = Aggregator::new(3, paris());
        let out = lines(
            &mut agg,
            vec![
                ejp("2021-02-20T19:10:18+01:00", "HN..", 688_320, 1000, 5),
                ejp("2021-02-20T19:10:20+01:00", "HN..", 688_321, 1500, 7),
                ejp("2021-02-20T19:10:22+01:00", "HN..", 688_322, 1501, 7),
            ],
        );
        assert_eq!(
            out,
            [
                "2021-02-20 2021/02/20 19:10:22\tDATA\tPeriode=HN.., IndexHN=000688322, \
              IndexHPM=000080072, PuissConsommee=01334, IConsommee=006"
            ]
        );
        assert_eq!(agg.pending().count(), 0);
    }

    #[test]
    fn a_late_state_joins_its_own_day_and_is_never_lost() {
        let mut agg = Aggregator::new(2, paris());
        let out = lines(
            &mut agg,
            vec![
                ejp("2021-02-21T00:00:10+01:00", "HN..", 11, 100, 1),
                // From the spool: measured before midnight, yesterday's.
                ejp("2021-02-20T23:59:50+01:00", "HN..", 10, 300, 1),
                ejp("2021-02-21T00:00:12+01:00", "HN..", 12, 100, 1),
                ejp("2021-02-21T00:00:14+01:00", "HN..", 13, 100, 1),
            ],
        );
        // Yesterday's window got nothing while two states went to today: closed, partial.
        assert_eq!(out.len(), 2, "{out:#?}");
        assert!(
            out[0].starts_with("2021-02-21 2021/02/21 00:00:12"),
            "{out:#?}"
        );
        assert!(
            out[1].starts_with("2021-02-20 2021/02/20 23:59:50"),
            "{out:#?}"
        );
        assert!(out[1].contains("PuissConsommee=00300"), "{out:#?}");
        assert_eq!(agg.pending().count(), 1);
    }

    #[test]
    fn a_state_older_than_its_window_is_averaged_in_and_the_line_keeps_the_newest_index() {
        let mut agg = Aggregator::new(2, paris());
        let out = lines(
            &mut agg,
            vec![
                ejp("2021-02-20T12:00:10+01:00", "HN..", 20, 100, 1),
                ejp("2021-02-20T11:00:00+01:00", "HN..", 10, 300, 3),
            ],
        );
        assert_eq!(
            out,
            [
                "2021-02-20 2021/02/20 12:00:10\tDATA\tPeriode=HN.., IndexHN=000000020, \
              IndexHPM=000080072, PuissConsommee=00200, IConsommee=002"
            ]
        );
    }

    #[test]
    fn days_follow_the_zone_across_both_daylight_saving_changes() {
        let tz = paris();
        // Spring forward: 2021-03-28 02:00 CET → 03:00 CEST; 21:59:59Z is 23:59:59 CEST.
        let at = |s: &str| local_date(s.parse().unwrap(), &tz).to_string();
        assert_eq!(at("2021-03-27T22:59:59Z"), "2021-03-27");
        assert_eq!(at("2021-03-27T23:00:00Z"), "2021-03-28");
        assert_eq!(at("2021-03-28T21:59:59Z"), "2021-03-28");
        assert_eq!(at("2021-03-28T22:00:00Z"), "2021-03-29");
        // Fall back: 2021-10-31 03:00 CEST → 02:00 CET; the day lasts 25 hours.
        assert_eq!(at("2021-10-30T21:59:59Z"), "2021-10-30");
        assert_eq!(at("2021-10-30T22:00:00Z"), "2021-10-31");
        assert_eq!(at("2021-10-31T22:59:59Z"), "2021-10-31");
        assert_eq!(at("2021-10-31T23:00:00Z"), "2021-11-01");
        // A line's time is local wall time, whatever offset the message was stamped with.
        let mut agg = Aggregator::new(1, tz);
        let out = lines(&mut agg, vec![ejp("2021-10-31T00:30:00Z", "HN..", 1, 1, 1)]);
        assert!(
            out[0].starts_with("2021-10-31 2021/10/31 02:30:00"),
            "{out:?}"
        );
        let out = lines(&mut agg, vec![ejp("2021-10-31T01:30:00Z", "HN..", 1, 1, 1)]);
        assert!(
            out[0].starts_with("2021-10-31 2021/10/31 02:30:00"),
            "{out:?}"
        );
    }

    #[test]
    fn pending_states_pushed_again_give_the_same_lines_as_no_restart() {
        let states: Vec<State> = (0..7)
            .map(|i| {
                ejp(
                    &format!("2021-02-20T10:00:{i:02}+01:00"),
                    "HN..",
                    i,
                    100 * i as i64,
                    1,
                )
            })
            .collect();
        let mut straight = Aggregator::new(3, paris());
        let expected = lines(&mut straight, states.clone());
        let mut before = Aggregator::new(3, paris());
        let mut got = lines(&mut before, states[..4].to_vec());
        let saved: Vec<State> = before.pending().cloned().collect();
        let mut after = Aggregator::new(3, paris());
        got.extend(lines(&mut after, saved));
        got.extend(lines(&mut after, states[4..].to_vec()));
        assert_eq!(got, expected);
    }

    fn standard(ntarf: u8, period: &str, ngtf: &str) -> State {
        State::parse(&format!(
            r#"{{"ts":"2026-01-01T10:00:00+01:00","meter":"022812345678","mode":"standard",
              "values":{{"NGTF":"{ngtf}","EASF01":3000,"EASF02":2000,"EASF03":0,"NTARF":{ntarf},"IRMS1":4,"SINSTS":900}},
              "derived":{{"injection_w":250,"consumption_va":900,"period":"{period}"}}}}"#
        ))
        .unwrap()
    }

    #[test]
    fn standard_registers_are_named_by_the_contracts_order_then_by_what_ntarf_showed() {
        let mut agg = Aggregator::new(1, paris());
        let out = lines(&mut agg, vec![standard(1, "HC", "H PLEINE/CREUSE")]);
        assert_eq!(
            out,
            [
                "2026-01-01 2026/01/01 10:00:00\tDATA\tPeriode=HC, IndexHC=000003000, \
              IndexHP=000002000, PuissConsommee=00900, IConsommee=004, PuissInjectee=00250"
            ]
        );
        // A supplier whose name says nothing: EASFnn until NTARF shows what n is.
        let mut agg = Aggregator::new(1, paris());
        let out = lines(&mut agg, vec![standard(2, "EASF02", "MYSTERY")]);
        assert!(
            out[0].contains("IndexEASF01=000003000, IndexEASF02=000002000"),
            "{out:?}"
        );
        let out = lines(&mut agg, vec![standard(2, "PM", "MYSTERY")]);
        assert!(
            out[0].contains("IndexEASF01=000003000, IndexHPM=000002000"),
            "{out:?}"
        );
    }
}
