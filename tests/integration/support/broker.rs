//! A mosquitto broker on a free port, `mosquitto_sub` as a user runs it, and `mosquitto_pub`.

use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tempfile::TempDir;

use super::process::{collect_lines, signal, wait_exit};
use super::{require, wait_until};

/// A port nobody listens on right now.
///
/// The next port is free too: the embedded broker's MQTT 5 listener takes `port + 1` by
/// default, and a test that runs it must not meet another test's listener there.
pub fn free_port() -> u16 {
    loop {
        let first = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = first.local_addr().unwrap().port();
        if port < u16::MAX && TcpListener::bind(("127.0.0.1", port + 1)).is_ok() {
            return port;
        }
    }
}

/// Waits until something accepts connections on `port` of 127.0.0.1.
pub fn wait_for_port(port: u16, timeout: Duration) {
    wait_until(timeout, &format!("nothing listens on port {port}"), || {
        TcpStream::connect(("127.0.0.1", port)).is_ok()
    });
}

/// A mosquitto broker with one listener on 127.0.0.1, killed on drop.
pub struct Broker {
    pub port: u16,
    child: Option<Child>,
    dir: TempDir,
}

impl Broker {
    /// An open broker without persistence.
    pub fn start() -> Self {
        Self::start_with(|_| "allow_anonymous true\npersistence false\n".into())
    }

    /// A broker that keeps sessions, their queued messages and retained values across a
    /// restart, as Debian's mosquitto does (`persistence true`); see [`Broker::stop_gracefully`].
    pub fn start_persistent() -> Self {
        // No cap on a client's queue (mosquitto's default is 1000), so that a backlog sent
        // faster than the logger takes it is not dropped.
        Self::start_with(|dir| {
            format!(
                "allow_anonymous true\npersistence true\npersistence_location {}/\n\
                 max_queued_messages 0\n",
                dir.display()
            )
        })
    }

    /// A broker whose listener has the settings `settings` writes, given the broker's own
    /// directory (for its database, certificates, a password file).
    pub fn start_with(settings: impl FnOnce(&Path) -> String) -> Self {
        require("mosquitto");
        let dir = tempfile::tempdir().unwrap();
        // mosquitto started as root drops to its own user, which must read its files and
        // write its database here.
        std::fs::set_permissions(
            dir.path(),
            std::os::unix::fs::PermissionsExt::from_mode(0o777),
        )
        .unwrap();
        let port = free_port();
        let settings = settings(dir.path());
        std::fs::write(
            dir.path().join("mosquitto.conf"),
            format!("listener {port} 127.0.0.1\n{settings}"),
        )
        .unwrap();
        let mut broker = Broker {
            port,
            child: None,
            dir,
        };
        broker.restart();
        broker
    }

