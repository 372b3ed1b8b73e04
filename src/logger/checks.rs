//! What the logger refuses from the broker, and the counts it keeps of it.
//!
//! Anything that can publish on the broker can send the logger a `state`; it only files what a
//! meter could have sent:
//! - a meter id of 12 digits (ADCO/ADSC), and at most `logger.max_meters` meters;
//! - a `Periode=` that is one of the TIC's period codes (SPEC-NOTES §5.3, and the codes the
//!   daemon derives in standard mode), so no text from a message reaches a log line unchecked;
//! - numbers within the width the TIC gives them (9-digit indexes, 5-digit powers, 3-digit
//!   currents) and, for powers and currents, within a wide margin of the contract;
//! - indexes that grow no faster than the contract's power allows ([`IndexSanity`], the
//!   logger's mirror of the daemon's `meter::guard`);
//! - a `ts` after 2010 and at most a day ahead of the logger's clock;
//! - a `seq` not already filed ([`SeenSeqs`]).
//!
//! Each refusal is counted by class ([`Tally`]) and said once per class, then summed up in the
//! periodic summary, so a flood costs one line of log, not one per message.

use std::collections::BTreeMap;
use std::fmt;

use jiff::Timestamp;
use tracing::warn;

/// The largest `state` payload the logger reads: a real one is under 4 KiB.
pub const MAX_STATE_BYTES: usize = 64 * 1024;

/// The largest index the TIC can send: 9 digits.
pub const MAX_INDEX: u64 = 999_999_999;

/// The largest apparent power the TIC can send (`PAPP`, `SINSTS`: 5 digits), VA.
pub const MAX_VA: i64 = 99_999;

/// The largest current the TIC can send (`IINST`, `IRMS1`: 3 digits), A.
pub const MAX_A: i64 = 999;

/// How far over the contract a power or current may go before it is refused: meters cut at
/// about 1.1×, so 3× is a wide margin that only absurd values cross.
pub const CONTRACT_MARGIN: i64 = 3;

/// The historic `PTEC` values (SPEC-NOTES §5.3).
pub const PTEC_CODES: [&str; 11] = [
    "TH..", "HC..", "HP..", "HN..", "PM..", "HCJB", "HPJB", "HCJW", "HPJW", "HCJR", "HPJR",
];

/// The period codes the daemon derives (`derived.period`), besides `EASF01`..`EASF10`.
pub const PERIOD_CODES: [&str; 11] = [
    "BASE", "HC", "HP", "HN", "PM", "HCJB", "HPJB", "HCJW", "HPJW", "HCJR", "HPJR",
];

/// The earliest `ts` filed: linkymon's meters did not exist before.
pub const EARLIEST: &str = "2010-01-01T00:00:00Z";

/// How far ahead of the logger's clock a `ts` may be.
pub const AHEAD_S: i64 = 24 * 3600;

/// Whether `id` looks like a meter's serial number: 12 digits.
pub fn is_meter_id(id: &str) -> bool {
    id.len() == 12 && id.bytes().all(|b| b.is_ascii_digit())
}

/// Whether `p` is a historic `PTEC` value.
pub fn is_ptec(p: &str) -> bool {
    PTEC_CODES.contains(&p)
}

/// Whether `p` is a period code the daemon derives.
pub fn is_period_code(p: &str) -> bool {
    PERIOD_CODES.contains(&p)
        || p.strip_prefix("EASF").is_some_and(|n| {
            n.len() == 2
                && n.bytes().all(|b| b.is_ascii_digit())
                && (1..=10).contains(&n.parse::<u8>().unwrap_or(0))
        })
}

/// Whether `ts` is one the logger files, by its own clock `now`.
pub fn in_time(ts: Timestamp, now: Timestamp) -> bool {
    let earliest: Timestamp = EARLIEST.parse().unwrap_or(Timestamp::UNIX_EPOCH);
    ts >= earliest && ts.as_second() <= now.as_second().saturating_add(AHEAD_S)
}

/// A class of refused or dropped messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Refusal {
    /// Bigger than [`MAX_STATE_BYTES`].
    Oversized,
    /// Not a `state` object with a `ts` and a meter id.
    Unparsable,
    /// A meter id that is not 12 digits.
    BadMeterId,
    /// A new meter beyond `logger.max_meters`.
    TooManyMeters,
    /// A field a log line would carry that the meter cannot send (a period code, a number).
    BadField,
    /// A number beyond the TIC's width or the contract, or an index that jumps.
    Implausible,
    /// A `ts` before 2010 or more than a day ahead.
    OutOfTime,
    /// A `seq` already filed: a message sent again.
    Duplicate,
}

