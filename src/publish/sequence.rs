//! The `seq` of `state` messages: monotonic across restarts, so a consumer (the logger) can
//! file each message once even when the daemon re-sends what the broker had already taken.
//!
//! The daemon does not write the counter at every message: it reserves blocks of
//! [`BLOCK`] numbers in `<spool_dir>/seq`, written before the first number of a block is
//! used, and a restart (even after `kill -9`) starts after the last reserved block. The first
//! number is also never below the current time in milliseconds since 1970, so a lost or
//! wiped spool directory still gives numbers above the old ones (a meter sends about one
//! frame a second, far fewer than one message a millisecond).

use std::io;
use std::path::{Path, PathBuf};

use tracing::warn;

/// Numbers reserved at a time.
pub const BLOCK: u64 = 1000;

const FILE: &str = "seq";

/// The reservation of `seq` numbers on disk.
#[derive(Debug)]
pub struct Reservation {
    path: PathBuf,
    /// Numbers below this one may have been used.
    reserved_below: u64,
    /// The failure to save was said: said once until a save works again.
    failing: bool,
}

impl Reservation {
    /// Reads the reservation in `dir`; returns it and the first number this run may use.
    pub fn open(dir: &Path, now_ms: u64) -> (Self, u64) {
        let path = dir.join(FILE);
        let saved = match std::fs::read_to_string(&path) {
            Ok(text) => text.trim().parse().unwrap_or_else(|_| {
                warn!(path = %path.display(), "the saved seq is unreadable; numbering from the clock");
                0
            }),
            Err(e) if e.kind() == io::ErrorKind::NotFound => 0,
            Err(e) => {
                warn!(path = %path.display(), error = %e, "cannot read the saved seq; numbering from the clock");
                0
            }
        };
        let first = saved.max(now_ms);
        let reservation = Reservation {
            path,
            reserved_below: first,
            failing: false,
        };
        (reservation, first)
    }

    /// Makes sure `next` (the next number to be used) is covered by a saved reservation.
    pub fn cover(&mut self, next: u64) {
        if next < self.reserved_below {
            return;
        }
        let below = next + BLOCK;
        match crate::files::write_atomic(&self.path, below.to_string().as_bytes()) {
            Ok(()) => {
                self.reserved_below = below;
                self.failing = false;
            }
            Err(e) if !self.failing => {
                warn!(path = %self.path.display(), error = %e, "cannot save the seq reservation; after a restart, numbers may repeat");
                self.failing = true;
            }
            Err(_) => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_restart_starts_after_every_number_used_before() {
        let dir = tempfile::tempdir().unwrap();
        let (mut r, first) = Reservation::open(dir.path(), 5);
        assert_eq!(first, 5);
        let mut used = Vec::new();
        for seq in first..first + 2500 {
            r.cover(seq);
            used.push(seq);
        }
        // A crash here: nothing else was saved.
        let (_, again) = Reservation::open(dir.path(), 5);
        assert!(again > *used.last().unwrap(), "{again}");
        assert!(again <= used.last().unwrap() + BLOCK + 1);
    }

    #[test]
    fn a_lost_reservation_still_numbers_from_the_clock() {
        let dir = tempfile::tempdir().unwrap();
        let (_, first) = Reservation::open(dir.path(), 1_764_000_000_000);
        assert_eq!(first, 1_764_000_000_000);
        std::fs::write(dir.path().join(FILE), "garbage").unwrap();
        let (_, first) = Reservation::open(dir.path(), 7);
        assert_eq!(first, 7);
    }
}
