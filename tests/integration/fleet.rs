//! `logger.database` and `logger.share_group` (README "Fleets"), with a real mosquitto, a real
//! PostgreSQL and the fleet simulator: every message stored once, through a database outage, a
//! `kill -9` of the logger, and two loggers sharing the work.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::time::Duration;

use linkymon::fleet::{FleetConfig, FleetReport};
use tempfile::TempDir;

use crate::support::{Broker, Postgres, Running, Subscriber, wait_until, write_config};

/// The fleet's meters: `meters` of them, ids from 100000000000, `messages` each at `rate`/s.
fn fleet(port: u16, meters: usize, messages: u64, rate: f64) -> FleetConfig {
    FleetConfig {
        host: "127.0.0.1".into(),
        port,
        base_topic: "linky".into(),
        meters,
        first_id: 100_000_000_000,
        rate,
        messages_per_meter: Some(messages),
        duration: Duration::from_secs(600),
        client_id: format!("fleet-{}", crate::support::free_port()),
    }
}

/// Runs the fleet to its end (every message acknowledged by the broker).
fn publish(config: FleetConfig) -> FleetReport {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(linkymon::fleet::run(config))
        .unwrap()
}

/// The same, in a thread of its own.
fn publish_in_background(config: FleetConfig) -> std::thread::JoinHandle<FleetReport> {
    std::thread::spawn(move || publish(config))
}

/// A logger's config: database only, `extra` more `logger:` keys.
fn logger_config(
    dir: &TempDir,
    name: &str,
    broker: &Broker,
    pg: &Postgres,
    extra: &str,
) -> PathBuf {
    let sub = dir.path().join(name);
    std::fs::create_dir_all(&sub).unwrap();
    write_config(
        &sub,
        broker.port,
        &format!(
            "logger:\n  files: false\n  database: {}\n  max_meters: 1000\n  client_id: {name}\n{extra}",
            pg.url()
        ),
    )
}

/// A broker, a database and one logger's config (not started); the directory holds the config.
fn one_logger() -> (Broker, Postgres, TempDir, PathBuf) {
    let broker = Broker::start();
    let pg = Postgres::start();
    let dir = tempfile::tempdir().unwrap();
    let config = logger_config(&dir, "logger-a", &broker, &pg, "");
    (broker, pg, dir, config)
}

/// Stops the database once some rows are in, and waits for the logger to say so.
fn stop_database_mid_stream(pg: &Postgres, logger: &Running, rows: i64) {
    wait_until(Duration::from_secs(10), "rows stored", || count(pg) > rows);
    pg.stop();
    logger.wait_stderr("cannot use the database", Duration::from_secs(10));
}

/// Starts a logger and waits until its database is ready.
fn start_logger(config: &Path) -> Running {
    let logger = Running::logger(config);
    logger.wait_stderr("connected to the database", Duration::from_secs(10));
    logger
}

fn count(pg: &Postgres) -> i64 {
    pg.number("SELECT count(*) FROM readings")
}

/// Waits until `readings` holds `n` rows, then checks it is one per (meter, seq), every seq
/// from 1 to `per_meter` of each meter.
fn assert_all_stored_once(pg: &Postgres, meters: usize, per_meter: u64) {
    let n = meters as i64 * per_meter as i64;
    wait_until(Duration::from_secs(60), &format!("{n} rows stored"), || {
        count(pg) >= n
    });
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(count(pg), n, "a message was stored twice");
    let rows = pg.query(
        "SELECT meter, count(*), count(DISTINCT seq), min(seq), max(seq) FROM readings GROUP BY meter",
    );
    assert_eq!(rows.len(), meters, "{rows:?}");
    for row in rows {
        let per = per_meter.to_string();
        assert_eq!(
            row[1..],
            [
                Some(per.clone()),
                Some(per.clone()),
                Some("1".into()),
                Some(per)
            ],
            "{row:?}"
        );
    }
}

