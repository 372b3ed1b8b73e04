//! Dated prices through the real logger and mosquitto (issue 19.2): states of an EJP meter
//! replayed across the day a new price set starts, `price` following the period and the set,
//! `today` and `month` costed day by day at the prices of each day, and the logger's Home
//! Assistant entities rendered in Jinja2 from what it published.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use serde_json::{Value, json};

use crate::ha_templates::render;
use crate::support::{Broker, Running, Subscriber, mosquitto_pub, wait_log_lines, write_config};

const ID: &str = "021728123456";

/// The first set holds from 1 November 2024, the second from 15 November; given out of order.
const PRICES: &str = "prices:\n  currency: EUR\n  sets:\n    \
    - {from: 2024-11-15, kwh: {hn: 0.20, pm: 1.00}, subscription_per_month: 60}\n    \
    - {from: 2024-11-01, kwh: {hn: 0.10, pm: 0.50}, subscription_per_day: 0.30}\n";

/// The same prices, for the test's own arithmetic: (hn, pm, subscription of a November day).
fn prices_of(day: i8) -> (f64, f64, f64) {
    if day >= 15 {
        (0.20, 1.00, 60.0 / 30.0)
    } else {
        (0.10, 0.50, 0.30)
    }
}

/// One state: (day of November 2024, local time, period, EJPHN, EJPHPM).
type Step = (i8, &'static str, &'static str, u64, u64);

/// Two days across the start of the second set, with a period change on each.
const STEPS: &[Step] = &[
    (14, "10:00:00", "HN", 1_000_000, 500_000),
    (14, "12:00:00", "HN", 1_002_000, 500_000),
    (14, "14:00:00", "PM", 1_002_000, 500_000),
    (14, "15:00:00", "PM", 1_002_000, 501_000),
    (15, "08:00:00", "HN", 1_003_000, 501_000),
    (15, "09:00:00", "HN", 1_004_000, 501_000),
    (15, "10:00:00", "PM", 1_004_000, 501_500),
];

fn state((day, time, period, hn, pm): Step) -> String {
    format!(
        r#"{{"ts":"2024-11-{day}T{time}+01:00","meter":"{ID}","mode":"historic","values":{{"ADCO":"{ID}","OPTARIF":"EJP.","ISOUSC":30,"EJPHN":{hn},"EJPHPM":{pm},"PTEC":"{period}..","IINST":2,"PAPP":500}},"derived":{{"injection_w":0,"consumption_va":500,"period":"{period}"}}}}"#
    )
}

/// Each day's energy (Wh) per period, from the index increases between consecutive states,
/// counted in the day of the later state (a day counts from the day before's last state).
fn energy_by_day() -> BTreeMap<i8, (u64, u64)> {
    let mut days: BTreeMap<i8, (u64, u64)> = BTreeMap::new();
    for pair in STEPS.windows(2) {
        let (_, _, _, hn0, pm0) = pair[0];
        let (day, _, _, hn1, pm1) = pair[1];
        let e = days.entry(day).or_default();
        e.0 += hn1 - hn0;
        e.1 += pm1 - pm0;
    }
    days
}

fn cents(x: f64) -> f64 {
    (x * 100.0).round() / 100.0
}

fn assert_amount(json: &Value, pointer: &str, expected: f64) {
    let found = json.pointer(pointer).and_then(Value::as_f64);
    assert_eq!(found, Some(cents(expected)), "{pointer} of {json}");
}

