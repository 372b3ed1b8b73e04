//! What the 128×64 screen says, and how it is drawn.
//!
//! [`Screen::new`] decides the words from a [`View`] (a pure function, tested on text);
//! [`render`] draws them with embedded-graphics into any `DrawTarget<Color = BinaryColor>`:
//! the [`Framebuffer`] the drivers copy from, or a panel directly.
//!
//! ```text
//!  y  0 ┌────────────────────────────────┐  6×10 font: time of the last frame, and one tag
//!       │21:04:05             PRÉAVIS EJP│  (silent line, notice, relay, tomorrow's Tempo
//!  y 11 ├────────────────────────────────┤   colour, the next tariff change `HC à 22:00`
//!       │                                │   in standard mode, or the tariff period)
//!       │                                │
//!       │          EJP   OUI             │  9×15 bold drawn twice as large (18×30 per letter):
//!       │                                │  the line read from across the room. Lit on a
//!  y 43 ├────────────────────────────────┤  peak or a red day, so the whole band glows
//!       │Conso                    1.45 kW│
//!       │Injection                0.00 kW│  6×10 font
//!  y 63 └────────────────────────────────┘
//! ```
//!
//! The words are French, as on the meter and in the Perl tool: `EJP OUI`/`EJP NON`, `Conso`,
//! `Injection`. On a Tempo contract the headline is today's colour (`ROUGE`, `BLANC`, `BLEU`)
//! with the period (`HP`/`HC`) beside it, since `EJP NON` would be true and useless there.

use embedded_graphics::mono_font::{MonoFont, MonoTextStyle, ascii, iso_8859_1};
use embedded_graphics::pixelcolor::BinaryColor;
use embedded_graphics::prelude::*;
use embedded_graphics::primitives::{PrimitiveStyle, Rectangle};
use embedded_graphics::text::{Baseline, Text};

use super::framebuffer::{Framebuffer, WIDTH};
use super::status::View;
use crate::meter::TempoColour;

/// The small font: 21 columns. ISO 8859-1 for the accent of `PRÉAVIS` and `données`.
const SMALL: MonoFont<'static> = iso_8859_1::FONT_6X10;
/// The headline's font, drawn at [`HEADLINE_SCALE`]: `EJP OUI` is 7 × 18 = 126 pixels wide.
const LARGE: MonoFont<'static> = ascii::FONT_9X15_BOLD;
/// Pixel doubling: the largest built-in font is 20 pixels tall, too small across a room.
const HEADLINE_SCALE: i32 = 2;
/// The period beside a Tempo colour.
const MEDIUM: MonoFont<'static> = ascii::FONT_10X20;

/// Top of the headline band (lit on a peak) and of the headline's letters.
const BAND_TOP: i32 = 11;
const BAND_HEIGHT: u32 = 32;
const HEADLINE_TOP: i32 = 12;
/// The two power lines.
const CONSO_TOP: i32 = 44;
const INJECTION_TOP: i32 = 54;

/// A piece of text that can be drawn lit on dark (`inverted: false`) or dark on lit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Label {
    /// The words.
    pub text: String,
    /// Dark letters on a lit box: for what must catch the eye.
    pub inverted: bool,
}

impl Label {
    fn plain(text: impl Into<String>) -> Self {
        Label {
            text: text.into(),
            inverted: false,
        }
    }

    fn loud(text: impl Into<String>) -> Self {
        Label {
            text: text.into(),
            inverted: true,
        }
    }
}

/// Everything the screen says, as text: what [`render`] draws.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Screen {
    /// Time of the last frame, `HH:MM:SS`; empty before the first.
    pub clock: String,
    /// The top line's right-hand tag, if any.
    pub tag: Option<Label>,
    /// The big line: `EJP OUI`, `EJP NON`, `EJP ?`, or a Tempo colour.
    pub headline: Label,
    /// Beside the headline in a smaller font: the Tempo period (`HP`, `HC`).
    pub headline_suffix: Option<String>,
    /// Consumed power, `1.45 kW`.
    pub consumed: String,
    /// Injected power, `2.99 kW`.
    pub injected: String,
}

