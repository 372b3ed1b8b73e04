//! linkymon: the Linky meter's téléinformation (TIC) to MQTT, a screen, an LED and daily logs.
//!
//! # Layout
//! Read the modules in the order the data flows:
//!
//! - [`config`]: the one configuration tree (figment: defaults < YAML file < `LINKYMON_` env).
//! - [`tic`]: bytes → checksum-verified [`tic::Frame`]s. Sans-IO push decoder and encoder.
//! - [`meter`]: frames → typed [`meter::Reading`]s: the label table, STGE, EJP/Tempo,
//!   injection, tariff period, and the guard that holds back impossible index jumps.
//! - [`publish`]: readings → MQTT [`publish::Message`]s: topics, payloads, discovery, policy;
//!   the rumqttc glue and the on-disk spool of unacknowledged `state` messages.
//! - [`output`]: readings → the box: the OLED screen (or its PNG stand-in), the EJP LED and
//!   the meter's relay contact, a pure screen/LED/debounce core under a thin rppal shell.
//! - [`sidecar`]: `state` messages → daily logs in the Perl tool's format → day reports and
//!   HTML pages with costs; pure, driven by `linkymon logger` and `linkymon graph`.
//! - [`simulate`]: a synthetic historic EJP meter (time in, frame bytes out) for
//!   `meter.port: simulate` and the demo, when there is no meter to read.
//! - [`broker`]: the embedded MQTT broker (rumqttd) for `mqtt.embedded_broker`, so a box
//!   without mosquitto still serves Home Assistant and the logger.
//! - [`commands`]: one wiring file per subcommand; the only place that does I/O.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod broker;
pub mod commands;
pub mod config;
pub mod meter;
pub mod output;
pub mod publish;
pub mod sidecar;
pub mod simulate;
pub mod source;
pub mod tic;

#[cfg(test)]
mod testing;
