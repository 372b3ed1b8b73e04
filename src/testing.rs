//! Test support shared by the unit tests: frames and readings built the way the daemon sees
//! them, through the real encoder, decoder and meter model.

use crate::meter::{Meter, Reading};
use crate::tic::{Decoder, Frame, Mode, ModeHint, encode_frame};

/// The one frame that `groups` encode to, decoded.
pub fn frame(mode: Mode, groups: &[(&str, Option<&str>, &str)]) -> Frame {
    let bytes = encode_frame(mode, groups.iter().copied());
    let mut frames = Vec::new();
    Decoder::new(ModeHint::Force(mode)).push(&bytes, |f| frames.push(f));
    assert_eq!(frames.len(), 1, "the groups make one frame");
    frames.remove(0)
}

/// A historic frame from `(label, value)` pairs.
pub fn historic_frame(groups: &[(&str, &str)]) -> Frame {
    let groups: Vec<_> = groups.iter().map(|(l, v)| (*l, None, *v)).collect();
    frame(Mode::Historic, &groups)
}

/// The reading of that frame, by a fresh meter at 230 V, with every group accepted.
pub fn reading(mode: Mode, groups: &[(&str, Option<&str>, &str)]) -> Reading {
    let reading = Meter::new(230).read(&frame(mode, groups), 0.0);
    assert_eq!(reading.entries.len(), groups.len(), "a group was refused");
    reading
}

/// A historic reading from `(label, value)` pairs.
pub fn historic(groups: &[(&str, &str)]) -> Reading {
    let groups: Vec<_> = groups.iter().map(|(l, v)| (*l, None, *v)).collect();
    reading(Mode::Historic, &groups)
}

/// A single-phase historic Tempo meter (indexes of a real 2020 capture's shape) in the period
/// `ptec`, tomorrow `demain`, drawing `papp` VA at `iinst` A, with HHPHC `hhphc`.
pub fn historic_tempo(ptec: &str, demain: &str, iinst: &str, papp: &str, hhphc: &str) -> Reading {
    historic(&[
        ("ADCO", "031961234567"),
        ("OPTARIF", "BBR("),
        ("ISOUSC", "45"),
        ("BBRHCJB", "001478389"),
        ("BBRHPJB", "001012295"),
        ("BBRHCJW", "000134553"),
        ("BBRHPJW", "000213701"),
        ("BBRHCJR", "000025098"),
        ("BBRHPJR", "000006010"),
        ("PTEC", ptec),
        ("DEMAIN", demain),
        ("IINST", iinst),
        ("IMAX", "090"),
        ("PAPP", papp),
        ("HHPHC", hhphc),
        ("MOTDETAT", "000000"),
    ])
}
