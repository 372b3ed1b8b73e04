//! The logger's files: daily logs read and appended, dygraphs installed next to the pages.
//!
//! Shared by `linkymon logger` and `linkymon graph`. What a line says is [`super::line`]'s;
//! pages are replaced whole with [`crate::files::write_atomic`].

use std::fs;
use std::io::{self, Write};
use std::path::Path;

use jiff::civil::Date;
use tracing::warn;

use super::LogLine;
use super::line::ParseError;
use crate::files::write_atomic;

/// Where Debian's `libjs-dygraphs` puts dygraphs.
pub const DEBIAN_DYGRAPHS: &str = "/usr/share/javascript/dygraphs";

/// The files copied from [`DEBIAN_DYGRAPHS`] into `<pages_dir>/assets/`.
const ASSET_FILES: [&str; 2] = ["dygraph.min.js", "dygraph.min.css"];

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

/// A line of a log that could not be read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UnreadableLine {
    /// Its line number, from 1.
    pub number: usize,
    /// Why it was skipped.
    pub problem: LineProblem,
}

/// A log file, read.
#[derive(Debug, Default)]
pub struct ReadLog {
    /// Every readable line, in file order.
    pub lines: Vec<LogLine>,
    /// The lines that could not be read, in file order.
    pub unreadable: Vec<UnreadableLine>,
}

/// Reads a daily log; blank lines are skipped, unreadable ones counted, never fatal.
pub fn read_log(path: &Path) -> io::Result<ReadLog> {
    let bytes = fs::read(path)?;
    let mut out = ReadLog::default();
    for (i, raw) in bytes.split(|&b| b == b'\n').enumerate() {
        if raw.iter().all(u8::is_ascii_whitespace) {
            continue;
        }
        let problem = match std::str::from_utf8(raw) {
            Ok(text) => match text.parse() {
                Ok(line) => {
                    out.lines.push(line);
                    continue;
                }
                Err(e) => LineProblem::Parse(e),
            },
            Err(_) => LineProblem::NotUtf8,
        };
        out.unreadable.push(UnreadableLine {
            number: i + 1,
            problem,
        });
    }
    Ok(out)
}

/// The last line of a day's log, by time, when it can be read: where the next day's energy
/// counts from.
pub fn last_line(path: &Path) -> Option<LogLine> {
    read_log(path)
        .ok()?
        .lines
        .into_iter()
        .max_by_key(|l| l.time)
}

/// The day a log file is named after (`2021-02-20.log`, as both tools name them).
pub fn date_of_file(path: &Path) -> Option<Date> {
    path.file_stem()?.to_str()?.parse().ok()
}

/// Opens a daily log for appending, creating the directory and the file as needed. The
/// logger keeps it open while lines go to the same day.
pub fn open_log(dir: &Path, path: &Path) -> io::Result<fs::File> {
    fs::create_dir_all(dir)?;
    fs::OpenOptions::new().create(true).append(true).open(path)
}

/// Appends one line to an open daily log in one write. A write the disk cuts short (full) is
/// taken back, so the log never holds half a line. No fsync: a line is handed to the system
/// at once, and an SD card would wear for nothing.
pub fn write_line(file: &mut fs::File, line: &LogLine) -> io::Result<()> {
    let len = file.metadata()?.len();
    let written = file.write_all(format!("{line}\n").as_bytes());
    if written.is_err() {
        let _ = file.set_len(len);
    }
    written
}

/// Copies dygraphs from Debian's package into `<pages_dir>/assets/` (once: files already
/// there with the same size are left alone) and says whether the pages can load it from
/// there. Without the package, the pages load it from the dygraphs site; the caller says so
/// once with [`warn_online_assets`].
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

/// Says once that the pages will need a network for dygraphs.
pub fn warn_online_assets() {
    warn!(
        "dygraphs is not installed in {DEBIAN_DYGRAPHS} (Debian package libjs-dygraphs): \
         the pages load it from dygraphs.com and need a network to show their charts"
    );
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

    #[test]
    fn dygraphs_is_copied_once_when_the_package_is_there() {
        let dir = tempfile::tempdir().unwrap();
        let dir = dir.path();
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
    }

    #[test]
    fn unreadable_lines_are_counted_with_their_numbers_and_blank_lines_skipped() {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("2021-02-20.log");
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
                UnreadableLine {
                    number: 3,
                    problem: LineProblem::Parse(ParseError::BadTime)
                },
                UnreadableLine {
                    number: 4,
                    problem: LineProblem::NotUtf8
                }
            ]
        );
    }
}
