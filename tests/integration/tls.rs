//! `mqtt.tls` against a real mosquitto TLS listener with a password file, certificates made
//! by `openssl` for each test: good credentials get through; a wrong password and an
//! untrusted certificate each give one clear log line while the daemon keeps retrying, and the
//! password never shows.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use crate::support::{Broker, Running, free_port, linkymon, require, write_config};

pub(crate) const USER: &str = "linky";
pub(crate) const PASSWORD: &str = "s3cr3t-Pa55word";

pub(crate) fn openssl(dir: &Path, args: &[&str]) {
    require("openssl");
    let output = Command::new("openssl")
        .current_dir(dir)
        .args(args)
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "openssl {args:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
}

/// A CA, a server certificate it signed for 127.0.0.1 and localhost, and a second CA that
/// signed nothing the broker uses.
pub(crate) fn make_certificates(dir: &Path) {
    let ec = [
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:prime256v1",
        "-nodes",
    ];
    for (name, subject) in [
        ("ca", "/CN=linkymon test CA"),
        ("other-ca", "/CN=someone else"),
    ] {
        let (key, cert) = (format!("{name}.key"), format!("{name}.pem"));
        let mut args = vec!["req", "-x509"];
        args.extend(ec);
        args.extend([
            "-keyout", &key, "-out", &cert, "-days", "2", "-subj", subject,
        ]);
        openssl(dir, &args);
    }
    let mut args = vec!["req"];
    args.extend(ec);
    args.extend([
        "-keyout",
        "server.key",
        "-out",
        "server.csr",
        "-subj",
        "/CN=localhost",
    ]);
    openssl(dir, &args);
    std::fs::write(
        dir.join("san.ext"),
        "subjectAltName=IP:127.0.0.1,DNS:localhost\n",
    )
    .unwrap();
    openssl(
        dir,
        &[
            "x509",
            "-req",
            "-in",
            "server.csr",
            "-CA",
            "ca.pem",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-out",
            "server.pem",
            "-days",
            "2",
            "-extfile",
            "san.ext",
        ],
    );
}

/// mosquitto with one TLS listener that wants a user name and password.
pub(crate) fn tls_broker() -> Broker {
    Broker::start_with(|dir| {
        make_certificates(dir);
        require("mosquitto_passwd");
        let status = Command::new("mosquitto_passwd")
            .args(["-c", "-b"])
            .arg(dir.join("passwords"))
            .args([USER, PASSWORD])
            .status()
            .unwrap();
        assert!(status.success());
        // Run as root, mosquitto drops to its own user before reading the password file and
        // the key: they must be readable by others (this is a throwaway test directory).
        for file in ["passwords", "server.key"] {
            use std::os::unix::fs::PermissionsExt;
            let perms = std::fs::Permissions::from_mode(0o644);
            std::fs::set_permissions(dir.join(file), perms).unwrap();
        }
        let file = |name: &str| dir.join(name).display().to_string();
        format!(
            "cafile {}\ncertfile {}\nkeyfile {}\n\
             allow_anonymous false\npassword_file {}\npersistence false\n",
            file("ca.pem"),
            file("server.pem"),
            file("server.key"),
            file("passwords"),
        )
    })
}