#[test]
fn a_logger_with_two_price_sets_costs_each_day_at_its_prices_and_follows_the_price() {
    let broker = Broker::start();
    let temp = tempfile::tempdir().unwrap();
    let dir = temp.path();
    let config = write_config(
        dir,
        broker.port,
        &format!(
            "logger:\n  dir: {}\n  pages_dir: {}\n  frames_per_line: 1\n  \
             timezone: Europe/Paris\n  pages_interval: 1s\n{PRICES}",
            dir.join("logs").display(),
            dir.join("pages").display()
        ),
    );
    let sub = Subscriber::start(broker.port, &["linky/#", "homeassistant/#"]);
    let logger = Running::logger(&config);
    let price_topic = format!("linky/{ID}/price");
    let state_topic = format!("linky/{ID}/state");
    // One state at a time; after each change of price, its message, so none is coalesced.
    let mut expected_prices: Vec<String> = Vec::new();
    for (i, step) in STEPS.iter().enumerate() {
        mosquitto_pub(broker.port, &state_topic, &state(*step));
        wait_log_lines(&dir.join("logs"), i + 1, Duration::from_secs(5));
        let (hn, pm, _) = prices_of(step.0);
        let price = if step.2 == "HN" { hn } else { pm };
        if expected_prices.last() != Some(&price.to_string()) {
            expected_prices.push(price.to_string());
            sub.wait_count(&price_topic, expected_prices.len(), Duration::from_secs(5));
        }
    }
    let energy = energy_by_day();
    let (hn15, pm15) = energy[&15];
    let last_today = sub.wait_for("the second day's today", Duration::from_secs(5), |l| {
        l.starts_with(&format!("linky/{ID}/today "))
            && l.contains("\"2024-11-15\"")
            && l.contains(&format!("\"PM\":{pm15}"))
    });
    let month_energy: (u64, u64) = energy.values().fold((0, 0), |a, e| (a.0 + e.0, a.1 + e.1));
    let last_month = sub.wait_for("the month to the 15th", Duration::from_secs(5), |l| {
        l.starts_with(&format!("linky/{ID}/month "))
            && l.contains(&format!("\"pm\":{}", month_energy.1))
    });
    sub.wait_for("the price entity", Duration::from_secs(5), |l| {
        l.starts_with(&format!("homeassistant/sensor/linky_{ID}/price/config "))
    });
    logger.stop();

    assert_eq!(sub.payloads(&price_topic), expected_prices);
    assert_eq!(
        expected_prices,
        ["0.1", "0.5", "0.2", "1"],
        "the test's own premise"
    );

    // Today, the 15th: the second set's prices and its monthly subscription over 30 days.
    let today: Value = serde_json::from_str(last_today.split_once(' ').unwrap().1).unwrap();
    let (hn_price, pm_price, subscription) = prices_of(15);
    let hn_cost = hn15 as f64 / 1000.0 * hn_price;
    let pm_cost = pm15 as f64 / 1000.0 * pm_price;
    assert_eq!(today["energy_wh"], json!({"HN": hn15, "PM": pm15}));
    assert_amount(&today, "/cost_by_period/HN", hn_cost);
    assert_amount(&today, "/cost_by_period/PM", pm_cost);
    assert_amount(&today, "/subscription", subscription);
    assert_amount(&today, "/cost", hn_cost + pm_cost + subscription);

    // The month to the 15th: each day at its own prices, and the subscription of every day
    // from the 1st, though the logger saw only two.
    let month: Value = serde_json::from_str(last_month.split_once(' ').unwrap().1).unwrap();
    assert_eq!(month["month"], "2024-11");
    assert_eq!(month["currency"], "EUR");
    assert_eq!(
        month["energy_wh"],
        json!({"hn": month_energy.0, "pm": month_energy.1})
    );
    let (mut hn_month, mut pm_month) = (0.0, 0.0);
    for (day, (hn, pm)) in &energy {
        let (hn_price, pm_price, _) = prices_of(*day);
        hn_month += *hn as f64 / 1000.0 * hn_price;
        pm_month += *pm as f64 / 1000.0 * pm_price;
    }
    let subscriptions: f64 = (1..=15).map(|d| prices_of(d).2).sum();
    assert_amount(&month, "/cost_by_period/hn", hn_month);
    assert_amount(&month, "/cost_by_period/pm", pm_month);
    assert_amount(&month, "/subscription", subscriptions);
    assert_amount(&month, "/cost", hn_month + pm_month + subscriptions);

    render_logger_entities(dir, &sub.lines());
}

/// Renders the logger's discovery configs in Jinja2 against every message it published.
fn render_logger_entities(dir: &Path, lines: &[String]) {
    let split = |l: &String| {
        let (topic, payload) = l.split_once(' ').unwrap_or((l, ""));
        (topic.to_owned(), payload.to_owned())
    };
    let (configs, messages): (Vec<_>, Vec<_>) = lines
        .iter()
        .map(split)
        .partition(|(t, _)| t.starts_with("homeassistant/"));
    let configs: serde_json::Map<String, Value> = configs
        .into_iter()
        .map(|(t, p)| (t, Value::String(p)))
        .collect();
    for object in ["today_cost", "month_cost", "month_energy_hn", "price"] {
        assert!(
            configs
                .keys()
                .any(|t| t.ends_with(&format!("/{object}/config"))),
            "{object} announced: {:?}",
            configs.keys()
        );
    }
    let price: Value = serde_json::from_str(
        configs[&format!("homeassistant/sensor/linky_{ID}/price/config")]
            .as_str()
            .unwrap(),
    )
    .unwrap();
    assert_eq!(price["unit_of_measurement"], "EUR/kWh");
    let mut messages: Vec<(String, String)> = messages
        .into_iter()
        .filter(|(t, _)| !t.ends_with("/state"))
        .collect();
    // The daemon, not run here, says the meter is online on the entities' availability topic.
    messages.push((format!("linky/{ID}/availability"), "online".to_owned()));
    let case = json!({ "configs": configs, "messages": messages });
    let report = render(dir, "logger-prices", &case, None);
    assert!(report.contains(" 0 failures"), "{report}");
}
