//! Whether linkymon runs and whether it hears the meter, as a `mosquitto_sub` user sees it:
//! `<base>/bridge/state` from the start, before any frame, and `<base>/<id>/line`, `OFF` once
//! the line has been silent for 30 s. A real mosquitto, the real executable, a pseudo-terminal
//! for the meter's line.

use std::io::Write;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use linkymon::publish::publisher::LINE_FILE;

use crate::daemon::serial_config;
use crate::support::{
    Broker, Pty, Running, Subscriber, TEMPO_CAPTURE, TEMPO_ID, fixtures_dir, require, wait_until,
};

const BRIDGE: &str = "linky/bridge/state";

/// What the broker retains on `topic` (what a new subscriber gets at once), if anything.
fn retained(port: u16, topic: &str) -> Option<String> {
    require("mosquitto_sub");
    let out = Command::new("mosquitto_sub")
        .args(["-h", "127.0.0.1", "-p", &port.to_string(), "-t", topic])
        .args(["-C", "1", "-W", "1"])
        .output()
        .unwrap();
    let payload = String::from_utf8_lossy(&out.stdout).trim().to_owned();
    (out.status.success() && !payload.is_empty()).then_some(payload)
}

/// What the daemon says of the line in its spool directory, for health checks
/// (docker/compose.yaml).
fn line_file(dir: &Path) -> String {
    std::fs::read_to_string(dir.join("spool").join(LINE_FILE))
        .unwrap()
        .trim()
        .to_owned()
}

/// Waits until the broker retains `payload` on `topic`.
fn wait_retained(port: u16, topic: &str, payload: &str, timeout: Duration) {
    let mut last = None;
    wait_until(timeout, &format!("{topic} is not {payload}"), || {
        last = retained(port, topic);
        last.as_deref() == Some(payload)
    });
}

#[test]
fn the_bridge_is_online_before_any_frame_and_offline_when_killed_or_stopped() {
    let broker = Broker::start();
    let dir = tempfile::tempdir().unwrap();
    let pty = Pty::start(dir.path());
    let config = serial_config(dir.path(), broker.port, &pty, "historic");
    let mut daemon = Running::start(&config, "run");
    // The meter says nothing: the daemon is on MQTT all the same.
    wait_retained(broker.port, BRIDGE, "online", Duration::from_secs(5));
    assert_eq!(
        retained(broker.port, &format!("linky/{TEMPO_ID}/line")),
        None
    );
    assert_eq!(line_file(dir.path()), "OFF", "no frame yet: unhealthy");

    // Killed without a word: the broker says `offline`, the bridge's Last Will.
    daemon.kill();
    wait_retained(broker.port, BRIDGE, "offline", Duration::from_secs(5));

    let daemon = Running::start(&config, "run");
    wait_retained(broker.port, BRIDGE, "online", Duration::from_secs(5));
    // SIGTERM: `offline` is said before the exit.
    let stderr = daemon.stop();
    assert_eq!(
        retained(broker.port, BRIDGE).as_deref(),
        Some("offline"),
        "{stderr:?}"
    );
}

#[test]
fn a_configuration_error_never_says_the_bridge_online() {
    let broker = Broker::start();
    let dir = tempfile::tempdir().unwrap();
    let pty = Pty::start(dir.path());
    let config = serial_config(dir.path(), broker.port, &pty, "historic");
    let daemon = Running::start(&config, "run");
    wait_retained(broker.port, BRIDGE, "online", Duration::from_secs(5));
    daemon.stop();
    // The meter's adapter is gone: exit 2 at start, and the bridge stays `offline`.
    drop(pty);
    let mut failed = Running::start(&config, "run");
    assert_eq!(failed.wait(Duration::from_secs(10)).code(), Some(2));
    assert_eq!(retained(broker.port, BRIDGE).as_deref(), Some("offline"));
}

#[test]
fn the_line_goes_off_after_30_s_without_a_frame_and_on_when_frames_resume() {
    let broker = Broker::start();
    let dir = tempfile::tempdir().unwrap();
    let pty = Pty::start(dir.path());
    let config = serial_config(dir.path(), broker.port, &pty, "historic");
    let line = format!("linky/{TEMPO_ID}/line");
    let availability = format!("linky/{TEMPO_ID}/availability");
    let sub = Subscriber::start(broker.port, &[&line, &availability]);
    let daemon = Running::start(&config, "run");
    let capture = std::fs::read(fixtures_dir().join(TEMPO_CAPTURE)).unwrap();
    let mut feed = pty.open_feed();
    feed.write_all(&capture).unwrap();
    let last_frame = Instant::now();
    sub.wait_for("line ON", Duration::from_secs(5), |l| {
        l == format!("{line} ON")
    });
    assert_eq!(retained(broker.port, &line).as_deref(), Some("ON"));
    assert_eq!(line_file(dir.path()), "ON");

    // The meter falls silent: OFF 30 s after its last frame, retained; the daemon is online.
    sub.wait_for("line OFF", Duration::from_secs(40), |l| {
        l == format!("{line} OFF")
    });
    let silent_for = last_frame.elapsed();
    assert!(
        (Duration::from_secs(29)..Duration::from_secs(35)).contains(&silent_for),
        "OFF after {silent_for:?}"
    );
    assert_eq!(retained(broker.port, &line).as_deref(), Some("OFF"));
    assert_eq!(line_file(dir.path()), "OFF");
    assert_eq!(sub.payloads(&availability), ["online"]);

    // Frames again: ON at once.
    feed.write_all(&capture).unwrap();
    sub.wait_for("line ON again", Duration::from_secs(5), |_| {
        sub.payloads(&line) == ["ON", "OFF", "ON"]
    });
    assert_eq!(line_file(dir.path()), "ON");
    let stderr = daemon.stop();
    assert!(
        stderr.iter().any(|l| l.contains("the line is silent")),
        "{stderr:?}"
    );
    assert_eq!(
        line_file(dir.path()),
        "OFF",
        "a stopped daemon hears nothing"
    );
}
