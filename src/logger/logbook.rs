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
use super::checks::{self, MAX_STATE_BYTES, Refusal, SeenSeqs, Tally, Verdict};
use super::day::{self, midnight};
use super::disk::{DEBIAN_DYGRAPHS, install_assets, warn_online_assets};
use super::meter_log::{MeterLog, Place};
use super::pages::{Assets, PageSettings};
use super::window::local_date;
use crate::config::{Config, LoggerConfig};
use crate::files::write_atomic;
use crate::prices::Prices;
use crate::publish::Message;
use crate::publish::discovery;
use crate::publish::topics::Topics;

/// The file that remembers which meter owns the top-level logs.
const FIRST_METER_FILE: &str = ".first_meter";

/// The file that holds the states of unfinished lines between a stop and a start.
const PENDING_FILE: &str = ".pending";

/// The file that holds, per meter, the `seq` numbers already filed (see [`SeenSeqs`]).
const SEQ_FILE: &str = ".seq";

/// The most power a meter lets through when its state does not say (the daemon's default).
const DEFAULT_MAX_POWER_W: f64 = 36_000.0;

/// The key of the logs found at the top level before any meter was seen.
const UNKNOWN_METER: &str = "";

/// Everything the logger keeps between messages.
#[derive(Debug)]
pub struct Logbook {
    config: LoggerConfig,
    /// `prices:`, for `today` and the pages.
    prices: Prices,
    tz: TimeZone,
    base_topic: String,
    discovery: discovery::Context,
    /// Whether dygraphs is installed next to the pages.
    assets_installed: bool,
    first_meter: Option<String>,
    meters: BTreeMap<String, MeterLog>,
    /// What was refused, by class.
    tally: Tally,
    /// Whether `.seq` is behind what is in memory.
    seqs_dirty: bool,
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
            prices: Prices::new(&config.prices),
            tz,
            base_topic: config.mqtt.base_topic.clone(),
            discovery: discovery::Context::new(
                &config.mqtt.base_topic,
                &config.mqtt.discovery_prefix,
            ),
            assets_installed,
            first_meter,
            meters: BTreeMap::new(),
            tally: Tally::default(),
            seqs_dirty: false,
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
            // Only directories named like a meter, and no more than the logger follows:
            // directories a forged id made before this check are left alone.
            let mut names: Vec<String> = entries
                .flatten()
                .filter(|e| e.path().is_dir())
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .filter(|name| checks::is_meter_id(name))
                .collect();
            names.sort();
            names.truncate(self.config.max_meters.saturating_sub(1));
            for name in names {
                let place = self.meter_place(&name);
                found.push((Some(name), place));
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
        if let Ok(text) = fs::read_to_string(&path) {
            let mut count = 0;
            for payload in text.lines().filter(|l| !l.is_empty()) {
                self.on_state(payload);
                count += 1;
            }
            fs::remove_file(&path).with_context(|| format!("cannot remove {}", path.display()))?;
            info!("took up {count} states of unfinished lines from the last run");
        }
        self.load_seqs();
        Ok(self.take_today())
    }

    /// Takes up the `seq` numbers filed before the last stop (after the unfinished lines,
    /// whose states were filed then too).
    fn load_seqs(&mut self) {
        let Ok(text) = fs::read_to_string(self.config.dir.join(SEQ_FILE)) else {
            return;
        };
        for line in text.lines().take(self.config.max_meters) {
            let mut parts = line.split(' ');
            let (Some(id), Some(newest), Some(seen)) = (parts.next(), parts.next(), parts.next())
            else {
                continue;
            };
            let (Ok(newest), Some(seen)) = (newest.parse::<Timestamp>(), SeenSeqs::from_text(seen))
            else {
                continue;
            };
            if !checks::is_meter_id(id) {
                continue;
            }
            let meter = self.meter_entry(id);
            meter.seen = seen;
            meter.newest = meter.newest.max(Some(newest));
        }
    }

