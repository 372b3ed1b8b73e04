//! The one table of TIC labels: what each means and how every output should treat it.
//!
//! Payloads, Home Assistant discovery, the index guard and the daily logs all read this
//! table, so a label added here is handled everywhere.

/// How a label's data is published.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Decimal digits, published as an integer without leading zeros.
    Number,
    /// Anything else, published trimmed.
    Text,
}

/// The label's physical unit, as the meter sends it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unit {
    /// Watt-hour (active energy index).
    Wh,
    /// Volt-ampere reactive hour (reactive energy index).
    VArh,
    /// Volt-ampere (apparent power).
    VA,
    /// Kilovolt-ampere (PREF, PCOUP); published to Home Assistant in VA.
    KVA,
    /// Watt (active power).
    W,
    /// Ampere.
    A,
    /// Volt.
    V,
    /// Minutes (the EJP notice length).
    Min,
}

impl Unit {
    /// The symbol used in payloads and Home Assistant.
    pub fn symbol(self) -> &'static str {
        match self {
            Unit::Wh => "Wh",
            Unit::VArh => "varh",
            Unit::VA => "VA",
            Unit::KVA => "kVA",
            Unit::W => "W",
            Unit::A => "A",
            Unit::V => "V",
            Unit::Min => "min",
        }
    }
}

/// What a label is for; drives the Home Assistant entity and the index guard.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// An energy counter that only grows: guarded against glitches, `total_increasing`.
    Index,
    /// An instantaneous measurement (power, current, voltage).
    Measure,
    /// A state a user acts on (tariff period, Tempo colour, contract).
    State,
    /// Identity and status words: shown as diagnostics.
    Diagnostic,
}

/// One row of the table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LabelSpec {
    /// The label as the meter spells it.
    pub label: &'static str,
    /// Data width in characters, as the specification fixes it (0 for `DATE`).
    pub width: u8,
    /// Integer or text.
    pub kind: Kind,
    /// Physical unit, if any.
    pub unit: Option<Unit>,
    /// Standard-mode labels that carry a horodate.
    pub horodate: bool,
    /// What it is for.
    pub role: Role,
    /// A readable English name for dashboards.
    pub name: &'static str,
}

const fn row(
    label: &'static str,
    width: u8,
    kind: Kind,
    unit: Option<Unit>,
    horodate: bool,
    role: Role,
    name: &'static str,
) -> LabelSpec {
    LabelSpec {
        label,
        width,
        kind,
        unit,
        horodate,
        role,
        name,
    }
}

const fn index(label: &'static str, name: &'static str) -> LabelSpec {
    row(
        label,
        9,
        Kind::Number,
        Some(Unit::Wh),
        false,
        Role::Index,
        name,
    )
}

const fn measure(label: &'static str, width: u8, unit: Unit, name: &'static str) -> LabelSpec {
    row(
        label,
        width,
        Kind::Number,
        Some(unit),
        false,
        Role::Measure,
        name,
    )
}

const fn dated(label: &'static str, width: u8, unit: Unit, name: &'static str) -> LabelSpec {
    row(
        label,
        width,
        Kind::Number,
        Some(unit),
        true,
        Role::Measure,
        name,
    )
}

const fn reactive(label: &'static str, name: &'static str) -> LabelSpec {
    row(
        label,
        9,
        Kind::Number,
        Some(Unit::VArh),
        false,
        Role::Index,
        name,
    )
}

const fn number(label: &'static str, width: u8, role: Role, name: &'static str) -> LabelSpec {
    row(label, width, Kind::Number, None, false, role, name)
}

const fn text(label: &'static str, width: u8, role: Role, name: &'static str) -> LabelSpec {
    row(label, width, Kind::Text, None, false, role, name)
}

const fn dated_text(label: &'static str, name: &'static str) -> LabelSpec {
    row(label, 2, Kind::Text, None, true, Role::State, name)
}

use Role::{Diagnostic, State};
use Unit::{A, KVA, V, VA, W};

