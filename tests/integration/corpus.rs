//! Every real capture, decoded: golden output, every chunking, and what the corpus README
//! measured independently.

use linkymon::commands::decode::{Summary, decode};
use linkymon::tic::{Decoder, Frame, ModeHint};
use serde_json::Value;

use crate::support::{assert_golden, captures, corpus_dir, root, wire_bytes};

fn decode_capture(bytes: &[u8]) -> (String, Summary) {
    let mut out = Vec::new();
    let summary = decode(&mut &bytes[..], &mut out, ModeHint::Auto, 230).unwrap();
    (String::from_utf8(out).unwrap(), summary)
}

/// The `state` of every frame of the capture `name` (shipped or in the corpus).
fn states(name: &str) -> Vec<Value> {
    let capture = captures()
        .into_iter()
        .find(|c| c.name == name)
        .unwrap_or_else(|| panic!("no capture {name} in tests/fixtures/captures or the corpus"));
    let (json, _) = decode_capture(&wire_bytes(&capture));
    json.lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

#[test]
fn every_capture_decodes_to_its_golden_output() {
    let golden = root().join("tests/fixtures/golden");
    for capture in captures() {
        let (json, summary) = decode_capture(&wire_bytes(&capture));
        // Only shipped captures have their decoded values committed; the others' licences
        // do not allow copies, so only their counters are pinned.
        if capture.shipped {
            assert_golden(&golden.join(format!("{}.jsonl", capture.name)), &json);
        }
        assert_golden(
            &golden.join(format!("{}.summary", capture.name)),
            &format!("{summary}\n"),
        );
    }
}

/// The longest distance between two STX, i.e. the largest frame, capped at 2 KiB.
fn largest_frame(bytes: &[u8]) -> usize {
    let stx: Vec<usize> = bytes
        .iter()
        .enumerate()
        .filter(|(_, b)| **b & 0x7F == 2)
        .map(|(i, _)| i)
        .collect();
    stx.windows(2)
        .map(|w| w[1] - w[0])
        .max()
        .unwrap_or(bytes.len())
        .clamp(1, 2048)
}

#[test]
fn every_chunk_size_gives_the_same_frames_and_counters() {
    for capture in captures() {
        let mut bytes = wire_bytes(&capture);
        // The 2.4 MB dump is swept on its first 48 KB: the rest is more of the same.
        bytes.truncate(48 * 1024);
        let mut whole = Decoder::new(ModeHint::Auto);
        let mut expected: Vec<Frame> = Vec::new();
        whole.push(&bytes, |f| expected.push(f));
        for size in 1..=largest_frame(&bytes) {
            let mut decoder = Decoder::new(ModeHint::Auto);
            let mut frames = Vec::new();
            for chunk in bytes.chunks(size) {
                decoder.push(chunk, |f| frames.push(f));
            }
            assert!(
                frames == expected,
                "{}: chunks of {size} bytes give other frames",
                capture.name
            );
            assert_eq!(
                decoder.stats(),
                whole.stats(),
                "{}: chunks of {size}",
                capture.name
            );
        }
    }
}

#[test]
fn counters_agree_with_the_corpus_manifest() {
    let corpus = corpus_dir();
    let manifest = std::fs::read_to_string(corpus.join("MANIFEST.tsv")).unwrap();
    let mut lines = manifest.lines();
    let header: Vec<&str> = lines.next().unwrap().split('\t').collect();
    let column = |row: &[&str], name: &str| -> u64 {
        row[header.iter().position(|h| *h == name).unwrap()]
            .parse()
            .unwrap()
    };
    for line in lines {
        let row: Vec<&str> = line.split('\t').collect();
        let Some(capture) = captures().into_iter().find(|c| c.name == row[0]) else {
            continue;
        };
        if capture.name.ends_with(".txt") {
            continue; // the manifest counted their text form, not rebuilt frames
        }
        let (_, s) = decode_capture(&wire_bytes(&capture));
        let t = s.tic;
        // The manifest also counts the fragments before the first STX, which a receiver
        // must skip: ours can only be lower for groups, and every clean frame is found.
        assert!(
            t.groups_ok <= column(&row, "groups_valid"),
            "{}: {t:?}",
            capture.name
        );
        assert!(
            t.groups_bad_checksum <= column(&row, "groups_bad_checksum"),
            "{}: {t:?}",
            capture.name
        );
        let damaged =
            column(&row, "groups_bad_checksum") + column(&row, "groups_malformed_or_fragment");
        assert!(
            t.groups_bad_checksum + t.groups_malformed <= damaged,
            "{}: {t:?}",
            capture.name
        );
        assert!(
            t.frames_ok >= column(&row, "complete_frames_all_groups_valid"),
            "{}: {t:?}",
            capture.name
        );
    }
}

#[test]
fn a_long_historic_capture_has_monotonic_indexes_and_both_periods() {
    let states = states("hist-1p-hc-pboettch-dump.tic");
    assert_eq!(states.len(), 14_041);
    let mut last = (0, 0);
    let mut periods = std::collections::BTreeSet::new();
    for s in &states {
        let hchc = s["values"]["HCHC"].as_i64().unwrap();
        let hchp = s["values"]["HCHP"].as_i64().unwrap();
        assert!(hchc >= last.0 && hchp >= last.1, "index went down: {s}");
        last = (hchc, hchp);
        periods.insert(s["derived"]["period"].as_str().unwrap().to_owned());
    }
    assert_eq!(periods.into_iter().collect::<Vec<_>>(), ["HC", "HP"]);
}

#[test]
fn a_historic_tempo_capture_says_tomorrow_is_red() {
    let s = &states("hist-1p-tempo-pyteleinfo.tic")[0];
    assert_eq!(s["values"]["OPTARIF"], "BBR(");
    assert_eq!(s["derived"]["period"], "HCJB");
    assert_eq!(s["derived"]["tempo_today"], "blue");
    assert_eq!(s["derived"]["tempo_tomorrow"], "red");
}

#[test]
fn the_enedis_standard_frame_decodes_date_relay_and_status() {
    let s = &states("std-1p-hc-enedis-tic2websocket.tic")[0];
    assert_eq!(s["mode"], "standard");
    assert_eq!(s["values"]["DATE"], "");
    assert_eq!(s["values"]["DATE_ts"], "2017-09-15T10:16:01+02:00");
    assert_eq!(s["values"]["LTARF"], "INDEX INACTIF 2");
    assert!(
        s["values"]["PJOURF+1"]
            .as_str()
            .unwrap()
            .starts_with("00008002")
    );
    assert_eq!(s["derived"]["stge"]["cover_open"], true);
    assert_eq!(s["derived"]["stge"]["supplier_index"], 2);
}

#[test]
fn a_corrupted_pcoup_is_never_published() {
    let s = &states("std-1p-hc-enedis-tic2websocket-pcoup-invalid.tic")[0];
    assert!(s["values"].get("PCOUP").is_none());
    assert_eq!(s["values"]["PREF"], 3);
}

#[test]
fn a_white_tempo_day_in_standard_mode_is_not_an_ejp_peak() {
    let s = &states("std-3p-tempo-teleinfo-nom-complete.tic")[0];
    assert_eq!(s["derived"]["tempo_today"], "white");
    assert_eq!(s["derived"]["tempo_tomorrow"], "blue");
    assert_eq!(s["derived"]["ejp"], false);
    assert_eq!(s["derived"]["period"], "HCJW");
    assert_eq!(s["values"]["DPM1_ts"], "2020-02-14T06:00:00");
}

#[test]
fn a_producer_reports_its_injection() {
    let states = states("std-1p-prod-hc-teleinfo2mqtt.tic");
    assert!(
        states
            .iter()
            .any(|s| s["derived"]["stge"]["producer"] == true)
    );
    for s in &states {
        if let Some(sinsti) = s["values"].get("SINSTI") {
            assert_eq!(&s["derived"]["injection_w"], sinsti);
        }
    }
}
