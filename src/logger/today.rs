//! The newest day's `today` figures, kept up to date line by line: energy per period and
//! injected energy, exactly what [`DayReport::from_lines`] and [`DayReport::link_previous`]
//! give for the day's lines, at constant work per line.
//!
//! A line that comes in time order (at or after the latest so far, as the daemon sends them,
//! spool included) adds its differences with the latest line. A line that comes before the
//! latest (which the daemon never sends, but a log can hold) changes which lines are neighbours,
//! so the day is counted again from its lines, once for that line.
//!
//! [`DayReport::from_lines`]: super::DayReport::from_lines
//! [`DayReport::link_previous`]: super::DayReport::link_previous

use std::collections::BTreeMap;

use jiff::Timestamp;
use jiff::civil::Date;
use jiff::tz::TimeZone;

use super::LogLine;
use super::day::{Totals, instant, instants};

/// One local day's running totals.
#[derive(Debug, Clone)]
pub struct RunningDay {
    date: Date,
    /// The day's lines in the order they came, to count the day again when one comes out of
    /// time order.
    lines: Vec<LogLine>,
    /// The previous day's last line, where the day's energy counts from.
    previous: Option<LogLine>,
    totals: Totals,
    /// The latest line in time (the last of equal instants) and its instant.
    latest: Option<(usize, Timestamp)>,
    /// The instant of the line that came last, which places the next one on the autumn DST day.
    last_came: Option<Timestamp>,
}

impl RunningDay {
    /// Local day `date` with `lines` (from its log, in their order) after `previous`, the
    /// previous day's last line.
    pub fn new(date: Date, lines: Vec<LogLine>, previous: Option<LogLine>, tz: &TimeZone) -> Self {
        let mut day = RunningDay {
            date,
            lines,
            previous,
            totals: Totals::default(),
            latest: None,
            last_came: None,
        };
        day.count_again(tz);
        day
    }

    /// Adds a line of the day.
    pub fn push(&mut self, line: LogLine, tz: &TimeZone) {
        let at = instant(&line, self.last_came, tz);
        self.last_came = Some(at);
        self.lines.push(line);
        match self.latest {
            Some((_, latest)) if at < latest => self.count_again(tz),
            _ => self.add(self.lines.len() - 1, at, tz),
        }
    }

    /// Counts the day from its lines, in time order (equal instants in the order they came).
    fn count_again(&mut self, tz: &TimeZone) {
        let at = instants(&self.lines, tz);
        let mut order: Vec<usize> = (0..self.lines.len()).collect();
        order.sort_by_key(|&i| at[i]);
        self.totals = Totals::default();
        self.latest = None;
        self.last_came = at.last().copied();
        for i in order {
            self.add(i, at[i], tz);
        }
    }

    /// Adds line `i`, at `at`, not before the latest.
    fn add(&mut self, i: usize, at: Timestamp, tz: &TimeZone) {
        let line = &self.lines[i];
        let before = self.latest.map(|(j, t)| (&self.lines[j], t));
        self.totals.add(before, line, at);
        if let (None, Some(previous)) = (before, &self.previous) {
            // The day's first line: the energy since the day before's last one is the day's.
            self.totals.link_previous(previous, (line, at), tz);
        }
        self.latest = Some((i, at));
    }

    /// The local day.
    pub fn date(&self) -> Date {
        self.date
    }

    /// Energy drawn per period code, Wh.
    pub fn energy_wh(&self) -> &BTreeMap<String, u64> {
        &self.totals.energy_wh
    }

    /// Energy injected, Wh.
    pub fn injected_wh(&self) -> u64 {
        self.totals.injected_wh()
    }

