//! The logger's state between messages: which meter owns which files, the states of
//! unfinished lines across restarts, and when pages are rebuilt.
//!
//! - **Where files go.** The first meter seen (written down in `<logger.dir>/.first_meter`)
//!   logs to `<logger.dir>/YYYY-MM-DD.log` and gets its pages in `<logger.pages_dir>/`; any
//!   other meter on the broker logs to `<logger.dir>/<id>/` and gets pages in
//!   `<pages_dir>/<id>/`, so two meters never share a file. `logger.meter` logs that one
//!   meter only, at the top level.
//! - **Unfinished lines survive a stop.** The states of an unfinished line are saved in
//!   `<logger.dir>/.pending` at shutdown and taken up again at start; a crash can lose those
//!   (fewer than `frames_per_line`).
//! - **Lines.** Each line is appended and handed to the system at once; files are never
//!   rewritten. Lines the disk refuses wait in memory and are written in order later.
//! - **Pages.** A day's page is rebuilt when its log got lines, whenever
//!   [`Logbook::rebuild_pages`] is called (every `logger.pages_interval` and at local
//!   midnight); pages whose log is newer than the page are rebuilt at start. The index is
//!   rebuilt when a day is added or a past day changes.

use std::collections::BTreeMap;
use std::fs;
use std::path::Path;
use std::time::Duration;

use anyhow::Context;
use jiff::Timestamp;
use jiff::tz::TimeZone;
use tracing::{info, warn};

use super::State;
use super::day::{self, midnight};
use super::disk::{DEBIAN_DYGRAPHS, install_assets, warn_online_assets};
use super::meter_log::{MeterLog, Place};
use super::pages::{Assets, PageSettings};
use super::window::local_date;
use crate::config::{Config, LoggerConfig};
use crate::files::write_atomic;
use crate::publish::Message;
use crate::publish::discovery;
use crate::publish::topics::Topics;

/// The file that remembers which meter owns the top-level logs.
const FIRST_METER_FILE: &str = ".first_meter";

/// The file that holds the states of unfinished lines between a stop and a start.
const PENDING_FILE: &str = ".pending";

/// The key of the logs found at the top level before any meter was seen.
const UNKNOWN_METER: &str = "";

/// Everything the logger keeps between messages.
#[derive(Debug)]
pub struct Logbook {
    config: LoggerConfig,
    tz: TimeZone,
    base_topic: String,
    discovery: discovery::Context,
    /// Whether dygraphs is installed next to the pages.
    assets_installed: bool,
    first_meter: Option<String>,
    meters: BTreeMap<String, MeterLog>,
    refused_warned: bool,
}

impl Logbook {
    /// Checks that the directories can be written, installs dygraphs next to the pages and
    /// takes in the logs already there.
    pub fn open(config: &Config) -> anyhow::Result<Logbook> {
        let c = &config.logger;
        let tz = c.time_zone()?;
        fs::create_dir_all(&c.dir).with_context(|| {
            format!(
                "cannot create the log directory {} (logger.dir): check it is writable",
                c.dir.display()
            )
        })?;
        let write_test = c.dir.join(".write-test");
        fs::write(&write_test, b"")
            .and_then(|()| fs::remove_file(&write_test))
            .with_context(|| {
                format!(
                    "cannot write in the log directory {} (logger.dir): check its permissions",
                    c.dir.display()
                )
            })?;
        fs::create_dir_all(&c.pages_dir).with_context(|| {
            format!(
                "cannot create the pages directory {} (logger.pages_dir)",
                c.pages_dir.display()
            )
        })?;
        let assets_installed = install_assets(&c.pages_dir, Path::new(DEBIAN_DYGRAPHS))
            .with_context(|| {
                format!("cannot copy dygraphs into {}/assets", c.pages_dir.display())
            })?;
        if !assets_installed {
            warn_online_assets();
        }
        let first_meter = c.meter.clone().or_else(|| {
            fs::read_to_string(c.dir.join(FIRST_METER_FILE))
                .ok()
                .map(|s| s.trim().to_owned())
                .filter(|s| !s.is_empty())
        });
        let mut logbook = Logbook {
            config: c.clone(),
            tz,
            base_topic: config.mqtt.base_topic.clone(),
            discovery: discovery::Context::new(
                &config.mqtt.base_topic,
                &config.mqtt.discovery_prefix,
            ),
            assets_installed,
            first_meter,
            meters: BTreeMap::new(),
            refused_warned: false,
        };
        logbook.take_existing_logs();
        Ok(logbook)
    }

