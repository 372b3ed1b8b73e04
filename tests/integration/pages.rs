//! The month and year pages and the season's counters, with real parts: mosquitto and the
//! daemon on a replay for the `season` message, `linkymon graph` and a headless Chromium for
//! the pages.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use jiff::civil::{Date, date};
use linkymon::logger::season::{Colour, Kind, Season};
use serde_json::Value;

use crate::logger::{
    chromium, drawn_page, graph, graph_config, replay_config, screenshot_for_docs,
    write_hand_checked_logs,
};
use crate::support::{Broker, Running, SIM_ID, Subscriber, linkymon, mosquitto_pub_with};

/// A fixed-offset zone in which it is now about noon, so lines written now are well inside
/// their local day, past the hours that belong to the day before's tariff day.
fn zone_at_noon() -> String {
    let hour = i32::from(
        jiff::tz::TimeZone::UTC
            .to_datetime(jiff::Timestamp::now())
            .hour(),
    );
    let offset = 12 - hour; // -11..=12
    match offset {
        0 => "Etc/GMT".to_owned(),
        o => format!("Etc/GMT{:+}", -o), // the Etc zones' signs are the other way round
    }
}

/// The simulator's frames from 07:00 on an EJP day, peak hours (`PTEC PM..`), as a capture.
fn write_peak_capture(dir: &Path) -> PathBuf {
    use linkymon::source::simulate::{SimConfig, Simulator};
    let mut sim = Simulator::new(SimConfig::default()).unwrap(); // 06:00, every day an EJP day
    let mut bytes = Vec::new();
    for second in 0..12 {
        bytes.extend(sim.frame_at(3660.0 + f64::from(second)));
    }
    let path = dir.join("peak.tic");
    std::fs::write(&path, bytes).unwrap();
    path
}

