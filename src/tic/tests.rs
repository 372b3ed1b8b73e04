use proptest::prelude::*;

use super::*;

type Owned = (String, Option<String>, String);

fn decode_all(hint: ModeHint, bytes: &[u8]) -> (Vec<Frame>, Stats) {
    let mut decoder = Decoder::new(hint);
    let mut frames = Vec::new();
    decoder.push(bytes, |f| frames.push(f));
    (frames, decoder.stats())
}

fn owned(frame: &Frame) -> Vec<Owned> {
    frame
        .groups()
        .map(|g| {
            (
                g.label.to_owned(),
                g.horodate.map(str::to_owned),
                g.value.to_owned(),
            )
        })
        .collect()
}

fn hist(groups: &[(&str, &str)]) -> Vec<u8> {
    encode_frame(Mode::Historic, groups.iter().map(|(l, v)| (*l, None, *v)))
}

#[test]
fn checksums_match_the_worked_examples_of_the_spec() {
    assert_eq!(checksum(b"ADCO 812164417227"), b'D');
    assert_eq!(checksum(b"PTEC HP.."), b' ');
    assert_eq!(checksum(b"OPTARIF BBR("), b'S');
    assert_eq!(checksum(b"VTIC\t02\t"), b'J');
    assert_eq!(checksum(b"DATE\tE170915101601\t\t"), b'>');
    assert_eq!(checksum(b"DPM1\t 200214060000\t00\t"), b'\\');
}

#[test]
fn a_historic_group_whose_checksum_is_a_space_decodes() {
    let (frames, stats) = decode_all(ModeHint::Auto, b"\x02\nPTEC HP..  \r\nIINST 002 Y\r\x03");
    assert_eq!(stats.groups_ok, 2);
    assert_eq!(frames[0].get("PTEC").map(|g| g.value), Some("HP.."));
    assert_eq!(frames[0].mode(), Mode::Historic);
}

#[test]
fn standard_date_keeps_its_empty_value_and_its_horodate() {
    let (frames, stats) = decode_all(ModeHint::Auto, b"\x02\nDATE\tE170915101601\t\t>\r\x03");
    assert_eq!(stats.groups_ok, 1);
    let date = frames[0].get("DATE").unwrap();
    assert_eq!((date.horodate, date.value), (Some("E170915101601"), ""));
}

#[test]
fn standard_values_with_spaces_and_labels_with_signs_decode() {
    let bytes = encode_frame(
        Mode::Standard,
        [
            ("NGTF", None, "     TEMPO      "),
            ("NJOURF+1", None, "00"),
            ("SMAXSN1-1", Some("H200214060000"), "01234"),
            ("DPM1", Some(" 200214060000"), "00"),
        ],
    );
    let (frames, stats) = decode_all(ModeHint::Auto, &bytes);
    assert_eq!(stats.groups_ok, 4);
    assert_eq!(frames[0].get("NGTF").unwrap().value, "     TEMPO      ");
    assert_eq!(frames[0].get("NJOURF+1").unwrap().value, "00");
    assert_eq!(
        frames[0].get("SMAXSN1-1").unwrap().horodate,
        Some("H200214060000")
    );
    assert_eq!(
        frames[0].get("DPM1").unwrap().horodate,
        Some(" 200214060000")
    );
}

#[test]
fn a_forced_mode_refuses_groups_of_the_other_mode() {
    let bytes = hist(&[("PAPP", "01450")]);
    let (frames, stats) = decode_all(ModeHint::Force(Mode::Standard), &bytes);
    assert!(frames.is_empty());
    assert_eq!((stats.groups_malformed, stats.frames_aborted), (1, 1));
    let (frames, _) = decode_all(ModeHint::Force(Mode::Historic), &bytes);
    assert_eq!(frames.len(), 1);
}

#[test]
fn a_port_opened_8n1_decodes_like_7e1() {
    let clean = hist(&[("ADCO", "021728123456"), ("PAPP", "01450")]);
    // Even parity in bit 7, as an 8N1 port delivers it.
    let with_parity: Vec<u8> = clean
        .iter()
        .map(|&b| if b.count_ones() % 2 == 1 { b | 0x80 } else { b })
        .collect();
    assert_ne!(clean, with_parity);
    assert_eq!(
        owned(&decode_all(ModeHint::Auto, &with_parity).0[0]),
        owned(&decode_all(ModeHint::Auto, &clean).0[0])
    );
}

