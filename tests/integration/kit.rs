//! The install kit users copy: Docker, systemd, the Debian package's scripts and configuration,
//! Home Assistant and Node-RED files, checked for what can be checked here without a Docker
//! engine, a Pi or Home Assistant. Where a real tool exists it has the last word:
//! `systemd-analyze` always, `sh` for the healthcheck and the postinst, Node-RED itself in
//! `node_red.rs`; `docker compose` in an ignored test, since the test dependencies do not
//! include Docker (`cargo test -- --ignored` runs it where Docker is installed).

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
fn the_linkymon_containers_are_read_only_without_capabilities_and_the_broker_is_local() {
    let compose = compose();
    for name in ["linkymon", "logger"] {
        let service = &compose["services"][name];
        assert_eq!(service["read_only"], Value::Bool(true), "{name}: read_only");
        assert_eq!(strings(&service["cap_drop"]), ["ALL"], "{name}: cap_drop");
        assert!(
            strings(&service["security_opt"]).contains(&"no-new-privileges:true".to_owned()),
            "{name}: security_opt"
        );
        // With a read-only root, every path linkymon writes must be on a volume.
        let config = linkymon::config::Config::load(Some(&path("docker/config.yaml"))).unwrap();
        let mounts: Vec<String> = strings(&service["volumes"])
            .iter()
            .filter(|m| !m.ends_with(":ro"))
            .map(|m| m.split(':').nth(1).unwrap().to_owned())
            .collect();
        for written in [
            &config.mqtt.spool_dir,
            &config.logger.dir,
            &config.logger.pages_dir,
            &config.display.png_path,
        ] {
            assert!(
                mounts.iter().any(|m| written.starts_with(m)),
                "{name}: {} is not on a writable volume ({mounts:?})",
                written.display()
            );
        }
    }
    let ports = strings(&compose["services"]["mosquitto"]["ports"]);
    assert_eq!(
        ports,
        ["127.0.0.1:1883:1883"],
        "the anonymous broker is published on loopback only"
    );
    assert!(
        read("docker/mosquitto.conf")
            .lines()
            .any(|l| l.trim() == "allow_anonymous true"),
        "if the broker asks for a password, the loopback binding may go: update this test"
    );
    // What a user reads before passing a device: the Pi 5's GPIO and a stable USB name.
    let text = read("docker/compose.yaml");
    assert!(
        text.contains("/dev/gpiomem0:/dev/gpiomem0"),
        "the Pi 5's GPIO"
    );
    assert!(text.contains("/dev/serial/by-id/"), "the stable USB names");
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

/// The Dockerfile's instructions, continuation lines joined, comments left out.
fn dockerfile_instructions() -> Vec<String> {
    let mut instructions = Vec::new();
    let mut current = String::new();
    for line in read("docker/Dockerfile").lines() {
        if line.trim_start().starts_with('#') {
            continue;
        }
        match line.strip_suffix('\\') {
            Some(head) => current.push_str(head),
            None => {
                current.push_str(line);
                if !current.trim().is_empty() {
                    instructions.push(std::mem::take(&mut current));
                }
                current.clear();
            }
        }
    }
    instructions
}

/// `key="value"` pairs of the runtime stage's LABEL instructions.
fn labels() -> Vec<(String, String)> {
    let instructions = dockerfile_instructions();
    let runtime = instructions
        .iter()
        .rposition(|i| i.starts_with("FROM "))
        .unwrap();
    let mut labels = Vec::new();
    for label in instructions[runtime..]
        .iter()
        .filter_map(|i| i.strip_prefix("LABEL "))
    {
        let mut rest = label.trim();
        while let Some((key, value)) = rest.split_once("=\"") {
            let (value, after) = value.split_once('"').expect("a closing quote");
            labels.push((key.trim().to_owned(), value.to_owned()));
            rest = after.trim();
        }
        assert!(rest.is_empty(), "LABEL key=\"value\" pairs: {label}");
    }
    labels
}

#[test]
fn the_image_has_oci_labels_from_cargo_toml_and_none_made_up() {
    let labels = labels();
    let get = |key: &str| {
        labels
            .iter()
            .find(|(k, _)| k == &format!("org.opencontainers.image.{key}"))
            .map(|(_, v)| v.as_str())
    };
    assert_eq!(get("title"), Some("linkymon"));
    assert_eq!(get("description"), Some(env!("CARGO_PKG_DESCRIPTION")));
    assert_eq!(get("version"), Some(env!("CARGO_PKG_VERSION")));
    // A licence or a source URL only when Cargo.toml has one: never an invented one.
    let manifest = read("Cargo.toml");
    let package = manifest
        .split("\n[")
        .find(|section| section.starts_with("[package]") || section.starts_with("package]"))
        .unwrap();
    for (label, key) in [("licenses", "license"), ("source", "repository")] {
        let declared = package.lines().find_map(|l| {
            let (k, v) = l.split_once('=')?;
            (k.trim() == key).then(|| v.trim().trim_matches('"').to_owned())
        });
        assert_eq!(
            get(label).map(str::to_owned),
            declared,
            "org.opencontainers.image.{label} and Cargo.toml's package.{key}"
        );
    }
}

/// The HEALTHCHECK's command, in exec form.
fn healthcheck() -> Vec<String> {
    let found: Vec<String> = dockerfile_instructions()
        .into_iter()
        .filter_map(|i| i.strip_prefix("HEALTHCHECK ").map(str::to_owned))
        .collect();
    assert_eq!(found.len(), 1, "one HEALTHCHECK");
    let (options, command) = found[0].split_once(" CMD ").expect("HEALTHCHECK ... CMD");
    assert!(options.contains("--interval="), "{options}");
    serde_json::from_str(command.trim()).expect("CMD in exec form (a JSON array)")
}

#[test]
fn the_healthcheck_says_healthy_only_while_the_daily_log_grows() {
    let command = healthcheck();
    let config = linkymon::config::Config::load(Some(&path("docker/config.yaml"))).unwrap();
    let logs = config.logger.dir.display().to_string();
    let script = &command[2];
    assert_eq!(command[..2], ["sh", "-c"]);
    assert!(
        script.contains(&logs),
        "it reads logger.dir ({logs}): {script}"
    );
    // Run it as the container would, on a stand-in for the volume.
    let dir = tempfile::tempdir().unwrap();
    let check = || {
        Command::new(&command[0])
            .arg(&command[1])
            .arg(script.replace(&logs, &dir.path().display().to_string()))
            .status()
            .unwrap()
            .success()
    };
    assert!(!check(), "healthy without any log");
    let meter_dir = dir.path().join(SIM_ID);
    std::fs::create_dir(&meter_dir).unwrap();
    let log = meter_dir.join("2026-12-02.log");
    std::fs::write(&log, "a line\n").unwrap();
    assert!(
        check(),
        "unhealthy with a line just written (another meter's folder)"
    );
    let ten_minutes_ago = std::time::SystemTime::now() - std::time::Duration::from_secs(600);
    std::fs::File::options()
        .append(true)
        .open(&log)
        .unwrap()
        .set_modified(ten_minutes_ago)
        .unwrap();
    assert!(!check(), "healthy though the last line is 10 minutes old");
}

/// The daemon's own check: `ON` in `<spool_dir>/line` (the publisher's `LINE_FILE`, checked
/// against a running daemon in line.rs), run here on a stand-in for the volume.
#[test]
fn the_daemons_healthcheck_says_healthy_only_while_its_line_file_says_on() {
    let compose = compose();
    let check = &compose["services"]["linkymon"]["healthcheck"];
    let test = strings(&check["test"]);
    assert_eq!(test[..3], ["CMD", "sh", "-c"], "{test:?}");
    let config = linkymon::config::Config::load(Some(&path("docker/config.yaml"))).unwrap();
    let file = config
        .mqtt
        .spool_dir
        .join(linkymon::publish::publisher::LINE_FILE)
        .display()
        .to_string();
    let script = &test[3];
    assert!(script.contains(&file), "it reads {file}: {script}");
    assert!(check["interval"].as_str().is_some(), "{check:?}");
    let dir = tempfile::tempdir().unwrap();
    let stand_in = dir.path().join("line");
    let healthy = || {
        Command::new("sh")
            .arg("-c")
            .arg(script.replace(&file, &stand_in.display().to_string()))
            .status()
            .unwrap()
            .success()
    };
    assert!(!healthy(), "healthy without the file");
    std::fs::write(&stand_in, "OFF\n").unwrap();
    assert!(!healthy(), "healthy though the line is silent");
    std::fs::write(&stand_in, "ON\n").unwrap();
    assert!(healthy(), "unhealthy though frames arrive");
    // The logger keeps the image's check of the daily log.
    assert!(compose["services"]["logger"].get("healthcheck").is_none());
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
        assert_eq!(
            one("RestartPreventExitStatus"),
            "2",
            "{file}: a configuration error is not retried forever"
        );
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
    for device in [
        "char-ttyAMA",
        "char-ttyUSB",
        "char-i2c",
        "char-gpiochip",
        "/dev/gpiomem ",
        "/dev/gpiomem0 ",
    ] {
        assert!(allowed.contains(device), "DeviceAllow {device}");
    }
    let logger = unit("packaging/systemd/linkymon-logger.service");
    assert_eq!(values(&logger, "Service", "PrivateDevices"), ["yes"]);
}

#[test]
fn a_configuration_error_exits_2_which_the_units_do_not_restart() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("config.yaml");
    std::fs::write(&config, "mqtt:\n  hots: broker.lan\n").unwrap();
    for command in ["run", "logger"] {
        let status = crate::support::linkymon(&config, &[command])
            .stderr(std::process::Stdio::null())
            .status()
            .unwrap();
        assert_eq!(status.code(), Some(2), "linkymon {command} with a bad key");
    }
}

