//! Energy named by meaning, not by label: the total drawn, the total injected and one counter
//! per tariff period, the same in both modes, so that a meter Enedis switches from historic to
//! standard keeps its Home Assistant entities and their statistics (`EJPHN` becomes `EASF01`,
//! `energy/hn` stays `energy/hn`).
//!
//! Historic mode names its indexes after the period, so they map directly. Standard mode only
//! numbers them (`EASF01`…`EASF10`): which number is which period is learnt from the frames,
//! from the active index (`NTARF`) and the period the frame is in (`LTARF`, `NGTF`, `STGE`, as
//! [`super::Derived::period`] reads them), and from the historic labels of the same meter,
//! which the specification numbers (Enedis 54E §6.1: `EJPHN` is supplier index 1, `EJPHPM` 2, the
//! six Tempo indexes 1 to 6 in label order, `HCHC` 1, `HCHP` 2, `BASE` 1). What was learnt is
//! kept in [`Memory`], which the daemon saves, so a restart does not forget a period that is
//! only active a few days a year (EJP's peak hours).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// The period names of `<base>/<id>/energy/<period>`, the lowercase of
/// [`super::Derived::period`]'s codes.
pub const PERIODS: [&str; 11] = [
    "base", "hc", "hp", "hn", "pm", "hcjb", "hpjb", "hcjw", "hpjw", "hcjr", "hpjr",
];

/// The historic indexes: label, period, supplier index (specification 54E §6.1).
pub const HISTORIC: [(&str, &str, u8); 11] = [
    ("BASE", "base", 1),
    ("HCHC", "hc", 1),
    ("HCHP", "hp", 2),
    ("EJPHN", "hn", 1),
    ("EJPHPM", "pm", 2),
    ("BBRHCJB", "hcjb", 1),
    ("BBRHPJB", "hpjb", 2),
    ("BBRHCJW", "hcjw", 3),
    ("BBRHPJW", "hpjw", 4),
    ("BBRHCJR", "hcjr", 5),
    ("BBRHPJR", "hpjr", 6),
];

/// The period name of a [`super::Derived::period`] code (`HN` → `hn`); `None` for codes that
/// are not a period (`EASF03` when nothing told which period that index is).
pub fn period_name(code: &str) -> Option<&'static str> {
    PERIODS
        .iter()
        .find(|p| p.eq_ignore_ascii_case(code))
        .copied()
}

/// The historic labels an `OPTARIF` counts its energy on: the sum of their values is the total
/// drawn. `None` for an option the specification does not list.
pub fn option_indexes(optarif: &str) -> Option<&'static [(&'static str, &'static str, u8)]> {
    let o = optarif.trim_end_matches('.');
    if o == "BASE" {
        Some(&HISTORIC[0..1])
    } else if o == "HC" {
        Some(&HISTORIC[1..3])
    } else if o == "EJP" {
        Some(&HISTORIC[3..5])
    } else if o.starts_with("BBR") {
        Some(&HISTORIC[5..11])
    } else {
        None
    }
}

/// The period the specification's numbering gives supplier index `n` in the offer whose
/// period `current` is in force ([`HISTORIC`]: an HC offer counts off-peak hours on index 1
/// and peak hours on 2…). Only a guess for what the frames have not shown yet: suppliers
/// program the indexes, so energy is never published on it.
pub fn spec_period(current: &str, n: u8) -> Option<&'static str> {
    let offer = HISTORIC.iter().find(|(_, p, _)| *p == current)?.0;
    let siblings = option_indexes(match offer {
        "BASE" => "BASE",
        "HCHC" | "HCHP" => "HC..",
        "EJPHN" | "EJPHPM" => "EJP.",
        _ => "BBR",
    })?;
    siblings.iter().find(|(.., i)| *i == n).map(|(_, p, _)| *p)
}

/// Meters remembered at most: a line carries one, and a few more after meter swaps or a test
/// bench; the oldest is forgotten first.
pub const MAX_METERS: usize = 8;

/// Supplier indexes of standard mode (`EASF01`…`EASF10`).
pub const SUPPLIER_INDEXES: u8 = 10;

