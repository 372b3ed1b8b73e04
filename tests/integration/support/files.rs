//! Files the tests read: the captures (shipped, and the corpus beside the clone), wire bytes
//! rebuilt from text captures, golden files that rewrite themselves when
//! `LINKYMON_UPDATE_GOLDEN=1`, and the logger's daily logs.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// The crate root.
pub fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The captures shipped with the repository (permissive licences only).
pub fn fixtures_dir() -> PathBuf {
    root().join("tests/fixtures/captures")
}

/// The research corpus, in `shared/` beside the clone as CI lays it out; panics in one line
/// when it is not there.
pub fn corpus_dir() -> PathBuf {
    let dir = root().join("../shared/tic/corpus");
    assert!(
        dir.join("MANIFEST.tsv").is_file(),
        "{} is missing: the corpus tests read the research corpus in shared/ beside the clone, \
         as CI has it",
        dir.display()
    );
    dir
}

/// A capture and where it comes from.
pub struct Capture {
    pub name: String,
    pub path: PathBuf,
    pub shipped: bool,
}

/// Every shipped capture, plus the corpus captures that could not be shipped (their
/// licence forbids it).
pub fn captures() -> Vec<Capture> {
    let mut captures: Vec<Capture> = list(&fixtures_dir())
        .into_iter()
        .map(|path| Capture {
            name: file_name(&path),
            path,
            shipped: true,
        })
        .collect();
    for path in list(&corpus_dir()) {
        let name = file_name(&path);
        if !captures.iter().any(|c| c.name == name) {
            captures.push(Capture {
                name,
                path,
                shipped: false,
            });
        }
    }
    captures.sort_by(|a, b| a.name.cmp(&b.name));
    captures
}

fn list(dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .filter(|p| matches!(p.extension().and_then(|e| e.to_str()), Some("tic" | "txt")))
        .collect();
    files.sort();
    files
}

fn file_name(path: &Path) -> String {
    path.file_name().unwrap().to_string_lossy().into_owned()
}

/// The bytes a decoder should see. `.tic` files are wire bytes; `.txt` files kept one group
/// per line without STX/ETX (see the corpus README), so the frames are rebuilt: each line
/// becomes `LF line CR`, and a frame starts at each `ADCO`/`ADSC` line, or at each empty line
/// in the openHAB files, whose empty lines mark where ETX STX were.
pub fn wire_bytes(capture: &Capture) -> Vec<u8> {
    let raw = std::fs::read(&capture.path).unwrap();
    if !capture.name.ends_with(".txt") {
        return raw;
    }
    let by_blank_lines = capture.name.contains("openhab");
    let mut out = Vec::new();
    let mut open = false;
    for line in raw.split(|&b| b == b'\n') {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        let starts_frame = if by_blank_lines {
            line.is_empty()
        } else {
            line.starts_with(b"ADCO ") || line.starts_with(b"ADSC\t")
        };
        if starts_frame || !open {
            if open {
                out.push(0x03);
            }
            out.push(0x02);
            open = true;
        }
        if !line.is_empty() {
            out.push(b'\n');
            out.extend_from_slice(line);
            out.push(b'\r');
        }
    }
    if open {
        out.push(0x03);
    }
    out
}

/// Compares `actual` with the golden file, or rewrites it when `LINKYMON_UPDATE_GOLDEN=1`.
pub fn assert_golden(path: &Path, actual: &str) {
    if std::env::var_os("LINKYMON_UPDATE_GOLDEN").is_some_and(|v| v == "1") {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, actual).unwrap();
        return;
    }
    let expected = std::fs::read_to_string(path).unwrap_or_else(|_| {
        panic!(
            "{} is missing: run with LINKYMON_UPDATE_GOLDEN=1 to create it",
            path.display()
        )
    });
    if expected != actual {
        let diff = expected
            .lines()
            .zip(actual.lines())
            .enumerate()
            .find(|(_, (e, a))| e != a)
            .map(|(i, (e, a))| {
                format!(
                    "first difference at line {}:\n  expected: {e}\n  actual:   {a}",
                    i + 1
                )
            })
            .unwrap_or_else(|| {
                format!(
                    "line counts differ: expected {}, actual {}",
                    expected.lines().count(),
                    actual.lines().count()
                )
            });
        panic!(
            "{} differs from the output ({diff}); LINKYMON_UPDATE_GOLDEN=1 rewrites it",
            path.display()
        );
    }
}

/// The daily logs (`*.log`) in `dir`, by name, i.e. by date; none when `dir` does not
/// exist yet.
pub fn daily_logs(dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .map(|d| d.flatten().map(|e| e.path()).collect())
        .unwrap_or_default();
    files.retain(|p| p.extension().is_some_and(|e| e == "log"));
    files.sort();
    files
}

/// The lines of every daily log in `dir`, in date order.
pub fn daily_log_lines(dir: &Path) -> Vec<String> {
    daily_logs(dir)
        .iter()
        .flat_map(|p| {
            let text = std::fs::read_to_string(p).unwrap();
            text.lines().map(str::to_owned).collect::<Vec<_>>()
        })
        .collect()
}

/// Waits until the daily logs in `dir` hold `count` lines, and returns them, or what there
/// is after `timeout`.
pub fn wait_log_lines(dir: &Path, count: usize, timeout: Duration) -> Vec<String> {
    let deadline = Instant::now() + timeout;
    loop {
        let lines = daily_log_lines(dir);
        if lines.len() >= count || Instant::now() > deadline {
            return lines;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}