#[test]
fn a_stream_that_starts_mid_frame_resyncs_on_the_next_stx() {
    let mut bytes = b"0123 X\r\nPAPP 01450 *\r\x03\0\0".to_vec();
    bytes.extend(hist(&[("PAPP", "01450")]));
    let (frames, stats) = decode_all(ModeHint::Auto, &bytes);
    assert_eq!(frames.len(), 1);
    assert_eq!(stats.bytes_skipped, 24);
}

#[test]
fn eot_aborts_the_frame_and_the_next_one_decodes() {
    let mut bytes = hist(&[("PAPP", "01450")]);
    bytes.pop(); // the ETX
    bytes.extend(b"\nIINST 0\x04");
    bytes.extend(hist(&[("PAPP", "01460")]));
    let (frames, stats) = decode_all(ModeHint::Auto, &bytes);
    assert_eq!(frames.len(), 1);
    assert_eq!(frames[0].get("PAPP").unwrap().value, "01460");
    assert_eq!((stats.frames_aborted, stats.groups_malformed), (1, 1));
}

#[test]
fn a_bad_checksum_drops_the_group_and_keeps_the_rest() {
    let mut bytes = hist(&[
        ("ADCO", "021728123456"),
        ("PAPP", "01450"),
        ("IINST", "007"),
    ]);
    let at = bytes.windows(5).position(|w| w == b"01450").unwrap();
    bytes[at + 1] = b'9';
    let (frames, stats) = decode_all(ModeHint::Auto, &bytes);
    assert_eq!(stats.groups_bad_checksum, 1);
    assert!(frames[0].get("PAPP").is_none());
    assert_eq!(frames[0].len(), 2);
}

#[test]
fn an_over_long_group_is_dropped_and_the_frame_goes_on() {
    let mut bytes = vec![0x02, b'\n'];
    bytes.extend(std::iter::repeat_n(b'A', MAX_GROUP_BYTES + 10));
    bytes.push(b'\r');
    bytes.extend(&hist(&[("PAPP", "01450")])[1..]);
    let (frames, stats) = decode_all(ModeHint::Auto, &bytes);
    assert_eq!(frames.len(), 1);
    assert_eq!(stats.groups_malformed, 1);
}

#[test]
fn an_over_long_frame_is_aborted_and_the_decoder_resyncs() {
    let mut bytes = vec![0x02];
    for _ in 0..MAX_FRAME_BYTES / 10 {
        encode_group(Mode::Historic, "PAPP", None, "01450", &mut bytes);
    }
    bytes.extend(hist(&[("PAPP", "01460")]));
    let (frames, stats) = decode_all(ModeHint::Auto, &bytes);
    assert_eq!(frames.len(), 1);
    assert_eq!(frames[0].get("PAPP").unwrap().value, "01460");
    assert_eq!(stats.frames_aborted, 1);
}

#[test]
fn a_lost_etx_keeps_the_verified_groups() {
    let mut bytes = hist(&[("PAPP", "01450")]);
    bytes.pop();
    bytes.extend(hist(&[("PAPP", "01460")]));
    let (frames, stats) = decode_all(ModeHint::Auto, &bytes);
    assert_eq!(frames.len(), 2);
    assert_eq!(stats.frames_unterminated, 1);
}

#[test]
fn frames_carry_their_end_offset() {
    let one = hist(&[("PAPP", "01450")]);
    let mut bytes = one.clone();
    bytes.extend(&one);
    let (frames, _) = decode_all(ModeHint::Auto, &bytes);
    assert_eq!(frames[0].end_offset(), one.len() as u64);
    assert_eq!(frames[1].end_offset(), 2 * one.len() as u64);
}

#[test]
fn horodates_become_iso_8601_with_the_season_offset() {
    assert_eq!(
        Horodate::parse("H081225223518").unwrap().to_iso8601(),
        "2008-12-25T22:35:18+01:00"
    );
    assert_eq!(
        Horodate::parse("e230701120000").unwrap().to_iso8601(),
        "2023-07-01T12:00:00+02:00"
    );
    assert!(Horodate::parse("e230701120000").unwrap().clock_degraded());
    assert_eq!(
        Horodate::parse(" 200214060000").unwrap().to_iso8601(),
        "2020-02-14T06:00:00"
    );
    assert!(Horodate::parse("X081225223518").is_none());
}

// Property tests.

fn label() -> impl Strategy<Value = String> {
    "[A-Z][A-Z0-9+-]{0,8}"
}

fn historic_group() -> impl Strategy<Value = Owned> {
    (label(), "[!-?A-~][ -?A-~]{0,15}").prop_map(|(l, v)| (l, None, v))
}

fn standard_group() -> impl Strategy<Value = Owned> {
    let horodate = prop_oneof![Just(None), "[HEhe ][0-9]{12}".prop_map(Some)];
    (label(), horodate, "[ -?A-~]{1,32}").prop_map(|(l, h, v)| (l, h, v))
}