    /// Writes `.seq` when seq numbers were filed since it was last written.
    pub fn save_seqs(&mut self) {
        if !self.seqs_dirty {
            return;
        }
        let mut text = String::new();
        for (id, meter) in &self.meters {
            if let Some(newest) = meter.newest
                && meter.seen.highest().is_some()
            {
                text.push_str(&format!("{id} {newest} {}\n", meter.seen.to_text()));
            }
        }
        let path = self.config.dir.join(SEQ_FILE);
        match write_atomic(&path, text.as_bytes()) {
            Ok(()) => self.seqs_dirty = false,
            Err(e) => warn!("cannot write {}: {e}", path.display()),
        }
    }

    /// The meter `id`'s share, made when it is new.
    fn meter_entry(&mut self, id: &str) -> &mut MeterLog {
        if !self.meters.contains_key(id) {
            let place = if self.first_meter.as_deref() == Some(id) {
                self.top_place()
            } else {
                self.meter_place(id)
            };
            let meter = MeterLog::new(Some(id.to_owned()), place, &self.config, &self.tz);
            self.meters.insert(id.to_owned(), meter);
        }
        self.meters.get_mut(id).expect("inserted above")
    }

    /// The meters followed (not counting the logs of an unknown meter).
    fn followed(&self) -> usize {
        self.meters.keys().filter(|k| *k != UNKNOWN_METER).count()
    }

    /// What was refused so far, by class.
    pub fn tally(&self) -> &Tally {
        &self.tally
    }

    /// Counts a message dropped unread for its size.
    pub fn oversized(&mut self, topic: &str, bytes: usize) {
        let topic: String = topic.chars().take(80).collect();
        let why = format!("{bytes} bytes on {topic:?}, more than {MAX_STATE_BYTES}");
        self.tally.count(Refusal::Oversized, &why);
    }

    /// One line summing up the refusals, when some came since the last summary.
    pub fn refusal_summary(&mut self) -> Option<String> {
        self.tally.summary()
    }

    /// One `state` message, by the logger's clock: see [`Logbook::on_state_at`].
    pub fn on_state(&mut self, payload: &str) {
        self.on_state_at(payload, Timestamp::now());
    }

    /// One `state` message: checks it (see [`super::checks`]; a refusal is counted and said
    /// once per class), files it and writes the lines it completes. Its `today` message waits
    /// for [`Logbook::take_today`], so a burst sends one, not one per line.
    pub fn on_state_at(&mut self, payload: &str, now: Timestamp) {
        if payload.len() > MAX_STATE_BYTES {
            let why = format!("{} bytes, more than {MAX_STATE_BYTES}", payload.len());
            self.tally.count(Refusal::Oversized, &why);
            return;
        }
        let state = match State::parse(payload) {
            Ok(s) => s,
            Err(e) => {
                self.tally.count(e.refusal(), &e);
                return;
            }
        };
        if !checks::in_time(state.ts, now) {
            let why = format!("ts {} is before 2010 or more than a day ahead", state.ts);
            self.tally.count(Refusal::OutOfTime, &why);
            return;
        }
        if self
            .config
            .meter
            .as_ref()
            .is_some_and(|m| *m != state.meter)
        {
            return;
        }
        let id = state.meter.clone();
        if !self.meters.contains_key(&id) && self.followed() >= self.config.max_meters {
            let why = format!(
                "meter {id} would be meter number {} (logger.max_meters: {})",
                self.followed() + 1,
                self.config.max_meters
            );
            self.tally.count(Refusal::TooManyMeters, &why);
            return;
        }
        if self.first_meter.is_none() {
            self.adopt_first_meter(&id);
        }
        self.meter_entry(&id);
        let Some(meter) = self.meters.get_mut(&id) else {
            return;
        };
        if let Some(seq) = state.seq
            && meter.seen.contains(seq)
            && meter.newest.is_none_or(|n| state.ts <= n)
        {
            let why = format!("meter {id} seq {seq} was filed already");
            self.tally.count(Refusal::Duplicate, &why);
            return;
        }
        let mut indexes = state.indexes.clone();
        indexes.extend(
            state
                .registers
                .iter()
                .map(|(n, v)| (format!("EASF{n:02}"), *v)),
        );
        indexes.extend(state.injected_index.map(|v| ("EAIT".to_owned(), v)));
        let max_power_w = state.max_power_w.unwrap_or(DEFAULT_MAX_POWER_W);
        let tz = &self.tz;
        // The price now, from the state's period and local day; noted once the state is filed.
        let price = (!self.prices.is_empty()).then(|| {
            let date = local_date(state.ts, tz);
            let price = (state.period_code.as_deref()).and_then(|p| self.prices.kwh_price(date, p));
            (state.ts, price)
        });
        let mut outliers = Vec::new();
        let filed = match meter
            .sanity
            .check(&indexes, state.ts.as_second(), max_power_w)
        {
            Verdict::Accept => {
                outliers = std::mem::take(&mut meter.held);
                meter.file(state, tz);
                true
            }
            Verdict::Hold { restart } => {
                if restart {
                    outliers = std::mem::take(&mut meter.held);
                }
                meter.held.push(state); // filed if the next states confirm it
                false
            }
            Verdict::Release => {
                for held in std::mem::take(&mut meter.held) {
                    meter.file(held, tz);
                }
                meter.file(state, tz);
                true
            }
        };
        if let (true, Some((ts, price))) = (filed, price) {
            meter.price.note(ts, price);
        }
        self.seqs_dirty = true;
        for outlier in outliers {
            let why = format!(
                "meter {id}: an index of the state of {} goes back or grows faster than the \
                 contract allows, and the next states did not confirm it",
                outlier.ts
            );
            self.tally.count(Refusal::Implausible, &why);
        }
    }

