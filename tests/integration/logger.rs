//! `linkymon logger` and `linkymon graph` with real parts: mosquitto, the daemon on a replay or
//! the simulator, and a headless Chromium reading the pages.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::Duration;

use jiff::tz::TimeZone;
use linkymon::logger::LogLine;
use serde_json::Value;

use crate::support::{
    Broker, Running, SIM_ID, Subscriber, TEMPO_CAPTURE, TEMPO_ID, assert_golden, daily_logs,
    fixtures_dir, linkymon, require, root, wait_log_lines, write_config,
};

fn paris() -> TimeZone {
    TimeZone::get("Europe/Paris").unwrap()
}

/// The logger's settings, with prices in the deprecated keys (`logger.prices`,
/// `logger.subscription_per_day`), which must keep working.
fn logger_section(dir: &Path, frames_per_line: u32) -> String {
    format!(
        "logger:\n  dir: {}\n  pages_dir: {}\n  frames_per_line: {frames_per_line}\n  \
         timezone: Europe/Paris\n  pages_interval: 1s\n  subscription_per_day: 0.5\n  \
         prices: {{HCJB: 0.1296, HPJB: 0.1609, HN: 0.1386, PM: 0.7524}}\n",
        dir.join("logs").display(),
        dir.join("pages").display()
    )
}

