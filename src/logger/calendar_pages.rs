//! The month and year pages, and the index's glance at this month and the season. Pure
//! functions from [`super::calendar`]'s totals to Strings, as [`super::pages`] does for days.
//!
//! - `YYYY-MM.html`: a dygraphs bar chart of each day's energy, stacked by period, with the
//!   day's cost on the right axis; the month's energy and cost per period; its EJP or Tempo
//!   days; a table of its days.
//! - `YYYY.html`: the same by month, with the counters of the seasons the year overlaps.
//!
//! The pages load dygraphs as the day pages do, and check themselves the same way
//! (`data-drawn` on `#chart`, `data-errors` on `<body>`).

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write;

use jiff::civil::Date;

use super::calendar::{Month, Totals, marks, month_of, seasons_of_year};
use super::pages::{IndexRow, PageContext, escape, head, kwh, money, page_name, title_prefix};
use super::season::{Colour, Counters, Counts, DayMark};

/// The file name of a month's page.
pub fn month_page_name(year: i16, month: i8) -> String {
    format!("{year:04}-{month:02}.html")
}

/// The file name of a year's page.
pub fn year_page_name(year: i16) -> String {
    format!("{year:04}.html")
}

const MONTHS: [&str; 12] = [
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
];

/// `December 2026`.
pub fn month_name((year, month): Month) -> String {
    let name = MONTHS
        .get(usize::try_from(month - 1).unwrap_or(0))
        .unwrap_or(&"");
    format!("{name} {year}")
}

/// The bar colour of a period: Tempo's in its day's colour, peaks warm, the rest cool.
fn period_colour(code: &str) -> &'static str {
    match code {
        "HCJB" => "#6ea8fe",
        "HPJB" => "#0d6efd",
        "HCJW" => "#ced4da",
        "HPJW" => "#6c757d",
        "HCJR" => "#f1aeb5",
        "HPJR" => "#dc3545",
        "PM" => "#dc3545",
        "HN" | "HC" => "#198754",
        "HP" => "#fd7e14",
        "BASE" => "#0b5cad",
        _ => "#6f42c1",
    }
}

/// Where a period goes in a stacked bar: off-peak below peak, Tempo's blue below white below
/// red; periods of no known offer last.
fn stack_rank(code: &str) -> usize {
    const ORDER: [&str; 11] = [
        "BASE", "HC", "HP", "HN", "PM", "HCJB", "HPJB", "HCJW", "HPJW", "HCJR", "HPJR",
    ];
    ORDER.iter().position(|p| *p == code).unwrap_or(ORDER.len())
}

/// The text of a day's mark, with its class for the badge.
fn mark_badge(mark: DayMark) -> Option<String> {
    let (class, text) = match mark {
        DayMark::Ejp { peak: true } => ("ejp", "EJP"),
        DayMark::Ejp { peak: false } => return None,
        DayMark::Tempo(c) => (c.name(), c.name()),
    };
    Some(format!("<span class=\"mark mark-{class}\">{text}</span>"))
}

/// "EJP days: 3 used, 19 left" or the Tempo equivalent.
pub fn counters_text(counts: &Counts) -> String {
    match counts.counters {
        Counters::Ejp(a) => format!(
            "EJP days: <strong class=\"ejp-used\">{}</strong> used, <strong class=\"ejp-left\">{}</strong> left",
            a.used, a.left
        ),
        Counters::Tempo { red, white } => format!(
            "Tempo red days: <strong class=\"red-used\">{}</strong> used, <strong class=\"red-left\">{}</strong> left; \
             white days: <strong class=\"white-used\">{}</strong> used, <strong class=\"white-left\">{}</strong> left",
            red.used, red.left, white.used, white.left
        ),
    }
}

/// One bar of a chart: its x, its energy per period, its cost.
struct Bar<'a> {
    x: i32,
    /// The legend's name of the bar.
    name: String,
    energy_wh: &'a BTreeMap<String, u64>,
    cost: Option<f64>,
}

