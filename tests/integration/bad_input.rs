//! Every mistake a user can make at start — in the config file, the environment or the
//! command line — ends the same way: exit code 2 and one line naming the problem, never a
//! panic or a backtrace.

use crate::support::{command, linkymon};

/// One bad input and what its message must name.
struct Case {
    what: &'static str,
    /// The whole config file.
    config: &'static str,
    env: &'static [(&'static str, &'static str)],
    /// `None`: `linkymon run -c FILE`; `Some`: these arguments alone.
    args: Option<&'static [&'static str]>,
    names: &'static str,
}

const fn file(what: &'static str, config: &'static str, names: &'static str) -> Case {
    Case {
        what,
        config,
        env: &[],
        args: None,
        names,
    }
}

const fn env(
    what: &'static str,
    env: &'static [(&'static str, &'static str)],
    names: &'static str,
) -> Case {
    Case {
        what,
        config: "",
        env,
        args: None,
        names,
    }
}

const fn cli(what: &'static str, args: &'static [&'static str], names: &'static str) -> Case {
    Case {
        what,
        config: "",
        env: &[],
        args: Some(args),
        names,
    }
}

const CASES: &[Case] = &[
    file("an unknown key", "nope: 1\n", "`nope`"),
    file(
        "an unknown nested key",
        "display:\n  colour: red\n",
        "`display.colour`",
    ),
    file(
        "a port that is not a number",
        "mqtt:\n  port: abc\n",
        "`mqtt.port`",
    ),
    file("port 0", "mqtt:\n  port: 0\n", "`mqtt.port`"),
    file("port 70000", "mqtt:\n  port: 70000\n", "`mqtt.port`"),
    file(
        "a bad pull",
        "relay:\n  gpio: 4\n  pull: sideways\n",
        "`relay.pull`",
    ),
    file(
        "a bad duration",
        "publish:\n  interval: 5 parsecs\n",
        "`publish.interval`",
    ),
    file(
        "a bad size",
        "mqtt:\n  spool_max: lots\n",
        "`mqtt.spool_max`",
    ),
    file(
        "a bad display driver",
        "display:\n  driver: vga\n",
        "`display.driver`",
    ),
    file(
        "a bad meter mode",
        "meter:\n  mode: turbo\n",
        "`meter.mode`",
    ),
    file(
        "a negative replay speed",
        "meter:\n  replay_speed: -1\n",
        "`meter.replay_speed`",
    ),
    file(
        "a voltage of 20",
        "meter:\n  voltage: 20\n",
        "`meter.voltage`",
    ),
    file(
        "an unknown time zone",
        "logger:\n  timezone: Mars/Olympus\n",
        "Mars/Olympus",
    ),
    file(
        "a wildcard in base_topic",
        "mqtt:\n  base_topic: \"linky/#\"\n",
        "`mqtt.base_topic`",
    ),
    file(
        "an empty level in base_topic",
        "mqtt:\n  base_topic: \"linky//x\"\n",
        "`mqtt.base_topic`",
    ),
    file(
        "a leading $ in discovery_prefix",
        "mqtt:\n  discovery_prefix: \"$SYS\"\n",
        "`mqtt.discovery_prefix`",
    ),
    file(
        "a NUL in base_topic",
        "mqtt:\n  base_topic: \"linky\\0x\"\n",
        "`mqtt.base_topic`",
    ),
    file(
        "a NUL in host",
        "mqtt:\n  host: \"broker\\0lan\"\n",
        "`mqtt.host`",
    ),
    file(
        "a client_id of 300 bytes",
        concat!(
            "mqtt:\n  client_id: ",
            "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
            "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
            "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
            "\n"
        ),
        "`mqtt.client_id`",
    ),
    file("spool_max 0", "mqtt:\n  spool_max: 0\n", "`mqtt.spool_max`"),
    file(
        "a negative spool_max",
        "mqtt:\n  spool_max: -5\n",
        "positive size",
    ),
    file(
        "a voltage of 100000",
        "meter:\n  voltage: 100000\n",
        "from 100 to 400",
    ),
    env(
        "a bad list in the environment",
        &[("LINKYMON_LED__STATES", "[x]")],
        "from LINKYMON_LED__STATES:",
    ),
    env(
        "a bad price in the environment",
        &[("LINKYMON_LOGGER__PRICES__HN", "-1")],
        "LINKYMON_LOGGER__PRICES__HN",
    ),
    file(
        "password and password_file both",
        "mqtt:\n  password: hunter2\n  password_file: /etc/hostname\n",
        "`mqtt.password_file`",
    ),
    file(
        "frames_per_line 0",
        "logger:\n  frames_per_line: 0\n",
        "`logger.frames_per_line`",
    ),
    file(
        "a client_cert without its key",
        "mqtt:\n  client_cert: /etc/hostname\n",
        "`mqtt.client_key`",
    ),
    file("a YAML syntax error", "meter: [unclosed\n", "line"),
    file(
        "a password file that cannot be read",
        "mqtt:\n  password_file: /nonexistent/pw\n",
        "/nonexistent/pw",
    ),
    file(
        "a TLS CA file that does not exist",
        "mqtt:\n  tls: true\n  ca_file: /nonexistent/ca.pem\n",
        "/nonexistent/ca.pem",
    ),
    file(
        "a TLS CA file that is not PEM",
        "mqtt:\n  tls: true\n  ca_file: /etc/hostname\n",
        "`mqtt.ca_file`",
    ),
    env(
        "a port that is not a number in the environment",
        &[("LINKYMON_MQTT__PORT", "x")],
        "LINKYMON_MQTT__PORT",
    ),
    env(
        "an unknown environment variable",
        &[("LINKYMON_NOPE", "1")],
        "LINKYMON_NOPE",
    ),
    Case {
        what: "LINKYMON_CONFIG naming no file",
        config: "",
        env: &[("LINKYMON_CONFIG", "/nonexistent/linkymon.yaml")],
        args: Some(&["run"]),
        names: "/nonexistent/linkymon.yaml",
    },
    cli(
        "a -c file that does not exist",
        &["run", "-c", "/nonexistent/config.yaml"],
        "/nonexistent/config.yaml",
    ),
    cli(
        "an unknown decode mode",
        &["decode", "--mode", "turbo"],
        "turbo",
    ),
    cli("a negative demo speed", &["demo", "--speed", "-3"], "-3"),
    cli("an unknown subcommand", &["frobnicate"], "frobnicate"),
    cli("run without its -c value", &["run", "-c"], "--config"),
];

#[test]
fn every_bad_input_exits_with_2_and_one_line_naming_the_problem() {
    let dir = tempfile::tempdir().unwrap();
    let mut failures = Vec::new();
    for case in CASES {
        let config = dir.path().join("config.yaml");
        std::fs::write(&config, case.config).unwrap();
        let mut cmd = match case.args {
            None => linkymon(&config, &["run"]),
            // These cases are about the arguments alone: no `-c FILE`.
            Some(args) => {
                let mut cmd = command();
                cmd.args(args);
                cmd
            }
        };
        cmd.env("RUST_BACKTRACE", "1");
        for (key, value) in case.env {
            cmd.env(key, value);
        }
        let output = cmd.output().unwrap();
        let stderr = String::from_utf8_lossy(&output.stderr);
        let lines: Vec<&str> = stderr.lines().collect();
        let first = lines.first().copied().unwrap_or("");
        let mut problems = Vec::new();
        if output.status.code() != Some(2) {
            problems.push(format!("exit status {:?}", output.status.code()));
        }
        // Our errors are one `linkymon: ...` line. clap's usage errors (`error: ...`) add the
        // usage and a `--help` hint by design: only their first line is checked.
        let ours = first.starts_with("linkymon: ");
        if ours && lines.len() != 1 {
            problems.push(format!("{} lines on stderr", lines.len()));
        }
        if !ours && (case.args.is_none() || !first.starts_with("error: ")) {
            problems.push("neither our one-line error nor clap's".into());
        }
        if !first.contains(case.names) {
            problems.push(format!("the first line does not name {}", case.names));
        }
        for banned in ["panicked", "backtrace", "RUST_BACKTRACE"] {
            if stderr.contains(banned) {
                problems.push(format!("stderr mentions {banned}"));
            }
        }
        if !problems.is_empty() {
            failures.push(format!("{}: {}\n{stderr}", case.what, problems.join(", ")));
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} bad inputs misbehaved:\n{}",
        failures.len(),
        CASES.len(),
        failures.join("\n")
    );
}
