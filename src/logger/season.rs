//! The season's days: how many EJP peak days, or Tempo red and white days, the meter has
//! shown this season, and how many are left. Pure: days in, counts and payloads out.
//!
//! - **A day's mark** ([`DayMark`]) comes from its log lines' `Periode=`, the same in both
//!   tools' logs and in both modes (historic `PTEC` `PM..`, `HPJR`…; standard mode's period
//!   codes `PM`, `HPJR`…). The meter's tariff day starts at 06:00: before that, a Tempo meter
//!   still shows the day before's colour, and EJP's peak runs from 07:00 to 01:00 the next
//!   day. So only lines from 06:00 (Tempo) or 01:00 (EJP) on mark their own day: a day with
//!   such a `PM` line is an EJP day; a Tempo day has the colour most of those lines show.
//! - **Seasons** ([`Season`]): EJP's runs from 1 November to 31 March (22 days); Tempo's from
//!   1 September to 31 August (22 red days, 43 white). A season is named by its two years,
//!   `2026-2027`. Between 1 April and 31 October, outside EJP's season, the season shown is
//!   the coming one.
//! - **Counts** ([`Counts`]) come from the marks of the days of one season; the contract is
//!   that of the newest marked day. The `season` payload is contract §6's.

use std::collections::BTreeMap;

use jiff::civil::{Date, date};

use super::line::LogLine;

/// EJP peak days in a season.
pub const EJP_DAYS: u32 = 22;
/// Tempo red days in a season.
pub const TEMPO_RED_DAYS: u32 = 22;
/// Tempo white days in a season.
pub const TEMPO_WHITE_DAYS: u32 = 43;

/// A Tempo day's colour.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Colour {
    /// Blue: the cheapest, most days.
    Blue,
    /// White.
    White,
    /// Red: the dearest, 22 a season.
    Red,
}

impl Colour {
    /// The colour a Tempo period code names (`HCJB`, `HPJR`…), if it is one.
    pub fn of_period(code: &str) -> Option<Colour> {
        match code {
            "HCJB" | "HPJB" => Some(Colour::Blue),
            "HCJW" | "HPJW" => Some(Colour::White),
            "HCJR" | "HPJR" => Some(Colour::Red),
            _ => None,
        }
    }

    /// Its name, in pages and payloads.
    pub fn name(self) -> &'static str {
        match self {
            Colour::Blue => "blue",
            Colour::White => "white",
            Colour::Red => "red",
        }
    }
}

/// What a day was on a contract with a season.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DayMark {
    /// An EJP contract's day: `peak` when it had peak (`PM`) hours.
    Ejp {
        /// The day had peak hours.
        peak: bool,
    },
    /// A Tempo day of this colour.
    Tempo(Colour),
}

/// The first hour whose lines mark their own day: Tempo's day starts at 06:00.
const TEMPO_DAY_STARTS: i8 = 6;
/// EJP's peak hours end at 01:00: a `PM` line from then on belongs to its own day.
const EJP_DAY_STARTS: i8 = 1;

/// Adds up the lines of one day, in any order, to its [`DayMark`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct MarkTally {
    /// Lines of each colour, blue, white, red, from 06:00.
    colours: [u32; 3],
    /// An EJP period (`HN` or `PM`) was seen.
    ejp: bool,
    /// A `PM` line from 01:00.
    peak: bool,
}

impl MarkTally {
    /// Counts one line of the day.
    pub fn add(&mut self, line: &LogLine) {
        let code = line.period_code();
        let hour = line.time.hour();
        if let Some(colour) = Colour::of_period(code) {
            if hour >= TEMPO_DAY_STARTS {
                self.colours[colour as usize] += 1;
            }
        } else if code == "PM" {
            self.ejp = true;
            self.peak |= hour >= EJP_DAY_STARTS;
        } else if code == "HN" {
            self.ejp = true;
        }
    }