impl fmt::Display for Refusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Refusal::Oversized => "oversized",
            Refusal::Unparsable => "unparsable",
            Refusal::BadMeterId => "bad_meter_id",
            Refusal::TooManyMeters => "too_many_meters",
            Refusal::BadField => "bad_field",
            Refusal::Implausible => "implausible",
            Refusal::OutOfTime => "out_of_time",
            Refusal::Duplicate => "duplicate",
        })
    }
}

/// Counts of refused messages by class; each class is said once when first seen.
#[derive(Debug, Default, Clone)]
pub struct Tally {
    counts: BTreeMap<Refusal, u64>,
    summarised: u64,
}

impl Tally {
    /// Counts one refusal, saying the first of its class with `why`.
    pub fn count(&mut self, class: Refusal, why: &dyn fmt::Display) {
        let n = self.counts.entry(class).or_insert(0);
        *n += 1;
        if *n == 1 {
            warn!(
                "a state message was dropped ({class}): {why}; further ones of this kind are \
                 only counted (said once)"
            );
        }
    }

    /// How many of `class` so far.
    pub fn get(&self, class: Refusal) -> u64 {
        self.counts.get(&class).copied().unwrap_or(0)
    }

    /// Every class and its count.
    pub fn counts(&self) -> &BTreeMap<Refusal, u64> {
        &self.counts
    }

    /// One line with every count, when some came since the last summary.
    pub fn summary(&mut self) -> Option<String> {
        let total: u64 = self.counts.values().sum();
        if total == self.summarised {
            return None;
        }
        self.summarised = total;
        let parts: Vec<String> = self
            .counts
            .iter()
            .map(|(c, n)| format!("{c}={n}"))
            .collect();
        Some(format!(
            "state messages dropped so far: {} ({total} in all)",
            parts.join(", ")
        ))
    }
}

/// The logger's mirror of the daemon's index guard (`meter::guard`): an index may stay equal
/// or rise by at most what the contract's power allows over the time between two states (plus
/// [`SLACK_HOURS`]), in
/// either order (late states from the daemon's spool arrive after newer ones). A value that
/// breaks the rule is refused unless [`CONFIRMATIONS`] states in a row agree with it (a meter
/// swapped, a logger stopped for long), then it becomes the new reference.
#[derive(Debug, Default, Clone)]
pub struct IndexSanity {
    tracks: BTreeMap<String, Track>,
}

/// States that must agree with a suspicious index before it is believed, as the daemon's.
pub const CONFIRMATIONS: u8 = 2;

/// Allowed overshoot over the contract's power (the daemon's margin).
const POWER_MARGIN: f64 = 1.5;
/// Allowed rise regardless of time, in hours at the contract's full power: `ts` is the
/// daemon's wall clock, while a simulated meter (`linkymon demo`, `meter.port: simulate`)
/// counts energy up to `simulate_speed` times faster; an hour covers that, and still refuses
/// the forged jumps of thousands of kWh this check is for.
const SLACK_HOURS: f64 = 1.0;

#[derive(Debug, Clone)]
struct Track {
    value: u64,
    at: i64,
    candidate: Option<(u64, i64, u8)>,
}

fn plausible(a: (u64, i64), b: (u64, i64), max_power_w: f64) -> bool {
    let (early, late) = if a.1 <= b.1 { (a, b) } else { (b, a) };
    let hours = (late.1 - early.1) as f64 / 3600.0;
    let max_rise = max_power_w * POWER_MARGIN * (hours + SLACK_HOURS);
    late.0 >= early.0 && ((late.0 - early.0) as f64) <= max_rise
}

