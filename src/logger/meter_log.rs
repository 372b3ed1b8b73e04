//! One meter's share of the logger: its log and pages directories, the lines the disk has not
//! taken yet, today's figures, the days whose page is out of date, and what discovery has
//! announced for it.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::fs::{self, File};
use std::path::PathBuf;

use jiff::civil::Date;
use jiff::tz::TimeZone;
use tracing::{info, warn};

use super::State;
use super::checks::{IndexSanity, SeenSeqs};
use super::costs::{Month, PriceNow};
use super::day::DayReport;
use super::disk::{date_of_file, last_line, open_log, read_log, write_line};
use super::pages::{self, IndexRow, Nav, PageSettings};
use super::today::RunningDay;
use super::{Aggregator, LogLine};
use crate::config::LoggerConfig;
use crate::files::write_atomic;
use crate::prices::Prices;
use crate::publish::Message;
use crate::publish::discovery::{self, Contract};
use crate::tic::Mode;

/// Lines kept in memory while the log directory refuses them: a day and more of lines at
/// the default 8 frames per line, about 1.5 MB.
pub const MAX_UNWRITTEN: usize = 10_000;

/// Daily logs kept open per meter.
const OPEN_LOGS: usize = 2;

/// Where a meter's files go.
#[derive(Debug, Clone)]
pub struct Place {
    /// The directory of its daily logs.
    pub log_dir: PathBuf,
    /// The directory of its pages.
    pub pages_dir: PathBuf,
    /// From its pages to the pages root, where `assets/` is: `""` or `"../"`.
    pub up: &'static str,
}

impl Place {
    /// The daily log of `date`.
    fn log_path(&self, date: Date) -> PathBuf {
        self.log_dir.join(format!("{date}.log"))
    }

    /// The report of `date` from its log, counting from the day before's last line; `None`
    /// when the day has no readable line.
    fn day_report(&self, date: Date, tz: &TimeZone) -> Option<DayReport> {
        let read = read_log(&self.log_path(date)).ok()?;
        let mut report = DayReport::from_lines(date, &read.lines, tz)?;
        if let Some(previous) = date
            .yesterday()
            .ok()
            .and_then(|d| last_line(&self.log_path(d)))
        {
            report.link_previous(&previous, tz);
        }
        Some(report)
    }
}

/// A line the disk refused, waiting to be written.
#[derive(Debug, Clone)]
struct Unwritten {
    date: Date,
    line: LogLine,
}

/// What discovery needs to announce a meter's `today` entities: the last state's mode and
/// contract.
#[derive(Debug, Clone, Copy)]
struct Device {
    mode: Mode,
    contract: Contract,
}

/// The newest day's `today` figures, kept up to date line by line, and whether lines came
/// since the last `today` message.
#[derive(Debug)]
struct Today {
    day: RunningDay,
    due: bool,
}

/// One meter's files, open line and today's figures.
#[derive(Debug)]
pub struct MeterLog {
    /// The meter's id; `None` for logs found at the top level before any meter was seen.
    pub id: Option<String>,
    /// Where its files go.
    pub place: Place,
    /// Its states, gathered into lines.
    pub aggregator: Aggregator,
    today: Option<Today>,
    /// Days whose log changed since their page was written.
    dirty: BTreeSet<Date>,
    rows: BTreeMap<Date, IndexRow>,
    index_dirty: bool,
    device: Option<Device>,
    /// The tariff periods seen in its `today` messages, and those announced to discovery.
    periods: BTreeSet<String>,
    announced: BTreeSet<String>,
    /// Lines the disk refused (full, or the directory unwritable), oldest first: written
    /// before any newer one as soon as it works again. Bounded by [`MAX_UNWRITTEN`].
    unwritten: VecDeque<Unwritten>,
    write_failed: bool,
    /// The logs lines went to last, kept open between lines (at most [`OPEN_LOGS`]: today's
    /// and a past day's while the daemon's spool drains into it); one is reopened when its
    /// write fails.
    open: Vec<(Date, File)>,
    /// The `seq` numbers filed, and the newest `ts` filed: a state whose seq was filed and
    /// that is not newer is one sent again.
    pub seen: SeenSeqs,
    /// The newest `ts` filed.
    pub newest: Option<jiff::Timestamp>,
    /// The index plausibility check.
    pub sanity: IndexSanity,
    /// States whose indexes wait for confirmation (at most [`super::checks::CONFIRMATIONS`]): filed if the
    /// next states confirm them, counted and dropped if not, lost at a stop.
    pub held: Vec<State>,
    /// The price per kWh now, for `<base>/<id>/price`.
    pub price: PriceNow,
    /// The month to date, for `<base>/<id>/month`.
    month: Month,
}

