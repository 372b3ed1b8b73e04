//! The HTML pages: one per day (a dygraphs chart, energy and cost per period, peak power) and
//! an index of the days. Pure functions from reports to Strings; writing them is the shell's.
//!
//! A day page embeds its chart data (at most one point a minute, seconds since midnight, so a
//! page stays near 30 kB: the logger rewrites today's page every few minutes on an SD card)
//! and loads dygraphs from [`Assets`]: a copy next to the pages when Debian's
//! `libjs-dygraphs` is installed, else the dygraphs site.
//!
//! The page checks itself, for users and tests alike: once dygraphs has drawn, it counts the
//! painted pixels of the chart's canvases into `data-drawn` on `#chart`, and any script or
//! loading error (dygraphs missing offline, say) is listed in `#errors` on the page and counted
//! in `data-errors` on `<body>`. The chart's times are shown in the browser's time zone.

use std::fmt::Write;

use jiff::civil::Date;

use super::day::{DayReport, cents};
use crate::prices::{Costs, Prices};

/// Where the pages find dygraphs' script and stylesheet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Assets {
    /// The script's URL, relative to the page or absolute.
    pub js: String,
    /// The stylesheet's URL.
    pub css: String,
}

/// dygraphs on the dygraphs site, for pages written where Debian's copy is missing.
pub const DYGRAPHS_ONLINE_JS: &str = "https://dygraphs.com/dist/dygraph.min.js";
/// The stylesheet that goes with [`DYGRAPHS_ONLINE_JS`].
pub const DYGRAPHS_ONLINE_CSS: &str = "https://dygraphs.com/dist/dygraph.min.css";

impl Assets {
    /// The copy in `assets/` under the pages directory; `up` is the path from the page to that
    /// directory (`""`, or `"../"` for the pages of a second meter in a subdirectory).
    pub fn local(up: &str) -> Self {
        Assets {
            js: format!("{up}assets/dygraph.min.js"),
            css: format!("{up}assets/dygraph.min.css"),
        }
    }

    /// [`Assets::local`] when dygraphs is installed next to the pages, else
    /// [`Assets::online`].
    pub fn installed_or_online(installed: bool, up: &str) -> Self {
        if installed {
            Assets::local(up)
        } else {
            Assets::online()
        }
    }

    /// The dygraphs site, for machines without `libjs-dygraphs` (the pages then need a network).
    pub fn online() -> Self {
        Assets {
            js: DYGRAPHS_ONLINE_JS.into(),
            css: DYGRAPHS_ONLINE_CSS.into(),
        }
    }
}

/// What every page shows around its data.
#[derive(Debug, Clone)]
pub struct PageContext<'a> {
    /// The meter's id, in titles.
    pub meter: Option<&'a str>,
    /// `prices.currency`.
    pub currency: &'a str,
    /// Where dygraphs is.
    pub assets: &'a Assets,
}

/// The `<meta>` of a day page that carries its index row, so the logger can rebuild the
/// index from the pages it already wrote instead of reading every log again.
const DAY_META: &str = "linkymon-day";

/// The index row a day page carries (see [`day_page`]); `None` for anything else.
pub fn read_day_meta(html: &str) -> Option<IndexRow> {
    let pattern = format!("<meta name=\"{DAY_META}\" content=\"");
    let rest = &html[html.find(&pattern)? + pattern.len()..];
    let content = &rest[..rest.find('"')?];
    let mut parts = content.split(';');
    let date = parts.next()?.parse().ok()?;
    let total_wh = parts.next()?.parse().ok()?;
    let injected_wh = parts.next()?.parse().ok()?;
    let cost = parts.next()?;
    Some(IndexRow {
        date,
        total_wh,
        injected_wh,
        cost: if cost.is_empty() {
            None
        } else {
            Some(cost.parse().ok()?)
        },
        in_progress: false,
    })
}

/// The days a day page links to.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Nav {
    /// The previous day with a page.
    pub previous: Option<Date>,
    /// The next day with a page (or that will have one).
    pub next: Option<Date>,
}

/// The file name of a day's page.
pub fn page_name(date: Date) -> String {
    format!("{date}.html")
}

/// Text made safe for HTML (log files are not trusted: a Perl log could hold anything).
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// The band colour of a period on the chart: peak periods shaded, others left clear.
pub fn band_colour(code: &str) -> Option<&'static str> {
    match code {
        "PM" | "HPJR" => Some("rgba(220, 53, 69, 0.16)"),
        "HPJW" => Some("rgba(108, 117, 125, 0.16)"),
        "HP" | "HPJB" => Some("rgba(253, 126, 20, 0.13)"),
        _ => None,
    }
}

