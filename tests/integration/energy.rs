//! Energy named by meaning (issue 19): a meter that Enedis switches from historic to standard
//! mode keeps its energy topics and Home Assistant entities, and their values go on; the next
//! tariff change is published from a standard capture. A replay file through `linkymon run`
//! and a real mosquitto.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use linkymon::tic::{Mode, encode_frame};
use serde_json::Value;

use crate::support::{Broker, Running, Subscriber, corpus_dir, write_config};

const ID: &str = "021728123456";

/// A historic EJP frame (the shape of corpus `hist-3p-ejp-openhab-anon.txt`, single-phase).
fn historic(hn: i64, pm: i64, peak: bool) -> Vec<u8> {
    let (hn, pm) = (format!("{hn:09}"), format!("{pm:09}"));
    let ptec = if peak { "PM.." } else { "HN.." };
    encode_frame(
        Mode::Historic,
        [
            ("ADCO", None, ID),
            ("OPTARIF", None, "EJP."),
            ("ISOUSC", None, "45"),
            ("EJPHN", None, hn.as_str()),
            ("EJPHPM", None, pm.as_str()),
            ("PTEC", None, ptec),
            ("IINST", None, "007"),
            ("IMAX", None, "090"),
            ("PAPP", None, "01450"),
            ("MOTDETAT", None, "000000"),
        ],
    )
}

/// The same meter in standard mode with an EJP offer: normal hours on supplier index 1, peak
/// hours on 2 (STGE bits 30–31 say the peak is on, bits 10–13 the index). While the peak is
/// on, `DPM1`/`FPM1` give its start and end. The other labels are those of corpus
/// `std-1p-base-ticdecodecpp.tic`.
fn standard(second: u32, hn: i64, pm: i64, peak: bool) -> Vec<u8> {
    let date = format!("H26120210{:02}{:02}", 15 + second / 60, second % 60);
    let east = format!("{:09}", hn + pm);
    let (hn, pm) = (format!("{hn:09}"), format!("{pm:09}"));
    let (ltarf, ntarf, stge) = if peak {
        ("  POINTE MOBILE ", "02", "403A0401")
    } else {
        ("HEURES NORMALES ", "01", "003A0001")
    };
    let zero = "000000000";
    let mut groups: Vec<(&str, Option<&str>, &str)> = vec![
        ("ADSC", None, ID),
        ("VTIC", None, "02"),
        ("DATE", Some(date.as_str()), ""),
        ("NGTF", None, "      EJP       "),
        ("LTARF", None, ltarf),
        ("EAST", None, east.as_str()),
        ("EASF01", None, hn.as_str()),
        ("EASF02", None, pm.as_str()),
    ];
    for label in [
        "EASF03", "EASF04", "EASF05", "EASF06", "EASF07", "EASF08", "EASF09", "EASF10", "EASD01",
        "EASD02", "EASD03", "EASD04",
    ] {
        groups.push((label, None, zero));
    }
    groups.extend([
        ("IRMS1", None, "007"),
        ("URMS1", None, "231"),
        ("PREF", None, "09"),
        ("PCOUP", None, "09"),
        ("SINSTS", None, "01450"),
        ("STGE", None, stge),
    ]);
    if peak {
        groups.extend([
            ("DPM1", Some(" 261202070000"), "00"),
            ("FPM1", Some(" 261203010000"), "00"),
        ]);
    }
    groups.extend([
        ("MSG1", None, "PAS DE          MESSAGE         "),
        ("PRM", None, "12345678901234"),
        ("RELAIS", None, "000"),
        ("NTARF", None, ntarf),
        ("NJOURF", None, "00"),
        ("NJOURF+1", None, "00"),
        (
            "PJOURF+1",
            None,
            "00004001 NONUTILE NONUTILE NONUTILE NONUTILE NONUTILE NONUTILE NONUTILE NONUTILE \
             NONUTILE NONUTILE",
        ),
    ]);
    encode_frame(Mode::Standard, groups)
}

/// Historic normal hours, then a historic peak; Enedis switches the meter to standard mode
/// during the peak, which goes on, then ends. Each frame adds 2 Wh to the index in use.
fn write_switch_capture(dir: &Path) -> PathBuf {
    let (mut hn, mut pm) = (688_322, 80_072);
    let mut bytes = Vec::new();
    for _ in 0..6 {
        bytes.extend(historic(hn, pm, false));
        hn += 2;
    }
    for _ in 0..4 {
        bytes.extend(historic(hn, pm, true));
        pm += 2;
    }
    for s in 0..4 {
        bytes.extend(standard(s, hn, pm, true));
        pm += 2;
    }
    for s in 4..10 {
        bytes.extend(standard(s, hn, pm, false));
        hn += 2;
    }
    let path = dir.join("switch.tic");
    std::fs::write(&path, bytes).unwrap();
    path
}

