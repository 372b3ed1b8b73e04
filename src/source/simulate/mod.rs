//! A synthetic Linky: a historic-mode EJP meter that exists only as a function of time, for
//! `meter.port: simulate` and the demo, when there is no meter to read.
//!
//! Two parts:
//! - [`Simulator`] (this file) is the meter: the simulated household (its load and its solar
//!   panels), the EJP day schedule and the two energy indexes. It writes each frame with
//!   [`crate::tic::encode_frame`], so everything downstream (decoder, meter model, publisher,
//!   logger) runs on the bytes a real meter would send. It does no I/O and reads no clock:
//!   the caller says what simulated time it is.
//! - [`Simulated`] (`paced.rs`) is the byte source `linkymon run` reads: it asks the
//!   [`Simulator`] for frames on the real clock, `speed` times faster, and paces them as the
//!   1200-baud line would ([`wire_seconds`]).
//!
//! The household is a pure function of absolute simulated time and the seed: the random
//! fluctuation is drawn per one-minute slot from a PRNG seeded with (seed, slot), not from a
//! PRNG advanced once per call. So the same seed and call times give the same bytes, and
//! the indexes integrate the same curve (to the Wh) whether frames are asked for every
//! second or every hour.
//!
//! An EJP day with the default [`EjpSchedule`] (SPEC-NOTES §8.1):
//!
//! ```text
//! time of day   00:00–01:00   01:00–06:30   06:30–07:00   07:00–24:00 (to 01:00 next day)
//! PTEC          PM..          HN..          HN..          PM..
//! PEJP          30            -             30            30
//! energy to     EJPHPM        EJPHN         EJPHN         EJPHPM
//! ```
//!
//! (00:00–01:00 is the end of the day before's peak, so it is `HN..` after a normal day.)
//!
//! The household: a 300 VA base, meals at 06:45, 12:30 and 19:30 (2, 1.2 and 3.5 kVA),
//! ten-minute appliance runs at random, ±10 % fluctuation per minute, and only 40 % of the
//! non-base load kept during a peak. Solar panels give a bell from 09:00 to 17:00 (3 kW at
//! 13:00, dimmed by clouds); when they out-produce the house the frame shows `PAPP 00000`
//! and the injected current in `IINST`, and the indexes stand still.

mod paced;

pub use paced::Simulated;

use crate::tic::{Mode, encode_frame};

/// Seconds in a simulated day; days have no daylight-saving changes here.
pub const SECONDS_PER_DAY: f64 = 86_400.0;

/// Length of one slot of random fluctuation: long enough to read on a screen, short enough
/// that a day looks alive.
const SLOT_S: f64 = 60.0;

/// Slots per appliance block: a washing machine or an oven runs for ten minutes, not one.
const APPLIANCE_SLOTS: i64 = 10;

/// Chance that an appliance runs during a block.
const APPLIANCE_CHANCE: f64 = 0.12;

/// Longest integration sub-step; the load is smooth at this scale, so the midpoint rule is
/// far inside the 1 % the indexes are held to.
const MAX_STEP_S: f64 = 10.0;

/// What the house draws with everything off: fridge, boxes, standby.
const BASE_VA: f64 = 300.0;

/// Share of the non-base load an EJP household keeps during a peak (it sheds the rest).
const PEAK_KEEP: f64 = 0.4;

/// Solar production window, hours since midnight.
const SOLAR_HOURS: (f64, f64) = (9.0, 17.0);

/// A recurring load around a time of day: a bell of width about `sigma_h` either side
/// (`bell`).
struct Bump {
    centre_h: f64,
    sigma_h: f64,
    va: f64,
}

/// The meals: breakfast before leaving, lunch, and dinner with cooking and lights.
const BUMPS: [Bump; 3] = [
    Bump {
        centre_h: 6.75,
        sigma_h: 0.5,
        va: 2000.0,
    },
    Bump {
        centre_h: 12.5,
        sigma_h: 0.5,
        va: 1200.0,
    },
    Bump {
        centre_h: 19.5,
        sigma_h: 1.0,
        va: 3500.0,
    },
];