    /// The day's mark: Tempo's colour most lines from 06:00 showed (the dearest on a tie),
    /// else EJP's; `None` on other contracts, or before 06:00 on a Tempo day.
    pub fn mark(&self) -> Option<DayMark> {
        let [blue, white, red] = self.colours;
        if blue + white + red > 0 {
            let colour = if red >= white && red >= blue {
                Colour::Red
            } else if white >= blue {
                Colour::White
            } else {
                Colour::Blue
            };
            return Some(DayMark::Tempo(colour));
        }
        self.ejp.then_some(DayMark::Ejp { peak: self.peak })
    }

    /// The mark of a day's lines.
    pub fn of_lines<'a>(lines: impl IntoIterator<Item = &'a LogLine>) -> Option<DayMark> {
        let mut tally = MarkTally::default();
        for line in lines {
            tally.add(line);
        }
        tally.mark()
    }
}

/// Which contract's season.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Kind {
    /// EJP: 1 November to 31 March.
    Ejp,
    /// Tempo: 1 September to 31 August.
    Tempo,
}

impl DayMark {
    /// The contract the mark is of.
    pub fn kind(self) -> Kind {
        match self {
            DayMark::Ejp { .. } => Kind::Ejp,
            DayMark::Tempo(_) => Kind::Tempo,
        }
    }

    /// A short text for a day page's meta, read back by [`DayMark::from_code`].
    pub fn code(self) -> &'static str {
        match self {
            DayMark::Ejp { peak: true } => "ejp",
            DayMark::Ejp { peak: false } => "normal",
            DayMark::Tempo(Colour::Blue) => "blue",
            DayMark::Tempo(Colour::White) => "white",
            DayMark::Tempo(Colour::Red) => "red",
        }
    }

    /// The mark [`DayMark::code`] wrote.
    pub fn from_code(code: &str) -> Option<DayMark> {
        Some(match code {
            "ejp" => DayMark::Ejp { peak: true },
            "normal" => DayMark::Ejp { peak: false },
            "blue" => DayMark::Tempo(Colour::Blue),
            "white" => DayMark::Tempo(Colour::White),
            "red" => DayMark::Tempo(Colour::Red),
            _ => return None,
        })
    }
}

/// A season: a contract and the year it starts in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Season {
    /// The contract.
    pub kind: Kind,
    /// The year of its first day.
    pub year: i16,
}

impl Season {
    /// The season `day` counts in (for EJP between April and October: the coming one).
    pub fn of(kind: Kind, day: Date) -> Season {
        let starts_in = match kind {
            Kind::Ejp => 4, // the year's season is the one starting in November
            Kind::Tempo => 9,
        };
        let year = if day.month() >= starts_in {
            day.year()
        } else {
            day.year() - 1
        };
        Season { kind, year }
    }

    /// Its first day.
    pub fn first(self) -> Date {
        match self.kind {
            Kind::Ejp => date(self.year, 11, 1),
            Kind::Tempo => date(self.year, 9, 1),
        }
    }

    /// Its last day.
    pub fn last(self) -> Date {
        match self.kind {
            Kind::Ejp => date(self.year + 1, 3, 31),
            Kind::Tempo => date(self.year + 1, 8, 31),
        }
    }

    /// Whether `day` is in it.
    pub fn contains(self, day: Date) -> bool {
        (self.first()..=self.last()).contains(&day)
    }

    /// `2026-2027`.
    pub fn name(self) -> String {
        format!("{}-{}", self.year, self.year + 1)
    }
}

/// Days used and left of one allowance.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct Allowance {
    /// Days seen.
    pub used: u32,
    /// Days the season still has (0 once all are used, even if the logs show more).
    pub left: u32,
}

impl Allowance {
    fn of(used: u32, total: u32) -> Self {
        Allowance {
            used,
            left: total.saturating_sub(used),
        }
    }
}

/// A season's counters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Counters {
    /// EJP peak days.
    Ejp(Allowance),
    /// Tempo red and white days.
    Tempo {
        /// Red days.
        red: Allowance,
        /// White days.
        white: Allowance,
    },
}

/// A season and its counters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Counts {
    /// The season.
    pub season: Season,
    /// What was used and is left.
    pub counters: Counters,
}

