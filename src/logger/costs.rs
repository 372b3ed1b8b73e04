//! The logger's priced topics besides `today`: `<base>/<id>/price`, the price per kWh now, and
//! `<base>/<id>/month`, the month to date. Pure: they are given the states' times and periods
//! and the days' energy, and say what to publish; [`super::meter_log`] reads the files.
//!
//! The month is kept without re-reading it: the energy of each past day of the month is read
//! from its log once (again only when that log changes: a late line from the daemon's spool),
//! and today's comes from the `today` report, which is computed anyway. Each day is costed at
//! the prices in force that day.

use std::collections::{BTreeMap, BTreeSet};

use jiff::civil::Date;
use jiff::{Timestamp, ToSpan};

use super::day::cents;
use crate::prices::{Prices, period_name};

/// `<base>/<id>/price`: the price per kWh of the newest state filed, published when it
/// differs from the last one published.
#[derive(Debug, Default)]
pub struct PriceNow {
    /// The newest state's time and its price (`None`: no price for its period that day).
    newest: Option<(Timestamp, Option<f64>)>,
    /// What was published last in this run (`None`: nothing yet).
    published: Option<Option<f64>>,
}

impl PriceNow {
    /// Notes the price of a state filed at `ts`; an older state (from a spool drain) does not
    /// change the price now.
    pub fn note(&mut self, ts: Timestamp, price: Option<f64>) {
        if self.newest.is_none_or(|(newest, _)| ts >= newest) {
            self.newest = Some((ts, price));
        }
    }

    /// The payload to publish when the price now differs from the last one published: the
    /// number as configured (`0.1386`), or empty, which removes the retained price, when the
    /// newest state's period has no price that day. The first call of a run always gives
    /// one, so a retained price left by an earlier run is corrected.
    pub fn take_change(&mut self) -> Option<String> {
        let (_, price) = self.newest?;
        if self.published == Some(price) {
            return None;
        }
        self.published = Some(price);
        Some(price.map_or_else(String::new, |p| p.to_string()))
    }
}

/// The energy of one day per period code, Wh.
pub type Energy = BTreeMap<String, u64>;

/// The month to date of one meter: its past days' energy, read once each.
#[derive(Debug, Default)]
pub struct Month {
    /// The first day of the month `days` belong to.
    first: Option<Date>,
    /// The energy of the month's days before today that have a log.
    days: BTreeMap<Date, Energy>,
    /// Days whose log changed since it was read (or was never read).
    stale: BTreeSet<Date>,
    /// The payload published last.
    published: Option<String>,
}

impl Month {
    /// Notes that the log of `date` changed: its energy is read again when the month needs it.
    pub fn log_changed(&mut self, date: Date) {
        self.stale.insert(date);
    }

    /// The `month` payload for the day of `today` (its energy so far), when it differs from
    /// the last one published. Past days of the month are read with `read_day` (their
    /// energy, `None` when there is no log): each once per month, and again after its log
    /// changed.
    pub fn update(
        &mut self,
        today: Date,
        today_energy: &Energy,
        prices: &Prices,
        mut read_day: impl FnMut(Date) -> Option<Energy>,
    ) -> Option<String> {
        let first = today.first_of_month();
        if self.first != Some(first) {
            self.first = Some(first);
            self.days.clear();
            self.stale = first.series(1.day()).take_while(|d| *d < today).collect();
        }
        // Today's own log waits until it is a past day: today's energy comes from the report.
        let due: Vec<Date> = self.stale.range(..today).copied().collect();
        for date in due {
            self.stale.remove(&date);
            if date < first {
                continue; // an earlier month's
            }
            match read_day(date) {
                Some(energy) => self.days.insert(date, energy),
                None => self.days.remove(&date),
            };
        }
        let days = self
            .days
            .iter()
            .map(|(d, e)| (*d, e))
            .chain([(today, today_energy)]);
        let payload = month_json(today, days, prices);
        if self.published.as_ref() == Some(&payload) {
            return None;
        }
        self.published = Some(payload.clone());
        Some(payload)
    }
}