/// A Gaussian bell of `x` standard deviations, exp(−x²/2), cut to 0 from 4 deviations on
/// (where it is below 0.04 %), so that a meal ends and does not leak into the night.
fn bell(x: f64) -> f64 {
    if x.abs() >= 4.0 {
        0.0
    } else {
        (-0.5 * x * x).exp()
    }
}

/// Independent random streams, so that the clouds do not move with the kettle.
const STREAM_SLOT: u64 = 1;
const STREAM_APPLIANCE: u64 = 2;

/// When, within an EJP day, the notice and the peak happen (SPEC-NOTES §8.1). Times are
/// seconds since local midnight; a data structure so the demo can shorten the day.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct EjpSchedule {
    /// Start of the notice: `PEJP 30` is sent while `PTEC` is still `HN..`. Default 06:30.
    /// Equal to `peak_start` means no notice.
    pub notice_start: f64,
    /// Start of the peak: `PTEC PM..`, `PEJP 30` still sent. Default 07:00.
    pub peak_start: f64,
    /// End of the peak; at or before `peak_start` it is on the next day, as the real
    /// 07:00 → 01:00 rule is. Default 01:00.
    pub peak_end: f64,
}

impl Default for EjpSchedule {
    fn default() -> Self {
        EjpSchedule {
            notice_start: 6.5 * 3600.0,
            peak_start: 7.0 * 3600.0,
            peak_end: 3600.0,
        }
    }
}

impl EjpSchedule {
    fn notice_len(&self) -> f64 {
        (self.peak_start - self.notice_start).rem_euclid(SECONDS_PER_DAY)
    }

    fn peak_len(&self) -> f64 {
        (self.peak_end - self.peak_start).rem_euclid(SECONDS_PER_DAY)
    }
}

/// Everything the simulated meter and its household are made of. [`Default`] is a demo
/// meter: every day an EJP day, solar panels, indexes of a lived-in house.
#[derive(Debug, Clone, PartialEq)]
pub struct SimConfig {
    /// `ADCO`, 12 digits; the meter's identity in topics and discovery.
    pub meter_id: String,
    /// Simulated time of day at simulated second 0, in seconds since local midnight.
    /// Default 06:00, so a demo reaches the notice and the peak within its first hour.
    pub start: f64,
    /// Day number at simulated second 0; with `ejp_every_n_days` it decides which days
    /// are EJP days.
    pub day: u32,
    /// Seed of the household's random fluctuation; the same seed gives the same frames.
    pub seed: u64,
    /// Mains voltage in V, turning power into the `IINST` current.
    pub voltage: u32,
    /// Subscribed current `ISOUSC` in A (2 digits); the meter model derives its index
    /// plausibility limit from it.
    pub isousc: u8,
    /// When the notice and the peak happen on an EJP day.
    pub schedule: EjpSchedule,
    /// Day `d` is an EJP day when `d % ejp_every_n_days == 0`: 1 (default, it is a demo)
    /// makes every day one, 0 none.
    pub ejp_every_n_days: u32,
    /// `EJPHN` at start, in Wh.
    pub index_hn_wh: u64,
    /// `EJPHPM` at start, in Wh.
    pub index_pm_wh: u64,
    /// Solar production at the top of the bell, in W, on a clear sky; 0 for no panels.
    pub solar_peak_w: f64,
}

impl Default for SimConfig {
    fn default() -> Self {
        SimConfig {
            meter_id: "021728123456".to_owned(),
            start: 6.0 * 3600.0,
            day: 0,
            seed: 0,
            voltage: 230,
            isousc: 45,
            schedule: EjpSchedule::default(),
            ejp_every_n_days: 1,
            index_hn_wh: 688_322,
            index_pm_wh: 80_072,
            solar_peak_w: 3000.0,
        }
    }
}