/// Every label of both modes (SPEC-NOTES §5 and §6), in emission order.
pub const LABELS: &[LabelSpec] = &[
    // Historic mode.
    text("ADCO", 12, Diagnostic, "Meter address"),
    text("OPTARIF", 4, State, "Tariff option"),
    measure("ISOUSC", 2, A, "Subscribed current"),
    index("BASE", "Index base"),
    index("HCHC", "Index off-peak"),
    index("HCHP", "Index peak"),
    index("EJPHN", "Index EJP normal hours"),
    index("EJPHPM", "Index EJP peak hours"),
    index("BBRHCJB", "Index Tempo blue off-peak"),
    index("BBRHPJB", "Index Tempo blue peak"),
    index("BBRHCJW", "Index Tempo white off-peak"),
    index("BBRHPJW", "Index Tempo white peak"),
    index("BBRHCJR", "Index Tempo red off-peak"),
    index("BBRHPJR", "Index Tempo red peak"),
    measure("PEJP", 2, Unit::Min, "EJP notice"),
    text("PTEC", 4, State, "Current tariff period"),
    text("DEMAIN", 4, State, "Tomorrow's Tempo colour"),
    measure("IINST", 3, A, "Current"),
    measure("IINST1", 3, A, "Current phase 1"),
    measure("IINST2", 3, A, "Current phase 2"),
    measure("IINST3", 3, A, "Current phase 3"),
    measure("ADPS", 3, A, "Overload warning"),
    measure("ADIR1", 3, A, "Overload warning phase 1"),
    measure("ADIR2", 3, A, "Overload warning phase 2"),
    measure("ADIR3", 3, A, "Overload warning phase 3"),
    measure("IMAX", 3, A, "Maximum current"),
    measure("IMAX1", 3, A, "Maximum current phase 1"),
    measure("IMAX2", 3, A, "Maximum current phase 2"),
    measure("IMAX3", 3, A, "Maximum current phase 3"),
    measure("PMAX", 5, VA, "Maximum power yesterday"),
    measure("PAPP", 5, VA, "Apparent power"),
    text("HHPHC", 1, Diagnostic, "Off-peak schedule"),
    text("MOTDETAT", 6, Diagnostic, "Meter status word"),
    text("PPOT", 2, Diagnostic, "Phase potentials"),
    // Standard mode.
    text("ADSC", 12, Diagnostic, "Meter address"),
    text("VTIC", 2, Diagnostic, "TIC version"),
    row("DATE", 0, Kind::Text, None, true, Diagnostic, "Meter clock"),
    text("NGTF", 16, State, "Supplier tariff"),
    text("LTARF", 16, State, "Current tariff period"),
    index("EAST", "Energy drawn total"),
    index("EASF01", "Energy drawn supplier index 1"),
    index("EASF02", "Energy drawn supplier index 2"),
    index("EASF03", "Energy drawn supplier index 3"),
    index("EASF04", "Energy drawn supplier index 4"),
    index("EASF05", "Energy drawn supplier index 5"),
    index("EASF06", "Energy drawn supplier index 6"),
    index("EASF07", "Energy drawn supplier index 7"),
    index("EASF08", "Energy drawn supplier index 8"),
    index("EASF09", "Energy drawn supplier index 9"),
    index("EASF10", "Energy drawn supplier index 10"),
    index("EASD01", "Energy drawn distributor index 1"),
    index("EASD02", "Energy drawn distributor index 2"),
    index("EASD03", "Energy drawn distributor index 3"),
    index("EASD04", "Energy drawn distributor index 4"),
    index("EAIT", "Energy injected total"),
    reactive("ERQ1", "Reactive energy Q1"),
    reactive("ERQ2", "Reactive energy Q2"),
    reactive("ERQ3", "Reactive energy Q3"),
    reactive("ERQ4", "Reactive energy Q4"),
    measure("IRMS1", 3, A, "Current phase 1"),
    measure("IRMS2", 3, A, "Current phase 2"),
    measure("IRMS3", 3, A, "Current phase 3"),
    measure("URMS1", 3, V, "Voltage phase 1"),
    measure("URMS2", 3, V, "Voltage phase 2"),
    measure("URMS3", 3, V, "Voltage phase 3"),
    measure("PREF", 2, KVA, "Subscribed power"),
    measure("PCOUP", 2, KVA, "Cut-off power"),
    measure("SINSTS", 5, VA, "Apparent power drawn"),
    measure("SINSTS1", 5, VA, "Apparent power drawn phase 1"),
    measure("SINSTS2", 5, VA, "Apparent power drawn phase 2"),
    measure("SINSTS3", 5, VA, "Apparent power drawn phase 3"),
    dated("SMAXSN", 5, VA, "Max power drawn today"),
    dated("SMAXSN1", 5, VA, "Max power drawn today phase 1"),
    dated("SMAXSN2", 5, VA, "Max power drawn today phase 2"),
    dated("SMAXSN3", 5, VA, "Max power drawn today phase 3"),
    dated("SMAXSN-1", 5, VA, "Max power drawn yesterday"),
    dated("SMAXSN1-1", 5, VA, "Max power drawn yesterday phase 1"),
    dated("SMAXSN2-1", 5, VA, "Max power drawn yesterday phase 2"),
    dated("SMAXSN3-1", 5, VA, "Max power drawn yesterday phase 3"),
    measure("SINSTI", 5, VA, "Apparent power injected"),
    dated("SMAXIN", 5, VA, "Max power injected today"),
    dated("SMAXIN-1", 5, VA, "Max power injected yesterday"),
    dated("CCASN", 5, W, "Load curve drawn"),
    dated("CCASN-1", 5, W, "Load curve drawn previous"),
    dated("CCAIN", 5, W, "Load curve injected"),
    dated("CCAIN-1", 5, W, "Load curve injected previous"),
    dated("UMOY1", 3, V, "Mean voltage phase 1"),
    dated("UMOY2", 3, V, "Mean voltage phase 2"),
    dated("UMOY3", 3, V, "Mean voltage phase 3"),
    text("STGE", 8, Diagnostic, "Status register"),
    dated_text("DPM1", "Mobile peak 1 start"),
    dated_text("FPM1", "Mobile peak 1 end"),
    dated_text("DPM2", "Mobile peak 2 start"),
    dated_text("FPM2", "Mobile peak 2 end"),
    dated_text("DPM3", "Mobile peak 3 start"),
    dated_text("FPM3", "Mobile peak 3 end"),
    text("MSG1", 32, State, "Message"),
    text("MSG2", 16, State, "Short message"),
    text("PRM", 14, Diagnostic, "Delivery point"),
    number("RELAIS", 3, Diagnostic, "Relays"),
    number("NTARF", 2, State, "Supplier index number"),
    number("NJOURF", 2, Diagnostic, "Day profile"),
    number("NJOURF+1", 2, Diagnostic, "Next day profile"),
    text("PJOURF+1", 98, Diagnostic, "Next day schedule"),
    text("PPOINTE", 98, Diagnostic, "Next peak day schedule"),
];