/// `linkymon graph` on `logs`; panics with its stderr unless it succeeds.
fn graph(config: &Path, logs: &[PathBuf]) -> Output {
    let out = linkymon(config, &["graph"]).args(logs).output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

#[test]
fn a_replay_through_mosquitto_gives_the_golden_lines_the_pages_and_today() {
    let broker = Broker::start();
    let temp = tempfile::tempdir().unwrap();
    let dir = temp.path();
    let capture = fixtures_dir().join(TEMPO_CAPTURE);
    let config = write_config(
        dir,
        broker.port,
        &format!(
            "meter:\n  port: replay:{}\n  replay_speed: 0\npublish:\n  interval: 0\n{}",
            capture.display(),
            logger_section(dir, 2)
        ),
    );
    let sub = Subscriber::start(broker.port, &["linky/+/today", "homeassistant/#"]);
    let logger = Running::logger(&config);
    let status = linkymon(&config, &["run"])
        .stderr(Stdio::null())
        .status()
        .unwrap();
    assert!(status.success(), "{status}");
    let lines = wait_log_lines(&dir.join("logs"), 5, Duration::from_secs(5));
    let today = sub.wait_for("today", Duration::from_secs(5), |l| {
        l.starts_with(&format!("linky/{TEMPO_ID}/today "))
    });
    sub.wait_for("the cost entity", Duration::from_secs(5), |l| {
        l.starts_with(&format!(
            "homeassistant/sensor/linky_{TEMPO_ID}/today_cost/config "
        ))
    });
    std::thread::sleep(Duration::from_millis(1500)); // one pages_interval
    let said = logger.stop();
    let deprecated: Vec<&String> = said.iter().filter(|l| l.contains("deprecated")).collect();
    assert_eq!(
        deprecated.len(),
        1,
        "one line for the old price keys: {said:#?}"
    );
    assert!(
        deprecated[0].contains("`logger.prices`"),
        "{}",
        deprecated[0]
    );
    // `<base>/+/state` matches the daemon's `linky/bridge/state` too: left out, not refused.
    assert!(!said.iter().any(|l| l.contains("was dropped")), "{said:#?}");

    // Ten frames, two per line: five lines, the time column aside, as golden.
    assert_eq!(lines.len(), 5, "{lines:#?}");
    let times: Vec<&str> = lines
        .iter()
        .map(|l| l.split('\t').next().unwrap())
        .collect();
    for t in &times {
        assert!(t.parse::<LogLine>().is_err(), "not a line by itself");
        assert_eq!(t.len(), 19, "{t}");
    }
    let masked: String = lines
        .iter()
        .map(|l| format!("YYYY/MM/DD HH:MM:SS\t{}\n", l.split_once('\t').unwrap().1))
        .collect();
    assert_golden(
        &root().join("tests/fixtures/golden/logger/hist-1p-tempo-pyteleinfo.log"),
        &masked,
    );
    // Filed under the local day of the lines' own time.
    let first: LogLine = lines[0].parse().unwrap();
    let date = first.time.date();
    let files = daily_logs(&dir.join("logs"));
    assert_eq!(
        files,
        [dir.join("logs").join(format!("{date}.log"))],
        "one file, named after the local day"
    );

    let today: Value = serde_json::from_str(today.split_once(' ').unwrap().1).unwrap();
    assert_eq!(today["date"], date.to_string());
    assert_eq!(today["currency"], "EUR");
    assert!(today["energy_wh"]["HCJB"].is_u64(), "{today}");
    assert!(
        today["cost"].as_f64().unwrap() >= 0.5,
        "subscription included: {today}"
    );

    let page = std::fs::read_to_string(dir.join("pages").join(format!("{date}.html"))).unwrap();
    assert!(page.contains(&format!("Linky {TEMPO_ID}")), "{page}");
    assert!(page.contains("data-period=\"HCJB\""), "{page}");
    let index = std::fs::read_to_string(dir.join("pages/index.html")).unwrap();
    assert!(index.contains(&format!("href=\"{date}.html\"")), "{index}");
    assert!(
        dir.join("pages/assets/dygraph.min.js").is_file(),
        "dygraphs copied from Debian's package"
    );
}

#[test]
fn a_logger_stopped_and_restarted_mid_stream_loses_no_line() {
    let broker = Broker::start();
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(
        dir.path(),
        broker.port,
        &format!(
            "meter:\n  port: simulate\n  simulate_speed: 100\npublish:\n  interval: 0\n{}",
            logger_section(dir.path(), 3)
        ),
    );
    let states = Subscriber::start(
        broker.port,
        &[
            &format!("linky/{SIM_ID}/state"),
            &format!("linky/{SIM_ID}/availability"),
        ],
    );
    let first = Running::logger(&config);
    let daemon = Running::start(&config, "run");
    states.wait_count(&format!("linky/{SIM_ID}/state"), 40, Duration::from_secs(5));
    first.stop();
    // The daemon goes on; the broker keeps the logger's messages in its session.
    let seen_while_away = states.payloads(&format!("linky/{SIM_ID}/state")).len();
    states.wait_count(
        &format!("linky/{SIM_ID}/state"),
        seen_while_away + 30,
        Duration::from_secs(5),
    );
    let second = Running::logger(&config);
    std::thread::sleep(Duration::from_millis(500));
    daemon.stop();
    // `offline` comes after the last state on the daemon's connection: all states are in.
    states.wait_for("offline", Duration::from_secs(5), |l| {
        l == format!("linky/{SIM_ID}/availability offline")
    });
    let published = states.payloads(&format!("linky/{SIM_ID}/state"));
    let expected_lines = published.len() / 3;
    let lines = wait_log_lines(
        &dir.path().join("logs"),
        expected_lines,
        Duration::from_secs(5),
    );
    second.stop();

    // Every line is the one an uninterrupted logger writes: the time and indexes of every
    // third state, in order.
    assert_eq!(lines.len(), expected_lines, "{} states", published.len());
    let tz = paris();
    for (i, text) in lines.iter().enumerate() {
        let line: LogLine = text.parse().unwrap();
        let state: Value = serde_json::from_str(&published[3 * i + 2]).unwrap();
        let ts: jiff::Timestamp = state["ts"].as_str().unwrap().parse().unwrap();
        assert_eq!(line.time, tz.to_datetime(ts), "line {i}: {text}");
        assert_eq!(
            line.index("HN"),
            state["values"]["EJPHN"].as_u64(),
            "line {i}: {text}"
        );
    }
}

#[test]
fn graph_reads_a_perl_log_and_reports_unreadable_lines_by_file_and_line() {
    let temp = tempfile::tempdir().unwrap();
    let dir = temp.path();
    let log = dir.join("2021-02-20.log");
    std::fs::write(
        &log,
        "2021/02/20 19:10:22\tDATA\tPeriode=HN.., IndexHN=000688322, IndexHPM=000080072, PuissConsommee=00000, IConsommee=013\n\
         2021/02/20 19:10:3\x01 garbage\n\
         2021/02/20 19:20:22\tDATA\tPeriode=PM.., IndexHN=000688322, IndexHPM=000081072, PuissConsommee=03000, IConsommee=013, Tension=231\n",
    )
    .unwrap();
    let config = dir.join("config.yaml");
    std::fs::write(
        &config,
        format!(
            "logger:\n  pages_dir: {}\nprices:\n  sets:\n    - {{from: 2021-01-01, kwh: {{hn: 0.1386, pm: 0.7524}}}}\n",
            dir.join("pages").display()
        ),
    )
    .unwrap();
    let out = graph(&config, std::slice::from_ref(&log));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains(&format!("{}:2: skipped", log.display())),
        "{stderr}"
    );
    assert!(stderr.contains("1 unreadable lines skipped"), "{stderr}");
    let page = std::fs::read_to_string(dir.join("pages/2021-02-20.html")).unwrap();
    assert!(
        page.contains("<td>PM</td><td class=\"kwh\">1.000</td><td class=\"price\">0.7524</td><td class=\"cost\">0.75 EUR</td>"),
        "{page}"
    );
}

