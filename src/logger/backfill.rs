//! `linkymon graph`'s work: day pages, month and year pages and the index from daily logs,
//! ours or the Perl LinkyMonitor's, so a user can bring years of history along. The month and
//! year pages, and the season's counters, are added up from the days' rows, as the logger
//! does, so both build the same pages.
//!
//! A log's day is its file name (`YYYY-MM-DD.log`, as both tools name them), else the day of
//! its first readable line. Energy across midnight is counted when the previous day's log is
//! among the inputs. The index lists the days given. Days are read and pages written on
//! every core, so a year of 10-second lines takes seconds, not minutes.

use std::collections::{BTreeMap, BTreeSet};
use std::io;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};

use anyhow::Context;
use jiff::civil::Date;
use tracing::{info, warn};

use super::calendar::{Month, marks, month_of};
use super::calendar_pages::render_calendar;
use super::day::DayReport;
use super::disk::{UnreadableLine, date_of_file, read_log};
use super::pages::{self, IndexRow, Nav, PageSettings};
use super::season::Counts;
use crate::files::write_atomic;

/// From this many logs on, the progress is logged.
const PROGRESS_FROM: usize = 20;

/// Unreadable lines reported one by one per file; the rest are counted.
const REPORTED_PER_FILE: usize = 5;

/// How far a phase of a long run is, logged at every tenth, so that a backfill of years of
/// logs shows it is moving; a terminal and a journal read it alike. Shared by the workers.
struct Progress {
    phase: &'static str,
    total: usize,
    done: AtomicUsize,
}

impl Progress {
    /// Logs nothing for fewer than `PROGRESS_FROM` items: those take well under a second.
    fn new(phase: &'static str, total: usize) -> Self {
        let total = if total >= PROGRESS_FROM { total } else { 0 };
        Progress {
            phase,
            total,
            done: AtomicUsize::new(0),
        }
    }

    /// One more item done; logs when that crosses a tenth, and says whether it did.
    fn inc(&self) -> bool {
        if self.total == 0 {
            return false;
        }
        let done = self.done.fetch_add(1, Ordering::Relaxed) + 1;
        let crossed = done * 10 / self.total != (done - 1) * 10 / self.total;
        if crossed {
            info!("{}: {done}/{}", self.phase, self.total);
        }
        crossed
    }
}

/// Maps `f` over `items` on every core, keeping the order.
pub fn parallel_map<T: Sync, R: Send>(items: &[T], f: impl Fn(&T) -> R + Sync) -> Vec<R> {
    let workers = std::thread::available_parallelism()
        .map_or(1, usize::from)
        .min(items.len())
        .max(1);
    let next = AtomicUsize::new(0);
    let mut results: Vec<(usize, R)> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..workers)
            .map(|_| {
                scope.spawn(|| {
                    let mut mine = Vec::new();
                    loop {
                        let i = next.fetch_add(1, Ordering::Relaxed);
                        let Some(item) = items.get(i) else { break };
                        mine.push((i, f(item)));
                    }
                    mine
                })
            })
            .collect();
        handles
            .into_iter()
            .flat_map(|h| h.join().unwrap_or_else(|p| std::panic::resume_unwind(p)))
            .collect()
    });
    results.sort_unstable_by_key(|(i, _)| *i);
    results.into_iter().map(|(_, r)| r).collect()
}

/// What `linkymon graph` did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Summary {
    /// Day pages written.
    pub pages: usize,
    /// Month and year pages written.
    pub calendar_pages: usize,
    /// The counters of the newest day's season, on an EJP or Tempo contract.
    pub season: Option<Counts>,
    /// Lines that could not be read, over all logs.
    pub unreadable: usize,
    /// Logs that could not be opened or had no readable line.
    pub skipped: usize,
}

/// One log, read: the small report is kept, not the lines.
struct ParsedLog {
    path: PathBuf,
    unreadable: Vec<UnreadableLine>,
    outcome: Outcome,
}

/// A day given, and the log it comes from.
struct Day {
    log: PathBuf,
    report: DayReport,
}

/// What a log gave.
enum Outcome {
    /// Its day's report.
    Day(Box<DayReport>),
    /// No readable line, so no day.
    Empty,
    /// It could not be read at all.
    Unopened(io::Error),
}

