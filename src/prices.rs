//! What energy costs on a given day: the `prices:` sets of the configuration, each valid from
//! its date until the next set's, turned into a price per kWh, a subscription per day and a
//! day's cost. Pure: no clock, no I/O; dates are local days (`logger.timezone`).
//!
//! Periods are named as in `<base>/<id>/energy/<period>` ([`PERIODS`], lowercase). The meter
//! model and the daily logs use upper-case codes (`derived.period` is `HN`, `PM`, `BASE`,
//! `HCJB`…); every function here takes either spelling.

use std::collections::BTreeMap;

use jiff::civil::Date;

use crate::config::{PriceSet, PricesConfig};

/// The tariff periods a price can be given for, as `<base>/<id>/energy/<period>` names them.
pub const PERIODS: &[&str] = &[
    "base", "hc", "hp", "hn", "pm", "hcjb", "hpjb", "hcjw", "hpjw", "hcjr", "hpjr",
];

/// The period named by `code` in either case (`HN` or `hn` → `hn`); `None` for a code that is
/// no tariff period.
pub fn period_name(code: &str) -> Option<&'static str> {
    PERIODS
        .iter()
        .copied()
        .find(|p| p.eq_ignore_ascii_case(code))
}

/// The configured price sets, sorted by date, ready for look-ups by day.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Prices {
    currency: String,
    /// Sorted by `from`, no two on the same day (validation refused it).
    sets: Vec<PriceSet>,
}

impl Prices {
    /// The prices of a loaded configuration (already validated: dates unique, prices finite
    /// and non-negative, periods known). The sets are sorted here again, so a hand-built
    /// configuration works the same.
    pub fn new(config: &PricesConfig) -> Prices {
        let mut sets = config.sets.clone();
        sets.sort_by_key(|set| set.from);
        Prices {
            currency: config.currency.clone(),
            sets,
        }
    }

    /// The currency code (`EUR`).
    pub fn currency(&self) -> &str {
        &self.currency
    }

    /// Whether no price set is configured at all (costs are then unknown).
    pub fn is_empty(&self) -> bool {
        self.sets.is_empty()
    }

    /// The set in force on `date`: the last one whose `from` is on or before it; `None` before
    /// the first set.
    pub fn set_for(&self, date: Date) -> Option<&PriceSet> {
        let after = self.sets.partition_point(|set| set.from <= date);
        after.checked_sub(1).map(|i| &self.sets[i])
    }

    /// The price per kWh of `period` (either case) on `date`; `None` when no set is in force
    /// or the set has no price for it.
    pub fn kwh_price(&self, date: Date, period: &str) -> Option<f64> {
        let set = self.set_for(date)?;
        let name = period_name(period)?;
        set.kwh.get(name).copied()
    }

    /// The subscription charged for `date`: the set's `subscription_per_day`, or its
    /// `subscription_per_month` divided by the number of days of `date`'s month (so a month's
    /// days add up to the monthly price); 0 when no set is in force or it has none.
    pub fn subscription_for_day(&self, date: Date) -> f64 {
        match self.set_for(date) {
            Some(PriceSet {
                subscription_per_day: Some(daily),
                ..
            }) => *daily,
            Some(PriceSet {
                subscription_per_month: Some(monthly),
                ..
            }) => monthly / f64::from(date.days_in_month()),
            _ => 0.0,
        }
    }

    /// The cost on `date` of the energy drawn per period (Wh, by period code in either case),
    /// at the prices in force that day, plus that day's subscription.
    pub fn cost(&self, date: Date, energy_wh: &BTreeMap<String, u64>) -> Costs {
        let set = self.set_for(date);
        let rows: Vec<CostRow> = energy_wh
            .iter()
            .map(|(code, wh)| {
                let kwh = *wh as f64 / 1000.0;
                let price = set.and_then(|_| self.kwh_price(date, code));
                CostRow {
                    code: code.clone(),
                    kwh,
                    price,
                    cost: price.map(|p| kwh * p),
                }
            })
            .collect();
        let subscription = self.subscription_for_day(date);
        let complete = rows.iter().all(|r| r.cost.is_some() || r.kwh == 0.0);
        let total = (set.is_some() && complete)
            .then(|| rows.iter().filter_map(|r| r.cost).sum::<f64>() + subscription);
        Costs {
            rows,
            subscription,
            total,
        }
    }
}

/// One row of a day's cost table.
#[derive(Debug, Clone, PartialEq)]
pub struct CostRow {
    /// Period code, as the energy map had it.
    pub code: String,
    /// Energy drawn in the period, kWh.
    pub kwh: f64,
    /// The price per kWh of the period that day.
    pub price: Option<f64>,
    /// `kwh × price`.
    pub cost: Option<f64>,
}

