use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;

use serde_json::Value;

use super::*;

// ---------------------------------------------------------------------------------------------
// Reference meters, built from frames the way the daemon sees them.

use crate::testing::{historic, reading as read};

/// Single-phase EJP, during a peak notice (PEJP is only sent then).
fn historic_ejp() -> Reading {
    historic(&[
        ("ADCO", "021728123456"),
        ("OPTARIF", "EJP."),
        ("ISOUSC", "45"),
        ("EJPHN", "000688322"),
        ("EJPHPM", "000080072"),
        ("PEJP", "30"),
        ("PTEC", "HN.."),
        ("IINST", "007"),
        ("IMAX", "090"),
        ("PAPP", "01450"),
        ("HHPHC", "A"),
        ("MOTDETAT", "000000"),
    ])
}

/// Single-phase Tempo, on the peak hours of a blue day.
fn historic_tempo() -> Reading {
    crate::testing::historic_tempo("HPJB", "BLEU", "001", "00120", "A")
}

/// Three-phase Tempo producer: the labels of the corpus capture
/// `std-3p-tempo-prod-openhab.txt`, with values of our own.
fn standard_three_phase_producer() -> Reading {
    let profile = "00004001 06004002 22004001 NONUTILE NONUTILE NONUTILE NONUTILE NONUTILE \
                   NONUTILE NONUTILE NONUTILE";
    read(
        Mode::Standard,
        &[
            ("ADSC", None, "123456789012"),
            ("VTIC", None, "02"),
            ("DATE", Some("H240612143015"), ""),
            ("NGTF", None, "     TEMPO      "),
            ("LTARF", None, "    HP  BLEU    "),
            ("EAST", None, "012345678"),
            ("EASF01", None, "003456789"),
            ("EASF02", None, "006123456"),
            ("EASF03", None, "000712345"),
            ("EASF04", None, "001234567"),
            ("EASF05", None, "000398765"),
            ("EASF06", None, "000419756"),
            ("EASF07", None, "000000000"),
            ("EASF08", None, "000000000"),
            ("EASF09", None, "000000000"),
            ("EASF10", None, "000000000"),
            ("EASD01", None, "012345678"),
            ("EASD02", None, "000000000"),
            ("EASD03", None, "000000000"),
            ("EASD04", None, "000000000"),
            ("EAIT", None, "000812345"),
            ("ERQ1", None, "003012345"),
            ("ERQ2", None, "000198765"),
            ("ERQ3", None, "000091234"),
            ("ERQ4", None, "000801234"),
            ("IRMS1", None, "004"),
            ("IRMS2", None, "002"),
            ("IRMS3", None, "001"),
            ("URMS1", None, "233"),
            ("URMS2", None, "236"),
            ("URMS3", None, "238"),
            ("PREF", None, "12"),
            ("PCOUP", None, "12"),
            ("SINSTS", None, "01150"),
            ("SINSTS1", None, "00870"),
            ("SINSTS2", None, "00190"),
            ("SINSTS3", None, "00090"),
            ("SMAXSN", Some("H240612071532"), "03120"),
            ("SMAXSN1", Some("H240612071532"), "01980"),
            ("SMAXSN2", Some("H240612064410"), "00710"),
            ("SMAXSN3", Some("H240612080105"), "00560"),
            ("SMAXSN-1", Some("H240611192010"), "05840"),
            ("SMAXSN1-1", Some("H240611192010"), "03010"),
            ("SMAXSN2-1", Some("H240611125503"), "01620"),
            ("SMAXSN3-1", Some("H240611192240"), "01480"),
            ("SINSTI", None, "00000"),
            ("SMAXIN", Some("H240612123005"), "02210"),
            ("SMAXIN-1", Some("H240611131540"), "03470"),
            ("CCASN", Some("H240612143000"), "01080"),
            ("CCASN-1", Some("H240612140000"), "00990"),
            ("CCAIN", Some("H240612143000"), "00000"),
            ("CCAIN-1", Some("H240612140000"), "00120"),
            ("UMOY1", Some("H240612143000"), "232"),
            ("UMOY2", Some("H240612143000"), "235"),
            ("UMOY3", Some("H240612143000"), "237"),
            ("STGE", None, "013A0501"),
            ("MSG1", None, "PAS DE          MESSAGE         "),
            ("PRM", None, "12345678901234"),
            ("RELAIS", None, "000"),
            ("NTARF", None, "02"),
            ("NJOURF", None, "00"),
            ("NJOURF+1", None, "00"),
            ("PJOURF+1", None, profile),
        ],
    )
}

fn historic_base() -> Reading {
    historic(&[
        ("ADCO", "021728654321"),
        ("OPTARIF", "BASE"),
        ("ISOUSC", "30"),
        ("BASE", "002345678"),
        ("PTEC", "TH.."),
        ("IINST", "003"),
        ("IMAX", "090"),
        ("PAPP", "00650"),
        ("HHPHC", "A"),
        ("MOTDETAT", "000000"),
    ])
}

fn ctx() -> Context {
    Context::new("linky", "homeassistant")
}

fn messages(r: &Reading) -> Vec<Message> {
    let labels = r.entries.iter().map(|e| &*e.label);
    let id = r
        .meter
        .as_deref()
        .expect("the reference frames carry their id");
    let contract = Contract::from_reading(r);
    let mut configs = config_messages(id, r.mode, &contract, labels, &ctx());
    configs.extend(energy_config_messages(
        id,
        r.mode,
        &contract,
        energy_leaves(r),
        &ctx(),
    ));
    configs
}

/// Topic → parsed payload.
fn configs(r: &Reading) -> BTreeMap<String, Value> {
    messages(r)
        .into_iter()
        .map(|m| (m.topic, serde_json::from_str(&m.payload).unwrap()))
        .collect()
}

