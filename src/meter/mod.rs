//! What the meter says: frames become typed [`Reading`]s with the contract's derived values.
//!
//! This module owns the meaning of labels (the [`labels`] table), the status register
//! ([`stge`]), EJP and Tempo, injection, the tariff period code, the energy named by period
//! ([`energy`], with what it learns about a meter in a [`Memory`] the caller saves), the next
//! tariff change ([`calendar`]), and the [`guard`] that keeps impossible index values out. It does not know about bytes (that is [`crate::tic`]) nor about
//! MQTT, screens or files. Time comes in as a number of seconds, never from a clock.

pub mod calendar;
pub mod energy;
pub mod guard;
pub mod labels;
pub mod power;
mod reading;
pub mod stge;

pub use calendar::NextChange;
pub use energy::Memory;
pub use guard::IndexGuard;
pub use power::PowerEstimator;
pub use reading::{Derived, Entry, Reading, Value};
pub use stge::{Stge, TempoColour};

use crate::tic::{Frame, Horodate, Mode};
use labels::{Kind, LabelSpec, Role};

/// Used when the meter has not (yet) said its subscribed power: the largest residential
/// contract, so the guard only stops values that no household could produce.
const DEFAULT_MAX_POWER_W: f64 = 36_000.0;

/// Counters of what [`Meter::read`] refused.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct MeterStats {
    /// Numeric labels whose data was not a number (though its checksum passed).
    pub values_rejected: u64,
    /// Index values held back by the guard.
    pub index_held: u64,
    /// Held values later confirmed and published.
    pub index_released: u64,
}

/// The state kept across frames of one line: the meter's identity, its subscribed power and
/// the index guard.
#[derive(Debug, Clone)]
pub struct Meter {
    voltage: u32,
    meter_id: Option<String>,
    max_power_w: Option<f64>,
    guard: IndexGuard,
    values_rejected: u64,
    /// What was learnt about the meters of this line (which supplier index is which period,
    /// the day profiles), for the caller to save.
    memory: Memory,
    /// The last `OPTARIF` seen (historic mode).
    optarif: Option<String>,
    /// The last accepted value of each historic index, in [`energy::HISTORIC`] order: the
    /// total drawn is their sum, so a frame that lost one group to its checksum does not
    /// make the total drop.
    historic: [Option<i64>; energy::HISTORIC.len()],
}

impl Meter {
    /// `voltage` is used for the historic injection estimate (`IINST × voltage`).
    pub fn new(voltage: u32) -> Self {
        Meter {
            voltage,
            meter_id: None,
            max_power_w: None,
            guard: IndexGuard::default(),
            values_rejected: 0,
            memory: Memory::default(),
            optarif: None,
            historic: [None; energy::HISTORIC.len()],
        }
    }

    /// The same meter model, starting from what was learnt before (a saved [`Memory`]).
    pub fn with_memory(mut self, memory: Memory) -> Self {
        self.memory = memory;
        self
    }

    /// What was learnt, to save when [`Memory::is_dirty`] (then call [`Memory::saved`]).
    pub fn memory_mut(&mut self) -> &mut Memory {
        &mut self.memory
    }

    /// Hands over what was learnt (to the model of the next meter on the line).
    pub fn take_memory(&mut self) -> Memory {
        std::mem::take(&mut self.memory)
    }

    /// Counters since creation.
    pub fn stats(&self) -> MeterStats {
        MeterStats {
            values_rejected: self.values_rejected,
            index_held: self.guard.held(),
            index_released: self.guard.released(),
        }
    }

