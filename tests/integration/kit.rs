//! The install kit users copy: Docker, systemd, Home Assistant and Node-RED files, checked for
//! what can be checked here without a Docker engine, a Pi, Home Assistant or Node-RED. Where a
//! real tool exists it has the last word: `systemd-analyze` always; `docker compose` in an
//! ignored test, since the test dependencies do not include Docker (`cargo test -- --ignored`
//! runs it where Docker is installed).

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;

use serde_norway::Value;

use crate::support::{SIM_ID, is_installed, root};

fn path(rel: &str) -> PathBuf {
    root().join(rel)
}

fn read(rel: &str) -> String {
    std::fs::read_to_string(path(rel)).unwrap_or_else(|e| panic!("{rel}: {e}"))
}

fn yaml(rel: &str) -> Value {
    serde_norway::from_str(&read(rel)).unwrap_or_else(|e| panic!("{rel} does not parse: {e}"))
}

fn strings(value: &Value) -> Vec<String> {
    value
        .as_sequence()
        .unwrap_or_else(|| panic!("not a list: {value:?}"))
        .iter()
        .map(|v| v.as_str().unwrap().to_owned())
        .collect()
}

// ---------------------------------------------------------------------------------------------
// Docker
// ---------------------------------------------------------------------------------------------

fn compose() -> Value {
    let mut compose = yaml("docker/compose.yaml");
    compose
        .apply_merge()
        .expect("the `<<: *linkymon` merges resolve");
    compose
}

#[test]
fn the_compose_stack_has_its_four_services_and_uses_files_that_exist() {
    let compose = compose();
    let services = compose["services"].as_mapping().unwrap();
    let names: BTreeSet<&str> = services.keys().map(|k| k.as_str().unwrap()).collect();
    assert_eq!(
        names,
        BTreeSet::from(["linkymon", "logger", "mosquitto", "web"])
    );
    let docker_dir = path("docker");
    let declared: BTreeSet<&str> = compose["volumes"]
        .as_mapping()
        .unwrap()
        .keys()
        .map(|k| k.as_str().unwrap())
        .collect();
    for (name, service) in services {
        let name = name.as_str().unwrap();
        for mount in service["volumes"].as_sequence().into_iter().flatten() {
            let mount = mount.as_str().unwrap();
            let source = mount.split(':').next().unwrap();
            if source.starts_with('.') {
                assert!(
                    docker_dir.join(source).exists(),
                    "{name}: {source} does not exist"
                );
            } else {
                assert!(
                    declared.contains(source),
                    "{name}: the volume {source} is not declared"
                );
            }
        }
        if let Some(build) = service.get("build") {
            let context = docker_dir.join(build["context"].as_str().unwrap());
            let dockerfile = context.join(build["dockerfile"].as_str().unwrap());
            assert!(dockerfile.is_file(), "{name}: {}", dockerfile.display());
        }
    }
    assert_eq!(
        strings(&compose["services"]["linkymon"]["command"]),
        ["run"]
    );
    assert_eq!(
        strings(&compose["services"]["logger"]["command"]),
        ["logger"]
    );
    let devices = strings(&compose["services"]["linkymon"]["devices"]);
    assert!(
        devices.iter().any(|d| d.ends_with(":/dev/ttyAMA0")),
        "the serial device is passed through: {devices:?}"
    );
    let web = strings(&compose["services"]["web"]["volumes"]);
    assert!(
        web.contains(&"pages:/usr/share/nginx/html:ro".to_string()),
        "{web:?}"
    );
    let logger = strings(&compose["services"]["logger"]["volumes"]);
    assert!(
        logger.contains(&"pages:/var/lib/linkymon/pages".to_string()),
        "{logger:?}"
    );
}