/// The chart's `<script>`: one series per period (kWh, stacked bars) and the cost on the
/// right axis when some is known. `ticks` names the x axis's labels by x, from the first to
/// the last x shown (the whole month or year, whatever days have a log).
fn chart(out: &mut String, bars: &[Bar], ticks: &[(i32, String)], currency: &str) {
    let mut periods: Vec<&str> = bars
        .iter()
        .flat_map(|b| b.energy_wh.keys().map(String::as_str))
        .collect();
    periods.sort_unstable_by_key(|p| (stack_rank(p), *p));
    periods.dedup();
    let with_cost = bars.iter().any(|b| b.cost.is_some());
    let mut labels: Vec<String> = vec!["x".to_owned()];
    labels.extend(periods.iter().map(|p| format!("{p} (kWh)")));
    let mut colours: Vec<&str> = periods.iter().map(|p| period_colour(p)).collect();
    if with_cost {
        labels.push(format!("Cost ({currency})"));
        colours.push("#212529");
    }
    let rows: Vec<serde_json::Value> = bars
        .iter()
        .map(|b| {
            let mut row = vec![serde_json::json!(b.x)];
            row.extend(periods.iter().map(|p| {
                serde_json::json!(b.energy_wh.get(*p).map_or(0.0, |wh| *wh as f64 / 1000.0))
            }));
            if with_cost {
                row.push(serde_json::json!(b.cost.map(super::day::cents)));
            }
            serde_json::Value::Array(row)
        })
        .collect();
    let names: BTreeMap<String, &str> = bars
        .iter()
        .map(|b| (b.x.to_string(), b.name.as_str()))
        .collect();
    let (lo, hi) = (
        ticks.first().map_or(0, |t| t.0),
        ticks.last().map_or(0, |t| t.0),
    );
    let ticks: BTreeMap<String, &str> = ticks
        .iter()
        .map(|(x, t)| (x.to_string(), t.as_str()))
        .collect();
    let _ = write!(
        out,
        "<script>\n(function(){{\nvar labels={};\nvar colours={};\nvar d={};\nvar names={};\nvar ticks={};\n\
         var lo={lo},hi={hi},withCost={with_cost};\n",
        to_js(&labels),
        to_js(&colours),
        to_js(&rows),
        to_js(&names),
        to_js(&ticks),
    );
    out.push_str(BARS_JS);
    out.push_str("})();\n</script>\n");
}

/// JSON for a `<script>`: `</` is escaped so no text from a log can close it.
fn to_js<T: serde::Serialize>(value: &T) -> String {
    // Strings, numbers and their arrays and maps always serialise.
    serde_json::to_string(value)
        .unwrap_or_else(|_| "null".to_owned())
        .replace("</", "<\\/")
}

/// Draws the stacked bars (each period's bar from the top of the one below) and the cost
/// line, then counts the painted pixels.
const BARS_JS: &str = r#"var el=document.getElementById('chart');
if(typeof Dygraph==='undefined'){linkymonError('dygraphs did not load: install libjs-dygraphs on the logger, or open the page with a network');return;}
if(d.length===0){el.textContent='No data.';return;}
function bars(e){var g=e.dygraph,c=e.drawingContext;
 var w=Math.max(1,Math.floor((g.toDomXCoord(1)-g.toDomXCoord(0))*0.7));
 c.fillStyle=e.color;
 e.points.forEach(function(p){if(p.yval===null||isNaN(p.canvasy))return;
  var b=g.toDomYCoord(p.yval_stacked-p.yval);c.fillRect(p.canvasx-w/2,p.canvasy,w,b-p.canvasy);});}
var series={};
if(withCost){series[labels[labels.length-1]]={axis:'y2',plotter:Dygraph.Plotters.linePlotter,
 drawPoints:true,pointSize:3,strokeWidth:1.5};}