#[test]
fn rows_match_the_messages_one_per_seq() {
    let (broker, pg, _dir, config) = one_logger();
    let logger = start_logger(&config);
    let sub = Subscriber::start(broker.port, &["linky/+/state"]);
    publish(fleet(broker.port, 5, 20, 20.0));
    assert_all_stored_once(&pg, 5, 20);

    // Each row says what its message said.
    wait_until(Duration::from_secs(5), "mosquitto_sub saw 100", || {
        sub.lines().len() >= 100
    });
    let sent: BTreeMap<(String, i64), serde_json::Value> = sub
        .lines()
        .iter()
        .map(|line| {
            let (_, payload) = line.split_once(' ').unwrap();
            let v: serde_json::Value = serde_json::from_str(payload).unwrap();
            let key = (
                v["meter"].as_str().unwrap().to_owned(),
                v["seq"].as_i64().unwrap(),
            );
            (key, v)
        })
        .collect();
    let rows = pg.query(
        "SELECT meter, seq, to_json(ts)#>>'{}', apparent_power_va, current_a, injection_w, \
         energy_hn_wh, energy_pm_wh, energy_import_wh, period, data->'values'->>'ADCO' FROM readings",
    );
    assert_eq!(rows.len(), sent.len());
    for row in rows {
        let text = |i: usize| row[i].clone().unwrap_or_default();
        let key = (text(0), text(1).parse::<i64>().unwrap());
        let message = &sent[&key];
        let values = &message["values"];
        let ts: jiff::Timestamp = message["ts"].as_str().unwrap().parse().unwrap();
        assert_eq!(text(2).parse::<jiff::Timestamp>().unwrap(), ts, "{row:?}");
        assert_eq!(text(3), values["PAPP"].to_string(), "{row:?}");
        assert_eq!(text(4), values["IINST"].to_string(), "{row:?}");
        assert_eq!(
            text(5),
            message["derived"]["injection_w"].to_string(),
            "{row:?}"
        );
        assert_eq!(text(6), values["EJPHN"].to_string(), "{row:?}");
        assert_eq!(text(7), values["EJPHPM"].to_string(), "{row:?}");
        let total = values["EJPHN"].as_i64().unwrap() + values["EJPHPM"].as_i64().unwrap();
        assert_eq!(text(8), total.to_string(), "{row:?}");
        assert_eq!(
            Some(text(9).as_str()),
            message["derived"]["period"].as_str()
        );
        assert_eq!(text(10), key.0);
    }

    // A message delivered again (a daemon's spool replayed) is not stored again.
    let first = sub.lines()[0].clone();
    let (topic, payload) = first.split_once(' ').unwrap();
    crate::support::mosquitto_pub(broker.port, topic, payload);
    std::thread::sleep(Duration::from_secs(1));
    assert_eq!(count(&pg), 100);

    // The views: one day, the EJP periods the simulated meters counted.
    let days = pg.number("SELECT count(DISTINCT day) FROM energy_daily");
    assert!((1..=2).contains(&days), "{days}");
    let periods: BTreeSet<String> = pg
        .query("SELECT DISTINCT period FROM energy_monthly")
        .into_iter()
        .filter_map(|r| r[0].clone())
        .collect();
    assert!(
        periods.is_subset(&["hn".into(), "pm".into()].into()),
        "{periods:?}"
    );
    let said = logger.stop();
    assert!(
        said.iter()
            .any(|l| l.contains("100 readings stored in the database by this run")),
        "{said:#?}"
    );
}

#[test]
fn a_database_stopped_for_10_s_mid_stream_loses_nothing_and_stores_nothing_twice() {
    let (broker, pg, _dir, config) = one_logger();
    let mut logger = start_logger(&config);
    // 5 meters × 2/s for 20 s.
    let fleet = publish_in_background(fleet(broker.port, 5, 40, 2.0));
    stop_database_mid_stream(&pg, &logger, 10);
    std::thread::sleep(Duration::from_secs(10));
    assert!(logger.is_running(), "the logger stopped with the database");
    pg.start_again();
    logger.wait_stderr("the database is back", Duration::from_secs(15));
    fleet.join().unwrap();
    assert_all_stored_once(&pg, 5, 40);
    assert_eq!(
        logger.said("cannot use the database"),
        1,
        "{:#?}",
        logger.stderr()
    );
    logger.stop();
}

