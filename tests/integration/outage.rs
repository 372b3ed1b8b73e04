//! Outages with real parts: mosquitto stopped mid-stream and started again, the daemon
//! spooling `state` messages to disk meanwhile (and killed with SIGKILL in one test), and the
//! logger's daily log as the proof that every frame arrived, in order, at its own time; and
//! the logger's disk filled up (a small tmpfs) and freed again.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use jiff::tz::TimeZone;
use linkymon::logger::LogLine;

use crate::support::{Broker, Running, daily_log_lines, write_config};

/// Frames in the test capture: 80 at replay speed 10 last about 10 s.
const FRAMES: usize = 80;

/// A capture of `FRAMES` simulated historic EJP frames, ten simulated seconds apart (the
/// index rises within what the daemon's glitch guard accepts at replay speed 10); returns its
/// path and each frame's `(EJPHN, PAPP)` in order.
fn write_capture(dir: &Path) -> (PathBuf, Vec<(u64, u32)>) {
    write_capture_of(dir, FRAMES)
}

/// [`write_capture`] with `frames` frames.
fn write_capture_of(dir: &Path, frames: usize) -> (PathBuf, Vec<(u64, u32)>) {
    use linkymon::meter::Meter;
    use linkymon::source::simulate::{SimConfig, Simulator};
    use linkymon::tic::Decoder;
    let mut sim = Simulator::new(SimConfig::default()).unwrap();
    let (mut decoder, mut meter) = (Decoder::default(), Meter::new(230));
    let (mut bytes, mut indexes) = (Vec::new(), Vec::new());
    for i in 0..frames {
        let frame = sim.frame_at(10.0 * i as f64);
        decoder.push(&frame, |f| {
            let reading = meter.read(&f, 10.0 * i as f64);
            let json: serde_json::Value =
                serde_json::from_str(&reading.to_state_json(None, None)).unwrap();
            let v = &json["values"];
            indexes.push((
                v["EJPHN"].as_u64().unwrap(),
                v["PAPP"].as_u64().unwrap() as u32,
            ));
        });
        bytes.extend_from_slice(&frame);
    }
    assert_eq!(indexes.len(), frames);
    let path = dir.join("capture.tic");
    std::fs::write(&path, bytes).unwrap();
    (path, indexes)
}

/// The daemon on `capture` at `speed`, every `state` published, and a logger writing one
/// line per frame to `logs`.
fn config(dir: &Path, port: u16, capture: &Path, speed: u32, logs: &Path) -> PathBuf {
    write_config(
        dir,
        port,
        &format!(
            "meter:\n  port: replay:{}\n  replay_speed: {speed}\n\
             publish:\n  interval: 0\n  backlog_rate: 0\n  drain_timeout: 5s\n\
             logger:\n  dir: {}\n  pages_dir: {}\n  frames_per_line: 1\n  timezone: Europe/Paris\n",
            capture.display(),
            logs.display(),
            dir.join("pages").display()
        ),
    )
}

/// The lines of every daily log in `dir`, parsed, in file order.
fn log_lines(dir: &Path) -> Vec<LogLine> {
    daily_log_lines(dir)
        .iter()
        .map(|l| l.parse::<LogLine>().unwrap())
        .collect()
}

/// Waits until the log holds `count` lines, then a moment more to catch any extra one.
fn wait_log(dir: &Path, count: usize, timeout: Duration) -> Vec<LogLine> {
    let deadline = Instant::now() + timeout;
    while log_lines(dir).len() < count && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    std::thread::sleep(Duration::from_millis(300));
    log_lines(dir)
}

