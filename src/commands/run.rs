//! `linkymon run`: the edge daemon. Source → decoder → meter → (watch) box + (channel) MQTT.

use std::sync::Arc;

use anyhow::Context;
use tokio::sync::{mpsc, watch};
use tokio::time::{Duration, Instant};
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

use crate::config::{Config, ConfigError, MeterMode, PortSpec};
use crate::meter::{Meter, PowerEstimator, Reading};
use crate::publish::link::Broker;
use crate::publish::publisher::{MqttSettings, Published, publish};
use crate::publish::spool::Spool;
use crate::simulate::SimConfig;
use crate::source::{Replay, Serial, Simulated, Source};
use crate::tic::{Decoder, Mode, ModeHint};

/// With `mode: auto`, how long a baud rate may go without a valid group before the other
/// is tried: two historic frames' worth.
const BAUD_PROBE: Duration = Duration::from_secs(5);

/// With `mode: auto`, how long a found baud rate may go without a valid group, while bytes
/// keep coming, before the other is tried again: the meter may have been switched between
/// historic and standard mode (Enedis does it remotely), and then every byte is garbage.
const BAUD_LOST: Duration = Duration::from_secs(15);

/// How long a frame may wait for the publisher before it is counted as not published.
const HANDOVER: Duration = Duration::from_millis(100);

/// The latest reading, for local consumers (screen, LED) that must not depend on MQTT.
pub type LatestReading = watch::Receiver<Option<Arc<Reading>>>;

fn forced_mode(mode: MeterMode) -> Option<Mode> {
    match mode {
        MeterMode::Auto => None,
        MeterMode::Historic => Some(Mode::Historic),
        MeterMode::Standard => Some(Mode::Standard),
    }
}

/// Opens the configured source; a serial port missing at start is an error.
pub fn open_source(config: &Config) -> anyhow::Result<Source> {
    let mode = forced_mode(config.meter.mode);
    Ok(match &config.meter.port {
        PortSpec::Serial(path) => Source::Serial(Serial::open(path, mode)?),
        PortSpec::Replay(path) => Source::Replay(
            Replay::open(path, config.meter.replay_speed, mode.map(Mode::baud)).with_context(
                || format!("cannot read the capture {} (meter.port)", path.display()),
            )?,
        ),
        PortSpec::Simulate => Source::Simulated(
            Simulated::new(
                SimConfig {
                    voltage: config.meter.voltage.into(),
                    ..SimConfig::default()
                },
                config.meter.simulate_speed,
            )
            .context("meter.port: simulate")?,
        ),
    })
}

/// MQTT settings from the configuration; a TLS file that cannot be used is a config error.
pub fn mqtt_settings(config: &Config) -> Result<MqttSettings, ConfigError> {
    let m = &config.mqtt;
    Ok(MqttSettings {
        broker: Broker::from_config(m)?,
        client_id: m.client_id.clone(),
        base_topic: m.base_topic.clone(),
        discovery: m.discovery,
        discovery_prefix: m.discovery_prefix.clone(),
        interval: config.publish.interval,
        relay: config.relay.gpio.is_some(),
    })
}

/// Opens `mqtt.spool_dir`, saying what a previous run left there.
fn open_spool(config: &Config) -> anyhow::Result<Spool> {
    let dir = &config.mqtt.spool_dir;
    let (spool, recovered) = Spool::open(dir, config.mqtt.spool_max).with_context(|| {
        format!(
            "cannot use the spool directory {} (mqtt.spool_dir): point it at a writable \
             directory that no other linkymon uses",
            dir.display()
        )
    })?;
    if recovered.backlog > 0 {
        info!(
            messages = recovered.backlog,
            "state messages from the last run wait in the spool"
        );
    }
    if recovered.torn > 0 {
        warn!(
            records = recovered.torn,
            "the spool had torn records (a power cut while writing?); cut off, the rest is kept"
        );
    }
    Ok(spool)
}

/// Runs the daemon until `shutdown` fires or a replay ends.
pub async fn run(mut config: Config, shutdown: CancellationToken) -> anyhow::Result<()> {
    // `mqtt.embedded_broker`: the broker runs in this process and the publisher is pointed at
    // it; it outlives the publisher, so `offline` still reaches the subscribers.
    let broker = crate::broker::start_configured(&mut config.mqtt).await?;
    let settings = mqtt_settings(&config)?;
    let source = open_source(&config)?;
    let (readings_tx, readings_rx) = mpsc::channel(256);
    let (latest_tx, latest_rx) = watch::channel(None);
    let (relay_tx, relay_rx) = watch::channel(None);
    // The box outlives the publisher a little: a replay's end clears the screen after
    // `offline` went out, and SIGTERM stops both.
    let box_stop = shutdown.child_token();
    let relay_task = tokio::spawn(crate::output::run_relay(
        config.relay.clone(),
        relay_tx,
        box_stop.clone(),
    ));
    let box_task = tokio::spawn(crate::output::run_box(
        crate::output::BoxConfig::from(&config),
        latest_rx,
        relay_rx.clone(),
        box_stop.clone(),
    ));
    let spool = open_spool(&config)?;
    let publisher = tokio::spawn(publish(
        settings,
        spool,
        readings_rx,
        relay_rx,
        shutdown.clone(),
    ));
    let hint = forced_mode(config.meter.mode).map_or(ModeHint::Auto, ModeHint::Force);
    acquire(
        source,
        hint,
        config.meter.voltage.into(),
        readings_tx,
        latest_tx,
        shutdown,
    )
    .await;
    let published = publisher.await.context("the MQTT publisher failed");
    box_stop.cancel();
    let _ = tokio::join!(box_task, relay_task);
    if let Some(broker) = broker {
        broker.stop().await;
    }
    published
}

