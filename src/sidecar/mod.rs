//! The sidecar's pure core: `state` messages → daily log lines → day reports → HTML pages.
//!
//! What `linkymon logger` and `linkymon graph` decide, with no I/O and no clock:
//!
//! - [`state`]: the logger's reading of one `state` message (contract §3).
//! - [`window`]: N states of one local day → one [`LogLine`], filed by each message's own `ts`.
//! - [`line`]: the Perl LinkyMonitor line format (contract §5), written and read back.
//! - [`day`]: a day's lines → energy per period, injected energy, cost, peak power, chart points;
//!   the `today` payload.
//! - [`pages`]: reports → the day pages and the index, as Strings.
//!
//! Where files live, when pages are rebuilt and how MQTT is spoken is the shell's:
//! `commands::logger` and `commands::graph`.

pub mod day;
pub mod line;
pub mod pages;
pub mod state;
pub mod window;

pub use day::{Costs, DayReport};
pub use line::LogLine;
pub use state::State;
pub use window::{Aggregator, Filed};
