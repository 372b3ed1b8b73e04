//! The standard-mode status register `STGE`, decoded into named fields (SPEC-NOTES §7.2).

use serde::Serialize;

/// A Tempo day colour, as announced by the meter.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum TempoColour {
    /// Cheapest days.
    Blue,
    /// Middle days.
    White,
    /// The 22 most expensive days of the winter.
    Red,
}

impl TempoColour {
    /// The lowercase name used in payloads.
    pub fn as_str(self) -> &'static str {
        match self {
            TempoColour::Blue => "blue",
            TempoColour::White => "white",
            TempoColour::Red => "red",
        }
    }

    /// From the 2-bit STGE code: 0 means "not announced".
    fn from_code(code: u32) -> Option<Self> {
        match code {
            1 => Some(TempoColour::Blue),
            2 => Some(TempoColour::White),
            3 => Some(TempoColour::Red),
            _ => None,
        }
    }
}

/// Why the meter's cut-off device is open, if it is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum CutOff {
    /// Power flows.
    Closed,
    /// Subscribed power exceeded.
    OverPower,
    /// Over-voltage.
    OverVoltage,
    /// Load shedding.
    LoadShedding,
    /// Remote order (CPL or Euridis).
    RemoteOrder,
    /// Overheating with a current above the switching limit.
    OverheatingHighCurrent,
    /// Overheating with a current below it.
    OverheatingLowCurrent,
    /// A code the specification does not list.
    Unknown,
}

impl CutOff {
    /// The snake_case name used in payloads.
    pub fn as_str(self) -> &'static str {
        match self {
            CutOff::Closed => "closed",
            CutOff::OverPower => "over_power",
            CutOff::OverVoltage => "over_voltage",
            CutOff::LoadShedding => "load_shedding",
            CutOff::RemoteOrder => "remote_order",
            CutOff::OverheatingHighCurrent => "overheating_high_current",
            CutOff::OverheatingLowCurrent => "overheating_low_current",
            CutOff::Unknown => "unknown",
        }
    }
}

/// The status register, field by field.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Stge {
    /// The raw 32-bit value.
    #[serde(skip)]
    pub raw: u32,
    /// The dry contact (C1/C2) is open.
    pub dry_contact_open: bool,
    /// State of the cut-off device.
    pub cut_off: CutOff,
    /// The distributor terminal cover is open.
    pub cover_open: bool,
    /// Over-voltage on a phase.
    pub over_voltage: bool,
    /// Reference power exceeded right now.
    pub over_reference_power: bool,
    /// The meter runs in producer mode.
    pub producer: bool,
    /// Active energy flows towards the grid.
    pub injecting: bool,
    /// Current supplier tariff index, 1..=10 (= NTARF).
    pub supplier_index: u8,
    /// Current distributor tariff index, 1..=4.
    pub distributor_index: u8,
    /// The meter's clock lost its time base.
    pub clock_degraded: bool,
    /// Tempo colour of today, when the contract is Tempo.
    pub tempo_today: Option<TempoColour>,
    /// Tempo colour of tomorrow, once announced.
    pub tempo_tomorrow: Option<TempoColour>,
    /// Mobile peak (1..=3) announced but not started, 0 if none.
    pub peak_notice: u8,
    /// Mobile peak (1..=3) in progress, 0 if none.
    pub peak_active: u8,
}

impl Stge {
    /// Parses the eight hex digits of the label's data.
    pub fn parse(hex: &str) -> Option<Self> {
        if hex.len() != 8 {
            return None;
        }
        let raw = u32::from_str_radix(hex, 16).ok()?;
        let bits = |shift: u32, width: u32| (raw >> shift) & ((1 << width) - 1);
        Some(Stge {
            raw,
            dry_contact_open: bits(0, 1) == 1,
            cut_off: match bits(1, 3) {
                0 => CutOff::Closed,
                1 => CutOff::OverPower,
                2 => CutOff::OverVoltage,
                3 => CutOff::LoadShedding,
                4 => CutOff::RemoteOrder,
                5 => CutOff::OverheatingHighCurrent,
                6 => CutOff::OverheatingLowCurrent,
                _ => CutOff::Unknown,
            },
            cover_open: bits(4, 1) == 1,
            over_voltage: bits(6, 1) == 1,
            over_reference_power: bits(7, 1) == 1,
            producer: bits(8, 1) == 1,
            injecting: bits(9, 1) == 1,
            supplier_index: bits(10, 4) as u8 + 1,
            distributor_index: bits(14, 2) as u8 + 1,
            clock_degraded: bits(16, 1) == 1,
            tempo_today: TempoColour::from_code(bits(24, 2)),
            tempo_tomorrow: TempoColour::from_code(bits(26, 2)),
            peak_notice: bits(28, 2) as u8,
            peak_active: bits(30, 2) as u8,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn white_tempo_day_with_peak_one_in_progress() {
        // Corpus: std-3p-tempo-teleinfo-nom-complete.tic, 14 Feb 2020 23:08.
        let s = Stge::parse("463A0800").unwrap();
        assert_eq!(s.supplier_index, 3);
        assert_eq!(s.tempo_today, Some(TempoColour::White));
        assert_eq!(s.tempo_tomorrow, Some(TempoColour::Blue));
        assert_eq!((s.peak_notice, s.peak_active), (0, 1));
        assert!(!s.dry_contact_open);
    }

    #[test]
    fn producer_injecting_on_supplier_index_two() {
        let s = Stge::parse("003AC701").unwrap();
        assert!(s.dry_contact_open && s.producer && s.injecting);
        assert_eq!((s.supplier_index, s.distributor_index), (2, 4));
        assert_eq!(s.tempo_today, None);
    }

    #[test]
    fn enedis_fixture_has_cover_open() {
        let s = Stge::parse("000A4411").unwrap();
        assert!(s.dry_contact_open && s.cover_open);
        assert_eq!((s.supplier_index, s.distributor_index), (2, 2));
        assert_eq!(s.cut_off, CutOff::Closed);
    }

    #[test]
    fn malformed_registers_are_refused() {
        assert_eq!(Stge::parse("003A00"), None);
        assert_eq!(Stge::parse("003A00G1"), None);
    }
}
