//! The linkymon executable: a command with a clean environment, its configuration file, and
//! a running process whose stderr is collected.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use super::wait_until;

/// The linkymon executable under test, without the caller's `LINKYMON_` variables.
pub fn command() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_linkymon"));
    for (key, _) in std::env::vars_os() {
        if key.to_string_lossy().starts_with("LINKYMON_") {
            cmd.env_remove(key);
        }
    }
    cmd
}

/// `linkymon ARGS -c CONFIG`.
pub fn linkymon(config: &Path, args: &[&str]) -> Command {
    let mut cmd = command();
    cmd.args(args).arg("-c").arg(config);
    cmd
}

/// Writes `dir/config.yaml` for a broker on 127.0.0.1:`broker_port`, spooling to
/// `dir/spool`, followed by `extra` (more `mqtt:` keys, indented, or other sections).
pub fn write_config(dir: &Path, broker_port: u16, extra: &str) -> PathBuf {
    let path = dir.join("config.yaml");
    let spool = dir.join("spool");
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

/// Sends a signal to a child process.
pub fn signal(child: &Child, signal: &str) {
    let status = Command::new("kill")
        .args(["-s", signal, &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
}

/// Waits for a child to exit, at most `timeout`; kills it and panics after that.
pub fn wait_exit(child: &mut Child, timeout: Duration) -> ExitStatus {
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

/// Collects the lines a child writes to a pipe, as they come, on a thread of their own that
/// ends with the pipe.
pub fn collect_lines(
    pipe: impl std::io::Read + Send + 'static,
) -> (Arc<Mutex<Vec<String>>>, JoinHandle<()>) {
    let lines = Arc::new(Mutex::new(Vec::new()));
    let sink = lines.clone();
    let reader = std::thread::spawn(move || {
        for line in BufReader::new(pipe).lines() {
            let Ok(line) = line else { break };
            sink.lock().unwrap().push(line);
        }
    });
    (lines, reader)
}

/// A running linkymon whose stderr is collected line by line; killed on drop.
pub struct Running {
    pub child: Child,
    stderr: Arc<Mutex<Vec<String>>>,
    reader: JoinHandle<()>,
}

impl Running {
    /// `linkymon COMMAND -c CONFIG`.
    pub fn start(config: &Path, command: &str) -> Self {
        Self::spawn(&mut linkymon(config, &[command]))
    }

    /// Any linkymon command line (see [`command`]); stderr is taken over, stdout is left as set.
    pub fn spawn(command: &mut Command) -> Self {
        let mut child = command.stderr(Stdio::piped()).spawn().unwrap();
        let (stderr, reader) = collect_lines(child.stderr.take().unwrap());
        Running {
            child,
            stderr,
            reader,
        }
    }

    /// Starts `linkymon logger` and waits until it has subscribed.
    pub fn logger(config: &Path) -> Self {
        let logger = Self::start(config, "logger");
        logger.wait_stderr("connected to the MQTT broker", Duration::from_secs(5));
        // The SUBSCRIBE follows the ConnAck at once; give the broker a moment to take it.
        std::thread::sleep(Duration::from_millis(300));
        logger
    }

    /// Whether it has not exited yet.
    pub fn is_running(&mut self) -> bool {
        self.child.try_wait().unwrap().is_none()
    }

    /// Sends it a signal (`TERM`, `INT`, `KILL`).
    pub fn signal(&self, name: &str) {
        signal(&self.child, name);
    }

    /// Waits for its exit, at most `timeout` (then kills it and panics), and for the last
    /// lines of its stderr.
    pub fn wait(&mut self, timeout: Duration) -> ExitStatus {
        let status = wait_exit(&mut self.child, timeout);
        wait_until(Duration::from_secs(2), "its stderr did not close", || {
            self.reader.is_finished()
        });
        status
    }

    /// SIGKILL: it dies without a word to anyone.
    pub fn kill(&mut self) {
        self.child.kill().unwrap();
        self.child.wait().unwrap();
    }

    /// SIGTERM, a clean exit within 5 s, and everything it said.
    pub fn stop(mut self) -> Vec<String> {
        self.signal("TERM");
        let status = self.wait(Duration::from_secs(5));
        assert!(status.success(), "{status}");
        self.stderr()
    }

    /// Every line of its stderr so far.
    pub fn stderr(&self) -> Vec<String> {
        self.stderr.lock().unwrap().clone()
    }

    /// Waits until a line of its stderr contains `what`, and returns that line.
    pub fn wait_stderr(&self, what: &str, timeout: Duration) -> String {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(line) = self.stderr().into_iter().find(|l| l.contains(what)) {
                return line;
            }
            assert!(
                Instant::now() < deadline,
                "{what:?} was not said within {timeout:?}: {:#?}",
                self.stderr()
            );
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// How many lines of its stderr contain `what`.
    pub fn said(&self, what: &str) -> usize {
        self.stderr().iter().filter(|l| l.contains(what)).count()
    }

    /// Its stderr so far, shared with a thread that reads it (see `baud.rs`).
    pub fn stderr_handle(&self) -> Arc<Mutex<Vec<String>>> {
        self.stderr.clone()
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The peak resident memory of process `pid` (`VmHWM`), in kB.
pub fn peak_rss_kb(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap()
}

/// The CPU time of every thread of process `pid`, in seconds, to the nanosecond (schedstat).
#[allow(dead_code)] // the benches measure with it; the tests do not
pub fn cpu_seconds(pid: u32) -> f64 {
    let mut ns = 0u64;
    for task in std::fs::read_dir(format!("/proc/{pid}/task")).unwrap() {
        let stat =
            std::fs::read_to_string(task.unwrap().path().join("schedstat")).unwrap_or_default();
        ns += stat
            .split_whitespace()
            .next()
            .and_then(|v| v.parse::<u64>().ok())
            .unwrap_or(0);
    }
    ns as f64 / 1e9
}
