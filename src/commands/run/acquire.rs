//! The acquisition loop of `linkymon run`: bytes from the source through the decoder and the
//! meter model, each reading to the screen and LED (watch) and to the publisher (channel),
//! stamped with the contract's `ts`.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use tokio::sync::mpsc::error::SendTimeoutError;
use tokio::sync::{mpsc, watch};
use tokio::time::{Duration, Instant};
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

use crate::meter::{Memory, Meter, PowerEstimator, Reading};
use crate::publish::publisher::MeterSample;
use crate::source::Source;
use crate::tic::{Decoder, ModeHint};

/// How long a frame may wait for the publisher before it is counted as not published.
const HANDOVER: Duration = Duration::from_millis(100);

/// The format of `ts` (contract §3): ISO 8601 to the second, with the local offset.
const ISO8601: &str = "%Y-%m-%dT%H:%M:%S%:z";

/// The file of the spool directory where what the meter model learnt is kept (which
/// supplier index counts which tariff period, the day profiles): see [`Memory`].
pub const MEMORY_FILE: &str = "learnt.json";

/// The largest `learnt.json` read: 8 meters with all they can hold take about 14 KiB.
const MAX_MEMORY_FILE: u64 = 64 * 1024;

/// What the meter model learnt on earlier runs, from `path`; empty when there is none, or
/// when the file is larger than anything linkymon writes.
fn load_memory(path: &Path) -> Memory {
    if std::fs::metadata(path).is_ok_and(|m| m.len() > MAX_MEMORY_FILE) {
        warn!(path = %path.display(), "what was learnt of the meter is larger than linkymon writes it; learning again");
        return Memory::default();
    }
    match std::fs::read_to_string(path) {
        Ok(text) => Memory::from_json(&text),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Memory::default(),
        Err(e) => {
            warn!(path = %path.display(), error = %e, "cannot read what was learnt of the meter; learning again");
            Memory::default()
        }
    }
}

/// Saves what the meter model learnt since the last save, atomically (a power cut leaves the
/// old file or the new one). A failure is said once per run; the next change tries again.
fn save_memory(meter: &mut Meter, path: &Path, failing: &mut bool) {
    let memory = meter.memory_mut();
    if !memory.is_dirty() {
        return;
    }
    match crate::files::write_atomic(path, memory.to_json().as_bytes()) {
        Ok(()) => memory.saved(),
        Err(e) if !*failing => {
            warn!(path = %path.display(), error = %e, "cannot save what was learnt of the meter; a restart learns it again");
            *failing = true;
            memory.saved();
        }
        Err(_) => memory.saved(),
    }
}

/// The acquisition loop: reads bytes, decodes frames, hands readings on. Ends at the end of
/// a replay or on shutdown; dropping `readings` tells the publisher to say offline.
/// `memory_path` is where what the meter model learns is kept across runs (`MEMORY_FILE`).
pub async fn acquire(
    mut source: Source,
    hint: ModeHint,
    voltage: u32,
    memory_path: Option<PathBuf>,
    readings: mpsc::Sender<MeterSample>,
    latest: watch::Sender<Option<Arc<Reading>>>,
    shutdown: CancellationToken,
) {
    let started = Instant::now();
    let mut decoder = Decoder::new(hint);
    let memory = memory_path.as_deref().map(load_memory).unwrap_or_default();
    let mut meter = Meter::new(voltage).with_memory(memory);
    let mut save_failing = false;
    let mut power = PowerEstimator::default();
    // The meter the frames came from so far (ADCO, ADSC).
    let mut meter_id: Option<String> = None;
    let mut buf = vec![0u8; 4096];
    let mut frames = Vec::new();
    let mut not_published = 0u64;
    loop {
        let n = tokio::select! {
            biased;
            () = shutdown.cancelled() => break,
            n = source.read(&mut buf) => n,
        };
        let n = match n {
            Ok(0) => {
                info!("end of the capture");
                break;
            }
            Ok(n) => n,
            Err(e) => {
                warn!("reading the meter failed: {e}");
                break;
            }
        };
        // The frames this read completed all ended by now: one instant stamps them all.
        let now = Instant::now();
        decoder.push(&buf[..n], |frame| frames.push(frame));
        let stats = decoder.stats();
        source.after_read(now, stats.groups_ok, decoder.mode());
        if frames.is_empty() {
            continue;
        }
        let at = (now - started).as_secs_f64();
        // The meter's rates and jumps are judged on the source's clock (a demo runs 60×).
        let source_at = source.clock(at);
        let ts: Arc<str> = now_iso8601().into();
        for frame in frames.drain(..) {
            let mut reading = meter.read(&frame, source_at);
            if reading.meter.is_some() && reading.meter != meter_id {
                if meter_id.is_some() {
                    // Another meter: its indexes start afresh, they are no glitch of the old.
                    let memory = meter.take_memory();
                    meter = Meter::new(voltage).with_memory(memory);
                    power = PowerEstimator::default();
                    reading = meter.read(&frame, source_at);
                }
                meter_id.clone_from(&reading.meter);
            }
            if let Some(path) = &memory_path {
                save_memory(&mut meter, path, &mut save_failing);
            }
            let reading = Arc::new(reading);
            let power_w = power.update(&reading, source_at);
            latest.send_replace(Some(reading.clone()));
            let published = MeterSample {
                reading,
                ts: ts.clone(),
                at,
                power_w,
                tic: stats,
                meter: meter.stats(),
                mode: frame.mode().as_str(),
                frames_not_published: not_published,
            };
            // A slow publisher slows the reading down (a pseudo-terminal or a replay then
            // waits, losing nothing); one stuck on an absent broker costs a frame at most
            // `HANDOVER`, so the screen and LED keep following the meter.
            match readings.send_timeout(published, HANDOVER).await {
                Ok(()) => {}
                Err(SendTimeoutError::Timeout(_)) => not_published += 1,
                Err(SendTimeoutError::Closed(_)) => return,
            }
        }
    }
}

/// The host clock as the contract's `ts`: ISO 8601 with the local offset.
pub fn now_iso8601() -> String {
    iso8601(&jiff::ZonedDateTime::now())
}

/// `t` as the contract's `ts`.
fn iso8601(t: &jiff::ZonedDateTime) -> String {
    t.strftime(ISO8601).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ts_is_iso8601_to_the_second_with_the_local_offset() {
        let at = |second: i64, zone: &str| {
            let t = jiff::Timestamp::from_second(second).unwrap();
            let tz = jiff::tz::TimeZone::get(zone).unwrap();
            iso8601(&t.to_zoned_datetime(tz))
        };
        let winter = 1_613_844_622; // 2021-02-20T18:10:22Z
        assert_eq!(at(winter, "Europe/Paris"), "2021-02-20T19:10:22+01:00");
        assert_eq!(at(winter, "UTC"), "2021-02-20T18:10:22+00:00");
        assert_eq!(at(winter, "America/St_Johns"), "2021-02-20T14:40:22-03:30");
        assert_eq!(at(winter, "Asia/Kathmandu"), "2021-02-20T23:55:22+05:45");
        let summer = 1_624_212_000; // 2021-06-20T18:00:00Z
        assert_eq!(at(summer, "Europe/Paris"), "2021-06-20T20:00:00+02:00");
    }
}
