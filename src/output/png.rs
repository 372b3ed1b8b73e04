//! The virtual screen: the picture the OLED would show, written as a PNG file.
//!
//! `display.driver: png` is for a box without a screen, the demo and the tests: the same
//! [`Framebuffer`] the SSD1306 would get is encoded as a 128×64 one-bit grey PNG, lit pixels
//! white, and written to `display.png_path` whenever it changes. The file is replaced with
//! [`write_atomic`], so a web page or an image viewer reloading it never reads half a
//! picture. [`encode`] can also scale the picture up, for documentation.

use std::path::{Path, PathBuf};

use super::framebuffer::{Framebuffer, HEIGHT, WIDTH};
use super::{Display, OutputError};
use crate::files::write_atomic;

/// The picture as PNG bytes, each pixel drawn as a `scale`×`scale` square (1: 128×64).
pub fn encode(picture: &Framebuffer, scale: u32) -> Vec<u8> {
    let scale = scale.max(1) as usize;
    let (width, height) = (WIDTH * scale, HEIGHT * scale);
    let row_bytes = width.div_ceil(8);
    let mut data = vec![0u8; row_bytes * height];
    for y in 0..height {
        for x in 0..width {
            if picture.pixel(x / scale, y / scale) {
                data[y * row_bytes + x / 8] |= 0x80 >> (x % 8);
            }
        }
    }
    let mut out = Vec::new();
    let mut encoder = png::Encoder::new(&mut out, width as u32, height as u32);
    encoder.set_color(png::ColorType::Grayscale);
    encoder.set_depth(png::BitDepth::One);
    // Writing a well-formed image into a Vec cannot fail: sizes and data length agree.
    if let Ok(mut writer) = encoder.write_header() {
        let _ = writer.write_image_data(&data);
    }
    out
}

/// `display.driver: png`: writes each new picture to a file.
#[derive(Debug)]
pub struct PngScreen {
    path: PathBuf,
    /// Whether the last picture written was blank, so dropping does not write it twice.
    blank: bool,
}

impl PngScreen {
    /// A virtual screen at `path`; its folder is created if missing. Nothing is written until
    /// the first picture, so a failure to create the folder is reported here.
    pub fn open(path: &Path) -> Result<Self, OutputError> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(|e| OutputError::Png {
                path: path.to_owned(),
                reason: e.to_string(),
            })?;
        }
        Ok(PngScreen {
            path: path.to_owned(),
            blank: false,
        })
    }

    fn write(&mut self, picture: &Framebuffer) -> Result<(), OutputError> {
        write_atomic(&self.path, &encode(picture, 1)).map_err(|e| OutputError::Png {
            path: self.path.clone(),
            reason: e.to_string(),
        })?;
        self.blank = picture.lit() == 0;
        Ok(())
    }
}

impl Display for PngScreen {
    fn show(&mut self, picture: &Framebuffer) -> Result<(), OutputError> {
        self.write(picture)
    }

    fn clear(&mut self) -> Result<(), OutputError> {
        self.write(&Framebuffer::new())
    }
}

impl Drop for PngScreen {
    /// A stopped daemon leaves a dark screen, as the OLED does, rather than stale numbers.
    fn drop(&mut self) {
        if !self.blank {
            let _ = self.clear();
        }
    }
}
