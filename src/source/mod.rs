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

/// Doubling delays for reopening a port or reconnecting to a broker: 1 s to 60 s.
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
    /// The delay to wait now; the next one is twice as long, up to a minute.
    pub fn next_delay(&mut self) -> std::time::Duration {
        let delay = self.next_s;
        self.next_s = (self.next_s * 2).min(60);
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
    fn backoff_doubles_to_a_minute_and_resets() {
        let mut b = Backoff::default();
        let delays: Vec<u64> = (0..8).map(|_| b.next_delay().as_secs()).collect();
        assert_eq!(delays, [1, 2, 4, 8, 16, 32, 60, 60]);
        b.reset();
        assert_eq!(b.next_delay().as_secs(), 1);
    }
}
