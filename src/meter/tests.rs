use super::*;

use crate::testing::{frame, historic_frame as historic};

fn ejp_frame(ptec: &str, pejp: bool, papp: &str, iinst: &str) -> Frame {
    let mut groups = vec![
        ("ADCO", "021728123456"),
        ("OPTARIF", "EJP."),
        ("ISOUSC", "45"),
        ("EJPHN", "000688322"),
        ("EJPHPM", "000080072"),
    ];
    if pejp {
        groups.push(("PEJP", "30"));
    }
    groups.extend([
        ("PTEC", ptec),
        ("IINST", iinst),
        ("IMAX", "090"),
        ("PAPP", papp),
        ("MOTDETAT", "000000"),
    ]);
    historic(&groups)
}

#[test]
fn historic_values_are_typed_and_trimmed() {
    let r = Meter::new(230).read(&ejp_frame("HN..", false, "01450", "007"), 0.0);
    assert_eq!(r.meter.as_deref(), Some("021728123456"));
    assert_eq!(r.number("EJPHN"), Some(688_322));
    assert_eq!(r.number("PAPP"), Some(1450));
    assert_eq!(r.text("PTEC"), Some("HN.."));
    assert_eq!(r.text("MOTDETAT"), Some("000000"));
    assert_eq!(r.derived.period.as_deref(), Some("HN"));
    assert!(!r.derived.ejp && !r.derived.ejp_notice);
}

#[test]
fn historic_injection_is_current_times_voltage_when_papp_is_zero() {
    let r = Meter::new(230).read(&ejp_frame("HN..", false, "00000", "013"), 0.0);
    assert_eq!(r.derived.injection_w, 2990);
    let r = Meter::new(240).read(&ejp_frame("HN..", false, "00010", "013"), 0.0);
    assert_eq!(r.derived.injection_w, 0);
}

#[test]
fn pejp_before_the_peak_is_a_notice_and_pm_is_the_peak() {
    let mut m = Meter::new(230);
    let notice = m.read(&ejp_frame("HN..", true, "01450", "007"), 0.0);
    assert!(notice.derived.ejp_notice && !notice.derived.ejp);
    let peak = m.read(&ejp_frame("PM..", true, "01450", "007"), 2.0);
    assert!(peak.derived.ejp && !peak.derived.ejp_notice);
    assert_eq!(peak.derived.period.as_deref(), Some("PM"));
}

#[test]
fn historic_tempo_colours_come_from_ptec_and_demain() {
    let r = Meter::new(230).read(
        &historic(&[
            ("ADCO", "012345678901"),
            ("OPTARIF", "BBR("),
            ("PTEC", "HPJR"),
            ("DEMAIN", "BLAN"),
        ]),
        0.0,
    );
    assert_eq!(r.derived.tempo_today, Some(TempoColour::Red));
    assert_eq!(r.derived.tempo_tomorrow, Some(TempoColour::White));
    assert_eq!(r.derived.period.as_deref(), Some("HPJR"));
}

