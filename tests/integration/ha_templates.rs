//! Home Assistant's templates, rendered for real: every template of every discovery config
//! goes through Jinja2 (`tests/ha_templates.py`, the engine Home Assistant uses) against the
//! messages its entity reads, and each result must be a state of the entity's kind. Comparing
//! configs as text let `value_json.values.DATE_ts` (the dict's `values` method, so always
//! unknown) through; this does not.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::support::{Broker, Subscriber, fixtures_dir, linkymon, require, root, write_config};

/// What a replay of a few frames as fast as they are read may not publish: `power` needs the
/// indexes to move between two frames far enough apart (`diag` goes out at each connection).
/// The reference configs render it (`ha-discovery/states/`).
const SILENT_IN_A_REPLAY: &str = "power";

/// Runs the renderer on `case` (configs and messages); panics with its report on a failure.
pub(crate) fn render(dir: &Path, name: &str, case: &Value, silent_ok: Option<&str>) -> String {
    require("python3");
    let jinja = Command::new("python3")
        .args(["-c", "import jinja2"])
        .stderr(Stdio::null())
        .status()
        .unwrap();
    assert!(
        jinja.success(),
        "python3-jinja2 is not installed: run ./scripts/test.sh, which installs the test dependencies"
    );
    let path = dir.join(format!("{name}.json"));
    std::fs::write(&path, case.to_string()).unwrap();
    let mut cmd = Command::new("python3");
    cmd.arg(root().join("tests/ha_templates.py"));
    if let Some(pattern) = silent_ok {
        cmd.args(["--silent-ok", pattern]);
    }
    let out = cmd.arg(&path).output().unwrap();
    let report = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "{name}: templates that Home Assistant would not take:\n{report}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    report
}

#[test]
fn the_reference_configs_render_a_state_of_their_kind_from_the_reference_messages() {
    let dir = tempfile::tempdir().unwrap();
    let golden = root().join("ha-discovery");
    for file in [
        "historic-ejp.json",
        "historic-tempo.json",
        "standard-three-phase-producer.json",
    ] {
        let read = |path: &Path| -> Value {
            serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
        };
        let configs = read(&golden.join(file));
        let mut messages = read(&golden.join("states").join(file));
        // `next_change` cleared (no change before the end of tomorrow): unknown, no error.
        let cleared: Vec<Value> = configs
            .as_object()
            .unwrap()
            .values()
            .filter_map(|c| c["state_topic"].as_str())
            .filter(|t| t.ends_with("/next_change"))
            .map(|t| json!([t, ""]))
            .collect();
        messages.as_array_mut().unwrap().extend(cleared);
        let case = json!({ "configs": configs, "messages": messages });
        let report = render(dir.path(), file, &case, None);
        assert!(report.contains(" 0 failures"), "{report}");
    }
}

