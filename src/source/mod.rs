//! Where the bytes come from: a serial port, a replayed capture, or a simulated meter.
//!
//! Each source hands out raw bytes; none of them parses anything (that is [`crate::tic`]).
//! A source only ends for a replay at the end of its file; a serial port that vanishes is
//! reopened forever.

mod replay;
mod serial;
mod simulated;

pub use replay::Replay;
pub use serial::{Serial, SerialError};
pub use simulated::Simulated;

use std::io;

use crate::tic::Mode;

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

impl Source {
    /// Reads some bytes; `Ok(0)` means the source is finished (only a replay finishes).
    pub async fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Source::Serial(s) => Ok(s.read(buf).await),
            Source::Replay(r) => Ok(r.read(buf).await),
            Source::Simulated(s) => Ok(s.read(buf).await),
        }
    }

    /// Tells the source which mode the decoder found valid groups in, so a serial port in
    /// `auto` stops trying baud rates.
    pub fn confirm_mode(&mut self, mode: Mode) {
        if let Source::Serial(s) = self {
            s.confirm_mode(mode);
        }
    }

    /// Called when no valid group came for a while: a serial port in `auto` tries the other
    /// baud rate.
    pub fn no_valid_groups(&mut self) {
        if let Source::Serial(s) = self {
            s.try_other_baud();
        }
    }

    /// Called when valid groups stopped while bytes still come: a serial port in `auto` probes
    /// both baud rates again. True when it does.
    pub fn mode_lost(&mut self) -> bool {
        match self {
            Source::Serial(s) => s.probe_again(),
            _ => false,
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