impl Screen {
    /// What the screen says for `view`.
    pub fn new(view: &View) -> Self {
        let clock = view
            .last_frame
            .map(|t| t.strftime("%H:%M:%S").to_string())
            .unwrap_or_default();
        let (headline, headline_suffix) = if view.tempo {
            let colour = match view.tempo_today {
                Some(TempoColour::Red) => Label::loud("ROUGE"),
                Some(TempoColour::White) => Label::plain("BLANC"),
                Some(TempoColour::Blue) => Label::plain("BLEU"),
                None => Label::plain("TEMPO ?"),
            };
            let hours = view
                .period
                .as_deref()
                .and_then(|p| p.get(..2))
                .filter(|h| *h == "HP" || *h == "HC")
                .filter(|_| view.tempo_today.is_some())
                .map(str::to_owned);
            (colour, hours)
        } else {
            let ejp = match view.ejp {
                Some(true) => Label::loud("EJP OUI"),
                Some(false) => Label::plain("EJP NON"),
                None => Label::plain("EJP ?"),
            };
            (ejp, None)
        };
        Screen {
            clock,
            tag: tag(view),
            headline,
            headline_suffix,
            consumed: kilowatts(view.consumption_va),
            injected: kilowatts(view.injection_w),
        }
    }
}

/// The one tag the top line has room for, most urgent first.
fn tag(view: &View) -> Option<Label> {
    if view.last_frame.is_none() {
        return Some(Label::plain("pas de données"));
    }
    if let Some(s) = view.silent_s {
        return Some(Label::loud(format!("muet {}", duration(s))));
    }
    if view.notice {
        return Some(Label::loud("PRÉAVIS EJP"));
    }
    if view.relay_peak {
        return Some(Label::plain("par relais"));
    }
    if view.tempo {
        let tomorrow = match view.tempo_tomorrow {
            Some(TempoColour::Red) => "ROUGE",
            Some(TempoColour::White) => "BLANC",
            Some(TempoColour::Blue) => "BLEU",
            None => "?",
        };
        return Some(Label::plain(format!("demain {tomorrow}")));
    }
    // Standard mode: the next tariff change (`HC à 22:00`, 10 characters) says more than the
    // period in force, which it implies.
    if let Some((period, at)) = &view.next_change {
        return Some(Label::plain(format!("{period} à {at}")));
    }
    view.period.clone().map(Label::plain)
}

/// `45 s`, `12 min`, `5 h`, `3 j`: at most 6 characters, so the tag fits beside the clock.
fn duration(s: u64) -> String {
    match s {
        0..60 => format!("{s} s"),
        60..3600 => format!("{} min", s / 60),
        3600..86_400 => format!("{} h", s / 3600),
        _ => format!("{} j", s / 86_400),
    }
}

/// Watts (or VA) as kilowatts with two decimals, as the Perl tool's LCD showed them.
fn kilowatts(w: Option<i64>) -> String {
    match w {
        Some(w) => format!("{:.2} kW", w as f64 / 1000.0),
        None => "-.-- kW".to_owned(),
    }
}

