//! `linkymon logger`: the sidecar. It only speaks MQTT: `state` messages in; daily logs, graph
//! pages, the retained `today` message and its Home Assistant entities out.
//!
//! - **Nothing lost across restarts.** It subscribes to `<base>/+/state` at QoS 1 with a
//!   persistent session (fixed client id `linkymon-logger-<base>`, clean session off), so the
//!   broker keeps what comes while the logger is away (mosquitto keeps 1000 messages per client
//!   by default: `max_queued_messages` sets it). States of an unfinished line are saved in
//!   `<logger.dir>/.pending` at shutdown and taken up again at start; a crash can lose those
//!   (fewer than `frames_per_line`).
//! - **Where files go.** The first meter seen (written down in `<logger.dir>/.first_meter`) logs
//!   to `<logger.dir>/YYYY-MM-DD.log` and gets its pages in `<logger.pages_dir>/`; any other
//!   meter on the broker logs to `<logger.dir>/<id>/` and gets pages in `<pages_dir>/<id>/`, so
//!   two meters never share a file. `logger.meter` logs that one meter only, at the top level.
//! - **Lines.** Each line is appended and handed to the system at once (no fsync: an SD card
//!   would wear for nothing); files are never rewritten.
//! - **Pages.** A day's page is rebuilt when its log got lines, at most every
//!   `logger.pages_interval` and at local midnight; pages whose log is newer than the page are
//!   rebuilt at start. The index is rebuilt when a day is added or a past day changes, so it is
//!   not rewritten every few minutes for today's figures (today's row says "so far"). Writes
//!   go through a temporary file and a rename.
//!
//! What is logged and how is decided in [`crate::sidecar`]; this file moves bytes.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Context;
use jiff::civil::Date;
use jiff::tz::TimeZone;
use rumqttc::{AsyncClient, Event, MqttOptions, Packet, QoS};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

use super::graph::{
    DEBIAN_DYGRAPHS, PageSettings, assets_for, date_of_file, install_assets, read_log, render_day,
    warn_online_assets, write_atomic,
};
use crate::config::{Config, LoggerConfig};
use crate::publish::Message;
use crate::publish::discovery::{self, Contract};
use crate::publish::topics::Topics;
use crate::sidecar::day::{self, DayReport, midnight};
use crate::sidecar::pages::{self, IndexRow, Nav, PageContext, read_day_meta};
use crate::sidecar::window::local_date;
use crate::sidecar::{Aggregator, LogLine, State};
use crate::source::Backoff;
use crate::tic::Mode;

/// The file that remembers which meter owns the top-level logs.
const FIRST_METER_FILE: &str = ".first_meter";

/// The file that holds the states of unfinished lines between a stop and a start.
const PENDING_FILE: &str = ".pending";

/// The logger's MQTT client id: fixed, so the broker keeps its session between runs.
pub fn client_id(base_topic: &str) -> String {
    format!("linkymon-logger-{}", base_topic.replace('/', "-"))
}