    /// Where the first meter's files go: the top level.
    fn top_place(&self) -> Place {
        Place {
            log_dir: self.config.dir.clone(),
            pages_dir: self.config.pages_dir.clone(),
            up: "",
        }
    }

    /// Where any other meter's files go: a directory named after it.
    fn meter_place(&self, id: &str) -> Place {
        Place {
            log_dir: self.config.dir.join(id),
            pages_dir: self.config.pages_dir.join(id),
            up: "../",
        }
    }

    /// Finds the logs already on disk (ours or copied from the Perl tool), so their pages and
    /// the index are there from the start.
    fn take_existing_logs(&mut self) {
        let mut found = vec![(self.first_meter.clone(), self.top_place())];
        if self.config.meter.is_none()
            && let Ok(entries) = fs::read_dir(&self.config.dir)
        {
            for entry in entries.flatten() {
                let name = entry.file_name().to_string_lossy().into_owned();
                if entry.path().is_dir() && !name.starts_with('.') {
                    let place = self.meter_place(&name);
                    found.push((Some(name), place));
                }
            }
        }
        for (id, place) in found {
            let mut meter = MeterLog::new(id.clone(), place, &self.config, &self.tz);
            if meter.take_existing_logs() {
                let key = id.unwrap_or_else(|| UNKNOWN_METER.to_owned());
                self.meters.insert(key, meter);
            }
        }
    }

    /// Takes up the states saved at the last stop; returns what they make to publish.
    pub fn restore_pending(&mut self) -> anyhow::Result<Vec<Message>> {
        let path = self.config.dir.join(PENDING_FILE);
        let Ok(text) = fs::read_to_string(&path) else {
            return Ok(Vec::new());
        };
        let mut out = Vec::new();
        let mut count = 0;
        for payload in text.lines().filter(|l| !l.is_empty()) {
            out.extend(self.on_state(payload));
            count += 1;
        }
        fs::remove_file(&path).with_context(|| format!("cannot remove {}", path.display()))?;
        info!("took up {count} states of unfinished lines from the last run");
        Ok(out)
    }

    /// One `state` message: files it, writes the lines it completes, and returns what to
    /// publish (`today`, discovery for a new period).
    pub fn on_state(&mut self, payload: &str) -> Vec<Message> {
        let state = match State::parse(payload) {
            Ok(s) => s,
            Err(e) => {
                if !self.refused_warned {
                    warn!("a state message was not logged: {e} (said once)");
                    self.refused_warned = true;
                }
                return Vec::new();
            }
        };
        if self
            .config
            .meter
            .as_ref()
            .is_some_and(|m| *m != state.meter)
        {
            return Vec::new();
        }
        let id = state.meter.clone();
        if self.first_meter.is_none() {
            self.adopt_first_meter(&id);
        }
        if !self.meters.contains_key(&id) {
            let place = if self.first_meter.as_deref() == Some(id.as_str()) {
                self.top_place()
            } else {
                self.meter_place(&id)
            };
            let meter = MeterLog::new(Some(id.clone()), place, &self.config, &self.tz);
            self.meters.insert(id.clone(), meter);
        }
        let Some(meter) = self.meters.get_mut(&id) else {
            return Vec::new();
        };
        meter.note_device(state.mode, state.contract);
        let mut out = Vec::new();
        for filed in meter.aggregator.push(state) {
            meter.append(filed.date, &filed.line);
            if let Some(today) = meter.note_line(filed.date, filed.line, &self.tz) {
                let costs = day::costs(
                    &today.energy_wh,
                    &self.config.prices,
                    self.config.subscription_per_day,
                );
                let topic = Topics::new(&self.base_topic, &id).leaf("today");
                let payload = day::today_json(&today, &costs, &self.config.currency);
                out.push(Message::new(topic, payload, true, 1));
            }
        }
        if meter.has_new_periods() {
            out.extend(meter.announce(&id, &self.config.currency, &self.discovery));
        }
        out
    }

