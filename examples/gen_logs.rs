//! Writes a generated history of daily logs, for benchmarking `linkymon graph`:
//! `cargo run --release --example gen_logs -- DIR [DAYS] [SECONDS_PER_LINE]`
//! (default: 365 days from 2021-01-01, a line every 10 s, an EJP contract with 22 peak days).

use std::io::Write;

use jiff::civil::{Date, date};
use linkymon::logger::LogLine;

fn main() -> std::io::Result<()> {
    let mut args = std::env::args().skip(1);
    let dir = std::path::PathBuf::from(args.next().expect("usage: gen_logs DIR [DAYS] [STEP_S]"));
    let days: i64 = args
        .next()
        .map_or(365, |d| d.parse().expect("DAYS is a number"));
    let step: i64 = args
        .next()
        .map_or(10, |s| s.parse().expect("STEP_S is a number"));
    std::fs::create_dir_all(&dir)?;
    let mut rng = fastrand::Rng::with_seed(7);
    let (mut hn, mut pm) = (688_322.0_f64, 80_072.0_f64);
    let first: Date = date(2021, 1, 1);
    for d in 0..days {
        let day = first
            .checked_add(jiff::Span::new().days(d))
            .expect("a date");
        let peak_day = d % 16 == 5; // about 22 a year
        let mut out =
            std::io::BufWriter::new(std::fs::File::create(dir.join(format!("{day}.log")))?);
        for s in (step..=86_400 - step).step_by(usize::try_from(step).unwrap_or(10)) {
            let h = s as f64 / 3600.0;
            let peak = peak_day && (7.0..24.0).contains(&h);
            let shape = 300.0
                + 2000.0 * (-(h - 7.0).powi(2)).exp()
                + 3000.0 * (-(h - 19.5).powi(2) / 2.0).exp();
            let va = (shape * (0.9 + 0.2 * rng.f64()) * if peak { 0.5 } else { 1.0 }) as u32;
            let wh = f64::from(va) * step as f64 / 3600.0;
            if peak {
                pm += wh
            } else {
                hn += wh
            }
            let line = LogLine {
                time: day.at((s / 3600) as i8, (s / 60 % 60) as i8, (s % 60) as i8, 0),
                period: if peak { "PM.." } else { "HN.." }.into(),
                indexes: vec![("HN".into(), hn as u64), ("HPM".into(), pm as u64)],
                injected_index: None,
                consumed_va: Some(va),
                current_a: Some(va.div_ceil(230)),
                injected_w: None,
            };
            writeln!(out, "{line}")?;
        }
        out.flush()?;
    }
    Ok(())
}
