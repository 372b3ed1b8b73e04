//! `linkymon logger` against what anything on the broker can publish, and over TLS: a real
//! mosquitto, the real executable, messages sent with `mosquitto_pub`.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use jiff::{SignedDuration, Timestamp};

use crate::support::{
    Broker, Running, Subscriber, daily_log_lines, mosquitto_pub_with, peak_rss_kb, require,
    wait_log_lines, write_config,
};
use crate::tls::{PASSWORD, USER, make_certificates, openssl, tls_broker};

/// The real meter of these tests.
const ID: &str = "021728123456";

fn logger_section(dir: &Path) -> String {
    format!(
        "logger:\n  dir: {}\n  pages_dir: {}\n  frames_per_line: 1\n  timezone: Europe/Paris\n  \
         pages_interval: 1s\nprices:\n  sets:\n    - {{from: 2000-01-01, kwh: {{base: 0.2}}}}\n",
        dir.join("logs").display(),
        dir.join("pages").display()
    )
}

/// A historic BASE state of `meter` at `ts` (one line of JSON), with index `base`.
fn state(meter: &str, ts: Timestamp, base: &str, extra: &str) -> String {
    format!(
        r#"{{"ts":"{ts}","meter":"{meter}","mode":"historic",{extra}"values":{{"ADCO":"{meter}","OPTARIF":"BASE","ISOUSC":30,"BASE":{base},"PTEC":"TH..","IINST":2,"PAPP":500}},"derived":{{"injection_w":0,"consumption_va":500,"period":"BASE"}}}}"#
    )
}

fn topic(meter: &str) -> String {
    format!("linky/{meter}/state")
}