const STYLE: &str = "body{font:15px/1.45 system-ui,sans-serif;margin:1.5em auto;max-width:60em;\
padding:0 1em;color:#222}h1{font-size:1.4em;margin:.2em 0}nav{display:flex;gap:1.5em;margin:.5em 0 1em}\
a{color:#0b5cad}#chart{width:100%;height:380px}table{border-collapse:collapse;margin:1em 0}\
th,td{padding:.3em .8em;border-bottom:1px solid #ddd;text-align:right}th:first-child,td:first-child{text-align:left}\
tr.total td{font-weight:600;border-top:2px solid #999}.bands span{display:inline-block;width:1em;height:.8em;\
margin:0 .3em 0 1em;vertical-align:middle;border:1px solid #ccc}#errors{color:#b00020}.note{color:#666}";

/// Registered before dygraphs loads, so a missing script is reported too.
const ERROR_HOOK: &str = "<script>window.linkymonErrors=[];function linkymonShowErrors(){\
var e=document.getElementById('errors');if(!e)return;e.textContent='';linkymonErrors.forEach(function(m){\
var li=document.createElement('li');li.textContent=m;e.appendChild(li);});\
document.body.dataset.errors=linkymonErrors.length;}function linkymonError(m){linkymonErrors.push(m);\
linkymonShowErrors();}window.addEventListener('error',function(e){linkymonError(e.message||\
('cannot load '+((e.target&&(e.target.src||e.target.href))||'a resource')));},true);\
document.addEventListener('DOMContentLoaded',linkymonShowErrors);</script>";

fn head(out: &mut String, title: &str, assets: Option<&Assets>, meta: &str) {
    let _ = write!(
        out,
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n{meta}\
         <title>{}</title>\n<style>{STYLE}</style>\n{ERROR_HOOK}\n",
        escape(title)
    );
    if let Some(a) = assets {
        let _ = writeln!(
            out,
            "<link rel=\"stylesheet\" href=\"{}\">\n<script src=\"{}\"></script>",
            escape(&a.css),
            escape(&a.js)
        );
    }
    out.push_str("</head>\n<body data-errors=\"0\">\n");
}

fn title_prefix(meter: Option<&str>) -> String {
    meter.map_or_else(|| "Linky".to_owned(), |m| format!("Linky {m}"))
}

fn kwh(wh: u64) -> String {
    format!("{:.3}", wh as f64 / 1000.0)
}

fn money(amount: f64, currency: &str) -> String {
    format!("{:.2} {}", cents(amount), escape(currency))
}