/// A [`SimConfig`] value the meter could not send; each message names the field and what
/// to put there.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum SimConfigError {
    /// `ADCO` is exactly 12 digits; anything else fails the meter model's width check.
    #[error("simulated meter id {0:?} is not 12 digits: use a 12-digit ADCO such as 021728123456")]
    MeterId(String),
    /// `ISOUSC` is a 2-digit field.
    #[error("simulated ISOUSC {0} A does not fit its 2-digit field: use 1 to 99 A (45 is usual)")]
    Isousc(u8),
    /// A zero voltage would make every current infinite.
    #[error("simulated voltage {0} V is not a mains voltage: use 230")]
    Voltage(u32),
    /// A time of day outside one day.
    #[error(
        "simulated {field} = {value} is not a time of day: use seconds since midnight, 0 to 86399"
    )]
    TimeOfDay {
        /// The field's name.
        field: &'static str,
        /// The value given.
        value: f64,
    },
    /// A peak that ends when it starts would last no time.
    #[error("simulated EJP peak_end equals peak_start: the peak would last no time")]
    EmptyPeak,
    /// An index past the 9-digit field.
    #[error("simulated {field} = {value} Wh does not fit its 9-digit field: use at most 999999999")]
    Index {
        /// The field's name.
        field: &'static str,
        /// The value given.
        value: u64,
    },
    /// Solar production that is negative or not a number.
    #[error("simulated solar_peak_w = {0} is not a power: use watts, 0 for no panels")]
    Solar(f64),
}

impl SimConfig {
    /// Checks every field against what the frame can carry, so a bad config is one clear
    /// line at start instead of frames the meter model silently drops.
    pub fn validate(&self) -> Result<(), SimConfigError> {
        let id = self.meter_id.as_bytes();
        if id.len() != 12 || !id.iter().all(u8::is_ascii_digit) {
            return Err(SimConfigError::MeterId(self.meter_id.clone()));
        }
        if !(1..=99).contains(&self.isousc) {
            return Err(SimConfigError::Isousc(self.isousc));
        }
        if self.voltage == 0 {
            return Err(SimConfigError::Voltage(self.voltage));
        }
        let s = &self.schedule;
        for (field, value) in [
            ("start", self.start),
            ("notice_start", s.notice_start),
            ("peak_start", s.peak_start),
            ("peak_end", s.peak_end),
        ] {
            if !(0.0..SECONDS_PER_DAY).contains(&value) {
                return Err(SimConfigError::TimeOfDay { field, value });
            }
        }
        if s.peak_end == s.peak_start {
            return Err(SimConfigError::EmptyPeak);
        }
        for (field, value) in [
            ("index_hn_wh", self.index_hn_wh),
            ("index_pm_wh", self.index_pm_wh),
        ] {
            if value > MAX_INDEX {
                return Err(SimConfigError::Index { field, value });
            }
        }
        if !(self.solar_peak_w >= 0.0 && self.solar_peak_w.is_finite()) {
            return Err(SimConfigError::Solar(self.solar_peak_w));
        }
        Ok(())
    }
}

/// The largest value of a 9-digit index; the meter rolls over past it.
const MAX_INDEX: u64 = 999_999_999;

/// Where in the EJP schedule a moment falls.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    Normal,
    Notice,
    Peak,
}

/// An energy index in whole Wh, with the fraction not yet counted carried to the next step.
#[derive(Debug, Clone, Copy)]
struct Index {
    wh: u64,
    carry: f64,
}

impl Index {
    fn new(wh: u64) -> Self {
        Index { wh, carry: 0.0 }
    }

    fn add(&mut self, wh: f64) {
        self.carry += wh;
        let whole = self.carry.floor();
        self.carry -= whole;
        // `whole` is a non-negative count of Wh over one step; it fits a u64.
        self.wh = (self.wh + whole as u64) % (MAX_INDEX + 1);
    }
}

/// Time of a frame on the historic line: 10 bits per byte (7E1 with start and stop) at
/// 1200 baud. A shell that wants the real pace sleeps this long per frame.
pub fn wire_seconds(frame_len: usize) -> f64 {
    frame_len as f64 * 10.0 / f64::from(Mode::Historic.baud())
}

/// The simulated meter: call [`Simulator::frame_at`] with the simulated time, get the frame.
#[derive(Debug, Clone)]
pub struct Simulator {
    config: SimConfig,
    /// Simulated time up to which the indexes are integrated, in seconds since midnight of
    /// day 0 (absolute, so days and the schedule are plain arithmetic).
    integrated_to: f64,
    hn: Index,
    pm: Index,
}

impl Simulator {
    /// A meter at simulated second 0, once the config is known to fit the frame.
    pub fn new(config: SimConfig) -> Result<Self, SimConfigError> {
        config.validate()?;
        Ok(Simulator {
            integrated_to: f64::from(config.day) * SECONDS_PER_DAY + config.start,
            hn: Index::new(config.index_hn_wh),
            pm: Index::new(config.index_pm_wh),
            config,
        })
    }

