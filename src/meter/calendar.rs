//! The tariff calendar of standard mode: when the next tariff change comes and which period it
//! starts, from the day profiles the meter sends (SPEC-NOTES §7.4) and its clock (`DATE`).
//!
//! `PJOURF+1` is tomorrow's profile: up to 11 blocks `HHMMSSSS`, a start time and a 16-bit
//! action word whose low 4 bits are the supplier index from then on (0 and 11–15: no change),
//! unused blocks `NONUTILE`. Today's profile is the one the meter gave as tomorrow's the day
//! before under the same number (`NJOURF` = yesterday's `NJOURF+1`), which [`super::energy`]
//! remembers, or `PJOURF+1` itself when today's and tomorrow's numbers are equal. `PPOINTE`
//! is the profile of the next peak day, which replaces the day's own.
//!
//! On a Tempo contract the profiles only say off-peak (index 1) or peak (index 2): the colour
//! comes from the day, a Tempo day running from 06:00 to 06:00.

use jiff::civil::{Date, DateTime, Time};
use serde::Serialize;

use super::stge::TempoColour;

/// One block of a day profile.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Slot {
    /// Start time, in minutes after midnight.
    pub minute: u16,
    /// The supplier index from then on (1–10), `None` when the block changes none.
    pub index: Option<u8>,
}

/// Blocks of a profile, at most.
const MAX_SLOTS: usize = 11;

/// The slots of a `PJOURF+1` or `PPOINTE` value; `None` when a block is neither `NONUTILE`
/// nor `HHMM` + 4 hex digits with a valid time.
pub fn parse_schedule(text: &str) -> Option<Vec<Slot>> {
    let mut slots = Vec::new();
    for block in text.split_ascii_whitespace() {
        if block == "NONUTILE" {
            continue;
        }
        if block.len() != 8 || !block.is_ascii() || slots.len() == MAX_SLOTS {
            return None;
        }
        let hour: u16 = block[0..2].parse().ok()?;
        let minute: u16 = block[2..4].parse().ok()?;
        let action = u16::from_str_radix(&block[4..8], 16).ok()?;
        if hour > 23 || minute > 59 || !block[..4].bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        let index = (action & 0xF) as u8;
        slots.push(Slot {
            minute: hour * 60 + minute,
            index: (1..=10).contains(&index).then_some(index),
        });
    }
    Some(slots)
}

/// The next tariff change: `<base>/<id>/next_change`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct NextChange {
    /// When, ISO 8601 with the meter's offset.
    pub at: String,
    /// The period it starts (`hc`, `pm`…), when known.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub period: Option<&'static str>,
}

/// What the calendar needs from one frame and from what was learnt.
#[derive(Debug, Clone)]
pub struct Calendar<'a> {
    /// The meter's clock (`DATE`) as ISO 8601, with its offset.
    pub now: &'a str,
    /// The active supplier index (`NTARF`).
    pub index: Option<u8>,
    /// The period in force (`hn`, `hcjw`…), if known.
    pub period: Option<&'static str>,
    /// Today's profile, when known.
    pub today: Option<&'a str>,
    /// Tomorrow's profile.
    pub tomorrow: Option<&'a str>,
    /// On a Tempo contract: the colour of the current Tempo day and of the next.
    pub tempo: Option<(Option<TempoColour>, Option<TempoColour>)>,
    /// Mobile peaks to come or in progress (start or end, as ISO 8601 without offset, and the
    /// period they start).
    pub peaks: Vec<(&'a str, &'static str)>,
}

/// One possible change: when, with which index and period.
#[derive(Debug, Clone, Copy)]
struct Event {
    at: DateTime,
    index: Option<u8>,
    period: Option<&'static str>,
    /// Tempo: whether it starts off-peak (`hc`) hours.
    offpeak: Option<bool>,
}

