//! Process edges against the real executable: signals that must stop linkymon cleanly, a
//! closed or broken stderr, start-up failures that are the user's to fix (exit status 2, one
//! line), files that must not be read without bound, and the embedded broker's bound on
//! retained messages.

use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use crate::support::{
    Broker, Running, SIM_ID, Subscriber, command, linkymon, wait_until, write_config,
};

/// `linkymon ARGS -c CONFIG` run to its end, at most 10 s.
fn run_to_end(cmd: &mut Command) -> Output {
    let mut child = cmd
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    while child.try_wait().unwrap().is_none() {
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("linkymon did not end within 10 s: {cmd:?}");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    child.wait_with_output().unwrap()
}

/// Exit status 2 and one `linkymon: ` line on stderr that contains `names`.
fn assert_config_error(what: &str, output: &Output, names: &str) {
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "{what}: {stderr}");
    let lines: Vec<&str> = stderr.lines().collect();
    assert_eq!(lines.len(), 1, "{what}: {stderr}");
    assert!(lines[0].starts_with("linkymon: "), "{what}: {stderr}");
    assert!(lines[0].contains(names), "{what}: {stderr}");
}

fn sh(script: &str) -> Output {
    Command::new("sh").args(["-c", script]).output().unwrap()
}

fn pixels_lit(path: &Path) -> Option<u32> {
    let bytes = std::fs::read(path).ok()?;
    let mut reader = png::Decoder::new(std::io::Cursor::new(bytes))
        .read_info()
        .ok()?;
    let mut data = vec![0; reader.output_buffer_size()?];
    reader.next_frame(&mut data).ok()?;
    Some(data.iter().map(|b| b.count_ones()).sum())
}

#[test]
fn sighup_stops_the_daemon_as_cleanly_as_sigterm() {
    let broker = Broker::start();
    let dir = tempfile::tempdir().unwrap();
    let screen = dir.path().join("screen.png");
    let config = write_config(
        dir.path(),
        broker.port,
        &format!(
            "meter:\n  port: simulate\n  simulate_speed: 60\npublish:\n  interval: 0\n\
             display:\n  driver: png\n  png_path: {}\n",
            screen.display()
        ),
    );
    let availability = format!("linky/{SIM_ID}/availability");
    let sub = Subscriber::start(broker.port, &[&availability]);
    let mut daemon = Running::start(&config, "run");
    wait_until(Duration::from_secs(10), "no picture on the screen", || {
        pixels_lit(&screen).is_some_and(|lit| lit > 0)
    });
    daemon.signal("HUP");
    let status = daemon.wait(Duration::from_secs(5));
    assert!(status.success(), "SIGHUP: {status}");
    assert_eq!(pixels_lit(&screen), Some(0), "the screen is cleared");
    sub.wait_for("offline", Duration::from_secs(3), |l| {
        l == format!("{availability} offline")
    });
}

#[test]
fn sighup_stops_the_logger_with_its_unfinished_line_saved() {
    let broker = Broker::start();
    let dir = tempfile::tempdir().unwrap();
    let logs = dir.path().join("logs");
    let config = write_config(
        dir.path(),
        broker.port,
        &format!(
            "meter:\n  port: simulate\n  simulate_speed: 100\npublish:\n  interval: 0\n\
             logger:\n  dir: {}\n  pages_dir: {}\n  frames_per_line: 100000\n",
            logs.display(),
            dir.path().join("pages").display()
        ),
    );
    let state = format!("linky/{SIM_ID}/state");
    let states = Subscriber::start(broker.port, &[&state]);
    let mut logger = Running::logger(&config);
    let daemon = Running::start(&config, "run");
    states.wait_count(&state, 5, Duration::from_secs(10));
    std::thread::sleep(Duration::from_millis(300));
    logger.signal("HUP");
    let status = logger.wait(Duration::from_secs(5));
    assert!(status.success(), "SIGHUP: {status}");
    assert!(
        logs.join(".pending").is_file(),
        "the unfinished line is saved in {}/.pending",
        logs.display()
    );
    daemon.stop();
}

#[test]
fn a_closed_or_broken_stderr_keeps_exit_status_2_and_never_panics() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("bad.yaml");
    std::fs::write(&config, "meter:\n  voltage: 20\n").unwrap();
    // Closed: `2>&-`, through a shell.
    let bin = env!("CARGO_BIN_EXE_linkymon");
    let script = format!("'{bin}' run -c '{}' 2>&-; echo $?", config.display());
    let out = sh(&script);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(stdout.trim(), "2", "closed stderr: {stdout}");
    // Broken: a pipe whose reading end is closed before linkymon writes (EPIPE).
    let (reader, writer) = std::io::pipe().unwrap();
    drop(reader);
    let status = linkymon(&config, &["run"])
        .stdout(Stdio::null())
        .stderr(writer)
        .status()
        .unwrap();
    assert_eq!(status.code(), Some(2), "broken stderr: {status}");
}