/// Builds the pages of `logs` and their index into `pages_dir`, which exists. Unreadable
/// lines and logs are skipped with a warning and counted; a page that cannot be written is
/// an error.
pub fn build_pages(
    logs: &[PathBuf],
    pages_dir: &Path,
    settings: &PageSettings,
) -> anyhow::Result<Summary> {
    let tz = settings.tz;
    let progress = Progress::new("logs read", logs.len());
    let parsed = parallel_map(logs, |path| {
        let result = read_log(path);
        progress.inc();
        let (unreadable, outcome) = match result {
            Ok(read) => {
                let date = date_of_file(path).or_else(|| read.lines.first().map(|l| l.time.date()));
                let report = date.and_then(|d| DayReport::from_lines(d, &read.lines, tz));
                let outcome = report.map_or(Outcome::Empty, |r| Outcome::Day(Box::new(r)));
                (read.unreadable, outcome)
            }
            Err(e) => (Vec::new(), Outcome::Unopened(e)),
        };
        ParsedLog {
            path: path.clone(),
            unreadable,
            outcome,
        }
    });

    let mut summary = Summary::default();
    let mut days: BTreeMap<Date, Day> = BTreeMap::new();
    for log in parsed {
        summary.unreadable += log.unreadable.len();
        for line in log.unreadable.iter().take(REPORTED_PER_FILE) {
            warn!(
                "{}:{}: skipped, {}",
                log.path.display(),
                line.number,
                line.problem
            );
        }
        if log.unreadable.len() > REPORTED_PER_FILE {
            warn!(
                "{}: {} more unreadable lines skipped",
                log.path.display(),
                log.unreadable.len() - REPORTED_PER_FILE
            );
        }
        let report = match log.outcome {
            Outcome::Day(report) => *report,
            Outcome::Unopened(e) => {
                warn!("{}: cannot read: {e}", log.path.display());
                summary.skipped += 1;
                continue;
            }
            Outcome::Empty => {
                warn!("{}: no readable line, no page", log.path.display());
                summary.skipped += 1;
                continue;
            }
        };
        let date = report.date;
        if let Some(kept) = days.get(&date)
            && kept.report.lines >= report.lines
        {
            warn!(
                "{} and {} are both {date}: keeping the first, which has more lines",
                kept.log.display(),
                log.path.display()
            );
            continue;
        }
        let log = log.path;
        days.insert(date, Day { log, report });
    }

    // Energy across midnight: each day starts from the day before's last line.
    let dates: Vec<Date> = days.keys().copied().collect();
    for pair in dates.windows(2) {
        let (before, after) = (pair[0], pair[1]);
        if before.tomorrow().ok() == Some(after) {
            let last = days[&before].report.last_line().clone();
            if let Some(day) = days.get_mut(&after) {
                day.report.link_previous(&last, tz);
            }
        }
    }

    let reports: Vec<&DayReport> = days.values().map(|day| &day.report).collect();
    let positions: Vec<usize> = (0..reports.len()).collect();
    let progress = Progress::new("pages written", reports.len());
    let written = parallel_map(&positions, |&i| {
        let report = reports[i];
        let nav = Nav {
            previous: i.checked_sub(1).map(|j| dates[j]),
            next: dates.get(i + 1).copied(),
        };
        let (html, row) = pages::render_day(report, &nav, settings);
        let path = pages_dir.join(pages::page_name(report.date));
        let result = write_atomic(&path, html.as_bytes()).map(|()| row);
        progress.inc();
        result.with_context(|| format!("cannot write {}", path.display()))
    });
    let rows = written
        .into_iter()
        .collect::<anyhow::Result<Vec<IndexRow>>>()?;
    summary.pages = rows.len();

    // Months and years: from the days' rows, no log read again.
    let by_date: BTreeMap<Date, IndexRow> = rows.iter().map(|r| (r.date, r.clone())).collect();
    let months: BTreeSet<Month> = by_date.keys().map(|d| month_of(*d)).collect();
    let years: BTreeSet<i16> = months.iter().map(|m| m.0).collect();
    for (name, html) in render_calendar(&by_date, &months, &years, &settings.context()) {
        let path = pages_dir.join(name);
        write_atomic(&path, html.as_bytes())
            .with_context(|| format!("cannot write {}", path.display()))?;
        summary.calendar_pages += 1;
    }
    summary.season = Counts::current(&marks(&rows));
    let index = pages_dir.join("index.html");
    write_atomic(
        &index,
        pages::index_page(&rows, &settings.context()).as_bytes(),
    )
    .with_context(|| format!("cannot write {}", index.display()))?;
    Ok(summary)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn progress_is_logged_at_each_tenth_of_a_long_run_only() {
        let logged = |total: usize| {
            let progress = Progress::new("logs read", total);
            (0..total).filter(|_| progress.inc()).count()
        };
        assert_eq!(logged(PROGRESS_FROM - 1), 0);
        assert_eq!(logged(PROGRESS_FROM), 10);
        assert_eq!(logged(365), 10);
        assert_eq!(logged(3653), 10);
    }

    #[test]
    fn parallel_map_keeps_the_order() {
        let items: Vec<u32> = (0..100).collect();
        assert_eq!(
            parallel_map(&items, |i| i * 2),
            (0..100).map(|i| i * 2).collect::<Vec<_>>()
        );
    }
}