    /// Writes down the first meter seen: the top-level logs are its own from now on,
    /// including those already there (a Perl history).
    fn adopt_first_meter(&mut self, id: &str) {
        let path = self.config.dir.join(FIRST_METER_FILE);
        if let Err(e) = fs::write(&path, format!("{id}\n")) {
            warn!("cannot write {}: {e}", path.display());
        }
        self.first_meter = Some(id.to_owned());
        if let Some(mut top) = self.meters.remove(UNKNOWN_METER) {
            top.id = Some(id.to_owned());
            self.meters.insert(id.to_owned(), top);
        }
    }

    /// Every meter's discovery configs, for a new connection or Home Assistant's restart.
    pub fn announce_all(&mut self) -> Vec<Message> {
        let mut out = Vec::new();
        for (id, meter) in &mut self.meters {
            if id != UNKNOWN_METER && meter.has_periods() {
                out.extend(meter.announce(id, &self.config.currency, &self.discovery));
            }
        }
        out
    }

    /// Rebuilds the pages of the days whose log changed, and the indexes that need it.
    pub fn rebuild_pages(&mut self, now: Timestamp) {
        let today = local_date(now, &self.tz);
        let top_assets = Assets::installed_or_online(self.assets_installed, "");
        let meter_assets = Assets::installed_or_online(self.assets_installed, "../");
        for meter in self.meters.values_mut() {
            let id = meter.id.clone();
            let settings = PageSettings {
                tz: &self.tz,
                prices: &self.config.prices,
                subscription_per_day: self.config.subscription_per_day,
                currency: &self.config.currency,
                meter: id.as_deref(),
                assets: if meter.place.up.is_empty() {
                    &top_assets
                } else {
                    &meter_assets
                },
            };
            meter.rebuild(today, &settings);
        }
    }

    /// How long until the next local midnight, when today's page becomes yesterday's.
    pub fn until_next_midnight(&self, now: Timestamp) -> Duration {
        let today = local_date(now, &self.tz);
        let next = today.tomorrow().map_or(now, |d| midnight(d, &self.tz));
        next.duration_since(now)
            .try_into()
            .unwrap_or(Duration::from_secs(60))
    }

    /// At shutdown, once every message received is filed: writes the lines still waiting
    /// (saying how many are lost if the disk still refuses them), saves the states of
    /// unfinished lines for the next start, and brings the pages up to date.
    pub fn close(&mut self, now: Timestamp) {
        for meter in self.meters.values_mut() {
            meter.write_unwritten();
            if meter.unwritten() > 0 {
                warn!(
                    "{} lines could not be written to {} and are lost",
                    meter.unwritten(),
                    meter.place.log_dir.display()
                );
            }
        }
        self.save_pending();
        self.rebuild_pages(now);
    }

    /// Saves the states of unfinished lines for the next start.
    fn save_pending(&self) {
        let mut text = String::new();
        for meter in self.meters.values() {
            for state in meter.aggregator.pending() {
                text.push_str(&state.payload.replace('\n', " "));
                text.push('\n');
            }
        }
        if text.is_empty() {
            return;
        }
        let path = self.config.dir.join(PENDING_FILE);
        if let Err(e) = write_atomic(&path, text.as_bytes()) {
            warn!("cannot save the unfinished line to {}: {e}", path.display());
        }
    }
}
