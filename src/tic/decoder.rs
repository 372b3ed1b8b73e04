//! The push decoder: one byte at a time in, whole frames out.

use std::ops::Range;

use super::{Frame, GroupSpans, Horodate, Mode, ModeHint, checksum};

const STX: u8 = 0x02;
const ETX: u8 = 0x03;
const EOT: u8 = 0x04;
const LF: u8 = 0x0A;
const CR: u8 = 0x0D;

/// Longest group content (between LF and CR) accepted. The longest legal group, `PJOURF+1`
/// or `PPOINTE`, is 110 bytes; a longer run means noise swallowed a CR.
pub const MAX_GROUP_BYTES: usize = 160;

/// Longest frame accepted (STX to ETX). A three-phase producer frame with `PPOINTE` is about
/// 1.6 KB; past this the ETX was lost and the decoder resyncs on the next STX.
pub const MAX_FRAME_BYTES: usize = 4096;

/// What happened to the bytes so far. Every group that started (an LF inside a frame) ends
/// up in exactly one of `groups_ok`, `groups_bad_checksum` or `groups_malformed`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct Stats {
    /// Frames emitted (each has at least one valid group).
    pub frames_ok: u64,
    /// Frames dropped whole: EOT, over-long, or no valid group at all.
    pub frames_aborted: u64,
    /// Emitted frames that ended on the next STX because their ETX was lost.
    pub frames_unterminated: u64,
    /// Groups whose checksum matched.
    pub groups_ok: u64,
    /// Well-formed groups whose checksum did not match; their value is never emitted.
    pub groups_bad_checksum: u64,
    /// Groups that could not be read (no separator, over-long, cut by EOT, wrong mode…).
    pub groups_malformed: u64,
    /// Bytes outside any frame or group (idle-line NULs, garbage, start mid-frame).
    pub bytes_skipped: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Waiting for STX.
    Hunting,
    /// Inside a frame, between groups.
    Between,
    /// Inside a group, accumulating its content.
    InGroup,
    /// Inside a group that grew too long: wait for its end, then count it malformed.
    Overflowed,
}

enum GroupError {
    Malformed,
    BadChecksum,
}

/// The push decoder. Bytes go in through [`Decoder::push`] in any chunking; each byte is
/// masked to 7 bits first, so a port opened 8N1 decodes like one opened 7E1.
#[derive(Debug, Clone)]
pub struct Decoder {
    hint: ModeHint,
    state: State,
    /// The current group's bytes after its LF, so far.
    group_content: Vec<u8>,
    /// The current frame's length so far, STX included, to enforce [`MAX_FRAME_BYTES`].
    frame_len: usize,
    /// The mode the current frame's groups must have: forced, or fixed by its first valid group.
    frame_mode: Option<Mode>,
    /// The fields of the current frame's verified groups, and where each group's are.
    text: String,
    groups: Vec<GroupSpans>,
    /// Bytes pushed since creation.
    offset: u64,
    last_mode: Option<Mode>,
    stats: Stats,
}

impl Default for Decoder {
    fn default() -> Self {
        Decoder::new(ModeHint::Auto)
    }
}

impl Decoder {
    /// A decoder that waits for the first STX.
    pub fn new(hint: ModeHint) -> Self {
        Decoder {
            hint,
            state: State::Hunting,
            group_content: Vec::new(),
            frame_len: 0,
            frame_mode: None,
            text: String::new(),
            groups: Vec::new(),
            offset: 0,
            last_mode: None,
            stats: Stats::default(),
        }
    }

    /// Counters since creation.
    pub fn stats(&self) -> Stats {
        self.stats
    }

    /// The mode of the last valid group, once one was seen.
    pub fn mode(&self) -> Option<Mode> {
        self.last_mode
    }

    /// Total bytes pushed so far.
    pub fn offset(&self) -> u64 {
        self.offset
    }

    /// Feeds a chunk of bytes and hands every frame it completes to `on_frame`: the same as
    /// [`Decoder::push_byte`] on each byte, so any chunking gives the same frames.
    pub fn push(&mut self, bytes: &[u8], mut on_frame: impl FnMut(Frame)) {
        for &byte in bytes {
            if let Some(frame) = self.push_byte(byte) {
                on_frame(frame);
            }
        }
    }

