//! The box: the OLED screen (or its PNG stand-in), the EJP LED and the meter's relay contact.
//!
//! This module owns what the box shows and how it reaches the hardware. It is split the way the
//! rest of linkymon is, a functional core in a thin shell:
//!
//! - pure, given readings and `now` (seconds on any monotonic origin), no clock, no I/O:
//!   [`status`] (what the box believes: each fact kept from the last frame that carried it),
//!   [`screen`] (what the 128×64 picture says, and the drawing, against any embedded-graphics
//!   `DrawTarget`), [`Framebuffer`] (the in-memory 128×64 target), [`led`] (the LED pattern),
//!   [`relay`] (the contact's debouncer);
//! - drivers, each behind a small trait so the shell runs on in-memory doubles in tests:
//!   [`oled`] (SSD1306 over I²C through rppal), [`png`] (the virtual screen written to a
//!   file), [`gpio`] (the LED pin and the contact input through rppal). Each turns its device
//!   off when dropped;
//! - the shell, [`task`]: [`run_box`] follows the latest reading on a watch channel (never
//!   MQTT, so the box works with the broker away) and [`run_relay`] samples the contact.
//!
//! Off a Raspberry Pi the drivers fail to open with an [`OutputError`] that says what is
//! missing; the shell logs it once and goes on without that device. Publishing the relay to
//! MQTT is not done here: [`run_relay`] hands its state to whoever publishes.

pub mod framebuffer;
pub mod gpio;
pub mod led;
pub mod oled;
pub mod png;
pub mod relay;
pub mod screen;
pub mod status;
pub mod task;

pub use framebuffer::Framebuffer;
pub use status::{Status, View};
pub use task::{BoxConfig, run_box, run_relay};

use std::path::PathBuf;

/// Why a device of the box cannot be used. Every message names the setting and what to do,
/// because it is logged once and the daemon goes on without the device.
#[derive(Debug, thiserror::Error)]
pub enum OutputError {
    /// The I²C bus device file cannot be opened (not a Pi, or I²C not enabled).
    #[error(
        "display.driver ssd1306: cannot open /dev/i2c-{bus} ({reason}); enable I2C (raspi-config) \
         or set display.i2c_bus, or display.driver: none"
    )]
    NoI2cBus {
        /// `display.i2c_bus`.
        bus: u8,
        /// What the system said.
        reason: String,
    },
    /// The bus is there but no SSD1306 answers at the address.
    #[error(
        "display.driver ssd1306: no screen answers at address 0x{address:02X} on /dev/i2c-{bus} \
         ({reason}); check the wiring and display.i2c_address (0x3C or 0x3D)"
    )]
    NoScreen {
        /// `display.i2c_bus`.
        bus: u8,
        /// `display.i2c_address`.
        address: u8,
        /// What the driver said.
        reason: String,
    },
    /// A screen that worked stopped taking pictures (loose wire, power glitch).
    #[error("the screen stopped answering ({reason})")]
    ScreenWrite {
        /// What the driver said.
        reason: String,
    },
    /// The virtual screen cannot be written.
    #[error("display.png_path: cannot write {} ({reason}); check the folder exists and is writable", path.display())]
    Png {
        /// `display.png_path`.
        path: PathBuf,
        /// What the system said.
        reason: String,
    },
    /// No GPIO peripheral here (not a Raspberry Pi, or `/dev/gpiomem` missing or forbidden).
    #[error("{key}: {pin}: no Raspberry Pi GPIO here ({reason}); set {key}: null to silence this")]
    NoGpio {
        /// `led.gpio` or `relay.gpio`.
        key: &'static str,
        /// The BCM pin asked for.
        pin: u8,
        /// What rppal said.
        reason: String,
    },
    /// The GPIO is there but this pin cannot be had.
    #[error("{key}: pin {pin} cannot be used ({reason}); choose another BCM pin number")]
    Pin {
        /// `led.gpio` or `relay.gpio`.
        key: &'static str,
        /// The BCM pin asked for.
        pin: u8,
        /// What rppal said.
        reason: String,
    },
}

/// A screen the box can show pictures on: the SSD1306, the PNG file, or a test double.
pub trait Display {
    /// Shows `picture`. Called only when the picture changed, so a driver may write at once.
    fn show(&mut self, picture: &Framebuffer) -> Result<(), OutputError>;
    /// Blanks the screen, for shutdown (drivers also do it when dropped).
    fn clear(&mut self) -> Result<(), OutputError>;
}

/// The LED: one output pin. Setting a GPIO level cannot fail once the pin is had.
pub trait Light {
    /// Lights the LED (`true`) or puts it out, whatever the pin's polarity.
    fn set(&mut self, on: bool);
}

/// The relay contact: one input pin.
pub trait Contact {
    /// Whether the pin reads high now (the debouncer and `relay.active_low` make sense of it).
    fn is_high(&mut self) -> bool;
}

#[cfg(test)]
mod tests;
