//! The embedded broker with real clients: `mosquitto_sub` and `mosquitto_pub` against
//! `linkymon::broker` in this process, then against `linkymon run` with `embedded_broker: true`.
#![cfg(feature = "embedded-broker")]

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use linkymon::broker::{self, BrokerError, BrokerHandle, Credentials};

use crate::support::{
    Running, SIM_ID, Subscriber, free_port, linkymon, mosquitto_pub, mosquitto_pub_with as publish,
    wait_for_port, write_config,
};

/// Runs an async call of the broker's API from these synchronous tests; the broker itself runs
/// on its own threads and does not need this runtime afterwards.
fn block_on<F: std::future::Future>(future: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(future)
}

fn start(port: u16, credentials: Option<Credentials>) -> BrokerHandle {
    block_on(broker::start("127.0.0.1", port, credentials)).unwrap()
}

#[test]
fn retained_messages_reach_a_late_subscriber_until_an_empty_one_clears_them() {
    let port = free_port();
    let _broker = start(port, None);
    assert!(publish(port, &["-r", "-q", "1", "-t", "linky/1/PAPP", "-m", "1450"]).success());
    assert!(publish(port, &["-r", "-t", "linky/1/PTEC", "-m", "HN.."]).success());
    assert!(publish(port, &["-t", "linky/1/state", "-m", "{}"]).success());

    let late = Subscriber::start(port, &["linky/#"]);
    late.wait_for("the retained PAPP", Duration::from_secs(3), |l| {
        l == "linky/1/PAPP 1450"
    });
    late.wait_for("the retained PTEC", Duration::from_secs(3), |l| {
        l == "linky/1/PTEC HN.."
    });
    assert!(
        late.payloads("linky/1/state").is_empty(),
        "a message sent without retain is not kept"
    );

    assert!(publish(port, &["-r", "-t", "linky/1/PAPP", "-n"]).success());
    let later = Subscriber::start(port, &["linky/#"]);
    later.wait_for("PTEC still retained", Duration::from_secs(3), |l| {
        l == "linky/1/PTEC HN.."
    });
    assert!(
        later.payloads("linky/1/PAPP").is_empty(),
        "an empty retained message clears the topic: {:?}",
        later.lines()
    );
}

#[test]
fn a_second_client_receives_what_the_first_receives() {
    let port = free_port();
    let _broker = start(port, None);
    let first = Subscriber::start(port, &["linky/+/ejp"]);
    let second = Subscriber::start(port, &["linky/#"]);
    mosquitto_pub(port, "linky/1/ejp", "ON");
    for sub in [&first, &second] {
        sub.wait_for("ejp ON", Duration::from_secs(3), |l| l == "linky/1/ejp ON");
    }
}

#[test]
fn the_last_will_of_a_client_killed_with_sigkill_reaches_the_others_retained() {
    let port = free_port();
    let _broker = start(port, None);
    let watcher = Subscriber::start(port, &["box/+/availability"]);
    let doomed = Subscriber::start_with(
        port,
        &["box/doomed/cmd"],
        &[
            "--will-topic",
            "box/doomed/availability",
            "--will-payload",
            "gone",
            "--will-retain",
            "--will-qos",
            "1",
        ],
    );
    doomed.signal("KILL");
    watcher.wait_for("the Last Will", Duration::from_secs(5), |l| {
        l == "box/doomed/availability gone"
    });
    let late = Subscriber::start(port, &["box/+/availability"]);
    late.wait_for("the retained Last Will", Duration::from_secs(3), |l| {
        l == "box/doomed/availability gone"
    });
}

#[test]
fn a_client_that_disconnects_cleanly_leaves_no_will() {
    let port = free_port();
    let _broker = start(port, None);
    let watcher = Subscriber::start(port, &["box/+/availability"]);
    let polite = Subscriber::start_with(
        port,
        &["box/polite/cmd"],
        &[
            "--will-topic",
            "box/polite/availability",
            "--will-payload",
            "gone",
        ],
    );
    // SIGINT: mosquitto_sub sends DISCONNECT before it exits.
    polite.signal("INT");
    std::thread::sleep(Duration::from_millis(300));
    mosquitto_pub(port, "box/other/availability", "marker");
    watcher.wait_for("the marker", Duration::from_secs(3), |l| {
        l == "box/other/availability marker"
    });
    assert!(
        watcher.payloads("box/polite/availability").is_empty(),
        "{:?}",
        watcher.lines()
    );
}

#[test]
fn a_qos_0_wildcard_subscriber_receives_hundreds_of_retained_messages() {
    // Home Assistant's discovery subscription is QoS 0 on a wildcard: every config must arrive.
    let port = free_port();
    let _broker = start(port, None);
    for n in 0..300 {
        assert!(
            publish(
                port,
                &[
                    "-r",
                    "-t",
                    &format!("homeassistant/sensor/x/e{n}/config"),
                    "-m",
                    "{}"
                ]
            )
            .success()
        );
    }
    let ha = Subscriber::start_with(port, &["homeassistant/#"], &["-q", "0"]);
    let deadline = Instant::now() + Duration::from_secs(5);
    while ha.lines().len() < 300 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(ha.lines().len(), 300);
}