#[test]
fn the_containers_config_loads_with_no_unknown_key_and_matches_the_stack() {
    let config = linkymon::config::Config::load(Some(&path("docker/config.yaml")))
        .unwrap_or_else(|e| panic!("docker/config.yaml: {e}"));
    let compose = compose();
    assert!(
        compose["services"][config.mqtt.host.as_str()].is_mapping(),
        "mqtt.host names a compose service"
    );
    let listener = format!("listener {}", config.mqtt.port);
    assert!(
        read("docker/mosquitto.conf")
            .lines()
            .any(|l| l.trim() == listener),
        "mosquitto.conf has `{listener}`"
    );
    assert_eq!(config.meter.port.to_string(), "/dev/ttyAMA0");
    assert_eq!(
        config.logger.pages_dir,
        Path::new("/var/lib/linkymon/pages"),
        "the pages go where the web server reads them"
    );
    for dir in [&config.logger.dir, &config.mqtt.spool_dir] {
        assert!(dir.starts_with("/var/lib/linkymon"), "{}", dir.display());
    }
}

#[test]
fn the_dockerfile_builds_every_platform_and_runs_linkymon_as_pid_1_without_root() {
    let dockerfile = read("docker/Dockerfile");
    let instructions: Vec<&str> = dockerfile
        .lines()
        .filter(|l| !l.trim_start().starts_with('#'))
        .collect();
    let froms: Vec<&&str> = instructions
        .iter()
        .filter(|l| l.starts_with("FROM "))
        .collect();
    assert_eq!(froms.len(), 2, "builder and runtime stages: {froms:?}");
    assert!(froms[0].contains("--platform=$BUILDPLATFORM") && froms[0].contains("-bookworm"));
    assert!(froms[1].contains("debian:bookworm-slim"));
    assert!(dockerfile.contains("cargo build --release --locked"));
    for platform in ["amd64)", "arm64)", "armv7)", "armv6)"] {
        assert!(dockerfile.contains(platform), "no case for {platform}");
    }
    let runtime = dockerfile.rsplit_once("\nFROM ").unwrap().1;
    assert!(runtime.contains("libjs-dygraphs"));
    assert!(runtime.contains("--groups dialout"));

    let instruction = |name: &str| {
        let found: Vec<&str> = instructions
            .iter()
            .filter_map(|l| l.strip_prefix(name))
            .collect();
        assert_eq!(found.len(), 1, "one {name}");
        found[0].trim().to_owned()
    };
    let entrypoint: Vec<String> = serde_json::from_str(&instruction("ENTRYPOINT "))
        .expect("ENTRYPOINT in exec form (a JSON array), so SIGTERM reaches linkymon");
    assert_eq!(entrypoint, ["/usr/bin/linkymon"]);
    let cmd: Vec<String> = serde_json::from_str(&instruction("CMD ")).expect("CMD in exec form");
    assert_eq!(cmd, ["run"]);
    let user = instruction("USER ");
    assert!(user != "root" && user != "0", "USER {user}");
    for source in dockerfile
        .lines()
        .filter_map(|l| l.strip_prefix("COPY "))
        .filter(|l| !l.starts_with("--from"))
        .filter_map(|l| l.split_whitespace().next())
    {
        assert!(path(source).exists(), "COPY {source}: no such file");
    }
    assert!(
        read(".dockerignore").lines().any(|l| l == "target/"),
        "the build context leaves target/ out"
    );
}

#[test]
#[ignore = "needs docker with its compose plugin, which ./scripts/test.sh does not install"]
fn docker_compose_accepts_the_stack() {
    assert!(is_installed("docker"), "docker is not installed");
    let version = Command::new("docker")
        .args(["compose", "version"])
        .output()
        .unwrap();
    assert!(
        version.status.success(),
        "docker is installed without its compose plugin (Debian's docker-compose-plugin)"
    );
    let output = Command::new("docker")
        .args(["compose", "-f"])
        .arg(path("docker/compose.yaml"))
        .args(["config", "--quiet"])
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "docker compose config: {}",
        String::from_utf8_lossy(&output.stderr)
    );
}