#[test]
fn graph_without_logs_is_a_usage_error() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("config.yaml");
    std::fs::write(&config, "").unwrap();
    let out = linkymon(&config, &["graph"]).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn an_unwritable_log_dir_is_one_clear_line() {
    let dir = tempfile::tempdir().unwrap();
    let blocker = dir.path().join("file");
    std::fs::write(&blocker, "").unwrap();
    let config = write_config(
        dir.path(),
        1,
        &format!("logger:\n  dir: {}/logs\n", blocker.display()),
    );
    let out = linkymon(&config, &["logger"]).output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(stderr.contains("logger.dir"), "{stderr}");
}

// ---------------------------------------------------------------------------------------------
// The pages in a real browser.

/// Headless Chromium on a page: the DOM after the page's scripts ran, and its console.
fn chromium(page: &Path, extra: &[&str]) -> (String, String) {
    require("chromium");
    let profile = tempfile::tempdir().unwrap();
    let out = Command::new("chromium")
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--no-first-run",
            "--enable-logging=stderr",
            "--v=0",
        ])
        .arg(format!("--user-data-dir={}", profile.path().display()))
        .args(extra)
        .arg(format!("file://{}", page.display()))
        .env("TZ", "Europe/Paris")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    (
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// The hand-checked day of `logger::day`'s tests, with the day before.
fn write_hand_checked_logs(dir: &Path) -> Vec<PathBuf> {
    let before = dir.join("2021-02-19.log");
    std::fs::write(
        &before,
        "2021/02/19 23:59:00\tDATA\tPeriode=HN.., IndexHN=001000000, IndexHPM=000500000, PuissConsommee=00300, IConsommee=001\n",
    )
    .unwrap();
    let day = dir.join("2021-02-20.log");
    std::fs::write(
        &day,
        "2021/02/20 00:01:00\tDATA\tPeriode=HN.., IndexHN=001000100, IndexHPM=000500000, PuissConsommee=00400, IConsommee=002\n\
         2021/02/20 06:59:00\tDATA\tPeriode=HN.., IndexHN=001002100, IndexHPM=000500000, PuissConsommee=00000, IConsommee=005, PuissInjectee=01200\n\
         2021/02/20 07:01:00\tDATA\tPeriode=PM.., IndexHN=001002100, IndexHPM=000500300, PuissConsommee=03500, IConsommee=015\n\
         2021/02/20 23:58:00\tDATA\tPeriode=PM.., IndexHN=001002100, IndexHPM=000512300, PuissConsommee=00800, IConsommee=004\n",
    )
    .unwrap();
    vec![before, day]
}

fn graph_config(dir: &Path) -> PathBuf {
    let config = dir.join("config.yaml");
    std::fs::write(
        &config,
        format!(
            "logger:\n  pages_dir: {}\nprices:\n  sets:\n    - from: 2021-01-01\n      \
             kwh: {{hn: 0.1386, pm: 0.7524}}\n      subscription_per_day: 0.5\n",
            dir.join("pages").display()
        ),
    )
    .unwrap();
    config
}

fn attribute<'a>(dom: &'a str, element: &str, name: &str) -> &'a str {
    let at = dom
        .find(element)
        .unwrap_or_else(|| panic!("no {element} in {dom}"));
    let rest = &dom[at..];
    let start = rest.find(&format!("{name}=\"")).unwrap() + name.len() + 2;
    &rest[start..start + rest[start..].find('"').unwrap()]
}

