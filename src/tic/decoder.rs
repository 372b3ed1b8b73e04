//! The push decoder: one byte at a time in, whole frames out.

use super::{Frame, GroupSpan, Horodate, Mode, ModeHint, checksum_char};

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
    group: Vec<u8>,
    frame_bytes: usize,
    frame_mode: Option<Mode>,
    /// The verified fields of the frame so far: printable ASCII, checked group by group.
    text: Vec<u8>,
    spans: Vec<GroupSpan>,
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
            group: Vec::with_capacity(MAX_GROUP_BYTES),
            frame_bytes: 0,
            frame_mode: None,
            text: Vec::new(),
            spans: Vec::new(),
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

    /// Feeds a chunk of bytes and hands every frame it completes to `on_frame`. The same as
    /// [`Decoder::push_byte`] on each byte, but a group's ordinary bytes and the noise
    /// between frames are taken a run at a time: they are most of the line.
    pub fn push(&mut self, bytes: &[u8], mut on_frame: impl FnMut(Frame)) {
        let mut rest = bytes;
        while let Some((&byte, tail)) = rest.split_first() {
            let run = self.ordinary_run(rest);
            if run > 0 {
                self.take_run(&rest[..run]);
                rest = &rest[run..];
                continue;
            }
            if let Some(frame) = self.push_byte(byte) {
                on_frame(frame);
            }
            rest = tail;
        }
    }

    /// How many of the first bytes `push_byte` would only append to the group or skip while
    /// hunting: none of them a control byte, and none reaching a length limit.
    fn ordinary_run(&self, bytes: &[u8]) -> usize {
        match self.state {
            State::Hunting => bytes
                .iter()
                .position(|&b| b & 0x7F == STX)
                .unwrap_or(bytes.len()),
            State::InGroup => {
                let room = (MAX_GROUP_BYTES.saturating_sub(self.group.len()))
                    .min(MAX_FRAME_BYTES.saturating_sub(self.frame_bytes))
                    .min(bytes.len());
                bytes[..room]
                    .iter()
                    .position(|&b| matches!(b & 0x7F, STX | ETX | EOT | LF | CR))
                    .unwrap_or(room)
            }
            State::Between | State::Overflowed => 0,
        }
    }

    /// What `push_byte` does for each byte of a run that [`Decoder::ordinary_run`] measured.
    fn take_run(&mut self, run: &[u8]) {
        self.offset += run.len() as u64;
        match self.state {
            State::Hunting => self.stats.bytes_skipped += run.len() as u64,
            _ => {
                self.frame_bytes += run.len();
                self.group.extend(run.iter().map(|&b| b & 0x7F));
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
        self.frame_bytes += 1;
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
            _ if self.frame_bytes > MAX_FRAME_BYTES => {
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
                self.group.clear();
                self.state = State::InGroup;
                None
            }
            CR => {
                match self.state {
                    State::InGroup if self.group.is_empty() => {
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
                    State::InGroup if self.group.len() < MAX_GROUP_BYTES => self.group.push(byte),
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
        self.frame_bytes = 1;
        self.frame_mode = match self.hint {
            ModeHint::Auto => None,
            ModeHint::Force(mode) => Some(mode),
        };
        self.text.clear();
        self.spans.clear();
        self.group.clear();
    }

    /// Closes the current group, if any. `complete` is false when the group was cut short
    /// (EOT, STX, overflow): its content cannot be trusted even if it looks whole.
    fn end_group(&mut self, complete: bool) {
        match self.state {
            State::InGroup if self.group.is_empty() => {}
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
        self.group.clear();
    }

    fn abort_frame(&mut self) {
        self.stats.frames_aborted += 1;
        self.state = State::Hunting;
    }

    fn finish_frame(&mut self, unterminated: bool) -> Option<Frame> {
        self.state = State::Hunting;
        let Some(mode) = self.frame_mode.filter(|_| !self.spans.is_empty()) else {
            self.stats.frames_aborted += 1;
            return None;
        };
        // The next frame is about as long: start its buffers at this one's size.
        let (text_len, spans_len) = (self.text.len(), self.spans.len());
        let text = std::mem::replace(&mut self.text, Vec::with_capacity(text_len));
        let spans = std::mem::replace(&mut self.spans, Vec::with_capacity(spans_len));
        // Every group was checked to be printable ASCII, so this never fails; checked once
        // per frame rather than per group.
        let Ok(text) = String::from_utf8(text) else {
            self.stats.frames_aborted += 1;
            return None;
        };
        self.stats.frames_ok += 1;
        if unterminated {
            self.stats.frames_unterminated += 1;
        }
        Some(Frame {
            mode,
            text,
            spans,
            end_offset: self.offset,
        })
    }

    /// Checks the group in `self.group` and, when valid, appends it to the frame.
    fn accept_group(&mut self) -> Result<(), GroupError> {
        let content = self.group.as_slice();
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
        let scan = Scan::of(body).ok_or(GroupError::Malformed)?;
        let (label, horodate, value) =
            split_fields(mode, body, &scan).ok_or(GroupError::Malformed)?;
        let sum = match mode {
            Mode::Historic => scan.sum,
            Mode::Standard => scan.sum.wrapping_add(content[len - 2]),
        };
        if checksum_char(sum) != content[len - 1] {
            return Err(GroupError::BadChecksum);
        }
        let mut push = |field: Field| {
            let start = self.text.len() as u32;
            self.text.extend_from_slice(&body[field]);
            start..self.text.len() as u32
        };
        let span = GroupSpan {
            label: push(label),
            horodate: horodate.map(&mut push),
            value: push(value),
        };
        self.spans.push(span);
        self.frame_mode = Some(mode);
        self.last_mode = Some(mode);
        Ok(())
    }
}

type Field = std::ops::Range<usize>;

/// What one pass over a group's body (without its final separator and checksum) finds:
/// everything the checks need, so the body is read once.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Scan {
    /// The byte sum, for the checksum.
    sum: u8,
    /// Where the first space is.
    first_space: Option<usize>,
    /// Where the first two HTs are.
    tabs: [Option<usize>; 2],
    /// More than two HTs.
    more_tabs: bool,
}

impl Scan {
    /// None when a byte is neither printable ASCII nor HT.
    fn of(body: &[u8]) -> Option<Scan> {
        let mut scan = Scan {
            sum: 0,
            first_space: None,
            tabs: [None; 2],
            more_tabs: false,
        };
        for (i, &b) in body.iter().enumerate() {
            scan.sum = scan.sum.wrapping_add(b);
            if b > b' ' && b < 0x7F {
                continue; // most bytes: printable, and neither separator
            }
            match b {
                b' ' => {
                    scan.first_space.get_or_insert(i);
                }
                b'\t' => match scan.tabs {
                    [None, _] => scan.tabs[0] = Some(i),
                    [Some(_), None] => scan.tabs[1] = Some(i),
                    _ => scan.more_tabs = true,
                },
                _ => return None,
            }
        }
        Some(scan)
    }
}

/// Splits a group body into label, horodate and data, checking the shape each mode allows,
/// from the [`Scan`] of that body.
fn split_fields(mode: Mode, body: &[u8], scan: &Scan) -> Option<(Field, Option<Field>, Field)> {
    let label_end = match mode {
        Mode::Historic => scan.first_space?,
        Mode::Standard => scan.tabs[0]?,
    };
    let label = 0..label_end;
    if label.is_empty() || label.len() > 12 || !body[label.clone()].iter().all(is_label_byte) {
        return None;
    }
    let rest = label_end + 1..body.len();
    match (mode, scan.tabs[1]) {
        // Historic data has a fixed width and no HT; a space inside it is kept as sent.
        (Mode::Historic, _) => {
            (scan.tabs[0].is_none() && !rest.is_empty()).then_some((label, None, rest))
        }
        (Mode::Standard, None) => (!rest.is_empty()).then_some((label, None, rest)),
        (Mode::Standard, Some(second)) => {
            let horodate = rest.start..second;
            let value = second + 1..body.len();
            let text = std::str::from_utf8(&body[horodate.clone()]).ok()?;
            let valid = Horodate::parse(text).is_some() && !scan.more_tabs;
            valid.then_some((label, Some(horodate), value))
        }
    }
}

fn is_label_byte(b: &u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'+' | b'-' | b'_')
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    /// The splitting the one-pass [`Scan`] replaced, a scan per check: the reference.
    fn reference(mode: Mode, body: &[u8]) -> Option<(Field, Option<Field>, Field)> {
        if !body
            .iter()
            .all(|&b| b == b'\t' || (0x20..0x7F).contains(&b))
        {
            return None;
        }
        let label_end = body.iter().position(|&b| b == mode.separator())?;
        let label = 0..label_end;
        if label.is_empty() || label.len() > 12 || !body[label.clone()].iter().all(is_label_byte) {
            return None;
        }
        let rest = label_end + 1..body.len();
        match mode {
            Mode::Historic => (!body[rest.clone()].contains(&b'\t') && !rest.is_empty())
                .then_some((label, None, rest)),
            Mode::Standard => match body[rest.clone()].iter().position(|&b| b == b'\t') {
                None => (!rest.is_empty()).then_some((label, None, rest)),
                Some(i) => {
                    let horodate = rest.start..rest.start + i;
                    let value = rest.start + i + 1..body.len();
                    let text = std::str::from_utf8(&body[horodate.clone()]).ok()?;
                    let valid =
                        Horodate::parse(text).is_some() && !body[value.clone()].contains(&b'\t');
                    valid.then_some((label, Some(horodate), value))
                }
            },
        }
    }

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

    proptest! {
        #[test]
        fn one_pass_splits_as_the_reference(body in body(), standard in any::<bool>()) {
            let mode = if standard { Mode::Standard } else { Mode::Historic };
            let split = Scan::of(&body).and_then(|scan| split_fields(mode, &body, &scan));
            prop_assert_eq!(split, reference(mode, &body));
            if let Some(scan) = Scan::of(&body) {
                let summed = body.iter().fold(0u8, |a, &b| a.wrapping_add(b));
                prop_assert_eq!(scan.sum, summed);
            }
        }
    }
}
