//! What anyone on the broker can publish must not disable, bloat or falsify the daemon: a
//! flood of Home Assistant `online`s, an oversized retained status; and what the daemon
//! promises its consumers from the start: `diag` at once, `seq` numbers that only grow.

use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::support::{
    Broker, Running, SIM_ID, Subscriber, mosquitto_pub_with, peak_rss_kb, write_config,
};

/// The daemon on the simulated meter, one `state` a second of simulated time at 60×.
fn simulated(dir: &Path, port: u16) -> std::path::PathBuf {
    write_config(
        dir,
        port,
        "meter:\n  port: simulate\n  simulate_speed: 60\npublish:\n  interval: 1s\n",
    )
}

fn configs(sub: &Subscriber) -> usize {
    sub.lines()
        .iter()
        .filter(|l| l.starts_with("homeassistant/") && l.contains("/config "))
        .count()
}

#[test]
fn a_flood_of_home_assistant_onlines_makes_one_announcement_per_ten_seconds() {
    let broker = Broker::start();
    let temp = tempfile::tempdir().unwrap();
    let config = simulated(temp.path(), broker.port);
    let sub = Subscriber::start(broker.port, &["homeassistant/#"]);
    let daemon = Running::start(&config, "run");
    daemon.wait_stderr("connected to the MQTT broker", Duration::from_secs(10));
    std::thread::sleep(Duration::from_secs(2));
    let announcement = configs(&sub);
    assert!(
        announcement > 10,
        "{announcement} configs at the connection"
    );
    let before_kb = peak_rss_kb(daemon.child.id());

    // 5,000 `online`s in a burst, from a script on the broker.
    let onlines = "online\n".repeat(5000);
    let mut publisher = std::process::Command::new("mosquitto_pub")
        .args(["-h", "127.0.0.1", "-p", &broker.port.to_string()])
        .args(["-t", "homeassistant/status", "-l"])
        .stdin(Stdio::piped())
        .spawn()
        .unwrap();
    std::io::Write::write_all(&mut publisher.stdin.take().unwrap(), onlines.as_bytes()).unwrap();
    assert!(publisher.wait().unwrap().success());
    let flood_end = Instant::now();

    // The first `online` is answered at once, the 4,999 others by one more announcement in
    // the next slot, 10 s later: not one per `online`.
    std::thread::sleep(Duration::from_secs(13).saturating_sub(flood_end.elapsed()));
    let after = configs(&sub) - announcement;
    assert_eq!(
        after,
        2 * announcement,
        "two announcements for 5,000 onlines"
    );
    let after_kb = peak_rss_kb(daemon.child.id());
    assert!(
        after_kb < before_kb + 8 * 1024,
        "peak RSS {before_kb} kB → {after_kb} kB"
    );
    eprintln!("peak RSS before the flood {before_kb} kB, after {after_kb} kB");
}

#[test]
fn an_oversized_retained_status_does_not_end_every_connection() {
    let broker = Broker::start();
    let temp = tempfile::tempdir().unwrap();
    let big = temp.path().join("big");
    std::fs::write(&big, vec![b'x'; 200 * 1024]).unwrap();
    let status = mosquitto_pub_with(
        broker.port,
        &[
            "-r",
            "-t",
            "homeassistant/status",
            "-f",
            big.to_str().unwrap(),
        ],
    );
    assert!(status.success());
    let config = simulated(temp.path(), broker.port);
    let states = Subscriber::start(broker.port, &[&format!("linky/{SIM_ID}/state")]);
    let daemon = Running::start(&config, "run");
    std::thread::sleep(Duration::from_secs(8));
    let received = states.payloads(&format!("linky/{SIM_ID}/state")).len();
    assert!(received >= 5, "{received} states in 8 s");
    assert_eq!(
        daemon.said("not followed any more"),
        1,
        "{:?}",
        daemon.stderr()
    );
    let connections = daemon.said("connected to the MQTT broker");
    assert!(connections <= 2, "{connections} connections in 8 s");
}

#[test]
fn diag_is_published_at_once_and_seq_only_grows_across_restarts() {
    let broker = Broker::start();
    let temp = tempfile::tempdir().unwrap();
    let config = simulated(temp.path(), broker.port);
    let diag_topic = format!("linky/{SIM_ID}/diag");
    let state_topic = format!("linky/{SIM_ID}/state");
    let sub = Subscriber::start(broker.port, &[&diag_topic, &state_topic]);
    let seqs = |sub: &Subscriber| -> Vec<u64> {
        sub.payloads(&state_topic)
            .iter()
            .map(|p| {
                serde_json::from_str::<Value>(p).unwrap()["seq"]
                    .as_u64()
                    .unwrap()
            })
            .collect()
    };

    let started = Instant::now();
    let daemon = Running::start(&config, "run");
    sub.wait_count(&diag_topic, 1, Duration::from_secs(5));
    assert!(started.elapsed() < Duration::from_secs(5));
    sub.wait_count(&state_topic, 5, Duration::from_secs(10));
    daemon.stop();
    let first_run = seqs(&sub);
    assert!(first_run.windows(2).all(|w| w[0] < w[1]), "{first_run:?}");

    let daemon = Running::start(&config, "run");
    sub.wait_count(&state_topic, first_run.len() + 5, Duration::from_secs(10));
    daemon.stop();
    let both = seqs(&sub);
    assert!(both.windows(2).all(|w| w[0] < w[1]), "{both:?}");
}