/// Runs the logger until `shutdown` fires.
pub async fn run(config: Config, shutdown: CancellationToken) -> anyhow::Result<()> {
    let mut logger = Logger::open(&config)?;
    let restored = logger.restore_pending()?;
    logger.rebuild_pages(jiff::Timestamp::now());

    let m = &config.mqtt;
    let mut options = MqttOptions::new(client_id(&m.base_topic), m.host.clone(), m.port);
    options.set_keep_alive(Duration::from_secs(30));
    options.set_clean_session(false);
    options.set_max_packet_size(256 * 1024, 64 * 1024);
    if let Some(user) = &m.username {
        let password = m.password.as_ref().map(|p| p.expose().to_owned());
        options.set_credentials(user.clone(), password.unwrap_or_default());
    }
    let (client, eventloop) = AsyncClient::new(options, 1024);
    let (events_tx, mut events) = mpsc::channel(256);
    let broker = format!("{}:{}", m.host, m.port);
    let poller = tokio::spawn(poll(eventloop, events_tx, broker));
    send(&client, restored);

    let state_topic = format!("{}/+/state", m.base_topic);
    let status_topic = format!("{}/status", m.discovery_prefix);
    let mut pages_tick =
        tokio::time::interval(config.logger.pages_interval.max(Duration::from_secs(1)));
    pages_tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    pages_tick.reset();
    loop {
        let until_midnight = logger.until_next_midnight(jiff::Timestamp::now());
        tokio::select! {
            event = events.recv() => match event {
                Some(LinkEvent::Connected) => {
                    for (topic, qos) in [(&state_topic, QoS::AtLeastOnce), (&status_topic, QoS::AtLeastOnce)] {
                        if let Err(e) = client.try_subscribe(topic.clone(), qos) {
                            warn!("cannot subscribe to {topic}: {e}");
                        }
                    }
                    if m.discovery {
                        send(&client, logger.announce_all());
                    }
                }
                Some(LinkEvent::Message(topic, payload)) => {
                    if topic == status_topic {
                        if payload == "online" && m.discovery {
                            send(&client, logger.announce_all());
                        }
                    } else {
                        let messages = logger.on_state(&payload);
                        send(&client, messages);
                    }
                }
                None => break,
            },
            _ = pages_tick.tick() => logger.rebuild_pages(jiff::Timestamp::now()),
            () = tokio::time::sleep(until_midnight) => {
                // A little past midnight, so that "today" is already the new day.
                tokio::time::sleep(Duration::from_millis(500)).await;
                logger.rebuild_pages(jiff::Timestamp::now());
            }
            () = shutdown.cancelled() => break,
        }
    }
    // Messages already received (and acknowledged) are logged before the unfinished line is
    // saved: the broker will not send them again.
    let _ = client.try_disconnect();
    let drain = async {
        while let Some(event) = events.recv().await {
            if let LinkEvent::Message(topic, payload) = event
                && topic != status_topic
            {
                logger.on_state(&payload);
            }
        }
    };
    if tokio::time::timeout(Duration::from_secs(3), drain)
        .await
        .is_err()
    {
        warn!("the broker did not see the logger's disconnect within 3 s");
    }
    for meter in logger.meters.values_mut() {
        meter.write_unwritten();
        if !meter.unwritten.is_empty() {
            warn!(
                "{} lines could not be written to {} and are lost",
                meter.unwritten.len(),
                meter.log_dir.display()
            );
        }
    }
    logger.save_pending();
    logger.rebuild_pages(jiff::Timestamp::now());
    poller.abort(); // already over, unless the broker was unreachable
    Ok(())
}

fn send(client: &AsyncClient, messages: Vec<Message>) {
    for m in messages {
        let qos = if m.qos == 0 {
            QoS::AtMostOnce
        } else {
            QoS::AtLeastOnce
        };
        if let Err(e) = client.try_publish(m.topic.clone(), qos, m.retain, m.payload) {
            warn!("cannot queue {}: {e}", m.topic);
        }
    }
}

enum LinkEvent {
    Connected,
    Message(String, String),
}

/// Drives the connection, with our own backoff (rumqttc's `poll` retries at once).
///
/// Around our DISCONNECT, each message is logged exactly once: rumqttc acknowledges a message
/// as it reads it, in the same byte stream as the DISCONNECT. What was read before the
/// DISCONNECT went out is acknowledged, so it is forwarded (and logged before the logger
/// stops); what arrives after it can no longer be acknowledged, so the broker sends it again
/// to the next session, and it is dropped here rather than logged twice.
async fn poll(mut eventloop: rumqttc::EventLoop, events: mpsc::Sender<LinkEvent>, broker: String) {
    let mut backoff = Backoff::default();
    let mut down_logged = false;
    let mut closing: Option<tokio::time::Instant> = None;
    loop {
        let event = match closing {
            Some(deadline) => match tokio::time::timeout_at(deadline, eventloop.poll()).await {
                Ok(Ok(event)) => event,
                Ok(Err(_)) | Err(_) => return,
            },
            None => match eventloop.poll().await {
                Ok(event) => event,
                Err(e) => {
                    if !down_logged {
                        warn!(%broker, error = %e, "MQTT broker unreachable; retrying with backoff");
                        down_logged = true;
                    }
                    tokio::time::sleep(backoff.next_delay()).await;
                    continue;
                }
            },
        };
        match event {
            Event::Incoming(Packet::ConnAck(ack)) => {
                backoff.reset();
                info!(%broker, session_present = ack.session_present, "connected to the MQTT broker");
                down_logged = false;
                if events.send(LinkEvent::Connected).await.is_err() {
                    return;
                }
            }
            Event::Incoming(Packet::Publish(p)) if closing.is_none() => {
                let payload = String::from_utf8_lossy(&p.payload).into_owned();
                if events
                    .send(LinkEvent::Message(p.topic, payload))
                    .await
                    .is_err()
                {
                    return;
                }
            }
            Event::Outgoing(rumqttc::Outgoing::Disconnect) => {
                closing = Some(tokio::time::Instant::now() + Duration::from_secs(1));
            }
            _ => {}
        }
    }
}

