//! `linkymon demo` as a newcomer runs it: one command, then mosquitto_sub, then Ctrl-C.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::mqtt::{Subscriber, TempDir, free_port, signal, wait_exit};

const SIM_ID: &str = "021728123456";

fn wait_for_file(what: &str, timeout: Duration, found: impl Fn() -> bool) {
    let deadline = Instant::now() + timeout;
    while !found() {
        assert!(Instant::now() < deadline, "no {what} within {timeout:?}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn the_demo_shows_discovery_state_the_peak_a_log_line_and_a_page_then_stops_on_ctrl_c() {
    let dir = TempDir::new("demo");
    let port = free_port();
    let mut demo = Command::new(env!("CARGO_BIN_EXE_linkymon"))
        .args([
            "demo",
            "--port",
            &port.to_string(),
            "--speed",
            "3000",
            "--data",
        ])
        .arg(&dir.0)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    // The embedded broker needs a moment; the subscriber's probe waits for it.
    let deadline = Instant::now() + Duration::from_secs(10);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(
            Instant::now() < deadline,
            "the embedded broker did not listen on {port}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let sub = Subscriber::start(port, &["linky/#", "homeassistant/#"]);
    sub.wait_for("discovery", Duration::from_secs(10), |l| {
        l.starts_with(&format!(
            "homeassistant/binary_sensor/linky_{SIM_ID}/ejp/config "
        ))
    });
    sub.wait_for("a state", Duration::from_secs(10), |l| {
        l.starts_with(&format!("linky/{SIM_ID}/state {{"))
    });
    sub.wait_for("the EJP peak", Duration::from_secs(10), |l| {
        l == format!("linky/{SIM_ID}/ejp ON")
    });
    let logs = dir.path("logs");
    wait_for_file("a log line", Duration::from_secs(30), || {
        std::fs::read_dir(&logs)
            .into_iter()
            .flatten()
            .flatten()
            .any(|e| {
                e.path().extension().is_some_and(|x| x == "log")
                    && std::fs::read_to_string(e.path())
                        .is_ok_and(|t| t.contains("\tDATA\tPeriode="))
            })
    });
    let pages = dir.path("pages");
    wait_for_file("a page", Duration::from_secs(30), || {
        std::fs::read_dir(&pages)
            .into_iter()
            .flatten()
            .flatten()
            .any(|e| {
                let name = e.file_name().to_string_lossy().into_owned();
                name.len() == "2026-11-28.html".len() && name.ends_with(".html")
            })
    });
    assert!(dir.path("screen.png").is_file(), "the virtual screen");
    signal(&demo, "INT");
    let status = wait_exit(&mut demo, Duration::from_secs(5));
    assert!(status.success(), "{status}");
    let mut stdout = String::new();
    std::io::Read::read_to_string(demo.stdout.as_mut().unwrap(), &mut stdout).unwrap();
    assert_eq!(
        stdout.matches("mosquitto_sub -h 127.0.0.1").count(),
        1,
        "printed once: {stdout}"
    );
}

#[test]
fn a_taken_port_is_one_clear_line() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port();
    let dir = TempDir::new("demo-port");
    let out = Command::new(env!("CARGO_BIN_EXE_linkymon"))
        .args(["demo", "--port", &port.to_string(), "--data"])
        .arg(&dir.0)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert!(
        stderr.contains(&format!("port {port}")) && stderr.contains("--port"),
        "{stderr}"
    );
}