impl MeterLog {
    /// A meter with nothing logged yet in this run.
    pub fn new(id: Option<String>, place: Place, config: &LoggerConfig, tz: &TimeZone) -> Self {
        MeterLog {
            id,
            place,
            aggregator: Aggregator::new(config.frames_per_line, tz.clone()),
            today: None,
            dirty: BTreeSet::new(),
            rows: BTreeMap::new(),
            index_dirty: false,
            device: None,
            periods: BTreeSet::new(),
            announced: BTreeSet::new(),
            unwritten: VecDeque::new(),
            write_failed: false,
            open: Vec::new(),
            seen: SeenSeqs::default(),
            newest: None,
            sanity: IndexSanity::default(),
            held: Vec::new(),
            price: PriceNow::default(),
            month: Month::default(),
        }
    }

    fn log_path(&self, date: Date) -> PathBuf {
        self.place.log_path(date)
    }

    /// The daily logs in this meter's directory, by day.
    pub fn logs(&self) -> BTreeMap<Date, PathBuf> {
        let Ok(entries) = fs::read_dir(&self.place.log_dir) else {
            return BTreeMap::new();
        };
        entries
            .flatten()
            .map(|e| e.path())
            .filter(|p| p.extension().is_some_and(|e| e == "log"))
            .filter_map(|p| date_of_file(&p).map(|d| (d, p)))
            .collect()
    }

    /// Takes in the logs already on disk: a page at least as new as its log gives the day's
    /// index row; any other day's page is rebuilt. False when there is no log at all.
    pub fn take_existing_logs(&mut self) -> bool {
        for (date, log) in self.logs() {
            let page = self.place.pages_dir.join(pages::page_name(date));
            let page_mtime = fs::metadata(&page).and_then(|m| m.modified()).ok();
            let log_mtime = fs::metadata(&log).and_then(|m| m.modified()).ok();
            let row = page_mtime
                .is_some_and(|p| log_mtime.is_some_and(|l| p >= l))
                .then(|| fs::read_to_string(&page).ok())
                .flatten()
                .and_then(|html| pages::read_day_meta(&html));
            match row {
                Some(row) => {
                    self.rows.insert(date, row);
                }
                None => {
                    self.dirty.insert(date);
                }
            }
        }
        self.index_dirty = true;
        !(self.rows.is_empty() && self.dirty.is_empty())
    }

    /// Files a state that passed the checks: notes its `seq` and time, and writes the lines
    /// it completes.
    pub fn file(&mut self, state: State, tz: &TimeZone) {
        if let Some(seq) = state.seq {
            self.seen.insert(seq);
        }
        self.newest = self.newest.max(Some(state.ts));
        self.note_device(state.mode, state.contract);
        for filed in self.aggregator.push(state) {
            self.append(filed.date, &filed.line);
            self.note_line(filed.date, filed.line, tz);
        }
    }

    /// Notes the mode and contract of the meter's last state, for discovery.
    pub fn note_device(&mut self, mode: Mode, contract: Contract) {
        self.device = Some(Device { mode, contract });
    }

    /// Appends one line; the file is created with its day's first line, and stays open
    /// while lines go to the same day.
    pub fn append(&mut self, date: Date, line: &LogLine) {
        if self.unwritten.len() == MAX_UNWRITTEN {
            self.unwritten.pop_front();
            warn!("{MAX_UNWRITTEN} lines wait for the log directory: the oldest is dropped");
        }
        self.unwritten.push_back(Unwritten {
            date,
            line: line.clone(),
        });
        self.write_unwritten();
    }