/// The renderer itself: templates that Home Assistant would show as unknown, or refuse,
/// fail it, each with a line naming the entity.
#[test]
fn the_renderer_fails_on_the_templates_home_assistant_would_not_take() {
    require("python3");
    let dir = tempfile::tempdir().unwrap();
    let state = json!({
        "values": { "DATE": "", "DATE_ts": "2024-06-12T14:30:15+02:00", "DPM1_ts": "2024-06-13T06:00:00" },
        "derived": { "tempo_today": "white", "tempo_tomorrow": null },
    })
    .to_string();
    let config = |object_id: &str, topic: &str, extra: Value| {
        let mut c = json!({ "state_topic": topic, "unique_id": object_id });
        c.as_object_mut()
            .unwrap()
            .extend(extra.as_object().unwrap().clone());
        (
            format!("homeassistant/sensor/linky_1/{object_id}/config"),
            c,
        )
    };
    let bad = [
        // The bug of issue 17: the dict's `values` method, so unknown while DATE_ts is there.
        config(
            "old_date",
            "linky/1/state",
            json!({
            "device_class": "timestamp",
            "value_template": "{{ value_json.values.DATE_ts | default('None') }}" }),
        ),
        // A season-less horodate passed on as is: no time zone.
        config(
            "naive",
            "linky/1/state",
            json!({
            "device_class": "timestamp",
            "value_template": "{{ value_json['values']['DPM1_ts'] }}" }),
        ),
        config(
            "text_power",
            "linky/1/PAPP",
            json!({
            "unit_of_measurement": "VA", "value_template": "{{ value }} VA" }),
        ),
        config(
            "colour",
            "linky/1/state",
            json!({
            "device_class": "enum", "options": ["blue", "white", "red"],
            "value_template": "{{ value_json.derived.tempo_today | upper }}" }),
        ),
        config(
            "undefined",
            "linky/1/PAPP",
            json!({
            "value_template": "{{ value_jsn }}" }),
        ),
        config(
            "unknown_filter",
            "linky/1/PAPP",
            json!({
            "value_template": "{{ value | timestamp_custom('%H') }}" }),
        ),
        // An availability topic nothing publishes: unavailable for ever.
        config(
            "silent_line",
            "linky/1/PAPP",
            json!({
            "availability": [{ "topic": "linky/1/line", "payload_available": "ON", "payload_not_available": "OFF" }],
            "availability_mode": "all" }),
        ),
    ];
    let good = [
        config(
            "date",
            "linky/1/state",
            json!({
            "device_class": "timestamp",
            "value_template": "{% set t = as_datetime(value_json['values'].get('DPM1_ts'), None) %}{{ as_local(t).isoformat() if t else 'None' }}" }),
        ),
        config(
            "tomorrow",
            "linky/1/state",
            json!({
            "device_class": "enum", "options": ["blue", "white", "red"],
            "value_template": "{{ value_json.derived.tempo_tomorrow | default('None') }}" }),
        ),
        config(
            "pref",
            "linky/1/PAPP",
            json!({
            "unit_of_measurement": "VA", "value_template": "{{ value | int * 1000 }}" }),
        ),
    ];
    let case = |configs: &[(String, Value)]| {
        let configs: serde_json::Map<String, Value> = configs.iter().cloned().collect();
        json!({
            "configs": configs,
            "messages": [["linky/1/state", state], ["linky/1/PAPP", "01450"]],
        })
    };
    render(dir.path(), "good", &case(&good), None);
    let path = dir.path().join("bad.json");
    std::fs::write(&path, case(&bad).to_string()).unwrap();
    let out = Command::new("python3")
        .arg(root().join("tests/ha_templates.py"))
        .arg(&path)
        .output()
        .unwrap();
    let report = String::from_utf8_lossy(&out.stdout);
    assert!(!out.status.success(), "{report}");
    for (topic, _) in &bad {
        let object_id = topic.split('/').nth(3).unwrap();
        assert!(
            report
                .lines()
                .any(|l| l.trim_start().starts_with(&format!("{object_id} "))),
            "{object_id} passed:\n{report}"
        );
    }
}

/// Every line `sub` has, once no new one came for half a second.
fn settled_lines(sub: &Subscriber, timeout: Duration) -> Vec<String> {
    let deadline = Instant::now() + timeout;
    let mut seen = sub.lines().len();
    loop {
        std::thread::sleep(Duration::from_millis(500));
        let now = sub.lines().len();
        if now == seen && now > 0 || Instant::now() > deadline {
            return sub.lines();
        }
        seen = now;
    }
}

