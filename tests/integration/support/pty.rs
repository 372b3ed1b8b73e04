//! A socat pseudo-terminal pair standing for the meter's serial line.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use super::{require, wait_until};

/// A socat pseudo-terminal pair: the daemon reads `meter`, the test writes into `feed`.
pub struct Pty {
    /// The socat process that holds both ends.
    child: Child,
    pub meter: PathBuf,
    pub feed: PathBuf,
}

impl Pty {
    /// Starts socat with both links in `dir` and waits for them.
    pub fn start(dir: &Path) -> Self {
        require("socat");
        let (meter, feed) = (dir.join("meter"), dir.join("feed"));
        let child = Command::new("socat")
            .arg(format!("pty,raw,echo=0,link={}", meter.display()))
            .arg(format!("pty,raw,echo=0,link={}", feed.display()))
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        wait_until(
            Duration::from_secs(5),
            "socat did not create the PTY pair",
            || meter.exists() && feed.exists(),
        );
        Pty { child, meter, feed }
    }

    /// The meter's end of the line, to write its bytes into.
    pub fn open_feed(&self) -> File {
        std::fs::OpenOptions::new()
            .write(true)
            .open(&self.feed)
            .unwrap()
    }
}

impl Drop for Pty {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