/// Runs `capture` through `linkymon run` (every frame published) and returns the lines of a
/// subscriber to the meter's topics and of one to its discovery configs.
fn replay(dir: &Path, capture: &Path) -> (Vec<String>, Vec<String>, Broker) {
    let broker = Broker::start();
    let config = write_config(
        dir,
        broker.port,
        &format!(
            "meter:\n  port: replay:{}\n  replay_speed: 10\npublish:\n  interval: 0\n",
            capture.display()
        ),
    );
    let meter = Subscriber::start(broker.port, &["linky/#"]);
    let configs = Subscriber::start(broker.port, &["homeassistant/+/+/+/config"]);
    let mut daemon = Running::start(&config, "run");
    let status = daemon.wait(Duration::from_secs(60));
    assert!(status.success(), "{status}: {:?}", daemon.stderr());
    meter.wait_for("offline", Duration::from_secs(5), |l| {
        l.ends_with("/availability offline")
    });
    std::thread::sleep(Duration::from_millis(300));
    (meter.lines(), configs.lines(), broker)
}

/// `(topic leaf, payload)` of the lines under `linky/<id>/` (not the bridge's status).
fn leaves(lines: &[String]) -> Vec<(String, String)> {
    lines
        .iter()
        .filter_map(|l| l.strip_prefix("linky/"))
        .filter(|l| !l.starts_with("bridge/"))
        .filter_map(|l| l.split_once('/').map(|(_, rest)| rest))
        .filter_map(|l| l.split_once(' ').or(Some((l, ""))))
        .map(|(t, p)| (t.to_owned(), p.replace("(null)", "")))
        .collect()
}

fn numbers(leaves: &[(String, String)], leaf: &str) -> Vec<i64> {
    leaves
        .iter()
        .filter(|(t, _)| t == leaf)
        .map(|(_, p)| p.parse().unwrap())
        .collect()
}

