//! `display.driver: ssd1306`: the 128×64 OLED on the Pi's I²C bus, through rppal and the
//! `ssd1306` crate (which speaks embedded-hal 1.0, as rppal does with its `embedded-hal`
//! feature).
//!
//! The picture is drawn in a [`Framebuffer`] first and copied into the driver's buffer only
//! when the shell finds it changed, so the bus carries one 1 KiB write per change. A screen
//! that stops answering is initialised again before the next picture: an SSD1306 that lost
//! power comes back blank and unconfigured.

use embedded_graphics::Pixel;
use embedded_graphics::pixelcolor::BinaryColor;
use embedded_graphics::prelude::{DrawTarget, Point};
use rppal::i2c::I2c;
use ssd1306::mode::BufferedGraphicsMode;
use ssd1306::prelude::*;
use ssd1306::{I2CDisplayInterface, Ssd1306};

use super::framebuffer::{Framebuffer, HEIGHT, WIDTH};
use super::{Display, OutputError};

type Panel = Ssd1306<I2CInterface<I2c>, DisplaySize128x64, BufferedGraphicsMode<DisplaySize128x64>>;

/// An SSD1306 that answered at start.
pub struct Oled {
    panel: Panel,
    /// The last write failed: initialise the panel again before the next one.
    needs_init: bool,
}

impl std::fmt::Debug for Oled {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Oled")
            .field("needs_init", &self.needs_init)
            .finish_non_exhaustive()
    }
}

impl Oled {
    /// Opens `/dev/i2c-<bus>` and initialises the SSD1306 at `address`; fails with a message
    /// that says which of the two is missing (off a Pi, the bus).
    pub fn open(bus: u8, address: u8) -> Result<Self, OutputError> {
        let i2c = I2c::with_bus(bus).map_err(|e| OutputError::NoI2cBus {
            bus,
            reason: e.to_string(),
        })?;
        let interface = I2CDisplayInterface::new_custom_address(i2c, address);
        let mut panel = Ssd1306::new(interface, DisplaySize128x64, DisplayRotation::Rotate0)
            .into_buffered_graphics_mode();
        // The first write is where an absent device shows: nobody acknowledges the address.
        panel.init().map_err(|e| OutputError::NoScreen {
            bus,
            address,
            reason: format!("{e:?}"),
        })?;
        panel.clear_buffer();
        panel.flush().map_err(|e| OutputError::NoScreen {
            bus,
            address,
            reason: format!("{e:?}"),
        })?;
        Ok(Oled {
            panel,
            needs_init: false,
        })
    }

    fn write(&mut self, picture: &Framebuffer) -> Result<(), OutputError> {
        let failed = |e| OutputError::ScreenWrite {
            reason: format!("{e:?}"),
        };
        if self.needs_init {
            self.panel.init().map_err(failed)?;
            self.needs_init = false;
        }
        let pixels = (0..HEIGHT).flat_map(|y| {
            (0..WIDTH).map(move |x| {
                let colour = BinaryColor::from(picture.pixel(x, y));
                Pixel(Point::new(x as i32, y as i32), colour)
            })
        });
        // Drawing into the driver's buffer cannot fail; the flush is the bus write.
        let _ = self.panel.draw_iter(pixels);
        self.panel.flush().map_err(failed)
    }
}

impl Display for Oled {
    fn show(&mut self, picture: &Framebuffer) -> Result<(), OutputError> {
        self.write(picture).inspect_err(|_| self.needs_init = true)
    }

    fn clear(&mut self) -> Result<(), OutputError> {
        self.write(&Framebuffer::new())
            .inspect_err(|_| self.needs_init = true)
    }
}

impl Drop for Oled {
    /// An OLED left lit with a fixed picture wears unevenly and shows stale numbers: blank it
    /// and turn it off.
    fn drop(&mut self) {
        let _ = self.clear();
        let _ = self.panel.set_display_on(false);
    }
}