// ---------------------------------------------------------------------------------------------
// systemd
// ---------------------------------------------------------------------------------------------

/// `(section, key, value)` of every assignment of a unit file.
fn unit(rel: &str) -> Vec<(String, String, String)> {
    let mut section = String::new();
    let mut entries = Vec::new();
    for line in read(rel).lines().map(str::trim) {
        if line.is_empty() || line.starts_with('#') || line.starts_with(';') {
            continue;
        }
        if let Some(name) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
            section = name.to_owned();
        } else {
            let (key, value) = line
                .split_once('=')
                .unwrap_or_else(|| panic!("{rel}: not `key=value`: {line}"));
            entries.push((section.clone(), key.to_owned(), value.to_owned()));
        }
    }
    entries
}

fn values<'a>(entries: &'a [(String, String, String)], section: &str, key: &str) -> Vec<&'a str> {
    entries
        .iter()
        .filter(|(s, k, _)| s == section && k == key)
        .map(|(_, _, v)| v.as_str())
        .collect()
}

#[test]
fn the_systemd_units_run_linkymon_as_its_own_user_restarted_and_hardened() {
    for (file, command) in [
        ("packaging/systemd/linkymon.service", "run"),
        ("packaging/systemd/linkymon-logger.service", "logger"),
    ] {
        let entries = unit(file);
        let one = |key: &str| {
            let found = values(&entries, "Service", key);
            assert_eq!(found.len(), 1, "{file}: one {key}=");
            found[0]
        };
        assert_eq!(
            one("ExecStart"),
            format!("/usr/bin/linkymon {command} -c /etc/linkymon/config.yaml")
        );
        assert_eq!(one("Restart"), "on-failure");
        assert_eq!(one("User"), "linkymon");
        for (key, value) in [
            ("NoNewPrivileges", "yes"),
            ("ProtectSystem", "strict"),
            ("ProtectHome", "yes"),
            ("PrivateTmp", "yes"),
            ("StateDirectory", "linkymon"),
            ("ReadWritePaths", "/var/lib/linkymon"),
            ("WorkingDirectory", "/var/lib/linkymon"),
            ("CapabilityBoundingSet", ""),
        ] {
            assert_eq!(one(key), value, "{file}: {key}");
        }
        assert_eq!(
            values(&entries, "Install", "WantedBy"),
            ["multi-user.target"]
        );
    }
    let daemon = unit("packaging/systemd/linkymon.service");
    let groups = values(&daemon, "Service", "SupplementaryGroups");
    assert_eq!(groups, ["dialout gpio i2c"]);
    assert_eq!(values(&daemon, "Service", "DevicePolicy"), ["closed"]);
    let allowed = values(&daemon, "Service", "DeviceAllow").join(" ");
    for device in ["char-ttyAMA", "char-ttyUSB", "char-i2c", "char-gpiochip"] {
        assert!(allowed.contains(device), "DeviceAllow {device}");
    }
    let logger = unit("packaging/systemd/linkymon-logger.service");
    assert_eq!(values(&logger, "Service", "PrivateDevices"), ["yes"]);
}

#[test]
fn systemd_analyze_verify_accepts_the_units() {
    assert!(
        is_installed("systemd-analyze"),
        "systemd-analyze is not installed: it comes with Debian's systemd package"
    );
    // verify checks that ExecStart's program exists: point it at the binary under test.
    let dir = tempfile::tempdir().unwrap();
    let mut files = Vec::new();
    for name in ["linkymon.service", "linkymon-logger.service"] {
        let text = read(&format!("packaging/systemd/{name}"))
            .replace("/usr/bin/linkymon", env!("CARGO_BIN_EXE_linkymon"));
        let file = dir.path().join(name);
        std::fs::write(&file, text).unwrap();
        files.push(file.display().to_string());
    }
    let mut args = vec!["verify", "--man=no"];
    args.extend(files.iter().map(String::as_str));
    let output = Command::new("systemd-analyze")
        .args(&args)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    // Warnings (an unknown key, a bad value) leave the exit status at 0: read them too.
    let about_ours: Vec<&str> = stderr.lines().filter(|l| l.contains("linkymon")).collect();
    assert!(
        output.status.success() && about_ours.is_empty(),
        "systemd-analyze verify: {stderr}"
    );
}