/// Draws `screen` on `target`, which it clears first. The layout assumes 128×64.
pub fn render<D>(screen: &Screen, target: &mut D) -> Result<(), D::Error>
where
    D: DrawTarget<Color = BinaryColor>,
{
    target.clear(BinaryColor::Off)?;
    let width = WIDTH as i32;

    text(
        target,
        &screen.clock,
        SMALL,
        Point::new(0, 0),
        BinaryColor::On,
    )?;
    if let Some(tag) = &screen.tag {
        let w = text_width(&tag.text, SMALL);
        let x = width - w;
        let colour = if tag.inverted {
            fill(target, Point::new(x - 2, 0), Size::new(w as u32 + 2, 10))?;
            BinaryColor::Off
        } else {
            BinaryColor::On
        };
        text(target, &tag.text, SMALL, Point::new(x, 0), colour)?;
    }

    let headline = &screen.headline;
    let colour = if headline.inverted {
        fill(
            target,
            Point::new(0, BAND_TOP),
            Size::new(WIDTH as u32, BAND_HEIGHT),
        )?;
        BinaryColor::Off
    } else {
        BinaryColor::On
    };
    let big_w = text_width(&headline.text, LARGE) * HEADLINE_SCALE;
    let suffix_w = screen
        .headline_suffix
        .as_deref()
        .map_or(0, |s| 6 + text_width(s, MEDIUM));
    let x = (width - big_w - suffix_w) / 2;
    let mut scaled = Scaled {
        target: &mut *target,
        origin: Point::new(x, HEADLINE_TOP),
        factor: HEADLINE_SCALE,
    };
    text(&mut scaled, &headline.text, LARGE, Point::zero(), colour)?;
    if let Some(suffix) = &screen.headline_suffix {
        let at = Point::new(x + big_w + 6, HEADLINE_TOP + 10);
        text(target, suffix, MEDIUM, at, colour)?;
    }

    for (top, name, value) in [
        (CONSO_TOP, "Conso", &screen.consumed),
        (INJECTION_TOP, "Injection", &screen.injected),
    ] {
        text(target, name, SMALL, Point::new(0, top), BinaryColor::On)?;
        let x = width - text_width(value, SMALL);
        text(target, value, SMALL, Point::new(x, top), BinaryColor::On)?;
    }
    Ok(())
}

/// Renders `screen` into a new framebuffer: what the drivers and the tests use.
pub fn picture(screen: &Screen) -> Framebuffer {
    let mut fb = Framebuffer::new();
    // Drawing into memory cannot fail (its error type is `Infallible`).
    let Ok(()) = render(screen, &mut fb);
    fb
}

fn text<D>(
    target: &mut D,
    s: &str,
    font: MonoFont<'static>,
    top_left: Point,
    colour: BinaryColor,
) -> Result<(), D::Error>
where
    D: DrawTarget<Color = BinaryColor>,
{
    let style = MonoTextStyle::new(&font, colour);
    Text::with_baseline(s, top_left, style, Baseline::Top).draw(target)?;
    Ok(())
}

fn fill<D>(target: &mut D, top_left: Point, size: Size) -> Result<(), D::Error>
where
    D: DrawTarget<Color = BinaryColor>,
{
    Rectangle::new(top_left, size)
        .into_styled(PrimitiveStyle::with_fill(BinaryColor::On))
        .draw(target)
}

fn text_width(s: &str, font: MonoFont<'static>) -> i32 {
    let n = s.chars().count() as u32;
    let advance = font.character_size.width + font.character_spacing;
    (n * advance) as i32
}

/// A draw target that draws each pixel as a `factor`×`factor` block at `origin`: bitmap fonts
/// made larger without a font of that size.
struct Scaled<'a, D> {
    target: &'a mut D,
    origin: Point,
    factor: i32,
}

impl<D: Dimensions> Dimensions for Scaled<'_, D> {
    fn bounding_box(&self) -> Rectangle {
        let size = self.target.bounding_box().size / self.factor as u32;
        Rectangle::new(Point::zero(), size)
    }
}

impl<D> DrawTarget for Scaled<'_, D>
where
    D: DrawTarget<Color = BinaryColor>,
{
    type Color = BinaryColor;
    type Error = D::Error;

    fn draw_iter<I>(&mut self, pixels: I) -> Result<(), Self::Error>
    where
        I: IntoIterator<Item = Pixel<Self::Color>>,
    {
        let (origin, factor) = (self.origin, self.factor);
        let blocks = pixels.into_iter().flat_map(move |Pixel(p, colour)| {
            let corner = origin + p * factor;
            (0..factor * factor)
                .map(move |i| Pixel(corner + Point::new(i % factor, i / factor), colour))
        });
        self.target.draw_iter(blocks)
    }
}
