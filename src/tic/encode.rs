//! The encoder: the decoder's grammar, written out. The simulator builds its meter with it
//! and the round-trip tests check the decoder against it.

use super::{Mode, checksum};

/// Appends one group, LF to CR, with its checksum computed by the mode's rule.
/// `horodate` is only written in standard mode, where the labels that carry one need it.
pub fn encode_group(
    mode: Mode,
    label: &str,
    horodate: Option<&str>,
    value: &str,
    out: &mut Vec<u8>,
) {
    let sep = mode.separator();
    out.push(0x0A);
    let start = out.len();
    out.extend_from_slice(label.as_bytes());
    out.push(sep);
    if let (Mode::Standard, Some(h)) = (mode, horodate) {
        out.extend_from_slice(h.as_bytes());
        out.push(sep);
    }
    out.extend_from_slice(value.as_bytes());
    let summed_end = match mode {
        Mode::Historic => out.len(),
        Mode::Standard => out.len() + 1,
    };
    out.push(sep);
    let ck = checksum(&out[start..summed_end]);
    out.push(ck);
    out.push(0x0D);
}

/// A whole frame, STX to ETX, from `(label, horodate, value)` triples in emission order.
pub fn encode_frame<'a>(
    mode: Mode,
    groups: impl IntoIterator<Item = (&'a str, Option<&'a str>, &'a str)>,
) -> Vec<u8> {
    let mut out = vec![0x02];
    for (label, horodate, value) in groups {
        encode_group(mode, label, horodate, value, &mut out);
    }
    out.push(0x03);
    out
}
