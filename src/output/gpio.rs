//! The Raspberry Pi's GPIO through rppal: the LED output and the relay contact input.
//!
//! Opening fails off a Pi (rppal cannot identify the board) or without access to
//! `/dev/gpiomem`, with an [`OutputError`] naming the setting; the shell logs it once and goes
//! on. Once a pin is had, setting or reading it cannot fail.

use rppal::gpio::{Gpio, InputPin, OutputPin};

use super::{Contact, Light, OutputError};
use crate::config::Pull;

/// The GPIO peripheral, or why not, for the setting `key` and its `pin`.
fn gpio(key: &'static str, pin: u8) -> Result<Gpio, OutputError> {
    Gpio::new().map_err(|e| {
        let reason = match e {
            rppal::gpio::Error::UnknownModel => {
                "this is not a Raspberry Pi: rppal cannot identify the board".to_owned()
            }
            other => other.to_string(),
        };
        OutputError::NoGpio { key, pin, reason }
    })
}

fn pin_error(key: &'static str, pin: u8) -> impl FnOnce(rppal::gpio::Error) -> OutputError {
    move |e| OutputError::Pin {
        key,
        pin,
        reason: e.to_string(),
    }
}

/// `led.gpio`: an LED on an output pin, off when opened and when dropped.
#[derive(Debug)]
pub struct LedPin {
    pin: OutputPin,
    active_low: bool,
}

impl LedPin {
    /// Takes BCM pin `pin` as an output with the LED off. `active_low`: the LED lights when
    /// the pin is low (`led.active_low`).
    pub fn open(pin: u8, active_low: bool) -> Result<Self, OutputError> {
        let mut led = LedPin {
            pin: gpio("led.gpio", pin)?
                .get(pin)
                .map_err(pin_error("led.gpio", pin))?
                .into_output(),
            active_low,
        };
        led.set(false);
        Ok(led)
    }
}

impl Light for LedPin {
    fn set(&mut self, on: bool) {
        if on != self.active_low {
            self.pin.set_high();
        } else {
            self.pin.set_low();
        }
    }
}

impl Drop for LedPin {
    /// The LED goes out, and the pin stays an output driving "off": rppal would otherwise
    /// turn it back into a floating input, which lights some active-low wirings faintly.
    fn drop(&mut self) {
        self.set(false);
        self.pin.set_reset_on_drop(false);
    }
}

/// `relay.gpio`: the meter's relay contact on an input pin.
#[derive(Debug)]
pub struct ContactPin {
    pin: InputPin,
}

impl ContactPin {
    /// Takes BCM pin `pin` as an input with the pull resistor `pull` (`relay.pull`).
    pub fn open(pin: u8, pull: Pull) -> Result<Self, OutputError> {
        let p = gpio("relay.gpio", pin)?
            .get(pin)
            .map_err(pin_error("relay.gpio", pin))?;
        let pin = match pull {
            Pull::None => p.into_input(),
            Pull::Up => p.into_input_pullup(),
            Pull::Down => p.into_input_pulldown(),
        };
        Ok(ContactPin { pin })
    }
}

impl Contact for ContactPin {
    fn is_high(&mut self) -> bool {
        self.pin.is_high()
    }
}
