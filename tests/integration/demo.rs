//! `linkymon demo` as a newcomer runs it: one command, then mosquitto_sub, then Ctrl-C.

use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use crate::support::{Running, SIM_ID, Subscriber, command, free_port, wait_for_port, wait_until};

/// Whether `dir` holds a file that `pred` accepts.
fn any_file(dir: &Path, pred: impl Fn(&Path) -> bool) -> bool {
    std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .any(|e| pred(&e.path()))
}

#[test]
fn the_demo_shows_discovery_state_the_peak_a_log_line_and_a_page_then_stops_on_ctrl_c() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let mut demo = Running::spawn(
        command()
            .args([
                "demo",
                "--port",
                &port.to_string(),
                "--speed",
                "3000",
                "--data",
            ])
            .arg(dir.path())
            .stdout(Stdio::piped()),
    );
    // The embedded broker needs a moment; the subscriber's probe waits for it.
    wait_for_port(port, Duration::from_secs(10));
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
    let logs = dir.path().join("logs");
    wait_until(Duration::from_secs(30), "no log line", || {
        any_file(&logs, |path| {
            path.extension().is_some_and(|x| x == "log")
                && std::fs::read_to_string(path).is_ok_and(|t| t.contains("\tDATA\tPeriode="))
        })
    });
    let pages = dir.path().join("pages");
    wait_until(Duration::from_secs(30), "no page", || {
        any_file(&pages, |path| {
            let name = path.file_name().unwrap().to_string_lossy();
            name.len() == "2026-11-28.html".len() && name.ends_with(".html")
        })
    });
    assert!(
        dir.path().join("screen.png").is_file(),
        "the virtual screen"
    );
    demo.signal("INT");
    let status = demo.wait(Duration::from_secs(5));
    assert!(status.success(), "{status}");
    let mut stdout = String::new();
    std::io::Read::read_to_string(demo.child.stdout.as_mut().unwrap(), &mut stdout).unwrap();
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
    let dir = tempfile::tempdir().unwrap();
    let out = command()
        .args(["demo", "--port", &port.to_string(), "--data"])
        .arg(dir.path())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert!(
        stderr.contains(&format!("port {port}")) && stderr.contains("--port"),
        "{stderr}"
    );
}
