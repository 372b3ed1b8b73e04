//! `linkymon graph LOG...`: day pages and the index from daily logs, ours or the Perl
//! LinkyMonitor's, so a user can bring years of history along.
//!
//! Also the file side of the pages that `linkymon logger` shares: reading a log, writing a
//! page atomically, installing dygraphs next to the pages.
//!
//! A log's day is its file name (`YYYY-MM-DD.log`, as both tools name them), else the day of
//! its first readable line. Energy across midnight is counted when the previous day's log is
//! among the inputs. The index lists the days given. Days are read and pages written on
//! every core; a year of 10-second lines takes a few seconds.

use std::fs;
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};

use anyhow::Context;
use jiff::civil::Date;
use jiff::tz::TimeZone;
use tracing::{info, warn};

use crate::config::Config;
use crate::sidecar::day::{self, DayReport};
use crate::sidecar::pages::{self, Assets, IndexRow, Nav, PageContext};
use crate::sidecar::{LogLine, line::ParseError};

/// Where Debian's `libjs-dygraphs` puts dygraphs.
pub const DEBIAN_DYGRAPHS: &str = "/usr/share/javascript/dygraphs";

/// The files copied from [`DEBIAN_DYGRAPHS`] into `<pages_dir>/assets/`.
const ASSET_FILES: [&str; 2] = ["dygraph.min.js", "dygraph.min.css"];

/// From this many logs on, the progress is logged.
const PROGRESS_FROM: usize = 20;

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

/// Unreadable lines reported one by one per file; the rest are counted.
const REPORTED_PER_FILE: usize = 5;

/// Why a line of a log was skipped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LineProblem {
    /// The bytes are not UTF-8 (a disk or copy error).
    NotUtf8,
    /// The text is not a log line.
    Parse(ParseError),
}

impl std::fmt::Display for LineProblem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            LineProblem::NotUtf8 => f.write_str("not UTF-8 text"),
            LineProblem::Parse(e) => e.fmt(f),
        }
    }
}

/// A log file, read.
#[derive(Debug, Default)]
pub struct ReadLog {
    /// Every readable line, in file order.
    pub lines: Vec<LogLine>,
    /// Line numbers (from 1) of the lines that could not be read, and why.
    pub unreadable: Vec<(usize, LineProblem)>,
}

/// Reads a daily log; blank lines are skipped, unreadable ones counted, never fatal.
pub fn read_log(path: &Path) -> io::Result<ReadLog> {
    let bytes = fs::read(path)?;
    let mut out = ReadLog::default();
    for (i, raw) in bytes.split(|&b| b == b'\n').enumerate() {
        if raw.iter().all(u8::is_ascii_whitespace) {
            continue;
        }
        match std::str::from_utf8(raw) {
            Ok(text) => match text.parse() {
                Ok(line) => out.lines.push(line),
                Err(e) => out.unreadable.push((i + 1, LineProblem::Parse(e))),
            },
            Err(_) => out.unreadable.push((i + 1, LineProblem::NotUtf8)),
        }
    }
    Ok(out)
}

/// The day a log file is named after (`2021-02-20.log`).
pub fn date_of_file(path: &Path) -> Option<Date> {
    path.file_stem()?.to_str()?.parse().ok()
}

/// Writes a file so that a reader (a browser, a web server) sees the old or the new
/// content, never half of it: a temporary file beside it, then a rename.
pub fn write_atomic(path: &Path, contents: &[u8]) -> io::Result<()> {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tmp = path.with_file_name(format!(".{name}.tmp"));
    let mut file = fs::File::create(&tmp)?;
    file.write_all(contents)?;
    drop(file);
    fs::rename(&tmp, path)
}

/// Copies dygraphs from Debian's package into `<pages_dir>/assets/` (once: files already
/// there with the same size are left alone) and says where the pages should load it from.
/// Without the package, the pages load it from the dygraphs site; the caller says so once.
pub fn install_assets(pages_dir: &Path, debian_dir: &Path) -> io::Result<bool> {
    if !ASSET_FILES.iter().all(|f| debian_dir.join(f).is_file()) {
        return Ok(false);
    }
    let assets = pages_dir.join("assets");
    fs::create_dir_all(&assets)?;
    for file in ASSET_FILES {
        let from = debian_dir.join(file);
        let to = assets.join(file);
        let same = match (fs::metadata(&from), fs::metadata(&to)) {
            (Ok(a), Ok(b)) => a.len() == b.len(),
            _ => false,
        };
        if !same {
            write_atomic(&to, &fs::read(&from)?)?;
        }
    }
    Ok(true)
}