    /// Types a frame seen at `at` seconds (any monotonic origin).
    pub fn read(&mut self, frame: &Frame, at: f64) -> Reading {
        let mode = frame.mode();
        let mut entries: Vec<Entry> = Vec::with_capacity(frame.len());
        for group in frame.groups() {
            if entries.iter().any(|e| e.label == group.label) {
                continue; // a repeated label: the first one counts
            }
            let spec = labels::spec(group.label);
            if spec.is_some_and(|s| !has_specified_width(s, mode, group.value)) {
                self.values_rejected += 1;
                continue;
            }
            let value = match spec.map_or(Kind::Text, |s| s.kind) {
                Kind::Text => Value::Text(group.value.trim().to_owned()),
                Kind::Number => match parse_number(group.value) {
                    Some(n) => Value::Number(n),
                    None => {
                        self.values_rejected += 1;
                        continue;
                    }
                },
            };
            let timestamp = group
                .horodate
                .and_then(Horodate::parse)
                .map(|h| h.to_iso8601());
            entries.push(Entry {
                label: group.label.to_owned(),
                value,
                timestamp,
            });
        }
        self.learn_limits(mode, &entries);
        let max_power_w = self.max_power_w.unwrap_or(DEFAULT_MAX_POWER_W);
        entries.retain(|e| match (e.spec(), &e.value) {
            (Some(spec), Value::Number(n)) if spec.role == Role::Index => {
                self.guard.check(&e.label, *n, at, max_power_w) == guard::Verdict::Accept
            }
            _ => true,
        });
        let id_label = match mode {
            Mode::Historic => "ADCO",
            Mode::Standard => "ADSC",
        };
        if let Some(Value::Text(id)) = entries
            .iter()
            .find(|e| e.label == id_label)
            .map(|e| &e.value)
        {
            self.meter_id = Some(id.clone());
        }
        let mut reading = Reading {
            meter: self.meter_id.clone(),
            mode,
            entries,
            derived: Derived::default(),
        };
        reading.derived = derive(&reading, self.voltage);
        self.learn(&reading);
        self.add_energy(&mut reading);
        // A frame that lost one of the calendar's groups to its checksum could give another
        // answer (no today's profile: the next change looks like tomorrow's); it gives none,
        // and says so, so that the last one stands.
        let calendar = ["DATE", "STGE", "NTARF", "NJOURF", "NJOURF+1", "PJOURF+1"];
        if mode == Mode::Standard && calendar.iter().all(|l| reading.get(l).is_some()) {
            reading.derived.calendar_read = true;
            reading.derived.next_change = self.next_change(&reading);
        }
        reading
    }

    /// Learns which supplier index counts which period, and the day profiles.
    fn learn(&mut self, r: &Reading) {
        let Some(id) = r.meter.as_deref() else {
            return;
        };
        match r.mode {
            Mode::Historic => {
                let indexes = energy::HISTORIC
                    .iter()
                    .filter(|(label, ..)| r.get(label).is_some());
                self.memory.update(id, |m| {
                    indexes.fold(false, |news, (_, period, n)| {
                        m.learn_index(*n, period) | news
                    })
                });
            }
            Mode::Standard => {
                let index = r.number("NTARF").and_then(|n| u8::try_from(n).ok());
                let period = r.derived.period.as_deref().and_then(energy::period_name);
                let profile = r.number("NJOURF+1").and_then(|n| u8::try_from(n).ok());
                let schedule = r.text("PJOURF+1");
                let peak = r.text("PPOINTE");
                // A Tempo contract (STGE gives today's colour) has its six indexes in the
                // historic order, by the specification (SPEC-NOTES §8.2).
                let tempo = r.derived.tempo_today.is_some();
                self.memory.update(id, |m| {
                    let mut news = false;
                    if tempo {
                        for (_, p, n) in &energy::HISTORIC[5..] {
                            news |= m.learn_index(*n, p);
                        }
                    }
                    if let (Some(n), Some(p)) = (index, period) {
                        news |= m.learn_index(n, p);
                    }
                    if let (Some(n), Some(s)) = (profile, schedule) {
                        news |= m.learn_profile(n, s);
                    }
                    if let Some(s) = peak {
                        news |= m.learn_peak_profile(s);
                    }
                    news
                });
            }
        }
    }

    /// The energy named by meaning (`derived.energy_import_wh`, `energy_export_wh`, `energy`).
    fn add_energy(&mut self, r: &mut Reading) {
        let d = &mut r.derived;
        match r.mode {
            Mode::Historic => {
                if let Some(o) = r.entries.iter().find(|e| e.label == "OPTARIF") {
                    self.optarif = o.value.as_text().map(str::to_owned);
                }
                for (i, (label, period, _)) in energy::HISTORIC.iter().enumerate() {
                    let value = r.entries.iter().find(|e| e.label == *label);
                    if let Some(n) = value.and_then(|e| e.value.as_number()) {
                        self.historic[i] = Some(n);
                        d.energy.insert(period, n);
                    }
                }
                // The option's indexes, all known: else the sum would be short of one.
                let option = self.optarif.as_deref().and_then(energy::option_indexes);
                d.energy_import_wh = option.and_then(|indexes| {
                    indexes.iter().try_fold(0i64, |sum, (label, ..)| {
                        let i = energy::HISTORIC.iter().position(|(l, ..)| l == label)?;
                        sum.checked_add(self.historic[i]?)
                    })
                });
            }
            Mode::Standard => {
                let number = |label: &str| {
                    r.entries
                        .iter()
                        .find(|e| e.label == label)
                        .and_then(|e| e.value.as_number())
                };
                d.energy_import_wh = number("EAST");
                d.energy_export_wh = number("EAIT");
                let known = r.meter.as_deref().and_then(|id| self.memory.get(id));
                for (n, label) in (1..).zip(energy::EASF) {
                    let period = known.and_then(|m| m.period_of(n));
                    if let (Some(p), Some(v)) = (period, number(label)) {
                        d.energy.insert(p, v);
                    }
                }
            }
        }
    }