impl IndexSanity {
    /// Judges the indexes of one state, taken or held whole: [`Verdict::Accept`] when each
    /// is plausible; else [`Verdict::Hold`] until [`CONFIRMATIONS`] states in a row agree
    /// with the new values, then [`Verdict::Release`] (they become the reference).
    pub fn check(&mut self, indexes: &[(String, u64)], at: i64, max_power_w: f64) -> Verdict {
        // The fewest confirmations among the suspicious indexes; None when none is.
        let mut least: Option<u8> = None;
        for (key, value) in indexes {
            let Some(t) = self.tracks.get(key) else {
                continue;
            };
            if plausible((t.value, t.at), (*value, at), max_power_w) {
                continue;
            }
            let confirmations = match t.candidate {
                Some((v, a, c)) if plausible((v, a), (*value, at), max_power_w) => c + 1,
                _ => 0,
            };
            least = Some(least.map_or(confirmations, |l| l.min(confirmations)));
        }
        let verdict = match least {
            None => Verdict::Accept,
            Some(c) if c >= CONFIRMATIONS => Verdict::Release,
            Some(c) => Verdict::Hold { restart: c == 0 },
        };
        for (key, value) in indexes {
            let t = self.tracks.entry(key.clone()).or_insert(Track {
                value: *value,
                at,
                candidate: None,
            });
            match verdict {
                Verdict::Hold { .. } => {
                    if !plausible((t.value, t.at), (*value, at), max_power_w) {
                        let c = match t.candidate {
                            Some((v, a, c)) if plausible((v, a), (*value, at), max_power_w) => {
                                c + 1
                            }
                            _ => 0,
                        };
                        t.candidate = Some((*value, at, c));
                    }
                }
                Verdict::Release => {
                    t.value = *value;
                    t.at = at;
                    t.candidate = None;
                }
                Verdict::Accept => {
                    if at >= t.at {
                        t.value = *value;
                        t.at = at;
                    }
                    t.candidate = None;
                }
            }
        }
        verdict
    }
}

/// What to do with a state, by its indexes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// File it.
    Accept,
    /// Keep it aside: it may be an outlier (dropped when the next state is plausible again)
    /// or the first of a new series (a meter reset). `restart`: it does not follow the states
    /// held before it, which are outliers.
    Hold {
        /// The states held before it do not lead to it.
        restart: bool,
    },
    /// It confirms the states held before it: file them, then it.
    Release,
}

/// The `seq` numbers of one meter's states already taken, as ranges, so a message sent again
/// (the daemon re-sends what was not acknowledged after a crash) is filed once, whatever the
/// order the spool and live readings interleave in. Bounded: past [`MAX_RANGES`] gaps, the
/// oldest ranges are merged into a floor below which everything counts as taken.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct SeenSeqs {
    /// Every seq ≤ floor is taken.
    floor: Option<u64>,
    /// Taken ranges above the floor, start → end (inclusive), disjoint and not adjacent.
    ranges: BTreeMap<u64, u64>,
}

/// The most separate ranges kept per meter.
pub const MAX_RANGES: usize = 256;

impl SeenSeqs {
    /// Whether `seq` was taken already.
    pub fn contains(&self, seq: u64) -> bool {
        if self.floor.is_some_and(|f| seq <= f) {
            return true;
        }
        self.ranges
            .range(..=seq)
            .next_back()
            .is_some_and(|(_, &end)| seq <= end)
    }

    /// Notes `seq` as taken.
    pub fn insert(&mut self, seq: u64) {
        if self.contains(seq) {
            return;
        }
        let mut start = seq;
        let mut end = seq;
        if let Some((&s, &e)) = self.ranges.range(..seq).next_back()
            && e.checked_add(1) == Some(seq)
        {
            self.ranges.remove(&s);
            start = s;
        }
        if let Some(next) = seq.checked_add(1)
            && let Some(e) = self.ranges.remove(&next)
        {
            end = e;
        }
        if self.floor.is_some_and(|f| f.checked_add(1) == Some(start)) {
            self.floor = Some(end);
        } else {
            self.ranges.insert(start, end);
        }
        while self.ranges.len() > MAX_RANGES {
            if let Some((_, e)) = self.ranges.pop_first() {
                self.floor = Some(e);
            }
        }
    }

    /// The highest seq taken.
    pub fn highest(&self) -> Option<u64> {
        self.ranges.values().next_back().copied().or(self.floor)
    }

    /// Written form for the logger's `.seq` file: `floor;a-b,c-d`.
    pub fn to_text(&self) -> String {
        let ranges: Vec<String> = self
            .ranges
            .iter()
            .map(|(s, e)| format!("{s}-{e}"))
            .collect();
        let floor = self.floor.map(|f| f.to_string()).unwrap_or_default();
        format!("{floor};{}", ranges.join(","))
    }