    /// A file in the broker's directory.
    pub fn file(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// Stops the broker (it loses its retained messages, having no persistence).
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Stops the broker as `systemctl stop mosquitto` does (SIGTERM): it saves its sessions
    /// first when it has persistence.
    pub fn stop_gracefully(&mut self) {
        if let Some(mut child) = self.child.take() {
            signal(&child, "TERM");
            wait_exit(&mut child, Duration::from_secs(5));
        }
    }

    /// Starts it again on the same port.
    pub fn restart(&mut self) {
        self.stop();
        let child = Command::new("mosquitto")
            .arg("-c")
            .arg(self.file("mosquitto.conf"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        self.child = Some(child);
        wait_for_port(self.port, Duration::from_secs(5));
    }
}

impl Drop for Broker {
    fn drop(&mut self) {
        self.stop();
    }
}

/// `mosquitto_sub -v` on some topics, its lines collected as they come.
pub struct Subscriber {
    child: Child,
    lines: Arc<Mutex<Vec<String>>>,
    probe: String,
}

impl Subscriber {
    pub fn start(port: u16, topics: &[&str]) -> Self {
        Self::start_with(port, topics, &[])
    }

    /// Like [`Subscriber::start`], with more `mosquitto_sub` options (a Last Will, credentials).
    pub fn start_with(port: u16, topics: &[&str], options: &[&str]) -> Self {
        require("mosquitto_sub");
        // mosquitto_sub block-buffers a pipe: stdbuf makes it hand over each line at once.
        let mut cmd = Command::new("stdbuf");
        cmd.args([
            "-oL",
            "mosquitto_sub",
            "-h",
            "127.0.0.1",
            "-p",
            &port.to_string(),
            "-v",
            "-q",
            "1",
        ]);
        cmd.args(options);
        let probe = format!("linkymon-test/probe/{}", free_port());
        for t in topics.iter().copied().chain([probe.as_str()]) {
            cmd.args(["-t", t]);
        }
        let mut child = cmd
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let (lines, _) = collect_lines(child.stdout.take().unwrap());
        // mosquitto_sub says nothing when subscribed: publish probes until one comes back.
        let deadline = Instant::now() + Duration::from_secs(5);
        while !lines.lock().unwrap().iter().any(|l| l.starts_with(&probe)) {
            assert!(Instant::now() < deadline, "mosquitto_sub did not subscribe");
            mosquitto_pub(port, &probe, "probe");
            std::thread::sleep(Duration::from_millis(20));
        }
        Subscriber {
            child,
            lines,
            probe,
        }
    }

    /// Sends a signal to this `mosquitto_sub` (`KILL`: it dies without a word to the broker).
    #[cfg_attr(not(feature = "embedded-broker"), allow(dead_code))] // only the broker tests
    pub fn signal(&self, name: &str) {
        signal(&self.child, name);
    }

    /// Every line so far.
    pub fn lines(&self) -> Vec<String> {
        self.lines
            .lock()
            .unwrap()
            .iter()
            .filter(|l| !l.starts_with(&self.probe))
            .cloned()
            .collect()
    }

    /// Waits until a line satisfies `pred`; panics with what was seen after `timeout`.
    pub fn wait_for(&self, what: &str, timeout: Duration, pred: impl Fn(&str) -> bool) -> String {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(line) = self.lines().into_iter().find(|l| pred(l)) {
                return line;
            }
            if Instant::now() > deadline {
                let lines = self.lines();
                let tail: Vec<_> = lines
                    .iter()
                    .rev()
                    .take(10)
                    .map(|l| l.chars().take(120).collect::<String>())
                    .collect();
                panic!(
                    "no {what} within {timeout:?}; {} lines, last ones: {tail:#?}",
                    lines.len()
                );
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// Waits until `topic` has at least `count` messages and returns their payloads.
    pub fn wait_count(&self, topic: &str, count: usize, timeout: Duration) -> Vec<String> {
        let deadline = Instant::now() + timeout;
        loop {
            let payloads = self.payloads(topic);
            if payloads.len() >= count || Instant::now() > deadline {
                return payloads;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// Waits until `count` lines satisfy `pred` and returns every line that does, or what
    /// there is after `timeout`.
    pub fn wait_matching(
        &self,
        count: usize,
        timeout: Duration,
        pred: impl Fn(&str) -> bool,
    ) -> Vec<String> {
        let deadline = Instant::now() + timeout;
        loop {
            let lines: Vec<String> = self.lines().into_iter().filter(|l| pred(l)).collect();
            if lines.len() >= count || Instant::now() > deadline {
                return lines;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// The payload of every line on exactly this topic.
    pub fn payloads(&self, topic: &str) -> Vec<String> {
        let prefix = format!("{topic} ");
        self.lines()
            .iter()
            .filter_map(|l| l.strip_prefix(&prefix).map(str::to_owned))
            .collect()
    }
}

impl Drop for Subscriber {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Publishes one message with `mosquitto_pub`.
pub fn mosquitto_pub(port: u16, topic: &str, payload: &str) {
    let status = mosquitto_pub_with(port, &["-t", topic, "-m", payload]);
    assert!(status.success(), "mosquitto_pub -t {topic}: {status}");
}

/// `mosquitto_pub` on the broker at `port` with these arguments (stderr silenced: some
/// tests expect a refusal); its exit status.
pub fn mosquitto_pub_with(port: u16, args: &[&str]) -> ExitStatus {
    require("mosquitto_pub");
    Command::new("mosquitto_pub")
        .args(["-h", "127.0.0.1", "-p", &port.to_string()])
        .args(args)
        .stderr(Stdio::null())
        .status()
        .unwrap()
}
