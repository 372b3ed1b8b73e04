//! The index glitch guard: an energy index that goes down, or grows faster than the
//! subscribed power allows, is held back until the following frames confirm it.
//!
//! One wrong index published to Home Assistant puts a spike of thousands of kWh into its
//! energy statistics, the complaint users of every other TIC tool make most. The checksum is
//! only 6 bits, so some corrupt groups pass it; this is the second line.

use std::collections::HashMap;

/// How many frames after a suspicious value must agree with it before it is believed
/// (a meter replaced, a daemon restarted after a long gap).
pub const CONFIRMATIONS: u8 = 2;

/// Allowed overshoot over the subscribed power, for overload tolerance and timing jitter.
const POWER_MARGIN: f64 = 1.5;

/// Allowed rise regardless of time, for the meter's own rounding between frames.
const SLACK_WH: f64 = 10.0;

/// What to do with one index value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Publish it.
    Accept,
    /// Do not publish it (yet).
    Hold,
}

#[derive(Debug, Clone)]
struct Track {
    value: i64,
    at: f64,
    candidate: Option<Candidate>,
}

#[derive(Debug, Clone, Copy)]
struct Candidate {
    value: i64,
    at: f64,
    confirmations: u8,
}

/// Per-label memory of the last accepted value. Time is any monotonic count of seconds:
/// the host clock, or bytes at the line's baud rate when decoding a file.
#[derive(Debug, Clone, Default)]
pub struct IndexGuard {
    tracks: HashMap<String, Track>,
    held: u64,
    released: u64,
}

impl IndexGuard {
    /// Values held back so far (each frame's held value counts once).
    pub fn held(&self) -> u64 {
        self.held
    }

    /// Suspicious values later confirmed and accepted as the new baseline.
    pub fn released(&self) -> u64 {
        self.released
    }

    /// Judges `value` of `label` seen at `at` seconds, given the most power the meter lets
    /// through, in watts.
    pub fn check(&mut self, label: &str, value: i64, at: f64, max_power_w: f64) -> Verdict {
        let Some(track) = self.tracks.get_mut(label) else {
            self.tracks.insert(
                label.to_owned(),
                Track {
                    value,
                    at,
                    candidate: None,
                },
            );
            return Verdict::Accept;
        };
        if plausible(track.value, track.at, value, at, max_power_w) {
            *track = Track {
                value,
                at,
                candidate: None,
            };
            return Verdict::Accept;
        }
        let confirmations = match track.candidate {
            Some(c) if plausible(c.value, c.at, value, at, max_power_w) => c.confirmations + 1,
            _ => 0,
        };
        if confirmations >= CONFIRMATIONS {
            *track = Track {
                value,
                at,
                candidate: None,
            };
            self.released += 1;
            return Verdict::Accept;
        }
        track.candidate = Some(Candidate {
            value,
            at,
            confirmations,
        });
        self.held += 1;
        Verdict::Hold
    }
}

/// An index may stay equal or rise by at most what the power limit allows over the time.
fn plausible(from: i64, from_at: f64, to: i64, to_at: f64, max_power_w: f64) -> bool {
    let hours = (to_at - from_at).max(0.0) / 3600.0;
    let max_rise = max_power_w * POWER_MARGIN * hours + SLACK_WH;
    to >= from && ((to - from) as f64) <= max_rise
}

#[cfg(test)]
mod tests {
    use super::*;

    const SIX_KVA: f64 = 6000.0;

    #[test]
    fn a_steady_index_is_accepted() {
        let mut g = IndexGuard::default();
        for i in 0..10 {
            assert_eq!(
                g.check("BASE", 1000 + i, i as f64 * 2.0, SIX_KVA),
                Verdict::Accept
            );
        }
        assert_eq!(g.held(), 0);
    }

    #[test]
    fn an_index_read_as_zero_once_is_held_and_never_published() {
        let mut g = IndexGuard::default();
        assert_eq!(g.check("BASE", 688_322, 0.0, SIX_KVA), Verdict::Accept);
        assert_eq!(g.check("BASE", 0, 2.0, SIX_KVA), Verdict::Hold);
        assert_eq!(g.check("BASE", 688_323, 4.0, SIX_KVA), Verdict::Accept);
        assert_eq!(g.held(), 1);
    }

    #[test]
    fn a_jump_beyond_subscribed_power_is_held() {
        let mut g = IndexGuard::default();
        g.check("BASE", 1_000, 0.0, SIX_KVA);
        // 6 kVA for 2 s is 3.3 Wh; a 10 000 Wh rise is a corrupt digit.
        assert_eq!(g.check("BASE", 11_000, 2.0, SIX_KVA), Verdict::Hold);
        // After an hour, 9 kWh is possible at 6 kVA with the margin.
        assert_eq!(g.check("BASE", 9_000, 3600.0, SIX_KVA), Verdict::Accept);
    }

    #[test]
    fn a_new_baseline_is_released_after_confirmation() {
        let mut g = IndexGuard::default();
        g.check("BASE", 5_000_000, 0.0, SIX_KVA);
        // The meter was replaced: the index restarts low and stays consistent.
        assert_eq!(g.check("BASE", 10, 2.0, SIX_KVA), Verdict::Hold);
        assert_eq!(g.check("BASE", 11, 4.0, SIX_KVA), Verdict::Hold);
        assert_eq!(g.check("BASE", 11, 6.0, SIX_KVA), Verdict::Accept);
        assert_eq!((g.held(), g.released()), (2, 1));
        assert_eq!(g.check("BASE", 12, 8.0, SIX_KVA), Verdict::Accept);
    }

    #[test]
    fn indexes_are_tracked_per_label() {
        let mut g = IndexGuard::default();
        g.check("HCHC", 100, 0.0, SIX_KVA);
        assert_eq!(g.check("HCHP", 9_000_000, 1.0, SIX_KVA), Verdict::Accept);
    }
}
