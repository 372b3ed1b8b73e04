//! The publish policy: which messages a reading turns into, and when.
//!
//! A changed text or state (PTEC, `ejp`, `ejp_notice`, a Tempo colour) goes out at once;
//! numeric values at most once per interval; `state` once per interval, or at once when a state
//! changed. With an interval of 0 every frame publishes everything. Time is given, never read.
//!
//! A label that leaves the frames (`ADPS` after an overload, `PEJP` after an EJP notice,
//! `ADIR1-3`…) is cleared: after [`ABSENT_FRAMES`] consecutive frames without it, its retained
//! topic gets one empty retained message, which deletes the retained value at the broker (a
//! late subscriber gets nothing) and which a live subscriber (mosquitto_sub, Node-RED) sees as
//! an empty payload; Home Assistant's label entities render it as unknown.

use std::collections::HashMap;

use super::Message;
use super::topics::Topics;
use crate::meter::energy::PERIODS;
use crate::meter::{Reading, Value};

/// Per-meter memory of what was last published.
#[derive(Debug, Clone)]
pub struct Policy {
    topics: Topics,
    state_topic: String,
    interval_s: f64,
    /// The retained topics of the TIC labels, by label.
    labels: HashMap<String, Option<Slot>>,
    /// The contract's leaves, in [`LEAVES`] order.
    leaves: [Option<Slot>; LEAVES.len()],
    scratch: String,
    last_state_at: Option<f64>,
    last_flags: Option<Flags>,
    /// The `seq` of the next `state` message.
    next_seq: u64,
    /// How many readings this policy has seen: a label slot remembers the last one that
    /// carried its label.
    frames: u64,
    /// Tomorrow's Tempo colour as last seen, and the `ts` of the reading that first said it.
    tempo_tomorrow: Option<TempoTomorrow>,
}

/// `<base>/<id>/tempo_tomorrow`: the colour and when it was announced.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
struct TempoTomorrow {
    /// `blue`, `white`, `red`, or `null` while not announced.
    colour: Option<&'static str>,
    /// The `ts` of the first reading that gave this colour; absent with no colour.
    #[serde(skip_serializing_if = "Option::is_none")]
    announced: Option<String>,
}

/// Consecutive frames a published label must be missing from before its retained topic is
/// cleared.
///
/// Not 1: the decoder drops a group with a bad checksum, so a frame can lack a label the
/// meter did send; one bad group in each of 3 frames in a row on the same label is rare
/// enough (a line losing that many groups publishes little that is right anyway), while
/// 3 frames is still only a few seconds (a historic frame is about 1.5 s, a standard one 2 s),
/// so an ended overload is cleared quickly. Counting frames rather than seconds keeps a slow
/// replay or a long gap on the line from clearing a label no frame has yet said is gone.
pub const ABSENT_FRAMES: u64 = 3;

/// The retained leaves of the contract that the policy publishes.
const LEAVES: [&str; 19] = [
    "injection",
    "power",
    "ejp",
    "ejp_notice",
    "energy_import",
    "energy_export",
    "next_change",
    "tempo_tomorrow",
    // `energy/<period>`, in `meter::energy::PERIODS` order from `ENERGY`.
    "energy/base",
    "energy/hc",
    "energy/hp",
    "energy/hn",
    "energy/pm",
    "energy/hcjb",
    "energy/hpjb",
    "energy/hcjw",
    "energy/hpjw",
    "energy/hcjr",
    "energy/hpjr",
];
const INJECTION: usize = 0;
const POWER: usize = 1;
const EJP: usize = 2;
const EJP_NOTICE: usize = 3;
const ENERGY_IMPORT: usize = 4;
const ENERGY_EXPORT: usize = 5;
const NEXT_CHANGE: usize = 6;
const TEMPO_TOMORROW: usize = 7;
const ENERGY: usize = 8;

/// What was last published on one retained topic.
#[derive(Debug, Clone)]
struct Slot {
    topic: String,
    payload: String,
    at: f64,
    /// The reading (counted by [`Policy::frames`]) that last carried this label.
    seen: u64,
    /// Forgotten at a reconnection: sent again with its next reading whatever its value,
    /// while its absence keeps counting (a label that left before the reconnection is still
    /// cleared, on a broker that may have kept it).
    resend: bool,
}