#[test]
fn the_packaged_config_loads_and_keeps_every_file_under_var_lib_linkymon() {
    let manifest = read("Cargo.toml");
    assert!(
        manifest.contains(r#"["packaging/config.yaml", "etc/linkymon/config.yaml", "640"]"#),
        "the package installs packaging/config.yaml as /etc/linkymon/config.yaml"
    );
    let (config, warnings) =
        linkymon::config::Config::load_with_warnings(Some(&path("packaging/config.yaml")))
            .unwrap_or_else(|e| panic!("packaging/config.yaml: {e}"));
    assert!(warnings.is_empty(), "{warnings:?}");
    let writable = unit("packaging/systemd/linkymon.service")
        .into_iter()
        .find(|(_, key, _)| key == "ReadWritePaths")
        .unwrap()
        .2;
    for file in [
        &config.mqtt.spool_dir,
        &config.logger.dir,
        &config.logger.pages_dir,
        &config.display.png_path,
    ] {
        assert!(
            file.is_absolute() && file.starts_with(&writable),
            "{} is not an absolute path under {writable}",
            file.display()
        );
    }
    assert_eq!(
        config.logger.pages_dir,
        Path::new("/var/lib/linkymon/pages")
    );
}

#[test]
fn the_postinst_makes_the_data_folders_with_their_modes_and_protects_the_config() {
    // The maintainer script runs as on `dpkg -i`, with the commands that change the system
    // replaced by stand-ins that record their arguments.
    let dir = tempfile::tempdir().unwrap();
    let calls = dir.path().join("calls");
    let bin = dir.path().join("bin");
    std::fs::create_dir(&bin).unwrap();
    for (name, status) in [
        ("adduser", 0),
        ("addgroup", 0),
        ("getent", 0),
        ("dpkg-statoverride", 1), // no local override
        ("install", 0),
        ("chown", 0),
        ("chmod", 0),
    ] {
        let stub = bin.join(name);
        std::fs::write(
            &stub,
            format!(
                "#!/bin/sh\necho \"{name} $*\" >> '{}'\nexit {status}\n",
                calls.display()
            ),
        )
        .unwrap();
        std::fs::set_permissions(&stub, std::os::unix::fs::PermissionsExt::from_mode(0o755))
            .unwrap();
    }
    let path_var = format!("{}:{}", bin.display(), std::env::var("PATH").unwrap());
    let output = Command::new("sh")
        .arg(path("packaging/debian/postinst"))
        .args(["configure", ""])
        .env("PATH", path_var)
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "postinst: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let calls = std::fs::read_to_string(&calls).unwrap();
    let calls: Vec<&str> = calls.lines().collect();
    let has = |call: &str| calls.contains(&call);
    assert!(has("chmod 0755 /var/lib/linkymon"), "{calls:#?}");
    let existing = |dir: &str| Path::new(dir).is_dir();
    for (dir, mode) in [("pages", "0755"), ("logs", "0750"), ("spool", "0750")] {
        let dir = format!("/var/lib/linkymon/{dir}");
        assert!(
            existing(&dir)
                || has(&format!(
                    "install -d -o linkymon -g linkymon -m {mode} {dir}"
                )),
            "{dir} {mode}: {calls:#?}"
        );
    }
    assert!(
        has("chown root:linkymon /etc/linkymon/config.yaml"),
        "{calls:#?}"
    );
    assert!(has("chmod 0640 /etc/linkymon/config.yaml"), "{calls:#?}");
    for group in ["dialout", "gpio", "i2c"] {
        assert!(
            has(&format!("adduser --quiet linkymon {group}")),
            "{calls:#?}"
        );
    }
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
    // Every way from `linky/+/ejp` to an MQTT output passes a filter that ignores the first
    // value (the retained one at a start or a redeploy): tests/integration/node_red.rs runs it.
    let by_id = |id: &str| nodes.iter().find(|n| n["id"] == id).unwrap();
    let mut paths: Vec<(Vec<&str>, &serde_json::Value)> = of_type("mqtt in")
        .into_iter()
        .filter(|n| n["topic"] == "linky/+/ejp")
        .map(|n| (vec![], n))
        .collect();
    let mut outputs = 0;
    while let Some((mut seen, node)) = paths.pop() {
        seen.push(node["type"].as_str().unwrap());
        if node["type"] == "rbe" {
            assert_eq!(node["func"], "rbei", "the filter ignores the initial value");
            seen.push("rbei");
        }
        if node["type"] == "mqtt out" {
            assert!(
                seen.contains(&"rbei"),
                "an action without the filter: {seen:?}"
            );
            outputs += 1;
        }
        assert!(seen.len() < 20, "a loop in the flow: {seen:?}");
        for output in node["wires"].as_array().into_iter().flatten() {
            for target in output.as_array().unwrap() {
                paths.push((seen.clone(), by_id(target.as_str().unwrap())));
            }
        }
    }
    assert!(outputs >= 2, "the heater's ON and OFF");
    for out in of_type("mqtt out") {
        let topic = out["topic"].as_str().unwrap();
        assert!(
            !topic.starts_with("linky/"),
            "the flow must not publish into linkymon's topics: {topic}"
        );
    }
}
