//! The publish policy: which messages a reading turns into, and when.
//!
//! A changed text or state (PTEC, `ejp`, `ejp_notice`, a Tempo colour) goes out at once;
//! numeric values at most once per interval; `state` once per interval, or at once when a state
//! changed. With an interval of 0 every frame publishes everything. Time is given, never read.

use std::collections::HashMap;
use std::fmt::{Display, Write};

use super::Message;
use super::topics::Topics;
use crate::meter::{Reading, Value};

/// Per-meter memory of what was last published.
#[derive(Debug, Clone)]
pub struct Policy {
    topics: Topics,
    interval_s: f64,
    published: HashMap<String, Slot>,
    scratch: String,
    last_state_at: Option<f64>,
    last_flags: Option<Flags>,
}

/// What was last published on one retained topic.
#[derive(Debug, Clone)]
struct Slot {
    topic: String,
    payload: String,
    at: f64,
}

/// A retained topic: a TIC label, or a leaf of the contract (`ejp`, `injection`…). Leaves
/// are lowercase and labels uppercase, so their names never collide.
#[derive(Debug, Clone, Copy)]
enum Key<'a> {
    Label(&'a str),
    Leaf(&'static str),
}

impl<'a> Key<'a> {
    fn name(self) -> &'a str {
        match self {
            Key::Label(l) => l,
            Key::Leaf(l) => l,
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
            tempo: (
                d.tempo_today.map(|c| c.as_str()),
                d.tempo_tomorrow.map(|c| c.as_str()),
            ),
        }
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

/// Extra values the shell computes across frames.
#[derive(Debug, Clone, Copy, Default)]
pub struct Extras {
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
            topics,
            interval_s,
            published: HashMap::new(),
            scratch: String::new(),
            last_state_at: None,
            last_flags: None,
        }
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
        extras: Extras,
    ) -> Vec<Message> {
        let mut out = Vec::with_capacity(reading.entries.len() + 6);
        let flags = Flags::of(reading);
        let flags_changed = self.last_flags.as_ref() != Some(&flags);
        let state_due = self
            .last_state_at
            .is_none_or(|t| now - t >= self.interval_s);
        if flags_changed || state_due {
            out.push(Message::new(
                self.topics.state(),
                reading.to_state_json(Some(ts)),
                false,
                1,
            ));
            self.last_state_at = Some(now);
        }
        for entry in &reading.entries {
            let urgent = matches!(entry.value, Value::Text(_));
            self.offer(
                &mut out,
                Key::Label(&entry.label),
                &entry.value,
                urgent,
                now,
                0,
            );
        }
        let d = &reading.derived;
        self.offer(
            &mut out,
            Key::Leaf("injection"),
            &d.injection_w,
            false,
            now,
            0,
        );
        if let Some(w) = extras.power_w {
            self.offer(&mut out, Key::Leaf("power"), &w, false, now, 0);
        }
        self.offer(&mut out, Key::Leaf("ejp"), &on_off(d.ejp), true, now, 1);
        self.offer(
            &mut out,
            Key::Leaf("ejp_notice"),
            &on_off(d.ejp_notice),
            true,
            now,
            1,
        );
        self.last_flags = Some(flags);
        out
    }

    /// Queues a retained value when it is new, changed and urgent, or changed and its
    /// interval has passed. The payload is formatted into a scratch buffer and topics are
    /// built once per key: most frames change few values, and this runs for every label.
    fn offer(
        &mut self,
        out: &mut Vec<Message>,
        key: Key<'_>,
        value: &dyn Display,
        urgent: bool,
        now: f64,
        qos: u8,
    ) {
        self.scratch.clear();
        let _ = write!(self.scratch, "{value}");
        let name = key.name();
        let due = match self.published.get(name) {
            None => true,
            Some(slot) if slot.payload == self.scratch => false,
            Some(_) if urgent => true,
            Some(slot) => now - slot.at >= self.interval_s,
        };
        if !due {
            return;
        }
        let topic = match self.published.get_mut(name) {
            Some(slot) => {
                slot.payload.clone_from(&self.scratch);
                slot.at = now;
                slot.topic.clone()
            }
            None => {
                let topic = match key {
                    Key::Label(label) => self.topics.label(label),
                    Key::Leaf(leaf) => self.topics.leaf(leaf),
                };
                let slot = Slot {
                    topic: topic.clone(),
                    payload: self.scratch.clone(),
                    at: now,
                };
                self.published.insert(name.to_owned(), slot);
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
    /// retained messages every value is sent again.
    pub fn forget(&mut self) {
        self.published.clear();
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
            Extras::default(),
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
                "ejp_notice"
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
            Extras::default(),
        );
        let out = p.on_reading(
            &reading("HN..", "01460", "000688323"),
            "T",
            2.0,
            Extras::default(),
        );
        assert!(out.is_empty(), "{out:?}");
        let out = p.on_reading(
            &reading("PM..", "01470", "000688324"),
            "T",
            4.0,
            Extras::default(),
        );
        assert_eq!(topics_of(&out), ["state", "PTEC", "ejp"]);
        let out = p.on_reading(
            &reading("PM..", "01480", "000688325"),
            "T",
            10.0,
            Extras::default(),
        );
        assert_eq!(topics_of(&out), ["EJPHN", "PAPP"]);
        let out = p.on_reading(
            &reading("PM..", "01490", "000688325"),
            "T",
            14.0,
            Extras::default(),
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
            Extras::default(),
        );
        let out = p.on_reading(
            &reading("HN..", "01460", "000688322"),
            "T",
            0.5,
            Extras::default(),
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
    fn forgetting_sends_every_value_again() {
        let mut p = policy(10.0);
        p.on_reading(
            &reading("HN..", "01450", "000688322"),
            "T",
            0.0,
            Extras::default(),
        );
        p.forget();
        assert_eq!(
            p.on_reading(
                &reading("HN..", "01450", "000688322"),
                "T",
                1.0,
                Extras::default()
            )
            .len(),
            10
        );
    }
}