impl Calendar<'_> {
    /// The first change after now: the first slot or peak bound that starts another index or
    /// period than the one in force. `None` when the clock is unreadable or no known slot
    /// changes anything before the end of tomorrow.
    pub fn next_change(
        &self,
        period_of: impl Fn(u8) -> Option<&'static str>,
    ) -> Option<NextChange> {
        let (now, offset) = split_iso(self.now)?;
        let today = now.date();
        let tomorrow = today.tomorrow().ok()?;
        let mut events = Vec::new();
        for (day, schedule) in [(today, self.today), (tomorrow, self.tomorrow)] {
            let Some(slots) = schedule.and_then(parse_schedule) else {
                continue;
            };
            for slot in slots {
                let Some(index) = slot.index else { continue };
                let time =
                    Time::new((slot.minute / 60) as i8, (slot.minute % 60) as i8, 0, 0).ok()?;
                let at = day.to_datetime(time);
                events.push(self.slot_event(at, index, now, &period_of));
            }
        }
        for (at, period) in &self.peaks {
            if let Ok(at) = at.parse::<DateTime>() {
                events.push(Event {
                    at,
                    index: None,
                    period: Some(period),
                    offpeak: None,
                });
            }
        }
        events.sort_by_key(|e| e.at);
        let current_offpeak = self.period.map(|p| p.starts_with("hc"));
        let change =
            events
                .into_iter()
                .filter(|e| e.at > now)
                .find(|e| match (e.period, self.period) {
                    (Some(p), Some(current)) => p != current,
                    _ => match (e.offpeak, current_offpeak) {
                        (Some(a), Some(b)) => a != b,
                        _ => e.index.is_some() && e.index != self.index,
                    },
                })?;
        Some(NextChange {
            at: format!("{}{offset}", change.at.strftime("%Y-%m-%dT%H:%M:%S")),
            period: change.period,
        })
    }

    fn slot_event(
        &self,
        at: DateTime,
        index: u8,
        now: DateTime,
        period_of: &impl Fn(u8) -> Option<&'static str>,
    ) -> Event {
        let Some((current, next)) = self.tempo else {
            return Event {
                at,
                index: Some(index),
                period: period_of(index),
                offpeak: None,
            };
        };
        // The profile says off-peak (1) or peak (2); the colour is the Tempo day's.
        let offpeak = index == 1;
        let tempo_day = |t: DateTime| t.checked_sub(jiff::Span::new().hours(6)).map(|t| t.date());
        let colour = match (tempo_day(at), tempo_day(now)) {
            (Ok(d), Ok(n)) if d == n => current,
            (Ok(d), Ok(n)) if n.tomorrow().is_ok_and(|t| t == d) => next,
            _ => None,
        };
        Event {
            at,
            index: None,
            period: colour.and_then(|c| tempo_period(offpeak, c)),
            offpeak: Some(offpeak),
        }
    }
}

/// `hcjb`, `hpjr`…
fn tempo_period(offpeak: bool, colour: TempoColour) -> Option<&'static str> {
    let i = match colour {
        TempoColour::Blue => 0,
        TempoColour::White => 2,
        TempoColour::Red => 4,
    } + usize::from(!offpeak);
    super::energy::PERIODS.get(5 + i).copied()
}

/// `2026-12-02T21:30:00+01:00` → the civil time and `+01:00`.
fn split_iso(iso: &str) -> Option<(DateTime, &str)> {
    let (civil, offset) = (iso.get(..19)?, iso.get(19..)?);
    Some((civil.parse().ok()?, offset))
}