/// The retained `<base>/<id>/month` payload (contract §6): the month of `today`, the energy
/// per period summed over `days` (periods in lowercase, as `<base>/<id>/energy/<period>`),
/// each day's energy costed at the prices in force that day, and the subscription of every
/// day from the 1st to `today`. `cost` is `null` when no price set is in force on any of
/// these days or a period that used energy has no price on a day it did; a period's
/// `cost_by_period` is `null` in the second case. Amounts are rounded to the cent.
pub fn month_json<'a>(
    today: Date,
    days: impl IntoIterator<Item = (Date, &'a Energy)>,
    prices: &Prices,
) -> String {
    let mut energy_wh: BTreeMap<String, u64> = BTreeMap::new();
    let mut cost_by_period: BTreeMap<String, Option<f64>> = BTreeMap::new();
    for (date, energy) in days {
        for (code, wh) in energy {
            let period = period_name(code).map_or_else(|| code.to_ascii_lowercase(), str::to_owned);
            *energy_wh.entry(period.clone()).or_insert(0) += wh;
            let cost = cost_by_period.entry(period).or_insert(Some(0.0));
            let kwh = *wh as f64 / 1000.0;
            *cost = match prices.kwh_price(date, code) {
                Some(price) => cost.map(|c| c + kwh * price),
                None if *wh == 0 => *cost,
                None => None,
            };
        }
    }
    let first = today.first_of_month();
    let month_days = || first.series(1.day()).take_while(|d| *d <= today);
    let subscription: f64 = month_days().map(|d| prices.subscription_for_day(d)).sum();
    let priced = month_days().any(|d| prices.set_for(d).is_some());
    let cost = cost_by_period
        .values()
        .try_fold(subscription, |sum, c| c.map(|c| sum + c))
        .filter(|_| priced);

    #[derive(serde::Serialize)]
    struct MonthMessage<'a> {
        month: String,
        energy_wh: BTreeMap<String, u64>,
        cost: Option<f64>,
        cost_by_period: BTreeMap<String, Option<f64>>,
        subscription: f64,
        currency: &'a str,
    }
    let message = MonthMessage {
        month: today.strftime("%Y-%m").to_string(),
        energy_wh,
        cost: cost.map(cents),
        cost_by_period: cost_by_period
            .into_iter()
            .map(|(p, c)| (p, c.map(cents)))
            .collect(),
        subscription: cents(subscription),
        currency: prices.currency(),
    };
    serde_json::to_string(&message).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{PriceSet, PricesConfig};
    use jiff::civil::date;

    fn energy(pairs: &[(&str, u64)]) -> Energy {
        pairs.iter().map(|(c, wh)| ((*c).to_owned(), *wh)).collect()
    }

    /// 0.10/0.50 with 0.30 a day until 15 March 2026, then 0.20/1.00 with 62.00 a month.
    fn prices() -> Prices {
        let kwh = |hn: f64, pm: f64| BTreeMap::from([("hn".to_owned(), hn), ("pm".to_owned(), pm)]);
        Prices::new(&PricesConfig {
            currency: "EUR".into(),
            sets: vec![
                PriceSet {
                    from: date(2026, 1, 1),
                    kwh: kwh(0.10, 0.50),
                    subscription_per_day: Some(0.30),
                    subscription_per_month: None,
                },
                PriceSet {
                    from: date(2026, 3, 15),
                    kwh: kwh(0.20, 1.00),
                    subscription_per_day: None,
                    subscription_per_month: Some(62.0),
                },
            ],
        })
    }

    #[test]
    fn a_month_costs_each_day_at_its_own_prices_with_the_subscription_of_every_day() {
        let before = energy(&[("HN", 10_000), ("PM", 1_000)]);
        let after = energy(&[("HN", 5_000), ("PM", 2_000)]);
        let days = [(date(2026, 3, 14), &before), (date(2026, 3, 16), &after)];
        let json: serde_json::Value =
            serde_json::from_str(&month_json(date(2026, 3, 16), days, &prices())).unwrap();
        // hn: 10 × 0.10 + 5 × 0.20 = 2.00; pm: 1 × 0.50 + 2 × 1.00 = 2.50.
        // Subscription: 14 days × 0.30 + 2 days × 62/31 = 4.20 + 4.00 = 8.20.
        assert_eq!(
            json,
            serde_json::json!({
                "month": "2026-03",
                "energy_wh": {"hn": 15_000, "pm": 3_000},
                "cost": 12.7,
                "cost_by_period": {"hn": 2.0, "pm": 2.5},
                "subscription": 8.2,
                "currency": "EUR",
            })
        );
    }

    #[test]
    fn a_month_with_energy_in_a_period_without_price_has_no_total() {
        let e = energy(&[("HN", 1_000), ("HC", 1_000)]);
        let json: serde_json::Value = serde_json::from_str(&month_json(
            date(2026, 3, 2),
            [(date(2026, 3, 2), &e)],
            &prices(),
        ))
        .unwrap();
        assert_eq!(json["cost"], serde_json::Value::Null);
        assert_eq!(json["cost_by_period"]["hc"], serde_json::Value::Null);
        assert_eq!(json["cost_by_period"]["hn"], 0.1);
        let none = month_json(
            date(2026, 3, 2),
            [(date(2026, 3, 2), &e)],
            &Prices::default(),
        );
        assert!(none.contains("\"cost\":null"), "{none}");
    }

    #[test]
    fn past_days_are_read_once_and_again_only_when_their_log_changed() {
        let mut month = Month::default();
        let p = prices();
        let mut reads = Vec::new();
        let today = energy(&[("HN", 1_000)]);
        let mut read = |d: Date| {
            reads.push(d);
            (d.day() == 2).then(|| energy(&[("HN", 2_000)]))
        };
        let first = month
            .update(date(2026, 3, 4), &today, &p, &mut read)
            .unwrap();
        assert!(first.contains("\"hn\":3000"), "{first}");
        assert_eq!(
            month.update(date(2026, 3, 4), &today, &p, &mut read),
            None,
            "unchanged"
        );
        month.log_changed(date(2026, 3, 2));
        month.log_changed(date(2026, 3, 4)); // today's own log: the report has it
        month.log_changed(date(2026, 2, 28)); // another month
        let more = energy(&[("HN", 1_500)]);
        assert!(
            month
                .update(date(2026, 3, 4), &more, &p, &mut read)
                .is_some()
        );
        month.log_changed(date(2026, 3, 4));
        assert!(
            month
                .update(date(2026, 3, 5), &today, &p, &mut read)
                .is_some()
        );
        month.update(date(2026, 4, 1), &today, &p, &mut read);
        let days: Vec<i8> = reads.iter().map(|d| d.day()).collect();
        assert_eq!(days, [1, 2, 3, 2, 4], "April 1st reads no past day");
    }

    #[test]
    fn the_price_is_published_on_change_from_the_newest_state() {
        let mut price = PriceNow::default();
        assert_eq!(price.take_change(), None, "no state yet");
        let t = |s: i64| Timestamp::from_second(1_780_000_000 + s).unwrap();
        price.note(t(0), Some(0.1386));
        assert_eq!(price.take_change().as_deref(), Some("0.1386"));
        price.note(t(10), Some(0.1386));
        assert_eq!(price.take_change(), None);
        price.note(t(20), Some(0.7524));
        price.note(t(5), Some(0.1386)); // an old state from a spool drain
        assert_eq!(price.take_change().as_deref(), Some("0.7524"));
        price.note(t(30), None);
        assert_eq!(
            price.take_change().as_deref(),
            Some(""),
            "unknown clears it"
        );
    }
}
