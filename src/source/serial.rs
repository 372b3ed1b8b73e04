//! The meter's serial line: 7E1 at 1200 or 9600 baud (found by [`BaudSearch`] in `auto`),
//! reopened forever when it vanishes or falls silent.

use std::path::{Path, PathBuf};

use tokio::io::AsyncReadExt;
use tokio::time::{Duration, Instant};
use tokio_serial::{DataBits, Parity, SerialPortBuilderExt, SerialStream, StopBits};
use tracing::{info, warn};

use super::Backoff;
use super::baud::{BaudChange, BaudSearch};
use crate::tic::Mode;

/// No byte at all for this long means the line is dead (a meter sends continuously).
const SILENCE: Duration = Duration::from_secs(10);

/// Why the port could not be opened at start.
#[derive(Debug, thiserror::Error)]
pub enum SerialError {
    /// The device path does not exist.
    #[error(
        "serial port {path} does not exist: check `meter.port` (e.g. /dev/ttyAMA0, /dev/ttyUSB0)"
    )]
    Missing {
        /// The configured path.
        path: PathBuf,
    },
    /// The path exists but is not a character device (a regular file, a directory).
    #[error(
        "{path} is not a serial device: check `meter.port` (e.g. /dev/ttyAMA0, /dev/ttyUSB0), \
         or write `replay:{path}` to play a capture"
    )]
    NotADevice {
        /// The configured path.
        path: PathBuf,
    },
    /// The device exists but could not be opened.
    #[error("cannot open serial port {path}: {source} (is the user in the dialout group?)")]
    Open {
        /// The configured path.
        path: PathBuf,
        /// What the system said.
        source: tokio_serial::Error,
    },
}

/// A serial port that reads forever: silence or a vanished device means reopening with
/// backoff, logged once per change of state.
#[derive(Debug)]
pub struct Serial {
    path: PathBuf,
    /// The line rate, and in `auto` the search for it.
    baud: BaudSearch,
    port: Option<SerialStream>,
    /// When the last byte came, or the port was opened: silence is counted from here.
    last_byte: Instant,
    /// [`SILENCE`], shorter in tests.
    silence_after: Duration,
    backoff: Backoff,
    warned_8n1: bool,
    down_logged: bool,
}

impl Serial {
    /// Opens the port now, so that a wrong path is a clear error at start. `mode` is
    /// `None` for auto (1200 baud first, then 9600 until valid groups are seen).
    pub fn open(path: &Path, mode: Option<Mode>) -> Result<Self, SerialError> {
        use std::os::unix::fs::FileTypeExt;
        match std::fs::metadata(path) {
            Err(_) => {
                return Err(SerialError::Missing {
                    path: path.to_owned(),
                });
            }
            Ok(metadata) if !metadata.file_type().is_char_device() => {
                return Err(SerialError::NotADevice {
                    path: path.to_owned(),
                });
            }
            Ok(_) => {}
        }
        let mut serial = Serial {
            path: path.to_owned(),
            baud: BaudSearch::new(mode, Instant::now()),
            port: None,
            last_byte: Instant::now(),
            silence_after: SILENCE,
            backoff: Backoff::default(),
            warned_8n1: false,
            down_logged: false,
        };
        let port = serial.open_port().map_err(|source| SerialError::Open {
            path: path.to_owned(),
            source,
        })?;
        serial.port = Some(port);
        info!(port = %path.display(), baud = serial.baud(), "serial port open");
        Ok(serial)
    }

    /// The current line rate.
    pub fn baud(&self) -> u32 {
        self.baud.baud()
    }

    /// Opens 7E1; where the device refuses 7 bits or parity (a pseudo-terminal, some USB
    /// adapters), falls back to 8N1: the decoder masks bit 7 and the checksums still guard.
    fn open_port(&mut self) -> Result<SerialStream, tokio_serial::Error> {
        let builder = tokio_serial::new(self.path.to_string_lossy(), self.baud());
        let seven_e1 = builder
            .clone()
            .data_bits(DataBits::Seven)
            .parity(Parity::Even)
            .stop_bits(StopBits::One);
        match seven_e1.open_native_async() {
            Ok(port) => Ok(port),
            Err(e) if e.kind == tokio_serial::ErrorKind::InvalidInput || is_einval(&e) => {
                if !self.warned_8n1 {
                    warn!(port = %self.path.display(), "the device refuses 7E1; reading 8N1, bit 7 masked, checksums still checked");
                    self.warned_8n1 = true;
                }
                builder
                    .data_bits(DataBits::Eight)
                    .parity(Parity::None)
                    .stop_bits(StopBits::One)
                    .open_native_async()
            }
            Err(e) => Err(e),
        }
    }