    /// The next tariff change, from the meter's clock and day profiles (standard mode).
    fn next_change(&self, r: &Reading) -> Option<NextChange> {
        let now = r
            .entries
            .iter()
            .find(|e| e.label == "DATE")?
            .timestamp
            .as_deref()?;
        let known = r.meter.as_deref().and_then(|id| self.memory.get(id));
        let d = &r.derived;
        let period = d.period.as_deref().and_then(energy::period_name);
        let is_tempo = d.tempo_today.is_some();
        let profile = |label: &str| r.number(label).and_then(|n| u8::try_from(n).ok());
        let (today_n, tomorrow_n) = (profile("NJOURF"), profile("NJOURF+1"));
        let tomorrow_schedule = r.text("PJOURF+1");
        let today = if d.ejp {
            known.and_then(|m| m.peak_profile.as_deref())
        } else if today_n.is_some() && today_n == tomorrow_n {
            tomorrow_schedule
        } else {
            today_n.and_then(|n| known.and_then(|m| m.profiles.get(&n)).map(String::as_str))
        };
        // Starts and ends of mobile peaks: EJP's peak hours (on Tempo they are the colours).
        let mut peaks = Vec::new();
        if !is_tempo && matches!(period, Some("hn" | "pm")) {
            for e in &r.entries {
                let bound = match e.label.get(..3) {
                    Some("DPM") => "pm",
                    Some("FPM") => "hn",
                    _ => continue,
                };
                if let Some(ts) = &e.timestamp {
                    peaks.push((ts.as_str(), bound));
                }
            }
        }
        let tomorrow_date = calendar::date_of(now).and_then(|d| d.tomorrow().ok());
        let peak_tomorrow = r
            .entries
            .iter()
            .filter(|e| e.label.starts_with("DPM"))
            .filter_map(|e| e.timestamp.as_deref().and_then(calendar::date_of))
            .min()
            .is_some_and(|d| Some(d) == tomorrow_date);
        let mut tomorrow = match r.text("PPOINTE") {
            Some(p) if peak_tomorrow => Some(p),
            _ => tomorrow_schedule,
        };
        let mut today = today;
        if d.ejp && peaks.iter().any(|(_, bound)| *bound == "hn") {
            // During a peak the day profiles do not apply until its end (FPMx): tomorrow's
            // 00:00 slot would otherwise look like the end of an EJP peak that runs to 01:00.
            (today, tomorrow) = (None, None);
        }
        calendar::Calendar {
            now,
            index: profile("NTARF"),
            period,
            today,
            tomorrow,
            tempo: is_tempo.then_some((d.tempo_today, d.tempo_tomorrow)),
            peaks,
        }
        .next_change(|n| {
            known
                .and_then(|m| m.period_of(n))
                .or_else(|| period.and_then(|p| energy::spec_period(p, n)))
        })
    }

    fn learn_limits(&mut self, mode: Mode, entries: &[Entry]) {
        let number = |label: &str| {
            entries
                .iter()
                .find(|e| e.label == label)
                .and_then(|e| e.value.as_number())
        };
        let watts = match mode {
            Mode::Historic => number("ISOUSC").map(|amps| {
                let phases = if number("IINST3").is_some() || number("IMAX3").is_some() {
                    3
                } else {
                    1
                };
                (amps * 230 * phases) as f64
            }),
            Mode::Standard => number("PREF").map(|kva| (kva * 1000) as f64),
        };
        if let Some(w) = watts.filter(|&w| w > 0.0) {
            self.max_power_w = Some(w);
        }
    }
}