impl Counts {
    /// Counts the marked days of `season` among `marks` (days outside it are ignored).
    pub fn of<'a>(
        season: Season,
        marks: impl IntoIterator<Item = (&'a Date, &'a DayMark)>,
    ) -> Self {
        let (mut peak, mut red, mut white) = (0, 0, 0);
        for (day, mark) in marks {
            if !season.contains(*day) {
                continue;
            }
            match mark {
                DayMark::Ejp { peak: true } => peak += 1,
                DayMark::Tempo(Colour::Red) => red += 1,
                DayMark::Tempo(Colour::White) => white += 1,
                _ => {}
            }
        }
        let counters = match season.kind {
            Kind::Ejp => Counters::Ejp(Allowance::of(peak, EJP_DAYS)),
            Kind::Tempo => Counters::Tempo {
                red: Allowance::of(red, TEMPO_RED_DAYS),
                white: Allowance::of(white, TEMPO_WHITE_DAYS),
            },
        };
        Counts { season, counters }
    }

    /// The counts of the season of the newest marked day, with that day's contract; `None`
    /// without any marked day. `marks` is by date (a [`BTreeMap`] walked backwards).
    pub fn current(marks: &BTreeMap<Date, DayMark>) -> Option<Self> {
        let (day, mark) = marks.iter().next_back()?;
        let season = Season::of(mark.kind(), *day);
        Some(Counts::of(
            season,
            marks.range(season.first()..=season.last()),
        ))
    }

    /// The retained `<base>/<id>/season` payload of contract §6.
    pub fn json(&self) -> String {
        #[derive(serde::Serialize)]
        struct Tempo {
            red: Allowance,
            white: Allowance,
        }
        #[derive(serde::Serialize)]
        struct Payload {
            season: String,
            #[serde(skip_serializing_if = "Option::is_none")]
            ejp: Option<Allowance>,
            #[serde(skip_serializing_if = "Option::is_none")]
            tempo: Option<Tempo>,
        }
        let (ejp, tempo) = match self.counters {
            Counters::Ejp(ejp) => (Some(ejp), None),
            Counters::Tempo { red, white } => (None, Some(Tempo { red, white })),
        };
        let payload = Payload {
            season: self.season.name(),
            ejp,
            tempo,
        };
        // Strings and integers always serialise.
        serde_json::to_string(&payload).unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line(text: &str) -> LogLine {
        text.parse().unwrap()
    }

    #[test]
    fn a_perl_ejp_day_with_peak_hours_is_an_ejp_day_and_the_night_after_is_not() {
        let peak_day = [
            line(
                "2021/02/20 00:01:00\tDATA\tPeriode=HN.., IndexHN=001000100, IndexHPM=000500000, PuissConsommee=00400, IConsommee=002",
            ),
            line(
                "2021/02/20 07:01:00\tDATA\tPeriode=PM.., IndexHN=001002100, IndexHPM=000500300, PuissConsommee=03500, IConsommee=015",
            ),
        ];
        assert_eq!(
            MarkTally::of_lines(&peak_day),
            Some(DayMark::Ejp { peak: true })
        );
        // The peak ends at 01:00: the next day's first hour is still PM.
        let after = [
            line("2021/02/21 00:30:00\tDATA\tPeriode=PM.., IndexHN=001002100, IndexHPM=000512300"),
            line("2021/02/21 01:00:30\tDATA\tPeriode=HN.., IndexHN=001002200, IndexHPM=000512400"),
        ];
        assert_eq!(
            MarkTally::of_lines(&after),
            Some(DayMark::Ejp { peak: false })
        );
        // Standard mode's period code counts the same.
        let standard = [line(
            "2026/12/02 09:00:00\tDATA\tPeriode=PM, IndexHN=000001000, IndexHPM=000000500",
        )];
        assert_eq!(
            MarkTally::of_lines(&standard),
            Some(DayMark::Ejp { peak: true })
        );
    }

    #[test]
    fn a_tempo_day_has_the_colour_shown_from_six_in_the_morning() {
        let red_day = [
            line("2026/01/08 05:50:00\tDATA\tPeriode=HCJW, IndexHCJW=000001000"),
            line("2026/01/08 06:10:00\tDATA\tPeriode=HPJR, IndexHPJR=000001000"),
            line("2026/01/08 22:10:00\tDATA\tPeriode=HCJR, IndexHCJR=000001000"),
        ];
        assert_eq!(
            MarkTally::of_lines(&red_day),
            Some(DayMark::Tempo(Colour::Red))
        );
        let night_only = [line(
            "2026/01/09 03:00:00\tDATA\tPeriode=HCJR, IndexHCJR=000001000",
        )];
        assert_eq!(
            MarkTally::of_lines(&night_only),
            None,
            "not known before 06:00"
        );
        let base = [line(
            "2026/01/09 12:00:00\tDATA\tPeriode=TH.., IndexBASE=000001000",
        )];
        assert_eq!(MarkTally::of_lines(&base), None);
    }

    #[test]
    fn seasons_run_november_to_march_for_ejp_and_september_to_august_for_tempo() {
        let ejp = Season::of(Kind::Ejp, date(2027, 3, 31));
        assert_eq!(
            (ejp.first(), ejp.last()),
            (date(2026, 11, 1), date(2027, 3, 31))
        );
        assert_eq!(ejp.name(), "2026-2027");
        assert_eq!(Season::of(Kind::Ejp, date(2026, 11, 1)), ejp);
        assert_eq!(Season::of(Kind::Ejp, date(2027, 4, 1)).name(), "2027-2028");
        let tempo = Season::of(Kind::Tempo, date(2026, 8, 31));
        assert_eq!(tempo.name(), "2025-2026");
        assert_eq!(
            Season::of(Kind::Tempo, date(2026, 9, 1)).name(),
            "2026-2027"
        );
        assert!(tempo.contains(date(2025, 9, 1)) && !tempo.contains(date(2026, 9, 1)));
    }

    #[test]
    fn counters_count_the_current_season_only_and_never_go_below_zero() {
        let mut marks = BTreeMap::new();
        marks.insert(date(2026, 3, 2), DayMark::Ejp { peak: true }); // last season
        for d in 1..=25 {
            marks.insert(date(2026, 12, d), DayMark::Ejp { peak: d % 8 == 0 });
        }
        let counts = Counts::current(&marks).unwrap();
        assert_eq!(
            counts.json(),
            r#"{"season":"2026-2027","ejp":{"used":3,"left":19}}"#
        );
        for d in 1..=25 {
            marks.insert(date(2027, 1, d), DayMark::Ejp { peak: true });
        }
        assert_eq!(
            Counts::current(&marks).unwrap().counters,
            Counters::Ejp(Allowance { used: 28, left: 0 })
        );

        let mut tempo = BTreeMap::new();
        tempo.insert(date(2026, 8, 31), DayMark::Tempo(Colour::Red)); // last season
        tempo.insert(date(2026, 9, 1), DayMark::Tempo(Colour::White));
        tempo.insert(date(2027, 1, 8), DayMark::Tempo(Colour::Red));
        tempo.insert(date(2027, 1, 9), DayMark::Tempo(Colour::Blue));
        assert_eq!(
            Counts::current(&tempo).unwrap().json(),
            r#"{"season":"2026-2027","tempo":{"red":{"used":1,"left":21},"white":{"used":1,"left":42}}}"#
        );
        assert_eq!(Counts::current(&BTreeMap::new()), None);
    }

    #[test]
    fn marks_read_back_from_their_codes() {
        for mark in [
            DayMark::Ejp { peak: true },
            DayMark::Ejp { peak: false },
            DayMark::Tempo(Colour::Blue),
            DayMark::Tempo(Colour::White),
            DayMark::Tempo(Colour::Red),
        ] {
            assert_eq!(DayMark::from_code(mark.code()), Some(mark));
        }
        assert_eq!(DayMark::from_code("purple"), None);
    }
}
