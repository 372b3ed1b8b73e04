//! Prints the `state` messages of one simulated local day (the simulated EJP meter through the
//! real decoder and meter model), one JSON object per line, for feeding a logger through
//! `mosquitto_pub -l`: `cargo run --example gen_states -- YYYY-MM-DD [SECONDS_APART]`.
//! Used to measure what the logger writes to disk in a day.

use std::io::Write;

use jiff::tz::TimeZone;
use linkymon::meter::Meter;
use linkymon::source::simulate::{SimConfig, Simulator};
use linkymon::tic::Decoder;

fn main() -> std::io::Result<()> {
    let mut args = std::env::args().skip(1);
    let date: jiff::civil::Date = args
        .next()
        .and_then(|d| d.parse().ok())
        .expect("usage: gen_states YYYY-MM-DD [SECONDS_APART]");
    let step: i64 = args
        .next()
        .map_or(10, |s| s.parse().expect("a number of seconds"));
    let tz = TimeZone::get("Europe/Paris").expect("Europe/Paris is bundled");
    let midnight = linkymon::logger::day::midnight(date, &tz);
    let mut simulator = Simulator::new(SimConfig {
        start: 0.0,
        ..SimConfig::default()
    })
    .expect("the default simulated meter is valid");
    let mut decoder = Decoder::default();
    let mut meter = Meter::new(230);
    let mut out = std::io::BufWriter::new(std::io::stdout().lock());
    for t in (0..86_400).step_by(usize::try_from(step).unwrap_or(10)) {
        let bytes = simulator.frame_at(t as f64);
        let mut frames = Vec::new();
        decoder.push(&bytes, |f| frames.push(f));
        for frame in frames {
            let reading = meter.read(&frame, t as f64);
            let at = midnight
                .checked_add(jiff::SignedDuration::from_secs(t))
                .expect("within range");
            let ts = at
                .to_zoned_datetime(tz.clone())
                .strftime("%Y-%m-%dT%H:%M:%S%:z")
                .to_string();
            writeln!(out, "{}", reading.to_state_json(Some(&ts), None))?;
        }
    }
    out.flush()
}