/// Everything the logger keeps between messages.
struct Logger {
    config: LoggerConfig,
    tz: TimeZone,
    base_topic: String,
    discovery: discovery::Context,
    assets_local: bool,
    first_meter: Option<String>,
    meters: BTreeMap<String, MeterLog>,
    refused_warned: bool,
}

/// One meter's files, open line and today's figures.
struct MeterLog {
    id: Option<String>,
    log_dir: PathBuf,
    pages_dir: PathBuf,
    /// From the meter's pages to the pages root, where `assets/` is.
    up: &'static str,
    aggregator: Aggregator,
    today: Option<Today>,
    /// Days whose log changed since their page was written.
    dirty: BTreeSet<Date>,
    rows: BTreeMap<Date, IndexRow>,
    index_dirty: bool,
    /// What discovery needs: the last state's mode and contract, and the periods seen.
    device: Option<(Mode, Contract)>,
    periods: BTreeSet<String>,
    announced: BTreeSet<String>,
    /// Lines the disk refused (full, or the directory unwritable), oldest first: written
    /// before any newer one as soon as it works again. Bounded by [`MAX_UNWRITTEN`].
    unwritten: std::collections::VecDeque<(Date, LogLine)>,
    write_failed: bool,
}

/// Lines kept in memory while the log directory refuses them: a day and more of lines at
/// the default 8 frames per line, about 1.5 MB.
const MAX_UNWRITTEN: usize = 10_000;

/// The lines of the newest day, kept to compute the `today` message after each line.
struct Today {
    date: Date,
    lines: Vec<LogLine>,
    previous: Option<LogLine>,
}

impl Logger {
    fn open(config: &Config) -> anyhow::Result<Logger> {
        let c = &config.logger;
        let tz = c.time_zone()?;
        fs::create_dir_all(&c.dir).with_context(|| {
            format!(
                "cannot create the log directory {} (logger.dir): check it is writable",
                c.dir.display()
            )
        })?;
        let probe = c.dir.join(".write-test");
        fs::write(&probe, b"")
            .and_then(|()| fs::remove_file(&probe))
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
        let assets_local =
            install_assets(&c.pages_dir, Path::new(DEBIAN_DYGRAPHS)).with_context(|| {
                format!("cannot copy dygraphs into {}/assets", c.pages_dir.display())
            })?;
        if !assets_local {
            warn_online_assets();
        }
        let first_meter = c.meter.clone().or_else(|| {
            fs::read_to_string(c.dir.join(FIRST_METER_FILE))
                .ok()
                .map(|s| s.trim().to_owned())
                .filter(|s| !s.is_empty())
        });
        let mut logger = Logger {
            config: c.clone(),
            tz,
            base_topic: config.mqtt.base_topic.clone(),
            discovery: discovery::Context::new(
                &config.mqtt.base_topic,
                &config.mqtt.discovery_prefix,
            ),
            assets_local,
            first_meter,
            meters: BTreeMap::new(),
            refused_warned: false,
        };
        logger.discover_existing_logs();
        Ok(logger)
    }

