//! The meter's line rate, found when `meter.mode: auto`.
//!
//! A Linky sends historic TIC at 1200 baud or standard TIC at 9600, and Enedis may switch a
//! meter from one to the other remotely. At the wrong rate every byte is garbage, so the only
//! sign of the right one is the decoder seeing valid groups. [`BaudSearch`] decides, from the
//! decoder's count of valid groups after each read, when a serial port must be reopened at
//! the other rate:
//!
//! - **Probing**: no valid group for [`PROBE`] → try the other rate (1200 first).
//! - **Found**: valid groups came and the decoder knows the mode → keep the rate, until bytes
//!   come but no valid group for [`LOST`] (the meter was switched) → probe again.
//! - **Fixed**: `meter.mode: historic` or `standard` → never change.
//!
//! A replayed capture has no line to probe: its pace is guessed from its separators
//! ([`baud_of_capture`]).

use tokio::time::{Duration, Instant};
use tracing::{info, warn};

use crate::tic::Mode;

/// How long a rate may go without a valid group, while probing, before the other is tried:
/// two historic frames' worth.
pub const PROBE: Duration = Duration::from_secs(5);

/// How long a found rate may go without a valid group, while bytes keep coming, before both
/// rates are probed again.
pub const LOST: Duration = Duration::from_secs(15);

/// Where the search stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Stage {
    /// The configuration forces the mode.
    Fixed,
    /// No valid group yet at this rate.
    Probing,
    /// Valid groups came at this rate.
    Found,
}

/// The serial line's rate and, in `auto`, the search for it.
#[derive(Debug, Clone)]
pub struct BaudSearch {
    baud: u32,
    stage: Stage,
    /// The decoder's count of valid groups at the last read that saw new ones.
    valid_groups: u64,
    /// When the last new valid group came, or the rate last changed.
    since: Instant,
}

/// What [`BaudSearch::after_read`] asks of the port.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BaudChange {
    /// Keep reading at this rate.
    Keep,
    /// Reopen the port at [`BaudSearch::baud`].
    Reopen,
}

impl BaudSearch {
    /// `mode` is the configured one: `None` for auto, which starts at 1200 baud.
    pub fn new(mode: Option<Mode>, now: Instant) -> Self {
        BaudSearch {
            baud: mode.map_or(Mode::Historic.baud(), Mode::baud),
            stage: if mode.is_some() {
                Stage::Fixed
            } else {
                Stage::Probing
            },
            valid_groups: 0,
            since: now,
        }
    }

    /// The rate to read at.
    pub fn baud(&self) -> u32 {
        self.baud
    }

    /// After each read: `valid_groups` is the decoder's count so far and `mode` the mode it
    /// found them in. Says whether the port must be reopened at another rate.
    pub fn after_read(
        &mut self,
        now: Instant,
        valid_groups: u64,
        mode: Option<Mode>,
    ) -> BaudChange {
        if valid_groups > self.valid_groups {
            self.valid_groups = valid_groups;
            self.since = now;
            if let (Stage::Probing, Some(mode)) = (self.stage, mode) {
                self.stage = Stage::Found;
                info!(baud = self.baud, %mode, "found the meter's mode");
            }
            return BaudChange::Keep;
        }
        let quiet = now - self.since;
        match self.stage {
            Stage::Fixed => return BaudChange::Keep,
            Stage::Probing if quiet >= PROBE => {
                info!(
                    baud = other(self.baud),
                    "no valid group yet, trying another baud rate"
                );
            }
            Stage::Found if quiet >= LOST => {
                warn!(
                    baud = self.baud,
                    "bytes but no valid group for a while: the meter may have changed mode; \
                     probing both baud rates again"
                );
                self.stage = Stage::Probing;
            }
            Stage::Probing | Stage::Found => return BaudChange::Keep,
        }
        self.baud = other(self.baud);
        self.since = now;
        BaudChange::Reopen
    }
}

/// The other TIC rate.
fn other(baud: u32) -> u32 {
    if baud == Mode::Historic.baud() {
        Mode::Standard.baud()
    } else {
        Mode::Historic.baud()
    }
}

/// The rate a capture was recorded at: a tab among its first bytes means standard mode
/// (its separator), else historic.
pub fn baud_of_capture(bytes: &[u8]) -> u32 {
    if bytes.iter().take(4096).any(|&b| b & 0x7F == b'\t') {
        Mode::Standard.baud()
    } else {
        Mode::Historic.baud()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: Duration = Duration::from_secs(1);

    #[test]
    fn auto_tries_1200_then_9600_until_valid_groups_come_then_keeps_the_rate() {
        let t0 = Instant::now();
        let mut search = BaudSearch::new(None, t0);
        assert_eq!(search.baud(), 1200);
        assert_eq!(search.after_read(t0 + 4 * S, 0, None), BaudChange::Keep);
        assert_eq!(search.after_read(t0 + 5 * S, 0, None), BaudChange::Reopen);
        assert_eq!(search.baud(), 9600);
        assert_eq!(search.after_read(t0 + 9 * S, 0, None), BaudChange::Keep);
        assert_eq!(search.after_read(t0 + 10 * S, 0, None), BaudChange::Reopen);
        assert_eq!(search.baud(), 1200);
        let found = Some(Mode::Historic);
        assert_eq!(search.after_read(t0 + 11 * S, 3, found), BaudChange::Keep);
        // Found: the probing delay no longer applies, only the longer one.
        assert_eq!(search.after_read(t0 + 25 * S, 3, found), BaudChange::Keep);
        assert_eq!(search.baud(), 1200);
    }

    #[test]
    fn a_found_rate_without_valid_groups_for_a_while_is_probed_again() {
        let t0 = Instant::now();
        let mut search = BaudSearch::new(None, t0);
        let found = Some(Mode::Historic);
        search.after_read(t0 + S, 1, found);
        assert_eq!(search.after_read(t0 + 15 * S, 1, found), BaudChange::Keep);
        assert_eq!(search.after_read(t0 + 16 * S, 1, found), BaudChange::Reopen);
        assert_eq!(search.baud(), 9600);
        // Probing again: the shorter delay.
        assert_eq!(search.after_read(t0 + 21 * S, 1, found), BaudChange::Reopen);
        assert_eq!(search.baud(), 1200);
    }

    #[test]
    fn a_configured_mode_never_changes_the_rate() {
        let t0 = Instant::now();
        let mut search = BaudSearch::new(Some(Mode::Standard), t0);
        assert_eq!(search.baud(), 9600);
        assert_eq!(search.after_read(t0 + 3600 * S, 0, None), BaudChange::Keep);
        assert_eq!(search.baud(), 9600);
    }

    #[test]
    fn a_capture_with_tabs_is_standard_mode() {
        assert_eq!(baud_of_capture(b"\x02\nADSC\t0123\t/\r"), 9600);
        assert_eq!(baud_of_capture(b"\x02\nADCO 0123 /\r"), 1200);
        assert_eq!(baud_of_capture(b"\x89"), 9600, "bit 7 is masked");
    }
}
