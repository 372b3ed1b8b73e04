//! Active power in W, estimated from how fast the energy indexes grow.
//!
//! The meter reports apparent power (VA) only; the indexes count real energy (Wh), so their
//! slope over a few minutes is the household's real power, which is what users want.

use std::collections::VecDeque;

use super::Reading;
use super::labels::{Role, Unit};
use crate::tic::Mode;

/// How far back the slope is taken: long enough for 1 Wh steps to average out.
pub const WINDOW_S: f64 = 300.0;

/// Before this much history the estimate is too coarse to publish.
pub const MIN_SPAN_S: f64 = 60.0;

/// A sliding window of (time, total energy drawn) samples.
#[derive(Debug, Clone, Default)]
pub struct PowerEstimator {
    samples: VecDeque<(f64, i64)>,
}

impl PowerEstimator {
    /// Adds the reading seen at `at` seconds; returns the estimate once there is enough history.
    pub fn update(&mut self, reading: &Reading, at: f64) -> Option<i64> {
        let total = energy_drawn(reading)?;
        if self
            .samples
            .back()
            .is_some_and(|&(t, e)| at < t || total < e)
        {
            self.samples.clear(); // time or the meter went backwards: start again
        }
        self.samples.push_back((at, total));
        while self.samples.len() > 2
            && self
                .samples
                .get(1)
                .is_some_and(|&(t, _)| at - t >= WINDOW_S)
        {
            self.samples.pop_front();
        }
        let (t0, e0) = *self.samples.front()?;
        let span = at - t0;
        (span >= MIN_SPAN_S).then(|| ((total - e0) as f64 * 3600.0 / span).round() as i64)
    }
}

/// Total active energy drawn in Wh: `EAST` in standard mode, the sum of the contract's
/// indexes in historic mode. None if the frame lacks them (or one was held by the guard).
fn energy_drawn(reading: &Reading) -> Option<i64> {
    match reading.mode {
        Mode::Standard => reading.number("EAST"),
        Mode::Historic => {
            let mut indexes = reading.entries.iter().filter_map(|e| {
                let wh = e.value.as_number()?;
                let spec = e.spec()?;
                (spec.role == Role::Index && spec.unit == Some(Unit::Wh)).then_some(wh)
            });
            let first = indexes.next()?;
            Some(first + indexes.sum::<i64>())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reading(hchc: i64, hchp: i64) -> Reading {
        let (a, b) = (format!("{hchc:09}"), format!("{hchp:09}"));
        crate::testing::historic(&[("ADCO", "012345678901"), ("HCHC", &a), ("HCHP", &b)])
    }

    #[test]
    fn power_is_the_slope_of_the_summed_indexes() {
        let mut p = PowerEstimator::default();
        assert_eq!(p.update(&reading(1000, 500), 0.0), None);
        assert_eq!(p.update(&reading(1005, 500), 30.0), None);
        // 10 Wh in 60 s is 600 W, whichever index moved.
        assert_eq!(p.update(&reading(1005, 505), 60.0), Some(600));
    }

    #[test]
    fn old_samples_leave_the_window() {
        let mut p = PowerEstimator::default();
        p.update(&reading(0, 0), 0.0);
        // 1 kW for the first 10 minutes, then 0.
        p.update(&reading(167, 0), 600.0);
        for t in (610..=1000).step_by(10) {
            p.update(&reading(167, 0), t as f64);
        }
        assert_eq!(p.update(&reading(167, 0), 1010.0), Some(0));
    }
}
