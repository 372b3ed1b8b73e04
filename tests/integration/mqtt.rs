//! Real parts for the daemon tests: a mosquitto broker on a free port, `mosquitto_sub` as a
//! user runs it, and the linkymon executable with a configuration file.

use std::io::{BufRead, BufReader};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// A scratch directory, removed on drop.
pub struct TempDir(pub PathBuf);

impl TempDir {
    pub fn new(tag: &str) -> Self {
        static COUNTER: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
        let n = COUNTER.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let dir = std::env::temp_dir().join(format!("linkymon-{tag}-{}-{n}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        TempDir(dir)
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.0.join(name)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A port nobody listens on right now.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn require(program: &str) {
    let found = std::env::var_os("PATH")
        .is_some_and(|paths| std::env::split_paths(&paths).any(|dir| dir.join(program).is_file()));
    assert!(
        found,
        "{program} is not installed: run ./scripts/test.sh, which installs the test dependencies"
    );
}

/// Collects the lines a child writes to a pipe, as they come, on a thread of their own.
pub fn collect_lines(pipe: impl std::io::Read + Send + 'static) -> Arc<Mutex<Vec<String>>> {
    let lines = Arc::new(Mutex::new(Vec::new()));
    let sink = lines.clone();
    std::thread::spawn(move || {
        for line in BufReader::new(pipe).lines() {
            let Ok(line) = line else { break };
            sink.lock().unwrap().push(line);
        }
    });
    lines
}

/// A mosquitto broker on 127.0.0.1, killed on drop.
pub struct Broker {
    pub port: u16,
    child: Option<Child>,
    conf: PathBuf,
    _dir: TempDir,
}

impl Broker {
    pub fn start() -> Self {
        Self::start_with("persistence false\n")
    }

    /// A broker that keeps sessions, their queued messages and retained values across a
    /// restart, as Debian's mosquitto does (`persistence true`); see [`Broker::stop_gracefully`].
    pub fn start_persistent() -> Self {
        // No cap on a client's queue (mosquitto's default is 1000), so that a backlog sent
        // faster than the logger takes it is not dropped.
        Self::start_with("persistence true\npersistence_location ./\nmax_queued_messages 0\n")
    }

    fn start_with(extra: &str) -> Self {
        require("mosquitto");
        let dir = TempDir::new("broker");
        let port = free_port();
        let conf = dir.path("mosquitto.conf");
        let extra = extra.replace("./", &format!("{}/", dir.0.display()));
        // mosquitto started as root drops to its own user, which must write its database here.
        std::fs::set_permissions(&dir.0, std::os::unix::fs::PermissionsExt::from_mode(0o777))
            .unwrap();
        std::fs::write(
            &conf,
            format!("listener {port} 127.0.0.1\nallow_anonymous true\n{extra}"),
        )
        .unwrap();
        let mut broker = Broker {
            port,
            child: None,
            conf,
            _dir: dir,
        };
        broker.restart();
        broker
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
            .arg(&self.conf)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(5);
        while TcpStream::connect(("127.0.0.1", self.port)).is_err() {
            assert!(
                Instant::now() < deadline,
                "mosquitto did not start on port {}",
                self.port
            );
            std::thread::sleep(Duration::from_millis(20));
        }
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
        let stdout = child.stdout.take().unwrap();
        let lines = collect_lines(stdout);
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
    require("mosquitto_pub");
    let status = Command::new("mosquitto_pub")
        .args([
            "-h",
            "127.0.0.1",
            "-p",
            &port.to_string(),
            "-t",
            topic,
            "-m",
            payload,
        ])
        .status()
        .unwrap();
    assert!(status.success());
}

/// Writes a configuration file for `linkymon run`.
pub fn write_config(dir: &TempDir, broker_port: u16, extra: &str) -> PathBuf {
    let path = dir.path("config.yaml");
    let spool = dir.path("spool");
    std::fs::write(
        &path,
        format!(
            "mqtt:\n  host: 127.0.0.1\n  port: {broker_port}\n  spool_dir: {}\n{extra}",
            spool.display()
        ),
    )
    .unwrap();
    path
}

/// The linkymon executable with a clean environment for its `LINKYMON_` variables.
pub fn linkymon(config: &Path, args: &[&str]) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_linkymon"));
    cmd.args(args).arg("-c").arg(config);
    for (key, _) in std::env::vars_os() {
        if key.to_string_lossy().starts_with("LINKYMON_") {
            cmd.env_remove(key);
        }
    }
    cmd
}

/// Sends a signal to a child process.
pub fn signal(child: &Child, signal: &str) {
    let status = Command::new("kill")
        .args(["-s", signal, &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
}

/// Waits for a child to exit, at most `timeout`.
pub fn wait_exit(child: &mut Child, timeout: Duration) -> std::process::ExitStatus {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("the process did not exit within {timeout:?}");
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// A running `linkymon` command whose stderr is collected; killed on drop.
pub struct Running {
    pub child: Child,
    pub stderr: Arc<Mutex<Vec<String>>>,
}

impl Running {
    pub fn start(config: &Path, command: &str) -> Self {
        let mut child = linkymon(config, &[command])
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let stderr = collect_lines(child.stderr.take().unwrap());
        Running { child, stderr }
    }

    /// Starts `linkymon logger` and waits until it has subscribed.
    pub fn logger(config: &Path) -> Self {
        let logger = Self::start(config, "logger");
        logger.wait_stderr("connected to the MQTT broker", Duration::from_secs(5));
        // The SUBSCRIBE follows the ConnAck at once; give the broker a moment to take it.
        std::thread::sleep(Duration::from_millis(300));
        logger
    }

    pub fn wait_stderr(&self, what: &str, timeout: Duration) {
        let deadline = Instant::now() + timeout;
        while !self.stderr.lock().unwrap().iter().any(|l| l.contains(what)) {
            assert!(
                Instant::now() < deadline,
                "{what:?} was not said: {:#?}",
                self.stderr.lock().unwrap()
            );
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// How many lines of its stderr contain `what`.
    pub fn said(&self, what: &str) -> usize {
        self.stderr
            .lock()
            .unwrap()
            .iter()
            .filter(|l| l.contains(what))
            .count()
    }

    /// SIGTERM, a clean exit, and what it said.
    pub fn stop(mut self) -> Vec<String> {
        signal(&self.child, "TERM");
        let status = wait_exit(&mut self.child, Duration::from_secs(5));
        assert!(status.success(), "{status}");
        std::thread::sleep(Duration::from_millis(50));
        self.stderr.lock().unwrap().clone()
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