    /// The `price` of the meters whose price changed, the `today` and `month` (when it
    /// changed) messages of the meters that got lines since the last call, and the
    /// discovery configs of periods seen for the first time. The day's figures are kept up
    /// to date as lines come (constant work per line); the caller calls this at most once a
    /// second, so a burst sends one message a second, not one per line.
    pub fn take_today(&mut self) -> Vec<Message> {
        let mut out = Vec::new();
        for (id, meter) in &mut self.meters {
            let topics = Topics::new(&self.base_topic, id);
            if let Some(price) = meter.price.take_change() {
                out.push(Message::new(topics.leaf("price"), price, true, 1));
            }
            let Some(today) = meter.take_today() else {
                continue;
            };
            let (date, energy_wh) = (today.date(), today.energy_wh().clone());
            let costs = self.prices.cost(date, &energy_wh);
            let payload = day::today_json(
                date,
                &energy_wh,
                today.injected_wh(),
                &costs,
                self.prices.currency(),
            );
            out.push(Message::new(topics.leaf("today"), payload, true, 1));
            if let Some(month) = meter.take_month(date, &energy_wh, &self.prices, &self.tz) {
                out.push(Message::new(topics.leaf("month"), month, true, 1));
            }
            if meter.has_new_periods() {
                out.extend(meter.announce(id, &self.prices, &self.discovery));
            }
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
                out.extend(meter.announce(id, &self.prices, &self.discovery));
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
                prices: &self.prices,
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
        self.save_seqs();
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

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: &str = "2026-01-01T12:00:00Z";

    fn logbook(dir: &Path) -> Logbook {
        let mut config = Config::default();
        config.logger.dir = dir.join("logs");
        config.logger.pages_dir = dir.join("pages");
        config.logger.frames_per_line = 1;
        Logbook::open(&config).unwrap()
    }

    fn state(meter: &str, second: u32, seq: Option<u64>, base: u64) -> String {
        let seq = seq.map(|s| format!(r#""seq":{s},"#)).unwrap_or_default();
        format!(
            r#"{{"ts":"2026-01-01T10:00:{second:02}+01:00","meter":"{meter}",{seq}"mode":"historic",
               "values":{{"OPTARIF":"BASE","ISOUSC":30,"BASE":{base},"PTEC":"TH..","PAPP":500,"IINST":2}},
               "derived":{{"injection_w":0,"consumption_va":500,"period":"BASE"}}}}"#
        )
        .replace('\n', " ")
    }

    fn lines(dir: &Path) -> Vec<String> {
        fs::read_to_string(dir.join("logs/2026-01-01.log"))
            .unwrap_or_default()
            .lines()
            .map(str::to_owned)
            .collect()
    }

    const ID: &str = "021728123456";

    #[test]
    fn a_state_sent_again_is_filed_once_even_after_a_restart_and_late_ones_still_pass() {
        let temp = tempfile::tempdir().unwrap();
        let dir = temp.path();
        let now = NOW.parse().unwrap();
        let mut book = logbook(dir);
        book.on_state_at(&state(ID, 10, Some(7), 1000), now);
        book.on_state_at(&state(ID, 10, Some(7), 1000), now);
        // Live reading 9, then the spool's 8 (older) arrives: both filed.
        book.on_state_at(&state(ID, 30, Some(9), 1003), now);
        book.on_state_at(&state(ID, 20, Some(8), 1001), now);
        assert_eq!(lines(dir).len(), 3, "{:#?}", lines(dir));
        assert_eq!(book.tally().get(Refusal::Duplicate), 1);
        book.close(now);
        let mut book = logbook(dir);
        book.restore_pending().unwrap();
        book.on_state_at(&state(ID, 20, Some(8), 1001), now);
        book.on_state_at(&state(ID, 40, Some(10), 1004), now);
        assert_eq!(lines(dir).len(), 4, "{:#?}", lines(dir));
        assert_eq!(book.tally().get(Refusal::Duplicate), 1);
        // Without seq (an older daemon): filed as it comes.
        book.on_state_at(&state(ID, 50, None, 1005), now);
        book.on_state_at(&state(ID, 50, None, 1005), now);
        assert_eq!(lines(dir).len(), 6);
    }

    #[test]
    fn forged_ids_beyond_max_meters_make_no_files_and_are_counted() {
        let temp = tempfile::tempdir().unwrap();
        let dir = temp.path();
        let now = NOW.parse().unwrap();
        let mut book = logbook(dir);
        for i in 0..1000u64 {
            book.on_state_at(&state(&format!("{:012}", 100_000 + i), 1, None, 10), now);
        }
        book.on_state_at(&state(&"9".repeat(200_000), 1, None, 10), now);
        book.on_state_at(&state("../../etc", 1, None, 10), now);
        assert_eq!(book.followed(), 4);
        assert_eq!(book.tally().get(Refusal::TooManyMeters), 996);
        assert_eq!(book.tally().get(Refusal::Oversized), 1);
        assert_eq!(book.tally().get(Refusal::BadMeterId), 1);
        let dirs = fs::read_dir(dir.join("logs"))
            .unwrap()
            .flatten()
            .filter(|e| e.path().is_dir())
            .count();
        assert_eq!(dirs, 3, "the first meter logs at the top");
    }

    #[test]
    fn out_of_time_and_absurd_states_are_refused_and_today_stays_right() {
        let temp = tempfile::tempdir().unwrap();
        let dir = temp.path();
        let now = NOW.parse().unwrap();
        let mut book = logbook(dir);
        book.on_state_at(&state(ID, 1, None, 1000), now);
        let future = state(ID, 2, None, 1001).replace("2026-01-01T10", "9999-01-01T10");
        book.on_state_at(&future, now);
        let past = state(ID, 2, None, 1001).replace("2026-01-01T10", "2009-01-01T10");
        book.on_state_at(&past, now);
        assert_eq!(book.tally().get(Refusal::OutOfTime), 2);
        book.on_state_at(&state(ID, 3, None, 900_000_000), now);
        book.on_state_at(&state(ID, 4, None, 1002), now);
        assert_eq!(
            book.tally().get(Refusal::Implausible),
            1,
            "held, then shown an outlier"
        );
        let forged = state(ID, 5, None, 1003).replace(
            "TH..",
            "TH..\\n2026/01/01 10:00:06\\tDATA\\tPeriode=TH.., IndexBASE=999999999",
        );
        book.on_state_at(&forged, now);
        assert_eq!(book.tally().get(Refusal::BadField), 1);
        assert_eq!(lines(dir).len(), 2, "{:#?}", lines(dir));
        let today = book.take_today();
        assert!(
            today[0].payload.contains(r#""energy_wh":{"BASE":2}"#),
            "{today:?}"
        );
        assert!(
            book.take_today().is_empty(),
            "sent once until new lines come"
        );
    }
}