new Dygraph(el,d,{labels:labels,colors:colours,stackedGraph:true,plotter:bars,series:series,
 dateWindow:[lo-0.6,hi+0.6],includeZero:true,legend:'always',labelsSeparateLines:false,
 labelsDiv:document.getElementById('legend'),
 ylabel:'kWh',y2label:withCost?labels[labels.length-1]:null,
 axes:{x:{valueFormatter:function(x){return names[x]||x;},
   axisLabelFormatter:function(x){return ticks[x]||'';},pixelsPerLabel:24,drawGrid:false},
  y:{axisLabelWidth:55},y2:{axisLabelWidth:55,independentTicks:true,drawGrid:false}},
 drawCallback:function(g,initial){if(initial)linkymonDrawn(el);}
});
"#;

/// The table of energy and cost per period of `totals`.
fn totals_table(out: &mut String, totals: &Totals, currency: &str) {
    out.push_str(
        "<table id=\"totals\">\n<tr><th>Period</th><th>Energy (kWh)</th><th>Cost</th></tr>\n",
    );
    for (code, wh) in &totals.energy_wh {
        let _ = writeln!(
            out,
            "<tr data-period=\"{code}\"><td>{code}</td><td class=\"kwh\">{}</td><td class=\"cost\">{}</td></tr>",
            kwh(*wh),
            totals
                .period_costs
                .get(code.as_str())
                .map_or_else(|| "—".to_owned(), |c| money(*c, currency)),
            code = escape(code),
        );
    }
    if totals.subscription > 0.0 {
        let _ = writeln!(
            out,
            "<tr data-period=\"subscription\"><td>Subscription ({} days)</td><td></td>\
             <td class=\"cost\">{}</td></tr>",
            totals.days,
            money(totals.subscription, currency)
        );
    }
    let _ = writeln!(
        out,
        "<tr class=\"total\" data-period=\"total\"><td>Total</td><td class=\"kwh\">{}</td>\
         <td class=\"cost\">{}</td></tr>\n</table>",
        kwh(totals.total_wh()),
        totals
            .cost
            .map_or_else(|| "—".to_owned(), |c| money(c, currency))
    );
    if totals.injected_wh > 0 {
        let _ = writeln!(
            out,
            "<p>Injected: <strong id=\"injected\">{} kWh</strong>.</p>",
            kwh(totals.injected_wh)
        );
    }
}

/// The head, the title, the nav (the previous page, `links`, the next page) and the chart's
/// place.
fn page_top(
    out: &mut String,
    title: &str,
    ctx: &PageContext,
    previous: Option<(String, String)>,
    links: &str,
    next: Option<(String, String)>,
) {
    head(out, title, Some(ctx.assets), "");
    let _ = writeln!(out, "<h1>{}</h1>", escape(title));
    out.push_str("<nav>");
    nav_link(out, "previous", previous);
    out.push_str(links);
    nav_link(out, "next", next);
    out.push_str(
        "</nav>\n<div id=\"chart\" data-drawn=\"\"></div>\n<p id=\"legend\" class=\"note\"></p>\n\
         <ul id=\"errors\"></ul>\n",
    );
}

/// A link, or an empty slot that keeps the nav's layout.
fn nav_link(out: &mut String, id: &str, target: Option<(String, String)>) {
    match target {
        Some((href, text)) => {
            let _ = write!(out, "<a id=\"{id}\" href=\"{href}\">{}</a>", escape(&text));
        }
        None => out.push_str("<span></span>"),
    }
}

/// The months a month page links to: the previous and next months with a log.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct MonthNav {
    /// The previous month with days.
    pub previous: Option<Month>,
    /// The next month with days.
    pub next: Option<Month>,
}

