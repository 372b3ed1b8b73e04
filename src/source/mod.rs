//! Where the bytes come from: a serial port, a replayed capture, or a simulated meter
//! (`meter.port`).
//!
//! Each source hands out raw bytes; none of them parses anything (that is [`crate::tic`]).
//! A source only ends for a replay at the end of its file; a serial port that vanishes is
//! reopened forever.
//!
//! - [`Serial`] (`serial.rs`): the meter's line, with [`baud`] finding its rate in `auto`.
//! - [`Replay`] (`replay.rs`): a capture file paced at the line rate.
//! - [`simulate`]: a synthetic EJP meter, and [`Simulated`], its frames paced in real time.
//! - [`Backoff`]: the delays between attempts to reopen a port or reach a broker.

pub mod baud;
mod replay;
mod serial;
pub mod simulate;

pub use replay::Replay;
pub use serial::{Serial, SerialError};
pub use simulate::Simulated;

use std::io;

use anyhow::Context;
use tokio::time::Instant;

use crate::config::{ConfigError, MeterConfig, MeterMode, PortSpec};
use crate::tic::Mode;
use simulate::SimConfig;

/// Doubling delays for reopening a port or reconnecting to a broker: 1 s, 2 s, then every 4 s.
///
/// Capped low on purpose: a failed attempt (a device node that is not there, a refused TCP
/// connection) costs next to nothing, while after an adapter is plugged back or a broker
/// restarted, however long it was away, data must flow again within 5 s.
#[derive(Debug, Clone, Copy)]
pub struct Backoff {
    next_s: u64,
}

impl Default for Backoff {
    fn default() -> Self {
        Backoff { next_s: 1 }
    }
}

impl Backoff {
    /// The longest wait between two attempts, in seconds.
    pub const MAX_S: u64 = 4;

    /// The delay to wait now; the next one is twice as long, up to [`Backoff::MAX_S`].
    pub fn next_delay(&mut self) -> std::time::Duration {
        let delay = self.next_s;
        self.next_s = (self.next_s * 2).min(Self::MAX_S);
        std::time::Duration::from_secs(delay)
    }

    /// After a success, start again from 1 s.
    pub fn reset(&mut self) {
        self.next_s = 1;
    }
}

/// Any of the byte sources, behind one `read`.
#[derive(Debug)]
pub enum Source {
    /// A real serial port (or a pseudo-terminal).
    Serial(Serial),
    /// A capture file, paced at the line rate.
    Replay(Replay),
    /// A synthetic meter.
    Simulated(Simulated),
}

/// The mode `meter.mode` forces, `None` for `auto`.
pub fn forced_mode(mode: MeterMode) -> Option<Mode> {
    match mode {
        MeterMode::Auto => None,
        MeterMode::Historic => Some(Mode::Historic),
        MeterMode::Standard => Some(Mode::Standard),
    }
}

impl Source {
    /// Opens `meter.port`. A serial port that is missing or cannot be opened at start, and a
    /// capture that cannot be read, are [`ConfigError`]s (exit status 2): the user must fix
    /// `meter.port` (or the permissions), retrying would not help.
    pub fn open(meter: &MeterConfig) -> anyhow::Result<Source> {
        let mode = forced_mode(meter.mode);
        let port_error = |problem: String| ConfigError::BadValue {
            key: "meter.port".into(),
            origin: None,
            problem,
        };
        Ok(match &meter.port {
            PortSpec::Serial(path) => {
                Source::Serial(Serial::open(path, mode).map_err(|e| port_error(e.to_string()))?)
            }
            PortSpec::Replay(path) => Source::Replay(
                Replay::open(path, meter.replay_speed, mode.map(Mode::baud)).map_err(|e| {
                    port_error(format!("cannot read the capture {}: {e}", path.display()))
                })?,
            ),
            PortSpec::Simulate => Source::Simulated(
                Simulated::new(
                    SimConfig {
                        voltage: meter.voltage.into(),
                        ..SimConfig::default()
                    },
                    meter.simulate_speed,
                )
                .context("meter.port: simulate")?,
            ),
        })
    }

    /// Reads some bytes; `Ok(0)` means the source is finished (only a replay finishes).
    pub async fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Source::Serial(s) => Ok(s.read(buf).await),
            Source::Replay(r) => Ok(r.read(buf).await),
            Source::Simulated(s) => Ok(s.read(buf).await),
        }
    }

    /// After each read, what the decoder made of the bytes so far: its count of valid groups
    /// and the mode it found. A serial port in `auto` uses it to find the line rate
    /// ([`baud`]); the other sources have no rate to find.
    pub fn after_read(&mut self, now: Instant, valid_groups: u64, mode: Option<Mode>) {
        if let Source::Serial(s) = self {
            s.after_read(now, valid_groups, mode);
        }
    }

    /// The source's own time, in seconds since it started, given the host's time since then
    /// (`wall_s`): a replay's is the line time of the bytes it delivered (whatever its
    /// speed), a simulated meter's is its simulated time, a serial port's is the host's.
    /// Rates computed from the meter's indexes (power) and the plausibility of their jumps
    /// are measured on it, so a demo at 60× shows the real power, not 60 times it.
    pub fn clock(&self, wall_s: f64) -> f64 {
        match self {
            Source::Serial(_) => wall_s,
            Source::Replay(r) => r.line_seconds(),
            Source::Simulated(s) => s.simulated_seconds(),
        }
    }

    /// The line rate, when the source has one.
    pub fn baud(&self) -> Option<u32> {
        match self {
            Source::Serial(s) => Some(s.baud()),
            Source::Replay(r) => Some(r.baud()),
            Source::Simulated(_) => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_to_four_seconds_and_resets() {
        let mut b = Backoff::default();
        let delays: Vec<u64> = (0..6).map(|_| b.next_delay().as_secs()).collect();
        assert_eq!(delays, [1, 2, 4, 4, 4, 4]);
        b.reset();
        assert_eq!(b.next_delay().as_secs(), 1);
    }
}