fn frames_of(mode: Mode) -> impl Strategy<Value = Vec<Vec<Owned>>> {
    let group = match mode {
        Mode::Historic => historic_group().boxed(),
        Mode::Standard => standard_group().boxed(),
    };
    prop::collection::vec(prop::collection::vec(group, 1..12), 1..6)
}

fn encode_all(mode: Mode, frames: &[Vec<Owned>]) -> Vec<u8> {
    frames
        .iter()
        .flat_map(|f| {
            encode_frame(
                mode,
                f.iter()
                    .map(|(l, h, v)| (l.as_str(), h.as_deref(), v.as_str())),
            )
        })
        .collect()
}

fn any_mode() -> impl Strategy<Value = Mode> {
    prop_oneof![Just(Mode::Historic), Just(Mode::Standard)]
}

/// One way to damage a stream, as real lines do: the kinds of damage a group checksum is
/// specified to catch. Two damages never hit the same group (two compensating errors fool a
/// 6-bit sum), bit 6 is never flipped alone (that is what the UART's parity bit is for), and
/// values never contain `@` (0x40, whose loss leaves the sum unchanged): the meter layer's
/// width and digit checks are the second line for those, tested there.
#[derive(Debug, Clone)]
enum Damage {
    FlipBit(usize, u8),
    ParityBit(usize),
    Delete(usize),
    Eot(usize),
    Truncate(usize),
    GarbageBetweenFrames(usize, Vec<u8>),
}

impl Damage {
    fn at(&self) -> usize {
        match self {
            Damage::FlipBit(i, _)
            | Damage::ParityBit(i)
            | Damage::Delete(i)
            | Damage::Eot(i)
            | Damage::Truncate(i)
            | Damage::GarbageBetweenFrames(i, _) => *i,
        }
    }
}

fn damage() -> impl Strategy<Value = Damage> {
    let bit = prop_oneof![0u8..6, Just(7u8)];
    let garbage = prop::collection::vec(
        any::<u8>().prop_filter("no STX", |b| b & 0x7F != 0x02),
        1..20,
    );
    prop_oneof![
        (any::<usize>(), bit).prop_map(|(i, b)| Damage::FlipBit(i, b)),
        any::<usize>().prop_map(Damage::ParityBit),
        any::<usize>().prop_map(Damage::Delete),
        any::<usize>().prop_map(Damage::Eot),
        any::<usize>().prop_map(Damage::Truncate),
        (any::<usize>(), garbage).prop_map(|(i, g)| Damage::GarbageBetweenFrames(i, g)),
    ]
}

/// Applies the damages to distinct groups, last position first so earlier ones stay valid.
fn apply(bytes: &mut Vec<u8>, damages: &[Damage]) {
    let len = bytes.len();
    let group_of = |at: usize, bytes: &[u8]| bytes[..at].iter().filter(|&&b| b == b'\n').count();
    let mut damages: Vec<Damage> = damages.to_vec();
    for d in &mut damages {
        let at = d.at() % len;
        *d = match d.clone() {
            Damage::FlipBit(_, b) => Damage::FlipBit(at, b),
            Damage::ParityBit(_) => Damage::ParityBit(at),
            Damage::Delete(_) => Damage::Delete(at),
            Damage::Eot(_) => Damage::Eot(at),
            Damage::Truncate(_) => Damage::Truncate(at),
            Damage::GarbageBetweenFrames(_, g) => {
                // Move the garbage to just after the nearest ETX before `at`.
                let etx = bytes[..at]
                    .iter()
                    .rposition(|&b| b == 0x03)
                    .map_or(0, |p| p + 1);
                Damage::GarbageBetweenFrames(etx, g)
            }
        };
    }
    damages.sort_by_key(|d| std::cmp::Reverse(d.at()));
    let mut hit = std::collections::HashSet::new();
    let original = bytes.clone();
    for d in damages {
        if !hit.insert(group_of(d.at(), &original)) {
            continue;
        }
        match d {
            Damage::FlipBit(i, bit) => bytes[i] ^= 1 << bit,
            Damage::ParityBit(i) => bytes[i] |= 0x80,
            Damage::Delete(i) => {
                bytes.remove(i);
            }
            Damage::Eot(i) => bytes.insert(i, 0x04),
            Damage::Truncate(i) => bytes.truncate(i),
            Damage::GarbageBetweenFrames(i, g) => {
                let i = i.min(bytes.len());
                bytes.splice(i..i, g);
            }
        }
    }
}

