//! `linkymon run`: the edge daemon. Source → decoder → meter → (watch) box + (channel) MQTT.

mod acquire;

use anyhow::Context;
use tokio::sync::{mpsc, watch};
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

pub use acquire::{acquire, now_iso8601};

use crate::config::{Config, ConfigError};
use crate::publish::bridge::{self, Bridge};
use crate::publish::link::Broker;
use crate::publish::publisher::{MqttSettings, publish};
use crate::publish::spool::Spool;
use crate::source::{Source, forced_mode};
use crate::tic::ModeHint;

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
        backlog_rate: config.publish.backlog_rate,
        drain_timeout: config.publish.drain_timeout,
        relay: config.relay.gpio.is_some(),
        outages: Default::default(),
    })
}

/// Opens `mqtt.spool_dir`, saying what a previous run left there. A directory that cannot be
/// used is a [`ConfigError`] (exit status 2): the user must point it elsewhere or fix it.
fn open_spool(config: &Config) -> anyhow::Result<Spool> {
    let dir = &config.mqtt.spool_dir;
    let (spool, recovered) =
        Spool::open(dir, config.mqtt.spool_max).map_err(|e| ConfigError::BadValue {
            key: "mqtt.spool_dir".into(),
            origin: None,
            problem: format!(
                "cannot use {}: {e}; point it at a writable directory that no other \
                 linkymon uses",
                dir.display(),
            ),
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
    let source = Source::open(&config.meter)?;
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
    // Nothing fails from here on: `<base>/bridge/state` says `online` now, before any frame,
    // and `offline` at the end (or the broker says it, as the Last Will).
    let bridge = Bridge::start(
        &settings.broker,
        settings.outages.clone(),
        bridge::client_id(
            config.mqtt.client_id.as_deref(),
            &config.mqtt.base_topic,
            &config.mqtt.spool_dir,
        ),
        &config.mqtt.base_topic,
    );
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
        Some(config.mqtt.spool_dir.join(acquire::MEMORY_FILE)),
        readings_tx,
        latest_tx,
        shutdown,
    )
    .await;
    let published = publisher.await.context("the MQTT publisher failed");
    box_stop.cancel();
    // Before the embedded broker stops, so that its subscribers get the `offline`.
    let _ = tokio::join!(box_task, relay_task, bridge.stop());
    if let Some(broker) = broker {
        broker.stop().await;
    }
    published
}
