//! Days added up into months and years, for the month and year pages and the index. Pure:
//! from the days' index rows (one per day with a log, carried by each day page's meta), so a
//! month or a year is summed again without reading a single log.
//!
//! Days are local days, as their logs are: a daylight-saving day of 23 or 25 hours counts as
//! one day with the energy it had. A day without a log is missing from its month: it adds
//! nothing, and the month says how many days it has. A month's or a year's cost is known only
//! when every day's cost is (a partial sum would look like a real total).

use std::collections::BTreeMap;

use jiff::civil::Date;

use super::pages::IndexRow;
use super::season::{Counts, DayMark, Kind, Season};

/// A month: its year and its number (1 to 12).
pub type Month = (i16, i8);

/// The month of a day.
pub fn month_of(date: Date) -> Month {
    (date.year(), date.month())
}

/// What a span of days (a month, a year) adds up to.
#[derive(Debug, Clone, PartialEq)]
pub struct Totals {
    /// Days with a log.
    pub days: u32,
    /// Energy drawn per period code, Wh.
    pub energy_wh: BTreeMap<String, u64>,
    /// Energy injected, Wh.
    pub injected_wh: u64,
    /// The cost of each priced period.
    pub period_costs: BTreeMap<String, f64>,
    /// The subscription of the days.
    pub subscription: f64,
    /// The whole cost, when every day's is known.
    pub cost: Option<f64>,
}

impl Default for Totals {
    fn default() -> Self {
        Totals {
            days: 0,
            energy_wh: BTreeMap::new(),
            injected_wh: 0,
            period_costs: BTreeMap::new(),
            subscription: 0.0,
            cost: None,
        }
    }
}

impl Totals {
    /// Adds one day.
    pub fn add(&mut self, row: &IndexRow) {
        self.cost = if self.days == 0 {
            row.cost
        } else {
            self.cost.zip(row.cost).map(|(a, b)| a + b)
        };
        self.days += 1;
        for (code, wh) in &row.energy_wh {
            *self.energy_wh.entry(code.clone()).or_insert(0) += wh;
        }
        for (code, cost) in &row.period_costs {
            *self.period_costs.entry(code.clone()).or_insert(0.0) += cost;
        }
        self.injected_wh += row.injected_wh;
        self.subscription += row.subscription;
    }

    /// All energy drawn, Wh.
    pub fn total_wh(&self) -> u64 {
        self.energy_wh.values().sum()
    }

    /// The totals of `rows`.
    pub fn of<'a>(rows: impl IntoIterator<Item = &'a IndexRow>) -> Self {
        let mut totals = Totals::default();
        for row in rows {
            totals.add(row);
        }
        totals
    }
}

/// The days' totals by month.
pub fn by_month<'a>(rows: impl IntoIterator<Item = &'a IndexRow>) -> BTreeMap<Month, Totals> {
    let mut out: BTreeMap<Month, Totals> = BTreeMap::new();
    for row in rows {
        out.entry(month_of(row.date)).or_default().add(row);
    }
    out
}

/// The days' totals by year.
pub fn by_year<'a>(rows: impl IntoIterator<Item = &'a IndexRow>) -> BTreeMap<i16, Totals> {
    let mut out: BTreeMap<i16, Totals> = BTreeMap::new();
    for row in rows {
        out.entry(row.date.year()).or_default().add(row);
    }
    out
}

/// The marked days of `rows`, by date.
pub fn marks<'a>(rows: impl IntoIterator<Item = &'a IndexRow>) -> BTreeMap<Date, DayMark> {
    rows.into_iter()
        .filter_map(|r| Some((r.date, r.mark?)))
        .collect()
}

/// The counters of the seasons that overlap `year` (the one that ends in it and the one that
/// starts in it), for the contract of the year's newest marked day; only seasons with a
/// marked day in `marks` are given.
pub fn seasons_of_year(year: i16, marks: &BTreeMap<Date, DayMark>) -> Vec<Counts> {
    let in_year = marks.range(Date::new(year, 1, 1).unwrap_or_default()..);
    let Some(kind) = in_year
        .take_while(|(d, _)| d.year() == year)
        .last()
        .map(|(_, m)| m.kind())
    else {
        return Vec::new();
    };
    [year - 1, year]
        .into_iter()
        .map(|y| Season { kind, year: y })
        .filter(|s| {
            marks
                .range(s.first()..=s.last())
                .any(|(_, m)| m.kind() == kind)
        })
        .map(|s| Counts::of(s, marks.range(s.first()..=s.last())))
        .collect()
}