#[test]
fn a_meter_switched_from_historic_to_standard_keeps_its_energy_entities_and_values() {
    let temp = tempfile::tempdir().unwrap();
    let dir = temp.path();
    let capture = write_switch_capture(dir);
    let (lines, config_lines, broker) = replay(dir, &capture);
    let leaves = leaves(&lines);

    // The key output: the energy topics in the order published, with the mode switch.
    println!("--- energy topics across the switch (linky/{ID}/…) ---");
    let mut mode = String::new();
    for (leaf, payload) in &leaves {
        if leaf == "state" {
            let state: Value = serde_json::from_str(payload).unwrap();
            let now = state["mode"].as_str().unwrap().to_owned();
            if now != mode {
                println!("== mode {now} ==");
                mode = now;
            }
        } else if leaf.starts_with("energy") || leaf == "next_change" {
            println!("{leaf} {payload}");
        }
    }

    // Nothing held as a glitch: every state of each mode carries its indexes.
    let states: Vec<Value> = leaves
        .iter()
        .filter(|(t, _)| t == "state")
        .map(|(_, p)| serde_json::from_str(p).unwrap())
        .collect();
    let modes: Vec<&str> = states.iter().map(|s| s["mode"].as_str().unwrap()).collect();
    assert_eq!(modes.iter().filter(|m| **m == "historic").count(), 10);
    assert_eq!(modes.iter().filter(|m| **m == "standard").count(), 10);
    for s in &states {
        let indexes: &[&str] = match s["mode"].as_str().unwrap() {
            "historic" => &["EJPHN", "EJPHPM"],
            _ => &["EAST", "EASF01", "EASF02"],
        };
        for label in indexes {
            assert!(s["values"][label].is_i64(), "{label} held: {s}");
        }
        assert!(s["derived"]["energy_import_wh"].is_i64(), "{s}");
    }

    // The values go on, by 2 Wh a frame, through the switch.
    // (The frames read before the first connection publish only their last values.)
    let import = numbers(&leaves, "energy_import");
    assert!(import.windows(2).all(|w| w[1] - w[0] == 2), "{import:?}");
    assert_eq!(import.last(), Some(&(768_394 + 2 * 19)));
    let last_historic = 768_394 + 2 * 9;
    assert!(import.contains(&last_historic) && import.contains(&(last_historic + 2)));
    // Each index by 2 Wh a frame while in use, the historic last and the standard first
    // in a row: hn 688334 (historic) then 688336 (EASF01), pm 80078 (historic) then 80080
    // (EASF02).
    for (leaf, last, switch) in [
        ("energy/hn", 688_322 + 2 * 11, 688_334),
        ("energy/pm", 80_072 + 2 * 8, 80_078),
    ] {
        let values = numbers(&leaves, leaf);
        assert!(
            values.windows(2).all(|w| w[1] - w[0] == 2),
            "{leaf} {values:?}"
        );
        assert_eq!(values.last(), Some(&last), "{leaf}");
        assert!(
            values.contains(&switch) && values.contains(&(switch + 2)),
            "{leaf} {values:?}"
        );
    }
    assert!(numbers(&leaves, "energy_export").is_empty(), "no EAIT");

    // The next change: the end of the peak while it is on, then none (cleared).
    let next: Vec<&str> = leaves
        .iter()
        .filter(|(t, _)| t == "next_change")
        .map(|(_, p)| p.as_str())
        .collect();
    assert_eq!(
        next,
        [r#"{"at":"2026-12-03T01:00:00+01:00","period":"hn"}"#, ""]
    );

    // Home Assistant: the energy entities keep their unique ids and topics; re-announced
    // with the standard device model, never removed.
    let mut energy: BTreeMap<String, Vec<Value>> = BTreeMap::new();
    for line in &config_lines {
        let (topic, payload) = line.split_once(' ').unwrap_or((line, ""));
        if topic.contains("/energy_") {
            let payload = serde_json::from_str(payload).unwrap_or(Value::Null);
            energy.entry(topic.to_owned()).or_default().push(payload);
        }
    }
    println!("--- energy entities ---");
    for (topic, payloads) in &energy {
        for p in payloads {
            println!(
                "{topic}: unique_id {} state_topic {} model {}",
                p["unique_id"], p["state_topic"], p["device"]["model"]
            );
        }
    }
    let object_ids: Vec<&str> = energy
        .keys()
        .map(|t| t.split('/').nth(3).unwrap())
        .collect();
    assert_eq!(object_ids, ["energy_hn", "energy_import", "energy_pm"]);
    for (topic, payloads) in &energy {
        let object_id = topic.split('/').nth(3).unwrap();
        for p in payloads {
            assert_eq!(p["unique_id"], format!("linky_{ID}_{object_id}"), "{p}");
            assert_eq!(
                p["default_entity_id"],
                format!("sensor.linky_{ID}_{object_id}")
            );
            assert_eq!(p["state_class"], "total_increasing");
        }
        let models: Vec<&str> = payloads
            .iter()
            .map(|p| p["device"]["model"].as_str().unwrap())
            .collect();
        assert_eq!(
            models,
            ["Linky historic EJP", "Linky standard EJP"],
            "{topic}"
        );
    }

    // What was learnt is kept for the next run: index 1 counts HN, 2 PM.
    let learnt = std::fs::read_to_string(dir.join("spool/learnt.json")).unwrap();
    let learnt: Value = serde_json::from_str(&learnt).unwrap();
    assert_eq!(learnt[0]["meter"], ID);
    assert_eq!(
        learnt[0]["indexes"],
        serde_json::json!({"1": "hn", "2": "pm"})
    );

    // A late subscriber gets the last values.
    let late = Subscriber::start(broker.port, &[&format!("linky/{ID}/energy/+")]);
    late.wait_for("the retained energy/pm", Duration::from_secs(5), |l| {
        l == format!("linky/{ID}/energy/pm {}", 80_072 + 2 * 8)
    });
    drop(late);

    // A restart in normal hours, standard mode only: the peak hours' index is known from
    // learnt.json at once, so energy/pm and its entity are there from the first frame.
    let mut bytes = Vec::new();
    for s in 0..4 {
        bytes.extend(standard(s, 688_346 + 2 * i64::from(s), 80_088, false));
    }
    let restart = dir.join("restart.tic");
    std::fs::write(&restart, bytes).unwrap();
    let (lines, config_lines, _broker) = replay(dir, &restart);
    let leaves = self::leaves(&lines);
    println!("--- after a restart ---");
    for (leaf, payload) in leaves.iter().filter(|(l, _)| l.starts_with("energy")) {
        println!("{leaf} {payload}");
    }
    assert_eq!(numbers(&leaves, "energy/pm"), [80_088]);
    assert!(
        config_lines.iter().any(|l| l.starts_with(&format!(
            "homeassistant/sensor/linky_{ID}/energy_pm/config {{"
        ))),
        "{config_lines:#?}"
    );
}

#[test]
fn the_next_change_is_published_from_a_standard_capture() {
    let temp = tempfile::tempdir().unwrap();
    let capture = corpus_dir().join("std-1p-prod-hc-teleinfo2mqtt.tic");
    let (lines, config_lines, _broker) = replay(temp.path(), &capture);
    let leaves = leaves(&lines);
    let next: Vec<&str> = leaves
        .iter()
        .filter(|(t, _)| t == "next_change")
        .map(|(_, p)| p.as_str())
        .collect();
    println!("next_change: {next:?}");
    // 13:43 in peak hours; PJOURF+1 (today's profile too: NJOURF = NJOURF+1) starts the
    // afternoon off-peak hours at 14:40.
    assert_eq!(
        next,
        [r#"{"at":"2025-03-07T14:40:00+01:00","period":"hc"}"#]
    );
    assert!(
        config_lines.iter().any(|l| l.starts_with(&format!(
            "homeassistant/sensor/linky_{}/next_change/config ",
            meter_of(&lines)
        ))),
        "{config_lines:#?}"
    );
}

/// The meter id of the first `state` line.
fn meter_of(lines: &[String]) -> String {
    let state = lines
        .iter()
        .filter(|l| !l.starts_with("linky/bridge/"))
        .find_map(|l| l.split_once("/state ").map(|(_, p)| p))
        .unwrap();
    let state: Value = serde_json::from_str(state).unwrap();
    state["meter"].as_str().unwrap().to_owned()
}