/// The acquisition loop: reads bytes, decodes frames, hands readings on. Ends at the end of
/// a replay or on shutdown; dropping `readings` tells the publisher to say offline.
pub async fn acquire(
    mut source: Source,
    hint: ModeHint,
    voltage: u32,
    readings: mpsc::Sender<Published>,
    latest: watch::Sender<Option<Arc<Reading>>>,
    shutdown: CancellationToken,
) {
    let started = Instant::now();
    let mut decoder = Decoder::new(hint);
    let mut meter = Meter::new(voltage);
    let mut power = PowerEstimator::default();
    let mut buf = vec![0u8; 4096];
    let mut probe = (Instant::now(), 0u64);
    let mut confirmed = false;
    let mut pending = Vec::new();
    let mut not_published = 0u64;
    // Made once: a fresh one on every read would register with the token each time.
    let cancelled = shutdown.cancelled();
    tokio::pin!(cancelled);
    loop {
        let n = tokio::select! {
            biased;
            n = source.read(&mut buf) => n,
            () = &mut cancelled => break,
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
        // One clock reading per read: it stamps the frames it completed, which all ended by now.
        let now = Instant::now();
        decoder.push(&buf[..n], |frame| pending.push(frame));
        let stats = decoder.stats();
        if stats.groups_ok > probe.1 {
            probe = (now, stats.groups_ok);
            if let (false, Some(mode)) = (confirmed, decoder.mode()) {
                source.confirm_mode(mode);
                confirmed = true;
            }
        } else if !confirmed && now - probe.0 >= BAUD_PROBE {
            source.no_valid_groups();
            probe.0 = now;
        } else if confirmed && now - probe.0 >= BAUD_LOST {
            confirmed = !source.mode_lost();
            probe.0 = now;
        }
        if pending.is_empty() {
            continue;
        }
        // One stamp for all of them: in a burst, formatting the clock for every frame was 4 %
        // of the daemon's instructions.
        let at = (now - started).as_secs_f64();
        let ts: Arc<str> = now_iso8601().into();
        for frame in pending.drain(..) {
            let reading = Arc::new(meter.read(&frame, at));
            let power_w = power.update(&reading, at);
            latest.send_replace(Some(reading.clone()));
            let published = Published {
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
            // this long, so the screen and LED keep following the meter.
            // `try_send` first: a timer per frame costs more than the handover itself.
            let handed = match readings.try_send(published) {
                Ok(()) => Ok(()),
                Err(mpsc::error::TrySendError::Full(published)) => {
                    readings.send_timeout(published, HANDOVER).await
                }
                Err(mpsc::error::TrySendError::Closed(_)) => return,
            };
            match handed {
                Ok(()) => {}
                Err(mpsc::error::SendTimeoutError::Timeout(_)) => not_published += 1,
                Err(mpsc::error::SendTimeoutError::Closed(_)) => return,
            }
        }
    }
}

/// The host clock as ISO 8601 with the local offset, the `ts` of the contract.
pub fn now_iso8601() -> String {
    iso8601(&jiff::ZonedDateTime::now())
}

/// The format of `ts`.
const ISO8601: &str = "%Y-%m-%dT%H:%M:%S%:z";

/// `t` formatted with [`ISO8601`]. It is stamped on every frame: the usual case (a
/// four-digit year, an offset in whole minutes) is written digit by digit, which costs a
/// fraction of jiff's general formatter and gives the same text; any other goes through it.
fn iso8601(t: &jiff::ZonedDateTime) -> String {
    let offset = t.offset().seconds();
    if offset % 60 != 0 || !(0..=9999).contains(&t.year()) {
        return t.strftime(ISO8601).to_string();
    }
    let sign = if offset < 0 { "-" } else { "+" };
    let offset = offset.unsigned_abs();
    let mut out = String::with_capacity(25);
    for (before, n, width) in [
        ("", t.year().unsigned_abs().into(), 4),
        ("-", t.month().unsigned_abs().into(), 2),
        ("-", t.day().unsigned_abs().into(), 2),
        ("T", t.hour().unsigned_abs().into(), 2),
        (":", t.minute().unsigned_abs().into(), 2),
        (":", t.second().unsigned_abs().into(), 2),
        (sign, offset / 3600, 2),
        (":", offset / 60 % 60, 2),
    ] {
        out.push_str(before);
        for place in (0..width).rev() {
            out.push(char::from(b'0' + (n / 10_u32.pow(place) % 10) as u8));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_read_as_jiff_formats_them() {
        let zones = [
            "Europe/Paris",
            "UTC",
            "America/St_Johns",
            "Asia/Kathmandu",
            "Pacific/Chatham",
        ];
        for zone in zones {
            let tz = jiff::tz::TimeZone::get(zone).unwrap();
            // From 1890 (offsets in seconds, before standard time) to 2100, and years 1-999.
            let seconds = (-2_500_000_000_i64..4_100_000_000)
                .step_by(7_777_777)
                .chain((-62_000_000_000_i64..-30_000_000_000).step_by(999_999_999));
            for second in seconds {
                let t = jiff::Timestamp::from_second(second)
                    .unwrap()
                    .to_zoned_datetime(tz.clone());
                assert_eq!(iso8601(&t), t.strftime(ISO8601).to_string());
            }
        }
    }
}