/// Publishes each of `payloads` with one `mosquitto_pub -l` (one message per line).
fn publish_lines(port: u16, topic: &str, payloads: &[String], extra: &[&str]) {
    require("mosquitto_pub");
    let mut child = Command::new("mosquitto_pub")
        .args(["-h", "127.0.0.1", "-p", &port.to_string(), "-q", "1", "-l"])
        .args(["-t", topic])
        .args(extra)
        .stdin(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    for p in payloads {
        assert!(!p.contains('\n'));
        writeln!(stdin, "{p}").unwrap();
    }
    drop(stdin);
    assert!(child.wait().unwrap().success());
}

/// Publishes the contents of `file` on the real meter's `state` topic at QoS 1.
fn publish_file(port: u16, file: &Path, retain: bool) {
    let mut args = vec!["-t", "linky/021728123456/state", "-q", "1", "-f"];
    args.push(file.to_str().unwrap());
    if retain {
        args.push("-r");
    }
    assert!(mosquitto_pub_with(port, &args).success());
}

fn logs(dir: &Path) -> PathBuf {
    dir.join("logs")
}

#[test]
fn forged_ids_are_capped_bounded_and_the_real_meter_goes_on() {
    let broker = Broker::start();
    let temp = tempfile::tempdir().unwrap();
    let dir = temp.path();
    let config = write_config(dir, broker.port, &logger_section(dir));
    let logger = Running::logger(&config);
    let now = Timestamp::now();
    publish_lines(broker.port, &topic(ID), &[state(ID, now, "1000", "")], &[]);
    wait_log_lines(&logs(dir), 1, Duration::from_secs(5));
    let before = peak_rss_kb(logger.child.id());

    // 1,000 forged ids of 12 digits, 1,000 that are not a meter's, and one of 200k characters,
    // all on the state topic of the real meter (the id is the payload's).
    let mut forged: Vec<String> = (0..1000u64)
        .map(|i| state(&format!("{:012}", 500_000_000 + i), now, "10", ""))
        .collect();
    forged.extend((0..1000).map(|i| state(&format!("x{i}/../y"), now, "10", "")));
    forged.push(state(&"7".repeat(200_000), now, "10", ""));
    publish_lines(broker.port, &topic(ID), &forged, &[]);
    publish_lines(
        broker.port,
        &topic(ID),
        &[state(ID, now + SignedDuration::from_secs(10), "1001", "")],
        &[],
    );
    let lines = wait_log_lines(&logs(dir), 2, Duration::from_secs(10));
    assert_eq!(lines.len(), 2, "the real meter is still logged: {lines:#?}");
    let after = peak_rss_kb(logger.child.id());
    let dirs: Vec<_> = std::fs::read_dir(logs(dir))
        .unwrap()
        .flatten()
        .filter(|e| e.path().is_dir())
        .map(|e| e.file_name())
        .collect();
    assert_eq!(dirs.len(), 3, "logger.max_meters is 4: {dirs:?}");
    let files = walk(dir);
    assert!(files < 40, "{files} files");
    eprintln!("logger VmHWM before {before} kB, after 2,001 forged ids {after} kB");
    assert!(
        after < before + 20_000,
        "memory grew from {before} to {after} kB"
    );
    logger.wait_stderr("too_many_meters=997", Duration::from_secs(5));
    let said = logger.stop();
    let once = |what: &str| said.iter().filter(|l| l.contains(what)).count();
    assert_eq!(once("dropped (too_many_meters)"), 1, "{said:#?}");
    assert_eq!(once("dropped (bad_meter_id)"), 1, "{said:#?}");
}

/// Files and directories under `dir`.
fn walk(dir: &Path) -> usize {
    std::fs::read_dir(dir)
        .map(|d| {
            d.flatten()
                .map(|e| {
                    1 + if e.path().is_dir() {
                        walk(&e.path())
                    } else {
                        0
                    }
                })
                .sum()
        })
        .unwrap_or(0)
}

#[test]
fn forged_fields_absurd_numbers_and_times_write_no_line_and_today_stays_right() {
    let broker = Broker::start();
    let temp = tempfile::tempdir().unwrap();
    let dir = temp.path();
    let config = write_config(dir, broker.port, &logger_section(dir));
    let today = Subscriber::start(broker.port, &["linky/+/today"]);
    let logger = Running::logger(&config);
    let t0 = Timestamp::now() - SignedDuration::from_secs(60);
    let at = |s: i64| t0 + SignedDuration::from_secs(s);
    let forged_line = r"\n2026/01/01 10:00:00\tDATA\tPeriode=TH.., IndexBASE=999999999";
    let standard = format!(
        r#"{{"ts":"{}","meter":"{ID}","mode":"standard","values":{{"ADSC":"{ID}","EASF01":1002,"NTARF":1,"SINSTS":500,"IRMS1":2}},"derived":{{"injection_w":0,"consumption_va":500,"period":"BASE{forged_line}"}}}}"#,
        at(3)
    );
    let payloads = [
        state(ID, at(1), "1000", ""),
        state(ID, at(2), "1001", "").replace("TH..", &format!("TH..{forged_line}")),
        standard,
        state(ID, at(4), "18446744073709551616", ""),
        state(ID, at(5), "999999999", ""),
        state(ID, "9999-01-01T00:00:00Z".parse().unwrap(), "1002", ""),
        state(ID, "2009-06-01T00:00:00Z".parse().unwrap(), "1002", ""),
        state(ID, at(6), "1001", "").replace("\"PAPP\":500", "\"PAPP\":99999"),
        state(ID, at(7), "1002", ""),
    ];
    publish_lines(broker.port, &topic(ID), &payloads, &[]);
    let lines = wait_log_lines(&logs(dir), 2, Duration::from_secs(5));
    std::thread::sleep(Duration::from_millis(1500));
    let lines_after = daily_log_lines(&logs(dir));
    assert_eq!(lines, lines_after);
    assert_eq!(lines.len(), 2, "{lines:#?}");
    for line in &lines {
        assert!(line.contains("Periode=TH.., IndexBASE=00000100"), "{line}");
    }
    let last = today.wait_for("today", Duration::from_secs(5), |l| {
        l.contains(r#""energy_wh":{"BASE":2}"#)
    });
    assert!(
        last.contains(r#""cost":0.0"#) || last.contains(r#""cost":0"#),
        "{last}"
    );
    let said = logger.stop();
    for class in ["bad_field=2", "implausible=3", "out_of_time=2"] {
        assert!(said.iter().any(|l| l.contains(class)), "{class}: {said:#?}");
    }
    // No `today` ever said anything but the real 2 Wh.
    for payload in today.payloads(&format!("linky/{ID}/today")) {
        let v: serde_json::Value = serde_json::from_str(&payload).unwrap();
        assert!(v["energy_wh"]["BASE"].as_u64().unwrap() <= 2, "{payload}");
    }
}

#[test]
fn a_state_sent_twice_with_its_seq_is_filed_once() {
    let broker = Broker::start();
    let temp = tempfile::tempdir().unwrap();
    let dir = temp.path();
    let config = write_config(dir, broker.port, &logger_section(dir));
    let logger = Running::logger(&config);
    let t0 = Timestamp::now() - SignedDuration::from_secs(60);
    let at = |s: i64| t0 + SignedDuration::from_secs(s);
    let one = state(ID, at(1), "1000", r#""seq":41,"#);
    let two = state(ID, at(2), "1001", r#""seq":42,"#);
    publish_lines(broker.port, &topic(ID), &[one.clone(), two.clone()], &[]);
    wait_log_lines(&logs(dir), 2, Duration::from_secs(5));
    publish_lines(broker.port, &topic(ID), &[one, two.clone()], &[]);
    logger.stop();
    // And after a restart (the filed seqs are kept in `.seq`).
    let logger = Running::logger(&config);
    publish_lines(
        broker.port,
        &topic(ID),
        &[two, state(ID, at(3), "1002", r#""seq":43,"#)],
        &[],
    );
    let lines = wait_log_lines(&logs(dir), 3, Duration::from_secs(5));
    std::thread::sleep(Duration::from_millis(500));
    let said = logger.stop();
    assert_eq!(daily_log_lines(&logs(dir)), lines);
    assert_eq!(lines.len(), 3, "{lines:#?}");
    assert!(
        said.iter().any(|l| l.contains("dropped (duplicate)")),
        "{said:#?}"
    );
}

#[test]
fn a_retained_2_mb_message_never_locks_the_logger_out() {
    let broker = Broker::start();
    let temp = tempfile::tempdir().unwrap();
    let dir = temp.path();
    let config = write_config(dir, broker.port, &logger_section(dir));
    let big = dir.join("big.json");
    std::fs::write(&big, "x".repeat(2_000_000)).unwrap();
    let poison = |retain: bool| publish_file(broker.port, &big, retain);
    poison(true);
    let logger = Running::logger(&config);
    poison(false);
    let t0 = Timestamp::now() - SignedDuration::from_secs(60);
    let at = |s: i64| t0 + SignedDuration::from_secs(s);
    publish_lines(
        broker.port,
        &topic(ID),
        &[state(ID, at(1), "1000", "")],
        &[],
    );
    wait_log_lines(&logs(dir), 1, Duration::from_secs(5));
    let said = logger.stop();
    assert_eq!(
        said.iter()
            .filter(|l| l.contains("connected to the MQTT broker"))
            .count(),
        1,
        "no reconnection: {said:#?}"
    );
    assert_eq!(
        said.iter()
            .filter(|l| l.contains("dropped (oversized)"))
            .count(),
        1,
        "{said:#?}"
    );
    // At the next start the retained one comes again: still no lock-out.
    let logger = Running::logger(&config);
    publish_lines(
        broker.port,
        &topic(ID),
        &[state(ID, at(2), "1001", "")],
        &[],
    );
    let lines = wait_log_lines(&logs(dir), 2, Duration::from_secs(5));
    assert_eq!(lines.len(), 2, "{lines:#?}");
    logger.stop();
}

/// Over the logger's 16 MiB packet limit: before MQTT 5, such a message on a subscribed topic
/// ended the connection at every reconnection, for ever. Now the broker drops it for the
/// logger (the logger's CONNECT says its limit), and `state`'s retained message is not read.
#[test]
fn a_17_mib_message_retained_or_queued_never_reaches_the_logger() {
    let broker = Broker::start_with(|dir| {
        format!(
            "allow_anonymous true\npersistence false\nlog_dest file {}/mosquitto.log\n\
             log_type all\n",
            dir.display()
        )
    });
    let temp = tempfile::tempdir().unwrap();
    let dir = temp.path();
    let config = write_config(dir, broker.port, &logger_section(dir));
    let giant = dir.join("giant.json");
    let size = 17 * 1024 * 1024;
    std::fs::write(&giant, "x".repeat(size)).unwrap();
    let poison = |retain: bool| publish_file(broker.port, &giant, retain);
    let t0 = Timestamp::now() - SignedDuration::from_secs(60);
    let at = |s: i64| t0 + SignedDuration::from_secs(s);
    let file = |s: i64, base: &str, extra: &[&str]| {
        publish_lines(
            broker.port,
            &topic(ID),
            &[state(ID, at(s), base, "")],
            extra,
        );
    };
    let no_trouble = |said: &[String]| {
        let connected = said
            .iter()
            .filter(|l| l.contains("connected to the MQTT broker"))
            .count();
        assert_eq!(connected, 1, "no reconnection: {said:#?}");
        assert!(
            !said
                .iter()
                .any(|l| l.contains("cannot use the MQTT broker")),
            "{said:#?}"
        );
    };

    // A retained (forged) state is not read at subscription; a giant retained while the
    // logger runs is forwarded to it live, and dropped by the broker.
    file(0, "999", &["-r"]);
    let logger = Running::logger(&config);
    let baseline = peak_rss_kb(logger.child.id());
    file(1, "1000", &[]);
    poison(true);
    file(2, "1001", &[]);
    wait_log_lines(&logs(dir), 2, Duration::from_secs(10));
    let peak = peak_rss_kb(logger.child.id());
    no_trouble(&logger.stop());
    let bound = baseline + size as u64 / 1024 / 4;
    assert!(peak < bound, "peak RSS {peak} kB, {baseline} kB at start");

    // At the next start the giant is retained, and another one is queued on the persistent
    // session: the states are filed all the same.
    poison(false);
    file(3, "1002", &[]);
    let logger = Running::logger(&config);
    file(4, "1003", &[]);
    let lines = wait_log_lines(&logs(dir), 4, Duration::from_secs(10));
    let peak = peak_rss_kb(logger.child.id());
    no_trouble(&logger.stop());
    assert!(peak < bound, "peak RSS {peak} kB, {baseline} kB before");
    assert_eq!(
        lines.len(),
        4,
        "the retained state is not filed: {lines:#?}"
    );
    assert!(lines[0].contains("1000"), "{lines:#?}");
    // The broker is what keeps them away, and says so.
    let log = std::fs::read_to_string(broker.file("mosquitto.log")).unwrap();
    let dropped = log
        .lines()
        .filter(|l| l.contains("Dropping too large outgoing PUBLISH for linkymon-logger-"))
        .count();
    assert_eq!(dropped, 2, "live and queued: {log}");
}

/// A logger configuration for the TLS broker with `mqtt` keys.
fn tls_logger(dir: &Path, broker: &Broker, mqtt: &str) -> PathBuf {
    write_config(
        dir,
        broker.port,
        &format!("  tls: true\n{mqtt}{}", logger_section(dir)),
    )
}

#[test]
fn the_logger_speaks_tls_with_the_ca_and_says_clearly_when_the_ca_is_wrong() {
    let broker = tls_broker();
    let temp = tempfile::tempdir().unwrap();
    let dir = temp.path();
    let creds = format!("  username: {USER}\n  password: {PASSWORD}\n");
    let config = tls_logger(
        dir,
        &broker,
        &format!("  ca_file: {}\n{creds}", broker.file("ca.pem").display()),
    );
    let logger = Running::logger(&config);
    let payload = state(ID, Timestamp::now(), "1000", "");
    let ca = broker.file("ca.pem");
    let args = [
        "--cafile",
        ca.to_str().unwrap(),
        "-u",
        USER,
        "-P",
        PASSWORD,
        "-q",
        "1",
        "-t",
        "linky/021728123456/state",
        "-m",
        &payload,
    ];
    assert!(mosquitto_pub_with(broker.port, &args).success());
    let lines = wait_log_lines(&logs(dir), 1, Duration::from_secs(5));
    assert_eq!(lines.len(), 1);
    let said = logger.stop();
    assert!(!said.iter().any(|l| l.contains(PASSWORD)), "{said:#?}");

    let other = tempfile::tempdir().unwrap();
    let config = tls_logger(
        other.path(),
        &broker,
        &format!(
            "  ca_file: {}\n{creds}",
            broker.file("other-ca.pem").display()
        ),
    );
    let logger = Running::start(&config, "logger");
    let line = logger.wait_stderr("certificate is not trusted", Duration::from_secs(10));
    assert!(line.contains("mqtt.ca_file"), "{line}");
    std::thread::sleep(Duration::from_secs(2));
    let said = logger.stop();
    assert_eq!(
        said.iter().filter(|l| l.contains("not trusted")).count(),
        1,
        "{said:#?}"
    );
}

#[test]
fn the_logger_logs_in_with_a_client_certificate_when_the_broker_requires_one() {
    let broker = Broker::start_with(|dir| {
        make_certificates(dir);
        openssl(
            dir,
            &[
                "req",
                "-newkey",
                "ec",
                "-pkeyopt",
                "ec_paramgen_curve:prime256v1",
                "-nodes",
                "-keyout",
                "client.key",
                "-out",
                "client.csr",
                "-subj",
                "/CN=linkymon-logger",
            ],
        );
        // rustls takes X.509 v3 certificates only: extensions make it one.
        std::fs::write(
            dir.join("client.ext"),
            "basicConstraints=CA:FALSE\nextendedKeyUsage=clientAuth\n",
        )
        .unwrap();
        openssl(
            dir,
            &[
                "x509",
                "-req",
                "-in",
                "client.csr",
                "-CA",
                "ca.pem",
                "-CAkey",
                "ca.key",
                "-CAcreateserial",
                "-out",
                "client.pem",
                "-days",
                "2",
                "-extfile",
                "client.ext",
            ],
        );
        for file in ["server.key", "client.key"] {
            use std::os::unix::fs::PermissionsExt;
            let perms = std::fs::Permissions::from_mode(0o644);
            std::fs::set_permissions(dir.join(file), perms).unwrap();
        }
        let file = |name: &str| dir.join(name).display().to_string();
        format!(
            "cafile {}\ncertfile {}\nkeyfile {}\nrequire_certificate true\n\
             allow_anonymous true\npersistence false\n",
            file("ca.pem"),
            file("server.pem"),
            file("server.key"),
        )
    });
    let temp = tempfile::tempdir().unwrap();
    let dir = temp.path();
    let (ca, cert, key) = (
        broker.file("ca.pem"),
        broker.file("client.pem"),
        broker.file("client.key"),
    );
    // Without the certificate, the broker refuses: said in one line, no lines logged.
    let config = tls_logger(dir, &broker, &format!("  ca_file: {}\n", ca.display()));
    let refused = Running::start(&config, "logger");
    refused.wait_stderr("cannot use the MQTT broker", Duration::from_secs(10));
    drop(refused);
    let config = tls_logger(
        dir,
        &broker,
        &format!(
            "  ca_file: {}\n  client_cert: {}\n  client_key: {}\n",
            ca.display(),
            cert.display(),
            key.display()
        ),
    );
    let logger = Running::logger(&config);
    let payload = state(ID, Timestamp::now(), "1000", "");
    let args = [
        "--cafile",
        ca.to_str().unwrap(),
        "--cert",
        cert.to_str().unwrap(),
        "--key",
        key.to_str().unwrap(),
        "-q",
        "1",
        "-t",
        "linky/021728123456/state",
        "-m",
        &payload,
    ];
    assert!(mosquitto_pub_with(broker.port, &args).success());
    let lines = wait_log_lines(&logs(dir), 1, Duration::from_secs(5));
    assert_eq!(lines.len(), 1);
    logger.stop();
}