/// The first `state` message, read as a user would with `mosquitto_sub`.
fn first_state(broker: &Broker, timeout: Duration) -> String {
    let output = Command::new("mosquitto_sub")
        .args(["-h", "127.0.0.1", "-p", &broker.port.to_string()])
        .arg("--cafile")
        .arg(broker.file("ca.pem"))
        .args([
            "-u",
            USER,
            "-P",
            PASSWORD,
            "-t",
            "linky/+/state",
            "-T",
            "linky/bridge/state",
            "-v",
            "-C",
            "1",
        ])
        .args(["-W", &timeout.as_secs().to_string()])
        .output()
        .unwrap();
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// `linkymon run` on a simulated meter, publishing through `broker` with the CA file `ca` of
/// the broker's directory and `password`; its configuration is in `dir`.
fn start_daemon(dir: &Path, broker: &Broker, ca: &str, password: &str) -> Running {
    let extra = format!(
        "  tls: true\n  ca_file: {}\n  username: {USER}\n  password: {password}\n\
         meter:\n  port: simulate\n  simulate_speed: 60\npublish:\n  interval: 0\n",
        broker.file(ca).display()
    );
    let config = write_config(dir, broker.port, &extra);
    Running::spawn(linkymon(&config, &["run"]).stdout(Stdio::null()))
}

/// SIGTERM, an exit within 10 s, and every line it wrote.
fn stop(mut daemon: Running) -> Vec<String> {
    daemon.signal("TERM");
    daemon.wait(Duration::from_secs(10));
    daemon.stderr()
}

fn assert_no_password(lines: &[String]) {
    for line in lines {
        assert!(!line.contains(PASSWORD), "the password leaked: {line}");
    }
}

#[test]
fn good_credentials_over_tls_deliver_states_to_a_tls_subscriber() {
    let broker = tls_broker();
    let dir = tempfile::tempdir().unwrap();
    let daemon = start_daemon(dir.path(), &broker, "ca.pem", PASSWORD);
    let state = first_state(&broker, Duration::from_secs(15));
    assert!(state.contains("\"meter\":"), "no state message: {state:?}");
    daemon.wait_stderr("connected to the MQTT broker", Duration::from_secs(5));
    assert_no_password(&stop(daemon));
}

#[test]
fn a_wrong_password_is_one_clear_line_and_the_daemon_keeps_retrying() {
    let broker = tls_broker();
    let dir = tempfile::tempdir().unwrap();
    let mut daemon = start_daemon(dir.path(), &broker, "ca.pem", "not-the-password");
    daemon.wait_stderr("refused the login", Duration::from_secs(10));
    std::thread::sleep(Duration::from_secs(3));
    assert!(
        daemon.is_running(),
        "the daemon exited: {:#?}",
        daemon.stderr()
    );
    let lines = stop(daemon);
    let refusals = lines.iter().filter(|l| l.contains("refused")).count();
    assert_eq!(refusals, 1, "{lines:#?}");
    for line in &lines {
        assert!(
            !line.contains("not-the-password"),
            "the password leaked: {line}"
        );
        assert!(!line.contains("panicked"), "{line}");
    }
}

#[test]
fn an_untrusted_certificate_is_one_clear_line_about_the_certificate() {
    let broker = tls_broker();
    let dir = tempfile::tempdir().unwrap();
    let daemon = start_daemon(dir.path(), &broker, "other-ca.pem", PASSWORD);
    let line = daemon.wait_stderr("certificate is not trusted", Duration::from_secs(10));
    assert!(line.contains("mqtt.ca_file"), "{line}");
    std::thread::sleep(Duration::from_secs(2));
    let lines = stop(daemon);
    let complaints = lines.iter().filter(|l| l.contains("not trusted")).count();
    assert_eq!(complaints, 1, "{lines:#?}");
    assert_no_password(&lines);
}

#[test]
fn a_config_readable_by_others_that_holds_a_password_draws_one_warning() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    // A capture that is not there ends the run right after the start-up warnings.
    let extra = format!(
        "  username: {USER}\n  password: {PASSWORD}\nmeter:\n  port: replay:/nonexistent.tic\n"
    );
    let config = write_config(dir.path(), free_port(), &extra);
    for (mode, warnings) in [(0o644, 1), (0o640, 1), (0o600, 0)] {
        std::fs::set_permissions(&config, std::fs::Permissions::from_mode(mode)).unwrap();
        let output = linkymon(&config, &["run"]).output().unwrap();
        let stderr = String::from_utf8_lossy(&output.stderr);
        let found = stderr.lines().filter(|l| l.contains("chmod 600")).count();
        assert_eq!(found, warnings, "mode {mode:o}: {stderr}");
        assert!(!stderr.contains(PASSWORD), "the password leaked: {stderr}");
    }
}