/// A retained topic: a TIC label, or a leaf of the contract (`ejp`, `injection`…).
#[derive(Debug, Clone, Copy)]
enum Key<'a> {
    /// A TIC label, known to the table or not.
    Label(&'a str),
    /// A leaf, by its position in [`LEAVES`].
    Leaf(usize),
}

/// A retained payload before it is formatted.
#[derive(Debug, Clone, Copy)]
enum Payload<'a> {
    Number(i64),
    Text(&'a str),
}

impl<'a> From<&'a Value> for Payload<'a> {
    fn from(value: &'a Value) -> Self {
        match value {
            Value::Number(n) => Payload::Number(*n),
            Value::Text(t) => Payload::Text(t),
        }
    }
}

impl Payload<'_> {
    /// The payload as `Display` would write it.
    fn write(self, out: &mut String) {
        match self {
            Payload::Number(n) => out.push_str(itoa::Buffer::new().format(n)),
            Payload::Text(t) => out.push_str(t),
        }
    }
}

/// The states whose change is news at once.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Flags {
    ejp: bool,
    ejp_notice: bool,
    period: Option<String>,
    tempo: (Option<&'static str>, Option<&'static str>),
}

impl Flags {
    fn of(r: &Reading) -> Self {
        let d = &r.derived;
        Flags {
            ejp: d.ejp,
            ejp_notice: d.ejp_notice,
            period: d.period.clone(),
            tempo: Self::tempo(r),
        }
    }

    fn tempo(r: &Reading) -> (Option<&'static str>, Option<&'static str>) {
        let d = &r.derived;
        (
            d.tempo_today.map(|c| c.as_str()),
            d.tempo_tomorrow.map(|c| c.as_str()),
        )
    }

    /// Equal to `Flags::of(r)`, without building it.
    fn matches(&self, r: &Reading) -> bool {
        let d = &r.derived;
        self.ejp == d.ejp
            && self.ejp_notice == d.ejp_notice
            && self.period == d.period
            && self.tempo == Self::tempo(r)
    }
}

/// The health counters published on `diag` every minute.
#[derive(Debug, Clone, Copy)]
pub struct Diag {
    /// The decoder's counters.
    pub tic: crate::tic::Stats,
    /// The meter model's counters.
    pub meter: crate::meter::MeterStats,
    /// The line's mode (`historic` or `standard`).
    pub mode: &'static str,
    /// Seconds since the daemon started.
    pub uptime_s: u64,
    /// Frames the publisher could not take in time (a slow or absent broker).
    pub frames_not_published: u64,
    /// The spool of `state` messages waiting for the broker.
    pub spool: super::spool::SpoolStats,
}

/// Values estimated across frames, which the meter does not send.
#[derive(Debug, Clone, Copy, Default)]
pub struct Estimates {
    /// Active power estimated from the indexes, once known.
    pub power_w: Option<i64>,
}

fn on_off(b: bool) -> &'static str {
    if b { "ON" } else { "OFF" }
}

impl Policy {
    /// A policy for the meter whose topics are `topics`; `interval_s` is `publish.interval`.
    pub fn new(topics: Topics, interval_s: f64) -> Self {
        Policy {
            state_topic: topics.state(),
            topics,
            interval_s,
            labels: HashMap::new(),
            leaves: Default::default(),
            scratch: String::new(),
            last_state_at: None,
            last_flags: None,
            next_seq: 0,
            frames: 0,
            tempo_tomorrow: None,
        }
    }

    /// Numbers the `state` messages from `seq` on.
    pub fn with_first_seq(mut self, seq: u64) -> Self {
        self.next_seq = seq;
        self
    }

    /// The `seq` the next `state` message will carry.
    pub fn next_seq(&self) -> u64 {
        self.next_seq
    }

    /// The meter's topics.
    pub fn topics(&self) -> &Topics {
        &self.topics
    }

