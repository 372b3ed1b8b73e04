//! Arbitrary bytes through the decoder and the meter model: no panic, the same frames in
//! any chunking, and counters that add up.
#![no_main]

use libfuzzer_sys::fuzz_target;
use linkymon::meter::Meter;
use linkymon::tic::{Decoder, Frame, ModeHint, Stats};

const STX: u8 = 0x02;
const LF: u8 = 0x0A;

/// Decodes `chunks` in order with one decoder.
fn decode(chunks: &[&[u8]]) -> (Vec<Frame>, Stats, u64) {
    let mut decoder = Decoder::new(ModeHint::Auto);
    let mut frames = Vec::new();
    for chunk in chunks {
        decoder.push(chunk, |frame| frames.push(frame));
    }
    (frames, decoder.stats(), decoder.offset())
}

fuzz_target!(|data: &[u8]| {
    let Some(&first) = data.first() else {
        return;
    };
    // The whole input, then the same bytes cut where the first byte says.
    let cut = data.len() * usize::from(first) / 256;
    let (frames, stats, offset) = decode(&[data]);
    let (split_frames, split_stats, split_offset) = decode(&[&data[..cut], &data[cut..]]);
    assert_eq!(frames, split_frames, "frames differ when cut at {cut}");
    assert_eq!(stats, split_stats, "stats differ when cut at {cut}");
    assert_eq!(offset, split_offset);
    assert_eq!(offset, data.len() as u64);

    // Every counted group began with an LF inside a frame; every frame with an STX.
    let count = |wanted: u8| data.iter().filter(|&&b| b & 0x7F == wanted).count() as u64;
    let groups = stats.groups_ok + stats.groups_bad_checksum + stats.groups_malformed;
    assert!(
        groups <= count(LF),
        "{groups} groups from {} LF: {stats:?}",
        count(LF)
    );
    assert!(stats.frames_ok <= count(STX), "{stats:?}");
    assert_eq!(stats.frames_ok, frames.len() as u64);
    let kept: u64 = frames.iter().map(|f| f.len() as u64).sum();
    assert!(
        kept <= stats.groups_ok,
        "{kept} groups in frames, {stats:?}"
    );

    let mut meter = Meter::new(230);
    let mut last_end = 0;
    for frame in &frames {
        assert!(!frame.is_empty());
        assert!(frame.end_offset() >= last_end && frame.end_offset() <= offset);
        last_end = frame.end_offset();
        let at = frame.end_offset() as f64 * 10.0 / f64::from(frame.mode().baud());
        let reading = meter.read(frame, at);
        assert!(reading.entries.len() <= frame.len());
        let json = reading.to_state_json(None);
        assert!(json.starts_with('{') && json.ends_with('}'), "{json}");
    }
});