#[test]
fn standard_dates_become_iso_timestamps_and_date_keeps_its_empty_value() {
    let f = frame(
        Mode::Standard,
        &[
            ("ADSC", None, "031664001115"),
            ("DATE", Some("E170915101601"), ""),
            ("SMAXSN", Some("H081225223518"), "00450"),
            ("NJOURF+1", None, "00"),
            ("MSG1", None, "PAS DE          MESSAGE         "),
        ],
    );
    let r = Meter::new(230).read(&f, 0.0);
    let json = r.to_state_json(None, None);
    assert!(
        json.contains(r#""DATE":"","DATE_ts":"2017-09-15T10:16:01+02:00""#),
        "{json}"
    );
    assert!(
        json.contains(r#""SMAXSN":450,"SMAXSN_ts":"2008-12-25T22:35:18+01:00""#),
        "{json}"
    );
    assert!(json.contains(r#""NJOURF+1":0"#), "{json}");
    assert!(
        json.contains(r#""MSG1":"PAS DE          MESSAGE""#),
        "{json}"
    );
    assert!(
        json.starts_with(r#"{"meter":"031664001115","mode":"standard""#),
        "{json}"
    );
}

#[test]
fn standard_mobile_peak_without_tempo_colour_is_ejp() {
    let notice = frame(
        Mode::Standard,
        &[("ADSC", None, "031664001115"), ("STGE", None, "103A0001")],
    );
    let r = Meter::new(230).read(&notice, 0.0);
    assert!(r.derived.ejp_notice && !r.derived.ejp);
    let peak = frame(
        Mode::Standard,
        &[("ADSC", None, "031664001115"), ("STGE", None, "403A0001")],
    );
    let r = Meter::new(230).read(&peak, 0.0);
    assert!(r.derived.ejp && !r.derived.ejp_notice);
}

#[test]
fn standard_tempo_white_day_is_not_an_ejp_peak() {
    let f = frame(
        Mode::Standard,
        &[
            ("ADSC", None, "031664001115"),
            ("NGTF", None, "     TEMPO      "),
            ("NTARF", None, "03"),
            ("STGE", None, "463A0800"),
        ],
    );
    let r = Meter::new(230).read(&f, 0.0);
    assert!(!r.derived.ejp);
    assert_eq!(r.derived.tempo_today, Some(TempoColour::White));
    assert_eq!(r.derived.tempo_tomorrow, Some(TempoColour::Blue));
    assert_eq!(r.derived.period.as_deref(), Some("HCJW"));
}

#[test]
fn standard_injection_is_sinsti() {
    let f = frame(
        Mode::Standard,
        &[
            ("ADSC", None, "031664001115"),
            ("SINSTS", None, "00000"),
            ("SINSTI", None, "01234"),
        ],
    );
    let r = Meter::new(230).read(&f, 0.0);
    assert_eq!(r.derived.injection_w, 1234);
    assert_eq!(r.derived.consumption_va, Some(0));
}

#[test]
fn a_numeric_label_with_letters_is_rejected_not_published() {
    let mut m = Meter::new(230);
    let r = m.read(
        &historic(&[("ADCO", "012345678901"), ("PAPP", "0A450")]),
        0.0,
    );
    assert_eq!(r.get("PAPP"), None);
    assert_eq!(m.stats().values_rejected, 1);
}

#[test]
fn the_meter_id_carries_over_frames_that_lost_it() {
    let mut m = Meter::new(230);
    m.read(
        &historic(&[("ADCO", "012345678901"), ("PAPP", "00450")]),
        0.0,
    );
    let r = m.read(&historic(&[("PAPP", "00460")]), 2.0);
    assert_eq!(r.meter.as_deref(), Some("012345678901"));
}

#[test]
fn an_index_glitch_is_held_using_the_subscribed_power() {
    let mut m = Meter::new(230);
    let at = |i: i64| {
        historic(&[
            ("ADCO", "012345678901"),
            ("ISOUSC", "30"),
            ("BASE", &format!("{:09}", 1_000_000 + i)),
        ])
    };
    assert_eq!(m.read(&at(0), 0.0).number("BASE"), Some(1_000_000));
    // 30 A × 230 V for 2 s allows about 4 Wh plus slack: +100 Wh is a glitch.
    assert_eq!(m.read(&at(100), 2.0).number("BASE"), None);
    assert_eq!(m.read(&at(3), 4.0).number("BASE"), Some(1_000_003));
    assert_eq!(m.stats().index_held, 1);
}

#[test]
fn a_value_of_the_wrong_width_is_rejected() {
    let mut m = Meter::new(230);
    // `HCHC` is 9 digits: a lost digit that the checksum missed must not become an index.
    let r = m.read(
        &historic(&[
            ("ADCO", "012345678901"),
            ("HCHC", "01479509"),
            ("PTEC", "HC."),
        ]),
        0.0,
    );
    assert_eq!((r.get("HCHC"), r.get("PTEC")), (None, None));
    assert_eq!(m.stats().values_rejected, 2);
}

#[test]
fn a_repeated_text_reads_the_same_and_a_changed_one_is_new() {
    let mut meter = Meter::new(230);
    let first = meter.read(&ejp_frame("HN..", false, "01450", "007"), 0.0);
    let second = meter.read(&ejp_frame("HN..", false, "01450", "007"), 1.0);
    let peak = meter.read(&ejp_frame("PM..", false, "01450", "007"), 2.0);
    assert_eq!(first.text("PTEC"), Some("HN.."));
    assert_eq!(second.text("PTEC"), first.text("PTEC"));
    assert_eq!(peak.text("PTEC"), Some("PM.."));
    assert_eq!(peak.text("ADCO"), first.text("ADCO"));
    assert_eq!(peak.meter.as_deref(), Some("021728123456"));
    // Labels the table does not know keep their own name.
    let odd = meter.read(
        &historic(&[("ADCO", "021728123456"), ("TENSION", "231")]),
        3.0,
    );
    assert_eq!(odd.entries[1].label, "TENSION");
    assert_eq!(odd.text("TENSION"), Some("231"));
    assert_eq!(first.entries[0].label, "ADCO");
}

#[test]
fn a_repeated_label_keeps_its_first_value() {
    let r = Meter::new(230).read(
        &historic(&[
            ("ADCO", "012345678901"),
            ("PAPP", "00450"),
            ("PAPP", "00460"),
        ]),
        0.0,
    );
    assert_eq!(r.number("PAPP"), Some(450));
    assert_eq!(r.entries.len(), 2);
}

#[test]
fn the_state_payload_is_the_contract_example() {
    let r = Meter::new(230).read(&ejp_frame("HN..", false, "00000", "013"), 0.0);
    assert_eq!(
        r.to_state_json(Some("2026-11-28T21:04:05+01:00"), None),
        concat!(
            r#"{"ts":"2026-11-28T21:04:05+01:00","meter":"021728123456","mode":"historic","#,
            r#""values":{"ADCO":"021728123456","OPTARIF":"EJP.","ISOUSC":45,"EJPHN":688322,"#,
            r#""EJPHPM":80072,"PTEC":"HN..","IINST":13,"IMAX":90,"PAPP":0,"MOTDETAT":"000000"},"#,
            r#""derived":{"injection_w":2990,"ejp":false,"ejp_notice":false,"#,
            r#""consumption_va":0,"period":"HN","energy_import_wh":768394,"#,
            r#""energy":{"hn":688322,"pm":80072}}}"#,
        )
    );
}

#[test]
fn the_state_payload_carries_the_status_register_field_by_field() {
    let f = frame(
        Mode::Standard,
        &[("ADSC", None, "031664001115"), ("STGE", None, "463A0800")],
    );
    let json = Meter::new(230).read(&f, 0.0).to_state_json(None, None);
    assert!(
        json.ends_with(concat!(
            r#""stge":{"dry_contact_open":false,"cut_off":"closed","cover_open":false,"#,
            r#""over_voltage":false,"over_reference_power":false,"producer":false,"#,
            r#""injecting":false,"supplier_index":3,"distributor_index":1,"#,
            r#""clock_degraded":false,"tempo_today":"white","tempo_tomorrow":"blue","#,
            r#""peak_notice":0,"peak_active":1}}}"#,
        )),
        "{json}"
    );
}

#[test]
fn the_state_payload_escapes_what_json_requires() {
    let odd = "say \"hi\" \\ \t\n\u{1}é";
    let reading = Reading {
        meter: Some(odd.to_owned()),
        mode: Mode::Standard,
        entries: vec![Entry {
            label: odd.to_owned(),
            value: Value::Text(odd.to_owned()),
            timestamp: Some(odd.to_owned()),
        }],
        derived: Derived::default(),
    };
    let json = reading.to_state_json(Some(odd), None);
    let parsed: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!(parsed["ts"], odd);
    assert_eq!(parsed["meter"], odd);
    assert_eq!(parsed["values"][odd], odd);
    assert_eq!(parsed["values"][format!("{odd}_ts")], odd);
    assert!(json.contains(r#"say \"hi\" \\ \t\n\u0001é"#), "{json}");
}

// ---------------------------------------------------------------------------------------------
// Energy named by meaning, and the calendar (issue 19).

/// A standard-mode frame of an EJP meter with the serial of `ejp_frame`: `hn` and `pm` on
/// supplier indexes 1 and 2, `peak` saying whether the mobile peak is on (STGE bits 30–31).
fn standard_ejp_frame(date: &str, hn: &str, pm: &str, peak: bool) -> Frame {
    let east = format!(
        "{:09}",
        hn.parse::<i64>().unwrap() + pm.parse::<i64>().unwrap()
    );
    let (ltarf, ntarf, stge) = if peak {
        ("POINTE MOBILE", "02", "403A0401")
    } else {
        ("HEURES NORMALES", "01", "003A0001")
    };
    frame(
        Mode::Standard,
        &[
            ("ADSC", None, "021728123456"),
            ("DATE", Some(date), ""),
            ("NGTF", None, "      EJP       "),
            ("LTARF", None, ltarf),
            ("EAST", None, &east),
            ("EASF01", None, hn),
            ("EASF02", None, pm),
            ("EASF03", None, "000000000"),
            ("STGE", None, stge),
            ("NTARF", None, ntarf),
            ("NJOURF", None, "00"),
            ("NJOURF+1", None, "00"),
            ("PJOURF+1", None, "00004001 NONUTILE"),
        ],
    )
}

#[test]
fn a_switch_from_historic_to_standard_keeps_the_energy_names_and_values() {
    let mut m = Meter::new(230);
    let before = m.read(&ejp_frame("HN..", false, "01450", "007"), 0.0);
    let d = &before.derived;
    assert_eq!(d.energy_import_wh, Some(688_322 + 80_072));
    assert_eq!(d.energy.get("hn"), Some(&688_322));
    assert_eq!(d.energy.get("pm"), Some(&80_072));
    let after = m.read(
        &standard_ejp_frame("H261202101500", "000688330", "000080072", false),
        2.0,
    );
    let d = &after.derived;
    assert_eq!(after.meter, before.meter);
    assert_eq!(d.energy_import_wh, Some(688_330 + 80_072));
    // Learnt from the historic labels: no peak hours seen yet in standard mode.
    assert_eq!(d.energy.get("hn"), Some(&688_330));
    assert_eq!(d.energy.get("pm"), Some(&80_072));
    assert_eq!(d.energy.len(), 2, "{:?}", d.energy);
    assert_eq!(m.stats().index_held, 0);
}

#[test]
fn standard_mode_learns_which_index_counts_which_period_and_remembers_it() {
    let hc = |ltarf: &str, ntarf: &str| {
        frame(
            Mode::Standard,
            &[
                ("ADSC", None, "061964123456"),
                ("NGTF", None, "H PLEINE/CREUSE "),
                ("LTARF", None, ltarf),
                ("EAST", None, "080490250"),
                ("EASF01", None, "041733418"),
                ("EASF02", None, "038756832"),
                ("NTARF", None, ntarf),
            ],
        )
    };
    let mut m = Meter::new(230);
    let r = m.read(&hc(" HEURE  PLEINE  ", "02"), 0.0);
    assert_eq!(r.derived.energy_import_wh, Some(80_490_250));
    assert_eq!(
        r.derived.energy.iter().collect::<Vec<_>>(),
        [(&"hp", &38_756_832)],
        "index 1 is not known yet"
    );
    assert!(m.memory_mut().is_dirty());
    let saved = m.memory_mut().to_json();
    // A restart with what was saved, now in off-peak hours.
    let mut m = Meter::new(230).with_memory(Memory::from_json(&saved));
    let r = m.read(&hc(" HEURE  CREUSE  ", "01"), 0.0);
    assert_eq!(r.derived.energy.get("hc"), Some(&41_733_418));
    assert_eq!(r.derived.energy.get("hp"), Some(&38_756_832));
}

#[test]
fn the_historic_total_waits_for_every_index_of_the_option_and_never_drops() {
    let mut m = Meter::new(230);
    let partial = historic(&[
        ("ADCO", "021728123456"),
        ("OPTARIF", "EJP."),
        ("EJPHN", "000688322"),
    ]);
    assert_eq!(m.read(&partial, 0.0).derived.energy_import_wh, None);
    let r = m.read(&ejp_frame("HN..", false, "01450", "007"), 1.0);
    assert_eq!(r.derived.energy_import_wh, Some(768_394));
    // EJPHPM lost to a checksum: the total keeps its last value.
    assert_eq!(
        m.read(&partial, 2.0).derived.energy_import_wh,
        Some(768_394)
    );
}

#[test]
fn the_next_change_of_the_corpus_hc_capture_is_the_afternoon_off_peak_hours() {
    let bytes =
        std::fs::read("../shared/tic/corpus/std-1p-prod-hc-teleinfo2mqtt.tic").unwrap_or_default();
    if bytes.is_empty() {
        return; // the corpus lives beside the repository, not in it
    }
    let mut m = Meter::new(230);
    let mut last = None;
    crate::tic::Decoder::new(crate::tic::ModeHint::Auto)
        .push(&bytes, |f| last = Some(m.read(&f, 0.0)));
    let r = last.unwrap();
    // 13:43 on a weekday in peak hours (NTARF 02): PJOURF+1 has off-peak hours from 14:40,
    // and today's profile is the same (NJOURF = NJOURF+1).
    let next = r.derived.next_change.clone().unwrap();
    assert_eq!(next.at, "2025-03-07T14:40:00+01:00");
    assert_eq!(next.period, Some("hc"));
    let state: serde_json::Value = serde_json::from_str(&r.to_state_json(None, None)).unwrap();
    assert_eq!(
        state["derived"]["next_change"],
        serde_json::json!({"at": "2025-03-07T14:40:00+01:00", "period": "hc"})
    );
}

#[test]
fn an_ejp_peak_announced_for_tomorrow_is_the_next_change() {
    let mut m = Meter::new(230);
    let mut groups: Vec<(&str, Option<&str>, &str)> = vec![
        ("ADSC", None, "021728123456"),
        ("DATE", Some("H261202101500"), ""),
        ("NGTF", None, "      EJP       "),
        ("LTARF", None, "HEURES NORMALES"),
        ("EAST", None, "000768402"),
        ("EASF01", None, "000688330"),
        ("EASF02", None, "000080072"),
        ("STGE", None, "003A0001"),
        ("DPM1", Some(" 261203070000"), "00"),
        ("FPM1", Some(" 261204010000"), "00"),
        ("NTARF", None, "01"),
        ("NJOURF", None, "00"),
        ("NJOURF+1", None, "00"),
        ("PJOURF+1", None, "00004001 NONUTILE"),
    ];
    let r = m.read(&frame(Mode::Standard, &groups), 0.0);
    assert_eq!(
        r.derived.next_change,
        Some(NextChange {
            at: "2026-12-03T07:00:00+01:00".into(),
            period: Some("pm")
        })
    );
    groups.retain(|g| !g.0.ends_with("PM1"));
    let r = m.read(&frame(Mode::Standard, &groups), 2.0);
    assert_eq!(
        r.derived.next_change, None,
        "no change in an EJP normal day"
    );
}

#[test]
fn a_frame_missing_a_group_of_the_calendar_says_nothing_of_the_next_change() {
    let full = standard_ejp_frame("H261202101500", "000688330", "000080072", false);
    let r = Meter::new(230).read(&full, 0.0);
    assert!(r.derived.calendar_read);
    let groups: Vec<_> = full
        .groups()
        .filter(|g| g.label != "NJOURF")
        .map(|g| {
            (
                g.label.to_owned(),
                g.horodate.map(str::to_owned),
                g.value.to_owned(),
            )
        })
        .collect();
    let groups: Vec<(&str, Option<&str>, &str)> = groups
        .iter()
        .map(|(l, h, v)| (l.as_str(), h.as_deref(), v.as_str()))
        .collect();
    let r = Meter::new(230).read(&frame(Mode::Standard, &groups), 0.0);
    assert!(!r.derived.calendar_read);
    assert_eq!(r.derived.next_change, None);
}