    /// Finds the logs already on disk (ours or copied from the Perl tool), so their pages and
    /// the index are there from the start.
    fn discover_existing_logs(&mut self) {
        let top = self.first_meter.clone();
        let mut dirs = vec![(
            top,
            self.config.dir.clone(),
            self.config.pages_dir.clone(),
            "",
        )];
        if self.config.meter.is_none()
            && let Ok(entries) = fs::read_dir(&self.config.dir)
        {
            for entry in entries.flatten() {
                let name = entry.file_name().to_string_lossy().into_owned();
                if entry.path().is_dir() && !name.starts_with('.') {
                    dirs.push((
                        Some(name.clone()),
                        entry.path(),
                        self.config.pages_dir.join(&name),
                        "../",
                    ));
                }
            }
        }
        for (id, log_dir, pages_dir, up) in dirs {
            let mut meter =
                MeterLog::new(id.clone(), log_dir, pages_dir, up, &self.config, &self.tz);
            for (date, log) in meter.logs() {
                let page = meter.pages_dir.join(pages::page_name(date));
                let page_mtime = fs::metadata(&page).and_then(|m| m.modified()).ok();
                let log_mtime = fs::metadata(&log).and_then(|m| m.modified()).ok();
                let row = page_mtime
                    .is_some_and(|p| log_mtime.is_some_and(|l| p >= l))
                    .then(|| fs::read_to_string(&page).ok())
                    .flatten()
                    .and_then(|html| read_day_meta(&html));
                match row {
                    Some(row) => {
                        meter.rows.insert(date, row);
                    }
                    None => {
                        meter.dirty.insert(date);
                    }
                }
            }
            if meter.rows.is_empty() && meter.dirty.is_empty() {
                continue;
            }
            meter.index_dirty = true;
            let key = id.unwrap_or_default();
            self.meters.insert(key, meter);
        }
    }

    /// Takes up the states saved at the last stop.
    fn restore_pending(&mut self) -> anyhow::Result<Vec<Message>> {
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

    /// Saves the states of unfinished lines for the next start.
    fn save_pending(&self) {
        let mut text = String::new();
        for meter in self.meters.values() {
            for state in meter.aggregator.pending() {
                text.push_str(&state.payload.replace('\n', " "));
                text.push('\n');
            }
        }
        let path = self.config.dir.join(PENDING_FILE);
        if text.is_empty() {
            return;
        }
        if let Err(e) = write_atomic(&path, text.as_bytes()) {
            warn!("cannot save the unfinished line to {}: {e}", path.display());
        }
    }

    /// One `state` message: files it, writes the lines it completes, and returns what to
    /// publish (`today`, discovery for a new period).
    fn on_state(&mut self, payload: &str) -> Vec<Message> {
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
            let path = self.config.dir.join(FIRST_METER_FILE);
            if let Err(e) = fs::write(&path, format!("{id}\n")) {
                warn!("cannot write {}: {e}", path.display());
            }
            self.first_meter = Some(id.clone());
            // Logs that were already at the top level (a Perl history) are this meter's.
            if let Some(mut top) = self.meters.remove("") {
                top.id = Some(id.clone());
                self.meters.insert(id.clone(), top);
            }
        }
        if !self.meters.contains_key(&id) {
            let top = self.first_meter.as_deref() == Some(id.as_str());
            let (log_dir, pages_dir, up) = if top {
                (self.config.dir.clone(), self.config.pages_dir.clone(), "")
            } else {
                (
                    self.config.dir.join(&id),
                    self.config.pages_dir.join(&id),
                    "../",
                )
            };
            let meter = MeterLog::new(
                Some(id.clone()),
                log_dir,
                pages_dir,
                up,
                &self.config,
                &self.tz,
            );
            self.meters.insert(id.clone(), meter);
        }
        let Some(meter) = self.meters.get_mut(&id) else {
            return Vec::new();
        };
        meter.device = Some((state.mode, state.contract));
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
                let new: Vec<String> = today
                    .energy_wh
                    .keys()
                    .filter(|p| !meter.periods.contains(*p))
                    .cloned()
                    .collect();
                meter.periods.extend(new);
            }
        }
        if meter.periods != meter.announced {
            out.extend(meter.announce(&id, &self.config.currency, &self.discovery));
        }
        out
    }

    /// Every meter's discovery configs, for a new connection or Home Assistant's restart.
    fn announce_all(&mut self) -> Vec<Message> {
        let mut out = Vec::new();
        for (id, meter) in &mut self.meters {
            if !id.is_empty() && !meter.periods.is_empty() {
                out.extend(meter.announce(id, &self.config.currency, &self.discovery));
            }
        }
        out
    }

    /// Rebuilds the pages of the days whose log changed, and the indexes that need it.
    fn rebuild_pages(&mut self, now: jiff::Timestamp) {
        let today = local_date(now, &self.tz);
        let settings_assets: BTreeMap<&'static str, pages::Assets> = ["", "../"]
            .into_iter()
            .map(|up| (up, assets_for(self.assets_local, up)))
            .collect();
        for meter in self.meters.values_mut() {
            let assets = &settings_assets[meter.up];
            let id = meter.id.clone();
            let settings = PageSettings {
                tz: &self.tz,
                prices: &self.config.prices,
                subscription_per_day: self.config.subscription_per_day,
                currency: &self.config.currency,
                meter: id.as_deref(),
                assets,
            };
            meter.rebuild(today, &settings);
        }
    }

    fn until_next_midnight(&self, now: jiff::Timestamp) -> Duration {
        let today = local_date(now, &self.tz);
        let next = today.tomorrow().map_or(now, |d| midnight(d, &self.tz));
        next.duration_since(now)
            .try_into()
            .unwrap_or(Duration::from_secs(60))
    }
}