    /// The messages for a reading seen at `now` seconds, its frame's end stamped `ts`.
    pub fn on_reading(
        &mut self,
        reading: &Reading,
        ts: &str,
        now: f64,
        estimates: Estimates,
    ) -> Vec<Message> {
        let mut out = Vec::with_capacity(reading.entries.len() + 6);
        self.frames += 1;
        let flags_changed = !self.last_flags.as_ref().is_some_and(|f| f.matches(reading));
        let state_due = self
            .last_state_at
            .is_none_or(|t| now - t >= self.interval_s);
        if flags_changed || state_due {
            out.push(Message::new(
                self.state_topic.clone(),
                reading.to_state_json(Some(ts), Some(self.next_seq)),
                false,
                1,
            ));
            self.next_seq += 1;
            self.last_state_at = Some(now);
        }
        for entry in &reading.entries {
            let urgent = matches!(entry.value, Value::Text(_));
            let key = Key::Label(&entry.label);
            self.offer(&mut out, key, (&entry.value).into(), urgent, now, 0);
        }
        self.clear_absent(&mut out);
        let d = &reading.derived;
        let injection = Payload::Number(d.injection_w);
        self.offer(&mut out, Key::Leaf(INJECTION), injection, false, now, 0);
        if let Some(w) = estimates.power_w {
            self.offer(
                &mut out,
                Key::Leaf(POWER),
                Payload::Number(w),
                false,
                now,
                0,
            );
        }
        let ejp = Payload::Text(on_off(d.ejp));
        self.offer(&mut out, Key::Leaf(EJP), ejp, true, now, 1);
        let notice = Payload::Text(on_off(d.ejp_notice));
        self.offer(&mut out, Key::Leaf(EJP_NOTICE), notice, true, now, 1);
        self.offer_energy(&mut out, reading, ts, now);
        if flags_changed {
            self.last_flags = Some(Flags::of(reading));
        }
        out
    }

    /// The energy leaves (`energy_import`, `energy_export`, `energy/<period>`: numbers, at
    /// most once per interval like the labels), `next_change` and `tempo_tomorrow` (JSON, on
    /// change, QoS 1 like `ejp`).
    fn offer_energy(&mut self, out: &mut Vec<Message>, reading: &Reading, ts: &str, now: f64) {
        let d = &reading.derived;
        for (leaf, wh) in [
            (ENERGY_IMPORT, d.energy_import_wh),
            (ENERGY_EXPORT, d.energy_export_wh),
        ] {
            if let Some(wh) = wh {
                self.offer(out, Key::Leaf(leaf), Payload::Number(wh), false, now, 0);
            }
        }
        for (period, wh) in &d.energy {
            if let Some(i) = PERIODS.iter().position(|p| p == period) {
                let key = Key::Leaf(ENERGY + i);
                self.offer(out, key, Payload::Number(*wh), false, now, 0);
            }
        }
        if let Some(next) = &d.next_change {
            // Strings only: serde_json cannot fail on them.
            let json = serde_json::to_string(next).expect("next_change serializes");
            self.offer(
                out,
                Key::Leaf(NEXT_CHANGE),
                Payload::Text(&json),
                true,
                now,
                1,
            );
        } else if d.calendar_read {
            // The clock and the schedule were read, and no change comes before the end of
            // tomorrow (a Base contract, an EJP peak over): a change announced before is
            // past, so the retained one is cleared (empty), which Home Assistant shows as
            // unknown. Never published, it is not cleared.
            if self.leaves[NEXT_CHANGE]
                .as_ref()
                .is_some_and(|s| !s.payload.is_empty())
            {
                self.offer(out, Key::Leaf(NEXT_CHANGE), Payload::Text(""), true, now, 1);
            }
        }
        // Only a frame with the group that tells (`DEMAIN`, `STGE`) says the colour: one that
        // lost it to its checksum must not make the colour look announced anew.
        let tomorrow_said = match reading.mode {
            crate::tic::Mode::Historic => reading.get("DEMAIN").is_some(),
            crate::tic::Mode::Standard => reading.get("STGE").is_some(),
        };
        if d.tempo_today.is_some() && tomorrow_said {
            let colour = d.tempo_tomorrow.map(|c| c.as_str());
            if self
                .tempo_tomorrow
                .as_ref()
                .is_none_or(|t| t.colour != colour)
            {
                self.tempo_tomorrow = Some(TempoTomorrow {
                    colour,
                    announced: colour.map(|_| ts.to_owned()),
                });
            }
            let json = serde_json::to_string(&self.tempo_tomorrow).expect("strings serialize");
            self.offer(
                out,
                Key::Leaf(TEMPO_TOMORROW),
                Payload::Text(&json),
                true,
                now,
                1,
            );
        }
    }