// ---------------------------------------------------------------------------------------------
// Home Assistant
// ---------------------------------------------------------------------------------------------

/// Every `!input name` in a YAML tree.
fn input_tags(value: &Value, found: &mut Vec<String>) {
    match value {
        Value::Tagged(tagged) if tagged.tag == "!input" => {
            found.push(tagged.value.as_str().expect("!input names an input").into());
        }
        Value::Tagged(tagged) => input_tags(&tagged.value, found),
        Value::Sequence(items) => items.iter().for_each(|v| input_tags(v, found)),
        Value::Mapping(map) => map.values().for_each(|v| input_tags(v, found)),
        _ => {}
    }
}

#[test]
fn the_blueprint_parses_and_every_input_it_declares_is_used() {
    let blueprint = yaml("ha-discovery/blueprints/linky_ejp_notify.yaml");
    assert_eq!(blueprint["blueprint"]["domain"], "automation");
    let declared: BTreeSet<String> = blueprint["blueprint"]["input"]
        .as_mapping()
        .unwrap()
        .keys()
        .map(|k| k.as_str().unwrap().to_owned())
        .collect();
    let mut used = Vec::new();
    input_tags(&blueprint, &mut used);
    assert!(!used.is_empty(), "serde_norway keeps the !input tags");
    let used: BTreeSet<String> = used.into_iter().collect();
    assert_eq!(used, declared);
    let triggers = blueprint["triggers"].as_sequence().unwrap();
    let ids: Vec<&str> = triggers.iter().map(|t| t["id"].as_str().unwrap()).collect();
    assert_eq!(ids, ["notice", "peak", "tempo_red"]);
    let binary_inputs = ["ejp_notice", "ejp_peak"].map(|input| {
        blueprint["blueprint"]["input"][input]["selector"]["entity"]["filter"][0]["domain"]
            .as_str()
            .unwrap()
            .to_owned()
    });
    assert_eq!(binary_inputs, ["binary_sensor", "binary_sensor"]);
}

/// Every entity id the discovery payloads announce, across the reference meters.
fn announced_entities() -> BTreeSet<String> {
    let mut ids = BTreeSet::new();
    for entry in std::fs::read_dir(path("ha-discovery")).unwrap() {
        let file = entry.unwrap().path();
        if file.extension().is_some_and(|e| e == "json") {
            let configs: serde_json::Value =
                serde_json::from_str(&std::fs::read_to_string(&file).unwrap()).unwrap();
            for config in configs.as_object().unwrap().values() {
                ids.insert(config["default_entity_id"].as_str().unwrap().to_owned());
            }
        }
    }
    ids
}

fn entity_ids(value: &Value, found: &mut Vec<String>) {
    match value {
        Value::String(s) if s.starts_with("sensor.") || s.starts_with("binary_sensor.") => {
            found.push(s.clone())
        }
        Value::Sequence(items) => items.iter().for_each(|v| entity_ids(v, found)),
        Value::Mapping(map) => map.values().for_each(|v| entity_ids(v, found)),
        _ => {}
    }
}

#[test]
fn the_dashboard_card_uses_only_entities_that_linkymon_announces() {
    let announced = announced_entities();
    assert!(announced.contains(&format!("binary_sensor.linky_{SIM_ID}_ejp")));
    let mut used = Vec::new();
    entity_ids(&yaml("ha-discovery/dashboard-card.yaml"), &mut used);
    assert!(used.len() >= 8, "{used:?}");
    for id in &used {
        assert!(
            announced.contains(id),
            "{id} is not a default_entity_id of ha-discovery/*.json"
        );
    }
}