/// The assets the pages of one directory use, `up` being the way to the pages root.
pub fn assets_for(local: bool, up: &str) -> Assets {
    if local {
        Assets::local(up)
    } else {
        Assets::online()
    }
}

/// Says once that the pages will need a network for dygraphs.
pub fn warn_online_assets() {
    warn!(
        "dygraphs is not installed in {DEBIAN_DYGRAPHS} (Debian package libjs-dygraphs): \
         the pages load it from dygraphs.com and need a network to show their charts"
    );
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

/// Pricing and naming shared by every page of a run.
#[derive(Debug, Clone)]
pub struct PageSettings<'a> {
    /// `logger.timezone`.
    pub tz: &'a TimeZone,
    /// `logger.prices`.
    pub prices: &'a std::collections::BTreeMap<String, f64>,
    /// `logger.subscription_per_day`.
    pub subscription_per_day: f64,
    /// `logger.currency`.
    pub currency: &'a str,
    /// The meter, for titles.
    pub meter: Option<&'a str>,
    /// Where dygraphs is.
    pub assets: &'a Assets,
}

/// A day's page and index row from its report.
pub fn render_day(report: &DayReport, nav: &Nav, s: &PageSettings) -> (String, IndexRow) {
    let costs = day::costs(&report.energy_wh, s.prices, s.subscription_per_day);
    let ctx = PageContext {
        meter: s.meter,
        currency: s.currency,
        assets: s.assets,
    };
    let html = pages::day_page(report, &costs, nav, &ctx);
    let row = IndexRow {
        date: report.date,
        total_wh: report.total_wh(),
        injected_wh: report.injected_wh,
        cost: costs.total,
        in_progress: false,
    };
    (html, row)
}

/// What `linkymon graph` did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Summary {
    /// Day pages written.
    pub pages: usize,
    /// Lines that could not be read, over all logs.
    pub unreadable: usize,
    /// Logs that could not be opened or had no readable line.
    pub skipped: usize,
}

struct Parsed {
    path: PathBuf,
    report: Option<DayReport>,
    unreadable: Vec<(usize, LineProblem)>,
    error: Option<io::Error>,
}