#[test]
fn a_day_page_draws_its_chart_in_chromium_with_the_hand_checked_totals_and_no_error() {
    let temp = tempfile::tempdir().unwrap();
    let dir = temp.path();
    let logs = write_hand_checked_logs(dir);
    graph(&graph_config(dir), &logs);

    let (dom, console) = chromium(&dir.join("pages/2021-02-20.html"), &["--dump-dom"]);
    let drawn: u64 = attribute(&dom, "id=\"chart\"", "data-drawn")
        .parse()
        .unwrap_or(0);
    assert!(drawn > 1000, "dygraphs painted {drawn} pixels");
    assert!(dom.contains("class=\"dygraph-legend\""), "dygraphs ran");
    assert_eq!(attribute(&dom, "<body", "data-errors"), "0", "{dom}");
    let console: Vec<&str> = console.lines().filter(|l| l.contains(":CONSOLE")).collect();
    assert!(console.is_empty(), "console messages: {console:#?}");
    for row in [
        "<td>HN</td><td class=\"kwh\">2.100</td><td class=\"price\">0.1386</td><td class=\"cost\">0.29 EUR</td>",
        "<td>PM</td><td class=\"kwh\">12.300</td><td class=\"price\">0.7524</td><td class=\"cost\">9.25 EUR</td>",
        "<td>Total</td><td class=\"kwh\">14.400</td><td></td><td class=\"cost\">10.05 EUR</td>",
    ] {
        assert!(dom.contains(row), "{row} not in {dom}");
    }
    assert!(dom.contains("<strong id=\"max-power\">3500 VA</strong> at 07:01:00"));
    assert!(dom.contains("<strong id=\"injected\">0.300 kWh</strong>"));

    let (index, _) = chromium(&dir.join("pages/index.html"), &["--dump-dom"]);
    assert!(index.find("2021-02-20.html").unwrap() < index.find("2021-02-19.html").unwrap());
    assert!(
        index.contains("<td class=\"cost\">10.05 EUR</td>"),
        "{index}"
    );
}

/// A simulated EJP day (notice, peak, solar injection), one line every 80 s, as the logger
/// writes it with its defaults: the page the README shows.
fn write_simulated_day(dir: &Path) -> PathBuf {
    use linkymon::logger::{Aggregator, State};
    use linkymon::meter::Meter;
    use linkymon::source::simulate::{SimConfig, Simulator};
    use linkymon::tic::Decoder;
    let tz = paris();
    let date = jiff::civil::date(2021, 2, 20);
    let midnight = linkymon::logger::day::midnight(date, &tz);
    let mut sim = Simulator::new(SimConfig {
        start: 0.0,
        ..SimConfig::default()
    })
    .unwrap();
    let mut decoder = Decoder::default();
    let mut meter = Meter::new(230);
    let mut aggregator = Aggregator::new(8, tz.clone());
    let mut text = String::new();
    for step in 0..86_400 / 10 {
        let t = f64::from(step) * 10.0;
        let bytes = sim.frame_at(t);
        let mut frames = Vec::new();
        decoder.push(&bytes, |f| frames.push(f));
        for frame in frames {
            let reading = meter.read(&frame, t);
            let at = midnight
                .checked_add(jiff::SignedDuration::from_secs(10 * i64::from(step)))
                .unwrap();
            let ts = at
                .to_zoned_datetime(tz.clone())
                .strftime("%Y-%m-%dT%H:%M:%S%:z")
                .to_string();
            let state = State::parse(&reading.to_state_json(Some(&ts), None)).unwrap();
            for filed in aggregator.push(state) {
                assert_eq!(filed.date, date);
                text.push_str(&format!("{}\n", filed.line));
            }
        }
    }
    let path = dir.join("2021-02-20.log");
    std::fs::write(&path, text).unwrap();
    path
}

#[test]
fn a_simulated_day_page_renders_in_chromium_and_its_screenshot_is_in_the_docs() {
    let temp = tempfile::tempdir().unwrap();
    let dir = temp.path();
    let log = write_simulated_day(dir);
    graph(&graph_config(dir), &[log]);
    let page = dir.join("pages/2021-02-20.html");
    let (dom, _) = chromium(&page, &["--dump-dom"]);
    let drawn: u64 = attribute(&dom, "id=\"chart\"", "data-drawn")
        .parse()
        .unwrap_or(0);
    assert!(drawn > 10_000, "dygraphs painted {drawn} pixels");
    assert_eq!(attribute(&dom, "<body", "data-errors"), "0", "{dom}");

    let shot = dir.join("day.png");
    chromium(
        &page,
        &[
            "--window-size=1100,900",
            "--hide-scrollbars",
            &format!("--screenshot={}", shot.display()),
        ],
    );
    let png = std::fs::read(&shot).unwrap();
    assert!(
        png.starts_with(b"\x89PNG") && png.len() > 20_000,
        "{} bytes",
        png.len()
    );
    if std::env::var_os("LINKYMON_UPDATE_GOLDEN").is_some_and(|v| v == "1") {
        std::fs::create_dir_all(root().join("docs")).unwrap();
        std::fs::write(root().join("docs/logger-day.png"), &png).unwrap();
    }
}