    /// Feeds one byte; returns the frame it completes, if any.
    pub fn push_byte(&mut self, byte: u8) -> Option<Frame> {
        self.offset += 1;
        let byte = byte & 0x7F;
        if self.state == State::Hunting {
            if byte == STX {
                self.start_frame();
            } else {
                self.stats.bytes_skipped += 1;
            }
            return None;
        }
        self.frame_len += 1;
        match byte {
            STX => {
                // The ETX was lost (noise, or a tty that ate it): what we have is kept,
                // since every group in it was verified on its own.
                self.end_group(false);
                let frame = self.finish_frame(true);
                self.start_frame();
                frame
            }
            EOT => {
                self.end_group(false);
                self.abort_frame();
                None
            }
            _ if self.frame_len > MAX_FRAME_BYTES => {
                self.end_group(false);
                self.abort_frame();
                None
            }
            ETX => {
                self.end_group(true);
                self.finish_frame(false)
            }
            LF => {
                // An LF inside a group means its CR was lost (or a tty turned CRs into LFs):
                // try the group anyway, its checksum decides.
                self.end_group(true);
                self.group_content.clear();
                self.state = State::InGroup;
                None
            }
            CR => {
                match self.state {
                    State::InGroup if self.group_content.is_empty() => {
                        self.stats.groups_malformed += 1;
                        self.state = State::Between;
                    }
                    State::Between => self.stats.bytes_skipped += 1,
                    _ => self.end_group(true),
                }
                None
            }
            _ => {
                match self.state {
                    State::InGroup if self.group_content.len() < MAX_GROUP_BYTES => {
                        self.group_content.push(byte)
                    }
                    State::InGroup => self.state = State::Overflowed,
                    State::Between => self.stats.bytes_skipped += 1,
                    State::Overflowed | State::Hunting => {}
                }
                None
            }
        }
    }

    fn start_frame(&mut self) {
        self.state = State::Between;
        self.frame_len = 1;
        self.frame_mode = match self.hint {
            ModeHint::Auto => None,
            ModeHint::Force(mode) => Some(mode),
        };
        self.text.clear();
        self.groups.clear();
        self.group_content.clear();
    }

    /// Closes the current group, if any. `complete` is false when the group was cut short
    /// (EOT, STX, overflow): its content cannot be trusted even if it looks whole.
    fn end_group(&mut self, complete: bool) {
        match self.state {
            State::InGroup if self.group_content.is_empty() => {}
            State::InGroup if complete => match self.accept_group() {
                Ok(()) => self.stats.groups_ok += 1,
                Err(GroupError::BadChecksum) => self.stats.groups_bad_checksum += 1,
                Err(GroupError::Malformed) => self.stats.groups_malformed += 1,
            },
            State::InGroup | State::Overflowed => self.stats.groups_malformed += 1,
            State::Between | State::Hunting => {}
        }
        if self.state != State::Hunting {
            self.state = State::Between;
        }
        self.group_content.clear();
    }

    fn abort_frame(&mut self) {
        self.stats.frames_aborted += 1;
        self.state = State::Hunting;
    }

    fn finish_frame(&mut self, unterminated: bool) -> Option<Frame> {
        self.state = State::Hunting;
        let Some(mode) = self.frame_mode.filter(|_| !self.groups.is_empty()) else {
            self.stats.frames_aborted += 1;
            return None;
        };
        self.stats.frames_ok += 1;
        if unterminated {
            self.stats.frames_unterminated += 1;
        }
        // The next frame most likely has as many groups as this one.
        let text = String::with_capacity(self.text.len());
        let groups = Vec::with_capacity(self.groups.len());
        Some(Frame {
            mode,
            text: std::mem::replace(&mut self.text, text),
            groups: std::mem::replace(&mut self.groups, groups),
            end_offset: self.offset,
        })
    }

    /// Checks the group in `self.group_content` (its content between LF and CR) and, when valid,
    /// appends it to the frame. The shape is checked before the checksum, so a group that
    /// cannot be read counts as malformed whatever its last byte.
    fn accept_group(&mut self) -> Result<(), GroupError> {
        let content = self.group_content.as_slice();
        let len = content.len();
        if len < 4 {
            return Err(GroupError::Malformed);
        }
        let mode = match content[len - 2] {
            b' ' => Mode::Historic,
            b'\t' => Mode::Standard,
            _ => return Err(GroupError::Malformed),
        };
        if self.frame_mode.is_some_and(|m| m != mode) {
            return Err(GroupError::Malformed);
        }
        let body = &content[..len - 2];
        let (label, horodate, value) = split(mode, body).ok_or(GroupError::Malformed)?;
        // Historic mode sums the body; standard mode the body and the separator after it.
        let summed = match mode {
            Mode::Historic => body,
            Mode::Standard => &content[..len - 1],
        };
        if checksum(summed) != content[len - 1] {
            return Err(GroupError::BadChecksum);
        }
        let text = &mut self.text;
        self.groups.push(GroupSpans {
            label: keep(text, label),
            horodate: horodate.map(|h| keep(text, h)),
            value: keep(text, value),
        });
        self.frame_mode = Some(mode);
        self.last_mode = Some(mode);
        Ok(())
    }
}

