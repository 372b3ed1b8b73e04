//! The sustained rate of `linkymon logger`: N `state` messages published to a real mosquitto
//! as fast as `mosquitto_pub -l` sends them, measured until the logger has filed them all.
//!
//! `cargo bench --bench logger` prints the lines per second the logger filed and its CPU time
//! per line, at `frames_per_line: 1` (one line per state, the heaviest setting) and at the
//! default 8. `BENCH_N=…` sets the number of states (default 20,000); `BENCH_BIN=path`
//! measures another build. Needs mosquitto and mosquitto-clients (`./scripts/test.sh`). Not
//! a test: nothing is asserted.

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

/// States 10 s apart, ending now, their index rising 2 Wh each: one line of JSON each.
fn states(n: u64) -> Vec<String> {
    let start = Timestamp::now() - SignedDuration::from_secs(10 * n as i64);
    (0..n)
        .map(|i| {
            let ts = start + SignedDuration::from_secs(10 * i as i64);
            format!(
                r#"{{"ts":"{ts}","meter":"{METER}","mode":"historic","seq":{i},"values":{{"ADCO":"{METER}","OPTARIF":"EJP.","ISOUSC":45,"EJPHN":{},"EJPHPM":80072,"PTEC":"HN..","IINST":3,"PAPP":700}},"derived":{{"injection_w":0,"consumption_va":700,"period":"HN"}}}}"#,
                688_322 + 2 * i
            )
        })
        .collect()
}

fn run(n: u64, frames_per_line: u64) {
    let broker = Broker::start_with(|_| {
        "allow_anonymous true\npersistence false\nmax_queued_messages 0\n".into()
    });
    let temp = tempfile::tempdir().unwrap();
    let dir = temp.path();
    let logs = dir.join("logs");
    let config = write_config(
        dir,
        broker.port,
        &format!(
            "logger:\n  dir: {}\n  pages_dir: {}\n  frames_per_line: {frames_per_line}\n  \
             timezone: Europe/Paris\nprices:\n  sets:\n    - {{from: 2000-01-01, kwh: {{hn: 0.15}}}}\n",
            logs.display(),
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
    let pid = logger.child.id();
    let payloads = states(n);
    let expected = (n / frames_per_line) as usize;
    let cpu0 = cpu_seconds(pid);
    let t0 = Instant::now();
    let mut publisher = Command::new("mosquitto_pub")
        .args(["-h", "127.0.0.1", "-p", &broker.port.to_string()])
        .args(["-q", "1", "-l", "-t", &format!("linky/{METER}/state")])
        .stdin(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = publisher.stdin.take().unwrap();
    for p in &payloads {
        writeln!(stdin, "{p}").unwrap();
    }
    drop(stdin);
    publisher.wait().unwrap();
    let sent = t0.elapsed();
    let deadline = Instant::now() + Duration::from_secs(600);
    let mut filed = 0;
    while Instant::now() < deadline {
        filed = count_lines(&logs);
        if filed >= expected {
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
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
}