    /// Reads [`to_text`](Self::to_text)'s form; `None` when it is not that.
    pub fn from_text(text: &str) -> Option<SeenSeqs> {
        let (floor, ranges) = text.trim().split_once(';')?;
        let mut out = SeenSeqs {
            floor: if floor.is_empty() {
                None
            } else {
                Some(floor.parse().ok()?)
            },
            ranges: BTreeMap::new(),
        };
        for r in ranges.split(',').filter(|r| !r.is_empty()) {
            let (s, e) = r.split_once('-')?;
            let (s, e): (u64, u64) = (s.parse().ok()?, e.parse().ok()?);
            if s > e {
                return None;
            }
            out.ranges.insert(s, e);
        }
        if out.ranges.len() > MAX_RANGES {
            return None;
        }
        Some(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn meter_ids_are_twelve_digits() {
        assert!(is_meter_id("021728123456"));
        for bad in ["", "0228", "02172812345a", "0217281234567", "../etc/passw"] {
            assert!(!is_meter_id(bad), "{bad}");
        }
    }

    #[test]
    fn only_the_tic_period_codes_pass() {
        assert!(is_ptec("HN.."));
        assert!(!is_ptec("HN..\n2021/02/20 19:10:22\tDATA"));
        assert!(!is_ptec("HN"));
        for code in ["HN", "PM", "BASE", "HPJR", "EASF01", "EASF10"] {
            assert!(is_period_code(code), "{code}");
        }
        for code in ["EASF00", "EASF11", "EASF1", "HP\n", "hp", "HP, IndexHP=1"] {
            assert!(!is_period_code(code), "{code}");
        }
    }

    #[test]
    fn a_ts_before_2010_or_a_day_ahead_is_out_of_time() {
        let now: Timestamp = "2026-12-01T12:00:00Z".parse().unwrap();
        assert!(in_time("2026-12-02T11:59:00Z".parse().unwrap(), now));
        assert!(!in_time("2026-12-02T12:01:00Z".parse().unwrap(), now));
        assert!(!in_time("9999-01-01T00:00:00Z".parse().unwrap(), now));
        assert!(!in_time("2009-12-31T23:59:59Z".parse().unwrap(), now));
        assert!(in_time("2010-01-01T00:00:00Z".parse().unwrap(), now));
    }

    #[test]
    fn an_index_that_jumps_is_refused_until_confirmed_and_late_states_pass() {
        let mut g = IndexSanity::default();
        let idx = |v: u64| vec![("HN".to_owned(), v), ("HPM".to_owned(), 7)];
        let mut check = |v: u64, at: i64| g.check(&idx(v), at, 6000.0);
        assert_eq!(check(1000, 0), Verdict::Accept);
        assert_eq!(check(1010, 10), Verdict::Accept);
        // A late state from the spool, 10 s before, slightly lower: fine.
        assert_eq!(check(1005, 5), Verdict::Accept);
        // A jump of 1 GWh in 10 s: held, and the next plausible state shows it an outlier.
        assert_eq!(check(999_000_000, 20), Verdict::Hold { restart: true });
        assert_eq!(check(1020, 30), Verdict::Accept);
        // Going back a lot: held.
        assert_eq!(check(10, 40), Verdict::Hold { restart: true });
        assert_eq!(check(1030, 50), Verdict::Accept);
        // A meter reset: believed once confirmed.
        assert_eq!(check(50, 60), Verdict::Hold { restart: true });
        assert_eq!(check(51, 70), Verdict::Hold { restart: false });
        assert_eq!(check(52, 80), Verdict::Release);
        assert_eq!(check(53, 90), Verdict::Accept);
    }

    #[test]
    fn seen_seqs_take_each_once_in_any_order_and_read_back() {
        let mut s = SeenSeqs::default();
        for seq in [5, 1, 2, 3, 10, 4, 9] {
            assert!(!s.contains(seq));
            s.insert(seq);
            assert!(s.contains(seq));
        }
        assert!(!s.contains(6) && !s.contains(8) && !s.contains(11) && !s.contains(0));
        assert_eq!(s.highest(), Some(10));
        let back = SeenSeqs::from_text(&s.to_text()).unwrap();
        assert_eq!(back, s, "{}", s.to_text());
        assert_eq!(SeenSeqs::from_text("x"), None);
    }

    #[test]
    fn seen_seqs_stay_bounded_whatever_the_gaps() {
        let mut s = SeenSeqs::default();
        for seq in (0..100_000u64).step_by(2) {
            s.insert(seq);
        }
        assert!(s.ranges.len() <= MAX_RANGES);
        assert!(s.contains(99_998) && s.contains(0));
        assert!(!s.contains(99_999));
    }

    #[test]
    fn the_tally_sums_up_only_when_something_new_came() {
        let mut t = Tally::default();
        assert_eq!(t.summary(), None);
        t.count(Refusal::BadMeterId, &"x");
        t.count(Refusal::BadMeterId, &"x");
        t.count(Refusal::OutOfTime, &"y");
        assert_eq!(t.get(Refusal::BadMeterId), 2);
        assert!(
            t.summary()
                .unwrap()
                .contains("bad_meter_id=2, out_of_time=1")
        );
        assert_eq!(t.summary(), None);
    }
}