/// The row for a label, if the specifications know it.
pub fn spec(label: &str) -> Option<&'static LabelSpec> {
    LABELS.iter().find(|s| s.label == label)
}

/// How a label's data is published; unknown labels (a firmware's `TENSION`) are text.
pub fn kind_of(label: &str) -> Kind {
    spec(label).map_or(Kind::Text, |s| s.kind)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_label_appears_once() {
        for (i, a) in LABELS.iter().enumerate() {
            assert!(
                LABELS[i + 1..].iter().all(|b| b.label != a.label),
                "{} is listed twice",
                a.label
            );
        }
    }

    #[test]
    fn indexes_are_nine_digit_counters() {
        for s in LABELS.iter().filter(|s| s.role == Role::Index) {
            assert_eq!((s.width, s.kind), (9, Kind::Number), "{}", s.label);
            assert!(matches!(s.unit, Some(Unit::Wh | Unit::VArh)), "{}", s.label);
        }
    }

    #[test]
    fn every_label_is_found_by_its_name() {
        for row in LABELS {
            assert_eq!(spec(row.label), Some(row));
        }
        assert_eq!(spec("NOPE"), None);
        assert_eq!(spec(""), None);
        assert_eq!(spec("ADCOADCOADCOADCOADCO"), None);
        assert_eq!(spec("ADC"), None);
        assert_eq!(spec("ADCO\0"), None);
        assert_eq!(spec("TENSION"), None);
        assert_eq!(spec("ADCOADCOADCOADCO"), None);
    }

    #[test]
    fn labels_with_plus_or_minus_are_known() {
        assert_eq!(kind_of("NJOURF+1"), Kind::Number);
        assert_eq!(kind_of("SMAXSN1-1"), Kind::Number);
        assert_eq!(kind_of("TENSION"), Kind::Text);
    }
}