/// Builds the pages of `logs` into `logger.pages_dir`.
pub fn run(config: &Config, logs: &[PathBuf]) -> anyhow::Result<Summary> {
    let logger = &config.logger;
    let tz = logger.time_zone()?;
    let pages_dir = &logger.pages_dir;
    fs::create_dir_all(pages_dir).with_context(|| {
        format!(
            "cannot create the pages directory {} (logger.pages_dir)",
            pages_dir.display()
        )
    })?;
    let local = install_assets(pages_dir, Path::new(DEBIAN_DYGRAPHS))
        .with_context(|| format!("cannot copy dygraphs into {}/assets", pages_dir.display()))?;
    if !local {
        warn_online_assets();
    }
    let assets = assets_for(local, "");
    let progress = Progress::new("logs read", logs.len());
    // Read every log on every core; keep the small report, not the lines.
    let parsed = parallel_map(logs, |path| {
        let result = read_log(path);
        progress.inc();
        match result {
            Ok(read) => {
                let date = date_of_file(path).or_else(|| read.lines.first().map(|l| l.time.date()));
                Parsed {
                    path: path.clone(),
                    report: date.and_then(|d| DayReport::from_lines(d, &read.lines, &tz)),
                    unreadable: read.unreadable,
                    error: None,
                }
            }
            Err(e) => Parsed {
                path: path.clone(),
                report: None,
                unreadable: Vec::new(),
                error: Some(e),
            },
        }
    });

    let mut summary = Summary::default();
    let mut days: std::collections::BTreeMap<Date, (PathBuf, DayReport)> = Default::default();
    for p in parsed {
        summary.unreadable += p.unreadable.len();
        for (line, problem) in p.unreadable.iter().take(REPORTED_PER_FILE) {
            warn!("{}:{line}: skipped, {problem}", p.path.display());
        }
        if p.unreadable.len() > REPORTED_PER_FILE {
            warn!(
                "{}: {} more unreadable lines skipped",
                p.path.display(),
                p.unreadable.len() - REPORTED_PER_FILE
            );
        }
        let report = match (p.error, p.report) {
            (Some(e), _) => {
                warn!("{}: cannot read: {e}", p.path.display());
                summary.skipped += 1;
                continue;
            }
            (None, None) => {
                warn!("{}: no readable line, no page", p.path.display());
                summary.skipped += 1;
                continue;
            }
            (None, Some(report)) => report,
        };
        let date = report.date;
        if let Some((other, kept)) = days.get(&date)
            && kept.lines >= report.lines
        {
            warn!(
                "{} and {} are both {date}: keeping the first, which has more lines",
                other.display(),
                p.path.display()
            );
            continue;
        }
        days.insert(date, (p.path, report));
    }

    // Energy across midnight: each day starts from the day before's last line.
    let dates: Vec<Date> = days.keys().copied().collect();
    for pair in dates.windows(2) {
        let (before, after) = (pair[0], pair[1]);
        if before.tomorrow().ok() == Some(after) {
            let last = days[&before].1.last_line().clone();
            if let Some((_, report)) = days.get_mut(&after) {
                report.link_previous(&last, &tz);
            }
        }
    }

    let settings = PageSettings {
        tz: &tz,
        prices: &logger.prices,
        subscription_per_day: logger.subscription_per_day,
        currency: &logger.currency,
        meter: None,
        assets: &assets,
    };
    let reports: Vec<(usize, &DayReport)> = days
        .values()
        .map(|(_, r)| r)
        .enumerate()
        .collect::<Vec<_>>();
    let progress = Progress::new("pages written", reports.len());
    let written = parallel_map(&reports, |&(i, report)| {
        let nav = Nav {
            previous: i.checked_sub(1).map(|j| dates[j]),
            next: dates.get(i + 1).copied(),
        };
        let (html, row) = render_day(report, &nav, &settings);
        let path = pages_dir.join(pages::page_name(report.date));
        let result = write_atomic(&path, html.as_bytes()).map(|()| row);
        progress.inc();
        result.with_context(|| format!("cannot write {}", path.display()))
    });
    let rows = written
        .into_iter()
        .collect::<anyhow::Result<Vec<IndexRow>>>()?;
    summary.pages = rows.len();
    let ctx = PageContext {
        meter: None,
        currency: &logger.currency,
        assets: &assets,
    };
    let index = pages_dir.join("index.html");
    write_atomic(&index, pages::index_page(&rows, &ctx).as_bytes())
        .with_context(|| format!("cannot write {}", index.display()))?;
    info!(
        "{} day pages and index.html in {}; {} unreadable lines skipped, {} logs without a page",
        summary.pages,
        pages_dir.display(),
        summary.unreadable,
        summary.skipped
    );
    Ok(summary)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_log_is_named_after_its_day() {
        assert_eq!(
            date_of_file(Path::new("/x/2021-02-20.log")),
            Some(jiff::civil::date(2021, 2, 20))
        );
        assert_eq!(date_of_file(Path::new("/x/linky.log")), None);
    }

    fn scratch(tag: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("linkymon-graph-{tag}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).unwrap();
        dir
    }

    #[test]
    fn an_atomic_write_leaves_no_temporary_file() {
        let dir = scratch("atomic");
        let page = dir.join("index.html");
        write_atomic(&page, b"old").unwrap();
        write_atomic(&page, b"new").unwrap();
        assert_eq!(fs::read(&page).unwrap(), b"new");
        assert_eq!(fs::read_dir(&dir).unwrap().count(), 1);
        fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn dygraphs_is_copied_once_when_the_package_is_there() {
        let dir = scratch("assets");
        let debian = dir.join("debian");
        fs::create_dir_all(&debian).unwrap();
        assert!(
            !install_assets(&dir.join("pages"), &debian).unwrap(),
            "no package"
        );
        fs::write(debian.join("dygraph.min.js"), "js").unwrap();
        fs::write(debian.join("dygraph.min.css"), "css").unwrap();
        assert!(install_assets(&dir.join("pages"), &debian).unwrap());
        let copied = dir.join("pages/assets/dygraph.min.js");
        assert_eq!(fs::read(&copied).unwrap(), b"js");
        let before = fs::metadata(&copied).unwrap().modified().unwrap();
        std::thread::sleep(std::time::Duration::from_millis(20));
        install_assets(&dir.join("pages"), &debian).unwrap();
        assert_eq!(
            fs::metadata(&copied).unwrap().modified().unwrap(),
            before,
            "not rewritten"
        );
        fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn unreadable_lines_are_counted_with_their_numbers_and_blank_lines_skipped() {
        let dir = scratch("read");
        let log = dir.join("2021-02-20.log");
        fs::write(
            &log,
            b"2021/02/20 19:10:22\tDATA\tPeriode=HN..\n\nbad\n\xff\xfe\n2021/02/20 19:10:30\tDATA\tPeriode=HN..\n",
        )
        .unwrap();
        let read = read_log(&log).unwrap();
        assert_eq!(read.lines.len(), 2);
        assert_eq!(
            read.unreadable,
            [
                (3, LineProblem::Parse(ParseError::BadTime)),
                (4, LineProblem::NotUtf8)
            ]
        );
        fs::remove_dir_all(dir).unwrap();
    }

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