/// Splits a group body (without its last separator and checksum) into label, horodate and
/// data; None when the body is not a shape the mode allows:
///
/// - every byte is printable ASCII or HT;
/// - the label is 1 to 12 of `A-Z a-z 0-9 + - _`, ended by the mode's separator;
/// - historic data is not empty and has no HT (a space inside it is kept as sent);
/// - standard data without a horodate is not empty; with one (`label HT horodate HT data`)
///   the horodate is a valid [`Horodate`] and the data, which may be empty (`DATE`), has
///   no HT.
fn split(mode: Mode, body: &[u8]) -> Option<(&str, Option<&str>, &str)> {
    if !body
        .iter()
        .all(|&b| b == b'\t' || (0x20..0x7F).contains(&b))
    {
        return None;
    }
    // Printable ASCII and HT only, so this is always valid UTF-8.
    let body = std::str::from_utf8(body).ok()?;
    let (label, rest) = body.split_once(char::from(mode.separator()))?;
    if label.is_empty() || label.len() > 12 || !label.bytes().all(is_label_byte) {
        return None;
    }
    match mode {
        Mode::Historic => (!rest.is_empty() && !rest.contains('\t')).then_some((label, None, rest)),
        Mode::Standard => match rest.split_once('\t') {
            None => (!rest.is_empty()).then_some((label, None, rest)),
            Some((horodate, value)) => {
                let valid = Horodate::parse(horodate).is_some() && !value.contains('\t');
                valid.then_some((label, Some(horodate), value))
            }
        },
    }
}

/// Appends `field` to a frame's text; where it is.
fn keep(text: &mut String, field: &str) -> Range<usize> {
    let start = text.len();
    text.push_str(field);
    start..text.len()
}

fn is_label_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'+' | b'-' | b'_')
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    /// Group bodies made mostly of the bytes that decide their shape, often shaped like a
    /// real group of either mode.
    fn body() -> impl Strategy<Value = Vec<u8>> {
        let byte = prop_oneof![
            3 => Just(b'A'),
            2 => Just(b'0'),
            3 => Just(b' '),
            3 => Just(b'\t'),
            1 => Just(b'+'),
            1 => Just(b'.'),
            1 => Just(0x7Fu8),
            1 => Just(0x01u8),
            1 => any::<u8>(),
        ];
        let label = "[A-Z0-9+_-]{0,14}";
        let value = prop::collection::vec(byte.clone(), 0..8);
        let shaped = (label, prop_oneof![Just(b' '), Just(b'\t')], value.clone())
            .prop_map(|(label, sep, value)| [label.as_bytes(), &[sep], &value].concat());
        let horodated = (label, "[EeHh ][0-9]{12}", value).prop_map(|(label, date, value)| {
            [label.as_bytes(), b"\t", date.as_bytes(), b"\t", &value].concat()
        });
        prop_oneof![prop::collection::vec(byte, 0..24), shaped, horodated]
    }

    #[test]
    fn the_shapes_of_both_modes_split() {
        assert_eq!(
            split(Mode::Historic, b"PTEC HP.."),
            Some(("PTEC", None, "HP.."))
        );
        assert_eq!(
            split(Mode::Historic, b"OPTARIF BBR( "),
            Some(("OPTARIF", None, "BBR( "))
        );
        assert_eq!(
            split(Mode::Standard, b"DATE\tE170915101601\t"),
            Some(("DATE", Some("E170915101601"), ""))
        );
        assert_eq!(
            split(Mode::Standard, b"NGTF\t     TEMPO      "),
            Some(("NGTF", None, "     TEMPO      "))
        );
        assert_eq!(split(Mode::Historic, b"PAPP "), None);
        assert_eq!(split(Mode::Historic, b"PAPP 01\t450"), None);
        assert_eq!(split(Mode::Standard, b"DATE\tX170915101601\t"), None);
        assert_eq!(split(Mode::Standard, b"DATE\tE170915101601\t1\t2"), None);
        assert_eq!(split(Mode::Historic, b"ABCDEFGHIJKLM 1"), None);
        assert_eq!(split(Mode::Historic, b"PA.P 1"), None);
        assert_eq!(split(Mode::Historic, b"PAPP 0\x7f"), None);
    }

    proptest! {
        #[test]
        fn a_split_gives_back_the_body_it_came_from(body in body(), standard in any::<bool>()) {
            let mode = if standard { Mode::Standard } else { Mode::Historic };
            if let Some((label, horodate, value)) = split(mode, &body) {
                let sep = char::from(mode.separator()).to_string();
                let mut joined = vec![label];
                joined.extend(horodate);
                joined.push(value);
                let joined = joined.join(&sep);
                prop_assert_eq!(joined.as_bytes(), body.as_slice());
                prop_assert!(label.bytes().all(is_label_byte));
            }
        }
    }
}
