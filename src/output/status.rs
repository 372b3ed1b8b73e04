//! What the box believes: the facts of the latest frames, each kept until a frame says otherwise,
//! combined with the relay contact into the [`View`] the screen and the LED read.
//!
//! Why not read the latest [`Reading`] alone: a frame whose `PTEC` group failed its checksum
//! still arrives, without `PTEC`, and its `derived.ejp` is then false. Read alone, a noisy line
//! would flash `EJP NON` and put the LED out for a frame in the middle of a peak. So each fact
//! is updated only by a frame that carries the label deciding it, and a notice (`PEJP`, which
//! is absent both when lost and when over) is held for [`NOTICE_HOLD_S`].
//!
//! Time is seconds on the caller's monotonic clock; the wall-clock time of the last frame is
//! given with it, for display. Nothing here reads a clock.

use jiff::civil::Time;

use crate::meter::{Reading, TempoColour};
use crate::tic::Mode;

/// A frame older than this marks the screen as silent: historic frames come every 1.5 s or
/// so, so 30 s is a line that stopped, not a slow one.
pub const SILENT_AFTER_S: f64 = 30.0;

/// After this long without a frame the TIC's facts are dropped: an EJP peak seen hours ago
/// says nothing about now (the relay, if wired, still does).
pub const FORGET_AFTER_S: f64 = 15.0 * 60.0;

/// How long a notice outlives the last frame that carried it, so that one frame whose `PEJP`
/// group was lost does not end it (and standard mode's STGE alike).
pub const NOTICE_HOLD_S: f64 = 10.0;

/// The facts gathered from the frames so far and the relay contact.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Status {
    /// When the last frame came: monotonic seconds and local wall-clock time.
    last_frame: Option<(f64, Time)>,
    /// Peak period, from the last frame with `PTEC` (historic) or `STGE` (standard).
    ejp: Option<bool>,
    /// When a frame last announced a peak; cleared by a frame that shows the peak itself.
    notice_at: Option<f64>,
    consumption_va: Option<i64>,
    injection_w: Option<i64>,
    /// A standard-mode meter that has sent `SINSTI` once is a producer: a frame without it
    /// lost the group, rather than saying 0.
    sinsti_seen: bool,
    period: Option<String>,
    /// The meter said a Tempo colour once: the screen shows colours instead of EJP.
    tempo: bool,
    tempo_today: Option<TempoColour>,
    tempo_tomorrow: Option<TempoColour>,
    /// The relay contact: `None` until the debouncer has settled, or when not wired.
    relay: Option<bool>,
    /// The next tariff change, from the last frame that had every group the calendar reads.
    next_change: Option<crate::meter::NextChange>,
}

/// What the box shows at one moment: the screen and the LED are functions of this alone.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct View {
    /// Wall-clock time of the last frame, if any came.
    pub last_frame: Option<Time>,
    /// Whole seconds since the last frame, once that is more than [`SILENT_AFTER_S`].
    pub silent_s: Option<u64>,
    /// An EJP peak period: `None` when neither the TIC nor the relay says.
    pub ejp: Option<bool>,
    /// A peak is announced and has not started.
    pub notice: bool,
    /// The peak comes from the relay contact while the TIC does not say one.
    pub relay_peak: bool,
    /// The meter is on a Tempo contract.
    pub tempo: bool,
    /// Today's Tempo colour.
    pub tempo_today: Option<TempoColour>,
    /// Tomorrow's Tempo colour, once announced.
    pub tempo_tomorrow: Option<TempoColour>,
    /// The tariff period code (`HN`, `PM`, `HPJR`…).
    pub period: Option<String>,
    /// Apparent power drawn, in VA.
    pub consumption_va: Option<i64>,
    /// Injected power, in W.
    pub injection_w: Option<i64>,
    /// The next tariff change (standard mode): the period it starts in capitals (`HC`, or
    /// `?`) and its time of day as the meter's clock says it (`14:40`).
    pub next_change: Option<(String, String)>,
}