// ---------------------------------------------------------------------------------------------
// Node-RED
// ---------------------------------------------------------------------------------------------

/// Whether a subscription is one of the contract's topics (CONTRACT.md §3), with the meter id
/// written as `+` or as a number.
fn is_contract_topic(topic: &str) -> bool {
    const FIXED: &[&str] = &[
        "availability",
        "state",
        "injection",
        "power",
        "today",
        "ejp",
        "ejp_notice",
        "relay",
        "diag",
    ];
    let levels: Vec<&str> = topic.split('/').collect();
    let [base, id, leaf] = levels[..] else {
        return false;
    };
    let is_label = !leaf.is_empty()
        && leaf
            .chars()
            .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_');
    base == "linky"
        && (id == "+" || (!id.is_empty() && id.chars().all(|c| c.is_ascii_alphanumeric())))
        && (FIXED.contains(&leaf) || is_label)
}

#[test]
fn contract_topics_are_told_apart_from_others() {
    for topic in [
        "linky/+/ejp",
        "linky/+/PAPP",
        "linky/021728123456/NJOURF_1",
        "linky/+/state",
    ] {
        assert!(is_contract_topic(topic), "{topic}");
    }
    for topic in [
        "linky/#",
        "linky/+/papp",
        "linky/+/NJOURF+1",
        "home/heater/set",
        "linky/+/ejp/x",
        "linky/+/+",
    ] {
        assert!(!is_contract_topic(topic), "{topic}");
    }
}

#[test]
fn the_node_red_flow_is_importable_and_subscribes_only_to_contract_topics() {
    let flow: serde_json::Value = serde_json::from_str(&read("node-red/flow.json")).unwrap();
    let nodes = flow.as_array().expect("a flow is a list of nodes");
    let ids: BTreeSet<&str> = nodes.iter().map(|n| n["id"].as_str().unwrap()).collect();
    assert_eq!(ids.len(), nodes.len(), "node ids are unique");
    let of_type =
        |t: &str| -> Vec<&serde_json::Value> { nodes.iter().filter(|n| n["type"] == t).collect() };
    let brokers: BTreeSet<&str> = of_type("mqtt-broker")
        .iter()
        .map(|n| n["id"].as_str().unwrap())
        .collect();
    assert_eq!(brokers.len(), 1);
    let tabs: BTreeSet<&str> = of_type("tab")
        .iter()
        .map(|n| n["id"].as_str().unwrap())
        .collect();
    for node in nodes {
        if let Some(z) = node["z"].as_str() {
            assert!(tabs.contains(z), "{} is on an unknown tab", node["id"]);
        }
        for output in node["wires"].as_array().into_iter().flatten() {
            for target in output.as_array().unwrap() {
                assert!(
                    ids.contains(target.as_str().unwrap()),
                    "{} is wired to a missing node {target}",
                    node["id"]
                );
            }
        }
        if node["type"] == "mqtt in" || node["type"] == "mqtt out" {
            assert!(brokers.contains(node["broker"].as_str().unwrap()));
        }
    }
    let topics: Vec<&str> = of_type("mqtt in")
        .iter()
        .map(|n| n["topic"].as_str().unwrap())
        .collect();
    for topic in &topics {
        assert!(is_contract_topic(topic), "{topic} is not a contract topic");
    }
    assert!(topics.contains(&"linky/+/ejp"), "{topics:?}");
    assert!(
        topics.iter().any(|t| t
            .rsplit('/')
            .next()
            .unwrap()
            .chars()
            .all(|c| !c.is_lowercase())),
        "a per-label topic: {topics:?}"
    );
    let switch = &of_type("switch")[0];
    assert_eq!(switch["rules"][0]["v"], "ON");
    for out in of_type("mqtt out") {
        let topic = out["topic"].as_str().unwrap();
        assert!(
            !topic.starts_with("linky/"),
            "the flow must not publish into linkymon's topics: {topic}"
        );
    }
}