/// Their labels, index 1 first.
pub const EASF: [&str; SUPPLIER_INDEXES as usize] = [
    "EASF01", "EASF02", "EASF03", "EASF04", "EASF05", "EASF06", "EASF07", "EASF08", "EASF09",
    "EASF10",
];

/// Day profiles remembered per meter: the specification numbers them 0 to 9.
const MAX_PROFILES: u8 = 10;

/// The longest schedule kept: `PJOURF+1` is 98 characters.
const MAX_SCHEDULE: usize = 98;

/// What was learnt about one meter.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct MeterMemory {
    /// The meter's serial (ADCO, ADSC).
    pub meter: String,
    /// Supplier index number (1–10) → period name.
    #[serde(default)]
    pub indexes: BTreeMap<u8, String>,
    /// Day profile number (`NJOURF+1`) → its schedule (`PJOURF+1`), so that today's schedule
    /// is known once yesterday's frames gave it as tomorrow's.
    #[serde(default)]
    pub profiles: BTreeMap<u8, String>,
    /// The last peak-day profile (`PPOINTE`), which applies on the peak day itself, when the
    /// meter does not send it any more.
    #[serde(default)]
    pub peak_profile: Option<String>,
}

impl MeterMemory {
    /// The period of supplier index `n`, if learnt.
    pub fn period_of(&self, n: u8) -> Option<&'static str> {
        self.indexes.get(&n).and_then(|p| period_name(p))
    }

    /// Supplier index `n` counts `period`; no other index does. True when that is news.
    pub fn learn_index(&mut self, n: u8, period: &'static str) -> bool {
        if !(1..=SUPPLIER_INDEXES).contains(&n) || self.period_of(n) == Some(period) {
            return false;
        }
        self.indexes.retain(|_, p| p != period);
        self.indexes.insert(n, period.to_owned());
        true
    }

    /// Profile `n` has `schedule`. True when that is news.
    pub fn learn_profile(&mut self, n: u8, schedule: &str) -> bool {
        if n >= MAX_PROFILES || schedule.len() > MAX_SCHEDULE {
            return false;
        }
        if self.profiles.get(&n).is_some_and(|s| s == schedule) {
            return false;
        }
        self.profiles.insert(n, schedule.to_owned());
        true
    }

    /// The peak-day profile is `schedule`. True when that is news.
    pub fn learn_peak_profile(&mut self, schedule: &str) -> bool {
        if schedule.len() > MAX_SCHEDULE || self.peak_profile.as_deref() == Some(schedule) {
            return false;
        }
        self.peak_profile = Some(schedule.to_owned());
        true
    }

    /// Drops what a damaged or hand-edited file could hold that the frames cannot.
    fn sanitize(&mut self) {
        self.indexes
            .retain(|n, p| (1..=SUPPLIER_INDEXES).contains(n) && period_name(p).is_some());
        self.profiles
            .retain(|n, s| *n < MAX_PROFILES && s.len() <= MAX_SCHEDULE);
        if self
            .peak_profile
            .as_ref()
            .is_some_and(|s| s.len() > MAX_SCHEDULE)
        {
            self.peak_profile = None;
        }
    }
}

/// What was learnt about the meters of a line, most recently used last, at most
/// [`MAX_METERS`]. Saved by the daemon as JSON (`<spool_dir>/learnt.json`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Memory {
    meters: Vec<MeterMemory>,
    /// Changed since [`Memory::saved`].
    dirty: bool,
}

impl Memory {
    /// Reads the saved form; anything unreadable is an empty memory (the frames teach it again).
    pub fn from_json(text: &str) -> Self {
        let mut meters: Vec<MeterMemory> = serde_json::from_str(text).unwrap_or_default();
        let excess = meters.len().saturating_sub(MAX_METERS);
        meters.drain(..excess);
        meters.iter_mut().for_each(MeterMemory::sanitize);
        Memory {
            meters,
            dirty: false,
        }
    }

    /// The saved form.
    pub fn to_json(&self) -> String {
        // Strings and integers only: serde_json cannot fail on them.
        serde_json::to_string(&self.meters).expect("the memory serializes")
    }

    /// Whether something was learnt since the last [`Memory::saved`].
    pub fn is_dirty(&self) -> bool {
        self.dirty
    }

    /// The caller saved it.
    pub fn saved(&mut self) {
        self.dirty = false;
    }

