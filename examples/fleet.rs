//! The fleet simulator (README "Fleets"): N simulated meters publishing their `state` messages
//! to a broker, each at its own pace, for trying loggers and a database at fleet scale.
//!
//! `cargo run --release --example fleet -- HOST PORT METERS [RATE_PER_METER] [SECONDS] [BASE_TOPIC]`
//! (defaults: 1 message per second each, 60 s, `linky`). Prints what the broker acknowledged.

use std::time::Duration;

use linkymon::fleet::{FleetConfig, run};

#[tokio::main(flavor = "current_thread")]
async fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let usage = "usage: fleet HOST PORT METERS [RATE_PER_METER] [SECONDS] [BASE_TOPIC]";
    let arg = |i: usize| args.get(i).map(String::as_str);
    let config = FleetConfig {
        host: arg(0).ok_or_else(|| anyhow::anyhow!(usage))?.to_owned(),
        port: arg(1)
            .and_then(|p| p.parse().ok())
            .ok_or_else(|| anyhow::anyhow!(usage))?,
        meters: arg(2)
            .and_then(|n| n.parse().ok())
            .ok_or_else(|| anyhow::anyhow!(usage))?,
        rate: arg(3).map_or(Ok(1.0), str::parse)?,
        duration: Duration::from_secs(arg(4).map_or(Ok(60), str::parse)?),
        base_topic: arg(5).unwrap_or("linky").to_owned(),
        first_id: 100_000_000_000,
        messages_per_meter: None,
        client_id: format!("linkymon-fleet-{}", std::process::id()),
    };
    let report = run(config).await?;
    println!(
        "{} messages acknowledged by the broker",
        report.acknowledged
    );
    Ok(())
}