#[test]
fn a_qos_1_wildcard_subscriber_receives_the_first_hundred_retained_messages() {
    // rumqttd's limit, documented in linkymon::broker: one meter stays under it.
    let port = free_port();
    let _broker = start(port, None);
    for n in 0..150 {
        assert!(publish(port, &["-r", "-t", &format!("linky/1/L{n}"), "-m", "1"]).success());
    }
    let sub = Subscriber::start(port, &["linky/#"]);
    let deadline = Instant::now() + Duration::from_secs(3);
    while sub.lines().len() < 100 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    std::thread::sleep(Duration::from_millis(300));
    assert!(sub.lines().len() >= 100, "{}", sub.lines().len());
}

#[test]
fn a_taken_port_is_an_error_naming_the_port() {
    let taken = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port();
    let error = block_on(broker::start("127.0.0.1", port, None)).unwrap_err();
    assert!(matches!(error, BrokerError::PortTaken { .. }), "{error:?}");
    let message = error.to_string();
    assert!(
        message.starts_with(&format!("port {port} on 127.0.0.1 is taken: ")),
        "{message}"
    );
}

#[test]
fn stopping_the_broker_frees_its_port_and_dropping_it_does_too() {
    let port = free_port();
    let broker = start(port, None);
    let _client = Subscriber::start(port, &["a/b"]);
    block_on(broker.stop());
    TcpListener::bind(("127.0.0.1", port)).expect("the port is free after stop()");

    let broker = start(port, None);
    drop(broker);
    let deadline = Instant::now() + Duration::from_secs(3);
    while TcpListener::bind(("127.0.0.1", port)).is_err() {
        assert!(
            Instant::now() < deadline,
            "the port is still taken after drop"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn with_credentials_only_clients_that_give_them_are_served() {
    let port = free_port();
    let _broker = start(
        port,
        Some(Credentials {
            username: "ha".into(),
            password: "s3cret".into(),
        }),
    );
    let good = ["-u", "ha", "-P", "s3cret", "-t", "x/y", "-m", "1"];
    assert!(publish(port, &good).success());
    assert!(!publish(port, &["-t", "x/y", "-m", "1"]).success());
    assert!(!publish(port, &["-u", "ha", "-P", "wrong", "-t", "x/y", "-m", "1"]).success());
}

// ---------------------------------------------------------------------------------------------
// `linkymon run` with `mqtt.embedded_broker: true`
// ---------------------------------------------------------------------------------------------

/// A simulated meter published through the daemon's own broker on `port`.
fn embedded_config(dir: &Path, port: u16) -> PathBuf {
    write_config(
        dir,
        port,
        "  embedded_broker: true\nmeter:\n  port: simulate\n  simulate_speed: 60\npublish:\n  interval: 1s\n",
    )
}

/// `linkymon run` with its embedded broker on `port` and `extra` config after the `mqtt:`
/// keys, its broker accepting connections; its config file.
fn run_with_embedded_broker(dir: &Path, port: u16, extra: &str) -> (PathBuf, Running) {
    let config = write_config(dir, port, &format!("  embedded_broker: true\n{extra}"));
    let daemon = Running::start(&config, "run");
    wait_for_port(port, Duration::from_secs(10));
    (config, daemon)
}

/// The logger speaks MQTT 5, the embedded broker (rumqttd) only MQTT 3.1.1: the logger says
/// so in one line rather than "connection closed".
#[test]
fn the_logger_says_in_one_line_that_the_embedded_broker_does_not_speak_mqtt_5() {
    let dir = tempfile::tempdir().unwrap();
    let (config, _daemon) = run_with_embedded_broker(
        dir.path(),
        free_port(),
        &format!(
            "meter:\n  port: simulate\nlogger:\n  dir: {}\n  pages_dir: {}\n",
            dir.path().join("logs").display(),
            dir.path().join("pages").display()
        ),
    );
    let logger = Running::start(&config, "logger");
    let line = logger.wait_stderr("cannot use the MQTT broker", Duration::from_secs(10));
    assert!(
        line.contains("the logger speaks MQTT 5") && line.contains("embedded broker"),
        "{line}"
    );
    let said = logger.stop();
    let warnings = said.iter().filter(|l| l.contains("cannot use")).count();
    assert_eq!(warnings, 1, "said once: {said:#?}");
}

#[test]
fn run_with_the_embedded_broker_serves_live_and_retained_values_without_log_noise() {
    let port = free_port();
    let dir = tempfile::tempdir().unwrap();
    let config = embedded_config(dir.path(), port);
    let daemon = Running::start(&config, "run");
    wait_for_port(port, Duration::from_secs(10));
    let topic = |t: &str| format!("linky/{SIM_ID}/{t}");

    let live = Subscriber::start(port, &["linky/#"]);
    live.wait_for("a state", Duration::from_secs(5), |l| {
        l.starts_with(&topic("state"))
    });
    // Texts and availability are sent once, when they change: a late client sees them only
    // because the broker kept them.
    let late = Subscriber::start(port, &["linky/#", "homeassistant/#"]);
    late.wait_for("the retained online", Duration::from_secs(3), |l| {
        l == format!("{} online", topic("availability"))
    });
    late.wait_for("the retained ADCO", Duration::from_secs(3), |l| {
        l == format!("{} {SIM_ID}", topic("ADCO"))
    });
    late.wait_for("a retained discovery config", Duration::from_secs(3), |l| {
        l.starts_with(&format!(
            "homeassistant/binary_sensor/linky_{SIM_ID}/ejp/config "
        ))
    });
    late.wait_for("a live state", Duration::from_secs(5), |l| {
        l.starts_with(&topic("state"))
    });

    let stderr = daemon.stop().join("\n");
    for sub in [&live, &late] {
        sub.wait_for(
            "offline before the broker goes",
            Duration::from_secs(2),
            |l| l == format!("{} offline", topic("availability")),
        );
    }
    assert!(
        stderr.contains(&format!(
            "embedded MQTT broker listening on 127.0.0.1:{port}"
        )),
        "{stderr}"
    );
    for noise in ["remote_link", "Disconnecting", "router", "accept"] {
        assert!(
            !stderr.contains(noise),
            "rumqttd's `{noise}` reached stderr:\n{stderr}"
        );
    }
    assert!(stderr.lines().count() < 20, "{stderr}");
}

#[test]
fn the_last_will_works_through_the_daemons_embedded_broker() {
    let port = free_port();
    let dir = tempfile::tempdir().unwrap();
    let config = embedded_config(dir.path(), port);
    let daemon = Running::start(&config, "run");
    wait_for_port(port, Duration::from_secs(10));
    let watcher = Subscriber::start(port, &["t"]);
    let doomed = Subscriber::start_with(
        port,
        &[&format!("linky/{SIM_ID}/ejp")],
        &["--will-topic", "t", "--will-payload", "gone"],
    );
    doomed.signal("KILL");
    watcher.wait_for("the Last Will", Duration::from_secs(5), |l| l == "t gone");
    daemon.stop();
}

#[test]
fn the_bridge_says_offline_through_the_embedded_broker_before_it_stops() {
    let port = free_port();
    let dir = tempfile::tempdir().unwrap();
    let config = embedded_config(dir.path(), port);
    let daemon = Running::start(&config, "run");
    wait_for_port(port, Duration::from_secs(10));
    let bridge = "linky/bridge/state";
    let sub = Subscriber::start(port, &[bridge]);
    sub.wait_for("online", Duration::from_secs(5), |l| {
        l == format!("{bridge} online")
    });
    daemon.stop();
    sub.wait_for("offline", Duration::from_secs(2), |l| {
        l == format!("{bridge} offline")
    });
}

#[test]
fn run_exits_1_naming_the_port_when_the_embedded_brokers_port_is_taken() {
    let taken = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port();
    let dir = tempfile::tempdir().unwrap();
    let config = embedded_config(dir.path(), port);
    let output = linkymon(&config, &["run"]).output().unwrap();
    assert_eq!(output.status.code(), Some(1), "{output:?}");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains(&format!("port {port} on 127.0.0.1 is taken")),
        "{stderr}"
    );
    assert_eq!(stderr.trim().lines().count(), 1, "one line: {stderr}");
}

#[test]
fn a_bind_address_that_is_not_an_ip_is_a_config_error() {
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(
        dir.path(),
        free_port(),
        "  embedded_broker: true\n  embedded_bind: localhost\n",
    );
    let output = linkymon(&config, &["run"]).output().unwrap();
    assert_eq!(output.status.code(), Some(2), "{output:?}");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("mqtt.embedded_bind"), "{stderr}");
}

#[test]
fn run_warns_when_its_broker_listens_on_every_interface_without_a_password() {
    let port = free_port();
    let dir = tempfile::tempdir().unwrap();
    let (_, daemon) = run_with_embedded_broker(
        dir.path(),
        port,
        "  embedded_bind: 0.0.0.0\nmeter:\n  port: simulate\n",
    );
    let stderr = daemon.stop().join("\n");
    assert!(
        stderr.contains(&format!(
            "the embedded MQTT broker listens on 0.0.0.0:{port} without authentication"
        )),
        "{stderr}"
    );
    assert!(stderr.contains("embedded MQTT broker stopped"), "{stderr}");
}
