//! linkymon: the Linky meter's téléinformation (TIC) to MQTT, a screen, an LED and daily logs.
//!
//! # Layout
//! Read the modules in the order the data flows. The pure ones decide (no I/O, no clock:
//! they are given `now`); the others move bytes.
//!
//! - [`config`]: the one configuration tree (figment: defaults < YAML file < `LINKYMON_` env).
//! - [`source`]: where the bytes come from, async: the serial port (and finding its baud
//!   rate), a replayed capture, or a simulated meter (its model is pure).
//! - [`tic`]: bytes → checksum-verified [`tic::Frame`]s. Sans-IO push decoder and encoder.
//! - [`meter`]: frames → typed [`meter::Reading`]s: the label table, STGE, EJP/Tempo,
//!   injection, tariff period, and the guard that holds back impossible index jumps. Pure.
//! - [`publish`]: readings → MQTT: topics, payloads, discovery and policy (pure); the
//!   publisher, which speaks to the broker (network I/O), and the on-disk spool of
//!   unacknowledged `state` messages.
//! - [`output`]: readings → the box: the OLED screen (or its PNG stand-in), the EJP LED and
//!   the meter's relay contact, a pure screen/LED/debounce core under a thin rppal shell.
//! - [`logger`]: the `logger` and `graph` commands' work: `state` messages → daily logs in
//!   the Perl tool's format → day reports and HTML pages with costs (pure), with the log
//!   files, the logger's MQTT session and its state across restarts.
//! - [`prices`]: the dated price sets of `prices:` → a day's price per kWh, subscription and
//!   cost (pure), for the logger.
//! - [`broker`]: the embedded MQTT broker (rumqttd) for `mqtt.embedded_broker`, so a box
//!   without mosquitto still serves Home Assistant and the logger.
//! - [`files`]: replacing a file atomically, for pages, screens and saved state.
//! - [`commands`]: one wiring file per subcommand (`run`, `logger`, `graph`, `demo`,
//!   `decode`): opens what the configuration names, starts the tasks, stops them cleanly.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod broker;
pub mod commands;
pub mod config;
pub mod files;
pub mod fleet;
pub mod logger;
pub mod meter;
pub mod output;
pub mod prices;
pub mod publish;
pub mod source;
pub mod tic;

#[cfg(test)]
mod testing;