    /// Queues one empty retained message for each label missing from the last
    /// [`ABSENT_FRAMES`] readings, and forgets it, so that it is published again as new if it
    /// comes back. Only labels this policy published are cleared; the leaves never are.
    /// They go out in topic order, whatever the map's.
    fn clear_absent(&mut self, out: &mut Vec<Message>) {
        let frames = self.frames;
        let first = out.len();
        self.labels.retain(|_, slot| match slot {
            Some(s) if frames - s.seen >= ABSENT_FRAMES => {
                // A label's topic: retained, QoS 0, as when it was published.
                out.push(Message::new(std::mem::take(&mut s.topic), "", true, 0));
                false
            }
            Some(_) => true,
            None => false,
        });
        out[first..].sort_unstable_by(|a, b| a.topic.cmp(&b.topic));
    }

    /// Queues a retained value when it is new, changed and urgent, or changed and its
    /// interval has passed.
    fn offer(
        &mut self,
        out: &mut Vec<Message>,
        key: Key<'_>,
        payload: Payload<'_>,
        urgent: bool,
        now: f64,
        qos: u8,
    ) {
        self.scratch.clear();
        payload.write(&mut self.scratch);
        let slot = match key {
            Key::Label(label) => match LEAVES.iter().position(|&l| l == label) {
                // Spelled like a leaf, it is published on the leaf's topic: one slot.
                Some(i) => &mut self.leaves[i],
                None => self.labels.entry(label.to_owned()).or_default(),
            },
            Key::Leaf(i) => &mut self.leaves[i],
        };
        if let Some(slot) = slot.as_mut() {
            slot.seen = self.frames;
        }
        let due = match slot {
            None => true,
            Some(slot) if slot.resend => true,
            Some(slot) if slot.payload == self.scratch => false,
            Some(_) if urgent => true,
            Some(slot) => now - slot.at >= self.interval_s,
        };
        if !due {
            return;
        }
        let topic = match slot {
            Some(slot) => {
                slot.payload.clone_from(&self.scratch);
                slot.at = now;
                slot.resend = false;
                slot.topic.clone()
            }
            None => {
                let topic = match key {
                    Key::Label(label) => self.topics.label(label),
                    Key::Leaf(i) => self.topics.leaf(LEAVES[i]),
                };
                *slot = Some(Slot {
                    topic: topic.clone(),
                    payload: self.scratch.clone(),
                    at: now,
                    seen: self.frames,
                    resend: false,
                });
                topic
            }
        };
        out.push(Message::new(topic, self.scratch.clone(), true, qos));
    }

    /// The `diag` message: the contract's keys first, then the other counters.
    pub fn diag(&self, d: &Diag) -> Message {
        let payload = serde_json::json!({
            "frames_ok": d.tic.frames_ok,
            "checksum_errors": d.tic.groups_bad_checksum,
            "bytes_skipped": d.tic.bytes_skipped,
            "mode": d.mode,
            "uptime_s": d.uptime_s,
            "groups_malformed": d.tic.groups_malformed,
            "frames_aborted": d.tic.frames_aborted,
            "values_rejected": d.meter.values_rejected,
            "index_held": d.meter.index_held,
            "frames_not_published": d.frames_not_published,
            "spool_backlog": d.spool.backlog,
            "spool_bytes": d.spool.bytes,
            "spool_dropped": d.spool.dropped,
        });
        Message::new(self.topics.leaf("diag"), payload.to_string(), false, 0)
    }