impl Status {
    /// Takes in a frame's reading, seen at `at` (monotonic seconds) and `clock` (local time).
    pub fn on_reading(&mut self, r: &Reading, at: f64, clock: Time) {
        let d = &r.derived;
        self.last_frame = Some((at, clock));
        let decides_period = match r.mode {
            Mode::Historic => r.get("PTEC").is_some(),
            Mode::Standard => r.get("STGE").is_some(),
        };
        if decides_period {
            self.ejp = Some(d.ejp);
            if d.tempo_today.is_some() {
                self.tempo = true;
            }
            self.tempo_today = d.tempo_today;
        }
        if d.ejp {
            self.notice_at = None;
        } else if d.ejp_notice {
            self.notice_at = Some(at);
        }
        let tomorrow_said = match r.mode {
            Mode::Historic => r.get("DEMAIN").is_some(),
            Mode::Standard => r.get("STGE").is_some(),
        };
        if tomorrow_said {
            self.tempo_tomorrow = d.tempo_tomorrow;
        }
        if d.consumption_va.is_some() {
            self.consumption_va = d.consumption_va;
        }
        let injection_said = match r.mode {
            // PAPP > 0 says 0 on its own; PAPP = 0 needs the current too.
            Mode::Historic => match r.number("PAPP") {
                Some(0) => ["IINST", "IINST1", "IINST2", "IINST3"]
                    .iter()
                    .any(|l| r.get(l).is_some()),
                Some(_) => true,
                None => false,
            },
            Mode::Standard => {
                self.sinsti_seen |= r.get("SINSTI").is_some();
                r.get("SINSTI").is_some() || !self.sinsti_seen
            }
        };
        if injection_said {
            self.injection_w = Some(d.injection_w);
        }
        if d.period.is_some() {
            self.period.clone_from(&d.period);
        }
        // A frame that lost a group the calendar reads says nothing of the next change.
        if d.calendar_read {
            self.next_change.clone_from(&d.next_change);
        }
    }

    /// Takes in the relay contact's debounced state (`None`: unknown, or not wired).
    pub fn on_relay(&mut self, closed: Option<bool>) {
        self.relay = closed;
    }

    /// What to show at `now` (the same monotonic seconds as `on_reading`'s `at`).
    /// `relay_for_ejp` is `relay.use_for_ejp`: the contact closed counts as a peak.
    pub fn view(&self, now: f64, relay_for_ejp: bool) -> View {
        let age = self.last_frame.map(|(at, _)| (now - at).max(0.0));
        let fresh = age.is_some_and(|a| a < FORGET_AFTER_S);
        let tic_ejp = self.ejp.filter(|_| fresh);
        let relay = self.relay.filter(|_| relay_for_ejp);
        let ejp = match (tic_ejp, relay) {
            (Some(true), _) | (_, Some(true)) => Some(true),
            (Some(false), _) | (None, Some(false)) => Some(false),
            (None, None) => None,
        };
        let last_at = self.last_frame.map_or(0.0, |(at, _)| at);
        let notice = fresh
            && ejp != Some(true)
            && self.notice_at.is_some_and(|n| last_at - n < NOTICE_HOLD_S);
        View {
            last_frame: self.last_frame.map(|(_, clock)| clock),
            silent_s: age
                .filter(|a| *a > SILENT_AFTER_S)
                .map(|a| a.floor() as u64),
            ejp,
            notice,
            relay_peak: relay == Some(true) && tic_ejp != Some(true),
            tempo: self.tempo,
            tempo_today: self.tempo_today.filter(|_| fresh),
            tempo_tomorrow: self.tempo_tomorrow.filter(|_| fresh),
            period: self.period.clone().filter(|_| fresh),
            consumption_va: self.consumption_va.filter(|_| fresh),
            injection_w: self.injection_w.filter(|_| fresh),
            next_change: self.next_change.as_ref().filter(|_| fresh).and_then(|n| {
                // `2026-12-02T22:00:00+01:00` → `22:00`.
                let hhmm = n.at.get(11..16)?.to_owned();
                Some((n.period.unwrap_or("?").to_ascii_uppercase(), hhmm))
            }),
        }
    }
}
