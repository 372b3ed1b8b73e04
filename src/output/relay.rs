//! The meter's relay contact: turning bouncing pin samples into a clean open/closed state.
//!
//! The Linky's dry contact (C1/C2) can be programmed by the supplier to close during EJP
//! peaks; wired to a GPIO input it is a second EJP source, independent of the TIC line. A
//! mechanical contact bounces for a few milliseconds when it moves, so a level counts only once
//! it has held for `relay.debounce`. The [`Debouncer`] is given each sample with its time and
//! says when the settled state changes; the shell samples the pin and publishes the changes.

/// Whether the contact is closed, given the pin's level and `relay.active_low` (with the
/// usual pull-up wiring the closed contact pulls the pin low).
pub fn contact_closed(pin_high: bool, active_low: bool) -> bool {
    pin_high != active_low
}

/// Debounces one input: a level counts once it has held for the hold time.
#[derive(Debug, Clone, PartialEq)]
pub struct Debouncer {
    hold_s: f64,
    /// The settled state, once there is one.
    settled: Option<bool>,
    /// The level being watched and since when it has held.
    candidate: Option<(bool, f64)>,
}

impl Debouncer {
    /// A debouncer that needs a level to hold `hold_s` seconds (0: every sample counts).
    pub fn new(hold_s: f64) -> Self {
        Debouncer {
            hold_s: hold_s.max(0.0),
            settled: None,
            candidate: None,
        }
    }

    /// The settled state: `None` until the first level has held long enough.
    pub fn state(&self) -> Option<bool> {
        self.settled
    }

    /// Takes the sample `level` read at `now` (monotonic seconds); returns the new settled
    /// state when it changes, the first settling included.
    pub fn sample(&mut self, level: bool, now: f64) -> Option<bool> {
        if self.settled == Some(level) {
            self.candidate = None;
            return None;
        }
        let since = match self.candidate {
            Some((watched, since)) if watched == level => since,
            _ => {
                self.candidate = Some((level, now));
                now
            }
        };
        if now - since >= self.hold_s {
            self.settled = Some(level);
            self.candidate = None;
            return Some(level);
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_first_level_settles_after_the_hold_time() {
        let mut d = Debouncer::new(0.05);
        assert_eq!(d.sample(true, 0.0), None);
        assert_eq!(d.sample(true, 0.02), None);
        assert_eq!(d.state(), None);
        assert_eq!(d.sample(true, 0.05), Some(true));
        assert_eq!(d.sample(true, 0.07), None, "no change, nothing to say");
        assert_eq!(d.state(), Some(true));
    }

    #[test]
    fn bounces_shorter_than_the_hold_time_are_ignored() {
        let mut d = Debouncer::new(0.05);
        d.sample(false, 0.0);
        assert_eq!(d.sample(false, 0.1), Some(false));
        // The contact closes and bounces for 30 ms.
        for (i, level) in [true, false, true, false, true, true].iter().enumerate() {
            let now = 1.0 + i as f64 * 0.006;
            assert_eq!(d.sample(*level, now), None, "sample {i}");
        }
        assert_eq!(d.sample(true, 1.06), None, "closed for 36 ms only");
        assert_eq!(d.sample(true, 1.08), Some(true));
        // A glitch back to open, one sample long, changes nothing.
        assert_eq!(d.sample(false, 2.0), None);
        assert_eq!(d.sample(true, 2.02), None);
        assert_eq!(d.sample(false, 2.04), None);
        assert_eq!(d.sample(false, 2.08), None, "open for 40 ms only");
        assert_eq!(d.sample(false, 2.1), Some(false));
    }

    #[test]
    fn a_zero_hold_time_takes_every_sample() {
        let mut d = Debouncer::new(0.0);
        assert_eq!(d.sample(true, 0.0), Some(true));
        assert_eq!(d.sample(false, 0.001), Some(false));
    }

    #[test]
    fn active_low_means_closed_when_the_pin_reads_low() {
        assert!(contact_closed(false, true));
        assert!(!contact_closed(true, true));
        assert!(contact_closed(true, false));
        assert!(!contact_closed(false, false));
    }
}