    /// What is known of `meter`, if anything.
    pub fn get(&self, meter: &str) -> Option<&MeterMemory> {
        self.meters.iter().find(|m| m.meter == meter)
    }

    /// Learns about `meter` with `learn`, which says whether it learnt anything.
    pub fn update(&mut self, meter: &str, learn: impl FnOnce(&mut MeterMemory) -> bool) {
        let i = match self.meters.iter().position(|m| m.meter == meter) {
            Some(i) => i,
            None => {
                let fresh = MeterMemory {
                    meter: meter.to_owned(),
                    ..MeterMemory::default()
                };
                let mut probe = fresh.clone();
                if !learn(&mut probe) {
                    return; // nothing to remember: no entry for it
                }
                if self.meters.len() >= MAX_METERS {
                    self.meters.remove(0);
                }
                self.meters.push(probe);
                self.dirty = true;
                return;
            }
        };
        if learn(&mut self.meters[i]) {
            // Most recently taught last: the oldest goes first when the memory is full.
            let m = self.meters.remove(i);
            self.meters.push(m);
            self.dirty = true;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_index_counts_one_period_and_a_period_one_index() {
        let mut m = MeterMemory::default();
        assert!(m.learn_index(1, "hn"));
        assert!(!m.learn_index(1, "hn"));
        assert!(m.learn_index(2, "pm"));
        assert!(m.learn_index(3, "pm"), "the supplier moved the peak hours");
        assert_eq!(
            (m.period_of(1), m.period_of(2), m.period_of(3)),
            (Some("hn"), None, Some("pm"))
        );
        assert!(!m.learn_index(0, "hc") && !m.learn_index(11, "hc"));
    }

    #[test]
    fn the_memory_is_bounded_and_survives_its_json_but_not_garbage() {
        let mut memory = Memory::default();
        for i in 0..MAX_METERS + 3 {
            memory.update(&format!("{i:012}"), |m| m.learn_index(1, "base"));
        }
        assert!(memory.is_dirty());
        let again = Memory::from_json(&memory.to_json());
        assert_eq!(again.meters.len(), MAX_METERS);
        assert!(again.get("000000000000").is_none(), "the oldest went first");
        assert_eq!(
            again
                .get(&format!("{:012}", MAX_METERS + 2))
                .unwrap()
                .period_of(1),
            Some("base")
        );
        assert_eq!(Memory::from_json("{not json"), Memory::default());
        let odd = r#"[{"meter":"1","indexes":{"1":"hn","12":"pm","2":"nope"},"profiles":{"3":"00004001","42":"x"}}]"#;
        let m = Memory::from_json(odd);
        let m = m.get("1").unwrap();
        assert_eq!(m.indexes.len(), 1);
        assert_eq!(m.profiles.len(), 1);
    }

    #[test]
    fn nothing_learnt_leaves_no_entry_and_nothing_to_save() {
        let mut memory = Memory::default();
        memory.update("1", |_| false);
        assert!(!memory.is_dirty());
        assert!(memory.get("1").is_none());
        memory.update("1", |m| m.learn_index(1, "hn"));
        memory.saved();
        memory.update("1", |m| m.learn_index(1, "hn"));
        assert!(!memory.is_dirty());
    }

    #[test]
    fn the_options_sum_their_own_indexes() {
        let labels =
            |o: &str| option_indexes(o).map(|s| s.iter().map(|(l, ..)| *l).collect::<Vec<_>>());
        assert_eq!(labels("EJP."), Some(vec!["EJPHN", "EJPHPM"]));
        assert_eq!(labels("HC.."), Some(vec!["HCHC", "HCHP"]));
        assert_eq!(labels("BASE"), Some(vec!["BASE"]));
        assert_eq!(labels("BBR(").map(|l| l.len()), Some(6));
        assert_eq!(labels("XYZ."), None);
        assert_eq!(period_name("HCJB"), Some("hcjb"));
        assert_eq!(period_name("EASF03"), None);
        assert_eq!(spec_period("hp", 1), Some("hc"));
        assert_eq!(spec_period("hn", 2), Some("pm"));
        assert_eq!(spec_period("hcjw", 6), Some("hpjr"));
        assert_eq!(spec_period("base", 2), None);
    }
}