/// A day's page.
pub fn day_page(report: &DayReport, costs: &Costs, nav: &Nav, ctx: &PageContext) -> String {
    let mut out = String::with_capacity(8192 + report.points.len() * 20);
    let date = report.date;
    let title = format!(
        "{} — {}",
        title_prefix(ctx.meter),
        date.strftime("%A %-d %B %Y")
    );
    let meta = format!(
        "<meta name=\"{DAY_META}\" content=\"{};{};{};{}\">\n",
        report.date,
        report.total_wh(),
        report.injected_wh,
        costs.total.map_or_else(String::new, |c| format!("{c:.6}"))
    );
    head(&mut out, &title, Some(ctx.assets), &meta);
    let _ = writeln!(out, "<h1>{}</h1>", escape(&title));
    out.push_str("<nav>");
    match nav.previous {
        Some(d) => {
            let _ = write!(
                out,
                "<a id=\"previous\" href=\"{}\">← {d}</a>",
                page_name(d)
            );
        }
        None => out.push_str("<span></span>"),
    }
    out.push_str("<a href=\"index.html\">all days</a>");
    if let Some(d) = nav.next {
        let _ = write!(out, "<a id=\"next\" href=\"{}\">{d} →</a>", page_name(d));
    }
    out.push_str("</nav>\n<div id=\"chart\" data-drawn=\"\"></div>\n<p class=\"bands\">");
    let mut shown: Vec<&str> = Vec::new();
    for seg in &report.segments {
        if let Some(colour) = band_colour(&seg.code)
            && !shown.contains(&seg.code.as_str())
        {
            shown.push(&seg.code);
            let _ = write!(
                out,
                "<span style=\"background:{colour}\"></span>{} period",
                escape(&seg.code)
            );
        }
    }
    out.push_str("</p>\n<ul id=\"errors\"></ul>\n");

    // The totals.
    out.push_str(
        "<table id=\"totals\">\n<tr><th>Period</th><th>Energy (kWh)</th>\
         <th>Price per kWh</th><th>Cost</th></tr>\n",
    );
    for row in &costs.rows {
        let _ = writeln!(
            out,
            "<tr data-period=\"{code}\"><td>{code}</td><td class=\"kwh\">{:.3}</td>\
             <td class=\"price\">{}</td><td class=\"cost\">{}</td></tr>",
            row.kwh,
            row.price
                .map_or_else(|| "—".to_owned(), |p| format!("{p:.4}")),
            row.cost
                .map_or_else(|| "—".to_owned(), |c| money(c, ctx.currency)),
            code = escape(&row.code),
        );
    }
    if costs.subscription > 0.0 {
        let _ = writeln!(
            out,
            "<tr data-period=\"subscription\"><td>Subscription</td><td></td><td></td>\
             <td class=\"cost\">{}</td></tr>",
            money(costs.subscription, ctx.currency)
        );
    }
    let _ = writeln!(
        out,
        "<tr class=\"total\" data-period=\"total\"><td>Total</td><td class=\"kwh\">{}</td><td></td>\
         <td class=\"cost\">{}</td></tr>\n</table>",
        kwh(report.total_wh()),
        costs
            .total
            .map_or_else(|| "—".to_owned(), |c| money(c, ctx.currency))
    );
    let unpriced: Vec<String> = costs
        .rows
        .iter()
        .filter(|r| r.price.is_none() && r.kwh > 0.0)
        .map(|r| escape(&r.code))
        .collect();
    if !unpriced.is_empty() {
        let _ = writeln!(
            out,
            "<p class=\"note\">No price for {} in <code>prices:</code> that day: the cost is not known.</p>",
            unpriced.join(", ")
        );
    }
    out.push_str("<p id=\"summary\">");
    if let Some((va, at)) = report.max_power {
        let _ = write!(
            out,
            "Highest power drawn: <strong id=\"max-power\">{va} VA</strong> at {}. ",
            at.strftime("%H:%M:%S")
        );
    }
    if report.injected_wh > 0 {
        let _ = write!(
            out,
            "Injected: <strong id=\"injected\">{} kWh</strong>. ",
            kwh(report.injected_wh)
        );
    }
    let _ = writeln!(out, "{} log lines.</p>", report.lines);

    // The chart: flat arrays keep the page small; rows are built in the browser.
    let _ = write!(
        out,
        "<script>\n(function(){{\nvar base={};\nvar d=[",
        report.midnight.as_millisecond()
    );
    for (i, p) in report.points.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        let _ = write!(out, "{},{},{}", p.at_s, p.consumed_va, p.injected_w);
    }
    out.push_str("];\nvar bands=[");
    let mut first = true;
    for seg in &report.segments {
        if let Some(colour) = band_colour(&seg.code) {
            if !first {
                out.push(',');
            }
            first = false;
            let _ = write!(out, "[{},{},\"{colour}\"]", seg.from_s, seg.to_s);
        }
    }
    out.push_str("];\n");
    out.push_str(CHART_JS);
    out.push_str("})();\n</script>\n</body>\n</html>\n");
    out
}

/// Draws the chart from `base`, `d` and `bands`, then checks that pixels were painted.
const CHART_JS: &str = r#"var el=document.getElementById('chart');
if(typeof Dygraph==='undefined'){linkymonError('dygraphs did not load: install libjs-dygraphs on the logger, or open the page with a network');return;}
var rows=[];for(var i=0;i+2<d.length;i+=3){rows.push([new Date(base+d[i]*1000),d[i+1],d[i+2]]);}
if(rows.length===0){el.textContent='No data.';return;}
new Dygraph(el,rows,{
 labels:['Time','Drawn (VA)','Injected (W)'],
 colors:['#c0392b','#27ae60'],
 axes:{y:{axisLabelWidth:60}},fillGraph:true,fillAlpha:0.2,strokeWidth:1.2,
 legend:'always',labelsSeparateLines:false,showRangeSelector:true,rangeSelectorHeight:30,
 underlayCallback:function(ctx,area,g){bands.forEach(function(b){
  var l=g.toDomXCoord(base+b[0]*1000),r=g.toDomXCoord(base+b[1]*1000);
  ctx.fillStyle=b[2];ctx.fillRect(l,area.y,Math.max(r-l,1),area.h);});},
 drawCallback:function(g,initial){if(!initial)return;var n=0;
  el.querySelectorAll('canvas').forEach(function(c){if(!c.width||!c.height)return;
   var px=c.getContext('2d').getImageData(0,0,c.width,c.height).data;
   for(var k=3;k<px.length;k+=4){if(px[k]!==0)n++;}});
  el.dataset.drawn=n;}
});
"#;

