//! The simulated meter as a byte source: frames from [`Simulator`], paced in real time.

use tokio::time::{Duration, Instant};

use super::{SimConfig, SimConfigError, Simulator, wire_seconds};

/// The fastest frame rate, whatever the speed: a day at speed 1000 still gives every
/// consumer (the logger, a browser) time to breathe.
const MIN_FRAME_GAP: Duration = Duration::from_millis(20);

/// Frames of a synthetic meter, one every line-time ÷ `speed` seconds; simulated time runs
/// `speed` times faster than real time.
#[derive(Debug)]
pub struct Simulated {
    simulator: Simulator,
    speed: f64,
    start: Option<Instant>,
    next_frame: Option<Instant>,
    pending: Vec<u8>,
    sent: usize,
    /// The simulated time of the current frame.
    simulated_s: f64,
}

impl Simulated {
    /// A simulated meter at `speed` simulated seconds per real second.
    pub fn new(config: SimConfig, speed: f64) -> Result<Self, SimConfigError> {
        Ok(Simulated {
            simulator: Simulator::new(config)?,
            speed: speed.max(f64::MIN_POSITIVE),
            start: None,
            next_frame: None,
            pending: Vec::new(),
            sent: 0,
            simulated_s: 0.0,
        })
    }

    /// The simulated time of the frame being sent, in seconds since the start.
    pub fn simulated_seconds(&self) -> f64 {
        self.simulated_s
    }

    /// The next bytes of the current frame, waiting for the next frame when it is all sent.
    pub async fn read(&mut self, buf: &mut [u8]) -> usize {
        if self.sent == self.pending.len() {
            let start = *self.start.get_or_insert_with(Instant::now);
            if let Some(due) = self.next_frame {
                tokio::time::sleep_until(due).await;
            }
            let now = Instant::now();
            self.simulated_s = now.duration_since(start).as_secs_f64() * self.speed;
            self.pending = self.simulator.frame_at(self.simulated_s);
            self.sent = 0;
            let gap = Duration::from_secs_f64(wire_seconds(self.pending.len()) / self.speed)
                .max(MIN_FRAME_GAP);
            self.next_frame = Some(now + gap);
        }
        let n = (self.pending.len() - self.sent).min(buf.len());
        buf[..n].copy_from_slice(&self.pending[self.sent..self.sent + n]);
        self.sent += n;
        n
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tic::Decoder;

    #[tokio::test(start_paused = true)]
    async fn frames_come_at_line_time_divided_by_speed() {
        let mut source = Simulated::new(SimConfig::default(), 10.0).unwrap();
        let mut decoder = Decoder::default();
        let mut frames = 0;
        let t0 = Instant::now();
        let mut buf = [0u8; 64];
        while frames < 11 {
            let n = source.read(&mut buf).await;
            decoder.push(&buf[..n], |_| frames += 1);
        }
        // A simulated frame is about 1.5 s of line time: ten gaps at speed 10 take ~1.5 s.
        let elapsed = t0.elapsed().as_secs_f64();
        assert!((1.2..1.8).contains(&elapsed), "{elapsed}");
        assert_eq!(decoder.stats().groups_bad_checksum, 0);
    }
}
