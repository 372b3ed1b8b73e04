//! One day's lines summed up: energy per period, injected energy, cost, peak power, and the
//! points and period bands the chart draws.
//!
//! Energy comes from the index differences, never from the power averages: for each index, the
//! sum of its increases from one line to the next, starting from the previous day's last line
//! when there is one ([`DayReport::link_previous`]), so the minutes around midnight are counted
//! once, in the day they happened. Only increases count, so a meter swapped for a new one
//! (indexes back near 0) costs nothing instead of a negative fortune. Injected energy comes
//! from `IndexInjectee` when the log has it, else from `PuissInjectee` × the time since the
//! previous line (capped at [`MAX_GAP_S`], so a logger that was stopped for hours does not turn
//! one average into a day's production).
//!
//! Lines carry local wall time. On the autumn daylight-saving day an hour is written twice;
//! each line is placed at the earlier instant unless that would put it before the line
//! above it, which is how the hour that repeats is told apart.

use std::collections::BTreeMap;

use jiff::civil::{Date, DateTime};
use jiff::tz::TimeZone;
use jiff::{SignedDuration, Timestamp};

use super::line::{LogLine, period_of_key};
use crate::prices::Costs;

/// The longest time one line's average power may stand for in the injected-energy sum.
pub const MAX_GAP_S: i64 = 15 * 60;

/// One point of the chart.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Point {
    /// Seconds since the day's local midnight (real seconds: 23 or 25 hours on DST days).
    pub at_s: i64,
    /// Average apparent power drawn, VA.
    pub consumed_va: u32,
    /// Average injected power, W.
    pub injected_w: u32,
}

/// A stretch of the day in one tariff period, for the chart's bands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Segment {
    /// Start, seconds since local midnight.
    pub from_s: i64,
    /// End, seconds since local midnight.
    pub to_s: i64,
    /// Period code (`HN`, `PM`, `HCJR`…).
    pub code: String,
}

/// Everything the pages and the `today` message say about one day.
#[derive(Debug, Clone, PartialEq)]
pub struct DayReport {
    /// The local day.
    pub date: Date,
    /// The instant the day began, the origin of the chart's seconds.
    pub midnight: Timestamp,
    /// The chart's points, at most one per minute (averaged), oldest first.
    pub points: Vec<Point>,
    /// The tariff periods over the day.
    pub segments: Vec<Segment>,
    /// Energy drawn per period code, Wh.
    pub energy_wh: BTreeMap<String, u64>,
    /// Energy injected, Wh.
    pub injected_wh: u64,
    /// The highest `PuissConsommee` and the local time of its line.
    pub max_power: Option<(u32, DateTime)>,
    /// How many lines the day had.
    pub lines: usize,
    first: (LogLine, Timestamp),
    last: (LogLine, Timestamp),
    uses_injected_index: bool,
}

/// Each line's instant: the earlier of two readings of an ambiguous wall time unless it goes
/// back before the previous line.
pub(super) fn instants(lines: &[LogLine], tz: &TimeZone) -> Vec<Timestamp> {
    let mut out: Vec<Timestamp> = Vec::with_capacity(lines.len());
    for line in lines {
        out.push(instant(line, out.last().copied(), tz));
    }
    out
}

/// One line's instant, given the instant of the line before it in the log (see [`instants`]).
pub(super) fn instant(line: &LogLine, before: Option<Timestamp>, tz: &TimeZone) -> Timestamp {
    let ambiguous = tz.to_ambiguous_timestamp(line.time);
    match (ambiguous.earlier(), before) {
        (Ok(e), Some(prev)) if e < prev && ambiguous.is_ambiguous() => {
            ambiguous.later().unwrap_or(e)
        }
        (Ok(e), _) => e,
        (Err(_), _) => ambiguous.compatible().unwrap_or_default(),
    }
}

/// The instant local `date` began in `tz`.
pub fn midnight(date: Date, tz: &TimeZone) -> Timestamp {
    tz.to_ambiguous_timestamp(date.to_datetime(jiff::civil::Time::midnight()))
        .compatible()
        .unwrap_or_default()
}