/// One day in the index.
#[derive(Debug, Clone, PartialEq)]
pub struct IndexRow {
    /// The day.
    pub date: Date,
    /// Energy drawn, Wh.
    pub total_wh: u64,
    /// Energy injected, Wh.
    pub injected_wh: u64,
    /// The day's cost, when known.
    pub cost: Option<f64>,
    /// Today: the figures are those of when the index was written.
    pub in_progress: bool,
}

/// The index: every day, newest first, with its energy and cost.
pub fn index_page(rows: &[IndexRow], ctx: &PageContext) -> String {
    let mut sorted: Vec<&IndexRow> = rows.iter().collect();
    sorted.sort_by_key(|r| std::cmp::Reverse(r.date));
    let title = format!("{} — daily consumption", title_prefix(ctx.meter));
    let mut out = String::with_capacity(1024 + rows.len() * 200);
    head(&mut out, &title, None, "");
    let _ = writeln!(out, "<h1>{}</h1>\n<ul id=\"errors\"></ul>", escape(&title));
    let injects = rows.iter().any(|r| r.injected_wh > 0);
    out.push_str("<table id=\"days\">\n<tr><th>Day</th><th>Energy (kWh)</th>");
    if injects {
        out.push_str("<th>Injected (kWh)</th>");
    }
    out.push_str("<th>Cost</th></tr>\n");
    for row in sorted {
        let _ = write!(
            out,
            "<tr data-date=\"{d}\"><td><a href=\"{}\">{d}</a>{}</td><td class=\"kwh\">{}</td>",
            page_name(row.date),
            if row.in_progress { " (so far)" } else { "" },
            kwh(row.total_wh),
            d = row.date,
        );
        if injects {
            let _ = write!(out, "<td class=\"injected\">{}</td>", kwh(row.injected_wh));
        }
        let _ = writeln!(
            out,
            "<td class=\"cost\">{}</td></tr>",
            row.cost
                .map_or_else(|| "—".to_owned(), |c| money(c, ctx.currency))
        );
    }
    out.push_str("</table>\n</body>\n</html>\n");
    out
}

/// Pricing and naming shared by every page of a run.
#[derive(Debug, Clone)]
pub struct PageSettings<'a> {
    /// `logger.timezone`.
    pub tz: &'a jiff::tz::TimeZone,
    /// `prices:`, each day costed with the set in force that day.
    pub prices: &'a Prices,
    /// The meter, for titles.
    pub meter: Option<&'a str>,
    /// Where dygraphs is.
    pub assets: &'a Assets,
}

impl PageSettings<'_> {
    /// What every page of these settings shows around its data.
    pub fn context(&self) -> PageContext<'_> {
        PageContext {
            meter: self.meter,
            currency: self.prices.currency(),
            assets: self.assets,
        }
    }
}