#[test]
fn two_daemons_with_one_client_id_say_what_to_change() {
    let broker = Broker::start();
    let first_dir = tempfile::tempdir().unwrap();
    let second_dir = tempfile::tempdir().unwrap();
    // Two boxes on one meter: the same meter id, so the same default client id.
    let first = Running::start(&simulated(first_dir.path(), broker.port), "run");
    let second = Running::start(&simulated(second_dir.path(), broker.port), "run");
    let deadline = Instant::now() + Duration::from_secs(40);
    let said = |d: &Running| d.said("another client most likely uses the same client id");
    while said(&first) + said(&second) == 0 {
        assert!(Instant::now() < deadline, "{:?}", first.stderr());
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(said(&first) <= 1 && said(&second) <= 1, "said once");
    let line = first
        .stderr()
        .into_iter()
        .chain(second.stderr())
        .find(|l| l.contains("same client id"))
        .unwrap();
    assert!(
        line.contains("mqtt.client_id") && line.contains(&format!("linkymon-{SIM_ID}")),
        "{line}"
    );
}

#[test]
fn retained_configs_this_run_does_not_announce_are_cleared_and_others_left() {
    let broker = Broker::start();
    let temp = tempfile::tempdir().unwrap();
    // An earlier run announced the relay contact (relay.gpio unset since) and the EJP
    // entities; another meter's config belongs to someone else.
    let relay = format!("homeassistant/binary_sensor/linky_{SIM_ID}/relay/config");
    let other = "homeassistant/sensor/linky_999999999999/papp/config";
    for topic in [relay.as_str(), other] {
        let status =
            mosquitto_pub_with(broker.port, &["-r", "-t", topic, "-m", "{\"name\":\"x\"}"]);
        assert!(status.success());
    }
    let daemon = Running::start(&simulated(temp.path(), broker.port), "run");
    daemon.wait_stderr("clearing the discovery configs", Duration::from_secs(10));
    std::thread::sleep(Duration::from_millis(500));
    let late = Subscriber::start(broker.port, &["homeassistant/#"]);
    std::thread::sleep(Duration::from_millis(500));
    let lines = late.lines();
    assert!(
        !lines.iter().any(|l| l.starts_with(&format!("{relay} "))),
        "{lines:?}"
    );
    assert!(
        lines.iter().any(|l| l.starts_with(other)),
        "another meter's config stays"
    );
    assert!(
        lines
            .iter()
            .any(|l| l.contains(&format!("linky_{SIM_ID}/ejp/config "))),
        "what this run announces stays"
    );
}

/// A historic EJP frame of meter `adco` with index `hn`.
fn ejp_frame(adco: &str, hn: u64) -> Vec<u8> {
    let hn = format!("{hn:09}");
    linkymon::tic::encode_frame(
        linkymon::tic::Mode::Historic,
        [
            ("ADCO", None, adco),
            ("OPTARIF", None, "EJP."),
            ("ISOUSC", None, "45"),
            ("EJPHN", None, hn.as_str()),
            ("EJPHPM", None, "000080072"),
            ("PTEC", None, "HN.."),
            ("IINST", None, "005"),
            ("IMAX", None, "090"),
            ("PAPP", None, "01150"),
            ("HHPHC", None, "A"),
            ("MOTDETAT", None, "000000"),
        ],
    )
}

#[test]
fn a_new_meter_id_on_the_line_is_a_new_meter_and_the_old_one_goes_offline() {
    const OLD: &str = "021728123456";
    const NEW: &str = "031961234567";
    let broker = Broker::start();
    let temp = tempfile::tempdir().unwrap();
    let mut capture = Vec::new();
    for i in 0..5 {
        capture.extend(ejp_frame(OLD, 688_322 + i));
    }
    // Enedis replaced the meter: the new one's index starts low, no glitch of the old one's.
    for i in 0..5 {
        capture.extend(ejp_frame(NEW, 1_000 + i));
    }
    let path = temp.path().join("swap.tic");
    std::fs::write(&path, capture).unwrap();
    let config = write_config(
        temp.path(),
        broker.port,
        &format!(
            "meter:\n  port: replay:{}\n  replay_speed: 0\n  mode: historic\npublish:\n  interval: 0\n",
            path.display()
        ),
    );
    let sub = Subscriber::start(broker.port, &["linky/#"]);
    let mut daemon = Running::start(&config, "run");
    assert!(daemon.wait(Duration::from_secs(30)).success());
    let new_states = sub.wait_count(&format!("linky/{NEW}/state"), 5, Duration::from_secs(5));
    let indexes: Vec<u64> = new_states
        .iter()
        .map(|p| {
            serde_json::from_str::<Value>(p).unwrap()["values"]["EJPHN"]
                .as_u64()
                .unwrap()
        })
        .collect();
    assert_eq!(
        indexes,
        [1000, 1001, 1002, 1003, 1004],
        "the new meter's own indexes"
    );
    assert!(
        sub.payloads(&format!("linky/{NEW}/availability"))
            .contains(&"online".to_owned())
    );
    let late = Subscriber::start(broker.port, &[&format!("linky/{OLD}/availability")]);
    late.wait_for("the old meter offline", Duration::from_secs(3), |l| {
        l.ends_with(" offline")
    });
    assert_eq!(sub.payloads(&format!("linky/{OLD}/state")).len(), 5);
}