impl MeterLog {
    fn new(
        id: Option<String>,
        log_dir: PathBuf,
        pages_dir: PathBuf,
        up: &'static str,
        config: &LoggerConfig,
        tz: &TimeZone,
    ) -> Self {
        MeterLog {
            id,
            log_dir,
            pages_dir,
            up,
            aggregator: Aggregator::new(config.frames_per_line, tz.clone()),
            today: None,
            dirty: BTreeSet::new(),
            rows: BTreeMap::new(),
            index_dirty: false,
            device: None,
            periods: BTreeSet::new(),
            announced: BTreeSet::new(),
            unwritten: std::collections::VecDeque::new(),
            write_failed: false,
        }
    }

    fn log_path(&self, date: Date) -> PathBuf {
        self.log_dir.join(format!("{date}.log"))
    }

    /// The daily logs in this meter's directory, by day.
    fn logs(&self) -> BTreeMap<Date, PathBuf> {
        let Ok(entries) = fs::read_dir(&self.log_dir) else {
            return BTreeMap::new();
        };
        entries
            .flatten()
            .map(|e| e.path())
            .filter(|p| p.extension().is_some_and(|e| e == "log"))
            .filter_map(|p| date_of_file(&p).map(|d| (d, p)))
            .collect()
    }

    /// Appends one line; the file is created with its day's first line.
    fn append(&mut self, date: Date, line: &LogLine) {
        if self.unwritten.len() == MAX_UNWRITTEN {
            self.unwritten.pop_front();
            warn!("{MAX_UNWRITTEN} lines wait for the log directory: the oldest is dropped");
        }
        self.unwritten.push_back((date, line.clone()));
        self.write_unwritten();
    }

    /// Writes the waiting lines in order, stopping at the first refusal (said once).
    fn write_unwritten(&mut self) {
        while let Some((date, line)) = self.unwritten.front() {
            let (date, path) = (*date, self.log_path(*date));
            match append_line(&self.log_dir, &path, line) {
                Ok(()) => {
                    self.unwritten.pop_front();
                    self.dirty.insert(date);
                }
                Err(e) => {
                    if !self.write_failed {
                        warn!(
                            "cannot append to {}: {e}; lines wait in memory (up to \
                             {MAX_UNWRITTEN}) and are written as soon as it works again",
                            path.display()
                        );
                        self.write_failed = true;
                    }
                    return;
                }
            }
        }
        if self.write_failed {
            info!("writing to {} works again", self.log_dir.display());
            self.write_failed = false;
        }
    }

