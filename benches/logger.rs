//! The sustained rate of `linkymon logger`: N `state` messages published to a real mosquitto
//! as fast as `mosquitto_pub -l` sends them, measured until the logger has filed them all.
//!
//! `cargo bench --bench logger` prints the lines per second the logger filed and its CPU time
//! per line, at `frames_per_line: 1` (one line per state, the heaviest setting) and at the
//! default 8. `BENCH_N=…` sets the number of states (default 20,000); `BENCH_BIN=path`
//! measures another build. Needs mosquitto and mosquitto-clients (`./scripts/test.sh`). Not
//! a test: nothing is asserted.
//!
//! Then a long day: [`LONG_DAY`] states 1 s apart from local midnight (a day of frames at one
//! line each), then [`PACED`] more at 200 a second, during which `today` goes out every
//! second: the CPU per line of that paced part is what a day's length costs each line.

#[path = "../tests/integration/support/mod.rs"]
#[allow(dead_code, unused_imports)]
mod support;

use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use jiff::{SignedDuration, Timestamp};
use support::{Broker, Running, cpu_seconds, write_config};

const METER: &str = "021728123456";

/// The long day's states before the paced part: about 11 h of 1-s lines.
const LONG_DAY: u64 = 40_000;

/// The paced part of the long day, sent at 200 states a second.
const PACED: u64 = 2_000;

/// States 10 s apart, ending now, their index rising 2 Wh each: one line of JSON each.
fn states(n: u64) -> Vec<String> {
    let start = Timestamp::now() - SignedDuration::from_secs(10 * n as i64);
    (0..n).map(|i| state(start, 10, i)).collect()
}

/// State number `i` of a series `step_s` seconds apart from `start`, its index rising 2 Wh
/// each.
fn state(start: Timestamp, step_s: i64, i: u64) -> String {
    let ts = start + SignedDuration::from_secs(step_s * i as i64);
    format!(
        r#"{{"ts":"{ts}","meter":"{METER}","mode":"historic","seq":{i},"values":{{"ADCO":"{METER}","OPTARIF":"EJP.","ISOUSC":45,"EJPHN":{},"EJPHPM":80072,"PTEC":"HN..","IINST":3,"PAPP":700}},"derived":{{"injection_w":0,"consumption_va":700,"period":"HN"}}}}"#,
        688_322 + 2 * i
    )
}

/// A logger filing into `dir` from `broker`, connected.
fn start_logger(broker: &Broker, dir: &Path, frames_per_line: u64) -> Running {
    let config = write_config(
        dir,
        broker.port,
        &format!(
            "logger:\n  dir: {}\n  pages_dir: {}\n  frames_per_line: {frames_per_line}\n  \
             timezone: Europe/Paris\nprices:\n  sets:\n    - {{from: 2000-01-01, kwh: {{hn: 0.15}}}}\n",
            dir.join("logs").display(),
            dir.join("pages").display()
        ),
    );
    let mut command = match std::env::var("BENCH_BIN") {
        Ok(bin) => Command::new(bin),
        Err(_) => support::command(),
    };
    command.args(["logger", "-c"]).arg(&config);
    let logger = Running::spawn(&mut command);
    logger.wait_stderr("connected to the MQTT broker", Duration::from_secs(10));
    std::thread::sleep(Duration::from_millis(300));
    logger
}

/// `mosquitto_pub -l` on the meter's `state` topic, at QoS 1.
fn publisher(broker: &Broker) -> std::process::Child {
    Command::new("mosquitto_pub")
        .args(["-h", "127.0.0.1", "-p", &broker.port.to_string()])
        .args(["-q", "1", "-l", "-t", &format!("linky/{METER}/state")])
        .stdin(Stdio::piped())
        .spawn()
        .unwrap()
}

