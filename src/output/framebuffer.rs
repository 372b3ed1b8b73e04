//! A 128×64 one-bit picture in memory: what the screen code draws into, what the drivers copy
//! out of, and what tests compare.
//!
//! Drawing into this buffer rather than into the SSD1306 driver's own lets the shell compare
//! the new picture with the one on the screen and skip the I²C write when nothing changed, and
//! gives the PNG driver and the golden tests the very pixels the OLED would show. Golden files
//! use one text line per row, `#` for a lit pixel and `.` for a dark one.

use std::convert::Infallible;
use std::fmt;

use embedded_graphics::Pixel;
use embedded_graphics::pixelcolor::BinaryColor;
use embedded_graphics::prelude::{DrawTarget, OriginDimensions, Size};

/// Width of the screen in pixels (the SSD1306 128×64 panel).
pub const WIDTH: usize = 128;
/// Height of the screen in pixels.
pub const HEIGHT: usize = 64;

/// A 128×64 monochrome picture; `true` is a lit pixel.
#[derive(Clone, PartialEq, Eq)]
pub struct Framebuffer {
    /// Row-major, one bit per pixel, most significant bit leftmost.
    bits: [u8; WIDTH * HEIGHT / 8],
}

impl Default for Framebuffer {
    fn default() -> Self {
        Framebuffer {
            bits: [0; WIDTH * HEIGHT / 8],
        }
    }
}

impl Framebuffer {
    /// An all-dark picture.
    pub fn new() -> Self {
        Self::default()
    }

    /// Whether the pixel at column `x`, row `y` is lit; outside the screen is dark.
    pub fn pixel(&self, x: usize, y: usize) -> bool {
        if x >= WIDTH || y >= HEIGHT {
            return false;
        }
        let i = y * WIDTH + x;
        self.bits[i / 8] & (0x80 >> (i % 8)) != 0
    }

    /// Lights or darkens one pixel; outside the screen is ignored, as embedded-graphics expects.
    pub fn set_pixel(&mut self, x: usize, y: usize, on: bool) {
        if x >= WIDTH || y >= HEIGHT {
            return;
        }
        let i = y * WIDTH + x;
        let mask = 0x80 >> (i % 8);
        if on {
            self.bits[i / 8] |= mask;
        } else {
            self.bits[i / 8] &= !mask;
        }
    }

    /// How many pixels are lit: a cheap check that something was drawn.
    pub fn lit(&self) -> u32 {
        self.bits.iter().map(|b| b.count_ones()).sum()
    }

    /// The picture as text: one line per row, `#` lit, `.` dark, each line ending in `\n`.
    pub fn to_ascii(&self) -> String {
        let mut out = String::with_capacity((WIDTH + 1) * HEIGHT);
        for y in 0..HEIGHT {
            for x in 0..WIDTH {
                out.push(if self.pixel(x, y) { '#' } else { '.' });
            }
            out.push('\n');
        }
        out
    }

    /// Reads [`to_ascii`](Self::to_ascii)'s format back; the error names the first bad line.
    pub fn from_ascii(text: &str) -> Result<Self, String> {
        let mut fb = Framebuffer::new();
        let rows: Vec<&str> = text.lines().collect();
        if rows.len() != HEIGHT {
            return Err(format!("{} rows, expected {HEIGHT}", rows.len()));
        }
        for (y, row) in rows.iter().enumerate() {
            if row.chars().count() != WIDTH {
                return Err(format!(
                    "row {y} has {} columns, expected {WIDTH}",
                    row.len()
                ));
            }
            for (x, c) in row.chars().enumerate() {
                match c {
                    '#' => fb.set_pixel(x, y, true),
                    '.' => {}
                    other => return Err(format!("row {y} column {x}: `{other}` is not # or .")),
                }
            }
        }
        Ok(fb)
    }
}

impl fmt::Debug for Framebuffer {
    /// The ASCII picture, so a failed `assert_eq!` shows what was drawn.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "Framebuffer:")?;
        f.write_str(&self.to_ascii())
    }
}

impl OriginDimensions for Framebuffer {
    fn size(&self) -> Size {
        Size::new(WIDTH as u32, HEIGHT as u32)
    }
}

impl DrawTarget for Framebuffer {
    type Color = BinaryColor;
    type Error = Infallible;

    fn draw_iter<I>(&mut self, pixels: I) -> Result<(), Self::Error>
    where
        I: IntoIterator<Item = Pixel<Self::Color>>,
    {
        for Pixel(point, colour) in pixels {
            if let (Ok(x), Ok(y)) = (usize::try_from(point.x), usize::try_from(point.y)) {
                self.set_pixel(x, y, colour.is_on());
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use embedded_graphics::prelude::*;
    use embedded_graphics::primitives::{PrimitiveStyle, Rectangle};

    #[test]
    fn ascii_round_trips_and_clips_outside_the_screen() {
        let mut fb = Framebuffer::new();
        Rectangle::new(Point::new(-2, 62), Size::new(5, 5))
            .into_styled(PrimitiveStyle::with_fill(BinaryColor::On))
            .draw(&mut fb)
            .unwrap();
        assert_eq!(fb.lit(), 3 * 2);
        assert!(fb.pixel(0, 63) && fb.pixel(2, 62) && !fb.pixel(3, 62));
        assert_eq!(Framebuffer::from_ascii(&fb.to_ascii()).unwrap(), fb);
    }

    #[test]
    fn a_malformed_golden_file_is_an_error_naming_the_row() {
        let mut text = Framebuffer::new().to_ascii();
        text.replace_range(130..131, "x");
        let error = Framebuffer::from_ascii(&text).unwrap_err();
        assert_eq!(error, "row 1 column 1: `x` is not # or .");
        assert!(Framebuffer::from_ascii("..\n").is_err());
    }
}