    /// The wire bytes (STX..ETX) of the frame the meter sends `sim_seconds` after start.
    /// Time never goes back: an earlier time than the last call is read as the last one, so
    /// the indexes never decrease whatever the caller does.
    pub fn frame_at(&mut self, sim_seconds: f64) -> Vec<u8> {
        let start = f64::from(self.config.day) * SECONDS_PER_DAY + self.config.start;
        // f64::max ignores a NaN, which then also reads as "no time passed".
        let now = (start + sim_seconds).max(self.integrated_to);
        self.integrate_to(now);
        let phase = self.phase(now);
        let net_w = self.load_w(now, phase) - self.solar_w(now);
        let voltage = f64::from(self.config.voltage);
        let (papp, iinst) = if net_w < 0.0 {
            // Injecting: the meter shows no apparent power drawn, and the current that flows
            // out; the meter model reads that pair as injection (the Perl tool's rule).
            (0, (-net_w / voltage).round() as u64)
        } else {
            let papp = (net_w / 10.0).round() as u64 * 10;
            (papp, papp.div_ceil(u64::from(self.config.voltage)))
        };
        let (ptec, pejp) = match phase {
            Phase::Normal => ("HN..", false),
            Phase::Notice => ("HN..", true),
            Phase::Peak => ("PM..", true),
        };
        let isousc = format!("{:02}", self.config.isousc);
        let hn = format!("{:09}", self.hn.wh);
        let pm = format!("{:09}", self.pm.wh);
        let iinst = format!("{:03}", iinst.min(999));
        let papp = format!("{:05}", papp.min(99_999));
        let mut groups: Vec<(&str, &str)> = vec![
            ("ADCO", &self.config.meter_id),
            ("OPTARIF", "EJP."),
            ("ISOUSC", &isousc),
            ("EJPHN", &hn),
            ("EJPHPM", &pm),
        ];
        if pejp {
            groups.push(("PEJP", "30"));
        }
        groups.extend([
            ("PTEC", ptec),
            ("IINST", &iinst),
            ("IMAX", "090"),
            ("PAPP", &papp),
            ("HHPHC", "A"),
            ("MOTDETAT", "000000"),
        ]);
        encode_frame(
            Mode::Historic,
            groups.into_iter().map(|(l, v)| (l, None, v)),
        )
    }

    /// Adds ∫ consumed power dt to the index of each stretch's period. Stretches end at
    /// every slot edge (the load steps there) and every schedule edge (the index changes),
    /// so nothing is attributed to the wrong index.
    fn integrate_to(&mut self, to: f64) {
        let mut a = self.integrated_to;
        while a < to {
            let slot_end = ((a / SLOT_S).floor() + 1.0) * SLOT_S;
            let b = to.min(slot_end).min(self.next_phase_change(a));
            let b = if b > a { b } else { to }; // guards a float edge case against looping
            let phase = self.phase((a + b) / 2.0);
            let steps = ((b - a) / MAX_STEP_S).ceil().max(1.0);
            let h = (b - a) / steps;
            let mut wh = 0.0;
            for i in 0..steps as u32 {
                let t = a + (f64::from(i) + 0.5) * h;
                let net = self.load_w(t, phase) - self.solar_w(t);
                wh += net.max(0.0) * h / 3600.0;
            }
            match phase {
                Phase::Peak => self.pm.add(wh),
                Phase::Normal | Phase::Notice => self.hn.add(wh),
            }
            a = b;
        }
        self.integrated_to = to;
    }

    fn is_ejp_day(&self, day: i64) -> bool {
        let n = i64::from(self.config.ejp_every_n_days);
        n != 0 && day.rem_euclid(n) == 0
    }