proptest! {
    #[test]
    fn encoded_frames_decode_to_what_was_encoded(mode in any_mode(), frames in frames_of(Mode::Historic), std_frames in frames_of(Mode::Standard)) {
        let frames = if mode == Mode::Historic { frames } else { std_frames };
        let (decoded, stats) = decode_all(ModeHint::Auto, &encode_all(mode, &frames));
        prop_assert_eq!(decoded.iter().map(owned).collect::<Vec<_>>(), frames.clone());
        prop_assert!(decoded.iter().all(|f| f.mode() == mode));
        prop_assert_eq!(stats.groups_ok as usize, frames.iter().map(Vec::len).sum::<usize>());
        prop_assert_eq!(stats.groups_bad_checksum + stats.groups_malformed + stats.bytes_skipped + stats.frames_aborted, 0);
    }

    #[test]
    fn any_chunking_gives_the_same_frames(frames in frames_of(Mode::Standard), cuts in prop::collection::vec(any::<usize>(), 0..20)) {
        let bytes = encode_all(Mode::Standard, &frames);
        let (whole, whole_stats) = decode_all(ModeHint::Auto, &bytes);
        let mut cuts: Vec<usize> = cuts.into_iter().map(|c| c % (bytes.len() + 1)).collect();
        cuts.sort_unstable();
        let mut decoder = Decoder::default();
        let mut chunked = Vec::new();
        let mut start = 0;
        for cut in cuts.into_iter().chain([bytes.len()]) {
            decoder.push(&bytes[start..cut], |f| chunked.push(f));
            start = cut;
        }
        prop_assert_eq!(chunked, whole);
        prop_assert_eq!(decoder.stats(), whole_stats);
    }

    #[test]
    fn push_is_push_byte_on_every_byte(
        mode in any_mode(),
        frames in frames_of(Mode::Historic),
        std_frames in frames_of(Mode::Standard),
        damages in prop::collection::vec(damage(), 0..8),
        noise in prop::collection::vec(any::<u8>(), 0..600),
        filler in 0usize..5000,
        at in any::<usize>(),
    ) {
        let frames = if mode == Mode::Historic { frames } else { std_frames };
        let mut bytes = encode_all(mode, &frames);
        if !bytes.is_empty() {
            apply(&mut bytes, &damages);
        }
        let at = at % (bytes.len() + 1);
        bytes.splice(at..at, noise);
        // A long run of data bytes reaches the group and frame length limits.
        bytes.splice(at..at, std::iter::repeat_n(b'A' | 0x80, filler));
        // A frame of many groups, the ETX lost, reaches the frame length limit mid-group.
        let mut long = vec![0x02];
        for _ in 0..(4096 + filler) / 100 {
            long.push(b'\n');
            long.extend(std::iter::repeat_n(b'B', 98));
            long.push(b'\r');
        }
        bytes.splice(at..at, long);
        let mut whole = Decoder::default();
        let mut pushed = Vec::new();
        whole.push(&bytes, |f| pushed.push(f));
        let mut single = Decoder::default();
        let by_byte: Vec<Frame> = bytes.iter().filter_map(|&b| single.push_byte(b)).collect();
        prop_assert_eq!(pushed, by_byte);
        prop_assert_eq!(whole.stats(), single.stats());
        prop_assert_eq!((whole.offset(), whole.mode()), (single.offset(), single.mode()));
    }

    #[test]
    fn damaged_streams_never_yield_a_value_that_was_not_sent(
        mode in any_mode(),
        frames in frames_of(Mode::Historic),
        std_frames in frames_of(Mode::Standard),
        damages in prop::collection::vec(damage(), 1..8),
        start in any::<usize>(),
    ) {
        let frames = if mode == Mode::Historic { frames } else { std_frames };
        let mut bytes = encode_all(mode, &frames);
        apply(&mut bytes, &damages);
        let skip = start % (bytes.len() + 1);
        let bytes = &bytes[skip..];
        let (decoded, stats) = decode_all(ModeHint::Auto, bytes);
        let sent: Vec<&Owned> = frames.iter().flatten().collect();
        for group in decoded.iter().flat_map(owned) {
            prop_assert!(sent.contains(&&group), "a damaged group came out: {:?}", group);
        }
        let lfs = bytes.iter().filter(|&&b| b & 0x7F == b'\n').count() as u64;
        let stxs = bytes.iter().filter(|&&b| b & 0x7F == 0x02).count() as u64;
        prop_assert!(stats.groups_ok + stats.groups_bad_checksum + stats.groups_malformed <= lfs);
        prop_assert!(stats.frames_ok + stats.frames_aborted <= stxs);
        prop_assert!(stats.bytes_skipped <= bytes.len() as u64);
    }
}