/// Adds the increases of each index between two lines, by period code.
fn add_increases(energy: &mut BTreeMap<String, u64>, from: &LogLine, to: &LogLine) {
    for (key, value) in &to.indexes {
        let code = period_of_key(key);
        let before = from.index(key);
        let slot = energy.entry(code.to_owned()).or_insert(0);
        if let Some(before) = before {
            *slot += value.saturating_sub(before);
        }
    }
}

/// Energy injected between two lines by `IndexInjectee`, Wh (0 unless both have it).
fn injected_by_index(from: &LogLine, to: &LogLine) -> u64 {
    match (from.injected_index, to.injected_index) {
        (Some(a), Some(b)) => b.saturating_sub(a),
        _ => 0,
    }
}

/// Energy injected between two lines by the later one's `PuissInjectee` × the time between
/// them (at most [`MAX_GAP_S`]), Wh.
fn injected_by_power(from_at: Timestamp, to: (&LogLine, Timestamp)) -> u64 {
    let dt = to.1.duration_since(from_at).as_secs().clamp(0, MAX_GAP_S);
    let w = u64::from(to.0.injected_w.unwrap_or(0));
    // Wh = W × s / 3600, rounded to the nearest.
    (w * dt.unsigned_abs() + 1800) / 3600
}

/// The instant of the previous day's last line, for [`DayReport::link_previous`]: the later
/// reading of an ambiguous wall time (it is the last of its day).
fn previous_instant(previous: &LogLine, tz: &TimeZone) -> Timestamp {
    tz.to_ambiguous_timestamp(previous.time)
        .later()
        .unwrap_or_default()
}

/// A day's energy sums, added line by line in time order: energy per period and injected
/// energy, the latter both ways (by `IndexInjectee` and by `PuissInjectee`), since which
/// applies depends on whether any line of the day has the index.
#[derive(Debug, Clone, Default, PartialEq)]
pub(super) struct Totals {
    /// Energy drawn per period code, Wh; every period of an index seen has its entry.
    pub energy_wh: BTreeMap<String, u64>,
    injected_by_index: u64,
    injected_by_power: u64,
    uses_injected_index: bool,
}

impl Totals {
    /// Adds `line` at `at`, which comes after `before` (the previous line in time, if any).
    pub fn add(&mut self, before: Option<(&LogLine, Timestamp)>, line: &LogLine, at: Timestamp) {
        if let Some((before, before_at)) = before {
            self.add_between(before, before_at, line, at);
        }
        for (key, _) in &line.indexes {
            self.energy_wh
                .entry(period_of_key(key).to_owned())
                .or_insert(0);
        }
        self.uses_injected_index |= line.injected_index.is_some();
    }

    /// Adds what was drawn and injected from `from` to `to`.
    fn add_between(&mut self, from: &LogLine, from_at: Timestamp, to: &LogLine, to_at: Timestamp) {
        add_increases(&mut self.energy_wh, from, to);
        self.injected_by_index += injected_by_index(from, to);
        self.injected_by_power += injected_by_power(from_at, (to, to_at));
    }

    /// Adds what was drawn and injected from the previous day's last line to this day's first
    /// one, as [`DayReport::link_previous`] does.
    pub fn link_previous(
        &mut self,
        previous: &LogLine,
        first: (&LogLine, Timestamp),
        tz: &TimeZone,
    ) {
        let at = previous_instant(previous, tz);
        if at < first.1 {
            self.add_between(previous, at, first.0, first.1);
        }
    }

    /// Energy injected, Wh: by `IndexInjectee` when a line of the day has it.
    pub fn injected_wh(&self) -> u64 {
        if self.uses_injected_index {
            self.injected_by_index
        } else {
            self.injected_by_power
        }
    }
}