/// A day's cost.
#[derive(Debug, Clone, PartialEq)]
pub struct Costs {
    /// One row per period of the energy map, in its order.
    pub rows: Vec<CostRow>,
    /// The day's subscription.
    pub subscription: f64,
    /// The day's cost, subscription included; `None` when no price set is in force that day,
    /// or when a period that used energy has no price (a partial sum would look like a real
    /// total).
    pub total: Option<f64>,
}

/// Prices in `EUR` from the beginning of time, for tests: `kwh` by period, a daily subscription.
#[cfg(test)]
pub(crate) fn always(kwh: &[(&str, f64)], subscription_per_day: f64) -> Prices {
    let kwh = kwh.iter().map(|(p, v)| ((*p).to_owned(), *v)).collect();
    Prices::new(&PricesConfig {
        currency: "EUR".into(),
        sets: vec![PriceSet::always(kwh, Some(subscription_per_day))],
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use jiff::civil::date;

    fn set(from: Date, kwh: &[(&str, f64)], daily: Option<f64>, monthly: Option<f64>) -> PriceSet {
        PriceSet {
            from,
            kwh: kwh.iter().map(|(p, v)| ((*p).to_owned(), *v)).collect(),
            subscription_per_day: daily,
            subscription_per_month: monthly,
        }
    }

    fn two_sets() -> Prices {
        // Given out of order on purpose: the later set first.
        Prices::new(&PricesConfig {
            currency: "EUR".into(),
            sets: vec![
                set(
                    date(2026, 8, 1),
                    &[("hn", 0.20), ("pm", 0.80)],
                    None,
                    Some(31.0),
                ),
                set(
                    date(2026, 2, 1),
                    &[("hn", 0.1386), ("pm", 0.7524)],
                    Some(0.45),
                    None,
                ),
            ],
        })
    }

    #[test]
    fn a_set_holds_from_its_date_until_the_day_before_the_next() {
        let p = two_sets();
        assert_eq!(
            p.kwh_price(date(2026, 1, 31), "hn"),
            None,
            "before the first set"
        );
        assert_eq!(p.kwh_price(date(2026, 2, 1), "hn"), Some(0.1386));
        assert_eq!(p.kwh_price(date(2026, 7, 31), "PM"), Some(0.7524));
        assert_eq!(p.kwh_price(date(2026, 8, 1), "PM"), Some(0.80));
        assert_eq!(
            p.kwh_price(date(2099, 1, 1), "hn"),
            Some(0.20),
            "the last set lasts"
        );
        assert_eq!(
            p.kwh_price(date(2026, 8, 1), "hc"),
            None,
            "no price for the period"
        );
        assert_eq!(p.kwh_price(date(2026, 8, 1), "XX"), None, "no such period");
    }

    #[test]
    fn the_subscription_is_per_day_or_the_month_spread_over_its_days() {
        let p = two_sets();
        assert_eq!(p.subscription_for_day(date(2026, 1, 1)), 0.0);
        assert_eq!(p.subscription_for_day(date(2026, 7, 31)), 0.45);
        assert_eq!(p.subscription_for_day(date(2026, 8, 31)), 1.0);
        let september: f64 = (1..=30)
            .map(|d| p.subscription_for_day(date(2026, 9, d)))
            .sum();
        assert!((september - 31.0).abs() < 1e-9, "{september}");
    }

    #[test]
    fn a_day_is_costed_with_the_set_in_force_that_day() {
        let p = two_sets();
        let energy = BTreeMap::from([("HN".to_owned(), 10_000), ("PM".to_owned(), 2_000)]);
        let before = p.cost(date(2026, 7, 31), &energy);
        assert!((before.total.unwrap() - (1.386 + 1.5048 + 0.45)).abs() < 1e-9);
        assert_eq!(before.rows[0].price, Some(0.1386));
        let after = p.cost(date(2026, 8, 1), &energy);
        assert!((after.total.unwrap() - (2.0 + 1.6 + 1.0)).abs() < 1e-9);
        assert_eq!(after.rows[1].cost, Some(2.0 * 0.80));
        assert_eq!(p.cost(date(2026, 1, 31), &energy).total, None, "no set yet");
    }

    #[test]
    fn a_period_without_price_that_used_energy_leaves_the_total_unknown() {
        let p = two_sets();
        let energy = BTreeMap::from([("HN".to_owned(), 1_000), ("HC".to_owned(), 0)]);
        assert!(
            p.cost(date(2026, 3, 1), &energy).total.is_some(),
            "HC used nothing"
        );
        let energy = BTreeMap::from([("HC".to_owned(), 1_000)]);
        assert_eq!(p.cost(date(2026, 3, 1), &energy).total, None);
        assert_eq!(
            Prices::default().cost(date(2026, 3, 1), &energy).total,
            None
        );
    }

    #[test]
    fn period_names_take_either_case() {
        assert_eq!(period_name("HCJB"), Some("hcjb"));
        assert_eq!(period_name("base"), Some("base"));
        assert_eq!(period_name("HPJX"), None);
    }
}