/// Waits until the log stops growing for a second (the logger has caught up).
fn wait_log_settled(dir: &Path, timeout: Duration) -> Vec<LogLine> {
    let deadline = Instant::now() + timeout;
    let mut last = (0, Instant::now());
    loop {
        let count = log_lines(dir).len();
        if count != last.0 {
            last = (count, Instant::now());
        } else if count > 0 && last.1.elapsed() > Duration::from_secs(1) {
            return log_lines(dir);
        }
        assert!(Instant::now() < deadline, "the log kept growing: {count}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Each line's `(IndexHN, PuissConsommee)`, to compare with the capture's frames.
fn hn(lines: &[LogLine]) -> Vec<(u64, u32)> {
    lines
        .iter()
        .map(|l| (l.index("HN").unwrap(), l.consumed_va.unwrap()))
        .collect()
}

fn now_paris() -> jiff::civil::DateTime {
    TimeZone::get("Europe/Paris")
        .unwrap()
        .to_datetime(jiff::Timestamp::now())
}

#[test]
fn a_broker_outage_loses_no_frame_and_each_keeps_its_own_time() {
    let mut broker = Broker::start_persistent();
    let temp = tempfile::tempdir().unwrap();
    let dir = temp.path();
    let logs = dir.join("logs");
    let (capture, indexes) = write_capture(dir);
    let config = config(dir, broker.port, &capture, 10, &logs);
    let _logger = Running::logger(&config);
    let mut daemon = Running::start(&config, "run");
    wait_log(&logs, 15, Duration::from_secs(10));

    broker.stop_gracefully();
    let down_from = now_paris();
    std::thread::sleep(Duration::from_secs(3));
    assert!(daemon.is_running(), "the daemon must survive the outage");
    let down_to = now_paris();
    broker.restart();

    // The replay ends, the daemon empties its spool and stops by itself.
    let status = daemon.wait(Duration::from_secs(30));
    assert!(status.success(), "{status}");
    let lines = wait_log(&logs, FRAMES, Duration::from_secs(10));
    assert_eq!(hn(&lines), indexes, "every frame once, in order");
    assert!(lines.windows(2).all(|w| w[0].time <= w[1].time));
    // Frames read during the outage are filed at the time they were read, not delivered.
    let second = jiff::SignedDuration::from_secs(1);
    let during = lines
        .iter()
        .filter(|l| l.time >= down_from - second && l.time <= down_to + second)
        .count();
    assert!(during >= 15, "{during} lines from the outage's 3 s");
    assert_eq!(daemon.said("no connection to the MQTT broker"), 1);
    assert_eq!(daemon.said("connected to the MQTT broker"), 2);
}

#[test]
fn a_daemon_killed_during_an_outage_sends_its_spool_after_restart() {
    let mut broker = Broker::start_persistent();
    let temp = tempfile::tempdir().unwrap();
    let dir = temp.path();
    let logs = dir.join("logs");
    let (capture, indexes) = write_capture(dir);
    let config = config(dir, broker.port, &capture, 10, &logs);
    let _logger = Running::logger(&config);
    let mut first = Running::start(&config, "run");
    let before = wait_log(&logs, 10, Duration::from_secs(10)).len();

    broker.stop_gracefully();
    std::thread::sleep(Duration::from_secs(2));
    first.kill();
    let spooled: u64 = std::fs::read_dir(dir.join("spool"))
        .unwrap()
        .flatten()
        .filter(|e| e.path().extension().is_some_and(|x| x == "spool"))
        .map(|e| e.metadata().unwrap().len())
        .sum();
    assert!(spooled > 0, "the outage's frames are on disk");

    broker.restart();
    let mut second = Running::start(&config, "run");
    second.wait_stderr(
        "state messages from the last run wait in the spool",
        Duration::from_secs(5),
    );
    let status = second.wait(Duration::from_secs(30));
    assert!(status.success(), "{status}");

    // The first run's frames up to the kill, then the whole second run.
    let got = hn(&wait_log(
        &logs,
        before + 10 + FRAMES,
        Duration::from_secs(10),
    ));
    let first_run = got.len() - FRAMES;
    assert_eq!(
        &got[first_run..],
        &indexes[..],
        "the second run whole; all: {got:?}"
    );
    assert_eq!(
        &got[..first_run],
        &indexes[..first_run],
        "the first run: a prefix of the capture, without gap"
    );
    assert!(
        first_run >= before + 10,
        "{first_run} lines from the first run, {before} before the outage: the spool's are in"
    );
}

/// A tmpfs of `size` mounted at `path`, unmounted on drop: a disk that can be filled. Needs
/// root, which the tests have in CI (scripts/test.sh runs as root or through sudo).
struct SmallDisk(PathBuf);

impl SmallDisk {
    fn mount(path: PathBuf, size: &str) -> Self {
        std::fs::create_dir_all(&path).unwrap();
        let status = std::process::Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(&path)
            .status()
            .unwrap();
        assert!(status.success(), "mounting a tmpfs needs root");
        SmallDisk(path)
    }

    /// Writes a file until the disk is full.
    fn fill(&self) -> PathBuf {
        use std::io::Write;
        let path = self.0.join("filler");
        let mut file = std::fs::File::create(&path).unwrap();
        while file.write_all(&[0; 1024]).is_ok() {}
        path
    }
}

impl Drop for SmallDisk {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount")
            .arg("-l")
            .arg(&self.0)
            .status();
    }
}

#[test]
fn a_full_disk_holds_the_loggers_lines_back_and_loses_none_once_space_is_back() {
    let broker = Broker::start();
    let temp = tempfile::tempdir().unwrap();
    let dir = temp.path();
    let disk = SmallDisk::mount(dir.join("disk"), "64k");
    let logs = disk.0.join("logs");
    std::fs::create_dir_all(&logs).unwrap();
    let filler = disk.fill();
    let (capture, frames) = write_capture(dir);
    let config = config(dir, broker.port, &capture, 10, &logs);
    let logger = Running::logger(&config);
    let mut daemon = Running::start(&config, "run");
    logger.wait_stderr("cannot append to", Duration::from_secs(10));
    std::thread::sleep(Duration::from_secs(2));
    assert!(log_lines(&logs).is_empty());

    std::fs::remove_file(filler).unwrap();
    assert!(daemon.wait(Duration::from_secs(30)).success());
    let lines = wait_log(&logs, FRAMES, Duration::from_secs(10));
    assert_eq!(
        hn(&lines),
        frames,
        "every line, in order, none half written"
    );
    let said = logger.stderr().join("\n");
    assert_eq!(logger.said("cannot append to"), 1, "said once: {said}");
    assert_eq!(logger.said("INFO writing to"), 1, "{said}");
}

#[test]
fn a_sigterm_in_the_middle_of_a_spool_flush_loses_nothing() {
    const N: usize = 1500;
    let mut broker = Broker::start_persistent();
    let temp = tempfile::tempdir().unwrap();
    let dir = temp.path();
    let (capture, frames) = write_capture_of(dir, N);
    let config = config(dir, broker.port, &capture, 0, &dir.join("logs"));
    let logger = Running::logger(&config);
    broker.stop_gracefully();

    // Run 1 reads the whole capture with no broker: all of it goes to the spool; 5 s after
    // the capture's end it gives up waiting and stops.
    let mut first = Running::start(&config, "run");
    assert!(first.wait(Duration::from_secs(30)).success());

    broker.restart();
    let deadline = Instant::now() + Duration::from_secs(10);
    while logger.said("connected to the MQTT broker") < 2 {
        assert!(Instant::now() < deadline, "the logger did not reconnect");
        std::thread::sleep(Duration::from_millis(20));
    }
    // Run 2 starts sending the backlog and is stopped in the middle of it.
    let mut second = Running::start(&config, "run");
    second.wait_stderr("connected to the MQTT broker", Duration::from_secs(10));
    std::thread::sleep(Duration::from_millis(30));
    second.signal("TERM");
    assert!(second.wait(Duration::from_secs(10)).success());
    // Run 3 sends what is left and its own capture.
    let mut third = Running::start(&config, "run");
    assert!(third.wait(Duration::from_secs(60)).success());

    // Run 3 stops once the broker acknowledged everything, so the log is complete.
    let got = hn(&wait_log_settled(
        &dir.join("logs"),
        Duration::from_secs(30),
    ));
    assert!(got.len() >= 2 * N, "{} lines", got.len());
    let (before, last) = got.split_at(got.len() - N);
    assert_eq!(last, &frames[..], "run 3 whole, last");
    // Before it: run 1's frames from the spool, all in order, then those run 2 read before
    // its stop; QoS 1 allows a few sent twice around the stop.
    let mut matched = 0;
    let mut at = 0;
    while at < before.len() && matched < N {
        if before[at] == frames[matched] {
            matched += 1;
        }
        at += 1;
    }
    assert_eq!(matched, N, "run 1's spooled frames, in order");
    let rest = &before[at..];
    let run_2 = rest
        .iter()
        .scan(0, |next, line| {
            if *next < N && *line == frames[*next] {
                *next += 1;
            }
            Some(*next)
        })
        .last()
        .unwrap_or(0);
    assert!(run_2 > 0, "run 2 read frames before its stop");
    let twice = before.len() - N - run_2;
    assert!(twice <= 64, "{twice} lines sent twice");
}

/// A broker with Debian's mosquitto limits: it queues at most 1,000 messages for a
/// disconnected or slow persistent client and keeps 20 in flight; persistence on.
fn debian_default_broker() -> Broker {
    Broker::start_with(|dir| {
        format!(
            "allow_anonymous true\npersistence true\npersistence_location {}/\n\
             max_queued_messages 1000\nmax_inflight_messages 20\n",
            dir.display()
        )
    })
}

/// The daemon on `capture` read at once, its backlog drained at `rate` states a second, and a
/// logger writing one line per state to `logs`.
fn drain_config(dir: &Path, port: u16, capture: &Path, logs: &Path, rate: usize) -> PathBuf {
    write_config(
        dir,
        port,
        &format!(
            "meter:\n  port: replay:{}\n  replay_speed: 0\n\
             publish:\n  interval: 0\n  backlog_rate: {rate}\n  drain_timeout: 10m\n\
             logger:\n  dir: {}\n  pages_dir: {}\n  frames_per_line: 1\n  timezone: Europe/Paris\n",
            capture.display(),
            logs.display(),
            dir.join("pages").display()
        ),
    )
}

#[test]
fn a_day_of_states_spooled_in_an_outage_reaches_the_log_once_each_in_order() {
    // 8,640 states: a day of the default `publish.interval`.
    const STATES: usize = 8640;
    const RATE: usize = 250;
    let mut broker = debian_default_broker();
    let temp = tempfile::tempdir().unwrap();
    let dir = temp.path();
    let logs = dir.join("logs");
    let (capture, indexes) = write_capture_of(dir, STATES);
    let config = drain_config(dir, broker.port, &capture, &logs, RATE);
    let logger = Running::logger(&config);
    broker.stop_gracefully();

    // The whole day is read while the broker is away: all of it goes to the spool, and the
    // replay's end waits for the broker.
    let mut daemon = Running::start(&config, "run");
    daemon.wait_stderr(
        "waiting up to publish.drain_timeout",
        Duration::from_secs(60),
    );
    broker.restart();
    let back = Instant::now();
    let promised = Duration::from_secs((STATES / RATE) as u64);
    let status = daemon.wait(promised * 2 + Duration::from_secs(30));
    assert!(status.success(), "{status}");
    let drained = back.elapsed();
    let lines = wait_log(&logs, STATES, Duration::from_secs(30));
    assert_eq!(hn(&lines).len(), STATES, "every state filed");
    assert_eq!(hn(&lines), indexes, "every state once, in order");
    // The pace is the promised one: not much faster (the broker would drop what its queue for
    // a slow logger cannot hold), not much slower.
    assert!(
        drained >= promised.mul_f64(0.8) && drained <= promised * 2 + Duration::from_secs(10),
        "drained in {drained:?}, promised {promised:?}"
    );
    drop(logger);
}

#[test]
fn the_logger_down_during_the_drain_loses_nothing_up_to_the_brokers_queue() {
    const STATES: usize = 900; // under mosquitto's default 1,000 queued for the logger
    let mut broker = debian_default_broker();
    let temp = tempfile::tempdir().unwrap();
    let dir = temp.path();
    let logs = dir.join("logs");
    let (capture, indexes) = write_capture_of(dir, STATES);
    let config = drain_config(dir, broker.port, &capture, &logs, 500);
    // The logger subscribes once (its persistent session), then is down for the whole drain.
    let mut logger = Running::logger(&config);
    logger.signal("TERM");
    assert!(logger.wait(Duration::from_secs(10)).success());
    broker.stop_gracefully();
    let mut daemon = Running::start(&config, "run");
    daemon.wait_stderr(
        "waiting up to publish.drain_timeout",
        Duration::from_secs(30),
    );
    broker.restart();
    assert!(daemon.wait(Duration::from_secs(60)).success());
    // Back, the logger gets what the broker queued for it meanwhile.
    let _logger = Running::logger(&config);
    let lines = wait_log(&logs, STATES, Duration::from_secs(30));
    assert_eq!(hn(&lines), indexes, "every state once, in order");
}