impl DayReport {
    /// Sums up the lines of local day `date` (any order); `None` when there are none.
    pub fn from_lines(date: Date, lines: &[LogLine], tz: &TimeZone) -> Option<DayReport> {
        let at = instants(lines, tz);
        let mut order: Vec<usize> = (0..lines.len()).collect();
        order.sort_by_key(|&i| at[i]);
        let (&first, &last) = (order.first()?, order.last()?);
        let origin = midnight(date, tz);
        let seconds = |t: Timestamp| t.duration_since(origin).as_secs();
        let uses_injected_index = lines.iter().any(|l| l.injected_index.is_some());

        let mut totals = Totals::default();
        let mut points: Vec<Point> = Vec::new();
        let mut bucket: Option<(i64, u64, u64, u64, i64)> = None; // minute, Σva, Σw, n, last s
        let mut segments: Vec<Segment> = Vec::new();
        let mut max_power: Option<(u32, DateTime)> = None;
        let mut previous: Option<usize> = None;
        for &i in &order {
            let line = &lines[i];
            let s = seconds(at[i]);
            totals.add(previous.map(|p| (&lines[p], at[p])), line, at[i]);
            let va = line.consumed_va.unwrap_or(0);
            if line.consumed_va.is_some() && max_power.is_none_or(|(m, _)| va > m) {
                max_power = Some((va, line.time));
            }
            let minute = s.div_euclid(60);
            let (va, w) = (u64::from(va), u64::from(line.injected_w.unwrap_or(0)));
            bucket = match bucket {
                Some((m, sva, sw, n, _)) if m == minute => Some((m, sva + va, sw + w, n + 1, s)),
                other => {
                    if let Some(b) = other {
                        points.push(point(b));
                    }
                    Some((minute, va, w, 1, s))
                }
            };
            let code = line.period_code();
            match segments.last_mut() {
                Some(seg) if seg.code == code => seg.to_s = s,
                Some(seg) => {
                    let from_s = seg.to_s;
                    segments.push(Segment {
                        from_s,
                        to_s: s,
                        code: code.to_owned(),
                    });
                }
                None => segments.push(Segment {
                    from_s: s,
                    to_s: s,
                    code: code.to_owned(),
                }),
            }
            previous = Some(i);
        }
        if let Some(b) = bucket {
            points.push(point(b));
        }
        Some(DayReport {
            date,
            midnight: origin,
            points,
            segments,
            injected_wh: totals.injected_wh(),
            energy_wh: totals.energy_wh,
            max_power,
            lines: lines.len(),
            first: (lines[first].clone(), at[first]),
            last: (lines[last].clone(), at[last]),
            uses_injected_index,
        })
    }

    /// Counts the energy between the previous day's last line and this day's first one, which
    /// belongs to this day; `tz` places that line in time.
    pub fn link_previous(&mut self, previous: &LogLine, tz: &TimeZone) {
        let at = previous_instant(previous, tz);
        if at >= self.first.1 {
            return; // not before this day's first line: not a predecessor
        }
        add_increases(&mut self.energy_wh, previous, &self.first.0);
        self.injected_wh += if self.uses_injected_index {
            injected_by_index(previous, &self.first.0)
        } else {
            injected_by_power(at, (&self.first.0, self.first.1))
        };
    }

    /// The latest line of the day: the next day's starting point.
    pub fn last_line(&self) -> &LogLine {
        &self.last.0
    }

    /// All energy drawn, Wh.
    pub fn total_wh(&self) -> u64 {
        self.energy_wh.values().sum()
    }
}

fn point((_, sva, sw, n, s): (i64, u64, u64, u64, i64)) -> Point {
    let avg = |sum: u64| u32::try_from((sum + n / 2) / n).unwrap_or(u32::MAX);
    Point {
        at_s: s,
        consumed_va: avg(sva),
        injected_w: avg(sw),
    }
}

/// Rounded to the cent, as a bill shows it.
pub fn cents(amount: f64) -> f64 {
    (amount * 100.0).round() / 100.0
}