/// Fixed-width data is the second line behind the 6-bit checksum: a lost or doubled byte
/// that the sum misses changes the width. Standard-mode free texts (NGTF, LTARF, MSG1) are
/// not padded alike by every firmware, so only numbers are held to their width there.
fn has_specified_width(spec: &LabelSpec, mode: Mode, raw: &str) -> bool {
    match (mode, spec.kind) {
        (Mode::Historic, _) | (Mode::Standard, Kind::Number) => {
            raw.len() == usize::from(spec.width)
        }
        (Mode::Standard, Kind::Text) => true,
    }
}

/// Numeric data is zero-padded digits; anything else is corruption the checksum missed.
fn parse_number(raw: &str) -> Option<i64> {
    if raw.is_empty() || raw.len() > 18 || !raw.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    raw.parse().ok()
}

fn derive(reading: &Reading, voltage: u32) -> Derived {
    match reading.mode {
        Mode::Historic => derive_historic(reading, voltage),
        Mode::Standard => derive_standard(reading),
    }
}

fn derive_historic(r: &Reading, voltage: u32) -> Derived {
    let ptec = r.text("PTEC").unwrap_or("");
    let ejp = ptec.starts_with("PM");
    let current: i64 = match r.number("IINST") {
        Some(i) => i,
        None => ["IINST1", "IINST2", "IINST3"]
            .iter()
            .filter_map(|l| r.number(l))
            .sum(),
    };
    let papp = r.number("PAPP");
    let injection_w = match papp {
        Some(0) => current * i64::from(voltage),
        _ => 0,
    };
    let code = ptec.trim_end_matches('.');
    let period = match code {
        "" => None,
        "TH" => Some("BASE".to_owned()),
        other => Some(other.to_owned()),
    };
    Derived {
        injection_w,
        ejp,
        ejp_notice: r.get("PEJP").is_some() && !ejp,
        consumption_va: papp,
        period,
        tempo_today: code.get(2..).and_then(TempoColour::from_historic),
        tempo_tomorrow: r.text("DEMAIN").and_then(TempoColour::from_historic),
        stge: None,
        ..Derived::default()
    }
}

/// Tempo's six supplier indexes, in the order of the historic labels (SPEC-NOTES §8.2).
const TEMPO_PERIODS: [&str; 6] = ["HCJB", "HPJB", "HCJW", "HPJW", "HCJR", "HPJR"];

fn derive_standard(r: &Reading) -> Derived {
    let stge = r.text("STGE").and_then(Stge::parse);
    // On a Tempo contract the meter reports non-blue days as a mobile peak too, and
    // today's colour is never 0 there: a peak without a colour is an EJP peak.
    let tempo_today = stge.and_then(|s| s.tempo_today);
    let is_tempo = tempo_today.is_some();
    let ejp = stge.is_some_and(|s| s.peak_active != 0) && !is_tempo;
    let ejp_notice = stge.is_some_and(|s| s.peak_notice != 0) && !is_tempo && !ejp;
    let ntarf = r
        .number("NTARF")
        .or(stge.map(|s| i64::from(s.supplier_index)));
    let ngtf = r.text("NGTF").unwrap_or("").to_ascii_uppercase();
    let ltarf = r.text("LTARF").unwrap_or("").to_ascii_uppercase();
    let period = if is_tempo || ngtf.contains("TEMPO") {
        ntarf
            .and_then(|n| usize::try_from(n - 1).ok())
            .and_then(|i| TEMPO_PERIODS.get(i))
            .map(|p| (*p).to_owned())
    } else if ngtf.contains("EJP") {
        Some(if ejp { "PM" } else { "HN" }.to_owned())
    } else if ltarf.contains("CREUSE") || ltarf.starts_with("HC") {
        Some("HC".to_owned())
    } else if ltarf.contains("PLEINE") || ltarf.starts_with("HP") {
        Some("HP".to_owned())
    } else if ltarf.contains("BASE") {
        Some("BASE".to_owned())
    } else {
        ntarf.map(|n| format!("EASF{n:02}"))
    };
    Derived {
        injection_w: r.number("SINSTI").unwrap_or(0),
        ejp,
        ejp_notice,
        consumption_va: r.number("SINSTS"),
        period,
        tempo_today,
        tempo_tomorrow: stge.and_then(|s| s.tempo_tomorrow),
        stge,
        ..Derived::default()
    }
}

#[cfg(test)]
mod tests;