/// The date of an ISO 8601 date-time (with or without offset).
pub fn date_of(iso: &str) -> Option<Date> {
    iso.get(..10)?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An HC contract's tomorrow, from corpus `std-1p-prod-hc-teleinfo2mqtt.tic`.
    const HC: &str = "00008002 0210C001 08108002 1440C001 16408002 NONUTILE NONUTILE NONUTILE \
                      NONUTILE NONUTILE NONUTILE";
    /// A Tempo contract's, from corpus `std-3p-tempo-teleinfo-nom-raw.tic`.
    const TEMPO: &str = "00004001 06004002 22004001 NONUTILE NONUTILE NONUTILE NONUTILE \
                         NONUTILE NONUTILE NONUTILE NONUTILE";

    fn hc_period(n: u8) -> Option<&'static str> {
        match n {
            1 => Some("hc"),
            2 => Some("hp"),
            _ => None,
        }
    }

    fn calendar<'a>(now: &'a str, period: &'static str, index: u8) -> Calendar<'a> {
        Calendar {
            now,
            index: Some(index),
            period: Some(period),
            today: Some(HC),
            tomorrow: Some(HC),
            tempo: None,
            peaks: Vec::new(),
        }
    }

    #[test]
    fn corpus_schedules_decode_to_start_times_and_indexes() {
        let slots = parse_schedule(HC).unwrap();
        let pairs: Vec<(u16, Option<u8>)> = slots.iter().map(|s| (s.minute, s.index)).collect();
        assert_eq!(
            pairs,
            [
                (0, Some(2)),
                (130, Some(1)),
                (490, Some(2)),
                (880, Some(1)),
                (1000, Some(2))
            ]
        );
        let tempo = parse_schedule(TEMPO).unwrap();
        assert_eq!(tempo.len(), 3);
        assert_eq!(
            tempo[1],
            Slot {
                minute: 360,
                index: Some(2)
            }
        );
        let base = parse_schedule("00008001 NONUTILE NONUTILE").unwrap();
        assert_eq!(
            base,
            [Slot {
                minute: 0,
                index: Some(1)
            }]
        );
        assert_eq!(
            parse_schedule("00008000").unwrap()[0].index,
            None,
            "0: no change"
        );
        for bad in ["2500C001", "0210C0G1", "0210C001X", "02é0C001", "ABCD8001"] {
            assert_eq!(parse_schedule(bad), None, "{bad}");
        }
        let too_many = ["00008001"; 12].join(" ");
        assert_eq!(parse_schedule(&too_many), None);
    }

    #[test]
    fn the_next_change_is_the_next_slot_with_another_index() {
        let c = calendar("2025-03-10T10:00:00+01:00", "hp", 2);
        assert_eq!(
            c.next_change(hc_period),
            Some(NextChange {
                at: "2025-03-10T14:40:00+01:00".into(),
                period: Some("hc")
            })
        );
        // In the evening, the next one is tomorrow's 02:10 (00:00 keeps HP).
        let c = calendar("2025-03-10T17:00:00+01:00", "hp", 2);
        assert_eq!(
            c.next_change(hc_period).unwrap().at,
            "2025-03-11T02:10:00+01:00"
        );
        // Without today's profile, only tomorrow's slots count.
        let mut c = calendar("2025-03-10T10:00:00+02:00", "hp", 2);
        c.today = None;
        assert_eq!(
            c.next_change(hc_period).unwrap().at,
            "2025-03-11T02:10:00+02:00"
        );
        // Nothing readable: nothing said.
        c.tomorrow = None;
        assert_eq!(c.next_change(hc_period), None);
        assert_eq!(calendar("garbage", "hp", 2).next_change(hc_period), None);
    }

    #[test]
    fn tempo_slots_take_the_colour_of_their_tempo_day() {
        let mut c = calendar("2020-02-14T23:08:00+01:00", "hcjw", 3);
        c.today = Some(TEMPO);
        c.tomorrow = Some(TEMPO);
        c.tempo = Some((Some(TempoColour::White), Some(TempoColour::Blue)));
        // 00:00 keeps off-peak hours; 06:00 starts tomorrow's peak hours, blue.
        assert_eq!(
            c.next_change(|_| None),
            Some(NextChange {
                at: "2020-02-15T06:00:00+01:00".into(),
                period: Some("hpjb")
            })
        );
        // At 10:00 of a white day, 22:00 starts the white off-peak hours.
        c.now = "2020-02-14T10:00:00+01:00";
        c.period = Some("hpjw");
        assert_eq!(c.next_change(|_| None).unwrap().period, Some("hcjw"));
        // Tomorrow not announced: the change is known, its colour is not.
        c.now = "2020-02-14T23:00:00+01:00";
        c.period = Some("hcjw");
        c.tempo = Some((Some(TempoColour::White), None));
        assert_eq!(
            c.next_change(|_| None),
            Some(NextChange {
                at: "2020-02-15T06:00:00+01:00".into(),
                period: None
            })
        );
    }

    #[test]
    fn a_mobile_peak_to_come_is_a_change_to_its_period() {
        let mut c = calendar("2026-12-02T10:00:00+01:00", "hn", 1);
        c.today = Some("00004001 NONUTILE");
        c.tomorrow = Some("00004001 NONUTILE");
        assert_eq!(c.next_change(|n| (n == 1).then_some("hn")), None);
        c.peaks = vec![("2026-12-03T07:00:00", "pm"), ("2026-12-04T01:00:00", "hn")];
        assert_eq!(
            c.next_change(|n| (n == 1).then_some("hn")),
            Some(NextChange {
                at: "2026-12-03T07:00:00+01:00".into(),
                period: Some("pm")
            })
        );
    }
}