    /// The phase at absolute time `t`. A peak may come from the day before (it crosses
    /// midnight) and a notice from the day after (a peak just after midnight).
    fn phase(&self, t: f64) -> Phase {
        let s = &self.config.schedule;
        let today = (t / SECONDS_PER_DAY).floor() as i64;
        let days = (today - 1..=today + 1).filter(|&d| self.is_ejp_day(d));
        let starts = days.map(|d| d as f64 * SECONDS_PER_DAY + s.peak_start);
        let mut phase = Phase::Normal;
        for peak_start in starts {
            if (peak_start..peak_start + s.peak_len()).contains(&t) {
                return Phase::Peak;
            }
            if (peak_start - s.notice_len()..peak_start).contains(&t) {
                phase = Phase::Notice;
            }
        }
        phase
    }

    /// The first schedule edge after `t` (on any day, EJP or not: an extra edge is harmless).
    fn next_phase_change(&self, t: f64) -> f64 {
        let s = &self.config.schedule;
        let today = (t / SECONDS_PER_DAY).floor() as i64;
        (today - 1..=today + 1)
            .map(|d| d as f64 * SECONDS_PER_DAY + s.peak_start)
            .flat_map(|p| [p - s.notice_len(), p, p + s.peak_len()])
            .filter(|&edge| edge > t)
            .fold(f64::INFINITY, f64::min)
    }

    /// What the household draws at `t`, in VA (taken as W: the simulated house is resistive,
    /// so the index's Wh and PAPP's VA are the same quantity).
    fn load_w(&self, t: f64, phase: Phase) -> f64 {
        let hour = t.rem_euclid(SECONDS_PER_DAY) / 3600.0;
        let meals: f64 = BUMPS
            .iter()
            .map(|b| {
                // Distance around the clock, so dinner's tail does not jump at midnight.
                let d = (hour - b.centre_h).abs();
                let d = d.min(24.0 - d);
                b.va * bell(d / b.sigma_h)
            })
            .sum();
        let slot = (t / SLOT_S).floor() as i64;
        let mut appliances = rng(
            self.config.seed,
            STREAM_APPLIANCE,
            slot.div_euclid(APPLIANCE_SLOTS),
        );
        let appliance = if appliances.f64() < APPLIANCE_CHANCE {
            500.0 + 1500.0 * appliances.f64()
        } else {
            0.0
        };
        let keep = if phase == Phase::Peak { PEAK_KEEP } else { 1.0 };
        let fluctuation = 0.9 + 0.2 * rng(self.config.seed, STREAM_SLOT, slot).f64();
        (BASE_VA + (meals + appliance) * keep) * fluctuation
    }

    /// Solar production at `t`, in W: sin²(π·x) over the production window, 0 at its ends
    /// and 1 in its middle, dimmed by passing clouds slot by slot.
    fn solar_w(&self, t: f64) -> f64 {
        let hour = t.rem_euclid(SECONDS_PER_DAY) / 3600.0;
        let (rise, set) = SOLAR_HOURS;
        if !(rise..set).contains(&hour) {
            return 0.0;
        }
        let x = (hour - rise) / (set - rise);
        let bell = (std::f64::consts::PI * x).sin().powi(2);
        let slot = (t / SLOT_S).floor() as i64;
        let mut slot_rng = rng(self.config.seed, STREAM_SLOT, slot);
        slot_rng.f64(); // the first draw is the load's fluctuation
        let cloud = 0.8 + 0.2 * slot_rng.f64();
        self.config.solar_peak_w * bell * cloud
    }
}