/// A month's page from its days' rows (in date order).
pub fn month_page(month: Month, rows: &[&IndexRow], nav: &MonthNav, ctx: &PageContext) -> String {
    let totals = Totals::of(rows.iter().copied());
    let title = format!("{} — {}", title_prefix(ctx.meter), month_name(month));
    let mut out = String::with_capacity(8192 + rows.len() * 400);
    let up = format!(
        "<a href=\"{}\">{}</a><a href=\"index.html\">all days</a>",
        year_page_name(month.0),
        month.0
    );
    page_top(
        &mut out,
        &title,
        ctx,
        nav.previous
            .map(|m| (month_page_name(m.0, m.1), format!("← {}", month_name(m)))),
        &up,
        nav.next
            .map(|m| (month_page_name(m.0, m.1), format!("{} →", month_name(m)))),
    );
    totals_table(&mut out, &totals, ctx.currency);
    season_days(&mut out, rows);

    // The days.
    let periods: Vec<&String> = totals.energy_wh.keys().collect();
    out.push_str("<table id=\"days\">\n<tr><th>Day</th>");
    for p in &periods {
        let _ = write!(out, "<th>{} (kWh)</th>", escape(p));
    }
    out.push_str("<th>Total (kWh)</th><th>Cost</th><th></th></tr>\n");
    for row in rows {
        let _ = write!(
            out,
            "<tr data-date=\"{d}\"><td><a href=\"{}\">{}</a></td>",
            page_name(row.date),
            row.date.strftime("%a %-d"),
            d = row.date
        );
        for p in &periods {
            let _ = write!(
                out,
                "<td>{}</td>",
                kwh(row.energy_wh.get(p.as_str()).copied().unwrap_or(0))
            );
        }
        let _ = writeln!(
            out,
            "<td class=\"kwh\">{}</td><td class=\"cost\">{}</td><td>{}</td></tr>",
            kwh(row.total_wh),
            row.cost
                .map_or_else(|| "—".to_owned(), |c| money(c, ctx.currency)),
            row.mark.and_then(mark_badge).unwrap_or_default()
        );
    }
    out.push_str("</table>\n");

    let bars: Vec<Bar> = rows
        .iter()
        .map(|r| Bar {
            x: i32::from(r.date.day()),
            name: r.date.strftime("%a %-d %b %Y").to_string(),
            energy_wh: &r.energy_wh,
            cost: r.cost,
        })
        .collect();
    let days_in_month = Date::new(month.0, month.1, 1).map_or(31, |d| d.days_in_month());
    let ticks: Vec<(i32, String)> = (1..=i32::from(days_in_month))
        .map(|d| (d, d.to_string()))
        .collect();
    chart(&mut out, &bars, &ticks, ctx.currency);
    out.push_str("</body>\n</html>\n");
    out
}

/// The EJP or Tempo days of a month's rows.
fn season_days(out: &mut String, rows: &[&IndexRow]) {
    let marked: Vec<(Date, DayMark)> = rows
        .iter()
        .filter_map(|r| Some((r.date, r.mark?)))
        .collect();
    let Some((_, newest)) = marked.last() else {
        return;
    };
    let days_of = |wanted: DayMark| -> Vec<String> {
        marked
            .iter()
            .filter(|(_, m)| *m == wanted)
            .map(|(d, _)| d.day().to_string())
            .collect()
    };
    let list = |days: &[String]| {
        if days.is_empty() {
            String::new()
        } else {
            format!(" ({})", days.join(", "))
        }
    };
    out.push_str("<p id=\"season-days\">");
    match newest {
        DayMark::Ejp { .. } => {
            let days = days_of(DayMark::Ejp { peak: true });
            let _ = write!(
                out,
                "EJP days this month: <strong class=\"ejp-days\">{}</strong>{}",
                days.len(),
                list(&days)
            );
        }
        DayMark::Tempo(_) => {
            for (i, colour) in [Colour::Red, Colour::White, Colour::Blue]
                .into_iter()
                .enumerate()
            {
                let days = days_of(DayMark::Tempo(colour));
                let _ = write!(
                    out,
                    "{}{} days: <strong class=\"{}-days\">{}</strong>{}",
                    if i > 0 {
                        "; "
                    } else {
                        "Tempo days this month: "
                    },
                    colour.name(),
                    colour.name(),
                    days.len(),
                    list(&days)
                );
            }
        }
    }
    out.push_str(".</p>\n");
}