/// Whether the marks are of a contract with seasons at all.
pub fn kind_of(marks: &BTreeMap<Date, DayMark>) -> Option<Kind> {
    marks.values().next_back().map(|m| m.kind())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{PriceSet, PricesConfig};
    use crate::logger::day::DayReport;
    use crate::logger::season::{Allowance, Colour, Counters};
    use crate::prices::Prices;
    use jiff::civil::date;
    use jiff::tz::TimeZone;

    fn row(d: Date, hn: u64, pm: u64, mark: Option<DayMark>) -> IndexRow {
        let energy_wh = BTreeMap::from([("HN".to_owned(), hn), ("PM".to_owned(), pm)]);
        let kwh = BTreeMap::from([("hn".to_owned(), 0.1), ("pm".to_owned(), 1.0)]);
        let prices = Prices::new(&PricesConfig {
            sets: vec![PriceSet::always(kwh, Some(0.5))],
            ..PricesConfig::default()
        });
        let c = prices.cost(d, &energy_wh);
        IndexRow {
            date: d,
            total_wh: hn + pm,
            injected_wh: 0,
            cost: c.total,
            in_progress: false,
            energy_wh,
            period_costs: c
                .rows
                .iter()
                .filter_map(|r| Some((r.code.clone(), r.cost?)))
                .collect(),
            subscription: 0.5,
            mark,
        }
    }

    #[test]
    fn a_month_with_missing_days_adds_the_days_it_has() {
        let rows = [
            row(date(2027, 2, 1), 10_000, 0, None),
            // 2 to 13 missing (the logger was off)
            row(date(2027, 2, 14), 8_000, 2_000, None),
            row(date(2027, 2, 28), 1_000, 0, None),
            row(date(2027, 3, 1), 5_000, 0, None),
        ];
        let months = by_month(&rows);
        let feb = &months[&(2027, 2)];
        assert_eq!(feb.days, 3);
        assert_eq!(feb.energy_wh["HN"], 19_000);
        assert_eq!(feb.energy_wh["PM"], 2_000);
        assert_eq!(feb.total_wh(), 21_000);
        assert!((feb.period_costs["HN"] - 1.9).abs() < 1e-9);
        assert!((feb.period_costs["PM"] - 2.0).abs() < 1e-9);
        assert!((feb.subscription - 1.5).abs() < 1e-9);
        assert!((feb.cost.unwrap() - 5.4).abs() < 1e-9, "{feb:?}");
        assert_eq!(months[&(2027, 3)].days, 1);
        assert_eq!(months.len(), 2);
    }

    #[test]
    fn a_month_across_a_price_change_costs_each_day_at_its_own_prices() {
        let set = |from: Date, hn: f64| PriceSet {
            from,
            kwh: BTreeMap::from([("hn".to_owned(), hn)]),
            subscription_per_day: Some(0.5),
            subscription_per_month: None,
        };
        let prices = Prices::new(&PricesConfig {
            sets: vec![set(date(2026, 1, 1), 0.10), set(date(2026, 2, 15), 0.20)],
            ..PricesConfig::default()
        });
        let energy_wh = BTreeMap::from([("HN".to_owned(), 10_000)]);
        let rows: Vec<IndexRow> = [date(2026, 2, 14), date(2026, 2, 15)]
            .into_iter()
            .map(|d| {
                let costs = prices.cost(d, &energy_wh);
                let mut row = row(d, 10_000, 0, None);
                row.cost = costs.total;
                row.period_costs = costs
                    .rows
                    .iter()
                    .filter_map(|r| Some((r.code.clone(), r.cost?)))
                    .collect();
                row
            })
            .collect();
        let feb = &by_month(&rows)[&(2026, 2)];
        assert!(
            (feb.period_costs["HN"] - 3.0).abs() < 1e-9,
            "1.00 + 2.00: {feb:?}"
        );
        assert!((feb.cost.unwrap() - 4.0).abs() < 1e-9, "{feb:?}");
    }

    #[test]
    fn a_day_of_unknown_cost_leaves_its_month_and_year_unknown() {
        let mut unpriced = row(date(2027, 2, 2), 1000, 0, None);
        unpriced.cost = None;
        let rows = [row(date(2027, 2, 1), 1000, 0, None), unpriced];
        assert_eq!(by_month(&rows)[&(2027, 2)].cost, None);
        assert_eq!(by_year(&rows)[&2027].cost, None);
        assert_eq!(Totals::default().cost, None, "no day, no cost");
    }

    #[test]
    fn a_daylight_saving_day_counts_once_with_all_its_hours() {
        // 2027-03-28 lasts 23 hours in Paris: its energy, from its lines, is one day's.
        let tz = TimeZone::get("Europe/Paris").unwrap();
        let lines: Vec<_> = [
            "2027/03/28 00:00:10\tDATA\tPeriode=HN.., IndexHN=000001000, IndexHPM=000000000",
            "2027/03/28 01:59:50\tDATA\tPeriode=HN.., IndexHN=000001500, IndexHPM=000000000",
            "2027/03/28 03:00:10\tDATA\tPeriode=HN.., IndexHN=000001600, IndexHPM=000000000",
            "2027/03/28 23:59:50\tDATA\tPeriode=HN.., IndexHN=000004000, IndexHPM=000000000",
        ]
        .iter()
        .map(|l| l.parse().unwrap())
        .collect();
        let report = DayReport::from_lines(date(2027, 3, 28), &lines, &tz).unwrap();
        let c = Prices::new(&PricesConfig::default()).cost(report.date, &report.energy_wh);
        let dst = IndexRow::of_day(&report, &c);
        let rows = [row(date(2027, 3, 27), 24_000, 0, None), dst];
        let march = &by_month(&rows)[&(2027, 3)];
        assert_eq!(march.days, 2);
        assert_eq!(march.energy_wh["HN"], 27_000);
        assert_eq!(march.energy_wh["PM"], 0);
    }

    #[test]
    fn a_year_across_two_ejp_seasons_shows_both_counters() {
        let peak = Some(DayMark::Ejp { peak: true });
        let normal = Some(DayMark::Ejp { peak: false });
        let rows = [
            row(date(2026, 12, 10), 0, 9_000, peak),  // season 2026-2027
            row(date(2027, 1, 5), 0, 9_000, peak),    // season 2026-2027
            row(date(2027, 1, 6), 0, 9_000, peak),    // season 2026-2027
            row(date(2027, 7, 14), 9_000, 0, normal), // outside any season
            row(date(2027, 11, 20), 0, 9_000, peak),  // season 2027-2028
            row(date(2027, 12, 1), 9_000, 0, normal), // season 2027-2028
        ];
        let marks = marks(&rows);
        let seasons = seasons_of_year(2027, &marks);
        assert_eq!(seasons.len(), 2, "{seasons:?}");
        assert_eq!(seasons[0].season.name(), "2026-2027");
        assert_eq!(
            seasons[0].counters,
            Counters::Ejp(Allowance { used: 3, left: 19 })
        );
        assert_eq!(seasons[1].season.name(), "2027-2028");
        assert_eq!(
            seasons[1].counters,
            Counters::Ejp(Allowance { used: 1, left: 21 })
        );
        let years = by_year(&rows);
        assert_eq!(years[&2026].days, 1);
        assert_eq!(years[&2027].days, 5);
        assert_eq!(years[&2027].energy_wh["PM"], 27_000);
        assert!(seasons_of_year(2025, &marks).is_empty());

        let tempo = BTreeMap::from([
            (date(2027, 1, 8), DayMark::Tempo(Colour::Red)),
            (date(2027, 9, 8), DayMark::Tempo(Colour::White)),
        ]);
        let seasons = seasons_of_year(2027, &tempo);
        assert_eq!(
            seasons.iter().map(|c| c.season.name()).collect::<Vec<_>>(),
            ["2026-2027", "2027-2028"]
        );
        assert_eq!(kind_of(&tempo), Some(Kind::Tempo));
    }
}