/// A day's page and its index row, from its report.
pub fn render_day(report: &DayReport, nav: &Nav, settings: &PageSettings) -> (String, IndexRow) {
    let costs = settings.prices.cost(report.date, &report.energy_wh);
    let html = day_page(report, &costs, nav, &settings.context());
    let row = IndexRow {
        date: report.date,
        total_wh: report.total_wh(),
        injected_wh: report.injected_wh,
        cost: costs.total,
        in_progress: false,
    };
    (html, row)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::logger::line::LogLine;
    use jiff::civil::date;
    use jiff::tz::TimeZone;

    fn report() -> DayReport {
        let lines: Vec<LogLine> = [
            "2021/02/20 06:00:00\tDATA\tPeriode=HN.., IndexHN=000001000, IndexHPM=000002000, PuissConsommee=00500, IConsommee=002",
            "2021/02/20 08:00:00\tDATA\tPeriode=PM.., IndexHN=000001500, IndexHPM=000002250, PuissConsommee=01500, IConsommee=007",
        ]
        .iter()
        .map(|l| l.parse().unwrap())
        .collect();
        let tz = TimeZone::get("Europe/Paris").unwrap();
        DayReport::from_lines(date(2021, 2, 20), &lines, &tz).unwrap()
    }

    #[test]
    fn a_day_page_has_the_chart_data_bands_totals_and_links() {
        let r = report();
        let c = crate::prices::always(&[("hn", 0.1), ("pm", 1.0)], 0.0).cost(r.date, &r.energy_wh);
        let assets = Assets::local("");
        let ctx = PageContext {
            meter: Some("021728123456"),
            currency: "EUR",
            assets: &assets,
        };
        let nav = Nav {
            previous: Some(date(2021, 2, 19)),
            next: None,
        };
        let page = day_page(&r, &c, &nav, &ctx);
        assert!(page.contains("<title>Linky 021728123456 — Saturday 20 February 2021</title>"));
        assert!(page.contains("var d=[21600,500,0,28800,1500,0];"), "{page}");
        assert!(page.contains("var bands=[[21600,28800,\"rgba(220, 53, 69, 0.16)\"]];"));
        assert!(page.contains("href=\"2021-02-19.html\">← 2021-02-19</a>"));
        assert!(!page.contains("id=\"next\""));
        assert!(page.contains("<td class=\"kwh\">0.500</td><td class=\"price\">0.1000</td><td class=\"cost\">0.05 EUR</td>"));
        assert!(page.contains(
            "<td>Total</td><td class=\"kwh\">0.750</td><td></td><td class=\"cost\">0.30 EUR</td>"
        ));
        assert!(page.contains("<strong id=\"max-power\">1500 VA</strong> at 08:00:00"));
        assert!(page.contains("src=\"assets/dygraph.min.js\""));
        assert_eq!(
            read_day_meta(&page),
            Some(IndexRow {
                date: date(2021, 2, 20),
                total_wh: 750,
                injected_wh: 0,
                cost: Some(0.3),
                in_progress: false,
            })
        );
        assert_eq!(read_day_meta("<html>"), None);
    }

    #[test]
    fn a_day_is_costed_at_the_prices_of_that_day() {
        use crate::config::{PriceSet, PricesConfig};
        let set = |from, hn| PriceSet {
            from,
            kwh: [("hn".to_owned(), hn), ("pm".to_owned(), 1.0)].into(),
            subscription_per_day: None,
            subscription_per_month: None,
        };
        let prices = Prices::new(&PricesConfig {
            currency: "EUR".into(),
            sets: vec![set(date(2021, 2, 1), 0.1), set(date(2021, 2, 21), 0.9)],
        });
        let tz = TimeZone::get("Europe/Paris").unwrap();
        let assets = Assets::online();
        let settings = PageSettings {
            tz: &tz,
            prices: &prices,
            meter: None,
            assets: &assets,
        };
        let nav = Nav {
            previous: None,
            next: None,
        };
        // 0.5 kWh HN at 0.1 (the set of the 20th, not the later one) + 0.25 kWh PM at 1.0.
        let (page, row) = render_day(&report(), &nav, &settings);
        assert_eq!(row.cost, Some(0.3));
        assert!(page.contains("<td class=\"price\">0.1000</td>"), "{page}");
    }

    #[test]
    fn text_from_a_log_cannot_inject_html() {
        assert_eq!(
            escape("<b>\"x\" & 'y'</b>"),
            "&lt;b&gt;&quot;x&quot; &amp; &#39;y&#39;&lt;/b&gt;"
        );
    }

    #[test]
    fn the_index_lists_days_newest_first() {
        let assets = Assets::online();
        let ctx = PageContext {
            meter: None,
            currency: "EUR",
            assets: &assets,
        };
        let row = |d: i8, wh, cost, in_progress| IndexRow {
            date: date(2021, 2, d),
            total_wh: wh,
            injected_wh: 0,
            cost,
            in_progress,
        };
        let page = index_page(
            &[row(19, 12_345, Some(2.5), false), row(20, 500, None, true)],
            &ctx,
        );
        let first = page.find("2021-02-20.html").unwrap();
        let second = page.find("2021-02-19.html").unwrap();
        assert!(first < second);
        assert!(page.contains(
            "2021-02-20</a> (so far)</td><td class=\"kwh\">0.500</td><td class=\"cost\">—</td>"
        ));
        assert!(page.contains("<td class=\"kwh\">12.345</td><td class=\"cost\">2.50 EUR</td>"));
        assert!(!page.contains("Injected"));
    }
}