/// A year's page from its days' rows, with the counters of the seasons it overlaps.
pub fn year_page(
    year: i16,
    rows: &[&IndexRow],
    seasons: &[Counts],
    nav: (Option<i16>, Option<i16>),
    ctx: &PageContext,
) -> String {
    let totals = Totals::of(rows.iter().copied());
    let months = super::calendar::by_month(rows.iter().copied());
    let marks = marks(rows.iter().copied());
    let title = format!("{} — {year}", title_prefix(ctx.meter));
    let mut out = String::with_capacity(8192);
    page_top(
        &mut out,
        &title,
        ctx,
        nav.0.map(|y| (year_page_name(y), format!("← {y}"))),
        "<a href=\"index.html\">all days</a>",
        nav.1.map(|y| (year_page_name(y), format!("{y} →"))),
    );
    totals_table(&mut out, &totals, ctx.currency);
    if !seasons.is_empty() {
        out.push_str("<ul id=\"seasons\">\n");
        for counts in seasons {
            let _ = writeln!(
                out,
                "<li data-season=\"{0}\">Season {0}: {1}</li>",
                counts.season.name(),
                counters_text(counts)
            );
        }
        out.push_str("</ul>\n");
    }

    let periods: Vec<&String> = totals.energy_wh.keys().collect();
    out.push_str("<table id=\"months\">\n<tr><th>Month</th><th>Days</th>");
    for p in &periods {
        let _ = write!(out, "<th>{} (kWh)</th>", escape(p));
    }
    out.push_str("<th>Total (kWh)</th><th>Cost</th><th>Season days</th></tr>\n");
    for (&month, t) in &months {
        let _ = write!(
            out,
            "<tr data-month=\"{:04}-{:02}\"><td><a href=\"{}\">{}</a></td><td>{}</td>",
            month.0,
            month.1,
            month_page_name(month.0, month.1),
            month_name(month),
            t.days
        );
        for p in &periods {
            let _ = write!(
                out,
                "<td>{}</td>",
                kwh(t.energy_wh.get(p.as_str()).copied().unwrap_or(0))
            );
        }
        let first = Date::new(month.0, month.1, 1).unwrap_or_default();
        let last = first.last_of_month();
        let mut counted: BTreeMap<&str, u32> = BTreeMap::new();
        for (_, mark) in marks.range(first..=last) {
            let name = match mark {
                DayMark::Ejp { peak: true } => "EJP",
                DayMark::Tempo(Colour::Red) => "red",
                DayMark::Tempo(Colour::White) => "white",
                _ => continue,
            };
            *counted.entry(name).or_insert(0) += 1;
        }
        let counted: Vec<String> = counted.iter().map(|(k, n)| format!("{n} {k}")).collect();
        let _ = writeln!(
            out,
            "<td class=\"kwh\">{}</td><td class=\"cost\">{}</td><td>{}</td></tr>",
            kwh(t.total_wh()),
            t.cost
                .map_or_else(|| "—".to_owned(), |c| money(c, ctx.currency)),
            counted.join(", ")
        );
    }
    out.push_str("</table>\n");

    let bars: Vec<Bar> = months
        .iter()
        .map(|(&m, t)| Bar {
            x: i32::from(m.1),
            name: month_name(m),
            energy_wh: &t.energy_wh,
            cost: t.cost,
        })
        .collect();
    let ticks: Vec<(i32, String)> = (1..=12)
        .map(|m| {
            (
                m,
                MONTHS[usize::try_from(m - 1).unwrap_or(0)][..3].to_owned(),
            )
        })
        .collect();
    chart(&mut out, &bars, &ticks, ctx.currency);
    out.push_str("</body>\n</html>\n");
    out
}

