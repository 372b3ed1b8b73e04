//! `mqtt.tls` against a real mosquitto TLS listener with a password file, certificates made
//! by `openssl` for each test: good credentials get through; a wrong password and an
//! untrusted certificate each give one clear log line while the daemon keeps retrying, and the
//! password never shows.

use std::net::TcpStream;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::mqtt::{TempDir, free_port, linkymon, signal, wait_exit, write_config};

const USER: &str = "linky";
const PASSWORD: &str = "s3cr3t-Pa55word";

fn openssl(dir: &TempDir, args: &[&str]) {
    let output = Command::new("openssl")
        .current_dir(&dir.0)
        .args(args)
        .output()
        .expect("openssl is not installed: run ./scripts/test.sh");
    assert!(
        output.status.success(),
        "openssl {args:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
}

/// A CA, a server certificate it signed for 127.0.0.1 and localhost, and a second CA that
/// signed nothing the broker uses.
fn make_certificates(dir: &TempDir) {
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
        dir.path("san.ext"),
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
struct TlsBroker {
    port: u16,
    child: Child,
    dir: TempDir,
}

impl TlsBroker {
    fn start() -> Self {
        let dir = TempDir::new("tls-broker");
        make_certificates(&dir);
        let status = Command::new("mosquitto_passwd")
            .args(["-c", "-b"])
            .arg(dir.path("passwords"))
            .args([USER, PASSWORD])
            .status()
            .expect("mosquitto_passwd is not installed: run ./scripts/test.sh");
        assert!(status.success());
        // Run as root, mosquitto drops to its own user before reading the password file and
        // the key: they must be readable by others (this is a throwaway test directory).
        for file in ["passwords", "server.key"] {
            use std::os::unix::fs::PermissionsExt;
            let perms = std::fs::Permissions::from_mode(0o644);
            std::fs::set_permissions(dir.path(file), perms).unwrap();
        }
        let port = free_port();
        let conf = dir.path("mosquitto.conf");
        let file = |name: &str| dir.path(name).display().to_string();
        std::fs::write(
            &conf,
            format!(
                "listener {port} 127.0.0.1\ncafile {}\ncertfile {}\nkeyfile {}\n\
                 allow_anonymous false\npassword_file {}\npersistence false\n",
                file("ca.pem"),
                file("server.pem"),
                file("server.key"),
                file("passwords"),
            ),
        )
        .unwrap();
        let child = Command::new("mosquitto")
            .arg("-c")
            .arg(&conf)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("mosquitto is not installed: run ./scripts/test.sh");
        let deadline = Instant::now() + Duration::from_secs(5);
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                Instant::now() < deadline,
                "mosquitto did not start on {port}"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        TlsBroker { port, child, dir }
    }

    fn file(&self, name: &str) -> PathBuf {
        self.dir.path(name)
    }

    /// The first `state` message, read as a user would with `mosquitto_sub`.
    fn first_state(&self, timeout: Duration) -> String {
        let output = Command::new("mosquitto_sub")
            .args(["-h", "127.0.0.1", "-p", &self.port.to_string()])
            .arg("--cafile")
            .arg(self.file("ca.pem"))
            .args([
                "-u",
                USER,
                "-P",
                PASSWORD,
                "-t",
                "linky/+/state",
                "-v",
                "-C",
                "1",
            ])
            .args(["-W", &timeout.as_secs().to_string()])
            .output()
            .unwrap();
        String::from_utf8_lossy(&output.stdout).into_owned()
    }
}

impl Drop for TlsBroker {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `linkymon run` on a simulated meter, its stderr collected line by line.
struct Daemon {
    child: Child,
    stderr: Arc<Mutex<Vec<String>>>,
    _dir: TempDir,
}

impl Daemon {
    fn start(broker: &TlsBroker, ca: &str, password: &str) -> Self {
        let dir = TempDir::new("tls-daemon");
        let extra = format!(
            "  tls: true\n  ca_file: {}\n  username: {USER}\n  password: {password}\n\
             meter:\n  port: simulate\n  simulate_speed: 60\npublish:\n  interval: 0\n",
            broker.file(ca).display()
        );
        let config = write_config(&dir, broker.port, &extra);
        let mut child = linkymon(&config, &["run"])
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let stderr = crate::mqtt::collect_lines(child.stderr.take().unwrap());
        Daemon {
            child,
            stderr,
            _dir: dir,
        }
    }

    fn lines(&self) -> Vec<String> {
        self.stderr.lock().unwrap().clone()
    }

    fn wait_for_line(&self, what: &str, timeout: Duration) -> String {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(line) = self.lines().into_iter().find(|l| l.contains(what)) {
                return line;
            }
            assert!(
                Instant::now() < deadline,
                "no line with {what:?} within {timeout:?}: {:#?}",
                self.lines()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// SIGTERM, then every line it wrote.
    fn stop(mut self) -> Vec<String> {
        signal(&self.child, "TERM");
        wait_exit(&mut self.child, Duration::from_secs(10));
        // Let the reader thread take the last lines.
        std::thread::sleep(Duration::from_millis(100));
        self.lines()
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn assert_no_password(lines: &[String]) {
    for line in lines {
        assert!(!line.contains(PASSWORD), "the password leaked: {line}");
    }
}

#[test]
fn good_credentials_over_tls_deliver_states_to_a_tls_subscriber() {
    let broker = TlsBroker::start();
    let daemon = Daemon::start(&broker, "ca.pem", PASSWORD);
    let state = broker.first_state(Duration::from_secs(15));
    assert!(state.contains("\"meter\":"), "no state message: {state:?}");
    daemon.wait_for_line("connected to the MQTT broker", Duration::from_secs(5));
    assert_no_password(&daemon.stop());
}

#[test]
fn a_wrong_password_is_one_clear_line_and_the_daemon_keeps_retrying() {
    let broker = TlsBroker::start();
    let daemon = Daemon::start(&broker, "ca.pem", "not-the-password");
    daemon.wait_for_line("refused the login", Duration::from_secs(10));
    std::thread::sleep(Duration::from_secs(3));
    let mut daemon = daemon;
    assert!(
        daemon.child.try_wait().unwrap().is_none(),
        "the daemon exited: {:#?}",
        daemon.lines()
    );
    let lines = daemon.stop();
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
    let broker = TlsBroker::start();
    let daemon = Daemon::start(&broker, "other-ca.pem", PASSWORD);
    let line = daemon.wait_for_line("certificate is not trusted", Duration::from_secs(10));
    assert!(line.contains("mqtt.ca_file"), "{line}");
    std::thread::sleep(Duration::from_secs(2));
    let lines = daemon.stop();
    let complaints = lines.iter().filter(|l| l.contains("not trusted")).count();
    assert_eq!(complaints, 1, "{lines:#?}");
    assert_no_password(&lines);
}

#[test]
fn a_config_readable_by_others_that_holds_a_password_draws_one_warning() {
    use std::os::unix::fs::PermissionsExt;
    let dir = TempDir::new("config-mode");
    // A capture that is not there ends the run right after the start-up warnings.
    let extra = format!(
        "  username: {USER}\n  password: {PASSWORD}\nmeter:\n  port: replay:/nonexistent.tic\n"
    );
    let config = write_config(&dir, free_port(), &extra);
    for (mode, warnings) in [(0o644, 1), (0o640, 1), (0o600, 0)] {
        std::fs::set_permissions(&config, std::fs::Permissions::from_mode(mode)).unwrap();
        let output = linkymon(&config, &["run"]).output().unwrap();
        let stderr = String::from_utf8_lossy(&output.stderr);
        let found = stderr.lines().filter(|l| l.contains("chmod 600")).count();
        assert_eq!(found, warnings, "mode {mode:o}: {stderr}");
        assert!(!stderr.contains(PASSWORD), "the password leaked: {stderr}");
    }
}
