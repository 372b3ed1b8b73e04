//! A capture file played back as if it came down the line.

use std::path::Path;

use tokio::time::{Duration, Instant};

/// Bytes of a capture, delivered at the line's baud rate × `speed` (0 = as fast as read).
#[derive(Debug)]
pub struct Replay {
    bytes: Vec<u8>,
    sent: usize,
    baud: u32,
    speed: f64,
    start: Option<Instant>,
}

impl Replay {
    /// Loads the capture. The baud rate is the mode's when known, else guessed from the
    /// separators ([`super::baud::baud_of_capture`]).
    ///
    /// Only a regular file is read: a device or a FIFO (`/dev/zero`) would be read into memory
    /// without end.
    pub fn open(path: &Path, speed: f64, baud: Option<u32>) -> std::io::Result<Self> {
        if !std::fs::metadata(path)?.is_file() {
            return Err(std::io::Error::new(
                std::io::ErrorKind::InvalidInput,
                "not a regular file (a capture is a file of raw TIC bytes)",
            ));
        }
        let bytes = std::fs::read(path)?;
        let baud = baud.unwrap_or_else(|| super::baud::baud_of_capture(&bytes));
        Ok(Replay {
            bytes,
            sent: 0,
            baud,
            speed,
            start: None,
        })
    }

    /// The time the bytes delivered so far took on the line (10 bits a character).
    pub fn line_seconds(&self) -> f64 {
        self.sent as f64 * 10.0 / f64::from(self.baud.max(1))
    }

    /// The pacing rate.
    pub fn baud(&self) -> u32 {
        self.baud
    }

    /// The next bytes, once their time on the wire has come; 0 at the end.
    pub async fn read(&mut self, buf: &mut [u8]) -> usize {
        let remaining = self.bytes.len() - self.sent;
        if remaining == 0 || buf.is_empty() {
            return 0;
        }
        let n = if self.speed <= 0.0 {
            remaining.min(buf.len())
        } else {
            let start = *self.start.get_or_insert_with(Instant::now);
            // 10 bits a character (start, 7 data, parity, stop).
            let bytes_per_s = f64::from(self.baud) / 10.0 * self.speed;
            let due = (start.elapsed().as_secs_f64() * bytes_per_s) as usize;
            if due <= self.sent {
                // Bytes come 50 ms of line time at a time, as from a serial driver's buffer,
                // not one by one.
                let next = self.sent + ((bytes_per_s * 0.05) as usize).max(1);
                tokio::time::sleep_until(
                    start + Duration::from_secs_f64(next as f64 / bytes_per_s),
                )
                .await;
            }
            let due = ((start.elapsed().as_secs_f64() * bytes_per_s) as usize).max(self.sent + 1);
            (due - self.sent).min(remaining).min(buf.len())
        };
        buf[..n].copy_from_slice(&self.bytes[self.sent..self.sent + n]);
        self.sent += n;
        n
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn a_replay_is_paced_at_the_line_rate() {
        let capture = tempfile::NamedTempFile::new().unwrap();
        std::fs::write(capture.path(), vec![b'x'; 240]).unwrap();
        let mut r = Replay::open(capture.path(), 1.0, None).unwrap();
        assert_eq!(r.baud(), 1200);
        let t0 = Instant::now();
        let mut buf = [0u8; 64];
        let mut total = 0;
        while total < 240 {
            total += r.read(&mut buf).await;
        }
        // 240 bytes at 120 bytes/s take 2 s.
        assert_eq!(t0.elapsed().as_millis() / 100, 20);
        assert_eq!(r.read(&mut buf).await, 0);
    }
}