/// Waits (at most 10 min) until the logs hold `expected` lines; how many they hold.
fn wait_filed(logs: &Path, expected: usize) -> usize {
    let deadline = Instant::now() + Duration::from_secs(600);
    let mut filed = 0;
    while Instant::now() < deadline {
        filed = count_lines(logs);
        if filed >= expected {
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    filed
}

/// The long day (see the module's doc), at one line per state.
fn long_day() {
    let broker = Broker::start_with(|_| {
        "allow_anonymous true\npersistence false\nmax_queued_messages 0\n".into()
    });
    let temp = tempfile::tempdir().unwrap();
    let dir = temp.path();
    let logger = start_logger(&broker, dir, 1);
    let pid = logger.child.id();
    let tz = jiff::tz::TimeZone::get("Europe/Paris").unwrap();
    let today = tz.to_datetime(Timestamp::now()).date();
    let midnight = tz
        .to_ambiguous_timestamp(today.to_datetime(jiff::civil::Time::midnight()))
        .compatible()
        .unwrap();
    let mut publisher = publisher(&broker);
    let mut stdin = publisher.stdin.take().unwrap();
    for i in 0..LONG_DAY {
        writeln!(stdin, "{}", state(midnight, 1, i)).unwrap();
    }
    stdin.flush().unwrap();
    wait_filed(&dir.join("logs"), LONG_DAY as usize);
    let cpu0 = cpu_seconds(pid);
    let t0 = Instant::now();
    for i in LONG_DAY..LONG_DAY + PACED {
        writeln!(stdin, "{}", state(midnight, 1, i)).unwrap();
        if i % 20 == 19 {
            stdin.flush().unwrap();
            std::thread::sleep(Duration::from_millis(100));
        }
    }
    drop(stdin);
    publisher.wait().unwrap();
    let filed = wait_filed(&dir.join("logs"), (LONG_DAY + PACED) as usize);
    let cpu = cpu_seconds(pid) - cpu0;
    println!(
        "a long day: {LONG_DAY} lines, then {PACED} at 200/s: {} filed in {:.2} s; logger CPU \
         {:.3} s, {:.1} µs per line",
        filed - LONG_DAY as usize,
        t0.elapsed().as_secs_f64(),
        cpu,
        cpu * 1e6 / PACED as f64,
    );
    logger.stop();
}

fn run(n: u64, frames_per_line: u64) {
    let broker = Broker::start_with(|_| {
        "allow_anonymous true\npersistence false\nmax_queued_messages 0\n".into()
    });
    let temp = tempfile::tempdir().unwrap();
    let dir = temp.path();
    let logs = dir.join("logs");
    let logger = start_logger(&broker, dir, frames_per_line);
    let pid = logger.child.id();
    let payloads = states(n);
    let expected = (n / frames_per_line) as usize;
    let cpu0 = cpu_seconds(pid);
    let t0 = Instant::now();
    let mut publisher = publisher(&broker);
    let mut stdin = publisher.stdin.take().unwrap();
    for p in &payloads {
        writeln!(stdin, "{p}").unwrap();
    }
    drop(stdin);
    publisher.wait().unwrap();
    let sent = t0.elapsed();
    let filed = wait_filed(&logs, expected);
    let took = t0.elapsed();
    let cpu = cpu_seconds(pid) - cpu0;
    println!(
        "frames_per_line {frames_per_line}: {n} states sent in {:.2} s; {filed}/{expected} lines \
         filed in {:.2} s: {:.0} states/s, {:.0} lines/s; logger CPU {:.2} s, {:.1} µs per \
         state, {:.1} µs per line",
        sent.as_secs_f64(),
        took.as_secs_f64(),
        n as f64 / took.as_secs_f64(),
        filed as f64 / took.as_secs_f64(),
        cpu,
        cpu * 1e6 / n as f64,
        cpu * 1e6 / filed.max(1) as f64,
    );
    logger.stop();
}

/// Lines in the daily logs, counted by their newlines (cheap enough to poll).
fn count_lines(logs: &Path) -> usize {
    support::daily_logs(logs)
        .iter()
        .map(|p| {
            std::fs::read(p)
                .map(|b| b.iter().filter(|&&c| c == b'\n').count())
                .unwrap_or(0)
        })
        .sum()
}

fn main() {
    let n: u64 = std::env::var("BENCH_N")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(20_000);
    for frames_per_line in [1, 8] {
        run(n, frames_per_line);
    }
    long_day();
}