    /// Keeps the newest day's lines; returns its report when the line is the newest day's.
    fn note_line(&mut self, date: Date, line: LogLine, tz: &TimeZone) -> Option<DayReport> {
        match &mut self.today {
            Some(t) if t.date == date => t.lines.push(line),
            Some(t) if t.date > date => return None, // a late line for a past day
            _ => {
                // A new day (or the first line since start): what the file already has counts.
                let lines = read_log(&self.log_path(date))
                    .map(|r| r.lines)
                    .unwrap_or_else(|_| vec![line]);
                let previous = date
                    .yesterday()
                    .ok()
                    .and_then(|d| read_log(&self.log_path(d)).ok())
                    .and_then(|r| r.lines.into_iter().max_by_key(|l| l.time));
                self.today = Some(Today {
                    date,
                    lines,
                    previous,
                });
            }
        }
        let t = self.today.as_ref()?;
        let mut report = DayReport::from_lines(t.date, &t.lines, tz)?;
        if let Some(previous) = &t.previous {
            report.link_previous(previous, tz);
        }
        Some(report)
    }

    fn announce(&mut self, id: &str, currency: &str, ctx: &discovery::Context) -> Vec<Message> {
        let Some((mode, contract)) = self.device else {
            return Vec::new();
        };
        self.announced = self.periods.clone();
        discovery::today_config_messages(id, mode, &contract, &self.periods, currency, ctx)
    }

    /// Writes the pages of the dirty days, then the index if a day was added or a past day
    /// changed.
    fn rebuild(&mut self, today: Date, settings: &PageSettings) {
        if self.dirty.is_empty() && !self.index_dirty {
            return;
        }
        if let Err(e) = fs::create_dir_all(&self.pages_dir) {
            warn!("cannot create {}: {e}", self.pages_dir.display());
            return;
        }
        let logs = self.logs();
        for date in std::mem::take(&mut self.dirty) {
            let Ok(read) = read_log(&self.log_path(date)) else {
                continue;
            };
            let Some(mut report) = DayReport::from_lines(date, &read.lines, settings.tz) else {
                continue;
            };
            let yesterday = date.yesterday().ok();
            if let Some(previous) = yesterday
                .and_then(|d| logs.get(&d))
                .and_then(|p| read_log(p).ok())
                .and_then(|r| r.lines.into_iter().max_by_key(|l| l.time))
            {
                report.link_previous(&previous, settings.tz);
            }
            let nav = Nav {
                previous: logs.range(..date).next_back().map(|(d, _)| *d),
                next: logs
                    .range(date.tomorrow().unwrap_or(date)..)
                    .next()
                    .map(|(d, _)| *d)
                    .or_else(|| (date < today).then(|| date.tomorrow().ok()).flatten()),
            };
            let (html, row) = render_day(&report, &nav, settings);
            let path = self.pages_dir.join(pages::page_name(date));
            if let Err(e) = write_atomic(&path, html.as_bytes()) {
                warn!("cannot write {}: {e}", path.display());
                continue;
            }
            let added = self.rows.insert(date, row).is_none();
            if added || date < today {
                self.index_dirty = true;
            }
        }
        if self.index_dirty {
            let rows: Vec<IndexRow> = self
                .rows
                .values()
                .map(|r| IndexRow {
                    in_progress: r.date >= today,
                    ..r.clone()
                })
                .collect();
            let ctx = PageContext {
                meter: settings.meter,
                currency: settings.currency,
                assets: settings.assets,
            };
            let path = self.pages_dir.join("index.html");
            match write_atomic(&path, pages::index_page(&rows, &ctx).as_bytes()) {
                Ok(()) => self.index_dirty = false,
                Err(e) => warn!("cannot write {}: {e}", path.display()),
            }
        }
    }
}

/// Appends one line to a daily log. A write the disk cuts short (full) is taken back, so
/// the log never holds half a line.
fn append_line(dir: &Path, path: &Path, line: &LogLine) -> std::io::Result<()> {
    fs::create_dir_all(dir)?;
    let mut file = fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)?;
    let len = file.metadata()?.len();
    let written = file.write_all(format!("{line}\n").as_bytes());
    if written.is_err() {
        let _ = file.set_len(len);
    }
    written
}