    /// Forgets what was published, so that after a reconnection to a broker that lost its
    /// retained messages every value is sent again. The labels' absence keeps counting: one
    /// that left the frames is still cleared, and one the frames carry is never cleared for
    /// the reconnection.
    pub fn forget(&mut self) {
        for slot in self.labels.values_mut().flatten() {
            slot.resend = true;
        }
        self.leaves = Default::default();
        self.last_state_at = None;
        self.last_flags = None;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reading(ptec: &str, papp: &str, hn: &str) -> Reading {
        crate::testing::historic(&[
            ("ADCO", "021728123456"),
            ("OPTARIF", "EJP."),
            ("EJPHN", hn),
            ("PTEC", ptec),
            ("PAPP", papp),
            ("NJOURF+1", "00"),
        ])
    }

    fn topics_of(messages: &[Message]) -> Vec<&str> {
        messages
            .iter()
            .map(|m| m.topic.rsplit('/').next().unwrap())
            .collect()
    }

    fn policy(interval: f64) -> Policy {
        Policy::new(Topics::new("linky", "021728123456"), interval)
    }

    #[test]
    fn the_first_reading_publishes_everything_with_the_contract_retain_and_qos() {
        let out = policy(10.0).on_reading(
            &reading("HN..", "01450", "000688322"),
            "T",
            0.0,
            Estimates::default(),
        );
        assert_eq!(
            topics_of(&out),
            [
                "state",
                "ADCO",
                "OPTARIF",
                "EJPHN",
                "PTEC",
                "PAPP",
                "NJOURF_1",
                "injection",
                "ejp",
                "ejp_notice",
                "hn"
            ]
        );
        let find = |t: &str| {
            out.iter()
                .find(|m| m.topic == format!("linky/021728123456/{t}"))
                .unwrap()
        };
        assert_eq!((find("state").retain, find("state").qos), (false, 1));
        assert_eq!(
            (
                find("PAPP").payload.as_str(),
                find("PAPP").retain,
                find("PAPP").qos
            ),
            ("1450", true, 0)
        );
        assert_eq!(
            (
                find("ejp").payload.as_str(),
                find("ejp").retain,
                find("ejp").qos
            ),
            ("OFF", true, 1)
        );
        assert!(
            find("state")
                .payload
                .starts_with(r#"{"ts":"T","meter":"021728123456""#)
        );
    }

    #[test]
    fn numbers_wait_for_the_interval_but_a_state_change_goes_out_at_once() {
        let mut p = policy(10.0);
        p.on_reading(
            &reading("HN..", "01450", "000688322"),
            "T",
            0.0,
            Estimates::default(),
        );
        let out = p.on_reading(
            &reading("HN..", "01460", "000688323"),
            "T",
            2.0,
            Estimates::default(),
        );
        assert!(out.is_empty(), "{out:?}");
        let out = p.on_reading(
            &reading("PM..", "01470", "000688324"),
            "T",
            4.0,
            Estimates::default(),
        );
        assert_eq!(topics_of(&out), ["state", "PTEC", "ejp"]);
        let out = p.on_reading(
            &reading("PM..", "01480", "000688325"),
            "T",
            10.0,
            Estimates::default(),
        );
        assert_eq!(topics_of(&out), ["EJPHN", "PAPP", "hn"]);
        let out = p.on_reading(
            &reading("PM..", "01490", "000688325"),
            "T",
            14.0,
            Estimates::default(),
        );
        assert_eq!(
            topics_of(&out),
            ["state"],
            "state once per interval after the last one"
        );
    }

    #[test]
    fn an_interval_of_zero_publishes_every_frame() {
        let mut p = policy(0.0);
        p.on_reading(
            &reading("HN..", "01450", "000688322"),
            "T",
            0.0,
            Estimates::default(),
        );
        let out = p.on_reading(
            &reading("HN..", "01460", "000688322"),
            "T",
            0.5,
            Estimates::default(),
        );
        assert_eq!(topics_of(&out), ["state", "PAPP"]);
    }

    #[test]
    fn diag_carries_the_contract_counters_unretained() {
        let tic = crate::tic::Stats {
            frames_ok: 12,
            groups_bad_checksum: 3,
            bytes_skipped: 40,
            ..Default::default()
        };
        let diag = Diag {
            tic,
            meter: Default::default(),
            mode: "historic",
            uptime_s: 61,
            frames_not_published: 0,
            spool: Default::default(),
        };
        let m = policy(10.0).diag(&diag);
        assert_eq!(
            (m.topic.as_str(), m.retain, m.qos),
            ("linky/021728123456/diag", false, 0)
        );
        let v: serde_json::Value = serde_json::from_str(&m.payload).unwrap();
        assert_eq!(
            (
                &v["frames_ok"],
                &v["checksum_errors"],
                &v["bytes_skipped"],
                &v["mode"],
                &v["uptime_s"]
            ),
            (
                &12.into(),
                &3.into(),
                &40.into(),
                &"historic".into(),
                &61.into()
            )
        );
    }

    #[test]
    fn labels_the_table_does_not_know_are_published_like_the_others() {
        let mut p = policy(0.0);
        let frame = |tension: &str| crate::testing::historic(&[("TENSION", tension), ("ejp", "X")]);
        let out = p.on_reading(&frame("231"), "T", 0.0, Estimates::default());
        assert_eq!(
            topics_of(&out),
            ["state", "TENSION", "ejp", "injection", "ejp", "ejp_notice"],
        );
        let out = p.on_reading(&frame("231"), "T", 1.0, Estimates::default());
        // A label spelled like a leaf shares its topic, and its last payload.
        assert_eq!(topics_of(&out), ["state", "ejp", "ejp"]);
        let out = p.on_reading(&frame("232"), "T", 2.0, Estimates::default());
        assert_eq!(topics_of(&out), ["state", "TENSION", "ejp", "ejp"]);
    }

    #[test]
    fn forgetting_sends_every_value_again() {
        let mut p = policy(10.0);
        p.on_reading(
            &reading("HN..", "01450", "000688322"),
            "T",
            0.0,
            Estimates::default(),
        );
        p.forget();
        assert_eq!(
            p.on_reading(
                &reading("HN..", "01450", "000688322"),
                "T",
                1.0,
                Estimates::default()
            )
            .len(),
            11
        );
    }

    fn overload(adps: Option<&str>) -> Reading {
        let mut labels = vec![
            ("ADCO", "021728123456"),
            ("IINST", "030"),
            ("PAPP", "06900"),
        ];
        if let Some(a) = adps {
            labels.push(("ADPS", a));
        }
        crate::testing::historic(&labels)
    }

    fn adps_messages(out: &[Message]) -> Vec<(&str, bool, u8)> {
        out.iter()
            .filter(|m| m.topic == "linky/021728123456/ADPS")
            .map(|m| (m.payload.as_str(), m.retain, m.qos))
            .collect()
    }

    #[test]
    fn a_label_absent_for_three_frames_is_cleared_once_and_published_again_when_back() {
        let mut p = policy(0.0);
        let mut t = 0.0;
        let mut step = |p: &mut Policy, adps: Option<&str>| {
            t += 1.0;
            p.on_reading(&overload(adps), "T", t, Estimates::default())
        };
        assert_eq!(adps_messages(&step(&mut p, Some("045"))), [("45", true, 0)]);
        assert_eq!(adps_messages(&step(&mut p, Some("046"))), [("46", true, 0)]);
        assert!(adps_messages(&step(&mut p, None)).is_empty());
        assert!(adps_messages(&step(&mut p, None)).is_empty());
        let out = step(&mut p, None);
        assert_eq!(adps_messages(&out), [("", true, 0)], "{out:?}");
        assert_eq!(out.iter().filter(|m| m.payload.is_empty()).count(), 1);
        for _ in 0..5 {
            let out = step(&mut p, None);
            assert!(adps_messages(&out).is_empty(), "cleared once only: {out:?}");
        }
        assert_eq!(adps_messages(&step(&mut p, Some("046"))), [("46", true, 0)]);
    }

    #[test]
    fn a_label_absent_for_two_frames_only_is_not_cleared() {
        let mut p = policy(10.0);
        let mut t = 0.0;
        let mut step = |p: &mut Policy, adps: Option<&str>| {
            t += 1.0;
            p.on_reading(&overload(adps), "T", t, Estimates::default())
        };
        step(&mut p, Some("045"));
        for _ in 0..3 {
            assert!(adps_messages(&step(&mut p, None)).is_empty());
            assert!(adps_messages(&step(&mut p, None)).is_empty());
            // Back with the same value within the interval: nothing new to say.
            assert!(adps_messages(&step(&mut p, Some("045"))).is_empty());
        }
    }

    #[test]
    fn a_reconnection_neither_clears_a_present_label_nor_spares_an_absent_one() {
        let mut p = policy(0.0);
        let mut t = 0.0;
        let mut step = |p: &mut Policy, adps: Option<&str>| {
            t += 1.0;
            p.on_reading(&overload(adps), "T", t, Estimates::default())
        };
        step(&mut p, Some("045"));
        p.forget();
        for _ in 0..5 {
            let out = step(&mut p, Some("045"));
            assert!(out.iter().all(|m| !m.payload.is_empty()), "{out:?}");
        }
        step(&mut p, None);
        step(&mut p, None);
        p.forget();
        let out = step(&mut p, None);
        assert_eq!(adps_messages(&out), [("", true, 0)], "{out:?}");
        // The others, forgotten, are sent again; none is cleared.
        assert_eq!(topics_of(&out).iter().filter(|t| **t == "PAPP").count(), 1);
    }

    #[test]
    fn the_energy_leaves_follow_the_period_names() {
        for (i, period) in PERIODS.iter().enumerate() {
            assert_eq!(LEAVES[ENERGY + i], format!("energy/{period}"));
        }
    }

    fn payload_of<'a>(out: &'a [Message], leaf: &str) -> Option<(&'a str, bool, u8)> {
        out.iter()
            .find(|m| m.topic == format!("linky/021728123456/{leaf}"))
            .map(|m| (m.payload.as_str(), m.retain, m.qos))
    }

    #[test]
    fn energy_is_published_by_period_name_like_the_indexes() {
        let mut p = policy(10.0);
        let r = crate::testing::historic(&[
            ("ADCO", "021728123456"),
            ("OPTARIF", "EJP."),
            ("EJPHN", "000688322"),
            ("EJPHPM", "000080072"),
            ("PTEC", "HN.."),
        ]);
        let out = p.on_reading(&r, "T", 0.0, Estimates::default());
        assert_eq!(payload_of(&out, "energy_import"), Some(("768394", true, 0)));
        assert_eq!(payload_of(&out, "energy/hn"), Some(("688322", true, 0)));
        assert_eq!(payload_of(&out, "energy/pm"), Some(("80072", true, 0)));
        assert_eq!(payload_of(&out, "energy_export"), None);
        assert_eq!(
            payload_of(&out, "tempo_tomorrow"),
            None,
            "not a Tempo contract"
        );
    }

    #[test]
    fn tomorrows_tempo_colour_says_when_it_was_announced() {
        let mut p = policy(10.0);
        let tempo = |demain| crate::testing::historic_tempo("HPJB", demain, "001", "00120", "A");
        let out = p.on_reading(&tempo("----"), "T1", 0.0, Estimates::default());
        assert_eq!(
            payload_of(&out, "tempo_tomorrow"),
            Some((r#"{"colour":null}"#, true, 1))
        );
        let out = p.on_reading(&tempo("ROUG"), "T2", 1.0, Estimates::default());
        assert_eq!(
            payload_of(&out, "tempo_tomorrow").unwrap().0,
            r#"{"colour":"red","announced":"T2"}"#
        );
        let out = p.on_reading(&tempo("ROUG"), "T3", 2.0, Estimates::default());
        assert_eq!(payload_of(&out, "tempo_tomorrow"), None, "on change only");
        // DEMAIN lost to its checksum: nothing said, the announcement stands.
        let mut lost = tempo("ROUG");
        lost.entries.retain(|e| e.label != "DEMAIN");
        lost.derived.tempo_tomorrow = None;
        let out = p.on_reading(&lost, "T3", 2.5, Estimates::default());
        assert_eq!(payload_of(&out, "tempo_tomorrow"), None);
        p.forget();
        let out = p.on_reading(&tempo("ROUG"), "T4", 3.0, Estimates::default());
        assert_eq!(
            payload_of(&out, "tempo_tomorrow").unwrap().0,
            r#"{"colour":"red","announced":"T2"}"#,
            "a reconnection keeps the time it was announced"
        );
    }

    #[test]
    fn the_next_change_is_published_on_change_and_cleared_when_none_comes() {
        let standard = |ltarf: &str, ntarf: &str, profile: &str| {
            crate::testing::reading(
                crate::tic::Mode::Standard,
                &[
                    ("ADSC", None, "021728123456"),
                    ("DATE", Some("H250307134349"), ""),
                    ("LTARF", None, ltarf),
                    ("STGE", None, "003A0001"),
                    ("NTARF", None, ntarf),
                    ("NJOURF", None, "00"),
                    ("NJOURF+1", None, "00"),
                    ("PJOURF+1", None, profile),
                ],
            )
        };
        let hc = standard(
            " HEURE  PLEINE  ",
            "02",
            "00008002 0210C001 08108002 1440C001",
        );
        let mut p = policy(10.0);
        let out = p.on_reading(&hc, "T", 0.0, Estimates::default());
        assert_eq!(
            payload_of(&out, "next_change"),
            Some((
                r#"{"at":"2025-03-07T14:40:00+01:00","period":"hc"}"#,
                true,
                1
            ))
        );
        let out = p.on_reading(&hc, "T", 1.0, Estimates::default());
        assert_eq!(payload_of(&out, "next_change"), None, "on change only");
        let base = standard("      BASE      ", "01", "00008001 NONUTILE");
        let out = p.on_reading(&base, "T", 2.0, Estimates::default());
        assert_eq!(payload_of(&out, "next_change"), Some(("", true, 1)));
        let out = p.on_reading(&base, "T", 3.0, Estimates::default());
        assert_eq!(payload_of(&out, "next_change"), None, "cleared once");
    }
}
