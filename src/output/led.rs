//! The LED pattern: on, blinking or off, as a function of the [`View`] and the time.
//!
//! Which conditions light it is `led.states`. A condition that is happening now (a peak, a red
//! day) holds the LED on; one that announces something (a peak notice, tomorrow red) makes it
//! blink at 1 Hz, half a second on and half off. When both hold, steady wins: the peak is
//! what matters. The shell only sets the pin to what [`led_on`] says, a few times a second.

use super::status::View;
use crate::config::LedState;
use crate::meter::TempoColour;

/// One blink period in seconds: 1 Hz reads as "attention" without looking like a fault.
pub const BLINK_PERIOD_S: f64 = 1.0;

/// How a condition shows on the LED.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Pattern {
    /// Out.
    Off,
    /// Blinking at 1 Hz.
    Blink,
    /// On.
    Steady,
}

/// The pattern the conditions in `states` ask for in `view`.
pub fn pattern(view: &View, states: &[LedState]) -> Pattern {
    states
        .iter()
        .map(|state| match state {
            LedState::EjpPeak if view.ejp == Some(true) => Pattern::Steady,
            LedState::EjpNotice if view.notice => Pattern::Blink,
            LedState::TempoRedToday if view.tempo_today == Some(TempoColour::Red) => {
                Pattern::Steady
            }
            LedState::TempoRedTomorrow if view.tempo_tomorrow == Some(TempoColour::Red) => {
                Pattern::Blink
            }
            _ => Pattern::Off,
        })
        .max()
        .unwrap_or(Pattern::Off)
}

/// Whether the LED is lit at `now` (monotonic seconds): blinking is on during the first half
/// of each second of that clock, so the phase does not depend on when the pattern began.
pub fn led_on(view: &View, states: &[LedState], now: f64) -> bool {
    match pattern(view, states) {
        Pattern::Off => false,
        Pattern::Steady => true,
        Pattern::Blink => (now / BLINK_PERIOD_S).rem_euclid(1.0) < 0.5,
    }
}
