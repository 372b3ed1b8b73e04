//! The `state` payload (CONTRACT §3) written by hand into one buffer.
//!
//! It is built for every published frame; going through serde cost more than the rest of the
//! policy. The output is byte for byte what `serde_json` makes of the same values (the tests
//! below hold it to that), escaping included.

use super::stge::Stge;
use super::{Derived, Reading, Value};

/// Appends the `state` object of `reading`; `ts` is left out when it is None.
pub(super) fn write_state(out: &mut String, reading: &Reading, ts: Option<&str>) {
    out.reserve(size_hint(reading, ts));
    out.push('{');
    if let Some(ts) = ts {
        out.push_str("\"ts\":");
        string(out, ts);
        out.push(',');
    }
    out.push_str("\"meter\":");
    match &reading.meter {
        Some(meter) => string(out, meter),
        None => out.push_str("null"),
    }
    out.push_str(",\"mode\":");
    string(out, reading.mode.as_str());
    out.push_str(",\"values\":{");
    for (i, entry) in reading.entries.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        string(out, &entry.label);
        out.push(':');
        match &entry.value {
            Value::Number(n) => int(out, *n),
            Value::Text(t) => string(out, t),
        }
        if let Some(ts) = &entry.timestamp {
            out.push(',');
            // `"<LABEL>_ts"`: the suffix needs no escaping.
            string(out, &entry.label);
            out.pop();
            out.push_str("_ts\":");
            string(out, ts);
        }
    }
    out.push_str("},\"derived\":");
    derived(out, &reading.derived);
    out.push('}');
}

/// Enough for the whole object in most frames, so it is written without reallocating.
fn size_hint(reading: &Reading, ts: Option<&str>) -> usize {
    let values: usize = reading
        .entries
        .iter()
        .map(|e| {
            let value = match &e.value {
                Value::Number(_) => 20,
                Value::Text(t) => t.len() + 2,
            };
            let dated = e
                .timestamp
                .as_ref()
                .map_or(0, |t| e.label.len() + t.len() + 9);
            e.label.len() + 4 + value + dated
        })
        .sum();
    let stge = if reading.derived.stge.is_some() {
        360
    } else {
        0
    };
    ts.map_or(0, str::len) + reading.meter.as_ref().map_or(0, |m| m.len()) + values + stge + 200
}

fn derived(out: &mut String, d: &Derived) {
    out.push_str("{\"injection_w\":");
    int(out, d.injection_w);
    out.push_str(",\"ejp\":");
    boolean(out, d.ejp);
    out.push_str(",\"ejp_notice\":");
    boolean(out, d.ejp_notice);
    if let Some(va) = d.consumption_va {
        out.push_str(",\"consumption_va\":");
        int(out, va);
    }
    if let Some(period) = &d.period {
        out.push_str(",\"period\":");
        string(out, period);
    }
    if let Some(colour) = d.tempo_today {
        out.push_str(",\"tempo_today\":");
        string(out, colour.as_str());
    }
    if let Some(colour) = d.tempo_tomorrow {
        out.push_str(",\"tempo_tomorrow\":");
        string(out, colour.as_str());
    }
    if let Some(stge) = &d.stge {
        out.push_str(",\"stge\":");
        status(out, stge);
    }
    out.push('}');
}

/// The fields of [`Stge`] in declaration order, `raw` skipped, colours null when absent.
fn status(out: &mut String, s: &Stge) {
    let flags = |out: &mut String, fields: &[(&str, bool)]| {
        for (name, value) in fields {
            out.push_str(name);
            boolean(out, *value);
        }
    };
    flags(out, &[("{\"dry_contact_open\":", s.dry_contact_open)]);
    out.push_str(",\"cut_off\":");
    string(out, s.cut_off.as_str());
    flags(
        out,
        &[
            (",\"cover_open\":", s.cover_open),
            (",\"over_voltage\":", s.over_voltage),
            (",\"over_reference_power\":", s.over_reference_power),
            (",\"producer\":", s.producer),
            (",\"injecting\":", s.injecting),
        ],
    );
    out.push_str(",\"supplier_index\":");
    int(out, i64::from(s.supplier_index));
    out.push_str(",\"distributor_index\":");
    int(out, i64::from(s.distributor_index));
    flags(out, &[(",\"clock_degraded\":", s.clock_degraded)]);
    for (name, colour) in [
        (",\"tempo_today\":", s.tempo_today),
        (",\"tempo_tomorrow\":", s.tempo_tomorrow),
    ] {
        out.push_str(name);
        match colour {
            Some(c) => string(out, c.as_str()),
            None => out.push_str("null"),
        }
    }
    out.push_str(",\"peak_notice\":");
    int(out, i64::from(s.peak_notice));
    out.push_str(",\"peak_active\":");
    int(out, i64::from(s.peak_active));
    out.push('}');
}

fn boolean(out: &mut String, b: bool) {
    out.push_str(if b { "true" } else { "false" });
}

fn int(out: &mut String, n: i64) {
    out.push_str(itoa::Buffer::new().format(n));
}

