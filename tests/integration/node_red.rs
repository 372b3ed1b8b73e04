//! `node-red/flow.json` in a real Node-RED 4 (installed by `./scripts/test.sh` into a cache
//! directory outside the repository), against a real mosquitto, a simulated meter and a
//! standard-mode replay from `linkymon run`, watched with `mosquitto_sub` as a user would.
//!
//! The flow runs as shipped, but for two things a user edits too: its broker node points at
//! the test's mosquitto, and its debug nodes also write to Node-RED's log (`console`), which is
//! how the test sees what the flow received. Its only action, `home/heater/set`, is read on
//! the broker.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::support::{
    Broker, Running, SIM_ID, Subscriber, fixtures_dir, free_port, linkymon, mosquitto_pub_with,
    require, root, write_config,
};

/// The standard-mode three-phase Tempo capture the test replays.
const STD_CAPTURE: &str = "std-3p-tempo-teleinfo-nom-complete.tic";

/// A meter that only the test publishes for: its `ejp` changes when the test says so.
const TEST_ID: &str = "021799999999";

const HEATER: &str = "home/heater/set";

/// Where `./scripts/test.sh` installs Node-RED (`npm install node-red@<pinned>`): a cache
/// directory outside the repository, shared by every checkout.
fn node_red_main() -> PathBuf {
    let cache = std::env::var_os("XDG_CACHE_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|home| Path::new(&home).join(".cache")))
        .expect("HOME is set");
    cache.join("linkymon-node-red/node_modules/node-red/red.js")
}

/// Node-RED running headless (no editor, no admin API) on a free loopback port, its log
/// collected line by line; killed on drop.
struct NodeRed {
    child: Child,
    log: Arc<Mutex<Vec<String>>>,
}

impl NodeRed {
    /// Fails in one line unless Node.js and Node-RED are installed.
    fn require() {
        require("node");
        let main = node_red_main();
        assert!(
            main.is_file(),
            "Node-RED is not installed ({}): run ./scripts/test.sh, which installs the test \
             dependencies",
            main.display()
        );
    }

    /// Starts Node-RED on `flow` (in `dir`, its user directory) and waits until its broker
    /// node is connected.
    fn start(dir: &Path, flow: &Path) -> Self {
        Self::require();
        let main = node_red_main();
        let settings = dir.join("settings.js");
        std::fs::write(
            &settings,
            format!(
                "module.exports = {{\n  uiHost: \"127.0.0.1\",\n  uiPort: {},\n  \
                 httpAdminRoot: false,\n  credentialSecret: false,\n  \
                 logging: {{ console: {{ level: \"info\", metrics: false, audit: false }} }},\n  \
                 diagnostics: {{ enabled: false }},\n}};\n",
                free_port()
            ),
        )
        .unwrap();
        let mut child = Command::new("node")
            .arg(&main)
            .arg("--settings")
            .arg(&settings)
            .arg("--userDir")
            .arg(dir)
            .arg(flow)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let log = Arc::new(Mutex::new(Vec::new()));
        let sink = log.clone();
        let stdout = child.stdout.take().unwrap();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                sink.lock().unwrap().push(line);
            }
        });
        let node_red = NodeRed { child, log };
        node_red.wait_log("Connected to broker", Duration::from_secs(20));
        node_red
    }

    /// The payloads the debug node named `name` logged, in order.
    fn debug(&self, name: &str) -> Vec<String> {
        let tag = format!("[debug:{name}] ");
        self.log
            .lock()
            .unwrap()
            .iter()
            .filter_map(|l| l.split_once(&tag).map(|(_, v)| v.to_owned()))
            .collect()
    }

    /// Waits until a line of its log contains `what`.
    fn wait_log(&self, what: &str, timeout: Duration) {
        let deadline = Instant::now() + timeout;
        while !self.log.lock().unwrap().iter().any(|l| l.contains(what)) {
            assert!(
                Instant::now() < deadline,
                "Node-RED did not log {what:?} within {timeout:?}: {:#?}",
                self.log.lock().unwrap()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Waits until the debug node `name` logged a payload satisfying `pred`.
    fn wait_debug(&self, name: &str, timeout: Duration, pred: impl Fn(&str) -> bool) -> String {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(found) = self.debug(name).into_iter().find(|v| pred(v)) {
                return found;
            }
            assert!(
                Instant::now() < deadline,
                "the flow's debug node {name:?} showed nothing expected within {timeout:?}: {:?}",
                self.debug(name)
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for NodeRed {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The shipped flow with its broker node pointed at `port` and its debug nodes also logging
/// to the console; nothing else changes (asserted).
fn flow_for(port: u16, dir: &Path) -> PathBuf {
    let shipped: Value =
        serde_json::from_str(&std::fs::read_to_string(root().join("node-red/flow.json")).unwrap())
            .unwrap();
    let mut flow = shipped.clone();
    let mut edited = 0;
    for node in flow.as_array_mut().unwrap() {
        match node["type"].as_str().unwrap() {
            "mqtt-broker" => {
                node["broker"] = "127.0.0.1".into();
                node["port"] = port.to_string().into();
                edited += 1;
            }
            "debug" => {
                node["console"] = true.into();
                edited += 1;
            }
            _ => {}
        }
    }
    assert_eq!(edited, 5, "one broker node and four debug nodes");
    let file = dir.join("flow.json");
    std::fs::write(&file, serde_json::to_string_pretty(&flow).unwrap()).unwrap();
    file
}

/// Publishes a retained `ejp` for the test's own meter.
fn publish_ejp(port: u16, payload: &str) {
    let topic = format!("linky/{TEST_ID}/ejp");
    let status = mosquitto_pub_with(port, &["-r", "-q", "1", "-t", &topic, "-m", payload]);
    assert!(
        status.success(),
        "mosquitto_pub {topic} {payload}: {status}"
    );
}

#[test]
fn the_node_red_flow_receives_both_modes_and_switches_the_heater_on_changes_only() {
    NodeRed::require();
    let started = Instant::now();
    let broker = Broker::start();
    let dir = tempfile::tempdir().unwrap();
    let watch = Subscriber::start(
        broker.port,
        &[
            HEATER,
            "linky/+/ejp",
            "linky/+/PAPP",
            "linky/+/SINSTS",
            "linky/+/state",
        ],
    );

    // Before Node-RED starts: the retained `ejp OFF` that used to switch the heater ON at
    // every start, from the test's meter and from the simulated meter. At simulate_speed 1
    // the simulated meter stays at 06:00 (its first frame's time) for the whole test, half an
    // hour before its notice: its `ejp` is OFF throughout (asserted at the end).
    publish_ejp(broker.port, "OFF");
    let sim_dir = dir.path().join("sim");
    std::fs::create_dir(&sim_dir).unwrap();
    let sim_config = write_config(
        &sim_dir,
        broker.port,
        "meter:\n  port: simulate\n  simulate_speed: 1\npublish:\n  interval: 0\n",
    );
    let _sim = Running::start(&sim_config, "run");
    let papp = format!("linky/{SIM_ID}/PAPP");
    watch.wait_for("the simulated meter's PAPP", Duration::from_secs(10), |l| {
        l.starts_with(&format!("{papp} "))
    });
    watch.wait_for("the simulated meter's ejp", Duration::from_secs(10), |l| {
        l.starts_with(&format!("linky/{SIM_ID}/ejp "))
    });

    let node_red_dir = dir.path().join("node-red");
    std::fs::create_dir(&node_red_dir).unwrap();
    let flow = flow_for(broker.port, &node_red_dir);
    let node_red = NodeRed::start(&node_red_dir, &flow);
    // It receives values: the simulated meter's apparent power, in kVA.
    let shown = node_red.wait_debug("power kVA", Duration::from_secs(10), |_| true);
    let shown_va = (shown.parse::<f64>().unwrap() * 1000.0).round() as i64;
    let published: Vec<i64> = watch
        .payloads(&papp)
        .iter()
        .map(|p| p.parse().unwrap())
        .collect();
    assert!(
        published.contains(&shown_va),
        "Node-RED showed {shown} kVA, linkymon published {published:?} VA"
    );

    // No action at start: the retained `ejp OFF` values are the reference, not news. Give the
    // flow time to have acted if it were going to (it acts within milliseconds: below).
    std::thread::sleep(Duration::from_secs(2));
    assert_eq!(
        watch.payloads(HEATER),
        Vec::<String>::new(),
        "the flow acted on the retained values at its start"
    );

    // A standard-mode three-phase Tempo meter, replayed: its SINSTS, its tariff period
    // (LTARF) and its Tempo colours (from `state`) reach the flow.
    let std_dir = dir.path().join("std");
    std::fs::create_dir(&std_dir).unwrap();
    let std_config = write_config(
        &std_dir,
        broker.port,
        &format!(
            "meter:\n  port: replay:{}\n  replay_speed: 0\npublish:\n  interval: 0\n",
            fixtures_dir().join(STD_CAPTURE).display()
        ),
    );
    let status = linkymon(&std_config, &["run"])
        .stderr(Stdio::null())
        .status()
        .unwrap();
    assert!(status.success(), "the standard-mode replay: {status}");
    let sinsts = watch.wait_for("the standard meter's SINSTS", Duration::from_secs(5), |l| {
        l.contains("/SINSTS ")
    });
    let (topic, va) = sinsts.split_once(' ').unwrap();
    let std_id = topic.split('/').nth(1).unwrap().to_owned();
    assert_ne!(std_id, SIM_ID);
    let kva = va.parse::<f64>().unwrap() / 1000.0;
    node_red.wait_debug("power kVA", Duration::from_secs(5), |v| {
        v.parse::<f64>().is_ok_and(|v| (v - kva).abs() < 1e-9)
    });
    let state = watch.wait_for("the standard meter's state", Duration::from_secs(5), |l| {
        l.starts_with(&format!("linky/{std_id}/state "))
    });
    let state: Value = serde_json::from_str(state.split_once(' ').unwrap().1).unwrap();
    let ltarf = state["values"]["LTARF"].as_str().expect("LTARF in state");
    node_red.wait_debug("tariff period", Duration::from_secs(5), |v| v == ltarf);
    let today = state["derived"]["tempo_today"]
        .as_str()
        .expect("a Tempo meter's colour today");
    node_red.wait_debug("Tempo", Duration::from_secs(5), |v| {
        v.starts_with(&format!("today {today}, tomorrow "))
    });

    // A peak starts, the same value again, the peak ends: the heater goes OFF, then ON, once
    // each.
    publish_ejp(broker.port, "ON");
    watch.wait_for("the heater switched off", Duration::from_secs(5), |l| {
        l == format!("{HEATER} OFF")
    });
    publish_ejp(broker.port, "ON");
    publish_ejp(broker.port, "OFF");
    watch.wait_for("the heater switched on", Duration::from_secs(5), |l| {
        l == format!("{HEATER} ON")
    });
    std::thread::sleep(Duration::from_secs(1));
    assert_eq!(watch.payloads(HEATER), ["OFF", "ON"]);

    // A restart of Node-RED (as a full redeploy does) during a peak: the retained `ejp ON` is
    // the reference again, and nothing is sent.
    publish_ejp(broker.port, "ON");
    watch.wait_for(
        "the heater switched off again",
        Duration::from_secs(5),
        |_| watch.payloads(HEATER).len() == 3,
    );
    drop(node_red);
    let node_red = NodeRed::start(&node_red_dir, &flow);
    node_red.wait_debug("power kVA", Duration::from_secs(10), |_| true);
    std::thread::sleep(Duration::from_secs(2));
    assert_eq!(
        watch.payloads(HEATER),
        ["OFF", "ON", "OFF"],
        "Node-RED's restart switched the heater"
    );

    // The simulated and the standard meters never changed their `ejp`: every action above
    // came from the test's meter.
    for line in watch.lines().iter().filter(|l| l.contains("/ejp ")) {
        assert!(line.contains(TEST_ID) || line.ends_with(" OFF"), "{line}");
    }
    assert!(
        started.elapsed() < Duration::from_secs(60),
        "the test took {:?}",
        started.elapsed()
    );
}