#[test]
fn start_up_failures_the_user_must_fix_exit_with_2_and_one_line() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let not_a_dir = d.join("a-file");
    std::fs::write(&not_a_dir, "").unwrap();
    let cases = [
        (
            "a missing replay file",
            format!("meter:\n  port: replay:{}/none.tic\n", d.display()),
            "`meter.port`",
        ),
        (
            "a missing serial device",
            "meter:\n  port: /dev/ttyNOPE0\n".into(),
            "`meter.port`",
        ),
        (
            "a regular file as serial device",
            format!("meter:\n  port: {}\n", not_a_dir.display()),
            "not a serial device",
        ),
        (
            "/dev/null as serial device",
            "meter:\n  port: /dev/null\n".into(),
            "`meter.port`",
        ),
        (
            "a spool dir under a file",
            format!(
                "meter:\n  port: simulate\nmqtt:\n  spool_dir: {}/spool\n",
                not_a_dir.display()
            ),
            "`mqtt.spool_dir`",
        ),
    ];
    for (what, yaml, names) in cases {
        let config = d.join("config.yaml");
        std::fs::write(&config, yaml).unwrap();
        let out = run_to_end(&mut linkymon(&config, &["run"]));
        assert_config_error(what, &out, names);
    }
}

#[test]
fn graph_on_a_missing_log_or_a_directory_fails_in_one_line() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("config.yaml");
    std::fs::write(
        &config,
        format!("logger:\n  pages_dir: {}/pages\n", dir.path().display()),
    )
    .unwrap();
    let missing = dir.path().join("2026-01-01.log");
    for log in [missing.as_path(), dir.path()] {
        let out = run_to_end(linkymon(&config, &["graph"]).arg(log));
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{}: {stderr}", log.display());
        let ours: Vec<&str> = stderr
            .lines()
            .filter(|l| l.starts_with("linkymon: "))
            .collect();
        assert_eq!(ours.len(), 1, "{stderr}");
        assert!(ours[0].contains(&log.display().to_string()), "{stderr}");
        assert!(!stderr.contains("panicked"), "{stderr}");
    }
}

#[test]
fn config_and_password_files_that_are_not_small_regular_files_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let fifo = dir.path().join("fifo");
    assert!(
        Command::new("mkfifo")
            .arg(&fifo)
            .status()
            .unwrap()
            .success()
    );
    let big = dir.path().join("big");
    std::fs::write(&big, vec![b'#'; 2 * 1024 * 1024]).unwrap();
    for path in [Path::new("/dev/zero"), fifo.as_path(), big.as_path()] {
        let shown = path.display().to_string();
        let out = run_to_end(&mut linkymon(path, &["run"]));
        assert_config_error(&shown, &out, &shown);
        let config = dir.path().join("config.yaml");
        std::fs::write(&config, format!("mqtt:\n  password_file: {shown}\n")).unwrap();
        let out = run_to_end(&mut linkymon(&config, &["run"]));
        assert_config_error(&shown, &out, "`mqtt.password_file`");
        let out = run_to_end(command().env("LINKYMON_CONFIG", path).arg("logger"));
        assert_config_error(&shown, &out, &shown);
    }
}

#[cfg(feature = "embedded-broker")]
#[test]
fn the_embedded_broker_bounds_the_bytes_anonymous_clients_can_retain() {
    use crate::support::{free_port, mosquitto_pub_with};
    use linkymon::broker::{MAX_PAYLOAD_BYTES, MAX_RETAINED_BYTES};
    let (port, port_v5) = (free_port(), free_port());
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let _broker = runtime
        .block_on(linkymon::broker::start("127.0.0.1", port, port_v5, None))
        .unwrap();
    // 100 retained messages of 60 KiB: 6 MB, more than the broker may hold; every other one
    // through the MQTT 5 listener, which the bound covers alike.
    let payload = "x".repeat(60 * 1024);
    assert!(payload.len() < MAX_PAYLOAD_BYTES);
    for i in 0..100 {
        let topic = format!("flood/{i}");
        let status = if i % 2 == 0 {
            mosquitto_pub_with(port, &["-r", "-t", &topic, "-m", &payload])
        } else {
            mosquitto_pub_with(port_v5, &["-V", "5", "-r", "-t", &topic, "-m", &payload])
        };
        assert!(status.success(), "{topic}: {status}");
    }
    std::thread::sleep(Duration::from_millis(300));
    let late = Subscriber::start(port, &["flood/#"]);
    std::thread::sleep(Duration::from_secs(1));
    let retained = late
        .lines()
        .iter()
        .filter(|l| l.starts_with("flood/") && l.len() > 1024)
        .count();
    let most = MAX_RETAINED_BYTES / payload.len();
    assert!(
        (most / 2..=most).contains(&retained),
        "{retained} of 100 retained messages kept; the bound allows {most}"
    );
    // The broker still serves: a small retained message on a freed topic is kept.
    assert!(mosquitto_pub_with(port, &["-r", "-t", "flood/0", "-n"]).success());
    assert!(mosquitto_pub_with(port, &["-r", "-t", "linky/x/PAPP", "-m", "1450"]).success());
    let later = Subscriber::start(port, &["linky/#"]);
    later.wait_for("the retained PAPP", Duration::from_secs(3), |l| {
        l == "linky/x/PAPP 1450"
    });
}