    /// Writes the waiting lines in order, stopping at the first refusal (said once).
    pub fn write_unwritten(&mut self) {
        while let Some(waiting) = self.unwritten.front() {
            let date = waiting.date;
            let path = self.log_path(date);
            let file = match self.open.iter().position(|(d, _)| *d == date) {
                Some(i) => Ok(self.open.remove(i).1),
                None => open_log(&self.place.log_dir, &path),
            };
            let written = file.and_then(|mut file| {
                write_line(&mut file, &waiting.line)?;
                Ok(file)
            });
            match written {
                Ok(file) => {
                    if self.open.len() >= OPEN_LOGS {
                        self.open.remove(0);
                    }
                    self.open.push((date, file));
                    self.unwritten.pop_front();
                    self.dirty.insert(date);
                    self.month.log_changed(date);
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
            info!("writing to {} works again", self.place.log_dir.display());
            self.write_failed = false;
        }
    }

    /// How many lines still wait for the disk.
    pub fn unwritten(&self) -> usize {
        self.unwritten.len()
    }

    /// Counts a line in the newest day's `today` figures (a late line for a past day only
    /// marks its page): constant work per line in time order. A new day starts from its
    /// file (the lines already there, and the day before's last line); see [`RunningDay`].
    pub fn note_line(&mut self, date: Date, line: LogLine, tz: &TimeZone) {
        match &mut self.today {
            Some(t) if t.day.date() == date => {
                t.day.push(line, tz);
                t.due = true;
            }
            Some(t) if t.day.date() > date => {} // a late line for a past day
            _ => {
                // A new day (or the first line since start): what the file already has counts.
                let lines = read_log(&self.log_path(date))
                    .map(|r| r.lines)
                    .unwrap_or_else(|_| vec![line]);
                let previous = date
                    .yesterday()
                    .ok()
                    .and_then(|d| last_line(&self.log_path(d)));
                self.today = Some(Today {
                    day: RunningDay::new(date, lines, previous, tz),
                    due: true,
                });
            }
        }
    }

    /// The newest day's figures when lines came since the last call, noting the tariff
    /// periods they show.
    pub fn take_today(&mut self) -> Option<&RunningDay> {
        let t = self.today.as_mut().filter(|t| t.due && !t.day.is_empty())?;
        t.due = false;
        self.periods.extend(t.day.energy_wh().keys().cloned());
        Some(&t.day)
    }

    /// The `month` payload after `today`'s report, when it changed: the month's past days
    /// are read from their logs once, and again only when their log changed.
    pub fn take_month(
        &mut self,
        date: Date,
        energy_wh: &BTreeMap<String, u64>,
        prices: &Prices,
        tz: &TimeZone,
    ) -> Option<String> {
        let place = &self.place;
        self.month.update(date, energy_wh, prices, |date| {
            place.day_report(date, tz).map(|r| r.energy_wh)
        })
    }

    /// Whether periods were seen that discovery has not announced yet.
    pub fn has_new_periods(&self) -> bool {
        self.periods != self.announced
    }

    /// Whether a `today` entity was ever announced or is to be.
    pub fn has_periods(&self) -> bool {
        !self.periods.is_empty()
    }

    /// The discovery configs of the meter's logger entities: `today`'s and `month`'s, per
    /// period seen, and the price when `prices` has any.
    pub fn announce(
        &mut self,
        id: &str,
        prices: &Prices,
        ctx: &discovery::Context,
    ) -> Vec<Message> {
        let Some(device) = self.device else {
            return Vec::new();
        };
        self.announced = self.periods.clone();
        discovery::today_config_messages(
            id,
            device.mode,
            &device.contract,
            &self.periods,
            (prices.currency(), !prices.is_empty()),
            ctx,
        )
    }

    /// Writes the pages of the dirty days, then the index if a day was added or a past day
    /// changed (today's row changing alone does not rewrite the index: it says "so far").
    pub fn rebuild(&mut self, today: Date, settings: &PageSettings) {
        if self.dirty.is_empty() && !self.index_dirty {
            return;
        }
        if let Err(e) = fs::create_dir_all(&self.place.pages_dir) {
            warn!("cannot create {}: {e}", self.place.pages_dir.display());
            return;
        }
        let logs = self.logs();
        for date in std::mem::take(&mut self.dirty) {
            let Some(report) = self.place.day_report(date, settings.tz) else {
                continue;
            };
            let nav = Nav {
                previous: logs.range(..date).next_back().map(|(d, _)| *d),
                next: logs
                    .range(date.tomorrow().unwrap_or(date)..)
                    .next()
                    .map(|(d, _)| *d)
                    .or_else(|| (date < today).then(|| date.tomorrow().ok()).flatten()),
            };
            let (html, row) = pages::render_day(&report, &nav, settings);
            let path = self.place.pages_dir.join(pages::page_name(date));
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
            let path = self.place.pages_dir.join("index.html");
            let html = pages::index_page(&rows, &settings.context());
            match write_atomic(&path, html.as_bytes()) {
                Ok(()) => self.index_dirty = false,
                Err(e) => warn!("cannot write {}: {e}", path.display()),
            }
        }
    }
}