    /// After each read, what the decoder made of the bytes so far (see [`BaudSearch`]): in
    /// `auto`, the port is reopened at the other rate when the search says so.
    pub fn after_read(&mut self, now: Instant, valid_groups: u64, mode: Option<Mode>) {
        if self.baud.after_read(now, valid_groups, mode) == BaudChange::Reopen {
            self.port = None;
        }
    }

    /// Reads some bytes, reopening the port as long as it takes; never fails. A line with no
    /// byte for [`SILENCE`] is dead (a meter sends continuously) and is reopened too.
    pub async fn read(&mut self, buf: &mut [u8]) -> usize {
        loop {
            let Some(port) = self.port.as_mut() else {
                match self.open_port() {
                    Ok(port) => {
                        self.port = Some(port);
                        self.last_byte = Instant::now();
                        if self.down_logged {
                            info!(port = %self.path.display(), baud = self.baud(), "serial port back");
                            self.down_logged = false;
                        }
                        self.backoff.reset();
                    }
                    Err(e) => self.down(&e.to_string()).await,
                }
                continue;
            };
            let quiet_left = self.silence_after.saturating_sub(self.last_byte.elapsed());
            match tokio::time::timeout(quiet_left, port.read(buf)).await {
                Ok(Ok(n)) if n > 0 => {
                    self.last_byte = Instant::now();
                    return n;
                }
                Ok(Ok(_)) => self.down("end of file").await,
                Ok(Err(e)) => self.down(&e.to_string()).await,
                Err(_) => {
                    let why = format!("no byte for {:?}", self.silence_after);
                    self.down(&why).await;
                }
            }
        }
    }

    async fn down(&mut self, why: &str) {
        self.port = None;
        if !self.down_logged {
            warn!(port = %self.path.display(), why, "serial port lost; reopening with backoff");
            self.down_logged = true;
        }
        tokio::time::sleep(self.backoff.next_delay()).await;
    }
}

fn is_einval(e: &tokio_serial::Error) -> bool {
    e.description.contains("Invalid argument") || e.description.contains("EINVAL")
}

#[cfg(test)]
mod tests {
    use tokio::io::AsyncWriteExt;
    use tokio_serial::SerialPort;

    use super::*;

    #[tokio::test]
    async fn a_line_silent_too_long_is_reopened_and_a_slow_one_is_not() {
        let (mut meter, pts) = SerialStream::pair().unwrap();
        let path = PathBuf::from(pts.name().unwrap());
        drop(pts); // opened exclusively; the daemon opens it again by name
        let mut serial = match Serial::open(&path, Some(Mode::Historic)) {
            Ok(serial) => serial,
            // qemu-user (the ARM builds' unit tests) does not emulate the serial ioctls;
            // this runs on the host and on real ARM boards.
            Err(SerialError::Open { source, .. })
                if source.description.contains("Function not implemented") =>
            {
                eprintln!("skipped: this system cannot set up a serial port ({source})");
                return;
            }
            Err(e) => panic!("{e}"),
        };
        serial.silence_after = Duration::from_millis(400);
        let mut buf = [0u8; 16];
        // A byte every 150 ms, for 1.2 s: longer than the silence, but never silent as long.
        let writer = tokio::spawn(async move {
            for _ in 0..8 {
                tokio::time::sleep(Duration::from_millis(150)).await;
                meter.write_all(b"x").await.unwrap();
            }
            meter
        });
        for _ in 0..8 {
            let n = tokio::time::timeout(Duration::from_secs(1), serial.read(&mut buf))
                .await
                .expect("the byte was read");
            assert_eq!(&buf[..n], b"x");
        }
        let _meter = writer.await.unwrap(); // the line stays up, only quiet
        assert!(!serial.down_logged, "a slow line is not a dead one");
        // Then nothing: the port is given up and reopened with backoff.
        let read = tokio::time::timeout(Duration::from_millis(700), serial.read(&mut buf)).await;
        assert!(read.is_err(), "nothing came");
        assert!(serial.down_logged, "the silence was noticed");
        assert!(serial.port.is_none(), "the port was closed, to be reopened");
    }
}