    /// Whether the day has no line.
    pub fn is_empty(&self) -> bool {
        self.lines.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::logger::DayReport;
    use crate::logger::day::midnight;
    use jiff::SignedDuration;
    use jiff::civil::date;
    use proptest::prelude::*;

    fn paris() -> TimeZone {
        TimeZone::get("Europe/Paris").unwrap()
    }

    /// One step of the generated day: seconds since the previous line (a few go back), what
    /// each index does, and the line's other figures.
    #[derive(Debug, Clone)]
    struct Step {
        dt_s: i64,
        /// 0: the index goes back (a glitch), 1: it jumps by a megawatt-hour, else it grows.
        glitch: u8,
        grow_wh: u64,
        peak_hours: bool,
        /// Whether the line has a third index (a period only part of the day shows).
        extra_index: bool,
        injected_w: Option<u32>,
        injected_index: Option<u64>,
    }

    fn step() -> impl Strategy<Value = Step> {
        (
            prop_oneof![12 => 0i64..1800, 1 => -7200i64..0],
            0u8..24,
            0u64..3000,
            prop::bool::weighted(0.3),
            prop::bool::weighted(0.2),
            prop::option::weighted(0.3, 0u32..5000),
            prop::option::weighted(0.1, 0u64..2000),
        )
            .prop_map(
                |(dt_s, glitch, grow_wh, peak_hours, extra_index, injected_w, injected_index)| {
                    Step {
                        dt_s,
                        glitch,
                        grow_wh,
                        peak_hours,
                        extra_index,
                        injected_w,
                        injected_index,
                    }
                },
            )
    }

    /// The lines `steps` make from `start`, with their local day; the index values and the
    /// injected index carry on from step to step.
    fn lines(start: Timestamp, steps: &[Step], tz: &TimeZone) -> Vec<(Date, LogLine)> {
        let (mut at, mut hc, mut hp, mut injected) = (start, 1_000_000u64, 500_000u64, 0u64);
        steps
            .iter()
            .map(|s| {
                at += SignedDuration::from_secs(s.dt_s);
                let index = if s.peak_hours { &mut hp } else { &mut hc };
                *index = match s.glitch {
                    0 => index.saturating_sub(40_000),
                    1 => *index + 1_000_000,
                    _ => *index + s.grow_wh,
                };
                let mut indexes = vec![("HC".to_owned(), hc), ("HP".to_owned(), hp)];
                if s.extra_index {
                    indexes.push(("HPM".to_owned(), 7_000 + hc / 10));
                }
                let injected_index = s.injected_index.map(|d| {
                    injected += d;
                    injected
                });
                let time = tz.to_datetime(at);
                let line = LogLine {
                    time: time.with().subsec_nanosecond(0).build().unwrap(),
                    period: if s.peak_hours { "HP.." } else { "HC.." }.to_owned(),
                    indexes,
                    injected_index,
                    consumed_va: Some(500),
                    current_a: Some(2),
                    injected_w: s.injected_w,
                };
                (time.date(), line)
            })
            .collect()
    }

    proptest! {
        /// A normal day, the spring day (23 h) and the autumn day (25 h, an hour written twice),
        /// each starting from the day before's last line, with index glitches, period changes,
        /// an index that comes and goes, injection both ways and lines out of time order: after
        /// every line, the running totals are the full count's.
        #[test]
        fn running_totals_are_the_full_count_after_every_line(
            day in prop::sample::select(vec![date(2021, 2, 20), date(2021, 3, 28), date(2021, 10, 31)]),
            steps in prop::collection::vec(step(), 1..160),
            start_s in 0i64..4 * 3600,
        ) {
            let tz = paris();
            // The day before's last line, then the steps from midnight on (some of the day's
            // hours, or past its end: those lines belong to the next day and are left out).
            let yesterday_at = midnight(day, &tz) - SignedDuration::from_secs(90);
            let all = lines(yesterday_at, &steps, &tz);
            let previous = all.iter().rev().find(|(d, _)| *d < day).map(|(_, l)| l.clone());
            let start = midnight(day, &tz) + SignedDuration::from_secs(start_s);
            let day_lines: Vec<LogLine> = lines(start, &steps, &tz)
                .into_iter()
                .filter(|(d, _)| *d == day)
                .map(|(_, l)| l)
                .collect();
            let mut running = RunningDay::new(day, Vec::new(), previous.clone(), &tz);
            for (n, line) in day_lines.iter().enumerate() {
                running.push(line.clone(), &tz);
                let mut full = DayReport::from_lines(day, &day_lines[..=n], &tz).unwrap();
                if let Some(p) = &previous {
                    full.link_previous(p, &tz);
                }
                prop_assert_eq!(running.energy_wh(), &full.energy_wh, "after line {}", n);
                prop_assert_eq!(running.injected_wh(), full.injected_wh, "after line {}", n);
                // Started again from the day's file, it says the same.
                if n % 16 == 0 {
                    let again = RunningDay::new(day, day_lines[..=n].to_vec(), previous.clone(), &tz);
                    prop_assert_eq!(again.energy_wh(), &full.energy_wh);
                    prop_assert_eq!(again.injected_wh(), full.injected_wh);
                }
            }
        }
    }

    /// The autumn day's repeated hour: 02:10 after 02:40 is the second 02:10 (in time order),
    /// 02:20 after it is in time order too.
    #[test]
    fn the_repeated_autumn_hour_counts_in_time_order() {
        let tz = paris();
        let day = date(2021, 10, 31);
        let line = |text: &str| -> LogLine { text.parse().unwrap() };
        let mut running = RunningDay::new(day, Vec::new(), None, &tz);
        let texts = [
            "2021/10/31 02:30:00\tDATA\tPeriode=HC.., IndexHC=000000000",
            "2021/10/31 02:40:00\tDATA\tPeriode=HC.., IndexHC=000000010",
            "2021/10/31 02:10:00\tDATA\tPeriode=HC.., IndexHC=000000020",
            "2021/10/31 02:20:00\tDATA\tPeriode=HC.., IndexHC=000000035",
        ];
        for t in texts {
            running.push(line(t), &tz);
        }
        assert_eq!(running.energy_wh()["HC"], 35);
        let all: Vec<LogLine> = texts.iter().map(|t| line(t)).collect();
        let full = DayReport::from_lines(day, &all, &tz).unwrap();
        assert_eq!(full.energy_wh["HC"], 35);
    }
}