/// The retained `<base>/<id>/today` payload of contract §3, its keys in the contract's order:
/// the day's energy per period and injected energy, as the logger keeps them line by line,
/// with issue 19's `cost_by_period` (keyed like `energy_wh`, `null` for a period without
/// price) and `subscription` (the day's, included in `cost`) before `currency`.
pub fn today_json(
    date: Date,
    energy_wh: &BTreeMap<String, u64>,
    injected_wh: u64,
    costs: &Costs,
    currency: &str,
) -> String {
    #[derive(serde::Serialize)]
    struct Today<'a> {
        date: String,
        energy_wh: &'a BTreeMap<String, u64>,
        injected_wh: u64,
        cost: Option<f64>,
        cost_by_period: BTreeMap<&'a str, Option<f64>>,
        subscription: f64,
        currency: &'a str,
    }
    let today = Today {
        date: date.to_string(),
        energy_wh,
        injected_wh,
        cost: costs.total.map(cents),
        cost_by_period: costs
            .rows
            .iter()
            .map(|row| (row.code.as_str(), row.cost.map(cents)))
            .collect(),
        subscription: cents(costs.subscription),
        currency,
    };
    // Strings, integers and finite floats always serialise.
    serde_json::to_string(&today).unwrap_or_default()
}

/// How long a day lasted (23, 24 or 25 hours), for the page.
pub fn day_length(date: Date, tz: &TimeZone) -> SignedDuration {
    let next = date.tomorrow().map(|d| midnight(d, tz));
    next.map_or(SignedDuration::from_hours(24), |n| {
        n.duration_since(midnight(date, tz))
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use jiff::civil::date;

    fn paris() -> TimeZone {
        TimeZone::get("Europe/Paris").unwrap()
    }

    fn line(text: &str) -> LogLine {
        text.parse().unwrap()
    }

    /// A hand-checked EJP day, with the line before midnight in the day before's file.
    ///
    /// | line | HN | HPM | PuissInjectee |
    /// |---|---|---|---|
    /// | 02-19 23:59:00 (yesterday) | 1 000 000 | 500 000 | |
    /// | 00:01:00 | 1 000 100 | 500 000 | |
    /// | 06:59:00 | 1 002 100 | 500 000 | 1 200 W |
    /// | 07:01:00 | 1 002 100 | 500 300 | |
    /// | 23:58:00 | 1 002 100 | 512 300 | |
    ///
    /// HN: 100 (across midnight) + 2 000 = 2 100 Wh; PM: 300 + 12 000 = 12 300 Wh.
    /// Injected: 1 200 W for the 15 min cap (the gap is 6 h 58 min) = 300 Wh.
    /// Cost: 2.1 kWh × 0.1386 + 12.3 kWh × 0.7524 + 0.50 = 0.29106 + 9.25452 + 0.5 = 10.04558.
    #[test]
    fn energy_per_period_and_cost_match_the_hand_checked_example() {
        let lines = [
            line(
                "2021/02/20 00:01:00\tDATA\tPeriode=HN.., IndexHN=001000100, IndexHPM=000500000, PuissConsommee=00400, IConsommee=002",
            ),
            line(
                "2021/02/20 06:59:00\tDATA\tPeriode=HN.., IndexHN=001002100, IndexHPM=000500000, PuissConsommee=00000, IConsommee=005, PuissInjectee=01200",
            ),
            line(
                "2021/02/20 07:01:00\tDATA\tPeriode=PM.., IndexHN=001002100, IndexHPM=000500300, PuissConsommee=03500, IConsommee=015",
            ),
            line(
                "2021/02/20 23:58:00\tDATA\tPeriode=PM.., IndexHN=001002100, IndexHPM=000512300, PuissConsommee=00800, IConsommee=004",
            ),
        ];
        let yesterday = line(
            "2021/02/19 23:59:00\tDATA\tPeriode=HN.., IndexHN=001000000, IndexHPM=000500000, PuissConsommee=00300, IConsommee=001",
        );
        let tz = paris();
        let mut report = DayReport::from_lines(date(2021, 2, 20), &lines, &tz).unwrap();
        assert_eq!(report.energy_wh["HN"], 2000);
        report.link_previous(&yesterday, &tz);
        assert_eq!(report.energy_wh["HN"], 2100);
        assert_eq!(report.energy_wh["PM"], 12_300);
        assert_eq!(report.injected_wh, 300);
        assert_eq!(report.total_wh(), 14_400);
        assert_eq!(
            report.max_power,
            Some((3500, date(2021, 2, 20).at(7, 1, 0, 0)))
        );
        assert_eq!(
            report.segments,
            [
                Segment {
                    from_s: 60,
                    to_s: 6 * 3600 + 59 * 60,
                    code: "HN".into()
                },
                Segment {
                    from_s: 6 * 3600 + 59 * 60,
                    to_s: 23 * 3600 + 58 * 60,
                    code: "PM".into()
                },
            ]
        );
        let c = crate::prices::always(&[("hn", 0.1386), ("pm", 0.7524)], 0.5)
            .cost(report.date, &report.energy_wh);
        assert!((c.total.unwrap() - 10.04558).abs() < 1e-9, "{c:?}");
        assert_eq!(cents(c.total.unwrap()), 10.05);
        assert_eq!(
            today_json(
                report.date,
                &report.energy_wh,
                report.injected_wh,
                &c,
                "EUR"
            ),
            r#"{"date":"2021-02-20","energy_wh":{"HN":2100,"PM":12300},"injected_wh":300,"cost":10.05,"cost_by_period":{"HN":0.29,"PM":9.25},"subscription":0.5,"currency":"EUR"}"#
        );
    }

    #[test]
    fn a_meter_swap_costs_nothing_instead_of_a_negative_fortune() {
        let lines = [
            line("2021/02/20 10:00:00\tDATA\tPeriode=TH.., IndexBASE=009000000"),
            line("2021/02/20 11:00:00\tDATA\tPeriode=TH.., IndexBASE=000000010"),
            line("2021/02/20 12:00:00\tDATA\tPeriode=TH.., IndexBASE=000000060"),
        ];
        let report = DayReport::from_lines(date(2021, 2, 20), &lines, &paris()).unwrap();
        assert_eq!(report.energy_wh["BASE"], 50);
    }

    #[test]
    fn the_repeated_autumn_hour_is_placed_in_order_and_the_day_lasts_25_hours() {
        let tz = paris();
        let lines = [
            line("2021/10/31 02:30:00\tDATA\tPeriode=HC.., IndexHC=000000000"),
            line("2021/10/31 02:40:00\tDATA\tPeriode=HC.., IndexHC=000000010"),
            line("2021/10/31 02:10:00\tDATA\tPeriode=HC.., IndexHC=000000020"),
            line("2021/10/31 23:59:00\tDATA\tPeriode=HC.., IndexHC=000000030"),
        ];
        let report = DayReport::from_lines(date(2021, 10, 31), &lines, &tz).unwrap();
        let at: Vec<i64> = report.points.iter().map(|p| p.at_s).collect();
        // 02:30 CEST is 2.5 h after midnight; 02:10 CET (the second 02:10) is 3 h 10 min.
        assert_eq!(at, [9000, 9600, 11_400, 24 * 3600 + 59 * 60]);
        assert_eq!(report.energy_wh["HC"], 30);
        assert_eq!(day_length(date(2021, 10, 31), &tz).as_hours(), 25);
        assert_eq!(day_length(date(2021, 3, 28), &tz).as_hours(), 23);
    }

    #[test]
    fn points_are_averaged_per_minute() {
        let lines = [
            line("2021/02/20 10:00:05\tDATA\tPeriode=HN.., PuissConsommee=00100"),
            line("2021/02/20 10:00:15\tDATA\tPeriode=HN.., PuissConsommee=00300"),
            line("2021/02/20 10:01:05\tDATA\tPeriode=HN.., PuissConsommee=00500"),
        ];
        let report = DayReport::from_lines(date(2021, 2, 20), &lines, &paris()).unwrap();
        assert_eq!(
            report.points,
            [
                Point {
                    at_s: 36_015,
                    consumed_va: 200,
                    injected_w: 0
                },
                Point {
                    at_s: 36_065,
                    consumed_va: 500,
                    injected_w: 0
                },
            ]
        );
    }
}