fn reference_meters() -> [(&'static str, Reading); 3] {
    [
        ("historic-ejp.json", historic_ejp()),
        ("historic-tempo.json", historic_tempo()),
        (
            "standard-three-phase-producer.json",
            standard_three_phase_producer(),
        ),
    ]
}

fn all_configs() -> Vec<Value> {
    reference_meters()
        .iter()
        .chain([("", historic_base())].iter())
        .flat_map(|(_, r)| configs(r).into_values())
        .collect()
}

fn object_ids(r: &Reading, component: &str) -> BTreeSet<String> {
    configs(r)
        .keys()
        .filter_map(|t| t.strip_prefix(&format!("homeassistant/{component}/")))
        .map(|rest| rest.split('/').nth(1).unwrap().to_owned())
        .collect()
}

// ---------------------------------------------------------------------------------------------
// Golden files: what users read in ha-discovery/.

/// What the daemon publishes for one frame of a reference meter, in order, as
/// `[topic, payload]` pairs: `ha-discovery/states/` holds them, so that `tests/ha_templates.py`
/// can render the reference configs against the states they read. They end with the empty
/// retained payloads that clear every label once it has left the frames, so that each label
/// entity is also rendered for a label gone (unknown, not an error or a stale value).
fn published(r: &Reading) -> Vec<(String, String)> {
    use crate::publish::policy::{ABSENT_FRAMES, Diag, Estimates, Policy};
    use crate::publish::topics::Topics;
    let topics = Topics::new("linky", r.meter.as_deref().unwrap());
    let mut policy = Policy::new(topics.clone(), 0.0);
    let frame = policy.on_reading(
        r,
        "2024-06-12T14:30:17+02:00",
        0.0,
        Estimates {
            power_w: Some(1380),
        },
    );
    let diag = policy.diag(&Diag {
        tic: Default::default(),
        meter: Default::default(),
        mode: r.mode.as_str(),
        uptime_s: 61,
        frames_not_published: 0,
        spool: Default::default(),
    });
    let mut gone = r.clone();
    gone.entries.clear();
    let cleared: Vec<Message> = (1..=ABSENT_FRAMES)
        .flat_map(|i| policy.on_reading(&gone, "T", i as f64, Estimates::default()))
        .filter(|m| m.payload.is_empty())
        .collect();
    assert!(!cleared.is_empty());
    let online = Message::new(topics.availability(), "online".to_owned(), true, 1);
    [online, crate::publish::line_message(&topics, true)]
        .into_iter()
        .chain(frame)
        .chain([diag])
        .chain(cleared)
        .map(|m| (m.topic, m.payload))
        .collect()
}

#[test]
fn reference_payloads_are_the_files_in_ha_discovery() {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("ha-discovery");
    let update = std::env::var_os("LINKYMON_UPDATE_GOLDEN").is_some_and(|v| v == "1");
    for (file, reading) in reference_meters() {
        let path = dir.join(file);
        let actual = configs(&reading);
        let states_path = dir.join("states").join(file);
        let states = serde_json::to_string_pretty(&published(&reading)).unwrap() + "\n";
        if update {
            std::fs::create_dir_all(dir.join("states")).unwrap();
            let text = serde_json::to_string_pretty(&actual).unwrap() + "\n";
            std::fs::write(&path, text).unwrap();
            std::fs::write(&states_path, states).unwrap();
            continue;
        }
        let expected_states = std::fs::read_to_string(&states_path).unwrap_or_default();
        assert!(
            expected_states == states,
            "{} is not what the daemon publishes for this meter; \
             LINKYMON_UPDATE_GOLDEN=1 rewrites it",
            states_path.display()
        );
        let text = std::fs::read_to_string(&path).unwrap_or_else(|e| {
            panic!(
                "{}: {e}; run with LINKYMON_UPDATE_GOLDEN=1 to create it",
                path.display()
            )
        });
        let expected: BTreeMap<String, Value> = serde_json::from_str(&text).unwrap();
        let topics: BTreeSet<&String> = actual.keys().chain(expected.keys()).collect();
        let first = topics
            .into_iter()
            .find(|t| actual.get(*t) != expected.get(*t));
        if let Some(topic) = first {
            panic!(
                "{} differs first at {topic}:\n{}LINKYMON_UPDATE_GOLDEN=1 rewrites the file",
                path.display(),
                difference(expected.get(topic), actual.get(topic)),
            );
        }
    }
}

/// The keys of a payload that differ, one line each, rather than two whole payloads.
fn difference(file: Option<&Value>, code: Option<&Value>) -> String {
    let (Some(Value::Object(file)), Some(Value::Object(code))) = (file, code) else {
        return format!("  file: {file:?}\n  code: {code:?}\n");
    };
    let keys: BTreeSet<&String> = file.keys().chain(code.keys()).collect();
    keys.into_iter()
        .filter(|k| file.get(*k) != code.get(*k))
        .map(|k| format!("  {k}: file {:?}, code {:?}\n", file.get(k), code.get(k)))
        .collect()
}

// ---------------------------------------------------------------------------------------------
// The rules.

#[test]
fn one_device_is_shared_by_every_entity() {
    let configs = configs(&historic_ejp());
    let device = &configs.values().next().unwrap()["device"];
    assert_eq!(device["identifiers"], json!(["linky_021728123456"]));
    assert_eq!(device["name"], "Linky 021728123456");
    assert_eq!(device["manufacturer"], "Enedis");
    assert_eq!(device["model"], "Linky historic EJP");
    assert_eq!(device["serial_number"], "021728123456");
    for (topic, config) in &configs {
        assert_eq!(&config["device"], device, "{topic}");
        assert_eq!(config["origin"]["name"], "linkymon", "{topic}");
        assert_eq!(
            config["origin"]["sw_version"],
            env!("CARGO_PKG_VERSION"),
            "{topic}"
        );
    }
}

#[test]
fn the_devices_software_version_is_the_meters_not_linkymons() {
    let historic = configs(&historic_ejp());
    let device = &historic.values().next().unwrap()["device"];
    assert!(
        device.get("sw_version").is_none(),
        "historic mode has no version: {device}"
    );
    let standard = configs(&standard_three_phase_producer());
    for config in standard.values() {
        assert_eq!(config["device"]["sw_version"], "02", "VTIC");
    }
    let contract = |vtic: &str| {
        let values = serde_json::from_value(json!({ "VTIC": vtic })).unwrap();
        Contract::from_state(&values, &json!({})).tic_version
    };
    assert_eq!(contract("02"), Some(2));
    assert_eq!(contract("xx"), None);
    assert_eq!(contract("123"), None);
}

#[test]
fn no_config_has_a_support_url() {
    for config in all_configs() {
        assert!(!config.to_string().contains("support_url"), "{config}");
    }
}

/// Every template reads JSON objects with brackets: in Jinja, `value_json.values` is the
/// dict's `values` method, not the key (`tests/ha_templates.py` renders them for real).
#[test]
fn no_template_reads_a_key_named_like_a_dict_method_with_a_dot() {
    let methods = ["values", "items", "keys", "get", "pop", "copy", "update"];
    for config in all_configs() {
        for (key, template) in config.as_object().unwrap() {
            let Some(template) = template.as_str().filter(|_| key.ends_with("template")) else {
                continue;
            };
            for m in methods {
                let dotted = format!(".{m}");
                for (i, _) in template.match_indices(&dotted) {
                    let after = template[i + dotted.len()..].chars().next();
                    assert!(after == Some('('), "{key} reads .{m} as a key: {template}");
                }
            }
        }
    }
}

#[test]
fn horodates_are_timestamps_read_with_brackets() {
    let configs = configs(&standard_three_phase_producer());
    let date = &configs["homeassistant/sensor/linky_123456789012/date/config"];
    assert_eq!(date["device_class"], "timestamp");
    assert!(date.get("unit_of_measurement").is_none());
    assert!(date.get("state_class").is_none());
    let contract = Contract::from_reading(&standard_three_phase_producer());
    let labels = ["DPM1", "FPM3"];
    for m in config_messages("1", Mode::Standard, &contract, labels, &ctx()) {
        let config: Value = serde_json::from_str(&m.payload).unwrap();
        let Some(label) = labels.iter().find(|l| m.topic.contains(&object_id(l))) else {
            continue;
        };
        assert_eq!(config["device_class"], "timestamp", "{label}");
        assert_eq!(config["state_topic"], "linky/1/state");
        assert!(
            config["value_template"]
                .as_str()
                .unwrap()
                .contains(&format!("value_json['values'].get('{label}_ts')")),
            "{config}"
        );
    }
}

#[test]
fn watts_volt_amperes_amperes_and_volts_are_shown_without_decimals() {
    for config in all_configs() {
        let unit = config.get("unit_of_measurement").and_then(Value::as_str);
        let precision = config.get("suggested_display_precision");
        if matches!(unit, Some("W" | "VA" | "A" | "V")) {
            assert_eq!(precision, Some(&json!(0)), "{config}");
        } else {
            assert_eq!(precision, None, "{config}");
        }
    }
}

#[test]
fn contract_constants_are_diagnostics_without_statistics() {
    let standard = configs(&standard_three_phase_producer());
    let historic = configs(&historic_ejp());
    let constants = [
        (&standard, "123456789012", "pref"),
        (&standard, "123456789012", "pcoup"),
        (&historic, "021728123456", "isousc"),
        (&historic, "021728123456", "imax"),
    ];
    for (configs, id, object_id) in constants {
        let config = &configs[&format!("homeassistant/sensor/linky_{id}/{object_id}/config")];
        assert_eq!(config["entity_category"], "diagnostic", "{object_id}");
        assert!(config.get("state_class").is_none(), "{object_id}");
        assert!(config["device_class"].is_string(), "{object_id}");
    }
    let iinst = &historic["homeassistant/sensor/linky_021728123456/iinst/config"];
    assert_eq!(iinst["state_class"], "measurement");
    assert!(iinst.get("entity_category").is_none());
}

#[test]
fn rarely_used_standard_labels_start_disabled() {
    let configs = configs(&standard_three_phase_producer());
    let enabled = |object_id: &str| {
        configs[&format!("homeassistant/sensor/linky_123456789012/{object_id}/config")]
            .get("enabled_by_default")
            .cloned()
    };
    let disabled = [
        "easd01",
        "easd04",
        "erq1",
        "erq4",
        "smaxsn_1",
        "smaxsn1_1",
        "smaxsn3_1",
        "smaxin_1",
        "ccasn_1",
        "ccain_1",
        "umoy1",
        "umoy3",
    ];
    for object_id in disabled {
        assert_eq!(enabled(object_id), Some(json!(false)), "{object_id}");
    }
    for object_id in [
        "east", "easf01", "eait", "sinsts", "smaxsn", "smaxsn1", "ccasn", "urms1",
    ] {
        assert_eq!(enabled(object_id), None, "{object_id}");
    }
}

#[test]
fn unique_ids_are_scoped_to_the_meter() {
    let ids = |r: &Reading| -> BTreeSet<String> {
        let configs = configs(r);
        let ids: BTreeSet<String> = configs
            .values()
            .map(|c| c["unique_id"].as_str().unwrap().to_owned())
            .collect();
        assert_eq!(ids.len(), configs.len(), "a unique_id is used twice");
        ids
    };
    let (ejp, tempo) = (ids(&historic_ejp()), ids(&historic_tempo()));
    assert!(ejp.iter().all(|id| id.starts_with("linky_021728123456_")));
    assert!(tempo.iter().all(|id| id.starts_with("linky_031961234567_")));
    assert!(ejp.is_disjoint(&tempo), "two meters share an entity");
}

#[test]
fn njourf_plus_one_gets_a_valid_object_id_and_topic() {
    let configs = configs(&standard_three_phase_producer());
    let config = &configs["homeassistant/sensor/linky_123456789012/njourf_1/config"];
    assert_eq!(config["state_topic"], "linky/123456789012/NJOURF_1");
    assert_eq!(config["unique_id"], "linky_123456789012_njourf_1");
    assert_eq!(
        config["default_entity_id"],
        "sensor.linky_123456789012_njourf_1"
    );
    let config = &configs["homeassistant/sensor/linky_123456789012/smaxsn1_1/config"];
    assert_eq!(config["state_topic"], "linky/123456789012/SMAXSN1-1");
    for topic in configs.keys() {
        let object_id = topic.split('/').nth(3).unwrap();
        assert!(
            object_id
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_'),
            "{topic}"
        );
    }
}

#[test]
fn only_labels_the_meter_sends_get_entities() {
    let reading = historic_ejp();
    let fixed = [
        "power",
        "injection",
        "frames_ok",
        "checksum_errors",
        "bytes_skipped",
        "uptime_s",
        "spool_backlog",
        "spool_bytes",
        "energy_import",
        "energy_hn",
        "energy_pm",
    ];
    let mut expected: BTreeSet<String> = reading
        .entries
        .iter()
        .map(|e| object_id(&e.label))
        .collect();
    expected.extend(fixed.map(String::from));
    assert_eq!(object_ids(&reading, "sensor"), expected);
}

#[test]
fn labels_outside_the_table_become_plain_diagnostics_when_their_name_fits_a_topic() {
    let contract = Contract::from_reading(&historic_ejp());
    let labels = ["ADCO", "TENSION", "BAD#", "ADCO"];
    let messages = config_messages("021728123456", Mode::Historic, &contract, labels, &ctx());
    let tension: Vec<_> = messages
        .iter()
        .filter(|m| m.topic.contains("/tension/"))
        .collect();
    assert_eq!(tension.len(), 1);
    let config: Value = serde_json::from_str(&tension[0].payload).unwrap();
    assert_eq!(config["name"], "TENSION");
    assert_eq!(config["entity_category"], "diagnostic");
    assert!(config.get("device_class").is_none());
    assert!(!messages.iter().any(|m| m.topic.contains("bad")));
    // A label named like a fixed entity does not take its place.
    let with_power = config_messages("1", Mode::Historic, &contract, ["POWER"], &ctx());
    let power: Vec<_> = with_power
        .iter()
        .filter(|m| m.topic.contains("/power/"))
        .collect();
    assert_eq!(power.len(), 1);
    assert!(
        power[0]
            .payload
            .contains("\"state_topic\":\"linky/1/power\"")
    );
    assert_eq!(
        messages
            .iter()
            .filter(|m| m.topic.contains("/adco/"))
            .count(),
        1
    );
}

#[test]
fn energy_indexes_are_total_increasing_wh() {
    for reading in [
        historic_ejp(),
        historic_tempo(),
        standard_three_phase_producer(),
    ] {
        let configs = configs(&reading);
        let indexes = reading
            .entries
            .iter()
            .filter(|e| labels::spec(&e.label).is_some_and(|s| s.unit == Some(Unit::Wh)));
        for entry in indexes {
            let id = reading.meter.as_deref().unwrap();
            let topic = format!(
                "homeassistant/sensor/linky_{id}/{}/config",
                object_id(&entry.label)
            );
            let config = &configs[&topic];
            assert_eq!(config["device_class"], "energy", "{topic}");
            assert_eq!(config["state_class"], "total_increasing", "{topic}");
            assert_eq!(config["unit_of_measurement"], "Wh", "{topic}");
        }
    }
}

#[test]
fn reactive_indexes_are_reactive_energy_in_varh() {
    let configs = configs(&standard_three_phase_producer());
    let config = &configs["homeassistant/sensor/linky_123456789012/erq1/config"];
    assert_eq!(config["device_class"], "reactive_energy");
    assert_eq!(config["unit_of_measurement"], "varh");
    assert_eq!(config["state_class"], "total_increasing");
}

#[test]
fn pref_is_published_in_va() {
    let configs = configs(&standard_three_phase_producer());
    for label in ["pref", "pcoup"] {
        let config = &configs[&format!("homeassistant/sensor/linky_123456789012/{label}/config")];
        assert_eq!(config["device_class"], "apparent_power");
        assert_eq!(config["unit_of_measurement"], "VA");
        assert_eq!(
            config["value_template"],
            "{{ value | int * 1000 if value != '' else None }}"
        );
    }
}

#[test]
fn ejp_binary_sensors_are_absent_on_a_base_contract() {
    let line = BTreeSet::from(["line".to_owned()]);
    assert_eq!(object_ids(&historic_base(), "binary_sensor"), line);
    assert_eq!(object_ids(&historic_tempo(), "binary_sensor"), line);
    assert_eq!(
        object_ids(&standard_three_phase_producer(), "binary_sensor"),
        line
    );
    let ejp = BTreeSet::from(["ejp".to_owned(), "ejp_notice".to_owned(), "line".to_owned()]);
    assert_eq!(object_ids(&historic_ejp(), "binary_sensor"), ejp);
    // Standard mode can signal a mobile peak on any contract but Tempo.
    let contract = Contract {
        tariff: Tariff::Base,
        three_phase: false,
        producer: false,
        tic_version: None,
    };
    let binary = config_messages("1", Mode::Standard, &contract, ["ADSC"], &ctx())
        .into_iter()
        .filter(|m| m.topic.starts_with("homeassistant/binary_sensor/"))
        .count();
    assert_eq!(binary, 3, "ejp, ejp_notice and the line");
}

#[test]
fn ejp_binary_sensors_read_on_and_off_at_qos_one() {
    let configs = configs(&historic_ejp());
    let config = &configs["homeassistant/binary_sensor/linky_021728123456/ejp_notice/config"];
    assert_eq!(config["state_topic"], "linky/021728123456/ejp_notice");
    assert_eq!(
        (&config["payload_on"], &config["payload_off"]),
        (&json!("ON"), &json!("OFF"))
    );
    assert_eq!(config["qos"], 1);
    assert_eq!(
        config["default_entity_id"],
        "binary_sensor.linky_021728123456_ejp_notice"
    );
}

#[test]
fn the_relay_contact_is_announced_only_when_it_is_wired() {
    let r = historic_base();
    let labels: Vec<&str> = r.entries.iter().map(|e| &*e.label).collect();
    let contract = Contract::from_reading(&r);
    let announce = |ctx: &Context| {
        config_messages("021728123456", Mode::Historic, &contract, &labels, ctx)
            .into_iter()
            .find(|m| m.topic.contains("/relay/"))
    };
    assert_eq!(announce(&ctx()), None, "relay.gpio not set");
    let message = announce(&ctx().with_relay(true)).expect("relay.gpio set");
    assert_eq!(
        message.topic,
        "homeassistant/binary_sensor/linky_021728123456/relay/config"
    );
    assert!(message.retain && message.qos == 1);
    let config: Value = serde_json::from_str(&message.payload).unwrap();
    assert_eq!(config["state_topic"], "linky/021728123456/relay");
    assert_eq!(config["unique_id"], "linky_021728123456_relay");
    assert_eq!(
        (
            &config["payload_on"],
            &config["payload_off"],
            &config["qos"]
        ),
        (&json!("ON"), &json!("OFF"), &json!(1))
    );
}

#[test]
fn tempo_contracts_get_colour_entities_that_show_unknown_when_not_announced() {
    assert!(!object_ids(&historic_ejp(), "sensor").contains("tempo_today"));
    for reading in [historic_tempo(), standard_three_phase_producer()] {
        let id = reading.meter.clone().unwrap();
        let configs = configs(&reading);
        let config = &configs[&format!("homeassistant/sensor/linky_{id}/tempo_tomorrow/config")];
        assert_eq!(config["state_topic"], format!("linky/{id}/state"));
        assert_eq!(config["device_class"], "enum");
        assert_eq!(config["options"], json!(["blue", "white", "red"]));
        assert_eq!(
            config["value_template"],
            "{{ value_json.derived.tempo_tomorrow | default('None') }}"
        );
    }
}

#[test]
fn enum_templates_render_only_their_options_or_none() {
    for (label, values) in ENUMS {
        let spec = labels::spec(label).unwrap();
        assert_eq!((spec.kind, spec.unit), (Kind::Text, None), "{label}");
        for (raw, shown) in values.iter() {
            assert!(raw.len() == usize::from(spec.width), "{label} {raw}");
            assert!(
                !shown.is_empty() && !shown.contains('\''),
                "{label} {shown}"
            );
        }
    }
    let configs = configs(&historic_tempo());
    let demain = &configs["homeassistant/sensor/linky_031961234567/demain/config"];
    assert_eq!(demain["options"], json!(TEMPO_COLOURS));
    assert_eq!(
        demain["value_template"],
        "{{ {'BLEU': 'blue', 'BLAN': 'white', 'ROUG': 'red'}.get(value) }}"
    );
    let ptec = &configs["homeassistant/sensor/linky_031961234567/ptec/config"];
    assert_eq!(ptec["options"].as_array().unwrap().len(), 11);
    assert!(
        ptec["value_template"]
            .as_str()
            .unwrap()
            .contains("'TH..': 'BASE'")
    );
}

#[test]
fn dated_texts_show_their_horodate_from_state() {
    let configs = configs(&standard_three_phase_producer());
    let date = &configs["homeassistant/sensor/linky_123456789012/date/config"];
    assert_eq!(date["state_topic"], "linky/123456789012/state");
    assert_eq!(
        date["value_template"],
        "{% set t = as_datetime(value_json['values'].get('DATE_ts'), None) %}\
         {{ as_local(t).isoformat() if t else 'None' }}"
    );
    assert_eq!(date["entity_category"], "diagnostic");
}

#[test]
fn identity_status_and_decoder_counters_are_diagnostics() {
    let configs = configs(&standard_three_phase_producer());
    let category = |object_id: &str| {
        configs[&format!("homeassistant/sensor/linky_123456789012/{object_id}/config")]
            ["entity_category"]
            .clone()
    };
    for object_id in [
        "adsc",
        "stge",
        "prm",
        "vtic",
        "frames_ok",
        "checksum_errors",
        "bytes_skipped",
        "uptime_s",
    ] {
        assert_eq!(category(object_id), "diagnostic", "{object_id}");
    }
    for object_id in ["sinsts", "energy_import", "energy_hcjb"] {
        assert_eq!(category(object_id), Value::Null, "{object_id}");
    }
    for object_id in ["east", "easf01", "eait"] {
        assert_eq!(category(object_id), "diagnostic", "{object_id}");
    }
    let frames = &configs["homeassistant/sensor/linky_123456789012/frames_ok/config"];
    assert_eq!(frames["state_topic"], "linky/123456789012/diag");
    assert_eq!(frames["value_template"], "{{ value_json.frames_ok }}");
}

/// The daemon's availability topic of an entity, and the line's when it has it (with
/// `availability_mode: all`), checked to have Home Assistant's shape and payloads.
fn availability(config: &Value) -> (String, Option<String>) {
    let Some(list) = config.get("availability") else {
        assert_eq!(config["payload_available"], "online", "{config}");
        assert_eq!(config["payload_not_available"], "offline", "{config}");
        return (config["availability_topic"].as_str().unwrap().into(), None);
    };
    assert!(config.get("availability_topic").is_none(), "{config}");
    assert_eq!(config["availability_mode"], "all", "{config}");
    let list = list.as_array().unwrap();
    assert_eq!(list.len(), 2, "{config}");
    assert_eq!(list[0]["payload_available"], "online");
    assert_eq!(list[0]["payload_not_available"], "offline");
    assert_eq!(list[1]["payload_available"], "ON");
    assert_eq!(list[1]["payload_not_available"], "OFF");
    let topic = |i: usize| list[i]["topic"].as_str().unwrap().to_owned();
    (topic(0), Some(topic(1)))
}

#[test]
fn every_payload_has_availability_and_default_entity_id() {
    for config in all_configs() {
        let (daemon, line) = availability(&config);
        assert_eq!(daemon.split('/').next_back(), Some("availability"));
        if let Some(line) = line {
            assert_eq!(line, daemon.replace("/availability", "/line"));
        }
        let unique_id = config["unique_id"].as_str().unwrap();
        let default_entity_id = config["default_entity_id"].as_str().unwrap();
        assert!(
            default_entity_id == format!("sensor.{unique_id}")
                || default_entity_id == format!("binary_sensor.{unique_id}"),
            "{default_entity_id}"
        );
        assert!(
            config.get("object_id").is_none(),
            "object_id was removed in 2026.4"
        );
    }
}

#[test]
fn every_config_is_retained_at_qos_one_under_the_discovery_prefix() {
    let ctx = Context::new("home/linky", "ha");
    let contract = Contract::from_reading(&historic_ejp());
    for m in config_messages("021728123456", Mode::Historic, &contract, ["PAPP"], &ctx) {
        assert!(m.retain && m.qos == 1, "{}", m.topic);
        assert!(
            m.topic.starts_with("ha/") && m.topic.ends_with("/config"),
            "{}",
            m.topic
        );
        let config: Value = serde_json::from_str(&m.payload).unwrap();
        assert_eq!(
            availability(&config).0,
            "home/linky/021728123456/availability"
        );
    }
}

/// The meter's values go unavailable when the line is silent; the line's own entity, the
/// daemon's counters and the relay contact stay available while the daemon runs.
#[test]
fn the_meters_values_follow_the_line_and_the_line_only_the_daemon() {
    let ctx = Context::new("linky", "homeassistant").with_relay(true);
    let reading = standard_three_phase_producer();
    let contract = Contract::from_reading(&reading);
    let labels: Vec<String> = reading
        .entries
        .iter()
        .map(|e| e.label.to_string())
        .collect();
    let messages = config_messages("123456789012", Mode::Standard, &contract, &labels, &ctx);
    let config = |component: &str, object_id: &str| -> Value {
        let topic = format!("homeassistant/{component}/linky_123456789012/{object_id}/config");
        let m = messages.iter().find(|m| m.topic == topic).expect(&topic);
        serde_json::from_str(&m.payload).unwrap()
    };
    let line = config("binary_sensor", "line");
    assert_eq!(line["device_class"], "connectivity");
    assert_eq!(line["entity_category"], "diagnostic");
    assert_eq!(line["state_topic"], "linky/123456789012/line");
    assert_eq!(
        (line["payload_on"].as_str(), line["payload_off"].as_str()),
        (Some("ON"), Some("OFF"))
    );
    assert_eq!(line["qos"], 1);
    let daemon_only = ("linky/123456789012/availability".to_owned(), None);
    assert_eq!(availability(&line), daemon_only);
    let both = (
        "linky/123456789012/availability".to_owned(),
        Some("linky/123456789012/line".to_owned()),
    );
    for (component, object_id) in [
        ("sensor", "east"),
        ("sensor", "sinsts"),
        ("sensor", "power"),
        ("sensor", "date"),
        ("sensor", "tempo_today"),
    ] {
        assert_eq!(
            availability(&config(component, object_id)),
            both,
            "{object_id}"
        );
    }
    for (component, object_id) in [
        ("sensor", "frames_ok"),
        ("sensor", "uptime_s"),
        ("binary_sensor", "relay"),
    ] {
        assert_eq!(
            availability(&config(component, object_id)),
            daemon_only,
            "{object_id}"
        );
    }
}

#[test]
fn no_entity_has_a_unit_with_an_enum_class() {
    for config in all_configs() {
        if config["device_class"] == "enum" {
            assert!(config.get("unit_of_measurement").is_none(), "{config}");
            assert!(config.get("state_class").is_none(), "{config}");
            assert!(
                !config["options"].as_array().unwrap().is_empty(),
                "{config}"
            );
        } else {
            assert!(config.get("options").is_none(), "{config}");
        }
    }
}

/// Units and state classes per device class, from Home Assistant's sensor documentation
/// (developers.home-assistant.io, "Available device classes") and its `DEVICE_CLASS_STATE_CLASSES`.
#[test]
fn every_class_unit_and_state_class_is_one_home_assistant_accepts() {
    let any = &["measurement", "total", "total_increasing"][..];
    let accepted: BTreeMap<&str, (&[&str], &[&str])> = BTreeMap::from([
        (
            "energy",
            (&["Wh", "kWh"][..], &["total", "total_increasing"][..]),
        ),
        (
            "reactive_energy",
            (&["varh", "kvarh"][..], &["total", "total_increasing"][..]),
        ),
        ("apparent_power", (&["VA"][..], &["measurement"][..])),
        ("power", (&["W", "kW"][..], &["measurement"][..])),
        ("current", (&["A", "mA"][..], &["measurement"][..])),
        ("voltage", (&["V", "mV"][..], &["measurement"][..])),
        ("duration", (&["d", "h", "min", "s", "ms"][..], any)),
        (
            "data_size",
            (&["B", "kB", "KiB", "MB", "MiB"][..], &["measurement"][..]),
        ),
    ]);
    for config in all_configs() {
        let unit = config.get("unit_of_measurement").and_then(Value::as_str);
        let state_class = config.get("state_class").and_then(Value::as_str);
        match config.get("device_class").and_then(Value::as_str) {
            None | Some("enum" | "connectivity") => assert_eq!(unit, None, "{config}"),
            Some("timestamp") => assert_eq!((unit, state_class), (None, None), "{config}"),
            Some(class) => {
                let (units, state_classes) = accepted
                    .get(class)
                    .unwrap_or_else(|| panic!("{class} is not checked here"));
                assert!(unit.is_some_and(|u| units.contains(&u)), "{config}");
                assert!(
                    state_class.is_none_or(|s| state_classes.contains(&s)),
                    "{config}"
                );
            }
        }
    }
}

#[test]
fn object_ids_are_unique_across_the_table_and_the_fixed_entities() {
    let everything = labels::LABELS.iter().map(|s| s.label);
    let contract = Contract {
        tariff: Tariff::Tempo,
        three_phase: true,
        producer: true,
        tic_version: None,
    };
    let ctx = ctx().with_relay(true);
    let messages = config_messages("1", Mode::Standard, &contract, everything, &ctx);
    let object_ids: BTreeSet<&str> = messages
        .iter()
        .map(|m| m.topic.split('/').nth(3).unwrap())
        .collect();
    assert_eq!(object_ids.len(), messages.len());
    assert_eq!(messages.len(), labels::LABELS.len() + 12);
}

#[test]
fn the_device_model_names_mode_and_contract() {
    let model = |r: &Reading| configs(r).into_values().next().unwrap()["device"]["model"].clone();
    assert_eq!(model(&historic_ejp()), "Linky historic EJP");
    assert_eq!(model(&historic_tempo()), "Linky historic Tempo");
    assert_eq!(model(&historic_base()), "Linky historic Base");
    assert_eq!(
        model(&standard_three_phase_producer()),
        "Linky standard Tempo three-phase producer"
    );
}

#[test]
fn the_output_does_not_depend_on_the_order_labels_were_seen() {
    let contract = Contract::from_reading(&historic_ejp());
    let a = config_messages(
        "1",
        Mode::Historic,
        &contract,
        ["PAPP", "ADCO", "PTEC"],
        &ctx(),
    );
    let b = config_messages(
        "1",
        Mode::Historic,
        &contract,
        ["PTEC", "PAPP", "ADCO"],
        &ctx(),
    );
    assert_eq!(a, b);
}

// ---------------------------------------------------------------------------------------------
// The logger's entities.

#[test]
fn the_loggers_entities_share_the_daemons_device_and_read_today_month_and_price() {
    let reading = historic_ejp();
    let contract = Contract::from_reading(&reading);
    let ctx = Context::new("linky", "homeassistant");
    let id = "021728123456";
    let daemon = config_messages(id, Mode::Historic, &contract, ["ADCO", "PAPP"], &ctx);
    let logger = today_config_messages(
        id,
        Mode::Historic,
        &contract,
        ["PM", "HN"],
        ("EUR", true),
        &ctx,
    );
    let parse = |m: &Message| serde_json::from_str::<Value>(&m.payload).unwrap();
    let topics: Vec<&str> = logger.iter().map(|m| m.topic.as_str()).collect();
    assert_eq!(
        topics,
        [
            "homeassistant/sensor/linky_021728123456/today_cost/config",
            "homeassistant/sensor/linky_021728123456/today_energy_hn/config",
            "homeassistant/sensor/linky_021728123456/today_energy_pm/config",
            "homeassistant/sensor/linky_021728123456/month_cost/config",
            "homeassistant/sensor/linky_021728123456/month_energy_hn/config",
            "homeassistant/sensor/linky_021728123456/month_energy_pm/config",
            "homeassistant/sensor/linky_021728123456/price/config",
        ]
    );
    assert!(logger.iter().all(|m| m.retain && m.qos == 1));
    let cost = parse(&logger[0]);
    assert_eq!(cost["device"], parse(&daemon[0])["device"], "one device");
    assert_eq!(cost["device_class"], "monetary");
    assert_eq!(cost["state_class"], "total");
    assert_eq!(cost["unit_of_measurement"], "EUR");
    assert_eq!(cost["state_topic"], "linky/021728123456/today");
    assert_eq!(cost["value_template"], "{{ value_json.cost }}");
    assert_eq!(cost["unique_id"], "linky_021728123456_today_cost");
    assert_eq!(
        availability(&cost),
        ("linky/021728123456/availability".to_owned(), None),
        "today's figures stay true while the line is silent"
    );
    assert!(cost["last_reset_value_template"].is_string());
    let hn = parse(&logger[1]);
    assert_eq!(hn["device_class"], "energy");
    assert!(
        hn.get("state_class").is_none(),
        "the indexes feed the energy dashboard; today's energy must not count twice"
    );
    assert_eq!(hn["unit_of_measurement"], "Wh");
    assert_eq!(
        hn["value_template"],
        "{{ value_json.energy_wh.HN | default(0) }}"
    );
    let month_cost = parse(&logger[3]);
    assert_eq!(month_cost["device_class"], "monetary");
    assert_eq!(month_cost["state_class"], "total");
    assert_eq!(month_cost["state_topic"], "linky/021728123456/month");
    assert_eq!(
        month_cost["last_reset_value_template"],
        "{{ as_local(as_datetime(value_json.month ~ '-01')).isoformat() }}"
    );
    assert_eq!(
        parse(&logger[4])["value_template"],
        "{{ value_json.energy_wh.hn | default(0) }}",
        "the month names periods in lowercase"
    );
    let price = parse(&logger[6]);
    assert_eq!(price["state_topic"], "linky/021728123456/price");
    assert_eq!(
        price["unit_of_measurement"], "EUR/kWh",
        "what the energy dashboard takes"
    );
    assert!(
        price.get("device_class").is_none(),
        "monetary takes only a currency as unit"
    );
    assert_eq!(price["state_class"], "measurement");
    assert_eq!(price["unique_id"], "linky_021728123456_price");
    assert_eq!(price["device"], cost["device"]);
    let unpriced =
        today_config_messages(id, Mode::Historic, &contract, ["HN"], ("EUR", false), &ctx);
    assert!(
        unpriced.iter().all(|m| !m.topic.contains("/price/")),
        "no price entity without prices"
    );
}

#[test]
fn the_contract_read_from_a_state_payload_is_the_one_read_from_the_frame() {
    let reading = historic_ejp();
    let state: Value = serde_json::from_str(&reading.to_state_json(None, None)).unwrap();
    let from_state = Contract::from_state(state["values"].as_object().unwrap(), &state["derived"]);
    assert_eq!(from_state, Contract::from_reading(&reading));
}

// ---------------------------------------------------------------------------------------------
// Configs no longer announced.

fn topics_of(messages: &[Message]) -> Vec<String> {
    messages.iter().map(|m| m.topic.clone()).collect()
}

#[test]
fn configs_announced_before_and_not_now_are_cleared_with_an_empty_retained_message() {
    let r = historic_base();
    let labels: Vec<&str> = r.entries.iter().map(|e| &*e.label).collect();
    let contract = Contract::from_reading(&r);
    let id = "021728654321";
    let before = config_messages(
        id,
        Mode::Historic,
        &contract,
        &labels,
        &ctx().with_relay(true),
    );
    let now = config_messages(id, Mode::Historic, &contract, &labels, &ctx());
    let clears = stale_config_clears(id, topics_of(&now), topics_of(&before), &ctx());
    assert_eq!(
        clears,
        [Message::new(
            "homeassistant/binary_sensor/linky_021728654321/relay/config",
            String::new(),
            true,
            1
        )],
        "relay.gpio was unset"
    );
    // Nothing to clear when nothing changed, or when the broker held nothing.
    assert!(stale_config_clears(id, topics_of(&now), topics_of(&now), &ctx()).is_empty());
    assert!(stale_config_clears(id, topics_of(&now), Vec::<String>::new(), &ctx()).is_empty());
}

#[test]
fn a_contract_change_clears_the_former_contracts_entities() {
    let id = "021728123456";
    let ejp = historic_ejp();
    let ejp_labels: Vec<&str> = ejp.entries.iter().map(|e| &*e.label).collect();
    let before = config_messages(
        id,
        Mode::Historic,
        &Contract::from_reading(&ejp),
        &ejp_labels,
        &ctx(),
    );
    let tempo = historic_tempo();
    let tempo_labels: Vec<&str> = tempo.entries.iter().map(|e| &*e.label).collect();
    let now = config_messages(
        id,
        Mode::Historic,
        &Contract::from_reading(&tempo),
        &tempo_labels,
        &ctx(),
    );
    let cleared: Vec<String> = stale_config_clears(id, topics_of(&now), topics_of(&before), &ctx())
        .into_iter()
        .inspect(|m| assert!(m.payload.is_empty() && m.retain && m.qos == 1))
        .map(|m| m.topic.split('/').nth(3).unwrap().to_owned())
        .collect();
    // EJP's indexes and binary sensors go; PEJP comes and goes, so its entity stays.
    assert_eq!(cleared, ["ejp", "ejp_notice", "ejphn", "ejphpm"]);
}

#[test]
fn only_this_meters_configs_under_this_prefix_are_cleared() {
    let id = "021728123456";
    let retained = [
        "homeassistant/sensor/linky_021728123456/papp/config",
        "homeassistant/sensor/linky_021728123456/today_cost/config",
        "homeassistant/sensor/linky_021728123456/today_energy_hn/config",
        "homeassistant/sensor/linky_021728123456/month_cost/config",
        "homeassistant/sensor/linky_021728123456/price/config",
        "homeassistant/sensor/linky_021728123456/adps/config",
        "homeassistant/sensor/linky_021728123456/dpm1/config",
        "homeassistant/sensor/linky_021728999999/papp/config",
        "homeassistant/sensor/linky_0217281234567/papp/config",
        "homeassistant/sensor/other/papp/config",
        "homeassistant/light/linky_021728123456/papp/config",
        "ha/sensor/linky_021728123456/papp/config",
        "homeassistant/sensor/linky_021728123456/papp/config/extra",
        "homeassistant/sensor/linky_021728123456/iinst/config",
        "homeassistant/sensor/linky_021728123456/iinst/config",
    ];
    let announced = ["homeassistant/sensor/linky_021728123456/papp/config"];
    let clears = stale_config_clears(id, announced, retained, &ctx());
    assert_eq!(
        topics_of(&clears),
        ["homeassistant/sensor/linky_021728123456/iinst/config"],
        "the logger's, the intermittent labels', other meters' and other prefixes' stay"
    );
    assert_eq!(
        config_filter(id, &ctx()),
        "homeassistant/+/linky_021728123456/+/config"
    );
}

// ---------------------------------------------------------------------------------------------
// Entities named by meaning (issue 19).

/// The same EJP meter as `historic_ejp`, switched to standard mode by Enedis.
fn standard_ejp() -> Reading {
    let mut meter = crate::meter::Meter::new(230);
    meter.read(
        &crate::testing::historic_frame(&[
            ("ADCO", "021728123456"),
            ("OPTARIF", "EJP."),
            ("EJPHN", "000688322"),
            ("EJPHPM", "000080072"),
            ("PTEC", "HN.."),
        ]),
        0.0,
    );
    let frame = crate::testing::frame(
        Mode::Standard,
        &[
            ("ADSC", None, "021728123456"),
            ("DATE", Some("H261202101500"), ""),
            ("NGTF", None, "      EJP       "),
            ("EAST", None, "000768402"),
            ("EASF01", None, "000688330"),
            ("EASF02", None, "000080072"),
            ("STGE", None, "003A0001"),
            ("NTARF", None, "01"),
        ],
    );
    meter.read(&frame, 2.0)
}

fn energy_unique_ids(r: &Reading) -> BTreeMap<String, (String, String)> {
    configs(r)
        .into_values()
        .filter(|c| c["device_class"] == "energy" && c.get("entity_category").is_none())
        .map(|c| {
            let id = c["unique_id"].as_str().unwrap().to_owned();
            let entity = c["default_entity_id"].as_str().unwrap().to_owned();
            let topic = c["state_topic"].as_str().unwrap().to_owned();
            (id, (entity, topic))
        })
        .collect()
}

#[test]
fn the_energy_entities_are_the_same_after_a_switch_to_standard_mode() {
    let before = energy_unique_ids(&historic_ejp());
    let after = energy_unique_ids(&standard_ejp());
    assert_eq!(before, after);
    let ids: Vec<&str> = before.keys().map(String::as_str).collect();
    assert_eq!(
        ids,
        [
            "linky_021728123456_energy_hn",
            "linky_021728123456_energy_import",
            "linky_021728123456_energy_pm"
        ]
    );
    assert_eq!(
        before["linky_021728123456_energy_hn"],
        (
            "sensor.linky_021728123456_energy_hn".to_owned(),
            "linky/021728123456/energy/hn".to_owned()
        )
    );
    for c in configs(&standard_ejp()).values() {
        if c["unique_id"].as_str().unwrap().contains("_energy_") {
            assert_eq!(
                (&c["state_class"], &c["unit_of_measurement"]),
                (&Value::from("total_increasing"), &Value::from("Wh"))
            );
        }
    }
}

#[test]
fn the_next_change_is_a_timestamp_entity_in_standard_mode_only() {
    let configs = configs(&standard_three_phase_producer());
    let next = &configs["homeassistant/sensor/linky_123456789012/next_change/config"];
    assert_eq!(next["device_class"], "timestamp");
    assert_eq!(next["state_topic"], "linky/123456789012/next_change");
    let period = &configs["homeassistant/sensor/linky_123456789012/next_period/config"];
    assert_eq!(period["device_class"], "enum");
    let announced =
        &configs["homeassistant/sensor/linky_123456789012/tempo_tomorrow_announced/config"];
    assert_eq!(
        announced["state_topic"],
        "linky/123456789012/tempo_tomorrow"
    );
    assert!(
        object_ids(&historic_ejp(), "sensor")
            .iter()
            .all(|o| !o.starts_with("next_"))
    );
}

#[test]
fn energy_entities_are_never_cleared_as_stale() {
    let retained = ["homeassistant/sensor/linky_021728123456/energy_pm/config"];
    assert!(stale_config_clears("021728123456", Vec::<String>::new(), retained, &ctx()).is_empty());
}
