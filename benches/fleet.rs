//! Fleet scale (issue 20, README "Fleets"): `linkymon logger` storing a simulated fleet's
//! `state` messages into PostgreSQL, with mosquitto, PostgreSQL, the fleet simulator and the
//! logger(s) all on this machine.
//!
//! `cargo bench --bench fleet` prints, for 100, 1,000 and 10,000 meters at one message per
//! second each (`FLEET_SIZES=100,1000` and `FLEET_SECONDS=30` change them): the messages
//! offered and stored per second, the logger's CPU per message and share of a core, the lag
//! from a message's `ts` to its row's `stored_at` (the start of the transaction that stored
//! it) p50 and p99, and how long the backlog took to drain after the fleet stopped. Then the
//! same for two loggers in one share group at the largest size (`FLEET_RATE=2` offers two
//! messages per second per meter, to find the limit).
//!
//! PostgreSQL runs durable (fsync on, synchronous commit), as a real one. Needs mosquitto and
//! PostgreSQL (`./scripts/test.sh` installs them). Not a test: nothing is asserted.

#[path = "../tests/integration/support/mod.rs"]
#[allow(dead_code, unused_imports)]
mod support;

use std::path::PathBuf;
use std::time::{Duration, Instant};

use linkymon::fleet::FleetConfig;
use support::{Broker, Postgres, Running, cpu_seconds, write_config};

fn env_or<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// A logger's config: database only, `client_id` `name`, in `share_group` if given.
fn config(
    dir: &tempfile::TempDir,
    name: &str,
    broker: &Broker,
    pg: &Postgres,
    group: Option<&str>,
) -> PathBuf {
    let sub = dir.path().join(name);
    std::fs::create_dir_all(&sub).unwrap();
    let group = group.map_or(String::new(), |g| format!("  share_group: {g}\n"));
    write_config(
        &sub,
        broker.port,
        &format!(
            "  discovery: false\nlogger:\n  files: false\n  database: {}\n  max_meters: 100000\n  \
             client_id: {name}\n{group}",
            pg.url()
        ),
    )
}

struct Figures {
    offered: u64,
    stored: i64,
    seconds: f64,
    cpu: f64,
    p50: f64,
    p99: f64,
    drain: f64,
}

/// Runs the fleet for `seconds` against the loggers already running, and measures.
fn measure(
    broker: &Broker,
    pg: &Postgres,
    loggers: &[&Running],
    meters: usize,
    rate: f64,
    seconds: u64,
) -> Figures {
    pg.query("TRUNCATE readings");
    let cpu_before: f64 = loggers.iter().map(|l| cpu_seconds(l.child.id())).sum();
    let fleet = FleetConfig {
        host: "127.0.0.1".into(),
        port: broker.port,
        base_topic: "linky".into(),
        meters,
        first_id: 100_000_000_000,
        rate,
        messages_per_meter: None,
        duration: Duration::from_secs(seconds),
        client_id: format!("fleet-{meters}"),
    };
    let start = Instant::now();
    let report = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(linkymon::fleet::run(fleet))
        .unwrap();
    let published = start.elapsed().as_secs_f64();
    let drain_start = Instant::now();
    let mut last = -1;
    loop {
        let n = pg.number("SELECT count(*) FROM readings");
        if n >= report.acknowledged as i64
            || (n == last && drain_start.elapsed() > Duration::from_secs(30))
        {
            break;
        }
        last = n;
        std::thread::sleep(Duration::from_millis(200));
    }
    let drain = drain_start.elapsed().as_secs_f64();
    let cpu: f64 = loggers
        .iter()
        .map(|l| cpu_seconds(l.child.id()))
        .sum::<f64>()
        - cpu_before;
    let lag = pg.query(
        "SELECT count(*), percentile_cont(0.5) WITHIN GROUP (ORDER BY extract(epoch FROM stored_at - ts)), \
         percentile_cont(0.99) WITHIN GROUP (ORDER BY extract(epoch FROM stored_at - ts)) FROM readings",
    );
    let num = |i: usize| -> f64 {
        lag[0][i]
            .as_deref()
            .and_then(|v| v.parse().ok())
            .unwrap_or(f64::NAN)
    };
    Figures {
        offered: report.acknowledged,
        stored: num(0) as i64,
        seconds: published,
        cpu,
        p50: num(1),
        p99: num(2),
        drain,
    }
}

fn print(label: &str, f: &Figures) {
    println!(
        "{label}: offered {:.0} msg/s, stored {} of {} ({:.0} msg/s over the run + drain), \
         logger CPU {:.1} µs/msg ({:.0} % of a core), lag ts→stored p50 {:.3} s p99 {:.3} s, \
         backlog drained in {:.1} s",
        f.offered as f64 / f.seconds,
        f.stored,
        f.offered,
        f.stored as f64 / (f.seconds + f.drain),
        f.cpu * 1e6 / f.stored.max(1) as f64,
        100.0 * f.cpu / (f.seconds + f.drain),
        f.p50,
        f.p99,
        f.drain
    );
}

fn main() {
    if std::env::args().any(|a| a == "--list") {
        return;
    }
    let sizes: Vec<usize> = std::env::var("FLEET_SIZES")
        .unwrap_or_else(|_| "100,1000,10000".into())
        .split(',')
        .filter_map(|s| s.trim().parse().ok())
        .collect();
    let seconds: u64 = env_or("FLEET_SECONDS", 30);
    let rate: f64 = env_or("FLEET_RATE", 1.0);
    // No cap on a client's queue or its messages in flight: the logger's Receive Maximum and
    // the database decide.
    let broker = Broker::start_with(|_| {
        "allow_anonymous true\npersistence false\nmax_queued_messages 0\nmax_inflight_messages 0\n"
            .into()
    });
    let pg = Postgres::start();
    let dir = tempfile::tempdir().unwrap();

    let one = Running::logger(&config(&dir, "logger-a", &broker, &pg, None));
    one.wait_stderr("connected to the database", Duration::from_secs(10));
    for &meters in &sizes {
        let f = measure(&broker, &pg, &[&one], meters, rate, seconds);
        print(&format!("one logger, {meters} meters × {rate}/s"), &f);
    }
    one.stop();

    let Some(&largest) = sizes.iter().max() else {
        return;
    };
    let a = Running::logger(&config(&dir, "share-a", &broker, &pg, Some("bench")));
    let b = Running::logger(&config(&dir, "share-b", &broker, &pg, Some("bench")));
    a.wait_stderr("connected to the database", Duration::from_secs(10));
    b.wait_stderr("connected to the database", Duration::from_secs(10));
    let f = measure(&broker, &pg, &[&a, &b], largest, rate, seconds);
    print(
        &format!("two loggers in a share group, {largest} meters × {rate}/s"),
        &f,
    );
    for (name, logger) in [("a", a), ("b", b)] {
        let said = logger.stop();
        if let Some(line) = said.iter().find(|l| l.contains("readings stored")) {
            println!(
                "logger {name}: {}",
                line.split("INFO").last().unwrap_or(line).trim()
            );
        }
    }
}
