//! The TIC wire protocol: bytes in, checksum-verified frames out. Std only, no I/O, no clock.
//!
//! This module owns the byte-level grammar of the Linky "téléinformation client" and nothing
//! else: it does not know what a label means (that is [`crate::meter`]), where the bytes come
//! from (that is the source), or what time it is (a [`Frame`] carries its byte offset instead).
//!
//! ```text
//! stream   = { noise } { frame { noise } }
//! frame    = STX { group } ETX                 STX 0x02, ETX 0x03, EOT 0x04 aborts a frame
//! group    = LF label SEP [ horodate SEP ] data SEP checksum CR      LF 0x0A, CR 0x0D
//! historic : SEP = SP (0x20), no horodate, checksum over `label SP data`
//! standard : SEP = HT (0x09), checksum over `label HT [horodate HT] data HT`
//! checksum = (sum of those bytes & 0x3F) + 0x20, so it may itself be a space
//! ```
//!
//! The [`Decoder`] is a push parser: feed it bytes in any chunking and it yields the same
//! frames. The [`encode`] functions write the same grammar; the simulator and the tests use them.

mod decoder;
mod encode;

pub use decoder::{Decoder, MAX_FRAME_BYTES, MAX_GROUP_BYTES, Stats};
pub use encode::{encode_frame, encode_group};

use std::fmt;
use std::ops::Range;

/// The two TIC dialects. They differ in baud rate, separator and checksum range.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Mode {
    /// Pre-Linky and default Linky output: 1200 baud, SP separator.
    Historic,
    /// Linky "standard" output: 9600 baud, HT separator, time stamps.
    Standard,
}

impl Mode {
    /// The line rate the meter uses in this mode; used to turn byte counts into time.
    pub fn baud(self) -> u32 {
        match self {
            Mode::Historic => 1200,
            Mode::Standard => 9600,
        }
    }

    /// The byte between fields of a group.
    pub fn separator(self) -> u8 {
        match self {
            Mode::Historic => b' ',
            Mode::Standard => b'\t',
        }
    }

    /// The lowercase name used in JSON payloads and logs.
    pub fn as_str(self) -> &'static str {
        match self {
            Mode::Historic => "historic",
            Mode::Standard => "standard",
        }
    }
}

impl fmt::Display for Mode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What the decoder should assume about the dialect.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ModeHint {
    /// Decide from each group's separator (SP or HT); the first valid group of a frame
    /// fixes the frame's mode.
    #[default]
    Auto,
    /// Accept only this mode; groups of the other are counted as malformed.
    Force(Mode),
}

/// The checksum character of a group: the 6 low bits of the byte sum, made printable.
pub fn checksum(bytes: &[u8]) -> u8 {
    let sum = bytes.iter().fold(0u8, |acc, &b| acc.wrapping_add(b));
    (sum & 0x3F) + 0x20
}

/// A horodate as sent by the meter in standard mode: `SYYMMDDhhmmss`, S being the season.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Horodate<'a> {
    raw: &'a str,
}

impl<'a> Horodate<'a> {
    /// Accepts the 13-character form with a season letter in `HEhe ` and 12 digits.
    pub fn parse(raw: &'a str) -> Option<Self> {
        let bytes = raw.as_bytes();
        let valid = bytes.len() == 13
            && matches!(bytes[0], b'H' | b'E' | b'h' | b'e' | b' ')
            && bytes[1..].iter().all(u8::is_ascii_digit);
        valid.then_some(Horodate { raw })
    }

    /// The text exactly as received (it is part of the checksum).
    pub fn raw(&self) -> &'a str {
        self.raw
    }

    /// The date and time as ISO 8601. Winter time (`H`) is +01:00 and summer time (`E`) is
    /// +02:00, the legal offsets of France; without a season (the `DPMx` groups) the time
    /// is left without an offset rather than guessed.
    pub fn to_iso8601(&self) -> String {
        let d = &self.raw[1..];
        let offset = match self.raw.as_bytes()[0] {
            b'H' | b'h' => "+01:00",
            b'E' | b'e' => "+02:00",
            _ => "",
        };
        format!(
            "20{}-{}-{}T{}:{}:{}{offset}",
            &d[0..2],
            &d[2..4],
            &d[4..6],
            &d[6..8],
            &d[8..10],
            &d[10..12],
        )
    }

    /// True when the meter flags its clock as degraded (lower-case season letter).
    pub fn clock_degraded(&self) -> bool {
        matches!(self.raw.as_bytes()[0], b'h' | b'e')
    }
}

/// One checksum-verified group, borrowed from its [`Frame`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Group<'a> {
    /// The label as sent (`PAPP`, `NJOURF+1`, `SMAXSN1-1`).
    pub label: &'a str,
    /// The raw horodate of standard-mode groups that carry one.
    pub horodate: Option<&'a str>,
    /// The data field exactly as sent, padding included (`HN..`, `   PRODUCTEUR   `).
    pub value: &'a str,
}

/// Where the fields of one verified group are in its [`Frame`]'s text.
#[derive(Debug, Clone, PartialEq, Eq)]
struct GroupSpans {
    label: Range<usize>,
    horodate: Option<Range<usize>>,
    value: Range<usize>,
}

/// A frame whose groups all passed their checksum (groups that failed were dropped).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Frame {
    mode: Mode,
    /// The groups' fields one after the other, so that a frame is two allocations whatever
    /// its number of groups.
    text: String,
    groups: Vec<GroupSpans>,
    end_offset: u64,
}

impl Frame {
    /// The dialect the frame's groups were sent in.
    pub fn mode(&self) -> Mode {
        self.mode
    }

    /// How many bytes the decoder had been given when this frame ended; at the line's baud
    /// rate this tells elapsed time when there is no clock (decoding a file).
    pub fn end_offset(&self) -> u64 {
        self.end_offset
    }

    /// The frame's valid groups, in the order they were received.
    pub fn groups(&self) -> impl ExactSizeIterator<Item = Group<'_>> + '_ {
        self.groups.iter().map(|g| Group {
            label: &self.text[g.label.clone()],
            horodate: g.horodate.clone().map(|h| &self.text[h]),
            value: &self.text[g.value.clone()],
        })
    }

    /// The first valid group with this label.
    pub fn get(&self, label: &str) -> Option<Group<'_>> {
        self.groups().find(|g| g.label == label)
    }

    /// Number of valid groups.
    pub fn len(&self) -> usize {
        self.groups.len()
    }

    /// True when no group is valid; the decoder never emits such a frame.
    pub fn is_empty(&self) -> bool {
        self.groups.is_empty()
    }
}

#[cfg(test)]
mod tests;