#[test]
fn the_logger_publishes_the_season_after_a_replay_with_peak_hours_and_again_after_a_restart() {
    let broker = Broker::start();
    let temp = tempfile::tempdir().unwrap();
    let dir = temp.path();
    let capture = write_peak_capture(dir);
    let zone = zone_at_noon();
    let logger = format!(
        "logger:\n  dir: {}\n  pages_dir: {}\n  frames_per_line: 2\n  timezone: {zone}\n  \
         pages_interval: 1s\n",
        dir.join("logs").display(),
        dir.join("pages").display()
    );
    let config = replay_config(dir, broker.port, &capture, &logger);
    let season_topic = format!("linky/{SIM_ID}/season");
    let sub = Subscriber::start(broker.port, &[&season_topic, "homeassistant/#"]);
    let logger = Running::logger(&config);
    let status = linkymon(&config, &["run"])
        .stderr(Stdio::null())
        .status()
        .unwrap();
    assert!(status.success(), "{status}");
    let today = jiff::tz::TimeZone::get(&zone)
        .unwrap()
        .to_datetime(jiff::Timestamp::now())
        .date();
    let name = Season::of(Kind::Ejp, today).name();
    let expected = format!(r#"{season_topic} {{"season":"{name}","ejp":{{"used":1,"left":21}}}}"#);
    sub.wait_for("the season", Duration::from_secs(10), |l| l == expected);
    let used = sub.wait_for("the EJP days' entity", Duration::from_secs(5), |l| {
        l.starts_with(&format!(
            "homeassistant/sensor/linky_{SIM_ID}/season_ejp_used/config "
        ))
    });
    let used: Value = serde_json::from_str(used.split_once(' ').unwrap().1).unwrap();
    assert_eq!(used["state_topic"], season_topic);
    assert_eq!(used["value_template"], "{{ value_json.ejp.used }}");
    assert_eq!(used["unique_id"], format!("linky_{SIM_ID}_season_ejp_used"));
    assert_eq!(used["device"]["identifiers"][0], format!("linky_{SIM_ID}"));
    sub.wait_for("the EJP days left's entity", Duration::from_secs(5), |l| {
        l.starts_with(&format!(
            "homeassistant/sensor/linky_{SIM_ID}/season_ejp_left/config "
        ))
    });
    std::thread::sleep(Duration::from_millis(1500)); // one pages_interval
    logger.stop();

    // Cleared on the broker, the counters come back from the logs when the logger starts.
    let cleared = mosquitto_pub_with(broker.port, &["-t", &season_topic, "-r", "-n"]);
    assert!(cleared.success());
    let after = Subscriber::start(broker.port, &[&season_topic]);
    let logger = Running::logger(&config);
    after.wait_for("the season after a restart", Duration::from_secs(10), |l| {
        l == expected
    });
    logger.stop();
    let index = std::fs::read_to_string(dir.join("pages/index.html")).unwrap();
    assert!(
        index.contains(&format!(
            "<div id=\"season\">Season {name}: EJP days: <strong class=\"ejp-used\">1</strong> used"
        )),
        "{index}"
    );
}

/// The DOM of a page in Chromium, its chart drawn with its legend, and nothing gone wrong.
fn rendered(page: &Path) -> String {
    let dom = drawn_page(page, 1000);
    assert!(
        dom.contains("<p id=\"legend\" class=\"note\"><span"),
        "dygraphs wrote its legend"
    );
    dom
}

#[test]
fn month_and_year_pages_draw_their_charts_in_chromium_with_the_hand_checked_totals() {
    let temp = tempfile::tempdir().unwrap();
    let dir = temp.path();
    let logs = write_hand_checked_logs(dir);
    graph(&graph_config(dir), &logs);

    // 19 February: one line, no energy, the subscription; 20 February: the hand-checked day.
    let month = rendered(&dir.join("pages/2021-02.html"));
    for row in [
        "<td>HN</td><td class=\"kwh\">2.100</td><td class=\"cost\">0.29 EUR</td>",
        "<td>PM</td><td class=\"kwh\">12.300</td><td class=\"cost\">9.25 EUR</td>",
        "<td>Subscription (2 days)</td><td></td><td class=\"cost\">1.00 EUR</td>",
        "<td>Total</td><td class=\"kwh\">14.400</td><td class=\"cost\">10.55 EUR</td>",
        "EJP days this month: <strong class=\"ejp-days\">1</strong> (20)",
        "href=\"2021.html\">2021</a>",
    ] {
        assert!(month.contains(row), "{row} not in {month}");
    }
    let year = rendered(&dir.join("pages/2021.html"));
    for row in [
        "<td>Total</td><td class=\"kwh\">14.400</td><td class=\"cost\">10.55 EUR</td>",
        "<li data-season=\"2020-2021\">Season 2020-2021: EJP days: <strong class=\"ejp-used\">1</strong> used, <strong class=\"ejp-left\">21</strong> left</li>",
        "<a href=\"2021-02.html\">February 2021</a></td><td>2</td>",
    ] {
        assert!(year.contains(row), "{row} not in {year}");
    }
    let (index, _) = chromium(&dir.join("pages/index.html"), &["--dump-dom"]);
    assert!(index.contains("<a href=\"2021-02.html\">February 2021</a>: <strong>14.400 kWh</strong>, 10.55 EUR (2 days)"), "{index}");
    let day = std::fs::read_to_string(dir.join("pages/2021-02-20.html")).unwrap();
    assert!(day.contains("href=\"2021-02.html\">February 2021</a>"));
}

/// The colour of a Tempo day in the simulated year: red on some winter weekdays, white on
/// some days from November to March, blue otherwise.
fn tempo_colour(day: Date) -> Colour {
    let weekday = day.weekday().to_monday_one_offset();
    let winter = [12, 1, 2].contains(&day.month());
    if winter && weekday <= 5 && day.day() % 4 == 1 {
        Colour::Red
    } else if [11, 12, 1, 2, 3].contains(&day.month()) && day.day() % 3 == 2 {
        Colour::White
    } else {
        Colour::Blue
    }
}

/// A simulated year of a Tempo household (heating in winter, evening peaks, red days spared),
/// a line every 10 minutes, as `linkymon logger` writes them.
fn write_tempo_year(dir: &Path, year: i16) -> Vec<PathBuf> {
    let mut rng = fastrand::Rng::with_seed(19);
    let periods = ["HCJB", "HPJB", "HCJW", "HPJW", "HCJR", "HPJR"];
    let mut index = [
        5_000_000.0_f64,
        9_000_000.0,
        400_000.0,
        700_000.0,
        150_000.0,
        200_000.0,
    ];
    std::fs::create_dir_all(dir).unwrap();
    let mut logs = Vec::new();
    let mut day = date(year, 1, 1);
    while day.year() == year {
        let heating = match day.month() {
            12 | 1 | 2 => 1400.0,
            11 | 3 => 800.0,
            4 | 10 => 350.0,
            _ => 100.0,
        };
        let mut text = String::new();
        for step in 0..144 {
            let s = step * 600 + 300;
            let h = f64::from(s) / 3600.0;
            // The tariff day runs from 06:00: before, the day before's colour.
            let colour = if h < 6.0 {
                tempo_colour(day.yesterday().unwrap())
            } else {
                tempo_colour(day)
            };
            let peak = (6.0..22.0).contains(&h);
            let i = colour as usize * 2 + usize::from(peak);
            let spared = if colour == Colour::Red && peak {
                0.5
            } else {
                1.0
            };
            let shape = 250.0
                + 900.0 * (-(h - 7.5).powi(2)).exp()
                + 1600.0 * (-(h - 19.5).powi(2) / 2.0).exp();
            let w = (heating + shape) * spared * (0.85 + 0.3 * rng.f64());
            index[i] += w / 6.0;
            let _ = write!(
                text,
                "{:04}/{:02}/{:02} {:02}:{:02}:{:02}\tDATA\tPeriode={}",
                day.year(),
                day.month(),
                day.day(),
                s / 3600,
                s / 60 % 60,
                s % 60,
                periods[i]
            );
            for (p, v) in periods.iter().zip(index) {
                let _ = write!(text, ", Index{p}={:09}", v as u64);
            }
            let _ = writeln!(
                text,
                ", PuissConsommee={:05}, IConsommee={:03}",
                w as u32,
                (w / 230.0).ceil() as u32
            );
        }
        let path = dir.join(format!("{day}.log"));
        std::fs::write(&path, text).unwrap();
        logs.push(path);
        day = day.tomorrow().unwrap();
    }
    logs
}

#[test]
fn a_simulated_tempo_year_gives_the_month_and_year_pages_of_the_docs() {
    let temp = tempfile::tempdir().unwrap();
    let dir = temp.path();
    let logs = write_tempo_year(&dir.join("logs"), 2026);
    let config = dir.join("config.yaml");
    std::fs::write(
        &config,
        format!(
            "logger:\n  pages_dir: {}\nprices:\n  sets:\n    - from: 2025-02-01\n      \
             kwh: {{hcjb: 0.1296, hpjb: 0.1609, hcjw: 0.1486, hpjw: 0.1894, hcjr: 0.1568, \
             hpjr: 0.7562}}\n      subscription_per_day: 0.54\n",
            dir.join("pages").display()
        ),
    )
    .unwrap();
    let out = graph(&config, &logs);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("365 day pages, 13 month and year pages"),
        "{stderr}"
    );

    // The counters the generator's calendar gives, from 1 September.
    let season_days = |colour| {
        let mut d = date(2026, 9, 1);
        let mut n = 0;
        while d.year() == 2026 {
            n += u32::from(tempo_colour(d) == colour);
            d = d.tomorrow().unwrap();
        }
        n
    };
    let (red, white) = (season_days(Colour::Red), season_days(Colour::White));
    let month = rendered(&dir.join("pages/2026-01.html"));
    assert!(
        month.contains("Tempo days this month: red days: <strong class=\"red-days\">"),
        "{month}"
    );
    let year = rendered(&dir.join("pages/2026.html"));
    let counters = format!(
        "<li data-season=\"2026-2027\">Season 2026-2027: Tempo red days: <strong class=\"red-used\">{red}</strong> used, \
         <strong class=\"red-left\">{}</strong> left; white days: <strong class=\"white-used\">{white}</strong> used, \
         <strong class=\"white-left\">{}</strong> left</li>",
        22 - red,
        43 - white
    );
    assert!(year.contains(&counters), "{counters} not in {year}");
    assert!(
        year.contains("data-season=\"2025-2026\""),
        "the season the year ends"
    );

    screenshot_for_docs(&dir.join("pages/2026-01.html"), 1000, "month-page.png");
    screenshot_for_docs(&dir.join("pages/2026.html"), 1000, "year-page.png");
}