/// The index's head: this month so far and the season, then links to the years and months.
pub fn glance(out: &mut String, rows: &[IndexRow], ctx: &PageContext) {
    let months = super::calendar::by_month(rows);
    let Some((&this, totals)) = months.iter().next_back() else {
        return;
    };
    out.push_str("<div class=\"glance\">\n");
    let _ = writeln!(
        out,
        "<div id=\"this-month\"><a href=\"{}\">{}</a>: <strong>{} kWh</strong>, {} ({} days)</div>",
        month_page_name(this.0, this.1),
        month_name(this),
        kwh(totals.total_wh()),
        totals
            .cost
            .map_or_else(|| "cost unknown".to_owned(), |c| money(c, ctx.currency)),
        totals.days
    );
    if let Some(counts) = Counts::current(&marks(rows)) {
        let _ = writeln!(
            out,
            "<div id=\"season\">Season {}: {}</div>",
            counts.season.name(),
            counters_text(&counts)
        );
    }
    out.push_str("</div>\n<p class=\"links\" id=\"years\">Years: ");
    let years: std::collections::BTreeSet<i16> = months.keys().map(|m| m.0).collect();
    for y in years.iter().rev() {
        let _ = write!(out, "<a href=\"{}\">{y}</a>", year_page_name(*y));
    }
    out.push_str("</p>\n<p class=\"links\" id=\"month-links\">Months: ");
    for m in months.keys().rev() {
        let _ = write!(
            out,
            "<a href=\"{}\">{:04}-{:02}</a>",
            month_page_name(m.0, m.1),
            m.0,
            m.1
        );
    }
    out.push_str("</p>\n");
}

/// The pages of `months` and `years`, from every day's row: `(file name, HTML)`. Each month
/// page reads its own days only; a year page its year's, plus the marks of the seasons it
/// overlaps.
pub fn render_calendar(
    rows: &BTreeMap<Date, IndexRow>,
    months: &BTreeSet<Month>,
    years: &BTreeSet<i16>,
    ctx: &PageContext,
) -> Vec<(String, String)> {
    let mut out = Vec::with_capacity(months.len() + years.len());
    for &(year, month) in months {
        let Ok(first) = Date::new(year, month, 1) else {
            continue;
        };
        let last = first.last_of_month();
        let days: Vec<&IndexRow> = rows.range(first..=last).map(|(_, r)| r).collect();
        if days.is_empty() {
            continue;
        }
        let nav = MonthNav {
            previous: rows.range(..first).next_back().map(|(d, _)| month_of(*d)),
            next: last
                .tomorrow()
                .ok()
                .and_then(|t| rows.range(t..).next())
                .map(|(d, _)| month_of(*d)),
        };
        out.push((
            month_page_name(year, month),
            month_page((year, month), &days, &nav, ctx),
        ));
    }
    for &year in years {
        let (Ok(first), Ok(last)) = (Date::new(year, 1, 1), Date::new(year, 12, 31)) else {
            continue;
        };
        let days: Vec<&IndexRow> = rows.range(first..=last).map(|(_, r)| r).collect();
        if days.is_empty() {
            continue;
        }
        // The seasons overlapping the year reach at most into the years around it.
        let around = rows
            .range(
                Date::new(year - 1, 1, 1).unwrap_or(first)
                    ..=Date::new(year + 1, 12, 31).unwrap_or(last),
            )
            .map(|(_, r)| r);
        let seasons = seasons_of_year(year, &marks(around));
        let nav = (
            rows.range(..first).next_back().map(|(d, _)| d.year()),
            rows.range(last..)
                .find(|(d, _)| **d > last)
                .map(|(d, _)| d.year()),
        );
        out.push((
            year_page_name(year),
            year_page(year, &days, &seasons, nav, ctx),
        ));
    }
    out
}