/// Replays `capture` through `linkymon run` against a real mosquitto and renders what Home
/// Assistant would have received: the retained configs and every message of the run.
fn replay_and_render(capture: &str) -> String {
    let broker = Broker::start();
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(
        dir.path(),
        broker.port,
        &format!(
            "meter:\n  port: replay:{}\n  replay_speed: 0\npublish:\n  interval: 0\n",
            fixtures_dir().join(capture).display()
        ),
    );
    let live = Subscriber::start(broker.port, &["linky/#"]);
    let status = linkymon(&config, &["run"])
        .stderr(Stdio::null())
        .status()
        .unwrap();
    assert!(status.success(), "{capture}: {status}");
    live.wait_for("offline at the end", Duration::from_secs(5), |l| {
        l.ends_with("/availability offline")
    });
    let retained = Subscriber::start(broker.port, &["homeassistant/#"]);
    let split = |l: &String| {
        let (topic, payload) = l.split_once(' ').unwrap_or((l, ""));
        (topic.to_owned(), payload.to_owned())
    };
    let configs: serde_json::Map<String, Value> = settled_lines(&retained, Duration::from_secs(5))
        .iter()
        .map(split)
        .map(|(t, p)| (t, Value::String(p)))
        .collect();
    assert!(configs.len() > 10, "{capture}: {} configs", configs.len());
    let messages: Vec<(String, String)> = settled_lines(&live, Duration::from_secs(5))
        .iter()
        .map(split)
        .collect();
    assert!(
        messages.iter().any(|(t, _)| t.ends_with("/state")),
        "{capture}: no state"
    );
    assert_line_availability(&configs);
    let case = json!({ "configs": configs, "messages": messages });
    render(dir.path(), capture, &case, Some(SILENT_IN_A_REPLAY))
}

/// What a daemon announced: the meter's values go unavailable when `<id>/availability` says
/// `offline` or `<id>/line` says `OFF`; the line's own entity, a `connectivity` diagnostic,
/// only follows `<id>/availability`, so it stays visible while the line is silent.
fn assert_line_availability(configs: &serde_json::Map<String, Value>) {
    let parsed: Vec<(&String, Value)> = configs
        .iter()
        .map(|(t, p)| (t, serde_json::from_str(p.as_str().unwrap()).unwrap()))
        .collect();
    let (_, line) = parsed
        .iter()
        .find(|(t, _)| t.starts_with("homeassistant/binary_sensor/") && t.ends_with("/line/config"))
        .expect("no line binary_sensor");
    let line_topic = line["state_topic"].as_str().unwrap();
    let availability = line_topic.replace("/line", "/availability");
    assert_eq!(line["device_class"], "connectivity", "{line}");
    assert_eq!(line["entity_category"], "diagnostic", "{line}");
    assert_eq!(line["availability_topic"], availability.as_str(), "{line}");
    assert!(line.get("availability").is_none(), "{line}");
    let both = json!([
        { "topic": availability, "payload_available": "online", "payload_not_available": "offline" },
        { "topic": line_topic, "payload_available": "ON", "payload_not_available": "OFF" },
    ]);
    // Every sensor but the daemon's own counters (`diag`) shows the meter's values.
    let diag = line_topic.replace("/line", "/diag");
    let values: Vec<&(&String, Value)> = parsed
        .iter()
        .filter(|(t, c)| {
            t.starts_with("homeassistant/sensor/") && c["state_topic"] != diag.as_str()
        })
        .collect();
    assert!(values.len() > 5, "{} value entities", values.len());
    for (topic, c) in values {
        assert_eq!(c["availability"], both, "{topic}");
        assert_eq!(c["availability_mode"], "all", "{topic}");
        assert!(c.get("availability_topic").is_none(), "{topic}");
    }
}

#[test]
fn a_standard_three_phase_tempo_replay_renders_in_jinja() {
    let report = replay_and_render("std-3p-tempo-teleinfo-nom-complete.tic");
    assert!(report.contains(" 0 failures"), "{report}");
}

#[test]
fn a_standard_producer_replay_renders_in_jinja() {
    let report = replay_and_render("std-1p-prod-hc-teleinfo2mqtt.tic");
    assert!(report.contains(" 0 failures"), "{report}");
}

#[test]
fn a_historic_tempo_replay_renders_in_jinja() {
    let report = replay_and_render("hist-1p-tempo-pyteleinfo.tic");
    assert!(report.contains(" 0 failures"), "{report}");
}