/// A PRNG for one (seed, stream, index): the splitmix64 finaliser spreads neighbouring
/// indexes and seeds apart before fastrand takes over.
fn rng(seed: u64, stream: u64, index: i64) -> fastrand::Rng {
    let mut z = seed
        ^ stream.wrapping_mul(0xD1B5_4A32_D192_ED03)
        ^ (index as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    fastrand::Rng::with_seed(z ^ (z >> 31))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::meter::{Meter, Reading};
    use crate::tic::{Decoder, ModeHint};

    const HOUR: f64 = 3600.0;

    #[test]
    fn the_bell_follows_a_gaussian_and_ends_at_four_deviations() {
        for i in 0..=600 {
            let x = f64::from(i) / 100.0;
            let gaussian = (-0.5 * x * x).exp();
            assert!((bell(x) - gaussian).abs() < 0.04, "at {x}: {}", bell(x));
            assert_eq!(bell(-x), bell(x));
        }
        assert_eq!(bell(0.0), 1.0);
        assert_eq!(bell(4.0), 0.0);
        assert_eq!(bell(9.0), 0.0);
    }

    /// Feeds the frames at `times` through one decoder and one meter, as `run` would.
    fn readings(sim: &mut Simulator, times: impl IntoIterator<Item = f64>) -> Vec<(f64, Reading)> {
        let mut decoder = Decoder::new(ModeHint::Auto);
        let mut meter = Meter::new(sim.config.voltage);
        let mut out = Vec::new();
        for t in times {
            let bytes = sim.frame_at(t);
            let mut frames = Vec::new();
            decoder.push(&bytes, |f| frames.push(f));
            assert_eq!(frames.len(), 1, "one frame per call at {t}");
            out.push((t, meter.read(&frames[0], t)));
        }
        let stats = decoder.stats();
        assert_eq!(stats.groups_bad_checksum, 0);
        assert_eq!(stats.groups_malformed, 0);
        assert_eq!(stats.bytes_skipped, 0);
        assert_eq!(
            meter.stats().values_rejected,
            0,
            "every value has its width"
        );
        assert_eq!(meter.stats().index_held, 0, "no index looks like a glitch");
        out
    }

    fn midnight_sim() -> Simulator {
        Simulator::new(SimConfig {
            start: 0.0,
            ..SimConfig::default()
        })
        .unwrap()
    }

    fn every(step: f64, until: f64) -> impl Iterator<Item = f64> {
        (0..)
            .map(move |i| f64::from(i) * step)
            .take_while(move |&t| t <= until)
    }

    fn hour_of_day(t: f64) -> f64 {
        t.rem_euclid(SECONDS_PER_DAY) / HOUR
    }

    #[test]
    fn every_simulated_frame_decodes_with_no_checksum_error_and_every_label() {
        let mut sim = midnight_sim();
        let rs = readings(&mut sim, every(60.0, SECONDS_PER_DAY));
        assert_eq!(rs.len(), 1441);
        for (_, r) in &rs {
            let labels: Vec<&str> = r.entries.iter().map(|e| &*e.label).collect();
            let mut expected = vec!["ADCO", "OPTARIF", "ISOUSC", "EJPHN", "EJPHPM"];
            if r.get("PEJP").is_some() {
                expected.push("PEJP");
            }
            expected.extend(["PTEC", "IINST", "IMAX", "PAPP", "HHPHC", "MOTDETAT"]);
            assert_eq!(labels, expected);
            assert_eq!(r.meter.as_deref(), Some("021728123456"));
            assert_eq!(r.number("ISOUSC"), Some(45));
            assert_eq!(r.text("OPTARIF"), Some("EJP."));
        }
    }

    #[test]
    fn the_notice_is_on_from_0630_to_0700_and_the_peak_from_0700_to_0100() {
        let mut sim = midnight_sim();
        for (t, r) in readings(&mut sim, every(60.0, 2.0 * SECONDS_PER_DAY)) {
            let h = hour_of_day(t);
            let notice = (6.5..7.0).contains(&h);
            // Every day is an EJP day, so the day before's peak runs until 01:00.
            let peak = !(1.0..7.0).contains(&h);
            assert_eq!(r.derived.ejp_notice, notice, "notice at {h:.3} h");
            assert_eq!(r.derived.ejp, peak, "peak at {h:.3} h");
            assert_eq!(r.get("PEJP").is_some(), notice || peak, "PEJP at {h:.3} h");
            let ptec = if peak { "PM.." } else { "HN.." };
            assert_eq!(r.text("PTEC"), Some(ptec), "PTEC at {h:.3} h");
        }
    }

    #[test]
    fn a_day_that_is_not_an_ejp_day_has_no_notice_and_no_peak() {
        // Day 1 from 01:00, when the peak of day 0 has ended, to midnight.
        let mut sim = Simulator::new(SimConfig {
            start: HOUR,
            day: 1,
            ejp_every_n_days: 2,
            ..SimConfig::default()
        })
        .unwrap();
        let rs = readings(&mut sim, every(60.0, 23.0 * HOUR - 60.0));
        assert!(rs.iter().all(|(_, r)| !r.derived.ejp));
        assert!(rs.iter().all(|(_, r)| !r.derived.ejp_notice));
        assert!(rs.iter().all(|(_, r)| r.get("PEJP").is_none()));
        let pm: Vec<_> = rs.iter().map(|(_, r)| r.number("EJPHPM")).collect();
        assert!(
            pm.iter().all(|&i| i == pm[0]),
            "no peak energy on a normal day"
        );
        // Day 2 is one again: 08:00 on day 2 is 31 h after 01:00 on day 1.
        let (_, r) = &readings(&mut sim, [31.0 * HOUR])[0];
        assert!(r.derived.ejp);
    }

    #[test]
    fn a_shortened_schedule_runs_its_notice_and_peak_in_minutes() {
        let mut sim = Simulator::new(SimConfig {
            start: 0.0,
            schedule: EjpSchedule {
                notice_start: 60.0,
                peak_start: 120.0,
                peak_end: 300.0,
            },
            ..SimConfig::default()
        })
        .unwrap();
        let rs = readings(&mut sim, every(10.0, 400.0));
        for (t, r) in rs {
            assert_eq!(r.derived.ejp_notice, (60.0..120.0).contains(&t), "at {t}");
            assert_eq!(r.derived.ejp, (120.0..300.0).contains(&t), "at {t}");
        }
    }

    #[test]
    fn indexes_never_decrease_and_the_peak_index_grows_only_during_the_peak() {
        let mut sim = midnight_sim();
        let rs = readings(&mut sim, every(60.0, 2.0 * SECONDS_PER_DAY));
        let hn = |r: &Reading| r.number("EJPHN").unwrap();
        let pm = |r: &Reading| r.number("EJPHPM").unwrap();
        for pair in rs.windows(2) {
            let ((_, before), (t, after)) = (&pair[0], &pair[1]);
            assert!(hn(after) >= hn(before) && pm(after) >= pm(before), "at {t}");
            // The minute between the two frames lies wholly in the period of the first.
            if pm(after) > pm(before) {
                assert!(before.derived.ejp, "PM grew outside the peak at {t}");
            }
            if hn(after) > hn(before) {
                assert!(!before.derived.ejp, "HN grew during the peak at {t}");
            }
        }
        let (first, last) = (&rs[0].1, &rs[rs.len() - 1].1);
        assert!(pm(last) > pm(first) && hn(last) > hn(first));
    }

    #[test]
    fn asking_for_a_time_before_the_last_one_repeats_the_last_frame() {
        let mut sim = midnight_sim();
        let last = sim.frame_at(10.0 * HOUR);
        assert_eq!(sim.frame_at(3.0 * HOUR), last);
        assert_eq!(sim.frame_at(f64::NAN), last);
        assert_eq!(sim.frame_at(10.0 * HOUR), last);
    }

    #[test]
    fn injection_happens_around_midday_and_never_at_night() {
        let mut sim = midnight_sim();
        let rs = readings(&mut sim, every(60.0, SECONDS_PER_DAY));
        let injecting: Vec<f64> = rs
            .iter()
            .filter(|(_, r)| r.derived.injection_w > 0)
            .map(|(t, _)| hour_of_day(*t))
            .collect();
        assert!(
            injecting.iter().all(|h| (9.0..17.0).contains(h)),
            "{injecting:?}"
        );
        assert!(
            injecting.iter().any(|h| (12.0..14.0).contains(h)),
            "{injecting:?}"
        );
        for (_, r) in &rs {
            if r.derived.injection_w > 0 {
                assert_eq!(r.number("PAPP"), Some(0));
            }
        }
    }

    #[test]
    fn consumption_rises_at_meals_and_is_shed_during_the_peak() {
        let mut normal = Simulator::new(SimConfig {
            start: 0.0,
            ejp_every_n_days: 0,
            ..SimConfig::default()
        })
        .unwrap();
        let mean_papp = |rs: &[(f64, Reading)], from: f64, to: f64| {
            let papp: Vec<i64> = rs
                .iter()
                .filter(|(t, _)| (from..to).contains(&hour_of_day(*t)))
                .map(|(_, r)| r.number("PAPP").unwrap())
                .collect();
            papp.iter().sum::<i64>() / papp.len() as i64
        };
        let plain = readings(&mut normal, every(60.0, SECONDS_PER_DAY));
        let night = mean_papp(&plain, 2.0, 5.0);
        let dinner = mean_papp(&plain, 19.0, 20.0);
        assert!((200..700).contains(&night), "night {night} VA");
        assert!((2000..4500).contains(&dinner), "dinner {dinner} VA");
        let ejp = readings(&mut midnight_sim(), every(60.0, SECONDS_PER_DAY));
        let shed = mean_papp(&ejp, 19.0, 20.0);
        assert!(
            shed < dinner / 2,
            "dinner during a peak {shed} VA vs {dinner} VA"
        );
    }

    #[test]
    fn the_same_seed_gives_the_same_bytes_and_another_seed_other_values() {
        let frames = |seed: u64| {
            let mut sim = Simulator::new(SimConfig {
                seed,
                ..SimConfig::default()
            })
            .unwrap();
            every(37.0, 6.0 * HOUR)
                .map(|t| sim.frame_at(t))
                .collect::<Vec<_>>()
        };
        assert_eq!(frames(7), frames(7));
        let (a, b) = (frames(7), frames(8));
        let differing = a.iter().zip(&b).filter(|(x, y)| x != y).count();
        assert!(differing > a.len() * 9 / 10, "{differing} of {}", a.len());
    }

    #[test]
    fn indexes_do_not_depend_on_how_often_frames_are_asked_for() {
        let end = |step: f64| {
            let mut sim = midnight_sim();
            let rs = readings(&mut sim, every(step, SECONDS_PER_DAY));
            let r = &rs[rs.len() - 1].1;
            (r.number("EJPHN").unwrap(), r.number("EJPHPM").unwrap())
        };
        let (fine, coarse) = (end(7.0), end(3600.0));
        assert!((fine.0 - coarse.0).abs() <= 1 && (fine.1 - coarse.1).abs() <= 1);
    }

    #[test]
    fn energy_added_to_the_indexes_over_a_day_matches_the_integral_of_papp() {
        let mut sim = midnight_sim();
        let rs = readings(&mut sim, every(15.0, SECONDS_PER_DAY));
        let total = |r: &Reading| r.number("EJPHN").unwrap() + r.number("EJPHPM").unwrap();
        let indexed = (total(&rs[rs.len() - 1].1) - total(&rs[0].1)) as f64;
        let integral: f64 = rs
            .windows(2)
            .map(|p| {
                let (t0, r0) = &p[0];
                let (t1, r1) = &p[1];
                let (w0, w1) = (r0.number("PAPP").unwrap(), r1.number("PAPP").unwrap());
                (w0 + w1) as f64 / 2.0 * (t1 - t0) / 3600.0
            })
            .sum();
        assert!(
            indexed > 5000.0,
            "a day of a house is kWh, not {indexed} Wh"
        );
        let error = (indexed - integral).abs() / integral;
        assert!(error < 0.01, "indexes {indexed} Wh, ∫PAPP {integral:.0} Wh");
    }

    #[test]
    fn a_frame_takes_about_a_second_and_a_half_on_the_wire() {
        assert_eq!(wire_seconds(120), 1.0);
        let mut sim = Simulator::new(SimConfig::default()).unwrap();
        let seconds = wire_seconds(sim.frame_at(3600.0).len());
        assert!((1.0..2.0).contains(&seconds), "{seconds} s");
    }

    #[test]
    fn a_config_the_frame_cannot_carry_is_refused_with_the_field_named() {
        let bad = |c: SimConfig| Simulator::new(c).unwrap_err().to_string();
        let msg = bad(SimConfig {
            meter_id: "12345".to_owned(),
            ..SimConfig::default()
        });
        assert!(
            msg.contains("\"12345\"") && msg.contains("12 digits"),
            "{msg}"
        );
        let msg = bad(SimConfig {
            isousc: 100,
            ..SimConfig::default()
        });
        assert!(msg.contains("ISOUSC 100"), "{msg}");
        let msg = bad(SimConfig {
            start: SECONDS_PER_DAY,
            ..SimConfig::default()
        });
        assert!(msg.contains("start = 86400"), "{msg}");
        let msg = bad(SimConfig {
            schedule: EjpSchedule {
                peak_end: 7.0 * HOUR,
                ..EjpSchedule::default()
            },
            ..SimConfig::default()
        });
        assert!(msg.contains("peak_end equals peak_start"), "{msg}");
    }
}
