//! `linkymon logger` and `linkymon graph`: `state` messages → daily log lines → day reports →
//! HTML pages, and the retained `today` message with its Home Assistant entities.
//!
//! The logger only ever speaks MQTT, so it logs exactly what Home Assistant and Node-RED see.
//!
//! What is decided, with no I/O and no clock:
//! - [`state`]: the logger's reading of one `state` message (contract §3).
//! - [`window`]: N states of one local day → one [`LogLine`], filed by each message's own `ts`.
//! - [`line`]: the Perl LinkyMonitor line format (contract §5), written and read back.
//! - [`day`]: a day's lines → energy per period, injected energy, cost, peak power, chart points;
//!   the `today` payload.
//! - [`costs`]: the `price` and `month` payloads, each day at the prices of that day.
//! - `today`: the newest day's `today` figures, kept up to date line by line.
//! - [`pages`]: reports → the day pages and the index, as Strings.
//! - [`season`]: a day's EJP or Tempo mark from its lines; the season's counters and the
//!   `season` payload.
//! - [`calendar`]: days' rows → month and year totals; [`calendar_pages`]: their pages.
//!
//! Where it meets files and the network:
//! - [`disk`]: daily logs read and appended, dygraphs installed next to the pages.
//! - [`logbook`]: the running logger's state: meters and their files, `.first_meter`,
//!   `.pending`, which pages to rebuild.
//! - [`mqtt`]: the logger's MQTT session (rumqttc).
//! - [`database`]: `logger.database`, the `readings` table in PostgreSQL.
//! - [`backfill`]: `linkymon graph`: pages from many logs at once, on every core.
//!
//! `commands::logger` and `commands::graph` wire these together.

pub mod backfill;
pub mod calendar;
pub mod calendar_pages;
pub mod checks;
pub mod costs;
pub mod database;
pub mod day;
pub mod disk;
pub mod line;
pub mod logbook;
mod meter_log;
pub mod mqtt;
pub mod pages;
pub mod season;
pub mod state;
mod today;
pub mod window;

pub use day::DayReport;
pub use line::LogLine;
pub use logbook::Logbook;
pub use state::State;
pub use window::{Aggregator, Filed};