#[test]
fn a_logger_killed_with_kill_9_and_restarted_loses_nothing() {
    let (broker, pg, _dir, config) = one_logger();
    let mut logger = start_logger(&config);
    let fleet = publish_in_background(fleet(broker.port, 5, 30, 5.0));
    // Killed while the messages it received wait for the database: they were not
    // acknowledged, so the broker sends them again to the next run.
    stop_database_mid_stream(&pg, &logger, 20);
    std::thread::sleep(Duration::from_secs(1));
    logger.kill();
    pg.start_again();
    let logger = start_logger(&config);
    fleet.join().unwrap();
    assert_all_stored_once(&pg, 5, 30);
    logger.stop();
}

#[test]
fn two_loggers_in_one_share_group_store_each_message_once_and_share_the_work() {
    let broker = Broker::start();
    let pg = Postgres::start();
    let dir = tempfile::tempdir().unwrap();
    let group = "  share_group: fleet\n";
    let a = start_logger(&logger_config(&dir, "logger-a", &broker, &pg, group));
    let b = start_logger(&logger_config(&dir, "logger-b", &broker, &pg, group));
    publish(fleet(broker.port, 20, 10, 10.0));
    assert_all_stored_once(&pg, 20, 10);
    let stored = |said: Vec<String>| -> u64 {
        said.iter()
            .find_map(|l| {
                let (_, tail) = l.split_once("INFO")?;
                tail.trim_start_matches(|c: char| !c.is_ascii_digit())
                    .split_once(" readings stored in the database by this run")
                    .and_then(|(n, _)| n.parse().ok())
            })
            .unwrap_or_else(|| panic!("no count said: {said:#?}"))
    };
    let (a, b) = (stored(a.stop()), stored(b.stop()));
    assert_eq!(a + b, 200, "a {a}, b {b}");
    assert!(a > 0 && b > 0, "one logger did all the work: a {a}, b {b}");
}

#[test]
fn a_share_group_with_file_logs_is_refused_with_exit_2() {
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(
        dir.path(),
        1883,
        "logger:\n  database: postgres://u@127.0.0.1/linky\n  share_group: fleet\n",
    );
    let out = crate::support::linkymon(&config, &["logger"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(stderr.trim().lines().count(), 1, "{stderr}");
    assert!(stderr.contains("logger.files: false"), "{stderr}");
}

#[test]
fn a_database_down_at_start_keeps_the_daily_logs_going_and_loses_nothing() {
    let broker = Broker::start();
    let pg = Postgres::start();
    pg.stop();
    let dir = tempfile::tempdir().unwrap();
    let logs = dir.path().join("logs");
    let config = write_config(
        dir.path(),
        broker.port,
        &format!(
            "logger:\n  dir: {}\n  pages_dir: {}\n  frames_per_line: 1\n  database: {}\n  \
             max_meters: 10\n",
            logs.display(),
            dir.path().join("pages").display(),
            pg.url()
        ),
    );
    let logger = Running::logger(&config);
    logger.wait_stderr("cannot use the database", Duration::from_secs(10));
    let fleet = publish_in_background(fleet(broker.port, 1, 20, 10.0));
    // The first meter's lines go to the top of `logs` while the database is down.
    let lines = crate::support::wait_log_lines(&logs, 5, Duration::from_secs(10));
    assert!(lines.len() >= 5, "{lines:?}");
    pg.start_again();
    logger.wait_stderr("the database is back", Duration::from_secs(15));
    fleet.join().unwrap();
    assert_all_stored_once(&pg, 1, 20);
    logger.stop();
}
