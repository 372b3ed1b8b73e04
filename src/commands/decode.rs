//! `linkymon decode`: a raw capture in, one `state` JSON object per valid frame out.

use std::io::{self, BufWriter, Read, Write};
use std::path::PathBuf;

use anyhow::Context;

use crate::meter::{Meter, MeterStats};
use crate::tic::{Decoder, ModeHint, Stats};

/// Where the capture comes from.
#[derive(Debug, Clone)]
pub enum Input {
    /// Standard input (`-` or no argument).
    Stdin,
    /// A file.
    File(PathBuf),
}

/// The counters of one decode run, for the stderr summary.
#[derive(Debug, Clone, Copy)]
pub struct Summary {
    /// The decoder's counters.
    pub tic: Stats,
    /// The meter model's counters.
    pub meter: MeterStats,
}

impl std::fmt::Display for Summary {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let (t, m) = (&self.tic, &self.meter);
        write!(
            f,
            "frames ok {}, groups ok {}, checksum errors {}, malformed groups {}, bytes skipped {}, frames aborted {}, \
             frames without ETX {}, values rejected {}, index glitches held {}",
            t.frames_ok,
            t.groups_ok,
            t.groups_bad_checksum,
            t.groups_malformed,
            t.bytes_skipped,
            t.frames_aborted,
            t.frames_unterminated,
            m.values_rejected,
            m.index_held
        )
    }
}

/// Decodes `input` and writes JSON lines to `out`. Time for the index guard comes from the
/// byte count at the mode's baud rate, since a file has no clock.
pub fn decode(
    input: &mut dyn Read,
    out: &mut dyn Write,
    hint: ModeHint,
    voltage: u32,
) -> io::Result<Summary> {
    let mut decoder = Decoder::new(hint);
    let mut meter = Meter::new(voltage);
    let mut buf = vec![0u8; 64 * 1024];
    let mut result = Ok(());
    loop {
        let n = match input.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        decoder.push(&buf[..n], |frame| {
            let at = frame.end_offset() as f64 * 10.0 / f64::from(frame.mode().baud());
            let reading = meter.read(&frame, at);
            if result.is_ok() {
                result = writeln!(out, "{}", reading.to_state_json(None, None));
            }
        });
        result
            .as_ref()
            .map_err(|e| io::Error::new(e.kind(), e.to_string()))?;
    }
    out.flush()?;
    Ok(Summary {
        tic: decoder.stats(),
        meter: meter.stats(),
    })
}

/// The command: opens the input, decodes, prints the summary on stderr.
pub fn run(input: Input, hint: ModeHint) -> anyhow::Result<()> {
    let mut reader: Box<dyn Read> = match &input {
        Input::Stdin => Box::new(io::stdin().lock()),
        Input::File(path) => Box::new(
            std::fs::File::open(path)
                .with_context(|| format!("cannot read the capture {}", path.display()))?,
        ),
    };
    let stdout = io::stdout().lock();
    let mut out = BufWriter::with_capacity(64 * 1024, stdout);
    match decode(&mut reader, &mut out, hint, 230) {
        Ok(summary) => {
            eprintln!("{summary}");
            Ok(())
        }
        // A reader such as `head` closed the pipe: that is the user's choice, not an error.
        Err(e) if e.kind() == io::ErrorKind::BrokenPipe => Ok(()),
        Err(e) => Err(e).context(match &input {
            Input::Stdin => "cannot decode standard input".to_owned(),
            Input::File(path) => format!("cannot decode {}", path.display()),
        }),
    }
}