/// A JSON string as serde_json writes it: `"` and `\` escaped, the control characters
/// U+0000 to U+001F as `\b \t \n \f \r` or `\u00xx` (lowercase hex), everything else as is.
pub(super) fn string(out: &mut String, s: &str) {
    out.push('"');
    let mut start = 0;
    for (i, &b) in s.as_bytes().iter().enumerate() {
        if b >= 0x20 && b != b'"' && b != b'\\' {
            continue;
        }
        // Only ASCII bytes stop the scan, so `i` is on a character boundary.
        out.push_str(&s[start..i]);
        match b {
            b'"' => out.push_str("\\\""),
            b'\\' => out.push_str("\\\\"),
            0x08 => out.push_str("\\b"),
            b'\t' => out.push_str("\\t"),
            b'\n' => out.push_str("\\n"),
            0x0C => out.push_str("\\f"),
            b'\r' => out.push_str("\\r"),
            _ => {
                const HEX: &[u8; 16] = b"0123456789abcdef";
                out.push_str("\\u00");
                out.push(char::from(HEX[usize::from(b >> 4)]));
                out.push(char::from(HEX[usize::from(b & 0xF)]));
            }
        }
        start = i + 1;
    }
    out.push_str(&s[start..]);
    out.push('"');
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;
    use serde::Serialize;
    use serde::ser::{SerializeMap, Serializer};

    use super::*;
    use crate::meter::{Entry, Meter, TempoColour};
    use crate::tic::{Decoder, Mode, ModeHint};

    /// The serde implementation this writer replaced: the reference it must match.
    fn reference(reading: &Reading, ts: Option<&str>) -> String {
        struct StateMessage<'a> {
            ts: Option<&'a str>,
            reading: &'a Reading,
        }
        impl Serialize for StateMessage<'_> {
            fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                let mut map = serializer.serialize_map(None)?;
                if let Some(ts) = self.ts {
                    map.serialize_entry("ts", ts)?;
                }
                map.serialize_entry("meter", &self.reading.meter)?;
                map.serialize_entry("mode", self.reading.mode.as_str())?;
                map.serialize_entry("values", &Values(&self.reading.entries))?;
                map.serialize_entry("derived", &self.reading.derived)?;
                map.end()
            }
        }
        struct Values<'a>(&'a [Entry]);
        impl Serialize for Values<'_> {
            fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                let mut map = serializer.serialize_map(None)?;
                for entry in self.0 {
                    map.serialize_entry(&entry.label, &entry.value)?;
                    if let Some(ts) = &entry.timestamp {
                        map.serialize_entry(&format!("{}_ts", entry.label), ts)?;
                    }
                }
                map.end()
            }
        }
        serde_json::to_string(&StateMessage { ts, reading }).unwrap()
    }

    fn written(reading: &Reading, ts: Option<&str>) -> String {
        let mut out = String::new();
        write_state(&mut out, reading, ts);
        out
    }

    #[test]
    fn every_capture_reads_the_same_as_through_serde() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/captures");
        let mut readings = 0;
        for file in std::fs::read_dir(dir).unwrap() {
            let bytes = std::fs::read(file.unwrap().path()).unwrap();
            let mut decoder = Decoder::new(ModeHint::Auto);
            let mut meter = Meter::new(230);
            decoder.push(&bytes, |frame| {
                let reading = meter.read(&frame, frame.end_offset() as f64 / 120.0);
                assert_eq!(written(&reading, None), reference(&reading, None));
                let ts = Some("2026-11-28T21:04:05+01:00");
                assert_eq!(written(&reading, ts), reference(&reading, ts));
                readings += 1;
            });
        }
        assert!(readings > 150, "only {readings} readings");
    }

    #[test]
    fn every_status_register_reads_the_same_as_through_serde() {
        let mut reading = crate::testing::reading(Mode::Standard, &[("ADSC", None, "1")]);
        for raw in (0..=u32::MAX).step_by(0x0101_0101 / 7) {
            reading.derived.stge = Stge::parse(&format!("{raw:08X}"));
            assert_eq!(written(&reading, None), reference(&reading, None));
        }
    }

    fn colour() -> impl Strategy<Value = Option<TempoColour>> {
        prop_oneof![
            Just(None),
            Just(Some(TempoColour::Blue)),
            Just(Some(TempoColour::White)),
            Just(Some(TempoColour::Red)),
        ]
    }

    /// Any text, weighted towards what JSON escapes.
    fn text() -> impl Strategy<Value = String> {
        prop_oneof![
            any::<String>(),
            "[\\x00-\\x20\"\\\\/a\\x7f-\\u{a0}é€😀]{0,12}"
        ]
    }

    prop_compose! {
        fn entry()(
            label in text(),
            number in any::<Option<i64>>(),
            value in text(),
            timestamp in proptest::option::of(text()),
        ) -> Entry {
            let value = number.map_or(Value::Text(value.into()), Value::Number);
            Entry { label: label.into(), value, timestamp, spec: None }
        }
    }

    proptest! {
        #[test]
        fn any_reading_reads_the_same_as_through_serde(
            ts in proptest::option::of(text()),
            meter in proptest::option::of(text()),
            standard in any::<bool>(),
            entries in proptest::collection::vec(entry(), 0..6),
            numbers in any::<(i64, Option<i64>)>(),
            flags in any::<(bool, bool)>(),
            period in proptest::option::of(text()),
            colours in (colour(), colour()),
            stge in proptest::option::of(any::<u32>()),
        ) {
            let reading = Reading {
                meter: meter.map(Into::into),
                mode: if standard { Mode::Standard } else { Mode::Historic },
                entries,
                derived: Derived {
                    injection_w: numbers.0,
                    ejp: flags.0,
                    ejp_notice: flags.1,
                    consumption_va: numbers.1,
                    period,
                    tempo_today: colours.0,
                    tempo_tomorrow: colours.1,
                    stge: stge.and_then(|raw| Stge::parse(&format!("{raw:08X}"))),
                },
            };
            prop_assert_eq!(written(&reading, ts.as_deref()), reference(&reading, ts.as_deref()));
        }
    }
}
