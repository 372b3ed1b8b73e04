//! What the integration tests share: the real parts they run (a mosquitto broker, PostgreSQL, a
//! `mosquitto_sub` subscriber, the linkymon executable, a socat pseudo-terminal), the files
//! they read (captures, golden files, daily logs) and the meters those files describe.
//!
//! A test that needs a program fails with one line naming it and saying to run
//! `./scripts/test.sh`, which installs the test dependencies: nothing is skipped in silence.
//!
//! `benches/daemon.rs` includes this module too (`#[path]`), for the broker and the PTY.

mod broker;
mod files;
mod postgres;
mod process;
mod pty;

use std::time::{Duration, Instant};

#[cfg_attr(not(feature = "embedded-broker"), allow(unused_imports))] // only the broker tests
pub use broker::mosquitto_pub_with;
pub use broker::{Broker, Subscriber, free_port, mosquitto_pub, wait_for_port};
pub use files::{
    assert_golden, captures, corpus_dir, daily_log_lines, daily_logs, fixtures_dir, root,
    wait_log_lines, wire_bytes,
};
pub use postgres::Postgres;
#[allow(unused_imports)] // used by the benches, which include this module
pub use process::cpu_seconds;
pub use process::{Running, command, linkymon, peak_rss_kb, write_config};
pub use pty::Pty;

/// The meter `port: simulate` and `linkymon demo` make up (its ADCO).
pub const SIM_ID: &str = "021728123456";

/// The meter of the shipped capture `hist-1p-tempo-pyteleinfo.tic` (historic Tempo).
pub const TEMPO_ID: &str = "021861348497";

/// The capture most daemon tests replay: ten historic Tempo frames of meter [`TEMPO_ID`].
pub const TEMPO_CAPTURE: &str = "hist-1p-tempo-pyteleinfo.tic";

/// Whether `program` is on the `PATH`.
pub fn is_installed(program: &str) -> bool {
    std::env::var_os("PATH")
        .is_some_and(|paths| std::env::split_paths(&paths).any(|dir| dir.join(program).is_file()))
}

/// Panics, in one line, unless `program`, one of the test dependencies that
/// `./scripts/test.sh` installs, is on the `PATH`.
pub fn require(program: &str) {
    assert!(
        is_installed(program),
        "{program} is not installed: run ./scripts/test.sh, which installs the test dependencies"
    );
}

/// Polls `done` until it holds; after `timeout`, panics saying what did not happen.
pub fn wait_until(timeout: Duration, what: &str, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + timeout;
    while !done() {
        assert!(Instant::now() < deadline, "{what} (waited {timeout:?})");
        std::thread::sleep(Duration::from_millis(10));
    }
}
